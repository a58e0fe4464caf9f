//! Alert intake: Prometheus Alertmanager webhook v4 and Keel's generic JSON.
//!
//! Every alert either maps to a component (and becomes an observation in the hub, so it flows
//! through the same confirmation and signal path as a monitor) or is named in the answer as
//! unmapped and counted — never silently dropped. A batch where nothing maps is 422.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use keel_core::confirm::Observation;
use keel_core::intake::{self, AlertStatus};
use keel_core::{Health, NodeId, SourceKey};
use keel_probe::source::Source;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::http::auth::{Caller, Role};
use crate::http::openapi::wire;
use crate::http::AppState;

/// The alerts taken, and those that map to no component.
#[derive(Serialize, ToSchema)]
pub struct IntakeAnswer {
    accepted: Vec<AcceptedAlert>,
    unmapped: Vec<UnmappedAlert>,
}

/// An alert that became an observation of `component`.
#[derive(Serialize, ToSchema)]
pub struct AcceptedAlert {
    /// Alertmanager: the alert's fingerprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    /// Generic: the event's key (its component when none was given).
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    component: String,
    #[schema(value_type = wire::Health)]
    status: Health,
}

/// An alert that maps to no component, and why.
#[derive(Serialize, ToSchema)]
pub struct UnmappedAlert {
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    /// Alertmanager: the alert's `alertname` label, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    alertname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    component: Option<String>,
    reason: &'static str,
}

/// Alerts from Prometheus Alertmanager (webhook v4)
///
/// Each alert maps to a component by its `component` label or an `[[intake.route]]`; those
/// that map nowhere are named in the answer. A batch where nothing maps is 422.
#[utoipa::path(post, path = "/api/v1/intake/alertmanager", operation_id = "intake_alertmanager", tag = "intake",
    request_body(content = Object, description = "Alertmanager's webhook payload (version 4)"),
    responses(
        (status = 202, description = "Taken (some alerts may be unmapped)", body = IntakeAnswer),
        (status = 400, description = "Not an Alertmanager payload", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the responder role", body = wire::Error),
        (status = 413, description = "Body over the intake's limit ([intake] max_body_bytes)", body = wire::Error),
        (status = 422, description = "No alert in the batch maps to a component", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub async fn alertmanager(
    caller: Caller,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<IntakeAnswer>), ApiError> {
    caller.require(Role::Responder)?;
    let alerts = intake::parse_alertmanager(&body).map_err(|e| {
        state.metrics.intake_rejected();
        ApiError::bad((!e.path.is_empty()).then_some(e.path.as_str()), e.reason)
    })?;
    let now = Utc::now();
    let mut accepted = Vec::new();
    let mut unmapped = Vec::new();
    for alert in &alerts {
        let is_node = |id: &str| state.is_node(id);
        match intake::route(&alert.labels, &state.config.intake, &is_node)
            .and_then(|c| state.node(&c))
        {
            Some(component) => {
                let health = match alert.status {
                    AlertStatus::Resolved => Health::Up,
                    AlertStatus::Firing => firing_health(alert.labels.get("severity")),
                };
                observe(&state, "alertmanager", &alert.fingerprint, &component, health, &alert.summary, now);
                accepted.push(AcceptedAlert {
                    fingerprint: Some(alert.fingerprint.clone()),
                    key: None,
                    component: component.into(),
                    status: health,
                });
            }
            None => unmapped.push(UnmappedAlert {
                fingerprint: Some(alert.fingerprint.clone()),
                alertname: alert.labels.get("alertname").cloned(),
                labels: Some(alert.labels.clone()),
                key: None,
                component: None,
                reason: "no `component` label naming a known component, and no [[intake.route]] matched",
            }),
        }
    }
    answer(&state, accepted, unmapped)
}

/// Alerts in Keel's generic JSON
///
/// Each event names its component; those naming no known node are listed as unmapped. A
/// batch where nothing maps is 422.
#[utoipa::path(post, path = "/api/v1/intake/generic", operation_id = "intake_generic", tag = "intake",
    request_body(content = Object, description = "One event or a list: `component`, `status` (down, degraded, up, resolved), optional `key` and `summary`",
        example = json!({"component": "web", "status": "down", "summary": "checkout errors"})),
    responses(
        (status = 202, description = "Taken (some events may be unmapped)", body = IntakeAnswer),
        (status = 400, description = "Not a generic intake payload", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the responder role", body = wire::Error),
        (status = 413, description = "Body over the intake's limit ([intake] max_body_bytes)", body = wire::Error),
        (status = 422, description = "No event in the batch maps to a component", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub async fn generic(
    caller: Caller,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<IntakeAnswer>), ApiError> {
    caller.require(Role::Responder)?;
    let events = intake::parse_generic(&body).map_err(|e| {
        state.metrics.intake_rejected();
        ApiError::bad((!e.path.is_empty()).then_some(e.path.as_str()), e.reason)
    })?;
    let now = Utc::now();
    let mut accepted = Vec::new();
    let mut unmapped = Vec::new();
    for ev in &events {
        // Without a key, one alert per component.
        let key = ev.key.clone().unwrap_or_else(|| ev.component.clone());
        if let Some(component) = state.node(&ev.component) {
            let health = ev.status.health();
            let summary = if ev.summary.is_empty() {
                format!("reported {} through the generic intake", ev.status.as_str())
            } else {
                ev.summary.clone()
            };
            observe(&state, "generic", &key, &component, health, &summary, now);
            accepted.push(AcceptedAlert {
                fingerprint: None,
                key: Some(key),
                component: ev.component.clone(),
                status: health,
            });
        } else {
            unmapped.push(UnmappedAlert {
                fingerprint: None,
                alertname: None,
                labels: None,
                key: Some(key),
                component: Some(ev.component.clone()),
                reason: "no component or vendor has this id",
            });
        }
    }
    answer(&state, accepted, unmapped)
}

/// Warnings degrade; anything else firing is an outage.
fn firing_health(severity: Option<&String>) -> Health {
    match severity.map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("warning" | "warn" | "info" | "minor") => Health::Degraded,
        _ => Health::Down,
    }
}

fn observe(
    state: &AppState,
    format: &str,
    key: &str,
    component: &NodeId,
    health: Health,
    summary: &str,
    at: chrono::DateTime<Utc>,
) {
    // Alertmanager and the sender have already confirmed the alert: one is enough.
    let source = Source {
        key: SourceKey::intake(format, key),
        component: component.clone(),
        confirmations: 1,
        recoveries: 1,
    };
    state.hub.observe_as(
        &source,
        format,
        Observation {
            health,
            reason: summary.to_string(),
            latency_ms: None,
            at,
        },
    );
}

fn answer(
    state: &AppState,
    accepted: Vec<AcceptedAlert>,
    unmapped: Vec<UnmappedAlert>,
) -> Result<(StatusCode, Json<IntakeAnswer>), ApiError> {
    state.metrics.intake_unmapped(unmapped.len() as u64);
    if !unmapped.is_empty() {
        tracing::warn!(
            count = unmapped.len(),
            "intake alerts mapped to no component"
        );
    }
    if accepted.is_empty() && !unmapped.is_empty() {
        return Err(ApiError::Unprocessable(json!({
            "error": "unmapped",
            "reason": "no alert in the batch maps to a component",
            "accepted": [],
            "unmapped": unmapped,
        })));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(IntakeAnswer { accepted, unmapped }),
    ))
}
