//! Fetching a vendor's status document: one bounded GET, then [`parse`](super::parse).
//!
//! Every way this can fail (unreachable, slow, an error status, a body too large, a document
//! Keel cannot read) ends as [`Health::Unknown`] with a reason a human understands, never as
//! an error the caller must handle: a vendor's bad day must not stop Keel's.

use std::time::{Duration, Instant};

use keel_core::config::Vendor;
use keel_core::human;

use super::{parse, VendorStatus};

/// Largest status document read. The largest real one Keel knows (Google Cloud's
/// `incidents.json`, a year of incidents) is about 1.4 MB.
pub const MAX_DOCUMENT_BYTES: usize = 4 * 1024 * 1024;

/// The result of one poll of a vendor's status page.
#[derive(Debug, Clone, PartialEq)]
pub struct VendorPoll {
    /// What the page says, or `Health::Unknown` with the reason it could not be learned.
    pub status: VendorStatus,
    /// From sending the request to having the whole document (or giving up).
    pub latency: Duration,
    /// True when the page could not be fetched or read, as opposed to reporting a problem.
    pub error: bool,
}

/// Fetches and parses `vendor.status_url`, all within `vendor.timeout`.
///
/// Build `client` once and share it: a new client per poll re-reads the system certificate
/// store each time.
pub async fn poll(client: &reqwest::Client, vendor: &Vendor) -> VendorPoll {
    let started = Instant::now();
    let fetched = tokio::time::timeout(vendor.timeout, fetch(client, vendor)).await;
    let latency = started.elapsed();
    let failed = |reason: String| VendorPoll {
        status: VendorStatus::unknown(reason),
        latency,
        error: true,
    };
    match fetched {
        Err(_) => failed(format!(
            "timed out after {}",
            human::duration(vendor.timeout)
        )),
        Ok(Err(reason)) => failed(reason),
        Ok(Ok(body)) => match parse(vendor.format, &body, &vendor.components) {
            Ok(status) => VendorPoll {
                // A readable page that itself reports "unknown" (Slack's "broken") is not a
                // failure to poll.
                error: false,
                status,
                latency,
            },
            Err(e) => failed(format!("malformed: {e}")),
        },
    }
}

async fn fetch(client: &reqwest::Client, vendor: &Vendor) -> Result<Vec<u8>, String> {
    let mut resp = client
        .get(&vendor.status_url)
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(vendor.timeout)
        .send()
        .await
        .map_err(|e| describe(&e, vendor.timeout))?;

    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP {} from status page", status.as_u16()));
    }
    let too_large = || {
        format!(
            "status document larger than {} MiB",
            MAX_DOCUMENT_BYTES / (1024 * 1024)
        )
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(too_large());
    }

    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| {
        if e.is_timeout() {
            format!("timed out after {}", human::duration(vendor.timeout))
        } else {
            format!(
                "connection lost while reading the status document: {}",
                root_cause(&e)
            )
        }
    })? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Turns a request error into the words an operator would use.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timed out after {}", human::duration(timeout));
    }
    if e.is_builder() {
        return format!("bad status_url: {}", root_cause(e));
    }
    if e.is_redirect() {
        return "too many redirects".to_string();
    }
    if e.is_connect() {
        return format!("unreachable: {}", root_cause(e));
    }
    format!("request failed: {}", root_cause(e))
}

/// The innermost cause, where the useful words are ("connection refused", "dns error: …").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    if let Some(io) = cur.downcast_ref::<std::io::Error>() {
        use std::io::ErrorKind::*;
        let words = match io.kind() {
            ConnectionRefused => Some("connection refused"),
            ConnectionReset => Some("connection reset"),
            ConnectionAborted => Some("connection aborted"),
            TimedOut => Some("timed out"),
            HostUnreachable => Some("host unreachable"),
            NetworkUnreachable => Some("network unreachable"),
            UnexpectedEof => Some("connection closed early"),
            _ => None,
        };
        if let Some(w) = words {
            return w.to_string();
        }
    }
    let text = cur.to_string();
    // Strip the "(os error 111)" tail that adds nothing for a human.
    match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use keel_core::Health;

    use super::*;

    #[test]
    fn unknown_health_is_used_for_failures() {
        assert_eq!(VendorStatus::unknown("x").health, Health::Unknown);
    }
}
