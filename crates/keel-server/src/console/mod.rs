//! The responder console at `/admin`: server-rendered pages that work without JavaScript
//! (a small static script only refreshes them on incident changes, by server-sent events).
//!
//! Security, in the order a request meets it:
//! - every answer carries a strict CSP (no inline script or style: the assets are
//!   `/admin/console.css` and `/admin/console.js`), `frame-ancestors 'none'`, nosniff,
//!   `Referrer-Policy: no-referrer` and `Cache-Control: no-store`;
//! - sessions are random tokens in a `__Host-` cookie (`Secure; HttpOnly; SameSite=Strict;
//!   Path=/`), stored only as their SHA-256 in the store, so every instance on one PostgreSQL
//!   accepts them and removing a user ends them;
//! - every POST carries the session's CSRF token in a hidden field, compared in constant time,
//!   and is refused when an `Origin` header names another origin; the sign-in form, which has
//!   no session yet, uses a double-submit cookie instead;
//! - sign-in is rate-limited per client address and per user name (429), and an unknown name
//!   costs the same argon2 work as a wrong password;
//! - roles are the API's: a viewer reads, a responder acts, an admin may override the
//!   disclosure check. Every action goes through the incident book with the user's name as
//!   the actor, so the timeline says who did it.

mod escalation;
pub mod form;
mod html;
mod oncall;
pub mod password;
mod screens;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{TimeDelta, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use keel_store::{hash_token, NewSession, Session};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::http::auth::Role;
use crate::http::AppState;
use form::Form;
use html::Lang;

/// The session cookie. `__Host-` makes browsers refuse it unless it is Secure, has Path=/
/// and no Domain, so a sibling subdomain cannot plant or widen it.
pub const SESSION_COOKIE: &str = "__Host-keel_session";
/// The sign-in form's double-submit token (there is no session to hold one yet).
pub const LOGIN_COOKIE: &str = "__Host-keel_login";
/// How long a session lasts from sign-in.
const SESSION_TTL: TimeDelta = TimeDelta::hours(12);

/// Sign-in attempts: a burst, then one more every `LOGIN_REFILL`.
const LOGIN_BURST_PER_NAME: u32 = 5;
const LOGIN_BURST_PER_ADDRESS: u32 = 20;
const LOGIN_REFILL: Duration = Duration::from_secs(12);

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the console keeps beside [`AppState`].
pub struct Console {
    by_address: DefaultKeyedRateLimiter<IpAddr>,
    by_name: DefaultKeyedRateLimiter<String>,
    rules: keel_core::public::DisclosureRules,
}

/// The console's routes, to merge into the main router.
pub fn router(state: &AppState) -> Router<AppState> {
    let quota = |burst: u32| {
        Quota::with_period(LOGIN_REFILL)
            .expect("non-zero period")
            .allow_burst(NonZeroU32::new(burst).expect("non-zero burst"))
    };
    let console = Arc::new(Console {
        by_address: RateLimiter::keyed(quota(LOGIN_BURST_PER_ADDRESS)),
        by_name: RateLimiter::keyed(quota(LOGIN_BURST_PER_NAME)),
        rules: keel_core::public::DisclosureRules::from_config(&state.config),
    });
    Router::new()
        .route("/admin", get(screens::overview))
        .route("/admin/", get(|| async { Redirect::to("/admin") }))
        .route("/admin/login", get(login_page).post(login))
        .route("/admin/logout", post(logout))
        .route("/admin/console.css", get(css))
        .route("/admin/console.js", get(js))
        .route("/admin/events", get(events))
        .route("/admin/monitors", get(screens::monitors))
        .route(
            "/admin/maintenance",
            get(screens::maintenance).post(screens::schedule_maintenance),
        )
        .route("/admin/oncall", get(oncall::page))
        .route("/admin/oncall/overrides", post(oncall::add))
        .route("/admin/oncall/overrides/{id}/remove", post(oncall::remove))
        .route("/admin/incidents", post(screens::declare))
        .route("/admin/incidents/{id}", get(screens::incident))
        .route("/admin/incidents/{id}/postmortem", get(screens::postmortem))
        .route("/admin/incidents/{id}/{*rest}", post(screens::act))
        .layer(axum::middleware::map_response(security_headers))
        .layer(Extension(console))
}

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    res
}

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
}

/// 32 random bytes in hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Equal strings, compared without an early exit (hashes first, so lengths do not leak).
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}={value}; Secure; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}"
    ))
    .expect("cookie characters are hex")
}

/// The language of a console page: `?lang=` wins over `Accept-Language`.
fn lang_of(headers: &HeaderMap, query: Option<&str>) -> Lang {
    let asked = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| v.into_owned())
    });
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let l = keel_core::public::i18n::negotiate(
        accept,
        asked.as_deref(),
        &["en".to_string(), "ja".to_string()],
    );
    if l == "ja" {
        Lang::Ja
    } else {
        Lang::En
    }
}

/// A signed-in user, from the session cookie. Without a valid session the request is sent to
/// the sign-in page (a deleted user's or an expired session counts as none).
pub struct User {
    pub name: String,
    pub role: Role,
    pub csrf: String,
    pub lang: Lang,
}

impl User {
    /// 403 with a page that says which role is needed.
    // The error is the page to answer with, built only on the refusal path.
    #[allow(clippy::result_large_err)]
    pub fn require(&self, role: Role) -> Result<(), Response> {
        if self.role >= role {
            return Ok(());
        }
        let msg = match self.lang {
            Lang::En => format!("This needs the {role} role; you are a {}.", self.role),
            Lang::Ja => format!(
                "この操作には {role} ロールが必要です（現在: {}）。",
                self.role
            ),
        };
        Err(html::message_page(self.lang, StatusCode::FORBIDDEN, &msg))
    }
}

pub struct SignInFirst(Lang);

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        let to = match self.0 {
            Lang::En => "/admin/login",
            Lang::Ja => "/admin/login?lang=ja",
        };
        Redirect::to(to).into_response()
    }
}

async fn session_of(state: &AppState, headers: &HeaderMap) -> Option<Session> {
    let token = cookie(headers, SESSION_COOKIE)?;
    let hash = hash_token(token);
    let now = Utc::now();
    match state.store.session(&hash, now).await {
        Ok(Some(s)) => {
            if let Err(e) = state.store.touch_session(&hash, now).await {
                tracing::debug!(error = %e, "cannot record session use");
            }
            Some(s)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read a console session");
            None
        }
    }
}

impl FromRequestParts<AppState> for User {
    type Rejection = SignInFirst;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, SignInFirst> {
        let lang = lang_of(&parts.headers, parts.uri.query());
        let s = session_of(state, &parts.headers)
            .await
            .ok_or(SignInFirst(lang))?;
        let role: Role = s.user.role.parse().map_err(|_| SignInFirst(lang))?;
        // Probes have tokens, never console accounts (`keel user add` refuses the role).
        if role == Role::Probe {
            return Err(SignInFirst(lang));
        }
        Ok(User {
            name: s.user.name,
            role,
            csrf: s.csrf_token,
            lang,
        })
    }
}

/// Whether an `Origin` header, when there is one and names an origin, is this server (a form
/// posted from another site is refused even before the CSRF token is looked at).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin = origin.to_str().unwrap_or("");
    // Browsers send `Origin: null` for forms on a page with `Referrer-Policy: no-referrer`
    // (the console's own pages): nothing to compare, so the CSRF token alone decides.
    if origin == "null" {
        return true;
    }
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// Checks a POST's origin and CSRF token against the user's session and parses its form.
#[allow(clippy::result_large_err)] // the error is the 403 page to answer with
pub fn checked_form(user: &User, headers: &HeaderMap, bytes: &Bytes) -> Result<Form, Response> {
    let form = Form::parse(bytes);
    let token_ok = form.get("csrf").is_some_and(|t| same(t, &user.csrf));
    if !same_origin(headers) || !token_ok {
        let msg = match user.lang {
            Lang::En => "This form is out of date or came from another site, so nothing was changed. Go back, reload the page and try again.",
            Lang::Ja => "フォームの有効期限が切れているか、別のサイトから送信されたため、何も変更していません。ページを再読み込みしてからもう一度お試しください。",
        };
        return Err(html::message_page(user.lang, StatusCode::FORBIDDEN, msg));
    }
    Ok(form)
}

/// [`checked_form`] for a form that changes something: a viewer is refused after the CSRF
/// check, as every acting form of the console does.
#[allow(clippy::result_large_err)] // the error is the 403 page to answer with
pub fn responder_form(user: &User, headers: &HeaderMap, bytes: &Bytes) -> Result<Form, Response> {
    let form = checked_form(user, headers, bytes)?;
    user.require(Role::Responder)?;
    Ok(form)
}

#[derive(serde::Deserialize)]
struct LoginQuery {
    #[serde(default)]
    lang: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<LoginQuery>,
) -> Response {
    let lang = lang_of(&headers, q.lang.map(|l| format!("lang={l}")).as_deref());
    if session_of(&state, &headers).await.is_some() {
        return Redirect::to("/admin").into_response();
    }
    login_form(lang, StatusCode::OK, None, "")
}

fn login_form(lang: Lang, status: StatusCode, error: Option<&str>, name: &str) -> Response {
    let token = random_token();
    let mut res = html::login_page(lang, status, &token, error, name);
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &token, 3600));
    res
}

async fn login(
    State(state): State<AppState>,
    Extension(console): Extension<Arc<Console>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let form = Form::parse(&bytes);
    let lang = match form.get("lang") {
        Some("ja") => Lang::Ja,
        _ => lang_of(&headers, None),
    };
    let name = form.get("name").unwrap_or("").trim().to_string();
    let double_submit = matches!(
        (cookie(&headers, LOGIN_COOKIE), form.get("csrf")),
        (Some(c), Some(f)) if same(c, f)
    );
    if !same_origin(&headers) || !double_submit {
        let msg = html::w(
            lang,
            "The sign-in form expired or came from another site. Please try again.",
            "サインインフォームの有効期限が切れているか、別のサイトから送信されました。もう一度お試しください。",
        );
        return login_form(lang, StatusCode::FORBIDDEN, Some(msg), &name);
    }
    // Both limits are counted before the password is looked at, so guessing costs the same
    // whether the guess is right or not.
    let limited = console.by_address.check_key(&peer.ip()).is_err()
        || console.by_name.check_key(&name.to_lowercase()).is_err();
    if limited {
        let msg = html::w(
            lang,
            "Too many sign-in attempts. Wait a minute and try again.",
            "サインインの試行回数が多すぎます。1分ほど待ってからもう一度お試しください。",
        );
        let mut res = login_form(lang, StatusCode::TOO_MANY_REQUESTS, Some(msg), &name);
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
        return res;
    }
    let password = form.get("password").unwrap_or("").to_string();
    let user = match state.store.user_by_name(&name).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "cannot read users");
            return html::message_page(
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                html::w(
                    lang,
                    "The database is not answering; try again shortly.",
                    "データベースが応答していません。しばらくしてからもう一度お試しください。",
                ),
            );
        }
    };
    let phc = user.as_ref().map_or_else(
        || password::decoy().to_string(),
        |u| u.password_hash.clone(),
    );
    let ok = tokio::task::spawn_blocking(move || password::verify(&password, &phc))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        tracing::info!(%name, peer = %peer.ip(), "console sign-in refused");
        let msg = html::w(
            lang,
            "The name or password is not right.",
            "ユーザー名またはパスワードが正しくありません。",
        );
        return login_form(lang, StatusCode::UNAUTHORIZED, Some(msg), &name);
    };
    let token = random_token();
    let now = Utc::now();
    let made = state
        .store
        .create_session(&NewSession {
            token_hash: hash_token(&token),
            user_id: user.id,
            csrf_token: random_token(),
            created_at: now,
            expires_at: now + SESSION_TTL,
        })
        .await;
    if let Err(e) = made {
        tracing::error!(error = %e, "cannot store a console session");
        return html::message_page(
            lang,
            StatusCode::SERVICE_UNAVAILABLE,
            html::w(
                lang,
                "The database is not answering; try again shortly.",
                "データベースが応答していません。しばらくしてからもう一度お試しください。",
            ),
        );
    }
    // Expired sessions are never accepted; sweeping them at sign-in keeps the table small
    // without a job of its own.
    if let Err(e) = state.store.prune_sessions(now).await {
        tracing::debug!(error = %e, "cannot prune expired console sessions");
    }
    tracing::info!(%name, "console sign-in");
    let to = if lang == Lang::Ja {
        "/admin?lang=ja"
    } else {
        "/admin"
    };
    let mut res = Redirect::to(to).into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &token, SESSION_TTL.num_seconds()),
    );
    h.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0));
    res
}

async fn logout(
    State(state): State<AppState>,
    user: User,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    if let Err(r) = checked_form(&user, &headers, &bytes) {
        return r;
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.store.delete_session(&hash_token(token)).await {
            tracing::warn!(error = %e, "cannot end a console session");
        }
    }
    let mut res = Redirect::to("/admin/login").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0));
    res
}

/// `GET /admin/events`: one `incident` event (data: its id) per change, for the page's
/// script to refresh what it shows.
async fn events(State(state): State<AppState>, _user: User) -> impl IntoResponse {
    let rx = state.incidents.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let data = match rx.recv().await {
            Ok(id) => id.to_string(),
            // Missed some: say "something changed" so the page refreshes anyway.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => "*".to_string(),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        let ev = Event::default().event("incident").data(data);
        Some((Ok::<_, std::convert::Infallible>(ev), rx))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
