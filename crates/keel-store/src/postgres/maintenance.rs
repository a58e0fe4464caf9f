//! [`MaintenanceStore`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keel_core::public::{Maintenance, MaintenanceStatus};

use super::{map_err, PgStore};
use crate::maintenance::{
    decode_maintenance, encode_maintenance, maintenance_id, maintenance_status_str,
    unknown_maintenance, MaintenanceRowRead, MaintenanceStore, NewMaintenance, MAINTENANCE_COLUMNS,
};
use crate::shared::truncate_to_millis;
use crate::Result;

#[async_trait]
impl MaintenanceStore for PgStore {
    async fn create_maintenance(
        &self,
        new: &NewMaintenance,
        now: DateTime<Utc>,
    ) -> Result<Maintenance> {
        let row = encode_maintenance(new)?;
        let at = truncate_to_millis(now);
        let found: MaintenanceRowRead<DateTime<Utc>> = sqlx::query_as(&format!(
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
        decode_maintenance(found)
    }

    async fn maintenances(&self) -> Result<Vec<Maintenance>> {
        let rows: Vec<MaintenanceRowRead<DateTime<Utc>>> = sqlx::query_as(&format!(
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
        let found: Option<MaintenanceRowRead<DateTime<Utc>>> = sqlx::query_as(&format!(
            "UPDATE maintenances SET status = $1, updated_at = $2 WHERE id = $3
             RETURNING {MAINTENANCE_COLUMNS}"
        ))
        .bind(maintenance_status_str(status))
        .bind(truncate_to_millis(now))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_maintenance(found.ok_or_else(|| unknown_maintenance(id))?)
    }
}
