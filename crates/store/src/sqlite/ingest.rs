//! The write path for traces, spans and feedback, run by the writer inside a transaction.

use feedloop_core::feedback::{Feedback, FeedbackValue};
use feedloop_core::trace::{Span, Trace, TracePart};
use feedloop_core::{FeedbackId, ProjectId, Timestamp, TraceId};
use rusqlite::{Connection, OptionalExtension, params};

use super::{admin, micros};
use crate::{IngestBatch, IngestReceipt, ItemList, ItemRef, Outcome, Result, StoreError};

pub fn ingest(
    tx: &Connection,
    project: ProjectId,
    batch: IngestBatch,
    now: Timestamp,
) -> Result<IngestReceipt> {
    if admin::project_by_id(tx, project)?.is_none() {
        return Err(StoreError::NotFound {
            what: "project",
            id: project.to_string(),
        });
    }
    let mut receipt = IngestReceipt {
        traces: Vec::with_capacity(batch.traces.len()),
        feedback: Vec::with_capacity(batch.feedback.len()),
    };
    for part in batch.traces {
        receipt.traces.push(upsert_trace(tx, project, part, now)?);
    }
    if batch.feedback.is_empty() {
        return Ok(receipt);
    }
    let needs_taxonomy = batch
        .feedback
        .iter()
        .any(|f| !f.value.categories().is_empty());
    let categories = if needs_taxonomy {
        admin::active_category_names(tx, project)?
    } else {
        Vec::new()
    };
    for (index, feedback) in batch.feedback.into_iter().enumerate() {
        let item = Some(ItemRef {
            list: ItemList::Feedback,
            index,
        });
        receipt.feedback.push(insert_feedback(
            tx,
            project,
            feedback,
            &categories,
            now,
            item,
        )?);
    }
    Ok(receipt)
}

fn upsert_trace(
    tx: &Connection,
    project: ProjectId,
    mut part: TracePart,
    now: Timestamp,
) -> Result<Outcome> {
    let spans = std::mem::take(&mut part.spans);
    let existing: Option<(i64, String)> = tx
        .prepare_cached("SELECT seq, doc FROM traces WHERE project_id = ?1 AND id = ?2")?
        .query_row(params![project.0, part.id.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let (seq, trace, outcome) = match existing {
        None => (None, Trace::from_part(part, now), Outcome::Created),
        Some((seq, doc)) => {
            let mut trace: Trace = serde_json::from_str(&doc)?;
            trace.merge(part, now);
            (Some(seq), trace, Outcome::Merged)
        }
    };
    write_trace_row(tx, project, &trace, seq)?;
    for (span_id, span_part) in spans {
        let existing: Option<String> = tx
            .prepare_cached(
                "SELECT doc FROM spans WHERE project_id = ?1 AND trace_id = ?2 AND id = ?3",
            )?
            .query_row(
                params![project.0, trace.id.as_str(), span_id.as_str()],
                |row| row.get(0),
            )
            .optional()?;
        let span = match existing {
            None => Span::from_part(span_id, span_part, trace.started_at),
            Some(doc) => {
                let mut span: Span = serde_json::from_str(&doc)?;
                span.merge(span_part);
                span
            }
        };
        write_span_row(tx, project, &trace.id, &span)?;
    }
    Ok(outcome)
}

/// Writes a trace's row (inserting when `seq` is `None`, else updating) and its tags; returns
/// its sequence number.
pub(super) fn write_trace_row(
    tx: &Connection,
    project: ProjectId,
    trace: &Trace,
    seq: Option<i64>,
) -> Result<i64> {
    let doc = serde_json::to_string(trace)?;
    let prompt = trace.context.prompt.as_ref();
    let columns = params![
        project.0,
        trace.id.as_str(),
        trace.session_id,
        trace.user_id,
        trace.user_role,
        trace.environment.map(|e| e.as_str()),
        trace.model.name,
        trace.model.version,
        prompt.and_then(|p| p.name.as_deref()),
        prompt.and_then(|p| p.version.as_deref()),
        micros(trace.started_at),
        doc,
    ];
    let seq = match seq {
        None => {
            tx.prepare_cached(
                "INSERT INTO traces (project_id, id, session_id, user_id, user_role, environment, model_name,
                                     model_version, prompt_name, prompt_version, started_at, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?
            .execute(columns)?;
            tx.last_insert_rowid()
        }
        Some(seq) => {
            tx.prepare_cached(
                "UPDATE traces SET session_id = ?3, user_id = ?4, user_role = ?5, environment = ?6,
                        model_name = ?7, model_version = ?8, prompt_name = ?9, prompt_version = ?10,
                        started_at = ?11, doc = ?12
                 WHERE project_id = ?1 AND id = ?2",
            )?
            .execute(columns)?;
            seq
        }
    };
    if !trace.tags.is_empty() {
        let mut insert_tag = tx.prepare_cached(
            "INSERT OR IGNORE INTO trace_tags (project_id, tag, trace_seq) VALUES (?1, ?2, ?3)",
        )?;
        for tag in &trace.tags {
            insert_tag.execute(params![project.0, tag, seq])?;
        }
    }
    Ok(seq)
}

/// Inserts or replaces a span of a trace.
pub(super) fn write_span_row(
    tx: &Connection,
    project: ProjectId,
    trace_id: &TraceId,
    span: &Span,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO spans (project_id, trace_id, id, started_at, doc) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (project_id, trace_id, id) DO UPDATE SET started_at = excluded.started_at, doc = excluded.doc",
    )?
    .execute(params![project.0, trace_id.as_str(), span.id.as_str(), micros(span.started_at), serde_json::to_string(span)?])?;
    Ok(())
}

fn check_categories(feedback: &Feedback, active: &[String], item: Option<ItemRef>) -> Result<()> {
    let field = match &feedback.value {
        FeedbackValue::Annotation(_) => "annotation.categories",
        _ => "categories",
    };
    for (index, name) in feedback.value.categories().iter().enumerate() {
        if !active.contains(name) {
            return Err(StoreError::UnknownCategory {
                item,
                field: format!("{field}[{index}]"),
                name: name.clone(),
            });
        }
    }
    Ok(())
}

fn insert_feedback(
    tx: &Connection,
    project: ProjectId,
    feedback: Feedback,
    categories: &[String],
    now: Timestamp,
    item: Option<ItemRef>,
) -> Result<Outcome> {
    let hash = feedback.content_hash();
    let inserted = insert_feedback_row(tx, project, &feedback, now, None)?;
    if !inserted {
        let stored: Vec<u8> = tx
            .prepare_cached("SELECT content_hash FROM feedback WHERE project_id = ?1 AND id = ?2")?
            .query_row(params![project.0, feedback.id.as_str()], |row| row.get(0))?;
        if stored == hash {
            return Ok(Outcome::Duplicate);
        }
        return Err(StoreError::Conflict {
            item,
            field: "id".into(),
            message: format!(
                "feedback {:?} exists with other content",
                feedback.id.as_str()
            ),
        });
    }
    // Checked after the insert, so that a retry of stored feedback is a duplicate even if its
    // category was retired since; a failed check rolls the insert back with the request.
    check_categories(&feedback, categories, item)?;
    if let FeedbackValue::Annotation(annotation) = &feedback.value
        && let Some(output) = trace_output(tx, project, &feedback.trace_id)?
    {
        annotation
            .check_against(&output)
            .map_err(|error| StoreError::Invalid {
                item,
                error: error.within("annotation"),
            })?;
    }
    supersede(tx, project, &feedback)?;
    Ok(Outcome::Created)
}

/// Inserts a feedback row unless its id exists; true if it was inserted.
pub(super) fn insert_feedback_row(
    tx: &Connection,
    project: ProjectId,
    feedback: &Feedback,
    received_at: Timestamp,
    superseded_by: Option<&FeedbackId>,
) -> Result<bool> {
    let categories_json = match feedback.value.categories() {
        [] => None,
        names => Some(serde_json::to_string(names)?),
    };
    let time = feedback.created_at.unwrap_or(received_at);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO feedback (project_id, id, trace_id, span_id, session_id, kind, source, author, rating_sign,
                                   categories, created_at, received_at, content_hash, doc, superseded_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
             ON CONFLICT (project_id, id) DO NOTHING",
        )?
        .execute(params![
            project.0,
            feedback.id.as_str(),
            feedback.trace_id.as_str(),
            feedback.span_id.as_ref().map(|s| s.as_str()),
            feedback.session_id,
            feedback.value.kind().as_str(),
            feedback.source.as_str(),
            feedback.author,
            feedback.rating_sign().map(|s| s.as_i64()),
            categories_json,
            micros(time),
            micros(received_at),
            &feedback.content_hash()[..],
            serde_json::to_string(feedback)?,
            superseded_by.map(|id| id.as_str()),
        ])?;
    Ok(inserted > 0)
}

/// Marks every judgement with the same supersession key as the new one as superseded by the
/// latest of them (by time, then arrival), so that exactly one stays current.
fn supersede(tx: &Connection, project: ProjectId, feedback: &Feedback) -> Result<()> {
    let Some(key) = feedback.supersession_key() else {
        return Ok(());
    };
    let mut select = tx.prepare_cached(
        "SELECT id, span_id, doc FROM feedback
         WHERE project_id = ?1 AND trace_id = ?2 AND kind = ?3 AND author = ?4
         ORDER BY created_at, seq",
    )?;
    let rows = select
        .query_map(
            params![
                project.0,
                key.trace_id.as_str(),
                key.kind.as_str(),
                key.author
            ],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, Option<String>>(1)?,
                    row.get::<_, String>(2)?,
                ))
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut group = Vec::new();
    for (id, span_id, doc) in rows {
        if span_id.as_deref() != key.span_id.map(|s| s.as_str()) {
            continue;
        }
        let other: Feedback = serde_json::from_str(&doc)?;
        if other.supersession_key() == Some(key.clone()) {
            group.push(id);
        }
    }
    let Some((latest, earlier)) = group.split_last() else {
        return Ok(());
    };
    let mut update = tx.prepare_cached(
        "UPDATE feedback SET superseded_by = ?3 WHERE project_id = ?1 AND id = ?2
         AND superseded_by IS NOT ?3",
    )?;
    for id in earlier {
        update.execute(params![project.0, id, latest])?;
    }
    tx.prepare_cached(
        "UPDATE feedback SET superseded_by = NULL WHERE project_id = ?1 AND id = ?2",
    )?
    .execute(params![project.0, latest])?;
    Ok(())
}

fn trace_output(tx: &Connection, project: ProjectId, trace_id: &TraceId) -> Result<Option<String>> {
    Ok(tx
        .prepare_cached("SELECT doc ->> '$.output' FROM traces WHERE project_id = ?1 AND id = ?2")?
        .query_row(params![project.0, trace_id.as_str()], |row| {
            row.get::<_, Option<String>>(0)
        })
        .optional()?
        .flatten())
}
