//! Replays every kept fuzz input of keel-core's parsers — the seed corpus under
//! `fuzz/corpus/<target>` and every crash ever found under `fuzz/artifacts/<target>` — through
//! the same calls as the fuzz targets in `fuzz/fuzz_targets/`, so an ordinary `cargo test`
//! (and CI) keeps checking them on stable without a fuzzer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
