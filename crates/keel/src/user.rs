//! `keel user add|list|remove`: console accounts, written straight into the configured store
//! (like `keel token create`), so the first admin exists before Keel ever serves.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use clap::Subcommand;
use keel_server::console::password;
use keel_server::http::auth::Role;

#[derive(Subcommand)]
pub enum UserCommand {
    /// Add a console user. The password comes from KEEL_USER_PASSWORD, else a prompt
    /// without echo, else the first line of standard input.
    Add {
        name: String,
        /// viewer, responder or admin.
        #[arg(long)]
        role: String,
        #[arg(long, short, env = "KEEL_CONFIG", default_value = "keel.toml")]
        config: std::path::PathBuf,
    },
    /// List console users (never their password hashes).
    List {
        #[arg(long, short, env = "KEEL_CONFIG", default_value = "keel.toml")]
        config: std::path::PathBuf,
    },
    /// Remove a console user; their sessions end at once.
    Remove {
        name: String,
        #[arg(long, short, env = "KEEL_CONFIG", default_value = "keel.toml")]
        config: std::path::PathBuf,
    },
}

pub async fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add { name, role, config } => add(&config, &name, &role).await,
        UserCommand::List { config } => list(&config).await,
        UserCommand::Remove { name, config } => remove(&config, &name).await,
    }
}

async fn store(path: &Path) -> anyhow::Result<std::sync::Arc<dyn keel_store::AccountStore>> {
    let config = crate::cli::load(path).map_err(|m| anyhow::anyhow!(m))?;
    Ok(keel_server::store::open_store(&config).await?)
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("KEEL_USER_PASSWORD") {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ")?;
        password::check_new(&first).map_err(|e| anyhow::anyhow!(e))?;
        let again = rpassword::prompt_password("again: ")?;
        if first != again {
            anyhow::bail!("the two passwords differ");
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

async fn add(path: &Path, name: &str, role: &str) -> anyhow::Result<()> {
    let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    if role == Role::Probe {
        anyhow::bail!(
            "a probe signs in with a token, not a console account: `keel token create --role probe`; \
             console users are viewer, responder or admin"
        );
    }
    let store = store(path).await?;
    if store.user_by_name(name).await?.is_some() {
        anyhow::bail!("a user named {name:?} already exists (`keel user remove {name}` first)");
    }
    let pw = read_password()?;
    let phc = password::hash(&pw).map_err(|e| anyhow::anyhow!(e))?;
    store
        .create_user(name, role.as_str(), &phc)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    println!("added {role} {name:?}; they sign in at /admin");
    Ok(())
}

async fn list(path: &Path) -> anyhow::Result<()> {
    let users = store(path).await?.users().await?;
    if users.is_empty() {
        println!("no users (add one with `keel user add NAME --role admin`)");
    }
    for u in users {
        println!(
            "{}\t{}\t{}",
            u.name,
            u.role,
            u.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    Ok(())
}

async fn remove(path: &Path, name: &str) -> anyhow::Result<()> {
    store(path)
        .await?
        .delete_user(name)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    println!("removed {name:?} and ended their sessions");
    Ok(())
}
