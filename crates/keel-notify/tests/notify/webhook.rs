//! Subscriber webhooks delivered to a real HTTP receiver: signature, headers, and how each
//! kind of failure is classified.

use std::time::Duration;

use chrono::Utc;
use keel_notify::webhook::SignedBody;
use keel_notify::{Delivery, HttpOptions, SendError, SenderOptions, Senders};
use serde_json::json;

use crate::support::{Receiver, Reply};

const SECRET: &str = "whsec-test-0123456789";

fn senders(timeout: Duration) -> Senders {
    Senders::new(
        SenderOptions {
            http: HttpOptions {
                timeout,
                connect_timeout: timeout,
            },
            // The receiver is on loopback, which the guard would otherwise refuse.
            allow_private_targets: true,
        },
        None,
    )
    .unwrap()
}

fn delivery() -> Delivery {
    Delivery::Webhook(SignedBody::new(
        &json!({"meta": {"generated_at": "2024-05-01T12:00:00.000Z"}, "page": {"id": "keel"}, "incident": {"id": "12", "name": "Search is unavailable"}}),
        Some(SECRET),
    ))
}

#[tokio::test]
async fn delivers_signed_body_with_idempotency_key_and_timestamp() {
    let rx = Receiver::ok(SECRET).await;
    let s = senders(Duration::from_secs(10));
    let now = Utc::now();
    s.deliver(&rx.url("/hooks/keel"), &delivery(), "key-1", now)
        .await
        .unwrap();

    let got = rx.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.path, "/hooks/keel");
    assert!(r.signature_ok, "signature did not verify");
    assert_eq!(r.header("idempotency-key"), Some("key-1"));
    assert_eq!(
        r.header("x-keel-timestamp"),
        Some(now.timestamp().to_string().as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.header("user-agent").unwrap().starts_with("Keel/"));
    assert_eq!(r.json()["incident"]["id"], "12");
}

#[tokio::test]
async fn a_wrong_secret_does_not_verify() {
    let rx = Receiver::ok("another-secret").await;
    let s = senders(Duration::from_secs(10));
    s.deliver(&rx.url("/"), &delivery(), "k", Utc::now())
        .await
        .unwrap();
    assert!(!rx.received()[0].signature_ok);
}

#[tokio::test]
async fn retries_send_the_same_bytes_signature_and_key() {
    let rx = Receiver::start(
        SECRET,
        vec![Reply::Status(503), Reply::Status(502)],
        Reply::Status(204),
    )
    .await;
    let s = senders(Duration::from_secs(10));
    let d = delivery();
    for _ in 0..2 {
        let e = s
            .deliver(&rx.url("/"), &d, "same-key", Utc::now())
            .await
            .unwrap_err();
        assert!(!e.is_permanent(), "{e}");
    }
    s.deliver(&rx.url("/"), &d, "same-key", Utc::now())
        .await
        .unwrap();
    let got = rx.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.body, got[0].body);
        assert_eq!(
            r.header("x-keel-signature"),
            got[0].header("x-keel-signature")
        );
        assert_eq!(r.header("idempotency-key"), Some("same-key"));
        assert!(r.signature_ok);
    }
}

#[tokio::test]
async fn failures_are_classified() {
    let cases: Vec<(Reply, bool, &str)> = vec![
        (Reply::Status(500), false, "HTTP 500 Internal Server Error"),
        (Reply::Status(503), false, "HTTP 503"),
        (Reply::Status(408), false, "HTTP 408"),
        (Reply::Status(429), false, "HTTP 429"),
        (Reply::Status(400), true, "HTTP 400 Bad Request"),
        (Reply::Status(404), true, "HTTP 404"),
        (Reply::Status(410), true, "HTTP 410"),
        (Reply::Redirect, false, "HTTP 302"),
    ];
    let s = senders(Duration::from_secs(10));
    for (reply, permanent, says) in cases {
        let rx = Receiver::start(SECRET, vec![], reply).await;
        let e = s
            .deliver(&rx.url("/"), &delivery(), "k", Utc::now())
            .await
            .unwrap_err();
        assert_eq!(e.is_permanent(), permanent, "{reply:?}: {e}");
        assert!(e.to_string().contains(says), "{reply:?}: {e}");
        // Errors never carry the URL (chat webhook URLs hold tokens).
        assert!(!e.to_string().contains(&rx.addr.to_string()), "{e}");
        assert_eq!(rx.count(), 1, "{reply:?}: a redirect must not be followed");
    }
}

#[tokio::test]
async fn retry_after_is_passed_on() {
    let rx = Receiver::start(SECRET, vec![], Reply::RetryAfter(429, 120)).await;
    let s = senders(Duration::from_secs(10));
    match s
        .deliver(&rx.url("/"), &delivery(), "k", Utc::now())
        .await
        .unwrap_err()
    {
        SendError::Retryable {
            retry_after,
            reason,
        } => {
            assert_eq!(retry_after, Some(Duration::from_secs(120)));
            assert!(reason.contains("slow down"), "{reason}");
        }
        e => panic!("expected retryable, got {e}"),
    }
}

#[tokio::test]
async fn a_slow_receiver_times_out_as_retryable() {
    let rx = Receiver::start(SECRET, vec![], Reply::Slow(Duration::from_secs(30))).await;
    let s = senders(Duration::from_millis(300));
    let e = s
        .deliver(&rx.url("/"), &delivery(), "k", Utc::now())
        .await
        .unwrap_err();
    assert!(!e.is_permanent());
    assert!(e.to_string().contains("timed out"), "{e}");
}

#[tokio::test]
async fn nothing_listening_is_retryable() {
    // Bind then drop to get a port with (almost certainly) nothing on it.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let s = senders(Duration::from_secs(5));
    let e = s
        .deliver(
            &format!("http://127.0.0.1:{port}/"),
            &delivery(),
            "k",
            Utc::now(),
        )
        .await
        .unwrap_err();
    assert!(!e.is_permanent());
    assert!(e.to_string().contains("could not connect"), "{e}");
}

#[tokio::test]
async fn chat_channels_post_their_payloads() {
    use keel_notify::{discord, slack, teams, ResponderMessage, Tone};
    let msg = ResponderMessage {
        title: "SEV2 · Search is down (incident 12)".into(),
        text: "Search has failed its checks since 11:58 UTC.".into(),
        tone: Tone::Danger,
        facts: vec![("Severity".into(), "SEV2".into())],
        link: None,
        at: Utc::now(),
    };
    let rx = Receiver::ok("").await;
    let s = senders(Duration::from_secs(10));
    let all = [
        (
            "/slack",
            Delivery::Slack {
                body: slack::payload(&msg),
            },
        ),
        (
            "/discord",
            Delivery::Discord {
                body: discord::payload(&msg),
            },
        ),
        (
            "/teams",
            Delivery::Teams {
                body: teams::payload(teams::CardKind::Adaptive, &msg),
            },
        ),
        (
            "/ops",
            Delivery::OpsWebhook(SignedBody::new(&json!({"x": 1}), None)),
        ),
    ];
    for (path, d) in &all {
        s.deliver(&rx.url(path), d, "k", Utc::now()).await.unwrap();
    }
    let got = rx.received();
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].json()["text"], "SEV2 · Search is down (incident 12)");
    assert_eq!(
        got[1].json()["embeds"][0]["title"],
        "SEV2 · Search is down (incident 12)"
    );
    assert_eq!(got[2].json()["type"], "message");
    assert_eq!(got[3].header("x-keel-signature"), None);
}
