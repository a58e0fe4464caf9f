//! What Keel stores about the team beyond the config: on-call overrides (someone covers a
//! shift) and the random keys every instance must share (the acknowledge links' signing key).
//!
//! People, schedules and escalation policies live in the config file; only what responders
//! change while Keel runs is stored, so several instances on one PostgreSQL see the same
//! overrides and check the same signatures.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
/// Stored overrides are the domain's own (`keel_core::oncall::Override`), id included.
use keel_core::oncall::Override;

use crate::shared::Stamp;
use crate::{Result, StoreError};

/// An override to store: `person` is on call for `schedule` during `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOverride {
    pub schedule: String,
    pub person: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Who asked for it (a user or token name), for the audit trail.
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait TeamStore: Send + Sync {
    /// Stores an override. `Invalid` when it ends at or before its start, or a field is empty
    /// or holds a NUL; `Conflict("overlaps override 3 (carol, … – …)")` when another override
    /// of the same schedule overlaps it — checked and inserted atomically, also across
    /// instances, so of two overlapping overrides added at once exactly one is stored. Times
    /// are kept to the millisecond.
    async fn create_override(&self, new: &NewOverride) -> Result<Override>;

    /// Overrides that end after `ending_after` (current and future ones), of one schedule or
    /// of all, by start then id.
    async fn overrides(
        &self,
        schedule: Option<&str>,
        ending_after: DateTime<Utc>,
    ) -> Result<Vec<Override>>;

    /// Deletes an override and returns what it was; `NotFound` when there is none.
    async fn delete_override(&self, id: i64) -> Result<Override>;

    /// The deployment's secret named `name`: made from 32 random bytes (hex) by whichever
    /// instance asks first, then the same for every instance and every restart.
    async fn shared_secret(&self, name: &str) -> Result<String>;
}

pub(crate) const OVERRIDE_COLUMNS: &str =
    "id, schedule, person, start_at, end_at, created_by, created_at";
/// An override row as both backends read it, in [`OVERRIDE_COLUMNS`] order; `T` is the
/// backend's time (see [`Stamp`]).
pub(crate) type OverrideRow<T> = (i64, String, String, T, T, String, T);

pub(crate) fn decode_override<T: Stamp>(row: OverrideRow<T>) -> Result<Override> {
    let (id, schedule, person, start, end, created_by, created_at) = row;
    Ok(Override {
        id,
        schedule,
        person,
        start: start.time()?,
        end: end.time()?,
        created_by,
        created_at: created_at.time()?,
    })
}

/// Checks both backends apply before writing an override.
pub(crate) fn check_new_override(new: &NewOverride) -> Result<()> {
    for (field, value) in [
        ("schedule", &new.schedule),
        ("person", &new.person),
        ("created_by", &new.created_by),
    ] {
        if value.trim().is_empty() {
            return Err(StoreError::Invalid(format!("override {field} is empty")));
        }
        if value.contains('\0') {
            return Err(StoreError::Invalid(format!(
                "override {field} contains a NUL character"
            )));
        }
    }
    if new.end <= new.start {
        return Err(StoreError::Invalid(format!(
            "the override ends ({}) at or before it starts ({})",
            stamp(new.end),
            stamp(new.start)
        )));
    }
    Ok(())
}

/// The refusal for an override that overlaps `existing`.
pub(crate) fn overlap(existing: &Override) -> StoreError {
    StoreError::Conflict(format!(
        "overlaps override {} ({}, {} – {})",
        existing.id,
        existing.person,
        stamp(existing.start),
        stamp(existing.end)
    ))
}

pub(crate) fn unknown_override(id: i64) -> StoreError {
    StoreError::NotFound(format!("no override {id}"))
}

/// A fresh secret: 32 random bytes as hex.
pub(crate) fn new_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}
