//! Who may act on Keel: API tokens, and console accounts — people who sign in to `/admin` with
//! a password — with their sessions.
//!
//! The store never sees a password or a session token: users carry an argon2id PHC string
//! (hashed by the caller, which owns the parameters) and sessions are found by the SHA-256 of
//! their random token, like API tokens. Sessions live in the store rather than in one
//! instance's memory so that several Keel instances on one PostgreSQL accept the same cookie.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::shared::Stamp;
use crate::{Result, StoreError};

/// The roles a user may have, as the API names them.
pub const ROLES: [&str; 3] = ["viewer", "responder", "admin"];

/// Longest user name, in characters.
pub const USER_NAME_MAX_CHARS: usize = 64;

/// A hashed API token and its role.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

/// A console user. `password_hash` is the PHC string (`$argon2id$v=19$…`).
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A session to store. `token_hash` is the SHA-256 hex of the cookie's token.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSession {
    pub token_hash: String,
    pub user_id: i64,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A stored session with the user it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub token_hash: String,
    pub user: User,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// API tokens, console users and their sessions.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Stores a token by its SHA-256 hash (hex). A duplicate hash or name is `Conflict`.
    async fn create_token(&self, name: &str, role: &str, hash_hex: &str) -> Result<ApiToken>;

    /// Finds a token by hash.
    async fn find_token(&self, hash_hex: &str) -> Result<Option<ApiToken>>;

    /// Every token, oldest first (hashes are never returned).
    async fn token_list(&self) -> Result<Vec<ApiToken>>;

    /// Deletes the token named `name`; `NotFound` when there is none.
    async fn token_delete(&self, name: &str) -> Result<()>;

    /// Stores a user created now. `Conflict` when the name is taken; `Invalid` for an empty or
    /// over-long name, a name with control characters, a role that is not viewer, responder or
    /// admin, or a hash that is not an argon2id PHC string.
    async fn create_user(&self, name: &str, role: &str, password_hash: &str) -> Result<User>;

    /// The user named `name`, if any.
    async fn user_by_name(&self, name: &str) -> Result<Option<User>>;

    /// Every user, oldest first.
    async fn users(&self) -> Result<Vec<User>>;

    /// Deletes the user named `name` and every session of theirs, in one transaction.
    /// `NotFound` when there is none.
    async fn delete_user(&self, name: &str) -> Result<()>;

    /// Stores a session. `NotFound` for an unknown user; `Invalid` when it expires before it
    /// starts or the hash is not SHA-256 hex.
    async fn create_session(&self, new: &NewSession) -> Result<()>;

    /// The session whose token hashes to `token_hash`, if it exists and has not expired at
    /// `now` (an expired one is never returned, even before it is pruned).
    async fn session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<Session>>;

    /// Records that the session was used at `now`. Unknown session: nothing happens.
    async fn touch_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<()>;

    /// Ends a session (sign-out). Ending an unknown one is harmless.
    async fn delete_session(&self, token_hash: &str) -> Result<()>;

    /// Deletes sessions expired at `now`; returns how many.
    async fn prune_sessions(&self, now: DateTime<Utc>) -> Result<u64>;
}

pub(crate) const TOKEN_COLUMNS: &str = "id, name, role, created_at";
/// A token row as both backends read it; `T` is the backend's time (see [`Stamp`]).
pub(crate) type TokenRow<T> = (i64, String, String, T);

pub(crate) fn decode_token<T: Stamp>(row: TokenRow<T>) -> Result<ApiToken> {
    let (id, name, role, created_at) = row;
    Ok(ApiToken {
        id,
        name,
        role,
        created_at: created_at.time()?,
    })
}

pub(crate) const USER_COLUMNS: &str = "id, name, role, password_hash, created_at";
/// A user row as both backends read it; `T` is the backend's time (see [`Stamp`]).
pub(crate) type UserRow<T> = (i64, String, String, String, T);

pub(crate) fn decode_user<T: Stamp>(row: UserRow<T>) -> Result<User> {
    let (id, name, role, password_hash, created_at) = row;
    Ok(User {
        id,
        name,
        role,
        password_hash,
        created_at: created_at.time()?,
    })
}

pub(crate) const SESSION_COLUMNS: &str = "s.csrf_token, s.created_at, s.expires_at, s.last_seen, \
     u.id, u.created_at, u.name, u.role, u.password_hash";
/// A session joined with its user as both backends read it, in [`SESSION_COLUMNS`] order.
pub(crate) type SessionRow<T> = (String, T, T, T, i64, T, String, String, String);

pub(crate) fn decode_session<T: Stamp>(token_hash: &str, row: SessionRow<T>) -> Result<Session> {
    let (csrf_token, created, expires, seen, uid, ucreated, name, role, hash) = row;
    Ok(Session {
        token_hash: token_hash.to_string(),
        user: decode_user((uid, name, role, hash, ucreated))?,
        csrf_token,
        created_at: created.time()?,
        expires_at: expires.time()?,
        last_seen: seen.time()?,
    })
}

/// What every backend checks before writing a user.
pub(crate) fn check_user(name: &str, role: &str, password_hash: &str) -> Result<()> {
    if name.trim().is_empty() || name.trim() != name {
        return Err(StoreError::Invalid(
            "a user name must not be empty or start or end with spaces".into(),
        ));
    }
    if name.chars().count() > USER_NAME_MAX_CHARS {
        return Err(StoreError::Invalid(format!(
            "a user name has at most {USER_NAME_MAX_CHARS} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "a user name must not contain control characters".into(),
        ));
    }
    if !ROLES.contains(&role) {
        return Err(StoreError::Invalid(format!(
            "unknown role {role:?}: expected viewer, responder or admin"
        )));
    }
    if !password_hash.starts_with("$argon2id$") {
        return Err(StoreError::Invalid(
            "the password hash must be an argon2id PHC string".into(),
        ));
    }
    Ok(())
}

pub(crate) fn check_session(new: &NewSession) -> Result<()> {
    if new.token_hash.len() != 64 || !new.token_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(StoreError::Invalid(
            "a session is stored by the SHA-256 hex of its token".into(),
        ));
    }
    if new.expires_at <= new.created_at {
        return Err(StoreError::Invalid(
            "a session must expire after it starts".into(),
        ));
    }
    if new.csrf_token.is_empty() {
        return Err(StoreError::Invalid("a session needs a CSRF token".into()));
    }
    Ok(())
}

pub(crate) fn user_taken(name: &str) -> StoreError {
    StoreError::Conflict(format!("a user named {name:?} already exists"))
}

pub(crate) fn unknown_user(name: &str) -> StoreError {
    StoreError::NotFound(format!("no user named {name:?}"))
}
