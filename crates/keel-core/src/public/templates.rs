//! The wording of drafted customer updates: Keel's built-in templates per situation and
//! locale, the fixed phrases they are filled with, and the small template language operators
//! override them in (`[templates.opened] body.en = "… {components} …"`).
//!
//! The wording keeps to one style in every locale: calm, plain, です・ます in Japanese, no
//! blame and no internal names. Operators' templates are checked when the config is read
//! ([`validate`]), so a template here always renders.

use std::time::Duration;

use crate::assess::about_users;
use crate::config::Situation;

/// What a template may refer to, as `{name}`.
pub const PLACEHOLDERS: &[&str] = &[
    "components",
    "users",
    "impact",
    "eta",
    "workaround",
    "next_update",
];

/// What each placeholder becomes, for docs and hints.
pub const PLACEHOLDER_DOCS: &[(&str, &str)] = &[
    (
        "components",
        "the affected public components' names in the update's language: \"Search and API\", 「検索、API」",
    ),
    (
        "users",
        "the number of affected users in words: \"about 500 users\", 「約500人のユーザー」",
    ),
    (
        "impact",
        "a sentence about the users: \"About 500 users may be affected.\" (empty when none are); for a regional outage \"Customers reaching Checkout from osaka may see errors.\"",
    ),
    (
        "eta",
        "a sentence about recovery: from similar past incidents, a third party's problem (never named), or \"No estimate yet.\"",
    ),
    (
        "workaround",
        "the affected components' workarounds, or \"No workaround is available at this time.\"",
    ),
    (
        "next_update",
        "when the next update comes, from `next_update`: \"30 minutes\", 「30分」",
    ),
];

/// A template that cannot render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
    pub hint: String,
}

/// Fills `template`'s placeholders with `value(name)`. `{{` and `}}` stand for braces.
pub fn render(template: &str, value: &dyn Fn(&str) -> String) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
            continue;
        }
        if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
            continue;
        }
        if tail.starts_with('}') {
            return Err(TemplateError {
                message: "a lone `}`".into(),
                hint: "write `}}` for a brace, or `{components}`-style placeholders".into(),
            });
        }
        let Some(close) = tail.find('}') else {
            return Err(TemplateError {
                message: "a `{` that is never closed".into(),
                hint: "write `{{` for a brace, or close the placeholder: `{components}`".into(),
            });
        };
        let name = &tail[1..close];
        let Some(&known) = PLACEHOLDERS.iter().find(|p| **p == name) else {
            let hint = match crate::config::closest_name(name, PLACEHOLDERS) {
                Some(c) => format!("did you mean {{{c}}}?"),
                None => format!(
                    "known placeholders: {}",
                    PLACEHOLDERS
                        .iter()
                        .map(|p| format!("{{{p}}}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            };
            return Err(TemplateError {
                message: format!("unknown placeholder {{{name}}}"),
                hint,
            });
        };
        out.push_str(&value(known));
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    Ok(tidy(&out))
}

/// Checks a template renders (every placeholder known, braces balanced).
pub fn validate(template: &str) -> Result<(), TemplateError> {
    render(template, &|_| String::new()).map(|_| ())
}

/// Empty placeholders leave double spaces and spaces before line ends: remove them, so a
/// template need not care which sentences are present.
fn tidy(text: &str) -> String {
    text.lines()
        .map(|line| {
            let mut out = String::with_capacity(line.len());
            for word in line.split(' ').filter(|w| !w.is_empty()) {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(word);
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

/// Japanese for `ja` and `ja-…`; English for everything else.
pub fn is_japanese(locale: &str) -> bool {
    locale == "ja" || locale.starts_with("ja-") || locale.starts_with("ja_")
}

/// Keel's own (title, body) for a situation in a locale.
pub fn builtin(situation: Situation, locale: &str) -> (&'static str, &'static str) {
    if is_japanese(locale) {
        let title = "{components}に影響する障害";
        let body = match situation {
            Situation::Opened => {
                "{components}に影響する問題を調査しています。{impact}{eta}{workaround}{next_update}以内に続報をお知らせします。"
            }
            Situation::Identified => {
                "{components}に影響する問題の原因を特定し、復旧に向けて対応しています。{impact}{eta}{workaround}{next_update}以内に続報をお知らせします。"
            }
            Situation::Monitoring => {
                "{components}は復旧しつつあります。引き続き経過観察を行い、{next_update}以内に続報をお知らせします。"
            }
            Situation::Resolved => {
                "この障害は解決しました。{components}は正常に稼働しています。ご不便をおかけしたことをお詫び申し上げます。"
            }
            Situation::Reopened => {
                "{components}に影響する問題が再発したため、再度調査しています。{impact}{eta}{workaround}{next_update}以内に続報をお知らせします。"
            }
        };
        (title, body)
    } else {
        let title = "Problem affecting {components}";
        let body = match situation {
            Situation::Opened => {
                "We are investigating a problem affecting {components}. {impact} {eta} {workaround} We will post an update within {next_update}."
            }
            Situation::Identified => {
                "We have identified the cause of the problem affecting {components} and are working on a fix. {impact} {eta} {workaround} We will post an update within {next_update}."
            }
            Situation::Monitoring => {
                "Service for {components} is recovering. We are monitoring the results and will post an update within {next_update}."
            }
            Situation::Resolved => {
                "This incident has been resolved, and service for {components} has returned to normal. We apologize for the inconvenience."
            }
            Situation::Reopened => {
                "The problem affecting {components} has returned, and we are investigating again. {impact} {eta} {workaround} We will post an update within {next_update}."
            }
        };
        (title, body)
    }
}

/// "Search", "Search and API", "Search, API and Checkout"; 「検索、API」.
pub fn component_list(names: &[String], locale: &str) -> String {
    if names.is_empty() {
        return if is_japanese(locale) {
            "一部のサービス".to_string()
        } else {
            "some of our services".to_string()
        };
    }
    if is_japanese(locale) {
        return names.join("、");
    }
    match names {
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => String::new(),
    }
}

/// A generic name for a component whose own name may not be said publicly.
pub fn unnamed_component(locale: &str) -> &'static str {
    if is_japanese(locale) {
        "一部のサービス"
    } else {
        "one of our services"
    }
}

/// "about 500 users" / 「約500人のユーザー」.
pub fn users_phrase(n: u64, locale: &str) -> String {
    about_users(n, locale)
}

/// "About 500 users may be affected." / 「約500人のユーザーに影響が出ている可能性があります。」;
/// empty when no users are.
pub fn impact_sentence(n: u64, locale: &str) -> String {
    if n == 0 {
        return String::new();
    }
    let users = about_users(n, locale);
    if is_japanese(locale) {
        format!("{users}に影響が出ている可能性があります。")
    } else {
        let mut chars = users.chars();
        let capital: String = chars
            .next()
            .map(|c| c.to_uppercase().chain(chars).collect())
            .unwrap_or_default();
        format!("{capital} may be affected.")
    }
}

/// The impact of a regional outage (a monitor checked from several places fails from some
/// of them only): "Customers reaching Checkout from osaka may see errors." /
/// 「osakaからCheckoutをご利用のお客様に、エラーが発生している可能性があります。」. It
/// stands in for [`impact_sentence`]: the user count is the components' whole audience,
/// which a regional outage does not reach.
pub fn regional_sentence(components: &str, locations: &[String], locale: &str) -> String {
    if is_japanese(locale) {
        format!(
            "{}から{components}をご利用のお客様に、エラーが発生している可能性があります。",
            locations.join("、")
        )
    } else {
        format!(
            "Customers reaching {components} from {} may see errors.",
            component_list(locations, locale)
        )
    }
}

/// What customers are told about recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtaWords {
    /// From similar resolved incidents: median and 90th percentile, in minutes.
    History {
        p50_minutes: u64,
        p90_minutes: u64,
    },
    /// A third party has a problem; who is never said.
    ThirdParty,
    None,
}

/// The ETA sentence, in the glossary's words.
pub fn eta_sentence(eta: EtaWords, locale: &str) -> String {
    let ja = is_japanese(locale);
    match eta {
        EtaWords::History {
            p50_minutes,
            p90_minutes,
        } => {
            let (low, high) = (p50_minutes.min(p90_minutes), p50_minutes.max(p90_minutes));
            match (ja, low == high) {
                (true, false) => format!("過去の同様の障害は {low}〜{high} 分で解決しています。"),
                (true, true) => format!("過去の同様の障害は約 {low} 分で解決しています。"),
                (false, false) => {
                    format!("Similar incidents were resolved in {low}–{high} minutes.")
                }
                (false, true) if low == 1 => {
                    "Similar incidents were resolved in about 1 minute.".to_string()
                }
                (false, true) => format!("Similar incidents were resolved in about {low} minutes."),
            }
        }
        EtaWords::ThirdParty if ja => {
            "当社が利用している外部サービスで障害が発生しています。".to_string()
        }
        EtaWords::ThirdParty => {
            "A third-party service we rely on is experiencing problems.".to_string()
        }
        EtaWords::None if ja => "復旧時期は未定です。".to_string(),
        EtaWords::None => "No estimate yet.".to_string(),
    }
}

/// The sentence offering an alternative customers can use instead ("You can use Phone
/// orders instead."), with the glossary's polite Japanese.
pub fn alternative_offer(name: &str, locale: &str) -> String {
    if is_japanese(locale) {
        format!("代わりに{name}をご利用いただけます。")
    } else {
        format!("You can use {name} instead.")
    }
}

/// The workaround sentences: each (component name, text) given, or the glossary's "no
/// workaround" when there are none. `name_each` says which component each is for (several
/// are affected); with one affected component, "Workaround: …" says enough.
pub fn workaround_sentences(
    workarounds: &[(String, String)],
    name_each: bool,
    locale: &str,
) -> String {
    let ja = is_japanese(locale);
    match workarounds {
        [] if ja => "現在、利用可能な回避策はありません。".to_string(),
        [] => "No workaround is available at this time.".to_string(),
        [(_, text)] if ja && !name_each => format!("回避策：{}", text.trim()),
        [(_, text)] if !name_each => format!("Workaround: {}", text.trim()),
        many => many
            .iter()
            .map(|(name, text)| {
                if ja {
                    format!("{name}の回避策：{}", text.trim())
                } else {
                    format!("Workaround for {name}: {}", text.trim())
                }
            })
            .collect::<Vec<_>>()
            .join(if ja { "" } else { " " }),
    }
}

/// "30 minutes", "1 hour", "1 hour 30 minutes"; 「30分」「1時間」「1時間30分」. Seconds
/// round up to the next minute: a promise is never shorter than configured.
pub fn duration_words(d: Duration, locale: &str) -> String {
    let minutes = d.as_secs().div_ceil(60).max(1);
    let (h, m) = (minutes / 60, minutes % 60);
    if is_japanese(locale) {
        return match (h, m) {
            (0, m) => format!("{m}分"),
            (h, 0) => format!("{h}時間"),
            (h, m) => format!("{h}時間{m}分"),
        };
    }
    let unit = |n: u64, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {many}")
        }
    };
    match (h, m) {
        (0, m) => unit(m, "minute", "minutes"),
        (h, 0) => unit(h, "hour", "hours"),
        (h, m) => format!(
            "{} {}",
            unit(h, "hour", "hours"),
            unit(m, "minute", "minutes")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(name: &str) -> String {
        format!("<{name}>")
    }

    #[test]
    fn placeholders_braces_and_tidying() {
        assert_eq!(
            render("A {components}  B {{x}} {eta}", &fill).unwrap(),
            "A <components> B {x} <eta>"
        );
        assert_eq!(
            render("One. {impact} Two.", &|_| String::new()).unwrap(),
            "One. Two."
        );
        let err = render("{userz} x", &fill).unwrap_err();
        assert_eq!(err.message, "unknown placeholder {userz}");
        assert_eq!(err.hint, "did you mean {users}?");
        let err = validate("{nonsense}").unwrap_err();
        assert!(
            err.hint.starts_with("known placeholders: {components}"),
            "{err:?}"
        );
        assert_eq!(
            validate("x { y").unwrap_err().message,
            "a `{` that is never closed"
        );
        assert_eq!(validate("x } y").unwrap_err().message, "a lone `}`");
        assert!(validate("{{ and }}").is_ok());
    }

    #[test]
    fn every_builtin_renders() {
        for s in Situation::ALL {
            for l in ["en", "ja"] {
                let (t, b) = builtin(s, l);
                validate(t).unwrap();
                validate(b).unwrap();
            }
        }
    }

    #[test]
    fn phrases() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(component_list(&names(&["Search"]), "en"), "Search");
        assert_eq!(component_list(&names(&["A", "B"]), "en"), "A and B");
        assert_eq!(component_list(&names(&["A", "B", "C"]), "en"), "A, B and C");
        assert_eq!(component_list(&names(&["検索", "API"]), "ja"), "検索、API");
        assert_eq!(
            impact_sentence(500, "en"),
            "About 500 users may be affected."
        );
        assert_eq!(impact_sentence(1, "en"), "1 user may be affected.");
        assert_eq!(
            impact_sentence(500, "ja"),
            "約500人のユーザーに影響が出ている可能性があります。"
        );
        assert_eq!(impact_sentence(0, "ja"), "");
        assert_eq!(
            regional_sentence("Checkout", &names(&["osaka"]), "en"),
            "Customers reaching Checkout from osaka may see errors."
        );
        assert_eq!(
            regional_sentence("Search and API", &names(&["osaka", "frankfurt"]), "en"),
            "Customers reaching Search and API from osaka and frankfurt may see errors."
        );
        assert_eq!(
            regional_sentence("検索、API", &names(&["osaka", "frankfurt"]), "ja"),
            "osaka、frankfurtから検索、APIをご利用のお客様に、エラーが発生している可能性があります。"
        );
        assert_eq!(
            duration_words(Duration::from_secs(1800), "en"),
            "30 minutes"
        );
        assert_eq!(duration_words(Duration::from_secs(61), "en"), "2 minutes");
        assert_eq!(duration_words(Duration::from_secs(3600), "en"), "1 hour");
        assert_eq!(duration_words(Duration::from_secs(5400), "ja"), "1時間30分");
        assert_eq!(duration_words(Duration::ZERO, "ja"), "1分");
        assert_eq!(
            eta_sentence(
                EtaWords::History {
                    p50_minutes: 12,
                    p90_minutes: 40
                },
                "ja"
            ),
            "過去の同様の障害は 12〜40 分で解決しています。"
        );
        assert_eq!(
            workaround_sentences(&[("Search".into(), "Use the app.".into())], false, "en"),
            "Workaround: Use the app."
        );
        assert_eq!(
            workaround_sentences(&[("Search".into(), "Use the app.".into())], true, "ja"),
            "Searchの回避策：Use the app."
        );
    }
}
