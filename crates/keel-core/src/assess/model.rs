//! The vocabulary of assessment, shared by the graph, the correlation engine and the API.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::NodeId;
use crate::Health;

/// What a node of the dependency graph is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// The team's own component (`[[component]]`).
    Component,
    /// A third-party dependency (`[[vendor]]`).
    Vendor,
    /// Infrastructure such as "network" or "power" (`[[infra]]`).
    Infra,
}

/// How much a component matters beyond its user count.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

/// The health of one node right now, folded from the latest signals of its sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeHealth {
    pub health: Health,
    /// When the node entered this health.
    pub since: DateTime<Utc>,
    /// Why, one line per failing source: "api-health: HTTP 503".
    pub reasons: Vec<String>,
    /// The kind of failure, used to find similar past incidents: the failing source's
    /// check kind ("http", "tcp", "vendor", "alertmanager", …), or "manual".
    pub failure_kind: String,
}

/// The current health of every node that has signals; a node absent here is healthy as far
/// as Keel knows.
pub type HealthMap = BTreeMap<NodeId, NodeHealth>;

/// One root cause found in the graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    /// The failing node whose own dependencies are healthy.
    pub node: NodeId,
    pub kind: NodeKind,
    pub health: Health,
    pub since: DateTime<Utc>,
    pub reasons: Vec<String>,
    pub failure_kind: String,
    /// The cause and every transitive dependent of it, sorted.
    pub impacted: BTreeSet<NodeId>,
    /// Failing nodes explained by this cause (dependents that fail too), sorted.
    pub explained: BTreeSet<NodeId>,
}

/// What the graph says right now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// Independent root causes, sorted by node id.
    pub causes: Vec<Cause>,
    /// Set when a canary node fails: Keel itself cannot see, and declares nothing down.
    pub blind: Option<String>,
    /// The canaries while none fails; `None` when the graph has no canary. Correlation holds a
    /// new incident a canary could still explain (`[incidents] canary_grace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canaries: Option<Canaries>,
}

/// What the canaries say while none fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canaries {
    /// The latest moment a canary was confirmed healthy again, when every canary is: after a
    /// loss of Keel's own network, the other monitors confirm their recovery later than the
    /// canary did, and until they do their failures are still Keel's blindness. `None` while
    /// some canary has not been confirmed healthy (no check yet, or unknown).
    pub seeing_since: Option<DateTime<Utc>>,
}

/// Impact of an incident: who is affected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Impact {
    /// Public components impacted, sorted.
    pub public_components: Vec<NodeId>,
    /// All impacted nodes (public or not), sorted.
    pub impacted: Vec<NodeId>,
    /// Sum of `users` over impacted components (each counted once).
    pub affected_users: u64,
    /// Share of all users of all components, 0.0–1.0.
    pub user_share: f64,
    /// Highest criticality among impacted components.
    pub criticality: Criticality,
}

/// Incident severity: SEV1 is the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    #[serde(rename = "SEV1")]
    Sev1,
    #[serde(rename = "SEV2")]
    Sev2,
    #[serde(rename = "SEV3")]
    Sev3,
    #[serde(rename = "SEV4")]
    Sev4,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Sev1 => "SEV1",
            Severity::Sev2 => "SEV2",
            Severity::Sev3 => "SEV3",
            Severity::Sev4 => "SEV4",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_uppercase().as_str() {
            "SEV1" => Ok(Severity::Sev1),
            "SEV2" => Ok(Severity::Sev2),
            "SEV3" => Ok(Severity::Sev3),
            "SEV4" => Ok(Severity::Sev4),
            _ => Err(format!(
                "unknown severity {s:?}: expected SEV1, SEV2, SEV3 or SEV4"
            )),
        }
    }
}

/// A severity with the rule that gave it, for the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeverityDecision {
    pub severity: Severity,
    /// "38% of users affected (≥ 25% is SEV2)", "a critical component is impacted".
    pub reason: String,
}

/// A past, resolved incident used to estimate how long a similar one lasts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastIncident {
    pub cause: NodeId,
    pub failure_kind: String,
    pub duration_secs: u64,
}

/// An estimate of recovery, always with its basis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum Eta {
    /// The cause is a third party: what the vendor itself says.
    Vendor {
        vendor: String,
        /// The vendor's own status words and latest update, internal only.
        status: String,
    },
    /// From resolved incidents with the same cause and failure kind.
    History {
        samples: usize,
        /// Median and 90th percentile duration, in minutes (rounded up).
        p50_minutes: u64,
        p90_minutes: u64,
    },
    /// Nothing to go on yet.
    NoHistory,
}
