//! Vendor status parsing against every real status document in `fixtures/statuspage`, followed
//! components, malformed variants of those documents, and the poller against real HTTP servers
//! on loopback (a page that is up, one that errors, hangs, truncates, lies about its length,
//! is too large, or is not there at all).

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, Utc};
use keel_core::config::{Vendor, VendorFormat};
use keel_core::{Health, VendorId};
use keel_probe::status_pages::{parse, poll, VendorError, VendorStatus, MAX_DOCUMENT_BYTES};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/statuspage")
}

fn fixture(rel: &str) -> Vec<u8> {
    let path = fixtures_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn fixture_json(rel: &str) -> Value {
    serde_json::from_slice(&fixture(rel)).expect("fixture is JSON")
}

fn follow(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn parse_ok(rel: &str, names: &[&str]) -> VendorStatus {
    parse(VendorFormat::Auto, &fixture(rel), &follow(names))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn parse_value(v: &Value, names: &[&str]) -> Result<VendorStatus, VendorError> {
    parse(
        VendorFormat::Auto,
        &serde_json::to_vec(v).unwrap(),
        &follow(names),
    )
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn assert_reason(s: &VendorStatus, parts: &[&str]) {
    for p in parts {
        assert!(s.reason.contains(p), "reason {:?} lacks {p:?}", s.reason);
    }
}

/// Every JSON fixture, its format, the health it must give and words its reason must keep.
const EXPECTED: &[(&str, VendorFormat, Health, &[&str])] = &[
    (
        "cloudamqp-summary-maintenance-in-progress.json",
        VendorFormat::Statuspage,
        Health::Degraded,
        &[
            "Service Under Maintenance",
            "Shared servers: under maintenance",
            "Upgrade of shared servers “jellyfish”, “wildboar”, and “reindeer” (in progress, impact maintenance)",
        ],
    ),
    (
        "discord-incidents-unresolved-empty.json",
        VendorFormat::Statuspage,
        Health::Up,
        &["no unresolved incidents"],
    ),
    (
        "discord-incidents.json",
        VendorFormat::Statuspage,
        Health::Up,
        &["no unresolved incidents"],
    ),
    (
        "discord-scheduled-maintenances-upcoming-empty.json",
        VendorFormat::Statuspage,
        Health::Up,
        &["no maintenance in progress"],
    ),
    (
        "discord-scheduled-maintenances.json",
        VendorFormat::Statuspage,
        Health::Up,
        &["no maintenance in progress"],
    ),
    (
        "discord-status.json",
        VendorFormat::Statuspage,
        Health::Up,
        &["All Systems Operational"],
    ),
    (
        "discord-summary.json",
        VendorFormat::Statuspage,
        Health::Up,
        &["All Systems Operational"],
    ),
    (
        "dropbox-summary-all-operational.json",
        VendorFormat::Statuspage,
        Health::Up,
        &["All Systems Operational"],
    ),
    (
        "github-incident-00km0kwpz23b.json",
        VendorFormat::Statuspage,
        Health::Up,
        &["no unresolved incidents"],
    ),
    (
        "github-incident-rgy28jwprr1c.json",
        VendorFormat::Statuspage,
        Health::Up,
        &["no unresolved incidents"],
    ),
    (
        "github-summary-unresolved-incident.json",
        VendorFormat::Statuspage,
        Health::Degraded,
        &[
            "Minor Service Outage",
            "Packages: partial outage",
            "Incident with Packages and Pages (investigating, impact major) — Packages is now experiencing degraded performance",
        ],
    ),
    (
        "twilio-summary-incidents-upcoming-maintenances.json",
        VendorFormat::Statuspage,
        Health::Degraded,
        &[
            "Partially Degraded Service",
            "CARRIER NETWORK - SMS, Middle East & Africa: degraded performance",
            "SMS Delivery Delays to Mozambique Movitel (investigating, impact minor)",
            "SMS Delivery Delays from Subset of Twilio Short Codes to US Sprint (monitoring, impact minor)",
        ],
    ),
    (
        "other-providers/google-cloud/gcp-incidents.json",
        VendorFormat::GoogleCloud,
        Health::Up,
        &["no ongoing incidents"],
    ),
    (
        "other-providers/heroku/heroku-current-status-maintenance.json",
        VendorFormat::Heroku,
        Health::Degraded,
        &["maintenance", "Data: blue (maintenance)"],
    ),
    (
        "other-providers/instatus/instatus-summary-docs-example.json",
        VendorFormat::Instatus,
        Health::Down,
        &[
            "Instatus has issues",
            "We're facing an issue with our API (INVESTIGATING, impact MAJOROUTAGE)",
        ],
    ),
    (
        "other-providers/slack-status/slack-current-active-incident.json",
        VendorFormat::Slack,
        Health::Degraded,
        &[
            "2 active incidents",
            "We are investigating an issue with notification settings (active, impact incident) — Some users might notice",
            "We're looking into an issue with certain API calls",
        ],
    ),
    (
        "other-providers/slack-status/slack-current-ok-docs-example.json",
        VendorFormat::Slack,
        Health::Up,
        &["ok: no active incidents"],
    ),
    (
        "other-providers/statusio/docker-status-partial-disruption.json",
        VendorFormat::StatusIo,
        Health::Degraded,
        &[
            "Partial Service Disruption",
            "Docker Hub Automated Builds: partial service disruption",
            "Docker Hub automated builds issue (investigating, impact partial service disruption) — We are investigating reports of automated builds getting stuck",
        ],
    ),
    (
        "other-providers/statusio/gitlab-status-planned-maintenance.json",
        VendorFormat::StatusIo,
        Health::Degraded,
        &[
            "Planned Maintenance",
            "dashboards.gitlab.com: planned maintenance",
            "Maintenance on dashboards.gitlab.com (maintenance in progress",
            "500 Error - User Notification Settings (identified",
        ],
    ),
    (
        "other-providers/statusio/gitlab-status-security-issue.json",
        VendorFormat::StatusIo,
        Health::Degraded,
        &["Security Issue", "Website: security issue"],
    ),
];

fn all_json_fixtures(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_json_fixtures(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            let rel = path.strip_prefix(fixtures_dir()).unwrap();
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

// ---- every fixture ---------------------------------------------------------------------------

#[test]
fn every_fixture_is_covered_by_an_expectation() {
    let mut found = Vec::new();
    all_json_fixtures(&fixtures_dir(), &mut found);
    found.sort();
    let mut expected: Vec<String> = EXPECTED.iter().map(|(f, ..)| f.to_string()).collect();
    expected.sort();
    assert_eq!(found, expected, "a fixture was added or removed");
}

#[test]
fn every_fixture_parses_to_its_expected_health_and_reason() {
    for (rel, format, health, parts) in EXPECTED {
        let auto = parse_ok(rel, &[]);
        assert_eq!(auto.health, *health, "{rel}: {}", auto.reason);
        assert_reason(&auto, parts);
        assert!(
            auto.reason.chars().count() <= 1000,
            "{rel}: reason too long"
        );
        // Detection picked the right format: naming it gives the same answer.
        let named = parse(*format, &fixture(rel), &[]).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(named, auto, "{rel}");
    }
}

#[test]
fn github_summary_keeps_the_vendors_words() {
    let s = parse_ok("github-summary-unresolved-incident.json", &[]);
    assert_eq!(s.updated_at, Some(at("2022-11-25T15:50:05.892Z")));
    assert_eq!(s.components.len(), 11);
    let packages = s.components.iter().find(|c| c.name == "Packages").unwrap();
    assert_eq!(packages.status, "partial_outage");
    assert_eq!(packages.health, Health::Degraded);
    assert_eq!(packages.id, "st3j38cctv9l");

    assert_eq!(s.incidents.len(), 1);
    let i = &s.incidents[0];
    assert_eq!(i.id, "ljwdk6qml8z8");
    assert_eq!(i.name, "Incident with Packages and Pages");
    assert_eq!(i.status, "investigating");
    assert_eq!(i.impact, "major");
    assert_eq!(i.url.as_deref(), Some("https://stspg.io/33vh8r7z43kh"));
    // The newest of the seven updates, not the first written.
    assert_eq!(
        i.latest_update.as_deref(),
        Some("Packages is now experiencing degraded performance. We are still investigating and will provide an update when we have one.")
    );
}

#[test]
fn dropbox_all_operational() {
    let s = parse_ok("dropbox-summary-all-operational.json", &[]);
    assert_eq!(s.reason, "All Systems Operational");
    assert_eq!(s.components.len(), 11);
    assert!(s.components.iter().all(|c| c.health == Health::Up));
    assert!(s.incidents.is_empty());
}

#[test]
fn cloudamqp_maintenance_in_progress() {
    let s = parse_ok("cloudamqp-summary-maintenance-in-progress.json", &[]);
    assert!(s.reason.to_lowercase().contains("maintenance"));
    assert_eq!(s.incidents.len(), 1);
    assert_eq!(s.incidents[0].status, "in_progress");
    assert_eq!(s.incidents[0].impact, "maintenance");
    assert_eq!(
        s.incidents[0].latest_update.as_deref(),
        Some(
            "Scheduled maintenance is currently in progress. We will provide updates as necessary."
        )
    );
}

#[test]
fn twilio_incidents_but_not_upcoming_maintenances() {
    let s = parse_ok("twilio-summary-incidents-upcoming-maintenances.json", &[]);
    assert_eq!(s.components.len(), 73);
    let names: Vec<_> = s.incidents.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "SMS Delivery Delays to Mozambique Movitel",
            "SMS Delivery Delays from Subset of Twilio Short Codes to US Sprint"
        ],
        "nine scheduled maintenances are upcoming, not ongoing"
    );
    // -07:00 offsets are read as instants.
    assert_eq!(s.updated_at, Some(at("2020-06-16T21:00:29.031Z")));
}

#[test]
fn status_json_has_no_components() {
    let s = parse_ok("discord-status.json", &[]);
    assert!(s.components.is_empty());
    assert_eq!(s.updated_at, Some(at("2022-02-15T21:37:37.407Z")));
}

#[test]
fn slack_incidents_keep_ids_and_urls() {
    let s = parse_ok(
        "other-providers/slack-status/slack-current-active-incident.json",
        &[],
    );
    assert_eq!(s.incidents.len(), 2);
    assert_eq!(s.incidents[0].id, "878");
    assert_eq!(s.incidents[0].impact, "incident");
    assert_eq!(
        s.incidents[0].url.as_deref(),
        Some("https://status.slack.com/2020-07/ea58a170d343b2ad")
    );
    let services: Vec<_> = s.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(services, ["Notifications", "Apps/Integrations/APIs"]);
}

#[test]
fn heroku_systems_are_components() {
    let s = parse_ok(
        "other-providers/heroku/heroku-current-status-maintenance.json",
        &[],
    );
    let got: Vec<_> = s
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.status.as_str(), c.health))
        .collect();
    assert_eq!(
        got,
        [
            ("Apps", "green", Health::Up),
            ("Data", "blue", Health::Degraded),
            ("Tools", "green", Health::Up)
        ]
    );
    assert!(s.incidents.is_empty(), "the one maintenance is resolved");
}

#[test]
fn gcp_past_incidents_are_not_ongoing() {
    let s = parse_ok("other-providers/google-cloud/gcp-incidents.json", &[]);
    assert!(s.incidents.is_empty());
    assert_eq!(s.updated_at, Some(at("2022-07-01T19:25:45Z")));
}

/// The GCP capture has only ended incidents; reopening one (removing its `end`) shows how an
/// ongoing one is read, on a real record.
fn gcp_with_ongoing(status_impact: &str) -> (Value, String, String) {
    let mut doc = fixture_json("other-providers/google-cloud/gcp-incidents.json");
    let list = doc.as_array_mut().unwrap();
    let i = list
        .iter()
        .position(|x| x["status_impact"] == status_impact)
        .expect("an incident of that impact");
    list[i]["end"] = Value::Null;
    let desc = list[i]["external_desc"].as_str().unwrap().to_string();
    let product = list[i]["affected_products"][0]["title"]
        .as_str()
        .unwrap()
        .to_string();
    (doc, desc, product)
}

#[test]
fn gcp_ongoing_incidents_by_impact() {
    for (impact, health) in [
        ("SERVICE_OUTAGE", Health::Down),
        ("SERVICE_DISRUPTION", Health::Degraded),
        ("SERVICE_INFORMATION", Health::Up),
    ] {
        let (doc, desc, product) = gcp_with_ongoing(impact);
        let s = parse_value(&doc, &[]).unwrap();
        assert_eq!(s.health, health, "{impact}: {}", s.reason);
        assert_eq!(s.incidents.len(), 1);
        assert_eq!(s.incidents[0].impact, impact);
        assert!(s.incidents[0]
            .url
            .as_deref()
            .unwrap()
            .starts_with("https://status.cloud.google.com/incidents/"));
        assert!(s.incidents[0].latest_update.is_some());
        assert_reason(&s, &["1 ongoing incident", desc.trim()]);
        assert!(s.components.iter().any(|c| c.name == product));
    }
}

// ---- following components ----------------------------------------------------------------------

#[test]
fn follow_a_failing_component_by_name_or_id() {
    for wanted in ["Packages", "packages", "st3j38cctv9l"] {
        let s = parse_ok("github-summary-unresolved-incident.json", &[wanted]);
        assert_eq!(s.health, Health::Degraded, "{wanted}");
        assert_eq!(s.components.len(), 1);
        assert_eq!(s.components[0].name, "Packages");
        assert_eq!(s.incidents.len(), 1, "the incident affects Packages");
        assert_reason(
            &s,
            &[
                "Packages: partial outage",
                "Incident with Packages and Pages",
            ],
        );
    }
}

#[test]
fn follow_a_healthy_component_ignores_the_rest_of_the_page() {
    let s = parse_ok(
        "github-summary-unresolved-incident.json",
        &["Git Operations"],
    );
    assert_eq!(s.health, Health::Up, "{}", s.reason);
    assert!(
        s.incidents.is_empty(),
        "the incident does not touch Git Operations"
    );
    assert_reason(&s, &["Git Operations: operational"]);
}

#[test]
fn follow_names_a_missing_component() {
    let s = parse_ok(
        "github-summary-unresolved-incident.json",
        &["Packages", "Gists"],
    );
    assert_eq!(s.health, Health::Degraded);
    assert_reason(&s, &["not on the page: Gists"]);

    let s = parse_ok("github-summary-unresolved-incident.json", &["Gists", " "]);
    assert_eq!(s.health, Health::Unknown);
    assert_reason(
        &s,
        &[
            "none of the followed components are on the page: Gists",
            "Minor Service Outage",
        ],
    );
    assert!(s.components.is_empty());
}

#[test]
fn follow_grouped_components() {
    let rel = "twilio-summary-incidents-upcoming-maintenances.json";
    let s = parse_ok(rel, &["CARRIER NETWORK - SMS, Middle East & Africa"]);
    assert_eq!(s.health, Health::Degraded);
    let names: Vec<_> = s.incidents.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["SMS Delivery Delays to Mozambique Movitel"]);

    let s = parse_ok(rel, &["PROGRAMMABLE VOICE"]);
    assert_eq!(s.health, Health::Up, "{}", s.reason);
    let s = parse_ok(rel, &["PROGRAMMABLE MESSAGING"]);
    assert_eq!(s.health, Health::Degraded, "a group reports its children");
}

#[test]
fn follow_under_maintenance() {
    let rel = "cloudamqp-summary-maintenance-in-progress.json";
    let s = parse_ok(rel, &["Dedicated servers"]);
    assert_eq!(s.health, Health::Up);
    assert!(s.incidents.is_empty());
    let s = parse_ok(rel, &["Shared servers"]);
    assert_eq!(s.health, Health::Degraded);
    assert_eq!(s.incidents.len(), 1);
    assert_reason(&s, &["under maintenance"]);
}

#[test]
fn follow_on_a_page_without_components_reports_the_whole_page() {
    let s = parse_ok("discord-status.json", &["API"]);
    assert_eq!(s.health, Health::Up);
    assert_reason(&s, &["lists no components", "API"]);
    let s = parse_ok(
        "other-providers/instatus/instatus-summary-docs-example.json",
        &["API"],
    );
    assert_eq!(s.health, Health::Down);
    assert_reason(&s, &["lists no components"]);
}

#[test]
fn follow_statusio_and_heroku_components() {
    let rel = "other-providers/statusio/docker-status-partial-disruption.json";
    assert_eq!(parse_ok(rel, &["Docker Hub Web"]).health, Health::Up);
    let s = parse_ok(rel, &["docker hub automated builds"]);
    assert_eq!(s.health, Health::Degraded);
    assert_eq!(s.incidents.len(), 1);

    let rel = "other-providers/heroku/heroku-current-status-maintenance.json";
    assert_eq!(parse_ok(rel, &["Apps"]).health, Health::Up);
    assert_eq!(parse_ok(rel, &["Data"]).health, Health::Degraded);
}

#[test]
fn follow_through_incidents_when_the_page_lists_none() {
    let rel = "other-providers/slack-status/slack-current-active-incident.json";
    let s = parse_ok(rel, &["notifications"]);
    assert_eq!(s.health, Health::Degraded);
    assert_eq!(s.incidents.len(), 1);
    let s = parse_ok(rel, &["Messaging"]);
    assert_eq!(s.health, Health::Up);
    assert_eq!(s.reason, "no ongoing incident affects Messaging");

    let (doc, _, product) = gcp_with_ongoing("SERVICE_OUTAGE");
    let s = parse_value(&doc, &[&product]).unwrap();
    assert_eq!(s.health, Health::Down);
    let s = parse_value(&doc, &["A product with no incident"]).unwrap();
    assert_eq!(s.health, Health::Up);

    // A Statuspage incident list, with its one incident reopened.
    let mut doc = fixture_json("discord-incidents.json");
    doc["incidents"][0]["status"] = json!("investigating");
    let s = parse_value(&doc, &[]).unwrap();
    assert_eq!(s.health, Health::Degraded, "impact minor");
    assert_reason(&s, &["Messaging issues (investigating, impact minor)"]);
    assert_eq!(
        parse_value(&doc, &["API"]).unwrap().health,
        Health::Degraded
    );
    assert_eq!(parse_value(&doc, &["Voice"]).unwrap().health, Health::Up);
}

// ---- long and non-ASCII text ---------------------------------------------------------------------

#[test]
fn long_non_ascii_updates_are_cut_on_a_character_boundary() {
    // Discord's kaomoji maintenance, put back in progress, with its body made long.
    let mut doc = fixture_json("discord-scheduled-maintenances.json");
    let m = &mut doc["scheduled_maintenances"][0];
    m["status"] = json!("in_progress");
    let body = m["incident_updates"][0]["body"]
        .as_str()
        .unwrap()
        .repeat(20);
    m["incident_updates"][0]["body"] = json!(body);
    let s = parse_value(&doc, &[]).unwrap();
    assert_eq!(s.health, Health::Degraded);
    assert_reason(
        &s,
        &["(ﾉ◕ヮ◕)ﾉ*:･ﾟ✧ Server Juice (in progress, impact major) — (ﾉ◕ヮ◕)ﾉ"],
    );
    assert!(s.reason.contains('…'));
    assert!(!s.reason.contains('\r') && !s.reason.contains('\n'));
    let update = s.incidents[0].latest_update.as_deref().unwrap();
    assert!(update.chars().count() <= 2000);
    assert!(update.ends_with('…'));
}

// ---- malformed documents ---------------------------------------------------------------------

#[test]
fn every_fixture_truncated_is_an_error() {
    for (rel, format, ..) in EXPECTED {
        let body = fixture(rel);
        for cut in [
            1,
            body.len() / 4,
            body.len() / 2,
            body.len() * 3 / 4,
            body.len() - 2,
        ] {
            for f in [VendorFormat::Auto, *format] {
                let e = parse(f, &body[..cut], &[]).expect_err(rel);
                assert!(
                    matches!(e, VendorError::NotJson(_)),
                    "{rel} cut at {cut}: {e}"
                );
                assert!(e.to_string().starts_with("truncated JSON at line"), "{e}");
            }
        }
    }
}

#[test]
fn wrong_shapes_are_unrecognised() {
    for body in [
        &b"[1, 2, 3]"[..],
        b"[]",
        b"[{\"id\": 1}]",
        b"{\"status\": 5}",
        b"{}",
        b"\"all good\"",
        b"42",
        b"null",
        b"{\"page\": {\"name\": \"x\"}}",
    ] {
        let e = parse(VendorFormat::Auto, body, &[]).expect_err("unrecognised");
        assert!(
            matches!(e, VendorError::Unrecognised(_)),
            "{}: {e}",
            String::from_utf8_lossy(body)
        );
        assert!(
            e.to_string()
                .starts_with("unrecognised document: expected a Statuspage summary"),
            "{e}"
        );
    }
    let e = parse(VendorFormat::Auto, b"{\"status\": 5}", &[]).unwrap_err();
    assert!(
        e.to_string().ends_with("found an object with keys status"),
        "{e}"
    );
}

#[test]
fn a_named_format_that_does_not_fit_is_an_error() {
    let slack = fixture("other-providers/slack-status/slack-current-ok-docs-example.json");
    let summary = fixture("github-summary-unresolved-incident.json");
    let cases = [
        (
            VendorFormat::Statuspage,
            &b"{\"status\": 5}"[..],
            "status: expected an object, found a number",
        ),
        (
            VendorFormat::Statuspage,
            &slack,
            "status: expected an object, found a string",
        ),
        (
            VendorFormat::Statuspage,
            b"[]",
            "expected an object, found an array",
        ),
        (VendorFormat::StatusIo, &summary, "missing field `result`"),
        (
            VendorFormat::Slack,
            &summary,
            "status: expected a string, found an object",
        ),
        (VendorFormat::Instatus, &summary, "page.status: missing"),
        (
            VendorFormat::GoogleCloud,
            &summary,
            "expected an array, found an object",
        ),
        (
            VendorFormat::Heroku,
            &summary,
            "status: expected an array, found an object",
        ),
    ];
    for (format, body, want) in cases {
        let e = parse(format, body, &[]).expect_err(want);
        let got = e.to_string();
        assert!(
            got == want
                || got.contains(want)
                || (want.ends_with(": missing")
                    && got == format!("missing field `{}`", want.trim_end_matches(": missing"))),
            "{format:?}: got {got:?}, want {want:?}"
        );
    }
    // Statuspage's own empty lists are fine under the named format; Google's is too.
    assert_eq!(
        parse(VendorFormat::GoogleCloud, b"[]", &[]).unwrap().health,
        Health::Up
    );
}

#[test]
fn missing_and_mistyped_fields_are_named() {
    let base = fixture_json("github-summary-unresolved-incident.json");

    let mut v = base.clone();
    v["components"][3].as_object_mut().unwrap().remove("status");
    assert_eq!(
        parse_value(&v, &[]).unwrap_err().to_string(),
        "missing field `components[3].status`"
    );

    let mut v = base.clone();
    v["status"].as_object_mut().unwrap().remove("indicator");
    assert_eq!(
        parse_value(&v, &[]).unwrap_err().to_string(),
        "missing field `status.indicator`"
    );

    let mut v = base.clone();
    v["status"]["indicator"] = json!("purple");
    assert_eq!(
        parse_value(&v, &[]).unwrap_err().to_string(),
        "status: indicator: expected one of none, minor, major, critical, maintenance (found \"purple\")"
    );

    let mut v = base.clone();
    v["incidents"][0]["name"] = json!(5);
    assert_eq!(
        parse_value(&v, &[]).unwrap_err().to_string(),
        "incidents[0].name: expected a string, found a number"
    );

    let mut v = base.clone();
    v["incidents"][0]["incident_updates"] = json!({"body": "x"});
    assert_eq!(
        parse_value(&v, &[]).unwrap_err().to_string(),
        "incidents[0].incident_updates: expected an array, found an object"
    );

    let mut v = base;
    v["components"] = json!("all fine");
    assert_eq!(
        parse_value(&v, &[]).unwrap_err().to_string(),
        "components: expected an array, found a string"
    );

    // An unknown component status is not an error: that component is unknown.
    let mut v = fixture_json("dropbox-summary-all-operational.json");
    v["components"][0]["status"] = json!("on_fire");
    let name = v["components"][0]["name"].as_str().unwrap().to_string();
    let s = parse_value(&v, &[]).unwrap();
    assert_eq!(
        s.health,
        Health::Up,
        "the indicator still speaks for the page"
    );
    assert_eq!(parse_value(&v, &[&name]).unwrap().health, Health::Unknown);

    let mut v = fixture_json("other-providers/slack-status/slack-current-ok-docs-example.json");
    v["status"] = json!("meh");
    assert_eq!(
        parse(VendorFormat::Slack, &serde_json::to_vec(&v).unwrap(), &[])
            .unwrap_err()
            .to_string(),
        "status: expected one of ok, active, broken (found \"meh\")"
    );
    v["status"] = json!("broken");
    let s = parse_value(&v, &[]).unwrap();
    assert_eq!(s.health, Health::Unknown);
    assert_reason(&s, &["broken"]);
}

#[test]
fn huge_numbers_are_errors_not_panics() {
    let mut v = fixture_json("other-providers/statusio/docker-status-partial-disruption.json");
    // A marker value put where the overall code goes, then replaced by literals JSON values
    // cannot hold.
    v["result"]["status_overall"]["status_code"] = json!(424242);
    let text = serde_json::to_string(&v).unwrap();
    let with = |literal: &str| text.replacen("424242", literal, 1);

    // Out of f64 range: serde_json refuses it as JSON.
    let e = parse(VendorFormat::Auto, with("1e400").as_bytes(), &[]).unwrap_err();
    assert!(e.to_string().contains("number out of range"), "{e}");

    // Larger than u64: read as a float, which is no status code.
    for literal in ["99999999999999999999999", "400.5", "-400"] {
        let e = parse(VendorFormat::Auto, with(literal).as_bytes(), &[]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "result.status_overall.status_code: expected a status code (100, 200, 300, 400, 500 or 600)",
            "{literal}"
        );
    }

    v["result"]["status_overall"]["status_code"] = json!(700);
    assert_eq!(
        parse_value(&v, &[]).unwrap_err().to_string(),
        "result.status_overall.status_code: unknown status code 700 (expected 100, 200, 300, 400, 500 or 600)"
    );

    // GitHub's tweet_id beyond 2^53 is simply carried along.
    assert_eq!(
        parse_ok("github-incident-rgy28jwprr1c.json", &[]).health,
        Health::Up
    );
}

#[test]
fn empty_non_utf8_html_and_deep_bodies() {
    assert_eq!(parse(VendorFormat::Auto, b"", &[]), Err(VendorError::Empty));
    assert_eq!(
        parse(VendorFormat::Statuspage, b" \r\n\t", &[])
            .unwrap_err()
            .to_string(),
        "empty document"
    );

    let e = parse(VendorFormat::Auto, b"\xff\xfe\x00{", &[]).unwrap_err();
    assert!(
        e.to_string().starts_with("not JSON at line 1 column 1"),
        "{e}"
    );

    // Invalid UTF-8 inside a vendor's string.
    let mut body = fixture("dropbox-summary-all-operational.json");
    let at = body.windows(7).position(|w| w == b"Dropbox").unwrap();
    body[at] = 0xff;
    let e = parse(VendorFormat::Auto, &body, &[]).unwrap_err();
    assert!(e.to_string().starts_with("not JSON at line"), "{e}");

    let e = parse(
        VendorFormat::Auto,
        b"<!DOCTYPE html><html><body>GitHub Status</body></html>",
        &[],
    )
    .unwrap_err();
    assert!(e.to_string().contains("looks like HTML"), "{e}");

    let deep = "[".repeat(100_000);
    assert!(parse(VendorFormat::Auto, deep.as_bytes(), &[]).is_err());

    // A byte-order mark is not a reason to give up on a good document.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(fixture("discord-status.json"));
    assert_eq!(
        parse(VendorFormat::Auto, &bom, &[]).unwrap().health,
        Health::Up
    );
}

/// A small deterministic generator: the tests may not depend on chance.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let smaller: Vec<_> = EXPECTED
        .iter()
        .filter(|(rel, ..)| !rel.contains("google-cloud"))
        .collect();
    for (rel, format, ..) in smaller {
        let original = fixture(rel);
        for _ in 0..200 {
            let mut body = original.clone();
            for _ in 0..(1 + rng.next() % 4) {
                let i = (rng.next() % body.len() as u64) as usize;
                body[i] = (rng.next() & 0xff) as u8;
            }
            let end = (rng.next() % (body.len() as u64 + 1)) as usize;
            for f in [VendorFormat::Auto, *format, VendorFormat::Statuspage] {
                let _ = parse(f, &body[..end], &follow(&["API", "Packages"]));
            }
        }
    }
}

// ---- the poller against real servers ---------------------------------------------------------

fn vendor(url: String, timeout: Duration, components: &[&str]) -> Vendor {
    Vendor {
        id: VendorId::parse("github").unwrap(),
        name: "GitHub".into(),
        status_url: url,
        interval: Duration::from_secs(60),
        timeout,
        confidential: false,
        components: follow(components),
        format: VendorFormat::Auto,
    }
}

fn json_response(body: Vec<u8>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], body)
}

/// Serves a status page on 127.0.0.1:0; the server stops when the returned handle drops.
async fn spawn_status_server() -> (String, tokio::task::JoinHandle<()>) {
    let summary = fixture("github-summary-unresolved-incident.json");
    let half = summary[..summary.len() / 2].to_vec();
    let app = Router::new()
        .route(
            "/up",
            get({
                let s = summary.clone();
                move || async move { json_response(s) }
            }),
        )
        .route(
            "/error",
            get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "oops") }),
        )
        .route(
            "/hang",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        )
        .route(
            "/truncated",
            get(move || async move { json_response(half) }),
        )
        .route(
            "/html",
            get(|| async { "<html><body>Status</body></html>" }),
        )
        .route(
            "/huge",
            get(|| async { json_response(vec![b' '; MAX_DOCUMENT_BYTES + 1]) }),
        )
        .route(
            "/huge-chunked",
            get(|| async {
                // No Content-Length: the cap must hold while reading.
                let chunk = vec![b' '; 256 * 1024];
                let chunks = (0..(MAX_DOCUMENT_BYTES / chunk.len() + 2))
                    .map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
                Body::from_stream(futures::stream::iter(chunks))
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (base, handle)
}

async fn poll_guarded(v: &Vendor) -> keel_probe::status_pages::VendorPoll {
    let client = reqwest::Client::new();
    // Hang guard only: poll bounds itself by the vendor's timeout.
    tokio::time::timeout(Duration::from_secs(60), poll(&client, v))
        .await
        .expect("poll returned")
}

#[tokio::test]
async fn poll_a_page_that_is_up() {
    let (base, server) = spawn_status_server().await;
    let p = poll_guarded(&vendor(format!("{base}/up"), Duration::from_secs(10), &[])).await;
    assert!(!p.error);
    assert_eq!(p.status.health, Health::Degraded);
    assert_reason(&p.status, &["Incident with Packages and Pages"]);

    let p = poll_guarded(&vendor(
        format!("{base}/up"),
        Duration::from_secs(10),
        &["Git Operations"],
    ))
    .await;
    assert!(!p.error);
    assert_eq!(p.status.health, Health::Up, "follow applies to polls");
    server.abort();
}

#[tokio::test]
async fn poll_failures_are_unknown_with_a_reason() {
    let (base, server) = spawn_status_server().await;
    let cases = [
        (
            "/error",
            Duration::from_secs(10),
            "HTTP 500 from status page",
        ),
        ("/hang", Duration::from_millis(300), "timed out after 300ms"),
        (
            "/truncated",
            Duration::from_secs(10),
            "malformed: truncated JSON at line",
        ),
        (
            "/html",
            Duration::from_secs(10),
            "malformed: not JSON (it looks like HTML",
        ),
        (
            "/huge",
            Duration::from_secs(10),
            "status document larger than 4 MiB",
        ),
        (
            "/huge-chunked",
            Duration::from_secs(10),
            "status document larger than 4 MiB",
        ),
        (
            "/missing",
            Duration::from_secs(10),
            "HTTP 404 from status page",
        ),
    ];
    for (path, timeout, want) in cases {
        let p = poll_guarded(&vendor(format!("{base}{path}"), timeout, &[])).await;
        assert!(p.error, "{path}");
        assert_eq!(p.status.health, Health::Unknown, "{path}");
        assert!(
            p.status.reason.starts_with(want),
            "{path}: {:?} should start with {want:?}",
            p.status.reason
        );
        assert!(p.status.incidents.is_empty() && p.status.components.is_empty());
    }
    server.abort();
}

#[tokio::test]
async fn poll_a_closed_port() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let p = poll_guarded(&vendor(
        format!("http://{addr}/api/v2/summary.json"),
        Duration::from_secs(10),
        &[],
    ))
    .await;
    assert!(p.error);
    assert_eq!(p.status.health, Health::Unknown);
    assert_eq!(p.status.reason, "unreachable: connection refused");
}

#[tokio::test]
async fn poll_a_server_that_drops_the_connection_mid_body() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let _ = sock
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                      content-length: 10000\r\n\r\n{\"page\": {",
                )
                .await;
            // Dropping the socket here cuts the promised body short.
        }
    });
    let p = poll_guarded(&vendor(
        format!("http://{addr}/api/v2/summary.json"),
        Duration::from_secs(10),
        &[],
    ))
    .await;
    assert!(p.error);
    assert_eq!(p.status.health, Health::Unknown);
    assert!(
        p.status
            .reason
            .starts_with("connection lost while reading the status document"),
        "{}",
        p.status.reason
    );
    server.abort();
}

#[tokio::test]
async fn poll_a_bad_url() {
    let p = poll_guarded(&vendor("not a url".into(), Duration::from_secs(10), &[])).await;
    assert!(p.error);
    assert_eq!(p.status.health, Health::Unknown);
    assert!(
        p.status.reason.starts_with("bad status_url"),
        "{}",
        p.status.reason
    );
}
