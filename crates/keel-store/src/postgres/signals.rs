//! [`SignalStore`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use keel_core::rollup::MinuteRollup;
use keel_core::{NodeId, Signal, SourceKey};
use sqlx::postgres::PgConnection;

use super::{cluster, map_err, PgStore};
use crate::cluster::Change;
use crate::shared::{fold_batch, latency_to_sql, truncate_to_millis};
use crate::signals::{
    decode_day, decode_minute, decode_signal, decode_state, DayRow, MinuteRow, SignalRow,
    SignalStore, StateRow, DAY_COLUMNS, MINUTE_COLUMNS, SIGNAL_COLUMNS, STATE_COLUMNS,
};
use crate::{DailyUptime, Result, SourceState, StoredSignal};

/// Key of the advisory lock that orders signal appends ("keel_sig" in ASCII).
const SIGNAL_LOCK: i64 = 0x6b65_656c_5f73_6967;

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
    .bind(signal.source.kind().as_str())
    .bind(signal.source.id())
    .bind(signal.component.as_str())
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
    .bind(state.key.kind().as_str())
    .bind(state.key.id())
    .bind(state.component.as_str())
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
        key: state.key.clone(),
    };
    cluster::notify(tx, channel, &change).await
}

#[async_trait]
impl SignalStore for PgStore {
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
        let rows: Vec<SignalRow<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {SIGNAL_COLUMNS} FROM signals WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_signal).collect()
    }

    async fn save_source_state(&self, state: &SourceState) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        upsert_state(&mut tx, &self.channel, state).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn load_source_states(&self) -> Result<Vec<SourceState>> {
        let rows: Vec<StateRow<DateTime<Utc>>> = sqlx::query_as(&format!(
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
        let monitor_ids: Vec<String> = minutes.iter().map(|r| r.source.rollup_id()).collect();
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
        source: &SourceKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MinuteRollup>> {
        let rows: Vec<MinuteRow<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {MINUTE_COLUMNS} FROM rollups_minute
             WHERE monitor_id = $1 AND minute >= $2 AND minute < $3
             ORDER BY minute"
        ))
        .bind(source.rollup_id())
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_minute).collect()
    }

    async fn daily_uptime(
        &self,
        component: &NodeId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUptime>> {
        let rows: Vec<DayRow> = sqlx::query_as(&format!(
            "SELECT {DAY_COLUMNS} FROM rollups_daily
             WHERE component = $1 AND day >= $2 AND day <= $3 AND checks > 0
             ORDER BY day"
        ))
        .bind(component.as_str())
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_day).collect()
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
}
