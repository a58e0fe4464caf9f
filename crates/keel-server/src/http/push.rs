//! Heartbeat pushes: `GET`/`POST /api/v1/push/{token}` from cron jobs and batch work.
//!
//! The token in the path is the credential (it is what a cron line can carry), so no bearer
//! header is needed; an unknown token is 404 and tells nothing more.

use axum::extract::{Path, State};
use axum::Json;
use chrono::Utc;
use keel_core::confirm::Observation;
use keel_core::Health;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::http::openapi::wire;
use crate::http::AppState;

/// A push taken.
#[derive(Serialize, ToSchema)]
pub struct Pushed {
    ok: bool,
    /// The heartbeat monitor the token belongs to.
    monitor: String,
}

/// A heartbeat push
///
/// The token in the path is the credential: no bearer token is needed. `POST` does the same
/// (its body, if any, is ignored).
#[utoipa::path(get, path = "/api/v1/push/{token}", operation_id = "push", tag = "ops",
    params(("token" = String, Path, description = "The heartbeat monitor's push token")),
    responses(
        (status = 200, description = "Taken as a heartbeat", body = Pushed),
        (status = 404, description = "No heartbeat monitor has this token", body = wire::Error),
    ),
    security(()), extensions(("x-keel-role" = json!("public"))))]
pub async fn push(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Json<Pushed>, ApiError> {
    let now = Utc::now();
    let id = state
        .heartbeats
        .beat(&token, now)
        .ok_or(ApiError::NotFound)?
        .clone();
    let source = state.heartbeat_sources.get(&id).ok_or(ApiError::NotFound)?;
    // The instance checking this monitor may be another one: it learns of the push through
    // the store. Not awaited: a slow store must not make a cron job wait.
    let store = state.store.clone();
    let monitor = id.clone();
    tokio::spawn(async move {
        if let Err(e) = store.save_heartbeat(&monitor, now).await {
            tracing::warn!(%monitor, error = %e, "cannot store a heartbeat push for the other instances");
        }
    });
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
    Ok(Json(Pushed {
        ok: true,
        monitor: id.to_string(),
    }))
}
