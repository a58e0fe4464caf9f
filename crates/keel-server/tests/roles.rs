//! Every operation in the OpenAPI document refuses the wrong caller: no token is 401, a
//! weaker role (or a probe token outside the probe endpoints, or any other token on them) is
//! 403, and the role the document names is let through. The roles are read from the document
//! (`x-keel-role`), so a route without one fails here, and the router's `/api/v1` routes are
//! compared with the document so neither can grow without the other.

mod support;

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use support::TestApp;

const CONFIG: &str = r#"
[[component]]
id = "web"

[[monitor]]
id = "nightly"
component = "web"
kind = "heartbeat"
interval = "1h"
token = "roles-push-token"
"#;

/// The ladder of management roles, weakest first.
const LADDER: [&str; 3] = ["viewer", "responder", "admin"];

struct Operation {
    method: Method,
    path: String,
    role: String,
}

fn operations(doc: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("path item") {
            let Ok(m) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if !matches!(method.as_str(), "get" | "post" | "put" | "patch" | "delete") {
                continue;
            }
            let role = op["x-keel-role"].as_str().unwrap_or_else(|| {
                panic!(
                    "{} {path} has no x-keel-role in the document",
                    method.to_uppercase()
                )
            });
            assert!(
                role == "public" || role == "probe" || LADDER.contains(&role),
                "{method} {path}: unknown x-keel-role {role:?}"
            );
            // Public operations take no token; the others name the bearer scheme.
            let security = &op["security"];
            if role == "public" {
                assert!(
                    security.as_array().is_none_or(|s| s
                        .iter()
                        .all(|r| r.as_object().is_some_and(|o| o.is_empty()))),
                    "{method} {path} is public but asks for {security}"
                );
            } else {
                assert_eq!(
                    security,
                    &serde_json::json!([{"bearer": []}]),
                    "{method} {path} needs {role} but does not name the bearer scheme"
                );
            }
            out.push(Operation {
                method: m,
                path: path.clone(),
                role: role.to_string(),
            });
        }
    }
    out
}

/// The path with every placeholder filled ("1": an id that parses, for the incident, override
/// and step routes).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

async fn call(app: &TestApp, op: &Operation, token: Option<&str>) -> StatusCode {
    let mut req = app
        .client
        .request(op.method.clone(), app.url(&concrete(&op.path)));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if op.method == Method::POST {
        req = req.header("content-type", "application/json").body("{}");
    }
    req.send().await.expect("request").status()
}

async fn token(app: &TestApp, role: &str) -> String {
    let token = format!("roles-{role}-token-0123456789abcdef");
    app.store
        .create_token(role, role, &keel_store::hash_token(&token))
        .await
        .expect("create token");
    token
}

#[tokio::test]
async fn every_operation_refuses_a_missing_or_weaker_token() {
    let app = TestApp::spawn(CONFIG).await;
    let r = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the document is served without a token");
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let ops = operations(&doc);
    let mut tokens = std::collections::HashMap::new();
    for role in ["probe", "viewer", "responder", "admin"] {
        tokens.insert(role, token(&app, role).await);
    }
    let mut checked = 0;
    for op in &ops {
        let what = format!("{} {} ({})", op.method, op.path, op.role);
        let anonymous = call(&app, op, None).await;
        if op.role == "public" {
            assert!(
                anonymous != StatusCode::UNAUTHORIZED && anonymous != StatusCode::FORBIDDEN,
                "{what}: public, but refused without a token ({anonymous})"
            );
            checked += 1;
            continue;
        }
        assert_eq!(
            anonymous,
            StatusCode::UNAUTHORIZED,
            "{what} without a token"
        );
        let (refused, allowed): (Vec<&str>, Vec<&str>) = if op.role == "probe" {
            (LADDER.to_vec(), vec!["probe"])
        } else {
            let at = LADDER.iter().position(|r| *r == op.role).unwrap();
            let mut below = vec!["probe"];
            below.extend(&LADDER[..at]);
            (below, LADDER[at..].to_vec())
        };
        for role in refused {
            let status = call(&app, op, Some(&tokens[role])).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{what} with a {role} token");
        }
        for role in allowed {
            let status = call(&app, op, Some(&tokens[role])).await;
            assert!(
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                "{what}: a {role} token is refused ({status})"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, ops.len());
    assert!(ops.len() >= 30, "only {} operations documented", ops.len());
}

/// `(METHOD, path)` of every `/api/v1` route in http/mod.rs's router, read from the source:
/// axum's router cannot list its routes.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/mod.rs"))
        .expect("read src/http/mod.rs");
    let mut out = BTreeSet::new();
    let mut rest = src.as_str();
    while let Some(at) = rest.find(".route(") {
        rest = &rest[at + ".route(".len()..];
        // The call's arguments, up to its closing parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("closing parenthesis");
        let args = &rest[..end];
        let path = args.split('"').nth(1).expect("route path");
        if !path.starts_with("/api/v1/") {
            continue;
        }
        let handlers = &args[args.find(',').expect("handler") + 1..];
        for word in handlers.split(|c: char| !c.is_ascii_alphanumeric() && c != '_') {
            if matches!(word, "get" | "post" | "put" | "patch" | "delete") {
                out.insert((word.to_uppercase(), path.to_string()));
            }
        }
    }
    assert!(!out.is_empty(), "no /api/v1 route found in src/http/mod.rs");
    out
}

/// The literal words `incidents::act` and `incidents::act_on_item` take in place of their
/// path's placeholders (`"acknowledge" =>`, `("steps", "tick") =>`), read from the source.
fn incident_verbs() -> BTreeSet<String> {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/http/incidents.rs"
    ))
    .expect("read src/http/incidents.rs");
    let start = src.find("pub async fn act(").expect("fn act");
    let end = src[start..].find("\nasync fn run(").expect("fn run") + start;
    let mut out = BTreeSet::new();
    for line in src[start..end].lines() {
        let t = line.trim();
        let Some(arm) = t.split(" =>").next().filter(|_| t.contains(" =>")) else {
            continue;
        };
        let words: Vec<&str> = arm.split('"').skip(1).step_by(2).collect();
        match words.as_slice() {
            [verb] if arm.starts_with('"') => {
                out.insert(format!("/api/v1/incidents/{{id}}/{verb}"));
            }
            [what, verb] if arm.starts_with("(\"") => {
                out.insert(format!("/api/v1/incidents/{{id}}/{what}/{{n}}/{verb}"));
            }
            _ => {}
        }
    }
    assert!(out.len() >= 10, "too few incident verbs found: {out:?}");
    out
}

/// Whether a document path is served by a router path: segment by segment, a router
/// placeholder takes anything, a literal only itself.
fn served_by(doc_path: &str, router_path: &str) -> bool {
    let d: Vec<&str> = doc_path.split('/').collect();
    let r: Vec<&str> = router_path.split('/').collect();
    d.len() == r.len()
        && d.iter().zip(&r).all(|(d, r)| {
            r.starts_with('{') || d == r || (d.starts_with('{') && r.starts_with('{'))
        })
}

#[tokio::test]
async fn the_document_and_the_router_list_the_same_routes() {
    let app = TestApp::spawn(CONFIG).await;
    let doc: Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|o| (o.method.to_string(), o.path))
        .collect();
    let routes = router_routes();
    for (method, path) in &routes {
        // A literal route must be documented as it is; a route with a placeholder standing for
        // verbs, by at least one operation (each verb is checked below).
        assert!(
            documented
                .iter()
                .any(|(m, p)| m == method && served_by(p, path)),
            "{method} {path} is routed but not in the OpenAPI document"
        );
    }
    for (method, path) in &documented {
        assert!(
            routes
                .iter()
                .any(|(m, r)| m == method && served_by(path, r)),
            "{method} {path} is in the document but no route serves it"
        );
    }
    // The routes whose placeholder stands for a verb: each verb the handlers take is
    // documented, and each documented one is taken.
    let verbs = incident_verbs();
    for verb in &verbs {
        assert!(
            documented.contains(&("POST".to_string(), verb.clone())),
            "POST {verb} is taken by incidents::act but not in the OpenAPI document"
        );
    }
    for (method, path) in &documented {
        let by_verb = routes
            .iter()
            .filter(|(m, r)| m == method && served_by(path, r))
            .all(|(_, r)| r.ends_with("{verb}"));
        assert!(
            !by_verb || verbs.contains(path),
            "{method} {path} is documented but incidents::act takes no such verb"
        );
    }
}
