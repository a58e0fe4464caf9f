//! Confirmation: turning a stream of raw check results into confirmed health changes.
//!
//! One failed check is not an outage. A source becomes *down* only after `confirmations`
//! consecutive failures, and *up* again only after `recoveries` consecutive successes, so a
//! single blip pages no one and a flapping target does not flood the signal stream.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Health;

/// One raw observation from a check or a poll.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub health: Health,
    pub reason: String,
    pub latency_ms: Option<u64>,
    pub at: DateTime<Utc>,
}

/// What Keel remembers about a source between checks; persisted so a restart does not
/// re-alert an outage that is already known.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracker {
    /// The confirmed health.
    pub health: Health,
    /// When the confirmed health last changed.
    pub since: DateTime<Utc>,
    /// Reason of the latest observation (kept fresh even without a change).
    pub reason: String,
    pub latency_ms: Option<u64>,
    pub last_checked: Option<DateTime<Utc>>,
    /// The health that consecutive disagreeing observations point to, if any.
    #[serde(default)]
    pub pending: Option<Health>,
    /// How many consecutive observations point to `pending`.
    pub streak: u32,
    /// When the current streak's first observation was made (not stored: a restart starts
    /// the streak's clock again).
    #[serde(default)]
    pub streak_since: Option<DateTime<Utc>>,
}

/// A confirmed change of health.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: Health,
    pub to: Health,
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl Tracker {
    /// A source that has not been observed yet.
    pub fn new(at: DateTime<Utc>) -> Self {
        Tracker {
            health: Health::Unknown,
            since: at,
            reason: "not checked yet".to_string(),
            latency_ms: None,
            last_checked: None,
            pending: None,
            streak: 0,
            streak_since: None,
        }
    }

    /// Whether a failure has been seen but not yet confirmed: the scheduler re-checks sooner.
    pub fn is_confirming(&self) -> bool {
        self.streak > 0
    }

    /// Feeds one observation; returns the transition when the confirmed health changes.
    ///
    /// `confirmations` consecutive failing observations are needed to enter a failing state,
    /// `recoveries` consecutive `Up` observations to leave it. An `Unknown` observation (the
    /// source could not be judged: a vendor page unreadable) is reported as it is at once —
    /// it never counts as a failure or a recovery, so it neither pages nor closes anything.
    pub fn observe(
        &mut self,
        obs: Observation,
        confirmations: u32,
        recoveries: u32,
    ) -> Option<Transition> {
        let confirmations = confirmations.max(1);
        let recoveries = recoveries.max(1);
        self.reason = obs.reason.clone();
        self.latency_ms = obs.latency_ms;
        self.last_checked = Some(obs.at);

        if obs.health == self.health {
            self.pending = None;
            self.streak = 0;
            self.streak_since = None;
            return None;
        }
        let needed = if obs.health.is_failing() && self.health.is_failing() {
            // Already confirmed failing, only the kind of failure changed: no new confirmation.
            1
        } else if obs.health.is_failing() {
            confirmations
        } else if obs.health == Health::Up {
            recoveries
        } else {
            1
        };
        // A streak counts towards one direction; a change of direction starts it again.
        let direction = |h: Health| if h.is_failing() { Health::Down } else { h };
        if self.pending.map(direction) != Some(direction(obs.health)) {
            self.streak = 0;
        }
        if self.streak == 0 {
            self.streak_since = Some(obs.at);
        }
        self.pending = Some(obs.health);
        self.streak += 1;
        if self.streak < needed {
            return None;
        }
        let from = self.health;
        self.health = obs.health;
        // The new health began with the streak's first observation, not with the one that
        // confirmed it: that is when the outage started, as far as Keel can tell, and what
        // time to detect is measured from.
        self.since = self.streak_since.take().unwrap_or(obs.at);
        self.pending = None;
        self.streak = 0;
        Some(Transition {
            from,
            to: obs.health,
            reason: obs.reason,
            at: obs.at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn obs(h: Health, s: i64) -> Observation {
        Observation {
            health: h,
            reason: format!("{h} at {s}"),
            latency_ms: Some(1),
            at: at(s),
        }
    }

    #[test]
    fn a_change_of_direction_restarts_the_streak() {
        let mut t = Tracker::new(at(0));
        t.observe(obs(Health::Up, 1), 3, 2);
        t.observe(obs(Health::Down, 2), 3, 2);
        t.observe(obs(Health::Down, 3), 3, 2);
        t.observe(obs(Health::Down, 4), 3, 2);
        assert_eq!(t.health, Health::Down);
        // One success, then a failure: the recovery streak is gone.
        assert_eq!(t.observe(obs(Health::Up, 5), 3, 2), None);
        assert_eq!(t.observe(obs(Health::Down, 6), 3, 2), None);
        assert_eq!(t.observe(obs(Health::Up, 7), 3, 2), None);
        assert_eq!(
            t.observe(obs(Health::Up, 8), 3, 2).map(|t| t.to),
            Some(Health::Up)
        );
    }

    #[test]
    fn first_success_confirms_up() {
        let mut t = Tracker::new(at(0));
        let tr = t.observe(obs(Health::Up, 1), 2, 1).unwrap();
        assert_eq!((tr.from, tr.to), (Health::Unknown, Health::Up));
    }

    #[test]
    fn one_blip_is_not_an_outage() {
        let mut t = Tracker::new(at(0));
        t.observe(obs(Health::Up, 1), 2, 1);
        assert_eq!(t.observe(obs(Health::Down, 2), 2, 1), None);
        assert!(t.is_confirming());
        assert_eq!(t.observe(obs(Health::Up, 3), 2, 1), None);
        assert!(!t.is_confirming());
        assert_eq!(t.health, Health::Up);
    }

    #[test]
    fn consecutive_failures_confirm_down_then_recoveries_confirm_up() {
        let mut t = Tracker::new(at(0));
        t.observe(obs(Health::Up, 1), 3, 1);
        assert_eq!(t.health, Health::Up);
        assert!(t.observe(obs(Health::Down, 2), 3, 2).is_none());
        assert!(t.observe(obs(Health::Down, 3), 3, 2).is_none());
        let tr = t.observe(obs(Health::Down, 4), 3, 2).unwrap();
        assert_eq!((tr.from, tr.to, tr.at), (Health::Up, Health::Down, at(4)));
        // Down since the first failing check, confirmed at the third.
        assert_eq!(t.since, at(2));
        assert!(t.observe(obs(Health::Up, 5), 3, 2).is_none());
        let tr = t.observe(obs(Health::Up, 6), 3, 2).unwrap();
        assert_eq!(tr.to, Health::Up);
        assert_eq!(t.since, at(5));
    }

    #[test]
    fn unknown_is_reported_at_once_and_is_neither_failure_nor_recovery() {
        let mut t = Tracker::new(at(0));
        t.observe(obs(Health::Up, 1), 2, 1);
        let tr = t.observe(obs(Health::Unknown, 2), 2, 2).unwrap();
        assert_eq!((tr.from, tr.to), (Health::Up, Health::Unknown));
        // Leaving unknown still needs the full confirmation either way.
        assert_eq!(t.observe(obs(Health::Down, 3), 2, 2), None);
        assert_eq!(
            t.observe(obs(Health::Down, 4), 2, 2).map(|t| t.to),
            Some(Health::Down)
        );
        t.observe(obs(Health::Unknown, 5), 2, 2);
        assert_eq!(t.observe(obs(Health::Up, 6), 2, 2), None);
        assert_eq!(
            t.observe(obs(Health::Up, 7), 2, 2).map(|t| t.to),
            Some(Health::Up)
        );
    }

    #[test]
    fn failure_kind_change_is_immediate_once_failing() {
        let mut t = Tracker::new(at(0));
        t.observe(obs(Health::Down, 1), 1, 1);
        let tr = t.observe(obs(Health::Degraded, 2), 5, 1).unwrap();
        assert_eq!(tr.to, Health::Degraded);
    }
}
