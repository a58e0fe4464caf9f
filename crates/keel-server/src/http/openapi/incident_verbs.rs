//! The document's operations for routes one handler serves for several verbs
//! (`POST /api/v1/incidents/{id}/{verb}`, `…/{what}/{n}/{verb}`) or methods (`/api/v1/push`):
//! one operation each, so every verb is documented with its own body. These functions are
//! never called; the handlers are `incidents::act`, `incidents::act_on_item` and `push::push`.

#![allow(dead_code)]

use utoipa::IntoResponses;

use super::wire;
use crate::http::incidents::{
    AckBody, ActionBody, ReasonBody, RoleBody, SeverityBody, StateBody, TextBody, UpdateBody,
};
use crate::http::push::Pushed;

/// What every incident command answers. Never built: only its responses are read.
#[derive(IntoResponses)]
#[allow(clippy::large_enum_variant)]
pub enum Answers {
    /// The incident, changed
    #[response(status = 200)]
    Changed(wire::Incident),
    /// A field is missing or wrong, or the id is not an incident id
    #[response(status = 400)]
    BadRequest(wire::Error),
    /// No or unknown bearer token
    #[response(status = 401)]
    Unauthorized(wire::Error),
    /// Needs the responder role
    #[response(status = 403)]
    Forbidden(wire::Error),
    /// No such incident (or step, action item, draft)
    #[response(status = 404)]
    NotFound(wire::Error),
    /// The incident refuses the command in its state (with the reason)
    #[response(status = 409)]
    Conflict(wire::Error),
    /// Body over 64 KiB
    #[response(status = 413)]
    TooLarge(wire::Error),
}

/// Acknowledge the incident (stops the paging)
#[utoipa::path(post, path = "/api/v1/incidents/{id}/acknowledge", operation_id = "acknowledge", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id")),
    request_body(content = Option<AckBody>, description = "Optional; an empty body is `{}`"),
    responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn acknowledge() {}

/// Add a note to the timeline
#[utoipa::path(post, path = "/api/v1/incidents/{id}/notes", operation_id = "add_note", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id")),
    request_body = TextBody, responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn notes() {}

/// Assign an incident role (commander, communications)
#[utoipa::path(post, path = "/api/v1/incidents/{id}/roles", operation_id = "assign_role", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id")),
    request_body = RoleBody, responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn roles() {}

/// Move the incident to another state
#[utoipa::path(post, path = "/api/v1/incidents/{id}/state", operation_id = "change_state", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id")),
    request_body = StateBody, responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn state() {}

/// Resolve the incident
#[utoipa::path(post, path = "/api/v1/incidents/{id}/resolve", operation_id = "resolve", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id")),
    request_body(content = Option<ReasonBody>, description = "Optional; an empty body is `{}`"),
    responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn resolve() {}

/// Add an action item
#[utoipa::path(post, path = "/api/v1/incidents/{id}/action-items", operation_id = "add_action_item", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id")),
    request_body = ActionBody, responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn action_items() {}

/// Set the root cause
#[utoipa::path(post, path = "/api/v1/incidents/{id}/root-cause", operation_id = "set_root_cause", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id")),
    request_body = TextBody, responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn root_cause() {}

/// Publish an update to the status page and subscribers (or add an internal one)
#[utoipa::path(post, path = "/api/v1/incidents/{id}/updates", operation_id = "publish_update", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id")),
    request_body = UpdateBody, responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn updates() {}

/// Set the severity by hand
#[utoipa::path(post, path = "/api/v1/incidents/{id}/severity", operation_id = "set_severity", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id")),
    request_body = SeverityBody, responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn severity() {}

/// Tick a checklist step
#[utoipa::path(post, path = "/api/v1/incidents/{id}/steps/{n}/tick", operation_id = "tick_step", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id"), ("n" = u32, Path, minimum = 1, example = 1, description = "The step's number (from 1)")),
    responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn tick_step() {}

/// Close an action item
#[utoipa::path(post, path = "/api/v1/incidents/{id}/action-items/{n}/close", operation_id = "close_action_item", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id"), ("n" = u32, Path, minimum = 1, example = 1, description = "The action item's number")),
    responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn close_action_item() {}

/// Publish a drafted update
#[utoipa::path(post, path = "/api/v1/incidents/{id}/drafts/{n}/publish", operation_id = "publish_draft", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id"), ("n" = u32, Path, minimum = 1, example = 1, description = "The draft's number")),
    responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn publish_draft() {}

/// Hold a drafted update back
#[utoipa::path(post, path = "/api/v1/incidents/{id}/drafts/{n}/hold", operation_id = "hold_draft", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id"), ("n" = u32, Path, minimum = 1, example = 1, description = "The draft's number")),
    responses(Answers),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub fn hold_draft() {}

/// A heartbeat push, as `GET` (the body, if any, is ignored)
#[utoipa::path(post, path = "/api/v1/push/{token}", operation_id = "push_post", tag = "ops",
    params(("token" = String, Path, description = "The heartbeat monitor's push token")),
    responses(
        (status = 200, description = "Taken as a heartbeat", body = Pushed),
        (status = 404, description = "No heartbeat monitor has this token", body = wire::Error),
    ),
    security(()), extensions(("x-keel-role" = json!("public"))))]
pub fn push_post() {}
