//! The `dns` check: ask a resolver for one record type and compare the answers.
//!
//! Resolvers are built lazily and cached per resolver address (or once for the system
//! configuration), never per check: building one spawns no task but allocates its connection
//! pool, and UDP sockets are reused across queries. Answer caching is off, so every check
//! really asks the server, and `/etc/hosts` is ignored, because the check is about DNS.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType as WireType};
use hickory_proto::xfer::Protocol;
use hickory_proto::ProtoErrorKind;
use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::{ResolveError, ResolveErrorKind, TokioResolver};
use keel_core::config::{DnsCheck, RecordType};

use super::unknown;
use crate::Outcome;

/// How long one query waits before hickory retries it. The check's own timeout bounds the
/// whole lookup; this only lets a lost UDP packet be retried within it.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Answers named in an "up" reason before eliding the rest.
const SHOWN_ANSWERS: usize = 5;

/// Resolvers by address; `None` is the system configuration.
#[derive(Default)]
pub(super) struct Resolvers {
    cache: Mutex<HashMap<Option<SocketAddr>, Arc<TokioResolver>>>,
}

impl Resolvers {
    fn get(&self, addr: Option<SocketAddr>) -> Result<Arc<TokioResolver>, ResolveError> {
        // Poisoning would only mean another check panicked mid-insert; the map is still sound.
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = cache.get(&addr) {
            return Ok(r.clone());
        }
        let resolver = Arc::new(build_resolver(addr)?);
        cache.insert(addr, resolver.clone());
        Ok(resolver)
    }

    pub(super) async fn run(&self, check: &DnsCheck, start: Instant) -> Outcome {
        let resolver = match self.get(check.resolver) {
            Ok(r) => r,
            // Keel cannot tell anything about the name without a resolver: not the target's fault.
            Err(e) => {
                return unknown(
                    format!("DNS: no usable resolver configuration: {e}"),
                    start.elapsed(),
                )
            }
        };
        let kind = type_name(check.record_type);
        let lookup = resolver
            .lookup(check.name.as_str(), wire_type(check.record_type))
            .await;
        let latency = start.elapsed();
        let lookup = match lookup {
            Ok(l) => l,
            Err(e) => return Outcome::down(describe_error(&e, check), latency),
        };
        let answers: Vec<String> = lookup
            .record_iter()
            .filter(|r| r.record_type() == wire_type(check.record_type))
            .filter_map(|r| render(r.data()))
            .collect();
        if answers.is_empty() {
            return Outcome::down(format!("DNS: no {kind} record for {}", check.name), latency);
        }
        if !check.expected.is_empty()
            && !check.expected.iter().any(|want| {
                answers
                    .iter()
                    .any(|got| matches(check.record_type, want, got))
            })
        {
            return Outcome::down(
                format!(
                    "DNS: expected {}, got {}",
                    check.expected.join(" or "),
                    list(&answers)
                ),
                latency,
            );
        }
        Outcome::up(format!("DNS: {}", list(&answers)), latency)
    }
}

fn build_resolver(addr: Option<SocketAddr>) -> Result<TokioResolver, ResolveError> {
    let mut builder = match addr {
        Some(addr) => {
            let config = ResolverConfig::from_parts(
                None,
                vec![],
                vec![NameServerConfig::new(addr, Protocol::Udp)],
            );
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        }
        None => TokioResolver::builder_tokio()?,
    };
    let opts: &mut ResolverOpts = builder.options_mut();
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.timeout = QUERY_TIMEOUT;
    opts.attempts = 2;
    Ok(builder.build())
}

fn wire_type(t: RecordType) -> WireType {
    match t {
        RecordType::A => WireType::A,
        RecordType::Aaaa => WireType::AAAA,
        RecordType::Cname => WireType::CNAME,
        RecordType::Mx => WireType::MX,
        RecordType::Txt => WireType::TXT,
        RecordType::Ns => WireType::NS,
    }
}

fn type_name(t: RecordType) -> &'static str {
    match t {
        RecordType::A => "A",
        RecordType::Aaaa => "AAAA",
        RecordType::Cname => "CNAME",
        RecordType::Mx => "MX",
        RecordType::Txt => "TXT",
        RecordType::Ns => "NS",
    }
}

/// One answer as text: an address, a name without its trailing dot, "10 mail.example.com",
/// or a TXT record's strings joined.
fn render(data: &RData) -> Option<String> {
    Some(match data {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(n) => name_text(&n.0),
        RData::NS(n) => name_text(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference(), name_text(mx.exchange())),
        RData::TXT(txt) => txt
            .txt_data()
            .iter()
            .map(|part| String::from_utf8_lossy(part))
            .collect::<String>(),
        _ => return None,
    })
}

fn name_text(name: &hickory_proto::rr::Name) -> String {
    normalize_name(&name.to_utf8())
}

fn normalize_name(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Whether an expected answer (as the user wrote it) matches one we got (as [`render`]ed).
fn matches(t: RecordType, want: &str, got: &str) -> bool {
    match t {
        RecordType::A | RecordType::Aaaa => {
            match (want.trim().parse::<IpAddr>(), got.parse::<IpAddr>()) {
                (Ok(w), Ok(g)) => w == g,
                _ => want.trim() == got,
            }
        }
        // TXT is case-sensitive data, not a name.
        RecordType::Txt => want.trim() == got.trim(),
        // "mail.example.com" matches any preference; "10 mail.example.com" only that one.
        RecordType::Mx => {
            let want = normalize_name(want);
            want == got
                || got
                    .split_once(' ')
                    .is_some_and(|(_, exchange)| exchange == want)
        }
        RecordType::Cname | RecordType::Ns => normalize_name(want) == got,
    }
}

fn list(answers: &[String]) -> String {
    let mut shown = answers
        .iter()
        .take(SHOWN_ANSWERS)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if answers.len() > SHOWN_ANSWERS {
        shown.push_str(&format!(" and {} more", answers.len() - SHOWN_ANSWERS));
    }
    shown
}

fn describe_error(e: &ResolveError, check: &DnsCheck) -> String {
    let kind = type_name(check.record_type);
    let name = &check.name;
    let server = match check.resolver {
        Some(a) => a.to_string(),
        None => "the system resolver".into(),
    };
    let ResolveErrorKind::Proto(proto) = e.kind() else {
        return format!("DNS: {e}");
    };
    match proto.kind() {
        ProtoErrorKind::NoRecordsFound { response_code, .. } => match *response_code {
            ResponseCode::NoError => format!("DNS: no {kind} record for {name}"),
            ResponseCode::NXDomain => format!("DNS: {name} does not exist (NXDOMAIN)"),
            ResponseCode::ServFail => format!("DNS: server failure (SERVFAIL) for {name}"),
            ResponseCode::Refused => format!("DNS: {server} refused the query for {name}"),
            other => format!("DNS: {server} answered {other} for {name}"),
        },
        ProtoErrorKind::Timeout => format!("DNS: no answer from {server} (timed out)"),
        ProtoErrorKind::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!("DNS: {server} refused the connection")
        }
        _ => format!("DNS: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_compare_normalized() {
        assert!(matches(RecordType::A, " 10.0.0.1 ", "10.0.0.1"));
        assert!(matches(RecordType::Aaaa, "0:0::1", "::1"));
        assert!(!matches(RecordType::A, "10.0.0.1", "127.0.0.1"));
        assert!(matches(
            RecordType::Cname,
            "Target.Example.COM.",
            "target.example.com"
        ));
        assert!(matches(
            RecordType::Mx,
            "mail.example.com.",
            "10 mail.example.com"
        ));
        assert!(matches(
            RecordType::Mx,
            "10 mail.example.com",
            "10 mail.example.com"
        ));
        assert!(!matches(
            RecordType::Mx,
            "20 mail.example.com",
            "10 mail.example.com"
        ));
        assert!(matches(RecordType::Txt, "v=spf1 -all", "v=spf1 -all"));
        assert!(!matches(RecordType::Txt, "V=SPF1 -ALL", "v=spf1 -all"));
    }

    #[test]
    fn long_answer_lists_are_elided() {
        let many: Vec<String> = (1..=7).map(|i| format!("10.0.0.{i}")).collect();
        assert_eq!(
            list(&many),
            "10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5 and 2 more"
        );
    }
}
