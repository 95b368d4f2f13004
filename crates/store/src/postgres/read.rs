//! Read queries on PostgreSQL: single traces with their chain, lists, sessions and counts. The
//! same queries as `sqlite/read.rs`, with the shared filter builder in PostgreSQL's dialect.

use deadpool_postgres::GenericClient;
use feedloop_core::feedback::Feedback;
use feedloop_core::filter::{Cursor, Filter, Page, PageRequest};
use feedloop_core::trace::Span;
use feedloop_core::{FeedbackId, ProjectId, TraceId};
use tokio_postgres::Row;

use super::{query, query_one, query_opt, timestamp};
use crate::sql_filter::{self, Dialect, Subject};
use crate::{Result, Session, Stats, StoreError, StoredFeedback, StoredTrace, TraceChain};

const TRACE_COLUMNS: &str = "t.seq, t.doc";
const FEEDBACK_COLUMNS: &str = "f.seq, f.doc, f.received_at, f.superseded_by, EXISTS (SELECT 1 FROM traces l WHERE l.project_id = f.project_id AND l.id = f.trace_id), f.negative";

fn to_trace(row: &Row) -> Result<StoredTrace> {
    Ok(StoredTrace {
        seq: row.try_get(0)?,
        trace: serde_json::from_str(row.try_get(1)?)?,
        spans: Vec::new(),
    })
}

fn to_feedback(row: &Row) -> Result<StoredFeedback> {
    let feedback: Feedback = serde_json::from_str(row.try_get(1)?)?;
    let superseded_by = row
        .try_get::<_, Option<String>>(3)?
        .map(|id| FeedbackId::parse("superseded_by", id))
        .transpose()
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    Ok(StoredFeedback {
        seq: row.try_get(0)?,
        feedback,
        received_at: timestamp(row.try_get(2)?)?,
        superseded_by,
        trace_linked: row.try_get(4)?,
        negative: row.try_get::<_, i16>(5)? != 0,
    })
}

async fn trace_by_id(
    conn: &impl GenericClient,
    project: ProjectId,
    id: &str,
) -> Result<Option<StoredTrace>> {
    let sql = format!("SELECT {TRACE_COLUMNS} FROM traces t WHERE t.project_id = $1 AND t.id = $2");
    query_opt(conn, &sql, &[&project.0, &id])
        .await?
        .as_ref()
        .map(to_trace)
        .transpose()
}

async fn spans(conn: &impl GenericClient, project: ProjectId, trace_id: &str) -> Result<Vec<Span>> {
    query(
        conn,
        "SELECT doc FROM spans WHERE project_id = $1 AND trace_id = $2 ORDER BY started_at, seq",
        &[&project.0, &trace_id],
    )
    .await?
    .iter()
    .map(|row| Ok(serde_json::from_str(row.try_get(0)?)?))
    .collect()
}

pub async fn spans_of(
    conn: &impl GenericClient,
    project: ProjectId,
    trace_ids: &[TraceId],
) -> Result<Vec<(TraceId, Vec<Span>)>> {
    let mut out = Vec::new();
    for id in trace_ids {
        let spans = spans(conn, project, id.as_str()).await?;
        if !spans.is_empty() {
            out.push((id.clone(), spans));
        }
    }
    Ok(out)
}

pub(super) async fn feedback_of_trace(
    conn: &impl GenericClient,
    project: ProjectId,
    trace_id: &str,
) -> Result<Vec<StoredFeedback>> {
    let sql = format!(
        "SELECT {FEEDBACK_COLUMNS} FROM feedback f WHERE f.project_id = $1 AND f.trace_id = $2
         ORDER BY f.created_at, f.seq"
    );
    query(conn, &sql, &[&project.0, &trace_id])
        .await?
        .iter()
        .map(to_feedback)
        .collect()
}

pub async fn trace_chain(
    conn: &impl GenericClient,
    project: ProjectId,
    id: &TraceId,
) -> Result<Option<TraceChain>> {
    let Some(mut trace) = trace_by_id(conn, project, id.as_str()).await? else {
        return Ok(None);
    };
    trace.spans = spans(conn, project, id.as_str()).await?;
    let feedback = feedback_of_trace(conn, project, id.as_str()).await?;
    let (previous, next) = match &trace.trace.session_id {
        None => (None, None),
        Some(session_id) => neighbours(conn, project, session_id, &trace).await?,
    };
    Ok(Some(TraceChain {
        trace,
        feedback,
        previous,
        next,
    }))
}

async fn neighbours(
    conn: &impl GenericClient,
    project: ProjectId,
    session_id: &str,
    trace: &StoredTrace,
) -> Result<(Option<StoredTrace>, Option<StoredTrace>)> {
    let at = (trace.trace.started_at.as_microsecond(), trace.seq);
    let previous = format!(
        "SELECT {TRACE_COLUMNS} FROM traces t WHERE t.project_id = $1 AND t.session_id = $2
         AND (t.started_at, t.seq) < ($3, $4) ORDER BY t.started_at DESC, t.seq DESC LIMIT 1"
    );
    let next = format!(
        "SELECT {TRACE_COLUMNS} FROM traces t WHERE t.project_id = $1 AND t.session_id = $2
         AND (t.started_at, t.seq) > ($3, $4) ORDER BY t.started_at, t.seq LIMIT 1"
    );
    let mut found = [None, None];
    for (slot, sql) in found.iter_mut().zip([previous, next]) {
        *slot = query_opt(conn, &sql, &[&project.0, &session_id, &at.0, &at.1])
            .await?
            .as_ref()
            .map(to_trace)
            .transpose()?;
    }
    let [previous, next] = found;
    Ok((previous, next))
}

pub async fn list_traces(
    conn: &impl GenericClient,
    project: ProjectId,
    filter: &Filter,
    page: PageRequest,
) -> Result<Page<StoredTrace>> {
    let mut c = sql_filter::conditions(Dialect::Postgres, Subject::Traces, project.0, filter);
    let tail = sql_filter::page(&mut c, "t.started_at", "t.seq", &page);
    let sql = format!(
        "SELECT {TRACE_COLUMNS} FROM traces t WHERE {} {tail}",
        c.to_sql()
    );
    // Unprepared (see `query` in the module root): the text varies with the filter.
    let items = conn
        .query(sql.as_str(), &c.postgres_params())
        .await?
        .iter()
        .map(to_trace)
        .collect::<Result<Vec<_>>>()?;
    Ok(sql_filter::finish_page(items, &page, |t| Cursor {
        time_micros: t.trace.started_at.as_microsecond(),
        seq: t.seq,
    }))
}

pub async fn list_feedback(
    conn: &impl GenericClient,
    project: ProjectId,
    filter: &Filter,
    page: PageRequest,
) -> Result<Page<StoredFeedback>> {
    let mut c = sql_filter::conditions(Dialect::Postgres, Subject::Feedback, project.0, filter);
    let tail = sql_filter::page(&mut c, "f.created_at", "f.seq", &page);
    let sql = format!(
        "SELECT {FEEDBACK_COLUMNS} FROM feedback f
         LEFT JOIN traces t ON t.project_id = f.project_id AND t.id = f.trace_id
         WHERE {} {tail}",
        c.to_sql()
    );
    let items = conn
        .query(sql.as_str(), &c.postgres_params())
        .await?
        .iter()
        .map(to_feedback)
        .collect::<Result<Vec<_>>>()?;
    Ok(sql_filter::finish_page(items, &page, |f| Cursor {
        time_micros: f.time().as_microsecond(),
        seq: f.seq,
    }))
}

pub async fn session(
    conn: &impl GenericClient,
    project: ProjectId,
    session_id: &str,
    max_traces: u32,
) -> Result<Option<Session>> {
    let sql = format!(
        "SELECT {TRACE_COLUMNS} FROM traces t WHERE t.project_id = $1 AND t.session_id = $2
         ORDER BY t.started_at, t.seq LIMIT $3"
    );
    let rows = query(
        conn,
        &sql,
        &[&project.0, &session_id, &i64::from(max_traces)],
    )
    .await?;
    let mut traces = Vec::with_capacity(rows.len());
    for row in &rows {
        let trace = to_trace(row)?;
        let feedback = feedback_of_trace(conn, project, trace.trace.id.as_str()).await?;
        traces.push((trace, feedback));
    }
    let sql = format!(
        "SELECT {FEEDBACK_COLUMNS} FROM feedback f WHERE f.project_id = $1 AND f.session_id = $2
         AND NOT EXISTS (SELECT 1 FROM traces l WHERE l.project_id = f.project_id AND l.id = f.trace_id)
         ORDER BY f.created_at, f.seq"
    );
    let unlinked_feedback = query(conn, &sql, &[&project.0, &session_id])
        .await?
        .iter()
        .map(to_feedback)
        .collect::<Result<Vec<_>>>()?;
    if traces.is_empty() && unlinked_feedback.is_empty() {
        return Ok(None);
    }
    Ok(Some(Session {
        session_id: session_id.to_owned(),
        traces,
        unlinked_feedback,
    }))
}

pub async fn stats(conn: &impl GenericClient, project: ProjectId) -> Result<Stats> {
    let counts = query_one(
        conn,
        "SELECT (SELECT COUNT(*) FROM traces WHERE project_id = $1),
                (SELECT COUNT(*) FROM spans WHERE project_id = $1),
                (SELECT COUNT(*) FROM feedback WHERE project_id = $1)",
        &[&project.0],
    )
    .await?;
    let count = |index: usize| -> Result<u64> { Ok(counts.try_get::<_, i64>(index)? as u64) };
    let mut stats = Stats {
        traces: count(0)?,
        spans: count(1)?,
        feedback: count(2)?,
        ..Default::default()
    };
    stats.feedback_by_kind = query(
        conn,
        "SELECT kind, COUNT(*) FROM feedback WHERE project_id = $1 GROUP BY kind",
        &[&project.0],
    )
    .await?
    .iter()
    .map(|row| {
        Ok((
            row.try_get::<_, String>(0)?,
            row.try_get::<_, i64>(1)? as u64,
        ))
    })
    .collect::<Result<_>>()?;
    Ok(stats)
}
