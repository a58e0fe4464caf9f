//! The checks a monitor runs (http, tcp, dns, tls). Each yields an [`Outcome`] with a reason a
//! human understands and the latency it measured.
//!
//! Everything expensive is built once in [`Checker::new`] and shared (behind an `Arc`) by the
//! scheduler for every monitor: the HTTP clients with their connection pools and TLS
//! configurations, the TLS check's configuration, and the DNS resolvers (cached per resolver
//! address). Building a client per request costs milliseconds of CPU, which at 10,000 monitors
//! would dwarf the checks themselves.
//!
//! Each check is bounded by its timeout as a whole, body reading included, so a hanging or
//! trickling target never holds a scheduler slot longer than the monitor allows.

mod dns;
mod http;
mod tcp;
mod tls;

pub use http::POOL_IDLE_PER_HOST;

use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_core::config::Check;
use keel_core::human;
use keel_core::Health;

use crate::Outcome;

/// Why a [`Checker`] could not be built. These are environment problems (no usable TLS
/// configuration), not problems of any one monitor.
#[derive(Debug, thiserror::Error)]
pub enum CheckerError {
    #[error("could not build the HTTP client: {0}")]
    HttpClient(#[from] reqwest::Error),
    #[error("could not set up TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("could not set up TLS certificate verification: {0}")]
    TlsVerifier(#[from] rustls::client::VerifierBuilderError),
}

/// Runs monitor checks. Build one with [`Checker::new`] and share it; it is cheap to call
/// [`Checker::run`] concurrently from many tasks.
pub struct Checker {
    http: http::HttpClients,
    tls: tls::TlsProbe,
    dns: dns::Resolvers,
}

impl std::fmt::Debug for Checker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checker").finish_non_exhaustive()
    }
}

impl Checker {
    /// Builds the HTTP clients, TLS configurations and resolver cache once.
    pub fn new() -> Result<Checker, CheckerError> {
        // One explicit provider for everything, so that whatever another crate installs as
        // rustls' process-wide default never changes what Keel's checks accept.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = Arc::new(tls::webpki_root_store());
        Ok(Checker {
            http: http::HttpClients::new(&provider, &roots)?,
            tls: tls::TlsProbe::new(&provider, &roots)?,
            dns: dns::Resolvers::default(),
        })
    }

    /// Runs one check, bounded as a whole by `timeout`.
    ///
    /// The check's state (a reqwest request in flight is some kilobytes of future) lives in
    /// a box allocated for the check and freed after it, not inline in the returned future:
    /// the scheduler keeps one task per monitor, and a task's future is as large as the
    /// largest state it can be in, so an inline check would make every idle monitor carry
    /// it between checks (about 3 KiB each, 300 MB at 100,000 monitors).
    pub async fn run(&self, check: &Check, timeout: Duration) -> Outcome {
        Box::pin(self.run_inline(check, timeout)).await
    }

    async fn run_inline(&self, check: &Check, timeout: Duration) -> Outcome {
        let start = Instant::now();
        let work = async {
            match check {
                Check::Http(c) => self.http.run(c, start).await,
                Check::Tcp(c) => tcp::run(c, start).await,
                Check::Dns(c) => self.dns.run(c, start).await,
                Check::Tls(c) => self.tls.run(c, start).await,
                Check::Heartbeat(_) => Outcome {
                    health: Health::Unknown,
                    reason: "heartbeat monitors are judged by pushes".into(),
                    latency: Duration::ZERO,
                },
            }
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::down(
                format!("timed out after {}", human::duration(timeout)),
                start.elapsed(),
            ),
        }
    }
}

fn degraded(reason: impl Into<String>, latency: Duration) -> Outcome {
    Outcome {
        health: Health::Degraded,
        reason: reason.into(),
        latency,
    }
}

fn unknown(reason: impl Into<String>, latency: Duration) -> Outcome {
    Outcome {
        health: Health::Unknown,
        reason: reason.into(),
        latency,
    }
}

/// Names the cause of an I/O failure in the words an operator uses, or `None` when the kind
/// says nothing more than the error's own text.
fn io_kind_words(kind: std::io::ErrorKind) -> Option<&'static str> {
    use std::io::ErrorKind as K;
    Some(match kind {
        K::ConnectionRefused => "connection refused",
        // A reset seen while writing surfaces as a broken pipe; to the operator it is the same.
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => "connection reset",
        K::UnexpectedEof => "connection closed by the server",
        K::TimedOut => "connection timed out",
        K::AddrNotAvailable => "address not available",
        K::PermissionDenied => "permission denied",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an idle monitor task carries of a check: a pointer to the boxed work and the
    /// arguments, not the request's state machine (`run_inline`'s future is kilobytes).
    #[test]
    fn run_future_stays_small() {
        let checker = Checker::new().unwrap();
        let check = Check::Tcp(keel_core::config::TcpCheck {
            host: "127.0.0.1".into(),
            port: 9,
        });
        let small = std::mem::size_of_val(&checker.run(&check, Duration::from_secs(1)));
        let inline = std::mem::size_of_val(&checker.run_inline(&check, Duration::from_secs(1)));
        println!("Checker::run future: {small} bytes; the check inline: {inline} bytes");
        assert!(small <= 64, "Checker::run future is {small} bytes");
        assert!(inline > small, "{inline} vs {small}");
    }
}
