//! The one API error type: maps to status codes and a JSON body with the field and reason,
//! and logs (never shows) the cause of a 5xx.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{reason}")]
    BadRequest {
        field: Option<String>,
        reason: String,
    },
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Unauthorized,
    #[error("this needs the {0} role")]
    Forbidden(&'static str),
    /// Forbidden, with the reason in words (a probe token outside the probe endpoints).
    #[error("{0}")]
    Refused(String),
    #[error("not found")]
    NotFound,
    /// Not found, saying what there is instead.
    #[error("{0}")]
    Missing(String),
    /// The request was understood but the resource's state refuses it.
    #[error("{reason}")]
    Conflict {
        field: Option<String>,
        reason: String,
    },
    #[error("{0}")]
    Unprocessable(serde_json::Value),
    #[error("{0}")]
    TooMany(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

/// A refused or failed command on an incident, as the API answers it: an unknown incident is
/// 404, a refusal (and a write that lost a race with another) 409, anything else 500.
impl From<crate::book::BookError> for ApiError {
    fn from(e: crate::book::BookError) -> Self {
        use crate::book::BookError;
        match e {
            BookError::NotFound(_) => ApiError::NotFound,
            BookError::Refused { field, reason } => ApiError::Conflict {
                field: Some(field),
                reason,
            },
            BookError::Store(keel_store::StoreError::Conflict(reason)) => ApiError::Conflict {
                field: None,
                reason: format!("the incident changed meanwhile, try again: {reason}"),
            },
            other => ApiError::Internal(anyhow::anyhow!(other)),
        }
    }
}

impl ApiError {
    pub fn bad(field: Option<&str>, reason: impl Into<String>) -> Self {
        ApiError::BadRequest {
            field: field.map(str::to_string),
            reason: reason.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match &self {
            ApiError::BadRequest { field, reason } => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "field": field, "reason": reason}),
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "unauthorized", "reason": self.to_string()}),
            ),
            ApiError::Forbidden(_) => (
                StatusCode::FORBIDDEN,
                json!({"error": "forbidden", "reason": self.to_string()}),
            ),
            ApiError::Refused(reason) => (
                StatusCode::FORBIDDEN,
                json!({"error": "forbidden", "reason": reason}),
            ),
            ApiError::Missing(reason) => (
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "reason": reason}),
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                json!({"error": "not_found", "reason": "no such resource"}),
            ),
            ApiError::Conflict { field, reason } => (
                StatusCode::CONFLICT,
                json!({"error": "conflict", "field": field, "reason": reason}),
            ),
            ApiError::Unprocessable(body) => (StatusCode::UNPROCESSABLE_ENTITY, body.clone()),
            ApiError::TooMany(reason) => (
                StatusCode::TOO_MANY_REQUESTS,
                json!({"error": "rate_limited", "reason": reason}),
            ),
            ApiError::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error answering a request");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "internal", "reason": "internal error; see the server log"}),
                )
            }
        };
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

#[cfg(test)]
mod book_error_tests {
    use super::ApiError;
    use crate::book::BookError;

    #[test]
    fn book_errors_keep_their_statuses_and_words() {
        assert!(matches!(
            ApiError::from(BookError::NotFound(keel_core::incident::IncidentId(7))),
            ApiError::NotFound
        ));
        match ApiError::from(BookError::Refused {
            field: "state".into(),
            reason: "already resolved".into(),
        }) {
            ApiError::Conflict { field, reason } => {
                assert_eq!(field.as_deref(), Some("state"));
                assert_eq!(reason, "already resolved");
            }
            other => panic!("{other:?}"),
        }
        match ApiError::from(BookError::Store(keel_store::StoreError::Conflict(
            "seq 4 taken".into(),
        ))) {
            ApiError::Conflict { field, reason } => {
                assert!(field.is_none());
                assert_eq!(
                    reason,
                    "the incident changed meanwhile, try again: seq 4 taken"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ApiError::from(BookError::Replay("bad".into())),
            ApiError::Internal(_)
        ));
    }
}
