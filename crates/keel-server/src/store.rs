//! The store a config names, opened: by `keel serve` and by every command that reads or
//! writes Keel's data directly (export, backup, tokens, users).

use std::sync::Arc;

use anyhow::Context;
use keel_core::config::Config;
use keel_store::Store;

/// The store URL a config names: `database_url`, or SQLite under `data_dir`.
pub fn store_url(config: &Config) -> anyhow::Result<String> {
    if let Some(url) = &config.server.database_url {
        return Ok(url.expose().to_string());
    }
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create data_dir {}", dir.display()))?;
    Ok(format!("sqlite://{}", dir.join("keel.db").display()))
}

/// Opens the configured store, with a message that says which one failed.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = store_url(config)?;
    keel_store::open(&url).await.map_err(|e| anyhow::anyhow!(e))
}
