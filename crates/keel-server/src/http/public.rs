//! The public surface: the status page, the Statuspage v2 JSON, feeds and badges — all served
//! from the rendered snapshot in memory, with ETags so repeat visitors get 304s.
//!
//! [`answer`] is what the server's front door calls for every GET before the router (see
//! `http::server`); the handlers below give the router the same answers, for requests that reach
//! it some other way.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use http_body_util::Full;

use crate::http::AppState;
use crate::rendered::{Doc, Rendered};

/// The answer to a GET of a public document, or `None` when `uri` names none (the router then
/// decides). `/` and `/index.html` are the page in the viewer's language: `?lang=` wins over
/// `Accept-Language`.
pub fn answer(
    rendered: &Rendered,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<axum::http::Response<Full<Bytes>>> {
    let path = uri.path();
    if path == "/" || path == "/index.html" {
        let locales = &rendered.snapshot.locales;
        let query_lang = uri.query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(k, _)| k == "lang")
                .map(|(_, v)| v.into_owned())
        });
        let accept = headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        // The hot path (one locale, or no language asked for) parses nothing and allocates
        // nothing.
        let doc = if locales.len() <= 1 || (query_lang.is_none() && accept.is_none()) {
            rendered
                .pages
                .get(locales.first().map_or("en", String::as_str))
        } else {
            let locale = keel_core::public::i18n::negotiate(accept, query_lang.as_deref(), locales);
            rendered.pages.get(&locale)
        };
        return Some(match doc {
            Some(doc) => serve(doc, headers),
            None => status(StatusCode::NOT_FOUND),
        });
    }
    rendered.files.get(path).map(|doc| serve(doc, headers))
}

/// Any public document through the router: the same [`answer`], 404 for a path naming none.
pub async fn document(State(state): State<AppState>, req: Request) -> Response {
    let rendered = state.snapshots.load();
    match answer(&rendered, req.uri(), req.headers()) {
        Some(resp) => resp.map(Body::new),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A document with its validators; 304 when the client already has it.
fn serve(doc: &Doc, headers: &HeaderMap) -> axum::http::Response<Full<Bytes>> {
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == doc.etag || t.trim() == "*")
        });
    if not_modified {
        let mut resp = status(StatusCode::NOT_MODIFIED);
        *resp.headers_mut() = doc.not_modified_headers.clone();
        return resp;
    }
    let mut resp = axum::http::Response::new(Full::new(doc.body.clone()));
    *resp.headers_mut() = doc.headers.clone();
    resp
}

fn status(code: StatusCode) -> axum::http::Response<Full<Bytes>> {
    let mut resp = axum::http::Response::new(Full::default());
    *resp.status_mut() = code;
    resp
}
