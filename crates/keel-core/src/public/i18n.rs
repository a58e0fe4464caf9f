//! Every fixed string a customer reads — on the page, in the feeds, on badges and in
//! subscriber emails — in English and Japanese, plus locale negotiation and time formatting.
//!
//! The wording follows the project glossary (`docs/i18n-glossary.md`) term for term, so a Japanese
//! reader sees the words Japanese status pages use. Strings live in one table ([`Key`]) so a
//! test can prove that every one of them is translated; sentences that carry a number are
//! small functions beside it.

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

use super::model::{ComponentStatus, Indicator, MaintenanceStatus, PublicEta, PublicStatus};

/// The languages Keel has words for. Any other locale reads English fixed strings (config only
/// allows `en` and `ja`, but a renderer must not panic on anything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Ja,
}

impl Lang {
    /// `ja`, `ja-JP`, `ja_JP` (any case) are Japanese; everything else is English.
    pub fn of(locale: &str) -> Lang {
        let primary = locale.split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("ja") {
            Lang::Ja
        } else {
            Lang::En
        }
    }
}

macro_rules! keys {
    ($( $(#[$meta:meta])* $name:ident => $en:literal, $ja:literal; )*) => {
        /// A fixed string. [`t`] gives its text in a locale.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Key {
            $( $(#[$meta])* $name, )*
        }

        impl Key {
            /// Every key, for tests that check the whole table.
            pub const ALL: &'static [Key] = &[$(Key::$name),*];

            fn en(self) -> &'static str {
                match self { $(Key::$name => $en,)* }
            }

            fn ja(self) -> &'static str {
                match self { $(Key::$name => $ja,)* }
            }
        }
    };
}

keys! {
    // Component statuses.
    Operational => "Operational", "正常稼働";
    DegradedPerformance => "Degraded performance", "パフォーマンス低下";
    PartialOutage => "Partial outage", "部分的な障害";
    MajorOutage => "Major outage", "大規模な障害";
    UnderMaintenance => "Under maintenance", "メンテナンス中";

    // Overall banners.
    AllSystemsOperational => "All systems operational", "すべてのシステムが正常に稼働しています";
    SomeSystemsAffected => "Some systems are affected", "一部のシステムで障害が発生しています";
    /// The glossary has no banner for maintenance; this follows the "some affected" one.
    SomeSystemsUnderMaintenance =>
        "Some systems are under maintenance", "一部のシステムでメンテナンスを実施しています";

    // Incident statuses.
    Investigating => "Investigating", "調査中";
    Identified => "Identified", "原因特定";
    Monitoring => "Monitoring", "経過観察中";
    Resolved => "Resolved", "解決済み";

    // Maintenance statuses.
    MaintenanceScheduled => "Scheduled", "予定";
    MaintenanceInProgress => "In progress", "実施中";
    MaintenanceVerifying => "Verifying", "確認中";
    MaintenanceCompleted => "Completed", "完了";

    // Incident facts.
    AffectedComponents => "Affected components", "影響を受けるサービス";
    EstimatedRecovery => "Estimated recovery", "復旧見込み";
    NoEstimateYet => "No estimate yet", "復旧時期は未定です";
    Workaround => "Workaround", "回避策";
    NoWorkaround => "No workaround is available at this time", "現在、利用可能な回避策はありません";
    ThirdParty =>
        "A third-party service we rely on is experiencing problems",
        "当社が利用している外部サービスで障害が発生しています";
    Postmortem => "Postmortem", "障害報告書";

    // Page sections and labels.
    SkipToContent => "Skip to content", "本文へ移動";
    Language => "Language", "言語";
    LastUpdated => "Last updated", "最終更新";
    ActiveIncidents => "Active incidents", "発生中の障害";
    ScheduledMaintenance => "Scheduled maintenance", "計画メンテナンス";
    MaintenanceWindow => "Scheduled window", "実施予定日時";
    Components => "Components", "サービス一覧";
    /// The page's list of components in no group, past the number that get rows of their own.
    OtherComponents => "Other components", "その他のサービス";
    /// The same list when no component is in a group.
    AllComponents => "All components", "すべてのサービス";
    UptimeLast90Days => "Uptime, last 90 days", "稼働率（過去90日間）";
    NoData => "No data", "データなし";
    Today => "Today", "今日";
    IncidentHistory => "Incident history", "障害履歴";
    NoIncidents => "No incidents reported", "報告された障害はありません";
    Feeds => "Feeds", "フィード";
    PoweredBy => "Powered by Keel", "Keel で運用しています";

    // Subscribing.
    SubscribeToUpdates => "Subscribe to updates", "更新情報を受け取る";
    SubscribeHow => "How to receive updates", "受け取り方法";
    SubscribeHint =>
        "Enter an email address or a webhook URL.",
        "メールアドレスまたは Webhook の送信先 URL を入力してください。";
    EmailAddress => "Email address", "メールアドレス";
    WebhookUrl => "Webhook URL", "Webhook の送信先 URL";
    SubscribeComponents =>
        "Components (none selected means all)", "対象のサービス（選択しない場合はすべて）";
    SubscribeButton => "Subscribe", "登録する";
    Unsubscribe => "Unsubscribe", "配信を停止する";
    ConfirmSubscription => "Confirm your subscription", "購読を確認してください";
    SubscribePending =>
        "Thank you. Please check your email and confirm your subscription.",
        "ありがとうございます。確認メールをお送りしましたので、購読を確認してください。";
    WebhookSubscribed => "Your webhook is subscribed.", "Webhook を登録しました。";
    SubscriptionConfirmed => "Your subscription is confirmed.", "購読の確認が完了しました。";
    Unsubscribed => "You have been unsubscribed.", "配信を停止しました。";

    // Emails.
    EmailConfirmIntro =>
        "Please confirm that you want to receive updates from this status page by opening the link below.",
        "このステータスページの更新情報を受け取るには、以下のリンクを開いて購読を確認してください。";
    EmailIgnore =>
        "If you did not ask for this, you can ignore this message.",
        "お心当たりがない場合は、このメールを破棄してください。";
    EmailUnsubscribeIntro =>
        "To stop receiving these messages, open this link:",
        "今後の配信を停止するには、こちらのリンクを開いてください:";

    // Badges.
    BadgeStatus => "Status", "稼働状況";
}

/// The text of a fixed string in `locale`.
pub fn t(locale: &str, key: Key) -> &'static str {
    match Lang::of(locale) {
        Lang::En => key.en(),
        Lang::Ja => key.ja(),
    }
}

pub fn component_status_key(status: ComponentStatus) -> Key {
    match status {
        ComponentStatus::Operational => Key::Operational,
        ComponentStatus::DegradedPerformance => Key::DegradedPerformance,
        ComponentStatus::PartialOutage => Key::PartialOutage,
        ComponentStatus::MajorOutage => Key::MajorOutage,
        ComponentStatus::UnderMaintenance => Key::UnderMaintenance,
    }
}

/// "Operational", "部分的な障害", …
pub fn component_status(locale: &str, status: ComponentStatus) -> &'static str {
    t(locale, component_status_key(status))
}

pub fn incident_status_key(status: PublicStatus) -> Key {
    match status {
        PublicStatus::Investigating => Key::Investigating,
        PublicStatus::Identified => Key::Identified,
        PublicStatus::Monitoring => Key::Monitoring,
        PublicStatus::Resolved => Key::Resolved,
    }
}

/// "Investigating", "解決済み", …
pub fn incident_status(locale: &str, status: PublicStatus) -> &'static str {
    t(locale, incident_status_key(status))
}

pub fn maintenance_status_key(status: MaintenanceStatus) -> Key {
    match status {
        MaintenanceStatus::Scheduled => Key::MaintenanceScheduled,
        MaintenanceStatus::InProgress => Key::MaintenanceInProgress,
        MaintenanceStatus::Verifying => Key::MaintenanceVerifying,
        MaintenanceStatus::Completed => Key::MaintenanceCompleted,
    }
}

/// "Scheduled", "実施中", …
pub fn maintenance_status(locale: &str, status: MaintenanceStatus) -> &'static str {
    t(locale, maintenance_status_key(status))
}

pub fn overall_key(indicator: Indicator) -> Key {
    match indicator {
        Indicator::None => Key::AllSystemsOperational,
        Indicator::Maintenance => Key::SomeSystemsUnderMaintenance,
        // The glossary keeps one calm banner for every degree of trouble; the components and
        // incidents below it say how bad.
        Indicator::Minor | Indicator::Major | Indicator::Critical => Key::SomeSystemsAffected,
    }
}

/// The overall banner: "All systems operational", "一部のシステムで障害が発生しています", …
pub fn overall(locale: &str, indicator: Indicator) -> &'static str {
    t(locale, overall_key(indicator))
}

/// "About 15,000 users affected" / "約15,000人のユーザーに影響"; `None` for no users, where
/// the line would say nothing useful.
pub fn users_affected(locale: &str, users: u64) -> Option<String> {
    if users == 0 {
        return None;
    }
    let phrase = crate::assess::about_users(users, locale);
    Some(match Lang::of(locale) {
        Lang::Ja => format!("{phrase}に影響"),
        Lang::En => {
            let mut chars = phrase.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            format!(
                "{}{} affected",
                first.map(String::from).unwrap_or_default(),
                chars.as_str()
            )
        }
    })
}

/// The recovery estimate's value (the label is [`Key::EstimatedRecovery`]). A third-party
/// cause has no estimate of ours; the page says separately that a third party is affected.
pub fn eta(locale: &str, eta: &PublicEta) -> String {
    match (eta, Lang::of(locale)) {
        (
            PublicEta::History {
                p50_minutes,
                p90_minutes,
            },
            lang,
        ) => {
            let (lo, hi) = (*p50_minutes.min(p90_minutes), *p50_minutes.max(p90_minutes));
            match (lo == hi, lang) {
                (false, Lang::En) => {
                    format!("Similar incidents were resolved in {lo}–{hi} minutes")
                }
                (false, Lang::Ja) => format!("過去の同様の障害は {lo}〜{hi} 分で解決しています"),
                (true, Lang::En) => {
                    format!("Similar incidents were resolved in about {lo} minutes")
                }
                (true, Lang::Ja) => format!("過去の同様の障害は約 {lo} 分で解決しています"),
            }
        }
        (PublicEta::ThirdParty | PublicEta::None, _) => t(locale, Key::NoEstimateYet).to_string(),
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A moment in the reader's locale, with its time zone said: "Nov 27, 2026, 14:05 UTC" /
/// "2026年11月27日 14:05 UTC".
pub fn format_time(locale: &str, at: DateTime<Utc>) -> String {
    let date = format_date(locale, at.date_naive());
    match Lang::of(locale) {
        Lang::En => format!("{date}, {:02}:{:02} UTC", at.hour(), at.minute()),
        Lang::Ja => format!("{date} {:02}:{:02} UTC", at.hour(), at.minute()),
    }
}

/// A day in the reader's locale: "Nov 27, 2026" / "2026年11月27日".
pub fn format_date(locale: &str, day: NaiveDate) -> String {
    match Lang::of(locale) {
        Lang::En => format!(
            "{} {}, {}",
            MONTHS[day.month0() as usize],
            day.day(),
            day.year()
        ),
        Lang::Ja => format!("{}年{}月{}日", day.year(), day.month(), day.day()),
    }
}

/// An uptime share as a percentage, cut (not rounded) to two decimals so that a day with any
/// downtime never reads "100%": 0.99996 → "99.99%", 1.0 → "100%". `None` for no data.
pub fn percent(ratio: Option<f64>) -> Option<String> {
    let r = ratio.filter(|r| r.is_finite())?.clamp(0.0, 1.0);
    if r >= 1.0 {
        return Some("100%".to_string());
    }
    let hundredths = (r * 10_000.0).floor() as u64;
    Some(format!("{}.{:02}%", hundredths / 100, hundredths % 100))
}

/// "99.95% uptime" / "稼働率 99.95%"; "No data" when nothing was checked.
pub fn uptime_text(locale: &str, ratio: Option<f64>) -> String {
    match (percent(ratio), Lang::of(locale)) {
        (Some(p), Lang::En) => format!("{p} uptime"),
        (Some(p), Lang::Ja) => format!("稼働率 {p}"),
        (None, _) => t(locale, Key::NoData).to_string(),
    }
}

/// Days from `from` to `to` (one day when they are the same): "Mar 1, 2026 – Mar 28, 2026" /
/// "2026年3月1日～2026年3月28日", for a run of uptime bars.
pub fn date_range(locale: &str, from: NaiveDate, to: NaiveDate) -> String {
    if from == to {
        return format_date(locale, from);
    }
    let (a, b) = (format_date(locale, from), format_date(locale, to));
    match Lang::of(locale) {
        Lang::En => format!("{a} – {b}"),
        Lang::Ja => format!("{a}～{b}"),
    }
}

/// A group's size and how much of it is affected: "12 components, all operational",
/// "12 components, 3 affected" / "12 サービス（すべて正常稼働）", "12 サービス（3 件に影響）".
pub fn group_count(locale: &str, total: usize, affected: usize) -> String {
    match (Lang::of(locale), total, affected) {
        (Lang::En, 1, 0) => "1 component, operational".to_string(),
        (Lang::En, 1, _) => "1 component, affected".to_string(),
        (Lang::En, n, 0) => format!("{n} components, all operational"),
        (Lang::En, n, k) => format!("{n} components, {k} affected"),
        (Lang::Ja, n, 0) => format!("{n} サービス（すべて正常稼働）"),
        (Lang::Ja, n, k) => format!("{n} サービス（{k} 件に影響）"),
    }
}

/// A status and how many have it, heading a list of names: "Major outage (3)" /
/// "大規模な障害（3）".
pub fn status_count(locale: &str, status: ComponentStatus, n: usize) -> String {
    let word = component_status(locale, status);
    match Lang::of(locale) {
        Lang::En => format!("{word} ({n})"),
        Lang::Ja => format!("{word}（{n}）"),
    }
}

/// The uptime of several days: [`uptime_text`] when they read the same, else the range:
/// "99.95%–100% uptime" / "稼働率 99.95%～100%".
pub fn uptime_range(locale: &str, lo: Option<f64>, hi: Option<f64>) -> String {
    match (percent(lo), percent(hi)) {
        (Some(a), Some(b)) if a != b => match Lang::of(locale) {
            Lang::En => format!("{a}–{b} uptime"),
            Lang::Ja => format!("稼働率 {a}～{b}"),
        },
        _ => uptime_text(locale, lo),
    }
}

/// "90 days ago" / "90日前", under the left end of the uptime bars.
pub fn days_ago(locale: &str, days: usize) -> String {
    match (Lang::of(locale), days) {
        (Lang::En, 1) => "1 day ago".to_string(),
        (Lang::En, n) => format!("{n} days ago"),
        (Lang::Ja, n) => format!("{n}日前"),
    }
}

/// "Incident history" feed title: "Acme Status - Incident history".
pub fn feed_title(locale: &str, page_title: &str) -> String {
    format!("{page_title} - {}", t(locale, Key::IncidentHistory))
}

/// The locale to answer in: `?lang=` when it names an available locale, else the best match of
/// `Accept-Language` (q-values honoured, `q=0` refused, a region matching its language), else
/// the first configured locale ("en" when none is configured).
pub fn negotiate(
    accept_language: Option<&str>,
    query_lang: Option<&str>,
    available: &[String],
) -> String {
    let default = || {
        available
            .first()
            .cloned()
            .unwrap_or_else(|| "en".to_string())
    };
    if let Some(found) = query_lang.and_then(|q| match_tag(q.trim(), available)) {
        return found.clone();
    }
    let Some(header) = accept_language else {
        return default();
    };
    let mut ranges: Vec<(f32, usize, &str)> = header
        .split(',')
        .enumerate()
        .filter_map(|(order, item)| {
            let mut parts = item.split(';');
            let tag = parts.next()?.trim();
            if tag.is_empty() {
                return None;
            }
            let mut q = 1.0_f32;
            for p in parts {
                let p = p.trim();
                if let Some(v) = p.strip_prefix("q=").or_else(|| p.strip_prefix("Q=")) {
                    // An unreadable weight makes the range unusable rather than preferred.
                    q = v.trim().parse().ok().filter(|q: &f32| q.is_finite())?;
                }
            }
            (q > 0.0).then_some((q, order, tag))
        })
        .collect();
    // Highest weight first; equal weights keep the client's order.
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges
        .iter()
        .find_map(|(_, _, tag)| {
            if *tag == "*" {
                available.first()
            } else {
                match_tag(tag, available)
            }
        })
        .cloned()
        .unwrap_or_else(default)
}

/// The available locale for a requested tag: exact (any case) first, then one with the same
/// primary language ("ja-JP" → "ja", "en" → "en-US").
fn match_tag<'a>(tag: &str, available: &'a [String]) -> Option<&'a String> {
    if tag.is_empty() {
        return None;
    }
    let primary = |s: &str| {
        s.split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase()
    };
    available
        .iter()
        .find(|a| a.eq_ignore_ascii_case(tag))
        .or_else(|| {
            let want = primary(tag);
            available.iter().find(|a| primary(a) == want)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn locales() -> Vec<String> {
        vec!["en".to_string(), "ja".to_string()]
    }

    #[test]
    fn every_key_is_translated() {
        for &k in Key::ALL {
            let (en, ja) = (t("en", k), t("ja", k));
            assert!(!en.is_empty(), "{k:?}");
            assert_ne!(en, ja, "{k:?} is not translated");
            assert!(!ja.is_ascii(), "{k:?}: {ja:?} has no Japanese");
        }
    }

    #[test]
    fn glossary_terms() {
        assert_eq!(
            t("ja", Key::NoWorkaround),
            "現在、利用可能な回避策はありません"
        );
        assert_eq!(
            component_status("ja-JP", ComponentStatus::PartialOutage),
            "部分的な障害"
        );
        assert_eq!(
            incident_status("en", PublicStatus::Identified),
            "Identified"
        );
        assert_eq!(
            maintenance_status("ja", MaintenanceStatus::InProgress),
            "実施中"
        );
        assert_eq!(
            overall("ja", Indicator::None),
            "すべてのシステムが正常に稼働しています"
        );
        assert_eq!(
            overall("en", Indicator::Critical),
            "Some systems are affected"
        );
        assert_eq!(t("en", Key::UptimeLast90Days), "Uptime, last 90 days");
    }

    #[test]
    fn users_and_eta_sentences() {
        assert_eq!(
            users_affected("en", 15_234).as_deref(),
            Some("About 15,000 users affected")
        );
        assert_eq!(
            users_affected("ja", 500).as_deref(),
            Some("約500人のユーザーに影響")
        );
        assert_eq!(users_affected("en", 1).as_deref(), Some("1 user affected"));
        assert_eq!(users_affected("en", 0), None);
        let h = PublicEta::History {
            p50_minutes: 20,
            p90_minutes: 45,
        };
        assert_eq!(
            eta("en", &h),
            "Similar incidents were resolved in 20–45 minutes"
        );
        assert_eq!(
            eta("ja", &h),
            "過去の同様の障害は 20〜45 分で解決しています"
        );
        assert_eq!(eta("ja", &PublicEta::None), "復旧時期は未定です");
        assert_eq!(eta("en", &PublicEta::ThirdParty), "No estimate yet");
    }

    #[test]
    fn times_say_their_zone() {
        let at = Utc.with_ymd_and_hms(2026, 11, 27, 14, 5, 59).unwrap();
        assert_eq!(format_time("en", at), "Nov 27, 2026, 14:05 UTC");
        assert_eq!(format_time("ja", at), "2026年11月27日 14:05 UTC");
        let d = NaiveDate::from_ymd_opt(2026, 1, 3).unwrap();
        assert_eq!(format_date("en", d), "Jan 3, 2026");
        assert_eq!(format_date("ja", d), "2026年1月3日");
    }

    #[test]
    fn percent_never_rounds_up_to_full() {
        assert_eq!(percent(Some(0.99996)).as_deref(), Some("99.99%"));
        assert_eq!(percent(Some(1.0)).as_deref(), Some("100%"));
        assert_eq!(percent(Some(0.5)).as_deref(), Some("50.00%"));
        assert_eq!(percent(Some(f64::NAN)), None);
        assert_eq!(percent(None), None);
        assert_eq!(uptime_text("ja", Some(0.9995)), "稼働率 99.95%");
        assert_eq!(uptime_text("en", None), "No data");
    }

    #[test]
    fn negotiation() {
        let av = locales();
        assert_eq!(negotiate(None, None, &av), "en");
        assert_eq!(negotiate(Some("ja-JP,ja;q=0.9,en;q=0.8"), None, &av), "ja");
        assert_eq!(negotiate(Some("en;q=0.5, ja;q=0.8"), None, &av), "ja");
        assert_eq!(negotiate(Some("ja;q=0, en"), None, &av), "en");
        assert_eq!(negotiate(Some("fr, de;q=0.9"), None, &av), "en");
        assert_eq!(negotiate(Some("fr, *;q=0.1"), None, &av), "en");
        assert_eq!(negotiate(Some("ja"), Some("en"), &av), "en", "?lang= wins");
        assert_eq!(
            negotiate(Some("ja"), Some("xx"), &av),
            "ja",
            "unknown ?lang= is ignored"
        );
        assert_eq!(negotiate(Some("JA-jp"), None, &av), "ja");
        assert_eq!(negotiate(Some("ja;q=abc, en;q=0.1"), None, &av), "en");
        assert_eq!(negotiate(Some(",,;;q=,"), None, &av), "en");
        let ja_first = vec!["ja".to_string(), "en".to_string()];
        assert_eq!(negotiate(None, None, &ja_first), "ja");
        assert_eq!(negotiate(Some("en-GB"), None, &ja_first), "en");
        assert_eq!(negotiate(Some("en"), None, &[]), "en");
    }
}
