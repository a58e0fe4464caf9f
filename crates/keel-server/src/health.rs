//! The health view: the hub's sources, folded per node and assessed against the graph, computed
//! once per change by the incident job and published to everyone downstream.
//!
//! Before this, the incident job, the snapshot job, the fan-out and the incident API each read
//! every source from the hub and folded it again; with thousands of monitors that is the
//! expensive part of a pass, and four readers could each see a slightly different hub. Now the
//! incident job reads the hub once per pass, publishes the result here, and the others take
//! the published `Arc` (one reference count, no copy).

use std::collections::BTreeSet;
use std::sync::Arc;

use keel_core::assess::{self, Assessment, Graph, HealthMap, SourceHealth};
use keel_core::incident::unknown_nodes;
use tokio::sync::watch;

use crate::hub::SignalHub;

/// Every source's latest health and what follows from it, at one moment.
#[derive(Debug, Clone)]
pub struct HealthView {
    /// The sources the hub knows that speak for a graph node.
    pub sources: Vec<SourceHealth>,
    /// One health per node, folded from `sources`.
    pub health: HealthMap,
    /// The graph's causes and impact under `health`.
    pub assessment: Assessment,
    /// Nodes Keel cannot judge right now (their sources are unknown).
    pub unknown: BTreeSet<String>,
}

impl HealthView {
    /// Folds and assesses `sources`. Pure: the same sources give the same view.
    pub fn new(graph: &Graph, sources: Vec<SourceHealth>) -> Self {
        let health = assess::fold_health(&sources);
        let assessment = assess::assess(graph, &health);
        let unknown = unknown_nodes(&health);
        HealthView {
            sources,
            health,
            assessment,
            unknown,
        }
    }

    /// Reads every source the hub knows and assesses them.
    pub fn from_hub(graph: &Graph, hub: &SignalHub) -> Self {
        HealthView::new(graph, sources_from_hub(hub))
    }
}

/// Where the latest view is published. Readers take the current view or wait for the next.
pub struct HealthBoard {
    tx: watch::Sender<Arc<HealthView>>,
}

impl HealthBoard {
    pub fn new(initial: HealthView) -> Self {
        HealthBoard {
            tx: watch::Sender::new(Arc::new(initial)),
        }
    }

    /// The latest view.
    pub fn current(&self) -> Arc<HealthView> {
        self.tx.borrow().clone()
    }

    /// Wakes on every view that differs from the one before.
    pub fn subscribe(&self) -> watch::Receiver<Arc<HealthView>> {
        self.tx.subscribe()
    }

    /// Publishes `view` and returns the view now current. Subscribers are only woken when the
    /// sources changed: during an incident the job publishes every second, and re-rendering
    /// the page for an identical view would be wasted work.
    pub fn publish(&self, view: HealthView) -> Arc<HealthView> {
        self.tx.send_if_modified(|current| {
            if current.sources == view.sources {
                return false;
            }
            *current = Arc::new(view);
            true
        });
        self.current()
    }
}

/// The sources the hub knows, as the assessment reads them.
pub fn sources_from_hub(hub: &SignalHub) -> Vec<SourceHealth> {
    hub.snapshot()
        .into_iter()
        .filter(|s| !s.component.is_empty())
        .map(|s| SourceHealth {
            source: s.id,
            label: s.check,
            node: s.component,
            health: s.state,
            since: s.since,
            reason: s.reason,
        })
        .collect()
}
