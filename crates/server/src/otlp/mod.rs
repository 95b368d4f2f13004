//! OpenTelemetry ingest: OTLP/HTTP at `/v1/traces` (protobuf or JSON, gzip or not) and
//! OTLP/gRPC on a port of its own. Both decode an `ExportTraceServiceRequest`, hand it to
//! [`mapping`] (the one place that knows the conventions) and store the result through
//! [`crate::ops::store_batch`], as the JSON API does; the answer is OTLP's partial success.

pub mod decode;
pub mod grpc;
pub mod mapping;

use feedloop_core::ProjectId;
use feedloop_store::{IngestBatch, ItemList, StoreError};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use mapping::{MappedExport, Rejections};

/// How often an export is retried without an item the store refused (a feedback id re-used
/// with other content, say) before the whole export fails.
const MAX_REFUSED_ITEMS: usize = 16;

/// Maps and stores an export; what could not be stored is counted in the partial success.
pub async fn export(
    state: &AppState,
    project: ProjectId,
    request: ExportTraceServiceRequest,
) -> Result<ExportTraceServiceResponse, ApiError> {
    // Mapping is CPU work proportional to the body: off the async threads.
    let mapped = tokio::task::spawn_blocking(move || mapping::map_export(request))
        .await
        .map_err(|_| ApiError::new(ErrorCode::Internal, "internal error; see the server log"))?;
    let rejected = store(state, project, mapped).await?;
    Ok(ExportTraceServiceResponse {
        partial_success: (!rejected.is_empty()).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(rejected.num_spans).unwrap_or(i64::MAX),
            error_message: rejected.message(),
        }),
    })
}

/// Stores a mapped export. An item the store refuses for its content is left out with its
/// reason and the rest is stored; anything else (the database unavailable) fails the export,
/// which the client retries.
async fn store(
    state: &AppState,
    project: ProjectId,
    mapped: MappedExport,
) -> Result<Rejections, ApiError> {
    let MappedExport {
        mut traces,
        mut spans_per_part,
        mut feedback,
        mut rejected,
        ..
    } = mapped;
    for _ in 0..=MAX_REFUSED_ITEMS {
        if traces.is_empty() && feedback.is_empty() {
            return Ok(rejected);
        }
        // Only feedback can be refused for its content; keep a copy to retry without it.
        let retry = (!feedback.is_empty()).then(|| (traces.clone(), feedback.clone()));
        let batch = IngestBatch {
            traces: std::mem::take(&mut traces),
            feedback: std::mem::take(&mut feedback),
        };
        let error = match crate::ops::store_batch(state, project, batch).await {
            Ok(_) => return Ok(rejected),
            Err(error) => error,
        };
        let item = match &error {
            StoreError::Invalid { item, .. }
            | StoreError::UnknownCategory { item, .. }
            | StoreError::Conflict { item, .. } => *item,
            StoreError::NotFound { .. }
            | StoreError::Unavailable(_)
            | StoreError::StorageFull(_)
            | StoreError::Config(_)
            | StoreError::Internal(_) => None,
        };
        let (Some(item), Some((kept_traces, kept_feedback))) = (item, retry) else {
            return Err(ApiError::from_store(error, |item| {
                format!("[{}]", item.index)
            }));
        };
        traces = kept_traces;
        feedback = kept_feedback;
        match item.list {
            ItemList::Traces if item.index < traces.len() => {
                let part = traces.remove(item.index);
                let num_spans = spans_per_part.remove(item.index);
                rejected.add(num_spans, format!("trace {}: {error}", part.id.as_str()));
            }
            ItemList::Feedback if item.index < feedback.len() => {
                let refused = feedback.remove(item.index);
                rejected.add(0, format!("feedback {}: {error}", refused.id.as_str()));
            }
            ItemList::Traces | ItemList::Feedback => {
                return Err(ApiError::from_store(error, |item| {
                    format!("[{}]", item.index)
                }));
            }
        }
    }
    Err(ApiError::new(
        ErrorCode::InvalidValue,
        format!("the store refused more than {MAX_REFUSED_ITEMS} items of this export"),
    ))
}
