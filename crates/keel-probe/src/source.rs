//! Where an observation comes from and where it goes: the [`Source`] a raw outcome speaks for
//! and the [`Sink`] that confirms it into health.
//!
//! Kept apart from the scheduler because it is not the only producer: the server's intake
//! (alerts, heartbeat pushes) observes the same sources into the same sink.

use chrono::{DateTime, Utc};
use keel_core::config::{Monitor, Vendor};
use keel_core::confirm::Observation;
use keel_core::{NodeId, SourceKey};
use tokio::sync::watch;

/// Receives every raw outcome. Implemented by the server's signal hub.
pub trait Sink: Send + Sync + 'static {
    /// Applies one observation of a source; returns true while a failure is being confirmed
    /// (the scheduler then re-checks after the short retry interval).
    fn observe(&self, source: &Source, obs: Observation) -> bool;

    /// When the source was last observed and whether a failure is being confirmed: where a
    /// scheduler that takes the source over from another instance resumes its cadence.
    fn resume(&self, _source: &Source) -> Option<(DateTime<Utc>, bool)> {
        None
    }
}

/// Which sources this process checks. With several instances on one database each checks its
/// share; alone (or as a remote probe) it checks everything it was given.
pub trait Owner: Send + Sync + 'static {
    fn owns(&self, source: &Source) -> bool;

    /// Changes whenever what is owned may have changed (a source not owned now waits on it).
    fn subscribe(&self) -> watch::Receiver<u64>;
}

/// Owns every source: one instance, or a probe.
pub struct Everything(watch::Sender<u64>);

impl Default for Everything {
    fn default() -> Self {
        Everything(watch::Sender::new(0))
    }
}

impl Owner for Everything {
    fn owns(&self, _source: &Source) -> bool {
        true
    }

    fn subscribe(&self) -> watch::Receiver<u64> {
        self.0.subscribe()
    }
}

/// What the sink needs to know about the source of an observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub key: SourceKey,
    /// Graph node the source speaks about: the monitor's component, or the vendor's id.
    pub component: NodeId,
    pub confirmations: u32,
    pub recoveries: u32,
}

impl Source {
    pub fn monitor(m: &Monitor) -> Self {
        Source {
            key: SourceKey::monitor(m.id.clone()),
            component: NodeId::from(&m.component),
            confirmations: m.confirmations,
            recoveries: m.recoveries,
        }
    }

    pub fn vendor(v: &Vendor) -> Self {
        // A vendor's own page already reports confirmed states; one poll is enough, but a
        // single unreadable poll only yields Unknown, which never pages.
        Source {
            key: SourceKey::vendor(v.id.clone()),
            component: NodeId::from(&v.id),
            confirmations: 1,
            recoveries: 1,
        }
    }
}
