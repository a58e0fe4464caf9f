//! Cross-reference checks over the whole config: unique ids (and channel names),
//! `depends_on`, `component` and runbook references that resolve, and a dependency graph
//! without cycles.
//!
//! These need every section read first, so they run after the document walk, on a small
//! summary ([`Refs`]) of names and places. Being pure functions of that summary, they are
//! tested without any TOML.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::position::Pos;
use super::suggest;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NodeKind {
    Component,
    Vendor,
    Infra,
}

impl NodeKind {
    fn noun(self) -> &'static str {
        match self {
            NodeKind::Component => "component",
            NodeKind::Vendor => "vendor",
            NodeKind::Infra => "infra node",
        }
    }
}

/// A name written somewhere, with its place.
#[derive(Debug, Clone)]
pub(crate) struct Ref {
    pub name: String,
    pub pos: Pos,
}

/// A node of the dependency graph: a component, a vendor or an infra node.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub id: String,
    pub kind: NodeKind,
    pub pos: Pos,
}

/// `from` lists `to` in its `depends_on`.
#[derive(Debug, Clone)]
pub(crate) struct Edge {
    pub from: String,
    pub to: Ref,
}

/// What the cross-reference checks need to know, collected during the walk. Ids are kept
/// even when malformed, so one bad id is reported once rather than again at every reference.
#[derive(Debug, Default)]
pub(crate) struct Refs {
    pub nodes: Vec<Node>,
    pub depends: Vec<Edge>,
    pub monitors: Vec<Ref>,
    /// Monitor id (may be empty when missing) → the component it names.
    pub monitor_components: Vec<Edge>,
    /// The component each `[[intake.route]]` names (`from` is empty).
    pub route_components: Vec<Edge>,
    /// Heartbeat tokens; the name is the secret itself, never put in a message.
    pub heartbeat_tokens: Vec<Ref>,
    /// Runbook ids, unique among runbooks.
    pub runbooks: Vec<Ref>,
    /// Runbook id (may be empty when missing) → the node its `component` names.
    pub runbook_nodes: Vec<Edge>,
    /// `[[notify.channel]]` names, unique among channels.
    pub channels: Vec<Ref>,
    /// Component id (may be empty when missing) → a component its `alternatives` names.
    pub alternatives: Vec<Edge>,
    /// Ids of components with `public = false`: no alternative customers can be sent to.
    pub internal: Vec<String>,
    /// Nodes named by runbook steps' `when_healthy`.
    pub step_guards: Vec<Ref>,
}

/// One cross-reference problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub pos: Pos,
    pub message: String,
    pub hint: Option<String>,
}

fn problem(pos: Pos, message: String, hint: impl Into<String>) -> Problem {
    Problem {
        pos,
        message,
        hint: Some(hint.into()),
    }
}

pub(crate) fn check(refs: &Refs) -> Vec<Problem> {
    let mut out = Vec::new();

    // Components, vendors and infra share one namespace: all are nodes `depends_on` names.
    // Sections are read kind by kind; file order decides which of two is the duplicate.
    let mut in_file_order: Vec<&Node> = refs.nodes.iter().collect();
    in_file_order.sort_by_key(|n| n.pos);
    let mut first: HashMap<&str, &Node> = HashMap::new();
    for node in in_file_order {
        match first.get(node.id.as_str()) {
            Some(prev) => out.push(problem(
                node.pos,
                format!(
                    "duplicate id `{}`: already used by the {} on line {}",
                    node.id,
                    prev.kind.noun(),
                    prev.pos.line
                ),
                "components, vendors and infra nodes share one set of ids (they are nodes of one \
                 dependency graph); give each a different id",
            )),
            None => {
                first.insert(&node.id, node);
            }
        }
    }

    for (what, list) in [("monitor", &refs.monitors), ("runbook", &refs.runbooks)] {
        let mut seen: HashMap<&str, Pos> = HashMap::new();
        for m in list {
            match seen.get(m.name.as_str()) {
                Some(prev) => out.push(problem(
                    m.pos,
                    format!(
                        "duplicate {what} id `{}`: already used on line {}",
                        m.name, prev.line
                    ),
                    format!("give each {what} a different id"),
                )),
                None => {
                    seen.insert(&m.name, m.pos);
                }
            }
        }
    }

    let mut channels: HashMap<&str, Pos> = HashMap::new();
    for c in &refs.channels {
        match channels.get(c.name.as_str()) {
            Some(prev) => out.push(problem(
                c.pos,
                format!(
                    "duplicate channel name `{}`: already used on line {}",
                    c.name, prev.line
                ),
                "give each [[notify.channel]] a different name",
            )),
            None => {
                channels.insert(&c.name, c.pos);
            }
        }
    }

    let mut node_ids: Vec<&str> = Vec::new();
    // Malformed ids were reported already; suggesting them would only mislead.
    for n in refs
        .nodes
        .iter()
        .filter(|n| crate::ids::validate_id(&n.id).is_ok())
    {
        if !node_ids.contains(&n.id.as_str()) {
            node_ids.push(&n.id);
        }
    }
    for e in &refs.depends {
        if !first.contains_key(e.to.name.as_str()) {
            out.push(problem(
                e.to.pos,
                format!(
                    "`{}` depends on `{}`, which is no component or vendor",
                    e.from, e.to.name
                ),
                unknown_hint(&e.to.name, &node_ids, DECLARE_NODE),
            ));
        }
    }
    for Edge { from, to: r } in &refs.runbook_nodes {
        if !first.contains_key(r.name.as_str()) {
            let what = if from.is_empty() {
                "runbook".to_owned()
            } else {
                format!("runbook `{from}`")
            };
            out.push(problem(
                r.pos,
                format!(
                    "{what} names `{}` as its component, which is no component, vendor or \
                     infra node",
                    r.name
                ),
                unknown_hint(&r.name, &node_ids, DECLARE_NODE),
            ));
        }
    }

    out.extend(alternatives(refs, &first, &node_ids));

    // Monitors and intake routes speak for what can be watched: components and infra.
    let component_ids: Vec<&str> = refs
        .nodes
        .iter()
        .filter(|n| n.kind != NodeKind::Vendor && crate::ids::validate_id(&n.id).is_ok())
        .map(|n| n.id.as_str())
        .collect();
    for (kind, list) in [
        ("monitor", &refs.monitor_components),
        ("intake route", &refs.route_components),
    ] {
        for Edge { from, to: r } in list {
            let what = if from.is_empty() {
                kind.to_owned()
            } else {
                format!("{kind} `{from}`")
            };
            match first.get(r.name.as_str()) {
                Some(n) if n.kind != NodeKind::Vendor => {}
                Some(_) => out.push(problem(
                    r.pos,
                    format!(
                        "{what} names `{}` as its component, but that is a vendor",
                        r.name
                    ),
                    format!(
                        "a {kind} belongs to a [[component]]; vendors are followed through their \
                         status_url. Add a component that depends on `{}` instead",
                        r.name
                    ),
                )),
                None => out.push(problem(
                    r.pos,
                    format!("{what} names unknown component `{}`", r.name),
                    unknown_hint(
                        &r.name,
                        &component_ids,
                        "declare it with [[component]] or [[infra]]",
                    ),
                )),
            }
        }
    }

    let mut tokens: HashMap<&str, Pos> = HashMap::new();
    for t in &refs.heartbeat_tokens {
        match tokens.get(t.name.as_str()) {
            Some(prev) => out.push(problem(
                t.pos,
                format!(
                    "heartbeat token already used by the monitor on line {}",
                    prev.line
                ),
                "each heartbeat monitor needs its own token (e.g. from `openssl rand -hex 16`)",
            )),
            None => {
                tokens.insert(&t.name, t.pos);
            }
        }
    }

    out.extend(cycles(refs, &first));
    out
}

/// `alternatives` name other public components; `when_healthy` names any node.
fn alternatives(refs: &Refs, first: &HashMap<&str, &Node>, node_ids: &[&str]) -> Vec<Problem> {
    let mut out = Vec::new();
    let public: Vec<&str> = node_ids
        .iter()
        .copied()
        .filter(|id| {
            first.get(id).is_some_and(|n| n.kind == NodeKind::Component)
                && !refs.internal.iter().any(|i| i == id)
        })
        .collect();
    for Edge { from, to: r } in &refs.alternatives {
        let what = if from.is_empty() {
            "a component".to_owned()
        } else {
            format!("`{from}`")
        };
        let name = r.name.as_str();
        match first.get(name) {
            _ if name == from => out.push(problem(
                r.pos,
                format!("{what} names itself as its own alternative"),
                "an alternative is another component customers can use while this one is \
                 affected; remove it from the list",
            )),
            Some(n) if n.kind != NodeKind::Component => out.push(problem(
                r.pos,
                format!(
                    "{what} names `{name}` as an alternative, but that is a {}",
                    n.kind.noun()
                ),
                "customers can only be sent to a [[component]] the page shows; name a public \
                 component (it may depend on the vendor)",
            )),
            Some(_) if refs.internal.iter().any(|i| i == name) => out.push(problem(
                r.pos,
                format!(
                    "{what} names `{name}` as an alternative, but `{name}` is internal \
                     (public = false)"
                ),
                format!(
                    "customers cannot be sent to what the page does not show: make `{name}` \
                     public, or remove it from alternatives"
                ),
            )),
            Some(_) => {}
            None => out.push(problem(
                r.pos,
                format!("{what} names unknown component `{name}` as an alternative"),
                unknown_hint(name, &public, "declare it with [[component]]"),
            )),
        }
    }
    for r in &refs.step_guards {
        if !first.contains_key(r.name.as_str()) {
            out.push(problem(
                r.pos,
                format!(
                    "a runbook step's when_healthy names `{}`, which is no component, vendor or \
                     infra node",
                    r.name
                ),
                unknown_hint(&r.name, node_ids, DECLARE_NODE),
            ));
        }
    }
    out
}

const DECLARE_NODE: &str = "declare it with [[component]], [[vendor]] or [[infra]]";

fn unknown_hint(name: &str, known: &[&str], otherwise: &str) -> String {
    match suggest::closest(name, known.iter().copied()) {
        Some(c) => format!("did you mean `{c}`?"),
        None if known.is_empty() => otherwise.to_owned(),
        // A long list would bury the hint; the first few show the naming at least.
        None if known.len() > 8 => format!(
            "known ids include {} and {} more; or {otherwise}",
            suggest::join(&known[..8]),
            known.len() - 8
        ),
        None => format!("known ids: {}; or {otherwise}", suggest::join(known)),
    }
}

/// One problem per strongly connected part of the dependency graph that contains a cycle,
/// naming one cycle in it.
fn cycles(refs: &Refs, nodes: &HashMap<&str, &Node>) -> Vec<Problem> {
    // Edges between known nodes only; unknown targets were reported above.
    let mut succ: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut pred: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut edge_pos: HashMap<(&str, &str), Pos> = HashMap::new();
    for e in &refs.depends {
        let (from, to) = (e.from.as_str(), e.to.name.as_str());
        if nodes.contains_key(from) && nodes.contains_key(to) {
            succ.entry(from).or_default().insert(to);
            pred.entry(to).or_default().insert(from);
            edge_pos.entry((from, to)).or_insert(e.to.pos);
        }
    }

    let mut left: BTreeSet<&str> = nodes.keys().copied().collect();
    peel(&mut left, &succ, &pred);

    let mut out = Vec::new();
    while !left.is_empty() {
        // Start from the node declared first, so the report is stable and reads naturally.
        let Some(&start) = left.iter().min_by_key(|n| nodes[*n].pos) else {
            break;
        };
        let mut walk = vec![start];
        let mut at: HashMap<&str, usize> = HashMap::from([(start, 0)]);
        let cycle: Vec<&str> = loop {
            let cur = walk[walk.len() - 1];
            let Some(&p) = pred
                .get(cur)
                .and_then(|ps| ps.iter().find(|p| left.contains(*p)))
            else {
                break Vec::new();
            };
            if let Some(&i) = at.get(p) {
                // walk[i..] followed backwards; reverse it into depends-on order.
                let mut c: Vec<&str> = walk[i..].to_vec();
                c.reverse();
                break c;
            }
            at.insert(p, walk.len());
            walk.push(p);
        };
        if cycle.is_empty() {
            break;
        }
        // Begin the cycle at its earliest-declared node.
        let first_i = (0..cycle.len())
            .min_by_key(|&i| nodes[cycle[i]].pos)
            .unwrap_or(0);
        let mut path: Vec<&str> = cycle[first_i..]
            .iter()
            .chain(&cycle[..first_i])
            .copied()
            .collect();
        path.push(path[0]);
        let pos = edge_pos
            .get(&(path[0], path[1]))
            .copied()
            .unwrap_or(nodes[path[0]].pos);
        out.push(problem(
            pos,
            format!("dependency cycle: {}", cycle_text(&path)),
            "nothing can depend on itself, directly or through others; remove one of these \
             depends_on entries",
        ));
        // Drop the cycle's whole strongly connected part so it is reported once.
        let scc = reach(path[0], &succ, &left)
            .intersection(&reach(path[0], &pred, &left))
            .copied()
            .collect::<Vec<_>>();
        for n in scc {
            left.remove(n);
        }
        // Nodes that only the removed part depended on are no longer on any cycle.
        peel(&mut left, &succ, &pred);
    }
    out
}

/// "a → b → a"; a very long cycle is shortened in the middle so the message stays readable.
fn cycle_text(path: &[&str]) -> String {
    const SHOWN: usize = 8;
    let nodes = path.len() - 1;
    if nodes <= SHOWN + 2 {
        return path.join(" → ");
    }
    format!(
        "{} → … → {} → {} ({nodes} nodes)",
        path[..SHOWN].join(" → "),
        path[nodes - 1],
        path[0]
    )
}

/// Removes, repeatedly, the nodes of `left` that nothing in `left` depends on (Kahn). Every
/// node still left afterwards has a dependent that is also left, so walking dependents
/// backwards from any of them must close a loop.
fn peel<'a>(
    left: &mut BTreeSet<&'a str>,
    succ: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    pred: &BTreeMap<&'a str, BTreeSet<&'a str>>,
) {
    let mut indeg: HashMap<&str, usize> = left
        .iter()
        .map(|&n| {
            (
                n,
                pred.get(n)
                    .map_or(0, |ps| ps.iter().filter(|p| left.contains(*p)).count()),
            )
        })
        .collect();
    let mut queue: Vec<&str> = indeg
        .iter()
        .filter(|(_, &d)| d == 0)
        .map(|(&n, _)| n)
        .collect();
    while let Some(n) = queue.pop() {
        left.remove(n);
        for &m in succ.get(n).into_iter().flatten() {
            if let Some(d) = indeg.get_mut(m) {
                *d -= 1;
                if *d == 0 {
                    queue.push(m);
                }
            }
        }
    }
}

/// Nodes reachable from `start` through `edges`, staying within `within`.
fn reach<'a>(
    start: &'a str,
    edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
    within: &BTreeSet<&'a str>,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::from([start]);
    let mut stack = vec![start];
    while let Some(n) = stack.pop() {
        for &m in edges.get(n).into_iter().flatten() {
            if within.contains(m) && seen.insert(m) {
                stack.push(m);
            }
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize) -> Pos {
        Pos { line, column: 1 }
    }

    fn graph(nodes: &[&str], edges: &[(&str, &str)]) -> Refs {
        Refs {
            nodes: nodes
                .iter()
                .enumerate()
                .map(|(i, n)| Node {
                    id: n.to_string(),
                    kind: NodeKind::Component,
                    pos: at(i + 1),
                })
                .collect(),
            depends: edges
                .iter()
                .enumerate()
                .map(|(i, (a, b))| Edge {
                    from: a.to_string(),
                    to: Ref {
                        name: b.to_string(),
                        pos: at(100 + i),
                    },
                })
                .collect(),
            ..Refs::default()
        }
    }

    fn messages(p: &[Problem]) -> Vec<&str> {
        p.iter().map(|p| p.message.as_str()).collect()
    }

    #[test]
    fn a_healthy_graph_has_no_problems() {
        let r = graph(
            &["api", "db", "net"],
            &[("api", "db"), ("db", "net"), ("api", "net")],
        );
        assert!(check(&r).is_empty());
    }

    #[test]
    fn names_the_cycle_from_its_first_declared_node() {
        let r = graph(
            &["a", "b", "c", "d"],
            &[("b", "c"), ("c", "a"), ("a", "b"), ("d", "a")],
        );
        let p = check(&r);
        assert_eq!(messages(&p), ["dependency cycle: a → b → c → a"]);
        // Reported at the `depends_on` entry of a → b.
        assert_eq!(p[0].pos, at(102));
    }

    #[test]
    fn a_node_a_cycle_depends_on_does_not_hide_a_later_cycle() {
        // c hangs below the a-b cycle without being on it; x-y comes after.
        let r = graph(
            &["a", "b", "c", "x", "y"],
            &[
                ("a", "b"),
                ("b", "a"),
                ("b", "c"),
                ("c", "x"),
                ("x", "y"),
                ("y", "x"),
            ],
        );
        let p = check(&r);
        assert_eq!(
            messages(&p),
            ["dependency cycle: a → b → a", "dependency cycle: x → y → x"]
        );
    }

    #[test]
    fn a_long_cycle_is_shortened() {
        let names: Vec<String> = (0..20).map(|i| format!("n{i:02}")).collect();
        let ids: Vec<&str> = names.iter().map(String::as_str).collect();
        let edges: Vec<(&str, &str)> = (0..20).map(|i| (ids[i], ids[(i + 1) % 20])).collect();
        let p = check(&graph(&ids, &edges));
        assert_eq!(
            messages(&p),
            ["dependency cycle: n00 → n01 → n02 → n03 → n04 → n05 → n06 → n07 → … → n19 → n00 (20 nodes)"]
        );
    }

    #[test]
    fn a_self_dependency_is_a_cycle() {
        let p = check(&graph(&["a"], &[("a", "a")]));
        assert_eq!(messages(&p), ["dependency cycle: a → a"]);
    }

    #[test]
    fn separate_cycles_are_each_reported_once() {
        let r = graph(
            &["a", "b", "c", "x", "y"],
            &[
                ("a", "b"),
                ("b", "a"),
                ("b", "c"),
                ("c", "a"),
                ("x", "y"),
                ("y", "x"),
            ],
        );
        let p = check(&r);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].message.starts_with("dependency cycle: a → b"));
        assert_eq!(p[1].message, "dependency cycle: x → y → x");
    }

    #[test]
    fn unknown_dependency_suggests_a_close_id() {
        let p = check(&graph(&["api", "db"], &[("api", "dbb")]));
        assert_eq!(
            messages(&p),
            ["`api` depends on `dbb`, which is no component or vendor"]
        );
        assert_eq!(p[0].hint.as_deref(), Some("did you mean `db`?"));
    }

    #[test]
    fn duplicates_across_components_and_vendors() {
        let mut r = graph(&["api"], &[]);
        r.nodes.push(Node {
            id: "api".into(),
            kind: NodeKind::Vendor,
            pos: at(9),
        });
        let p = check(&r);
        assert_eq!(
            messages(&p),
            ["duplicate id `api`: already used by the component on line 1"]
        );
        assert_eq!(p[0].pos, at(9));
    }

    #[test]
    fn monitors_must_name_components_not_vendors() {
        let mut r = graph(&["api"], &[]);
        r.nodes.push(Node {
            id: "pay".into(),
            kind: NodeKind::Vendor,
            pos: at(2),
        });
        let edge = |to: &str, line| Edge {
            from: "m".into(),
            to: Ref {
                name: to.into(),
                pos: at(line),
            },
        };
        r.monitor_components = vec![edge("api", 3), edge("pay", 4), edge("apj", 5)];
        let p = check(&r);
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0].message,
            "monitor `m` names `pay` as its component, but that is a vendor"
        );
        assert_eq!(p[1].message, "monitor `m` names unknown component `apj`");
        assert_eq!(p[1].hint.as_deref(), Some("did you mean `api`?"));
    }

    #[test]
    fn duplicate_monitor_ids_and_tokens() {
        let r = Refs {
            monitors: vec![
                Ref {
                    name: "m".into(),
                    pos: at(1),
                },
                Ref {
                    name: "m".into(),
                    pos: at(5),
                },
            ],
            heartbeat_tokens: vec![
                Ref {
                    name: "s3cret-token".into(),
                    pos: at(2),
                },
                Ref {
                    name: "s3cret-token".into(),
                    pos: at(6),
                },
            ],
            ..Refs::default()
        };
        let p = check(&r);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|p| !p.message.contains("s3cret")));
    }
}
