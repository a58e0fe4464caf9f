//! Instatus public `summary.json`.
//!
//! `page.status` is UP→up, HASISSUES→degraded or UNDERMAINTENANCE→degraded. HASISSUES covers
//! everything from a slow page to a full outage, so an active incident whose impact is
//! MAJOROUTAGE raises it to down. Maintenances count while INPROGRESS. The summary lists no
//! components, so `components = [...]` cannot be applied and the whole page is reported.
//! Its timestamps are JavaScript `Date.toString()` strings; Keel does not need them.

use keel_core::Health;

use super::json::Node;
use super::{worst, FollowBy, Inc, Page, VendorError, VendorIncident};

pub(super) fn parse(root: Node<'_>) -> Result<Page, VendorError> {
    let page = root.req("page")?;
    let status_node = page.req("status")?;
    let status = status_node.as_str()?;
    let (page_health, words) = match status.to_ascii_uppercase().as_str() {
        "UP" => (Health::Up, "is up"),
        "HASISSUES" => (Health::Degraded, "has issues"),
        "UNDERMAINTENANCE" => (Health::Degraded, "is under maintenance"),
        _ => {
            return Err(status_node.error(format!(
                "expected one of UP, HASISSUES, UNDERMAINTENANCE (found {status:?})"
            )))
        }
    };

    let mut incidents: Vec<Inc> = root
        .each_in("activeIncidents", |n| event(n, false))?
        .into_iter()
        .flatten()
        .collect();
    incidents.extend(
        root.each_in("activeMaintenances", |n| event(n, true))?
            .into_iter()
            .flatten(),
    );

    let health = worst(
        std::iter::once(page_health).chain(
            incidents
                .iter()
                .filter(|i| i.public.impact.eq_ignore_ascii_case("MAJOROUTAGE"))
                .map(|_| Health::Down),
        ),
    );
    let headline = match page.opt_str("name")? {
        Some(name) if !name.trim().is_empty() => format!("{} {words}", name.trim()),
        _ => format!("the page {words}"),
    };

    Ok(Page {
        health,
        headline,
        components: Vec::new(),
        incidents,
        updated_at: None,
        follow_by: FollowBy::Nothing,
    })
}

fn event(n: Node<'_>, maintenance: bool) -> Result<Option<Inc>, VendorError> {
    let name = n.req_str("name")?.trim().to_string();
    let status = n.opt_str("status")?.unwrap_or("").to_string();
    let upper = status.to_ascii_uppercase();
    let ongoing = if maintenance {
        upper == "INPROGRESS"
    } else {
        upper != "RESOLVED"
    };
    if !ongoing {
        return Ok(None);
    }
    let url = n.opt_str("url")?.map(str::to_string);
    // The summary has no ids; the last segment of the incident's URL is one.
    let id = url
        .as_deref()
        .and_then(|u| u.trim_end_matches('/').rsplit('/').next())
        .filter(|s| !s.is_empty())
        .map_or_else(|| name.clone(), str::to_string);
    let impact = if maintenance {
        "maintenance".to_string()
    } else {
        n.opt_str("impact")?.unwrap_or("").to_string()
    };
    Ok(Some(Inc {
        health: if impact.eq_ignore_ascii_case("MAJOROUTAGE") {
            Health::Down
        } else {
            Health::Degraded
        },
        public: VendorIncident {
            id,
            name,
            status,
            impact,
            latest_update: None,
            url,
        },
        affects: Vec::new(),
    }))
}
