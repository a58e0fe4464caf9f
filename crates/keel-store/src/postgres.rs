//! PostgreSQL backend: for scale-out, several Keel instances sharing one database.
//!
//! What sharing needs is handled here: migrations take sqlx's advisory lock, so instances
//! starting together migrate once; signal appends are serialised by a transaction-level
//! advisory lock, so sequence numbers become visible in increasing order and a reader that
//! resumes "after seq N" never skips a row committed late; rollup batches lock rows in key
//! order, so two writers cannot deadlock; incident ids come from an identity (never handed out
//! twice) under a lock of their own, so they also become visible in order; an append to an
//! incident locks its row (`FOR UPDATE`) before comparing the expected seq, so of two
//! instances appending at the same seq exactly one wins. Tables live in the connection's `search_path`, so a
//! URL with `options[search_path]=NAME` puts a deployment (or a test) in its own schema.
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

use crate::shared::{
    decode_event, describe_migrate_error, encode_events, fold_batch, incident_changed,
    latency_to_sql, now, parse_health, parse_kind, redact_url, to_u32, to_u64, token_conflict,
    truncate_to_millis, unknown_incident, unknown_token, EventRow,
};
use crate::{
    ApiToken, DailyUptime, NewEvent, Result, SourceState, Store, StoreError, StoredSignal,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long to wait for the server when connecting, so an unreachable database is reported
/// at start instead of hanging it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const MAX_CONNECTIONS: u32 = 10;

/// Key of the advisory lock that orders signal appends ("keel_sig" in ASCII).
const SIGNAL_LOCK: i64 = 0x6b65_656c_5f73_6967;

/// Key of the advisory lock that orders incident creation ("keel_inc" in ASCII).
const INCIDENT_LOCK: i64 = 0x6b65_656c_5f69_6e63;

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    target: String,
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
        // Closing is a courtesy to the server; the connection is dropped either way.
        let _ = conn.close().await;
        migrated
            .map_err(|reason| StoreError::Other(format!("PostgreSQL at {target}: {reason}")))?;

        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options);
        tracing::info!(server = %target, "PostgreSQL store open");
        Ok(PgStore { pool, target })
    }

    /// `host:port` of the server, for logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Closes the pool's connections; later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }
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
        // Identity values are handed out at insert but become visible at commit; holding
        // this lock until commit makes both orders the same.
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(SIGNAL_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
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
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(seq)
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
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn load_source_states(&self) -> Result<Vec<SourceState>> {
        let rows: Vec<StateRow> = sqlx::query_as(
            "SELECT kind, id, component, health, since, reason, latency_ms, last_checked, streak, pending
             FROM source_states ORDER BY kind, id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter()
            .map(
                |(
                    kind,
                    id,
                    component,
                    health,
                    since,
                    reason,
                    latency_ms,
                    last_checked,
                    streak,
                    pending,
                )| {
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
                            pending: pending.as_deref().map(parse_health).transpose()?,
                        },
                    })
                },
            )
            .collect()
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
        let rows = encode_events(events, 0, true)?;
        let last = rows.last().map_or(0, |r| r.seq);
        let mut tx = self.pool.begin().await.map_err(map_err)?;
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
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn append_incident_events(
        &self,
        incident: IncidentId,
        expected_last_seq: u32,
        events: &[NewEvent],
    ) -> Result<Vec<IncidentEvent>> {
        let rows = encode_events(events, expected_last_seq, false)?;
        let last = rows.last().map_or(expected_last_seq, |r| r.seq);
        let mut tx = self.pool.begin().await.map_err(map_err)?;
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
        tx.commit().await.map_err(map_err)?;
        Ok(rows.into_iter().map(|r| r.stored(incident)).collect())
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
}
