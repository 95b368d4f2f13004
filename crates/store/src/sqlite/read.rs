//! Read queries: single traces with their chain, lists, sessions and counts.

use feedloop_core::feedback::Feedback;
use feedloop_core::filter::{Cursor, Filter, Page, PageRequest};
use feedloop_core::trace::Span;
use feedloop_core::{FeedbackId, ProjectId, TraceId};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::filter::{self, Subject};
use super::{span_docs, timestamp};
use crate::{Result, Session, Stats, StoreError, StoredFeedback, StoredTrace, TraceChain};

const TRACE_COLUMNS: &str = "t.seq, t.doc";
const FEEDBACK_COLUMNS: &str = "f.seq, f.doc, f.received_at, f.superseded_by, EXISTS (SELECT 1 FROM traces l WHERE l.project_id = f.project_id AND l.id = f.trace_id), f.negative";

fn trace_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, String)> {
    Ok((row.get(0)?, row.get(1)?))
}

fn to_trace((seq, doc): (i64, String)) -> Result<StoredTrace> {
    Ok(StoredTrace {
        seq,
        trace: serde_json::from_str(&doc)?,
        spans: Vec::new(),
    })
}

type FeedbackRow = (i64, String, i64, Option<String>, bool, bool);

fn feedback_from_row(row: &Row<'_>) -> rusqlite::Result<FeedbackRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn to_feedback(
    (seq, doc, received_at, superseded_by, trace_linked, negative): FeedbackRow,
) -> Result<StoredFeedback> {
    let feedback: Feedback = serde_json::from_str(&doc)?;
    let superseded_by = superseded_by
        .map(|id| FeedbackId::parse("superseded_by", id))
        .transpose()
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    Ok(StoredFeedback {
        seq,
        feedback,
        received_at: timestamp(received_at)?,
        superseded_by,
        trace_linked,
        negative,
    })
}

fn trace_by_id(conn: &Connection, project: ProjectId, id: &str) -> Result<Option<StoredTrace>> {
    conn.prepare_cached(&format!(
        "SELECT {TRACE_COLUMNS} FROM traces t WHERE t.project_id = ?1 AND t.id = ?2"
    ))?
    .query_row(params![project.0, id], trace_from_row)
    .optional()?
    .map(to_trace)
    .transpose()
}

fn spans(conn: &Connection, project: ProjectId, trace_id: &str) -> Result<Vec<Span>> {
    let docs = conn
        .prepare_cached(
            "SELECT doc FROM spans
              WHERE project_id = ?1 AND trace_seq = (SELECT seq FROM traces WHERE project_id = ?1 AND id = ?2)
              ORDER BY started_at, seq",
        )?
        .query_map(params![project.0, trace_id], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let docs = docs
        .iter()
        .map(|doc| span_docs::SpanDoc::parse(doc))
        .collect::<Result<Vec<_>>>()?;
    let (input, output) = if docs.iter().any(span_docs::SpanDoc::shares_text) {
        span_docs::trace_text(conn, project, trace_id)?
    } else {
        (None, None)
    };
    Ok(docs
        .into_iter()
        .map(|doc| doc.resolve(input.as_deref(), output.as_deref()))
        .collect())
}

pub fn spans_of(
    conn: &Connection,
    project: ProjectId,
    trace_ids: &[TraceId],
) -> Result<Vec<(TraceId, Vec<Span>)>> {
    let mut out = Vec::new();
    for id in trace_ids {
        let spans = spans(conn, project, id.as_str())?;
        if !spans.is_empty() {
            out.push((id.clone(), spans));
        }
    }
    Ok(out)
}

/// A trace's feedback, oldest first. The unary `+` keeps SQLite from ordering through
/// `feedback_by_time`, which it otherwise picks to avoid a sort and then scans every feedback
/// row of the project (a trace chain cost O(project feedback); the signal job's satisfaction
/// fold made it visible); the trace's few rows are found through `feedback_by_trace` and sorted.
pub(super) fn feedback_of_trace(
    conn: &Connection,
    project: ProjectId,
    trace_id: &str,
) -> Result<Vec<StoredFeedback>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {FEEDBACK_COLUMNS} FROM feedback f WHERE f.project_id = ?1 AND f.trace_id = ?2
             ORDER BY +f.created_at, f.seq"
        ))?
        .query_map(params![project.0, trace_id], feedback_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(to_feedback).collect()
}

pub fn trace_chain(
    conn: &Connection,
    project: ProjectId,
    id: &TraceId,
) -> Result<Option<TraceChain>> {
    let Some(mut trace) = trace_by_id(conn, project, id.as_str())? else {
        return Ok(None);
    };
    trace.spans = spans(conn, project, id.as_str())?;
    let feedback = feedback_of_trace(conn, project, id.as_str())?;
    let (previous, next) = match &trace.trace.session_id {
        None => (None, None),
        Some(session_id) => neighbours(conn, project, session_id, &trace)?,
    };
    Ok(Some(TraceChain {
        trace,
        feedback,
        previous,
        next,
    }))
}

fn neighbours(
    conn: &Connection,
    project: ProjectId,
    session_id: &str,
    trace: &StoredTrace,
) -> Result<(Option<StoredTrace>, Option<StoredTrace>)> {
    let at = (trace.trace.started_at.as_microsecond(), trace.seq);
    let find = |sql: &str| -> Result<Option<StoredTrace>> {
        conn.prepare_cached(sql)?
            .query_row(params![project.0, session_id, at.0, at.1], trace_from_row)
            .optional()?
            .map(to_trace)
            .transpose()
    };
    let previous = find(&format!(
        "SELECT {TRACE_COLUMNS} FROM traces t WHERE t.project_id = ?1 AND t.session_id = ?2
         AND (t.started_at, t.seq) < (?3, ?4) ORDER BY t.started_at DESC, t.seq DESC LIMIT 1"
    ))?;
    let next = find(&format!(
        "SELECT {TRACE_COLUMNS} FROM traces t WHERE t.project_id = ?1 AND t.session_id = ?2
         AND (t.started_at, t.seq) > (?3, ?4) ORDER BY t.started_at, t.seq LIMIT 1"
    ))?;
    Ok((previous, next))
}

pub fn list_traces(
    conn: &Connection,
    project: ProjectId,
    filter: &Filter,
    page: PageRequest,
) -> Result<Page<StoredTrace>> {
    let (sql, c) = list_traces_sql(project, filter, &page);
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(c.params.iter()), trace_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let items = rows.into_iter().map(to_trace).collect::<Result<Vec<_>>>()?;
    Ok(crate::sql_filter::finish_page(items, &page, |t| Cursor {
        time_micros: t.trace.started_at.as_microsecond(),
        seq: t.seq,
    }))
}

/// The SQL of a trace list page and its parameters.
fn list_traces_sql(
    project: ProjectId,
    filter: &Filter,
    page: &PageRequest,
) -> (String, filter::Conditions) {
    let mut c = filter::conditions(Subject::Traces, project.0, filter);
    let tail = filter::page(&mut c, "t.started_at", "t.seq", page);
    let sql = format!(
        "SELECT {TRACE_COLUMNS} FROM traces t WHERE {} {tail}",
        c.to_sql()
    );
    (sql, c)
}

pub fn list_feedback(
    conn: &Connection,
    project: ProjectId,
    filter: &Filter,
    page: PageRequest,
) -> Result<Page<StoredFeedback>> {
    let mut c = filter::conditions(Subject::Feedback, project.0, filter);
    let tail = filter::page(&mut c, "f.created_at", "f.seq", &page);
    let sql = format!(
        "SELECT {FEEDBACK_COLUMNS} FROM feedback f
         LEFT JOIN traces t ON t.project_id = f.project_id AND t.id = f.trace_id
         WHERE {} {tail}",
        c.to_sql()
    );
    let rows = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(c.params.iter()), feedback_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let items = rows
        .into_iter()
        .map(to_feedback)
        .collect::<Result<Vec<_>>>()?;
    Ok(crate::sql_filter::finish_page(items, &page, |f| Cursor {
        time_micros: f.time().as_microsecond(),
        seq: f.seq,
    }))
}

pub fn session(
    conn: &Connection,
    project: ProjectId,
    session_id: &str,
    max_traces: u32,
) -> Result<Option<Session>> {
    let rows = conn
        .prepare_cached(&format!(
            "SELECT {TRACE_COLUMNS} FROM traces t WHERE t.project_id = ?1 AND t.session_id = ?2
             ORDER BY t.started_at, t.seq LIMIT ?3"
        ))?
        .query_map(params![project.0, session_id, max_traces], trace_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut traces = Vec::with_capacity(rows.len());
    for row in rows {
        let trace = to_trace(row)?;
        let feedback = feedback_of_trace(conn, project, trace.trace.id.as_str())?;
        traces.push((trace, feedback));
    }
    let unlinked = conn
        .prepare_cached(&format!(
            "SELECT {FEEDBACK_COLUMNS} FROM feedback f WHERE f.project_id = ?1 AND f.session_id = ?2
             AND NOT EXISTS (SELECT 1 FROM traces l WHERE l.project_id = f.project_id AND l.id = f.trace_id)
             ORDER BY f.created_at, f.seq"
        ))?
        .query_map(params![project.0, session_id], feedback_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let unlinked_feedback = unlinked
        .into_iter()
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

pub fn stats(conn: &Connection, project: ProjectId) -> Result<Stats> {
    let count = |sql: &str| -> Result<u64> {
        Ok(conn
            .prepare_cached(sql)?
            .query_row([project.0], |row| row.get::<_, i64>(0))? as u64)
    };
    let mut stats = Stats {
        traces: count("SELECT COUNT(*) FROM traces WHERE project_id = ?1")?,
        spans: count("SELECT COUNT(*) FROM spans WHERE project_id = ?1")?,
        feedback: count("SELECT COUNT(*) FROM feedback WHERE project_id = ?1")?,
        ..Default::default()
    };
    let by_kind = conn
        .prepare_cached("SELECT kind, COUNT(*) FROM feedback WHERE project_id = ?1 GROUP BY kind")?
        .query_map([project.0], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    stats.feedback_by_kind = by_kind
        .into_iter()
        .map(|(kind, n)| (kind, n as u64))
        .collect();
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite picks for a trace list page with `filter`.
    fn plan(conn: &Connection, filter: &Filter) -> String {
        let (sql, c) = list_traces_sql(ProjectId(1), filter, &PageRequest::default());
        conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("valid SQL")
            .query_map(params_from_iter(c.params.iter()), |row| {
                row.get::<_, String>(3)
            })
            .expect("plan")
            .collect::<rusqlite::Result<Vec<_>>>()
            .expect("plan rows")
            .join("; ")
    }

    #[test]
    fn a_filtered_trace_list_reads_the_index_of_its_filter_in_list_order() {
        let mut conn = Connection::open_in_memory().expect("in-memory database");
        super::super::migrate::apply(&mut conn).expect("migrations apply");
        let unfiltered = plan(&conn, &Filter::default());
        assert!(unfiltered.contains("traces_by_time"), "{unfiltered}");
        for (filter, index) in [
            (
                Filter {
                    model_version: Some("v9".into()),
                    ..Filter::default()
                },
                "traces_by_model_version",
            ),
            (
                Filter {
                    prompt_version: Some("7".into()),
                    ..Filter::default()
                },
                "traces_by_prompt_version",
            ),
            (
                Filter {
                    model: Some("gpt-4o".into()),
                    ..Filter::default()
                },
                "traces_by_model_name",
            ),
        ] {
            let plan = plan(&conn, &filter);
            assert!(plan.contains(index), "{index}: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "sorted again: {plan}");
        }
    }
}
