//! Console accounts (users and sessions), run against both backends with the shared harness
//! (tests/support): a fresh SQLite directory or PostgreSQL schema per test.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, TimeZone, Utc};
use keel_store::{hash_token, NewSession, Store, StoreError};

mod support;
use support::{with_postgres, with_sqlite};

/// Only a guard against a hung test, never a performance bar.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// A syntactically valid argon2id PHC string (the store does not verify passwords).
const PHC: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$3fWgBNq7Q0ZkJbFvZ6xq6mRz7U0sYgB4JdMZ0rY8h2k";

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
    users_are_created_listed_found_and_deleted,
    bad_users_are_refused_with_a_reason,
    sessions_are_found_by_hash_until_they_expire,
    deleting_a_user_ends_their_sessions,
    bad_sessions_are_refused,
);

fn session(token: &str, user_id: i64, minutes: i64) -> NewSession {
    let start = Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap();
    NewSession {
        token_hash: hash_token(token),
        user_id,
        csrf_token: format!("csrf-{token}"),
        created_at: start,
        expires_at: start + TimeDelta::minutes(minutes),
    }
}

async fn users_are_created_listed_found_and_deleted(store: Arc<dyn Store>) {
    assert!(store.users().await.unwrap().is_empty());
    let ann = store.create_user("ann", "responder", PHC).await.unwrap();
    let bob = store.create_user("bob", "viewer", PHC).await.unwrap();
    assert!(bob.id > ann.id);
    assert_eq!(ann.role, "responder");
    assert_eq!(ann.password_hash, PHC);

    let found = store.user_by_name("ann").await.unwrap().expect("ann");
    assert_eq!(found, ann);
    assert!(store.user_by_name("Ann").await.unwrap().is_none());
    let names: Vec<_> = store
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["ann", "bob"]);

    match store.create_user("ann", "admin", PHC).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("\"ann\""), "{m}"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    store.delete_user("ann").await.unwrap();
    assert!(store.user_by_name("ann").await.unwrap().is_none());
    assert!(matches!(
        store.delete_user("ann").await,
        Err(StoreError::NotFound(_))
    ));
    // The name is free again, under a new id.
    let again = store.create_user("ann", "admin", PHC).await.unwrap();
    assert!(again.id > bob.id);
}

async fn bad_users_are_refused_with_a_reason(store: Arc<dyn Store>) {
    for (name, role, hash, says) in [
        ("", "viewer", PHC, "empty"),
        (" ann", "viewer", PHC, "spaces"),
        ("a\u{7}b", "viewer", PHC, "control"),
        ("root", "superuser", PHC, "unknown role"),
        ("carol", "viewer", "plaintext-password", "argon2id"),
        ("dave", "viewer", "$2b$12$bcrypthash", "argon2id"),
    ] {
        match store.create_user(name, role, hash).await {
            Err(StoreError::Invalid(m)) => assert!(m.contains(says), "{name:?}: {m}"),
            other => panic!("{name:?}: expected Invalid, got {other:?}"),
        }
    }
    let long = "x".repeat(65);
    assert!(matches!(
        store.create_user(&long, "viewer", PHC).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(store.users().await.unwrap().is_empty());
}

async fn sessions_are_found_by_hash_until_they_expire(store: Arc<dyn Store>) {
    let ann = store.create_user("ann", "admin", PHC).await.unwrap();
    let new = session("token-a", ann.id, 60);
    store.create_session(&new).await.unwrap();
    let start = new.created_at;

    let s = store
        .session(&new.token_hash, start + TimeDelta::minutes(1))
        .await
        .unwrap()
        .expect("session");
    assert_eq!(s.user, ann);
    assert_eq!(s.csrf_token, "csrf-token-a");
    assert_eq!((s.created_at, s.expires_at), (start, new.expires_at));
    assert_eq!(s.last_seen, start);
    // Only the hash finds it: the token itself is not a key.
    assert!(store.session("token-a", start).await.unwrap().is_none());

    store
        .touch_session(&new.token_hash, start + TimeDelta::minutes(5))
        .await
        .unwrap();
    // A late, out-of-order touch never moves last_seen back.
    store
        .touch_session(&new.token_hash, start + TimeDelta::minutes(2))
        .await
        .unwrap();
    let s = store
        .session(&new.token_hash, start)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.last_seen, start + TimeDelta::minutes(5));

    // Expired at its expiry instant, whether or not it was pruned.
    assert!(store
        .session(&new.token_hash, new.expires_at)
        .await
        .unwrap()
        .is_none());
    let other = session("token-b", ann.id, 600);
    store.create_session(&other).await.unwrap();
    assert_eq!(store.prune_sessions(new.expires_at).await.unwrap(), 1);
    assert!(store
        .session(&other.token_hash, new.expires_at)
        .await
        .unwrap()
        .is_some());

    // Sign-out.
    store.delete_session(&other.token_hash).await.unwrap();
    store.delete_session(&other.token_hash).await.unwrap();
    assert!(store
        .session(&other.token_hash, start)
        .await
        .unwrap()
        .is_none());
}

async fn deleting_a_user_ends_their_sessions(store: Arc<dyn Store>) {
    let ann = store.create_user("ann", "responder", PHC).await.unwrap();
    let bob = store.create_user("bob", "responder", PHC).await.unwrap();
    let a = session("ann-1", ann.id, 60);
    let b = session("bob-1", bob.id, 60);
    store.create_session(&a).await.unwrap();
    store
        .create_session(&session("ann-2", ann.id, 60))
        .await
        .unwrap();
    store.create_session(&b).await.unwrap();
    store.delete_user("ann").await.unwrap();
    assert!(store
        .session(&a.token_hash, a.created_at)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .session(&hash_token("ann-2"), a.created_at)
        .await
        .unwrap()
        .is_none());
    // A new "ann" does not inherit the old sessions.
    store.create_user("ann", "admin", PHC).await.unwrap();
    assert!(store
        .session(&a.token_hash, a.created_at)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .session(&b.token_hash, b.created_at)
        .await
        .unwrap()
        .is_some());
}

async fn bad_sessions_are_refused(store: Arc<dyn Store>) {
    let ann = store.create_user("ann", "viewer", PHC).await.unwrap();
    let mut s = session("x", ann.id, 60);
    s.expires_at = s.created_at;
    assert!(matches!(
        store.create_session(&s).await,
        Err(StoreError::Invalid(_))
    ));
    let mut s = session("x", ann.id, 60);
    s.token_hash = "not-a-hash".into();
    assert!(matches!(
        store.create_session(&s).await,
        Err(StoreError::Invalid(_))
    ));
    let s = session("x", ann.id + 1000, 60);
    assert!(matches!(
        store.create_session(&s).await,
        Err(StoreError::NotFound(_))
    ));
    let s = session("x", ann.id, 60);
    store.create_session(&s).await.unwrap();
    assert!(matches!(
        store.create_session(&s).await,
        Err(StoreError::Conflict(_))
    ));
}
