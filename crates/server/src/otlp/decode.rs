//! OTLP/HTTP bodies: the encoding named by the content type, gzip undone within the body limit,
//! and the request decoded; answers in the request's encoding.

use axum::http::HeaderMap;
use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use std::io::Read;

use crate::error::{ApiError, ErrorCode};

/// The two encodings of OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The encoding the content type names; anything else is 415.
    pub fn of(headers: &HeaderMap) -> Result<Self, ApiError> {
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = content_type.split(';').next().unwrap_or("").trim();
        if mime.eq_ignore_ascii_case("application/x-protobuf")
            || mime.eq_ignore_ascii_case("application/protobuf")
        {
            Ok(Self::Protobuf)
        } else if mime.eq_ignore_ascii_case("application/json") {
            Ok(Self::Json)
        } else {
            Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                format!(
                    "expected content-type application/x-protobuf or application/json, got {content_type:?}"
                ),
            )
            .with_field("content-type"))
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// The body with its content encoding undone: `gzip`, or none. The result is held to `limit`
/// bytes too, so a small compressed body cannot unpack into an absurd one.
pub fn decompress(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    let encoding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => {
            let mut unpacked = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            let mut reader = flate2::read::MultiGzDecoder::new(&body[..]).take(limit as u64 + 1);
            reader.read_to_end(&mut unpacked).map_err(|error| {
                ApiError::new(
                    ErrorCode::MalformedBody,
                    format!("the gzip body could not be decompressed: {error}"),
                )
                .with_field("content-encoding")
            })?;
            if unpacked.len() > limit {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the decompressed body is larger than the limit of {limit} bytes"),
                ));
            }
            Ok(Bytes::from(unpacked))
        }
        other => Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("content-encoding {other:?} is not supported; send gzip or none"),
        )
        .with_field("content-encoding")),
    }
}

/// Decodes the request; a body that is not a valid message is 400 with the decoder's reason.
pub fn decode(bytes: &[u8], encoding: Encoding) -> Result<ExportTraceServiceRequest, ApiError> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(bytes).map_err(|error| {
            ApiError::new(
                ErrorCode::MalformedProtobuf,
                format!("the body is not a valid ExportTraceServiceRequest: {error}"),
            )
            .with_field("body")
        }),
        Encoding::Json => {
            let mut deserializer = serde_json::Deserializer::from_slice(bytes);
            let request: ExportTraceServiceRequest =
                serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
                    let path = error.path().to_string();
                    let inner = error.into_inner();
                    let error = ApiError::new(
                        ErrorCode::MalformedJson,
                        format!(
                            "the body is not a valid OTLP/JSON ExportTraceServiceRequest: {inner}"
                        ),
                    );
                    if path == "." {
                        error
                    } else {
                        error.with_field(path)
                    }
                })?;
            deserializer.end().map_err(|e| {
                ApiError::new(ErrorCode::MalformedJson, format!("malformed json: {e}"))
            })?;
            Ok(request)
        }
    }
}

/// The OTLP answer in the request's encoding.
pub fn respond(response: ExportTraceServiceResponse, encoding: Encoding) -> Response {
    let body = match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        // A full success is an empty object, as OTLP/JSON leaves unset fields out.
        Encoding::Json if response.partial_success.is_none() => b"{}".to_vec(),
        Encoding::Json => {
            serde_json::to_vec(&response).expect("an OTLP response serialises to json")
        }
    };
    ([(CONTENT_TYPE, encoding.content_type())], body).into_response()
}
