//! Test helpers for the incident modules: a small deterministic judge and an in-memory book
//! of incidents that applies plans and commands the way a store would.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration as Span, TimeZone, Utc};

use super::decide::{decide, Command, Refusal};
use super::engine::{correlate, Judge, Planned, Settings};
use super::model::{Actor, EventKind, IncidentEvent, IncidentId};
use super::state::{stamp, Incident};
use crate::assess::{
    Assessment, Cause, Criticality, Eta, Impact, NodeKind, Severity, SeverityDecision,
};
use crate::ids::NodeId;
use crate::Health;

/// Users per node; severity by share of all users; a runbook per node.
pub struct TestJudge {
    pub users: BTreeMap<String, u64>,
    pub runbooks: BTreeMap<String, Vec<String>>,
}

impl TestJudge {
    pub fn new() -> Self {
        let users = [
            ("db", 0),
            ("api", 6000),
            ("web", 4000),
            ("mail", 500),
            ("pay", 0),
        ];
        TestJudge {
            users: users.iter().map(|(n, u)| (n.to_string(), *u)).collect(),
            runbooks: [(
                "db".to_string(),
                vec![
                    "Check the primary".to_string(),
                    "Fail over to the replica".to_string(),
                    "Tell support".to_string(),
                ],
            )]
            .into_iter()
            .collect(),
        }
    }
}

impl Judge for TestJudge {
    /// A flat world: nothing depends on anything.
    fn with_dependents(&self, nodes: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
        nodes.clone()
    }

    fn impact(&self, impacted: &BTreeSet<NodeId>) -> Impact {
        let total: u64 = self.users.values().sum();
        let affected: u64 = impacted
            .iter()
            .filter_map(|n| self.users.get(n.as_str()))
            .sum();
        Impact {
            public_components: impacted.iter().cloned().collect(),
            impacted: impacted.iter().cloned().collect(),
            affected_users: affected,
            user_share: affected as f64 / total as f64,
            criticality: Criticality::Normal,
        }
    }

    fn severity(&self, impact: &Impact, _kind: NodeKind) -> SeverityDecision {
        let severity = match impact.user_share {
            s if s >= 0.5 => Severity::Sev1,
            s if s >= 0.2 => Severity::Sev2,
            s if s > 0.0 => Severity::Sev3,
            _ => Severity::Sev4,
        };
        SeverityDecision {
            severity,
            reason: format!("{:.0}% of users", impact.user_share * 100.0),
        }
    }

    fn eta(&self, cause: &Cause) -> Eta {
        match cause.kind {
            NodeKind::Vendor => Eta::Vendor {
                vendor: cause.node.to_string(),
                status: cause.reasons.join("; "),
            },
            _ => Eta::NoHistory,
        }
    }

    fn runbook(&self, node: &NodeId, _failure_kind: &str) -> Vec<String> {
        self.runbooks
            .get(node.as_str())
            .cloned()
            .unwrap_or_default()
    }

    fn title(&self, cause: &Cause) -> String {
        format!("{} is {}", cause.node, cause.health)
    }
}

pub fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Span::minutes(minute)
}

pub fn settings() -> Settings {
    Settings {
        stability_window: std::time::Duration::from_secs(5 * 60),
        recurrence_window: std::time::Duration::from_secs(60 * 60),
        canary_grace: std::time::Duration::ZERO,
    }
}

/// A node id for tests, which name only valid ones.
pub fn node(id: &str) -> NodeId {
    NodeId::parse(id).unwrap()
}

pub fn set(items: &[&str]) -> BTreeSet<NodeId> {
    items.iter().map(|s| node(s)).collect()
}

/// A down cause of kind `kind` at `node`, impacting `impacted`, failing since `since`.
pub fn cause(node: &str, kind: NodeKind, impacted: &[&str], since: DateTime<Utc>) -> Cause {
    Cause {
        node: self::node(node),
        kind,
        health: Health::Down,
        since,
        reasons: vec![format!("{node}-check: connection refused")],
        failure_kind: "tcp".to_string(),
        impacted: set(impacted),
        explained: BTreeSet::new(),
    }
}

pub fn seeing(causes: Vec<Cause>) -> Assessment {
    Assessment {
        causes,
        blind: None,
        canaries: None,
    }
}

/// Incidents and their timelines as a store would hold them.
#[derive(Default)]
pub struct Book {
    pub incidents: Vec<Incident>,
    pub events: BTreeMap<IncidentId, Vec<IncidentEvent>>,
}

impl Book {
    pub fn get(&self, id: impl Into<IncidentId>) -> &Incident {
        let id = id.into();
        self.incidents.iter().find(|i| i.id == id).unwrap()
    }

    /// Applies a plan at `now`; returns ids touched.
    pub fn apply(&mut self, plans: Vec<Planned>, now: DateTime<Utc>) -> Vec<IncidentId> {
        let mut touched = Vec::new();
        for plan in plans {
            match plan {
                Planned::Open { events } => {
                    let id = IncidentId(self.incidents.len() as i64 + 1);
                    let stamped = stamp(id, 1, now, events);
                    let inc = Incident::replay(&stamped).unwrap();
                    self.incidents.push(inc);
                    self.events.insert(id, stamped);
                    touched.push(id);
                }
                Planned::Append { incident, events } => {
                    self.append(incident, now, events);
                    touched.push(incident);
                }
            }
        }
        touched
    }

    pub fn append(&mut self, id: IncidentId, now: DateTime<Utc>, events: Vec<(Actor, EventKind)>) {
        let inc = self.incidents.iter_mut().find(|i| i.id == id).unwrap();
        for event in inc.stamp(now, events) {
            inc.apply(&event).unwrap();
            self.events.get_mut(&id).unwrap().push(event);
        }
    }

    /// One engine step: correlate and apply.
    pub fn run(&mut self, assessment: &Assessment, now: DateTime<Utc>) -> Vec<IncidentId> {
        let plans = correlate(
            &self.incidents,
            assessment,
            now,
            &settings(),
            &TestJudge::new(),
        );
        self.apply(plans, now)
    }

    pub fn command(
        &mut self,
        id: impl Into<IncidentId>,
        who: &str,
        cmd: Command,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let id = id.into();
        let kinds = decide(self.get(id), cmd)?;
        let actor = Actor::User(who.to_string());
        self.append(
            id,
            now,
            kinds.into_iter().map(|k| (actor.clone(), k)).collect(),
        );
        Ok(())
    }

    pub fn kinds(&self, id: impl Into<IncidentId>) -> Vec<&'static str> {
        self.events[&id.into()]
            .iter()
            .map(|e| e.kind.name())
            .collect()
    }
}
