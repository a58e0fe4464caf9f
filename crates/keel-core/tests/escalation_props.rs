//! Property tests of the escalation engine: random policies, teams and timelines (time
//! passing, severity changes, acknowledgements, resolutions, relapses), with the engine run
//! at random moments as the server's job would, must keep every rule of escalation
//! (docs/config.md, `[[escalation]]`): the plan is idempotent, levels fire in order and never
//! twice per cycle, nothing fires after an acknowledgement or resolution, no level fires
//! before it is due, exactly 1 + repeat rounds then exhausted, a relapse pages again only
//! after renotify_after, and quiet hours never skip SEV1. The stored timeline always replays
//! to the incident built step by step.

mod escalation_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::DateTime;
use chrono::Utc;
use escalation_support::*;
use keel_core::assess::Severity;
use keel_core::config::EscalationPolicy;
use keel_core::escalation::{next_due, plan};
use keel_core::incident::{decide, Actor, Command, EventKind, Incident, IncidentState};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Wait(i64),
    Run,
    Ack,
    Resolve,
    Relapse,
    Severity(Severity),
}

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Sev1),
        Just(Severity::Sev2),
        Just(Severity::Sev3),
        Just(Severity::Sev4),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1i64..600).prop_map(Op::Wait),
        5 => Just(Op::Run),
        1 => Just(Op::Ack),
        1 => Just(Op::Resolve),
        1 => Just(Op::Relapse),
        1 => severity().prop_map(Op::Severity),
    ]
}

const TARGETS: &[&str] = &[
    "schedule:primary",
    "person:ann",
    "person:bob",
    "person:carol",
    "person:dan",
];

fn policy_strategy() -> impl Strategy<Value = EscalationPolicy> {
    (
        proptest::collection::vec(
            (
                0u64..900,
                proptest::collection::vec(0usize..TARGETS.len(), 1..4),
            ),
            1..4,
        ),
        0u32..3,
        0u64..900,
        0u64..3600,
        severity(),
    )
        .prop_map(|(levels, repeat, repeat_after, renotify_after, min)| {
            let mut afters: Vec<u64> = levels.iter().map(|(a, _)| *a).collect();
            afters.sort_unstable();
            let levels = levels
                .iter()
                .zip(afters)
                .map(|((_, targets), after)| {
                    let names: Vec<&str> = targets.iter().map(|i| TARGETS[*i]).collect();
                    level(after, &names)
                })
                .collect();
            EscalationPolicy {
                repeat_after: Duration::from_secs(repeat_after),
                renotify_after: Duration::from_secs(renotify_after),
                min_severity: min,
                ..policy(levels, repeat)
            }
        })
}

fn roster_strategy() -> impl Strategy<Value = TeamRoster> {
    (any::<bool>(), 0u32..24, 1u32..12, 1u64..48).prop_map(|(quiet_ann, from, len, hours)| {
        let mut r = team();
        if quiet_ann {
            let to = (from + len) % 24;
            quiet(
                &mut r.people[0],
                &format!("{from:02}:00"),
                &format!("{to:02}:00"),
            );
            quiet(
                &mut r.people[1],
                &format!("{from:02}:00"),
                &format!("{to:02}:30"),
            );
        }
        r.schedules[0].rotation = Duration::from_secs(hours * 3600);
        r
    })
}

fn period(p: &EscalationPolicy) -> chrono::Duration {
    let last = p.levels.last().unwrap().after;
    chrono::Duration::from_std(last + p.repeat_after).unwrap()
}

fn due(p: &EscalationPolicy, started: DateTime<Utc>, round: u32, level: u32) -> DateTime<Utc> {
    started
        + period(p) * (round as i32 - 1)
        + chrono::Duration::from_std(p.levels[(level - 1) as usize].after).unwrap()
}

/// Checks one engine run against the incident as it was before.
fn check_run(
    before: &Incident,
    planned: &[(DateTime<Utc>, EventKind)],
    p: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<(), TestCaseError> {
    let resolved = before.state == IncidentState::Resolved;
    if resolved {
        prop_assert!(planned.is_empty(), "planned after resolution: {planned:?}");
    }
    let mut cycle = before.escalation.clone();
    let mut last_fired: Option<(u32, u32)> = cycle
        .as_ref()
        .and_then(|e| e.fired.iter().next_back().copied());
    for (at, kind) in planned {
        prop_assert!(*at <= now, "{kind:?} stamped {at} after now {now}");
        match kind {
            EventKind::EscalationStarted { cycle: n, .. } => {
                let sev = before.severity.unwrap();
                prop_assert!(sev <= p.min_severity, "started below min severity");
                if let Some(prev) = &cycle {
                    // Only a relapse starts another cycle, and never too soon.
                    let relapse = prev.relapsed_at.expect("a relapse after the cycle started");
                    prop_assert!(relapse >= prev.started_at);
                    prop_assert!(
                        relapse >= prev.started_at + chrono::Duration::from_std(p.renotify_after).unwrap(),
                        "cycle {n} started by a relapse at {relapse}, sooner than renotify_after after {}",
                        prev.started_at
                    );
                    prop_assert_eq!(*n, prev.cycle + 1);
                } else {
                    prop_assert_eq!(*n, 1);
                }
                cycle = Some(keel_core::incident::EscalationState {
                    cycle: *n,
                    policy: p.id.clone(),
                    started_at: *at,
                    fired: BTreeSet::new(),
                    acknowledged: None,
                    exhausted: false,
                    relapsed_at: None,
                });
                last_fired = None;
            }
            EventKind::Paged {
                cycle: n,
                round,
                level,
                ..
            }
            | EventKind::PageSkipped {
                cycle: n,
                round,
                level,
                ..
            } => {
                let c = cycle.as_mut().expect("a page without a cycle");
                prop_assert_eq!(*n, c.cycle);
                prop_assert!(c.acknowledged.is_none(), "paged after acknowledgement");
                prop_assert!(!c.exhausted, "paged after exhaustion");
                prop_assert!(
                    *round >= 1 && *round <= p.repeat + 1,
                    "round {round} of {}",
                    p.repeat + 1
                );
                prop_assert!(*level >= 1 && *level as usize <= p.levels.len());
                prop_assert_eq!(
                    *at,
                    due(p, c.started_at, *round, *level),
                    "stamped at its due time"
                );
                // In order; one level may page several people (same (round, level) in a row).
                if let Some(prev) = last_fired {
                    prop_assert!(
                        prev <= (*round, *level),
                        "{prev:?} then {:?}",
                        (*round, *level)
                    );
                }
                prop_assert!(
                    !before
                        .escalation
                        .as_ref()
                        .is_some_and(|e| e.cycle == *n && e.fired.contains(&(*round, *level))),
                    "level {level} of round {round} fired twice in cycle {n}"
                );
                if let EventKind::PageSkipped { reason, .. } = kind {
                    if reason.starts_with("quiet hours") {
                        prop_assert_ne!(
                            before.severity,
                            Some(Severity::Sev1),
                            "quiet hours skipped a SEV1 page"
                        );
                    }
                }
                last_fired = Some((*round, *level));
                c.fired.insert((*round, *level));
            }
            EventKind::EscalationExhausted { cycle: n, .. } => {
                let c = cycle.as_mut().expect("exhausted without a cycle");
                prop_assert_eq!(*n, c.cycle);
                let all: BTreeSet<(u32, u32)> = (1..=p.repeat + 1)
                    .flat_map(|r| (1..=p.levels.len() as u32).map(move |l| (r, l)))
                    .collect();
                prop_assert_eq!(
                    &c.fired,
                    &all,
                    "exhausted before every level of every round fired"
                );
                prop_assert_eq!(*at, c.started_at + period(p) * (p.repeat as i32 + 1));
                c.exhausted = true;
            }
            other => prop_assert!(false, "the engine planned {other:?}"),
        }
    }
    Ok(())
}

/// Whatever is due by `now` has fired: the engine is live, not just harmless.
fn check_caught_up(
    sim: &Sim,
    p: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<(), TestCaseError> {
    if let Some(next) = next_due(&sim.inc, p) {
        prop_assert!(
            next > now,
            "next_due {next} is not after {now} right after a run"
        );
    }
    let Some(e) = &sim.inc.escalation else {
        return Ok(());
    };
    if sim.inc.state == IncidentState::Resolved || e.acknowledged.is_some() {
        return Ok(());
    }
    for r in 1..=p.repeat + 1 {
        for l in 1..=p.levels.len() as u32 {
            if due(p, e.started_at, r, l) <= now {
                prop_assert!(
                    e.fired.contains(&(r, l)),
                    "({r}, {l}) was due by {now} but did not fire"
                );
            }
        }
    }
    let end = e.started_at + period(p) * (p.repeat as i32 + 1);
    prop_assert_eq!(e.exhausted, end <= now);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn escalation_keeps_every_rule(
        p in policy_strategy(),
        roster in roster_strategy(),
        sev in severity(),
        start_offset in 0i64..(48 * 60),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let start = t0() + mins(start_offset);
        let mut now = start;
        let mut sim = Sim::open(start, sev);
        let mut pages: BTreeMap<(u32, u32, u32, String), usize> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Wait(secs) => now += chrono::Duration::seconds(secs),
                Op::Run => {
                    let before = sim.inc.clone();
                    let planned = sim.run(&p, &roster, now);
                    check_run(&before, &planned, &p, now)?;
                    for (_, k) in &planned {
                        if let EventKind::Paged { cycle, round, level, person, .. } = k {
                            *pages.entry((*cycle, *round, *level, person.clone())).or_default() += 1;
                        }
                    }
                    // Idempotent: run again at once, nothing.
                    let again = plan(&sim.inc, &p, &roster, now);
                    prop_assert!(again.is_empty(), "planned again: {again:?}");
                    check_caught_up(&sim, &p, now)?;
                }
                Op::Ack => {
                    if let Ok(kinds) = decide(&sim.inc, Command::Acknowledge { via: Some("api".into()) }) {
                        for k in kinds {
                            sim.apply(now, Actor::User("ann".into()), k);
                        }
                        // Nothing more for this cycle, even much later.
                        if let Some(e) = &sim.inc.escalation {
                            let later = plan(&sim.inc, &p, &roster, now + mins(24 * 60));
                            prop_assert!(
                                later.iter().all(|(_, k)| !matches!(k,
                                    EventKind::Paged { cycle, .. }
                                    | EventKind::PageSkipped { cycle, .. }
                                    | EventKind::EscalationExhausted { cycle, .. } if *cycle == e.cycle)),
                                "planned for an acknowledged cycle: {later:?}"
                            );
                        }
                    }
                }
                Op::Resolve => {
                    if sim.inc.state != IncidentState::Resolved {
                        sim.resolve(now);
                        prop_assert!(plan(&sim.inc, &p, &roster, now + mins(24 * 60)).is_empty());
                    }
                }
                Op::Relapse => sim.relapse(now),
                Op::Severity(s) => {
                    if sim.inc.severity != Some(s) {
                        sim.set_severity(now, s);
                    }
                }
            }
        }
        prop_assert!(pages.values().all(|n| *n == 1), "a person paged twice for one level: {pages:?}");
        prop_assert_eq!(Incident::replay(&sim.events).unwrap(), sim.inc.clone());
    }

    #[test]
    fn a_relapse_after_renotify_after_pages_again_and_one_sooner_does_not(
        p in policy_strategy(),
        gap_secs in 1i64..7200,
    ) {
        let p = EscalationPolicy { min_severity: Severity::Sev4, ..p };
        let roster = team();
        let mut sim = Sim::open(t0(), Severity::Sev1);
        sim.run(&p, &roster, t0());
        sim.resolve(t0() + chrono::Duration::seconds(1));
        let at = t0() + chrono::Duration::seconds(gap_secs);
        sim.relapse(at);
        let planned = sim.run(&p, &roster, at + mins(24 * 60));
        let restarted = planned.iter().any(|(_, k)| matches!(k, EventKind::EscalationStarted { cycle: 2, .. }));
        let renotify = chrono::Duration::from_std(p.renotify_after).unwrap();
        prop_assert_eq!(restarted, chrono::Duration::seconds(gap_secs) >= renotify);
        if restarted {
            prop_assert_eq!(planned[0].0, at);
        }
    }
}
