//! Heartbeat pushes: `GET`/`POST /api/v1/push/{token}` from cron jobs and batch work.
//!
//! The token in the path is the credential (it is what a cron line can carry), so no bearer
//! header is needed; an unknown token is 404 and tells nothing more.

use axum::extract::{Path, State};
use axum::Json;
use chrono::Utc;
use keel_core::confirm::Observation;
use keel_core::Health;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::http::AppState;

pub async fn push(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let now = Utc::now();
    let id = state
        .heartbeats
        .beat(&token, now)
        .ok_or(ApiError::NotFound)?
        .to_string();
    let source = state.heartbeat_sources.get(&id).ok_or(ApiError::NotFound)?;
    state.hub.observe_as(
        source,
        "heartbeat",
        Observation {
            health: Health::Up,
            reason: "heartbeat received".into(),
            latency_ms: Some(0),
            at: now,
        },
    );
    Ok(Json(json!({"ok": true, "monitor": id})))
}
