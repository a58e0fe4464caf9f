//! Pure parsers for the scalar values written as strings: durations, sizes, status sets,
//! record types, vendor formats, locales, criticalities, severities, failure kinds, URLs,
//! addresses, email senders, and the notification enums.
//!
//! They know nothing about TOML or the environment, so the same rule applies whether a value
//! came from the file or from a `KEEL_` variable, and each rule is tested on its own.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::model::{
    ChannelKind, RecordType, SmtpTlsMode, StatusRange, TeamsCard, VendorFormat, FAILURE_KINDS,
};
use super::suggest;
use crate::assess::{Criticality, Severity};

/// Why a value was refused, and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bad {
    pub message: String,
    pub hint: Option<String>,
}

impl Bad {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Bad {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

pub(crate) const DURATION_HINT: &str =
    "write a duration such as \"30s\", \"2m\", \"1h 30m\" or \"24h\" (units: ms, s, m, h, d)";

/// A duration such as "30s", "2m", "24h" or "1h 30m".
pub(crate) fn duration(text: &str) -> Result<Duration, Bad> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Bad::new("empty duration", DURATION_HINT));
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        // A bare number is ambiguous (seconds? milliseconds?), so ask for a unit.
        return Err(Bad::new(
            format!("duration {text:?} has no unit"),
            format!("did you mean \"{t}s\"? {DURATION_HINT}"),
        ));
    }
    humantime::parse_duration(t)
        .map_err(|e| Bad::new(format!("bad duration {text:?}: {e}"), DURATION_HINT))
}

pub(crate) const SIZE_HINT: &str =
    "write a number of bytes (1048576) or a size such as \"512KiB\", \"1MiB\" or \"2MB\"";

/// A byte size: "1MiB", "512KiB", "1048576", "2 MB".
pub(crate) fn size(text: &str) -> Result<u64, Bad> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || Bad::new(format!("bad size {text:?}"), SIZE_HINT);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        _ => return Err(bad()),
    };
    n.checked_mul(mult)
        .ok_or_else(|| Bad::new(format!("size {text:?} is too large"), SIZE_HINT))
}

pub(crate) const STATUS_HINT: &str =
    "each entry is a code (200), a class (\"2xx\") or a range (\"300-399\"), all within 100-599";

/// One `expected_status` entry given as text: "2xx", "300-399" or "204".
pub(crate) fn status_text(text: &str) -> Result<StatusRange, Bad> {
    let t = text.trim();
    let bad = || Bad::new(format!("bad status {text:?}"), STATUS_HINT);
    let lower = t.to_ascii_lowercase();
    if let Some(d) = lower.strip_suffix("xx") {
        let d: u16 = d.parse().map_err(|_| bad())?;
        if !(1..=5).contains(&d) {
            return Err(bad());
        }
        return Ok(StatusRange {
            from: d * 100,
            to: d * 100 + 99,
        });
    }
    if let Some((a, b)) = t.split_once('-') {
        let from: u16 = a.trim().parse().map_err(|_| bad())?;
        let to: u16 = b.trim().parse().map_err(|_| bad())?;
        let range = StatusRange {
            from: status_code(i64::from(from))?.from,
            to: status_code(i64::from(to))?.to,
        };
        if range.from > range.to {
            return Err(Bad::new(
                format!("status range {text:?} is backwards"),
                "write the lower code first, e.g. \"300-399\"",
            ));
        }
        return Ok(range);
    }
    let code: i64 = t.parse().map_err(|_| bad())?;
    status_code(code)
}

/// One `expected_status` entry given as a number.
pub(crate) fn status_code(code: i64) -> Result<StatusRange, Bad> {
    match u16::try_from(code) {
        Ok(c) if (100..=599).contains(&c) => Ok(StatusRange { from: c, to: c }),
        _ => Err(Bad::new(
            format!("{code} is not an HTTP status code"),
            STATUS_HINT,
        )),
    }
}

pub(crate) const RECORD_TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "TXT", "NS"];

pub(crate) fn record_type(text: &str) -> Result<RecordType, Bad> {
    Ok(match text.trim().to_ascii_uppercase().as_str() {
        "A" => RecordType::A,
        "AAAA" => RecordType::Aaaa,
        "CNAME" => RecordType::Cname,
        "MX" => RecordType::Mx,
        "TXT" => RecordType::Txt,
        "NS" => RecordType::Ns,
        _ => {
            return Err(Bad::new(
                format!("unknown DNS record type {text:?}"),
                format!("supported: {}", suggest::join(RECORD_TYPES)),
            ))
        }
    })
}

pub(crate) const VENDOR_FORMATS: &[&str] = &[
    "auto",
    "statuspage",
    "statusio",
    "slack",
    "instatus",
    "google-cloud",
    "heroku",
];

pub(crate) fn vendor_format(text: &str) -> Result<VendorFormat, Bad> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "auto" => VendorFormat::Auto,
        "statuspage" => VendorFormat::Statuspage,
        "statusio" => VendorFormat::StatusIo,
        "slack" => VendorFormat::Slack,
        "instatus" => VendorFormat::Instatus,
        "google-cloud" => VendorFormat::GoogleCloud,
        "heroku" => VendorFormat::Heroku,
        _ => {
            return Err(Bad::new(
                format!("unknown vendor format {text:?}"),
                suggest::hint(text, VENDOR_FORMATS, "known formats"),
            ))
        }
    })
}

pub(crate) const LOCALES: &[&str] = &["en", "ja"];

pub(crate) fn locale(text: &str) -> Result<String, Bad> {
    if LOCALES.contains(&text) {
        Ok(text.to_owned())
    } else {
        Err(Bad::new(
            format!("unsupported locale {text:?}"),
            format!("supported locales: {}", suggest::join(LOCALES)),
        ))
    }
}

pub(crate) const CRITICALITIES: &[&str] = &["low", "normal", "high", "critical"];

/// A component's `criticality`.
pub(crate) fn criticality(text: &str) -> Result<Criticality, Bad> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "low" => Criticality::Low,
        "normal" => Criticality::Normal,
        "high" => Criticality::High,
        "critical" => Criticality::Critical,
        _ => {
            return Err(Bad::new(
                format!("unknown criticality {text:?}"),
                suggest::hint(text, CRITICALITIES, "one of"),
            ))
        }
    })
}

pub(crate) const SEVERITIES: &[&str] = &["SEV1", "SEV2", "SEV3", "SEV4"];

/// A severity: "SEV1" (the worst) to "SEV4", any case.
pub(crate) fn severity(text: &str) -> Result<Severity, Bad> {
    text.trim().parse().map_err(|_| {
        // "sev-2", "SEV 2" and a bare "2" are near misses worth naming; string distance
        // would rank SEV1..SEV4 all alike, so it is not used here.
        let squeezed: String = text
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_uppercase();
        let digits = squeezed.strip_prefix("SEV").unwrap_or(&squeezed);
        let hint = match digits.parse::<u8>() {
            Ok(d @ 1..=4) => format!("did you mean `SEV{d}`?"),
            _ => format!("one of {} (SEV1 is the worst)", suggest::join(SEVERITIES)),
        };
        Bad::new(format!("unknown severity {text:?}"), hint)
    })
}

/// A `failure_kind`: one of [`FAILURE_KINDS`]. A misspelt kind would silently match nothing.
pub(crate) fn failure_kind(text: &str) -> Result<String, Bad> {
    let t = text.trim();
    if FAILURE_KINDS.contains(&t) {
        Ok(t.to_owned())
    } else {
        Err(Bad::new(
            format!("unknown failure kind {text:?}"),
            suggest::hint(t, FAILURE_KINDS, "failure kinds"),
        ))
    }
}

/// An `http://` or `https://` URL with a host.
pub(crate) fn http_url(text: &str) -> Result<String, Bad> {
    let hint = "write a full URL such as \"https://example.com/health\"";
    let parsed = url::Url::parse(text.trim())
        .map_err(|e| Bad::new(format!("bad URL {text:?}: {e}"), hint))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Bad::new(
            format!("URL {text:?} has scheme `{}`", parsed.scheme()),
            "only http:// and https:// URLs can be checked",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Bad::new(format!("URL {text:?} has no host"), hint));
    }
    Ok(text.trim().to_owned())
}

/// A URL that carries a token (a chat webhook): `http://` or `https://` with a host. The
/// text is never repeated in the message, since diagnostics end up in logs and CI output.
pub(crate) fn secret_url(text: &str) -> Result<String, Bad> {
    let hint = "write the full webhook URL the service gave you, starting with https://";
    let parsed = url::Url::parse(text.trim()).map_err(|e| {
        Bad::new(
            format!("not a valid URL ({e}); the value is not shown"),
            hint,
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Bad::new(
            format!("URL has scheme `{}`", parsed.scheme()),
            "only http:// and https:// URLs can be posted to",
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(Bad::new("URL has no host; the value is not shown", hint));
    }
    Ok(text.trim().to_owned())
}

/// The name of an environment variable: letters, digits and `_`, not starting with a digit.
pub(crate) fn env_var_name(text: &str) -> Result<String, Bad> {
    let ok = text
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(Bad::new(
            format!("{text:?} is not an environment variable name"),
            "write the variable's name, not its value, e.g. \"SLACK_WEBHOOK_URL\"",
        ))
    }
}

pub(crate) const SENDER_HINT: &str =
    "write an address such as \"status@example.com\" or \"Keel Status <status@example.com>\"";

/// An email sender: `a@b` or `Name <a@b>`. A light check that catches the usual slips
/// (no `@`, a stray space, an unclosed `<`); the mail library has the last word.
pub(crate) fn sender(text: &str) -> Result<String, Bad> {
    let t = text.trim();
    let bad = |why: &str| Bad::new(format!("bad sender {text:?}: {why}"), SENDER_HINT);
    let address = match t.find('<') {
        Some(i) => {
            let Some(inner) = t[i + 1..].strip_suffix('>') else {
                return Err(bad("`<` must be closed by `>` at the end"));
            };
            if t[..i].contains('>') {
                return Err(bad("`>` before `<`"));
            }
            inner.trim()
        }
        None if t.contains('>') => return Err(bad("`>` without `<`")),
        None => t,
    };
    if address.is_empty() {
        return Err(bad("no address"));
    }
    if address
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
    {
        return Err(bad(
            "the address contains a space or one of `<`, `>`, `,`, `;` (a name goes before <address>)",
        ));
    }
    let Some((local, domain)) = address.rsplit_once('@') else {
        return Err(bad("no `@` in the address"));
    };
    if local.is_empty() || local.contains('@') {
        return Err(bad(
            "the address needs exactly one `@` with something before it",
        ));
    }
    let labels_ok = !domain.is_empty()
        && domain
            .split('.')
            .all(|l| !l.is_empty() && l.chars().all(|c| c.is_alphanumeric() || c == '-'));
    if !labels_ok {
        return Err(bad("the part after `@` is not a domain name"));
    }
    Ok(t.to_owned())
}

pub(crate) const SMTP_TLS_MODES: &[&str] = &["none", "starttls", "tls"];

pub(crate) fn smtp_tls(text: &str) -> Result<SmtpTlsMode, Bad> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "none" => SmtpTlsMode::None,
        "starttls" => SmtpTlsMode::Starttls,
        "tls" => SmtpTlsMode::Tls,
        _ => {
            return Err(Bad::new(
                format!("unknown SMTP TLS mode {text:?}"),
                suggest::hint(text, SMTP_TLS_MODES, "one of"),
            ))
        }
    })
}

pub(crate) const CHANNEL_KINDS: &[&str] = &["slack", "discord", "teams", "webhook"];

pub(crate) fn channel_kind(text: &str) -> Result<ChannelKind, Bad> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "slack" => ChannelKind::Slack,
        "discord" => ChannelKind::Discord,
        "teams" => ChannelKind::Teams,
        "webhook" => ChannelKind::Webhook,
        _ => {
            return Err(Bad::new(
                format!("unknown channel kind {text:?}"),
                suggest::hint(text, CHANNEL_KINDS, "channel kinds"),
            ))
        }
    })
}

pub(crate) const TEAMS_CARDS: &[&str] = &["adaptive", "message_card"];

pub(crate) fn teams_card(text: &str) -> Result<TeamsCard, Bad> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "adaptive" => TeamsCard::Adaptive,
        "message_card" => TeamsCard::MessageCard,
        _ => {
            return Err(Bad::new(
                format!("unknown Teams card {text:?}"),
                suggest::hint(text, TEAMS_CARDS, "one of"),
            ))
        }
    })
}

/// An address to listen on: "127.0.0.1:8080" or "[::1]:8080".
pub(crate) fn socket_addr(text: &str) -> Result<SocketAddr, Bad> {
    text.trim().parse().map_err(|_| {
        Bad::new(
            format!("bad socket address {text:?}"),
            "write an IP address and a port, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\" \
             (host names are not accepted here)",
        )
    })
}

/// A DNS resolver: "127.0.0.1:5353", or an IP alone for port 53.
pub(crate) fn resolver(text: &str) -> Result<SocketAddr, Bad> {
    let t = text.trim();
    if let Ok(ip) = t.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    t.parse().map_err(|_| {
        Bad::new(
            format!("bad resolver address {text:?}"),
            "write an IP address, optionally with a port: \"1.1.1.1\", \"127.0.0.1:5353\" or \"[::1]:53\"",
        )
    })
}

/// The database URL's scheme picks the store, so anything else is refused up front.
pub(crate) fn database_url(text: &str) -> Result<String, Bad> {
    let t = text.trim();
    let scheme = t
        .split_once("://")
        .map(|(s, _)| s)
        .or_else(|| t.split_once(':').map(|(s, _)| s));
    match scheme {
        Some("postgres" | "postgresql" | "sqlite") => Ok(t.to_owned()),
        _ => Err(Bad::new(
            // The URL may hold a password, so it is not repeated in the message.
            "database_url must start with postgres://, postgresql:// or sqlite://",
            "leave database_url unset to use SQLite under data_dir",
        )),
    }
}

/// A host name or IP address for tcp/tls/dns checks: not a URL, no port.
pub(crate) fn host(text: &str) -> Result<String, Bad> {
    let t = text.trim();
    if t.is_empty() {
        return Err(Bad::new(
            "empty host",
            "write a host name or IP address, e.g. \"db.internal\" or \"127.0.0.1\"",
        ));
    }
    if t.contains("://") || t.contains('/') {
        return Err(Bad::new(
            format!("host {text:?} looks like a URL"),
            "write only the host name or IP address; the port goes in `port`",
        ));
    }
    if t.parse::<IpAddr>().is_err() && (t.contains(':') || t.chars().any(char::is_whitespace)) {
        return Err(Bad::new(
            format!("bad host {text:?}"),
            "write only the host name or IP address; the port goes in `port`",
        ));
    }
    Ok(t.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        let e = duration("5").unwrap_err();
        assert!(e.hint.unwrap().contains("\"5s\""));
        assert!(duration("5 parsecs").is_err());
        assert!(duration("").is_err());
        assert!(duration("-5s").is_err());
    }

    /// Whatever the duration, its words read back as the same duration through the
    /// config's parser ([`crate::human::duration`] writes what this reads).
    #[test]
    fn durations_parse_back_as_config_values() {
        let samples = [
            1,
            999,
            1000,
            1001,
            59_999,
            60_000,
            90_000,
            3_599_999,
            3_600_000,
            86_399_999,
            86_400_000,
            90_061_001,
            30 * 86_400_000 + 1,
        ];
        for n in samples {
            let d = Duration::from_millis(n);
            let text = crate::human::duration(d);
            assert_eq!(duration(&text), Ok(d), "{n} ms → {text:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(size("1MiB"), Ok(1 << 20));
        assert_eq!(size("512KiB"), Ok(512 << 10));
        assert_eq!(size("2 MB"), Ok(2_000_000));
        assert_eq!(size("100"), Ok(100));
        assert!(size("1XB").is_err());
        assert!(size("MiB").is_err());
        assert!(size("99999999999999999999GiB").is_err());
    }

    #[test]
    fn statuses() {
        assert_eq!(status_text("2xx"), Ok(StatusRange { from: 200, to: 299 }));
        assert_eq!(
            status_text("300-399"),
            Ok(StatusRange { from: 300, to: 399 })
        );
        assert_eq!(status_text("204"), Ok(StatusRange { from: 204, to: 204 }));
        assert_eq!(status_code(200), Ok(StatusRange { from: 200, to: 200 }));
        assert!(status_text("6xx").is_err());
        assert!(status_text("399-300").is_err());
        assert!(status_text("abc").is_err());
        assert!(status_code(99).is_err());
        assert!(status_code(600).is_err());
        assert!(status_code(-1).is_err());
    }

    #[test]
    fn record_types_and_formats() {
        assert_eq!(record_type("aaaa"), Ok(RecordType::Aaaa));
        assert!(record_type("SRV")
            .unwrap_err()
            .hint
            .unwrap()
            .contains("CNAME"));
        assert_eq!(vendor_format("google-cloud"), Ok(VendorFormat::GoogleCloud));
        assert_eq!(
            vendor_format("statuspag").unwrap_err().hint.as_deref(),
            Some("did you mean `statuspage`?")
        );
    }

    #[test]
    fn criticalities_severities_and_failure_kinds() {
        assert_eq!(criticality("High"), Ok(Criticality::High));
        assert_eq!(
            criticality("critcal").unwrap_err().hint.as_deref(),
            Some("did you mean `critical`?")
        );
        assert_eq!(severity("sev2"), Ok(Severity::Sev2));
        assert_eq!(
            severity("sev-3").unwrap_err().hint.as_deref(),
            Some("did you mean `SEV3`?")
        );
        assert_eq!(
            severity("SEV5").unwrap_err().hint.as_deref(),
            Some("one of `SEV1`, `SEV2`, `SEV3`, `SEV4` (SEV1 is the worst)")
        );
        assert!(severity("urgent")
            .unwrap_err()
            .hint
            .unwrap()
            .contains("`SEV4`"));
        assert_eq!(failure_kind("tcp"), Ok("tcp".to_owned()));
        assert_eq!(
            failure_kind("vendr").unwrap_err().hint.as_deref(),
            Some("did you mean `vendor`?")
        );
    }

    #[test]
    fn senders() {
        assert!(sender("status@example.com").is_ok());
        assert!(sender("Keel Status <status@example.com>").is_ok());
        assert!(sender("\"Acme, Inc.\" <status@mail.example.co.jp>").is_ok());
        assert!(sender("<status@example.com>").is_ok());
        for bad in [
            "",
            "status",
            "status@",
            "@example.com",
            "a@b@example.com",
            "Keel status@example.com",
            "Keel <status@example.com",
            "Keel status@example.com>",
            "Keel <>",
            "a@example..com",
        ] {
            assert!(sender(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn secret_urls_never_echo_the_value() {
        assert!(secret_url("https://hooks.slack.com/services/T0/B0/xyz").is_ok());
        for bad in [
            "hooks.slack.com/services/T0/B0/tok3n",
            "ftp://h/tok3n",
            "http://[tok3n/",
        ] {
            let e = secret_url(bad).unwrap_err();
            assert!(!e.message.contains("tok3n"), "{e:?}");
        }
    }

    #[test]
    fn notify_enums_and_variable_names() {
        assert_eq!(smtp_tls("STARTTLS"), Ok(SmtpTlsMode::Starttls));
        assert_eq!(
            smtp_tls("ssl").unwrap_err().hint.as_deref(),
            Some("one of: `none`, `starttls`, `tls`")
        );
        assert_eq!(channel_kind("teams"), Ok(ChannelKind::Teams));
        assert_eq!(
            channel_kind("slak").unwrap_err().hint.as_deref(),
            Some("did you mean `slack`?")
        );
        assert_eq!(teams_card("message_card"), Ok(TeamsCard::MessageCard));
        assert_eq!(
            teams_card("messagecard").unwrap_err().hint.as_deref(),
            Some("did you mean `message_card`?")
        );
        assert!(env_var_name("SLACK_URL_2").is_ok());
        assert!(env_var_name("_X").is_ok());
        assert!(env_var_name("2X").is_err());
        assert!(env_var_name("https://x").is_err());
        assert!(env_var_name("").is_err());
    }

    #[test]
    fn addresses_and_urls() {
        assert!(socket_addr("127.0.0.1:8080").is_ok());
        assert!(socket_addr("[::1]:8080").is_ok());
        assert!(socket_addr("localhost:8080").is_err());
        assert!(socket_addr("127.0.0.1").is_err());
        assert_eq!(resolver("127.0.0.1").map(|a| a.port()), Ok(53));
        assert_eq!(resolver("127.0.0.1:5353").map(|a| a.port()), Ok(5353));
        assert!(http_url("http://127.0.0.1:8080/healthz").is_ok());
        assert!(http_url("ftp://example.com/").is_err());
        assert!(http_url("example.com/health").is_err());
        assert!(database_url("postgres://u:p@h/db").is_ok());
        assert!(database_url("sqlite://x.db").is_ok());
        let e = database_url("mysql://u:secret@h/db").unwrap_err();
        assert!(!e.message.contains("secret"));
        assert!(host("db.internal").is_ok());
        assert!(host("::1").is_ok());
        assert!(host("http://x").is_err());
        assert!(host("x:5432").is_err());
    }
}
