//! [`AccountStore`] on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{map_err, SqliteStore};
use crate::accounts::{
    check_session, check_user, unknown_user, user_taken, AccountStore, NewSession, Session, User,
};
use crate::shared::{from_millis, now, to_millis};
use crate::{Result, StoreError};

type UserRow = (i64, String, String, String, i64);

fn user(row: UserRow) -> Result<User> {
    let (id, name, role, password_hash, created_at) = row;
    Ok(User {
        id,
        name,
        role,
        password_hash,
        created_at: from_millis(created_at)?,
    })
}

const USER_COLUMNS: &str = "id, name, role, password_hash, created_at";

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_user(&self, name: &str, role: &str, password_hash: &str) -> Result<User> {
        check_user(name, role, password_hash)?;
        let created_at = now();
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO users (name, role, password_hash, created_at)
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(password_hash)
        .bind(to_millis(created_at))
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
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?"))
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        row.map(user).transpose()
    }

    async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.into_iter().map(user).collect()
    }

    async fn delete_user(&self, name: &str) -> Result<()> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        // Explicit as well as ON DELETE CASCADE: a connection opened without foreign keys
        // (an operator's sqlite3 shell) must not leave a signed-in session behind.
        sqlx::query("DELETE FROM sessions WHERE user_id IN (SELECT id FROM users WHERE name = ?)")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let done = sqlx::query("DELETE FROM users WHERE name = ?")
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
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at, last_seen)
             SELECT ?, id, ?, ?, ?, ? FROM users WHERE id = ?",
        )
        .bind(&new.token_hash)
        .bind(&new.csrf_token)
        .bind(to_millis(new.created_at))
        .bind(to_millis(new.expires_at))
        .bind(to_millis(new.created_at))
        .bind(new.user_id)
        .execute(&self.pool)
        .await
        .map_err(map_err)
        .and_then(|done| match done.rows_affected() {
            0 => Err(StoreError::NotFound(format!("no user with id {}", new.user_id))),
            _ => Ok(()),
        })
    }

    async fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>> {
        #[allow(clippy::type_complexity)]
        let row: Option<(String, i64, i64, i64, i64, i64, String, String, String)> =
            sqlx::query_as(
                "SELECT s.csrf_token, s.created_at, s.expires_at, s.last_seen,
                        u.id, u.created_at, u.name, u.role, u.password_hash
                 FROM sessions s JOIN users u ON u.id = s.user_id
                 WHERE s.token_hash = ? AND s.expires_at > ?",
            )
            .bind(token_hash)
            .bind(to_millis(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.map(
            |(csrf, created, expires, seen, uid, ucreated, name, role, hash)| {
                Ok(Session {
                    token_hash: token_hash.to_string(),
                    user: user((uid, name, role, hash, ucreated))?,
                    csrf_token: csrf,
                    created_at: from_millis(created)?,
                    expires_at: from_millis(expires)?,
                    last_seen: from_millis(seen)?,
                })
            },
        )
        .transpose()
    }

    async fn touch_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen = MAX(last_seen, ?) WHERE token_hash = ?")
            .bind(to_millis(now))
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = ?")
            .bind(token_hash)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn prune_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= ?")
            .bind(to_millis(now))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
