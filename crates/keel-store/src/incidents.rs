//! Incidents as their append-only timelines (event sourcing): the in-memory incident is a
//! fold of its events, so the store only needs to append safely and read back in order.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keel_core::incident::{Actor, EventKind, IncidentEvent, IncidentId};

use crate::shared::{decode_event, Stamp};
use crate::Result;

/// An event to store: who, when and what. The store assigns the incident and the seq.
pub type NewEvent = (Actor, DateTime<Utc>, EventKind);

/// Incident timelines. The fenced variants, for several instances on one database, are in
/// [`crate::ClusterStore`].
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Opens a new incident: allocates the next id (strictly increasing, never reused, also
    /// with several instances on one PostgreSQL) and stores `events` as seq 1..=n in one
    /// transaction. The first event must be `Opened` and no later one may be (`Invalid`).
    /// Times are kept to the millisecond.
    async fn create_incident(&self, events: &[NewEvent]) -> Result<IncidentId>;

    /// Appends to an incident's timeline with optimistic concurrency: the events get seqs
    /// `expected_last_seq + 1…` only if the incident's last seq is still `expected_last_seq`,
    /// else `Conflict("incident 7 changed: expected seq 4, found 5")`, and nothing is stored.
    /// Unknown incident: `NotFound`. `Opened` is refused (`Invalid`). An empty slice checks
    /// the same things and stores nothing. Returns the events as stored.
    async fn append_incident_events(
        &self,
        incident: IncidentId,
        expected_last_seq: u32,
        events: &[NewEvent],
    ) -> Result<Vec<IncidentEvent>>;

    /// One incident's timeline ordered by seq; `NotFound` for an unknown incident.
    async fn incident_events(&self, incident: IncidentId) -> Result<Vec<IncidentEvent>>;

    /// Every incident's timeline, ordered by (incident, seq): what a start-up replays to
    /// rebuild the incidents in memory.
    async fn all_incident_events(&self) -> Result<Vec<IncidentEvent>>;
}

pub(crate) const EVENT_COLUMNS: &str = "incident, seq, at, actor_type, actor_name, kind";
/// An event row as both backends read it, in [`EVENT_COLUMNS`] order; `T` is the backend's
/// time (see [`Stamp`]).
pub(crate) type EventRowRead<T> = (i64, i64, T, String, Option<String>, String);

pub(crate) fn decode_events<T: Stamp>(rows: Vec<EventRowRead<T>>) -> Result<Vec<IncidentEvent>> {
    rows.into_iter()
        .map(|(incident, seq, at, actor_type, actor_name, kind)| {
            decode_event(
                IncidentId(incident),
                seq,
                at.time()?,
                &actor_type,
                actor_name,
                &kind,
            )
        })
        .collect()
}
