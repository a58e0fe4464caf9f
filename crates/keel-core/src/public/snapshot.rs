//! Building the public snapshot: from the incidents, the nodes' health, the uptime history
//! and the maintenances to everything the page shows, and nothing it may not.
//!
//! What customers see of an incident is what was said to them: its title and status come
//! from the published updates (or Keel's first draft's title before any), never from the
//! internal title, cause or reasons. Internal components do not appear at all, incidents
//! touching none of the public ones are left out, and a workaround the disclosure check would
//! refuse is not shown. A pure function of its inputs, so the server can rebuild it on every
//! change and a static export renders exactly what the live page shows.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::disclosure::{check, DisclosureRules};
use super::draft::{public_eta, public_title, Facts};
use super::model::{
    ComponentGroup, ComponentStatus, DayUptime, Indicator, Maintenance, MaintenanceStatus,
    PublicComponent, PublicEta, PublicImpact, PublicIncident, PublicStatus, PublicUpdate, Snapshot,
};
use crate::assess::{blockers, troubles_from_health, Graph, HealthMap, Severity};
use crate::config::{group_id, Component, Config, LocalizedText};
use crate::ids::{ComponentId, NodeId};
use crate::incident::{Incident, IncidentState};
use crate::Health;

/// How long resolved incidents and completed maintenances stay in the history.
pub const HISTORY_DAYS: i64 = 90;

/// The snapshot at `now`. `uptime` holds each component's daily uptime, oldest first (the
/// last 90 entries are kept); `node_health` the current health of every node with sources.
pub fn build(
    config: &Config,
    incidents: &[Incident],
    node_health: &HealthMap,
    uptime: &BTreeMap<ComponentId, Vec<DayUptime>>,
    maintenances: &[Maintenance],
    now: DateTime<Utc>,
) -> Snapshot {
    let rules = DisclosureRules::from_config(config);
    let horizon = now - TimeDelta::days(HISTORY_DAYS);
    let active: Vec<&Maintenance> = maintenances.iter().filter(|m| is_active(m, now)).collect();
    // Incidents still hurting: monitoring means the service works again.
    let hurting: Vec<&Incident> = incidents
        .iter()
        .filter(|i| {
            matches!(
                i.state,
                IncidentState::Investigating | IncidentState::Identified
            )
        })
        .collect();

    let components: Vec<PublicComponent> = config
        .components
        .iter()
        .filter(|c| c.public)
        .enumerate()
        .map(|(position, c)| {
            let (status, since) = component_status(c, node_health, &hurting, &active);
            let days = uptime.get(&c.id).map_or(&[][..], Vec::as_slice);
            let days = days[days.len().saturating_sub(90)..].to_vec();
            PublicComponent {
                id: c.id.clone(),
                name: c.name.clone(),
                status,
                uptime_ratio: mean_ratio(&days),
                uptime: days,
                workaround: c.workaround.clone().filter(|w| sayable(w, &rules)),
                updated_at: since.unwrap_or(now),
                position: u32::try_from(position).unwrap_or(u32::MAX),
                group: c.group.as_ref().map(|name| ComponentGroup {
                    id: group_id(name),
                    name: name.clone(),
                }),
            }
        })
        .collect();

    // Alternatives are offered from the timeline (what responders were told); the health
    // of right now is asked too, so a backup that just failed is withdrawn at once.
    let graph = config
        .components
        .iter()
        .any(|c| !c.alternatives.is_empty())
        .then(|| Graph::from_config(config));
    let troubles = troubles_from_health(node_health);
    let usable = |alt: &NodeId| {
        graph
            .as_ref()
            .is_none_or(|g| blockers(g, alt, &troubles).is_empty())
    };
    let mut public_incidents: Vec<PublicIncident> = incidents
        .iter()
        .filter_map(|inc| public_incident(inc, config, &rules, &usable))
        .filter(|p| p.resolved_at.is_none_or(|at| at >= horizon))
        .collect();
    public_incidents.sort_by(|a, b| {
        let open = |p: &PublicIncident| p.status != PublicStatus::Resolved;
        open(b)
            .cmp(&open(a))
            .then(b.created_at.cmp(&a.created_at))
            .then(b.id.cmp(&a.id))
    });

    let public_ids: Vec<&str> = components.iter().map(|c| c.id.as_str()).collect();
    let mut shown_maintenances: Vec<Maintenance> = maintenances
        .iter()
        .filter(|m| m.status != MaintenanceStatus::Completed || m.scheduled_until >= horizon)
        .map(|m| Maintenance {
            components: m
                .components
                .iter()
                .filter(|c| public_ids.contains(&c.as_str()))
                .cloned()
                .collect(),
            ..m.clone()
        })
        .collect();
    shown_maintenances.sort_by(|a, b| a.scheduled_for.cmp(&b.scheduled_for).then(a.id.cmp(&b.id)));

    Snapshot {
        title: config.page.title.clone(),
        locales: config.page.locales.clone(),
        base_url: config.page.base_url.clone(),
        generated_at: now,
        indicator: indicator(&components, !active.is_empty()),
        components,
        incidents: public_incidents,
        maintenances: shown_maintenances,
    }
}

/// A maintenance under way: started by hand (in progress, verifying), or scheduled and
/// inside its window.
pub fn is_active(m: &Maintenance, now: DateTime<Utc>) -> bool {
    match m.status {
        MaintenanceStatus::InProgress | MaintenanceStatus::Verifying => true,
        MaintenanceStatus::Scheduled => m.scheduled_for <= now && now < m.scheduled_until,
        MaintenanceStatus::Completed => false,
    }
}

/// Worse first, for picking the worst of several sources.
pub(crate) fn rank(s: ComponentStatus) -> u8 {
    match s {
        ComponentStatus::Operational => 0,
        ComponentStatus::UnderMaintenance => 1,
        ComponentStatus::DegradedPerformance => 2,
        ComponentStatus::PartialOutage => 3,
        ComponentStatus::MajorOutage => 4,
    }
}

/// A component's status and since when: the worst of its own health and of every incident
/// still hurting it; under maintenance while an active maintenance covers it (planned work
/// explains what the checks see).
fn component_status(
    c: &Component,
    health: &HealthMap,
    hurting: &[&Incident],
    active: &[&Maintenance],
) -> (ComponentStatus, Option<DateTime<Utc>>) {
    if let Some(m) = active.iter().find(|m| m.components.contains(&c.id)) {
        return (ComponentStatus::UnderMaintenance, Some(m.updated_at));
    }
    let node = NodeId::from(&c.id);
    let own = health.get(&node).map(|h| {
        let status = match h.health {
            Health::Down => ComponentStatus::MajorOutage,
            Health::Degraded => ComponentStatus::DegradedPerformance,
            Health::Up | Health::Unknown => ComponentStatus::Operational,
        };
        (status, Some(h.since))
    });
    let mut worst = own.unwrap_or((ComponentStatus::Operational, None));
    for inc in hurting.iter().filter(|i| i.impacted.contains(&node)) {
        let status = incident_status(inc, health);
        if rank(status) > rank(worst.0) {
            worst = (status, Some(inc.started_at));
        }
    }
    worst
}

/// What an incident does to the components it impacts: a cause that is down takes them
/// down; a degraded one degrades them, or is a partial outage when the incident is severe;
/// without a cause Keel can see (declared, or not seen failing right now), the severity says.
fn incident_status(inc: &Incident, health: &HealthMap) -> ComponentStatus {
    let severe = matches!(inc.severity, Some(Severity::Sev1 | Severity::Sev2));
    match inc
        .cause
        .as_ref()
        .and_then(|c| health.get(c))
        .map(|h| h.health)
    {
        Some(Health::Down) => ComponentStatus::MajorOutage,
        Some(Health::Degraded) if severe => ComponentStatus::PartialOutage,
        Some(Health::Degraded) => ComponentStatus::DegradedPerformance,
        _ => match inc.severity {
            Some(Severity::Sev1) => ComponentStatus::MajorOutage,
            Some(Severity::Sev2) => ComponentStatus::PartialOutage,
            _ => ComponentStatus::DegradedPerformance,
        },
    }
}

/// Statuspage's overall indicator: the worst public component decides; maintenance when
/// nothing is wrong but work is under way.
fn indicator(components: &[PublicComponent], maintenance: bool) -> Indicator {
    let worst = components.iter().map(|c| c.status).max_by_key(|s| rank(*s));
    match worst {
        Some(ComponentStatus::MajorOutage) => Indicator::Critical,
        Some(ComponentStatus::PartialOutage) => Indicator::Major,
        Some(ComponentStatus::DegradedPerformance) => Indicator::Minor,
        Some(ComponentStatus::UnderMaintenance) => Indicator::Maintenance,
        _ if maintenance => Indicator::Maintenance,
        _ => Indicator::None,
    }
}

fn mean_ratio(days: &[DayUptime]) -> Option<f64> {
    let known: Vec<f64> = days.iter().filter_map(|d| d.ratio).collect();
    if known.is_empty() {
        None
    } else {
        // At most 90 values: no precision to worry about.
        #[allow(clippy::cast_precision_loss)]
        Some(known.iter().sum::<f64>() / known.len() as f64)
    }
}

/// Every locale of the text passes the disclosure check.
fn sayable(text: &LocalizedText, rules: &DisclosureRules) -> bool {
    text.by_locale.values().all(|t| check(t, rules).is_ok())
}

fn impact_of(severity: Option<Severity>) -> PublicImpact {
    match severity {
        Some(Severity::Sev1) => PublicImpact::Critical,
        Some(Severity::Sev2) => PublicImpact::Major,
        Some(Severity::Sev3) | None => PublicImpact::Minor,
        Some(Severity::Sev4) => PublicImpact::None,
    }
}

/// The incident as customers see it, when it impacts a public component.
fn public_incident(
    inc: &Incident,
    config: &Config,
    rules: &DisclosureRules,
    usable: &dyn Fn(&NodeId) -> bool,
) -> Option<PublicIncident> {
    let facts = Facts::judged(inc, config, usable);
    if facts.components.is_empty() {
        return None;
    }
    let latest = inc.latest_update();
    // A resolved incident with nothing left to publish by itself reads resolved, even when
    // no responder said so (a held draft, or an incident from before drafting).
    let quietly_resolved = inc.is_resolved() && inc.pending_drafts().next().is_none();
    let status = match latest.map(|u| u.status) {
        _ if quietly_resolved => PublicStatus::Resolved,
        Some(s) => s,
        None => PublicStatus::Investigating,
    };
    let resolved_at = (status == PublicStatus::Resolved).then(|| {
        inc.resolved_at
            .or_else(|| {
                inc.updates
                    .iter()
                    .rev()
                    .find(|u| u.status == PublicStatus::Resolved)
                    .map(|u| u.published_at)
            })
            .unwrap_or(inc.last_event_at)
    });
    let updated_at = [
        Some(inc.started_at),
        latest.map(|u| u.published_at),
        resolved_at,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(inc.started_at);
    Some(PublicIncident {
        id: inc.id.to_string(),
        name: public_title(inc, config, rules),
        status,
        impact: impact_of(inc.severity),
        created_at: inc.started_at,
        updated_at,
        resolved_at,
        components: facts.components.iter().map(|(id, _)| id.clone()).collect(),
        affected_users: inc.affected_users,
        eta: if status == PublicStatus::Resolved {
            PublicEta::None
        } else {
            public_eta(inc)
        },
        workarounds: facts
            .workarounds
            .into_iter()
            .filter(|(_, w)| sayable(w, rules))
            .collect(),
        updates: inc
            .updates
            .iter()
            .rev()
            .map(|u| PublicUpdate {
                id: format!("{}-{}", inc.id, u.id),
                status: u.status,
                body: u.body.clone(),
                created_at: u.published_at,
            })
            .collect(),
    })
}
