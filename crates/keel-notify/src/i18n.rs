//! The fixed words of notifications, in English and Japanese.
//!
//! Taken from the project glossary (`docs/i18n-glossary.md`) so an email or webhook says what the
//! status page says, in the same words. Any locale other than `ja` gets English.

use keel_core::public::{Indicator, PublicEta, PublicStatus};

/// Whether `locale` is Japanese (`ja`, `ja-JP`, …).
pub(crate) fn is_ja(locale: &str) -> bool {
    locale == "ja" || locale.starts_with("ja-") || locale.starts_with("ja_")
}

/// The overall status line for a page indicator.
pub(crate) fn overall(locale: &str, indicator: Indicator) -> &'static str {
    match (is_ja(locale), indicator) {
        (false, Indicator::None) => "All systems operational",
        (true, Indicator::None) => "すべてのシステムが正常に稼働しています",
        (false, Indicator::Maintenance) => "Under maintenance",
        (true, Indicator::Maintenance) => "メンテナンス中",
        (false, _) => "Some systems are affected",
        (true, _) => "一部のシステムで障害が発生しています",
    }
}

pub(crate) fn incident_status(locale: &str, s: PublicStatus) -> &'static str {
    match (is_ja(locale), s) {
        (false, PublicStatus::Investigating) => "Investigating",
        (true, PublicStatus::Investigating) => "調査中",
        (false, PublicStatus::Identified) => "Identified",
        (true, PublicStatus::Identified) => "原因特定",
        (false, PublicStatus::Monitoring) => "Monitoring",
        (true, PublicStatus::Monitoring) => "経過観察中",
        (false, PublicStatus::Resolved) => "Resolved",
        (true, PublicStatus::Resolved) => "解決済み",
    }
}

pub(crate) fn affected_components(locale: &str) -> &'static str {
    if is_ja(locale) {
        "影響を受けるサービス"
    } else {
        "Affected components"
    }
}

pub(crate) fn affected_users(locale: &str, n: u64) -> String {
    if is_ja(locale) {
        format!("約{n}人のユーザーに影響")
    } else {
        format!("About {n} users affected")
    }
}

pub(crate) fn eta_label(locale: &str) -> &'static str {
    if is_ja(locale) {
        "復旧見込み"
    } else {
        "Estimated recovery"
    }
}

pub(crate) fn eta(locale: &str, eta: &PublicEta) -> String {
    match (is_ja(locale), eta) {
        (false, PublicEta::ThirdParty) => {
            "A third-party service we rely on is experiencing problems".into()
        }
        (true, PublicEta::ThirdParty) => {
            "当社が利用している外部サービスで障害が発生しています".into()
        }
        (
            false,
            PublicEta::History {
                p50_minutes,
                p90_minutes,
            },
        ) => format!("Similar incidents were resolved in {p50_minutes}–{p90_minutes} minutes"),
        (
            true,
            PublicEta::History {
                p50_minutes,
                p90_minutes,
            },
        ) => format!("過去の同様の障害は {p50_minutes}〜{p90_minutes} 分で解決しています"),
        (false, PublicEta::None) => "No estimate yet".into(),
        (true, PublicEta::None) => "復旧時期は未定です".into(),
    }
}

pub(crate) fn workaround(locale: &str) -> &'static str {
    if is_ja(locale) {
        "回避策"
    } else {
        "Workaround"
    }
}

pub(crate) fn no_workaround(locale: &str) -> &'static str {
    if is_ja(locale) {
        "現在、利用可能な回避策はありません"
    } else {
        "No workaround is available at this time"
    }
}

pub(crate) fn unsubscribe(locale: &str) -> &'static str {
    if is_ja(locale) {
        "配信を停止する"
    } else {
        "Unsubscribe"
    }
}

pub(crate) fn confirm_subscription(locale: &str) -> &'static str {
    if is_ja(locale) {
        "購読を確認してください"
    } else {
        "Confirm your subscription"
    }
}

pub(crate) fn last_updated(locale: &str) -> &'static str {
    if is_ja(locale) {
        "最終更新"
    } else {
        "Last updated"
    }
}
