//! Time to page, end to end: from an incident opening to the first page received by the
//! person on call, through the real `keel serve` binary, beside the first customer update
//! (subscriber webhook) from the same incident.
//!
//!     cargo build --release -p keel
//!     cargo run --release -p keel-server --example time_to_page -- \
//!         [--keel target/release/keel] [--smtp-sink scripts/smtp-sink] [--runs 5] \
//!         [--interval 1s] [--confirmations 2] [--timeout 1s]
//!
//! Each run starts, on 127.0.0.1: a target answering 200; one receiver for the person's
//! webhook contact and the subscriber's webhook; the real SMTP sink (`scripts/smtp-sink`,
//! aiosmtpd) for the person's email contact; and a fresh `keel serve` (its own SQLite) with
//! one component watched by one http monitor, one person (Ann: a webhook and an email
//! contact), one schedule with her on call, one escalation level `after = "0s"` paging that
//! schedule, `publish_after = "0s"`, and a webhook subscriber added through the public
//! `POST /api/v1/subscribers`. At T0 (a random point in the check cycle) the target starts
//! answering 503. Measured against the same clock:
//!
//! - T0 → the incident opened (`opened` on its timeline),
//! - opened → `paged` on the timeline (the engine stamps a page with the time its level was
//!   due, so with `after = "0s"` this is the time the level fell due, not when it was sent),
//! - opened → the first webhook page received,
//! - opened → the first email page received (the sink has written it to disk),
//! - opened → the first subscriber webhook received (the customer path, the reference).
//!
//! Target: the first page received within 1 s of opening. Prints one Markdown table
//! row per run, then the median and the worst. Every wait has a hang guard; nothing leaves
//! loopback; every child is stopped when its run ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{any, get};
use axum::Router;
use chrono::{DateTime, Utc};
use serde_json::Value;
use support::{duration, median, millis, ms, secs, serve};
use tokio::io::AsyncBufReadExt;

mod support;

const ADMIN_TOKEN: &str = "time-to-page-admin-token-0123456789ab";

struct Args {
    keel: PathBuf,
    smtp_sink: PathBuf,
    runs: usize,
    interval: Duration,
    confirmations: u32,
    timeout: Duration,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        keel: PathBuf::from("target/release/keel"),
        smtp_sink: PathBuf::from("scripts/smtp-sink"),
        runs: 5,
        interval: Duration::from_secs(1),
        confirmations: 2,
        timeout: Duration::from_secs(1),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--keel" => a.keel = PathBuf::from(value()?),
            "--smtp-sink" => a.smtp_sink = PathBuf::from(value()?),
            "--runs" => a.runs = value()?.parse().context("--runs")?,
            "--interval" => a.interval = duration(&value()?)?,
            "--confirmations" => a.confirmations = value()?.parse().context("--confirmations")?,
            "--timeout" => a.timeout = duration(&value()?)?,
            other => bail!("unknown argument {other:?}"),
        }
    }
    if a.runs == 0 || a.confirmations == 0 {
        bail!("--runs and --confirmations must be at least 1");
    }
    Ok(a)
}

/// When the first request came to each receiver path.
#[derive(Default)]
struct Arrivals {
    page: Option<Instant>,
    subscriber: Option<Instant>,
}

/// One run's figures: `opened` from T0, the rest from the incident's opening.
struct Run {
    opened: Duration,
    paged_event: Duration,
    webhook_page: Duration,
    email_page: Duration,
    subscriber: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    for (path, hint) in [
        (
            &args.keel,
            "build it with `cargo build --release -p keel` or pass --keel",
        ),
        (
            &args.smtp_sink,
            "run from the repository root or pass --smtp-sink",
        ),
    ] {
        if !path.exists() {
            bail!("{} not found: {hint}", path.display());
        }
    }
    println!(
        "interval {}, confirmations {}, timeout {}, failure by HTTP 503; one escalation level \
         after = \"0s\" (webhook + email contact), publish_after = \"0s\" (subscriber webhook)",
        secs(args.interval),
        args.confirmations,
        secs(args.timeout),
    );
    println!();
    println!("| run | T0 → incident opened | opened → `paged` on the timeline | opened → first webhook page received | opened → first email page received | opened → first subscriber webhook (reference) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut runs = Vec::new();
    for n in 1..=args.runs {
        let r = tokio::time::timeout(Duration::from_secs(120), one_run(&args))
            .await
            .context("a run took over 120 s")??;
        println!(
            "| {n} | {} | {} | **{}** | **{}** | {} |",
            secs(r.opened),
            millis(r.paged_event),
            millis(r.webhook_page),
            millis(r.email_page),
            millis(r.subscriber),
        );
        runs.push(r);
    }
    let col = |f: fn(&Run) -> Duration| runs.iter().map(f).collect::<Vec<_>>();
    let worst = |f: fn(&Run) -> Duration| runs.iter().map(f).max().unwrap_or_default();
    println!(
        "| median | {} | {} | **{}** | **{}** | {} |",
        secs(median(col(|r| r.opened))),
        millis(median(col(|r| r.paged_event))),
        millis(median(col(|r| r.webhook_page))),
        millis(median(col(|r| r.email_page))),
        millis(median(col(|r| r.subscriber))),
    );
    println!(
        "| worst | {} | {} | **{}** | **{}** | {} |",
        secs(worst(|r| r.opened)),
        millis(worst(|r| r.paged_event)),
        millis(worst(|r| r.webhook_page)),
        millis(worst(|r| r.email_page)),
        millis(worst(|r| r.subscriber)),
    );
    let first_page = |r: &Run| r.webhook_page.min(r.email_page);
    let worst_first = runs.iter().map(first_page).max().unwrap_or_default();
    let worst_any = worst(|r| r.webhook_page.max(r.email_page));
    let bar = Duration::from_secs(1);
    println!();
    println!(
        "Target: the first page received within 1 s of opening. Worst run: first page {} ({}); \
         both pages (webhook and email) {} ({}).",
        millis(worst_first),
        if worst_first <= bar { "within" } else { "OVER" },
        millis(worst_any),
        if worst_any <= bar { "within" } else { "OVER" },
    );
    Ok(())
}

/// Starts `scripts/smtp-sink DIR` and reads the port it prints. It stops when its stdin
/// closes, that is when the returned child is dropped (killed) or this process ends.
async fn smtp_sink(script: &Path, dir: &Path) -> anyhow::Result<(tokio::process::Child, u16)> {
    let mut child = tokio::process::Command::new("python3")
        .arg(script)
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start scripts/smtp-sink (python3 with aiosmtpd)")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .context("the SMTP sink did not print its port within 10 s")??;
    let port = line
        .trim()
        .parse()
        .with_context(|| format!("the SMTP sink printed {line:?}, not a port"))?;
    Ok((child, port))
}

async fn one_run(args: &Args) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;

    // The target: 200 until told to fail.
    let failing = Arc::new(AtomicBool::new(false));
    let target = serve(
        Router::new()
            .route(
                "/",
                get(|State(f): State<Arc<AtomicBool>>| async move {
                    if f.load(Ordering::SeqCst) {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::OK
                    }
                }),
            )
            .with_state(failing.clone()),
    )
    .await?;

    // Ann's webhook contact and the subscriber: note when each first hears from Keel.
    let arrivals: Arc<Mutex<Arrivals>> = Arc::default();
    let receiver = serve(
        Router::new()
            .route(
                "/page/ann",
                any(|State(a): State<Arc<Mutex<Arrivals>>>| async move {
                    let mut a = a.lock().unwrap_or_else(|e| e.into_inner());
                    a.page.get_or_insert_with(Instant::now);
                    StatusCode::OK
                }),
            )
            .route(
                "/hook",
                any(|State(a): State<Arc<Mutex<Arrivals>>>| async move {
                    let mut a = a.lock().unwrap_or_else(|e| e.into_inner());
                    a.subscriber.get_or_insert_with(Instant::now);
                    StatusCode::OK
                }),
            )
            .with_state(arrivals.clone()),
    )
    .await?;

    let mail = dir.path().join("mail");
    let (_sink, smtp_port) = smtp_sink(&args.smtp_sink, &mail).await?;

    let port = support::free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let config = format!(
        r#"[server]
listen = "127.0.0.1:{port}"
data_dir = "{data}"

[page]
title = "Time to page"

[[component]]
id = "shop"
name = "Shop"
users = 2000

[[monitor]]
id = "shop-home"
component = "shop"
kind = "http"
url = "http://{target}/"
interval = "{interval}"
timeout = "{timeout}"
confirmations = {confirmations}

[incidents]
publish_after = "0s"

[notify]
allow_private_targets = true
timeout = "5s"

[notify.smtp]
host = "127.0.0.1"
port = {smtp_port}
from = "Keel <keel@example.com>"
tls = "none"

[[person]]
id = "ann"
name = "Ann Sato"
timezone = "UTC"
contacts = [ {{ kind = "webhook", url = "http://{receiver}/page/ann" }},
             {{ kind = "email", address = "ann@example.com" }} ]

[[schedule]]
id = "primary"
people = ["ann"]
rotation = "1w"
start = "2026-01-05T09:00:00Z"

[[escalation]]
id = "default"
min_severity = "SEV4"
levels = [ {{ after = "0s", notify = ["schedule:primary"] }} ]
"#,
        data = dir.path().join("data").display(),
        interval = ms(args.interval),
        timeout = ms(args.timeout),
        confirmations = args.confirmations,
    );
    let keel = support::spawn_keel(&args.keel, dir.path(), &config, ADMIN_TOKEN)?;
    let result = measure(args, &base, receiver, &failing, &arrivals, &mail).await;
    support::stop_keel(keel, dir.path(), result).await
}

/// Whether the sink has stored a whole message (it renames the .json into place last).
fn has_mail(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name.ends_with(".json")
        })
    })
}

async fn measure(
    args: &Args,
    base: &str,
    receiver: std::net::SocketAddr,
    failing: &AtomicBool,
    arrivals: &Mutex<Arrivals>,
    mail: &Path,
) -> anyhow::Result<Run> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let (t0_wall, t0) =
        support::subscribe_then_fail(&http, base, receiver, args.interval, failing).await?;

    // The email is seen when the sink's file appears: polled every 2 ms, so it is late by
    // at most that.
    let mut email: Option<Instant> = None;
    let limit = Duration::from_secs(60);
    loop {
        if email.is_none() && has_mail(mail) {
            email = Some(Instant::now());
        }
        let (page, subscriber) = {
            let a = arrivals.lock().unwrap_or_else(|e| e.into_inner());
            (a.page, a.subscriber)
        };
        if let (Some(page), Some(subscriber), Some(email)) = (page, subscriber, email) {
            let inc = first_incident(&http, base).await?;
            let at = |kind: &str| -> anyhow::Result<Duration> {
                let ev = inc["timeline"]
                    .as_array()
                    .and_then(|t| t.iter().find(|e| e["type"] == kind))
                    .with_context(|| format!("no {kind} event on the timeline"))?;
                let t: DateTime<Utc> =
                    ev["at"].as_str().context("event without a time")?.parse()?;
                Ok((t - t0_wall).to_std().unwrap_or_default())
            };
            let opened = at("opened")?;
            let since_open = |i: Instant| i.duration_since(t0).saturating_sub(opened);
            return Ok(Run {
                opened,
                paged_event: at("paged")?.saturating_sub(opened),
                webhook_page: since_open(page),
                email_page: since_open(email),
                subscriber: since_open(subscriber),
            });
        }
        if t0.elapsed() > limit {
            bail!(
                "within 60 s of the failure: webhook page {}, email page {}, subscriber webhook {}",
                if page.is_some() {
                    "received"
                } else {
                    "NOT received"
                },
                if email.is_some() {
                    "received"
                } else {
                    "NOT received"
                },
                if subscriber.is_some() {
                    "received"
                } else {
                    "NOT received"
                },
            );
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The (only) incident, with its timeline.
async fn first_incident(http: &reqwest::Client, base: &str) -> anyhow::Result<Value> {
    let list: Value = http
        .get(format!("{base}/api/v1/incidents"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    let id = list["incidents"][0]["id"]
        .as_i64()
        .or_else(|| list[0]["id"].as_i64())
        .with_context(|| format!("no incident in {list}"))?;
    Ok(http
        .get(format!("{base}/api/v1/incidents/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .json()
        .await?)
}
