//! Slack's status API v2 (`https://slack-status.com/api/v2.0.0/current`).
//!
//! `status` is "ok", "active" (incidents are open) or "broken". Slack does not say what
//! "broken" covers, so it maps to unknown rather than to a guess. Each active incident has a
//! `type`: outage→down, incident→degraded, notice→up (informational), anything else (such as
//! maintenance)→degraded. The document lists no components, only the `services` each
//! incident affects, so following works through incidents.

use chrono::{DateTime, Utc};
use keel_core::Health;

use super::json::Node;
use super::{clip, worst, Comp, FollowBy, Inc, Page, VendorComponent, VendorError, VendorIncident};

fn type_health(kind: &str) -> Health {
    match kind {
        "outage" => Health::Down,
        "notice" => Health::Up,
        _ => Health::Degraded,
    }
}

pub(super) fn parse(root: Node<'_>) -> Result<Page, VendorError> {
    root.as_object()?;
    let status_node = root.req("status")?;
    let status = status_node.as_str()?;
    if !matches!(status, "ok" | "active" | "broken") {
        return Err(status_node.error(format!(
            "expected one of ok, active, broken (found {status:?})"
        )));
    }
    let updated_at = root.opt_time("date_updated");

    let incidents: Vec<Inc> = root
        .each_in("active_incidents", incident)?
        .into_iter()
        .flatten()
        .collect();

    // Services named by open incidents, each as bad as the worst incident naming it.
    let mut components: Vec<Comp> = Vec::new();
    for inc in &incidents {
        for service in &inc.affects {
            match components.iter_mut().find(|c| c.public.name == *service) {
                Some(c) => {
                    if worst([c.public.health, inc.health]) != c.public.health {
                        c.public.health = inc.health;
                        c.public.status = inc.public.impact.clone();
                        c.words = inc.public.impact.clone();
                    }
                }
                None => components.push(Comp {
                    display: service.clone(),
                    alias: None,
                    words: inc.public.impact.clone(),
                    is_group: false,
                    public: VendorComponent {
                        id: service.clone(),
                        name: service.clone(),
                        status: inc.public.impact.clone(),
                        health: inc.health,
                    },
                }),
            }
        }
    }

    let (health, headline) = match status {
        "broken" => (
            Health::Unknown,
            "Slack's status API reports \"broken\"".to_string(),
        ),
        "active" if incidents.is_empty() => (
            Health::Degraded,
            "status \"active\" with no incident listed".to_string(),
        ),
        _ if incidents.is_empty() => (Health::Up, "ok: no active incidents".to_string()),
        _ => {
            let n = incidents.len();
            (
                worst(incidents.iter().map(|i| i.health)),
                format!("{n} active incident{}", if n == 1 { "" } else { "s" }),
            )
        }
    };

    Ok(Page {
        health,
        headline,
        components,
        incidents,
        updated_at,
        follow_by: FollowBy::Incidents,
    })
}

fn incident(n: Node<'_>) -> Result<Option<Inc>, VendorError> {
    let name = n.req_str("title")?.trim().to_string();
    let status = n.opt_str("status")?.unwrap_or("active").to_string();
    // Resolved, completed or merely scheduled entries say nothing about now.
    if status != "active" {
        return Ok(None);
    }
    let kind = n.opt_str("type")?.unwrap_or("incident").to_string();
    let services = n.each_in("services", |s| Ok(s.as_str()?.to_string()))?;

    let mut latest: Option<(Option<DateTime<Utc>>, String)> = None;
    n.each_in("notes", |note| {
        let at = note.opt_time("date_created");
        let body = note.opt_str("body")?.unwrap_or("").to_string();
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
        health: type_health(&kind),
        public: VendorIncident {
            id: n.opt_id("id")?.unwrap_or_else(|| name.clone()),
            name,
            status,
            impact: kind,
            latest_update: latest
                .map(|(_, b)| clip(&b, super::MAX_UPDATE_CHARS))
                .filter(|b| !b.is_empty()),
            url: n.opt_str("url")?.map(str::to_string),
        },
        affects: services,
    }))
}
