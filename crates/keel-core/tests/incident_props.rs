//! Property tests of the incident lifecycle: random sequences of health changes, blindness,
//! time passing, declarations and responder commands, driven through the real assessment
//! (`assess` over a small graph), `correlate` and `decide` as the server would, must never
//! reach an invalid incident, never leave two open incidents for one cause, never leave a
//! failing cause untracked, and always replay from the stored events to the very incident
//! that was built step by step.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use keel_core::assess::{
    assess, estimate_eta, fold_health, Cause, Criticality, Eta, Graph, Impact, Node, NodeKind,
    Severity, SeverityDecision, SourceHealth,
};
use keel_core::config::LocalizedText;
use keel_core::incident::{
    correlate_with_unknown, decide, declare, past_incidents, stamp, unknown_nodes, Actor, Command,
    EventKind, Incident, IncidentEvent, IncidentId, IncidentRole, IncidentState, Judge, Origin,
    Planned, Settings,
};
use keel_core::{Health, NodeId};
use proptest::prelude::*;

/// The graph: an infra node under a database under an API under a website; mail on the
/// network too; checkout needs the API and a vendor; a canary.
const NODES: &[(&str, NodeKind, u64, &[&str])] = &[
    ("net", NodeKind::Infra, 0, &[]),
    ("db", NodeKind::Component, 0, &["net"]),
    ("api", NodeKind::Component, 7000, &["db"]),
    ("web", NodeKind::Component, 8000, &["api"]),
    ("mail", NodeKind::Component, 1000, &["net"]),
    ("pay", NodeKind::Vendor, 0, &[]),
    ("checkout", NodeKind::Component, 4000, &["api", "pay"]),
    ("internet", NodeKind::Infra, 0, &[]),
];

fn graph() -> Graph {
    Graph::from_nodes(NODES.iter().map(|(id, kind, users, deps)| Node {
        id: NodeId::parse(*id).unwrap(),
        kind: *kind,
        name: LocalizedText::plain(id.to_uppercase()),
        users: *users,
        public: *users > 0,
        criticality: Criticality::Normal,
        depends_on: deps.iter().map(|d| NodeId::parse(*d).unwrap()).collect(),
        canary: *id == "internet",
    }))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap()
}

/// A judge over the graph: users by share, ETAs from the incidents' own history.
struct PropJudge<'a> {
    graph: &'a Graph,
    incidents: &'a [Incident],
}

impl Judge for PropJudge<'_> {
    fn with_dependents(&self, nodes: &BTreeSet<NodeId>) -> BTreeSet<NodeId> {
        let mut all = nodes.clone();
        for n in nodes {
            all.extend(self.graph.dependents_transitive(n));
        }
        all
    }

    fn impact(&self, impacted: &BTreeSet<NodeId>) -> Impact {
        let users: u64 = impacted
            .iter()
            .filter_map(|n| self.graph.node(n))
            .map(|n| n.users)
            .sum();
        Impact {
            public_components: Vec::new(),
            impacted: impacted.iter().cloned().collect(),
            affected_users: users,
            user_share: users as f64 / self.graph.total_users() as f64,
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
            reason: format!("{} users", impact.affected_users),
        }
    }

    fn eta(&self, cause: &Cause) -> Eta {
        match cause.kind {
            NodeKind::Vendor => Eta::Vendor {
                vendor: cause.node.to_string(),
                status: cause.reasons.join("; "),
            },
            _ => estimate_eta(
                &cause.node,
                &cause.failure_kind,
                &past_incidents(self.incidents),
            ),
        }
    }

    fn runbook(&self, node: &NodeId, failure_kind: &str) -> Vec<String> {
        match (node.as_str(), failure_kind) {
            ("db", _) => vec!["check disk".into(), "fail over".into()],
            (_, "vendor") => vec!["read their page".into()],
            ("net", _) => vec!["call the ISP".into(), "fail over".into()],
            _ => Vec::new(),
        }
    }

    fn title(&self, cause: &Cause) -> String {
        format!("{} is {}", cause.node, cause.health)
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// Node index, new health, and the reason's variant (a vendor's words change).
    Health(usize, Health, u8),
    Advance(i64),
    Act(usize, Command),
    Declare(Vec<usize>),
}

fn health() -> impl Strategy<Value = Health> {
    prop_oneof![
        3 => Just(Health::Down),
        1 => Just(Health::Degraded),
        4 => Just(Health::Up),
        1 => Just(Health::Unknown),
    ]
}

fn state() -> impl Strategy<Value = IncidentState> {
    prop_oneof![
        Just(IncidentState::Investigating),
        Just(IncidentState::Identified),
        Just(IncidentState::Monitoring),
        Just(IncidentState::Resolved),
    ]
}

fn severity() -> impl Strategy<Value = Severity> {
    prop_oneof![
        Just(Severity::Sev1),
        Just(Severity::Sev2),
        Just(Severity::Sev3),
        Just(Severity::Sev4),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), Just("  ".to_string()), "[a-z ]{1,12}"]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        Just(Command::Acknowledge { via: None }),
        text().prop_map(|text| Command::Note { text }),
        (
            prop_oneof![
                Just(IncidentRole::Commander),
                Just(IncidentRole::Communications)
            ],
            text()
        )
            .prop_map(|(role, person)| Command::AssignRole { role, person }),
        (0usize..4).prop_map(|step| Command::TickStep { step }),
        (state(), text()).prop_map(|(to, reason)| Command::ChangeState { to, reason }),
        text().prop_map(|reason| Command::Resolve { reason }),
        (text(), proptest::option::of(text()))
            .prop_map(|(text, owner)| Command::AddActionItem { text, owner }),
        (0u32..3).prop_map(|item| Command::CloseActionItem { item }),
        text().prop_map(|text| Command::SetRootCause { text }),
        (severity(), text())
            .prop_map(|(severity, reason)| Command::SetSeverity { severity, reason }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..NODES.len(), health(), 0u8..2).prop_map(|(n, h, r)| Op::Health(n, h, r)),
        4 => (0i64..12).prop_map(Op::Advance),
        3 => (0usize..8, command()).prop_map(|(i, c)| Op::Act(i, c)),
        1 => proptest::collection::vec(0..NODES.len(), 0..3).prop_map(Op::Declare),
    ]
}

/// Sources, time, and the incidents with their timelines.
struct World {
    graph: Graph,
    settings: Settings,
    now: DateTime<Utc>,
    sources: BTreeMap<String, SourceHealth>,
    incidents: Vec<Incident>,
    events: BTreeMap<IncidentId, Vec<IncidentEvent>>,
}

impl World {
    fn new() -> Self {
        World {
            graph: graph(),
            settings: Settings {
                stability_window: std::time::Duration::from_secs(5 * 60),
                recurrence_window: std::time::Duration::from_secs(30 * 60),
                canary_grace: std::time::Duration::ZERO,
            },
            now: t0(),
            sources: BTreeMap::new(),
            incidents: Vec::new(),
            events: BTreeMap::new(),
        }
    }

    fn set_health(&mut self, node: usize, health: Health, variant: u8) {
        let (id, kind, _, _) = NODES[node];
        let label = if kind == NodeKind::Vendor {
            "vendor"
        } else {
            "tcp"
        };
        let reason = format!("{id} {health} #{variant}");
        let since = match self.sources.get(id) {
            Some(s) if s.health == health => s.since,
            _ => self.now,
        };
        self.sources.insert(
            id.to_string(),
            SourceHealth {
                source: keel_core::SourceKey::parse(
                    keel_core::SourceKind::Monitor,
                    &format!("{id}-check"),
                )
                .unwrap(),
                label: label.to_string(),
                node: NodeId::parse(id).unwrap(),
                health,
                since,
                reason,
            },
        );
    }

    fn plan(&self) -> Vec<Planned> {
        let sources: Vec<SourceHealth> = self.sources.values().cloned().collect();
        let health = fold_health(&sources);
        let judge = PropJudge {
            graph: &self.graph,
            incidents: &self.incidents,
        };
        correlate_with_unknown(
            &self.incidents,
            &assess(&self.graph, &health),
            &unknown_nodes(&health),
            self.now,
            &self.settings,
            &judge,
        )
    }

    fn engine(&mut self) -> Result<(), TestCaseError> {
        let plans = self.plan();
        for plan in plans {
            match plan {
                Planned::Open { events } => self.open(events)?,
                Planned::Append { incident, events } => self.append(incident, events)?,
            }
        }
        let again = self.plan();
        prop_assert!(again.is_empty(), "not idempotent: {again:?}");
        Ok(())
    }

    fn open(&mut self, events: Vec<(Actor, EventKind)>) -> Result<(), TestCaseError> {
        let id = IncidentId(self.incidents.len() as i64 + 1);
        let stamped = stamp(id, 1, self.now, events);
        let inc = Incident::replay(&stamped).map_err(|e| TestCaseError::fail(e.to_string()))?;
        self.incidents.push(inc);
        self.events.insert(id, stamped);
        Ok(())
    }

    fn append(
        &mut self,
        id: IncidentId,
        events: Vec<(Actor, EventKind)>,
    ) -> Result<(), TestCaseError> {
        let now = self.now;
        let inc = self
            .incidents
            .iter_mut()
            .find(|i| i.id == id)
            .ok_or_else(|| TestCaseError::fail(format!("no incident {id}")))?;
        for event in inc.stamp(now, events) {
            inc.apply(&event)
                .map_err(|e| TestCaseError::fail(format!("{e}: {event:?}")))?;
            self.events.entry(id).or_default().push(event);
        }
        Ok(())
    }

    fn act(&mut self, index: usize, cmd: Command) -> Result<(), TestCaseError> {
        if self.incidents.is_empty() {
            return Ok(());
        }
        let inc = &self.incidents[index % self.incidents.len()];
        let id = inc.id;
        match decide(inc, cmd) {
            Ok(kinds) => {
                let actor = Actor::User("responder".into());
                self.append(id, kinds.into_iter().map(|k| (actor.clone(), k)).collect())
            }
            Err(refusal) => {
                prop_assert!(!refusal.field.is_empty() && !refusal.reason.is_empty());
                Ok(())
            }
        }
    }

    fn declare(&mut self, nodes: &[usize]) -> Result<(), TestCaseError> {
        let components: BTreeSet<NodeId> = nodes
            .iter()
            .map(|n| NodeId::parse(NODES[*n].0).unwrap())
            .collect();
        let judge = PropJudge {
            graph: &self.graph,
            incidents: &self.incidents,
        };
        let events = declare(
            "by hand",
            &components,
            &judge,
            self.now,
            Actor::User("r".into()),
        )
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
        self.open(events)
    }

    fn check(&self) -> Result<(), TestCaseError> {
        for inc in &self.incidents {
            let events = &self.events[&inc.id];
            // Contiguous seqs from 1, in time order.
            for (i, e) in events.iter().enumerate() {
                prop_assert_eq!(e.seq as usize, i + 1);
                prop_assert_eq!(e.incident, inc.id);
            }
            prop_assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
            prop_assert_eq!(inc.last_seq as usize, events.len());
            // Replaying the stored events gives the incident built step by step.
            let replayed =
                Incident::replay(events).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&replayed, inc);
            // State invariants.
            prop_assert_eq!(
                inc.resolved_at.is_some(),
                inc.state == IncidentState::Resolved
            );
            prop_assert_eq!(
                inc.monitoring_since.is_some(),
                inc.state == IncidentState::Monitoring
            );
            if inc.state == IncidentState::Monitoring {
                prop_assert!(inc.mitigated_at.is_some());
            }
            prop_assert_eq!(
                inc.accruing_since.is_some(),
                matches!(
                    inc.state,
                    IncidentState::Investigating | IncidentState::Identified
                )
            );
            let reopened = events
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Reopened { .. }))
                .count();
            prop_assert_eq!(inc.recurrences as usize, reopened);
            prop_assert_eq!(inc.recurring, reopened > 0);
            prop_assert!(inc.severity.is_some());
            prop_assert!(inc
                .checklist
                .iter()
                .all(|s| s.done_at.is_some() == s.done_by.is_some()));
            for (i, item) in inc.action_items.iter().enumerate() {
                prop_assert_eq!(item.id as usize, i + 1);
            }
            match inc.origin {
                Origin::Detected => prop_assert!(inc.cause.is_some()),
                Origin::Declared => {
                    prop_assert_eq!(&inc.cause, &None);
                    // Keel writes only the opening of a declared incident; the rest is people.
                    let opening_at = events[0].at;
                    prop_assert!(events
                        .iter()
                        .skip(1)
                        .all(|e| matches!(e.actor, Actor::User(_)) || e.at == opening_at));
                }
            }
        }
        // One open incident per cause.
        let mut open_causes = BTreeSet::new();
        for inc in self
            .incidents
            .iter()
            .filter(|i| i.is_detected() && !i.is_resolved())
        {
            let cause = inc
                .cause
                .as_ref()
                .map(NodeId::to_string)
                .unwrap_or_default();
            prop_assert!(
                open_causes.insert(cause.clone()),
                "two open incidents for {}",
                cause
            );
        }
        // No failing cause goes untracked (unless Keel is blind, or a responder resolved
        // its incident while this failure was going on).
        let sources: Vec<SourceHealth> = self.sources.values().cloned().collect();
        let assessment = assess(&self.graph, &fold_health(&sources));
        if assessment.blind.is_none() {
            for cause in &assessment.causes {
                let tracked = self.incidents.iter().any(|i| {
                    i.is_detected()
                        && ((!i.is_resolved()
                            && (i.cause.as_ref() == Some(&cause.node)
                                || i.impacted.contains(&cause.node)))
                            || (i.is_resolved()
                                && i.cause.as_ref() == Some(&cause.node)
                                && i.recovered_at.is_none()
                                && i.resolved_at.is_some_and(|at| cause.since <= at)))
                });
                prop_assert!(tracked, "{} fails untracked", cause.node);
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn random_outages_and_responders_never_break_an_incident(ops in proptest::collection::vec(op(), 1..60)) {
        let mut w = World::new();
        for op in ops {
            match op {
                Op::Health(node, health, variant) => w.set_health(node, health, variant),
                Op::Advance(minutes) => w.now += Duration::minutes(minutes),
                Op::Act(index, cmd) => w.act(index, cmd)?,
                Op::Declare(nodes) => w.declare(&nodes)?,
            }
            w.engine()?;
            w.check()?;
        }
    }

    /// Whatever happened, once every source is green (and Keel can see) and enough time
    /// passes, every detected incident Keel moved itself ends resolved — unless a
    /// responder holds it in investigating or identified.
    #[test]
    fn green_long_enough_resolves_what_responders_do_not_hold(ops in proptest::collection::vec(op(), 1..40)) {
        let mut w = World::new();
        for op in ops {
            match op {
                Op::Health(node, health, variant) => w.set_health(node, health, variant),
                Op::Advance(minutes) => w.now += Duration::minutes(minutes),
                Op::Act(index, cmd) => w.act(index, cmd)?,
                Op::Declare(nodes) => w.declare(&nodes)?,
            }
            w.engine()?;
        }
        for node in 0..NODES.len() {
            w.set_health(node, Health::Up, 0);
        }
        for _ in 0..3 {
            w.engine()?;
            w.now += Duration::minutes(6);
        }
        w.engine()?;
        w.check()?;
        for inc in w.incidents.iter().filter(|i| i.is_detected()) {
            let held = matches!(inc.state, IncidentState::Investigating | IncidentState::Identified)
                && w.events[&inc.id].iter().any(|e| matches!(e.actor, Actor::User(_)));
            prop_assert!(
                inc.is_resolved() || held,
                "incident {} is {} with everything green",
                inc.id,
                inc.state
            );
        }
    }
}
