//! [`TeamStore`] on SQLite: overrides are checked and inserted under `BEGIN IMMEDIATE`, so
//! two writers cannot both pass the overlap check.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{map_err, SqliteStore};
use crate::shared::to_millis;
use crate::team::{
    check_new_override, decode_override, new_secret, overlap, unknown_override, NewOverride,
    OverrideRow, TeamStore, OVERRIDE_COLUMNS,
};
use crate::Result;
use keel_core::oncall::Override;

#[async_trait]
impl TeamStore for SqliteStore {
    async fn create_override(&self, new: &NewOverride) -> Result<Override> {
        check_new_override(new)?;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let clash: Option<OverrideRow<i64>> = sqlx::query_as(&format!(
            "SELECT {OVERRIDE_COLUMNS} FROM oncall_overrides
             WHERE schedule = ? AND start_at < ? AND end_at > ?
             ORDER BY start_at, id LIMIT 1"
        ))
        .bind(&new.schedule)
        .bind(to_millis(new.end))
        .bind(to_millis(new.start))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(row) = clash {
            return Err(overlap(&decode_override(row)?));
        }
        let row: OverrideRow<i64> = sqlx::query_as(&format!(
            "INSERT INTO oncall_overrides (schedule, person, start_at, end_at, created_by, created_at)
             VALUES (?, ?, ?, ?, ?, ?) RETURNING {OVERRIDE_COLUMNS}"
        ))
        .bind(&new.schedule)
        .bind(&new.person)
        .bind(to_millis(new.start))
        .bind(to_millis(new.end))
        .bind(&new.created_by)
        .bind(to_millis(new.created_at))
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        decode_override(row)
    }

    async fn overrides(
        &self,
        schedule: Option<&str>,
        ending_after: DateTime<Utc>,
    ) -> Result<Vec<Override>> {
        let rows: Vec<OverrideRow<i64>> = sqlx::query_as(&format!(
            "SELECT {OVERRIDE_COLUMNS} FROM oncall_overrides
             WHERE end_at > ? AND (? IS NULL OR schedule = ?)
             ORDER BY start_at, id"
        ))
        .bind(to_millis(ending_after))
        .bind(schedule)
        .bind(schedule)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_override).collect()
    }

    async fn delete_override(&self, id: i64) -> Result<Override> {
        let row: Option<OverrideRow<i64>> = sqlx::query_as(&format!(
            "DELETE FROM oncall_overrides WHERE id = ? RETURNING {OVERRIDE_COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(decode_override)
            .unwrap_or_else(|| Err(unknown_override(id)))
    }

    async fn shared_secret(&self, name: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO shared_secrets (name, value, created_at) VALUES (?, ?, ?)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(new_secret())
        .bind(to_millis(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let (value,): (String,) = sqlx::query_as("SELECT value FROM shared_secrets WHERE name = ?")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(value)
    }
}
