//! Paging the team: the escalation job that carries out what the pure engine
//! (`keel_core::escalation`) plans, the pages it queues in the outbox, and the signed links
//! that acknowledge them.

pub mod job;
pub mod link;
pub mod pages;
pub mod roster;
