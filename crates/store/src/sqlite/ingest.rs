//! The write path for traces, spans and feedback. [`prepare`] does the per-item work that needs
//! no database (JSON documents, content hashes, supersession keys) on the caller's thread, so
//! that the single writer thread only runs SQL.

use std::borrow::Cow;

use feedloop_core::feedback::{Feedback, FeedbackValue};
use feedloop_core::trace::{FreshTrace, Span, SpanPart, Trace};
use feedloop_core::{FeedbackId, ProjectId, SpanId, Timestamp, TraceId};
use rusqlite::{Connection, OptionalExtension, params};

use super::{admin, lessons, micros, span_docs};
use crate::lessons::INJECTION_METADATA_KEY;
use crate::{IngestBatch, IngestReceipt, ItemList, ItemRef, Outcome, Result, StoreError};

/// A batch with every item prepared.
pub struct PreparedBatch {
    traces: Vec<PreparedTrace>,
    feedback: Vec<PreparedFeedback>,
    now: Timestamp,
}

/// A trace part as the trace it makes if its id is new (the common case), already serialised,
/// with its spans as they are stored if the trace is new: `(start in micros, doc)` for the first
/// part of each span id. The part itself is rebuilt from the fresh trace only if the id exists.
struct PreparedTrace {
    fresh: FreshTrace,
    spans: Vec<(SpanId, SpanPart)>,
    fresh_doc: String,
    fresh_spans: Vec<Option<(i64, String)>>,
}

/// A feedback item with its stored columns computed.
pub struct PreparedFeedback {
    pub feedback: Feedback,
    /// By the built-in polarities; [`ingest`] judges signals by the project's settings instead.
    pub negative: bool,
    doc: String,
    hash: [u8; 32],
    supersession_key: Option<i64>,
    categories_json: Option<String>,
}

impl PreparedFeedback {
    pub fn new(feedback: Feedback) -> Result<Self> {
        let categories_json = match feedback.value.categories() {
            [] => None,
            names => Some(serde_json::to_string(names)?),
        };
        Ok(Self {
            doc: serde_json::to_string(&feedback)?,
            hash: feedback.content_hash(),
            supersession_key: feedback.supersession_key().map(|key| key.digest()),
            categories_json,
            negative: feedback.is_negative(),
            feedback,
        })
    }
}

pub fn prepare(batch: IngestBatch, now: Timestamp) -> Result<PreparedBatch> {
    let traces = batch
        .traces
        .into_iter()
        .map(|mut part| {
            let spans = std::mem::take(&mut part.spans);
            let fresh = FreshTrace::new(part, now);
            let fresh_doc = serde_json::to_string(&fresh.trace)?;
            let mut seen = std::collections::HashSet::new();
            let fresh_spans = spans
                .iter()
                .map(|(id, span_part)| {
                    if !seen.insert(id) {
                        return Ok(None);
                    }
                    let trace = &fresh.trace;
                    let (started_at, doc) =
                        span_docs::fresh_doc(id, span_part, trace.started_at, trace)?;
                    Ok(Some((micros(started_at), doc)))
                })
                .collect::<Result<_>>()?;
            Ok(PreparedTrace {
                fresh,
                spans,
                fresh_doc,
                fresh_spans,
            })
        })
        .collect::<Result<_>>()?;
    let feedback = batch
        .feedback
        .into_iter()
        .map(PreparedFeedback::new)
        .collect::<Result<_>>()?;
    Ok(PreparedBatch {
        traces,
        feedback,
        now,
    })
}

impl super::writer::Batch for PreparedBatch {
    fn weight(&self) -> usize {
        self.traces.len() + self.feedback.len()
    }
}

/// Writes a prepared batch. It only reads the batch, so the writer can run it again (see
/// [`super::writer::Writer::run_batch`]).
pub fn ingest(tx: &Connection, project: ProjectId, batch: &PreparedBatch) -> Result<IngestReceipt> {
    if admin::project_by_id(tx, project)?.is_none() {
        return Err(StoreError::NotFound {
            what: "project",
            id: project.to_string(),
        });
    }
    let now = batch.now;
    let mut receipt = IngestReceipt {
        traces: Vec::with_capacity(batch.traces.len()),
        feedback: Vec::with_capacity(batch.feedback.len()),
    };
    for trace in &batch.traces {
        receipt.traces.push(upsert_trace(tx, project, trace, now)?);
        if let Some((injection_id, trace_id)) = injection_of(&trace.fresh.trace) {
            // An id that names no injection (a typo, another deployment's) is ignored.
            lessons::link(tx, project, &injection_id, trace_id.as_str())?;
        }
    }
    if batch.feedback.is_empty() {
        return Ok(receipt);
    }
    let needs_taxonomy = batch.feedback.iter().any(|f| f.categories_json.is_some());
    let categories = if needs_taxonomy {
        admin::active_category_names(tx, project)?
    } else {
        Vec::new()
    };
    let signal_settings = if batch
        .feedback
        .iter()
        .any(|f| f.feedback.signal_type().is_some())
    {
        Some(super::signals::settings_in(tx, project)?)
    } else {
        None
    };
    for (index, prepared) in batch.feedback.iter().enumerate() {
        let negative = match &signal_settings {
            Some(settings) => prepared.feedback.is_negative_in(settings),
            None => prepared.negative,
        };
        let item = Some(ItemRef {
            list: ItemList::Feedback,
            index,
        });
        receipt.feedback.push(insert_feedback(
            tx,
            project,
            prepared,
            negative,
            &categories,
            now,
            item,
        )?);
    }
    Ok(receipt)
}

/// The injection that a new trace's part names in its metadata (see [`INJECTION_METADATA_KEY`]),
/// with the trace's id; `None`, at the cost of one map look-up, for the usual part that names
/// none.
fn injection_of(fresh: &Trace) -> Option<(String, TraceId)> {
    match fresh.metadata.get(INJECTION_METADATA_KEY) {
        Some(serde_json::Value::String(id)) => Some((id.clone(), fresh.id.clone())),
        _ => None,
    }
}

fn upsert_trace(
    tx: &Connection,
    project: ProjectId,
    prepared: &PreparedTrace,
    now: Timestamp,
) -> Result<Outcome> {
    let PreparedTrace {
        fresh,
        spans,
        fresh_doc,
        fresh_spans,
    } = prepared;
    let fresh_trace = &fresh.trace;
    // Insert first: a new id (the common case) costs one index descent, not a look-up and then
    // an insert; only an id already stored is read back and merged.
    let inserted = write_trace_row(tx, project, fresh_trace, fresh_doc, None)?;
    let trace_is_new = inserted.is_some();
    let (seq, trace, outcome) = match inserted {
        Some(seq) => {
            if fresh_trace.input.is_some() {
                queue_new_embedding(tx, project, seq)?;
            }
            (seq, Cow::Borrowed(fresh_trace), Outcome::Created)
        }
        None => {
            let (seq, doc): (i64, String) = tx
                .prepare_cached("SELECT seq, doc FROM traces WHERE project_id = ?1 AND id = ?2")?
                .query_row(params![project.0, fresh_trace.id.as_str()], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?;
            let mut trace: Trace = serde_json::from_str(&doc)?;
            let (input_before, output_before) = (trace.input.clone(), trace.output.clone());
            trace.merge(fresh.part(), now);
            if (&trace.input, &trace.output) != (&input_before, &output_before) {
                span_docs::write_out_shared(
                    tx,
                    project,
                    seq,
                    input_before.as_deref(),
                    output_before.as_deref(),
                )?;
            }
            write_trace_row(
                tx,
                project,
                &trace,
                &serde_json::to_string(&trace)?,
                Some(seq),
            )?;
            if trace.input.is_some() && trace.input != input_before {
                queue_embedding(tx, project, seq)?;
            }
            (seq, Cow::Owned(trace), Outcome::Merged)
        }
    };
    for ((span_id, span_part), fresh_span) in spans.iter().zip(fresh_spans) {
        // A trace stored just now has no spans yet: the first part of each of its spans is
        // inserted as prepared off this thread; a span named twice merges as usual.
        if trace_is_new && let Some((started_micros, doc)) = fresh_span {
            SpanRow {
                project,
                trace_seq: seq,
                trace_id: &trace.id,
                id: span_id,
                started_micros: *started_micros,
                doc,
            }
            .insert_new(tx)?;
            continue;
        }
        let (span_id, span_part) = (span_id.clone(), span_part.clone());
        let existing: Option<String> = tx
            .prepare_cached(
                "SELECT doc FROM spans WHERE project_id = ?1 AND trace_seq = ?2 AND id = ?3",
            )?
            .query_row(params![project.0, seq, span_id.as_str()], |row| row.get(0))
            .optional()?;
        let span = match existing {
            None => Span::from_part(span_id, span_part, trace.started_at),
            Some(doc) => {
                // Shared text left in a span is the trace's as stored now (see span_docs).
                let mut span = span_docs::SpanDoc::parse(&doc)?
                    .resolve(trace.input.as_deref(), trace.output.as_deref());
                span.merge(span_part);
                span
            }
        };
        write_span_row(tx, project, seq, &trace, span)?;
    }
    Ok(outcome)
}

/// Queues a trace stored in this transaction for the embedding worker: nothing of it is queued
/// yet, and a plain insert keeps no statement journal, where [`queue_embedding`]'s upsert does.
fn queue_new_embedding(tx: &Connection, project: ProjectId, trace_seq: i64) -> Result<()> {
    tx.prepare_cached("INSERT INTO embedding_queue (trace_seq, project_id) VALUES (?1, ?2)")?
        .execute(params![trace_seq, project.0])?;
    Ok(())
}

/// Queues a trace for the embedding worker (again, if its input changed while it waited).
pub(super) fn queue_embedding(tx: &Connection, project: ProjectId, trace_seq: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO embedding_queue (trace_seq, project_id) VALUES (?1, ?2)
         ON CONFLICT (trace_seq) DO UPDATE SET generation = generation + 1, claimed_until = NULL",
    )?
    .execute(params![trace_seq, project.0])?;
    Ok(())
}

/// Writes a trace's row and its tags: inserts it when `seq` is `None` (and returns its sequence
/// number, or `None` without writing anything if the project already has a trace of that id),
/// else updates row `seq`. `doc` is the trace serialised.
pub(super) fn write_trace_row(
    tx: &Connection,
    project: ProjectId,
    trace: &Trace,
    doc: &str,
    seq: Option<i64>,
) -> Result<Option<i64>> {
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
            let num_inserted = tx
                .prepare_cached(
                    "INSERT INTO traces (project_id, id, session_id, user_id, user_role, environment, model_name,
                                         model_version, prompt_name, prompt_version, started_at, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                     ON CONFLICT (project_id, id) DO NOTHING",
                )?
                .execute(columns)?;
            if num_inserted == 0 {
                return Ok(None);
            }
            invalidate_old_feedback(tx, project, &trace.id)?;
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
    Ok(Some(seq))
}

/// What migration 10's trigger on a trace's INSERT did (0015 dropped it: a trigger makes SQLite
/// journal every page the insert touches): a new trace whose feedback came first and is older
/// than the open hour invalidates the stored analytics buckets of that feedback's time span.
/// Feedback rarely comes first, so this is usually one look-up in `feedback_by_trace`.
fn invalidate_old_feedback(tx: &Connection, project: ProjectId, trace_id: &TraceId) -> Result<()> {
    let span: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT MIN(created_at), MAX(created_at) FROM feedback
             WHERE project_id = ?1 AND trace_id = ?2
             HAVING MIN(created_at) < CAST(unixepoch('subsec') * 1000000 AS INTEGER) - 3600000000",
        )?
        .query_row(params![project.0, trace_id.as_str()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    if let Some((from, to)) = span {
        tx.prepare_cached("INSERT INTO analytics_invalidations VALUES (?1, ?2, ?3)")?
            .execute(params![project.0, from, to])?;
    }
    Ok(())
}

/// Inserts or replaces a span of `trace` (which is stored as given, in row `trace_seq`).
pub(super) fn write_span_row(
    tx: &Connection,
    project: ProjectId,
    trace_seq: i64,
    trace: &Trace,
    span: Span,
) -> Result<()> {
    let (id, started_micros) = (span.id.clone(), micros(span.started_at));
    let doc = span_docs::to_doc(span, trace)?;
    SpanRow {
        project,
        trace_seq,
        trace_id: &trace.id,
        id: &id,
        started_micros,
        doc: &doc,
    }
    .upsert(tx)
}

/// A span's row, its doc serialised.
struct SpanRow<'a> {
    project: ProjectId,
    trace_seq: i64,
    trace_id: &'a TraceId,
    id: &'a SpanId,
    started_micros: i64,
    doc: &'a str,
}

impl SpanRow<'_> {
    /// The first row of a span of a trace stored in this transaction: a plain insert, which keeps
    /// no statement journal (an upsert copies every page it touches into one first).
    fn insert_new(&self, tx: &Connection) -> Result<()> {
        self.run(
            tx,
            "INSERT INTO spans (project_id, trace_seq, trace_id, id, started_at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
    }

    /// Inserts the row or replaces the stored one.
    fn upsert(&self, tx: &Connection) -> Result<()> {
        self.run(
            tx,
            "INSERT INTO spans (project_id, trace_seq, trace_id, id, started_at, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (project_id, trace_seq, id) DO UPDATE SET started_at = excluded.started_at, doc = excluded.doc",
        )
    }

    fn run(&self, tx: &Connection, sql: &str) -> Result<()> {
        tx.prepare_cached(sql)?.execute(params![
            self.project.0,
            self.trace_seq,
            self.trace_id.as_str(),
            self.id.as_str(),
            self.started_micros,
            self.doc
        ])?;
        Ok(())
    }
}

fn insert_feedback(
    tx: &Connection,
    project: ProjectId,
    prepared: &PreparedFeedback,
    negative: bool,
    categories: &[String],
    now: Timestamp,
    item: Option<ItemRef>,
) -> Result<Outcome> {
    if !insert_feedback_row(tx, project, prepared, negative, now, None)? {
        let stored: Vec<u8> = tx
            .prepare_cached("SELECT content_hash FROM feedback WHERE project_id = ?1 AND id = ?2")?
            .query_row(params![project.0, prepared.feedback.id.as_str()], |row| {
                row.get(0)
            })?;
        if stored == prepared.hash {
            return Ok(Outcome::Duplicate);
        }
        return Err(StoreError::Conflict {
            item,
            field: "id".into(),
            message: format!(
                "feedback {:?} exists with other content",
                prepared.feedback.id.as_str()
            ),
        });
    }
    let feedback = &prepared.feedback;
    // Checked after the insert, so that a retry of stored feedback is a duplicate even if its
    // category was retired since; a failed check rolls the insert back with the request.
    crate::checks::check_categories(feedback, categories, item)?;
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
    if let FeedbackValue::Signal(signal) = &feedback.value
        && feedloop_core::signals::has_output_range(signal)
        && let Some(output) = trace_output(tx, project, &feedback.trace_id)?
    {
        feedloop_core::signals::check_copy_range(signal, &output).map_err(|error| {
            StoreError::Invalid {
                item,
                error: error.within("signal"),
            }
        })?;
    }
    if let Some(key) = prepared.supersession_key {
        supersede(tx, project, &feedback.trace_id, key)?;
    }
    Ok(Outcome::Created)
}

/// Inserts a feedback row unless its id exists; true if it was inserted.
pub(super) fn insert_feedback_row(
    tx: &Connection,
    project: ProjectId,
    prepared: &PreparedFeedback,
    negative: bool,
    received_at: Timestamp,
    superseded_by: Option<&FeedbackId>,
) -> Result<bool> {
    let feedback = &prepared.feedback;
    let time = feedback.created_at.unwrap_or(received_at);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO feedback (project_id, id, trace_id, span_id, session_id, kind, source, author, rating_sign,
                                   categories, created_at, received_at, content_hash, doc, superseded_by,
                                   supersession_key, negative)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
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
            prepared.categories_json,
            micros(time),
            micros(received_at),
            &prepared.hash[..],
            prepared.doc,
            superseded_by.map(|id| id.as_str()),
            prepared.supersession_key,
            negative,
        ])?;
    Ok(inserted > 0)
}

/// Points every judgement with this supersession key at the latest of them (by time, then
/// arrival), and leaves the latest current. The index on the key makes this a look-up of the
/// group alone, whatever the size of the project.
fn supersede(tx: &Connection, project: ProjectId, trace_id: &TraceId, key: i64) -> Result<()> {
    let group = tx
        .prepare_cached(
            "SELECT created_at, seq, id FROM feedback WHERE project_id = ?1 AND trace_id = ?2 AND supersession_key = ?3",
        )?
        .query_map(params![project.0, trace_id.as_str(), key], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // A first judgement (the common case) has nothing to supersede.
    let Some((_, latest_seq, latest_id)) = group.iter().max_by_key(|(time, seq, _)| (*time, *seq))
    else {
        return Ok(());
    };
    if group.len() < 2 {
        return Ok(());
    }
    let mut update = tx.prepare_cached(
        "UPDATE feedback SET superseded_by = ?2 WHERE seq = ?1 AND superseded_by IS NOT ?2",
    )?;
    for (_, seq, _) in &group {
        let superseded_by = (seq != latest_seq).then_some(latest_id.as_str());
        update.execute(params![seq, superseded_by])?;
    }
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
