//! What Keel stores to tell people about outages: subscribers and the outbox of
//! notifications ([`OutboxStore`]). Scheduled maintenances are in [`crate::maintenance`].
//!
//! The outbox is the durability promise of the notifications: every message is a row before
//! anything is sent, workers *claim* due rows under a lease, and a worker that dies mid-send
//! (SIGKILL, power loss) leaves rows whose lease simply runs out, so another claim picks them
//! up again. Delivery is therefore at least once; the idempotency key travels with every
//! message so a receiver can drop the rare repeat.
//!
//! Also here: the checks and encodings both backends share for these rows, so SQLite and
//! PostgreSQL accept and refuse exactly the same input.

use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use keel_core::ComponentId;
use sha2::{Digest, Sha256};

use crate::shared::{parse_stored, truncate_to_millis, Stamp};
use crate::{Result, StoreError};

/// The SHA-256 (lower-case hex) of a secret token: how every token Keel keeps is stored and
/// looked up — API tokens (keel-server's bearer authentication), console sessions, and
/// subscribers' confirm and unsubscribe tokens. The token itself is only ever with its holder
/// (the API client, the browser's cookie, the link sent to the subscriber).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// How a subscriber is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubscriberKind {
    Email,
    Webhook,
}

impl SubscriberKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriberKind::Email => "email",
            SubscriberKind::Webhook => "webhook",
        }
    }
}

impl fmt::Display for SubscriberKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SubscriberKind {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "email" => Ok(SubscriberKind::Email),
            "webhook" => Ok(SubscriberKind::Webhook),
            other => Err(format!(
                "unknown subscriber kind {other:?} (expected email or webhook)"
            )),
        }
    }
}

/// A subscriber to store. The caller makes the tokens, sends them in links, and hands the
/// store only their hashes ([`hash_token`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubscriber {
    pub kind: SubscriberKind,
    /// An email address (stored trimmed and lower-cased, so `A@X.com` and `a@x.com` are one
    /// subscriber) or a webhook URL (stored as given).
    pub address: String,
    /// Component ids the subscriber follows; empty means all.
    pub components: Vec<ComponentId>,
    /// Locale of the messages ("en", "ja").
    pub locale: String,
    /// The key webhook bodies are signed with (HMAC-SHA256). Stored as given, since signing
    /// needs the key itself. Required for webhooks; optional for email (e.g. to derive a
    /// per-subscriber unsubscribe token from it).
    pub secret: Option<String>,
    /// Whether the subscriber is confirmed already (no double opt-in needed, e.g. webhooks).
    pub confirmed: bool,
    /// SHA-256 hex of the confirm token; required while `confirmed` is false, else the
    /// subscriber could never be confirmed.
    pub confirm_token_hash: Option<String>,
    /// SHA-256 hex of the unsubscribe token.
    pub unsubscribe_token_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A stored subscriber. Token hashes are never handed back.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscriber {
    pub id: i64,
    pub kind: SubscriberKind,
    pub address: String,
    /// Empty means all components.
    pub components: Vec<ComponentId>,
    pub locale: String,
    pub confirmed: bool,
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

impl Subscriber {
    /// Whether an update touching `components` concerns this subscriber.
    pub fn follows_any<S: AsRef<str>>(&self, components: &[S]) -> bool {
        self.components.is_empty()
            || components.iter().any(|c| {
                self.components
                    .iter()
                    .any(|mine| mine.as_str() == c.as_ref())
            })
    }
}

/// Where an outbox row is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxStatus {
    /// Waiting for `next_attempt_at` (new, or after a failed attempt).
    Pending,
    /// Claimed by a worker until `lease_until`; claimable again once that has passed.
    Sending,
    Sent,
    /// Out of retries; listed by `dead_letters`.
    Dead,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sending => "sending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Dead => "dead",
        }
    }
}

impl fmt::Display for OutboxStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutboxStatus {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "pending" => Ok(OutboxStatus::Pending),
            "sending" => Ok(OutboxStatus::Sending),
            "sent" => Ok(OutboxStatus::Sent),
            "dead" => Ok(OutboxStatus::Dead),
            other => Err(format!("unknown outbox status {other:?}")),
        }
    }
}

/// A notification to store before it is sent.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOutboxItem {
    /// Unique per (update, recipient); a second item with the same key is ignored, so
    /// enqueueing a fan-out twice (e.g. after a restart) sends nothing twice.
    pub idempotency_key: String,
    /// Which notifier sends it ("webhook", "email", "slack", …); the store does not interpret it.
    pub channel: String,
    /// Where it goes (URL, address, channel name); not interpreted by the store either.
    pub target: String,
    /// The subscriber it is for, if any (responders' channels have none). Not a foreign key:
    /// a subscriber may leave while items for them wait, and the worker decides what then.
    pub subscriber_id: Option<i64>,
    /// What the notifier needs to build the message.
    pub payload: serde_json::Value,
    /// Not sent before this time (normally "now").
    pub next_attempt_at: DateTime<Utc>,
}

/// A stored notification.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub idempotency_key: String,
    pub channel: String,
    pub target: String,
    pub subscriber_id: Option<i64>,
    pub payload: serde_json::Value,
    pub status: OutboxStatus,
    /// Claims so far, the current one included: a worker killed mid-send still used an
    /// attempt, so a message that crashes its sender cannot loop forever.
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The worker holding (or that last held) the claim.
    pub claimed_by: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// When it was sent or given up on.
    pub finished_at: Option<DateTime<Utc>>,
}

/// How many outbox rows are in each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    /// Waiting, including those waiting for a retry.
    pub pending: u64,
    /// Claimed right now (or claimed by a worker that died, until the lease runs out).
    pub sending: u64,
    pub sent: u64,
    pub dead: u64,
}

/// Subscribers and the outbox: everything the notification worker reads and writes.
/// Subscribers sit with the outbox because an outbox row addresses one, and the worker checks
/// that the subscriber is still there before sending (someone who unsubscribed after the
/// fan-out was queued gets nothing more).
#[async_trait]
pub trait OutboxStore: Send + Sync {
    // --- Subscribers ------------------------------------------------------------------------

    /// Stores a subscriber (email trimmed and lower-cased). `Conflict` when the same kind and
    /// address is already subscribed (confirmed or not) or a token hash is already in use;
    /// `Invalid` for a webhook without a secret, an unconfirmed subscriber without a confirm
    /// token, a token hash that is not SHA-256 hex, an empty address or a NUL character.
    async fn create_subscriber(&self, new: &NewSubscriber) -> Result<Subscriber>;

    /// One subscriber by id; `NotFound` if there is none (e.g. it unsubscribed).
    async fn subscriber(&self, id: i64) -> Result<Subscriber>;

    /// Confirms the subscriber whose confirm token hashes to `token_hash`, at `now`.
    /// Confirming again is harmless (the first `confirmed_at` stays). `NotFound` if unknown.
    async fn confirm_subscriber(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Subscriber>;

    /// Deletes the subscriber whose unsubscribe token hashes to `token_hash` and returns what
    /// it was. `NotFound` if unknown (also on a second click of the same link). Outbox items
    /// already queued for it stay; see [`NewOutboxItem::subscriber_id`].
    async fn unsubscribe(&self, token_hash: &str) -> Result<Subscriber>;

    /// Every subscriber (only the confirmed ones if `confirmed_only`), oldest first.
    async fn subscribers(&self, confirmed_only: bool) -> Result<Vec<Subscriber>>;

    // --- Outbox -----------------------------------------------------------------------------

    /// Stores notifications as `pending`, in one transaction. An item whose idempotency key is
    /// already stored (or repeated in the batch) is ignored; returns how many were inserted,
    /// so `items.len() - inserted` were duplicates.
    async fn enqueue(&self, items: &[NewOutboxItem]) -> Result<u64>;

    /// Claims up to `limit` due items for `worker` until `now + lease`, oldest due first, and
    /// returns them as `sending` with `attempts` counted up. Due means `pending` with
    /// `next_attempt_at <= now`, or `sending` whose lease ended at or before `now` (its worker
    /// died mid-send). Concurrent claims — other tasks, other instances on one PostgreSQL
    /// (`FOR UPDATE SKIP LOCKED`) — never get the same item while its lease runs. A zero
    /// lease is `Invalid`.
    async fn claim_outbox(
        &self,
        worker: &str,
        limit: u32,
        now: DateTime<Utc>,
        lease: std::time::Duration,
    ) -> Result<Vec<OutboxItem>>;

    /// Marks an item sent at `now` (from any status: a worker whose lease ran out may still
    /// have delivered it). Already sent: nothing changes. `NotFound` if unknown.
    async fn outbox_sent(&self, id: i64, now: DateTime<Utc>) -> Result<()>;

    /// Puts a `pending`/`sending` item back to `pending` until `next_attempt_at`, recording
    /// `error` (capped to a few KB) and releasing the lease. On a `sent` or `dead` item it does
    /// nothing (another worker finished it meanwhile). `NotFound` if unknown.
    async fn outbox_retry(
        &self,
        id: i64,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<()>;

    /// Gives up on a `pending`/`sending` item at `now`: it becomes `dead` with `error` and is
    /// listed by [`OutboxStore::dead_letters`]. On a `sent` or `dead` item it does nothing.
    /// `NotFound` if unknown.
    async fn outbox_dead(&self, id: i64, error: &str, now: DateTime<Utc>) -> Result<()>;

    /// Dead items, most recently given up first, at most `limit`.
    async fn dead_letters(&self, limit: u32) -> Result<Vec<OutboxItem>>;

    /// How many items are in each status.
    async fn outbox_counts(&self) -> Result<OutboxCounts>;

    /// Deletes items sent before `sent_before`; returns how many. Pending, sending and dead
    /// items stay whatever their age: they are work, or what an operator must look at.
    async fn prune_outbox(&self, sent_before: DateTime<Utc>) -> Result<u64>;
}

// ---------------------------------------------------------------------------------------------
// Shared checks and encodings (crate-private)
// ---------------------------------------------------------------------------------------------

/// Errors are capped so one huge response body cannot bloat the dead-letter list.
const MAX_ERROR_BYTES: usize = 2048;

/// PostgreSQL TEXT cannot hold NUL; refuse it on both backends alike.
pub(crate) fn no_nul(what: &str, s: &str) -> Result<()> {
    if s.contains('\0') {
        return Err(StoreError::Invalid(format!(
            "{what} {s:?} contains a NUL character"
        )));
    }
    Ok(())
}

/// A subscriber checked and normalised for its row.
pub(crate) struct SubscriberRow {
    pub kind: &'static str,
    pub address: String,
    pub components_json: String,
    pub locale: String,
    pub secret: Option<String>,
    pub confirmed: bool,
    pub confirm_hash: Option<String>,
    pub unsubscribe_hash: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
}

pub(crate) fn encode_subscriber(new: &NewSubscriber) -> Result<SubscriberRow> {
    let address = match new.kind {
        SubscriberKind::Email => new.address.trim().to_lowercase(),
        SubscriberKind::Webhook => new.address.clone(),
    };
    if address.trim().is_empty() {
        return Err(StoreError::Invalid(format!(
            "a {} subscriber needs an address",
            new.kind
        )));
    }
    no_nul("subscriber address", &address)?;
    no_nul("subscriber locale", &new.locale)?;
    match (&new.kind, &new.secret) {
        (SubscriberKind::Webhook, None) => {
            return Err(StoreError::Invalid(
                "a webhook subscriber needs a secret to sign its bodies with".to_string(),
            ))
        }
        (_, Some(s)) if s.is_empty() => {
            return Err(StoreError::Invalid(
                "a subscriber's secret must not be empty".to_string(),
            ))
        }
        (_, Some(s)) => no_nul("subscriber secret", s)?,
        _ => {}
    }
    if !new.confirmed && new.confirm_token_hash.is_none() {
        return Err(StoreError::Invalid(
            "an unconfirmed subscriber needs a confirm token, or it could never be confirmed"
                .to_string(),
        ));
    }
    for h in new
        .confirm_token_hash
        .iter()
        .chain(std::iter::once(&new.unsubscribe_token_hash))
    {
        check_hash(h)?;
    }
    let components_json = serde_json::to_string(&new.components)
        .map_err(|e| StoreError::Other(format!("cannot encode components as JSON: {e}")))?;
    let created_at = truncate_to_millis(new.created_at);
    Ok(SubscriberRow {
        kind: new.kind.as_str(),
        address,
        components_json,
        locale: new.locale.clone(),
        secret: new.secret.clone(),
        confirmed: new.confirmed,
        confirm_hash: new.confirm_token_hash.clone(),
        unsubscribe_hash: new.unsubscribe_token_hash.clone(),
        created_at,
        confirmed_at: new.confirmed.then_some(created_at),
    })
}

/// Token hashes are SHA-256 hex; anything else is most likely a raw token passed by mistake,
/// which would be stored in the clear.
fn check_hash(h: &str) -> Result<()> {
    if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(StoreError::Invalid(
            "a token hash must be SHA-256 in hex (64 characters): pass hash_token(token), \
             never the token"
                .to_string(),
        ))
    }
}

pub(crate) const SUBSCRIBER_COLUMNS: &str =
    "id, kind, address, components, locale, confirmed, secret, created_at, confirmed_at";
/// A subscriber row as both backends read it, in [`SUBSCRIBER_COLUMNS`] order; `T` is the
/// backend's time (see [`Stamp`]).
pub(crate) type SubscriberRowRead<T> = (
    i64,
    String,
    String,
    String,
    String,
    bool,
    Option<String>,
    T,
    Option<T>,
);

/// A subscriber back from its row.
pub(crate) fn decode_subscriber<T: Stamp>(row: SubscriberRowRead<T>) -> Result<Subscriber> {
    let (id, kind, address, components_json, locale, confirmed, secret, created_at, confirmed_at) =
        row;
    let unreadable = |why: String| {
        StoreError::Other(format!("stored row is unreadable: subscriber {id}: {why}"))
    };
    Ok(Subscriber {
        id,
        kind: kind.parse().map_err(unreadable)?,
        address,
        components: serde_json::from_str::<Vec<String>>(&components_json)
            .map_err(|e| unreadable(format!("components are not a JSON list of strings ({e})")))?
            .iter()
            .map(|c| parse_stored("subscribers.components", c, |c| ComponentId::parse(c)))
            .collect::<Result<_>>()?,
        locale,
        confirmed,
        secret,
        created_at: created_at.time()?,
        confirmed_at: confirmed_at.map(Stamp::time).transpose()?,
    })
}

/// A unique violation on `subscribers`, said in terms of what the caller passed. `detail`
/// is the constraint name (PostgreSQL) or the message naming the columns (SQLite).
pub(crate) fn subscriber_conflict(row: &SubscriberRow, detail: &str) -> StoreError {
    if detail.contains("address") {
        StoreError::Conflict(format!(
            "{} is already subscribed (by {})",
            row.address, row.kind
        ))
    } else {
        StoreError::Conflict("a subscriber with the same token already exists".to_string())
    }
}

pub(crate) fn unknown_token_hash(what: &str) -> StoreError {
    StoreError::NotFound(format!("no subscriber with this {what} token"))
}

pub(crate) fn unknown_subscriber(id: i64) -> StoreError {
    StoreError::NotFound(format!("subscriber {id}"))
}

/// An outbox item checked and encoded for its row.
pub(crate) struct OutboxRow<'a> {
    pub key: &'a str,
    pub channel: &'a str,
    pub target: &'a str,
    pub subscriber_id: Option<i64>,
    pub payload: String,
    pub next_attempt_at: DateTime<Utc>,
}

/// Checks a batch, drops repeats of a key inside it (the first wins, as the database does with
/// a key already stored) and sorts by key, so concurrent enqueues of overlapping batches on
/// PostgreSQL take their unique-index locks in one order and cannot deadlock.
pub(crate) fn encode_outbox(items: &[NewOutboxItem]) -> Result<Vec<OutboxRow<'_>>> {
    let mut rows = std::collections::BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        if item.idempotency_key.is_empty() {
            return Err(StoreError::Invalid(format!(
                "outbox item {} of the batch has an empty idempotency key",
                i + 1
            )));
        }
        no_nul("idempotency key", &item.idempotency_key)?;
        no_nul("outbox channel", &item.channel)?;
        no_nul("outbox target", &item.target)?;
        if rows.contains_key(item.idempotency_key.as_str()) {
            continue;
        }
        // serde_json escapes NUL inside strings, so the text never holds one.
        let payload = serde_json::to_string(&item.payload)
            .map_err(|e| StoreError::Other(format!("cannot encode payload as JSON: {e}")))?;
        rows.insert(
            item.idempotency_key.as_str(),
            OutboxRow {
                key: &item.idempotency_key,
                channel: &item.channel,
                target: &item.target,
                subscriber_id: item.subscriber_id,
                payload,
                next_attempt_at: truncate_to_millis(item.next_attempt_at),
            },
        );
    }
    Ok(rows.into_values().collect())
}

/// The end of a lease taken at `now`.
pub(crate) fn lease_end(now: DateTime<Utc>, lease: std::time::Duration) -> Result<DateTime<Utc>> {
    let bad = || StoreError::Invalid(format!("a lease of {lease:?} is out of range"));
    if lease.is_zero() {
        return Err(StoreError::Invalid(
            "a lease must be longer than zero, or a claim would be claimable again at once"
                .to_string(),
        ));
    }
    let delta = TimeDelta::from_std(lease).map_err(|_| bad())?;
    let end = truncate_to_millis(now)
        .checked_add_signed(delta)
        .ok_or_else(bad)?;
    // A sub-millisecond lease would round to no lease at all.
    Ok(truncate_to_millis(end).max(truncate_to_millis(now) + TimeDelta::milliseconds(1)))
}

/// An error text fit for storing: without NUL, at most a few KB, cut on a character boundary.
pub(crate) fn clean_error(error: &str) -> String {
    let mut s = error.replace('\0', "\u{FFFD}");
    if s.len() > MAX_ERROR_BYTES {
        let mut cut = MAX_ERROR_BYTES;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

pub(crate) const OUTBOX_COLUMNS: &str = "id, idempotency_key, channel, target, subscriber_id, \
     payload, status, attempts, next_attempt_at, last_error, claimed_by, lease_until, \
     created_at, finished_at";
/// An outbox row as both backends read it, in [`OUTBOX_COLUMNS`] order; `T` is the backend's
/// time (see [`Stamp`]).
pub(crate) type OutboxRowRead<T> = (
    i64,
    String,
    String,
    String,
    Option<i64>,
    String,
    String,
    i64,
    T,
    Option<String>,
    Option<String>,
    Option<T>,
    T,
    Option<T>,
);

pub(crate) fn decode_outbox<T: Stamp>(row: OutboxRowRead<T>) -> Result<OutboxItem> {
    let (
        id,
        idempotency_key,
        channel,
        target,
        subscriber_id,
        payload,
        status,
        attempts,
        next_attempt_at,
        last_error,
        claimed_by,
        lease_until,
        created_at,
        finished_at,
    ) = row;
    let unreadable = |why: String| {
        StoreError::Other(format!("stored row is unreadable: outbox item {id}: {why}"))
    };
    Ok(OutboxItem {
        id,
        idempotency_key,
        channel,
        target,
        subscriber_id,
        payload: serde_json::from_str(&payload)
            .map_err(|e| unreadable(format!("payload is not JSON ({e})")))?,
        status: status.parse().map_err(unreadable)?,
        attempts: u32::try_from(attempts)
            .map_err(|_| unreadable(format!("attempts {attempts} is out of range")))?,
        next_attempt_at: next_attempt_at.time()?,
        last_error,
        claimed_by,
        lease_until: lease_until.map(Stamp::time).transpose()?,
        created_at: created_at.time()?,
        finished_at: finished_at.map(Stamp::time).transpose()?,
    })
}

/// Claimed rows as handed out: oldest due first, since `UPDATE … RETURNING` follows no
/// `ORDER BY`.
pub(crate) fn claimed<T: Stamp>(rows: Vec<OutboxRowRead<T>>) -> Result<Vec<OutboxItem>> {
    let mut items = rows
        .into_iter()
        .map(decode_outbox)
        .collect::<Result<Vec<_>>>()?;
    items.sort_by_key(|i| (i.next_attempt_at, i.id));
    Ok(items)
}

/// How a worker finishes with an outbox item: the status it moves to, from which statuses
/// the move applies, and what it records. Both backends run the same update from this, so
/// the rules (a sent item stays sent; retry and dead only touch unfinished items) are
/// written once.
pub(crate) struct Finish {
    pub to: OutboxStatus,
    /// SQL condition on the row's current `status`.
    pub applies_to: &'static str,
    /// When it was sent or given up on; kept when `None`.
    pub finished_at: Option<DateTime<Utc>>,
    /// When to try again; kept when `None`.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Already cleaned by [`clean_error`]; kept when `None`.
    pub error: Option<String>,
}

const UNFINISHED: &str = "status IN ('pending', 'sending')";

impl Finish {
    pub(crate) fn sent(now: DateTime<Utc>) -> Finish {
        Finish {
            to: OutboxStatus::Sent,
            // Also from dead or pending: a worker whose lease ran out may still have delivered.
            applies_to: "status <> 'sent'",
            finished_at: Some(truncate_to_millis(now)),
            next_attempt_at: None,
            error: None,
        }
    }

    pub(crate) fn retry(error: &str, next_attempt_at: DateTime<Utc>) -> Finish {
        Finish {
            to: OutboxStatus::Pending,
            applies_to: UNFINISHED,
            finished_at: None,
            next_attempt_at: Some(truncate_to_millis(next_attempt_at)),
            error: Some(clean_error(error)),
        }
    }

    pub(crate) fn dead(error: &str, now: DateTime<Utc>) -> Finish {
        Finish {
            to: OutboxStatus::Dead,
            applies_to: UNFINISHED,
            finished_at: Some(truncate_to_millis(now)),
            next_attempt_at: None,
            error: Some(clean_error(error)),
        }
    }
}

/// The counts from `SELECT status, COUNT(*) … GROUP BY status`.
pub(crate) fn counts_from(rows: Vec<(String, i64)>) -> Result<OutboxCounts> {
    let mut counts = OutboxCounts::default();
    for (status, n) in rows {
        let n = u64::try_from(n).map_err(|_| {
            StoreError::Other(format!("outbox count {n} of {status} is out of range"))
        })?;
        let status: OutboxStatus = status
            .parse()
            .map_err(|e: String| StoreError::Other(format!("stored row is unreadable: {e}")))?;
        match status {
            OutboxStatus::Pending => counts.pending = n,
            OutboxStatus::Sending => counts.sending = n,
            OutboxStatus::Sent => counts.sent = n,
            OutboxStatus::Dead => counts.dead = n,
        }
    }
    Ok(counts)
}

pub(crate) fn unknown_outbox_item(id: i64) -> StoreError {
    StoreError::NotFound(format!("outbox item {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
    }

    fn email(address: &str) -> NewSubscriber {
        NewSubscriber {
            kind: SubscriberKind::Email,
            address: address.to_string(),
            components: vec![],
            locale: "en".into(),
            secret: None,
            confirmed: false,
            confirm_token_hash: Some(hash_token("c")),
            unsubscribe_token_hash: hash_token("u"),
            created_at: t(),
        }
    }

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn email_is_trimmed_and_lower_cased_webhook_kept() {
        assert_eq!(
            encode_subscriber(&email("  Ops@Example.COM "))
                .unwrap()
                .address,
            "ops@example.com"
        );
        let mut hook = email("https://Example.com/Hook");
        hook.kind = SubscriberKind::Webhook;
        hook.secret = Some("k".into());
        assert_eq!(
            encode_subscriber(&hook).unwrap().address,
            "https://Example.com/Hook"
        );
    }

    #[test]
    fn bad_subscribers_are_refused_with_the_reason() {
        let cases: Vec<(NewSubscriber, &str)> = vec![
            (email("  "), "needs an address"),
            (
                NewSubscriber {
                    kind: SubscriberKind::Webhook,
                    ..email("https://x")
                },
                "needs a secret",
            ),
            (
                NewSubscriber {
                    secret: Some(String::new()),
                    ..email("a@b")
                },
                "must not be empty",
            ),
            (
                NewSubscriber {
                    confirm_token_hash: None,
                    ..email("a@b")
                },
                "could never be confirmed",
            ),
            (
                NewSubscriber {
                    unsubscribe_token_hash: "raw-token".into(),
                    ..email("a@b")
                },
                "never the token",
            ),
            (email("a\0@b"), "NUL"),
        ];
        for (s, want) in cases {
            let err = encode_subscriber(&s).err().expect("refused").to_string();
            assert!(err.contains(want), "{err:?} should contain {want:?}");
        }
    }

    #[test]
    fn batch_keeps_the_first_of_a_repeated_key_and_sorts() {
        let item = |key: &str, target: &str| NewOutboxItem {
            idempotency_key: key.into(),
            channel: "webhook".into(),
            target: target.into(),
            subscriber_id: None,
            payload: serde_json::json!({"k": key}),
            next_attempt_at: t(),
        };
        let items = [item("b", "1"), item("a", "2"), item("b", "3")];
        let rows = encode_outbox(&items).unwrap();
        let got: Vec<_> = rows.iter().map(|r| (r.key, r.target)).collect();
        assert_eq!(got, vec![("a", "2"), ("b", "1")]);
        assert!(encode_outbox(&[item("", "x")])
            .err()
            .unwrap()
            .to_string()
            .contains("empty idempotency key"));
    }

    #[test]
    fn leases_must_be_positive_and_in_range() {
        assert!(lease_end(t(), std::time::Duration::ZERO).is_err());
        assert!(lease_end(t(), std::time::Duration::MAX).is_err());
        assert_eq!(
            lease_end(t(), std::time::Duration::from_micros(10)).unwrap(),
            t() + TimeDelta::milliseconds(1)
        );
        assert_eq!(
            lease_end(t(), std::time::Duration::from_secs(30)).unwrap(),
            t() + TimeDelta::seconds(30)
        );
    }

    #[test]
    fn errors_are_capped_on_a_char_boundary_without_nul() {
        let long = "é".repeat(MAX_ERROR_BYTES);
        let cleaned = clean_error(&long);
        assert!(cleaned.len() <= MAX_ERROR_BYTES + '…'.len_utf8());
        assert!(cleaned.ends_with('…'));
        assert_eq!(clean_error("a\0b"), "a\u{FFFD}b");
    }

    #[test]
    fn status_strings_round_trip() {
        for s in [
            OutboxStatus::Pending,
            OutboxStatus::Sending,
            OutboxStatus::Sent,
            OutboxStatus::Dead,
        ] {
            assert_eq!(s.as_str().parse(), Ok(s));
        }
        assert!("robot".parse::<SubscriberKind>().is_err());
    }
}
