//! What several Keel instances on one database share to act as one: leases (who leads the
//! incident book, who checks which monitor shard), the instances alive, and the change feed
//! that tells every instance what another one wrote.
//!
//! Leases are timed on the database's clock, never an instance's, so instances with skewed
//! clocks agree on who holds what. Every take-over of a lease raises its generation; a write
//! that names a [`Fence`] is refused ([`StoreError::Fenced`]) unless that generation still
//! holds the lease at commit, so an instance that was paused past its lease cannot act on
//! stale leadership.
//!
//! On PostgreSQL the feed is `LISTEN/NOTIFY`, sent in the same transaction as the write (a
//! rolled-back write tells nobody). SQLite carries one instance, so it has no feed.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keel_core::incident::{IncidentEvent, IncidentId};
use keel_core::SourceKind;
use tokio::sync::mpsc;

use crate::{NewEvent, Result, SourceState};

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
    Source { kind: SourceKind, id: String },
    /// A heartbeat push was recorded.
    Heartbeat { monitor: String, at: DateTime<Utc> },
    /// The feed's connection was lost and made again: changes made meanwhile were not
    /// reported, so whoever listens catches up by reading.
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

    /// Removes an instance (a clean shutdown), so the others rebalance at once.
    async fn remove_instance(&self, id: &str) -> Result<()>;

    /// [`crate::Store::create_incident`], refused with `Fenced` (storing nothing) when
    /// `fence` no longer holds its lease at commit.
    async fn create_incident_fenced(
        &self,
        fence: &Fence,
        events: &[NewEvent],
    ) -> Result<IncidentId>;

    /// [`crate::Store::append_incident_events`], refused with `Fenced` (storing nothing)
    /// when `fence` no longer holds its lease at commit.
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
    async fn source_state(&self, kind: SourceKind, id: &str) -> Result<Option<SourceState>>;

    /// Records a heartbeat push for a monitor (the latest one wins).
    async fn save_heartbeat(&self, monitor: &str, at: DateTime<Utc>) -> Result<()>;

    /// The latest push of every monitor that got one.
    async fn heartbeats(&self) -> Result<Vec<(String, DateTime<Utc>)>>;

    /// The feed of changes every instance writes (incident events, source states, heartbeat
    /// pushes), including this instance's own; `None` when the backend has none (SQLite).
    /// The feed reconnects by itself and reports [`Change::Reconnected`] when it did.
    async fn changes(&self) -> Result<Option<mpsc::Receiver<Change>>>;
}
