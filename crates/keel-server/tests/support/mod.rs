//! Test harness: a real Keel on a random loopback port with a fresh SQLite database, and tiny
//! real HTTP targets whose answers the test controls.

#![allow(dead_code)]

pub mod peers;
/// keel-store's harness (fresh SQLite directories, fresh PostgreSQL schemas, the
/// skip-or-fail rule of KEEL_REQUIRE_POSTGRES), so server stories run on both backends the
/// same way the store's conformance suite does.
#[path = "../../../keel-store/tests/support/mod.rs"]
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use keel_core::config::{self, Secret};
use keel_server::{Application, Options};
use keel_store::Store;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const ADMIN: &str = "test-admin-token-0123456789";

/// A running Keel.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub store: Arc<dyn Store>,
    pub dir: Arc<tempfile::TempDir>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Config TOML with `[server]` filled in for a test (random port, the given data dir).
pub fn with_server(dir: &std::path::Path, body: &str) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n{body}",
        dir.display()
    )
}

impl TestApp {
    /// Starts Keel on `toml` (without `[server]`) in a fresh data dir.
    pub async fn spawn(toml: &str) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Self::spawn_in(dir, toml).await
    }

    /// Starts Keel on `toml` with `env` as the environment the config is read in (secrets
    /// given as `*_env` keys).
    pub async fn spawn_with_env(toml: &str, env: &[(&str, &str)]) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        Self::spawn_in_env(dir, toml, env).await
    }

    /// Starts Keel on `toml` with its store at `database_url` (a PostgreSQL test schema)
    /// instead of SQLite in the data dir.
    pub async fn spawn_on(database_url: &str, toml: &str, env: &[(&str, &str)]) -> TestApp {
        let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
        let with_url = |text: String| {
            text.replacen(
                "[server]\n",
                &format!("[server]\ndatabase_url = \"{database_url}\"\n"),
                1,
            )
        };
        Self::spawn_text(dir, with_url, toml, env).await
    }

    /// Starts Keel in an existing data dir (restart tests).
    pub async fn spawn_in(dir: Arc<tempfile::TempDir>, toml: &str) -> TestApp {
        Self::spawn_in_env(dir, toml, &[]).await
    }

    pub async fn spawn_in_env(
        dir: Arc<tempfile::TempDir>,
        toml: &str,
        env: &[(&str, &str)],
    ) -> TestApp {
        Self::spawn_text(dir, |t| t, toml, env).await
    }

    async fn spawn_text(
        dir: Arc<tempfile::TempDir>,
        edit: impl FnOnce(String) -> String,
        toml: &str,
        env: &[(&str, &str)],
    ) -> TestApp {
        init_logs();
        let text = edit(with_server(dir.path(), toml));
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cfg = config::parse(&text, "test.toml", &env).unwrap_or_else(|d| {
            panic!(
                "test config invalid:\n{}",
                d.iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        });
        let store = keel_server::store::open_store(&cfg).await.expect("store");
        let app = Application::build_with_store(
            cfg,
            Options {
                admin_token: Some(Secret(ADMIN.into())),
            },
            store.clone(),
        )
        .await
        .expect("build");
        let base = format!("http://127.0.0.1:{}", app.port());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async move {
            let _ = rx.await;
        }));
        TestApp {
            base,
            client: reqwest::Client::new(),
            store,
            dir,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// Stops gracefully and waits until every pending write is stored.
    pub async fn stop(mut self) -> Arc<tempfile::TempDir> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.expect("join").expect("run");
        }
        self.dir.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_auth(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .expect("request")
    }

    /// The incidents `GET /api/v1/incidents` lists, as the admin sees them.
    pub async fn incidents(&self) -> Vec<serde_json::Value> {
        let mut list: serde_json::Value = self
            .get_auth("/api/v1/incidents")
            .await
            .json()
            .await
            .expect("incident list JSON");
        match list["incidents"].take() {
            serde_json::Value::Array(items) => items,
            other => panic!("no incidents list: {other}"),
        }
    }

    /// `GET /api/v1/incidents/{id}`, as the admin sees it.
    pub async fn incident(&self, id: impl std::fmt::Display) -> serde_json::Value {
        self.get_auth(&format!("/api/v1/incidents/{id}"))
            .await
            .json()
            .await
            .expect("incident JSON")
    }

    /// Polls incident `id` until `pred` holds of it (for up to ten seconds): what the API
    /// shows of a monitor is seen before the timeline write that follows it.
    pub async fn wait_incident_until(
        &self,
        id: impl std::fmt::Display,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let mut inc = self.incident(&id).await;
        for _ in 0..100 {
            if pred(&inc) {
                return inc;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            inc = self.incident(&id).await;
        }
        panic!("incident {id}: {what} never held; last seen: {inc}");
    }

    pub async fn post_auth(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request")
    }

    /// The `/api/v1/monitors` entry for a source id.
    pub async fn source(&self, id: &str) -> Option<Value> {
        let v: Value = self.get_auth("/api/v1/monitors").await.json().await.ok()?;
        v["monitors"]
            .as_array()?
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
    }

    /// Polls until the source reaches `state` (a hang guard, not a timing assertion).
    pub async fn wait_state(&self, id: &str, state: &str) -> Value {
        for _ in 0..300 {
            if let Some(m) = self.source(id).await {
                if m["state"] == state {
                    return m;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{id} never reached {state}; last seen: {:?}",
            self.source(id).await
        );
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// A real HTTP target whose status code the test sets.
pub struct Target {
    pub addr: SocketAddr,
    status: Arc<AtomicU16>,
}

impl Target {
    pub async fn spawn() -> Target {
        let status = Arc::new(AtomicU16::new(200));
        let app = Router::new()
            .route(
                "/",
                get(|State(s): State<Arc<AtomicU16>>| async move {
                    let code =
                        StatusCode::from_u16(s.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK);
                    (code, "hello from target")
                }),
            )
            .with_state(status.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Target { addr, status }
    }

    pub fn set(&self, code: u16) {
        self.status.store(code, Ordering::SeqCst);
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// A status code and body a test can swap while a server serves them.
pub type Doc = Arc<std::sync::Mutex<(u16, Vec<u8>)>>;

/// Serves fixed bytes at `/` with a status the test can change.
pub async fn serve_bytes(body: Doc) -> SocketAddr {
    let app = Router::new()
        .route(
            "/",
            get(|State(b): State<Doc>| async move {
                let (code, bytes) = b.lock().expect("lock").clone();
                (StatusCode::from_u16(code).unwrap_or(StatusCode::OK), bytes)
            }),
        )
        .with_state(body);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

pub fn fixture(path: &str) -> Vec<u8> {
    let p: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "..", "fixtures", path]
        .iter()
        .collect();
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {}: {e}", p.display()))
}

/// Logs go to the test output when `TEST_LOG` is set.
fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("info,keel=debug")
            .with_test_writer()
            .try_init();
    }
}
