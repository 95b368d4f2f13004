//! OTLP/HTTP: `POST /v1/traces`, protobuf or JSON, gzip or not. The project is the API key's.

use axum::extract::{Request, State};
use axum::response::Response;
use feedloop_core::auth::Permission;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ProjectKey, read_body};
use crate::otlp::decode::{Encoding, decode, decompress, respond};

/// Export spans (OTLP/HTTP). Answers `ExportTraceServiceResponse` in the request's encoding, with
/// a partial success naming the spans that could not be stored and why.
pub async fn export_traces(
    State(state): State<AppState>,
    key: ProjectKey,
    request: Request,
) -> Result<Response, ApiError> {
    let project = key.require(Permission::Ingest)?;
    let encoding = Encoding::of(request.headers())?;
    let headers = request.headers().clone();
    let limit = state.config.max_body_bytes;
    let body = read_body(request, limit).await?;
    let decoded = tokio::task::spawn_blocking(move || {
        let bytes = decompress(&headers, body, limit)?;
        decode(&bytes, encoding)
    })
    .await
    .map_err(|_| {
        ApiError::new(
            crate::error::ErrorCode::Internal,
            "internal error; see the server log",
        )
    })??;
    let response = crate::otlp::export(&state, project, decoded).await?;
    Ok(respond(response, encoding))
}
