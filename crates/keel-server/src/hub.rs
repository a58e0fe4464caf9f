//! The signal hub: where every raw outcome (monitor check, vendor poll, intake alert, heartbeat
//! push) is confirmed into health changes.
//!
//! Each confirmed change becomes one [`Signal`]: broadcast in-process at once (the incident
//! book's correlation job subscribes) and handed to the persistence job, which stores it with
//! the source's new state. Results are also folded into per-minute rollups here, so the store
//! sees one row per monitor per minute instead of one per check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use keel_core::confirm::{Observation, Tracker};
use keel_core::rollup::{minute_of, RollupBuilder};
use keel_core::{Health, NodeId, Signal, SourceKey, SourceKind};
use keel_probe::source::{Sink, Source};
use keel_store::SourceState;
use tokio::sync::{broadcast, mpsc};

use crate::metrics::Metrics;
use crate::persist::PersistEvent;
use crate::source_view::SourceView;

struct Entry {
    component: NodeId,
    /// "http", "tcp", …, "vendor", "alertmanager", "generic".
    label: String,
    tracker: Tracker,
    rollup: Option<RollupBuilder>,
}

pub struct SignalHub {
    entries: Mutex<HashMap<SourceKey, Entry>>,
    persist: mpsc::UnboundedSender<PersistEvent>,
    signals: broadcast::Sender<Signal>,
    metrics: Arc<Metrics>,
}

impl SignalHub {
    pub fn new(persist: mpsc::UnboundedSender<PersistEvent>, metrics: Arc<Metrics>) -> Self {
        let (signals, _) = broadcast::channel(4096);
        SignalHub {
            entries: Mutex::new(HashMap::new()),
            persist,
            signals,
            metrics,
        }
    }

    /// Subscribes to confirmed signals as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Signal> {
        self.signals.subscribe()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SourceKey, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a configured source, restoring its stored state so a restart does not
    /// re-alert an outage that is already known.
    pub fn register(
        &self,
        key: &SourceKey,
        component: &NodeId,
        label: &str,
        stored: Option<Tracker>,
        now: DateTime<Utc>,
    ) {
        let tracker = stored.unwrap_or_else(|| Tracker::new(now));
        let rollup = (key.kind() != SourceKind::Intake)
            .then(|| RollupBuilder::new(key.clone(), component.clone(), now));
        self.lock().insert(
            key.clone(),
            Entry {
                component: component.clone(),
                label: label.to_string(),
                tracker,
                rollup,
            },
        );
    }

    /// Applies an observation from a source that may not be registered yet (intake alerts).
    pub fn observe_as(&self, source: &Source, label: &str, obs: Observation) -> bool {
        let at = obs.at;
        let mut entries = self.lock();
        let entry = entries.entry(source.key.clone()).or_insert_with(|| Entry {
            component: source.component.clone(),
            label: label.to_string(),
            tracker: Tracker::new(at),
            rollup: (source.key.kind() != SourceKind::Intake)
                .then(|| RollupBuilder::new(source.key.clone(), source.component.clone(), at)),
        });
        // Intake alerts may move between components as routing rules change.
        entry.component = source.component.clone();
        self.metrics.observed(source.key.kind(), obs.health);
        if obs.health != Health::Unknown {
            if let Some(b) = entry.rollup.as_mut() {
                if let Some(done) = b.add(at, obs.latency_ms.unwrap_or(0), obs.health.is_failing())
                {
                    let _ = self.persist.send(PersistEvent::Rollups(vec![done]));
                }
            }
        }
        let streak_before = (entry.tracker.pending, entry.tracker.streak);
        let transition = entry
            .tracker
            .observe(obs, source.confirmations, source.recoveries);
        let confirming = entry.tracker.is_confirming();
        if transition.is_none() && streak_before != (entry.tracker.pending, entry.tracker.streak) {
            // A failure seen but not yet confirmed (or a streak broken) is stored too: an
            // instance taking this source over after a crash continues the count.
            let _ = self.persist.send(PersistEvent::State(Box::new(SourceState {
                key: source.key.clone(),
                component: entry.component.clone(),
                tracker: entry.tracker.clone(),
            })));
        }
        if let Some(t) = transition {
            let signal = Signal {
                source: source.key.clone(),
                component: entry.component.clone(),
                health: t.to,
                reason: t.reason,
                at: t.at,
            };
            let state = SourceState {
                key: source.key.clone(),
                component: entry.component.clone(),
                tracker: entry.tracker.clone(),
            };
            drop(entries);
            tracing::info!(
                source = %signal.source.kind(), id = %signal.source, component = %signal.component,
                health = %signal.health, reason = %signal.reason, "state change"
            );
            self.metrics.signal();
            let _ = self.signals.send(signal.clone());
            let _ = self.persist.send(PersistEvent::Signal {
                signal,
                state: Box::new(state),
            });
        }
        confirming
    }

    /// Folds in a state another instance stored (or this one, echoed back by the change feed):
    /// taken only when it was observed later than what this hub has, so an echo or a late
    /// notification never moves a source back. A change of confirmed health is announced as a
    /// signal here too (the instance that observed it stored it).
    pub fn apply_remote(&self, state: &SourceState) {
        let mut entries = self.lock();
        let entry = entries.entry(state.key.clone()).or_insert_with(|| Entry {
            component: state.component.clone(),
            label: source_label(&state.key).to_string(),
            tracker: Tracker::new(state.tracker.since),
            rollup: None,
        });
        let newer = match (state.tracker.last_checked, entry.tracker.last_checked) {
            (Some(theirs), Some(ours)) => theirs > ours,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if !newer {
            return;
        }
        let before = entry.tracker.health;
        entry.tracker = state.tracker.clone();
        entry.component = state.component.clone();
        if before == state.tracker.health {
            return;
        }
        let signal = Signal {
            source: state.key.clone(),
            component: state.component.clone(),
            health: state.tracker.health,
            reason: state.tracker.reason.clone(),
            at: state.tracker.since,
        };
        drop(entries);
        tracing::info!(
            source = %signal.source.kind(), id = %signal.source, component = %signal.component,
            health = %signal.health, reason = %signal.reason, "state change seen by another instance"
        );
        let _ = self.signals.send(signal);
    }

    /// Every known source, sorted by kind and id.
    pub fn snapshot(&self) -> Vec<SourceView> {
        let mut out: Vec<SourceView> = self
            .lock()
            .iter()
            .map(|(key, e)| SourceView {
                key: key.clone(),
                check: e.label.clone(),
                component: e.component.clone(),
                state: e.tracker.health,
                since: e.tracker.since,
                reason: e.tracker.reason.clone(),
                latency_ms: e.tracker.latency_ms,
                last_checked: e.tracker.last_checked,
                confirming: e.tracker.is_confirming(),
            })
            .collect();
        out.sort_by_cached_key(|v| (v.key.kind().as_str(), v.key.id()));
        out
    }

    /// Hands finished minutes (all of them when `all`) to persistence.
    pub fn flush_rollups(&self, now: DateTime<Utc>, all: bool) {
        let current = minute_of(now);
        let mut done = Vec::new();
        for e in self.lock().values_mut() {
            if let Some(b) = e.rollup.as_mut() {
                if all || b.minute() < current {
                    done.extend(b.take());
                }
            }
        }
        if !done.is_empty() {
            let _ = self.persist.send(PersistEvent::Rollups(done));
        }
    }
}

impl Sink for SignalHub {
    fn observe(&self, source: &Source, obs: Observation) -> bool {
        let label = match source.key.kind() {
            SourceKind::Vendor => "vendor",
            _ => "",
        };
        self.observe_as(source, label, obs)
    }

    fn resume(&self, source: &Source) -> Option<(DateTime<Utc>, bool)> {
        let entries = self.lock();
        let e = entries.get(&source.key)?;
        Some((e.tracker.last_checked?, e.tracker.is_confirming()))
    }
}

/// What a source restored or mirrored without its config says it is: an intake alert's
/// format, "vendor", or "remote" for a monitor.
pub fn source_label(key: &SourceKey) -> &str {
    match key {
        SourceKey::Intake { format, .. } => format,
        SourceKey::Vendor(_) => "vendor",
        SourceKey::Monitor { .. } => "remote",
    }
}
