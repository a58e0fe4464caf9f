//! The public surface: the status page, the Statuspage v2 JSON, feeds and badges — all served
//! from the rendered snapshot in memory, with ETags so repeat visitors get 304s.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::http::AppState;
use crate::snapshot::Doc;

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
}

/// `GET /`: the page in the viewer's language (`?lang=` wins over `Accept-Language`).
pub async fn page(
    State(state): State<AppState>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let rendered = state.snapshots.current();
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let locale =
        keel_core::public::i18n::negotiate(accept, q.lang.as_deref(), &rendered.snapshot.locales);
    match rendered.pages.get(&locale) {
        Some(doc) => {
            let mut resp = serve(doc, &rendered.last_modified, &headers);
            // The answer depends on the language header.
            resp.headers_mut()
                .insert(header::VARY, HeaderValue::from_static("Accept-Language"));
            resp
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Every other public document, by path.
pub async fn file(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let rendered = state.snapshots.current();
    match rendered.files.get(uri.path()) {
        Some(doc) => serve(doc, &rendered.last_modified, &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A document with its validators; 304 when the client already has it.
fn serve(doc: &Doc, last_modified: &str, headers: &HeaderMap) -> Response {
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == doc.etag || t.trim() == "*")
        });
    let etag = HeaderValue::from_str(&doc.etag).unwrap_or(HeaderValue::from_static("\"\""));
    let lm = HeaderValue::from_str(last_modified).unwrap_or(HeaderValue::from_static(""));
    // Short: outage pages change by the minute; conditional requests make revalidation cheap.
    let cache = HeaderValue::from_static("public, max-age=10");
    if not_modified {
        return (
            StatusCode::NOT_MODIFIED,
            [
                (header::ETAG, etag),
                (header::LAST_MODIFIED, lm),
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
            (header::ETAG, etag),
            (header::LAST_MODIFIED, lm),
            (header::CACHE_CONTROL, cache),
        ],
        doc.body.clone(),
    )
        .into_response()
}
