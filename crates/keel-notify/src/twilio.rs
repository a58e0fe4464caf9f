//! SMS and voice pages through a Twilio-compatible REST API: validate + send + pure builders.
//!
//! Two resources of Twilio's 2010-04-01 API (`fixtures/paging/twilio-*.json`): an SMS is a
//! form POST to `{base_url}/2010-04-01/Accounts/{AccountSid}/Messages.json` with `To`, `From`
//! and `Body`; a call is the same to `…/Calls.json` with `To`, `From` and `Twiml`, the TwiML
//! inline so no webhook has to be reachable from Twilio. Both authenticate with HTTP Basic
//! (`AccountSid:AuthToken`) and answer 201 with the created resource, or a JSON error body
//! (`code`, `message`, `more_info`, `status`). The outbox holds only the text or TwiML; the
//! account, token, sender number and base URL come from [`TwilioSettings`] at send time. The
//! base URL is configurable so any Twilio-compatible gateway works.

use keel_core::human::thousands;
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use url::Url;

use crate::email::esc;
use crate::http::{self, SendError};
use crate::page::{self, PageMessage};

/// `[paging.twilio]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TwilioSettings {
    /// `https://api.twilio.com` or a compatible gateway.
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: keel_core::config::Secret,
    /// The sending number (E.164).
    pub from: String,
}

/// Which resource a page is created as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Messages,
    Calls,
}

/// An E.164 number: `+`, then 2 to 15 digits, the first not 0.
pub fn validate_number(number: &str) -> Result<(), String> {
    let digits = number.strip_prefix('+').unwrap_or("");
    let ok = (2..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{number:?} is not an E.164 phone number (+ and country code, e.g. +819012345678)"
        ))
    }
}

/// Checks `[paging.twilio]` and returns the base URL.
pub fn validate_settings(s: &TwilioSettings) -> Result<Url, String> {
    let url = Url::parse(s.base_url.trim()).map_err(|e| {
        format!(
            "[paging.twilio] base_url {:?} is not a URL: {e}",
            s.base_url
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "[paging.twilio] base_url {:?} must be an http:// or https:// URL with a host",
            s.base_url
        ));
    }
    if !url.username().is_empty() || url.password().is_some() || url.query().is_some() {
        return Err(
            "[paging.twilio] base_url must be a plain base URL (credentials go in account_sid and auth_token_env)"
                .into(),
        );
    }
    let sid_ok = !s.account_sid.is_empty()
        && s.account_sid.len() <= 64
        && s.account_sid.chars().all(|c| c.is_ascii_alphanumeric());
    if !sid_ok {
        return Err("[paging.twilio] account_sid must be letters and digits (AC…)".into());
    }
    if s.auth_token.expose().is_empty() {
        return Err("[paging.twilio] auth token is empty".into());
    }
    validate_number(&s.from).map_err(|e| format!("[paging.twilio] from: {e}"))?;
    Ok(url)
}

/// `{base}/2010-04-01/Accounts/{sid}/{Messages|Calls}.json`, keeping a base path prefix.
pub fn resource_url(base: &Url, account_sid: &str, resource: Resource) -> Url {
    let mut u = base.clone();
    let file = match resource {
        Resource::Messages => "Messages.json",
        Resource::Calls => "Calls.json",
    };
    if let Ok(mut segs) = u.path_segments_mut() {
        segs.pop_if_empty()
            .extend(["2010-04-01", "Accounts", account_sid, file]);
    }
    u
}

/// Posts one form to the resource.
pub async fn send(
    client: &reqwest::Client,
    settings: &TwilioSettings,
    resource: Resource,
    to: &str,
    content: &str,
) -> Result<(), SendError> {
    validate_number(to).map_err(SendError::Permanent)?;
    // Settings are checked when Senders are built; a bad one here is the operator's to fix.
    let base = validate_settings(settings).map_err(SendError::retryable)?;
    let url = resource_url(&base, &settings.account_sid, resource);
    let field = match resource {
        Resource::Messages => "Body",
        Resource::Calls => "Twiml",
    };
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("To", to)
        .append_pair("From", &settings.from)
        .append_pair(field, content)
        .finish();
    let req = client
        .post(url)
        .basic_auth(&settings.account_sid, Some(settings.auth_token.expose()))
        .header(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        )
        .body(form);
    http::send(req).await.map_err(|e| match e {
        SendError::Permanent(r) => SendError::Permanent(format!("Twilio: {r}")),
        SendError::Retryable {
            reason,
            retry_after,
        } => SendError::Retryable {
            reason: format!("Twilio: {reason}"),
            retry_after,
        },
    })?;
    Ok(())
}

// ---- pure builders --------------------------------------------------------------------------

/// GSM 03.38 basic characters (one septet each); anything else makes an SMS UCS-2.
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// GSM 03.38 extension characters (an escape plus one septet: two each).
const GSM_EXTENDED: &str = "^{}\\[~]|€\u{c}";

/// Length of `s` in GSM-7 septets, or `None` if it needs UCS-2.
pub fn gsm_len(s: &str) -> Option<usize> {
    s.chars().try_fold(0usize, |n, c| {
        if GSM_BASIC.contains(c) {
            Some(n + 1)
        } else if GSM_EXTENDED.contains(c) {
            Some(n + 2)
        } else {
            None
        }
    })
}

/// Whether `s` fits one SMS: 160 GSM-7 septets, or 70 UCS-2 characters.
pub fn fits_one_sms(s: &str) -> bool {
    match gsm_len(s) {
        Some(n) => n <= 160,
        None => s.encode_utf16().count() <= 70,
    }
}

/// The SMS text: severity, what is down, users, the acknowledge link ("SEV1 Shop down,
/// ~2,000 users. Ack: <link>"). The component list is shortened to keep the whole in one
/// SMS where that is possible; the link is never cut, and when one SMS cannot hold it all
/// the full text goes out in several parts.
pub fn sms_text(msg: &PageMessage) -> String {
    let ja = page::is_ja(&msg.locale);
    let users = thousands(msg.affected_users);
    let render = |what: &str| {
        if ja {
            format!(
                "{} {}で障害、約{users}人に影響。確認：{}",
                msg.severity, what, msg.ack_url
            )
        } else {
            format!(
                "{} {} down, ~{users} users. Ack: {}",
                msg.severity, what, msg.ack_url
            )
        }
    };
    let sep = if ja { "、" } else { ", " };
    let names: Vec<&str> = msg.what_is_down.iter().map(String::as_str).collect();
    let all = if names.is_empty() {
        msg.title.clone()
    } else {
        names.join(sep)
    };
    let full = render(&all);
    if fits_one_sms(&full) {
        return full;
    }
    // Fewer names, then a shorter first name, until it fits (or nothing is left to cut).
    for keep in (1..names.len()).rev() {
        let more = names.len() - keep;
        let what = if ja {
            format!("{}ほか{more}件", names[..keep].join(sep))
        } else {
            format!("{} +{more}", names[..keep].join(sep))
        };
        let text = render(&what);
        if fits_one_sms(&text) {
            return text;
        }
    }
    // A single very long name is cut, but not below what still names the thing.
    const MIN_NAME: usize = 24;
    let first: Vec<char> = names.first().map_or(all.as_str(), |n| n).chars().collect();
    for len in (MIN_NAME..first.len()).rev() {
        // "..." rather than "…": the ellipsis is not in the GSM alphabet.
        let what: String = first[..len].iter().collect::<String>() + "...";
        let text = render(&what);
        if fits_one_sms(&text) {
            return text;
        }
    }
    // Nothing fits (a long link, or Japanese at 70 characters a part): send it all, in
    // several parts, rather than a page that no longer says what is down.
    full
}

/// What the call says (once): who calls, what is down, how bad, how to acknowledge.
pub fn spoken_text(msg: &PageMessage) -> String {
    let users = thousands(msg.affected_users);
    let what = page::what_is_down(msg);
    if page::is_ja(&msg.locale) {
        format!(
            "Keel からの呼び出しです。{}。重大度 {}。{}で障害が発生しています。約{users}人のユーザーに影響が出ている可能性があります。インシデント {} です。確認する場合は 1 を押してください。メールやメッセージのリンクからも確認できます。",
            msg.title, msg.severity, what, msg.incident_id
        )
    } else {
        format!(
            "This is a page from Keel. {}. Severity {}. Down: {}. About {users} users may be affected. Incident {}. To acknowledge, press 1, or use the link in your text message or email.",
            msg.title, msg.severity, what, msg.incident_id
        )
    }
}

/// The TwiML for a voice page: the page said twice (a first hearing is often lost to
/// waking up), with a pause between, in the person's language, inside a `<Gather>` whose
/// action is the acknowledge link, so pressing 1 during the call acknowledges (Twilio POSTs
/// `Digits` to the link). Text and the link are XML-escaped.
pub fn twiml(msg: &PageMessage) -> String {
    let lang = if page::is_ja(&msg.locale) {
        "ja-JP"
    } else {
        "en-US"
    };
    let said = esc(&spoken_text(msg));
    let ack = esc(&msg.ack_url);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Gather numDigits=\"1\" action=\"{ack}\" method=\"POST\"><Say language=\"{lang}\">{said}</Say><Pause length=\"1\"/><Say language=\"{lang}\">{said}</Say></Gather></Response>"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page::sample;

    #[test]
    fn the_sms_is_one_gsm_message_with_the_link() {
        let m = sample();
        let t = sms_text(&m);
        assert_eq!(
            t,
            format!("SEV1 Shop, Checkout down, ~2,000 users. Ack: {}", m.ack_url)
        );
        assert!(gsm_len(&t).unwrap() <= 160, "{t}");
    }

    #[test]
    fn a_long_component_list_is_shortened_but_the_link_stays_whole() {
        let mut m = sample();
        m.what_is_down = (0..20).map(|i| format!("Component number {i}")).collect();
        let t = sms_text(&m);
        assert!(gsm_len(&t).unwrap() <= 160, "{} {t}", t.len());
        assert!(t.ends_with(&format!("Ack: {}", m.ack_url)), "{t}");
        assert!(t.starts_with("SEV1 Component number 0"), "{t}");
        assert!(t.contains(" +"), "says how many more: {t}");

        m.what_is_down = vec!["A very long component name ".repeat(4)];
        let t = sms_text(&m);
        assert!(gsm_len(&t).unwrap() <= 160, "{t}");
        assert!(t.contains("...") && !t.contains('…'), "{t}");
        assert!(t.starts_with("SEV1 A very long component"), "{t}");
        assert!(t.ends_with(&m.ack_url));
    }

    #[test]
    fn a_link_too_long_for_one_sms_is_still_sent_whole() {
        let mut m = sample();
        m.ack_url = format!("https://keel.example.com/ack?t={}", "x".repeat(200));
        let t = sms_text(&m);
        assert!(t.ends_with(&m.ack_url));
    }

    #[test]
    fn japanese_that_cannot_fit_keeps_every_name() {
        let mut m = sample();
        m.locale = "ja".into();
        let t = sms_text(&m);
        assert!(t.contains("Shop、Checkout"), "{t}");
        assert!(t.ends_with(&m.ack_url));
    }

    #[test]
    fn japanese_sms() {
        let mut m = sample();
        m.locale = "ja".into();
        m.what_is_down = vec!["ショップ".into()];
        let t = sms_text(&m);
        assert_eq!(
            t,
            format!("SEV1 ショップで障害、約2,000人に影響。確認：{}", m.ack_url)
        );
        assert_eq!(gsm_len(&t), None);
    }

    #[test]
    fn gsm_lengths() {
        assert_eq!(gsm_len("abc"), Some(3));
        assert_eq!(gsm_len("a€"), Some(3));
        assert_eq!(gsm_len("…"), None);
        assert_eq!(gsm_len("検索"), None);
        assert!(fits_one_sms(&"a".repeat(160)));
        assert!(!fits_one_sms(&"a".repeat(161)));
        assert!(fits_one_sms(&"検".repeat(70)));
        assert!(!fits_one_sms(&"検".repeat(71)));
    }

    #[test]
    fn twiml_says_the_page_twice_and_escapes_markup() {
        let mut m = sample();
        m.title = "SEV1 · <Shop> & \"Cart\" isn't up".into();
        m.what_is_down = vec!["<b>Shop</b>".into()];
        let x = twiml(&m);
        assert!(x.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"));
        assert!(x.ends_with("</Response>"));
        assert_eq!(x.matches("<Say language=\"en-US\">").count(), 2);
        assert!(
            x.contains("SEV1 · &lt;Shop&gt; &amp; &quot;Cart&quot; isn&#39;t up"),
            "{x}"
        );
        assert!(x.contains("&lt;b&gt;Shop&lt;/b&gt;"), "{x}");
        assert!(!x.contains("<b>") && !x.contains("isn't"), "{x}");
        m.ack_url = "https://k.example/ack?a=1&b=<2>".into();
        let x = twiml(&m);
        assert!(
            x.contains("action=\"https://k.example/ack?a=1&amp;b=&lt;2&gt;\""),
            "{x}"
        );
        // Well-formed: every '<' opens one of our own elements.
        let tags: Vec<&str> = x
            .split('<')
            .skip(1)
            .map(|t| t.split(['>', ' ']).next().unwrap())
            .collect();
        for t in tags {
            assert!(
                [
                    "?xml",
                    "Response",
                    "/Response",
                    "Gather",
                    "/Gather",
                    "Say",
                    "/Say",
                    "Pause"
                ]
                .contains(&t),
                "{t}"
            );
        }
    }

    #[test]
    fn japanese_calls_speak_japanese() {
        let mut m = sample();
        m.locale = "ja".into();
        let x = twiml(&m);
        assert_eq!(x.matches("<Say language=\"ja-JP\">").count(), 2);
        assert!(x.contains("約2,000人のユーザーに影響が出ている可能性があります。"));
        assert!(x.contains("確認する場合は 1 を押してください。"));
    }

    #[test]
    fn numbers_and_settings_are_checked() {
        assert!(validate_number("+819012345678").is_ok());
        assert!(validate_number("819012345678").is_err());
        assert!(validate_number("+0123").is_err());
        assert!(validate_number("+81 90 1234").is_err());
        assert!(validate_number("+1234567890123456").is_err());
        let s = TwilioSettings {
            base_url: "https://api.twilio.com".into(),
            account_sid: "AC123".into(),
            auth_token: keel_core::config::Secret("t".into()),
            from: "+15005550006".into(),
        };
        let base = validate_settings(&s).unwrap();
        assert_eq!(
            resource_url(&base, "AC123", Resource::Messages).as_str(),
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
        let gw = Url::parse("http://gw.example/twilio/").unwrap();
        assert_eq!(
            resource_url(&gw, "AC123", Resource::Calls).as_str(),
            "http://gw.example/twilio/2010-04-01/Accounts/AC123/Calls.json"
        );
        for bad in [
            TwilioSettings {
                base_url: "api.twilio.com".into(),
                ..s.clone()
            },
            TwilioSettings {
                account_sid: "AC/../x".into(),
                ..s.clone()
            },
            TwilioSettings {
                auth_token: keel_core::config::Secret(String::new()),
                ..s.clone()
            },
            TwilioSettings {
                from: "5550006".into(),
                ..s.clone()
            },
        ] {
            assert!(validate_settings(&bad).is_err(), "{bad:?}");
        }
    }
}
