//! The responder console in a real browser: headless Chromium, driven over the Chrome DevTools
//! Protocol, signs in, acknowledges an incident, edits and publishes a drafted update, and
//! has a forged form refused. Screenshots go to `target/test-artifacts/console-*.png`.
//!
//! The protocol runs over `--remote-debugging-pipe` (NUL-terminated JSON on file descriptors 3
//! and 4), wired to two named pipes by `sh`, so no WebSocket client is needed. The browser
//! clicks the console's own buttons; the pages need no JavaScript for that (the script on them
//! only refreshes). Without Chromium the test says it skipped, unless `KEEL_REQUIRE_BROWSER=1`
//! (set by scripts/test when it could install one).

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use support::TestApp;

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = Command::new("which").arg(name).output().ok()?;
            out.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
}

/// A Chromium driven over the DevTools pipe, attached to one page.
struct Cdp {
    child: Child,
    tx: std::fs::File,
    rx: BufReader<std::fs::File>,
    next_id: u64,
    session: String,
    _dir: tempfile::TempDir,
}

impl Drop for Cdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Cdp {
    fn launch(browser: &Path) -> Cdp {
        let dir = tempfile::tempdir().unwrap();
        let (to_browser, from_browser) = (dir.path().join("in"), dir.path().join("out"));
        for p in [&to_browser, &from_browser] {
            let ok = Command::new("mkfifo").arg(p).status().unwrap().success();
            assert!(ok, "mkfifo {}", p.display());
        }
        let profile = dir.path().join("profile");
        let script = format!(
            "exec '{}' --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
             --disable-background-networking --disable-component-update --disable-sync \
             --hide-scrollbars --remote-debugging-pipe --user-data-dir='{}' about:blank \
             3<'{}' 4>'{}'",
            browser.display(),
            profile.display(),
            to_browser.display(),
            from_browser.display()
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        // The shell opens fd 3 first, then fd 4: open in the same order.
        let tx = std::fs::OpenOptions::new()
            .write(true)
            .open(&to_browser)
            .unwrap();
        let rx = BufReader::new(std::fs::File::open(&from_browser).unwrap());
        let mut cdp = Cdp {
            child,
            tx,
            rx,
            next_id: 0,
            session: String::new(),
            _dir: dir,
        };
        let targets = cdp.call_browser("Target.getTargets", json!({}));
        let page = targets["targetInfos"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target")["targetId"]
            .clone();
        let attached = cdp.call_browser(
            "Target.attachToTarget",
            json!({"targetId": page, "flatten": true}),
        );
        cdp.session = attached["sessionId"].as_str().unwrap().to_string();
        cdp.call("Page.enable", json!({}));
        cdp.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": false}),
        );
        cdp
    }

    fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.push(0);
        self.tx.write_all(&bytes).unwrap();
        loop {
            let mut buf = Vec::new();
            let n = self.rx.read_until(0, &mut buf).unwrap();
            assert!(n > 0, "chromium closed the pipe");
            buf.pop();
            let v: Value = serde_json::from_slice(&buf).unwrap();
            if v["id"] == id {
                if let Some(e) = v.get("error") {
                    panic!("{method} failed: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None)
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.send(method, params, Some(s))
    }

    /// Evaluates JavaScript in the page (the test's hands and eyes, not the page's own code).
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{expr}: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until the page at a URL containing `part` has loaded (a hang guard).
    fn wait_for(&mut self, part: &str) -> String {
        for _ in 0..200 {
            let state = self.eval("location.href + ' ' + document.readyState");
            let s = state.as_str().unwrap_or("").to_string();
            if s.ends_with(" complete") && s.contains(part) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("never reached {part}: {}", self.text());
    }

    fn goto(&mut self, url: &str) {
        self.eval("window.__old = true");
        self.call("Page.navigate", json!({"url": url}));
        self.wait_new_page();
    }

    /// Clicks and waits for the next document to load.
    fn click(&mut self, selector: &str) {
        self.eval("window.__old = true");
        let found = self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return false; e.click(); return true; }})()",
            serde_json::to_string(selector).unwrap()
        ));
        assert_eq!(
            found,
            json!(true),
            "no {selector} on the page:\n{}",
            self.text()
        );
        self.wait_new_page();
    }

    fn wait_new_page(&mut self) {
        for _ in 0..200 {
            let v = self.eval("(window.__old !== true) && document.readyState === 'complete'");
            if v == json!(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the page never changed: {}", self.text());
    }

    fn text(&mut self) -> String {
        self.eval("document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn set_value(&mut self, selector: &str, value: &str) {
        let ok = self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return false; e.value = {}; return true; }})()",
            serde_json::to_string(selector).unwrap(),
            serde_json::to_string(value).unwrap()
        ));
        assert_eq!(ok, json!(true), "no {selector}");
    }

    fn screenshot(&mut self, name: &str) -> PathBuf {
        let dir: PathBuf = [
            env!("CARGO_MANIFEST_DIR"),
            "..",
            "..",
            "target",
            "test-artifacts",
        ]
        .iter()
        .collect();
        std::fs::create_dir_all(&dir).unwrap();
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG"));
        assert!(
            png.len() > 10_000,
            "suspiciously small: {} bytes",
            png.len()
        );
        let path = dir.join(format!("console-{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

const CONFIG: &str = r#"
[page]
title = "Acme Status"
locales = ["en", "ja"]

[incidents]
publish_after = "1h"

[[component]]
id = "search"
name = { en = "Search", ja = "検索サービス" }
users = 15000
depends_on = ["payments"]

[[vendor]]
id = "payments"
name = "Payments provider"
status_url = "http://127.0.0.1:9/api/v2/summary.json"
interval = "60s"
confidential = true

[[runbook]]
id = "declared"
failure_kind = "manual"
steps = ["Post in #incidents", "Check the search cluster's dashboards"]
"#;

/// A page on another site with a form aimed at the console (what a CSRF attack looks like).
async fn evil_site(target: String) -> String {
    let page = format!(
        "<!doctype html><title>Win a prize</title><form method=\"post\" action=\"{target}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"guessed\"><button id=\"go\">Claim</button></form>"
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let p = page.clone();
            async move { axum::response::Html(p) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    // "localhost" is another site than "127.0.0.1" for the browser's SameSite rules.
    format!("http://localhost:{port}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_signs_in_acknowledges_and_publishes_in_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var("KEEL_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("KEEL_REQUIRE_BROWSER=1 but no Chromium found");
        }
        eprintln!("SKIPPED: no Chromium on this machine (scripts/test installs it where it can)");
        return;
    };
    // Keel's log goes to the captured test output, so a failure shows what the server saw.
    std::env::set_var("TEST_LOG", "1");
    let app = TestApp::spawn(CONFIG).await;
    app.store
        .create_user(
            "ann",
            "responder",
            &keel_server::console::password::hash("a long test passphrase").unwrap(),
        )
        .await
        .unwrap();
    let res = app
        .post_auth(
            "/api/v1/incidents",
            r#"{"title": "Search returns errors", "components": ["search"]}"#,
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let base = app.base.clone();
    let evil = evil_site(format!("{base}/admin/incidents/{id}/acknowledge")).await;

    let edited = "We are restoring search. Some results may be missing meanwhile.";
    let b = browser.clone();
    let base2 = base.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = Cdp::launch(&b);
        c.goto(&format!("{base2}/admin"));
        c.wait_for("/admin/login");
        c.screenshot("sign-in");
        c.set_value("#name", "ann");
        c.set_value("#password", "a long test passphrase");
        c.click("form[action='/admin/login'] button");
        c.wait_for("/admin");
        let list = c.text();
        assert!(list.contains("Search returns errors"), "{list}");
        assert!(list.contains("not yet"), "{list}");
        c.screenshot("incidents");

        // A forged acknowledgement from another site: the Strict cookie is not sent, so the
        // console sees no session and nothing happens.
        c.goto(&evil);
        c.click("#go");
        c.wait_for("/admin/login");
        let after = c.text();
        assert!(!after.contains("Acknowledged by"), "{after}");
        c.screenshot("csrf-cross-site");

        // A tampered token on the console's own form: refused with 403.
        c.goto(&format!("{base2}/admin/incidents/{id}"));
        c.eval("document.querySelectorAll('input[name=csrf]').forEach(e => e.value = 'forged')");
        c.click(&format!(
            "form[action='/admin/incidents/{id}/acknowledge'] button"
        ));
        let refused = c.text();
        assert!(refused.contains("nothing was changed"), "{refused}");
        c.screenshot("csrf-refused");

        // Acknowledge for real.
        c.goto(&format!("{base2}/admin/incidents/{id}"));
        c.click(&format!(
            "form[action='/admin/incidents/{id}/acknowledge'] button"
        ));
        c.wait_for(&format!("/admin/incidents/{id}"));
        let page = c.text();
        assert!(page.contains("Acknowledged by ann"), "{page}");

        // Tick the first runbook step.
        c.click(&format!(
            "form[action='/admin/incidents/{id}/steps/1/tick'] button"
        ));
        c.wait_for(&format!("/admin/incidents/{id}"));
        assert!(c.text().contains("✓ ann"), "{}", c.text());

        // Edit the English draft, first naming the confidential vendor: the verdict shows.
        c.set_value(
            "textarea[name=body_en]",
            "Payments provider is down, so search fails.",
        );
        c.click("button[name=do][value=check]");
        let checked = c.text();
        assert!(checked.contains("Disclosure check: refused"), "{checked}");
        c.screenshot("disclosure-refused");

        c.set_value("textarea[name=body_en]", edited);
        c.click("button[name=do][value=publish]");
        c.wait_for(&format!("/admin/incidents/{id}"));
        let page = c.text();
        assert!(page.contains(edited), "{page}");
        c.screenshot("incident");

        c.goto(&format!("{base2}/admin/incidents/{id}?lang=ja"));
        let ja = c.text();
        assert!(ja.contains("タイムライン"), "{ja}");
        c.screenshot("incident-ja");

        c.goto(&format!("{base2}/admin/monitors"));
        let monitors = c.text();
        assert!(monitors.contains("payments"), "{monitors}");
        c.screenshot("monitors");
        c.goto(&format!("{base2}/admin/maintenance"));
        c.screenshot("maintenance");

        c.goto(&format!("{base2}/?lang=en"));
        let public = c.text();
        assert!(public.contains(edited), "{public}");
    })
    .await
    .unwrap();

    // The timeline says who: the acknowledgement and the update are ann's, once each.
    let i: Value = app
        .get_auth(&format!("/api/v1/incidents/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let acks: Vec<_> = i["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "acknowledged")
        .collect();
    assert_eq!(acks.len(), 1, "{i}");
    assert_eq!(acks[0]["actor"]["name"], "ann");
    assert_eq!(i["public_updates"][0]["published_by"], "ann", "{i}");
}
