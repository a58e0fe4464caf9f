//! The console's pages and the actions their forms post.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use chrono::Utc;
use keel_core::assess::Severity;
use keel_core::config::LocalizedText;
use keel_core::human;
use keel_core::incident::{
    words, Actor, Command, DraftFate, Incident, IncidentId, IncidentRole, IncidentState,
};
use keel_core::public::{disclosure, MaintenanceStatus, PublicStatus};
use keel_core::{ComponentId, NodeId};
use keel_store::NewMaintenance;

use super::escalation;
use super::form::{incident_id, utc_time};
use super::html::{w, Doc, Lang};
use super::{responder_form, Console, User};
use crate::book::{BookError, Entry};
use crate::http::auth::Role;
use crate::http::AppState;
use crate::paging::roster::TeamRoster;

/// What a re-rendered incident page shows besides the incident: an outcome, and the text a
/// responder was editing (kept so a refused or checked edit is not lost).
#[derive(Default)]
struct View {
    flash: Option<(&'static str, String)>,
    edit: Option<Edit>,
}

struct Edit {
    draft: u32,
    status: PublicStatus,
    body: BTreeMap<String, String>,
    override_reason: String,
}

fn user_tuple(u: &User) -> (&str, &str, &str) {
    (&u.name, u.role.as_str(), &u.csrf)
}

fn sev(s: Option<Severity>) -> String {
    s.map_or_else(|| "—".to_string(), |s| s.to_string())
}

fn state_words(lang: Lang, s: IncidentState) -> &'static str {
    match s {
        IncidentState::Investigating => w(lang, "Investigating", "調査中"),
        IncidentState::Identified => w(lang, "Identified", "原因特定"),
        IncidentState::Monitoring => w(lang, "Monitoring", "経過観察中"),
        IncidentState::Resolved => w(lang, "Resolved", "解決済み"),
    }
}

fn status_words(lang: Lang, s: PublicStatus) -> &'static str {
    keel_core::public::i18n::incident_status(lang.code(), s)
}

fn node_name(state: &AppState, id: &NodeId, lang: Lang) -> String {
    state
        .incidents
        .graph()
        .node(id)
        .map_or_else(|| id.to_string(), |n| n.name.get(lang.code()).to_string())
}

/// Who is on call now: the config's schedules with the stored overrides (none when the
/// store cannot say, so the page still shows the incident).
async fn roster_now(state: &AppState) -> TeamRoster<'_> {
    let overrides = state
        .store
        .overrides(None, Utc::now())
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot read on-call overrides");
            Vec::new()
        });
    TeamRoster::new(&state.config, overrides)
}

// --- Overview -----------------------------------------------------------------------------

/// `GET /admin`: open incidents, the declare form, recently resolved ones.
pub async fn overview(State(state): State<AppState>, user: User) -> Response {
    let lang = user.lang;
    let q = lang.query();
    let mut all = state.incidents.list().await;
    all.reverse();
    let now = Utc::now();
    let roster = roster_now(&state).await;
    let mut d = Doc::new(lang);
    d.open(
        w(lang, "Incidents", "インシデント"),
        Some(user_tuple(&user)),
        Some("*"),
    );
    if let Some(b) = state.incidents.blind() {
        d.flash(
            "error",
            &format!(
                "{} {b}",
                w(lang, "Keel cannot see:", "監視が機能していません:")
            ),
        );
    }
    d.raw("<h1>")
        .w("Open incidents", "対応中のインシデント")
        .raw("</h1>");
    let open: Vec<&Incident> = all.iter().filter(|i| !i.is_resolved()).collect();
    if open.is_empty() {
        d.raw("<p class=\"calm\">")
            .w("No open incidents.", "対応中のインシデントはありません。")
            .raw("</p>");
    } else {
        d.raw("<table class=\"list\"><thead><tr><th>#</th><th>")
            .w("Incident", "インシデント")
            .raw("</th><th>")
            .w("Severity", "重大度")
            .raw("</th><th>")
            .w("Cause", "原因")
            .raw("</th><th>")
            .w("Users affected", "影響ユーザー数")
            .raw("</th><th>")
            .w("ETA", "復旧見込み")
            .raw("</th><th>")
            .w("State", "状態")
            .raw("</th><th>")
            .w("Acknowledged", "確認済み")
            .raw("</th><th>")
            .w("On call", "オンコール")
            .raw("</th><th>")
            .w("Escalation", "エスカレーション")
            .raw("</th></tr></thead><tbody>");
        for i in open {
            let id = i.id.to_string();
            d.raw("<tr><td>")
                .t(&id)
                .raw("</td><td><a href=\"/admin/incidents/")
                .t(&id)
                .raw(q)
                .raw("\">")
                .t(&i.title)
                .raw("</a></td><td><span class=\"sev sev-")
                .t(&sev(i.severity).to_lowercase())
                .raw("\">")
                .t(&sev(i.severity))
                .raw("</span></td><td>")
                .t(&i
                    .cause
                    .as_ref()
                    .map_or("—".into(), |c| node_name(&state, c, lang)))
                .raw("</td><td>")
                .t(&human::thousands(i.affected_users))
                .raw("</td><td>")
                .t(&i.eta.as_ref().map_or("—".into(), |e| {
                    keel_core::assess::describe_eta(e, lang.code())
                }))
                .raw("</td><td>")
                .t(state_words(lang, i.state))
                .raw("</td><td>");
            match &i.acknowledgement() {
                Some((by, _)) => d.t(by),
                None => d
                    .raw("<strong class=\"warn\">")
                    .w("not yet", "未確認")
                    .raw("</strong>"),
            };
            d.raw("</td><td>");
            match escalation::on_call(&state.config, i, &roster, now) {
                Some((_, levels)) => d.t(&escalation::people_line(&levels)),
                None => d.raw("—"),
            };
            d.raw("</td><td>");
            escalation::short(&mut d, i);
            d.raw("</td></tr>");
        }
        d.raw("</tbody></table>");
    }
    if user.role >= Role::Responder {
        d.raw("<section class=\"card\"><h2>")
            .w("Declare an incident", "インシデントを宣言")
            .raw("</h2><form method=\"post\" action=\"/admin/incidents")
            .raw(q)
            .raw("\" class=\"stack\">")
            .csrf(&user.csrf)
            .raw("<label for=\"title\">")
            .w("Title", "タイトル")
            .raw("</label><input id=\"title\" name=\"title\" required maxlength=\"200\"><fieldset><legend>")
            .w("Affected", "影響範囲")
            .raw("</legend>");
        for n in state.incidents.graph().nodes() {
            d.raw("<label class=\"check\"><input type=\"checkbox\" name=\"component\" value=\"")
                .t(n.id.as_str())
                .raw("\"> ")
                .t(n.name.get(lang.code()))
                .raw(" <code>")
                .t(n.id.as_str())
                .raw("</code></label>");
        }
        d.raw("</fieldset><button>")
            .w("Declare", "宣言する")
            .raw("</button></form></section>");
    }
    let resolved: Vec<&Incident> = all.iter().filter(|i| i.is_resolved()).take(10).collect();
    if !resolved.is_empty() {
        d.raw("<h2>")
            .w("Recently resolved", "最近解決したインシデント")
            .raw("</h2><ul class=\"plain\">");
        for e in resolved {
            let id = e.id.to_string();
            d.raw("<li><a href=\"/admin/incidents/")
                .t(&id)
                .raw(q)
                .raw("\">#")
                .t(&id)
                .raw(" ")
                .t(&e.title)
                .raw("</a> · ");
            if let Some(r) = e.resolved_at {
                d.time(r);
            }
            d.raw("</li>");
        }
        d.raw("</ul>");
    }
    d.close();
    d.into_response(StatusCode::OK)
}

/// `POST /admin/incidents`: declare an incident.
pub async fn declare(
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
    let title = form.get("title").unwrap_or("").trim().to_string();
    let ticked: Vec<&str> = form.all("component").collect();
    // `None` when a ticked box names no node of the graph (a stale form, or a forged one).
    let components: Option<BTreeSet<NodeId>> = ticked.iter().map(|c| state.node(c)).collect();
    let problem = if title.is_empty() || title.chars().count() > 200 {
        Some(w(
            lang,
            "Give the incident a title (at most 200 characters).",
            "タイトルを入力してください（200文字以内）。",
        ))
    } else if ticked.is_empty() {
        Some(w(
            lang,
            "Tick at least one affected component.",
            "影響を受けるコンポーネントを1つ以上選んでください。",
        ))
    } else if components.is_none() {
        Some(w(
            lang,
            "An affected component is not in the config.",
            "設定にないコンポーネントが含まれています。",
        ))
    } else {
        None
    };
    let components = match (problem, components) {
        (None, Some(components)) => components,
        (problem, _) => {
            return super::html::message_page(
                lang,
                StatusCode::BAD_REQUEST,
                problem.unwrap_or_default(),
            );
        }
    };
    match state
        .incidents
        .declare(
            title,
            components,
            Actor::User(user.name.clone()),
            Utc::now(),
        )
        .await
    {
        Ok(e) => Redirect::to(&format!(
            "/admin/incidents/{}{}",
            e.incident.id,
            lang.query()
        ))
        .into_response(),
        Err(e) => book_failure(lang, e),
    }
}

fn book_failure(lang: Lang, e: BookError) -> Response {
    match e {
        BookError::NotFound(_) => super::html::message_page(
            lang,
            StatusCode::NOT_FOUND,
            w(
                lang,
                "There is no such incident.",
                "そのインシデントはありません。",
            ),
        ),
        BookError::Refused { field, reason } => {
            super::html::message_page(lang, StatusCode::CONFLICT, &format!("{field}: {reason}"))
        }
        other => {
            tracing::error!(error = %other, "console action failed");
            super::html::message_page(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                w(
                    lang,
                    "Could not save that; try again shortly.",
                    "保存できませんでした。しばらくしてからもう一度お試しください。",
                ),
            )
        }
    }
}

// --- One incident ---------------------------------------------------------------------------

/// `GET /admin/incidents/{id}`
pub async fn incident(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    user: User,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = incident_id(&id) else {
        return book_failure(user.lang, BookError::NotFound(IncidentId(0)));
    };
    let entry = match state.incidents.get(id).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return book_failure(user.lang, BookError::NotFound(id)),
        Err(e) => return book_failure(user.lang, e),
    };
    render_incident(
        &state,
        &console,
        &user,
        &entry,
        View::default(),
        StatusCode::OK,
    )
    .await
}

fn verdict(d: &mut Doc, console: &Console, texts: &[(String, &str)]) {
    let mut found = Vec::new();
    for (label, text) in texts {
        for f in disclosure::findings(text, &console.rules) {
            found.push((label.clone(), f));
        }
    }
    if found.is_empty() {
        d.raw("<p class=\"verdict ok\">")
            .w(
                "Disclosure check: passes — nothing confidential in this text.",
                "開示チェック: 問題なし（機密情報は含まれていません）。",
            )
            .raw("</p>");
    } else {
        d.raw("<div class=\"verdict refused\" role=\"alert\"><p><strong>")
            .w(
                "Disclosure check: refused — this cannot be published as it is.",
                "開示チェック: 公開不可（このままでは公開できません）。",
            )
            .raw("</strong></p><ul>");
        for (label, f) in found {
            d.raw("<li>")
                .t(&label)
                .raw(": ")
                .t(&format!("{:?}", f.term))
                .raw(" — ")
                .t(&f.why)
                .raw("</li>");
        }
        d.raw("</ul></div>");
    }
}

async fn render_incident(
    state: &AppState,
    console: &Console,
    user: &User,
    entry: &Entry,
    view: View,
    status: StatusCode,
) -> Response {
    let roster = roster_now(state).await;
    let lang = user.lang;
    let q = lang.query();
    let i = &entry.incident;
    let id = i.id.to_string();
    let act = |verb: &str| format!("/admin/incidents/{id}/{verb}{q}");
    let can_act = user.role >= Role::Responder;
    let open = !i.is_resolved();
    let mut d = Doc::new(lang);
    d.open(
        &format!("#{id} {}", i.title),
        Some(user_tuple(user)),
        Some(&id),
    );
    if let Some((kind, text)) = &view.flash {
        d.flash(kind, text);
    }
    d.raw("<h1>#")
        .t(&id)
        .raw(" ")
        .t(&i.title)
        .raw("</h1><p class=\"pills\"><span class=\"sev sev-")
        .t(&sev(i.severity).to_lowercase())
        .raw("\">")
        .t(&sev(i.severity))
        .raw("</span> <span class=\"pill\">")
        .t(state_words(lang, i.state))
        .raw("</span> ");
    match &i.acknowledgement() {
        Some((by, _)) => d
            .raw("<span class=\"pill\">")
            .w("Acknowledged by ", "確認者: ")
            .t(by)
            .raw("</span>"),
        None => d
            .raw("<span class=\"pill warn\">")
            .w("Not acknowledged", "未確認")
            .raw("</span>"),
    };
    d.raw("</p><dl class=\"facts\"><div><dt>")
        .w("Cause", "原因")
        .raw("</dt><dd>")
        .t(&i
            .cause
            .as_ref()
            .map_or("—".into(), |c| node_name(state, c, lang)))
        .raw("</dd></div><div><dt>")
        .w("Impacted", "影響範囲")
        .raw("</dt><dd>")
        .t(&i
            .impacted
            .iter()
            .map(|c| node_name(state, c, lang))
            .collect::<Vec<_>>()
            .join(", "))
        .raw("</dd></div><div><dt>")
        .w("Users affected", "影響ユーザー数")
        .raw("</dt><dd>")
        .t(&human::thousands(i.affected_users))
        .raw("</dd></div><div><dt>")
        .w("ETA", "復旧見込み")
        .raw("</dt><dd>")
        .t(&i.eta.as_ref().map_or("—".into(), |e| {
            keel_core::assess::describe_eta(e, lang.code())
        }))
        .raw("</dd></div><div><dt>")
        .w("Started", "開始")
        .raw("</dt><dd>");
    d.time(i.started_at)
        .raw("</dd></div><div><dt>")
        .w("Roles", "役割")
        .raw("</dt><dd>");
    if i.roles.is_empty() {
        d.raw("—");
    }
    for (role, person) in &i.roles {
        d.t(role.as_str()).raw(": ").t(person).raw(" ");
    }
    d.raw("</dd></div></dl><p><a href=\"/admin/incidents/")
        .t(&id)
        .raw("/postmortem")
        .raw(q)
        .raw("\">")
        .w("Postmortem", "障害報告書")
        .raw("</a></p>");

    // The responders' word on the backups (Keel's latest prompt about each).
    if open && !i.backup_prompts.is_empty() {
        d.raw("<section class=\"card backups\"><h2>")
            .w("Backups", "代替手段")
            .raw("</h2><ul class=\"plain\">");
        // Oldest first, and one backup may have several: show the latest about each.
        let mut latest: Vec<&String> = Vec::new();
        for p in i.backup_prompts.iter().rev() {
            let key = p.split("' ").next();
            if !latest.iter().any(|q| q.split("' ").next() == key) {
                latest.push(p);
            }
        }
        for p in latest.into_iter().rev() {
            d.raw("<li>").t(p).raw("</li>");
        }
        d.raw("</ul></section>");
    }
    escalation::section(&mut d, &state.config, i, &entry.events, &roster, Utc::now());

    // Actions.
    if can_act && open {
        d.raw("<section class=\"card\"><h2>")
            .w("Respond", "対応")
            .raw("</h2><div class=\"actions\">");
        // After a relapse the new cycle needs its own acknowledgement.
        if i.acknowledgement().is_none() {
            d.raw("<form method=\"post\" action=\"")
                .t(&act("acknowledge"))
                .raw("\">")
                .csrf(&user.csrf)
                .raw("<button class=\"primary\">")
                .w("Acknowledge", "確認する")
                .raw("</button></form>");
        }
        d.raw("<form method=\"post\" action=\"")
            .t(&act("state"))
            .raw("\" class=\"inline\">")
            .csrf(&user.csrf)
            .raw("<label>")
            .w("State", "状態")
            .raw(" <select name=\"to\">");
        for s in [
            IncidentState::Investigating,
            IncidentState::Identified,
            IncidentState::Monitoring,
            IncidentState::Resolved,
        ] {
            if s != i.state {
                d.raw("<option value=\"")
                    .raw(s.as_str())
                    .raw("\">")
                    .t(state_words(lang, s))
                    .raw("</option>");
            }
        }
        d.raw("</select></label> <input name=\"reason\" placeholder=\"")
            .w("reason", "理由")
            .raw("\" aria-label=\"")
            .w("Reason", "理由")
            .raw("\"> <button>")
            .w("Change", "変更")
            .raw("</button></form>");
        d.raw("<form method=\"post\" action=\"")
            .t(&act("severity"))
            .raw("\" class=\"inline\">")
            .csrf(&user.csrf)
            .raw("<label>")
            .w("Severity", "重大度")
            .raw(" <select name=\"severity\">");
        for s in ["SEV1", "SEV2", "SEV3", "SEV4"] {
            d.raw("<option");
            if sev(i.severity) == s {
                d.raw(" selected");
            }
            d.raw(">").raw(s).raw("</option>");
        }
        d.raw("</select></label> <input name=\"reason\" required placeholder=\"")
            .w("why", "理由")
            .raw("\" aria-label=\"")
            .w("Reason", "理由")
            .raw("\"> <button>")
            .w("Set", "設定")
            .raw("</button></form>");
        d.raw("<form method=\"post\" action=\"").t(&act("role")).raw("\" class=\"inline\">").csrf(&user.csrf)
            .raw("<label>").w("Role", "役割").raw(" <select name=\"role\"><option value=\"commander\">commander</option><option value=\"communications\">communications</option></select></label> <input name=\"person\" required value=\"")
            .t(&user.name)
            .raw("\" aria-label=\"").w("Person", "担当者").raw("\"> <button>").w("Assign", "割り当て").raw("</button></form>");
        d.raw("<form method=\"post\" action=\"").t(&act("note")).raw("\" class=\"stack\">").csrf(&user.csrf)
            .raw("<label for=\"note\">").w("Note (internal)", "メモ（社内向け）").raw("</label><textarea id=\"note\" name=\"text\" rows=\"2\" required></textarea><button>")
            .w("Add note", "メモを追加").raw("</button></form>");
        d.raw("</div></section>");
    }

    // Customer updates.
    d.raw("<section class=\"card\"><h2>")
        .w("Customer updates", "お客様向けの更新")
        .raw("</h2>");
    let locales = state.config.page.locales.clone();
    let live: Vec<_> = i
        .drafts
        .iter()
        .filter(|dr| matches!(dr.fate, DraftFate::Pending | DraftFate::Held))
        .collect();
    if live.is_empty() {
        d.raw("<p class=\"muted\">")
            .w("No draft waiting.", "待機中の下書きはありません。")
            .raw("</p>");
    }
    for dr in live {
        let n = dr.id.to_string();
        d.raw("<article class=\"draft\"><h3>")
            .w("Draft ", "下書き ")
            .t(&n)
            .raw(" · ")
            .t(status_words(lang, dr.status))
            .raw(" · ");
        if dr.fate == DraftFate::Held {
            d.w("held: published only by hand", "保留中: 手動でのみ公開");
        } else {
            d.w("publishes automatically at ", "自動公開: ");
            d.time(dr.due_at);
        }
        d.raw("</h3>");
        let editing = view.edit.as_ref().filter(|e| e.draft == dr.id);
        let mut texts = Vec::new();
        for l in &locales {
            texts.push((format!("title [{l}]"), dr.title.get(l).to_string()));
            let body = editing
                .and_then(|e| e.body.get(l))
                .cloned()
                .unwrap_or_else(|| dr.body.get(l).to_string());
            texts.push((format!("body [{l}]"), body));
        }
        let refs: Vec<(String, &str)> =
            texts.iter().map(|(a, b)| (a.clone(), b.as_str())).collect();
        verdict(&mut d, console, &refs);
        if can_act {
            d.raw("<div class=\"actions\"><form method=\"post\" action=\"")
                .t(&act(&format!("drafts/{n}/publish")))
                .raw("\">")
                .csrf(&user.csrf)
                .raw("<button class=\"primary\">")
                .w("Publish draft as is", "下書きをそのまま公開")
                .raw("</button></form>");
            if dr.fate == DraftFate::Pending {
                d.raw("<form method=\"post\" action=\"")
                    .t(&act(&format!("drafts/{n}/hold")))
                    .raw("\">")
                    .csrf(&user.csrf)
                    .raw("<button>")
                    .w("Hold", "保留")
                    .raw("</button></form>");
            }
            d.raw("</div>");
            d.raw("<form method=\"post\" action=\"")
                .t(&act("update"))
                .raw("\" class=\"stack edit\">")
                .csrf(&user.csrf)
                .raw("<input type=\"hidden\" name=\"draft\" value=\"")
                .t(&n)
                .raw("\"><input type=\"hidden\" name=\"status\" value=\"")
                .raw(match dr.status {
                    PublicStatus::Investigating => "investigating",
                    PublicStatus::Identified => "identified",
                    PublicStatus::Monitoring => "monitoring",
                    PublicStatus::Resolved => "resolved",
                })
                .raw("\">");
            for l in &locales {
                let body = editing
                    .and_then(|e| e.body.get(l))
                    .cloned()
                    .unwrap_or_else(|| dr.body.get(l).to_string());
                d.raw("<label for=\"body-")
                    .t(&n)
                    .raw("-")
                    .t(l)
                    .raw("\">")
                    .w("Text", "本文")
                    .raw(" [")
                    .t(l)
                    .raw("]</label><textarea id=\"body-")
                    .t(&n)
                    .raw("-")
                    .t(l)
                    .raw("\" name=\"body_")
                    .t(l)
                    .raw("\" rows=\"4\" lang=\"")
                    .t(l)
                    .raw("\">")
                    .t(&body)
                    .raw("</textarea>");
            }
            if user.role >= Role::Admin {
                d.raw("<label for=\"override-")
                    .t(&n)
                    .raw("\">")
                    .w(
                        "Override reason (admin; only if the check refuses and you must publish)",
                        "上書きの理由（管理者のみ。チェックで公開不可の場合）",
                    )
                    .raw("</label><input id=\"override-")
                    .t(&n)
                    .raw("\" name=\"override_reason\" value=\"")
                    .t(editing.map_or("", |e| e.override_reason.as_str()))
                    .raw("\">");
            }
            d.raw("<div class=\"actions\"><button name=\"do\" value=\"check\">")
                .w("Check wording", "表現をチェック")
                .raw("</button><button name=\"do\" value=\"publish\" class=\"primary\">")
                .w("Publish edited text now", "編集した本文を今すぐ公開")
                .raw("</button></div></form>");
        }
        d.raw("</article>");
    }
    if !i.updates.is_empty() {
        d.raw("<h3>")
            .w("Published", "公開済み")
            .raw("</h3><ol class=\"updates\">");
        for u in i.updates.iter().rev() {
            d.raw("<li>");
            d.time(u.published_at)
                .raw(" · ")
                .t(status_words(lang, u.status))
                .raw(" · ")
                .t(&u.published_by);
            if let Some(r) = &u.disclosure_override {
                d.raw(" · <strong>")
                    .w("disclosure check overridden: ", "開示チェックを上書き: ")
                    .t(r)
                    .raw("</strong>");
            }
            d.raw("<p>").t(u.body.get(lang.code())).raw("</p></li>");
        }
        d.raw("</ol>");
    }
    d.raw("</section>");

    // Runbook.
    d.raw("<section class=\"card\"><h2>")
        .w("Runbook", "ランブック")
        .raw("</h2>");
    if i.checklist.is_empty() {
        d.raw("<p class=\"muted\">")
            .w("No runbook applies.", "該当するランブックはありません。")
            .raw("</p>");
    } else {
        d.raw("<ol class=\"checklist\">");
        for (k, step) in i.checklist.iter().enumerate() {
            let n = (k + 1).to_string();
            d.raw("<li>");
            match (&step.done_at, &step.done_by) {
                (Some(at), by) => {
                    d.raw("<s>")
                        .t(&step.text)
                        .raw("</s> <span class=\"muted\">✓ ")
                        .t(by.as_deref().unwrap_or(""))
                        .raw(" ");
                    d.time(*at).raw("</span>");
                }
                (None, _) => {
                    d.t(&step.text);
                    if can_act && open {
                        d.raw(" <form method=\"post\" class=\"inline\" action=\"")
                            .t(&act(&format!("steps/{n}/tick")))
                            .raw("\">")
                            .csrf(&user.csrf)
                            .raw("<button>")
                            .w("Done", "完了")
                            .raw("</button></form>");
                    }
                }
            }
            d.raw("</li>");
        }
        d.raw("</ol>");
    }
    d.raw("</section>");

    // Action items.
    d.raw("<section class=\"card\"><h2>")
        .w("Action items", "再発防止策")
        .raw("</h2><ul class=\"plain\">");
    for a in &i.action_items {
        let n = a.id.to_string();
        d.raw("<li>");
        if a.closed_at.is_some() {
            d.raw("<s>").t(&a.text).raw("</s>");
        } else {
            d.t(&a.text);
        }
        if let Some(o) = &a.owner {
            d.raw(" · ").t(o);
        }
        if a.closed_at.is_none() && can_act {
            d.raw(" <form method=\"post\" class=\"inline\" action=\"")
                .t(&act(&format!("action-items/{n}/close")))
                .raw("\">")
                .csrf(&user.csrf)
                .raw("<button>")
                .w("Close", "完了にする")
                .raw("</button></form>");
        }
        d.raw("</li>");
    }
    d.raw("</ul>");
    if can_act {
        d.raw("<form method=\"post\" action=\"")
            .t(&act("action-item"))
            .raw("\" class=\"inline\">")
            .csrf(&user.csrf)
            .raw("<input name=\"text\" required placeholder=\"")
            .w("what would prevent this", "再発防止のために行うこと")
            .raw("\" aria-label=\"")
            .w("Action item", "再発防止策")
            .raw("\"> <input name=\"owner\" placeholder=\"")
            .w("owner", "担当者")
            .raw("\" aria-label=\"")
            .w("Owner", "担当者")
            .raw("\"> <button>")
            .w("Add", "追加")
            .raw("</button></form>");
    }
    d.raw("</section>");

    // Timeline.
    d.raw("<section><h2>")
        .w("Timeline", "タイムライン")
        .raw("</h2><table class=\"timeline\"><thead><tr><th>")
        .w("Time (UTC)", "時刻 (UTC)")
        .raw("</th><th>")
        .w("Who", "誰が")
        .raw("</th><th>")
        .w("What", "内容")
        .raw("</th></tr></thead><tbody>");
    for e in entry.events.iter().rev() {
        d.raw("<tr><td>");
        d.time(e.at)
            .raw("</td><td>")
            .t(&e.actor.to_string())
            .raw("</td><td>")
            .t(&words::describe(&e.kind, i))
            .raw("</td></tr>");
    }
    d.raw("</tbody></table></section>");
    d.close();
    d.into_response(status)
}

/// `POST /admin/incidents/{id}/{verb}` and `…/{what}/{n}/{verb}`.
pub async fn act(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    user: User,
    Path(path): Path<BTreeMap<String, String>>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let form = match responder_form(&user, &headers, &bytes) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let lang = user.lang;
    let Some(id) = path.get("id").and_then(|i| incident_id(i)) else {
        return book_failure(lang, BookError::NotFound(IncidentId(0)));
    };
    let rest: Vec<&str> = path.get("rest").map_or(vec![], |r| r.split('/').collect());
    let bad = |msg: &str| super::html::message_page(lang, StatusCode::BAD_REQUEST, msg);
    let text = |k: &str| form.get(k).unwrap_or("").trim().to_string();
    let mut edit = None;
    let cmd = match rest.as_slice() {
        ["acknowledge"] => Command::Acknowledge {
            via: Some("console".into()),
        },
        ["note"] => Command::Note { text: text("text") },
        ["role"] => match text("role").parse::<IncidentRole>() {
            Ok(role) => Command::AssignRole {
                role,
                person: text("person"),
            },
            Err(e) => return bad(&e.to_string()),
        },
        ["state"] => match text("to").parse::<IncidentState>() {
            Ok(IncidentState::Resolved) => Command::Resolve {
                reason: Some(text("reason"))
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "resolved by a responder".into()),
            },
            Ok(to) => Command::ChangeState {
                to,
                reason: text("reason"),
            },
            Err(e) => return bad(&e.to_string()),
        },
        ["severity"] => match text("severity").parse::<Severity>() {
            Ok(severity) => Command::SetSeverity {
                severity,
                reason: text("reason"),
            },
            Err(e) => return bad(&e.to_string()),
        },
        ["action-item"] => Command::AddActionItem {
            text: text("text"),
            owner: Some(text("owner")).filter(|o| !o.is_empty()),
        },
        ["steps", n, "tick"] => match n.parse() {
            Ok(step) => Command::TickStep { step },
            Err(_) => return bad("step"),
        },
        ["action-items", n, "close"] => match n.parse() {
            Ok(item) => Command::CloseActionItem { item },
            Err(_) => return bad("item"),
        },
        ["drafts", n, "publish"] => match n.parse() {
            Ok(draft) => Command::PublishDraft { draft },
            Err(_) => return bad("draft"),
        },
        ["drafts", n, "hold"] => match n.parse() {
            Ok(draft) => Command::HoldDraft { draft },
            Err(_) => return bad("draft"),
        },
        ["update"] => {
            let status = match text("status").as_str() {
                "investigating" => PublicStatus::Investigating,
                "identified" => PublicStatus::Identified,
                "monitoring" => PublicStatus::Monitoring,
                "resolved" => PublicStatus::Resolved,
                _ => return bad("status: investigating, identified, monitoring or resolved"),
            };
            let mut body = BTreeMap::new();
            for l in &state.config.page.locales {
                let t = text(&format!("body_{l}"));
                if !t.is_empty() {
                    body.insert(l.clone(), t);
                }
            }
            if body.is_empty() {
                return bad(w(lang, "The text is empty.", "本文が空です。"));
            }
            let e = Edit {
                draft: text("draft").parse().unwrap_or(0),
                status,
                body: body.clone(),
                override_reason: text("override_reason"),
            };
            let override_reason = Some(e.override_reason.clone()).filter(|r| !r.is_empty());
            if form.get("do") == Some("check") {
                // Only the verdict: shown beside the edited text, nothing published.
                let entry = match state.incidents.get(id).await {
                    Ok(Some(en)) => en,
                    Ok(None) => return book_failure(lang, BookError::NotFound(id)),
                    Err(e) => return book_failure(lang, e),
                };
                let view = View {
                    flash: None,
                    edit: Some(e),
                };
                return render_incident(&state, &console, &user, &entry, view, StatusCode::OK)
                    .await;
            }
            let cmd = Command::PublishUpdate {
                status: e.status,
                body: LocalizedText { by_locale: body },
                title: None,
                override_reason,
            };
            edit = Some(e);
            cmd
        }
        _ => return book_failure(lang, BookError::NotFound(id)),
    };
    let result = state
        .incidents
        .command(
            id,
            cmd,
            Actor::User(user.name.clone()),
            user.role >= Role::Admin,
            Utc::now(),
        )
        .await;
    match result {
        Ok(_) => Redirect::to(&format!("/admin/incidents/{id}{}", lang.query())).into_response(),
        Err(BookError::Refused { field, reason }) => {
            let entry = match state.incidents.get(id).await {
                Ok(Some(entry)) => entry,
                Ok(None) => return book_failure(lang, BookError::NotFound(id)),
                Err(e) => return book_failure(lang, e),
            };
            let msg = format!(
                "{} {field}: {reason}",
                w(lang, "Not done:", "実行できませんでした:")
            );
            let view = View {
                flash: Some(("error", msg)),
                edit,
            };
            render_incident(&state, &console, &user, &entry, view, StatusCode::CONFLICT).await
        }
        Err(e) => book_failure(lang, e),
    }
}

/// `GET /admin/incidents/{id}/postmortem`: the generated postmortem as HTML.
pub async fn postmortem(
    State(state): State<AppState>,
    user: User,
    Path(id): Path<String>,
) -> Response {
    let lang = user.lang;
    let Some(id) = incident_id(&id) else {
        return book_failure(lang, BookError::NotFound(IncidentId(0)));
    };
    let entry = match state.incidents.get(id).await {
        Ok(Some(entry)) => entry,
        Ok(None) => return book_failure(lang, BookError::NotFound(id)),
        Err(e) => return book_failure(lang, e),
    };
    let history: Vec<_> = state
        .incidents
        .list()
        .await
        .into_iter()
        .filter(|i| i.id != id && i.cause.is_some() && i.cause == entry.incident.cause)
        .collect();
    let pm = keel_core::incident::postmortem(&entry.incident, &entry.events, &history, Utc::now());
    let mut d = Doc::new(lang);
    d.open(
        w(lang, "Postmortem", "障害報告書"),
        Some(user_tuple(&user)),
        None,
    );
    d.raw("<p><a href=\"/admin/incidents/")
        .t(&id.to_string())
        .raw(lang.query())
        .raw("\">← #")
        .t(&id.to_string())
        .raw("</a> · <a href=\"/api/v1/incidents/")
        .t(&id.to_string())
        .raw("/postmortem?format=md\">Markdown (API)</a></p><article class=\"postmortem\">");
    markdown(&mut d, &pm.markdown);
    d.raw("</article>").close();
    d.into_response(StatusCode::OK)
}

/// The postmortem's Markdown as HTML: the subset it uses (headings, lists, pipe tables,
/// paragraphs), every piece of text escaped.
fn markdown(d: &mut Doc, md: &str) {
    let mut in_list = false;
    let mut in_table = false;
    for line in md.lines() {
        let is_item = line.starts_with("- ");
        let is_row = line.starts_with('|');
        if in_list && !is_item {
            d.raw("</ul>");
            in_list = false;
        }
        if in_table && !is_row {
            d.raw("</table>");
            in_table = false;
        }
        if let Some(h) = line.strip_prefix("### ") {
            d.raw("<h3>").t(h).raw("</h3>");
        } else if let Some(h) = line.strip_prefix("## ") {
            d.raw("<h2>").t(h).raw("</h2>");
        } else if let Some(h) = line.strip_prefix("# ") {
            d.raw("<h1>").t(h).raw("</h1>");
        } else if let Some(item) = line.strip_prefix("- ") {
            if !in_list {
                d.raw("<ul>");
                in_list = true;
            }
            d.raw("<li>").t(item).raw("</li>");
        } else if is_row {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split(" | ")
                .map(str::trim)
                .collect();
            if cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == '|'))
            {
                continue;
            }
            if !in_table {
                d.raw("<table class=\"timeline\">");
                in_table = true;
            }
            d.raw("<tr>");
            for c in cells {
                d.raw("<td>").t(c).raw("</td>");
            }
            d.raw("</tr>");
        } else if !line.trim().is_empty() {
            d.raw("<p>").t(line).raw("</p>");
        }
    }
    if in_list {
        d.raw("</ul>");
    }
    if in_table {
        d.raw("</table>");
    }
}

// --- Monitors and maintenance -------------------------------------------------------------

/// `GET /admin/monitors`: every monitor, vendor and intake source with its state and reason
/// (what `GET /api/v1/monitors` says).
pub async fn monitors(State(state): State<AppState>, user: User) -> Response {
    let lang = user.lang;
    let mut d = Doc::new(lang);
    d.open(w(lang, "Monitors", "監視"), Some(user_tuple(&user)), None);
    d.raw("<h1>")
        .w("Monitors and vendors", "監視と外部サービス")
        .raw("</h1>");
    if let Some(b) = state.incidents.blind() {
        d.flash("error", &b);
    }
    d.raw("<table class=\"list\"><thead><tr><th>")
        .w("Source", "監視対象")
        .raw("</th><th>")
        .w("Kind", "種類")
        .raw("</th><th>")
        .w("Component", "コンポーネント")
        .raw("</th><th>")
        .w("State", "状態")
        .raw("</th><th>")
        .w("Since", "開始")
        .raw("</th><th>")
        .w("Reason", "理由")
        .raw("</th></tr></thead><tbody>");
    for s in state.hub.snapshot() {
        let st = serde_json::to_value(s.state)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        d.raw("<tr><td>")
            .t(&s.key.id())
            .raw("</td><td>")
            .t(&s.check)
            .raw("</td><td>")
            .t(&node_name(&state, &s.component, lang))
            .raw("</td><td><span class=\"state state-")
            .t(&st)
            .raw("\">")
            .t(&st)
            .raw("</span>");
        if s.confirming {
            d.raw(" ").w("(confirming)", "（確認中）");
        }
        d.raw("</td><td>");
        d.time(s.since)
            .raw("</td><td>")
            .t(&s.reason)
            .raw("</td></tr>");
    }
    d.raw("</tbody></table>").close();
    d.into_response(StatusCode::OK)
}

fn maintenance_page(
    state: &AppState,
    user: &User,
    list: &[keel_core::public::Maintenance],
    flash: Option<(&str, String)>,
    status: StatusCode,
) -> Response {
    let lang = user.lang;
    let mut d = Doc::new(lang);
    d.open(
        w(lang, "Maintenance", "メンテナンス"),
        Some(user_tuple(user)),
        None,
    );
    if let Some((k, t)) = &flash {
        d.flash(k, t);
    }
    d.raw("<h1>")
        .w("Scheduled maintenance", "メンテナンス予定")
        .raw("</h1><ul class=\"plain\">");
    if list.is_empty() {
        d.raw("<li class=\"muted\">")
            .w("None scheduled.", "予定はありません。")
            .raw("</li>");
    }
    for m in list {
        d.raw("<li><strong>")
            .t(m.name.get(lang.code()))
            .raw("</strong> · ")
            .t(keel_core::public::i18n::maintenance_status(
                lang.code(),
                m.status,
            ))
            .raw(" · ");
        d.time(m.scheduled_for).raw(" – ");
        d.time(m.scheduled_until).raw("</li>");
    }
    d.raw("</ul>");
    if user.role >= Role::Responder {
        d.raw("<section class=\"card\"><h2>")
            .w("Schedule maintenance", "メンテナンスを予定する")
            .raw("</h2><form method=\"post\" action=\"/admin/maintenance")
            .raw(lang.query())
            .raw("\" class=\"stack\">")
            .csrf(&user.csrf);
        for l in &state.config.page.locales {
            d.raw("<label for=\"name-")
                .t(l)
                .raw("\">")
                .w("Public title", "公開タイトル")
                .raw(" [")
                .t(l)
                .raw("]</label><input id=\"name-")
                .t(l)
                .raw("\" name=\"name_")
                .t(l)
                .raw("\" lang=\"")
                .t(l)
                .raw("\"><label for=\"mbody-")
                .t(l)
                .raw("\">")
                .w("Public text", "公開本文")
                .raw(" [")
                .t(l)
                .raw("]</label><textarea id=\"mbody-")
                .t(l)
                .raw("\" name=\"body_")
                .t(l)
                .raw("\" rows=\"2\" lang=\"")
                .t(l)
                .raw("\"></textarea>");
        }
        d.raw("<label for=\"from\">").w("From (UTC)", "開始 (UTC)").raw("</label><input id=\"from\" name=\"from\" type=\"datetime-local\" required>")
            .raw("<label for=\"until\">").w("Until (UTC)", "終了 (UTC)").raw("</label><input id=\"until\" name=\"until\" type=\"datetime-local\" required><fieldset><legend>")
            .w("Components", "コンポーネント").raw("</legend>");
        for c in state.config.components.iter().filter(|c| c.public) {
            d.raw("<label class=\"check\"><input type=\"checkbox\" name=\"component\" value=\"")
                .t(c.id.as_str())
                .raw("\"> ")
                .t(c.name.get(lang.code()))
                .raw("</label>");
        }
        d.raw("</fieldset><button>")
            .w("Schedule", "予定する")
            .raw("</button></form></section>");
    }
    d.close();
    d.into_response(status)
}

/// `GET /admin/maintenance`
pub async fn maintenance(State(state): State<AppState>, user: User) -> Response {
    match state.store.maintenances().await {
        Ok(list) => maintenance_page(&state, &user, &list, None, StatusCode::OK),
        Err(e) => book_failure(user.lang, BookError::Store(e)),
    }
}

/// `POST /admin/maintenance`: the same checks and store path as `POST /api/v1/maintenances`
/// (public components only, the disclosure check on every text).
pub async fn schedule_maintenance(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    user: User,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let form = match responder_form(&user, &headers, &bytes) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let lang = user.lang;
    let mut name = BTreeMap::new();
    let mut body = BTreeMap::new();
    for l in &state.config.page.locales {
        if let Some(t) = form
            .get(&format!("name_{l}"))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            name.insert(l.clone(), t.to_string());
        }
        if let Some(t) = form
            .get(&format!("body_{l}"))
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            body.insert(l.clone(), t.to_string());
        }
    }
    // `None` when a ticked box names no public component (a stale form, or a forged one).
    let components: Option<Vec<ComponentId>> = form
        .all("component")
        .map(|c| state.config.public_component_id(c).cloned())
        .collect();
    let from = form.get("from").and_then(utc_time);
    let until = form.get("until").and_then(utc_time);
    let mut problem: Option<String> = None;
    if name.is_empty() {
        problem = Some(
            w(
                lang,
                "Give the maintenance a public title.",
                "公開タイトルを入力してください。",
            )
            .into(),
        );
    } else if components.as_ref().is_none_or(Vec::is_empty) {
        problem = Some(
            w(
                lang,
                "Tick at least one public component.",
                "公開コンポーネントを1つ以上選んでください。",
            )
            .into(),
        );
    }
    let (Some(from), Some(until)) = (from, until) else {
        problem.get_or_insert(
            w(
                lang,
                "Give a start and an end time.",
                "開始と終了の時刻を入力してください。",
            )
            .into(),
        );
        return maintenance_failure(&state, &user, problem.unwrap_or_default()).await;
    };
    if until <= from {
        problem.get_or_insert(
            w(
                lang,
                "The end must be after the start.",
                "終了は開始より後にしてください。",
            )
            .into(),
        );
    }
    let name = LocalizedText { by_locale: name };
    let body = if body.is_empty() {
        name.clone()
    } else {
        LocalizedText { by_locale: body }
    };
    if problem.is_none() {
        'check: for t in [&name, &body] {
            for s in t.by_locale.values() {
                if let Err(f) = keel_core::public::check(s, &console.rules) {
                    problem = Some(format!(
                        "{} {:?}: {}",
                        w(
                            lang,
                            "Disclosure check: refused —",
                            "開示チェック: 公開不可 —"
                        ),
                        f.term,
                        f.why
                    ));
                    break 'check;
                }
            }
        }
    }
    let components = match (problem, components) {
        (None, Some(components)) => components,
        (problem, _) => {
            return maintenance_failure(&state, &user, problem.unwrap_or_default()).await;
        }
    };
    let made = state
        .store
        .create_maintenance(
            &NewMaintenance {
                name,
                body,
                status: MaintenanceStatus::Scheduled,
                scheduled_for: from,
                scheduled_until: until,
                components,
            },
            Utc::now(),
        )
        .await;
    match made {
        Ok(_) => {
            state.snapshots.refresh_inputs();
            Redirect::to(&format!("/admin/maintenance{}", lang.query())).into_response()
        }
        Err(keel_store::StoreError::Invalid(r)) => maintenance_failure(&state, &user, r).await,
        Err(e) => book_failure(lang, BookError::Store(e)),
    }
}

async fn maintenance_failure(state: &AppState, user: &User, problem: String) -> Response {
    let list = state.store.maintenances().await.unwrap_or_default();
    maintenance_page(
        state,
        user,
        &list,
        Some(("error", problem)),
        StatusCode::BAD_REQUEST,
    )
}
