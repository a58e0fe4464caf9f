//! Keel's pure domain.
//!
//! Everything here is a function of its inputs: no I/O, no async, no clock reads. Time enters
//! as values (`at` fields) so that every rule can be tested exhaustively and replayed from
//! stored events. The edges (probes, stores, web) live in the other crates.

pub mod assess;
pub mod config;
pub mod confirm;
pub mod escalation;
pub mod health;
pub mod human;
pub mod ids;
pub mod incident;
pub mod intake;
pub mod oncall;
pub mod public;
pub mod quorum;
pub mod rollup;
pub mod signal;
pub mod source_key;

pub use health::Health;
pub use ids::{ComponentId, MonitorId, NodeId, VendorId};
pub use signal::{Signal, SourceKind};
pub use source_key::{SourceKey, SourceKeyError};
