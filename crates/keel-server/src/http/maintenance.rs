//! Scheduled maintenance: announced ahead on the page, the JSON and the feeds, and moved
//! through scheduled → in progress → verifying → completed by responders.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use keel_core::public::MaintenanceStatus;
use keel_store::{NewMaintenance, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::http::auth::{Caller, Role};
use crate::http::body;
use crate::http::incidents::localized;
use crate::http::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: Value,
    #[serde(default)]
    body: Option<Value>,
    scheduled_for: DateTime<Utc>,
    scheduled_until: DateTime<Utc>,
    components: Vec<String>,
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => ApiError::NotFound,
        StoreError::Invalid(r) => ApiError::bad(None, r),
        other => ApiError::Internal(other.into()),
    }
}

/// `POST /api/v1/maintenances`
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Role::Responder)?;
    let b: CreateBody = body::json(&bytes)?;
    let name = localized("name", &b.name, 200)?;
    let text = match &b.body {
        Some(v) => localized("body", v, 10_000)?,
        None => name.clone(),
    };
    if b.scheduled_until <= b.scheduled_for {
        return Err(ApiError::bad(
            Some("scheduled_until"),
            "must be after scheduled_for",
        ));
    }
    if b.components.is_empty() {
        return Err(ApiError::bad(
            Some("components"),
            "name at least one component",
        ));
    }
    for (i, c) in b.components.iter().enumerate() {
        if !state
            .config
            .components
            .iter()
            .any(|k| k.public && k.id.as_str() == c)
        {
            return Err(ApiError::bad(
                Some(&format!("components[{i}]")),
                format!("no public component has the id {c:?}"),
            ));
        }
    }
    let rules = keel_core::public::DisclosureRules::from_config(&state.config);
    for (field, t) in [("name", &name), ("body", &text)] {
        for (locale, s) in &t.by_locale {
            if let Err(f) = keel_core::public::check(s, &rules) {
                let field = if locale.is_empty() {
                    field.to_string()
                } else {
                    format!("{field}.{locale}")
                };
                return Err(ApiError::Conflict {
                    field: Some(field),
                    reason: format!("public text may not contain {:?}: {}", f.term, f.why),
                });
            }
        }
    }
    let m = state
        .store
        .create_maintenance(
            &NewMaintenance {
                name,
                body: text,
                status: MaintenanceStatus::Scheduled,
                scheduled_for: b.scheduled_for,
                scheduled_until: b.scheduled_until,
                components: b.components,
            },
            Utc::now(),
        )
        .await
        .map_err(store_error)?;
    state.snapshots.refresh_inputs();
    Ok((StatusCode::CREATED, Json(json!(m))))
}

/// `GET /api/v1/maintenances`
pub async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let all = state.store.maintenances().await.map_err(store_error)?;
    Ok(Json(json!({ "maintenances": all })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    status: MaintenanceStatus,
}

/// `POST /api/v1/maintenances/{id}/status`
pub async fn set_status(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Responder)?;
    let b: StatusBody = body::json(&bytes)?;
    let m = state
        .store
        .set_maintenance_status(&id, b.status, Utc::now())
        .await
        .map_err(store_error)?;
    state.snapshots.refresh_inputs();
    Ok(Json(json!(m)))
}
