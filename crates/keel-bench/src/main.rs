//! `keel-bench`: Keel's monitor benchmark harness.
//!
//! It runs N HTTP monitors in a release `keel serve` against a loopback target and, in the same
//! run, a bare HTTP client loop making the same requests at the same rate, and reports Keel's
//! CPU per check against the loop's CPU per request, Keel's peak memory and storage growth.
//! `scripts/bench` runs it at 1,000 and 10,000 monitors and writes `docs/benchmarks.md`.
//!
//! Subcommands: `target` (the loopback server), `bare` (the reference loop), `run` (both, with
//! Keel) and `header` (the Markdown table header matching `run`'s row). Each measured piece runs
//! as its own process so that one's CPU is never counted against another.

mod bare;
mod child;
mod config;
mod metrics;
mod procfs;
mod run;
mod table;
mod target;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use bare::{ClientKind, Connections};

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

/// A `client:connections` pair, e.g. `reqwest:pooled`.
fn variant(s: &str) -> Result<(ClientKind, Connections), String> {
    use clap::ValueEnum;
    let (c, k) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected CLIENT:CONNECTIONS, e.g. reqwest:pooled"))?;
    Ok((
        ClientKind::from_str(c, true)
            .map_err(|_| format!("{c:?}: the client is reqwest or hyper-util"))?,
        Connections::from_str(k, true)
            .map_err(|_| format!("{k:?}: connections are pooled or fresh"))?,
    ))
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
    },
    /// The reference: a bare client loop; prints a one-line JSON report on stdout.
    Bare {
        /// Requests go to URL_BASE/m/{i}.
        #[arg(long)]
        url_base: String,
        #[arg(long)]
        requests_per_sec: f64,
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
        /// Reference loops to run, in order (CLIENT:CONNECTIONS, comma-separated); the first
        /// reqwest:pooled one is what the ratio is taken against.
        #[arg(
            long,
            value_parser = variant,
            value_delimiter = ',',
            default_value = "reqwest:pooled,hyper-util:pooled,reqwest:fresh"
        )]
        bare: Vec<(ClientKind, Connections)>,
        /// Keel's `[scheduler] max_concurrency`.
        #[arg(long, default_value_t = 512)]
        max_concurrency: u32,
        /// Where the temporary config and data directory go [default: the system temp dir].
        #[arg(long)]
        work_dir: Option<PathBuf>,
        /// Also write every figure as JSON to this file.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Print the table header before the row.
        #[arg(long)]
        header: bool,
    },
    /// Print the Markdown table header matching `run`'s rows.
    Header,
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
        } => target::main(listen, until_stdin_closes),
        Cmd::Bare {
            url_base,
            requests_per_sec,
            duration,
            connections,
            client,
            paths,
            warmup,
            timeout,
        } => bare::main(bare::Plan {
            paths: paths.unwrap_or_else(|| (requests_per_sec * 10.0).round().max(1.0) as u64),
            url_base,
            requests_per_sec,
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
            timeout,
            keel,
            startup_limit,
            bare_warmup,
            bare,
            max_concurrency,
            work_dir,
            json,
            header,
        } => {
            let plan = run::RunPlan {
                monitors,
                duration,
                interval,
                timeout,
                keel,
                startup_limit,
                bare_warmup,
                bare,
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
            if header {
                println!("{}", table::header());
            }
            println!("{}", result.row());
            Ok(())
        }
        Cmd::Header => {
            println!("{}", table::header());
            Ok(())
        }
    }
}
