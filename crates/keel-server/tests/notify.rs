//! Subscribers end to end: a webhook receiver and a real SMTP server (aiosmtpd) on loopback
//! get Keel's updates — signed webhooks, double opt-in email with a working unsubscribe link —
//! and the public endpoints refuse bad input, private targets and floods.

mod support;

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use support::peers::{Receiver, Smtp};
use support::{Target, TestApp};

/// A real HTTP receiver recording every delivery on `/hook`.
async fn receiver() -> (String, Receiver) {
    let r = Receiver::spawn().await;
    (r.url("/hook"), r)
}

fn config(web: &Target, extra: &str) -> String {
    format!(
        r#"
[page]
title = "Acme Status"
locales = ["en", "ja"]

[incidents]
publish_after = "0s"
stability_window = "1s"

[notify]
allow_private_targets = true
{extra}

[[component]]
id = "search"
name = {{ en = "Search", ja = "検索サービス" }}
users = 500

[[component]]
id = "billing"
name = "Billing"
users = 50

[[monitor]]
id = "search-home"
component = "search"
kind = "http"
url = "{url}"
interval = "300ms"
retry_interval = "100ms"
timeout = "300ms"
"#,
        url = web.url()
    )
}

async fn post_json(app: &TestApp, path: &str, body: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_webhook_subscriber_gets_a_signed_update_when_an_outage_starts() {
    let web = Target::spawn().await;
    let (hook, seen) = receiver().await;
    let (other_hook, other_seen) = receiver().await;
    let app = TestApp::spawn(&config(&web, "")).await;
    let r = post_json(
        &app,
        "/api/v1/subscribers",
        &format!(r#"{{"webhook":"{hook}","components":["search"]}}"#),
    )
    .await;
    assert_eq!(r.status(), 201);
    let sub: Value = r.json().await.unwrap();
    let secret = sub["secret"].as_str().unwrap().to_string();
    // Someone following only billing hears nothing about search.
    let r = post_json(
        &app,
        "/api/v1/subscribers",
        &format!(r#"{{"webhook":"{other_hook}","components":["billing"]}}"#),
    )
    .await;
    assert_eq!(r.status(), 201);

    app.wait_state("search-home", "up").await;
    web.set(503);
    let mut got = None;
    for _ in 0..300 {
        if let Some(d) = seen.on("/hook").first().cloned() {
            got = Some((d.headers, d.body));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (headers, body) = got.expect("a webhook arrived");
    let sig = headers["x-keel-signature"].to_str().unwrap();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&body);
    assert_eq!(
        sig,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    assert!(headers.contains_key("idempotency-key"));
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["incident"]["status"], "investigating");
    assert!(
        v["incident"]["name"].as_str().unwrap().contains("Search"),
        "{v}"
    );
    assert!(
        !String::from_utf8_lossy(&body).contains("search-home"),
        "no internal names"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        other_seen.on("/hook").is_empty(),
        "billing subscriber told about search"
    );
    let outbox: Value = app.get_auth("/api/v1/outbox").await.json().await.unwrap();
    assert!(outbox["sent"].as_u64().unwrap() >= 1, "{outbox}");
}

#[tokio::test]
async fn email_subscribers_confirm_receive_updates_and_unsubscribe() {
    let smtp = Smtp::start().await;
    let web = Target::spawn().await;
    let extra = format!(
        "\n[notify.smtp]\nhost = \"127.0.0.1\"\nport = {}\nfrom = \"Acme Status <status@acme.test>\"\ntls = \"none\"\n",
        smtp.port
    );
    let app = TestApp::spawn(&config(&web, &extra)).await;
    let r = post_json(
        &app,
        "/api/v1/subscribers",
        r#"{"email":"Ann@Example.COM","locale":"ja"}"#,
    )
    .await;
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0]["rcpt_tos"][0], "ann@example.com");
    let text = mails[0]["parts"]["text/plain"].as_str().unwrap();
    assert!(
        text.contains("購読を確認してください")
            || mails[0]["headers"]["Subject"]
                .as_str()
                .unwrap()
                .contains("購読"),
        "{text}"
    );
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/subscribe/confirm/"))
        .expect("a confirmation link")
        .to_string();
    let path = &link[link.find("/subscribe/confirm/").unwrap()..];
    // Nothing is sent before confirmation: an outage now would not reach ann.
    let r = app.client.get(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200);

    app.wait_state("search-home", "up").await;
    web.set(503);
    let mails = smtp.wait_for(2).await;
    let update = &mails[1];
    let subject = update["headers"]["Subject"].as_str().unwrap();
    assert!(subject.contains("調査中"), "{subject}");
    let unsub = update["headers"]["List-Unsubscribe"]
        .as_str()
        .unwrap()
        .trim_matches(['<', '>'])
        .to_string();
    let path = &unsub[unsub.find("/unsubscribe/").unwrap()..];
    let r = app.client.post(app.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let subs: Value = app
        .get_auth("/api/v1/subscribers")
        .await
        .json()
        .await
        .unwrap();
    assert!(subs["subscribers"].as_array().unwrap().is_empty(), "{subs}");
}

#[tokio::test]
async fn subscription_bad_input_private_targets_and_floods() {
    let web = Target::spawn().await;
    // Private targets refused here.
    let cfg = config(&web, "").replace(
        "allow_private_targets = true",
        "allow_private_targets = false",
    );
    let app = TestApp::spawn(&cfg).await;
    for (body, field) in [
        (r#"{"webhook":"http://127.0.0.1:9/x"}"#, "webhook"),
        (r#"{"webhook":"http://10.0.0.7/x"}"#, "webhook"),
        (r#"{"webhook":"ftp://example.com/x"}"#, "webhook"),
        (r#"{"email":"not-an-address"}"#, "email"),
    ] {
        let r = post_json(&app, "/api/v1/subscribers", body).await;
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["field"], field, "{body}: {v}");
    }
    let app2 = TestApp::spawn(&config(&web, "")).await;
    for (body, field) in [
        (r#"{}"#, "email"),
        (
            r#"{"webhook":"http://127.0.0.1:9/x","components":["nope"]}"#,
            "components[0]",
        ),
        (
            r#"{"webhook":"http://127.0.0.1:9/x","locale":"fr"}"#,
            "locale",
        ),
        (r#"{"email":"a@b.test"}"#, "email"),
    ] {
        let r = post_json(&app2, "/api/v1/subscribers", body).await;
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["field"], field, "{body}: {v}");
    }
    // A flood from one address is cut off.
    let mut limited = false;
    for i in 0..30 {
        let r = post_json(
            &app2,
            "/api/v1/subscribers",
            &format!(r#"{{"webhook":"http://127.0.0.1:9/{i}"}}"#),
        )
        .await;
        if r.status() == 429 {
            limited = true;
            break;
        }
    }
    assert!(limited, "no rate limit");
    // The form on the page answers in HTML, in the visitor's language.
    let r = app
        .client
        .post(app.url("/subscribe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=&webhook=&locale=ja")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("lang=\"ja\""));
    let r = app
        .client
        .get(app.url("/unsubscribe/zzz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = app
        .client
        .get(app.url(&format!("/subscribe/confirm/{}", "a".repeat(64))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// The page offers component groups once it has many components: a group's id subscribes to
/// every public component of the group, through the form and the JSON endpoint alike.
#[tokio::test]
async fn a_group_id_subscribes_to_every_component_of_the_group() {
    let web = Target::spawn().await;
    let cfg = config(&web, "")
        .replace(
            "name = \"Billing\"\n",
            "name = \"Billing\"\ngroup = \"Shop\"\n",
        )
        .replace(
            "name = { en = \"Search\", ja = \"検索サービス\" }\n",
            "name = { en = \"Search\", ja = \"検索サービス\" }\ngroup = \"Shop\"\n",
        );
    assert_eq!(cfg.matches("group = \"Shop\"").count(), 2);
    let app = TestApp::spawn(&cfg).await;
    let shop = keel_core::config::group_id(&keel_core::config::LocalizedText::plain("Shop"));
    let r = post_json(
        &app,
        "/api/v1/subscribers",
        &format!(r#"{{"webhook":"http://127.0.0.1:9/all","components":["{shop}","search"]}}"#),
    )
    .await;
    assert_eq!(r.status(), 201);
    let sub: Value = r.json().await.unwrap();
    assert_eq!(sub["components"], serde_json::json!(["search", "billing"]));
    let r = app
        .client
        .post(app.url("/subscribe"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "email=&webhook=http%3A%2F%2F127.0.0.1%3A9%2Fform&locale=en&components={shop}"
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let subs: Value = app
        .get_auth("/api/v1/subscribers")
        .await
        .json()
        .await
        .unwrap();
    let form = subs["subscribers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["address"].as_str().unwrap().ends_with("/form"))
        .expect("the form's subscriber");
    assert_eq!(form["components"], serde_json::json!(["search", "billing"]));
    // An id that is neither is refused, by name.
    let r = post_json(
        &app,
        "/api/v1/subscribers",
        r#"{"webhook":"http://127.0.0.1:9/x","components":["nope"]}"#,
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["reason"].as_str().unwrap().contains("component group"),
        "{v}"
    );
}

/// A responders' webhook channel whose URL is in a file and whose signing key is in the
/// environment: both are read once, when Keel is built. Changing or deleting the file while
/// Keel runs changes nothing; the next update still goes, signed, to the URL read at start.
#[tokio::test]
async fn a_channel_url_file_is_read_once_when_keel_starts() {
    let web = Target::spawn().await;
    let (ops, ops_seen) = receiver().await;
    let (elsewhere, elsewhere_seen) = receiver().await;
    let secrets = tempfile::tempdir().unwrap();
    let url_file = secrets.path().join("ops-url");
    std::fs::write(&url_file, format!("{ops}\n")).unwrap();
    let extra = format!(
        "\n[[notify.channel]]\nname = \"ops\"\nkind = \"webhook\"\nurl_file = \"{}\"\nsecret_env = \"KEEL_TEST_OPS_SECRET\"\n",
        url_file.display()
    );
    const OPS_SECRET: &str = "ops-channel-secret-0123456789";
    let app = TestApp::spawn_with_env(
        &config(&web, &extra),
        &[("KEEL_TEST_OPS_SECRET", OPS_SECRET)],
    )
    .await;
    // Built: the file now points elsewhere, then is gone.
    std::fs::write(&url_file, format!("{elsewhere}\n")).unwrap();
    std::fs::remove_file(&url_file).unwrap();

    app.wait_state("search-home", "up").await;
    web.set(503);
    let got = ops_seen.wait_for("/hook", 1).await;
    let d = &got[0];
    let sig = d.headers["x-keel-signature"].to_str().unwrap();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(OPS_SECRET.as_bytes()).unwrap();
    mac.update(&d.body);
    assert_eq!(
        sig,
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
    assert_eq!(
        d.json()["incident"]["status"],
        "investigating",
        "{:?}",
        d.json()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        elsewhere_seen.on("/hook").is_empty(),
        "the url_file was read again after start"
    );
}

/// A channel whose url_file is missing stops Keel at start, naming the key and the file.
#[tokio::test]
async fn a_missing_channel_url_file_stops_keel_at_start() {
    let web = Target::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-file");
    let extra = format!(
        "\n[[notify.channel]]\nname = \"ops\"\nkind = \"slack\"\nurl_file = \"{}\"\n",
        missing.display()
    );
    let text = support::with_server(dir.path(), &config(&web, &extra));
    let cfg = keel_core::config::parse(&text, "test.toml", &[]).expect("config");
    let store = keel_server::store::open_store(&cfg).await.expect("store");
    let Err(e) =
        keel_server::Application::build_with_store(cfg, keel_server::Options::default(), store)
            .await
    else {
        panic!("Keel started without its channel's url_file");
    };
    let e = format!("{e:#}");
    assert!(
        e.contains(&format!(
            "cannot read [[notify.channel]] \"ops\" url_file {}",
            missing.display()
        )),
        "{e}"
    );
}
