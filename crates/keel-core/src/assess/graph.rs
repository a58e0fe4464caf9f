//! The dependency graph: components, vendors and infra nodes joined by `depends_on`.
//!
//! Built once from a validated [`Config`] (ids unique, references resolved, no cycles), so
//! the walks here never meet a dangling edge in practice; they still guard against cycles
//! with a visited set, because a graph can also be built from hand-made nodes.

use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Config, LocalizedText};
use crate::ids::{ComponentId, MonitorId, NodeId};

use super::model::{Criticality, NodeKind};

/// One node of the graph, with what impact and severity need to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: NodeId,
    pub kind: NodeKind,
    pub name: LocalizedText,
    /// People who rely on it; only components have users.
    pub users: u64,
    /// Only components can be public.
    pub public: bool,
    /// `Normal` for vendors and infra.
    pub criticality: Criticality,
    /// Ids of the nodes it needs.
    pub depends_on: Vec<NodeId>,
    /// An infra node checking Keel's own view of the world (see `[[infra]] canary`).
    pub canary: bool,
}

/// The nodes and both directions of their edges.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Graph {
    nodes: BTreeMap<NodeId, Node>,
    /// Node → the nodes that list it in `depends_on`.
    dependents: BTreeMap<NodeId, BTreeSet<NodeId>>,
    /// Component → the components customers can use instead (`alternatives`). Kept apart
    /// from [`Node`] because an alternative is no edge of the dependency graph.
    alternatives: BTreeMap<NodeId, Vec<NodeId>>,
    /// Monitor → where it is checked from and its quorum, for monitors watched from anywhere
    /// but the server alone. Kept with the graph because the health view is built from the
    /// graph and the hub only: their per-location sources are folded before the nodes are.
    located: BTreeMap<MonitorId, Located>,
}

/// Where one monitor is checked from (`locations`) and how many must see a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub component: ComponentId,
    /// The check kind ("http", "tcp", …): the folded source's label.
    pub kind: String,
    pub locations: Vec<String>,
    pub quorum: u32,
}

impl Graph {
    /// Every component, vendor and infra node of the config.
    pub fn from_config(config: &Config) -> Graph {
        let components = config.components.iter().map(|c| Node {
            id: NodeId::from(&c.id),
            kind: NodeKind::Component,
            name: c.name.clone(),
            users: c.users,
            public: c.public,
            criticality: c.criticality,
            depends_on: node_ids(&c.depends_on),
            canary: false,
        });
        let vendors = config.vendors.iter().map(|v| Node {
            id: NodeId::from(&v.id),
            kind: NodeKind::Vendor,
            name: LocalizedText::plain(v.name.clone()),
            users: 0,
            public: false,
            criticality: Criticality::Normal,
            depends_on: Vec::new(),
            canary: false,
        });
        let infra = config.infra.iter().map(|i| Node {
            id: NodeId::from(&i.id),
            kind: NodeKind::Infra,
            name: i.name.clone(),
            users: 0,
            public: false,
            criticality: Criticality::Normal,
            depends_on: node_ids(&i.depends_on),
            canary: i.canary,
        });
        let mut g = Graph::from_nodes(components.chain(vendors).chain(infra));
        for c in config
            .components
            .iter()
            .filter(|c| !c.alternatives.is_empty())
        {
            g = g.with_alternatives(NodeId::from(&c.id), node_ids(&c.alternatives));
        }
        for m in config.monitors.iter().filter(|m| m.is_located()) {
            g.located.insert(
                m.id.clone(),
                Located {
                    component: m.component.clone(),
                    kind: m.kind().to_owned(),
                    locations: m.locations.clone(),
                    quorum: m.quorum,
                },
            );
        }
        g
    }

    /// The monitors checked from several (or only remote) locations, by id.
    pub fn located(&self) -> &BTreeMap<MonitorId, Located> {
        &self.located
    }

    /// The graph with `alternatives` declared for `id` (replacing any before).
    pub fn with_alternatives(mut self, id: NodeId, alternatives: Vec<NodeId>) -> Graph {
        self.alternatives.insert(id, alternatives);
        self
    }

    /// The components customers can use instead of `id`, in config order.
    pub fn alternatives(&self, id: &NodeId) -> &[NodeId] {
        self.alternatives.get(id).map_or(&[], Vec::as_slice)
    }

    /// A graph of the given nodes. The first node with an id wins; edges to ids that are no
    /// node are kept on the node but lead nowhere.
    pub fn from_nodes(nodes: impl IntoIterator<Item = Node>) -> Graph {
        let mut g = Graph::default();
        for n in nodes {
            g.nodes.entry(n.id.clone()).or_insert(n);
        }
        for n in g.nodes.values() {
            for dep in &n.depends_on {
                if g.nodes.contains_key(dep) {
                    g.dependents
                        .entry(dep.clone())
                        .or_default()
                        .insert(n.id.clone());
                }
            }
        }
        g
    }

    /// The canary nodes (`[[infra]] canary = true`), by id.
    pub fn canaries(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values().filter(|n| n.canary)
    }

    pub fn node(&self, id: &NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// All nodes, sorted by id.
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// Every node that needs `id`, directly or through others; `id` itself excluded.
    pub fn dependents_transitive(&self, id: &NodeId) -> BTreeSet<NodeId> {
        self.walk(id, |n| {
            self.dependents
                .get(n)
                .map(|s| s.iter().collect())
                .unwrap_or_default()
        })
    }

    /// Every node `id` needs, directly or through others; `id` itself excluded.
    pub fn dependencies_transitive(&self, id: &NodeId) -> BTreeSet<NodeId> {
        self.walk(id, |n| {
            self.nodes
                .get(n)
                .map(|node| {
                    node.depends_on
                        .iter()
                        .filter(|d| self.nodes.contains_key(*d))
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// The users of all components together: the denominator of every user share.
    pub fn total_users(&self) -> u64 {
        self.nodes
            .values()
            .filter(|n| n.kind == NodeKind::Component)
            .fold(0u64, |sum, n| sum.saturating_add(n.users))
    }

    fn walk<'a>(
        &'a self,
        start: &NodeId,
        next: impl Fn(&NodeId) -> Vec<&'a NodeId>,
    ) -> BTreeSet<NodeId> {
        let mut seen: BTreeSet<&NodeId> = BTreeSet::new();
        let mut stack = next(start);
        while let Some(n) = stack.pop() {
            if n != start && seen.insert(n) {
                stack.extend(next(n));
            }
        }
        seen.into_iter().cloned().collect()
    }
}

/// The config's references to nodes (`depends_on`, `alternatives`) as node ids. The config
/// reader checked that each names a node, so each parses; one that does not (a config built
/// by hand) could name no node, and an edge to it would lead nowhere anyway.
fn node_ids(ids: &[String]) -> Vec<NodeId> {
    ids.iter()
        .filter_map(|id| NodeId::parse(id.as_str()).ok())
        .collect()
}
