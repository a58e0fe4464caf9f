//! The persistence job: writes signals, source states and rollups to the store, in order.
//!
//! Checks never wait on the database: the hub hands events over a channel and this job writes
//! them. A failed write is retried with backoff rather than dropped, so a stalled database
//! delays storage but loses no state change.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use keel_core::rollup::MinuteRollup;
use keel_core::{Signal, SourceKey};
use keel_store::{SignalStore, SourceState};
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

/// Signals and states written in one transaction at most; a start of 30,000 monitors is then
/// 30 commits, and no transaction grows without bound.
const MAX_BATCH: usize = 1000;

/// Runs until every sender is gone and the queue is drained.
pub async fn run(
    store: Arc<dyn SignalStore>,
    mut rx: mpsc::UnboundedReceiver<PersistEvent>,
    metrics: Arc<Metrics>,
) {
    let mut next = None;
    loop {
        let ev = match next.take() {
            Some(ev) => ev,
            None => match rx.recv().await {
                Some(ev) => ev,
                None => return,
            },
        };
        let write = match ev {
            PersistEvent::Barrier(done) => {
                let _ = done.send(());
                continue;
            }
            PersistEvent::Rollups(r) => Write::Rollups(r),
            ev => {
                // What is already queued behind a state change goes in the same transaction:
                // one commit per burst instead of two per signal, so a start (every monitor
                // going from unknown to up) or a shared outage is written in moments.
                let mut batch = Batch::default();
                batch.push(ev);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(ev @ (PersistEvent::Signal { .. } | PersistEvent::State(_))) => {
                            batch.push(ev)
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                Write::Batch(batch)
            }
        };
        let mut backoff = Duration::from_millis(100);
        // The batch is one transaction, so a failed attempt wrote nothing and is safe to retry.
        while let Err(e) = write.to(store.as_ref()).await {
            metrics.persist_error();
            tracing::error!(error = %e, retry_in = ?backoff, "cannot write to the store; will retry");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}

enum Write {
    Batch(Batch),
    Rollups(Vec<MinuteRollup>),
}

impl Write {
    async fn to(&self, store: &dyn SignalStore) -> keel_store::Result<()> {
        match self {
            Write::Batch(b) => store.save_signals_and_states(&b.signals, &b.states).await,
            Write::Rollups(r) => store.add_rollups(r).await,
        }
    }
}

/// Signals in order, and each source's latest state once.
#[derive(Default)]
struct Batch {
    signals: Vec<Signal>,
    states: Vec<SourceState>,
    index: HashMap<SourceKey, usize>,
}

impl Batch {
    fn len(&self) -> usize {
        self.signals.len() + self.states.len()
    }

    fn push(&mut self, ev: PersistEvent) {
        let state = match ev {
            PersistEvent::Signal { signal, state } => {
                self.signals.push(signal);
                state
            }
            PersistEvent::State(state) => state,
            PersistEvent::Rollups(_) | PersistEvent::Barrier(_) => return,
        };
        match self.index.entry(state.key.clone()) {
            Entry::Occupied(at) => self.states[*at.get()] = *state,
            Entry::Vacant(v) => {
                v.insert(self.states.len());
                self.states.push(*state);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use keel_core::confirm::Tracker;
    use keel_core::Health;

    use super::*;

    fn key(id: &str) -> SourceKey {
        SourceKey::monitor(keel_core::MonitorId::parse(id).unwrap())
    }

    fn state(id: &str, health: Health) -> SourceState {
        let mut tracker = Tracker::new(Utc.timestamp_opt(1_700_000_000, 0).unwrap());
        tracker.health = health;
        SourceState {
            key: key(id),
            component: keel_core::NodeId::parse("api").unwrap(),
            tracker,
        }
    }

    fn signal(id: &str, health: Health) -> Signal {
        Signal {
            source: key(id),
            component: keel_core::NodeId::parse("api").unwrap(),
            health,
            reason: "test".into(),
            at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        }
    }

    #[test]
    fn a_batch_keeps_every_signal_in_order_and_each_sources_latest_state() {
        let mut b = Batch::default();
        for (id, h) in [("a", Health::Down), ("b", Health::Up), ("a", Health::Up)] {
            b.push(PersistEvent::Signal {
                signal: signal(id, h),
                state: Box::new(state(id, h)),
            });
        }
        b.push(PersistEvent::State(Box::new(state("c", Health::Up))));
        let order: Vec<_> = b
            .signals
            .iter()
            .map(|s| (s.source.id(), s.health))
            .collect();
        assert_eq!(
            order,
            [("a", Health::Down), ("b", Health::Up), ("a", Health::Up)]
                .map(|(id, h)| (id.to_string(), h))
        );
        let states: Vec<_> = b
            .states
            .iter()
            .map(|s| (s.key.id(), s.tracker.health))
            .collect();
        assert_eq!(
            states,
            [("a", Health::Up), ("b", Health::Up), ("c", Health::Up)]
                .map(|(id, h)| (id.to_string(), h))
        );
    }

    #[tokio::test]
    async fn queued_changes_are_written_and_a_barrier_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("keel.db").display());
        let store = keel_store::open(&url).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let job = tokio::spawn(run(store.clone(), rx, Arc::new(Metrics::default())));
        for i in 0..2500 {
            let id = format!("m{i}");
            tx.send(PersistEvent::Signal {
                signal: signal(&id, Health::Up),
                state: Box::new(state(&id, Health::Up)),
            })
            .unwrap();
        }
        tx.send(PersistEvent::State(Box::new(state("m7", Health::Down))))
            .unwrap();
        let (done, wait) = tokio::sync::oneshot::channel();
        tx.send(PersistEvent::Barrier(done)).unwrap();
        wait.await.unwrap();
        assert_eq!(store.signals_after(0, 10_000).await.unwrap().len(), 2500);
        let states = store.load_source_states().await.unwrap();
        assert_eq!(states.len(), 2500);
        let m7 = states.iter().find(|s| s.key.id() == "m7").unwrap();
        assert_eq!(m7.tracker.health, Health::Down);
        drop(tx);
        job.await.unwrap();
    }
}
