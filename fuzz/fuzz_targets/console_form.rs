//! Fuzzes what the console reads out of a posted form: the urlencoded fields, the times typed
//! into them (as UTC and in zones with DST and half-hour shifts), the zone name, incident ids
//! and the role, state and severity words. Any bytes must give a value or `None`/an error,
//! never a panic. Replayed by `crates/keel-server/tests/fuzz_replay.rs`.

#![no_main]

use keel_core::assess::Severity;
use keel_core::incident::{IncidentRole, IncidentState};
use keel_server::console::form::{incident_id, utc_time, zoned_time, Form};
use libfuzzer_sys::fuzz_target;

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

fuzz_target!(|data: &[u8]| {
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
