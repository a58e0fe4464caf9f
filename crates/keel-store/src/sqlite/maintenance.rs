//! [`MaintenanceStore`] on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keel_core::public::{Maintenance, MaintenanceStatus};

use super::{map_err, SqliteStore};
use crate::maintenance::{
    decode_maintenance, encode_maintenance, maintenance_id, maintenance_status_str,
    unknown_maintenance, MaintenanceRowRead, MaintenanceStore, NewMaintenance, MAINTENANCE_COLUMNS,
};
use crate::shared::to_millis;
use crate::Result;

#[async_trait]
impl MaintenanceStore for SqliteStore {
    async fn create_maintenance(
        &self,
        new: &NewMaintenance,
        now: DateTime<Utc>,
    ) -> Result<Maintenance> {
        let row = encode_maintenance(new)?;
        let at = to_millis(now);
        let found: MaintenanceRowRead<i64> = sqlx::query_as(&format!(
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
        decode_maintenance(found)
    }

    async fn maintenances(&self) -> Result<Vec<Maintenance>> {
        let rows: Vec<MaintenanceRowRead<i64>> = sqlx::query_as(&format!(
            "SELECT {MAINTENANCE_COLUMNS} FROM maintenances ORDER BY scheduled_for, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_maintenance).collect()
    }

    async fn set_maintenance_status(
        &self,
        id: &str,
        status: MaintenanceStatus,
        now: DateTime<Utc>,
    ) -> Result<Maintenance> {
        let id = maintenance_id(id)?;
        let found: Option<MaintenanceRowRead<i64>> = sqlx::query_as(&format!(
            "UPDATE maintenances SET status = ?, updated_at = ? WHERE id = ?
             RETURNING {MAINTENANCE_COLUMNS}"
        ))
        .bind(maintenance_status_str(status))
        .bind(to_millis(now))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_maintenance(found.ok_or_else(|| unknown_maintenance(id))?)
    }
}
