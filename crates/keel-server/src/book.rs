//! The incident book and the correlation job.
//!
//! The book is the in-memory projection of every incident, rebuilt from the stored events at
//! start and kept current by appending through the store first (events are the truth; the
//! book only folds them). The job re-assesses the graph whenever a signal arrives and once a
//! second (stability windows end without any signal), publishes the [`HealthView`] it
//! assessed (the snapshot job, the fan-out and the API read that instead of the hub), and
//! stores whatever the pure engine plans.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, Utc};
use keel_core::assess::{Assessment, Graph, PastIncident};
use keel_core::config::Config;
use keel_core::incident::{
    correlate_with_unknown, past_incidents, Actor, Command, ConfigJudge, EventKind, Incident,
    IncidentEvent, IncidentId, IncidentState, Planned, Settings,
};
use keel_core::public::Publisher;
use keel_core::{NodeId, Signal};
use keel_store::{Fence, Store, StoreError};
use tokio::sync::{broadcast, Mutex};
use tokio_util::sync::CancellationToken;

use crate::cluster::Cluster;
use crate::health::{HealthBoard, HealthView};
use crate::hub::SignalHub;

/// One incident with its whole timeline, as read from the store.
#[derive(Debug, Clone)]
pub struct Entry {
    pub incident: Incident,
    pub events: Vec<IncidentEvent>,
}

/// How long the book keeps an incident's pages and published updates in memory after they
/// happen: what the jobs that queue them again ([`IncidentBook::paged_since`],
/// [`IncidentBook::published_since`]) look back over, with room to spare.
const RECENT: chrono::TimeDelta = chrono::TimeDelta::hours(2);

/// What the book holds of one incident: its folded state and, of its events, only the pages
/// and published updates of the last [`RECENT`] (what the jobs queue again). The whole
/// timeline stays in the store and is read from there when asked for: a flapping source
/// adds a signal event per health change for as long as Keel runs, so a book that held
/// every event, or every event of the last two hours, grew with the load rather than with
/// the incidents (docs/benchmarks.md, "Soak").
#[derive(Debug)]
struct Held {
    incident: Incident,
    requeue: Vec<IncidentEvent>,
}

/// Whether a job may queue what this event sent again.
fn requeued(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Paged { .. } | EventKind::UpdatePublished { .. }
    )
}

impl Held {
    fn new(incident: Incident, events: &[IncidentEvent]) -> Self {
        let mut held = Held {
            incident,
            requeue: Vec::new(),
        };
        held.extend(events);
        held
    }

    fn extend(&mut self, events: &[IncidentEvent]) {
        let horizon = Utc::now() - RECENT;
        self.requeue.retain(|e| e.at >= horizon);
        self.requeue.extend(
            events
                .iter()
                .filter(|e| e.at >= horizon && requeued(&e.kind))
                .cloned(),
        );
    }
}

/// Every incident, folded from its events.
pub struct IncidentBook {
    entries: Mutex<BTreeMap<IncidentId, Held>>,
    store: Arc<dyn Store>,
    config: Arc<Config>,
    graph: Graph,
    changes: broadcast::Sender<IncidentId>,
    blind: std::sync::Mutex<Option<String>>,
    /// Drafts, auto-publishes and checks public text.
    publisher: Publisher,
    /// Published customer updates, for the notification fan-out.
    published: broadcast::Sender<Published>,
    /// The health view the last pass assessed.
    health: HealthBoard,
}

/// A customer update that was just published.
#[derive(Debug, Clone)]
pub struct Published {
    pub incident: IncidentId,
    pub update: u32,
}

/// Why a command on an incident was not carried out.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    #[error("no incident {0}")]
    NotFound(IncidentId),
    #[error("{field}: {reason}")]
    Refused { field: String, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored events do not replay: {0}")]
    Replay(String),
}

impl IncidentBook {
    /// Rebuilds the book from every stored event.
    pub async fn load(store: Arc<dyn Store>, config: Arc<Config>) -> anyhow::Result<Self> {
        let events = store
            .all_incident_events()
            .await
            .context("cannot load incidents from the store")?;
        let mut grouped: BTreeMap<IncidentId, Vec<IncidentEvent>> = BTreeMap::new();
        for e in events {
            grouped.entry(e.incident).or_default().push(e);
        }
        let mut entries = BTreeMap::new();
        for (id, events) in grouped {
            let incident = Incident::replay(&events)
                .map_err(|e| anyhow::anyhow!("incident {id} does not replay: {e}"))?;
            entries.insert(id, Held::new(incident, &events));
        }
        let (changes, _) = broadcast::channel(1024);
        let (published, _) = broadcast::channel(1024);
        let graph = Graph::from_config(&config);
        Ok(IncidentBook {
            health: HealthBoard::new(HealthView::new(&graph, Vec::new())),
            publisher: Publisher::shared(config.clone()),
            published,
            entries: Mutex::new(entries),
            graph,
            store,
            config,
            changes,
            blind: std::sync::Mutex::new(None),
        })
    }

    /// Updates published since `since`, oldest first: queued again at start, so an update
    /// published just before a crash is not lost between its event and its outbox rows (the
    /// rows' idempotency keys make queueing twice harmless).
    pub async fn published_since(&self, since: DateTime<Utc>) -> Vec<Published> {
        let entries = self.entries.lock().await;
        let mut out: Vec<(DateTime<Utc>, Published)> = entries
            .values()
            .flat_map(|e| e.requeue.iter())
            .filter(|e| e.at >= since)
            .filter_map(|e| match &e.kind {
                EventKind::UpdatePublished { update, .. } => Some((
                    e.at,
                    Published {
                        incident: e.incident,
                        update: *update,
                    },
                )),
                _ => None,
            })
            .collect();
        out.sort_by_key(|(at, _)| *at);
        out.into_iter().map(|(_, p)| p).collect()
    }

    /// Whether time alone can change something: an unresolved incident (its stability
    /// window) or a draft waiting to be published. (A relapse after resolution arrives as a
    /// signal.)
    pub async fn has_open_work(&self) -> bool {
        self.entries
            .lock()
            .await
            .values()
            .any(|e| !e.incident.is_resolved() || e.incident.pending_drafts().next().is_some())
    }

    /// Customer updates as they are published.
    pub fn subscribe_published(&self) -> broadcast::Receiver<Published> {
        self.published.subscribe()
    }

    /// Incident ids as they change (opened, appended to).
    pub fn subscribe(&self) -> broadcast::Receiver<IncidentId> {
        self.changes.subscribe()
    }

    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The health view last published.
    pub fn health(&self) -> Arc<HealthView> {
        self.health.current()
    }

    /// Health views as they change.
    pub fn subscribe_health(&self) -> tokio::sync::watch::Receiver<Arc<HealthView>> {
        self.health.subscribe()
    }

    /// Publishes a freshly assessed view (the job does, each pass; the app once at start) and
    /// returns the view now current.
    pub fn publish_health(&self, view: HealthView) -> Arc<HealthView> {
        self.health.publish(view)
    }

    /// Every incident as folded, oldest first (without timelines: [`Self::get`] reads one).
    pub async fn list(&self) -> Vec<Incident> {
        self.entries
            .lock()
            .await
            .values()
            .map(|e| e.incident.clone())
            .collect()
    }

    /// The incident as folded, without its timeline.
    pub async fn incident(&self, id: IncidentId) -> Option<Incident> {
        self.entries
            .lock()
            .await
            .get(&id)
            .map(|e| e.incident.clone())
    }

    /// The incident with its whole timeline, read from the store.
    pub async fn get(&self, id: IncidentId) -> Result<Option<Entry>, BookError> {
        match self.incident(id).await {
            Some(incident) => Ok(Some(self.with_timeline(incident).await?)),
            None => Ok(None),
        }
    }

    /// `incident` with its stored events up to what the book has folded: another instance
    /// may have stored more since, which the book reads when the change feed tells it.
    async fn with_timeline(&self, incident: Incident) -> Result<Entry, BookError> {
        let mut events = self.store.incident_events(incident.id).await?;
        events.retain(|e| e.seq <= incident.last_seq);
        Ok(Entry { incident, events })
    }

    /// What a stored command answers with: the whole timeline when the store gives it, else
    /// the events the command stored. The command was carried out either way; answering
    /// with an error would invite the responder to do it again.
    async fn answer(&self, incident: Incident, stored: Vec<IncidentEvent>) -> Entry {
        match self.with_timeline(incident.clone()).await {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(
                    error = %e, incident = ?incident.id,
                    "cannot read the timeline back after a command; answering with its own events"
                );
                Entry {
                    incident,
                    events: stored,
                }
            }
        }
    }

    /// Applies a responder's command: decided on the current incident, stored, then folded.
    pub async fn command(
        &self,
        id: IncidentId,
        cmd: Command,
        actor: Actor,
        may_override: bool,
        at: DateTime<Utc>,
    ) -> Result<Entry, BookError> {
        match self
            .command_once(id, cmd.clone(), actor.clone(), may_override, at)
            .await
        {
            // Another instance wrote to the incident since this book last heard: read what
            // it wrote and decide again on the incident as it is now.
            Err(BookError::Store(StoreError::Conflict(_))) => {
                self.catch_up(id, None).await?;
                self.command_once(id, cmd, actor, may_override, at).await
            }
            other => other,
        }
    }

    async fn command_once(
        &self,
        id: IncidentId,
        cmd: Command,
        actor: Actor,
        may_override: bool,
        at: DateTime<Utc>,
    ) -> Result<Entry, BookError> {
        let mut entries = self.entries.lock().await;
        let entry = entries.get_mut(&id).ok_or(BookError::NotFound(id))?;
        let kinds = self
            .publisher
            .decide(&entry.incident, cmd, may_override)
            .map_err(|r| BookError::Refused {
                field: r.field.to_string(),
                reason: r.reason,
            })?;
        let events: Vec<_> = kinds.into_iter().map(|k| (actor.clone(), at, k)).collect();
        let (published, mut stored) =
            append_stored(self.store.as_ref(), entry, &events, None).await?;
        // A responder's state change gets its drafted update at once.
        let plan = self.publisher.plan(&entry.incident, at);
        let plan: Vec<_> = plan.into_iter().map(|k| (Actor::System, at, k)).collect();
        let (more, planned) = append_stored(self.store.as_ref(), entry, &plan, None).await?;
        stored.extend(planned);
        let incident = entry.incident.clone();
        drop(entries);
        self.announce(id, published.into_iter().chain(more));
        Ok(self.answer(incident, stored).await)
    }

    /// Declares an incident by hand.
    pub async fn declare(
        &self,
        title: String,
        components: BTreeSet<NodeId>,
        actor: Actor,
        at: DateTime<Utc>,
    ) -> Result<Entry, BookError> {
        let mut entries = self.entries.lock().await;
        let history = history(&entries);
        let judge = self.judge(&history);
        let events: Vec<_> = keel_core::incident::declare(&title, &components, &judge, at, actor)
            .map_err(|r| BookError::Refused {
                field: r.field.to_string(),
                reason: r.reason,
            })?
            .into_iter()
            .map(|(a, k)| (a, at, k))
            .collect();
        let (mut entry, mut timeline) = create(self.store.as_ref(), &events, None).await?;
        let id = entry.incident.id;
        let plan = self.publisher.plan(&entry.incident, at);
        let plan: Vec<_> = plan.into_iter().map(|k| (Actor::System, at, k)).collect();
        let (published, planned) =
            append_stored(self.store.as_ref(), &mut entry, &plan, None).await?;
        // The incident is new and the book's lock is held: what was stored is the whole
        // timeline, with nothing from elsewhere to read back.
        timeline.extend(planned);
        let incident = entry.incident.clone();
        entries.insert(id, entry);
        drop(entries);
        self.announce(id, published);
        Ok(Entry {
            incident,
            events: timeline,
        })
    }

    /// Stores what the engine plans for an assessed view. Returns the ids that changed.
    /// Only the leader does this; its writes carry `fence`, so a stale leader stores nothing.
    pub async fn reassess(
        &self,
        view: &HealthView,
        now: DateTime<Utc>,
        fence: &Fence,
    ) -> Result<Vec<IncidentId>, BookError> {
        let assessment = &view.assessment;
        let unknown = &view.unknown;
        let mut entries = self.entries.lock().await;
        let settings = Settings::from(&self.config.incidents);
        // The engine needs every unresolved incident and those that may still reopen.
        let reopen_horizon = now
            - chrono::TimeDelta::from_std(settings.recurrence_window)
                .unwrap_or(chrono::TimeDelta::days(1));
        let incidents: Vec<Incident> = entries
            .values()
            .map(|e| &e.incident)
            .filter(|i| !i.is_resolved() || i.resolved_at.is_some_and(|r| r >= reopen_horizon))
            .cloned()
            .collect();
        let history = history(&entries);
        let judge = self.judge(&history);
        let plans = correlate_with_unknown(&incidents, assessment, unknown, now, &settings, &judge);
        let mut changed = Vec::new();
        for plan in plans {
            match plan {
                Planned::Open { events } => {
                    let events: Vec<_> = events.into_iter().map(|(a, k)| (a, now, k)).collect();
                    let (entry, _) = create(self.store.as_ref(), &events, Some(fence)).await?;
                    tracing::warn!(
                        incident = %entry.incident.id, title = %entry.incident.title,
                        severity = ?entry.incident.severity, "incident opened"
                    );
                    changed.push(entry.incident.id);
                    entries.insert(entry.incident.id, entry);
                }
                Planned::Append { incident, events } => {
                    let Some(entry) = entries.get_mut(&incident) else {
                        continue;
                    };
                    let events: Vec<_> = events.into_iter().map(|(a, k)| (a, now, k)).collect();
                    append(self.store.as_ref(), entry, &events, Some(fence)).await?;
                    changed.push(incident);
                }
            }
        }
        // Drafts for what changed, and drafts that fell due, published.
        let mut published = Vec::new();
        for entry in entries.values_mut() {
            let inc = &entry.incident;
            if !changed.contains(&inc.id) && !self.publisher.may_plan(inc) {
                continue;
            }
            let plan = self.publisher.plan(inc, now);
            if plan.is_empty() {
                continue;
            }
            let plan: Vec<_> = plan.into_iter().map(|k| (Actor::System, now, k)).collect();
            published.extend(append(self.store.as_ref(), entry, &plan, Some(fence)).await?);
            if !changed.contains(&entry.incident.id) {
                changed.push(entry.incident.id);
            }
        }
        self.log_blind(assessment);
        drop(entries);
        for id in &changed {
            let _ = self.changes.send(*id);
        }
        for p in published {
            let _ = self.published.send(p);
        }
        Ok(changed)
    }

    /// Stores Keel's own events for unresolved incidents — what `plan` says each one needs
    /// now (the escalation engine's pages and steps, stamped when each fell due) — and
    /// returns every incident that got some, as it is after them, with the events as stored.
    /// Planning happens under the book's lock, on the incident as it is, so two passes never
    /// plan the same level twice. A stamp is never earlier than the incident's latest event,
    /// so the timeline stays in order.
    pub async fn escalate<F>(
        &self,
        plan: F,
        fence: &Fence,
    ) -> Result<Vec<(Incident, Vec<IncidentEvent>)>, BookError>
    where
        F: Fn(&Incident) -> Vec<(DateTime<Utc>, EventKind)>,
    {
        let mut entries = self.entries.lock().await;
        let mut out = Vec::new();
        for entry in entries.values_mut() {
            if entry.incident.is_resolved() {
                continue;
            }
            let kinds = plan(&entry.incident);
            if kinds.is_empty() {
                continue;
            }
            let floor = entry.incident.last_event_at;
            let events: Vec<_> = kinds
                .into_iter()
                .map(|(at, k)| (Actor::System, at.max(floor), k))
                .collect();
            let (_, stored) =
                append_stored(self.store.as_ref(), entry, &events, Some(fence)).await?;
            out.push((entry.incident.clone(), stored));
        }
        drop(entries);
        for (inc, _) in &out {
            let _ = self.changes.send(inc.id);
        }
        Ok(out)
    }

    /// Pages sent since `since`, with their incident as it is now: queued again at start, so
    /// a page stored just before a crash still reaches its person (the outbox's idempotency
    /// keys make queueing twice harmless).
    pub async fn paged_since(&self, since: DateTime<Utc>) -> Vec<(Incident, IncidentEvent)> {
        let entries = self.entries.lock().await;
        entries
            .values()
            .flat_map(|e| {
                e.requeue
                    .iter()
                    .filter(|ev| ev.at >= since && matches!(ev.kind, EventKind::Paged { .. }))
                    .map(|ev| (e.incident.clone(), ev.clone()))
            })
            .collect()
    }

    /// Whether any incident is still open (escalations only run for those).
    pub async fn has_unresolved(&self) -> bool {
        self.entries
            .lock()
            .await
            .values()
            .any(|e| !e.incident.is_resolved())
    }

    /// Adds the signal to the timeline of every unresolved incident it concerns; says whether
    /// any did.
    pub async fn record_signal(&self, signal: &Signal, fence: &Fence) -> Result<bool, BookError> {
        let mut entries = self.entries.lock().await;
        let mut changed = Vec::new();
        for entry in entries.values_mut() {
            let inc = &entry.incident;
            if inc.state == IncidentState::Resolved || !inc.impacted.contains(&signal.component) {
                continue;
            }
            let event = (
                Actor::System,
                signal.at,
                EventKind::Signal {
                    source: signal.source.id(),
                    component: signal.component.clone(),
                    health: signal.health,
                    reason: signal.reason.clone(),
                },
            );
            append(self.store.as_ref(), entry, &[event], Some(fence)).await?;
            changed.push(entry.incident.id);
        }
        drop(entries);
        let recorded = !changed.is_empty();
        for id in changed {
            let _ = self.changes.send(id);
        }
        Ok(recorded)
    }

    /// Folds in the events another instance stored for incident `id` (up to `seq`, when the
    /// change feed said how far; `None` reads whatever is there). Reads only the events this
    /// book does not have.
    pub async fn catch_up(&self, id: IncidentId, seq: Option<u32>) -> Result<(), BookError> {
        let mut entries = self.entries.lock().await;
        let have = entries.get(&id).map_or(0, |e| e.incident.last_seq);
        if seq.is_some_and(|s| s <= have) {
            return Ok(());
        }
        let new = self.store.incident_events_after(id, have).await?;
        if new.is_empty() {
            return Ok(());
        }
        match entries.get_mut(&id) {
            Some(entry) => {
                for e in &new {
                    entry
                        .incident
                        .apply(e)
                        .map_err(|err| BookError::Replay(err.to_string()))?;
                }
                entry.extend(&new);
            }
            None => {
                let incident =
                    Incident::replay(&new).map_err(|e| BookError::Replay(e.to_string()))?;
                entries.insert(id, Held::new(incident, &new));
            }
        }
        drop(entries);
        self.announce(id, published_in(&new));
        Ok(())
    }

    /// Compares every incident's last seq with the store's (one row per incident) and reads
    /// what this book is missing: after the change feed was interrupted, or a write refused
    /// because another instance had written first.
    pub async fn catch_up_all(&self) -> Result<(), BookError> {
        let heads = self.store.incident_heads().await?;
        let behind: Vec<(IncidentId, u32)> = {
            let entries = self.entries.lock().await;
            heads
                .into_iter()
                .filter(|(id, seq)| entries.get(id).is_none_or(|e| e.incident.last_seq < *seq))
                .collect()
        };
        for (id, seq) in behind {
            self.catch_up(id, Some(seq)).await?;
        }
        Ok(())
    }

    fn announce(&self, id: IncidentId, published: impl IntoIterator<Item = Published>) {
        let _ = self.changes.send(id);
        for p in published {
            let _ = self.published.send(p);
        }
    }

    /// Says so once when Keel goes blind (a canary fails) and once when it sees again.
    fn log_blind(&self, assessment: &Assessment) {
        let mut last = self.blind.lock().unwrap_or_else(|e| e.into_inner());
        if *last == assessment.blind {
            return;
        }
        match &assessment.blind {
            Some(why) => {
                tracing::warn!(reason = %why, "no incident is opened or moved while Keel cannot see")
            }
            None => tracing::info!("the canaries are healthy again: assessing as usual"),
        }
        *last = assessment.blind.clone();
    }

    /// Why Keel cannot see right now, if it cannot.
    pub fn blind(&self) -> Option<String> {
        self.blind.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn judge<'a>(&'a self, history: &'a [PastIncident]) -> ConfigJudge<'a> {
        ConfigJudge {
            config: &self.config,
            graph: &self.graph,
            history,
        }
    }
}

/// How long resolved incidents lasted, for ETAs.
fn history(entries: &BTreeMap<IncidentId, Held>) -> Vec<PastIncident> {
    let all: Vec<Incident> = entries.values().map(|e| e.incident.clone()).collect();
    past_incidents(&all)
}

/// Stores a new incident's first events and folds them; returns it with the events as stored.
async fn create(
    store: &dyn Store,
    events: &[(Actor, DateTime<Utc>, EventKind)],
    fence: Option<&Fence>,
) -> Result<(Held, Vec<IncidentEvent>), BookError> {
    let id = match fence {
        Some(f) => store.create_incident_fenced(f, events).await?,
        None => store.create_incident(events).await?,
    };
    let stored = store.incident_events(id).await?;
    let incident = Incident::replay(&stored).map_err(|e| BookError::Replay(e.to_string()))?;
    Ok((Held::new(incident, &stored), stored))
}

/// Stores `events` after the incident's latest and folds them in; returns the updates among
/// them that were published.
async fn append(
    store: &dyn Store,
    entry: &mut Held,
    events: &[(Actor, DateTime<Utc>, EventKind)],
    fence: Option<&Fence>,
) -> Result<Vec<Published>, BookError> {
    Ok(append_stored(store, entry, events, fence).await?.0)
}

/// [`append`], also returning the events as stored.
async fn append_stored(
    store: &dyn Store,
    entry: &mut Held,
    events: &[(Actor, DateTime<Utc>, EventKind)],
    fence: Option<&Fence>,
) -> Result<(Vec<Published>, Vec<IncidentEvent>), BookError> {
    if events.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let (id, seq) = (entry.incident.id, entry.incident.last_seq);
    let stored = match fence {
        Some(f) => {
            store
                .append_incident_events_fenced(f, id, seq, events)
                .await?
        }
        None => store.append_incident_events(id, seq, events).await?,
    };
    for e in &stored {
        entry
            .incident
            .apply(e)
            .map_err(|err| BookError::Replay(err.to_string()))?;
    }
    let published = published_in(&stored);
    entry.extend(&stored);
    Ok((published, stored))
}

/// The updates among `events` that were published.
fn published_in(events: &[IncidentEvent]) -> Vec<Published> {
    events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::UpdatePublished { update, .. } => Some(Published {
                incident: e.incident,
                update: *update,
            }),
            _ => None,
        })
        .collect()
}

/// Re-assesses on every signal and once a second, until stopped. Every instance publishes the
/// health it sees; only the leader turns it into incident events.
pub async fn run(
    book: Arc<IncidentBook>,
    hub: Arc<SignalHub>,
    cluster: Arc<Cluster>,
    stop: CancellationToken,
) {
    let mut signals = hub.subscribe();
    let mut leadership = cluster.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Reassessing reads every source, so with thousands of monitors it is only done when
    // something changed, or while an incident is open (its windows and drafts run on time).
    let mut dirty = true;
    let mut pending: Vec<Signal> = Vec::new();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
            // A new leader assesses at once.
            _ = leadership.changed() => dirty = true,
            got = signals.recv() => match got {
                Ok(signal) => {
                    dirty = true;
                    pending.push(signal);
                }
                // Missed signals are not lost: the view below reads the current state.
                Err(broadcast::error::RecvError::Lagged(_)) => dirty = true,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
        // Everything queued meanwhile is covered by one assessment.
        loop {
            match signals.try_recv() {
                Ok(signal) => {
                    dirty = true;
                    pending.push(signal);
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => dirty = true,
                Err(_) => break,
            }
        }
        let fence = cluster.leader_fence();
        if !dirty && (fence.is_none() || !book.has_open_work().await) {
            continue;
        }
        // Assessed and published before anything is written: the page follows health at once,
        // even while the timelines below wait on the store. Signals that arrive meanwhile are
        // in the channel and start the next pass at once.
        let view = book.publish_health(HealthView::from_hub(book.graph(), &hub));
        let Some(fence) = fence else {
            // The leader records signals on timelines (it hears them through the feed).
            pending.clear();
            dirty = false;
            continue;
        };
        let result = async {
            let unrecorded = record_signals(&book, pending.drain(..), &fence).await?;
            book.reassess(&view, Utc::now(), &fence).await?;
            // A signal that opens (or reopens) an incident arrives before the incident does, so
            // no timeline took it above; it goes on the timeline of what this pass opened.
            record_signals(&book, unrecorded, &fence).await.map(|_| ())
        }
        .await;
        match result {
            Ok(()) => dirty = false,
            Err(e) => written_elsewhere(&book, &cluster, e).await,
        }
    }
}

/// Records each signal on the timelines it concerns; returns those no timeline took.
async fn record_signals(
    book: &IncidentBook,
    signals: impl IntoIterator<Item = Signal>,
    fence: &Fence,
) -> Result<Vec<Signal>, BookError> {
    let mut unrecorded = Vec::new();
    for signal in signals {
        if !book.record_signal(&signal, fence).await? {
            unrecorded.push(signal);
        }
    }
    Ok(unrecorded)
}

/// What the leader does when a write of its own was refused: another instance took the
/// leadership (step down), or wrote to the incident first (read it and plan again).
pub async fn written_elsewhere(book: &IncidentBook, cluster: &Cluster, e: BookError) {
    match e {
        BookError::Store(StoreError::Fenced(why)) => {
            tracing::warn!(reason = %why, "a write as leader was refused");
            cluster.step_down();
        }
        BookError::Store(StoreError::Conflict(why)) => {
            tracing::info!(reason = %why, "an incident changed on another instance; reading it");
            if let Err(e) = book.catch_up_all().await {
                tracing::error!(error = %e, "cannot read incidents changed elsewhere");
            }
        }
        e => {
            tracing::error!(error = %e, "cannot store the assessment's incident changes; will retry")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_core::config::LocalizedText;
    use keel_core::public::PublicStatus;

    const CONFIG: &str = r#"
[server]
listen = "127.0.0.1:0"

[[component]]
id = "api"
name = "API"
users = 100
"#;

    async fn book() -> (tempfile::TempDir, Arc<dyn Store>, IncidentBook) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("keel.db").display());
        let store = keel_store::open(&url).await.unwrap();
        let config = Arc::new(keel_core::config::parse(CONFIG, "keel.toml", &[]).unwrap());
        let book = IncidentBook::load(store.clone(), config).await.unwrap();
        (dir, store, book)
    }

    async fn held(book: &IncidentBook, id: IncidentId) -> usize {
        book.entries
            .lock()
            .await
            .get(&id)
            .map_or(0, |h| h.requeue.len())
    }

    fn note(text: &str) -> Command {
        Command::Note {
            text: text.to_string(),
        }
    }

    /// A timeline that keeps growing (a flapping source, for months) must not grow the
    /// book: only recent pages and published updates are held (what the jobs queue again),
    /// and whoever asks for the timeline gets all of it from the store.
    #[tokio::test]
    async fn only_recent_pages_and_updates_stay_in_memory_but_the_timeline_keeps_all() {
        let (_dir, store, book) = book().await;
        let now = Utc::now();
        let long_ago = now - RECENT - chrono::TimeDelta::minutes(30);
        let alice = Actor::User("alice".to_string());
        let api: BTreeSet<NodeId> = [NodeId::parse("api").unwrap()].into();
        let declared = book
            .declare("Checkout errors".into(), api, alice.clone(), long_ago)
            .await
            .unwrap();
        let id = declared.incident.id;
        let stored = store.incident_events(id).await.unwrap();
        assert_eq!(
            declared.events, stored,
            "declaring answers with the timeline"
        );
        let update = |text: &str| Command::PublishUpdate {
            status: PublicStatus::Investigating,
            body: LocalizedText {
                by_locale: [(String::new(), text.to_string())].into(),
            },
            title: None,
            override_reason: None,
        };
        for i in 0..50 {
            let at = long_ago + chrono::TimeDelta::seconds(i);
            book.command(id, note(&format!("old {i}")), alice.clone(), false, at)
                .await
                .unwrap();
        }
        book.command(
            id,
            update("Looking into it"),
            alice.clone(),
            false,
            long_ago,
        )
        .await
        .unwrap();
        assert_eq!(
            held(&book, id).await,
            0,
            "nothing older than RECENT is held"
        );

        book.command(id, note("now"), alice.clone(), false, now)
            .await
            .unwrap();
        assert_eq!(held(&book, id).await, 0, "a recent note is not held either");
        let entry = book
            .command(id, update("Still looking"), alice.clone(), false, now)
            .await
            .unwrap();
        let stored = store.incident_events(id).await.unwrap();
        let requeue: Vec<&IncidentEvent> = stored
            .iter()
            .filter(|e| e.at >= now - RECENT && requeued(&e.kind))
            .collect();
        assert_eq!(requeue.len(), 1, "{requeue:?}");
        assert_eq!(held(&book, id).await, 1, "the recent update is held");
        let since = book
            .published_since(now - chrono::TimeDelta::hours(1))
            .await;
        assert_eq!(since.len(), 1, "the job finds the recent update: {since:?}");
        assert_eq!(
            entry.events.len(),
            stored.len(),
            "the answer has the whole timeline"
        );
        assert!(stored.len() > 52);
        let got = book.get(id).await.unwrap().unwrap();
        assert_eq!(got.events, stored);
        assert_eq!(got.incident.notes, 51);

        // A book loaded from the store holds as little.
        let config = Arc::new(keel_core::config::parse(CONFIG, "keel.toml", &[]).unwrap());
        let again = IncidentBook::load(store.clone(), config).await.unwrap();
        assert_eq!(held(&again, id).await, 1);
        assert_eq!(again.get(id).await.unwrap().unwrap().events, stored);
        assert_eq!(again.list().await, book.list().await);
        assert!(book.get(IncidentId(id.0 + 1)).await.unwrap().is_none());
    }
}
