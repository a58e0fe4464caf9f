//! The replay harness shared by every crate's `tests/fuzz_replay.rs` (included with
//! `#[path]`): each fuzz target's corpus and kept crashes run as ordinary tests.

use std::path::{Path, PathBuf};

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
pub fn replay(target: &str, body: impl Fn(&[u8]) + std::panic::RefUnwindSafe) {
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
