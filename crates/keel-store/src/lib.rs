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

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use keel_core::confirm::Tracker;
use keel_core::incident::{Actor, EventKind, IncidentEvent, IncidentId};
use keel_core::rollup::MinuteRollup;
use keel_core::{Signal, SourceKind};

pub mod postgres;
mod shared;
pub mod sqlite;

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

#[async_trait]
pub trait Store: Send + Sync + 'static {
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
