//! Folding the latest health of every source (monitor, vendor, intake alert) into one
//! health per graph node.
//!
//! A node fails when any of its sources fails, and fails as badly as the worst of them:
//! one failing check is enough to suspect a node, and confirmation already happened per
//! source. `Unknown` never makes a node fail (Keel could not tell), but it does keep a node
//! from counting as healthy, so an incident does not resolve on a vendor page that merely
//! stopped answering.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::ids::NodeId;
use crate::Health;
use crate::SourceKey;

use super::model::{HealthMap, NodeHealth};

/// The latest health of one source, as the hub knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceHealth {
    /// The monitor (at a location), vendor or intake alert; its text names it in reasons.
    pub source: SourceKey,
    /// The kind of check: "http", "tcp", …, "vendor", "alertmanager", "generic", "manual"
    /// (see [`crate::config::FAILURE_KINDS`]); becomes the node's `failure_kind`.
    pub label: String,
    /// The graph node the source speaks for.
    pub node: NodeId,
    pub health: Health,
    /// When the source entered this health.
    pub since: DateTime<Utc>,
    /// Why, in words ("HTTP 503").
    pub reason: String,
}

/// One health per node that has sources:
///
/// - some source `Down` or `Degraded`: the worst of them; `since` is the earliest `since`
///   among the failing sources, `failure_kind` the label of the worst failing source (the
///   earliest failing, on a tie), `reasons` one "source: reason" line per failing source,
///   worst first;
/// - else some source `Unknown`: `Unknown`, with the unknown sources as reasons;
/// - else `Up`, since the latest source recovered, with no reasons and no failure kind.
pub fn fold_health(sources: &[SourceHealth]) -> HealthMap {
    let mut by_node: BTreeMap<&NodeId, Vec<&SourceHealth>> = BTreeMap::new();
    for s in sources {
        by_node.entry(&s.node).or_default().push(s);
    }
    by_node
        .into_iter()
        .filter_map(|(node, list)| Some((node.clone(), fold_node(&list)?)))
        .collect()
}

/// Worse first: Down, Degraded, Unknown, Up.
fn rank(h: Health) -> u8 {
    match h {
        Health::Down => 0,
        Health::Degraded => 1,
        Health::Unknown => 2,
        Health::Up => 3,
    }
}

fn fold_node(list: &[&SourceHealth]) -> Option<NodeHealth> {
    let mut sorted: Vec<&SourceHealth> = list.to_vec();
    sorted.sort_by(|a, b| {
        (rank(a.health), a.since, &a.source).cmp(&(rank(b.health), b.since, &b.source))
    });
    let worst = *sorted.first()?;
    if worst.health == Health::Up {
        return Some(NodeHealth {
            health: Health::Up,
            since: sorted.iter().map(|s| s.since).max().unwrap_or(worst.since),
            reasons: Vec::new(),
            failure_kind: String::new(),
        });
    }
    // Unknown sources are only the reason when nothing fails.
    let counted: Vec<&&SourceHealth> = sorted
        .iter()
        .filter(|s| {
            if worst.health.is_failing() {
                s.health.is_failing()
            } else {
                s.health == Health::Unknown
            }
        })
        .collect();
    Some(NodeHealth {
        health: worst.health,
        since: counted.iter().map(|s| s.since).min().unwrap_or(worst.since),
        reasons: counted
            .iter()
            .map(|s| format!("{}: {}", s.source, s.reason))
            .collect(),
        failure_kind: worst.label.clone(),
    })
}
