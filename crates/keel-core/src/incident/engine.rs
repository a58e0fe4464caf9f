//! Correlation: from what the graph says now to the incident events that make the incidents
//! agree with it — one incident per cause, widened rather than duplicated, moved to
//! monitoring when every signal recovers, resolved after the stability window, reopened on a
//! relapse within the recurrence window.
//!
//! `correlate` is a pure function of the incidents, the assessment and the time. It is
//! level-triggered and idempotent: run it again after applying its plan and it plans nothing,
//! so the server may call it on every signal and on a timer without keeping state of its own.
//! Whatever needs remembering between runs (whether Keel has seen the cause green, which
//! severity it last judged) is an event on the incident's timeline, so a restart or another
//! instance reaches the same decisions.
//!
//! The judgments that need the config (impact, severity, ETA, runbook, title) come through
//! the [`Judge`] trait, so this module knows the rules of correlation and nothing else.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::decide::Refusal;
use super::model::{Actor, EventKind, IncidentId, IncidentState, Origin};
use super::state::Incident;
use super::words;
use crate::assess::{
    backup_prompt, troubles_from_assessment, AlternativeStatus, Assessment, Cause, Eta, HealthMap,
    Impact, NodeKind, Severity, SeverityDecision, Troubles,
};
use crate::config::IncidentsConfig;
use crate::ids::NodeId;
use crate::Health;

/// The judgments correlation needs from the config and the history. Implementations must be
/// deterministic (same input, same answer), or `correlate` would not be idempotent.
pub trait Judge {
    /// The nodes and every node that depends on them, directly or not (for a declared
    /// incident, whose responder names only what broke).
    fn with_dependents(&self, nodes: &BTreeSet<NodeId>) -> BTreeSet<NodeId>;
    /// Who is affected when these nodes are impacted.
    fn impact(&self, impacted: &BTreeSet<NodeId>) -> Impact;
    /// The severity rules over an impact, for a cause of this kind.
    fn severity(&self, impact: &Impact, cause_kind: NodeKind) -> SeverityDecision;
    /// The vendor's word for a vendor cause, else an estimate from similar past incidents.
    /// An own cause's estimate is taken when the incident opens, reopens or changes cause
    /// (the history it rests on includes the incident itself while it is resolved, so
    /// following it continuously would flap); a vendor's words are followed as they change.
    fn eta(&self, cause: &Cause) -> Eta;
    /// Runbook steps for a failing node and failure kind, in order; empty when none applies.
    fn runbook(&self, node: &NodeId, failure_kind: &str) -> Vec<String>;
    /// The incident's internal title ("Database db is down").
    fn title(&self, cause: &Cause) -> String;
    /// The alternatives of the impacted nodes, judged against `troubles` (see
    /// [`crate::assess::alternatives`]). None by default: a judge without a graph knows of
    /// no backups.
    fn alternatives(
        &self,
        _impacted: &BTreeSet<NodeId>,
        _troubles: &Troubles,
    ) -> Vec<AlternativeStatus> {
        Vec::new()
    }
}

/// The lifecycle timings from `[incidents]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Every signal green this long before an incident resolves.
    pub stability_window: Duration,
    /// A relapse within this after resolution reopens the incident as recurring.
    pub recurrence_window: Duration,
    /// How long a new incident Keel's own blindness could explain waits (see
    /// [`canary_hold`]).
    pub canary_grace: Duration,
}

impl From<&IncidentsConfig> for Settings {
    fn from(config: &IncidentsConfig) -> Self {
        Settings {
            stability_window: config.stability_window,
            recurrence_window: config.recurrence_window,
            canary_grace: config.canary_grace,
        }
    }
}

/// Failure kinds Keel sees through its own network: its checks, and heartbeat pushes that
/// must reach it. A vendor's page saying it is down, or an alert that did reach Keel, is
/// someone else's observation, which Keel's blindness cannot explain.
const SEEN_THROUGH_OWN_NETWORK: &[&str] = &["http", "tcp", "dns", "tls", "heartbeat"];

/// Until when a new incident for `cause` waits for the canaries, or `None` when it need not.
///
/// When Keel's own network goes, every check fails at once; the canaries are there to say so
/// (while one fails, Keel is blind and opens nothing). But whichever check confirms first
/// wins: an ordinary monitor with fewer confirmations or a shorter interval than the canary
/// would open an incident in the moment before Keel goes blind, and page people for Keel's own
/// outage. So, while the graph has canaries, a new incident (or a reopening) whose failure Keel
/// saw through its own network waits `canary_grace` from when that failure began, and from
/// when the canaries were last confirmed healthy again (after a loss, the other monitors
/// confirm their recovery later than the canary): if a canary confirms meanwhile, Keel goes
/// blind and nothing opens; if not, the incident opens, at most `canary_grace` late.
pub fn canary_hold(
    assessment: &Assessment,
    cause: &Cause,
    settings: &Settings,
) -> Option<DateTime<Utc>> {
    let canaries = assessment.canaries.as_ref()?;
    if settings.canary_grace.is_zero()
        || !SEEN_THROUGH_OWN_NETWORK.contains(&cause.failure_kind.as_str())
    {
        return None;
    }
    let grace = chrono::TimeDelta::from_std(settings.canary_grace).ok()?;
    let from = canaries
        .seeing_since
        .map_or(cause.since, |seeing| seeing.max(cause.since));
    Some(from + grace)
}

/// The next moment a held cause (see [`canary_hold`]) becomes due after `now`, for a caller
/// that only re-runs correlation when something changes.
pub fn next_canary_hold(
    assessment: &Assessment,
    now: DateTime<Utc>,
    settings: &Settings,
) -> Option<DateTime<Utc>> {
    assessment
        .causes
        .iter()
        .filter_map(|c| canary_hold(assessment, c, settings))
        .filter(|due| *due > now)
        .min()
}

/// Events to store, all at the `now` given to `correlate`.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// A new incident: the first event is `Opened`; the store assigns the id.
    Open { events: Vec<(Actor, EventKind)> },
    /// More events for an existing incident.
    Append {
        incident: IncidentId,
        events: Vec<(Actor, EventKind)>,
    },
}

/// Plans the events that make the incidents agree with `assessment` at `now`.
///
/// `incidents` must hold at least every unresolved incident and every incident resolved
/// within the recurrence window (older ones only matter for a responder's resolution of a
/// failure that still goes on).
///
/// - A cause with an unresolved detected incident updates it (impact, severity, a vendor's
///   ETA); if Keel had seen the cause green since, it is a relapse, and an incident in
///   monitoring returns to investigating.
/// - Else, when the cause explains the cause of an unresolved incident (the API's checks
///   failed first, now the database behind it), the oldest such incident follows the deeper
///   cause (`CauseChanged`) instead of a second one opening.
/// - Else, when the cause is a dependent of an unresolved incident's recovered cause (the
///   database is back, the API's checks have not caught up), it belongs to that incident:
///   the incident does not count as green, and if it already did, that is a relapse.
/// - Else, a cause whose latest detected incident was resolved within the recurrence window
///   reopens that incident — unless a responder resolved it while this very failure was
///   going on (the cause failing since before the resolution and never seen green): then the
///   responder's call stands, and only a new failure reopens it.
/// - Else the cause opens a new incident.
/// - An unresolved detected incident whose cause fails neither as a cause nor as a node
///   explained by another cause has recovered: Keel records it and moves the incident to
///   monitoring; once in monitoring and green for the stability window, it resolves. An
///   incident a responder moved out of monitoring while green stays where they put it.
/// - When Keel is blind (a canary fails), nothing is planned at all; a cause that would open
///   or reopen an incident and that Keel's blindness could explain waits for the canaries
///   first ([`canary_hold`]).
/// - Declared incidents are never touched.
pub fn correlate(
    incidents: &[Incident],
    assessment: &Assessment,
    now: DateTime<Utc>,
    settings: &Settings,
    judge: &dyn Judge,
) -> Vec<Planned> {
    correlate_with_unknown(
        incidents,
        assessment,
        &BTreeSet::new(),
        now,
        settings,
        judge,
    )
}

/// [`correlate`], told which nodes Keel cannot judge right now (every source `Unknown`: a
/// vendor page that stopped answering). An incident whose cause is unknown is neither failing
/// nor green: it does not recover, move to monitoring or resolve until Keel can see again.
pub fn correlate_with_unknown(
    incidents: &[Incident],
    assessment: &Assessment,
    unknown: &BTreeSet<NodeId>,
    now: DateTime<Utc>,
    settings: &Settings,
    judge: &dyn Judge,
) -> Vec<Planned> {
    if assessment.blind.is_some() {
        // Keel cannot see: what looks like recovery or failure is its own network.
        return Vec::new();
    }
    let detected: Vec<&Incident> = incidents
        .iter()
        .filter(|i| i.origin == Origin::Detected && i.cause.is_some())
        .collect();
    let mut causes: BTreeMap<&NodeId, &Cause> = BTreeMap::new();
    for cause in &assessment.causes {
        causes.entry(&cause.node).or_insert(cause);
    }
    let mut explained_by: BTreeMap<&NodeId, &Cause> = BTreeMap::new();
    for cause in causes.values() {
        for node in &cause.explained {
            if !causes.contains_key(node) {
                explained_by.entry(node).or_insert(cause);
            }
        }
    }

    let unresolved: Vec<&Incident> = detected
        .iter()
        .copied()
        .filter(|i| !i.is_resolved())
        .collect();

    let mut plans = Vec::new();
    // Incidents that follow a current cause in this pass (their own, or one they moved to).
    let mut rooted: BTreeSet<IncidentId> = BTreeSet::new();
    // Incidents holding dependents that still fail after their own cause recovered.
    let mut claims: BTreeMap<IncidentId, (&Incident, Vec<&Cause>)> = BTreeMap::new();
    for cause in causes.values() {
        let node = &cause.node;
        // Its own incident.
        let own = unresolved
            .iter()
            .filter(|i| cause_of(i) == Some(node))
            .max_by_key(|i| (i.started_at, i.id));
        if let Some(inc) = own {
            rooted.insert(inc.id);
            append(&mut plans, inc.id, still_failing(inc, cause, judge));
            continue;
        }
        // The cause moved down: an incident about a node this cause explains follows it
        // (the API was seen failing first, now the database behind it fails too).
        let below = unresolved
            .iter()
            .filter(|i| {
                !rooted.contains(&i.id) && cause_of(i).is_some_and(|c| cause.explained.contains(c))
            })
            .min_by_key(|i| (i.started_at, i.id));
        if let Some(inc) = below {
            rooted.insert(inc.id);
            append(&mut plans, inc.id, moved_down(inc, cause, judge));
            continue;
        }
        // The cause moved up: a dependent of an incident's cause still fails after that
        // cause recovered — usually its checks lag behind — so it belongs to that incident
        // rather than opening one of its own.
        let above = unresolved
            .iter()
            .filter(|i| {
                !rooted.contains(&i.id)
                    && !cause_of(i).is_some_and(|c| causes.contains_key(c))
                    && i.impacted.contains(node)
            })
            .min_by_key(|i| (i.started_at, i.id));
        if let Some(inc) = above {
            claims
                .entry(inc.id)
                .or_insert((inc, Vec::new()))
                .1
                .push(cause);
            continue;
        }
        // Nothing of Keel's is open for it yet: what opens or reopens may wait for the canaries.
        if canary_hold(assessment, cause, settings).is_some_and(|due| now < due) {
            continue;
        }
        let latest = detected
            .iter()
            .filter(|i| cause_of(i) == Some(node))
            .max_by_key(|i| (i.started_at, i.id));
        match latest {
            Some(inc) if resolved_during_this_failure(inc, cause) => {}
            Some(inc) if resolved_within(inc, now, settings.recurrence_window) => {
                append(&mut plans, inc.id, reopen(inc, cause, now, judge));
            }
            _ => plans.push(Planned::Open {
                events: open(cause, judge),
            }),
        }
    }

    for (id, (inc, dependents)) in &claims {
        append(&mut plans, *id, dependents_failing(inc, dependents));
    }

    for inc in &unresolved {
        if rooted.contains(&inc.id) || claims.contains_key(&inc.id) {
            continue;
        }
        // Detected incidents all have a cause (see `detected`).
        let Some(node) = cause_of(inc) else {
            continue;
        };
        if causes.contains_key(node) || unknown.contains(node) {
            // An older duplicate of a cause's incident, or a cause Keel cannot judge: hold.
            continue;
        }
        let events = match explained_by.get(node) {
            Some(root) => explained_failing(inc, node, root),
            None => recovered(inc, node, now, settings),
        };
        append(&mut plans, inc.id, events);
    }
    plan_backup_prompts(&mut plans, incidents, assessment, unknown, judge);
    plans
}

/// Adds, for every incident unresolved after `plans`, a prompt for each alternative of its
/// impacted nodes whose standing differs from the timeline's latest word on it — at opening
/// every alternative's, later only changes, so a pass that changes nothing says nothing.
/// Judged after the other plans so a widening in this very pass counts.
fn plan_backup_prompts(
    plans: &mut Vec<Planned>,
    incidents: &[Incident],
    assessment: &Assessment,
    unknown: &BTreeSet<NodeId>,
    judge: &dyn Judge,
) {
    let troubles = troubles_from_assessment(assessment, unknown);
    for plan in plans.iter_mut() {
        if let Planned::Open { events } = plan {
            let impacted = match events.first() {
                Some((_, EventKind::Opened { impacted, .. })) => impacted.clone(),
                _ => continue,
            };
            events.extend(system(backup_prompts(None, &impacted, &troubles, judge)));
        }
    }
    let mut seen: BTreeSet<IncidentId> = BTreeSet::new();
    for inc in incidents {
        if !seen.insert(inc.id) {
            continue;
        }
        let planned: Vec<&EventKind> = plans
            .iter()
            .filter_map(|p| match p {
                Planned::Append { incident, events } if *incident == inc.id => Some(events),
                _ => None,
            })
            .flatten()
            .map(|(_, k)| k)
            .collect();
        let mut open = !inc.is_resolved();
        let mut impacted = &inc.impacted;
        for kind in &planned {
            match kind {
                EventKind::ImpactChanged { impacted: i, .. } => impacted = i,
                EventKind::StateChanged { to, .. } => open = *to != IncidentState::Resolved,
                _ => {}
            }
        }
        if !open {
            continue;
        }
        let prompts = backup_prompts(Some(inc), impacted, &troubles, judge);
        if prompts.is_empty() {
            continue;
        }
        let existing = plans.iter_mut().find_map(|p| match p {
            Planned::Append { incident, events } if *incident == inc.id => Some(events),
            _ => None,
        });
        match existing {
            Some(events) => events.extend(system(prompts)),
            None => append(plans, inc.id, system(prompts)),
        }
    }
}

/// One prompt per alternative (each once, whichever impacted node names it) whose standing
/// the incident's timeline does not say yet.
fn backup_prompts(
    inc: Option<&Incident>,
    impacted: &BTreeSet<NodeId>,
    troubles: &Troubles,
    judge: &dyn Judge,
) -> Vec<EventKind> {
    let mut done: BTreeSet<NodeId> = BTreeSet::new();
    let mut out = Vec::new();
    for alt in judge.alternatives(impacted, troubles) {
        if !done.insert(alt.alternative.clone()) {
            continue;
        }
        let name = alt.name.get("en");
        let text = backup_prompt(name, alt.reason.as_deref());
        if inc.and_then(|i| i.latest_backup_prompt(name)) != Some(text.as_str()) {
            out.push(EventKind::Prompt { text });
        }
    }
    out
}

fn cause_of(inc: &Incident) -> Option<&NodeId> {
    inc.cause.as_ref()
}

fn append(plans: &mut Vec<Planned>, incident: IncidentId, events: Vec<(Actor, EventKind)>) {
    if !events.is_empty() {
        plans.push(Planned::Append { incident, events });
    }
}

/// The nodes whose health Keel cannot tell, for [`correlate_with_unknown`].
pub fn unknown_nodes(health: &HealthMap) -> BTreeSet<NodeId> {
    health
        .iter()
        .filter(|(_, h)| h.health == Health::Unknown)
        .map(|(node, _)| node.clone())
        .collect()
}

/// The events of an incident declared by hand for what no monitor sees (a power cut, a
/// vendor's email): `Opened` by `actor`, then Keel's severity, ETA and, when runbooks apply
/// to the named components, the checklist.
pub fn declare(
    title: &str,
    components: &BTreeSet<NodeId>,
    judge: &dyn Judge,
    at: DateTime<Utc>,
    actor: Actor,
) -> Result<Vec<(Actor, EventKind)>, Refusal> {
    let title = title.trim();
    if title.is_empty() {
        return Err(Refusal::new("title", "must not be empty"));
    }
    let chars = title.chars().count();
    if chars > TITLE_MAX_CHARS {
        return Err(Refusal::new(
            "title",
            format!("must be at most {TITLE_MAX_CHARS} characters (it has {chars})"),
        ));
    }
    let impacted = judge.with_dependents(components);
    let impact = judge.impact(&impacted);
    // Declared incidents are about the team's own service until someone says otherwise.
    let decision = judge.severity(&impact, NodeKind::Component);
    let mut steps: Vec<String> = Vec::new();
    for component in components {
        for step in judge.runbook(component, DECLARED_KIND) {
            if !steps.contains(&step) {
                steps.push(step);
            }
        }
    }
    let mut events = vec![
        (
            actor.clone(),
            EventKind::Opened {
                title: title.to_string(),
                origin: Origin::Declared,
                cause: None,
                cause_kind: DECLARED_KIND.to_string(),
                failure_kind: DECLARED_KIND.to_string(),
                impacted,
                affected_users: impact.affected_users,
                reason: format!("declared by {actor}"),
                failing_since: at,
            },
        ),
        (
            Actor::System,
            EventKind::SeverityChanged {
                from: None,
                to: decision.severity,
                reason: decision.reason,
            },
        ),
        (
            Actor::System,
            EventKind::EtaChanged {
                eta: Eta::NoHistory,
            },
        ),
    ];
    if !steps.is_empty() {
        events.push((Actor::System, EventKind::Checklist { steps }));
    }
    Ok(events)
}

/// Longest incident title, in characters.
pub const TITLE_MAX_CHARS: usize = 200;

/// `cause_kind` and `failure_kind` of a declared incident.
const DECLARED_KIND: &str = "manual";

fn cause_kind(kind: NodeKind) -> &'static str {
    match kind {
        NodeKind::Component => "component",
        NodeKind::Vendor => "vendor",
        NodeKind::Infra => "infra",
    }
}

fn reasons(cause: &Cause) -> String {
    if cause.reasons.is_empty() {
        format!("{} is {}", cause.node, cause.health)
    } else {
        cause.reasons.join("; ")
    }
}

fn open(cause: &Cause, judge: &dyn Judge) -> Vec<(Actor, EventKind)> {
    let impact = judge.impact(&cause.impacted);
    let decision = judge.severity(&impact, cause.kind);
    let mut events = vec![
        EventKind::Opened {
            title: judge.title(cause),
            origin: Origin::Detected,
            cause: Some(cause.node.clone()),
            cause_kind: cause_kind(cause.kind).to_string(),
            failure_kind: cause.failure_kind.clone(),
            impacted: cause.impacted.clone(),
            affected_users: impact.affected_users,
            reason: reasons(cause),
            failing_since: cause.since,
        },
        EventKind::SeverityChanged {
            from: None,
            to: decision.severity,
            reason: decision.reason,
        },
        EventKind::EtaChanged {
            eta: judge.eta(cause),
        },
    ];
    let steps = judge.runbook(&cause.node, &cause.failure_kind);
    if !steps.is_empty() {
        events.push(EventKind::Checklist { steps });
    }
    events.extend(vendor_prompt(cause));
    system(events)
}

/// Updates for an unresolved incident whose cause is failing now.
fn still_failing(inc: &Incident, cause: &Cause, judge: &dyn Judge) -> Vec<(Actor, EventKind)> {
    let mut events = Vec::new();
    if inc.recovered_at.is_some() {
        let reason = format!(
            "{} is {} again: {}",
            cause.node,
            cause.health,
            reasons(cause)
        );
        events.extend(relapse(inc, cause.health, reason));
    }
    events.extend(refresh(inc, cause, judge, EtaUpdate::VendorOnly));
    system(events)
}

/// A relapse within the recurrence window: the same incident again, counted.
fn reopen(
    inc: &Incident,
    cause: &Cause,
    now: DateTime<Utc>,
    judge: &dyn Judge,
) -> Vec<(Actor, EventKind)> {
    let after = inc
        .resolved_at
        .and_then(|at| words::between(at, now))
        .map(|d| format!(" {} after it was resolved", words::duration(d)))
        .unwrap_or_default();
    let reason = format!(
        "{} is {} again{after}: {}",
        cause.node,
        cause.health,
        reasons(cause)
    );
    let mut events = vec![
        EventKind::Reopened {
            recurrences: inc.recurrences + 1,
            reason: reason.clone(),
        },
        EventKind::StateChanged {
            from: IncidentState::Resolved,
            to: IncidentState::Investigating,
            reason: format!("relapse: {reason}"),
        },
    ];
    events.extend(refresh(inc, cause, judge, EtaUpdate::Estimate));
    events.extend(vendor_prompt(cause));
    system(events)
}

/// When an own cause's ETA is taken (see [`Judge::eta`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum EtaUpdate {
    /// Opening, reopening, a new cause: estimate afresh.
    Estimate,
    /// Keep the estimate; follow only a vendor's words.
    VendorOnly,
}

/// Impact, severity and ETA as the judge sees them now, where they differ from the incident.
fn refresh(inc: &Incident, cause: &Cause, judge: &dyn Judge, eta: EtaUpdate) -> Vec<EventKind> {
    let mut events = Vec::new();
    let impact = judge.impact(&cause.impacted);
    if cause.impacted != inc.impacted || impact.affected_users != inc.affected_users {
        events.push(EventKind::ImpactChanged {
            impacted: cause.impacted.clone(),
            affected_users: impact.affected_users,
        });
    }
    let decision = judge.severity(&impact, cause.kind);
    if severity_should_change(inc, decision.severity) {
        events.push(EventKind::SeverityChanged {
            from: inc.severity,
            to: decision.severity,
            reason: decision.reason,
        });
    }
    if eta == EtaUpdate::Estimate || cause.kind == NodeKind::Vendor {
        let eta = judge.eta(cause);
        if inc.eta.as_ref() != Some(&eta) {
            events.push(EventKind::EtaChanged { eta });
        }
    }
    events
}

/// Keel's severity follows its judgment; a responder's holds until the impact gets worse
/// than both the responder's choice and Keel's own last judgment.
fn severity_should_change(inc: &Incident, judged: Severity) -> bool {
    if inc.severity == Some(judged) {
        return false;
    }
    if !inc.severity_by_hand {
        return true;
    }
    // SEV1 orders first: "worse" is "less than".
    let worse_than = |s: Option<Severity>| s.is_none_or(|s| judged < s);
    worse_than(inc.severity) && worse_than(inc.judged_severity)
}

fn vendor_prompt(cause: &Cause) -> Option<EventKind> {
    (cause.kind == NodeKind::Vendor).then(|| EventKind::Prompt {
        text: format!(
            "Ask {} for a timeline: their status says \"{}\". Note their answer here.",
            cause.node,
            reasons(cause)
        ),
    })
}

/// The incident's cause fails because a deeper node fails: the incident follows the deeper
/// cause, with its impact, severity, ETA, runbook steps and, for a vendor, the prompt.
fn moved_down(inc: &Incident, cause: &Cause, judge: &dyn Judge) -> Vec<(Actor, EventKind)> {
    let old = inc.cause.as_ref().map_or("the old cause", NodeId::as_str);
    let mut events = Vec::new();
    if inc.recovered_at.is_some() {
        events.extend(relapse(
            inc,
            cause.health,
            format!("{old} fails again, because {} fails", cause.node),
        ));
    }
    events.push(EventKind::CauseChanged {
        title: judge.title(cause),
        cause: cause.node.clone(),
        cause_kind: cause_kind(cause.kind).to_string(),
        failure_kind: cause.failure_kind.clone(),
        reason: format!(
            "{old} fails because {} fails: {}",
            cause.node,
            reasons(cause)
        ),
    });
    events.extend(refresh(inc, cause, judge, EtaUpdate::Estimate));
    let steps: Vec<String> = judge
        .runbook(&cause.node, &cause.failure_kind)
        .into_iter()
        .filter(|step| !inc.checklist.iter().any(|s| s.text == *step))
        .collect();
    if !steps.is_empty() {
        events.push(EventKind::Checklist { steps });
    }
    events.extend(vendor_prompt(cause));
    system(events)
}

/// Dependents of the incident's recovered cause still fail on their own: the incident holds
/// (no recovery), and if Keel had already seen it green, that is a relapse.
fn dependents_failing(inc: &Incident, dependents: &[&Cause]) -> Vec<(Actor, EventKind)> {
    if inc.recovered_at.is_none() {
        return Vec::new();
    }
    let nodes: Vec<&str> = dependents.iter().map(|c| c.node.as_str()).collect();
    let worst = dependents
        .iter()
        .map(|c| c.health)
        .find(|h| *h == Health::Down)
        .unwrap_or(Health::Degraded);
    let old = inc.cause.as_ref().map_or("its cause", NodeId::as_str);
    system(relapse(
        inc,
        worst,
        format!("{} fails, and depends on {old}", nodes.join(", ")),
    ))
}

/// `Relapsed`, and back to investigating when the incident was in monitoring.
fn relapse(inc: &Incident, health: Health, reason: String) -> Vec<EventKind> {
    let mut events = vec![EventKind::Relapsed {
        health,
        reason: reason.clone(),
    }];
    if inc.state == IncidentState::Monitoring {
        events.push(EventKind::StateChanged {
            from: IncidentState::Monitoring,
            to: IncidentState::Investigating,
            reason: format!("relapse: {reason}"),
        });
    }
    events
}

/// An incident whose cause node now fails only as a dependent of another cause: no update
/// (the other incident holds the impact), but a relapse if Keel had seen it green.
fn explained_failing(inc: &Incident, node: &NodeId, root: &Cause) -> Vec<(Actor, EventKind)> {
    if inc.recovered_at.is_none() {
        return Vec::new();
    }
    let reason = format!("{node} fails again, explained by {}", root.node);
    system(relapse(inc, root.health, reason))
}

/// An unresolved incident whose cause no longer fails.
fn recovered(
    inc: &Incident,
    node: &NodeId,
    now: DateTime<Utc>,
    settings: &Settings,
) -> Vec<(Actor, EventKind)> {
    const GREEN: &str = "every signal recovered";
    let mut events = Vec::new();
    match (inc.recovered_at, inc.state) {
        (None, state) => {
            events.push(EventKind::Recovered {
                reason: format!("every signal of {node} is green"),
            });
            if state != IncidentState::Monitoring {
                events.push(EventKind::StateChanged {
                    from: state,
                    to: IncidentState::Monitoring,
                    reason: GREEN.to_string(),
                });
            }
        }
        (Some(green_since), IncidentState::Monitoring) => {
            // Green for the whole window *and* in monitoring for it: a responder who moves
            // the incident back to monitoring restarts the wait.
            let since = inc
                .monitoring_since
                .map_or(green_since, |m| m.max(green_since));
            let stable = words::between(since, now).is_some_and(|d| d >= settings.stability_window);
            if stable {
                events.push(EventKind::StateChanged {
                    from: IncidentState::Monitoring,
                    to: IncidentState::Resolved,
                    reason: format!("stable for {}", words::duration(settings.stability_window)),
                });
            }
        }
        // A responder moved it out of monitoring while green: their call stands.
        (Some(_), _) => {}
    }
    system(events)
}

fn resolved_within(inc: &Incident, now: DateTime<Utc>, window: Duration) -> bool {
    inc.resolved_at
        .is_some_and(|at| words::between(at, now).is_none_or(|d| d <= window))
}

/// A responder resolved the incident while the failure Keel sees now was already going on.
fn resolved_during_this_failure(inc: &Incident, cause: &Cause) -> bool {
    inc.recovered_at.is_none() && inc.resolved_at.is_some_and(|at| cause.since <= at)
}

fn system(events: impl IntoIterator<Item = EventKind>) -> Vec<(Actor, EventKind)> {
    events.into_iter().map(|e| (Actor::System, e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incident::decide::Command;
    use crate::incident::testkit::{cause, node, seeing, set, settings, t, Book, TestJudge};
    use IncidentState::*;

    fn db(since: DateTime<Utc>) -> Cause {
        cause("db", NodeKind::Component, &["db", "api"], since)
    }

    fn plan(book: &Book, assessment: &Assessment, now: DateTime<Utc>) -> Vec<Planned> {
        correlate(
            &book.incidents,
            assessment,
            now,
            &settings(),
            &TestJudge::new(),
        )
    }

    fn quiet() -> Assessment {
        seeing(Vec::new())
    }

    /// Runs the engine and checks that running it again at once plans nothing more.
    fn step(book: &mut Book, assessment: &Assessment, now: DateTime<Utc>) -> Vec<IncidentId> {
        let touched = book.run(assessment, now);
        assert_eq!(
            plan(book, assessment, now),
            Vec::new(),
            "not idempotent at {now}"
        );
        touched
    }

    #[test]
    fn a_new_cause_opens_an_incident_with_severity_eta_and_checklist() {
        let mut book = Book::default();
        let plans = plan(&book, &seeing(vec![db(t(-1))]), t(0));
        let [Planned::Open { events }] = plans.as_slice() else {
            panic!("expected one new incident, got {plans:?}");
        };
        assert!(events.iter().all(|(actor, _)| *actor == Actor::System));
        let kinds: Vec<&EventKind> = events.iter().map(|(_, k)| k).collect();
        assert_eq!(
            kinds[0],
            &EventKind::Opened {
                title: "db is down".into(),
                origin: Origin::Detected,
                cause: Some(node("db")),
                cause_kind: "component".into(),
                failure_kind: "tcp".into(),
                impacted: set(&["api", "db"]),
                affected_users: 6000,
                reason: "db-check: connection refused".into(),
                failing_since: t(-1),
            }
        );
        assert_eq!(
            kinds[1],
            &EventKind::SeverityChanged {
                from: None,
                to: Severity::Sev1,
                reason: "57% of users".into()
            }
        );
        assert_eq!(
            kinds[2],
            &EventKind::EtaChanged {
                eta: Eta::NoHistory
            }
        );
        assert!(matches!(kinds[3], EventKind::Checklist { steps } if steps.len() == 3));
        assert_eq!(kinds.len(), 4, "no vendor prompt for an own component");
        step(&mut book, &seeing(vec![db(t(-1))]), t(0));
        let inc = book.get(IncidentId(1));
        assert_eq!(inc.severity, Some(Severity::Sev1));
        assert_eq!(inc.judged_severity, Some(Severity::Sev1));
        assert!(!inc.severity_by_hand);
    }

    #[test]
    fn a_vendor_cause_prompts_to_chase_the_vendor_and_tracks_its_words() {
        let mut book = Book::default();
        let mut pay = cause("pay", NodeKind::Vendor, &["pay", "api"], t(0));
        pay.reasons = vec!["major outage".into()];
        step(&mut book, &seeing(vec![pay.clone()]), t(1));
        let inc = book.get(IncidentId(1));
        assert_eq!(inc.cause_kind, "vendor");
        assert_eq!(
            inc.eta,
            Some(Eta::Vendor {
                vendor: "pay".into(),
                status: "major outage".into()
            })
        );
        let prompt = book.events[&IncidentId(1)]
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Prompt { text } => Some(text.clone()),
                _ => None,
            })
            .unwrap();
        assert!(prompt.starts_with("Ask pay for a timeline: "), "{prompt}");
        // The vendor posts an update: the ETA follows it, nothing else changes.
        pay.reasons = vec!["partial outage: fix deployed".into()];
        step(&mut book, &seeing(vec![pay]), t(5));
        assert_eq!(
            &book.kinds(IncidentId(1))[book.kinds(IncidentId(1)).len() - 1..],
            &["eta_changed"]
        );
    }

    #[test]
    fn a_widening_cause_updates_its_incident_and_never_duplicates_it() {
        let mut book = Book::default();
        step(
            &mut book,
            &seeing(vec![cause("db", NodeKind::Component, &["db"], t(0))]),
            t(1),
        );
        assert_eq!(book.get(IncidentId(1)).severity, Some(Severity::Sev4));
        step(
            &mut book,
            &seeing(vec![cause("db", NodeKind::Component, &["db", "web"], t(0))]),
            t(2),
        );
        assert_eq!(book.incidents.len(), 1);
        let inc = book.get(IncidentId(1));
        assert_eq!(inc.impacted, set(&["db", "web"]));
        assert_eq!(inc.affected_users, 4000);
        assert_eq!(inc.severity, Some(Severity::Sev2));
        let last = &book.events[&IncidentId(1)][book.events[&IncidentId(1)].len() - 2..];
        assert_eq!(
            last[0].kind,
            EventKind::ImpactChanged {
                impacted: set(&["db", "web"]),
                affected_users: 4000
            }
        );
        assert_eq!(
            last[1].kind,
            EventKind::SeverityChanged {
                from: Some(Severity::Sev4),
                to: Severity::Sev2,
                reason: "38% of users".into()
            }
        );
    }

    #[test]
    fn independent_causes_open_their_own_incidents() {
        let mut book = Book::default();
        let mail = cause("mail", NodeKind::Component, &["mail"], t(0));
        step(&mut book, &seeing(vec![db(t(0)), mail.clone()]), t(1));
        assert_eq!(book.incidents.len(), 2);
        assert_eq!(
            book.get(IncidentId(1)).cause.as_ref().map(NodeId::as_str),
            Some("db")
        );
        assert_eq!(
            book.get(IncidentId(2)).cause.as_ref().map(NodeId::as_str),
            Some("mail")
        );
        // A duplicate cause in the assessment is one cause.
        step(&mut book, &seeing(vec![db(t(0)), db(t(0)), mail]), t(2));
        assert_eq!(book.incidents.len(), 2);
    }

    #[test]
    fn recovery_moves_to_monitoring_and_resolves_after_the_stability_window() {
        let mut book = Book::default();
        step(&mut book, &seeing(vec![db(t(0))]), t(1));
        step(&mut book, &quiet(), t(10));
        let inc = book.get(IncidentId(1));
        assert_eq!(inc.state, Monitoring);
        assert_eq!(inc.recovered_at, Some(t(10)));
        assert_eq!(
            &book.kinds(IncidentId(1))[book.kinds(IncidentId(1)).len() - 2..],
            &["recovered", "state_changed"]
        );
        assert_eq!(step(&mut book, &quiet(), t(14)), Vec::<IncidentId>::new());
        assert_eq!(
            book.get(IncidentId(1)).state,
            Monitoring,
            "4 minutes is not 5"
        );
        step(&mut book, &quiet(), t(15));
        let inc = book.get(IncidentId(1));
        assert_eq!(inc.state, Resolved);
        assert_eq!(inc.resolved_at, Some(t(15)));
        assert_eq!(
            book.events[&IncidentId(1)].last().unwrap().kind,
            EventKind::StateChanged {
                from: Monitoring,
                to: Resolved,
                reason: "stable for 5m".into()
            }
        );
    }

    #[test]
    fn a_relapse_during_monitoring_returns_to_investigating() {
        let mut book = Book::default();
        step(&mut book, &seeing(vec![db(t(0))]), t(1));
        step(&mut book, &quiet(), t(10));
        step(&mut book, &seeing(vec![db(t(12))]), t(12));
        let inc = book.get(IncidentId(1));
        assert_eq!(inc.state, Investigating);
        assert_eq!(inc.recovered_at, None);
        assert!(
            !inc.recurring,
            "a relapse before resolution is not a recurrence"
        );
        let last = book.events[&IncidentId(1)].last().unwrap();
        assert!(
            matches!(&last.kind, EventKind::StateChanged { from: Monitoring, to: Investigating, reason } if reason.starts_with("relapse: db is down again")),
            "{last:?}"
        );
        // Green again: the stability window starts over.
        step(&mut book, &quiet(), t(13));
        step(&mut book, &quiet(), t(17));
        assert_eq!(book.get(IncidentId(1)).state, Monitoring);
        step(&mut book, &quiet(), t(18));
        assert_eq!(book.get(IncidentId(1)).state, Resolved);
    }

    #[test]
    fn a_relapse_within_the_recurrence_window_reopens_as_recurring() {
        let mut book = Book::default();
        step(&mut book, &seeing(vec![db(t(0))]), t(1));
        step(&mut book, &quiet(), t(2));
        step(&mut book, &quiet(), t(7));
        assert_eq!(book.get(IncidentId(1)).state, Resolved);
        step(&mut book, &seeing(vec![db(t(60))]), t(60));
        assert_eq!(book.incidents.len(), 1);
        let inc = book.get(IncidentId(1));
        assert_eq!(inc.state, Investigating);
        assert!(inc.recurring);
        assert_eq!(inc.recurrences, 1);
        let reopened = book.events[&IncidentId(1)]
            .iter()
            .find(|e| matches!(e.kind, EventKind::Reopened { .. }))
            .unwrap();
        assert_eq!(
            reopened.kind,
            EventKind::Reopened {
                recurrences: 1,
                reason: "db is down again 53m after it was resolved: db-check: connection refused"
                    .into()
            }
        );
        // And again: counted.
        step(&mut book, &quiet(), t(61));
        step(&mut book, &quiet(), t(66));
        step(&mut book, &seeing(vec![db(t(70))]), t(70));
        assert_eq!(book.get(IncidentId(1)).recurrences, 2);
    }

    #[test]
    fn a_relapse_beyond_the_recurrence_window_is_a_new_incident() {
        let mut book = Book::default();
        step(&mut book, &seeing(vec![db(t(0))]), t(1));
        step(&mut book, &quiet(), t(2));
        step(&mut book, &quiet(), t(7));
        step(&mut book, &seeing(vec![db(t(68))]), t(68));
        assert_eq!(book.incidents.len(), 2);
        assert_eq!(book.get(IncidentId(1)).state, Resolved);
        assert!(!book.get(IncidentId(2)).recurring);
        // The newest incident of a cause is the one that reopens.
        step(&mut book, &quiet(), t(69));
        step(&mut book, &quiet(), t(75));
        step(&mut book, &seeing(vec![db(t(80))]), t(80));
        assert_eq!(book.incidents.len(), 2);
        assert_eq!(book.get(IncidentId(2)).recurrences, 1);
        assert_eq!(book.get(IncidentId(1)).recurrences, 0);
    }

    #[test]
    fn when_keel_is_blind_nothing_opens_moves_or_resolves() {
        let mut book = Book::default();
        step(&mut book, &seeing(vec![db(t(0))]), t(1));
        let mut blind = seeing(vec![cause("mail", NodeKind::Component, &["mail"], t(2))]);
        blind.blind = Some("internet is down: Keel cannot see".into());
        assert_eq!(plan(&book, &blind, t(3)), Vec::new());
        blind.causes.clear();
        assert_eq!(plan(&book, &blind, t(30)), Vec::new());
        step(&mut book, &quiet(), t(10));
        assert_eq!(
            plan(&book, &blind, t(60)),
            Vec::new(),
            "no resolution while blind"
        );
    }

    #[test]
    fn declared_incidents_are_never_moved_by_the_engine() {
        let mut book = Book::default();
        let events = declare(
            "Power cut in the office",
            &set(&["db"]),
            &TestJudge::new(),
            t(0),
            Actor::User("alice".into()),
        )
        .unwrap();
        book.apply(vec![Planned::Open { events }], t(0));
        assert_eq!(plan(&book, &quiet(), t(60)), Vec::new());
        // A detected failure of the same component opens its own incident.
        step(&mut book, &seeing(vec![db(t(1))]), t(2));
        assert_eq!(book.incidents.len(), 2);
        assert_eq!(book.get(IncidentId(1)).state, Investigating);
    }

    #[test]
    fn declaring_records_who_and_what_with_keels_severity_and_the_runbook() {
        let events = declare(
            "  Power cut ",
            &set(&["db", "web"]),
            &TestJudge::new(),
            t(0),
            Actor::User("alice".into()),
        )
        .unwrap();
        assert_eq!(events[0].0, Actor::User("alice".into()));
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
        } = &events[0].1
        else {
            panic!("{events:?}");
        };
        assert_eq!(title, "Power cut");
        assert_eq!(*origin, Origin::Declared);
        assert_eq!(*cause, None);
        assert_eq!(
            (cause_kind.as_str(), failure_kind.as_str()),
            ("manual", "manual")
        );
        assert_eq!(impacted, &set(&["db", "web"]));
        assert_eq!(*affected_users, 4000);
        assert_eq!(reason, "declared by alice");
        assert_eq!(*failing_since, t(0));
        assert!(matches!(
            events[1],
            (
                Actor::System,
                EventKind::SeverityChanged {
                    from: None,
                    to: Severity::Sev2,
                    ..
                }
            )
        ));
        assert!(matches!(&events[3].1, EventKind::Checklist { steps } if steps.len() == 3));
        let inc =
            Incident::replay(&crate::incident::stamp(IncidentId(1), 1, t(0), events)).unwrap();
        assert_eq!(inc.origin, Origin::Declared);

        for (title, reason) in [
            (" ", "must not be empty".to_string()),
            (
                &*"t".repeat(201),
                "must be at most 200 characters (it has 201)".to_string(),
            ),
        ] {
            let err =
                declare(title, &set(&["db"]), &TestJudge::new(), t(0), Actor::System).unwrap_err();
            assert_eq!((err.field, err.reason), ("title", reason));
        }
    }

    #[test]
    fn monitoring_by_hand_while_red_waits_for_green_then_the_window() {
        let mut book = Book::default();
        step(&mut book, &seeing(vec![db(t(0))]), t(1));
        book.command(
            1,
            "alice",
            Command::ChangeState {
                to: Monitoring,
                reason: "fix deployed".into(),
            },
            t(5),
        )
        .unwrap();
        // Still red from before the fix: no relapse, no resolution.
        assert_eq!(
            step(&mut book, &seeing(vec![db(t(0))]), t(6)),
            Vec::<IncidentId>::new()
        );
        assert_eq!(book.get(IncidentId(1)).state, Monitoring);
        // Green at 20: recorded; the window counts from there, not from 5.
        step(&mut book, &quiet(), t(20));
        assert_eq!(book.kinds(IncidentId(1)).last(), Some(&"recovered"));
        assert_eq!(book.get(IncidentId(1)).state, Monitoring);
        step(&mut book, &quiet(), t(24));
        assert_eq!(book.get(IncidentId(1)).state, Monitoring);
        step(&mut book, &quiet(), t(25));
        assert_eq!(book.get(IncidentId(1)).state, Resolved);
    }

    #[test]
    fn a_responder_holding_an_incident_out_of_monitoring_keeps_it_there() {
        let mut book = Book::default();
        step(&mut book, &seeing(vec![db(t(0))]), t(1));
        step(&mut book, &quiet(), t(2));
        book.command(
            1,
            "alice",
            Command::ChangeState {
                to: Identified,
                reason: "customers still see errors".into(),
            },
            t(3),
        )
        .unwrap();
        assert_eq!(step(&mut book, &quiet(), t(30)), Vec::<IncidentId>::new());
        assert_eq!(book.get(IncidentId(1)).state, Identified);
        // Back to monitoring by hand: the window runs from then.
        book.command(
            1,
            "alice",
            Command::ChangeState {
                to: Monitoring,
                reason: String::new(),
            },
            t(31),
        )
        .unwrap();
        step(&mut book, &quiet(), t(35));
        assert_eq!(book.get(IncidentId(1)).state, Monitoring);
        step(&mut book, &quiet(), t(36));
        assert_eq!(book.get(IncidentId(1)).state, Resolved);
    }

    #[test]
    fn resolved_by_hand_during_the_failure_stands_until_a_new_failure() {
        let mut book = Book::default();
        step(&mut book, &seeing(vec![db(t(0))]), t(1));
        book.command(
            1,
            "alice",
            Command::Resolve {
                reason: "false alarm".into(),
            },
            t(2),
        )
        .unwrap();
        assert_eq!(
            step(&mut book, &seeing(vec![db(t(0))]), t(3)),
            Vec::<IncidentId>::new()
        );
        assert_eq!(
            step(&mut book, &seeing(vec![db(t(0))]), t(300)),
            Vec::<IncidentId>::new()
        );
        assert_eq!(book.incidents.len(), 1);
        // A failure that starts after the resolution is a relapse.
        step(&mut book, &seeing(vec![db(t(10))]), t(10));
        assert_eq!(book.get(IncidentId(1)).recurrences, 1);
        assert_eq!(book.get(IncidentId(1)).state, Investigating);
    }

    #[test]
    fn a_resolved_incident_seen_green_reopens_on_any_failure() {
        let mut book = Book::default();
        step(&mut book, &seeing(vec![db(t(0))]), t(1));
        step(&mut book, &quiet(), t(2));
        book.command(
            1,
            "alice",
            Command::Resolve {
                reason: String::new(),
            },
            t(3),
        )
        .unwrap();
        // The failure's start is reported from before the resolution (a late alert), but
        // Keel saw the cause green in between: it is a relapse.
        step(&mut book, &seeing(vec![db(t(1))]), t(4));
        assert_eq!(book.get(IncidentId(1)).recurrences, 1);
    }

    #[test]
    fn a_cause_found_deeper_takes_its_incident_along() {
        let mut book = Book::default();
        // The API's checks confirm first…
        step(
            &mut book,
            &seeing(vec![cause(
                "api",
                NodeKind::Component,
                &["api", "web"],
                t(0),
            )]),
            t(1),
        );
        assert_eq!(book.get(IncidentId(1)).severity, Some(Severity::Sev1));
        // …then the database behind it: one incident, now about the database.
        let mut deeper = db(t(0));
        deeper.impacted = set(&["db", "api", "web"]);
        deeper.explained = set(&["api", "web"]);
        step(&mut book, &seeing(vec![deeper.clone()]), t(2));
        assert_eq!(book.incidents.len(), 1);
        let inc = book.get(IncidentId(1));
        assert_eq!(inc.cause.as_ref().map(NodeId::as_str), Some("db"));
        assert_eq!(inc.title, "db is down");
        assert_eq!(inc.impacted, set(&["db", "api", "web"]));
        assert_eq!(
            inc.checklist.len(),
            3,
            "the database's runbook joins the checklist"
        );
        assert_eq!(
            &book.kinds(IncidentId(1))[book.kinds(IncidentId(1)).len() - 3..],
            &["cause_changed", "impact_changed", "checklist"]
        );
        let EventKind::CauseChanged { reason, .. } =
            &book.events[&IncidentId(1)][book.events[&IncidentId(1)].len() - 3].kind
        else {
            unreachable!()
        };
        assert_eq!(
            reason,
            "api fails because db fails: db-check: connection refused"
        );
        // Everything recovers: the one incident goes to monitoring.
        step(&mut book, &quiet(), t(5));
        assert_eq!(book.get(IncidentId(1)).state, Monitoring);
    }

    #[test]
    fn of_two_incidents_a_deeper_cause_explains_the_oldest_follows_it() {
        let mut book = Book::default();
        step(
            &mut book,
            &seeing(vec![cause("api", NodeKind::Component, &["api"], t(0))]),
            t(1),
        );
        step(
            &mut book,
            &seeing(vec![
                cause("api", NodeKind::Component, &["api"], t(0)),
                cause("mail", NodeKind::Component, &["mail"], t(2)),
            ]),
            t(2),
        );
        let mut network = cause("net", NodeKind::Infra, &["net", "api", "mail"], t(3));
        network.explained = set(&["api", "mail"]);
        step(&mut book, &seeing(vec![network.clone()]), t(3));
        assert_eq!(book.incidents.len(), 2);
        assert_eq!(
            book.get(IncidentId(1)).cause.as_ref().map(NodeId::as_str),
            Some("net")
        );
        assert_eq!(book.get(IncidentId(1)).cause_kind, "infra");
        assert_eq!(
            book.get(IncidentId(2)).cause.as_ref().map(NodeId::as_str),
            Some("mail"),
            "held, not moved"
        );
        assert_eq!(
            book.get(IncidentId(2)).state,
            Investigating,
            "mail still fails: no recovery"
        );
        // mail recovers, then fails again under the network: a relapse of its incident.
        let mut only_api = network.clone();
        only_api.explained = set(&["api"]);
        step(&mut book, &seeing(vec![only_api]), t(10));
        assert_eq!(book.get(IncidentId(2)).state, Monitoring);
        step(&mut book, &seeing(vec![network]), t(11));
        let inc = book.get(IncidentId(2));
        assert_eq!(inc.state, Investigating);
        assert_eq!(inc.recovered_at, None);
        assert!(book.events[&IncidentId(2)].iter().any(|e| matches!(&e.kind,
            EventKind::Relapsed { reason, .. } if reason == "mail fails again, explained by net")));
    }

    #[test]
    fn dependents_lagging_behind_a_recovered_cause_stay_with_its_incident() {
        let mut book = Book::default();
        let mut deep = db(t(0));
        deep.impacted = set(&["db", "api", "web"]);
        deep.explained = set(&["api", "web"]);
        step(&mut book, &seeing(vec![deep]), t(1));
        // The database is back, the API's checks have not caught up yet.
        let api = cause("api", NodeKind::Component, &["api", "web"], t(0));
        assert_eq!(
            step(&mut book, &seeing(vec![api.clone()]), t(5)),
            Vec::<IncidentId>::new()
        );
        assert_eq!(
            book.incidents.len(),
            1,
            "no incident of its own for the API"
        );
        assert_eq!(
            book.get(IncidentId(1)).state,
            Investigating,
            "not green while the API fails"
        );
        step(&mut book, &quiet(), t(6));
        assert_eq!(book.get(IncidentId(1)).state, Monitoring);
        // A dependent failing during monitoring is a relapse of the incident.
        step(&mut book, &seeing(vec![api]), t(7));
        let inc = book.get(IncidentId(1));
        assert_eq!(inc.state, Investigating);
        assert!(book.events[&IncidentId(1)].iter().any(|e| matches!(&e.kind,
            EventKind::Relapsed { reason, .. } if reason == "api fails, and depends on db")));
        // A responder who judges it a separate problem resolves the old incident: the API
        // then gets its own.
        book.command(
            1,
            "alice",
            Command::Resolve {
                reason: "db is fine".into(),
            },
            t(8),
        )
        .unwrap();
        let api = cause("api", NodeKind::Component, &["api", "web"], t(0));
        step(&mut book, &seeing(vec![api]), t(9));
        assert_eq!(book.incidents.len(), 2);
        assert_eq!(
            book.get(IncidentId(2)).cause.as_ref().map(NodeId::as_str),
            Some("api")
        );
    }

    #[test]
    fn a_severity_set_by_hand_holds_until_the_impact_gets_worse() {
        let mut book = Book::default();
        let only_db = cause("db", NodeKind::Component, &["db", "mail"], t(0));
        step(&mut book, &seeing(vec![only_db.clone()]), t(1));
        assert_eq!(book.get(IncidentId(1)).severity, Some(Severity::Sev3));
        book.command(
            1,
            "alice",
            Command::SetSeverity {
                severity: Severity::Sev2,
                reason: "VIP customer".into(),
            },
            t(2),
        )
        .unwrap();
        step(&mut book, &seeing(vec![only_db]), t(3));
        assert_eq!(
            book.get(IncidentId(1)).severity,
            Some(Severity::Sev2),
            "the responder's call holds"
        );
        // Worse than Keel judged, but not worse than the responder's SEV2: still holds.
        let wider = cause("db", NodeKind::Component, &["db", "web"], t(0));
        step(&mut book, &seeing(vec![wider]), t(4));
        assert_eq!(book.get(IncidentId(1)).severity, Some(Severity::Sev2));
        // Worse than both: Keel raises it.
        step(&mut book, &seeing(vec![db(t(0))]), t(5));
        let inc = book.get(IncidentId(1));
        assert_eq!(inc.severity, Some(Severity::Sev1));
        assert!(!inc.severity_by_hand);
        // Lowered by hand below Keel's judgment: holds too.
        book.command(
            1,
            "alice",
            Command::SetSeverity {
                severity: Severity::Sev3,
                reason: "mostly retries".into(),
            },
            t(6),
        )
        .unwrap();
        step(&mut book, &seeing(vec![db(t(0))]), t(7));
        assert_eq!(book.get(IncidentId(1)).severity, Some(Severity::Sev3));
    }

    #[test]
    fn an_unhealthy_but_unchanged_world_plans_nothing() {
        let mut book = Book::default();
        step(&mut book, &seeing(vec![db(t(0))]), t(1));
        for minute in 2..30 {
            assert_eq!(plan(&book, &seeing(vec![db(t(0))]), t(minute)), Vec::new());
        }
    }

    #[test]
    fn health_shows_in_reasons_when_the_checks_say_nothing() {
        let mut book = Book::default();
        let mut silent = cause("mail", NodeKind::Component, &["mail"], t(0));
        silent.reasons.clear();
        silent.health = Health::Degraded;
        step(&mut book, &seeing(vec![silent]), t(1));
        assert_eq!(book.get(IncidentId(1)).opened_reason, "mail is degraded");
    }

    #[test]
    fn a_cause_keel_cannot_judge_neither_recovers_nor_resolves() {
        let mut book = Book::default();
        step(&mut book, &seeing(vec![db(t(0))]), t(1));
        let unknown = set(&["db"]);
        let run = |book: &Book, now| {
            correlate_with_unknown(
                &book.incidents,
                &quiet(),
                &unknown,
                now,
                &settings(),
                &TestJudge::new(),
            )
        };
        assert_eq!(run(&book, t(10)), Vec::new(), "unknown is not green");
        step(&mut book, &quiet(), t(10));
        assert_eq!(book.get(IncidentId(1)).state, Monitoring);
        assert_eq!(run(&book, t(30)), Vec::new(), "no resolution while unknown");
        let health: HealthMap = [
            (node("db"), node_health(Health::Unknown)),
            (node("api"), node_health(Health::Down)),
            (node("web"), node_health(Health::Up)),
        ]
        .into_iter()
        .collect();
        assert_eq!(unknown_nodes(&health), set(&["db"]));
    }

    fn node_health(health: Health) -> crate::assess::NodeHealth {
        crate::assess::NodeHealth {
            health,
            since: t(0),
            reasons: Vec::new(),
            failure_kind: String::new(),
        }
    }

    /// The test judge, with an own-cause ETA resting on `samples` past incidents.
    struct Shifting(usize);

    impl Judge for Shifting {
        fn with_dependents(&self, nodes: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
            TestJudge::new().with_dependents(nodes)
        }
        fn impact(&self, impacted: &BTreeSet<NodeId>) -> Impact {
            TestJudge::new().impact(impacted)
        }
        fn severity(&self, impact: &Impact, kind: NodeKind) -> SeverityDecision {
            TestJudge::new().severity(impact, kind)
        }
        fn eta(&self, _cause: &Cause) -> Eta {
            Eta::History {
                samples: self.0,
                p50_minutes: 10,
                p90_minutes: 30,
            }
        }
        fn runbook(&self, node: &NodeId, failure_kind: &str) -> Vec<String> {
            TestJudge::new().runbook(node, failure_kind)
        }
        fn title(&self, cause: &Cause) -> String {
            TestJudge::new().title(cause)
        }
    }

    #[test]
    fn an_own_cause_eta_is_estimated_when_the_incident_opens_or_reopens_only() {
        let mut book = Book::default();
        let run = |book: &mut Book, a: &Assessment, now, samples| {
            let plans = correlate(&book.incidents, a, now, &settings(), &Shifting(samples));
            book.apply(plans, now)
        };
        let eta = |book: &Book| match book.get(IncidentId(1)).eta {
            Some(Eta::History { samples, .. }) => samples,
            ref other => panic!("{other:?}"),
        };
        run(&mut book, &seeing(vec![db(t(0))]), t(1), 1);
        assert_eq!(eta(&book), 1);
        // The history grows while the incident runs: its estimate stays put.
        assert_eq!(
            run(&mut book, &seeing(vec![db(t(0))]), t(2), 2),
            Vec::<IncidentId>::new()
        );
        run(&mut book, &quiet(), t(3), 2);
        run(&mut book, &quiet(), t(8), 2);
        assert_eq!(book.get(IncidentId(1)).state, Resolved);
        // Reopened: estimated afresh.
        run(&mut book, &seeing(vec![db(t(9))]), t(9), 3);
        assert_eq!(eta(&book), 3);
    }

    #[test]
    fn settings_come_from_the_incidents_config() {
        let config = IncidentsConfig::default();
        let s = Settings::from(&config);
        assert_eq!(s.stability_window, Duration::from_secs(300));
        assert_eq!(s.recurrence_window, Duration::from_secs(86_400));
    }
}
