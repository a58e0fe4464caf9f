//! Keel's server: the HTTP listener (intake, push, management API, health, metrics) and the
//! jobs behind it (scheduler, signal hub, persistence), started together by
//! [`Application::build`] and stopped together by [`Application::run_until_stopped`].
//!
//! `main`, the CLI and the integration tests all go through `Application`, so tests exercise
//! exactly what users run.

pub mod app;
pub mod book;
pub mod canary;
pub mod cluster;
pub mod console;
pub mod error;
pub mod export;
pub mod fanout;
pub mod health;
pub mod http;
pub mod hub;
pub mod jobs;
pub mod metrics;
pub mod paging;
pub mod persist;
pub mod probes;
pub mod rendered;
pub mod secrets;
pub mod source_view;
pub mod status_page;
pub mod store;
pub mod views;

pub use app::{Application, Options};
