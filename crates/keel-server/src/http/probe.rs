//! The probe endpoints: `GET /api/v1/probe/assignments?location=osaka` (what a remote probe
//! runs) and `POST /api/v1/probe/results` (what it saw). Only probe tokens are taken
//! ([`ProbeCaller`]), each token is rate-limited, and a batch is checked whole before any of it
//! reaches the hub: a result for a monitor the location does not run refuses the batch.
//!
//! Results are stamped with the server's clock when they arrive. A probe's clock may be far
//! off, and confirmation, `since` and time to detect must all be on one clock; anything the
//! probe sends about time is ignored.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::Utc;
use keel_core::confirm::Observation;
use keel_probe::remote::{is_probe_location, Accepted, Assignments, Results, MAX_RESULTS};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::http::auth::ProbeCaller;
use crate::http::body;
use crate::http::incidents::ApiQuery;
use crate::http::openapi::wire;
use crate::http::AppState;

/// The longest reason kept from a probe; longer ones are cut (a reason is for a human).
const MAX_REASON_CHARS: usize = 500;

/// The most bytes one results post may have: `MAX_RESULTS` results with long reasons fit.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

fn rate_limited(state: &AppState, caller: &ProbeCaller) -> Result<(), ApiError> {
    if state.probes.allow(&caller.name) {
        Ok(())
    } else {
        Err(ApiError::TooMany(format!(
            "too many requests from probe token {:?}; a probe posts about once a second",
            caller.name
        )))
    }
}

/// 404 naming the locations that exist, so a typo in `--location` says what to write.
fn unknown_location(state: &AppState, location: &str) -> ApiError {
    let known: Vec<&str> = state.probes.locations().collect();
    let listed = if known.is_empty() {
        "no monitor has remote locations (set `locations` on a [[monitor]])".to_owned()
    } else {
        format!("configured locations: {}", known.join(", "))
    };
    let what = if location == keel_core::config::LOCAL {
        "\"local\" is the Keel server itself, not a probe".to_owned()
    } else {
        format!("no monitor is checked from {location:?}")
    };
    ApiError::Missing(format!("{what}; {listed}"))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Where {
    /// The probe's location, as monitors name it in `locations`.
    #[param(example = "osaka")]
    location: String,
}

/// What a remote probe at `location` runs
#[utoipa::path(get, path = "/api/v1/probe/assignments", operation_id = "probe_assignments", tag = "probe",
    params(Where),
    responses(
        (status = 200, description = "The location's monitors", body = wire::Assignments),
        (status = 400, description = "No location given", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Takes only a probe token", body = wire::Error),
        (status = 404, description = "No monitor is checked from this location", body = wire::Error),
        (status = 429, description = "Too many requests from this probe token", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("probe"))))]
pub async fn assignments(
    caller: ProbeCaller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<Where>,
) -> Result<Json<Assignments>, ApiError> {
    rate_limited(&state, &caller)?;
    state
        .probes
        .assignments(&q.location)
        .cloned()
        .map(Json)
        .ok_or_else(|| unknown_location(&state, &q.location))
}

/// What a remote probe saw
///
/// The batch is checked whole before any of it is applied; results are stamped with the
/// server's clock.
#[utoipa::path(post, path = "/api/v1/probe/results", operation_id = "probe_results", tag = "probe",
    request_body = wire::Results,
    responses(
        (status = 202, description = "Applied", body = wire::Accepted),
        (status = 400, description = "A field is missing or wrong", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Takes only a probe token", body = wire::Error),
        (status = 404, description = "No monitor is checked from this location", body = wire::Error),
        (status = 413, description = "Body over 1 MiB", body = wire::Error),
        (status = 422, description = "Too many results, or results for monitors the location does not run", body = wire::Error),
        (status = 429, description = "Too many requests from this probe token", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("probe"))))]
pub async fn results(
    caller: ProbeCaller,
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    rate_limited(&state, &caller)?;
    let batch: Results = body::json(&bytes)?;
    let location = batch.location.as_str();
    if !is_probe_location(location) || state.probes.assignments(location).is_none() {
        return Err(unknown_location(&state, location));
    }
    if batch.results.len() > MAX_RESULTS {
        return Err(ApiError::Unprocessable(json!({
            "error": "too_many_results",
            "reason": format!(
                "at most {MAX_RESULTS} results per request; this one has {}: post them in batches",
                batch.results.len()
            ),
            "limit": MAX_RESULTS,
        })));
    }
    // Every result is checked before any is applied: half a batch would leave the hub
    // knowing some of what the probe said and the probe not knowing which.
    let mut resolved = Vec::with_capacity(batch.results.len());
    let mut unassigned: Vec<&str> = Vec::new();
    for r in &batch.results {
        match state
            .probes
            .monitor_index(&r.monitor)
            .filter(|&i| state.config.monitors[i].runs_at(location))
        {
            Some(i) => resolved.push(i),
            None => {
                if !unassigned.contains(&r.monitor.as_str()) {
                    unassigned.push(&r.monitor);
                }
            }
        }
    }
    if !unassigned.is_empty() {
        return Err(ApiError::Unprocessable(json!({
            "error": "unassigned",
            "reason": format!(
                "not checked from {location}: {}; nothing in this batch was applied (fetch the \
                 assignments again)",
                unassigned.join(", ")
            ),
            "unassigned": unassigned,
        })));
    }
    let now = Utc::now();
    for (r, &i) in batch.results.iter().zip(&resolved) {
        let m = &state.config.monitors[i];
        let reason = match r.reason.char_indices().nth(MAX_REASON_CHARS) {
            Some((cut, _)) => format!("{}…", &r.reason[..cut]),
            None => r.reason.clone(),
        };
        state.hub.observe_as(
            &crate::probes::source(m, location),
            m.kind(),
            Observation {
                health: r.health,
                reason,
                latency_ms: r.latency_ms,
                at: now,
            },
        );
        state.probes.reported(i, &m.id, location, now);
    }
    let version = state
        .probes
        .assignments(location)
        .map(|a| a.version.clone())
        .unwrap_or_default();
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            accepted: resolved.len(),
            version,
        }),
    ))
}
