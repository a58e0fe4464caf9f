//! Rules both backends share, kept in one place so SQLite and PostgreSQL cannot drift apart:
//! folding a batch of minute rollups, checking and encoding incident events (and decoding them
//! back), reading stored text back into domain enums, checked integer conversions, and keeping
//! passwords out of error messages.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use keel_core::incident::{Actor, EventKind, IncidentEvent, IncidentId};
use keel_core::rollup::MinuteRollup;
use keel_core::{Health, NodeId, SourceKey, SourceKind};
use sqlx::migrate::MigrateError;

use crate::{NewEvent, Result, StoreError};

/// The per-day totals one batch adds to one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DayTotal {
    pub component: NodeId,
    pub day: NaiveDate,
    pub checks: u64,
    pub failures: u64,
}

/// Folds a batch into one row per (monitor, minute) and one per (component, day).
///
/// Repeats inside a batch merge by the same rule the database applies to a repeat of a stored
/// minute, so writing a batch at once or row by row gives the same result. The day totals are
/// the sums of the *incoming* rollups only: a repeated minute adds its own checks to the day,
/// never the merged row's. Both outputs are sorted by key, so concurrent writers (several
/// instances on one PostgreSQL) lock rows in the same order and cannot deadlock each other.
pub(crate) fn fold_batch(rollups: &[MinuteRollup]) -> Result<(Vec<MinuteRollup>, Vec<DayTotal>)> {
    let mut minutes: BTreeMap<(&SourceKey, DateTime<Utc>), MinuteRollup> = BTreeMap::new();
    let mut days: BTreeMap<(&NodeId, NaiveDate), (u64, u64)> = BTreeMap::new();
    for r in rollups {
        if r.failures > r.checks {
            return Err(StoreError::Other(format!(
                "rollup of {} at {} has more failures ({}) than checks ({})",
                r.source.rollup_id(),
                r.minute,
                r.failures,
                r.checks
            )));
        }
        minutes
            .entry((&r.source, r.minute))
            .and_modify(|m| merge_minute(m, r))
            .or_insert_with(|| r.clone());
        let day = days
            .entry((&r.component, r.minute.date_naive()))
            .or_default();
        day.0 += u64::from(r.checks);
        day.1 += u64::from(r.failures);
    }
    let days = days
        .into_iter()
        .map(|((component, day), (checks, failures))| DayTotal {
            component: component.clone(),
            day,
            checks,
            failures,
        })
        .collect();
    Ok((minutes.into_values().collect(), days))
}

/// The merge rule of the trait: counts add up, max takes the larger, percentiles (and the
/// component, should a monitor have moved) the later value.
fn merge_minute(into: &mut MinuteRollup, later: &MinuteRollup) {
    into.component.clone_from(&later.component);
    into.checks = into.checks.saturating_add(later.checks);
    into.failures = into.failures.saturating_add(later.failures);
    into.latency_p50_ms = later.latency_p50_ms;
    into.latency_p95_ms = later.latency_p95_ms;
    into.latency_max_ms = into.latency_max_ms.max(later.latency_max_ms);
}

/// One incident event as it goes into a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EventRow {
    pub seq: u32,
    /// Already cut to the millisecond, so what the caller is handed back equals what a later
    /// read returns.
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub actor_type: &'static str,
    pub actor_name: Option<String>,
    /// The serde tag of the event ("opened", "note", …), for the `type` column.
    pub tag: String,
    /// The serde JSON of the event: the source of truth when reading back.
    pub json: String,
    pub kind: EventKind,
}

impl EventRow {
    pub fn stored(self, incident: IncidentId) -> IncidentEvent {
        IncidentEvent {
            incident,
            seq: self.seq,
            at: self.at,
            actor: self.actor,
            kind: self.kind,
        }
    }
}

/// Checks a batch of events and encodes them as rows with seqs `after + 1…`.
///
/// `opening` is true for a new incident: it must start with `Opened`. `Opened` anywhere else
/// is refused, since replaying a timeline with two openings has no meaning.
pub(crate) fn encode_events(
    events: &[NewEvent],
    after: u32,
    opening: bool,
) -> Result<Vec<EventRow>> {
    if opening {
        match events.first() {
            None => {
                return Err(StoreError::Invalid(
                    "an incident needs at least its Opened event; got no events".to_string(),
                ))
            }
            Some((_, _, EventKind::Opened { .. })) => {}
            Some((_, _, other)) => {
                return Err(StoreError::Invalid(format!(
                    "an incident's first event must be opened, not {}",
                    tag_of(other)?
                )))
            }
        }
    }
    let skip = usize::from(opening);
    if let Some(i) = events
        .iter()
        .skip(skip)
        .position(|(_, _, k)| matches!(k, EventKind::Opened { .. }))
    {
        return Err(StoreError::Invalid(format!(
            "event {} of the batch is opened: only an incident's first event may be",
            i + skip + 1
        )));
    }
    let too_many = || {
        StoreError::Invalid(format!(
            "appending {} event(s) after seq {after} would pass the largest seq {}",
            events.len(),
            u32::MAX
        ))
    };
    let count = u32::try_from(events.len()).map_err(|_| too_many())?;
    after.checked_add(count).ok_or_else(too_many)?;

    (1..)
        .zip(events)
        .map(|(n, (actor, at, kind))| {
            let (actor_type, actor_name) = match actor {
                Actor::System => ("system", None),
                Actor::User(name) => {
                    // PostgreSQL TEXT cannot hold NUL; refuse it on both backends alike.
                    if name.contains('\0') {
                        return Err(StoreError::Invalid(format!(
                            "actor name {name:?} contains a NUL character"
                        )));
                    }
                    ("user", Some(name.clone()))
                }
            };
            let value = serde_json::to_value(kind).map_err(|e| {
                StoreError::Other(format!("cannot encode incident event as JSON: {e}"))
            })?;
            let tag = tag_in(&value)?;
            Ok(EventRow {
                seq: after + n,
                at: truncate_to_millis(*at),
                actor: actor.clone(),
                actor_type,
                actor_name,
                tag,
                json: value.to_string(),
                kind: kind.clone(),
            })
        })
        .collect()
}

fn tag_of(kind: &EventKind) -> Result<String> {
    let value = serde_json::to_value(kind)
        .map_err(|e| StoreError::Other(format!("cannot encode incident event as JSON: {e}")))?;
    tag_in(&value)
}

fn tag_in(value: &serde_json::Value) -> Result<String> {
    value
        .get("type")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| {
            StoreError::Other(format!("incident event JSON has no \"type\" tag: {value}"))
        })
}

/// An incident event back from its row. A row Keel did not write (or one written by a newer
/// Keel with event kinds this one does not know) is an error naming the row, never a panic.
pub(crate) fn decode_event(
    incident: IncidentId,
    seq: i64,
    at: DateTime<Utc>,
    actor_type: &str,
    actor_name: Option<String>,
    json: &str,
) -> Result<IncidentEvent> {
    let unreadable = |why: String| {
        StoreError::Other(format!(
            "stored row is unreadable: incident {incident} event {seq}: {why}"
        ))
    };
    let seq_u32 = u32::try_from(seq)
        .ok()
        .filter(|s| *s >= 1)
        .ok_or_else(|| unreadable("seq is out of range".to_string()))?;
    let actor = match (actor_type, actor_name) {
        ("system", None) => Actor::System,
        ("user", Some(name)) => Actor::User(name),
        (t, name) => {
            return Err(unreadable(format!(
                "actor type {t:?} with name {name:?}: \
                 expected system without a name or user with one"
            )))
        }
    };
    // Valid JSON that is no event Keel knows is most likely a newer Keel's; say so.
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| unreadable(format!("event is not JSON ({e})")))?;
    let kind = serde_json::from_value(value).map_err(|e| {
        unreadable(format!(
            "event JSON is not an event this Keel knows ({e}); was it written by a newer Keel?"
        ))
    })?;
    Ok(IncidentEvent {
        incident,
        seq: seq_u32,
        at,
        actor,
        kind,
    })
}

/// The answer to an append whose expected seq is no longer the last one.
pub(crate) fn incident_changed(incident: IncidentId, expected: u32, found: i64) -> StoreError {
    StoreError::Conflict(format!(
        "incident {incident} changed: expected seq {expected}, found {found}"
    ))
}

pub(crate) fn unknown_incident(incident: IncidentId) -> StoreError {
    StoreError::NotFound(format!("incident {incident}"))
}

pub(crate) fn unknown_token(name: &str) -> StoreError {
    StoreError::NotFound(format!("no token named {name:?}"))
}

pub(crate) fn parse_health(s: &str) -> Result<Health> {
    s.parse()
        .map_err(|e: String| StoreError::Other(format!("stored row is unreadable: {e}")))
}

/// A stored id back into its type. Text that no longer parses (written by hand, or by a Keel
/// with looser rules) is an error naming the column and the value, never a panic.
pub(crate) fn parse_stored<T, E: std::fmt::Display>(
    column: &str,
    value: &str,
    parse: impl FnOnce(&str) -> std::result::Result<T, E>,
) -> Result<T> {
    parse(value).map_err(|e| {
        StoreError::Other(format!("stored row is unreadable: {column} {value:?}: {e}"))
    })
}

/// A graph node (a component or a vendor) from `column`.
pub(crate) fn parse_node(column: &str, value: &str) -> Result<NodeId> {
    parse_stored(column, value, |v| NodeId::parse(v))
}

/// A source from its kind and id columns (`table` names both).
pub(crate) fn parse_source(
    table: &str,
    kind: &str,
    id: &str,
    id_column: &str,
) -> Result<SourceKey> {
    let kind = parse_kind(kind)?;
    parse_stored(&format!("{table}.{id_column}"), id, |id| {
        SourceKey::parse(kind, id)
    })
}

pub(crate) fn parse_kind(s: &str) -> Result<SourceKind> {
    s.parse()
        .map_err(|e: String| StoreError::Other(format!("stored row is unreadable: {e}")))
}

/// A stored count back to `u32`; out of range means the row was not written by Keel.
pub(crate) fn to_u32(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| {
        StoreError::Other(format!(
            "stored row is unreadable: {what} {v} is out of range"
        ))
    })
}

pub(crate) fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| {
        StoreError::Other(format!(
            "stored row is unreadable: {what} {v} is out of range"
        ))
    })
}

/// Latencies are `u64` in the domain and signed in SQL; anything past `i64::MAX` ms is
/// hundreds of millions of years, so saturating loses nothing real.
pub(crate) fn latency_to_sql(v: Option<u64>) -> Option<i64> {
    v.map(|v| i64::try_from(v).unwrap_or(i64::MAX))
}

/// Timestamps are kept to the millisecond on both backends, so a value reads back the same
/// whichever database stored it.
pub(crate) fn to_millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> Result<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms).ok_or_else(|| {
        StoreError::Other(format!(
            "stored row is unreadable: timestamp {ms} ms is out of range"
        ))
    })
}

/// A time as a backend's column holds it — unix milliseconds in SQLite, `timestamptz` in
/// PostgreSQL — so one row decoder, generic over it, serves both backends.
pub(crate) trait Stamp {
    fn time(self) -> Result<DateTime<Utc>>;
}

impl Stamp for i64 {
    fn time(self) -> Result<DateTime<Utc>> {
        from_millis(self)
    }
}

impl Stamp for DateTime<Utc> {
    fn time(self) -> Result<DateTime<Utc>> {
        Ok(self)
    }
}

pub(crate) fn truncate_to_millis(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or(at)
}

/// The time a row is created at, for the rows whose time the store itself decides.
pub(crate) fn now() -> DateTime<Utc> {
    truncate_to_millis(Utc::now())
}

/// A unique violation on `api_tokens`, said in terms of what the caller passed.
/// `detail` is the constraint name (PostgreSQL) or the message naming the column (SQLite).
pub(crate) fn token_conflict(name: &str, detail: &str) -> StoreError {
    if detail.contains("name") {
        StoreError::Conflict(format!("a token named {name:?} already exists"))
    } else {
        StoreError::Conflict("a token with the same secret already exists".to_string())
    }
}

/// Migration failures in words an operator can act on.
pub(crate) fn describe_migrate_error(e: &MigrateError) -> String {
    match e {
        MigrateError::VersionMissing(v) => format!(
            "the database has migration {v}, which this Keel does not know: \
             it was used by a newer Keel; upgrade this binary"
        ),
        MigrateError::VersionMismatch(v) => {
            format!("migration {v} was changed after it was applied to this database")
        }
        MigrateError::Dirty(v) => format!(
            "migration {v} failed part-way on an earlier start; repair the database by hand"
        ),
        other => format!("migrations failed: {other}"),
    }
}

/// A database URL with its password replaced, for messages and logs.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let Some(colon) = userinfo.find(':') else {
        return url.to_string();
    };
    format!(
        "{}{}:***{}",
        &url[..rest_start],
        &userinfo[..colon],
        &url[rest_start + at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn r(monitor: &str, component: &str, minute: DateTime<Utc>, checks: u32) -> MinuteRollup {
        MinuteRollup {
            source: SourceKey::monitor(keel_core::MonitorId::parse(monitor).unwrap()),
            component: NodeId::parse(component).unwrap(),
            minute,
            checks,
            failures: 1,
            latency_p50_ms: checks,
            latency_p95_ms: checks * 2,
            latency_max_ms: 100 - checks,
        }
    }

    #[test]
    fn a_repeated_minute_merges_and_counts_each_incoming_rollup_once_per_day() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 23, 59, 0).unwrap();
        let next_day = t + chrono::TimeDelta::minutes(1);
        let (minutes, days) = fold_batch(&[
            r("a", "c", t, 3),
            r("b", "c", t, 4),
            r("a", "c", t, 5),
            r("a", "c", next_day, 2),
        ])
        .unwrap();
        assert_eq!(minutes.len(), 3);
        let a = &minutes[0];
        assert_eq!((a.source.id().as_str(), a.checks, a.failures), ("a", 8, 2));
        assert_eq!(
            (a.latency_p50_ms, a.latency_p95_ms, a.latency_max_ms),
            (5, 10, 97)
        );
        assert_eq!(
            days,
            vec![
                DayTotal {
                    component: NodeId::parse("c").unwrap(),
                    day: t.date_naive(),
                    checks: 12,
                    failures: 3
                },
                DayTotal {
                    component: NodeId::parse("c").unwrap(),
                    day: next_day.date_naive(),
                    checks: 2,
                    failures: 1
                },
            ]
        );
    }

    #[test]
    fn more_failures_than_checks_is_refused() {
        let t = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let mut bad = r("a", "c", t, 1);
        bad.failures = 2;
        let err = fold_batch(&[bad]).unwrap_err();
        assert!(
            err.to_string()
                .contains("more failures (2) than checks (1)"),
            "{err}"
        );
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact_url("postgres://keel:s3cret@db:5432/keel?sslmode=require"),
            "postgres://keel:***@db:5432/keel?sslmode=require"
        );
        assert_eq!(redact_url("mysql://u:p@w@h/db"), "mysql://u:***@h/db");
        assert_eq!(
            redact_url("postgres://keel@db/keel"),
            "postgres://keel@db/keel"
        );
        assert_eq!(
            redact_url("postgres://db/x?a=b@c:d"),
            "postgres://db/x?a=b@c:d"
        );
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn unreadable_rows_say_why() {
        assert!(parse_health("sideways")
            .unwrap_err()
            .to_string()
            .contains("sideways"));
        assert!(parse_kind("robot")
            .unwrap_err()
            .to_string()
            .contains("robot"));
        assert!(to_u32(-1, "checks").is_err());
        assert!(to_u32(i64::from(u32::MAX) + 1, "checks").is_err());
        assert!(from_millis(i64::MAX).is_err());
    }
}
