//! The health of anything Keel watches.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Health of a monitor, vendor or intake source.
///
/// `Unknown` is distinct from `Down`: it means Keel could not tell (vendor page unreachable or
/// malformed, no check run yet), and must never page anyone by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Up,
    Degraded,
    Down,
    Unknown,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Degraded => "degraded",
            Health::Down => "down",
            Health::Unknown => "unknown",
        }
    }

    /// Whether this health counts as a failure for confirmation and uptime.
    pub fn is_failing(self) -> bool {
        matches!(self, Health::Down | Health::Degraded)
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Health {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "up" => Ok(Health::Up),
            "degraded" => Ok(Health::Degraded),
            "down" => Ok(Health::Down),
            "unknown" => Ok(Health::Unknown),
            other => Err(format!(
                "unknown health {other:?}: expected up, degraded, down or unknown"
            )),
        }
    }
}
