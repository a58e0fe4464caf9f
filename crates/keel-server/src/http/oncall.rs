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
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::http::auth::{Caller, Role};
use crate::http::body;
use crate::http::AppState;

/// How many coming turns `GET /api/v1/oncall` lists after the current one.
const NEXT_TURNS: usize = 3;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverrideBody {
    schedule: String,
    person: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

fn override_json(o: &Override) -> Value {
    json!({
        "id": o.id,
        "schedule": o.schedule,
        "person": o.person,
        "start": o.start,
        "end": o.end,
        "created_by": o.created_by,
        "created_at": o.created_at,
    })
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

/// `GET /api/v1/oncall`: every schedule's person on call now, until when, and who is next.
pub async fn now(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
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
    Ok(Json(json!({ "at": now, "schedules": schedules })))
}

/// `GET /api/v1/oncall/overrides`: current and future overrides.
pub async fn list(caller: Caller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let list = current_overrides(&state, Utc::now()).await?;
    Ok(Json(
        json!({ "overrides": list.iter().map(override_json).collect::<Vec<_>>() }),
    ))
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

/// `POST /api/v1/oncall/overrides`: someone covers a shift.
pub async fn create(
    caller: Caller,
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Role::Responder)?;
    let b: OverrideBody = body::json(&bytes)?;
    let stored = add_override(&state, b.schedule, b.person, b.start, b.end, &caller.name).await?;
    Ok((StatusCode::CREATED, Json(override_json(&stored))))
}

/// `DELETE /api/v1/oncall/overrides/{id}`
pub async fn remove(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
