//! Review queues: queue CRUD, items (list, manual enqueue, one item, its history), reserving
//! the next item, actions on an item, and reviewer agreement. Reads need `read`; working items
//! (enqueue, reserve, act) needs `review`; defining queues (create, change, delete: project
//! settings) needs `admin`. The person acting is the body's `author`/`reviewer`.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use feedloop_core::auth::Permission;
use feedloop_core::review::agreement::{item_agreement, queue_agreement};
use feedloop_core::review::{DEFAULT_LOCK_SECS, ItemState, Queue};
use feedloop_core::{TraceId, ValidationError};
use feedloop_store::review::{Enqueued, ItemQuery};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Path, ProjectKey, ValidatedJson};
use crate::query::{bad, parse_pairs};
use crate::review::actions::{act, item_not_found};
use crate::review::{check_person, check_queue, enqueue_by_hand, find_queue};
use crate::wire::review::{
    ActionAnswer, ActionBody, AgreementReport, EnqueueBody, EnqueueReceipt, EnqueuedItem, History,
    ItemAgreement, ItemList, ItemView, QueueBody, QueueChange, QueueCounts, QueueList,
    ReserveAnswer, ReserveBody,
};

const DEFAULT_ITEM_LIMIT: u32 = 50;
const MAX_ITEM_LIMIT: u32 = 1_000;
/// Most traces one manual enqueue takes.
const MAX_ENQUEUE: usize = 1_000;

/// Creates a queue. Its rules are filters written like list query parameters, each with a
/// sampling rate. The most recent traces that match (up to 10,000 per rule) are enqueued at
/// once; the `review_rules` job enqueues the ones that match from then on.
#[utoipa::path(
    post, path = "/api/v1/queues", tag = "review",
    request_body = QueueBody,
    responses(
        (status = 201, body = Queue),
        (status = 409, body = ErrorBody, description = "the name is taken"),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn create_queue(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<QueueBody>,
) -> Result<(StatusCode, Json<Queue>), ApiError> {
    let project = key.require(Permission::Admin)?;
    let now = state.clock.now();
    let queue = Queue {
        name: body.name,
        description: body.description,
        rules: body.rules,
        reviewers_required: body.reviewers_required.unwrap_or(1),
        lock_secs: body.lock_secs.unwrap_or(DEFAULT_LOCK_SECS),
        role_weights: body.role_weights,
        created_at: now,
        updated_at: now,
    };
    check_queue(&queue)?;
    state.store.create_queue(project, &queue).await?;
    crate::review::rules::backfill(&state, project, &queue, now).await?;
    crate::ops::audit(
        &state,
        &key,
        "queue.create",
        &queue.name,
        serde_json::json!({}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(queue)))
}

#[utoipa::path(
    get, path = "/api/v1/queues", tag = "review",
    responses((status = 200, body = QueueList)),
    security(("api_key" = []))
)]
pub async fn list_queues(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<QueueList>, ApiError> {
    let project = key.require(Permission::Read)?;
    let queues = state.store.list_queues(project).await?;
    Ok(Json(QueueList { queues }))
}

#[utoipa::path(
    get, path = "/api/v1/queues/{queue}", tag = "review",
    params(("queue" = String, Path, description = "queue name")),
    responses((status = 200, body = Queue), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_queue(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
) -> Result<Json<Queue>, ApiError> {
    let project = key.require(Permission::Read)?;
    Ok(Json(find_queue(&state, project, &name).await?))
}

/// Changes a queue's description, rules, reviewers required, lock time or role weights.
#[utoipa::path(
    put, path = "/api/v1/queues/{queue}", tag = "review",
    params(("queue" = String, Path, description = "queue name")),
    request_body = QueueChange,
    responses(
        (status = 200, body = Queue),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn update_queue(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
    ValidatedJson(change): ValidatedJson<QueueChange>,
) -> Result<Json<Queue>, ApiError> {
    let project = key.require(Permission::Admin)?;
    let mut queue = find_queue(&state, project, &name).await?;
    if let Some(description) = change.description {
        queue.description = Some(description);
    }
    if let Some(rules) = change.rules {
        queue.rules = rules;
    }
    if let Some(required) = change.reviewers_required {
        queue.reviewers_required = required;
    }
    if let Some(lock_secs) = change.lock_secs {
        queue.lock_secs = lock_secs;
    }
    if let Some(weights) = change.role_weights {
        queue.role_weights = weights;
    }
    queue.updated_at = state.clock.now();
    check_queue(&queue)?;
    state.store.update_queue(project, &queue).await?;
    crate::review::rules::backfill(&state, project, &queue, queue.updated_at).await?;
    crate::ops::audit(
        &state,
        &key,
        "queue.update",
        &queue.name,
        serde_json::json!({}),
    )
    .await?;
    Ok(Json(queue))
}

/// Deletes a queue with its items and their history. Feedback and lessons that reviewers
/// wrote stay.
#[utoipa::path(
    delete, path = "/api/v1/queues/{queue}", tag = "review",
    params(("queue" = String, Path, description = "queue name")),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn delete_queue(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let project = key.require(Permission::Admin)?;
    state.store.delete_queue(project, &name).await?;
    crate::ops::audit(&state, &key, "queue.delete", &name, serde_json::json!({})).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Items of a queue, highest priority first. Query: `state` (pending, in_progress, resolved,
/// dismissed; an expired reservation is pending), `assignee`, `limit` (1..=1000, default 50),
/// `cursor` (the `next_cursor` of the previous page).
#[utoipa::path(
    get, path = "/api/v1/queues/{queue}/items", tag = "review",
    params(
        ("queue" = String, Path, description = "queue name"),
        ("state" = Option<String>, Query, description = "pending, in_progress, resolved or dismissed"),
        ("assignee" = Option<String>, Query, description = "items assigned to this person"),
        ("limit" = Option<u32>, Query, description = "1..=1000, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")
    ),
    responses((status = 200, body = ItemList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_items(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ItemList>, ApiError> {
    let project = key.require(Permission::Read)?;
    let mut query = ItemQuery {
        limit: DEFAULT_ITEM_LIMIT,
        ..Default::default()
    };
    for (param, value) in parse_pairs(raw.as_deref())? {
        match param.as_str() {
            "state" => {
                query.state = Some(ItemState::parse(&value).ok_or_else(|| {
                    bad(
                        "state",
                        "must be one of pending, in_progress, resolved, dismissed",
                    )
                })?)
            }
            "assignee" => query.assignee = Some(value),
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_ITEM_LIMIT).contains(n))
                    .ok_or_else(|| {
                        bad(
                            "limit",
                            format!("must be an integer in 1..={MAX_ITEM_LIMIT}"),
                        )
                    })?
            }
            "cursor" => query.after = Some(decode_cursor(&value)?),
            other => return Err(bad(other, "unknown query parameter")),
        }
    }
    find_queue(&state, project, &name).await?;
    let now = state.clock.now();
    let limit = query.limit as usize;
    query.limit += 1;
    let mut items = state
        .store
        .review_items(project, &name, &query, now)
        .await?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|item| encode_cursor(item.priority, item.id))
    } else {
        None
    };
    Ok(Json(ItemList {
        items: items
            .into_iter()
            .map(|item| ItemView::of(item, now))
            .collect(),
        next_cursor,
    }))
}

/// How many items of the queue are in each state now: its backlog (`pending`), the items being
/// worked on (`in_progress`) and the closed ones.
#[utoipa::path(
    get, path = "/api/v1/queues/{queue}/counts", tag = "review",
    params(("queue" = String, Path, description = "queue name")),
    responses((status = 200, body = QueueCounts), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn item_counts(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
) -> Result<Json<QueueCounts>, ApiError> {
    let project = key.require(Permission::Read)?;
    find_queue(&state, project, &name).await?;
    let counts = state
        .store
        .review_item_counts(project, &name, state.clock.now())
        .await?;
    Ok(Json(QueueCounts::of(name, counts)))
}

fn encode_cursor(priority: f64, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{id}", priority.to_bits()))
}

fn decode_cursor(text: &str) -> Result<(f64, i64), ApiError> {
    let invalid = || bad("cursor", "is not a cursor returned by this list");
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    let (bits, id) = text.split_once(':').ok_or_else(invalid)?;
    let priority = f64::from_bits(bits.parse().map_err(|_| invalid())?);
    Ok((priority, id.parse().map_err(|_| invalid())?))
}

/// Puts traces in the queue by hand, each with its triage priority; a trace already in the
/// queue keeps its item (`existing`).
#[utoipa::path(
    post, path = "/api/v1/queues/{queue}/items", tag = "review",
    params(("queue" = String, Path, description = "queue name")),
    request_body = EnqueueBody,
    responses(
        (status = 200, body = EnqueueReceipt),
        (status = 404, body = ErrorBody, description = "no such queue or trace"),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn enqueue(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
    ValidatedJson(body): ValidatedJson<EnqueueBody>,
) -> Result<Json<EnqueueReceipt>, ApiError> {
    let project = key.require(Permission::Review)?;
    check_person("author", &body.author)?;
    if body.trace_ids.is_empty() || body.trace_ids.len() > MAX_ENQUEUE {
        return Err(ValidationError::new(
            "trace_ids",
            format!("must name 1 to {MAX_ENQUEUE} traces"),
        )
        .into());
    }
    let trace_ids = body
        .trace_ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| TraceId::parse(&format!("trace_ids[{i}]"), id))
        .collect::<Result<Vec<_>, _>>()?;
    let queue = find_queue(&state, project, &name).await?;
    let now = state.clock.now();
    let outcomes = enqueue_by_hand(
        &state,
        project,
        &queue,
        trace_ids.clone(),
        &body.author,
        now,
    )
    .await?;
    let items = trace_ids
        .into_iter()
        .zip(outcomes)
        .map(|(trace_id, outcome)| EnqueuedItem {
            trace_id: trace_id.into_string(),
            item_id: outcome.item_id(),
            status: match outcome {
                Enqueued::Created(_) => "created".into(),
                Enqueued::Existing(_) => "existing".into(),
            },
        })
        .collect();
    Ok(Json(EnqueueReceipt { items }))
}

#[utoipa::path(
    get, path = "/api/v1/queues/{queue}/items/{item}", tag = "review",
    params(
        ("queue" = String, Path, description = "queue name"),
        ("item" = i64, Path, description = "item id")
    ),
    responses((status = 200, body = ItemView), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_item(
    State(state): State<AppState>,
    key: ProjectKey,
    Path((name, item_id)): Path<(String, i64)>,
) -> Result<Json<ItemView>, ApiError> {
    let project = key.require(Permission::Read)?;
    find_queue(&state, project, &name).await?;
    let item = state
        .store
        .review_item(project, &name, item_id)
        .await?
        .ok_or_else(|| item_not_found(item_id))?;
    Ok(Json(ItemView::of(item, state.clock.now())))
}

/// Everything done to an item, oldest first: who, when, which action, and what it wrote.
#[utoipa::path(
    get, path = "/api/v1/queues/{queue}/items/{item}/history", tag = "review",
    params(
        ("queue" = String, Path, description = "queue name"),
        ("item" = i64, Path, description = "item id")
    ),
    responses((status = 200, body = History), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn item_history(
    State(state): State<AppState>,
    key: ProjectKey,
    Path((name, item_id)): Path<(String, i64)>,
) -> Result<Json<History>, ApiError> {
    let project = key.require(Permission::Read)?;
    find_queue(&state, project, &name).await?;
    let events = state.store.item_history(project, &name, item_id).await?;
    Ok(Json(History {
        item_id,
        events: events.into_iter().map(Into::into).collect(),
    }))
}

/// One action on an item, recorded with its author and time in the item's history: reserve,
/// release, assign, resolve, dismiss (reason required), label, tag, annotate, correct,
/// promote, add_to_dataset, mark_ux_issue. An action the item's state does not allow (closed,
/// reserved by or assigned to someone else, a second verdict) is a 409 and changes nothing.
#[utoipa::path(
    post, path = "/api/v1/queues/{queue}/items/{item}/actions", tag = "review",
    params(
        ("queue" = String, Path, description = "queue name"),
        ("item" = i64, Path, description = "item id")
    ),
    request_body = ActionBody,
    responses(
        (status = 200, body = ActionAnswer),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "the item's state does not allow the action"),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn post_action(
    State(state): State<AppState>,
    key: ProjectKey,
    Path((name, item_id)): Path<(String, i64)>,
    ValidatedJson(body): ValidatedJson<ActionBody>,
) -> Result<Json<ActionAnswer>, ApiError> {
    let project = key.require(Permission::Review)?;
    let queue = find_queue(&state, project, &name).await?;
    let now = state.clock.now();
    let (item, event) = act(&state, project, &queue, item_id, body, now).await?;
    Ok(Json(ActionAnswer {
        item: ItemView::of(item, now),
        event: event.into(),
    }))
}

/// Reserves the highest-priority item this reviewer may take (pending or with an expired
/// lock, not assigned to someone else, not already judged by them) for the queue's lock time.
#[utoipa::path(
    post, path = "/api/v1/queues/{queue}/reserve", tag = "review",
    params(("queue" = String, Path, description = "queue name")),
    request_body = ReserveBody,
    responses((status = 200, body = ReserveAnswer), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn reserve_next(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
    ValidatedJson(body): ValidatedJson<ReserveBody>,
) -> Result<Json<ReserveAnswer>, ApiError> {
    let project = key.require(Permission::Review)?;
    check_person("reviewer", &body.reviewer)?;
    let now = state.clock.now();
    let item = state
        .store
        .reserve_next(project, &name, &body.reviewer, now)
        .await?;
    Ok(Json(ReserveAnswer {
        item: item.map(|item| ItemView::of(item, now)),
    }))
}

/// Agreement between reviewers: per item the share of verdicts agreeing with the most common
/// label, and Fleiss' kappa over the queue.
#[utoipa::path(
    get, path = "/api/v1/queues/{queue}/agreement", tag = "review",
    params(("queue" = String, Path, description = "queue name")),
    responses((status = 200, body = AgreementReport), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn agreement(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(name): Path<String>,
) -> Result<Json<AgreementReport>, ApiError> {
    let project = key.require(Permission::Read)?;
    let queue = find_queue(&state, project, &name).await?;
    let verdicts = state.store.queue_verdicts(project, &name).await?;
    let summary = queue_agreement(verdicts.iter().map(|(_, v)| v.as_slice()));
    Ok(Json(AgreementReport {
        queue: queue.name,
        reviewers_required: queue.reviewers_required,
        num_items: summary.num_items,
        mean_agreement: summary.mean_agreement,
        fleiss_kappa: summary.fleiss_kappa,
        items: verdicts
            .into_iter()
            .map(|(item_id, verdicts)| ItemAgreement {
                item_id,
                agreement: item_agreement(&verdicts),
                verdicts,
            })
            .collect(),
    }))
}
