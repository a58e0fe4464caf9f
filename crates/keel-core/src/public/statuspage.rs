//! Keel's status as Atlassian Statuspage v2 documents (`/api/v2/summary.json` and friends),
//! with the same keys, nesting and enum values as the real ones, so every tool that already
//! reads a vendor's status page — including Keel's own vendor poller — can read ours.
//!
//! Fields Keel has no fact for keep their key with the neutral value real pages use
//! (`description: null`, `showcase: false`, `affected_components: null`, `tweet_id: null`),
//! because consumers index by key and a missing key breaks them where `null` does not.
//! Timestamps are UTC with milliseconds, as Statuspage writes them.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::i18n;
use super::model::{
    Maintenance, MaintenanceStatus, PublicComponent, PublicIncident, PublicStatus, Snapshot,
};

/// What every document needs: the page's id and the component index, built once per
/// document so that incidents look components up in constant time.
struct Ctx<'a> {
    snap: &'a Snapshot,
    locale: &'a str,
    page_id: String,
    by_id: HashMap<&'a str, &'a PublicComponent>,
}

impl<'a> Ctx<'a> {
    fn new(snap: &'a Snapshot, locale: &'a str) -> Self {
        Ctx {
            snap,
            locale,
            page_id: page_id(snap),
            by_id: snap.components.iter().map(|c| (c.id.as_str(), c)).collect(),
        }
    }

    fn page(&self) -> Value {
        json!({
            "id": self.page_id,
            "name": self.snap.title,
            "url": self.snap.base_url.as_deref().unwrap_or("").trim_end_matches('/'),
            "time_zone": "Etc/UTC",
            "updated_at": ts(self.snap.generated_at),
        })
    }

    fn status(&self) -> Value {
        json!({
            "indicator": self.snap.indicator,
            "description": i18n::overall(self.locale, self.snap.indicator),
        })
    }

    fn component(&self, c: &PublicComponent) -> Value {
        json!({
            "id": c.id,
            "name": c.name.get(self.locale),
            "status": c.status,
            // The snapshot does not keep a creation time; the last change is the closest fact.
            "created_at": ts(c.updated_at),
            "updated_at": ts(c.updated_at),
            "position": c.position,
            "description": null,
            // Statuspage's "showcase" shows uptime bars on the page, which Keel always does.
            "showcase": true,
            "start_date": null,
            "group_id": null,
            "page_id": self.page_id,
            "group": false,
            "only_show_if_degraded": false,
        })
    }

    /// The public components among `ids`, in the order given; ids that are not public (which
    /// the snapshot builder should never pass) are dropped rather than shown.
    fn components_of(&self, ids: &[String]) -> Vec<Value> {
        ids.iter()
            .filter_map(|id| self.by_id.get(id.as_str()))
            .map(|c| self.component(c))
            .collect()
    }

    /// A link to the item's place on the page (`anchor` is "incident" or "maintenance").
    fn shortlink(&self, anchor: &str, id: &str) -> String {
        let base = self
            .snap
            .base_url
            .as_deref()
            .unwrap_or("")
            .trim_end_matches('/');
        format!("{base}/#{anchor}-{id}")
    }

    fn incident(&self, i: &PublicIncident) -> Value {
        // Statuspage stamps monitoring_at when the incident last entered monitoring.
        let monitoring_at = match i.status {
            PublicStatus::Monitoring | PublicStatus::Resolved => i
                .updates
                .iter()
                .find(|u| u.status == PublicStatus::Monitoring)
                .map(|u| ts(u.created_at)),
            _ => None,
        };
        let updates: Vec<Value> = i
            .updates
            .iter()
            .map(|u| {
                json!({
                    "id": u.id,
                    "status": u.status,
                    "body": u.body.get(self.locale),
                    "incident_id": i.id,
                    "created_at": ts(u.created_at),
                    "updated_at": ts(u.created_at),
                    "display_at": ts(u.created_at),
                    // Keel does not record each update's component transitions.
                    "affected_components": null,
                    "deliver_notifications": true,
                    "custom_tweet": null,
                    "tweet_id": null,
                })
            })
            .collect();
        json!({
            "id": i.id,
            "name": i.name.get(self.locale),
            "status": i.status,
            "created_at": ts(i.created_at),
            "updated_at": ts(i.updated_at),
            "monitoring_at": monitoring_at,
            "resolved_at": i.resolved_at.map(ts),
            "impact": i.impact,
            "shortlink": self.shortlink("incident", &i.id),
            "started_at": ts(i.created_at),
            "page_id": self.page_id,
            "incident_updates": updates,
            "components": self.components_of(&i.components),
        })
    }

    fn maintenance(&self, m: &Maintenance) -> Value {
        let body = m.body.get(self.locale);
        // The one update a maintenance carries is its announcement.
        let updates = if body.is_empty() {
            Vec::new()
        } else {
            vec![json!({
                "id": format!("{}-1", m.id),
                "status": m.status,
                "body": body,
                "incident_id": m.id,
                "created_at": ts(m.created_at),
                "updated_at": ts(m.updated_at),
                "display_at": ts(m.created_at),
                "affected_components": null,
                "deliver_notifications": true,
                "custom_tweet": null,
                "tweet_id": null,
            })]
        };
        let started = matches!(
            m.status,
            MaintenanceStatus::InProgress
                | MaintenanceStatus::Verifying
                | MaintenanceStatus::Completed
        );
        json!({
            "id": m.id,
            "name": m.name.get(self.locale),
            "status": m.status,
            "created_at": ts(m.created_at),
            "updated_at": ts(m.updated_at),
            "monitoring_at": null,
            "resolved_at": (m.status == MaintenanceStatus::Completed).then(|| ts(m.updated_at)),
            "impact": "maintenance",
            "shortlink": self.shortlink("maintenance", &m.id),
            "started_at": started.then(|| ts(m.scheduled_for)),
            "page_id": self.page_id,
            "incident_updates": updates,
            "components": self.components_of(&m.components),
            "scheduled_for": ts(m.scheduled_for),
            "scheduled_until": ts(m.scheduled_until),
        })
    }

    fn incidents_where(&self, keep: impl Fn(&PublicIncident) -> bool) -> Vec<Value> {
        self.snap
            .incidents
            .iter()
            .filter(|i| keep(i))
            .map(|i| self.incident(i))
            .collect()
    }

    fn maintenances_where(&self, keep: impl Fn(&Maintenance) -> bool) -> Vec<Value> {
        self.snap
            .maintenances
            .iter()
            .filter(|m| keep(m))
            .map(|m| self.maintenance(m))
            .collect()
    }
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn unresolved(i: &PublicIncident) -> bool {
    i.status != PublicStatus::Resolved
}

fn upcoming(m: &Maintenance) -> bool {
    m.status == MaintenanceStatus::Scheduled
}

fn active(m: &Maintenance) -> bool {
    matches!(
        m.status,
        MaintenanceStatus::InProgress | MaintenanceStatus::Verifying
    )
}

/// A stable 12-character page id in Statuspage's alphabet, derived from the title and base
/// URL so that it survives restarts and exports without being stored.
pub fn page_id(snap: &Snapshot) -> String {
    // FNV-1a: tiny, stable across Rust versions (unlike `DefaultHasher`), and good enough
    // for an identifier that only has to be the same every time.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in snap
        .title
        .bytes()
        .chain([0])
        .chain(snap.base_url.as_deref().unwrap_or("").bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    (0..12)
        .map(|_| {
            let c = ALPHABET[(h % 36) as usize] as char;
            h /= 36;
            c
        })
        .collect()
}

/// `/api/v2/summary.json`: page, status, components, unresolved incidents, and maintenances
/// that are upcoming or in progress.
pub fn summary(snap: &Snapshot, locale: &str) -> Value {
    let cx = Ctx::new(snap, locale);
    json!({
        "page": cx.page(),
        "components": snap.components.iter().map(|c| cx.component(c)).collect::<Vec<_>>(),
        "incidents": cx.incidents_where(unresolved),
        "scheduled_maintenances": cx.maintenances_where(|m| upcoming(m) || active(m)),
        "status": cx.status(),
    })
}

/// `/api/v2/status.json`: the page and its overall indicator.
pub fn status(snap: &Snapshot, locale: &str) -> Value {
    let cx = Ctx::new(snap, locale);
    json!({ "page": cx.page(), "status": cx.status() })
}

/// `/api/v2/components.json`.
pub fn components(snap: &Snapshot, locale: &str) -> Value {
    let cx = Ctx::new(snap, locale);
    json!({
        "page": cx.page(),
        "components": snap.components.iter().map(|c| cx.component(c)).collect::<Vec<_>>(),
    })
}

/// `/api/v2/incidents.json`: every incident in the snapshot, unresolved first.
pub fn incidents(snap: &Snapshot, locale: &str) -> Value {
    let cx = Ctx::new(snap, locale);
    json!({ "page": cx.page(), "incidents": cx.incidents_where(|_| true) })
}

/// `/api/v2/incidents/unresolved.json`.
pub fn incidents_unresolved(snap: &Snapshot, locale: &str) -> Value {
    let cx = Ctx::new(snap, locale);
    json!({ "page": cx.page(), "incidents": cx.incidents_where(unresolved) })
}

/// `/api/v2/scheduled-maintenances.json`: all of them, completed ones included.
pub fn scheduled_maintenances(snap: &Snapshot, locale: &str) -> Value {
    let cx = Ctx::new(snap, locale);
    json!({ "page": cx.page(), "scheduled_maintenances": cx.maintenances_where(|_| true) })
}

/// `/api/v2/scheduled-maintenances/upcoming.json`: status `scheduled`.
pub fn scheduled_maintenances_upcoming(snap: &Snapshot, locale: &str) -> Value {
    let cx = Ctx::new(snap, locale);
    json!({ "page": cx.page(), "scheduled_maintenances": cx.maintenances_where(upcoming) })
}

/// `/api/v2/scheduled-maintenances/active.json`: `in_progress` or `verifying`.
pub fn scheduled_maintenances_active(snap: &Snapshot, locale: &str) -> Value {
    let cx = Ctx::new(snap, locale);
    json!({ "page": cx.page(), "scheduled_maintenances": cx.maintenances_where(active) })
}

/// One incident as Statuspage writes it inside the documents above (for webhook bodies:
/// Statuspage's incident webhook carries exactly this object under `incident`). Indexes the
/// snapshot's components on each call: build documents, not loops, with it.
pub fn incident(snap: &Snapshot, incident: &PublicIncident, locale: &str) -> Value {
    Ctx::new(snap, locale).incident(incident)
}

/// One component as Statuspage writes it (for component-update webhook bodies).
pub fn component(snap: &Snapshot, component: &PublicComponent, locale: &str) -> Value {
    // A lone component needs no index of the others.
    let cx = Ctx {
        snap,
        locale,
        page_id: page_id(snap),
        by_id: HashMap::new(),
    };
    cx.component(component)
}
