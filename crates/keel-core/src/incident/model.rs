//! The incident vocabulary: states, events, actors and the folded incident.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::assess::{Eta, Severity};
use crate::config::LocalizedText;
use crate::ids::NodeId;
use crate::public::PublicStatus;
use crate::Health;

/// Incident ids are small, increasing integers assigned by the store. A type of their own so an
/// incident id is not mixed up with a sequence number or a count; on the wire and in SQL it is
/// the bare number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(pub i64);

impl IncidentId {
    pub fn get(self) -> i64 {
        self.0
    }
}

impl std::fmt::Display for IncidentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for IncidentId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(IncidentId)
    }
}

impl From<i64> for IncidentId {
    fn from(id: i64) -> IncidentId {
        IncidentId(id)
    }
}

impl From<IncidentId> for i64 {
    fn from(id: IncidentId) -> i64 {
        id.0
    }
}

/// Lifecycle: `investigating → identified → monitoring → resolved`, with reopening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Investigating => "investigating",
            IncidentState::Identified => "identified",
            IncidentState::Monitoring => "monitoring",
            IncidentState::Resolved => "resolved",
        }
    }
}

impl std::fmt::Display for IncidentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IncidentState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "investigating" => Ok(IncidentState::Investigating),
            "identified" => Ok(IncidentState::Identified),
            "monitoring" => Ok(IncidentState::Monitoring),
            "resolved" => Ok(IncidentState::Resolved),
            _ => Err(format!(
                "unknown state {s:?}: expected investigating, identified, monitoring or resolved"
            )),
        }
    }
}

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "name", rename_all = "lowercase")]
pub enum Actor {
    /// Keel itself (assessment, timers).
    System,
    /// A person or token, by name.
    User(String),
}

impl std::fmt::Display for Actor {
    /// "keel" for Keel itself, else the person's or token's name.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Actor::System => f.write_str("keel"),
            Actor::User(name) => f.write_str(name),
        }
    }
}

/// Roles on an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentRole {
    Commander,
    Communications,
}

impl IncidentRole {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentRole::Commander => "commander",
            IncidentRole::Communications => "communications",
        }
    }
}

impl std::fmt::Display for IncidentRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IncidentRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "commander" => Ok(IncidentRole::Commander),
            "communications" => Ok(IncidentRole::Communications),
            _ => Err(format!(
                "unknown role {s:?}: expected commander or communications"
            )),
        }
    }
}

/// How the incident came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Opened by the correlation engine from signals.
    Detected,
    /// Declared by a responder (a power cut, a vendor's email).
    Declared,
}

/// One fact on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    Opened {
        title: String,
        origin: Origin,
        /// The root-cause node; `None` for a declared incident without one.
        cause: Option<NodeId>,
        /// "component", "vendor", "infra" or "manual".
        cause_kind: String,
        failure_kind: String,
        impacted: BTreeSet<NodeId>,
        affected_users: u64,
        reason: String,
        /// When the cause started failing as far as Keel knows (for time to detect); the
        /// event's own `at` is when the incident was opened.
        failing_since: DateTime<Utc>,
    },
    /// A source of the incident changed health.
    Signal {
        source: String,
        component: NodeId,
        health: Health,
        reason: String,
    },
    /// The cause widened (or narrowed) to more dependents.
    ImpactChanged {
        impacted: BTreeSet<NodeId>,
        affected_users: u64,
    },
    SeverityChanged {
        from: Option<Severity>,
        to: Severity,
        reason: String,
    },
    StateChanged {
        from: IncidentState,
        to: IncidentState,
        reason: String,
    },
    /// A relapse within the recurrence window after resolution.
    Reopened {
        recurrences: u32,
        reason: String,
    },
    EtaChanged {
        eta: Eta,
    },
    /// A reminder for responders (e.g. chase the vendor for a timeline).
    Prompt {
        text: String,
    },
    Note {
        text: String,
    },
    /// Someone took the incident. `via` says how: "api", "cli", "console", "link" or "chat"
    /// (`None` in timelines from before it was recorded, which stored no fields at all).
    Acknowledged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        via: Option<String>,
    },
    /// The escalation policy started paging (cycle 1 at open or when the severity rose into
    /// its range, a later cycle after a relapse). Cycles count from 1.
    EscalationStarted {
        cycle: u32,
        policy: String,
        /// "opened as SEV1", "severity rose to SEV2", "relapse".
        reason: String,
    },
    /// A person was paged for a level; one event per person per level. Rounds and levels
    /// count from 1. The event's time is when the level was due.
    Paged {
        cycle: u32,
        round: u32,
        level: u32,
        /// The person's id (for contacts and the acknowledge link).
        person: String,
        /// Her name when paged, for the timeline.
        #[serde(default)]
        name: String,
        /// What named her: "schedule:primary" or "person:carol".
        target: String,
        /// The contact kinds used, in config order: ["email", "sms"].
        contacts: Vec<String>,
    },
    /// A level could not page someone: quiet hours below SEV1, no contacts, nobody on call.
    /// The level still counts as fired, so the next one comes on time.
    PageSkipped {
        cycle: u32,
        round: u32,
        level: u32,
        /// Empty when nobody was on call.
        person: String,
        #[serde(default)]
        name: String,
        reason: String,
    },
    /// Every round fired and nobody acknowledged.
    EscalationExhausted {
        cycle: u32,
        reason: String,
    },
    RoleAssigned {
        role: IncidentRole,
        person: String,
    },
    /// The checklist from the runbook, when the incident opens; when its cause moves, the
    /// new cause's steps that are not on it yet are added at the end.
    Checklist {
        steps: Vec<String>,
    },
    /// `step` is 1-based, as responders count the checklist.
    StepTicked {
        step: usize,
    },
    ActionItemAdded {
        item: u32,
        text: String,
        owner: Option<String>,
    },
    ActionItemClosed {
        item: u32,
    },
    /// The responders' root-cause write-up for the postmortem.
    RootCause {
        text: String,
    },
    /// Keel saw every signal of the cause green again. The stability window counts from
    /// here, so an incident a responder moved to monitoring while still red does not resolve
    /// the moment it turns green.
    Recovered {
        reason: String,
    },
    /// The cause failed again after `Recovered`: a relapse, whatever the state.
    Relapsed {
        health: Health,
        reason: String,
    },
    /// The root cause turned out to be deeper: a dependent's failure was seen first (the API)
    /// and now its own dependency fails too (the database behind it). The incident follows
    /// the cause instead of a second incident opening.
    CauseChanged {
        title: String,
        cause: NodeId,
        cause_kind: String,
        failure_kind: String,
        reason: String,
    },
    /// Keel drafted the customer update for the incident's new situation, in every locale of
    /// the page. It is published automatically at `due_at` unless a responder publishes,
    /// holds or replaces it first. A newer draft supersedes any draft still pending.
    DraftPrepared {
        /// 1-based, in order of drafting.
        draft: u32,
        status: PublicStatus,
        title: LocalizedText,
        body: LocalizedText,
        due_at: DateTime<Utc>,
    },
    /// A responder stopped a pending draft from being published automatically (to write
    /// their own, or because nothing should be said yet); it may still be published by hand.
    DraftHeld {
        draft: u32,
    },
    /// A customer update went public: a draft (by a responder, or by Keel when it fell
    /// due), or a responder's own text. Every draft still pending is superseded.
    UpdatePublished {
        /// 1-based, in order of publication.
        update: u32,
        status: PublicStatus,
        title: LocalizedText,
        body: LocalizedText,
        /// The draft published, if it was one.
        draft: Option<u32>,
        /// Published by Keel because the draft fell due.
        auto: bool,
        /// An admin's reason for publishing text the disclosure check refused.
        disclosure_override: Option<String>,
    },
}

/// An event as stored: which incident, its position, when and by whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvent {
    pub incident: IncidentId,
    /// 1-based position within the incident; (incident, seq) is unique.
    pub seq: u32,
    pub at: DateTime<Utc>,
    pub actor: Actor,
    #[serde(flatten)]
    pub kind: EventKind,
}

impl EventKind {
    /// The event's type as stored and shown in the API (`"opened"`, `"state_changed"`, …).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Opened { .. } => "opened",
            EventKind::Signal { .. } => "signal",
            EventKind::ImpactChanged { .. } => "impact_changed",
            EventKind::SeverityChanged { .. } => "severity_changed",
            EventKind::StateChanged { .. } => "state_changed",
            EventKind::Reopened { .. } => "reopened",
            EventKind::EtaChanged { .. } => "eta_changed",
            EventKind::Prompt { .. } => "prompt",
            EventKind::Note { .. } => "note",
            EventKind::Acknowledged { .. } => "acknowledged",
            EventKind::EscalationStarted { .. } => "escalation_started",
            EventKind::Paged { .. } => "paged",
            EventKind::PageSkipped { .. } => "page_skipped",
            EventKind::EscalationExhausted { .. } => "escalation_exhausted",
            EventKind::RoleAssigned { .. } => "role_assigned",
            EventKind::Checklist { .. } => "checklist",
            EventKind::StepTicked { .. } => "step_ticked",
            EventKind::ActionItemAdded { .. } => "action_item_added",
            EventKind::ActionItemClosed { .. } => "action_item_closed",
            EventKind::RootCause { .. } => "root_cause",
            EventKind::Recovered { .. } => "recovered",
            EventKind::Relapsed { .. } => "relapsed",
            EventKind::CauseChanged { .. } => "cause_changed",
            EventKind::DraftPrepared { .. } => "draft_prepared",
            EventKind::DraftHeld { .. } => "draft_held",
            EventKind::UpdatePublished { .. } => "update_published",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Timelines are stored as this JSON and never rewritten, so events written while node
    /// ids were plain strings must still read, and write back to the very same text.
    #[test]
    fn events_stored_with_string_node_ids_read_and_write_back_unchanged() {
        let stored = [
            r#"{"type":"opened","title":"db is down","origin":"detected","cause":"db","cause_kind":"component","failure_kind":"tcp","impacted":["api","db","web"],"affected_users":10000,"reason":"db-check: connection refused","failing_since":"2026-03-01T09:00:00Z"}"#,
            r#"{"type":"opened","title":"Power cut","origin":"declared","cause":null,"cause_kind":"manual","failure_kind":"manual","impacted":["office-net"],"affected_users":0,"reason":"declared by ann","failing_since":"2026-03-01T09:05:30.250Z"}"#,
            r#"{"type":"signal","source":"api@osaka","component":"api","health":"down","reason":"HTTP 503"}"#,
            r#"{"type":"impact_changed","impacted":["api","db"],"affected_users":6000}"#,
            r#"{"type":"impact_changed","impacted":[],"affected_users":0}"#,
            r#"{"type":"cause_changed","title":"payments is down","cause":"payments","cause_kind":"vendor","failure_kind":"vendor","reason":"api fails because payments fails: major outage"}"#,
        ];
        for text in stored {
            let kind: EventKind =
                serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(serde_json::to_string(&kind).unwrap(), text);
        }
        let opened: EventKind = serde_json::from_str(stored[0]).unwrap();
        let EventKind::Opened {
            cause, impacted, ..
        } = opened
        else {
            panic!("not opened: {opened:?}");
        };
        assert_eq!(cause, Some(NodeId::parse("db").unwrap()));
        assert!(impacted.contains(&NodeId::parse("web").unwrap()));
    }
}
