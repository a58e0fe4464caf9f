//! Fuzzes vendor status parsing: any bytes, under every format, with and without followed
//! components, must give a status or a `VendorError`, never a panic. Replayed by
//! `crates/keel-probe/tests/fuzz_replay.rs`.

#![no_main]

use keel_core::config::VendorFormat;
use libfuzzer_sys::fuzz_target;

const FORMATS: [VendorFormat; 7] = [
    VendorFormat::Auto,
    VendorFormat::Statuspage,
    VendorFormat::StatusIo,
    VendorFormat::Slack,
    VendorFormat::Instatus,
    VendorFormat::GoogleCloud,
    VendorFormat::Heroku,
];

fuzz_target!(|data: &[u8]| {
    // Every format on every input, rather than a selector byte, so real status documents work
    // as seeds unchanged.
    let follow = ["API".to_string(), "packages".to_string()];
    for format in FORMATS {
        for wanted in [&[][..], &follow[..]] {
            match keel_probe::status_pages::parse(format, data, wanted) {
                // The reason is bounded whatever the document holds.
                Ok(status) => assert!(status.reason.chars().count() <= 1000),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
});
