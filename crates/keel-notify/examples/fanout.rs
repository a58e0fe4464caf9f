//! Fan-out benchmark: how long until the last subscriber has the update.
//!
//!     cargo run --release -p keel-notify --example fanout -- webhook 10000 [WORKERS]
//!     cargo run --release -p keel-notify --example fanout -- email 1000 [WORKERS]
//!
//! Queues N notifications in a fresh SQLite outbox (in batches of 1,000, as the server does),
//! then runs WORKERS (default 1) outbox workers until every one is delivered: webhooks to a
//! loopback HTTP receiver that verifies each signature, emails to the loopback SMTP server of
//! `scripts/smtp-sink` (aiosmtpd). Prints the time to queue, the time from the first row
//! queued to the last delivery, and the delivery rate. Everything stays on 127.0.0.1.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;
use keel_notify::email::{EmailMessage, EmailSender, SmtpSettings, SmtpTls};
use keel_notify::outbox::{self, WorkerOptions};
use keel_notify::webhook::{self, SignedBody};
use keel_notify::{idempotency_key, Delivery, SenderOptions, Senders};
use keel_store::Store;
use tokio::io::AsyncBufReadExt;

const SECRET: &str = "fanout-secret";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kind = args.first().map(String::as_str).unwrap_or("webhook");
    let n: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let workers: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1);

    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> =
        Arc::new(keel_store::sqlite::SqliteStore::open_in_dir(dir.path()).await?);

    // The peer, and a counter of what it has received.
    let received = Arc::new(AtomicUsize::new(0));
    let mut _sink = None;
    let (target_of, email): (Box<dyn Fn(usize) -> String>, Option<EmailSender>) = match kind {
        "webhook" => {
            let addr = start_receiver(received.clone()).await?;
            (Box::new(move |i| format!("http://{addr}/hook/{i}")), None)
        }
        "email" => {
            let (child, port, maildir) = start_smtp_sink().await?;
            _sink = Some((child, maildir.clone()));
            let counter = received.clone();
            // The sink writes N.json per message; count them.
            tokio::spawn(async move {
                loop {
                    let c = std::fs::read_dir(maildir.path())
                        .map(|d| {
                            d.filter_map(Result::ok)
                                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                                .count()
                        })
                        .unwrap_or(0);
                    counter.store(c, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            });
            let sender = EmailSender::new(&SmtpSettings {
                port: Some(port),
                tls: SmtpTls::None,
                pool_size: 8,
                ..SmtpSettings::new("127.0.0.1", "Acme Status <status@acme.example>")
            })?;
            (
                Box::new(|i| format!("subscriber{i}@example.com")),
                Some(sender),
            )
        }
        other => bail!("unknown kind {other:?}: webhook or email"),
    };
    let senders = Arc::new(Senders::new(
        SenderOptions {
            allow_private_targets: true,
            ..SenderOptions::default()
        },
        email,
    )?);

    let delivery = match kind {
        "webhook" => Delivery::Webhook(SignedBody::new(
            &serde_json::json!({
                "meta": {"unsubscribe": null, "generated_at": Utc::now().to_rfc3339()},
                "page": {"id": "keel", "status_indicator": "major", "status_description": "Some systems are affected"},
                "incident": {"id": "12", "name": "Search is unavailable", "status": "investigating", "impact": "major",
                    "incident_updates": [{"id": "12-1", "status": "investigating",
                        "body": "We are investigating a problem affecting Search. About 500 users may be affected. We will post an update within 30 minutes."}]}
            }),
            Some(SECRET),
        )),
        _ => Delivery::Email(EmailMessage {
            content: keel_notify::email::confirmation(
                "en",
                "Acme Status",
                "https://status.acme.example/confirm?token=x",
            ),
            list_unsubscribe: Some("https://status.acme.example/unsubscribe?token=u".into()),
        }),
    };

    // Workers start first and wait: queueing wakes them, as in the server.
    let wake = Arc::new(tokio::sync::Notify::new());
    let stop = tokio_util::sync::CancellationToken::new();
    let mut handles = Vec::new();
    for w in 0..workers {
        handles.push(tokio::spawn(outbox::run(
            store.clone(),
            senders.clone(),
            format!("bench-{w}"),
            WorkerOptions::default(),
            wake.clone(),
            stop.clone(),
        )));
    }

    let start = Instant::now();
    let now = Utc::now();
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let items: Vec<_> = chunk
            .iter()
            .map(|&i| {
                outbox::item(
                    &delivery,
                    idempotency_key("incident:12:update:1", &format!("subscriber:{i}")),
                    target_of(i),
                    None,
                    now,
                )
            })
            .collect();
        store.enqueue(&items).await?;
        wake.notify_waiters();
    }
    let queued = start.elapsed();

    let deadline = Instant::now() + Duration::from_secs(600);
    while received.load(Ordering::SeqCst) < n {
        if Instant::now() > deadline {
            bail!(
                "only {} of {n} delivered after 10 minutes",
                received.load(Ordering::SeqCst)
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let last = start.elapsed();
    // Let the workers record the last results, then stop them.
    loop {
        let c = store.outbox_counts().await?;
        if c.sent as usize >= n || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    for h in handles {
        h.await.context("worker")?;
    }
    let counts = store.outbox_counts().await?;
    println!(
        "{kind} fan-out: {n} recipients, {workers} worker(s): queued in {:.2} s; last delivered {:.2} s after queueing began ({:.0}/s); outbox sent={} dead={} pending={}",
        queued.as_secs_f64(),
        last.as_secs_f64(),
        n as f64 / last.as_secs_f64(),
        counts.sent,
        counts.dead,
        counts.pending
    );
    Ok(())
}

async fn start_receiver(received: Arc<AtomicUsize>) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().fallback(
        move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let received = received.clone();
            async move {
                let ok = headers
                    .get(webhook::SIGNATURE_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|s| webhook::verify(SECRET.as_bytes(), &body, s));
                if ok {
                    received.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::NO_CONTENT
                } else {
                    axum::http::StatusCode::UNAUTHORIZED
                }
            }
        },
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(addr)
}

async fn start_smtp_sink() -> anyhow::Result<(tokio::process::Child, u16, Arc<tempfile::TempDir>)> {
    let maildir = Arc::new(tempfile::tempdir()?);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/smtp-sink");
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .arg(maildir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting scripts/smtp-sink")?;
    let mut line = String::new();
    tokio::io::BufReader::new(child.stdout.take().context("stdout")?)
        .read_line(&mut line)
        .await?;
    let port = line
        .trim()
        .parse()
        .with_context(|| format!("smtp-sink said {line:?} (is aiosmtpd installed?)"))?;
    Ok((child, port, maildir))
}
