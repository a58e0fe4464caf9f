//! Incidents: the lifecycle state machine, the append-only timeline it is folded from, the
//! correlation engine that turns assessments into incident events, and the postmortem.
//!
//! An incident is nothing but its events: `Incident::replay(events)` rebuilds it, and every
//! change is decided by a pure function returning new events (or a refusal with the reason).

mod model;

pub use model::*;
