//! Keel's detection edge: the checks monitors run (http, tcp, dns, tls, heartbeat), the
//! parsers and poller for vendors' public status pages, the scheduler that runs them all, and the
//! source/sink pair every observation travels through (shared with the server's intake).

pub mod check;
pub mod remote;
pub mod scheduler;
pub mod source;
pub mod status_pages;

pub use source::{Sink, Source};

use std::time::Duration;

use keel_core::Health;

/// The result of one check or poll, before confirmation.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub health: Health,
    /// Why, for a human: "HTTP 503", "timed out after 5s", "connection refused".
    pub reason: String,
    pub latency: Duration,
}

impl Outcome {
    pub fn up(reason: impl Into<String>, latency: Duration) -> Self {
        Outcome {
            health: Health::Up,
            reason: reason.into(),
            latency,
        }
    }

    pub fn down(reason: impl Into<String>, latency: Duration) -> Self {
        Outcome {
            health: Health::Down,
            reason: reason.into(),
            latency,
        }
    }
}
