//! The public status snapshot: everything a customer may see, and nothing else.
//!
//! Built by the server from the incidents, the sources' health and the rollups whenever
//! something changes; rendered by pure functions into HTML, JSON, feeds and badges. Internal
//! facts (causes, vendor names, hosts, reasons) never enter it.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::config::LocalizedText;
use crate::ids::ComponentId;

/// Component status, with Statuspage's own enum values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    Operational,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
    UnderMaintenance,
}

/// Overall indicator, with Statuspage's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Indicator {
    None,
    Minor,
    Major,
    Critical,
    Maintenance,
}

/// Public incident status, with Statuspage's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublicStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
}

/// Incident impact, with Statuspage's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublicImpact {
    None,
    Minor,
    Major,
    Critical,
}

/// Uptime of one component on one day; `None` when nothing was checked that day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayUptime {
    pub day: NaiveDate,
    pub ratio: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicComponent {
    pub id: ComponentId,
    pub name: LocalizedText,
    pub status: ComponentStatus,
    /// Oldest first, 90 days ending today.
    pub uptime: Vec<DayUptime>,
    /// Share over the days with checks, 0.0–1.0.
    pub uptime_ratio: Option<f64>,
    pub workaround: Option<LocalizedText>,
    pub updated_at: DateTime<Utc>,
    /// Position on the page (config order).
    pub position: u32,
    /// The group it is shown in (`[[component]] group`); `None`: at the top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<ComponentGroup>,
}

/// A component group, as each of its components carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentGroup {
    /// [`crate::config::group_id`] of the name.
    pub id: String,
    pub name: LocalizedText,
}

/// One published customer update.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicUpdate {
    /// Stable id (incident id and the update's number): "12-3".
    pub id: String,
    pub status: PublicStatus,
    /// Per locale.
    pub body: LocalizedText,
    pub created_at: DateTime<Utc>,
}

/// The public ETA, already free of internal detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "basis", rename_all = "snake_case")]
pub enum PublicEta {
    /// A third party we rely on has a problem; no name given.
    ThirdParty,
    /// "Similar incidents were resolved in X–Y minutes".
    History {
        p50_minutes: u64,
        p90_minutes: u64,
    },
    None,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PublicIncident {
    pub id: String,
    /// Public title per locale (drafted, never the internal cause).
    pub name: LocalizedText,
    pub status: PublicStatus,
    pub impact: PublicImpact,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    /// Public component ids affected.
    pub components: Vec<ComponentId>,
    pub affected_users: u64,
    pub eta: PublicEta,
    /// Workarounds of the affected components: (component id, text).
    pub workarounds: Vec<(ComponentId, LocalizedText)>,
    /// Newest first.
    pub updates: Vec<PublicUpdate>,
}

/// Maintenance status, with Statuspage's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceStatus {
    Scheduled,
    InProgress,
    Verifying,
    Completed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Maintenance {
    pub id: String,
    pub name: LocalizedText,
    pub status: MaintenanceStatus,
    pub scheduled_for: DateTime<Utc>,
    pub scheduled_until: DateTime<Utc>,
    pub components: Vec<ComponentId>,
    pub body: LocalizedText,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Everything the public status page shows, at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub title: String,
    pub locales: Vec<String>,
    /// Absolute base URL for links in feeds and JSON (`[page] base_url`), if configured.
    pub base_url: Option<String>,
    pub generated_at: DateTime<Utc>,
    pub indicator: Indicator,
    pub components: Vec<PublicComponent>,
    /// Unresolved incidents first (newest first), then resolved ones (newest first).
    pub incidents: Vec<PublicIncident>,
    pub maintenances: Vec<Maintenance>,
}
