//! Placeholder while the snapshot builder is written.
