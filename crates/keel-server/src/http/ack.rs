//! The acknowledge link in every page: `GET /ack/{token}` shows what is being acknowledged
//! with one button, `POST /ack/{token}` acknowledges.
//!
//! The GET never acknowledges: mail scanners and chat unfurlers open links on their own, and a
//! page acknowledged by a robot would silence the escalation while nobody is on it. The token
//! is the capability (signed, for one person, one incident and one escalation cycle, with an
//! expiry), so the POST needs no session; a forged, changed or expired token acknowledges
//! nothing, and a link from an earlier cycle cannot silence a relapse.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use keel_core::incident::{Actor, Command};

use crate::book::BookError;
use crate::http::AppState;
use crate::paging::link::{AckLink, SECRET_NAME};

/// Words of the link's pages, in the person's language.
struct Words {
    lang: &'static str,
    title: &'static str,
    button: &'static str,
    done: &'static str,
    already: &'static str,
    resolved: &'static str,
    earlier: &'static str,
    refused: &'static str,
}

const EN: Words = Words {
    lang: "en",
    title: "Acknowledge the page",
    button: "Acknowledge",
    done: "Acknowledged. The escalation has stopped; you are on it.",
    already: "Already acknowledged",
    resolved: "This incident is resolved: there is nothing left to acknowledge.",
    earlier: "This page was for an earlier alert of this incident; it relapsed since and was paged again. Use the link in the newest page.",
    refused: "Not acknowledged",
};

const JA: Words = Words {
    lang: "ja",
    title: "呼び出しへの応答",
    button: "対応を開始する",
    done: "応答しました。エスカレーションは停止しました。",
    already: "すでに応答済みです",
    resolved: "このインシデントは解決済みのため、応答は不要です。",
    earlier: "このリンクは以前の呼び出しのものです。インシデントが再発し、改めて呼び出されています。最新の呼び出しのリンクをご利用ください。",
    refused: "応答できませんでした",
};

fn words(state: &AppState, person: Option<&str>) -> &'static Words {
    let ja = person
        .and_then(|p| state.config.people.iter().find(|x| x.id == p))
        .is_some_and(|p| p.locale == "ja");
    if ja {
        &JA
    } else {
        &EN
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(status: StatusCode, w: &Words, heading: &str, body_html: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{} — Keel</title></head>\
         <body><main><h1>{}</h1>{body_html}</main></body></html>",
        w.lang,
        escape(w.title),
        escape(heading),
    );
    let mut resp = (status, html).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // A page with no script, no style and no frame: nothing may load or embed it.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn para(text: &str) -> String {
    format!("<p>{}</p>", escape(text))
}

/// Checks the token; on failure, the page to answer with.
async fn check(state: &AppState, token: &str) -> Result<AckLink, Response> {
    let secret = match state.store.shared_secret(SECRET_NAME).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the acknowledge links' key");
            return Err(page(
                StatusCode::SERVICE_UNAVAILABLE,
                &EN,
                EN.refused,
                &para("Keel cannot reach its database right now; try again in a moment."),
            ));
        }
    };
    AckLink::verify(token, &secret, Utc::now()).map_err(|e| {
        tracing::warn!(reason = %e, "acknowledge link refused");
        page(
            StatusCode::FORBIDDEN,
            &EN,
            EN.refused,
            &para(&e.to_string()),
        )
    })
}

/// What stands in the way of acknowledging now, if anything.
async fn obstacle(state: &AppState, link: &AckLink, w: &Words) -> Result<String, Response> {
    let Some(inc) = state.incidents.incident(link.incident).await else {
        return Err(page(
            StatusCode::NOT_FOUND,
            w,
            w.refused,
            &para(&format!("No incident {}.", link.incident)),
        ));
    };
    let inc = &inc;
    let summary = format!(
        "#{} {} — {}",
        inc.id,
        inc.severity.map(|s| s.as_str()).unwrap_or("-"),
        inc.title
    );
    if inc.is_resolved() {
        return Err(page(
            StatusCode::CONFLICT,
            w,
            w.refused,
            &(para(&summary) + &para(w.resolved)),
        ));
    }
    if let Some(esc) = &inc.escalation {
        if esc.cycle != link.cycle {
            return Err(page(
                StatusCode::CONFLICT,
                w,
                w.refused,
                &(para(&summary) + &para(w.earlier)),
            ));
        }
        if let Some((by, at)) = &esc.acknowledged {
            let text = format!("{}: {by}, {}", w.already, at.format("%Y-%m-%d %H:%M UTC"));
            return Err(page(
                StatusCode::OK,
                w,
                w.already,
                &(para(&summary) + &para(&text)),
            ));
        }
    }
    Ok(summary)
}

/// `GET /ack/{token}`: what would be acknowledged, and the one button.
pub async fn show(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let link = match check(&state, &token).await {
        Ok(l) => l,
        Err(resp) => return resp,
    };
    let w = words(&state, Some(&link.person));
    match obstacle(&state, &link, w).await {
        Err(resp) => resp,
        Ok(summary) => page(
            StatusCode::OK,
            w,
            w.title,
            &format!(
                "{}<form method=\"post\"><button type=\"submit\">{}</button></form>",
                para(&summary),
                escape(w.button)
            ),
        ),
    }
}

/// Twilio's answer to a voice page's keypress: it posts the digits to the link and speaks
/// the TwiML it gets back.
fn twiml(said: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>{}</Say></Response>",
        escape(said)
    );
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    resp
}

/// The digits a voice page's caller pressed, when Twilio posts them (`Digits=1`).
fn digits(body: &[u8]) -> Option<String> {
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "Digits")
        .map(|(_, v)| v.into_owned())
}

/// `POST /ack/{token}`: acknowledges as the person the page went to — from the page's
/// button, or from a voice call where the person pressed 1.
pub async fn acknowledge(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let voice = digits(&body);
    if voice.as_deref().is_some_and(|d| d != "1") {
        return twiml("Not acknowledged. Press 1 to acknowledge.");
    }
    let link = match check(&state, &token).await {
        Ok(l) => l,
        Err(resp) if voice.is_some() => {
            let _ = resp;
            return twiml("This page cannot be acknowledged by phone. Use the console.");
        }
        Err(resp) => return resp,
    };
    if voice.is_some() {
        let done = obstacle(&state, &link, &EN).await.is_ok()
            && state
                .incidents
                .command(
                    link.incident,
                    Command::Acknowledge {
                        via: Some("voice".into()),
                    },
                    Actor::User(link.person.clone()),
                    false,
                    Utc::now(),
                )
                .await
                .is_ok();
        return twiml(if done {
            "Acknowledged. The escalation has stopped."
        } else {
            "Nothing was acknowledged: it is already acknowledged, resolved, or paged again since."
        });
    }
    let w = words(&state, Some(&link.person));
    let summary = match obstacle(&state, &link, w).await {
        Err(resp) => return resp,
        Ok(s) => s,
    };
    let result = state
        .incidents
        .command(
            link.incident,
            Command::Acknowledge {
                via: Some("link".into()),
            },
            Actor::User(link.person.clone()),
            false,
            Utc::now(),
        )
        .await;
    match result {
        Ok(_) => {
            tracing::info!(incident = %link.incident, person = %link.person, "acknowledged by link");
            page(StatusCode::OK, w, w.done, &para(&summary))
        }
        Err(BookError::Refused { reason, .. }) => page(
            StatusCode::CONFLICT,
            w,
            w.refused,
            &(para(&summary) + &para(&reason)),
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot acknowledge by link");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                w,
                w.refused,
                &para("Keel cannot store the acknowledgement right now; try again in a moment."),
            )
        }
    }
}
