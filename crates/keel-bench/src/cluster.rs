//! The `cluster` subcommand: several `keel serve` instances sharing N monitors through one
//! PostgreSQL database, measured from outside.
//!
//! For each instance count in turn: a fresh database `keel_bench_<n>` (dropped first if a
//! previous run left it, dropped again at the end), a fresh loopback target, one config per
//! instance that differs only in `listen`, all started together. After the warm-up the window
//! is sampled at both ends:
//!
//! - **checks** are counted where they land, at the target (every request to `/m/{i}`), and
//!   also summed from the instances' own `keel_checks_total`;
//! - **Keel's CPU** is the sum of the instances' `utime + stime`;
//! - **PostgreSQL's CPU** is that of the server on the given port: its postmaster (from `SHOW
//!   data_directory` and `postmaster.pid`) and the postmaster's children, each with its reaped
//!   children's CPU (the server as a whole, helpers included, so other databases' work on the
//!   same server counts too; other servers on the machine do not), and separately the
//!   backends serving the bench database (`pg_stat_activity`), for those alive at both ends.
//!   When the postmaster cannot be found, every process named `postgres` counts, with a
//!   warning.
//!
//! With two instances or more, the last one is then killed with SIGKILL and the target marks
//! the moment: the **take-over time** is how long until the target has seen a request for
//! every one of the N monitors again (the dead instance's included), polled every 200 ms up to
//! a limit.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::child::{spawn_target, wait_for_line, Proc};
use crate::config::{self, BenchConfig};
use crate::procfs;
use crate::run::{counters, parse_serving_line, watch};
use crate::target;

const STOP_GRACE: Duration = Duration::from_secs(10);
const TAKEOVER_POLL: Duration = Duration::from_millis(200);

/// What `cluster` was asked to do.
#[derive(Debug, Clone)]
pub struct ClusterPlan {
    /// Instance counts, one run each (e.g. 1, 2, 3).
    pub instances: Vec<u32>,
    pub monitors: u64,
    pub interval: Duration,
    pub timeout: Duration,
    pub warmup: Duration,
    pub duration: Duration,
    pub keel: PathBuf,
    pub startup_limit: Duration,
    pub max_concurrency: u32,
    /// PostgreSQL server and role: `postgres://{user}@{host}:{port}/keel_bench_<n>`.
    pub pg_host: String,
    pub pg_port: u16,
    pub pg_user: String,
    /// Kill one instance after the window when there are two or more.
    pub kill: bool,
    /// How long to wait for every monitor to be checked again after the kill.
    pub takeover_limit: Duration,
    pub work_dir: Option<PathBuf>,
}

/// One instance's share of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceFigures {
    pub checks: f64,
    pub failures: f64,
    pub cpu_ticks: u64,
    pub peak_rss_kib: u64,
    pub rss_kib: u64,
}

/// What happened after one instance was killed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Takeover {
    /// Which instance (0-based) was killed.
    pub killed: u32,
    /// Monitors the target saw again after the kill, of `monitors`.
    pub seen: u64,
    pub monitors: u64,
    /// From the kill until the last monitor was seen again; `None` when not all were seen
    /// within `limit_secs`.
    pub all_seen_after_secs: Option<f64>,
    pub limit_secs: f64,
}

/// Everything one instance count measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterResult {
    pub instances: u32,
    pub monitors: u64,
    pub interval_secs: f64,
    pub warmup_secs: f64,
    pub duration_secs: f64,
    pub clk_tck: u64,
    pub elapsed_secs: f64,
    /// Requests for `/m/…` the target answered over the window.
    pub target_requests: u64,
    pub per_instance: Vec<InstanceFigures>,
    /// The PostgreSQL server's processes, reaped children included.
    pub pg_server_ticks: u64,
    /// The bench database's backends alive at both ends of the window, and their CPU.
    pub pg_backends: usize,
    pub pg_backend_ticks: u64,
    /// Machine busy time beside Keel and PostgreSQL (the target included), in cores.
    pub other_load_cores: f64,
    pub takeover: Option<Takeover>,
}

impl ClusterResult {
    fn keel_ticks(&self) -> u64 {
        self.per_instance.iter().map(|i| i.cpu_ticks).sum()
    }

    fn secs(&self, ticks: u64) -> f64 {
        ticks as f64 / self.clk_tck as f64
    }

    pub fn checks_per_sec(&self) -> f64 {
        self.target_requests as f64 / self.elapsed_secs
    }

    /// CPU µs per check (checks counted at the target).
    fn per_check(&self, ticks: u64) -> Option<f64> {
        (self.target_requests > 0).then(|| self.secs(ticks) * 1e6 / self.target_requests as f64)
    }

    pub fn row(&self) -> String {
        let keel_checks: f64 = self.per_instance.iter().map(|i| i.checks).sum();
        let failures: f64 = self.per_instance.iter().map(|i| i.failures).sum();
        let split: Vec<String> = self
            .per_instance
            .iter()
            .map(|i| format!("{:.0}", i.checks / self.elapsed_secs))
            .collect();
        let rss: Vec<String> = self
            .per_instance
            .iter()
            .map(|i| format!("{:.0}", i.peak_rss_kib as f64 / 1024.0))
            .collect();
        let fixed = |v: Option<f64>, d: usize| match v {
            Some(v) => format!("{v:.d$}"),
            None => "–".to_string(),
        };
        let takeover = match &self.takeover {
            None => "–".to_string(),
            Some(t) => match t.all_seen_after_secs {
                Some(s) => format!("{s:.1} s"),
                None => format!(
                    "not within {:.0} s ({} of {} seen)",
                    t.limit_secs, t.seen, t.monitors
                ),
            },
        };
        let cells = [
            self.instances.to_string(),
            self.monitors.to_string(),
            crate::table::human(self.interval_secs),
            crate::table::human(self.duration_secs),
            format!("{:.1}", self.checks_per_sec()),
            format!(
                "{:.1} ({})",
                keel_checks / self.elapsed_secs,
                split.join(" + ")
            ),
            format!("{failures:.0}"),
            fixed(self.per_check(self.keel_ticks()), 1),
            format!("{:.2}", self.secs(self.keel_ticks()) / self.elapsed_secs),
            fixed(self.per_check(self.pg_server_ticks), 1),
            format!("{:.2}", self.secs(self.pg_server_ticks) / self.elapsed_secs),
            format!(
                "{:.2} ({})",
                self.secs(self.pg_backend_ticks) / self.elapsed_secs,
                self.pg_backends
            ),
            rss.join(" / "),
            takeover,
            format!("{:.2}", self.other_load_cores),
        ];
        format!("| {} |", cells.join(" | "))
    }
}

pub const COLUMNS: [&str; 15] = [
    "instances",
    "monitors",
    "interval",
    "window",
    "checks/s at the target",
    "checks/s by Keel's counters (per instance)",
    "failures",
    "Keel CPU µs/check (all instances)",
    "Keel CPU, cores (all instances)",
    "PostgreSQL CPU µs/check",
    "PostgreSQL CPU, cores (whole server)",
    "of which the bench database's backends, cores (backends)",
    "peak RSS MiB per instance",
    "one instance killed → every monitor checked again after",
    "other load (cores)",
];

pub fn render(runs: &[ClusterResult]) -> String {
    let rule: Vec<&str> = COLUMNS.iter().map(|_| "---:").collect();
    let mut out = format!("| {} |\n|{}|\n", COLUMNS.join(" | "), rule.join("|"));
    for r in runs {
        out.push_str(&r.row());
        out.push('\n');
    }
    out
}

async fn pg_tool(plan: &ClusterPlan, tool: &str, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(tool)
        .args(["-h", &plan.pg_host, "-p", &plan.pg_port.to_string()])
        .args(["-U", &plan.pg_user])
        .args(args)
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {tool} (PostgreSQL's client tools)"))?;
    if !out.status.success() {
        bail!(
            "{tool} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Pids of the backends connected to `db`.
async fn backends(plan: &ClusterPlan, db: &str) -> anyhow::Result<Vec<u32>> {
    let text = pg_tool(
        plan,
        "psql",
        &[
            "-d",
            "postgres",
            "-Atc",
            &format!("SELECT pid FROM pg_stat_activity WHERE datname = '{db}'"),
        ],
    )
    .await?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// The postmaster's pid: the first line of `postmaster.pid` in the server's data directory.
async fn postmaster(plan: &ClusterPlan) -> anyhow::Result<u32> {
    let dir = pg_tool(
        plan,
        "psql",
        &["-d", "postgres", "-Atc", "SHOW data_directory"],
    )
    .await?;
    let file = Path::new(dir.trim()).join("postmaster.pid");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("{} holds no pid", file.display()))
}

/// PostgreSQL's CPU ticks so far: the server's tree, or every `postgres` process.
fn pg_ticks(root: Option<u32>) -> u64 {
    match root.map(procfs::ticks_of_tree) {
        Some(Ok(t)) => t,
        _ => procfs::ticks_of_processes_named("postgres"),
    }
}

fn ticks_of(pids: &[u32]) -> Vec<(u32, u64)> {
    pids.iter()
        .filter_map(|&p| procfs::process_cpu_ticks(p).ok().map(|t| (p, t)))
        .collect()
}

/// A free loopback port (bound, then released for Keel to take).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

struct Running {
    procs: Vec<Proc>,
    urls: Vec<String>,
}

impl Running {
    async fn watch(&mut self, d: Duration) -> anyhow::Result<()> {
        let until = Instant::now() + d;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            let step = left.min(Duration::from_millis(500));
            for p in &mut self.procs {
                watch(p, Duration::ZERO).await?;
            }
            tokio::time::sleep(step).await;
        }
    }
}

/// One instance count.
async fn run_one(plan: &ClusterPlan, n: u32, work: &Path) -> anyhow::Result<ClusterResult> {
    let exe = std::env::current_exe().context("cannot find the keel-bench executable")?;
    let clk_tck = procfs::clk_tck();
    let db = format!("keel_bench_{n}");
    pg_tool(plan, "dropdb", &["--if-exists", &db]).await?;
    pg_tool(plan, "createdb", &[&db]).await?;
    let url = format!(
        "postgres://{}@{}:{}/{db}",
        plan.pg_user, plan.pg_host, plan.pg_port
    );

    let (target_proc, base) =
        spawn_target(&exe, &["--monitors".into(), plan.monitors.to_string()]).await?;

    eprintln!(
        "keel-bench: {n} instance(s) on {url}, {} http monitors every {} against {base}",
        plan.monitors,
        humantime::format_duration(plan.interval)
    );
    let mut running = Running {
        procs: Vec::new(),
        urls: Vec::new(),
    };
    for i in 0..n {
        let dir = work.join(format!("keel-{n}-{i}"));
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let listen = format!("127.0.0.1:{}", free_port()?);
        let text = config::render(&BenchConfig {
            listen: &listen,
            data_dir: &data_dir,
            database_url: Some(&url),
            target_base: &base,
            monitors: plan.monitors,
            interval: plan.interval,
            timeout: plan.timeout,
            max_concurrency: plan.max_concurrency,
        });
        let config_path = dir.join("keel.toml");
        std::fs::write(&config_path, text)
            .with_context(|| format!("cannot write {}", config_path.display()))?;
        let mut cmd = Command::new(&plan.keel);
        cmd.arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("NO_COLOR", "1");
        let (proc, _, err) = Proc::spawn(&format!("keel instance {i}"), cmd)?;
        running.procs.push(proc);
        let mut err = err;
        let found = wait_for_line(&mut err, plan.startup_limit, parse_serving_line).await;
        drop(err);
        let Some(keel_url) = found else {
            bail!(
                "keel instance {i} did not log 'serving on http://…' within {}\n{}",
                humantime::format_duration(plan.startup_limit),
                running.procs[i as usize].tail()
            );
        };
        running.urls.push(keel_url);
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    eprintln!(
        "keel-bench: all {n} serving; warming up for {}",
        humantime::format_duration(plan.warmup)
    );
    running.watch(plan.warmup).await?;

    // Window start.
    let root = match postmaster(plan).await {
        Ok(pid) => Some(pid),
        Err(e) => {
            eprintln!("keel-bench: warning: {e:#}; counting every process named postgres instead");
            None
        }
    };
    let pids0 = backends(plan, &db).await?;
    let mut start_counters = Vec::new();
    for u in &running.urls {
        start_counters.push(counters(&client, u).await?);
    }
    let t0 = target::stats(&client, &base).await?;
    let keel0: Vec<u64> = running
        .procs
        .iter()
        .map(|p| procfs::process_cpu_ticks(p.pid()))
        .collect::<Result<_, _>>()?;
    let pg0 = pg_ticks(root);
    let be0 = ticks_of(&pids0);
    let m0 = procfs::machine_ticks()?;
    let at0 = Instant::now();
    eprintln!(
        "keel-bench: sampling for {}",
        humantime::format_duration(plan.duration)
    );
    running.watch(plan.duration).await?;
    let at1 = Instant::now();
    let m1 = procfs::machine_ticks()?;
    let be1 = ticks_of(&pids0);
    let pg1 = pg_ticks(root);
    let keel1: Vec<u64> = running
        .procs
        .iter()
        .map(|p| procfs::process_cpu_ticks(p.pid()))
        .collect::<Result<_, _>>()?;
    let t1 = target::stats(&client, &base).await?;
    let mut per_instance = Vec::new();
    for (i, u) in running.urls.iter().enumerate() {
        let (c1, f1) = counters(&client, u).await?;
        let (c0, f0) = start_counters[i];
        let pid = running.procs[i].pid();
        per_instance.push(InstanceFigures {
            checks: c1 - c0,
            failures: f1 - f0,
            cpu_ticks: keel1[i].saturating_sub(keel0[i]),
            peak_rss_kib: procfs::peak_rss_kib(pid)?,
            rss_kib: procfs::rss_kib(pid)?,
        });
    }
    let elapsed_secs = (at1 - at0).as_secs_f64();
    let pg_server_ticks = pg1.saturating_sub(pg0);
    let (mut pg_backends, mut pg_backend_ticks) = (0, 0);
    for (pid, t) in &be1 {
        if let Some((_, t0)) = be0.iter().find(|(p, _)| p == pid) {
            pg_backends += 1;
            pg_backend_ticks += t.saturating_sub(*t0);
        }
    }
    let keel_ticks: u64 = per_instance.iter().map(|i| i.cpu_ticks).sum();
    let busy = m1.busy.saturating_sub(m0.busy);
    let other_load_cores =
        busy.saturating_sub(keel_ticks + pg_server_ticks) as f64 / clk_tck as f64 / elapsed_secs;

    let mut takeover = None;
    if plan.kill && n >= 2 {
        let killed = n - 1;
        eprintln!("keel-bench: killing instance {killed} (SIGKILL)");
        running.procs[killed as usize].kill_now().await?;
        target::mark(&client, &base).await?;
        let limit = plan.takeover_limit;
        let until = Instant::now() + limit;
        let mut last = target::stats(&client, &base).await?;
        while last.seen < last.monitors && Instant::now() < until {
            tokio::time::sleep(TAKEOVER_POLL).await;
            for p in running.procs.iter_mut().take(killed as usize) {
                watch(p, Duration::ZERO).await?;
            }
            last = target::stats(&client, &base).await?;
        }
        let all = last.seen >= last.monitors;
        takeover = Some(Takeover {
            killed,
            seen: last.seen,
            monitors: last.monitors,
            all_seen_after_secs: if all {
                last.last_first_after_mark_ms.map(|ms| ms as f64 / 1000.0)
            } else {
                None
            },
            limit_secs: limit.as_secs_f64(),
        });
        eprintln!(
            "keel-bench: after the kill the target saw {} of {} monitors again{}",
            last.seen,
            last.monitors,
            match last.last_first_after_mark_ms {
                Some(ms) if all => format!(", the last {:.1} s after it", ms as f64 / 1000.0),
                _ => format!(" within {}", humantime::format_duration(limit)),
            }
        );
    }

    for p in running.procs {
        p.stop(STOP_GRACE).await;
    }
    target_proc.stop(STOP_GRACE).await;
    if let Err(e) = pg_tool(plan, "dropdb", &["--if-exists", &db]).await {
        eprintln!("keel-bench: warning: {e}");
    }

    let result = ClusterResult {
        instances: n,
        monitors: plan.monitors,
        interval_secs: plan.interval.as_secs_f64(),
        warmup_secs: plan.warmup.as_secs_f64(),
        duration_secs: plan.duration.as_secs_f64(),
        clk_tck,
        elapsed_secs,
        target_requests: t1.requests.saturating_sub(t0.requests),
        per_instance,
        pg_server_ticks,
        pg_backends,
        pg_backend_ticks,
        other_load_cores,
        takeover,
    };
    let expected = plan.monitors as f64 / plan.interval.as_secs_f64();
    if result.checks_per_sec() > expected * 1.05 {
        eprintln!(
            "keel-bench: warning: the target saw {:.1} checks/s, {expected:.1} expected: monitors are checked by more than one instance",
            result.checks_per_sec()
        );
    }
    if result.checks_per_sec() < expected * 0.95 {
        eprintln!(
            "keel-bench: warning: the target saw {:.1} checks/s, {expected:.1} expected: behind schedule",
            result.checks_per_sec()
        );
    }
    Ok(result)
}

/// Runs every instance count in turn.
pub async fn run(plan: &ClusterPlan) -> anyhow::Result<Vec<ClusterResult>> {
    anyhow::ensure!(plan.monitors > 0, "--monitors must be at least 1");
    anyhow::ensure!(
        !plan.instances.is_empty(),
        "give at least one instance count"
    );
    anyhow::ensure!(
        plan.instances.iter().all(|&n| n >= 1),
        "instance counts start at 1"
    );
    anyhow::ensure!(
        plan.warmup >= plan.interval,
        "--warmup must be at least one --interval"
    );
    if !plan.keel.is_file() {
        bail!(
            "no keel binary at {}; build it with `cargo build --release -p keel` or pass --keel PATH",
            plan.keel.display()
        );
    }
    let work = match &plan.work_dir {
        Some(d) => tempfile::Builder::new()
            .prefix("keel-bench-cluster-")
            .tempdir_in(d),
        None => tempfile::Builder::new()
            .prefix("keel-bench-cluster-")
            .tempdir(),
    }
    .context("cannot create a working directory")?;
    let mut out = Vec::new();
    for &n in &plan.instances {
        let r = run_one(plan, n, work.path()).await;
        if r.is_err() {
            // The children are gone with the error; the database may not be.
            let _ = pg_tool(plan, "dropdb", &["--if-exists", &format!("keel_bench_{n}")]).await;
        }
        out.push(r?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result() -> ClusterResult {
        ClusterResult {
            instances: 2,
            monitors: 30_000,
            interval_secs: 10.0,
            warmup_secs: 60.0,
            duration_secs: 60.0,
            clk_tck: 100,
            elapsed_secs: 60.0,
            target_requests: 180_000,
            per_instance: vec![
                InstanceFigures {
                    checks: 90_000.0,
                    failures: 0.0,
                    cpu_ticks: 900,
                    peak_rss_kib: 100 * 1024,
                    rss_kib: 90 * 1024,
                },
                InstanceFigures {
                    checks: 90_000.0,
                    failures: 0.0,
                    cpu_ticks: 900,
                    peak_rss_kib: 110 * 1024,
                    rss_kib: 90 * 1024,
                },
            ],
            pg_server_ticks: 600,
            pg_backends: 8,
            pg_backend_ticks: 300,
            other_load_cores: 0.1,
            takeover: Some(Takeover {
                killed: 1,
                seen: 30_000,
                monitors: 30_000,
                all_seen_after_secs: Some(14.25),
                limit_secs: 120.0,
            }),
        }
    }

    #[test]
    fn row_figures() {
        // 18 s of Keel CPU over 180,000 checks = 100 µs; PostgreSQL 6 s = 33.3 µs.
        assert_eq!(
            result().row(),
            "| 2 | 30000 | 10s | 1m | 3000.0 | 3000.0 (1500 + 1500) | 0 | 100.0 | 0.30 | 33.3 | 0.10 | 0.05 (8) | 100 / 110 | 14.2 s | 0.10 |"
        );
        assert_eq!(result().row().matches(" | ").count(), COLUMNS.len() - 1);
    }

    #[test]
    fn takeover_not_within_limit_says_how_far_it_got() {
        let mut r = result();
        r.takeover = Some(Takeover {
            killed: 1,
            seen: 29_000,
            monitors: 30_000,
            all_seen_after_secs: None,
            limit_secs: 120.0,
        });
        assert!(r
            .row()
            .contains("| not within 120 s (29000 of 30000 seen) |"));
        r.takeover = None;
        assert!(r.row().contains("| 100 / 110 | – |"));
    }
}
