//! Assessment: from the current health of every node in the dependency graph to causes,
//! impact, severity, an ETA and a checklist. Pure functions of their inputs.
//!
//! The model types live in `model.rs`; the graph, folding source health into node health,
//! cause finding, impact, severity rules, the ETA estimate and runbook selection each get a
//! module of their own.

mod alternatives;
mod cause;
mod eta;
mod graph;
mod health;
mod impact;
mod model;
mod runbook;
mod severity;

pub use alternatives::{
    alternatives, backup_prompt, backup_prompt_prefix, blockers, step_guards, trouble_words,
    troubles_from_assessment, troubles_from_health, unsafe_reason, AlternativeStatus, Troubles,
};
pub use cause::assess;
pub use eta::{describe_eta, estimate_eta};
pub use graph::{Graph, Located, Node};
pub use health::{fold_health, SourceHealth};
pub use impact::{about_users, impact};
pub use model::*;
pub use runbook::runbook_steps;
pub use severity::severity;
