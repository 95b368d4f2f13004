//! Ingestion: traces, feedback, and mixed batches.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use feedloop_core::auth::Permission;
use feedloop_store::ItemList;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{OneOrMany, ProjectKey, ValidatedJson};
use crate::ops;
use crate::wire::{
    BatchReceipt, FeedbackBody, IngestBody, IngestReceiptBody, ItemReceipt, TraceBody,
};

/// Ingest one trace (an object) or a batch (an array); parts with the same id merge.
#[utoipa::path(
    post, path = "/api/v1/traces", tag = "ingest",
    request_body(content = TraceBody, description = "one trace, or a JSON array of traces"),
    responses(
        (status = 200, description = "stored: one receipt for an object, `{items}` for an array", body = BatchReceipt),
        (status = 400, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn post_traces(
    State(state): State<AppState>,
    key: ProjectKey,
    body: OneOrMany<TraceBody>,
) -> Result<Response, ApiError> {
    let project = key.require(Permission::Ingest)?;
    Ok(match body {
        OneOrMany::One(trace) => {
            let receipt =
                ops::ingest(&state, project, vec![trace], vec![], |_| String::new()).await?;
            Json(single(receipt.traces)).into_response()
        }
        OneOrMany::Many(traces) => {
            let receipt = ops::ingest(&state, project, traces, vec![], |item| {
                format!("[{}]", item.index)
            })
            .await?;
            Json(BatchReceipt {
                items: receipt.traces,
            })
            .into_response()
        }
    })
}

/// Ingest one feedback item (an object) or a batch (an array). The same id with the same content
/// is a no-op; with other content, 409.
#[utoipa::path(
    post, path = "/api/v1/feedback", tag = "ingest",
    request_body(content = FeedbackBody, description = "one feedback item, or a JSON array of them"),
    responses(
        (status = 200, description = "stored: one receipt for an object, `{items}` for an array", body = BatchReceipt),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn post_feedback(
    State(state): State<AppState>,
    key: ProjectKey,
    body: OneOrMany<FeedbackBody>,
) -> Result<Response, ApiError> {
    let project = key.require(Permission::Ingest)?;
    Ok(match body {
        OneOrMany::One(feedback) => {
            let receipt =
                ops::ingest(&state, project, vec![], vec![feedback], |_| String::new()).await?;
            Json(single(receipt.feedback)).into_response()
        }
        OneOrMany::Many(feedback) => {
            let receipt = ops::ingest(&state, project, vec![], feedback, |item| {
                format!("[{}]", item.index)
            })
            .await?;
            Json(BatchReceipt {
                items: receipt.feedback,
            })
            .into_response()
        }
    })
}

/// Ingest traces and feedback together, in one transaction; traces are stored first.
#[utoipa::path(
    post, path = "/api/v1/ingest", tag = "ingest",
    request_body = IngestBody,
    responses(
        (status = 200, body = IngestReceiptBody),
        (status = 400, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn post_ingest(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<IngestBody>,
) -> Result<Json<IngestReceiptBody>, ApiError> {
    let project = key.require(Permission::Ingest)?;
    let path = |item: feedloop_store::ItemRef| match item.list {
        ItemList::Traces => format!("traces[{}]", item.index),
        ItemList::Feedback => format!("feedback[{}]", item.index),
    };
    Ok(Json(
        ops::ingest(&state, project, body.traces, body.feedback, path).await?,
    ))
}

fn single(mut receipts: Vec<ItemReceipt>) -> ItemReceipt {
    receipts.pop().expect("one item in, one receipt out")
}
