//! Alert intake payloads, parsed into typed alerts and routed to components.
//!
//! Two bodies arrive at the intake endpoints: Prometheus Alertmanager's webhook (version 4,
//! and Grafana's compatible variant, version 1) and Keel's own generic JSON for anything else.
//! Both are outside input, so they are read here by hand from a `serde_json::Value` rather than
//! derived: every rejection names the field it is about ("alerts[2].status: expected one of
//! firing, resolved") so that the sender can fix its side from the 400 alone.
//!
//! Everything here is pure: bytes in, values or an [`IntakeError`] out. Authentication, body
//! limits and turning alerts into signals belong to the server.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::config::IntakeConfig;
use crate::Health;

/// Why an intake body was refused: the field it is about and what is wrong with it.
///
/// `path` is empty when the body as a whole is at fault (not JSON, empty).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}", .path, if .path.is_empty() { "" } else { ": " }, .reason)]
pub struct IntakeError {
    /// Where in the body: `alerts[0].labels`, `[2].status`, `component`; empty for the body.
    pub path: String,
    /// What is wrong, in words the sender can act on.
    pub reason: String,
}

impl IntakeError {
    fn at(path: impl Into<String>, reason: impl Into<String>) -> Self {
        IntakeError {
            path: path.into(),
            reason: reason.into(),
        }
    }

    fn body(reason: impl Into<String>) -> Self {
        IntakeError::at("", reason)
    }
}

/// Whether an alert is still firing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

impl fmt::Display for AlertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert out of an Alertmanager (or Grafana) notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// The alert's own `status`, or the group's when the alert carries none.
    pub status: AlertStatus,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// `None` when absent, empty or Go's zero time (`0001-01-01T00:00:00Z`).
    pub starts_at: Option<DateTime<Utc>>,
    /// `None` when absent, empty or Go's zero time, which is how a firing alert says "no end".
    pub ends_at: Option<DateTime<Utc>>,
    /// The sender's fingerprint; when absent, derived from the labels exactly as Prometheus
    /// does (FNV-1a over sorted label pairs), so it matches what Alertmanager would have sent.
    pub fingerprint: String,
    /// `annotations.summary`, else `annotations.description`, else the `alertname` label, else
    /// "alert".
    pub summary: String,
    /// Link back to the rule that fired, when the sender gave a non-empty one.
    pub generator_url: Option<String>,
}

/// Parses a Prometheus Alertmanager webhook body (version "4") or Grafana's variant
/// (version "1"): a group with a top-level `status` and an `alerts` array.
///
/// Tolerated: absent or `null` optional keys (`groupKey`, `groupLabels`, `commonLabels`,
/// `truncatedAlerts`, per-alert `status`, `annotations`, `endsAt`, `generatorURL`,
/// `fingerprint`), unknown extra keys, timestamps with nanoseconds or offsets.
/// Refused, with the field named: a body that is not a JSON object, `alerts` missing, empty or
/// not an array, an alert that is not an object, a status other than firing/resolved, label or
/// annotation values that are not strings, timestamps that are not RFC 3339.
pub fn parse_alertmanager(body: &[u8]) -> Result<Vec<Alert>, IntakeError> {
    let doc = parse_json(body)?;
    let root = doc.as_object().ok_or_else(|| {
        IntakeError::body(format!("expected a JSON object, found {}", kind(&doc)))
    })?;

    let group_status = match present(root.get("status")) {
        None => None,
        Some(v) => Some(alert_status(v, "status")?),
    };

    let alerts = match present(root.get("alerts")) {
        None => return Err(IntakeError::at("alerts", "missing")),
        Some(Value::Array(a)) => a,
        Some(other) => {
            return Err(IntakeError::at(
                "alerts",
                format!("expected an array, found {}", kind(other)),
            ))
        }
    };
    if alerts.is_empty() {
        return Err(IntakeError::at("alerts", "expected at least one alert"));
    }

    alerts
        .iter()
        .enumerate()
        .map(|(i, a)| parse_alert(a, &format!("alerts[{i}]"), group_status))
        .collect()
}

fn parse_alert(
    v: &Value,
    path: &str,
    group_status: Option<AlertStatus>,
) -> Result<Alert, IntakeError> {
    let obj = v
        .as_object()
        .ok_or_else(|| IntakeError::at(path, format!("expected an object, found {}", kind(v))))?;

    let status = match present(obj.get("status")) {
        Some(s) => alert_status(s, &format!("{path}.status"))?,
        None => group_status.ok_or_else(|| {
            IntakeError::at(
                format!("{path}.status"),
                "missing, and the group has no status either",
            )
        })?,
    };
    let labels = string_map(obj.get("labels"), &format!("{path}.labels"))?;
    let annotations = string_map(obj.get("annotations"), &format!("{path}.annotations"))?;
    let starts_at = time(obj.get("startsAt"), &format!("{path}.startsAt"))?;
    let ends_at = time(obj.get("endsAt"), &format!("{path}.endsAt"))?;
    let fingerprint = match opt_string(obj.get("fingerprint"), &format!("{path}.fingerprint"))? {
        Some(f) if !f.trim().is_empty() => f,
        _ => label_fingerprint(&labels),
    };
    let generator_url = opt_string(obj.get("generatorURL"), &format!("{path}.generatorURL"))?
        .filter(|u| !u.trim().is_empty());

    let summary = ["summary", "description"]
        .iter()
        .find_map(|k| annotations.get(*k).filter(|s| !s.trim().is_empty()))
        .or_else(|| labels.get("alertname").filter(|s| !s.trim().is_empty()))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "alert".to_string());

    Ok(Alert {
        status,
        labels,
        annotations,
        starts_at,
        ends_at,
        fingerprint,
        summary,
        generator_url,
    })
}

fn alert_status(v: &Value, path: &str) -> Result<AlertStatus, IntakeError> {
    match v.as_str().map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        Some("firing") => Ok(AlertStatus::Firing),
        Some("resolved") => Ok(AlertStatus::Resolved),
        Some(other) => Err(IntakeError::at(
            path,
            format!("expected one of firing, resolved (found {other:?})"),
        )),
        None => Err(IntakeError::at(
            path,
            format!("expected one of firing, resolved (found {})", kind(v)),
        )),
    }
}

/// The fingerprint Prometheus computes for a label set (`model.LabelSet.Fingerprint`):
/// FNV-1a 64 over each name and value in name order, each followed by the byte 0xff. Using the
/// same function means an alert keeps one key whether or not its sender included it.
pub fn label_fingerprint(labels: &BTreeMap<String, String>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut add = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (name, value) in labels {
        add(name.as_bytes());
        add(&[0xff]);
        add(value.as_bytes());
        add(&[0xff]);
    }
    format!("{h:016x}")
}

/// What a generic intake event says about its component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GenericStatus {
    Down,
    Degraded,
    Up,
    /// Same health as `up`, said by a sender that thinks in alerts rather than states.
    Resolved,
}

impl GenericStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GenericStatus::Down => "down",
            GenericStatus::Degraded => "degraded",
            GenericStatus::Up => "up",
            GenericStatus::Resolved => "resolved",
        }
    }

    /// The health this event reports.
    pub fn health(self) -> Health {
        match self {
            GenericStatus::Down => Health::Down,
            GenericStatus::Degraded => Health::Degraded,
            GenericStatus::Up | GenericStatus::Resolved => Health::Up,
        }
    }
}

impl fmt::Display for GenericStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event from Keel's generic JSON intake.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenericEvent {
    /// The component (or vendor) id the event is about.
    pub component: String,
    pub status: GenericStatus,
    /// Free text for responders; empty when the sender gave none.
    pub summary: String,
    /// Deduplication key: events with the same key are one alert. `None` when not given.
    pub key: Option<String>,
}

/// Parses Keel's generic JSON intake body.
///
/// The body is one event object or a non-empty array of them:
///
/// ```json
/// {
///   "component": "api",
///   "status": "down",
///   "summary": "Error rate above 5% for 3 minutes",
///   "key": "api-error-rate"
/// }
/// ```
///
/// | field       | required | type   | meaning                                                     |
/// |-------------|----------|--------|-------------------------------------------------------------|
/// | `component` | yes      | string | id of a configured component or vendor                      |
/// | `status`    | yes      | string | `down`, `degraded`, `up` or `resolved` (`resolved` = `up`); case-insensitive |
/// | `summary`   | no       | string | what is wrong, for responders; default empty               |
/// | `key`       | no       | string | deduplication key; events with one key are one alert        |
///
/// Unknown keys are ignored so senders can include their own context. An error names the
/// field: `component: missing`, `[2].status: expected one of down, degraded, up, resolved`
/// (array elements are addressed by index).
pub fn parse_generic(body: &[u8]) -> Result<Vec<GenericEvent>, IntakeError> {
    let doc = parse_json(body)?;
    match &doc {
        Value::Object(obj) => Ok(vec![parse_event(obj, "")?]),
        Value::Array(items) => {
            if items.is_empty() {
                return Err(IntakeError::body(
                    "expected at least one event, found an empty array",
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let path = format!("[{i}]");
                    match item {
                        Value::Object(obj) => parse_event(obj, &path),
                        other => Err(IntakeError::at(
                            path,
                            format!("expected an object, found {}", kind(other)),
                        )),
                    }
                })
                .collect()
        }
        other => Err(IntakeError::body(format!(
            "expected a JSON object or an array of objects, found {}",
            kind(other)
        ))),
    }
}

fn parse_event(obj: &Map<String, Value>, prefix: &str) -> Result<GenericEvent, IntakeError> {
    let field = |name: &str| {
        if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}.{name}")
        }
    };

    let component = match opt_string(obj.get("component"), &field("component"))? {
        None => return Err(IntakeError::at(field("component"), "missing")),
        Some(c) if c.trim().is_empty() => {
            return Err(IntakeError::at(field("component"), "may not be empty"))
        }
        Some(c) => c.trim().to_string(),
    };

    const STATUSES: &str = "expected one of down, degraded, up, resolved";
    let status = match present(obj.get("status")) {
        None => return Err(IntakeError::at(field("status"), "missing")),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "down" => GenericStatus::Down,
            "degraded" => GenericStatus::Degraded,
            "up" => GenericStatus::Up,
            "resolved" => GenericStatus::Resolved,
            _ => {
                return Err(IntakeError::at(
                    field("status"),
                    format!("{STATUSES} (found {s:?})"),
                ))
            }
        },
        Some(other) => {
            return Err(IntakeError::at(
                field("status"),
                format!("{STATUSES} (found {})", kind(other)),
            ))
        }
    };

    let summary = opt_string(obj.get("summary"), &field("summary"))?
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let key = opt_string(obj.get("key"), &field("key"))?.filter(|k| !k.trim().is_empty());

    Ok(GenericEvent {
        component,
        status,
        summary,
        key,
    })
}

/// Picks the component an alert's labels speak about.
///
/// The label named `cfg.component_label` wins when its value is something `known` accepts (a
/// configured component or vendor id); otherwise the first `[[intake.route]]` whose labels all
/// match (an empty label table matches everything, so it can serve as a catch-all). `None`
/// means the alert maps to nothing, which the caller must report rather than drop.
pub fn route(
    labels: &BTreeMap<String, String>,
    cfg: &IntakeConfig,
    known: &dyn Fn(&str) -> bool,
) -> Option<String> {
    if let Some(named) = labels.get(&cfg.component_label) {
        if known(named) {
            return Some(named.clone());
        }
    }
    cfg.routes
        .iter()
        .find(|r| r.labels.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .map(|r| r.component.to_string())
}

// ---- reading JSON by hand, with paths -------------------------------------------------------

fn parse_json(body: &[u8]) -> Result<Value, IntakeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IntakeError::body("empty body: expected a JSON document"));
    }
    serde_json::from_slice(body).map_err(|e| IntakeError::body(json_error(&e)))
}

/// serde_json's message without its trailing position, with the position put first, and a
/// truncated body called what it is.
fn json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let msg = full.strip_suffix(&suffix).unwrap_or(&full);
    let what = if e.is_eof() {
        "truncated JSON"
    } else {
        "not JSON"
    };
    format!("{what} at line {} column {}: {msg}", e.line(), e.column())
}

/// Treats an explicit `null` like an absent key: Go encodes nil maps and slices as `null`.
fn present(v: Option<&Value>) -> Option<&Value> {
    v.filter(|v| !v.is_null())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn opt_string(v: Option<&Value>, path: &str) -> Result<Option<String>, IntakeError> {
    match present(v) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(IntakeError::at(
            path,
            format!("expected a string, found {}", kind(other)),
        )),
    }
}

fn string_map(v: Option<&Value>, path: &str) -> Result<BTreeMap<String, String>, IntakeError> {
    match present(v) {
        None => Ok(BTreeMap::new()),
        Some(Value::Object(obj)) => obj
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                other => Err(IntakeError::at(
                    format!("{path}.{k}"),
                    format!("expected a string, found {}", kind(other)),
                )),
            })
            .collect(),
        Some(other) => Err(IntakeError::at(
            path,
            format!("expected an object, found {}", kind(other)),
        )),
    }
}

fn time(v: Option<&Value>, path: &str) -> Result<Option<DateTime<Utc>>, IntakeError> {
    let Some(s) = opt_string(v, path)? else {
        return Ok(None);
    };
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let t = DateTime::parse_from_rfc3339(s).map_err(|e| {
        IntakeError::at(
            path,
            format!("expected an RFC 3339 time like 2024-05-01T12:00:00Z, found {s:?} ({e})"),
        )
    })?;
    // Go's zero time.Time marks "unset"; any year-1 instant can only be that.
    if t.year() <= 1 {
        return Ok(None);
    }
    Ok(Some(t.with_timezone(&Utc)))
}
