//! PostgreSQL backend: for scale-out, several Keel instances sharing one database.
//!
//! What sharing needs is handled here: migrations take sqlx's advisory lock, so instances
//! starting together migrate once; signal appends are serialised by a transaction-level
//! advisory lock, so sequence numbers become visible in increasing order and a reader that
//! resumes "after seq N" never skips a row committed late; rollup batches lock rows in key
//! order, so two writers cannot deadlock; incident ids come from an identity (never handed out
//! twice) under a lock of their own, so they also become visible in order; an append to an
//! incident locks its row (`FOR UPDATE`) before comparing the expected seq, so of two
//! instances appending at the same seq exactly one wins; outbox claims lock the rows they take
//! with `FOR UPDATE SKIP LOCKED`, so instances claiming at once pass over each other's rows
//! instead of queueing on them, and never send one row together; enqueues insert in key order,
//! so overlapping fan-outs cannot deadlock. Tables live in the connection's `search_path`, so a
//! URL with `options[search_path]=NAME` puts a deployment (or a test) in its own schema; the
//! change feed's `NOTIFY` channel is named after that schema too (see `postgres/cluster.rs`,
//! with the leases and fenced writes), so deployments side by side hear only their own writes.
//! Migrations in `migrations/postgres` are compiled into the binary.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use keel_core::confirm::Tracker;
use keel_core::incident::{IncidentEvent, IncidentId};
use keel_core::rollup::MinuteRollup;
use keel_core::Signal;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::cluster::{Change, Fence};
use crate::comms::{
    clean_error, counts_from, decode_maintenance, decode_outbox, decode_subscriber,
    encode_maintenance, encode_outbox, encode_subscriber, lease_end, maintenance_id,
    maintenance_status_str, no_nul, subscriber_conflict, unknown_maintenance, unknown_outbox_item,
    unknown_subscriber, unknown_token_hash, OutboxRead,
};
use crate::shared::{
    decode_event, describe_migrate_error, encode_events, fold_batch, incident_changed,
    latency_to_sql, now, parse_health, parse_kind, redact_url, to_u32, to_u64, token_conflict,
    truncate_to_millis, unknown_incident, unknown_token, EventRow,
};
use crate::{
    ApiToken, DailyUptime, NewEvent, NewMaintenance, NewOutboxItem, NewSubscriber, OutboxCounts,
    OutboxItem, Result, SourceState, Store, StoreError, StoredSignal, Subscriber,
};
use keel_core::public::{Maintenance, MaintenanceStatus};

mod accounts;
mod cluster;
mod team;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long to wait for the server when connecting, so an unreachable database is reported
/// at start instead of hanging it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const MAX_CONNECTIONS: u32 = 10;
/// See where the pool is made.
const IDLE_IN_TRANSACTION_LIMIT: &str = "15s";

/// Key of the advisory lock that orders signal appends ("keel_sig" in ASCII).
const SIGNAL_LOCK: i64 = 0x6b65_656c_5f73_6967;

/// Key of the advisory lock that orders incident creation ("keel_inc" in ASCII).
const INCIDENT_LOCK: i64 = 0x6b65_656c_5f69_6e63;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    target: String,
    /// The `NOTIFY` channel of the change feed, named after the schema the tables live in
    /// (see [`cluster::channel_for`]).
    channel: String,
}

impl PgStore {
    /// Connects to the database a `postgres://` URL names and runs migrations.
    ///
    /// Fails within a few seconds with [`StoreError::Unavailable`] naming host and port (never
    /// the password) when the server cannot be reached or refuses the login.
    pub async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError::Other(format!("invalid PostgreSQL URL {}: {e}", redact_url(url)))
            })?
            .application_name("keel");
        let target = format!("{}:{}", options.get_host(), options.get_port());
        let fail = |reason: String| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {target}: {reason}"
            ))
        };

        // One direct connection first: the pool would retry a refused connection until its
        // timeout and then report only "timed out", losing the reason.
        let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Err(_) => {
                return Err(fail(format!(
                    "no answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            }
            Ok(Err(e)) => return Err(fail(describe(&e))),
            Ok(Ok(conn)) => conn,
        };
        let migrated = run_migrations(&mut conn).await;
        let schema = current_schema(&mut conn).await;
        let tls = encrypted(&mut conn).await.unwrap_or(false);
        // Closing is a courtesy to the server; the connection is dropped either way.
        let _ = conn.close().await;
        migrated
            .map_err(|reason| StoreError::Other(format!("PostgreSQL at {target}: {reason}")))?;
        let channel =
            cluster::channel_for(&schema.map_err(|e| {
                StoreError::Other(format!("PostgreSQL at {target}: {}", describe(&e)))
            })?);

        // Loopback and Unix sockets never leave the machine: no warning for those.
        let local = {
            let host = options.get_host();
            host == "localhost"
                || host.starts_with('/')
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        };
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(CONNECT_TIMEOUT)
            // Keel never leaves a transaction waiting on anything but the database; one idle
            // this long belongs to a process that was stopped mid-write (SIGSTOP, a frozen
            // VM), and ending it frees the lease row its fence holds so another instance can
            // take the lease over.
            .connect_lazy_with(options.options([(
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_LIMIT,
            )]));
        if tls || local {
            tracing::info!(server = %target, tls, "PostgreSQL store open");
        } else {
            // Said plainly: the store carries incident timelines and subscriber addresses.
            tracing::warn!(
                server = %target,
                tls = false,
                "PostgreSQL store open WITHOUT encryption; add sslmode=require (or verify-full) \
                 to database_url unless the link is private"
            );
        }
        Ok(PgStore {
            pool,
            target,
            channel,
        })
    }

    /// Whether the store's connections to the server are encrypted (TLS).
    pub async fn encrypted(&self) -> Result<bool> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        encrypted(&mut conn).await.map_err(map_err)
    }

    /// A server setting as the store's own connections have it (`current_setting`).
    pub async fn setting(&self, name: &str) -> Result<String> {
        let (value,): (String,) = sqlx::query_as("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(value)
    }

    /// `host:port` of the server, for logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Closes the pool's connections; later calls fail with `Unavailable`, and the change
    /// feeds opened on this store end.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether this connection is encrypted, as the server sees it.
async fn encrypted(conn: &mut PgConnection) -> std::result::Result<bool, sqlx::Error> {
    let (ssl,): (bool,) = sqlx::query_as(
        "SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
    )
    .fetch_one(conn)
    .await?;
    Ok(ssl)
}

/// The schema unqualified tables are created in and read from: the first of the
/// connection's `search_path` that exists.
async fn current_schema(conn: &mut PgConnection) -> std::result::Result<String, sqlx::Error> {
    let (schema,): (Option<String>,) = sqlx::query_as("SELECT current_schema()")
        .fetch_one(conn)
        .await?;
    // No schema at all would have failed the migrations already.
    Ok(schema.unwrap_or_else(|| "public".to_string()))
}

async fn run_migrations(conn: &mut PgConnection) -> std::result::Result<(), String> {
    // sqlx holds an advisory lock on the database while migrating, so instances started
    // together apply each migration once.
    MIGRATOR
        .run(conn)
        .await
        .map_err(|e| describe_migrate_error(&e))
}

fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// Whether a server error means "not now" rather than "not this request": connection
/// exceptions (class 08), shutdown and start-up (57P01–57P03), insufficient resources (53).
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03")
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_string())
        }
        sqlx::Error::Database(db) if db.code().is_some_and(|c| is_unavailable_code(&c)) => {
            StoreError::Unavailable(format!("PostgreSQL: {}", db.message()))
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(format!("PostgreSQL: {e}")),
        _ => StoreError::Other(format!("PostgreSQL: {e}")),
    }
}

type SignalRow = (i64, String, String, String, String, String, DateTime<Utc>);
type StateRow = (
    String,
    String,
    String,
    String,
    DateTime<Utc>,
    String,
    Option<i64>,
    Option<DateTime<Utc>>,
    i64,
    Option<String>,
);
const STATE_COLUMNS: &str =
    "kind, id, component, health, since, reason, latency_ms, last_checked, streak, pending";

/// Identity values are handed out at insert but become visible at commit; holding this lock
/// until commit makes both orders the same.
async fn lock_signals(tx: &mut PgConnection) -> Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(SIGNAL_LOCK)
        .execute(tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

async fn insert_signal(tx: &mut PgConnection, signal: &Signal) -> Result<i64> {
    let (seq,): (i64,) = sqlx::query_as(
        "INSERT INTO signals (source_kind, source_id, component, health, reason, at)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
    )
    .bind(signal.source_kind.as_str())
    .bind(&signal.source_id)
    .bind(&signal.component)
    .bind(signal.health.as_str())
    .bind(&signal.reason)
    .bind(truncate_to_millis(signal.at))
    .fetch_one(tx)
    .await
    .map_err(map_err)?;
    Ok(seq)
}

/// Saves a source's state and tells the other instances (the feed says which source; they
/// read the row).
async fn upsert_state(tx: &mut PgConnection, channel: &str, state: &SourceState) -> Result<()> {
    let t = &state.tracker;
    sqlx::query(
        "INSERT INTO source_states
             (kind, id, component, health, since, reason, latency_ms, last_checked, streak, pending)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (kind, id) DO UPDATE SET
             component = EXCLUDED.component, health = EXCLUDED.health, since = EXCLUDED.since, reason = EXCLUDED.reason,
             latency_ms = EXCLUDED.latency_ms, last_checked = EXCLUDED.last_checked,
             streak = EXCLUDED.streak, pending = EXCLUDED.pending",
    )
    .bind(state.kind.as_str())
    .bind(&state.id)
    .bind(&state.component)
    .bind(t.health.as_str())
    .bind(truncate_to_millis(t.since))
    .bind(&t.reason)
    .bind(latency_to_sql(t.latency_ms))
    .bind(t.last_checked.map(truncate_to_millis))
    .bind(i64::from(t.streak))
    .bind(t.pending.map(|h| h.as_str()))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    let change = Change::Source {
        kind: state.kind,
        id: state.id.clone(),
    };
    cluster::notify(tx, channel, &change).await
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
            since,
            reason,
            latency_ms: latency_ms.map(|v| to_u64(v, "latency")).transpose()?,
            last_checked,
            streak: to_u32(streak, "streak")?,
            streak_since: None,
            pending: pending.as_deref().map(parse_health).transpose()?,
        },
    })
}

type MinuteRow = (String, DateTime<Utc>, String, i64, i64, i64, i64, i64);
type EventRowRead = (i64, i64, DateTime<Utc>, String, Option<String>, String);

const EVENT_COLUMNS: &str = "incident, seq, at, actor_type, actor_name, kind";

fn decode_rows(rows: Vec<EventRowRead>) -> Result<Vec<IncidentEvent>> {
    rows.into_iter()
        .map(|(incident, seq, at, actor_type, actor_name, kind)| {
            decode_event(incident, seq, at, &actor_type, actor_name, &kind)
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
    DateTime<Utc>,
    Option<DateTime<Utc>>,
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
        created_at,
        confirmed_at,
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
    DateTime<Utc>,
    Option<String>,
    Option<String>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
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
        next_attempt_at,
        last_error,
        claimed_by,
        lease_until,
        created_at,
        finished_at,
    })
}

type MaintenanceRowRead = (
    i64,
    String,
    String,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
);

const MAINTENANCE_COLUMNS: &str = "id, name, body, status, scheduled_for, scheduled_until, \
     components, created_at, updated_at";

fn decode_maintenance_row(row: MaintenanceRowRead) -> Result<Maintenance> {
    let (id, name, body, status, from, until, components, created_at, updated_at) = row;
    decode_maintenance(
        id,
        &name,
        &body,
        &status,
        from,
        until,
        &components,
        created_at,
        updated_at,
    )
}

impl PgStore {
    /// `NotFound` unless an outbox row with `id` exists: what an update that changed nothing
    /// tells apart from "already finished".
    async fn outbox_exists(&self, id: i64) -> Result<()> {
        let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        found.map(|_| ()).ok_or_else(|| unknown_outbox_item(id))
    }
}

async fn insert_events(
    tx: &mut PgConnection,
    incident: IncidentId,
    rows: &[EventRow],
) -> Result<()> {
    for r in rows {
        sqlx::query(
            "INSERT INTO incident_events (incident, seq, at, actor_type, actor_name, type, kind)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(incident)
        .bind(i64::from(r.seq))
        .bind(r.at)
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

impl PgStore {
    /// [`Store::create_incident`], and with a fence [`crate::ClusterStore::create_incident_fenced`]:
    /// the fence is checked (and its lease row locked) in the same transaction as the insert,
    /// which also tells the change feed.
    pub(crate) async fn create_incident_under(
        &self,
        fence: Option<&Fence>,
        events: &[NewEvent],
    ) -> Result<IncidentId> {
        let rows = encode_events(events, 0, true)?;
        let last = rows.last().map_or(0, |r| r.seq);
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if let Some(fence) = fence {
            cluster::hold_fence(&mut tx, fence).await?;
        }
        // Identity values are handed out at insert but become visible at commit; the lock
        // makes both orders the same. Incidents are rare, so the queue is short.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(INCIDENT_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let (id,): (i64,) =
            sqlx::query_as("INSERT INTO incidents (last_seq) VALUES ($1) RETURNING id")
                .bind(i64::from(last))
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        insert_events(&mut tx, id, &rows).await?;
        cluster::notify(&mut tx, &self.channel, &Change::Incident { id, seq: last }).await?;
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
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if let Some(fence) = fence {
            cluster::hold_fence(&mut tx, fence).await?;
        }
        // FOR UPDATE waits for a concurrent append to the same incident to finish and then
        // reads the seq it left, so the comparison below cannot pass twice for one seq.
        let found: Option<(i64,)> =
            sqlx::query_as("SELECT last_seq FROM incidents WHERE id = $1 FOR UPDATE")
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
        sqlx::query("UPDATE incidents SET last_seq = $1 WHERE id = $2")
            .bind(i64::from(last))
            .bind(incident)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_events(&mut tx, incident, &rows).await?;
        if !rows.is_empty() {
            let change = Change::Incident {
                id: incident,
                seq: last,
            };
            cluster::notify(&mut tx, &self.channel, &change).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(rows.into_iter().map(|r| r.stored(incident)).collect())
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn append_signal(&self, signal: &Signal) -> Result<i64> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        lock_signals(&mut tx).await?;
        let seq = insert_signal(&mut tx, signal).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(seq)
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
        if !signals.is_empty() {
            lock_signals(&mut tx).await?;
        }
        for signal in signals {
            insert_signal(&mut tx, signal).await?;
        }
        for state in states {
            upsert_state(&mut tx, &self.channel, state).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn signals_after(&self, after: i64, limit: u32) -> Result<Vec<StoredSignal>> {
        let rows: Vec<SignalRow> = sqlx::query_as(
            "SELECT seq, source_kind, source_id, component, health, reason, at
             FROM signals WHERE seq > $1 ORDER BY seq LIMIT $2",
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
                        at,
                    },
                })
            })
            .collect()
    }

    async fn save_source_state(&self, state: &SourceState) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        upsert_state(&mut tx, &self.channel, state).await?;
        tx.commit().await.map_err(map_err)
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
        // Whole batch in two statements (arrays, not one round trip per row): 10,000
        // monitors produce 10,000 rows a minute. `fold_batch` removed repeats inside the
        // batch, which `ON CONFLICT DO UPDATE` could not touch twice.
        let col = |f: fn(&MinuteRollup) -> u32| -> Vec<i64> {
            minutes.iter().map(|r| i64::from(f(r))).collect()
        };
        let monitor_ids: Vec<&str> = minutes.iter().map(|r| r.monitor_id.as_str()).collect();
        let minute_at: Vec<DateTime<Utc>> = minutes
            .iter()
            .map(|r| truncate_to_millis(r.minute))
            .collect();
        let components: Vec<&str> = minutes.iter().map(|r| r.component.as_str()).collect();

        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "INSERT INTO rollups_minute
                 (monitor_id, minute, component, checks, failures, p50_ms, p95_ms, max_ms)
             SELECT * FROM UNNEST($1::text[], $2::timestamptz[], $3::text[], $4::bigint[],
                                  $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
             ON CONFLICT (monitor_id, minute) DO UPDATE SET
                 component = EXCLUDED.component,
                 checks = rollups_minute.checks + EXCLUDED.checks,
                 failures = rollups_minute.failures + EXCLUDED.failures,
                 p50_ms = EXCLUDED.p50_ms,
                 p95_ms = EXCLUDED.p95_ms,
                 max_ms = GREATEST(rollups_minute.max_ms, EXCLUDED.max_ms)",
        )
        .bind(&monitor_ids)
        .bind(&minute_at)
        .bind(&components)
        .bind(col(|r| r.checks))
        .bind(col(|r| r.failures))
        .bind(col(|r| r.latency_p50_ms))
        .bind(col(|r| r.latency_p95_ms))
        .bind(col(|r| r.latency_max_ms))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;

        let day_components: Vec<&str> = days.iter().map(|d| d.component.as_str()).collect();
        let day_dates: Vec<NaiveDate> = days.iter().map(|d| d.day).collect();
        // Day totals of one batch fit easily: at most u32::MAX per rollup row.
        let day_checks: Vec<i64> = days
            .iter()
            .map(|d| i64::try_from(d.checks).unwrap_or(i64::MAX))
            .collect();
        let day_failures: Vec<i64> = days
            .iter()
            .map(|d| i64::try_from(d.failures).unwrap_or(i64::MAX))
            .collect();
        sqlx::query(
            "INSERT INTO rollups_daily (component, day, checks, failures)
             SELECT * FROM UNNEST($1::text[], $2::date[], $3::bigint[], $4::bigint[])
             ON CONFLICT (component, day) DO UPDATE SET
                 checks = rollups_daily.checks + EXCLUDED.checks,
                 failures = rollups_daily.failures + EXCLUDED.failures",
        )
        .bind(&day_components)
        .bind(&day_dates)
        .bind(&day_checks)
        .bind(&day_failures)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
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
             WHERE monitor_id = $1 AND minute >= $2 AND minute < $3
             ORDER BY minute",
        )
        .bind(monitor_id)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter()
            .map(
                |(monitor_id, minute, component, checks, failures, p50, p95, max)| {
                    Ok(MinuteRollup {
                        monitor_id,
                        component,
                        minute,
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
             WHERE component = $1 AND day >= $2 AND day <= $3 AND checks > 0
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
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let minutes = sqlx::query("DELETE FROM rollups_minute WHERE minute < $1")
            .bind(minute_before)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let days = sqlx::query("DELETE FROM rollups_daily WHERE day < $1")
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
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(hash_hex)
        .bind(created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                token_conflict(name, db.constraint().unwrap_or_else(|| db.message()))
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
        let row: Option<(i64, String, String, DateTime<Utc>)> =
            sqlx::query_as("SELECT id, name, role, created_at FROM api_tokens WHERE hash = $1")
                .bind(hash_hex)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(row.map(|(id, name, role, created_at)| ApiToken {
            id,
            name,
            role,
            created_at,
        }))
    }

    async fn token_list(&self) -> Result<Vec<ApiToken>> {
        let rows: Vec<(i64, String, String, DateTime<Utc>)> =
            sqlx::query_as("SELECT id, name, role, created_at FROM api_tokens ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(id, name, role, created_at)| ApiToken {
                id,
                name,
                role,
                created_at,
            })
            .collect())
    }

    async fn token_delete(&self, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE name = $1")
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
            "SELECT {EVENT_COLUMNS} FROM incident_events WHERE incident = $1 ORDER BY seq"
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
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {SUBSCRIBER_COLUMNS}"
        ))
        .bind(row.kind)
        .bind(&row.address)
        .bind(&row.components_json)
        .bind(&row.locale)
        .bind(&row.secret)
        .bind(row.confirmed)
        .bind(&row.confirm_hash)
        .bind(&row.unsubscribe_hash)
        .bind(row.created_at)
        .bind(row.confirmed_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                subscriber_conflict(&row, db.constraint().unwrap_or_else(|| db.message()))
            }
            _ => map_err(e),
        })?;
        decode_subscriber_row(found)
    }

    async fn subscriber(&self, id: i64) -> Result<Subscriber> {
        let found: Option<SubscriberRowRead> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_subscriber_row(found.ok_or_else(|| unknown_subscriber(id))?)
    }

    async fn confirm_subscriber(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Subscriber> {
        let found: Option<SubscriberRowRead> = sqlx::query_as(&format!(
            "UPDATE subscribers SET confirmed = TRUE, confirmed_at = COALESCE(confirmed_at, $1)
             WHERE confirm_hash = $2 RETURNING {SUBSCRIBER_COLUMNS}"
        ))
        .bind(truncate_to_millis(now))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_subscriber_row(found.ok_or_else(|| unknown_token_hash("confirm"))?)
    }

    async fn unsubscribe(&self, token_hash: &str) -> Result<Subscriber> {
        let found: Option<SubscriberRowRead> = sqlx::query_as(&format!(
            "DELETE FROM subscribers WHERE unsubscribe_hash = $1 RETURNING {SUBSCRIBER_COLUMNS}"
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
             WHERE confirmed OR NOT $1 ORDER BY id"
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
        // One statement over arrays, whatever the fan-out; `rows` is sorted by key, so two
        // instances enqueueing overlapping batches wait on each other in one order.
        let keys: Vec<&str> = rows.iter().map(|r| r.key).collect();
        let channels: Vec<&str> = rows.iter().map(|r| r.channel).collect();
        let targets: Vec<&str> = rows.iter().map(|r| r.target).collect();
        let subscriber_ids: Vec<Option<i64>> = rows.iter().map(|r| r.subscriber_id).collect();
        let payloads: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
        let due: Vec<DateTime<Utc>> = rows.iter().map(|r| r.next_attempt_at).collect();
        let done = sqlx::query(
            "INSERT INTO outbox (idempotency_key, channel, target, subscriber_id, payload,
                 status, attempts, next_attempt_at, created_at)
             SELECT k, c, t, s, p, 'pending', 0, d, $7
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                         $6::timestamptz[]) AS u (k, c, t, s, p, d)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&keys)
        .bind(&channels)
        .bind(&targets)
        .bind(&subscriber_ids)
        .bind(&payloads)
        .bind(&due)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
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
        // SKIP LOCKED passes over rows another claim holds instead of waiting for it; a row
        // that claim committed meanwhile is re-checked against the WHERE (READ COMMITTED
        // re-evaluates it on the new version) and dropped, since it is now sending with a
        // lease in the future. So no row goes to two claimers while its lease runs. The pick
        // is a CTE because a CTE that locks rows is always run exactly once, whatever plan
        // the UPDATE gets.
        let rows: Vec<OutboxRowRead> = sqlx::query_as(&format!(
            "WITH picked AS (
                 SELECT id AS picked_id FROM outbox
                 WHERE (status = 'pending' AND next_attempt_at <= $3)
                    OR (status = 'sending' AND lease_until <= $3)
                 ORDER BY next_attempt_at, id
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             UPDATE outbox
             SET status = 'sending', claimed_by = $1, lease_until = $2, attempts = attempts + 1
             FROM picked WHERE id = picked_id
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(worker)
        .bind(until)
        .bind(truncate_to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
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
            "UPDATE outbox SET status = 'sent', finished_at = $1, lease_until = NULL
             WHERE id = $2 AND status <> 'sent'",
        )
        .bind(truncate_to_millis(now))
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
            "UPDATE outbox SET status = 'pending', next_attempt_at = $1, last_error = $2,
                 lease_until = NULL
             WHERE id = $3 AND status IN ('pending', 'sending')",
        )
        .bind(truncate_to_millis(next_attempt_at))
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
            "UPDATE outbox SET status = 'dead', finished_at = $1, last_error = $2,
                 lease_until = NULL
             WHERE id = $3 AND status IN ('pending', 'sending')",
        )
        .bind(truncate_to_millis(now))
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
             ORDER BY finished_at DESC, id DESC LIMIT $1"
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
        let done = sqlx::query("DELETE FROM outbox WHERE status = 'sent' AND finished_at < $1")
            .bind(sent_before)
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
        let at = truncate_to_millis(now);
        let found: MaintenanceRowRead = sqlx::query_as(&format!(
            "INSERT INTO maintenances (name, body, status, scheduled_for, scheduled_until,
                 components, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {MAINTENANCE_COLUMNS}"
        ))
        .bind(&row.name_json)
        .bind(&row.body_json)
        .bind(row.status)
        .bind(row.scheduled_for)
        .bind(row.scheduled_until)
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
            "UPDATE maintenances SET status = $1, updated_at = $2 WHERE id = $3
             RETURNING {MAINTENANCE_COLUMNS}"
        ))
        .bind(maintenance_status_str(status))
        .bind(truncate_to_millis(now))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_maintenance_row(found.ok_or_else(|| unknown_maintenance(id))?)
    }
}
