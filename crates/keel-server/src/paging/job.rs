//! The escalation job: on every incident change and once a second, asks the pure engine what
//! each unresolved incident's escalation needs now, stores those events through the book, and
//! queues one outbox row per page and contact.
//!
//! Everything the job knows between passes is on the timelines (which levels fired, who
//! acknowledged), so a restart resumes on time: a kill -9 between level 1 and level 2 leaves
//! level 1's `Paged` events stored, and the first pass after the restart fires level 2 when it
//! falls due. Pages queued in the last hour are queued again at start, for a crash between
//! storing a `Paged` event and its outbox rows; their idempotency keys make that harmless.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use keel_core::config::Config;
use keel_core::escalation;
use keel_core::incident::{EventKind, Incident, IncidentEvent};
use keel_store::{Fence, NewOutboxItem, OutboxStore, Store, TeamStore};
use tokio::sync::{broadcast, Notify};
use tokio_util::sync::CancellationToken;

use super::link::SECRET_NAME;
use super::pages::rows_for_page;
use super::roster::TeamRoster;
use crate::book::IncidentBook;
use crate::cluster::Cluster;
use crate::secrets::Secrets;

/// How far back overrides are read: a level due while Keel was down is judged by who was
/// on call when it fell due.
const OVERRIDE_LOOKBACK: chrono::TimeDelta = chrono::TimeDelta::days(2);

/// Runs until stopped.
pub async fn run(
    config: Arc<Config>,
    secrets: Arc<Secrets>,
    store: Arc<dyn Store>,
    book: Arc<IncidentBook>,
    wake: Arc<Notify>,
    cluster: Arc<Cluster>,
    stop: CancellationToken,
) {
    if config.escalations.is_empty() {
        // Waiting, not returning: a job that returns before `stop` counts as dead.
        return stop.cancelled().await;
    }
    let mut changes = book.subscribe();
    let Some(secret) = shared_secret(store.as_ref(), &stop).await else {
        return;
    };
    let mut leading = false;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
            got = changes.recv() => {
                if let Err(broadcast::error::RecvError::Closed) = got {
                    return;
                }
                // Several changes at once need one pass.
                while changes.try_recv().is_ok() {}
            }
        }
        let Some(fence) = cluster.leader_fence() else {
            leading = false;
            continue;
        };
        if !leading {
            // A new leader (or a restarted one) queues the last hour's pages again: the
            // previous one may have died between storing a page and queueing it.
            leading = true;
            let since = Utc::now() - chrono::TimeDelta::hours(1);
            let rows: Vec<NewOutboxItem> = book
                .paged_since(since)
                .await
                .iter()
                .flat_map(|(inc, ev)| {
                    rows_for_page(&config, &secrets, &secret, inc, ev, Utc::now())
                })
                .collect();
            enqueue(store.as_ref(), &rows, &wake, &stop).await;
        }
        if !book.has_unresolved().await {
            continue;
        }
        if let Err(e) = pass(
            (&config, &secrets, &secret),
            store.as_ref(),
            &book,
            &wake,
            &fence,
            &stop,
        )
        .await
        {
            match e.downcast::<crate::book::BookError>() {
                Ok(e) => crate::book::written_elsewhere(&book, &cluster, e).await,
                Err(e) => tracing::error!(error = %e, "escalation pass failed; will retry"),
            }
        }
    }
}

/// One pass: plan, store, queue.
async fn pass(
    (config, secrets, secret): (&Config, &Secrets, &str),
    store: &dyn Store,
    book: &IncidentBook,
    wake: &Notify,
    fence: &Fence,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let now = Utc::now();
    let overrides = store.overrides(None, now - OVERRIDE_LOOKBACK).await?;
    let roster = TeamRoster::new(config, overrides);
    let appended = book
        .escalate(
            |inc: &Incident| {
                escalation::policy_for(&config.escalations, inc)
                    .map(|policy| escalation::plan(inc, policy, &roster, now))
                    .unwrap_or_default()
            },
            fence,
        )
        .await?;
    let rows: Vec<NewOutboxItem> = appended
        .iter()
        .flat_map(|(inc, events)| {
            events
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Paged { .. }))
                .flat_map(|e| rows_for_page(config, secrets, secret, inc, e, now))
        })
        .collect();
    for (inc, events) in &appended {
        for e in events {
            log_event(inc, e);
        }
    }
    enqueue(store, &rows, wake, stop).await;
    Ok(())
}

fn log_event(inc: &Incident, e: &IncidentEvent) {
    match &e.kind {
        EventKind::Paged {
            level,
            round,
            person,
            contacts,
            ..
        } => tracing::warn!(
            incident = %inc.id, level, round, %person, contacts = ?contacts, "paged"
        ),
        EventKind::EscalationExhausted { .. } => tracing::error!(
            incident = %inc.id,
            "escalation exhausted: nobody acknowledged"
        ),
        _ => {}
    }
}

/// Queues rows, retrying while the store fails: a page is never dropped for a passing fault.
async fn enqueue(
    store: &dyn OutboxStore,
    rows: &[NewOutboxItem],
    wake: &Notify,
    stop: &CancellationToken,
) {
    if rows.is_empty() {
        return;
    }
    let mut backoff = Duration::from_millis(100);
    loop {
        match store.enqueue(rows).await {
            Ok(_) => {
                wake.notify_one();
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, pages = rows.len(), "cannot queue pages; will retry");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// The links' signing key, retried until the store answers (no page goes out unsigned).
async fn shared_secret(store: &dyn TeamStore, stop: &CancellationToken) -> Option<String> {
    let mut backoff = Duration::from_millis(100);
    loop {
        match store.shared_secret(SECRET_NAME).await {
            Ok(s) => return Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot read the acknowledge links' key; will retry");
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// When an acknowledge link made at `at` stops working.
pub fn link_expiry(config: &Config, at: DateTime<Utc>) -> DateTime<Utc> {
    at + chrono::TimeDelta::from_std(config.paging.ack_link_ttl)
        .unwrap_or(chrono::TimeDelta::hours(24))
}
