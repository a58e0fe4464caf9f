//! Keel's notifications: telling subscribers and responders about outages.
//!
//! One module per channel, each with `validate` (is this target usable?), `send` (deliver one
//! message) and a pure payload builder unit-tested against the real shapes in
//! `fixtures/notifications/` — except the chat channels, which differ only in their bodies and
//! share one `validate` and `send` ([`responder`]):
//!
//! - [`webhook`]: Statuspage-shaped subscriber webhooks signed with HMAC-SHA256;
//! - [`email`]: SMTP through `lettre`, confirmation and update emails in English and Japanese;
//! - [`slack`], [`discord`], [`teams`]: responders' chat channels, their payload builders;
//! - [`page`]: pages to the person on call, rendered for each contact kind, with the
//!   paging-only channels [`ntfy`] (push) and [`twilio`] (SMS and voice calls).
//!
//! [`guard`] keeps subscriber webhooks away from private and loopback addresses, also at
//! connect time. [`delivery`] is what the outbox stores and the clients that send it;
//! [`outbox`] is the worker that claims stored notifications and sends them with retries,
//! backoff and a dead-letter list.

pub mod delivery;
pub mod discord;
pub mod email;
pub mod guard;
pub mod http;
mod i18n;
pub mod ntfy;
pub mod outbox;
pub mod page;
pub mod responder;
pub mod slack;
pub mod teams;
#[cfg(test)]
mod testdata;
pub mod twilio;
pub mod webhook;

pub use delivery::{idempotency_key, Delivery, PagingSettings, SenderOptions, Senders};
pub use http::{HttpOptions, SendError};
pub use outbox::{run, run_once, Outcome, WorkerOptions};
pub use page::{delivery_for, PageMessage};
pub use responder::{Link, ResponderMessage, Tone};
