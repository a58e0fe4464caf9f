//! The escalation engine by example: the paging walk-through (Ann paged, nobody
//! acknowledges, Carol paged 5 minutes later, Carol acknowledges, nothing more), quiet hours,
//! rounds running out, a late restart, relapses, and the timeline's words.

mod escalation_support;

use escalation_support::*;
use keel_core::assess::Severity;
use keel_core::escalation::{next_due, plan, policy_for};
use keel_core::incident::{decide, words, Actor, Command, EventKind, Incident, IncidentEvent};

fn walkthrough_policy() -> keel_core::config::EscalationPolicy {
    policy(
        vec![
            level(0, &["schedule:primary"]),
            level(300, &["person:carol"]),
        ],
        0,
    )
}

fn texts(sim: &Sim, from: usize) -> Vec<String> {
    sim.events[from..]
        .iter()
        .map(|e| words::describe(&e.kind, &sim.inc))
        .collect()
}

#[test]
fn ann_is_paged_nobody_acknowledges_carol_is_paged_and_acknowledges_then_nothing_more() {
    let roster = team();
    let p = walkthrough_policy();
    // 2027-01-04 is ann's turn (day 28 of a two-person daily rotation from 2026-12-07).
    let mut sim = Sim::open(t0(), Severity::Sev1);
    let first = sim.run(&p, &roster, t0());
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(|(at, _)| *at == t0()));
    assert_eq!(
        texts(&sim, 2),
        [
            "Escalation started (policy default): opened as SEV1",
            "Paged Ann Sato (schedule:primary) by email, sms — level 1",
        ]
    );
    // Run again at once, and just before level 2: nothing.
    assert!(plan(&sim.inc, &p, &roster, t0()).is_empty());
    assert!(plan(
        &sim.inc,
        &p,
        &roster,
        t0() + mins(5) - chrono::Duration::seconds(1)
    )
    .is_empty());
    assert_eq!(next_due(&sim.inc, &p), Some(t0() + mins(5)));

    let second = sim.run(&p, &roster, t0() + mins(5));
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].0, t0() + mins(5));
    assert_eq!(
        texts(&sim, 4),
        ["Paged Carol Weber (person:carol) by email, voice — level 2"]
    );

    let ack = decide(
        &sim.inc,
        Command::Acknowledge {
            via: Some("console".into()),
        },
    )
    .unwrap();
    for kind in ack {
        sim.apply(t0() + mins(6), Actor::User("carol".into()), kind);
    }
    assert_eq!(texts(&sim, 5), ["Acknowledged via console"]);
    assert_eq!(sim.inc.acknowledged_by.as_deref(), Some("carol"));
    let e = sim.inc.escalation.as_ref().unwrap();
    assert_eq!(e.acknowledged, Some(("carol".into(), t0() + mins(6))));
    // Nothing more, however long nobody resolves it.
    assert!(plan(&sim.inc, &p, &roster, t0() + mins(600)).is_empty());
    assert_eq!(next_due(&sim.inc, &p), None);
    // And the stored timeline replays to the same incident.
    assert_eq!(Incident::replay(&sim.events).unwrap(), sim.inc);
}

#[test]
fn a_late_run_fires_what_fell_due_stamped_when_it_was_due() {
    let roster = team();
    let p = walkthrough_policy();
    let mut sim = Sim::open(t0(), Severity::Sev2);
    // Keel was down from the opening until 7 minutes later.
    let planned = sim.run(&p, &roster, t0() + mins(7));
    let at: Vec<_> = planned.iter().map(|(at, k)| (*at, k.name())).collect();
    assert_eq!(
        at,
        [
            (t0(), "escalation_started"),
            (t0(), "paged"),
            (t0() + mins(5), "paged")
        ]
    );
    assert_eq!(sim.inc.last_event_at, t0() + mins(5));
}

#[test]
fn rounds_repeat_then_the_escalation_is_exhausted() {
    let roster = team();
    let p = walkthrough_policy();
    let p = keel_core::config::EscalationPolicy { repeat: 1, ..p };
    let mut sim = Sim::open(t0(), Severity::Sev1);
    sim.run(&p, &roster, t0() + mins(60));
    let fired: Vec<(i64, String)> = sim.events[2..]
        .iter()
        .map(|e| {
            (
                (e.at - t0()).num_minutes(),
                words::describe(&e.kind, &sim.inc),
            )
        })
        .collect();
    assert_eq!(
        fired,
        [
            (
                0,
                "Escalation started (policy default): opened as SEV1".to_string()
            ),
            (
                0,
                "Paged Ann Sato (schedule:primary) by email, sms — level 1".into()
            ),
            (
                5,
                "Paged Carol Weber (person:carol) by email, voice — level 2".into()
            ),
            (
                10,
                "Paged Ann Sato (schedule:primary) by email, sms — level 1, round 2".into()
            ),
            (
                15,
                "Paged Carol Weber (person:carol) by email, voice — level 2, round 2".into()
            ),
            (
                20,
                "Escalation exhausted: nobody acknowledged after 2 rounds".into()
            ),
        ]
    );
    assert!(sim.inc.escalation.as_ref().unwrap().exhausted);
    assert!(plan(&sim.inc, &p, &roster, t0() + mins(600)).is_empty());
}

#[test]
fn quiet_hours_skip_below_sev1_and_the_next_level_still_comes() {
    let mut roster = team();
    quiet(&mut roster.people[0], "22:00", "07:00");
    let p = walkthrough_policy();
    // 14:00 UTC is 23:00 in Tokyo.
    let night = t0() + mins(9 * 60);
    let mut sim = Sim::open(night, Severity::Sev2);
    sim.run(&p, &roster, night + mins(5));
    assert_eq!(
        texts(&sim, 2)[1..],
        [
            "Ann Sato skipped: quiet hours (22:00–07:00 Asia/Tokyo) — level 1",
            "Paged Carol Weber (person:carol) by email, voice — level 2",
        ]
    );
    // SEV1 wakes her.
    let mut sim = Sim::open(night, Severity::Sev1);
    sim.run(&p, &roster, night);
    assert_eq!(
        texts(&sim, 3),
        ["Paged Ann Sato (schedule:primary) by email, sms — level 1"]
    );
}

#[test]
fn one_page_per_person_per_level_and_skips_say_why() {
    let mut roster = team();
    roster.schedules.push(schedule(
        "empty-later",
        &["bob"],
        std::time::Duration::from_secs(3600),
    ));
    roster.schedules[1].start =
        chrono::DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap();
    let p = policy(
        vec![level(
            0,
            &[
                "schedule:primary",
                "person:ann",
                "person:dan",
                "schedule:empty-later",
            ],
        )],
        0,
    );
    let mut sim = Sim::open(t0(), Severity::Sev1);
    sim.run(&p, &roster, t0());
    assert_eq!(
        texts(&sim, 3),
        [
            "Paged Ann Sato (schedule:primary) by email, sms — level 1",
            "Dan skipped: no contacts — level 1",
            "Level 1 skipped: nobody on call in schedule:empty-later",
        ]
    );
}

#[test]
fn below_min_severity_nothing_pages_until_the_severity_rises() {
    let roster = team();
    let p = walkthrough_policy();
    let mut sim = Sim::open(t0(), Severity::Sev3);
    assert!(sim.run(&p, &roster, t0() + mins(10)).is_empty());
    assert_eq!(next_due(&sim.inc, &p), None);
    sim.set_severity(t0() + mins(12), Severity::Sev2);
    let planned = sim.run(&p, &roster, t0() + mins(12));
    assert_eq!(planned[0].0, t0() + mins(12));
    assert_eq!(
        words::describe(&planned[0].1, &sim.inc),
        "Escalation started (policy default): severity rose to SEV2"
    );
}

#[test]
fn an_incident_acknowledged_before_it_pages_does_not_page() {
    let roster = team();
    let p = walkthrough_policy();
    let mut sim = Sim::open(t0(), Severity::Sev3);
    sim.apply(
        t0() + mins(1),
        Actor::User("bob".into()),
        EventKind::Acknowledged {
            via: Some("cli".into()),
        },
    );
    sim.set_severity(t0() + mins(2), Severity::Sev1);
    assert!(sim.run(&p, &roster, t0() + mins(30)).is_empty());
}

#[test]
fn resolution_stops_it() {
    let roster = team();
    let p = walkthrough_policy();
    let mut sim = Sim::open(t0(), Severity::Sev1);
    sim.run(&p, &roster, t0());
    sim.resolve(t0() + mins(2));
    assert!(plan(&sim.inc, &p, &roster, t0() + mins(60)).is_empty());
    assert_eq!(next_due(&sim.inc, &p), None);
}

#[test]
fn a_relapse_pages_again_but_not_sooner_than_renotify_after() {
    let roster = team();
    let p = walkthrough_policy();
    let mut sim = Sim::open(t0(), Severity::Sev1);
    sim.run(&p, &roster, t0());
    for k in decide(
        &sim.inc,
        Command::Acknowledge {
            via: Some("link".into()),
        },
    )
    .unwrap()
    {
        sim.apply(t0() + mins(1), Actor::User("ann".into()), k);
    }
    sim.resolve(t0() + mins(10));
    // A flap 20 minutes after the cycle started: no page.
    sim.relapse(t0() + mins(20));
    assert!(sim.run(&p, &roster, t0() + mins(25)).is_empty());
    sim.resolve(t0() + mins(26));
    // 40 minutes after: a new cycle, which needs its own acknowledgement.
    sim.relapse(t0() + mins(40));
    let planned = sim.run(&p, &roster, t0() + mins(40));
    assert_eq!(
        planned
            .iter()
            .map(|(_, k)| words::describe(k, &sim.inc))
            .collect::<Vec<_>>(),
        [
            "Escalation cycle 2 started (policy default): relapse",
            "Paged Ann Sato (schedule:primary) by email, sms — level 1",
        ]
    );
    let again = decide(
        &sim.inc,
        Command::Acknowledge {
            via: Some("api".into()),
        },
    )
    .unwrap();
    for k in again {
        sim.apply(t0() + mins(41), Actor::User("carol".into()), k);
    }
    // Time to acknowledge keeps the first acknowledgement.
    assert_eq!(sim.inc.acknowledged_at, Some(t0() + mins(1)));
    assert_eq!(sim.inc.acknowledged_by.as_deref(), Some("ann"));
    let refusal = decide(&sim.inc, Command::Acknowledge { via: None }).unwrap_err();
    assert_eq!(
        refusal.reason,
        "already acknowledged by carol at 2027-01-04 05:41:00 UTC"
    );
    assert_eq!(Incident::replay(&sim.events).unwrap(), sim.inc);
}

#[test]
fn a_second_acknowledgement_in_one_cycle_is_refused_by_the_fold() {
    let roster = team();
    let p = walkthrough_policy();
    let mut sim = Sim::open(t0(), Severity::Sev1);
    sim.run(&p, &roster, t0());
    sim.apply(
        t0() + mins(1),
        Actor::User("ann".into()),
        EventKind::Acknowledged { via: None },
    );
    let err = sim
        .try_apply(
            t0() + mins(2),
            Actor::User("bob".into()),
            EventKind::Acknowledged { via: None },
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("escalation cycle 1 was already acknowledged by ann"),
        "{err}"
    );
    let err = decide(
        &sim.inc,
        Command::Acknowledge {
            via: Some("fax".into()),
        },
    )
    .unwrap_err();
    assert_eq!(err.field, "incident");
}

#[test]
fn an_unknown_way_to_acknowledge_is_refused() {
    let sim = Sim::open(t0(), Severity::Sev1);
    let err = decide(
        &sim.inc,
        Command::Acknowledge {
            via: Some("fax".into()),
        },
    )
    .unwrap_err();
    assert_eq!(err.field, "via");
    assert!(
        err.reason.contains("api, cli, console, link, voice, chat"),
        "{err}"
    );
}

#[test]
fn paging_events_for_a_cycle_that_is_not_running_are_refused() {
    let mut sim = Sim::open(t0(), Severity::Sev1);
    let err = sim
        .try_apply(
            t0(),
            Actor::System,
            EventKind::Paged {
                cycle: 1,
                round: 1,
                level: 1,
                person: "ann".into(),
                name: "Ann".into(),
                target: "person:ann".into(),
                contacts: vec!["email".into()],
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("no escalation has started"),
        "{err}"
    );
    let err = sim
        .try_apply(
            t0(),
            Actor::System,
            EventKind::EscalationStarted {
                cycle: 2,
                policy: "p".into(),
                reason: "x".into(),
            },
        )
        .unwrap_err();
    assert!(err.to_string().contains("the next cycle is 1"), "{err}");
}

#[test]
fn an_acknowledgement_stored_by_an_older_version_still_reads() {
    let kind: EventKind = serde_json::from_str(r#"{"type":"acknowledged"}"#).unwrap();
    assert_eq!(kind, EventKind::Acknowledged { via: None });
    let stored = r#"{"incident":3,"seq":2,"at":"2026-03-01T09:02:00Z","actor":{"type":"user","name":"alice"},"type":"acknowledged"}"#;
    let ev: IncidentEvent = serde_json::from_str(stored).unwrap();
    assert_eq!(ev.kind, EventKind::Acknowledged { via: None });
    // And what this version writes without `via` is what older versions wrote.
    assert_eq!(
        serde_json::to_string(&EventKind::Acknowledged { via: None }).unwrap(),
        r#"{"type":"acknowledged"}"#
    );
    let with: EventKind = serde_json::from_str(r#"{"type":"acknowledged","via":"chat"}"#).unwrap();
    assert_eq!(
        with,
        EventKind::Acknowledged {
            via: Some("chat".into())
        }
    );
}

#[test]
fn the_policy_for_an_incident() {
    let catch_all = policy(vec![level(0, &["person:ann"])], 0);
    let mut shop = catch_all.clone();
    shop.id = "shop".into();
    shop.components = vec!["shop".into()];
    let mut search = catch_all.clone();
    search.id = "search".into();
    search.components = vec!["search".into()];
    let sim = Sim::open(t0(), Severity::Sev1);
    let policies = [catch_all.clone(), search.clone(), shop];
    assert_eq!(policy_for(&policies, &sim.inc).unwrap().id, "shop");
    let policies = [search.clone(), catch_all];
    assert_eq!(policy_for(&policies, &sim.inc).unwrap().id, "default");
    assert!(policy_for(&[search], &sim.inc).is_none());
}

#[test]
fn the_postmortem_tells_who_was_paged_and_who_acknowledged() {
    let roster = team();
    let p = walkthrough_policy();
    let mut sim = Sim::open(t0(), Severity::Sev1);
    sim.run(&p, &roster, t0() + mins(5));
    for k in decide(
        &sim.inc,
        Command::Acknowledge {
            via: Some("console".into()),
        },
    )
    .unwrap()
    {
        sim.apply(t0() + mins(6), Actor::User("carol".into()), k);
    }
    sim.resolve(t0() + mins(30));
    let pm = keel_core::incident::postmortem(&sim.inc, &sim.events, &[], t0() + mins(30));
    for line in [
        "Paged Ann Sato (schedule:primary) by email, sms — level 1",
        "Paged Carol Weber (person:carol) by email, voice — level 2",
        "Acknowledged via console",
    ] {
        assert!(
            pm.markdown.contains(line),
            "postmortem lacks {line:?}:\n{}",
            pm.markdown
        );
    }
    // Time to acknowledge: 6 minutes after opening.
    assert_eq!(pm.json["times"]["acknowledged_at"], "2027-01-04T05:06:00Z");
    assert_eq!(pm.json["timings"]["time_to_acknowledge"]["secs"], 360);
}
