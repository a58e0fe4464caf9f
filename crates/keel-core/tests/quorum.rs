//! The quorum fold over locations, as properties: a failure counts exactly when the quorum
//! sees it, a silent location never makes anything fail, and the reason says "regional"
//! exactly when some locations fail and others are fine (the drafts rely on reading it back).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use keel_core::quorum::{fold, regional_locations, Seen};
use keel_core::Health;
use proptest::prelude::*;

const NAMES: &[&str] = &["local", "osaka", "frankfurt", "sao-paulo", "eu-west-1"];

fn at(s: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
}

fn health() -> impl Strategy<Value = Option<Health>> {
    prop_oneof![
        Just(None),
        Just(Some(Health::Up)),
        Just(Some(Health::Down)),
        Just(Some(Health::Degraded)),
        Just(Some(Health::Unknown)),
    ]
}

/// 1–5 locations, each with what it last confirmed (or nothing), and a quorum in range.
fn case() -> impl Strategy<Value = (Vec<String>, Vec<Option<Health>>, u32, Vec<i64>)> {
    (1usize..=NAMES.len()).prop_flat_map(|n| {
        (
            Just(NAMES[..n].iter().map(|s| s.to_string()).collect::<Vec<_>>()),
            prop::collection::vec(health(), n),
            1..=n as u32,
            prop::collection::vec(0i64..1000, n),
        )
    })
}

fn seen(locations: &[String], healths: &[Option<Health>], since: &[i64]) -> BTreeMap<String, Seen> {
    locations
        .iter()
        .zip(healths)
        .zip(since)
        .filter_map(|((l, h), s)| {
            h.map(|health| {
                (
                    l.clone(),
                    Seen {
                        health,
                        reason: format!("reason at {l}; detail"),
                        since: at(*s),
                    },
                )
            })
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn a_failure_counts_exactly_at_the_quorum((locations, healths, quorum, since) in case()) {
        let v = fold(&locations, quorum, &seen(&locations, &healths, &since));
        let failing: Vec<&String> = locations.iter().zip(&healths)
            .filter(|(_, h)| h.is_some_and(Health::is_failing)).map(|(l, _)| l).collect();
        let fine = healths.iter().filter(|h| **h == Some(Health::Up)).count();
        prop_assert_eq!(v.health.is_failing(), failing.len() >= quorum as usize, "{:?}", v);
        if !v.health.is_failing() {
            let expected = if fine > 0 { Health::Up } else { Health::Unknown };
            prop_assert_eq!(v.health, expected, "{:?}", v);
        }
        // Regional exactly when the failure counts and some location is fine; then the
        // reason names the failing locations, and reading it back gives them.
        let regional = regional_locations(&v.reason);
        let mut expected: Vec<String> = Vec::new();
        if v.health.is_failing() && fine > 0 {
            prop_assert_eq!(v.health, Health::Degraded);
            expected = failing.iter().map(|s| s.to_string()).collect();
            expected.sort();
        }
        let mut got = regional.clone();
        got.sort();
        prop_assert_eq!(&got, &expected, "{}", v.reason);
        // Inside an incident's reason ("source: reason", joined by "; ") it reads the same.
        let mut inside = regional_locations(&format!("api: {}; api-2: {}", v.reason, v.reason));
        inside.sort();
        prop_assert_eq!(inside, expected);
    }

    #[test]
    fn every_silent_location_is_named((locations, healths, quorum, since) in case()) {
        let v = fold(&locations, quorum, &seen(&locations, &healths, &since));
        for (l, h) in locations.iter().zip(&healths) {
            if matches!(h, None | Some(Health::Unknown)) {
                prop_assert!(v.reason.contains(l.as_str()), "{} not named in {}", l, v.reason);
            }
        }
    }

    /// Unknown never pages: a location going silent can never make a monitor fail that did not
    /// fail with that location's word. (It may make a regional failure read as one from every
    /// location that still reports: those are all failing, and that is what they say.)
    #[test]
    fn silence_never_creates_a_failure((locations, healths, quorum, since) in case(), which in 0usize..5) {
        let before = fold(&locations, quorum, &seen(&locations, &healths, &since));
        let mut quieter = healths.clone();
        let i = which % quieter.len();
        quieter[i] = None;
        let after = fold(&locations, quorum, &seen(&locations, &quieter, &since));
        if after.health.is_failing() {
            prop_assert!(before.health.is_failing(), "{:?} → {:?}", before, after);
        }
    }
}
