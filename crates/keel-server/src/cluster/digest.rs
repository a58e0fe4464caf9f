//! What instances on one database must agree on: a digest of each part of the config, so an
//! instance started with a different config is refused with the parts that differ named,
//! rather than two instances judging the same outage by different rules.
//!
//! `[server]` is left out (each instance listens on its own address). Secrets never enter a
//! digest: their `Debug` is redacted.

use std::collections::BTreeMap;
use std::fmt::Debug;

use keel_core::config::Config;
use sha2::{Digest, Sha256};

fn digest(item: &impl Debug) -> String {
    hex::encode(&Sha256::digest(format!("{item:?}").as_bytes())[..8])
}

/// One digest per monitor, component, vendor, infra node, runbook, person, schedule and
/// escalation policy, and per table, named as an operator would look them up.
pub fn config_digest(config: &Config) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for m in &config.monitors {
        out.insert(format!("monitor {}", m.id), digest(m));
    }
    for c in &config.components {
        out.insert(format!("component {}", c.id), digest(c));
    }
    for v in &config.vendors {
        out.insert(format!("vendor {}", v.id), digest(v));
    }
    for i in &config.infra {
        out.insert(format!("infra {}", i.id), digest(i));
    }
    for r in &config.runbooks {
        out.insert(format!("runbook {}", r.id), digest(r));
    }
    for p in &config.people {
        out.insert(format!("person {}", p.id), digest(p));
    }
    for s in &config.schedules {
        out.insert(format!("schedule {}", s.id), digest(s));
    }
    for e in &config.escalations {
        out.insert(format!("escalation {}", e.id), digest(e));
    }
    let tables: [(&str, String); 12] = [
        ("[page]", digest(&config.page)),
        ("[incidents]", digest(&config.incidents)),
        ("[severity]", digest(&config.severity)),
        ("[notify]", digest(&config.notify)),
        ("[intake]", digest(&config.intake)),
        ("[storage]", digest(&config.storage)),
        ("[scheduler]", digest(&config.scheduler)),
        ("[cluster]", digest(&config.cluster)),
        ("[disclosure]", digest(&config.disclosure)),
        ("[templates]", digest(&config.templates)),
        ("[paging]", digest(&config.paging)),
        // The order of components decides the page's order.
        (
            "component order",
            digest(&config.components.iter().map(|c| &c.id).collect::<Vec<_>>()),
        ),
    ];
    for (name, d) in tables {
        out.insert(name.to_string(), d);
    }
    out
}

/// The parts that differ between this instance's config and a running one's, in words.
pub fn differences(
    mine: &BTreeMap<String, String>,
    theirs: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, d) in mine {
        match theirs.get(name) {
            None => out.push(format!("{name} is only in this config")),
            Some(t) if t != d => out.push(format!("{name} differs")),
            Some(_) => {}
        }
    }
    for name in theirs.keys().filter(|n| !mine.contains_key(*n)) {
        out.push(format!("{name} is only in the running instance's config"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        keel_core::config::parse(text, "keel.toml", &[]).expect("config parses")
    }

    const BASE: &str = r#"
[[component]]
id = "api"
name = "API"

[[monitor]]
id = "api-http"
component = "api"
kind = "http"
url = "http://127.0.0.1:9/"
"#;

    #[test]
    fn the_same_config_on_another_port_agrees() {
        let a = config(BASE);
        let mut b = config(&format!("[server]\nlisten = \"127.0.0.1:9999\"\n{BASE}"));
        b.server.data_dir = "/elsewhere".into();
        assert!(differences(&config_digest(&a), &config_digest(&b)).is_empty());
    }

    #[test]
    fn names_what_differs() {
        let a = config(BASE);
        let b = config(&format!(
            "{}\ninterval = \"1m\"\n[[monitor]]\nid = \"extra\"\ncomponent = \"api\"\nkind = \"http\"\nurl = \"http://127.0.0.1:9/x\"\n[cluster]\nlease = \"9s\"\n",
            BASE.trim_end()
        ));
        let d = differences(&config_digest(&b), &config_digest(&a));
        assert_eq!(
            d,
            vec![
                "[cluster] differs",
                "monitor api-http differs",
                "monitor extra is only in this config",
            ],
            "{d:?}"
        );
        let back = differences(&config_digest(&a), &config_digest(&b));
        assert!(
            back.contains(&"monitor extra is only in the running instance's config".to_string())
        );
    }
}
