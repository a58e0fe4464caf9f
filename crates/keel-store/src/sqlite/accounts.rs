//! [`AccountStore`] on SQLite.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{map_err, SqliteStore};
use crate::accounts::{
    check_session, check_user, decode_session, decode_token, decode_user, unknown_user, user_taken,
    AccountStore, ApiToken, NewSession, Session, SessionRow, TokenRow, User, UserRow,
    SESSION_COLUMNS, TOKEN_COLUMNS, USER_COLUMNS,
};
use crate::shared::{now, to_millis, token_conflict, unknown_token};
use crate::{Result, StoreError};

#[async_trait]
impl AccountStore for SqliteStore {
    async fn create_token(&self, name: &str, role: &str, hash_hex: &str) -> Result<ApiToken> {
        let created_at = now();
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO api_tokens (name, role, hash, created_at)
             VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(role)
        .bind(hash_hex)
        .bind(to_millis(created_at))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match &e {
            // SQLite names the column: "UNIQUE constraint failed: api_tokens.name".
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                token_conflict(name, db.message())
            }
            _ => map_err(e),
        })?;
        Ok(ApiToken {
            id,
            name: name.to_string(),
            role: role.to_string(),
            created_at,
        })
    }

    async fn find_token(&self, hash_hex: &str) -> Result<Option<ApiToken>> {
        let row: Option<TokenRow<i64>> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE hash = ?"
        ))
        .bind(hash_hex)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(decode_token).transpose()
    }

    async fn token_list(&self) -> Result<Vec<ApiToken>> {
        let rows: Vec<TokenRow<i64>> = sqlx::query_as(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_token).collect()
    }

    async fn token_delete(&self, name: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE name = ?")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(unknown_token(name));
        }
        Ok(())
    }

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
        let row: Option<UserRow<i64>> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?"))
                .bind(name)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        row.map(decode_user).transpose()
    }

    async fn users(&self) -> Result<Vec<User>> {
        let rows: Vec<UserRow<i64>> =
            sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.into_iter().map(decode_user).collect()
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
        let row: Option<SessionRow<i64>> = sqlx::query_as(&format!(
            "SELECT {SESSION_COLUMNS}
             FROM sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ? AND s.expires_at > ?"
        ))
        .bind(token_hash)
        .bind(to_millis(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(|row| decode_session(token_hash, row)).transpose()
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
