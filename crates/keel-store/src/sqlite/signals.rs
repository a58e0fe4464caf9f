//! [`SignalStore`] on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use keel_core::rollup::MinuteRollup;
use keel_core::{NodeId, Signal, SourceKey};
use sqlx::sqlite::SqliteConnection;

use super::{map_err, SqliteStore};
use crate::shared::{fold_batch, latency_to_sql, to_millis};
use crate::signals::{
    decode_day, decode_minute, decode_signal, decode_state, DayRow, MinuteRow, SignalRow,
    SignalStore, StateRow, DAY_COLUMNS, MINUTE_COLUMNS, SIGNAL_COLUMNS, STATE_COLUMNS,
};
use crate::{DailyUptime, Result, SourceState, StoredSignal};

async fn insert_signal(conn: &mut SqliteConnection, signal: &Signal) -> Result<i64> {
    let (seq,): (i64,) = sqlx::query_as(
        "INSERT INTO signals (source_kind, source_id, component, health, reason, at)
         VALUES (?, ?, ?, ?, ?, ?) RETURNING seq",
    )
    .bind(signal.source.kind().as_str())
    .bind(signal.source.id())
    .bind(signal.component.as_str())
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
    .bind(state.key.kind().as_str())
    .bind(state.key.id())
    .bind(state.component.as_str())
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

#[async_trait]
impl SignalStore for SqliteStore {
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
        let rows: Vec<SignalRow<i64>> = sqlx::query_as(&format!(
            "SELECT {SIGNAL_COLUMNS} FROM signals WHERE seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_signal).collect()
    }

    async fn save_source_state(&self, state: &SourceState) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        upsert_state(&mut conn, state).await
    }

    async fn load_source_states(&self) -> Result<Vec<SourceState>> {
        let rows: Vec<StateRow<i64>> = sqlx::query_as(&format!(
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
            .bind(r.source.rollup_id())
            .bind(to_millis(r.minute))
            .bind(r.component.as_str())
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
            .bind(d.component.as_str())
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
        source: &SourceKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MinuteRollup>> {
        let rows: Vec<MinuteRow<i64>> = sqlx::query_as(&format!(
            "SELECT {MINUTE_COLUMNS} FROM rollups_minute
             WHERE monitor_id = ? AND minute >= ? AND minute < ?
             ORDER BY minute"
        ))
        .bind(source.rollup_id())
        .bind(to_millis(from))
        .bind(to_millis(to))
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
             WHERE component = ? AND day >= ? AND day <= ? AND checks > 0
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
}
