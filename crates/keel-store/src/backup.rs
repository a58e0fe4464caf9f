//! Backups that move between backends: `keel backup` and `keel restore`.
//!
//! A backup is one UTF-8 file of JSON Lines (format version [`FORMAT_VERSION`]):
//!
//! ```text
//! {"format":"keel-backup","version":1,"keel_version":"0.1.0","schema_level":6,
//!  "created_at":"2026-12-06T18:35:23.123Z","source_backend":"sqlite"}      header (one line)
//! {"table":"signals","columns":["seq","source_kind",…]}                    a table begins
//! [1,"monitor","web","web","down","HTTP 503 (expected 2xx)","2026-…Z"]     one row per line
//! {"end":"signals","rows":1,"last_id":1}                                   the table ends
//! …                                                                        every kept table
//! {"end_backup":true,"tables":15,"rows":123,"sha256":"…"}                  trailer
//! ```
//!
//! Tables come in the order of [`TABLES`] with exactly their columns, rows in primary-key order
//! (text compared byte by byte on both backends). Values are backend-neutral: integers as JSON
//! numbers, text as strings, times as RFC 3339 strings in UTC (`Z`, with the fraction Keel
//! stored: milliseconds), days as `YYYY-MM-DD`, booleans as `true`/`false`, NULL as `null`.
//! `last_id` is the highest id the table's identity (PostgreSQL) or AUTOINCREMENT counter
//! (SQLite) ever handed out, so a restored database never hands one out twice; `sha256` is
//! the hex SHA-256 of every byte before the trailer line. A file without its trailer is
//! truncated and refused.
//!
//! **Consistency.** A backup reads every table in one read transaction — SQLite: one deferred
//! transaction on one connection (a WAL snapshot, while the server keeps writing);
//! PostgreSQL: `REPEATABLE READ READ ONLY` — so it is one point in time.
//!
//! **Restore** migrates the target to this Keel's schema, then loads every row in one
//! transaction (SQLite `BEGIN IMMEDIATE`; PostgreSQL with the tables locked): either all of the
//! file is stored or nothing is. It refuses a target that already holds rows unless `force`
//! (which deletes them in that same transaction), and a target with a live Keel instance.
//!
//! Kept: every table of the schema except [`EPHEMERAL`] ones (leases and live instances, which
//! a starting Keel makes again).

use std::io::{BufRead, Write};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;

use crate::StoreError;

mod postgres;
mod sqlite;

/// The backup format this Keel writes and the newest it reads.
pub const FORMAT_VERSION: u64 = 1;

/// The `format` field of the header.
pub const MAGIC: &str = "keel-backup";

/// Tables that are not backed up: who leads and who checks what (leases) and which instances
/// run right now. A restored Keel claims and registers them again.
pub const EPHEMERAL: &[&str] = &["leases", "instances"];

/// How long ago an instance must have been seen for a restore to consider it stopped.
pub(crate) const LIVE_WITHIN: Duration = Duration::from_secs(15);

/// Rows per INSERT statement while restoring.
const BATCH_ROWS: usize = 100;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The schema migration level this Keel's binary carries (the highest migration version).
pub fn schema_level() -> i64 {
    SQLITE_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// The highest PostgreSQL migration (kept equal to SQLite's; a test holds them together).
pub fn postgres_schema_level() -> i64 {
    POSTGRES_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
}

/// How a column's values are written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    /// A JSON integer (SQLite INTEGER, PostgreSQL BIGINT).
    Int,
    /// A JSON string.
    Text,
    /// RFC 3339 in UTC (SQLite INTEGER unix milliseconds, PostgreSQL TIMESTAMPTZ).
    Time,
    /// `YYYY-MM-DD` (SQLite TEXT, PostgreSQL DATE).
    Day,
    /// `true`/`false` (SQLite INTEGER 0/1, PostgreSQL BOOLEAN).
    Bool,
}

/// One kept table: its columns in file order, its primary key (the rows' order) and its
/// identity column, if any.
#[derive(Debug)]
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, Ty)],
    pub key: &'static [&'static str],
    pub identity: Option<&'static str>,
}

impl Table {
    pub(crate) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

use Ty::{Bool, Day, Int, Text, Time};

/// Every kept table, parents before the tables that refer to them.
pub(crate) const TABLES: &[Table] = &[
    Table {
        name: "signals",
        columns: &[
            ("seq", Int),
            ("source_kind", Text),
            ("source_id", Text),
            ("component", Text),
            ("health", Text),
            ("reason", Text),
            ("at", Time),
        ],
        key: &["seq"],
        identity: Some("seq"),
    },
    Table {
        name: "source_states",
        columns: &[
            ("kind", Text),
            ("id", Text),
            ("component", Text),
            ("health", Text),
            ("since", Time),
            ("reason", Text),
            ("latency_ms", Int),
            ("last_checked", Time),
            ("streak", Int),
            ("pending", Text),
        ],
        key: &["kind", "id"],
        identity: None,
    },
    Table {
        name: "rollups_minute",
        columns: &[
            ("monitor_id", Text),
            ("minute", Time),
            ("component", Text),
            ("checks", Int),
            ("failures", Int),
            ("p50_ms", Int),
            ("p95_ms", Int),
            ("max_ms", Int),
        ],
        key: &["monitor_id", "minute"],
        identity: None,
    },
    Table {
        name: "rollups_daily",
        columns: &[
            ("component", Text),
            ("day", Day),
            ("checks", Int),
            ("failures", Int),
        ],
        key: &["component", "day"],
        identity: None,
    },
    Table {
        name: "api_tokens",
        columns: &[
            ("id", Int),
            ("name", Text),
            ("role", Text),
            ("hash", Text),
            ("created_at", Time),
        ],
        key: &["id"],
        identity: Some("id"),
    },
    Table {
        name: "incidents",
        columns: &[("id", Int), ("last_seq", Int)],
        key: &["id"],
        identity: Some("id"),
    },
    Table {
        name: "incident_events",
        columns: &[
            ("incident", Int),
            ("seq", Int),
            ("at", Time),
            ("actor_type", Text),
            ("actor_name", Text),
            ("type", Text),
            ("kind", Text),
        ],
        key: &["incident", "seq"],
        identity: None,
    },
    Table {
        name: "subscribers",
        columns: &[
            ("id", Int),
            ("kind", Text),
            ("address", Text),
            ("components", Text),
            ("locale", Text),
            ("secret", Text),
            ("confirmed", Bool),
            ("confirm_hash", Text),
            ("unsubscribe_hash", Text),
            ("created_at", Time),
            ("confirmed_at", Time),
        ],
        key: &["id"],
        identity: Some("id"),
    },
    Table {
        name: "outbox",
        columns: &[
            ("id", Int),
            ("idempotency_key", Text),
            ("channel", Text),
            ("target", Text),
            ("subscriber_id", Int),
            ("payload", Text),
            ("status", Text),
            ("attempts", Int),
            ("next_attempt_at", Time),
            ("last_error", Text),
            ("claimed_by", Text),
            ("lease_until", Time),
            ("created_at", Time),
            ("finished_at", Time),
        ],
        key: &["id"],
        identity: Some("id"),
    },
    Table {
        name: "maintenances",
        columns: &[
            ("id", Int),
            ("name", Text),
            ("body", Text),
            ("status", Text),
            ("scheduled_for", Time),
            ("scheduled_until", Time),
            ("components", Text),
            ("created_at", Time),
            ("updated_at", Time),
        ],
        key: &["id"],
        identity: Some("id"),
    },
    Table {
        name: "users",
        columns: &[
            ("id", Int),
            ("name", Text),
            ("role", Text),
            ("password_hash", Text),
            ("created_at", Time),
        ],
        key: &["id"],
        identity: Some("id"),
    },
    Table {
        name: "sessions",
        columns: &[
            ("token_hash", Text),
            ("user_id", Int),
            ("csrf_token", Text),
            ("created_at", Time),
            ("expires_at", Time),
            ("last_seen", Time),
        ],
        key: &["token_hash"],
        identity: None,
    },
    Table {
        name: "oncall_overrides",
        columns: &[
            ("id", Int),
            ("schedule", Text),
            ("person", Text),
            ("start_at", Time),
            ("end_at", Time),
            ("created_by", Text),
            ("created_at", Time),
        ],
        key: &["id"],
        identity: Some("id"),
    },
    Table {
        name: "shared_secrets",
        columns: &[("name", Text), ("value", Text), ("created_at", Time)],
        key: &["name"],
        identity: None,
    },
    Table {
        name: "heartbeats",
        columns: &[("monitor", Text), ("at", Time)],
        key: &["monitor"],
        identity: None,
    },
];

/// The names of the tables a backup keeps, in file order.
pub fn kept_tables() -> Vec<&'static str> {
    TABLES.iter().map(|t| t.name).collect()
}

/// Why a backup or restore failed. Nothing was written to the target when a restore fails.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0}")]
    Io(String),
    #[error("malformed backup at line {line}: {reason}")]
    Malformed { line: u64, reason: String },
    #[error("truncated backup: {0} (the file ends before its trailer; was the copy cut short?)")]
    Truncated(String),
    #[error(
        "backup format version {found} is newer than this Keel reads (version {supported}); it \
         was written by Keel {keel_version}: restore it with that version or a newer one"
    )]
    NewerFormat {
        found: u64,
        supported: u64,
        keel_version: String,
    },
    #[error("schema mismatch: {0}")]
    Schema(String),
    #[error(
        "the target database is not empty ({0}); restore into an empty database, or pass \
         --force to replace everything in it"
    )]
    NotEmpty(String),
    #[error("{0}")]
    InUse(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type Result<T> = std::result::Result<T, BackupError>;

/// What a backup wrote or a restore loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub source_backend: String,
    pub keel_version: String,
    pub schema_level: i64,
    pub created_at: String,
    /// (table, rows) in file order.
    pub tables: Vec<(String, u64)>,
}

impl Summary {
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Backup
// ---------------------------------------------------------------------------------------------

/// Writes a backup of the database `url` names (`sqlite://PATH` or `postgres://…`) to `out`.
/// Opens its own connection and never migrates the source: its schema must be this Keel's.
pub async fn backup<W: Write + Send>(url: &str, out: W) -> Result<Summary> {
    let mut out = Hashing::new(out);
    let summary = if let Some(path) = url.strip_prefix("sqlite://") {
        sqlite::backup(path, &mut out).await?
    } else if is_postgres(url) {
        postgres::backup(url, &mut out).await?
    } else {
        return Err(StoreError::UnsupportedUrl(crate::shared::redact_url(url)).into());
    };
    let sha256 = hex::encode(out.hasher.clone().finalize());
    out.object(&[
        ("end_backup", json!(true)),
        ("tables", json!(summary.tables.len())),
        ("rows", json!(summary.rows())),
        ("sha256", json!(sha256)),
    ])?;
    out.inner.flush().map_err(io_err)?;
    Ok(summary)
}

/// Writes the backup to `path` through a temporary file beside it, renamed into place once
/// complete and synced, so `path` never holds half a backup.
pub async fn backup_to_file(url: &str, path: &std::path::Path) -> Result<Summary> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = std::path::PathBuf::from(tmp);
    let file = std::fs::File::create(&tmp)
        .map_err(|e| BackupError::Io(format!("cannot create {}: {e}", tmp.display())))?;
    let mut writer = std::io::BufWriter::new(file);
    let result = backup(url, &mut writer).await;
    let finished = result.and_then(|summary| {
        let file = writer
            .into_inner()
            .map_err(|e| BackupError::Io(format!("cannot write {}: {e}", tmp.display())))?;
        file.sync_all()
            .map_err(|e| BackupError::Io(format!("cannot sync {}: {e}", tmp.display())))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            BackupError::Io(format!("cannot rename {} into place: {e}", tmp.display()))
        })?;
        Ok(summary)
    });
    if finished.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    finished
}

/// The header line every backup starts with, in its documented key order; returns its
/// `created_at`.
pub(crate) fn write_header<W: Write>(out: &mut Hashing<W>, source_backend: &str) -> Result<String> {
    let created_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    out.object(&[
        ("format", json!(MAGIC)),
        ("version", json!(FORMAT_VERSION)),
        ("keel_version", json!(env!("CARGO_PKG_VERSION"))),
        ("schema_level", json!(schema_level())),
        ("created_at", json!(created_at)),
        ("source_backend", json!(source_backend)),
    ])?;
    Ok(created_at)
}

/// A source database's migration level must be the one this Keel knows.
pub(crate) fn check_source_level(level: Option<i64>) -> Result<i64> {
    let ours = schema_level();
    match level {
        Some(l) if l == ours => Ok(l),
        Some(l) if l > ours => Err(BackupError::Schema(format!(
            "the database is at schema level {l}, newer than this Keel's {ours}: back it up with \
             the Keel version that serves it"
        ))),
        Some(l) => Err(BackupError::Schema(format!(
            "the database is at schema level {l}, older than this Keel's {ours}: start this Keel \
             on it once (which migrates it), or back it up with the Keel version that serves it"
        ))),
        None => Err(BackupError::Schema(
            "the database holds no Keel schema (no applied migrations)".to_string(),
        )),
    }
}

/// A writer that hashes what it writes (for the trailer's `sha256`).
pub(crate) struct Hashing<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
        }
    }

    pub(crate) fn line(&mut self, value: &Value) -> Result<()> {
        let text = serde_json::to_string(value)
            .map_err(|e| BackupError::Io(format!("cannot encode a row: {e}")))?;
        self.text(text)
    }

    /// A JSON object with its keys in the order given (the documented order).
    pub(crate) fn object(&mut self, pairs: &[(&str, Value)]) -> Result<()> {
        let fields: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}:{v}", Value::from(*k)))
            .collect();
        self.text(format!("{{{}}}", fields.join(",")))
    }

    fn text(&mut self, mut text: String) -> Result<()> {
        text.push('\n');
        self.hasher.update(text.as_bytes());
        self.inner.write_all(text.as_bytes()).map_err(io_err)
    }

    pub(crate) fn begin_table(&mut self, table: &Table) -> Result<()> {
        let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
        self.object(&[("table", json!(table.name)), ("columns", json!(columns))])
    }

    pub(crate) fn end_table(
        &mut self,
        table: &Table,
        rows: u64,
        last_id: Option<i64>,
    ) -> Result<()> {
        self.object(&[
            ("end", json!(table.name)),
            ("rows", json!(rows)),
            ("last_id", json!(last_id)),
        ])
    }
}

fn io_err(e: std::io::Error) -> BackupError {
    BackupError::Io(format!("cannot write the backup: {e}"))
}

pub(crate) fn time_to_json(at: DateTime<Utc>) -> Value {
    Value::String(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

pub(crate) fn day_to_json(day: NaiveDate) -> Value {
    Value::String(day.format("%Y-%m-%d").to_string())
}

/// The highest id of a table's rows (for `last_id` when the counter is behind them).
pub(crate) fn max_id(table: &Table, row: &[Value], current: Option<i64>) -> Option<i64> {
    let Some(identity) = table.identity else {
        return current;
    };
    let i = table.columns.iter().position(|(c, _)| *c == identity)?;
    match (row[i].as_i64(), current) {
        (Some(v), Some(c)) => Some(v.max(c)),
        (Some(v), None) => Some(v),
        (None, c) => c,
    }
}

// ---------------------------------------------------------------------------------------------
// Restore
// ---------------------------------------------------------------------------------------------

/// A typed value read from the file, ready to bind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Int(Option<i64>),
    Text(Option<String>),
    Time(Option<DateTime<Utc>>),
    Day(Option<NaiveDate>),
    Bool(Option<bool>),
}

/// What the reader found next inside a table.
pub(crate) enum Item {
    Row(Vec<Val>),
    End { last_id: Option<i64> },
}

/// Where a restore puts what it reads: one backend's open transaction.
#[async_trait::async_trait]
pub(crate) trait Target: Send {
    /// Inserts rows of one table (at most [`BATCH_ROWS`]).
    async fn insert(&mut self, table: &'static Table, rows: &[Vec<Val>]) -> Result<()>;
    /// Sets the table's id counter so the next id handed out is above `last` (`None`: no id
    /// was ever handed out).
    async fn set_counter(&mut self, table: &'static Table, last: Option<i64>) -> Result<()>;
    /// How many rows the table holds.
    async fn count(&mut self, table: &'static Table) -> Result<i64>;
    /// Deletes every row of the table.
    async fn empty(&mut self, table: &'static Table) -> Result<()>;
}

/// Refuses a target whose kept tables hold rows, unless `force`: then empties them, children
/// first (sessions before users, events before incidents), in the caller's transaction.
pub(crate) async fn clear(target: &mut dyn Target, force: bool) -> Result<()> {
    let mut counts = Vec::new();
    for table in TABLES {
        counts.push((table.name, target.count(table).await?));
    }
    if counts.iter().any(|(_, n)| *n > 0) {
        if !force {
            return Err(BackupError::NotEmpty(describe_counts(&counts)));
        }
        for table in TABLES.iter().rev() {
            target.empty(table).await?;
        }
    }
    Ok(())
}

/// Reads every table from `reader` into `target`, then checks the trailer. The caller commits
/// only when this returns `Ok`.
pub(crate) async fn load<R: BufRead + Send>(
    reader: &mut Reader<R>,
    summary: &mut Summary,
    target: &mut dyn Target,
) -> Result<()> {
    let mut counters = Vec::new();
    for _ in TABLES {
        let table = reader.begin_table()?;
        let identity = table
            .identity
            .and_then(|c| table.columns.iter().position(|(n, _)| *n == c));
        let mut highest: Option<i64> = None;
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        let mut count = 0u64;
        loop {
            match reader.next_item(table)? {
                Item::Row(row) => {
                    if let Some(Val::Int(Some(id))) = identity.map(|i| &row[i]) {
                        highest = Some(highest.map_or(*id, |h: i64| h.max(*id)));
                    }
                    batch.push(row);
                    count += 1;
                    if batch.len() == BATCH_ROWS {
                        target.insert(table, &batch).await?;
                        batch.clear();
                    }
                }
                Item::End { last_id } => {
                    if !batch.is_empty() {
                        target.insert(table, &batch).await?;
                    }
                    if table.identity.is_some() {
                        let last = match (highest, last_id) {
                            (Some(h), Some(l)) => Some(h.max(l)),
                            (h, l) => h.or(l),
                        };
                        counters.push((table, last));
                    }
                    break;
                }
            }
        }
        summary.tables.push((table.name.to_string(), count));
    }
    reader.trailer()?;
    // Only once the whole file checked out: PostgreSQL's setval is not undone by a rollback.
    for (table, last) in counters {
        target.set_counter(table, last).await?;
    }
    Ok(())
}

/// Restores the backup read from `input` into the database `url` names. See the module docs.
pub async fn restore<R: BufRead + Send>(url: &str, input: R, force: bool) -> Result<Summary> {
    let mut reader = Reader::new(input);
    let summary = reader.header()?;
    if let Some(path) = url.strip_prefix("sqlite://") {
        sqlite::restore(path, &mut reader, summary, force).await
    } else if is_postgres(url) {
        postgres::restore(url, &mut reader, summary, force).await
    } else {
        Err(StoreError::UnsupportedUrl(crate::shared::redact_url(url)).into())
    }
}

/// [`restore`] from a file.
pub async fn restore_from_file(url: &str, path: &std::path::Path, force: bool) -> Result<Summary> {
    let file = std::fs::File::open(path)
        .map_err(|e| BackupError::Io(format!("cannot read {}: {e}", path.display())))?;
    restore(url, std::io::BufReader::new(file), force).await
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Reads a backup line by line, checking its structure and hashing what it read.
pub(crate) struct Reader<R> {
    input: R,
    line: u64,
    hasher: Sha256,
    table: usize,
    table_rows: u64,
    rows_total: u64,
}

impl<R: BufRead> Reader<R> {
    fn new(input: R) -> Self {
        Reader {
            input,
            line: 0,
            hasher: Sha256::new(),
            table: 0,
            table_rows: 0,
            rows_total: 0,
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> BackupError {
        BackupError::Malformed {
            line: self.line,
            reason: reason.into(),
        }
    }

    /// The next complete line as JSON; `None` at the end of the file. A last line without its
    /// newline is a truncated file.
    fn next(&mut self, hash: bool) -> Result<Option<Value>> {
        let mut buf = Vec::new();
        let n = self
            .input
            .read_until(b'\n', &mut buf)
            .map_err(|e| BackupError::Io(format!("cannot read the backup: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        if buf.last() != Some(&b'\n') {
            return Err(BackupError::Truncated(format!(
                "line {} ends in the middle",
                self.line
            )));
        }
        if hash {
            self.hasher.update(&buf);
        }
        let text = std::str::from_utf8(&buf).map_err(|_| self.malformed("not UTF-8"))?;
        serde_json::from_str(text.trim_end())
            .map(Some)
            .map_err(|e| self.malformed(format!("not JSON: {e}")))
    }

    fn header(&mut self) -> Result<Summary> {
        let Some(h) = self.next(true)? else {
            return Err(BackupError::Truncated("the file is empty".to_string()));
        };
        if h.get("format").and_then(Value::as_str) != Some(MAGIC) {
            return Err(self.malformed(format!(
                "not a Keel backup (the first line has no \"format\": \"{MAGIC}\")"
            )));
        }
        let version = h
            .get("version")
            .and_then(Value::as_u64)
            .ok_or_else(|| self.malformed("the header has no version"))?;
        let keel_version = h
            .get("keel_version")
            .and_then(Value::as_str)
            .unwrap_or("(unknown)")
            .to_string();
        if version > FORMAT_VERSION {
            return Err(BackupError::NewerFormat {
                found: version,
                supported: FORMAT_VERSION,
                keel_version,
            });
        }
        if version == 0 {
            return Err(self.malformed("format version 0 does not exist"));
        }
        let level = h
            .get("schema_level")
            .and_then(Value::as_i64)
            .ok_or_else(|| self.malformed("the header has no schema_level"))?;
        let ours = schema_level();
        if level != ours {
            return Err(BackupError::Schema(format!(
                "the backup is at schema level {level} (Keel {keel_version}), this Keel at {ours}: \
                 restore it with the Keel version that wrote it, then start this one on it"
            )));
        }
        let text = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Ok(Summary {
            source_backend: text("source_backend"),
            keel_version,
            schema_level: level,
            created_at: text("created_at"),
            tables: Vec::new(),
        })
    }

    /// The start of the next table, which must be the next of [`TABLES`] with exactly its
    /// columns.
    fn begin_table(&mut self) -> Result<&'static Table> {
        let table = &TABLES[self.table];
        let Some(start) = self.next(true)? else {
            return Err(BackupError::Truncated(format!(
                "it ends after {} of {} tables",
                self.table,
                TABLES.len()
            )));
        };
        let name = start.get("table").and_then(Value::as_str);
        if name != Some(table.name) {
            return Err(self.malformed(format!(
                "expected table {:?} here, found {}",
                table.name,
                short(&start)
            )));
        }
        let columns: Vec<&str> = start
            .get("columns")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let expected: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
        if columns != expected {
            return Err(BackupError::Schema(format!(
                "line {}: table {} has columns {columns:?} in the backup, {expected:?} in this \
                 Keel's schema",
                self.line, table.name
            )));
        }
        self.table_rows = 0;
        Ok(table)
    }

    /// The next row of `table`, or its end (with `last_id`).
    fn next_item(&mut self, table: &'static Table) -> Result<Item> {
        let Some(line) = self.next(true)? else {
            return Err(BackupError::Truncated(format!(
                "table {} has no end",
                table.name
            )));
        };
        let footer = match line {
            Value::Array(values) => {
                self.table_rows += 1;
                return Ok(Item::Row(self.row(table, values)?));
            }
            Value::Object(_) => line,
            other => return Err(self.malformed(format!("unexpected {}", short(&other)))),
        };
        if footer.get("end").and_then(Value::as_str) != Some(table.name) {
            return Err(self.malformed(format!(
                "expected the end of table {:?}, found {}",
                table.name,
                short(&footer)
            )));
        }
        let count = footer.get("rows").and_then(Value::as_u64);
        if count != Some(self.table_rows) {
            return Err(self.malformed(format!(
                "table {} ends claiming {} rows, but {} were read",
                table.name,
                count.map_or("no number of".to_string(), |c| c.to_string()),
                self.table_rows
            )));
        }
        let last_id = match footer.get("last_id") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_i64()
                    .ok_or_else(|| self.malformed("last_id is not an integer"))?,
            ),
        };
        self.table += 1;
        self.rows_total += self.table_rows;
        Ok(Item::End { last_id })
    }

    /// After the last table: the trailer, its counts and hash, and nothing after it.
    pub(crate) fn trailer(&mut self) -> Result<()> {
        let digest = hex::encode(self.hasher.clone().finalize());
        let Some(t) = self.next(false)? else {
            return Err(BackupError::Truncated(
                "it ends after the last table, without its trailer".to_string(),
            ));
        };
        if t.get("end_backup").and_then(Value::as_bool) != Some(true) {
            return Err(self.malformed(format!("expected the trailer, found {}", short(&t))));
        }
        if t.get("tables").and_then(Value::as_u64) != Some(TABLES.len() as u64)
            || t.get("rows").and_then(Value::as_u64) != Some(self.rows_total)
        {
            return Err(self.malformed("the trailer's counts do not match the file"));
        }
        if t.get("sha256").and_then(Value::as_str) != Some(digest.as_str()) {
            return Err(self.malformed(
                "the SHA-256 of the file does not match its trailer: the file was changed or \
                 damaged",
            ));
        }
        if self.next(false)?.is_some() {
            return Err(self.malformed("data after the trailer"));
        }
        Ok(())
    }

    /// Checks one row against its table's columns.
    fn row(&self, table: &Table, values: Vec<Value>) -> Result<Vec<Val>> {
        if values.len() != table.columns.len() {
            return Err(self.malformed(format!(
                "a row of {} has {} values, not {}",
                table.name,
                values.len(),
                table.columns.len()
            )));
        }
        values
            .into_iter()
            .zip(table.columns)
            .map(|(v, (column, ty))| {
                decode_value(*ty, v)
                    .map_err(|why| self.malformed(format!("{}.{column}: {why}", table.name)))
            })
            .collect()
    }
}

fn decode_value(ty: Ty, v: Value) -> std::result::Result<Val, String> {
    let null = v.is_null();
    Ok(match ty {
        Ty::Int => Val::Int(if null {
            None
        } else {
            Some(
                v.as_i64()
                    .ok_or_else(|| format!("{} is not an integer", short(&v)))?,
            )
        }),
        Ty::Text => Val::Text(match v {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => return Err(format!("{} is not a string", short(&other))),
        }),
        Ty::Bool => Val::Bool(match v {
            Value::Null => None,
            Value::Bool(b) => Some(b),
            other => return Err(format!("{} is not true or false", short(&other))),
        }),
        Ty::Time => Val::Time(match v {
            Value::Null => None,
            Value::String(s) => Some(
                DateTime::parse_from_rfc3339(&s)
                    .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))?
                    .with_timezone(&Utc),
            ),
            other => return Err(format!("{} is not a time", short(&other))),
        }),
        Ty::Day => Val::Day(match v {
            Value::Null => None,
            Value::String(s) => Some(
                NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                    .map_err(|e| format!("{s:?} is not a YYYY-MM-DD day: {e}"))?,
            ),
            other => return Err(format!("{} is not a day", short(&other))),
        }),
    })
}

/// A JSON value shortened for an error message.
fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

/// "incidents: 3 rows, users: 1 row" for the tables that hold rows.
pub(crate) fn describe_counts(counts: &[(&str, i64)]) -> String {
    counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(t, n)| format!("{t}: {n} row{}", if *n == 1 { "" } else { "s" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The refusal for a target a live instance serves from.
pub(crate) fn in_use(live: &[String]) -> BackupError {
    BackupError::InUse(format!(
        "Keel instance{} {} {} serving from the target database (seen within the last {}s): \
         stop {} before restoring",
        if live.len() == 1 { "" } else { "s" },
        live.join(", "),
        if live.len() == 1 { "is" } else { "are" },
        LIVE_WITHIN.as_secs(),
        if live.len() == 1 { "it" } else { "them" },
    ))
}

pub(crate) fn live_cutoff_millis() -> i64 {
    Utc::now().timestamp_millis() - LIVE_WITHIN.as_millis() as i64
}
