//! The `tcp` check: resolve the host, connect to the port, close.
//!
//! `connect` is shared with the `tls` check, so both describe unreachable hosts the same way.

use std::time::Instant;

use keel_core::config::TcpCheck;
use tokio::net::TcpStream;

use super::io_kind_words;
use crate::Outcome;

pub(super) async fn run(check: &TcpCheck, start: Instant) -> Outcome {
    match connect(&check.host, check.port).await {
        Ok(stream) => {
            let latency = start.elapsed();
            drop(stream);
            Outcome::up(
                format!("connected to {}:{}", check.host, check.port),
                latency,
            )
        }
        Err(reason) => Outcome::down(reason, start.elapsed()),
    }
}

/// Resolves `host` and connects to the first address that accepts, or says why none did.
pub(super) async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs: Vec<_> = match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect(),
        Err(e) => return Err(format!("could not resolve host {host}: {e}")),
    };
    if addrs.is_empty() {
        return Err(format!("could not resolve host {host}: no addresses"));
    }
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Checks send little and wait for the answer; Nagle would only add delay.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last = Some(e),
        }
    }
    let e = last.map(|e| match io_kind_words(e.kind()) {
        Some(words) => words.to_owned(),
        None => e.to_string(),
    });
    Err(e.unwrap_or_else(|| "could not connect".into()))
}
