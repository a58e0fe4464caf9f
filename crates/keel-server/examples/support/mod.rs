//! Helpers shared by the end-to-end examples (`time_to_inform`, `time_to_page`): loopback
//! servers, bounded waits, and durations as the config and the tables write them.

// Each example uses only some of these; the module is compiled once per example.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use axum::Router;

/// `"1s"`, `"1.5s"` or `"500ms"`.
pub fn duration(s: &str) -> anyhow::Result<Duration> {
    let (n, scale) = match s.strip_suffix("ms") {
        Some(n) => (n, 0.001),
        None => (
            s.strip_suffix('s')
                .with_context(|| format!("{s:?}: write 1s or 500ms"))?,
            1.0,
        ),
    };
    let v: f64 = n
        .parse()
        .with_context(|| format!("{s:?}: write 1s or 500ms"))?;
    if !(v > 0.0 && v < 3600.0) {
        bail!("{s:?}: out of range");
    }
    Ok(Duration::from_secs_f64(v * scale))
}

/// A duration as the config writes it.
pub fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

pub fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Milliseconds, for figures well under a second.
pub fn millis(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// The median of `v` (the upper one for an even count); zero when empty.
pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}

/// A free port on 127.0.0.1 (for `keel serve`, which binds it itself).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Serves `app` on a loopback port until the process ends.
pub async fn serve(app: Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(addr)
}

/// Calls `f` every 50 ms until it answers, for at most `limit`.
pub async fn wait_for<F, Fut>(limit: Duration, what: &str, mut f: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    let start = Instant::now();
    while start.elapsed() < limit {
        if f().await.is_some() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("timed out after {limit:?} waiting for {what}")
}

/// Gets a fresh Keel ready for a failure and starts it: waits until the page shows the first
/// component operational, subscribes `receiver`'s `/hook` through the public API, waits a
/// random fraction of `interval` (so the failure lands anywhere in the check cycle), then sets
/// `failing`. Returns T0 on the wall clock and on the monotonic clock.
pub async fn subscribe_then_fail(
    http: &reqwest::Client,
    base: &str,
    receiver: SocketAddr,
    interval: Duration,
    failing: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<(chrono::DateTime<chrono::Utc>, Instant)> {
    wait_for(
        Duration::from_secs(30),
        "the component to show operational",
        || async {
            let s: serde_json::Value = http
                .get(format!("{base}/api/v2/summary.json"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (s["components"][0]["status"] == "operational").then_some(())
        },
    )
    .await?;
    let sub = http
        .post(format!("{base}/api/v1/subscribers"))
        .json(&serde_json::json!({ "webhook": format!("http://{receiver}/hook") }))
        .send()
        .await?;
    if !sub.status().is_success() {
        bail!("subscribing failed: {} {}", sub.status(), sub.text().await?);
    }
    let phase = rand::random::<f64>() * interval.as_secs_f64();
    tokio::time::sleep(Duration::from_secs_f64(phase)).await;
    let t0_wall = chrono::Utc::now();
    let t0 = Instant::now();
    failing.store(true, std::sync::atomic::Ordering::SeqCst);
    Ok((t0_wall, t0))
}

/// Writes `config` into `dir` and starts `keel serve` on it with `token` as the admin token,
/// its log in `dir/keel.log`; the process is killed when the handle is dropped.
pub fn spawn_keel(
    keel: &std::path::Path,
    dir: &std::path::Path,
    config: &str,
    token: &str,
) -> anyhow::Result<tokio::process::Child> {
    let config_path = dir.join("keel.toml");
    std::fs::write(&config_path, config)?;
    let log = std::fs::File::create(dir.join("keel.log"))?;
    tokio::process::Command::new(keel)
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .env("KEEL_ADMIN_TOKEN", token)
        .env("KEEL_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", keel.display()))
}

/// Stops the Keel of [`spawn_keel`] and, when the run failed, prints its log.
pub async fn stop_keel<T>(
    mut keel: tokio::process::Child,
    dir: &std::path::Path,
    result: anyhow::Result<T>,
) -> anyhow::Result<T> {
    let _ = keel.kill().await;
    if result.is_err() {
        let log = std::fs::read_to_string(dir.join("keel.log")).unwrap_or_default();
        eprintln!("keel's log:\n{log}");
    }
    result
}
