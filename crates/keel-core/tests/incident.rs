//! Incidents as the server drives them: a config parsed from TOML, the latest health of every
//! source folded into node health, the assessment, and `correlate` with the config's judge —
//! walked through outages minute by minute, with responders acting in between. Every engine
//! step is checked to be idempotent, and every incident to replay from its stored events.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, TimeZone, Utc};
use keel_core::assess::{assess, fold_health, Assessment, Eta, Graph, Severity, SourceHealth};
use keel_core::config::{parse, Config};
use keel_core::incident::{
    correlate_with_unknown, decide, declare, next_canary_hold, past_incidents, postmortem, stamp,
    unknown_nodes, Actor, Command, ConfigJudge, EventKind, Incident, IncidentEvent, IncidentId,
    IncidentRole, IncidentState, Origin, Planned, Settings,
};
use keel_core::{Health, NodeId};

const SHOP: &str = r#"
[incidents]
stability_window = "5m"
recurrence_window = "1h"

[[component]]
id = "web"
name = "Website"
users = 8000
depends_on = ["api"]

[[component]]
id = "api"
name = "Public API"
users = 7000
depends_on = ["db"]
criticality = "high"

[[component]]
id = "db"
name = "Database"
public = false
criticality = "critical"

[[component]]
id = "mail"
name = "Mail"
users = 1000

[[component]]
id = "checkout"
name = "Checkout"
users = 4000
depends_on = ["payments", "api"]

[[vendor]]
id = "payments"
name = "Payments provider"
status_url = "https://status.example-vendor.com/api/v2/summary.json"

[[infra]]
id = "internet"
canary = true

[[monitor]]
id = "db-port"
component = "db"
kind = "tcp"
host = "127.0.0.1"
port = 5432

[[monitor]]
id = "api-health"
component = "api"
kind = "http"
url = "http://127.0.0.1:9000/health"

[[runbook]]
id = "db-tcp"
component = "db"
failure_kind = "tcp"
steps = ["Check the primary's disk and logs", "Fail over to the replica", "Post an update"]

[[runbook]]
id = "vendors"
failure_kind = "vendor"
steps = ["Read the vendor's status page", "Switch checkout to the backup provider"]

[[runbook]]
id = "declared"
failure_kind = "manual"
steps = ["Name a commander", "Post a first update"]
"#;

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap() + Duration::minutes(minute)
}

/// The key of a source named `source`, of the kind its check `label` says.
fn source_key(source: &str, label: &str) -> keel_core::SourceKey {
    use keel_core::SourceKind;
    let kind = match label {
        "vendor" => SourceKind::Vendor,
        "alertmanager" | "generic" => SourceKind::Intake,
        _ => SourceKind::Monitor,
    };
    keel_core::SourceKey::parse(kind, source).unwrap()
}

fn set(items: &[&str]) -> BTreeSet<NodeId> {
    items.iter().map(|s| NodeId::parse(*s).unwrap()).collect()
}

/// The shop, its sources and its incidents, as the server would hold them.
struct World {
    config: Config,
    graph: Graph,
    sources: BTreeMap<String, SourceHealth>,
    incidents: Vec<Incident>,
    events: BTreeMap<IncidentId, Vec<IncidentEvent>>,
}

impl World {
    fn new() -> Self {
        Self::with(SHOP)
    }

    fn with(text: &str) -> Self {
        let config = parse(text, "keel.toml", &[]).expect("the shop config parses");
        let graph = Graph::from_config(&config);
        World {
            config,
            graph,
            sources: BTreeMap::new(),
            incidents: Vec::new(),
            events: BTreeMap::new(),
        }
    }

    /// A source of `node` reports `health` from minute `at` on.
    fn source(
        &mut self,
        source: &str,
        node: &str,
        label: &str,
        health: Health,
        reason: &str,
        at: i64,
    ) {
        self.sources.insert(
            source.to_string(),
            SourceHealth {
                source: source_key(source, label),
                label: label.to_string(),
                node: NodeId::parse(node).unwrap(),
                health,
                since: t(at),
                reason: reason.to_string(),
            },
        );
    }

    fn db_dies(&mut self, at: i64) {
        self.source(
            "db-port",
            "db",
            "tcp",
            Health::Down,
            "connection refused",
            at,
        );
    }

    fn db_back(&mut self, at: i64) {
        self.source("db-port", "db", "tcp", Health::Up, "connected in 1 ms", at);
    }

    fn api_fails(&mut self, at: i64) {
        self.source("api-health", "api", "http", Health::Down, "HTTP 503", at);
    }

    fn api_back(&mut self, at: i64) {
        self.source("api-health", "api", "http", Health::Up, "HTTP 200", at);
    }

    fn settings(&self) -> Settings {
        Settings::from(&self.config.incidents)
    }

    fn assessment(&self) -> Assessment {
        let sources: Vec<SourceHealth> = self.sources.values().cloned().collect();
        assess(&self.graph, &fold_health(&sources))
    }

    fn plan(&self, now: DateTime<Utc>) -> Vec<Planned> {
        let sources: Vec<SourceHealth> = self.sources.values().cloned().collect();
        let health = fold_health(&sources);
        let assessment = assess(&self.graph, &health);
        let history = past_incidents(&self.incidents);
        let judge = ConfigJudge {
            config: &self.config,
            graph: &self.graph,
            history: &history,
        };
        correlate_with_unknown(
            &self.incidents,
            &assessment,
            &unknown_nodes(&health),
            now,
            &self.settings(),
            &judge,
        )
    }

    /// One engine step at minute `minute`: plan, store, fold; then the same step again must
    /// plan nothing. Returns the ids it touched, as numbers.
    fn tick(&mut self, minute: i64) -> Vec<i64> {
        let now = t(minute);
        let plans = self.plan(now);
        let touched = self.apply(plans, now);
        assert_eq!(
            self.plan(now),
            Vec::new(),
            "a second step at minute {minute} planned more"
        );
        touched.into_iter().map(IncidentId::get).collect()
    }

    fn apply(&mut self, plans: Vec<Planned>, now: DateTime<Utc>) -> Vec<IncidentId> {
        let mut touched = Vec::new();
        for plan in plans {
            match plan {
                Planned::Open { events } => {
                    let id = IncidentId(self.incidents.len() as i64 + 1);
                    let stamped = stamp(id, 1, now, events);
                    self.incidents
                        .push(Incident::replay(&stamped).expect("valid opening"));
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

    fn append(&mut self, id: IncidentId, now: DateTime<Utc>, events: Vec<(Actor, EventKind)>) {
        let inc = self
            .incidents
            .iter_mut()
            .find(|i| i.id == id)
            .expect("known incident");
        for event in inc.stamp(now, events) {
            inc.apply(&event).expect("valid event");
            self.events.get_mut(&id).expect("timeline").push(event);
        }
        // What was built step by step is what the stored events say.
        assert_eq!(Incident::replay(&self.events[&id]).as_ref(), Ok(&*inc));
    }

    fn act(&mut self, id: i64, who: &str, cmd: Command, minute: i64) {
        let id = IncidentId(id);
        let kinds = decide(self.get(id.get()), cmd).expect("the command is accepted");
        let actor = Actor::User(who.to_string());
        self.append(
            id,
            t(minute),
            kinds.into_iter().map(|k| (actor.clone(), k)).collect(),
        );
    }

    fn get(&self, id: i64) -> &Incident {
        self.incidents
            .iter()
            .find(|i| i.id == IncidentId(id))
            .expect("known incident")
    }

    fn kinds(&self, id: i64) -> Vec<&'static str> {
        self.events[&IncidentId(id)]
            .iter()
            .map(|e| e.kind.name())
            .collect()
    }

    fn last(&self, id: i64) -> &EventKind {
        &self.events[&IncidentId(id)].last().expect("events").kind
    }
}

#[test]
fn a_database_dies_and_exactly_one_incident_opens() {
    let mut w = World::new();
    w.db_dies(0);
    w.api_fails(0);
    w.source("web-home", "web", "http", Health::Down, "HTTP 502", 0);
    assert_eq!(w.tick(1), vec![1]);
    assert_eq!(
        w.incidents.len(),
        1,
        "dependents failing too are explained, not reported"
    );
    let inc = w.get(1);
    assert_eq!(inc.title, "Database is down");
    assert_eq!(inc.origin, Origin::Detected);
    assert_eq!(inc.cause.as_ref().map(NodeId::as_str), Some("db"));
    assert_eq!(inc.cause_kind, "component");
    assert_eq!(inc.failure_kind, "tcp");
    assert_eq!(inc.impacted, set(&["api", "checkout", "db", "web"]));
    assert_eq!(inc.affected_users, 19_000);
    assert_eq!(inc.severity, Some(Severity::Sev1));
    assert_eq!(
        inc.severity_reason.as_deref(),
        Some("95% of users affected (SEV1 from 50%)")
    );
    assert_eq!(inc.eta, Some(Eta::NoHistory));
    let steps: Vec<&str> = inc.checklist.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(
        steps,
        [
            "Check the primary's disk and logs",
            "Fail over to the replica",
            "Post an update"
        ]
    );
    assert_eq!(inc.state, IncidentState::Investigating);
    assert_eq!((inc.failing_since, inc.started_at), (t(0), t(1)));
    assert_eq!(inc.opened_reason, "db-port: connection refused");
    assert_eq!(
        w.kinds(1),
        ["opened", "severity_changed", "eta_changed", "checklist"]
    );
    // Minutes pass with nothing new: nothing is written.
    for minute in 2..10 {
        assert_eq!(w.tick(minute), Vec::<i64>::new());
    }
}

#[test]
fn the_api_failing_first_then_its_database_is_still_one_incident() {
    let mut w = World::new();
    w.api_fails(0);
    w.tick(1);
    let inc = w.get(1);
    assert_eq!(inc.title, "Public API is down");
    assert_eq!(inc.impacted, set(&["api", "checkout", "web"]));
    // The database's check confirms a minute later: the incident widens to it.
    w.db_dies(1);
    w.tick(2);
    assert_eq!(w.incidents.len(), 1);
    let inc = w.get(1);
    assert_eq!(inc.cause.as_ref().map(NodeId::as_str), Some("db"));
    assert_eq!(inc.title, "Database is down");
    assert_eq!(inc.impacted, set(&["api", "checkout", "db", "web"]));
    assert_eq!(inc.checklist.len(), 3);
    assert_eq!(
        w.kinds(1)[3..],
        ["cause_changed", "impact_changed", "checklist"]
    );
    // The database comes back before the API's checks do: still one incident, not green.
    w.db_back(5);
    w.tick(5);
    assert_eq!(w.incidents.len(), 1);
    assert_eq!(w.get(1).state, IncidentState::Investigating);
    w.api_back(6);
    w.tick(6);
    assert_eq!(w.get(1).state, IncidentState::Monitoring);
}

#[test]
fn two_unrelated_failures_open_two_incidents() {
    let mut w = World::new();
    w.db_dies(0);
    w.source(
        "mail-smtp",
        "mail",
        "tcp",
        Health::Down,
        "connection timed out",
        0,
    );
    assert_eq!(w.tick(1), vec![1, 2]);
    assert_eq!(w.get(1).cause.as_ref().map(NodeId::as_str), Some("db"));
    let mail = w.get(2);
    assert_eq!(mail.cause.as_ref().map(NodeId::as_str), Some("mail"));
    assert_eq!(mail.affected_users, 1000);
    assert_eq!(mail.severity, Some(Severity::Sev3));
    assert!(mail.checklist.is_empty(), "no runbook for mail");
    // One recovers, the other goes on.
    w.source("mail-smtp", "mail", "tcp", Health::Up, "connected", 3);
    w.tick(3);
    assert_eq!(w.get(2).state, IncidentState::Monitoring);
    assert_eq!(w.get(1).state, IncidentState::Investigating);
}

#[test]
fn recovery_goes_to_monitoring_and_resolves_after_the_stability_window() {
    let mut w = World::new();
    w.db_dies(0);
    w.tick(1);
    w.db_back(10);
    w.tick(10);
    let inc = w.get(1);
    assert_eq!(inc.state, IncidentState::Monitoring);
    assert_eq!(inc.mitigated_at, Some(t(10)));
    assert_eq!(
        w.last(1),
        &EventKind::StateChanged {
            from: IncidentState::Investigating,
            to: IncidentState::Monitoring,
            reason: "every signal recovered".into()
        }
    );
    w.tick(12);
    w.tick(14);
    assert_eq!(w.get(1).state, IncidentState::Monitoring);
    w.tick(15);
    let inc = w.get(1);
    assert_eq!(inc.state, IncidentState::Resolved);
    assert_eq!(inc.resolved_at, Some(t(15)));
    assert_eq!(
        w.last(1),
        &EventKind::StateChanged {
            from: IncidentState::Monitoring,
            to: IncidentState::Resolved,
            reason: "stable for 5m".into()
        }
    );
    // 19,000 users for the 9 minutes before monitoring.
    assert_eq!(inc.user_minutes(t(100)), 19_000 * 9);
}

#[test]
fn a_relapse_during_monitoring_returns_to_investigating() {
    let mut w = World::new();
    w.db_dies(0);
    w.tick(1);
    w.db_back(10);
    w.tick(10);
    w.db_dies(12);
    w.tick(12);
    let inc = w.get(1);
    assert_eq!(inc.state, IncidentState::Investigating);
    assert!(!inc.recurring);
    let EventKind::StateChanged { reason, .. } = w.last(1) else {
        panic!("expected a state change, got {:?}", w.last(1));
    };
    assert_eq!(
        reason,
        "relapse: db is down again: db-port: connection refused"
    );
    // User-minutes resume while it is down again.
    assert_eq!(w.get(1).user_minutes(t(14)), 19_000 * (9 + 2));
}

#[test]
fn a_relapse_after_resolution_reopens_within_the_window_and_opens_anew_beyond_it() {
    let mut w = World::new();
    w.db_dies(0);
    w.tick(1);
    w.db_back(10);
    w.tick(10);
    w.tick(15);
    assert_eq!(w.get(1).state, IncidentState::Resolved);

    // 30 minutes later: within the hour, the same incident comes back, recurring.
    w.db_dies(45);
    w.tick(45);
    assert_eq!(w.incidents.len(), 1);
    let inc = w.get(1);
    assert!(inc.recurring);
    assert_eq!(inc.recurrences, 1);
    assert_eq!(inc.state, IncidentState::Investigating);
    assert_eq!(inc.resolved_at, None);
    let reopened = w.events[&IncidentId(1)]
        .iter()
        .map(|e| &e.kind)
        .find(|k| matches!(k, EventKind::Reopened { .. }))
        .expect("a reopening");
    assert_eq!(
        reopened,
        &EventKind::Reopened {
            recurrences: 1,
            reason: "db is down again 30m after it was resolved: db-port: connection refused"
                .into()
        }
    );
    // Its own first occurrence is now history: 9 minutes from opening to recovery.
    assert_eq!(
        w.get(1).eta,
        Some(Eta::History {
            samples: 1,
            p50_minutes: 9,
            p90_minutes: 9
        })
    );
    w.db_back(50);
    w.tick(50);
    w.tick(55);
    assert_eq!(w.get(1).state, IncidentState::Resolved);

    // Two hours later: a new incident, whose ETA rests on the first one (9 minutes from
    // opening to first recovery).
    w.db_dies(175);
    w.tick(175);
    assert_eq!(w.incidents.len(), 2);
    let second = w.get(2);
    assert!(!second.recurring);
    assert_eq!(
        second.eta,
        Some(Eta::History {
            samples: 1,
            p50_minutes: 9,
            p90_minutes: 9
        })
    );
}

#[test]
fn when_keel_is_blind_nothing_opens_moves_or_resolves() {
    let mut w = World::new();
    w.db_dies(0);
    w.tick(1);
    // Keel's own network goes: every check fails, the canary too.
    w.source(
        "internet-dns",
        "internet",
        "tcp",
        Health::Down,
        "no route to host",
        2,
    );
    w.api_fails(2);
    w.source(
        "mail-smtp",
        "mail",
        "tcp",
        Health::Down,
        "no route to host",
        2,
    );
    assert_eq!(w.tick(3), Vec::<i64>::new());
    // While blind, the database looks fine again: that is not believed either.
    w.db_back(4);
    for minute in 4..20 {
        assert_eq!(w.tick(minute), Vec::<i64>::new());
    }
    assert_eq!(w.incidents.len(), 1);
    assert_eq!(w.get(1).state, IncidentState::Investigating);
    // Sight returns with everything fine: now the recovery counts.
    w.source("internet-dns", "internet", "tcp", Health::Up, "ok", 20);
    w.api_back(20);
    w.source("mail-smtp", "mail", "tcp", Health::Up, "ok", 20);
    w.tick(20);
    assert_eq!(w.get(1).state, IncidentState::Monitoring);
}

#[test]
fn a_declared_incident_is_never_moved_by_the_engine() {
    let mut w = World::new();
    let history = past_incidents(&w.incidents);
    let judge = ConfigJudge {
        config: &w.config,
        graph: &w.graph,
        history: &history,
    };
    let events = declare(
        "Power cut at the data centre",
        &set(&["db"]),
        &judge,
        t(0),
        Actor::User("alice".into()),
    )
    .expect("a valid declaration");
    w.apply(vec![Planned::Open { events }], t(0));
    let inc = w.get(1);
    assert_eq!(inc.origin, Origin::Declared);
    assert_eq!(inc.cause, None);
    assert_eq!(inc.cause_kind, "manual");
    assert_eq!(inc.opened_reason, "declared by alice");
    assert_eq!(
        inc.impacted,
        set(&["api", "checkout", "db", "web"]),
        "and what needs it"
    );
    assert_eq!(inc.affected_users, 19_000);
    assert_eq!(inc.severity, Some(Severity::Sev1));
    let steps: Vec<&str> = inc.checklist.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(steps, ["Name a commander", "Post a first update"]);
    assert_eq!(
        w.events[&IncidentId(1)][0].actor,
        Actor::User("alice".into())
    );
    // All green for hours: the engine leaves it to the responders.
    for minute in [1, 10, 100, 1000] {
        assert_eq!(w.tick(minute), Vec::<i64>::new());
    }
    // A detected failure of the same node opens its own incident beside it.
    w.db_dies(1001);
    w.tick(1002);
    assert_eq!(w.incidents.len(), 2);
    assert_eq!(w.get(1).state, IncidentState::Investigating);
}

#[test]
fn a_vendor_outage_opens_an_incident_caused_by_the_vendor() {
    let mut w = World::new();
    w.source(
        "payments",
        "payments",
        "vendor",
        Health::Down,
        "major outage: Card payments failing",
        0,
    );
    w.tick(1);
    let inc = w.get(1);
    assert_eq!(inc.cause_kind, "vendor");
    assert_eq!(inc.title, "Payments provider is down");
    assert_eq!(inc.impacted, set(&["checkout", "payments"]));
    assert_eq!(inc.affected_users, 4000);
    assert_eq!(inc.severity, Some(Severity::Sev2));
    assert_eq!(
        inc.eta,
        Some(Eta::Vendor {
            vendor: "Payments provider".into(),
            status: "payments: major outage: Card payments failing".into()
        })
    );
    assert_eq!(inc.checklist.len(), 2);
    let prompt = w.events[&IncidentId(1)].iter().find_map(|e| match &e.kind {
        EventKind::Prompt { text } => Some(text.as_str()),
        _ => None,
    });
    assert_eq!(
        prompt,
        Some("Ask payments for a timeline: their status says \"payments: major outage: Card payments failing\". Note their answer here.")
    );
    // The vendor's page stops answering: Keel cannot tell, so it claims no recovery.
    w.source(
        "payments",
        "payments",
        "vendor",
        Health::Unknown,
        "HTTP 500 from status page",
        5,
    );
    for minute in [5, 10, 30] {
        assert_eq!(w.tick(minute), Vec::<i64>::new());
    }
    assert_eq!(w.get(1).state, IncidentState::Investigating);
    // The vendor posts an update: the ETA follows its words.
    w.source(
        "payments",
        "payments",
        "vendor",
        Health::Degraded,
        "partial outage: fix deployed",
        31,
    );
    w.tick(31);
    assert_eq!(
        w.get(1).eta,
        Some(Eta::Vendor {
            vendor: "Payments provider".into(),
            status: "payments: partial outage: fix deployed".into()
        })
    );
}

#[test]
fn responders_work_the_incident_and_the_postmortem_tells_the_story() {
    let mut w = World::new();
    w.db_dies(0);
    w.tick(2);
    w.act(1, "alice", Command::Acknowledge { via: None }, 4);
    w.act(
        1,
        "alice",
        Command::AssignRole {
            role: IncidentRole::Commander,
            person: "alice".into(),
        },
        4,
    );
    w.act(1, "bob", Command::TickStep { step: 1 }, 6);
    w.act(
        1,
        "bob",
        Command::Note {
            text: "The primary's disk is full".into(),
        },
        7,
    );
    w.act(
        1,
        "alice",
        Command::ChangeState {
            to: IncidentState::Identified,
            reason: "disk full on the primary".into(),
        },
        8,
    );
    w.act(1, "bob", Command::TickStep { step: 2 }, 12);
    w.db_back(12);
    w.tick(12);
    w.tick(17);
    assert_eq!(w.get(1).state, IncidentState::Resolved);
    // The relapse comes back within the hour.
    w.db_dies(30);
    w.tick(30);
    w.db_back(33);
    w.tick(33);
    w.tick(38);
    w.act(
        1,
        "alice",
        Command::SetRootCause {
            text: "WAL archiving stopped, so the disk filled.".into(),
        },
        60,
    );
    w.act(
        1,
        "alice",
        Command::AddActionItem {
            text: "Alert when the disk is 80% full".into(),
            owner: Some("bob".into()),
        },
        61,
    );
    w.act(
        1,
        "alice",
        Command::AddActionItem {
            text: "Monitor WAL archiving".into(),
            owner: None,
        },
        61,
    );
    w.act(1, "bob", Command::CloseActionItem { item: 1 }, 90);

    let inc = w.get(1);
    let pm = postmortem(inc, &w.events[&IncidentId(1)], &[], t(120));
    let j = &pm.json;
    assert_eq!(j["severity"], "SEV1");
    assert_eq!(j["recurring"], true);
    assert_eq!(
        j["impact"]["components"],
        serde_json::json!(["api", "checkout", "db", "web"])
    );
    assert_eq!(j["impact"]["affected_users"], 19_000);
    // Down 2–12 and 30–33: 13 minutes.
    assert_eq!(j["impact"]["user_minutes"], 19_000 * 13);
    assert_eq!(j["timings"]["time_to_detect"]["text"], "2m");
    assert_eq!(j["timings"]["time_to_acknowledge"]["text"], "2m");
    assert_eq!(
        j["timings"]["time_to_first_public_update"]["text"],
        "no public update"
    );
    assert_eq!(j["timings"]["time_to_mitigate"]["text"], "10m");
    assert_eq!(j["timings"]["time_to_resolve"]["text"], "36m");
    assert_eq!(
        j["root_cause"]["text"],
        "WAL archiving stopped, so the disk filled."
    );
    assert_eq!(j["action_items"][0]["status"], "closed");
    assert_eq!(j["action_items"][1]["owner"], serde_json::Value::Null);
    assert_eq!(
        j["timeline"].as_array().map(Vec::len),
        Some(w.events[&IncidentId(1)].len())
    );

    let md = &pm.markdown;
    for expected in [
        "# Postmortem: #1 Database is down",
        "**SEV1** · resolved · caused by db (component, tcp failure) · recurring (came back once)",
        "about 19,000 users, 247,000 user-minutes",
        "| Time to detect | 2m |",
        "| Time to mitigate | 10m |",
        "| 2026-03-01 09:06:00 | bob | Step 1 done: Check the primary's disk and logs |",
        "| 2026-03-01 09:08:00 | alice | investigating → identified: disk full on the primary |",
        "| 2026-03-01 09:17:00 | keel | monitoring → resolved: stable for 5m |",
        "reopened (recurrence 1): db is down again 13m after it was resolved",
        "## Root cause\n\nWAL archiving stopped, so the disk filled.",
        "- [x] 2. Fail over to the replica — done by bob at 2026-03-01 09:12:00",
        "- [ ] 3. Post an update",
        "| 1 | Alert when the disk is 80% full | bob | closed 2026-03-01 10:30:00 |",
        "| 2 | Monitor WAL archiving | unassigned | open |",
    ] {
        assert!(md.contains(expected), "missing {expected:?} in:\n{md}");
    }
}

#[test]
fn responders_cannot_move_a_resolved_incident() {
    let mut w = World::new();
    w.db_dies(0);
    w.tick(1);
    w.act(
        1,
        "alice",
        Command::Resolve {
            reason: "fixed by hand".into(),
        },
        2,
    );
    let refusal = decide(
        w.get(1),
        Command::ChangeState {
            to: IncidentState::Identified,
            reason: String::new(),
        },
    )
    .unwrap_err();
    assert_eq!(refusal.field, "to");
    assert_eq!(
        refusal.reason,
        "cannot move a resolved incident to identified: reopen happens automatically on relapse"
    );
    // The database was still down when it was resolved by hand: that call stands until a
    // new failure starts.
    assert_eq!(w.tick(3), Vec::<i64>::new());
    w.db_back(4);
    w.tick(4);
    w.db_dies(5);
    w.tick(5);
    assert_eq!(w.get(1).recurrences, 1);
}

// --- Canary grace: a monitor that confirms before the canary ---------------------------------

/// The shop with a canary that is really watched, and a grace of two minutes.
fn watched_canary() -> String {
    format!(
        "{}\n{}",
        SHOP.replace("[incidents]\n", "[incidents]\ncanary_grace = \"2m\"\n"),
        r#"
[[monitor]]
id = "internet-dns"
component = "internet"
kind = "tcp"
host = "1.1.1.1"
port = 53
"#
    )
}

impl World {
    fn canary(&mut self, health: Health, at: i64) {
        self.source(
            "internet-dns",
            "internet",
            "tcp",
            health,
            "no route to host",
            at,
        );
    }

    fn opened(&self) -> usize {
        self.incidents.len()
    }
}

#[test]
fn a_network_loss_where_the_canary_confirms_within_the_grace_opens_nothing() {
    let mut w = World::with(&watched_canary());
    w.canary(Health::Up, 0);
    w.tick(0);
    // Keel's own network goes at minute 10. The API's check confirms first…
    w.api_fails(10);
    assert_eq!(w.tick(10), Vec::<i64>::new(), "held for the canary");
    assert_eq!(w.tick(11), Vec::<i64>::new());
    // …the canary a minute later, within the grace: Keel is blind, nothing was opened.
    w.canary(Health::Down, 11);
    w.db_dies(11);
    for minute in 11..30 {
        assert_eq!(w.tick(minute), Vec::<i64>::new(), "minute {minute}");
    }
    // Sight returns: the canary first, the other checks confirm their recovery a minute
    // later, within the grace after the canary came back; still nothing opens.
    w.canary(Health::Up, 30);
    assert_eq!(w.tick(30), Vec::<i64>::new());
    assert_eq!(w.tick(31), Vec::<i64>::new());
    w.api_back(31);
    w.db_back(31);
    for minute in 31..60 {
        assert_eq!(w.tick(minute), Vec::<i64>::new(), "minute {minute}");
    }
    assert_eq!(w.opened(), 0);
}

#[test]
fn a_real_outage_while_the_canaries_are_healthy_opens_after_the_grace_at_most() {
    let mut w = World::with(&watched_canary());
    w.canary(Health::Up, 0);
    w.tick(0);
    w.db_dies(10);
    // Held: due two minutes after the failure began; a caller that only runs on changes is
    // told when to come back.
    assert_eq!(w.tick(10), Vec::<i64>::new());
    assert_eq!(
        next_canary_hold(&w.assessment(), t(10), &w.settings()),
        Some(t(12))
    );
    assert_eq!(w.tick(11), Vec::<i64>::new());
    assert_eq!(w.tick(12), vec![1], "opens once the grace is over");
    assert_eq!(w.get(1).cause.as_ref().map(NodeId::as_str), Some("db"));
    assert_eq!(
        next_canary_hold(&w.assessment(), t(12), &w.settings()),
        None
    );
    // It is an ordinary incident from then on: it resolves and reopens as any other, and a
    // relapse of an open incident is not held.
    w.db_back(13);
    w.tick(13);
    assert_eq!(w.get(1).state, IncidentState::Monitoring);
    w.db_dies(14);
    assert_eq!(w.tick(14), vec![1]);
    assert_eq!(w.get(1).state, IncidentState::Investigating);
}

#[test]
fn a_failure_that_outlasts_the_return_of_sight_opens_a_grace_after_it() {
    let mut w = World::with(&watched_canary());
    w.canary(Health::Down, 0);
    w.api_fails(1);
    for minute in 0..10 {
        assert_eq!(w.tick(minute), Vec::<i64>::new());
    }
    w.canary(Health::Up, 10);
    assert_eq!(w.tick(10), Vec::<i64>::new());
    assert_eq!(w.tick(11), Vec::<i64>::new());
    // Two minutes after Keel could see again, the API still fails: that is real.
    assert_eq!(w.tick(12), vec![1]);
    assert_eq!(w.get(1).cause.as_ref().map(NodeId::as_str), Some("api"));
}

#[test]
fn failures_keel_did_not_see_through_its_own_network_are_not_held() {
    let mut w = World::with(&watched_canary());
    w.canary(Health::Up, 0);
    // An alert that reached Keel: someone else saw it.
    w.source(
        "alertmanager/mail",
        "mail",
        "alertmanager",
        Health::Down,
        "MailQueueStuck",
        5,
    );
    // The vendor's own page says it is down.
    w.source(
        "payments",
        "payments",
        "vendor",
        Health::Down,
        "major outage",
        5,
    );
    let opened = w.tick(5);
    assert_eq!(opened.len(), 2, "{:?}", w.incidents);
}

#[test]
fn without_a_watched_canary_nothing_is_held() {
    // The shop's canary has no monitor: the default grace is zero.
    let mut w = World::new();
    assert_eq!(w.settings().canary_grace, std::time::Duration::ZERO);
    w.db_dies(0);
    assert_eq!(w.tick(0), vec![1]);
}
