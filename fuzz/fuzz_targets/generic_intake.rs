//! Fuzzes Keel's generic JSON intake parser: any bytes must give events or an `IntakeError`
//! naming a field, never a panic. Replayed by `crates/keel-core/tests/fuzz_replay.rs`.

#![no_main]

use keel_core::intake::parse_generic;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match parse_generic(data) {
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
    }
});
