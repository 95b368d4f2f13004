//! Datasets: create and list them, add items (explicitly, or in bulk from a feedback filter),
//! freeze versions, and export them for fine-tuning as a streamed body.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use feedloop_core::auth::Permission;
use feedloop_core::dataset::{Adder, Dataset, ItemOrigin, ItemSource, Split, check_name};
use feedloop_core::pii::PiiMode;
use feedloop_core::{ProjectId, ValidationError};
use feedloop_datasets::{
    DatasetError, ExportEvent, ExportFormat, ExportOptions, FromFeedbackReport, Manifest,
    VersionRef,
};
use feedloop_store::Outcome;
use futures::StreamExt;
use tokio::sync::mpsc;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, ProjectKey, ValidatedJson};
use crate::query::{bad, parse_bool, parse_pairs};
use crate::routes::search::filter_from_body;
use crate::wire::dataset::{
    AddContext, DatasetList, DatasetView, FromFeedbackBody, ItemPage, NewDatasetBody, NewItemsBody,
    NewVersionBody, VersionList, VersionView,
};
use crate::wire::{BatchReceipt, ItemReceipt, ItemStatus};

/// Most items one request adds.
const MAX_ITEMS_PER_REQUEST: usize = 10_000;
/// Most traces one bulk add reads.
const MAX_TRACES: u64 = 100_000;
/// Lines buffered between the export and the response body.
const EXPORT_BUFFER: usize = 1_024;

#[utoipa::path(
    get, path = "/api/v1/datasets", tag = "datasets",
    responses((status = 200, body = DatasetList)),
    security(("api_key" = []))
)]
pub async fn list_datasets(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<DatasetList>, ApiError> {
    let project = key.require(Permission::Read)?;
    let datasets = state.store.list_datasets(project).await?;
    Ok(Json(DatasetList {
        datasets: datasets.into_iter().map(Into::into).collect(),
    }))
}

/// Creates a dataset. 409 if the project has one of that name.
#[utoipa::path(
    post, path = "/api/v1/datasets", tag = "datasets",
    request_body = NewDatasetBody,
    responses(
        (status = 201, body = DatasetView),
        (status = 409, body = ErrorBody, description = "the name is taken"),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn create_dataset(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<NewDatasetBody>,
) -> Result<(StatusCode, Json<DatasetView>), ApiError> {
    let project = key.require(Permission::Review)?;
    let dataset = Dataset {
        name: body.name,
        description: body.description,
        created_at: state.clock.now(),
        created_by: Some(body.author.unwrap_or_else(|| key.actor())),
    };
    dataset.check()?;
    state.store.create_dataset(project, &dataset).await?;
    Ok((
        StatusCode::CREATED,
        Json(find(&state, project, &dataset.name).await?),
    ))
}

#[utoipa::path(
    get, path = "/api/v1/datasets/{name}", tag = "datasets",
    params(("name" = String, Path, description = "dataset name")),
    responses((status = 200, body = DatasetView), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_dataset(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
) -> Result<Json<DatasetView>, ApiError> {
    let project = key.require(Permission::Read)?;
    Ok(Json(find(&state, project, &name).await?))
}

/// Adds items, all or nothing: one receipt per item (`created`, or `duplicate` when the
/// dataset has the item's trace or id already). 409 if an id is taken by other content.
#[utoipa::path(
    post, path = "/api/v1/datasets/{name}/items", tag = "datasets",
    params(("name" = String, Path, description = "dataset name")),
    request_body = NewItemsBody,
    responses(
        (status = 200, body = BatchReceipt),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn add_items(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
    ValidatedJson(body): ValidatedJson<NewItemsBody>,
) -> Result<Json<BatchReceipt>, ApiError> {
    let project = key.require(Permission::Review)?;
    check_name("name", &name)?;
    if body.items.is_empty() || body.items.len() > MAX_ITEMS_PER_REQUEST {
        return Err(ValidationError::new(
            "items",
            format!("must hold 1 to {MAX_ITEMS_PER_REQUEST} items"),
        )
        .into());
    }
    let origin = body.origin.unwrap_or(ItemOrigin::Api);
    if origin == ItemOrigin::Filter {
        return Err(ValidationError::new(
            "origin",
            "filter items are added through items/from-feedback",
        )
        .into());
    }
    let added_by = body.author.unwrap_or_else(|| key.actor());
    let added_at = state.clock.now();
    // Built before the first await: the id maker is no `Send` value.
    let items = {
        let fresh_id = || format!("di_{:024x}", rand::random::<u128>() >> 32);
        let add = AddContext {
            origin,
            added_by: &added_by,
            added_at,
            fresh_id: &fresh_id,
        };
        body.items
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                item.into_item(&add)
                    .map_err(|e| e.within(&format!("items[{index}]")))
            })
            .collect::<Result<Vec<_>, _>>()?
    };
    let outcomes = state
        .store
        .add_dataset_items(project, &name, &items)
        .await?;
    let receipts = items
        .iter()
        .zip(outcomes)
        .map(|(item, outcome)| ItemReceipt {
            id: item.id.as_str().to_owned(),
            status: match outcome {
                Outcome::Created => ItemStatus::Created,
                Outcome::Duplicate | Outcome::Merged => ItemStatus::Duplicate,
            },
        })
        .collect();
    Ok(Json(BatchReceipt { items: receipts }))
}

/// Items in the order they were added. Query: `after` (the previous page's `next_after`),
/// `limit` (1..=1000, default 100), `version` (a number; default the current items).
#[utoipa::path(
    get, path = "/api/v1/datasets/{name}/items", tag = "datasets",
    params(
        ("name" = String, Path, description = "dataset name"),
        ("after" = Option<i64>, Query, description = "the previous page's next_after"),
        ("limit" = Option<u32>, Query, description = "1..=1000, default 100"),
        ("version" = Option<u32>, Query, description = "a version number")
    ),
    responses((status = 200, body = ItemPage), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_items(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ItemPage>, ApiError> {
    let project = key.require(Permission::Read)?;
    let (mut after, mut limit, mut version) = (0i64, 100u32, VersionRef::Latest);
    for (field, value) in parse_pairs(raw.as_deref())? {
        match field.as_str() {
            "after" => {
                after = value
                    .parse()
                    .ok()
                    .filter(|a| *a >= 0)
                    .ok_or_else(|| bad("after", "must be a non-negative integer"))?
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=1_000).contains(l))
                    .ok_or_else(|| bad("limit", "must be an integer in 1..=1000"))?
            }
            "version" => version = parse_version(&value)?,
            other => return Err(bad(other, "unknown query parameter")),
        }
    }
    find(&state, project, &name).await?;
    let up_to = version_end(&state, project, &name, version).await?;
    let items = state
        .store
        .dataset_items(project, &name, after, up_to, limit)
        .await?;
    let next_after = (items.len() == limit as usize)
        .then(|| items.last().map(|i| i.seq))
        .flatten();
    Ok(Json(ItemPage {
        items: items.into_iter().map(|stored| stored.item).collect(),
        next_after,
    }))
}

/// Adds the items of every trace a feedback filter matches (the list filters, e.g.
/// `{"negative_feedback": "true"}`): a correction becomes the ideal output with the original
/// output rejected, a pairwise vote a preference pair, other negative feedback a rejected
/// output, a positive rating an ideal one; categories, annotations and comments are carried.
/// Running it again adds nothing new for the same traces.
#[utoipa::path(
    post, path = "/api/v1/datasets/{name}/items/from-feedback", tag = "datasets",
    params(("name" = String, Path, description = "dataset name")),
    request_body = FromFeedbackBody,
    responses(
        (status = 200, body = inline(FromFeedbackReportBody)),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn from_feedback(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
    ValidatedJson(body): ValidatedJson<FromFeedbackBody>,
) -> Result<Json<FromFeedbackReport>, ApiError> {
    let project = key.require(Permission::Review)?;
    let filter = filter_from_body(body.filter)?;
    let max_traces = body.max_traces.unwrap_or(MAX_TRACES);
    if !(1..=MAX_TRACES).contains(&max_traces) {
        return Err(
            ValidationError::new("max_traces", format!("must be within 1..={MAX_TRACES}")).into(),
        );
    }
    let adder = Adder {
        origin: ItemOrigin::Filter,
        added_by: body.author.unwrap_or_else(|| key.actor()),
        added_at: state.clock.now(),
    };
    let report = feedloop_datasets::add_from_feedback(
        state.store.as_ref(),
        project,
        &name,
        &filter,
        &adder,
        max_traces,
    )
    .await?;
    Ok(Json(report))
}

/// The report of a bulk add (documentation shape of `FromFeedbackReport`).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FromFeedbackReportBody {
    matched_traces: u64,
    items: u64,
    created: u64,
    duplicates: u64,
}

/// Freezes the current items as the next version; exports can name it.
#[utoipa::path(
    post, path = "/api/v1/datasets/{name}/versions", tag = "datasets",
    params(("name" = String, Path, description = "dataset name")),
    request_body = NewVersionBody,
    responses((status = 201, body = VersionView), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn create_version(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
    ValidatedJson(body): ValidatedJson<NewVersionBody>,
) -> Result<(StatusCode, Json<VersionView>), ApiError> {
    let project = key.require(Permission::Review)?;
    let author = body.author.unwrap_or_else(|| key.actor());
    let version = state
        .store
        .create_dataset_version(
            project,
            &name,
            Some(&author),
            body.note.as_deref(),
            state.clock.now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(version.into())))
}

#[utoipa::path(
    get, path = "/api/v1/datasets/{name}/versions", tag = "datasets",
    params(("name" = String, Path, description = "dataset name")),
    responses((status = 200, body = VersionList), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_versions(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
) -> Result<Json<VersionList>, ApiError> {
    let project = key.require(Permission::Read)?;
    let versions = state.store.dataset_versions(project, &name).await?;
    Ok(Json(VersionList {
        versions: versions.into_iter().map(Into::into).collect(),
    }))
}

/// Which lines an export response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lines {
    /// One split's lines, in the format as it is (CSV with its header).
    Only(Split),
    /// Both splits as `{"split","line"}` objects, after `{"header"}` for CSV, then
    /// `{"manifest": …}` (or `{"error": …}`).
    All,
}

/// Streams an export. Query: `format` (openai, sft, preference, csv; required), `split`
/// (train (default), validation, or all: both as `{"split","line"}` JSON lines and a final
/// `{"manifest"}` line), `version` (a number or latest, the default: exporting latest creates
/// no version), `seed` (default 0), `validation_fraction` (default 0.1), `dedup` (true, false;
/// default true), `dedup_threshold` (default 0.95), `pii` (off, mask (default), hash),
/// `contrast_threshold` (default 0.9), and item filters `category`, `origin`, `source`.
#[utoipa::path(
    get, path = "/api/v1/datasets/{name}/export", tag = "datasets",
    params(
        ("name" = String, Path, description = "dataset name"),
        ("format" = String, Query, description = "openai, sft, preference or csv"),
        ("split" = Option<String>, Query, description = "train (default), validation or all"),
        ("version" = Option<String>, Query, description = "a version number, or latest"),
        ("seed" = Option<u64>, Query, description = "split seed, default 0"),
        ("validation_fraction" = Option<f64>, Query, description = "0..=1, default 0.1"),
        ("dedup" = Option<bool>, Query, description = "remove near-duplicates (default true)"),
        ("dedup_threshold" = Option<f32>, Query, description = "0..=1, default 0.95"),
        ("pii" = Option<String>, Query, description = "off, mask (default) or hash"),
        ("contrast_threshold" = Option<f32>, Query, description = "0..=1, default 0.9"),
        ("category" = Option<String>, Query, description = "items with this category"),
        ("origin" = Option<String>, Query, description = "review, filter or api"),
        ("source" = Option<String>, Query, description = "correction, pairwise_vote, rating or manual")
    ),
    responses(
        (status = 200, description = "JSONL or CSV lines", content_type = "application/x-ndjson"),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn export(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let project = key.require(Permission::Review)?;
    let (options, lines) = parse_export_query(raw.as_deref())?;
    find(&state, project, &name).await?;
    version_end(&state, project, &name, options.version).await?;
    crate::ops::audit(
        &state,
        &key,
        "dataset.export",
        &name,
        serde_json::json!({"query": raw.as_deref().unwrap_or("")}),
    )
    .await?;
    let (sender, receiver) = mpsc::channel(EXPORT_BUFFER);
    let export = tokio::spawn({
        let (store, memory, name, options) = (
            state.store.clone(),
            state.memory.clone(),
            name.clone(),
            options.clone(),
        );
        async move {
            feedloop_datasets::run_export(store, memory, project, &name, &options, sender).await
        }
    });
    let header = options.format.header().map(|header| match lines {
        Lines::Only(_) => Bytes::from(header + "\n"),
        Lines::All => Bytes::from(serde_json::json!({ "header": header }).to_string() + "\n"),
    });
    let body = futures::stream::iter(header.map(Ok)).chain(export_stream(receiver, export, lines));
    let content_type = match (lines, options.format) {
        (Lines::Only(_), ExportFormat::Csv) => "text/csv; charset=utf-8",
        _ => "application/x-ndjson",
    };
    let mut response = Body::from_stream(body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// The manifest an export with these parameters (as for `.../export`) writes: the same pass,
/// without sending the lines.
#[utoipa::path(
    get, path = "/api/v1/datasets/{name}/export/manifest", tag = "datasets",
    params(("name" = String, Path, description = "dataset name")),
    responses(
        (status = 200, description = "the manifest", body = Object),
        (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn export_manifest(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Manifest>, ApiError> {
    let project = key.require(Permission::Read)?;
    let (options, _) = parse_export_query(raw.as_deref())?;
    let (sender, mut receiver) = mpsc::channel(EXPORT_BUFFER);
    let drain = tokio::spawn(async move { while receiver.recv().await.is_some() {} });
    let manifest = feedloop_datasets::run_export(
        state.store.clone(),
        state.memory.clone(),
        project,
        &name,
        &options,
        sender,
    )
    .await?;
    let _ = drain.await;
    Ok(Json(manifest))
}

/// The response body: the export's lines as they come, then (for `all`) the manifest. An
/// export that fails part-way ends a single-split body with an error (the client sees a broken
/// transfer, never a silently short file), and an `all` body with an `{"error"}` line.
fn export_stream(
    receiver: mpsc::Receiver<ExportEvent>,
    export: tokio::task::JoinHandle<Result<Manifest, DatasetError>>,
    lines: Lines,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(Some((receiver, export)), move |state| async move {
        let (mut receiver, export) = state?;
        loop {
            match receiver.recv().await {
                Some(event) => match lines {
                    Lines::Only(split) if event.split != split => continue,
                    Lines::Only(_) => {
                        let bytes = Bytes::from(event.line + "\n");
                        return Some((Ok(bytes), Some((receiver, export))));
                    }
                    Lines::All => {
                        let line = serde_json::json!({"split": event.split, "line": event.line});
                        let bytes = Bytes::from(line.to_string() + "\n");
                        return Some((Ok(bytes), Some((receiver, export))));
                    }
                },
                None => return Some((finish(export.await, lines), None)),
            }
        }
    })
}

fn finish(
    result: Result<Result<Manifest, DatasetError>, tokio::task::JoinError>,
    lines: Lines,
) -> Result<Bytes, std::io::Error> {
    let result = result
        .map_err(|e| DatasetError::Internal(format!("export task failed: {e}")))
        .and_then(|r| r);
    match (result, lines) {
        (Ok(_), Lines::Only(_)) => Ok(Bytes::new()),
        (Ok(manifest), Lines::All) => {
            let line = serde_json::json!({ "manifest": manifest });
            Ok(Bytes::from(line.to_string() + "\n"))
        }
        (Err(error), Lines::Only(_)) => {
            tracing::error!(%error, "export failed part-way");
            Err(std::io::Error::other(
                "the export failed; see the server log",
            ))
        }
        (Err(error), Lines::All) => {
            let error: ApiError = error.into();
            let line = serde_json::json!({ "error": error });
            Ok(Bytes::from(line.to_string() + "\n"))
        }
    }
}

fn parse_export_query(raw: Option<&str>) -> Result<(ExportOptions, Lines), ApiError> {
    let mut options = ExportOptions::default();
    let (mut format, mut lines, mut dedup) = (None, Lines::Only(Split::Train), true);
    let number = |field: &str, value: &str| -> Result<f64, ApiError> {
        value
            .parse::<f64>()
            .ok()
            .filter(|v| (0.0..=1.0).contains(v))
            .ok_or_else(|| bad(field, "must be a number within 0..=1"))
    };
    for (field, value) in parse_pairs(raw)? {
        match field.as_str() {
            "format" => {
                format =
                    Some(ExportFormat::parse(&value).ok_or_else(|| {
                        bad("format", "must be one of openai, sft, preference, csv")
                    })?)
            }
            "split" => {
                lines = match value.as_str() {
                    "train" => Lines::Only(Split::Train),
                    "validation" => Lines::Only(Split::Validation),
                    "all" => Lines::All,
                    _ => return Err(bad("split", "must be train, validation or all")),
                }
            }
            "version" => options.version = parse_version(&value)?,
            "seed" => {
                options.seed = value
                    .parse()
                    .map_err(|_| bad("seed", "must be a non-negative integer"))?
            }
            "validation_fraction" => options.validation_fraction = number(&field, &value)?,
            "dedup" => dedup = parse_bool(&field, &value)?,
            "dedup_threshold" => options.dedup_threshold = Some(number(&field, &value)? as f32),
            "contrast_threshold" => options.contrast_threshold = number(&field, &value)? as f32,
            "pii" => {
                options.pii =
                    PiiMode::parse(&value).ok_or_else(|| bad("pii", "must be off, mask or hash"))?
            }
            "category" => options.filter.category = Some(value),
            "origin" => {
                options.filter.origin = Some(
                    ItemOrigin::parse(&value)
                        .ok_or_else(|| bad("origin", "must be review, filter or api"))?,
                )
            }
            "source" => {
                options.filter.source = Some(ItemSource::parse(&value).ok_or_else(|| {
                    bad(
                        "source",
                        "must be correction, pairwise_vote, rating or manual",
                    )
                })?)
            }
            other => return Err(bad(other, "unknown query parameter")),
        }
    }
    options.format = format.ok_or_else(|| bad("format", "is required"))?;
    if !dedup {
        options.dedup_threshold = None;
    }
    options.check().map_err(|e| bad(&e.field, e.message))?;
    Ok((options, lines))
}

fn parse_version(value: &str) -> Result<VersionRef, ApiError> {
    if value == "latest" {
        return Ok(VersionRef::Latest);
    }
    value
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .map(VersionRef::Number)
        .ok_or_else(|| bad("version", "must be a version number or latest"))
}

/// The sequence number a version ends at (`None` for latest); 404 for a missing version.
async fn version_end(
    state: &AppState,
    project: ProjectId,
    name: &str,
    version: VersionRef,
) -> Result<Option<i64>, ApiError> {
    match version {
        VersionRef::Latest => Ok(None),
        VersionRef::Number(number) => state
            .store
            .dataset_versions(project, name)
            .await?
            .into_iter()
            .find(|v| v.number == number)
            .map(|v| Some(v.item_seq))
            .ok_or_else(|| {
                DatasetError::VersionNotFound {
                    dataset: name.to_owned(),
                    version: number,
                }
                .into()
            }),
    }
}

async fn find(state: &AppState, project: ProjectId, name: &str) -> Result<DatasetView, ApiError> {
    check_name("name", name)?;
    state
        .store
        .dataset(project, name)
        .await?
        .map(Into::into)
        .ok_or_else(|| DatasetError::DatasetNotFound(name.to_owned()).into())
}
