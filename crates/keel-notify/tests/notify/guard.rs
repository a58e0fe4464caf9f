//! The private-target guard against real name resolution and a real receiver on loopback:
//! nothing reaches 127.0.0.1 unless private targets are allowed.

use std::time::Duration;

use chrono::Utc;
use keel_notify::guard::{Guard, GuardError};
use keel_notify::webhook::SignedBody;
use keel_notify::{Delivery, HttpOptions, SenderOptions, Senders};
use serde_json::json;

use crate::support::Receiver;

fn senders(allow: bool) -> Senders {
    Senders::new(
        SenderOptions {
            http: HttpOptions {
                timeout: Duration::from_secs(10),
                connect_timeout: Duration::from_secs(5),
            },
            allow_private_targets: allow,
        },
        None,
    )
    .unwrap()
}

fn hook() -> Delivery {
    Delivery::Webhook(SignedBody::new(&json!({"x": 1}), Some("s")))
}

#[tokio::test]
async fn vet_refuses_private_targets_and_names_that_resolve_to_them() {
    let g = Guard::new(false);
    for url in [
        "http://127.0.0.1/",
        "http://10.1.2.3/",
        "http://[::1]/",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/",
        "http://localhost:8080/hook",
        "http://LOCALHOST/",
    ] {
        match g.vet(url).await {
            Err(GuardError::Forbidden { .. }) => {}
            other => panic!("{url}: expected Forbidden, got {other:?}"),
        }
    }
    let e = g.vet("http://localhost/").await.unwrap_err();
    assert!(e.to_string().contains("loopback"), "{e}");
    assert!(matches!(
        g.vet("ftp://localhost/").await,
        Err(GuardError::Scheme(_))
    ));
    assert!(matches!(
        g.vet("http://u:p@localhost/").await,
        Err(GuardError::Credentials)
    ));
}

#[tokio::test]
async fn vet_allows_private_targets_when_configured() {
    let g = Guard::new(true);
    let (url, addrs) = g.vet("http://localhost:8080/hook").await.unwrap();
    assert_eq!(url.port(), Some(8080));
    assert!(
        addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 8080),
        "{addrs:?}"
    );
    assert!(g.vet("http://10.1.2.3/").await.is_ok());
}

#[tokio::test]
async fn sending_refuses_loopback_literals_and_names_at_connect_time() {
    let rx = Receiver::ok("s").await;
    let s = senders(false);
    let port = rx.addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        // A name is resolved by the guarded resolver when connecting: this is where a name
        // re-pointed at 127.0.0.1 after subscribing (DNS rebinding) is stopped.
        format!("http://localhost:{port}/"),
    ] {
        let e = s.deliver(&url, &hook(), "k", Utc::now()).await.unwrap_err();
        assert!(e.is_permanent(), "{url}: {e}");
        assert!(e.to_string().contains("loopback"), "{url}: {e}");
    }
    assert_eq!(rx.count(), 0, "nothing may reach the receiver");

    // The operators' own channels are not subscriber input and may be private.
    let ops = Delivery::OpsWebhook(SignedBody::new(&json!({}), None));
    s.deliver(
        &format!("http://localhost:{port}/ops"),
        &ops,
        "k",
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(rx.count(), 1);
}

#[tokio::test]
async fn allowing_private_targets_lets_the_same_sends_through() {
    let rx = Receiver::ok("s").await;
    let s = senders(true);
    let port = rx.addr.port();
    s.deliver(
        &format!("http://127.0.0.1:{port}/"),
        &hook(),
        "k",
        Utc::now(),
    )
    .await
    .unwrap();
    s.deliver(
        &format!("http://localhost:{port}/"),
        &hook(),
        "k",
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(rx.count(), 2);
    assert!(rx.received().iter().all(|r| r.signature_ok));
}
