//! The `KEEL_` environment layer: `KEEL_<TABLE>__<KEY>=value` overrides `[table] key`.
//!
//! Core never reads the environment itself; the caller passes it in, so this is a pure
//! function of its input and tests need not touch the process environment. Only single
//! tables can be set this way (one variable cannot describe an array of tables). Variables
//! that do not follow the `TABLE__KEY` shape (`KEEL_ADMIN_TOKEN`, `KEEL_CONFIG`, `KEEL_LOG`)
//! belong to other parts of Keel and are left alone; a variable that names a known table but
//! an unknown key is reported, since it is almost certainly a typo that would otherwise be
//! silently ignored.

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
            let Some((table, key)) = rest.split_once("__") else {
                continue;
            };
            let table = table.to_ascii_lowercase();
            let key = key.to_ascii_lowercase();
            let Some(&(table, table_keys)) = keys::SINGLE_TABLES.iter().find(|(t, _)| *t == table)
            else {
                continue;
            };
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

    pub fn get(&self, table: &str, key: &str) -> Option<&EnvValue> {
        self.values
            .iter()
            .find(|((t, k), _)| *t == table && *k == key)
            .map(|(_, v)| v)
    }
}

/// The variable that sets `[table] key`.
pub(crate) fn env_name(table: &str, key: &str) -> String {
    format!(
        "KEEL_{}__{}",
        table.to_ascii_uppercase(),
        key.to_ascii_uppercase()
    )
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
    fn names() {
        assert_eq!(
            env_name("server", "database_url"),
            "KEEL_SERVER__DATABASE_URL"
        );
    }
}
