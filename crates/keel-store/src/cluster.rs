//! What several Keel instances on one database share to act as one: leases (who leads the
//! incident book, who checks which monitor shard), the instances alive, and the change feed
//! that tells every instance what another one wrote.
//!
//! Leases are timed on the database's clock, never an instance's, so instances with skewed
//! clocks agree on who holds what. Every take-over of a lease raises its generation; a write
//! that names a [`Fence`] is refused ([`StoreError::Fenced`]) unless that generation still
//! holds the lease inside the write's transaction, where the check also keeps the lease from
//! passing to anyone else before the commit, so an instance that was paused past its lease
//! cannot act on stale leadership.
//!
//! On PostgreSQL the feed is `LISTEN/NOTIFY`, sent in the same transaction as the write (a
//! rolled-back write tells nobody). SQLite carries one instance, so it has no feed.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keel_core::incident::{IncidentEvent, IncidentId};
use keel_core::{MonitorId, SourceKey};
use tokio::sync::mpsc;

use crate::comms::{lease_end, no_nul};
use crate::shared::{now, parse_stored, Stamp};
use crate::{NewEvent, Result, SourceState, StoreError};

/// A lease as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub name: String,
    pub holder: String,
    /// Raised by one each time the lease passes to a holder (also to the same holder again
    /// after it had expired); kept while the same holder renews in time.
    pub generation: i64,
    pub expires_at: DateTime<Utc>,
}

impl Lease {
    /// The fence a write made under this lease carries.
    pub fn fence(&self) -> Fence {
        Fence {
            lease: self.name.clone(),
            holder: self.holder.clone(),
            generation: self.generation,
        }
    }
}

/// Proof of a lease a write is made under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub lease: String,
    pub holder: String,
    pub generation: i64,
}

/// One running instance, as it registered itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Unique per process (host, pid and a random part).
    pub id: String,
    /// Where it serves, for operators (`GET /api/v1/cluster`).
    pub listen: String,
    pub started_at: DateTime<Utc>,
    /// Last heartbeat, on the database's clock.
    pub seen_at: DateTime<Utc>,
    /// Digest of each part of the config that instances must agree on, by a name an
    /// operator recognises ("monitor api", "component checkout", "[incidents]").
    pub config: BTreeMap<String, String>,
}

/// Something another instance (or this one) wrote, as the feed reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Events were stored for an incident (created or appended); `seq` is its last seq now.
    Incident { id: IncidentId, seq: u32 },
    /// A source's state was saved.
    Source { key: SourceKey },
    /// A heartbeat push was recorded.
    Heartbeat {
        monitor: MonitorId,
        at: DateTime<Utc>,
    },
    /// Changes were not reported — the feed's connection was lost and made again, or the
    /// receiver fell behind and changes were dropped — so whoever listens catches up by
    /// reading.
    Reconnected,
}

#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Claims or renews each named lease for `holder` until the database's `now() + ttl`.
    /// A lease is taken when it is new, expired, or already `holder`'s. Returns the leases
    /// `holder` holds after the call (the others are held by someone else); one round trip
    /// for all names. A zero ttl is `Invalid`.
    async fn claim_leases(
        &self,
        names: &[String],
        holder: &str,
        ttl: Duration,
    ) -> Result<Vec<Lease>>;

    /// Lets go of the named leases if `holder` holds them (they expire now, so another
    /// instance may take them at once; the generation stays). Others' leases are untouched.
    async fn release_leases(&self, names: &[String], holder: &str) -> Result<()>;

    /// Every lease whose name starts with `prefix`, live or expired, by name, with whether
    /// it is live on the database's clock.
    async fn leases(&self, prefix: &str) -> Result<Vec<(Lease, bool)>>;

    /// Registers this instance, or renews its heartbeat (`seen_at = now()`), keeping
    /// `started_at` from the first registration.
    async fn heartbeat_instance(&self, instance: &Instance) -> Result<()>;

    /// Instances seen within `within` on the database's clock, oldest first.
    async fn live_instances(&self, within: Duration) -> Result<Vec<Instance>>;

    /// Renews a registered instance's heartbeat (`seen_at = now()`) without rewriting its
    /// config; `false` when no such instance is registered (then register it with
    /// [`ClusterStore::heartbeat_instance`]). Renewals run every third of a lease, and an
    /// instance's config digests grow with its monitors: rewriting and re-reading them each
    /// time cost more than the checks at 30,000 monitors.
    async fn touch_instance(&self, id: &str) -> Result<bool>;

    /// The ids of the instances seen within `within` on the database's clock, oldest first
    /// ([`ClusterStore::live_instances`] without their configs).
    async fn live_instance_ids(&self, within: Duration) -> Result<Vec<String>>;

    /// Removes an instance (a clean shutdown), so the others rebalance at once.
    async fn remove_instance(&self, id: &str) -> Result<()>;

    /// [`crate::IncidentStore::create_incident`], refused with `Fenced` (storing nothing) when
    /// `fence` no longer holds its lease in the write's transaction.
    async fn create_incident_fenced(
        &self,
        fence: &Fence,
        events: &[NewEvent],
    ) -> Result<IncidentId>;

    /// [`crate::IncidentStore::append_incident_events`], refused with `Fenced` (storing nothing)
    /// when `fence` no longer holds its lease in the write's transaction. A batch that is
    /// `Invalid` is refused before the fence is checked; `NotFound` and `Conflict` after.
    async fn append_incident_events_fenced(
        &self,
        fence: &Fence,
        incident: IncidentId,
        expected_last_seq: u32,
        events: &[NewEvent],
    ) -> Result<Vec<IncidentEvent>>;

    /// One incident's events with `seq > after`, by seq (empty when there are none; unknown
    /// incident: `NotFound`).
    async fn incident_events_after(
        &self,
        incident: IncidentId,
        after: u32,
    ) -> Result<Vec<IncidentEvent>>;

    /// Every incident's id and last seq: what an instance compares its book with after
    /// missing changes (one row per incident, not the events).
    async fn incident_heads(&self) -> Result<Vec<(IncidentId, u32)>>;

    /// One source's stored state, if any.
    async fn source_state(&self, key: &SourceKey) -> Result<Option<SourceState>>;

    /// The stored states of these sources (those that have one), in one read.
    async fn source_states_of(&self, keys: &[SourceKey]) -> Result<Vec<SourceState>>;

    /// Records a heartbeat push for a monitor (the latest one wins).
    async fn save_heartbeat(&self, monitor: &MonitorId, at: DateTime<Utc>) -> Result<()>;

    /// The latest push of every monitor that got one.
    async fn heartbeats(&self) -> Result<Vec<(MonitorId, DateTime<Utc>)>>;

    /// The feed of changes every instance writes (incident events, source states, heartbeat
    /// pushes), including this instance's own; `None` when the backend has none (SQLite).
    /// The feed reconnects by itself and reports [`Change::Reconnected`] when it did (or when
    /// the receiver fell so far behind that changes were dropped); it ends when the store is
    /// closed or the receiver dropped.
    async fn changes(&self) -> Result<Option<mpsc::Receiver<Change>>>;
}

/// The longest span a query looks back over (`live_instances`): a century is "all of them",
/// and larger values would overflow the database's time arithmetic.
const MAX_SPAN_MS: i64 = 100 * 366 * 24 * 3600 * 1000;

/// The names of a claim or release, checked, sorted and without repeats: sorted so that two
/// instances claiming overlapping sets lock the rows in one order (PostgreSQL), unique because
/// one `INSERT … ON CONFLICT DO UPDATE` cannot touch a row twice.
pub(crate) fn lease_names<'a>(names: &'a [String], holder: &str) -> Result<Vec<&'a str>> {
    if holder.is_empty() {
        return Err(StoreError::Invalid("a lease holder is empty".to_string()));
    }
    no_nul("lease holder", holder)?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        if name.is_empty() {
            return Err(StoreError::Invalid("a lease name is empty".to_string()));
        }
        no_nul("lease name", name)?;
        out.push(name.as_str());
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A lease's time to live in whole milliseconds (at least one): `Invalid` when zero or out of
/// range, by the same rule as outbox leases.
pub(crate) fn ttl_millis(ttl: Duration) -> Result<i64> {
    let start = now();
    let end = lease_end(start, ttl)?;
    Ok((end - start).num_milliseconds())
}

/// A look-back span in milliseconds, capped at [`MAX_SPAN_MS`].
pub(crate) fn span_millis(span: Duration) -> i64 {
    i64::try_from(span.as_millis()).map_or(MAX_SPAN_MS, |ms| ms.min(MAX_SPAN_MS))
}

/// The refusal of a write whose fence no longer holds its lease.
pub(crate) fn fenced(fence: &Fence) -> StoreError {
    StoreError::Fenced(format!(
        "lease '{}' generation {} is no longer held by {}",
        fence.lease, fence.generation, fence.holder
    ))
}

/// A fence that could never have been handed out (a NUL cannot be stored) holds nothing.
pub(crate) fn check_fence(fence: &Fence) -> Result<()> {
    if fence.lease.contains('\0') || fence.holder.contains('\0') {
        return Err(fenced(fence));
    }
    Ok(())
}

/// Checks an instance's fields and encodes its config digests as a JSON object.
pub(crate) fn encode_instance(instance: &Instance) -> Result<String> {
    if instance.id.is_empty() {
        return Err(StoreError::Invalid("an instance id is empty".to_string()));
    }
    no_nul("instance id", &instance.id)?;
    no_nul("instance listen address", &instance.listen)?;
    for (part, digest) in &instance.config {
        no_nul("config part", part)?;
        no_nul("config digest", digest)?;
    }
    serde_json::to_string(&instance.config)
        .map_err(|e| StoreError::Other(format!("cannot encode instance config as JSON: {e}")))
}

/// An instance's config digests back from their JSON.
pub(crate) fn decode_config(id: &str, json: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(json).map_err(|e| {
        StoreError::Other(format!(
            "stored row is unreadable: instance {id:?} config is not a JSON object of strings ({e})"
        ))
    })
}

/// A heartbeat row back from `(monitor, at)`.
pub(crate) fn decode_heartbeat<T: Stamp>(row: (String, T)) -> Result<(MonitorId, DateTime<Utc>)> {
    let (monitor, at) = row;
    Ok((
        parse_stored("heartbeats.monitor", &monitor, |m| MonitorId::parse(m))?,
        at.time()?,
    ))
}

pub(crate) const LEASE_COLUMNS: &str = "name, holder, generation, expires_at";
/// A lease row as both backends read it, in [`LEASE_COLUMNS`] order; `T` is the backend's time
/// (see [`Stamp`]).
pub(crate) type LeaseRow<T> = (String, String, i64, T);

pub(crate) fn decode_lease<T: Stamp>(row: LeaseRow<T>) -> Result<Lease> {
    let (name, holder, generation, expires_at) = row;
    Ok(Lease {
        name,
        holder,
        generation,
        expires_at: expires_at.time()?,
    })
}

/// An instance row as both backends read it: id, listen, started_at, seen_at and the config
/// digests as JSON text.
pub(crate) type InstanceRow<T> = (String, String, T, T, String);

pub(crate) fn decode_instance<T: Stamp>(row: InstanceRow<T>) -> Result<Instance> {
    let (id, listen, started_at, seen_at, config) = row;
    let config = decode_config(&id, &config)?;
    Ok(Instance {
        id,
        listen,
        started_at: started_at.time()?,
        seen_at: seen_at.time()?,
        config,
    })
}

/// Leases as returned: by name, whatever order the database produced.
pub(crate) fn by_name(mut leases: Vec<Lease>) -> Vec<Lease> {
    leases.sort_by(|a, b| a.name.cmp(&b.name));
    leases
}
