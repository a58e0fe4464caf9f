//! [`ClusterStore`] on SQLite. SQLite carries one instance, so the process clock is the
//! database clock, `BEGIN IMMEDIATE` serialises a lease check with the write it guards, and
//! there is no change feed.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keel_core::incident::{IncidentEvent, IncidentId};
use keel_core::{MonitorId, SourceKey};
use sqlx::SqliteConnection;
use tokio::sync::mpsc;

use super::{map_err, SqliteStore};
use crate::cluster::{
    by_name, check_fence, decode_heartbeat, decode_instance, decode_lease, encode_instance, fenced,
    lease_names, span_millis, ttl_millis, Change, ClusterStore, Fence, Instance, InstanceRow,
    Lease, LeaseRow, LEASE_COLUMNS,
};
use crate::incidents::{decode_events, EventRowRead, EVENT_COLUMNS};
use crate::shared::{now, to_millis, to_u32, unknown_incident};
use crate::signals::{decode_state, StateRow, STATE_COLUMNS};
use crate::{NewEvent, Result, SourceState};

const INSTANCE_COLUMNS: &str = "id, listen, started_at, seen_at, config";

/// Refuses the write `tx` is about to make unless `fence` holds its lease now. The caller
/// began `tx` with `BEGIN IMMEDIATE`, so no claim can change the lease before it commits.
pub(super) async fn hold_fence(tx: &mut SqliteConnection, fence: &Fence) -> Result<()> {
    check_fence(fence)?;
    let held: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM leases
         WHERE name = ? AND holder = ? AND generation = ? AND expires_at > ?",
    )
    .bind(&fence.lease)
    .bind(&fence.holder)
    .bind(fence.generation)
    .bind(to_millis(now()))
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_err)?;
    held.map(|_| ()).ok_or_else(|| fenced(fence))
}

#[async_trait]
impl ClusterStore for SqliteStore {
    async fn claim_leases(
        &self,
        names: &[String],
        holder: &str,
        ttl: Duration,
    ) -> Result<Vec<Lease>> {
        let ttl = ttl_millis(ttl)?;
        let names = lease_names(names, holder)?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let at = to_millis(now());
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let mut held = Vec::with_capacity(names.len());
        for name in names {
            // New: generation 1. Held by `holder` and live: renewed, same generation. Expired
            // (whoever held it): taken, generation + 1. Live and someone else's: untouched,
            // and then RETURNING gives no row.
            let row: Option<LeaseRow<i64>> = sqlx::query_as(&format!(
                "INSERT INTO leases (name, holder, generation, expires_at) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT (name) DO UPDATE SET
                     holder = excluded.holder,
                     generation = CASE
                         WHEN leases.holder = excluded.holder AND leases.expires_at > ?4
                         THEN leases.generation ELSE leases.generation + 1 END,
                     expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at <= ?4
                 RETURNING {LEASE_COLUMNS}"
            ))
            .bind(name)
            .bind(holder)
            .bind(at + ttl)
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
            if let Some(row) = row {
                held.push(decode_lease(row)?);
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(by_name(held))
    }

    async fn release_leases(&self, names: &[String], holder: &str) -> Result<()> {
        let names = lease_names(names, holder)?;
        let at = to_millis(now());
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        for name in names {
            // Only a live lease is cut short; an expired one keeps its (earlier) end.
            sqlx::query(
                "UPDATE leases SET expires_at = ?1
                 WHERE name = ?2 AND holder = ?3 AND expires_at > ?1",
            )
            .bind(at)
            .bind(name)
            .bind(holder)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<(Lease, bool)>> {
        let rows: Vec<(String, String, i64, i64, bool)> = sqlx::query_as(&format!(
            "SELECT {LEASE_COLUMNS}, expires_at > ?1 FROM leases
             WHERE substr(name, 1, length(?2)) = ?2"
        ))
        .bind(to_millis(now()))
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut leases = rows
            .into_iter()
            .map(|(name, holder, generation, expires_at, live)| {
                Ok((decode_lease((name, holder, generation, expires_at))?, live))
            })
            .collect::<Result<Vec<_>>>()?;
        leases.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(leases)
    }

    async fn heartbeat_instance(&self, instance: &Instance) -> Result<()> {
        let config = encode_instance(instance)?;
        sqlx::query(
            "INSERT INTO instances (id, listen, started_at, seen_at, config)
             VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET
                 listen = excluded.listen, seen_at = excluded.seen_at, config = excluded.config",
        )
        .bind(&instance.id)
        .bind(&instance.listen)
        .bind(to_millis(instance.started_at))
        .bind(to_millis(now()))
        .bind(config)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn live_instances(&self, within: Duration) -> Result<Vec<Instance>> {
        let rows: Vec<InstanceRow<i64>> = sqlx::query_as(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE seen_at >= ?
             ORDER BY started_at, id"
        ))
        .bind(to_millis(now()) - span_millis(within))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_instance).collect()
    }

    async fn touch_instance(&self, id: &str) -> Result<bool> {
        let done = sqlx::query("UPDATE instances SET seen_at = ? WHERE id = ?")
            .bind(to_millis(now()))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn live_instance_ids(&self, within: Duration) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM instances WHERE seen_at >= ? ORDER BY started_at, id")
                .bind(to_millis(now()) - span_millis(within))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn remove_instance(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn create_incident_fenced(
        &self,
        fence: &Fence,
        events: &[NewEvent],
    ) -> Result<IncidentId> {
        self.create_incident_under(Some(fence), events).await
    }

    async fn append_incident_events_fenced(
        &self,
        fence: &Fence,
        incident: IncidentId,
        expected_last_seq: u32,
        events: &[NewEvent],
    ) -> Result<Vec<IncidentEvent>> {
        self.append_incident_events_under(Some(fence), incident, expected_last_seq, events)
            .await
    }

    async fn incident_events_after(
        &self,
        incident: IncidentId,
        after: u32,
    ) -> Result<Vec<IncidentEvent>> {
        let rows: Vec<EventRowRead<i64>> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM incident_events
             WHERE incident = ? AND seq > ? ORDER BY seq"
        ))
        .bind(incident.get())
        .bind(i64::from(after))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        if rows.is_empty() {
            let known: Option<(i64,)> = sqlx::query_as("SELECT id FROM incidents WHERE id = ?")
                .bind(incident.get())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            if known.is_none() {
                return Err(unknown_incident(incident));
            }
        }
        decode_events(rows)
    }

    async fn incident_heads(&self) -> Result<Vec<(IncidentId, u32)>> {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT id, last_seq FROM incidents ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.into_iter()
            .map(|(id, last)| Ok((IncidentId(id), to_u32(last, "last seq")?)))
            .collect()
    }

    async fn source_state(&self, key: &SourceKey) -> Result<Option<SourceState>> {
        let row: Option<StateRow<i64>> = sqlx::query_as(&format!(
            "SELECT {STATE_COLUMNS} FROM source_states WHERE kind = ? AND id = ?"
        ))
        .bind(key.kind().as_str())
        .bind(key.id())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(decode_state).transpose()
    }

    async fn source_states_of(&self, keys: &[SourceKey]) -> Result<Vec<SourceState>> {
        // One instance has no feed to follow; this serves the contract, a read per key.
        let mut states = Vec::with_capacity(keys.len());
        for key in keys {
            states.extend(self.source_state(key).await?);
        }
        Ok(states)
    }

    async fn save_heartbeat(&self, monitor: &MonitorId, at: DateTime<Utc>) -> Result<()> {
        // The latest push by its time wins, also when two arrive out of order.
        sqlx::query(
            "INSERT INTO heartbeats (monitor, at) VALUES (?, ?)
             ON CONFLICT (monitor) DO UPDATE SET at = MAX(heartbeats.at, excluded.at)",
        )
        .bind(monitor.as_str())
        .bind(to_millis(at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn heartbeats(&self) -> Result<Vec<(MonitorId, DateTime<Utc>)>> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT monitor, at FROM heartbeats ORDER BY monitor")
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.into_iter().map(decode_heartbeat).collect()
    }

    async fn changes(&self) -> Result<Option<mpsc::Receiver<Change>>> {
        // One instance per SQLite file: nobody else writes, so there is nothing to follow.
        Ok(None)
    }
}
