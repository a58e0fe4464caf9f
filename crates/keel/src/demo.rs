//! `keel demo`: the first five minutes with Keel, on loopback only.
//!
//! Starts a small shop target that fails on a schedule, a webhook receiver that prints what
//! customers would receive, and Keel itself watching the target on the embedded SQLite store.
//! A newcomer watches an outage being detected, shown on the page, notified, recovered and
//! resolved, without writing any config.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use chrono::Utc;
use keel_core::config::Secret;
use keel_server::{Application, Options};
use keel_store::{hash_token, NewSubscriber, StoreError, SubscriberKind};
use tokio::net::TcpListener;

/// How long the shop stays up, then down, in each cycle.
const UP: Duration = Duration::from_secs(45);
const DOWN: Duration = Duration::from_secs(60);

const CONFIG: &str = r#"
[server]
listen = "LISTEN"
data_dir = "DATA"

[page]
title = "Demo Shop Status"
locales = ["en", "ja"]

[incidents]
publish_after = "15s"
stability_window = "30s"
recurrence_window = "1m"

[notify]
allow_private_targets = true

[[component]]
id = "shop"
name = { en = "Shop", ja = "ショップ" }
users = 1200
workaround = { en = "Orders can also be placed by phone.", ja = "お電話でもご注文いただけます。" }

[[component]]
id = "checkout"
name = { en = "Checkout", ja = "決済" }
users = 800
depends_on = ["shop"]

[[runbook]]
id = "shop"
component = "shop"
steps = ["Check the shop's error log", "Restart the shop service", "Tell support about the phone workaround"]

[[monitor]]
id = "shop-home"
component = "shop"
kind = "http"
url = "TARGET"
interval = "5s"
timeout = "2s"
confirmations = 2
"#;

pub async fn run(listen: SocketAddr, data: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data).with_context(|| format!("cannot create {}", data.display()))?;
    let failing = Arc::new(AtomicBool::new(false));
    let target = serve_target(failing.clone()).await?;
    let hook = serve_receiver().await?;

    let text = CONFIG
        .replace("LISTEN", &listen.to_string())
        .replace("DATA", &data.display().to_string())
        .replace("TARGET", &format!("http://{target}/"));
    let config = keel_core::config::parse(&text, "demo.toml", &[])
        .map_err(|d| anyhow::anyhow!("the demo config is invalid: {d:?}"))?;
    let store = keel_server::store::open_store(&config).await?;
    // The demo's own receiver subscribes, so every customer update is printed here.
    let secret = format!("demo-{}", keel_server::http::auth::new_token());
    match store
        .create_subscriber(&NewSubscriber {
            kind: SubscriberKind::Webhook,
            address: format!("http://{hook}/hook"),
            components: vec![],
            locale: "en".into(),
            secret: Some(secret.clone()),
            confirmed: true,
            confirm_token_hash: None,
            unsubscribe_token_hash: hash_token(&keel_server::fanout::unsubscribe_token(&secret)),
            created_at: Utc::now(),
        })
        .await
    {
        Ok(_) | Err(StoreError::Conflict(_)) => {}
        Err(e) => return Err(e.into()),
    }
    let token = keel_server::http::auth::new_token();
    let app = Application::build_with_store(
        config,
        Options {
            admin_token: Some(Secret(token.clone())),
        },
        store,
    )
    .await?;
    let base = format!("http://127.0.0.1:{}", app.port());
    println!(
        "\nKeel demo\n\n  status page     {base}/   (日本語: {base}/?lang=ja)\n  JSON            {base}/api/v2/summary.json\n  incidents       KEEL_TOKEN={token} keel incident list --url {base}\n\n\
         A demo shop on {target} stays up {}s, then fails for {}s, again and again.\n\
         Watch Keel confirm the outage, open an incident with its impact and checklist, show it on\n\
         the page, publish the drafted customer update after 15s (printed below as the webhook a\n\
         subscriber receives), move to monitoring when the shop recovers and resolve after 30s.\n\
         Ctrl-C stops the demo; its data stays in {}.\n",
        UP.as_secs(),
        DOWN.as_secs(),
        data.display()
    );
    tokio::spawn(schedule(failing));
    app.run_until_stopped(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// Flips the target between up and down forever.
async fn schedule(failing: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(UP).await;
        failing.store(true, Ordering::SeqCst);
        println!("demo: the shop now answers 503 (an outage begins)");
        tokio::time::sleep(DOWN).await;
        failing.store(false, Ordering::SeqCst);
        println!("demo: the shop answers 200 again (the fix is in)");
    }
}

async fn serve_target(failing: Arc<AtomicBool>) -> anyhow::Result<SocketAddr> {
    let app = Router::new().route(
        "/",
        get(move || {
            let failing = failing.clone();
            async move {
                if failing.load(Ordering::SeqCst) {
                    (StatusCode::SERVICE_UNAVAILABLE, "the demo shop is down")
                } else {
                    (StatusCode::OK, "welcome to the demo shop")
                }
            }
        }),
    );
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok(addr)
}

/// Prints each webhook a subscriber would receive.
async fn serve_receiver() -> anyhow::Result<SocketAddr> {
    let app = Router::new().route(
        "/hook",
        post(|body: Bytes| async move {
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let inc = &v["incident"];
            let update = &inc["incident_updates"][0];
            println!(
                "webhook received: [{}] {} — {}",
                inc["status"].as_str().unwrap_or("?"),
                inc["name"].as_str().unwrap_or("?"),
                update["body"].as_str().unwrap_or("")
            );
            "ok"
        }),
    );
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?;
    tokio::spawn(async move { axum::serve(l, app).await });
    Ok(addr)
}
