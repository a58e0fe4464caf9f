//! The reference: a bare HTTP client loop making the requests Keel's monitors make, at the
//! same rate, and measuring its own CPU per request.
//!
//! It is what "the limit" means in Keel's speed bar: the least CPU any program can spend on
//! the same requests with the same client library. It uses one client built once (building a
//! reqwest `Client` per request costs milliseconds), spreads requests evenly over each second,
//! runs each as its own task with a per-request timeout and a concurrency bound (as Keel's
//! scheduler does), checks the status and reads the body to the end. Two clients are
//! available: reqwest (what Keel uses) and hyper-util's legacy client (the layer beneath it).
//! With `fresh` connections the client keeps no idle connection, so every request opens one.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;

use crate::procfs;

/// Same as Keel's scheduler default bound on checks in flight.
const MAX_IN_FLIGHT: u32 = 512;
/// How long, after the last request is issued, the loop waits for stragglers.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);
/// Same idle timeout as Keel's HTTP clients.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Same cap on idle connections per host as Keel's HTTP clients.
const POOL_IDLE_PER_HOST: usize = 8;

/// Whether the client keeps connections for reuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Connections {
    /// Keep-alive, pooled: what Keel does.
    Pooled,
    /// A new TCP connection for every request.
    Fresh,
}

/// Which client library makes the requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ClientKind {
    /// reqwest 0.12, the crate Keel's HTTP checks use.
    Reqwest,
    /// hyper-util's legacy client, the layer reqwest is built on.
    HyperUtil,
}

impl fmt::Display for ClientKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientKind::Reqwest => "reqwest",
            ClientKind::HyperUtil => "hyper-util",
        })
    }
}

impl fmt::Display for Connections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Connections::Pooled => "pooled",
            Connections::Fresh => "fresh",
        })
    }
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pace {
    /// This many requests a second, evenly spread, each its own task: Keel's regime.
    Rate(f64),
    /// This many loops making requests back to back as fast as they can: the floor of a
    /// request's cost, with wake-ups and timers amortised away.
    FlatOut(u32),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Requests go to `{url_base}/m/{i}`.
    pub url_base: String,
    pub pace: Pace,
    /// Distinct paths cycled through (one per simulated monitor).
    pub paths: u64,
    pub warmup: Duration,
    pub duration: Duration,
    pub timeout: Duration,
    pub connections: Connections,
    pub client: ClientKind,
}

/// What the loop measured over `duration` (warm-up excluded). Printed as one JSON line.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub client: ClientKind,
    pub connections: Connections,
    pub pace: Pace,
    pub requests: u64,
    pub failures: u64,
    pub elapsed_secs: f64,
    pub cpu_secs: f64,
    pub cpu_us_per_request: f64,
    /// CPU used on the machine beside this loop during its window (the target included), in
    /// cores: a disturbed run shows here.
    pub other_load_cores: f64,
    /// The first failure's reason, if any, so a broken run explains itself.
    pub first_failure: Option<String>,
}

/// One client, built once.
#[derive(Clone)]
enum Client {
    Reqwest(reqwest::Client),
    // Boxed: with HTTP/2 enabled in the workspace the client is some 300 bytes.
    Hyper(Box<hyper_util::client::legacy::Client<HttpConnector, Empty<Bytes>>>),
}

impl Client {
    fn build(kind: ClientKind, connections: Connections) -> anyhow::Result<Client> {
        let idle = match connections {
            Connections::Pooled => POOL_IDLE_PER_HOST,
            Connections::Fresh => 0,
        };
        Ok(match kind {
            // Configured as Keel's checker builds its clients.
            ClientKind::Reqwest => Client::Reqwest(
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::limited(10))
                    .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                    .pool_max_idle_per_host(idle)
                    .tcp_nodelay(true)
                    .user_agent(concat!("keel-bench/", env!("CARGO_PKG_VERSION")))
                    .build()?,
            ),
            ClientKind::HyperUtil => {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                Client::Hyper(Box::new(
                    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
                        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
                        .pool_max_idle_per_host(idle)
                        .build(connector),
                ))
            }
        })
    }

    /// One GET: status must be 2xx, body read to the end.
    async fn get(&self, url: &str) -> Result<(), String> {
        match self {
            Client::Reqwest(c) => {
                let resp = c.get(url).send().await.map_err(|e| e.to_string())?;
                let status = resp.status();
                resp.bytes().await.map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("HTTP {status}"));
                }
            }
            Client::Hyper(c) => {
                let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
                let resp = c.get(uri).await.map_err(|e| e.to_string())?;
                let status = resp.status();
                resp.into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?;
                if !status.is_success() {
                    return Err(format!("HTTP {status}"));
                }
            }
        }
        Ok(())
    }
}

/// Where the measured window starts.
struct Mark {
    at: Instant,
    cpu: Duration,
    machine: procfs::MachineTicks,
    done: u64,
    failed: u64,
}

#[derive(Default)]
struct Tally {
    done: AtomicU64,
    failed: AtomicU64,
    first_failure: std::sync::Mutex<Option<String>>,
}

/// What every request task shares.
struct Shared {
    client: Client,
    base: String,
    paths: u64,
    timeout: Duration,
    tally: Tally,
    next: AtomicU64,
}

impl Shared {
    /// One request to the next path, counted.
    async fn request(&self) {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/m/{}", self.base, i % self.paths);
        let result = match tokio::time::timeout(self.timeout, self.client.get(&url)).await {
            Ok(r) => r,
            Err(_) => Err(format!("timed out after {:?}", self.timeout)),
        };
        if let Err(reason) = result {
            self.tally.failed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut first) = self.tally.first_failure.lock() {
                first.get_or_insert(format!("{url}: {reason}"));
            }
        }
        self.tally.done.fetch_add(1, Ordering::Relaxed);
    }

    fn mark(&self) -> anyhow::Result<Mark> {
        Ok(Mark {
            at: Instant::now(),
            cpu: procfs::self_cpu(),
            machine: procfs::machine_ticks()?,
            done: self.tally.done.load(Ordering::Relaxed),
            failed: self.tally.failed.load(Ordering::Relaxed),
        })
    }
}

/// Runs the plan: warm-up, then the measured window. Must run inside a Tokio runtime.
pub async fn run(plan: &Plan) -> anyhow::Result<Report> {
    let clk_tck = procfs::clk_tck();
    match plan.pace {
        Pace::Rate(r) => anyhow::ensure!(
            r.is_finite() && r > 0.0,
            "--requests-per-sec must be a positive number, not {r}"
        ),
        Pace::FlatOut(n) => anyhow::ensure!(n > 0, "--flat-out needs at least 1 loop"),
    }
    anyhow::ensure!(plan.paths > 0, "--paths must be at least 1");
    anyhow::ensure!(
        !plan.duration.is_zero(),
        "--duration must be longer than zero"
    );
    let shared = Arc::new(Shared {
        client: Client::build(plan.client, plan.connections)?,
        base: plan.url_base.trim_end_matches('/').to_string(),
        paths: plan.paths,
        timeout: plan.timeout,
        tally: Tally::default(),
        next: AtomicU64::new(0),
    });

    let measure_from = Instant::now() + plan.warmup;
    let end = measure_from + plan.duration;
    let m = match plan.pace {
        Pace::Rate(rate) => paced(&shared, rate, measure_from, end).await?,
        Pace::FlatOut(loops) => flat_out(&shared, loops, measure_from, end).await?,
    };
    let cpu_end = procfs::self_cpu();
    let machine_end = procfs::machine_ticks()?;
    let t_end = Instant::now();

    let tally = &shared.tally;
    let requests = tally.done.load(Ordering::Relaxed) - m.done;
    let failures = tally.failed.load(Ordering::Relaxed) - m.failed;
    let cpu_secs = cpu_end.saturating_sub(m.cpu).as_secs_f64();
    let elapsed_secs = (t_end - m.at).as_secs_f64();
    let machine_secs = machine_end.busy.saturating_sub(m.machine.busy) as f64 / clk_tck as f64;
    let first_failure = tally.first_failure.lock().ok().and_then(|f| f.clone());
    Ok(Report {
        client: plan.client,
        connections: plan.connections,
        pace: plan.pace,
        requests,
        failures,
        elapsed_secs,
        cpu_secs,
        cpu_us_per_request: if requests == 0 {
            0.0
        } else {
            cpu_secs * 1e6 / requests as f64
        },
        other_load_cores: ((machine_secs - cpu_secs) / elapsed_secs).max(0.0),
        first_failure,
    })
}

/// Keel's regime: `rate` requests a second, evenly spread, each its own task. Returns the mark
/// taken when the window opened, after every request issued has finished.
async fn paced(
    shared: &Arc<Shared>,
    rate: f64,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<Mark> {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize));
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    // Catch up after a late wake-up, so the rate holds on average as a scheduler's would.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut mark = None;
    loop {
        let now = ticker.tick().await.into_std();
        if mark.is_none() && now >= measure_from {
            mark = Some(shared.mark()?);
        }
        if now >= end {
            break;
        }
        let permit = slots.clone().acquire_owned().await?;
        let shared = shared.clone();
        tokio::spawn(async move {
            shared.request().await;
            drop(permit);
        });
    }
    // Wait for requests still in flight: they were issued inside the window.
    let _ = tokio::time::timeout(DRAIN_LIMIT, slots.acquire_many(MAX_IN_FLIGHT)).await;
    mark.ok_or_else(|| anyhow::anyhow!("the measured window never started"))
}

/// The floor: `loops` tasks making requests back to back until `end`.
async fn flat_out(
    shared: &Arc<Shared>,
    loops: u32,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<Mark> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..loops {
        let shared = shared.clone();
        tasks.spawn(async move {
            while Instant::now() < end {
                shared.request().await;
            }
        });
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let mark = shared.mark()?;
    // Each loop stops within one request (at most its timeout) after the end.
    let _ = tokio::time::timeout(
        end.saturating_duration_since(Instant::now()) + DRAIN_LIMIT,
        tasks.join_all(),
    )
    .await;
    Ok(mark)
}

/// The `bare` subcommand: runs the plan on a runtime shaped like Keel's (multi-threaded, one
/// worker per core) and prints the report as one JSON line on stdout.
pub fn main(plan: Plan) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(run(&plan))?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
