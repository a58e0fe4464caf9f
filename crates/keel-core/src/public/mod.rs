//! What the public sees: the status snapshot (the one model the page, the Statuspage v2 JSON,
//! the feeds, the badges and the static export all render from), the drafted customer updates,
//! and the disclosure check that guards every public text.

pub mod badge;
pub mod feed;
pub mod i18n;
mod model;
pub mod statuspage;

pub use model::*;
