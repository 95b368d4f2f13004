//! Writing rows of traces, spans and feedback on PostgreSQL, shared by ingest (which decides
//! what to write: merges, checks, supersession) and restore (which writes what it is given).

use deadpool_postgres::GenericClient;
use feedloop_core::feedback::Feedback;
use feedloop_core::trace::{Span, Trace};
use feedloop_core::{FeedbackId, ProjectId, Timestamp, TraceId};

use super::ingest::Attempt;
use super::{execute, micros, query_opt};

/// Writes a trace's row and its tags: an insert when `seq` is `None`, which returns `None` if
/// the id is taken (by a transaction that committed meanwhile), else an update of row `seq`.
pub async fn write_trace_row(
    tx: &impl GenericClient,
    project: ProjectId,
    trace: &Trace,
    seq: Option<i64>,
) -> Attempt<Option<i64>> {
    let doc = serde_json::to_string(trace)?;
    let metadata = serde_json::Value::Object(trace.metadata.clone());
    let prompt = trace.context.prompt.as_ref();
    let environment = trace.environment.map(|e| e.as_str());
    let prompt_name = prompt.and_then(|p| p.name.as_deref());
    let prompt_version = prompt.and_then(|p| p.version.as_deref());
    let started_at = micros(trace.started_at);
    let seq = match seq {
        None => {
            let inserted = query_opt(
                tx,
                "INSERT INTO traces (project_id, id, session_id, user_id, user_role, environment, model_name,
                                     model_version, prompt_name, prompt_version, started_at, metadata, doc)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (project_id, id) DO NOTHING
                 RETURNING seq",
                &[
                    &project.0,
                    &trace.id.as_str(),
                    &trace.session_id,
                    &trace.user_id,
                    &trace.user_role,
                    &environment,
                    &trace.model.name,
                    &trace.model.version,
                    &prompt_name,
                    &prompt_version,
                    &started_at,
                    &metadata,
                    &doc,
                ],
            )
            .await?;
            match inserted {
                Some(row) => row.try_get(0)?,
                None => return Ok(None),
            }
        }
        Some(seq) => {
            execute(
                tx,
                "UPDATE traces SET session_id = $2, user_id = $3, user_role = $4, environment = $5,
                        model_name = $6, model_version = $7, prompt_name = $8, prompt_version = $9,
                        started_at = $10, metadata = $11, doc = $12
                 WHERE seq = $1",
                &[
                    &seq,
                    &trace.session_id,
                    &trace.user_id,
                    &trace.user_role,
                    &environment,
                    &trace.model.name,
                    &trace.model.version,
                    &prompt_name,
                    &prompt_version,
                    &started_at,
                    &metadata,
                    &doc,
                ],
            )
            .await?;
            seq
        }
    };
    if !trace.tags.is_empty() {
        let tags: Vec<&str> = trace.tags.iter().map(String::as_str).collect();
        execute(
            tx,
            "INSERT INTO trace_tags (project_id, tag, trace_seq)
             SELECT $1, tag, $3 FROM unnest($2::text[]) AS tag
             ON CONFLICT DO NOTHING",
            &[&project.0, &tags, &seq],
        )
        .await?;
    }
    Ok(Some(seq))
}

/// Inserts or replaces a span's row.
pub async fn write_span_row(
    tx: &impl GenericClient,
    project: ProjectId,
    trace_id: &TraceId,
    span: &Span,
) -> Attempt<()> {
    execute(
        tx,
        "INSERT INTO spans (project_id, trace_id, id, started_at, doc) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (project_id, trace_id, id) DO UPDATE SET started_at = excluded.started_at, doc = excluded.doc",
        &[
            &project.0,
            &trace_id.as_str(),
            &span.id.as_str(),
            &micros(span.started_at),
            &serde_json::to_string(span)?,
        ],
    )
    .await?;
    Ok(())
}

/// Inserts a feedback row unless its id is stored; returns whether it inserted. `negative` is
/// the feedback's negativity under the project's signal settings. The
/// concurrent insert of the same id waits for the first transaction and then finds it stored.
pub async fn insert_feedback_row(
    tx: &impl GenericClient,
    project: ProjectId,
    feedback: &Feedback,
    received_at: Timestamp,
    superseded_by: Option<&FeedbackId>,
    negative: bool,
) -> Attempt<bool> {
    let names = match feedback.value.categories() {
        [] => None,
        names => Some(names),
    };
    let time = feedback.created_at.unwrap_or(received_at);
    let inserted = execute(
        tx,
        "INSERT INTO feedback (project_id, id, trace_id, span_id, session_id, kind, source, author, rating_sign,
                               categories, metadata, created_at, received_at, content_hash, doc, superseded_by,
                               supersession_key, negative)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (project_id, id) DO NOTHING",
        &[
            &project.0,
            &feedback.id.as_str(),
            &feedback.trace_id.as_str(),
            &feedback.span_id.as_ref().map(|s| s.as_str()),
            &feedback.session_id,
            &feedback.value.kind().as_str(),
            &feedback.source.as_str(),
            &feedback.author,
            &feedback.rating_sign().map(|s| s.as_i64()),
            &names,
            &serde_json::Value::Object(feedback.metadata.clone()),
            &micros(time),
            &micros(received_at),
            &&feedback.content_hash()[..],
            &serde_json::to_string(feedback)?,
            &superseded_by.map(|id| id.as_str()),
            &feedback.supersession_key().map(|key| key.digest()),
            &i16::from(negative),
        ],
    )
    .await?;
    Ok(inserted > 0)
}
