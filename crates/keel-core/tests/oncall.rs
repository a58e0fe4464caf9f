//! Who is on call: rotations, daylight-saving hand-offs, overrides.

use std::time::Duration;

use chrono::{DateTime, Utc};
use keel_core::config::{Person, Schedule};
use keel_core::oncall::{check_override, on_call, turns, NewOverride, OnCall, Override};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn schedule(start: &str, rotation: Duration, tz: Option<chrono_tz::Tz>) -> Schedule {
    Schedule {
        id: "primary".into(),
        name: "Primary".into(),
        people: vec!["ann".into(), "bob".into()],
        rotation,
        start: DateTime::parse_from_rfc3339(start).unwrap(),
        timezone: tz,
    }
}

const DAY: Duration = Duration::from_secs(86_400);

fn local(tz: chrono_tz::Tz, at: DateTime<Utc>) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

fn hours(o: &OnCall) -> i64 {
    (o.until - o.since).num_minutes()
}

#[test]
fn daily_hand_offs_keep_09_00_in_berlin_across_both_dst_changes() {
    let berlin = chrono_tz::Tz::Europe__Berlin;
    let s = schedule("2027-03-25T09:00:00+01:00", DAY, Some(berlin));
    // Spring: clocks go 02:00 → 03:00 on 2027-03-28.
    let spring = turns(&s, t("2027-03-26T12:00:00Z"), t("2027-03-29T12:00:00Z"));
    let at: Vec<String> = spring.iter().map(|o| local(berlin, o.since)).collect();
    assert_eq!(
        at,
        [
            "2027-03-26 09:00 CET",
            "2027-03-27 09:00 CET",
            "2027-03-28 09:00 CEST",
            "2027-03-29 09:00 CEST"
        ]
    );
    let minutes: Vec<i64> = spring.iter().map(hours).collect();
    assert_eq!(minutes, [24 * 60, 23 * 60, 24 * 60, 24 * 60]);
    // Alternating people, counted from the start: 03-25 ann, 03-26 bob, 03-27 ann, …
    let who: Vec<&str> = spring.iter().map(|o| o.person.as_str()).collect();
    assert_eq!(who, ["bob", "ann", "bob", "ann"]);

    // Autumn: clocks go 03:00 → 02:00 on 2027-10-31.
    let autumn = turns(&s, t("2027-10-30T12:00:00Z"), t("2027-10-31T12:00:00Z"));
    assert_eq!(autumn.len(), 2);
    assert_eq!(local(berlin, autumn[0].since), "2027-10-30 09:00 CEST");
    assert_eq!(local(berlin, autumn[0].until), "2027-10-31 09:00 CET");
    assert_eq!(hours(&autumn[0]), 25 * 60);
    assert_eq!(autumn[0].until, t("2027-10-31T08:00:00Z"));

    // on_call agrees with turns on each side of the hand-off.
    let before = on_call(&s, &[], t("2027-10-31T07:59:59Z")).unwrap();
    let after = on_call(&s, &[], t("2027-10-31T08:00:00Z")).unwrap();
    assert_eq!(before, autumn[0]);
    assert_eq!(after, autumn[1]);
    assert_ne!(before.person, after.person);
}

#[test]
fn without_a_zone_hand_offs_keep_the_offset_of_start() {
    let s = schedule("2027-03-25T09:00:00+01:00", DAY, None);
    let list = turns(&s, t("2027-03-27T12:00:00Z"), t("2027-03-29T12:00:00Z"));
    assert!(list.iter().all(|o| hours(o) == 24 * 60));
    assert!(list
        .iter()
        .all(|o| o.since.format("%H:%M").to_string() == "08:00"));
}

#[test]
fn a_start_that_does_not_exist_in_new_york_hands_off_at_the_first_valid_instant() {
    let ny = chrono_tz::Tz::America__New_York;
    // Clocks go 02:00 → 03:00 on 2027-03-14: 02:30 does not exist that day.
    let s = schedule("2027-03-12T02:30:00-05:00", DAY, Some(ny));
    let list = turns(&s, t("2027-03-13T12:00:00Z"), t("2027-03-15T12:00:00Z"));
    let at: Vec<String> = list.iter().map(|o| local(ny, o.since)).collect();
    assert_eq!(
        at,
        [
            "2027-03-13 02:30 EST",
            "2027-03-14 03:00 EDT",
            "2027-03-15 02:30 EDT"
        ]
    );
    assert_eq!(list[1].since, t("2027-03-14T07:00:00Z"));
    // 02:30 EST → 03:00 EDT is 23.5 h; 03:00 EDT → 02:30 EDT is 23.5 h.
    assert_eq!(hours(&list[0]), 23 * 60 + 30);
    assert_eq!(hours(&list[1]), 23 * 60 + 30);
}

#[test]
fn an_ambiguous_hand_off_takes_the_earlier_instant() {
    let berlin = chrono_tz::Tz::Europe__Berlin;
    // 02:30 happens twice on 2027-10-31; the first is still summer time (CEST, +02:00).
    let s = schedule("2027-10-30T02:30:00+02:00", DAY, Some(berlin));
    let list = turns(&s, t("2027-10-30T12:00:00Z"), t("2027-10-31T12:00:00Z"));
    assert_eq!(list[1].since, t("2027-10-31T00:30:00Z"));
    assert_eq!(local(berlin, list[1].since), "2027-10-31 02:30 CEST");
}

#[test]
fn sub_day_rotations_stay_exact_across_dst() {
    let berlin = chrono_tz::Tz::Europe__Berlin;
    let s = schedule(
        "2027-03-27T08:00:00+01:00",
        Duration::from_secs(8 * 3600),
        Some(berlin),
    );
    let list = turns(&s, t("2027-03-27T07:00:00Z"), t("2027-03-29T07:00:00Z"));
    assert_eq!(list.len(), 6);
    assert!(list.iter().all(|o| hours(o) == 8 * 60));
    assert_eq!(list[3].since, t("2027-03-28T07:00:00Z"));
    // So the wall clock moves: 08:00 CET became 09:00 CEST.
    assert_eq!(local(berlin, list[3].since), "2027-03-28 09:00 CEST");
    // Weekly rotations with a zone keep the wall clock (7 whole days).
    let w = schedule("2027-03-22T09:00:00+01:00", 7 * DAY, Some(berlin));
    let l = turns(&w, t("2027-03-22T08:00:00Z"), t("2027-04-05T00:00:00Z"));
    assert_eq!(local(berlin, l[1].since), "2027-03-29 09:00 CEST");
    assert_eq!(hours(&l[0]), 7 * 24 * 60 - 60);
}

#[test]
fn nobody_is_on_call_before_the_start() {
    let s = schedule("2026-12-07T09:00:00+09:00", 7 * DAY, None);
    // 09:00+09:00 is 00:00Z: ann's turn starts exactly there, and nobody's before.
    let first = on_call(&s, &[], t("2026-12-07T00:00:00Z")).unwrap();
    assert_eq!(
        (first.person.as_str(), first.since),
        ("ann", t("2026-12-07T00:00:00Z"))
    );
    assert_eq!(on_call(&s, &[], t("2026-12-06T23:59:59Z")), None);
    assert!(turns(&s, t("2026-11-01T00:00:00Z"), t("2026-12-01T00:00:00Z")).is_empty());
    // Two weeks in, it is bob's turn, then ann's again.
    assert_eq!(
        on_call(&s, &[], t("2026-12-15T00:00:00Z")).unwrap().person,
        "bob"
    );
    assert_eq!(
        on_call(&s, &[], t("2026-12-21T00:00:00Z")).unwrap().person,
        "ann"
    );
}

fn ov(id: i64, person: &str, start: &str, end: &str) -> Override {
    Override {
        id,
        schedule: "primary".into(),
        person: person.into(),
        start: t(start),
        end: t(end),
        created_by: "admin".into(),
        created_at: t("2026-12-01T00:00:00Z"),
    }
}

#[test]
fn an_override_wins_and_cuts_the_turn_around_it() {
    let s = schedule("2026-12-07T00:00:00Z", 7 * DAY, None);
    let o = [ov(
        3,
        "carol",
        "2026-12-08T00:00:00Z",
        "2026-12-09T00:00:00Z",
    )];
    let during = on_call(&s, &o, t("2026-12-08T12:00:00Z")).unwrap();
    assert_eq!(
        during,
        OnCall {
            schedule: "primary".into(),
            person: "carol".into(),
            since: t("2026-12-08T00:00:00Z"),
            until: t("2026-12-09T00:00:00Z"),
            override_id: Some(3),
        }
    );
    let before = on_call(&s, &o, t("2026-12-07T12:00:00Z")).unwrap();
    assert_eq!(before.person, "ann");
    assert_eq!(before.until, t("2026-12-08T00:00:00Z"));
    let after = on_call(&s, &o, t("2026-12-10T00:00:00Z")).unwrap();
    assert_eq!(
        (after.person.as_str(), after.since),
        ("ann", t("2026-12-09T00:00:00Z"))
    );
    assert_eq!(after.until, t("2026-12-14T00:00:00Z"));
    // Another schedule's override changes nothing here.
    let mut other = o[0].clone();
    other.schedule = "secondary".into();
    assert_eq!(
        on_call(&s, &[other], t("2026-12-08T12:00:00Z"))
            .unwrap()
            .person,
        "ann"
    );
}

fn person(id: &str) -> Person {
    Person {
        id: id.into(),
        name: id.into(),
        timezone: chrono_tz::Tz::UTC,
        locale: "en".into(),
        quiet_hours: None,
        contacts: Vec::new(),
    }
}

fn new(person: &str, start: &str, end: &str) -> NewOverride {
    NewOverride {
        schedule: "primary".into(),
        person: person.into(),
        start: t(start),
        end: t(end),
    }
}

#[test]
fn overlapping_and_malformed_overrides_are_refused() {
    let s = schedule("2026-12-07T00:00:00Z", 7 * DAY, None);
    let people = [person("ann"), person("bob"), person("carol")];
    let existing = [ov(
        3,
        "carol",
        "2026-12-08T09:00:00Z",
        "2026-12-09T09:00:00Z",
    )];
    let e = check_override(
        &new("bob", "2026-12-09T08:00:00Z", "2026-12-10T00:00:00Z"),
        &s,
        &people,
        &existing,
    )
    .unwrap_err();
    assert_eq!(e.field, "start");
    assert_eq!(
        e.reason,
        "overlaps override 3 (carol, 2026-12-08 09:00 UTC–2026-12-09 09:00 UTC)"
    );
    // Touching is not overlapping.
    assert!(check_override(
        &new("bob", "2026-12-09T09:00:00Z", "2026-12-10T00:00:00Z"),
        &s,
        &people,
        &existing
    )
    .is_ok());
    let e = check_override(
        &new("bob", "2026-12-10T00:00:00Z", "2026-12-10T00:00:00Z"),
        &s,
        &people,
        &existing,
    )
    .unwrap_err();
    assert_eq!(e.field, "end");
    assert!(e.reason.contains("must end after it starts"), "{e}");
    let e = check_override(
        &new("carl", "2026-12-10T00:00:00Z", "2026-12-11T00:00:00Z"),
        &s,
        &people,
        &existing,
    )
    .unwrap_err();
    assert_eq!(e.field, "person");
    assert_eq!(e.reason, "unknown person `carl`: did you mean `carol`?");
    let mut elsewhere = new("bob", "2026-12-10T00:00:00Z", "2026-12-11T00:00:00Z");
    elsewhere.schedule = "secondary".into();
    assert_eq!(
        check_override(&elsewhere, &s, &people, &existing)
            .unwrap_err()
            .field,
        "schedule"
    );
}

#[test]
fn a_wide_window_is_capped() {
    let s = schedule("2027-01-01T00:00:00Z", Duration::from_secs(60), None);
    let list = turns(&s, t("2027-01-01T00:00:00Z"), t("2028-01-01T00:00:00Z"));
    assert_eq!(list.len(), keel_core::oncall::MAX_TURNS);
    assert!(list.windows(2).all(|w| w[0].until == w[1].since));
}
