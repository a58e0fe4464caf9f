//! Incidents end to end: real loopback targets die and recover, and the incidents API shows one
//! incident per cause with its impact, severity, ETA, lifecycle and postmortem.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{fixture, serve_bytes, Target, TestApp};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A TCP port that accepts until closed (a database that can die and come back).
struct Port {
    addr: std::net::SocketAddr,
    task: Option<JoinHandle<()>>,
}

impl Port {
    async fn open() -> Port {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        Port {
            addr,
            task: Some(tokio::spawn(accept(listener))),
        }
    }

    fn close(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }

    async fn reopen(&mut self) {
        self.close();
        // The same port again: a restarted database.
        for _ in 0..50 {
            if let Ok(l) = TcpListener::bind(self.addr).await {
                self.task = Some(tokio::spawn(accept(l)));
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("could not rebind {}", self.addr);
    }
}

async fn accept(l: TcpListener) {
    while let Ok((s, _)) = l.accept().await {
        drop(s);
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        self.close();
    }
}

fn config(db: &Port, api: &Target, web: &Target, extra: &str) -> String {
    format!(
        r#"
[incidents]
stability_window = "1s"
recurrence_window = "1h"

[[component]]
id = "db"
name = "Database"
public = false

[[component]]
id = "api"
name = "Public API"
users = 12000
depends_on = ["db"]
criticality = "high"

[[component]]
id = "web"
name = {{ en = "Website", ja = "ウェブサイト" }}
users = 3000
depends_on = ["api"]

[[component]]
id = "search"
name = "Search"
users = 500

[[runbook]]
id = "db-down"
component = "db"
steps = ["Check the database host", "Fail over to the replica"]

[[monitor]]
id = "db-port"
component = "db"
kind = "tcp"
host = "127.0.0.1"
port = {db_port}
interval = "300ms"
retry_interval = "100ms"
timeout = "300ms"
confirmations = 2

[[monitor]]
id = "api-health"
component = "api"
kind = "http"
url = "{api_url}"
interval = "300ms"
retry_interval = "100ms"
timeout = "300ms"
confirmations = 2

[[monitor]]
id = "web-home"
component = "web"
kind = "http"
url = "{web_url}"
interval = "300ms"
retry_interval = "100ms"
timeout = "300ms"
confirmations = 2
{extra}
"#,
        db_port = db.addr.port(),
        api_url = api.url(),
        web_url = web.url(),
    )
}

async fn incidents(app: &TestApp, state: &str) -> Vec<Value> {
    let v: Value = app
        .get_auth(&format!("/api/v1/incidents?state={state}"))
        .await
        .json()
        .await
        .unwrap();
    v["incidents"].as_array().cloned().unwrap_or_default()
}

/// Polls until `pred` holds for the incident list (a hang guard, not a timing assertion).
async fn wait_for(app: &TestApp, what: &str, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..300 {
        let all = incidents(app, "all").await;
        if pred(&all) {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "never: {what}; incidents: {:#}",
        json!(incidents(app, "all").await)
    );
}

#[tokio::test]
async fn a_dead_database_opens_exactly_one_incident_then_recovers_resolves_and_relapses() {
    let mut db = Port::open().await;
    let (api, web) = (Target::spawn().await, Target::spawn().await);
    let app = TestApp::spawn(&config(&db, &api, &web, "")).await;
    app.wait_state("db-port", "up").await;
    app.wait_state("web-home", "up").await;
    assert!(incidents(&app, "all").await.is_empty());

    // The database dies, and the API and website fail because of it.
    db.close();
    api.set(503);
    web.set(503);
    app.wait_state("db-port", "down").await;
    app.wait_state("api-health", "down").await;
    app.wait_state("web-home", "down").await;
    wait_for(&app, "an incident caused by db", |all| {
        all.iter().any(|i| i["cause"] == "db")
    })
    .await;
    // Give the engine a few more rounds: still exactly one incident.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all = incidents(&app, "all").await;
    assert_eq!(all.len(), 1, "{all:#?}");
    let inc = &all[0];
    assert_eq!(inc["cause"], "db");
    assert_eq!(inc["state"], "investigating");
    let impacted: Vec<&str> = inc["impacted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(impacted, ["api", "db", "web"]);
    assert_eq!(inc["affected_users"], 15000);
    assert_eq!(inc["affected_users_text"], "about 15,000 users");
    assert!(inc["severity"].is_string(), "{inc}");
    assert_eq!(inc["eta"]["basis"], "no_history");

    let full = app.incident(&inc["id"]).await;
    let steps: Vec<&str> = full["checklist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["Check the database host", "Fail over to the replica"]
    );
    let kinds: Vec<&str> = full["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "opened");
    assert!(kinds.contains(&"severity_changed"), "{kinds:?}");

    // A responder acknowledges and ticks a step.
    let r = app
        .post_auth(&format!("/api/v1/incidents/{}/acknowledge", inc["id"]), "")
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .post_auth(&format!("/api/v1/incidents/{}/steps/1/tick", inc["id"]), "")
        .await;
    assert_eq!(r.status(), 200);

    // Recovery: monitoring first, resolved only after the stability window.
    db.reopen().await;
    api.set(200);
    web.set(200);
    wait_for(&app, "monitoring or resolved", |all| {
        matches!(all[0]["state"].as_str(), Some("monitoring" | "resolved"))
    })
    .await;
    let all = wait_for(&app, "resolved", |all| all[0]["state"] == "resolved").await;
    assert_eq!(all[0]["recurring"], false);
    let full = app.incident(&all[0]["id"]).await;
    let states: Vec<(String, String)> = full["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "state_changed")
        .map(|e| {
            (
                e["from"].as_str().unwrap().to_string(),
                e["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("investigating".to_string(), "monitoring".to_string()),
            ("monitoring".to_string(), "resolved".to_string())
        ]
    );

    // The postmortem is there, in Markdown and JSON.
    let md = app
        .get_auth(&format!(
            "/api/v1/incidents/{}/postmortem?format=md",
            all[0]["id"]
        ))
        .await
        .text()
        .await
        .unwrap();
    assert!(md.contains("Database"), "{md}");
    assert!(md.to_lowercase().contains("time to detect"), "{md}");
    let pm: Value = app
        .get_auth(&format!("/api/v1/incidents/{}/postmortem", all[0]["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert!(pm.is_object());

    // A relapse within the recurrence window reopens the same incident as recurring.
    db.close();
    let all = wait_for(&app, "reopened", |all| {
        all.len() == 1 && all[0]["recurring"] == true && all[0]["state"] != "resolved"
    })
    .await;
    assert_eq!(all[0]["recurrences"], 1);
    // The signal that reopened it came while it was resolved; it is on the timeline all the same.
    let relapse_signals = |inc: &Value| -> Vec<Value> {
        let timeline = inc["timeline"].as_array().unwrap();
        let reopened = timeline
            .iter()
            .position(|e| e["type"] == "reopened")
            .expect("a reopened event");
        timeline[reopened..]
            .iter()
            .filter(|e| e["type"] == "signal" && e["source"] == "db-port")
            .cloned()
            .collect()
    };
    let full = app
        .wait_incident_until(&all[0]["id"], "a signal after the reopening", |inc| {
            !relapse_signals(inc).is_empty()
        })
        .await;
    let relapse_signals = relapse_signals(&full);
    assert_eq!(relapse_signals.len(), 1, "{relapse_signals:?}");
    assert_eq!(relapse_signals[0]["health"], "down");
}

#[tokio::test]
async fn two_unrelated_failures_open_two_incidents() {
    let db = Port::open().await;
    let (api, web) = (Target::spawn().await, Target::spawn().await);
    let search = Target::spawn().await;
    let extra = format!(
        "\n[[monitor]]\nid = \"search-home\"\ncomponent = \"search\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"300ms\"\nretry_interval = \"100ms\"\ntimeout = \"300ms\"\nconfirmations = 2\n",
        search.url()
    );
    let app = TestApp::spawn(&config(&db, &api, &web, &extra)).await;
    app.wait_state("search-home", "up").await;
    app.wait_state("web-home", "up").await;
    web.set(500);
    search.set(500);
    let all = wait_for(&app, "two incidents", |all| all.len() == 2).await;
    let mut causes: Vec<&str> = all.iter().map(|i| i["cause"].as_str().unwrap()).collect();
    causes.sort();
    assert_eq!(causes, ["search", "web"]);
    let search_inc = all.iter().find(|i| i["cause"] == "search").unwrap();
    assert_eq!(search_inc["affected_users"], 500);
}

#[tokio::test]
async fn a_vendor_major_outage_opens_an_incident_caused_by_the_vendor() {
    let db = Port::open().await;
    let (api, web) = (Target::spawn().await, Target::spawn().await);
    let doc: support::Doc = Arc::new(std::sync::Mutex::new((
        200,
        fixture("statuspage/dropbox-summary-all-operational.json"),
    )));
    let addr = serve_bytes(doc.clone()).await;
    let extra = format!(
        "\n[[vendor]]\nid = \"payments\"\nname = \"Payments provider\"\nstatus_url = \"http://{addr}/\"\ninterval = \"300ms\"\ntimeout = \"300ms\"\nconfidential = true\n\n[[component]]\nid = \"checkout\"\nname = \"Checkout\"\nusers = 800\ndepends_on = [\"payments\"]\n"
    );
    let app = TestApp::spawn(&config(&db, &api, &web, &extra)).await;
    app.wait_state("payments", "up").await;
    // The real GitHub capture: a partial outage with an unresolved incident.
    *doc.lock().unwrap() = (
        200,
        fixture("statuspage/github-summary-unresolved-incident.json"),
    );
    app.wait_state("payments", "degraded").await;
    let all = wait_for(&app, "a vendor incident", |all| {
        all.iter().any(|i| i["cause"] == "payments")
    })
    .await;
    let inc = all.iter().find(|i| i["cause"] == "payments").unwrap();
    assert_eq!(inc["cause_kind"], "vendor");
    assert_eq!(inc["eta"]["basis"], "vendor");
    assert!(
        inc["eta"]["status"]
            .as_str()
            .unwrap()
            .contains("Incident with Packages and Pages"),
        "{inc}"
    );
    assert_eq!(inc["affected_users"], 800);
    let full = app.incident(&inc["id"]).await;
    assert!(
        full["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "prompt"),
        "a prompt to chase the vendor: {full:#}"
    );
}

#[tokio::test]
async fn declared_incidents_and_every_bad_request() {
    let db = Port::open().await;
    let (api, web) = (Target::spawn().await, Target::spawn().await);
    let app = TestApp::spawn(&config(&db, &api, &web, "")).await;

    let r = app
        .post_auth(
            "/api/v1/incidents",
            r#"{"title":"Power cut in the data centre","components":["api"]}"#,
        )
        .await;
    assert_eq!(r.status(), 201);
    let inc: Value = r.json().await.unwrap();
    assert_eq!(inc["origin"], "declared");
    assert_eq!(inc["cause"], Value::Null);
    assert_eq!(
        inc["affected_users"], 15000,
        "api and its dependent web: {inc}"
    );
    let id = inc["id"].clone();

    let bad = [
        ("/api/v1/incidents", "", "body"),
        ("/api/v1/incidents", "{", "body"),
        ("/api/v1/incidents", r#"{"components":["api"]}"#, "title"),
        (
            "/api/v1/incidents",
            r#"{"title":"  ","components":["api"]}"#,
            "title",
        ),
        (
            "/api/v1/incidents",
            r#"{"title":"x","components":[]}"#,
            "components",
        ),
        (
            "/api/v1/incidents",
            r#"{"title":"x","components":["nope"]}"#,
            "components[0]",
        ),
        (
            "/api/v1/incidents",
            r#"{"title":"x","components":"api"}"#,
            "components",
        ),
        (
            "/api/v1/incidents",
            r#"{"title":"x","components":["api"],"sev":1}"#,
            "sev",
        ),
    ];
    for (path, body, field) in bad {
        let r = app.post_auth(path, body).await;
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        let got = v["field"].as_str().unwrap_or("body");
        assert!(
            got.contains(field) || (field == "body" && v["field"].is_null()),
            "{body}: {v}"
        );
    }
    let p = |verb: &str| format!("/api/v1/incidents/{id}/{verb}");
    // Bad bodies on actions: 400 with the field.
    for (verb, body, field) in [
        ("notes", r#"{"text":""}"#, "text"),
        ("notes", r#"{"txt":"x"}"#, "txt"),
        ("roles", r#"{"role":"chef","person":"ann"}"#, "role"),
        ("state", r#"{"state":"done"}"#, "state"),
        ("action-items", r#"{"text":""}"#, "text"),
        (
            "severity",
            r#"{"severity":"SEV9","reason":"x"}"#,
            "severity",
        ),
    ] {
        let r = app.post_auth(&p(verb), body).await;
        assert_eq!(r.status(), 400, "{verb} {body}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["field"].as_str().unwrap_or("").contains(field),
            "{verb} {body}: {v}"
        );
    }
    // Refused by the incident: 409 with the reason, incident unchanged.
    let r = app.post_auth(&p("steps/9/tick"), "").await;
    assert_eq!(r.status(), 409);
    let r = app
        .post_auth(&p("state"), r#"{"state":"investigating"}"#)
        .await;
    assert_eq!(r.status(), 409, "same state");
    let r = app.post_auth(&p("acknowledge"), "").await;
    assert_eq!(r.status(), 200);
    let r = app.post_auth(&p("acknowledge"), "").await;
    assert_eq!(r.status(), 409, "already acknowledged");
    let r = app.post_auth(&p("action-items/7/close"), "").await;
    assert_eq!(r.status(), 409);
    // Not found / bad ids / unknown verbs.
    assert_eq!(app.get_auth("/api/v1/incidents/999").await.status(), 404);
    assert_eq!(app.get_auth("/api/v1/incidents/abc").await.status(), 400);
    assert_eq!(
        app.post_auth("/api/v1/incidents/999/acknowledge", "")
            .await
            .status(),
        404
    );
    assert_eq!(app.post_auth(&p("explode"), "").await.status(), 404);
    assert_eq!(
        app.get_auth("/api/v1/incidents?state=sideways")
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get_auth("/api/v1/reports/mttx?from=yesterday")
            .await
            .status(),
        400
    );
    // Roles: unauthenticated 401; viewers may read but not act.
    let r = app
        .client
        .get(app.url("/api/v1/incidents"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let token = "viewer-token-abcdefabcdef";
    app.store
        .create_token("v", "viewer", &keel_store::hash_token(token))
        .await
        .unwrap();
    let r = app
        .client
        .get(app.url("/api/v1/incidents"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .post(app.url(&p("acknowledge")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // The full responder flow on the declared incident.
    for (verb, body) in [
        (
            "notes",
            r#"{"text":"Facilities confirm a power cut in hall B"}"#,
        ),
        ("roles", r#"{"role":"commander","person":"ann"}"#),
        ("roles", r#"{"role":"communications","person":"bo"}"#),
        (
            "state",
            r#"{"state":"identified","reason":"power cut confirmed"}"#,
        ),
        (
            "action-items",
            r#"{"text":"Add a UPS to hall B","owner":"ops"}"#,
        ),
        ("root-cause", r#"{"text":"The hall B feed tripped."}"#),
        ("resolve", r#"{"reason":"power restored"}"#),
    ] {
        let r = app.post_auth(&p(verb), body).await;
        assert_eq!(r.status(), 200, "{verb}: {}", r.text().await.unwrap());
    }
    let r = app.post_auth(&p("action-items/1/close"), "").await;
    assert_eq!(r.status(), 200);
    let full = app.incident(&id).await;
    assert_eq!(full["state"], "resolved");
    assert_eq!(full["roles"]["commander"], "ann");
    let r = app
        .post_auth(&p("state"), r#"{"state":"identified"}"#)
        .await;
    assert_eq!(r.status(), 409, "nothing leaves resolved by hand");
    let md = app
        .get_auth(&format!("/api/v1/incidents/{id}/postmortem?format=md"))
        .await
        .text()
        .await
        .unwrap();
    assert!(md.contains("Add a UPS to hall B"), "{md}");
    assert!(md.contains("The hall B feed tripped."), "{md}");
    let m: Value = app
        .get_auth("/api/v1/reports/mttx")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(m["incidents"], 1);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("keel_open_incidents{severity=\"SEV1\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failing_canary_makes_keel_say_it_cannot_see() {
    let db = Port::open().await;
    let (api, web) = (Target::spawn().await, Target::spawn().await);
    let canary = Target::spawn().await;
    let extra = format!(
        "\n[[infra]]\nid = \"internet\"\nname = \"Internet\"\ncanary = true\n\n[[monitor]]\nid = \"canary\"\ncomponent = \"internet\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"300ms\"\nretry_interval = \"100ms\"\ntimeout = \"300ms\"\nconfirmations = 2\n",
        canary.url()
    );
    let app = TestApp::spawn(&config(&db, &api, &web, &extra)).await;
    app.wait_state("canary", "up").await;
    app.wait_state("web-home", "up").await;
    // The canary confirms first (as a real one should: give it fewer confirmations than the
    // monitors it guards), then everything else fails behind it.
    canary.set(503);
    app.wait_state("canary", "down").await;
    web.set(503);
    app.wait_state("web-home", "down").await;
    let mut blind = Value::Null;
    for _ in 0..100 {
        let v: Value = app.get_auth("/api/v1/monitors").await.json().await.unwrap();
        if v["blind"].is_string() {
            blind = v["blind"].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(blind.as_str().unwrap_or("").contains("internet"), "{blind}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        incidents(&app, "all").await.is_empty(),
        "nothing declared while blind"
    );
}

/// A query string that does not parse (a parameter given twice) is Keel's JSON 400 naming the
/// parameter, as a bad body is, on every route that reads one; not axum's plain-text answer.
#[tokio::test]
async fn a_bad_query_string_is_a_json_400_naming_the_parameter() {
    let db = Port::open().await;
    let (api, web) = (Target::spawn().await, Target::spawn().await);
    let app = TestApp::spawn(&config(&db, &api, &web, "")).await;
    for (path, field) in [
        ("/api/v1/incidents?state=open&state=all", "state"),
        (
            "/api/v1/incidents/1/postmortem?format=md&format=json",
            "format",
        ),
        ("/api/v1/reports/mttx?to=x&to=y", "to"),
    ] {
        let r = app.get_auth(path).await;
        assert_eq!(r.status(), 400, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{path}"
        );
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "bad_request", "{path}");
        assert_eq!(v["field"], field, "{path}: {v}");
    }
    // The optional bodies of acknowledge and resolve may be left out or be `null`.
    let r = app
        .post_auth(
            "/api/v1/incidents",
            r#"{"title":"Query test","components":["api"]}"#,
        )
        .await;
    assert_eq!(r.status(), 201);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    for (verb, body) in [("acknowledge", "null"), ("resolve", "")] {
        let r = app
            .post_auth(&format!("/api/v1/incidents/{id}/{verb}"), body)
            .await;
        assert_eq!(r.status(), 200, "{verb} with {body:?}");
    }
}
