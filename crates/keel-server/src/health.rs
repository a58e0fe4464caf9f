//! The health view: the hub's sources, folded per node and assessed against the graph, computed
//! once per change by the incident job and published to everyone downstream.
//!
//! Before this, the incident job, the snapshot job, the fan-out and the incident API each read
//! every source from the hub and folded it again; with thousands of monitors that is the
//! expensive part of a pass, and four readers could each see a slightly different hub. Now the
//! incident job reads the hub once per pass, publishes the result here, and the others take
//! the published `Arc` (one reference count, no copy).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use keel_core::assess::{self, Assessment, Graph, HealthMap, SourceHealth};
use keel_core::config::LOCAL;
use keel_core::incident::unknown_nodes;
use keel_core::quorum::{self, Seen};
use keel_core::{MonitorId, NodeId, SourceKey};
use tokio::sync::watch;

use crate::hub::SignalHub;

/// Every source's latest health and what follows from it, at one moment.
#[derive(Debug, Clone)]
pub struct HealthView {
    /// The sources the hub knows that speak for a graph node.
    pub sources: Vec<SourceHealth>,
    /// One health per node, folded from `sources`.
    pub health: HealthMap,
    /// The graph's causes and impact under `health`.
    pub assessment: Assessment,
    /// Nodes Keel cannot judge right now (their sources are unknown).
    pub unknown: BTreeSet<NodeId>,
}

impl HealthView {
    /// Folds and assesses `sources`. Pure: the same sources give the same view.
    pub fn new(graph: &Graph, sources: Vec<SourceHealth>) -> Self {
        let health = assess::fold_health(&sources);
        let assessment = assess::assess(graph, &health);
        let unknown = unknown_nodes(&health);
        HealthView {
            sources,
            health,
            assessment,
            unknown,
        }
    }

    /// Reads every source the hub knows and assesses them; a monitor checked from several
    /// locations is one source here, their quorum.
    pub fn from_hub(graph: &Graph, hub: &SignalHub) -> Self {
        HealthView::new(graph, sources_from_hub(graph, hub))
    }
}

/// Where the latest view is published. Readers take the current view or wait for the next.
pub struct HealthBoard {
    tx: watch::Sender<Arc<HealthView>>,
}

impl HealthBoard {
    pub fn new(initial: HealthView) -> Self {
        HealthBoard {
            tx: watch::Sender::new(Arc::new(initial)),
        }
    }

    /// The latest view.
    pub fn current(&self) -> Arc<HealthView> {
        self.tx.borrow().clone()
    }

    /// Wakes on every view that differs from the one before.
    pub fn subscribe(&self) -> watch::Receiver<Arc<HealthView>> {
        self.tx.subscribe()
    }

    /// Publishes `view` and returns the view now current. Subscribers are only woken when the
    /// sources changed: during an incident the job publishes every second, and re-rendering
    /// the page for an identical view would be wasted work.
    pub fn publish(&self, view: HealthView) -> Arc<HealthView> {
        self.tx.send_if_modified(|current| {
            if current.sources == view.sources {
                return false;
            }
            *current = Arc::new(view);
            true
        });
        self.current()
    }
}

/// The sources the hub knows, as the assessment reads them: per-location sources of a
/// located monitor folded into one (see [`with_locations`]).
pub fn sources_from_hub(graph: &Graph, hub: &SignalHub) -> Vec<SourceHealth> {
    let sources = hub
        .snapshot()
        .into_iter()
        .map(|s| SourceHealth {
            source: s.key,
            label: s.check,
            node: s.component,
            health: s.state,
            since: s.since,
            reason: s.reason,
        })
        .collect();
    with_locations(graph, sources)
}

/// Replaces the sources of each monitor the graph knows as located — `"api"` for the server's
/// own check, `"api@osaka"` for a probe's — with one source `"api"` carrying their quorum
/// ([`quorum::fold`]), so the node fold and assessment see one monitor as one source. Sources
/// of other monitors and of other kinds pass unchanged. A located monitor's plain source
/// is left out when `"local"` is not among its locations (the server does not check it).
pub fn with_locations(graph: &Graph, sources: Vec<SourceHealth>) -> Vec<SourceHealth> {
    let located = graph.located();
    if located.is_empty() {
        return sources;
    }
    let mut seen: BTreeMap<&MonitorId, BTreeMap<String, Seen>> = BTreeMap::new();
    let mut out = Vec::with_capacity(sources.len());
    for s in sources {
        let plan = match s.source.monitor_id().and_then(|m| located.get_key_value(m)) {
            Some(entry) => entry,
            None => {
                out.push(s);
                continue;
            }
        };
        let location = s.source.location().unwrap_or(LOCAL);
        if plan.1.locations.iter().any(|l| l == location) {
            seen.entry(plan.0).or_default().insert(
                location.to_owned(),
                Seen {
                    health: s.health,
                    reason: s.reason,
                    since: s.since,
                },
            );
        }
    }
    for (id, plan) in located {
        let verdict = quorum::fold(
            &plan.locations,
            plan.quorum,
            seen.get(id).unwrap_or(&BTreeMap::new()),
        );
        out.push(SourceHealth {
            source: SourceKey::monitor(id.clone()),
            label: plan.kind.clone(),
            node: NodeId::from(&plan.component),
            health: verdict.health,
            // Nothing seen from anywhere yet: a fixed time keeps equal views equal.
            since: verdict.since.unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
            reason: verdict.reason,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use keel_core::Health;

    const CONFIG: &str = r#"
[[component]]
id = "checkout"
name = "Checkout"

[[vendor]]
id = "api"
name = "A vendor that shares a monitor's id"
status_url = "https://status.example.com/api/v2/summary.json"

[[monitor]]
id = "api"
component = "checkout"
kind = "http"
url = "http://127.0.0.1:1/"
locations = ["local", "osaka"]
quorum = 1

[[monitor]]
id = "remote"
component = "checkout"
kind = "tcp"
host = "127.0.0.1"
port = 1
locations = ["osaka"]

[[monitor]]
id = "plain"
component = "checkout"
kind = "tcp"
host = "127.0.0.1"
port = 2
"#;

    /// A monitor's source (`api`, `api@osaka`) checked with `http`.
    fn source(id: &str, health: Health, reason: &str) -> SourceHealth {
        SourceHealth {
            source: SourceKey::parse(keel_core::SourceKind::Monitor, id).unwrap(),
            label: "http".into(),
            node: NodeId::parse("checkout").unwrap(),
            health,
            since: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            reason: reason.into(),
        }
    }

    #[test]
    fn a_located_monitors_sources_become_their_quorum() {
        let config = keel_core::config::parse(CONFIG, "keel.toml", &[]).unwrap();
        let graph = Graph::from_config(&config);
        let vendor = SourceKey::vendor(keel_core::VendorId::parse("api").unwrap());
        let got = with_locations(
            &graph,
            vec![
                source("api", Health::Up, "HTTP 200"),
                source("api@osaka", Health::Down, "HTTP 503"),
                // Not a location of `api`: a stale probe's source counts for nothing.
                source("api@tokyo", Health::Down, "HTTP 503"),
                // A vendor that shares the monitor's id is another source.
                SourceHealth {
                    source: vendor.clone(),
                    label: "vendor".into(),
                    ..source("api", Health::Down, "major outage")
                },
                // The server does not check `remote`; its registered source is left out.
                source("remote", Health::Unknown, "not checked yet"),
                source("plain", Health::Up, "connected"),
            ],
        );
        let by = |key: &SourceKey| {
            got.iter()
                .find(|s| &s.source == key)
                .unwrap_or_else(|| panic!("{key:?} in {got:?}"))
        };
        let m = |id: &str| SourceKey::parse(keel_core::SourceKind::Monitor, id).unwrap();
        assert_eq!(got.len(), 4, "{got:?}");
        let api = by(&m("api"));
        assert_eq!(api.health, Health::Degraded);
        assert_eq!(api.label, "http");
        assert_eq!(
            api.reason,
            "failing from osaka only (HTTP 503); fine from local"
        );
        assert_eq!(by(&vendor).health, Health::Down);
        let remote = by(&m("remote"));
        assert_eq!(remote.health, Health::Unknown);
        assert_eq!(remote.label, "tcp");
        assert_eq!(remote.reason, "cannot see from any location (osaka)");
        assert_eq!(by(&m("plain")).reason, "connected");
    }
}
