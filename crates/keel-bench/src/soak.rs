//! The `soak` subcommand: Keel under steady, mixed load for a long time, watched for leaks.
//!
//! It starts the loopback target with some monitors *flapping* (their path answers 200, then
//! 503, then 200 … each for `--flap-period`), serves N http monitors from a release
//! `keel serve` (SQLite in its own temporary data directory), and meanwhile drives intake bursts
//! (`POST /api/v1/intake/generic`, one alert per request, firing for the first bursts of each
//! cycle and resolved for the rest, so the incident they open closes between cycles) and
//! status-page load (`GET /` and `/api/v2/summary.json` at a bounded rate). Every
//! `--sample-every` it reads Keel's resident memory and thread count (`/proc/PID/status`), its
//! open file descriptors (the entries of `/proc/PID/fd`) and its `/metrics`, which include
//! tokio's count of alive tasks.
//!
//! The verdict compares the last sample with the first one at or after `--baseline` (10 min by
//! default): RSS, open fds and alive tasks must have grown less than `--max-growth` percent.
//! Everything is
//! bounded — the run length, the request rates, the requests in flight — and every child is
//! killed if the run fails or is interrupted.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::process::Command;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::child::{spawn_target, wait_for_line, Proc};
use crate::config::{self, BenchConfig};
use crate::metrics;
use crate::procfs;
use crate::run::{parse_serving_line, watch};

/// How long a child gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Page requests in flight at most; a tick finding them all busy is skipped and counted.
const PAGE_IN_FLIGHT: usize = 16;
/// Intake requests of one burst in flight at most.
const INTAKE_IN_FLIGHT: usize = 16;
/// Components the flapping monitors are spread over, so several incidents open and resolve.
const FLAP_COMPONENTS: u64 = 10;
/// Time limit of every request the harness makes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the load keeps an idle connection: well under Keel's default
/// `header_read_timeout` (30 s), after which Keel closes it.
const POOL_IDLE: Duration = Duration::from_secs(10);

/// The `soak` subcommand's options.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    #[arg(long, default_value_t = 10_000)]
    pub monitors: u64,
    #[arg(long, value_parser = crate::duration, default_value = "10s")]
    pub interval: Duration,
    #[arg(long, value_parser = crate::duration, default_value = "5s")]
    pub timeout: Duration,
    /// The whole run, from Keel's start.
    #[arg(long, value_parser = crate::duration, default_value = "1h")]
    pub duration: Duration,
    /// Growth is measured from the first sample at or after this point.
    #[arg(long, value_parser = crate::duration, default_value = "10m")]
    pub baseline: Duration,
    /// The level at the baseline and at the end is the median of the samples over this long
    /// (from the baseline on, and up to the end): single samples swing with the intake bursts
    /// and the allocator's purging, so one sample against another measures the phase of a
    /// burst as much as growth. `0s`: single samples.
    #[arg(long, value_parser = crate::duration, default_value = "5m")]
    pub window: Duration,
    #[arg(long, value_parser = crate::duration, default_value = "30s")]
    pub sample_every: Duration,
    /// Every Nth monitor flaps (50: 2% of them).
    #[arg(long, default_value_t = 50)]
    pub flap_every: u64,
    /// How long a flapping monitor stays healthy, then failing. Longer than Keel's 5-minute
    /// `stability_window`, so their incidents resolve before they fail again (shorter: they
    /// relapse from monitoring to investigating instead).
    #[arg(long, value_parser = crate::duration, default_value = "6m")]
    pub flap_period: Duration,
    /// Alerts per intake burst, one request each.
    #[arg(long, default_value_t = 200)]
    pub intake_burst: u32,
    #[arg(long, value_parser = crate::duration, default_value = "1m")]
    pub intake_every: Duration,
    /// Bursts per intake cycle: the alerts fire in the first `--intake-firing` bursts and are
    /// resolved in the rest. With the defaults (10 one-minute bursts, 2 firing) they stay
    /// resolved 8 minutes, longer than Keel's 5-minute stability window, so the incident on
    /// `bench` resolves before the next cycle opens a new one, as with a real alert source.
    #[arg(long, default_value_t = 10)]
    pub intake_cycle: u64,
    #[arg(long, default_value_t = 2)]
    pub intake_firing: u64,
    /// Status-page requests a second, alternately `/` and `/api/v2/summary.json`.
    #[arg(long, default_value_t = 50.0)]
    pub page_rate: f64,
    /// Largest growth of RSS and open fds, in percent, that passes.
    #[arg(long, default_value_t = 5.0)]
    pub max_growth: f64,
    #[arg(long, default_value = "target/release/keel")]
    pub keel: PathBuf,
    #[arg(long, value_parser = crate::duration, default_value = "2m")]
    pub startup_limit: Duration,
    #[arg(long, default_value_t = 512)]
    pub max_concurrency: u32,
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One reading of Keel, `t_secs` after it logged that it was serving.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub t_secs: f64,
    pub rss_kib: u64,
    pub fds: u64,
    pub threads: u64,
    /// `keel_checks_total`.
    pub checks: f64,
    /// `keel_open_incidents`, all severities.
    pub open_incidents: f64,
    /// `keel_tokio_alive_tasks`.
    pub tasks: f64,
    pub pages_ok: u64,
    pub pages_failed: u64,
    pub intake_ok: u64,
    pub intake_failed: u64,
}

/// The figures of one soak run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakResult {
    pub monitors: u64,
    pub interval_secs: f64,
    pub duration_secs: f64,
    pub baseline_secs: f64,
    /// See [`SoakArgs::window`].
    #[serde(default)]
    pub window_secs: f64,
    pub flapping: u64,
    pub flap_period_secs: f64,
    pub intake_burst: u32,
    pub intake_every_secs: f64,
    pub intake_cycle: u64,
    pub intake_firing: u64,
    pub page_rate: f64,
    pub max_growth_pct: f64,
    /// Page ticks skipped because `PAGE_IN_FLIGHT` requests were still waiting.
    pub pages_skipped: u64,
    /// `VmHWM` at the end.
    pub peak_rss_kib: u64,
    pub samples: Vec<Sample>,
}

/// How one figure moved after the baseline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Growth {
    /// The samples `baseline` is the median of: from `baseline_t` to `baseline_to`.
    pub baseline_t: f64,
    pub baseline_to: f64,
    pub baseline: f64,
    /// The samples `end` is the median of: from `end_from` to `end_t`, the last.
    pub end_from: f64,
    pub end_t: f64,
    pub end: f64,
    /// The largest value at or after the baseline.
    pub max: f64,
    /// `end` against `baseline`, in percent.
    pub pct: f64,
    /// `max` against `baseline`, in percent.
    pub max_pct: f64,
}

fn pct(from: f64, to: f64) -> f64 {
    if from == 0.0 {
        if to == 0.0 {
            0.0
        } else {
            f64::INFINITY
        }
    } else {
        (to - from) / from * 100.0
    }
}

/// Growth of a series of `(t_secs, value)` after `baseline_secs`: from the median of the
/// points in the `window_secs` from the first point at or after the baseline, to the median
/// of the points in the last `window_secs` (each window at least one point, and at most half
/// the points after the baseline, so the two never share one). `None` without at least two
/// points from the baseline on. `max` is the largest single point.
pub fn growth(points: &[(f64, f64)], baseline_secs: f64, window_secs: f64) -> Option<Growth> {
    let from = points.iter().position(|&(t, _)| t >= baseline_secs)?;
    let after = &points[from..];
    if after.len() < 2 {
        return None;
    }
    let (baseline_t, end_t) = (after[0].0, after[after.len() - 1].0);
    let half = after.len() / 2;
    let head = after
        .iter()
        .take_while(|&&(t, _)| t < baseline_t + window_secs)
        .count()
        .clamp(1, half);
    let tail = after
        .iter()
        .rev()
        .take_while(|&&(t, _)| t > end_t - window_secs)
        .count()
        .clamp(1, half);
    let (first, last) = (&after[..head], &after[after.len() - tail..]);
    let (baseline, end) = (median(first), median(last));
    let max = after.iter().map(|&(_, v)| v).fold(f64::MIN, f64::max);
    Some(Growth {
        baseline_t,
        baseline_to: first[first.len() - 1].0,
        baseline,
        end_from: last[0].0,
        end_t,
        end,
        max,
        pct: pct(baseline, end),
        max_pct: pct(baseline, max),
    })
}

/// The lower median of the points' values: with an even count, the lower of the middle two,
/// never their mean. A series that alternates between two levels (fds 39 and 71 as intake
/// connections open and close) then reads as one of them in every window, whatever its
/// count, instead of 55 in a window of ten and 39 in one of eleven.
fn median(points: &[(f64, f64)]) -> f64 {
    let mut v: Vec<f64> = points.iter().map(|&(_, v)| v).collect();
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

/// The count after `key:` in `/proc/PID/status` text (`Threads:\t12`).
pub fn parse_status_count(status: &str, key: &str) -> anyhow::Result<u64> {
    let value = status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(':')))
        .ok_or_else(|| anyhow::anyhow!("no {key} line in /proc/PID/status"))?
        .trim();
    value
        .parse()
        .map_err(|_| anyhow::anyhow!("{key} value {value:?} is not a count"))
}

/// Rewrites a config from `config::render` so every `every`-th monitor (`m-0`, `m-{every}`, …)
/// checks `/m/{i}/flap` and belongs to one of `FLAP_COMPONENTS` components `flap-{c}` of its
/// own, declared at the end. Returns the text and the number of flapping monitors.
pub fn flap_config(text: &str, every: u64) -> (String, u64) {
    let mut out = String::with_capacity(text.len() + 4096);
    let mut flapping = 0;
    let mut current: Option<u64> = None;
    for line in text.lines() {
        if let Some(id) = line
            .strip_prefix("id = \"m-")
            .and_then(|r| r.strip_suffix('"'))
        {
            current = id
                .parse::<u64>()
                .ok()
                .filter(|i| every > 0 && i.is_multiple_of(every));
            if current.is_some() {
                flapping += 1;
            }
        } else if line.starts_with("[[") {
            current = None;
        }
        match current {
            Some(i) if line == "component = \"bench\"" => {
                let _ = writeln!(
                    out,
                    "component = \"flap-{}\"",
                    (i / every) % FLAP_COMPONENTS
                );
            }
            Some(_) if line.starts_with("url = ") && line.ends_with('"') => {
                let _ = writeln!(out, "{}/flap\"", &line[..line.len() - 1]);
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    for c in 0..FLAP_COMPONENTS.min(flapping) {
        let _ = write!(
            out,
            "\n[[component]]\nid = \"flap-{c}\"\nname = \"Flapping {c}\"\n"
        );
    }
    (out, flapping)
}

/// Counts of the load the harness drove.
#[derive(Default)]
struct Load {
    pages_ok: AtomicU64,
    pages_failed: AtomicU64,
    pages_skipped: AtomicU64,
    intake_ok: AtomicU64,
    intake_failed: AtomicU64,
}

async fn ok(resp: reqwest::Result<reqwest::Response>) -> bool {
    match resp {
        Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
        _ => false,
    }
}

/// `GET /` and `/api/v2/summary.json` in turn, `rate` a second, at most `PAGE_IN_FLIGHT` at
/// once; runs until dropped.
async fn page_load(client: reqwest::Client, keel_url: String, rate: f64, load: Arc<Load>) {
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let gate = Arc::new(Semaphore::new(PAGE_IN_FLIGHT));
    let mut inflight = JoinSet::new();
    let mut n = 0u64;
    loop {
        tick.tick().await;
        while inflight.try_join_next().is_some() {}
        let Ok(permit) = gate.clone().try_acquire_owned() else {
            load.pages_skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let path = if n.is_multiple_of(2) {
            "/"
        } else {
            "/api/v2/summary.json"
        };
        n += 1;
        let (client, url, load) = (client.clone(), format!("{keel_url}{path}"), load.clone());
        inflight.spawn(async move {
            if ok(client.get(&url).send().await).await {
                load.pages_ok.fetch_add(1, Ordering::Relaxed);
            } else {
                load.pages_failed.fetch_add(1, Ordering::Relaxed);
            }
            drop(permit);
        });
    }
}

/// Whether burst `n` (from 0) fires its alerts rather than resolving them.
pub fn intake_fires(n: u64, cycle: u64, firing: u64) -> bool {
    n % cycle < firing
}

/// The body of one generic-intake alert.
pub fn intake_event(key: u32, firing: bool, burst: u64) -> String {
    serde_json::json!({
        "component": "bench",
        "status": if firing { "down" } else { "resolved" },
        "key": format!("soak-{key}"),
        "summary": format!("soak burst {burst}"),
    })
    .to_string()
}

/// Every `every` from `start` on, `burst` alerts at once (at most `INTAKE_IN_FLIGHT` in
/// flight), firing in the first `firing` bursts of every `cycle` and resolved in the others;
/// runs until dropped.
#[allow(clippy::too_many_arguments)]
async fn intake_load(
    client: reqwest::Client,
    keel_url: String,
    token: String,
    burst: u32,
    (start, every): (Duration, Duration),
    (cycle, firing): (u64, u64),
    load: Arc<Load>,
) {
    let url = format!("{keel_url}/api/v1/intake/generic");
    let gate = Arc::new(Semaphore::new(INTAKE_IN_FLIGHT));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + start, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    for n in 0u64.. {
        tick.tick().await;
        let mut inflight = JoinSet::new();
        for key in 0..burst {
            let Ok(permit) = gate.clone().acquire_owned().await else {
                return;
            };
            let (client, url, token, load) =
                (client.clone(), url.clone(), token.clone(), load.clone());
            let body = intake_event(key, intake_fires(n, cycle, firing), n);
            inflight.spawn(async move {
                let resp = client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                if ok(resp).await {
                    load.intake_ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    load.intake_failed.fetch_add(1, Ordering::Relaxed);
                }
                drop(permit);
            });
        }
        while inflight.join_next().await.is_some() {}
    }
}

fn fd_count(pid: u32) -> anyhow::Result<u64> {
    let dir = format!("/proc/{pid}/fd");
    Ok(std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {dir}"))?
        .count() as u64)
}

async fn sample(
    client: &reqwest::Client,
    keel_url: &str,
    pid: u32,
    t_secs: f64,
    load: &Load,
) -> anyhow::Result<Sample> {
    let url = format!("{keel_url}/metrics");
    let resp = client
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .with_context(|| format!("cannot fetch {url}"))?;
    let text = resp
        .text()
        .await
        .with_context(|| format!("reading {url}"))?;
    let checks = metrics::counter(&text, "keel_checks_total")?;
    let open_incidents = metrics::counter(&text, "keel_open_incidents")?;
    let tasks = metrics::counter(&text, "keel_tokio_alive_tasks")?;
    let status_path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&status_path)
        .with_context(|| format!("cannot read {status_path}"))?;
    Ok(Sample {
        t_secs,
        rss_kib: procfs::rss_kib(pid)?,
        fds: fd_count(pid)?,
        threads: parse_status_count(&status, "Threads")?,
        checks,
        open_incidents,
        tasks,
        pages_ok: load.pages_ok.load(Ordering::Relaxed),
        pages_failed: load.pages_failed.load(Ordering::Relaxed),
        intake_ok: load.intake_ok.load(Ordering::Relaxed),
        intake_failed: load.intake_failed.load(Ordering::Relaxed),
    })
}

fn token() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "keel_soak_{:032x}",
        nanos ^ ((std::process::id() as u128) << 64)
    )
}

/// Runs the soak and returns its figures. Children are killed if this future is dropped.
pub async fn run(a: &SoakArgs) -> anyhow::Result<SoakResult> {
    anyhow::ensure!(a.monitors > 0, "--monitors must be at least 1");
    anyhow::ensure!(!a.interval.is_zero(), "--interval must be longer than zero");
    anyhow::ensure!(
        !a.sample_every.is_zero(),
        "--sample-every must be longer than zero"
    );
    anyhow::ensure!(
        a.duration >= a.baseline + a.sample_every,
        "--duration must leave at least one --sample-every after --baseline"
    );
    anyhow::ensure!(
        a.page_rate > 0.0 && a.page_rate <= 1000.0,
        "--page-rate must be above 0 and at most 1000"
    );
    anyhow::ensure!(
        !a.intake_every.is_zero(),
        "--intake-every must be longer than zero"
    );
    anyhow::ensure!(
        a.intake_firing >= 1 && a.intake_firing < a.intake_cycle,
        "--intake-firing must be at least 1 and less than --intake-cycle"
    );
    anyhow::ensure!(
        !a.flap_period.is_zero(),
        "--flap-period must be longer than zero"
    );
    if !a.keel.is_file() {
        bail!(
            "no keel binary at {}; build it with `cargo build --release -p keel` or pass --keel PATH",
            a.keel.display()
        );
    }
    let exe = std::env::current_exe().context("cannot find the keel-bench executable")?;

    // The target, with its flapping paths.
    let (target, base) = spawn_target(
        &exe,
        &[
            "--flap-period".into(),
            humantime::format_duration(a.flap_period).to_string(),
        ],
    )
    .await?;

    let work = match &a.work_dir {
        Some(d) => tempfile::Builder::new().prefix("keel-soak-").tempdir_in(d),
        None => tempfile::Builder::new().prefix("keel-soak-").tempdir(),
    }
    .context("cannot create a working directory")?;
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let config_path = work.path().join("keel.toml");
    let text = config::render(&BenchConfig {
        listen: "127.0.0.1:0",
        data_dir: &data_dir,
        database_url: None,
        target_base: &base,
        monitors: a.monitors,
        interval: a.interval,
        timeout: a.timeout,
        max_concurrency: a.max_concurrency,
    });
    let (text, flapping) = flap_config(&text, a.flap_every);
    write_file(&config_path, &text)?;

    eprintln!(
        "keel-soak: {} http monitors every {} ({flapping} flapping every {}) against {base}; \
         starting {}",
        a.monitors,
        humantime::format_duration(a.interval),
        humantime::format_duration(a.flap_period),
        a.keel.display()
    );
    let token = token();
    let mut cmd = Command::new(&a.keel);
    cmd.arg("serve")
        .arg("--config")
        .arg(&config_path)
        .env("NO_COLOR", "1")
        .env("KEEL_ADMIN_TOKEN", &token);
    let (mut keel, _, mut keel_err) = Proc::spawn("keel", cmd)?;
    let keel_url = wait_for_line(&mut keel_err, a.startup_limit, parse_serving_line).await;
    drop(keel_err);
    let Some(keel_url) = keel_url else {
        bail!(
            "keel did not log 'serving on http://…' within {}\n{}",
            humantime::format_duration(a.startup_limit),
            keel.tail()
        );
    };
    let started = Instant::now();
    // Keel closes a connection that sends no request for `header_read_timeout` (30 s), and the
    // intake's connections idle a minute between bursts. A request sent on a pooled connection
    // as Keel closes it fails ("connection closed before message completed": one ended a run
    // after 28 minutes), so the load lets idle connections go well before Keel does, and the
    // samples, every 30 s, open a connection of their own each time.
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(POOL_IDLE)
        .build()?;
    let sampler = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()?;

    // The load, aborted when `drivers` is dropped (at the end, or if the run fails).
    let load = Arc::new(Load::default());
    let mut drivers = JoinSet::new();
    drivers.spawn(page_load(
        client.clone(),
        keel_url.clone(),
        a.page_rate,
        load.clone(),
    ));
    drivers.spawn(intake_load(
        client.clone(),
        keel_url.clone(),
        token,
        a.intake_burst,
        // Half a sample period after the samples, so a sample reads Keel between bursts: the
        // connections and store handles of a burst's requests in flight are bounded by
        // `INTAKE_IN_FLIGHT`, not growth, and would otherwise land in a sample or not by chance
        // (both periods are whole multiples of each other by default).
        (a.sample_every / 2, a.intake_every),
        (a.intake_cycle, a.intake_firing),
        load.clone(),
    ));
    eprintln!(
        "keel-soak: keel serving on {keel_url}; {} page requests/s, {} alerts every {}, \
         sampling every {} for {}",
        a.page_rate,
        a.intake_burst,
        humantime::format_duration(a.intake_every),
        humantime::format_duration(a.sample_every),
        humantime::format_duration(a.duration)
    );
    eprintln!("keel-soak: {}", Sample::CSV_HEADER);

    let mut samples = Vec::new();
    let mut next = started;
    loop {
        let t = started.elapsed();
        let s = sample(&sampler, &keel_url, keel.pid(), t.as_secs_f64(), &load).await?;
        eprintln!("keel-soak: {}", s.csv());
        samples.push(s);
        if t >= a.duration {
            break;
        }
        next += a.sample_every;
        let until_end = a.duration.saturating_sub(started.elapsed());
        watch(
            &mut keel,
            next.saturating_duration_since(Instant::now())
                .min(until_end),
        )
        .await?;
    }
    drivers.abort_all();
    while drivers.join_next().await.is_some() {}
    let peak_rss_kib = procfs::peak_rss_kib(keel.pid())?;
    keel.stop(STOP_GRACE).await;
    target.stop(STOP_GRACE).await;

    let result = SoakResult {
        monitors: a.monitors,
        interval_secs: a.interval.as_secs_f64(),
        duration_secs: a.duration.as_secs_f64(),
        baseline_secs: a.baseline.as_secs_f64(),
        window_secs: a.window.as_secs_f64(),
        flapping,
        flap_period_secs: a.flap_period.as_secs_f64(),
        intake_burst: a.intake_burst,
        intake_every_secs: a.intake_every.as_secs_f64(),
        intake_cycle: a.intake_cycle,
        intake_firing: a.intake_firing,
        page_rate: a.page_rate,
        max_growth_pct: a.max_growth,
        pages_skipped: load.pages_skipped.load(Ordering::Relaxed),
        peak_rss_kib,
        samples,
    };
    if let Some(path) = &a.json {
        write_file(path, &serde_json::to_string_pretty(&result)?)?;
    }
    Ok(result)
}

fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

impl Sample {
    const CSV_HEADER: &'static str = "t_s,rss_kib,fds,threads,tasks,checks,open_incidents,\
                                      pages_ok,pages_failed,intake_ok,intake_failed";

    fn csv(&self) -> String {
        format!(
            "{:.0},{},{},{},{:.0},{:.0},{:.0},{},{},{},{}",
            self.t_secs,
            self.rss_kib,
            self.fds,
            self.threads,
            self.tasks,
            self.checks,
            self.open_incidents,
            self.pages_ok,
            self.pages_failed,
            self.intake_ok,
            self.intake_failed
        )
    }
}

/// The growth of RSS, fds, threads and tasks; and whether RSS, fds and tasks stayed under
/// the limit.
pub struct Verdict {
    pub rss: Option<Growth>,
    pub fds: Option<Growth>,
    pub threads: Option<Growth>,
    pub tasks: Option<Growth>,
    pub pass: bool,
}

pub fn verdict(r: &SoakResult) -> Verdict {
    let series = |f: fn(&Sample) -> f64| -> Vec<(f64, f64)> {
        r.samples.iter().map(|s| (s.t_secs, f(s))).collect()
    };
    let grown = |f: fn(&Sample) -> f64| growth(&series(f), r.baseline_secs, r.window_secs);
    let rss = grown(|s| s.rss_kib as f64);
    let fds = grown(|s| s.fds as f64);
    let threads = grown(|s| s.threads as f64);
    let tasks = grown(|s| s.tasks);
    let under = |g: Option<Growth>| g.is_some_and(|g| g.pct < r.max_growth_pct);
    Verdict {
        pass: under(rss) && under(fds) && under(tasks),
        rss,
        fds,
        threads,
        tasks,
    }
}

fn minutes(secs: f64) -> String {
    format!("{:.1} min", secs / 60.0)
}

/// When a level was read: one sample's time, or the span a median covers.
fn span(from: f64, to: f64) -> String {
    if from == to {
        minutes(from)
    } else {
        format!("median of {:.1}–{}", from / 60.0, minutes(to))
    }
}

/// The Markdown for a soak run: the verdict, the growth table, the load, every sample.
pub fn render(r: &SoakResult) -> String {
    let v = verdict(r);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} http monitors every {}s ({} of them flapping: healthy {}s, failing {}s, over {} \
         components), {} intake alerts every {}s (one request each; firing in {} bursts, then \
         resolved in {}, and again), {} status-page requests/s; run of {}, baseline at {}; the \
         levels at the baseline and the end are medians of the samples over {} (single samples \
         swing with the intake bursts and the allocator's purging).\n",
        r.monitors,
        r.interval_secs,
        r.flapping,
        r.flap_period_secs,
        r.flap_period_secs,
        FLAP_COMPONENTS.min(r.flapping),
        r.intake_burst,
        r.intake_every_secs,
        r.intake_firing,
        r.intake_cycle - r.intake_firing,
        r.page_rate,
        minutes(r.duration_secs),
        minutes(r.baseline_secs),
        minutes(r.window_secs),
    );
    let _ = writeln!(
        out,
        "| Figure | Baseline | End | Max after baseline | Growth at end | Max growth |\n\
         |---|---:|---:|---:|---:|---:|"
    );
    let row = |out: &mut String, name: &str, g: Option<Growth>, scale: f64, unit: &str| {
        let _ = match g {
            Some(g) => writeln!(
                out,
                "| {name} | {:.1}{unit} ({}) | {:.1}{unit} ({}) | {:.1}{unit} | {:+.1}% | {:+.1}% |",
                g.baseline / scale,
                span(g.baseline_t, g.baseline_to),
                g.end / scale,
                span(g.end_from, g.end_t),
                g.max / scale,
                g.pct,
                g.max_pct
            ),
            None => writeln!(out, "| {name} | – | – | – | – | – |"),
        };
    };
    row(&mut out, "RSS", v.rss, 1024.0, " MiB");
    row(&mut out, "Open fds", v.fds, 1.0, "");
    row(&mut out, "Alive tasks", v.tasks, 1.0, "");
    row(&mut out, "Threads", v.threads, 1.0, "");
    let pct_of = |g: Option<Growth>| g.map_or("–".to_string(), |g| format!("{:+.1}%", g.pct));
    let _ = writeln!(
        out,
        "\n**{}**: RSS {}, open fds {} and alive tasks {} from the baseline to the end, \
         against a limit of {}%. Peak RSS (VmHWM) {:.1} MiB. Threads (tokio's blocking pool \
         starts and retires them on its own) are shown but not part of the verdict.",
        if v.pass { "PASS" } else { "FAIL" },
        pct_of(v.rss),
        pct_of(v.fds),
        pct_of(v.tasks),
        r.max_growth_pct,
        r.peak_rss_kib as f64 / 1024.0
    );
    if let (Some(first), Some(last)) = (r.samples.first(), r.samples.last()) {
        let secs = (last.t_secs - first.t_secs).max(1.0);
        let (lo, hi) = r.samples.iter().fold((f64::MAX, f64::MIN), |(lo, hi), s| {
            (lo.min(s.open_incidents), hi.max(s.open_incidents))
        });
        let _ = writeln!(
            out,
            "\nLoad over the run: {:.0} checks/s; open incidents between {lo:.0} and {hi:.0} \
             at the samples; status page {} requests answered, {} failed, {} skipped (the {} \
             allowed in flight were all busy); intake {} alerts accepted, {} failed.",
            (last.checks - first.checks) / secs,
            last.pages_ok,
            last.pages_failed,
            r.pages_skipped,
            PAGE_IN_FLIGHT,
            last.intake_ok,
            last.intake_failed,
        );
    }
    let _ = writeln!(
        out,
        "\nEvery sample (seconds since Keel was serving; counters cumulative):\n\n```text\n{}",
        Sample::CSV_HEADER
    );
    for s in &r.samples {
        let _ = writeln!(out, "{}", s.csv());
    }
    let _ = writeln!(out, "```");
    out
}

/// The `soak` subcommand: runs, prints the Markdown, fails if the verdict does.
pub fn main(a: SoakArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        // Dropping the run on a signal drops its children, which kills them.
        tokio::select! {
            r = run(&a) => r,
            _ = tokio::signal::ctrl_c() => bail!("interrupted"),
            _ = term.recv() => bail!("terminated"),
        }
    })?;
    print!("{}", render(&result));
    if !verdict(&result).pass {
        bail!(
            "soak failed: RSS, open fds or alive tasks grew by {}% or more after the baseline",
            result.max_growth_pct
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_runs_from_the_baseline_to_the_end() {
        let points = [
            (0.0, 50.0),
            (300.0, 90.0),
            (600.0, 100.0),
            (900.0, 110.0),
            (1200.0, 104.0),
        ];
        let g = growth(&points, 600.0, 0.0).unwrap();
        assert_eq!((g.baseline_t, g.baseline), (600.0, 100.0));
        assert_eq!((g.end_t, g.end), (1200.0, 104.0));
        assert_eq!(g.max, 110.0);
        assert!((g.pct - 4.0).abs() < 1e-9, "{g:?}");
        assert!((g.max_pct - 10.0).abs() < 1e-9, "{g:?}");
        // The first point at or after the baseline, not the last before it.
        let g = growth(&points, 599.0, 0.0).unwrap();
        assert_eq!(g.baseline, 100.0);
        // Shrinking is negative growth.
        let g = growth(&[(0.0, 200.0), (10.0, 150.0)], 0.0, 0.0).unwrap();
        assert!((g.pct + 25.0).abs() < 1e-9, "{g:?}");
    }

    /// A series that swings with every burst but holds its level passes on medians where
    /// single samples (a trough at the baseline, a peak at the end) would not; a level that
    /// climbs fails either way.
    #[test]
    fn growth_compares_the_medians_of_the_windows() {
        let swing = |i: usize| if i.is_multiple_of(2) { 100.0 } else { 108.0 };
        let flat: Vec<(f64, f64)> = (0..40).map(|i| (i as f64 * 30.0, swing(i))).collect();
        let single = growth(&flat, 0.0, 0.0).unwrap();
        assert!((single.pct - 8.0).abs() < 1e-9, "{single:?}");
        let g = growth(&flat, 0.0, 300.0).unwrap();
        assert_eq!((g.baseline_t, g.baseline_to), (0.0, 270.0));
        assert_eq!((g.end_from, g.end_t), (900.0, 1170.0));
        assert_eq!((g.baseline, g.end), (100.0, 100.0));
        assert_eq!(g.pct, 0.0);
        assert!((g.max_pct - 8.0).abs() < 1e-9, "{g:?}");

        // Ten samples in the first window, eleven in the last, alternating between two levels:
        // both windows read the lower level (a mean of the middle two would read 55 against 39).
        let level = |i: usize| if i.is_multiple_of(2) { 39.0 } else { 71.0 };
        let fds: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64 * 30.0, level(i)))
            .chain((10..30).map(|i| (i as f64 * 30.0, 50.0)))
            .chain((0..11).map(|i| (1000.0 + i as f64 * 29.0, level(i))))
            .collect();
        let g = growth(&fds, 0.0, 300.0).unwrap();
        assert_eq!((g.baseline_to, g.end_from), (270.0, 1000.0), "{g:?}");
        assert_eq!((g.baseline, g.end), (39.0, 39.0), "{g:?}");

        let climb: Vec<(f64, f64)> = (0..40)
            .map(|i| (i as f64 * 30.0, swing(i) + i as f64 * 0.5))
            .collect();
        let g = growth(&climb, 0.0, 300.0).unwrap();
        assert!(g.pct > 5.0, "{g:?}");

        // Windows longer than the run take half the points each, never the same one.
        let g = growth(&[(0.0, 1.0), (30.0, 2.0), (60.0, 3.0)], 0.0, 300.0).unwrap();
        assert_eq!((g.baseline, g.end), (1.0, 3.0));
    }

    #[test]
    fn growth_needs_two_points_from_the_baseline() {
        assert_eq!(growth(&[], 0.0, 0.0), None);
        assert_eq!(growth(&[(0.0, 1.0), (600.0, 2.0)], 600.0, 0.0), None);
        assert_eq!(growth(&[(0.0, 1.0), (30.0, 2.0)], 600.0, 0.0), None);
        let g = growth(&[(0.0, 0.0), (1.0, 0.0)], 0.0, 0.0).unwrap();
        assert_eq!(g.pct, 0.0);
        let g = growth(&[(0.0, 0.0), (1.0, 3.0)], 0.0, 0.0).unwrap();
        assert!(g.pct.is_infinite());
    }

    fn result(rss: &[u64], fds: &[u64]) -> SoakResult {
        result_with_tasks(rss, fds, &vec![100.0; rss.len()])
    }

    fn result_with_tasks(rss: &[u64], fds: &[u64], tasks: &[f64]) -> SoakResult {
        SoakResult {
            monitors: 10,
            interval_secs: 10.0,
            duration_secs: 90.0,
            baseline_secs: 30.0,
            window_secs: 300.0,
            flapping: 1,
            flap_period_secs: 180.0,
            intake_burst: 5,
            intake_every_secs: 60.0,
            intake_cycle: 10,
            intake_firing: 2,
            page_rate: 5.0,
            max_growth_pct: 5.0,
            pages_skipped: 0,
            peak_rss_kib: 4096,
            samples: rss
                .iter()
                .zip(fds)
                .zip(tasks)
                .enumerate()
                .map(|(i, ((&rss_kib, &fds), &tasks))| Sample {
                    t_secs: i as f64 * 30.0,
                    rss_kib,
                    fds,
                    threads: 4,
                    tasks,
                    checks: i as f64 * 30.0,
                    open_incidents: 1.0,
                    pages_ok: i as u64,
                    pages_failed: 0,
                    intake_ok: 0,
                    intake_failed: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn verdict_fails_on_rss_or_fd_growth() {
        // The start-up climb before the baseline does not count.
        let ok = result(&[1000, 2000, 2000, 2090], &[10, 20, 20, 20]);
        assert!(verdict(&ok).pass);
        assert!(render(&ok).contains("**PASS**"), "{}", render(&ok));
        let rss = result(&[1000, 2000, 2000, 2100], &[10, 20, 20, 20]);
        assert!(!verdict(&rss).pass);
        let fds = result(&[1000, 2000, 2000, 2000], &[10, 20, 20, 21]);
        assert!(!verdict(&fds).pass);
        assert!(render(&fds).contains("**FAIL**"));
        // Too short to have anything after the baseline: no verdict, so no pass.
        let short = result(&[1000, 1000], &[10, 10]);
        assert!(!verdict(&short).pass);
    }

    #[test]
    fn verdict_fails_on_task_growth() {
        let flat = [1000, 2000, 2000, 2000];
        let ok = result_with_tasks(&flat, &flat, &[50.0, 100.0, 100.0, 104.0]);
        assert!(verdict(&ok).pass);
        let leak = result_with_tasks(&flat, &flat, &[50.0, 100.0, 100.0, 105.0]);
        assert!(!verdict(&leak).pass);
        let text = render(&leak);
        assert!(
            text.contains("| Alive tasks | 100.0 (0.5 min) | 105.0 (1.5 min) | 105.0 | +5.0% |"),
            "{text}"
        );
        assert!(text.contains("alive tasks +5.0%"), "{text}");
    }

    #[test]
    fn render_lists_every_sample() {
        let text = render(&result(&[1024, 2048, 2048], &[10, 20, 20]));
        assert!(text.contains(Sample::CSV_HEADER), "{text}");
        assert!(text.contains("\n60,2048,20,4,100,60,1,2,0,0,0\n"), "{text}");
        assert!(
            text.contains("| RSS | 2.0 MiB (0.5 min) | 2.0 MiB (1.0 min)"),
            "{text}"
        );
    }

    #[test]
    fn parses_status_counts() {
        let status = "Name:\tkeel\nVmRSS:\t  1234 kB\nThreads:\t17\nSigQ:\t0/1\n";
        assert_eq!(parse_status_count(status, "Threads").unwrap(), 17);
        assert!(parse_status_count("Name:\tkeel\n", "Threads").is_err());
        assert!(parse_status_count("Threads:\tmany\n", "Threads").is_err());
    }

    #[test]
    fn flapping_monitors_get_their_own_path_and_components() {
        let text = config::render(&BenchConfig {
            listen: "127.0.0.1:0",
            data_dir: Path::new("/tmp/d"),
            database_url: None,
            target_base: "http://127.0.0.1:4000",
            monitors: 25,
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(5),
            max_concurrency: 512,
        });
        let (out, flapping) = flap_config(&text, 10);
        assert_eq!(flapping, 3);
        for i in [0, 10, 20] {
            assert!(out.contains(&format!("url = \"http://127.0.0.1:4000/m/{i}/flap\"\n")));
        }
        assert!(
            out.contains("url = \"http://127.0.0.1:4000/m/1\"\n"),
            "{out}"
        );
        assert!(!out.contains("/m/1/flap"), "{out}");
        assert!(
            out.contains("id = \"m-10\"\ncomponent = \"flap-1\"\n"),
            "{out}"
        );
        assert!(
            out.contains("id = \"m-20\"\ncomponent = \"flap-2\"\n"),
            "{out}"
        );
        assert!(
            out.contains("id = \"m-11\"\ncomponent = \"bench\"\n"),
            "{out}"
        );
        assert_eq!(out.matches("/flap\"").count(), 3);
        assert_eq!(out.matches("[[component]]").count(), 4);
        assert!(out.contains("[[component]]\nid = \"flap-2\"\n"), "{out}");
        // The original component is untouched.
        assert!(out.contains("[[component]]\nid = \"bench\"\n"), "{out}");
        // No flapping: the text is unchanged.
        assert_eq!(flap_config(&text, 0), (text.clone(), 0));
    }

    #[test]
    fn intake_events_alternate() {
        let down: serde_json::Value = serde_json::from_str(&intake_event(3, true, 0)).unwrap();
        assert_eq!(down["status"], "down");
        assert_eq!(down["key"], "soak-3");
        assert_eq!(down["component"], "bench");
        let up: serde_json::Value = serde_json::from_str(&intake_event(3, false, 1)).unwrap();
        assert_eq!(up["status"], "resolved");
    }

    #[test]
    fn intake_cycles_fire_then_resolve() {
        let states: Vec<bool> = (0..12).map(|n| intake_fires(n, 5, 2)).collect();
        assert_eq!(
            states,
            [true, true, false, false, false, true, true, false, false, false, true, true]
        );
    }
}
