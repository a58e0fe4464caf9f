//! On-call overrides and the deployment's shared secrets, run against both backends with the
//! harness of `conformance.rs` (tests/support): a fresh SQLite directory or PostgreSQL schema
//! per story, PostgreSQL skipped visibly or required with `KEEL_REQUIRE_POSTGRES=1`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use keel_store::{NewOverride, Store, StoreError};

mod support;
use support::{with_postgres, with_sqlite};

/// Only a guard against a hung test, never a performance bar.
const HANG_GUARD: Duration = Duration::from_secs(120);

macro_rules! on_both_backends {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $story() {
                    super::with_sqlite(super::HANG_GUARD, super::$story).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $story() {
                    super::with_postgres(super::HANG_GUARD, super::$story).await;
                }
            )*
        }
    };
}

on_both_backends!(
    overrides_round_trip_by_schedule_and_end,
    overlapping_overrides_of_one_schedule_are_refused,
    concurrent_overlapping_overrides_store_exactly_one,
    bad_overrides_are_refused_and_store_nothing,
    deleting_an_override_returns_it_once,
    a_shared_secret_is_made_once_and_kept,
);

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap()
}

fn hours(n: i64) -> TimeDelta {
    TimeDelta::hours(n)
}

fn cover(schedule: &str, person: &str, from: i64, to: i64) -> NewOverride {
    NewOverride {
        schedule: schedule.into(),
        person: person.into(),
        start: t0() + hours(from),
        end: t0() + hours(to),
        created_by: "ann".into(),
        created_at: t0(),
    }
}

async fn overrides_round_trip_by_schedule_and_end(store: Arc<dyn Store>) {
    let later = store
        .create_override(&cover("primary", "carol", 24, 48))
        .await
        .unwrap();
    let first = store
        .create_override(&cover("primary", "bob", 0, 12))
        .await
        .unwrap();
    let other = store
        .create_override(&cover("secondary", "dan", 0, 12))
        .await
        .unwrap();
    assert!(first.id != later.id && other.id != first.id);
    assert_eq!(first.person, "bob");
    assert_eq!(first.start, t0());
    assert_eq!(first.end, t0() + hours(12));
    assert_eq!(first.created_by, "ann");

    // Ordered by start, whatever the insertion order.
    let all = store.overrides(None, t0() - hours(1)).await.unwrap();
    let people: Vec<_> = all.iter().map(|o| o.person.as_str()).collect();
    assert_eq!(people, ["bob", "dan", "carol"]);
    assert_eq!(all[0], first);

    let primary = store
        .overrides(Some("primary"), t0() - hours(1))
        .await
        .unwrap();
    assert_eq!(primary, vec![first.clone(), later.clone()]);

    // An override that ended is no longer listed; the end is exclusive.
    let current = store
        .overrides(Some("primary"), t0() + hours(12))
        .await
        .unwrap();
    assert_eq!(current, vec![later]);
    assert!(store
        .overrides(Some("nobody"), t0())
        .await
        .unwrap()
        .is_empty());
}

async fn overlapping_overrides_of_one_schedule_are_refused(store: Arc<dyn Store>) {
    let kept = store
        .create_override(&cover("primary", "carol", 10, 20))
        .await
        .unwrap();
    for (from, to) in [(5, 11), (19, 25), (12, 13), (0, 30), (10, 20)] {
        let err = store
            .create_override(&cover("primary", "bob", from, to))
            .await
            .unwrap_err();
        match err {
            StoreError::Conflict(msg) => {
                assert!(
                    msg.contains(&format!("overlaps override {}", kept.id))
                        && msg.contains("carol"),
                    "{msg}"
                );
                assert!(msg.contains("2026-12-07 10:00 UTC"), "{msg}");
            }
            other => panic!("expected a conflict for {from}..{to}, got {other:?}"),
        }
    }
    // Touching ends do not overlap; another schedule is independent.
    store
        .create_override(&cover("primary", "bob", 0, 10))
        .await
        .unwrap();
    store
        .create_override(&cover("primary", "bob", 20, 30))
        .await
        .unwrap();
    store
        .create_override(&cover("secondary", "bob", 10, 20))
        .await
        .unwrap();
    assert_eq!(
        store.overrides(None, t0() - hours(1)).await.unwrap().len(),
        4
    );
}

async fn concurrent_overlapping_overrides_store_exactly_one(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_override(&cover("primary", &format!("p{n}"), n, 10 + n))
                .await
        }));
    }
    let mut stored = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => stored += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(stored, 1);
    assert_eq!(
        store
            .overrides(Some("primary"), t0() - hours(1))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn bad_overrides_are_refused_and_store_nothing(store: Arc<dyn Store>) {
    let mut backwards = cover("primary", "carol", 10, 10);
    let err = store.create_override(&backwards).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("at or before it starts")),
        "{err:?}"
    );
    backwards.end = backwards.start - hours(1);
    assert!(matches!(
        store.create_override(&backwards).await,
        Err(StoreError::Invalid(_))
    ));
    let mut empty = cover("primary", " ", 0, 1);
    let err = store.create_override(&empty).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("person is empty")),
        "{err:?}"
    );
    empty = cover("prim\0ary", "carol", 0, 1);
    let err = store.create_override(&empty).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Invalid(m) if m.contains("NUL")),
        "{err:?}"
    );
    assert!(store
        .overrides(None, t0() - hours(100))
        .await
        .unwrap()
        .is_empty());
}

async fn deleting_an_override_returns_it_once(store: Arc<dyn Store>) {
    let o = store
        .create_override(&cover("primary", "carol", 0, 5))
        .await
        .unwrap();
    assert_eq!(store.delete_override(o.id).await.unwrap(), o);
    let err = store.delete_override(o.id).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::NotFound(m) if m.contains(&format!("no override {}", o.id))),
        "{err:?}"
    );
    // The hours are free again.
    store
        .create_override(&cover("primary", "bob", 0, 5))
        .await
        .unwrap();
}

async fn a_shared_secret_is_made_once_and_kept(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.shared_secret("ack-links").await
        }));
    }
    let mut seen = std::collections::BTreeSet::new();
    for t in tasks {
        seen.insert(t.await.unwrap().unwrap());
    }
    assert_eq!(seen.len(), 1, "every caller gets the one secret: {seen:?}");
    let secret = seen.into_iter().next().unwrap();
    assert_eq!(secret.len(), 64);
    assert!(secret.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(store.shared_secret("ack-links").await.unwrap(), secret);
    assert_ne!(store.shared_secret("other").await.unwrap(), secret);
}
