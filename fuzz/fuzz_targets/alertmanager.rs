//! Fuzzes the Alertmanager / Grafana webhook parser and the router behind it: any bytes must
//! give alerts or an `IntakeError` naming a field, never a panic. Replayed by
//! `crates/keel-core/tests/fuzz_replay.rs`.

#![no_main]

use std::collections::BTreeMap;

use keel_core::config::{IntakeConfig, IntakeRoute};
use keel_core::intake::{parse_alertmanager, route};
use keel_core::ComponentId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let alerts = match parse_alertmanager(data) {
        Ok(alerts) => alerts,
        Err(e) => {
            // Every refusal can be shown to the sender.
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
