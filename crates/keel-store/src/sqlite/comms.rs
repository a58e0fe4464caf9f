//! [`OutboxStore`] on SQLite.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{map_err, SqliteStore};
use crate::comms::{
    claimed, counts_from, decode_outbox, decode_subscriber, encode_outbox, encode_subscriber,
    lease_end, no_nul, subscriber_conflict, unknown_outbox_item, unknown_subscriber,
    unknown_token_hash, Finish, OutboxRowRead, OutboxStore, SubscriberRowRead, OUTBOX_COLUMNS,
    SUBSCRIBER_COLUMNS,
};
use crate::shared::{now, to_millis};
use crate::{NewOutboxItem, NewSubscriber, OutboxCounts, OutboxItem, Result, Subscriber};

impl SqliteStore {
    /// `NotFound` unless an outbox row with `id` exists: what an update that changed nothing
    /// tells apart from "already finished".
    async fn outbox_exists(&self, id: i64) -> Result<()> {
        let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM outbox WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        found.map(|_| ()).ok_or_else(|| unknown_outbox_item(id))
    }

    /// Moves an item as `finish` says. An update that changed nothing is a finished item
    /// (nothing to do) or an unknown one (`NotFound`).
    async fn finish(&self, id: i64, finish: Finish) -> Result<()> {
        let done = sqlx::query(&format!(
            "UPDATE outbox SET status = ?, finished_at = COALESCE(?, finished_at),
                 next_attempt_at = COALESCE(?, next_attempt_at),
                 last_error = COALESCE(?, last_error), lease_until = NULL
             WHERE id = ? AND {}",
            finish.applies_to
        ))
        .bind(finish.to.as_str())
        .bind(finish.finished_at.map(to_millis))
        .bind(finish.next_attempt_at.map(to_millis))
        .bind(finish.error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            self.outbox_exists(id).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn create_subscriber(&self, new: &NewSubscriber) -> Result<Subscriber> {
        let row = encode_subscriber(new)?;
        let found: SubscriberRowRead<i64> = sqlx::query_as(&format!(
            "INSERT INTO subscribers (kind, address, components, locale, secret, confirmed,
                 confirm_hash, unsubscribe_hash, created_at, confirmed_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING {SUBSCRIBER_COLUMNS}"
        ))
        .bind(row.kind)
        .bind(&row.address)
        .bind(&row.components_json)
        .bind(&row.locale)
        .bind(&row.secret)
        .bind(row.confirmed)
        .bind(&row.confirm_hash)
        .bind(&row.unsubscribe_hash)
        .bind(to_millis(row.created_at))
        .bind(row.confirmed_at.map(to_millis))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match &e {
            // SQLite names the columns: "UNIQUE constraint failed: subscribers.kind, subscribers.address".
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                subscriber_conflict(&row, db.message())
            }
            _ => map_err(e),
        })?;
        decode_subscriber(found)
    }

    async fn subscriber(&self, id: i64) -> Result<Subscriber> {
        let found: Option<SubscriberRowRead<i64>> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_subscriber(found.ok_or_else(|| unknown_subscriber(id))?)
    }

    async fn confirm_subscriber(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Subscriber> {
        let found: Option<SubscriberRowRead<i64>> = sqlx::query_as(&format!(
            "UPDATE subscribers SET confirmed = 1, confirmed_at = COALESCE(confirmed_at, ?)
             WHERE confirm_hash = ? RETURNING {SUBSCRIBER_COLUMNS}"
        ))
        .bind(to_millis(now))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_subscriber(found.ok_or_else(|| unknown_token_hash("confirm"))?)
    }

    async fn unsubscribe(&self, token_hash: &str) -> Result<Subscriber> {
        let found: Option<SubscriberRowRead<i64>> = sqlx::query_as(&format!(
            "DELETE FROM subscribers WHERE unsubscribe_hash = ? RETURNING {SUBSCRIBER_COLUMNS}"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_subscriber(found.ok_or_else(|| unknown_token_hash("unsubscribe"))?)
    }

    async fn subscribers(&self, confirmed_only: bool) -> Result<Vec<Subscriber>> {
        let rows: Vec<SubscriberRowRead<i64>> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers
             WHERE confirmed = 1 OR NOT ? ORDER BY id"
        ))
        .bind(confirmed_only)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_subscriber).collect()
    }

    async fn enqueue(&self, items: &[NewOutboxItem]) -> Result<u64> {
        let rows = encode_outbox(items)?;
        if rows.is_empty() {
            return Ok(0);
        }
        let created_at = to_millis(now());
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let mut inserted = 0;
        for r in &rows {
            let done = sqlx::query(
                "INSERT INTO outbox (idempotency_key, channel, target, subscriber_id, payload,
                     status, attempts, next_attempt_at, created_at)
                 VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)
                 ON CONFLICT (idempotency_key) DO NOTHING",
            )
            .bind(r.key)
            .bind(r.channel)
            .bind(r.target)
            .bind(r.subscriber_id)
            .bind(&r.payload)
            .bind(to_millis(r.next_attempt_at))
            .bind(created_at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            inserted += done.rows_affected();
        }
        tx.commit().await.map_err(map_err)?;
        Ok(inserted)
    }

    async fn claim_outbox(
        &self,
        worker: &str,
        limit: u32,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<OutboxItem>> {
        no_nul("worker name", worker)?;
        let until = lease_end(now, lease)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        // BEGIN IMMEDIATE takes the write lock before the select inside the update reads, so
        // two claimers queue on it and the second sees the first one's claims.
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let rows: Vec<OutboxRowRead<i64>> = sqlx::query_as(&format!(
            "UPDATE outbox
             SET status = 'sending', claimed_by = ?1, lease_until = ?2, attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM outbox
                 WHERE (status = 'pending' AND next_attempt_at <= ?3)
                    OR (status = 'sending' AND lease_until <= ?3)
                 ORDER BY next_attempt_at, id
                 LIMIT ?4)
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(worker)
        .bind(to_millis(until))
        .bind(to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        claimed(rows)
    }

    async fn outbox_sent(&self, id: i64, now: DateTime<Utc>) -> Result<()> {
        self.finish(id, Finish::sent(now)).await
    }

    async fn outbox_retry(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<()> {
        self.finish(id, Finish::retry(error, next_attempt_at)).await
    }

    async fn outbox_dead(&self, id: i64, error: &str, now: DateTime<Utc>) -> Result<()> {
        self.finish(id, Finish::dead(error, now)).await
    }

    async fn dead_letters(&self, limit: u32) -> Result<Vec<OutboxItem>> {
        let rows: Vec<OutboxRowRead<i64>> = sqlx::query_as(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'dead'
             ORDER BY finished_at DESC, id DESC LIMIT ?"
        ))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_outbox).collect()
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM outbox GROUP BY status")
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        counts_from(rows)
    }

    async fn prune_outbox(&self, sent_before: DateTime<Utc>) -> Result<u64> {
        let done = sqlx::query("DELETE FROM outbox WHERE status = 'sent' AND finished_at < ?")
            .bind(to_millis(sent_before))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
