//! `/admin/oncall`: who is on call in every schedule, the coming turns, and overrides (added
//! and removed through the same checks and log lines as `/api/v1/oncall/overrides`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use keel_core::config::{Config, Schedule};
use keel_core::oncall::Override;
use serde::Deserialize;

use super::form::zoned_time;
use super::html::{w, Doc, Lang};
use super::{checked_form, responder_form, User};
use crate::error::ApiError;
use crate::http::auth::Role;
use crate::http::oncall::{add_override, remove_override, schedule_view, Names};
use crate::http::AppState;

/// One turn as `schedule_view` describes it.
#[derive(Deserialize)]
struct Turn {
    person: String,
    name: String,
    since: DateTime<Utc>,
    /// `None`: nobody else is due to take over.
    until: Option<DateTime<Utc>>,
    #[serde(rename = "override")]
    override_id: Option<i64>,
}

#[derive(Deserialize)]
struct View {
    on_call: Option<Turn>,
    reason: Option<String>,
    next: Vec<Turn>,
}

/// What the add form had in it, kept when it is refused so nothing typed is lost.
#[derive(Default)]
struct Typed {
    schedule: String,
    person: String,
    start: String,
    end: String,
    zone: String,
}

/// A time in UTC and in a named zone ("2026-03-01 09:00 UTC · 18:00 JST (Asia/Tokyo)").
pub(crate) fn time_in(d: &mut Doc, at: DateTime<Utc>, zone: Option<chrono_tz::Tz>) {
    d.time(at);
    if let Some(tz) = zone.filter(|tz| *tz != chrono_tz::UTC) {
        let local = at.with_timezone(&tz);
        d.raw(" <span class=\"muted\">· ")
            .t(&local.format("%Y-%m-%d %H:%M %Z").to_string())
            .raw(" (")
            .t(tz.name())
            .raw(")</span>");
    }
}

fn person_zone(config: &Config, id: &str) -> Option<chrono_tz::Tz> {
    config
        .people
        .iter()
        .find(|p| p.id == id)
        .map(|p| p.timezone)
}

/// A turn's end in UTC, the schedule's zone and the person's own zone when it differs.
fn until(d: &mut Doc, config: &Config, s: &Schedule, t: &Turn) {
    let Some(end) = t.until else {
        d.w("further notice", "交代の予定なし");
        return;
    };
    d.time(end);
    let mut zones: Vec<chrono_tz::Tz> = Vec::new();
    for z in [s.timezone, person_zone(config, &t.person)]
        .into_iter()
        .flatten()
    {
        if z != chrono_tz::UTC && !zones.contains(&z) {
            zones.push(z);
        }
    }
    for tz in zones {
        d.raw(" <span class=\"muted\">· ")
            .t(&end
                .with_timezone(&tz)
                .format("%Y-%m-%d %H:%M %Z")
                .to_string())
            .raw(" (")
            .t(tz.name())
            .raw(")</span>");
    }
}

async fn stored(state: &AppState) -> Result<Vec<Override>, Response> {
    state.store.overrides(None, Utc::now()).await.map_err(|e| {
        tracing::error!(error = %e, "cannot read on-call overrides");
        super::html::message_page(
            Lang::En,
            StatusCode::SERVICE_UNAVAILABLE,
            "The database is not answering; try again shortly.",
        )
    })
}

/// `GET /admin/oncall`
pub async fn page(State(state): State<AppState>, user: User) -> Response {
    match stored(&state).await {
        Ok(list) => render(
            &state,
            &user,
            &list,
            None,
            &Typed::default(),
            StatusCode::OK,
        ),
        Err(r) => r,
    }
}

fn render(
    state: &AppState,
    user: &User,
    list: &[Override],
    flash: Option<(&str, String)>,
    typed: &Typed,
    status: StatusCode,
) -> Response {
    let lang = user.lang;
    let q = lang.query();
    let config = &state.config;
    let now = Utc::now();
    let can_act = user.role >= Role::Responder;
    let mut d = Doc::new(lang);
    d.open(
        w(lang, "On call", "オンコール"),
        Some((&user.name, user.role.as_str(), &user.csrf)),
        None,
    );
    if let Some((k, t)) = &flash {
        d.flash(k, t);
    }
    d.raw("<h1>").w("On call", "オンコール").raw("</h1>");
    if config.schedules.is_empty() {
        d.raw("<p class=\"muted\">")
            .w(
                "No schedules: declare [[schedule]] in the config.",
                "スケジュールがありません。設定に [[schedule]] を追加してください。",
            )
            .raw("</p>");
    }
    let overrides: Vec<Override> = list.to_vec();
    let names = Names::of(config);
    for s in &config.schedules {
        let own: Vec<Override> = overrides
            .iter()
            .filter(|o| o.schedule == s.id)
            .cloned()
            .collect();
        let view: View = match serde_json::from_value(schedule_view(&names, s, &own, now)) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "schedule view");
                continue;
            }
        };
        d.raw("<section class=\"card schedule\" id=\"schedule-")
            .t(&s.id)
            .raw("\"><h2>")
            .t(&s.name);
        // The id beside a name of its own (the name defaults to the id).
        if s.name != s.id {
            d.raw(" <code>").t(&s.id).raw("</code>");
        }
        d.raw("</h2>");
        match &view.on_call {
            Some(t) => {
                d.raw("<p class=\"oncall-now\">")
                    .w("On call now: ", "現在のオンコール: ")
                    .raw("<strong>")
                    .t(&t.name)
                    .raw("</strong>");
                if t.override_id.is_some() {
                    d.raw(" <span class=\"pill\">")
                        .w("override", "交代")
                        .raw("</span>");
                }
                d.raw("<br>").w("until ", "終了: ");
                until(&mut d, config, s, t);
                d.raw("</p>");
            }
            None => {
                d.raw("<p class=\"warn\">")
                    .w("Nobody is on call: ", "オンコール担当者がいません: ")
                    .t(view.reason.as_deref().unwrap_or(""))
                    .raw("</p>");
            }
        }
        if !view.next.is_empty() {
            d.raw("<h3>")
                .w("Next turns", "次の当番")
                .raw("</h3><ol class=\"turns\">");
            for t in &view.next {
                d.raw("<li><strong>").t(&t.name).raw("</strong> ");
                d.w("from ", "開始: ");
                d.time(t.since).raw(" ").w("until ", "終了: ");
                until(&mut d, config, s, t);
                d.raw("</li>");
            }
            d.raw("</ol>");
        }
        d.raw("</section>");
    }

    d.raw("<section class=\"card\"><h2>")
        .w("Overrides", "当番の交代")
        .raw("</h2>");
    if list.is_empty() {
        d.raw("<p class=\"muted\">")
            .w(
                "No current or future overrides.",
                "現在または今後の交代はありません。",
            )
            .raw("</p>");
    } else {
        d.raw("<table class=\"list overrides\"><thead><tr><th>")
            .w("Schedule", "スケジュール")
            .raw("</th><th>")
            .w("Person", "担当者")
            .raw("</th><th>")
            .w("From", "開始")
            .raw("</th><th>")
            .w("Until", "終了")
            .raw("</th><th>")
            .w("Added by", "追加者")
            .raw("</th><th></th></tr></thead><tbody>");
        for o in list {
            let zone = person_zone(config, &o.person);
            let name = config
                .people
                .iter()
                .find(|p| p.id == o.person)
                .map_or(o.person.as_str(), |p| p.name.as_str());
            d.raw("<tr id=\"override-")
                .t(&o.id.to_string())
                .raw("\"><td>")
                .t(&o.schedule)
                .raw("</td><td>")
                .t(name)
                .raw("</td><td>");
            time_in(&mut d, o.start, zone);
            d.raw("</td><td>");
            time_in(&mut d, o.end, zone);
            d.raw("</td><td>").t(&o.created_by).raw("</td><td>");
            if can_act {
                d.raw("<form method=\"post\" class=\"inline\" action=\"/admin/oncall/overrides/")
                    .t(&o.id.to_string())
                    .raw("/remove")
                    .raw(q)
                    .raw("\">")
                    .csrf(&user.csrf)
                    .raw("<button>")
                    .w("Remove", "削除")
                    .raw("</button></form>");
            }
            d.raw("</td></tr>");
        }
        d.raw("</tbody></table>");
    }
    if can_act && !config.schedules.is_empty() {
        d.raw("<h3>")
            .w("Add an override", "交代を追加")
            .raw("</h3><form method=\"post\" action=\"/admin/oncall/overrides")
            .raw(q)
            .raw("\" class=\"stack\" id=\"add-override\">")
            .csrf(&user.csrf)
            .raw("<label for=\"o-schedule\">")
            .w("Schedule", "スケジュール")
            .raw("</label><select id=\"o-schedule\" name=\"schedule\">");
        for s in &config.schedules {
            d.raw("<option value=\"").t(&s.id).raw("\"");
            if typed.schedule == s.id {
                d.raw(" selected");
            }
            d.raw(">").t(&s.name).raw("</option>");
        }
        d.raw("</select><label for=\"o-person\">")
            .w("Person", "担当者")
            .raw("</label><select id=\"o-person\" name=\"person\">");
        for p in &config.people {
            d.raw("<option value=\"").t(&p.id).raw("\"");
            if typed.person == p.id {
                d.raw(" selected");
            }
            d.raw(">").t(&p.name).raw("</option>");
        }
        d.raw("</select><label for=\"o-start\">")
            .w("From", "開始")
            .raw("</label><input id=\"o-start\" name=\"start\" type=\"datetime-local\" required value=\"")
            .t(&typed.start)
            .raw("\"><label for=\"o-end\">")
            .w("Until", "終了")
            .raw("</label><input id=\"o-end\" name=\"end\" type=\"datetime-local\" required value=\"")
            .t(&typed.end)
            .raw("\"><label for=\"o-zone\">")
            .w(
                "Time zone of these times (e.g. UTC, Asia/Tokyo)",
                "上記の時刻のタイムゾーン（例: UTC, Asia/Tokyo）",
            )
            .raw("</label><input id=\"o-zone\" name=\"zone\" value=\"")
            .t(if typed.zone.is_empty() {
                "UTC"
            } else {
                &typed.zone
            })
            .raw("\"><button class=\"primary\">")
            .w("Add override", "交代を追加")
            .raw("</button></form>");
    }
    d.raw("</section>");
    d.close();
    d.into_response(status)
}

/// The words for a refusal from the shared checks.
fn refusal(lang: Lang, e: &ApiError) -> (StatusCode, String) {
    match e {
        ApiError::BadRequest { field, reason } => {
            let field = field.as_deref().unwrap_or("");
            let label = match field {
                "schedule" => w(lang, "Schedule", "スケジュール"),
                "person" => w(lang, "Person", "担当者"),
                "end" => w(lang, "Until", "終了"),
                "start" => w(lang, "From", "開始"),
                _ => "",
            };
            let text = if label.is_empty() {
                reason.clone()
            } else {
                format!("{label}: {reason}")
            };
            (StatusCode::BAD_REQUEST, text)
        }
        ApiError::Conflict { reason, .. } => (
            StatusCode::CONFLICT,
            format!(
                "{} {reason}",
                w(lang, "Not added:", "追加できませんでした:")
            ),
        ),
        ApiError::NotFound => (
            StatusCode::NOT_FOUND,
            w(
                lang,
                "That override is gone already.",
                "その交代はすでに削除されています。",
            )
            .to_string(),
        ),
        other => {
            tracing::error!(error = %other, "on-call override");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                w(
                    lang,
                    "The database is not answering; try again shortly.",
                    "データベースが応答していません。しばらくしてからもう一度お試しください。",
                )
                .to_string(),
            )
        }
    }
}

async fn refused(
    state: &AppState,
    user: &User,
    status: StatusCode,
    text: String,
    typed: &Typed,
) -> Response {
    let list = state
        .store
        .overrides(None, Utc::now())
        .await
        .unwrap_or_default();
    render(state, user, &list, Some(("error", text)), typed, status)
}

/// `POST /admin/oncall/overrides`
pub async fn add(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let form = match responder_form(&user, &headers, &bytes) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let lang = user.lang;
    let field = |k: &str| form.get(k).unwrap_or("").trim().to_string();
    let typed = Typed {
        schedule: field("schedule"),
        person: field("person"),
        start: field("start"),
        end: field("end"),
        zone: field("zone"),
    };
    let zone_name = if typed.zone.is_empty() {
        "UTC"
    } else {
        typed.zone.as_str()
    };
    let Ok(zone) = zone_name.parse::<chrono_tz::Tz>() else {
        let text = format!(
            "{} {zone_name:?}",
            w(
                lang,
                "Time zone: not an IANA zone name (like UTC or Asia/Tokyo):",
                "タイムゾーン: IANA のタイムゾーン名（UTC, Asia/Tokyo など）ではありません:",
            )
        );
        return refused(&state, &user, StatusCode::BAD_REQUEST, text, &typed).await;
    };
    let (Some(start), Some(end)) = (zoned_time(&typed.start, zone), zoned_time(&typed.end, zone))
    else {
        let text = w(
            lang,
            "Give a start and an end time (a time skipped by a clock change does not exist).",
            "開始と終了の時刻を入力してください（時刻変更で存在しない時刻は使えません）。",
        )
        .to_string();
        return refused(&state, &user, StatusCode::BAD_REQUEST, text, &typed).await;
    };
    match add_override(
        &state,
        typed.schedule.clone(),
        typed.person.clone(),
        start,
        end,
        &user.name,
    )
    .await
    {
        Ok(_) => Redirect::to(&format!("/admin/oncall{}", lang.query())).into_response(),
        Err(e) => {
            let (status, text) = refusal(lang, &e);
            refused(&state, &user, status, text, &typed).await
        }
    }
}

/// `POST /admin/oncall/overrides/{id}/remove`
pub async fn remove(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    if let Err(r) = checked_form(&user, &headers, &bytes) {
        return r;
    }
    if let Err(r) = user.require(Role::Responder) {
        return r;
    }
    let Some(id) = id.parse::<i64>().ok().filter(|i| *i > 0) else {
        return super::html::message_page(
            user.lang,
            StatusCode::NOT_FOUND,
            w(user.lang, "No such override.", "その交代は見つかりません。"),
        );
    };
    match remove_override(&state, id, &user.name).await {
        Ok(_) => Redirect::to(&format!("/admin/oncall{}", user.lang.query())).into_response(),
        Err(e) => {
            let (status, text) = refusal(user.lang, &e);
            refused(&state, &user, status, text, &Typed::default()).await
        }
    }
}
