//! MTTD, MTTA and MTTR over a period: how fast the team detects, acknowledges and resolves,
//! per component or overall, computed from folded incidents.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::state::Incident;
use crate::ids::NodeId;

/// Mean times, in seconds, over the incidents that have the moment in question.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mttx {
    /// Incidents started in the period (impacting the component, when one is given).
    pub count: usize,
    /// Mean time to detect: from the cause failing to the incident opening, over detected
    /// incidents (a declared incident has no detection to measure).
    pub mttd_secs: Option<f64>,
    /// Mean time to acknowledge, over acknowledged incidents.
    pub mtta_secs: Option<f64>,
    /// Mean time to resolve, from opening to resolution, over resolved incidents.
    pub mttr_secs: Option<f64>,
}

/// Mean times over incidents started in `[from, to)` that impacted `component` (or were
/// caused by it), or over all of them when `component` is `None`.
pub fn mttx(
    incidents: &[Incident],
    component: Option<&NodeId>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Mttx {
    let chosen: Vec<&Incident> = incidents
        .iter()
        .filter(|i| i.started_at >= from && i.started_at < to)
        .filter(|i| component.is_none_or(|c| i.impacted.contains(c) || i.cause.as_ref() == Some(c)))
        .collect();
    let mttd = mean(
        chosen
            .iter()
            .filter(|i| i.is_detected())
            .map(|i| secs(i.failing_since, i.started_at)),
    );
    let mtta = mean(
        chosen
            .iter()
            .filter_map(|i| i.acknowledged_at.map(|at| secs(i.started_at, at))),
    );
    let mttr = mean(
        chosen
            .iter()
            .filter_map(|i| i.resolved_at.map(|at| secs(i.started_at, at))),
    );
    Mttx {
        count: chosen.len(),
        mttd_secs: mttd,
        mtta_secs: mtta,
        mttr_secs: mttr,
    }
}

/// Seconds from `a` to `b`, never negative (a probe's clock slightly ahead is not a
/// negative detection time).
fn secs(a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
    ((b - a).num_milliseconds().max(0) as f64) / 1000.0
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0u32), |(sum, n), v| (sum + v, n + 1));
    (n > 0).then(|| sum / f64::from(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::assess::NodeKind;
    use crate::incident::decide::Command;
    use crate::incident::testkit::{cause, node, seeing, set, t, Book, TestJudge};
    use crate::incident::{declare, Actor, Planned};

    /// Incident 1: db (impacts api) failing at 0, opened at 1, acknowledged at 3, resolved
    /// at 11 (green at 6, stable 5m). Incident 2: mail failing at 100, opened at 104, never
    /// acknowledged nor resolved. Incident 3: declared on web at 200, acknowledged at 210.
    fn book() -> Book {
        let mut book = Book::default();
        book.run(
            &seeing(vec![cause("db", NodeKind::Component, &["db", "api"], t(0))]),
            t(1),
        );
        book.command(1, "a", Command::Acknowledge { via: None }, t(3))
            .unwrap();
        book.run(&seeing(vec![]), t(6));
        book.run(&seeing(vec![]), t(11));
        book.run(
            &seeing(vec![cause("mail", NodeKind::Component, &["mail"], t(100))]),
            t(104),
        );
        let events = declare(
            "Power cut",
            &set(&["web"]),
            &TestJudge::new(),
            t(200),
            Actor::User("a".into()),
        )
        .unwrap();
        book.apply(vec![Planned::Open { events }], t(200));
        book.command(3, "a", Command::Acknowledge { via: None }, t(210))
            .unwrap();
        book
    }

    #[test]
    fn means_are_taken_over_incidents_that_have_the_moment() {
        let book = book();
        let m = mttx(&book.incidents, None, t(0), t(1000));
        assert_eq!(
            m,
            Mttx {
                count: 3,
                // Detected only: (60 + 240) / 2; the declared one has no detection.
                mttd_secs: Some(150.0),
                // (120 + 600) / 2.
                mtta_secs: Some(360.0),
                mttr_secs: Some(600.0),
            }
        );
    }

    #[test]
    fn a_component_counts_incidents_that_impacted_it() {
        let book = book();
        let api = mttx(&book.incidents, Some(&node("api")), t(0), t(1000));
        assert_eq!(api.count, 1);
        assert_eq!(api.mttr_secs, Some(600.0));
        let web = mttx(&book.incidents, Some(&node("web")), t(0), t(1000));
        assert_eq!(
            web,
            Mttx {
                count: 1,
                mttd_secs: None,
                mtta_secs: Some(600.0),
                mttr_secs: None
            }
        );
        let nothing = mttx(&book.incidents, Some(&node("nope")), t(0), t(1000));
        assert_eq!(nothing.count, 0);
        assert_eq!(nothing.mttd_secs, None);
    }

    #[test]
    fn the_period_is_half_open_on_the_start_time() {
        let book = book();
        assert_eq!(mttx(&book.incidents, None, t(1), t(104)).count, 1);
        assert_eq!(mttx(&book.incidents, None, t(2), t(105)).count, 1);
        assert_eq!(mttx(&book.incidents, None, t(104), t(200)).count, 1);
        assert_eq!(mttx(&book.incidents, None, t(300), t(400)).count, 0);
    }
}
