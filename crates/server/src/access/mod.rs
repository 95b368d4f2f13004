//! Who may call, and how much: sessions and CSRF for people ([`session`]), passwords
//! ([`password`]), signed feedback tokens ([`token`]), per-caller rate limits ([`limits`]), and
//! the layers around the router: CORS for public keys and the request time-out.
//!
//! Authentication itself is the [`crate::extract::ProjectKey`] extractor, which every route
//! takes; what each route needs is the one `require(Permission)` in its handler.

pub mod limits;
pub mod password;
pub mod permissions;
pub mod session;
pub mod token;

use axum::extract::{Request, State};
use axum::http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, AUTHORIZATION, ORIGIN, VARY,
};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::is_browser_secret;

/// The routes a public key (or a feedback token) may call from a browser, and so the only ones
/// that answer CORS: writing feedback and signals, and reading the taxonomy the widget's reason
/// chips show.
pub const PUBLIC_PATHS: [&str; 3] = ["/api/v1/feedback", "/api/v1/signals", "/api/v1/taxonomy"];

/// Settings of sessions, tokens, rate limits and time-outs.
#[derive(Debug, Clone)]
pub struct AccessConfig {
    /// Each caller's bucket.
    pub rate_limit: limits::RateLimit,
    /// Longest a request may take (the gateway is exempt: it streams and has its own upstream
    /// time-out); `None`: no limit.
    pub request_timeout: Option<Duration>,
    /// Requests (HTTP and OTLP/gRPC) served at once; past it a request is refused at once with
    /// 503 and `Retry-After` rather than queued (health checks and `/metrics` are not counted).
    /// 0: no limit.
    pub max_in_flight_requests: usize,
    /// A session unused this long ends.
    pub session_idle: Duration,
    /// A session ends this long after sign-in, however active.
    pub session_max: Duration,
    /// Mark the cookie `Secure` (browsers then send it over https and to http://localhost only).
    pub secure_cookies: bool,
    /// The longest life a feedback token may be given.
    pub max_token_ttl: Duration,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            rate_limit: limits::RateLimit::OFF,
            request_timeout: Some(Duration::from_secs(60)),
            max_in_flight_requests: 1_024,
            session_idle: Duration::from_secs(12 * 3600),
            session_max: Duration::from_secs(7 * 24 * 3600),
            secure_cookies: true,
            max_token_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// What a replica keeps for access control.
pub struct AccessState {
    pub limiter: limits::RateLimiter,
    pub token_secrets: token::TokenSecrets,
    /// Permits for requests in flight; `None`: no limit.
    pub in_flight: Option<limits::InFlight>,
}

impl AccessState {
    pub fn new(config: &AccessConfig) -> Self {
        Self {
            limiter: limits::RateLimiter::new(config.rate_limit),
            token_secrets: token::TokenSecrets::default(),
            in_flight: (config.max_in_flight_requests > 0)
                .then(|| limits::InFlight::new(config.max_in_flight_requests)),
        }
    }
}

/// Paths served whatever the load: probes and scrapes must answer when the server is busiest.
const UNCOUNTED_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Sheds load: a request past `max_in_flight_requests` gets 503 (`overloaded`) with
/// `Retry-After` at once. Waiting requests would each hold a body and a task, so memory would
/// grow with the overload; refusing keeps it bounded and tells clients when to come back.
pub async fn limit_in_flight(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(in_flight) = &state.access.in_flight else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if UNCOUNTED_PATHS.contains(&path) {
        return next.run(request).await;
    }
    match in_flight.try_acquire() {
        // Held until the handler has answered (a streamed body is not counted past that).
        Some(_permit) => next.run(request).await,
        None => ApiError::overloaded().into_response(),
    }
}

/// Whether the request carries a credential made for browsers: a public key or a feedback
/// token, in a header or (beacons) in the query.
fn carries_public_key(request: &Request) -> bool {
    if crate::extract::key_in_query(request.uri()).is_some_and(|key| is_browser_secret(&key)) {
        return true;
    }
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    header(AUTHORIZATION.as_str())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| header("x-api-key"))
        .is_some_and(is_browser_secret)
}

/// CORS for public keys and feedback tokens only. A preflight to a public route is answered for any origin (it
/// carries no key to check); the real request is checked by the extractor against the key's
/// allowed origins and gets `Access-Control-Allow-Origin` only if it passed. Secret keys never
/// get CORS headers, so a browser page cannot read what a secret key returns.
pub async fn public_key_cors(request: Request, next: Next) -> Response {
    let public_path = PUBLIC_PATHS.contains(&request.uri().path());
    let origin = request.headers().get(ORIGIN).cloned();
    let (Some(origin), true) = (origin, public_path) else {
        return next.run(request).await;
    };
    if request.method() == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        let headers = response.headers_mut();
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        headers.insert(
            ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, x-api-key"),
        );
        headers.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        headers.insert(VARY, HeaderValue::from_static("Origin"));
        return response;
    }
    let public = carries_public_key(&request);
    let mut response = next.run(request).await;
    let refused = matches!(
        response.status(),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    );
    if public && !refused {
        response
            .headers_mut()
            .insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        response
            .headers_mut()
            .insert(VARY, HeaderValue::from_static("Origin"));
    }
    response
}

/// Ends a request that runs past the configured time-out with 408. The gateway is exempt. A
/// write the store already started may still commit: clients retry with the same ids, which
/// ingest treats as a no-op.
pub async fn request_timeout(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let limit = state.config.access.request_timeout;
    let exempt = request.uri().path().starts_with("/v1/chat/");
    match limit {
        Some(limit) if !exempt => match tokio::time::timeout(limit, next.run(request)).await {
            Ok(response) => response,
            Err(_) => ApiError::new(
                ErrorCode::RequestTimeout,
                format!("the request took longer than {} s", limit.as_secs_f64()),
            )
            .into_response(),
        },
        _ => next.run(request).await,
    }
}
