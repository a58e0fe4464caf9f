//! Incidents: the lifecycle state machine, the append-only timeline it is folded from, the
//! correlation engine that turns assessments into incident events, and the postmortem.
//!
//! An incident is nothing but its events: `Incident::replay(events)` rebuilds it, and every
//! change is decided by a pure function returning new events (or a refusal with the reason):
//! `decide` for responders, `correlate` for Keel itself.

mod decide;
mod engine;
mod judge;
mod metrics;
mod model;
mod postmortem;
mod state;
#[cfg(test)]
mod testkit;
pub mod words;

pub(crate) use decide::text_field;
pub use decide::{
    allowed_by_hand, decide, Command, Refusal, ACK_VIA, NAME_MAX_CHARS, TEXT_MAX_CHARS,
};
pub use engine::{
    canary_hold, correlate, correlate_with_unknown, declare, next_canary_hold, unknown_nodes,
    Judge, Planned, Settings, TITLE_MAX_CHARS,
};
pub use judge::{past_incidents, ConfigJudge};
pub use metrics::{mttx, Mttx};
pub use model::*;
pub use postmortem::{postmortem, Postmortem};
pub(crate) use state::fate_words;
pub use state::{
    stamp, ActionItem, ChecklistStep, Draft, DraftFate, EscalationState, Incident, PublicMark,
    PublishedUpdate, ReplayError,
};
