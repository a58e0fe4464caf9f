//! `keel backup` / `keel restore` at the store level: real SQLite files and the real
//! PostgreSQL (a private schema per database, dropped afterwards; see tests/support).
//!
//! - Round trips both ways with every kept table populated: SQLite → file → PostgreSQL → file
//!   → SQLite, and PostgreSQL → file → SQLite. The files' bodies (every row of every table, in
//!   the backend-neutral form) must be byte-identical, and what the `Store` API reads back must
//!   be equal; ids handed out after a restore never collide with restored ones.
//! - A backup taken while writers run is one point in time (incident heads match their
//!   timelines, daily rollups match their minutes).
//! - Malformed input (empty, truncated, bad JSON, tampered, newer format, other schema level)
//!   and a non-empty target are refused with a clear error, leaving the target as it was.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures::FutureExt;
use keel_core::config::LocalizedText;
use keel_core::confirm::Tracker;
use keel_core::incident::{Actor, EventKind, Origin};
use keel_core::public::MaintenanceStatus;
use keel_core::rollup::MinuteRollup;
use keel_core::{ComponentId, Health, MonitorId, NodeId, Signal, SourceKey, SourceKind};
use keel_store::backup::{self, BackupError};
use keel_store::postgres::PgStore;
use keel_store::sqlite::SqliteStore;
use keel_store::{
    hash_token, Instance, NewMaintenance, NewOutboxItem, NewOverride, NewSession, NewSubscriber,
    SourceState, Store, SubscriberKind,
};
use serde_json::Value;

#[allow(dead_code)]
mod support;
use support::TestSchema;

const HANG_GUARD: Duration = Duration::from_secs(180);

const PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$3fWgBNq7Q0ZkJbFvZ6xq6mRz7U0sYgB4JdMZ0rY8h2k";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A fresh SQLite database file: (its directory, its URL).
fn sqlite_url() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("keel.db").display());
    (dir, url)
}

async fn open(url: &str) -> Arc<dyn Store> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        Arc::new(SqliteStore::open(path).await.expect("open SQLite"))
    } else {
        Arc::new(PgStore::open(url).await.expect("open PostgreSQL"))
    }
}

/// Runs `body` with the URLs of `n` fresh PostgreSQL schemas, dropping them whatever happens;
/// skips (or fails, when required) without a server.
async fn with_pg<F, Fut>(n: usize, body: F)
where
    F: FnOnce(Vec<String>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut schemas = Vec::new();
    for _ in 0..n {
        let Some(s) = TestSchema::create().await else {
            return;
        };
        schemas.push(s);
    }
    let urls = schemas.iter().map(|s| s.url.clone()).collect();
    let outcome = AssertUnwindSafe(tokio::time::timeout(HANG_GUARD, body(urls)))
        .catch_unwind()
        .await;
    for s in schemas {
        s.drop().await;
    }
    match outcome {
        Ok(finished) => finished.expect("test hung"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn take_backup(url: &str) -> Vec<u8> {
    let mut out = Vec::new();
    backup::backup(url, &mut out).await.expect("backup");
    out
}

async fn restore(url: &str, file: &[u8], force: bool) -> Result<backup::Summary, BackupError> {
    backup::restore(url, file, force).await
}

/// Every line but the header (which says when and from where) and the trailer (whose hash
/// covers the header): the rows of every table in their backend-neutral form.
fn body(file: &[u8]) -> String {
    let text = std::str::from_utf8(file).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "a backup has a header and a trailer");
    lines[1..lines.len() - 1].join("\n")
}

fn header(file: &[u8]) -> Value {
    let text = std::str::from_utf8(file).unwrap();
    serde_json::from_str(text.lines().next().unwrap()).unwrap()
}

/// The rows of one table in a backup file.
fn rows(file: &[u8], table: &str) -> Vec<Vec<Value>> {
    let text = std::str::from_utf8(file).unwrap();
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v.get("table").and_then(Value::as_str) == Some(table) {
            inside = true;
        } else if v.get("end").is_some() {
            inside = false;
        } else if inside {
            out.push(v.as_array().unwrap().clone());
        }
    }
    out
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 23, 58, 0)
        .single()
        .unwrap()
        + TimeDelta::milliseconds(123)
}

fn t(s: i64) -> DateTime<Utc> {
    t0() + TimeDelta::seconds(s)
}

fn opened(title: &str) -> EventKind {
    EventKind::Opened {
        title: title.to_string(),
        origin: Origin::Detected,
        cause: Some(NodeId::parse("db").unwrap()),
        cause_kind: "component".to_string(),
        failure_kind: "tcp".to_string(),
        impacted: ["api", "db"]
            .iter()
            .map(|s| NodeId::parse(*s).unwrap())
            .collect(),
        affected_users: 15_000,
        reason: "db: connection refused".to_string(),
        failing_since: t(0),
    }
}

fn note(text: &str) -> EventKind {
    EventKind::Note {
        text: text.to_string(),
    }
}

fn web() -> SourceKey {
    SourceKey::parse(SourceKind::Monitor, "web").unwrap()
}

fn rollup(monitor: &str, component: &str, minute: DateTime<Utc>, checks: u32) -> MinuteRollup {
    MinuteRollup {
        source: SourceKey::parse_rollup(monitor).unwrap(),
        component: NodeId::parse(component).unwrap(),
        minute,
        checks,
        failures: checks / 3,
        latency_p50_ms: 12,
        latency_p95_ms: 40,
        latency_max_ms: 95,
    }
}

/// Writes rows into every kept table, with gaps in the ids (deleted rows) so the counters
/// are ahead of the highest id.
async fn populate(store: &Arc<dyn Store>) {
    for (i, health) in [Health::Down, Health::Degraded, Health::Up]
        .iter()
        .enumerate()
    {
        store
            .append_signal(&Signal {
                source: web(),
                component: NodeId::parse("web").unwrap(),
                health: *health,
                reason: format!("HTTP 503 (expected 2xx) — 接続 {i}"),
                at: t(i as i64),
            })
            .await
            .unwrap();
    }
    store
        .save_source_state(&SourceState {
            key: web(),
            component: NodeId::parse("web").unwrap(),
            tracker: Tracker {
                health: Health::Down,
                since: t(3),
                reason: "timed out after 5s".to_string(),
                latency_ms: Some(5000),
                last_checked: Some(t(9)),
                pending: Some(Health::Up),
                streak: 1,
                streak_since: None,
            },
        })
        .await
        .unwrap();
    store
        .save_source_state(&SourceState {
            key: SourceKey::parse(SourceKind::Vendor, "stripe").unwrap(),
            component: NodeId::parse("payments").unwrap(),
            tracker: Tracker {
                health: Health::Up,
                since: t(-100),
                reason: "All Systems Operational".to_string(),
                latency_ms: None,
                last_checked: None,
                pending: None,
                streak: 0,
                streak_since: None,
            },
        })
        .await
        .unwrap();
    // Minutes across midnight: two days of daily rows.
    store
        .add_rollups(&[
            rollup("web", "web", t0() - TimeDelta::milliseconds(123), 6),
            rollup("web", "web", t(60) - TimeDelta::milliseconds(123), 6),
            rollup("web", "web", t(120) - TimeDelta::milliseconds(123), 6),
            rollup("api", "api", t(120) - TimeDelta::milliseconds(123), 3),
        ])
        .await
        .unwrap();
    for name in ["ci", "ops", "gone"] {
        store
            .create_token(name, "responder", &hash_token(&format!("tok-{name}")))
            .await
            .unwrap();
    }
    store.token_delete("gone").await.unwrap();

    let a = store
        .create_incident(&[
            (Actor::System, t(1), opened("Checkout down")),
            (Actor::System, t(2), note("first note")),
        ])
        .await
        .unwrap();
    store
        .append_incident_events(
            a,
            2,
            &[
                (
                    Actor::User("ann".to_string()),
                    t(3),
                    note("日本語のメモ 🚒 \"quoted\" \\ \t"),
                ),
                (
                    Actor::User("ann".to_string()),
                    t(4),
                    EventKind::Acknowledged { via: None },
                ),
            ],
        )
        .await
        .unwrap();
    store
        .create_incident(&[(Actor::System, t(5), opened("Search slow"))])
        .await
        .unwrap();

    let email = store
        .create_subscriber(&NewSubscriber {
            kind: SubscriberKind::Email,
            address: "Ann@Example.com".to_string(),
            components: vec![],
            locale: "ja".to_string(),
            secret: None,
            confirmed: false,
            confirm_token_hash: Some(hash_token("confirm-ann")),
            unsubscribe_token_hash: hash_token("unsub-ann"),
            created_at: t(6),
        })
        .await
        .unwrap();
    store
        .confirm_subscriber(&hash_token("confirm-ann"), t(7))
        .await
        .unwrap();
    for (i, who) in ["a", "b"].iter().enumerate() {
        store
            .create_subscriber(&NewSubscriber {
                kind: SubscriberKind::Webhook,
                address: format!("https://hooks.example.com/{who}"),
                components: vec![
                    ComponentId::parse("api").unwrap(),
                    ComponentId::parse("web").unwrap(),
                ],
                locale: "en".to_string(),
                secret: Some(format!("whsec-{who}")),
                confirmed: true,
                confirm_token_hash: None,
                unsubscribe_token_hash: hash_token(&format!("unsub-{who}")),
                created_at: t(8 + i as i64),
            })
            .await
            .unwrap();
    }
    store
        .create_subscriber(&NewSubscriber {
            kind: SubscriberKind::Email,
            address: "pending@example.com".to_string(),
            components: vec![ComponentId::parse("web").unwrap()],
            locale: "en".to_string(),
            secret: None,
            confirmed: false,
            confirm_token_hash: Some(hash_token("confirm-pending")),
            unsubscribe_token_hash: hash_token("unsub-pending"),
            created_at: t(9),
        })
        .await
        .unwrap();
    store.unsubscribe(&hash_token("unsub-b")).await.unwrap();

    let items: Vec<NewOutboxItem> = (0..5)
        .map(|i| NewOutboxItem {
            idempotency_key: format!("update-1/sub-{i}"),
            channel: if i % 2 == 0 { "email" } else { "webhook" }.to_string(),
            target: format!("target-{i}"),
            subscriber_id: Some(email.id),
            payload: serde_json::json!({"update": 1, "i": i, "text": "down ✗"}),
            next_attempt_at: t(10 + i),
        })
        .collect();
    store.enqueue(&items).await.unwrap();
    let claimed = store
        .claim_outbox("worker-1", 3, t(20), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    store.outbox_sent(claimed[0].id, t(21)).await.unwrap();
    store
        .outbox_dead(claimed[1].id, "HTTP 410 Gone", t(22))
        .await
        .unwrap();
    // claimed[2] stays `sending` under its lease; two stay pending.

    let m = store
        .create_maintenance(
            &NewMaintenance {
                name: LocalizedText::plain("Database upgrade"),
                body: LocalizedText::plain("Checkout may be slow."),
                status: MaintenanceStatus::Scheduled,
                scheduled_for: t(3600),
                scheduled_until: t(7200),
                components: vec![ComponentId::parse("web").unwrap()],
            },
            t(30),
        )
        .await
        .unwrap();
    store
        .set_maintenance_status(&m.id, MaintenanceStatus::InProgress, t(3601))
        .await
        .unwrap();

    let ann = store.create_user("ann", "admin", PHC).await.unwrap();
    store.create_user("bob", "viewer", PHC).await.unwrap();
    store.create_user("carl", "viewer", PHC).await.unwrap();
    store.delete_user("carl").await.unwrap();
    store
        .create_session(&NewSession {
            token_hash: hash_token("session-ann"),
            user_id: ann.id,
            csrf_token: "csrf-ann".to_string(),
            created_at: t(40),
            expires_at: t(40 + 86_400),
        })
        .await
        .unwrap();

    store
        .create_override(&NewOverride {
            schedule: "primary".to_string(),
            person: "bob".to_string(),
            start: t(0),
            end: t(8 * 3600),
            created_by: "ann".to_string(),
            created_at: t(50),
        })
        .await
        .unwrap();
    store.shared_secret("ack-links").await.unwrap();
    store
        .save_heartbeat(&MonitorId::parse("nightly-backup").unwrap(), t(60))
        .await
        .unwrap();
}

/// Everything the `Store` API reads back, as one comparable text.
async fn observe(store: &Arc<dyn Store>) -> String {
    let far = |d: i64| t0() + TimeDelta::days(d);
    let day = |d: i64| far(d).date_naive();
    let mut states = store.load_source_states().await.unwrap();
    states.sort_by_key(|s| s.key.id());
    let session = store
        .session(&hash_token("session-ann"), t(41))
        .await
        .unwrap();
    format!(
        "{:#?}",
        (
            (
                store.signals_after(0, 1000).await.unwrap(),
                states,
                store.rollups(&web(), far(-2), far(2)).await.unwrap(),
                store
                    .rollups(&SourceKey::parse_rollup("api").unwrap(), far(-2), far(2))
                    .await
                    .unwrap(),
                store
                    .daily_uptime(&NodeId::parse("web").unwrap(), day(-2), day(2))
                    .await
                    .unwrap(),
                store.token_list().await.unwrap(),
            ),
            (
                store.all_incident_events().await.unwrap(),
                store.subscribers(false).await.unwrap(),
                store.outbox_counts().await.unwrap(),
                store.dead_letters(100).await.unwrap(),
                store.maintenances().await.unwrap(),
                (store.users().await.unwrap(), session),
                store.overrides(None, far(-30)).await.unwrap(),
                store.heartbeats().await.unwrap(),
                store.shared_secret("ack-links").await.unwrap(),
            )
        )
    )
}

/// Ids a restored database hands out come after every restored one, also after rows deleted
/// before the backup (their ids were handed out once).
async fn new_ids_do_not_collide(store: &Arc<dyn Store>) {
    let token = store
        .create_token("after", "viewer", &hash_token("after"))
        .await
        .unwrap();
    assert_eq!(token.id, 4, "tokens 1–3 were handed out (3 deleted)");
    let user = store.create_user("dora", "viewer", PHC).await.unwrap();
    assert_eq!(user.id, 4, "users 1–3 were handed out (3 deleted)");
    let incident = store
        .create_incident(&[(Actor::System, t(99), opened("after restore"))])
        .await
        .unwrap();
    assert_eq!(incident.get(), 3);
    let seq = store
        .append_signal(&Signal {
            source: web(),
            component: NodeId::parse("web").unwrap(),
            health: Health::Up,
            reason: "ok".to_string(),
            at: t(99),
        })
        .await
        .unwrap();
    assert_eq!(seq, 4);
    let sub = store
        .create_subscriber(&NewSubscriber {
            kind: SubscriberKind::Webhook,
            address: "https://hooks.example.com/after".to_string(),
            components: vec![],
            locale: "en".to_string(),
            secret: Some("whsec-after".to_string()),
            confirmed: true,
            confirm_token_hash: None,
            unsubscribe_token_hash: hash_token("unsub-after"),
            created_at: t(99),
        })
        .await
        .unwrap();
    assert_eq!(
        sub.id, 5,
        "subscribers 1–4 were handed out (3 unsubscribed)"
    );
}

// ---------------------------------------------------------------------------------------------
// The schema: every table is either kept or named ephemeral
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn every_table_is_kept_or_named_ephemeral_on_both_backends() {
    assert_eq!(backup::schema_level(), backup::postgres_schema_level());
    let mut expected: Vec<&str> = backup::kept_tables();
    expected.extend(backup::EPHEMERAL);
    expected.sort();

    let (_dir, url) = sqlite_url();
    let store = SqliteStore::open(url.strip_prefix("sqlite://").unwrap())
        .await
        .unwrap();
    let mut conn = sqlx::SqliteConnection::connect(url.strip_prefix("sqlite://").unwrap())
        .await
        .unwrap();
    let names: Vec<(String,)> = sqlx::query_as(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '_sqlx_migrations' ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let names: Vec<String> = names.into_iter().map(|(n,)| n).collect();
    assert_eq!(names, expected, "SQLite tables");
    store.close().await;

    with_pg(1, |urls| async move {
        let store = PgStore::open(&urls[0]).await.unwrap();
        let mut conn = sqlx::PgConnection::connect(&urls[0]).await.unwrap();
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name <> '_sqlx_migrations' \
             ORDER BY table_name COLLATE \"C\"",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let names: Vec<String> = names.into_iter().map(|(n,)| n).collect();
        assert_eq!(names, expected, "PostgreSQL tables");
        store.close().await;
    })
    .await;
}

use sqlx::Connection;

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn sqlite_to_postgres_to_sqlite_keeps_everything() {
    with_pg(1, |pg| async move {
        let (_dir, sqlite) = sqlite_url();
        let source = open(&sqlite).await;
        populate(&source).await;
        let seen = observe(&source).await;
        let first = take_backup(&sqlite).await;
        assert_eq!(header(&first)["source_backend"], "sqlite");
        // Every kept table holds rows: the round trip is tested with all of them.
        for table in backup::kept_tables() {
            assert!(!rows(&first, table).is_empty(), "{table} is populated");
        }

        let summary = restore(&pg[0], &first, false)
            .await
            .expect("restore into PostgreSQL");
        assert_eq!(summary.source_backend, "sqlite");
        assert_eq!(summary.tables.len(), backup::kept_tables().len());
        let second = take_backup(&pg[0]).await;
        assert_eq!(header(&second)["source_backend"], "postgres");
        assert_eq!(
            body(&first),
            body(&second),
            "PostgreSQL holds what SQLite held"
        );
        let moved = open(&pg[0]).await;
        assert_eq!(observe(&moved).await, seen);

        let (_dir2, back) = sqlite_url();
        restore(&back, &second, false)
            .await
            .expect("restore into SQLite");
        assert_eq!(body(&take_backup(&back).await), body(&first));
        let returned = open(&back).await;
        assert_eq!(observe(&returned).await, seen);

        new_ids_do_not_collide(&moved).await;
        new_ids_do_not_collide(&returned).await;
    })
    .await;
}

#[tokio::test]
async fn postgres_to_sqlite_keeps_everything() {
    with_pg(2, |pg| async move {
        let source = open(&pg[0]).await;
        populate(&source).await;
        let seen = observe(&source).await;
        let first = take_backup(&pg[0]).await;

        let (_dir, sqlite) = sqlite_url();
        restore(&sqlite, &first, false)
            .await
            .expect("restore into SQLite");
        assert_eq!(body(&take_backup(&sqlite).await), body(&first));
        let moved = open(&sqlite).await;
        assert_eq!(observe(&moved).await, seen);
        new_ids_do_not_collide(&moved).await;

        // And PostgreSQL to PostgreSQL (another schema).
        restore(&pg[1], &first, false)
            .await
            .expect("restore into PostgreSQL");
        assert_eq!(body(&take_backup(&pg[1]).await), body(&first));
        let again = open(&pg[1]).await;
        assert_eq!(observe(&again).await, seen);
        new_ids_do_not_collide(&again).await;
    })
    .await;
}

#[tokio::test]
async fn sqlite_to_sqlite_through_a_file_keeps_everything() {
    let (_dir, source_url) = sqlite_url();
    let source = open(&source_url).await;
    populate(&source).await;
    let seen = observe(&source).await;
    let file_dir = tempfile::tempdir().unwrap();
    let file = file_dir.path().join("keel.backup");
    let summary = backup::backup_to_file(&source_url, &file).await.unwrap();
    assert!(summary.rows() > 20);
    assert!(!file_dir.path().join("keel.backup.partial").exists());

    let (_dir2, target_url) = sqlite_url();
    let restored = backup::restore_from_file(&target_url, &file, false)
        .await
        .unwrap();
    assert_eq!(restored.tables, summary.tables);
    let target = open(&target_url).await;
    assert_eq!(observe(&target).await, seen);
    new_ids_do_not_collide(&target).await;
}

// ---------------------------------------------------------------------------------------------
// Consistency while writers run
// ---------------------------------------------------------------------------------------------

/// Checks one backup is a single point in time: every incident's last seq is its timeline's
/// length (appends change both in one transaction), and each component's daily checks are
/// the sum of its minutes (one transaction too).
fn assert_consistent(file: &[u8]) -> usize {
    let incidents = rows(file, "incidents");
    let events = rows(file, "incident_events");
    for inc in &incidents {
        let id = inc[0].as_i64().unwrap();
        let last = inc[1].as_i64().unwrap();
        let seqs: Vec<i64> = events
            .iter()
            .filter(|e| e[0].as_i64() == Some(id))
            .map(|e| e[1].as_i64().unwrap())
            .collect();
        assert_eq!(
            seqs,
            (1..=last).collect::<Vec<_>>(),
            "incident {id}: head says {last}, timeline differs"
        );
    }
    assert_eq!(
        events
            .iter()
            .map(|e| e[0].as_i64().unwrap())
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        incidents.len(),
        "events only of incidents in the backup"
    );
    let minutes: i64 = rows(file, "rollups_minute")
        .iter()
        .map(|r| r[3].as_i64().unwrap())
        .sum();
    let days: i64 = rows(file, "rollups_daily")
        .iter()
        .map(|r| r[2].as_i64().unwrap())
        .sum();
    assert_eq!(minutes, days, "daily totals match the minutes");
    incidents.len()
}

async fn backup_while_writing(url: String, other: String) {
    let store = open(&url).await;
    // Enough rows that a backup takes a while, so writes land while it reads.
    for i in 0..300 {
        let id = store
            .create_incident(&[(Actor::System, t(i), opened(&format!("old-{i}")))])
            .await
            .unwrap();
        store
            .append_incident_events(id, 1, &[(Actor::System, t(i), note("old"))])
            .await
            .unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..2 {
        let store = store.clone();
        let stop = stop.clone();
        let done = done.clone();
        writers.push(tokio::spawn(async move {
            let mut n = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let id = store
                    .create_incident(&[(Actor::System, t(n), opened(&format!("w{w}-{n}")))])
                    .await
                    .unwrap();
                for seq in 1..4u32 {
                    store
                        .append_incident_events(
                            id,
                            seq,
                            &[(Actor::System, t(n), note(&format!("{seq}")))],
                        )
                        .await
                        .unwrap();
                }
                let minute = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
                    + TimeDelta::minutes(n % 30);
                store
                    .add_rollups(&[
                        rollup(&format!("m{w}"), "web", minute, 3),
                        rollup(&format!("n{w}"), "api", minute, 2),
                    ])
                    .await
                    .unwrap();
                done.fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
            n
        }));
    }
    let mut counts = Vec::new();
    let mut last = Vec::new();
    let mut overlapped = 0;
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let before = done.load(Ordering::SeqCst);
        last = take_backup(&url).await;
        if done.load(Ordering::SeqCst) > before {
            overlapped += 1;
        }
        counts.push(assert_consistent(&last));
    }
    assert!(overlapped > 0, "writes committed while a backup read");
    stop.store(true, Ordering::Relaxed);
    let mut written = 0;
    for w in writers {
        written += w.await.unwrap();
    }
    assert!(written > 0);
    assert!(
        counts.windows(2).any(|w| w[0] < w[1]),
        "the writers made progress while backups ran: {counts:?}"
    );
    // The last one restores on the other backend and reads back as a whole.
    restore(&other, &last, false).await.expect("restore");
    let restored = open(&other).await;
    let events = restored.all_incident_events().await.unwrap();
    assert_eq!(events.len(), rows(&last, "incident_events").len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn backup_of_sqlite_while_writing_is_one_point_in_time() {
    let (_a, url) = sqlite_url();
    let (_b, other) = sqlite_url();
    backup_while_writing(url, other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn backup_of_postgres_while_writing_is_one_point_in_time() {
    with_pg(1, |pg| async move {
        let (_b, other) = sqlite_url();
        backup_while_writing(pg[0].clone(), other).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Refusals, and a target left as it was
// ---------------------------------------------------------------------------------------------

/// A small valid backup to break in various ways.
async fn sample() -> (tempfile::TempDir, Vec<u8>) {
    let (dir, url) = sqlite_url();
    let store = open(&url).await;
    populate(&store).await;
    (dir, take_backup(&url).await)
}

fn total_rows(file: &[u8]) -> usize {
    backup::kept_tables()
        .iter()
        .map(|t| rows(file, t).len())
        .sum()
}

/// Restoring `file` into a fresh SQLite database fails and leaves it empty.
async fn refused(file: &[u8]) -> BackupError {
    let (_dir, url) = sqlite_url();
    let err = restore(&url, file, false)
        .await
        .expect_err("restore refused");
    // A file refused from its header on never even creates the database.
    if std::path::Path::new(url.strip_prefix("sqlite://").unwrap()).exists() {
        assert_eq!(total_rows(&take_backup(&url).await), 0, "nothing stored");
    }
    err
}

fn replace_line(file: &[u8], n: usize, line: &str) -> Vec<u8> {
    let text = std::str::from_utf8(file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[n] = line.to_string();
    (lines.join("\n") + "\n").into_bytes()
}

#[tokio::test]
async fn malformed_backups_are_refused_clearly() {
    let (_dir, good) = sample().await;
    let text = std::str::from_utf8(&good).unwrap();
    let lines: Vec<&str> = text.lines().collect();

    let err = refused(b"").await;
    assert!(matches!(err, BackupError::Truncated(_)), "{err}");
    assert!(err.to_string().contains("empty"), "{err}");

    // Cut in the middle of a line, and at a line end before the trailer.
    let err = refused(&good[..good.len() / 2]).await;
    assert!(matches!(err, BackupError::Truncated(_)), "{err}");
    let without_trailer = (lines[..lines.len() - 1].join("\n") + "\n").into_bytes();
    let err = refused(&without_trailer).await;
    assert!(matches!(err, BackupError::Truncated(_)), "{err}");
    assert!(err.to_string().contains("trailer"), "{err}");
    let half = (lines[..lines.len() / 2].join("\n") + "\n").into_bytes();
    let err = refused(&half).await;
    assert!(matches!(err, BackupError::Truncated(_)), "{err}");

    let err = refused(&replace_line(&good, 3, "[1, \"monitor\", ")).await;
    match &err {
        BackupError::Malformed { line, reason } => {
            assert_eq!(*line, 4);
            assert!(reason.contains("not JSON"), "{reason}");
        }
        other => panic!("expected Malformed, got {other}"),
    }

    let err = refused(b"{\"hello\": 1}\n").await;
    assert!(err.to_string().contains("not a Keel backup"), "{err}");

    // A value of the wrong type names the table and column.
    let mut row: Vec<Value> = serde_json::from_str(lines[2]).unwrap();
    row[6] = Value::String("yesterday".to_string());
    let err = refused(&replace_line(&good, 2, &Value::Array(row).to_string())).await;
    assert!(err.to_string().contains("signals.at"), "{err}");

    // A changed value that still parses: the hash in the trailer catches it.
    let tampered = replace_line(&good, 2, &lines[2].replace("HTTP 503", "HTTP 200"));
    let err = refused(&tampered).await;
    assert!(err.to_string().contains("SHA-256"), "{err}");

    // A row count that does not match.
    let dropped: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 2)
        .map(|(_, l)| *l)
        .collect();
    let err = refused(&(dropped.join("\n") + "\n").into_bytes()).await;
    assert!(err.to_string().contains("claiming 3 rows"), "{err}");

    // Newer format, other schema level.
    let mut head = header(&good);
    head["version"] = Value::from(backup::FORMAT_VERSION + 1);
    head["keel_version"] = Value::from("9.9.9");
    let err = refused(&replace_line(&good, 0, &head.to_string())).await;
    assert!(matches!(err, BackupError::NewerFormat { .. }), "{err}");
    assert!(err.to_string().contains("9.9.9"), "{err}");
    let mut head = header(&good);
    head["schema_level"] = Value::from(backup::schema_level() + 1);
    let err = refused(&replace_line(&good, 0, &head.to_string())).await;
    assert!(matches!(err, BackupError::Schema(_)), "{err}");
    assert!(err.to_string().contains("schema level"), "{err}");
}

async fn non_empty_target_is_refused_and_kept(target: String) {
    let (_dir, file) = sample().await;
    let store = open(&target).await;
    store
        .create_token("already-here", "admin", &hash_token("here"))
        .await
        .unwrap();
    let before = take_backup(&target).await;

    let err = restore(&target, &file, false).await.expect_err("refused");
    assert!(matches!(err, BackupError::NotEmpty(_)), "{err}");
    assert!(err.to_string().contains("api_tokens: 1 row"), "{err}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(body(&take_backup(&target).await), body(&before));

    // --force with a damaged file: refused as a whole, the old rows stay.
    let cut = &file[..file.len() - 10];
    let err = restore(&target, cut, true).await.expect_err("truncated");
    assert!(matches!(err, BackupError::Truncated(_)), "{err}");
    assert_eq!(body(&take_backup(&target).await), body(&before));
    // A row the database refuses (a duplicate key) half-way: also nothing.
    let text = std::str::from_utf8(&file).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let users = lines
        .iter()
        .position(|l| l.starts_with("{\"table\":\"users\""))
        .unwrap();
    let mut dup: Vec<String> = [&lines[..users + 2], &lines[users + 1..]]
        .concat()
        .iter()
        .map(|l| l.to_string())
        .collect();
    let end = dup
        .iter()
        .position(|l| l.starts_with("{\"end\":\"users\""))
        .unwrap();
    let mut footer: Value = serde_json::from_str(&dup[end]).unwrap();
    footer["rows"] = Value::from(footer["rows"].as_u64().unwrap() + 1);
    dup[end] = footer.to_string();
    let dup = dup.join("\n") + "\n";
    let err = restore(&target, dup.as_bytes(), true)
        .await
        .expect_err("duplicate");
    assert!(err.to_string().contains("restoring users"), "{err}");
    assert_eq!(body(&take_backup(&target).await), body(&before));

    // --force with a good file replaces everything.
    restore(&target, &file, true).await.expect("forced restore");
    assert_eq!(body(&take_backup(&target).await), body(&file));
}

#[tokio::test]
async fn non_empty_sqlite_target_is_refused_and_kept() {
    let (_dir, url) = sqlite_url();
    non_empty_target_is_refused_and_kept(url).await;
}

#[tokio::test]
async fn non_empty_postgres_target_is_refused_and_kept() {
    with_pg(1, |pg| async move {
        non_empty_target_is_refused_and_kept(pg[0].clone()).await;
    })
    .await;
}

#[tokio::test]
async fn a_sqlite_target_with_a_live_instance_is_refused() {
    let (_d, url) = sqlite_url();
    a_target_with_a_live_instance_is_refused(url).await;
}

#[tokio::test]
async fn a_postgres_target_with_a_live_instance_is_refused() {
    with_pg(1, |pg| async move {
        a_target_with_a_live_instance_is_refused(pg[0].clone()).await;
    })
    .await;
}

async fn a_target_with_a_live_instance_is_refused(url: String) {
    let (_dir, file) = sample().await;
    let store = open(&url).await;
    store
        .heartbeat_instance(&Instance {
            id: "host-1-abc".to_string(),
            listen: "127.0.0.1:8080".to_string(),
            started_at: Utc::now(),
            seen_at: Utc::now(),
            config: Default::default(),
        })
        .await
        .unwrap();
    let err = restore(&url, &file, true).await.expect_err("refused");
    assert!(matches!(err, BackupError::InUse(_)), "{err}");
    assert!(err.to_string().contains("host-1-abc"), "{err}");
    store.remove_instance("host-1-abc").await.unwrap();
    restore(&url, &file, false)
        .await
        .expect("restore once stopped");
}

#[tokio::test]
async fn a_missing_source_database_is_an_error_not_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.db");
    let mut out = Vec::new();
    let err = backup::backup(&format!("sqlite://{}", path.display()), &mut out)
        .await
        .expect_err("no database");
    assert!(err.to_string().contains("no SQLite database"), "{err}");
    assert!(!path.exists());
}
