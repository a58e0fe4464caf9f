//! Runs every monitor and vendor poll on its own schedule.
