//! Command-line verbs: `serve`, `check`, `init`, `probe`, `token create`, `user add|list|remove`.
//!
//! Each verb returns an exit code: 0 success, 1 the work failed (bad config, store
//! unreachable), 2 the command line itself was wrong (clap's own convention).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use keel_core::config::{self, Config, Secret};
use keel_server::{Application, Options};

#[derive(Parser)]
#[command(name = "keel", version, about = "Outage response in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run everything: monitors, vendor polls, intake, API.
    Serve {
        #[arg(long, short, env = "KEEL_CONFIG", default_value = "keel.toml")]
        config: PathBuf,
    },
    /// The first five minutes with Keel: a demo shop that fails on a schedule, watched,
    /// shown on the page, notified and resolved — loopback only, no config needed.
    Demo {
        /// Where the status page listens.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Where the demo keeps its SQLite data.
        #[arg(long, default_value = "./keel-demo-data")]
        data_dir: PathBuf,
    },
    /// Validate a config file and print every problem with file, line and a hint.
    Check {
        #[arg(long, short, env = "KEEL_CONFIG", default_value = "keel.toml")]
        config: PathBuf,
    },
    /// Write the commented example config.
    Init {
        /// Where to write it.
        #[arg(long, short, default_value = "keel.toml")]
        output: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Write the status page, its JSON, feeds and badges as static files.
    Export {
        #[arg(long, short, env = "KEEL_CONFIG", default_value = "keel.toml")]
        config: PathBuf,
        /// The folder to write into (created if needed).
        #[arg(long)]
        out: PathBuf,
    },
    /// Write everything the store keeps to one file, consistent while Keel serves.
    Backup(crate::backup::BackupArgs),
    /// Load a backup into an empty database of either backend (all or nothing).
    Restore(crate::backup::RestoreArgs),
    /// Manage incidents on a running Keel (through its API).
    Incident {
        #[command(flatten)]
        remote: crate::remote::Remote,
        #[command(subcommand)]
        command: crate::remote::IncidentCommand,
    },
    /// Print an incident's postmortem.
    Postmortem {
        id: i64,
        /// md or json.
        #[arg(long, default_value = "md")]
        format: String,
        #[command(flatten)]
        remote: crate::remote::Remote,
    },
    /// Who is on call, and overrides (someone covers a shift), on a running Keel.
    Oncall {
        #[command(flatten)]
        remote: crate::remote::Remote,
        #[command(subcommand)]
        command: Option<crate::oncall::OncallCommand>,
    },
    /// Manage console users (sign-in at /admin).
    User {
        #[command(subcommand)]
        command: crate::user::UserCommand,
    },
    /// Check from another place: run the monitors whose `locations` name this one and
    /// report to Keel (outbound only; needs a probe token).
    Probe(crate::probe::ProbeArgs),
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token, store its hash, and print the token once.
    Create {
        #[arg(long, short, env = "KEEL_CONFIG", default_value = "keel.toml")]
        config: PathBuf,
        /// viewer, responder, admin, or probe (a remote `keel probe`: may only report).
        #[arg(long)]
        role: String,
        /// A name to recognise it by (unique).
        #[arg(long)]
        name: Option<String>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => check(&config),
        Command::Demo { listen, data_dir } => report(runtime().and_then(|rt| {
            rt.block_on(async {
                init_tracing();
                crate::demo::run(listen, &data_dir).await
            })
        })),
        Command::Init { output, force } => report(init(&output, force)),
        Command::Serve { config } => report(runtime().and_then(|rt| rt.block_on(serve(&config)))),
        Command::Export { config, out } => {
            report(runtime().and_then(|rt| rt.block_on(export(&config, &out))))
        }
        Command::Backup(args) => {
            report(runtime().and_then(|rt| rt.block_on(crate::backup::backup(args))))
        }
        Command::Restore(args) => {
            report(runtime().and_then(|rt| rt.block_on(crate::backup::restore(args))))
        }
        Command::Incident { remote, command } => {
            report(runtime().and_then(|rt| rt.block_on(crate::remote::incident(remote, command))))
        }
        Command::Oncall { remote, command } => {
            report(runtime().and_then(|rt| rt.block_on(crate::oncall::oncall(remote, command))))
        }
        Command::Postmortem { id, format, remote } => report(
            runtime().and_then(|rt| rt.block_on(crate::remote::postmortem(remote, id, &format))),
        ),
        Command::Probe(args) => report(runtime().and_then(|rt| {
            rt.block_on(async {
                init_tracing();
                crate::probe::run(args, shutdown_signal()?).await
            })
        })),
        Command::User { command } => {
            report(runtime().and_then(|rt| rt.block_on(crate::user::run(command))))
        }
        Command::Token {
            command: TokenCommand::Create { config, role, name },
        } => report(runtime().and_then(|rt| rt.block_on(token_create(&config, &role, name)))),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Reads and parses a config, layering `KEEL_` variables; every problem in one error.
pub(crate) fn load(path: &Path) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read config {}: {e}\n  hint: `keel init --output {}` writes a commented example",
            path.display(),
            path.display()
        )
    })?;
    let env: Vec<(String, String)> = std::env::vars().collect();
    config::parse(&text, &path.display().to_string(), &env).map_err(|diags| {
        let mut out = String::new();
        for d in &diags {
            out.push_str(&format!("{d}\n"));
        }
        out.push_str(&format!(
            "{} problem{} in {}",
            diags.len(),
            if diags.len() == 1 { "" } else { "s" },
            path.display()
        ));
        out
    })
}

fn check(path: &Path) -> ExitCode {
    match load(path) {
        Ok(c) => {
            println!(
                "{}: ok ({} components, {} vendors, {} monitors)",
                path.display(),
                c.components.len(),
                c.vendors.len(),
                c.monitors.len()
            );
            ExitCode::SUCCESS
        }
        Err(msg) => {
            eprintln!("{msg}");
            ExitCode::from(1)
        }
    }
}

fn init(output: &Path, force: bool) -> anyhow::Result<()> {
    if output.exists() && !force {
        anyhow::bail!(
            "{} already exists; pass --force to overwrite it",
            output.display()
        );
    }
    std::fs::write(output, config::EXAMPLE)
        .with_context(|| format!("cannot write {}", output.display()))?;
    println!(
        "wrote {}; check it with `keel check --config {}`",
        output.display(),
        output.display()
    );
    Ok(())
}

/// The bootstrap admin token from `KEEL_ADMIN_TOKEN` or the file `KEEL_ADMIN_TOKEN_FILE` names.
fn admin_token() -> anyhow::Result<Option<Secret>> {
    let token = match (
        std::env::var("KEEL_ADMIN_TOKEN").ok(),
        std::env::var("KEEL_ADMIN_TOKEN_FILE").ok(),
    ) {
        (Some(_), Some(_)) => {
            anyhow::bail!("set KEEL_ADMIN_TOKEN or KEEL_ADMIN_TOKEN_FILE, not both")
        }
        (Some(t), None) => t,
        (None, Some(f)) => std::fs::read_to_string(&f)
            .with_context(|| format!("cannot read KEEL_ADMIN_TOKEN_FILE {f}"))?,
        (None, None) => return Ok(None),
    };
    let token = token.trim().to_string();
    if token.len() < 16 {
        anyhow::bail!("the admin token must be at least 16 characters long");
    }
    Ok(Some(Secret(token)))
}

async fn serve(path: &Path) -> anyhow::Result<()> {
    init_tracing();
    let shutdown = shutdown_signal()?;
    let config = load(path).map_err(|m| anyhow::anyhow!(m))?;
    let admin_token = admin_token()?;
    if admin_token.is_none() {
        tracing::warn!("no KEEL_ADMIN_TOKEN set: the management API accepts only tokens made with `keel token create`");
    }
    let app = Application::build(config, Options { admin_token }).await?;
    app.run_until_stopped(shutdown).await
}

async fn export(path: &Path, out: &Path) -> anyhow::Result<()> {
    let config = load(path).map_err(|m| anyhow::anyhow!(m))?;
    let files = keel_server::export::export(config, out).await?;
    println!("wrote {} files to {}", files.len(), out.display());
    Ok(())
}

async fn token_create(path: &Path, role: &str, name: Option<String>) -> anyhow::Result<()> {
    let role: keel_server::http::auth::Role =
        role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    let config = load(path).map_err(|m| anyhow::anyhow!(m))?;
    let store = keel_server::store::open_store(&config).await?;
    let token = keel_server::http::auth::new_token();
    let name = name.unwrap_or_else(|| format!("{role}-{}", &token[5..13]));
    store
        .create_token(&name, role.as_str(), &keel_store::hash_token(&token))
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    eprintln!("created {role} token {name:?}; it is shown only once:");
    println!("{token}");
    Ok(())
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Registers the SIGINT/SIGTERM handlers now (so a signal that arrives while Keel starts is not
/// lost) and returns a future that completes on the first of them.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    #[cfg(unix)]
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot install the SIGINT handler")?;
    Ok(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
    })
}
