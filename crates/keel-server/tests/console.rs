//! The responder console over real HTTP on a spawned Keel: sign-in, sessions, CSRF, rate
//! limits, roles, and the actions that land on the timeline and the status page.
//!
//! The client keeps cookies itself (a small jar below) and follows no redirects, so every
//! `Set-Cookie` attribute and every redirect is seen and checked as a browser would get it.

mod console_kit;
mod support;

use chrono::{TimeDelta, Utc};
use console_kit::http::Browser;
use console_kit::CONFIG;
use keel_server::console::password;
use keel_store::NewSession;
use reqwest::header::COOKIE;
use reqwest::StatusCode;
use serde_json::Value;
use support::TestApp;

/// A browser-like client: its own cookie jar, no automatic redirects.
async fn add_user(app: &TestApp, name: &str, role: &str, pw: &str) {
    app.store
        .create_user(name, role, &password::hash(pw).unwrap())
        .await
        .unwrap();
}

const PW: &str = "a long test passphrase";

/// Declares an incident through the API; returns its id.
async fn declare(app: &TestApp, title: &str) -> i64 {
    let res = app
        .post_auth(
            "/api/v1/incidents",
            format!(r#"{{"title": "{title}", "components": ["search"]}}"#),
        )
        .await;
    assert_eq!(res.status(), 201);
    res.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Who acknowledged, from the API's timeline.
fn acknowledged_by(i: &Value) -> Option<String> {
    i["timeline"]
        .as_array()?
        .iter()
        .find(|e| e["type"] == "acknowledged")
        .map(|e| e["actor"]["name"].as_str().unwrap_or("").to_string())
}

async fn incident_json(app: &TestApp, id: i64) -> Value {
    app.get_auth(&format!("/api/v1/incidents/{id}"))
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn sign_in_sign_out_and_what_every_page_carries() {
    let app = TestApp::spawn(CONFIG).await;
    add_user(&app, "ann", "responder", PW).await;
    let b = Browser::new(&app);

    // Not signed in: sent to the sign-in page.
    let res = b.get("/admin").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/admin/login");

    let form = b.get("/admin/login").await;
    let login_cookie = form
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-keel_login="))
        .expect("the sign-in form's cookie");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(login_cookie.contains(attr), "{login_cookie}");
    }

    // Wrong password and unknown user: the same answer, no session.
    for (name, pw) in [("ann", "not the password at all"), ("nobody", PW)] {
        let res = b.try_sign_in(name, pw).await;
        assert_eq!(res.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(res.body.contains("The name or password is not right."));
        assert!(b.session().is_none());
    }
    // Without the form's token the attempt is refused before the password is looked at.
    let res = b
        .post("/admin/login", &[("name", "ann"), ("password", PW)])
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(b.session().is_none());

    let res = b.try_sign_in("ann", PW).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let session_cookie = res
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-keel_session="))
        .expect("session cookie");
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session_cookie.contains(attr), "{session_cookie}");
    }
    let token = b.session().unwrap();
    assert_eq!(token.len(), 64);

    let page = b.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ann (responder)"), "{}", page.body);
    assert!(page.body.contains("No open incidents."));
    let h = &page.headers;
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["cache-control"], "no-store");
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    // The login page carries them too.
    assert_eq!(form.headers["cache-control"], "no-store");
    assert!(!page.body.contains("<script>"), "no inline script");

    // Japanese by ?lang= and by Accept-Language.
    let ja = b.get("/admin?lang=ja").await;
    assert!(
        ja.body.contains("対応中のインシデントはありません。"),
        "{}",
        ja.body
    );

    // Sign out: the session ends in the store, so the old cookie no longer works either.
    let csrf = page.csrf();
    let res = b.post("/admin/logout", &[("csrf", &csrf)]).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert!(b.session().is_none());
    b.set("__Host-keel_session", &token);
    let res = b.get("/admin").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/admin/login");
}

#[tokio::test]
async fn brute_force_is_cut_off_with_429() {
    let app = TestApp::spawn(CONFIG).await;
    add_user(&app, "ann", "admin", PW).await;
    let b = Browser::new(&app);
    let mut refused = 0;
    let mut limited = None;
    for n in 0..10 {
        let res = b.try_sign_in("ann", &format!("guess number {n}")).await;
        match res.status {
            StatusCode::UNAUTHORIZED => refused += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                limited = Some(res);
                break;
            }
            other => panic!("unexpected {other}: {}", res.body),
        }
    }
    let limited = limited.expect("never rate-limited");
    assert_eq!(refused, 5, "five guesses per name, then 429");
    assert!(limited.body.contains("Too many sign-in attempts"));
    assert!(limited.headers.contains_key("retry-after"));
    // Even the right password is refused while the limit holds.
    let res = b.try_sign_in("ann", PW).await;
    assert_eq!(res.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(b.session().is_none());
    // Another name from the same address is not locked out by ann's guesses.
    add_user(&app, "bob", "viewer", PW).await;
    b.sign_in("bob", PW).await;
}

#[tokio::test]
async fn csrf_missing_wrong_or_cross_origin_is_refused_and_changes_nothing() {
    let app = TestApp::spawn(CONFIG).await;
    add_user(&app, "ann", "responder", PW).await;
    let id = declare(&app, "Search is slow").await;
    let b = Browser::new(&app);
    b.sign_in("ann", PW).await;
    let page = b.get(&format!("/admin/incidents/{id}")).await;
    assert_eq!(page.status, StatusCode::OK);
    let csrf = page.csrf();
    let ack = format!("/admin/incidents/{id}/acknowledge");

    let res = b.post(&ack, &[]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(res.body.contains("nothing was changed"), "{}", res.body);
    let res = b.post(&ack, &[("csrf", "0123456789abcdef")]).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    let res = b
        .post_with(&ack, &[("csrf", &csrf)], Some("https://evil.example"))
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    // Another user's token is not this session's.
    add_user(&app, "eve", "responder", PW).await;
    let eve = Browser::new(&app);
    eve.sign_in("eve", PW).await;
    let eve_csrf = eve.get("/admin").await.csrf();
    assert_ne!(eve_csrf, csrf);
    assert_eq!(
        b.post(&ack, &[("csrf", &eve_csrf)]).await.status,
        StatusCode::FORBIDDEN
    );

    let i = incident_json(&app, id).await;
    assert!(i["acknowledged_at"].is_null(), "{i}");
    assert_eq!(
        acknowledged_by(&i),
        None,
        "no acknowledgement on the timeline"
    );

    // With the token (and a same-origin Origin) it goes through.
    let origin = app.base.clone();
    let res = b.post_with(&ack, &[("csrf", &csrf)], Some(&origin)).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let i = incident_json(&app, id).await;
    assert!(!i["acknowledged_at"].is_null(), "{i}");
    assert_eq!(acknowledged_by(&i).as_deref(), Some("ann"));
}

#[tokio::test]
async fn a_deleted_users_or_an_expired_session_goes_back_to_sign_in() {
    let app = TestApp::spawn(CONFIG).await;
    add_user(&app, "bob", "responder", PW).await;
    let b = Browser::new(&app);
    b.sign_in("bob", PW).await;
    assert_eq!(b.get("/admin").await.status, StatusCode::OK);
    app.store.delete_user("bob").await.unwrap();
    let res = b.get("/admin").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/admin/login");

    // A session that has expired, though still stored.
    add_user(&app, "carol", "admin", PW).await;
    let carol = app.store.user_by_name("carol").await.unwrap().unwrap();
    let token = "f".repeat(64);
    let now = Utc::now();
    app.store
        .create_session(&NewSession {
            token_hash: keel_store::hash_token(&token),
            user_id: carol.id,
            csrf_token: "c".repeat(64),
            created_at: now - TimeDelta::hours(13),
            expires_at: now - TimeDelta::hours(1),
        })
        .await
        .unwrap();
    let old = Browser::new(&app);
    old.set("__Host-keel_session", &token);
    let res = old.get("/admin").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/admin/login");
    let res = old
        .post(
            "/admin/incidents",
            &[
                ("csrf", &"c".repeat(64)),
                ("title", "x"),
                ("component", "search"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), "/admin/login");
    assert!(app.incidents().await.is_empty());
}

#[tokio::test]
async fn a_viewer_reads_but_cannot_act_and_a_responder_acknowledges_by_name() {
    let app = TestApp::spawn(CONFIG).await;
    add_user(&app, "vic", "viewer", PW).await;
    add_user(&app, "ann", "responder", PW).await;
    let id = declare(&app, "Search is down").await;

    let viewer = Browser::new(&app);
    viewer.sign_in("vic", PW).await;
    let list = viewer.get("/admin").await;
    assert!(list.body.contains("Search is down"), "{}", list.body);
    assert!(list.body.contains("not yet"), "unacknowledged is shown");
    assert!(!list.body.contains("Declare an incident"));
    let page = viewer.get(&format!("/admin/incidents/{id}")).await;
    assert!(
        !page.body.contains("/acknowledge"),
        "no action forms for a viewer"
    );
    let csrf = page.csrf();
    let res = viewer
        .post(
            &format!("/admin/incidents/{id}/acknowledge"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(res.body.contains("responder role"), "{}", res.body);
    let res = viewer
        .post(
            &format!("/admin/incidents/{id}/note"),
            &[("csrf", &csrf), ("text", "hi")],
        )
        .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(incident_json(&app, id).await["acknowledged_at"].is_null());

    let ann = Browser::new(&app);
    ann.sign_in("ann", PW).await;
    let page = ann.get(&format!("/admin/incidents/{id}")).await;
    let csrf = page.csrf();
    let res = ann
        .post(
            &format!("/admin/incidents/{id}/acknowledge"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    assert_eq!(res.location(), format!("/admin/incidents/{id}"));
    let res = ann
        .post(
            &format!("/admin/incidents/{id}/note"),
            &[("csrf", &csrf), ("text", "Looking at the search cluster")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let res = ann
        .post(
            &format!("/admin/incidents/{id}/severity"),
            &[
                ("csrf", &csrf),
                ("severity", "SEV3"),
                ("reason", "only some queries fail"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let res = ann
        .post(
            &format!("/admin/incidents/{id}/action-item"),
            &[
                ("csrf", &csrf),
                ("text", "Add a search replica"),
                ("owner", "ann"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    // Acknowledging twice is refused with the reason, on the page.
    let res = ann
        .post(
            &format!("/admin/incidents/{id}/acknowledge"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT);
    assert!(res.body.contains("Not done:"), "{}", res.body);

    let i = incident_json(&app, id).await;
    assert_eq!(acknowledged_by(&i).as_deref(), Some("ann"), "{i}");
    assert_eq!(i["severity"], "SEV3", "{i}");
    // The timeline on the page says who did what.
    let page = ann.get(&format!("/admin/incidents/{id}")).await;
    let timeline = &page.body[page.body.find("class=\"timeline\"").unwrap()..];
    let ack_row = timeline
        .split("<tr>")
        .find(|r| r.to_lowercase().contains("acknowledged"))
        .unwrap_or_else(|| panic!("no acknowledgement on the timeline:\n{timeline}"));
    assert!(ack_row.contains("<td>ann</td>"), "{ack_row}");
    assert!(timeline.contains("Looking at the search cluster"));
    assert!(page.body.contains("Acknowledged by ann"));
    assert!(page.body.contains("Add a search replica"));

    // Closing the action item.
    let res = ann
        .post(
            &format!("/admin/incidents/{id}/action-items/1/close"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    // Resolve through the state form.
    let res = ann
        .post(
            &format!("/admin/incidents/{id}/state"),
            &[("csrf", &csrf), ("to", "resolved"), ("reason", "fixed")],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    assert_eq!(incident_json(&app, id).await["state"], "resolved");
    let pm = ann.get(&format!("/admin/incidents/{id}/postmortem")).await;
    assert_eq!(pm.status, StatusCode::OK);
    assert!(pm.body.contains("<h1>Postmortem: #"), "{}", pm.body);
    assert!(pm.body.contains("<h2>Timeline</h2>"));
}

/// The draft's number from its publish form on the page.
fn draft_of(page: &str) -> String {
    let at = page
        .find("/drafts/")
        .unwrap_or_else(|| panic!("no draft:\n{page}"));
    let rest = &page[at + 8..];
    rest[..rest.find('/').unwrap()].to_string()
}

#[tokio::test]
async fn an_edited_draft_is_published_to_the_status_page_and_a_confidential_name_is_refused() {
    let app = TestApp::spawn(CONFIG).await;
    add_user(&app, "ann", "responder", PW).await;
    let b = Browser::new(&app);
    b.sign_in("ann", PW).await;
    let csrf = b.get("/admin").await.csrf();
    // A form that ticks nothing, or a box naming no node of the graph, declares nothing.
    for (ticked, why) in [
        (vec![], "Tick at least one affected component."),
        (
            vec!["search", "Search Cluster"],
            "An affected component is not in the config.",
        ),
    ] {
        let mut pairs = vec![("csrf", csrf.as_str()), ("title", "Search errors")];
        pairs.extend(ticked.into_iter().map(|c| ("component", c)));
        let res = b.post("/admin/incidents", &pairs).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{}", res.body);
        assert!(res.body.contains(why), "{}", res.body);
    }
    assert!(app.incidents().await.is_empty());
    // Declared from the console.
    let res = b
        .post(
            "/admin/incidents",
            &[
                ("csrf", &csrf),
                ("title", "Search errors"),
                ("component", "search"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let path = res.location().to_string();
    let id: i64 = path.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(incident_json(&app, id).await["title"], "Search errors");

    let page = b.get(&path).await;
    let draft = draft_of(&page.body);
    assert!(
        page.body.contains("Disclosure check: passes"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("name=\"body_ja\""),
        "one text per locale"
    );

    // A text naming the confidential vendor: the verdict comes before publishing...
    let leaky = "Payments provider is down, so search fails.";
    let form = |text: &'static str, what: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("draft", draft.clone()),
            ("status", "investigating".into()),
            ("body_en", text.to_string()),
            ("body_ja", "検索サービスで問題が発生しています。".into()),
            ("do", what.into()),
        ]
    };
    let send = |f: Vec<(&'static str, String)>| {
        let b = &b;
        let path = format!("/admin/incidents/{id}/update");
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.post(&path, &pairs).await
        }
    };
    let checked = send(form(leaky, "check")).await;
    assert_eq!(checked.status, StatusCode::OK);
    assert!(
        checked.body.contains("Disclosure check: refused"),
        "{}",
        checked.body
    );
    assert!(
        checked.body.contains("Payments provider"),
        "the term is named"
    );
    assert!(
        checked
            .body
            .contains(&"Payments provider is down, so search fails.".to_string()),
        "the edit is kept"
    );
    assert_eq!(
        incident_json(&app, id).await["public_updates"],
        serde_json::json!([])
    );

    // ...and publishing it is refused, with the text kept for fixing.
    let refused = send(form(leaky, "publish")).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(refused.body.contains("Disclosure check: refused"));
    assert!(refused.body.contains("Payments provider is down"));
    let public = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!public.contains("Payments provider"));

    // A clean edit is published and the status page shows it.
    let published = send(form(
        "We are restoring search; results may be incomplete.",
        "publish",
    ))
    .await;
    assert_eq!(
        published.status,
        StatusCode::SEE_OTHER,
        "{}",
        published.body
    );
    let mut shown = false;
    for _ in 0..50 {
        let public = app
            .client
            .get(app.url("/?lang=en"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if public.contains("We are restoring search; results may be incomplete.") {
            shown = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(shown, "the published update never reached the status page");
    let i = incident_json(&app, id).await;
    assert!(i.to_string().contains("\"published_by\":\"ann\""), "{i}");
}

#[tokio::test]
async fn the_event_stream_says_which_incident_changed_and_needs_a_session() {
    let app = TestApp::spawn(CONFIG).await;
    add_user(&app, "vic", "viewer", PW).await;
    let b = Browser::new(&app);
    assert_eq!(b.get("/admin/events").await.status, StatusCode::SEE_OTHER);
    b.sign_in("vic", PW).await;
    let mut res = b
        .client
        .get(format!("{}/admin/events", b.base))
        .header(COOKIE, b.cookie_header())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let id = declare(&app, "Search is down").await;
    let mut seen = String::new();
    while !seen.contains(&format!("event: incident\ndata: {id}\n")) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(30), res.chunk())
            .await
            .expect("no event within the hang guard")
            .unwrap()
            .expect("the stream ended");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test]
async fn runbook_steps_are_ticked_and_maintenance_is_scheduled_through_the_disclosure_check() {
    let app = TestApp::spawn(CONFIG).await;
    add_user(&app, "ann", "responder", PW).await;
    let id = declare(&app, "Search is down").await;
    let b = Browser::new(&app);
    b.sign_in("ann", PW).await;
    let page = b.get(&format!("/admin/incidents/{id}")).await;
    assert!(page.body.contains("Post in #incidents"), "{}", page.body);
    let csrf = page.csrf();
    let res = b
        .post(
            &format!("/admin/incidents/{id}/steps/2/tick"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let i = incident_json(&app, id).await;
    assert_eq!(i["checklist"][1]["done_by"], "ann", "{i}");
    assert!(i["checklist"][0]["done_by"].is_null());
    let res = b
        .post(
            &format!("/admin/incidents/{id}/steps/9/tick"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);

    // Maintenance: a confidential name is refused with the verdict, nothing is stored.
    let form = |title: &'static str, from: &'static str, until: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name_en", title.to_string()),
            ("name_ja", "検索サービスのメンテナンス".to_string()),
            ("from", from.to_string()),
            ("until", until.to_string()),
            ("component", "search".to_string()),
        ]
    };
    let send = |f: Vec<(&'static str, String)>| {
        let b = &b;
        async move {
            let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            b.post("/admin/maintenance", &pairs).await
        }
    };
    let res = send(form(
        "Payments provider upgrade",
        "2030-01-01T10:00",
        "2030-01-01T11:00",
    ))
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.body.contains("Disclosure check: refused"),
        "{}",
        res.body
    );
    let res = send(form(
        "Search upgrade",
        "2030-01-01T11:00",
        "2030-01-01T10:00",
    ))
    .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.body.contains("The end must be after the start."),
        "{}",
        res.body
    );
    // A vendor's id is a graph node, not a public component: a forged tick is refused.
    let mut forged = form("Search upgrade", "2030-01-01T10:00", "2030-01-01T11:00");
    forged.push(("component", "payments".to_string()));
    let res = send(forged).await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    assert!(
        res.body.contains("Tick at least one public component."),
        "{}",
        res.body
    );
    assert!(app.store.maintenances().await.unwrap().is_empty());

    let res = send(form(
        "Search upgrade",
        "2030-01-01T10:00",
        "2030-01-01T11:00",
    ))
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let all = app.store.maintenances().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].name.get("en"), "Search upgrade");
    assert_eq!(
        all[0].scheduled_for.to_rfc3339(),
        "2030-01-01T10:00:00+00:00"
    );
    assert!(b
        .get("/admin/maintenance")
        .await
        .body
        .contains("Search upgrade"));
}
