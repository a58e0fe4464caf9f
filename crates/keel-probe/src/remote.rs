//! The wire form of remote probing: what the server hands a probe at a location (the monitors
//! to run, with everything [`crate::check::Checker::run`] needs) and what the probe posts back.
//!
//! A probe runs the same check code as the server, so the check configuration travels whole —
//! converted from and back to [`keel_core::config::Check`] here, in one place, with a round-trip
//! test. Heartbeat monitors never travel: beats are pushed to the server, and their token is a
//! secret no probe needs. The server, not the probe, confirms results and stamps them with its
//! own clock, so nothing here carries a time.

use std::net::SocketAddr;
use std::time::Duration;

pub use keel_core::config::is_probe_location;
use keel_core::config::{
    Check, DnsCheck, HttpCheck, Monitor, RecordType, StatusRange, TcpCheck, TlsCheck,
};
use keel_core::{ComponentId, Health, MonitorId};
use serde::{Deserialize, Serialize};

/// The header every HTTP check from a probe carries, naming its location, so the target's
/// logs show where a request came from.
pub const LOCATION_HEADER: &str = "X-Keel-Location";

/// The most results one `POST /api/v1/probe/results` may carry.
pub const MAX_RESULTS: usize = 1000;

/// `GET /api/v1/probe/assignments?location=osaka`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignments {
    pub location: String,
    /// Changes whenever anything in `monitors` changes; every results answer carries the
    /// server's, so a probe knows when to fetch again.
    pub version: String,
    pub monitors: Vec<Assignment>,
}

/// One monitor a probe runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    pub id: String,
    pub component: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retry_interval_ms: u64,
    /// The monitor's thresholds: the probe re-checks sooner while a failure is unconfirmed,
    /// as the server's scheduler does.
    pub confirmations: u32,
    pub recoveries: u32,
    pub check: RemoteCheck,
}

/// [`Check`] on the wire, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RemoteCheck {
    Http {
        url: String,
        method: String,
        headers: Vec<(String, String)>,
        /// Inclusive ranges: `[[200, 299]]`.
        expected_status: Vec<(u16, u16)>,
        keyword: Option<String>,
        keyword_absent: Option<String>,
        json_pointer: Option<String>,
        json_equals: Option<serde_json::Value>,
        max_latency_ms: Option<u64>,
        follow_redirects: bool,
        verify_tls: bool,
    },
    Tcp {
        host: String,
        port: u16,
    },
    Dns {
        name: String,
        /// "A", "AAAA", "CNAME", "MX", "TXT" or "NS".
        record_type: String,
        expected: Vec<String>,
        resolver: Option<SocketAddr>,
    },
    Tls {
        host: String,
        port: u16,
        server_name: Option<String>,
        min_days: u32,
        verify: bool,
    },
}

/// `POST /api/v1/probe/results`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    pub location: String,
    pub results: Vec<ProbeResult>,
}

/// One check's outcome at the probe, unconfirmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub monitor: String,
    pub health: Health,
    pub reason: String,
    #[serde(default)]
    pub latency_ms: Option<u64>,
}

/// The answer to a results post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    pub accepted: usize,
    /// The assignments' current version for the location (see [`Assignments::version`]).
    pub version: String,
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn record_type_name(t: RecordType) -> &'static str {
    match t {
        RecordType::A => "A",
        RecordType::Aaaa => "AAAA",
        RecordType::Cname => "CNAME",
        RecordType::Mx => "MX",
        RecordType::Txt => "TXT",
        RecordType::Ns => "NS",
    }
}

fn record_type(name: &str) -> Result<RecordType, String> {
    Ok(match name {
        "A" => RecordType::A,
        "AAAA" => RecordType::Aaaa,
        "CNAME" => RecordType::Cname,
        "MX" => RecordType::Mx,
        "TXT" => RecordType::Txt,
        "NS" => RecordType::Ns,
        other => return Err(format!("unknown DNS record type {other:?}")),
    })
}

impl RemoteCheck {
    /// The wire form of a check; `None` for a heartbeat, which no probe runs.
    pub fn from_check(check: &Check) -> Option<RemoteCheck> {
        Some(match check {
            Check::Http(h) => RemoteCheck::Http {
                url: h.url.clone(),
                method: h.method.clone(),
                headers: h.headers.clone(),
                expected_status: h.expected_status.iter().map(|r| (r.from, r.to)).collect(),
                keyword: h.keyword.clone(),
                keyword_absent: h.keyword_absent.clone(),
                json_pointer: h.json_pointer.as_ref().map(|(p, _)| p.clone()),
                json_equals: h.json_pointer.as_ref().map(|(_, v)| v.clone()),
                max_latency_ms: h.max_latency.map(ms),
                follow_redirects: h.follow_redirects,
                verify_tls: h.verify_tls,
            },
            Check::Tcp(t) => RemoteCheck::Tcp {
                host: t.host.clone(),
                port: t.port,
            },
            Check::Dns(d) => RemoteCheck::Dns {
                name: d.name.clone(),
                record_type: record_type_name(d.record_type).to_owned(),
                expected: d.expected.clone(),
                resolver: d.resolver,
            },
            Check::Tls(t) => RemoteCheck::Tls {
                host: t.host.clone(),
                port: t.port,
                server_name: t.server_name.clone(),
                min_days: t.min_days,
                verify: t.verify,
            },
            Check::Heartbeat(_) => return None,
        })
    }

    /// The check the probe runs.
    pub fn to_check(&self) -> Result<Check, String> {
        Ok(match self {
            RemoteCheck::Http {
                url,
                method,
                headers,
                expected_status,
                keyword,
                keyword_absent,
                json_pointer,
                json_equals,
                max_latency_ms,
                follow_redirects,
                verify_tls,
            } => Check::Http(HttpCheck {
                url: url.clone(),
                method: method.clone(),
                headers: headers.clone(),
                expected_status: expected_status
                    .iter()
                    .map(|&(from, to)| StatusRange { from, to })
                    .collect(),
                keyword: keyword.clone(),
                keyword_absent: keyword_absent.clone(),
                json_pointer: match (json_pointer, json_equals) {
                    (Some(p), Some(v)) => Some((p.clone(), v.clone())),
                    (None, None) => None,
                    _ => return Err("json_pointer and json_equals come together".into()),
                },
                max_latency: max_latency_ms.map(Duration::from_millis),
                follow_redirects: *follow_redirects,
                verify_tls: *verify_tls,
            }),
            RemoteCheck::Tcp { host, port } => Check::Tcp(TcpCheck {
                host: host.clone(),
                port: *port,
            }),
            RemoteCheck::Dns {
                name,
                record_type: rt,
                expected,
                resolver,
            } => Check::Dns(DnsCheck {
                name: name.clone(),
                record_type: record_type(rt)?,
                expected: expected.clone(),
                resolver: *resolver,
            }),
            RemoteCheck::Tls {
                host,
                port,
                server_name,
                min_days,
                verify,
            } => Check::Tls(TlsCheck {
                host: host.clone(),
                port: *port,
                server_name: server_name.clone(),
                min_days: *min_days,
                verify: *verify,
            }),
        })
    }
}

impl Assignment {
    /// What a probe needs of `monitor`; `None` for a heartbeat monitor.
    pub fn from_monitor(monitor: &Monitor) -> Option<Assignment> {
        Some(Assignment {
            id: monitor.id.to_string(),
            component: monitor.component.to_string(),
            interval_ms: ms(monitor.interval),
            timeout_ms: ms(monitor.timeout),
            retry_interval_ms: ms(monitor.retry_interval),
            confirmations: monitor.confirmations,
            recoveries: monitor.recoveries,
            check: RemoteCheck::from_check(&monitor.check)?,
        })
    }

    /// The monitor a probe at `location` schedules: the same check, whose HTTP requests also
    /// say where they come from ([`LOCATION_HEADER`]) unless the monitor sets that header
    /// itself. Durations of zero (a server never sends them) become a millisecond, so a bad
    /// answer cannot make the probe spin.
    pub fn to_monitor(&self, location: &str) -> Result<Monitor, String> {
        let positive = |n: u64| Duration::from_millis(n.max(1));
        let mut check = self.check.to_check()?;
        if let Check::Http(h) = &mut check {
            if !h
                .headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(LOCATION_HEADER))
            {
                h.headers
                    .push((LOCATION_HEADER.to_owned(), location.to_owned()));
            }
        }
        Ok(Monitor {
            id: MonitorId::parse(self.id.clone())
                .map_err(|e| format!("monitor id {:?}: {e}", self.id))?,
            component: ComponentId::parse(self.component.clone())
                .map_err(|e| format!("component id {:?}: {e}", self.component))?,
            interval: positive(self.interval_ms),
            timeout: positive(self.timeout_ms),
            retry_interval: positive(self.retry_interval_ms),
            confirmations: self.confirmations,
            recoveries: self.recoveries,
            locations: vec![location.to_owned()],
            quorum: 1,
            check,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> keel_core::config::Config {
        keel_core::config::parse(
            r#"
[[component]]
id = "api"
name = "API"

[[monitor]]
id = "h"
component = "api"
kind = "http"
url = "https://127.0.0.1:8443/status"
method = "post"
headers = { "X-Api-Key" = "k" }
expected_status = [200, "3xx"]
keyword = "ok"
keyword_absent = "error"
json_pointer = "/checks/0"
json_equals = { ok = true }
max_latency = "750ms"
follow_redirects = false
verify_tls = false
interval = "10s"
timeout = "2s"
retry_interval = "1s"
confirmations = 3
recoveries = 2
locations = ["local", "osaka"]

[[monitor]]
id = "d"
component = "api"
kind = "dns"
name = "example.test"
record_type = "aaaa"
expected = ["::1"]
resolver = "127.0.0.1:5353"
locations = ["osaka"]

[[monitor]]
id = "t"
component = "api"
kind = "tls"
host = "127.0.0.1"
port = 8443
server_name = "localhost"
min_days = 7
verify = false

[[monitor]]
id = "p"
component = "api"
kind = "tcp"
host = "127.0.0.1"
port = 5432

[[monitor]]
id = "b"
component = "api"
kind = "heartbeat"
token = "0123456789abcdef0123"
"#,
            "keel.toml",
            &[],
        )
        .expect("parses")
    }

    #[test]
    fn every_check_survives_the_wire_and_heartbeats_never_travel() {
        for m in &config().monitors {
            let Some(a) = Assignment::from_monitor(m) else {
                assert_eq!(m.kind(), "heartbeat");
                continue;
            };
            let json = serde_json::to_string(&a).unwrap();
            assert!(!json.contains("0123456789abcdef0123"));
            let back: Assignment = serde_json::from_str(&json).unwrap();
            let run = back.to_monitor("osaka").unwrap();
            let mut expected = m.check.clone();
            if let Check::Http(h) = &mut expected {
                h.headers.push(("X-Keel-Location".into(), "osaka".into()));
            }
            assert_eq!(run.check, expected, "{}", m.id);
            assert_eq!(
                (run.interval, run.timeout, run.retry_interval),
                (m.interval, m.timeout, m.retry_interval)
            );
            assert_eq!(
                (run.confirmations, run.recoveries),
                (m.confirmations, m.recoveries)
            );
            assert_eq!(run.id, m.id);
        }
    }

    #[test]
    fn a_location_header_set_by_the_monitor_is_kept() {
        let mut m = config().monitors[0].clone();
        if let Check::Http(h) = &mut m.check {
            h.headers.push(("x-keel-location".into(), "mine".into()));
        }
        let run = Assignment::from_monitor(&m)
            .unwrap()
            .to_monitor("osaka")
            .unwrap();
        let Check::Http(h) = run.check else { panic!() };
        let loc: Vec<_> = h
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(LOCATION_HEADER))
            .collect();
        assert_eq!(loc, [&("x-keel-location".to_string(), "mine".to_string())]);
    }

    #[test]
    fn results_ignore_a_client_time_and_bad_wire_checks_are_refused() {
        let r: Results = serde_json::from_str(
            r#"{"location":"osaka","results":[{"monitor":"api","health":"down","reason":"HTTP 503","latency_ms":12,"at":"1999-01-01T00:00:00Z"}]}"#,
        )
        .unwrap();
        assert_eq!(r.results[0].health, Health::Down);
        let bad = RemoteCheck::Dns {
            name: "x".into(),
            record_type: "SRV".into(),
            expected: vec![],
            resolver: None,
        };
        assert!(bad.to_check().is_err());
        assert!(is_probe_location("osaka") && !is_probe_location("local"));
        assert!(!is_probe_location("Osaka") && !is_probe_location(""));
    }
}
