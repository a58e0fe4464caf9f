//! Reads one `[[monitor]]`: the keys every monitor shares, then those of its kind.
//!
//! The kind decides which keys are allowed, so a key of another kind (`port` on an http
//! monitor) is reported as such rather than as a plain unknown key.

use std::time::Duration;

use toml_edit::{Item, Value};

use super::model::*;
use super::read::{Field, Reader, Tbl};
use super::validate::{Edge, Ref, Refs};
use super::values::{self, Bad};
use super::{keys, suggest};
use crate::ids::{ComponentId, MonitorId};

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

pub(crate) fn monitor(r: &mut Reader<'_>, t: &Tbl<'_>, refs: &mut Refs) -> Option<Monitor> {
    let id = super::parse::read_id(r, t, "id = \"api-health\"");
    if let Some((raw, pos, _)) = &id {
        refs.monitors.push(Ref {
            name: raw.clone(),
            pos: *pos,
        });
    }
    let kind = t
        .require(
            r,
            "kind",
            &format!(
                "kind = \"http\" (one of {})",
                keys::MONITOR_KINDS.join(", ")
            ),
        )
        .and_then(|f| {
            let k = r.string(&f)?;
            if keys::MONITOR_KINDS.contains(&k.as_str()) {
                return Some(k);
            }
            let close = suggest::closest(&k, keys::MONITOR_KINDS.iter().copied())
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            r.bad(
                &f,
                Bad::new(
                    format!("unknown monitor kind {k:?}"),
                    format!(
                        "{close}monitor kinds: {}",
                        suggest::join(keys::MONITOR_KINDS)
                    ),
                ),
            );
            None
        });

    let label = match (&id, &kind) {
        (Some((id, _, _)), Some(k)) => format!("{k} monitor `{id}`"),
        (Some((id, _, _)), None) => format!("monitor `{id}`"),
        (None, Some(k)) => format!("[[monitor]] ({k})"),
        (None, None) => "[[monitor]]".to_owned(),
    };
    let t = Tbl {
        path: t.path.clone(),
        display: label,
        table: t.table,
        pos: t.pos,
        env: None,
    };
    unknown_keys(r, &t, kind.as_deref());

    let component = t
        .require(r, "component", "component = \"api\"")
        .and_then(|f| {
            let name = r.string(&f)?;
            let from = id
                .as_ref()
                .map(|(raw, _, _)| raw.clone())
                .unwrap_or_default();
            refs.monitor_components.push(Edge {
                from,
                to: Ref {
                    name: name.clone(),
                    pos: f.pos,
                },
            });
            // A malformed name cannot match a component; validate.rs reports it as unknown.
            ComponentId::parse(name).ok()
        });

    let interval = t
        .get(r, "interval")
        .map_or(Some(Duration::from_secs(30)), |f| r.duration(&f, false));
    let timeout = t
        .get(r, "timeout")
        .map_or(Some(Duration::from_secs(5)), |f| r.duration(&f, false));
    let retry_interval = match t.get(r, "retry_interval") {
        None => interval.map(|i| i.min(Duration::from_secs(5))),
        Some(f) => r.duration(&f, false),
    };
    let confirmations = t.get(r, "confirmations").map_or(Some(2), |f| count(r, &f));
    let recoveries = t.get(r, "recoveries").map_or(Some(1), |f| count(r, &f));
    let locations = match t.get(r, "locations") {
        None => Some(vec![LOCAL.to_owned()]),
        Some(f) => locations(r, &f, kind.as_deref()),
    };
    let quorum = quorum(r, &t, locations.as_deref());

    let check = match kind.as_deref() {
        Some("http") => http(r, &t).map(Check::Http),
        Some("tcp") => tcp(r, &t).map(Check::Tcp),
        Some("dns") => dns(r, &t).map(Check::Dns),
        Some("tls") => tls(r, &t).map(Check::Tls),
        Some("heartbeat") => heartbeat(r, &t, refs).map(Check::Heartbeat),
        _ => None,
    };

    Some(Monitor {
        id: MonitorId::parse(id?.0).ok()?,
        component: component?,
        interval: interval?,
        timeout: timeout?,
        retry_interval: retry_interval?,
        confirmations: confirmations?,
        recoveries: recoveries?,
        locations: locations?,
        quorum: quorum?,
        check: check?,
    })
}

const LOCATION_HINT: &str = "location names are lowercase letters, digits and '-', e.g. \
     [\"local\", \"osaka\", \"eu-west\"]; \"local\" is the Keel server itself, any other name is \
     a probe started with `keel probe --location NAME`";

/// `locations = ["local", "osaka"]`: where the check runs from. Names are checked here, in
/// the config, because a probe reports under its name and a typo would silently watch nothing.
fn locations(r: &mut Reader<'_>, f: &Field<'_>, kind: Option<&str>) -> Option<Vec<String>> {
    let items = r.strings(f)?;
    if items.is_empty() {
        r.report(
            f.pos,
            format!(
                "{}: the list is empty, so the check would run nowhere",
                f.name
            ),
            Some(format!(
                "remove the key to check from Keel itself, or {LOCATION_HINT}"
            )),
        );
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    let mut ok = true;
    for (name, pos) in items {
        if !is_location_name(&name) {
            r.report(
                pos,
                format!("{}: {name:?} is not a location name", f.name),
                Some(LOCATION_HINT.to_owned()),
            );
            ok = false;
        } else if out.contains(&name) {
            r.report(
                pos,
                format!("{}: {name:?} is listed twice", f.name),
                Some("list each location once; `quorum` counts locations, not entries".into()),
            );
            ok = false;
        } else if kind == Some("heartbeat") && name != LOCAL {
            // A heartbeat is pushed to the server; there is nothing a probe could check.
            r.report(
                pos,
                format!(
                    "{}: a heartbeat monitor cannot be checked from {name:?}",
                    f.name
                ),
                Some(
                    "heartbeats are pushed to Keel itself (/api/v1/push/<token>), so only \
                     \"local\" applies; remove `locations`"
                        .into(),
                ),
            );
            ok = false;
        } else {
            out.push(name);
        }
    }
    ok.then_some(out)
}

/// `quorum`: how many locations must see a failure. Checked against the locations given (when
/// they parsed), so the message can say what the range is for this monitor.
fn quorum(r: &mut Reader<'_>, t: &Tbl<'_>, locations: Option<&[String]>) -> Option<u32> {
    let majority = |n: usize| u32::try_from(n / 2 + 1).unwrap_or(u32::MAX);
    let Some(f) = t.get(r, "quorum") else {
        return Some(majority(locations.map_or(1, <[String]>::len)));
    };
    let n = r.uint(&f, 0, u64::from(u32::MAX))?;
    let Some(locations) = locations else {
        // The locations were refused already; a second message about the quorum would only
        // repeat that problem.
        return u32::try_from(n).ok();
    };
    let len = locations.len();
    if n == 0 || n > len as u64 {
        let why = if n == 0 {
            "a failure must be seen from at least one location to count".to_owned()
        } else {
            format!(
                "{n} is more than the {len} location{} listed",
                if len == 1 { "" } else { "s" }
            )
        };
        r.report(
            f.pos,
            format!("{}: {why}", f.name),
            Some(format!(
                "quorum is how many of `locations` must see a failure before it counts: 1 to \
                 {len} here (remove it for a majority, {})",
                majority(len)
            )),
        );
        return None;
    }
    u32::try_from(n).ok()
}

/// `confirmations` / `recoveries`: at least one, or a single blip would count.
fn count(r: &mut Reader<'_>, f: &Field<'_>) -> Option<u32> {
    r.uint(f, 1, 1000).and_then(|n| u32::try_from(n).ok())
}

fn unknown_keys(r: &mut Reader<'_>, t: &Tbl<'_>, kind: Option<&str>) {
    let Some(table) = t.table else { return };
    let mut allowed: Vec<&str> = keys::MONITOR_COMMON.to_vec();
    match kind {
        Some(k) => allowed.extend(keys::kind_keys(k)),
        // Unknown kind: accept every kind's keys, so only the kind itself is reported.
        None => keys::MONITOR_KINDS
            .iter()
            .for_each(|k| allowed.extend(keys::kind_keys(k))),
    }
    for (k, _) in table.iter() {
        if allowed.contains(&k) {
            continue;
        }
        let pos = r.pos(table.key(k).and_then(|k| k.span()), t.pos);
        let owners: Vec<&str> = keys::MONITOR_KINDS
            .iter()
            .copied()
            .filter(|kd| keys::kind_keys(kd).contains(&k))
            .collect();
        let kind = kind.unwrap_or("this");
        if owners.is_empty() {
            r.report(
                pos,
                format!("unknown key `{k}` in {}", t.display),
                Some(suggest::hint(k, &allowed, "known keys here")),
            );
        } else {
            r.report(
                pos,
                format!("`{k}` does not apply to {kind} monitors ({})", t.display),
                Some(format!(
                    "`{k}` is a key of {} monitors; {kind} monitors take: {}",
                    owners.join(", "),
                    keys::kind_keys(kind).join(", ")
                )),
            );
        }
    }
}

fn http(r: &mut Reader<'_>, t: &Tbl<'_>) -> Option<HttpCheck> {
    let url = t
        .require(r, "url", "url = \"https://example.com/health\"")
        .and_then(|f| r.parsed(&f, values::http_url));
    let method = match t.get(r, "method") {
        None => Some("GET".to_owned()),
        Some(f) => r.parsed(&f, |m| {
            let up = m.trim().to_ascii_uppercase();
            if METHODS.contains(&up.as_str()) {
                Ok(up)
            } else {
                Err(Bad::new(
                    format!("unknown HTTP method {m:?}"),
                    format!("one of {}", METHODS.join(", ")),
                ))
            }
        }),
    };
    let headers = match t.get(r, "headers") {
        None => Some(Vec::new()),
        Some(f) => r.string_table(&f).and_then(|hs| {
            let mut ok = true;
            for (name, value) in &hs {
                if name.is_empty() || !name.bytes().all(is_token_byte) {
                    r.report(
                        f.pos,
                        format!("{}: {name:?} is not a valid header name", f.name),
                        Some("header names are letters, digits and - (e.g. \"X-Api-Key\")".into()),
                    );
                    ok = false;
                }
                if value.contains(['\r', '\n']) {
                    r.report(
                        f.pos,
                        format!("{}: the value of {name:?} contains a line break", f.name),
                        None,
                    );
                    ok = false;
                }
            }
            ok.then_some(hs)
        }),
    };
    let expected_status = match t.get(r, "expected_status") {
        None => Some(vec![StatusRange { from: 200, to: 299 }]),
        Some(f) => expected_status(r, &f),
    };
    let keyword = t.get(r, "keyword").and_then(|f| r.nonempty(&f));
    let keyword_absent = t.get(r, "keyword_absent").and_then(|f| r.nonempty(&f));
    let json_pointer = json_assertion(r, t);
    let max_latency = t.get(r, "max_latency").map(|f| r.duration(&f, false));
    let follow_redirects = t
        .get(r, "follow_redirects")
        .map_or(Some(true), |f| r.bool(&f));
    let verify_tls = t.get(r, "verify_tls").map_or(Some(true), |f| r.bool(&f));
    Some(HttpCheck {
        url: url?,
        method: method?,
        headers: headers?,
        expected_status: expected_status?,
        keyword,
        keyword_absent,
        json_pointer: json_pointer?,
        max_latency: max_latency.map_or(Some(None), |d| d.map(Some))?,
        follow_redirects: follow_redirects?,
        verify_tls: verify_tls?,
    })
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `expected_status = [200, "2xx", "300-399"]` (a single entry without brackets is fine too).
fn expected_status(r: &mut Reader<'_>, f: &Field<'_>) -> Option<Vec<StatusRange>> {
    let items = r.array(f, true)?;
    if items.is_empty() {
        r.report(
            f.pos,
            format!("{}: the list is empty, so no response could pass", f.name),
            Some(values::STATUS_HINT.into()),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for item in &items {
        let parsed = match item.toml_value() {
            Some(Value::Integer(n)) => values::status_code(*n.value()),
            Some(Value::String(s)) => values::status_text(s.value()),
            _ => Err(Bad::new(
                "expected a status code or a string such as \"2xx\"",
                values::STATUS_HINT,
            )),
        };
        match parsed {
            Ok(range) => out.push(range),
            Err(bad) => {
                r.bad(item, bad);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// `json_pointer` and `json_equals` go together. Returns `Some(None)` when neither is set.
#[allow(clippy::option_option)]
fn json_assertion(r: &mut Reader<'_>, t: &Tbl<'_>) -> Option<Option<(String, serde_json::Value)>> {
    let pointer = t.get(r, "json_pointer");
    let equals = t.get(r, "json_equals");
    match (pointer, equals) {
        (None, None) => Some(None),
        (Some(f), None) => {
            r.report(
                f.pos,
                format!("{} is set without `json_equals`", f.name),
                Some("add json_equals = <the expected value>, e.g. json_equals = \"ok\"".into()),
            );
            None
        }
        (None, Some(f)) => {
            r.report(
                f.pos,
                format!("{} is set without `json_pointer`", f.name),
                Some(
                    "add json_pointer = \"/status\" to say which part of the body to compare"
                        .into(),
                ),
            );
            None
        }
        (Some(p), Some(e)) => {
            let pointer = r.parsed(&p, |s| {
                if s.is_empty() || s.starts_with('/') {
                    Ok(s.to_owned())
                } else {
                    Err(Bad::new(
                        format!("JSON pointer {s:?} must start with '/'"),
                        "e.g. \"/status\" or \"/checks/0/ok\" (RFC 6901)",
                    ))
                }
            });
            let value = match &e.src {
                super::read::Src::Item(item) => item_json(item),
                super::read::Src::Value(v) => value_json(v),
                _ => Err("text".to_owned()),
            };
            let value = match value {
                Ok(v) => Some(v),
                Err(why) => {
                    r.report(
                        e.pos,
                        format!("{}: {why} cannot be compared as JSON", e.name),
                        None,
                    );
                    None
                }
            };
            Some(Some((pointer?, value?)))
        }
    }
}

fn item_json(item: &Item) -> Result<serde_json::Value, String> {
    match item {
        Item::Value(v) => value_json(v),
        Item::Table(t) => t
            .iter()
            .map(|(k, i)| Ok((k.to_owned(), item_json(i)?)))
            .collect::<Result<_, _>>()
            .map(serde_json::Value::Object),
        Item::ArrayOfTables(a) => a
            .iter()
            .map(|t| {
                t.iter()
                    .map(|(k, i)| Ok((k.to_owned(), item_json(i)?)))
                    .collect::<Result<_, _>>()
                    .map(serde_json::Value::Object)
            })
            .collect::<Result<_, _>>()
            .map(serde_json::Value::Array),
        Item::None => Err("nothing".to_owned()),
    }
}

fn value_json(v: &Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        Value::String(s) => J::String(s.value().clone()),
        Value::Integer(n) => J::from(*n.value()),
        Value::Float(x) => serde_json::Number::from_f64(*x.value())
            .map(J::Number)
            .ok_or_else(|| format!("{}", x.value()))?,
        Value::Boolean(b) => J::Bool(*b.value()),
        // JSON has no dates; the body would carry them as strings.
        Value::Datetime(d) => J::String(d.value().to_string()),
        Value::Array(a) => J::Array(a.iter().map(value_json).collect::<Result<_, _>>()?),
        Value::InlineTable(t) => J::Object(
            t.iter()
                .map(|(k, v)| Ok((k.to_owned(), value_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

fn port(r: &mut Reader<'_>, f: &Field<'_>) -> Option<u16> {
    r.uint(f, 1, 65535).and_then(|n| u16::try_from(n).ok())
}

fn tcp(r: &mut Reader<'_>, t: &Tbl<'_>) -> Option<TcpCheck> {
    let host = t
        .require(r, "host", "host = \"127.0.0.1\"")
        .and_then(|f| r.parsed(&f, values::host));
    let port = t
        .require(r, "port", "port = 5432")
        .and_then(|f| port(r, &f));
    Some(TcpCheck {
        host: host?,
        port: port?,
    })
}

fn dns(r: &mut Reader<'_>, t: &Tbl<'_>) -> Option<DnsCheck> {
    let name = t
        .require(r, "name", "name = \"example.com\"")
        .and_then(|f| {
            r.parsed(&f, |s| {
                let s = s.trim();
                if s.is_empty() || s.contains("://") || s.contains(['/', ' ', ':']) {
                    Err(Bad::new(
                        format!("{s:?} is not a DNS name"),
                        "write a name such as \"example.com\" (no scheme, path or port)",
                    ))
                } else {
                    Ok(s.to_owned())
                }
            })
        });
    let record_type = t
        .get(r, "record_type")
        .map_or(Some(RecordType::A), |f| r.parsed(&f, values::record_type));
    let expected = match t.get(r, "expected") {
        None => Some(Vec::new()),
        Some(f) => {
            let items = r.array(&f, true);
            items.and_then(|items| {
                let got: Vec<Option<String>> = items.iter().map(|i| r.nonempty(i)).collect();
                got.into_iter().collect::<Option<Vec<_>>>()
            })
        }
    };
    let resolver = t.get(r, "resolver").map(|f| r.parsed(&f, values::resolver));
    Some(DnsCheck {
        name: name?,
        record_type: record_type?,
        expected: expected?,
        resolver: resolver.map_or(Some(None), |x| x.map(Some))?,
    })
}

fn tls(r: &mut Reader<'_>, t: &Tbl<'_>) -> Option<TlsCheck> {
    let host = t
        .require(r, "host", "host = \"example.com\"")
        .and_then(|f| r.parsed(&f, values::host));
    let port = t.get(r, "port").map_or(Some(443), |f| port(r, &f));
    let server_name = t.get(r, "server_name").map(|f| r.nonempty(&f));
    let min_days = t.get(r, "min_days").map_or(Some(14), |f| {
        r.uint(&f, 0, 3650).and_then(|n| u32::try_from(n).ok())
    });
    let verify = t.get(r, "verify").map_or(Some(true), |f| r.bool(&f));
    Some(TlsCheck {
        host: host?,
        port: port?,
        server_name: server_name.map_or(Some(None), |s| s.map(Some))?,
        min_days: min_days?,
        verify: verify?,
    })
}

/// Short tokens could be guessed, and a guessed token lets anyone mark a job healthy.
const MIN_TOKEN: usize = 12;

fn heartbeat(r: &mut Reader<'_>, t: &Tbl<'_>, refs: &mut Refs) -> Option<HeartbeatCheck> {
    let token = t.require(r, "token", "token = \"<random>\" (e.g. from `openssl rand -hex 16`)").and_then(|f| {
        let tok = r.string(&f)?;
        refs.heartbeat_tokens.push(Ref { name: tok.clone(), pos: f.pos });
        let hint = "use a random string of letters, digits, '-' and '_', e.g. from `openssl rand -hex 16`";
        if tok.chars().count() < MIN_TOKEN {
            r.report(f.pos, format!("{}: the token is shorter than {MIN_TOKEN} characters", f.name), Some(hint.into()));
            return None;
        }
        if !tok.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            // The token goes in a URL path; other characters would need escaping.
            r.report(f.pos, format!("{}: the token may contain only letters, digits, '-' and '_'", f.name), Some(hint.into()));
            return None;
        }
        Some(Secret(tok))
    });
    let grace = t
        .get(r, "grace")
        .map_or(Some(Duration::ZERO), |f| r.duration(&f, true));
    Some(HeartbeatCheck {
        token: token?,
        grace: grace?,
    })
}
