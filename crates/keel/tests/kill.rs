//! Nothing lost: Keel is killed with SIGKILL in the middle of a 1,000-recipient fan-out,
//! restarted, and every recipient still gets the update (at least once, always under the same
//! idempotency key); and killed between two escalation levels, restarted, and the second
//! level still pages when it falls due.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use chrono::Utc;
use keel_store::{hash_token, NewSubscriber, SubscriberKind};

mod support;
use support::serve;

const ADMIN: &str = "kill-test-admin-token-0123456789";
const RECIPIENTS: usize = 1000;

/// Recipient number → idempotency keys seen.
type Seen = Arc<Mutex<HashMap<usize, Vec<String>>>>;

/// (person, idempotency key) of every page received.
type Pages = Arc<Mutex<Vec<(String, String)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_fanout_loses_no_recipient() {
    // A receiver slow enough that the fan-out takes a few seconds.
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/hook/{n}",
            post(
                |State(s): State<Seen>, UrlPath(n): UrlPath<usize>, h: HeaderMap| async move {
                    tokio::time::sleep(Duration::from_millis(80)).await;
                    let key = h
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    s.lock().unwrap().entry(n).or_default().push(key);
                    "ok"
                },
            ),
        )
        .with_state(seen.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keel.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[incidents]\npublish_after = \"0s\"\n\n[notify]\nallow_private_targets = true\ntimeout = \"2s\"\nlease = \"3s\"\n\n[[component]]\nid = \"web\"\nname = \"Website\"\nusers = 1000\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    // The subscribers are stored before Keel starts (the public endpoint is rate-limited).
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let store = keel_store::open(&format!(
        "sqlite://{}",
        dir.path().join("data/keel.db").display()
    ))
    .await
    .unwrap();
    for n in 0..RECIPIENTS {
        let secret = format!("secret-{n:04}-0123456789abcdef");
        store
            .create_subscriber(&NewSubscriber {
                kind: SubscriberKind::Webhook,
                address: format!("{hook}/hook/{n}"),
                components: vec![],
                locale: "en".into(),
                secret: Some(secret.clone()),
                confirmed: true,
                confirm_token_hash: None,
                unsubscribe_token_hash: hash_token(&format!("unsub-{n}")),
                created_at: Utc::now(),
            })
            .await
            .unwrap();
    }
    drop(store);

    let mut first = serve(&config, Some(ADMIN));
    let base = first.base.clone();
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/incidents"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"title": "Website unreachable", "components": ["web"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // Kill -9 once the fan-out is under way but far from done.
    for _ in 0..600 {
        if seen.lock().unwrap().len() >= 50 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let before = seen.lock().unwrap().len();
    assert!(before >= 50, "the fan-out never started ({before})");
    first.kill9();
    let at_kill = seen.lock().unwrap().len();
    assert!(
        at_kill < RECIPIENTS,
        "killed too late to prove anything: {at_kill} delivered"
    );

    let second = serve(&config, Some(ADMIN));
    let mut done = false;
    for _ in 0..900 {
        if seen.lock().unwrap().len() == RECIPIENTS {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(second);
    let seen = seen.lock().unwrap();
    assert!(
        done,
        "only {} of {RECIPIENTS} recipients got the update (killed at {at_kill})",
        seen.len()
    );
    // At least once, and every repeat under the same idempotency key.
    for (n, keys) in seen.iter() {
        let distinct: HashSet<&String> = keys.iter().collect();
        assert_eq!(
            distinct.len(),
            1,
            "recipient {n} got different keys: {keys:?}"
        );
        assert!(!keys[0].is_empty());
    }
    eprintln!("killed after {at_kill} deliveries; all {RECIPIENTS} delivered after the restart");
}

/// Pages survive a kill -9 between escalation levels: Ann (level 1) is paged, Keel is killed,
/// and after the restart Carol (level 2) is paged when her level falls due, once, while Ann
/// is not paged again under a new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_between_levels_still_reaches_level_two() {
    // A shop that always fails, and one receiver for both people's webhooks.
    let shop =
        Router::new().fallback(|| async { (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down") });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shop_url = format!("http://{}/", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, shop).await });
    let pages: Pages = Arc::default();
    let app = Router::new()
        .route(
            "/page/{who}",
            post(
                |State(s): State<Pages>, UrlPath(who): UrlPath<String>, h: HeaderMap| async move {
                    let key = h
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    s.lock().unwrap().push((who, key));
                    "ok"
                },
            ),
        )
        .with_state(pages.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keel.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
data_dir = "{data}"

[incidents]
publish_after = "1h"

[[component]]
id = "shop"
name = "Shop"
users = 2000

[[monitor]]
id = "shop-home"
component = "shop"
kind = "http"
url = "{shop_url}"
interval = "300ms"
retry_interval = "100ms"
timeout = "300ms"

[[person]]
id = "ann"
name = "Ann Sato"
timezone = "Asia/Tokyo"
contacts = [ {{ kind = "webhook", url = "{hook}/page/ann" }} ]

[[person]]
id = "carol"
name = "Carol Ito"
timezone = "Europe/Berlin"
contacts = [ {{ kind = "webhook", url = "{hook}/page/carol" }} ]

[[schedule]]
id = "primary"
people = ["ann"]
rotation = "1w"
start = "2026-01-05T09:00:00+09:00"

[[escalation]]
id = "default"
repeat = 0
levels = [ {{ after = "0s", notify = ["schedule:primary"] }},
           {{ after = "6s", notify = ["person:carol"] }} ]
"#,
            data = dir.path().join("data").display()
        ),
    )
    .unwrap();

    let mut first = serve(&config, Some(ADMIN));
    let mut paged_ann = false;
    for _ in 0..600 {
        if pages.lock().unwrap().iter().any(|(w, _)| w == "ann") {
            paged_ann = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(paged_ann, "Ann was never paged");
    first.kill9();
    assert!(
        !pages.lock().unwrap().iter().any(|(w, _)| w == "carol"),
        "killed too late: Carol was already paged"
    );

    let second = serve(&config, Some(ADMIN));
    let mut paged_carol = false;
    for _ in 0..600 {
        if pages.lock().unwrap().iter().any(|(w, _)| w == "carol") {
            paged_carol = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let timeline: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/api/v1/incidents/1", second.base))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    drop(second);
    assert!(paged_carol, "Carol was not paged after the restart");
    let paged: Vec<&serde_json::Value> = timeline["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "paged")
        .collect();
    let who: Vec<&str> = paged
        .iter()
        .map(|e| e["person"].as_str().unwrap())
        .collect();
    assert_eq!(who, ["ann", "carol"], "one page per level: {timeline}");
    let at = |e: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap()
    };
    assert!(
        at(paged[1]) - at(paged[0]) >= chrono::TimeDelta::seconds(6),
        "level 2 before it was due"
    );
    // Ann may hear her page again (it was re-queued at start), but under the same key.
    let pages = pages.lock().unwrap();
    let ann_keys: HashSet<&String> = pages
        .iter()
        .filter(|(w, _)| w == "ann")
        .map(|(_, k)| k)
        .collect();
    assert_eq!(ann_keys.len(), 1, "{pages:?}");
}
