//! Google Cloud's `incidents.json` (`https://status.cloud.google.com/incidents.json`).
//!
//! The document is an array of every recent incident; one without an `end` is ongoing. Its
//! `status_impact` decides health: SERVICE_OUTAGE→down, SERVICE_DISRUPTION→degraded,
//! SERVICE_INFORMATION→up (a notice); without it, `severity` high→down, medium→degraded,
//! low→up. There is no component list, only the `affected_products` of each incident, so
//! following works through incidents, by product title or id.

use chrono::{DateTime, Utc};
use keel_core::Health;

use super::json::Node;
use super::{clip, worst, Comp, FollowBy, Inc, Page, VendorComponent, VendorError, VendorIncident};

const STATUS_BASE: &str = "https://status.cloud.google.com/";

fn impact_health(status_impact: Option<&str>, severity: Option<&str>) -> Health {
    match status_impact {
        Some("SERVICE_OUTAGE") => return Health::Down,
        Some("SERVICE_DISRUPTION") => return Health::Degraded,
        Some("SERVICE_INFORMATION") => return Health::Up,
        _ => {}
    }
    match severity {
        Some("high") => Health::Down,
        Some("low") => Health::Up,
        _ => Health::Degraded,
    }
}

pub(super) fn parse(root: Node<'_>) -> Result<Page, VendorError> {
    let mut updated_at: Option<DateTime<Utc>> = None;
    let mut incidents = Vec::new();
    let mut products: Vec<(String, String, String, Health)> = Vec::new();

    root.each(|n| {
        n.as_object()?;
        if let Some(m) = n.opt_time("modified") {
            updated_at = updated_at.max(Some(m));
        }
        let ended = n.opt_str("end")?.is_some_and(|e| !e.trim().is_empty());
        if ended {
            return Ok(());
        }
        let inc = incident(&n, &mut products)?;
        incidents.push(inc);
        Ok(())
    })?;

    let health = worst(incidents.iter().map(|i: &Inc| i.health));
    let headline = match incidents.len() {
        0 => "no ongoing incidents".to_string(),
        1 => "1 ongoing incident".to_string(),
        n => format!("{n} ongoing incidents"),
    };
    let components = products
        .into_iter()
        .map(|(id, name, status, health)| Comp {
            display: name.clone(),
            alias: None,
            words: status.to_lowercase().replace('_', " "),
            is_group: false,
            public: VendorComponent {
                id,
                name,
                status,
                health,
            },
        })
        .collect();

    Ok(Page {
        health,
        headline,
        components,
        incidents,
        updated_at,
        follow_by: FollowBy::Incidents,
    })
}

fn incident(
    n: &Node<'_>,
    products: &mut Vec<(String, String, String, Health)>,
) -> Result<Inc, VendorError> {
    let name = n
        .opt_str("external_desc")?
        .or(n.opt_str("service_name")?)
        .ok_or_else(|| VendorError::Field {
            path: format!("{}.external_desc", n.path()),
            reason: "missing".into(),
        })?
        .trim()
        .to_string();
    let id = n.opt_id("id")?.unwrap_or_else(|| name.clone());
    let status_impact = n.opt_str("status_impact")?;
    let severity = n.opt_str("severity")?;
    let health = impact_health(status_impact, severity);
    let impact = status_impact.or(severity).unwrap_or("").to_string();

    let (status, text) = match n.get("most_recent_update") {
        Some(u) => (
            u.opt_str("status")?.unwrap_or("").to_string(),
            u.opt_str("text")?.map(str::to_string),
        ),
        None => (String::new(), None),
    };
    let text = match text {
        Some(t) => Some(t),
        // Older captures lack `most_recent_update`; updates are newest first.
        None => n
            .each_in("updates", |u| Ok(u.opt_str("text")?.map(str::to_string)))?
            .into_iter()
            .flatten()
            .next(),
    };

    let mut affects = Vec::new();
    n.each_in("affected_products", |p| {
        let title = p.opt_str("title")?.map(str::to_string);
        let pid = p.opt_str("id")?.map(str::to_string);
        if let Some(t) = &title {
            let pid = pid.clone().unwrap_or_else(|| t.clone());
            match products.iter_mut().find(|(id, ..)| *id == pid) {
                Some(existing) => {
                    if worst([existing.3, health]) != existing.3 {
                        existing.2 = impact.clone();
                        existing.3 = health;
                    }
                }
                None => products.push((pid, t.clone(), impact.clone(), health)),
            }
        }
        affects.extend(title);
        affects.extend(pid);
        Ok(())
    })?;

    Ok(Inc {
        public: VendorIncident {
            id,
            name,
            status,
            impact,
            latest_update: text
                .map(|t| clip(&t, super::MAX_UPDATE_CHARS))
                .filter(|t| !t.is_empty()),
            url: n
                .opt_str("uri")?
                .map(|u| format!("{STATUS_BASE}{}", u.trim_start_matches('/'))),
        },
        health,
        affects,
    })
}
