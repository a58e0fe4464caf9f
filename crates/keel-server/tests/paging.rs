//! Paging end to end: a real target fails, Keel opens the incident and pages the person on
//! call through real receivers on loopback (a webhook receiver and aiosmtpd), escalates to
//! the next level when nobody acknowledges, and stops when someone acknowledges through the
//! signed link; on-call overrides through the API change who is paged.

mod support;

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use support::peers::{Receiver, Smtp};
use support::{Target, TestApp};

const ANN_SECRET: &str = "ann-hook-secret-0123456789";

/// A shop watched every 300 ms; Ann on call (webhook and email), Carol paged `carol_after`
/// later; `extra` is appended (more policies, paging settings).
fn config(web: &Target, hooks: &Receiver, carol_after: &str, extra: &str) -> String {
    format!(
        r#"
[page]
title = "Acme Status"
locales = ["en", "ja"]

[incidents]
publish_after = "1h"

[[component]]
id = "shop"
name = {{ en = "Shop", ja = "ショップ" }}
users = 2000

[[monitor]]
id = "shop-home"
component = "shop"
kind = "http"
url = "{url}"
interval = "300ms"
retry_interval = "100ms"
timeout = "300ms"

[[person]]
id = "ann"
name = "Ann Sato"
timezone = "Asia/Tokyo"
contacts = [ {{ kind = "webhook", url = "{ann}", secret_env = "KEEL_TEST_ANN_SECRET" }},
             {{ kind = "email", address = "ann@example.com" }} ]

[[person]]
id = "carol"
name = "Carol Ito"
timezone = "Europe/Berlin"
contacts = [ {{ kind = "webhook", url = "{carol}" }} ]

[[person]]
id = "bob"
name = "Bob Lee"
timezone = "UTC"
contacts = [ {{ kind = "webhook", url = "{bob}" }} ]

[[schedule]]
id = "primary"
people = ["ann", "bob"]
rotation = "1000w"
start = "2026-01-01T00:00:00+00:00"

[[schedule]]
id = "solo"
people = ["carol"]
rotation = "1d"
start = "2026-01-01T00:00:00+00:00"

[[escalation]]
id = "default"
components = []
repeat = 0
levels = [ {{ after = "0s", notify = ["schedule:primary"] }},
           {{ after = "{carol_after}", notify = ["person:carol"] }} ]
{extra}
"#,
        url = web.url(),
        ann = hooks.url("/ann"),
        carol = hooks.url("/carol"),
        bob = hooks.url("/bob"),
    )
}

/// The webhook contact's signing key comes from the environment, as in production.
const ENV: &[(&str, &str)] = &[("KEEL_TEST_ANN_SECRET", ANN_SECRET)];

async fn spawn(toml: &str) -> TestApp {
    TestApp::spawn_with_env(toml, ENV).await
}

/// The sources whose signals are on the incident's timeline.
fn signal_sources(inc: &Value) -> std::collections::BTreeSet<String> {
    timeline_of(inc, "signal")
        .iter()
        .map(|e| e["source"].as_str().unwrap().to_string())
        .collect()
}

fn timeline_of(inc: &Value, kind: &str) -> Vec<Value> {
    inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .cloned()
        .collect()
}

/// The acknowledge link a page carries.
fn ack_link(page: &Value) -> String {
    page["ack_url"]
        .as_str()
        .or_else(|| page["links"]["acknowledge"].as_str())
        .unwrap_or_else(|| panic!("no acknowledge link in {page}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_acknowledges_carol_is_paged_and_her_link_stops_it() {
    nobody_acknowledges(None).await;
}

/// The same story with the incidents, pages and signing key in PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_nobody_acknowledges_carol_is_paged_and_her_link_stops_it() {
    let Some(schema) = support::store::TestSchema::create().await else {
        return;
    };
    nobody_acknowledges(Some(&schema.url)).await;
    schema.drop().await;
}

async fn nobody_acknowledges(database_url: Option<&str>) {
    let web = Target::spawn().await;
    let hooks = Receiver::spawn().await;
    let smtp = Smtp::start().await;
    let toml = config(&web, &hooks, "2s", &smtp.config());
    let app = match database_url {
        None => spawn(&toml).await,
        Some(url) => TestApp::spawn_on(url, &toml, ENV).await,
    };
    assert_eq!(
        app.store.backend(),
        if database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    );
    app.wait_state("shop-home", "up").await;
    web.set(503);

    // Level 1: Ann, on call for primary, by webhook (signed with her key) and by email.
    let ann = hooks.wait_for("/ann", 1).await;
    let page = ann[0].json();
    let sig = ann[0].headers["x-keel-signature"].to_str().unwrap();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(ANN_SECRET.as_bytes()).unwrap();
    mac.update(&ann[0].body);
    assert_eq!(
        sig,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    let text = page.to_string();
    assert!(text.contains("SEV"), "severity in the page: {text}");
    assert!(text.contains("Shop"), "what is down: {text}");
    assert!(
        text.contains("2000") || text.contains("2,000"),
        "users: {text}"
    );
    assert!(text.contains("/admin/incidents/1"), "incident link: {text}");
    assert!(!text.contains(ANN_SECRET), "no secret in the page");
    let mail = smtp.wait_for(1).await;
    assert_eq!(mail[0]["rcpt_tos"][0], "ann@example.com");
    let mail_text = mail[0]["parts"]["text/plain"].as_str().unwrap();
    assert!(mail_text.contains("/ack/"), "{mail_text}");
    assert!(hooks.on("/bob").is_empty(), "Bob is not on call");

    // Nobody acknowledges: level 2 pages Carol.
    let carol = hooks.wait_for("/carol", 1).await;
    let link = ack_link(&carol[0].json());
    let inc = app.incident(1).await;
    let paged = timeline_of(&inc, "paged");
    assert_eq!(paged.len(), 2, "{paged:?}");
    assert_eq!(paged[0]["person"], "ann");
    assert_eq!(paged[1]["person"], "carol");
    let t1 = chrono::DateTime::parse_from_rfc3339(paged[0]["at"].as_str().unwrap()).unwrap();
    let t2 = chrono::DateTime::parse_from_rfc3339(paged[1]["at"].as_str().unwrap()).unwrap();
    assert!(
        t2 - t1 >= chrono::TimeDelta::seconds(2),
        "level 2 before it was due"
    );
    assert_eq!(timeline_of(&inc, "escalation_started").len(), 1);

    // A forged link acknowledges nothing.
    let forged = format!("{}00", &link[..link.len() - 2]);
    let forged = if forged == link {
        format!("{}11", &link[..link.len() - 2])
    } else {
        forged
    };
    let r = app.client.post(&forged).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(app.incident(1).await["acknowledged_at"].is_null());

    // Opening the link does not acknowledge (scanners open links); the button does.
    let r = app.client.get(&link).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("<form method=\"post\""), "{html}");
    assert!(app.incident(1).await["acknowledged_at"].is_null());
    let r = app.client.post(&link).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let inc = app.incident(1).await;
    let acks = timeline_of(&inc, "acknowledged");
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(acks[0]["actor"]["name"], "carol");
    assert_eq!(acks[0]["via"], "link");
    // A second click says so and changes nothing.
    let r = app.client.post(&link).send().await.unwrap();
    assert!(r.text().await.unwrap().contains("Already acknowledged"));
    assert_eq!(timeline_of(&app.incident(1).await, "acknowledged").len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_override_pages_the_person_covering_and_the_api_refuses_bad_overrides() {
    let web = Target::spawn().await;
    let hooks = Receiver::spawn().await;
    let app = spawn(&config(&web, &hooks, "1h", "")).await;

    let now: Value = app.get_auth("/api/v1/oncall").await.json().await.unwrap();
    let primary = &now["schedules"][0];
    assert_eq!(primary["id"], "primary");
    assert_eq!(primary["on_call"]["person"], "ann");
    assert_eq!(primary["on_call"]["name"], "Ann Sato");
    assert!(primary["on_call"]["override"].is_null());
    assert_eq!(primary["next"][0]["person"], "bob", "{primary}");
    // A one-person daily rotation: Carol stays on, so no hand-off is due and nobody is
    // "next".
    let solo = &now["schedules"][1];
    assert_eq!(solo["on_call"]["person"], "carol");
    assert!(solo["on_call"]["until"].is_null(), "{solo}");
    assert_eq!(solo["next"], serde_json::json!([]), "{solo}");

    let start = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
    let end = start + chrono::TimeDelta::hours(8);
    let body =
        |person: &str, s: chrono::DateTime<chrono::Utc>, e: chrono::DateTime<chrono::Utc>| {
            serde_json::json!({"schedule": "primary", "person": person,
            "start": s.to_rfc3339(), "end": e.to_rfc3339()})
            .to_string()
        };
    let r = app
        .post_auth("/api/v1/oncall/overrides", body("bob", start, end))
        .await;
    assert_eq!(r.status(), 201);
    let o: Value = r.json().await.unwrap();
    assert_eq!(o["created_by"], "bootstrap-admin");

    // Overlapping, unknown person or schedule, backwards, malformed: refused, nothing stored.
    let r = app
        .post_auth(
            "/api/v1/oncall/overrides",
            body("carol", start + chrono::TimeDelta::hours(1), end),
        )
        .await;
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["reason"].as_str().unwrap().contains("overlaps override"),
        "{v}"
    );
    let r = app
        .post_auth(
            "/api/v1/oncall/overrides",
            body("zed", end, end + chrono::TimeDelta::hours(1)),
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "person");
    let r = app
        .post_auth("/api/v1/oncall/overrides", body("carol", end, start))
        .await;
    assert_eq!(r.status(), 400);
    let r = app
        .post_auth(
            "/api/v1/oncall/overrides",
            r#"{"schedule":"nope","person":"carol","start":"2030-01-01T00:00:00Z","end":"2030-01-02T00:00:00Z"}"#,
        )
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["field"], "schedule");
    let r = app
        .post_auth(
            "/api/v1/oncall/overrides",
            r#"{"schedule":"primary","start":"tomorrow"}"#,
        )
        .await;
    assert_eq!(r.status(), 400);
    let list: Value = app
        .get_auth("/api/v1/oncall/overrides")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["overrides"].as_array().unwrap().len(), 1, "{list}");

    let now: Value = app.get_auth("/api/v1/oncall").await.json().await.unwrap();
    assert_eq!(now["schedules"][0]["on_call"]["person"], "bob");
    assert_eq!(now["schedules"][0]["on_call"]["override"], o["id"]);

    // The outage pages Bob, who covers, and not Ann.
    app.wait_state("shop-home", "up").await;
    web.set(503);
    hooks.wait_for("/bob", 1).await;
    assert!(hooks.on("/ann").is_empty());

    // Viewers may read but not change the rota.
    let r = app
        .client
        .post(app.url("/api/v1/oncall/overrides"))
        .body(body("carol", end, end + chrono::TimeDelta::hours(1)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/oncall/overrides/{}", o["id"])))
        .bearer_auth(support::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/oncall/overrides/{}", o["id"])))
        .bearer_auth(support::ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    tokio::time::sleep(Duration::from_millis(10)).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_answering_500_is_retried_while_the_next_level_fires_on_time() {
    let web = Target::spawn().await;
    let hooks = Receiver::spawn().await;
    // Ann's webhook is broken: every attempt gets a 500.
    let broken = Receiver::spawn().await;
    broken.answer(500);
    let toml = config(&web, &hooks, "2s", "").replace(&hooks.url("/ann"), &broken.url("/ann"));
    let app = spawn(&toml).await;
    app.wait_state("shop-home", "up").await;
    web.set(503);

    // Ann's page is tried (and fails); Carol's level still comes, 2 s after Ann's.
    broken.wait_for("/ann", 1).await;
    let carol = hooks.wait_for("/carol", 1).await;
    let inc = app.incident(1).await;
    let paged = timeline_of(&inc, "paged");
    assert_eq!(paged.len(), 2, "{paged:?}");
    let t1 = chrono::DateTime::parse_from_rfc3339(paged[0]["at"].as_str().unwrap()).unwrap();
    let t2 = chrono::DateTime::parse_from_rfc3339(paged[1]["at"].as_str().unwrap()).unwrap();
    assert!(t2 - t1 >= chrono::TimeDelta::seconds(2));
    // Ann's page waits for a retry: not sent, not dead.
    let outbox: Value = app.get_auth("/api/v1/outbox").await.json().await.unwrap();
    assert!(outbox["sent"].as_u64().unwrap() >= 1, "{outbox}");
    assert!(
        outbox["pending"].as_u64().unwrap() + outbox["sending"].as_u64().unwrap() >= 1,
        "{outbox}"
    );
    assert_eq!(outbox["dead"], 0, "{outbox}");

    // Carol answers her phone: Twilio posts the key she pressed to the link.
    let link = ack_link(&carol[0].json());
    let r = app
        .client
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("CallSid=CA123&Digits=2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "text/xml; charset=utf-8");
    assert!(r.text().await.unwrap().contains("Not acknowledged"));
    assert!(timeline_of(&app.incident(1).await, "acknowledged").is_empty());
    let r = app
        .client
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("CallSid=CA123&Digits=1")
        .send()
        .await
        .unwrap();
    let twiml = r.text().await.unwrap();
    assert!(
        twiml.starts_with("<?xml") && twiml.contains("<Say>Acknowledged."),
        "{twiml}"
    );
    let acks = timeline_of(&app.incident(1).await, "acknowledged");
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0]["via"], "voice");
    assert_eq!(acks[0]["actor"]["name"], "carol");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_monitors_failing_together_page_once() {
    let web = Target::spawn().await;
    let hooks = Receiver::spawn().await;
    let mut extra = String::new();
    for n in 0..20 {
        extra.push_str(&format!(
            "\n[[monitor]]\nid = \"shop-{n}\"\ncomponent = \"shop\"\nkind = \"http\"\nurl = \"{}\"\ninterval = \"300ms\"\nretry_interval = \"100ms\"\ntimeout = \"300ms\"\n",
            web.url()
        ));
    }
    let app = spawn(&config(&web, &hooks, "1h", &extra)).await;
    for n in 0..20 {
        app.wait_state(&format!("shop-{n}"), "up").await;
    }
    web.set(503);
    hooks.wait_for("/ann", 1).await;
    // Every monitor sees the outage; the incident, not each signal, pages.
    for n in 0..20 {
        app.wait_state(&format!("shop-{n}"), "down").await;
    }
    app.wait_state("shop-home", "down").await;
    // Every monitor's signal reaches the timeline, those that opened the incident too. The
    // state above is seen before the timeline is written, so the test waits for it.
    let inc = app
        .wait_incident_until(1, "all 21 signals on the timeline", |inc| {
            signal_sources(inc).len() == 21
        })
        .await;
    let sources = signal_sources(&inc);
    assert_eq!(sources.len(), 21, "{sources:?}");
    assert!(
        sources.contains("shop-home") && sources.contains("shop-0"),
        "{sources:?}"
    );
    assert_eq!(timeline_of(&inc, "paged").len(), 1, "{inc}");
    let list: Value = app
        .get_auth("/api/v1/incidents?state=all")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["incidents"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(hooks.on("/ann").len(), 1);
    app.stop().await;
}
