//! The OpenAPI 3.1 document of `/api/v1`, generated from the handlers' `#[utoipa::path]`
//! attributes and their types, and served (without a token) at `GET /api/v1/openapi.json`.
//!
//! Each operation carries `x-keel-role`: the role its token needs (`viewer`, `responder`,
//! `admin`; `probe` for the probe endpoints, which take nothing else), or `public` when it
//! takes no token. The role test (tests/roles.rs) reads it to call every operation with each
//! weaker token.

mod incident_verbs;
pub(crate) mod wire;

use std::sync::OnceLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{incidents, intake, maintenance, oncall, ops, probe, push, subscribe};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Keel API",
        description = "Keel's management API. Send `Authorization: Bearer <token>` (made with \
                       `keel token create --role viewer|responder|admin`); each operation's \
                       `x-keel-role` names the role it needs. Errors are JSON: \
                       `{\"error\": code, \"reason\": words, \"field\": part at fault}`."
    ),
    paths(
        subscribe::list,
        subscribe::create,
        subscribe::outbox,
        maintenance::list,
        maintenance::create,
        maintenance::set_status,
        oncall::now,
        oncall::list,
        oncall::create,
        oncall::remove,
        ops::monitors,
        ops::cluster,
        push::push,
        incident_verbs::push_post,
        incidents::list,
        incidents::declare,
        incidents::get,
        incidents::postmortem,
        incident_verbs::acknowledge,
        incident_verbs::notes,
        incident_verbs::roles,
        incident_verbs::state,
        incident_verbs::resolve,
        incident_verbs::action_items,
        incident_verbs::root_cause,
        incident_verbs::updates,
        incident_verbs::severity,
        incident_verbs::tick_step,
        incident_verbs::close_action_item,
        incident_verbs::publish_draft,
        incident_verbs::hold_draft,
        incidents::mttx,
        intake::alertmanager,
        intake::generic,
        probe::assignments,
        probe::results,
        document,
    ),
    // Named by incident_verbs::Answers and query parameters, which the path attributes do
    // not collect.
    components(schemas(wire::Incident, wire::Error, wire::IncidentFilter, wire::PostmortemFormat)),
    modifiers(&BearerToken)
)]
struct ApiDoc;

/// Declares the `bearer` scheme the operations' security requirements name.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API token from `keel token create` (or the bootstrap \
                         KEEL_ADMIN_TOKEN)",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON, made once: it is the same for the life of the process.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes")
    })
}

/// This document
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi", tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document of /api/v1", content_type = "application/json", body = Object)),
    security(()), extensions(("x-keel-role" = json!("public"))))]
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], json())
}
