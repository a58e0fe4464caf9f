//! Following the other instances: the store's change feed folds what any instance wrote into
//! this one's book, hub and heartbeat table, so every instance answers the same within moments
//! of a change — without re-reading the whole book: an incident's new events are read by seq,
//! a source's state by key.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use keel_core::incident::IncidentId;
use keel_core::SourceKey;
use keel_probe::scheduler::Heartbeats;
use keel_store::{Change, Store};
use tokio_util::sync::CancellationToken;

use crate::book::IncidentBook;
use crate::hub::SignalHub;

/// Runs until stopped. Without a feed (SQLite: one instance) it has nothing to do but wait.
pub async fn run(
    store: Arc<dyn Store>,
    book: Arc<IncidentBook>,
    hub: Arc<SignalHub>,
    heartbeats: Arc<Heartbeats>,
    stop: CancellationToken,
) {
    let mut backoff = Duration::from_millis(200);
    let mut feed = loop {
        match store.changes().await {
            Ok(Some(feed)) => break feed,
            Ok(None) => return stop.cancelled().await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for other instances' changes; will retry");
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    };
    // Whatever was written between loading and listening.
    catch_up(store.as_ref(), &book, &hub, &heartbeats).await;
    loop {
        let first = tokio::select! {
            _ = stop.cancelled() => return,
            got = feed.recv() => match got {
                Some(c) => c,
                None => return,
            },
        };
        // Whatever else is already waiting is handled together: thousands of monitors
        // changing at once (a start, a shared outage) cost one read, not one per monitor.
        let mut batch = vec![first];
        while batch.len() < 10_000 {
            match feed.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        apply(store.as_ref(), &book, &hub, &heartbeats, batch).await;
    }
}

async fn apply(
    store: &dyn Store,
    book: &IncidentBook,
    hub: &SignalHub,
    heartbeats: &Heartbeats,
    batch: Vec<Change>,
) {
    let mut incidents: BTreeMap<IncidentId, u32> = BTreeMap::new();
    let mut sources: HashSet<SourceKey> = HashSet::new();
    for change in batch {
        match change {
            Change::Incident { id, seq } => {
                let s = incidents.entry(id).or_default();
                *s = (*s).max(seq);
            }
            Change::Source { key } => {
                sources.insert(key);
            }
            Change::Heartbeat { monitor, at } => heartbeats.record(&monitor, at),
            Change::Reconnected => {
                tracing::info!("listening for other instances' changes again; catching up");
                catch_up(store, book, hub, heartbeats).await;
                return;
            }
        }
    }
    for (id, seq) in incidents {
        if let Err(e) = book.catch_up(id, Some(seq)).await {
            tracing::warn!(incident = %id, error = %e, "cannot read another instance's incident events");
        }
    }
    if sources.is_empty() {
        return;
    }
    // One read for the whole batch, of just the sources named: reading every state instead
    // made each batch cost the whole table while thousands of monitors started.
    let keys: Vec<SourceKey> = sources.into_iter().collect();
    match store.source_states_of(&keys).await {
        Ok(states) => states.iter().for_each(|s| hub.apply_remote(s)),
        Err(e) => tracing::warn!(error = %e, "cannot read other instances' source states"),
    }
}

/// Reads what the feed may have missed: each incident's last seq (one row per incident), and
/// the sources' and heartbeats' latest states.
async fn catch_up(
    store: &dyn Store,
    book: &IncidentBook,
    hub: &SignalHub,
    heartbeats: &Heartbeats,
) {
    if let Err(e) = book.catch_up_all().await {
        tracing::warn!(error = %e, "cannot catch up on incidents");
    }
    match store.load_source_states().await {
        Ok(states) => {
            for s in &states {
                hub.apply_remote(s);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot catch up on source states"),
    }
    match store.heartbeats().await {
        Ok(beats) => {
            for (m, at) in beats {
                heartbeats.record(&m, at);
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot catch up on heartbeat pushes"),
    }
}
