//! Backups that know what they rest on: whether a component's `alternatives` can be offered
//! to customers right now, and whether a guarded runbook step (`when_healthy`) is safe.
//!
//! An alternative is *available* only while it and everything it depends on (transitively)
//! are healthy: a phone line that rests on the same failing vendor as the shop is no backup.
//! "Healthy" is strict here — a node Keel cannot judge (`Unknown`) does not count — because
//! sending customers to something that may not work is worse than offering nothing.
//!
//! The same question is asked from two kinds of input: the server's folded health of every
//! node, and the correlation engine's assessment (causes and what they explain, plus the
//! nodes Keel cannot judge). Both are reduced to [`Troubles`] first, so the answer and its
//! wording are the same wherever they are shown.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::graph::Graph;
use super::model::{Assessment, HealthMap, NodeKind};
use crate::config::{Config, LocalizedText};
use crate::ids::NodeId;
use crate::Health;

/// Every node not known to be healthy right now → its health (`Down`, `Degraded` or
/// `Unknown`). A node absent is healthy.
pub type Troubles = BTreeMap<NodeId, Health>;

/// The troubles of a folded health map: every node that is not `Up`.
pub fn troubles_from_health(health: &HealthMap) -> Troubles {
    health
        .iter()
        .filter(|(_, h)| h.health != Health::Up)
        .map(|(id, h)| (id.clone(), h.health))
        .collect()
}

/// The troubles an assessment tells of: each cause with its health, each node it explains
/// (failing too; it carries its cause's health, which is all the assessment keeps), and the
/// nodes Keel cannot judge. Only a cause or an unknown node is ever named as a reason (see
/// [`blockers`]), so the explained nodes' borrowed health never shows.
pub fn troubles_from_assessment(assessment: &Assessment, unknown: &BTreeSet<NodeId>) -> Troubles {
    let mut out: Troubles = unknown
        .iter()
        .map(|id| (id.clone(), Health::Unknown))
        .collect();
    for cause in &assessment.causes {
        for node in &cause.explained {
            out.insert(node.clone(), cause.health);
        }
    }
    for cause in &assessment.causes {
        out.insert(cause.node.clone(), cause.health);
    }
    out
}

/// Why `node` cannot be relied on now: the troubled nodes among it and everything it rests
/// on that are not themselves explained by another troubled node among them (the vendor, not
/// every component that fails because of it). Empty when all of them are healthy. Sorted by
/// id.
pub fn blockers(graph: &Graph, node: &NodeId, troubles: &Troubles) -> Vec<(NodeId, Health)> {
    let mut under: BTreeSet<NodeId> = graph.dependencies_transitive(node);
    under.insert(node.clone());
    let troubled: BTreeSet<&NodeId> = under.iter().filter(|n| troubles.contains_key(*n)).collect();
    troubled
        .iter()
        .filter(|n| {
            !graph
                .dependencies_transitive(n)
                .iter()
                .any(|d| troubled.contains(d))
        })
        .map(|n| ((*n).clone(), troubles[*n]))
        .collect()
}

fn kind_word(graph: &Graph, id: &NodeId) -> &'static str {
    match graph.node(id).map(|n| n.kind) {
        Some(NodeKind::Vendor) => "vendor",
        Some(NodeKind::Infra) => "infra",
        Some(NodeKind::Component) | None => "component",
    }
}

/// "vendor 'telco' is down", "infra 'power' cannot be judged right now (unknown)"; several
/// joined with "and". Internal words: ids and vendors are named.
pub fn trouble_words(graph: &Graph, blockers: &[(NodeId, Health)]) -> String {
    let each: Vec<String> = blockers
        .iter()
        .map(|(id, h)| {
            let kind = kind_word(graph, id);
            match h {
                Health::Unknown => format!("{kind} '{id}' cannot be judged right now (unknown)"),
                h => format!("{kind} '{id}' is {h}"),
            }
        })
        .collect();
    each.join(" and ")
}

/// One alternative of one impacted component, judged now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlternativeStatus {
    /// The impacted component that names it.
    pub component: NodeId,
    /// The alternative's id.
    pub alternative: NodeId,
    /// Its name, as customers know it.
    pub name: LocalizedText,
    pub available: bool,
    /// Why not, for responders ("vendor 'telco' is down"); `None` when available.
    pub reason: Option<String>,
}

/// The alternatives of every impacted node that declares some, in id order of the impacted
/// node, then in config order. An alternative impacted by the very same failure is judged
/// like any other: it rests on something that is down.
pub fn alternatives(
    graph: &Graph,
    impacted: &BTreeSet<NodeId>,
    troubles: &Troubles,
) -> Vec<AlternativeStatus> {
    let mut out = Vec::new();
    for component in impacted {
        for alt in graph.alternatives(component) {
            let blockers = blockers(graph, alt, troubles);
            out.push(AlternativeStatus {
                component: component.clone(),
                alternative: alt.clone(),
                name: graph
                    .node(alt)
                    .map_or_else(|| LocalizedText::plain(alt.to_string()), |n| n.name.clone()),
                available: blockers.is_empty(),
                reason: (!blockers.is_empty()).then(|| trouble_words(graph, &blockers)),
            });
        }
    }
    out
}

/// The start of every prompt about the alternative called `name` (its English name): how
/// the timeline's latest word on it is found again (see [`backup_prompt`]).
pub fn backup_prompt_prefix(name: &str) -> String {
    format!("The backup '{name}' ")
}

/// The prompt telling responders what Keel does with an alternative now. The text is a pure
/// function of the alternative's name and status, so the engine can tell whether the
/// timeline already says it (and never repeats it), and the drafts can tell from the
/// timeline whether it was judged available.
pub fn backup_prompt(name: &str, reason: Option<&str>) -> String {
    let prefix = backup_prompt_prefix(name);
    match reason {
        None => format!(
            "{prefix}is available: the status page and drafted updates offer it to customers."
        ),
        Some(why) => format!("{prefix}is also affected: {why} — do not advertise it."),
    }
}

/// Runbook step text → the nodes its `when_healthy` names (the union, when several runbooks
/// have a step with the same text: a checklist holds each text once).
///
/// The guard stays in the config beside its runbook rather than on the timeline: the
/// `Checklist` event freezes the steps' text when the incident opens, but whether a failover
/// is safe is a question about *now* (the backup may fail or recover at any moment without an
/// event on this incident), so it is judged whenever the checklist is shown, and a corrected
/// guard applies to incidents already open. The step's text is its identity on the checklist,
/// as it already is for `runbook_steps`' de-duplication.
pub fn step_guards(config: &Config) -> BTreeMap<String, Vec<NodeId>> {
    let mut out: BTreeMap<String, Vec<NodeId>> = BTreeMap::new();
    for step in config.runbooks.iter().flat_map(|rb| &rb.steps) {
        if step.when_healthy.is_empty() {
            continue;
        }
        let guards = out.entry(step.text.clone()).or_default();
        // The config reader checked that every guard names a node, so every guard parses.
        for g in step
            .when_healthy
            .iter()
            .filter_map(|g| NodeId::parse(g.as_str()).ok())
        {
            if !guards.contains(&g) {
                guards.push(g);
            }
        }
    }
    out
}

/// Why a step guarded by `when_healthy` is unsafe now: "unsafe now: backup-db is down",
/// "unsafe now: backup-db rests on vendor 'storage', which is down"; `None` when every guard
/// node and everything it rests on is healthy.
pub fn unsafe_reason(
    graph: &Graph,
    when_healthy: &[NodeId],
    troubles: &Troubles,
) -> Option<String> {
    let mut why = Vec::new();
    for guard in when_healthy {
        for (id, h) in blockers(graph, guard, troubles) {
            let state = match h {
                Health::Unknown => "cannot be judged right now (unknown)".to_owned(),
                h => format!("is {h}"),
            };
            why.push(if id == *guard {
                format!("{guard} {state}")
            } else {
                let kind = kind_word(graph, &id);
                format!("{guard} rests on {kind} '{id}', which {state}")
            });
        }
    }
    (!why.is_empty()).then(|| format!("unsafe now: {}", why.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::{Criticality, Node};

    fn n(id: &str) -> NodeId {
        NodeId::parse(id).unwrap()
    }

    fn node(id: &str, kind: NodeKind, deps: &[&str]) -> Node {
        Node {
            id: n(id),
            kind,
            name: LocalizedText::plain(id.to_uppercase()),
            users: 10,
            public: kind == NodeKind::Component,
            criticality: Criticality::Normal,
            depends_on: deps.iter().map(|d| n(d)).collect(),
            canary: false,
        }
    }

    /// shop → payments (vendor); phone → pbx → telco (vendor); shop's backup is phone.
    fn graph() -> Graph {
        Graph::from_nodes([
            node("shop", NodeKind::Component, &["payments"]),
            node("phone", NodeKind::Component, &["pbx"]),
            node("pbx", NodeKind::Component, &["telco"]),
            node("payments", NodeKind::Vendor, &[]),
            node("telco", NodeKind::Vendor, &[]),
        ])
        .with_alternatives(n("shop"), vec![n("phone")])
    }

    fn troubles(list: &[(&str, Health)]) -> Troubles {
        list.iter().map(|(id, h)| (n(id), *h)).collect()
    }

    #[test]
    fn the_root_of_what_an_alternative_rests_on_is_named_not_every_failing_dependent() {
        let g = graph();
        let t = troubles(&[
            ("telco", Health::Down),
            ("pbx", Health::Down),
            ("phone", Health::Degraded),
        ]);
        assert_eq!(blockers(&g, &n("phone"), &t), [(n("telco"), Health::Down)]);
        assert_eq!(
            trouble_words(&g, &blockers(&g, &n("phone"), &t)),
            "vendor 'telco' is down"
        );
        assert!(blockers(&g, &n("shop"), &t).is_empty());
    }

    #[test]
    fn an_unknown_dependency_keeps_the_alternative_from_being_offered() {
        let g = graph();
        let impacted = BTreeSet::from([n("shop"), n("payments")]);
        let alts = alternatives(&g, &impacted, &troubles(&[("pbx", Health::Unknown)]));
        assert_eq!(alts.len(), 1);
        assert!(!alts[0].available);
        assert_eq!(
            alts[0].reason.as_deref(),
            Some("component 'pbx' cannot be judged right now (unknown)")
        );
        let alts = alternatives(&g, &impacted, &troubles(&[("payments", Health::Down)]));
        assert!(alts[0].available && alts[0].reason.is_none());
        assert_eq!(alts[0].name.get("en"), "PHONE");
    }

    #[test]
    fn guards_name_the_guard_and_what_it_rests_on() {
        let g = graph();
        let t = troubles(&[("telco", Health::Down)]);
        assert_eq!(
            unsafe_reason(&g, &[n("telco")], &t).as_deref(),
            Some("unsafe now: telco is down")
        );
        assert_eq!(
            unsafe_reason(&g, &[n("phone"), n("shop")], &t).as_deref(),
            Some("unsafe now: phone rests on vendor 'telco', which is down")
        );
        assert_eq!(unsafe_reason(&g, &[n("shop")], &t), None);
    }

    #[test]
    fn prompts_are_recognisable_by_their_prefix() {
        let p = backup_prompt("Phone orders", Some("vendor 'telco' is down"));
        assert_eq!(
            p,
            "The backup 'Phone orders' is also affected: vendor 'telco' is down — do not advertise it."
        );
        assert!(p.starts_with(&backup_prompt_prefix("Phone orders")));
        assert!(
            backup_prompt("Phone orders", None).starts_with(&backup_prompt_prefix("Phone orders"))
        );
    }
}
