//! [`IncidentStore`] on SQLite.

use async_trait::async_trait;
use keel_core::incident::{IncidentEvent, IncidentId};

use super::{cluster, map_err, SqliteStore};
use crate::cluster::Fence;
use crate::incidents::{decode_events, EventRowRead, IncidentStore, EVENT_COLUMNS};
use crate::shared::{encode_events, incident_changed, to_millis, unknown_incident, EventRow};
use crate::{NewEvent, Result};

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
        .bind(incident.get())
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
    /// [`IncidentStore::create_incident`], and with a fence [`crate::ClusterStore::create_incident_fenced`]:
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
        let id = IncidentId(id);
        insert_events(&mut tx, id, &rows).await?;
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
        sqlx::query("UPDATE incidents SET last_seq = ? WHERE id = ?")
            .bind(i64::from(last))
            .bind(incident.get())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        insert_events(&mut tx, incident, &rows).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(rows.into_iter().map(|r| r.stored(incident)).collect())
    }
}

#[async_trait]
impl IncidentStore for SqliteStore {
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
        let rows: Vec<EventRowRead<i64>> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM incident_events WHERE incident = ? ORDER BY seq"
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
        let rows: Vec<EventRowRead<i64>> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM incident_events ORDER BY incident, seq"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        decode_events(rows)
    }
}
