//! Fuzzes the `keel.toml` parser: any text must give a `Config` or diagnostics that can be
//! shown, never a panic. (The file is read as UTF-8 before parsing, so other bytes never get
//! this far.) Replayed by `crates/keel-core/tests/fuzz_replay.rs`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(diagnostics) = keel_core::config::parse(text, "keel.toml", &[]) {
        assert!(!diagnostics.is_empty());
        for d in &diagnostics {
            let _ = d.to_string();
        }
    }
});
