//! Pure parsers for the scalar values written as strings: durations, sizes, status sets,
//! record types, vendor formats, locales, criticalities, severities, failure kinds, URLs and
//! addresses.
//!
//! They know nothing about TOML or the environment, so the same rule applies whether a value
//! came from the file or from a `KEEL_` variable, and each rule is tested on its own.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::model::{RecordType, StatusRange, VendorFormat, FAILURE_KINDS};
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
