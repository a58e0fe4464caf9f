//! Numbers and durations written for people, the same way in every crate: user counts with
//! their thousands grouped ("15,000") and durations the way `keel.toml` spells them ("1m 30s").
//!
//! Reasons, log lines and pages all go through these, so a monitor's reason reads the same
//! whichever timeout fired and a duration in a message can be pasted back into the config.
//! (An incident's length on its timeline and postmortem is rounded to two units instead:
//! `incident::words::duration`.)

use std::time::Duration;

/// A duration as the config spells one: "0s", "500ms", "1s 500ms", "1m 30s", "1h", "2d 3h".
///
/// Exact to the millisecond (finer parts are dropped) and without zero parts ("1h", not
/// "1h 0m 0s"); units d, h, m, s and ms, largest first, each at most once. Every result parses
/// back to the same duration as a config value. Anything under a millisecond is "0s".
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_string();
    }
    let parts = [
        (ms / 86_400_000, "d"),
        (ms / 3_600_000 % 24, "h"),
        (ms / 60_000 % 60, "m"),
        (ms / 1000 % 60, "s"),
        (ms % 1000, "ms"),
    ];
    let mut out = String::new();
    for (n, unit) in parts {
        if n > 0 {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&n.to_string());
            out.push_str(unit);
        }
    }
    out
}

/// 15000 → "15,000" (English and Japanese group digits the same way).
pub fn thousands(n: impl Into<u128>) -> String {
    let digits = n.into().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> String {
        duration(Duration::from_millis(n))
    }

    fn secs(n: u64) -> String {
        duration(Duration::from_secs(n))
    }

    #[test]
    fn durations_read_like_config() {
        assert_eq!(secs(0), "0s");
        assert_eq!(duration(Duration::from_micros(999)), "0s");
        assert_eq!(ms(1), "1ms");
        assert_eq!(ms(300), "300ms");
        assert_eq!(ms(500), "500ms");
        assert_eq!(secs(1), "1s");
        assert_eq!(ms(1500), "1s 500ms");
        assert_eq!(ms(12_500), "12s 500ms");
        assert_eq!(duration(Duration::from_micros(812_400)), "812ms");
        assert_eq!(secs(5), "5s");
        assert_eq!(secs(60), "1m");
        assert_eq!(secs(90), "1m 30s");
        assert_eq!(secs(3600), "1h");
        assert_eq!(secs(5400), "1h 30m");
        assert_eq!(secs(3605), "1h 5s");
        assert_eq!(secs(7200), "2h");
        assert_eq!(secs(86_400), "1d");
        assert_eq!(secs(2 * 86_400 + 3 * 3600), "2d 3h");
        assert_eq!(ms(90_061_001), "1d 1h 1m 1s 1ms");
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0u64), "0");
        assert_eq!(thousands(999u64), "999");
        assert_eq!(thousands(1000u64), "1,000");
        assert_eq!(thousands(15_000u64), "15,000");
        assert_eq!(thousands(1_234_567u64), "1,234,567");
        assert_eq!(thousands(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(
            thousands(u128::MAX),
            "340,282,366,920,938,463,463,374,607,431,768,211,455"
        );
    }
}
