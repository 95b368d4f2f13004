//! Web sessions: the `feedloop_session` cookie (HttpOnly, SameSite=Strict, Secure unless turned
//! off for plain-http development), its expiry (idle and absolute), the CSRF token every
//! state-changing cookie request must echo in `X-CSRF-Token`, and which project a cookie request
//! acts on (`X-Feedloop-Project`, or the person's only project).
//!
//! SameSite=Strict already keeps other sites' requests from carrying the cookie; the CSRF token
//! is the second wall (older browsers, same-site subdomains).

use axum::http::{HeaderMap, HeaderValue, Method};
use feedloop_core::auth::{SESSION_PREFIX, UserRole, hash_key, secret_from_random};
use feedloop_core::{ProjectId, Timestamp};
use feedloop_store::access::{StoredSession, User};
use std::time::Duration;
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};

pub const SESSION_COOKIE: &str = "feedloop_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
pub const PROJECT_HEADER: &str = "x-feedloop-project";

/// Activity after which a session is written as seen again; reads in between do not write.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A live session and its person.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    pub session: StoredSession,
    pub hash: [u8; 32],
}

/// A new session's cookie value and CSRF token.
pub fn new_session_secrets() -> (String, String) {
    (
        secret_from_random(SESSION_PREFIX, rand::random()),
        secret_from_random("", rand::random()),
    )
}

/// The session cookie's value, if the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

/// The `Set-Cookie` value that gives the browser a session, or (with `max_age` 0) ends it.
pub fn set_cookie(value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        max_age.as_secs()
    );
    HeaderValue::from_str(&text).expect("cookie values are ascii")
}

pub fn add(at: Timestamp, duration: Duration) -> Timestamp {
    let micros = i64::try_from(duration.as_micros()).unwrap_or(i64::MAX);
    Timestamp::from_microsecond(at.as_microsecond().saturating_add(micros))
        .unwrap_or(Timestamp::MAX)
}

/// A session is live until its absolute end and while it has been used within `idle`.
pub fn is_live(session: &StoredSession, now: Timestamp, idle: Duration) -> bool {
    now < session.expires_at && now < add(session.last_seen_at, idle)
}

fn expired() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthorized,
        "the session has expired or ended; sign in again",
    )
}

/// The request's session: `None` without a cookie, 401 for an unknown or expired one.
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<SignedIn>, ApiError> {
    let Some(cookie) = session_cookie(headers) else {
        return Ok(None);
    };
    let hash = hash_key(cookie);
    let Some(session) = state.store.session_by_hash(hash).await? else {
        return Err(expired());
    };
    let now = state.clock.now();
    if !is_live(&session, now, state.config.access.session_idle) {
        state.store.delete_session(hash).await?;
        return Err(expired());
    }
    let Some(user) = state.store.user(session.user_id).await? else {
        return Err(expired());
    };
    if now >= add(session.last_seen_at, TOUCH_EVERY) {
        state.store.touch_session(session.id, now).await?;
    }
    Ok(Some(SignedIn {
        user,
        session,
        hash,
    }))
}

/// Methods that change nothing need no CSRF token.
pub fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// 403 `csrf` unless the request echoes the session's token.
pub fn check_csrf(headers: &HeaderMap, session: &StoredSession) -> Result<(), ApiError> {
    let sent = headers
        .get(CSRF_HEADER)
        .map(HeaderValue::as_bytes)
        .unwrap_or_default();
    if bool::from(sent.ct_eq(session.csrf_token.as_bytes())) && !sent.is_empty() {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::Csrf,
            "a request signed in by cookie that changes something must send the session's \
             csrf token (GET /api/v1/auth/me) in X-CSRF-Token",
        )
        .with_field(CSRF_HEADER))
    }
}

/// The project a cookie request acts on and the person's role in it. A server admin is admin
/// of every project.
pub async fn project_role(
    state: &AppState,
    headers: &HeaderMap,
    user: &User,
) -> Result<(ProjectId, UserRole), ApiError> {
    let named = headers.get(PROJECT_HEADER).map(|value| {
        value.to_str().map(str::trim).map_err(|_| {
            ApiError::new(ErrorCode::InvalidField, "the project name is not ascii")
                .with_field(PROJECT_HEADER)
        })
    });
    let memberships = state.store.memberships_of_user(user.id).await?;
    if memberships.is_empty() && !user.is_admin {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "you are not a member of any project; ask a project admin",
        ));
    }
    let name = match named.transpose()? {
        Some(name) => name.to_owned(),
        None if !user.is_admin && memberships.len() == 1 => memberships[0].project_name.clone(),
        None => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("name the project in the {PROJECT_HEADER} header"),
            )
            .with_field(PROJECT_HEADER));
        }
    };
    if let Some(membership) = memberships.iter().find(|m| m.project_name == name) {
        return Ok((membership.project_id, membership.role));
    }
    if user.is_admin
        && let Some(project) = state.store.project_by_name(&name).await?
    {
        return Ok((project.id, UserRole::Admin));
    }
    Err(ApiError::new(
        ErrorCode::Forbidden,
        format!("you are not a member of project {name:?}"),
    )
    .with_field(PROJECT_HEADER))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    fn session(last_seen: i64, expires: i64) -> StoredSession {
        StoredSession {
            id: 1,
            user_id: 1,
            csrf_token: "token".into(),
            created_at: at(0),
            last_seen_at: at(last_seen),
            expires_at: at(expires),
        }
    }

    #[test]
    fn sessions_end_when_idle_or_at_their_absolute_end() {
        let idle = Duration::from_secs(100);
        assert!(is_live(&session(0, 1_000), at(99), idle));
        assert!(!is_live(&session(0, 1_000), at(100), idle));
        assert!(is_live(&session(950, 1_000), at(999), idle));
        assert!(!is_live(&session(990, 1_000), at(1_000), idle));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_set_strictly() {
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_static("a=1; feedloop_session=fl_ss_abc; b=2"),
        );
        assert_eq!(session_cookie(&headers), Some("fl_ss_abc"));
        let set = set_cookie("v", Duration::from_secs(60), true);
        let set = set.to_str().unwrap();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Max-Age=60",
            "Path=/",
        ] {
            assert!(set.contains(part), "{set}");
        }
    }

    #[test]
    fn csrf_needs_the_exact_token() {
        let stored = session(0, 10);
        let mut headers = HeaderMap::new();
        assert_eq!(
            check_csrf(&headers, &stored).unwrap_err().code,
            ErrorCode::Csrf
        );
        headers.insert(CSRF_HEADER, HeaderValue::from_static("toke"));
        assert!(check_csrf(&headers, &stored).is_err());
        headers.insert(CSRF_HEADER, HeaderValue::from_static("token"));
        assert!(check_csrf(&headers, &stored).is_ok());
    }
}
