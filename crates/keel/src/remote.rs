//! Incident verbs from the terminal: `keel incident …` and `keel postmortem ID` talk to a
//! running Keel over its management API, so the CLI and the web act through the same checks
//! and the same timeline.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// Where the server is and who is asking.
#[derive(Args, Debug)]
pub struct Remote {
    /// Keel's base URL; default from the config's `[server] listen`.
    #[arg(long, env = "KEEL_URL", global = true)]
    url: Option<String>,
    /// An API token (responder role to act, viewer to read).
    #[arg(long, env = "KEEL_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// Config file, used only to find the URL.
    #[arg(
        long,
        short,
        env = "KEEL_CONFIG",
        default_value = "keel.toml",
        global = true
    )]
    config: PathBuf,
    /// Print the raw JSON answer.
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Subcommand, Debug)]
pub enum IncidentCommand {
    /// List incidents (newest first).
    List {
        /// open, all, investigating, identified, monitoring or resolved.
        #[arg(long, default_value = "open")]
        state: String,
    },
    /// Show one incident with its timeline.
    Show { id: i64 },
    /// Declare an incident no monitor sees (a power cut, a vendor's email).
    Declare {
        #[arg(long)]
        title: String,
        /// Affected component ids (repeat or comma-separate).
        #[arg(long = "component", required = true, value_delimiter = ',')]
        components: Vec<String>,
    },
    /// Acknowledge: someone is on it.
    Ack { id: i64 },
    /// Add an internal note to the timeline.
    Note { id: i64, text: String },
    /// Assign a role (commander or communications).
    Assign {
        id: i64,
        #[arg(long)]
        role: String,
        #[arg(long)]
        person: String,
    },
    /// Tick a checklist step (1-based).
    Tick { id: i64, step: u32 },
    /// Move to investigating, identified or monitoring.
    State {
        id: i64,
        state: String,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resolve by hand.
    Resolve {
        id: i64,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Publish Keel's drafted customer update (the responder's one action).
    Publish {
        id: i64,
        /// The draft's number (see `keel incident show`).
        #[arg(long)]
        draft: u32,
    },
    /// Post an update in your own words: public (to customers) unless --internal.
    Update {
        id: i64,
        /// investigating, identified, monitoring or resolved.
        #[arg(long)]
        status: Option<String>,
        /// The text (all languages), or use --en/--ja.
        #[arg(long)]
        body: Option<String>,
        #[arg(long)]
        en: Option<String>,
        #[arg(long)]
        ja: Option<String>,
        /// An internal note instead of a public update.
        #[arg(long)]
        internal: bool,
        /// Admins only: publish although the disclosure check refuses the text, with this reason.
        #[arg(long)]
        override_reason: Option<String>,
    },
    /// Record the root cause for the postmortem.
    RootCause { id: i64, text: String },
    /// Action items that prevent a recurrence.
    #[command(subcommand)]
    Action(ActionCommand),
}

#[derive(Subcommand, Debug)]
pub enum ActionCommand {
    Add {
        id: i64,
        text: String,
        #[arg(long)]
        owner: Option<String>,
    },
    Close {
        id: i64,
        item: u32,
    },
}

pub(crate) struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    pub(crate) fn new(remote: &Remote) -> anyhow::Result<Client> {
        let base = match &remote.url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => {
                let text = std::fs::read_to_string(&remote.config).with_context(|| {
                    format!(
                        "cannot read {} to find Keel's address; pass --url or set KEEL_URL",
                        remote.config.display()
                    )
                })?;
                let env: Vec<(String, String)> = std::env::vars().collect();
                let cfg =
                    keel_core::config::parse(&text, &remote.config.display().to_string(), &env)
                        .map_err(|d| {
                            anyhow::anyhow!(
                                "{} has problems; run `keel check`",
                                d.first().map(|d| d.file.clone()).unwrap_or_default()
                            )
                        })?;
                format!("http://{}", cfg.server.listen)
            }
        };
        let token = remote
            .token
            .clone()
            .or_else(|| std::env::var("KEEL_ADMIN_TOKEN").ok());
        Ok(Client {
            base,
            token,
            http: reqwest::Client::new(),
        })
    }

    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let Some(token) = &self.token else {
            bail!("no API token: pass --token or set KEEL_TOKEN (create one with `keel token create`)");
        };
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach Keel at {}", self.base))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let reason = value["reason"].as_str().unwrap_or("no reason given");
            match value["field"].as_str() {
                Some(f) => bail!("{status}: {f}: {reason}"),
                None => bail!("{status}: {reason}"),
            }
        }
        Ok(value)
    }
}

pub async fn incident(remote: Remote, cmd: IncidentCommand) -> anyhow::Result<()> {
    use reqwest::Method as M;
    let c = Client::new(&remote)?;
    let v = match cmd {
        IncidentCommand::List { state } => {
            let v = c
                .send(M::GET, &format!("/api/v1/incidents?state={state}"), None)
                .await?;
            if !remote.json {
                print_list(&v);
                return Ok(());
            }
            v
        }
        IncidentCommand::Show { id } => {
            c.send(M::GET, &format!("/api/v1/incidents/{id}"), None)
                .await?
        }
        IncidentCommand::Declare { title, components } => {
            c.send(
                M::POST,
                "/api/v1/incidents",
                Some(json!({"title": title, "components": components})),
            )
            .await?
        }
        IncidentCommand::Ack { id } => {
            // The timeline says how each acknowledgement came in.
            c.send(
                M::POST,
                &format!("/api/v1/incidents/{id}/acknowledge"),
                Some(json!({"via": "cli"})),
            )
            .await?
        }
        IncidentCommand::Note { id, text } => {
            c.send(
                M::POST,
                &format!("/api/v1/incidents/{id}/notes"),
                Some(json!({"text": text})),
            )
            .await?
        }
        IncidentCommand::Assign { id, role, person } => {
            c.send(
                M::POST,
                &format!("/api/v1/incidents/{id}/roles"),
                Some(json!({"role": role, "person": person})),
            )
            .await?
        }
        IncidentCommand::Tick { id, step } => {
            c.send(
                M::POST,
                &format!("/api/v1/incidents/{id}/steps/{step}/tick"),
                None,
            )
            .await?
        }
        IncidentCommand::State { id, state, reason } => {
            c.send(
                M::POST,
                &format!("/api/v1/incidents/{id}/state"),
                Some(json!({"state": state, "reason": reason})),
            )
            .await?
        }
        IncidentCommand::Resolve { id, reason } => {
            c.send(
                M::POST,
                &format!("/api/v1/incidents/{id}/resolve"),
                Some(json!({"reason": reason})),
            )
            .await?
        }
        IncidentCommand::Publish { id, draft } => {
            c.send(
                M::POST,
                &format!("/api/v1/incidents/{id}/drafts/{draft}/publish"),
                None,
            )
            .await?
        }
        IncidentCommand::Update {
            id,
            status,
            body,
            en,
            ja,
            internal,
            override_reason,
        } => {
            let text = match (body, en, ja) {
                (Some(b), None, None) => json!(b),
                (None, en, ja) if en.is_some() || ja.is_some() => {
                    let mut m = serde_json::Map::new();
                    if let Some(t) = en {
                        m.insert("en".into(), json!(t));
                    }
                    if let Some(t) = ja {
                        m.insert("ja".into(), json!(t));
                    }
                    Value::Object(m)
                }
                _ => bail!("give --body, or --en and/or --ja"),
            };
            c.send(
                M::POST,
                &format!("/api/v1/incidents/{id}/updates"),
                Some(json!({"status": status, "body": text, "public": !internal, "override_reason": override_reason})),
            )
            .await?
        }
        IncidentCommand::RootCause { id, text } => {
            c.send(
                M::POST,
                &format!("/api/v1/incidents/{id}/root-cause"),
                Some(json!({"text": text})),
            )
            .await?
        }
        IncidentCommand::Action(ActionCommand::Add { id, text, owner }) => {
            c.send(
                M::POST,
                &format!("/api/v1/incidents/{id}/action-items"),
                Some(json!({"text": text, "owner": owner})),
            )
            .await?
        }
        IncidentCommand::Action(ActionCommand::Close { id, item }) => {
            c.send(
                M::POST,
                &format!("/api/v1/incidents/{id}/action-items/{item}/close"),
                None,
            )
            .await?
        }
    };
    if remote.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print_one(&v);
    }
    Ok(())
}

pub async fn postmortem(remote: Remote, id: i64, format: &str) -> anyhow::Result<()> {
    let c = Client::new(&remote)?;
    let v = c
        .send(
            reqwest::Method::GET,
            &format!("/api/v1/incidents/{id}/postmortem?format={format}"),
            None,
        )
        .await?;
    match v {
        Value::String(md) => print!("{md}"),
        other => println!("{}", serde_json::to_string_pretty(&other)?),
    }
    Ok(())
}

fn print_list(v: &Value) {
    let empty = Vec::new();
    let list = v["incidents"].as_array().unwrap_or(&empty);
    if list.is_empty() {
        println!("no incidents");
        return;
    }
    for i in list {
        println!(
            "#{:<4} {:<13} {:<5} {}  (cause: {}, {} users)",
            i["id"],
            i["state"].as_str().unwrap_or("?"),
            i["severity"].as_str().unwrap_or("-"),
            i["title"].as_str().unwrap_or(""),
            i["cause"].as_str().unwrap_or("none"),
            i["affected_users"],
        );
    }
}

fn print_one(v: &Value) {
    println!(
        "#{} {} [{}] {}",
        v["id"],
        v["title"].as_str().unwrap_or(""),
        v["state"].as_str().unwrap_or("?"),
        v["severity"].as_str().unwrap_or("-")
    );
    println!("  cause: {}", v["cause"].as_str().unwrap_or("none"));
    println!(
        "  impact: {}",
        v["affected_users_text"].as_str().unwrap_or("")
    );
    if let Some(items) = v["checklist"].as_array() {
        for s in items {
            let mark = if s["done_at"].is_null() { " " } else { "x" };
            println!(
                "  [{mark}] {}. {}",
                s["step"],
                s["text"].as_str().unwrap_or("")
            );
        }
    }
    if let Some(tl) = v["timeline"].as_array() {
        for e in tl {
            println!(
                "  {}  {}",
                e["at"].as_str().unwrap_or(""),
                e["type"].as_str().unwrap_or("")
            );
        }
    }
}
