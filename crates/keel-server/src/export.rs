//! Static export: the rendered public documents written as files, so the status page can be
//! hosted away from the infrastructure it reports on (any static file server or bucket).
//!
//! Files are written to a temporary name and renamed, so a web server reading the folder while
//! Keel re-exports never serves half a file.

use std::path::{Path, PathBuf};

use anyhow::Context;

use std::sync::Arc;

use chrono::Utc;
use keel_core::assess::SourceHealth;
use keel_core::config::Config;

use crate::book::IncidentBook;
use crate::rendered::{self, Rendered};

/// `keel export`: renders the public documents from what the store holds (incidents, the
/// last known state of every source, uptime) and writes them under `dir`.
pub async fn export(config: Config, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let config = Arc::new(config);
    let store = crate::store::open_store(&config).await?;
    let now = Utc::now();
    let book = IncidentBook::load(store.clone(), config.clone()).await?;
    let labels: std::collections::HashMap<&keel_core::MonitorId, &'static str> =
        config.monitors.iter().map(|m| (&m.id, m.kind())).collect();
    let sources: Vec<SourceHealth> = store
        .load_source_states()
        .await
        .context("cannot read the monitors' states")?
        .into_iter()
        .map(|s| SourceHealth {
            label: match &s.key {
                keel_core::SourceKey::Monitor { monitor, .. } => {
                    labels.get(monitor).copied().unwrap_or("http").to_string()
                }
                keel_core::SourceKey::Vendor(_) => "vendor".into(),
                keel_core::SourceKey::Intake { format, .. } => format.clone(),
            },
            source: s.key,
            node: s.component,
            health: s.tracker.health,
            since: s.tracker.since,
            reason: s.tracker.reason,
        })
        .collect();
    // Monitors checked from several locations are their quorum, as on the live page.
    let sources = crate::health::with_locations(book.graph(), sources);
    let inputs = rendered::load_inputs(store.as_ref(), &config, now.date_naive())
        .await
        .context("cannot read uptime")?;
    let health = keel_core::assess::fold_health(&sources);
    let snap = rendered::build_from(&config, &book, &health, &inputs, now).await;
    write_all(&rendered::render_all(snap), dir)
}

/// Writes every document under `dir`: `index.html` (first locale), `<locale>/index.html` for
/// each locale, and the JSON, feeds and badges at their URL paths. Returns the files written.
pub fn write_all(rendered: &Rendered, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    let main = rendered
        .snapshot
        .locales
        .first()
        .cloned()
        .unwrap_or_else(|| "en".into());
    for (locale, doc) in &rendered.pages {
        written.push(write(dir, &format!("{locale}/index.html"), &doc.body)?);
        if *locale == main {
            written.push(write(dir, "index.html", &doc.body)?);
        }
    }
    for (path, doc) in &rendered.files {
        written.push(write(dir, path.trim_start_matches('/'), &doc.body)?);
    }
    written.sort();
    Ok(written)
}

fn write(dir: &Path, rel: &str, body: &[u8]) -> anyhow::Result<PathBuf> {
    // Paths come from our own renderer, but never let one climb out of the folder.
    if rel.split('/').any(|p| p == ".." || p.is_empty()) {
        anyhow::bail!("refusing to export to {rel:?}");
    }
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("")
    ));
    std::fs::write(&tmp, body).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("cannot move {} into place", path.display()))?;
    Ok(path)
}
