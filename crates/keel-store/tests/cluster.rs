//! What several instances on one database share — leases with generations, fenced writes,
//! instances, incremental reads, heartbeats and the change feed — run against both backends
//! with the harness of `conformance.rs` (tests/support): a fresh SQLite directory or
//! PostgreSQL schema per story, PostgreSQL skipped visibly or required with
//! `KEEL_REQUIRE_POSTGRES=1`.
//!
//! Leases run on the database's clock, which a test cannot move: expiry is waited for (short
//! leases, polled with a generous deadline), never assumed after a fixed sleep. The stories
//! that need two instances on one PostgreSQL, or a listener connection to break, are
//! PostgreSQL-only and at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use futures::FutureExt;
use keel_core::confirm::Tracker;
use keel_core::incident::{Actor, EventKind, IncidentId, Origin};
use keel_core::{Health, MonitorId, NodeId, Signal, SourceKey, SourceKind};
use keel_store::postgres::PgStore;
use keel_store::{
    Change, ClusterStore, Fence, IncidentStore, Instance, Lease, NewEvent, SignalStore,
    SourceState, Store, StoreError,
};
use tokio::sync::mpsc;

mod support;
use support::{with_postgres, with_sqlite, TestSchema};

/// Only a guard against a hung test, never a performance bar.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// How long a story waits for something the database decides (a lease expiring, a
/// notification arriving) before calling it missing.
const DEADLINE: Duration = Duration::from_secs(10);

/// A lease that outlives any story.
const LONG: Duration = Duration::from_secs(600);

/// A lease that is over almost at once.
const BLINK: Duration = Duration::from_millis(1);

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
    a_new_lease_is_generation_one_and_renewing_keeps_it,
    taking_an_expired_lease_raises_its_generation,
    concurrent_claimers_of_a_free_lease_exactly_one_wins,
    bad_claims_are_invalid,
    released_leases_can_be_taken_at_once_and_others_are_untouched,
    leases_by_prefix_say_which_are_live,
    fenced_writes_succeed_while_the_lease_is_held,
    fenced_writes_after_the_lease_expired_are_refused_and_store_nothing,
    fenced_writes_after_a_take_over_are_refused_and_store_nothing,
    fenced_writes_after_a_release_are_refused,
    incident_events_after_a_seq_and_incident_heads,
    source_state_reads_one_source,
    source_states_of_reads_just_the_named_ones,
    signals_and_states_are_saved_together_and_told_once_per_source,
    heartbeats_keep_the_latest_push,
    instances_register_renew_and_leave,
    live_instances_leave_out_the_stale_ones,
    touching_an_instance_renews_it_and_keeps_its_config,
    the_feed_reports_this_instances_own_writes_where_there_is_one,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap()
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

fn opened(title: &str) -> EventKind {
    EventKind::Opened {
        title: title.to_string(),
        origin: Origin::Detected,
        cause: Some(NodeId::parse("db").unwrap()),
        cause_kind: "component".to_string(),
        failure_kind: "tcp".to_string(),
        impacted: BTreeSet::from([NodeId::parse("api").unwrap(), NodeId::parse("db").unwrap()]),
        affected_users: 1_000,
        reason: "db: connection refused".to_string(),
        failing_since: t0(),
    }
}

fn opening(title: &str) -> Vec<NewEvent> {
    vec![(Actor::System, t0(), opened(title))]
}

fn note(text: &str) -> Vec<NewEvent> {
    vec![(
        Actor::User("ann".to_string()),
        t0() + TimeDelta::minutes(1),
        EventKind::Note {
            text: text.to_string(),
        },
    )]
}

async fn claim_one(store: &Arc<dyn Store>, name: &str, holder: &str, ttl: Duration) -> Lease {
    let mut held = store
        .claim_leases(&names(&[name]), holder, ttl)
        .await
        .unwrap();
    assert_eq!(held.len(), 1, "{holder} did not get {name}: {held:?}");
    held.remove(0)
}

/// The lease named `name` and whether it is live.
async fn lease(store: &Arc<dyn Store>, name: &str) -> (Lease, bool) {
    let found: Vec<_> = store
        .leases(name)
        .await
        .unwrap()
        .into_iter()
        .filter(|(l, _)| l.name == name)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

/// Waits until the database's clock has passed the end of the lease named `name`.
async fn wait_until_expired(store: &Arc<dyn Store>, name: &str) {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while lease(store, name).await.1 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "lease {name} still live after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn assert_fenced(err: StoreError, fence: &Fence) {
    match err {
        StoreError::Fenced(msg) => assert_eq!(
            msg,
            format!(
                "lease '{}' generation {} is no longer held by {}",
                fence.lease, fence.generation, fence.holder
            )
        ),
        other => panic!("expected Fenced, got {other:?}"),
    }
}

fn key(kind: SourceKind, id: &str) -> SourceKey {
    SourceKey::parse(kind, id).unwrap()
}

fn m(id: &str) -> MonitorId {
    MonitorId::parse(id).unwrap()
}

fn state(kind: SourceKind, id: &str, health: Health) -> SourceState {
    SourceState {
        key: key(kind, id),
        component: NodeId::parse("api").unwrap(),
        tracker: Tracker {
            health,
            since: t0(),
            reason: format!("{id} is {}", health.as_str()),
            latency_ms: Some(42),
            last_checked: Some(t0() + TimeDelta::seconds(30)),
            streak: 3,
            streak_since: None,
            pending: None,
        },
    }
}

fn instance(id: &str, started_at: DateTime<Utc>) -> Instance {
    Instance {
        id: id.to_string(),
        listen: "10.0.0.1:8080".to_string(),
        started_at,
        // Ignored on write: the database's clock decides.
        seen_at: DateTime::UNIX_EPOCH,
        config: BTreeMap::from([
            ("monitor api".to_string(), "sha256:1f2e".to_string()),
            ("[incidents]".to_string(), "sha256:77aa".to_string()),
            ("component café".to_string(), "sha256:c0ff".to_string()),
        ]),
    }
}

/// The next change on a feed, within the deadline.
async fn next_change(feed: &mut mpsc::Receiver<Change>) -> Change {
    tokio::time::timeout(DEADLINE, feed.recv())
        .await
        .unwrap_or_else(|_| panic!("no change within {DEADLINE:?}"))
        .expect("the feed ended")
}

/// Reads the feed until `wanted` arrives; returns what came before it.
async fn wait_for(feed: &mut mpsc::Receiver<Change>, wanted: &Change) -> Vec<Change> {
    let mut before = Vec::new();
    loop {
        let change = next_change(feed).await;
        if &change == wanted {
            return before;
        }
        before.push(change);
    }
}

fn heartbeat(monitor: &str, at: DateTime<Utc>) -> Change {
    Change::Heartbeat {
        monitor: m(monitor),
        at,
    }
}

// ---------------------------------------------------------------------------------------------
// Leases
// ---------------------------------------------------------------------------------------------

async fn a_new_lease_is_generation_one_and_renewing_keeps_it(store: Arc<dyn Store>) {
    // One call for several names, repeats and any order: the held ones, by name.
    let held = store
        .claim_leases(
            &names(&["shard/2", "leader", "shard/1", "leader"]),
            "a",
            LONG,
        )
        .await
        .unwrap();
    let got: Vec<_> = held
        .iter()
        .map(|l| (l.name.as_str(), l.holder.as_str(), l.generation))
        .collect();
    assert_eq!(
        got,
        [("leader", "a", 1), ("shard/1", "a", 1), ("shard/2", "a", 1)]
    );
    assert_eq!(
        held[0].fence(),
        Fence {
            lease: "leader".into(),
            holder: "a".into(),
            generation: 1
        }
    );
    let (stored, live) = lease(&store, "leader").await;
    assert!(live);
    assert_eq!(stored, held[0]);

    // Someone else gets nothing while it is live, and changes nothing.
    assert!(store
        .claim_leases(&names(&["leader", "shard/1"]), "b", LONG)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(lease(&store, "leader").await, (held[0].clone(), true));

    // A mixed claim gets the free names only.
    let mixed = store
        .claim_leases(&names(&["leader", "shard/3"]), "b", LONG)
        .await
        .unwrap();
    assert_eq!(mixed.len(), 1);
    assert_eq!(
        (mixed[0].name.as_str(), mixed[0].generation),
        ("shard/3", 1)
    );

    // The holder renews in time: same generation, an end no earlier than before.
    let renewed = claim_one(&store, "leader", "a", LONG).await;
    assert_eq!(renewed.generation, 1);
    assert_eq!(renewed.holder, "a");
    assert!(renewed.expires_at >= held[0].expires_at);
    assert_eq!(lease(&store, "leader").await, (renewed, true));
}

async fn taking_an_expired_lease_raises_its_generation(store: Arc<dyn Store>) {
    assert_eq!(claim_one(&store, "leader", "a", BLINK).await.generation, 1);
    wait_until_expired(&store, "leader").await;

    // Even its last holder takes it anew.
    let again = claim_one(&store, "leader", "a", BLINK).await;
    assert_eq!(again.generation, 2);
    wait_until_expired(&store, "leader").await;

    let taken = claim_one(&store, "leader", "b", LONG).await;
    assert_eq!((taken.holder.as_str(), taken.generation), ("b", 3));
    assert!(store
        .claim_leases(&names(&["leader"]), "a", LONG)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(lease(&store, "leader").await, (taken, true));
}

async fn concurrent_claimers_of_a_free_lease_exactly_one_wins(store: Arc<dyn Store>) {
    for round in 0..5 {
        let name = format!("leader-{round}");
        let claims: Vec<_> = (0..8)
            .map(|i| {
                let store = store.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    let holder = format!("instance-{i}");
                    let held = store.claim_leases(&[name], &holder, LONG).await.unwrap();
                    (holder, held)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for claim in claims {
            let (holder, mut held) = claim.await.unwrap();
            if !held.is_empty() {
                assert_eq!(held.len(), 1);
                assert_eq!(held[0].holder, holder);
                assert_eq!(held[0].generation, 1);
                winners.push(held.remove(0));
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(lease(&store, &name).await, (winners.remove(0), true));
    }
}

async fn bad_claims_are_invalid(store: Arc<dyn Store>) {
    let err = store
        .claim_leases(&names(&["leader"]), "a", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    for (lease_names, holder) in [
        (names(&["lea\0der"]), "a"),
        (names(&[""]), "a"),
        (names(&["leader"]), ""),
    ] {
        let err = store
            .claim_leases(&lease_names, holder, LONG)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    }
    assert!(store.claim_leases(&[], "a", LONG).await.unwrap().is_empty());
    assert!(store.leases("").await.unwrap().is_empty());
}

async fn released_leases_can_be_taken_at_once_and_others_are_untouched(store: Arc<dyn Store>) {
    let held = store
        .claim_leases(&names(&["x", "y"]), "a", LONG)
        .await
        .unwrap();
    assert_eq!(held.len(), 2);

    // Another holder cannot release a's lease.
    store.release_leases(&names(&["x"]), "b").await.unwrap();
    assert_eq!(lease(&store, "x").await, (held[0].clone(), true));

    store
        .release_leases(&names(&["x", "never"]), "a")
        .await
        .unwrap();
    let (released, live) = lease(&store, "x").await;
    assert!(!live);
    assert_eq!((released.holder.as_str(), released.generation), ("a", 1));
    assert_eq!(lease(&store, "y").await, (held[1].clone(), true));

    let taken = claim_one(&store, "x", "b", LONG).await;
    assert_eq!((taken.holder.as_str(), taken.generation), ("b", 2));
    // Releasing again (or an expired lease) changes nothing.
    store.release_leases(&names(&["x"]), "a").await.unwrap();
    assert_eq!(lease(&store, "x").await, (taken, true));
}

async fn leases_by_prefix_say_which_are_live(store: Arc<dyn Store>) {
    store
        .claim_leases(&names(&["shard/2", "shard/1", "leader"]), "a", LONG)
        .await
        .unwrap();
    claim_one(&store, "shard/3", "b", BLINK).await;
    wait_until_expired(&store, "shard/3").await;

    let shards: Vec<_> = store
        .leases("shard/")
        .await
        .unwrap()
        .into_iter()
        .map(|(l, live)| (l.name, l.holder, live))
        .collect();
    assert_eq!(
        shards,
        [
            ("shard/1".to_string(), "a".to_string(), true),
            ("shard/2".to_string(), "a".to_string(), true),
            ("shard/3".to_string(), "b".to_string(), false),
        ]
    );
    let all: Vec<_> = store
        .leases("")
        .await
        .unwrap()
        .into_iter()
        .map(|(l, _)| l.name)
        .collect();
    assert_eq!(all, ["leader", "shard/1", "shard/2", "shard/3"]);
    // The prefix is text, not a pattern.
    assert!(store.leases("shard%").await.unwrap().is_empty());
    assert!(store.leases("_hard/").await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Fenced writes
// ---------------------------------------------------------------------------------------------

async fn fenced_writes_succeed_while_the_lease_is_held(store: Arc<dyn Store>) {
    let fence = claim_one(&store, "leader", "a", LONG).await.fence();
    let id = store
        .create_incident_fenced(&fence, &opening("db down"))
        .await
        .unwrap();
    let stored = store
        .append_incident_events_fenced(&fence, id, 1, &note("looking"))
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].seq, 2);
    let all = store.incident_events(id).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1], stored[0]);

    // The fence adds to the usual checks, it does not replace them.
    let err = store
        .append_incident_events_fenced(&fence, id, 1, &note("stale"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("expected seq 1, found 2")),
        "{err:?}"
    );
    let err = store
        .append_incident_events_fenced(&fence, IncidentId(id.get() + 100), 0, &note("nowhere"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .create_incident_fenced(&fence, &note("no opening"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");

    // Renewing keeps the generation, so the same fence still holds.
    claim_one(&store, "leader", "a", LONG).await;
    store
        .append_incident_events_fenced(&fence, id, 2, &note("renewed"))
        .await
        .unwrap();
    assert_eq!(store.incident_heads().await.unwrap(), [(id, 3)]);
}

async fn fenced_writes_after_the_lease_expired_are_refused_and_store_nothing(
    store: Arc<dyn Store>,
) {
    let long = claim_one(&store, "book", "a", LONG).await.fence();
    let id = store
        .create_incident_fenced(&long, &opening("db down"))
        .await
        .unwrap();
    let fence = claim_one(&store, "leader", "a", BLINK).await.fence();
    wait_until_expired(&store, "leader").await;

    let err = store
        .create_incident_fenced(&fence, &opening("too late"))
        .await
        .unwrap_err();
    assert_fenced(err, &fence);
    let err = store
        .append_incident_events_fenced(&fence, id, 1, &note("too late"))
        .await
        .unwrap_err();
    assert_fenced(err, &fence);

    assert_eq!(store.incident_heads().await.unwrap(), [(id, 1)]);
    assert_eq!(store.all_incident_events().await.unwrap().len(), 1);
}

async fn fenced_writes_after_a_take_over_are_refused_and_store_nothing(store: Arc<dyn Store>) {
    let id = store.create_incident(&opening("db down")).await.unwrap();
    let old = claim_one(&store, "leader", "a", BLINK).await.fence();
    wait_until_expired(&store, "leader").await;
    let new = claim_one(&store, "leader", "b", LONG).await.fence();
    assert_eq!(new.generation, old.generation + 1);

    let err = store
        .create_incident_fenced(&old, &opening("stale leader"))
        .await
        .unwrap_err();
    assert_fenced(err, &old);
    let err = store
        .append_incident_events_fenced(&old, id, 1, &note("stale leader"))
        .await
        .unwrap_err();
    assert_fenced(err, &old);
    // A fence naming the new generation but the old holder holds nothing either.
    let forged = Fence {
        generation: new.generation,
        ..old.clone()
    };
    let err = store
        .append_incident_events_fenced(&forged, id, 1, &note("forged"))
        .await
        .unwrap_err();
    assert_fenced(err, &forged);
    assert_eq!(store.incident_heads().await.unwrap(), [(id, 1)]);
    assert_eq!(store.all_incident_events().await.unwrap().len(), 1);

    // The new holder writes on.
    store
        .append_incident_events_fenced(&new, id, 1, &note("new leader"))
        .await
        .unwrap();
    assert_eq!(store.incident_heads().await.unwrap(), [(id, 2)]);
}

async fn fenced_writes_after_a_release_are_refused(store: Arc<dyn Store>) {
    let fence = claim_one(&store, "leader", "a", LONG).await.fence();
    let id = store
        .create_incident_fenced(&fence, &opening("db down"))
        .await
        .unwrap();
    store
        .release_leases(&names(&["leader"]), "a")
        .await
        .unwrap();
    let err = store
        .append_incident_events_fenced(&fence, id, 1, &note("after release"))
        .await
        .unwrap_err();
    assert_fenced(err, &fence);

    // A fence for a lease nobody ever claimed, or that cannot exist, holds nothing.
    for never in [
        Fence {
            lease: "nobody".into(),
            holder: "a".into(),
            generation: 1,
        },
        Fence {
            lease: "lead\0er".into(),
            holder: "a".into(),
            generation: 1,
        },
    ] {
        let err = store
            .create_incident_fenced(&never, &opening("unfenced"))
            .await
            .unwrap_err();
        assert_fenced(err, &never);
    }
    assert_eq!(store.incident_heads().await.unwrap(), [(id, 1)]);
}

// ---------------------------------------------------------------------------------------------
// Incremental reads, source states, heartbeats
// ---------------------------------------------------------------------------------------------

async fn incident_events_after_a_seq_and_incident_heads(store: Arc<dyn Store>) {
    assert!(store.incident_heads().await.unwrap().is_empty());
    let first = store.create_incident(&opening("db down")).await.unwrap();
    store
        .append_incident_events(first, 1, &note("one"))
        .await
        .unwrap();
    store
        .append_incident_events(first, 2, &note("two"))
        .await
        .unwrap();
    let second = store.create_incident(&opening("api slow")).await.unwrap();

    let all = store.incident_events(first).await.unwrap();
    assert_eq!(store.incident_events_after(first, 0).await.unwrap(), all);
    assert_eq!(
        store.incident_events_after(first, 1).await.unwrap(),
        all[1..]
    );
    assert_eq!(
        store.incident_events_after(first, 2).await.unwrap(),
        all[2..]
    );
    assert!(store
        .incident_events_after(first, 3)
        .await
        .unwrap()
        .is_empty());
    assert!(store
        .incident_events_after(first, 99)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.incident_events_after(second, 0).await.unwrap().len(),
        1
    );
    let err = store
        .incident_events_after(IncidentId(second.get() + 100), 0)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    assert_eq!(
        store.incident_heads().await.unwrap(),
        [(first, 3), (second, 1)]
    );
}

async fn source_state_reads_one_source(store: Arc<dyn Store>) {
    assert_eq!(
        store
            .source_state(&key(SourceKind::Monitor, "api"))
            .await
            .unwrap(),
        None
    );
    let api = state(SourceKind::Monitor, "api", Health::Down);
    let alert = state(
        SourceKind::Intake,
        "alertmanager/prod cluster/High Latency",
        Health::Degraded,
    );
    store.save_source_state(&api).await.unwrap();
    store.save_source_state(&alert).await.unwrap();
    assert_eq!(
        store
            .source_state(&key(SourceKind::Monitor, "api"))
            .await
            .unwrap(),
        Some(api.clone())
    );
    assert_eq!(store.source_state(&alert.key).await.unwrap(), Some(alert));
    // Same id, other kind: another source.
    assert_eq!(
        store
            .source_state(&key(SourceKind::Vendor, "api"))
            .await
            .unwrap(),
        None
    );

    let up = state(SourceKind::Monitor, "api", Health::Up);
    store.save_source_state(&up).await.unwrap();
    assert_eq!(
        store
            .source_state(&key(SourceKind::Monitor, "api"))
            .await
            .unwrap(),
        Some(up)
    );
}

async fn source_states_of_reads_just_the_named_ones(store: Arc<dyn Store>) {
    assert!(store.source_states_of(&[]).await.unwrap().is_empty());
    let api = state(SourceKind::Monitor, "api", Health::Down);
    let web = state(SourceKind::Monitor, "web", Health::Up);
    let alert = state(
        SourceKind::Intake,
        "alertmanager/prod cluster/High Latency",
        Health::Degraded,
    );
    for s in [&api, &web, &alert] {
        store.save_source_state(s).await.unwrap();
    }
    let mut got = store
        .source_states_of(&[
            key(SourceKind::Monitor, "api"),
            alert.key.clone(),
            // Stored under another kind, and not stored at all: left out.
            key(SourceKind::Vendor, "web"),
            key(SourceKind::Monitor, "nowhere"),
        ])
        .await
        .unwrap();
    got.sort_by_key(|s| s.key.id());
    assert_eq!(got, [alert, api]);
}

async fn signals_and_states_are_saved_together_and_told_once_per_source(store: Arc<dyn Store>) {
    let feed = store.changes().await.unwrap();
    let signal = |id: &str, health: Health| Signal {
        source: key(SourceKind::Monitor, id),
        component: NodeId::parse("api").unwrap(),
        health,
        reason: format!("{id} is {}", health.as_str()),
        at: t0(),
    };
    let before = store.signals_after(0, 100).await.unwrap().len();
    let signals = [
        signal("api", Health::Down),
        signal("web", Health::Up),
        signal("api", Health::Up),
    ];
    let states = [
        state(SourceKind::Monitor, "api", Health::Up),
        state(SourceKind::Monitor, "web", Health::Up),
    ];
    store
        .save_signals_and_states(&signals, &states)
        .await
        .unwrap();
    store.save_signals_and_states(&[], &[]).await.unwrap();
    let stored: Vec<Signal> = store
        .signals_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .skip(before)
        .map(|s| s.signal)
        .collect();
    assert_eq!(stored, signals);
    let mut saved = store.load_source_states().await.unwrap();
    saved.sort_by_key(|s| s.key.id());
    assert_eq!(saved, states);
    if let Some(mut feed) = feed {
        for s in &states {
            let change = Change::Source { key: s.key.clone() };
            assert_eq!(next_change(&mut feed).await, change);
        }
    }
}

async fn heartbeats_keep_the_latest_push(store: Arc<dyn Store>) {
    assert!(store.heartbeats().await.unwrap().is_empty());
    let t = t0() + TimeDelta::milliseconds(1_234);
    store.save_heartbeat(&m("nightly-backup"), t).await.unwrap();
    store.save_heartbeat(&m("cron"), t0()).await.unwrap();
    store
        .save_heartbeat(&m("nightly-backup"), t + TimeDelta::minutes(5))
        .await
        .unwrap();
    // A push stored late (another instance, a retry) does not move the time back.
    store.save_heartbeat(&m("nightly-backup"), t).await.unwrap();
    assert_eq!(
        store.heartbeats().await.unwrap(),
        [
            (m("cron"), t0()),
            (m("nightly-backup"), t + TimeDelta::minutes(5)),
        ]
    );
    // Kept to the millisecond, as every time.
    store
        .save_heartbeat(&m("cron"), t0() + TimeDelta::microseconds(1_500))
        .await
        .unwrap();
    assert_eq!(
        store.heartbeats().await.unwrap()[0],
        (m("cron"), t0() + TimeDelta::milliseconds(1))
    );
}

// ---------------------------------------------------------------------------------------------
// Instances
// ---------------------------------------------------------------------------------------------

async fn instances_register_renew_and_leave(store: Arc<dyn Store>) {
    let started = t0() + TimeDelta::microseconds(2_500);
    let me = instance("host-1/4242/9f3c", started);
    store.heartbeat_instance(&me).await.unwrap();
    let live = store.live_instances(LONG).await.unwrap();
    assert_eq!(live.len(), 1);
    let first = live[0].clone();
    assert_eq!(first.id, me.id);
    assert_eq!(first.listen, me.listen);
    assert_eq!(first.config, me.config);
    assert_eq!(first.started_at, t0() + TimeDelta::milliseconds(2));

    // Renewing keeps started_at (whatever the call says) and moves seen_at on the database's
    // clock; the listen address and digests are the latest ones.
    let mut renewed = me.clone();
    renewed.started_at = t0() + TimeDelta::hours(1);
    renewed.listen = "10.0.0.1:9090".to_string();
    renewed
        .config
        .insert("monitor db".to_string(), "sha256:dbdb".to_string());
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let now = loop {
        tokio::time::sleep(Duration::from_millis(5)).await;
        store.heartbeat_instance(&renewed).await.unwrap();
        let now = store.live_instances(LONG).await.unwrap().remove(0);
        if now.seen_at > first.seen_at {
            break now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "seen_at did not move: {now:?}"
        );
    };
    assert_eq!(now.started_at, first.started_at);
    assert_eq!(now.listen, "10.0.0.1:9090");
    assert_eq!(now.config, renewed.config);

    store.remove_instance(&me.id).await.unwrap();
    assert!(store.live_instances(LONG).await.unwrap().is_empty());
    // Removing twice (or an unknown instance) is harmless.
    store.remove_instance(&me.id).await.unwrap();

    let err = store
        .heartbeat_instance(&instance("", started))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let mut nul = instance("host-2", started);
    nul.config.insert("bad".to_string(), "a\0b".to_string());
    let err = store.heartbeat_instance(&nul).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

async fn live_instances_leave_out_the_stale_ones(store: Arc<dyn Store>) {
    let old = instance("old", t0());
    let young = instance("young", t0() + TimeDelta::hours(1));
    store.heartbeat_instance(&young).await.unwrap();
    store.heartbeat_instance(&old).await.unwrap();
    let ids = |list: Vec<Instance>| list.into_iter().map(|i| i.id).collect::<Vec<_>>();
    // Oldest first, by when they started.
    assert_eq!(
        ids(store.live_instances(LONG).await.unwrap()),
        ["old", "young"]
    );

    // Only `young` keeps beating: `old` drops out of a short window, `young` stays in it.
    let within = Duration::from_millis(300);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        store.heartbeat_instance(&young).await.unwrap();
        let live = ids(store.live_instances(within).await.unwrap());
        if live == ["young"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "old never went stale: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        ids(store.live_instances(LONG).await.unwrap()),
        ["old", "young"]
    );
    assert_eq!(
        ids(store.live_instances(Duration::MAX).await.unwrap()),
        ["old", "young"]
    );

    store.remove_instance("young").await.unwrap();
    assert_eq!(ids(store.live_instances(LONG).await.unwrap()), ["old"]);
}

async fn touching_an_instance_renews_it_and_keeps_its_config(store: Arc<dyn Store>) {
    // Not registered: nothing to renew, and nothing registered by trying.
    assert!(!store.touch_instance("ghost").await.unwrap());
    assert!(store.live_instance_ids(LONG).await.unwrap().is_empty());

    let old = instance("old", t0());
    let young = instance("young", t0() + TimeDelta::hours(1));
    store.heartbeat_instance(&young).await.unwrap();
    store.heartbeat_instance(&old).await.unwrap();
    assert_eq!(
        store.live_instance_ids(LONG).await.unwrap(),
        ["old", "young"]
    );
    let first = store.live_instances(LONG).await.unwrap();

    // Only `young` is touched: it stays in a short window, `old` drops out of it, and the
    // config registered with the full heartbeat is still there.
    let within = Duration::from_millis(300);
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        assert!(store.touch_instance("young").await.unwrap());
        let live = store.live_instance_ids(within).await.unwrap();
        if live == ["young"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "old never went stale: {live:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = store.live_instances(LONG).await.unwrap();
    let young_now = now.iter().find(|i| i.id == "young").unwrap();
    let young_first = first.iter().find(|i| i.id == "young").unwrap();
    assert!(young_now.seen_at > young_first.seen_at);
    assert_eq!(young_now.config, young.config);
    assert_eq!(young_now.started_at, young_first.started_at);

    store.remove_instance("young").await.unwrap();
    assert!(!store.touch_instance("young").await.unwrap());
    assert_eq!(store.live_instance_ids(LONG).await.unwrap(), ["old"]);
}

// ---------------------------------------------------------------------------------------------
// The change feed
// ---------------------------------------------------------------------------------------------

async fn the_feed_reports_this_instances_own_writes_where_there_is_one(store: Arc<dyn Store>) {
    let Some(mut feed) = store.changes().await.unwrap() else {
        // SQLite carries one instance: nobody else writes, so it has no feed.
        assert_eq!(store.backend(), "sqlite");
        return;
    };
    assert_eq!(store.backend(), "postgres");

    let id = store.create_incident(&opening("db down")).await.unwrap();
    store
        .append_incident_events(id, 1, &note("looking"))
        .await
        .unwrap();
    // Nothing stored, nothing told: a failed append and an empty one.
    store
        .append_incident_events(id, 1, &note("stale"))
        .await
        .unwrap_err();
    store.append_incident_events(id, 2, &[]).await.unwrap();
    let fence = claim_one(&store, "leader", "a", LONG).await.fence();
    store
        .append_incident_events_fenced(&fence, id, 2, &note("fenced"))
        .await
        .unwrap();
    let alert = state(
        SourceKind::Intake,
        "alertmanager/prod cluster/High Latency",
        Health::Down,
    );
    store.save_source_state(&alert).await.unwrap();
    let at = t0() + TimeDelta::milliseconds(7);
    store
        .save_heartbeat(&m("nightly-backup"), at)
        .await
        .unwrap();
    // A refused fenced write tells nobody either.
    store
        .release_leases(&names(&["leader"]), "a")
        .await
        .unwrap();
    store
        .create_incident_fenced(&fence, &opening("refused"))
        .await
        .unwrap_err();
    let fenced_id = store
        .create_incident_fenced(
            &claim_one(&store, "leader", "a", LONG).await.fence(),
            &opening("fenced"),
        )
        .await
        .unwrap();

    // One writer: its commits, hence its notifications, in order.
    let expected = [
        Change::Incident { id, seq: 1 },
        Change::Incident { id, seq: 2 },
        Change::Incident { id, seq: 3 },
        Change::Source {
            key: alert.key.clone(),
        },
        heartbeat("nightly-backup", at),
        Change::Incident {
            id: fenced_id,
            seq: 1,
        },
    ];
    for change in expected {
        assert_eq!(next_change(&mut feed).await, change);
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL only: several instances on one database, and a listener that loses its
// connection
// ---------------------------------------------------------------------------------------------

/// Runs `story` on a schema of its own, dropping the schema afterwards whatever happens.
async fn on_own_schema<F, Fut>(story: F)
where
    F: FnOnce(TestSchema) -> Fut,
    Fut: std::future::Future<Output = TestSchema>,
{
    let Some(schema) = TestSchema::create().await else {
        return;
    };
    let name = schema.name.clone();
    let outcome = AssertUnwindSafe(tokio::time::timeout(HANG_GUARD, story(schema)))
        .catch_unwind()
        .await;
    match outcome {
        Ok(Ok(schema)) => schema.drop().await,
        Ok(Err(_)) => {
            drop_schema(&name).await;
            panic!("story hung");
        }
        Err(panic) => {
            drop_schema(&name).await;
            std::panic::resume_unwind(panic);
        }
    }
}

async fn drop_schema(name: &str) {
    if let Some(mut admin) = support::pg_admin().await {
        let _ = sqlx::query(&format!("DROP SCHEMA {name} CASCADE"))
            .execute(&mut admin)
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_write_through_one_instance_is_seen_on_every_instances_feed() {
    on_own_schema(|schema| async move {
        let a = PgStore::open(&schema.url).await.unwrap();
        let b = PgStore::open(&schema.url).await.unwrap();
        let mut feed_a = a.changes().await.unwrap().expect("a feed");
        let mut feed_b = b.changes().await.unwrap().expect("a feed");

        // Another deployment on the same database, in a schema of its own.
        let other = TestSchema::create().await.expect("second schema");
        let stranger = PgStore::open(&other.url).await.unwrap();
        let mut feed_stranger = stranger.changes().await.unwrap().expect("a feed");

        let id = a.create_incident(&opening("db down")).await.unwrap();
        for feed in [&mut feed_a, &mut feed_b] {
            assert_eq!(next_change(feed).await, Change::Incident { id, seq: 1 });
        }
        b.append_incident_events(id, 1, &note("from b"))
            .await
            .unwrap();
        let state = state(SourceKind::Monitor, "api", Health::Down);
        b.save_source_state(&state).await.unwrap();
        for feed in [&mut feed_a, &mut feed_b] {
            assert_eq!(next_change(feed).await, Change::Incident { id, seq: 2 });
            assert_eq!(
                next_change(feed).await,
                Change::Source {
                    key: key(SourceKind::Monitor, "api")
                }
            );
        }
        // What b wrote, a reads incrementally.
        assert_eq!(a.incident_events_after(id, 1).await.unwrap().len(), 1);

        // The stranger's writes stay in its own schema's channel. Notifications arrive in
        // commit order, so once the marker written after them is here, they would have been.
        stranger.save_heartbeat(&m("stranger"), t0()).await.unwrap();
        assert_eq!(
            next_change(&mut feed_stranger).await,
            heartbeat("stranger", t0())
        );
        a.save_heartbeat(&m("marker"), t0()).await.unwrap();
        for feed in [&mut feed_a, &mut feed_b] {
            assert_eq!(wait_for(feed, &heartbeat("marker", t0())).await, []);
        }
        assert!(feed_stranger.try_recv().is_err());

        drop(feed_stranger);
        stranger.close().await;
        other.drop().await;
        a.close().await;
        b.close().await;
        // Closing the store ends its feed.
        assert_eq!(
            tokio::time::timeout(DEADLINE, feed_a.recv()).await.unwrap(),
            None
        );
        schema
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_transaction_left_idle_by_a_stopped_process_is_ended() {
    on_own_schema(|schema| async move {
        // A fenced write keeps its lease row locked until the transaction ends; a process
        // stopped in the middle must not keep it past this.
        let store = PgStore::open(&schema.url).await.unwrap();
        assert_eq!(
            store
                .setting("idle_in_transaction_session_timeout")
                .await
                .unwrap(),
            "15s"
        );
        store.close().await;
        schema
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_the_feed_reconnects_by_itself_and_says_so() {
    on_own_schema(|mut schema| async move {
        let store = PgStore::open(&schema.url).await.unwrap();
        let mut feed = store.changes().await.unwrap().expect("a feed");
        store.save_heartbeat(&m("before"), t0()).await.unwrap();
        assert_eq!(next_change(&mut feed).await, heartbeat("before", t0()));

        // The listener's own connection: named `keel-listen`, listening on this schema's
        // channel (other tests' listeners run beside it).
        let (killed,): (i64,) = sqlx::query_as(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'keel-listen' AND query LIKE 'LISTEN %' || $1 || '%'",
        )
        .bind(&schema.name)
        .fetch_one(&mut schema.admin)
        .await
        .unwrap();
        assert_eq!(killed, 1);

        assert_eq!(next_change(&mut feed).await, Change::Reconnected);
        store.save_heartbeat(&m("after"), t0()).await.unwrap();
        assert_eq!(next_change(&mut feed).await, heartbeat("after", t0()));
        // The pool's own connections were untouched.
        store.ping().await.unwrap();
        store.close().await;
        schema
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_full_feed_drops_changes_and_asks_for_a_catch_up() {
    on_own_schema(|schema| async move {
        let store = PgStore::open(&schema.url).await.unwrap();
        let mut feed = store.changes_with_capacity(1).await.unwrap();
        let at = |n: i64| t0() + TimeDelta::seconds(n);
        for n in 0..20 {
            store.save_heartbeat(&m("busy"), at(n)).await.unwrap();
        }
        // Nobody reads for a while: the first change waits in the feed, the rest are dropped.
        // (Generous: the feed only has to take 20 notifications off its connection.)
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(next_change(&mut feed).await, heartbeat("busy", at(0)));
        assert_eq!(next_change(&mut feed).await, Change::Reconnected);
        store.save_heartbeat(&m("busy"), at(99)).await.unwrap();
        assert_eq!(next_change(&mut feed).await, heartbeat("busy", at(99)));
        // What was dropped is there to read.
        assert_eq!(store.heartbeats().await.unwrap(), [(m("busy"), at(99))]);
        store.close().await;
        schema
    })
    .await;
}

/// The first session `blocker` holds up, once there is one.
async fn wait_until_blocked_by(admin: &mut sqlx::PgConnection, blocker: i32) -> i32 {
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let blocked: Option<(i32,)> = sqlx::query_as(
            "SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid)) LIMIT 1",
        )
        .bind(blocker)
        .fetch_optional(&mut *admin)
        .await
        .unwrap();
        if let Some((pid,)) = blocked {
            return pid;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing waited for session {blocker}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_take_over_waits_for_a_fenced_write_in_flight() {
    on_own_schema(|mut schema| async move {
        use sqlx::Connection;

        let store: Arc<dyn Store> = Arc::new(PgStore::open(&schema.url).await.unwrap());
        let id = store.create_incident(&opening("db down")).await.unwrap();
        // Long enough for the write below to pass its fence check; it is then held up (by a
        // lock on the incident) until after the lease has ended.
        let fence = claim_one(&store, "leader", "a", Duration::from_secs(3))
            .await
            .fence();

        let mut admin = sqlx::PgConnection::connect(&schema.url).await.unwrap();
        let (admin_pid,): (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
            .fetch_one(&mut admin)
            .await
            .unwrap();
        let mut hold = admin.begin().await.unwrap();
        sqlx::query("SELECT id FROM incidents WHERE id = $1 FOR UPDATE")
            .bind(id.get())
            .execute(&mut *hold)
            .await
            .unwrap();

        let write = {
            let (store, fence) = (store.clone(), fence.clone());
            tokio::spawn(async move {
                store
                    .append_incident_events_fenced(&fence, id, 1, &note("in flight"))
                    .await
            })
        };
        // The write has checked its fence and waits for the incident.
        let writer = wait_until_blocked_by(&mut schema.admin, admin_pid).await;
        wait_until_expired(&store, "leader").await;

        // The lease has ended, but the write holding it has not committed: b waits for it.
        let take_over = {
            let store = store.clone();
            tokio::spawn(async move { claim_one(&store, "leader", "b", LONG).await })
        };
        wait_until_blocked_by(&mut schema.admin, writer).await;
        assert!(!take_over.is_finished());

        hold.commit().await.unwrap();
        let written = write.await.unwrap().expect("the fenced write commits");
        assert_eq!(written[0].seq, 2);
        let taken = take_over.await.unwrap();
        assert_eq!((taken.holder.as_str(), taken.generation), ("b", 2));

        // From now on the old generation is refused.
        let err = store
            .append_incident_events_fenced(&fence, id, 2, &note("stale"))
            .await
            .unwrap_err();
        assert_fenced(err, &fence);
        admin.close().await.unwrap();
        schema
    })
    .await;
}
