//! Assessment: from the current health of every node in the dependency graph to causes,
//! impact, severity and an ETA. Pure functions of their inputs.
//!
//! The model types live in `model.rs`; the graph, the cause finding, impact, severity rules
//! and the ETA estimate each get a module of their own.

mod model;

pub use model::*;
