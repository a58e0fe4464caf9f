//! Replays every kept fuzz input of keel-core's parsers — the seed corpus under
//! `fuzz/corpus/<target>` and every crash ever found under `fuzz/artifacts/<target>` — through
//! the same calls as the fuzz targets in `fuzz/fuzz_targets/`, so an ordinary `cargo test`
//! (and CI) keeps checking them on stable without a fuzzer.

#[path = "../../../fuzz/replay.rs"]
mod replay;
use replay::replay;

use std::collections::BTreeMap;

use keel_core::config::{IntakeConfig, IntakeRoute};
use keel_core::intake::{parse_alertmanager, parse_generic, route};
use keel_core::ComponentId;

/// `fuzz_targets/config.rs`
#[test]
fn config_corpus_and_crashes_replay() {
    replay("config", |data| {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        if let Err(diagnostics) = keel_core::config::parse(text, "keel.toml", &[]) {
            assert!(!diagnostics.is_empty());
            for d in &diagnostics {
                assert!(!d.message.is_empty());
                let _ = d.to_string();
            }
        }
    });
}

/// `fuzz_targets/alertmanager.rs`
#[test]
fn alertmanager_corpus_and_crashes_replay() {
    replay("alertmanager", |data| {
        let alerts = match parse_alertmanager(data) {
            Ok(alerts) => alerts,
            Err(e) => {
                assert!(!e.reason.is_empty());
                let _ = e.to_string();
                return;
            }
        };
        assert!(!alerts.is_empty());
        let mut labels = BTreeMap::new();
        labels.insert("team".to_string(), "core".to_string());
        let cfg = IntakeConfig {
            component_label: "component".to_string(),
            routes: vec![IntakeRoute {
                labels,
                component: ComponentId::parse("api").expect("valid id"),
            }],
            max_body_bytes: 1 << 20,
        };
        for alert in &alerts {
            assert!(!alert.fingerprint.is_empty());
            assert!(!alert.summary.is_empty());
            let _ = route(&alert.labels, &cfg, &|c: &str| c == "checkout");
        }
    });
}

/// `fuzz_targets/generic_intake.rs`
#[test]
fn generic_intake_corpus_and_crashes_replay() {
    replay("generic_intake", |data| match parse_generic(data) {
        Ok(events) => {
            assert!(!events.is_empty());
            for e in &events {
                assert!(!e.component.trim().is_empty());
                let _ = e.status.health();
            }
        }
        Err(e) => {
            assert!(!e.reason.is_empty());
            let _ = e.to_string();
        }
    });
}

// --- Replay machinery (the same few lines in each crate's fuzz_replay.rs) ----------------------
