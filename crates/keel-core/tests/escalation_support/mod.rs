//! Shared by the escalation tests: a roster over real schedules (`keel_core::oncall`), and
//! an incident driven through its timeline as the server would drive it.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use keel_core::assess::Severity;
use keel_core::config::{
    Contact, EscalationLevel, EscalationPolicy, PageTarget, Person, QuietHours, Schedule,
};
use keel_core::escalation::{plan, Roster};
use keel_core::incident::{
    Actor, EventKind, Incident, IncidentEvent, IncidentId, IncidentState, Origin,
};
use keel_core::oncall::{on_call, Override};
use keel_core::{Health, NodeId};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 1, 4, 5, 0, 0).unwrap()
}

pub fn mins(m: i64) -> chrono::Duration {
    chrono::Duration::minutes(m)
}

#[derive(Debug)]
pub struct TeamRoster {
    pub people: Vec<Person>,
    pub schedules: Vec<Schedule>,
    pub overrides: Vec<Override>,
}

impl Roster for TeamRoster {
    fn on_call(&self, schedule: &str, at: DateTime<Utc>) -> Option<String> {
        let s = self.schedules.iter().find(|s| s.id == schedule)?;
        on_call(s, &self.overrides, at).map(|o| o.person)
    }

    fn person(&self, id: &str) -> Option<&Person> {
        self.people.iter().find(|p| p.id == id)
    }
}

pub fn person(id: &str, name: &str, tz: chrono_tz::Tz, kinds: &[&str]) -> Person {
    Person {
        id: id.into(),
        name: name.into(),
        timezone: tz,
        locale: "en".into(),
        quiet_hours: None,
        contacts: kinds
            .iter()
            .map(|k| match *k {
                "email" => Contact::Email {
                    address: format!("{id}@example.com"),
                },
                "sms" => Contact::Sms {
                    number: "+819012345678".into(),
                },
                _ => Contact::Voice {
                    number: "+819012345678".into(),
                },
            })
            .collect(),
    }
}

pub fn quiet(p: &mut Person, from: &str, to: &str) {
    p.quiet_hours = Some(QuietHours {
        from: chrono::NaiveTime::parse_from_str(from, "%H:%M").unwrap(),
        to: chrono::NaiveTime::parse_from_str(to, "%H:%M").unwrap(),
    });
}

pub fn schedule(id: &str, people: &[&str], rotation: Duration) -> Schedule {
    Schedule {
        id: id.into(),
        name: id.into(),
        people: people.iter().map(|p| p.to_string()).collect(),
        rotation,
        start: DateTime::parse_from_rfc3339("2026-12-07T00:00:00+00:00").unwrap(),
        timezone: None,
    }
}

/// Ann and Bob take primary in turns of a day, Carol is the escalation; Dan has no contacts.
pub fn team() -> TeamRoster {
    TeamRoster {
        people: vec![
            person(
                "ann",
                "Ann Sato",
                chrono_tz::Tz::Asia__Tokyo,
                &["email", "sms"],
            ),
            person("bob", "Bob Brown", chrono_tz::Tz::UTC, &["email"]),
            person(
                "carol",
                "Carol Weber",
                chrono_tz::Tz::Europe__Berlin,
                &["email", "voice"],
            ),
            person("dan", "Dan", chrono_tz::Tz::UTC, &[]),
        ],
        schedules: vec![schedule(
            "primary",
            &["ann", "bob"],
            Duration::from_secs(86_400),
        )],
        overrides: Vec::new(),
    }
}

pub fn level(after_secs: u64, targets: &[&str]) -> EscalationLevel {
    EscalationLevel {
        after: Duration::from_secs(after_secs),
        notify: targets
            .iter()
            .map(|t| match t.split_once(':') {
                Some(("schedule", s)) => PageTarget::Schedule(s.into()),
                Some((_, p)) => PageTarget::Person(p.into()),
                None => PageTarget::Person(t.to_string()),
            })
            .collect(),
    }
}

pub fn policy(levels: Vec<EscalationLevel>, repeat: u32) -> EscalationPolicy {
    EscalationPolicy {
        id: "default".into(),
        components: Vec::new(),
        min_severity: Severity::Sev2,
        repeat,
        repeat_after: Duration::from_secs(300),
        renotify_after: Duration::from_secs(1800),
        levels,
    }
}

/// An incident and its stored timeline.
pub struct Sim {
    pub inc: Incident,
    pub events: Vec<IncidentEvent>,
}

impl Sim {
    /// Opened on `shop` at `at` with severity `sev` (as correlation does: both at once).
    pub fn open(at: DateTime<Utc>, sev: Severity) -> Sim {
        let opened = IncidentEvent {
            incident: IncidentId(1),
            seq: 1,
            at,
            actor: Actor::System,
            kind: EventKind::Opened {
                title: "Shop is down".into(),
                origin: Origin::Detected,
                cause: Some(NodeId::parse("shop").unwrap()),
                cause_kind: "component".into(),
                failure_kind: "http".into(),
                impacted: BTreeSet::from([NodeId::parse("shop").unwrap()]),
                affected_users: 100,
                reason: "HTTP 503".into(),
                failing_since: at,
            },
        };
        let mut sim = Sim {
            inc: Incident::open(&opened).unwrap(),
            events: vec![opened],
        };
        sim.apply(
            at,
            Actor::System,
            EventKind::SeverityChanged {
                from: None,
                to: sev,
                reason: "rule".into(),
            },
        );
        sim
    }

    pub fn apply(&mut self, at: DateTime<Utc>, actor: Actor, kind: EventKind) {
        self.try_apply(at, actor, kind).unwrap();
    }

    pub fn try_apply(
        &mut self,
        at: DateTime<Utc>,
        actor: Actor,
        kind: EventKind,
    ) -> Result<(), keel_core::incident::ReplayError> {
        let e = IncidentEvent {
            incident: IncidentId(1),
            seq: self.inc.last_seq + 1,
            at,
            actor,
            kind,
        };
        self.inc.apply(&e)?;
        self.events.push(e);
        Ok(())
    }

    /// Runs the engine at `now` and appends what it planned, each at its due time.
    pub fn run(
        &mut self,
        policy: &EscalationPolicy,
        roster: &TeamRoster,
        now: DateTime<Utc>,
    ) -> Vec<(DateTime<Utc>, EventKind)> {
        let planned = plan(&self.inc, policy, roster, now);
        for (at, kind) in &planned {
            self.apply(*at, Actor::System, kind.clone());
        }
        planned
    }

    pub fn set_severity(&mut self, at: DateTime<Utc>, to: Severity) {
        let from = self.inc.severity;
        self.apply(
            at,
            Actor::System,
            EventKind::SeverityChanged {
                from,
                to,
                reason: "rule".into(),
            },
        );
    }

    pub fn resolve(&mut self, at: DateTime<Utc>) {
        let from = self.inc.state;
        self.apply(
            at,
            Actor::System,
            EventKind::StateChanged {
                from,
                to: IncidentState::Resolved,
                reason: "stable".into(),
            },
        );
    }

    /// A relapse: `Reopened` (then investigating) when resolved, else `Relapsed`.
    pub fn relapse(&mut self, at: DateTime<Utc>) {
        if self.inc.state == IncidentState::Resolved {
            let n = self.inc.recurrences + 1;
            self.apply(
                at,
                Actor::System,
                EventKind::Reopened {
                    recurrences: n,
                    reason: "failing again".into(),
                },
            );
            if self.inc.state == IncidentState::Resolved {
                self.apply(
                    at,
                    Actor::System,
                    EventKind::StateChanged {
                        from: IncidentState::Resolved,
                        to: IncidentState::Investigating,
                        reason: "relapse".into(),
                    },
                );
            }
        } else {
            self.apply(
                at,
                Actor::System,
                EventKind::Relapsed {
                    health: Health::Down,
                    reason: "failing again".into(),
                },
            );
        }
    }
}
