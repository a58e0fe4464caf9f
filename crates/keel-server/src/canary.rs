//! The canary grace's alarm clock.
//!
//! Correlation holds a new incident that Keel's own blindness could explain until the grace
//! is over (`keel_core::incident::canary_hold`, `[incidents] canary_grace`). The incident job
//! only correlates when a signal arrives or while an incident is open, so a held failure with
//! nothing else going on would wait for the next signal, which a steady outage never sends.
//! This task watches the published health view and, when a held cause falls due, runs the
//! same reassessment the incident job runs (as the leader only; the book serializes the two,
//! and correlation is idempotent, so running it twice plans nothing twice).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use keel_core::config::Config;
use keel_core::incident::{next_canary_hold, Settings};
use tokio_util::sync::CancellationToken;

use crate::book::{self, IncidentBook};
use crate::cluster::Cluster;

/// Runs until `stop`; idle when there is nothing to wait for (no canary in the graph, or no
/// grace).
pub async fn run(
    config: Arc<Config>,
    book: Arc<IncidentBook>,
    cluster: Arc<Cluster>,
    stop: CancellationToken,
) {
    let settings = Settings::from(&config.incidents);
    if settings.canary_grace.is_zero() || book.graph().canaries().next().is_none() {
        // Waiting, not returning: a job that returns before `stop` counts as dead.
        return stop.cancelled().await;
    }
    let mut views = book.subscribe_health();
    loop {
        let view = views.borrow_and_update().clone();
        let now = Utc::now();
        let Some(due) = next_canary_hold(&view.assessment, now, &settings) else {
            tokio::select! {
                _ = stop.cancelled() => return,
                changed = views.changed() => if changed.is_err() { return },
            }
            continue;
        };
        // A moment past due: correlation opens when `now` is no longer before it.
        let wait = (due - now).to_std().unwrap_or_default() + Duration::from_millis(5);
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = views.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            () = tokio::time::sleep(wait) => {}
        }
        let Some(fence) = cluster.leader_fence() else {
            continue;
        };
        if let Err(e) = book.reassess(&book.health(), Utc::now(), &fence).await {
            book::written_elsewhere(&book, &cluster, e).await;
        }
    }
}
