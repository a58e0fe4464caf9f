//! Console passwords: argon2id with the `argon2` crate's default parameters (19 MiB, 2
//! passes, 1 lane — OWASP's recommended minimum), stored as a PHC string so the parameters
//! travel with each hash and can be raised later without breaking old ones.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// Shortest password accepted, in characters.
pub const MIN_CHARS: usize = 12;
/// Longest password accepted, in bytes: hashing cost grows with length.
pub const MAX_BYTES: usize = 1024;

/// Checks a new password's length, with a reason a person can act on.
pub fn check_new(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_CHARS {
        return Err(format!(
            "the password is {n} characters long; use at least {MIN_CHARS} (a passphrase of a few words is easiest)"
        ));
    }
    if password.len() > MAX_BYTES {
        return Err(format!("the password is longer than {MAX_BYTES} bytes"));
    }
    Ok(())
}

/// Hashes a new password (checked with [`check_new`]) into an argon2id PHC string.
pub fn hash(password: &str) -> Result<String, String> {
    check_new(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Whether `password` matches the stored PHC string. A malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_BYTES {
        return false;
    }
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so an unknown name costs the same
/// argon2 work as a wrong password and the answer time does not tell names apart.
pub fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash("decoy password that matches nothing").expect("hash decoy"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify("correct horse battery", &a));
        assert!(!verify("correct horse batterY", &a));
        assert!(!verify("correct horse battery", "not a hash"));
    }

    #[test]
    fn short_passwords_are_refused_with_the_minimum() {
        let e = hash("short").unwrap_err();
        assert!(e.contains("at least 12"), "{e}");
        assert!(check_new(&"x".repeat(MAX_BYTES + 1)).is_err());
    }
}
