//! The `KEEL_` environment layer: `KEEL_<TABLE>__<KEY>=value` overrides `[table] key`.
//!
//! Core never reads the environment itself; the caller passes it in, so this is a pure
//! function of its input and tests need not touch the process environment. Only single
//! tables can be set this way (one variable cannot describe an array of tables). Variables
//! that do not follow the `TABLE__KEY` shape (`KEEL_ADMIN_TOKEN`, `KEEL_CONFIG`, `KEEL_LOG`)
//! belong to other parts of Keel and are left alone; a variable that names a known table but
//! an unknown key is reported, since it is almost certainly a typo that would otherwise be
//! silently ignored. Nested single tables take one more `__`: `KEEL_NOTIFY__SMTP__HOST`.

use std::collections::BTreeMap;

use super::keys;
use super::suggest;
use super::values::Bad;

/// One environment variable that sets a config key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EnvValue {
    /// The variable's name, for messages.
    pub var: String,
    pub text: String,
}

/// The environment variables that apply, by (table, key).
#[derive(Debug, Default)]
pub(crate) struct EnvLayer {
    values: BTreeMap<(&'static str, &'static str), EnvValue>,
}

impl EnvLayer {
    /// Picks out the variables that name config keys; returns problems with the rest of the
    /// `KEEL_TABLE__KEY` ones.
    pub fn collect(env: &[(String, String)]) -> (EnvLayer, Vec<(String, Bad)>) {
        let mut layer = EnvLayer::default();
        let mut problems = Vec::new();
        for (var, text) in env {
            let Some(rest) = var.strip_prefix("KEEL_") else {
                continue;
            };
            let parts: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
            // The longest prefix naming a single table: `NOTIFY__SMTP__HOST` is
            // [notify.smtp] host, `NOTIFY__TIMEOUT` is [notify] timeout.
            let Some((table, table_keys, key)) = (1..parts.len()).rev().find_map(|n| {
                let name = parts[..n].join(".");
                keys::SINGLE_TABLES
                    .iter()
                    .find(|(t, _)| *t == name)
                    .map(|&(t, ks)| (t, ks, parts[n..].join("__")))
            }) else {
                continue;
            };
            if (table, key.as_str()) == ("notify.smtp", "password") {
                problems.push((
                    var.clone(),
                    Bad::new(
                        format!("{var}: [notify.smtp] has no key `password`"),
                        format!("the SMTP password is read from {SMTP_PASSWORD_VAR} (single underscores) or from the file named by password_file"),
                    ),
                ));
                continue;
            }
            let Some(&key) = table_keys.iter().find(|k| **k == key) else {
                let candidates: Vec<String> =
                    table_keys.iter().map(|k| env_name(table, k)).collect();
                let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
                problems.push((
                    var.clone(),
                    Bad::new(
                        format!("{var}: [{table}] has no key `{key}`"),
                        suggest::hint(var, &candidates, "variables for this table"),
                    ),
                ));
                continue;
            };
            if keys::NOT_FROM_ENV.contains(&(table, key)) {
                problems.push((
                    var.clone(),
                    Bad::new(
                        format!("{var}: `{table}.{key}` cannot be set from the environment"),
                        format!("write {} in the config file", keys::file_syntax(table, key)),
                    ),
                ));
                continue;
            }
            layer.values.insert(
                (table, key),
                EnvValue {
                    var: var.clone(),
                    text: text.clone(),
                },
            );
        }
        (layer, problems)
    }

    /// Whether any variable sets a key of `table` (so an absent table still counts as given).
    pub fn sets_table(&self, table: &str) -> bool {
        self.values.keys().any(|(t, _)| *t == table)
    }

    pub fn get(&self, table: &str, key: &str) -> Option<&EnvValue> {
        self.values
            .iter()
            .find(|((t, k), _)| *t == table && *k == key)
            .map(|(_, v)| v)
    }
}

/// The variable that sets `[table] key` (`[notify.smtp] host`: `KEEL_NOTIFY__SMTP__HOST`).
pub(crate) fn env_name(table: &str, key: &str) -> String {
    format!(
        "KEEL_{}__{}",
        table.to_ascii_uppercase().replace('.', "__"),
        key.to_ascii_uppercase()
    )
}

/// The SMTP password. Not a `TABLE__KEY` variable: it is a secret, not a config key, and
/// has no counterpart in the file.
pub(crate) const SMTP_PASSWORD_VAR: &str = "KEEL_NOTIFY_SMTP_PASSWORD";

/// The value of `name` in the environment passed to `parse` (the last one wins, as in a
/// shell).
pub(crate) fn lookup<'e>(env: &'e [(String, String)], name: &str) -> Option<&'e str> {
    env.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn picks_config_keys_and_ignores_other_keel_variables() {
        let (layer, problems) = EnvLayer::collect(&env(&[
            ("KEEL_SERVER__LISTEN", "127.0.0.1:9000"),
            ("KEEL_ADMIN_TOKEN", "secret"),
            ("KEEL_ADMIN_TOKEN_FILE", "/run/secret"),
            ("KEEL_CONFIG", "keel.toml"),
            ("KEEL_LOG", "debug"),
            ("KEEL_COMPONENT__ID", "x"),
            ("PATH", "/usr/bin"),
        ]));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            layer.get("server", "listen").map(|v| v.text.as_str()),
            Some("127.0.0.1:9000")
        );
        assert_eq!(layer.values.len(), 1);
    }

    #[test]
    fn a_typo_in_a_known_table_is_reported_with_a_suggestion() {
        let (_, problems) = EnvLayer::collect(&env(&[("KEEL_SERVER__LISTN", "x")]));
        assert_eq!(problems.len(), 1);
        assert_eq!(
            problems[0].1.hint.as_deref(),
            Some("did you mean `KEEL_SERVER__LISTEN`?")
        );
    }

    #[test]
    fn routes_cannot_come_from_the_environment() {
        let (_, problems) = EnvLayer::collect(&env(&[("KEEL_INTAKE__ROUTE", "x")]));
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn nested_tables_take_the_longest_matching_prefix() {
        let (layer, problems) = EnvLayer::collect(&env(&[
            ("KEEL_NOTIFY__SMTP__HOST", "mail.example.com"),
            ("KEEL_NOTIFY__TIMEOUT", "5s"),
            ("KEEL_NOTIFY_SMTP_PASSWORD", "hunter2"),
        ]));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            layer.get("notify.smtp", "host").map(|v| v.text.as_str()),
            Some("mail.example.com")
        );
        assert_eq!(
            layer.get("notify", "timeout").map(|v| v.text.as_str()),
            Some("5s")
        );
        assert!(layer.sets_table("notify.smtp"));
        let (_, problems) = EnvLayer::collect(&env(&[("KEEL_NOTIFY__SMTP__HOTS", "x")]));
        assert_eq!(
            problems[0].1.hint.as_deref(),
            Some("did you mean `KEEL_NOTIFY__SMTP__HOST`?")
        );
        let (_, problems) = EnvLayer::collect(&env(&[("KEEL_NOTIFY__SMTP__PASSWORD", "x")]));
        assert!(problems[0]
            .1
            .hint
            .as_deref()
            .is_some_and(|h| h.contains(SMTP_PASSWORD_VAR)));
        // A key under a table that is not one stays a typo in the outer table.
        let (_, problems) = EnvLayer::collect(&env(&[("KEEL_SERVER__LISTEN__X", "x")]));
        assert_eq!(problems.len(), 1);
    }

    #[test]
    fn names() {
        assert_eq!(
            env_name("server", "database_url"),
            "KEEL_SERVER__DATABASE_URL"
        );
        assert_eq!(env_name("notify.smtp", "host"), "KEEL_NOTIFY__SMTP__HOST");
    }
}
