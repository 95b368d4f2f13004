//! Feedback tokens: for apps that cannot hold a key (a mobile app, a page without a backend). An
//! ingest key asks for one per trace; the token lets its holder post feedback and signals about
//! that trace only, until it expires.
//!
//! `fl_ft_<payload>.<mac>`, both base64url: the payload is `<project>.<expiry unix secs>.<trace>`
//! in plain text (nothing in it is secret), the MAC is HMAC-SHA256 of the payload with the
//! project's token secret. The secret lives in the store, so every replica verifies tokens any
//! replica issued; replicas cache it (it never changes).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use feedloop_core::{ProjectId, Timestamp, TraceId};
use hmac::{KeyInit, Mac};
use std::collections::HashMap;
use std::sync::Mutex;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

pub const TOKEN_PREFIX: &str = "fl_ft_";

type HmacSha256 = hmac::Hmac<sha2_hmac::Sha256>;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenClaims {
    pub project: ProjectId,
    pub trace: TraceId,
    /// Unix seconds.
    pub expires_at: i64,
}

fn mac(secret: &[u8; 32], payload: &str) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(b"feedloop feedback token\0");
    mac.update(payload.as_bytes());
    mac
}

/// Signs the claims.
pub fn sign(secret: &[u8; 32], claims: &TokenClaims) -> String {
    let payload = format!(
        "{}.{}.{}",
        claims.project.0,
        claims.expires_at,
        claims.trace.as_str()
    );
    let tag = mac(secret, &payload).finalize().into_bytes();
    format!(
        "{TOKEN_PREFIX}{}.{}",
        URL_SAFE_NO_PAD.encode(payload.as_bytes()),
        URL_SAFE_NO_PAD.encode(tag)
    )
}

fn malformed() -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, "malformed feedback token")
}

/// The project a token claims, read before its MAC is checked (to find the project's secret).
pub fn claimed_project(token: &str) -> Result<ProjectId, ApiError> {
    let (payload, _) = split(token)?;
    let (project, _) = payload.split_once('.').ok_or_else(malformed)?;
    project.parse().map(ProjectId).map_err(|_| malformed())
}

fn split(token: &str) -> Result<(String, Vec<u8>), ApiError> {
    let body = token.strip_prefix(TOKEN_PREFIX).ok_or_else(malformed)?;
    let (payload, tag) = body.split_once('.').ok_or_else(malformed)?;
    let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| malformed())?;
    let payload = String::from_utf8(payload).map_err(|_| malformed())?;
    let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| malformed())?;
    Ok((payload, tag))
}

/// Checks the MAC (in constant time) and then the expiry: a forged token learns nothing about
/// expiry, an expired one says so.
pub fn verify(secret: &[u8; 32], token: &str, now_secs: i64) -> Result<TokenClaims, ApiError> {
    let (payload, tag) = split(token)?;
    mac(secret, &payload)
        .verify_slice(&tag)
        .map_err(|_| ApiError::new(ErrorCode::Unauthorized, "invalid feedback token"))?;
    let mut parts = payload.splitn(3, '.');
    let (Some(project), Some(expires_at), Some(trace)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let claims = TokenClaims {
        project: ProjectId(project.parse().map_err(|_| malformed())?),
        expires_at: expires_at.parse().map_err(|_| malformed())?,
        trace: TraceId::parse("trace_id", trace).map_err(|_| malformed())?,
    };
    if now_secs >= claims.expires_at {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "feedback token expired",
        ));
    }
    Ok(claims)
}

/// Each project's token secret, as the store holds it.
#[derive(Default)]
pub struct TokenSecrets {
    secrets: Mutex<HashMap<ProjectId, [u8; 32]>>,
}

impl TokenSecrets {
    /// The project's secret (made and stored on first use by whichever replica asks first).
    pub async fn get(&self, state: &AppState, project: ProjectId) -> Result<[u8; 32], ApiError> {
        if let Some(secret) = self.lock().get(&project) {
            return Ok(*secret);
        }
        let secret = state
            .store
            .token_secret(project, rand::random(), state.clock.now())
            .await?;
        self.lock().insert(project, secret);
        Ok(secret)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ProjectId, [u8; 32]>> {
        self.secrets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Unix seconds of `now`.
pub fn unix_secs(now: Timestamp) -> i64 {
    now.as_second()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(expires_at: i64) -> TokenClaims {
        TokenClaims {
            project: ProjectId(7),
            trace: TraceId::parse("trace_id", "trace.with.dots").unwrap(),
            expires_at,
        }
    }

    #[test]
    fn a_token_verifies_until_it_expires() {
        let token = sign(&[1; 32], &claims(100));
        assert!(token.starts_with(TOKEN_PREFIX));
        assert_eq!(claimed_project(&token).unwrap(), ProjectId(7));
        assert_eq!(verify(&[1; 32], &token, 99).unwrap(), claims(100));
        let expired = verify(&[1; 32], &token, 100).unwrap_err();
        assert_eq!(expired.message, "feedback token expired");
    }

    #[test]
    fn another_secret_or_a_changed_payload_fails() {
        let token = sign(&[1; 32], &claims(100));
        assert_eq!(
            verify(&[2; 32], &token, 0).unwrap_err().message,
            "invalid feedback token"
        );
        // Claim a later expiry with the old MAC.
        let (_, tag) = token.rsplit_once('.').unwrap();
        let forged = format!(
            "{TOKEN_PREFIX}{}.{tag}",
            URL_SAFE_NO_PAD.encode("7.999999.trace.with.dots")
        );
        assert_eq!(
            verify(&[1; 32], &forged, 0).unwrap_err().message,
            "invalid feedback token"
        );
        assert!(verify(&[1; 32], "fl_ft_garbage", 0).is_err());
    }
}
