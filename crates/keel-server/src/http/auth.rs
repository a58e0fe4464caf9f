//! Bearer-token authentication and roles.
//!
//! Tokens are random and long, so a plain SHA-256 of the token is enough to store them safely
//! (a slow password hash guards low-entropy secrets, which these are not) and lets a request be
//! checked with one indexed lookup. The bootstrap admin token from `KEEL_ADMIN_TOKEN` is kept
//! only as its hash in memory.

use std::fmt;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use keel_store::hash_token;
use rand::RngCore;

use crate::error::ApiError;
use crate::http::AppState;

/// What a token may do; each role includes the ones below it, except `Probe`, which is
/// outside the ladder: a probe token may only report check results from its location
/// (`/api/v1/probe/…`) and is refused everywhere else, and those endpoints take nothing but a
/// probe token — not even an admin's, so a remote machine never holds a token that can do
/// more than report. (Ordered lowest, so every `role >= …` check refuses it too.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Probe,
    Viewer,
    Responder,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Probe => "probe",
            Role::Viewer => "viewer",
            Role::Responder => "responder",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "probe" => Ok(Role::Probe),
            "viewer" => Ok(Role::Viewer),
            "responder" => Ok(Role::Responder),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: expected viewer, responder or admin (or probe, for \
                 `keel probe`)"
            )),
        }
    }
}

/// A new random token: `keel_` and 32 random bytes in hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("keel_{}", hex::encode(bytes))
}

/// The caller, authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub role: Role,
}

impl Caller {
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::Forbidden(role.as_str()))
        }
    }
}

/// A caller of the management API: any token but a probe's.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(parts, state).await?;
        if caller.role == Role::Probe {
            // Refused here, for every route at once, rather than by each handler's check.
            return Err(ApiError::Refused(
                "a probe token may only report check results (/api/v1/probe/…)".into(),
            ));
        }
        Ok(caller)
    }
}

/// A remote probe: the caller of `/api/v1/probe/…`, holding a probe token.
#[derive(Debug, Clone)]
pub struct ProbeCaller {
    /// The token's name: what the rate limit is counted by.
    pub name: String,
}

impl FromRequestParts<AppState> for ProbeCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = authenticate(parts, state).await?;
        if caller.role != Role::Probe {
            return Err(ApiError::Refused(format!(
                "the probe endpoints take a probe token (`keel token create --role probe`), \
                 not a {} token",
                caller.role
            )));
        }
        Ok(ProbeCaller { name: caller.name })
    }
}

/// The bearer token's caller, whatever its role.
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let header = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(ApiError::Unauthorized)?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    let hash = hash_token(token);
    if state.admin_token_hash.as_deref() == Some(hash.as_str()) {
        return Ok(Caller {
            name: "bootstrap-admin".into(),
            role: Role::Admin,
        });
    }
    let found = state
        .store
        .find_token(&hash)
        .await
        .map_err(|e| ApiError::Internal(e.into()))?
        .ok_or(ApiError::Unauthorized)?;
    let role = found
        .role
        .parse()
        .map_err(|e: String| ApiError::Internal(anyhow::anyhow!(e)))?;
    Ok(Caller {
        name: found.name,
        role,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin > Role::Responder && Role::Responder > Role::Viewer);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(hash_token(&a), hash_token(&a));
        assert_eq!(hash_token("x").len(), 64);
    }

    /// Tokens made before the hash moved to keel-store were stored as the lower-case hex
    /// SHA-256 of the token, as `keel token create` wrote them; the hash requests are checked
    /// with must still give exactly that.
    #[test]
    fn stored_token_hashes_are_unchanged() {
        assert_eq!(
            hash_token("keel_0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            "495aefb1a3d8a9786aee97c4afc6e9585bc65f9a534ddad4214ee1d7b938d31d"
        );
    }
}
