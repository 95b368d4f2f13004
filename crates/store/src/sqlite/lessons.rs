//! Lessons, loop settings and injections on SQLite (see [`crate::lessons`]).
//!
//! Every write runs on the writer thread in its own savepoint, so a lesson, its version row and
//! its provenance index are written together or not at all. The change number of a lesson
//! write is the `seq` of the version row it inserts (AUTOINCREMENT, never reused); one writer
//! makes sequence order commit order.

use async_trait::async_trait;
use feedloop_core::feedback::Feedback;
use feedloop_core::lesson::{InjectedLesson, Lesson, LessonStatus, LoopSettings};
use feedloop_core::{InjectionId, LessonId, ProjectId, Timestamp, TraceId};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;

use super::{SqliteStore, admin, micros, timestamp};
use crate::checks::{check_new_lesson, check_next_version};
use crate::embeddings::vector_from_bytes;
use crate::lessons::{EffectCounts, EvidenceWatermark, Injection, Lessons, NegativeCase};
use crate::{Result, StoreError};

/// A lesson and its JSON, serialised before it goes to the writer thread.
pub(super) struct LessonWrite {
    lesson: Lesson,
    doc: String,
}

impl LessonWrite {
    pub(super) fn new(lesson: &Lesson) -> Result<Self> {
        Ok(Self {
            lesson: lesson.clone(),
            doc: serde_json::to_string(lesson)?,
        })
    }
}

fn require_project(tx: &Connection, project: ProjectId) -> Result<()> {
    match admin::project_by_id(tx, project)? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound {
            what: "project",
            id: project.to_string(),
        }),
    }
}

fn stored_version(tx: &Connection, project: ProjectId, id: &LessonId) -> Result<Option<i64>> {
    Ok(tx
        .prepare_cached("SELECT version FROM lessons WHERE project_id = ?1 AND id = ?2")?
        .query_row(params![project.0, id.as_str()], |row| row.get(0))
        .optional()?)
}

/// Writes a version row, makes it the lesson's current version and indexes its provenance.
fn write_lesson(tx: &Connection, project: ProjectId, write: &LessonWrite) -> Result<()> {
    let lesson = &write.lesson;
    tx.prepare_cached(
        "INSERT INTO lesson_versions (project_id, lesson_id, version, updated_at, doc)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        project.0,
        lesson.id.as_str(),
        lesson.version,
        micros(lesson.updated_at),
        write.doc,
    ])?;
    let seq = tx.last_insert_rowid();
    tx.prepare_cached(
        "INSERT INTO lessons (project_id, id, seq, version, status, updated_at, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (project_id, id) DO UPDATE
         SET seq = excluded.seq, version = excluded.version, status = excluded.status,
             updated_at = excluded.updated_at, doc = excluded.doc",
    )?
    .execute(params![
        project.0,
        lesson.id.as_str(),
        seq,
        lesson.version,
        lesson.status.as_str(),
        micros(lesson.updated_at),
        write.doc,
    ])?;
    let mut index = tx.prepare_cached(
        "INSERT OR IGNORE INTO lesson_feedback (project_id, feedback_id, lesson_id) VALUES (?1, ?2, ?3)",
    )?;
    for feedback_id in &lesson.provenance.feedback_ids {
        index.execute(params![project.0, feedback_id.as_str(), lesson.id.as_str()])?;
    }
    Ok(())
}

/// Links an injection to a trace; false if there is no such injection. Also called by ingest,
/// for traces whose metadata names an injection.
pub(super) fn link(
    tx: &Connection,
    project: ProjectId,
    injection_id: &str,
    trace_id: &str,
) -> Result<bool> {
    let linked = tx
        .prepare_cached("UPDATE injections SET trace_id = ?3 WHERE project_id = ?1 AND id = ?2")?
        .execute(params![project.0, injection_id, trace_id])?;
    if linked == 0 {
        return Ok(false);
    }
    tx.prepare_cached(
        "UPDATE injection_lessons SET trace_id = ?3 WHERE project_id = ?1 AND injection_id = ?2",
    )?
    .execute(params![project.0, injection_id, trace_id])?;
    Ok(true)
}

fn record_injection(
    tx: &Connection,
    project: ProjectId,
    injection: &Injection,
    lessons_doc: &str,
) -> Result<()> {
    require_project(tx, project)?;
    let trace_id = injection.trace_id.as_ref().map(TraceId::as_str);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO injections (project_id, id, trace_id, session_id, query, holdout, created_at, lessons)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (project_id, id) DO NOTHING",
        )?
        .execute(params![
            project.0,
            injection.id.as_str(),
            trace_id,
            injection.session_id,
            injection.query,
            injection.holdout,
            micros(injection.created_at),
            lessons_doc,
        ])?;
    if inserted == 0 {
        return Err(StoreError::Conflict {
            item: None,
            field: "id".into(),
            message: format!("injection {:?} exists", injection.id.as_str()),
        });
    }
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO injection_lessons (project_id, lesson_id, injection_id, version, holdout, trace_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for lesson in &injection.lessons {
        insert.execute(params![
            project.0,
            lesson.lesson_id.as_str(),
            injection.id.as_str(),
            lesson.version,
            injection.holdout,
            trace_id,
        ])?;
    }
    Ok(())
}

fn lesson_from_doc(doc: &str) -> Result<Lesson> {
    Ok(serde_json::from_str(doc)?)
}

fn lessons_from_rows(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Lesson>> {
    let docs = conn
        .prepare_cached(sql)?
        .query_map(params, |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    docs.iter().map(|doc| lesson_from_doc(doc)).collect()
}

/// The columns of an injection, in [`injection_from_row`]'s order.
const INJECTION_COLUMNS: &str = "id, trace_id, session_id, query, holdout, created_at, lessons";

fn injection_from_row(row: &rusqlite::Row<'_>) -> Result<Injection> {
    let id: String = row.get(0)?;
    let trace_id: Option<String> = row.get(1)?;
    let trace_id = trace_id
        .map(|id| TraceId::parse("trace_id", &id))
        .transpose()
        .map_err(|e| StoreError::Internal(format!("stored trace id: {e}")))?;
    let lessons: String = row.get(6)?;
    let lessons: Vec<InjectedLesson> = serde_json::from_str(&lessons)?;
    Ok(Injection {
        id: InjectionId::parse("id", &id)
            .map_err(|e| StoreError::Internal(format!("stored injection id: {e}")))?,
        trace_id,
        session_id: row.get(2)?,
        query: row.get(3)?,
        holdout: row.get(4)?,
        lessons,
        created_at: timestamp(row.get(5)?)?,
    })
}

fn injection(conn: &Connection, project: ProjectId, id: &InjectionId) -> Result<Option<Injection>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {INJECTION_COLUMNS} FROM injections WHERE project_id = ?1 AND id = ?2"
    ))?;
    let mut rows = statement.query(params![project.0, id.as_str()])?;
    match rows.next()? {
        Some(row) => Ok(Some(injection_from_row(row)?)),
        None => Ok(None),
    }
}

/// Up to `limit` injections with ids after `after`, in id order (for copying stores).
pub(super) fn injections_after(
    conn: &Connection,
    project: ProjectId,
    after: Option<&InjectionId>,
    limit: usize,
) -> Result<Vec<Injection>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {INJECTION_COLUMNS} FROM injections WHERE project_id = ?1 AND id > ?2
         ORDER BY id LIMIT ?3"
    ))?;
    let mut rows = statement.query(params![
        project.0,
        after.map_or("", InjectionId::as_str),
        i64::try_from(limit).unwrap_or(i64::MAX)
    ])?;
    let mut injections = Vec::new();
    while let Some(row) = rows.next()? {
        injections.push(injection_from_row(row)?);
    }
    Ok(injections)
}

/// Every version of a lesson as it was written, oldest first, unless the lesson exists (for
/// copying stores: a second copy changes nothing).
pub(super) fn restore_lesson(
    tx: &Connection,
    project: ProjectId,
    versions: &[LessonWrite],
) -> Result<()> {
    let Some(first) = versions.first() else {
        return Ok(());
    };
    if stored_version(tx, project, &first.lesson.id)?.is_some() {
        return Ok(());
    }
    versions
        .iter()
        .try_for_each(|version| write_lesson(tx, project, version))
}

/// An injection as it was recorded, unless it exists (for copying stores).
pub(super) fn restore_injection(
    tx: &Connection,
    project: ProjectId,
    injection: &Injection,
    lessons_doc: &str,
) -> Result<()> {
    match record_injection(tx, project, injection, lessons_doc) {
        Err(StoreError::Conflict { .. }) => Ok(()),
        other => other,
    }
}

fn effect(conn: &Connection, project: ProjectId, id: &LessonId) -> Result<EffectCounts> {
    let rows = conn
        .prepare_cached(
            "SELECT il.holdout, COUNT(*), COUNT(DISTINCT il.trace_id),
                    COUNT(DISTINCT CASE WHEN EXISTS (
                        SELECT 1 FROM feedback f
                        WHERE f.project_id = il.project_id AND f.trace_id = il.trace_id
                          AND f.negative = 1 AND f.superseded_by IS NULL
                    ) THEN il.trace_id END)
             FROM injection_lessons il
             WHERE il.project_id = ?1 AND il.lesson_id = ?2
             GROUP BY il.holdout",
        )?
        .query_map(params![project.0, id.as_str()], |row| {
            Ok((
                row.get::<_, bool>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, i64>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(EffectCounts::from_rows(rows))
}

fn negative_cases(
    conn: &Connection,
    project: ProjectId,
    model: &str,
    since: Timestamp,
    uncovered: bool,
    limit: u32,
) -> Result<Vec<NegativeCase>> {
    // One snapshot for the cases and the corrections and comments of their traces.
    let tx = conn.unchecked_transaction()?;
    let rows = tx
        .prepare_cached(
            "SELECT f.doc, t.seq, t.doc ->> '$.input', f.created_at, e.vector
             FROM feedback f
             JOIN traces t ON t.project_id = f.project_id AND t.id = f.trace_id
             LEFT JOIN embeddings e ON e.model = ?2 AND e.trace_seq = t.seq
             WHERE f.project_id = ?1 AND f.negative = 1 AND f.superseded_by IS NULL
               AND f.created_at >= ?3 AND t.doc ->> '$.input' IS NOT NULL
               AND (?4 = 0 OR NOT EXISTS (
                   SELECT 1 FROM lesson_feedback lf
                   WHERE lf.project_id = f.project_id AND lf.feedback_id = f.id))
             ORDER BY f.created_at, f.seq
             LIMIT ?5",
        )?
        .query_map(
            params![project.0, model, micros(since), uncovered, limit],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, Option<Vec<u8>>>(4)?,
                ))
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut siblings_of: HashMap<String, Vec<Feedback>> = HashMap::new();
    let mut siblings = tx.prepare_cached(
        "SELECT doc FROM feedback
         WHERE project_id = ?1 AND trace_id = ?2 AND kind IN ('correction', 'comment')
           AND superseded_by IS NULL
         ORDER BY created_at, seq",
    )?;
    let mut cases = Vec::with_capacity(rows.len());
    for (doc, trace_seq, query, created_at, vector) in rows {
        let feedback: Feedback = serde_json::from_str(&doc)?;
        let trace_id = feedback.trace_id.as_str().to_owned();
        if !siblings_of.contains_key(&trace_id) {
            let docs = siblings
                .query_map(params![project.0, trace_id], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let found = docs
                .iter()
                .map(|doc| serde_json::from_str(doc))
                .collect::<serde_json::Result<Vec<Feedback>>>()?;
            siblings_of.insert(trace_id.clone(), found);
        }
        let vector = vector.map(|bytes| vector_from_bytes(&bytes)).transpose()?;
        cases.push(NegativeCase::new(
            feedback,
            trace_seq,
            query,
            timestamp(created_at)?,
            vector,
            &siblings_of[&trace_id],
        ));
    }
    drop(siblings);
    tx.finish()?;
    Ok(cases)
}

fn contrast_vectors(
    conn: &Connection,
    project: ProjectId,
    model: &str,
    limit: u32,
) -> Result<Vec<(TraceId, Vec<f32>)>> {
    // Newest traces first, along the time index; each trace's vector by its unique index.
    let rows = conn
        .prepare_cached(
            "SELECT t.id, e.vector FROM traces t
             JOIN embeddings e ON e.model = ?2 AND e.trace_seq = t.seq
             WHERE t.project_id = ?1
               AND EXISTS (SELECT 1 FROM feedback f
                           WHERE f.project_id = t.project_id AND f.trace_id = t.id
                             AND f.rating_sign = 1 AND f.superseded_by IS NULL)
               AND NOT EXISTS (SELECT 1 FROM feedback f
                               WHERE f.project_id = t.project_id AND f.trace_id = t.id
                                 AND f.negative = 1 AND f.superseded_by IS NULL)
             ORDER BY t.started_at DESC, t.seq DESC
             LIMIT ?3",
        )?
        .query_map(params![project.0, model, limit], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|(id, bytes)| {
            let id = TraceId::parse("trace_id", &id)
                .map_err(|e| StoreError::Internal(format!("stored trace id: {e}")))?;
            Ok((id, vector_from_bytes(&bytes)?))
        })
        .collect()
}

#[async_trait]
impl Lessons for SqliteStore {
    async fn create_lesson(&self, project: ProjectId, lesson: &Lesson) -> Result<()> {
        let write = LessonWrite::new(lesson)?;
        self.writer
            .run(1, move |tx| {
                require_project(tx, project)?;
                check_new_lesson(
                    &write.lesson,
                    stored_version(tx, project, &write.lesson.id)?,
                )?;
                write_lesson(tx, project, &write)
            })
            .await
    }

    async fn update_lesson(&self, project: ProjectId, lesson: &Lesson) -> Result<()> {
        let write = LessonWrite::new(lesson)?;
        self.writer
            .run(1, move |tx| {
                check_next_version(
                    &write.lesson,
                    stored_version(tx, project, &write.lesson.id)?,
                )?;
                write_lesson(tx, project, &write)
            })
            .await
    }

    async fn lesson(&self, project: ProjectId, id: &LessonId) -> Result<Option<Lesson>> {
        let id = id.clone();
        self.readers
            .run(move |conn| {
                let doc: Option<String> = conn
                    .prepare_cached("SELECT doc FROM lessons WHERE project_id = ?1 AND id = ?2")?
                    .query_row(params![project.0, id.as_str()], |row| row.get(0))
                    .optional()?;
                doc.as_deref().map(lesson_from_doc).transpose()
            })
            .await
    }

    async fn list_lessons(
        &self,
        project: ProjectId,
        status: Option<LessonStatus>,
        limit: u32,
    ) -> Result<Vec<Lesson>> {
        self.readers
            .run(move |conn| match status {
                Some(status) => lessons_from_rows(
                    conn,
                    "SELECT doc FROM lessons WHERE project_id = ?1 AND status = ?2
                     ORDER BY updated_at DESC, seq DESC LIMIT ?3",
                    params![project.0, status.as_str(), limit],
                ),
                None => lessons_from_rows(
                    conn,
                    "SELECT doc FROM lessons WHERE project_id = ?1
                     ORDER BY updated_at DESC, seq DESC LIMIT ?2",
                    params![project.0, limit],
                ),
            })
            .await
    }

    async fn lesson_versions(&self, project: ProjectId, id: &LessonId) -> Result<Vec<Lesson>> {
        let id = id.clone();
        self.readers
            .run(move |conn| {
                lessons_from_rows(
                    conn,
                    "SELECT doc FROM lesson_versions WHERE project_id = ?1 AND lesson_id = ?2
                     ORDER BY version",
                    params![project.0, id.as_str()],
                )
            })
            .await
    }

    async fn lessons_changed_since(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, ProjectId, Lesson)>> {
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT seq, project_id, doc FROM lessons WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    )?
                    .query_map(params![after, limit], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, String>(2)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(seq, project, doc)| Ok((seq, ProjectId(project), lesson_from_doc(&doc)?)))
                    .collect()
            })
            .await
    }

    async fn loop_settings(&self, project: ProjectId) -> Result<LoopSettings> {
        self.readers
            .run(move |conn| {
                let doc: Option<String> = conn
                    .prepare_cached("SELECT doc FROM loop_settings WHERE project_id = ?1")?
                    .query_row(params![project.0], |row| row.get(0))
                    .optional()?;
                match doc {
                    Some(doc) => Ok(serde_json::from_str(&doc)?),
                    None => Ok(LoopSettings::default()),
                }
            })
            .await
    }

    async fn set_loop_settings(&self, project: ProjectId, settings: &LoopSettings) -> Result<()> {
        let doc = serde_json::to_string(settings)?;
        self.writer
            .run(1, move |tx| {
                require_project(tx, project)?;
                tx.prepare_cached(
                    "INSERT INTO loop_settings (project_id, doc) VALUES (?1, ?2)
                     ON CONFLICT (project_id) DO UPDATE SET doc = excluded.doc",
                )?
                .execute(params![project.0, doc])?;
                Ok(())
            })
            .await
    }

    async fn record_injection(&self, project: ProjectId, injection: &Injection) -> Result<()> {
        let lessons_doc = serde_json::to_string(&injection.lessons)?;
        let injection = injection.clone();
        self.writer
            .run(1 + injection.lessons.len(), move |tx| {
                record_injection(tx, project, &injection, &lessons_doc)
            })
            .await
    }

    async fn injection(&self, project: ProjectId, id: &InjectionId) -> Result<Option<Injection>> {
        let id = id.clone();
        self.readers
            .run(move |conn| injection(conn, project, &id))
            .await
    }

    async fn link_injection(
        &self,
        project: ProjectId,
        id: &InjectionId,
        trace_id: &TraceId,
    ) -> Result<bool> {
        let (id, trace_id) = (id.clone(), trace_id.clone());
        self.writer
            .run(1, move |tx| {
                link(tx, project, id.as_str(), trace_id.as_str())
            })
            .await
    }

    async fn lesson_effect(&self, project: ProjectId, id: &LessonId) -> Result<EffectCounts> {
        let id = id.clone();
        self.readers
            .run(move |conn| effect(conn, project, &id))
            .await
    }

    async fn negative_cases(
        &self,
        project: ProjectId,
        model: &str,
        since: Timestamp,
        uncovered: bool,
        limit: u32,
    ) -> Result<Vec<NegativeCase>> {
        let model = model.to_owned();
        self.readers
            .run(move |conn| negative_cases(conn, project, &model, since, uncovered, limit))
            .await
    }

    async fn contrast_vectors(
        &self,
        project: ProjectId,
        model: &str,
        limit: u32,
    ) -> Result<Vec<(TraceId, Vec<f32>)>> {
        let model = model.to_owned();
        self.readers
            .run(move |conn| contrast_vectors(conn, project, &model, limit))
            .await
    }

    async fn evidence_watermark(&self) -> Result<EvidenceWatermark> {
        self.readers
            .run(|conn| {
                // Each is the last entry of a primary key: one index descent.
                Ok(conn.query_row(
                    "SELECT (SELECT COALESCE(MAX(seq), 0) FROM feedback),
                            (SELECT COALESCE(MAX(seq), 0) FROM embeddings),
                            (SELECT COALESCE(MAX(seq), 0) FROM lesson_versions)",
                    [],
                    |row| {
                        Ok(EvidenceWatermark {
                            feedback: row.get(0)?,
                            vectors: row.get(1)?,
                            lessons: row.get(2)?,
                        })
                    },
                )?)
            })
            .await
    }
}
