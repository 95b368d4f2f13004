//! Ingestion: traces, feedback, and mixed batches.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use feedloop_core::ProjectId;
use feedloop_core::auth::Permission;
use feedloop_store::ItemList;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{OneOrMany, ProjectKey, ValidatedJson};
use crate::ops;
use crate::wire::{
    BatchReceipt, FeedbackBody, IngestBody, IngestReceiptBody, ItemReceipt, OneOrManyBody,
    ReceiptOrBatch, TraceBody,
};

/// Ingest one trace (an object) or a batch (an array); parts with the same id merge.
#[utoipa::path(
    post, path = "/api/v1/traces", tag = "ingest",
    request_body(content = OneOrManyBody<TraceBody>, description = "one trace, or a JSON array of traces"),
    responses(
        (status = 200, description = "stored: one receipt for an object, `{items}` for an array", body = ReceiptOrBatch),
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
    ingest_one_or_many(
        &state,
        project,
        body,
        |traces| (traces, vec![]),
        |receipt| receipt.traces,
    )
    .await
}

/// Ingest one feedback item (an object) or a batch (an array). The same id with the same content
/// is a no-op; with other content, 409.
#[utoipa::path(
    post, path = "/api/v1/feedback", tag = "ingest",
    request_body(content = OneOrManyBody<FeedbackBody>, description = "one feedback item, or a JSON array of them"),
    responses(
        (status = 200, description = "stored: one receipt for an object, `{items}` for an array", body = ReceiptOrBatch),
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
    let project = key.require(Permission::Feedback)?;
    body.check_each(|item, field| key.may_write_about(&item.trace_id, field))?;
    ingest_one_or_many(
        &state,
        project,
        body,
        |feedback| (vec![], feedback),
        |receipt| receipt.feedback,
    )
    .await
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

/// Items sorted into the two lists of a mixed batch.
pub(super) type IngestLists = (Vec<TraceBody>, Vec<FeedbackBody>);

/// Ingests one item (answered with its receipt) or an array (answered with `{items}`, errors
/// naming `[index]`). `split` puts the items into the traces or the feedback list; `pick` takes
/// their receipts back out.
pub(super) async fn ingest_one_or_many<T>(
    state: &AppState,
    project: ProjectId,
    body: OneOrMany<T>,
    split: fn(Vec<T>) -> IngestLists,
    pick: fn(IngestReceiptBody) -> Vec<ItemReceipt>,
) -> Result<Response, ApiError> {
    Ok(match body {
        OneOrMany::One(item) => {
            let (traces, feedback) = split(vec![item]);
            let receipt = ops::ingest(state, project, traces, feedback, |_| String::new()).await?;
            let single: ItemReceipt = pick(receipt).pop().expect("one item in, one receipt out");
            Json(single).into_response()
        }
        OneOrMany::Many(items) => {
            let (traces, feedback) = split(items);
            let receipt = ops::ingest(state, project, traces, feedback, |item| {
                format!("[{}]", item.index)
            })
            .await?;
            Json(BatchReceipt {
                items: pick(receipt),
            })
            .into_response()
        }
    })
}
