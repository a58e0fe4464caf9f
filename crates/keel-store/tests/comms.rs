//! Subscribers, the notification outbox and scheduled maintenances, run against both backends.
//!
//! The same harness as `conformance.rs` (tests/support): every story takes an `Arc<dyn Store>`
//! and knows nothing of the backend; each test gets a fresh SQLite directory or a fresh
//! PostgreSQL schema, and PostgreSQL is skipped visibly, or required with
//! `KEEL_REQUIRE_POSTGRES=1`.
//!
//! The outbox stories are the durability promise of notifications: duplicates are ignored,
//! claims never overlap (also across instances), and a claim left behind by a worker killed
//! mid-send becomes claimable again once its lease ends.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures::FutureExt;
use keel_core::config::LocalizedText;
use keel_core::public::MaintenanceStatus;
use keel_core::ComponentId;

fn component(id: &str) -> ComponentId {
    ComponentId::parse(id).unwrap()
}
use keel_store::postgres::PgStore;
use keel_store::sqlite::SqliteStore;
use keel_store::{
    hash_token, MaintenanceStore, NewMaintenance, NewOutboxItem, NewSubscriber, OutboxCounts,
    OutboxItem, OutboxStatus, OutboxStore, Store, StoreError, SubscriberKind,
};
use rand::seq::SliceRandom;
use serde_json::json;
use sqlx::Connection;

mod support;
use support::{with_postgres, with_sqlite, TestSchema};
/// Only a guard against a hung test, never a performance bar.
const HANG_GUARD: Duration = Duration::from_secs(120);

const LEASE: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Harness: tests/support (shared with conformance.rs), and this file's backends
// ---------------------------------------------------------------------------------------------

/// Runs a PostgreSQL-only test body in a fresh schema, dropping it whatever happens.
async fn in_pg_schema<F, Fut>(body: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let outcome = AssertUnwindSafe(tokio::time::timeout(HANG_GUARD, body(schema.url.clone())))
        .catch_unwind()
        .await;
    schema.drop().await;
    match outcome {
        Ok(finished) => finished.expect("test hung"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Declares each story once per backend: `sqlite::NAME` and `postgres::NAME`. Several worker
/// threads, so concurrent claimers really run at the same time.
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
    subscribers_are_created_normalised_and_listed,
    duplicate_subscribers_conflict,
    subscribers_confirm_by_token_hash,
    unsubscribe_deletes_by_token_hash,
    bad_subscribers_are_refused_and_store_nothing,
    enqueue_ignores_repeated_idempotency_keys,
    concurrent_enqueues_of_overlapping_batches_store_each_key_once,
    claim_respects_due_time_and_limit,
    four_concurrent_claimers_share_1000_items_without_overlap,
    an_expired_lease_makes_an_item_claimable_again,
    retry_waits_then_sent_is_final,
    dead_letters_are_listed_newest_first_and_never_claimed,
    finishing_unknown_items_is_not_found,
    outbox_counts_follow_every_status,
    pruning_removes_only_items_sent_before_the_cutoff,
    bad_outbox_input_is_refused,
    maintenances_round_trip_and_change_status,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0)
        .single()
        .expect("valid time")
}

fn secs(n: i64) -> TimeDelta {
    TimeDelta::seconds(n)
}

fn email(address: &str, token: &str) -> NewSubscriber {
    NewSubscriber {
        kind: SubscriberKind::Email,
        address: address.to_string(),
        components: vec![],
        locale: "en".to_string(),
        secret: None,
        confirmed: false,
        confirm_token_hash: Some(hash_token(&format!("confirm-{token}"))),
        unsubscribe_token_hash: hash_token(&format!("unsub-{token}")),
        created_at: t0(),
    }
}

fn webhook(url: &str, token: &str) -> NewSubscriber {
    NewSubscriber {
        kind: SubscriberKind::Webhook,
        address: url.to_string(),
        components: vec![component("api"), component("web")],
        locale: "ja".to_string(),
        secret: Some(format!("whsec-{token}")),
        confirmed: true,
        confirm_token_hash: None,
        unsubscribe_token_hash: hash_token(&format!("unsub-{token}")),
        created_at: t0(),
    }
}

fn item(key: &str, due: DateTime<Utc>) -> NewOutboxItem {
    NewOutboxItem {
        idempotency_key: key.to_string(),
        channel: "webhook".to_string(),
        target: format!("https://hooks.example.com/{key}"),
        subscriber_id: None,
        payload: json!({ "key": key }),
        next_attempt_at: due,
    }
}

fn ids(items: &[OutboxItem]) -> Vec<i64> {
    items.iter().map(|i| i.id).collect()
}

fn keys(items: &[OutboxItem]) -> Vec<&str> {
    items.iter().map(|i| i.idempotency_key.as_str()).collect()
}

fn counts(pending: u64, sending: u64, sent: u64, dead: u64) -> OutboxCounts {
    OutboxCounts {
        pending,
        sending,
        sent,
        dead,
    }
}

// ---------------------------------------------------------------------------------------------
// Subscribers
// ---------------------------------------------------------------------------------------------

async fn subscribers_are_created_normalised_and_listed(store: Arc<dyn Store>) {
    assert!(store.subscribers(false).await.unwrap().is_empty());

    let a = store
        .create_subscriber(&email("  Alice@Example.COM ", "a"))
        .await
        .unwrap();
    assert_eq!(a.kind, SubscriberKind::Email);
    assert_eq!(a.address, "alice@example.com");
    assert!(!a.confirmed);
    assert_eq!(a.confirmed_at, None);
    assert_eq!(a.secret, None);
    assert_eq!(a.created_at, t0());
    assert!(a.components.is_empty());

    let url = "https://Hooks.Example.com/Keel?x='1'&y=\"2\"";
    let w = store.create_subscriber(&webhook(url, "w")).await.unwrap();
    assert_eq!(w.address, url, "a webhook URL is stored as given");
    assert_eq!(w.secret.as_deref(), Some("whsec-w"));
    assert!(w.confirmed);
    assert_eq!(w.confirmed_at, Some(t0()));
    assert_eq!(w.components, vec![component("api"), component("web")]);
    assert_eq!(w.locale, "ja");
    assert!(w.id > a.id);

    assert_eq!(store.subscriber(a.id).await.unwrap(), a);
    assert_eq!(store.subscriber(w.id).await.unwrap(), w);
    assert_eq!(
        store.subscribers(false).await.unwrap(),
        vec![a.clone(), w.clone()]
    );
    assert_eq!(store.subscribers(true).await.unwrap(), vec![w.clone()]);

    assert!(w.follows_any(&["web"]));
    assert!(!w.follows_any(&["db"]));
    assert!(a.follows_any(&["db"]), "no components means all");
}

async fn duplicate_subscribers_conflict(store: Arc<dyn Store>) {
    store
        .create_subscriber(&email("bob@example.com", "1"))
        .await
        .unwrap();
    // Same address in other letter case, new tokens: still the same subscriber.
    let err = store
        .create_subscriber(&email("BOB@example.com", "2"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("bob@example.com"), "{err}");

    // The same text as a webhook is a different subscriber.
    store
        .create_subscriber(&webhook("bob@example.com", "3"))
        .await
        .unwrap();
    let err = store
        .create_subscriber(&webhook("bob@example.com", "4"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // A reused token hash is a conflict too, said without the hash.
    let err = store
        .create_subscriber(&email("carol@example.com", "1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("same token"), "{err}");
    assert_eq!(store.subscribers(false).await.unwrap().len(), 2);
}

async fn subscribers_confirm_by_token_hash(store: Arc<dyn Store>) {
    let a = store
        .create_subscriber(&email("dana@example.com", "d"))
        .await
        .unwrap();
    let b = store
        .create_subscriber(&email("erin@example.com", "e"))
        .await
        .unwrap();
    let at = t0() + secs(90) + TimeDelta::microseconds(1500);

    let err = store
        .confirm_subscriber(&hash_token("confirm-nobody"), at)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    // The raw token is not its hash.
    let err = store.confirm_subscriber("confirm-d", at).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let confirmed = store
        .confirm_subscriber(&hash_token("confirm-d"), at)
        .await
        .unwrap();
    assert_eq!(confirmed.id, a.id);
    assert!(confirmed.confirmed);
    let kept = t0() + secs(90) + TimeDelta::milliseconds(1);
    assert_eq!(
        confirmed.confirmed_at,
        Some(kept),
        "kept to the millisecond"
    );

    // A second click on the link is harmless and keeps the first time.
    let again = store
        .confirm_subscriber(&hash_token("confirm-d"), at + secs(600))
        .await
        .unwrap();
    assert_eq!(again, confirmed);

    assert_eq!(store.subscribers(true).await.unwrap(), vec![confirmed]);
    assert!(!store.subscriber(b.id).await.unwrap().confirmed);
}

async fn unsubscribe_deletes_by_token_hash(store: Arc<dyn Store>) {
    let a = store
        .create_subscriber(&email("finn@example.com", "f"))
        .await
        .unwrap();
    let w = store
        .create_subscriber(&webhook("https://example.net/hook", "w"))
        .await
        .unwrap();

    let err = store.unsubscribe(&hash_token("unsub-x")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let gone = store.unsubscribe(&hash_token("unsub-w")).await.unwrap();
    assert_eq!(gone, w);
    let err = store.unsubscribe(&hash_token("unsub-w")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.subscriber(w.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.subscribers(false).await.unwrap(), vec![a]);
    assert!(store.subscribers(true).await.unwrap().is_empty());

    // Leaving frees the address: subscribing again works, with new tokens and a new id.
    let back = store
        .create_subscriber(&webhook("https://example.net/hook", "w2"))
        .await
        .unwrap();
    assert!(back.id > w.id);
}

async fn bad_subscribers_are_refused_and_store_nothing(store: Arc<dyn Store>) {
    let cases = [
        (
            NewSubscriber {
                secret: None,
                ..webhook("https://example.com/h", "1")
            },
            "needs a secret",
        ),
        (
            NewSubscriber {
                unsubscribe_token_hash: "unsub-raw".to_string(),
                ..email("a@example.com", "2")
            },
            "never the token",
        ),
        (
            NewSubscriber {
                confirm_token_hash: None,
                ..email("a@example.com", "3")
            },
            "could never be confirmed",
        ),
        (email(" ", "4"), "needs an address"),
        (
            NewSubscriber {
                locale: "e\0n".to_string(),
                ..email("a@example.com", "5")
            },
            "NUL",
        ),
    ];
    for (new, want) in cases {
        let err = store.create_subscriber(&new).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains(want), "{err} should say {want:?}");
    }
    assert!(store.subscribers(false).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Outbox
// ---------------------------------------------------------------------------------------------

async fn enqueue_ignores_repeated_idempotency_keys(store: Arc<dyn Store>) {
    assert_eq!(store.enqueue(&[]).await.unwrap(), 0);
    let mut first = item("incident-7/update-2/sub-1", t0());
    first.subscriber_id = Some(41);
    first.payload = json!({
        "text": "Résumé — 障害 🐢 'quoted' \"twice\" \u{0}nul",
        "n": [1, 2.5, null, true],
    });
    assert_eq!(store.enqueue(&[first.clone()]).await.unwrap(), 1);

    // Same key again, different content: ignored, the stored row is the first one.
    let mut again = item("incident-7/update-2/sub-1", t0() - secs(60));
    again.target = "https://elsewhere.example.com".to_string();
    assert_eq!(store.enqueue(&[again]).await.unwrap(), 0);

    // A batch repeating a key inside itself and with a stored one: only the new key counts.
    let batch = [
        item("b", t0()),
        item("b", t0()),
        item("incident-7/update-2/sub-1", t0()),
    ];
    assert_eq!(store.enqueue(&batch).await.unwrap(), 1);
    assert_eq!(store.outbox_counts().await.unwrap(), counts(2, 0, 0, 0));

    let claimed = store.claim_outbox("w1", 10, t0(), LEASE).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let got = claimed
        .iter()
        .find(|i| i.idempotency_key == first.idempotency_key)
        .expect("the first item");
    assert_eq!(got.target, first.target);
    assert_eq!(got.channel, "webhook");
    assert_eq!(got.subscriber_id, Some(41));
    assert_eq!(got.payload, first.payload);
    assert_eq!(got.next_attempt_at, t0());
    assert_eq!(got.last_error, None);
    assert_eq!(got.finished_at, None);
}

async fn concurrent_enqueues_of_overlapping_batches_store_each_key_once(store: Arc<dyn Store>) {
    let all: Vec<NewOutboxItem> = (0..500).map(|n| item(&format!("k{n:04}"), t0())).collect();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            let mut mine = all.clone();
            mine.shuffle(&mut rand::thread_rng());
            tokio::spawn(async move { store.enqueue(&mine).await.unwrap() })
        })
        .collect();
    let mut inserted = 0;
    for t in tasks {
        inserted += t.await.unwrap();
    }
    assert_eq!(inserted, 500, "each key stored by exactly one enqueue");
    assert_eq!(store.outbox_counts().await.unwrap(), counts(500, 0, 0, 0));
}

async fn claim_respects_due_time_and_limit(store: Arc<dyn Store>) {
    let items: Vec<_> = (0..5)
        .map(|n| item(&format!("due-{n}"), t0() + TimeDelta::minutes(n)))
        .collect();
    assert_eq!(store.enqueue(&items).await.unwrap(), 5);

    assert!(store
        .claim_outbox("w", 10, t0() - secs(1), LEASE)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .claim_outbox("w", 0, t0(), LEASE)
        .await
        .unwrap()
        .is_empty());

    // Due at exactly `now` counts as due.
    let now = t0() + TimeDelta::minutes(1);
    // A lease long enough that these stay claimed for the rest of the story.
    let long = Duration::from_secs(3 * 3600);
    let first = store.claim_outbox("w1", 10, now, long).await.unwrap();
    assert_eq!(keys(&first), vec!["due-0", "due-1"]);
    for i in &first {
        assert_eq!(i.status, OutboxStatus::Sending);
        assert_eq!(i.attempts, 1);
        assert_eq!(i.claimed_by.as_deref(), Some("w1"));
        assert_eq!(i.lease_until, Some(now + TimeDelta::hours(3)));
    }

    // Everything is due later; the limit takes the oldest first.
    let later = t0() + TimeDelta::hours(1);
    let one = store.claim_outbox("w2", 1, later, LEASE).await.unwrap();
    assert_eq!(keys(&one), vec!["due-2"]);
    let rest = store.claim_outbox("w2", 100, later, LEASE).await.unwrap();
    assert_eq!(keys(&rest), vec!["due-3", "due-4"]);
    assert_eq!(store.outbox_counts().await.unwrap(), counts(0, 5, 0, 0));
}

/// The fan-out case: four workers claim in small batches at the same time until nothing is
/// left; together they must take every item exactly once.
async fn four_concurrent_claimers_share_1000_items_without_overlap(store: Arc<dyn Store>) {
    let items: Vec<_> = (0..1000)
        .map(|n| item(&format!("fan-{n:04}"), t0() + TimeDelta::milliseconds(n)))
        .collect();
    assert_eq!(store.enqueue(&items).await.unwrap(), 1000);
    let now = t0() + secs(10);

    let workers: Vec<_> = (0..4)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let name = format!("worker-{w}");
                let mut mine = Vec::new();
                loop {
                    let batch = store.claim_outbox(&name, 25, now, LEASE).await.unwrap();
                    if batch.is_empty() {
                        break;
                    }
                    for i in &batch {
                        assert_eq!(i.claimed_by.as_deref(), Some(name.as_str()));
                        assert_eq!(i.attempts, 1, "no item is claimed twice");
                    }
                    mine.extend(ids(&batch));
                    tokio::task::yield_now().await;
                }
                mine
            })
        })
        .collect();

    let mut seen = BTreeSet::new();
    let mut total = 0;
    for w in workers {
        let mine = w.await.unwrap();
        total += mine.len();
        for id in mine {
            assert!(seen.insert(id), "item {id} was claimed by two workers");
        }
    }
    assert_eq!(total, 1000);
    assert_eq!(seen.len(), 1000, "the claims cover every item");
    assert_eq!(store.outbox_counts().await.unwrap(), counts(0, 1000, 0, 0));
}

/// The SIGKILL case: a worker claims and dies without a word. Nobody may take its items while
/// the lease runs; once it has run out, they are claimable again and count the attempt.
async fn an_expired_lease_makes_an_item_claimable_again(store: Arc<dyn Store>) {
    store
        .enqueue(&[item("a", t0()), item("b", t0() + secs(1))])
        .await
        .unwrap();
    let dead_worker = store
        .claim_outbox("killed", 10, t0() + secs(1), LEASE)
        .await
        .unwrap();
    assert_eq!(keys(&dead_worker), vec!["a", "b"]);
    let lease_end = t0() + secs(31);

    assert!(store
        .claim_outbox("next", 10, lease_end - TimeDelta::milliseconds(1), LEASE)
        .await
        .unwrap()
        .is_empty());

    // Meanwhile something new becomes due; the abandoned items come first (they are older).
    store.enqueue(&[item("c", t0() + secs(20))]).await.unwrap();
    let again = store
        .claim_outbox("next", 10, lease_end, LEASE)
        .await
        .unwrap();
    assert_eq!(keys(&again), vec!["a", "b", "c"]);
    let a = &again[0];
    assert_eq!(a.attempts, 2, "the lost attempt counts");
    assert_eq!(a.claimed_by.as_deref(), Some("next"));
    assert_eq!(a.lease_until, Some(lease_end + secs(30)));
    assert_eq!(again[2].attempts, 1);

    // The new lease holds in turn.
    assert!(store
        .claim_outbox("third", 10, lease_end + secs(29), LEASE)
        .await
        .unwrap()
        .is_empty());
    for i in &again {
        store.outbox_sent(i.id, lease_end + secs(2)).await.unwrap();
    }
    assert!(store
        .claim_outbox("third", 10, lease_end + TimeDelta::days(1), LEASE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.outbox_counts().await.unwrap(), counts(0, 0, 3, 0));
}

async fn retry_waits_then_sent_is_final(store: Arc<dyn Store>) {
    store.enqueue(&[item("r", t0())]).await.unwrap();
    let first = store.claim_outbox("w", 1, t0(), LEASE).await.unwrap();
    let id = first[0].id;

    let retry_at = t0() + secs(45);
    store
        .outbox_retry(id, "HTTP 503 from hooks.example.com", retry_at)
        .await
        .unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), counts(1, 0, 0, 0));
    assert!(store
        .claim_outbox("w", 1, retry_at - secs(1), LEASE)
        .await
        .unwrap()
        .is_empty());

    let second = store.claim_outbox("w", 1, retry_at, LEASE).await.unwrap();
    assert_eq!(ids(&second), vec![id]);
    let s = &second[0];
    assert_eq!(s.attempts, 2);
    assert_eq!(s.next_attempt_at, retry_at);
    assert_eq!(
        s.last_error.as_deref(),
        Some("HTTP 503 from hooks.example.com")
    );

    let sent_at = retry_at + secs(1);
    store.outbox_sent(id, sent_at).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), counts(0, 0, 1, 0));

    // A worker whose lease had run out reports late: a sent item stays sent.
    store.outbox_retry(id, "timeout", retry_at).await.unwrap();
    store.outbox_dead(id, "gave up", retry_at).await.unwrap();
    store.outbox_sent(id, sent_at + secs(9)).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), counts(0, 0, 1, 0));
    assert!(store
        .claim_outbox("w", 1, retry_at + TimeDelta::days(1), LEASE)
        .await
        .unwrap()
        .is_empty());

    // Long errors are capped, and a NUL in a receiver's answer is no failure.
    store.enqueue(&[item("long", t0())]).await.unwrap();
    let long = store.claim_outbox("w", 1, t0(), LEASE).await.unwrap();
    let body = format!("HTTP 500: {}\0", "x".repeat(100_000));
    store.outbox_retry(long[0].id, &body, t0()).await.unwrap();
    let back = store.claim_outbox("w", 1, t0(), LEASE).await.unwrap();
    let err = back[0].last_error.as_deref().unwrap();
    assert!(err.starts_with("HTTP 500: xxx"), "{err:.40}");
    assert!(err.len() < 4096, "{} bytes kept", err.len());
}

async fn dead_letters_are_listed_newest_first_and_never_claimed(store: Arc<dyn Store>) {
    store
        .enqueue(&[item("d1", t0()), item("d2", t0()), item("ok", t0())])
        .await
        .unwrap();
    let claimed = store.claim_outbox("w", 10, t0(), LEASE).await.unwrap();
    let by_key: BTreeMap<&str, i64> = claimed
        .iter()
        .map(|i| (i.idempotency_key.as_str(), i.id))
        .collect();
    assert!(store.dead_letters(10).await.unwrap().is_empty());

    store
        .outbox_dead(
            by_key["d1"],
            "HTTP 410 Gone after 8 attempts",
            t0() + secs(5),
        )
        .await
        .unwrap();
    store
        .outbox_dead(by_key["d2"], "connection refused", t0() + secs(9))
        .await
        .unwrap();
    store
        .outbox_sent(by_key["ok"], t0() + secs(1))
        .await
        .unwrap();

    let dead = store.dead_letters(10).await.unwrap();
    assert_eq!(keys(&dead), vec!["d2", "d1"]);
    assert!(dead.iter().all(|d| d.status == OutboxStatus::Dead));
    assert_eq!(dead[0].last_error.as_deref(), Some("connection refused"));
    assert_eq!(dead[0].finished_at, Some(t0() + secs(9)));
    assert_eq!(dead[0].lease_until, None);
    assert_eq!(dead[1].attempts, 1);
    assert_eq!(keys(&store.dead_letters(1).await.unwrap()), vec!["d2"]);

    // Dead stays dead: never claimed again, and a late retry changes nothing.
    store
        .outbox_retry(by_key["d1"], "late", t0())
        .await
        .unwrap();
    assert!(store
        .claim_outbox("w", 10, t0() + TimeDelta::days(1), LEASE)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.outbox_counts().await.unwrap(), counts(0, 0, 1, 2));

    // A pending item may be given up on without a claim (e.g. its subscriber left).
    store.enqueue(&[item("never", t0())]).await.unwrap();
    let never = store.claim_outbox("w", 1, t0(), LEASE).await.unwrap();
    store
        .outbox_retry(never[0].id, "x", t0() + secs(60))
        .await
        .unwrap();
    store
        .outbox_dead(never[0].id, "subscriber left", t0() + secs(10))
        .await
        .unwrap();
    assert_eq!(
        keys(&store.dead_letters(10).await.unwrap()),
        vec!["never", "d2", "d1"]
    );
}

async fn finishing_unknown_items_is_not_found(store: Arc<dyn Store>) {
    for err in [
        store.outbox_sent(404, t0()).await.unwrap_err(),
        store.outbox_retry(404, "x", t0()).await.unwrap_err(),
        store.outbox_dead(404, "x", t0()).await.unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        assert!(err.to_string().contains("404"), "{err}");
    }
}

async fn outbox_counts_follow_every_status(store: Arc<dyn Store>) {
    assert_eq!(
        store.outbox_counts().await.unwrap(),
        OutboxCounts::default()
    );
    let items: Vec<_> = (0..6).map(|n| item(&format!("c{n}"), t0())).collect();
    store.enqueue(&items).await.unwrap();
    store
        .enqueue(&[item("later", t0() + TimeDelta::hours(1))])
        .await
        .unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), counts(7, 0, 0, 0));

    let claimed = store.claim_outbox("w", 4, t0(), LEASE).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), counts(3, 4, 0, 0));
    store.outbox_sent(claimed[0].id, t0()).await.unwrap();
    store.outbox_sent(claimed[1].id, t0()).await.unwrap();
    store.outbox_dead(claimed[2].id, "no", t0()).await.unwrap();
    store
        .outbox_retry(claimed[3].id, "again", t0() + secs(5))
        .await
        .unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), counts(4, 0, 2, 1));
}

async fn pruning_removes_only_items_sent_before_the_cutoff(store: Arc<dyn Store>) {
    store
        .enqueue(&[
            item("old-sent", t0()),
            item("new-sent", t0()),
            item("old-dead", t0()),
            item("pending", t0() + TimeDelta::days(30)),
        ])
        .await
        .unwrap();
    let claimed = store.claim_outbox("w", 3, t0(), LEASE).await.unwrap();
    let id = |key: &str| {
        claimed
            .iter()
            .find(|i| i.idempotency_key == key)
            .unwrap()
            .id
    };
    store
        .outbox_sent(id("old-sent"), t0() + secs(10))
        .await
        .unwrap();
    store
        .outbox_sent(id("new-sent"), t0() + secs(100))
        .await
        .unwrap();
    store
        .outbox_dead(id("old-dead"), "gave up", t0())
        .await
        .unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), counts(1, 0, 2, 1));

    // Sent exactly at the cutoff is kept: strictly before goes.
    assert_eq!(store.prune_outbox(t0() + secs(10)).await.unwrap(), 0);
    assert_eq!(store.prune_outbox(t0() + secs(50)).await.unwrap(), 1);
    assert_eq!(store.outbox_counts().await.unwrap(), counts(1, 0, 1, 1));
    assert_eq!(store.prune_outbox(t0() + secs(50)).await.unwrap(), 0);

    // Far in the future: every sent item goes; dead letters and pending work never do.
    assert_eq!(
        store
            .prune_outbox(t0() + TimeDelta::days(3650))
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.outbox_counts().await.unwrap(), counts(1, 0, 0, 1));
    assert_eq!(store.dead_letters(10).await.unwrap().len(), 1);

    // A pruned key no longer deduplicates: why the retention must outlast any re-queue window.
    assert_eq!(store.enqueue(&[item("old-sent", t0())]).await.unwrap(), 1);
}

async fn bad_outbox_input_is_refused(store: Arc<dyn Store>) {
    let cases = [
        (item("", t0()), "empty idempotency key"),
        (
            NewOutboxItem {
                target: "a\0b".to_string(),
                ..item("nul", t0())
            },
            "NUL",
        ),
    ];
    for (bad, want) in cases {
        // One bad item refuses the whole batch.
        let err = store.enqueue(&[item("fine", t0()), bad]).await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
        assert!(err.to_string().contains(want), "{err} should say {want:?}");
    }
    assert_eq!(
        store.outbox_counts().await.unwrap(),
        OutboxCounts::default()
    );

    let err = store
        .claim_outbox("w", 1, t0(), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = store.claim_outbox("w\0", 1, t0(), LEASE).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Maintenances
// ---------------------------------------------------------------------------------------------

fn localized(en: &str, ja: &str) -> LocalizedText {
    let mut t = LocalizedText::plain(en);
    t.by_locale.insert("ja".to_string(), ja.to_string());
    t
}

async fn maintenances_round_trip_and_change_status(store: Arc<dyn Store>) {
    assert!(store.maintenances().await.unwrap().is_empty());
    let later = NewMaintenance {
        name: localized("Database upgrade", "データベースの更新"),
        body: localized(
            "The API is read-only for up to 10 minutes.",
            "最大10分間、APIは読み取り専用になります。",
        ),
        status: MaintenanceStatus::Scheduled,
        scheduled_for: t0() + TimeDelta::days(2),
        scheduled_until: t0() + TimeDelta::days(2) + TimeDelta::hours(1),
        components: vec![keel_core::ComponentId::parse("api").unwrap()],
    };
    let sooner = NewMaintenance {
        name: LocalizedText::plain("Network work"),
        body: LocalizedText::plain(""),
        status: MaintenanceStatus::InProgress,
        scheduled_for: t0() - TimeDelta::hours(1),
        scheduled_until: t0() - TimeDelta::hours(1),
        components: vec![],
    };
    let created_at = t0() + TimeDelta::microseconds(2500);
    let a = store.create_maintenance(&later, created_at).await.unwrap();
    let b = store.create_maintenance(&sooner, t0()).await.unwrap();
    assert_eq!(a.name, later.name);
    assert_eq!(
        a.body.get("ja"),
        "最大10分間、APIは読み取り専用になります。"
    );
    assert_eq!(a.status, MaintenanceStatus::Scheduled);
    assert_eq!(a.scheduled_for, later.scheduled_for);
    assert_eq!(a.scheduled_until, later.scheduled_until);
    assert_eq!(a.components, vec!["api"]);
    assert_eq!(a.created_at, t0() + TimeDelta::milliseconds(2));
    assert_eq!(a.updated_at, a.created_at);
    assert_ne!(a.id, b.id);

    assert_eq!(
        store.maintenances().await.unwrap(),
        vec![b.clone(), a.clone()]
    );

    let moved = store
        .set_maintenance_status(
            &a.id,
            MaintenanceStatus::InProgress,
            t0() + TimeDelta::days(2),
        )
        .await
        .unwrap();
    assert_eq!(moved.status, MaintenanceStatus::InProgress);
    assert_eq!(moved.updated_at, t0() + TimeDelta::days(2));
    assert_eq!(moved.created_at, a.created_at);
    let done = store
        .set_maintenance_status(
            &moved.id,
            MaintenanceStatus::Completed,
            t0() + TimeDelta::days(3),
        )
        .await
        .unwrap();
    assert_eq!(store.maintenances().await.unwrap(), vec![b, done]);

    for unknown in ["9999", "abc", ""] {
        let err = store
            .set_maintenance_status(unknown, MaintenanceStatus::Completed, t0())
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::NotFound(_)),
            "{unknown:?}: {err:?}"
        );
    }
    let backwards = NewMaintenance {
        scheduled_until: later.scheduled_for - secs(1),
        ..later
    };
    let err = store
        .create_maintenance(&backwards, t0())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// Backend-specific
// ---------------------------------------------------------------------------------------------

/// A worker killed mid-send is a process gone with its claims stored: the next process finds
/// them once the lease has run out.
#[tokio::test]
async fn sqlite_claims_survive_a_restart_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    store.enqueue(&[item("a", t0())]).await.unwrap();
    let claimed = store.claim_outbox("first", 1, t0(), LEASE).await.unwrap();
    assert_eq!(claimed.len(), 1);
    store.close().await;

    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    assert_eq!(store.outbox_counts().await.unwrap(), counts(0, 1, 0, 0));
    assert!(store
        .claim_outbox("second", 1, t0() + secs(29), LEASE)
        .await
        .unwrap()
        .is_empty());
    let again = store
        .claim_outbox("second", 1, t0() + secs(30), LEASE)
        .await
        .unwrap();
    assert_eq!(ids(&again), ids(&claimed));
    assert_eq!(again[0].attempts, 2);
}

#[tokio::test]
async fn sqlite_outbox_and_subscriber_rows_keel_did_not_write_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    let mut raw = sqlx::SqliteConnection::connect(&format!("sqlite://{}", store.path().display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO outbox (idempotency_key, channel, target, payload, status, attempts,
             next_attempt_at, created_at)
         VALUES ('k', 'webhook', 'x', '{not json', 'pending', 0, 0, 0)",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO subscribers (kind, address, components, locale, confirmed,
             unsubscribe_hash, created_at)
         VALUES ('email', 'a@b', '\"api\"', 'en', 1, 'h', 0)",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO maintenances (name, body, status, scheduled_for, scheduled_until,
             components, created_at, updated_at)
         VALUES ('{\"by_locale\":{}}', '7', 'scheduled', 0, 0, '[]', 0, 0)",
    )
    .execute(&mut raw)
    .await
    .unwrap();

    let err = store.claim_outbox("w", 1, t0(), LEASE).await.unwrap_err();
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");
    assert!(err.to_string().contains("payload is not JSON"), "{err}");
    let err = store.subscribers(false).await.unwrap_err();
    assert!(
        err.to_string().contains("components are not a JSON list"),
        "{err}"
    );
    // A list, but of something that is no component id.
    sqlx::query("UPDATE subscribers SET components = '[\"api\", \"Payments Team\"]'")
        .execute(&mut raw)
        .await
        .unwrap();
    let err = store.subscribers(false).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("subscribers.components \"Payments Team\""),
        "{err}"
    );
    let err = store.maintenances().await.unwrap_err();
    assert!(
        err.to_string().contains("body is not localized text"),
        "{err}"
    );
    // A readable maintenance but for a component list holding something no component id is.
    sqlx::query(
        "UPDATE maintenances SET body = '{\"by_locale\":{}}',
             components = '[\"api\", \"Payments Team\"]'",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    let err = store.maintenances().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("components are not a JSON list of component ids"),
        "{err}"
    );
    sqlx::query("UPDATE maintenances SET components = '[\"api\"]'")
        .execute(&mut raw)
        .await
        .unwrap();
    assert_eq!(store.maintenances().await.unwrap()[0].components, ["api"]);
}

/// Proves the claim skips rows another transaction holds rather than waiting for them: a
/// raw transaction locks the oldest due row, and a claim still returns at once with the next.
#[tokio::test]
async fn postgres_claim_skips_rows_locked_by_another_instance() {
    in_pg_schema(|url| async move {
        let store = PgStore::open(&url).await.unwrap();
        store
            .enqueue(&[item("locked", t0()), item("free", t0() + secs(1))])
            .await
            .unwrap();
        let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
        let mut tx = other.begin().await.unwrap();
        sqlx::query("SELECT id FROM outbox WHERE idempotency_key = 'locked' FOR UPDATE")
            .execute(&mut *tx)
            .await
            .unwrap();

        let got = tokio::time::timeout(
            Duration::from_secs(30),
            store.claim_outbox("w", 10, t0() + secs(5), LEASE),
        )
        .await
        .expect("the claim waited for a locked row instead of skipping it")
        .unwrap();
        assert_eq!(keys(&got), vec!["free"]);

        tx.rollback().await.unwrap();
        let rest = store
            .claim_outbox("w", 10, t0() + secs(5), LEASE)
            .await
            .unwrap();
        assert_eq!(keys(&rest), vec!["locked"]);
        store.close().await;
    })
    .await;
}

/// Several Keel instances on one database, each with its own pool, claiming one fan-out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_instances_never_claim_the_same_item() {
    in_pg_schema(|url| async move {
        let mut instances = Vec::new();
        for _ in 0..4 {
            instances.push(Arc::new(PgStore::open(&url).await.unwrap()));
        }
        let items: Vec<_> = (0..1000).map(|n| item(&format!("i{n:04}"), t0())).collect();
        // Every instance enqueues the same fan-out (as after a restart race): stored once.
        let mut inserted = 0;
        for s in &instances {
            inserted += s.enqueue(&items).await.unwrap();
        }
        assert_eq!(inserted, 1000);

        let tasks: Vec<_> = instances
            .iter()
            .enumerate()
            .map(|(n, s)| {
                let s = s.clone();
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let batch = s
                            .claim_outbox(&format!("instance-{n}"), 50, t0(), LEASE)
                            .await
                            .unwrap();
                        if batch.is_empty() {
                            break mine;
                        }
                        mine.extend(ids(&batch));
                    }
                })
            })
            .collect();
        let mut seen = BTreeSet::new();
        for t in tasks {
            for id in t.await.unwrap() {
                assert!(seen.insert(id), "item {id} was claimed by two instances");
            }
        }
        assert_eq!(seen.len(), 1000);
        for s in &instances {
            s.close().await;
        }
    })
    .await;
}
