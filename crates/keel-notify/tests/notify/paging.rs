//! Pages through every channel, against peers on loopback: ntfy and Twilio stand-ins that
//! check every request against the documented shapes in `fixtures/paging/` and answer the way
//! those providers do; the real SMTP sink for email; the signature-checking receiver for
//! webhooks; and the outbox on SQLite for retries, backoff and timeouts.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use keel_core::config::Secret;
use keel_notify::email::{EmailSender, SmtpSettings, SmtpTls};
use keel_notify::ntfy::NtfySettings;
use keel_notify::outbox::{self, WorkerOptions};
use keel_notify::page::{delivery_for, PageMessage, CONTACT_KINDS};
use keel_notify::twilio::TwilioSettings;
use keel_notify::{
    idempotency_key, Delivery, HttpOptions, PagingSettings, SendError, SenderOptions, Senders,
};
use keel_store::sqlite::SqliteStore;
use keel_store::Store;
use serde_json::{json, Value};

use crate::support::{Receiver, SmtpSink, PATIENCE};

const NTFY_TOKEN: &str = "tk_ntfySECRETtoken0123456789";
const SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "twilioSECRETauthtoken987";
const FROM: &str = "+15005550006";
const HOOK_SECRET: &str = "whsec_pageSECRET_42";

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../fixtures/paging/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn page(severity: &str, locale: &str) -> PageMessage {
    PageMessage {
        incident_id: keel_core::incident::IncidentId(12),
        title: format!("{severity} · Shop is down (incident 12)"),
        severity: severity.into(),
        what_is_down: vec!["Shop".into(), "Checkout".into()],
        affected_users: 2000,
        cause: Some("payments".into()),
        incident_url: "https://keel.example.com/admin/incidents/12".into(),
        ack_url: "https://keel.example.com/ack/12?t=AbC123xyz".into(),
        level: 1,
        round: 1,
        locale: locale.into(),
        at: "2026-12-06T03:00:00Z".parse().unwrap(),
    }
}

// ---- a provider stand-in --------------------------------------------------------------------

/// How the stand-in answers one (well-formed) request.
#[derive(Debug, Clone)]
enum Answer {
    /// The provider's success: ntfy 200 with the message, Twilio 201 with the resource.
    Ok,
    /// A status with a JSON body.
    Json(u16, Value),
    /// 429 with `Retry-After` and the provider's error body.
    TooMany(u64),
    /// A bare status.
    Status(u16),
    /// Never answers (until the test ends).
    Hang,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Ntfy,
    Twilio,
}

#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: HeaderMap,
    body: Bytes,
    /// What the request got wrong against the documented shape; empty when it matched.
    violations: Vec<String>,
}

impl Request {
    fn form(&self) -> BTreeMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

struct ProviderState {
    kind: Kind,
    /// The ntfy token the server requires, if any.
    ntfy_token: Option<String>,
    script: Mutex<VecDeque<Answer>>,
    otherwise: Answer,
    got: Mutex<Vec<Request>>,
}

/// A real HTTP server on 127.0.0.1 playing ntfy or Twilio.
struct Provider {
    addr: SocketAddr,
    state: Arc<ProviderState>,
    task: tokio::task::JoinHandle<()>,
}

impl Provider {
    async fn start(kind: Kind, script: Vec<Answer>, otherwise: Answer) -> Provider {
        Provider::start_with(kind, Some(NTFY_TOKEN), script, otherwise).await
    }

    async fn start_with(
        kind: Kind,
        ntfy_token: Option<&str>,
        script: Vec<Answer>,
        otherwise: Answer,
    ) -> Provider {
        let state = Arc::new(ProviderState {
            kind,
            ntfy_token: ntfy_token.map(str::to_string),
            script: Mutex::new(script.into()),
            otherwise,
            got: Mutex::new(Vec::new()),
        });
        let s = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let s = s.clone();
                async move { provide(s, method, uri.path().to_string(), headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Provider { addr, state, task }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn received(&self) -> Vec<Request> {
        self.state.got.lock().unwrap().clone()
    }

    /// Every request so far matched the documented shape.
    fn assert_all_well_formed(&self) {
        for r in self.received() {
            assert!(r.violations.is_empty(), "{}: {:?}", r.path, r.violations);
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn is_e164(s: &str) -> bool {
    s.strip_prefix('+').is_some_and(|d| {
        (2..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()) && !d.starts_with('0')
    })
}

fn is_url(v: &Value) -> bool {
    v.as_str()
        .and_then(|s| url::Url::parse(s).ok())
        .is_some_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Checks a value against one field spec of `fixtures/paging/ntfy-publish.json`.
fn check_field(name: &str, v: &Value, spec: &Value, out: &mut Vec<String>) {
    let ok = match spec["type"].as_str().unwrap() {
        "string" => v.is_string(),
        "url" => is_url(v),
        "boolean" => v.is_boolean(),
        "string_array" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        "array" => v.as_array().is_some_and(|a| {
            spec.get("max_items")
                .and_then(Value::as_u64)
                .is_none_or(|m| a.len() as u64 <= m)
        }),
        "integer" => v.as_i64().is_some_and(|n| {
            spec["min"].as_i64().is_none_or(|m| n >= m)
                && spec["max"].as_i64().is_none_or(|m| n <= m)
        }),
        t => panic!("unknown type {t} in the fixture"),
    };
    if !ok {
        out.push(format!("{name}: {v} is not a valid {}", spec["type"]));
    }
    if let Some(want) = spec.get("equals") {
        if v != want {
            out.push(format!("{name} must be {want}, is {v}"));
        }
    }
}

fn check_object(what: &str, body: &Value, fields: &Value, out: &mut Vec<String>) {
    let Some(obj) = body.as_object() else {
        out.push(format!("{what} is not a JSON object"));
        return;
    };
    let fields = fields.as_object().unwrap();
    for (k, v) in obj {
        match fields.get(k) {
            Some(spec) => check_field(&format!("{what}.{k}"), v, spec, out),
            None => out.push(format!("{what}: unknown field {k:?}")),
        }
    }
    for (k, spec) in fields {
        if spec["required"] == true && !obj.contains_key(k) {
            out.push(format!("{what}: missing required field {k:?}"));
        }
    }
}

fn check_ntfy(method: &Method, path: &str, h: &HeaderMap, body: &[u8]) -> Vec<String> {
    let shape = fixture("ntfy-publish.json");
    let req = &shape["request"];
    let mut v = Vec::new();
    if method.as_str() != req["method"] {
        v.push(format!("method {method}"));
    }
    if path != req["path"] {
        v.push(format!(
            "JSON must be published to the root URL, not {path:?}"
        ));
    }
    if header(h, "content-type") != req["content_type"].as_str() {
        v.push(format!("content-type {:?}", header(h, "content-type")));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(b) => {
            check_object("body", &b, &shape["fields"], &mut v);
            if let Some(actions) = b["actions"].as_array() {
                for (i, a) in actions.iter().enumerate() {
                    check_object(
                        &format!("actions[{i}]"),
                        a,
                        &shape["view_action_fields"],
                        &mut v,
                    );
                }
            }
        }
        Err(e) => v.push(format!("body is not JSON: {e}")),
    }
    v
}

/// The expected `Authorization` for HTTP Basic (RFC 7617), computed here by hand so the test
/// does not trust the client's encoder.
fn basic(user: &str, pass: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{pass}").into_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

fn check_twilio(
    method: &Method,
    path: &str,
    h: &HeaderMap,
    body: &[u8],
) -> (Vec<String>, &'static str) {
    let (shape, which) = if path.ends_with("/Messages.json") {
        (fixture("twilio-messages-request.json"), "Messages")
    } else {
        (fixture("twilio-calls-request.json"), "Calls")
    };
    let req = &shape["request"];
    let mut v = Vec::new();
    if method.as_str() != req["method"] {
        v.push(format!("method {method}"));
    }
    let want_path = req["path"].as_str().unwrap().replace("{AccountSid}", SID);
    if path != want_path {
        v.push(format!("path {path:?}, expected {want_path:?}"));
    }
    if header(h, "content-type") != req["content_type"].as_str() {
        v.push(format!("content-type {:?}", header(h, "content-type")));
    }
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let fields = shape["form"].as_object().unwrap();
    for k in form.keys() {
        if !fields.contains_key(k) {
            v.push(format!("unexpected parameter {k:?}"));
        }
    }
    for (k, spec) in fields {
        let Some(val) = form.get(k) else {
            if spec["required"] == true {
                v.push(format!("missing required parameter {k:?}"));
            }
            continue;
        };
        if spec["format"] == "e164" && !is_e164(val) {
            v.push(format!("{k} {val:?} is not E.164"));
        }
        if let Some(max) = spec["max_chars"].as_u64() {
            if val.chars().count() as u64 > max {
                v.push(format!("{k} longer than {max} characters"));
            }
        }
        if let Some(root) = spec["root_element"].as_str() {
            let after_decl = val
                .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
                .unwrap_or(val);
            if !after_decl.starts_with(&format!("<{root}>"))
                || !after_decl.ends_with(&format!("</{root}>"))
            {
                v.push(format!("{k} is not a <{root}> document"));
            }
        }
    }
    (v, which)
}

async fn provide(
    s: Arc<ProviderState>,
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Authentication first, as the providers do.
    let auth = header(&headers, "authorization").map(str::to_string);
    let (violations, twilio_resource) = match s.kind {
        Kind::Ntfy => (check_ntfy(&method, &path, &headers, &body), ""),
        Kind::Twilio => check_twilio(&method, &path, &headers, &body),
    };
    s.got.lock().unwrap().push(Request {
        path: path.clone(),
        headers: headers.clone(),
        body: body.clone(),
        violations: violations.clone(),
    });
    match s.kind {
        Kind::Ntfy => {
            let want = s.ntfy_token.as_ref().map(|t| format!("Bearer {t}"));
            if want.is_some() && auth != want {
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(fixture("ntfy-error.json")),
                )
                    .into_response();
            }
            if !violations.is_empty() {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"code": 40000, "http": 400, "error": violations.join("; ")})),
                )
                    .into_response();
            }
        }
        Kind::Twilio => {
            if auth.as_deref() != Some(basic(SID, AUTH_TOKEN).as_str()) {
                return (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"code": 20003, "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})),
                )
                    .into_response();
            }
            if !violations.is_empty() {
                let mut e = fixture("twilio-error.json");
                e["message"] = json!(violations.join("; "));
                return (StatusCode::BAD_REQUEST, axum::Json(e)).into_response();
            }
        }
    }
    let answer = s
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(s.otherwise.clone());
    match answer {
        Answer::Ok => match s.kind {
            Kind::Ntfy => {
                let b: Value = serde_json::from_slice(&body).unwrap();
                (
                    StatusCode::OK,
                    axum::Json(json!({"id": "hwQ2YpKdmg", "time": 1_796_526_000, "event": "message", "topic": b["topic"], "title": b["title"], "message": b["message"], "priority": b["priority"]})),
                )
                    .into_response()
            }
            Kind::Twilio => {
                let shape = if twilio_resource == "Messages" {
                    fixture("twilio-messages-request.json")
                } else {
                    fixture("twilio-calls-request.json")
                };
                let code = shape["success"]["status"].as_u64().unwrap() as u16;
                (
                    StatusCode::from_u16(code).unwrap(),
                    axum::Json(shape["success"]["example"].clone()),
                )
                    .into_response()
            }
        },
        Answer::Json(code, v) => (StatusCode::from_u16(code).unwrap(), axum::Json(v)).into_response(),
        Answer::TooMany(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", secs.to_string())],
            axum::Json(match s.kind {
                Kind::Twilio => json!({"code": 20429, "message": "Too Many Requests", "more_info": "https://www.twilio.com/docs/errors/20429", "status": 429}),
                Kind::Ntfy => json!({"code": 42901, "http": 429, "error": "limit reached: too many requests"}),
            }),
        )
            .into_response(),
        Answer::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Answer::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::OK.into_response()
        }
    }
}

// ---- senders --------------------------------------------------------------------------------

fn paging_for(ntfy: Option<&Provider>, twilio: Option<&Provider>) -> PagingSettings {
    PagingSettings {
        ntfy: ntfy.map(|p| NtfySettings {
            server: p.base(),
            token: Some(Secret(NTFY_TOKEN.into())),
        }),
        twilio: twilio.map(|p| TwilioSettings {
            base_url: p.base(),
            account_sid: SID.into(),
            auth_token: Secret(AUTH_TOKEN.into()),
            from: FROM.into(),
        }),
    }
}

fn senders(timeout: Duration, paging: PagingSettings, email: Option<EmailSender>) -> Senders {
    Senders::new(
        SenderOptions {
            http: HttpOptions {
                timeout,
                connect_timeout: timeout,
            },
            allow_private_targets: true,
        },
        email,
    )
    .unwrap()
    .with_paging(paging)
    .unwrap()
}

async fn deliver(s: &Senders, target: &str, d: &Delivery) -> Result<(), SendError> {
    tokio::time::timeout(PATIENCE, s.deliver(target, d, "page-key", Utc::now()))
        .await
        .expect("the send ends (a hang guard)")
}

fn ntfy_page(severity: &str) -> Delivery {
    delivery_for("ntfy", &page(severity, "en"), None).unwrap()
}

// ---- ntfy -----------------------------------------------------------------------------------

#[tokio::test]
async fn ntfy_pages_match_the_documented_publish_shape() {
    let p = Provider::start(Kind::Ntfy, vec![], Answer::Ok).await;
    let s = senders(Duration::from_secs(10), paging_for(Some(&p), None), None);
    deliver(&s, "ann-pages", &ntfy_page("SEV1")).await.unwrap();
    deliver(&s, "ann-pages", &ntfy_page("SEV2")).await.unwrap();
    p.assert_all_well_formed();
    let got = p.received();
    assert_eq!(got.len(), 2);
    for r in &got {
        assert_eq!(r.path, "/");
        assert_eq!(
            header(&r.headers, "authorization"),
            Some(format!("Bearer {NTFY_TOKEN}").as_str())
        );
        let b = r.json();
        assert_eq!(b["topic"], "ann-pages");
        assert_eq!(b["click"], "https://keel.example.com/admin/incidents/12");
        assert_eq!(
            b["actions"][0]["url"],
            "https://keel.example.com/ack/12?t=AbC123xyz"
        );
        assert!(b["message"]
            .as_str()
            .unwrap()
            .contains("About 2,000 users affected"));
        assert!(!String::from_utf8_lossy(&r.body).contains(NTFY_TOKEN));
    }
    assert_eq!(got[0].json()["priority"], 5, "SEV1 is max priority");
    assert_eq!(got[1].json()["priority"], 4, "below SEV1 is high priority");
    // The documented example passes the same checks (the checker is not vacuous).
    let mut v = Vec::new();
    let shape = fixture("ntfy-publish.json");
    check_object("example", &shape["example"], &shape["fields"], &mut v);
    assert!(v.is_empty(), "{v:?}");
    check_object(
        "bad",
        &json!({"title": 1, "priority": 9}),
        &shape["fields"],
        &mut v,
    );
    assert_eq!(v.len(), 3, "{v:?}");
}

#[tokio::test]
async fn ntfy_without_a_token_sends_no_authorization() {
    let p = Provider::start_with(Kind::Ntfy, None, vec![], Answer::Ok).await;
    let mut paging = paging_for(Some(&p), None);
    paging.ntfy.as_mut().unwrap().token = None;
    let s = senders(Duration::from_secs(10), paging, None);
    deliver(&s, "open-topic", &ntfy_page("SEV2")).await.unwrap();
    p.assert_all_well_formed();
    assert_eq!(header(&p.received()[0].headers, "authorization"), None);
}

#[tokio::test]
async fn ntfy_answers_are_classified() {
    let s_for = |p: &Provider| senders(Duration::from_secs(1), paging_for(Some(p), None), None);
    // A refused token: ntfy's 401 body, permanent.
    let p = Provider::start_with(Kind::Ntfy, Some("tk_other"), vec![], Answer::Ok).await;
    let e = deliver(&s_for(&p), "t", &ntfy_page("SEV1"))
        .await
        .unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(e.to_string().contains("40101"), "{e}");
    assert!(!e.to_string().contains(NTFY_TOKEN), "{e}");
    // 429 with Retry-After, 500, and a hang: retryable.
    let p = Provider::start(Kind::Ntfy, vec![], Answer::TooMany(30)).await;
    let e = deliver(&s_for(&p), "t", &ntfy_page("SEV1"))
        .await
        .unwrap_err();
    assert_eq!(
        e,
        SendError::Retryable {
            reason: e.to_string(),
            retry_after: Some(Duration::from_secs(30))
        }
    );
    let p = Provider::start(Kind::Ntfy, vec![], Answer::Status(500)).await;
    let e = deliver(&s_for(&p), "t", &ntfy_page("SEV1"))
        .await
        .unwrap_err();
    assert!(!e.is_permanent() && e.to_string().contains("500"), "{e}");
    let p = Provider::start(Kind::Ntfy, vec![], Answer::Hang).await;
    let e = deliver(&s_for(&p), "t", &ntfy_page("SEV1"))
        .await
        .unwrap_err();
    assert!(
        !e.is_permanent() && e.to_string().contains("timed out"),
        "{e}"
    );
    // A topic ntfy would refuse never leaves.
    let p = Provider::start(Kind::Ntfy, vec![], Answer::Ok).await;
    let e = deliver(&s_for(&p), "bad/topic", &ntfy_page("SEV1"))
        .await
        .unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(p.received().is_empty());
}

// ---- Twilio ---------------------------------------------------------------------------------

#[tokio::test]
async fn sms_and_calls_match_twilios_documented_requests() {
    let p = Provider::start(Kind::Twilio, vec![], Answer::Ok).await;
    let s = senders(Duration::from_secs(10), paging_for(None, Some(&p)), None);
    let en = page("SEV1", "en");
    let ja = page("SEV2", "ja");
    for m in [&en, &ja] {
        deliver(&s, "+819012345678", &delivery_for("sms", m, None).unwrap())
            .await
            .unwrap();
        deliver(
            &s,
            "+819012345678",
            &delivery_for("voice", m, None).unwrap(),
        )
        .await
        .unwrap();
    }
    p.assert_all_well_formed();
    let got = p.received();
    assert_eq!(got.len(), 4);
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            format!("/2010-04-01/Accounts/{SID}/Messages.json"),
            format!("/2010-04-01/Accounts/{SID}/Calls.json"),
            format!("/2010-04-01/Accounts/{SID}/Messages.json"),
            format!("/2010-04-01/Accounts/{SID}/Calls.json"),
        ]
    );
    for r in &got {
        let f = r.form();
        assert_eq!(f["To"], "+819012345678");
        assert_eq!(f["From"], FROM);
        assert_eq!(
            header(&r.headers, "authorization"),
            Some(basic(SID, AUTH_TOKEN).as_str())
        );
        assert!(!String::from_utf8_lossy(&r.body).contains(AUTH_TOKEN));
    }
    let sms = got[0].form()["Body"].clone();
    assert_eq!(
        sms,
        "SEV1 Shop, Checkout down, ~2,000 users. Ack: https://keel.example.com/ack/12?t=AbC123xyz"
    );
    assert!(sms.len() <= 160);
    let twiml = got[1].form()["Twiml"].clone();
    assert_eq!(twiml.matches("<Say language=\"en-US\">").count(), 2);
    assert!(twiml.contains("action=\"https://keel.example.com/ack/12?t=AbC123xyz\""));
    assert!(got[2].form()["Body"].contains("約2,000人に影響"));
    assert!(got[3].form()["Twiml"].contains("<Say language=\"ja-JP\">"));
}

#[tokio::test]
async fn twilio_answers_are_classified() {
    let sms = delivery_for("sms", &page("SEV1", "en"), None).unwrap();
    let call = delivery_for("voice", &page("SEV1", "en"), None).unwrap();
    let cases: Vec<(Answer, Option<bool>, &str)> = vec![
        (Answer::Ok, None, ""),
        (
            Answer::Json(400, fixture("twilio-error.json")),
            Some(true),
            "21211",
        ),
        (Answer::TooMany(45), Some(false), "20429"),
        (Answer::Status(500), Some(false), "HTTP 500"),
        (Answer::Status(503), Some(false), "HTTP 503"),
        (Answer::Hang, Some(false), "timed out"),
    ];
    for (answer, permanent, says) in cases {
        for d in [&sms, &call] {
            let p = Provider::start(Kind::Twilio, vec![], answer.clone()).await;
            let s = senders(Duration::from_secs(1), paging_for(None, Some(&p)), None);
            let r = deliver(&s, "+15558675310", d).await;
            p.assert_all_well_formed();
            match (permanent, r) {
                (None, Ok(())) => {}
                (Some(perm), Err(e)) => {
                    assert_eq!(e.is_permanent(), perm, "{answer:?}: {e}");
                    assert!(e.to_string().contains(says), "{answer:?}: {e}");
                    assert!(e.to_string().starts_with("Twilio: "), "{e}");
                    assert!(
                        !e.to_string().contains(AUTH_TOKEN) && !e.to_string().contains(SID),
                        "{e}"
                    );
                    if let Answer::TooMany(secs) = answer {
                        let SendError::Retryable { retry_after, .. } = e else {
                            unreachable!()
                        };
                        assert_eq!(retry_after, Some(Duration::from_secs(secs)));
                    }
                }
                (want, got) => panic!("{answer:?}: expected {want:?}, got {got:?}"),
            }
        }
    }
}

#[tokio::test]
async fn a_wrong_auth_token_is_refused_for_good() {
    let p = Provider::start(Kind::Twilio, vec![], Answer::Ok).await;
    let mut paging = paging_for(None, Some(&p));
    paging.twilio.as_mut().unwrap().auth_token = Secret("wrong".into());
    let s = senders(Duration::from_secs(5), paging, None);
    let e = deliver(
        &s,
        "+15558675310",
        &delivery_for("sms", &page("SEV1", "en"), None).unwrap(),
    )
    .await
    .unwrap_err();
    assert!(e.is_permanent(), "{e}");
    assert!(e.to_string().contains("20003"), "{e}");
    assert!(!e.to_string().contains("wrong"), "{e}");
}

#[tokio::test]
async fn a_bad_number_never_leaves() {
    let p = Provider::start(Kind::Twilio, vec![], Answer::Ok).await;
    let s = senders(Duration::from_secs(5), paging_for(None, Some(&p)), None);
    let e = deliver(
        &s,
        "09012345678",
        &delivery_for("sms", &page("SEV1", "en"), None).unwrap(),
    )
    .await
    .unwrap_err();
    assert!(e.is_permanent() && e.to_string().contains("E.164"), "{e}");
    assert!(p.received().is_empty());
}

// ---- configuration and secrets --------------------------------------------------------------

#[tokio::test]
async fn unconfigured_providers_keep_pages_waiting() {
    let s = senders(Duration::from_secs(5), PagingSettings::default(), None);
    for (kind, target, says) in [
        ("ntfy", "ann-pages", "[paging.ntfy]"),
        ("sms", "+15558675310", "[paging.twilio]"),
        ("voice", "+15558675310", "[paging.twilio]"),
        ("email", "ann@example.com", "[notify.smtp]"),
    ] {
        let d = delivery_for(kind, &page("SEV1", "en"), None).unwrap();
        let e = deliver(&s, target, &d).await.unwrap_err();
        assert!(!e.is_permanent(), "{kind}: {e}");
        assert!(e.to_string().contains(says), "{kind}: {e}");
    }
}

#[tokio::test]
async fn bad_paging_settings_are_refused_at_start() {
    let base = Senders::new(SenderOptions::default(), None).unwrap();
    let e = base
        .with_paging(PagingSettings {
            ntfy: Some(NtfySettings {
                server: "ntfy.sh".into(),
                token: None,
            }),
            twilio: None,
        })
        .unwrap_err();
    assert!(e.contains("[paging.ntfy] server"), "{e}");
    let base = Senders::new(SenderOptions::default(), None).unwrap();
    let e = base
        .with_paging(PagingSettings {
            ntfy: None,
            twilio: Some(TwilioSettings {
                base_url: "https://api.twilio.com".into(),
                account_sid: SID.into(),
                auth_token: Secret(AUTH_TOKEN.into()),
                from: "5550006".into(),
            }),
        })
        .unwrap_err();
    assert!(e.contains("[paging.twilio] from"), "{e}");
    assert!(!e.contains(AUTH_TOKEN));
}

#[test]
fn no_secret_given_to_the_senders_reaches_an_outbox_payload() {
    let secrets = [NTFY_TOKEN, SID, AUTH_TOKEN, HOOK_SECRET, "SECRET"];
    for locale in ["en", "ja"] {
        for kind in CONTACT_KINDS {
            let d = delivery_for(kind, &page("SEV1", locale), Some(HOOK_SECRET)).unwrap();
            let row = outbox::item(&d, "k".into(), "target".into(), None, Utc::now());
            let stored = row.payload.to_string();
            for s in secrets {
                assert!(
                    !stored.contains(s),
                    "{kind}/{locale} stores {s:?}: {stored}"
                );
            }
            assert!(
                stored.contains("https://keel.example.com/ack/12?t=AbC123xyz"),
                "{kind}"
            );
        }
    }
}

// ---- email, webhook and chat pages on real peers --------------------------------------------

#[tokio::test]
async fn email_pages_arrive_through_smtp_in_the_persons_language() {
    let sink = SmtpSink::start(&[]).await;
    let email = EmailSender::new(&SmtpSettings {
        port: Some(sink.port),
        tls: SmtpTls::None,
        timeout: Duration::from_secs(10),
        ..SmtpSettings::new("127.0.0.1", "Keel <keel@acme.example>")
    })
    .unwrap();
    let s = senders(
        Duration::from_secs(10),
        PagingSettings::default(),
        Some(email),
    );
    for (to, locale) in [("ann@example.jp", "ja"), ("carol@example.com", "en")] {
        let d = delivery_for("email", &page("SEV1", locale), None).unwrap();
        deliver(&s, to, &d).await.unwrap();
    }
    let got = sink.wait_for(2).await;
    assert_eq!(got[0]["rcpt_tos"][0], "ann@example.jp");
    assert_eq!(
        got[0]["headers"]["Subject"],
        "【呼び出し】SEV1 · Shop is down (incident 12)"
    );
    let ja = got[0]["parts"]["text/plain"].as_str().unwrap();
    for want in [
        "影響を受けるサービス：Shop、Checkout",
        "重大度：SEV1",
        "約2,000人のユーザーに影響",
        "確認する：https://keel.example.com/ack/12?t=AbC123xyz",
        "インシデント：https://keel.example.com/admin/incidents/12",
    ] {
        assert!(ja.contains(want), "{want:?} missing: {ja}");
    }
    let html = got[0]["parts"]["text/html"].as_str().unwrap();
    assert!(
        html.contains("href=\"https://keel.example.com/ack/12?t=AbC123xyz\""),
        "{html}"
    );
    assert_eq!(
        got[1]["headers"]["Subject"],
        "[Page] SEV1 · Shop is down (incident 12)"
    );
    let en = got[1]["parts"]["text/plain"].as_str().unwrap();
    assert!(
        en.contains("Acknowledge: https://keel.example.com/ack/12?t=AbC123xyz"),
        "{en}"
    );
    assert!(got[1]["headers"].get("List-Unsubscribe").is_none());
}

#[tokio::test]
async fn webhook_pages_are_signed_and_carry_the_page() {
    let rx = Receiver::ok(HOOK_SECRET).await;
    let s = senders(Duration::from_secs(10), PagingSettings::default(), None);
    let d = delivery_for("webhook", &page("SEV1", "en"), Some(HOOK_SECRET)).unwrap();
    deliver(&s, &rx.url("/pages"), &d).await.unwrap();
    let r = &rx.received()[0];
    assert!(
        r.signature_ok,
        "signature verifies with the person's secret"
    );
    assert!(!String::from_utf8_lossy(&r.body).contains(HOOK_SECRET));
    let b = r.json();
    assert_eq!(b["event"], "page");
    assert_eq!(b["incident_id"], 12);
    assert_eq!(b["severity"], "SEV1");
    assert_eq!(b["what_is_down"], json!(["Shop", "Checkout"]));
    assert_eq!(b["affected_users"], 2000);
    assert_eq!(
        b["incident_url"],
        "https://keel.example.com/admin/incidents/12"
    );
    assert_eq!(b["ack_url"], "https://keel.example.com/ack/12?t=AbC123xyz");
    assert_eq!(
        (b["level"].as_u64(), b["round"].as_u64()),
        (Some(1), Some(1))
    );
}

#[tokio::test]
async fn chat_pages_reach_their_webhooks_with_the_ack_link() {
    let rx = Receiver::ok("unused").await;
    let s = senders(Duration::from_secs(10), PagingSettings::default(), None);
    for kind in ["slack", "discord", "teams"] {
        let d = delivery_for(kind, &page("SEV2", "en"), None).unwrap();
        deliver(&s, &rx.url(&format!("/{kind}")), &d).await.unwrap();
    }
    let got = rx.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        let body = String::from_utf8_lossy(&r.body);
        assert!(
            body.contains("https://keel.example.com/ack/12?t=AbC123xyz"),
            "{}",
            r.path
        );
        assert!(body.contains("SEV2"), "{}", r.path);
    }
}

// ---- through the outbox ---------------------------------------------------------------------

struct Db {
    store: Arc<dyn Store>,
    _dir: tempfile::TempDir,
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_in_dir(dir.path()).await.unwrap();
    Db {
        store: Arc::new(store),
        _dir: dir,
    }
}

fn t0() -> DateTime<Utc> {
    "2026-12-06T03:00:00Z".parse().unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(secs)
}

fn worker() -> WorkerOptions {
    WorkerOptions {
        max_attempts: 5,
        backoff_base: Duration::from_secs(2),
        backoff_cap: Duration::from_secs(600),
        ..WorkerOptions::default()
    }
}

async fn step(db: &Db, s: &Senders, now: DateTime<Utc>) -> keel_notify::Outcome {
    tokio::time::timeout(
        PATIENCE,
        outbox::run_once(&*db.store, s, "w1", now, &worker()),
    )
    .await
    .expect("a worker step ends (a hang guard)")
    .unwrap()
}

#[tokio::test]
async fn a_provider_answering_429_then_500_is_retried_with_backoff_then_delivered() {
    let db = sqlite().await;
    let p = Provider::start(
        Kind::Twilio,
        vec![Answer::TooMany(120), Answer::Status(500)],
        Answer::Ok,
    )
    .await;
    let s = senders(Duration::from_secs(10), paging_for(None, Some(&p)), None);
    let d = delivery_for("sms", &page("SEV1", "en"), None).unwrap();
    let key = idempotency_key("incident:12:cycle:1:round:1:level:1", "ann:sms");
    db.store
        .enqueue(&[outbox::item(&d, key, "+819012345678".into(), None, t0())])
        .await
        .unwrap();

    let o = step(&db, &s, t0()).await;
    assert_eq!((o.claimed, o.retried), (1, 1), "429: {o:?}");
    // Twilio asked for 120 s: nothing is tried before then…
    assert_eq!(step(&db, &s, at(119)).await.claimed, 0);
    // …and then it is; the 500 is retried after a backoff of at most 2·base.
    let o = step(&db, &s, at(121)).await;
    assert_eq!((o.claimed, o.retried), (1, 1), "500: {o:?}");
    let o = step(&db, &s, at(121 + 5)).await;
    assert_eq!((o.claimed, o.sent), (1, 1), "{o:?}");
    assert_eq!(step(&db, &s, at(3600)).await.claimed, 0);

    p.assert_all_well_formed();
    let got = p.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.body, got[0].body, "every retry sends the same page");
    }
    let c = db.store.outbox_counts().await.unwrap();
    assert_eq!((c.pending, c.sent, c.dead), (0, 1, 0));
}

#[tokio::test]
async fn a_hanging_provider_is_cut_by_the_timeout_and_retried() {
    let db = sqlite().await;
    let p = Provider::start(Kind::Ntfy, vec![Answer::Hang], Answer::Ok).await;
    let s = senders(Duration::from_secs(1), paging_for(Some(&p), None), None);
    db.store
        .enqueue(&[outbox::item(
            &ntfy_page("SEV1"),
            idempotency_key("incident:12:page", "ann:ntfy"),
            "ann-pages".into(),
            None,
            t0(),
        )])
        .await
        .unwrap();
    let o = step(&db, &s, t0()).await;
    assert_eq!((o.claimed, o.retried), (1, 1), "{o:?}");
    // What the worker recorded: the timeout, as the reason for the retry.
    let peek = db
        .store
        .claim_outbox("inspector", 10, at(600), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(peek.len(), 1);
    let err = peek[0].last_error.as_deref().unwrap();
    assert!(err.contains("timed out"), "{err}");
    assert!(!err.contains(NTFY_TOKEN), "{err}");
    assert!(peek[0].next_attempt_at <= t0() + chrono::Duration::seconds(2));
    // The inspector's lease runs out; the worker delivers to the recovered provider.
    let o = step(&db, &s, at(700)).await;
    assert_eq!(o.sent, 1, "{o:?}");
    p.assert_all_well_formed();
    assert_eq!(p.received().len(), 2);
}

#[tokio::test]
async fn a_provider_that_keeps_failing_ends_in_the_dead_letters() {
    let db = sqlite().await;
    let p = Provider::start(Kind::Twilio, vec![], Answer::Status(500)).await;
    let s = senders(Duration::from_secs(10), paging_for(None, Some(&p)), None);
    let d = delivery_for("voice", &page("SEV1", "en"), None).unwrap();
    db.store
        .enqueue(&[outbox::item(
            &d,
            "k-voice".into(),
            "+15558675310".into(),
            None,
            t0(),
        )])
        .await
        .unwrap();
    let mut dead = 0;
    for n in 0..8 {
        dead += step(&db, &s, at(n * 3600)).await.dead;
    }
    assert_eq!(dead, 1);
    assert_eq!(p.received().len(), 5, "the retry budget");
    let letters = db.store.dead_letters(10).await.unwrap();
    let err = letters[0].last_error.as_deref().unwrap();
    assert!(err.contains("Twilio: HTTP 500"), "{err}");
}
