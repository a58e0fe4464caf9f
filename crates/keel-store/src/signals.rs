//! What checks leave behind: signals (state changes, in order), the state of every monitored
//! source, and per-minute and per-day rollups of the checks themselves.
//!
//! Signals are appended and read back by sequence number; source states are replaced whole;
//! rollups merge into what is stored (see [`SignalStore::add_rollups`]).

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use keel_core::confirm::Tracker;
use keel_core::rollup::MinuteRollup;
use keel_core::{NodeId, Signal, SourceKey};

use crate::shared::{parse_health, parse_node, parse_source, parse_stored, to_u32, to_u64, Stamp};
use crate::Result;

/// A stored signal with its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSignal {
    pub seq: i64,
    pub signal: Signal,
}

/// The persisted state of one monitored source (monitor or vendor).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceState {
    /// Stored as a kind and an id column ([`SourceKey::parse`]).
    pub key: SourceKey,
    /// The graph node the source speaks about (kept so an intake alert restored after a
    /// restart still knows its component).
    pub component: NodeId,
    pub tracker: Tracker,
}

/// Uptime of one component on one UTC day, from the rollups.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyUptime {
    pub component: NodeId,
    pub day: NaiveDate,
    pub checks: u64,
    pub failures: u64,
}

impl DailyUptime {
    /// Share of successful checks, 0.0–1.0; `None` without checks.
    pub fn ratio(&self) -> Option<f64> {
        (self.checks > 0).then(|| (self.checks - self.failures) as f64 / self.checks as f64)
    }
}

/// Signals, source states and rollups: what the checks write and the status page and the
/// incident book read back.
#[async_trait]
pub trait SignalStore: Send + Sync {
    /// Appends a signal; returns its sequence number (strictly increasing).
    async fn append_signal(&self, signal: &Signal) -> Result<i64>;

    /// Signals with `seq > after`, oldest first, at most `limit`.
    async fn signals_after(&self, after: i64, limit: u32) -> Result<Vec<StoredSignal>>;

    /// Inserts or replaces the state of one source.
    async fn save_source_state(&self, state: &SourceState) -> Result<()>;

    /// Appends signals (in the order given) and saves source states (a later state of the
    /// same source wins) in one transaction: thousands of monitors starting, or failing
    /// together, cost one commit instead of two each.
    async fn save_signals_and_states(
        &self,
        signals: &[Signal],
        states: &[SourceState],
    ) -> Result<()>;

    /// Every stored source state.
    async fn load_source_states(&self) -> Result<Vec<SourceState>>;

    /// Adds minute rollups. A second write for the same (monitor, minute) merges into it
    /// (checks and failures add up, max takes the larger, percentiles the later value), and
    /// the per-day totals of the component are updated in the same transaction.
    async fn add_rollups(&self, rollups: &[MinuteRollup]) -> Result<()>;

    /// Minute rollups of one source with `from <= minute < to`, oldest first.
    async fn rollups(
        &self,
        source: &SourceKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<MinuteRollup>>;

    /// Per-day uptime of a component for days `from..=to` that have checks, oldest first.
    async fn daily_uptime(
        &self,
        component: &NodeId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DailyUptime>>;

    /// Deletes minute rollups older than `minute_before` and daily rows older than
    /// `day_before`; returns the number of rows removed.
    async fn prune_rollups(
        &self,
        minute_before: DateTime<Utc>,
        day_before: NaiveDate,
    ) -> Result<u64>;
}

// Rows as both backends read them; `T` is how a backend stores a time (see [`Stamp`]). Each
// tuple follows the column list next to it.

pub(crate) const SIGNAL_COLUMNS: &str =
    "seq, source_kind, source_id, component, health, reason, at";
pub(crate) type SignalRow<T> = (i64, String, String, String, String, String, T);

pub(crate) fn decode_signal<T: Stamp>(row: SignalRow<T>) -> Result<StoredSignal> {
    let (seq, kind, source_id, component, health, reason, at) = row;
    Ok(StoredSignal {
        seq,
        signal: Signal {
            source: parse_source("signals", &kind, &source_id, "source_id")?,
            component: parse_node("signals.component", &component)?,
            health: parse_health(&health)?,
            reason,
            at: at.time()?,
        },
    })
}

pub(crate) const STATE_COLUMNS: &str =
    "kind, id, component, health, since, reason, latency_ms, last_checked, streak, pending";
pub(crate) type StateRow<T> = (
    String,
    String,
    String,
    String,
    T,
    String,
    Option<i64>,
    Option<T>,
    i64,
    Option<String>,
);

pub(crate) fn decode_state<T: Stamp>(row: StateRow<T>) -> Result<SourceState> {
    let (kind, id, component, health, since, reason, latency_ms, last_checked, streak, pending) =
        row;
    Ok(SourceState {
        key: parse_source("source_states", &kind, &id, "id")?,
        component: parse_node("source_states.component", &component)?,
        tracker: Tracker {
            health: parse_health(&health)?,
            since: since.time()?,
            reason,
            latency_ms: latency_ms.map(|v| to_u64(v, "latency")).transpose()?,
            last_checked: last_checked.map(Stamp::time).transpose()?,
            streak: to_u32(streak, "streak")?,
            streak_since: None,
            pending: pending.as_deref().map(parse_health).transpose()?,
        },
    })
}

pub(crate) const MINUTE_COLUMNS: &str =
    "monitor_id, minute, component, checks, failures, p50_ms, p95_ms, max_ms";
pub(crate) type MinuteRow<T> = (String, T, String, i64, i64, i64, i64, i64);

pub(crate) fn decode_minute<T: Stamp>(row: MinuteRow<T>) -> Result<MinuteRollup> {
    let (monitor_id, minute, component, checks, failures, p50, p95, max) = row;
    Ok(MinuteRollup {
        source: parse_stored(
            "rollups_minute.monitor_id",
            &monitor_id,
            SourceKey::parse_rollup,
        )?,
        component: parse_node("rollups_minute.component", &component)?,
        minute: minute.time()?,
        checks: to_u32(checks, "checks")?,
        failures: to_u32(failures, "failures")?,
        latency_p50_ms: to_u32(p50, "p50")?,
        latency_p95_ms: to_u32(p95, "p95")?,
        latency_max_ms: to_u32(max, "max")?,
    })
}

pub(crate) const DAY_COLUMNS: &str = "component, day, checks, failures";
pub(crate) type DayRow = (String, NaiveDate, i64, i64);

pub(crate) fn decode_day(row: DayRow) -> Result<DailyUptime> {
    let (component, day, checks, failures) = row;
    Ok(DailyUptime {
        component: parse_node("rollups_daily.component", &component)?,
        day,
        checks: to_u64(checks, "checks")?,
        failures: to_u64(failures, "failures")?,
    })
}
