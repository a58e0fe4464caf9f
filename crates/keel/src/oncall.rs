//! `keel oncall …`: who is on call, and covering a shift, through a running Keel's API (the
//! same checks as the console: known schedule and person, no overlapping override).

use anyhow::bail;
use chrono::{DateTime, Utc};
use clap::Subcommand;
use serde_json::{json, Value};

use crate::remote::{Client, Remote};

#[derive(Subcommand, Debug)]
pub enum OncallCommand {
    /// Who is on call now for every schedule, and until when (the default).
    Now,
    /// Put someone on call for a schedule for a while (someone covers a shift).
    Override {
        #[arg(long)]
        schedule: String,
        /// The person's id from the config.
        #[arg(long)]
        person: String,
        /// When the cover starts (RFC 3339, e.g. 2026-12-24T18:00:00+09:00); default now.
        #[arg(long)]
        from: Option<String>,
        /// When it ends (RFC 3339).
        #[arg(long, conflicts_with = "for_")]
        until: Option<String>,
        /// How long it lasts from its start instead of --until (e.g. 8h, 2d).
        #[arg(long = "for")]
        for_: Option<String>,
    },
    /// Current and future overrides.
    Overrides,
    /// Remove an override by its id.
    Remove { id: i64 },
}

pub async fn oncall(remote: Remote, cmd: Option<OncallCommand>) -> anyhow::Result<()> {
    use reqwest::Method as M;
    let c = Client::new(&remote)?;
    let (v, print): (Value, fn(&Value)) = match cmd.unwrap_or(OncallCommand::Now) {
        OncallCommand::Now => (c.send(M::GET, "/api/v1/oncall", None).await?, print_now),
        OncallCommand::Override {
            schedule,
            person,
            from,
            until,
            for_,
        } => {
            let start = match from.as_deref() {
                Some(t) => parse_time("--from", t)?,
                None => Utc::now(),
            };
            let end = match (until.as_deref(), for_.as_deref()) {
                (Some(t), None) => parse_time("--until", t)?,
                (None, Some(d)) => {
                    let d = humantime::parse_duration(d)
                        .map_err(|e| anyhow::anyhow!("--for {d:?}: {e} (use e.g. 8h, 90m, 2d)"))?;
                    start + chrono::TimeDelta::from_std(d)?
                }
                _ => bail!("say when the cover ends: --until TIME or --for DURATION"),
            };
            let body = json!({
                "schedule": schedule,
                "person": person,
                "start": start.to_rfc3339(),
                "end": end.to_rfc3339(),
            });
            (
                c.send(M::POST, "/api/v1/oncall/overrides", Some(body))
                    .await?,
                print_override,
            )
        }
        OncallCommand::Overrides => (
            c.send(M::GET, "/api/v1/oncall/overrides", None).await?,
            print_overrides,
        ),
        OncallCommand::Remove { id } => (
            c.send(M::DELETE, &format!("/api/v1/oncall/overrides/{id}"), None)
                .await?,
            print_override,
        ),
    };
    if remote.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print(&v);
    }
    Ok(())
}

fn parse_time(flag: &str, text: &str) -> anyhow::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            anyhow::anyhow!("{flag} {text:?}: {e} (use RFC 3339, e.g. 2026-12-24T18:00:00+09:00)")
        })
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

fn print_now(v: &Value) {
    let empty = Vec::new();
    let list = v["schedules"].as_array().unwrap_or(&empty);
    if list.is_empty() {
        println!("no schedules in the config");
        return;
    }
    for sch in list {
        let who = &sch["on_call"];
        if who.is_null() {
            println!("{:<16} nobody on call ({})", s(sch, "id"), s(sch, "reason"));
            continue;
        }
        let cover = match who["override"].as_i64() {
            Some(id) => format!("  [override {id}]"),
            None => String::new(),
        };
        let until = who["until"].as_str().unwrap_or("further notice");
        println!(
            "{:<16} {} ({})  until {until}{cover}",
            s(sch, "id"),
            s(who, "name"),
            s(who, "person"),
        );
    }
}

fn print_override(v: &Value) {
    println!(
        "override {}: {} on call for {} from {} until {}",
        v["id"],
        s(v, "person"),
        s(v, "schedule"),
        s(v, "start"),
        s(v, "end")
    );
}

fn print_overrides(v: &Value) {
    let empty = Vec::new();
    let list = v["overrides"].as_array().unwrap_or(&empty);
    if list.is_empty() {
        println!("no current or future overrides");
    }
    for o in list {
        print_override(o);
    }
}
