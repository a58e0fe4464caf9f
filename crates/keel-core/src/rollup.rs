//! Per-minute rollups of check results.
//!
//! Storage grows with state changes and rollups, never with every check: results are folded
//! into one row per monitor per minute (checks, failures, latency p50/p95/max), and uptime per
//! component per day is computed from those rows.

use crate::ids::NodeId;
use crate::source_key::SourceKey;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// One source's results within one minute (monitors and vendor polls; stored under
/// [`SourceKey::rollup_id`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinuteRollup {
    pub source: SourceKey,
    pub component: NodeId,
    /// Start of the minute (seconds and below are zero).
    pub minute: DateTime<Utc>,
    pub checks: u32,
    pub failures: u32,
    pub latency_p50_ms: u32,
    pub latency_p95_ms: u32,
    pub latency_max_ms: u32,
}

/// The start of the minute containing `at`.
pub fn minute_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at)
}

/// Collects one monitor's results for the current minute.
#[derive(Debug, Clone)]
pub struct RollupBuilder {
    source: SourceKey,
    component: NodeId,
    minute: DateTime<Utc>,
    latencies: Vec<u32>,
    failures: u32,
}

impl RollupBuilder {
    pub fn new(source: SourceKey, component: NodeId, at: DateTime<Utc>) -> Self {
        RollupBuilder {
            source,
            component,
            minute: minute_of(at),
            latencies: Vec::new(),
            failures: 0,
        }
    }

    /// Adds a result. When it falls in a later minute, the finished minute is returned.
    pub fn add(
        &mut self,
        at: DateTime<Utc>,
        latency_ms: u64,
        failed: bool,
    ) -> Option<MinuteRollup> {
        let minute = minute_of(at);
        let finished = if minute > self.minute {
            let done = self.take();
            self.minute = minute;
            done
        } else {
            None
        };
        self.latencies
            .push(latency_ms.min(u64::from(u32::MAX)) as u32);
        if failed {
            self.failures += 1;
        }
        finished
    }

    /// Start of the minute being collected.
    pub fn minute(&self) -> DateTime<Utc> {
        self.minute
    }

    /// Returns the minute collected so far (if any results) and starts an empty one.
    pub fn take(&mut self) -> Option<MinuteRollup> {
        if self.latencies.is_empty() {
            return None;
        }
        let mut l = std::mem::take(&mut self.latencies);
        l.sort_unstable();
        let pct = |p: usize| {
            l[((l.len() * p).div_ceil(100))
                .saturating_sub(1)
                .min(l.len() - 1)]
        };
        let r = MinuteRollup {
            source: self.source.clone(),
            component: self.component.clone(),
            minute: self.minute,
            checks: l.len() as u32,
            failures: self.failures,
            latency_p50_ms: pct(50),
            latency_p95_ms: pct(95),
            latency_max_ms: *l.last().unwrap_or(&0),
        };
        self.failures = 0;
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn folds_a_minute_and_reports_percentiles() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 5).unwrap();
        let mut b = RollupBuilder::new(
            SourceKey::monitor(crate::MonitorId::parse("m").unwrap()),
            NodeId::parse("c").unwrap(),
            t0,
        );
        for (i, ms) in (1..=20).enumerate() {
            assert!(b
                .add(t0 + TimeDelta::seconds(i as i64), ms, ms > 18)
                .is_none());
        }
        let r = b.add(t0 + TimeDelta::seconds(60), 5, false).unwrap();
        assert_eq!(
            r.minute,
            Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap()
        );
        assert_eq!((r.checks, r.failures), (20, 2));
        assert_eq!(
            (r.latency_p50_ms, r.latency_p95_ms, r.latency_max_ms),
            (10, 19, 20)
        );
        let r2 = b.take().unwrap();
        assert_eq!((r2.checks, r2.failures), (1, 0));
        assert!(b.take().is_none());
    }
}
