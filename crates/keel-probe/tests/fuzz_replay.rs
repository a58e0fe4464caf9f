//! Replays every kept fuzz input of keel-probe's parsers — the seed corpus under
//! `fuzz/corpus/<target>` and every crash ever found under `fuzz/artifacts/<target>` — through
//! the same calls as the fuzz targets in `fuzz/fuzz_targets/`, so an ordinary `cargo test`
//! (and CI) keeps checking them on stable without a fuzzer.

#[path = "../../../fuzz/replay.rs"]
mod replay;
use replay::replay;

use keel_core::config::VendorFormat;
use keel_probe::remote::{is_probe_location, Assignments, Results};
// The one line to change if the vendor module moves.
use keel_probe::status_pages::parse as parse_vendor_status;

const FORMATS: [VendorFormat; 7] = [
    VendorFormat::Auto,
    VendorFormat::Statuspage,
    VendorFormat::StatusIo,
    VendorFormat::Slack,
    VendorFormat::Instatus,
    VendorFormat::GoogleCloud,
    VendorFormat::Heroku,
];

/// `fuzz_targets/vendor_status.rs`
#[test]
fn vendor_status_corpus_and_crashes_replay() {
    replay("vendor_status", |data| {
        let follow = ["API".to_string(), "packages".to_string()];
        for format in FORMATS {
            for wanted in [&[][..], &follow[..]] {
                match parse_vendor_status(format, data, wanted) {
                    Ok(status) => assert!(status.reason.chars().count() <= 1000),
                    Err(e) => assert!(!e.to_string().is_empty()),
                }
            }
        }
    });
}

/// `fuzz_targets/probe_wire.rs`
#[test]
fn probe_wire_corpus_and_crashes_replay() {
    replay("probe_wire", |data| {
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
}

// --- Replay machinery (the same few lines in each crate's fuzz_replay.rs) ----------------------
