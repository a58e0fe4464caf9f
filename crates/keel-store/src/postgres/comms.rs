//! [`OutboxStore`] on PostgreSQL.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{map_err, PgStore};
use crate::comms::{
    claimed, counts_from, decode_outbox, decode_subscriber, encode_outbox, encode_subscriber,
    lease_end, no_nul, subscriber_conflict, unknown_outbox_item, unknown_subscriber,
    unknown_token_hash, Finish, OutboxRowRead, OutboxStore, SubscriberRowRead, OUTBOX_COLUMNS,
    SUBSCRIBER_COLUMNS,
};
use crate::shared::{now, truncate_to_millis};
use crate::{NewOutboxItem, NewSubscriber, OutboxCounts, OutboxItem, Result, Subscriber};

impl PgStore {
    /// `NotFound` unless an outbox row with `id` exists: what an update that changed nothing
    /// tells apart from "already finished".
    async fn outbox_exists(&self, id: i64) -> Result<()> {
        let found: Option<(i64,)> = sqlx::query_as("SELECT id FROM outbox WHERE id = $1")
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
            "UPDATE outbox SET status = $1, finished_at = COALESCE($2, finished_at),
                 next_attempt_at = COALESCE($3, next_attempt_at),
                 last_error = COALESCE($4, last_error), lease_until = NULL
             WHERE id = $5 AND {}",
            finish.applies_to
        ))
        .bind(finish.to.as_str())
        .bind(finish.finished_at)
        .bind(finish.next_attempt_at)
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
impl OutboxStore for PgStore {
    async fn create_subscriber(&self, new: &NewSubscriber) -> Result<Subscriber> {
        let row = encode_subscriber(new)?;
        let found: SubscriberRowRead<DateTime<Utc>> = sqlx::query_as(&format!(
            "INSERT INTO subscribers (kind, address, components, locale, secret, confirmed,
                 confirm_hash, unsubscribe_hash, created_at, confirmed_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {SUBSCRIBER_COLUMNS}"
        ))
        .bind(row.kind)
        .bind(&row.address)
        .bind(&row.components_json)
        .bind(&row.locale)
        .bind(&row.secret)
        .bind(row.confirmed)
        .bind(&row.confirm_hash)
        .bind(&row.unsubscribe_hash)
        .bind(row.created_at)
        .bind(row.confirmed_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                subscriber_conflict(&row, db.constraint().unwrap_or_else(|| db.message()))
            }
            _ => map_err(e),
        })?;
        decode_subscriber(found)
    }

    async fn subscriber(&self, id: i64) -> Result<Subscriber> {
        let found: Option<SubscriberRowRead<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_subscriber(found.ok_or_else(|| unknown_subscriber(id))?)
    }

    async fn confirm_subscriber(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Subscriber> {
        let found: Option<SubscriberRowRead<DateTime<Utc>>> = sqlx::query_as(&format!(
            "UPDATE subscribers SET confirmed = TRUE, confirmed_at = COALESCE(confirmed_at, $1)
             WHERE confirm_hash = $2 RETURNING {SUBSCRIBER_COLUMNS}"
        ))
        .bind(truncate_to_millis(now))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_subscriber(found.ok_or_else(|| unknown_token_hash("confirm"))?)
    }

    async fn unsubscribe(&self, token_hash: &str) -> Result<Subscriber> {
        let found: Option<SubscriberRowRead<DateTime<Utc>>> = sqlx::query_as(&format!(
            "DELETE FROM subscribers WHERE unsubscribe_hash = $1 RETURNING {SUBSCRIBER_COLUMNS}"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        decode_subscriber(found.ok_or_else(|| unknown_token_hash("unsubscribe"))?)
    }

    async fn subscribers(&self, confirmed_only: bool) -> Result<Vec<Subscriber>> {
        let rows: Vec<SubscriberRowRead<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers
             WHERE confirmed OR NOT $1 ORDER BY id"
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
        // One statement over arrays, whatever the fan-out; `rows` is sorted by key, so two
        // instances enqueueing overlapping batches wait on each other in one order.
        let keys: Vec<&str> = rows.iter().map(|r| r.key).collect();
        let channels: Vec<&str> = rows.iter().map(|r| r.channel).collect();
        let targets: Vec<&str> = rows.iter().map(|r| r.target).collect();
        let subscriber_ids: Vec<Option<i64>> = rows.iter().map(|r| r.subscriber_id).collect();
        let payloads: Vec<&str> = rows.iter().map(|r| r.payload.as_str()).collect();
        let due: Vec<DateTime<Utc>> = rows.iter().map(|r| r.next_attempt_at).collect();
        let done = sqlx::query(
            "INSERT INTO outbox (idempotency_key, channel, target, subscriber_id, payload,
                 status, attempts, next_attempt_at, created_at)
             SELECT k, c, t, s, p, 'pending', 0, d, $7
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                         $6::timestamptz[]) AS u (k, c, t, s, p, d)
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&keys)
        .bind(&channels)
        .bind(&targets)
        .bind(&subscriber_ids)
        .bind(&payloads)
        .bind(&due)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
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
        // SKIP LOCKED passes over rows another claim holds instead of waiting for it; a row
        // that claim committed meanwhile is re-checked against the WHERE (READ COMMITTED
        // re-evaluates it on the new version) and dropped, since it is now sending with a
        // lease in the future. So no row goes to two claimers while its lease runs. The pick
        // is a CTE because a CTE that locks rows is always run exactly once, whatever plan
        // the UPDATE gets.
        let rows: Vec<OutboxRowRead<DateTime<Utc>>> = sqlx::query_as(&format!(
            "WITH picked AS (
                 SELECT id AS picked_id FROM outbox
                 WHERE (status = 'pending' AND next_attempt_at <= $3)
                    OR (status = 'sending' AND lease_until <= $3)
                 ORDER BY next_attempt_at, id
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             UPDATE outbox
             SET status = 'sending', claimed_by = $1, lease_until = $2, attempts = attempts + 1
             FROM picked WHERE id = picked_id
             RETURNING {OUTBOX_COLUMNS}"
        ))
        .bind(worker)
        .bind(until)
        .bind(truncate_to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
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
        let rows: Vec<OutboxRowRead<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE status = 'dead'
             ORDER BY finished_at DESC, id DESC LIMIT $1"
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
        let done = sqlx::query("DELETE FROM outbox WHERE status = 'sent' AND finished_at < $1")
            .bind(sent_before)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }
}
