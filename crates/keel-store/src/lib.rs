//! Keel's storage.
//!
//! One [`Store`] trait speaking domain types, two implementations (SQLite, the embedded
//! default, and PostgreSQL for scale-out), each with its own migrations compiled into the
//! binary. The backend is chosen from the URL scheme. Dialect differences stay inside each
//! backend; `tests/conformance.rs` runs one story against both.
//!
//! What is stored grows with state changes and rollups, never with every check. Incidents
//! are stored as their append-only timelines (event sourcing): the in-memory incident is a
//! fold of its events, so the store only needs to append safely and read back in order.
//!
//! Subscribers, the notification outbox and scheduled maintenances (their types live in
//! [`comms`]) are plain rows; the outbox is claimed under leases so several workers, or several
//! Keel instances on one PostgreSQL, never send one row at the same time.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use keel_core::confirm::Tracker;
use keel_core::incident::{Actor, EventKind, IncidentEvent, IncidentId};
use keel_core::public::{Maintenance, MaintenanceStatus};
use keel_core::rollup::MinuteRollup;
use keel_core::{Signal, SourceKind};

pub mod accounts;
pub mod backup;
pub mod cluster;
pub mod comms;
pub mod postgres;
mod shared;
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

/// A stored signal with its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSignal {
    pub seq: i64,
    pub signal: Signal,
}

/// The persisted state of one monitored source (monitor or vendor).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceState {
    pub kind: SourceKind,
    pub id: String,
    /// The graph node the source speaks about (kept so an intake alert restored after a
    /// restart still knows its component).
    pub component: String,
    pub tracker: Tracker,
}

/// Uptime of one component on one UTC day, from the rollups.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyUptime {
    pub component: String,
    pub day: NaiveDate,
    pub checks: u64,
    pub failures: u64,
}

impl DailyUptime {
    /// Share of successful checks, 0.0–1.0; `None` without checks.
    pub fn ratio(&self) -> Option<f64> {
        (self.checks > 0).then(|| (self.checks - self.failures) as f64 / self.checks as f64)
    }
}

/// A hashed API token and its role.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// An event to store: who, when and what. The store assigns the incident and the seq.
pub type NewEvent = (Actor, DateTime<Utc>, EventKind);

pub type Result<T> = std::result::Result<T, StoreError>;

pub use accounts::{AccountStore, NewSession, Session, User};
pub use cluster::{Change, ClusterStore, Fence, Instance, Lease};
pub use comms::{
    hash_token, NewMaintenance, NewOutboxItem, NewSubscriber, OutboxCounts, OutboxItem,
    OutboxStatus, Subscriber, SubscriberKind,
};

pub use team::{NewOverride, TeamStore};

/// Everything Keel stores. Role traits (`TeamStore`, …) are supertraits, so one
/// `Arc<dyn Store>` reaches them all while each part of the code can name only the role it uses.
#[async_trait]
pub trait Store: AccountStore + TeamStore + ClusterStore + Send + Sync + 'static {
    /// Which backend this is ("sqlite" or "postgres"), for logs and health.
    fn backend(&self) -> &'static str;

    /// Cheap round trip proving the database answers.
    async fn ping(&self) -> Result<()>;

    /// Appends a signal; returns its sequence number (strictly increasing).
    async fn append_signal(&self, signal: &Signal) -> Result<i64>;

    /// Signals with `seq > after`, oldest first, at most `limit`.
    async fn signals_after(&self, after: i64, limit: u32) -> Result<Vec<StoredSignal>>;

    /// Inserts or replaces the state of one source.
    async fn save_source_state(&self, state: &SourceState) -> Result<()>;

    /// Appends signals (in the order given) and saves source states (a later state of the
    /// same source wins) in one transaction: thousands of monitors starting, or failing
    /// together, cost one commit instead of two each.
    async fn save_signals_and_states(
        &self,
        signals: &[Signal],
        states: &[SourceState],
    ) -> Result<()>;

    /// Every stored source state.
    async fn load_source_states(&self) -> Result<Vec<SourceState>>;

    /// Adds minute rollups. A second write for the same (monitor, minute) merges into it
    /// (checks and failures add up, max takes the larger, percentiles the later value), and
    /// the per-day totals of the component are updated in the same transaction.
    async fn add_rollups(&self, rollups: &[MinuteRollup]) -> Result<()>;

    /// Minute rollups of one monitor with `from <= minute < to`, oldest first.
    async fn rollups(
        &self,
        monitor_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MinuteRollup>>;

    /// Per-day uptime of a component for days `from..=to` that have checks, oldest first.
    async fn daily_uptime(
        &self,
        component: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUptime>>;

    /// Deletes minute rollups older than `minute_before` and daily rows older than
    /// `day_before`; returns the number of rows removed.
    async fn prune_rollups(
        &self,
        minute_before: DateTime<Utc>,
        day_before: NaiveDate,
    ) -> Result<u64>;

    /// Stores a token by its SHA-256 hash (hex). A duplicate hash or name is `Conflict`.
    async fn create_token(&self, name: &str, role: &str, hash_hex: &str) -> Result<ApiToken>;

    /// Finds a token by hash.
    async fn find_token(&self, hash_hex: &str) -> Result<Option<ApiToken>>;

    /// Every token, oldest first (hashes are never returned).
    async fn token_list(&self) -> Result<Vec<ApiToken>>;

    /// Deletes the token named `name`; `NotFound` when there is none.
    async fn token_delete(&self, name: &str) -> Result<()>;

    /// Opens a new incident: allocates the next id (strictly increasing, never reused, also
    /// with several instances on one PostgreSQL) and stores `events` as seq 1..=n in one
    /// transaction. The first event must be `Opened` and no later one may be (`Invalid`).
    /// Times are kept to the millisecond.
    async fn create_incident(&self, events: &[NewEvent]) -> Result<IncidentId>;

    /// Appends to an incident's timeline with optimistic concurrency: the events get seqs
    /// `expected_last_seq + 1…` only if the incident's last seq is still `expected_last_seq`,
    /// else `Conflict("incident 7 changed: expected seq 4, found 5")`, and nothing is stored.
    /// Unknown incident: `NotFound`. `Opened` is refused (`Invalid`). An empty slice checks
    /// the same things and stores nothing. Returns the events as stored.
    async fn append_incident_events(
        &self,
        incident: IncidentId,
        expected_last_seq: u32,
        events: &[NewEvent],
    ) -> Result<Vec<IncidentEvent>>;

    /// One incident's timeline ordered by seq; `NotFound` for an unknown incident.
    async fn incident_events(&self, incident: IncidentId) -> Result<Vec<IncidentEvent>>;

    /// Every incident's timeline, ordered by (incident, seq): what a start-up replays to
    /// rebuild the incidents in memory.
    async fn all_incident_events(&self) -> Result<Vec<IncidentEvent>>;

    // --- Subscribers ------------------------------------------------------------------------

    /// Stores a subscriber (email trimmed and lower-cased). `Conflict` when the same kind and
    /// address is already subscribed (confirmed or not) or a token hash is already in use;
    /// `Invalid` for a webhook without a secret, an unconfirmed subscriber without a confirm
    /// token, a token hash that is not SHA-256 hex, an empty address or a NUL character.
    async fn create_subscriber(&self, new: &NewSubscriber) -> Result<Subscriber>;

    /// One subscriber by id; `NotFound` if there is none (e.g. it unsubscribed).
    async fn subscriber(&self, id: i64) -> Result<Subscriber>;

    /// Confirms the subscriber whose confirm token hashes to `token_hash`, at `now`.
    /// Confirming again is harmless (the first `confirmed_at` stays). `NotFound` if unknown.
    async fn confirm_subscriber(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Subscriber>;

    /// Deletes the subscriber whose unsubscribe token hashes to `token_hash` and returns what
    /// it was. `NotFound` if unknown (also on a second click of the same link). Outbox items
    /// already queued for it stay; see [`NewOutboxItem::subscriber_id`].
    async fn unsubscribe(&self, token_hash: &str) -> Result<Subscriber>;

    /// Every subscriber (only the confirmed ones if `confirmed_only`), oldest first.
    async fn subscribers(&self, confirmed_only: bool) -> Result<Vec<Subscriber>>;

    // --- Outbox -----------------------------------------------------------------------------

    /// Stores notifications as `pending`, in one transaction. An item whose idempotency key is
    /// already stored (or repeated in the batch) is ignored; returns how many were inserted,
    /// so `items.len() - inserted` were duplicates.
    async fn enqueue(&self, items: &[NewOutboxItem]) -> Result<u64>;

    /// Claims up to `limit` due items for `worker` until `now + lease`, oldest due first, and
    /// returns them as `sending` with `attempts` counted up. Due means `pending` with
    /// `next_attempt_at <= now`, or `sending` whose lease ended at or before `now` (its worker
    /// died mid-send). Concurrent claims — other tasks, other instances on one PostgreSQL
    /// (`FOR UPDATE SKIP LOCKED`) — never get the same item while its lease runs. A zero
    /// lease is `Invalid`.
    async fn claim_outbox(
        &self,
        worker: &str,
        limit: u32,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxItem>>;

    /// Marks an item sent at `now` (from any status: a worker whose lease ran out may still
    /// have delivered it). Already sent: nothing changes. `NotFound` if unknown.
    async fn outbox_sent(&self, id: i64, now: DateTime<Utc>) -> Result<()>;

    /// Puts a `pending`/`sending` item back to `pending` until `next_attempt_at`, recording
    /// `error` (capped to a few KB) and releasing the lease. On a `sent` or `dead` item it does
    /// nothing (another worker finished it meanwhile). `NotFound` if unknown.
    async fn outbox_retry(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<()>;

    /// Gives up on a `pending`/`sending` item at `now`: it becomes `dead` with `error` and is
    /// listed by [`Store::dead_letters`]. On a `sent` or `dead` item it does nothing.
    /// `NotFound` if unknown.
    async fn outbox_dead(&self, id: i64, error: &str, now: DateTime<Utc>) -> Result<()>;

    /// Dead items, most recently given up first, at most `limit`.
    async fn dead_letters(&self, limit: u32) -> Result<Vec<OutboxItem>>;

    /// How many items are in each status.
    async fn outbox_counts(&self) -> Result<OutboxCounts>;

    /// Deletes items sent before `sent_before`; returns how many. Pending, sending and dead
    /// items stay whatever their age: they are work, or what an operator must look at.
    async fn prune_outbox(&self, sent_before: DateTime<Utc>) -> Result<u64>;

    // --- Scheduled maintenance --------------------------------------------------------------

    /// Stores a maintenance created at `now`; its id is a decimal string. `Invalid` when it
    /// ends before it starts.
    async fn create_maintenance(
        &self,
        new: &NewMaintenance,
        now: DateTime<Utc>,
    ) -> Result<Maintenance>;

    /// Every maintenance, by `scheduled_for` then id.
    async fn maintenances(&self) -> Result<Vec<Maintenance>>;

    /// Sets a maintenance's status, `updated_at = now`. `NotFound` for an unknown id.
    async fn set_maintenance_status(
        &self,
        id: &str,
        status: MaintenanceStatus,
        now: DateTime<Utc>,
    ) -> Result<Maintenance>;
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
