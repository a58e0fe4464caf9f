//! One source's state as Keel shows it: what the hub's snapshot holds, and what
//! `/api/v1/monitors` and `/metrics` show.

use chrono::{DateTime, Utc};
use keel_core::{Health, NodeId, SourceKey, SourceKind};
use serde::{Serialize, Serializer};

/// A source as `GET /api/v1/monitors` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SourceView {
    /// Shown as `kind` and `id`, as the store keeps it.
    #[serde(flatten, serialize_with = "kind_and_id")]
    pub key: SourceKey,
    /// Monitor kind ("http", "tcp", …), "vendor", or the intake format.
    pub check: String,
    pub component: NodeId,
    pub state: Health,
    pub since: DateTime<Utc>,
    pub reason: String,
    pub latency_ms: Option<u64>,
    pub last_checked: Option<DateTime<Utc>>,
    /// True while a failure is seen but not yet confirmed.
    pub confirming: bool,
}

fn kind_and_id<S: Serializer>(key: &SourceKey, s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct KindAndId {
        kind: SourceKind,
        id: String,
    }
    KindAndId {
        kind: key.kind(),
        id: key.id(),
    }
    .serialize(s)
}
