//! Several instances on one PostgreSQL database acting as one Keel: one incident per cause seen
//! from every instance, one delivery per update and subscriber, each monitor checked by one
//! instance, a responder's command on any instance, and an instance with a different config
//! refused. (Killing instances and the database is in `crates/keel/tests/chaos.rs`, with real
//! processes.)

mod support;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::Router;
use keel_core::incident::EventKind;
use keel_server::store::open_store;
use keel_server::{Application, Options};
use serde_json::Value;
use support::peers::Receiver;
use support::store::TestSchema;
use support::TestApp;

/// A target serving one path per monitor, counting requests per path; fails while told to.
#[derive(Clone, Default)]
struct Counting {
    hits: Arc<Mutex<HashMap<String, u64>>>,
    failing: Arc<Mutex<bool>>,
}

impl Counting {
    async fn spawn(&self) -> SocketAddr {
        let app = Router::new()
            .fallback(|State(c): State<Counting>, uri: OriginalUri| async move {
                *c.hits
                    .lock()
                    .unwrap()
                    .entry(uri.path().to_string())
                    .or_default() += 1;
                if *c.failing.lock().unwrap() {
                    (StatusCode::SERVICE_UNAVAILABLE, "down")
                } else {
                    (StatusCode::OK, "up")
                }
            })
            .with_state(self.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await });
        addr
    }

    fn hits(&self) -> HashMap<String, u64> {
        self.hits.lock().unwrap().clone()
    }

    fn fail(&self, on: bool) {
        *self.failing.lock().unwrap() = on;
    }
}

const MONITORS: usize = 6;

fn config(target: SocketAddr) -> String {
    let mut t = String::from(
        r#"
[incidents]
publish_after = "0s"
stability_window = "1s"

[notify]
allow_private_targets = true

[cluster]
lease = "2s"

[[component]]
id = "shop"
name = "Shop"
users = 300
"#,
    );
    for i in 0..MONITORS {
        t.push_str(&format!(
            r#"
[[monitor]]
id = "shop-{i}"
component = "shop"
kind = "http"
url = "http://{target}/m{i}"
interval = "1s"
retry_interval = "500ms"
timeout = "500ms"
"#
        ));
    }
    t
}

async fn json(app: &TestApp, path: &str) -> Value {
    app.get_auth(path).await.json().await.unwrap()
}

/// Waits (a hang guard) until `check` holds.
async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("gave up waiting: {what}");
}

fn shards(v: &Value) -> BTreeSet<u64> {
    v["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_act_as_one_keel() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let target = Counting::default();
    let addr = target.spawn().await;
    let hooks = Receiver::spawn().await;
    let toml = config(addr);
    let a = TestApp::spawn_on(&schema.url, &toml, &[]).await;
    let b = TestApp::spawn_on(&schema.url, &toml, &[]).await;

    // The shards are shared out: disjoint, all 64 held, each instance some.
    until("the shards are shared out", || async {
        let (sa, sb) = (
            shards(&json(&a, "/api/v1/cluster").await),
            shards(&json(&b, "/api/v1/cluster").await),
        );
        sa.is_disjoint(&sb) && sa.len() + sb.len() == 64 && !sa.is_empty() && !sb.is_empty()
    })
    .await;
    let ca = json(&a, "/api/v1/cluster").await;
    let cb = json(&b, "/api/v1/cluster").await;
    assert_eq!(ca["instances"].as_array().unwrap().len(), 2, "{ca}");
    assert_eq!(
        ca["leader"]["instance"], cb["leader"]["instance"],
        "{ca} {cb}"
    );
    assert_ne!(ca["leading"], cb["leading"], "exactly one leads: {ca} {cb}");

    // Each monitor is checked once per interval, not once per instance: over a window the
    // target sees about one request per second per monitor (two instances checking each
    // would double it).
    let before = target.hits();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = target.hits();
    for i in 0..MONITORS {
        let path = format!("/m{i}");
        let n = after.get(&path).copied().unwrap_or(0) - before.get(&path).copied().unwrap_or(0);
        assert!(
            (1..=9).contains(&n),
            "{path} was checked {n} times in 6 s at a 1 s interval"
        );
    }

    // A subscriber added on one instance.
    let r = a
        .client
        .post(a.url("/api/v1/subscribers"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"webhook":"{}"}}"#, hooks.url("/hook")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    target.fail(true);
    // One incident, the same from both instances.
    until("both instances show the incident", || async {
        let la = json(&a, "/api/v1/incidents").await;
        let lb = json(&b, "/api/v1/incidents").await;
        la["incidents"].as_array().unwrap().len() == 1 && la == lb
    })
    .await;
    let list = json(&a, "/api/v1/incidents").await;
    let id = list["incidents"][0]["id"].as_u64().unwrap();
    hooks.wait_for("/hook", 1).await;

    // A responder acknowledges on the instance that does not lead; both see it.
    let follower = if ca["leading"] == true { &b } else { &a };
    let leader = if ca["leading"] == true { &a } else { &b };
    let r = follower
        .post_auth(
            &format!("/api/v1/incidents/{id}/acknowledge"),
            r#"{"via":"api"}"#,
        )
        .await;
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    until("the leader sees the acknowledgement", || async {
        json(leader, &format!("/api/v1/incidents/{id}"))
            .await
            .to_string()
            .contains("acknowledged")
    })
    .await;

    target.fail(false);
    until("both instances show it resolved", || async {
        let la = json(&a, "/api/v1/incidents").await;
        let lb = json(&b, "/api/v1/incidents").await;
        la["incidents"][0]["state"] == "resolved" && la == lb
    })
    .await;
    // The status page says the same from both (but for when each rendered it).
    until("both pages agree", || async {
        let summary = |app: &TestApp| {
            let req = app.client.get(app.url("/api/v2/summary.json"));
            async move {
                let mut v: Value = req.send().await.unwrap().json().await.unwrap();
                v["page"]["updated_at"] = Value::Null;
                v
            }
        };
        let (sa, sb) = (summary(&a).await, summary(&b).await);
        sa == sb
    })
    .await;

    // Exactly one delivery per published update, across both instances.
    let events = a
        .store
        .incident_events(keel_core::incident::IncidentId(id as i64))
        .await
        .unwrap();
    let updates = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::UpdatePublished { .. }))
        .count();
    assert!(
        updates >= 2,
        "opened and resolved were published: {events:?}"
    );
    until("every update is delivered", || async {
        hooks.on("/hook").len() >= updates
    })
    .await;
    // Both fan-outs have had their turn (each queues what it hears; the keys dedupe).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = hooks.on("/hook");
    let keys: BTreeSet<String> = got
        .iter()
        .map(|r| r.headers["idempotency-key"].to_str().unwrap().to_string())
        .collect();
    assert_eq!(got.len(), updates, "one delivery per update: {keys:?}");
    assert_eq!(keys.len(), updates);

    a.stop().await;
    b.stop().await;
    schema.drop().await;
}

#[tokio::test]
async fn an_instance_with_a_different_config_is_refused() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let target = Counting::default();
    let addr = target.spawn().await;
    let toml = config(addr);
    let a = TestApp::spawn_on(&schema.url, &toml, &[]).await;

    let dir = tempfile::tempdir().unwrap();
    let changed = toml.replacen("interval = \"1s\"", "interval = \"2s\"", 1);
    let text = support::with_server(dir.path(), &changed).replacen(
        "[server]\n",
        &format!("[server]\ndatabase_url = \"{}\"\n", schema.url),
        1,
    );
    let cfg = keel_core::config::parse(&text, "b.toml", &[]).unwrap();
    let store = open_store(&cfg).await.unwrap();
    let err = match Application::build_with_store(cfg, Options::default(), store).await {
        Ok(_) => panic!("an instance with another config started"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("monitor shop-0 differs"), "{err}");
    assert!(err.contains("same config"), "{err}");
    // The running instance is untouched.
    let c = json(&a, "/api/v1/cluster").await;
    assert_eq!(c["instances"].as_array().unwrap().len(), 1, "{c}");
    assert_eq!(shards(&c).len(), 64);

    a.stop().await;
    schema.drop().await;
}

/// An alert and heartbeat pushes may reach any instance behind a load balancer: an alert sent
/// to the follower opens the incident (the leader correlates it), and pushes sent only to the
/// instance that does not check the heartbeat monitor keep it up on the one that does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alerts_and_heartbeat_pushes_reach_any_instance() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let toml = r#"
[incidents]
publish_after = "0s"
stability_window = "1s"

[cluster]
lease = "2s"

[[component]]
id = "pay"
name = "Payments"
users = 100

[[component]]
id = "batch"
name = "Nightly batch"

[[monitor]]
id = "batch-beat"
component = "batch"
kind = "heartbeat"
token = "beat-token-0123456789"
interval = "2s"
grace = "1s"
"#;
    let a = TestApp::spawn_on(&schema.url, toml, &[]).await;
    let b = TestApp::spawn_on(&schema.url, toml, &[]).await;
    until("the shards are shared out", || async {
        let (sa, sb) = (
            shards(&json(&a, "/api/v1/cluster").await),
            shards(&json(&b, "/api/v1/cluster").await),
        );
        sa.is_disjoint(&sb) && sa.len() + sb.len() == 64 && !sa.is_empty() && !sb.is_empty()
    })
    .await;

    // Pushes go only to the instance that does not check the monitor.
    let shard = u64::from(keel_server::cluster::plan::shard_of(
        "monitor",
        "batch-beat",
    ));
    let a_checks = shards(&json(&a, "/api/v1/cluster").await).contains(&shard);
    let (checker, other) = if a_checks { (&a, &b) } else { (&b, &a) };
    for _ in 0..16 {
        let r = other
            .client
            .post(other.url("/api/v1/push/beat-token-0123456789"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let m = checker.wait_state("batch-beat", "up").await;
    assert_eq!(m["state"], "up", "{m}");
    let downs: Vec<_> = checker
        .store
        .signals_after(0, 1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.signal.source.id() == "batch-beat" && s.signal.health.is_failing())
        .collect();
    assert!(
        downs.is_empty(),
        "pushes to the other instance were missed: {downs:?}"
    );
    // Without pushes, the instance that checks it says so.
    let m = checker.wait_state("batch-beat", "down").await;
    assert!(
        m["reason"].as_str().unwrap().contains("no heartbeat"),
        "{m}"
    );

    // An alert sent to the follower opens the incident, seen the same from both.
    let ca = json(&a, "/api/v1/cluster").await;
    let follower = if ca["leading"] == true { &b } else { &a };
    let r = follower
        .post_auth(
            "/api/v1/intake/generic",
            r#"{"component":"pay","status":"down","summary":"card payments failing"}"#,
        )
        .await;
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    until("both instances show the payments incident", || async {
        let la = json(&a, "/api/v1/incidents").await;
        let lb = json(&b, "/api/v1/incidents").await;
        la.to_string().contains("Payments") && la == lb
    })
    .await;

    a.stop().await;
    b.stop().await;
    schema.drop().await;
}
