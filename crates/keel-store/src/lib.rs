//! Keel's storage.
//!
//! Role traits speaking domain types, one per kind of thing stored — [`SignalStore`],
//! [`IncidentStore`], [`MaintenanceStore`], [`OutboxStore`], [`AccountStore`], [`TeamStore`],
//! [`ClusterStore`] — each in the module that holds its types, and [`Store`], which is all of
//! them. Two implementations (SQLite, the embedded default, and PostgreSQL for scale-out), each
//! with its own migrations compiled into the binary. The backend is chosen from the URL scheme.
//! Dialect differences stay inside each backend; row decoding and the rules both apply live
//! once, beside the types (and in `shared.rs`). `tests/conformance.rs` runs one story against
//! both.
//!
//! What is stored grows with state changes and rollups, never with every check. Incidents
//! are stored as their append-only timelines (event sourcing): the in-memory incident is a
//! fold of its events, so the store only needs to append safely and read back in order.
//!
//! Subscribers, the notification outbox ([`comms`]) and scheduled maintenances
//! ([`maintenance`]) are plain rows; the outbox is claimed under leases so several workers, or
//! several Keel instances on one PostgreSQL, never send one row at the same time.

use async_trait::async_trait;

pub mod accounts;
pub mod backup;
pub mod cluster;
pub mod comms;
pub mod incidents;
pub mod maintenance;
pub mod postgres;
mod shared;
pub mod signals;
pub mod sqlite;
pub mod team;

/// Errors every backend maps its failures to.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request itself is wrong (e.g. an incident whose first event is not `Opened`);
    /// retrying it unchanged can never succeed.
    #[error("invalid: {0}")]
    Invalid(String),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    /// A write made under a lease that its holder no longer holds (another instance took it
    /// over); nothing was stored.
    #[error("fenced: {0}")]
    Fenced(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub use accounts::{AccountStore, ApiToken, NewSession, Session, User};
pub use cluster::{Change, ClusterStore, Fence, Instance, Lease};
pub use comms::{
    hash_token, NewOutboxItem, NewSubscriber, OutboxCounts, OutboxItem, OutboxStatus, OutboxStore,
    Subscriber, SubscriberKind,
};
pub use incidents::{IncidentStore, NewEvent};
pub use maintenance::{MaintenanceStore, NewMaintenance};
pub use signals::{DailyUptime, SignalStore, SourceState, StoredSignal};
pub use team::{NewOverride, TeamStore};

/// Everything Keel stores: every role trait as a supertrait, so one `Arc<dyn Store>` reaches
/// them all, while a part of the code that needs one role names only that role (an
/// `Arc<dyn Store>` upcasts to `Arc<dyn OutboxStore>` and the like).
#[async_trait]
pub trait Store:
    SignalStore
    + IncidentStore
    + MaintenanceStore
    + OutboxStore
    + AccountStore
    + TeamStore
    + ClusterStore
    + Send
    + Sync
    + 'static
{
    /// Which backend this is ("sqlite" or "postgres"), for logs and health.
    fn backend(&self) -> &'static str;

    /// Cheap round trip proving the database answers.
    async fn ping(&self) -> Result<()>;
}

/// Opens the store a URL names (`sqlite://path` or `postgres://…`), creating the SQLite file
/// if needed, and runs migrations.
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            return Err(StoreError::UnsupportedUrl(url.to_string()));
        }
        Ok(std::sync::Arc::new(sqlite::SqliteStore::open(path).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(std::sync::Arc::new(postgres::PgStore::open(url).await?))
    } else {
        // The URL may carry a password; the error is printed and logged.
        Err(StoreError::UnsupportedUrl(shared::redact_url(url)))
    }
}
