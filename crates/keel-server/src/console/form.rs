//! What the console reads out of a posted form: the urlencoded fields, and the times and ids
//! typed into them. Pure functions of the visitor's bytes, kept apart from the handlers so they
//! can be tested and fuzzed on their own (`fuzz/fuzz_targets/console_form.rs`).

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use keel_core::incident::IncidentId;

/// A parsed form body: `application/x-www-form-urlencoded` fields, in order.
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Never fails: malformed escapes and invalid UTF-8 are read leniently, as browsers and
    /// the `url` crate do.
    pub fn parse(bytes: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (a field that repeats, as checkboxes do), in order.
    pub fn all<'f>(&'f self, key: &'f str) -> impl Iterator<Item = &'f str> + 'f {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A `datetime-local` value ("2026-12-07T09:00", or with seconds) read as UTC, or an RFC 3339
/// time with its own offset.
pub fn utc_time(s: &str) -> Option<DateTime<Utc>> {
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s.trim(), f).ok())
        .map(|n| n.and_utc())
        .or_else(|| {
            DateTime::parse_from_rfc3339(s.trim())
                .ok()
                .map(|d| d.with_timezone(&Utc))
        })
}

/// A `datetime-local` value read in `zone`. An hour skipped by a DST change has no such
/// time (refused); an hour repeated takes its earlier instance.
pub fn zoned_time(s: &str, zone: chrono_tz::Tz) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    let naive = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|d| d.with_timezone(&Utc))
}

/// An incident id in a console path: a positive integer.
pub fn incident_id(raw: &str) -> Option<IncidentId> {
    raw.parse::<IncidentId>().ok().filter(|id| id.get() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_decoded_and_the_first_of_a_repeated_key_wins() {
        let f = Form::parse(b"csrf=a%2Bb&note=two+words&note=second&bad=%zz&%FF=x");
        assert_eq!(f.get("csrf"), Some("a+b"));
        assert_eq!(f.get("note"), Some("two words"));
        assert_eq!(f.get("bad"), Some("%zz"));
        assert_eq!(f.get("\u{fffd}"), Some("x"));
        assert_eq!(f.get("missing"), None);
        assert_eq!(f.all("note").collect::<Vec<_>>(), ["two words", "second"]);
    }

    #[test]
    fn times_are_read_as_utc_or_in_a_zone() {
        let t = utc_time(" 2026-12-07T09:00 ").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-07T09:00:00+00:00");
        assert_eq!(
            utc_time("2026-12-07T09:00:00+09:00").unwrap().to_rfc3339(),
            "2026-12-07T00:00:00+00:00"
        );
        assert_eq!(utc_time("yesterday"), None);
        let tokyo: chrono_tz::Tz = "Asia/Tokyo".parse().unwrap();
        assert_eq!(
            zoned_time("2026-12-07T09:00", tokyo).unwrap().to_rfc3339(),
            "2026-12-07T00:00:00+00:00"
        );
        // Skipped by the spring-forward change in New York: no such time.
        let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
        assert_eq!(zoned_time("2026-03-08T02:30", ny), None);
        // Repeated in the autumn: the earlier (daylight) instance.
        assert_eq!(
            zoned_time("2026-11-01T01:30", ny).unwrap().to_rfc3339(),
            "2026-11-01T05:30:00+00:00"
        );
    }

    #[test]
    fn incident_ids_are_positive_integers() {
        assert_eq!(incident_id("42"), Some(IncidentId(42)));
        for bad in ["0", "-3", "", "4x", "99999999999999999999"] {
            assert_eq!(incident_id(bad), None, "{bad:?}");
        }
    }
}
