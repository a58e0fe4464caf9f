//! The responder console in a real browser: headless Chromium, driven over the Chrome DevTools
//! Protocol, signs in, acknowledges an incident, edits and publishes a drafted update, and
//! has a forged form refused. Screenshots go to `target/test-artifacts/console-*.png`.
//!
//! The protocol runs over `--remote-debugging-pipe` (NUL-terminated JSON on file descriptors 3
//! and 4), wired to two named pipes by `sh`, so no WebSocket client is needed. The browser
//! clicks the console's own buttons; the pages need no JavaScript for that (the script on them
//! only refreshes). Without Chromium the test says it skipped, unless `KEEL_REQUIRE_BROWSER=1`
//! (set by scripts/test when it could install one).

mod console_kit;
mod support;

use console_kit::cdp::{chromium, Cdp};
use console_kit::CONFIG;
use serde_json::Value;
use support::TestApp;

/// A page on another site with a form aimed at the console (what a CSRF attack looks like).
async fn evil_site(target: String) -> String {
    let page = format!(
        "<!doctype html><title>Win a prize</title><form method=\"post\" action=\"{target}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"guessed\"><button id=\"go\">Claim</button></form>"
    );
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let p = page.clone();
            async move { axum::response::Html(p) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    // "localhost" is another site than "127.0.0.1" for the browser's SameSite rules.
    format!("http://localhost:{port}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_responder_signs_in_acknowledges_and_publishes_in_chromium() {
    let Some(browser) = chromium() else {
        if std::env::var("KEEL_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("KEEL_REQUIRE_BROWSER=1 but no Chromium found");
        }
        eprintln!("SKIPPED: no Chromium on this machine (scripts/test installs it where it can)");
        return;
    };
    // Keel's log goes to the captured test output, so a failure shows what the server saw.
    std::env::set_var("TEST_LOG", "1");
    let app = TestApp::spawn(CONFIG).await;
    app.store
        .create_user(
            "ann",
            "responder",
            &keel_server::console::password::hash("a long test passphrase").unwrap(),
        )
        .await
        .unwrap();
    let res = app
        .post_auth(
            "/api/v1/incidents",
            r#"{"title": "Search returns errors", "components": ["search"]}"#,
        )
        .await;
    assert_eq!(res.status(), 201);
    let id = res.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let base = app.base.clone();
    let evil = evil_site(format!("{base}/admin/incidents/{id}/acknowledge")).await;

    let edited = "We are restoring search. Some results may be missing meanwhile.";
    let b = browser.clone();
    let base2 = base.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = Cdp::launch(&b);
        c.goto(&format!("{base2}/admin"));
        c.wait_for("/admin/login");
        c.screenshot("sign-in");
        c.set_value("#name", "ann");
        c.set_value("#password", "a long test passphrase");
        c.click("form[action='/admin/login'] button");
        c.wait_for("/admin");
        let list = c.text();
        assert!(list.contains("Search returns errors"), "{list}");
        assert!(list.contains("not yet"), "{list}");
        c.screenshot("incidents");

        // A forged acknowledgement from another site: the Strict cookie is not sent, so the
        // console sees no session and nothing happens.
        c.goto(&evil);
        c.click("#go");
        c.wait_for("/admin/login");
        let after = c.text();
        assert!(!after.contains("Acknowledged by"), "{after}");
        c.screenshot("csrf-cross-site");

        // A tampered token on the console's own form: refused with 403.
        c.goto(&format!("{base2}/admin/incidents/{id}"));
        c.eval("document.querySelectorAll('input[name=csrf]').forEach(e => e.value = 'forged')");
        c.click(&format!(
            "form[action='/admin/incidents/{id}/acknowledge'] button"
        ));
        let refused = c.text();
        assert!(refused.contains("nothing was changed"), "{refused}");
        c.screenshot("csrf-refused");

        // Acknowledge for real.
        c.goto(&format!("{base2}/admin/incidents/{id}"));
        c.click(&format!(
            "form[action='/admin/incidents/{id}/acknowledge'] button"
        ));
        c.wait_for(&format!("/admin/incidents/{id}"));
        let page = c.text();
        assert!(page.contains("Acknowledged by ann"), "{page}");

        // Tick the first runbook step.
        c.click(&format!(
            "form[action='/admin/incidents/{id}/steps/1/tick'] button"
        ));
        c.wait_for(&format!("/admin/incidents/{id}"));
        assert!(c.text().contains("✓ ann"), "{}", c.text());

        // Edit the English draft, first naming the confidential vendor: the verdict shows.
        c.set_value(
            "textarea[name=body_en]",
            "Payments provider is down, so search fails.",
        );
        c.click("button[name=do][value=check]");
        let checked = c.text();
        assert!(checked.contains("Disclosure check: refused"), "{checked}");
        c.screenshot("disclosure-refused");

        c.set_value("textarea[name=body_en]", edited);
        c.click("button[name=do][value=publish]");
        c.wait_for(&format!("/admin/incidents/{id}"));
        let page = c.text();
        assert!(page.contains(edited), "{page}");
        c.screenshot("incident");

        c.goto(&format!("{base2}/admin/incidents/{id}?lang=ja"));
        let ja = c.text();
        assert!(ja.contains("タイムライン"), "{ja}");
        c.screenshot("incident-ja");

        c.goto(&format!("{base2}/admin/monitors"));
        let monitors = c.text();
        assert!(monitors.contains("payments"), "{monitors}");
        c.screenshot("monitors");
        c.goto(&format!("{base2}/admin/maintenance"));
        c.screenshot("maintenance");

        c.goto(&format!("{base2}/?lang=en"));
        let public = c.text();
        assert!(public.contains(edited), "{public}");
    })
    .await
    .unwrap();

    // The timeline says who: the acknowledgement and the update are ann's, once each.
    let i: Value = app
        .get_auth(&format!("/api/v1/incidents/{id}"))
        .await
        .json()
        .await
        .unwrap();
    let acks: Vec<_> = i["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "acknowledged")
        .collect();
    assert_eq!(acks.len(), 1, "{i}");
    assert_eq!(acks[0]["actor"]["name"], "ann");
    assert_eq!(i["public_updates"][0]["published_by"], "ann", "{i}");
}
