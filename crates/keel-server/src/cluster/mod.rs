//! Several instances on one database acting as one Keel.
//!
//! Two kinds of lease, both in the store and timed on the database's clock:
//! - **`leader`**: the one instance that turns health into incident events (correlation,
//!   drafts falling due, escalation). Its writes carry the lease's generation as a fence, so
//!   an instance that was paused past its lease and wakes up still believing it leads has its
//!   writes refused by the database.
//! - **`shard:NN`**: monitors and vendor polls are hashed into [`plan::SHARDS`] shards; an
//!   instance checks only the sources of the shards it holds, so each monitor is checked by one
//!   instance at a time and a dead instance's shards are claimed when their leases expire.
//!
//! Every instance follows what the others write through the store's change feed (the
//! `follow` job, `jobs/follow.rs`): incident events fold into its own book, source states
//! into its hub, heartbeat pushes into its heartbeat table. So every instance serves the same
//! page and API.
//!
//! Ownership is also bounded locally: a lease counts only until `lease` after the renewal that
//! got it was sent (a monotonic clock, which keeps running while the process is stopped). The
//! exception is a database that cannot be reached: then nobody can take a shard over, and an
//! instance keeps checking the monitors it had rather than going blind with everyone else.

pub mod digest;
pub mod job;
pub mod plan;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_core::SourceKey;
use keel_probe::source::{Owner, Source};
use keel_store::{Fence, Lease};
use tokio::sync::watch;
use tokio::time::Instant;

/// The lease of the incident book.
pub const LEADER: &str = "leader";

/// This instance's standing in the deployment.
pub struct Cluster {
    /// Unique per process.
    pub id: String,
    /// `[cluster] lease`.
    pub lease: Duration,
    state: Mutex<State>,
    /// Bumped whenever the held shards or the leadership change.
    changed: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    leader: Option<(Lease, Instant)>,
    shards: BTreeSet<u32>,
    shards_until: Option<Instant>,
    /// The last renewal failed because the store did not answer.
    unreachable: bool,
}

impl Cluster {
    pub fn new(id: String, lease: Duration) -> Self {
        Cluster {
            id,
            lease,
            state: Mutex::new(State::default()),
            changed: watch::Sender::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The fence for writes as leader, while this instance leads.
    pub fn leader_fence(&self) -> Option<Fence> {
        let s = self.lock();
        let (lease, until) = s.leader.as_ref()?;
        (Instant::now() < *until).then(|| lease.fence())
    }

    pub fn is_leader(&self) -> bool {
        self.leader_fence().is_some()
    }

    /// Forgets the leadership at once (a fenced write said another instance took it).
    pub fn step_down(&self) {
        let had = self.lock().leader.take().is_some();
        if had {
            tracing::warn!(instance = %self.id, "no longer the leader: another instance took the incident book");
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Whether this instance checks the source now.
    pub fn owns(&self, key: &SourceKey) -> bool {
        let shard = plan::shard_of_key(key);
        let s = self.lock();
        s.shards.contains(&shard)
            && (s.unreachable || s.shards_until.is_some_and(|u| Instant::now() < u))
    }

    /// The shards held, for `GET /api/v1/cluster` and the lease job.
    pub fn shards(&self) -> BTreeSet<u32> {
        self.lock().shards.clone()
    }

    /// Records a renewal's outcome: what is held, until when (`sent` + lease).
    pub(crate) fn renewed(&self, leader: Option<Lease>, shards: BTreeSet<u32>, sent: Instant) {
        let until = sent + self.lease;
        let changed = {
            let mut s = self.lock();
            let was_leader = s.leader.as_ref().map(|(l, _)| l.generation);
            let now_leader = leader.as_ref().map(|l| l.generation);
            // Sources whose lease had lapsed locally (a stalled process) wait for a change
            // before they check again, also when the same shards come back.
            let lapsed = s.shards_until.is_some_and(|u| Instant::now() >= u);
            let changed = was_leader != now_leader || s.shards != shards || lapsed;
            if was_leader.is_none() && now_leader.is_some() {
                tracing::info!(instance = %self.id, generation = ?now_leader, "leading the incident book");
            }
            s.leader = leader.map(|l| (l, until));
            s.shards = shards;
            s.shards_until = Some(until);
            s.unreachable = false;
            changed
        };
        if changed {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Records a renewal that the store did not answer. Wakes whoever waits for a change: a
    /// monitor that stopped when its lease lapsed locally is checked again.
    pub(crate) fn unreachable(&self) {
        let was = std::mem::replace(&mut self.lock().unreachable, true);
        if !was {
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Wakes on every change of leadership or shards.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// The scheduler asks the cluster which sources are its own.
pub struct ClusterOwner(pub Arc<Cluster>);

impl Owner for ClusterOwner {
    fn owns(&self, source: &Source) -> bool {
        self.0.owns(&source.key)
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// A process-unique instance id: host, pid and a random part (a pid is reused after a
/// restart; the random part tells the two lives apart).
pub fn instance_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "keel".into());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}
