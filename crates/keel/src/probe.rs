//! `keel probe --server URL --location osaka`: checks from another place, for monitors whose
//! `locations` name it.
//!
//! The probe only connects out, to Keel's API, and holds nothing but a probe token (no
//! database, no config file). It fetches what its location runs, runs each monitor on its own
//! schedule with the server's own scheduler and check code (`keel_probe::scheduler`, which
//! judges nothing and hands every outcome to a [`Sink`]), and posts the outcomes in batches
//! about once a second. Keel confirms them, stamps them with its own clock and folds them into
//! the monitor's quorum.
//!
//! It keeps going while Keel cannot be reached: results wait in a bounded buffer (the oldest are
//! dropped, and it says so) and posting backs off. It fetches its assignments again every minute
//! and whenever Keel's answer carries a different version. A token Keel refuses, or a location
//! it does not know, ends the probe with a message saying which.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use keel_core::config::SchedulerConfig;
use keel_core::confirm::{Observation, Tracker};
use keel_core::human;
use keel_core::SourceKey;
use keel_probe::check::Checker;
use keel_probe::remote::{
    is_probe_location, Accepted, Assignments, ProbeResult, Results, MAX_RESULTS,
};
use keel_probe::scheduler::{Heartbeats, Scheduler};
use keel_probe::source::{Sink, Source};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often the assignments are fetched again, besides when Keel's version changes.
const REFRESH: Duration = Duration::from_secs(60);
/// Longest wait between attempts while Keel cannot be reached.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug)]
pub struct ProbeArgs {
    /// Keel's base URL, e.g. https://keel.example.com.
    #[arg(long, env = "KEEL_URL")]
    server: String,
    /// A probe token (`keel token create --role probe`). Prefer KEEL_PROBE_TOKEN, so the
    /// token is not in the process list.
    #[arg(long, env = "KEEL_PROBE_TOKEN", hide_env_values = true)]
    token: String,
    /// The location this probe reports as: a name in the monitors' `locations`.
    #[arg(long)]
    location: String,
    /// How many results to keep while Keel cannot be reached; the oldest go first.
    #[arg(long, default_value_t = 10_000)]
    buffer: usize,
}

/// Why a request to Keel failed.
enum Failure {
    /// Trying again will not help: a refused token, an unknown location.
    Fatal(anyhow::Error),
    /// Keel is unreachable, busy or failing: try again later.
    Retry(String),
    /// Keel refused this request's content (422): a batch naming a monitor this location no
    /// longer runs.
    Refused(String),
}

/// The probe's side of the probe API.
struct Server {
    base: String,
    token: String,
    location: String,
    http: reqwest::Client,
}

impl Server {
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Value, Failure> {
        let resp = req.bearer_auth(&self.token).send().await.map_err(|e| {
            // reqwest's own message leaves out why ("connection refused"); its sources say.
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why.push_str(&format!(": {s}"));
                source = s.source();
            }
            Failure::Retry(format!("cannot reach Keel at {}: {why}", self.base))
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if status.is_success() {
            return Ok(body);
        }
        let reason = body["reason"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| body.as_str().unwrap_or("no reason given").to_owned());
        Err(match status.as_u16() {
            401 => Failure::Fatal(anyhow::anyhow!(
                "Keel at {} refused the token (401): it is wrong or was removed; make a probe \
                 token with `keel token create --role probe` and pass it in KEEL_PROBE_TOKEN",
                self.base
            )),
            403 => Failure::Fatal(anyhow::anyhow!(
                "Keel at {} refused the token (403): it is not a probe token ({reason}); make one \
                 with `keel token create --role probe`",
                self.base
            )),
            404 => Failure::Fatal(anyhow::anyhow!(
                "Keel has nothing for location {:?}: {reason}",
                self.location
            )),
            422 => Failure::Refused(reason),
            _ => Failure::Retry(format!("Keel answered {status}: {reason}")),
        })
    }

    async fn assignments(&self) -> Result<Assignments, Failure> {
        let req = self
            .http
            .get(format!("{}/api/v1/probe/assignments", self.base))
            .query(&[("location", &self.location)]);
        let body = match self.send(req).await {
            Err(Failure::Refused(why)) => return Err(Failure::Retry(why)),
            other => other?,
        };
        serde_json::from_value(body)
            .map_err(|e| Failure::Retry(format!("Keel's assignments do not read: {e}")))
    }

    /// Posts one batch. A 422 is a batch naming a monitor this location no longer runs:
    /// `Ok(Err(reason))`, so the caller drops it and fetches the assignments again.
    async fn post(&self, results: Vec<ProbeResult>) -> Result<Result<Accepted, String>, Failure> {
        let req = self
            .http
            .post(format!("{}/api/v1/probe/results", self.base))
            .json(&Results {
                location: self.location.clone(),
                results,
            });
        match self.send(req).await {
            Ok(body) => serde_json::from_value(body)
                .map(Ok)
                .map_err(|e| Failure::Retry(format!("Keel's answer does not read: {e}"))),
            Err(Failure::Refused(reason)) => Ok(Err(reason)),
            Err(f) => Err(f),
        }
    }
}

/// Doubling waits, from a second up to [`MAX_BACKOFF`].
struct Backoff(Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(Duration::ZERO)
    }

    fn next(&mut self) -> Duration {
        self.0 = (self.0 * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
        self.0
    }

    fn reset(&mut self) {
        self.0 = Duration::ZERO;
    }
}

/// Where the scheduler's outcomes wait to be posted: the probe's [`Sink`].
struct Outbox {
    inner: Mutex<Queue>,
    cap: usize,
}

#[derive(Default)]
struct Queue {
    results: VecDeque<ProbeResult>,
    dropped: u64,
    /// Each monitor's confirmation, as Keel will judge it: only to re-check after the short
    /// retry interval while a failure is unconfirmed, as the server's scheduler does. Keel
    /// confirms again on its side; nothing here is reported.
    trackers: HashMap<SourceKey, Tracker>,
}

impl Outbox {
    fn new(cap: usize) -> Self {
        Outbox {
            inner: Mutex::new(Queue::default()),
            cap: cap.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Up to `n` of the oldest results.
    fn take(&self, n: usize) -> Vec<ProbeResult> {
        let mut q = self.lock();
        let n = n.min(q.results.len());
        q.results.drain(..n).collect()
    }

    /// A batch that could not be posted goes back in front, the oldest beyond the buffer
    /// dropped.
    fn put_back(&self, batch: Vec<ProbeResult>) {
        let mut q = self.lock();
        for r in batch.into_iter().rev() {
            q.results.push_front(r);
        }
        while q.results.len() > self.cap {
            q.results.pop_front();
            q.dropped += 1;
        }
    }

    fn take_dropped(&self) -> u64 {
        std::mem::take(&mut self.lock().dropped)
    }
}

impl Sink for Outbox {
    fn observe(&self, source: &Source, obs: Observation) -> bool {
        let mut q = self.lock();
        let tracker = q
            .trackers
            .entry(source.key.clone())
            .or_insert_with(|| Tracker::new(obs.at));
        tracker.observe(obs.clone(), source.confirmations, source.recoveries);
        let confirming = tracker.is_confirming();
        // No time is sent: Keel stamps results with its own clock.
        q.results.push_back(ProbeResult {
            monitor: source.key.id(),
            health: obs.health,
            reason: obs.reason,
            latency_ms: obs.latency_ms,
        });
        if q.results.len() > self.cap {
            q.results.pop_front();
            q.dropped += 1;
        }
        confirming
    }
}

/// The scheduler running the current assignments.
struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

fn start(
    assignments: &Assignments,
    location: &str,
    checker: &Arc<Checker>,
    outbox: &Arc<Outbox>,
    parent: &CancellationToken,
) -> Running {
    let monitors = assignments
        .monitors
        .iter()
        .filter_map(|a| match a.to_monitor(location) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(monitor = %a.id, error = %e, "cannot run this monitor; skipping it");
                None
            }
        })
        .collect::<Vec<_>>();
    tracing::info!(
        location,
        monitors = monitors.len(),
        version = %assignments.version,
        "running the monitors of this location"
    );
    let stop = parent.child_token();
    let scheduler = Scheduler {
        monitors,
        vendors: Vec::new(),
        config: SchedulerConfig::default(),
        checker: checker.clone(),
        vendor_client: reqwest::Client::new(),
        heartbeats: Arc::new(Heartbeats::new(&[], Utc::now())),
        sink: outbox.clone(),
        // A probe checks every monitor its location was given.
        owner: Arc::new(keel_probe::source::Everything::default()),
    };
    Running {
        task: tokio::spawn(scheduler.run(stop.clone())),
        stop,
    }
}

/// Fetches the assignments, waiting out an unreachable Keel; `None` when stopped first.
async fn fetch(server: &Server, stop: &CancellationToken) -> anyhow::Result<Option<Assignments>> {
    let mut backoff = Backoff::new();
    loop {
        match server.assignments().await {
            Ok(a) => return Ok(Some(a)),
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Retry(why) | Failure::Refused(why)) => {
                let wait = backoff.next();
                tracing::warn!("{why}; trying again in {}", human::duration(wait));
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => return Ok(None),
                }
            }
        }
    }
}

pub async fn run(
    args: ProbeArgs,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    if !is_probe_location(&args.location) {
        anyhow::bail!(
            "--location {:?}: a location is lowercase letters, digits and '-', and not \"local\" \
             (that is the Keel server itself)",
            args.location
        );
    }
    let base = args.server.trim_end_matches('/').to_owned();
    reqwest::Url::parse(&base).with_context(|| format!("--server {base:?} is not a URL"))?;
    let server = Server {
        base,
        token: args.token.trim().to_owned(),
        location: args.location.clone(),
        http: reqwest::Client::builder()
            .user_agent(concat!("keel-probe/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build the HTTP client")?,
    };
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });

    let Some(mut current) = fetch(&server, &stop).await? else {
        return Ok(());
    };
    let checker = Arc::new(Checker::new().context("cannot set up the checks")?);
    let outbox = Arc::new(Outbox::new(args.buffer));
    let mut running = start(&current, &args.location, &checker, &outbox, &stop);

    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Backoff::new();
    let mut next_post = Instant::now();
    let mut next_refresh = Instant::now() + REFRESH;
    let outcome: anyhow::Result<()> = loop {
        tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            _ = tick.tick() => {}
        }
        let dropped = outbox.take_dropped();
        if dropped > 0 {
            tracing::warn!(
                "dropped the {dropped} oldest results: {} are kept while Keel cannot be reached",
                args.buffer
            );
        }
        let now = Instant::now();
        if now >= next_refresh {
            next_refresh = now + REFRESH;
            match server.assignments().await {
                Ok(a) if a.version != current.version => {
                    running.stop().await;
                    running = start(&a, &args.location, &checker, &outbox, &stop);
                    current = a;
                }
                Ok(_) => {}
                Err(Failure::Fatal(e)) => break Err(e),
                Err(Failure::Retry(why) | Failure::Refused(why)) => {
                    tracing::warn!("cannot fetch the assignments: {why}")
                }
            }
        }
        if now < next_post {
            continue;
        }
        let batch = outbox.take(MAX_RESULTS);
        if batch.is_empty() {
            continue;
        }
        let n = batch.len();
        match server.post(batch.clone()).await {
            Ok(Ok(accepted)) => {
                backoff.reset();
                if accepted.version != current.version {
                    tracing::info!("Keel's monitors for this location changed; fetching them");
                    next_refresh = now;
                }
            }
            Ok(Err(reason)) => {
                tracing::warn!("dropped {n} results: {reason}");
                next_refresh = now;
            }
            Err(Failure::Fatal(e)) => break Err(e),
            Err(Failure::Retry(why) | Failure::Refused(why)) => {
                outbox.put_back(batch);
                let wait = backoff.next();
                tracing::warn!(
                    "cannot post {n} results: {why}; keeping them and trying again in {}",
                    human::duration(wait)
                );
                next_post = now + wait;
            }
        }
    };
    running.stop().await;
    if outcome.is_ok() {
        // What was checked last still reaches Keel if it can, without holding up the exit.
        let last = outbox.take(MAX_RESULTS);
        if !last.is_empty() {
            let _ = tokio::time::timeout(Duration::from_secs(5), server.post(last)).await;
        }
        tracing::info!("probe stopped");
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::{Health, MonitorId, NodeId};

    fn observe(o: &Outbox, id: &str, health: Health) -> bool {
        o.observe(
            &Source {
                key: SourceKey::monitor(MonitorId::parse(id).unwrap()),
                component: NodeId::parse("c").unwrap(),
                confirmations: 2,
                recoveries: 1,
            },
            Observation {
                health,
                reason: format!("{health}"),
                latency_ms: Some(1),
                at: Utc::now(),
            },
        )
    }

    #[test]
    fn the_buffer_keeps_the_newest_and_counts_the_dropped() {
        let o = Outbox::new(3);
        for _ in 0..2 {
            observe(&o, "a", Health::Up);
        }
        observe(&o, "b", Health::Down);
        observe(&o, "c", Health::Up);
        assert_eq!(o.take_dropped(), 1);
        let batch = o.take(2);
        assert_eq!(
            batch.iter().map(|r| r.monitor.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        observe(&o, "d", Health::Up);
        observe(&o, "e", Health::Up);
        o.put_back(batch);
        assert_eq!(o.take_dropped(), 2);
        let all: Vec<String> = o.take(10).into_iter().map(|r| r.monitor).collect();
        assert_eq!(all, ["c", "d", "e"]);
    }

    #[test]
    fn a_first_failure_is_rechecked_sooner_as_on_the_server() {
        let o = Outbox::new(10);
        assert!(observe(&o, "a", Health::Down), "one of two failures");
        assert!(!observe(&o, "a", Health::Down), "confirmed");
        assert!(!observe(&o, "a", Health::Up));
    }

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let mut b = Backoff::new();
        let waits: Vec<u64> = (0..7).map(|_| b.next().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next().as_secs(), 1);
    }
}
