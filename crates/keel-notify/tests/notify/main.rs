//! keel-notify's integration tests, all against real peers on loopback: an HTTP receiver
//! (axum) that checks signatures and records what it got, a real SMTP server (aiosmtpd, via
//! `scripts/smtp-sink`), SQLite for the outbox, and ntfy and Twilio stand-ins that check every
//! request against the documented shapes in `fixtures/paging/`.

mod email;
mod guard;
mod outbox;
mod paging;
mod support;
mod webhook;
