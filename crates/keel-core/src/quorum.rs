//! Quorum over locations: one monitor checked from several places (the Keel server, "local",
//! and remote probes such as "osaka") becomes one health, with the reason in plain words.
//!
//! Each location confirms its own results first (the hub keeps one tracker per location, so
//! `confirmations` applies per place); this fold only counts confirmed states. A failure counts
//! when at least `quorum` locations see it, so one probe on a bad network does not open an
//! incident. When some but not all locations fail, the outage is regional: the monitor is
//! `Degraded` (some customers are affected) and the reason says from where, which the drafted
//! customer update turns into "Customers reaching Checkout from osaka may see errors".
//! A location whose probe is silent is left out of the count and named; it never fails
//! anything by itself, like every `Unknown`.
//!
//! The reason text is also how regionality reaches the incident (its `Opened` and relapse
//! reasons carry it, see [`regional_locations`]), so the two live here side by side.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::Health;

/// What one location last confirmed about a monitor.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub health: Health,
    /// The location's own reason ("HTTP 503").
    pub reason: String,
    /// When the location entered this health.
    pub since: DateTime<Utc>,
}

/// The monitor's health over all its locations.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub health: Health,
    pub reason: String,
    /// When this health began as far as the locations tell: for a failure, when the quorum was
    /// reached; `None` when no location has been seen at all.
    pub since: Option<DateTime<Utc>>,
}

/// Folds the locations of one monitor, in config order, into one health.
///
/// With `R` the locations that report (not silent, not `Unknown`), `F` those failing among
/// them and `q` the quorum (clamped to `1..=locations`):
///
/// - nothing reports: `Unknown`, "cannot see from any location (local, osaka)";
/// - `|F| ≥ q` and `F = R`: the worst failing health, "failing from every location (osaka,
///   frankfurt): HTTP 503";
/// - `|F| ≥ q`, some fine: `Degraded`, "failing from osaka only (HTTP 503); fine from local";
/// - `|F| < q`, some fine: `Up`; a failure below the quorum is named and "not counted";
/// - `|F| < q`, none fine: `Unknown` (nothing says it works, too few say it fails).
///
/// Silent locations are appended as "; cannot see from osaka".
pub fn fold(locations: &[String], quorum: u32, seen: &BTreeMap<String, Seen>) -> Verdict {
    let quorum = (quorum as usize).clamp(1, locations.len().max(1));
    let mut fine: Vec<(&str, &Seen)> = Vec::new();
    let mut failing: Vec<(&str, &Seen)> = Vec::new();
    let mut silent: Vec<&str> = Vec::new();
    for loc in locations {
        match seen.get(loc) {
            Some(s) if s.health == Health::Up => fine.push((loc, s)),
            Some(s) if s.health.is_failing() => failing.push((loc, s)),
            _ => silent.push(loc),
        }
    }
    let names = |l: &[(&str, &Seen)]| l.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
    let cannot = if silent.is_empty() {
        String::new()
    } else {
        format!("; cannot see from {}", silent.join(", "))
    };
    // The first failing location's reason speaks for the failure: responders see what broke.
    let why = failing
        .first()
        .map(|(_, s)| plain(&s.reason))
        .unwrap_or_default();

    if fine.is_empty() && failing.is_empty() {
        return Verdict {
            health: Health::Unknown,
            reason: format!("cannot see from any location ({})", locations.join(", ")),
            since: seen.values().map(|s| s.since).max(),
        };
    }
    if failing.len() >= quorum {
        // When the quorum-th location started failing: before that, nothing counted.
        let mut starts: Vec<DateTime<Utc>> = failing.iter().map(|(_, s)| s.since).collect();
        starts.sort();
        let since = starts.get(quorum - 1).copied();
        if fine.is_empty() {
            let health = if failing.iter().any(|(_, s)| s.health == Health::Down) {
                Health::Down
            } else {
                Health::Degraded
            };
            let every = if silent.is_empty() {
                "every location"
            } else {
                "every location that reports"
            };
            return Verdict {
                health,
                reason: format!("failing from {every} ({}): {why}{cannot}", names(&failing)),
                since,
            };
        }
        return Verdict {
            health: Health::Degraded,
            reason: format!(
                "failing from {} only ({why}); fine from {}{cannot}",
                names(&failing),
                names(&fine)
            ),
            since,
        };
    }
    let below = if failing.is_empty() {
        String::new()
    } else {
        format!(
            "failing from {} only ({why}), below the quorum of {quorum}",
            names(&failing)
        )
    };
    if fine.is_empty() {
        return Verdict {
            health: Health::Unknown,
            reason: format!("{below}{cannot}"),
            since: failing.iter().map(|(_, s)| s.since).max(),
        };
    }
    let since = fine.iter().map(|(_, s)| s.since).max();
    let reason = if failing.is_empty() {
        let every = if silent.is_empty() {
            "every location"
        } else {
            "every location that reports"
        };
        format!(
            "fine from {every} ({}): {}{cannot}",
            names(&fine),
            plain(&fine[0].1.reason)
        )
    } else {
        format!("{below}: not counted; fine from {}{cannot}", names(&fine))
    };
    Verdict {
        health: Health::Up,
        reason,
        since,
    }
}

/// A location's reason inside ours: "; " separates the parts of a folded reason (and the
/// sources of a node), so it may not appear inside one.
fn plain(reason: &str) -> String {
    reason.replace("; ", ", ")
}

/// The locations an outage is seen from alone, read back from a reason this module wrote
/// (possibly inside an incident's reason: "api: failing from osaka only (HTTP 503); fine from
/// local", one line per failing source, joined by "; ", perhaps after "checkout is degraded
/// again: "). Empty unless *every* failing source in `reason` is regional: one source failing
/// everywhere means the outage is not regional, whatever the others say.
///
/// Reading the words back (rather than carrying a field through the assessment) keeps the
/// stored incident events as they are; the property tests hold `fold` and this together.
pub fn regional_locations(reason: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut lines = 0;
    for part in reason.split("; ") {
        // The continuations of a folded reason, not sources of their own.
        if part.starts_with("fine from ") || part.starts_with("cannot see from ") {
            continue;
        }
        lines += 1;
        let Some(names) = regional_marker(part) else {
            return Vec::new();
        };
        for n in names {
            if !out.iter().any(|o| o == n) {
                out.push(n.to_owned());
            }
        }
    }
    if lines == 0 {
        return Vec::new();
    }
    out
}

/// The names in "failing from osaka, tokyo only (…)" when `part` says a failure counted from
/// those locations alone (not one "below the quorum").
fn regional_marker(part: &str) -> Option<Vec<&str>> {
    const START: &str = "failing from ";
    const END: &str = " only (";
    for (i, _) in part.match_indices(START) {
        let rest = &part[i + START.len()..];
        let Some(end) = rest.find(END) else {
            continue;
        };
        let names: Vec<&str> = rest[..end].split(", ").collect();
        let valid = names.iter().all(|n| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
        if !valid {
            continue;
        }
        if rest[end..].contains(", below the quorum of ") {
            return None;
        }
        return Some(names);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn locs(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    fn seen(list: &[(&str, Health, &str, i64)]) -> BTreeMap<String, Seen> {
        list.iter()
            .map(|(l, h, r, s)| {
                (
                    l.to_string(),
                    Seen {
                        health: *h,
                        reason: r.to_string(),
                        since: at(*s),
                    },
                )
            })
            .collect()
    }

    const THREE: &[&str] = &["local", "osaka", "frankfurt"];

    #[test]
    fn every_location_failing_is_the_failure() {
        let v = fold(
            &locs(THREE),
            2,
            &seen(&[
                ("local", Health::Down, "HTTP 503", 10),
                ("osaka", Health::Degraded, "slow", 5),
                ("frankfurt", Health::Down, "HTTP 502", 20),
            ]),
        );
        assert_eq!(v.health, Health::Down);
        assert_eq!(
            v.reason,
            "failing from every location (local, osaka, frankfurt): HTTP 503"
        );
        // The quorum of 2 was reached when the second location failed.
        assert_eq!(v.since, Some(at(10)));
        assert!(regional_locations(&v.reason).is_empty());
    }

    #[test]
    fn some_failing_at_the_quorum_is_a_regional_outage() {
        let v = fold(
            &locs(THREE),
            1,
            &seen(&[
                ("local", Health::Up, "HTTP 200", 0),
                ("osaka", Health::Down, "HTTP 503", 7),
                ("frankfurt", Health::Up, "HTTP 200", 0),
            ]),
        );
        assert_eq!(v.health, Health::Degraded);
        assert_eq!(
            v.reason,
            "failing from osaka only (HTTP 503); fine from local, frankfurt"
        );
        assert_eq!(v.since, Some(at(7)));
        assert_eq!(regional_locations(&v.reason), ["osaka"]);
        assert_eq!(
            regional_locations(&format!("checkout-api: {}", v.reason)),
            ["osaka"]
        );
    }

    #[test]
    fn below_the_quorum_is_up_and_says_so() {
        let v = fold(
            &locs(THREE),
            2,
            &seen(&[
                ("local", Health::Up, "HTTP 200", 3),
                ("osaka", Health::Down, "connection refused", 7),
                ("frankfurt", Health::Up, "HTTP 200", 1),
            ]),
        );
        assert_eq!(v.health, Health::Up);
        assert_eq!(
            v.reason,
            "failing from osaka only (connection refused), below the quorum of 2: not counted; \
             fine from local, frankfurt"
        );
        assert!(regional_locations(&v.reason).is_empty());
    }

    #[test]
    fn silent_locations_are_left_out_and_named() {
        let v = fold(
            &locs(THREE),
            1,
            &seen(&[
                ("local", Health::Up, "HTTP 200", 3),
                (
                    "osaka",
                    Health::Unknown,
                    "no results from the osaka probe for 45s",
                    9,
                ),
            ]),
        );
        assert_eq!(v.health, Health::Up);
        assert_eq!(
            v.reason,
            "fine from every location that reports (local): HTTP 200; cannot see from osaka, \
             frankfurt"
        );
        let v = fold(
            &locs(THREE),
            2,
            &seen(&[
                ("osaka", Health::Down, "HTTP 503", 3),
                ("frankfurt", Health::Down, "HTTP 503", 4),
            ]),
        );
        assert_eq!(v.health, Health::Down);
        assert_eq!(
            v.reason,
            "failing from every location that reports (osaka, frankfurt): HTTP 503; cannot see \
             from local"
        );
        // Too few to count and nothing fine: Keel cannot tell.
        let v = fold(
            &locs(THREE),
            2,
            &seen(&[("osaka", Health::Down, "HTTP 503", 3)]),
        );
        assert_eq!(v.health, Health::Unknown);
        assert_eq!(
            v.reason,
            "failing from osaka only (HTTP 503), below the quorum of 2; cannot see from local, \
             frankfurt"
        );
    }

    #[test]
    fn nothing_reporting_is_unknown() {
        let v = fold(&locs(&["local", "osaka"]), 1, &BTreeMap::new());
        assert_eq!(v.health, Health::Unknown);
        assert_eq!(v.reason, "cannot see from any location (local, osaka)");
        assert_eq!(v.since, None);
    }

    #[test]
    fn a_reason_with_semicolons_does_not_break_the_parts() {
        let v = fold(
            &locs(&["local", "osaka"]),
            1,
            &seen(&[
                ("local", Health::Up, "HTTP 200", 0),
                ("osaka", Health::Down, "keyword missing; body was empty", 1),
            ]),
        );
        assert_eq!(
            v.reason,
            "failing from osaka only (keyword missing, body was empty); fine from local"
        );
        assert_eq!(regional_locations(&v.reason), ["osaka"]);
    }

    #[test]
    fn regional_only_when_every_failing_source_is() {
        let regional = "api: failing from osaka only (HTTP 503); fine from local";
        let everywhere = "web: HTTP 503";
        assert_eq!(regional_locations(regional), ["osaka"]);
        assert!(regional_locations(&format!("{regional}; {everywhere}")).is_empty());
        assert_eq!(
            regional_locations(&format!(
                "checkout is degraded again after 5m: {regional}; web: failing from tokyo, \
                 osaka only (timed out after 5s); fine from local"
            )),
            ["osaka", "tokyo"]
        );
        assert!(regional_locations("").is_empty());
        assert!(regional_locations("fine from local").is_empty());
        assert!(regional_locations("api is down").is_empty());
        assert!(regional_locations("failing from Osaka only (x)").is_empty());
    }
}
