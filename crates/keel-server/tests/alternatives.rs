//! Backups that know what they rest on, end to end: the shop pays through one vendor and
//! takes orders by phone through another, both followed through their real status documents
//! served on loopback. When both vendors fail, neither the page nor the JSON offers phone
//! orders and the incident API says why; when the phone vendor recovers, the page offers it.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::{fixture, serve_bytes, Doc, TestApp};

const OFFER_EN: &str = "You can use Phone orders instead.";
const OFFER_JA: &str = "代わりに電話注文をご利用いただけます。";

fn config(pay: std::net::SocketAddr, telco: std::net::SocketAddr) -> String {
    format!(
        r#"
[page]
title = "Acme Status"
locales = ["en", "ja"]

[incidents]
publish_after = "1s"
stability_window = "1h"

[[component]]
id = "shop"
name = {{ en = "Web shop", ja = "ウェブショップ" }}
users = 1000
depends_on = ["payments"]
alternatives = ["phone-orders"]

[[component]]
id = "phone-orders"
name = {{ en = "Phone orders", ja = "電話注文" }}
users = 100
depends_on = ["telco"]

[[vendor]]
id = "payments"
name = "PayCo"
status_url = "http://{pay}/"
interval = "300ms"
timeout = "300ms"
confidential = true

[[vendor]]
id = "telco"
name = "TelcoOne"
status_url = "http://{telco}/"
interval = "300ms"
timeout = "300ms"
confidential = true

[[runbook]]
id = "payments"
component = "payments"
steps = ["Check PayCo's status page", {{ text = "Tell callers to order by phone", when_healthy = ["phone-orders"] }}]
"#
    )
}

fn doc(path: &str) -> Doc {
    Arc::new(std::sync::Mutex::new((200u16, fixture(path))))
}

const UP: &str = "statuspage/dropbox-summary-all-operational.json";
const FAILING: &str = "statuspage/github-summary-unresolved-incident.json";

async fn text(app: &TestApp, path: &str, lang: &str) -> String {
    app.client
        .get(app.url(path))
        .header("accept-language", lang)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Polls the incident view until `pred` holds (a hang guard, not a timing assertion).
async fn wait_incident(app: &TestApp, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..300 {
        let shop = app
            .incidents()
            .await
            .into_iter()
            .find(|i| i["cause"] == "payments")
            .map(|i| i["id"].clone());
        if let Some(id) = shop {
            last = app
                .get_auth(&format!("/api/v1/incidents/{id}"))
                .await
                .json()
                .await
                .unwrap();
            if pred(&last) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}; last: {last:#}");
}

async fn wait_page(app: &TestApp, lang: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    for _ in 0..300 {
        let page = text(app, "/", lang).await;
        if pred(&page) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}; last: {}", text(app, "/", lang).await);
}

#[tokio::test]
async fn a_backup_on_the_same_kind_of_failure_is_not_offered_until_it_recovers() {
    let pay = doc(UP);
    let telco = doc(UP);
    let app = TestApp::spawn(&config(
        serve_bytes(pay.clone()).await,
        serve_bytes(telco.clone()).await,
    ))
    .await;
    app.wait_state("telco", "up").await;

    // The phone vendor fails first, then the shop's: the phone line is no backup now.
    *telco.lock().unwrap() = (200, fixture(FAILING));
    app.wait_state("telco", "degraded").await;
    *pay.lock().unwrap() = (200, fixture(FAILING));
    app.wait_state("payments", "degraded").await;

    let inc = wait_incident(&app, "the shop's incident published and judged", |v| {
        v["public_updates"]
            .as_array()
            .is_some_and(|u| !u.is_empty())
            && v["alternatives"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let alt = &inc["alternatives"][0];
    assert_eq!(alt["component"], "shop");
    assert_eq!(alt["alternative"], "phone-orders");
    assert_eq!(alt["available"], false);
    assert_eq!(alt["offered"], false);
    assert_eq!(alt["reason"], "vendor 'telco' is degraded");
    let prompts: Vec<&str> = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "prompt")
        .filter_map(|e| e["text"].as_str())
        .collect();
    assert!(
        prompts.iter().any(|p| p.contains(
            "The backup 'Phone orders' is also affected: vendor 'telco' is degraded — do not advertise it."
        )),
        "{prompts:?}"
    );
    let steps = inc["checklist"].as_array().unwrap();
    assert_eq!(steps[0]["unsafe_reason"], Value::Null);
    assert_eq!(
        steps[1]["unsafe_reason"],
        "unsafe now: phone-orders rests on vendor 'telco', which is degraded"
    );

    // Customers are not sent to the phone line, in either language, on the page or in JSON;
    // the vendors stay unnamed.
    let summary = text(&app, "/api/v2/summary.json", "en").await;
    let incidents: Value = serde_json::from_str::<Value>(&summary).unwrap()["incidents"].clone();
    let said = incidents.to_string();
    assert!(said.contains("Web shop"), "{said}");
    assert!(
        !said.contains(OFFER_EN) && !said.contains(OFFER_JA),
        "{said}"
    );
    for (lang, offer) in [("en", OFFER_EN), ("ja", OFFER_JA)] {
        let page = text(&app, "/", lang).await;
        assert!(!page.contains(offer), "{lang}: {page}");
        assert!(
            !page.contains("TelcoOne") && !page.contains("PayCo"),
            "{page}"
        );
    }

    // The phone vendor recovers: the page offers phone orders; the API says it is offered.
    *telco.lock().unwrap() = (200, fixture(UP));
    app.wait_state("telco", "up").await;
    let inc = wait_incident(&app, "phone orders offered again", |v| {
        v["alternatives"][0]["offered"] == true
    })
    .await;
    assert_eq!(inc["alternatives"][0]["reason"], Value::Null);
    assert_eq!(inc["checklist"][1]["unsafe_reason"], Value::Null);
    wait_page(&app, "en", "the English offer", |p| p.contains(OFFER_EN)).await;
    let ja = wait_page(&app, "ja", "the Japanese offer", |p| p.contains(OFFER_JA)).await;
    assert!(!ja.contains("TelcoOne"), "{ja}");
    // One prompt per change, not one per pass.
    let backup_prompts = inc["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "prompt")
        .filter(|e| e["text"].as_str().is_some_and(|t| t.contains("The backup")))
        .count();
    assert_eq!(backup_prompts, 2, "{:#}", inc["timeline"]);
}
