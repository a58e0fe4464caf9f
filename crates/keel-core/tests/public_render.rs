//! The public renderers against the real world: Statuspage v2 documents compared key for key
//! with real pages' documents (fixtures/statuspage), feeds read back by a real feed parser
//! (feed-rs) beside real Statuspage feeds, badges checked as XML, all with hostile and
//! Japanese text.

mod sample;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use keel_core::public::{badge, feed, statuspage, Snapshot};
use serde_json::Value;

use sample::{HOSTILE, INTERNAL_ID};

fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn fixture_json(rel: &str) -> Value {
    serde_json::from_slice(&fixture(rel)).unwrap()
}

/// Path → the union of the keys of every object found there ("[]" marks array elements).
type Shape = BTreeMap<String, BTreeSet<String>>;

fn shape(v: &Value) -> Shape {
    fn walk(v: &Value, path: &str, out: &mut Shape) {
        match v {
            Value::Object(m) => {
                out.entry(path.to_string())
                    .or_default()
                    .extend(m.keys().cloned());
                for (k, x) in m {
                    walk(x, &format!("{path}.{k}"), out);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, &format!("{path}[]"), out)),
            _ => {}
        }
    }
    let mut out = Shape::new();
    walk(v, "", &mut out);
    out
}

/// Every object we write has exactly the keys the real document has at the same place, and
/// every place listed in `must_have` is filled (so an empty list cannot pass by saying
/// nothing).
fn assert_same_keys(doc: &str, ours: &Value, real: &Shape, must_have: &[&str]) {
    let mine = shape(ours);
    for (path, keys) in &mine {
        let want = real
            .get(path)
            .unwrap_or_else(|| panic!("{doc}: we write {path}, which the real document has not"));
        assert_eq!(keys, want, "{doc}: keys at {path:?}");
    }
    for p in must_have {
        assert!(mine.contains_key(*p), "{doc}: nothing written at {p}");
    }
}

/// Components as today's Statuspage writes them (with `start_date`; the 2020 captures of
/// CloudAMQP and Twilio predate that key). Maintenance fixtures are all from 2020, so their
/// nested components are compared against this instead.
fn modern_component_keys() -> BTreeSet<String> {
    shape(&fixture_json(
        "statuspage/github-summary-unresolved-incident.json",
    ))[".components[]"]
        .clone()
}

fn real_summary_shape() -> Shape {
    let mut real = Shape::new();
    for f in [
        "statuspage/github-summary-unresolved-incident.json",
        "statuspage/dropbox-summary-all-operational.json",
        "statuspage/discord-summary.json",
    ] {
        for (p, k) in shape(&fixture_json(f)) {
            real.entry(p).or_default().extend(k);
        }
    }
    // Maintenances in a summary, from the 2020 captures, with today's component keys.
    for (p, k) in shape(&fixture_json(
        "statuspage/cloudamqp-summary-maintenance-in-progress.json",
    )) {
        if p.starts_with(".scheduled_maintenances") {
            real.insert(p, k);
        }
    }
    real.insert(
        ".scheduled_maintenances[].components[]".into(),
        modern_component_keys(),
    );
    real
}

fn real_maintenances_shape() -> Shape {
    let mut real = shape(&fixture_json(
        "statuspage/discord-scheduled-maintenances.json",
    ));
    for (p, k) in shape(&fixture_json(
        "statuspage/cloudamqp-summary-maintenance-in-progress.json",
    )) {
        if p.starts_with(".scheduled_maintenances") {
            real.insert(p, k);
        }
    }
    real.insert(
        ".scheduled_maintenances[].components[]".into(),
        modern_component_keys(),
    );
    real
}

const COMPONENT_STATUSES: &[&str] = &[
    "operational",
    "degraded_performance",
    "partial_outage",
    "major_outage",
    "under_maintenance",
];
const INCIDENT_STATUSES: &[&str] = &[
    "investigating",
    "identified",
    "monitoring",
    "resolved",
    "postmortem",
];
const MAINTENANCE_STATUSES: &[&str] = &["scheduled", "in_progress", "verifying", "completed"];
const IMPACTS: &[&str] = &["none", "minor", "major", "critical", "maintenance"];
const INDICATORS: &[&str] = &["none", "minor", "major", "critical", "maintenance"];

/// Every enum-valued field anywhere in a document holds one of Statuspage's values, and every
/// timestamp reads as RFC 3339.
fn assert_valid_values(doc: &str, v: &Value) {
    fn walk(doc: &str, v: &Value, path: &str) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    let p = format!("{path}.{k}");
                    let s = x.as_str();
                    let one_of = |allowed: &[&str]| {
                        let s = s.unwrap_or_else(|| panic!("{doc}: {p} is not a string: {x}"));
                        assert!(
                            allowed.contains(&s),
                            "{doc}: {p} = {s:?} is not one of {allowed:?}"
                        );
                    };
                    match k.as_str() {
                        "indicator" => one_of(INDICATORS),
                        "impact" => one_of(IMPACTS),
                        "status" if path.ends_with("components[]") => one_of(COMPONENT_STATUSES),
                        "status" if path.contains("scheduled_maintenances") => {
                            one_of(MAINTENANCE_STATUSES)
                        }
                        "status" if path.contains("incident") => one_of(INCIDENT_STATUSES),
                        k if k.ends_with("_at")
                            || k == "scheduled_for"
                            || k == "scheduled_until" =>
                        {
                            if let Some(s) = s {
                                chrono::DateTime::parse_from_rfc3339(s)
                                    .unwrap_or_else(|e| panic!("{doc}: {p} = {s:?}: {e}"));
                            } else {
                                assert!(x.is_null(), "{doc}: {p} = {x}");
                            }
                        }
                        "position" => assert!(x.is_u64(), "{doc}: {p} = {x}"),
                        "group"
                        | "showcase"
                        | "only_show_if_degraded"
                        | "deliver_notifications" => {
                            assert!(x.is_boolean(), "{doc}: {p} = {x}")
                        }
                        _ => {}
                    }
                    walk(doc, x, &p);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(doc, x, &format!("{path}[]"))),
            _ => {}
        }
    }
    walk(doc, v, "");
}

fn all_documents(s: &Snapshot, locale: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("summary", statuspage::summary(s, locale)),
        ("status", statuspage::status(s, locale)),
        ("components", statuspage::components(s, locale)),
        ("incidents", statuspage::incidents(s, locale)),
        (
            "incidents/unresolved",
            statuspage::incidents_unresolved(s, locale),
        ),
        (
            "scheduled-maintenances",
            statuspage::scheduled_maintenances(s, locale),
        ),
        (
            "scheduled-maintenances/upcoming",
            statuspage::scheduled_maintenances_upcoming(s, locale),
        ),
        (
            "scheduled-maintenances/active",
            statuspage::scheduled_maintenances_active(s, locale),
        ),
    ]
}

#[test]
fn summary_has_the_real_keys_at_every_level() {
    let ours = statuspage::summary(&sample::snapshot(), "en");
    assert_same_keys(
        "summary",
        &ours,
        &real_summary_shape(),
        &[
            ".page",
            ".status",
            ".components[]",
            ".incidents[]",
            ".incidents[].incident_updates[]",
            ".incidents[].components[]",
            ".scheduled_maintenances[]",
            ".scheduled_maintenances[].components[]",
            ".scheduled_maintenances[].incident_updates[]",
        ],
    );
    // Top level exactly like a real summary.
    assert_eq!(
        shape(&ours)[""],
        shape(&fixture_json(
            "statuspage/github-summary-unresolved-incident.json"
        ))[""]
    );
}

#[test]
fn status_and_components_have_the_real_keys() {
    let s = sample::snapshot();
    let real_status = shape(&fixture_json("statuspage/discord-status.json"));
    let status = statuspage::status(&s, "en");
    assert_same_keys("status", &status, &real_status, &[".page", ".status"]);
    assert_eq!(shape(&status)[""], real_status[""]);

    // components.json is the summary's page and components.
    let mut real = Shape::new();
    for (p, k) in real_summary_shape() {
        if p == ".page" || p.starts_with(".components") {
            real.insert(p, k);
        }
    }
    real.insert("".into(), ["page", "components"].map(String::from).into());
    assert_same_keys(
        "components",
        &statuspage::components(&s, "en"),
        &real,
        &[".components[]"],
    );
}

#[test]
fn incident_lists_have_the_real_keys() {
    let s = sample::snapshot();
    let real = shape(&fixture_json("statuspage/discord-incidents.json"));
    let real_unresolved = shape(&fixture_json(
        "statuspage/discord-incidents-unresolved-empty.json",
    ));
    let must = [
        ".page",
        ".incidents[]",
        ".incidents[].incident_updates[]",
        ".incidents[].components[]",
    ];
    let all = statuspage::incidents(&s, "en");
    assert_same_keys("incidents", &all, &real, &must);
    let unresolved = statuspage::incidents_unresolved(&s, "en");
    assert_same_keys("incidents/unresolved", &unresolved, &real, &must);
    assert_eq!(shape(&unresolved)[""], real_unresolved[""]);

    // The single-incident object (webhook bodies) matches GitHub's single-incident document.
    let real_one = shape(&fixture_json(
        "statuspage/github-incident-00km0kwpz23b.json",
    ));
    let one = statuspage::incident(&s, &s.incidents[0], "en");
    assert_eq!(shape(&one)[""], real_one[".incident"]);
    assert_eq!(
        shape(&one)[".components[]"],
        real_one[".incident.components[]"]
    );
    assert_eq!(
        shape(&one)[".incident_updates[]"],
        real_one[".incident.incident_updates[]"]
    );
}

#[test]
fn maintenance_lists_have_the_real_keys() {
    let s = sample::snapshot();
    let real = real_maintenances_shape();
    let must = [
        ".page",
        ".scheduled_maintenances[]",
        ".scheduled_maintenances[].components[]",
    ];
    for (doc, v) in [
        (
            "scheduled-maintenances",
            statuspage::scheduled_maintenances(&s, "en"),
        ),
        (
            "upcoming",
            statuspage::scheduled_maintenances_upcoming(&s, "en"),
        ),
        (
            "active",
            statuspage::scheduled_maintenances_active(&s, "en"),
        ),
    ] {
        assert_same_keys(doc, &v, &real, &must);
    }
    let empty = shape(&fixture_json(
        "statuspage/discord-scheduled-maintenances-upcoming-empty.json",
    ));
    let ours = statuspage::scheduled_maintenances_upcoming(&sample::empty(), "en");
    assert_eq!(
        shape(&ours),
        empty,
        "an empty list is shaped like Discord's empty one"
    );
}

#[test]
fn every_value_is_one_statuspage_uses() {
    for s in [sample::snapshot(), sample::empty(), sample::hostile()] {
        for locale in ["en", "ja"] {
            for (doc, v) in all_documents(&s, locale) {
                assert_valid_values(doc, &v);
            }
        }
    }
    // The fixtures pass the same check, so the check itself knows Statuspage's values.
    for f in [
        "statuspage/github-summary-unresolved-incident.json",
        "statuspage/twilio-summary-incidents-upcoming-maintenances.json",
        "statuspage/cloudamqp-summary-maintenance-in-progress.json",
        "statuspage/discord-incidents.json",
        "statuspage/discord-scheduled-maintenances.json",
    ] {
        assert_valid_values(f, &fixture_json(f));
    }
}

#[test]
fn documents_select_the_right_incidents_and_maintenances() {
    let s = sample::snapshot();
    let ids = |v: &Value, key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    let summary = statuspage::summary(&s, "en");
    assert_eq!(
        ids(&summary, "incidents"),
        ["13", "12"],
        "summary lists unresolved incidents"
    );
    assert_eq!(
        ids(&summary, "scheduled_maintenances"),
        ["m-1", "m-2"],
        "upcoming and active"
    );
    assert_eq!(summary["status"]["indicator"], "critical");
    assert_eq!(
        summary["status"]["description"],
        "Some systems are affected"
    );
    assert_eq!(
        ids(&statuspage::incidents(&s, "en"), "incidents"),
        ["13", "12", "9"]
    );
    assert_eq!(
        ids(&statuspage::incidents_unresolved(&s, "en"), "incidents"),
        ["13", "12"]
    );
    assert_eq!(
        ids(
            &statuspage::scheduled_maintenances(&s, "en"),
            "scheduled_maintenances"
        ),
        ["m-1", "m-2", "m-3"]
    );
    assert_eq!(
        ids(
            &statuspage::scheduled_maintenances_upcoming(&s, "en"),
            "scheduled_maintenances"
        ),
        ["m-1"]
    );
    assert_eq!(
        ids(
            &statuspage::scheduled_maintenances_active(&s, "en"),
            "scheduled_maintenances"
        ),
        ["m-2"]
    );

    let resolved = &statuspage::incidents(&s, "en")["incidents"][2];
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolved_at"], "2026-11-24T09:00:00.000Z");
    assert_eq!(resolved["monitoring_at"], "2026-11-24T08:30:00.000Z");
    assert_eq!(
        resolved["shortlink"],
        "https://status.example.com/#incident-9"
    );
    assert_eq!(summary["page"]["url"], "https://status.example.com");
    assert_eq!(summary["page"]["updated_at"], "2026-11-27T14:05:00.000Z");
    assert_eq!(summary["page"]["id"].as_str().unwrap().len(), 12);
    assert_eq!(
        summary["page"]["id"],
        statuspage::summary(&s, "ja")["page"]["id"],
        "stable id"
    );
}

#[test]
fn names_and_bodies_follow_the_locale() {
    let s = sample::snapshot();
    let ja = statuspage::summary(&s, "ja");
    assert_eq!(ja["components"][0]["name"], "検索");
    assert_eq!(ja["incidents"][1]["name"], "検索の遅延");
    assert_eq!(
        ja["incidents"][1]["incident_updates"][0]["body"],
        "原因を特定し、対応しています。"
    );
    assert_eq!(
        ja["status"]["description"],
        "一部のシステムで障害が発生しています"
    );
    let en = statuspage::summary(&s, "en");
    assert_eq!(en["components"][0]["name"], "Search");
}

#[test]
fn ids_that_are_not_public_components_never_appear() {
    let s = sample::snapshot();
    for locale in ["en", "ja"] {
        for (doc, v) in all_documents(&s, locale) {
            assert!(
                !v.to_string().contains(INTERNAL_ID),
                "{doc} names an internal component"
            );
        }
        assert!(!feed::atom(&s, locale).contains(INTERNAL_ID));
        assert!(!feed::rss(&s, locale).contains(INTERNAL_ID));
    }
    let api = &statuspage::incidents(&s, "en")["incidents"][0]["components"];
    assert_eq!(api.as_array().unwrap().len(), 1);
    assert_eq!(api[0]["id"], "api");
}

#[test]
fn hostile_text_survives_json_unchanged() {
    let s = sample::hostile();
    let v = statuspage::summary(&s, "en");
    let bytes = serde_json::to_vec(&v).unwrap();
    let back: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(back["components"][0]["name"], HOSTILE);
    assert_eq!(back["page"]["name"], HOSTILE);
}

#[test]
fn an_empty_snapshot_gives_empty_lists() {
    let s = sample::empty();
    let v = statuspage::summary(&s, "en");
    assert_eq!(v["components"], serde_json::json!([]));
    assert_eq!(v["incidents"], serde_json::json!([]));
    assert_eq!(v["scheduled_maintenances"], serde_json::json!([]));
    assert_eq!(v["status"]["indicator"], "none");
    assert_eq!(v["status"]["description"], "All systems operational");
    assert_eq!(v["page"]["url"], "");
}

// ---------------------------------------------------------------------------------------
// Feeds

/// Reads the whole document with a strict XML reader: tags balanced, entities known.
fn assert_well_formed(what: &str, xml: &str) {
    use quick_xml::events::Event;
    let mut r = quick_xml::Reader::from_str(xml);
    r.config_mut().check_end_names = true;
    let mut depth = 0_i32;
    loop {
        match r.read_event() {
            Ok(Event::Eof) => break,
            Ok(Event::Start(_)) => depth += 1,
            Ok(Event::End(_)) => depth -= 1,
            Ok(Event::Text(t)) => {
                let raw: &str = &t;
                quick_xml::escape::unescape(raw)
                    .unwrap_or_else(|e| panic!("{what}: bad text {raw:?}: {e}"));
            }
            Ok(Event::GeneralRef(g)) => {
                let name: &str = &g;
                assert!(
                    ["amp", "lt", "gt", "quot", "apos"].contains(&name) || name.starts_with('#'),
                    "{what}: unknown entity &{name};"
                );
            }
            Ok(_) => {}
            Err(e) => panic!("{what}: not well-formed at {}: {e}", r.error_position()),
        }
    }
    assert_eq!(depth, 0, "{what}: unbalanced");
}

fn parse_feed(what: &str, xml: &str) -> feed_rs::model::Feed {
    assert_well_formed(what, xml);
    feed_rs::parser::parse(xml.as_bytes()).unwrap_or_else(|e| panic!("{what}: {e}\n{xml}"))
}

fn content_of(e: &feed_rs::model::Entry) -> String {
    e.content
        .as_ref()
        .and_then(|c| c.body.clone())
        .or_else(|| e.summary.as_ref().map(|s| s.content.clone()))
        .unwrap_or_default()
}

#[test]
fn atom_reads_back_like_a_statuspage_feed() {
    let s = sample::snapshot();
    let ours = parse_feed("atom", &feed::atom(&s, "en"));
    let real = parse_feed(
        "github atom",
        &String::from_utf8(fixture("statuspage/feeds/githubstatus-history.atom")).unwrap(),
    );

    assert_eq!(ours.feed_type, real.feed_type);
    assert_eq!(
        ours.title.as_ref().unwrap().content,
        "Acme Status - Incident history"
    );
    assert_eq!(ours.entries.len(), 3);
    assert_eq!(ours.language.as_deref(), Some("en"));
    // Each entry is filled where GitHub's are.
    let filled = |e: &feed_rs::model::Entry| {
        (
            e.title.is_some(),
            e.published.is_some(),
            e.updated.is_some(),
            !e.links.is_empty(),
            !content_of(e).is_empty(),
        )
    };
    for e in &ours.entries {
        assert_eq!(filled(e), filled(&real.entries[0]), "entry {}", e.id);
    }
    let first = &ours.entries[1];
    assert_eq!(first.id, "https://status.example.com/#incident-12");
    assert_eq!(first.title.as_ref().unwrap().content, "Search is slow");
    assert_eq!(
        first.links[0].href,
        "https://status.example.com/#incident-12"
    );
    let html = content_of(first);
    // Statuspage's own layout: time, status, body per update, newest first.
    assert!(html.starts_with("<p><small>Nov 27, 2026, 14:00 UTC</small><br><strong>Identified</strong> - We have found"), "{html}");
    assert!(html.contains("<strong>Investigating</strong> - We are investigating a problem affecting Search.<br>About 15,000"), "{html}");
    assert!(
        html.contains("<strong>Affected components</strong>: Search</p>"),
        "{html}"
    );
    assert_eq!(
        first.published.unwrap().to_rfc3339(),
        "2026-11-27T13:40:00+00:00"
    );
    assert_eq!(
        first.updated.unwrap().to_rfc3339(),
        "2026-11-27T14:00:00+00:00"
    );
}

#[test]
fn rss_reads_back_like_a_statuspage_feed() {
    let s = sample::snapshot();
    let ours = parse_feed("rss", &feed::rss(&s, "ja"));
    let real = parse_feed(
        "parse rss",
        &String::from_utf8(fixture("statuspage/feeds/parse-history.rss")).unwrap(),
    );

    assert_eq!(ours.feed_type, real.feed_type);
    assert_eq!(
        ours.title.as_ref().unwrap().content,
        "Acme Status - 障害履歴"
    );
    assert_eq!(ours.language.as_deref(), Some("ja"));
    assert_eq!(ours.entries.len(), 3);
    let filled = |e: &feed_rs::model::Entry| {
        (
            e.title.is_some(),
            e.published.is_some(),
            !e.links.is_empty(),
            !content_of(e).is_empty(),
        )
    };
    for e in &ours.entries {
        assert_eq!(filled(e), filled(&real.entries[0]), "entry {}", e.id);
    }
    let e = &ours.entries[1];
    assert_eq!(e.id, "https://status.example.com/#incident-12");
    assert_eq!(e.title.as_ref().unwrap().content, "検索の遅延");
    let html = content_of(e);
    assert!(
        html.contains(
            "2026年11月27日 14:00 UTC</small><br><strong>原因特定</strong> - 原因を特定し"
        ),
        "{html}"
    );
    assert!(
        html.contains("<strong>影響を受けるサービス</strong>: 検索"),
        "{html}"
    );
    assert_eq!(
        e.published.unwrap().to_rfc3339(),
        "2026-11-27T14:00:00+00:00"
    );
}

#[test]
fn hostile_text_is_escaped_in_feeds() {
    let s = sample::hostile();
    for (what, xml) in [("atom", feed::atom(&s, "en")), ("rss", feed::rss(&s, "en"))] {
        assert!(!xml.contains("<script>"), "{what}: raw markup");
        assert!(!xml.contains("<img"), "{what}: raw markup");
        let f = parse_feed(what, &xml);
        assert_eq!(
            f.title.as_ref().unwrap().content,
            format!("{HOSTILE} - Incident history"),
            "{what}"
        );
        let e = &f.entries[0];
        assert_eq!(
            e.title.as_ref().unwrap().content,
            HOSTILE,
            "{what}: title round trip"
        );
        // Inside the HTML content the text is escaped once more: a reader renders it as text.
        let html = content_of(e);
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;Q&quot;"),
            "{what}: {html}"
        );
        assert!(!html.contains("<script"), "{what}: {html}");
    }
}

#[test]
fn control_characters_do_not_break_feeds() {
    let mut s = sample::snapshot();
    s.incidents[0].name = keel_core::config::LocalizedText::plain("bad\u{0}\u{8}name\u{FFFF}");
    for (what, xml) in [("atom", feed::atom(&s, "en")), ("rss", feed::rss(&s, "en"))] {
        let f = parse_feed(what, &xml);
        assert_eq!(f.entries[0].title.as_ref().unwrap().content, "badname");
    }
}

#[test]
fn feeds_of_an_empty_snapshot_without_base_url() {
    let s = sample::empty();
    let atom = parse_feed("atom", &feed::atom(&s, "en"));
    assert!(atom.entries.is_empty());
    assert!(atom.id.starts_with("urn:keel:"), "{}", atom.id);
    let rss = parse_feed("rss", &feed::rss(&s, "ja"));
    assert!(rss.entries.is_empty());

    let mut one = sample::snapshot();
    one.base_url = None;
    let rss = parse_feed("rss", &feed::rss(&one, "en"));
    assert!(
        rss.entries[0].id.starts_with("urn:keel:"),
        "{}",
        rss.entries[0].id
    );
}

// ---------------------------------------------------------------------------------------
// Badges

#[test]
fn badges_are_escaped_svg_with_localized_text() {
    let s = sample::snapshot();
    let overall = badge::overall(&s, "ja");
    assert_well_formed("overall badge", &overall);
    assert!(overall.contains("稼働状況: 一部のシステムで障害が発生しています"));
    assert!(overall.contains(badge::color::MAJOR));

    let search = badge::component(&s.components[0], "en");
    assert_well_formed("search badge", &search);
    assert!(search.contains(">Search</text>") && search.contains(">Partial outage</text>"));

    let hostile = badge::component(&sample::hostile().components[0], "ja");
    assert_well_formed("hostile badge", &hostile);
    assert!(!hostile.contains("<script") && !hostile.contains("<img"));

    let width = |svg: &str| -> u32 {
        let w = svg.split("width=\"").nth(1).unwrap();
        w[..w.find('"').unwrap()].parse().unwrap()
    };
    let ok = badge::badge("Status", "Operational", badge::color::OPERATIONAL);
    let long = badge::badge("Status", "Degraded performance", badge::color::DEGRADED);
    let ja = badge::badge("稼働状況", "パフォーマンス低下", badge::color::DEGRADED);
    assert!(width(&ok) < width(&long));
    assert!(width(&ja) > width(&badge::badge("abcd", "abcdefghi", "#000")));
}

#[test]
fn bytes_are_the_same_documents_in_statuspages_key_order() {
    use statuspage::Document;
    let s = sample::snapshot();
    for doc in Document::ALL {
        let bytes = statuspage::document(doc, &s, "ja");
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, statuspage::value(doc, &s, "ja"), "{doc:?}");
        assert!(doc.path().starts_with("/api/v2/") && doc.path().ends_with(".json"));
    }
    assert_eq!(
        statuspage::summary(&s, "en"),
        statuspage::value(Document::Summary, &s, "en")
    );

    // Keys in the order Discord's summary.json lists them, so a diff against a real page reads
    // naturally.
    let text = String::from_utf8(statuspage::document(Document::Summary, &s, "en")).unwrap();
    assert!(text.starts_with("{\"page\":{\"id\":"), "{}", &text[..40]);
    let real = String::from_utf8(fixture("statuspage/discord-summary.json")).unwrap();
    let order = |json: &str, keys: &[&str]| -> Vec<usize> {
        keys.iter()
            .map(|k| json.find(&format!("\"{k}\"")).unwrap())
            .collect()
    };
    let component_keys = [
        "id",
        "name",
        "status",
        "created_at",
        "updated_at",
        "position",
        "description",
        "showcase",
        "start_date",
        "group_id",
        "page_id",
        "group",
        "only_show_if_degraded",
    ];
    let first = &text[text.find("\"components\":[{").unwrap()..];
    let first = &first[..first.find('}').unwrap()];
    let real_first = &real[real.find("\"components\": [").unwrap()..];
    for positions in [
        order(first, &component_keys),
        order(real_first, &component_keys),
    ] {
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    }
}
