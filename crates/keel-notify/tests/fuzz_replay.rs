//! Replays every kept fuzz input of the subscription checks — the seed corpus under
//! `fuzz/corpus/subscribe` and every crash ever found under `fuzz/artifacts/subscribe` —
//! through the same calls as `fuzz/fuzz_targets/subscribe.rs`, so an ordinary `cargo test`
//! (and CI) keeps checking them on stable without a fuzzer.

#[path = "../../../fuzz/replay.rs"]
mod replay;
use replay::replay;

use keel_notify::{email, guard};

fn check(value: &str) {
    if let Err(e) = email::validate(value) {
        assert!(!e.to_string().is_empty());
    }
    for allow_private in [false, true] {
        match guard::check_url(value, allow_private) {
            Ok(url) => assert!(matches!(url.scheme(), "http" | "https")),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}

/// `fuzz_targets/subscribe.rs`
#[test]
fn subscribe_corpus_and_crashes_replay() {
    replay("subscribe", |data| {
        check(&String::from_utf8_lossy(data));
        for (key, value) in url::form_urlencoded::parse(data) {
            if key == "email" || key == "webhook" {
                check(&value);
            }
        }
    });
}

// --- Replay machinery (the same few lines in each crate's fuzz_replay.rs) ----------------------
