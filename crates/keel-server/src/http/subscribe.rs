//! Subscriptions: the public JSON endpoint, the page's form, double opt-in confirmation and
//! one-click unsubscribe.
//!
//! These are the only writes the public can make, so they are rate-limited per client address,
//! every input is checked at the edge, subscriber webhooks may not point at private or loopback
//! addresses (unless the operator allows it), and email addresses get nothing but a
//! confirmation until their owner clicks the link.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use keel_core::public::i18n::{self, Key};
use keel_core::ComponentId;
use keel_notify::email::{self, EmailMessage};
use keel_notify::{idempotency_key, Delivery};
use keel_store::{hash_token, NewSubscriber, StoreError, SubscriberKind};
use rand::RngCore;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::fanout::{base_url, unsubscribe_token};
use crate::http::openapi::wire;
use crate::http::AppState;

/// Per-address limiter for the public write endpoints.
pub type Limiter = DefaultKeyedRateLimiter<IpAddr>;

/// Ten subscriptions a minute per client address, bursts of five.
pub fn limiter() -> Limiter {
    RateLimiter::keyed(
        Quota::per_minute(NonZeroU32::new(10).expect("non-zero"))
            .allow_burst(NonZeroU32::new(5).expect("non-zero")),
    )
}

/// What a subscription request asks for, already checked.
struct Request {
    kind: SubscriberKind,
    address: String,
    components: Vec<ComponentId>,
    locale: String,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

fn rate_limited(state: &AppState, peer: SocketAddr) -> Result<(), ApiError> {
    state.limiter.check_key(&peer.ip()).map_err(|_| {
        ApiError::TooMany(
            "too many subscription requests from this address; try again in a minute".into(),
        )
    })
}

fn check(
    state: &AppState,
    email: Option<String>,
    webhook: Option<String>,
    components: Vec<String>,
    locale: Option<String>,
) -> Result<Request, ApiError> {
    let email = email
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty());
    let webhook = webhook
        .map(|w| w.trim().to_string())
        .filter(|w| !w.is_empty());
    let (kind, address) = match (email, webhook) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad(
                Some("email"),
                "give an email address or a webhook URL, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::bad(
                Some("email"),
                "give an email address or a webhook URL",
            ))
        }
        (Some(e), None) => {
            email::validate(&e).map_err(|err| ApiError::bad(Some("email"), err.to_string()))?;
            if state.config.notify.smtp.is_none() {
                return Err(ApiError::bad(
                    Some("email"),
                    "this status page does not send email; subscribe with a webhook or the feeds",
                ));
            }
            (SubscriberKind::Email, e)
        }
        (None, Some(w)) => {
            keel_notify::guard::check_url(&w, state.config.notify.allow_private_targets)
                .map_err(|err| ApiError::bad(Some("webhook"), err.to_string()))?;
            (SubscriberKind::Webhook, w)
        }
    };
    let public: Vec<&keel_core::config::Component> = state
        .config
        .components
        .iter()
        .filter(|c| c.public)
        .collect();
    // A component group's id (the page offers groups once it has many components) stands for
    // every public component of the group.
    let mut chosen: Vec<ComponentId> = Vec::with_capacity(components.len());
    for (i, id) in components.iter().enumerate() {
        let found: Vec<&ComponentId> = if let Some(c) = public.iter().find(|c| c.id.as_str() == id)
        {
            vec![&c.id]
        } else {
            public
                .iter()
                .filter(|c| {
                    c.group
                        .as_ref()
                        .is_some_and(|g| keel_core::config::group_id(g) == *id)
                })
                .map(|c| &c.id)
                .collect()
        };
        if found.is_empty() {
            return Err(ApiError::bad(
                Some(&format!("components[{i}]")),
                format!("no public component or component group has the id {id:?}"),
            ));
        }
        for c in found {
            if !chosen.contains(c) {
                chosen.push(c.clone());
            }
        }
    }
    let components = chosen;
    let locale = match locale {
        None => state
            .config
            .page
            .locales
            .first()
            .cloned()
            .unwrap_or_else(|| "en".into()),
        Some(l) if state.config.page.locales.contains(&l) => l,
        Some(l) => {
            return Err(ApiError::bad(
                Some("locale"),
                format!(
                    "{l:?} is not offered here: {}",
                    state.config.page.locales.join(", ")
                ),
            ))
        }
    };
    Ok(Request {
        kind,
        address,
        components,
        locale,
    })
}

/// The answer to a subscription: an email subscriber waits for its owner's confirmation; a
/// webhook subscriber is confirmed at once and gets its signing secret, shown only here.
#[derive(Serialize, ToSchema)]
pub struct Subscribed {
    id: i64,
    /// `email` or `webhook`.
    kind: &'static str,
    address: String,
    confirmed: bool,
    /// Email: what happens next.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
    /// Webhook: the components it follows (empty: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    components: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    locale: Option<String>,
    /// Webhook: the key of `X-Keel-Signature`, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unsubscribe_url: Option<String>,
}

/// Stores the subscriber; for email, queues the confirmation. Returns the subscriber's answer.
async fn subscribe(state: &AppState, req: Request) -> Result<Subscribed, ApiError> {
    // A webhook address is vetted again now, with DNS: a name may point inside.
    if req.kind == SubscriberKind::Webhook {
        keel_notify::guard::Guard::new(state.config.notify.allow_private_targets)
            .vet(&req.address)
            .await
            .map_err(|e| ApiError::bad(Some("webhook"), e.to_string()))?;
    }
    let secret = random_hex(32);
    let confirm_token = random_hex(32);
    let now = Utc::now();
    let is_email = req.kind == SubscriberKind::Email;
    let new = NewSubscriber {
        kind: req.kind,
        address: req.address.clone(),
        components: req.components.clone(),
        locale: req.locale.clone(),
        secret: Some(secret.clone()),
        confirmed: !is_email,
        confirm_token_hash: is_email.then(|| hash_token(&confirm_token)),
        unsubscribe_token_hash: hash_token(&unsubscribe_token(&secret)),
        created_at: now,
    };
    let sub = state
        .store
        .create_subscriber(&new)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict {
                field: Some(if is_email { "email" } else { "webhook" }.into()),
                reason: "already subscribed".into(),
            },
            StoreError::Invalid(r) => ApiError::bad(None, r),
            other => ApiError::Internal(other.into()),
        })?;
    let base = base_url(&state.config);
    let unsubscribe_url = format!("{base}/unsubscribe/{}", unsubscribe_token(&secret));
    if is_email {
        let confirm_url = format!("{base}/subscribe/confirm/{confirm_token}");
        let delivery = Delivery::Email(EmailMessage {
            content: email::confirmation(&req.locale, &state.config.page.title, &confirm_url),
            list_unsubscribe: None,
        });
        let key = idempotency_key(&format!("confirm:{}", sub.id), &sub.address);
        let row = keel_notify::outbox::item(&delivery, key, sub.address.clone(), Some(sub.id), now);
        state
            .store
            .enqueue(&[row])
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        state.outbox_wake.notify_one();
        return Ok(Subscribed {
            id: sub.id,
            kind: "email",
            address: sub.address,
            confirmed: false,
            message: Some("check your inbox to confirm the subscription"),
            components: None,
            locale: None,
            secret: None,
            unsubscribe_url: None,
        });
    }
    Ok(Subscribed {
        id: sub.id,
        kind: "webhook",
        address: sub.address,
        confirmed: true,
        message: None,
        components: Some(sub.components.iter().map(ToString::to_string).collect()),
        locale: Some(sub.locale),
        // Shown once: the receiver verifies X-Keel-Signature with it.
        secret: Some(secret),
        unsubscribe_url: Some(unsubscribe_url),
    })
}

/// A subscription: an email address or a webhook URL (one of them), optionally the
/// components (or component groups) to follow and the locale of the messages.
#[derive(serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonBody {
    email: Option<String>,
    webhook: Option<String>,
    #[serde(default)]
    components: Vec<String>,
    locale: Option<String>,
}

/// Subscribe to the status page's updates
///
/// `{"webhook": url}` or `{"email": address}`, optional `components` and `locale`. Public
/// (no token), rate-limited per client address.
#[utoipa::path(post, path = "/api/v1/subscribers", operation_id = "subscribe", tag = "subscribers",
    request_body = JsonBody,
    responses(
        (status = 201, description = "Subscribed (email: once confirmed)", body = Subscribed),
        (status = 400, description = "A field is missing or wrong", body = wire::Error),
        (status = 409, description = "Already subscribed", body = wire::Error),
        (status = 413, description = "Body over 64 KiB", body = wire::Error),
        (status = 429, description = "Too many subscriptions from this address", body = wire::Error),
    ),
    security(()), extensions(("x-keel-role" = json!("public"))))]
pub async fn create(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<Subscribed>), ApiError> {
    rate_limited(&state, peer)?;
    let b: JsonBody = crate::http::body::json(&bytes)?;
    let req = check(&state, b.email, b.webhook, b.components, b.locale)?;
    Ok((StatusCode::CREATED, Json(subscribe(&state, req).await?)))
}

/// `POST /subscribe`: the page's form (urlencoded; `components` may repeat).
pub async fn form(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    bytes: Bytes,
) -> Response {
    let mut email = None;
    let mut webhook = None;
    let mut components = Vec::new();
    let mut locale = None;
    for (k, v) in url::form_urlencoded::parse(&bytes) {
        match k.as_ref() {
            "email" => email = Some(v.into_owned()),
            "webhook" => webhook = Some(v.into_owned()),
            "components" => components.push(v.into_owned()),
            "locale" => locale = Some(v.into_owned()),
            _ => {}
        }
    }
    let lang = locale.clone().unwrap_or_else(|| "en".into());
    let result = match rate_limited(&state, peer)
        .and_then(|_| check(&state, email, webhook, components, locale))
    {
        Ok(req) => subscribe(&state, req).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => {
            let key = if v.kind == "email" {
                Key::SubscribePending
            } else {
                Key::WebhookSubscribed
            };
            let mut extra = String::new();
            if let Some(secret) = v.secret.as_deref() {
                extra = format!(
                    "<p><code>X-Keel-Signature</code> secret: <code>{}</code></p>",
                    keel_core::public::feed::escape(secret)
                );
            }
            notice(
                StatusCode::CREATED,
                &state,
                &lang,
                i18n::t(&lang, key),
                &extra,
            )
        }
        Err(e) => {
            let status = match &e {
                ApiError::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
                ApiError::Conflict { .. } => StatusCode::CONFLICT,
                ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            };
            let text = match &e {
                ApiError::Internal(cause) => {
                    tracing::error!(error = ?cause, "subscription failed");
                    "internal error".to_string()
                }
                other => other.to_string(),
            };
            notice(status, &state, &lang, &text, "")
        }
    }
}

/// A small page in the visitor's language, linking back to the status page.
fn notice(
    status: StatusCode,
    state: &AppState,
    lang: &str,
    text: &str,
    extra_html: &str,
) -> Response {
    let esc = keel_core::public::feed::escape;
    let html = format!(
        "<!doctype html><html lang=\"{l}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{t}</title></head><body><main><h1>{t}</h1><p>{m}</p>{extra_html}<p><a href=\"{base}/?lang={l}\">{back}</a></p></main></body></html>",
        l = esc(lang),
        t = esc(&state.config.page.title),
        m = esc(text),
        base = esc(&base_url(&state.config)),
        back = esc(&state.config.page.title),
    );
    (status, Html(html)).into_response()
}

/// What a link-token page does with a well-formed token.
enum LinkAction {
    Confirm,
    Unsubscribe,
}

/// The pages behind the links in emails: a malformed or unknown token is a 404 (or, for
/// unsubscribing, simply "unsubscribed": the goal is met), a store failure a 503.
async fn link_page(state: &AppState, token: &str, action: LinkAction) -> Response {
    let lang = state
        .config
        .page
        .locales
        .first()
        .cloned()
        .unwrap_or_else(|| "en".into());
    let (invalid, done) = match action {
        LinkAction::Confirm => (
            "This confirmation link is not valid.",
            Key::SubscriptionConfirmed,
        ),
        LinkAction::Unsubscribe => ("This unsubscribe link is not valid.", Key::Unsubscribed),
    };
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return notice(StatusCode::NOT_FOUND, state, &lang, invalid, "");
    }
    let hash = hash_token(token);
    let result = match action {
        LinkAction::Confirm => state.store.confirm_subscriber(&hash, Utc::now()).await,
        LinkAction::Unsubscribe => state.store.unsubscribe(&hash).await,
    };
    match (result, action) {
        (Ok(s), _) => notice(
            StatusCode::OK,
            state,
            &s.locale,
            i18n::t(&s.locale, done),
            "",
        ),
        (Err(StoreError::NotFound(_)), LinkAction::Unsubscribe) => {
            notice(StatusCode::OK, state, &lang, i18n::t(&lang, done), "")
        }
        (Err(StoreError::NotFound(_)), LinkAction::Confirm) => notice(
            StatusCode::NOT_FOUND,
            state,
            &lang,
            "This confirmation link is not valid or has already been used to unsubscribe.",
            "",
        ),
        (Err(e), _) => {
            tracing::error!(error = %e, "cannot follow a subscription link");
            notice(
                StatusCode::SERVICE_UNAVAILABLE,
                state,
                &lang,
                "Please try again in a minute.",
                "",
            )
        }
    }
}

/// `GET /subscribe/confirm/{token}`: the double opt-in link.
pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    link_page(&state, &token, LinkAction::Confirm).await
}

/// `GET` or `POST /unsubscribe/{token}` (POST for one-click unsubscribe, RFC 8058).
pub async fn unsubscribe(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    link_page(&state, &token, LinkAction::Unsubscribe).await
}

/// The outbox: messages by state, and the last dead letters.
#[derive(Serialize, ToSchema)]
pub struct Outbox {
    pending: u64,
    sending: u64,
    sent: u64,
    dead: u64,
    /// The latest 100 messages given up on.
    dead_letters: Vec<DeadLetter>,
}

/// A message given up on.
#[derive(Serialize, ToSchema)]
pub struct DeadLetter {
    id: i64,
    channel: String,
    /// Chat webhook URLs show only their host.
    target: String,
    attempts: u32,
    last_error: Option<String>,
    created_at: chrono::DateTime<Utc>,
    finished_at: Option<chrono::DateTime<Utc>>,
}

/// The outbox: counts and dead letters
#[utoipa::path(get, path = "/api/v1/outbox", operation_id = "outbox", tag = "subscribers",
    responses(
        (status = 200, description = "Counts and the dead-letter list", body = Outbox),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the viewer role", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("viewer"))))]
pub async fn outbox(
    caller: crate::http::auth::Caller,
    State(state): State<AppState>,
) -> Result<Json<Outbox>, ApiError> {
    caller.require(crate::http::auth::Role::Viewer)?;
    let counts = state
        .store
        .outbox_counts()
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let dead = state
        .store
        .dead_letters(100)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let dead_letters = dead
        .into_iter()
        .map(|d| DeadLetter {
            id: d.id,
            target: redact(&d.channel, &d.target),
            channel: d.channel,
            attempts: d.attempts,
            last_error: d.last_error,
            created_at: d.created_at,
            finished_at: d.finished_at,
        })
        .collect();
    Ok(Json(Outbox {
        pending: counts.pending,
        sending: counts.sending,
        sent: counts.sent,
        dead: counts.dead,
        dead_letters,
    }))
}

/// Chat webhook URLs carry tokens: show only their host.
fn redact(channel: &str, target: &str) -> String {
    match channel {
        "slack" | "discord" | "teams" | "ops_webhook" => url::Url::parse(target)
            .ok()
            .and_then(|u| u.host_str().map(|h| format!("{}://{h}/…", u.scheme())))
            .unwrap_or_else(|| "…".into()),
        _ => target.to_string(),
    }
}

/// Every subscriber.
#[derive(Serialize, ToSchema)]
pub struct Subscribers {
    subscribers: Vec<Subscriber>,
}

/// A subscriber, without its secret.
#[derive(Serialize, ToSchema)]
pub struct Subscriber {
    id: i64,
    /// `email` or `webhook`.
    kind: &'static str,
    address: String,
    /// Empty: every component.
    components: Vec<String>,
    locale: String,
    confirmed: bool,
    created_at: chrono::DateTime<Utc>,
}

/// Every subscriber
#[utoipa::path(get, path = "/api/v1/subscribers", operation_id = "list_subscribers", tag = "subscribers",
    responses(
        (status = 200, description = "Every subscriber, confirmed or not", body = Subscribers),
        (status = 401, description = "No or unknown bearer token", body = wire::Error),
        (status = 403, description = "Needs the admin role", body = wire::Error),
    ),
    security(("bearer" = [])), extensions(("x-keel-role" = json!("admin"))))]
pub async fn list(
    caller: crate::http::auth::Caller,
    State(state): State<AppState>,
) -> Result<Json<Subscribers>, ApiError> {
    caller.require(crate::http::auth::Role::Admin)?;
    let subs = state
        .store
        .subscribers(false)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
    let subscribers = subs
        .into_iter()
        .map(|s| Subscriber {
            id: s.id,
            kind: s.kind.as_str(),
            address: s.address,
            components: s.components.iter().map(ToString::to_string).collect(),
            locale: s.locale,
            confirmed: s.confirmed,
            created_at: s.created_at,
        })
        .collect();
    Ok(Json(Subscribers { subscribers }))
}
