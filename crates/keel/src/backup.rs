//! `keel backup` and `keel restore`: the whole store as one file, and back, across backends
//! (a SQLite deployment moves to PostgreSQL with these two). The format and what is kept are
//! in `keel_store::backup` and docs/backup.md.

use std::path::PathBuf;

use anyhow::Context;
use keel_core::config::Config;
use keel_store::backup::{self, Summary};

#[derive(clap::Args)]
pub struct BackupArgs {
    /// The config naming the database (`database_url`, or SQLite under `data_dir`).
    #[arg(long, short, env = "KEEL_CONFIG", default_value = "keel.toml")]
    config: PathBuf,
    /// The file to write (replaced only once the backup is complete).
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// The config naming the database to restore into (created and migrated if needed).
    #[arg(long, short, env = "KEEL_CONFIG", default_value = "keel.toml")]
    config: PathBuf,
    /// The backup file `keel backup` wrote.
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Replace what the target database holds (deleted in the same transaction that
    /// restores, so a failed restore keeps it).
    #[arg(long)]
    force: bool,
}

/// The database a config names, without creating anything (a backup reads only).
fn source_url(config: &Config) -> String {
    match &config.server.database_url {
        Some(url) => url.expose().to_string(),
        None => format!(
            "sqlite://{}",
            config.server.data_dir.join("keel.db").display()
        ),
    }
}

fn describe(summary: &Summary) -> String {
    format!(
        "{} tables, {} rows (from {}, schema level {}, Keel {}, taken {})",
        summary.tables.len(),
        summary.rows(),
        summary.source_backend,
        summary.schema_level,
        summary.keel_version,
        summary.created_at
    )
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let config = crate::cli::load(&args.config).map_err(|m| anyhow::anyhow!(m))?;
    let summary = backup::backup_to_file(&source_url(&config), &args.out)
        .await
        .with_context(|| format!("backup to {} failed", args.out.display()))?;
    println!("wrote {}: {}", args.out.display(), describe(&summary));
    Ok(())
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let config = crate::cli::load(&args.config).map_err(|m| anyhow::anyhow!(m))?;
    let url = keel_server::store::store_url(&config)?;
    let summary = backup::restore_from_file(&url, &args.input, args.force)
        .await
        .with_context(|| {
            format!(
                "restore of {} failed; nothing was restored and the target database keeps what it held",
                args.input.display()
            )
        })?;
    println!("restored {}: {}", args.input.display(), describe(&summary));
    Ok(())
}
