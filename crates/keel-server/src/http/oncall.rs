//! Who is on call, and overrides: `GET /api/v1/oncall`, `GET|POST /api/v1/oncall/overrides`,
//! `DELETE /api/v1/oncall/overrides/{id}`.
//!
//! Schedules come from the config; overrides are stored, so every instance answers the same.
//! The store refuses an overlapping override atomically; everything else is checked here
//! first, so a mistake is answered with the field at fault.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use keel_core::config::{Config, Schedule};
use keel_core::oncall::{self, Override};
use keel_store::{NewOverride, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::http::auth::{Caller, Role};
use crate::http::body;
use crate::http::openapi::wire;
use crate::http::AppState;

/// How many coming turns `GET /api/v1/oncall` lists after the current one.
const NEXT_TURNS: usize = 3;

/// Someone covers `schedule` from `start` to `end` (exclusive).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideBody {
    /// A `[[schedule]]` id.
    #[schema(example = "primary")]
    schedule: String,
    /// A `[[person]]` id.
    #[schema(example = "ann")]
    person: String,
    #[schema(example = "2030-01-01T00:00:00Z")]
    start: DateTime<Utc>,
    #[schema(example = "2030-01-01T06:00:00Z")]
    end: DateTime<Utc>,
}

/// An override as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct OverrideView {
    id: i64,
    schedule: String,
    person: String,
    start: DateTime<Utc>,
    /// Exclusive.
    end: DateTime<Utc>,
    created_by: String,
    created_at: DateTime<Utc>,
}

fn override_json(o: &Override) -> OverrideView {
    OverrideView {
        id: o.id,
        schedule: o.schedule.clone(),
        person: o.person.clone(),
        start: o.start,
        end: o.end,
        created_by: o.created_by.clone(),
        created_at: o.created_at,
    }
}

/// Every schedule's person on call now.
#[derive(Serialize, ToSchema)]
pub struct OnCallNow {
    at: DateTime<Utc>,
    #[schema(value_type = Vec<ScheduleView>)]
    schedules: Vec<Value>,
}

/// A schedule as [`schedule_view`] shows it (the console reads the same).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ScheduleView {
    id: String,
    name: String,
    /// Nobody yet when the rotation has not started (`reason` says when it does).
    on_call: Option<Turn>,
    reason: Option<String>,
    /// The next few turns.
    next: Vec<Turn>,
}

/// One person's turn on call.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)]
pub struct Turn {
    person: String,
    name: String,
    since: DateTime<Utc>,
    /// Null when nobody else is due to take over.
    until: Option<DateTime<Utc>>,
    /// The override making this turn, if one does.
    #[serde(rename = "override")]
    override_id: Option<i64>,
}

/// Current and future overrides.
#[derive(Serialize, ToSchema)]
pub struct Overrides {
    overrides: Vec<OverrideView>,
}

/// People's names by id, made once per answer: a list of 100 schedules names people 400
/// times, and the config's people are a list.
pub(crate) struct Names<'a>(std::collections::HashMap<&'a str, &'a str>);

impl<'a> Names<'a> {
    pub(crate) fn of(config: &'a Config) -> Self {
        Names(
            config
                .people
                .iter()
                .map(|p| (p.id.as_str(), p.name.as_str()))
                .collect(),
        )
    }

    fn get(&self, id: &'a str) -> &'a str {
        self.0.get(id).copied().unwrap_or(id)
    }
}

/// How many consecutive turns of one person are joined into one at the most (a one-person
/// rotation would otherwise be walked forever).
const MAX_JOINED: usize = 100;

/// Who is on call at `at`, with `until` stretched over the turns that follow while the same
/// person stays on call the same way: "until" is when someone else takes over, not the next
/// hand-off of a rotation that hands back to the same person. The flag says nobody else takes
/// over within [`MAX_JOINED`] turns (a one-person rotation): on call until further notice.
fn stint(
    schedule: &Schedule,
    overrides: &[Override],
    at: DateTime<Utc>,
) -> Option<(oncall::OnCall, bool)> {
    let mut stint = oncall::on_call(schedule, overrides, at)?;
    for _ in 0..MAX_JOINED {
        match oncall::on_call(schedule, overrides, stint.until) {
            Some(next)
                if next.person == stint.person
                    && next.override_id == stint.override_id
                    && next.until > stint.until =>
            {
                stint.until = next.until
            }
            // Past the last hand-off a rotation can compute (centuries away): no end known.
            None => return Some((stint, true)),
            _ => return Some((stint, false)),
        }
    }
    Some((stint, true))
}

/// A turn as the API shows it; `until` is null when nobody else is due to take over.
fn turn_json(names: &Names<'_>, turn: &oncall::OnCall, open_ended: bool) -> Value {
    json!({
        "person": turn.person,
        "name": names.get(&turn.person),
        "since": turn.since,
        "until": if open_ended { Value::Null } else { json!(turn.until) },
        "override": turn.override_id,
    })
}

/// Who is on call for `schedule` at `now` (overrides included) and the next few turns, as
/// the API and the console show it.
pub(crate) fn schedule_view(
    names: &Names<'_>,
    schedule: &Schedule,
    overrides: &[Override],
    now: DateTime<Utc>,
) -> Value {
    let current = stint(schedule, overrides, now);
    let on_call = current.as_ref().map(|(c, open)| turn_json(names, c, *open));
    let reason = match &current {
        Some(_) => Value::Null,
        None => json!(format!(
            "the rotation starts at {}",
            schedule.start.to_rfc3339()
        )),
    };
    // The coming turns: walk from the end of the current one; after an open-ended one
    // nobody is next.
    let mut next: Vec<Value> = Vec::new();
    let mut at = match &current {
        Some((_, true)) => None,
        Some((c, false)) => Some(c.until),
        None => Some(schedule.start.with_timezone(&Utc)),
    };
    while let Some(from) = at.filter(|_| next.len() < NEXT_TURNS) {
        let Some((turn, open)) = stint(schedule, overrides, from) else {
            break;
        };
        if turn.until <= from {
            break;
        }
        next.push(turn_json(names, &turn, open));
        at = (!open).then_some(turn.until);
    }
    json!({
        "id": schedule.id,
        "name": schedule.name,
        "on_call": on_call,
        "reason": reason,
        "next": next,
    })
}

async fn current_overrides(
    state: &AppState,
    now: DateTime<Utc>,
) -> Result<Vec<Override>, ApiError> {
    state
        .store
        .overrides(None, now)
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}

/// Who is on call now, until when, and who is next
#[utoipa::path(get, path = "/api/v1/oncall", operation_id = "on_call_now", tag = "oncall",
    responses(
        (status = 200, description = "Every schedule's person on call now and the next turns", body = OnCallNow),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the viewer role", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("viewer"))))]
pub async fn now(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<OnCallNow>, ApiError> {
    caller.require(Role::Viewer)?;
    let now = Utc::now();
    let overrides: Vec<Override> = current_overrides(&state, now).await?;
    let names = Names::of(&state.config);
    let schedules: Vec<Value> = state
        .config
        .schedules
        .iter()
        .map(|s| {
            let own: Vec<Override> = overrides
                .iter()
                .filter(|o| o.schedule == s.id)
                .cloned()
                .collect();
            schedule_view(&names, s, &own, now)
        })
        .collect();
    Ok(Json(OnCallNow { at: now, schedules }))
}

/// Current and future overrides
#[utoipa::path(get, path = "/api/v1/oncall/overrides", operation_id = "list_overrides", tag = "oncall",
    responses(
        (status = 200, description = "Overrides not yet over", body = Overrides),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the viewer role", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("viewer"))))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Overrides>, ApiError> {
    caller.require(Role::Viewer)?;
    let list = current_overrides(&state, Utc::now()).await?;
    Ok(Json(Overrides {
        overrides: list.iter().map(override_json).collect(),
    }))
}

/// Checks an override and stores it, as `POST /api/v1/oncall/overrides` and the console's
/// form both do: unknown schedule or person, an end not after the start or already past are
/// refused with the field at fault; an overlap is the store's `Conflict`. Logs who added it.
pub(crate) async fn add_override(
    state: &AppState,
    schedule: String,
    person: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    by: &str,
) -> Result<Override, ApiError> {
    let config = &state.config;
    if !config.schedules.iter().any(|s| s.id == schedule) {
        let known: Vec<&str> = config.schedules.iter().map(|s| s.id.as_str()).collect();
        return Err(ApiError::bad(
            Some("schedule"),
            format!(
                "no schedule has the id {:?} (known: {})",
                schedule,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        ));
    }
    if !config.people.iter().any(|p| p.id == person) {
        return Err(ApiError::bad(
            Some("person"),
            format!(
                "no [[person]] has the id {:?}: people are declared in the config",
                person
            ),
        ));
    }
    if end <= start {
        return Err(ApiError::bad(Some("end"), "must be after start"));
    }
    let now = Utc::now();
    if end <= now {
        return Err(ApiError::bad(
            Some("end"),
            "is in the past: an override that already ended changes nothing",
        ));
    }
    let stored = state
        .store
        .create_override(&NewOverride {
            schedule,
            person,
            start,
            end,
            created_by: by.to_string(),
            created_at: now,
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(reason) => ApiError::Conflict {
                field: Some("start".into()),
                reason,
            },
            StoreError::Invalid(reason) => ApiError::bad(None, reason),
            other => ApiError::Internal(other.into()),
        })?;
    tracing::info!(
        id = stored.id, schedule = %stored.schedule, person = %stored.person,
        by = %by, "on-call override added"
    );
    Ok(stored)
}

/// Someone covers a shift
#[utoipa::path(post, path = "/api/v1/oncall/overrides", operation_id = "create_override", tag = "oncall",
    request_body = OverrideBody,
    responses(
        (status = 201, description = "The override, stored", body = OverrideView),
        (status = 400, description = "A field is missing or wrong", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the responder role", body = wire::Error),
        (status = 409, description = "Overlaps another override of the schedule", body = wire::Error),
        (status = 413, description = "Body over 64 KiB", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<OverrideView>), ApiError> {
    caller.require(Role::Responder)?;
    let b: OverrideBody = body::json(&bytes)?;
    let stored = add_override(&state, b.schedule, b.person, b.start, b.end, &caller.name).await?;
    Ok((StatusCode::CREATED, Json(override_json(&stored))))
}

/// Remove an override
#[utoipa::path(delete, path = "/api/v1/oncall/overrides/{id}", operation_id = "remove_override", tag = "oncall",
    params(("id" = i64, Path, example = 1, description = "The override's id")),
    responses(
        (status = 200, description = "The override removed", body = OverrideView),
        (status = 400, description = "Not an override id", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the responder role", body = wire::Error),
        (status = 404, description = "No such override", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<OverrideView>, ApiError> {
    caller.require(Role::Responder)?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad(Some("id"), format!("{id:?} is not an override id")))?;
    let gone = remove_override(&state, id, &caller.name).await?;
    Ok(Json(override_json(&gone)))
}

/// Removes an override (API and console), logging who did.
pub(crate) async fn remove_override(
    state: &AppState,
    id: i64,
    by: &str,
) -> Result<Override, ApiError> {
    let gone = state.store.delete_override(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::NotFound,
        other => ApiError::Internal(other.into()),
    })?;
    tracing::info!(
        id, schedule = %gone.schedule, person = %gone.person, by = %by,
        "on-call override removed"
    );
    Ok(gone)
}
