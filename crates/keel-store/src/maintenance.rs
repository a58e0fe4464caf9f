//! Scheduled maintenances: plain rows an operator edits in place (their status moves
//! scheduled → in progress → verifying → completed), shown on the status page.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use keel_core::config::LocalizedText;
use keel_core::public::{Maintenance, MaintenanceStatus};
use keel_core::ComponentId;

use crate::shared::{truncate_to_millis, Stamp};
use crate::{Result, StoreError};

/// A scheduled maintenance to store. Its public shape is [`keel_core::public::Maintenance`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewMaintenance {
    pub name: LocalizedText,
    pub body: LocalizedText,
    pub status: MaintenanceStatus,
    pub scheduled_for: DateTime<Utc>,
    /// Not before `scheduled_for`.
    pub scheduled_until: DateTime<Utc>,
    /// Components affected.
    pub components: Vec<ComponentId>,
}

/// Scheduled maintenances. Apart from incidents: a maintenance has no timeline, is changed in
/// place rather than appended to, and is never written under a cluster lease, so it needs
/// none of the incident store's concurrency rules.
#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Stores a maintenance created at `now`; its id is a decimal string. `Invalid` when it
    /// ends before it starts.
    async fn create_maintenance(
        &self,
        new: &NewMaintenance,
        now: DateTime<Utc>,
    ) -> Result<Maintenance>;

    /// Every maintenance, by `scheduled_for` then id.
    async fn maintenances(&self) -> Result<Vec<Maintenance>>;

    /// Sets a maintenance's status, `updated_at = now`. `NotFound` for an unknown id.
    async fn set_maintenance_status(
        &self,
        id: &str,
        status: MaintenanceStatus,
        now: DateTime<Utc>,
    ) -> Result<Maintenance>;
}

pub(crate) fn maintenance_status_str(s: MaintenanceStatus) -> &'static str {
    match s {
        MaintenanceStatus::Scheduled => "scheduled",
        MaintenanceStatus::InProgress => "in_progress",
        MaintenanceStatus::Verifying => "verifying",
        MaintenanceStatus::Completed => "completed",
    }
}

fn parse_maintenance_status(s: &str) -> std::result::Result<MaintenanceStatus, String> {
    match s {
        "scheduled" => Ok(MaintenanceStatus::Scheduled),
        "in_progress" => Ok(MaintenanceStatus::InProgress),
        "verifying" => Ok(MaintenanceStatus::Verifying),
        "completed" => Ok(MaintenanceStatus::Completed),
        other => Err(format!("unknown maintenance status {other:?}")),
    }
}

/// A maintenance checked and encoded for its row.
pub(crate) struct MaintenanceRow {
    pub name_json: String,
    pub body_json: String,
    pub status: &'static str,
    pub scheduled_for: DateTime<Utc>,
    pub scheduled_until: DateTime<Utc>,
    pub components_json: String,
}

pub(crate) fn encode_maintenance(new: &NewMaintenance) -> Result<MaintenanceRow> {
    if new.scheduled_until < new.scheduled_for {
        return Err(StoreError::Invalid(format!(
            "a maintenance cannot end ({}) before it starts ({})",
            new.scheduled_until, new.scheduled_for
        )));
    }
    let cannot =
        |e: serde_json::Error| StoreError::Other(format!("cannot encode maintenance as JSON: {e}"));
    Ok(MaintenanceRow {
        name_json: serde_json::to_string(&new.name).map_err(cannot)?,
        body_json: serde_json::to_string(&new.body).map_err(cannot)?,
        status: maintenance_status_str(new.status),
        scheduled_for: truncate_to_millis(new.scheduled_for),
        scheduled_until: truncate_to_millis(new.scheduled_until),
        components_json: serde_json::to_string(&new.components).map_err(cannot)?,
    })
}

pub(crate) const MAINTENANCE_COLUMNS: &str = "id, name, body, status, scheduled_for, \
     scheduled_until, components, created_at, updated_at";
/// A maintenance row as both backends read it, in [`MAINTENANCE_COLUMNS`] order; `T` is the
/// backend's time (see [`Stamp`]).
pub(crate) type MaintenanceRowRead<T> = (i64, String, String, String, T, T, String, T, T);

/// A maintenance back from its row.
pub(crate) fn decode_maintenance<T: Stamp>(row: MaintenanceRowRead<T>) -> Result<Maintenance> {
    let (id, name_json, body_json, status, from, until, components_json, created_at, updated_at) =
        row;
    let unreadable = |why: String| {
        StoreError::Other(format!("stored row is unreadable: maintenance {id}: {why}"))
    };
    Ok(Maintenance {
        id: id.to_string(),
        name: serde_json::from_str(&name_json)
            .map_err(|e| unreadable(format!("name is not localized text ({e})")))?,
        status: parse_maintenance_status(&status).map_err(unreadable)?,
        scheduled_for: from.time()?,
        scheduled_until: until.time()?,
        components: serde_json::from_str(&components_json).map_err(|e| {
            unreadable(format!(
                "components are not a JSON list of component ids ({e})"
            ))
        })?,
        body: serde_json::from_str(&body_json)
            .map_err(|e| unreadable(format!("body is not localized text ({e})")))?,
        created_at: created_at.time()?,
        updated_at: updated_at.time()?,
    })
}

/// Maintenance ids are the row's integer id as text (Statuspage ids are strings); anything
/// else names no maintenance.
pub(crate) fn maintenance_id(id: &str) -> Result<i64> {
    id.parse::<i64>()
        .map_err(|_| StoreError::NotFound(format!("maintenance {id:?}")))
}

pub(crate) fn unknown_maintenance(id: i64) -> StoreError {
    StoreError::NotFound(format!("maintenance {id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn t() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn maintenance_ending_before_it_starts_is_refused() {
        let m = NewMaintenance {
            name: LocalizedText::plain("DB upgrade"),
            body: LocalizedText::plain("Short read-only window."),
            status: MaintenanceStatus::Scheduled,
            scheduled_for: t(),
            scheduled_until: t() - TimeDelta::minutes(1),
            components: vec![],
        };
        assert!(encode_maintenance(&m)
            .err()
            .unwrap()
            .to_string()
            .contains("cannot end"));
        assert_eq!(
            maintenance_id("x").err().unwrap().to_string(),
            "not found: maintenance \"x\""
        );
    }

    #[test]
    fn status_strings_round_trip() {
        for s in [
            MaintenanceStatus::Scheduled,
            MaintenanceStatus::InProgress,
            MaintenanceStatus::Verifying,
            MaintenanceStatus::Completed,
        ] {
            // The same words as the public JSON.
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                serde_json::Value::from(maintenance_status_str(s))
            );
            assert_eq!(parse_maintenance_status(maintenance_status_str(s)), Ok(s));
        }
    }
}
