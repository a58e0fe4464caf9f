//! Atlassian Statuspage v2: `summary.json`, `status.json`, `components.json`,
//! `incidents.json` (and `/unresolved`), `scheduled-maintenances.json` (and `/upcoming`,
//! `/active`) and the single-incident document.
//!
//! Mapping: indicator none→up, minor→degraded, major and critical→down, maintenance→degraded;
//! component operational→up, degraded_performance, partial_outage and under_maintenance→
//! degraded, major_outage→down. The page's indicator decides whole-page health (Statuspage
//! computes it from the components and incidents already); component statuses decide it for
//! followed components; documents without either (incident lists) use the unresolved
//! incidents' impact on the same scale.

use keel_core::Health;

use super::json::Node;
use super::{clip, worst, Comp, FollowBy, Inc, Page, VendorComponent, VendorError, VendorIncident};

const DOC_KEYS: [&str; 5] = [
    "status",
    "components",
    "incidents",
    "incident",
    "scheduled_maintenances",
];

pub(super) fn parse(root: Node<'_>) -> Result<Page, VendorError> {
    root.as_object()?;
    if !DOC_KEYS.iter().any(|k| root.has(k)) {
        return Err(VendorError::Unrecognised(
            "expected a Statuspage summary: an object with `status` (and usually `page`, \
             `components`, `incidents`), or one of its incident or maintenance lists"
                .into(),
        ));
    }
    let updated_at = root.get("page").and_then(|p| p.opt_time("updated_at"));

    let components = name_children_by_group(root.each_in("components", component)?);

    let mut incidents = Vec::new();
    for inc in root.each_in("incidents", |n| incident(n, false))? {
        incidents.extend(inc);
    }
    if let Some(one) = root.get("incident") {
        incidents.extend(incident(one, false)?);
    }
    for m in root.each_in("scheduled_maintenances", |n| incident(n, true))? {
        incidents.extend(m);
    }

    let (health, headline, follow_by) = if let Some(status) = root.get("status") {
        status.as_object()?;
        let indicator = status.req_str("indicator")?;
        let health = indicator_health(indicator).ok_or_else(|| {
            status.error(format!(
                "indicator: expected one of none, minor, major, critical, maintenance (found \
                 {indicator:?})"
            ))
        })?;
        let mut headline = status
            .opt_str("description")?
            .filter(|d| !d.trim().is_empty())
            .unwrap_or(indicator)
            .trim()
            .to_string();
        if indicator == "maintenance" && !headline.to_lowercase().contains("maintenance") {
            headline.push_str(" (maintenance)");
        }
        let follow_by = if root.has("components") {
            FollowBy::Components
        } else {
            FollowBy::Nothing
        };
        (health, headline, follow_by)
    } else if root.has("components") {
        let health = worst(components.iter().map(|c| c.public.health));
        let headline = if health == Health::Up {
            "all components operational".to_string()
        } else {
            "some components are not operational".to_string()
        };
        (health, headline, FollowBy::Components)
    } else {
        let health = worst(incidents.iter().map(|i| i.health));
        let only_maintenances = !root.has("incidents") && !root.has("incident");
        let headline = match incidents.len() {
            0 if only_maintenances => "no maintenance in progress".to_string(),
            0 => "no unresolved incidents".to_string(),
            1 => "1 unresolved incident or maintenance in progress".to_string(),
            n => format!("{n} unresolved incidents or maintenances in progress"),
        };
        (health, headline, FollowBy::Incidents)
    };

    Ok(Page {
        health,
        headline,
        components,
        incidents,
        updated_at,
        follow_by,
    })
}

fn indicator_health(indicator: &str) -> Option<Health> {
    Some(match indicator {
        "none" => Health::Up,
        "minor" | "maintenance" => Health::Degraded,
        "major" | "critical" => Health::Down,
        _ => return None,
    })
}

fn component_health(status: &str) -> Health {
    match status {
        "operational" => Health::Up,
        "degraded_performance" | "partial_outage" | "under_maintenance" => Health::Degraded,
        "major_outage" => Health::Down,
        // A status Statuspage may add later: say so rather than guess.
        _ => Health::Unknown,
    }
}

fn component(n: Node<'_>) -> Result<(Comp, Option<String>), VendorError> {
    let name = n.req_str("name")?.trim().to_string();
    let id = n
        .opt_str("id")?
        .map_or_else(|| name.clone(), str::to_string);
    let status = n.req_str("status")?.to_string();
    let is_group = n.opt_bool("group")?.unwrap_or(false);
    let group_id = n.opt_str("group_id")?.map(str::to_string);
    let health = component_health(&status);
    Ok((
        Comp {
            display: name.clone(),
            alias: None,
            words: status.replace('_', " "),
            is_group,
            public: VendorComponent {
                id,
                name,
                status,
                health,
            },
        },
        group_id,
    ))
}

/// Children of a group are named "Group - Child" in reasons, as Statuspage itself does in
/// `affected_components`, because child names alone ("SMS") are ambiguous.
fn name_children_by_group(read: Vec<(Comp, Option<String>)>) -> Vec<Comp> {
    let groups: Vec<(String, String)> = read
        .iter()
        .filter(|(c, _)| c.is_group)
        .map(|(c, _)| (c.public.id.clone(), c.public.name.clone()))
        .collect();
    read.into_iter()
        .map(|(mut c, group_id)| {
            let group = group_id.and_then(|g| groups.iter().find(|(id, _)| *id == g));
            if let Some((_, group_name)) = group {
                let full = format!("{group_name} - {}", c.public.name);
                c.display = full.clone();
                c.alias = Some(full);
            }
            c
        })
        .collect()
}

fn incident(n: Node<'_>, maintenance: bool) -> Result<Option<Inc>, VendorError> {
    let name = n.req_str("name")?.trim().to_string();
    let status = n.req_str("status")?.to_string();
    let ongoing = if maintenance {
        matches!(status.as_str(), "in_progress" | "verifying")
    } else {
        !matches!(status.as_str(), "resolved" | "postmortem" | "completed")
    };
    if !ongoing {
        return Ok(None);
    }
    let impact = n.opt_str("impact")?.unwrap_or("").to_string();
    let health = if maintenance {
        Health::Degraded
    } else {
        indicator_health(&impact).unwrap_or(Health::Unknown)
    };

    let mut affects = Vec::new();
    n.each_in("components", |c| {
        affects.extend(c.opt_str("id")?.map(str::to_string));
        affects.extend(c.opt_str("name")?.map(str::to_string));
        Ok(())
    })?;

    // Updates come newest first, but order by time where it can be read rather than trust it.
    let mut latest: Option<(Option<chrono::DateTime<chrono::Utc>>, String)> = None;
    n.each_in("incident_updates", |u| {
        let at = u
            .opt_time("display_at")
            .or_else(|| u.opt_time("created_at"));
        let body = u.opt_str("body")?.unwrap_or("").to_string();
        u.each_in("affected_components", |a| {
            affects.extend(a.opt_str("code")?.map(str::to_string));
            affects.extend(a.opt_str("name")?.map(str::to_string));
            Ok(())
        })?;
        let newer = match &latest {
            None => true,
            Some((prev, _)) => at.is_some() && at > *prev,
        };
        if newer {
            latest = Some((at, body));
        }
        Ok(())
    })?;

    Ok(Some(Inc {
        public: VendorIncident {
            id: n
                .opt_str("id")?
                .map_or_else(|| name.clone(), str::to_string),
            name,
            status,
            impact,
            latest_update: latest
                .map(|(_, body)| clip(&body, super::MAX_UPDATE_CHARS))
                .filter(|b| !b.is_empty()),
            url: n.opt_str("shortlink")?.map(str::to_string),
        },
        health,
        affects,
    }))
}
