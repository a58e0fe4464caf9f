//! Real peers on loopback that Keel talks to: an HTTP receiver recording every POST (webhook
//! subscribers, responders' webhooks, pages) and aiosmtpd (scripts/smtp-sink) for email.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

pub type Seen = Arc<Mutex<Vec<Received>>>;

/// A real HTTP receiver answering a POST on any path with its current status (200 unless
/// told otherwise) and recording it.
pub struct Receiver {
    pub base: String,
    pub seen: Seen,
    status: Arc<AtomicU16>,
}

impl Receiver {
    pub async fn spawn() -> Receiver {
        let seen: Seen = Arc::default();
        let status = Arc::new(AtomicU16::new(200));
        let app = Router::new()
            .fallback(post(
                |State((s, code)): State<(Seen, Arc<AtomicU16>)>,
                 uri: OriginalUri,
                 h: HeaderMap,
                 b: Bytes| async move {
                    s.lock().unwrap().push(Received {
                        path: uri.path().to_string(),
                        headers: h,
                        body: b,
                    });
                    let code = axum::http::StatusCode::from_u16(code.load(Ordering::SeqCst))
                        .unwrap_or(axum::http::StatusCode::OK);
                    (code, "answered")
                },
            ))
            .with_state((seen.clone(), status.clone()));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(l, app).await });
        Receiver { base, seen, status }
    }

    /// Answers every later request with `code` (e.g. 500 for a broken receiver).
    pub fn answer(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What arrived on `path` so far.
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits (a hang guard, not a timing assertion) until `n` requests arrived on `path`.
    pub async fn wait_for(&self, path: &str, n: usize) -> Vec<Received> {
        for _ in 0..600 {
            let got = self.on(path);
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "fewer than {n} requests arrived on {path}: {:?}",
            self.on(path)
        );
    }
}

/// aiosmtpd on loopback through scripts/smtp-sink; each message lands as N.json in `dir`.
pub struct Smtp {
    pub port: u16,
    dir: tempfile::TempDir,
    _child: tokio::process::Child,
}

impl Smtp {
    pub async fn start() -> Smtp {
        let dir = tempfile::tempdir().unwrap();
        let script: PathBuf = [
            env!("CARGO_MANIFEST_DIR"),
            "..",
            "..",
            "scripts",
            "smtp-sink",
        ]
        .iter()
        .collect();
        let mut child = tokio::process::Command::new("python3")
            .arg(&script)
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs scripts/smtp-sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .await
            .unwrap();
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("smtp-sink did not start (pip install aiosmtpd): {line:?}"));
        Smtp {
            port,
            dir,
            _child: child,
        }
    }

    /// The `[notify.smtp]` table that sends through this sink.
    pub fn config(&self) -> String {
        format!(
            "\n[notify.smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"Acme Status <status@acme.test>\"\ntls = \"none\"\n",
            self.port
        )
    }

    /// Every message so far.
    pub fn mails(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for i in 1.. {
            match std::fs::read_to_string(self.dir.path().join(format!("{i}.json"))) {
                Ok(t) => out.push(serde_json::from_str(&t).unwrap()),
                Err(_) => break,
            }
        }
        out
    }

    /// Waits (a hang guard) until `n` messages arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..300 {
            let out = self.mails();
            if out.len() >= n {
                return out;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("fewer than {n} emails arrived");
    }
}
