//! The escalation engine: from an incident's timeline, its policy, who is on call and the
//! time, the paging events that are due.
//!
//! State lives on the timeline only, so the engine is level-triggered and idempotent: run
//! again after its events are applied, it plans nothing; after a restart (or on another
//! instance) it reaches the same decisions, and a level that fell due while Keel was down
//! fires as soon as it runs, stamped with the time it was due.
//!
//! Rules (docs/config.md, `[[escalation]]`): a cycle starts when an unresolved incident is at
//! least `min_severity` and no cycle has started (unless someone already acknowledged it), or
//! after a relapse that comes at least `renotify_after` after the previous cycle started.
//! Level `l` of round `r` (both from 1) is due at
//! `started_at + (r-1)·(last.after + repeat_after) + levels[l].after`; each due level that has
//! not fired fires, in order, until the cycle is acknowledged, the incident resolved, or the
//! rounds run out — then, when the next round would have started, `EscalationExhausted`.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::assess::Severity;
use crate::config::{EscalationPolicy, PageTarget, Person};
use crate::ids::NodeId;
use crate::incident::{EventKind, Incident, IncidentState};

/// Who is on call and who people are: implemented by the server from the config and the
/// stored overrides.
pub trait Roster {
    /// The person on call in `schedule` at `at`, overrides included.
    fn on_call(&self, schedule: &str, at: DateTime<Utc>) -> Option<String>;
    fn person(&self, id: &str) -> Option<&Person>;
}

/// The policy for an incident: the first (in config order) that lists its cause or one of
/// its impacted components, else the catch-all (`components = []`).
pub fn policy_for<'a>(
    policies: &'a [EscalationPolicy],
    incident: &Incident,
) -> Option<&'a EscalationPolicy> {
    policies
        .iter()
        .find(|p| {
            // A listed id that is no node id names nothing an incident can be about.
            p.components
                .iter()
                .filter_map(|c| NodeId::parse(c.as_str()).ok())
                .any(|c| incident.cause.as_ref() == Some(&c) || incident.impacted.contains(&c))
        })
        .or_else(|| policies.iter().find(|p| p.components.is_empty()))
}

/// The events due by `now`, each with the time it was due (stamp it with that time, in
/// order). Empty when nothing is due.
pub fn plan(
    incident: &Incident,
    policy: &EscalationPolicy,
    roster: &dyn Roster,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, EventKind)> {
    let mut out = Vec::new();
    if incident.state == IncidentState::Resolved || policy.levels.is_empty() {
        return out;
    }
    let mut cycle = match &incident.escalation {
        Some(e) => Cycle {
            number: e.cycle,
            started_at: e.started_at,
            fired: e.fired.iter().copied().collect(),
            done: e.acknowledged.is_some() || e.exhausted,
        },
        None => Cycle::none(),
    };
    if let Some((at, reason)) = new_cycle(incident, policy).filter(|(at, _)| *at <= now) {
        cycle = Cycle {
            number: cycle.number + 1,
            started_at: at,
            fired: Vec::new(),
            done: false,
        };
        out.push((
            at,
            EventKind::EscalationStarted {
                cycle: cycle.number,
                policy: policy.id.clone(),
                reason,
            },
        ));
    }
    if cycle.number == 0 || cycle.done {
        return out;
    }
    let sev1 = incident.severity == Some(Severity::Sev1);
    for (round, level, due) in schedule(policy, cycle.started_at) {
        if due > now {
            return out;
        }
        if cycle.fired.contains(&(round, level)) {
            continue;
        }
        let targets = &policy.levels[(level - 1) as usize].notify;
        out.extend(
            pages(targets, roster, due, sev1, cycle.number, round, level)
                .into_iter()
                .map(|e| (due, e)),
        );
    }
    let end = exhausted_at(policy, cycle.started_at);
    if end <= now {
        let rounds = policy.repeat + 1;
        out.push((
            end,
            EventKind::EscalationExhausted {
                cycle: cycle.number,
                reason: format!(
                    "nobody acknowledged after {rounds} round{}",
                    if rounds == 1 { "" } else { "s" }
                ),
            },
        ));
    }
    out
}

/// When [`plan`] can next have something to say (possibly in the past: run it now), or
/// `None` when only a change to the incident can make it page.
pub fn next_due(incident: &Incident, policy: &EscalationPolicy) -> Option<DateTime<Utc>> {
    if incident.state == IncidentState::Resolved || policy.levels.is_empty() {
        return None;
    }
    if let Some((at, _)) = new_cycle(incident, policy) {
        return Some(at);
    }
    let e = incident.escalation.as_ref()?;
    if e.acknowledged.is_some() || e.exhausted {
        return None;
    }
    schedule(policy, e.started_at)
        .find(|(r, l, _)| !e.fired.contains(&(*r, *l)))
        .map(|(_, _, due)| due)
        .or_else(|| Some(exhausted_at(policy, e.started_at)))
}

struct Cycle {
    number: u32,
    started_at: DateTime<Utc>,
    fired: Vec<(u32, u32)>,
    done: bool,
}

impl Cycle {
    fn none() -> Self {
        Cycle {
            number: 0,
            started_at: DateTime::<Utc>::MIN_UTC,
            fired: Vec::new(),
            done: true,
        }
    }
}

/// Whether a new cycle should start, when (the moment it became due) and why.
fn new_cycle(incident: &Incident, policy: &EscalationPolicy) -> Option<(DateTime<Utc>, String)> {
    let severity = incident.severity?;
    // SEV1 is the most severe and the smallest.
    if severity > policy.min_severity {
        return None;
    }
    let in_range_since = entered_range(incident, policy.min_severity)?;
    match &incident.escalation {
        None => {
            let relapse_unacked = incident
                .relapsed_at
                .is_some_and(|r| incident.acknowledged_at.is_none_or(|a| r > a));
            if incident.acknowledged_at.is_none() {
                let reason = if in_range_since <= incident.started_at {
                    format!("opened as {severity}")
                } else {
                    format!("severity rose to {severity}")
                };
                Some((in_range_since, reason))
            } else if relapse_unacked {
                let at = incident.relapsed_at?.max(in_range_since);
                Some((at, "relapse".to_owned()))
            } else {
                // Someone took the incident before it was serious enough to page for.
                None
            }
        }
        Some(e) => {
            // Only a relapse written after this cycle started counts: one the cycle already
            // answered (it started late, after the relapse) must not page twice.
            let relapse = e.relapsed_at?;
            let earliest = e.started_at + span(policy.renotify_after);
            // A relapse sooner than renotify_after after the last cycle is a flap: no page.
            (relapse >= earliest).then(|| (relapse.max(in_range_since), "relapse".to_owned()))
        }
    }
}

/// The start of the latest stretch during which the severity has been at least `min`.
fn entered_range(incident: &Incident, min: Severity) -> Option<DateTime<Utc>> {
    let mut since = None;
    for (at, sev) in &incident.severity_changes {
        if *sev <= min {
            since.get_or_insert(*at);
        } else {
            since = None;
        }
    }
    // Timelines from before severity changes were folded: count from the opening.
    since.or_else(|| {
        incident
            .severity_changes
            .is_empty()
            .then_some(incident.started_at)
    })
}

fn span(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// Every (round, level, due time) of a cycle, in firing order.
fn schedule(
    policy: &EscalationPolicy,
    started_at: DateTime<Utc>,
) -> impl Iterator<Item = (u32, u32, DateTime<Utc>)> + '_ {
    let period = round_period(policy);
    (1..=policy.repeat + 1).flat_map(move |round| {
        let round_start = started_at + period * i32::try_from(round - 1).unwrap_or(i32::MAX);
        policy
            .levels
            .iter()
            .zip(1u32..)
            .map(move |(l, level)| (round, level, round_start + span(l.after)))
    })
}

fn round_period(policy: &EscalationPolicy) -> chrono::Duration {
    let last = policy.levels.last().map_or(Duration::ZERO, |l| l.after);
    span(last) + span(policy.repeat_after)
}

/// When the next round would have started after the last one: nobody acknowledged.
fn exhausted_at(policy: &EscalationPolicy, started_at: DateTime<Utc>) -> DateTime<Utc> {
    started_at + round_period(policy) * i32::try_from(policy.repeat + 1).unwrap_or(i32::MAX)
}

/// One level's pages: each distinct person its targets name, paged or skipped.
fn pages(
    targets: &[PageTarget],
    roster: &dyn Roster,
    due: DateTime<Utc>,
    sev1: bool,
    cycle: u32,
    round: u32,
    level: u32,
) -> Vec<EventKind> {
    let mut seen: Vec<String> = Vec::new();
    let mut out = Vec::new();
    let skipped = |person: &str, name: &str, reason: String| EventKind::PageSkipped {
        cycle,
        round,
        level,
        person: person.to_owned(),
        name: name.to_owned(),
        reason,
    };
    for target in targets {
        let id = match target {
            PageTarget::Person(p) => p.clone(),
            PageTarget::Schedule(s) => match roster.on_call(s, due) {
                Some(p) => p,
                None => {
                    out.push(skipped("", "", format!("nobody on call in {target}")));
                    continue;
                }
            },
        };
        if seen.contains(&id) {
            continue;
        }
        seen.push(id.clone());
        let Some(person) = roster.person(&id) else {
            out.push(skipped(
                &id,
                "",
                format!("{id} is not a [[person]] of the config"),
            ));
            continue;
        };
        if person.contacts.is_empty() {
            out.push(skipped(&id, &person.name, "no contacts".to_owned()));
            continue;
        }
        if let Some(q) = person.quiet_hours {
            let local = due.with_timezone(&person.timezone).time();
            if !sev1 && q.contains(local) {
                out.push(skipped(
                    &id,
                    &person.name,
                    format!("quiet hours ({q} {})", person.timezone.name()),
                ));
                continue;
            }
        }
        let mut contacts: Vec<String> = Vec::new();
        for c in &person.contacts {
            if !contacts.iter().any(|k| k == c.kind()) {
                contacts.push(c.kind().to_owned());
            }
        }
        out.push(EventKind::Paged {
            cycle,
            round,
            level,
            person: id,
            name: person.name.clone(),
            target: target.to_string(),
            contacts,
        });
    }
    out
}
