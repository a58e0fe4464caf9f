//! [`IncidentStore`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keel_core::incident::{IncidentEvent, IncidentId};
use sqlx::postgres::PgConnection;

use super::{cluster, map_err, PgStore};
use crate::cluster::{Change, Fence};
use crate::incidents::{decode_events, EventRowRead, IncidentStore, EVENT_COLUMNS};
use crate::shared::{encode_events, incident_changed, unknown_incident, EventRow};
use crate::{NewEvent, Result};

/// Key of the advisory lock that orders incident creation ("keel_inc" in ASCII).
const INCIDENT_LOCK: i64 = 0x6b65_656c_5f69_6e63;

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
        .bind(incident.get())
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
    /// [`IncidentStore::create_incident`], and with a fence [`crate::ClusterStore::create_incident_fenced`]:
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
        let id = IncidentId(id);
        insert_events(&mut tx, id, &rows).await?;
        cluster::notify(&mut tx, &self.channel, &Change::Incident { id, seq: last }).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    /// [`IncidentStore::append_incident_events`], and with a fence
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
                .bind(incident.get())
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
            .bind(incident.get())
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
impl IncidentStore for PgStore {
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
        let rows: Vec<EventRowRead<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM incident_events WHERE incident = $1 ORDER BY seq"
        ))
        .bind(incident.get())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        if rows.is_empty() {
            return Err(unknown_incident(incident));
        }
        decode_events(rows)
    }

    async fn all_incident_events(&self) -> Result<Vec<IncidentEvent>> {
        let rows: Vec<EventRowRead<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM incident_events ORDER BY incident, seq"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        decode_events(rows)
    }
}
