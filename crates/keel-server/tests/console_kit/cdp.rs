//! Headless Chromium over the DevTools pipe, shared by the console's browser tests (see
//! console_browser.rs for how it is wired).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

pub fn chromium() -> Option<PathBuf> {
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
pub struct Cdp {
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
    pub fn launch(browser: &Path) -> Cdp {
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

    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let s = self.session.clone();
        self.send(method, params, Some(s))
    }

    /// Evaluates JavaScript in the page (the test's hands and eyes, not the page's own code).
    pub fn eval(&mut self, expr: &str) -> Value {
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
    pub fn wait_for(&mut self, part: &str) -> String {
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

    pub fn goto(&mut self, url: &str) {
        self.eval("window.__old = true");
        self.call("Page.navigate", json!({"url": url}));
        self.wait_new_page();
    }

    /// Clicks and waits for the next document to load.
    pub fn click(&mut self, selector: &str) {
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

    pub fn text(&mut self) -> String {
        self.eval("document.body ? document.body.innerText : ''")
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    pub fn set_value(&mut self, selector: &str, value: &str) {
        let ok = self.eval(&format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return false; e.value = {}; return true; }})()",
            serde_json::to_string(selector).unwrap(),
            serde_json::to_string(value).unwrap()
        ));
        assert_eq!(ok, json!(true), "no {selector}");
    }

    pub fn screenshot(&mut self, name: &str) -> PathBuf {
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
