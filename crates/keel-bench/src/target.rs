//! The loopback target: a minimal HTTP/1.1 server answering `200 ok` on every path.
//!
//! It runs as its own process so that its CPU is never counted against Keel or the bare loop,
//! and it is as cheap as a server can be (raw hyper, keep-alive, no routing, no logging) so
//! that it disturbs the measured process as little as possible on a 2-core machine.
//!
//! It also counts what it is asked, for runs where Keel's own counters are not enough (several
//! instances, one of them killed): every request to `/m/{i}` is counted, and after a *mark*
//! it notes the first request for each monitor `i < --monitors`. `GET /_bench/stats` answers
//! the counts as JSON; `POST /_bench/mark` sets the mark to now and forgets what was seen.
//!
//! For soak runs it can also make some monitors flap: with `--flap-period P`, a path ending in
//! `/flap` answers `200 ok` for the first P, `503` for the next P, and so on, so incidents on
//! those monitors open and resolve all through the run.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

/// No mark set.
const NO_MARK: u64 = u64::MAX;

/// What the target counts. Times are milliseconds since the target started, plus one, so
/// that 0 can mean "not yet".
pub struct Counts {
    started: Instant,
    /// Half-cycle of the flapping paths in ms; 0: they never fail.
    flap_period_ms: u64,
    requests: AtomicU64,
    mark: AtomicU64,
    seen: AtomicU64,
    first_after_mark: Vec<AtomicU64>,
}

/// `GET /_bench/stats`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Stats {
    /// Requests to `/m/…` since the target started.
    pub requests: u64,
    /// The target's clock, in ms since it started.
    pub now_ms: u64,
    /// The mark, in ms since the target started, if one is set.
    pub mark_ms: Option<u64>,
    /// Monitors (of `/m/0 … /m/{monitors-1}`) requested at least once since the mark.
    pub seen: u64,
    pub monitors: u64,
    /// The latest of those first requests, in ms after the mark: once `seen == monitors`, how
    /// long it took until every monitor had been checked again.
    pub last_first_after_mark_ms: Option<u64>,
}

impl Counts {
    pub fn new(monitors: u64) -> Counts {
        Counts {
            started: Instant::now(),
            flap_period_ms: 0,
            requests: AtomicU64::new(0),
            mark: AtomicU64::new(NO_MARK),
            seen: AtomicU64::new(0),
            first_after_mark: (0..monitors).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Makes paths ending in `/flap` alternate between healthy and failing every `period`.
    pub fn with_flap_period(mut self, period: Duration) -> Counts {
        self.flap_period_ms = period.as_millis() as u64;
        self
    }

    /// Whether a flapping path fails now.
    pub fn flap_failing(&self) -> bool {
        flap_failing(self.now_ms(), self.flap_period_ms)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Counts a request for `path`.
    pub fn hit(&self, path: &str) {
        let Some(rest) = path.strip_prefix("/m/") else {
            return;
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mark = self.mark.load(Ordering::Acquire);
        if mark == NO_MARK {
            return;
        }
        let Some(slot) = rest
            .parse::<usize>()
            .ok()
            .and_then(|i| self.first_after_mark.get(i))
        else {
            return;
        };
        let now = self.now_ms() + 1;
        if slot.load(Ordering::Relaxed) == 0
            && slot
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.seen.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sets the mark to now and forgets which monitors were seen; returns the mark.
    pub fn mark(&self) -> u64 {
        self.mark.store(NO_MARK, Ordering::Release);
        for slot in &self.first_after_mark {
            slot.store(0, Ordering::Relaxed);
        }
        self.seen.store(0, Ordering::Relaxed);
        let now = self.now_ms();
        self.mark.store(now, Ordering::Release);
        now
    }

    pub fn stats(&self) -> Stats {
        let mark = self.mark.load(Ordering::Acquire);
        let mark_ms = (mark != NO_MARK).then_some(mark);
        let last = self
            .first_after_mark
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .max()
            .filter(|&t| t > 0);
        Stats {
            requests: self.requests.load(Ordering::Relaxed),
            now_ms: self.now_ms(),
            mark_ms,
            seen: self.seen.load(Ordering::Relaxed),
            monitors: self.first_after_mark.len() as u64,
            last_first_after_mark_ms: match (mark_ms, last) {
                (Some(m), Some(t)) => Some((t - 1).saturating_sub(m)),
                _ => None,
            },
        }
    }
}

/// Whether a flapping path fails `elapsed_ms` after the start: healthy for the first period,
/// failing for the second, and so on. A zero period never fails.
pub fn flap_failing(elapsed_ms: u64, period_ms: u64) -> bool {
    period_ms > 0 && (elapsed_ms / period_ms) % 2 == 1
}

fn answer(counts: &Counts, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    match (req.method(), path) {
        (&Method::GET, "/_bench/stats") => {
            let body = serde_json::to_vec(&counts.stats()).unwrap_or_default();
            Response::new(Full::new(Bytes::from(body)))
        }
        (&Method::POST, "/_bench/mark") => {
            Response::new(Full::new(Bytes::from(counts.mark().to_string())))
        }
        _ => {
            counts.hit(path);
            if path.ends_with("/flap") && counts.flap_failing() {
                let mut resp = Response::new(Full::new(Bytes::from_static(b"flapping")));
                *resp.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                return resp;
            }
            Response::new(Full::new(Bytes::from_static(b"ok")))
        }
    }
}

/// Serves connections from `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, counts: Arc<Counts>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors or a connection aborted before accept: say so and
                // carry on rather than take the target (and the whole run) down.
                eprintln!("keel-bench target: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let counts = counts.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let resp = answer(&counts, &req);
                async move { Ok::<_, Infallible>(resp) }
            });
            // A client hanging up mid-request is normal here (fresh-connection runs).
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The `target` subcommand: binds, prints `http://ADDR` on a line of its own, serves.
///
/// With `until_stdin_closes`, it also exits when its standard input reaches end of file, which
/// is how a parent harness that dies without cleaning up still takes its target with it.
pub fn main(
    listen: SocketAddr,
    until_stdin_closes: bool,
    monitors: u64,
    flap_period: Option<Duration>,
) -> anyhow::Result<()> {
    // One thread: the target answers a few thousand tiny requests a second at most, and a
    // single thread keeps it from competing for both cores with the process being measured.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr()?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "http://{addr}")?;
        out.flush()?;
        drop(out);
        let mut counts = Counts::new(monitors);
        if let Some(period) = flap_period {
            counts = counts.with_flap_period(period);
        }
        let counts = Arc::new(counts);
        if until_stdin_closes {
            tokio::select! {
                () = serve(listener, counts) => {}
                () = stdin_closed() => {}
            }
        } else {
            serve(listener, counts).await;
        }
        Ok(())
    })
}

async fn stdin_closed() {
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Reads the target's counts.
pub async fn stats(client: &reqwest::Client, base: &str) -> anyhow::Result<Stats> {
    let url = format!("{base}/_bench/stats");
    let resp = client.get(&url).send().await?.error_for_status()?;
    Ok(serde_json::from_slice(&resp.bytes().await?)?)
}

/// Sets the target's mark to now.
pub async fn mark(client: &reqwest::Client, base: &str) -> anyhow::Result<u64> {
    let url = format!("{base}/_bench/mark");
    let resp = client.post(&url).send().await?.error_for_status()?;
    Ok(resp.text().await?.trim().parse()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flapping_alternates_healthy_and_failing() {
        assert!(!flap_failing(0, 1000));
        assert!(!flap_failing(999, 1000));
        assert!(flap_failing(1000, 1000));
        assert!(flap_failing(1999, 1000));
        assert!(!flap_failing(2000, 1000));
        assert!(flap_failing(3500, 1000));
        // No period: never fails.
        assert!(!flap_failing(1000, 0));
        assert!(!Counts::new(1).flap_failing());
    }

    #[test]
    fn counts_monitors_after_the_mark_only() {
        let c = Counts::new(3);
        c.hit("/m/0");
        c.hit("/other");
        assert_eq!(c.stats().requests, 1);
        assert_eq!(c.stats().mark_ms, None);
        assert_eq!(c.stats().seen, 0);
        c.mark();
        c.hit("/m/1");
        c.hit("/m/1");
        c.hit("/m/7");
        c.hit("/m/x");
        let s = c.stats();
        assert_eq!(s.requests, 5);
        assert_eq!(s.seen, 1);
        assert_eq!(s.monitors, 3);
        assert!(s.last_first_after_mark_ms.is_some());
        c.hit("/m/0");
        c.hit("/m/2");
        assert_eq!(c.stats().seen, 3);
        c.mark();
        assert_eq!(c.stats().seen, 0);
        assert_eq!(c.stats().last_first_after_mark_ms, None);
    }
}
