//! [`TeamStore`] on PostgreSQL: an override is checked and inserted under a transaction-level
//! advisory lock of its schedule, so instances adding overlapping overrides at once cannot
//! both pass the check.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{map_err, PgStore};
use crate::shared::truncate_to_millis;
use crate::team::{
    check_new_override, decode_override, new_secret, overlap, unknown_override, NewOverride,
    OverrideRow, TeamStore, OVERRIDE_COLUMNS,
};
use crate::Result;
use keel_core::oncall::Override;

#[async_trait]
impl TeamStore for PgStore {
    async fn create_override(&self, new: &NewOverride) -> Result<Override> {
        check_new_override(new)?;
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // One lock per schedule ("keel_override:" + id hashed by the server), held until commit.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('keel_override:' || $1, 0))")
            .bind(&new.schedule)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let clash: Option<OverrideRow<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {OVERRIDE_COLUMNS} FROM oncall_overrides
             WHERE schedule = $1 AND start_at < $2 AND end_at > $3
             ORDER BY start_at, id LIMIT 1"
        ))
        .bind(&new.schedule)
        .bind(truncate_to_millis(new.end))
        .bind(truncate_to_millis(new.start))
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if let Some(row) = clash {
            return Err(overlap(&decode_override(row)?));
        }
        let row: OverrideRow<DateTime<Utc>> = sqlx::query_as(&format!(
            "INSERT INTO oncall_overrides (schedule, person, start_at, end_at, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {OVERRIDE_COLUMNS}"
        ))
        .bind(&new.schedule)
        .bind(&new.person)
        .bind(truncate_to_millis(new.start))
        .bind(truncate_to_millis(new.end))
        .bind(&new.created_by)
        .bind(truncate_to_millis(new.created_at))
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
        let rows: Vec<OverrideRow<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {OVERRIDE_COLUMNS} FROM oncall_overrides
             WHERE end_at > $1 AND ($2::TEXT IS NULL OR schedule = $2)
             ORDER BY start_at, id"
        ))
        .bind(ending_after)
        .bind(schedule)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_override).collect()
    }

    async fn delete_override(&self, id: i64) -> Result<Override> {
        let row: Option<OverrideRow<DateTime<Utc>>> = sqlx::query_as(&format!(
            "DELETE FROM oncall_overrides WHERE id = $1 RETURNING {OVERRIDE_COLUMNS}"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_override(row.ok_or_else(|| unknown_override(id))?)
    }

    async fn shared_secret(&self, name: &str) -> Result<String> {
        sqlx::query(
            "INSERT INTO shared_secrets (name, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(new_secret())
        .bind(truncate_to_millis(Utc::now()))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        let (value,): (String,) =
            sqlx::query_as("SELECT value FROM shared_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(value)
    }
}
