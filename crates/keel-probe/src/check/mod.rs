//! The checks a monitor runs. Each yields an [`Outcome`](crate::Outcome) with a reason a
//! human understands.
