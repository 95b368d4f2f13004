//! Reviewer actions on an item. State changes (reserve, release, assign, resolve, dismiss, tag,
//! mark as a UX issue) are one store transaction each, history included. Actions that write
//! elsewhere (feedback through the normal ingest, a lesson through the lesson engine) first
//! check that the author may act on the item, then write, then record the action with what it
//! wrote; if the item was taken by someone else in between, the write stands and the answer is
//! a 409 naming the holder.

use feedloop_core::feedback::{Feedback, FeedbackValue, Source};
use feedloop_core::review::{ItemAction, Queue, ReviewItem, apply};
use feedloop_core::{FeedbackId, ProjectId, Timestamp, ValidationError};
use feedloop_store::IngestBatch;
use feedloop_store::review::{ItemChange, ReviewEvent, transition_error};
use serde_json::{Value, json};

use crate::AppState;
use crate::error::{ApiError, ErrorCode};
use crate::ops::{new_id, store_batch};
use crate::wire::TraceBody;
use crate::wire::review::{ActionBody, ActionKind};

/// Applies one action to an item and returns the item after it with the history entry.
pub async fn act(
    state: &AppState,
    project: ProjectId,
    queue: &Queue,
    item_id: i64,
    body: ActionBody,
    now: Timestamp,
) -> Result<(ReviewItem, ReviewEvent), ApiError> {
    check_fields(&body)?;
    super::check_person("author", &body.author)?;
    let author = body.author.clone();
    let kind = body.action;
    let (transition, payload) = match kind {
        ActionKind::Reserve => {
            let lock_until = now.saturating_add(queue.lock()).unwrap_or(now);
            (
                ItemAction::Reserve {
                    reviewer: author.clone(),
                    lock: queue.lock(),
                },
                json!({"lock_until": lock_until}),
            )
        }
        ActionKind::Release => (
            ItemAction::Release {
                reviewer: author.clone(),
            },
            json!({}),
        ),
        ActionKind::Assign => {
            if let Some(assignee) = &body.assignee {
                super::check_person("assignee", assignee)?;
            }
            (
                ItemAction::Assign {
                    by: author.clone(),
                    assignee: body.assignee.clone(),
                },
                json!({"assignee": body.assignee}),
            )
        }
        ActionKind::Resolve => {
            if let Some(label) = &body.label {
                feedloop_core::taxonomy::check_name("label", label)?;
            }
            (
                ItemAction::Resolve {
                    reviewer: author.clone(),
                    label: body.label.clone(),
                },
                json!({"label": body.label}),
            )
        }
        ActionKind::Dismiss => {
            let reason = body
                .reason
                .clone()
                .filter(|reason| !reason.trim().is_empty())
                .ok_or_else(|| ValidationError::new("reason", "a dismissal needs a reason"))?;
            (
                ItemAction::Dismiss {
                    reviewer: author.clone(),
                    reason: reason.clone(),
                },
                json!({"reason": reason}),
            )
        }
        ActionKind::MarkUxIssue => (
            ItemAction::MarkUxIssue {
                reviewer: author.clone(),
            },
            json!({"note": body.note}),
        ),
        ActionKind::Tag => {
            let tags = required(body.tags.clone(), "tags")?;
            let item = checked_item(state, project, queue, item_id, &author, now).await?;
            tag_trace(state, project, &item, tags.clone()).await?;
            (
                ItemAction::Tag {
                    reviewer: author.clone(),
                    tags: tags.clone(),
                },
                json!({"tags": tags}),
            )
        }
        ActionKind::Label | ActionKind::Annotate | ActionKind::Correct => {
            let value = feedback_value(&body)?;
            let item = checked_item(state, project, queue, item_id, &author, now).await?;
            let feedback_id = write_feedback(state, project, &item, &author, value, now).await?;
            (
                ItemAction::Work {
                    reviewer: author.clone(),
                },
                json!({"feedback_id": feedback_id}),
            )
        }
        ActionKind::Promote => {
            let item = checked_item(state, project, queue, item_id, &author, now).await?;
            let selection = feedloop_lessons::FeedbackSelection {
                trace_ids: vec![item.trace_id.clone()],
                feedback_ids: None,
                title: body.title.clone(),
                priority: body.priority,
            };
            let lesson = state
                .lessons
                .from_feedback(project, selection, now, &author)
                .await?;
            (
                ItemAction::Work {
                    reviewer: author.clone(),
                },
                json!({"lesson_id": lesson.id, "status": lesson.status}),
            )
        }
        ActionKind::AddToDataset => {
            let dataset = required(body.dataset.clone(), "dataset")?;
            feedloop_core::taxonomy::check_name("dataset", &dataset)?;
            let item = checked_item(state, project, queue, item_id, &author, now).await?;
            return add_to_dataset(state, project, &item, &author, &dataset, now).await;
        }
    };
    let change = ItemChange {
        transition,
        author,
        action: kind.as_str().to_owned(),
        payload,
    };
    Ok(state
        .store
        .change_item(project, &queue.name, item_id, &change, now)
        .await?)
}

/// Adds the items the item's trace makes (from its current feedback, as a bulk add from a
/// filter does, origin `review`) to `dataset`, then records the action in the item's history
/// with how many items were added (a trace already in the dataset adds none). `404` when the
/// dataset does not exist.
pub async fn add_to_dataset(
    state: &AppState,
    project: ProjectId,
    item: &ReviewItem,
    author: &str,
    dataset: &str,
    now: Timestamp,
) -> Result<(ReviewItem, ReviewEvent), ApiError> {
    let filter = feedloop_core::filter::Filter {
        trace_id: Some(item.trace_id.as_str().to_owned()),
        ..Default::default()
    };
    let adder = feedloop_core::dataset::Adder {
        origin: feedloop_core::dataset::ItemOrigin::Review,
        added_by: author.to_owned(),
        added_at: now,
    };
    let added = feedloop_datasets::add_from_feedback(
        state.store.as_ref(),
        project,
        dataset,
        &filter,
        &adder,
        1,
    )
    .await?;
    let change = ItemChange {
        transition: ItemAction::Work {
            reviewer: author.to_owned(),
        },
        author: author.to_owned(),
        action: ActionKind::AddToDataset.as_str().to_owned(),
        payload: json!({
            "dataset": dataset,
            "trace_id": item.trace_id,
            "items_added": added.created,
        }),
    };
    Ok(state
        .store
        .change_item(project, &item.queue, item.id, &change, now)
        .await?)
}

/// The item, if `author` may work on it now (open, not reserved by or assigned to someone
/// else); 404 or 409 otherwise.
async fn checked_item(
    state: &AppState,
    project: ProjectId,
    queue: &Queue,
    item_id: i64,
    author: &str,
    now: Timestamp,
) -> Result<ReviewItem, ApiError> {
    let item = state
        .store
        .review_item(project, &queue.name, item_id)
        .await?
        .ok_or_else(|| item_not_found(item_id))?;
    let work = ItemAction::Work {
        reviewer: author.to_owned(),
    };
    apply(item.clone(), &work, now).map_err(|error| ApiError::from(transition_error(error)))?;
    Ok(item)
}

pub fn item_not_found(item_id: i64) -> ApiError {
    ApiError::new(
        ErrorCode::ReviewItemNotFound,
        format!("review item {item_id} not found in this queue"),
    )
}

/// The feedback a label, annotate or correct action writes.
fn feedback_value(body: &ActionBody) -> Result<FeedbackValue, ApiError> {
    Ok(match body.action {
        ActionKind::Label => {
            FeedbackValue::Category(required(body.categories.clone(), "categories")?)
        }
        ActionKind::Annotate => {
            FeedbackValue::Annotation(required(body.annotation.clone(), "annotation")?)
        }
        _ => FeedbackValue::Correction(required(body.correction.clone(), "correction")?),
    })
}

/// Stores reviewer feedback through the normal ingest (taxonomy and annotation range checked
/// there); returns its id.
async fn write_feedback(
    state: &AppState,
    project: ProjectId,
    item: &ReviewItem,
    author: &str,
    value: FeedbackValue,
    now: Timestamp,
) -> Result<FeedbackId, ApiError> {
    let kind = value.kind().as_str();
    let feedback = Feedback {
        id: FeedbackId::parse("id", new_id("fb_", now.as_microsecond()))?,
        trace_id: item.trace_id.clone(),
        span_id: None,
        session_id: None,
        source: Source::Reviewer,
        author: Some(author.to_owned()),
        author_role: None,
        confidence: None,
        metadata: [
            (
                "feedloop.review_queue".to_owned(),
                Value::from(item.queue.clone()),
            ),
            ("feedloop.review_item".to_owned(), Value::from(item.id)),
        ]
        .into_iter()
        .collect(),
        created_at: Some(now),
        value,
    };
    feedback.check()?;
    let id = feedback.id.clone();
    let batch = IngestBatch {
        traces: Vec::new(),
        feedback: vec![feedback],
    };
    // The body names the payload by its action's field (`annotation.end`, `categories`).
    store_batch(state, project, batch)
        .await
        .map_err(|error| ApiError::from_store(error, |_| kind_field(kind).to_owned()))?;
    Ok(id)
}

/// The action body's field that carries feedback of `kind`.
fn kind_field(kind: &str) -> &'static str {
    match kind {
        "category" => "",
        "annotation" => "annotation",
        _ => "correction",
    }
}

/// Adds tags to the item's trace (tags add up; nothing else of the trace changes).
async fn tag_trace(
    state: &AppState,
    project: ProjectId,
    item: &ReviewItem,
    tags: Vec<String>,
) -> Result<(), ApiError> {
    let part = TraceBody {
        id: Some(item.trace_id.to_string()),
        tags,
        ..Default::default()
    }
    .into_part(|| item.trace_id.to_string())?;
    let batch = IngestBatch {
        traces: vec![part],
        feedback: Vec::new(),
    };
    store_batch(state, project, batch).await?;
    Ok(())
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| ValidationError::new(field, "is required by this action").into())
}

/// Each action reads its own fields; any other field given is refused, so that a typo'd action
/// never silently drops what the reviewer wrote.
fn check_fields(body: &ActionBody) -> Result<(), ApiError> {
    use ActionKind as A;
    let given = [
        ("reason", body.reason.is_some(), &[A::Dismiss][..]),
        ("label", body.label.is_some(), &[A::Resolve][..]),
        ("assignee", body.assignee.is_some(), &[A::Assign][..]),
        ("categories", body.categories.is_some(), &[A::Label][..]),
        ("tags", body.tags.is_some(), &[A::Tag][..]),
        ("annotation", body.annotation.is_some(), &[A::Annotate][..]),
        ("correction", body.correction.is_some(), &[A::Correct][..]),
        ("title", body.title.is_some(), &[A::Promote][..]),
        ("priority", body.priority.is_some(), &[A::Promote][..]),
        ("dataset", body.dataset.is_some(), &[A::AddToDataset][..]),
        ("note", body.note.is_some(), &[A::MarkUxIssue][..]),
    ];
    for (field, present, allowed) in given {
        if present && !allowed.contains(&body.action) {
            return Err(ValidationError::new(
                field,
                format!("is not used by the action {}", body.action.as_str()),
            )
            .into());
        }
    }
    Ok(())
}
