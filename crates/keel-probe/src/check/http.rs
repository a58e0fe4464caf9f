//! The `http` check: one request, judged on status, body assertions and latency.
//!
//! Four `reqwest` clients are built once, one per (follow redirects, verify TLS) pair, since
//! both are client-wide settings in reqwest. Connections are pooled: a monitor hitting the
//! same host every few seconds reuses its connection, which costs a fraction of a fresh TCP
//! and TLS setup per check (about 11 µs against 95 µs of CPU measured on this kind of
//! machine) and is also how the users of a service reach it. A dead server is still noticed:
//! a pooled connection to it fails or is found closed, and a fresh one is refused. The pool is
//! bounded ([`POOL_IDLE_PER_HOST`] idle connections per host, closed after 30 s idle), so the
//! connections Keel holds open depend on the configuration — hosts checked and
//! `max_concurrency` checks in flight — not on how checks happened to bunch up lately.
//!
//! Bodies are read only as far as needed: up to [`BODY_CAP`] when a keyword or JSON assertion
//! needs them, otherwise up to [`DRAIN_CAP`] and thrown away, because a connection whose
//! response body was not read to the end cannot go back to the pool.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_core::config::{HttpCheck, StatusRange};
use keel_core::human;
use reqwest::redirect::Policy;
use rustls::crypto::CryptoProvider;
use rustls::RootCertStore;

use super::{degraded, io_kind_words, tls, CheckerError};
use crate::Outcome;

/// Redirects followed before giving up ("redirect forever" ends here with a clear reason).
const MAX_REDIRECTS: usize = 10;
/// Most of a body read for keyword and JSON assertions; past this we judge on what we read.
const BODY_CAP: usize = 1024 * 1024;
/// Most of a body read (and discarded) just to hand the connection back to the pool.
const DRAIN_CAP: usize = 64 * 1024;
/// Idle pooled connections are closed after this (hyper's pool sweeps them once per this
/// period, so one may stay up to twice as long). Covers monitors checking the same host every
/// few seconds, which is where reuse saves CPU; a monitor alone on its host once a minute
/// connects afresh, a cost that does not matter at that rate.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per host (scheme, host and port), per client. Checks that bunch up
/// (a busy machine starts many due checks at once, up to `[scheduler] max_concurrency`) each
/// open a connection; without a cap all of them would be kept until the idle timeout, so the
/// open fds would follow the worst burst of the last minute rather than the configuration. A
/// connection handed back to a full pool is closed at once. Eight covers the steady state of
/// even a thousand checks a second to one host (each holds its connection for about a
/// millisecond).
pub const POOL_IDLE_PER_HOST: usize = 8;

/// The HTTP clients, indexed by (follow_redirects, verify_tls).
pub(super) struct HttpClients {
    clients: [reqwest::Client; 4],
}

impl HttpClients {
    pub(super) fn new(
        provider: &Arc<CryptoProvider>,
        roots: &Arc<RootCertStore>,
    ) -> Result<Self, CheckerError> {
        let build = |follow: bool, verify: bool| -> Result<reqwest::Client, CheckerError> {
            let mut tls = tls::client_config(provider, roots, verify)?;
            // Built without reqwest's http2 feature, so offer only HTTP/1.1.
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            let redirect = if follow {
                Policy::limited(MAX_REDIRECTS)
            } else {
                Policy::none()
            };
            Ok(reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .redirect(redirect)
                .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                .pool_max_idle_per_host(POOL_IDLE_PER_HOST)
                .tcp_nodelay(true)
                .user_agent(concat!("keel/", env!("CARGO_PKG_VERSION")))
                .build()?)
        };
        Ok(HttpClients {
            clients: [
                build(false, false)?,
                build(false, true)?,
                build(true, false)?,
                build(true, true)?,
            ],
        })
    }

    fn client(&self, follow: bool, verify: bool) -> &reqwest::Client {
        &self.clients[usize::from(follow) * 2 + usize::from(verify)]
    }

    pub(super) async fn run(&self, check: &HttpCheck, start: Instant) -> Outcome {
        let method = match reqwest::Method::from_bytes(check.method.to_ascii_uppercase().as_bytes())
        {
            Ok(m) => m,
            Err(_) => {
                return Outcome::down(
                    format!("invalid request: bad method {:?}", check.method),
                    start.elapsed(),
                )
            }
        };
        let mut request = self
            .client(check.follow_redirects, check.verify_tls)
            .request(method, &check.url);
        for (name, value) in &check.headers {
            request = request.header(name, value);
        }
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::down(describe_error(&e), start.elapsed()),
        };

        let status = response.status().as_u16();
        let default_expected = [StatusRange { from: 200, to: 299 }];
        let expected: &[StatusRange] = if check.expected_status.is_empty() {
            &default_expected
        } else {
            &check.expected_status
        };
        let status_ok = expected.iter().any(|r| r.contains(status));
        let needs_body = check.keyword.is_some()
            || check.keyword_absent.is_some()
            || check.json_pointer.is_some();

        let (cap, keep) = if status_ok && needs_body {
            (BODY_CAP, true)
        } else {
            (DRAIN_CAP, false)
        };
        let body = match read_body(&mut response, cap, keep).await {
            Ok(b) => b,
            Err(e) => {
                return Outcome::down(
                    format!("{} while reading the body", describe_error(&e)),
                    start.elapsed(),
                )
            }
        };
        let latency = start.elapsed();

        if !status_ok {
            return Outcome::down(
                format!("HTTP {status} (expected {})", describe_expected(expected)),
                latency,
            );
        }
        if let Some(reason) = judge_body(check, &body) {
            return Outcome::down(reason, latency);
        }
        if let Some(max) = check.max_latency {
            if latency > max {
                return degraded(
                    format!(
                        "slower than {} ({})",
                        human::duration(max),
                        human::duration(latency)
                    ),
                    latency,
                );
            }
        }
        Outcome::up(format!("HTTP {status}"), latency)
    }
}

/// What was read of a body, and whether there was more.
struct Body {
    bytes: Vec<u8>,
    truncated: bool,
}

/// Reads at most `cap` bytes, keeping them only when `keep`. Stops early past the cap: the
/// rest is never downloaded (the connection is then closed instead of pooled).
async fn read_body(
    response: &mut reqwest::Response,
    cap: usize,
    keep: bool,
) -> Result<Body, reqwest::Error> {
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = response.chunk().await? {
        let room = cap - seen;
        if chunk.len() > room {
            if keep {
                bytes.extend_from_slice(&chunk[..room]);
            }
            return Ok(Body {
                bytes,
                truncated: true,
            });
        }
        seen += chunk.len();
        if keep {
            bytes.extend_from_slice(&chunk);
        }
    }
    Ok(Body {
        bytes,
        truncated: false,
    })
}

/// The first body assertion that fails, in words; `None` when all hold.
fn judge_body(check: &HttpCheck, body: &Body) -> Option<String> {
    let within = if body.truncated {
        " in first 1 MiB"
    } else {
        ""
    };
    if check.keyword.is_some() || check.keyword_absent.is_some() {
        let text = String::from_utf8_lossy(&body.bytes);
        if let Some(k) = &check.keyword {
            if !text.contains(k.as_str()) {
                return Some(format!("keyword '{k}' missing{within}"));
            }
        }
        if let Some(k) = &check.keyword_absent {
            if text.contains(k.as_str()) {
                return Some(format!("keyword '{k}' present"));
            }
        }
    }
    if let Some((pointer, want)) = &check.json_pointer {
        let doc: serde_json::Value = match serde_json::from_slice(&body.bytes) {
            Ok(v) => v,
            Err(_) if body.truncated => {
                return Some("body is not JSON (only the first 1 MiB was read)".into())
            }
            Err(_) => return Some("body is not JSON".into()),
        };
        match doc.pointer(pointer) {
            None => return Some(format!("JSON {pointer} missing")),
            Some(got) if got != want => {
                return Some(format!("JSON {pointer} is {got}, expected {want}"))
            }
            Some(_) => {}
        }
    }
    None
}

/// "2xx", "200, 301", "300-399".
fn describe_expected(ranges: &[StatusRange]) -> String {
    ranges
        .iter()
        .map(|r| {
            if r.from == r.to {
                r.from.to_string()
            } else if r.from % 100 == 0 && r.to == r.from + 99 {
                format!("{}xx", r.from / 100)
            } else {
                format!("{}-{}", r.from, r.to)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Turns a reqwest error into the words an operator uses, by looking at its causes.
fn describe_error(e: &reqwest::Error) -> String {
    let causes = chain_text(e);
    if e.is_redirect() {
        if causes.contains("too many redirects") {
            return format!("too many redirects (more than {MAX_REDIRECTS})");
        }
        return format!("redirect failed: {causes}");
    }
    if e.is_builder() {
        return format!("invalid request: {causes}");
    }
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(e) = tls::tls_error_in(io) {
                return tls::tls_error_words(e);
            }
            if let Some(words) = io_kind_words(io.kind()) {
                return words.into();
            }
        }
        if let Some(e) = err.downcast_ref::<rustls::Error>() {
            return tls::tls_error_words(e);
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() {
                return "connection closed before a response".into();
            }
            if h.is_parse() || h.is_parse_status() {
                return format!("invalid HTTP response: {h}");
            }
        }
        cur = err.source();
    }
    if causes.contains("dns error") {
        let host = e.url().and_then(|u| u.host_str()).unwrap_or("?");
        return format!("could not resolve host {host}: {}", innermost(e));
    }
    if causes.is_empty() {
        e.to_string()
    } else {
        causes
    }
}

/// The causes below reqwest's own "error sending request for url (…)", joined, each said once.
fn chain_text(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = e.source();
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

fn innermost(e: &reqwest::Error) -> String {
    let mut last: &(dyn StdError + 'static) = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: u16, to: u16) -> StatusRange {
        StatusRange { from, to }
    }

    #[test]
    fn expected_statuses_read_as_written() {
        assert_eq!(describe_expected(&[range(200, 299)]), "2xx");
        assert_eq!(
            describe_expected(&[range(200, 200), range(301, 301)]),
            "200, 301"
        );
        assert_eq!(describe_expected(&[range(300, 350)]), "300-350");
    }
}
