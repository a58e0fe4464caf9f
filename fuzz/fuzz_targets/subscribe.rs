//! Fuzzes what checks a visitor's subscription (`POST /subscribe` and
//! `POST /api/v1/subscribers`): the email address and webhook URL validators, on the fields of
//! the input read as a form and on the whole input as one value. Any bytes must give a value
//! or an error that can be shown, never a panic. Replayed by
//! `crates/keel-notify/tests/fuzz_replay.rs`.

#![no_main]

use keel_notify::{email, guard};
use libfuzzer_sys::fuzz_target;

fn check(value: &str) {
    if let Err(e) = email::validate(value) {
        let _ = e.to_string();
    }
    for allow_private in [false, true] {
        match guard::check_url(value, allow_private) {
            Ok(url) => assert!(matches!(url.scheme(), "http" | "https")),
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
    for (key, value) in url::form_urlencoded::parse(data) {
        if key == "email" || key == "webhook" {
            check(&value);
        }
    }
});
