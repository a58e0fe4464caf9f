//! What the public sees: the status snapshot (the one model the page, the Statuspage v2 JSON,
//! the feeds, the badges and the static export all render from), the drafted customer updates,
//! and the disclosure check that guards every public text.

pub mod badge;
pub mod disclosure;
pub mod draft;
pub mod feed;
pub mod groups;
pub mod i18n;
mod model;
pub mod snapshot;
pub mod statuspage;
pub mod templates;

pub use disclosure::{check, DisclosureRules, Finding, MIN_TERM_CHARS};
pub use draft::{
    check_wording, draft_events, draft_for, draft_in, drafts_due, public_eta, public_title,
    situation, status_for, DraftText, Facts, Publisher, WordingProblem,
};
pub use model::*;
pub use snapshot::build as build_snapshot;
pub use templates::validate as validate_template;
