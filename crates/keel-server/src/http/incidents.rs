//! The incident management API under `/api/v1/incidents`.
//!
//! Every body is parsed into a typed command at the edge; a bad one gets 400 naming the field
//! and the reason, and a command the incident refuses (an invalid transition, a step that does
//! not exist) gets 409 or 422 with the reason, leaving the incident as it was.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use keel_core::incident::{Actor, Command, IncidentId, IncidentRole, IncidentState};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::book::Entry;
use crate::error::ApiError;
use crate::http::auth::{Caller, Role};
use crate::http::body;
use crate::http::AppState;
use crate::views;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
}

/// `GET /api/v1/incidents?state=open|investigating|identified|monitoring|resolved`
pub async fn list(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
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
        .filter(|e| match filter {
            None => true,
            Some(None) => e.incident.state != IncidentState::Resolved,
            Some(Some(s)) => e.incident.state == s,
        })
        .map(|e| views::incident(&e.incident, now))
        .collect();
    out.reverse(); // newest first
    Ok(Json(json!({ "incidents": out })))
}

fn parse_id(raw: &str) -> Result<IncidentId, ApiError> {
    raw.parse::<IncidentId>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::bad(Some("id"), "an incident id is a positive whole number"))
}

/// `GET /api/v1/incidents/{id}`: the incident with its timeline.
pub async fn get(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Viewer)?;
    let id = parse_id(&id)?;
    let entry = state.incidents.get(id).await.ok_or(ApiError::NotFound)?;
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeclareBody {
    title: String,
    components: Vec<String>,
}

/// `POST /api/v1/incidents`: declare an incident no monitor sees.
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
        if !state.is_node(c) {
            return Err(ApiError::bad(
                Some(&format!("components[{i}]")),
                format!("no component, vendor or infrastructure node has the id {c:?}"),
            ));
        }
        components.insert(c.clone());
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBody {
    text: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleBody {
    role: IncidentRole,
    person: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateBody {
    state: IncidentState,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasonBody {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    text: String,
    #[serde(default)]
    owner: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    status: Option<keel_core::public::PublicStatus>,
    /// One text for every locale, or `{"en": "…", "ja": "…"}`.
    body: Value,
    #[serde(default)]
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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    via: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeverityBody {
    severity: keel_core::assess::Severity,
    reason: String,
}

/// `POST /api/v1/incidents/{id}/{verb}`: acknowledge, notes, roles, state, resolve,
/// action-items, root-cause, severity.
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
            let b: AckBody = if bytes.is_empty() {
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
            let b: ReasonBody = if bytes.is_empty() {
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

/// `POST /api/v1/incidents/{id}/steps/{n}/tick` and `/action-items/{n}/close`.
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

#[derive(Debug, Deserialize)]
pub struct PostmortemQuery {
    format: Option<String>,
}

/// `GET /api/v1/incidents/{id}/postmortem?format=md|json`
pub async fn postmortem(
    caller: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<PostmortemQuery>,
) -> Result<Response, ApiError> {
    caller.require(Role::Viewer)?;
    let id = parse_id(&id)?;
    let entry = state.incidents.get(id).await.ok_or(ApiError::NotFound)?;
    let history: Vec<_> = state
        .incidents
        .list()
        .await
        .into_iter()
        .filter(|e| {
            e.incident.id != id
                && e.incident.cause.is_some()
                && e.incident.cause == entry.incident.cause
        })
        .map(|e| e.incident)
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

#[derive(Debug, Deserialize)]
pub struct MttxQuery {
    component: Option<String>,
    /// RFC 3339; default 30 days ago.
    from: Option<String>,
    /// RFC 3339; default now.
    to: Option<String>,
}

/// `GET /api/v1/reports/mttx?component=&from=&to=`: MTTD, MTTA, MTTR over a period.
pub async fn mttx(
    caller: Caller,
    State(state): State<AppState>,
    Query(q): Query<MttxQuery>,
) -> Result<Json<Value>, ApiError> {
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
    if let Some(c) = &q.component {
        if !state.is_node(c) {
            return Err(ApiError::bad(
                Some("component"),
                format!("no node has the id {c:?}"),
            ));
        }
    }
    let incidents: Vec<_> = state
        .incidents
        .list()
        .await
        .into_iter()
        .map(|e| e.incident)
        .collect();
    let m = keel_core::incident::mttx(&incidents, q.component.as_deref(), from, to);
    Ok(Json(json!({
        "component": q.component,
        "from": from,
        "to": to,
        "incidents": m.count,
        "mttd_seconds": m.mttd_secs,
        "mtta_seconds": m.mtta_secs,
        "mttr_seconds": m.mttr_secs,
    })))
}
