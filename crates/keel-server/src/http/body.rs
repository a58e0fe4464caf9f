//! Request bodies: how large they may be, and Keel's answer when one is larger.

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The body limit of every route but the intake's.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Keel's JSON error for a body over `limit` (`setting`: where the limit comes from), in place
/// of the plain-text 413 the body extractors answer with. The server reads and drops the rest
/// of such a body before closing the connection (`server::linger`), so clients that send the
/// whole body before reading get this answer, not a reset connection.
pub(super) async fn too_large(limit: usize, setting: &'static str, resp: Response) -> Response {
    let json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if resp.status() != StatusCode::PAYLOAD_TOO_LARGE || json {
        return resp;
    }
    let reason = format!("the request body is larger than {limit} bytes, the most {setting}");
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(serde_json::json!({"error": "payload_too_large", "reason": reason, "limit": limit})),
    )
        .into_response()
}

/// Parses a JSON body into `T`, naming the field and reason on failure.
pub(crate) fn json<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad(None, "empty body: expected a JSON object"));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let reason = e.into_inner().to_string();
        // serde names a missing field only in its message; the path is then the parent.
        let missing = reason
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
            .map(str::to_string);
        let field = missing.or((path != "." && path != "?").then_some(path));
        ApiError::BadRequest { field, reason }
    })
}
