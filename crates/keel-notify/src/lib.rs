//! Keel's notifications.
