//! Scheduled maintenance: announced ahead on the page, the JSON and the feeds, and moved
//! through scheduled → in progress → verifying → completed by responders.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use keel_core::public::Maintenance;
use keel_core::public::MaintenanceStatus;
use keel_store::{NewMaintenance, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::http::auth::{Caller, Role};
use crate::http::body;
use crate::http::incidents::localized;
use crate::http::openapi::wire;
use crate::http::AppState;

/// A maintenance to announce: name and body once or per locale (`en`, `ja`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    #[schema(value_type = wire::TextIn, example = "Database upgrade")]
    name: Value,
    #[serde(default)]
    #[schema(value_type = Option<wire::TextIn>)]
    body: Option<Value>,
    #[schema(example = "2030-01-01T01:00:00Z")]
    scheduled_for: DateTime<Utc>,
    #[schema(example = "2030-01-01T03:00:00Z")]
    scheduled_until: DateTime<Utc>,
    /// Public component ids; at least one.
    #[schema(example = json!(["web"]), min_items = 1)]
    components: Vec<String>,
}

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(_) => ApiError::NotFound,
        StoreError::Invalid(r) => ApiError::bad(None, r),
        other => ApiError::Internal(other.into()),
    }
}

/// Schedule a maintenance
#[utoipa::path(post, path = "/api/v1/maintenances", operation_id = "create_maintenance", tag = "maintenances",
    request_body = CreateBody,
    responses(
        (status = 201, description = "Scheduled and announced", body = wire::Maintenance),
        (status = 400, description = "A field is missing or wrong", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the responder role", body = wire::Error),
        (status = 409, description = "The public text names something it may not", body = wire::Error),
        (status = 413, description = "Body over 64 KiB", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Maintenance>), ApiError> {
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
    let mut components = Vec::with_capacity(b.components.len());
    for (i, c) in b.components.iter().enumerate() {
        let Some(id) = state.config.public_component_id(c) else {
            return Err(ApiError::bad(
                Some(&format!("components[{i}]")),
                format!("no public component has the id {c:?}"),
            ));
        };
        components.push(id.clone());
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
                components,
            },
            Utc::now(),
        )
        .await
        .map_err(store_error)?;
    state.snapshots.refresh_inputs();
    Ok((StatusCode::CREATED, Json(m)))
}

/// Every maintenance.
#[derive(Serialize, ToSchema)]
pub struct Maintenances {
    #[schema(value_type = Vec<wire::Maintenance>)]
    maintenances: Vec<Maintenance>,
}

/// Every maintenance, past and coming
#[utoipa::path(get, path = "/api/v1/maintenances", operation_id = "list_maintenances", tag = "maintenances",
    responses(
        (status = 200, description = "Every maintenance", body = Maintenances),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the viewer role", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("viewer"))))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Maintenances>, ApiError> {
    caller.require(Role::Viewer)?;
    let maintenances = state.store.maintenances().await.map_err(store_error)?;
    Ok(Json(Maintenances { maintenances }))
}

/// The maintenance's next status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusBody {
    #[schema(value_type = wire::MaintenanceStatus)]
    status: MaintenanceStatus,
}

/// Move a maintenance on (scheduled → in progress → verifying → completed)
#[utoipa::path(post, path = "/api/v1/maintenances/{id}/status", operation_id = "set_maintenance_status", tag = "maintenances",
    params(("id" = i64, Path, example = 1, description = "The maintenance's id")),
    request_body = StatusBody,
    responses(
        (status = 200, description = "The maintenance, updated", body = wire::Maintenance),
        (status = 400, description = "A field is missing or wrong, or the move is not allowed", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the responder role", body = wire::Error),
        (status = 404, description = "No such maintenance", body = wire::Error),
        (status = 413, description = "Body over 64 KiB", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub async fn set_status(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Result<Json<Maintenance>, ApiError> {
    caller.require(Role::Responder)?;
    let b: StatusBody = body::json(&bytes)?;
    let m = state
        .store
        .set_maintenance_status(&id, b.status, Utc::now())
        .await
        .map_err(store_error)?;
    state.snapshots.refresh_inputs();
    Ok(Json(m))
}
