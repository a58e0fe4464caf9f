//! Keel's own health, Prometheus metrics and the monitor list.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::http::AppState;

/// Healthy when the store answers within a second; 503 otherwise (Keel keeps running).
pub async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    let store = match tokio::time::timeout(Duration::from_secs(1), state.store.ping()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("store did not answer within 1s".to_string()),
    };
    let backend = state.store.backend();
    match store {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ok", "store": backend})),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "store": backend, "reason": reason})),
        ),
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = state.metrics.render(&state.hub.snapshot());
    let open: Vec<_> = state
        .incidents
        .list()
        .await
        .into_iter()
        .filter(|e| e.incident.state != keel_core::incident::IncidentState::Resolved)
        .map(|e| e.incident.severity)
        .collect();
    body.push_str(&crate::metrics::render_open_incidents(&open));
    body.push_str(&crate::metrics::render_tasks());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

/// `GET /api/v1/monitors`: every monitor, vendor and intake source with its state.
pub async fn monitors(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Viewer)?;
    // Monitors checked from several locations: each location is a source above ("api",
    // "api@osaka"); what they add up to is the quorum the health view assessed.
    let view = state.incidents.health();
    let located = state.incidents.graph().located();
    let quorum: Vec<_> = view
        .sources
        .iter()
        .filter(|s| located.get(&s.source).is_some_and(|l| l.kind == s.label))
        .map(|s| {
            json!({
                "monitor": s.source,
                "component": s.node,
                "state": s.health,
                "since": s.since,
                "reason": s.reason,
            })
        })
        .collect();
    Ok(Json(json!({
        "monitors": state.hub.snapshot(),
        "quorum": quorum,
        // Set while a canary fails: Keel cannot see, and declares nothing down.
        "blind": state.incidents.blind(),
    })))
}

/// The instances sharing the store, who leads, and which shards this instance checks.
pub async fn cluster(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let within = crate::cluster::job::sharing(&state.cluster);
    let instances = state
        .store
        .live_instances(within)
        .await
        .map_err(anyhow::Error::from)?;
    let leader = state
        .store
        .leases(crate::cluster::LEADER)
        .await
        .map_err(anyhow::Error::from)?
        .into_iter()
        .find(|(l, live)| *live && l.name == crate::cluster::LEADER)
        .map(|(l, _)| json!({"instance": l.holder, "generation": l.generation, "expires_at": l.expires_at}));
    Ok(Json(json!({
        "instance": state.cluster.id,
        "leader": leader,
        "leading": state.cluster.is_leader(),
        "shards": state.cluster.shards(),
        "instances": instances.iter().map(|i| json!({
            "id": i.id,
            "listen": i.listen,
            "started_at": i.started_at,
            "seen_at": i.seen_at,
        })).collect::<Vec<_>>(),
    })))
}
