//! SQLite backend: the embedded default, one file under `data_dir`.
//!
//! WAL mode lets the status page read while checks write; writes that span several statements
//! start with `BEGIN IMMEDIATE` so two writers queue on the busy timeout instead of failing
//! with a lock upgrade error; an outbox claim does the same, so two claimers cannot pick the
//! same rows. Timestamps are unix milliseconds in INTEGER columns, which sort
//! and compare as numbers. Migrations in `migrations/sqlite` are compiled into the binary.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use keel_core::confirm::Tracker;
use keel_core::incident::{IncidentEvent, IncidentId};
use keel_core::rollup::MinuteRollup;
use keel_core::Signal;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};

use crate::cluster::Fence;
use crate::comms::{
    clean_error, counts_from, decode_maintenance, decode_outbox, decode_subscriber,
    encode_maintenance, encode_outbox, encode_subscriber, lease_end, maintenance_id,
    maintenance_status_str, no_nul, subscriber_conflict, unknown_maintenance, unknown_outbox_item,
    unknown_subscriber, unknown_token_hash, OutboxRead,
};
use crate::shared::{
    decode_event, describe_migrate_error, encode_events, fold_batch, from_millis, incident_changed,
    latency_to_sql, now, parse_health, parse_kind, to_millis, to_u32, to_u64, token_conflict,
    unknown_incident, unknown_token, EventRow,
};
use crate::{
    ApiToken, DailyUptime, NewEvent, NewMaintenance, NewOutboxItem, NewSubscriber, OutboxCounts,
    OutboxItem, Result, SourceState, Store, StoreError, StoredSignal, Subscriber,
};
use keel_core::public::{Maintenance, MaintenanceStatus};

mod accounts;
mod cluster;
mod team;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The database file `open_in_dir` uses inside the data directory.
pub const DB_FILE: &str = "keel.db";

/// How long a writer waits for another writer before giving up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Readers run in parallel under WAL; one writer at a time either way. A few connections are
/// enough on a small machine and keep file handles bounded.
const MAX_CONNECTIONS: u32 = 4;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and runs migrations. The
    /// parent directory must exist.
    pub async fn open(path: &str) -> Result<Self> {
        Self::open_path(Path::new(path)).await
    }

    /// Creates `dir` if needed and opens `dir/keel.db` in it.
    pub async fn open_in_dir(dir: &Path) -> Result<Self> {
        tokio::fs::create_dir_all(dir).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        Self::open_path(&dir.join(DB_FILE)).await
    }

    /// The database file this store uses.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the pool's connections (the last one checkpoints the WAL into the file); later
    /// calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn open_path(path: &Path) -> Result<Self> {
        let fail = |e: &dyn Display| {
            StoreError::Unavailable(format!(
                "cannot open SQLite database at {}: {e}",
                path.display()
            ))
        };
        if path.as_os_str().is_empty() {
            return Err(fail(&"the path is empty"));
        }
        // Open the file ourselves first: the OS error ("Not a directory", "Permission denied",
        // "No such file or directory") says more than SQLite's "unable to open database file".
        tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .await
            .map_err(|e| match path.parent() {
                Some(dir)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && !dir.as_os_str().is_empty()
                        && !dir.exists() =>
                {
                    fail(&format_args!("directory {} does not exist", dir.display()))
                }
                _ => fail(&e),
            })?;

        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable against crashes of Keel in WAL mode; only a power loss can
            // drop the last transactions, and never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(BUSY_TIMEOUT * 2)
            .connect_with(options)
            .await
            .map_err(|e| fail(&describe(&e)))?;
        if let Err(e) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(fail(&describe_migrate_error(&e)));
        }
        tracing::info!(path = %path.display(), "SQLite store open");
        Ok(SqliteStore {
            pool,
            path: path.to_path_buf(),
        })
    }
}

/// SQLite result codes (primary, low byte of the extended code) that mean the file cannot be
/// used right now rather than that the request was wrong.
const UNAVAILABLE_CODES: [i64; 6] = [
    5,  // SQLITE_BUSY
    6,  // SQLITE_LOCKED
    8,  // SQLITE_READONLY
    10, // SQLITE_IOERR
    13, // SQLITE_FULL
    14, // SQLITE_CANTOPEN
];

fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_string())
        }
        sqlx::Error::Database(db) => {
            let primary = db
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .map(|c| c & 0xff);
            if primary.is_some_and(|c| UNAVAILABLE_CODES.contains(&c)) {
                StoreError::Unavailable(format!("SQLite: {}", db.message()))
            } else {
                StoreError::Other(format!("SQLite: {}", db.message()))
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(format!("SQLite: {e}")),
        _ => StoreError::Other(format!("SQLite: {e}")),
    }
}

type SignalRow = (i64, String, String, String, String, String, i64);
type StateRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    i64,
    Option<String>,
);
const STATE_COLUMNS: &str =
    "kind, id, component, health, since, reason, latency_ms, last_checked, streak, pending";

async fn insert_signal(conn: &mut SqliteConnection, signal: &Signal) -> Result<i64> {
    let (seq,): (i64,) = sqlx::query_as(
        "INSERT INTO signals (source_kind, source_id, component, health, reason, at)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
    )
    .bind(signal.source_kind.as_str())
    .bind(&signal.source_id)
    .bind(&signal.component)
    .bind(signal.health.as_str())
    .bind(&signal.reason)
    .bind(to_millis(signal.at))
    .fetch_one(conn)
    .await
    .map_err(map_err)?;
    Ok(seq)
}

async fn upsert_state(conn: &mut SqliteConnection, state: &SourceState) -> Result<()> {
    let t = &state.tracker;
    sqlx::query(
        "INSERT INTO source_states
             (kind, id, component, health, since, reason, latency_ms, last_checked, streak, pending)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (kind, id) DO UPDATE SET
             component = excluded.component, health = excluded.health, since = excluded.since, reason = excluded.reason,
             latency_ms = excluded.latency_ms, last_checked = excluded.last_checked,
             streak = excluded.streak, pending = excluded.pending",
    )
    .bind(state.kind.as_str())
    .bind(&state.id)
    .bind(&state.component)
    .bind(t.health.as_str())
    .bind(to_millis(t.since))
    .bind(&t.reason)
    .bind(latency_to_sql(t.latency_ms))
    .bind(t.last_checked.map(to_millis))
    .bind(i64::from(t.streak))
    .bind(t.pending.map(|h| h.as_str()))
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

fn decode_state(row: StateRow) -> Result<SourceState> {
    let (kind, id, component, health, since, reason, latency_ms, last_checked, streak, pending) =
        row;
    Ok(SourceState {
        kind: parse_kind(&kind)?,
        id,
        component,
        tracker: Tracker {
            health: parse_health(&health)?,
            since: from_millis(since)?,
            reason,
            latency_ms: latency_ms.map(|v| to_u64(v, "latency")).transpose()?,
            last_checked: last_checked.map(from_millis).transpose()?,
            streak: to_u32(streak, "streak")?,
            streak_since: None,
            pending: pending.as_deref().map(parse_health).transpose()?,
        },
    })
}

type MinuteRow = (String, i64, String, i64, i64, i64, i64, i64);
type EventRowRead = (i64, i64, i64, String, Option<String>, String);

const EVENT_COLUMNS: &str = "incident, seq, at, actor_type, actor_name, kind";

fn decode_rows(rows: Vec<EventRowRead>) -> Result<Vec<IncidentEvent>> {
    rows.into_iter()
        .map(|(incident, seq, at, actor_type, actor_name, kind)| {
            decode_event(
                incident,
                seq,
                from_millis(at)?,
                &actor_type,
                actor_name,
                &kind,
            )
        })
        .collect()
}

type SubscriberRowRead = (
    i64,
    String,
    String,
    String,
    String,
    bool,
    Option<String>,
    i64,
    Option<i64>,
);

const SUBSCRIBER_COLUMNS: &str =
    "id, kind, address, components, locale, confirmed, secret, created_at, confirmed_at";

fn decode_subscriber_row(row: SubscriberRowRead) -> Result<Subscriber> {
    let (id, kind, address, components, locale, confirmed, secret, created_at, confirmed_at) = row;
    decode_subscriber(
        id,
        &kind,
        address,
        &components,
        locale,
        confirmed,
        secret,
        from_millis(created_at)?,
        confirmed_at.map(from_millis).transpose()?,
    )
}

type OutboxRowRead = (
    i64,
    String,
    String,
    String,
    Option<i64>,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
    Option<i64>,
);

const OUTBOX_COLUMNS: &str = "id, idempotency_key, channel, target, subscriber_id, payload, \
     status, attempts, next_attempt_at, last_error, claimed_by, lease_until, created_at, \
     finished_at";

fn decode_outbox_row(row: OutboxRowRead) -> Result<OutboxItem> {
    let (
        id,
        key,
        channel,
        target,
        subscriber_id,
        payload,
        status,
        attempts,
        next_attempt_at,
        last_error,
        claimed_by,
        lease_until,
        created_at,
        finished_at,
    ) = row;
    decode_outbox(OutboxRead {
        id,
        key,
        channel,
        target,
        subscriber_id,
        payload,
        status,
        attempts,
        next_attempt_at: from_millis(next_attempt_at)?,
        last_error,
        claimed_by,
        lease_until: lease_until.map(from_millis).transpose()?,
        created_at: from_millis(created_at)?,
        finished_at: finished_at.map(from_millis).transpose()?,
    })
}

type MaintenanceRowRead = (i64, String, String, String, i64, i64, String, i64, i64);

const MAINTENANCE_COLUMNS: &str = "id, name, body, status, scheduled_for, scheduled_until, \
     components, created_at, updated_at";

fn decode_maintenance_row(row: MaintenanceRowRead) -> Result<Maintenance> {
    let (id, name, body, status, from, until, components, created_at, updated_at) = row;
    decode_maintenance(
        id,
        &name,
        &body,
        &status,
        from_millis(from)?,
        from_millis(until)?,
        &components,
        from_millis(created_at)?,
        from_millis(updated_at)?,
    )
}

impl SqliteStore {
    /// `NotFound` unless an outbox row with `id` exists: what an update that changed nothing
    /// tells apart from "already finished".
    async fn outbox_exists(&self, id: i64) -> Result<()> {
        let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM outbox WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        found.map(|_| ()).ok_or_else(|| unknown_outbox_item(id))
    }
}

async fn insert_events(
    tx: &mut sqlx::SqliteConnection,
    incident: IncidentId,
    rows: &[EventRow],
) -> Result<()> {
    for r in rows {
        sqlx::query(
            "INSERT INTO incident_events (incident, seq, at, actor_type, actor_name, type, kind)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(incident)
        .bind(i64::from(r.seq))
        .bind(to_millis(r.at))
        .bind(r.actor_type)
        .bind(&r.actor_name)
        .bind(&r.tag)
        .bind(&r.json)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
    }
    Ok(())
}

impl SqliteStore {
    /// [`Store::create_incident`], and with a fence [`crate::ClusterStore::create_incident_fenced`]:
    /// the fence is checked under the same write lock as the insert.
    pub(crate) async fn create_incident_under(
        &self,
        fence: Option<&Fence>,
        events: &[NewEvent],
    ) -> Result<IncidentId> {
        let rows = encode_events(events, 0, true)?;
        let last = rows.last().map_or(0, |r| r.seq);
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        if let Some(fence) = fence {
            cluster::hold_fence(&mut tx, fence).await?;
        }
        let (id,): (i64,) =
            sqlx::query_as("INSERT INTO incidents (last_seq) VALUES (?) RETURNING id")
                .bind(i64::from(last))
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        insert_events(&mut tx, id, &rows).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    /// [`Store::append_incident_events`], and with a fence
    /// [`crate::ClusterStore::append_incident_events_fenced`].
    pub(crate) async fn append_incident_events_under(
        &self,
        fence: Option<&Fence>,
        incident: IncidentId,
        expected_last_seq: u32,
        events: &[NewEvent],
    ) -> Result<Vec<IncidentEvent>> {
        let rows = encode_events(events, expected_last_seq, false)?;
        let last = rows.last().map_or(expected_last_seq, |r| r.seq);
        // BEGIN IMMEDIATE takes the write lock first, so the check and the insert below see
        // the same last seq: two appends with one expected seq queue, and the second fails.
        // It also keeps a lease from changing hands between the fence check and the commit.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        if let Some(fence) = fence {
            cluster::hold_fence(&mut tx, fence).await?;
        }
        let found: Option<(i64,)> = sqlx::query_as("SELECT last_seq FROM incidents WHERE id = ?")
            .bind(incident)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        match found {
            None => return Err(unknown_incident(incident)),
            Some((found,)) if found != i64::from(expected_last_seq) => {
                return Err(incident_changed(incident, expected_last_seq, found))
            }
            Some(_) => {}
        }
        sqlx::query("UPDATE incidents SET last_seq = ? WHERE id = ?")
            .bind(i64::from(last))
            .bind(incident)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_events(&mut tx, incident, &rows).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(rows.into_iter().map(|r| r.stored(incident)).collect())
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn append_signal(&self, signal: &Signal) -> Result<i64> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        insert_signal(&mut conn, signal).await
    }

    async fn save_signals_and_states(
        &self,
        signals: &[Signal],
        states: &[SourceState],
    ) -> Result<()> {
        if signals.is_empty() && states.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for signal in signals {
            insert_signal(&mut tx, signal).await?;
        }
        for state in states {
            upsert_state(&mut tx, state).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn signals_after(&self, after: i64, limit: u32) -> Result<Vec<StoredSignal>> {
        let rows: Vec<SignalRow> = sqlx::query_as(
            "SELECT seq, source_kind, source_id, component, health, reason, at
             FROM signals WHERE seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter()
            .map(|(seq, kind, source_id, component, health, reason, at)| {
                Ok(StoredSignal {
                    seq,
                    signal: Signal {
                        source_kind: parse_kind(&kind)?,
                        source_id,
                        component,
                        health: parse_health(&health)?,
                        reason,
                        at: from_millis(at)?,
                    },
                })
            })
            .collect()
    }

    async fn save_source_state(&self, state: &SourceState) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        upsert_state(&mut conn, state).await
    }

    async fn load_source_states(&self) -> Result<Vec<SourceState>> {
        let rows: Vec<StateRow> = sqlx::query_as(&format!(
            "SELECT {STATE_COLUMNS} FROM source_states ORDER BY kind, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_state).collect()
    }

    async fn add_rollups(&self, rollups: &[MinuteRollup]) -> Result<()> {
        let (minutes, days) = fold_batch(rollups)?;
        if minutes.is_empty() {
            return Ok(());
        }
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        for r in &minutes {
            sqlx::query(
                "INSERT INTO rollups_minute
                     (monitor_id, minute, component, checks, failures, p50_ms, p95_ms, max_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (monitor_id, minute) DO UPDATE SET
                     component = excluded.component,
                     checks = rollups_minute.checks + excluded.checks,
                     failures = rollups_minute.failures + excluded.failures,
                     p50_ms = excluded.p50_ms,
                     p95_ms = excluded.p95_ms,
                     max_ms = MAX(rollups_minute.max_ms, excluded.max_ms)",
            )
            .bind(&r.monitor_id)
            .bind(to_millis(r.minute))
            .bind(&r.component)
            .bind(i64::from(r.checks))
            .bind(i64::from(r.failures))
            .bind(i64::from(r.latency_p50_ms))
            .bind(i64::from(r.latency_p95_ms))
            .bind(i64::from(r.latency_max_ms))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        for d in &days {
            sqlx::query(
                "INSERT INTO rollups_daily (component, day, checks, failures)
                 VALUES (?, ?, ?, ?)
                 ON CONFLICT (component, day) DO UPDATE SET
                     checks = rollups_daily.checks + excluded.checks,
                     failures = rollups_daily.failures + excluded.failures",
            )
            .bind(&d.component)
            .bind(d.day)
            // Day totals of one batch fit easily: at most u32::MAX per rollup row.
            .bind(i64::try_from(d.checks).unwrap_or(i64::MAX))
            .bind(i64::try_from(d.failures).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn rollups(
        &self,
        monitor_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MinuteRollup>> {
        let rows: Vec<MinuteRow> = sqlx::query_as(
            "SELECT monitor_id, minute, component, checks, failures, p50_ms, p95_ms, max_ms
             FROM rollups_minute
             WHERE monitor_id = ? AND minute >= ? AND minute < ?
             ORDER BY minute",
        )
        .bind(monitor_id)
        .bind(to_millis(from))
        .bind(to_millis(to))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter()
            .map(
                |(monitor_id, minute, component, checks, failures, p50, p95, max)| {
                    Ok(MinuteRollup {
                        monitor_id,
                        component,
                        minute: from_millis(minute)?,
                        checks: to_u32(checks, "checks")?,
                        failures: to_u32(failures, "failures")?,
                        latency_p50_ms: to_u32(p50, "p50")?,
                        latency_p95_ms: to_u32(p95, "p95")?,
                        latency_max_ms: to_u32(max, "max")?,
                    })
                },
            )
            .collect()
    }

    async fn daily_uptime(
        &self,
        component: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUptime>> {
        let rows: Vec<(String, NaiveDate, i64, i64)> = sqlx::query_as(
            "SELECT component, day, checks, failures FROM rollups_daily
             WHERE component = ? AND day >= ? AND day <= ? AND checks > 0
             ORDER BY day",
        )
        .bind(component)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter()
            .map(|(component, day, checks, failures)| {
                Ok(DailyUptime {
                    component,
                    day,
                    checks: to_u64(checks, "checks")?,
                    failures: to_u64(failures, "failures")?,
                })
            })
            .collect()
    }

    async fn prune_rollups(
        &self,
        minute_before: DateTime<Utc>,
        day_before: NaiveDate,
    ) -> Result<u64> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let minutes = sqlx::query("DELETE FROM rollups_minute WHERE minute < ?")
            .bind(to_millis(minute_before))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let days = sqlx::query("DELETE FROM rollups_daily WHERE day < ?")
            .bind(day_before)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(minutes.rows_affected() + days.rows_affected())
    }

    async fn create_token(&self, name: &str, role: &str, hash_hex: &str) -> Result<ApiToken> {
        let created_at = now();
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_tokens (name, role, hash, created_at)
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(hash_hex)
        .bind(to_millis(created_at))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match &e {
            // SQLite names the column: "UNIQUE constraint failed: api_tokens.name".
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                token_conflict(name, db.message())
            }
            _ => map_err(e),
        })?;
        Ok(ApiToken {
            id,
            name: name.to_string(),
            role: role.to_string(),
            created_at,
        })
    }

    async fn find_token(&self, hash_hex: &str) -> Result<Option<ApiToken>> {
        let row: Option<(i64, String, String, i64)> =
            sqlx::query_as("SELECT id, name, role, created_at FROM api_tokens WHERE hash = ?")
                .bind(hash_hex)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        row.map(|(id, name, role, created_at)| {
            Ok(ApiToken {
                id,
                name,
                role,
                created_at: from_millis(created_at)?,
            })
        })
        .transpose()
    }

    async fn token_list(&self) -> Result<Vec<ApiToken>> {
        let rows: Vec<(i64, String, String, i64)> =
            sqlx::query_as("SELECT id, name, role, created_at FROM api_tokens ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.into_iter()
            .map(|(id, name, role, created_at)| {
                Ok(ApiToken {
                    id,
                    name,
                    role,
                    created_at: from_millis(created_at)?,
                })
            })
            .collect()
    }

    async fn token_delete(&self, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(unknown_token(name));
        }
        Ok(())
    }

    async fn create_incident(&self, events: &[NewEvent]) -> Result<IncidentId> {
        self.create_incident_under(None, events).await
    }

    async fn append_incident_events(
        &self,
        incident: IncidentId,
        expected_last_seq: u32,
        events: &[NewEvent],
    ) -> Result<Vec<IncidentEvent>> {
        self.append_incident_events_under(None, incident, expected_last_seq, events)
            .await
    }

    async fn incident_events(&self, incident: IncidentId) -> Result<Vec<IncidentEvent>> {
        let rows: Vec<EventRowRead> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM incident_events WHERE incident = ? ORDER BY seq"
        ))
        .bind(incident)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        if rows.is_empty() {
            return Err(unknown_incident(incident));
        }
        decode_rows(rows)
    }

    async fn all_incident_events(&self) -> Result<Vec<IncidentEvent>> {
        let rows: Vec<EventRowRead> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM incident_events ORDER BY incident, seq"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        decode_rows(rows)
    }
    async fn create_subscriber(&self, new: &NewSubscriber) -> Result<Subscriber> {
        let row = encode_subscriber(new)?;
        let found: SubscriberRowRead = sqlx::query_as(&format!(
            "INSERT INTO subscribers (kind, address, components, locale, secret, confirmed,
                 confirm_hash, unsubscribe_hash, created_at, confirmed_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {SUBSCRIBER_COLUMNS}"
        ))
        .bind(row.kind)
        .bind(&row.address)
        .bind(&row.components_json)
        .bind(&row.locale)
        .bind(&row.secret)
        .bind(row.confirmed)
        .bind(&row.confirm_hash)
        .bind(&row.unsubscribe_hash)
        .bind(to_millis(row.created_at))
        .bind(row.confirmed_at.map(to_millis))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match &e {
            // SQLite names the columns: "UNIQUE constraint failed: subscribers.kind, subscribers.address".
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                subscriber_conflict(&row, db.message())
            }
            _ => map_err(e),
        })?;
        decode_subscriber_row(found)
    }

    async fn subscriber(&self, id: i64) -> Result<Subscriber> {
        let found: Option<SubscriberRowRead> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_subscriber_row(found.ok_or_else(|| unknown_subscriber(id))?)
    }

    async fn confirm_subscriber(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Subscriber> {
        let found: Option<SubscriberRowRead> = sqlx::query_as(&format!(
            "UPDATE subscribers SET confirmed = 1, confirmed_at = COALESCE(confirmed_at, ?)
             WHERE confirm_hash = ? RETURNING {SUBSCRIBER_COLUMNS}"
        ))
        .bind(to_millis(now))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_subscriber_row(found.ok_or_else(|| unknown_token_hash("confirm"))?)
    }

    async fn unsubscribe(&self, token_hash: &str) -> Result<Subscriber> {
        let found: Option<SubscriberRowRead> = sqlx::query_as(&format!(
            "DELETE FROM subscribers WHERE unsubscribe_hash = ? RETURNING {SUBSCRIBER_COLUMNS}"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_subscriber_row(found.ok_or_else(|| unknown_token_hash("unsubscribe"))?)
    }

    async fn subscribers(&self, confirmed_only: bool) -> Result<Vec<Subscriber>> {
        let rows: Vec<SubscriberRowRead> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers
             WHERE confirmed = 1 OR NOT ? ORDER BY id"
        ))
        .bind(confirmed_only)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_subscriber_row).collect()
    }

    async fn enqueue(&self, items: &[NewOutboxItem]) -> Result<u64> {
        let rows = encode_outbox(items)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let created_at = to_millis(now());
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let mut inserted = 0;
        for r in &rows {
            let done = sqlx::query(
                "INSERT INTO outbox (idempotency_key, channel, target, subscriber_id, payload,
                     status, attempts, next_attempt_at, created_at)
                 VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(r.key)
            .bind(r.channel)
            .bind(r.target)
            .bind(r.subscriber_id)
            .bind(&r.payload)
            .bind(to_millis(r.next_attempt_at))
            .bind(created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            inserted += done.rows_affected();
        }
        tx.commit().await.map_err(map_err)?;
        Ok(inserted)
    }

    async fn claim_outbox(
        &self,
        worker: &str,
        limit: u32,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<OutboxItem>> {
        no_nul("worker name", worker)?;
        let until = lease_end(now, lease)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        // BEGIN IMMEDIATE takes the write lock before the select inside the update reads, so
        // two claimers queue on it and the second sees the first one's claims.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let rows: Vec<OutboxRowRead> = sqlx::query_as(&format!(
            "UPDATE outbox
             SET status = 'sending', claimed_by = ?1, lease_until = ?2, attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM outbox
                 WHERE (status = 'pending' AND next_attempt_at <= ?3)
                    OR (status = 'sending' AND lease_until <= ?3)
                 ORDER BY next_attempt_at, id
                 LIMIT ?4)
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(worker)
        .bind(to_millis(until))
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let mut items = rows
            .into_iter()
            .map(decode_outbox_row)
            .collect::<Result<Vec<_>>>()?;
        // RETURNING follows no ORDER BY; hand them out oldest due first as promised.
        items.sort_by_key(|i| (i.next_attempt_at, i.id));
        Ok(items)
    }

    async fn outbox_sent(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'sent', finished_at = ?, lease_until = NULL
             WHERE id = ? AND status <> 'sent'",
        )
        .bind(to_millis(now))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            self.outbox_exists(id).await?;
        }
        Ok(())
    }

    async fn outbox_retry(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<()> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'pending', next_attempt_at = ?, last_error = ?,
                 lease_until = NULL
             WHERE id = ? AND status IN ('pending', 'sending')",
        )
        .bind(to_millis(next_attempt_at))
        .bind(clean_error(error))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            self.outbox_exists(id).await?;
        }
        Ok(())
    }

    async fn outbox_dead(&self, id: i64, error: &str, now: DateTime<Utc>) -> Result<()> {
        let done = sqlx::query(
            "UPDATE outbox SET status = 'dead', finished_at = ?, last_error = ?,
                 lease_until = NULL
             WHERE id = ? AND status IN ('pending', 'sending')",
        )
        .bind(to_millis(now))
        .bind(clean_error(error))
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            self.outbox_exists(id).await?;
        }
        Ok(())
    }

    async fn dead_letters(&self, limit: u32) -> Result<Vec<OutboxItem>> {
        let rows: Vec<OutboxRowRead> = sqlx::query_as(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'dead'
             ORDER BY finished_at DESC, id DESC LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_outbox_row).collect()
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM outbox GROUP BY status")
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        counts_from(rows)
    }

    async fn prune_outbox(&self, sent_before: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM outbox WHERE status = 'sent' AND finished_at < ?")
            .bind(to_millis(sent_before))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn create_maintenance(
        &self,
        new: &NewMaintenance,
        now: DateTime<Utc>,
    ) -> Result<Maintenance> {
        let row = encode_maintenance(new)?;
        let at = to_millis(now);
        let found: MaintenanceRowRead = sqlx::query_as(&format!(
            "INSERT INTO maintenances (name, body, status, scheduled_for, scheduled_until,
                 components, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING {MAINTENANCE_COLUMNS}"
        ))
        .bind(&row.name_json)
        .bind(&row.body_json)
        .bind(row.status)
        .bind(to_millis(row.scheduled_for))
        .bind(to_millis(row.scheduled_until))
        .bind(&row.components_json)
        .bind(at)
        .bind(at)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        decode_maintenance_row(found)
    }

    async fn maintenances(&self) -> Result<Vec<Maintenance>> {
        let rows: Vec<MaintenanceRowRead> = sqlx::query_as(&format!(
            "SELECT {MAINTENANCE_COLUMNS} FROM maintenances ORDER BY scheduled_for, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_maintenance_row).collect()
    }

    async fn set_maintenance_status(
        &self,
        id: &str,
        status: MaintenanceStatus,
        now: DateTime<Utc>,
    ) -> Result<Maintenance> {
        let id = maintenance_id(id)?;
        let found: Option<MaintenanceRowRead> = sqlx::query_as(&format!(
            "UPDATE maintenances SET status = ?, updated_at = ? WHERE id = ?
             RETURNING {MAINTENANCE_COLUMNS}"
        ))
        .bind(maintenance_status_str(status))
        .bind(to_millis(now))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_maintenance_row(found.ok_or_else(|| unknown_maintenance(id))?)
    }
}
