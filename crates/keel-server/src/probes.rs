//! Remote probes on the server's side: what each location runs (assignments, with a version),
//! the per-token rate limit of the probe endpoints, and liveness — the watchdog that turns a
//! location whose probe went quiet into an `Unknown` observation of each of its sources.
//!
//! Liveness lives in memory, per instance, on purpose. Behind a load balancer a probe's results
//! may reach any Keel instance, and each instance assesses health from its own hub; so each
//! instance watches only the location sources *it* received results for (or restored at start),
//! and says on its own hub when they stop. An instance that never heard from osaka has no
//! osaka source at all, which the quorum already reads as "cannot see from osaka". `Unknown`
//! never pages and never counts as a failure, so a quiet probe opens no incident.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use keel_core::config::{Config, Monitor};
use keel_core::confirm::{Observation, Tracker};
use keel_core::incident::words;
use keel_core::{Health, MonitorId, NodeId, SourceKey};
use keel_probe::remote::{Assignment, Assignments};
use keel_probe::source::Source;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::hub::SignalHub;

/// A probe is silent after three of its monitor's intervals without a result, and never
/// sooner than this: one late batch is not an outage of the probe.
pub const MIN_SILENCE: Duration = Duration::from_secs(30);

/// How long `monitor`'s results may be missing before its location counts as unseen.
pub fn silence_after(monitor: &Monitor) -> Duration {
    (monitor.interval * 3).max(MIN_SILENCE)
}

/// One location source this instance watches.
struct Watched {
    monitor: usize,
    location: String,
    last: DateTime<Utc>,
    /// Already said to be unseen; a new result clears it.
    silent: bool,
}

/// The probes' side of the server, shared by the endpoints and the watchdog.
pub struct Probes {
    /// Location → what its probe runs, with the version; built once (the config is fixed for
    /// the life of the process).
    assignments: BTreeMap<String, Assignments>,
    /// Monitor id → its place in `config.monitors`, so a batch of a thousand results is not
    /// a thousand scans of the monitors.
    index: HashMap<String, usize>,
    /// Per token name: a probe posts about once a second; a flood is refused with 429.
    limiter: DefaultKeyedRateLimiter<String>,
    /// Source id ("api@osaka") → liveness.
    watched: Mutex<HashMap<SourceKey, Watched>>,
}

impl Probes {
    pub fn new(config: &Config) -> Probes {
        let mut by_location: BTreeMap<String, Vec<Assignment>> = BTreeMap::new();
        for m in &config.monitors {
            for loc in m.locations.iter().filter(|l| m.runs_at(l)) {
                if let Some(a) = Assignment::from_monitor(m) {
                    by_location.entry(loc.clone()).or_default().push(a);
                }
            }
        }
        let assignments = by_location
            .into_iter()
            .map(|(location, monitors)| {
                let version = version(&monitors);
                let a = Assignments {
                    location: location.clone(),
                    version,
                    monitors,
                };
                (location, a)
            })
            .collect();
        Probes {
            assignments,
            index: config
                .monitors
                .iter()
                .enumerate()
                .map(|(i, m)| (m.id.to_string(), i))
                .collect(),
            limiter: RateLimiter::keyed(
                Quota::per_second(NonZeroU32::new(10).expect("non-zero"))
                    .allow_burst(NonZeroU32::new(30).expect("non-zero")),
            ),
            watched: Mutex::new(HashMap::new()),
        }
    }

    /// What the probe at `location` runs; `None` when no monitor is checked from there.
    pub fn assignments(&self, location: &str) -> Option<&Assignments> {
        self.assignments.get(location)
    }

    /// Where monitor `id` is in the config's monitors.
    pub fn monitor_index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Every location some monitor is checked from, besides the server itself.
    pub fn locations(&self) -> impl Iterator<Item = &str> {
        self.assignments.keys().map(String::as_str)
    }

    /// Counts one request of the probe token `name`; false when it is over its rate.
    pub fn allow(&self, name: &str) -> bool {
        self.limiter.check_key(&name.to_owned()).is_ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SourceKey, Watched>> {
        self.watched.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that a result of `config.monitors[monitor]` came from `location` at `at`.
    pub fn reported(&self, monitor: usize, mid: &MonitorId, location: &str, at: DateTime<Utc>) {
        self.lock().insert(
            SourceKey::monitor_at(mid.clone(), location),
            Watched {
                monitor,
                location: location.to_owned(),
                last: at,
                silent: false,
            },
        );
    }

    /// The location sources that have had no result for longer than their monitor allows
    /// and were not yet said to be unseen, marked as said.
    fn newly_silent(&self, config: &Config, now: DateTime<Utc>) -> Vec<Gone> {
        let mut out = Vec::new();
        for (id, w) in self.lock().iter_mut() {
            let Some(m) = config.monitors.get(w.monitor) else {
                continue;
            };
            let quiet = (now - w.last).to_std().unwrap_or_default();
            if !w.silent && quiet > silence_after(m) {
                w.silent = true;
                out.push(Gone {
                    source: id.clone(),
                    monitor: w.monitor,
                    location: w.location.clone(),
                    quiet,
                });
            }
        }
        out
    }
}

struct Gone {
    source: SourceKey,
    monitor: usize,
    location: String,
    quiet: Duration,
}

/// A short, stable digest of what a location runs: equal assignments, equal version, on
/// every instance with the same config.
fn version(monitors: &[Assignment]) -> String {
    let bytes = serde_json::to_vec(monitors).unwrap_or_default();
    hex::encode(&Sha256::digest(&bytes)[..8])
}

/// The hub source of a monitor at a probe's location.
pub fn source(monitor: &Monitor, location: &str) -> Source {
    Source {
        key: SourceKey::monitor_at(monitor.id.clone(), location),
        ..Source::monitor(monitor)
    }
}

/// Puts the stored states of location sources ("api@osaka") back into the hub at start, so a
/// regional outage Keel knew about is not forgotten (and re-alerted) over a restart, and
/// watches them from `now`: a probe gets a full silence period to find the server again
/// before its location counts as unseen. Takes them out of `stored`.
pub fn restore<S: std::hash::BuildHasher>(
    hub: &SignalHub,
    probes: &Probes,
    config: &Config,
    stored: &mut HashMap<SourceKey, (NodeId, Tracker), S>,
    now: DateTime<Utc>,
) {
    for (i, m) in config.monitors.iter().enumerate() {
        for loc in m.locations.iter().filter(|l| m.runs_at(l)) {
            let key = SourceKey::monitor_at(m.id.clone(), loc);
            let Some((_, tracker)) = stored.remove(&key) else {
                continue;
            };
            hub.register(
                &key,
                &NodeId::from(&m.component),
                m.kind(),
                Some(tracker),
                now,
            );
            probes.reported(i, &m.id, loc, now);
        }
    }
}

/// The watchdog: once a second, each location source this instance watches that has been
/// quiet too long becomes one `Unknown` observation, saying why. Runs until `stop`.
pub async fn run(
    config: Arc<Config>,
    probes: Arc<Probes>,
    hub: Arc<SignalHub>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Utc::now();
        for gone in probes.newly_silent(&config, now) {
            let m = &config.monitors[gone.monitor];
            let secs = Duration::from_secs(gone.quiet.as_secs());
            let reason = format!(
                "no results from the {loc} probe for {}: Keel cannot see from {loc}",
                words::duration(secs),
                loc = gone.location
            );
            tracing::warn!(monitor = %m.id, location = %gone.location, source = %gone.source, "{reason}");
            hub.observe_as(
                &source(m, &gone.location),
                m.kind(),
                Observation {
                    health: Health::Unknown,
                    reason,
                    latency_ms: None,
                    at: now,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[[component]]
id = "api"
name = "API"

[[monitor]]
id = "fast"
component = "api"
kind = "tcp"
host = "127.0.0.1"
port = 1
interval = "1s"
locations = ["local", "osaka"]

[[monitor]]
id = "slow"
component = "api"
kind = "tcp"
host = "127.0.0.1"
port = 2
interval = "1m"
locations = ["osaka", "tokyo"]

[[monitor]]
id = "here"
component = "api"
kind = "tcp"
host = "127.0.0.1"
port = 3
"#;

    fn config() -> Config {
        keel_core::config::parse(CONFIG, "keel.toml", &[]).unwrap()
    }

    #[test]
    fn each_location_runs_its_monitors_under_a_version() {
        let config = config();
        let p = Probes::new(&config);
        assert_eq!(p.locations().collect::<Vec<_>>(), ["osaka", "tokyo"]);
        let osaka = p.assignments("osaka").unwrap();
        let ids: Vec<&str> = osaka.monitors.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["fast", "slow"]);
        assert!(p.assignments("local").is_none() && p.assignments("paris").is_none());
        assert_eq!(
            osaka.version,
            Probes::new(&config).assignments("osaka").unwrap().version
        );
        assert_ne!(osaka.version, p.assignments("tokyo").unwrap().version);
    }

    #[test]
    fn silence_is_three_intervals_and_at_least_thirty_seconds() {
        let config = config();
        assert_eq!(silence_after(&config.monitors[0]), Duration::from_secs(30));
        assert_eq!(silence_after(&config.monitors[1]), Duration::from_secs(180));
        let p = Probes::new(&config);
        let t0 = Utc::now();
        p.reported(0, &MonitorId::parse("fast").unwrap(), "osaka", t0);
        p.reported(1, &MonitorId::parse("slow").unwrap(), "osaka", t0);
        let at = |s: i64| t0 + chrono::TimeDelta::seconds(s);
        assert!(p.newly_silent(&config, at(30)).is_empty());
        let gone = p.newly_silent(&config, at(31));
        assert_eq!(gone.len(), 1);
        assert_eq!(
            (gone[0].source.id().as_str(), gone[0].location.as_str()),
            ("fast@osaka", "osaka")
        );
        // Said once; a new result watches it again.
        assert!(p.newly_silent(&config, at(60)).is_empty());
        p.reported(0, &MonitorId::parse("fast").unwrap(), "osaka", at(61));
        assert!(p.newly_silent(&config, at(90)).is_empty());
        let gone: Vec<SourceKey> = p
            .newly_silent(&config, at(200))
            .into_iter()
            .map(|g| g.source)
            .collect();
        assert_eq!(gone.len(), 2, "{gone:?}");
    }

    #[test]
    fn the_rate_is_per_token() {
        let p = Probes::new(&config());
        let allowed = (0..100).filter(|_| p.allow("osaka-probe")).count();
        assert!((30..100).contains(&allowed), "{allowed}");
        assert!(p.allow("tokyo-probe"));
    }
}
