//! Shared inputs for the unit tests: a small public snapshot with one open incident, the
//! real payload fixtures from `fixtures/notifications/`, and a key-set helper for comparing
//! JSON shapes.

use std::collections::{BTreeMap, BTreeSet};

use keel_core::config::LocalizedText;
use keel_core::public::{
    ComponentStatus, DayUptime, Indicator, PublicComponent, PublicEta, PublicImpact,
    PublicIncident, PublicStatus, PublicUpdate, Snapshot,
};
use keel_core::ComponentId;
use serde_json::Value;

fn cid(id: &str) -> ComponentId {
    ComponentId::parse(id).expect("a valid component id")
}

pub(crate) fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../fixtures/notifications/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The keys of a JSON object (empty for anything else).
pub(crate) fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

pub(crate) fn text(en: &str, ja: &str) -> LocalizedText {
    LocalizedText {
        by_locale: BTreeMap::from([("en".into(), en.into()), ("ja".into(), ja.into())]),
    }
}

pub(crate) fn snapshot() -> Snapshot {
    let at = |s: &str| s.parse().unwrap();
    Snapshot {
        title: "Acme Status".into(),
        locales: vec!["en".into(), "ja".into()],
        base_url: Some("https://status.example.com".into()),
        generated_at: at("2024-05-01T12:00:00Z"),
        indicator: Indicator::Major,
        components: vec![
            PublicComponent {
                id: cid("search"),
                name: text("Search", "検索"),
                status: ComponentStatus::MajorOutage,
                uptime: vec![DayUptime {
                    day: "2024-05-01".parse().unwrap(),
                    ratio: Some(0.98),
                }],
                uptime_ratio: Some(0.98),
                workaround: Some(text(
                    "Browse the catalogue by category.",
                    "カテゴリーから商品を探すことができます。",
                )),
                updated_at: at("2024-05-01T11:58:00Z"),
                position: 0,
                group: None,
            },
            PublicComponent {
                id: cid("api"),
                name: LocalizedText::plain("API"),
                status: ComponentStatus::Operational,
                uptime: vec![],
                uptime_ratio: None,
                workaround: None,
                updated_at: at("2024-04-01T00:00:00Z"),
                position: 1,
                group: None,
            },
        ],
        incidents: vec![PublicIncident {
            id: "12".into(),
            name: text("Search is unavailable", "検索サービスの障害"),
            status: PublicStatus::Investigating,
            impact: PublicImpact::Major,
            created_at: at("2024-05-01T11:58:00Z"),
            updated_at: at("2024-05-01T12:00:00Z"),
            resolved_at: None,
            components: vec![cid("search")],
            affected_users: 500,
            eta: PublicEta::History {
                p50_minutes: 20,
                p90_minutes: 45,
            },
            workarounds: vec![(
                cid("search"),
                text(
                    "Browse the catalogue by category.",
                    "カテゴリーから商品を探すことができます。",
                ),
            )],
            updates: vec![PublicUpdate {
                id: "12-1".into(),
                status: PublicStatus::Investigating,
                body: text(
                    "We are investigating a problem affecting Search. About 500 users may be affected. We will post an update within 30 minutes.",
                    "検索サービスに影響する問題を調査しています。約500人のユーザーに影響が出ている可能性があります。30分以内に続報をお知らせします。",
                ),
                created_at: at("2024-05-01T12:00:00Z"),
            }],
        }],
        maintenances: vec![],
    }
}
