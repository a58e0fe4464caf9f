//! The public surface end to end: the public page and Statuspage JSON follow a real outage,
//! drafts publish themselves after `publish_after`, responders' public text passes the
//! disclosure check, and conditional requests get 304s.

mod support;

use std::time::Duration;

use keel_core::config::VendorFormat;
use keel_core::Health;
use serde_json::Value;
use support::{Target, TestApp};

fn config(web: &Target) -> String {
    format!(
        r#"
[page]
title = "Acme Status"
locales = ["en", "ja"]

[incidents]
publish_after = "1s"
stability_window = "1s"

[[vendor]]
id = "payments"
name = "Stripe Payments"
status_url = "http://127.0.0.1:9/"
interval = "1h"
confidential = true

[[component]]
id = "search"
name = {{ en = "Search", ja = "検索サービス" }}
users = 500
workaround = {{ en = "Browse the catalogue by category.", ja = "カテゴリから商品をご覧ください。" }}

[[monitor]]
id = "search-home"
component = "search"
kind = "http"
url = "{url}"
interval = "300ms"
retry_interval = "100ms"
timeout = "300ms"
confirmations = 2
"#,
        url = web.url()
    )
}

async fn get(app: &TestApp, path: &str, lang: Option<&str>) -> reqwest::Response {
    let mut req = app.client.get(app.url(path));
    if let Some(l) = lang {
        req = req.header("accept-language", l);
    }
    req.send().await.expect("request")
}

async fn summary(app: &TestApp) -> Value {
    get(app, "/api/v2/summary.json", None)
        .await
        .json()
        .await
        .unwrap()
}

async fn wait_summary(app: &TestApp, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..300 {
        let s = summary(app).await;
        if pred(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}; last: {:#}", summary(app).await);
}

#[tokio::test]
async fn the_page_and_json_follow_an_outage_in_both_languages() {
    let web = Target::spawn().await;
    let app = TestApp::spawn(&config(&web)).await;
    app.wait_state("search-home", "up").await;
    let s = wait_summary(&app, "operational", |s| {
        s["components"][0]["status"] == "operational"
    })
    .await;
    assert_eq!(s["status"]["indicator"], "none");
    // Keel's own vendor poller reads Keel's summary: one Keel can watch another.
    let bytes = serde_json::to_vec(&s).unwrap();
    let parsed = keel_probe::status_pages::parse(VendorFormat::Statuspage, &bytes, &[]).unwrap();
    assert_eq!(parsed.health, Health::Up);

    let en = get(&app, "/", Some("en-US,en;q=0.9"))
        .await
        .text()
        .await
        .unwrap();
    assert!(en.contains("All systems operational"), "{en}");
    let ja = get(&app, "/", Some("ja,en;q=0.5"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        ja.contains("すべてのシステムが正常に稼働しています"),
        "{ja}"
    );
    assert!(ja.contains("lang=\"ja\""));
    let ja2 = get(&app, "/?lang=ja", Some("en"))
        .await
        .text()
        .await
        .unwrap();
    assert!(ja2.contains("検索サービス"));

    // The outage.
    web.set(503);
    let s = wait_summary(&app, "an incident on the page", |s| {
        s["incidents"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    assert_eq!(s["components"][0]["status"], "major_outage");
    assert_ne!(s["status"]["indicator"], "none");
    let parsed = keel_probe::status_pages::parse(
        VendorFormat::Statuspage,
        &serde_json::to_vec(&s).unwrap(),
        &[],
    )
    .unwrap();
    assert_ne!(parsed.health, Health::Up);

    // The drafted first update publishes itself after publish_after.
    let s = wait_summary(&app, "a published update", |s| {
        s["incidents"][0]["incident_updates"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    })
    .await;
    let body = s["incidents"][0]["incident_updates"][0]["body"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(body.contains("Search"), "{body}");
    assert!(
        !body.contains("search-home") && !body.contains("127.0.0.1"),
        "{body}"
    );
    let en = get(&app, "/", Some("en")).await.text().await.unwrap();
    assert!(
        en.contains("Browse the catalogue by category."),
        "workaround shown: {en}"
    );
    let ja = get(&app, "/?lang=ja", None).await.text().await.unwrap();
    assert!(ja.contains("カテゴリから商品をご覧ください。"), "{ja}");
    assert!(ja.contains("検索サービス"), "{ja}");

    // Feeds and badges carry it too.
    let atom = get(&app, "/history.atom", None).await.text().await.unwrap();
    assert!(atom.contains("<feed"), "{atom}");
    let badge = get(&app, "/badge/search.svg", None).await;
    assert_eq!(badge.headers()["content-type"], "image/svg+xml");

    // Recovery resolves it on the page.
    web.set(200);
    wait_summary(&app, "resolved", |s| {
        s["components"][0]["status"] == "operational"
            && s["incidents"]
                .as_array()
                .is_some_and(|a| a.iter().all(|i| i["status"] == "resolved"))
    })
    .await;
}

#[tokio::test]
async fn conditional_requests_get_304() {
    let web = Target::spawn().await;
    let app = TestApp::spawn(&config(&web)).await;
    for path in ["/", "/api/v2/summary.json", "/history.rss", "/badge.svg"] {
        let r = get(&app, path, None).await;
        assert_eq!(r.status(), 200, "{path}");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert!(r.headers().contains_key("last-modified"));
        assert!(r.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age"));
        let again = app
            .client
            .get(app.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        // The snapshot may have been re-rendered in between (a check ran): then 200 with a
        // new ETag, else 304.
        if again.status() == 304 {
            assert!(again.bytes().await.unwrap().is_empty());
        } else {
            assert_eq!(again.status(), 200);
            assert_ne!(again.headers()["etag"].to_str().unwrap(), etag);
        }
    }
    assert_eq!(get(&app, "/badge/nope.svg", None).await.status(), 404);
    assert_eq!(get(&app, "/api/v2/nope.json", None).await.status(), 404);
}

#[tokio::test]
async fn public_updates_pass_the_disclosure_check() {
    let web = Target::spawn().await;
    let app = TestApp::spawn(&config(&web)).await;
    let r = app
        .post_auth(
            "/api/v1/incidents",
            r#"{"title":"Search slow","components":["search"]}"#,
        )
        .await;
    assert_eq!(r.status(), 201);
    let inc: Value = r.json().await.unwrap();
    let id = inc["id"].clone();
    let p = format!("/api/v1/incidents/{id}/updates");
    for bad in [
        r#"{"status":"identified","body":"Our provider Stripe Payments is down."}"#,
        r#"{"status":"identified","body":"The host 10.1.2.3 is unreachable."}"#,
        r#"{"status":"identified","body":"panicked at src/main.rs:12:5"}"#,
    ] {
        let r = app.post_auth(&p, bad).await;
        assert_eq!(r.status(), 409, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert!(v["reason"].as_str().unwrap().len() > 10, "{v}");
    }
    let r = app.post_auth(&p, r#"{"body":"x"}"#).await;
    assert_eq!(r.status(), 400, "a public update needs a status");
    let r = app
        .post_auth(&p, r#"{"status":"identified","body":{"en":"We found the cause.","ja":"原因を特定しました。"}}"#)
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let s = wait_summary(&app, "the update on the page", |s| {
        s["incidents"][0]["incident_updates"]
            .as_array()
            .is_some_and(|u| u.iter().any(|u| u["body"] == "We found the cause."))
    })
    .await;
    assert_eq!(s["incidents"][0]["status"], "identified");
    // An internal update stays off the page.
    let r = app
        .post_auth(
            &p,
            r#"{"body":"internal: db failover started","public":false}"#,
        )
        .await;
    assert_eq!(r.status(), 200);
    let page = get(&app, "/", None).await.text().await.unwrap();
    assert!(!page.contains("db failover"), "{page}");
}

#[tokio::test]
async fn maintenance_is_announced_and_the_export_follows_every_change() {
    let web = Target::spawn().await;
    let out = tempfile::tempdir().unwrap();
    let cfg = config(&web).replace(
        "locales = [\"en\", \"ja\"]",
        &format!(
            "locales = [\"en\", \"ja\"]\nexport_dir = \"{}\"",
            out.path().display()
        ),
    );
    let app = TestApp::spawn(&cfg).await;
    let now = chrono::Utc::now();
    let body = serde_json::json!({
        "name": {"en": "Search index rebuild", "ja": "検索インデックスの再構築"},
        "scheduled_for": now + chrono::TimeDelta::hours(2),
        "scheduled_until": now + chrono::TimeDelta::hours(3),
        "components": ["search"],
    });
    let r = app
        .post_auth("/api/v1/maintenances", body.to_string())
        .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let bad = serde_json::json!({
        "name": "x", "scheduled_for": now + chrono::TimeDelta::hours(2),
        "scheduled_until": now + chrono::TimeDelta::hours(1), "components": ["search"],
    });
    assert_eq!(
        app.post_auth("/api/v1/maintenances", bad.to_string())
            .await
            .status(),
        400
    );
    // A vendor is a graph node but no component customers see; text outside the id alphabet
    // names nothing. Each is refused at its place in the list.
    for (components, field) in [
        (serde_json::json!(["payments"]), "components[0]"),
        (
            serde_json::json!(["search", "Payments Team"]),
            "components[1]",
        ),
    ] {
        let unknown = serde_json::json!({
            "name": "x", "scheduled_for": now + chrono::TimeDelta::hours(2),
            "scheduled_until": now + chrono::TimeDelta::hours(3), "components": components,
        });
        let r = app
            .post_auth("/api/v1/maintenances", unknown.to_string())
            .await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["field"], field, "{v}");
    }
    let leaky = serde_json::json!({
        "name": "Stripe Payments upgrade", "scheduled_for": now + chrono::TimeDelta::hours(2),
        "scheduled_until": now + chrono::TimeDelta::hours(3), "components": ["search"],
    });
    assert_eq!(
        app.post_auth("/api/v1/maintenances", leaky.to_string())
            .await
            .status(),
        409
    );
    let mut upcoming = Value::Null;
    for _ in 0..100 {
        upcoming = get(&app, "/api/v2/scheduled-maintenances/upcoming.json", None)
            .await
            .json()
            .await
            .unwrap();
        if upcoming["scheduled_maintenances"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        upcoming["scheduled_maintenances"][0]["name"], "Search index rebuild",
        "{upcoming}"
    );
    assert_eq!(upcoming["scheduled_maintenances"][0]["status"], "scheduled");
    // The static copy followed.
    let mut exported = String::new();
    for _ in 0..100 {
        exported = std::fs::read_to_string(
            out.path()
                .join("api/v2/scheduled-maintenances/upcoming.json"),
        )
        .unwrap_or_default();
        if exported.contains("Search index rebuild") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(exported.contains("Search index rebuild"), "{exported}");
    assert!(out.path().join("ja/index.html").is_file());
}

/// Public documents are answered before the router (http/server.rs); everything the router
/// used to say about them must still hold: HEAD, other methods, languages, unknown paths, and
/// the API behind the same listener.
#[tokio::test]
async fn the_front_door_answers_like_the_router_did() {
    let web = Target::spawn().await;
    let app = TestApp::spawn(&config(&web)).await;

    let full = get(&app, "/", None).await;
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["vary"], "Accept-Language");
    assert_eq!(full.headers()["content-type"], "text/html; charset=utf-8");
    let etag = full.headers()["etag"].clone();
    // Keel sets the length with the rendering; hyper must not add a second one.
    let lengths: Vec<_> = full
        .headers()
        .get_all("content-length")
        .iter()
        .cloned()
        .collect();
    let body = full.bytes().await.unwrap();
    assert_eq!(lengths, [body.len().to_string().as_str()]);

    let head = app.client.head(app.url("/")).send().await.unwrap();
    assert_eq!(head.status(), 200);
    if head.headers()["etag"] == etag {
        assert_eq!(
            head.headers()["content-length"],
            body.len().to_string().as_str()
        );
    }
    assert!(head.bytes().await.unwrap().is_empty());

    // A 304 of a page says what it varies by, like the 200 did.
    let etag = get(&app, "/", None).await.headers()["etag"].clone();
    let again = app
        .client
        .get(app.url("/"))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .unwrap();
    if again.status() == 304 {
        assert_eq!(again.headers()["vary"], "Accept-Language");
        assert_eq!(again.headers()["etag"], etag);
    }

    let ja = get(&app, "/index.html?lang=ja", Some("en")).await;
    assert_eq!(ja.status(), 200);
    assert!(ja.text().await.unwrap().contains("<html lang=\"ja\""));
    let en = get(&app, "/", Some("fr, en;q=0.5")).await;
    assert!(en.text().await.unwrap().contains("<html lang=\"en\""));

    for path in ["/", "/api/v2/summary.json", "/history.atom"] {
        let r = app.client.post(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 405, "POST {path}");
    }
    assert_eq!(get(&app, "/api/v2/nope.json", None).await.status(), 404);
    assert_eq!(get(&app, "/nope", None).await.status(), 404);
    // The router still serves the rest, on the same connections.
    assert_eq!(get(&app, "/healthz", None).await.status(), 200);
    assert_eq!(get(&app, "/api/v1/incidents", None).await.status(), 401);
}

/// A client that connects and never finishes its request head cannot hold the connection:
/// Keel closes it after `[server] header_read_timeout`, and keeps serving everyone else.
#[tokio::test]
async fn connections_that_send_no_request_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let web = Target::spawn().await;
    // Lands in the [server] table the test support writes first.
    let app = TestApp::spawn(&format!("header_read_timeout = \"1s\"\n{}", config(&web))).await;
    let addr = app.base.trim_start_matches("http://").to_string();

    let mut silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    silent
        .write_all(b"GET / HTTP/1.1\r\nHost: status\r\n")
        .await
        .unwrap();
    // Generous: the point is that it ends at all (the default would be 30 s).
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(15), silent.read(&mut buf))
        .await
        .expect("Keel kept a connection that never finished its request");
    assert!(
        matches!(read, Ok(0) | Err(_)) || buf.starts_with(b"HTTP/1.1 408"),
        "unexpected answer: {read:?} {:?}",
        String::from_utf8_lossy(&buf)
    );
    assert_eq!(get(&app, "/", None).await.status(), 200);
}

/// Every public document says what it may do: the page runs no script and loads nothing, its
/// one inline stylesheet allowed by its hash; nothing may frame the page or sniff a type; no
/// address leaks in a Referer.
#[tokio::test]
async fn public_documents_carry_security_headers() {
    use base64::Engine as _;
    use sha2::Digest as _;

    let web = Target::spawn().await;
    let app = TestApp::spawn(&config(&web)).await;
    for path in [
        "/",
        "/index.html?lang=ja",
        "/api/v2/summary.json",
        "/api/v2/components.json",
        "/api/v2/incidents/unresolved.json",
        "/api/v2/scheduled-maintenances/upcoming.json",
        "/history.atom",
        "/history.rss",
        "/badge.svg",
        "/badge/search.svg",
    ] {
        let r = get(&app, path, None).await;
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers().clone();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.starts_with("default-src 'none'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        let body = r.text().await.unwrap();
        if !path.starts_with("/index") && path != "/" {
            assert!(!csp.contains("style-src"), "{path}: {csp}");
            continue;
        }
        assert_eq!(h["x-frame-options"], "DENY");
        // Exactly what a browser checks: the hash of the one <style> element's text.
        assert_eq!(body.matches("<style").count(), 1);
        let style = &body[body.find("<style>").unwrap() + "<style>".len()..];
        let style = &style[..style.find("</style>").unwrap()];
        let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style));
        assert!(
            csp.contains(&format!("style-src 'sha256-{hash}'")),
            "{csp} does not allow the page's stylesheet ({hash})"
        );
        // Nothing else the policy would block: no script, no style attribute, no resource.
        for banned in ["<script", " style=", "<img", "<iframe", "src="] {
            assert!(!body.contains(banned), "{path} contains {banned}");
        }
        assert!(
            csp.contains("form-action 'self'"),
            "the subscribe form posts here"
        );
    }
}
