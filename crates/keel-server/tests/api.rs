//! End-to-end tests of the server through its HTTP surface, with real loopback targets and a
//! real SQLite store.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use support::{fixture, serve_bytes, Target, TestApp, ADMIN};

const COMPONENTS: &str = r#"
[[component]]
id = "checkout"
name = "Checkout"
users = 500

[[component]]
id = "web"
name = { en = "Website", ja = "ウェブサイト" }
users = 1000
depends_on = ["checkout"]
"#;

fn http_monitor(url: &str) -> String {
    format!(
        r#"
[[monitor]]
id = "web-home"
component = "web"
kind = "http"
url = "{url}"
interval = "300ms"
retry_interval = "100ms"
timeout = "300ms"
confirmations = 2
"#
    )
}

#[tokio::test]
async fn http_monitor_detects_an_outage_and_its_recovery() {
    let target = Target::spawn().await;
    let app = TestApp::spawn(&format!("{COMPONENTS}{}", http_monitor(&target.url()))).await;
    let up = app.wait_state("web-home", "up").await;
    assert_eq!(up["reason"], "HTTP 200");
    assert_eq!(up["component"], "web");
    assert_eq!(up["check"], "http");

    target.set(503);
    let down = app.wait_state("web-home", "down").await;
    assert!(
        down["reason"].as_str().unwrap().contains("HTTP 503"),
        "{down}"
    );
    target.set(200);
    app.wait_state("web-home", "up").await;

    let dir = app.stop().await;
    drop(dir);
}

#[tokio::test]
async fn state_changes_are_stored_as_signals_not_every_check() {
    let target = Target::spawn().await;
    let app = TestApp::spawn(&format!("{COMPONENTS}{}", http_monitor(&target.url()))).await;
    app.wait_state("web-home", "up").await;
    target.set(500);
    app.wait_state("web-home", "down").await;
    let store = app.store.clone();
    let _dir = app.stop().await;
    let signals = store.signals_after(0, 100).await.expect("signals");
    let healths: Vec<_> = signals
        .iter()
        .filter(|s| s.signal.source.id() == "web-home")
        .map(|s| s.signal.health.as_str())
        .collect();
    assert_eq!(healths, ["up", "down"], "{signals:?}");
    let down = &signals.last().expect("a signal").signal;
    assert_eq!(down.component.as_str(), "web");
    assert!(down.reason.contains("HTTP 500"));
    // Rollups exist for the checks that ran (flushed at shutdown).
    let now = chrono::Utc::now();
    let rollups = store
        .rollups(
            &keel_core::SourceKey::parse_rollup("web-home").unwrap(),
            now - chrono::TimeDelta::hours(1),
            now + chrono::TimeDelta::hours(1),
        )
        .await
        .expect("rollups");
    let checks: u32 = rollups.iter().map(|r| r.checks).sum();
    let failures: u32 = rollups.iter().map(|r| r.failures).sum();
    assert!(checks >= 3, "{rollups:?}");
    assert!(failures >= 2, "{rollups:?}");
}

#[tokio::test]
async fn a_known_outage_is_not_signalled_again_after_a_restart() {
    let target = Target::spawn().await;
    target.set(503);
    let cfg = format!("{COMPONENTS}{}", http_monitor(&target.url()));
    let app = TestApp::spawn(&cfg).await;
    app.wait_state("web-home", "down").await;
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir, &cfg).await;
    // The stored state is known at once, before any check.
    let m = app.source("web-home").await.expect("listed");
    assert_eq!(m["state"], "down");
    // Let several checks run against the still-failing target.
    let before = app
        .store
        .signals_after(0, 100)
        .await
        .expect("signals")
        .len();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let m = app.source("web-home").await.expect("listed");
    assert!(m["last_checked"].is_string(), "checks ran: {m}");
    let store = app.store.clone();
    let _dir = app.stop().await;
    let after = store.signals_after(0, 100).await.expect("signals").len();
    assert_eq!(before, after, "no new signal for an outage already known");
}

#[tokio::test]
async fn monitors_api_needs_a_valid_token() {
    let app = TestApp::spawn(COMPONENTS).await;
    let r = app
        .client
        .get(app.url("/api/v1/monitors"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(app.url("/api/v1/monitors"))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A stored viewer token may read but not post alerts.
    let token = "viewer-token-0123456789abcdef";
    app.store
        .create_token("v", "viewer", &keel_store::hash_token(token))
        .await
        .unwrap();
    let r = app
        .client
        .get(app.url("/api/v1/monitors"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .post(app.url("/api/v1/intake/generic"))
        .bearer_auth(token)
        .body(r#"{"component":"web","status":"down"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// A token stored as its hash before the hash moved from keel-server to keel-store (the
/// lower-case hex SHA-256 of the token, written here as the stored text) still lets its
/// holder in.
#[tokio::test]
async fn a_token_stored_earlier_still_verifies() {
    let app = TestApp::spawn(COMPONENTS).await;
    let token = "keel_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    app.store
        .create_token(
            "old",
            "viewer",
            "495aefb1a3d8a9786aee97c4afc6e9585bc65f9a534ddad4214ee1d7b938d31d",
        )
        .await
        .unwrap();
    let r = app
        .client
        .get(app.url("/api/v1/monitors"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn alertmanager_firing_then_resolved() {
    let app = TestApp::spawn(COMPONENTS).await;
    let r = app
        .post_auth(
            "/api/v1/intake/alertmanager",
            fixture("alertmanager/alertmanager-0.25-firing-two-alerts.json"),
        )
        .await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"].as_array().unwrap().len(), 2, "{body}");
    assert_eq!(body["unmapped"].as_array().unwrap().len(), 0);
    let m = app
        .wait_state("alertmanager/29ba8879127db8f7", "down")
        .await;
    assert_eq!(m["component"], "checkout");
    assert_eq!(m["reason"], "Checkout error rate above 20%");

    let r = app
        .post_auth(
            "/api/v1/intake/alertmanager",
            fixture("alertmanager/alertmanager-0.25-resolved-two-alerts.json"),
        )
        .await;
    assert_eq!(r.status(), 202);
    app.wait_state("alertmanager/29ba8879127db8f7", "up").await;
}

#[tokio::test]
async fn alertmanager_alerts_mapping_to_nothing_are_named_and_refused() {
    let app = TestApp::spawn(COMPONENTS).await;
    let r = app
        .post_auth(
            "/api/v1/intake/alertmanager",
            fixture("alertmanager/prometheus-msteams-firing-grouped.json"),
        )
        .await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    let unmapped = body["unmapped"].as_array().unwrap();
    assert_eq!(unmapped.len(), 3, "{body}");
    assert_eq!(unmapped[0]["alertname"], "JustATestAlert_1");
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
        metrics.contains("keel_intake_unmapped_total 3"),
        "{metrics}"
    );
}

#[tokio::test]
async fn alertmanager_routes_map_by_labels_and_partial_batches_list_the_rest() {
    let cfg = format!(
        "{COMPONENTS}\n[[intake.route]]\nlabels = {{ alertname = \"high_memory_load\" }}\ncomponent = \"web\"\n"
    );
    let app = TestApp::spawn(&cfg).await;
    let r = app
        .post_auth(
            "/api/v1/intake/alertmanager",
            fixture("alertmanager/prometheus-msteams-firing-single.json"),
        )
        .await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"][0]["component"], "web");
    // severity=warning degrades rather than downs.
    assert_eq!(body["accepted"][0]["status"], "degraded");

    // One mapped (component label), one not: 202 listing the unmapped one.
    let mixed = r#"{"version":"4","status":"firing","receiver":"keel","groupLabels":{},"commonLabels":{},
      "commonAnnotations":{},"externalURL":"","groupKey":"{}","alerts":[
      {"status":"firing","labels":{"alertname":"A","component":"web"},"annotations":{},"startsAt":"2026-11-27T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"aaa"},
      {"status":"firing","labels":{"alertname":"B","component":"nope"},"annotations":{},"startsAt":"2026-11-27T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"bbb"}]}"#;
    let r = app.post_auth("/api/v1/intake/alertmanager", mixed).await;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"].as_array().unwrap().len(), 1);
    assert_eq!(body["unmapped"][0]["fingerprint"], "bbb");
}

#[tokio::test]
async fn intake_bad_input_gets_clear_errors() {
    let cfg = format!("{COMPONENTS}\n[intake]\nmax_body_bytes = 4096\n");
    let app = TestApp::spawn(&cfg).await;
    // Not JSON.
    let r = app
        .post_auth("/api/v1/intake/alertmanager", "{not json")
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(body["reason"].as_str().unwrap().len() > 5, "{body}");
    // Truncated real payload.
    let mut half = fixture("alertmanager/alertmanager-0.25-firing-two-alerts.json");
    half.truncate(half.len() / 2);
    let r = app.post_auth("/api/v1/intake/alertmanager", half).await;
    assert_eq!(r.status(), 400);
    // Wrong shape: alerts is not an array.
    let r = app
        .post_auth(
            "/api/v1/intake/alertmanager",
            r#"{"version":"4","status":"firing","alerts":{}}"#,
        )
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["field"].as_str().unwrap_or("").contains("alerts"),
        "{body}"
    );
    // Oversized.
    let big = vec![b' '; 10_000];
    let r = app.post_auth("/api/v1/intake/alertmanager", big).await;
    assert_eq!(r.status(), 413);
    // Unauthenticated.
    let r = app
        .client
        .post(app.url("/api/v1/intake/alertmanager"))
        .body(fixture(
            "alertmanager/alertmanager-0.25-firing-two-alerts.json",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Generic intake: missing component.
    let r = app
        .post_auth("/api/v1/intake/generic", r#"{"status":"down"}"#)
        .await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["field"].as_str().unwrap_or("").contains("component"),
        "{body}"
    );
    // Keel still answers.
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn generic_intake_opens_and_closes() {
    let app = TestApp::spawn(COMPONENTS).await;
    let r = app
        .post_auth(
            "/api/v1/intake/generic",
            r#"{"component":"checkout","status":"down","summary":"card payments failing","key":"pay-1"}"#,
        )
        .await;
    assert_eq!(r.status(), 202);
    let m = app.wait_state("generic/pay-1", "down").await;
    assert_eq!(m["reason"], "card payments failing");
    let r = app
        .post_auth(
            "/api/v1/intake/generic",
            r#"[{"component":"checkout","status":"resolved","key":"pay-1"}]"#,
        )
        .await;
    assert_eq!(r.status(), 202);
    app.wait_state("generic/pay-1", "up").await;
    let r = app
        .post_auth(
            "/api/v1/intake/generic",
            r#"{"component":"ghost","status":"down"}"#,
        )
        .await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn heartbeat_push_keeps_a_job_up_and_silence_takes_it_down() {
    let cfg = format!(
        "{COMPONENTS}\n[[monitor]]\nid = \"nightly\"\ncomponent = \"checkout\"\nkind = \"heartbeat\"\ntoken = \"hb-secret-token-0123456789\"\ninterval = \"1s\"\nconfirmations = 1\n"
    );
    let app = TestApp::spawn(&cfg).await;
    let r = app
        .client
        .post(app.url("/api/v1/push/hb-secret-token-0123456789"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.wait_state("nightly", "up").await;
    let r = app
        .client
        .get(app.url("/api/v1/push/not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let m = app.wait_state("nightly", "down").await;
    assert!(
        m["reason"].as_str().unwrap().contains("no heartbeat"),
        "{m}"
    );
    let r = app
        .client
        .get(app.url("/api/v1/push/hb-secret-token-0123456789"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    app.wait_state("nightly", "up").await;
}

#[tokio::test]
async fn vendor_outage_and_unreadable_status_page() {
    let doc = Arc::new(std::sync::Mutex::new((
        200u16,
        fixture("statuspage/dropbox-summary-all-operational.json"),
    )));
    let addr = serve_bytes(doc.clone()).await;
    let cfg = format!(
        "{COMPONENTS}\n[[vendor]]\nid = \"payments\"\nname = \"Payments provider\"\nstatus_url = \"http://{addr}/\"\ninterval = \"300ms\"\ntimeout = \"300ms\"\nconfidential = true\n"
    );
    let app = TestApp::spawn(&cfg).await;
    app.wait_state("payments", "up").await;

    *doc.lock().unwrap() = (
        200,
        fixture("statuspage/github-summary-unresolved-incident.json"),
    );
    let m = app.wait_state("payments", "degraded").await;
    assert!(
        m["reason"]
            .as_str()
            .unwrap()
            .contains("Incident with Packages and Pages"),
        "{m}"
    );

    *doc.lock().unwrap() = (200, b"{\"page\": ".to_vec());
    let m = app.wait_state("payments", "unknown").await;
    assert!(!m["reason"].as_str().unwrap().is_empty());
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
        !metrics.contains("keel_vendor_unknown_total 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn health_and_metrics_answer_without_a_token() {
    let target = Target::spawn().await;
    let app = TestApp::spawn(&format!("{COMPONENTS}{}", http_monitor(&target.url()))).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["store"], "sqlite");
    app.wait_state("web-home", "up").await;
    let m = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("keel_source_up{kind=\"monitor\",id=\"web-home\",component=\"web\"} 1"),
        "{m}"
    );
    assert!(m.contains("# TYPE keel_checks_total counter"));
    // At least the monitor's own task and the one serving this request are alive.
    let tasks: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("keel_tokio_alive_tasks "))
        .unwrap_or_else(|| panic!("no keel_tokio_alive_tasks in {m}"))
        .parse()
        .unwrap();
    assert!(tasks > 1, "{m}");
    let _ = ADMIN;
}

#[tokio::test]
async fn a_firing_alert_keeps_its_component_across_a_restart() {
    let app = TestApp::spawn(COMPONENTS).await;
    let r = app
        .post_auth(
            "/api/v1/intake/alertmanager",
            fixture("alertmanager/alertmanager-0.25-firing-two-alerts.json"),
        )
        .await;
    assert_eq!(r.status(), 202);
    app.wait_state("alertmanager/29ba8879127db8f7", "down")
        .await;
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir, COMPONENTS).await;
    let m = app
        .source("alertmanager/29ba8879127db8f7")
        .await
        .expect("restored");
    assert_eq!(m["state"], "down");
    assert_eq!(m["component"], "checkout");
    // Its resolution after the restart is a change, stored as a signal.
    let r = app
        .post_auth(
            "/api/v1/intake/alertmanager",
            fixture("alertmanager/alertmanager-0.25-resolved-two-alerts.json"),
        )
        .await;
    assert_eq!(r.status(), 202);
    app.wait_state("alertmanager/29ba8879127db8f7", "up").await;
}

/// A target that accepts connections and never answers.
async fn hanging_target() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    addr
}

#[tokio::test]
async fn hanging_targets_do_not_delay_other_monitors() {
    let hang = hanging_target().await;
    let target = Target::spawn().await;
    let mut cfg = COMPONENTS.to_string();
    for i in 0..20 {
        cfg.push_str(&format!(
            "\n[[monitor]]\nid = \"hang-{i}\"\ncomponent = \"checkout\"\nkind = \"http\"\nurl = \"http://{hang}/\"\ninterval = \"5s\"\ntimeout = \"5s\"\nconfirmations = 1\n"
        ));
    }
    cfg.push_str(&http_monitor(&target.url()));
    let app = TestApp::spawn(&cfg).await;
    // The healthy monitor is judged, and re-judged, while twenty others hang.
    app.wait_state("web-home", "up").await;
    target.set(503);
    app.wait_state("web-home", "down").await;
    let m = app.wait_state("hang-0", "down").await;
    assert_eq!(m["reason"], "timed out after 5s");
}

// --- Oversized bodies: a 413 with its reason, never a reset connection ------------------------

/// 20 MiB: far over every limit, and far more than the socket buffers hold, so the client is
/// still writing when Keel answers.
const HUGE: usize = 20 * 1024 * 1024;

/// Posts `size` bytes to `path` the way a naive client does — the whole body written before a
/// byte of the answer is read — and returns the status and the body of the answer.
async fn post_whole_then_read(addr: &str, path: &str, size: usize) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: keel\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/json\r\nContent-Length: {size}\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 1024 * 1024];
    let mut left = size;
    while left > 0 {
        let n = left.min(chunk.len());
        tcp.write_all(&chunk[..n])
            .await
            .unwrap_or_else(|e| panic!("{path}: the body could not be written whole: {e}"));
        left -= n;
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let answer = loop {
        let n = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf))
            .await
            .expect("an answer within 10 s")
            .unwrap_or_else(|e| panic!("{path}: reading the answer failed: {e}"));
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .expect("a content-length");
            if body.len() >= length {
                break (head.to_string(), body[..length].to_string());
            }
        }
        assert!(
            n > 0,
            "{path}: the connection closed before the answer: {text:?}"
        );
    };
    let status = answer.0[9..12].parse().unwrap();
    (
        status,
        serde_json::from_str(&answer.1).expect("a JSON body"),
    )
}

/// Python's standard HTTP client (`http.client`, and `urllib` on top of it) writes the whole
/// body before reading: it must read the 413 and its reason, not "connection reset". Returns
/// the script's output (status and body, one line each), or `None` without a python3.
fn python_post(addr: &str, path: &str, size: usize, via: &str) -> Option<(u16, Value)> {
    const SCRIPT: &str = r#"
import http.client, json, sys, urllib.error, urllib.request
addr, path, token, size, via = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
body = b" " * size
headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
if via == "http.client":
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", path, body=body, headers=headers)
    resp = conn.getresponse()
    status, text = resp.status, resp.read().decode()
else:
    req = urllib.request.Request("http://" + addr + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
print(status)
print(text)
"#;
    let out = match std::process::Command::new("python3")
        .args(["-c", SCRIPT, addr, path, ADMIN, &size.to_string(), via])
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("no python3 on this machine: skipping the Python client");
            return None;
        }
        Err(e) => panic!("cannot run python3: {e}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "python3 ({via}) failed on {path}: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = stdout.split_once('\n').expect("two lines");
    Some((
        status.trim().parse().unwrap(),
        serde_json::from_str(body).unwrap(),
    ))
}

#[tokio::test]
async fn oversized_bodies_get_a_413_with_its_reason_not_a_reset() {
    let cfg = format!("{COMPONENTS}\n[intake]\nmax_body_bytes = \"1MiB\"\n");
    let app = TestApp::spawn(&cfg).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let cases = [
        ("/api/v1/intake/generic", 1024 * 1024),
        ("/api/v1/intake/alertmanager", 1024 * 1024),
        // The default limit of every other route.
        ("/api/v1/incidents", 64 * 1024),
        ("/api/v1/subscribers", 64 * 1024),
    ];
    for (path, limit) in cases {
        let (status, body) = post_whole_then_read(&addr, path, HUGE).await;
        assert_eq!(status, 413, "{path}: {body}");
        assert_eq!(body["error"], "payload_too_large", "{path}: {body}");
        assert_eq!(body["limit"], limit, "{path}: {body}");
        let reason = body["reason"].as_str().unwrap();
        assert!(reason.contains(&limit.to_string()), "{path}: {reason}");
        if path.contains("intake") {
            assert!(reason.contains("[intake] max_body_bytes"), "{reason}");
        }
    }
    // A body within the limit is still read whole and answered (not 413).
    let r = app
        .post_auth("/api/v1/intake/generic", vec![b' '; 900 * 1024])
        .await;
    assert_eq!(r.status(), 400);
    for via in ["http.client", "urllib"] {
        for (path, limit) in [
            ("/api/v1/intake/generic", 1024 * 1024),
            ("/api/v1/incidents", 64 * 1024),
        ] {
            let (addr, path, via) = (addr.clone(), path.to_string(), via.to_string());
            let got = tokio::task::spawn_blocking(move || python_post(&addr, &path, HUGE, &via))
                .await
                .unwrap();
            let Some((status, body)) = got else { return };
            assert_eq!(status, 413, "{body}");
            assert_eq!(body["error"], "payload_too_large", "{body}");
            assert_eq!(body["limit"], limit, "{body}");
        }
    }
}

// --- Canary grace: the server opens a held incident on time, and none for its own outage ------

fn canary_config(app_url: &str, canary_url: &str, canary_confirmations: u32) -> String {
    format!(
        r#"{COMPONENTS}
[incidents]
canary_grace = "3s"

[[infra]]
id = "internet"
canary = true

[[monitor]]
id = "canary"
component = "internet"
kind = "http"
url = "{canary_url}"
interval = "300ms"
retry_interval = "300ms"
timeout = "300ms"
confirmations = {canary_confirmations}
{monitor}"#,
        monitor = http_monitor(app_url)
    )
}

#[tokio::test]
async fn a_held_incident_opens_once_the_canary_grace_is_over() {
    let (web, canary) = (Target::spawn().await, Target::spawn().await);
    let app = TestApp::spawn(&canary_config(&web.url(), &canary.url(), 2)).await;
    app.wait_state("canary", "up").await;
    app.wait_state("web-home", "up").await;
    web.set(503);
    let started = std::time::Instant::now();
    app.wait_state("web-home", "down").await;
    // Confirmed, but held: the canary might still be about to say Keel is blind.
    assert_eq!(app.incidents().await.len(), 0, "opened inside the grace");
    // No other signal comes; the grace running out is enough.
    let mut opened = None;
    for _ in 0..150 {
        if app.incidents().await.len() == 1 {
            opened = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opened = opened.expect("the incident opened after the grace");
    assert!(opened >= Duration::from_millis(2_500), "{opened:?}");
}

#[tokio::test]
async fn a_network_loss_the_canary_confirms_within_the_grace_opens_nothing() {
    let (web, canary) = (Target::spawn().await, Target::spawn().await);
    // The canary needs three failures, the ordinary monitor two: it confirms first.
    let app = TestApp::spawn(&canary_config(&web.url(), &canary.url(), 3)).await;
    app.wait_state("canary", "up").await;
    app.wait_state("web-home", "up").await;
    web.set(503);
    canary.set(503);
    app.wait_state("web-home", "down").await;
    app.wait_state("canary", "down").await;
    // Well past the grace: Keel is blind, and nothing opened in the moment before.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(app.incidents().await.len(), 0);
}
