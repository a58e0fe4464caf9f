//! The `run` subcommand: one benchmark run, Keel beside the bare loop, on one machine.
//!
//! Order of events: start the loopback target; write a config with N http monitors on it;
//! start the release `keel serve`; wait for its "serving on" line; let it run one full interval
//! so every monitor has checked once and its connections are pooled; then sample Keel's CPU
//! ticks, `/metrics` counters and data directory size over the window. Keel is then stopped,
//! so it cannot disturb the reference, and each bare loop runs in turn at the same request
//! rate for the same window against the same target. Every step has a time limit derived from
//! the durations given, and every child is stopped at the end or killed if the run fails.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::Command;

use crate::bare::{self, ClientKind, Connections};

/// One reference loop to run after Keel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BareVariant {
    pub client: ClientKind,
    pub connections: Connections,
    /// Flat out (back to back) rather than at Keel's rate.
    pub flat: bool,
}
use crate::child::{spawn_target, wait_for_line, Proc};
use crate::config::{self, BenchConfig};
use crate::metrics;
use crate::procfs;
use crate::table::RunResult;

/// Slices of the warm-up over which Keel's CPU is recorded, to show its start-up work fading.
const RAMP_SLICE: Duration = Duration::from_secs(10);
/// How long a child gets to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// Slack beyond warm-up plus window for a bare loop to report.
const BARE_SLACK: Duration = Duration::from_secs(30);

/// What `run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub monitors: u64,
    pub duration: Duration,
    pub interval: Duration,
    /// How long Keel runs before the window opens: at least one interval, so every monitor
    /// has checked once; longer to look past start-up work.
    pub warmup: Duration,
    pub timeout: Duration,
    pub keel: PathBuf,
    pub startup_limit: Duration,
    pub bare_warmup: Duration,
    pub bare: Vec<BareVariant>,
    /// Loops of a flat-out reference, and its window (it keeps both cores busy, so it is kept
    /// short; its per-request figure settles within seconds).
    pub flat_loops: u32,
    pub flat_duration: Duration,
    pub max_concurrency: u32,
    pub work_dir: Option<PathBuf>,
}

/// The address in Keel's "… serving on http://ADDR …" log line.
pub fn parse_serving_line(line: &str) -> Option<String> {
    let at = line.find("serving on http://")? + "serving on ".len();
    let url: String = line[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '\x1b' && *c != ',' && *c != '"')
        .collect();
    (url.len() > "http://".len()).then_some(url)
}

/// Sleeps `d`, failing early (with its last output) if Keel exits meanwhile.
pub async fn watch(keel: &mut Proc, d: Duration) -> anyhow::Result<()> {
    let until = Instant::now() + d;
    loop {
        if let Some(status) = keel.exited() {
            bail!("keel exited ({status}) during the run\n{}", keel.tail());
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        tokio::time::sleep(left.min(Duration::from_millis(500))).await;
    }
}

/// Keel's check and failure counters.
pub async fn counters(client: &reqwest::Client, keel_url: &str) -> anyhow::Result<(f64, f64)> {
    let url = format!("{keel_url}/metrics");
    let resp = client
        .get(&url)
        .send()
        .await
        .with_context(|| format!("cannot fetch {url}"))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .with_context(|| format!("reading {url}"))?;
    if !status.is_success() {
        bail!("{url} answered HTTP {status}");
    }
    Ok((
        metrics::counter(&text, "keel_checks_total")?,
        metrics::counter(&text, "keel_check_failures_total")?,
    ))
}

/// One sample of everything measured from outside Keel.
struct Sample {
    at: Instant,
    checks: f64,
    failures: f64,
    cpu_ticks: u64,
    machine: procfs::MachineTicks,
    storage: u64,
}

async fn sample(
    client: &reqwest::Client,
    keel_url: &str,
    pid: u32,
    data_dir: &std::path::Path,
) -> anyhow::Result<Sample> {
    let (checks, failures) = counters(client, keel_url).await?;
    Ok(Sample {
        cpu_ticks: procfs::process_cpu_ticks(pid)?,
        machine: procfs::machine_ticks()?,
        at: Instant::now(),
        checks,
        failures,
        storage: procfs::dir_size(data_dir)
            .with_context(|| format!("cannot size {}", data_dir.display()))?,
    })
}

/// Runs everything and returns the figures. Children are killed if this future is dropped.
pub async fn run(plan: &RunPlan) -> anyhow::Result<RunResult> {
    anyhow::ensure!(plan.monitors > 0, "--monitors must be at least 1");
    anyhow::ensure!(
        !plan.duration.is_zero(),
        "--duration must be longer than zero"
    );
    anyhow::ensure!(
        plan.warmup >= plan.interval,
        "--warmup must be at least one --interval, so every monitor has checked once"
    );
    anyhow::ensure!(
        !plan.interval.is_zero(),
        "--interval must be longer than zero"
    );
    if !plan.keel.is_file() {
        bail!(
            "no keel binary at {}; build it with `cargo build --release -p keel` or pass --keel PATH",
            plan.keel.display()
        );
    }
    if plan.keel.components().any(|c| c.as_os_str() == "debug") {
        eprintln!(
            "keel-bench: warning: {} looks like a debug build; figures will not mean much",
            plan.keel.display()
        );
    }
    let exe = std::env::current_exe().context("cannot find the keel-bench executable")?;
    let clk_tck = procfs::clk_tck();

    // The target.
    let (target, base) = spawn_target(&exe, &[]).await?;

    // Keel's config and data directory.
    let work = match &plan.work_dir {
        Some(d) => tempfile::Builder::new().prefix("keel-bench-").tempdir_in(d),
        None => tempfile::Builder::new().prefix("keel-bench-").tempdir(),
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
        monitors: plan.monitors,
        interval: plan.interval,
        timeout: plan.timeout,
        max_concurrency: plan.max_concurrency,
    });
    std::fs::write(&config_path, text)
        .with_context(|| format!("cannot write {}", config_path.display()))?;

    // Keel.
    eprintln!(
        "keel-bench: {} http monitors every {} against {base}; starting {}",
        plan.monitors,
        humantime::format_duration(plan.interval),
        plan.keel.display()
    );
    let mut cmd = Command::new(&plan.keel);
    cmd.arg("serve")
        .arg("--config")
        .arg(&config_path)
        .env("NO_COLOR", "1");
    let (mut keel, _, mut keel_err) = Proc::spawn("keel", cmd)?;
    let keel_url = wait_for_line(&mut keel_err, plan.startup_limit, parse_serving_line).await;
    // Dropped so Keel's log is drained without piling up here.
    drop(keel_err);
    let Some(keel_url) = keel_url else {
        bail!(
            "keel did not log 'serving on http://…' within {}\n{}",
            humantime::format_duration(plan.startup_limit),
            keel.tail()
        );
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    eprintln!(
        "keel-bench: keel serving on {keel_url}; warming up for {}",
        humantime::format_duration(plan.warmup)
    );
    // Warm-up, in slices, recording Keel's CPU in each: start-up work shows as a ramp.
    let clk = clk_tck as f64;
    let warm_until = Instant::now() + plan.warmup;
    let mut warmup_ramp = Vec::new();
    let mut last = (Instant::now(), procfs::process_cpu_ticks(keel.pid())?);
    loop {
        let left = warm_until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        watch(&mut keel, left.min(RAMP_SLICE)).await?;
        let now = (Instant::now(), procfs::process_cpu_ticks(keel.pid())?);
        let secs = (now.0 - last.0).as_secs_f64();
        if secs >= RAMP_SLICE.as_secs_f64() / 2.0 {
            warmup_ramp.push(now.1.saturating_sub(last.1) as f64 / clk / secs * 100.0);
        }
        last = now;
    }
    let start = sample(&client, &keel_url, keel.pid(), &data_dir).await?;
    eprintln!(
        "keel-bench: sampling keel for {}",
        humantime::format_duration(plan.duration)
    );
    watch(&mut keel, plan.duration).await?;
    let end = sample(&client, &keel_url, keel.pid(), &data_dir).await?;
    let peak_rss_kib = procfs::peak_rss_kib(keel.pid())?;
    let rss_kib = procfs::rss_kib(keel.pid())?;
    keel.stop(STOP_GRACE).await;

    let elapsed_secs = (end.at - start.at).as_secs_f64();
    let keel_cpu_ticks = end.cpu_ticks.saturating_sub(start.cpu_ticks);
    let machine_busy = end.machine.busy.saturating_sub(start.machine.busy);
    let other_load_cores =
        (machine_busy.saturating_sub(keel_cpu_ticks) as f64 / clk_tck as f64) / elapsed_secs;

    // The references, one after the other, against the same target.
    let rate = plan.monitors as f64 / plan.interval.as_secs_f64();
    let mut reports = Vec::new();
    for v in &plan.bare {
        let window = if v.flat {
            plan.flat_duration.min(plan.duration)
        } else {
            plan.duration
        };
        let pace = if v.flat {
            format!("flat out with {} loops", plan.flat_loops)
        } else {
            format!("{rate:.1} requests/s")
        };
        eprintln!(
            "keel-bench: bare {} loop, {} connections, {pace} for {}",
            v.client,
            v.connections,
            humantime::format_duration(window)
        );
        let mut cmd = Command::new(&exe);
        cmd.arg("bare")
            .args(["--url-base", &base])
            .args(["--paths", &plan.monitors.to_string()])
            .args([
                "--duration",
                &humantime::format_duration(window).to_string(),
            ])
            .args([
                "--warmup",
                &humantime::format_duration(plan.bare_warmup).to_string(),
            ])
            .args([
                "--timeout",
                &humantime::format_duration(plan.timeout).to_string(),
            ])
            .args(["--connections", &v.connections.to_string()])
            .args(["--client", &v.client.to_string()]);
        if v.flat {
            cmd.args(["--flat-out", &plan.flat_loops.to_string()]);
        } else {
            cmd.args(["--requests-per-sec", &rate.to_string()]);
        }
        let (mut proc, mut out, _) = Proc::spawn("bare loop", cmd)?;
        let limit = plan.bare_warmup + plan.duration + BARE_SLACK;
        let report = wait_for_line(&mut out, limit, |l| {
            serde_json::from_str::<bare::Report>(l).ok()
        })
        .await;
        let Some(report) = report else {
            bail!("the bare loop gave no report\n{}", proc.tail());
        };
        let _ = proc.wait(STOP_GRACE).await;
        proc.stop(STOP_GRACE).await;
        if report.failures > 0 {
            eprintln!(
                "keel-bench: warning: bare loop had {} failures; first: {}",
                report.failures,
                report.first_failure.as_deref().unwrap_or("?")
            );
        }
        reports.push(report);
    }
    target.stop(STOP_GRACE).await;

    let result = RunResult {
        monitors: plan.monitors,
        interval_secs: plan.interval.as_secs_f64(),
        warmup_secs: Some(plan.warmup.as_secs_f64()),
        duration_secs: plan.duration.as_secs_f64(),
        clk_tck,
        checks: end.checks - start.checks,
        failures: end.failures - start.failures,
        elapsed_secs,
        keel_cpu_ticks,
        warmup_cpu_ticks: Some(start.cpu_ticks),
        warmup_ramp,
        peak_rss_kib,
        rss_kib: Some(rss_kib),
        storage_growth_bytes: end.storage as i64 - start.storage as i64,
        other_load_cores,
        bare: reports,
    };
    let expected = rate * elapsed_secs;
    if result.checks < expected * 0.95 {
        eprintln!(
            "keel-bench: warning: keel ran {:.0} checks, {:.0} expected at {rate:.1}/s: it fell behind",
            result.checks, expected
        );
    }
    if result.failures > 0.0 {
        eprintln!(
            "keel-bench: warning: {} checks failed against a target that always answers 200",
            result.failures
        );
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::parse_serving_line;

    #[test]
    fn serving_line_with_fields_and_colour() {
        let line = "2025-01-01T00:00:00Z  INFO keel_server::app: keel is serving on \
                    http://127.0.0.1:41234 \x1b[3mstore\x1b[0m=sqlite";
        assert_eq!(
            parse_serving_line(line).as_deref(),
            Some("http://127.0.0.1:41234")
        );
        assert_eq!(
            parse_serving_line("serving on http://127.0.0.1:80").as_deref(),
            Some("http://127.0.0.1:80")
        );
    }

    #[test]
    fn other_lines_are_not_serving_lines() {
        assert_eq!(parse_serving_line("INFO starting scheduler"), None);
        assert_eq!(parse_serving_line("serving on http:// "), None);
        assert_eq!(parse_serving_line(""), None);
    }
}
