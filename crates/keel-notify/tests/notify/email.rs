//! Email through a real SMTP server on loopback (aiosmtpd): what arrives, with which headers,
//! in both languages, and how SMTP refusals are classified.

use std::time::Duration;

use chrono::Utc;
use keel_notify::email::{self, EmailMessage, EmailSender, SmtpSettings, SmtpTls, UpdateLinks};
use keel_notify::{Delivery, SenderOptions, Senders};

use crate::support::SmtpSink;

fn settings(port: u16) -> SmtpSettings {
    SmtpSettings {
        port: Some(port),
        tls: SmtpTls::None,
        timeout: Duration::from_secs(10),
        ..SmtpSettings::new("127.0.0.1", "Acme Status <status@acme.example>")
    }
}

pub fn snapshot() -> keel_core::public::Snapshot {
    // The same shape the server builds; kept small.
    serde_json::from_value(serde_json::json!({
        "title": "Acme Status",
        "locales": ["en", "ja"],
        "base_url": "https://status.acme.example",
        "generated_at": "2024-05-01T12:00:00Z",
        "indicator": "major",
        "components": [{
            "id": "search",
            "name": {"by_locale": {"en": "Search", "ja": "検索"}},
            "status": "major_outage",
            "uptime": [],
            "uptime_ratio": null,
            "workaround": null,
            "updated_at": "2024-05-01T11:58:00Z",
            "position": 0
        }],
        "incidents": [{
            "id": "12",
            "name": {"by_locale": {"en": "Search is unavailable", "ja": "検索サービスの障害"}},
            "status": "investigating",
            "impact": "major",
            "created_at": "2024-05-01T11:58:00Z",
            "updated_at": "2024-05-01T12:00:00Z",
            "resolved_at": null,
            "components": ["search"],
            "affected_users": 500,
            "eta": {"basis": "none"},
            "workarounds": [],
            "updates": [{
                "id": "12-1",
                "status": "investigating",
                "body": {"by_locale": {
                    "en": "We are investigating a problem affecting Search.",
                    "ja": "検索サービスに影響する問題を調査しています。"
                }},
                "created_at": "2024-05-01T12:00:00Z"
            }]
        }],
        "maintenances": []
    }))
    .unwrap()
}

fn update_email(locale: &str) -> EmailMessage {
    let snap = snapshot();
    let inc = &snap.incidents[0];
    EmailMessage {
        content: email::incident_update(
            locale,
            &snap,
            inc,
            &inc.updates[0],
            UpdateLinks {
                page_url: Some("https://status.acme.example/"),
                unsubscribe_url: "https://status.acme.example/unsubscribe?token=u1",
            },
        ),
        list_unsubscribe: Some("https://status.acme.example/unsubscribe?token=u1".into()),
    }
}

#[tokio::test]
async fn update_emails_arrive_with_unsubscribe_headers_in_both_languages() {
    let sink = SmtpSink::start(&[]).await;
    let sender = EmailSender::new(&settings(sink.port)).unwrap();
    sender.test_connection().await.unwrap();
    sender
        .send("alice@example.com", &update_email("en"), "key-en")
        .await
        .unwrap();
    sender
        .send("hanako@example.jp", &update_email("ja"), "key-ja")
        .await
        .unwrap();

    let got = sink.wait_for(2).await;
    let (en, ja) = (&got[0], &got[1]);
    assert_eq!(en["mail_from"], "status@acme.example");
    assert_eq!(en["rcpt_tos"][0], "alice@example.com");
    assert_eq!(
        en["headers"]["Subject"],
        "[Acme Status] Investigating: Search is unavailable"
    );
    assert_eq!(en["headers"]["From"], "Acme Status <status@acme.example>");
    assert_eq!(
        en["headers"]["List-Unsubscribe"],
        "<https://status.acme.example/unsubscribe?token=u1>"
    );
    assert_eq!(
        en["headers"]["List-Unsubscribe-Post"],
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(en["headers"]["Message-ID"], "<key-en@acme.example>");
    let text = en["parts"]["text/plain"].as_str().unwrap();
    assert!(
        text.contains("We are investigating a problem affecting Search."),
        "{text}"
    );
    assert!(
        text.contains("No workaround is available at this time"),
        "{text}"
    );
    let html = en["parts"]["text/html"].as_str().unwrap();
    assert!(
        html.contains("href=\"https://status.acme.example/unsubscribe?token=u1\""),
        "{html}"
    );

    assert_eq!(ja["rcpt_tos"][0], "hanako@example.jp");
    assert_eq!(
        ja["headers"]["Subject"],
        "[Acme Status] 調査中：検索サービスの障害"
    );
    let text = ja["parts"]["text/plain"].as_str().unwrap();
    assert!(
        text.contains("検索サービスに影響する問題を調査しています。"),
        "{text}"
    );
    assert!(
        text.contains("配信を停止する：https://status.acme.example/unsubscribe?token=u1"),
        "{text}"
    );
    assert!(
        text.contains("現在、利用可能な回避策はありません"),
        "{text}"
    );
}

#[tokio::test]
async fn confirmation_email_has_the_link_and_no_unsubscribe_header() {
    let sink = SmtpSink::start(&[]).await;
    let senders = Senders::new(
        SenderOptions::default(),
        Some(EmailSender::new(&settings(sink.port)).unwrap()),
    )
    .unwrap();
    let d = Delivery::Email(EmailMessage {
        content: email::confirmation(
            "ja",
            "Acme Status",
            "https://status.acme.example/confirm?token=c1",
        ),
        list_unsubscribe: None,
    });
    senders
        .deliver("new@example.jp", &d, "confirm-1", Utc::now())
        .await
        .unwrap();
    let got = sink.wait_for(1).await;
    assert_eq!(
        got[0]["headers"]["Subject"],
        "Acme Status：購読を確認してください"
    );
    assert!(got[0]["headers"].get("List-Unsubscribe").is_none());
    assert!(got[0]["parts"]["text/plain"]
        .as_str()
        .unwrap()
        .contains("https://status.acme.example/confirm?token=c1"));
}

#[tokio::test]
async fn smtp_refusals_are_classified() {
    let sink = SmtpSink::start(&["--fail-rcpt", "gone@example.com", "--fail-first", "1"]).await;
    let sender = EmailSender::new(&settings(sink.port)).unwrap();
    // 451 to the first message: temporary.
    let e = sender
        .send("bob@example.com", &update_email("en"), "k1")
        .await
        .unwrap_err();
    assert!(!e.is_permanent(), "{e}");
    assert!(e.to_string().contains("451"), "{e}");
    // 550 for an unknown mailbox: permanent.
    let e = sender
        .send("gone@example.com", &update_email("en"), "k2")
        .await
        .unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(e.to_string().contains("550"), "{e}");
    // The same message now goes through.
    sender
        .send("bob@example.com", &update_email("en"), "k1")
        .await
        .unwrap();
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["rcpt_tos"][0], "bob@example.com");
}

#[tokio::test]
async fn bad_recipients_and_missing_smtp_are_reported() {
    let senders = Senders::new(SenderOptions::default(), None).unwrap();
    let d = Delivery::Email(update_email("en"));
    let e = senders
        .deliver("a@example.com", &d, "k", Utc::now())
        .await
        .unwrap_err();
    assert!(!e.is_permanent(), "waits for SMTP to be configured: {e}");
    assert!(e.to_string().contains("[notify.smtp]"), "{e}");

    let sink = SmtpSink::start(&[]).await;
    let sender = EmailSender::new(&settings(sink.port)).unwrap();
    let e = sender
        .send("not-an-address", &update_email("en"), "k")
        .await
        .unwrap_err();
    assert!(e.is_permanent(), "{e}");
}

#[tokio::test]
async fn a_closed_port_is_retryable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sender = EmailSender::new(&settings(port)).unwrap();
    let e = sender
        .send("a@example.com", &update_email("en"), "k")
        .await
        .unwrap_err();
    assert!(!e.is_permanent(), "{e}");
}
