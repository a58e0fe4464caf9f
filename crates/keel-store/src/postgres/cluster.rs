//! [`ClusterStore`] on PostgreSQL: leases timed on the server's clock, fenced writes that lock
//! their lease row, and the change feed over `LISTEN/NOTIFY`.
//!
//! Claims are one `INSERT … SELECT unnest(…) ON CONFLICT DO UPDATE … WHERE` statement: two
//! instances claiming one free lease both try to insert it, the second waits for the first
//! to commit, then finds the row live and someone else's and leaves it. A fenced write reads
//! its lease row `FOR SHARE` inside its own transaction, so a take-over (an update of that
//! row) waits until the write has committed, and a write that comes after a take-over finds
//! the raised generation and is refused.
//!
//! Every write others must hear of calls [`notify`] in its own transaction, so a rolled-back
//! write tells nobody and a committed one tells every listener. The payload is a short text
//! (see [`payload`]); the feed's task parses it back into a [`Change`].

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keel_core::incident::{IncidentEvent, IncidentId};
use keel_core::{MonitorId, SourceKey};
use sha2::{Digest, Sha256};
use sqlx::pool::CloseEvent;
use sqlx::postgres::{PgConnection, PgListener, PgPool, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use super::{map_err, PgStore, CONNECT_TIMEOUT};
use crate::cluster::{
    by_name, check_fence, decode_heartbeat, decode_instance, decode_lease, encode_instance, fenced,
    lease_names, span_millis, ttl_millis, Change, ClusterStore, Fence, Instance, InstanceRow,
    Lease, LeaseRow, LEASE_COLUMNS,
};
use crate::incidents::{decode_events, EventRowRead, EVENT_COLUMNS};
use crate::shared::{from_millis, to_u32, truncate_to_millis, unknown_incident};
use crate::signals::{decode_state, StateRow, STATE_COLUMNS};
use crate::{NewEvent, Result, SourceState};

/// The feed's channel in the `public` schema; other schemas get a suffix (see [`channel_for`]).
const CHANNEL_BASE: &str = "keel_changes";

/// Longest identifier PostgreSQL keeps (NAMEDATALEN - 1 bytes); a channel name is one.
const MAX_IDENTIFIER: usize = 63;

/// A `NOTIFY` payload must be shorter than 8000 bytes.
const MAX_PAYLOAD: usize = 7999;

/// What the trait's [`ClusterStore::changes`] buffers before it drops changes (and owes the
/// receiver a [`Change::Reconnected`] instead).
const FEED_CAPACITY: usize = 4096;

/// `application_name` of the feed's connection, so operators (and tests) can tell it from the
/// pool's `keel` connections in `pg_stat_activity`.
const LISTEN_APPLICATION: &str = "keel-listen";

/// First and longest wait between attempts to listen again while the server is away.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// The feed's channel for tables in `schema`.
///
/// `NOTIFY` channels are database-wide, not per schema, while one database may hold several
/// deployments (or test runs) side by side, each in its own schema. So the channel carries the
/// schema's name: `keel_changes` in `public`, `keel_changes.<schema>` elsewhere (or a digest
/// of the schema's name where that would pass the 63-byte limit of an identifier), and each
/// deployment hears only its own writes.
pub(super) fn channel_for(schema: &str) -> String {
    if schema == "public" {
        return CHANNEL_BASE.to_string();
    }
    let named = format!("{CHANNEL_BASE}.{schema}");
    if named.len() <= MAX_IDENTIFIER {
        named
    } else {
        let digest = hex::encode(Sha256::digest(schema.as_bytes()));
        format!("{CHANNEL_BASE}.{}", &digest[..32])
    }
}

/// The text a change is sent as: `i <incident> <seq>`, `s <kind> <id>`, `h <unix ms>
/// <monitor>`, or `r` ("catch up by reading"). Ids may hold spaces (intake source ids hold
/// '/' and more), so they come last and the reader splits off only the fields before them.
/// A change too long for a payload is sent as `r`, which the feed reports as
/// [`Change::Reconnected`]: its listeners then read what they missed.
pub(super) fn payload(change: &Change) -> String {
    let text = match change {
        Change::Incident { id, seq } => format!("i {id} {seq}"),
        Change::Source { key } => format!("s {} {key}", key.kind().as_str()),
        Change::Heartbeat { monitor, at } => format!("h {} {monitor}", at.timestamp_millis()),
        Change::Reconnected => "r".to_string(),
    };
    if text.len() > MAX_PAYLOAD {
        "r".to_string()
    } else {
        text
    }
}

/// A payload back into its change; `Err` says why it is not one.
pub(super) fn parse_change(payload: &str) -> std::result::Result<Change, String> {
    let (tag, rest) = payload.split_once(' ').unwrap_or((payload, ""));
    match tag {
        "i" => {
            let (id, seq) = rest
                .split_once(' ')
                .ok_or("an incident change needs an id and a seq")?;
            let id = id
                .parse::<IncidentId>()
                .map_err(|e| format!("incident id {id:?}: {e}"))?;
            let seq = seq
                .parse::<u32>()
                .map_err(|e| format!("incident seq {seq:?}: {e}"))?;
            Ok(Change::Incident { id, seq })
        }
        "s" => {
            let (kind, id) = rest
                .split_once(' ')
                .ok_or("a source change needs a kind and an id")?;
            let key = SourceKey::parse_kind(kind, id)
                .map_err(|e| format!("source {kind:?} {id:?}: {e}"))?;
            Ok(Change::Source { key })
        }
        "h" => {
            let (ms, monitor) = rest
                .split_once(' ')
                .ok_or("a heartbeat change needs a time and a monitor")?;
            let ms = ms
                .parse::<i64>()
                .map_err(|e| format!("heartbeat time {ms:?}: {e}"))?;
            let at = from_millis(ms).map_err(|e| e.to_string())?;
            let monitor = MonitorId::parse(monitor)
                .map_err(|e| format!("heartbeat monitor {monitor:?}: {e}"))?;
            Ok(Change::Heartbeat { monitor, at })
        }
        "r" if rest.is_empty() && !payload.contains(' ') => Ok(Change::Reconnected),
        _ => Err(format!("unknown change {tag:?}")),
    }
}

/// Tells every listener of `channel` about `change` when the transaction on `tx` commits.
pub(super) async fn notify(tx: &mut PgConnection, channel: &str, change: &Change) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(channel)
        .bind(payload(change))
        .execute(tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Refuses the write the transaction on `tx` is about to make unless `fence` holds its lease
/// now (on the server's clock at this statement, not the transaction's start). The lease row
/// stays locked `FOR SHARE` until the transaction ends, so nobody can take the lease over
/// before this write commits; a take-over already under way is waited for, and then its
/// raised generation refuses this write.
pub(super) async fn hold_fence(tx: &mut PgConnection, fence: &Fence) -> Result<()> {
    check_fence(fence)?;
    let held: Option<(i32,)> = sqlx::query_as(
        "SELECT 1 FROM leases
         WHERE name = $1 AND holder = $2 AND generation = $3 AND expires_at > clock_timestamp()
         FOR SHARE",
    )
    .bind(&fence.lease)
    .bind(&fence.holder)
    .bind(fence.generation)
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_err)?;
    held.map(|_| ()).ok_or_else(|| fenced(fence))
}

/// The config is `jsonb`; read as text, as SQLite stores it.
const INSTANCE_COLUMNS: &str = "id, listen, started_at, seen_at, config::text";

impl PgStore {
    /// The change feed with room for `capacity` changes the receiver has not taken yet
    /// ([`ClusterStore::changes`] keeps 4096). When it is full, further changes are dropped
    /// and the receiver gets [`Change::Reconnected`] as soon as there is room again, so it
    /// catches up by reading instead of the feed blocking. The feed is listening when this
    /// returns; it ends when the receiver is dropped or the store is closed.
    pub async fn changes_with_capacity(&self, capacity: usize) -> Result<mpsc::Receiver<Change>> {
        // A connection of its own (the pool's are handed around between queries), with the
        // pool's settings but its own application_name.
        let options = (*self.pool.connect_options())
            .clone()
            .application_name(LISTEN_APPLICATION);
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_lazy_with(options);
        let listener = listen(&pool, &self.channel).await.map_err(map_err)?;
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let feed = Feed {
            pool,
            channel: self.channel.clone(),
            tx,
            store_closed: Box::pin(self.pool.close_event()),
        };
        tokio::spawn(feed.run(listener));
        Ok(rx)
    }
}

/// A listener on `channel`, connected and listening.
async fn listen(pool: &PgPool, channel: &str) -> std::result::Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    // The feed owns this pool and never closes it while listening.
    listener.ignore_pool_close_event(true);
    // Report a lost connection at once instead of reconnecting inside `try_recv`: the feed
    // reconnects itself, outside the `select!` that may cancel `try_recv`, and so never loses
    // track of a reconnection it has to report.
    listener.eager_reconnect(false);
    listener.listen(channel).await?;
    Ok(listener)
}

/// The task behind a change feed.
struct Feed {
    pool: PgPool,
    channel: String,
    tx: mpsc::Sender<Change>,
    /// Resolves when the store's own pool is closed: the feed ends with the store.
    store_closed: Pin<Box<CloseEvent>>,
}

impl Feed {
    async fn run(mut self, mut listener: PgListener) {
        // Whether the receiver is owed a `Reconnected`: after a reconnection, or after changes
        // were dropped because it was full. Changes arriving meanwhile are dropped too, since
        // the catch-up that `Reconnected` asks for reads them anyway.
        let mut owed = false;
        loop {
            let mut lost = false;
            tokio::select! {
                biased;
                () = self.tx.closed() => return,
                () = &mut self.store_closed => return,
                permit = self.tx.reserve(), if owed => match permit {
                    Ok(permit) => {
                        permit.send(Change::Reconnected);
                        owed = false;
                    }
                    Err(_) => return,
                },
                got = listener.try_recv() => match got {
                    Ok(Some(notification)) => match parse_change(notification.payload()) {
                        Ok(_) if owed => {}
                        Ok(change) => match self.tx.try_send(change) {
                            Ok(()) => {}
                            Err(TrySendError::Full(_)) => {
                                tracing::warn!(
                                    "change feed receiver is full; dropping changes until it \
                                     catches up by reading"
                                );
                                owed = true;
                            }
                            Err(TrySendError::Closed(_)) => return,
                        },
                        Err(why) => tracing::warn!(
                            payload = notification.payload(),
                            %why,
                            "skipping a malformed change notification"
                        ),
                    },
                    Ok(None) => {
                        tracing::warn!("change feed connection lost");
                        lost = true;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "change feed connection failed");
                        lost = true;
                    }
                },
            }
            if lost {
                drop(listener);
                let Some(again) = self.listen_again().await else {
                    return;
                };
                listener = again;
                owed = true;
            }
        }
    }

    /// Listens again, retrying with growing waits while the server is away; `None` when
    /// nobody wants the feed any more.
    async fn listen_again(&mut self) -> Option<PgListener> {
        let mut wait = RETRY_FIRST;
        loop {
            let attempt = tokio::select! {
                biased;
                () = self.tx.closed() => return None,
                () = &mut self.store_closed => return None,
                attempt = listen(&self.pool, &self.channel) => attempt,
            };
            match attempt {
                Ok(listener) => {
                    tracing::info!("change feed listening again");
                    return Some(listener);
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?wait, "change feed cannot listen");
                }
            }
            tokio::select! {
                biased;
                () = self.tx.closed() => return None,
                () = &mut self.store_closed => return None,
                () = tokio::time::sleep(wait) => {}
            }
            wait = (wait * 2).min(RETRY_MAX);
        }
    }
}

#[async_trait]
impl ClusterStore for PgStore {
    async fn claim_leases(
        &self,
        names: &[String],
        holder: &str,
        ttl: Duration,
    ) -> Result<Vec<Lease>> {
        let ttl = ttl_millis(ttl)?;
        let names = lease_names(names, holder)?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        // New: generation 1. Held by `holder` and live: renewed, same generation. Expired
        // (whoever held it): taken, generation + 1. Live and someone else's: the WHERE leaves
        // it, and RETURNING gives no row. `now()` is this statement's start on the server.
        let rows: Vec<LeaseRow<DateTime<Utc>>> = sqlx::query_as(&format!(
            "INSERT INTO leases (name, holder, generation, expires_at)
             SELECT n, $2, 1, date_trunc('milliseconds', now()) + $3 * interval '1 millisecond'
             FROM unnest($1::text[]) AS n
             ON CONFLICT (name) DO UPDATE SET
                 holder = EXCLUDED.holder,
                 generation = CASE
                     WHEN leases.holder = EXCLUDED.holder AND leases.expires_at > now()
                     THEN leases.generation ELSE leases.generation + 1 END,
                 expires_at = EXCLUDED.expires_at
             WHERE leases.holder = EXCLUDED.holder OR leases.expires_at <= now()
             RETURNING {LEASE_COLUMNS}"
        ))
        .bind(&names)
        .bind(holder)
        .bind(ttl)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(by_name(
            rows.into_iter().map(decode_lease).collect::<Result<_>>()?,
        ))
    }

    async fn release_leases(&self, names: &[String], holder: &str) -> Result<()> {
        let names = lease_names(names, holder)?;
        if names.is_empty() {
            return Ok(());
        }
        // Only a live lease is cut short; an expired one keeps its (earlier) end.
        sqlx::query(
            "UPDATE leases SET expires_at = date_trunc('milliseconds', now())
             WHERE name = ANY($1::text[]) AND holder = $2 AND expires_at > now()",
        )
        .bind(&names)
        .bind(holder)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn leases(&self, prefix: &str) -> Result<Vec<(Lease, bool)>> {
        let rows: Vec<(String, String, i64, DateTime<Utc>, bool)> = sqlx::query_as(&format!(
            "SELECT {LEASE_COLUMNS}, expires_at > now() FROM leases WHERE starts_with(name, $1)"
        ))
        .bind(prefix)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        // Sorted here, not by the database's collation, so both backends order alike.
        let mut leases: Vec<(Lease, bool)> = rows
            .into_iter()
            .map(|(name, holder, generation, expires_at, live)| {
                Ok((decode_lease((name, holder, generation, expires_at))?, live))
            })
            .collect::<Result<_>>()?;
        leases.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        Ok(leases)
    }

    async fn heartbeat_instance(&self, instance: &Instance) -> Result<()> {
        let config = encode_instance(instance)?;
        sqlx::query(
            "INSERT INTO instances (id, listen, started_at, seen_at, config)
             VALUES ($1, $2, $3, date_trunc('milliseconds', now()), $4::jsonb)
             ON CONFLICT (id) DO UPDATE SET
                 listen = EXCLUDED.listen, seen_at = EXCLUDED.seen_at, config = EXCLUDED.config",
        )
        .bind(&instance.id)
        .bind(&instance.listen)
        .bind(truncate_to_millis(instance.started_at))
        .bind(config)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn live_instances(&self, within: Duration) -> Result<Vec<Instance>> {
        let rows: Vec<InstanceRow<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances
             WHERE seen_at >= now() - $1 * interval '1 millisecond'"
        ))
        .bind(span_millis(within))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let mut instances = rows
            .into_iter()
            .map(decode_instance)
            .collect::<Result<Vec<_>>>()?;
        instances.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
        Ok(instances)
    }

    async fn touch_instance(&self, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE instances SET seen_at = date_trunc('milliseconds', now()) WHERE id = $1",
        )
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn live_instance_ids(&self, within: Duration) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM instances
             WHERE seen_at >= now() - $1 * interval '1 millisecond'
             ORDER BY started_at, id",
        )
        .bind(span_millis(within))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    async fn remove_instance(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn create_incident_fenced(
        &self,
        fence: &Fence,
        events: &[NewEvent],
    ) -> Result<IncidentId> {
        self.create_incident_under(Some(fence), events).await
    }

    async fn append_incident_events_fenced(
        &self,
        fence: &Fence,
        incident: IncidentId,
        expected_last_seq: u32,
        events: &[NewEvent],
    ) -> Result<Vec<IncidentEvent>> {
        self.append_incident_events_under(Some(fence), incident, expected_last_seq, events)
            .await
    }

    async fn incident_events_after(
        &self,
        incident: IncidentId,
        after: u32,
    ) -> Result<Vec<IncidentEvent>> {
        let rows: Vec<EventRowRead<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {EVENT_COLUMNS} FROM incident_events
             WHERE incident = $1 AND seq > $2 ORDER BY seq"
        ))
        .bind(incident.get())
        .bind(i64::from(after))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        if rows.is_empty() {
            let known: Option<(i64,)> = sqlx::query_as("SELECT id FROM incidents WHERE id = $1")
                .bind(incident.get())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
            if known.is_none() {
                return Err(unknown_incident(incident));
            }
        }
        decode_events(rows)
    }

    async fn incident_heads(&self) -> Result<Vec<(IncidentId, u32)>> {
        let rows: Vec<(i64, i64)> =
            sqlx::query_as("SELECT id, last_seq FROM incidents ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.into_iter()
            .map(|(id, last)| Ok((IncidentId(id), to_u32(last, "last seq")?)))
            .collect()
    }

    async fn source_state(&self, key: &SourceKey) -> Result<Option<SourceState>> {
        let row: Option<StateRow<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {STATE_COLUMNS} FROM source_states WHERE kind = $1 AND id = $2"
        ))
        .bind(key.kind().as_str())
        .bind(key.id())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        row.map(decode_state).transpose()
    }

    async fn source_states_of(&self, keys: &[SourceKey]) -> Result<Vec<SourceState>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let kinds: Vec<&str> = keys.iter().map(|k| k.kind().as_str()).collect();
        let ids: Vec<String> = keys.iter().map(SourceKey::id).collect();
        let rows: Vec<StateRow<DateTime<Utc>>> = sqlx::query_as(&format!(
            "SELECT {STATE_COLUMNS} FROM source_states
             WHERE (kind, id) IN (SELECT * FROM UNNEST($1::text[], $2::text[]))"
        ))
        .bind(&kinds)
        .bind(&ids)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.into_iter().map(decode_state).collect()
    }

    async fn save_heartbeat(&self, monitor: &MonitorId, at: DateTime<Utc>) -> Result<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // The latest push by its time wins, also when two instances store theirs out of
        // order; the feed reports the time kept.
        let (at,): (DateTime<Utc>,) = sqlx::query_as(
            "INSERT INTO heartbeats (monitor, at) VALUES ($1, $2)
             ON CONFLICT (monitor) DO UPDATE SET at = GREATEST(heartbeats.at, EXCLUDED.at)
             RETURNING at",
        )
        .bind(monitor.as_str())
        .bind(truncate_to_millis(at))
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let change = Change::Heartbeat {
            monitor: monitor.clone(),
            at,
        };
        notify(&mut tx, &self.channel, &change).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn heartbeats(&self) -> Result<Vec<(MonitorId, DateTime<Utc>)>> {
        let rows: Vec<(String, DateTime<Utc>)> =
            sqlx::query_as("SELECT monitor, at FROM heartbeats")
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        let mut rows = rows
            .into_iter()
            .map(decode_heartbeat)
            .collect::<Result<Vec<_>>>()?;
        rows.sort();
        Ok(rows)
    }

    async fn changes(&self) -> Result<Option<mpsc::Receiver<Change>>> {
        self.changes_with_capacity(FEED_CAPACITY).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::SourceKind;

    fn key(kind: SourceKind, id: &str) -> SourceKey {
        SourceKey::parse(kind, id).unwrap()
    }

    fn round_trip(change: Change) {
        let text = payload(&change);
        assert_eq!(parse_change(&text), Ok(change), "{text:?}");
    }

    #[test]
    fn changes_survive_their_payload() {
        round_trip(Change::Incident {
            id: IncidentId(7),
            seq: 42,
        });
        round_trip(Change::Incident {
            id: IncidentId(i64::MAX),
            seq: u32::MAX,
        });
        round_trip(Change::Source {
            key: key(SourceKind::Monitor, "api"),
        });
        // Intake ids carry '/' and may carry spaces: the id is last and kept whole.
        round_trip(Change::Source {
            key: key(
                SourceKind::Intake,
                "alertmanager/prod cluster/High Latency ",
            ),
        });
        round_trip(Change::Heartbeat {
            monitor: MonitorId::parse("nightly-backup").unwrap(),
            at: DateTime::from_timestamp_millis(1_796_000_000_123).unwrap(),
        });
        round_trip(Change::Reconnected);
        assert_eq!(
            payload(&Change::Source {
                key: key(SourceKind::Vendor, "github")
            }),
            "s vendor github"
        );
    }

    #[test]
    fn a_change_too_long_to_send_asks_for_a_catch_up() {
        let change = Change::Source {
            key: key(
                SourceKind::Intake,
                &format!("x/{}", "x".repeat(MAX_PAYLOAD)),
            ),
        };
        assert_eq!(payload(&change), "r");
        assert_eq!(parse_change("r"), Ok(Change::Reconnected));
    }

    #[test]
    fn malformed_payloads_are_refused_with_a_reason() {
        for bad in [
            "",
            "x",
            "i",
            "i 7",
            "i seven 1",
            "i 7 -1",
            "i 7 1 2",
            "i 7 99999999999",
            "s",
            "s monitor",
            "s robot api",
            // Ids that name no source or monitor.
            "s monitor API",
            "s monitor api@",
            "s intake no-format",
            "h 123 nightly backup",
            "h",
            "h 123",
            "h soon api",
            "h 99999999999999999 api",
            "r now",
            "I 7 1",
        ] {
            let parsed = parse_change(bad);
            assert!(parsed.is_err(), "{bad:?} parsed as {parsed:?}");
            assert!(!parsed.unwrap_err().is_empty());
        }
    }

    #[test]
    fn each_schema_has_a_channel_of_its_own() {
        assert_eq!(channel_for("public"), "keel_changes");
        assert_eq!(channel_for("keel_t_00ff"), "keel_changes.keel_t_00ff");
        let long_a = format!("{}a", "s".repeat(62));
        let long_b = format!("{}b", "s".repeat(62));
        let (a, b) = (channel_for(&long_a), channel_for(&long_b));
        assert!(a.len() <= MAX_IDENTIFIER && b.len() <= MAX_IDENTIFIER);
        assert_ne!(a, b);
        assert!(a.starts_with("keel_changes."));
    }
}
