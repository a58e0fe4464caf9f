//! Replays every kept fuzz input of the console's form reading — the seed corpus under
//! `fuzz/corpus/console_form` and every crash ever found under `fuzz/artifacts/console_form` —
//! through the same calls as `fuzz/fuzz_targets/console_form.rs`, so an ordinary `cargo test`
//! (and CI) keeps checking them on stable without a fuzzer.

#[path = "../../../fuzz/replay.rs"]
mod replay;
use replay::replay;

use keel_core::assess::Severity;
use keel_core::incident::{IncidentRole, IncidentState};
use keel_server::console::form::{incident_id, utc_time, zoned_time, Form};

fn value(v: &str) {
    let _ = utc_time(v);
    for zone in [
        chrono_tz::UTC,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Pacific::Apia,
    ] {
        let _ = zoned_time(v, zone);
    }
    if let Ok(zone) = v.parse::<chrono_tz::Tz>() {
        let _ = zoned_time("2026-03-29T02:30", zone);
    }
    let _ = incident_id(v);
    let _ = v.parse::<IncidentRole>().map_err(|e| e.to_string());
    let _ = v.parse::<IncidentState>().map_err(|e| e.to_string());
    let _ = v.parse::<Severity>().map_err(|e| e.to_string());
}

/// `fuzz_targets/console_form.rs`
#[test]
fn console_form_corpus_and_crashes_replay() {
    replay("console_form", |data| {
        value(&String::from_utf8_lossy(data));
        let form = Form::parse(data);
        for key in [
            "from", "until", "start", "end", "zone", "id", "role", "to", "severity",
        ] {
            if let Some(v) = form.get(key) {
                value(v);
            }
        }
        let _ = form.all("component").count();
    });
}

// --- Replay machinery (the same few lines in each crate's fuzz_replay.rs) ----------------------
