//! Who is on call: a schedule's rotation, with overrides (someone covers a shift) on top.
//!
//! Pure: the time asked about is an argument. Hand-offs of rotations that are whole days keep
//! the schedule zone's wall-clock time across daylight-saving changes, because "the pager
//! changes hands at 09:00" is what a team agrees on; any other rotation is exact
//! (`start + k × rotation`), because "every 8 hours" means 8 hours.

use chrono::{DateTime, Duration as Span, LocalResult, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Person, Schedule};
use crate::incident::Refusal;

/// Someone covers part of a schedule instead of whoever the rotation names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub id: i64,
    pub schedule: String,
    pub person: String,
    pub start: DateTime<Utc>,
    /// Exclusive.
    pub end: DateTime<Utc>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// An override asked for, before it is stored (and given an id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewOverride {
    pub schedule: String,
    pub person: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Who is on call in a schedule, over an unbroken stretch of time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCall {
    pub schedule: String,
    pub person: String,
    pub since: DateTime<Utc>,
    /// Exclusive: the next hand-off (to the next turn, or to or from an override).
    pub until: DateTime<Utc>,
    /// Set when an override puts this person on call.
    pub override_id: Option<i64>,
}

/// At most this many turns are listed by [`turns`], so a window far wider than the rotation
/// (a year of one-minute turns) cannot make an answer unboundedly large.
pub const MAX_TURNS: usize = 10_000;

/// Who is on call in `schedule` at `at`, overrides of that schedule included. `None` before
/// the schedule's `start` (unless an override covers `at`).
pub fn on_call(schedule: &Schedule, overrides: &[Override], at: DateTime<Utc>) -> Option<OnCall> {
    let mine: Vec<&Override> = overrides
        .iter()
        .filter(|o| o.schedule == schedule.id)
        .collect();
    if let Some(o) = mine.iter().find(|o| o.start <= at && at < o.end) {
        return Some(OnCall {
            schedule: schedule.id.clone(),
            person: o.person.clone(),
            since: o.start,
            until: o.end,
            override_id: Some(o.id),
        });
    }
    let mut turn = turn_at(schedule, at)?;
    // The rotation's person is on call between the overrides that cut into the turn.
    for o in &mine {
        if o.end <= at && o.end > turn.since {
            turn.since = o.end;
        }
        if o.start > at && o.start < turn.until {
            turn.until = o.start;
        }
    }
    Some(turn)
}

/// The rotation's turns (overrides not applied) that overlap `[from, to)`, in order; at most
/// [`MAX_TURNS`].
pub fn turns(schedule: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<OnCall> {
    let mut out = Vec::new();
    let first = utc(schedule.start);
    if to <= from || to <= first {
        return out;
    }
    let Some(mut k) = index_at(schedule, from.max(first)) else {
        return out;
    };
    while out.len() < MAX_TURNS {
        let Some(t) = turn(schedule, k) else { break };
        if t.since >= to {
            break;
        }
        out.push(t);
        k += 1;
    }
    out
}

/// Whether `new` may be stored: a positive span, on this schedule, for a known person, and
/// not overlapping another override of the same schedule.
pub fn check_override(
    new: &NewOverride,
    schedule: &Schedule,
    people: &[Person],
    existing: &[Override],
) -> Result<(), Refusal> {
    if new.schedule != schedule.id {
        return Err(Refusal::new(
            "schedule",
            format!(
                "the override is for schedule `{}`, not `{}`",
                new.schedule, schedule.id
            ),
        ));
    }
    if new.end <= new.start {
        return Err(Refusal::new(
            "end",
            format!(
                "the override must end after it starts ({} is not after {})",
                stamp(new.end),
                stamp(new.start)
            ),
        ));
    }
    if !people.iter().any(|p| p.id == new.person) {
        let ids: Vec<&str> = people.iter().map(|p| p.id.as_str()).collect();
        let reason = match crate::config::closest_name(&new.person, &ids) {
            Some(c) => format!("unknown person `{}`: did you mean `{c}`?", new.person),
            None => format!(
                "unknown person `{}`: overrides name a [[person]] of the config",
                new.person
            ),
        };
        return Err(Refusal::new("person", reason));
    }
    if let Some(o) = existing
        .iter()
        .filter(|o| o.schedule == new.schedule)
        .find(|o| new.start < o.end && o.start < new.end)
    {
        return Err(Refusal::new(
            "start",
            format!(
                "overlaps override {} ({}, {}–{})",
                o.id,
                o.person,
                stamp(o.start),
                stamp(o.end)
            ),
        ));
    }
    Ok(())
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn utc<Tz: TimeZone>(t: DateTime<Tz>) -> DateTime<Utc> {
    t.with_timezone(&Utc)
}

/// Whole days per turn, when hand-offs follow the schedule zone's wall clock.
fn wall_clock_days(schedule: &Schedule) -> Option<(chrono_tz::Tz, i64)> {
    let tz = schedule.timezone?;
    let r = schedule.rotation;
    let whole_days = r.subsec_nanos() == 0 && r.as_secs().is_multiple_of(86_400) && r.as_secs() > 0;
    whole_days.then(|| (tz, i64::try_from(r.as_secs() / 86_400).unwrap_or(i64::MAX)))
}

/// When turn `k` (0 = the first person's first turn) starts.
fn handoff(schedule: &Schedule, k: u64) -> Option<DateTime<Utc>> {
    let start = utc(schedule.start);
    match wall_clock_days(schedule) {
        Some((tz, days)) => {
            let local = schedule.start.with_timezone(&tz).naive_local();
            let offset = days.checked_mul(i64::try_from(k).ok()?)?;
            let wanted = local.checked_add_signed(Span::try_days(offset)?)?;
            Some(resolve_local(tz, wanted))
        }
        None => {
            let nanos = schedule.rotation.as_nanos().checked_mul(u128::from(k))?;
            let span = Span::nanoseconds(i64::try_from(nanos).ok()?);
            start.checked_add_signed(span)
        }
    }
}

/// A local wall-clock time as an instant: a time skipped by a spring-forward change becomes
/// the first valid instant after it; a time repeated by a fall-back change, the earlier.
fn resolve_local(tz: chrono_tz::Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => utc(t),
        LocalResult::None => {
            // Inside a gap: the first instant whose local time is at or past `local`. Local
            // time only moves forward within a day of a gap, so a binary search finds it.
            let guess = local.and_utc();
            let (mut lo, mut hi) = (guess - Span::days(1), guess + Span::days(1));
            while hi - lo > Span::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if mid.with_timezone(&tz).naive_local() >= local {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            // Transitions fall on whole seconds; `hi` is the first instant past the gap.
            hi
        }
    }
}

/// The index of the turn that contains `at`, for `at` at or after the start.
fn index_at(schedule: &Schedule, at: DateTime<Utc>) -> Option<u64> {
    let start = utc(schedule.start);
    if at < start {
        return None;
    }
    let elapsed = (at - start).to_std().ok()?;
    let mut k = u64::try_from(elapsed.as_nanos() / schedule.rotation.as_nanos().max(1)).ok()?;
    // With wall-clock hand-offs the estimate may be off by one near a DST change.
    while k > 0 && handoff(schedule, k).is_some_and(|h| h > at) {
        k -= 1;
    }
    while handoff(schedule, k + 1).is_some_and(|h| h <= at) {
        k += 1;
    }
    Some(k)
}

fn turn(schedule: &Schedule, k: u64) -> Option<OnCall> {
    let n = u64::try_from(schedule.people.len())
        .ok()
        .filter(|n| *n > 0)?;
    let person = schedule.people.get(usize::try_from(k % n).ok()?)?.clone();
    Some(OnCall {
        schedule: schedule.id.clone(),
        person,
        since: handoff(schedule, k)?,
        until: handoff(schedule, k + 1)?,
        override_id: None,
    })
}

fn turn_at(schedule: &Schedule, at: DateTime<Utc>) -> Option<OnCall> {
    turn(schedule, index_at(schedule, at)?)
}
