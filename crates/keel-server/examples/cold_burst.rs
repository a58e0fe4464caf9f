//! The cold case: fifty visitors arriving at once right after the page changed.
//!
//!     cargo run --release -p keel-server --example cold_burst -- \
//!         --base http://127.0.0.1:PORT --token ADMIN_TOKEN --incident ID [--changes 5] [--n 50] [--path /]
//!
//! Against a running Keel with an open incident: opens N keep-alive connections, then, for each
//! of CHANGES rounds, posts a public update to the incident (`POST /api/v1/incidents/ID/updates`,
//! which changes the page) and, the moment that call returns, fires N GETs of PATH at once on
//! those connections; 100 ms later, when the new rendering has been swapped in, N more. Prints,
//! per burst, how many responses carried the page from before the change and how many the new
//! one (told apart by ETag), and the latency spread. Keel renders once per change in a
//! background task and swaps the result in; requests only read the current rendering, so no
//! request waits for a render and none triggers one. Uptime Kuma, measured on this kind of
//! machine, fell to 239 requests/s with timeouts on a cold cache.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::future::join_all;

struct Args {
    base: String,
    token: String,
    incident: i64,
    changes: usize,
    n: usize,
    path: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut base = None;
    let mut token = None;
    let mut incident = None;
    let mut changes = 5;
    let mut n = 50;
    let mut path = "/".to_string();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--base" => base = Some(value()?),
            "--token" => token = Some(value()?),
            "--incident" => incident = Some(value()?.parse().context("--incident")?),
            "--changes" => changes = value()?.parse().context("--changes")?,
            "--n" => n = value()?.parse().context("--n")?,
            "--path" => path = value()?,
            other => bail!("unknown argument {other:?}"),
        }
    }
    Ok(Args {
        base: base.context("--base is required")?,
        token: token.context("--token is required")?,
        incident: incident.context("--incident is required")?,
        changes,
        n,
        path,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = parse_args()?;
    let url = format!("{}{}", a.base, a.path);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.n)
        .timeout(Duration::from_secs(10))
        .build()?;
    // Open the connections now, so the bursts measure serving, not connecting.
    burst(&client, &url, a.n).await?;

    println!(
        "| change | burst | sent after the change returned | old page | new page | p50 | p90 | max | all {} done in |",
        a.n
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for change in 1..=a.changes {
        let before = etag(&client, &url).await?;
        let post = client
            .post(format!(
                "{}/api/v1/incidents/{}/updates",
                a.base, a.incident
            ))
            .bearer_auth(&a.token)
            .json(&serde_json::json!({
                "status": "identified",
                "body": format!("Update {change}: we have found the cause and are working on a fix."),
                "public": true,
            }))
            .send()
            .await?;
        let changed = Instant::now();
        if !post.status().is_success() {
            bail!(
                "posting the update failed: {} {}",
                post.status(),
                post.text().await?
            );
        }
        for (name, delay) in [
            ("at once", Duration::ZERO),
            ("+100 ms", Duration::from_millis(100)),
        ] {
            tokio::time::sleep_until((changed + delay).into()).await;
            let sent = changed.elapsed();
            let start = Instant::now();
            let results = burst(&client, &url, a.n).await?;
            let all = start.elapsed();
            let old = results.iter().filter(|(_, e)| *e == before).count();
            let mut lat: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
            lat.sort();
            println!(
                "| {change} | {name} | {} | {old} | {} | {} | {} | {} | {} |",
                ms(sent),
                results.len() - old,
                ms(lat[lat.len() / 2]),
                ms(lat[lat.len() * 9 / 10]),
                ms(lat[lat.len() - 1]),
                ms(all),
            );
        }
        // Let the next change be a separate one.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

async fn etag(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let r = client.get(url).send().await?;
    let e = r
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    r.bytes().await?;
    Ok(e)
}

/// N GETs at once; each one's latency and ETag.
async fn burst(
    client: &reqwest::Client,
    url: &str,
    n: usize,
) -> anyhow::Result<Vec<(Duration, String)>> {
    let one = || async {
        let start = Instant::now();
        let r = client.get(url).send().await?;
        if !r.status().is_success() {
            bail!("GET {url}: {}", r.status());
        }
        let e = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        r.bytes().await?;
        Ok((start.elapsed(), e))
    };
    join_all((0..n).map(|_| one())).await.into_iter().collect()
}
