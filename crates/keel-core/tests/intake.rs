//! Alert intake parsing and routing against the real Alertmanager and Grafana payloads in
//! `fixtures/alertmanager`, plus malformed variants of them: every refusal must name the field.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use keel_core::config::{IntakeConfig, IntakeRoute};
use keel_core::intake::{
    label_fingerprint, parse_alertmanager, parse_generic, route, Alert, AlertStatus, GenericStatus,
    IntakeError,
};
use keel_core::{ComponentId, Health};
use proptest::prelude::*;
use serde_json::{json, Value};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/alertmanager")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).expect("fixture is JSON")
}

const FIXTURES: &[&str] = &[
    "alertmanager-0.25-firing-two-alerts.json",
    "alertmanager-0.25-resolved-two-alerts.json",
    "grafana-webhook-firing-docs-example.json",
    "prom2teams-resolved-two-alerts.json",
    "prometheus-msteams-firing-grouped.json",
    "prometheus-msteams-firing-single.json",
];

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn parse(name: &str) -> Vec<Alert> {
    parse_alertmanager(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn err_of(v: &Value) -> IntakeError {
    let body = serde_json::to_vec(v).unwrap();
    parse_alertmanager(&body).expect_err("should be refused")
}

// ---- every fixture ---------------------------------------------------------------------------

#[test]
fn alertmanager_025_firing() {
    let alerts = parse("alertmanager-0.25-firing-two-alerts.json");
    assert_eq!(alerts.len(), 2);
    for a in &alerts {
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.labels["component"], "checkout");
        assert_eq!(a.summary, "Checkout error rate above 20%");
        assert_eq!(a.starts_at, Some(at("2026-11-27T14:06:45.00200479Z")));
        assert_eq!(a.ends_at, None, "Go's zero time means no end");
    }
    assert_eq!(alerts[0].fingerprint, "29ba8879127db8f7");
    assert_eq!(alerts[1].fingerprint, "ae2907de30db0228");
    assert_eq!(
        alerts[0].generator_url.as_deref(),
        Some("http://prometheus.example/graph?g0.expr=rate")
    );
    assert_eq!(alerts[1].generator_url, None, "empty generatorURL is none");
    assert_eq!(
        alerts[0].annotations["runbook_url"],
        "https://runbooks.example/checkout"
    );
}

#[test]
fn derived_fingerprint_matches_what_alertmanager_sent() {
    // The captured payload carries Alertmanager's own fingerprints: deriving from the labels
    // must give the same key, or a sender that omits it would open a second alert.
    for a in parse("alertmanager-0.25-firing-two-alerts.json") {
        assert_eq!(label_fingerprint(&a.labels), a.fingerprint);
    }
}

#[test]
fn alertmanager_025_resolved() {
    let alerts = parse("alertmanager-0.25-resolved-two-alerts.json");
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().all(|a| a.status == AlertStatus::Resolved));
    assert_eq!(alerts[0].ends_at, Some(at("2026-11-27T14:06:46.104415Z")));
    // The same alerts as the firing notification: same keys.
    let firing = parse("alertmanager-0.25-firing-two-alerts.json");
    let keys = |v: &[Alert]| v.iter().map(|a| a.fingerprint.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&alerts), keys(&firing));
}

#[test]
fn grafana_variant_version_1() {
    let alerts = parse("grafana-webhook-firing-docs-example.json");
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().all(|a| a.status == AlertStatus::Firing));
    assert_eq!(alerts[0].fingerprint, "c6eadffa33fcdf37");
    assert_eq!(alerts[0].summary, "This alert was triggered for zone us-1");
    assert_eq!(alerts[0].labels["zone"], "us-1");
    // +02:00 offset converted to UTC, microseconds kept.
    assert_eq!(alerts[0].starts_at, Some(at("2021-10-12T07:51:03.157076Z")));
    assert_eq!(alerts[1].ends_at, None);
}

#[test]
fn prom2teams_resolved_without_group_keys() {
    let alerts = parse("prom2teams-resolved-two-alerts.json");
    assert_eq!(alerts.len(), 2);
    assert!(alerts.iter().all(|a| a.status == AlertStatus::Resolved));
    // Nine and six fractional digits both parse to the same instant.
    assert_eq!(alerts[0].starts_at, Some(at("2017-05-09T07:01:37.803Z")));
    assert_eq!(alerts[1].starts_at, Some(at("2017-05-09T07:01:37.803Z")));
    assert_eq!(alerts[1].ends_at, Some(at("2017-05-09T07:08:37.81827Z")));
    assert_eq!(alerts[1].summary, "Disk usage alert on CS31.evilcorp");
}

#[test]
fn msteams_grouped_three_alerts() {
    let alerts = parse("prometheus-msteams-firing-grouped.json");
    assert_eq!(alerts.len(), 3);
    assert!(alerts.iter().all(|a| a.status == AlertStatus::Firing));
    let names: Vec<_> = alerts.iter().map(|a| a.labels["name"].as_str()).collect();
    assert_eq!(names, ["grafana", "nginx", "prometheus"]);
    // `\u003c` in the payload is a real '<'.
    assert!(
        alerts[0].summary.contains("[5m Avg] < 40 %"),
        "{}",
        alerts[0].summary
    );
    assert_eq!(alerts[2].fingerprint, "911c76f0240f015b");
}

#[test]
fn msteams_single_falls_back_to_group_status_and_derives_fingerprint() {
    let alerts = parse("prometheus-msteams-firing-single.json");
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!(a.status, AlertStatus::Firing, "group status applies");
    assert_eq!(a.fingerprint, label_fingerprint(&a.labels));
    assert_eq!(a.fingerprint.len(), 16);
    assert_eq!(a.summary, "Server High Memory usage");
    // Nanoseconds and a -05:00 offset.
    assert_eq!(a.starts_at, Some(at("2018-03-07T11:33:21.873077559Z")));
    assert_eq!(a.ends_at, None);
    assert_eq!(a.generator_url, None);
}

#[test]
fn every_fixture_parses() {
    let expected = [2, 2, 2, 2, 3, 1];
    for (name, n) in FIXTURES.iter().zip(expected) {
        assert_eq!(parse(name).len(), n, "{name}");
    }
}

// ---- tolerated variations of real payloads ---------------------------------------------------

#[test]
fn nulls_and_absent_optionals_are_tolerated() {
    let mut v = fixture_json("alertmanager-0.25-firing-two-alerts.json");
    v["alerts"][0]["annotations"] = Value::Null;
    v["alerts"][0]["endsAt"] = Value::Null;
    v["alerts"][0]["generatorURL"] = Value::Null;
    v["alerts"][1]["fingerprint"] = json!("");
    v["groupLabels"] = Value::Null;
    for k in ["groupKey", "truncatedAlerts", "commonLabels", "version"] {
        v.as_object_mut().unwrap().remove(k);
    }
    let alerts = parse_alertmanager(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert!(alerts[0].annotations.is_empty());
    assert_eq!(
        alerts[0].summary, "CheckoutErrors",
        "falls back to alertname"
    );
    assert_eq!(
        alerts[1].fingerprint, "ae2907de30db0228",
        "derived when empty"
    );
}

#[test]
fn summary_falls_back_to_description_then_alertname_then_alert() {
    let mut v = fixture_json("prom2teams-resolved-two-alerts.json");
    v["alerts"][0]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("summary");
    v["alerts"][1]["annotations"] = json!({});
    let alerts = parse_alertmanager(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(alerts[0].summary, "disk usage 93% on rootfs device");
    assert_eq!(alerts[1].summary, "DiskSpace");

    v["alerts"][1]["labels"] = json!({});
    let alerts = parse_alertmanager(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(alerts[1].summary, "alert");
}

#[test]
fn per_alert_status_wins_over_group_status() {
    let mut v = fixture_json("alertmanager-0.25-firing-two-alerts.json");
    v["alerts"][1]["status"] = json!("resolved");
    let alerts = parse_alertmanager(&serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(alerts[0].status, AlertStatus::Firing);
    assert_eq!(alerts[1].status, AlertStatus::Resolved);
}

// ---- malformed bodies name the field ----------------------------------------------------------

#[test]
fn every_fixture_cut_in_half_is_refused_as_truncated() {
    for name in FIXTURES {
        let body = fixture(name);
        for cut in [body.len() / 2, body.len() - 2, 1] {
            let e = parse_alertmanager(&body[..cut]).expect_err(name);
            assert!(e.path.is_empty(), "{name}: {e}");
            assert!(
                e.reason.starts_with("truncated JSON at line"),
                "{name}: {e}"
            );
        }
    }
}

#[test]
fn not_json_and_empty_bodies() {
    let e = parse_alertmanager(b"").unwrap_err();
    assert_eq!(e.to_string(), "empty body: expected a JSON document");
    let e = parse_alertmanager(b"  \n ").unwrap_err();
    assert!(e.reason.starts_with("empty body"), "{e}");

    let e = parse_alertmanager(b"status=firing").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("not JSON at line 1 column 1: expected"),
        "{e}"
    );

    let e = parse_alertmanager(b"[1, 2]").unwrap_err();
    assert_eq!(e.to_string(), "expected a JSON object, found an array");

    let e = parse_alertmanager(b"\xff\xfe{}").unwrap_err();
    assert!(e.reason.starts_with("not JSON"), "{e}");

    // Invalid UTF-8 inside a string is refused too, not replaced.
    let e = parse_alertmanager(b"{\"status\": \"fir\xffing\", \"alerts\": []}").unwrap_err();
    assert!(e.reason.starts_with("not JSON"), "{e}");
}

#[test]
fn alerts_missing_or_wrong_type() {
    let mut v = fixture_json("alertmanager-0.25-firing-two-alerts.json");
    v.as_object_mut().unwrap().remove("alerts");
    assert_eq!(err_of(&v).to_string(), "alerts: missing");

    v["alerts"] = json!({"0": {}});
    assert_eq!(
        err_of(&v).to_string(),
        "alerts: expected an array, found an object"
    );

    v["alerts"] = json!([]);
    assert_eq!(
        err_of(&v).to_string(),
        "alerts: expected at least one alert"
    );

    v["alerts"] = json!(["firing"]);
    assert_eq!(
        err_of(&v).to_string(),
        "alerts[0]: expected an object, found a string"
    );

    assert_eq!(err_of(&json!({})).to_string(), "alerts: missing");
}

#[test]
fn wrong_types_inside_an_alert() {
    let base = fixture_json("alertmanager-0.25-firing-two-alerts.json");

    let mut v = base.clone();
    v["alerts"][0]["labels"] = json!(["component", "checkout"]);
    assert_eq!(
        err_of(&v).to_string(),
        "alerts[0].labels: expected an object, found an array"
    );

    let mut v = base.clone();
    v["alerts"][1]["labels"]["severity"] = json!(5);
    assert_eq!(
        err_of(&v).to_string(),
        "alerts[1].labels.severity: expected a string, found a number"
    );

    let mut v = base.clone();
    v["alerts"][0]["annotations"] = json!("down");
    assert_eq!(
        err_of(&v).to_string(),
        "alerts[0].annotations: expected an object, found a string"
    );

    let mut v = base.clone();
    v["alerts"][1]["status"] = json!("pending");
    assert_eq!(
        err_of(&v).to_string(),
        "alerts[1].status: expected one of firing, resolved (found \"pending\")"
    );

    let mut v = base.clone();
    v["alerts"][0]["status"] = json!(true);
    assert!(err_of(&v)
        .to_string()
        .starts_with("alerts[0].status: expected one of firing, resolved"));

    let mut v = base.clone();
    v["alerts"][0]["startsAt"] = json!("yesterday");
    let e = err_of(&v);
    assert_eq!(e.path, "alerts[0].startsAt");
    assert!(e.reason.contains("RFC 3339"), "{e}");

    let mut v = base.clone();
    v["alerts"][0]["endsAt"] = json!(1_700_000_000);
    assert_eq!(
        err_of(&v).to_string(),
        "alerts[0].endsAt: expected a string, found a number"
    );

    let mut v = base.clone();
    v["alerts"][0]["fingerprint"] = json!({"hash": 1});
    assert_eq!(err_of(&v).path, "alerts[0].fingerprint");

    let mut v = base;
    v["status"] = json!("exploded");
    assert!(err_of(&v)
        .to_string()
        .starts_with("status: expected one of firing"));
}

#[test]
fn no_status_anywhere_is_refused() {
    let mut v = fixture_json("prometheus-msteams-firing-single.json");
    v.as_object_mut().unwrap().remove("status");
    assert_eq!(
        err_of(&v).to_string(),
        "alerts[0].status: missing, and the group has no status either"
    );
}

#[test]
fn huge_numbers_and_deep_nesting_do_not_panic() {
    let e = parse_alertmanager(b"{\"truncatedAlerts\": 1e999, \"alerts\": []}").unwrap_err();
    assert!(e.reason.starts_with("not JSON"), "{e}");

    let deep = "[".repeat(10_000);
    let e = parse_alertmanager(deep.as_bytes()).unwrap_err();
    assert!(
        e.reason.contains("recursion limit") || e.reason.starts_with("truncated"),
        "{e}"
    );

    // A big integer where a count is expected is simply an unknown-but-tolerated value.
    let mut v = fixture_json("alertmanager-0.25-firing-two-alerts.json");
    v["truncatedAlerts"] = json!(u64::MAX);
    assert_eq!(
        parse_alertmanager(&serde_json::to_vec(&v).unwrap())
            .unwrap()
            .len(),
        2
    );
}

// ---- generic intake --------------------------------------------------------------------------

#[test]
fn generic_single_object() {
    let events =
        parse_generic(br#"{"component": "api", "status": "down", "summary": "502s", "key": "k1"}"#)
            .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].component, "api");
    assert_eq!(events[0].status, GenericStatus::Down);
    assert_eq!(events[0].status.health(), Health::Down);
    assert_eq!(events[0].summary, "502s");
    assert_eq!(events[0].key.as_deref(), Some("k1"));
}

#[test]
fn generic_array_with_defaults_and_extra_keys() {
    let events = parse_generic(
        br#"[{"component": "db", "status": "Degraded"},
             {"component": "api", "status": "resolved", "summary": null, "team": "core"},
             {"component": "api", "status": "up", "key": ""}]"#,
    )
    .unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].status, GenericStatus::Degraded);
    assert_eq!(events[0].summary, "");
    assert_eq!(events[0].key, None);
    assert_eq!(events[1].status.health(), Health::Up);
    assert_eq!(events[2].key, None, "an empty key is no key");
}

#[test]
fn generic_errors_name_the_field() {
    let cases: &[(&[u8], &str)] = &[
        (br#"{"status": "down"}"#, "component: missing"),
        (br#"{"component": "", "status": "down"}"#, "component: may not be empty"),
        (
            br#"{"component": 7, "status": "down"}"#,
            "component: expected a string, found a number",
        ),
        (br#"{"component": "api"}"#, "status: missing"),
        (
            br#"{"component": "api", "status": "firing"}"#,
            "status: expected one of down, degraded, up, resolved (found \"firing\")",
        ),
        (
            br#"{"component": "api", "status": ["down"]}"#,
            "status: expected one of down, degraded, up, resolved (found an array)",
        ),
        (
            br#"{"component": "api", "status": "down", "summary": {"text": "x"}}"#,
            "summary: expected a string, found an object",
        ),
        (
            br#"{"component": "api", "status": "down", "key": 12}"#,
            "key: expected a string, found a number",
        ),
        (
            br#"[{"component": "api", "status": "down"}, {"component": "db", "status": "sideways"}, {}]"#,
            "[1].status: expected one of down, degraded, up, resolved (found \"sideways\")",
        ),
        (
            br#"[{"component": "api", "status": "down"}, 3]"#,
            "[1]: expected an object, found a number",
        ),
        (b"[]", "expected at least one event, found an empty array"),
        (b"\"down\"", "expected a JSON object or an array of objects, found a string"),
        (b"", "empty body: expected a JSON document"),
    ];
    for (body, want) in cases {
        let e = parse_generic(body).expect_err(want);
        assert_eq!(e.to_string(), *want, "{}", String::from_utf8_lossy(body));
    }
    let e = parse_generic(br#"{"component": "api", "status": "do"#).unwrap_err();
    assert!(e.reason.starts_with("truncated JSON"), "{e}");
}

// ---- routing ---------------------------------------------------------------------------------

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn cfg(component_label: &str, routes: &[(&[(&str, &str)], &str)]) -> IntakeConfig {
    IntakeConfig {
        component_label: component_label.to_string(),
        routes: routes
            .iter()
            .map(|(l, c)| IntakeRoute {
                labels: labels(l),
                component: ComponentId::parse(*c).unwrap(),
            })
            .collect(),
        max_body_bytes: 1 << 20,
    }
}

fn known(id: &str) -> bool {
    matches!(id, "checkout" | "api" | "db" | "payments")
}

#[test]
fn component_label_routes_when_known() {
    let c = cfg("component", &[(&[("team", "blue")], "api")]);
    let alerts = parse("alertmanager-0.25-firing-two-alerts.json");
    assert_eq!(
        route(&alerts[0].labels, &c, &known).as_deref(),
        Some("checkout")
    );
}

#[test]
fn unknown_component_label_falls_through_to_routes() {
    let c = cfg(
        "component",
        &[
            (&[("team", "red")], "db"),
            (&[("team", "blue"), ("zone", "eu-1")], "payments"),
            (&[("team", "blue")], "api"),
        ],
    );
    let alerts = parse("grafana-webhook-firing-docs-example.json");
    // us-1: only the third route matches all its labels.
    assert_eq!(route(&alerts[0].labels, &c, &known).as_deref(), Some("api"));
    // eu-1: the second route matches first.
    assert_eq!(
        route(&alerts[1].labels, &c, &known).as_deref(),
        Some("payments")
    );

    let l = labels(&[("component", "nonexistent"), ("team", "red")]);
    assert_eq!(route(&l, &c, &known).as_deref(), Some("db"));
}

#[test]
fn custom_component_label_and_no_match() {
    let c = cfg("service", &[(&[("severity", "critical")], "api")]);
    let alerts = parse("prom2teams-resolved-two-alerts.json");
    assert_eq!(
        route(&alerts[0].labels, &c, &known),
        None,
        "severe ≠ critical"
    );
    assert_eq!(route(&alerts[1].labels, &c, &known).as_deref(), Some("api"));

    let l = labels(&[("service", "db"), ("component", "api")]);
    assert_eq!(route(&l, &c, &known).as_deref(), Some("db"));

    let nothing = cfg("component", &[]);
    assert_eq!(route(&labels(&[("team", "x")]), &nothing, &known), None);
}

#[test]
fn empty_route_is_a_catch_all() {
    let c = cfg("component", &[(&[("team", "red")], "db"), (&[], "api")]);
    assert_eq!(
        route(&labels(&[("alertname", "X")]), &c, &known).as_deref(),
        Some("api")
    );
}

// ---- never panic ------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_alertmanager(&body);
        let _ = parse_generic(&body);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0..FIXTURES.len(),
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut body = fixture(FIXTURES[which]);
        let i = pos.index(body.len());
        body[i] = byte;
        let end = cut.index(body.len() + 1);
        let _ = parse_alertmanager(&body[..end]);
        let _ = parse_generic(&body[..end]);
    }
}
