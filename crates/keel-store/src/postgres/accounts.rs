//! [`AccountStore`] on PostgreSQL.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{map_err, PgStore};
use crate::accounts::{
    check_session, check_user, unknown_user, user_taken, AccountStore, NewSession, Session, User,
};
use crate::shared::{now, truncate_to_millis};
use crate::{Result, StoreError};

type UserRow = (i64, String, String, String, DateTime<Utc>);

fn user(row: UserRow) -> User {
    let (id, name, role, password_hash, created_at) = row;
    User {
        id,
        name,
        role,
        password_hash,
        created_at,
    }
}

const USER_COLUMNS: &str = "id, name, role, password_hash, created_at";

#[async_trait]
impl AccountStore for PgStore {
    async fn create_user(&self, name: &str, role: &str, password_hash: &str) -> Result<User> {
        check_user(name, role, password_hash)?;
        let created_at = truncate_to_millis(now());
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO users (name, role, password_hash, created_at)
             VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(password_hash)
        .bind(created_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => user_taken(name),
            _ => map_err(e),
        })?;
        Ok(User {
            id,
            name: name.to_string(),
            role: role.to_string(),
            password_hash: password_hash.to_string(),
            created_at,
        })
    }

    async fn user_by_name(&self, name: &str) -> Result<Option<User>> {
        let row: Option<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"))
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(row.map(user))
    }

    async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(rows.into_iter().map(user).collect())
    }

    async fn delete_user(&self, name: &str) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // ON DELETE CASCADE ends the sessions; said again so the intent survives a schema edit.
        sqlx::query("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = $1)")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let done = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(unknown_user(name));
        }
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn create_session(&self, new: &NewSession) -> Result<()> {
        check_session(new)?;
        let done = sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at, last_seen)
             SELECT $1, id, $2, $3, $4, $3 FROM users WHERE id = $5",
        )
        .bind(&new.token_hash)
        .bind(&new.csrf_token)
        .bind(truncate_to_millis(new.created_at))
        .bind(truncate_to_millis(new.expires_at))
        .bind(new.user_id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!(
                "no user with id {}",
                new.user_id
            )));
        }
        Ok(())
    }

    async fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        #[allow(clippy::type_complexity)]
        let row: Option<(
            String,
            DateTime<Utc>,
            DateTime<Utc>,
            DateTime<Utc>,
            i64,
            DateTime<Utc>,
            String,
            String,
            String,
        )> = sqlx::query_as(
            "SELECT s.csrf_token, s.created_at, s.expires_at, s.last_seen,
                    u.id, u.created_at, u.name, u.role, u.password_hash
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.map(
            |(csrf, created, expires, seen, uid, ucreated, name, role, hash)| Session {
                token_hash: token_hash.to_string(),
                user: user((uid, name, role, hash, ucreated)),
                csrf_token: csrf,
                created_at: created,
                expires_at: expires,
                last_seen: seen,
            },
        ))
    }

    async fn touch_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query(
            "UPDATE sessions SET last_seen = GREATEST(last_seen, $1) WHERE token_hash = $2",
        )
        .bind(truncate_to_millis(now))
        .bind(token_hash)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn prune_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
