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
use keel_core::{Health, SourceKind};
use keel_probe::source::Source;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::http::auth::{Caller, Role};
use crate::http::AppState;

/// `POST /api/v1/intake/alertmanager`
pub async fn alertmanager(
    caller: Caller,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
        match intake::route(&alert.labels, &state.config.intake, &is_node) {
            Some(component) => {
                let health = match alert.status {
                    AlertStatus::Resolved => Health::Up,
                    AlertStatus::Firing => firing_health(alert.labels.get("severity")),
                };
                observe(&state, "alertmanager", &alert.fingerprint, &component, health, &alert.summary, now);
                accepted.push(json!({
                    "fingerprint": alert.fingerprint,
                    "component": component,
                    "status": health,
                }));
            }
            None => unmapped.push(json!({
                "fingerprint": alert.fingerprint,
                "alertname": alert.labels.get("alertname"),
                "labels": alert.labels,
                "reason": "no `component` label naming a known component, and no [[intake.route]] matched",
            })),
        }
    }
    answer(&state, accepted, unmapped)
}

/// `POST /api/v1/intake/generic`
pub async fn generic(
    caller: Caller,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
        if state.is_node(&ev.component) {
            let health = ev.status.health();
            let summary = if ev.summary.is_empty() {
                format!("reported {} through the generic intake", ev.status.as_str())
            } else {
                ev.summary.clone()
            };
            observe(
                &state,
                "generic",
                &key,
                &ev.component,
                health,
                &summary,
                now,
            );
            accepted.push(json!({"key": key, "component": ev.component, "status": health}));
        } else {
            unmapped.push(json!({
                "key": key,
                "component": ev.component,
                "reason": "no component or vendor has this id",
            }));
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
    component: &str,
    health: Health,
    summary: &str,
    at: chrono::DateTime<Utc>,
) {
    // Alertmanager and the sender have already confirmed the alert: one is enough.
    let source = Source {
        kind: SourceKind::Intake,
        id: format!("{format}/{key}"),
        component: component.to_string(),
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
    accepted: Vec<Value>,
    unmapped: Vec<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    state.metrics.intake_unmapped(unmapped.len() as u64);
    if !unmapped.is_empty() {
        tracing::warn!(
            count = unmapped.len(),
            "intake alerts mapped to no component"
        );
    }
    let body = json!({"accepted": accepted, "unmapped": unmapped});
    if accepted.is_empty() && !unmapped.is_empty() {
        return Err(ApiError::Unprocessable(json!({
            "error": "unmapped",
            "reason": "no alert in the batch maps to a component",
            "accepted": [],
            "unmapped": body["unmapped"],
        })));
    }
    Ok((StatusCode::ACCEPTED, Json(body)))
}
