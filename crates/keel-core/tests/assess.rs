//! Assessment as the server meets it: a config parsed from TOML, the latest health of every
//! source, and out come causes (one per independent failure), impact in users, a severity
//! with its reason, an ETA with its basis and the runbook steps. Also the config keys that
//! feed it, and their mistakes.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeZone, Utc};
use keel_core::assess::{
    about_users, assess, describe_eta, estimate_eta, fold_health, impact, runbook_steps, severity,
    Assessment, Canaries, Criticality, Eta, Graph, HealthMap, Impact, NodeKind, PastIncident,
    Severity, SourceHealth,
};
use keel_core::config::{parse, Config, Diagnostic, SeverityConfig, EXAMPLE};
use keel_core::{Health, NodeId};
use proptest::prelude::*;

// --- Helpers --------------------------------------------------------------------------------

fn ok(text: &str) -> Config {
    match parse(text, "keel.toml", &[]) {
        Ok(c) => c,
        Err(d) => panic!("expected a clean parse, got:\n{}", render(&d)),
    }
}

fn render(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| format!("{d}\n")).collect()
}

/// Exactly one diagnostic, at `line`, whose message contains `msg` and hint contains `hint`.
#[track_caller]
fn one(text: &str, line: usize, msg: &str, hint: &str) -> Diagnostic {
    let d = match parse(text, "keel.toml", &[]) {
        Ok(_) => panic!("expected diagnostics for:\n{text}"),
        Err(d) => d,
    };
    assert_eq!(d.len(), 1, "expected one diagnostic, got:\n{}", render(&d));
    let d = d.into_iter().next().unwrap();
    assert_eq!(d.line, line, "wrong line:\n{d}");
    assert!(d.message.contains(msg), "message lacks {msg:?}:\n{d}");
    let h = d.hint.clone().unwrap_or_default();
    assert!(h.contains(hint), "hint lacks {hint:?}:\n{d}");
    d
}

fn at(minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, minute, 0).unwrap()
}

/// One source of `node` in `health`, with a check kind and a reason.
fn src(node: &str, health: Health, label: &str, reason: &str, minute: u32) -> SourceHealth {
    SourceHealth {
        source: keel_core::SourceKey::parse(
            keel_core::SourceKind::Monitor,
            &format!("{node}-{label}"),
        )
        .unwrap(),
        label: label.to_owned(),
        node: n(node),
        health,
        since: at(minute),
        reason: reason.to_owned(),
    }
}

/// The nodes listed are down (one tcp source each, failing from minute 0 on).
fn down(nodes: &[&str]) -> HealthMap {
    fold_health(
        &nodes
            .iter()
            .map(|n| src(n, Health::Down, "tcp", "connection refused", 0))
            .collect::<Vec<_>>(),
    )
}

fn n(id: &str) -> NodeId {
    NodeId::parse(id).unwrap()
}

fn set(ids: &[&str]) -> BTreeSet<NodeId> {
    ids.iter().map(|s| n(s)).collect()
}

fn ids(v: &[NodeId]) -> Vec<&str> {
    v.iter().map(NodeId::as_str).collect()
}

fn cause_ids(a: &Assessment) -> Vec<&str> {
    a.causes.iter().map(|c| c.node.as_str()).collect()
}

/// A shop: web and api (public) on an internal db; a docs site on its own; checkout on a
/// payments vendor; everything on the network. 20,000 users in all.
const SHOP: &str = r#"
[[component]]
id = "web"
name = { en = "Website", ja = "ウェブサイト" }
users = 8000
depends_on = ["api"]

[[component]]
id = "api"
users = 7000
depends_on = ["db"]
criticality = "high"

[[component]]
id = "db"
users = 0
public = false
criticality = "critical"
depends_on = ["network"]

[[component]]
id = "docs"
users = 1000
depends_on = ["network"]

[[component]]
id = "checkout"
users = 4000
depends_on = ["payments", "api"]

[[component]]
id = "batch"
users = 0
public = false

[[vendor]]
id = "payments"
status_url = "https://status.example-vendor.com/api/v2/summary.json"

[[infra]]
id = "network"
name = { en = "Network", ja = "ネットワーク" }

[[infra]]
id = "internet"
canary = true

[[monitor]]
id = "internet-dns"
component = "internet"
kind = "tcp"
host = "1.1.1.1"
port = 53

[[monitor]]
id = "db-port"
component = "db"
kind = "tcp"
host = "127.0.0.1"
port = 5432
"#;

fn shop() -> (Config, Graph) {
    let c = ok(SHOP);
    let g = Graph::from_config(&c);
    (c, g)
}

// --- The config keys --------------------------------------------------------------------------

#[test]
fn the_shop_config_reads_into_a_graph_of_three_kinds() {
    let (c, g) = shop();
    assert_eq!(c.infra.len(), 2);
    assert!(c.infra[1].canary && !c.infra[0].canary);
    assert_eq!(c.infra[0].name.get("ja"), "ネットワーク");
    assert_eq!(c.components[2].criticality, Criticality::Critical);
    assert_eq!(c.components[0].criticality, Criticality::Normal);
    assert_eq!(c.monitors[0].component.as_str(), "internet");
    assert_eq!(c.severity, SeverityConfig::default());
    assert_eq!(c.node_kind("network"), Some(NodeKind::Infra));
    assert_eq!(c.node_kind("payments"), Some(NodeKind::Vendor));
    assert_eq!(c.node_kind("web"), Some(NodeKind::Component));
    assert_eq!(c.node_kind("nope"), None);

    assert_eq!(g.nodes().count(), 9);
    assert_eq!(
        g.node(&n("payments")).map(|n| n.kind),
        Some(NodeKind::Vendor)
    );
    assert_eq!(g.node(&n("internet")).map(|n| n.canary), Some(true));
    assert_eq!(g.total_users(), 20_000);
    assert_eq!(
        g.dependents_transitive(&n("db")),
        set(&["api", "web", "checkout"])
    );
    assert_eq!(
        g.dependents_transitive(&n("network")),
        set(&["db", "api", "web", "checkout", "docs"])
    );
    assert_eq!(
        g.dependencies_transitive(&n("checkout")),
        set(&["payments", "api", "db", "network"])
    );
    assert!(g.dependents_transitive(&n("batch")).is_empty());
}

#[test]
fn severity_table_reads_and_defaults() {
    let d = SeverityConfig::default();
    assert_eq!(
        (d.sev1_user_share, d.sev2_user_share, d.sev3_user_share),
        (0.5, 0.2, 0.05)
    );
    assert_eq!(
        (d.critical_min, d.high_min, d.internal_max, d.vendor_max),
        (Severity::Sev2, Severity::Sev3, Severity::Sev3, None)
    );
    let c = ok("[severity]\nsev1_user_share = 0.6\nsev2_user_share = 0.3\nsev3_user_share = 0\ncritical_min = \"sev1\"\nhigh_min = \"SEV2\"\ninternal_max = \"SEV4\"\nvendor_max = \"SEV3\"\n");
    assert_eq!(
        c.severity,
        SeverityConfig {
            sev1_user_share: 0.6,
            sev2_user_share: 0.3,
            sev3_user_share: 0.0,
            critical_min: Severity::Sev1,
            high_min: Severity::Sev2,
            internal_max: Severity::Sev4,
            vendor_max: Some(Severity::Sev3),
        }
    );
    // The environment layers over the file, and can lift a cap.
    let env = [("KEEL_SEVERITY__VENDOR_MAX".to_owned(), "none".to_owned())];
    let c = parse("[severity]\nvendor_max = \"SEV3\"\n", "keel.toml", &env).unwrap();
    assert_eq!(c.severity.vendor_max, None);
    let env = [(
        "KEEL_SEVERITY__SEV3_USER_SHARE".to_owned(),
        "0.01".to_owned(),
    )];
    let c = parse("", "keel.toml", &env).unwrap();
    assert_eq!(c.severity.sev3_user_share, 0.01);
}

#[test]
fn runbooks_read_in_order() {
    let c = ok(&format!(
        "{SHOP}\n[[runbook]]\nid = \"db-tcp\"\ncomponent = \"db\"\nfailure_kind = \"tcp\"\nsteps = [\"a\", \"b\"]\n\n[[runbook]]\nid = \"vendors\"\nfailure_kind = \"vendor\"\nsteps = [\"chase\"]\n\n[[runbook]]\nid = \"net\"\ncomponent = \"network\"\nsteps = [\"call the ISP\"]\n"
    ));
    let ids: Vec<_> = c.runbooks.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["db-tcp", "vendors", "net"]);
    assert_eq!(c.runbooks[0].component.as_deref(), Some("db"));
    assert_eq!(c.runbooks[0].failure_kind.as_deref(), Some("tcp"));
    assert_eq!(c.runbooks[1].component, None);
    assert_eq!(c.runbooks[2].failure_kind, None);
    let steps: Vec<&str> = c.runbooks[0]
        .steps
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    assert_eq!(steps, ["a", "b"]);
}

#[test]
fn the_examples_new_keys_parse_when_uncommented() {
    // Same idea as the config tests' check: every commented "# key = value" is real.
    let text: String = EXAMPLE
        .lines()
        .map(|l| {
            let Some(body) = l.strip_prefix("# ") else {
                return l;
            };
            let head = body.split_whitespace().next().unwrap_or("");
            let header = head.starts_with('[') && head.ends_with(']') && body.trim() == head;
            let key =
                body.contains(" = ") && head.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            if header || key {
                body
            } else {
                l
            }
        })
        .flat_map(|l| [l, "\n"])
        .collect();
    let c = ok(&text);
    assert_eq!(c.infra.len(), 1);
    assert!(c.infra[0].canary);
    assert_eq!(c.runbooks.len(), 1);
    assert_eq!(c.runbooks[0].failure_kind.as_deref(), Some("http"));
    assert_eq!(c.severity.vendor_max, Some(Severity::Sev3));
    assert_eq!(c.components[0].criticality, Criticality::Normal);
    // As shipped, the example is the defaults.
    assert_eq!(ok(EXAMPLE).severity, SeverityConfig::default());
}

const BASE: &str = "[[component]]\nid = \"api\"\nname = \"API\"\n";

#[test]
fn a_bad_criticality_gets_a_did_you_mean() {
    let d = one(
        &format!("{BASE}criticality = \"critcal\"\n"),
        4,
        "`component.criticality`: unknown criticality \"critcal\"",
        "did you mean `critical`?",
    );
    assert_eq!(d.column, 15);
    one(
        &format!("{BASE}criticality = \"urgent\"\n"),
        4,
        "unknown criticality",
        "one of: `low`, `normal`, `high`, `critical`",
    );
    one(
        &format!("{BASE}criticality = 3\n"),
        4,
        "expected a string, found an integer",
        "",
    );
}

#[test]
fn bad_severity_shares_and_levels() {
    one(
        "[severity]\nsev1_user_share = 1.5\n",
        2,
        "`severity.sev1_user_share`: 1.5 is out of range",
        "between 0 and 1",
    );
    one(
        "[severity]\nsev2_user_share = \"20%\"\n",
        2,
        "expected a number, found a string",
        "",
    );
    one(
        "[severity]\ncritical_min = \"SEV0\"\n",
        2,
        "`severity.critical_min`: unknown severity \"SEV0\"",
        "`SEV1`, `SEV2`, `SEV3`, `SEV4`",
    );
    one(
        "[severity]\nvendor_max = \"sev 3\"\n",
        2,
        "unknown severity",
        "did you mean `SEV3`?",
    );
    one(
        "[severity]\nsev_1_user_share = 0.4\n",
        2,
        "unknown key `sev_1_user_share` in [severity]",
        "did you mean `sev1_user_share`?",
    );
}

#[test]
fn unordered_shares_are_refused_at_the_key_written() {
    let d = one(
        "[severity]\nsev1_user_share = 0.5\nsev2_user_share = 0.6\n",
        3,
        "`severity.sev2_user_share` (0.6) is larger than `severity.sev1_user_share` (0.5)",
        "sev1_user_share ≥ sev2_user_share ≥ sev3_user_share",
    );
    assert_eq!(
        d.to_string().lines().next().unwrap(),
        "keel.toml:3:19: `severity.sev2_user_share` (0.6) is larger than `severity.sev1_user_share` (0.5)"
    );
    // Only one written: the default is named as such.
    one(
        "[severity]\nsev3_user_share = 0.3\n",
        2,
        "`severity.sev3_user_share` (0.3) is larger than the default `sev2_user_share` (0.2)",
        "",
    );
    one(
        "[severity]\nsev1_user_share = 0.1\n",
        2,
        "the default `sev2_user_share` (0.2) is larger than `severity.sev1_user_share` (0.1)",
        "",
    );
    // Equal shares are allowed: SEV2 simply never applies.
    ok("[severity]\nsev1_user_share = 0.2\n");
}

#[test]
fn runbook_mistakes() {
    one(
        &format!("{BASE}[[runbook]]\nid = \"r\"\ncomponent = \"apx\"\nsteps = [\"x\"]\n"),
        6,
        "runbook `r` names `apx` as its component, which is no component, vendor or infra node",
        "did you mean `api`?",
    );
    one(
        &format!("{BASE}[[runbook]]\nid = \"r\"\ncomponent = \"api\"\nsteps = []\n"),
        7,
        "`runbook.steps`: a runbook needs at least one step",
        "steps = [",
    );
    one(
        &format!("{BASE}[[runbook]]\nid = \"r\"\ncomponent = \"api\"\n"),
        4,
        "[[runbook]] is missing required key `steps`",
        "add steps = [",
    );
    one(
        &format!("{BASE}[[runbook]]\nid = \"r\"\ncomponent = \"api\"\nsteps = [\"a\", \" \"]\n"),
        7,
        "`runbook.steps`: step 2 is empty",
        "",
    );
    one(
        &format!("{BASE}[[runbook]]\nid = \"r\"\nsteps = [\"a\"]\n"),
        4,
        "runbook `r` does not say what it is for",
        "failure_kind",
    );
    one(
        &format!("{BASE}[[runbook]]\nid = \"r\"\nfailure_kind = \"htp\"\nsteps = [\"a\"]\n"),
        6,
        "`runbook.failure_kind`: unknown failure kind \"htp\"",
        "did you mean `http`?",
    );
    let rb = "[[runbook]]\nid = \"r\"\nfailure_kind = \"http\"\nsteps = [\"a\"]\n";
    one(
        &format!("{BASE}{rb}{rb}"),
        9,
        "duplicate runbook id `r`: already used on line 5",
        "different id",
    );
    one(
        &format!("{BASE}[runbook]\nid = \"r\"\nfailure_kind = \"http\"\nsteps = [\"a\"]\n"),
        4,
        "`runbook` must be written [[runbook]], with double brackets",
        "",
    );
}

#[test]
fn infra_ids_share_the_one_namespace() {
    one(
        &format!("{BASE}[[infra]]\nid = \"api\"\n"),
        5,
        "duplicate id `api`: already used by the component on line 2",
        "infra nodes share one set of ids",
    );
    one(
        &format!("[[infra]]\nid = \"api\"\n{BASE}"),
        4,
        "duplicate id `api`: already used by the infra node on line 2",
        "",
    );
    one(
        "[[infra]]\nid = \"net\"\n[[infra]]\nid = \"net\"\n",
        4,
        "duplicate id `net`: already used by the infra node on line 2",
        "",
    );
    one(
        &format!("{BASE}[[infra]]\nid = \"net\"\ncanary = \"yes\"\n"),
        6,
        "`infra.canary`: expected a boolean, found a string",
        "",
    );
    one(
        &format!("{BASE}[[infra]]\nid = \"net\"\nusers = 5\n"),
        6,
        "unknown key `users` in [[infra]]",
        "",
    );
    // depends_on reaches infra; a typo in it is suggested from all nodes.
    one(
        &format!("{BASE}depends_on = [\"netwrk\"]\n[[infra]]\nid = \"network\"\n"),
        4,
        "`api` depends on `netwrk`, which is no component or vendor",
        "did you mean `network`?",
    );
}

#[test]
fn monitors_may_speak_for_infra_and_cycles_through_infra_are_refused() {
    let c = ok(&format!(
        "{BASE}depends_on = [\"net\"]\n[[infra]]\nid = \"net\"\ndepends_on = [\"power\"]\n[[infra]]\nid = \"power\"\n[[monitor]]\nid = \"m\"\ncomponent = \"net\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n[[intake.route]]\nlabels = {{ alertname = \"PowerLoss\" }}\ncomponent = \"power\"\n"
    ));
    assert_eq!(c.monitors[0].component.as_str(), "net");
    assert_eq!(c.intake.routes[0].component.as_str(), "power");
    assert_eq!(c.infra[0].depends_on, ["power"]);

    one(
        &format!("{BASE}depends_on = [\"net\"]\n[[infra]]\nid = \"net\"\ndepends_on = [\"api\"]\n"),
        4,
        "dependency cycle: api → net → api",
        "",
    );
    // Still not a vendor.
    one(
        &format!("{BASE}[[vendor]]\nid = \"pay\"\nstatus_url = \"https://s.example/\"\n[[monitor]]\nid = \"m\"\ncomponent = \"pay\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n"),
        9,
        "names `pay` as its component, but that is a vendor",
        "",
    );
    one(
        &format!("{BASE}[[infra]]\nid = \"network\"\n[[monitor]]\nid = \"m\"\ncomponent = \"netwrk\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = 1\n"),
        8,
        "monitor `m` names unknown component `netwrk`",
        "did you mean `network`?",
    );
}

// --- Causes -----------------------------------------------------------------------------------

#[test]
fn a_database_dies_one_cause_and_its_dependents_impacted_with_their_users() {
    let (c, g) = shop();
    // The db port closes; api and web fail their own checks soon after.
    let health = fold_health(&[
        src("db", Health::Down, "tcp", "connection refused", 0),
        src("api", Health::Down, "http", "HTTP 503", 1),
        src("web", Health::Degraded, "http", "slow: 4.2s", 2),
        src("docs", Health::Up, "http", "HTTP 200", 0),
    ]);
    let a = assess(&g, &health);
    assert_eq!(a.blind, None);
    assert_eq!(cause_ids(&a), ["db"]);
    let cause = &a.causes[0];
    assert_eq!(cause.kind, NodeKind::Component);
    assert_eq!(cause.health, Health::Down);
    assert_eq!(cause.since, at(0));
    assert_eq!(cause.failure_kind, "tcp");
    assert_eq!(cause.reasons, ["db-tcp: connection refused"]);
    // checkout is impacted without failing (yet): it needs api.
    assert_eq!(cause.impacted, set(&["db", "api", "web", "checkout"]));
    assert_eq!(cause.explained, set(&["api", "web"]));

    let imp = impact(&g, &cause.impacted);
    assert_eq!(imp.affected_users, 19_000);
    assert_eq!(ids(&imp.public_components), ["api", "checkout", "web"]);
    assert_eq!(ids(&imp.impacted), ["api", "checkout", "db", "web"]);
    assert!((imp.user_share - 0.95).abs() < 1e-12);
    assert_eq!(imp.criticality, Criticality::Critical);
    assert_eq!(about_users(imp.affected_users, "en"), "about 19,000 users");
    assert_eq!(
        about_users(imp.affected_users, "ja"),
        "約19,000人のユーザー"
    );

    let sev = severity(&imp, cause.kind, &c.severity);
    assert_eq!(sev.severity, Severity::Sev1);
    assert_eq!(sev.reason, "95% of users affected (SEV1 from 50%)");
}

#[test]
fn two_unrelated_failures_are_two_causes() {
    let (_, g) = shop();
    let a = assess(&g, &down(&["db", "batch", "api"]));
    assert_eq!(cause_ids(&a), ["batch", "db"]);
    assert_eq!(a.causes[0].impacted, set(&["batch"]));
    assert!(a.causes[0].explained.is_empty());
    assert_eq!(a.causes[1].explained, set(&["api"]));
}

#[test]
fn a_chain_both_failing_has_one_cause_at_the_bottom() {
    let c = ok("[[component]]\nid = \"api\"\nusers = 10\ndepends_on = [\"db\"]\n[[component]]\nid = \"db\"\n");
    let g = Graph::from_config(&c);
    let a = assess(&g, &down(&["api", "db"]));
    assert_eq!(cause_ids(&a), ["db"]);
    assert_eq!(a.causes[0].explained, set(&["api"]));
    assert_eq!(a.causes[0].impacted, set(&["api", "db"]));
    // Only the dependent failing: it is its own cause.
    let a = assess(&g, &down(&["api"]));
    assert_eq!(cause_ids(&a), ["api"]);
    assert_eq!(a.causes[0].impacted, set(&["api"]));
}

/// app → left, right → base.
const DIAMOND: &str = r#"
[[component]]
id = "app"
users = 100
depends_on = ["left", "right"]
[[component]]
id = "left"
users = 10
depends_on = ["base"]
[[component]]
id = "right"
users = 20
depends_on = ["base"]
[[component]]
id = "base"
users = 1
"#;

#[test]
fn diamonds() {
    let g = Graph::from_config(&ok(DIAMOND));
    // The base fails with one side and the top: one cause explains both.
    let a = assess(&g, &down(&["base", "left", "app"]));
    assert_eq!(cause_ids(&a), ["base"]);
    assert_eq!(a.causes[0].explained, set(&["left", "app"]));
    assert_eq!(a.causes[0].impacted, set(&["base", "left", "right", "app"]));
    let imp = impact(&g, &a.causes[0].impacted);
    // app counted once although reached through both sides.
    assert_eq!(imp.affected_users, 131);

    // Both sides fail on their own: two causes, and the top is explained by both.
    let a = assess(&g, &down(&["left", "right", "app"]));
    assert_eq!(cause_ids(&a), ["left", "right"]);
    for cause in &a.causes {
        assert_eq!(cause.explained, set(&["app"]));
    }
    let union: BTreeSet<NodeId> = a
        .causes
        .iter()
        .flat_map(|c| c.impacted.iter().cloned())
        .collect();
    assert_eq!(impact(&g, &union).affected_users, 130);
}

#[test]
fn a_vendor_can_be_the_cause_and_vendor_max_caps_it() {
    let (c, g) = shop();
    let health = fold_health(&[
        src(
            "payments",
            Health::Down,
            "vendor",
            "major outage: Checkout API",
            3,
        ),
        src("checkout", Health::Down, "http", "HTTP 502", 4),
    ]);
    let a = assess(&g, &health);
    assert_eq!(cause_ids(&a), ["payments"]);
    let cause = &a.causes[0];
    assert_eq!(cause.kind, NodeKind::Vendor);
    assert_eq!(cause.failure_kind, "vendor");
    assert_eq!(cause.explained, set(&["checkout"]));
    let imp = impact(&g, &cause.impacted);
    assert_eq!(imp.affected_users, 4000);
    assert_eq!(ids(&imp.public_components), ["checkout"]);
    // The vendor itself has no users and is not public.
    assert_eq!(ids(&imp.impacted), ["checkout", "payments"]);

    let sev = severity(&imp, cause.kind, &c.severity);
    assert_eq!(sev.severity, Severity::Sev2);
    assert_eq!(sev.reason, "20% of users affected (SEV2 from 20%)");
    let capped = SeverityConfig {
        vendor_max: Some(Severity::Sev3),
        ..SeverityConfig::default()
    };
    let sev = severity(&imp, cause.kind, &capped);
    assert_eq!(sev.severity, Severity::Sev3);
    assert_eq!(
        sev.reason,
        "capped at SEV3: the cause is a vendor (otherwise SEV2: 20% of users affected)"
    );
    // The same cap does not touch an own cause.
    assert_eq!(
        severity(&imp, NodeKind::Component, &capped).severity,
        Severity::Sev2
    );
}

#[test]
fn infra_can_be_the_cause() {
    let (_, g) = shop();
    let a = assess(&g, &down(&["network", "db", "docs", "api"]));
    assert_eq!(cause_ids(&a), ["network"]);
    assert_eq!(a.causes[0].kind, NodeKind::Infra);
    assert_eq!(a.causes[0].explained, set(&["db", "docs", "api"]));
    assert_eq!(
        impact(&g, &a.causes[0].impacted).affected_users,
        g.total_users()
    );
}

#[test]
fn a_failing_canary_makes_keel_blind() {
    let (_, g) = shop();
    let health = fold_health(&[
        src("internet", Health::Down, "tcp", "timed out after 5s", 0),
        src("db", Health::Down, "tcp", "timed out after 5s", 0),
        src("web", Health::Down, "http", "timed out after 5s", 0),
        src("docs", Health::Down, "http", "timed out after 5s", 0),
    ]);
    let a = assess(&g, &health);
    assert!(a.causes.is_empty());
    assert_eq!(
        a.blind.as_deref(),
        Some("Keel cannot see, so it declares nothing down: canary 'internet' is down (internet-tcp: timed out after 5s)")
    );
    // Degraded counts too; Unknown does not.
    let a = assess(
        &g,
        &fold_health(&[src("internet", Health::Degraded, "tcp", "slow", 0)]),
    );
    assert!(a.blind.is_some());
    let a = assess(
        &g,
        &fold_health(&[
            src("internet", Health::Unknown, "tcp", "not checked yet", 0),
            src("db", Health::Down, "tcp", "refused", 0),
        ]),
    );
    assert_eq!(a.blind, None);
    assert_eq!(cause_ids(&a), ["db"]);
}

#[test]
fn nothing_failing_means_no_causes() {
    let (_, g) = shop();
    let health = fold_health(&[
        src("db", Health::Up, "tcp", "connected", 0),
        src(
            "payments",
            Health::Unknown,
            "vendor",
            "status page unreachable",
            0,
        ),
    ]);
    assert_eq!(
        assess(&g, &health),
        Assessment {
            causes: vec![],
            blind: None,
            // The shop has a canary, never checked yet.
            canaries: Some(Canaries { seeing_since: None }),
        }
    );
    assert_eq!(assess(&g, &HealthMap::new()).causes.len(), 0);
    // Once the canary is seen healthy, since when is what correlation's canary grace reads.
    let seeing = fold_health(&[
        src("internet", Health::Up, "tcp", "connected", 7),
        src("db", Health::Down, "tcp", "refused", 5),
    ]);
    let a = assess(&g, &seeing);
    assert_eq!(
        a.canaries,
        Some(Canaries {
            seeing_since: Some(at(7))
        })
    );
    assert_eq!(a.causes.len(), 1);
    // A failing canary: blind, and no canary standing to read.
    let blind = assess(&g, &down(&["internet", "db"]));
    assert!(blind.blind.is_some() && blind.canaries.is_none());
}

#[test]
fn an_unknown_failing_node_is_kept_as_its_own_cause() {
    let (_, g) = shop();
    let a = assess(&g, &down(&["ghost"]));
    assert_eq!(cause_ids(&a), ["ghost"]);
    assert_eq!(a.causes[0].impacted, set(&["ghost"]));
    assert_eq!(impact(&g, &a.causes[0].impacted).affected_users, 0);
}

// --- Folding source health ---------------------------------------------------------------------

#[test]
fn node_health_is_the_worst_failing_source() {
    let h = fold_health(&[
        src("api", Health::Degraded, "http", "slow", 2),
        src("api", Health::Down, "tcp", "refused", 5),
        src("api", Health::Up, "dns", "resolved", 0),
        src("api", Health::Unknown, "tls", "not checked yet", 1),
        src("db", Health::Up, "tcp", "ok", 3),
        src("db", Health::Up, "http", "ok", 7),
        src("pay", Health::Unknown, "vendor", "page unreachable", 4),
        src("pay", Health::Up, "http", "ok", 1),
    ]);
    let api = &h[&n("api")];
    assert_eq!(api.health, Health::Down);
    assert_eq!(api.failure_kind, "tcp");
    // Earliest among the failing sources, not the earliest source.
    assert_eq!(api.since, at(2));
    assert_eq!(api.reasons, ["api-tcp: refused", "api-http: slow"]);

    assert_eq!(h[&n("db")].health, Health::Up);
    assert_eq!(h[&n("db")].since, at(7));
    assert!(h[&n("db")].reasons.is_empty());

    assert_eq!(h[&n("pay")].health, Health::Unknown);
    assert_eq!(h[&n("pay")].reasons, ["pay-vendor: page unreachable"]);
    assert_eq!(h.len(), 3);
}

#[test]
fn equally_bad_sources_name_the_earliest_as_the_kind() {
    let h = fold_health(&[
        src("api", Health::Down, "http", "HTTP 500", 6),
        src("api", Health::Down, "alertmanager", "HighErrorRate", 4),
    ]);
    assert_eq!(h[&n("api")].failure_kind, "alertmanager");
    assert_eq!(h[&n("api")].since, at(4));
}

// --- Impact and severity -----------------------------------------------------------------------

fn imp(share: f64, public: bool, criticality: Criticality) -> Impact {
    Impact {
        public_components: if public { vec![n("api")] } else { vec![] },
        impacted: vec![n("api")],
        affected_users: (share * 1000.0) as u64,
        user_share: share,
        criticality,
    }
}

#[test]
fn severity_table() {
    use Criticality::*;
    use NodeKind::*;
    use Severity::*;
    let d = SeverityConfig::default();
    let cases: &[(f64, bool, Criticality, NodeKind, Severity, &str)] = &[
        (0.6, true, Normal, Component, Sev1, "60% of users affected (SEV1 from 50%)"),
        (0.5, true, Normal, Component, Sev1, "50% of users affected (SEV1 from 50%)"),
        (0.38, true, Normal, Component, Sev2, "38% of users affected (SEV2 from 20%)"),
        (0.2, true, Low, Component, Sev2, "20% of users affected (SEV2 from 20%)"),
        (0.199, true, Normal, Component, Sev3, "19.9% of users affected (SEV3 from 5%)"),
        (0.05, true, Normal, Component, Sev3, "5% of users affected (SEV3 from 5%)"),
        (0.01, true, Normal, Component, Sev4, "1% of users affected (SEV4 below 5%)"),
        (0.0, true, Normal, Component, Sev4, "0% of users affected (SEV4 below 5%)"),
        (
            0.01,
            true,
            Critical,
            Component,
            Sev2,
            "a critical component is impacted: at least SEV2 (otherwise SEV4: 1% of users affected)",
        ),
        (
            0.01,
            true,
            High,
            Component,
            Sev3,
            "a high-criticality component is impacted: at least SEV3 (otherwise SEV4: 1% of users affected)",
        ),
        // A raise never lowers.
        (0.6, true, Critical, Component, Sev1, "60% of users affected (SEV1 from 50%)"),
        (
            0.6,
            false,
            Normal,
            Component,
            Sev3,
            "capped at SEV3: no public component is impacted (otherwise SEV1: 60% of users affected)",
        ),
        // A cap wins over a raise.
        (
            0.0,
            false,
            Critical,
            Component,
            Sev3,
            "capped at SEV3: no public component is impacted (otherwise SEV2: a critical component is impacted)",
        ),
        (0.01, false, Normal, Component, Sev4, "1% of users affected (SEV4 below 5%)"),
        // No vendor cap by default.
        (0.6, true, Normal, Vendor, Sev1, "60% of users affected (SEV1 from 50%)"),
        (0.6, true, Normal, Infra, Sev1, "60% of users affected (SEV1 from 50%)"),
    ];
    for (share, public, crit, kind, want, reason) in cases {
        let got = severity(&imp(*share, *public, *crit), *kind, &d);
        assert_eq!(
            (got.severity, got.reason.as_str()),
            (*want, *reason),
            "share {share}, public {public}, {crit:?}, {kind:?}"
        );
    }

    // Overrides: a stricter table, and both caps at once (the last one that bites decides).
    let strict = SeverityConfig {
        sev1_user_share: 0.3,
        sev2_user_share: 0.1,
        sev3_user_share: 0.0,
        critical_min: Sev1,
        high_min: Sev2,
        internal_max: Sev2,
        vendor_max: Some(Sev3),
    };
    let got = severity(&imp(0.35, true, Normal), Component, &strict);
    assert_eq!(got.severity, Sev1);
    let got = severity(&imp(0.0, true, Normal), Component, &strict);
    assert_eq!(
        (got.severity, got.reason.as_str()),
        (Sev3, "0% of users affected (SEV3 from 0%)")
    );
    let got = severity(&imp(0.01, true, Critical), Component, &strict);
    assert_eq!(got.severity, Sev1);
    let got = severity(&imp(0.9, false, Normal), Vendor, &strict);
    assert_eq!(
        (got.severity, got.reason.as_str()),
        (
            Sev3,
            "capped at SEV3: the cause is a vendor (otherwise SEV2: no public component is impacted)"
        )
    );
}

#[test]
fn severity_from_a_parsed_override() {
    let (_, g) = shop();
    let c = ok("[severity]\nsev2_user_share = 0.04\nsev3_user_share = 0.01\n");
    // docs alone: 1,000 of 20,000 users.
    let i = impact(&g, &set(&["docs"]));
    assert_eq!(i.user_share, 0.05);
    assert_eq!(i.criticality, Criticality::Normal);
    assert_eq!(
        severity(&i, NodeKind::Component, &c.severity).reason,
        "5% of users affected (SEV2 from 4%)"
    );
    // An internal batch job alone: nobody affected, capped anyway.
    let i = impact(&g, &set(&["batch"]));
    assert_eq!((i.affected_users, i.user_share), (0, 0.0));
    assert!(i.public_components.is_empty());
    // A vendor alone impacts no component at all.
    let i = impact(&g, &set(&["payments"]));
    assert_eq!(i.criticality, Criticality::Low);
    assert_eq!(
        severity(&i, NodeKind::Vendor, &c.severity).severity,
        Severity::Sev4
    );
}

#[test]
fn user_share_is_zero_when_nobody_declared_users() {
    let c = ok("[[component]]\nid = \"a\"\n[[component]]\nid = \"b\"\ndepends_on = [\"a\"]\n");
    let g = Graph::from_config(&c);
    let i = impact(&g, &set(&["a", "b"]));
    assert_eq!((i.affected_users, i.user_share), (0, 0.0));
    assert_eq!(ids(&i.public_components), ["a", "b"]);
}

#[test]
fn users_in_words() {
    let cases: &[(u64, &str, &str)] = &[
        (0, "no users", "ユーザーへの影響はありません"),
        (1, "1 user", "1人のユーザー"),
        (7, "7 users", "7人のユーザー"),
        (99, "99 users", "99人のユーザー"),
        (100, "about 100 users", "約100人のユーザー"),
        (484, "about 480 users", "約480人のユーザー"),
        (485, "about 490 users", "約490人のユーザー"),
        (999, "about 1,000 users", "約1,000人のユーザー"),
        (15_234, "about 15,000 users", "約15,000人のユーザー"),
        (
            1_250_000,
            "about 1,300,000 users",
            "約1,300,000人のユーザー",
        ),
    ];
    for (n, en, ja) in cases {
        assert_eq!(about_users(*n, "en"), *en);
        assert_eq!(about_users(*n, "ja"), *ja);
    }
    // Unknown locales read English; regional Japanese reads Japanese.
    assert_eq!(about_users(15_000, "fr"), "about 15,000 users");
    assert_eq!(about_users(15_000, "ja-JP"), "約15,000人のユーザー");
    assert_eq!(
        about_users(u64::MAX, "en"),
        "about 18,000,000,000,000,000,000 users"
    );
}

// --- ETA ----------------------------------------------------------------------------------------

fn past(cause: &str, kind: &str, secs: u64) -> PastIncident {
    PastIncident {
        cause: n(cause),
        failure_kind: kind.to_owned(),
        duration_secs: secs,
    }
}

#[test]
fn eta_from_history() {
    assert_eq!(estimate_eta(&n("db"), "tcp", &[]), Eta::NoHistory);
    // Other causes and kinds do not count.
    let others = [past("api", "tcp", 600), past("db", "http", 600)];
    assert_eq!(estimate_eta(&n("db"), "tcp", &others), Eta::NoHistory);

    let one = [past("db", "tcp", 61), past("api", "tcp", 6000)];
    assert_eq!(
        estimate_eta(&n("db"), "tcp", &one),
        Eta::History {
            samples: 1,
            p50_minutes: 2,
            p90_minutes: 2
        }
    );
    // Seconds round up to a whole minute, at least one.
    assert_eq!(
        estimate_eta(&n("db"), "tcp", &[past("db", "tcp", 0)]),
        Eta::History {
            samples: 1,
            p50_minutes: 1,
            p90_minutes: 1
        }
    );

    // Six, out of order: sorted 10, 12, 15, 20, 30, 40 minutes; nearest rank
    // p50 = 3rd (15), p90 = 6th (40).
    let mut six: Vec<PastIncident> = [40, 12, 20, 10, 30, 15]
        .iter()
        .map(|m| past("db", "tcp", m * 60))
        .collect();
    six.push(past("db", "http", 1));
    let eta = estimate_eta(&n("db"), "tcp", &six);
    assert_eq!(
        eta,
        Eta::History {
            samples: 6,
            p50_minutes: 15,
            p90_minutes: 40
        }
    );
    assert_eq!(
        describe_eta(&eta, "en"),
        "similar incidents: 6, usually 15–40 min"
    );
    assert_eq!(
        describe_eta(&eta, "ja"),
        "類似のインシデント: 6件（通常15–40分）"
    );
    assert_eq!(
        describe_eta(&estimate_eta(&n("db"), "tcp", &one), "en"),
        "similar incidents: 1, which took 2 min"
    );
    assert_eq!(describe_eta(&Eta::NoHistory, "en"), "no history yet");
    assert_eq!(
        describe_eta(
            &Eta::Vendor {
                vendor: "Payments".into(),
                status: "Investigating elevated errors".into()
            },
            "en"
        ),
        "Payments says: Investigating elevated errors"
    );
}

// --- Runbooks -----------------------------------------------------------------------------------

#[test]
fn runbook_selection() {
    let c = ok(&format!(
        r#"{SHOP}
[[runbook]]
id = "db-any"
component = "db"
steps = ["Check the db host", "Page the DBA"]

[[runbook]]
id = "tcp-any"
failure_kind = "tcp"
steps = ["Check the firewall", "Page the DBA"]

[[runbook]]
id = "db-http"
component = "db"
failure_kind = "http"
steps = ["Check the admin console"]

[[runbook]]
id = "db-tcp"
component = "db"
failure_kind = "tcp"
steps = ["Restart the db", "Check the db host"]

[[runbook]]
id = "vendors"
failure_kind = "vendor"
steps = ["Ask the vendor for an ETA"]

[[runbook]]
id = "api-tcp"
component = "api"
failure_kind = "tcp"
steps = ["Restart the api"]
"#
    ));
    assert_eq!(
        runbook_steps(&c, "db", "tcp"),
        [
            "Check the db host",
            "Page the DBA",
            "Check the firewall",
            "Restart the db"
        ]
    );
    assert_eq!(
        runbook_steps(&c, "db", "http"),
        [
            "Check the db host",
            "Page the DBA",
            "Check the admin console"
        ]
    );
    assert_eq!(
        runbook_steps(&c, "payments", "vendor"),
        ["Ask the vendor for an ETA"]
    );
    assert_eq!(
        runbook_steps(&c, "docs", "tcp"),
        ["Check the firewall", "Page the DBA"]
    );
    assert!(runbook_steps(&c, "docs", "http").is_empty());
    assert!(runbook_steps(&c, "nope", "manual").is_empty());
    assert!(runbook_steps(&ok(SHOP), "db", "tcp").is_empty());
}

// --- Properties ---------------------------------------------------------------------------------

/// A random DAG written as a config (node i may depend only on nodes before it, so there is
/// no cycle), with a random kind per node and a random failing set.
fn dag_config(n: usize, edges: &[(usize, usize)], kinds: &[u8], users: &[u64]) -> String {
    let mut text = String::new();
    for i in 0..n {
        let deps: Vec<String> = edges
            .iter()
            .filter(|(a, b)| *a == i && *b < i)
            .map(|(_, b)| format!("\"n{b}\""))
            .collect();
        let deps = deps.join(", ");
        match kinds[i] % 3 {
            // Vendors take no depends_on; only a node without dependencies may be one.
            1 if deps.is_empty() => text.push_str(&format!(
                "[[vendor]]\nid = \"n{i}\"\nstatus_url = \"https://s.example/\"\n"
            )),
            2 => text.push_str(&format!(
                "[[infra]]\nid = \"n{i}\"\ndepends_on = [{deps}]\n"
            )),
            _ => text.push_str(&format!(
                "[[component]]\nid = \"n{i}\"\nusers = {}\npublic = {}\ndepends_on = [{deps}]\n",
                users[i],
                users[i].is_multiple_of(2)
            )),
        }
    }
    text
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_failing_node_is_a_cause_or_explained_and_no_cause_has_a_failing_dependency(
        n in 1usize..14,
        edges in prop::collection::vec((0usize..14, 0usize..14), 0..40),
        kinds in prop::collection::vec(any::<u8>(), 14),
        users in prop::collection::vec(0u64..1000, 14),
        failing in prop::collection::vec(any::<bool>(), 14),
    ) {
        let c = ok(&dag_config(n, &edges, &kinds, &users));
        let g = Graph::from_config(&c);
        let failing_ids: Vec<NodeId> = (0..n)
            .filter(|i| failing[*i])
            .map(|i| NodeId::parse(format!("n{i}")).unwrap())
            .collect();
        let ids: Vec<&str> = failing_ids.iter().map(NodeId::as_str).collect();
        let a = assess(&g, &down(&ids));
        prop_assert!(a.blind.is_none());

        let failing_set: BTreeSet<NodeId> = failing_ids.iter().cloned().collect();
        for id in &failing_ids {
            let is_cause = a.causes.iter().any(|c| &c.node == id);
            let explained = a.causes.iter().any(|c| c.explained.contains(id));
            prop_assert!(is_cause != explained, "{id}: cause {is_cause}, explained {explained}");
        }
        for cause in &a.causes {
            prop_assert!(failing_set.contains(&cause.node));
            prop_assert!(g.dependencies_transitive(&cause.node).is_disjoint(&failing_set));
            prop_assert!(cause.impacted.contains(&cause.node));
            prop_assert!(cause.explained.is_subset(&cause.impacted));
            prop_assert!(!cause.explained.contains(&cause.node));
            let mut dependents = g.dependents_transitive(&cause.node);
            dependents.insert(cause.node.clone());
            prop_assert_eq!(&cause.impacted, &dependents);
            prop_assert_eq!(Some(cause.kind), g.node(&cause.node).map(|n| n.kind));

            let i = impact(&g, &cause.impacted);
            prop_assert!(i.affected_users <= g.total_users());
            prop_assert!((0.0..=1.0).contains(&i.user_share));
            let sev = severity(&i, cause.kind, &c.severity);
            prop_assert!(!sev.reason.is_empty());
            if i.public_components.is_empty() {
                prop_assert!(sev.severity >= c.severity.internal_max);
            }
        }
        // Causes come sorted by node id, once each.
        let names: Vec<&NodeId> = a.causes.iter().map(|c| &c.node).collect();
        prop_assert!(names.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn severity_is_monotone_in_the_share(a in 0.0f64..=1.0, b in 0.0f64..=1.0, public: bool, crit in 0u8..4) {
        let crit = [Criticality::Low, Criticality::Normal, Criticality::High, Criticality::Critical][crit as usize];
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let d = SeverityConfig::default();
        let s_lo = severity(&imp(lo, public, crit), NodeKind::Component, &d).severity;
        let s_hi = severity(&imp(hi, public, crit), NodeKind::Component, &d).severity;
        // More users affected is never milder (SEV1 orders first).
        prop_assert!(s_hi <= s_lo);
    }

    #[test]
    fn eta_percentiles_are_ordered_and_within_the_samples(secs in prop::collection::vec(0u64..100_000, 1..30)) {
        let history: Vec<PastIncident> = secs.iter().map(|s| past("db", "tcp", *s)).collect();
        let Eta::History { samples, p50_minutes, p90_minutes } = estimate_eta(&n("db"), "tcp", &history) else {
            panic!("history expected");
        };
        prop_assert_eq!(samples, secs.len());
        prop_assert!(p50_minutes >= 1 && p50_minutes <= p90_minutes);
        let max = secs.iter().max().copied().unwrap_or(0).div_ceil(60).max(1);
        prop_assert!(p90_minutes <= max);
    }
}
