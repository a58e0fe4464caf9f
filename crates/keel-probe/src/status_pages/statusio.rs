//! status.io's public status API (`/1.0/status/{page_id}`), used by Docker and GitLab among
//! others.
//!
//! Status codes: 100 operational→up; 200 planned maintenance, 300 degraded performance, 400
//! partial service disruption and 600 security issue→degraded; 500 service disruption→down.
//! A security issue is degraded rather than down because the codes say nothing about
//! availability and the pages that use it keep working (GitLab disabled one feature).
//! `result.incidents` and `result.maintenance.active` are what is going on now.

use chrono::{DateTime, Utc};
use keel_core::Health;

use super::json::Node;
use super::{clip, Comp, FollowBy, Inc, Page, VendorComponent, VendorError, VendorIncident};

const CODES: &str = "100, 200, 300, 400, 500 or 600";

fn code_health(code: u64) -> Option<(Health, &'static str)> {
    Some(match code {
        100 => (Health::Up, "operational"),
        200 => (Health::Degraded, "planned maintenance"),
        300 => (Health::Degraded, "degraded performance"),
        400 => (Health::Degraded, "partial service disruption"),
        500 => (Health::Down, "service disruption"),
        600 => (Health::Degraded, "security issue"),
        _ => return None,
    })
}

fn state_word(state: u64) -> &'static str {
    match state {
        100 => "investigating",
        200 => "identified",
        300 => "monitoring",
        _ => "open",
    }
}

fn code(n: &Node<'_>) -> Result<u64, VendorError> {
    n.value
        .as_u64()
        .ok_or_else(|| n.error(format!("expected a status code ({CODES})")))
}

pub(super) fn parse(root: Node<'_>) -> Result<Page, VendorError> {
    let result = root.req("result")?;
    let overall = result.req("status_overall")?;
    let code_node = overall.req("status_code")?;
    let overall_code = code(&code_node)?;
    let (health, default_words) = code_health(overall_code).ok_or_else(|| {
        code_node.error(format!(
            "unknown status code {overall_code} (expected {CODES})"
        ))
    })?;
    let mut headline = overall
        .opt_str("status")?
        .filter(|s| !s.trim().is_empty())
        .unwrap_or(default_words)
        .trim()
        .to_string();
    if overall_code == 200 && !headline.to_lowercase().contains("maintenance") {
        headline.push_str(" (maintenance)");
    }
    let updated_at = overall.opt_time("updated");

    let components = result.each_in("status", |c| {
        let name = c.req_str("name")?.trim().to_string();
        let id = c
            .opt_str("id")?
            .map_or_else(|| name.clone(), str::to_string);
        let (health, words) = match c.get("status_code") {
            Some(n) => code_health(code(&n)?).unwrap_or((Health::Unknown, "unknown status")),
            None => (Health::Unknown, "unknown status"),
        };
        let status = c.opt_str("status")?.unwrap_or(words).to_string();
        Ok(Comp {
            display: name.clone(),
            alias: None,
            words: status.to_lowercase(),
            is_group: false,
            public: VendorComponent {
                id,
                name,
                status,
                health,
            },
        })
    })?;

    let mut incidents = result.each_in("incidents", |i| event(i, false))?;
    if let Some(m) = result.get("maintenance") {
        incidents.extend(m.each_in("active", |i| event(i, true))?);
    }

    Ok(Page {
        health,
        headline,
        components,
        incidents,
        updated_at,
        follow_by: FollowBy::Components,
    })
}

/// One of an incident's messages: status.io's word for an update.
struct Message {
    at: Option<DateTime<Utc>>,
    details: String,
    /// Status code (100–600) the message set.
    status: Option<u64>,
    /// 100 investigating, 200 identified, 300 monitoring.
    state: Option<u64>,
}

/// An incident or an active maintenance: both have a name, messages and affected components.
fn event(n: Node<'_>, maintenance: bool) -> Result<Inc, VendorError> {
    let name = n.req_str("name")?.trim().to_string();
    let id = n
        .opt_str("_id")?
        .map_or_else(|| name.clone(), str::to_string);

    let mut latest: Option<Message> = None;
    n.each_in("messages", |m| {
        let msg = Message {
            at: m.opt_time("datetime"),
            details: m.opt_str("details")?.unwrap_or("").to_string(),
            status: m.get("status").and_then(|s| s.value.as_u64()),
            state: m.get("state").and_then(|s| s.value.as_u64()),
        };
        let newer = match &latest {
            None => true,
            Some(prev) => msg.at.is_some() && msg.at > prev.at,
        };
        if newer {
            latest = Some(msg);
        }
        Ok(())
    })?;

    let mut affects = Vec::new();
    n.each_in("components_affected", |c| {
        affects.extend(c.opt_str("_id")?.map(str::to_string));
        affects.extend(c.opt_str("name")?.map(str::to_string));
        Ok(())
    })?;

    let (status_code, state) = latest
        .as_ref()
        .map_or((None, None), |m| (m.status, m.state));
    let (health, impact) = match status_code.and_then(code_health) {
        Some((h, words)) => (h, words.to_string()),
        None if maintenance => (Health::Degraded, "planned maintenance".to_string()),
        None => (Health::Degraded, String::new()),
    };
    let status = if maintenance {
        "maintenance in progress".to_string()
    } else {
        state.map_or("open", state_word).to_string()
    };

    Ok(Inc {
        public: VendorIncident {
            id,
            name,
            status,
            impact,
            latest_update: latest
                .map(|m| clip(&m.details, super::MAX_UPDATE_CHARS))
                .filter(|d| !d.is_empty()),
            url: None,
        },
        health,
        affects,
    })
}
