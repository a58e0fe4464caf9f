//! What the console shows about paging for an incident: who its escalation policy would page
//! now (each level's targets resolved through the schedules and overrides), and where the
//! current cycle stands, read from the timeline (`paged`, `page_skipped`, `acknowledged`).

use chrono::{DateTime, Utc};
use keel_core::config::{Config, EscalationPolicy, PageTarget};
use keel_core::escalation::{next_due, policy_for, Roster};
use keel_core::human;
use keel_core::incident::{EventKind, Incident, IncidentEvent};

use super::html::Doc;
use crate::paging::roster::TeamRoster;

/// A target and the person it names now (`None`: nobody on call, or an unknown person).
pub struct Resolved {
    pub target: PageTarget,
    pub person: Option<String>,
}

/// For each level of the incident's policy, its targets resolved at `now`.
pub fn on_call<'a>(
    config: &'a Config,
    incident: &Incident,
    roster: &TeamRoster<'_>,
    now: DateTime<Utc>,
) -> Option<(&'a EscalationPolicy, Vec<Vec<Resolved>>)> {
    let policy = policy_for(&config.escalations, incident)?;
    let levels = policy
        .levels
        .iter()
        .map(|l| {
            l.notify
                .iter()
                .map(|t| {
                    let id = match t {
                        PageTarget::Person(p) => Some(p.clone()),
                        PageTarget::Schedule(s) => roster.on_call(s, now),
                    };
                    let person =
                        id.map(|id| roster.person(&id).map_or(id.clone(), |p| p.name.clone()));
                    Resolved {
                        target: t.clone(),
                        person,
                    }
                })
                .collect()
        })
        .collect();
    Some((policy, levels))
}

/// The distinct people paged first and then (for the incident list): "Ann → Carol".
pub fn people_line(levels: &[Vec<Resolved>]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for r in levels.iter().flatten() {
        if let Some(p) = &r.person {
            if !names.contains(&p.as_str()) {
                names.push(p);
            }
        }
    }
    if names.is_empty() {
        "—".to_string()
    } else {
        names.join(" → ")
    }
}

/// The cycle's standing in a few words (for the incident list).
pub fn short(d: &mut Doc, incident: &Incident) {
    let Some(e) = &incident.escalation else {
        d.w("not paging", "呼び出しなし");
        return;
    };
    if let Some((by, _)) = &e.acknowledged {
        d.w("acknowledged by ", "確認者: ").t(by);
    } else if e.exhausted {
        d.raw("<strong class=\"warn\">")
            .w("exhausted", "全レベル終了")
            .raw("</strong>");
    } else {
        let top = e.fired.iter().map(|(_, l)| *l).max().unwrap_or(0);
        d.raw("<strong class=\"warn\">")
            .w("paging: level ", "呼び出し中: レベル ")
            .t(&top.to_string())
            .raw("</strong>");
    }
}

/// The incident page's "Escalation" card.
pub fn section(
    d: &mut Doc,
    config: &Config,
    incident: &Incident,
    events: &[IncidentEvent],
    roster: &TeamRoster<'_>,
    now: DateTime<Utc>,
) {
    d.raw("<section class=\"card escalation\" id=\"escalation\"><h2>")
        .w("Escalation", "エスカレーション")
        .raw("</h2>");
    let Some((policy, levels)) = on_call(config, incident, roster, now) else {
        d.raw("<p class=\"muted\">")
            .w(
                "No escalation policy applies: nobody is paged for this incident.",
                "該当するエスカレーションポリシーがないため、誰も呼び出されません。",
            )
            .raw("</p></section>");
        return;
    };
    d.raw("<p>")
        .w("Policy ", "ポリシー ")
        .raw("<code>")
        .t(&policy.id)
        .raw("</code></p><h3>")
        .w(
            "On call for this incident now",
            "このインシデントの現在のオンコール",
        )
        .raw("</h3><ol class=\"levels\">");
    for (k, (level, resolved)) in policy.levels.iter().zip(&levels).enumerate() {
        d.raw("<li>")
            .w("Level ", "レベル ")
            .t(&(k + 1).to_string())
            .raw(" (")
            .w("after ", "開始から ")
            .t(&human::duration(level.after))
            .raw("): ");
        for (n, r) in resolved.iter().enumerate() {
            if n > 0 {
                d.raw(", ");
            }
            match &r.person {
                Some(p) => d.raw("<strong>").t(p).raw("</strong>"),
                None => d
                    .raw("<strong class=\"warn\">")
                    .w("nobody on call", "オンコール不在")
                    .raw("</strong>"),
            };
            d.raw(" <span class=\"muted\">")
                .t(&r.target.to_string())
                .raw("</span>");
        }
        d.raw("</li>");
    }
    d.raw("</ol>");

    let Some(e) = &incident.escalation else {
        d.raw("<p class=\"muted\">")
            .w(
                "Nobody has been paged (the incident is below the policy's severity, or was acknowledged first).",
                "まだ誰も呼び出されていません（重大度がポリシーの対象外か、先に確認されました）。",
            )
            .raw("</p></section>");
        return;
    };
    d.raw("<h3>")
        .w("Cycle ", "サイクル ")
        .t(&e.cycle.to_string())
        .raw("</h3><p>")
        .w("Started ", "開始: ");
    d.time(e.started_at);
    // The reason the cycle started, from its `escalation_started` event.
    if let Some(reason) = events.iter().rev().find_map(|ev| match &ev.kind {
        EventKind::EscalationStarted { cycle, reason, .. } if *cycle == e.cycle => Some(reason),
        _ => None,
    }) {
        let words = reason_words(d.lang, reason);
        d.raw(" · ").t(&words);
    }
    d.raw("</p><table class=\"list pages\"><thead><tr><th>")
        .w("Level", "レベル")
        .raw("</th><th>")
        .w("Person", "担当者")
        .raw("</th><th>")
        .w("Time", "時刻")
        .raw("</th><th>")
        .w("Outcome", "結果")
        .raw("</th></tr></thead><tbody>");
    let mut any = false;
    for ev in events {
        match &ev.kind {
            EventKind::Paged {
                cycle,
                round,
                level,
                person,
                name,
                target,
                contacts,
            } if *cycle == e.cycle => {
                any = true;
                level_cell(d, *round, *level);
                d.raw("<td>")
                    .t(if name.is_empty() { person } else { name })
                    .raw(" <span class=\"muted\">")
                    .t(target)
                    .raw("</span></td><td>");
                d.time(ev.at)
                    .raw("</td><td>")
                    .w("paged by ", "呼び出し: ")
                    .t(&if contacts.is_empty() {
                        "—".to_string()
                    } else {
                        contacts.join(", ")
                    });
                d.raw("</td></tr>");
            }
            EventKind::PageSkipped {
                cycle,
                round,
                level,
                person,
                name,
                reason,
            } if *cycle == e.cycle => {
                any = true;
                level_cell(d, *round, *level);
                d.raw("<td>")
                    .t(if name.is_empty() { person } else { name })
                    .raw("</td><td>");
                d.time(ev.at)
                    .raw("</td><td class=\"warn\">")
                    .w("skipped: ", "スキップ: ")
                    .t(reason)
                    .raw("</td></tr>");
            }
            _ => {}
        }
    }
    if !any {
        d.raw("<tr><td colspan=\"4\" class=\"muted\">")
            .w(
                "No level has fired yet.",
                "まだどのレベルも発動していません。",
            )
            .raw("</td></tr>");
    }
    d.raw("</tbody></table><p class=\"esc-state\">");
    match &e.acknowledged {
        Some((by, at)) => {
            let via = events.iter().rev().find_map(|ev| match &ev.kind {
                EventKind::Acknowledged { via } => Some(via.clone()),
                _ => None,
            });
            d.raw("<strong>")
                .w("Acknowledged by ", "確認者: ")
                .t(by)
                .raw("</strong> · ");
            d.time(*at);
            if let Some(Some(via)) = via {
                d.raw(" · ").w("via ", "経路: ").t(&via);
            }
            d.raw(" · ").w("paging stopped", "呼び出しは停止しました");
        }
        None if e.exhausted => {
            d.raw("<strong class=\"warn\">")
                .w(
                    "Exhausted: every level fired and nobody acknowledged.",
                    "全レベルを呼び出しましたが、誰も確認していません。",
                )
                .raw("</strong>");
        }
        None => {
            d.raw("<strong class=\"warn\">")
                .w("Not acknowledged", "未確認")
                .raw("</strong>");
            if let Some(due) = next_due(incident, policy) {
                let rounds = policy.repeat + 1;
                let all = (rounds as usize) * policy.levels.len();
                if e.fired.len() >= all {
                    d.raw(" · ").w(
                        "every level has fired; exhausted at ",
                        "全レベル発動済み。終了予定: ",
                    );
                } else {
                    d.raw(" · ")
                        .w("next level due at ", "次のレベルの予定時刻: ");
                }
                d.time(due);
            }
        }
    }
    d.raw("</p></section>");
}

fn level_cell(d: &mut Doc, round: u32, level: u32) {
    d.raw("<tr><td>").t(&level.to_string());
    if round > 1 {
        d.raw(" <span class=\"muted\">(")
            .w("round ", "ラウンド ")
            .t(&round.to_string())
            .raw(")</span>");
    }
    d.raw("</td>");
}

/// The engine's reasons for a cycle ("opened as SEV1", "severity rose to SEV2", "relapse")
/// in the page's language; anything else as written.
fn reason_words(lang: super::html::Lang, reason: &str) -> String {
    if lang == super::html::Lang::En {
        return reason.to_string();
    }
    if let Some(sev) = reason.strip_prefix("opened as ") {
        format!("{sev} として発生")
    } else if let Some(sev) = reason.strip_prefix("severity rose to ") {
        format!("重大度が {sev} に上昇")
    } else if reason == "relapse" {
        "再発".to_string()
    } else {
        reason.to_string()
    }
}
