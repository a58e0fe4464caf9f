//! The harness both storage suites (`conformance.rs`, `comms.rs`) run on: a fresh SQLite
//! directory or a fresh PostgreSQL schema (`keel_t_<random>`, dropped afterwards) per test.
//!
//! PostgreSQL comes from `KEEL_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it is unreachable the PostgreSQL tests say
//! `SKIPPED` on stderr and pass, unless `KEEL_REQUIRE_POSTGRES=1` (CI), where they fail.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use keel_store::postgres::PgStore;
use keel_store::sqlite::SqliteStore;
use keel_store::Store;
use sqlx::Connection;

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub async fn with_sqlite<F, Fut>(hang_guard: Duration, story: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open_in_dir(dir.path())
        .await
        .expect("open SQLite store");
    assert_eq!(store.backend(), "sqlite");
    tokio::time::timeout(hang_guard, story(Arc::new(store)))
        .await
        .expect("story hung");
}

pub async fn with_postgres<F, Fut>(hang_guard: Duration, story: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let store = PgStore::open(&schema.url)
        .await
        .expect("open PostgreSQL store");
    assert_eq!(store.backend(), "postgres");
    let outcome = AssertUnwindSafe(tokio::time::timeout(
        hang_guard,
        story(Arc::new(store.clone())),
    ))
    .catch_unwind()
    .await;
    // Clean up before reporting a failure, so a failing test leaves no schema behind.
    store.close().await;
    schema.drop().await;
    match outcome {
        Ok(finished) => finished.expect("story hung"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

pub fn pg_base_url() -> String {
    std::env::var("KEEL_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string())
}

/// Connects to the test server, or decides what its absence means: a failure when
/// `KEEL_REQUIRE_POSTGRES=1`, a visible skip otherwise.
pub async fn pg_admin() -> Option<sqlx::PgConnection> {
    let url = pg_base_url();
    let connected =
        tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(&url)).await;
    // Name the server, never the URL: it may hold a password, and this lands in CI logs.
    let url = match sqlx::postgres::PgConnectOptions::from_str(&url) {
        Ok(o) => format!("{}:{}", o.get_host(), o.get_port()),
        Err(_) => "KEEL_TEST_DATABASE_URL (which does not parse)".to_string(),
    };
    let reason = match connected {
        Ok(Ok(conn)) => return Some(conn),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 10s".to_string(),
    };
    if std::env::var("KEEL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!(
            "PostgreSQL not reachable at {url} ({reason}), and KEEL_REQUIRE_POSTGRES=1 \
             requires it: start it or point KEEL_TEST_DATABASE_URL at one"
        );
    }
    eprintln!("SKIPPED: PostgreSQL not reachable at {url} ({reason})");
    None
}

/// A schema of its own for one test, and a URL whose connections use it.
pub struct TestSchema {
    pub admin: sqlx::PgConnection,
    pub name: String,
    pub url: String,
}

impl TestSchema {
    pub async fn create() -> Option<TestSchema> {
        let mut admin = pg_admin().await?;
        let name = format!("keel_t_{:016x}", rand::random::<u64>());
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut admin)
            .await
            .expect("create test schema");
        let base = pg_base_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={name}");
        Some(TestSchema { admin, name, url })
    }

    pub async fn drop(mut self) {
        let dropped = sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&mut self.admin)
            .await;
        if let Err(e) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}
