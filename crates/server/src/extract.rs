//! Extractors that hold the line at the edge: JSON bodies with content-type, size and field
//! checks ([`ValidatedJson`]), and API keys ([`ProjectKey`]).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::request::Parts;
use bytes::Bytes;
use feedloop_core::ProjectId;
use feedloop_core::auth::{KeyRole, Permission, hash_key};
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::AppState;
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

/// The project and role of the API key that authenticated the request.
#[derive(Debug, Clone, Copy)]
pub struct ProjectKey {
    pub project: ProjectId,
    pub role: KeyRole,
    pub key_id: i64,
}

impl ProjectKey {
    /// Who acts, as recorded in lesson versions and approvals.
    pub fn actor(self) -> String {
        format!("key {}", self.key_id)
    }

    pub fn require(self, permission: Permission) -> Result<ProjectId, ApiError> {
        if self.role.allows(permission) {
            Ok(self.project)
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!("a key with role {} cannot do this", self.role.as_str()),
            ))
        }
    }
}

impl FromRequestParts<AppState> for ProjectKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let secret = header(AUTHORIZATION.as_str())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .or_else(|| header("x-api-key"))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "an api key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                )
            })?;
        ProjectKey::from_secret(state, secret).await
    }
}

impl ProjectKey {
    /// Looks a key secret up (through the replica's key cache): its project and role, or 401.
    /// The gateway calls this too, with a key from its own headers.
    pub async fn from_secret(state: &AppState, secret: &str) -> Result<Self, ApiError> {
        let hash = hash_key(secret);
        let known = match state.keys.get(&hash) {
            Some(known) => known,
            None => {
                let known = match state.store.key_by_hash(hash).await? {
                    Some(key) if key.revoked_at.is_none() => KeyState::Valid(ProjectKey {
                        project: key.project_id,
                        role: key.role,
                        key_id: key.id,
                    }),
                    Some(_) => KeyState::Revoked,
                    None => KeyState::Unknown,
                };
                state.keys.put(hash, known);
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
        let bytes = json_body(request, state.config.max_body_bytes).await?;
        match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'[') => parse_json(&bytes).map(OneOrMany::Many),
            _ => parse_json(&bytes).map(OneOrMany::One),
        }
    }
}
