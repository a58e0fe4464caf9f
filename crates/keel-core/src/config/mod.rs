//! Configuration: parsing `keel.toml` (layered with `KEEL_` environment variables) into the
//! typed [`Config`], reporting every problem at once with file, line and a hint.
//!
//! The work is split so each part can be read and tested on its own: `parse.rs` and
//! `monitor.rs` walk the TOML document, `read.rs` turns items into typed values, `values.rs`
//! holds the pure value parsers, `env.rs` the `KEEL_` layer, `validate.rs` the
//! cross-reference and cycle checks, and `suggest.rs` the did-you-mean.

mod env;
mod keys;
mod model;
mod monitor;
mod parse;
mod position;
mod read;
mod suggest;
mod team;
mod team_parse;
mod validate;
mod values;

pub use model::*;
pub use parse::parse;
pub use team::*;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the problem has no place in the file (an environment variable),
    /// in which case `file` is [`ENV_FILE`].
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            // No place in a file (an environment variable): `file` says where instead.
            write!(f, "{}: {}", self.file, self.message)?;
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// The known name closest to `word`, when one is close enough to be a likely typo (for
/// did-you-mean hints outside the config, such as template placeholders).
pub(crate) fn closest_name<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    suggest::closest(word, candidates.iter().copied())
}

/// The `file` of diagnostics about `KEEL_` environment variables.
pub const ENV_FILE: &str = "environment";

/// The commented example config written by `keel init`.
pub const EXAMPLE: &str = include_str!("../../../../keel.example.toml");

/// Every key of every table, as `table.key` (`monitor.url`, `intake.route.labels`), for
/// documentation checks and shell completion.
pub fn known_keys() -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |table: &str, ks: &[&str]| {
        for k in ks {
            let key = format!("{table}.{k}");
            if !out.contains(&key) {
                out.push(key);
            }
        }
    };
    for (t, ks) in keys::SINGLE_TABLES {
        add(t, ks);
    }
    add("intake.route", keys::INTAKE_ROUTE);
    add("notify.channel", keys::NOTIFY_CHANNEL);
    add("component", keys::COMPONENT);
    add("vendor", keys::VENDOR);
    add("infra", keys::INFRA);
    add("runbook", keys::RUNBOOK);
    add("runbook.steps", keys::RUNBOOK_STEP);
    add("templates.opened", keys::TEMPLATE);
    add("monitor", keys::MONITOR_COMMON);
    add("person", team_parse::PERSON);
    add("person.contacts", team_parse::CONTACT);
    add("schedule", team_parse::SCHEDULE);
    add("escalation", team_parse::ESCALATION);
    add("escalation.levels", team_parse::LEVEL);
    for kind in keys::MONITOR_KINDS {
        add("monitor", keys::kind_keys(kind));
    }
    out
}
