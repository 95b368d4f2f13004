//! OTLP/gRPC: the `TraceService/Export` call on a port of its own, with the same mapping, store
//! and partial success as OTLP/HTTP. The API key comes from the call's metadata
//! (`authorization: Bearer …` or `x-api-key`), gzip is accepted, and a message larger than the
//! body limit is refused before it is decoded.

use feedloop_core::auth::Permission;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::future::Future;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::extract::ProjectKey;

/// The gRPC trace service over the API's state.
pub struct OtlpTraceService {
    state: AppState,
}

#[tonic::async_trait]
impl TraceService for OtlpTraceService {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        // The same bound as HTTP requests: past it, UNAVAILABLE (the exporters retry it).
        let _permit = match &self.state.access.in_flight {
            Some(in_flight) => Some(
                in_flight
                    .try_acquire()
                    .ok_or_else(|| status(ApiError::overloaded()))?,
            ),
            None => None,
        };
        let metadata = request.metadata();
        let text = |name: &str| metadata.get(name).and_then(|v| v.to_str().ok());
        let secret = text("authorization")
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .or_else(|| text("x-api-key"))
            .map(str::trim)
            .ok_or_else(|| {
                Status::unauthenticated(
                    "an api key is required: send 'authorization: Bearer <key>' or 'x-api-key: <key>' metadata",
                )
            })?
            .to_owned();
        let key = ProjectKey::from_secret(&self.state, &secret)
            .await
            .map_err(status)?;
        let project = key.require(Permission::Ingest).map_err(status)?;
        let response = super::export(&self.state, project, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(response))
    }
}

/// The gRPC status for an API error, with the same message.
fn status(error: ApiError) -> Status {
    let message = error.message;
    match error.code {
        ErrorCode::Unauthorized => Status::unauthenticated(message),
        ErrorCode::Forbidden | ErrorCode::Csrf => Status::permission_denied(message),
        ErrorCode::RateLimited => Status::resource_exhausted(message),
        ErrorCode::RequestTimeout => Status::deadline_exceeded(message),
        ErrorCode::Unavailable | ErrorCode::Overloaded => Status::unavailable(message),
        ErrorCode::StorageFull => Status::resource_exhausted(message),
        ErrorCode::PayloadTooLarge => Status::resource_exhausted(message),
        ErrorCode::Internal => Status::internal(message),
        ErrorCode::MalformedJson
        | ErrorCode::MalformedProtobuf
        | ErrorCode::MalformedBody
        | ErrorCode::InvalidField
        | ErrorCode::InvalidValue
        | ErrorCode::UnknownCategory
        | ErrorCode::InvalidQuery
        | ErrorCode::InvalidPath
        | ErrorCode::Conflict
        | ErrorCode::UnsupportedMediaType => Status::invalid_argument(message),
        ErrorCode::TraceNotFound
        | ErrorCode::SessionNotFound
        | ErrorCode::KeyNotFound
        | ErrorCode::CategoryNotFound
        | ErrorCode::LessonNotFound
        | ErrorCode::WebhookNotFound
        | ErrorCode::ClusterNotFound
        | ErrorCode::DatasetNotFound
        | ErrorCode::RouteNotFound
        | ErrorCode::QueueNotFound
        | ErrorCode::ReviewItemNotFound
        | ErrorCode::UserNotFound
        | ErrorCode::MemberNotFound => Status::not_found(message),
        ErrorCode::MethodNotAllowed => Status::unimplemented(message),
    }
}

/// Serves OTLP/gRPC on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let limit = state.config.max_body_bytes;
    let service = TraceServiceServer::new(OtlpTraceService { state })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    tonic::transport::Server::builder()
        .serve_with_incoming_shutdown(
            service,
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
}
