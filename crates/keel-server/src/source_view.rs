//! One source's state as Keel shows it: what the hub's snapshot holds, and what
//! `/api/v1/monitors` and `/metrics` show.

use chrono::{DateTime, Utc};
use keel_core::{Health, SourceKind};
use serde::Serialize;

/// A source as `GET /api/v1/monitors` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    pub kind: SourceKind,
    pub id: String,
    /// Monitor kind ("http", "tcp", …), "vendor", or the intake format.
    pub check: String,
    pub component: String,
    pub state: Health,
    pub since: DateTime<Utc>,
    pub reason: String,
    pub latency_ms: Option<u64>,
    pub last_checked: Option<DateTime<Utc>>,
    /// True while a failure is seen but not yet confirmed.
    pub confirming: bool,
}
