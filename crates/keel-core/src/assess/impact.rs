//! Impact: which public components an incident touches and how many people rely on them,
//! and that number in words for the page and updates.

use std::collections::BTreeSet;

use super::graph::Graph;
use super::model::{Criticality, Impact, NodeKind};
use crate::human::thousands;
use crate::ids::NodeId;

/// The impact of an incident whose impacted nodes are `impacted` (a cause and its
/// dependents, or the union of several for a widened incident).
///
/// Only components count: their users (each component once), their publicity and their
/// criticality. The share is of the users of all components in the graph, 0 when none has
/// users. With no component impacted, the criticality is `Low`.
pub fn impact(graph: &Graph, impacted: &BTreeSet<NodeId>) -> Impact {
    let components: Vec<_> = impacted
        .iter()
        .filter_map(|id| graph.node(id))
        .filter(|n| n.kind == NodeKind::Component)
        .collect();
    let affected_users = components
        .iter()
        .fold(0u64, |sum, n| sum.saturating_add(n.users));
    let total = graph.total_users();
    let user_share = if total == 0 {
        0.0
    } else {
        // Precision loss only past 2^53 users.
        affected_users as f64 / total as f64
    };
    Impact {
        public_components: components
            .iter()
            .filter(|n| n.public)
            .map(|n| n.id.clone())
            .collect(),
        impacted: impacted.iter().cloned().collect(),
        affected_users,
        user_share,
        criticality: components
            .iter()
            .map(|n| n.criticality)
            .max()
            .unwrap_or(Criticality::Low),
    }
}

/// A user count as the page and updates state it: "about 15,000 users" (two significant
/// digits from 100 up, since the declared counts are estimates), "12 users" (exact below
/// 100), "no users". Japanese for `ja` (and `ja-…`); English otherwise.
pub fn about_users(n: u64, locale: &str) -> String {
    let ja = locale == "ja" || locale.starts_with("ja-") || locale.starts_with("ja_");
    match (n, ja) {
        (0, false) => "no users".to_owned(),
        (0, true) => "ユーザーへの影響はありません".to_owned(),
        (1, false) => "1 user".to_owned(),
        (n, false) if n < 100 => format!("{n} users"),
        (n, true) if n < 100 => format!("{n}人のユーザー"),
        (n, false) => format!("about {} users", thousands(round_2_significant(n))),
        (n, true) => format!("約{}人のユーザー", thousands(round_2_significant(n))),
    }
}

/// Rounds half up to two significant digits: 15,234 → 15,000; 485 → 490.
fn round_2_significant(n: u64) -> u128 {
    let n = u128::from(n);
    let mut unit: u128 = 1;
    while n / unit >= 100 {
        unit *= 10;
    }
    (n + unit / 2) / unit * unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_to_two_significant_digits() {
        assert_eq!(round_2_significant(15_234), 15_000);
        assert_eq!(round_2_significant(485), 490);
        assert_eq!(round_2_significant(995), 1_000);
        assert_eq!(round_2_significant(100), 100);
        assert_eq!(round_2_significant(u64::MAX), 18_000_000_000_000_000_000);
    }
}
