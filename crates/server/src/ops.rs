//! Operations: what the API does, apart from HTTP. Every way in (the JSON API, later OTLP and the
//! gateway) goes through these functions.

use feedloop_core::ProjectId;
use feedloop_core::auth::{KeyRole, display_prefix, hash_key, secret_from_random};
use feedloop_store::{IngestBatch, IngestReceipt, ItemList, ItemRef, NewKey, Outcome, StoreError};
use rand::Rng;

use crate::AppState;
use crate::error::ApiError;
use crate::wire::{FeedbackBody, IngestReceiptBody, ItemReceipt, ItemStatus, TraceBody};

/// Generates a key secret and the record to store for it (the hash, never the secret).
pub fn generate_key(name: String, role: KeyRole) -> (String, NewKey) {
    generate_key_with_origins(name, role, Vec::new())
}

/// A new key's secret (`fl_pk_…` for public keys, `fl_sk_…` otherwise) and what to store.
pub fn generate_key_with_origins(
    name: String,
    role: KeyRole,
    allowed_origins: Vec<String>,
) -> (String, NewKey) {
    let secret = secret_from_random(role.prefix(), rand::random());
    let record = NewKey {
        name,
        role,
        hash: hash_key(&secret),
        prefix: display_prefix(&secret),
        allowed_origins,
    };
    (secret, record)
}

/// Records an administrative action in the project's audit log, by the caller.
pub async fn audit(
    state: &AppState,
    caller: &crate::extract::ProjectKey,
    action: &str,
    target: &str,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    state
        .store
        .record_audit(
            caller.project,
            &caller.actor(),
            action,
            target,
            &details,
            state.clock.now(),
        )
        .await?;
    Ok(())
}

/// A new time-ordered id: the prefix, 13 hex digits of microseconds and 16 random hex digits.
pub fn new_id(prefix: &str, clock_micros: i64) -> String {
    format!(
        "{prefix}{clock_micros:013x}{:016x}",
        rand::rng().random::<u64>()
    )
}

/// Stores a batch in one transaction, now, and wakes the embedding worker if it held traces.
/// The JSON API, OTLP and the gateway all store through here, and here the batch is redacted
/// by the project's PII mode first, so the original never reaches the store, the vectors or
/// anything that logs stored text.
pub async fn store_batch(
    state: &AppState,
    project: ProjectId,
    mut batch: IngestBatch,
) -> Result<IngestReceipt, StoreError> {
    crate::privacy::redact_batch(state.store.as_ref(), project, &mut batch).await?;
    let num_spans = batch.traces.iter().map(|t| t.spans.len()).sum();
    let (num_traces, num_feedback) = (batch.traces.len(), batch.feedback.len());
    let receipt = state
        .store
        .ingest(project, batch, state.clock.now())
        .await?;
    if num_traces > 0 {
        state.memory.traces_queued(num_traces);
    }
    state
        .analytics
        .metrics
        .count_ingest(num_traces, num_spans, num_feedback);
    Ok(receipt)
}

/// Stores trace parts and feedback in one transaction. `item_path` names an item's place in the
/// request body for error messages.
pub async fn ingest(
    state: &AppState,
    project: ProjectId,
    traces: Vec<TraceBody>,
    feedback: Vec<FeedbackBody>,
    item_path: impl Fn(ItemRef) -> String,
) -> Result<IngestReceiptBody, ApiError> {
    let num_items = traces.len() + feedback.len();
    let limit = state.config.max_batch_items;
    if num_items > limit {
        // One request is one transaction: a bounded batch keeps it from holding the writer.
        return Err(ApiError::new(
            crate::error::ErrorCode::PayloadTooLarge,
            format!("a batch holds at most {limit} items; this one has {num_items}: split it"),
        ));
    }
    let now = state.clock.now();
    let micros = now.as_microsecond();
    let mut batch = IngestBatch {
        traces: Vec::with_capacity(traces.len()),
        feedback: Vec::with_capacity(feedback.len()),
    };
    for (index, body) in traces.into_iter().enumerate() {
        let part = body.into_part(|| new_id("tr_", micros)).map_err(|e| {
            ApiError::invalid(e.within(&item_path(ItemRef {
                list: ItemList::Traces,
                index,
            })))
        })?;
        batch.traces.push(part);
    }
    for (index, body) in feedback.into_iter().enumerate() {
        let item = body.into_feedback(|| new_id("fb_", micros)).map_err(|e| {
            ApiError::invalid(e.within(&item_path(ItemRef {
                list: ItemList::Feedback,
                index,
            })))
        })?;
        batch.feedback.push(item);
    }
    check_signals(state, project, &batch.feedback, &item_path).await?;
    let trace_ids: Vec<String> = batch.traces.iter().map(|t| t.id.to_string()).collect();
    let feedback_ids: Vec<String> = batch.feedback.iter().map(|f| f.id.to_string()).collect();
    let receipt = store_batch(state, project, batch)
        .await
        .map_err(|error| ApiError::from_store(error, &item_path))?;
    let receipts = |ids: Vec<String>, outcomes: Vec<Outcome>| -> Vec<ItemReceipt> {
        ids.into_iter()
            .zip(outcomes)
            .map(|(id, outcome)| ItemReceipt {
                id,
                status: match outcome {
                    Outcome::Created => ItemStatus::Created,
                    Outcome::Merged => ItemStatus::Merged,
                    Outcome::Duplicate => ItemStatus::Duplicate,
                },
            })
            .collect()
    };
    Ok(IngestReceiptBody {
        traces: receipts(trace_ids, receipt.traces),
        feedback: receipts(feedback_ids, receipt.feedback),
    })
}

/// Checks the signals of a batch against the project's signal settings: built-in types with
/// the details they understand, or custom types the project declared.
async fn check_signals(
    state: &AppState,
    project: ProjectId,
    feedback: &[feedloop_core::feedback::Feedback],
    item_path: &impl Fn(ItemRef) -> String,
) -> Result<(), ApiError> {
    let signals = feedback
        .iter()
        .enumerate()
        .filter_map(|(index, item)| match &item.value {
            feedloop_core::feedback::FeedbackValue::Signal(signal) => Some((index, signal)),
            _ => None,
        });
    let mut settings = None;
    for (index, signal) in signals {
        let settings = match &settings {
            Some(settings) => settings,
            None => settings.insert(state.store.signal_settings(project).await?),
        };
        feedloop_core::signals::check_client_signal(signal, settings).map_err(|e| {
            ApiError::invalid(e.within("signal").within(&item_path(ItemRef {
                list: ItemList::Feedback,
                index,
            })))
        })?;
    }
    Ok(())
}

/// Runs the lesson proposer for the project and announces each proposed lesson to webhooks
/// (`lesson_proposed`). The proposals are stored first; an announcement that cannot be written
/// is logged, not an error of the proposal.
pub async fn propose_lessons(
    state: &AppState,
    project: ProjectId,
    now: feedloop_core::Timestamp,
) -> Result<Vec<feedloop_core::lesson::Lesson>, feedloop_lessons::LoopError> {
    let proposed = state.lessons.propose(project, now).await?;
    for lesson in &proposed {
        let data = serde_json::json!({
            "lesson_id": lesson.id.to_string(),
            "title": lesson.title,
            "status": lesson.status,
            "priority": lesson.priority,
            "version": lesson.version,
        });
        let event = feedloop_core::events::Event::new(
            feedloop_core::events::EventType::LessonProposed,
            data,
            now,
        );
        if let Err(error) = crate::events::emit(state.store.as_ref(), project, event).await {
            tracing::warn!(project = project.0, lesson = %lesson.id, %error, "cannot queue the lesson_proposed event");
        }
    }
    Ok(proposed)
}

/// Places unclustered problems (of one project, or of every project) and announces each new
/// cluster (`new_cluster`) to the project's webhooks; the `cluster_problems` job and
/// `POST /api/v1/clusters/refresh` both come here.
pub async fn refresh_clusters(
    state: &AppState,
    project: Option<ProjectId>,
    now: feedloop_core::Timestamp,
) -> Result<feedloop_clusters::ClusterReport, StoreError> {
    let report = match project {
        Some(project) => state.clusters.run_project(project, now).await?,
        None => state.clusters.run(now).await?,
    };
    for cluster in &report.new_clusters {
        let data = serde_json::json!({
            "cluster_id": cluster.id,
            "name": cluster.terms.join(", "),
            "terms": cluster.terms,
            "size": cluster.size,
        });
        let event = feedloop_core::events::Event::new(
            feedloop_core::events::EventType::NewCluster,
            data,
            now,
        );
        if let Err(error) = crate::events::emit(state.store.as_ref(), cluster.project, event).await
        {
            tracing::warn!(project = cluster.project.0, cluster = cluster.id, %error, "cannot queue the new_cluster event");
        }
    }
    Ok(report)
}
