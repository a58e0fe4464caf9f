//! `keel-bench`: Keel's monitor benchmark harness.
//!
//! It runs N HTTP monitors in a release `keel serve` against a loopback target and, in the same
//! run, a bare HTTP client loop making the same requests at the same rate, and reports Keel's
//! CPU per check against the loop's CPU per request, Keel's peak memory and storage growth.
//! `scripts/bench` runs it at 1,000 and 10,000 monitors and writes `docs/benchmarks.md`.
//!
//! Subcommands: `target` (the loopback server), `bare` (the reference loop), `run` (both, with
//! Keel) and `table` (the Markdown tables for runs saved as JSON). Each measured piece runs as
//! its own process so that one's CPU is never counted against another.

mod bare;
mod child;
mod cluster;
mod config;
mod metrics;
mod procfs;
mod run;
mod soak;
mod table;
mod target;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use bare::{ClientKind, Connections};
use run::BareVariant;

#[derive(Parser)]
#[command(
    name = "keel-bench",
    version,
    about = "Keel's monitor benchmark harness"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

fn duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (write durations like 10s, 1m, 500ms)"))
}

/// `CLIENT:CONNECTIONS[:flat]`, e.g. `reqwest:pooled` or `hyper-util:pooled:flat`.
fn variant(s: &str) -> Result<BareVariant, String> {
    use clap::ValueEnum;
    let parts: Vec<&str> = s.split(':').collect();
    let (c, k, flat) = match parts[..] {
        [c, k] => (c, k, false),
        [c, k, "flat"] => (c, k, true),
        _ => {
            return Err(format!(
                "{s:?}: expected CLIENT:CONNECTIONS[:flat], e.g. reqwest:pooled"
            ))
        }
    };
    Ok(BareVariant {
        client: ClientKind::from_str(c, true)
            .map_err(|_| format!("{c:?}: the client is reqwest or hyper-util"))?,
        connections: Connections::from_str(k, true)
            .map_err(|_| format!("{k:?}: connections are pooled or fresh"))?,
        flat,
    })
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve `200 ok` on every path; prints `http://ADDR` on the first line of stdout.
    Target {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Exit when standard input closes (used by `run` so the target never outlives it).
        #[arg(long)]
        until_stdin_closes: bool,
        /// Track which of `/m/0 … /m/{N-1}` were requested since a mark (`/_bench/stats`).
        #[arg(long, default_value_t = 0)]
        monitors: u64,
        /// Paths ending in `/flap` answer 200 for this long, then 503 for as long, and so on.
        #[arg(long, value_parser = duration)]
        flap_period: Option<Duration>,
    },
    /// The reference: a bare client loop; prints a one-line JSON report on stdout.
    Bare {
        /// Requests go to URL_BASE/m/{i}.
        #[arg(long)]
        url_base: String,
        /// Requests a second, evenly spread, each its own task (Keel's regime).
        #[arg(
            long,
            required_unless_present = "flat_out",
            conflicts_with = "flat_out"
        )]
        requests_per_sec: Option<f64>,
        /// Instead of a rate: this many loops making requests back to back (the floor).
        #[arg(long)]
        flat_out: Option<u32>,
        #[arg(long, value_parser = duration)]
        duration: Duration,
        #[arg(long, value_enum, default_value_t = Connections::Pooled)]
        connections: Connections,
        #[arg(long, value_enum, default_value_t = ClientKind::Reqwest)]
        client: ClientKind,
        /// Distinct paths cycled through, one per simulated monitor [default: rate × 10].
        #[arg(long)]
        paths: Option<u64>,
        /// Requests made before the measured window opens (pool filled, lazy setup done).
        #[arg(long, value_parser = duration, default_value = "2s")]
        warmup: Duration,
        /// Per-request time limit, as a monitor's `timeout`.
        #[arg(long, value_parser = duration, default_value = "5s")]
        timeout: Duration,
    },
    /// Keel with N http monitors beside the bare loops; prints one Markdown table row.
    Run {
        #[arg(long)]
        monitors: u64,
        /// The measured window (after one interval of warm-up).
        #[arg(long, value_parser = duration)]
        duration: Duration,
        #[arg(long, value_parser = duration, default_value = "10s")]
        interval: Duration,
        /// Keel's run time before the window opens [default: one interval].
        #[arg(long, value_parser = duration)]
        warmup: Option<Duration>,
        /// Each monitor's timeout.
        #[arg(long, value_parser = duration, default_value = "5s")]
        timeout: Duration,
        /// The keel binary to measure: a release build.
        #[arg(long, default_value = "target/release/keel")]
        keel: PathBuf,
        /// How long Keel may take to log its "serving on" line.
        #[arg(long, value_parser = duration, default_value = "2m")]
        startup_limit: Duration,
        /// Warm-up of each bare loop before its window.
        #[arg(long, value_parser = duration, default_value = "2s")]
        bare_warmup: Duration,
        /// Reference loops to run, in order (CLIENT:CONNECTIONS[:flat], comma-separated); the
        /// ratio is taken against reqwest:pooled, the second ratio against reqwest:pooled:flat.
        #[arg(
            long,
            value_parser = variant,
            value_delimiter = ',',
            default_value = "reqwest:pooled,hyper-util:pooled,reqwest:fresh,reqwest:pooled:flat,hyper-util:pooled:flat"
        )]
        bare: Vec<BareVariant>,
        /// Concurrent loops of a flat-out reference.
        #[arg(long, default_value_t = 8)]
        flat_loops: u32,
        /// Window of a flat-out reference (at most --duration).
        #[arg(long, value_parser = duration, default_value = "10s")]
        flat_duration: Duration,
        /// Keel's `[scheduler] max_concurrency`.
        #[arg(long, default_value_t = 512)]
        max_concurrency: u32,
        /// Where the temporary config and data directory go [default: the system temp dir].
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Also write every figure as JSON to this file (read back by `table`).
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Several `keel serve` instances sharing the monitors through one PostgreSQL database,
    /// for each instance count in turn; prints one Markdown table.
    Cluster {
        /// Instance counts, one run each, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
        instances: Vec<u32>,
        #[arg(long, default_value_t = 30_000)]
        monitors: u64,
        #[arg(long, value_parser = duration, default_value = "10s")]
        interval: Duration,
        #[arg(long, value_parser = duration, default_value = "5s")]
        timeout: Duration,
        /// Run time of the instances before the window opens.
        #[arg(long, value_parser = duration, default_value = "1m")]
        warmup: Duration,
        #[arg(long, value_parser = duration, default_value = "1m")]
        duration: Duration,
        #[arg(long, default_value = "target/release/keel")]
        keel: PathBuf,
        #[arg(long, value_parser = duration, default_value = "2m")]
        startup_limit: Duration,
        #[arg(long, default_value_t = 512)]
        max_concurrency: u32,
        /// PostgreSQL host, port and role (trust authentication); each run creates and drops
        /// its own database `keel_bench_<instances>`.
        #[arg(long, default_value = "127.0.0.1")]
        pg_host: String,
        #[arg(long, default_value_t = 5432)]
        pg_port: u16,
        #[arg(long, default_value = "postgres")]
        pg_user: String,
        /// Do not kill an instance after the window.
        #[arg(long)]
        no_kill: bool,
        /// How long to wait, after the kill, for every monitor to be checked again.
        #[arg(long, value_parser = duration, default_value = "2m")]
        takeover_limit: Duration,
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Also write the figures as JSON (read back by `cluster-table`).
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// Keel under flapping monitors, intake bursts and status-page load for a long time;
    /// prints its RSS, open fds and threads over the run and whether they stayed flat.
    Soak(soak::SoakArgs),
    /// Print the Markdown table for runs saved with `cluster --json`.
    ClusterTable {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print the Markdown tables for runs saved with `run --json`.
    Table {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keel-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::Target {
            listen,
            until_stdin_closes,
            monitors,
            flap_period,
        } => target::main(listen, until_stdin_closes, monitors, flap_period),
        Cmd::Bare {
            url_base,
            requests_per_sec,
            flat_out,
            duration,
            connections,
            client,
            paths,
            warmup,
            timeout,
        } => bare::main(bare::Plan {
            paths: paths.unwrap_or_else(|| {
                (requests_per_sec.unwrap_or(100.0) * 10.0).round().max(1.0) as u64
            }),
            url_base,
            pace: match (requests_per_sec, flat_out) {
                (_, Some(loops)) => bare::Pace::FlatOut(loops),
                (Some(rate), None) => bare::Pace::Rate(rate),
                (None, None) => anyhow::bail!("give --requests-per-sec or --flat-out"),
            },
            warmup,
            duration,
            timeout,
            connections,
            client,
        }),
        Cmd::Run {
            monitors,
            duration,
            interval,
            warmup,
            timeout,
            keel,
            startup_limit,
            bare_warmup,
            bare,
            flat_loops,
            flat_duration,
            max_concurrency,
            work_dir,
            json,
        } => {
            let plan = run::RunPlan {
                monitors,
                duration,
                interval,
                warmup: warmup.unwrap_or(interval),
                timeout,
                keel,
                startup_limit,
                bare_warmup,
                bare,
                flat_loops,
                flat_duration,
                max_concurrency,
                work_dir,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let result = rt.block_on(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                // Dropping the run on a signal drops its children, which kills them.
                tokio::select! {
                    r = run::run(&plan) => r,
                    _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
                    _ = term.recv() => anyhow::bail!("terminated"),
                }
            })?;
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&result)?)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            }
            print!("{}", table::render(&[result]));
            Ok(())
        }
        Cmd::Cluster {
            instances,
            monitors,
            interval,
            timeout,
            warmup,
            duration,
            keel,
            startup_limit,
            max_concurrency,
            pg_host,
            pg_port,
            pg_user,
            no_kill,
            takeover_limit,
            work_dir,
            json,
        } => {
            let plan = cluster::ClusterPlan {
                instances,
                monitors,
                interval,
                timeout,
                warmup,
                duration,
                keel,
                startup_limit,
                max_concurrency,
                pg_host,
                pg_port,
                pg_user,
                kill: !no_kill,
                takeover_limit,
                work_dir,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?;
            let results = rt.block_on(async {
                let mut term =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
                tokio::select! {
                    r = cluster::run(&plan) => r,
                    _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
                    _ = term.recv() => anyhow::bail!("terminated"),
                }
            })?;
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&results)?)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            }
            print!("{}", cluster::render(&results));
            Ok(())
        }
        Cmd::Soak(args) => soak::main(args),
        Cmd::ClusterTable { files } => {
            let mut runs = Vec::new();
            for path in &files {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                let mut some: Vec<cluster::ClusterResult> =
                    serde_json::from_str(&text).map_err(|e| {
                        anyhow::anyhow!(
                            "{} is not a keel-bench cluster result: {e}",
                            path.display()
                        )
                    })?;
                runs.append(&mut some);
            }
            print!("{}", cluster::render(&runs));
            Ok(())
        }
        Cmd::Table { files } => {
            let runs = files
                .iter()
                .map(|path| {
                    let text = std::fs::read_to_string(path)
                        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                    serde_json::from_str::<table::RunResult>(&text).map_err(|e| {
                        anyhow::anyhow!("{} is not a keel-bench run result: {e}", path.display())
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            print!("{}", table::render(&runs));
            Ok(())
        }
    }
}
