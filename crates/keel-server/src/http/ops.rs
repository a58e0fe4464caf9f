//! Keel's own health, Prometheus metrics and the monitor list.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::http::auth::{Caller, Role};
use crate::http::openapi::wire;
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
        .filter(|i| i.state != keel_core::incident::IncidentState::Resolved)
        .map(|i| i.severity)
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

/// Every source's state, what the located monitors add up to, and whether Keel is blind.
#[derive(Serialize, ToSchema)]
pub struct Monitors {
    #[schema(value_type = Vec<wire::SourceView>)]
    monitors: Vec<crate::source_view::SourceView>,
    quorum: Vec<Quorum>,
    /// Set while a canary fails: Keel cannot see, and declares nothing down.
    blind: Option<String>,
}

/// What a monitor checked from several locations adds up to.
#[derive(Serialize, ToSchema)]
pub struct Quorum {
    monitor: String,
    component: String,
    #[schema(value_type = wire::Health)]
    state: keel_core::Health,
    since: DateTime<Utc>,
    reason: String,
}

/// Every monitor, vendor and intake source with its state
#[utoipa::path(get, path = "/api/v1/monitors", operation_id = "monitors", tag = "ops",
    responses(
        (status = 200, description = "Every source with its state", body = Monitors),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the viewer role", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("viewer"))))]
pub async fn monitors(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<Monitors>, ApiError> {
    caller.require(Role::Viewer)?;
    // Monitors checked from several locations: each location is a source above ("api",
    // "api@osaka"); what they add up to is the quorum the health view assessed.
    let view = state.incidents.health();
    let located = state.incidents.graph().located();
    let quorum: Vec<_> = view
        .sources
        .iter()
        .filter_map(|s| {
            // The view holds one source per located monitor, its quorum, named by the monitor
            // alone (`with_locations` folded the per-location ones into it).
            let monitor = s.source.monitor_id().filter(|m| located.contains_key(*m))?;
            Some((monitor, s))
        })
        .map(|(monitor, s)| Quorum {
            monitor: monitor.to_string(),
            component: s.node.to_string(),
            state: s.health,
            since: s.since,
            reason: s.reason.clone(),
        })
        .collect();
    Ok(Json(Monitors {
        monitors: state.hub.snapshot(),
        quorum,
        blind: state.incidents.blind(),
    }))
}

/// The instances sharing the store and who leads.
#[derive(Serialize, ToSchema)]
pub struct ClusterView {
    /// This instance's id.
    instance: String,
    leader: Option<Leader>,
    leading: bool,
    /// The monitor shards this instance checks.
    shards: std::collections::BTreeSet<u32>,
    instances: Vec<InstanceView>,
}

/// The live leader lease.
#[derive(Serialize, ToSchema)]
pub struct Leader {
    instance: String,
    generation: i64,
    expires_at: DateTime<Utc>,
}

/// A live instance sharing the store.
#[derive(Serialize, ToSchema)]
pub struct InstanceView {
    id: String,
    listen: String,
    started_at: DateTime<Utc>,
    seen_at: DateTime<Utc>,
}

/// The instances sharing the store, who leads, and which shards this instance checks
#[utoipa::path(get, path = "/api/v1/cluster", operation_id = "cluster", tag = "ops",
    responses(
        (status = 200, description = "Instances, leader and shards", body = ClusterView),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the viewer role", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("viewer"))))]
pub async fn cluster(
    caller: Caller,
    State(state): State<AppState>,
) -> Result<Json<ClusterView>, ApiError> {
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
        .map(|(l, _)| Leader {
            instance: l.holder,
            generation: l.generation,
            expires_at: l.expires_at,
        });
    Ok(Json(ClusterView {
        instance: state.cluster.id.clone(),
        leader,
        leading: state.cluster.is_leader(),
        shards: state.cluster.shards(),
        instances: instances
            .into_iter()
            .map(|i| InstanceView {
                id: i.id,
                listen: i.listen,
                started_at: i.started_at,
                seen_at: i.seen_at,
            })
            .collect(),
    }))
}
