//! Heroku's current-status API (`https://status.heroku.com/api/v4/current-status`).
//!
//! Each system (Apps, Data, Tools) has a colour: green→up, yellow→degraded, red→down,
//! blue→degraded (maintenance). Whole-page health is the worst system. Unresolved entries of
//! `incidents` and of `scheduled` (once no longer upcoming) are the ongoing events.

use chrono::{DateTime, Utc};
use keel_core::Health;

use super::json::Node;
use super::{clip, worst, Comp, FollowBy, Inc, Page, VendorComponent, VendorError, VendorIncident};

fn colour(c: &str) -> (Health, &'static str) {
    match c {
        "green" => (Health::Up, "green"),
        "yellow" => (Health::Degraded, "yellow (degraded)"),
        "red" => (Health::Down, "red (outage)"),
        "blue" => (Health::Degraded, "blue (maintenance)"),
        _ => (Health::Unknown, "unknown colour"),
    }
}

pub(super) fn parse(root: Node<'_>) -> Result<Page, VendorError> {
    root.as_object()?;
    let components = root.req("status")?.each(|s| {
        let system = s.req_str("system")?.trim().to_string();
        let status = s.req_str("status")?.to_string();
        let (health, words) = colour(&status);
        let words = if health == Health::Unknown {
            format!("{status} (unknown colour)")
        } else {
            words.to_string()
        };
        Ok(Comp {
            display: system.clone(),
            alias: None,
            words,
            is_group: false,
            public: VendorComponent {
                id: system.clone(),
                name: system,
                status,
                health,
            },
        })
    })?;

    let mut incidents: Vec<Inc> = root
        .each_in("incidents", |n| event(n, false))?
        .into_iter()
        .flatten()
        .collect();
    incidents.extend(
        root.each_in("scheduled", |n| event(n, true))?
            .into_iter()
            .flatten(),
    );

    let health = worst(components.iter().map(|c: &Comp| c.public.health));
    let headline = if components.iter().all(|c| c.public.health == Health::Up) {
        "all systems green".to_string()
    } else if components.iter().any(|c| c.public.status == "blue") {
        "not all systems green (maintenance)".to_string()
    } else {
        "not all systems green".to_string()
    };

    Ok(Page {
        health,
        headline,
        components,
        incidents,
        updated_at: None,
        follow_by: FollowBy::Components,
    })
}

fn event(n: Node<'_>, scheduled: bool) -> Result<Option<Inc>, VendorError> {
    let name = n.req_str("title")?.trim().to_string();
    let resolved = n.opt_bool("resolved")?.unwrap_or(false);
    let upcoming = n.opt_bool("upcoming")?.unwrap_or(false);
    if resolved || (scheduled && upcoming) {
        return Ok(None);
    }
    let prod = n.opt_str("status_prod")?.unwrap_or("").to_string();
    let (health, _) = colour(&prod);

    let mut latest: Option<(Option<DateTime<Utc>>, String, String)> = None;
    n.each_in("updates", |u| {
        let at = u.opt_time("created_at");
        let contents = u.opt_str("contents")?.unwrap_or("").to_string();
        let kind = u.opt_str("update_type")?.unwrap_or("").to_string();
        let newer = match &latest {
            None => true,
            Some((prev, ..)) => at.is_some() && at > *prev,
        };
        if newer {
            latest = Some((at, contents, kind));
        }
        Ok(())
    })?;
    let status = match &latest {
        Some((_, _, kind)) if !kind.is_empty() => kind.clone(),
        _ if scheduled => "maintenance".to_string(),
        _ => "open".to_string(),
    };

    let name_for_id = name.clone();
    Ok(Some(Inc {
        health: if health == Health::Unknown {
            Health::Degraded
        } else {
            health
        },
        public: VendorIncident {
            id: n.opt_id("id")?.unwrap_or(name_for_id),
            name,
            status,
            impact: prod,
            latest_update: latest
                .map(|(_, c, _)| clip(&c, super::MAX_UPDATE_CHARS))
                .filter(|c| !c.is_empty()),
            url: n.opt_str("full_url")?.map(str::to_string),
        },
        // Heroku names no systems per incident.
        affects: Vec::new(),
    }))
}
