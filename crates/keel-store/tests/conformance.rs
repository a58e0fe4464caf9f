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

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};
use futures::FutureExt;
use keel_core::confirm::Tracker;
use keel_core::rollup::MinuteRollup;
use keel_core::{Health, Signal, SourceKind};
use keel_store::postgres::PgStore;
use keel_store::sqlite::SqliteStore;
use keel_store::{SourceState, Store, StoreError};
use sqlx::Connection;

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Only a guard against a hung test, never a performance bar.
const HANG_GUARD: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

async fn with_sqlite<F, Fut>(story: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open_in_dir(dir.path())
        .await
        .expect("open SQLite store");
    assert_eq!(store.backend(), "sqlite");
    tokio::time::timeout(HANG_GUARD, story(Arc::new(store)))
        .await
        .expect("story hung");
}

async fn with_postgres<F, Fut>(story: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let store = PgStore::open(&schema.url)
        .await
        .expect("open PostgreSQL store");
    assert_eq!(store.backend(), "postgres");
    let outcome = AssertUnwindSafe(tokio::time::timeout(
        HANG_GUARD,
        story(Arc::new(store.clone())),
    ))
    .catch_unwind()
    .await;
    // Clean up before reporting a failure, so a failing test leaves no schema behind.
    store.close().await;
    schema.drop().await;
    match outcome {
        Ok(finished) => finished.expect("story hung"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn pg_base_url() -> String {
    std::env::var("KEEL_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_string())
}

/// Connects to the test server, or decides what its absence means: a failure when
/// `KEEL_REQUIRE_POSTGRES=1`, a visible skip otherwise.
async fn pg_admin() -> Option<sqlx::PgConnection> {
    let url = pg_base_url();
    let connected =
        tokio::time::timeout(Duration::from_secs(10), sqlx::PgConnection::connect(&url)).await;
    // Name the server, never the URL: it may hold a password, and this lands in CI logs.
    let url = match sqlx::postgres::PgConnectOptions::from_str(&url) {
        Ok(o) => format!("{}:{}", o.get_host(), o.get_port()),
        Err(_) => "KEEL_TEST_DATABASE_URL (which does not parse)".to_string(),
    };
    let reason = match connected {
        Ok(Ok(conn)) => return Some(conn),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 10s".to_string(),
    };
    if std::env::var("KEEL_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!(
            "PostgreSQL not reachable at {url} ({reason}), and KEEL_REQUIRE_POSTGRES=1 \
             requires it: start it or point KEEL_TEST_DATABASE_URL at one"
        );
    }
    eprintln!("SKIPPED: PostgreSQL not reachable at {url} ({reason})");
    None
}

/// A schema of its own for one test, and a URL whose connections use it.
struct TestSchema {
    admin: sqlx::PgConnection,
    name: String,
    url: String,
}

impl TestSchema {
    async fn create() -> Option<TestSchema> {
        let mut admin = pg_admin().await?;
        let name = format!("keel_t_{:016x}", rand::random::<u64>());
        sqlx::query(&format!("CREATE SCHEMA {name}"))
            .execute(&mut admin)
            .await
            .expect("create test schema");
        let base = pg_base_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options[search_path]={name}");
        Some(TestSchema { admin, name, url })
    }

    async fn drop(mut self) {
        let dropped = sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.name))
            .execute(&mut self.admin)
            .await;
        if let Err(e) = dropped {
            eprintln!("could not drop test schema {}: {e}", self.name);
        }
    }
}

/// Declares each story once per backend: `sqlite::NAME` and `postgres::NAME`.
macro_rules! on_both_backends {
    ($($story:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $story() {
                    super::with_sqlite(super::$story).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $story() {
                    super::with_postgres(super::$story).await;
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

fn signal(kind: SourceKind, id: &str, health: Health, reason: &str, at: DateTime<Utc>) -> Signal {
    Signal {
        source_kind: kind,
        source_id: id.to_string(),
        component: format!("{id}-component"),
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
        monitor_id: monitor.to_string(),
        component: component.to_string(),
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
            "fp-3f2a",
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
        kind: SourceKind::Monitor,
        id: "api".into(),
        component: "api".into(),
        tracker: Tracker {
            health: Health::Down,
            since: t0,
            reason: "timed out after 5s".into(),
            latency_ms: Some(5_000),
            last_checked: Some(t0 + TimeDelta::seconds(30)),
            pending: Some(Health::Down),
            streak: 2,
        },
    };
    let github = SourceState {
        kind: SourceKind::Vendor,
        id: "github".into(),
        component: "github".into(),
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
    let a_day1 = store.rollups("a", at(2026, 3, 1, 0, 0), t3).await.unwrap();
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
        .rollups("a", t2, t3 + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(around_midnight.len(), 2);
    assert_eq!(around_midnight[0], merged_t2);
    assert_eq!(around_midnight[1].minute, t3);
    assert!(store.rollups("nobody", t1, t3).await.unwrap().is_empty());

    // Day totals: every incoming rollup counted once, both monitors of "web" together.
    let web = store.daily_uptime("web", d1, d2).await.unwrap();
    assert_eq!(web.len(), 2, "{web:?}");
    assert_eq!(
        (web[0].day, web[0].checks, web[0].failures),
        (d1, 8 + 10 + 6, 1 + 3 + 6)
    );
    assert_eq!((web[1].day, web[1].checks, web[1].failures), (d2, 6, 3));
    assert_eq!(web[0].component, "web");
    assert_eq!(web[0].ratio(), Some(14.0 / 24.0));
    assert_eq!(web[1].ratio(), Some(0.5));

    // The day range is inclusive at both ends.
    let only_d2 = store.daily_uptime("web", d2, d2).await.unwrap();
    assert_eq!(only_d2.iter().map(|u| u.day).collect::<Vec<_>>(), vec![d2]);
    let db = store.daily_uptime("db", d1, d2).await.unwrap();
    assert_eq!(db.len(), 1);
    assert_eq!(
        (db[0].checks, db[0].failures, db[0].ratio()),
        (5, 0, Some(1.0))
    );
    assert!(store
        .daily_uptime("web", day(2026, 2, 1), day(2026, 2, 28))
        .await
        .unwrap()
        .is_empty());
    // Days without checks are left out.
    assert!(store
        .daily_uptime("quiet", d1, d2)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .daily_uptime("nothing", d1, d2)
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
    assert_eq!(store.rollups("a", t, next).await.unwrap()[0].checks, 40);
    assert_eq!(store.rollups("b", t, next).await.unwrap()[0].failures, 40);
    let web = store
        .daily_uptime("web", t.date_naive(), t.date_naive())
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
        .rollups("a", t, t + TimeDelta::minutes(1))
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .daily_uptime("web", t.date_naive(), t.date_naive())
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
        .rollups("a", t1, t3 + TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|r| r.minute).collect::<Vec<_>>(),
        vec![t2, t3]
    );
    let days = store.daily_uptime("web", d1, d3).await.unwrap();
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
    assert!(store.rollups("b", t1, t3).await.unwrap().is_empty());
    assert_eq!(store.daily_uptime("web", d1, d3).await.unwrap().len(), 2);
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
        .rollups("a", DateTime::UNIX_EPOCH, at(2026, 1, 1, 0, 0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
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
            .daily_uptime("web", t.date_naive(), t.date_naive())
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
