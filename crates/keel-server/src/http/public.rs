//! The public surface: the status page, the Statuspage v2 JSON, feeds and badges — all served
//! from the rendered snapshot in memory, with ETags so repeat visitors get 304s.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::AppState;
use crate::snapshot::Doc;

/// `GET /`: the page in the viewer's language (`?lang=` wins over `Accept-Language`).
pub async fn page(State(state): State<AppState>, req: Request) -> Response {
    // Reading the request in place: the `HeaderMap` extractor would copy every header.
    let (uri, headers) = (req.uri(), req.headers());
    let rendered = state.snapshots.current();
    let locales = &rendered.snapshot.locales;
    // The hot path (one locale, or no language asked for) does no parsing at all.
    let query_lang = uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| v.into_owned())
    });
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let locale = if locales.len() <= 1 || (query_lang.is_none() && accept.is_none()) {
        locales.first().cloned().unwrap_or_else(|| "en".into())
    } else {
        keel_core::public::i18n::negotiate(accept, query_lang.as_deref(), locales)
    };
    match rendered.pages.get(&locale) {
        Some(doc) => {
            let mut resp = serve(doc, &rendered.last_modified_header, headers);
            // The answer depends on the language header.
            resp.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept-Language"));
            resp
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Every other public document, by path.
pub async fn file(State(state): State<AppState>, req: Request) -> Response {
    let rendered = state.snapshots.current();
    match rendered.files.get(req.uri().path()) {
        Some(doc) => serve(doc, &rendered.last_modified_header, req.headers()),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A document with its validators; 304 when the client already has it.
fn serve(doc: &Doc, last_modified: &HeaderValue, headers: &HeaderMap) -> Response {
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == doc.etag || t.trim() == "*")
        });
    // Short: outage pages change by the minute; conditional requests make revalidation cheap.
    let cache = HeaderValue::from_static("public, max-age=10");
    if not_modified {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, doc.etag_header.clone()),
                (header::LAST_MODIFIED, last_modified.clone()),
                (header::CACHE_CONTROL, cache),
            ],
        )
            .into_response();
    }
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(doc.content_type),
            ),
            (header::ETAG, doc.etag_header.clone()),
            (header::LAST_MODIFIED, last_modified.clone()),
            (header::CACHE_CONTROL, cache),
        ],
        doc.body.clone(),
    )
        .into_response()
}
