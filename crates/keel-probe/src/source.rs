//! Where an observation comes from and where it goes: the [`Source`] a raw outcome speaks for
//! and the [`Sink`] that confirms it into health.
//!
//! Kept apart from the scheduler because it is not the only producer: the server's intake
//! (alerts, heartbeat pushes) observes the same sources into the same sink.

use keel_core::config::{Monitor, Vendor};
use keel_core::confirm::Observation;
use keel_core::SourceKind;

/// Receives every raw outcome. Implemented by the server's signal hub.
pub trait Sink: Send + Sync + 'static {
    /// Applies one observation of a source; returns true while a failure is being confirmed
    /// (the scheduler then re-checks after the short retry interval).
    fn observe(&self, source: &Source, obs: Observation) -> bool;
}

/// What the sink needs to know about the source of an observation.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    pub kind: SourceKind,
    pub id: String,
    /// Graph node the source speaks about: the monitor's component, or the vendor's id.
    pub component: String,
    pub confirmations: u32,
    pub recoveries: u32,
}

impl Source {
    pub fn monitor(m: &Monitor) -> Self {
        Source {
            kind: SourceKind::Monitor,
            id: m.id.to_string(),
            component: m.component.to_string(),
            confirmations: m.confirmations,
            recoveries: m.recoveries,
        }
    }

    pub fn vendor(v: &Vendor) -> Self {
        // A vendor's own page already reports confirmed states; one poll is enough, but a
        // single unreadable poll only yields Unknown, which never pages.
        Source {
            kind: SourceKind::Vendor,
            id: v.id.to_string(),
            component: v.id.to_string(),
            confirmations: 1,
            recoveries: 1,
        }
    }
}
