//! Backup and restore on PostgreSQL: one connection of its own, in the schema the URL's
//! `search_path` names (as the store's own connections).

use std::io::{BufRead, Write};
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{ConnectOptions, Connection, Row};

use super::{
    check_source_level, clear, day_to_json, in_use, load, max_id, time_to_json, write_header,
    BackupError, Hashing, Reader, Result, Summary, Table, Target, Ty, Val, LIVE_WITHIN, TABLES,
};
use crate::shared::redact_url;
use crate::StoreError;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

fn db_err(what: &str, e: sqlx::Error) -> BackupError {
    let message = match &e {
        sqlx::Error::Database(db) => db.message().to_string(),
        other => other.to_string(),
    };
    BackupError::Store(StoreError::Other(format!("PostgreSQL: {what}: {message}")))
}

async fn connect(url: &str) -> Result<PgConnection> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| {
            BackupError::Store(StoreError::Other(format!(
                "invalid PostgreSQL URL {}: {e}",
                redact_url(url)
            )))
        })?
        .application_name("keel-backup");
    let target = format!("{}:{}", options.get_host(), options.get_port());
    match tokio::time::timeout(CONNECT_TIMEOUT, options.connect()).await {
        Err(_) => Err(BackupError::Store(StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL at {target}: no answer within {}s",
            CONNECT_TIMEOUT.as_secs()
        )))),
        Ok(Err(e)) => Err(BackupError::Store(StoreError::Unavailable(format!(
            "cannot connect to PostgreSQL at {target}: {e}"
        )))),
        Ok(Ok(conn)) => Ok(conn),
    }
}

async fn migration_level(conn: &mut PgConnection) -> Result<Option<i64>> {
    let (exists,): (bool,) = sqlx::query_as("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| db_err("reading the schema", e))?;
    if !exists {
        return Ok(None);
    }
    let (level,): (Option<i64>,) =
        sqlx::query_as("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| db_err("reading the schema level", e))?;
    Ok(level)
}

/// `ORDER BY` in byte order, as SQLite sorts text, so both backends write the same file.
fn order_by(table: &Table) -> String {
    table
        .key
        .iter()
        .map(|k| {
            let text = table.columns.iter().any(|(c, t)| c == k && *t == Ty::Text);
            if text {
                format!("{k} COLLATE \"C\"")
            } else {
                (*k).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) async fn backup<W: Write + Send>(url: &str, out: &mut Hashing<W>) -> Result<Summary> {
    let mut conn = connect(url).await?;
    // One snapshot for every table: REPEATABLE READ takes it at the first query.
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut conn)
        .await
        .map_err(|e| db_err("starting the read transaction", e))?;
    let result = backup_in(&mut conn, out).await;
    let _ = sqlx::query("ROLLBACK").execute(&mut conn).await;
    let _ = conn.close().await;
    result
}

async fn backup_in<W: Write + Send>(
    conn: &mut PgConnection,
    out: &mut Hashing<W>,
) -> Result<Summary> {
    let level = check_source_level(migration_level(conn).await?)?;
    let created_at = write_header(out, "postgres")?;
    let mut tables = Vec::new();
    for table in TABLES {
        out.begin_table(table)?;
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {}",
            table.column_list(),
            table.name,
            order_by(table)
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
        if let Some(identity) = table.identity {
            // Sequences are not transactional: this may be ahead of the snapshot's rows,
            // which only means a restored database skips a few ids.
            let (counter,): (Option<i64>,) = sqlx::query_as(
                "SELECT pg_sequence_last_value(pg_get_serial_sequence($1, $2)::regclass)",
            )
            .bind(table.name)
            .bind(identity)
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| db_err(&format!("reading the id sequence of {}", table.name), e))?;
            if let Some(c) = counter {
                last_id = Some(last_id.map_or(c, |l: i64| l.max(c)));
            }
        }
        out.end_table(table, rows, last_id)?;
        tables.push((table.name.to_string(), rows));
    }
    Ok(Summary {
        source_backend: "postgres".to_string(),
        keel_version: env!("CARGO_PKG_VERSION").to_string(),
        schema_level: level,
        created_at,
        tables,
    })
}

fn encode_row(table: &Table, row: &PgRow) -> Result<Vec<Value>> {
    let bad = |c: &str, e: &dyn std::fmt::Display| {
        BackupError::Store(StoreError::Other(format!(
            "PostgreSQL: {}.{c} is unreadable: {e}",
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
                Ty::Text => row
                    .try_get::<Option<String>, _>(i)
                    .map_err(|e| bad(c, &e))?
                    .map_or(Value::Null, Value::from),
                Ty::Bool => row
                    .try_get::<Option<bool>, _>(i)
                    .map_err(|e| bad(c, &e))?
                    .map_or(Value::Null, Value::Bool),
                Ty::Day => row
                    .try_get::<Option<NaiveDate>, _>(i)
                    .map_err(|e| bad(c, &e))?
                    .map_or(Value::Null, day_to_json),
                Ty::Time => row
                    .try_get::<Option<DateTime<Utc>>, _>(i)
                    .map_err(|e| bad(c, &e))?
                    .map_or(Value::Null, time_to_json),
            })
        })
        .collect()
}

pub(super) async fn restore<R: BufRead + Send>(
    url: &str,
    reader: &mut Reader<R>,
    mut summary: Summary,
    force: bool,
) -> Result<Summary> {
    // The store's own open migrates the target to this Keel's schema.
    let store = crate::postgres::PgStore::open(url).await?;
    store.close().await;
    let mut conn = connect(url).await?;
    sqlx::query("BEGIN")
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
    conn: &mut PgConnection,
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
    // Nobody else writes these tables until the restore commits (or rolls back).
    let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
    sqlx::query(&format!(
        "LOCK TABLE {} IN EXCLUSIVE MODE",
        names.join(", ")
    ))
    .execute(&mut *conn)
    .await
    .map_err(|e| db_err("locking the tables", e))?;
    // The server's clock, as instances' heartbeats are written with it.
    let live: Vec<(String,)> = sqlx::query_as(
        "SELECT id FROM instances WHERE seen_at >= now() - $1 * interval '1 millisecond'",
    )
    .bind(LIVE_WITHIN.as_millis() as f64)
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| db_err("reading instances", e))?;
    if !live.is_empty() {
        return Err(in_use(&live.into_iter().map(|(i,)| i).collect::<Vec<_>>()));
    }
    let mut target = PgTarget { conn };
    clear(&mut target, force).await?;
    load(reader, summary, &mut target).await
}

struct PgTarget<'c> {
    conn: &'c mut PgConnection,
}

#[async_trait::async_trait]
impl Target for PgTarget<'_> {
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
        let width = table.columns.len();
        let values = (0..rows.len())
            .map(|r| {
                let cells = (1..=width)
                    .map(|c| format!("${}", r * width + c))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("({cells})")
            })
            .collect::<Vec<_>>()
            .join(", ");
        let overriding = if table.identity.is_some() {
            " OVERRIDING SYSTEM VALUE"
        } else {
            ""
        };
        let sql = format!(
            "INSERT INTO {} ({}){overriding} VALUES {values}",
            table.name,
            table.column_list()
        );
        let mut query = sqlx::query(&sql);
        for row in rows {
            for v in row {
                query = match v {
                    Val::Int(v) => query.bind(*v),
                    Val::Text(v) => query.bind(v.clone()),
                    Val::Time(v) => query.bind(*v),
                    Val::Day(v) => query.bind(*v),
                    Val::Bool(v) => query.bind(*v),
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
        let Some(identity) = table.identity else {
            return Ok(());
        };
        // setval(seq, n, true): the next id is n + 1; setval(seq, 1, false): the next is 1.
        let (value, called) = match last {
            Some(n) if n >= 1 => (n, true),
            _ => (1, false),
        };
        sqlx::query("SELECT setval(pg_get_serial_sequence($1, $2), $3, $4)")
            .bind(table.name)
            .bind(identity)
            .bind(value)
            .bind(called)
            .execute(&mut *self.conn)
            .await
            .map_err(|e| db_err(&format!("setting the id sequence of {}", table.name), e))?;
        Ok(())
    }
}
