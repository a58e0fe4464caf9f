//! Backups that know what they rest on: `alternatives` and guarded runbook steps, from the
//! config a user writes to the prompts responders read and the drafts customers get.
//!
//! The world here is the one the issue describes: a web shop paying through one vendor, a
//! phone line for orders running on a telephony vendor, and a runbook whose failover step
//! relies on a backup payment route.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use keel_core::assess::{
    alternatives, assess, fold_health, step_guards, troubles_from_health, unsafe_reason, Graph,
    SourceHealth,
};
use keel_core::config::{parse, Config, Diagnostic};
use keel_core::incident::{
    correlate_with_unknown, stamp, unknown_nodes, ConfigJudge, EventKind, Incident, IncidentEvent,
    IncidentId, Planned, Settings,
};
use keel_core::public::{build_snapshot, check, draft_events, DisclosureRules};
use keel_core::{Health, NodeId};

const SHOP: &str = r#"
[page]
locales = ["en", "ja"]

[[component]]
id = "shop"
name = { en = "Web shop", ja = "ウェブショップ" }
users = 1000
depends_on = ["payments"]
alternatives = ["phone-orders"]
workaround = { en = "Saved carts are kept.", ja = "保存したカートは保持されます。" }

[[component]]
id = "phone-orders"
name = { en = "Phone orders", ja = "電話注文" }
users = 100
depends_on = ["pbx"]

[[component]]
id = "pbx"
name = "PBX"
public = false
depends_on = ["telco"]

[[component]]
id = "backup-pay"
name = "Backup payment route"
public = false

[[vendor]]
id = "payments"
name = "PayCo"
status_url = "https://status.payco.example/api/v2/summary.json"
confidential = true

[[vendor]]
id = "telco"
name = "TelcoOne"
status_url = "https://status.telcoone.example/api/v2/summary.json"
confidential = true

[[runbook]]
id = "payments-down"
component = "payments"
steps = [
  "Check the payment provider's status page",
  { text = "Route payments through backup-pay", when_healthy = ["backup-pay"] },
]
"#;

fn t(minute: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap() + chrono::Duration::minutes(minute)
}

struct World {
    config: Config,
    graph: Graph,
    sources: BTreeMap<String, SourceHealth>,
    incidents: Vec<Incident>,
    events: BTreeMap<IncidentId, Vec<IncidentEvent>>,
}

impl World {
    fn new() -> Self {
        let config = parse(SHOP, "keel.toml", &[]).expect("the shop config parses");
        World {
            graph: Graph::from_config(&config),
            config,
            sources: BTreeMap::new(),
            incidents: Vec::new(),
            events: BTreeMap::new(),
        }
    }

    fn set(&mut self, node: &str, health: Health, at: i64) {
        self.sources.insert(
            node.to_string(),
            SourceHealth {
                source: keel_core::SourceKey::vendor(keel_core::VendorId::parse(node).unwrap()),
                label: "vendor".into(),
                node: NodeId::parse(node).unwrap(),
                health,
                since: t(at),
                reason: format!("{health}"),
            },
        );
    }

    fn health(&self) -> keel_core::assess::HealthMap {
        fold_health(&self.sources.values().cloned().collect::<Vec<_>>())
    }

    fn plan(&self, now: DateTime<Utc>) -> Vec<Planned> {
        let health = self.health();
        let judge = ConfigJudge {
            config: &self.config,
            graph: &self.graph,
            history: &[],
        };
        correlate_with_unknown(
            &self.incidents,
            &assess(&self.graph, &health),
            &unknown_nodes(&health),
            now,
            &Settings::from(&self.config.incidents),
            &judge,
        )
    }

    /// One engine step; a second at the same minute must plan nothing (no repeated prompt).
    fn tick(&mut self, minute: i64) {
        let now = t(minute);
        for plan in self.plan(now) {
            match plan {
                Planned::Open { events } => {
                    let id = IncidentId(self.incidents.len() as i64 + 1);
                    let stamped = stamp(id, 1, now, events);
                    self.incidents.push(Incident::replay(&stamped).unwrap());
                    self.events.insert(id, stamped);
                }
                Planned::Append { incident, events } => {
                    let inc = self
                        .incidents
                        .iter_mut()
                        .find(|i| i.id == incident)
                        .unwrap();
                    for e in inc.stamp(now, events) {
                        inc.apply(&e).unwrap();
                        self.events.get_mut(&incident).unwrap().push(e);
                    }
                    assert_eq!(
                        Incident::replay(&self.events[&incident]).as_ref(),
                        Ok(&*inc)
                    );
                }
            }
        }
        assert_eq!(self.plan(now), Vec::new(), "minute {minute} planned twice");
    }

    fn incident_caused_by(&self, node: &str) -> &Incident {
        self.incidents
            .iter()
            .find(|i| i.cause.as_ref().map(NodeId::as_str) == Some(node))
            .unwrap_or_else(|| panic!("no incident caused by {node}"))
    }

    fn prompts(&self, id: IncidentId) -> Vec<&str> {
        self.events[&id]
            .iter()
            .filter_map(|e| match &e.kind {
                EventKind::Prompt { text } if text.starts_with("The backup") => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The body of the draft Keel would write for the incident now, in `locale`.
    fn draft_body(&self, id: IncidentId, locale: &str) -> String {
        let inc = self.incidents.iter().find(|i| i.id == id).unwrap();
        // A fresh draft for the incident's situation as it stands (the public mark cleared so
        // Keel drafts again, as it does on every change of situation).
        let mut fresh = inc.clone();
        fresh.public_mark = None;
        draft_events(&fresh, &self.config, t(0))
            .into_iter()
            .find_map(|e| match e {
                EventKind::DraftPrepared { body, .. } => Some(body.get(locale).to_string()),
                _ => None,
            })
            .expect("a draft")
    }
}

const AFFECTED: &str =
    "The backup 'Phone orders' is also affected: vendor 'telco' is down — do not advertise it.";
const AVAILABLE: &str = "The backup 'Phone orders' is available: the status page and drafted updates offer it to customers.";

#[test]
fn a_healthy_alternative_is_offered_in_every_locale_and_said_so_once() {
    let mut w = World::new();
    w.set("payments", Health::Down, 0);
    w.set("telco", Health::Up, 0);
    w.tick(1);
    let shop = w.incident_caused_by("payments").id;
    assert_eq!(w.prompts(shop), [AVAILABLE]);
    let en = w.draft_body(shop, "en");
    assert!(en.contains("You can use Phone orders instead."), "{en}");
    assert!(en.contains("Saved carts are kept."), "{en}");
    let ja = w.draft_body(shop, "ja");
    assert!(
        ja.contains("代わりに電話注文をご利用いただけます。"),
        "{ja}"
    );
    // The draft passes the disclosure check, and the vendors stay unnamed.
    let rules = DisclosureRules::from_config(&w.config);
    for body in [&en, &ja] {
        assert!(check(body, &rules).is_ok(), "{body}");
        assert!(
            !body.contains("TelcoOne") && !body.contains("PayCo"),
            "{body}"
        );
    }
    // Later passes with nothing new say nothing more.
    w.tick(2);
    w.tick(3);
    assert_eq!(w.prompts(shop), [AVAILABLE]);
}

#[test]
fn an_alternative_on_the_same_failing_vendor_is_not_offered_and_the_prompt_says_why() {
    let mut w = World::new();
    w.set("payments", Health::Down, 0);
    w.set("telco", Health::Down, 0);
    w.tick(1);
    let shop = w.incident_caused_by("payments").id;
    assert_eq!(w.prompts(shop), [AFFECTED]);
    for locale in ["en", "ja"] {
        let body = w.draft_body(shop, locale);
        assert!(
            !body.contains("Phone orders") && !body.contains("電話注文"),
            "{locale}: {body}"
        );
        assert!(
            !body.contains("telco") && !body.contains("TelcoOne"),
            "{body}"
        );
    }
    // The component's own workaround is still offered.
    assert!(w.draft_body(shop, "en").contains("Saved carts are kept."));
    w.tick(4);
    assert_eq!(w.prompts(shop), [AFFECTED], "no repeated prompt");
}

#[test]
fn an_alternative_that_recovers_is_offered_again_and_one_that_fails_later_is_withdrawn() {
    let mut w = World::new();
    w.set("payments", Health::Down, 0);
    w.set("telco", Health::Down, 0);
    w.tick(1);
    let shop = w.incident_caused_by("payments").id;
    w.set("telco", Health::Up, 5);
    w.tick(5);
    assert_eq!(w.prompts(shop), [AFFECTED, AVAILABLE]);
    assert!(w
        .draft_body(shop, "en")
        .contains("You can use Phone orders instead."));
    // The phone line's own switch fails: named as the root this time.
    w.set("pbx", Health::Degraded, 7);
    w.tick(7);
    assert_eq!(
        w.prompts(shop).last().copied(),
        Some(
            "The backup 'Phone orders' is also affected: component 'pbx' is degraded — do not \
             advertise it."
        )
    );
    assert!(!w.draft_body(shop, "en").contains("Phone orders"));
    // A phone line Keel cannot judge is not offered either.
    w.set("pbx", Health::Unknown, 9);
    w.tick(9);
    assert!(w.prompts(shop).last().unwrap().contains("cannot be judged"));
    assert!(!w.draft_body(shop, "en").contains("Phone orders"));
}

#[test]
fn an_incident_that_widens_onto_an_alternative_prompts_in_the_same_pass() {
    // The shop's incident starts when only the shop is impacted; the phone line fails on its
    // own vendor a little later, which is a separate cause: the shop's prompt follows it.
    let mut w = World::new();
    w.set("payments", Health::Down, 0);
    w.tick(1);
    let shop = w.incident_caused_by("payments").id;
    w.set("telco", Health::Down, 2);
    w.tick(2);
    let telco = w.incident_caused_by("telco").id;
    assert_ne!(shop, telco);
    assert_eq!(w.prompts(shop), [AVAILABLE, AFFECTED]);
    // The telephony incident has no alternatives of its own to speak of.
    assert!(w.prompts(telco).is_empty());
}

#[test]
fn a_guarded_step_is_unsafe_while_its_target_is_down_and_safe_when_it_is_back() {
    let w = World::new();
    let guards = step_guards(&w.config);
    let step = "Route payments through backup-pay";
    assert_eq!(guards[step], [NodeId::parse("backup-pay").unwrap()]);
    assert!(!guards.contains_key("Check the payment provider's status page"));

    let mut health = BTreeMap::new();
    let mut w = w;
    w.set("backup-pay", Health::Down, 0);
    health.extend(w.health());
    let troubles = troubles_from_health(&health);
    assert_eq!(
        unsafe_reason(&w.graph, &guards[step], &troubles).as_deref(),
        Some("unsafe now: backup-pay is down")
    );
    w.set("backup-pay", Health::Up, 3);
    let troubles = troubles_from_health(&w.health());
    assert_eq!(unsafe_reason(&w.graph, &guards[step], &troubles), None);
}

#[test]
fn the_api_side_judgment_agrees_with_the_engine() {
    let mut w = World::new();
    w.set("payments", Health::Down, 0);
    w.set("telco", Health::Down, 0);
    let impacted: BTreeSet<NodeId> = ["payments", "shop"]
        .map(|n| NodeId::parse(n).unwrap())
        .into();
    let alts = alternatives(&w.graph, &impacted, &troubles_from_health(&w.health()));
    assert_eq!(alts.len(), 1);
    assert_eq!(alts[0].component.as_str(), "shop");
    assert_eq!(alts[0].alternative.as_str(), "phone-orders");
    assert!(!alts[0].available);
    assert_eq!(alts[0].reason.as_deref(), Some("vendor 'telco' is down"));
}

// --- Config: every mistake at its line, with a hint -----------------------------------------

fn errs(text: &str) -> Vec<Diagnostic> {
    match parse(text, "keel.toml", &[]) {
        Ok(_) => panic!("expected diagnostics for:\n{text}"),
        Err(d) => d,
    }
}

#[track_caller]
fn one(text: &str, line: usize, msg: &str, hint: &str) {
    let d = errs(text);
    assert_eq!(d.len(), 1, "expected one diagnostic, got {d:#?}");
    let d = &d[0];
    assert_eq!((d.file.as_str(), d.line), ("keel.toml", line), "{d}");
    assert!(d.message.contains(msg), "message lacks {msg:?}: {d}");
    let h = d.hint.as_deref().unwrap_or_default();
    assert!(h.contains(hint), "hint lacks {hint:?}: {d}");
}

const TWO: &str = "[[component]]\nid = \"shop\"\n\n[[component]]\nid = \"phone-orders\"\n";

#[test]
fn config_parses_alternatives_and_guarded_steps() {
    let c = parse(SHOP, "keel.toml", &[]).unwrap();
    assert_eq!(c.components[0].alternatives, ["phone-orders"]);
    assert!(c.components[1].alternatives.is_empty());
    let steps = &c.runbooks[0].steps;
    assert_eq!(steps[0].text, "Check the payment provider's status page");
    assert!(steps[0].when_healthy.is_empty());
    assert_eq!(steps[1].text, "Route payments through backup-pay");
    assert_eq!(steps[1].when_healthy, ["backup-pay"]);
}

#[test]
fn an_unknown_alternative_suggests_the_close_one() {
    one(
        &format!("{TWO}\n[[component]]\nid = \"web\"\nalternatives = [\"phone-order\"]\n"),
        9,
        "`web` names unknown component `phone-order` as an alternative",
        "did you mean `phone-orders`?",
    );
}

#[test]
fn an_alternative_may_not_be_the_component_itself() {
    one(
        "[[component]]\nid = \"shop\"\nalternatives = [\"shop\"]\n",
        3,
        "`shop` names itself as its own alternative",
        "another component",
    );
}

#[test]
fn an_internal_alternative_is_refused() {
    one(
        &format!("{TWO}public = false\n\n[[component]]\nid = \"web\"\nalternatives = [\"phone-orders\"]\n"),
        10,
        "`phone-orders` is internal (public = false)",
        "customers cannot be sent to what the page does not show",
    );
}

#[test]
fn a_vendor_is_no_alternative() {
    one(
        "[[vendor]]\nid = \"telco\"\nstatus_url = \"https://status.telco.example/api/v2/summary.json\"\n\n\
         [[component]]\nid = \"shop\"\nalternatives = [\"telco\"]\n",
        7,
        "names `telco` as an alternative, but that is a vendor",
        "name a public component",
    );
}

#[test]
fn a_guard_naming_no_node_is_refused_with_a_suggestion() {
    one(
        &format!(
            "{TWO}\n[[runbook]]\nid = \"r\"\ncomponent = \"shop\"\nsteps = [\n  \"Look\",\n  \
             {{ text = \"Fail over\", when_healthy = [\"phone-order\"] }},\n]\n"
        ),
        12,
        "when_healthy names `phone-order`, which is no component, vendor or infra node",
        "did you mean `phone-orders`?",
    );
}

#[test]
fn malformed_steps_are_refused_at_their_line() {
    one(
        &format!("{TWO}\n[[runbook]]\nid = \"r\"\ncomponent = \"shop\"\nsteps = [\"Look\", 3]\n"),
        10,
        "step 2 must be a string or a table, found an integer",
        "when_healthy",
    );
    let d = errs(&format!(
        "{TWO}\n[[runbook]]\nid = \"r\"\ncomponent = \"shop\"\nsteps = [{{ txt = \"Look\" }}]\n"
    ));
    let said: Vec<(usize, &str, &str)> = d
        .iter()
        .map(|d| {
            (
                d.line,
                d.message.as_str(),
                d.hint.as_deref().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            (
                10,
                "step 1 of `runbook.steps` is missing required key `text`",
                "add text = \"Fail over to backup-db\""
            ),
            (
                10,
                "unknown key `txt` in step 1 of `runbook.steps`",
                "did you mean `text`?"
            ),
        ]
    );
    one(
        &format!(
            "{TWO}\n[[runbook]]\nid = \"r\"\ncomponent = \"shop\"\nsteps = [{{ text = \" \" }}]\n"
        ),
        10,
        "step 1 is empty",
        "write what to do",
    );
}

#[test]
fn the_page_withdraws_a_backup_that_fails_before_the_timeline_says_so() {
    let mut w = World::new();
    w.set("payments", Health::Down, 0);
    w.tick(1);
    let offered = |w: &World| {
        let snap = build_snapshot(
            &w.config,
            &w.incidents,
            &w.health(),
            &BTreeMap::new(),
            &[],
            t(2),
        );
        let inc = &snap.incidents[0];
        inc.workarounds
            .iter()
            .any(|(_, text)| text.get("en").contains("You can use Phone orders instead."))
    };
    assert!(offered(&w), "offered while the phone line is healthy");
    // Telco fails; no engine pass yet, so the timeline still says "available".
    w.set("telco", Health::Down, 2);
    assert!(!offered(&w), "withdrawn from the page at once");
    w.tick(2);
    assert!(!offered(&w));
}
