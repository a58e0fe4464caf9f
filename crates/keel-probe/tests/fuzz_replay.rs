//! Replays every kept fuzz input of keel-probe's parsers — the seed corpus under
//! `fuzz/corpus/<target>` and every crash ever found under `fuzz/artifacts/<target>` — through
//! the same calls as the fuzz targets in `fuzz/fuzz_targets/`, so an ordinary `cargo test`
//! (and CI) keeps checking them on stable without a fuzzer.

use std::path::{Path, PathBuf};

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

/// Every input kept for `target`: its corpus (which must not be empty, so this cannot silently
/// test nothing) and its crash artifacts (the directory must exist; it may hold only
/// `.gitkeep`). Hidden files are skipped.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let corpus = fuzz.join("corpus").join(target);
    let artifacts = fuzz.join("artifacts").join(target);
    let mut out = Vec::new();
    collect(&corpus, &mut out);
    assert!(
        !out.is_empty(),
        "no corpus for fuzz target {target} in {}: the replay would test nothing",
        corpus.display()
    );
    assert!(
        artifacts.is_dir(),
        "{} is missing: crashes found by the fuzzer are kept there",
        artifacts.display()
    );
    collect(&artifacts, &mut out);
    out
}

fn collect(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory").path())
        .collect();
    paths.sort();
    for path in paths {
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        if path.is_dir() {
            collect(&path, out);
        } else {
            let bytes = std::fs::read(&path).expect("readable corpus file");
            out.push((path, bytes));
        }
    }
}

/// Runs `body` on every input of `target`, and fails naming every input it panicked on.
fn replay(target: &str, body: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
    let inputs = inputs(target);
    let panicked: Vec<String> = inputs
        .iter()
        .filter(|(_, bytes)| std::panic::catch_unwind(|| body(bytes)).is_err())
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        panicked.is_empty(),
        "fuzz target {target}: {} of {} inputs panicked: {panicked:#?}",
        panicked.len(),
        inputs.len()
    );
}
