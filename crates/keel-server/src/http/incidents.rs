//! The incident management API under `/api/v1/incidents`.
//!
//! Every body is parsed into a typed command at the edge; a bad one gets 400 naming the field
//! and the reason, and a command the incident refuses (an invalid transition, a step that does
//! not exist) gets 409 or 422 with the reason, leaving the incident as it was.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use keel_core::incident::{Actor, Command, IncidentId, IncidentRole, IncidentState};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::book::Entry;
use crate::error::ApiError;
use crate::http::auth::{Caller, Role};
use crate::http::body;
use crate::http::openapi::wire;
use crate::http::AppState;
use crate::views;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `open` (not resolved), `all` (the default), or one state.
    #[param(value_type = Option<wire::IncidentFilter>)]
    state: Option<String>,
}

/// Incidents, newest first.
#[derive(Serialize, ToSchema)]
pub struct Incidents {
    #[schema(value_type = Vec<wire::IncidentSummary>)]
    incidents: Vec<Value>,
}

/// Incidents, newest first, optionally by state
#[utoipa::path(get, path = "/api/v1/incidents", operation_id = "list_incidents", tag = "incidents",
    params(ListQuery),
    responses(
        (status = 200, description = "Incidents, newest first", body = Incidents),
        (status = 400, description = "Unknown state", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the viewer role", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("viewer"))))]
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Incidents>, ApiError> {
    caller.require(Role::Viewer)?;
    let filter = match q.state.as_deref() {
        None | Some("all") => None,
        Some("open") => Some(None),
        Some(s) => Some(Some(s.parse::<IncidentState>().map_err(|e| {
            ApiError::bad(Some("state"), format!("{e}, or open/all"))
        })?)),
    };
    let now = Utc::now();
    let mut out: Vec<Value> = state
        .incidents
        .list()
        .await
        .iter()
        .filter(|i| match filter {
            None => true,
            Some(None) => i.state != IncidentState::Resolved,
            Some(Some(s)) => i.state == s,
        })
        .map(|i| views::incident(i, now))
        .collect();
    out.reverse(); // newest first
    Ok(Json(Incidents { incidents: out }))
}

fn parse_id(raw: &str) -> Result<IncidentId, ApiError> {
    raw.parse::<IncidentId>()
        .ok()
        .filter(|id| id.get() > 0)
        .ok_or_else(|| ApiError::bad(Some("id"), "an incident id is a positive whole number"))
}

/// The incident with its timeline, alternatives and guarded steps
#[utoipa::path(get, path = "/api/v1/incidents/{id}", operation_id = "get_incident", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id")),
    responses(
        (status = 200, description = "The incident", body = wire::Incident),
        (status = 400, description = "Not an incident id", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the viewer role", body = wire::Error),
        (status = 404, description = "No such incident", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("viewer"))))]
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let id = parse_id(&id)?;
    let entry = state.incidents.get(id).await?.ok_or(ApiError::NotFound)?;
    let mut v = views::incident_full(&entry, Utc::now());
    let view = state.incidents.health();
    views::add_backups(
        &mut v,
        &entry.incident,
        &state.config,
        state.incidents.graph(),
        &view.health,
    );
    Ok(Json(v))
}

/// axum's `Query`, with a query string that does not parse (a parameter given twice, one
/// missing) answered as Keel's JSON 400 naming the parameter, like a bad body, rather than
/// axum's plain-text one.
pub(crate) struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(q)| ApiQuery(q))
            .map_err(|e| {
                // serde names the parameter only in its message: "duplicate field `state`".
                let reason = e.body_text();
                let field = reason
                    .split_once("field `")
                    .and_then(|(_, rest)| rest.split('`').next())
                    .map(str::to_string);
                ApiError::BadRequest { field, reason }
            })
    }
}

/// Whether an optional body was left out: nothing, or JSON `null` (what the document's
/// optional bodies allow).
fn no_body(bytes: &Bytes) -> bool {
    matches!(bytes.trim_ascii(), b"" | b"null")
}

fn non_empty(field: &str, s: &str, max: usize) -> Result<String, ApiError> {
    let t = s.trim();
    if t.is_empty() {
        return Err(ApiError::bad(Some(field), "must not be empty"));
    }
    if t.chars().count() > max {
        return Err(ApiError::bad(
            Some(field),
            format!("at most {max} characters"),
        ));
    }
    Ok(t.to_string())
}

/// An incident no monitor sees: a title and the affected components.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareBody {
    #[schema(example = "Checkout fails", min_length = 1, max_length = 200)]
    title: String,
    /// Component, vendor or infrastructure ids; at least one.
    #[schema(example = json!(["web"]), min_items = 1)]
    components: Vec<String>,
}

/// Declare an incident no monitor sees
#[utoipa::path(post, path = "/api/v1/incidents", operation_id = "declare_incident", tag = "incidents",
    request_body = DeclareBody,
    responses(
        (status = 201, description = "The incident, opened", body = wire::Incident),
        (status = 400, description = "A field is missing or wrong", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the responder role", body = wire::Error),
        (status = 409, description = "Refused (an open incident already covers it)", body = wire::Error),
        (status = 413, description = "Body over 64 KiB", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("responder"))))]
pub async fn declare(
    caller: Caller,
    State(state): State<AppState>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    caller.require(Role::Responder)?;
    let b: DeclareBody = body::json(&bytes)?;
    let title = non_empty("title", &b.title, 200)?;
    if b.components.is_empty() {
        return Err(ApiError::bad(
            Some("components"),
            "name at least one affected component",
        ));
    }
    let mut components = BTreeSet::new();
    for (i, c) in b.components.iter().enumerate() {
        let Some(node) = state.node(c) else {
            return Err(ApiError::bad(
                Some(&format!("components[{i}]")),
                format!("no component, vendor or infrastructure node has the id {c:?}"),
            ));
        };
        components.insert(node);
    }
    let entry = state
        .incidents
        .declare(title, components, Actor::User(caller.name), Utc::now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(views::incident_full(&entry, Utc::now())),
    ))
}

/// A text (a note, the root cause).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextBody {
    #[schema(example = "Rolled back the 14:02 deploy", min_length = 1)]
    text: String,
}

/// Who takes an incident role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleBody {
    #[schema(value_type = wire::IncidentRole)]
    role: IncidentRole,
    #[schema(example = "Ann Sato", min_length = 1)]
    person: String,
}

/// The incident's next state, and why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateBody {
    #[schema(value_type = wire::IncidentState)]
    #[schema(example = "identified")]
    state: IncidentState,
    #[serde(default)]
    #[schema(example = "the deploy is the cause")]
    reason: Option<String>,
}

/// Why (optional).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

/// A follow-up to do, and who owns it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    #[schema(example = "Alert on deploy error rates", min_length = 1)]
    text: String,
    #[serde(default)]
    owner: Option<String>,
}

/// A public update (or, with `public: false`, an internal one kept as a note).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    /// Required when public.
    #[schema(value_type = Option<wire::PublicStatus>)]
    #[schema(example = "identified")]
    status: Option<keel_core::public::PublicStatus>,
    /// One text for every locale, or `{"en": "…", "ja": "…"}`.
    #[schema(value_type = wire::TextIn, example = "We found the cause and are fixing it.")]
    body: Value,
    #[serde(default)]
    #[schema(value_type = Option<wire::TextIn>)]
    title: Option<Value>,
    #[serde(default = "yes")]
    public: bool,
    #[serde(default)]
    override_reason: Option<String>,
}

fn yes() -> bool {
    true
}

/// A text given once or per locale, each non-empty and bounded.
pub(crate) fn localized(
    field: &str,
    v: &Value,
    max: usize,
) -> Result<keel_core::config::LocalizedText, ApiError> {
    match v {
        Value::String(s) => Ok(keel_core::config::LocalizedText::plain(non_empty(
            field, s, max,
        )?)),
        Value::Object(map) if !map.is_empty() => {
            let mut by_locale = std::collections::BTreeMap::new();
            for (locale, text) in map {
                let f = format!("{field}.{locale}");
                if !matches!(locale.as_str(), "en" | "ja") {
                    return Err(ApiError::bad(Some(&f), "locales are en and ja"));
                }
                let Value::String(text) = text else {
                    return Err(ApiError::bad(Some(&f), "expected a string"));
                };
                by_locale.insert(locale.clone(), non_empty(&f, text, max)?);
            }
            Ok(keel_core::config::LocalizedText { by_locale })
        }
        _ => Err(ApiError::bad(
            Some(field),
            "expected a string, or an object of locale to string such as {\"en\": \"…\", \"ja\": \"…\"}",
        )),
    }
}

/// How the acknowledgement came in: `api` (the default), `cli` or `chat`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AckBody {
    #[schema(example = "cli")]
    via: Option<String>,
}

/// The severity a responder sets, and why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverityBody {
    #[schema(value_type = wire::Severity)]
    #[schema(example = "SEV2")]
    severity: keel_core::assess::Severity,
    #[schema(example = "only EU customers are affected", min_length = 1)]
    reason: String,
}

/// `POST /api/v1/incidents/{id}/{verb}`: acknowledge, notes, roles, state, resolve,
/// action-items, root-cause, updates, severity. The document has one operation per verb
/// (`http/openapi/incident_verbs.rs`), each with its own body.
pub async fn act(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, verb)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Responder)?;
    let id = parse_id(&id)?;
    let cmd = match verb.as_str() {
        "acknowledge" => {
            // How it came in, for the timeline: the API itself, or a client built on it.
            let b: AckBody = if no_body(&bytes) {
                AckBody { via: None }
            } else {
                body::json(&bytes)?
            };
            let via = match b.via.as_deref() {
                None => "api",
                Some(v @ ("api" | "cli" | "chat")) => v,
                Some(other) => {
                    return Err(ApiError::bad(
                        Some("via"),
                        format!("{other:?} is not one of api, cli, chat"),
                    ))
                }
            };
            Command::Acknowledge {
                via: Some(via.into()),
            }
        }
        "notes" => {
            let b: TextBody = body::json(&bytes)?;
            Command::Note {
                text: non_empty("text", &b.text, 10_000)?,
            }
        }
        "roles" => {
            let b: RoleBody = body::json(&bytes)?;
            Command::AssignRole {
                role: b.role,
                person: non_empty("person", &b.person, 200)?,
            }
        }
        "state" => {
            let b: StateBody = body::json(&bytes)?;
            Command::ChangeState {
                to: b.state,
                reason: b.reason.unwrap_or_default(),
            }
        }
        "resolve" => {
            let b: ReasonBody = if no_body(&bytes) {
                ReasonBody { reason: None }
            } else {
                body::json(&bytes)?
            };
            Command::Resolve {
                reason: b.reason.unwrap_or_else(|| "resolved by a responder".into()),
            }
        }
        "action-items" => {
            let b: ActionBody = body::json(&bytes)?;
            Command::AddActionItem {
                text: non_empty("text", &b.text, 2_000)?,
                owner: b.owner.filter(|o| !o.trim().is_empty()),
            }
        }
        "root-cause" => {
            let b: TextBody = body::json(&bytes)?;
            Command::SetRootCause {
                text: non_empty("text", &b.text, 20_000)?,
            }
        }
        "updates" => {
            let b: UpdateBody = body::json(&bytes)?;
            let text = localized("body", &b.body, 10_000)?;
            if !b.public {
                // An internal update is a note on the timeline.
                Command::Note {
                    text: text.get("en").to_string(),
                }
            } else {
                let status = b
                    .status
                    .ok_or_else(|| ApiError::bad(Some("status"), "a public update needs a status: investigating, identified, monitoring or resolved"))?;
                Command::PublishUpdate {
                    status,
                    body: text,
                    title: b
                        .title
                        .as_ref()
                        .map(|t| localized("title", t, 200))
                        .transpose()?,
                    override_reason: b.override_reason.filter(|r| !r.trim().is_empty()),
                }
            }
        }
        "severity" => {
            let b: SeverityBody = body::json(&bytes)?;
            Command::SetSeverity {
                severity: b.severity,
                reason: non_empty("reason", &b.reason, 2_000)?,
            }
        }
        _ => return Err(ApiError::NotFound),
    };
    run(&state, id, cmd, caller).await
}

/// `POST /api/v1/incidents/{id}/steps/{n}/tick`, `/action-items/{n}/close`,
/// `/drafts/{n}/publish` and `/drafts/{n}/hold`: one operation each in the document
/// (`http/openapi/incident_verbs.rs`).
pub async fn act_on_item(
    caller: Caller,
    State(state): State<AppState>,
    Path((id, what, n, verb)): Path<(String, String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Responder)?;
    let id = parse_id(&id)?;
    let n: u32 = n
        .parse()
        .map_err(|_| ApiError::bad(Some(&what), "expected a whole number"))?;
    let cmd = match (what.as_str(), verb.as_str()) {
        ("steps", "tick") => Command::TickStep { step: n as usize },
        ("action-items", "close") => Command::CloseActionItem { item: n },
        ("drafts", "publish") => Command::PublishDraft { draft: n },
        ("drafts", "hold") => Command::HoldDraft { draft: n },
        _ => return Err(ApiError::NotFound),
    };
    run(&state, id, cmd, caller).await
}

async fn run(
    state: &AppState,
    id: IncidentId,
    cmd: Command,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let entry: Entry = state
        .incidents
        .command(
            id,
            cmd,
            Actor::User(caller.name.clone()),
            caller.role >= Role::Admin,
            Utc::now(),
        )
        .await?;
    Ok(Json(views::incident_full(&entry, Utc::now())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PostmortemQuery {
    /// `json` (the default) or `md` (also `markdown`).
    #[param(value_type = Option<wire::PostmortemFormat>)]
    format: Option<String>,
}

/// The incident's postmortem draft, as JSON or Markdown
#[utoipa::path(get, path = "/api/v1/incidents/{id}/postmortem", operation_id = "postmortem", tag = "incidents",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "The incident's id"), PostmortemQuery),
    responses(
        (status = 200, description = "The postmortem draft",
            content((Object = "application/json"), (String = "text/markdown"))),
        (status = 400, description = "Not an incident id, or an unknown format", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the viewer role", body = wire::Error),
        (status = 404, description = "No such incident", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("viewer"))))]
pub async fn postmortem(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PostmortemQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let id = parse_id(&id)?;
    let entry = state.incidents.get(id).await?.ok_or(ApiError::NotFound)?;
    let history: Vec<_> = state
        .incidents
        .list()
        .await
        .into_iter()
        .filter(|i| i.id != id && i.cause.is_some() && i.cause == entry.incident.cause)
        .collect();
    let pm = keel_core::incident::postmortem(&entry.incident, &entry.events, &history, Utc::now());
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(pm.json).into_response()),
        Some("md" | "markdown") => Ok((
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            pm.markdown,
        )
            .into_response()),
        Some(_) => Err(ApiError::bad(Some("format"), "expected md or json")),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MttxQuery {
    /// Only incidents impacting this node (component, vendor or infrastructure).
    component: Option<String>,
    /// RFC 3339; default 30 days ago.
    #[param(value_type = Option<chrono::DateTime<Utc>>)]
    from: Option<String>,
    /// RFC 3339; default now.
    #[param(value_type = Option<chrono::DateTime<Utc>>)]
    to: Option<String>,
}

/// Mean times to detect, acknowledge and resolve over a period.
#[derive(Serialize, ToSchema)]
pub struct Mttx {
    component: Option<String>,
    from: chrono::DateTime<Utc>,
    to: chrono::DateTime<Utc>,
    /// Incidents counted.
    incidents: u64,
    /// Null when no incident gives the measure.
    mttd_seconds: Option<f64>,
    mtta_seconds: Option<f64>,
    mttr_seconds: Option<f64>,
}

/// MTTD, MTTA and MTTR over a period
#[utoipa::path(get, path = "/api/v1/reports/mttx", operation_id = "mttx", tag = "incidents",
    params(MttxQuery),
    responses(
        (status = 200, description = "The means over the period", body = Mttx),
        (status = 400, description = "A time or component is wrong", body = wire::Error),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the viewer role", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("viewer"))))]
pub async fn mttx(
    caller: Caller,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<MttxQuery>,
) -> Result<Json<Mttx>, ApiError> {
    caller.require(Role::Viewer)?;
    let now = Utc::now();
    let parse = |field: &str, v: &Option<String>, default| -> Result<_, ApiError> {
        match v {
            None => Ok(default),
            Some(s) => chrono::DateTime::parse_from_rfc3339(s)
                .map(|d| d.with_timezone(&Utc))
                .map_err(|e| {
                    ApiError::bad(
                        Some(field),
                        format!("expected an RFC 3339 time such as 2026-11-01T00:00:00Z: {e}"),
                    )
                }),
        }
    };
    let from = parse("from", &q.from, now - chrono::TimeDelta::days(30))?;
    let to = parse("to", &q.to, now)?;
    if from >= to {
        return Err(ApiError::bad(Some("from"), "must be before `to`"));
    }
    let component = match &q.component {
        None => None,
        Some(c) => Some(state.node(c).ok_or_else(|| {
            ApiError::bad(Some("component"), format!("no node has the id {c:?}"))
        })?),
    };
    let incidents = state.incidents.list().await;
    let m = keel_core::incident::mttx(&incidents, component.as_ref(), from, to);
    Ok(Json(Mttx {
        component: q.component,
        from,
        to,
        incidents: m.count as u64,
        mttd_seconds: m.mttd_secs,
        mtta_seconds: m.mtta_secs,
        mttr_seconds: m.mttr_secs,
    }))
}
