//! Signing in to the web UI: `POST /api/v1/auth/login` (sets the session cookie),
//! `POST /api/v1/auth/logout`, `GET /api/v1/auth/me` (the person, their projects and roles, and
//! the CSRF token the UI sends back on every change).

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::SET_COOKIE;
use axum::response::{IntoResponse, Response};
use feedloop_core::auth::{UserRole, hash_key};
use feedloop_store::access::{Membership, NewSession, User};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::ToSchema;

use crate::AppState;
use crate::access::{limits, password, session};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{ClientAddr, ValidatedJson};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MembershipView {
    pub project: String,
    #[schema(value_type = String)]
    pub role: UserRole,
}

impl From<Membership> for MembershipView {
    fn from(membership: Membership) -> Self {
        MembershipView {
            project: membership.project_name,
            role: membership.role,
        }
    }
}

/// The signed-in person.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MeBody {
    pub user_id: i64,
    pub email: String,
    /// A server admin is admin of every project.
    pub is_admin: bool,
    pub memberships: Vec<MembershipView>,
    /// Send it as `X-CSRF-Token` on every request that changes something.
    pub csrf_token: String,
}

async fn me_body(state: &AppState, user: User, csrf_token: String) -> Result<MeBody, ApiError> {
    let memberships = state.store.memberships_of_user(user.id).await?;
    Ok(MeBody {
        user_id: user.id,
        email: user.email,
        is_admin: user.is_admin,
        memberships: memberships.into_iter().map(MembershipView::from).collect(),
        csrf_token,
    })
}

fn wrong_credentials() -> ApiError {
    ApiError::new(ErrorCode::Unauthorized, "wrong email or password")
}

/// Sign in with email and password; the answer sets the `feedloop_session` cookie (HttpOnly,
/// SameSite=Strict, Secure) and carries the CSRF token. Attempts are rate-limited per client
/// address.
#[utoipa::path(
    post, path = "/api/v1/auth/login", tag = "auth",
    request_body = LoginBody,
    responses((status = 200, body = MeBody), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody))
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    ValidatedJson(body): ValidatedJson<LoginBody>,
) -> Result<Response, ApiError> {
    let client = client.map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string());
    state
        .access
        .limiter
        .check(&format!("login from {client}"), tokio::time::Instant::now())
        .map_err(|wait| ApiError::rate_limited(limits::retry_after_secs(wait)))?;
    let email = body.email.trim().to_lowercase();
    let user = state.store.user_by_email(&email).await?;
    let hash = user.as_ref().map(|user| user.password_hash.clone());
    if !password::verify_password_blocking(body.password, hash).await {
        return Err(wrong_credentials());
    }
    let user = user.ok_or_else(wrong_credentials)?;
    let (cookie, csrf_token) = session::new_session_secrets();
    let now = state.clock.now();
    let config = &state.config.access;
    state
        .store
        .create_session(
            NewSession {
                hash: hash_key(&cookie),
                user_id: user.id,
                csrf_token: csrf_token.clone(),
                expires_at: session::add(now, config.session_max),
            },
            now,
        )
        .await?;
    let set_cookie = session::set_cookie(&cookie, config.session_max, config.secure_cookies);
    let body = me_body(&state, user, csrf_token).await?;
    Ok(([(SET_COOKIE, set_cookie)], Json(body)).into_response())
}

/// The signed-in person, their projects and the session's CSRF token. Sessions only.
#[utoipa::path(
    get, path = "/api/v1/auth/me", tag = "auth",
    responses((status = 200, body = MeBody), (status = 401, body = ErrorBody))
)]
pub async fn me(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<MeBody>, ApiError> {
    let signed_in = require_session(&state, &headers).await?;
    Ok(Json(
        me_body(&state, signed_in.user, signed_in.session.csrf_token).await?,
    ))
}

/// End the session (it stops working on every replica at once) and clear the cookie.
#[utoipa::path(
    post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody))
)]
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let signed_in = require_session(&state, &headers).await?;
    session::check_csrf(&headers, &signed_in.session)?;
    state.store.delete_session(signed_in.hash).await?;
    let clear = session::set_cookie("", Duration::ZERO, state.config.access.secure_cookies);
    Ok((axum::http::StatusCode::NO_CONTENT, [(SET_COOKIE, clear)]).into_response())
}

async fn require_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<session::SignedIn, ApiError> {
    session::signed_in(state, headers).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::Unauthorized,
            "sign in first: POST /api/v1/auth/login (keys have no session)",
        )
    })
}
