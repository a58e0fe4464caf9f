//! A public snapshot that exercises every part of the renderers: components in every status
//! with uptime gaps, an incident with a workaround and a history ETA, one with a third-party
//! cause and no workaround, a resolved one, and maintenances in three states. Shared by the
//! keel-core render tests and the keel-server page tests (through `#[path]`), so both check
//! the same facts.
#![allow(dead_code)]

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use keel_core::config::LocalizedText;
use keel_core::ids::ComponentId;
use keel_core::public::{
    ComponentStatus, DayUptime, Indicator, Maintenance, MaintenanceStatus, PublicComponent,
    PublicEta, PublicImpact, PublicIncident, PublicStatus, PublicUpdate, Snapshot,
};

/// The hostile text every escaping test looks for.
pub const HOSTILE: &str = "<script>alert('x')</script> & \"Q\" <img src=x onerror=alert(1)>";

/// An id the snapshot builder would never let through, planted in an incident's component
/// list to prove renderers drop ids that are not public components.
pub const INTERNAL_ID: &str = "internal-db-primary";

pub fn lt(en: &str, ja: &str) -> LocalizedText {
    let mut t = LocalizedText::plain(en);
    t.by_locale.clear();
    t.by_locale.insert("en".to_string(), en.to_string());
    t.by_locale.insert("ja".to_string(), ja.to_string());
    t
}

pub fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, h, m, 0).unwrap()
}

/// 90 days ending 2026-11-27: a gap with no data, a bad day, the rest full.
pub fn uptime() -> Vec<DayUptime> {
    let last = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    (0..90)
        .map(|i| {
            let day = last - chrono::Days::new(89 - i);
            let ratio = match i {
                0..=4 => None,
                40 => Some(0.93),
                70 => Some(0.995),
                _ => Some(1.0),
            };
            DayUptime { day, ratio }
        })
        .collect()
}

/// A component id the sample uses.
pub fn cid(id: &str) -> ComponentId {
    ComponentId::parse(id).expect("a valid component id")
}

fn component(
    id: &str,
    name: LocalizedText,
    status: ComponentStatus,
    workaround: Option<LocalizedText>,
    position: u32,
) -> PublicComponent {
    PublicComponent {
        id: cid(id),
        name,
        status,
        uptime: uptime(),
        uptime_ratio: Some(0.9992),
        workaround,
        updated_at: at(13, 50),
        position,
        group: None,
    }
}

fn update(id: &str, status: PublicStatus, en: &str, ja: &str, when: DateTime<Utc>) -> PublicUpdate {
    PublicUpdate {
        id: id.to_string(),
        status,
        body: lt(en, ja),
        created_at: when,
    }
}

pub fn search_workaround() -> LocalizedText {
    lt(
        "Browse products from the category pages while search is slow.",
        "検索が遅い間は、カテゴリーページから商品をご覧ください。",
    )
}

pub fn snapshot() -> Snapshot {
    let components = vec![
        component(
            "search",
            lt("Search", "検索"),
            ComponentStatus::PartialOutage,
            Some(search_workaround()),
            1,
        ),
        component(
            "api",
            lt("Public API", "公開 API"),
            ComponentStatus::MajorOutage,
            None,
            2,
        ),
        component(
            "web",
            lt("Website", "ウェブサイト"),
            ComponentStatus::Operational,
            None,
            3,
        ),
        component(
            "billing",
            lt("Billing", "請求"),
            ComponentStatus::DegradedPerformance,
            None,
            4,
        ),
        component(
            "reports",
            lt("Reports", "レポート"),
            ComponentStatus::UnderMaintenance,
            None,
            5,
        ),
    ];
    let with_workaround = PublicIncident {
        id: "12".to_string(),
        name: lt("Search is slow", "検索の遅延"),
        status: PublicStatus::Identified,
        impact: PublicImpact::Major,
        created_at: at(13, 40),
        updated_at: at(14, 0),
        resolved_at: None,
        components: vec![cid("search")],
        affected_users: 15_234,
        eta: PublicEta::History { p50_minutes: 20, p90_minutes: 45 },
        workarounds: vec![(cid("search"), search_workaround())],
        updates: vec![
            update("12-2", PublicStatus::Identified, "We have found the cause and are fixing it.", "原因を特定し、対応しています。", at(14, 0)),
            update("12-1", PublicStatus::Investigating, "We are investigating a problem affecting Search.\nAbout 15,000 users may be affected.", "検索サービスに影響する問題を調査しています。\n約15,000人のユーザーに影響が出ている可能性があります。", at(13, 40)),
        ],
    };
    let third_party = PublicIncident {
        id: "13".to_string(),
        name: lt("Public API errors", "公開 API のエラー"),
        status: PublicStatus::Investigating,
        impact: PublicImpact::Critical,
        created_at: at(13, 55),
        updated_at: at(13, 55),
        resolved_at: None,
        components: vec![cid("api"), cid(INTERNAL_ID)],
        affected_users: 500,
        eta: PublicEta::ThirdParty,
        workarounds: vec![],
        updates: vec![update(
            "13-1",
            PublicStatus::Investigating,
            "We are investigating errors on the Public API.",
            "公開 API のエラーを調査しています。",
            at(13, 55),
        )],
    };
    let resolved = PublicIncident {
        id: "9".to_string(),
        name: lt("Website unavailable", "ウェブサイトに接続できない問題"),
        status: PublicStatus::Resolved,
        impact: PublicImpact::Minor,
        created_at: at(8, 0) - Duration::days(3),
        updated_at: at(9, 0) - Duration::days(3),
        resolved_at: Some(at(9, 0) - Duration::days(3)),
        components: vec![cid("web")],
        affected_users: 40,
        eta: PublicEta::None,
        workarounds: vec![],
        updates: vec![
            update(
                "9-3",
                PublicStatus::Resolved,
                "This incident has been resolved.",
                "この障害は解決しました。",
                at(9, 0) - Duration::days(3),
            ),
            update(
                "9-2",
                PublicStatus::Monitoring,
                "A fix is in place; we are watching.",
                "修正を適用し、経過を観察しています。",
                at(8, 30) - Duration::days(3),
            ),
            update(
                "9-1",
                PublicStatus::Investigating,
                "We are investigating.",
                "調査しています。",
                at(8, 0) - Duration::days(3),
            ),
        ],
    };
    let maintenance = |id: &str, status, from: DateTime<Utc>, name: LocalizedText| Maintenance {
        id: id.to_string(),
        name,
        status,
        scheduled_for: from,
        scheduled_until: from + Duration::hours(2),
        components: vec![cid("reports")],
        body: lt(
            "Reports will be read-only.",
            "レポートは閲覧のみとなります。",
        ),
        created_at: at(1, 0) - Duration::days(7),
        updated_at: at(1, 0) - Duration::days(7),
    };
    Snapshot {
        title: "Acme Status".to_string(),
        locales: vec!["en".to_string(), "ja".to_string()],
        base_url: Some("https://status.example.com/".to_string()),
        generated_at: at(14, 5),
        indicator: Indicator::Critical,
        components,
        incidents: vec![third_party, with_workaround, resolved],
        maintenances: vec![
            maintenance(
                "m-1",
                MaintenanceStatus::Scheduled,
                at(22, 0) + Duration::days(2),
                lt("Database upgrade", "データベースの更新"),
            ),
            maintenance(
                "m-2",
                MaintenanceStatus::InProgress,
                at(13, 0),
                lt("Reports migration", "レポートの移行"),
            ),
            maintenance(
                "m-3",
                MaintenanceStatus::Completed,
                at(1, 0) - Duration::days(5),
                lt("Network work", "ネットワーク作業"),
            ),
        ],
    }
}

/// No components, incidents or maintenances: what a fresh install shows.
pub fn empty() -> Snapshot {
    Snapshot {
        title: "Empty".to_string(),
        locales: vec!["en".to_string(), "ja".to_string()],
        base_url: None,
        generated_at: at(14, 5),
        indicator: Indicator::None,
        components: vec![],
        incidents: vec![],
        maintenances: vec![],
    }
}

/// [`snapshot`] with hostile text in every field a customer sees.
pub fn hostile() -> Snapshot {
    let mut s = snapshot();
    s.title = HOSTILE.to_string();
    let h = || LocalizedText::plain(HOSTILE);
    for c in &mut s.components {
        c.name = h();
        if c.workaround.is_some() {
            c.workaround = Some(h());
        }
    }
    for i in &mut s.incidents {
        i.name = h();
        for w in &mut i.workarounds {
            w.1 = h();
        }
        for u in &mut i.updates {
            u.body = h();
        }
    }
    for m in &mut s.maintenances {
        m.name = h();
        m.body = h();
    }
    s
}
