//! The status page in a real browser: headless Chromium loads Keel's page during an outage in
//! both languages; the DOM it builds is checked and a screenshot is kept under
//! `target/test-artifacts/` for people to look at. The page carries no script at all, so what
//! Chromium shows is what a browser without JavaScript shows.
//!
//! `scripts/test` installs Chromium when it can and sets `KEEL_REQUIRE_BROWSER=1`; without a
//! browser and without that variable the test says plainly that it skipped.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::{Target, TestApp};

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = Command::new("which").arg(name).output().ok()?;
            out.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
}

fn browse(
    browser: &PathBuf,
    profile: &std::path::Path,
    args: &[&str],
    url: &str,
) -> std::process::Output {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(url);
    cmd.output().expect("run chromium")
}

#[tokio::test]
async fn the_page_renders_in_chromium_in_both_languages() {
    let Some(browser) = chromium() else {
        if std::env::var("KEEL_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("KEEL_REQUIRE_BROWSER=1 but no Chromium found");
        }
        eprintln!("SKIPPED: no Chromium on this machine (scripts/test installs it where it can)");
        return;
    };
    let web = Target::spawn().await;
    let cfg = format!(
        r#"
[page]
title = "Acme Status"
locales = ["en", "ja"]

[incidents]
publish_after = "0s"

[[component]]
id = "search"
name = {{ en = "Search", ja = "検索サービス" }}
users = 15000
workaround = {{ en = "Browse the catalogue by category.", ja = "カテゴリから商品をご覧ください。" }}

[[component]]
id = "checkout"
name = {{ en = "Checkout", ja = "決済" }}
users = 4000

[[monitor]]
id = "search-home"
component = "search"
kind = "http"
url = "{}"
interval = "300ms"
retry_interval = "100ms"
timeout = "300ms"
"#,
        web.url()
    );
    let app = TestApp::spawn(&cfg).await;
    app.wait_state("search-home", "up").await;
    web.set(503);
    app.wait_state("search-home", "down").await;
    // Wait until the incident and its first update are on the page.
    let mut ready = false;
    for _ in 0..100 {
        let page = app
            .client
            .get(app.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("Browse the catalogue by category.") && page.contains("About 15,000 users")
        {
            assert!(
                !page.to_lowercase().contains("<script"),
                "the page needs no JavaScript"
            );
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the incident never reached the page");
    let artifacts: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "target",
        "test-artifacts",
    ]
    .iter()
    .collect();
    std::fs::create_dir_all(&artifacts).unwrap();
    let profile = tempfile::tempdir().unwrap();
    for (lang, expect) in [
        (
            "en",
            [
                "Some systems are affected",
                "Browse the catalogue by category.",
                "Investigating",
            ],
        ),
        (
            "ja",
            [
                "一部のシステムで障害が発生しています",
                "カテゴリから商品をご覧ください。",
                "調査中",
            ],
        ),
    ] {
        let url = app.url(&format!("/?lang={lang}"));
        let b = browser.clone();
        let profile_path = profile.path().to_path_buf();
        let dom =
            tokio::task::spawn_blocking(move || browse(&b, &profile_path, &["--dump-dom"], &url))
                .await
                .unwrap();
        let dom_text = String::from_utf8_lossy(&dom.stdout);
        for e in expect {
            assert!(
                dom_text.contains(e),
                "{lang}: {e:?} not in the DOM Chromium built:\n{dom_text}\nstderr: {}",
                String::from_utf8_lossy(&dom.stderr)
            );
        }
        let shot = artifacts.join(format!("status-page-{lang}.png"));
        let _ = std::fs::remove_file(&shot);
        let url = app.url(&format!("/?lang={lang}"));
        let b = browser.clone();
        let profile_path = profile.path().to_path_buf();
        let arg = format!("--screenshot={}", shot.display());
        let out = tokio::task::spawn_blocking(move || {
            browse(&b, &profile_path, &[&arg, "--window-size=1100,1600"], &url)
        })
        .await
        .unwrap();
        let png = std::fs::read(&shot).unwrap_or_else(|e| {
            panic!(
                "no screenshot ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        assert!(
            png.len() > 10_000,
            "suspiciously small screenshot: {} bytes",
            png.len()
        );
    }
}
