//! Signals: the single stream of state changes that assessment consumes.
//!
//! Monitors, vendor pollers and alert intake all speak in signals, so assessment
//! ([`crate::assess`]) has one input whatever the origin.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::NodeId;
use crate::source_key::SourceKey;
use crate::Health;

/// Where a signal came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Monitor,
    Vendor,
    Intake,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Monitor => "monitor",
            SourceKind::Vendor => "vendor",
            SourceKind::Intake => "intake",
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SourceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "monitor" => Ok(SourceKind::Monitor),
            "vendor" => Ok(SourceKind::Vendor),
            "intake" => Ok(SourceKind::Intake),
            other => Err(format!("unknown signal source {other:?}")),
        }
    }
}

/// One confirmed change of health of one source.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// The monitor (at its location), vendor, or intake alert the change was seen by.
    pub source: SourceKey,
    /// The component (or vendor node) in the dependency graph this signal speaks about.
    pub component: NodeId,
    pub health: Health,
    /// Why, in words a human understands ("HTTP 503", "timed out after 5s").
    pub reason: String,
    pub at: DateTime<Utc>,
}
