//! SQLite backend: the embedded default, one file under `data_dir`.
//!
//! WAL mode lets the status page read while checks write; writes that span several statements
//! start with `BEGIN IMMEDIATE` so two writers queue on the busy timeout instead of failing
//! with a lock upgrade error; an outbox claim does the same, so two claimers cannot pick the
//! same rows. Timestamps are unix milliseconds in INTEGER columns, which sort
//! and compare as numbers. Migrations in `migrations/sqlite` are compiled into the binary.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::shared::describe_migrate_error;
use crate::{Result, Store, StoreError};

mod accounts;
mod cluster;
mod comms;
mod incidents;
mod maintenance;
mod signals;
mod team;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The database file `open_in_dir` uses inside the data directory.
pub const DB_FILE: &str = "keel.db";

/// How long a writer waits for another writer before giving up with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Readers run in parallel under WAL; one writer at a time either way. A few connections are
/// enough on a small machine and keep file handles bounded.
const MAX_CONNECTIONS: u32 = 4;

/// Each connection's page cache, in KiB (SQLite's `cache_size` takes a negative number as
/// KiB). SQLite's default is 2,000 KiB per connection, filled as the file grows and kept:
/// over the soak's hour the caches were still filling (4 x 2 MB, outside the Rust heap), so
/// memory climbed for as long as the test ran. Pages the cache misses come from the OS's
/// page cache under WAL, which Keel's small reads and appends barely notice.
const PAGE_CACHE_KIB: u32 = 1024;

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteStore {
    /// Opens (creating if missing) the database file at `path` and runs migrations. The
    /// parent directory must exist.
    pub async fn open(path: &str) -> Result<Self> {
        Self::open_path(Path::new(path)).await
    }

    /// Creates `dir` if needed and opens `dir/keel.db` in it.
    pub async fn open_in_dir(dir: &Path) -> Result<Self> {
        tokio::fs::create_dir_all(dir).await.map_err(|e| {
            StoreError::Unavailable(format!(
                "cannot create data directory {}: {e}",
                dir.display()
            ))
        })?;
        Self::open_path(&dir.join(DB_FILE)).await
    }

    /// The database file this store uses.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the pool's connections (the last one checkpoints the WAL into the file); later
    /// calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn open_path(path: &Path) -> Result<Self> {
        let fail = |e: &dyn Display| {
            StoreError::Unavailable(format!(
                "cannot open SQLite database at {}: {e}",
                path.display()
            ))
        };
        if path.as_os_str().is_empty() {
            return Err(fail(&"the path is empty"));
        }
        // Open the file ourselves first: the OS error ("Not a directory", "Permission denied",
        // "No such file or directory") says more than SQLite's "unable to open database file".
        tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .await
            .map_err(|e| match path.parent() {
                Some(dir)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && !dir.as_os_str().is_empty()
                        && !dir.exists() =>
                {
                    fail(&format_args!("directory {} does not exist", dir.display()))
                }
                _ => fail(&e),
            })?;

        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable against crashes of Keel in WAL mode; only a power loss can
            // drop the last transactions, and never corrupts the file.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("cache_size", format!("-{PAGE_CACHE_KIB}"));
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(BUSY_TIMEOUT * 2)
            .connect_with(options)
            .await
            .map_err(|e| fail(&describe(&e)))?;
        if let Err(e) = MIGRATOR.run(&pool).await {
            pool.close().await;
            return Err(fail(&describe_migrate_error(&e)));
        }
        tracing::info!(path = %path.display(), "SQLite store open");
        Ok(SqliteStore {
            pool,
            path: path.to_path_buf(),
        })
    }
}

/// SQLite result codes (primary, low byte of the extended code) that mean the file cannot be
/// used right now rather than that the request was wrong.
const UNAVAILABLE_CODES: [i64; 6] = [
    5,  // SQLITE_BUSY
    6,  // SQLITE_LOCKED
    8,  // SQLITE_READONLY
    10, // SQLITE_IOERR
    13, // SQLITE_FULL
    14, // SQLITE_CANTOPEN
];

fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    }
}

fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_string())
        }
        sqlx::Error::Database(db) => {
            let primary = db
                .code()
                .and_then(|c| c.parse::<i64>().ok())
                .map(|c| c & 0xff);
            if primary.is_some_and(|c| UNAVAILABLE_CODES.contains(&c)) {
                StoreError::Unavailable(format!("SQLite: {}", db.message()))
            } else {
                StoreError::Other(format!("SQLite: {}", db.message()))
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(format!("SQLite: {e}")),
        _ => StoreError::Other(format!("SQLite: {e}")),
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_connection_caps_its_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
        // Hold every connection at once so each one is asked, not the same one again.
        let mut held = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            held.push(store.pool.acquire().await.unwrap());
        }
        for conn in &mut held {
            let kib: i64 = sqlx::query_scalar("PRAGMA cache_size")
                .fetch_one(&mut **conn)
                .await
                .unwrap();
            assert_eq!(kib, -i64::from(PAGE_CACHE_KIB));
        }
    }
}
