//! Remote probes against a real Keel on loopback: only probe tokens reach the probe endpoints
//! and probe tokens reach nothing else, a location gets exactly its monitors, a batch is
//! checked whole before any of it counts, results are stamped with the server's clock, floods
//! and oversized batches are refused, and results from one location make a regional outage.

mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use support::{Target, TestApp};

fn config(target: &Target) -> String {
    format!(
        r#"
[incidents]
publish_after = "0s"

[[component]]
id = "checkout"
name = {{ en = "Checkout", ja = "決済" }}
users = 300

[[monitor]]
id = "api"
component = "checkout"
kind = "http"
url = "{url}"
interval = "1s"
retry_interval = "200ms"
timeout = "1s"
confirmations = 2
locations = ["local", "osaka"]
quorum = 1

[[monitor]]
id = "db"
component = "checkout"
kind = "tcp"
host = "127.0.0.1"
port = {port}
interval = "1s"

[[monitor]]
id = "far"
component = "checkout"
kind = "tcp"
host = "127.0.0.1"
port = {port}
locations = ["osaka", "frankfurt"]

[[monitor]]
id = "nightly"
component = "checkout"
kind = "heartbeat"
token = "0123456789abcdef-secret"
interval = "1h"
"#,
        url = target.url(),
        port = target.addr.port(),
    )
}

async fn token(app: &TestApp, name: &str, role: &str) -> String {
    let token = keel_server::http::auth::new_token();
    app.store
        .create_token(name, role, &keel_store::hash_token(&token))
        .await
        .unwrap();
    token
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let r = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, path: &str, token: &str, body: &Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn result(monitor: &str, health: &str) -> Value {
    json!({"monitor": monitor, "health": health, "reason": "HTTP 503", "latency_ms": 12})
}

#[tokio::test]
async fn probe_endpoints_take_probe_tokens_only_and_probe_tokens_nothing_else() {
    let target = Target::spawn().await;
    let app = TestApp::spawn(&config(&target)).await;
    let probe = token(&app, "osaka-probe", "probe").await;
    let viewer = token(&app, "v", "viewer").await;
    let responder = token(&app, "r", "responder").await;
    let assignments = "/api/v1/probe/assignments?location=osaka";
    let batch = json!({"location": "osaka", "results": [result("api", "down")]});

    assert_eq!(get(&app, assignments, "keel_wrong").await.0, 401);
    let r = app.client.get(app.url(assignments)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    for t in [viewer.as_str(), responder.as_str(), support::ADMIN] {
        let (status, body) = get(&app, assignments, t).await;
        assert_eq!(status, 403, "{body}");
        assert!(
            body["reason"]
                .as_str()
                .unwrap()
                .contains("take a probe token"),
            "{body}"
        );
        assert_eq!(post(&app, "/api/v1/probe/results", t, &batch).await.0, 403);
    }

    assert_eq!(get(&app, assignments, &probe).await.0, 200);
    for path in ["/api/v1/incidents", "/api/v1/monitors", "/api/v1/oncall"] {
        let (status, body) = get(&app, path, &probe).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body["reason"].as_str().unwrap().contains("may only report"),
            "{body}"
        );
    }
    let declare = json!({"title": "x", "components": ["checkout"]});
    assert_eq!(
        post(&app, "/api/v1/incidents", &probe, &declare).await.0,
        403
    );
    let alert = json!([{"component": "checkout", "status": "down"}]);
    assert_eq!(
        post(&app, "/api/v1/intake/generic", &probe, &alert).await.0,
        403
    );
}

#[tokio::test]
async fn a_location_gets_its_monitors_and_an_unknown_one_is_told_the_locations() {
    let target = Target::spawn().await;
    let app = TestApp::spawn(&config(&target)).await;
    let probe = token(&app, "p", "probe").await;

    let (status, osaka) = get(&app, "/api/v1/probe/assignments?location=osaka", &probe).await;
    assert_eq!(status, 200);
    assert_eq!(osaka["location"], "osaka");
    let ids: Vec<&str> = osaka["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["api", "far"]);
    let api = &osaka["monitors"][0];
    assert_eq!(api["check"]["kind"], "http");
    assert_eq!(api["check"]["url"], target.url());
    assert_eq!(
        (
            &api["interval_ms"],
            &api["timeout_ms"],
            &api["retry_interval_ms"]
        ),
        (&json!(1000), &json!(1000), &json!(200))
    );
    assert!(osaka["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(!osaka.to_string().contains("0123456789abcdef-secret"));

    let (_, frankfurt) = get(&app, "/api/v1/probe/assignments?location=frankfurt", &probe).await;
    assert_ne!(frankfurt["version"], osaka["version"]);

    for (location, says) in [
        ("tokyo", "no monitor is checked from \"tokyo\""),
        ("local", "\"local\" is the Keel server itself"),
    ] {
        let (status, body) = get(
            &app,
            &format!("/api/v1/probe/assignments?location={location}"),
            &probe,
        )
        .await;
        assert_eq!(status, 404, "{body}");
        let reason = body["reason"].as_str().unwrap();
        assert!(reason.contains(says), "{reason}");
        assert!(
            reason.contains("configured locations: frankfurt, osaka"),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn a_batch_is_checked_whole_and_stamped_with_the_servers_clock() {
    let target = Target::spawn().await;
    let app = TestApp::spawn(&config(&target)).await;
    let probe = token(&app, "p", "probe").await;

    // `db` is checked by the server alone, `nightly` is a heartbeat: not osaka's to report.
    let batch = json!({"location": "osaka", "results": [
        result("api", "down"), result("db", "down"), result("nightly", "up"), result("db", "down"),
    ]});
    let (status, body) = post(&app, "/api/v1/probe/results", &probe, &batch).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["unassigned"], json!(["db", "nightly"]));
    assert!(body["reason"]
        .as_str()
        .unwrap()
        .contains("nothing in this batch was applied"));
    assert!(app.source("api@osaka").await.is_none(), "nothing applied");

    let (status, body) = post(
        &app,
        "/api/v1/probe/results",
        &probe,
        &json!({"location": "tokyo", "results": []}),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // A probe whose clock is decades off: its times are ignored, the server's is used.
    let before = Utc::now();
    let batch = json!({"location": "osaka", "sent_at": "1999-01-01T00:00:00Z", "results": [
        {"monitor": "api", "health": "down", "reason": "HTTP 503", "latency_ms": 12,
         "at": "1999-01-01T00:00:00Z", "checked_at": "2099-01-01T00:00:00Z"},
    ]});
    let (status, body) = post(&app, "/api/v1/probe/results", &probe, &batch).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 1);
    let (_, osaka) = get(&app, "/api/v1/probe/assignments?location=osaka", &probe).await;
    assert_eq!(body["version"], osaka["version"]);
    let after = Utc::now();
    let source = app.source("api@osaka").await.expect("the osaka source");
    let checked: DateTime<Utc> = source["last_checked"].as_str().unwrap().parse().unwrap();
    assert!(
        before <= checked && checked <= after,
        "{checked} is not the server's time ({before} – {after})"
    );
    assert_eq!(source["reason"], "HTTP 503");
    assert_eq!(source["latency_ms"], 12);
    assert_eq!(source["component"], "checkout");
    // One failure of two needed: confirming, not down yet — the monitor's own thresholds.
    assert_eq!(source["confirming"], true);
}

#[tokio::test]
async fn a_flood_and_oversized_batches_are_refused() {
    let target = Target::spawn().await;
    let app = TestApp::spawn(&config(&target)).await;
    let probe = token(&app, "p", "probe").await;

    let many: Vec<Value> = (0..1001).map(|_| result("api", "up")).collect();
    let (status, body) = post(
        &app,
        "/api/v1/probe/results",
        &probe,
        &json!({"location": "osaka", "results": many}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["limit"], 1000);
    assert!(body["reason"].as_str().unwrap().contains("at most 1000"));

    let huge = json!({"location": "osaka", "results": [
        {"monitor": "api", "health": "up", "reason": "x".repeat(2 * 1024 * 1024)}
    ]});
    assert_eq!(
        post(&app, "/api/v1/probe/results", &probe, &huge).await.0,
        413
    );

    // Two hundred requests at once from one token: far beyond a probe's once a second.
    let path = "/api/v1/probe/assignments?location=osaka";
    let statuses = futures::future::join_all((0..200).map(|_| get(&app, path, &probe))).await;
    let limited: Vec<&(u16, Value)> = statuses.iter().filter(|(s, _)| *s == 429).collect();
    assert!(!limited.is_empty(), "no request was limited");
    assert!(limited[0].1["reason"]
        .as_str()
        .unwrap()
        .contains("too many requests from probe token \"p\""));
    assert!(statuses.iter().all(|(s, _)| *s == 200 || *s == 429));
    // Another probe's token has its own allowance.
    let other = token(&app, "q", "probe").await;
    assert_eq!(get(&app, path, &other).await.0, 200);
}

#[tokio::test]
async fn failures_from_one_location_are_a_regional_outage() {
    let target = Target::spawn().await;
    let app = TestApp::spawn(&config(&target)).await;
    let probe = token(&app, "p", "probe").await;
    app.wait_state("api", "up").await;

    let batch = json!({"location": "osaka", "results": [result("api", "down")]});
    let mut incident = None;
    for _ in 0..300 {
        let (status, body) = post(&app, "/api/v1/probe/results", &probe, &batch).await;
        assert_eq!(status, 202, "{body}");
        let list: Value = app
            .get_auth("/api/v1/incidents?state=all")
            .await
            .json()
            .await
            .unwrap();
        if let Some(first) = list["incidents"].as_array().and_then(|l| l.first()) {
            incident = Some(first["id"].clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let id = incident.expect("an incident opens");
    let monitors: Value = app.get_auth("/api/v1/monitors").await.json().await.unwrap();
    let api = monitors["quorum"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["monitor"] == "api")
        .expect("the quorum of api")
        .clone();
    assert_eq!(api["state"], "degraded", "{api}");
    assert_eq!(
        api["reason"],
        "failing from osaka only (HTTP 503); fine from local"
    );
    let inc: Value = app
        .get_auth(&format!("/api/v1/incidents/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let timeline = inc["timeline"].to_string();
    assert!(
        timeline.contains("api: failing from osaka only (HTTP 503); fine from local"),
        "{timeline}"
    );
}
