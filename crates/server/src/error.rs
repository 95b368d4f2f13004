//! API errors: one exhaustive table from error code to HTTP status, and one JSON shape,
//! `{"error": {"code", "message", "field"}}`. A 500 never carries internals: they go to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use feedloop_core::ValidationError;
use feedloop_lessons::LoopError;
use feedloop_memory::MemoryError;
use feedloop_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Stable, machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not valid JSON.
    MalformedJson,
    /// The body is not a valid protobuf message of the expected type.
    MalformedProtobuf,
    /// The body cannot be read as sent (a corrupt gzip stream).
    MalformedBody,
    /// A field has the wrong type, is missing, or is not allowed.
    InvalidField,
    /// A field is well-formed but breaks a rule (a range, a scale, a quote).
    InvalidValue,
    /// Feedback names a category that the project's taxonomy does not have.
    UnknownCategory,
    /// A query parameter is unknown or malformed.
    InvalidQuery,
    /// A path parameter is malformed (not a number where one is expected, say).
    InvalidPath,
    /// No API key, or a key that is unknown or revoked.
    Unauthorized,
    /// The key's role does not allow this call.
    Forbidden,
    /// A request authenticated by a session cookie changes state without the session's
    /// `X-CSRF-Token`.
    Csrf,
    /// Too many requests for this key (or public key and client address); see `Retry-After`.
    RateLimited,
    /// The request took longer than the configured time-out.
    RequestTimeout,
    UserNotFound,
    /// The user is not a member of the project.
    MemberNotFound,
    TraceNotFound,
    SessionNotFound,
    KeyNotFound,
    CategoryNotFound,
    LessonNotFound,
    WebhookNotFound,
    ClusterNotFound,
    /// No dataset of that name, or no such version of it.
    DatasetNotFound,
    RouteNotFound,
    QueueNotFound,
    ReviewItemNotFound,
    MethodNotAllowed,
    /// The id exists with other content.
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    /// The database is unreachable or overloaded; retry later.
    Unavailable,
    /// The server is already working on as many requests as it is configured to
    /// (`max_in_flight_requests`); retry after `Retry-After`.
    Overloaded,
    /// The disk holding the database is full: nothing was written; free space and retry.
    StorageFull,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            Self::MalformedJson
            | Self::MalformedProtobuf
            | Self::MalformedBody
            | Self::InvalidQuery
            | Self::InvalidPath => StatusCode::BAD_REQUEST,
            Self::InvalidField | Self::InvalidValue | Self::UnknownCategory => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::Csrf => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::TraceNotFound
            | Self::SessionNotFound
            | Self::KeyNotFound
            | Self::CategoryNotFound
            | Self::LessonNotFound
            | Self::WebhookNotFound
            | Self::ClusterNotFound
            | Self::DatasetNotFound
            | Self::RouteNotFound
            | Self::QueueNotFound
            | Self::ReviewItemNotFound
            | Self::UserNotFound
            | Self::MemberNotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unavailable | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// An error as the API reports it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// The field or parameter at fault, as a path (`[3].rating.value`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds to wait before retrying, sent as `Retry-After` (rate limits).
    #[serde(skip)]
    pub retry_after_secs: Option<u64>,
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ApiError,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
            retry_after_secs: None,
        }
    }

    /// Too many requests: retry after `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        let mut error = Self::new(
            ErrorCode::RateLimited,
            format!("rate limit exceeded; retry in {seconds} s"),
        );
        error.retry_after_secs = Some(seconds);
        error
    }

    /// Too many requests in flight on this server: retry after a second.
    pub fn overloaded() -> Self {
        let mut error = Self::new(
            ErrorCode::Overloaded,
            "the server is at its limit of requests in flight; retry in 1 s",
        );
        error.retry_after_secs = Some(1);
        error
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn invalid(error: ValidationError) -> Self {
        Self::new(
            ErrorCode::InvalidValue,
            format!("{}: {}", error.field, error.message),
        )
        .with_field(error.field)
    }

    /// Maps a store error; `item_path` names a batch item's place in the request.
    pub fn from_store(
        error: StoreError,
        item_path: impl Fn(feedloop_store::ItemRef) -> String,
    ) -> Self {
        let place = |item: Option<feedloop_store::ItemRef>, field: &str| match item {
            Some(item) => feedloop_core::error::join_path(&item_path(item), field),
            None => field.to_owned(),
        };
        match error {
            StoreError::Invalid { item, error } => {
                let field = place(item, &error.field);
                Self::new(ErrorCode::InvalidValue, format!("{field}: {}", error.message)).with_field(field)
            }
            StoreError::UnknownCategory { item, field, name } => Self::new(
                ErrorCode::UnknownCategory,
                format!("category {name:?} is not in the project's taxonomy (or is retired); add it first"),
            )
            .with_field(place(item, &field)),
            StoreError::Conflict { item, field, message } => {
                Self::new(ErrorCode::Conflict, message).with_field(place(item, &field))
            }
            StoreError::NotFound { what, id } => {
                let code = match what {
                    "key" => ErrorCode::KeyNotFound,
                    "category" => ErrorCode::CategoryNotFound,
                    "session" => ErrorCode::SessionNotFound,
                    "lesson" => ErrorCode::LessonNotFound,
                    "cluster" => ErrorCode::ClusterNotFound,
                    "queue" => ErrorCode::QueueNotFound,
                    "review item" => ErrorCode::ReviewItemNotFound,
                    "dataset" => ErrorCode::DatasetNotFound,
                    "webhook" => ErrorCode::WebhookNotFound,
                    "user" => ErrorCode::UserNotFound,
                    "member" => ErrorCode::MemberNotFound,
                    _ => ErrorCode::TraceNotFound,
                };
                Self::new(code, format!("{what} {id:?} not found"))
            }
            StoreError::Unavailable(detail) => {
                tracing::warn!(%detail, "store unavailable");
                Self::new(ErrorCode::Unavailable, "the database is unavailable; retry later")
            }
            StoreError::StorageFull(detail) => {
                tracing::error!(%detail, "the database disk is full");
                Self::new(
                    ErrorCode::StorageFull,
                    "the database disk is full; nothing was stored: free space and retry",
                )
            }
            StoreError::Config(detail) | StoreError::Internal(detail) => {
                tracing::error!(%detail, "store error");
                Self::new(ErrorCode::Internal, "internal error; see the server log")
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        Self::from_store(error, |item| format!("[{}]", item.index))
    }
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        Self::invalid(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let retry_after = self.retry_after_secs;
        let mut response = (status, axum::Json(ErrorBody { error: self })).into_response();
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds),
            );
        } else if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

/// Semantic memory's errors: the store's as above, a missing trace, the model unavailable.
impl From<MemoryError> for ApiError {
    fn from(error: MemoryError) -> Self {
        match error {
            MemoryError::Store(error) => error.into(),
            MemoryError::TraceNotFound(id) => ApiError::new(
                ErrorCode::TraceNotFound,
                format!("trace {:?} not found", id.as_str()),
            ),
            MemoryError::NoInput(id) => ApiError::new(
                ErrorCode::InvalidValue,
                format!("trace_id: trace {:?} has no input to compare", id.as_str()),
            )
            .with_field("trace_id"),
            MemoryError::Embed(error) => {
                tracing::error!(%error, "embedding a query failed");
                ApiError::new(
                    ErrorCode::Unavailable,
                    format!("the embedding model is unavailable: {error}"),
                )
            }
            error @ (MemoryError::Vector(_)
            | MemoryError::Io(..)
            | MemoryError::Serialize(_)
            | MemoryError::Internal(_)) => {
                tracing::error!(%error, "search failed");
                ApiError::new(ErrorCode::Internal, "internal error")
            }
        }
    }
}

/// The loop's errors: the store's and semantic memory's as above, bad input, a missing lesson.
impl From<LoopError> for ApiError {
    fn from(error: LoopError) -> Self {
        match error {
            LoopError::Store(error) => error.into(),
            LoopError::Memory(error) => error.into(),
            LoopError::Invalid(error) => Self::invalid(error),
            LoopError::LessonNotFound(id) => Self::new(
                ErrorCode::LessonNotFound,
                format!("lesson {:?} not found", id.as_str()),
            ),
            LoopError::TraceNotFound(id) => Self::new(
                ErrorCode::TraceNotFound,
                format!("trace {:?} not found", id.as_str()),
            ),
        }
    }
}

/// The dataset operations' errors: the store's and semantic memory's as above, a missing
/// dataset or version, an abandoned export.
impl From<feedloop_datasets::DatasetError> for ApiError {
    fn from(error: feedloop_datasets::DatasetError) -> Self {
        use feedloop_datasets::DatasetError;
        match error {
            DatasetError::Store(error) => error.into(),
            DatasetError::Memory(error) => error.into(),
            DatasetError::DatasetNotFound(name) => Self::new(
                ErrorCode::DatasetNotFound,
                format!("dataset {name:?} not found"),
            ),
            DatasetError::VersionNotFound { dataset, version } => Self::new(
                ErrorCode::DatasetNotFound,
                format!("dataset {dataset:?} has no version {version}"),
            )
            .with_field("version"),
            DatasetError::Embed(error) => {
                tracing::error!(%error, "embedding dataset items failed");
                Self::new(
                    ErrorCode::Unavailable,
                    format!("the embedding model is unavailable: {error}"),
                )
            }
            error @ (DatasetError::Vector(_)
            | DatasetError::Abandoned
            | DatasetError::Internal(_)) => {
                tracing::error!(%error, "dataset operation failed");
                Self::new(ErrorCode::Internal, "internal error; see the server log")
            }
        }
    }
}
