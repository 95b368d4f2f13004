//! Extractors that hold the line at the edge: JSON bodies with content-type, size and field
//! checks ([`ValidatedJson`]), and who is calling ([`ProjectKey`]: keys, feedback tokens,
//! session cookies).

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, ORIGIN};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use bytes::Bytes;
use feedloop_core::auth::{KeyRole, PUBLIC_KEY_PREFIX, Permission, UserRole, hash_key};
use feedloop_core::{ProjectId, TraceId};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::AppState;
use crate::access::token::{self, TOKEN_PREFIX};
use crate::access::{limits, session};
use crate::error::{ApiError, ErrorCode};
use crate::replica::KeyState;

/// A JSON body, checked: `application/json`, at most the configured size, valid JSON, and of the
/// expected shape (unknown fields rejected where the type says so), with errors naming the field.
pub struct ValidatedJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ValidatedJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = json_body(request, state.config.max_body_bytes).await?;
        parse_json(&bytes).map(ValidatedJson)
    }
}

/// Reads a JSON body within `limit` bytes.
pub async fn json_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("expected content-type application/json, got {content_type:?}"),
        )
        .with_field("content-type"));
    }
    read_body(request, limit).await
}

/// Reads a beacon's JSON body: `application/json`, or `text/plain` (what `sendBeacon` sends
/// cross-origin); any other type is 415.
async fn beacon_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if mime.eq_ignore_ascii_case("text/plain") {
        read_body(request, limit).await
    } else {
        json_body(request, limit).await.map_err(|error| {
            if error.code == ErrorCode::UnsupportedMediaType {
                ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!("expected content-type application/json or text/plain (a beacon), got {content_type:?}"),
                )
                .with_field("content-type")
            } else {
                error
            }
        })
    }
}

/// Reads a body of any type within `limit` bytes; a larger one is 413.
pub async fn read_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body is larger than the limit of {limit} bytes"),
        )
    };
    let body = http_body_util::Limited::new(request.into_body(), limit);
    match body.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            // The limit error may come wrapped in axum's own error type.
            let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&*error);
            while let Some(e) = source {
                if e.is::<http_body_util::LengthLimitError>() {
                    return Err(too_large());
                }
                source = e.source();
            }
            Err(ApiError::new(
                ErrorCode::MalformedBody,
                format!("could not read the body: {error}"),
            ))
        }
    }
}

/// Parses JSON with the path of the field at fault in the error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                ApiError::new(ErrorCode::MalformedJson, format!("malformed json: {inner}"))
            }
            serde_json::error::Category::Data | serde_json::error::Category::Io => {
                let field = if path == "." { String::new() } else { path };
                let error =
                    ApiError::new(ErrorCode::InvalidField, strip_position(&inner.to_string()));
                if field.is_empty() {
                    error
                } else {
                    error.with_field(field)
                }
            }
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::new(ErrorCode::MalformedJson, format!("malformed json: {e}")))?;
    Ok(value)
}

/// serde_json appends " at line 1 column 42"; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq)]
pub enum Caller {
    /// An API key, secret or public.
    Key { id: i64, role: KeyRole },
    /// A person signed in to the web UI, with their role in the project.
    User { id: i64, role: UserRole },
    /// A signed feedback token: feedback and signals about one trace.
    FeedbackToken { trace: TraceId },
}

/// The project of an authenticated request and who is calling: an API key (`Authorization:
/// Bearer` or `X-API-Key`), a feedback token (`Bearer fl_ft_…`), or a session cookie. Public
/// keys are checked against their allowed origins, cookie requests that change state against
/// the CSRF token, and every caller against its rate limit.
#[derive(Debug, Clone)]
pub struct ProjectKey {
    pub project: ProjectId,
    pub caller: Caller,
}

impl ProjectKey {
    /// Who acts, as recorded in lesson versions, approvals and the audit log.
    pub fn actor(&self) -> String {
        match &self.caller {
            Caller::Key { id, .. } => format!("key {id}"),
            Caller::User { id, .. } => format!("user {id}"),
            Caller::FeedbackToken { trace } => format!("feedback token for {}", trace.as_str()),
        }
    }

    /// The caller's role, as `GET /api/v1/project` reports it.
    pub fn role_name(&self) -> &'static str {
        match &self.caller {
            Caller::Key { role, .. } => role.as_str(),
            Caller::User { role, .. } => role.as_str(),
            Caller::FeedbackToken { .. } => "feedback_token",
        }
    }

    pub fn allows(&self, permission: Permission) -> bool {
        match &self.caller {
            Caller::Key { role, .. } => role.allows(permission),
            Caller::User { role, .. } => role.allows(permission),
            Caller::FeedbackToken { .. } => permission == Permission::Feedback,
        }
    }

    /// The project, if the caller may do what `permission` covers; 403 otherwise.
    pub fn require(&self, permission: Permission) -> Result<ProjectId, ApiError> {
        if self.allows(permission) {
            Ok(self.project)
        } else {
            let who = match &self.caller {
                Caller::Key { role, .. } => format!("a key with role {}", role.as_str()),
                Caller::User { role, .. } => format!("a {}", role.as_str()),
                Caller::FeedbackToken { .. } => "a feedback token".to_owned(),
            };
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("{who} cannot do this"),
            ))
        }
    }

    /// A feedback token may only write about its own trace; every other caller about any.
    /// `field` names the trace id in the body (`trace_id`, `[2].trace_id`).
    pub fn may_write_about(&self, trace_id: &str, field: &str) -> Result<(), ApiError> {
        match &self.caller {
            Caller::FeedbackToken { trace } if trace.as_str() != trace_id => Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("this feedback token is for trace {:?} only", trace.as_str()),
            )
            .with_field(field)),
            _ => Ok(()),
        }
    }

    /// The bucket this caller's requests are counted in. Public keys and tokens are shared by
    /// many clients, so each client address has its own.
    fn rate_bucket(&self, client: Option<SocketAddr>) -> String {
        let client = client.map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string());
        match &self.caller {
            Caller::Key { id, role } if role.is_public() => format!("key {id} from {client}"),
            Caller::Key { id, .. } => format!("key {id}"),
            Caller::User { id, .. } => format!("user {id}"),
            Caller::FeedbackToken { .. } => format!("tokens of {} from {client}", self.project),
        }
    }
}

/// The secret of `Authorization: Bearer …` or `X-API-Key: …`.
pub fn bearer_secret(headers: &HeaderMap) -> Option<&str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header(AUTHORIZATION.as_str())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| header("x-api-key"))
        .map(str::trim)
}

/// The client's address, when the server was started with connection info.
pub fn client_addr(parts: &Parts) -> Option<SocketAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0)
}

/// The client's address (when the server has connection info), for per-client limits.
pub struct ClientAddr(pub Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(parts)))
    }
}

impl FromRequestParts<AppState> for ProjectKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // The permission layer authenticated this request already (and counted it).
        if let Some(key) = parts.extensions.get::<ProjectKey>() {
            return Ok(key.clone());
        }
        let in_query = match bearer_secret(&parts.headers) {
            Some(_) => None,
            None => beacon_secret(parts)?,
        };
        if in_query.is_some() {
            parts.extensions.insert(BeaconRequest);
        }
        let key = if let Some(secret) = bearer_secret(&parts.headers).or(in_query.as_deref()) {
            if secret.starts_with(TOKEN_PREFIX) {
                ProjectKey::from_feedback_token(state, secret).await?
            } else {
                let known = known_key(state, secret).await?;
                if known.role.is_public() {
                    check_origin(&parts.method, &parts.headers, &known.allowed_origins)?;
                } else if in_query.is_some() {
                    return Err(secret_in_query());
                }
                known.into()
            }
        } else if let Some(signed_in) = session::signed_in(state, &parts.headers).await? {
            if !session::is_safe(&parts.method) {
                session::check_csrf(&parts.headers, &signed_in.session)?;
            }
            let (project, role) =
                session::project_role(state, &parts.headers, &signed_in.user).await?;
            ProjectKey {
                project,
                caller: Caller::User {
                    id: signed_in.user.id,
                    role,
                },
            }
        } else {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "an api key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' \
                 (or sign in: POST /api/v1/auth/login)",
            ));
        };
        state
            .access
            .limiter
            .check(
                &key.rate_bucket(client_addr(parts)),
                tokio::time::Instant::now(),
            )
            .map_err(|wait| ApiError::rate_limited(limits::retry_after_secs(wait)))?;
        Ok(key)
    }
}

/// The route a beacon posts to with its credential in the query (`?key=`), since
/// `navigator.sendBeacon` cannot set headers.
pub const BEACON_PATH: &str = "/api/v1/signals";

/// Marks a request whose credential came from the query: a beacon, whose JSON body may be sent
/// as `text/plain` (the only type a beacon can send cross-origin without a preflight).
#[derive(Debug, Clone, Copy)]
pub struct BeaconRequest;

/// The `key` query parameter of a beacon (`POST /api/v1/signals?key=…`), if any. Only public
/// keys and feedback tokens may travel in a URL: anything else is refused before it is looked
/// up, so a secret key put there by mistake does not work (and should be rotated).
fn beacon_secret(parts: &Parts) -> Result<Option<String>, ApiError> {
    let Some(secret) = key_in_query(&parts.uri) else {
        return Ok(None);
    };
    if parts.method != Method::POST || parts.uri.path() != BEACON_PATH {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            format!("a key in the query is only accepted by POST {BEACON_PATH} (beacons); send 'Authorization: Bearer <key>'"),
        )
        .with_field("key"));
    }
    if !is_browser_secret(&secret) {
        return Err(secret_in_query());
    }
    Ok(Some(secret.trim().to_owned()))
}

/// The `key` query parameter (a beacon's credential), if any.
pub(crate) fn key_in_query(uri: &axum::http::Uri) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(uri.query()?)
        .unwrap_or_default()
        .into_iter()
        .find_map(|(name, value)| (name == "key").then_some(value))
}

/// A credential made for browsers: a public key or a feedback token (never a secret key).
pub(crate) fn is_browser_secret(secret: &str) -> bool {
    let secret = secret.trim();
    secret.starts_with(PUBLIC_KEY_PREFIX) || secret.starts_with(TOKEN_PREFIX)
}

fn secret_in_query() -> ApiError {
    ApiError::new(
        ErrorCode::Unauthorized,
        "only a public key (fl_pk_) or a feedback token (fl_ft_) may be sent in the query; send \
         secret keys in the Authorization header only (and rotate one that was sent in a URL)",
    )
    .with_field("key")
}

/// 403 unless the request's `Origin` is one the public key allows. A read (GET or HEAD) without
/// an `Origin` is let through: browsers send `Origin` with every cross-origin request, so a
/// foreign page is still refused, but not with a same-origin GET (the demo page reading the
/// taxonomy), and what a public key may read (the taxonomy's names) is shown in every widget.
fn check_origin(method: &Method, headers: &HeaderMap, allowed: &[String]) -> Result<(), ApiError> {
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
    match origin {
        Some(origin) if allowed.iter().any(|o| o == origin) => Ok(()),
        None if matches!(*method, Method::GET | Method::HEAD) => Ok(()),
        Some(origin) => Err(ApiError::new(
            ErrorCode::Forbidden,
            format!("origin {origin:?} is not allowed for this public key"),
        )
        .with_field("origin")),
        None => Err(ApiError::new(
            ErrorCode::Forbidden,
            "a public key is only accepted from a browser origin it allows (no Origin header \
             was sent); servers use a secret ingest key",
        )
        .with_field("origin")),
    }
}

/// A key as the replica's cache holds it.
#[derive(Debug, Clone)]
pub struct KnownKey {
    pub project: ProjectId,
    pub id: i64,
    pub role: KeyRole,
    pub allowed_origins: Arc<[String]>,
}

impl From<KnownKey> for ProjectKey {
    fn from(key: KnownKey) -> Self {
        ProjectKey {
            project: key.project,
            caller: Caller::Key {
                id: key.id,
                role: key.role,
            },
        }
    }
}

/// Looks a key secret up through the replica's key cache: the key, or 401.
async fn known_key(state: &AppState, secret: &str) -> Result<KnownKey, ApiError> {
    let hash = hash_key(secret);
    let known = match state.keys.get(&hash) {
        Some(known) => known,
        None => {
            let known = match state.store.key_by_hash(hash).await? {
                Some(key) if key.revoked_at.is_none() => KeyState::Valid(KnownKey {
                    project: key.project_id,
                    id: key.id,
                    role: key.role,
                    allowed_origins: key.allowed_origins.into(),
                }),
                Some(_) => KeyState::Revoked,
                None => KeyState::Unknown,
            };
            state.keys.put(hash, known.clone());
            known
        }
    };
    match known {
        KeyState::Valid(key) => Ok(key),
        KeyState::Revoked => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "this api key has been revoked",
        )),
        KeyState::Unknown => Err(ApiError::new(ErrorCode::Unauthorized, "unknown api key")),
    }
}

impl ProjectKey {
    /// Looks a key secret up (through the replica's key cache): its project and role, or 401.
    /// The gateway and OTLP/gRPC call this too, with a key from their own headers; a public
    /// key found here has no origin to check and only ever gets `Permission::Feedback`, which
    /// neither of them asks for. The call counts against the key's rate limit, as through the
    /// extractor.
    pub async fn from_secret(state: &AppState, secret: &str) -> Result<Self, ApiError> {
        let key = ProjectKey::from(known_key(state, secret).await?);
        state
            .access
            .limiter
            .check(&key.rate_bucket(None), tokio::time::Instant::now())
            .map_err(|wait| ApiError::rate_limited(limits::retry_after_secs(wait)))?;
        Ok(key)
    }

    /// Verifies a feedback token against its project's secret.
    async fn from_feedback_token(state: &AppState, token: &str) -> Result<Self, ApiError> {
        let project = token::claimed_project(token)?;
        let secret = state.access.token_secrets.get(state, project).await?;
        let claims = token::verify(&secret, token, token::unix_secs(state.clock.now()))?;
        Ok(ProjectKey {
            project: claims.project,
            caller: Caller::FeedbackToken {
                trace: claims.trace,
            },
        })
    }
}

/// A body that is one JSON object or a JSON array of them (a batch). Decided by the first
/// character, so that errors keep their field paths (`[3].rating.value`).
pub enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T: DeserializeOwned> FromRequest<AppState> for OneOrMany<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.config.max_body_bytes;
        let bytes = if request.extensions().get::<BeaconRequest>().is_some() {
            beacon_body(request, limit).await?
        } else {
            json_body(request, limit).await?
        };
        Self::parse(&bytes)
    }
}

impl<T: DeserializeOwned> OneOrMany<T> {
    /// Parses a JSON body that is one item (an object) or an array of them.
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => parse_json(bytes).map(OneOrMany::Many),
            _ => parse_json(bytes).map(OneOrMany::One),
        }
    }
}

impl<T> OneOrMany<T> {
    /// Runs `check` on every item with the path of its `trace_id` (`trace_id`, `[2].trace_id`).
    pub fn check_each(
        &self,
        check: impl Fn(&T, &str) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        match self {
            OneOrMany::One(item) => check(item, "trace_id"),
            OneOrMany::Many(items) => items
                .iter()
                .enumerate()
                .try_for_each(|(index, item)| check(item, &format!("[{index}].trace_id"))),
        }
    }
}

/// Path parameters, parsed as axum's `Path` does; a malformed one (text where a number is
/// expected) is 400 `invalid_path` with the JSON error body naming the parameter, not axum's
/// plain-text rejection.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(rejection) => Err(path_error(rejection)),
        }
    }
}

fn path_error(rejection: axum::extract::rejection::PathRejection) -> ApiError {
    use axum::extract::path::ErrorKind;
    use axum::extract::rejection::PathRejection;
    let PathRejection::FailedToDeserializePathParams(error) = &rejection else {
        // The route has no such parameter: a bug in the router, not the caller's fault.
        tracing::error!(error = %rejection.body_text(), "path parameters missing");
        return ApiError::new(ErrorCode::Internal, "internal error; see the server log");
    };
    let field = match error.kind() {
        ErrorKind::ParseErrorAtKey { key, .. }
        | ErrorKind::InvalidUtf8InPathParam { key }
        | ErrorKind::DeserializeError { key, .. } => Some(key.clone()),
        _ => None,
    };
    let message = format!("malformed path parameter: {}", error.body_text());
    let error = ApiError::new(ErrorCode::InvalidPath, message);
    match field {
        Some(field) => error.with_field(field),
        None => error,
    }
}
