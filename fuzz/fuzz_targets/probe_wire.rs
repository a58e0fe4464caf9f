//! Fuzzes the remote-probe wire form, both ways: a results post as the server reads it, and an
//! assignments answer as a probe reads it and turns into monitors. Any bytes must give a value
//! or an error, never a panic. Replayed by `crates/keel-probe/tests/fuzz_replay.rs`.

#![no_main]

use keel_probe::remote::{is_probe_location, Assignments, Results};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(results) = serde_json::from_slice::<Results>(data) {
        let _ = is_probe_location(&results.location);
    }
    if let Ok(assignments) = serde_json::from_slice::<Assignments>(data) {
        for a in &assignments.monitors {
            if let Ok(m) = a.to_monitor("osaka") {
                assert!(!m.interval.is_zero() && !m.timeout.is_zero());
            }
        }
    }
});
