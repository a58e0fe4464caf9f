//! Backup and restore on SQLite: one connection of its own, next to a serving Keel.

use std::io::{BufRead, Write};
use std::path::Path;
use std::time::Duration;

use futures::TryStreamExt;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{ConnectOptions, Connection, Row};

use super::{
    check_source_level, clear, in_use, live_cutoff_millis, load, max_id, time_to_json,
    write_header, BackupError, Hashing, Reader, Result, Summary, Table, Target, Ty, Val, TABLES,
};
use crate::shared::from_millis;
use crate::StoreError;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

fn db_err(what: &str, e: sqlx::Error) -> BackupError {
    let message = match &e {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    };
    BackupError::Store(StoreError::Other(format!("SQLite: {what}: {message}")))
}

async fn connect(path: &Path, create: bool) -> Result<SqliteConnection> {
    if !create && !path.exists() {
        return Err(BackupError::Store(StoreError::Unavailable(format!(
            "no SQLite database at {}",
            path.display()
        ))));
    }
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(create)
        .busy_timeout(BUSY_TIMEOUT)
        .foreign_keys(true)
        .connect()
        .await
        .map_err(|e| {
            BackupError::Store(StoreError::Unavailable(format!(
                "cannot open SQLite database at {}: {e}",
                path.display()
            )))
        })
}

async fn migration_level(conn: &mut SqliteConnection) -> Result<Option<i64>> {
    let exists: Option<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
    )
    .fetch_optional(&mut *conn)
    .await
    .map_err(|e| db_err("reading the schema", e))?;
    if exists.is_none() {
        return Ok(None);
    }
    let (level,): (Option<i64>,) =
        sqlx::query_as("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| db_err("reading the schema level", e))?;
    Ok(level)
}

pub(super) async fn backup<W: Write + Send>(path: &str, out: &mut Hashing<W>) -> Result<Summary> {
    let mut conn = connect(Path::new(path), false).await?;
    // One deferred read transaction: its first read fixes the WAL snapshot every later read
    // of this backup sees, whatever a serving Keel commits meanwhile.
    sqlx::query("BEGIN DEFERRED")
        .execute(&mut conn)
        .await
        .map_err(|e| db_err("starting the read transaction", e))?;
    let result = backup_in(&mut conn, out).await;
    let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
    let _ = conn.close().await;
    result
}

async fn backup_in<W: Write + Send>(
    conn: &mut SqliteConnection,
    out: &mut Hashing<W>,
) -> Result<Summary> {
    let level = check_source_level(migration_level(conn).await?)?;
    let created_at = write_header(out, "sqlite")?;
    let mut tables = Vec::new();
    for table in TABLES {
        out.begin_table(table)?;
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            table.column_list(),
            table.name,
            table.key.join(", ")
        );
        let mut rows = 0u64;
        let mut last_id = None;
        {
            let mut stream = sqlx::query(&sql).fetch(&mut *conn);
            while let Some(row) = stream
                .try_next()
                .await
                .map_err(|e| db_err(&format!("reading {}", table.name), e))?
            {
                let values = encode_row(table, &row)?;
                last_id = max_id(table, &values, last_id);
                out.line(&Value::Array(values))?;
                rows += 1;
            }
        }
        if table.identity.is_some() {
            let counter: Option<(i64,)> =
                sqlx::query_as("SELECT seq FROM sqlite_sequence WHERE name = ?")
                    .bind(table.name)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(|e| db_err("reading sqlite_sequence", e))?;
            if let Some((c,)) = counter {
                last_id = Some(last_id.map_or(c, |l: i64| l.max(c)));
            }
        }
        out.end_table(table, rows, last_id)?;
        tables.push((table.name.to_string(), rows));
    }
    Ok(Summary {
        source_backend: "sqlite".to_string(),
        keel_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_level: level,
        created_at,
        tables,
    })
}

fn encode_row(table: &Table, row: &SqliteRow) -> Result<Vec<Value>> {
    let bad = |c: &str, e: &dyn std::fmt::Display| {
        BackupError::Store(StoreError::Other(format!(
            "SQLite: {}.{c} is unreadable: {e}",
            table.name
        )))
    };
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (c, ty))| {
            Ok(match ty {
                Ty::Int => row
                    .try_get::<Option<i64>, _>(i)
                    .map_err(|e| bad(c, &e))?
                    .map_or(Value::Null, Value::from),
                Ty::Text | Ty::Day => row
                    .try_get::<Option<String>, _>(i)
                    .map_err(|e| bad(c, &e))?
                    .map_or(Value::Null, Value::from),
                Ty::Bool => row
                    .try_get::<Option<i64>, _>(i)
                    .map_err(|e| bad(c, &e))?
                    .map_or(Value::Null, |v| Value::Bool(v != 0)),
                Ty::Time => match row.try_get::<Option<i64>, _>(i).map_err(|e| bad(c, &e))? {
                    None => Value::Null,
                    Some(ms) => time_to_json(from_millis(ms).map_err(|e| bad(c, &e))?),
                },
            })
        })
        .collect()
}

pub(super) async fn restore<R: BufRead + Send>(
    path: &str,
    reader: &mut Reader<R>,
    mut summary: Summary,
    force: bool,
) -> Result<Summary> {
    // The store's own open creates the file and migrates it to this Keel's schema.
    let store = crate::sqlite::SqliteStore::open(path).await?;
    store.close().await;
    let mut conn = connect(Path::new(path), true).await?;
    // IMMEDIATE: the write lock from the start, so nothing else writes between the emptiness
    // check and the commit.
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut conn)
        .await
        .map_err(|e| db_err("starting the restore transaction", e))?;
    let result = restore_in(&mut conn, reader, &mut summary, force).await;
    let finished = match result {
        Ok(()) => sqlx::query("COMMIT")
            .execute(&mut conn)
            .await
            .map(|_| ())
            .map_err(|e| db_err("committing the restore", e)),
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
            Err(e)
        }
    };
    let _ = conn.close().await;
    finished.map(|()| summary)
}

async fn restore_in<R: BufRead + Send>(
    conn: &mut SqliteConnection,
    reader: &mut Reader<R>,
    summary: &mut Summary,
    force: bool,
) -> Result<()> {
    let level = migration_level(conn).await?;
    if level != Some(super::schema_level()) {
        return Err(BackupError::Schema(format!(
            "the target database is at schema level {level:?}, this Keel at {}",
            super::schema_level()
        )));
    }
    let live: Vec<(String,)> = sqlx::query_as("SELECT id FROM instances WHERE seen_at >= ?")
        .bind(live_cutoff_millis())
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| db_err("reading instances", e))?;
    if !live.is_empty() {
        return Err(in_use(&live.into_iter().map(|(i,)| i).collect::<Vec<_>>()));
    }
    let mut target = SqliteTarget { conn };
    clear(&mut target, force).await?;
    load(reader, summary, &mut target).await
}

struct SqliteTarget<'c> {
    conn: &'c mut SqliteConnection,
}

#[async_trait::async_trait]
impl Target for SqliteTarget<'_> {
    async fn count(&mut self, table: &'static Table) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(&format!("SELECT count(*) FROM {}", table.name))
            .fetch_one(&mut *self.conn)
            .await
            .map_err(|e| db_err(&format!("counting {}", table.name), e))?;
        Ok(n)
    }

    async fn empty(&mut self, table: &'static Table) -> Result<()> {
        sqlx::query(&format!("DELETE FROM {}", table.name))
            .execute(&mut *self.conn)
            .await
            .map_err(|e| db_err(&format!("emptying {}", table.name), e))?;
        Ok(())
    }

    async fn insert(&mut self, table: &'static Table, rows: &[Vec<Val>]) -> Result<()> {
        let one = format!("({})", vec!["?"; table.columns.len()].join(", "));
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            table.name,
            table.column_list(),
            vec![one.as_str(); rows.len()].join(", ")
        );
        let mut query = sqlx::query(&sql);
        for row in rows {
            for v in row {
                query = match v {
                    Val::Int(v) => query.bind(*v),
                    Val::Text(v) => query.bind(v.clone()),
                    Val::Time(v) => query.bind(v.map(|t| t.timestamp_millis())),
                    Val::Day(v) => query.bind(v.map(|d| d.format("%Y-%m-%d").to_string())),
                    Val::Bool(v) => query.bind(v.map(i64::from)),
                };
            }
        }
        query
            .execute(&mut *self.conn)
            .await
            .map_err(|e| db_err(&format!("restoring {}", table.name), e))?;
        Ok(())
    }

    async fn set_counter(&mut self, table: &'static Table, last: Option<i64>) -> Result<()> {
        sqlx::query("DELETE FROM sqlite_sequence WHERE name = ?")
            .bind(table.name)
            .execute(&mut *self.conn)
            .await
            .map_err(|e| db_err("setting sqlite_sequence", e))?;
        if let Some(last) = last {
            sqlx::query("INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)")
                .bind(table.name)
                .bind(last)
                .execute(&mut *self.conn)
                .await
                .map_err(|e| db_err("setting sqlite_sequence", e))?;
        }
        Ok(())
    }
}
