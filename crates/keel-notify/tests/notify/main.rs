//! keel-notify's integration tests, all against real peers on loopback: an HTTP receiver
//! (axum) that checks signatures and records what it got, a real SMTP server (aiosmtpd, via
//! `scripts/smtp-sink`), and SQLite for the outbox.

mod email;
mod guard;
mod outbox;
mod support;
mod webhook;
