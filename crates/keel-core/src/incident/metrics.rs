//! MTTD, MTTA and MTTR over a period: how fast the team detects, acknowledges and resolves,
//! per component or overall, computed from folded incidents.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::state::Incident;

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
    component: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Mttx {
    let chosen: Vec<&Incident> = incidents
        .iter()
        .filter(|i| i.started_at >= from && i.started_at < to)
        .filter(|i| {
            component.is_none_or(|c| i.impacted.contains(c) || i.cause.as_deref() == Some(c))
        })
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
