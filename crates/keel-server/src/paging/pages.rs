//! From a `Paged` event on the timeline to the outbox rows that reach the person: one row per
//! contact, each a fully rendered page with a signed acknowledge link.
//!
//! The idempotency key is (incident, cycle, round, level) × (person, contact), so the same
//! page queued twice — after a restart, or by two instances — is sent once.

use chrono::{DateTime, Utc};
use keel_core::config::{Config, Contact, Person, Secret};
use keel_core::incident::{EventKind, Incident, IncidentEvent};
use keel_core::NodeId;
use keel_notify::page::PageMessage;
use keel_notify::{idempotency_key, Delivery};
use keel_store::NewOutboxItem;

use super::job::link_expiry;
use super::link::{linkable, AckLink};
use crate::fanout::base_url;
use crate::secrets::Secrets;

/// The rows for one `Paged` event; none for any other event, or for a person the config no
/// longer knows.
pub fn rows_for_page(
    config: &Config,
    secrets: &Secrets,
    secret: &str,
    incident: &Incident,
    event: &IncidentEvent,
    now: DateTime<Utc>,
) -> Vec<NewOutboxItem> {
    let EventKind::Paged {
        cycle,
        round,
        level,
        person,
        contacts,
        ..
    } = &event.kind
    else {
        return Vec::new();
    };
    let Some(who) = config.people.iter().find(|p| &p.id == person) else {
        tracing::warn!(%person, "a page names a person the config no longer has");
        return Vec::new();
    };
    let msg = message(
        config, secret, incident, *cycle, *round, *level, who, event.at,
    );
    let event_key = format!("incident:{}:page:{cycle}:{round}:{level}", incident.id);
    let mut rows = Vec::new();
    for (n, contact) in who.contacts.iter().enumerate() {
        if !contacts.iter().any(|k| k == contact.kind()) {
            continue;
        }
        let Some((delivery, target)) = delivery(contact, secrets.contact_url(person, n), &msg)
        else {
            continue;
        };
        let key = idempotency_key(
            &event_key,
            &format!("person:{person}:{n}:{}", contact.kind()),
        );
        rows.push(keel_notify::outbox::item(&delivery, key, target, None, now));
    }
    rows
}

/// The page's words and links for one person.
#[allow(clippy::too_many_arguments)]
pub fn message(
    config: &Config,
    secret: &str,
    incident: &Incident,
    cycle: u32,
    round: u32,
    level: u32,
    person: &Person,
    at: DateTime<Utc>,
) -> PageMessage {
    let base = base_url(config);
    let locale = person.locale.as_str();
    let mut what_is_down: Vec<String> = incident
        .impacted
        .iter()
        .filter_map(|id| {
            config
                .components
                .iter()
                .find(|c| c.id.as_str() == id.as_str())
        })
        .map(|c| c.name.get(locale).to_string())
        .collect();
    if what_is_down.is_empty() {
        what_is_down.push(incident.title.clone());
    }
    let severity = incident
        .severity
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|| "SEV?".into());
    let ack_url = if linkable(&person.id) {
        let token = AckLink {
            incident: incident.id,
            cycle,
            person: person.id.clone(),
            expires: link_expiry(config, at),
        }
        .sign(secret);
        format!("{base}/ack/{token}")
    } else {
        format!("{base}/admin/incidents/{}", incident.id)
    };
    PageMessage {
        incident_id: incident.id,
        title: format!("{severity} · {} (incident {})", incident.title, incident.id),
        severity,
        what_is_down,
        affected_users: incident.affected_users,
        cause: incident.cause.as_ref().map(NodeId::to_string),
        incident_url: format!("{base}/admin/incidents/{}", incident.id),
        ack_url,
        // Both count from 1, on the timeline as in the page.
        level,
        round,
        locale: person.locale.clone(),
        at,
    }
}

/// The rendered page for one contact and where it goes.
fn delivery(
    contact: &Contact,
    url: Option<&Secret>,
    msg: &PageMessage,
) -> Option<(Delivery, String)> {
    let url = || url.map(|u| u.expose().to_string());
    let (secret, target) = match contact {
        Contact::Email { address } => (None, address.clone()),
        Contact::Webhook { secret, .. } => {
            (secret.as_ref().map(|s| s.expose().to_string()), url()?)
        }
        Contact::Slack { .. } | Contact::Discord { .. } | Contact::Teams { .. } => (None, url()?),
        // The server and its token are the senders'; the row names only the topic.
        Contact::Ntfy { topic, priority } => {
            let body = keel_notify::ntfy::payload(msg, *priority);
            return Some((Delivery::Ntfy { body }, topic.clone()));
        }
        Contact::Sms { number } | Contact::Voice { number } => (None, number.clone()),
    };
    match keel_notify::page::delivery_for(contact.kind(), msg, secret.as_deref()) {
        Ok(d) => Some((d, target)),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a page for this contact");
            None
        }
    }
}
