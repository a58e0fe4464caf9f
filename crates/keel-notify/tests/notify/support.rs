//! Test peers: a recording HTTP receiver with a scripted sequence of replies, and a real SMTP
//! server started as a child process.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use keel_notify::webhook;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Generous bound for anything that should happen promptly (a hang guard, not a timing test).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    Status(u16),
    /// A status with `Retry-After: seconds`.
    RetryAfter(u16, u64),
    /// Waits this long before answering 200 (to trip the sender's timeout).
    Slow(Duration),
    /// A 302 to another URL (must not be followed).
    Redirect,
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether `X-Keel-Signature` verified against the receiver's secret.
    pub signature_ok: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("receiver got JSON")
    }
}

struct State {
    secret: Vec<u8>,
    script: Mutex<VecDeque<Reply>>,
    otherwise: Reply,
    got: Mutex<Vec<Received>>,
}

/// A real HTTP server on 127.0.0.1 that records every request.
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Answers with `script` in order, then `otherwise` forever.
    pub async fn start(secret: &str, script: Vec<Reply>, otherwise: Reply) -> Receiver {
        let state = Arc::new(State {
            secret: secret.as_bytes().to_vec(),
            script: Mutex::new(script.into()),
            otherwise,
            got: Mutex::new(Vec::new()),
        });
        let s = state.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let s = s.clone();
                async move { handle(s, uri.path().to_string(), headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Receiver { addr, state, task }
    }

    pub async fn ok(secret: &str) -> Receiver {
        Receiver::start(secret, vec![], Reply::Status(200)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.got.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.state.got.lock().unwrap().len()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(s: Arc<State>, path: String, headers: HeaderMap, body: Bytes) -> Response {
    let signature_ok = headers
        .get(webhook::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|sig| webhook::verify(&s.secret, &body, sig));
    s.got.lock().unwrap().push(Received {
        path,
        headers,
        body,
        signature_ok,
    });
    let reply = s.script.lock().unwrap().pop_front().unwrap_or(s.otherwise);
    match reply {
        Reply::Status(c) => StatusCode::from_u16(c).unwrap().into_response(),
        Reply::RetryAfter(c, secs) => (
            StatusCode::from_u16(c).unwrap(),
            [("retry-after", secs.to_string())],
            "slow down",
        )
            .into_response(),
        Reply::Slow(d) => {
            tokio::time::sleep(d).await;
            StatusCode::OK.into_response()
        }
        Reply::Redirect => (
            StatusCode::FOUND,
            [("location", "http://127.0.0.1:9/elsewhere")],
        )
            .into_response(),
    }
}

/// A real SMTP server (aiosmtpd) on loopback, writing what it receives to a directory.
pub struct SmtpSink {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: tokio::process::Child,
}

impl SmtpSink {
    pub async fn start(extra: &[&str]) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/smtp-sink");
        let mut child = tokio::process::Command::new("python3")
            .arg(&script)
            .arg(dir.path())
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs scripts/smtp-sink");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        tokio::time::timeout(PATIENCE, BufReader::new(stdout).read_line(&mut line))
            .await
            .expect("smtp-sink printed its port in time")
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("smtp-sink did not start (is aiosmtpd installed? `pip install aiosmtpd`); said {line:?}")
        });
        SmtpSink { port, dir, child }
    }

    /// The decoded messages received so far, in order.
    pub fn messages(&self) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for n in 1.. {
            let p = self.dir.path().join(format!("{n}.json"));
            match std::fs::read_to_string(&p) {
                Ok(t) => out.push(serde_json::from_str(&t).unwrap()),
                Err(_) => break,
            }
        }
        out
    }

    /// Waits until `n` messages have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} messages arrived",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
