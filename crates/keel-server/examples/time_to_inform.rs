//! Time to inform, end to end: from a target starting to fail to the first subscriber webhook
//! received, through the real `keel serve` binary.
//!
//!     cargo build --release -p keel
//!     cargo run --release -p keel-server --example time_to_inform -- \
//!         [--keel target/release/keel] [--runs 5] [--interval 1s] [--confirmations 2] \
//!         [--timeout 1s] [--mode status|hang]
//!
//! Each run starts, on 127.0.0.1: a target answering 200; a webhook receiver; and a fresh
//! `keel serve` (its own SQLite data directory) with one public component watched by one http
//! monitor with the given interval, confirmations and timeout, `publish_after = "0s"` and
//! `allow_private_targets = true`. It subscribes the receiver through the public
//! `POST /api/v1/subscribers`, waits until the page shows the component operational, waits a
//! random fraction of the interval (so the failure lands anywhere in the check cycle), then
//! makes the target fail at T0 — with 503 (`--mode status`) or by never answering within the
//! timeout (`--mode hang`) — and measures, against the same clock:
//!
//! - T0 → the incident opened (the `opened` event on its timeline),
//! - T0 → `/api/v2/summary.json` showing the incident (polled every 10 ms),
//! - T0 → the first customer update published (`update_published` on the timeline),
//! - T0 → the first webhook received by the subscriber.
//!
//! The bar (docs/benchmarks.md, "Targets"): the incident within
//! `interval × confirmations + timeout + 1 s`, the page within 1 s of that, the webhook within
//! 1 s of publication. Prints one Markdown table row per run, then the medians and the bar. Every wait has a hang guard; nothing leaves loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
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
use support::{duration, ms, secs, serve};

mod support;

const ADMIN_TOKEN: &str = "time-to-inform-admin-token-0123456789";

struct Args {
    keel: PathBuf,
    runs: usize,
    interval: Duration,
    confirmations: u32,
    timeout: Duration,
    hang: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        keel: PathBuf::from("target/release/keel"),
        runs: 5,
        interval: Duration::from_secs(1),
        confirmations: 2,
        timeout: Duration::from_secs(1),
        hang: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--keel" => a.keel = PathBuf::from(value()?),
            "--runs" => a.runs = value()?.parse().context("--runs")?,
            "--interval" => a.interval = duration(&value()?)?,
            "--confirmations" => a.confirmations = value()?.parse().context("--confirmations")?,
            "--timeout" => a.timeout = duration(&value()?)?,
            "--mode" => {
                a.hang = match value()?.as_str() {
                    "status" => false,
                    "hang" => true,
                    other => bail!("--mode {other:?}: status or hang"),
                }
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    if a.runs == 0 || a.confirmations == 0 {
        bail!("--runs and --confirmations must be at least 1");
    }
    Ok(a)
}

/// The receiver's state: when the first webhook came, and who to wake.
type Arrival = (Arc<Mutex<Option<Instant>>>, Arc<tokio::sync::Notify>);

/// One run's figures, each measured from T0.
struct Run {
    opened: Duration,
    page: Duration,
    published: Duration,
    webhook: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if !args.keel.exists() {
        bail!(
            "{} not found: build it with `cargo build --release -p keel` or pass --keel",
            args.keel.display()
        );
    }
    let bar_incident = args.interval * args.confirmations + args.timeout + Duration::from_secs(1);
    let bar_total = bar_incident + Duration::from_secs(1);
    println!(
        "interval {}, confirmations {}, timeout {}, publish_after 0s, failure by {}",
        secs(args.interval),
        args.confirmations,
        secs(args.timeout),
        if args.hang {
            "no answer (hang)"
        } else {
            "HTTP 503"
        }
    );
    println!();
    println!("| run | T0 → incident opened | T0 → summary.json shows it | T0 → update published | T0 → first webhook received | published → webhook |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut runs = Vec::new();
    for n in 1..=args.runs {
        let r = tokio::time::timeout(Duration::from_secs(120), one_run(&args))
            .await
            .context("a run took over 120 s")??;
        println!(
            "| {n} | {} | {} | {} | **{}** | {} |",
            secs(r.opened),
            secs(r.page),
            secs(r.published),
            secs(r.webhook),
            secs(r.webhook.saturating_sub(r.published)),
        );
        runs.push(r);
    }
    let med = |f: fn(&Run) -> Duration| {
        let mut v: Vec<Duration> = runs.iter().map(f).collect();
        v.sort();
        v[v.len() / 2]
    };
    println!(
        "| median | {} | {} | {} | **{}** | {} |",
        secs(med(|r| r.opened)),
        secs(med(|r| r.page)),
        secs(med(|r| r.published)),
        secs(med(|r| r.webhook)),
        secs(med(|r| r.webhook.saturating_sub(r.published))),
    );
    let worst = runs.iter().map(|r| r.webhook).max().unwrap_or_default();
    let worst_opened = runs.iter().map(|r| r.opened).max().unwrap_or_default();
    println!();
    println!(
        "Bar: incident within interval × confirmations + timeout + 1 s = {}; first webhook within {} of T0. \
         Worst run: incident {} ({}), webhook {} ({}).",
        secs(bar_incident),
        secs(bar_total),
        secs(worst_opened),
        if worst_opened <= bar_incident { "within" } else { "OVER" },
        secs(worst),
        if worst <= bar_total { "within" } else { "OVER" },
    );
    Ok(())
}

async fn one_run(args: &Args) -> anyhow::Result<Run> {
    let dir = tempfile::tempdir()?;

    // The target: 200 until told to fail.
    let failing = Arc::new(AtomicBool::new(false));
    let hang = args.hang;
    let target = serve(
        Router::new()
            .route(
                "/",
                get(move |State(f): State<Arc<AtomicBool>>| async move {
                    if !f.load(Ordering::SeqCst) {
                        return StatusCode::OK;
                    }
                    if hang {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                    }
                    StatusCode::SERVICE_UNAVAILABLE
                }),
            )
            .with_state(failing.clone()),
    )
    .await?;

    // The subscriber: notes when the first webhook arrives.
    let first: Arc<Mutex<Option<Instant>>> = Arc::default();
    let arrived = Arc::new(tokio::sync::Notify::new());
    let receiver = serve(
        Router::new()
            .route(
                "/hook",
                any(|State((first, arrived)): State<Arrival>| async move {
                    let mut f = first.lock().unwrap_or_else(|e| e.into_inner());
                    if f.is_none() {
                        *f = Some(Instant::now());
                        arrived.notify_one();
                    }
                    StatusCode::OK
                }),
            )
            .with_state((first.clone(), arrived.clone())),
    )
    .await?;

    // Keel, on a port of its own.
    let port = support::free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let config = format!(
        r#"[server]
listen = "127.0.0.1:{port}"
data_dir = "{data}"

[page]
title = "Time to inform"

[[component]]
id = "web"
name = "Website"
users = 100

[[monitor]]
id = "web-home"
component = "web"
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
"#,
        data = dir.path().join("data").display(),
        interval = ms(args.interval),
        timeout = ms(args.timeout),
        confirmations = args.confirmations,
    );
    let keel = support::spawn_keel(&args.keel, dir.path(), &config, ADMIN_TOKEN)?;
    let result = measure(args, &base, receiver, &failing, &first, &arrived).await;
    support::stop_keel(keel, dir.path(), result).await
}

async fn measure(
    args: &Args,
    base: &str,
    receiver: SocketAddr,
    failing: &AtomicBool,
    first: &Mutex<Option<Instant>>,
    arrived: &tokio::sync::Notify,
) -> anyhow::Result<Run> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    // Up, the monitor has seen the target healthy, subscribed; then T0.
    let (t0_wall, t0) =
        support::subscribe_then_fail(&http, base, receiver, args.interval, failing).await?;

    // The page's JSON, polled until it carries the incident.
    let poll = {
        let http = http.clone();
        let url = format!("{base}/api/v2/summary.json");
        tokio::spawn(async move {
            loop {
                if let Ok(r) = http.get(&url).send().await {
                    if let Ok(s) = r.json::<Value>().await {
                        if s["incidents"].as_array().is_some_and(|a| !a.is_empty()) {
                            return t0.elapsed();
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };

    tokio::time::timeout(Duration::from_secs(60), arrived.notified())
        .await
        .context("no webhook within 60 s of the failure")?;
    let webhook = first
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .context("notified without a time")?
        .duration_since(t0);
    let page = tokio::time::timeout(Duration::from_secs(30), poll)
        .await
        .context("summary.json never showed the incident")??;

    // When the incident opened and the update was published, from its timeline.
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
    let inc: Value = http
        .get(format!("{base}/api/v1/incidents/{id}"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await?
        .json()
        .await?;
    let at = |kind: &str| -> anyhow::Result<Duration> {
        let ev = inc["timeline"]
            .as_array()
            .and_then(|t| t.iter().find(|e| e["type"] == kind))
            .with_context(|| format!("no {kind} event on the timeline"))?;
        let t: DateTime<Utc> = ev["at"].as_str().context("event without a time")?.parse()?;
        Ok((t - t0_wall).to_std().unwrap_or_default())
    };
    Ok(Run {
        opened: at("opened")?,
        page,
        published: at("update_published")?,
        webhook,
    })
}
