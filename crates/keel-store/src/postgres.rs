//! PostgreSQL backend: for scale-out, several Keel instances sharing one database.
//!
//! What sharing needs is handled here: migrations take sqlx's advisory lock, so instances
//! starting together migrate once; signal appends are serialised by a transaction-level
//! advisory lock, so sequence numbers become visible in increasing order and a reader that
//! resumes "after seq N" never skips a row committed late; rollup batches lock rows in key
//! order, so two writers cannot deadlock; incident ids come from an identity (never handed out
//! twice) under a lock of their own, so they also become visible in order; an append to an
//! incident locks its row (`FOR UPDATE`) before comparing the expected seq, so of two
//! instances appending at the same seq exactly one wins; outbox claims lock the rows they take
//! with `FOR UPDATE SKIP LOCKED`, so instances claiming at once pass over each other's rows
//! instead of queueing on them, and never send one row together; enqueues insert in key order,
//! so overlapping fan-outs cannot deadlock. Tables live in the connection's `search_path`, so a
//! URL with `options[search_path]=NAME` puts a deployment (or a test) in its own schema; the
//! change feed's `NOTIFY` channel is named after that schema too (see `postgres/cluster.rs`,
//! with the leases and fenced writes), so deployments side by side hear only their own writes.
//! Migrations in `migrations/postgres` are compiled into the binary.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection};

use crate::shared::{describe_migrate_error, redact_url};
use crate::{Result, Store, StoreError};

mod accounts;
mod cluster;
mod comms;
mod incidents;
mod maintenance;
mod signals;
mod team;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long to wait for the server when connecting, so an unreachable database is reported
/// at start instead of hanging it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

const MAX_CONNECTIONS: u32 = 10;
/// See where the pool is made.
const IDLE_IN_TRANSACTION_LIMIT: &str = "15s";

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    target: String,
    /// The `NOTIFY` channel of the change feed, named after the schema the tables live in
    /// (see [`cluster::channel_for`]).
    channel: String,
}

impl PgStore {
    /// Connects to the database a `postgres://` URL names and runs migrations.
    ///
    /// Fails within a few seconds with [`StoreError::Unavailable`] naming host and port (never
    /// the password) when the server cannot be reached or refuses the login.
    pub async fn open(url: &str) -> Result<Self> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| {
                StoreError::Other(format!("invalid PostgreSQL URL {}: {e}", redact_url(url)))
            })?
            .application_name("keel");
        let target = format!("{}:{}", options.get_host(), options.get_port());
        let fail = |reason: String| {
            StoreError::Unavailable(format!(
                "cannot connect to PostgreSQL at {target}: {reason}"
            ))
        };

        // One direct connection first: the pool would retry a refused connection until its
        // timeout and then report only "timed out", losing the reason.
        let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
            Err(_) => {
                return Err(fail(format!(
                    "no answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            }
            Ok(Err(e)) => return Err(fail(describe(&e))),
            Ok(Ok(conn)) => conn,
        };
        let migrated = run_migrations(&mut conn).await;
        let schema = current_schema(&mut conn).await;
        let tls = encrypted(&mut conn).await.unwrap_or(false);
        // Closing is a courtesy to the server; the connection is dropped either way.
        let _ = conn.close().await;
        migrated
            .map_err(|reason| StoreError::Other(format!("PostgreSQL at {target}: {reason}")))?;
        let channel =
            cluster::channel_for(&schema.map_err(|e| {
                StoreError::Other(format!("PostgreSQL at {target}: {}", describe(&e)))
            })?);

        // Loopback and Unix sockets never leave the machine: no warning for those.
        let local = {
            let host = options.get_host();
            host == "localhost"
                || host.starts_with('/')
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        };
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(CONNECT_TIMEOUT)
            // Keel never leaves a transaction waiting on anything but the database; one idle
            // this long belongs to a process that was stopped mid-write (SIGSTOP, a frozen
            // VM), and ending it frees the lease row its fence holds so another instance can
            // take the lease over.
            .connect_lazy_with(options.options([(
                "idle_in_transaction_session_timeout",
                IDLE_IN_TRANSACTION_LIMIT,
            )]));
        if tls || local {
            tracing::info!(server = %target, tls, "PostgreSQL store open");
        } else {
            // Said plainly: the store carries incident timelines and subscriber addresses.
            tracing::warn!(
                server = %target,
                tls = false,
                "PostgreSQL store open WITHOUT encryption; add sslmode=require (or verify-full) \
                 to database_url unless the link is private"
            );
        }
        Ok(PgStore {
            pool,
            target,
            channel,
        })
    }

    /// Whether the store's connections to the server are encrypted (TLS).
    pub async fn encrypted(&self) -> Result<bool> {
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        encrypted(&mut conn).await.map_err(map_err)
    }

    /// A server setting as the store's own connections have it (`current_setting`).
    pub async fn setting(&self, name: &str) -> Result<String> {
        let (value,): (String,) = sqlx::query_as("SELECT current_setting($1)")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(value)
    }

    /// `host:port` of the server, for logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Closes the pool's connections; later calls fail with `Unavailable`, and the change
    /// feeds opened on this store end.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Whether this connection is encrypted, as the server sees it.
async fn encrypted(conn: &mut PgConnection) -> std::result::Result<bool, sqlx::Error> {
    let (ssl,): (bool,) = sqlx::query_as(
        "SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
    )
    .fetch_one(conn)
    .await?;
    Ok(ssl)
}

/// The schema unqualified tables are created in and read from: the first of the
/// connection's `search_path` that exists.
async fn current_schema(conn: &mut PgConnection) -> std::result::Result<String, sqlx::Error> {
    let (schema,): (Option<String>,) = sqlx::query_as("SELECT current_schema()")
        .fetch_one(conn)
        .await?;
    // No schema at all would have failed the migrations already.
    Ok(schema.unwrap_or_else(|| "public".to_string()))
}

async fn run_migrations(conn: &mut PgConnection) -> std::result::Result<(), String> {
    // sqlx holds an advisory lock on the database while migrating, so instances started
    // together apply each migration once.
    MIGRATOR
        .run(conn)
        .await
        .map_err(|e| describe_migrate_error(&e))
}

fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// Whether a server error means "not now" rather than "not this request": connection
/// exceptions (class 08), shutdown and start-up (57P01–57P03), insufficient resources (53).
fn is_unavailable_code(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03")
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_string())
        }
        sqlx::Error::Database(db) if db.code().is_some_and(|c| is_unavailable_code(&c)) => {
            StoreError::Unavailable(format!("PostgreSQL: {}", db.message()))
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(format!("PostgreSQL: {e}")),
        _ => StoreError::Other(format!("PostgreSQL: {e}")),
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}
