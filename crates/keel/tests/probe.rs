//! `keel probe` end to end with the real binary: a served Keel checks a target from "local"
//! while a `keel probe --location osaka` process checks it from "osaka". The target answers
//! 503 only to requests that say they come from osaka (the `X-Keel-Location` header every
//! probe check sends), so the outage is regional: an incident opens saying "failing from osaka
//! only", and the drafted update says customers reaching Checkout from osaka may see errors.
//! When the probe stops, Keel says it cannot see from osaka, and opens nothing for it.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use support::{keel, run, serve, Served};

const ADMIN: &str = "probe-test-admin-token-0123456789";

/// A target that fails only for checks from osaka.
async fn target() -> String {
    let app = Router::new().route(
        "/",
        get(|h: HeaderMap| async move {
            match h.get("x-keel-location").and_then(|v| v.to_str().ok()) {
                Some("osaka") => (StatusCode::SERVICE_UNAVAILABLE, "not from osaka"),
                _ => (StatusCode::OK, "hello"),
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

struct Setup {
    dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

fn setup(target: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("keel.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:0"
data_dir = "{data}"

[page]
locales = ["en", "ja"]

[incidents]
publish_after = "0s"
stability_window = "1s"

[[component]]
id = "checkout"
name = {{ en = "Checkout", ja = "決済" }}
users = 300

[[monitor]]
id = "api"
component = "checkout"
kind = "http"
url = "{target}"
interval = "1s"
retry_interval = "200ms"
timeout = "1s"
confirmations = 2
locations = ["local", "osaka"]
quorum = 1
"#,
            data = dir.path().join("data").display()
        ),
    )
    .unwrap();
    Setup { dir, config }
}

fn token(s: &Setup, role: &str, name: &str) -> String {
    let (code, out, err) = run(keel()
        .args([
            "token", "create", "--role", role, "--name", name, "--config",
        ])
        .arg(&s.config));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("created {role} token")), "{err}");
    out.trim().to_string()
}

fn probe(base: &str, token: &str, location: &str) -> Command {
    let mut c = keel();
    c.args(["probe", "--server", base, "--location", location])
        .env("KEEL_PROBE_TOKEN", token);
    c
}

async fn admin_get(base: &str, path: &str) -> Value {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn incidents(base: &str) -> Vec<Value> {
    admin_get(base, "/api/v1/incidents?state=all").await["incidents"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Polls `f` until it gives something (a hang guard, not a timing assertion).
async fn until<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    secs: u64,
    mut f: impl FnMut() -> F,
) -> T {
    for _ in 0..secs * 4 {
        if let Some(v) = f().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("{what} did not happen within {secs}s");
}

struct Probe(Child);

impl Drop for Probe {
    fn drop(&mut self) {
        // Only when still running: the test may have stopped it (and its pid be reused).
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn osaka_source(monitors: &Value) -> Option<Value> {
    monitors["monitors"]
        .as_array()?
        .iter()
        .find(|m| m["id"] == "api@osaka")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_sees_a_regional_outage_and_going_quiet_is_not_one() {
    let target = target().await;
    let s = setup(&target);
    let token = token(&s, "probe", "osaka-probe");
    let served: Served = serve(&s.config, Some(ADMIN));
    let base = served.base.clone();

    // Killed by the guard if the test fails before it stops it.
    let mut child = Probe(
        probe(&base, &token, "osaka")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn keel probe"),
    );
    // Not in the process list: the token came from the environment.
    assert!(!format!("{:?}", probe(&base, &token, "osaka")).contains("--token"));

    let id = until("an incident opens", 90, || async {
        incidents(&base).await.first().map(|i| i["id"].clone())
    })
    .await;
    let inc = admin_get(&base, &format!("/api/v1/incidents/{id}")).await;
    let timeline = inc["timeline"].to_string();
    assert!(
        timeline
            .contains("api: failing from osaka only (HTTP 503 (expected 2xx)); fine from local"),
        "{timeline}"
    );
    // The drafted (and, with publish_after = 0s, published) update says where from.
    let draft = until("a draft", 30, || async {
        let inc = admin_get(&base, &format!("/api/v1/incidents/{id}")).await;
        inc["timeline"]
            .as_array()?
            .iter()
            .find(|e| e["type"] == "draft_prepared")
            .cloned()
    })
    .await;
    assert!(
        draft["body"]["by_locale"]["en"]
            .as_str()
            .unwrap()
            .contains("Customers reaching Checkout from osaka may see errors."),
        "{draft}"
    );
    assert!(
        draft["body"]["by_locale"]["ja"]
            .as_str()
            .unwrap()
            .contains("osakaから決済をご利用のお客様に、エラーが発生している可能性があります。"),
        "{draft}"
    );
    let monitors = admin_get(&base, "/api/v1/monitors").await;
    let local = monitors["monitors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "api")
        .unwrap();
    assert_eq!(
        local["state"], "up",
        "the server's own check passes: {local}"
    );

    // The probe exits cleanly on SIGTERM.
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.0.wait().unwrap();
    assert!(exit.success(), "keel probe exited with {exit}");

    // Silence becomes "cannot see from osaka", never an outage.
    let osaka = until("the osaka source goes unknown", 120, || async {
        osaka_source(&admin_get(&base, "/api/v1/monitors").await)
            .filter(|m| m["state"] == "unknown")
    })
    .await;
    let reason = osaka["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no results from the osaka probe for ")
            && reason.ends_with(": Keel cannot see from osaka"),
        "{reason}"
    );
    let quorum = until("the quorum says it cannot see from osaka", 30, || async {
        let m = admin_get(&base, "/api/v1/monitors").await;
        m["quorum"]
            .as_array()?
            .iter()
            .find(|q| q["monitor"] == "api" && q["state"] == "up")
            .cloned()
    })
    .await;
    assert!(
        quorum["reason"]
            .as_str()
            .unwrap()
            .contains("cannot see from osaka"),
        "{quorum}"
    );
    // The regional incident recovers and resolves; nothing new opens for the silence.
    until("the incident resolves", 60, || async {
        let list = incidents(&base).await;
        (list.len() == 1 && list[0]["state"] == "resolved").then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(incidents(&base).await.len(), 1, "no new incident");
    drop(served);
    drop(s.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_tokens_and_unknown_locations_are_told_plainly() {
    let target = target().await;
    let s = setup(&target);
    let viewer = token(&s, "viewer", "v");
    let probe_token = token(&s, "probe", "p");
    let served = serve(&s.config, Some(ADMIN));

    let (code, _, err) = run(&mut probe(&served.base, "keel_not_a_token", "osaka"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("refused the token (401): it is wrong"),
        "{err}"
    );

    let (code, _, err) = run(&mut probe(&served.base, &viewer, "osaka"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("it is not a probe token"), "{err}");

    let (code, _, err) = run(&mut probe(&served.base, &probe_token, "tokyo"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("no monitor is checked from \"tokyo\"; configured locations: osaka"),
        "{err}"
    );

    let (code, _, err) = run(&mut probe(&served.base, &probe_token, "local"));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not \"local\""), "{err}");

    // Without a token at all, clap says which argument is missing.
    let (code, _, err) = run(keel()
        .args(["probe", "--server", &served.base, "--location", "osaka"])
        .env_remove("KEEL_PROBE_TOKEN"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--token"), "{err}");
}
