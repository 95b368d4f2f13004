//! The write path for traces, spans and feedback on PostgreSQL: one transaction per ingest, all
//! or nothing, with the same rules as SQLite (`sqlite/ingest.rs`).
//!
//! SQLite has one writer; here several transactions (of this replica or of others) write at
//! once, so the read-modify-write steps are guarded:
//!
//! - **Traces** are merged under `SELECT … FOR UPDATE`. A trace that does not exist yet is
//!   inserted with `ON CONFLICT DO NOTHING`; if another transaction inserted the same id
//!   meanwhile, the insert waits for it, does nothing, and the locked read is retried, which now
//!   sees the other row and merges into it. The trace's row lock also covers its spans.
//! - **Supersession** reads every judgement of a group and marks all but the latest, so two
//!   transactions doing it for the same trace must not overlap: each first takes an advisory
//!   lock on the trace ([`locks`]).
//! - **The embedding queue** gets a trace when it is created with an input or its input
//!   changes, in the same transaction (`embeddings.rs`); the trace's row lock orders the
//!   re-queues of one trace.
//! - **Injections** named in a trace's metadata (`feedloop.injection_id`) are linked to the
//!   trace in the same transaction; the part's metadata is checked, so a batch that names none
//!   pays one map look-up per trace.
//! - **Feedback idempotency** is the unique (project, id) index with `ON CONFLICT DO NOTHING`: a
//!   concurrent insert of the same id waits for the first and then compares content hashes.
//!
//! Where two ingests still deadlock, PostgreSQL aborts one and it is retried ([`locks`] explains
//! why the retry waits for the others).

use deadpool_postgres::{GenericClient, Object};
use feedloop_core::feedback::{Feedback, FeedbackValue};
use feedloop_core::trace::{Span, Trace, TracePart};
use feedloop_core::{ProjectId, Timestamp, TraceId};
use std::collections::BTreeSet;

use super::locks;
use super::rows::{insert_feedback_row, write_span_row, write_trace_row};
use super::{admin, embeddings, execute, lessons, query, query_opt};
use crate::lessons::INJECTION_METADATA_KEY;
use crate::{IngestBatch, IngestReceipt, ItemList, ItemRef, Outcome, Result, StoreError};

/// Attempts of an ingest whose transaction PostgreSQL aborted to break a deadlock.
const MAX_ATTEMPTS: u32 = 3;

/// Why an attempt failed: for good, or in a way that a new attempt may get past.
pub(super) enum Failure {
    Store(StoreError),
    /// A deadlock or serialisation failure: PostgreSQL rolled the transaction back to let
    /// another one through.
    Retry(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        match error.code() {
            Some(&SqlState::T_R_DEADLOCK_DETECTED | &SqlState::T_R_SERIALIZATION_FAILURE) => {
                Self::Retry(error)
            }
            _ => Self::Store(error.into()),
        }
    }
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<serde_json::Error> for Failure {
    fn from(error: serde_json::Error) -> Self {
        Self::Store(error.into())
    }
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Store(error) => error,
            Failure::Retry(error) => error.into(),
        }
    }
}

/// The result of one step of an attempt.
pub(super) type Attempt<T> = std::result::Result<T, Failure>;

pub async fn ingest(
    client: &mut Object,
    project: ProjectId,
    batch: &IngestBatch,
    now: Timestamp,
) -> Result<IngestReceipt> {
    let mut attempt = 1;
    loop {
        let tx = client.transaction().await?;
        // The first attempt runs beside other ingests; a retry runs alone (see the module docs).
        let alone = attempt > 1;
        match ingest_once(&tx, project, batch, now, alone).await {
            Ok(receipt) => {
                tx.commit().await?;
                return Ok(receipt);
            }
            Err(Failure::Retry(error)) if attempt < MAX_ATTEMPTS => {
                let code = error.code().map(|code| code.code());
                tracing::debug!(
                    ?code,
                    attempt,
                    "postgres ingest aborted by the server; retrying"
                );
                tx.rollback().await?;
                attempt += 1;
            }
            // Dropping the transaction rolls it back.
            Err(failure) => return Err(failure.into()),
        }
    }
}

async fn ingest_once(
    tx: &impl GenericClient,
    project: ProjectId,
    batch: &IngestBatch,
    now: Timestamp,
    alone: bool,
) -> Attempt<IngestReceipt> {
    let restated: BTreeSet<&TraceId> = batch
        .feedback
        .iter()
        .filter_map(Feedback::supersession_key)
        .map(|key| key.trace_id)
        .collect();
    if !locks::lock_project(tx, project, alone).await? {
        return Err(StoreError::NotFound {
            what: "project",
            id: project.to_string(),
        }
        .into());
    }
    if !alone {
        locks::lock_supersession(tx, project, restated).await?;
    }
    locks::lock_existing_traces(tx, project, &batch.traces).await?;
    let mut receipt = IngestReceipt {
        traces: Vec::with_capacity(batch.traces.len()),
        feedback: Vec::with_capacity(batch.feedback.len()),
    };
    for part in &batch.traces {
        receipt
            .traces
            .push(upsert_trace(tx, project, part, now).await?);
        if let Some(serde_json::Value::String(injection_id)) =
            part.metadata.get(INJECTION_METADATA_KEY)
        {
            // An id that names no injection (a typo, another deployment's) is ignored.
            lessons::link(tx, project, injection_id, part.id.as_str()).await?;
        }
    }
    if batch.feedback.is_empty() {
        return Ok(receipt);
    }
    let needs_taxonomy = batch
        .feedback
        .iter()
        .any(|f| !f.value.categories().is_empty());
    let categories = if needs_taxonomy {
        admin::active_category_names(tx, project).await?
    } else {
        Vec::new()
    };
    // Read under the ingest lock, which a change of settings takes exclusively.
    let signal_settings = if batch.feedback.iter().any(|f| f.signal_type().is_some()) {
        Some(super::signals::settings_in(tx, project).await?)
    } else {
        None
    };
    for (index, feedback) in batch.feedback.iter().enumerate() {
        let item = Some(ItemRef {
            list: ItemList::Feedback,
            index,
        });
        let negative = match &signal_settings {
            Some(settings) => feedback.is_negative_in(settings),
            None => feedback.is_negative(),
        };
        receipt
            .feedback
            .push(insert_feedback(tx, project, feedback, negative, &categories, now, item).await?);
    }
    Ok(receipt)
}

/// Reads the trace under a row lock and merges the part into it, or inserts it if it is new.
/// `None` when another transaction inserted the id first: the caller reads again.
async fn merge_trace(
    tx: &impl GenericClient,
    project: ProjectId,
    part: &TracePart,
    now: Timestamp,
) -> Attempt<Option<(Trace, Outcome)>> {
    let existing = query_opt(
        tx,
        "SELECT seq, doc FROM traces WHERE project_id = $1 AND id = $2 FOR UPDATE",
        &[&project.0, &part.id.as_str()],
    )
    .await?;
    let Some(row) = existing else {
        let trace = Trace::from_part(part.clone(), now);
        let Some(seq) = write_trace_row(tx, project, &trace, None).await? else {
            return Ok(None);
        };
        if trace.input.is_some() {
            embeddings::queue_embedding(tx, project, seq).await?;
        }
        return Ok(Some((trace, Outcome::Created)));
    };
    let seq: i64 = row.try_get(0)?;
    let mut trace: Trace = serde_json::from_str(row.try_get(1)?)?;
    let input_before = trace.input.clone();
    trace.merge(part.clone(), now);
    write_trace_row(tx, project, &trace, Some(seq)).await?;
    if trace.input.is_some() && trace.input != input_before {
        embeddings::queue_embedding(tx, project, seq).await?;
    }
    Ok(Some((trace, Outcome::Merged)))
}

async fn upsert_trace(
    tx: &impl GenericClient,
    project: ProjectId,
    part: &TracePart,
    now: Timestamp,
) -> Attempt<Outcome> {
    // The second read finds the row another transaction inserted (each statement reads the
    // latest committed data); a third attempt would only be needed if it vanished again.
    let mut merged = None;
    for _ in 0..3 {
        merged = merge_trace(tx, project, part, now).await?;
        if merged.is_some() {
            break;
        }
    }
    let Some((trace, outcome)) = merged else {
        return Err(StoreError::Internal(format!(
            "trace {:?} neither inserted nor found",
            part.id.as_str()
        ))
        .into());
    };
    for (span_id, span_part) in &part.spans {
        // No lock of its own: the trace's row lock, held to commit, serialises its spans.
        let existing = query_opt(
            tx,
            "SELECT doc FROM spans WHERE project_id = $1 AND trace_id = $2 AND id = $3",
            &[&project.0, &trace.id.as_str(), &span_id.as_str()],
        )
        .await?;
        let span = match existing {
            None => Span::from_part(span_id.clone(), span_part.clone(), trace.started_at),
            Some(row) => {
                let mut span: Span = serde_json::from_str(row.try_get(0)?)?;
                span.merge(span_part.clone());
                span
            }
        };
        write_span_row(tx, project, &trace.id, &span).await?;
    }
    Ok(outcome)
}

async fn insert_feedback(
    tx: &impl GenericClient,
    project: ProjectId,
    feedback: &Feedback,
    negative: bool,
    categories: &[String],
    now: Timestamp,
    item: Option<ItemRef>,
) -> Attempt<Outcome> {
    let inserted = insert_feedback_row(tx, project, feedback, now, None, negative).await?;
    if !inserted {
        let stored = query_opt(
            tx,
            "SELECT content_hash FROM feedback WHERE project_id = $1 AND id = $2",
            &[&project.0, &feedback.id.as_str()],
        )
        .await?
        .ok_or_else(|| StoreError::Internal("feedback conflicted but is not stored".into()))?;
        let stored: &[u8] = stored.try_get(0)?;
        if stored == feedback.content_hash() {
            return Ok(Outcome::Duplicate);
        }
        return Err(StoreError::Conflict {
            item,
            field: "id".into(),
            message: format!(
                "feedback {:?} exists with other content",
                feedback.id.as_str()
            ),
        }
        .into());
    }
    // Checked after the insert, so that a retry of stored feedback is a duplicate even if its
    // category was retired since; a failed check rolls the insert back with the request.
    crate::checks::check_categories(feedback, categories, item)?;
    if let FeedbackValue::Annotation(annotation) = &feedback.value
        && let Some(output) = trace_output(tx, project, &feedback.trace_id).await?
    {
        annotation
            .check_against(&output)
            .map_err(|error| StoreError::Invalid {
                item,
                error: error.within("annotation"),
            })?;
    }
    if let FeedbackValue::Signal(signal) = &feedback.value
        && feedloop_core::signals::has_output_range(signal)
        && let Some(output) = trace_output(tx, project, &feedback.trace_id).await?
    {
        feedloop_core::signals::check_copy_range(signal, &output).map_err(|error| {
            StoreError::Invalid {
                item,
                error: error.within("signal"),
            }
        })?;
    }
    supersede(tx, project, feedback).await?;
    Ok(Outcome::Created)
}

/// Marks every judgement with the same supersession key as the new one as superseded by the
/// latest of them (by time, then arrival), so that exactly one stays current. The caller holds
/// the trace's supersession stripe ([`locks::lock_supersession`]) or the project's ingest lock alone.
async fn supersede(
    tx: &impl GenericClient,
    project: ProjectId,
    feedback: &Feedback,
) -> Attempt<()> {
    let Some(key) = feedback.supersession_key() else {
        return Ok(());
    };
    // The index on the key makes this a look-up of the group alone.
    let key = key.digest();
    // The group is small; picking its latest here (rather than ORDER BY … LIMIT 1) keeps the
    // planner on the trace index: with a sort in the query it may walk the time index instead,
    // which reads every feedback row of the project.
    let group = query(
        tx,
        "SELECT seq, id, created_at FROM feedback
         WHERE project_id = $1 AND trace_id = $3 AND supersession_key = $2",
        &[&project.0, &key, &feedback.trace_id.as_str()],
    )
    .await?;
    if group.len() < 2 {
        // A first judgement: nothing to supersede (the common case; saves two round trips).
        return Ok(());
    }
    let mut latest: Option<(i64, i64, &str)> = None;
    for row in &group {
        let (seq, id, created_at): (i64, &str, i64) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if latest.is_none_or(|(time, latest_seq, _)| (created_at, seq) > (time, latest_seq)) {
            latest = Some((created_at, seq, id));
        }
    }
    let (_, latest_seq, latest_id) =
        latest.ok_or_else(|| StoreError::Internal("restated feedback vanished".into()))?;
    execute(
        tx,
        "UPDATE feedback SET superseded_by = $3
         WHERE project_id = $1 AND trace_id = $5 AND supersession_key = $2 AND seq <> $4
         AND superseded_by IS DISTINCT FROM $3",
        &[
            &project.0,
            &key,
            &latest_id,
            &latest_seq,
            &feedback.trace_id.as_str(),
        ],
    )
    .await?;
    execute(
        tx,
        "UPDATE feedback SET superseded_by = NULL WHERE seq = $1 AND superseded_by IS NOT NULL",
        &[&latest_seq],
    )
    .await?;
    Ok(())
}

async fn trace_output(
    tx: &impl GenericClient,
    project: ProjectId,
    trace_id: &TraceId,
) -> Attempt<Option<String>> {
    Ok(query_opt(
        tx,
        "SELECT doc::json ->> 'output' FROM traces WHERE project_id = $1 AND id = $2",
        &[&project.0, &trace_id.as_str()],
    )
    .await?
    .map(|row| row.try_get::<_, Option<String>>(0))
    .transpose()?
    .flatten())
}
