//! How types of keel-core, keel-store and keel-probe look on the wire, for the OpenAPI
//! document. Those crates stay free of the documentation crate: the server is the only one
//! that speaks HTTP, so it is the one that says what its bodies look like. Each type here
//! mirrors the serde form of the type it names; the contract test (scripts/contract) checks
//! real answers against these schemas, so a mirror that drifts fails CI.

#![allow(dead_code)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// Keel's error body: `error` is a stable code, `reason` says why in words, `field` names the
/// part of the request at fault when there is one.
#[derive(ToSchema)]
pub struct Error {
    /// `bad_request`, `unauthorized`, `forbidden`, `not_found`, `conflict`,
    /// `payload_too_large`, `rate_limited`, `unmapped`, `unassigned`, `too_many_results`, …
    pub error: String,
    pub reason: String,
    pub field: Option<String>,
    /// The limit exceeded (`payload_too_large`, `too_many_results`).
    pub limit: Option<u64>,
}

/// A monitor's, vendor's or intake source's health.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Degraded,
    Down,
    Unknown,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Monitor,
    Vendor,
    Intake,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceStatus {
    Scheduled,
    InProgress,
    Verifying,
    Completed,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

/// Which incidents a listing shows.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncidentFilter {
    /// Not resolved.
    Open,
    All,
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PostmortemFormat {
    Json,
    Md,
    Markdown,
}

/// The status a public update announces.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PublicStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncidentRole {
    Commander,
    Communications,
}

#[derive(Serialize, ToSchema)]
pub enum Severity {
    #[serde(rename = "SEV1")]
    Sev1,
    #[serde(rename = "SEV2")]
    Sev2,
    #[serde(rename = "SEV3")]
    Sev3,
    #[serde(rename = "SEV4")]
    Sev4,
}

/// Text given once (under the locale `""`) or per locale.
#[derive(ToSchema)]
pub struct LocalizedText {
    pub by_locale: BTreeMap<String, String>,
}

/// Text in a request: one string for every locale, or `{"en": "…", "ja": "…"}`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum TextIn {
    Plain(String),
    PerLocale(BTreeMap<String, String>),
}

#[derive(ToSchema)]
pub struct Maintenance {
    pub id: String,
    pub name: LocalizedText,
    pub status: MaintenanceStatus,
    pub scheduled_for: DateTime<Utc>,
    pub scheduled_until: DateTime<Utc>,
    pub components: Vec<String>,
    pub body: LocalizedText,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A source as `GET /api/v1/monitors` shows it.
#[derive(ToSchema)]
pub struct SourceView {
    pub kind: SourceKind,
    pub id: String,
    /// Monitor kind (`http`, `tcp`, …), `vendor`, or the intake format.
    pub check: String,
    pub component: String,
    pub state: Health,
    pub since: DateTime<Utc>,
    pub reason: String,
    pub latency_ms: Option<u64>,
    pub last_checked: Option<DateTime<Utc>>,
    /// True while a failure is seen but not yet confirmed.
    pub confirming: bool,
}

/// An incident as listings show it.
#[derive(ToSchema)]
pub struct IncidentSummary {
    pub id: i64,
    pub title: String,
    pub state: IncidentState,
    pub severity: Option<Severity>,
    pub severity_reason: Option<String>,
    /// What opened it (a monitor's signal, a responder).
    pub origin: Value,
    pub cause: Option<String>,
    pub cause_kind: String,
    pub failure_kind: String,
    pub impacted: Vec<String>,
    pub affected_users: u64,
    pub affected_users_text: String,
    pub user_minutes: u64,
    pub eta: Option<Value>,
    pub eta_text: Option<String>,
    pub recurring: bool,
    pub recurrences: u32,
    pub started_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub mitigated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One checklist step of an incident.
#[derive(ToSchema)]
pub struct ChecklistStep {
    pub step: u32,
    pub text: String,
    pub done_at: Option<DateTime<Utc>>,
    pub done_by: Option<String>,
    /// Only in `GET /api/v1/incidents/{id}`: the health the step needs, and why it is not
    /// safe now.
    pub when_healthy: Option<Vec<String>>,
    pub unsafe_reason: Option<String>,
}

/// An incident with its roles, checklist, action items, drafts, updates and timeline: the
/// fields of [`IncidentSummary`] and these.
#[derive(ToSchema)]
pub struct Incident {
    pub id: i64,
    pub title: String,
    pub state: IncidentState,
    pub severity: Option<Severity>,
    pub severity_reason: Option<String>,
    pub origin: Value,
    pub cause: Option<String>,
    pub cause_kind: String,
    pub failure_kind: String,
    pub impacted: Vec<String>,
    pub affected_users: u64,
    pub affected_users_text: String,
    pub user_minutes: u64,
    pub eta: Option<Value>,
    pub eta_text: Option<String>,
    pub recurring: bool,
    pub recurrences: u32,
    pub started_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub mitigated_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Role (`commander`, `communications`) to person.
    pub roles: BTreeMap<String, String>,
    pub checklist: Vec<ChecklistStep>,
    pub action_items: Vec<Value>,
    pub root_cause: Option<String>,
    pub drafts: Vec<Value>,
    pub public_updates: Vec<Value>,
    /// Every event, oldest first, each with a `text` in words.
    pub timeline: Vec<Value>,
    /// Only in `GET /api/v1/incidents/{id}`: each impacted component's alternatives.
    pub alternatives: Option<Vec<Value>>,
}

/// What a remote probe runs at its location.
#[derive(ToSchema)]
pub struct Assignments {
    pub location: String,
    /// Changes whenever the monitors change; fetch again when a results answer carries
    /// another.
    pub version: String,
    pub monitors: Vec<Assignment>,
}

#[derive(ToSchema)]
pub struct Assignment {
    pub id: String,
    pub component: String,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub retry_interval_ms: u64,
    pub confirmations: u32,
    pub recoveries: u32,
    /// The check, tagged by `kind` (`http`, `tcp`, `dns`, `tls`).
    pub check: Value,
}

/// A probe's batch of results.
#[derive(ToSchema)]
pub struct Results {
    pub location: String,
    pub results: Vec<ProbeResult>,
}

#[derive(ToSchema)]
pub struct ProbeResult {
    pub monitor: String,
    pub health: Health,
    pub reason: String,
    pub latency_ms: Option<u64>,
}

/// The answer to a results post.
#[derive(ToSchema)]
pub struct Accepted {
    pub accepted: u64,
    /// The assignments' current version for the location.
    pub version: String,
}
