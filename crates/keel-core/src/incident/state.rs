//! The folded incident: what one incident is right now, rebuilt from its events alone.
//!
//! Nothing about an incident is stored except its timeline. `Incident::replay` folds the
//! events in order and refuses a timeline that could not have been written by Keel (a gap in
//! the sequence, a state change from a state the incident was not in, a tick of a step that
//! does not exist), so a corrupted store is noticed instead of shown. Everything derived —
//! durations, user-minutes, the stability window — comes from the event times, never from a
//! clock, so replaying yields exactly the incident that was built incrementally.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::model::{
    Actor, EventKind, IncidentEvent, IncidentId, IncidentRole, IncidentState, Origin,
};
use crate::assess::{Eta, Severity};
use crate::config::LocalizedText;
use crate::ids::NodeId;
use crate::public::PublicStatus;

/// One runbook step on the incident's checklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChecklistStep {
    pub text: String,
    pub done_at: Option<DateTime<Utc>>,
    pub done_by: Option<String>,
}

/// Something to do so that the incident does not happen again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionItem {
    /// 1-based, in order of creation.
    pub id: u32,
    pub text: String,
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// What became of a drafted customer update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DraftFate {
    /// Waiting: Keel publishes it at its due time.
    Pending,
    /// A responder held it: only a person publishes it now.
    Held,
    /// A newer draft or a published update replaced it.
    Superseded,
    Published,
}

/// A customer update Keel drafted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// 1-based.
    pub id: u32,
    pub status: PublicStatus,
    pub title: LocalizedText,
    pub body: LocalizedText,
    pub prepared_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub fate: DraftFate,
}

/// A customer update that went public.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublishedUpdate {
    /// 1-based.
    pub id: u32,
    pub status: PublicStatus,
    pub title: LocalizedText,
    pub body: LocalizedText,
    pub published_at: DateTime<Utc>,
    /// "keel" when Keel published a draft that fell due, else the responder.
    pub published_by: String,
    pub draft: Option<u32>,
    pub auto: bool,
    pub disclosure_override: Option<String>,
    /// The incident's state and recurrence count when it was published.
    pub during: PublicMark,
}

/// The incident's state and recurrence count at a moment, to tell whether customers have
/// heard about the situation the incident is in now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicMark {
    pub state: IncidentState,
    pub recurrences: u32,
}

/// An incident as its events describe it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub title: String,
    pub origin: Origin,
    pub state: IncidentState,
    pub severity: Option<Severity>,
    /// Why the current severity was chosen.
    pub severity_reason: Option<String>,
    /// Whether a responder set the current severity. Keel then leaves it alone unless the
    /// impact gets worse than both it and Keel's own last judgment.
    pub severity_by_hand: bool,
    /// The last severity Keel itself judged (a responder may since have changed it).
    pub judged_severity: Option<Severity>,
    /// The root-cause node; `None` for a declared incident.
    pub cause: Option<NodeId>,
    /// "component", "vendor", "infra" or "manual".
    pub cause_kind: String,
    pub failure_kind: String,
    /// Why it was opened (the failing checks' reasons, or who declared it).
    pub opened_reason: String,
    pub impacted: BTreeSet<NodeId>,
    pub affected_users: u64,
    pub eta: Option<Eta>,
    /// Reopened at least once after resolution.
    pub recurring: bool,
    pub recurrences: u32,
    /// When the incident was opened.
    pub started_at: DateTime<Utc>,
    /// When its cause started failing, as far as Keel knows.
    pub failing_since: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    /// The latest entry into monitoring; set exactly while the state is monitoring.
    pub monitoring_since: Option<DateTime<Utc>>,
    /// The first entry into monitoring (for time to mitigate).
    pub mitigated_at: Option<DateTime<Utc>>,
    /// Set exactly while the state is resolved (a reopening clears it).
    pub resolved_at: Option<DateTime<Utc>>,
    /// When Keel last saw every signal of the cause green; `None` while it fails (or has
    /// not been seen green since it last failed).
    pub recovered_at: Option<DateTime<Utc>>,
    pub roles: BTreeMap<IncidentRole, String>,
    pub checklist: Vec<ChecklistStep>,
    pub action_items: Vec<ActionItem>,
    pub root_cause: Option<String>,
    /// How many internal notes are on the timeline.
    pub notes: u32,
    /// Seq of the latest event: the next event gets `last_seq + 1`.
    pub last_seq: u32,
    pub last_event_at: DateTime<Utc>,
    /// Affected users × seconds accumulated up to `accruing_since` (or for good, when not
    /// accruing).
    pub user_seconds: u64,
    /// While the incident is investigating or identified, the time from which the current
    /// `affected_users` accrue; `None` in monitoring and resolved.
    pub accruing_since: Option<DateTime<Utc>>,
    /// Keel's drafts of customer updates, oldest first.
    #[serde(default)]
    pub drafts: Vec<Draft>,
    /// Customer updates published, oldest first.
    #[serde(default)]
    pub updates: Vec<PublishedUpdate>,
    /// When the first customer update went public (for time to inform).
    #[serde(default)]
    pub first_public_update_at: Option<DateTime<Utc>>,
    /// The situation the latest draft or published update was about; Keel drafts again
    /// when the incident moves on from it.
    #[serde(default)]
    pub public_mark: Option<PublicMark>,
    /// The escalation's current cycle; `None` until a policy first pages for it.
    #[serde(default)]
    pub escalation: Option<EscalationState>,
    /// Every severity the incident has had, with when it was set (for when it entered a
    /// policy's range).
    #[serde(default)]
    pub severity_changes: Vec<(DateTime<Utc>, Severity)>,
    /// The latest relapse (`Relapsed` or `Reopened`), which may page again.
    #[serde(default)]
    pub relapsed_at: Option<DateTime<Utc>>,
    /// Keel's prompts about the alternatives of the impacted components, oldest first (see
    /// `assess::backup_prompt`): the timeline's word on whether each may be offered, which
    /// the engine compares against to prompt only on a change, and the drafts read.
    #[serde(default)]
    pub backup_prompts: Vec<String>,
    /// The locations the outage was seen from alone, when it is regional (a monitor checked
    /// from several places fails from some and is fine from others); empty otherwise. Read
    /// from the latest reason the cause was given (opened, relapsed, reopened, moved), so
    /// the drafts can say "Customers reaching Checkout from osaka may see errors".
    #[serde(default)]
    pub regions: Vec<String>,
}

/// Where the escalation stands, folded from its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationState {
    /// From 1; a relapse starts the next.
    pub cycle: u32,
    pub policy: String,
    pub started_at: DateTime<Utc>,
    /// (round, level), both from 1, that have fired in this cycle (paged or skipped).
    pub fired: BTreeSet<(u32, u32)>,
    /// Who acknowledged this cycle, and when.
    pub acknowledged: Option<(String, DateTime<Utc>)>,
    pub exhausted: bool,
    /// The latest relapse after this cycle started (in timeline order): what may start the
    /// next cycle.
    #[serde(default)]
    pub relapsed_at: Option<DateTime<Utc>>,
}

/// What every [`crate::assess::backup_prompt`] starts with.
const BACKUP_PROMPT_START: &str = "The backup '";

/// A timeline that no valid sequence of decisions could have produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("no events: an incident starts with its `opened` event")]
    Empty,
    #[error("incident {incident}: event {seq} is `{kind}`, but an incident starts with `opened`")]
    NotOpened {
        incident: IncidentId,
        seq: u32,
        kind: &'static str,
    },
    #[error("event {seq} belongs to incident {found}, not to incident {expected}")]
    WrongIncident {
        expected: IncidentId,
        found: IncidentId,
        seq: u32,
    },
    #[error("incident {incident}: expected event {expected} next, found event {found}")]
    OutOfSequence {
        incident: IncidentId,
        expected: u32,
        found: u32,
    },
    #[error("incident {incident}: event {seq} (`{kind}`): {problem}")]
    Invalid {
        incident: IncidentId,
        seq: u32,
        kind: &'static str,
        problem: String,
    },
}

impl Incident {
    /// Rebuilds an incident from its complete timeline, in seq order.
    pub fn replay(events: &[IncidentEvent]) -> Result<Incident, ReplayError> {
        let (first, rest) = events.split_first().ok_or(ReplayError::Empty)?;
        let mut incident = Incident::open(first)?;
        for event in rest {
            incident.apply(event)?;
        }
        Ok(incident)
    }

    /// Starts an incident from its `Opened` event, which must be event 1.
    pub fn open(event: &IncidentEvent) -> Result<Incident, ReplayError> {
        let EventKind::Opened {
            title,
            origin,
            cause,
            cause_kind,
            failure_kind,
            impacted,
            affected_users,
            reason,
            failing_since,
        } = &event.kind
        else {
            return Err(ReplayError::NotOpened {
                incident: event.incident,
                seq: event.seq,
                kind: event.kind.name(),
            });
        };
        if event.seq != 1 {
            return Err(ReplayError::OutOfSequence {
                incident: event.incident,
                expected: 1,
                found: event.seq,
            });
        }
        Ok(Incident {
            id: event.incident,
            title: title.clone(),
            origin: *origin,
            state: IncidentState::Investigating,
            severity: None,
            severity_reason: None,
            severity_by_hand: false,
            judged_severity: None,
            cause: cause.clone(),
            cause_kind: cause_kind.clone(),
            failure_kind: failure_kind.clone(),
            opened_reason: reason.clone(),
            impacted: impacted.clone(),
            affected_users: *affected_users,
            eta: None,
            recurring: false,
            recurrences: 0,
            started_at: event.at,
            failing_since: *failing_since,
            acknowledged_at: None,
            acknowledged_by: None,
            monitoring_since: None,
            mitigated_at: None,
            resolved_at: None,
            recovered_at: None,
            roles: BTreeMap::new(),
            checklist: Vec::new(),
            action_items: Vec::new(),
            root_cause: None,
            notes: 0,
            last_seq: 1,
            last_event_at: event.at,
            user_seconds: 0,
            accruing_since: Some(event.at),
            drafts: Vec::new(),
            updates: Vec::new(),
            first_public_update_at: None,
            public_mark: None,
            escalation: None,
            severity_changes: Vec::new(),
            relapsed_at: None,
            backup_prompts: Vec::new(),
            regions: crate::quorum::regional_locations(reason),
        })
    }

    /// Folds the next event in. On error the incident is left unchanged.
    pub fn apply(&mut self, event: &IncidentEvent) -> Result<(), ReplayError> {
        if event.incident != self.id {
            return Err(ReplayError::WrongIncident {
                expected: self.id,
                found: event.incident,
                seq: event.seq,
            });
        }
        if event.seq != self.last_seq + 1 {
            return Err(ReplayError::OutOfSequence {
                incident: self.id,
                expected: self.last_seq + 1,
                found: event.seq,
            });
        }
        let invalid = |problem: String| ReplayError::Invalid {
            incident: self.id,
            seq: event.seq,
            kind: event.kind.name(),
            problem,
        };
        let at = event.at;
        // Every check comes before the first change, so a refused event changes nothing.
        match &event.kind {
            EventKind::Opened { .. } => {
                return Err(invalid("the incident is already open".to_string()));
            }
            // Facts for the timeline only: they change nothing in the folded incident.
            EventKind::Signal { .. } => {}
            EventKind::Prompt { text } => {
                if text.starts_with(BACKUP_PROMPT_START) {
                    self.backup_prompts.push(text.clone());
                }
            }
            EventKind::ImpactChanged {
                impacted,
                affected_users,
            } => {
                self.accrue(at);
                self.impacted = impacted.clone();
                self.affected_users = *affected_users;
            }
            EventKind::SeverityChanged { from, to, reason } => {
                if *from != self.severity {
                    return Err(invalid(format!(
                        "it changes the severity from {}, but the severity is {}",
                        severity_words(*from),
                        severity_words(self.severity)
                    )));
                }
                self.severity = Some(*to);
                self.severity_changes.push((at, *to));
                self.severity_reason = Some(reason.clone());
                match event.actor {
                    Actor::System => {
                        self.severity_by_hand = false;
                        self.judged_severity = Some(*to);
                    }
                    Actor::User(_) => self.severity_by_hand = true,
                }
            }
            EventKind::StateChanged { from, to, .. } => {
                if *from != self.state {
                    return Err(invalid(format!(
                        "it moves the incident from {from}, but the incident is {}",
                        self.state
                    )));
                }
                if from == to {
                    return Err(invalid(format!(
                        "it moves the incident from {from} to itself"
                    )));
                }
                self.enter(*to, at);
            }
            EventKind::Reopened {
                recurrences,
                reason,
            } => {
                if self.state != IncidentState::Resolved {
                    return Err(invalid(format!(
                        "only a resolved incident can reopen, and this one is {}",
                        self.state
                    )));
                }
                if *recurrences != self.recurrences + 1 {
                    return Err(invalid(format!(
                        "it counts recurrence {recurrences}, but this would be recurrence {}",
                        self.recurrences + 1
                    )));
                }
                self.recurrences = *recurrences;
                self.recurring = true;
                self.relapsed(at);
                self.recovered_at = None;
                self.regions = crate::quorum::regional_locations(reason);
            }
            EventKind::EtaChanged { eta } => self.eta = Some(eta.clone()),
            EventKind::Note { .. } => self.notes += 1,
            EventKind::Acknowledged { .. } => {
                // Each escalation cycle needs its own acknowledgement (a relapse pages again);
                // without one, the incident is acknowledged once.
                match &mut self.escalation {
                    Some(e) => {
                        if let Some((by, when)) = &e.acknowledged {
                            return Err(invalid(format!(
                                "escalation cycle {} was already acknowledged by {by} at {when}",
                                e.cycle
                            )));
                        }
                        e.acknowledged = Some((event.actor.to_string(), at));
                    }
                    None => {
                        if let Some(when) = self.acknowledged_at {
                            return Err(invalid(format!(
                                "the incident was already acknowledged at {when}"
                            )));
                        }
                    }
                }
                // The first acknowledgement is the one time to acknowledge measures.
                if self.acknowledged_at.is_none() {
                    self.acknowledged_at = Some(at);
                    self.acknowledged_by = Some(event.actor.to_string());
                }
            }
            EventKind::EscalationStarted { cycle, policy, .. } => {
                let next = self.escalation.as_ref().map_or(1, |e| e.cycle + 1);
                if *cycle != next {
                    return Err(invalid(format!(
                        "it starts escalation cycle {cycle}, but the next cycle is {next}"
                    )));
                }
                self.escalation = Some(EscalationState {
                    cycle: *cycle,
                    policy: policy.clone(),
                    started_at: at,
                    fired: BTreeSet::new(),
                    acknowledged: None,
                    exhausted: false,
                    relapsed_at: None,
                });
            }
            EventKind::Paged {
                cycle,
                round,
                level,
                ..
            }
            | EventKind::PageSkipped {
                cycle,
                round,
                level,
                ..
            } => {
                let e = current_cycle(&mut self.escalation, *cycle).map_err(invalid)?;
                if *round == 0 || *level == 0 {
                    return Err(invalid("rounds and levels count from 1".to_string()));
                }
                e.fired.insert((*round, *level));
            }
            EventKind::EscalationExhausted { cycle, .. } => {
                current_cycle(&mut self.escalation, *cycle)
                    .map_err(invalid)?
                    .exhausted = true;
            }
            EventKind::RoleAssigned { role, person } => {
                self.roles.insert(*role, person.clone());
            }
            EventKind::Checklist { steps } => {
                // Step numbers responders already use must keep their meaning: new steps
                // only ever go at the end.
                for text in steps {
                    if !self.checklist.iter().any(|s| s.text == *text) {
                        self.checklist.push(ChecklistStep {
                            text: text.clone(),
                            done_at: None,
                            done_by: None,
                        });
                    }
                }
            }
            EventKind::StepTicked { step } => {
                let len = self.checklist.len();
                let Some(entry) = step
                    .checked_sub(1)
                    .and_then(|index| self.checklist.get_mut(index))
                else {
                    return Err(invalid(format!(
                        "step {step} does not exist: the checklist has {len} steps"
                    )));
                };
                if entry.done_at.is_some() {
                    return Err(invalid(format!("step {step} is already ticked")));
                }
                entry.done_at = Some(at);
                entry.done_by = Some(event.actor.to_string());
            }
            EventKind::ActionItemAdded { item, text, owner } => {
                let next = self.action_items.len() as u32 + 1;
                if *item != next {
                    return Err(invalid(format!(
                        "it adds action item {item}, but the next one is {next}"
                    )));
                }
                self.action_items.push(ActionItem {
                    id: *item,
                    text: text.clone(),
                    owner: owner.clone(),
                    created_at: at,
                    closed_at: None,
                });
            }
            EventKind::ActionItemClosed { item } => {
                let Some(entry) = self.action_items.iter_mut().find(|a| a.id == *item) else {
                    return Err(invalid(format!("action item {item} does not exist")));
                };
                if entry.closed_at.is_some() {
                    return Err(invalid(format!("action item {item} is already closed")));
                }
                entry.closed_at = Some(at);
            }
            EventKind::RootCause { text } => self.root_cause = Some(text.clone()),
            EventKind::Recovered { .. } => {
                // Keep the first sighting: the stability window counts from it.
                self.recovered_at.get_or_insert(at);
            }
            EventKind::Relapsed { reason, .. } => {
                self.recovered_at = None;
                self.relapsed(at);
                self.regions = crate::quorum::regional_locations(reason);
            }
            EventKind::CauseChanged {
                title,
                cause,
                cause_kind,
                failure_kind,
                reason,
            } => {
                self.regions = crate::quorum::regional_locations(reason);
                self.title = title.clone();
                self.cause = Some(cause.clone());
                self.cause_kind = cause_kind.clone();
                self.failure_kind = failure_kind.clone();
            }
            EventKind::DraftPrepared {
                draft,
                status,
                title,
                body,
                due_at,
            } => {
                let next = self.drafts.len() as u32 + 1;
                if *draft != next {
                    return Err(invalid(format!(
                        "it prepares draft {draft}, but the next one is {next}"
                    )));
                }
                self.supersede_drafts();
                self.drafts.push(Draft {
                    id: *draft,
                    status: *status,
                    title: title.clone(),
                    body: body.clone(),
                    prepared_at: at,
                    due_at: *due_at,
                    fate: DraftFate::Pending,
                });
                self.public_mark = Some(self.mark());
            }
            EventKind::DraftHeld { draft } => {
                let Some(entry) = self.drafts.iter_mut().find(|d| d.id == *draft) else {
                    return Err(invalid(format!("draft {draft} does not exist")));
                };
                if entry.fate != DraftFate::Pending {
                    return Err(invalid(format!(
                        "draft {draft} is {}, not pending",
                        fate_words(entry.fate)
                    )));
                }
                entry.fate = DraftFate::Held;
            }
            EventKind::UpdatePublished {
                update,
                status,
                title,
                body,
                draft,
                auto,
                disclosure_override,
            } => {
                let next = self.updates.len() as u32 + 1;
                if *update != next {
                    return Err(invalid(format!(
                        "it publishes update {update}, but the next one is {next}"
                    )));
                }
                if let Some(d) = draft {
                    match self.drafts.iter().find(|x| x.id == *d) {
                        None => return Err(invalid(format!("draft {d} does not exist"))),
                        Some(x) if !matches!(x.fate, DraftFate::Pending | DraftFate::Held) => {
                            return Err(invalid(format!(
                                "draft {d} is {}, so it cannot be published",
                                fate_words(x.fate)
                            )));
                        }
                        Some(_) => {}
                    }
                }
                self.supersede_drafts();
                if let Some(entry) = draft.and_then(|d| self.drafts.iter_mut().find(|x| x.id == d))
                {
                    entry.fate = DraftFate::Published;
                }
                let during = self.mark();
                self.updates.push(PublishedUpdate {
                    id: *update,
                    status: *status,
                    title: title.clone(),
                    body: body.clone(),
                    published_at: at,
                    published_by: event.actor.to_string(),
                    draft: *draft,
                    auto: *auto,
                    disclosure_override: disclosure_override.clone(),
                    during,
                });
                self.first_public_update_at.get_or_insert(at);
                self.public_mark = Some(during);
            }
        }
        self.last_seq = event.seq;
        // Escalation events carry the time their level was due, which may be a little
        // before the last event when the job ran late; the incident's latest change stays put.
        self.last_event_at = self.last_event_at.max(at);
        Ok(())
    }

    /// Affected users × minutes so far: counted while the incident is investigating or
    /// identified, piecewise as the number of affected users changes, and paused while it is
    /// in monitoring or resolved.
    pub fn user_minutes(&self, now: DateTime<Utc>) -> u64 {
        let running = match self.accruing_since {
            Some(since) => self
                .affected_users
                .saturating_mul(seconds_between(since, now)),
            None => 0,
        };
        self.user_seconds.saturating_add(running) / 60
    }

    /// The incident's state and recurrence count now.
    pub fn mark(&self) -> PublicMark {
        PublicMark {
            state: self.state,
            recurrences: self.recurrences,
        }
    }

    /// Who acknowledged what is going on now, and when: with an escalation running, its
    /// current cycle's acknowledgement (a relapse pages again and needs a new one); without
    /// one, the incident's. `None` while nobody has.
    pub fn acknowledgement(&self) -> Option<(String, DateTime<Utc>)> {
        match &self.escalation {
            Some(e) => e.acknowledged.clone(),
            None => self
                .acknowledged_at
                .map(|at| (self.acknowledged_by.clone().unwrap_or_default(), at)),
        }
    }

    /// The drafts Keel will publish by itself when they fall due.
    pub fn pending_drafts(&self) -> impl Iterator<Item = &Draft> {
        self.drafts.iter().filter(|d| d.fate == DraftFate::Pending)
    }

    /// The latest prompt about the alternative named `name` (English), if any: what the
    /// timeline last said about offering it.
    pub fn latest_backup_prompt(&self, name: &str) -> Option<&str> {
        let prefix = crate::assess::backup_prompt_prefix(name);
        self.backup_prompts
            .iter()
            .rev()
            .find(|p| p.starts_with(&prefix))
            .map(String::as_str)
    }

    /// Whether the timeline's latest word on the alternative named `name` is that it may be
    /// offered to customers.
    pub fn backup_offered(&self, name: &str) -> bool {
        self.latest_backup_prompt(name) == Some(&crate::assess::backup_prompt(name, None))
    }

    /// The latest customer update, if any went public.
    pub fn latest_update(&self) -> Option<&PublishedUpdate> {
        self.updates.last()
    }

    /// Every draft still waiting (pending or held) is replaced by what comes now.
    fn supersede_drafts(&mut self) {
        for d in &mut self.drafts {
            if matches!(d.fate, DraftFate::Pending | DraftFate::Held) {
                d.fate = DraftFate::Superseded;
            }
        }
    }

    pub fn is_resolved(&self) -> bool {
        self.state == IncidentState::Resolved
    }

    /// Whether the incident was opened by the engine from signals.
    pub fn is_detected(&self) -> bool {
        self.origin == Origin::Detected
    }

    /// Wraps new events for this incident with the next seqs, ready to store and `apply`.
    pub fn stamp(
        &self,
        at: DateTime<Utc>,
        events: impl IntoIterator<Item = (Actor, EventKind)>,
    ) -> Vec<IncidentEvent> {
        stamp(self.id, self.last_seq + 1, at, events)
    }

    fn relapsed(&mut self, at: DateTime<Utc>) {
        self.relapsed_at = Some(at);
        if let Some(e) = &mut self.escalation {
            e.relapsed_at = Some(at);
        }
    }

    fn accrue(&mut self, at: DateTime<Utc>) {
        if let Some(since) = self.accruing_since {
            let piece = self
                .affected_users
                .saturating_mul(seconds_between(since, at));
            self.user_seconds = self.user_seconds.saturating_add(piece);
            // A clock a little behind on another instance must not count time twice.
            self.accruing_since = Some(since.max(at));
        }
    }

    fn enter(&mut self, to: IncidentState, at: DateTime<Utc>) {
        self.accrue(at);
        match to {
            IncidentState::Investigating | IncidentState::Identified => {
                self.monitoring_since = None;
                self.resolved_at = None;
                if self.accruing_since.is_none() {
                    self.accruing_since = Some(at);
                }
            }
            IncidentState::Monitoring => {
                self.monitoring_since = Some(at);
                self.mitigated_at.get_or_insert(at);
                self.resolved_at = None;
                self.accruing_since = None;
            }
            IncidentState::Resolved => {
                self.monitoring_since = None;
                self.resolved_at = Some(at);
                self.accruing_since = None;
            }
        }
        self.state = to;
    }
}

/// The running escalation cycle, which an event about `cycle` must be about.
fn current_cycle(
    escalation: &mut Option<EscalationState>,
    cycle: u32,
) -> Result<&mut EscalationState, String> {
    match escalation {
        Some(e) if e.cycle != cycle => Err(format!(
            "it is about escalation cycle {cycle}, but cycle {} is running",
            e.cycle
        )),
        Some(e) => Ok(e),
        None => Err(format!(
            "it is about escalation cycle {cycle}, but no escalation has started"
        )),
    }
}

/// Wraps events for incident `incident` with consecutive seqs from `first_seq`, all at `at`.
pub fn stamp(
    incident: IncidentId,
    first_seq: u32,
    at: DateTime<Utc>,
    events: impl IntoIterator<Item = (Actor, EventKind)>,
) -> Vec<IncidentEvent> {
    events
        .into_iter()
        .zip(first_seq..)
        .map(|((actor, kind), seq)| IncidentEvent {
            incident,
            seq,
            at,
            actor,
            kind,
        })
        .collect()
}

fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_seconds()).unwrap_or(0)
}

pub(crate) fn fate_words(fate: DraftFate) -> &'static str {
    match fate {
        DraftFate::Pending => "pending",
        DraftFate::Held => "held",
        DraftFate::Superseded => "superseded",
        DraftFate::Published => "already published",
    }
}

fn severity_words(severity: Option<Severity>) -> String {
    severity.map_or_else(|| "not set".to_string(), |s| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::testkit::{node, set, t};
    use crate::public::PublicStatus;

    fn opened(id: IncidentId, users: u64) -> IncidentEvent {
        IncidentEvent {
            incident: id,
            seq: 1,
            at: t(0),
            actor: Actor::System,
            kind: EventKind::Opened {
                title: "db is down".into(),
                origin: Origin::Detected,
                cause: Some(node("db")),
                cause_kind: "component".into(),
                failure_kind: "tcp".into(),
                impacted: set(&["db", "api"]),
                affected_users: users,
                reason: "db-port: connection refused".into(),
                failing_since: t(-1),
            },
        }
    }

    fn ev(seq: u32, minute: i64, kind: EventKind) -> IncidentEvent {
        IncidentEvent {
            incident: IncidentId(7),
            seq,
            at: t(minute),
            actor: Actor::System,
            kind,
        }
    }

    fn to(from: IncidentState, to: IncidentState) -> EventKind {
        EventKind::StateChanged {
            from,
            to,
            reason: "test".into(),
        }
    }

    fn problem(err: ReplayError) -> String {
        match err {
            ReplayError::Invalid { problem, .. } => problem,
            other => panic!("expected an invalid event, got {other:?}"),
        }
    }

    use IncidentState::*;

    #[test]
    fn opened_starts_investigating_with_its_facts() {
        let inc = Incident::replay(&[opened(IncidentId(7), 100)]).unwrap();
        assert_eq!(inc.id, IncidentId(7));
        assert_eq!(inc.state, Investigating);
        assert_eq!(inc.cause.as_ref().map(NodeId::as_str), Some("db"));
        assert_eq!(inc.started_at, t(0));
        assert_eq!(inc.failing_since, t(-1));
        assert_eq!(inc.last_seq, 1);
        assert!(!inc.recurring);
    }

    #[test]
    fn a_timeline_must_start_with_opened_as_event_one() {
        assert_eq!(Incident::replay(&[]), Err(ReplayError::Empty));
        let err = Incident::replay(&[ev(1, 0, EventKind::Acknowledged { via: None })]).unwrap_err();
        assert!(matches!(
            err,
            ReplayError::NotOpened {
                kind: "acknowledged",
                ..
            }
        ));
        assert!(err.to_string().contains("starts with `opened`"), "{err}");
        let mut second = opened(IncidentId(7), 1);
        second.seq = 2;
        assert!(matches!(
            Incident::replay(&[second]),
            Err(ReplayError::OutOfSequence {
                expected: 1,
                found: 2,
                ..
            })
        ));
        let err = Incident::replay(&[
            opened(IncidentId(7), 1),
            IncidentEvent {
                seq: 2,
                ..opened(IncidentId(7), 1)
            },
        ])
        .unwrap_err();
        assert_eq!(problem(err), "the incident is already open");
    }

    #[test]
    fn seqs_must_be_contiguous_and_of_one_incident() {
        let events = [
            opened(IncidentId(7), 1),
            ev(3, 1, EventKind::Acknowledged { via: None }),
        ];
        assert_eq!(
            Incident::replay(&events),
            Err(ReplayError::OutOfSequence {
                incident: IncidentId(7),
                expected: 2,
                found: 3
            })
        );
        let mut other = ev(2, 1, EventKind::Acknowledged { via: None });
        other.incident = IncidentId(8);
        let err = Incident::replay(&[opened(IncidentId(7), 1), other]).unwrap_err();
        assert_eq!(
            err,
            ReplayError::WrongIncident {
                expected: IncidentId(7),
                found: IncidentId(8),
                seq: 2
            }
        );
        assert_eq!(
            err.to_string(),
            "event 2 belongs to incident 8, not to incident 7"
        );
    }

    #[test]
    fn state_changes_must_start_from_the_current_state() {
        let err = Incident::replay(&[opened(IncidentId(7), 1), ev(2, 1, to(Monitoring, Resolved))])
            .unwrap_err();
        assert_eq!(
            problem(err),
            "it moves the incident from monitoring, but the incident is investigating"
        );
        let err = Incident::replay(&[
            opened(IncidentId(7), 1),
            ev(2, 1, to(Investigating, Investigating)),
        ])
        .unwrap_err();
        assert_eq!(
            problem(err),
            "it moves the incident from investigating to itself"
        );
    }

    #[test]
    fn a_refused_event_leaves_the_incident_as_it_was() {
        let mut inc = Incident::replay(&[opened(IncidentId(7), 1)]).unwrap();
        let before = inc.clone();
        assert!(inc.apply(&ev(2, 1, to(Monitoring, Resolved))).is_err());
        assert!(inc
            .apply(&ev(2, 1, EventKind::StepTicked { step: 1 }))
            .is_err());
        assert_eq!(inc, before);
    }

    #[test]
    fn monitoring_and_resolution_times_follow_the_state() {
        let inc = Incident::replay(&[
            opened(IncidentId(7), 1),
            ev(2, 10, to(Investigating, Monitoring)),
            ev(3, 12, to(Monitoring, Investigating)),
            ev(4, 20, to(Investigating, Monitoring)),
            ev(5, 30, to(Monitoring, Resolved)),
        ])
        .unwrap();
        assert_eq!(inc.state, Resolved);
        assert_eq!(
            inc.mitigated_at,
            Some(t(10)),
            "the first entry into monitoring"
        );
        assert_eq!(inc.monitoring_since, None, "cleared on leaving monitoring");
        assert_eq!(inc.resolved_at, Some(t(30)));
    }

    #[test]
    fn reopening_needs_a_resolved_incident_and_the_next_count() {
        let err = Incident::replay(&[
            opened(IncidentId(7), 1),
            ev(
                2,
                1,
                EventKind::Reopened {
                    recurrences: 1,
                    reason: "x".into(),
                },
            ),
        ])
        .unwrap_err();
        assert_eq!(
            problem(err),
            "only a resolved incident can reopen, and this one is investigating"
        );
        let resolved = [
            opened(IncidentId(7), 1),
            ev(2, 5, to(Investigating, Resolved)),
        ];
        let mut events = resolved.to_vec();
        events.push(ev(
            3,
            6,
            EventKind::Reopened {
                recurrences: 2,
                reason: "x".into(),
            },
        ));
        let err = Incident::replay(&events).unwrap_err();
        assert_eq!(
            problem(err),
            "it counts recurrence 2, but this would be recurrence 1"
        );
        let mut events = resolved.to_vec();
        events.push(ev(
            3,
            6,
            EventKind::Reopened {
                recurrences: 1,
                reason: "x".into(),
            },
        ));
        events.push(ev(4, 6, to(Resolved, Investigating)));
        let inc = Incident::replay(&events).unwrap();
        assert!(inc.recurring);
        assert_eq!(inc.recurrences, 1);
        assert_eq!(inc.state, Investigating);
        assert_eq!(inc.resolved_at, None);
    }

    #[test]
    fn severity_changes_must_start_from_the_current_severity() {
        let sev = |from, to| EventKind::SeverityChanged {
            from,
            to,
            reason: "r".into(),
        };
        let err = Incident::replay(&[
            opened(IncidentId(7), 1),
            ev(2, 0, sev(Some(Severity::Sev2), Severity::Sev1)),
        ])
        .unwrap_err();
        assert_eq!(
            problem(err),
            "it changes the severity from SEV2, but the severity is not set"
        );
        let mut by_hand = ev(3, 1, sev(Some(Severity::Sev2), Severity::Sev1));
        by_hand.actor = Actor::User("alice".into());
        let inc = Incident::replay(&[
            opened(IncidentId(7), 1),
            ev(2, 0, sev(None, Severity::Sev2)),
            by_hand,
        ])
        .unwrap();
        assert_eq!(inc.severity, Some(Severity::Sev1));
        assert!(inc.severity_by_hand);
        assert_eq!(inc.judged_severity, Some(Severity::Sev2));
    }

    #[test]
    fn checklist_steps_and_action_items_must_exist_once() {
        let checklist = ev(
            2,
            0,
            EventKind::Checklist {
                steps: vec!["a".into(), "b".into()],
            },
        );
        let base = [opened(IncidentId(7), 1), checklist.clone()];
        let with = |extra: Vec<IncidentEvent>| {
            let mut events = base.to_vec();
            events.extend(extra);
            Incident::replay(&events)
        };
        let tick = |seq, step| {
            let mut e = ev(seq, 1, EventKind::StepTicked { step });
            e.actor = Actor::User("bob".into());
            e
        };
        let inc = with(vec![tick(3, 2)]).unwrap();
        assert_eq!(inc.checklist[1].done_by.as_deref(), Some("bob"));
        assert_eq!(inc.checklist[1].done_at, Some(t(1)));
        assert_eq!(
            problem(with(vec![tick(3, 3)]).unwrap_err()),
            "step 3 does not exist: the checklist has 2 steps"
        );
        assert_eq!(
            problem(with(vec![tick(3, 0)]).unwrap_err()),
            "step 0 does not exist: the checklist has 2 steps"
        );
        assert_eq!(
            problem(with(vec![tick(3, 1), tick(4, 1)]).unwrap_err()),
            "step 1 is already ticked"
        );
        // A second checklist adds only the steps not on it yet, at the end.
        let more = ev(
            3,
            0,
            EventKind::Checklist {
                steps: vec!["b".into(), "c".into()],
            },
        );
        let texts: Vec<String> = with(vec![more])
            .unwrap()
            .checklist
            .into_iter()
            .map(|s| s.text)
            .collect();
        assert_eq!(texts, ["a", "b", "c"]);
        let add = |seq, item| {
            ev(
                seq,
                2,
                EventKind::ActionItemAdded {
                    item,
                    text: "add a replica".into(),
                    owner: None,
                },
            )
        };
        let close = |seq, item| ev(seq, 3, EventKind::ActionItemClosed { item });
        assert_eq!(
            problem(with(vec![add(3, 2)]).unwrap_err()),
            "it adds action item 2, but the next one is 1"
        );
        assert_eq!(
            problem(with(vec![close(3, 1)]).unwrap_err()),
            "action item 1 does not exist"
        );
        assert_eq!(
            problem(with(vec![add(3, 1), close(4, 1), close(5, 1)]).unwrap_err()),
            "action item 1 is already closed"
        );
        let inc = with(vec![add(3, 1), close(4, 1)]).unwrap();
        assert_eq!(inc.action_items[0].created_at, t(2));
        assert_eq!(inc.action_items[0].closed_at, Some(t(3)));
    }

    #[test]
    fn acknowledging_twice_is_not_a_timeline_keel_writes() {
        let mut ack = ev(2, 3, EventKind::Acknowledged { via: None });
        ack.actor = Actor::User("carol".into());
        let inc = Incident::replay(&[opened(IncidentId(7), 1), ack.clone()]).unwrap();
        assert_eq!(inc.acknowledged_at, Some(t(3)));
        assert_eq!(inc.acknowledged_by.as_deref(), Some("carol"));
        let err = Incident::replay(&[
            opened(IncidentId(7), 1),
            ack.clone(),
            IncidentEvent { seq: 3, ..ack },
        ])
        .unwrap_err();
        assert!(problem(err).starts_with("the incident was already acknowledged at"));
    }

    #[test]
    fn user_minutes_accrue_piecewise_and_pause_outside_the_outage() {
        let impact = |users| EventKind::ImpactChanged {
            impacted: set(&["db"]),
            affected_users: users,
        };
        let events = [
            opened(IncidentId(7), 100),               // 100 users from minute 0
            ev(2, 10, impact(300)),                   // 10 × 100 = 1000
            ev(3, 20, to(Investigating, Monitoring)), // 10 × 300 = 3000, pause
            ev(4, 50, impact(50)),                    // paused: nothing
            ev(5, 60, to(Monitoring, Identified)),    // resume with 50 users
            ev(6, 70, to(Identified, Resolved)),      // 10 × 50 = 500
        ];
        let inc = Incident::replay(&events).unwrap();
        assert_eq!(inc.user_minutes(t(70)), 4500);
        assert_eq!(
            inc.user_minutes(t(500)),
            4500,
            "resolved: nothing more accrues"
        );
        let running = Incident::replay(&events[..2]).unwrap();
        assert_eq!(running.user_minutes(t(15)), 1000 + 5 * 300);
        assert_eq!(
            running.user_minutes(t(5)),
            1000,
            "a `now` in the past adds nothing"
        );
    }

    #[test]
    fn recovery_is_kept_from_its_first_sighting_until_a_relapse() {
        let green = |seq, m| {
            ev(
                seq,
                m,
                EventKind::Recovered {
                    reason: "green".into(),
                },
            )
        };
        let inc = Incident::replay(&[opened(IncidentId(7), 1), green(2, 5), green(3, 6)]).unwrap();
        assert_eq!(inc.recovered_at, Some(t(5)));
        let inc = Incident::replay(&[
            opened(IncidentId(7), 1),
            green(2, 5),
            ev(
                3,
                6,
                EventKind::Relapsed {
                    health: crate::Health::Down,
                    reason: "red".into(),
                },
            ),
        ])
        .unwrap();
        assert_eq!(inc.recovered_at, None);
    }

    fn text(s: &str) -> LocalizedText {
        LocalizedText::plain(s)
    }

    fn drafted(draft: u32, due: i64) -> EventKind {
        EventKind::DraftPrepared {
            draft,
            status: PublicStatus::Investigating,
            title: text("Problem affecting Search"),
            body: text("We are investigating."),
            due_at: t(due),
        }
    }

    fn published(update: u32, draft: Option<u32>) -> EventKind {
        EventKind::UpdatePublished {
            update,
            status: PublicStatus::Investigating,
            title: text("Problem affecting Search"),
            body: text("We are investigating."),
            draft,
            auto: draft.is_some(),
            disclosure_override: None,
        }
    }

    #[test]
    fn drafts_are_numbered_and_a_newer_one_supersedes_the_pending() {
        let inc = Incident::replay(&[
            opened(IncidentId(7), 1),
            ev(2, 0, drafted(1, 2)),
            ev(3, 1, drafted(2, 3)),
        ])
        .unwrap();
        let fates: Vec<DraftFate> = inc.drafts.iter().map(|d| d.fate).collect();
        assert_eq!(fates, [DraftFate::Superseded, DraftFate::Pending]);
        assert_eq!(inc.drafts[1].prepared_at, t(1));
        assert_eq!(inc.pending_drafts().count(), 1);
        assert_eq!(
            inc.public_mark,
            Some(PublicMark {
                state: Investigating,
                recurrences: 0
            })
        );
        let err =
            Incident::replay(&[opened(IncidentId(7), 1), ev(2, 0, drafted(2, 2))]).unwrap_err();
        assert_eq!(problem(err), "it prepares draft 2, but the next one is 1");
    }

    #[test]
    fn publishing_supersedes_what_waits_and_is_counted_once() {
        let base = [opened(IncidentId(7), 1), ev(2, 0, drafted(1, 2))];
        let with = |extra: Vec<IncidentEvent>| {
            let mut events = base.to_vec();
            events.extend(extra);
            Incident::replay(&events)
        };
        let inc = with(vec![ev(3, 2, published(1, Some(1)))]).unwrap();
        assert_eq!(inc.drafts[0].fate, DraftFate::Published);
        assert_eq!(inc.first_public_update_at, Some(t(2)));
        assert_eq!(inc.updates[0].published_by, "keel");
        assert!(inc.updates[0].auto);
        // A responder's own text supersedes the pending draft.
        let mut own = ev(3, 1, published(1, None));
        own.actor = Actor::User("ana".into());
        let inc = with(vec![own.clone(), ev(4, 5, published(2, None))]).unwrap();
        assert_eq!(inc.drafts[0].fate, DraftFate::Superseded);
        assert_eq!(inc.updates[0].published_by, "ana");
        assert_eq!(
            inc.first_public_update_at,
            Some(t(1)),
            "the first one counts"
        );
        assert_eq!(
            problem(with(vec![own, ev(4, 2, published(2, Some(1)))]).unwrap_err()),
            "draft 1 is superseded, so it cannot be published"
        );
        assert_eq!(
            problem(with(vec![ev(3, 2, published(2, None))]).unwrap_err()),
            "it publishes update 2, but the next one is 1"
        );
        assert_eq!(
            problem(with(vec![ev(3, 2, published(1, Some(9)))]).unwrap_err()),
            "draft 9 does not exist"
        );
    }

    #[test]
    fn only_a_pending_draft_is_held_and_a_held_one_may_still_be_published() {
        let held = ev(3, 1, EventKind::DraftHeld { draft: 1 });
        let inc = Incident::replay(&[
            opened(IncidentId(7), 1),
            ev(2, 0, drafted(1, 2)),
            held.clone(),
        ])
        .unwrap();
        assert_eq!(inc.drafts[0].fate, DraftFate::Held);
        assert_eq!(inc.pending_drafts().count(), 0);
        let err = Incident::replay(&[
            opened(IncidentId(7), 1),
            ev(2, 0, drafted(1, 2)),
            held.clone(),
            ev(4, 1, EventKind::DraftHeld { draft: 1 }),
        ])
        .unwrap_err();
        assert_eq!(problem(err), "draft 1 is held, not pending");
        let inc = Incident::replay(&[
            opened(IncidentId(7), 1),
            ev(2, 0, drafted(1, 2)),
            held,
            ev(4, 3, published(1, Some(1))),
        ])
        .unwrap();
        assert_eq!(inc.drafts[0].fate, DraftFate::Published);
    }

    #[test]
    fn stamp_numbers_events_after_the_last_one() {
        let inc = Incident::replay(&[opened(IncidentId(7), 1)]).unwrap();
        let events = inc.stamp(
            t(4),
            vec![
                (Actor::System, EventKind::Acknowledged { via: None }),
                (
                    Actor::User("x".into()),
                    EventKind::Note { text: "n".into() },
                ),
            ],
        );
        assert_eq!(events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
        assert!(events
            .iter()
            .all(|e| e.incident == IncidentId(7) && e.at == t(4)));
    }
}
