//! One storage story, run against both backends, plus the faults each backend must report
//! clearly.
//!
//! Every story function takes an `Arc<dyn Store>` and knows nothing of the backend, so SQLite
//! and PostgreSQL are held to the same behaviour. Each test gets a fresh database: a temporary
//! directory for SQLite, a fresh schema (`keel_t_<random>`, dropped afterwards) for PostgreSQL,
//! so tests run in parallel and repeated runs never collide.
//!
//! PostgreSQL comes from `KEEL_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`). When it is unreachable the PostgreSQL tests say
//! `SKIPPED` on stderr and pass, unless `KEEL_REQUIRE_POSTGRES=1` (CI), where they fail.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use futures::FutureExt;
use keel_core::assess::{Eta, Severity};
use keel_core::config::LocalizedText;
use keel_core::confirm::Tracker;
use keel_core::incident::{
    Actor, EventKind, IncidentEvent, IncidentId, IncidentRole, IncidentState, Origin,
};
use keel_core::public::PublicStatus;
use keel_core::rollup::MinuteRollup;
use keel_core::{Health, MonitorId, NodeId, Signal, SourceKey, SourceKind};
use keel_store::postgres::PgStore;
use keel_store::sqlite::SqliteStore;
use keel_store::{
    AccountStore, IncidentStore, NewEvent, SignalStore, SourceState, Store, StoreError,
};
use sqlx::Connection;

mod support;
use support::{pg_admin, pg_base_url, with_postgres, with_sqlite, TestSchema};
/// Only a guard against a hung test, never a performance bar.
const HANG_GUARD: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Harness: tests/support (shared with the other storage suite), and this file's backends
// ---------------------------------------------------------------------------------------------

/// Declares each story once per backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $story() {
                    super::with_sqlite(super::HANG_GUARD, super::$story).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $story() {
                    super::with_postgres(super::HANG_GUARD, super::$story).await;
                }
            )*
        }
    };
}

on_both_backends!(
    ping_answers,
    signals_come_back_in_order_with_increasing_seq,
    concurrent_appends_get_distinct_ordered_seqs,
    source_state_round_trips_and_is_replaced,
    rollups_merge_and_roll_up_into_days,
    concurrent_rollup_writers_lose_nothing,
    bad_rollups_are_refused_whole,
    prune_removes_only_old_rows,
    tokens_are_found_by_hash_and_duplicates_conflict,
    tokens_are_listed_and_deleted_by_name,
    incident_timeline_round_trips_every_event_kind,
    incident_ids_increase_and_are_never_shared,
    concurrent_appends_with_one_expected_seq_exactly_one_wins,
    stale_or_future_expected_seq_is_a_conflict_and_stores_nothing,
    unknown_incident_is_not_found,
    incidents_must_open_with_opened_and_only_once,
    all_incident_events_are_ordered_by_incident_then_seq,
);

// ---------------------------------------------------------------------------------------------
// The story
// ---------------------------------------------------------------------------------------------

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .expect("valid time")
}

/// Both backends keep timestamps to the millisecond.
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).expect("in range")
}

fn node(id: &str) -> NodeId {
    NodeId::parse(id).unwrap()
}

/// A monitor's rollup key.
fn key(monitor: &str) -> SourceKey {
    SourceKey::monitor(MonitorId::parse(monitor).unwrap())
}

fn signal(kind: SourceKind, id: &str, health: Health, reason: &str, at: DateTime<Utc>) -> Signal {
    Signal {
        source: SourceKey::parse(kind, id).unwrap(),
        component: node(&format!("{}-component", id.replace('/', "-"))),
        health,
        reason: reason.to_string(),
        at,
    }
}

fn rollup(
    monitor: &str,
    component: &str,
    minute: DateTime<Utc>,
    checks: u32,
    failures: u32,
) -> MinuteRollup {
    MinuteRollup {
        source: key(monitor),
        component: node(component),
        minute,
        checks,
        failures,
        latency_p50_ms: 10,
        latency_p95_ms: 20,
        latency_max_ms: 30,
    }
}

async fn ping_answers(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
}

async fn signals_come_back_in_order_with_increasing_seq(store: Arc<dyn Store>) {
    assert!(store.signals_after(0, 10).await.unwrap().is_empty());

    // Sub-millisecond parts are dropped by both backends alike.
    let t0 = at(2026, 3, 1, 12, 0) + TimeDelta::nanoseconds(123_456_789);
    let signals = [
        signal(SourceKind::Monitor, "api", Health::Down, "HTTP 503", t0),
        signal(
            SourceKind::Vendor,
            "github",
            Health::Degraded,
            "Incident: \"Actions delays\" — investigating; it's 'slow' 🐢",
            t0 + TimeDelta::seconds(1),
        ),
        signal(
            SourceKind::Intake,
            "alertmanager/fp-3f2a",
            Health::Unknown,
            "'; DROP TABLE signals; --",
            t0 + TimeDelta::seconds(2),
        ),
        signal(
            SourceKind::Monitor,
            "api",
            Health::Up,
            "HTTP 200",
            t0 + TimeDelta::seconds(3),
        ),
    ];
    let mut seqs = Vec::new();
    for s in &signals {
        seqs.push(store.append_signal(s).await.expect("append"));
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "seqs {seqs:?}");

    let all = store.signals_after(0, 100).await.unwrap();
    assert_eq!(all.iter().map(|s| s.seq).collect::<Vec<_>>(), seqs);
    for (stored, sent) in all.iter().zip(&signals) {
        let expected = Signal {
            at: ms(sent.at),
            ..sent.clone()
        };
        assert_eq!(stored.signal, expected);
    }

    // Resuming after a seen seq, with a limit.
    let page = store.signals_after(seqs[0], 2).await.unwrap();
    assert_eq!(page.iter().map(|s| s.seq).collect::<Vec<_>>(), &seqs[1..3]);
    assert!(store.signals_after(seqs[3], 10).await.unwrap().is_empty());
    assert!(store.signals_after(seqs[3], 0).await.unwrap().is_empty());
    assert_eq!(store.signals_after(-1, 100).await.unwrap().len(), 4);

    // A later append keeps increasing.
    let next = store.append_signal(&signals[0]).await.unwrap();
    assert!(next > seqs[3]);
}

async fn concurrent_appends_get_distinct_ordered_seqs(store: Arc<dyn Store>) {
    let t0 = at(2026, 3, 1, 12, 0);
    let writers = (0..4).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..15 {
                let s = signal(
                    SourceKind::Monitor,
                    &format!("m{w}"),
                    Health::Down,
                    &format!("writer {w} signal {i}"),
                    t0 + TimeDelta::seconds(i),
                );
                seqs.push(store.append_signal(&s).await.expect("append"));
            }
            seqs
        })
    });
    let mut seqs: Vec<i64> = Vec::new();
    for writer in writers.collect::<Vec<_>>() {
        let mine = writer.await.expect("writer task");
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "one writer's seqs {mine:?}"
        );
        seqs.extend(mine);
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 60, "every append got its own seq");

    let stored = store.signals_after(0, 1000).await.unwrap();
    assert_eq!(stored.iter().map(|s| s.seq).collect::<Vec<_>>(), seqs);
}

async fn source_state_round_trips_and_is_replaced(store: Arc<dyn Store>) {
    assert!(store.load_source_states().await.unwrap().is_empty());
    let t0 = at(2026, 3, 1, 12, 0) + TimeDelta::microseconds(1_500);
    let api = SourceState {
        key: key("api"),
        component: node("api"),
        tracker: Tracker {
            health: Health::Down,
            since: t0,
            reason: "timed out after 5s".into(),
            latency_ms: Some(5_000),
            last_checked: Some(t0 + TimeDelta::seconds(30)),
            pending: Some(Health::Down),
            streak: 2,
            streak_since: None,
        },
    };
    let github = SourceState {
        key: SourceKey::parse(SourceKind::Vendor, "github").unwrap(),
        component: node("github"),
        tracker: Tracker::new(t0),
    };
    store.save_source_state(&github).await.unwrap();
    store.save_source_state(&api).await.unwrap();

    let with_ms = |s: &SourceState| SourceState {
        tracker: Tracker {
            since: ms(s.tracker.since),
            last_checked: s.tracker.last_checked.map(ms),
            ..s.tracker.clone()
        },
        ..s.clone()
    };
    // Sorted by kind, then id.
    assert_eq!(
        store.load_source_states().await.unwrap(),
        vec![with_ms(&api), with_ms(&github)]
    );

    // A second save replaces, it does not add.
    let recovered = SourceState {
        tracker: Tracker {
            health: Health::Up,
            since: t0 + TimeDelta::minutes(3),
            reason: "HTTP 200".into(),
            latency_ms: Some(u64::from(u32::MAX) + 7),
            last_checked: None,
            pending: None,
            streak: 0,
            streak_since: None,
        },
        ..api.clone()
    };
    store.save_source_state(&recovered).await.unwrap();
    assert_eq!(
        store.load_source_states().await.unwrap(),
        vec![with_ms(&recovered), with_ms(&github)]
    );
}

async fn rollups_merge_and_roll_up_into_days(store: Arc<dyn Store>) {
    let d1 = day(2026, 3, 1);
    let d2 = day(2026, 3, 2);
    let t1 = at(2026, 3, 1, 23, 58);
    let t2 = at(2026, 3, 1, 23, 59);
    let t3 = at(2026, 3, 2, 0, 0); // the next UTC day

    store
        .add_rollups(&[])
        .await
        .expect("an empty batch is fine");

    // First batch, with a repeat of (a, t1) inside it; b is a second monitor on "web".
    let mut a_t2 = rollup("a", "web", t2, 6, 2);
    (
        a_t2.latency_p50_ms,
        a_t2.latency_p95_ms,
        a_t2.latency_max_ms,
    ) = (10, 20, 30);
    store
        .add_rollups(&[
            rollup("a", "web", t1, 6, 0),
            a_t2,
            rollup("b", "web", t2, 6, 6),
            rollup("a", "web", t3, 6, 3),
            rollup("c", "db", t2, 5, 0),
            rollup("a", "web", t1, 2, 1),
            rollup("q", "quiet", t2, 0, 0),
        ])
        .await
        .unwrap();
    // A later write of a stored minute merges into it.
    let mut a_t2_again = rollup("a", "web", t2, 4, 1);
    (
        a_t2_again.latency_p50_ms,
        a_t2_again.latency_p95_ms,
        a_t2_again.latency_max_ms,
    ) = (11, 19, 25);
    store.add_rollups(&[a_t2_again]).await.unwrap();

    // `from` inclusive, `to` exclusive, oldest first.
    let a_day1 = store
        .rollups(&key("a"), at(2026, 3, 1, 0, 0), t3)
        .await
        .unwrap();
    let mut merged_t1 = rollup("a", "web", t1, 8, 1);
    (
        merged_t1.latency_p50_ms,
        merged_t1.latency_p95_ms,
        merged_t1.latency_max_ms,
    ) = (10, 20, 30);
    let mut merged_t2 = rollup("a", "web", t2, 10, 3);
    // Counts add up, max keeps the larger, percentiles take the later value.
    (
        merged_t2.latency_p50_ms,
        merged_t2.latency_p95_ms,
        merged_t2.latency_max_ms,
    ) = (11, 19, 30);
    assert_eq!(a_day1, vec![merged_t1, merged_t2.clone()]);
    let around_midnight = store
        .rollups(&key("a"), t2, t3 + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(around_midnight.len(), 2);
    assert_eq!(around_midnight[0], merged_t2);
    assert_eq!(around_midnight[1].minute, t3);
    assert!(store
        .rollups(&key("nobody"), t1, t3)
        .await
        .unwrap()
        .is_empty());

    // Day totals: every incoming rollup counted once, both monitors of "web" together.
    let web = store.daily_uptime(&node("web"), d1, d2).await.unwrap();
    assert_eq!(web.len(), 2, "{web:?}");
    assert_eq!(
        (web[0].day, web[0].checks, web[0].failures),
        (d1, 8 + 10 + 6, 1 + 3 + 6)
    );
    assert_eq!((web[1].day, web[1].checks, web[1].failures), (d2, 6, 3));
    assert_eq!(web[0].component.as_str(), "web");
    assert_eq!(web[0].ratio(), Some(14.0 / 24.0));
    assert_eq!(web[1].ratio(), Some(0.5));

    // The day range is inclusive at both ends.
    let only_d2 = store.daily_uptime(&node("web"), d2, d2).await.unwrap();
    assert_eq!(only_d2.iter().map(|u| u.day).collect::<Vec<_>>(), vec![d2]);
    let db = store.daily_uptime(&node("db"), d1, d2).await.unwrap();
    assert_eq!(db.len(), 1);
    assert_eq!(
        (db[0].checks, db[0].failures, db[0].ratio()),
        (5, 0, Some(1.0))
    );
    assert!(store
        .daily_uptime(&node("web"), day(2026, 2, 1), day(2026, 2, 28))
        .await
        .unwrap()
        .is_empty());
    // Days without checks are left out.
    assert!(store
        .daily_uptime(&node("quiet"), d1, d2)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .daily_uptime(&node("nothing"), d1, d2)
        .await
        .unwrap()
        .is_empty());
}

async fn concurrent_rollup_writers_lose_nothing(store: Arc<dyn Store>) {
    let t = at(2026, 3, 1, 12, 0);
    // Writers touch the same rows in different orders: they must neither fail nor lose counts.
    let writers = (0..4u32).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            for _ in 0..10 {
                let mut batch = vec![rollup("a", "web", t, 1, 0), rollup("b", "web", t, 1, 1)];
                if w % 2 == 1 {
                    batch.reverse();
                }
                store.add_rollups(&batch).await.expect("add rollups");
            }
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.expect("writer task");
    }
    let next = t + TimeDelta::minutes(1);
    assert_eq!(
        store.rollups(&key("a"), t, next).await.unwrap()[0].checks,
        40
    );
    assert_eq!(
        store.rollups(&key("b"), t, next).await.unwrap()[0].failures,
        40
    );
    let web = store
        .daily_uptime(&node("web"), t.date_naive(), t.date_naive())
        .await
        .unwrap();
    assert_eq!((web[0].checks, web[0].failures), (80, 40));
}

async fn bad_rollups_are_refused_whole(store: Arc<dyn Store>) {
    let t = at(2026, 3, 1, 12, 0);
    let err = store
        .add_rollups(&[rollup("a", "web", t, 5, 1), rollup("b", "web", t, 1, 2)])
        .await
        .expect_err("more failures than checks");
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("more failures (2) than checks (1)"),
        "{err}"
    );
    // Nothing of the batch was kept.
    assert!(store
        .rollups(&key("a"), t, t + TimeDelta::minutes(1))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .daily_uptime(&node("web"), t.date_naive(), t.date_naive())
        .await
        .unwrap()
        .is_empty());
}

async fn prune_removes_only_old_rows(store: Arc<dyn Store>) {
    let (d1, d2, d3) = (day(2026, 3, 1), day(2026, 3, 2), day(2026, 3, 3));
    let t1 = at(2026, 3, 1, 23, 59);
    let t2 = at(2026, 3, 2, 0, 0);
    let t3 = at(2026, 3, 3, 0, 0);
    store
        .add_rollups(&[
            rollup("a", "web", t1, 1, 0),
            rollup("a", "web", t2, 1, 0),
            rollup("b", "web", t2, 1, 0),
            rollup("a", "web", t3, 1, 0),
        ])
        .await
        .unwrap();
    assert_eq!(
        store
            .prune_rollups(t1 - TimeDelta::days(1), d1)
            .await
            .unwrap(),
        0
    );

    // Rows exactly at the cut-off stay: 1 minute row (t1) and 1 day row (d1) go.
    assert_eq!(store.prune_rollups(t2, d2).await.unwrap(), 2);
    let left = store
        .rollups(&key("a"), t1, t3 + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|r| r.minute).collect::<Vec<_>>(),
        vec![t2, t3]
    );
    let days = store.daily_uptime(&node("web"), d1, d3).await.unwrap();
    assert_eq!(days.iter().map(|u| u.day).collect::<Vec<_>>(), vec![d2, d3]);
    assert_eq!(store.prune_rollups(t2, d2).await.unwrap(), 0);

    // Minute rows and day rows have separate retention.
    assert_eq!(
        store
            .prune_rollups(t3 + TimeDelta::minutes(1), d2)
            .await
            .unwrap(),
        3
    );
    assert!(store.rollups(&key("b"), t1, t3).await.unwrap().is_empty());
    assert_eq!(
        store
            .daily_uptime(&node("web"), d1, d3)
            .await
            .unwrap()
            .len(),
        2
    );
}

async fn tokens_are_found_by_hash_and_duplicates_conflict(store: Arc<dyn Store>) {
    let h1 = "a".repeat(64);
    let h2 = "b".repeat(64);
    let ci = store
        .create_token("ci", "admin", &h1)
        .await
        .expect("create");
    assert_eq!((ci.name.as_str(), ci.role.as_str()), ("ci", "admin"));
    // A sanity bound on the clock the store used, not a timing assertion.
    assert!((Utc::now() - ci.created_at).abs() < TimeDelta::hours(1));

    assert_eq!(store.find_token(&h1).await.unwrap(), Some(ci.clone()));
    assert_eq!(store.find_token(&h2).await.unwrap(), None);
    assert_eq!(store.find_token("").await.unwrap(), None);

    let same_name = store.create_token("ci", "reader", &h2).await.unwrap_err();
    assert!(
        matches!(same_name, StoreError::Conflict(_)),
        "{same_name:?}"
    );
    assert!(same_name.to_string().contains("\"ci\""), "{same_name}");
    let same_hash = store
        .create_token("deploy", "admin", &h1)
        .await
        .unwrap_err();
    assert!(
        matches!(same_hash, StoreError::Conflict(_)),
        "{same_hash:?}"
    );
    assert!(!same_hash.to_string().contains(&h1), "{same_hash}");

    let deploy = store.create_token("deploy", "intake", &h2).await.unwrap();
    assert_ne!(deploy.id, ci.id);
    assert_eq!(store.find_token(&h2).await.unwrap(), Some(deploy));
    assert_eq!(store.find_token(&h1).await.unwrap(), Some(ci));
}

// ---------------------------------------------------------------------------------------------
// Tokens, continued
// ---------------------------------------------------------------------------------------------

async fn tokens_are_listed_and_deleted_by_name(store: Arc<dyn Store>) {
    assert!(store.token_list().await.unwrap().is_empty());
    let (h1, h2, h3) = ("1".repeat(64), "2".repeat(64), "3".repeat(64));
    let ops = store.create_token("ops", "admin", &h1).await.unwrap();
    let ci = store.create_token("ci ✓", "responder", &h2).await.unwrap();
    // Oldest first.
    assert_eq!(
        store.token_list().await.unwrap(),
        vec![ops.clone(), ci.clone()]
    );

    store.token_delete("ops").await.expect("delete");
    assert_eq!(store.token_list().await.unwrap(), vec![ci.clone()]);
    assert_eq!(store.find_token(&h1).await.unwrap(), None);

    let err = store.token_delete("ops").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(err.to_string().contains("\"ops\""), "{err}");
    // Names are matched exactly, never as patterns.
    let err = store.token_delete("%").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.token_list().await.unwrap(), vec![ci.clone()]);

    // A deleted name may be used again.
    let again = store.create_token("ops", "viewer", &h3).await.unwrap();
    assert_ne!(again.id, ops.id);
    assert_eq!(store.token_list().await.unwrap(), vec![ci, again]);
}

// ---------------------------------------------------------------------------------------------
// Incidents
// ---------------------------------------------------------------------------------------------

fn user(name: &str) -> Actor {
    Actor::User(name.to_string())
}

fn set(items: &[&str]) -> BTreeSet<NodeId> {
    items.iter().map(|s| NodeId::parse(*s).unwrap()).collect()
}

fn opened(title: &str, failing_since: DateTime<Utc>) -> EventKind {
    EventKind::Opened {
        title: title.to_string(),
        origin: Origin::Detected,
        cause: Some(NodeId::parse("db").unwrap()),
        cause_kind: "component".to_string(),
        failure_kind: "tcp".to_string(),
        impacted: set(&["api", "db", "web"]),
        affected_users: 15_000,
        reason: "db: connection refused".to_string(),
        failing_since,
    }
}

fn note(text: &str) -> EventKind {
    EventKind::Note {
        text: text.to_string(),
    }
}

/// What a stored event should read back as: times cut to the millisecond.
fn expected(incident: IncidentId, first_seq: u32, events: &[NewEvent]) -> Vec<IncidentEvent> {
    (first_seq..)
        .zip(events)
        .map(|(seq, (actor, at, kind))| IncidentEvent {
            incident,
            seq,
            at: ms(*at),
            actor: actor.clone(),
            kind: kind.clone(),
        })
        .collect()
}

/// A timeline with every event kind (and Eta basis) at least once, split into the events
/// that open an incident and the rest. Keep it complete when `EventKind` grows.
fn timeline_of_every_kind(t0: DateTime<Utc>) -> (Vec<NewEvent>, Vec<NewEvent>) {
    let t = |s: i64| t0 + TimeDelta::seconds(s);
    let opening: Vec<NewEvent> = vec![
        (
            Actor::System,
            t(0),
            opened(
                "Database unreachable — \"db\" 's 🐢",
                t0 - TimeDelta::nanoseconds(1),
            ),
        ),
        (
            Actor::System,
            t(0),
            EventKind::SeverityChanged {
                from: None,
                to: Severity::Sev2,
                reason: "38% of users affected (≥ 25% is SEV2)".to_string(),
            },
        ),
        (
            Actor::System,
            t(0),
            EventKind::Checklist {
                steps: vec!["Check the primary".into(), "Fail over".into()],
            },
        ),
    ];

    let rest: Vec<NewEvent> = vec![
        (
            Actor::System,
            t(1),
            EventKind::Signal {
                source: "db-tcp".into(),
                component: NodeId::parse("db").unwrap(),
                health: Health::Down,
                reason: "connection refused".into(),
            },
        ),
        (
            Actor::System,
            t(2),
            EventKind::ImpactChanged {
                impacted: set(&["api", "db", "web", "worker"]),
                affected_users: u64::MAX,
            },
        ),
        (
            Actor::System,
            t(3),
            EventKind::StateChanged {
                from: IncidentState::Investigating,
                to: IncidentState::Identified,
                reason: "cause found".into(),
            },
        ),
        (
            Actor::System,
            t(4),
            EventKind::EtaChanged {
                eta: Eta::History {
                    samples: 6,
                    p50_minutes: 12,
                    p90_minutes: 40,
                },
            },
        ),
        (
            Actor::System,
            t(4),
            EventKind::EtaChanged {
                eta: Eta::Vendor {
                    vendor: "github".into(),
                    status: "major outage".into(),
                },
            },
        ),
        (
            Actor::System,
            t(4),
            EventKind::EtaChanged {
                eta: Eta::NoHistory,
            },
        ),
        (
            Actor::System,
            t(5),
            EventKind::Prompt {
                text: "Ask the vendor for a timeline".into(),
            },
        ),
        (
            user("ana"),
            t(6),
            note("'; DROP TABLE incident_events; -- and a NUL \u{0} and 約15,000人"),
        ),
        (user("ana"), t(7), EventKind::Acknowledged { via: None }),
        (
            user("ana"),
            t(8),
            EventKind::RoleAssigned {
                role: IncidentRole::Commander,
                person: "ana".into(),
            },
        ),
        (
            user("ana"),
            t(8),
            EventKind::RoleAssigned {
                role: IncidentRole::Communications,
                person: "bo".into(),
            },
        ),
        (user("bo"), t(9), EventKind::StepTicked { step: 1 }),
        (
            Actor::System,
            t(10),
            EventKind::StateChanged {
                from: IncidentState::Monitoring,
                to: IncidentState::Resolved,
                reason: "stable for 5m".into(),
            },
        ),
        (
            Actor::System,
            t(11),
            EventKind::Reopened {
                recurrences: 1,
                reason: "db down again within the recurrence window".into(),
            },
        ),
        (
            user("ana"),
            t(12),
            EventKind::ActionItemAdded {
                item: 1,
                text: "Alert on replication lag".into(),
                owner: Some("bo".into()),
            },
        ),
        (
            user("ana"),
            t(12),
            EventKind::ActionItemAdded {
                item: 2,
                text: "Document fail-over".into(),
                owner: None,
            },
        ),
        (user("bo"), t(13), EventKind::ActionItemClosed { item: 1 }),
        (
            user("ana"),
            t(14),
            EventKind::RootCause {
                text: "The disk filled.\n\n* logs were not rotated".into(),
            },
        ),
        (
            user(""),
            t(15),
            EventKind::SeverityChanged {
                from: Some(Severity::Sev2),
                to: Severity::Sev1,
                reason: "by hand".into(),
            },
        ),
        (
            Actor::System,
            t(16),
            EventKind::Recovered {
                reason: "every signal of db is green".into(),
            },
        ),
        (
            Actor::System,
            t(17),
            EventKind::Relapsed {
                health: Health::Degraded,
                reason: "db-tcp: slow handshake".into(),
            },
        ),
        (
            Actor::System,
            t(18),
            EventKind::CauseChanged {
                title: "Storage unreachable".into(),
                cause: NodeId::parse("storage").unwrap(),
                cause_kind: "infra".into(),
                failure_kind: "tcp".into(),
                reason: "db's own dependency storage fails too".into(),
            },
        ),
        (
            Actor::System,
            t(19),
            EventKind::DraftPrepared {
                draft: 1,
                status: PublicStatus::Investigating,
                title: LocalizedText {
                    by_locale: [
                        ("en".to_string(), "Problem affecting Search".to_string()),
                        ("ja".to_string(), "検索サービスに影響する障害".to_string()),
                    ]
                    .into_iter()
                    .collect(),
                },
                body: LocalizedText::plain("We are investigating. \"Quotes\", \\ and 約500人"),
                due_at: t0 + TimeDelta::milliseconds(121_500),
            },
        ),
        (user("ana"), t(20), EventKind::DraftHeld { draft: 1 }),
        (
            user("root"),
            t(21),
            EventKind::UpdatePublished {
                update: 1,
                status: PublicStatus::Identified,
                title: LocalizedText::plain("Problem affecting Search"),
                body: LocalizedText::plain("We found the cause."),
                draft: None,
                auto: false,
                disclosure_override: Some("approved by legal".into()),
            },
        ),
        (
            Actor::System,
            t(22),
            EventKind::UpdatePublished {
                update: 2,
                status: PublicStatus::Resolved,
                title: LocalizedText::plain("Problem affecting Search"),
                body: LocalizedText::plain("Resolved."),
                draft: Some(2),
                auto: true,
                disclosure_override: None,
            },
        ),
    ];
    (opening, rest)
}

async fn incident_timeline_round_trips_every_event_kind(store: Arc<dyn Store>) {
    // Sub-millisecond parts of `at` are dropped; times inside the event JSON keep everything.
    let t0 = at(2026, 3, 1, 12, 0) + TimeDelta::nanoseconds(987_654_321);
    let (opening, rest) = timeline_of_every_kind(t0);
    let id = store.create_incident(&opening).await.expect("create");

    // Two appends, the second from where the first left off.
    let (a, b) = rest.split_at(5);
    let stored_a = store
        .append_incident_events(id, 3, a)
        .await
        .expect("append a");
    assert_eq!(stored_a, expected(id, 4, a));
    let stored_b = store
        .append_incident_events(id, 8, b)
        .await
        .expect("append b");
    assert_eq!(stored_b, expected(id, 9, b));

    // An empty append changes nothing and still checks the seq.
    assert!(store
        .append_incident_events(id, 8 + b.len() as u32, &[])
        .await
        .unwrap()
        .is_empty());

    let all: Vec<NewEvent> = opening.iter().chain(&rest).cloned().collect();
    let want = expected(id, 1, &all);
    let got = store.incident_events(id).await.unwrap();
    assert_eq!(got, want);
    // Through JSON as the API sends them, too.
    let json = serde_json::to_string(&got).unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<IncidentEvent>>(&json).unwrap(),
        want
    );
    assert_eq!(store.all_incident_events().await.unwrap(), want);
}

async fn incident_ids_increase_and_are_never_shared(store: Arc<dyn Store>) {
    let t0 = at(2026, 3, 1, 12, 0);
    let mut ids = Vec::new();
    for i in 0..3 {
        let title = format!("incident {i}");
        ids.push(
            store
                .create_incident(&[(Actor::System, t0, opened(&title, t0))])
                .await
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");

    // Concurrent creators each get their own id, and their own events under it.
    let creators = (0..8).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            let title = format!("writer {w}");
            let id = store
                .create_incident(&[
                    (Actor::System, t0, opened(&title, t0)),
                    (user(&title), t0, note(&title)),
                ])
                .await
                .expect("create");
            (id, title)
        })
    });
    let mut made = Vec::new();
    for creator in creators.collect::<Vec<_>>() {
        made.push(creator.await.expect("creator task"));
    }
    let mut new_ids: Vec<IncidentId> = made.iter().map(|(id, _)| *id).collect();
    new_ids.sort_unstable();
    new_ids.dedup();
    assert_eq!(new_ids.len(), 8, "every incident got its own id");
    assert!(new_ids[0] > ids[2], "{new_ids:?} after {ids:?}");
    for (id, title) in &made {
        let events = store.incident_events(*id).await.unwrap();
        assert_eq!(events.len(), 2);
        assert!(
            matches!(&events[0].kind, EventKind::Opened { title: t, .. } if t == title),
            "{events:?}"
        );
        assert_eq!(events[1].kind, note(title));
    }
    ids.extend(new_ids);
    let stored: BTreeSet<IncidentId> = store
        .all_incident_events()
        .await
        .unwrap()
        .iter()
        .map(|e| e.incident)
        .collect();
    assert_eq!(stored, ids.into_iter().collect());
}

async fn concurrent_appends_with_one_expected_seq_exactly_one_wins(store: Arc<dyn Store>) {
    let t0 = at(2026, 3, 1, 12, 0);
    let id = store
        .create_incident(&[(Actor::System, t0, opened("db down", t0))])
        .await
        .unwrap();
    let mut last = 1u32;
    // Several rounds: one winner each time, the rest told what they missed.
    for round in 0..5 {
        let start = Arc::new(tokio::sync::Barrier::new(6));
        let writers = (0..6).map(|w| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                let events = vec![
                    (
                        user(&format!("w{w}")),
                        t0,
                        note(&format!("round {round} writer {w}")),
                    ),
                    (
                        user(&format!("w{w}")),
                        t0,
                        EventKind::Acknowledged { via: None },
                    ),
                ];
                start.wait().await;
                (w, store.append_incident_events(id, last, &events).await)
            })
        });
        let mut winners = Vec::new();
        for writer in writers.collect::<Vec<_>>() {
            let (w, result) = writer.await.expect("writer task");
            match result {
                Ok(stored) => {
                    assert_eq!(
                        stored.iter().map(|e| e.seq).collect::<Vec<_>>(),
                        vec![last + 1, last + 2]
                    );
                    winners.push(w);
                }
                Err(StoreError::Conflict(msg)) => assert_eq!(
                    msg,
                    format!(
                        "incident {id} changed: expected seq {last}, found {}",
                        last + 2
                    )
                ),
                Err(other) => panic!("writer {w}: {other:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        last += 2;
        let events = store.incident_events(id).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=last).collect::<Vec<_>>()
        );
        // The stored pair is the winner's, whole.
        assert_eq!(
            events[last as usize - 2].kind,
            note(&format!("round {round} writer {}", winners[0]))
        );
        assert_eq!(
            events[last as usize - 1].actor,
            user(&format!("w{}", winners[0]))
        );
    }
}

async fn stale_or_future_expected_seq_is_a_conflict_and_stores_nothing(store: Arc<dyn Store>) {
    let t0 = at(2026, 3, 1, 12, 0);
    let id = store
        .create_incident(&[
            (Actor::System, t0, opened("db down", t0)),
            (Actor::System, t0, note("one")),
            (Actor::System, t0, note("two")),
        ])
        .await
        .unwrap();
    let before = store.incident_events(id).await.unwrap();
    let late = [(user("ana"), t0, note("late"))];
    for expected_seq in [0, 1, 2, 4, 99, u32::MAX - 1] {
        let err = store
            .append_incident_events(id, expected_seq, &late)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("conflict: incident {id} changed: expected seq {expected_seq}, found 3")
        );
        let err = store
            .append_incident_events(id, expected_seq, &[])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    }
    assert_eq!(store.incident_events(id).await.unwrap(), before);
    // The right seq still works afterwards.
    let stored = store.append_incident_events(id, 3, &late).await.unwrap();
    assert_eq!(stored[0].seq, 4);
}

async fn unknown_incident_is_not_found(store: Arc<dyn Store>) {
    let t0 = at(2026, 3, 1, 12, 0);
    assert!(store.all_incident_events().await.unwrap().is_empty());
    for id in [0, 424_242, -1].map(IncidentId) {
        let err = store.incident_events(id).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert!(err.to_string().contains(&format!("incident {id}")), "{err}");
        let err = store
            .append_incident_events(id, 1, &[(Actor::System, t0, note("x"))])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert!(err.to_string().contains(&format!("incident {id}")), "{err}");
        let err = store.append_incident_events(id, 0, &[]).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }
    assert!(store.all_incident_events().await.unwrap().is_empty());
}

async fn incidents_must_open_with_opened_and_only_once(store: Arc<dyn Store>) {
    let t0 = at(2026, 3, 1, 12, 0);
    let err = store.create_incident(&[]).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("Opened"), "{err}");

    let err = store
        .create_incident(&[
            (Actor::System, t0, note("hello")),
            (Actor::System, t0, opened("db down", t0)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "invalid: an incident's first event must be opened, not note"
    );

    let err = store
        .create_incident(&[
            (Actor::System, t0, opened("db down", t0)),
            (Actor::System, t0, note("hello")),
            (Actor::System, t0, opened("again", t0)),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("event 3 of the batch"), "{err}");

    // Nothing of the refused batches was kept.
    assert!(store.all_incident_events().await.unwrap().is_empty());

    let id = store
        .create_incident(&[(Actor::System, t0, opened("db down", t0))])
        .await
        .unwrap();
    let err = store
        .append_incident_events(
            id,
            1,
            &[
                (Actor::System, t0, note("fine")),
                (Actor::System, t0, opened("db down", t0)),
            ],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("event 2 of the batch"), "{err}");

    // PostgreSQL cannot keep NUL in a name; both backends refuse it alike.
    let err = store
        .append_incident_events(id, 1, &[(user("a\u{0}b"), t0, note("x"))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("NUL"), "{err}");
    let err = store
        .create_incident(&[(user("a\u{0}b"), t0, opened("x", t0))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");

    // Seqs are u32: a batch that would pass the largest is refused before touching anything.
    let err = store
        .append_incident_events(id, u32::MAX, &[(Actor::System, t0, note("x"))])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");

    assert_eq!(store.incident_events(id).await.unwrap().len(), 1);
}

async fn all_incident_events_are_ordered_by_incident_then_seq(store: Arc<dyn Store>) {
    let t0 = at(2026, 3, 1, 12, 0);
    let a = store
        .create_incident(&[(Actor::System, t0, opened("a", t0))])
        .await
        .unwrap();
    let b = store
        .create_incident(&[
            (Actor::System, t0, opened("b", t0)),
            (Actor::System, t0, note("b2")),
        ])
        .await
        .unwrap();
    // Written after b, with earlier timestamps: order is by (incident, seq), not by time or
    // by insertion.
    let early = t0 - TimeDelta::hours(1);
    store
        .append_incident_events(a, 1, &[(user("ana"), early, note("a2"))])
        .await
        .unwrap();
    store
        .append_incident_events(b, 2, &[(user("ana"), early, note("b3"))])
        .await
        .unwrap();
    store
        .append_incident_events(a, 2, &[(user("bo"), early, note("a3"))])
        .await
        .unwrap();
    let order: Vec<(IncidentId, u32)> = store
        .all_incident_events()
        .await
        .unwrap()
        .iter()
        .map(|e| (e.incident, e.seq))
        .collect();
    assert_eq!(order, vec![(a, 1), (a, 2), (a, 3), (b, 1), (b, 2), (b, 3)]);
    assert_eq!(store.incident_events(a).await.unwrap()[2].kind, note("a3"));
}

// ---------------------------------------------------------------------------------------------
// Backend-specific behaviour and faults
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sqlite_data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let t = at(2026, 3, 1, 12, 0);
    {
        let store = SqliteStore::open_in_dir(&dir.path().join("nested/data"))
            .await
            .unwrap();
        store
            .append_signal(&signal(
                SourceKind::Monitor,
                "api",
                Health::Down,
                "HTTP 503",
                t,
            ))
            .await
            .unwrap();
        store.close().await;
    }
    let path = dir.path().join("nested/data/keel.db");
    // Reopening runs the (already applied) migrations again, harmlessly.
    let store = keel_store::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(store.backend(), "sqlite");
    let signals = store.signals_after(0, 10).await.unwrap();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].signal.reason, "HTTP 503");
    let seq = store
        .append_signal(&signal(
            SourceKind::Monitor,
            "api",
            Health::Up,
            "HTTP 200",
            t,
        ))
        .await
        .unwrap();
    assert!(seq > signals[0].seq);
}

#[tokio::test]
async fn sqlite_under_a_regular_file_is_unavailable_with_the_reason() {
    // Running as root, permissions would not stop us; a path through a regular file does.
    let file = tempfile::NamedTempFile::new().unwrap();
    let path = file.path().join("keel.db");
    let err = SqliteStore::open(path.to_str().unwrap()).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        msg.contains(&format!(
            "cannot open SQLite database at {}: ",
            path.display()
        )),
        "{msg}"
    );
    assert!(msg.contains("Not a directory"), "{msg}");

    let err = SqliteStore::open_in_dir(&file.path().join("data"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string().contains("cannot create data directory"),
        "{err}"
    );

    let err = keel_store::open(&format!("sqlite://{}", path.display()))
        .await
        .err()
        .expect("must fail");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_names_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let url = format!("sqlite://{}/keel.db", missing.display());
    let err = keel_store::open(&url).await.err().expect("must fail");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("directory {} does not exist", missing.display())),
        "{err}"
    );
}

#[tokio::test]
async fn sqlite_under_proc_is_unavailable() {
    let err = SqliteStore::open("/proc/keel-test/keel.db")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("cannot open SQLite database at /proc/keel-test/keel.db"),
        "{err}"
    );
}

#[tokio::test]
async fn sqlite_file_that_is_not_a_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keel.db");
    std::fs::write(
        &path,
        b"this is a status page export, not SQLite\n".repeat(100),
    )
    .unwrap();
    let err = SqliteStore::open(path.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("not a database"), "{err}");
}

#[tokio::test]
async fn sqlite_rows_keel_did_not_write_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", store.path().display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO signals (source_kind, source_id, component, health, reason, at)
         VALUES ('monitor', 'api', 'api', 'sideways', 'hand-edited', 0)",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO source_states (kind, id, component, health, since, reason, streak)
         VALUES ('robot', 'x', 'c', 'up', 0, '', 0)",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    sqlx::query("INSERT INTO rollups_minute VALUES ('a', 0, 'web', 9999999999, 0, 1, 1, 1)")
        .execute(&mut raw)
        .await
        .unwrap();

    let err = store.signals_after(0, 10).await.unwrap_err();
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    assert!(err.to_string().contains("sideways"), "{err}");
    let err = store.load_source_states().await.unwrap_err();
    assert!(err.to_string().contains("robot"), "{err}");
    let err = store
        .rollups(&key("a"), DateTime::UNIX_EPOCH, at(2026, 1, 1, 0, 0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
}

#[tokio::test]
async fn sqlite_incident_rows_keel_did_not_write_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let t0 = at(2026, 3, 1, 12, 0);
    let id = store
        .create_incident(&[(Actor::System, t0, opened("db down", t0))])
        .await
        .unwrap();
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", store.path().display()))
        .await
        .unwrap();
    // The tag column is there for queries.
    let (tag,): (String,) =
        sqlx::query_as("SELECT type FROM incident_events WHERE incident = ? AND seq = 1")
            .bind(id.get())
            .fetch_one(&mut raw)
            .await
            .unwrap();
    assert_eq!(tag, "opened");

    // An event kind from a newer Keel.
    sqlx::query(
        "INSERT INTO incident_events VALUES (?, 2, 0, 'system', NULL, 'page_snoozed',
             '{\"type\":\"page_snoozed\",\"who\":\"ana\"}')",
    )
    .bind(id.get())
    .execute(&mut raw)
    .await
    .unwrap();
    let err = store.incident_events(id).await.unwrap_err();
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&format!("incident {id} event 2")), "{msg}");
    assert!(msg.contains("page_snoozed"), "{msg}");
    assert!(msg.contains("newer Keel"), "{msg}");
    let err = store.all_incident_events().await.unwrap_err();
    assert!(err.to_string().contains("event 2"), "{err}");

    // An actor that is neither shape, and JSON that is not JSON.
    sqlx::query("UPDATE incident_events SET kind = '{\"type\":\"acknowledged\"}', actor_type = 'user', actor_name = NULL WHERE seq = 2")
        .execute(&mut raw)
        .await
        .unwrap();
    let err = store.incident_events(id).await.unwrap_err();
    assert!(err.to_string().contains("actor type \"user\""), "{err}");
    sqlx::query(
        "UPDATE incident_events SET kind = '{not json', actor_type = 'system' WHERE seq = 2",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    let err = store.incident_events(id).await.unwrap_err();
    assert!(err.to_string().contains("event is not JSON"), "{err}");
}

/// Stores the whole every-kind timeline and returns the `type` column's values to compare
/// with `EventKind::name`, what queries and the API call each event.
async fn store_every_kind(store: &dyn Store) -> (IncidentId, Vec<&'static str>) {
    let (opening, rest) = timeline_of_every_kind(at(2026, 3, 1, 12, 0));
    let id = store.create_incident(&opening).await.unwrap();
    store
        .append_incident_events(id, opening.len() as u32, &rest)
        .await
        .unwrap();
    let names = opening
        .iter()
        .chain(&rest)
        .map(|(_, _, k)| k.name())
        .collect();
    (id, names)
}

#[tokio::test]
async fn sqlite_type_column_is_the_event_name() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let (id, names) = store_every_kind(&store).await;
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", store.path().display()))
        .await
        .unwrap();
    let tags: Vec<(String,)> =
        sqlx::query_as("SELECT type FROM incident_events WHERE incident = ? ORDER BY seq")
            .bind(id.get())
            .fetch_all(&mut raw)
            .await
            .unwrap();
    assert_eq!(tags.into_iter().map(|(t,)| t).collect::<Vec<_>>(), names);
}

#[tokio::test]
async fn sqlite_incidents_survive_a_restart_and_ids_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = at(2026, 3, 1, 12, 0);
    let (first, second) = {
        let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
        let first = store
            .create_incident(&[(Actor::System, t0, opened("a", t0))])
            .await
            .unwrap();
        let second = store
            .create_incident(&[(Actor::System, t0, opened("b", t0))])
            .await
            .unwrap();
        store
            .append_incident_events(first, 1, &[(user("ana"), t0, note("still here"))])
            .await
            .unwrap();
        // Even if the newest incident's rows were removed by hand, its id stays used.
        let mut raw =
            sqlx::SqliteConnection::connect(&format!("sqlite://{}", store.path().display()))
                .await
                .unwrap();
        sqlx::query("DELETE FROM incident_events WHERE incident = ?")
            .bind(second.get())
            .execute(&mut raw)
            .await
            .unwrap();
        sqlx::query("DELETE FROM incidents WHERE id = ?")
            .bind(second.get())
            .execute(&mut raw)
            .await
            .unwrap();
        store.close().await;
        (first, second)
    };
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let events = store.incident_events(first).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].kind, note("still here"));
    let third = store
        .create_incident(&[(Actor::System, t0, opened("c", t0))])
        .await
        .unwrap();
    assert!(third > second, "{third} after {second}");
    // The append resumes from the stored last seq.
    let err = store
        .append_incident_events(first, 1, &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("found 2"), "{err}");
}

#[tokio::test]
async fn sqlite_closed_store_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    store.close().await;
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn unsupported_urls_are_refused_without_leaking_the_password() {
    for url in [
        "mysql://keel:s3cret@db/keel",
        "keel.db",
        "sqlite:keel.db",
        "sqlite://",
    ] {
        let err = keel_store::open(url).await.err().expect("must fail");
        assert!(
            matches!(err, StoreError::UnsupportedUrl(_)),
            "{url}: {err:?}"
        );
        let msg = err.to_string();
        assert!(!msg.contains("s3cret"), "{msg}");
        assert!(msg.contains("sqlite://PATH"), "{msg}");
    }
}

#[tokio::test]
async fn postgres_at_a_closed_port_is_unavailable_quickly_with_a_clear_message() {
    let url = "postgres://keel:s3cret@127.0.0.1:1/keel";
    let err = tokio::time::timeout(HANG_GUARD, keel_store::open(url))
        .await
        .expect("hang guard")
        .err()
        .expect("must fail");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot connect to PostgreSQL at 127.0.0.1:1: "),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("refused"), "{msg}");
    assert!(!msg.contains("s3cret"), "{msg}");
}

#[tokio::test]
async fn postgres_url_that_does_not_parse_is_refused_without_leaking_the_password() {
    for url in [
        "postgres://keel:s3cret@[::1/keel",
        "postgres://keel:s3cret@db:notaport/keel",
    ] {
        let err = PgStore::open(url).await.expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.contains("invalid PostgreSQL URL"), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
    }
}

#[tokio::test]
async fn postgres_missing_database_is_unavailable_with_the_reason() {
    let Some(_admin) = pg_admin().await else {
        return;
    };
    let mut url = pg_base_url();
    let path_start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let db_start = url[path_start..]
        .find('/')
        .map(|i| path_start + i)
        .expect("KEEL_TEST_DATABASE_URL names a database");
    let db_end = url[db_start..]
        .find('?')
        .map(|i| db_start + i)
        .unwrap_or(url.len());
    url.replace_range(db_start..db_end, "/keel_no_such_database");
    let err = PgStore::open(&url).await.expect_err("must fail");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("cannot connect to PostgreSQL at "), "{msg}");
    assert!(msg.contains("keel_no_such_database"), "{msg}");
}

#[tokio::test]
async fn postgres_instances_starting_together_share_one_schema() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let outcome = AssertUnwindSafe(async {
        // Both run migrations at once; sqlx's advisory lock makes one wait for the other.
        let (a, b, c) = tokio::join!(
            keel_store::open(&schema.url),
            keel_store::open(&schema.url),
            keel_store::open(&schema.url)
        );
        let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
        let t = at(2026, 3, 1, 12, 0);
        let seq = a
            .append_signal(&signal(
                SourceKind::Monitor,
                "api",
                Health::Down,
                "HTTP 503",
                t,
            ))
            .await
            .unwrap();
        let seen = b.signals_after(0, 10).await.unwrap();
        assert_eq!(seen.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![seq]);
        c.add_rollups(&[rollup("a", "web", t, 3, 1)]).await.unwrap();
        a.add_rollups(&[rollup("a", "web", t, 3, 0)]).await.unwrap();
        let up = b
            .daily_uptime(&node("web"), t.date_naive(), t.date_naive())
            .await
            .unwrap();
        assert_eq!((up[0].checks, up[0].failures), (6, 1));
    })
    .catch_unwind()
    .await;
    schema.drop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn postgres_instances_share_incident_ids_and_one_append_wins() {
    let Some(mut schema) = TestSchema::create().await else {
        return;
    };
    let outcome = AssertUnwindSafe(async {
        let (a, b) = tokio::join!(PgStore::open(&schema.url), PgStore::open(&schema.url));
        let (a, b) = (a.unwrap(), b.unwrap());
        let t0 = at(2026, 3, 1, 12, 0);

        // Two instances creating at once: distinct ids, each readable from the other.
        let mut ids = Vec::new();
        for i in 0..5 {
            let from_a = [(Actor::System, t0, opened(&format!("a{i}"), t0))];
            let from_b = [(Actor::System, t0, opened(&format!("b{i}"), t0))];
            let (x, y) = tokio::join!(a.create_incident(&from_a), b.create_incident(&from_b));
            ids.push(x.unwrap());
            ids.push(y.unwrap());
        }
        let distinct: BTreeSet<IncidentId> = ids.iter().copied().collect();
        assert_eq!(distinct.len(), ids.len(), "{ids:?}");
        assert_eq!(b.incident_events(ids[0]).await.unwrap().len(), 1);

        // Two instances appending at the same seq: exactly one wins.
        let id = ids[0];
        let from_a = [(user("a"), t0, note("from a"))];
        let from_b = [(user("b"), t0, note("from b"))];
        let (x, y) = tokio::join!(
            a.append_incident_events(id, 1, &from_a),
            b.append_incident_events(id, 1, &from_b),
        );
        let (won, lost) = match (x, y) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
            other => panic!("expected one winner: {other:?}"),
        };
        assert_eq!(won[0].seq, 2);
        assert!(matches!(lost, StoreError::Conflict(_)), "{lost:?}");
        assert!(
            lost.to_string().contains("expected seq 1, found 2"),
            "{lost}"
        );
        let seen_by_a = a.incident_events(id).await.unwrap();
        assert_eq!(seen_by_a, b.incident_events(id).await.unwrap());
        assert_eq!(seen_by_a[1..], won[..]);

        // The tag column is there for queries.
        let tags: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT type FROM {}.incident_events WHERE incident = $1 ORDER BY seq",
            schema.name
        ))
        .bind(id.get())
        .fetch_all(&mut schema.admin)
        .await
        .unwrap();
        assert_eq!(tags, vec![("opened".to_string(),), ("note".to_string(),)]);
        a.close().await;
        b.close().await;
    })
    .catch_unwind()
    .await;
    schema.drop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn postgres_type_column_is_the_event_name() {
    let Some(mut schema) = TestSchema::create().await else {
        return;
    };
    let outcome = AssertUnwindSafe(async {
        let store = PgStore::open(&schema.url).await.unwrap();
        let (id, names) = store_every_kind(&store).await;
        store.close().await;
        let tags: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT type FROM {}.incident_events WHERE incident = $1 ORDER BY seq",
            schema.name
        ))
        .bind(id.get())
        .fetch_all(&mut schema.admin)
        .await
        .unwrap();
        assert_eq!(tags.into_iter().map(|(t,)| t).collect::<Vec<_>>(), names);
    })
    .catch_unwind()
    .await;
    schema.drop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn postgres_closed_store_is_unavailable() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let store = PgStore::open(&schema.url).await;
    if let Ok(store) = &store {
        store.close().await;
    }
    schema.drop().await;
    let err = store.expect("open").ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
}

/// `sslmode` in database_url is honoured: `require` encrypts (checked on the server's side, in
/// pg_stat_ssl), `disable` does not, and `verify-full` refuses a certificate no known authority
/// signed, saying so. Needs a server with TLS on (CI's has); says plainly when it has not.
#[tokio::test]
async fn postgres_sslmode_is_honoured() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let outcome = AssertUnwindSafe(async {
        let mut admin = sqlx::PgConnection::connect(&pg_base_url()).await.unwrap();
        let (ssl,): (String,) = sqlx::query_as("SHOW ssl")
            .fetch_one(&mut admin)
            .await
            .unwrap();
        if ssl != "on" {
            eprintln!("SKIPPED: the PostgreSQL test server has ssl = {ssl}; TLS not tested");
            return;
        }
        let with = |mode: &str| format!("{}&sslmode={mode}", schema.url);

        let tls = PgStore::open(&with("require")).await.unwrap();
        assert!(tls.encrypted().await.unwrap());
        tls.create_token("tls", "viewer", &"ab".repeat(32))
            .await
            .unwrap();
        assert_eq!(tls.token_list().await.unwrap().len(), 1);

        let plain = PgStore::open(&with("disable")).await.unwrap();
        assert!(!plain.encrypted().await.unwrap());
        assert_eq!(plain.token_list().await.unwrap().len(), 1);

        // The test server's certificate is self-signed (Debian's snakeoil): no root knows it.
        let err = PgStore::open(&with("verify-full"))
            .await
            .expect_err("an unknown certificate must be refused");
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains("cannot connect to PostgreSQL at "), "{msg}");
        assert!(msg.to_lowercase().contains("certificate"), "{msg}");
    })
    .catch_unwind()
    .await;
    schema.drop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Rows whose id text no longer parses into its type (edited by hand, or written by a Keel
/// with looser rules), one per table that keeps an id, with the error each read must give:
/// the column and the value, never a panic.
fn rows_with_bad_ids(now: &str) -> Vec<(String, &'static str)> {
    vec![
        (
            format!(
                "INSERT INTO signals (source_kind, source_id, component, health, reason, at)
                 VALUES ('monitor', 'API', 'api', 'up', '', {now})"
            ),
            "signals.source_id \"API\"",
        ),
        (
            format!(
                "INSERT INTO source_states (kind, id, component, health, since, reason, streak)
                 VALUES ('vendor', 'stripe', 'Payments Team', 'up', {now}, '', 0)"
            ),
            "source_states.component \"Payments Team\"",
        ),
        (
            format!("INSERT INTO rollups_minute VALUES ('a', {now}, 'Web', 1, 0, 1, 1, 1)"),
            "rollups_minute.component \"Web\"",
        ),
        (
            format!("INSERT INTO heartbeats (monitor, at) VALUES ('nightly backup', {now})"),
            "heartbeats.monitor \"nightly backup\"",
        ),
    ]
}

async fn bad_ids_are_reported(store: &dyn Store) {
    let wanted: Vec<&str> = rows_with_bad_ids("0").into_iter().map(|(_, w)| w).collect();
    let far = |days: i64| Utc::now() + TimeDelta::days(days);
    let errors = [
        store.signals_after(0, 10).await.map(|_| ()),
        store.load_source_states().await.map(|_| ()),
        store.rollups(&key("a"), far(-2), far(2)).await.map(|_| ()),
        store.heartbeats().await.map(|_| ()),
    ];
    for (err, wanted) in errors.into_iter().zip(wanted) {
        let err = err.unwrap_err();
        assert!(matches!(err, StoreError::Other(_)), "{err:?}");
        assert!(err.to_string().contains(wanted), "{err} lacks {wanted}");
    }
}

#[tokio::test]
async fn sqlite_ids_that_no_longer_parse_are_reported_with_column_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", store.path().display()))
        .await
        .unwrap();
    let now = Utc::now().timestamp_millis().to_string();
    for (sql, _) in rows_with_bad_ids(&now) {
        sqlx::query(&sql).execute(&mut raw).await.unwrap();
    }
    bad_ids_are_reported(&store).await;
}

#[tokio::test]
async fn postgres_ids_that_no_longer_parse_are_reported_with_column_and_value() {
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let store = PgStore::open(&schema.url).await.unwrap();
    let mut raw = sqlx::PgConnection::connect(&schema.url).await.unwrap();
    for (sql, _) in rows_with_bad_ids("now()") {
        sqlx::query(&sql).execute(&mut raw).await.unwrap();
    }
    bad_ids_are_reported(&store).await;
    raw.close().await.unwrap();
    store.close().await;
    schema.drop().await;
}
