//! keel-server's top-level modules (`src/NAME.rs` or `src/NAME/`) form no import circle: each
//! `crate::NAME` path a module's files name is an edge, and the graph must have no cycle. A
//! circle means two modules can only be understood, tested and changed together; the shared
//! piece belongs in a module of its own, or one of the two should not need the other.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

#[test]
fn top_level_modules_import_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    assert!(
        graph.len() > 10,
        "too few modules found under {}: {graph:?}",
        src.display()
    );
    let circles = circles(&graph);
    assert!(
        circles.is_empty(),
        "import circles between keel-server's modules:\n{}",
        circles
            .iter()
            .map(|c| format!("  {}  (all of: {})", describe(c, &graph), c.join(", ")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The check itself finds circles, short and long, and passes a graph without one.
#[test]
fn the_check_finds_circles() {
    let graph = |edges: &[(&str, &str)]| {
        let mut g = Graph::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    let g = graph(&[("app", "jobs"), ("jobs", "http"), ("http", "hub")]);
    assert!(circles(&g).is_empty());
    let g = graph(&[
        ("app", "export"),
        ("export", "app"),
        ("hub", "metrics"),
        ("metrics", "persist"),
        ("persist", "hub"),
        ("book", "hub"),
    ]);
    let found = circles(&g);
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(describe(&found[0], &g), "app -> export -> app");
    assert_eq!(describe(&found[1], &g), "hub -> metrics -> persist -> hub");

    let uses = crate_paths(
        "use crate::{hub::SignalHub, metrics};\nlet x = crate::book::f(); // crate::not_this\n",
    );
    assert_eq!(
        uses,
        BTreeSet::from(["book".into(), "hub".into(), "metrics".into()])
    );
}

/// Each top-level module and the top-level modules its files name through `crate::…`.
fn module_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    for entry in std::fs::read_dir(src).expect("src is readable") {
        let path = entry.expect("src entry").path();
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("UTF-8 file name")
            .to_string();
        let files = if path.is_dir() {
            rust_files(&path)
        } else if path.extension().is_some_and(|e| e == "rs") && name != "lib" && name != "main" {
            vec![path.clone()]
        } else {
            continue;
        };
        let mut deps = BTreeSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
            deps.extend(crate_paths(&text));
        }
        deps.remove(&name);
        graph.entry(name).or_default().extend(deps);
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("module folder is readable") {
        let path = entry.expect("module folder entry").path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}

/// The first segment after every `crate::` in code (comments left out), with
/// `crate::{a::X, b}` groups opened.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            // `keel_crate::x` or `my_crate::x` are other names, not this crate.
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                out.extend(inner.split(',').filter_map(|item| ident(item.trim())));
            } else if let Some(name) = ident(rest) {
                out.insert(name);
            }
        }
    }
    out
}

fn ident(s: &str) -> Option<String> {
    let name: String = s
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The graph's strongly connected components of more than one module (Tarjan's algorithm),
/// each sorted, in name order.
fn circles(graph: &Graph) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        found: Vec<Vec<String>>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.graph.contains_key(w) {
                    continue;
                }
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                loop {
                    let w = self.stack.pop().expect("v is on the stack");
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found.sort();
    walk.found
}

/// One circle through a component, from its first module back to it (a shortest one, by a
/// breadth-first search), so the message names imports to look at.
fn describe(component: &[String], graph: &Graph) -> String {
    let start = component[0].as_str();
    let inside: BTreeSet<&str> = component.iter().map(String::as_str).collect();
    let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flatten().map(String::as_str) {
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![v];
                while let Some(prev) = came_from.get(path[path.len() - 1]) {
                    path.push(prev);
                }
                path.reverse();
                path.push(start);
                return path.join(" -> ");
            }
            if w != start && !came_from.contains_key(w) {
                came_from.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    component.join(", ")
}
