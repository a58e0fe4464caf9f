//! Runs every monitor and vendor poll on its own schedule.
//!
//! Each source gets its own lightweight task, so a hanging target only ever delays itself;
//! a semaphore bounds how many checks are in flight at once. First checks are spread over the
//! interval and every interval carries jitter, so 10,000 monitors do not fire in the same
//! millisecond. After a first unconfirmed failure the source is re-checked after its short
//! `retry_interval`, so confirmation does not wait a whole interval.
//!
//! The scheduler judges nothing itself: every outcome goes to a [`Sink`], which applies
//! confirmation and says whether the source is still confirming.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use keel_core::config::{Check, Monitor, SchedulerConfig, Vendor};
use keel_core::confirm::Observation;
use keel_core::human;
use keel_core::{Health, MonitorId};
use rand::Rng;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use crate::check::Checker;
use crate::source::{Owner, Sink, Source};
use crate::status_pages;
use crate::Outcome;

/// Last push time of each heartbeat monitor, shared with the push endpoint.
#[derive(Debug)]
pub struct Heartbeats {
    by_token: HashMap<String, MonitorId>,
    last: Mutex<HashMap<MonitorId, DateTime<Utc>>>,
    started: DateTime<Utc>,
}

impl Heartbeats {
    pub fn new(monitors: &[Monitor], started: DateTime<Utc>) -> Self {
        let by_token = monitors
            .iter()
            .filter_map(|m| match &m.check {
                Check::Heartbeat(h) => Some((h.token.expose().to_string(), m.id.clone())),
                _ => None,
            })
            .collect();
        Heartbeats {
            by_token,
            last: Mutex::new(HashMap::new()),
            started,
        }
    }

    /// Records a push; returns the monitor id the token belongs to.
    pub fn beat(&self, token: &str, at: DateTime<Utc>) -> Option<&MonitorId> {
        let id = self.by_token.get(token)?;
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.clone(), at);
        Some(id)
    }

    /// Records a push another instance received (the latest one wins).
    pub fn record(&self, monitor: &MonitorId, at: DateTime<Utc>) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.get_mut(monitor) {
            Some(t) if *t >= at => {}
            Some(t) => *t = at,
            None => {
                last.insert(monitor.clone(), at);
            }
        }
    }

    /// Judges a heartbeat monitor at `now`: down when no beat came within interval + grace.
    pub fn judge(&self, monitor: &Monitor, grace: Duration, now: DateTime<Utc>) -> Outcome {
        let last = self
            .last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&monitor.id)
            .copied();
        let allowed = monitor.interval + grace;
        let since = last.unwrap_or(self.started);
        let waited = (now - since).to_std().unwrap_or_default();
        if waited <= allowed {
            return match last {
                Some(_) => Outcome::up("heartbeat received", Duration::ZERO),
                // Not late yet, but nothing proves it is up either.
                None => Outcome {
                    health: Health::Unknown,
                    reason: "waiting for the first heartbeat".into(),
                    latency: Duration::ZERO,
                },
            };
        }
        let waited = Duration::from_secs(waited.as_secs());
        let what = match last {
            Some(_) => format!("no heartbeat for {}", human::duration(waited)),
            None => format!("no heartbeat received in {}", human::duration(waited)),
        };
        Outcome::down(
            format!(
                "{what} (expected every {})",
                human::duration(monitor.interval)
            ),
            Duration::ZERO,
        )
    }
}

/// Everything the scheduler runs.
pub struct Scheduler {
    pub monitors: Vec<Monitor>,
    pub vendors: Vec<Vendor>,
    pub config: SchedulerConfig,
    pub checker: Arc<Checker>,
    pub vendor_client: reqwest::Client,
    pub heartbeats: Arc<Heartbeats>,
    pub sink: Arc<dyn Sink>,
    /// Which sources this process checks now.
    pub owner: Arc<dyn Owner>,
}

impl Scheduler {
    /// Runs until `shutdown` is cancelled, then waits for checks in flight to finish
    /// (each is bounded by its timeout).
    pub async fn run(self, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.config.max_concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for m in self.monitors {
            let ctx = Ctx {
                permits: permits.clone(),
                shutdown: shutdown.clone(),
                sink: self.sink.clone(),
                owner: self.owner.clone(),
                jitter: self.config.jitter,
            };
            let checker = self.checker.clone();
            let heartbeats = self.heartbeats.clone();
            // Spawned as is, not inside an `async move` wrapper that would hold the arguments
            // a second time beside the future they moved into (one task per monitor).
            tasks.spawn(run_monitor(m, checker, heartbeats, ctx));
        }
        for v in self.vendors {
            let ctx = Ctx {
                permits: permits.clone(),
                shutdown: shutdown.clone(),
                sink: self.sink.clone(),
                owner: self.owner.clone(),
                jitter: self.config.jitter,
            };
            let client = self.vendor_client.clone();
            tasks.spawn(run_vendor(v, client, ctx));
        }
        while tasks.join_next().await.is_some() {}
    }
}

struct Ctx {
    permits: Arc<Semaphore>,
    shutdown: CancellationToken,
    sink: Arc<dyn Sink>,
    owner: Arc<dyn Owner>,
    jitter: f64,
}

impl Ctx {
    /// Waits until `at` or shutdown; false means stop.
    async fn wait_until(&self, at: Instant) -> bool {
        tokio::select! {
            _ = sleep_until(at) => true,
            _ = self.shutdown.cancelled() => false,
        }
    }

    /// Waits until `source` is this process's to check; false means stop. Returns at once when
    /// it already is. After waiting (another instance checked it until now), returns when the
    /// source is next due by its last observation, so a take-over keeps its cadence and a
    /// failure being confirmed is re-checked after the retry interval.
    async fn wait_owned(
        &self,
        source: &Source,
        interval: Duration,
        retry: Duration,
    ) -> Option<Instant> {
        if self.owner.owns(source) {
            return Some(Instant::now());
        }
        let mut changes = self.owner.subscribe();
        loop {
            tokio::select! {
                got = changes.changed() => if got.is_err() { return None },
                _ = self.shutdown.cancelled() => return None,
            }
            if self.owner.owns(source) {
                break;
            }
        }
        let now = Instant::now();
        let Some((last, confirming)) = self.sink.resume(source) else {
            return Some(now + first_delay(interval));
        };
        let gap = if confirming {
            retry.min(interval)
        } else {
            interval
        };
        let since = (Utc::now() - last).to_std().unwrap_or_default();
        // Spread a little, so the monitors of a shard taken over do not all fire at once.
        let spread =
            Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..=gap.as_secs_f64() * 0.1));
        Some(now + gap.saturating_sub(since) + spread)
    }

    /// The delay before the next check: the interval ± jitter, or the retry interval while a
    /// failure is being confirmed.
    fn next_delay(&self, interval: Duration, retry: Duration, confirming: bool) -> Duration {
        if confirming {
            return retry.min(interval);
        }
        let spread = interval.as_secs_f64() * self.jitter.clamp(0.0, 1.0);
        if spread <= 0.0 {
            return interval;
        }
        let offset = rand::thread_rng().gen_range(-spread / 2.0..=spread / 2.0);
        Duration::from_secs_f64((interval.as_secs_f64() + offset).max(0.001))
    }
}

/// Spreads first checks over the interval (capped, so a long interval still checks soon after
/// start).
fn first_delay(interval: Duration) -> Duration {
    let window = interval.min(Duration::from_secs(10)).as_secs_f64();
    Duration::from_secs_f64(rand::thread_rng().gen_range(0.0..=window))
}

async fn run_monitor(m: Monitor, checker: Arc<Checker>, heartbeats: Arc<Heartbeats>, ctx: Ctx) {
    let source = Source::monitor(&m);
    let mut next = Instant::now() + first_delay(m.interval);
    loop {
        if !ctx.owner.owns(&source) {
            match ctx.wait_owned(&source, m.interval, m.retry_interval).await {
                Some(at) => next = at,
                None => return,
            }
        }
        if !ctx.wait_until(next).await {
            return;
        }
        // Ownership may have moved while waiting (or while this process was stopped).
        if !ctx.owner.owns(&source) {
            continue;
        }
        let started = Instant::now();
        let outcome = match &m.check {
            Check::Heartbeat(h) => heartbeats.judge(&m, h.grace, Utc::now()),
            check => {
                // Boxed, so the permit wait and the guard's timer exist only while a check
                // runs instead of in every idle monitor's task (100,000 tasks at scale).
                let step = Box::pin(async {
                    let _permit = ctx.permits.acquire().await.ok()?;
                    // The checker bounds itself by the timeout; the outer guard only protects
                    // the scheduler from a bug in a check.
                    let guard = m.timeout + Duration::from_secs(1);
                    Some(
                        match tokio::time::timeout(guard, checker.run(check, m.timeout)).await {
                            Ok(o) => o,
                            Err(_) => Outcome::down(
                                format!("timed out after {}", human::duration(m.timeout)),
                                m.timeout,
                            ),
                        },
                    )
                });
                let Some(outcome) = step.await else {
                    return;
                };
                outcome
            }
        };
        // A result from a check that outlived this process's lease is not its to report.
        if !ctx.owner.owns(&source) {
            continue;
        }
        let confirming = ctx.sink.observe(&source, observation(outcome));
        next = started + ctx.next_delay(m.interval, m.retry_interval, confirming);
    }
}

async fn run_vendor(v: Vendor, client: reqwest::Client, ctx: Ctx) {
    let source = Source::vendor(&v);
    let mut next = Instant::now() + first_delay(v.interval);
    loop {
        if !ctx.owner.owns(&source) {
            match ctx.wait_owned(&source, v.interval, v.interval).await {
                Some(at) => next = at,
                None => return,
            }
        }
        if !ctx.wait_until(next).await {
            return;
        }
        if !ctx.owner.owns(&source) {
            continue;
        }
        let started = Instant::now();
        let poll = {
            let Ok(_permit) = ctx.permits.acquire().await else {
                return;
            };
            status_pages::poll(&client, &v).await
        };
        if poll.error {
            tracing::warn!(vendor = %v.id, reason = %poll.status.reason, "vendor status unreadable");
        }
        let outcome = Outcome {
            health: poll.status.health,
            reason: poll.status.reason,
            latency: poll.latency,
        };
        if !ctx.owner.owns(&source) {
            continue;
        }
        ctx.sink.observe(&source, observation(outcome));
        next = started + ctx.next_delay(v.interval, v.interval, false);
    }
}

fn observation(o: Outcome) -> Observation {
    Observation {
        health: o.health,
        reason: o.reason,
        latency_ms: Some(o.latency.as_millis().min(u128::from(u64::MAX)) as u64),
        at: Utc::now(),
    }
}
