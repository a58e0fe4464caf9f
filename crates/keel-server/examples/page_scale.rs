//! The status page at scale: how big the page is and how long it takes to render with
//! thousands of public components.
//!
//!     cargo run --release -p keel-server --example page_scale -- \
//!         [--components 10000] [--groups 100] [--runs 30]
//!
//! Writes a config with COMPONENTS public components (spread over GROUPS groups, `group = "…"`;
//! 0 leaves them ungrouped), parses it with Keel's own parser, gives every component 90 days of
//! uptime (most days 100%, some days a little less, the newest components with days of no data)
//! and takes 1% of them down, builds the public snapshot, then renders the page RUNS times and
//! prints the page's size and the render time (median, 90th percentile, max). It also times the
//! rendering of every public document together (page, Statuspage JSON, feeds, badges), which is
//! what the snapshot job does on every change.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{TimeDelta, TimeZone, Utc};
use keel_core::assess::{HealthMap, NodeHealth};
use keel_core::public::{self, DayUptime};
use keel_core::{Health, NodeId};

struct Args {
    components: usize,
    groups: usize,
    runs: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        components: 10_000,
        groups: 100,
        runs: 30,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: usize = it
            .next()
            .with_context(|| format!("{flag} needs a value"))?
            .parse()
            .with_context(|| format!("{flag} takes a number"))?;
        match flag.as_str() {
            "--components" => args.components = value,
            "--groups" => args.groups = value,
            "--runs" => args.runs = value.max(1),
            _ => anyhow::bail!("unknown flag {flag}"),
        }
    }
    Ok(args)
}

/// A config of `n` public components in `groups` groups (0: none).
pub fn config_text(n: usize, groups: usize) -> String {
    let mut toml = String::with_capacity(n * 80);
    toml.push_str("[page]\ntitle = \"Scale Status\"\n\n");
    for i in 0..n {
        let _ = write!(
            toml,
            "[[component]]\nid = \"c{i:05}\"\nname = \"Service {i:05}\"\n"
        );
        if groups > 0 {
            let _ = writeln!(toml, "group = \"Region {:03}\"", i * groups / n);
        }
        toml.push('\n');
    }
    toml
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let text = config_text(args.components, args.groups);
    let config = keel_core::config::parse(&text, "scale.toml", &[])
        .map_err(|d| anyhow::anyhow!("the generated config does not parse: {d:?}"))?;
    let now = Utc.with_ymd_and_hms(2026, 3, 30, 12, 0, 0).unwrap();
    let today = now.date_naive();
    let mut uptime = BTreeMap::new();
    let mut health: HealthMap = BTreeMap::new();
    for (i, c) in config.components.iter().enumerate() {
        // The newest tenth of the components started checking within the last 30 days.
        let since = if i % 10 == 9 { i % 30 } else { 90 };
        let days = (0..90)
            .map(|d| {
                let day = today - TimeDelta::days(89 - d as i64);
                let ratio = if (89 - d) >= since {
                    None
                } else if (i + d) % 37 == 0 {
                    Some(0.993)
                } else if (i * 7 + d) % 211 == 0 {
                    Some(0.94)
                } else {
                    Some(1.0)
                };
                DayUptime { day, ratio }
            })
            .collect();
        uptime.insert(c.id.clone(), days);
        if i % 100 == 42 {
            health.insert(
                NodeId::from(&c.id),
                NodeHealth {
                    health: Health::Down,
                    since: now - TimeDelta::minutes(5),
                    reasons: vec!["HTTP 503".into()],
                    failure_kind: "http".into(),
                },
            );
        }
    }
    let snapshot = public::snapshot::build(&config, &[], &health, &uptime, &[], now);

    let mut page_times = Vec::with_capacity(args.runs);
    let mut size = 0;
    for _ in 0..args.runs {
        let started = Instant::now();
        let page = keel_server::status_page::render(&snapshot, "en", false);
        page_times.push(started.elapsed());
        size = page.len();
    }
    let all_runs = args.runs.min(10);
    let mut all_times = Vec::with_capacity(all_runs);
    for _ in 0..all_runs {
        let s = snapshot.clone();
        let started = Instant::now();
        let rendered = keel_server::rendered::render_all(s);
        all_times.push(started.elapsed());
        drop(rendered);
    }
    println!(
        "{} public components, {} groups: page {} bytes ({:.2} MB)",
        args.components,
        args.groups,
        size,
        size as f64 / 1e6
    );
    println!(
        "page render over {} runs: {}",
        args.runs,
        spread(&mut page_times)
    );
    println!(
        "every public document over {} runs: {}",
        all_runs,
        spread(&mut all_times)
    );
    Ok(())
}

fn spread(times: &mut [Duration]) -> String {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(times[times.len() - 1])
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
