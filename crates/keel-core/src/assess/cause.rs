//! Finding root causes: which failing nodes explain the others.
//!
//! A cause is a failing node none of whose transitive dependencies fails. Every other failing
//! node depends, through some chain, on a failing node that is itself a cause (the graph has
//! no cycles), so it is *explained* rather than reported on its own; one incident per cause
//! follows from that. A failing canary means Keel itself cannot see, and then nothing is
//! declared.

use std::collections::{BTreeMap, BTreeSet};

use super::graph::Graph;
use super::model::{Assessment, Canaries, Cause, HealthMap, NodeHealth, NodeKind};
use crate::ids::NodeId;
use crate::Health;

/// The causes behind the failing nodes of `health`, or why Keel is blind.
///
/// Only `Down` and `Degraded` count as failing. A failing id the graph does not know (an
/// alert for a node since removed from config) is kept as a cause of its own, of kind
/// `Component`, rather than silently dropped.
pub fn assess(graph: &Graph, health: &HealthMap) -> Assessment {
    let failing: BTreeMap<&NodeId, &NodeHealth> = health
        .iter()
        .filter(|(_, h)| h.health.is_failing())
        .collect();

    let canaries: Vec<String> = failing
        .iter()
        .filter(|(id, _)| graph.node(id).is_some_and(|n| n.canary))
        .map(|(id, h)| {
            let mut s = format!("canary '{id}' is {}", h.health);
            if !h.reasons.is_empty() {
                s.push_str(&format!(" ({})", h.reasons.join("; ")));
            }
            s
        })
        .collect();
    if !canaries.is_empty() {
        return Assessment {
            causes: Vec::new(),
            blind: Some(format!(
                "Keel cannot see, so it declares nothing down: {}",
                canaries.join("; ")
            )),
            canaries: None,
        };
    }
    let mut watch = graph.canaries().peekable();
    let canaries = watch.peek().is_some().then(|| Canaries {
        seeing_since: watch
            .map(|n| {
                health
                    .get(&n.id)
                    .filter(|h| h.health == Health::Up)
                    .map(|h| h.since)
            })
            .collect::<Option<Vec<_>>>()
            .and_then(|up| up.into_iter().max()),
    });

    let causes = failing
        .iter()
        .filter(|(id, _)| {
            !graph
                .dependencies_transitive(id)
                .iter()
                .any(|d| failing.contains_key(d))
        })
        .map(|(&id, h)| {
            let mut impacted = graph.dependents_transitive(id);
            let explained: BTreeSet<NodeId> = impacted
                .iter()
                .filter(|n| failing.contains_key(n))
                .cloned()
                .collect();
            impacted.insert(id.clone());
            Cause {
                node: id.clone(),
                kind: graph.node(id).map_or(NodeKind::Component, |n| n.kind),
                health: h.health,
                since: h.since,
                reasons: h.reasons.clone(),
                failure_kind: h.failure_kind.clone(),
                impacted,
                explained,
            }
        })
        .collect();
    Assessment {
        causes,
        blind: None,
        canaries,
    }
}
