//! JSON views of incidents for the API: the fields responders and tools rely on, named once.

use chrono::{DateTime, Utc};
use keel_core::assess::{
    alternatives, step_guards, troubles_from_health, unsafe_reason, Graph, HealthMap,
};
use keel_core::config::Config;
use keel_core::incident::{Incident, IncidentEvent};
use serde_json::{json, Value};

use crate::book::Entry;

/// The summary every listing shows.
pub fn incident(i: &Incident, now: DateTime<Utc>) -> Value {
    json!({
        "id": i.id,
        "title": i.title,
        "state": i.state,
        "severity": i.severity,
        "severity_reason": i.severity_reason,
        "origin": i.origin,
        "cause": i.cause,
        "cause_kind": i.cause_kind,
        "failure_kind": i.failure_kind,
        "impacted": i.impacted,
        "affected_users": i.affected_users,
        "affected_users_text": keel_core::assess::about_users(i.affected_users, "en"),
        "user_minutes": i.user_minutes(now),
        "eta": i.eta,
        "eta_text": i.eta.as_ref().map(keel_core::incident::words::eta),
        "recurring": i.recurring,
        "recurrences": i.recurrences,
        "started_at": i.started_at,
        "acknowledged_at": i.acknowledged_at,
        "mitigated_at": i.mitigated_at,
        "resolved_at": i.resolved_at,
    })
}

/// The single view: the summary plus roles, checklist, action items and the timeline.
pub fn incident_full(e: &Entry, now: DateTime<Utc>) -> Value {
    let i = &e.incident;
    let mut v = incident(i, now);
    v["roles"] = json!(i.roles);
    v["checklist"] = json!(i
        .checklist
        .iter()
        .enumerate()
        .map(|(n, s)| json!({"step": n + 1, "text": s.text, "done_at": s.done_at, "done_by": s.done_by}))
        .collect::<Vec<_>>());
    v["action_items"] = json!(i.action_items);
    v["root_cause"] = json!(i.root_cause);
    v["drafts"] = json!(i.drafts);
    v["public_updates"] = json!(i.updates);
    v["timeline"] = json!(e.events.iter().map(|ev| event(ev, i)).collect::<Vec<_>>());
    v
}

/// What the incident's backups and guarded steps look like now, added to a single view:
/// `alternatives` (each impacted component's alternatives, available or not and why) and an
/// `unsafe_reason` on every checklist step whose `when_healthy` guard fails. Judged from the
/// current health of the graph, not stored: the checklist on the timeline is text, and
/// whether a failover is safe changes without anyone touching the incident.
pub fn add_backups(
    v: &mut Value,
    i: &Incident,
    config: &Config,
    graph: &Graph,
    health: &HealthMap,
) {
    let troubles = troubles_from_health(health);
    let resolved = i.is_resolved();
    v["alternatives"] = json!(alternatives(graph, &i.impacted, &troubles)
        .into_iter()
        .map(|a| json!({
            "component": a.component,
            "alternative": a.alternative,
            "name": a.name.get("en"),
            "available": a.available,
            "reason": a.reason,
            "offered": a.available && !resolved && i.backup_offered(a.name.get("en")),
        }))
        .collect::<Vec<_>>());
    let guards = step_guards(config);
    if let Some(steps) = v["checklist"].as_array_mut() {
        for (step, s) in steps.iter_mut().zip(&i.checklist) {
            let guard = guards.get(&s.text);
            step["when_healthy"] = json!(guard.cloned().unwrap_or_default());
            step["unsafe_reason"] = json!(guard.and_then(|g| unsafe_reason(graph, g, &troubles)));
        }
    }
}

fn event(e: &IncidentEvent, i: &Incident) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    v["text"] = json!(keel_core::incident::words::describe(&e.kind, i));
    v
}
