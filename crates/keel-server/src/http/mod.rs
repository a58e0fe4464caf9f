//! The HTTP surface: routes and the state they share.

mod ack;
pub mod auth;
pub(crate) mod body;
pub(crate) mod incidents;
mod intake;
mod maintenance;
pub(crate) mod oncall;
mod openapi;
mod ops;
mod probe;
mod public;
mod push;
pub mod server;
mod subscribe;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::middleware::map_response;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use keel_core::config::Config;
use keel_core::{MonitorId, NodeId};
use keel_probe::scheduler::Heartbeats;
use keel_probe::source::Source;
use keel_store::Store;

use crate::book::IncidentBook;
use crate::hub::SignalHub;
use crate::metrics::Metrics;

/// Everything a handler may need. Cloned for every request (axum's `State`), so it is one
/// shared pointer: a struct of a dozen `Arc`s cost a few per cent of the status page's CPU.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] points to.
pub struct Shared {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub hub: Arc<SignalHub>,
    pub metrics: Arc<Metrics>,
    pub heartbeats: Arc<Heartbeats>,
    /// Heartbeat monitors by id, to confirm pushes with their own thresholds.
    pub heartbeat_sources: Arc<HashMap<MonitorId, Source>>,
    pub incidents: Arc<IncidentBook>,
    /// Per-address limiter of the public subscription endpoints.
    pub limiter: Arc<subscribe::Limiter>,
    /// Wakes the outbox worker when something was queued.
    pub outbox_wake: Arc<tokio::sync::Notify>,
    /// The rendered public documents.
    pub snapshots: Arc<crate::rendered::SnapshotCache>,
    /// SHA-256 (hex) of the bootstrap admin token, if one was given.
    pub admin_token_hash: Option<String>,
    /// This instance's leases among the instances sharing the store.
    pub cluster: Arc<crate::cluster::Cluster>,
    /// Remote probes: their assignments, rate limit and liveness.
    pub probes: Arc<crate::probes::Probes>,
}

impl Shared {
    /// Whether `id` names a node of the dependency graph (component or vendor).
    pub fn is_node(&self, id: &str) -> bool {
        self.node(id).is_some()
    }

    /// `id` as the graph node it names, if it names one (component or vendor).
    pub fn node(&self, id: &str) -> Option<NodeId> {
        let id = NodeId::parse(id).ok()?;
        self.incidents.graph().node(&id)?;
        Some(id)
    }
}

/// A new limiter for [`AppState::limiter`].
pub fn limiter() -> subscribe::Limiter {
    subscribe::limiter()
}

use body::{too_large, BODY_LIMIT};

/// Every route: the API's and, merged in under the same body limit, `pages` (the console's,
/// which are built on this module's state and handlers, so handed in rather than named here).
pub fn router(state: AppState, pages: Router<AppState>) -> Router {
    let intake_limit = state.config.intake.max_body_bytes;
    let intake = Router::new()
        .route("/api/v1/intake/alertmanager", post(intake::alertmanager))
        .route("/api/v1/intake/generic", post(intake::generic))
        .layer(DefaultBodyLimit::max(intake_limit))
        .layer(map_response(move |resp: Response| {
            too_large(
                intake_limit,
                "the intake accepts ([intake] max_body_bytes)",
                resp,
            )
        }));
    // A batch of results is larger than the API's other bodies.
    let probe = Router::new()
        .route("/api/v1/probe/assignments", get(probe::assignments))
        .route("/api/v1/probe/results", post(probe::results))
        .layer(DefaultBodyLimit::max(probe::MAX_BODY_BYTES))
        .layer(map_response(|resp: Response| {
            too_large(
                probe::MAX_BODY_BYTES,
                "a probe's batch of results may be",
                resp,
            )
        }));
    Router::new()
        .route("/", get(public::document))
        .route("/index.html", get(public::document))
        .route("/api/v2/{doc}", get(public::document))
        .route("/api/v2/incidents/unresolved.json", get(public::document))
        .route(
            "/api/v2/scheduled-maintenances/{which}",
            get(public::document),
        )
        .route("/history.atom", get(public::document))
        .route("/history.rss", get(public::document))
        .route("/badge.svg", get(public::document))
        .route("/badge/{component}", get(public::document))
        .route("/subscribe", post(subscribe::form))
        .route("/subscribe/confirm/{token}", get(subscribe::confirm))
        .route(
            "/unsubscribe/{token}",
            get(subscribe::unsubscribe).post(subscribe::unsubscribe),
        )
        .route(
            "/api/v1/subscribers",
            get(subscribe::list).post(subscribe::create),
        )
        .route("/api/v1/outbox", get(subscribe::outbox))
        .route(
            "/api/v1/maintenances",
            get(maintenance::list).post(maintenance::create),
        )
        .route(
            "/api/v1/maintenances/{id}/status",
            post(maintenance::set_status),
        )
        .route("/ack/{token}", get(ack::show).post(ack::acknowledge))
        .route("/api/v1/oncall", get(oncall::now))
        .route(
            "/api/v1/oncall/overrides",
            get(oncall::list).post(oncall::create),
        )
        .route(
            "/api/v1/oncall/overrides/{id}",
            axum::routing::delete(oncall::remove),
        )
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/api/v1/monitors", get(ops::monitors))
        .route("/api/v1/cluster", get(ops::cluster))
        .route("/api/v1/push/{token}", get(push::push).post(push::push))
        .route(
            "/api/v1/incidents",
            get(incidents::list).post(incidents::declare),
        )
        .route("/api/v1/incidents/{id}", get(incidents::get))
        .route(
            "/api/v1/incidents/{id}/postmortem",
            get(incidents::postmortem),
        )
        .route("/api/v1/incidents/{id}/{verb}", post(incidents::act))
        .route(
            "/api/v1/incidents/{id}/{what}/{n}/{verb}",
            post(incidents::act_on_item),
        )
        .route("/api/v1/reports/mttx", get(incidents::mttx))
        .route("/api/v1/openapi.json", get(openapi::document))
        .merge(intake)
        .merge(probe)
        .merge(pages)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(map_response(|resp: Response| {
            too_large(BODY_LIMIT, "this endpoint accepts", resp)
        }))
        .with_state(state)
}
