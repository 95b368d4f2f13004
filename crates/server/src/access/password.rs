//! Passwords: argon2id with the crate's default cost (19 MiB, 2 passes), as PHC strings, hashed
//! and checked on blocking threads (a hash takes tens of milliseconds of CPU).

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::error::{ApiError, ErrorCode};

/// Passwords shorter than this are refused.
pub const MIN_PASSWORD_LEN: usize = 10;

/// A password hash for an account that does not exist: a login for an unknown email checks
/// against it, so it takes as long as one for a known email.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$ZmVlZGxvb3BkdW1teQ$0zIbZ7IKzoiS8pKH1ZVmPZQ2OPCXp8l2RrYk+7Z7fVQ";

/// Checks the length rule and hashes.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(ApiError::new(
            ErrorCode::InvalidValue,
            format!("password: must be at least {MIN_PASSWORD_LEN} characters"),
        )
        .with_field("password"));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| {
            tracing::error!(%error, "hashing a password failed");
            ApiError::new(ErrorCode::Internal, "internal error; see the server log")
        })
}

/// True when `password` matches `hash`; `None` checks against a dummy hash and is false.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let parsed = match PasswordHash::new(hash.unwrap_or(DUMMY_HASH)) {
        Ok(parsed) => parsed,
        Err(error) => {
            tracing::error!(%error, "a stored password hash does not parse");
            return false;
        }
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && hash.is_some()
}

/// [`hash_password`] on a blocking thread.
pub async fn hash_password_blocking(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "internal error; see the server log"))?
}

/// [`verify_password`] on a blocking thread.
pub async fn verify_password_blocking(password: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&password, hash.as_deref()))
        .await
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&hash)));
        assert!(!verify_password("correct horse battery!", Some(&hash)));
        assert!(!verify_password("correct horse battery", None));
        assert_eq!(
            hash_password("short").unwrap_err().field.as_deref(),
            Some("password")
        );
    }

    #[test]
    fn the_dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }
}
