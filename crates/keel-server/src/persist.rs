//! The persistence job: writes signals, source states and rollups to the store, in order.
//!
//! Checks never wait on the database: the hub hands events over a channel and this job writes
//! them. A failed write is retried with backoff rather than dropped, so a stalled database
//! delays storage but loses no state change.

use std::sync::Arc;
use std::time::Duration;

use keel_core::rollup::MinuteRollup;
use keel_core::Signal;
use keel_store::{SourceState, Store};
use tokio::sync::mpsc;

use crate::metrics::Metrics;

#[derive(Debug)]
pub enum PersistEvent {
    Signal {
        signal: Signal,
        state: Box<SourceState>,
    },
    /// A source's state changed without a signal (a failure being confirmed).
    State(Box<SourceState>),
    Rollups(Vec<MinuteRollup>),
    /// Answered once everything queued before it is written (graceful shutdown).
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// Runs until every sender is gone and the queue is drained.
pub async fn run(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<PersistEvent>,
    metrics: Arc<Metrics>,
) {
    while let Some(ev) = rx.recv().await {
        let ev = match ev {
            PersistEvent::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
            ev => ev,
        };
        let mut backoff = Duration::from_millis(100);
        // A signal whose append succeeded must not be appended again when only the state
        // write failed.
        let mut appended = false;
        loop {
            match write(store.as_ref(), &ev, &mut appended).await {
                Ok(()) => break,
                Err(e) => {
                    metrics.persist_error();
                    tracing::error!(error = %e, retry_in = ?backoff, "cannot write to the store; will retry");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }
}

async fn write(
    store: &dyn Store,
    ev: &PersistEvent,
    appended: &mut bool,
) -> keel_store::Result<()> {
    match ev {
        PersistEvent::Signal { signal, state } => {
            if !*appended {
                store.append_signal(signal).await?;
                *appended = true;
            }
            store.save_source_state(state).await
        }
        PersistEvent::State(state) => store.save_source_state(state).await,
        PersistEvent::Rollups(r) => store.add_rollups(r).await,
        PersistEvent::Barrier(_) => Ok(()),
    }
}
