//! The production [`Judge`]: the engine's judgments answered from the config, the
//! dependency graph and the history of resolved incidents, through the assessment functions.
//!
//! Kept apart from the engine so the engine's rules can be tested with a small judge of
//! their own, and this glue with the real config.

use std::collections::BTreeSet;

use super::engine::Judge;
use super::state::Incident;
use crate::assess::{
    alternatives, estimate_eta, impact, runbook_steps, severity, AlternativeStatus, Cause, Eta,
    Graph, Impact, NodeKind, PastIncident, SeverityDecision, Troubles,
};
use crate::config::Config;
use crate::ids::NodeId;

/// Judges with the config's severity rules and runbooks, the graph's users, and the
/// durations of past incidents.
pub struct ConfigJudge<'a> {
    pub config: &'a Config,
    pub graph: &'a Graph,
    /// Resolved incidents to estimate ETAs from (see [`past_incidents`]).
    pub history: &'a [PastIncident],
}

impl Judge for ConfigJudge<'_> {
    fn with_dependents(&self, nodes: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
        let mut all = nodes.clone();
        for node in nodes {
            all.extend(self.graph.dependents_transitive(node));
        }
        all
    }

    fn impact(&self, impacted: &BTreeSet<NodeId>) -> Impact {
        impact(self.graph, impacted)
    }

    fn severity(&self, impact: &Impact, cause_kind: NodeKind) -> SeverityDecision {
        severity(impact, cause_kind, &self.config.severity)
    }

    fn eta(&self, cause: &Cause) -> Eta {
        match cause.kind {
            NodeKind::Vendor => Eta::Vendor {
                vendor: self.name(&cause.node),
                status: if cause.reasons.is_empty() {
                    cause.health.to_string()
                } else {
                    cause.reasons.join("; ")
                },
            },
            NodeKind::Component | NodeKind::Infra => {
                estimate_eta(&cause.node, &cause.failure_kind, self.history)
            }
        }
    }

    fn runbook(&self, node: &NodeId, failure_kind: &str) -> Vec<String> {
        runbook_steps(self.config, node.as_str(), failure_kind)
    }

    fn title(&self, cause: &Cause) -> String {
        format!("{} is {}", self.name(&cause.node), cause.health)
    }

    fn alternatives(
        &self,
        impacted: &BTreeSet<NodeId>,
        troubles: &Troubles,
    ) -> Vec<AlternativeStatus> {
        alternatives(self.graph, impacted, troubles)
    }
}

impl ConfigJudge<'_> {
    /// The node's English (or plain) name; its id when the graph does not know it.
    fn name(&self, node: &NodeId) -> String {
        self.graph
            .node(node)
            .map(|n| n.name.get("en").to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| node.to_string())
    }
}

/// What resolved detected incidents say about how long a failure lasts: from opening until
/// the service worked again (the first recovery into monitoring), or until resolution when
/// a responder resolved it directly. The stability window is not part of what a customer
/// waits for, so it is left out.
pub fn past_incidents(incidents: &[Incident]) -> Vec<PastIncident> {
    incidents
        .iter()
        .filter(|i| i.is_detected() && i.is_resolved())
        .filter_map(|i| {
            let back = i.mitigated_at.or(i.resolved_at)?;
            Some(PastIncident {
                cause: i.cause.clone()?,
                failure_kind: i.failure_kind.clone(),
                duration_secs: u64::try_from((back - i.started_at).num_seconds()).unwrap_or(0),
            })
        })
        .collect()
}
