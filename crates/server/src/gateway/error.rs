//! The gateway's own errors, in the shape OpenAI's clients parse:
//! `{"error": {"message", "type", "param", "code"}}`. Errors of the upstream are not these: they
//! pass through as the upstream sent them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ApiError, ErrorCode};

/// An error answered by the gateway itself.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenAiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's error type: `invalid_request_error`, `authentication_error`, …
    pub kind: &'static str,
    /// The field or header at fault.
    pub param: Option<String>,
    /// A stable machine-readable code (feedloop's error codes, or the gateway's below).
    pub code: String,
    /// Seconds to wait, sent as `Retry-After` (rate limits).
    pub retry_after_secs: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: &'a str,
}

impl OpenAiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            message: message.into(),
            kind,
            param: None,
            code: code.into(),
            retry_after_secs: None,
        }
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// 400: the request is not one the gateway can forward.
    pub fn invalid_request(param: &str, message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_request",
            message,
        )
        .with_param(param)
    }

    /// 503: no upstream configured.
    pub fn not_configured() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "gateway_not_configured",
            "the gateway has no upstream: set gateway.upstream_base_url in the config file \
             (or FEEDLOOP_GATEWAY_UPSTREAM_BASE_URL), e.g. to an OpenAI-compatible …/v1 url",
        )
    }

    /// 502: the upstream could not be reached or broke off.
    pub fn upstream_unreachable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_GATEWAY,
            "server_error",
            "upstream_unreachable",
            message,
        )
    }

    /// 504: the upstream did not answer in time.
    pub fn upstream_timeout(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::GATEWAY_TIMEOUT,
            "server_error",
            "upstream_timeout",
            message,
        )
    }

    /// The JSON body, also sent as an event when a stream fails after its status went out.
    pub fn body(&self) -> String {
        serde_json::to_string(&Body {
            error: Inner {
                message: &self.message,
                kind: self.kind,
                param: self.param.as_deref(),
                code: &self.code,
            },
        })
        .expect("an error body serialises")
    }
}

/// feedloop's errors (auth, body limits, the database) keep their status and code.
impl From<ApiError> for OpenAiError {
    fn from(error: ApiError) -> Self {
        let status = match error.code {
            // The gateway names every body problem with 400, as OpenAI does.
            ErrorCode::InvalidField | ErrorCode::InvalidValue => StatusCode::BAD_REQUEST,
            code => code.status(),
        };
        let kind = match status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            status if status.is_server_error() => "server_error",
            _ => "invalid_request_error",
        };
        let code = serde_json::to_value(error.code)
            .ok()
            .and_then(|code| code.as_str().map(str::to_owned))
            .unwrap_or_default();
        Self {
            status,
            message: error.message,
            kind,
            param: error.field,
            code,
            retry_after_secs: error.retry_after_secs,
        }
    }
}

impl IntoResponse for OpenAiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.body(),
        )
            .into_response();
        if let Some(seconds) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_openais_shape() {
        let error = OpenAiError::from(
            ApiError::new(ErrorCode::Unauthorized, "unknown api key").with_field("authorization"),
        );
        assert_eq!(error.status, StatusCode::UNAUTHORIZED);
        let body: serde_json::Value = serde_json::from_str(&error.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"error": {
                "message": "unknown api key",
                "type": "authentication_error",
                "param": "authorization",
                "code": "unauthorized",
            }})
        );
        let body: serde_json::Value =
            serde_json::from_str(&OpenAiError::not_configured().body()).unwrap();
        assert_eq!(body["error"]["param"], serde_json::Value::Null);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("FEEDLOOP_GATEWAY_UPSTREAM_BASE_URL")
        );
    }
}
