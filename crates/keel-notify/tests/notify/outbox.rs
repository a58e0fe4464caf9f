//! The outbox worker against SQLite and real peers: retries until success, the dead-letter
//! list after the retry budget, a stable idempotency key, recovery of a dead worker's claims,
//! unsubscribes respected, and the loop woken by a notify and stopped by a token.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use keel_notify::email::{EmailMessage, EmailSender, SmtpSettings, SmtpTls};
use keel_notify::outbox::{self, WorkerOptions};
use keel_notify::webhook::SignedBody;
use keel_notify::{idempotency_key, Delivery, HttpOptions, SenderOptions, Senders};
use keel_store::sqlite::SqliteStore;
use keel_store::{hash_token, NewSubscriber, Store, SubscriberKind};
use serde_json::json;

use crate::support::{Receiver, Reply, SmtpSink, PATIENCE};

const SECRET: &str = "outbox-secret";

struct Fixture {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    Fixture {
        store: Arc::new(store),
        _dir: dir,
    }
}

fn senders(email: Option<EmailSender>) -> Senders {
    Senders::new(
        SenderOptions {
            http: HttpOptions {
                timeout: Duration::from_secs(10),
                connect_timeout: Duration::from_secs(5),
            },
            allow_private_targets: true,
        },
        email,
    )
    .unwrap()
}

fn opts() -> WorkerOptions {
    WorkerOptions {
        max_attempts: 3,
        concurrency: 8,
        ..WorkerOptions::default()
    }
}

fn t0() -> DateTime<Utc> {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

/// Far enough apart that any retry (≤ the 10-minute cap) is due at the next step.
fn step(n: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::hours(n)
}

async fn enqueue_hook(
    store: &dyn Store,
    rx: &Receiver,
    recipient: &str,
    subscriber: Option<i64>,
) -> String {
    let key = idempotency_key("incident:12:update:1", recipient);
    let d = Delivery::Webhook(SignedBody::new(
        &json!({"incident": {"id": "12"}, "recipient": recipient}),
        Some(SECRET),
    ));
    let n = store
        .enqueue(&[outbox::item(
            &d,
            key.clone(),
            rx.url("/hook"),
            subscriber,
            t0(),
        )])
        .await
        .unwrap();
    assert_eq!(n, 1);
    key
}

#[tokio::test]
async fn retries_until_the_receiver_recovers_with_the_same_key() {
    let f = sqlite().await;
    let rx = Receiver::start(
        SECRET,
        vec![Reply::Status(500), Reply::Status(503)],
        Reply::Status(200),
    )
    .await;
    let s = senders(None);
    let key = enqueue_hook(&*f.store, &rx, "subscriber:1", None).await;

    let o = outbox::run_once(&*f.store, &s, "w1", step(0), &opts())
        .await
        .unwrap();
    assert_eq!((o.claimed, o.retried), (1, 1), "{o:?}");
    let o = outbox::run_once(&*f.store, &s, "w1", step(1), &opts())
        .await
        .unwrap();
    assert_eq!((o.claimed, o.retried), (1, 1), "{o:?}");
    let o = outbox::run_once(&*f.store, &s, "w1", step(2), &opts())
        .await
        .unwrap();
    assert_eq!((o.claimed, o.sent), (1, 1), "{o:?}");
    let o = outbox::run_once(&*f.store, &s, "w1", step(3), &opts())
        .await
        .unwrap();
    assert_eq!(o.claimed, 0, "nothing left: {o:?}");

    let got = rx.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.header("idempotency-key"), Some(key.as_str()));
        assert!(r.signature_ok);
        assert_eq!(r.body, got[0].body);
    }
    let c = f.store.outbox_counts().await.unwrap();
    assert_eq!((c.pending, c.sending, c.sent, c.dead), (0, 0, 1, 0));
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_lands_in_the_dead_letters() {
    let f = sqlite().await;
    let rx = Receiver::start(SECRET, vec![], Reply::Status(503)).await;
    let s = senders(None);
    enqueue_hook(&*f.store, &rx, "subscriber:1", None).await;
    let mut dead = 0;
    for n in 0..5 {
        let o = outbox::run_once(&*f.store, &s, "w1", step(n), &opts())
            .await
            .unwrap();
        dead += o.dead;
    }
    assert_eq!(dead, 1);
    assert_eq!(rx.count(), 3, "exactly the retry budget (3 attempts)");
    let letters = f.store.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    let err = letters[0].last_error.as_deref().unwrap();
    assert!(
        err.starts_with("gave up after 3 attempts: HTTP 503"),
        "{err}"
    );
    assert_eq!(letters[0].attempts, 3);
}

#[tokio::test]
async fn a_permanent_failure_is_dead_at_once() {
    let f = sqlite().await;
    let rx = Receiver::start(SECRET, vec![], Reply::Status(410)).await;
    let s = senders(None);
    enqueue_hook(&*f.store, &rx, "subscriber:1", None).await;
    let o = outbox::run_once(&*f.store, &s, "w1", step(0), &opts())
        .await
        .unwrap();
    assert_eq!(o.dead, 1, "{o:?}");
    assert_eq!(rx.count(), 1);
    let letters = f.store.dead_letters(10).await.unwrap();
    assert!(letters[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("HTTP 410"));
}

#[tokio::test]
async fn an_unreadable_payload_is_dead_with_a_reason() {
    let f = sqlite().await;
    let s = senders(None);
    f.store
        .enqueue(&[keel_store::NewOutboxItem {
            idempotency_key: "bad-1".into(),
            channel: "webhook".into(),
            target: "http://127.0.0.1:9/".into(),
            subscriber_id: None,
            payload: json!({"kind": "carrier_pigeon"}),
            next_attempt_at: t0(),
        }])
        .await
        .unwrap();
    let o = outbox::run_once(&*f.store, &s, "w1", step(0), &opts())
        .await
        .unwrap();
    assert_eq!(o.dead, 1);
    let letters = f.store.dead_letters(10).await.unwrap();
    assert!(letters[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("unreadable webhook notification"));
}

#[tokio::test]
async fn a_fan_out_is_sent_concurrently_each_once() {
    let f = sqlite().await;
    let rx = Receiver::ok(SECRET).await;
    let s = senders(None);
    for i in 0..150 {
        enqueue_hook(&*f.store, &rx, &format!("subscriber:{i}"), None).await;
    }
    let mut sent = 0;
    for n in 0..3 {
        sent += outbox::run_once(&*f.store, &s, "w1", step(n), &opts())
            .await
            .unwrap()
            .sent;
    }
    assert_eq!(sent, 150);
    let got = rx.received();
    assert_eq!(got.len(), 150);
    let keys: std::collections::BTreeSet<_> = got
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 150, "every recipient once");
}

#[tokio::test]
async fn claims_of_a_dead_worker_are_taken_over_after_the_lease() {
    let f = sqlite().await;
    let rx = Receiver::ok(SECRET).await;
    let s = senders(None);
    let key = enqueue_hook(&*f.store, &rx, "subscriber:1", None).await;
    // A worker claims and dies (SIGKILL) before sending or recording anything.
    let claimed = f
        .store
        .claim_outbox("crashed", 10, t0(), Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // While its lease runs, nobody else takes the item…
    let o = outbox::run_once(
        &*f.store,
        &s,
        "w2",
        t0() + chrono::Duration::seconds(30),
        &opts(),
    )
    .await
    .unwrap();
    assert_eq!(o.claimed, 0);
    // …after it, the next worker does.
    let o = outbox::run_once(
        &*f.store,
        &s,
        "w2",
        t0() + chrono::Duration::seconds(61),
        &opts(),
    )
    .await
    .unwrap();
    assert_eq!(o.sent, 1, "{o:?}");
    assert_eq!(
        rx.received()[0].header("idempotency-key"),
        Some(key.as_str())
    );
}

#[tokio::test]
async fn an_unsubscribed_subscriber_gets_nothing_more() {
    let f = sqlite().await;
    let rx = Receiver::ok(SECRET).await;
    let s = senders(None);
    let sub = f
        .store
        .create_subscriber(&NewSubscriber {
            kind: SubscriberKind::Webhook,
            address: rx.url("/hook"),
            components: vec![],
            locale: "en".into(),
            secret: Some(SECRET.into()),
            confirmed: true,
            confirm_token_hash: None,
            unsubscribe_token_hash: hash_token("unsub-token"),
            created_at: t0(),
        })
        .await
        .unwrap();
    let stay = f
        .store
        .create_subscriber(&NewSubscriber {
            kind: SubscriberKind::Webhook,
            address: rx.url("/hook2"),
            components: vec![],
            locale: "en".into(),
            secret: Some(SECRET.into()),
            confirmed: true,
            confirm_token_hash: None,
            unsubscribe_token_hash: hash_token("other-token"),
            created_at: t0(),
        })
        .await
        .unwrap();
    enqueue_hook(&*f.store, &rx, "leaver", Some(sub.id)).await;
    enqueue_hook(&*f.store, &rx, "stayer", Some(stay.id)).await;
    f.store
        .unsubscribe(&hash_token("unsub-token"))
        .await
        .unwrap();
    let o = outbox::run_once(&*f.store, &s, "w1", step(0), &opts())
        .await
        .unwrap();
    assert_eq!((o.sent, o.skipped), (1, 1), "{o:?}");
    assert_eq!(rx.count(), 1);
    assert_eq!(rx.received()[0].json()["recipient"], "stayer");
}

#[tokio::test]
async fn email_is_retried_through_a_temporary_smtp_refusal() {
    let f = sqlite().await;
    let sink = SmtpSink::start(&["--fail-first", "1"]).await;
    let email = EmailSender::new(&SmtpSettings {
        port: Some(sink.port),
        tls: SmtpTls::None,
        ..SmtpSettings::new("127.0.0.1", "status@acme.example")
    })
    .unwrap();
    let s = senders(Some(email));
    let d = Delivery::Email(EmailMessage {
        content: keel_notify::email::confirmation(
            "en",
            "Acme Status",
            "https://status.acme.example/confirm?token=x",
        ),
        list_unsubscribe: None,
    });
    let key = idempotency_key("confirm", "subscriber:9");
    f.store
        .enqueue(&[outbox::item(
            &d,
            key.clone(),
            "carol@example.com".into(),
            None,
            t0(),
        )])
        .await
        .unwrap();
    let o = outbox::run_once(&*f.store, &s, "w1", step(0), &opts())
        .await
        .unwrap();
    assert_eq!(o.retried, 1, "{o:?}");
    let o = outbox::run_once(&*f.store, &s, "w1", step(1), &opts())
        .await
        .unwrap();
    assert_eq!(o.sent, 1, "{o:?}");
    let got = sink.wait_for(1).await;
    assert_eq!(got[0]["rcpt_tos"][0], "carol@example.com");
    assert_eq!(
        got[0]["headers"]["Message-ID"],
        format!("<{key}@acme.example>")
    );
}

#[tokio::test]
async fn the_loop_wakes_on_notify_and_stops_on_cancel() {
    let f = sqlite().await;
    let rx = Receiver::ok(SECRET).await;
    let wake = Arc::new(tokio::sync::Notify::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(outbox::run(
        f.store.clone(),
        Arc::new(senders(None)),
        "loop".into(),
        WorkerOptions {
            // Long idle: only the wake-up can make the send prompt.
            idle: Duration::from_secs(3600),
            ..opts()
        },
        wake.clone(),
        stop.clone(),
    ));
    // Let the loop reach its idle wait with an empty outbox.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let key = idempotency_key("incident:1", "s");
    let d = Delivery::Webhook(SignedBody::new(&json!({"x": 1}), Some(SECRET)));
    f.store
        .enqueue(&[outbox::item(&d, key, rx.url("/"), None, Utc::now())])
        .await
        .unwrap();
    wake.notify_one();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while rx.count() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the woken worker never sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    tokio::time::timeout(PATIENCE, worker)
        .await
        .expect("worker stops")
        .unwrap();
    assert_eq!(f.store.outbox_counts().await.unwrap().sent, 1);
}
