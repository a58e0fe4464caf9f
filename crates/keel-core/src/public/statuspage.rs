//! Keel's status as Atlassian Statuspage v2 documents (`/api/v2/summary.json` and friends),
//! with the same keys, nesting and enum values as the real ones, so every tool that already
//! reads a vendor's status page — including Keel's own vendor poller — can read ours.
//!
//! Fields Keel has no fact for keep their key with the neutral value real pages use
//! (`description: null`, `affected_components: null`, `tweet_id: null`), because consumers
//! index by key and a missing key breaks them where `null` does not. Timestamps are UTC with
//! milliseconds, as Statuspage writes them.
//!
//! The documents are typed structs borrowing from the snapshot and serialized straight to
//! bytes ([`document`]), in Statuspage's key order: with thousands of components a
//! `serde_json::Value` tree costs several times more to build than the bytes themselves. The
//! `Value` functions ([`summary`], …) serialize the same structs, for tests and callers that
//! want to look inside.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::ser::{SerializeSeq, Serializer};
use serde::Serialize;
use serde_json::Value;

use super::groups::{self, Entry};
use super::i18n;
use super::model::{
    ComponentStatus, Indicator, Maintenance, MaintenanceStatus, PublicComponent, PublicImpact,
    PublicIncident, PublicStatus, Snapshot,
};
use crate::ids::ComponentId;

/// The documents of the Statuspage v2 API, by path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Document {
    Summary,
    Status,
    Components,
    Incidents,
    IncidentsUnresolved,
    ScheduledMaintenances,
    ScheduledMaintenancesUpcoming,
    ScheduledMaintenancesActive,
}

impl Document {
    pub const ALL: [Document; 8] = [
        Document::Summary,
        Document::Status,
        Document::Components,
        Document::Incidents,
        Document::IncidentsUnresolved,
        Document::ScheduledMaintenances,
        Document::ScheduledMaintenancesUpcoming,
        Document::ScheduledMaintenancesActive,
    ];

    /// The path Statuspage serves it at: `/api/v2/summary.json`, …
    pub fn path(self) -> &'static str {
        match self {
            Document::Summary => "/api/v2/summary.json",
            Document::Status => "/api/v2/status.json",
            Document::Components => "/api/v2/components.json",
            Document::Incidents => "/api/v2/incidents.json",
            Document::IncidentsUnresolved => "/api/v2/incidents/unresolved.json",
            Document::ScheduledMaintenances => "/api/v2/scheduled-maintenances.json",
            Document::ScheduledMaintenancesUpcoming => {
                "/api/v2/scheduled-maintenances/upcoming.json"
            }
            Document::ScheduledMaintenancesActive => "/api/v2/scheduled-maintenances/active.json",
        }
    }
}

/// The document as JSON bytes, names and texts in `locale` (the server passes its first
/// configured locale).
pub fn document(doc: Document, snap: &Snapshot, locale: &str) -> Vec<u8> {
    let cx = Ctx::new(snap, locale);
    // Serializing borrowed structs of strings, numbers and enums into a Vec cannot fail.
    serde_json::to_vec(&Doc { cx: &cx, doc }).unwrap_or_default()
}

/// The document as a `serde_json::Value` (keys then sort alphabetically).
pub fn value(doc: Document, snap: &Snapshot, locale: &str) -> Value {
    let cx = Ctx::new(snap, locale);
    serde_json::to_value(Doc { cx: &cx, doc }).unwrap_or(Value::Null)
}

/// `/api/v2/summary.json`: page, components, unresolved incidents, maintenances that are
/// upcoming or in progress, and the overall status.
pub fn summary(snap: &Snapshot, locale: &str) -> Value {
    value(Document::Summary, snap, locale)
}

/// `/api/v2/status.json`: the page and its overall indicator.
pub fn status(snap: &Snapshot, locale: &str) -> Value {
    value(Document::Status, snap, locale)
}

/// `/api/v2/components.json`.
pub fn components(snap: &Snapshot, locale: &str) -> Value {
    value(Document::Components, snap, locale)
}

/// `/api/v2/incidents.json`: every incident in the snapshot, unresolved first.
pub fn incidents(snap: &Snapshot, locale: &str) -> Value {
    value(Document::Incidents, snap, locale)
}

/// `/api/v2/incidents/unresolved.json`.
pub fn incidents_unresolved(snap: &Snapshot, locale: &str) -> Value {
    value(Document::IncidentsUnresolved, snap, locale)
}

/// `/api/v2/scheduled-maintenances.json`: all of them, completed ones included.
pub fn scheduled_maintenances(snap: &Snapshot, locale: &str) -> Value {
    value(Document::ScheduledMaintenances, snap, locale)
}

/// `/api/v2/scheduled-maintenances/upcoming.json`: status `scheduled`.
pub fn scheduled_maintenances_upcoming(snap: &Snapshot, locale: &str) -> Value {
    value(Document::ScheduledMaintenancesUpcoming, snap, locale)
}

/// `/api/v2/scheduled-maintenances/active.json`: `in_progress` or `verifying`.
pub fn scheduled_maintenances_active(snap: &Snapshot, locale: &str) -> Value {
    value(Document::ScheduledMaintenancesActive, snap, locale)
}

/// One incident as Statuspage writes it inside the documents above (for webhook bodies:
/// Statuspage's incident webhook carries this object under `incident`). Indexes the
/// snapshot's components on each call: build documents, not loops, with it.
pub fn incident(snap: &Snapshot, incident: &PublicIncident, locale: &str) -> Value {
    let cx = Ctx::new(snap, locale);
    serde_json::to_value(cx.incident(incident)).unwrap_or(Value::Null)
}

/// One component as Statuspage writes it (for component-update webhook bodies).
pub fn component(snap: &Snapshot, component: &PublicComponent, locale: &str) -> Value {
    // A lone component needs no index of the others, unless groups move positions.
    let cx = Ctx {
        snap,
        locale,
        page_id: page_id(snap),
        base: base(snap),
        by_id: HashMap::new(),
        positions: positions(snap),
        bars: Bars::of(snap),
    };
    serde_json::to_value(cx.component(component)).unwrap_or(Value::Null)
}

/// Statuspage's positions when the page has groups: a group and a component of no group count
/// among the top level, a group's member within its group. Empty without groups, where every
/// component's own position is its place among the top level already.
fn positions(snap: &Snapshot) -> HashMap<&str, u32> {
    let mut out = HashMap::new();
    if snap.components.iter().all(|c| c.group.is_none()) {
        return out;
    }
    for (i, entry) in groups::top_level(&snap.components).iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        match entry {
            Entry::Component(c) => {
                out.insert(c.id.as_str(), i);
            }
            Entry::Group(g) => {
                if let Some(id) = g.id {
                    out.insert(id, i);
                }
                for (j, c) in g.members.iter().enumerate() {
                    out.insert(c.id.as_str(), u32::try_from(j).unwrap_or(u32::MAX));
                }
            }
        }
    }
    out
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

fn base(snap: &Snapshot) -> &str {
    snap.base_url.as_deref().unwrap_or("").trim_end_matches('/')
}

/// A time as Statuspage writes it: `2022-11-25T15:50:04.967Z`.
#[derive(Clone, Copy)]
struct Ts(DateTime<Utc>);

impl std::fmt::Display for Ts {
    // By hand rather than `format("%Y-…")`, which re-reads its pattern for every one of the
    // tens of thousands of timestamps in a large page's documents.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let t = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.timestamp_subsec_millis().min(999)
        )
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What every document needs: the page's id and the component index, built once per
/// document so that incidents look components up in constant time.
struct Ctx<'a> {
    snap: &'a Snapshot,
    locale: &'a str,
    page_id: String,
    base: &'a str,
    by_id: HashMap<&'a str, &'a PublicComponent>,
    /// See [`positions`].
    positions: HashMap<&'a str, u32>,
    /// Which components the page draws uptime bars for (Statuspage's `showcase`).
    bars: Bars,
}

/// Which components have uptime bars on the page ([`groups::page_layout`]): all of them up to
/// [`groups::DETAILED_MAX`]; past it, no group's members, and the ungrouped ones only while
/// they have rows of their own and the rows are few enough to draw bars.
#[derive(Clone, Copy)]
struct Bars {
    grouped: bool,
    loose: bool,
}

impl Bars {
    fn of(snap: &Snapshot) -> Bars {
        let layout = groups::page_layout(&snap.components);
        Bars {
            grouped: layout.detailed,
            loose: layout.bars
                && layout
                    .entries
                    .iter()
                    .any(|e| matches!(e, Entry::Component(_))),
        }
    }

    fn shown(self, c: &PublicComponent) -> bool {
        if c.group.is_some() {
            self.grouped
        } else {
            self.loose
        }
    }
}

#[derive(Serialize)]
struct PageDoc<'a> {
    id: &'a str,
    name: &'a str,
    url: &'a str,
    time_zone: &'static str,
    updated_at: Ts,
}

#[derive(Serialize)]
struct StatusDoc {
    indicator: Indicator,
    description: &'static str,
}

#[derive(Serialize)]
struct ComponentDoc<'a> {
    id: &'a str,
    name: &'a str,
    status: ComponentStatus,
    created_at: Ts,
    updated_at: Ts,
    position: u32,
    description: Option<&'a str>,
    showcase: bool,
    start_date: Option<&'a str>,
    group_id: Option<&'a str>,
    page_id: &'a str,
    group: bool,
    only_show_if_degraded: bool,
}

/// A group component: the keys of a component, then its members' ids (Statuspage's order).
#[derive(Serialize)]
struct GroupDoc<'a> {
    id: &'a str,
    name: &'a str,
    status: ComponentStatus,
    created_at: Ts,
    updated_at: Ts,
    position: u32,
    description: Option<&'a str>,
    showcase: bool,
    start_date: Option<&'a str>,
    group_id: Option<&'a str>,
    page_id: &'a str,
    group: bool,
    only_show_if_degraded: bool,
    components: Vec<&'a str>,
}

#[derive(Serialize)]
struct UpdateDoc<'a, S> {
    id: Cow<'a, str>,
    status: S,
    body: &'a str,
    incident_id: &'a str,
    created_at: Ts,
    updated_at: Ts,
    display_at: Ts,
    /// Keel does not record each update's component transitions.
    affected_components: Option<()>,
    deliver_notifications: bool,
    custom_tweet: Option<()>,
    tweet_id: Option<()>,
}

#[derive(Serialize)]
struct IncidentDoc<'c, 'a> {
    id: &'a str,
    name: &'a str,
    status: PublicStatus,
    created_at: Ts,
    updated_at: Ts,
    monitoring_at: Option<Ts>,
    resolved_at: Option<Ts>,
    impact: PublicImpact,
    shortlink: String,
    started_at: Ts,
    page_id: &'c str,
    incident_updates: Updates<'c, 'a>,
    components: Comps<'c, 'a>,
}

#[derive(Serialize)]
struct MaintenanceDoc<'c, 'a> {
    id: &'a str,
    name: &'a str,
    status: MaintenanceStatus,
    created_at: Ts,
    updated_at: Ts,
    monitoring_at: Option<Ts>,
    resolved_at: Option<Ts>,
    impact: &'static str,
    shortlink: String,
    started_at: Option<Ts>,
    page_id: &'c str,
    incident_updates: Vec<UpdateDoc<'a, MaintenanceStatus>>,
    components: Comps<'c, 'a>,
    scheduled_for: Ts,
    scheduled_until: Ts,
}

/// The public components among `ids`, in the order given; ids that are not public (which
/// the snapshot builder should never pass) are dropped rather than shown.
struct Comps<'c, 'a> {
    cx: &'c Ctx<'a>,
    ids: &'a [ComponentId],
}

impl Serialize for Comps<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.ids
                .iter()
                .filter_map(|id| self.cx.by_id.get(id.as_str()))
                .map(|c| self.cx.component(c)),
        )
    }
}

struct Updates<'c, 'a> {
    cx: &'c Ctx<'a>,
    incident: &'a PublicIncident,
}

impl Serialize for Updates<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let i = self.incident;
        let mut seq = s.serialize_seq(Some(i.updates.len()))?;
        for u in &i.updates {
            seq.serialize_element(&UpdateDoc {
                id: Cow::Borrowed(&u.id),
                status: u.status,
                body: u.body.get(self.cx.locale),
                incident_id: &i.id,
                created_at: Ts(u.created_at),
                updated_at: Ts(u.created_at),
                display_at: Ts(u.created_at),
                affected_components: None,
                deliver_notifications: true,
                custom_tweet: None,
                tweet_id: None,
            })?;
        }
        seq.end()
    }
}

/// A filtered list, serialized as it is walked.
struct List<'c, 'a, T> {
    cx: &'c Ctx<'a>,
    items: &'a [T],
    keep: fn(&T) -> bool,
}

impl Serialize for List<'_, '_, PublicIncident> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.items
                .iter()
                .filter(|i| (self.keep)(i))
                .map(|i| self.cx.incident(i)),
        )
    }
}

impl Serialize for List<'_, '_, Maintenance> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.items
                .iter()
                .filter(|m| (self.keep)(m))
                .map(|m| self.cx.maintenance(m)),
        )
    }
}

struct AllComponents<'c, 'a>(&'c Ctx<'a>);

impl Serialize for AllComponents<'_, '_> {
    /// Without groups, the components in page order; with groups, each group component in its
    /// place, followed by its members.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let cx = self.0;
        if cx.positions.is_empty() {
            return s.collect_seq(cx.snap.components.iter().map(|c| cx.component(c)));
        }
        let mut seq = s.serialize_seq(Some(cx.snap.components.len()))?;
        for entry in groups::top_level(&cx.snap.components) {
            match entry {
                Entry::Component(c) => seq.serialize_element(&cx.component(c))?,
                Entry::Group(g) => {
                    let (Some(id), Some(name)) = (g.id, g.name) else {
                        continue;
                    };
                    let updated = Ts(g.updated_at().unwrap_or(cx.snap.generated_at));
                    seq.serialize_element(&GroupDoc {
                        id,
                        name: name.get(cx.locale),
                        status: g.status(),
                        created_at: updated,
                        updated_at: updated,
                        position: cx.positions.get(id).copied().unwrap_or_default(),
                        description: None,
                        // Statuspage's group components carry no uptime bars of their own.
                        showcase: false,
                        start_date: None,
                        group_id: None,
                        page_id: &cx.page_id,
                        group: true,
                        only_show_if_degraded: false,
                        components: g.members.iter().map(|c| c.id.as_str()).collect(),
                    })?;
                    for c in &g.members {
                        seq.serialize_element(&cx.component(c))?;
                    }
                }
            }
        }
        seq.end()
    }
}

/// One whole document, keys in Statuspage's order.
struct Doc<'c, 'a> {
    cx: &'c Ctx<'a>,
    doc: Document,
}

impl Serialize for Doc<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let cx = self.cx;
        let incidents = |keep: fn(&PublicIncident) -> bool| List {
            cx,
            items: &cx.snap.incidents,
            keep,
        };
        let maintenances = |keep: fn(&Maintenance) -> bool| List {
            cx,
            items: &cx.snap.maintenances,
            keep,
        };
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("page", &cx.page())?;
        match self.doc {
            Document::Summary => {
                m.serialize_entry("components", &AllComponents(cx))?;
                m.serialize_entry("incidents", &incidents(unresolved))?;
                m.serialize_entry("scheduled_maintenances", &maintenances(upcoming_or_active))?;
                m.serialize_entry("status", &cx.status())?;
            }
            Document::Status => m.serialize_entry("status", &cx.status())?,
            Document::Components => m.serialize_entry("components", &AllComponents(cx))?,
            Document::Incidents => m.serialize_entry("incidents", &incidents(|_| true))?,
            Document::IncidentsUnresolved => {
                m.serialize_entry("incidents", &incidents(unresolved))?
            }
            Document::ScheduledMaintenances => {
                m.serialize_entry("scheduled_maintenances", &maintenances(|_| true))?
            }
            Document::ScheduledMaintenancesUpcoming => {
                m.serialize_entry("scheduled_maintenances", &maintenances(upcoming))?
            }
            Document::ScheduledMaintenancesActive => {
                m.serialize_entry("scheduled_maintenances", &maintenances(active))?
            }
        }
        m.end()
    }
}

impl<'a> Ctx<'a> {
    fn new(snap: &'a Snapshot, locale: &'a str) -> Self {
        Ctx {
            snap,
            locale,
            page_id: page_id(snap),
            base: base(snap),
            by_id: snap.components.iter().map(|c| (c.id.as_str(), c)).collect(),
            positions: positions(snap),
            bars: Bars::of(snap),
        }
    }

    fn page(&self) -> PageDoc<'_> {
        PageDoc {
            id: &self.page_id,
            name: &self.snap.title,
            url: self.base,
            time_zone: "Etc/UTC",
            updated_at: Ts(self.snap.generated_at),
        }
    }

    fn status(&self) -> StatusDoc {
        StatusDoc {
            indicator: self.snap.indicator,
            description: i18n::overall(self.locale, self.snap.indicator),
        }
    }

    fn component(&self, c: &'a PublicComponent) -> ComponentDoc<'_> {
        ComponentDoc {
            id: c.id.as_str(),
            name: c.name.get(self.locale),
            status: c.status,
            // The snapshot does not keep a creation time; the last change is the closest fact.
            created_at: Ts(c.updated_at),
            updated_at: Ts(c.updated_at),
            position: self
                .positions
                .get(c.id.as_str())
                .copied()
                .unwrap_or(c.position),
            description: None,
            // Statuspage's "showcase": the page shows the component's uptime bars.
            showcase: self.bars.shown(c),
            start_date: None,
            group_id: c.group.as_ref().map(|g| g.id.as_str()),
            page_id: &self.page_id,
            group: false,
            only_show_if_degraded: false,
        }
    }

    /// A link to the item's place on the page (`anchor` is "incident" or "maintenance").
    fn shortlink(&self, anchor: &str, id: &str) -> String {
        format!("{}/#{anchor}-{id}", self.base)
    }

    fn incident<'c>(&'c self, i: &'a PublicIncident) -> IncidentDoc<'c, 'a> {
        // Statuspage stamps monitoring_at when the incident last entered monitoring.
        let monitoring_at = match i.status {
            PublicStatus::Monitoring | PublicStatus::Resolved => i
                .updates
                .iter()
                .find(|u| u.status == PublicStatus::Monitoring)
                .map(|u| Ts(u.created_at)),
            _ => None,
        };
        IncidentDoc {
            id: &i.id,
            name: i.name.get(self.locale),
            status: i.status,
            created_at: Ts(i.created_at),
            updated_at: Ts(i.updated_at),
            monitoring_at,
            resolved_at: i.resolved_at.map(Ts),
            impact: i.impact,
            shortlink: self.shortlink("incident", &i.id),
            started_at: Ts(i.created_at),
            page_id: &self.page_id,
            incident_updates: Updates {
                cx: self,
                incident: i,
            },
            components: Comps {
                cx: self,
                ids: &i.components,
            },
        }
    }

    fn maintenance<'c>(&'c self, m: &'a Maintenance) -> MaintenanceDoc<'c, 'a> {
        let body = m.body.get(self.locale);
        // The one update a maintenance carries is its announcement.
        let incident_updates = if body.trim().is_empty() {
            Vec::new()
        } else {
            vec![UpdateDoc {
                id: Cow::Owned(format!("{}-1", m.id)),
                status: m.status,
                body,
                incident_id: &m.id,
                created_at: Ts(m.created_at),
                updated_at: Ts(m.updated_at),
                display_at: Ts(m.created_at),
                affected_components: None,
                deliver_notifications: true,
                custom_tweet: None,
                tweet_id: None,
            }]
        };
        let started = matches!(
            m.status,
            MaintenanceStatus::InProgress
                | MaintenanceStatus::Verifying
                | MaintenanceStatus::Completed
        );
        MaintenanceDoc {
            id: &m.id,
            name: m.name.get(self.locale),
            status: m.status,
            created_at: Ts(m.created_at),
            updated_at: Ts(m.updated_at),
            monitoring_at: None,
            resolved_at: (m.status == MaintenanceStatus::Completed).then_some(Ts(m.updated_at)),
            impact: "maintenance",
            shortlink: self.shortlink("maintenance", &m.id),
            started_at: started.then_some(Ts(m.scheduled_for)),
            page_id: &self.page_id,
            incident_updates,
            components: Comps {
                cx: self,
                ids: &m.components,
            },
            scheduled_for: Ts(m.scheduled_for),
            scheduled_until: Ts(m.scheduled_until),
        }
    }
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

fn upcoming_or_active(m: &Maintenance) -> bool {
    upcoming(m) || active(m)
}
