//! Lessons, loop settings and injections on PostgreSQL (see [`crate::lessons`]), with the same
//! rules as `sqlite/lessons.rs`.
//!
//! Every write is one transaction. Lesson writes take an advisory lock ([`LESSONS_LOCK`]) first
//! and hold it to commit, for two reasons: the version check and the write then cannot
//! interleave with another editor's, and the change number (the identity
//! `lesson_versions.seq`) becomes visible in the order it is taken, so a follower of
//! `lessons_changed_since` never skips a write that commits late (as with vectors, see
//! `embeddings.rs`). Lesson writes are rare (people and the proposal job make them), so one at a
//! time costs nothing that matters.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use feedloop_core::feedback::Feedback;
use feedloop_core::lesson::{InjectedLesson, Lesson, LessonStatus, LoopSettings};
use feedloop_core::{InjectionId, LessonId, ProjectId, Timestamp, TraceId};
use std::collections::HashMap;
use tokio_postgres::IsolationLevel;

use super::ingest::Attempt;
use super::{PostgresStore, admin, execute, micros, query, query_one, query_opt, timestamp};
use crate::checks::{check_new_lesson, check_next_version};
use crate::embeddings::vector_from_bytes;
use crate::lessons::{EffectCounts, EvidenceWatermark, Injection, Lessons, NegativeCase};
use crate::{Result, StoreError};

/// The advisory lock that serialises lesson writes (see the module docs); the two-key form,
/// next to the change log's `("feed", 1)` and the vectors' `("feed", 2)`.
const LESSONS_LOCK: (i32, i32) = (0x6665_6564, 3); // "feed", 3

async fn require_project(tx: &impl GenericClient, project: ProjectId) -> Result<()> {
    match admin::project_by_id(tx, project).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound {
            what: "project",
            id: project.to_string(),
        }),
    }
}

/// Takes the lesson lock and reads the version stored under the lesson's id.
async fn lock_and_read_version(
    tx: &impl GenericClient,
    project: ProjectId,
    id: &LessonId,
) -> Result<Option<i64>> {
    execute(
        tx,
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&LESSONS_LOCK.0, &LESSONS_LOCK.1],
    )
    .await?;
    let row = query_opt(
        tx,
        "SELECT version FROM lessons WHERE project_id = $1 AND id = $2",
        &[&project.0, &id.as_str()],
    )
    .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// Writes a version row, makes it the lesson's current version and indexes its provenance. The
/// caller holds the lesson lock.
async fn write_lesson(tx: &impl GenericClient, project: ProjectId, lesson: &Lesson) -> Result<()> {
    let doc = serde_json::to_string(lesson)?;
    let version = i64::from(lesson.version);
    let updated_at = micros(lesson.updated_at);
    let seq: i64 = query_one(
        tx,
        "INSERT INTO lesson_versions (project_id, lesson_id, version, updated_at, doc)
         VALUES ($1, $2, $3, $4, $5) RETURNING seq",
        &[&project.0, &lesson.id.as_str(), &version, &updated_at, &doc],
    )
    .await?
    .try_get(0)?;
    execute(
        tx,
        "INSERT INTO lessons (project_id, id, seq, version, status, updated_at, doc)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (project_id, id) DO UPDATE
         SET seq = excluded.seq, version = excluded.version, status = excluded.status,
             updated_at = excluded.updated_at, doc = excluded.doc",
        &[
            &project.0,
            &lesson.id.as_str(),
            &seq,
            &version,
            &lesson.status.as_str(),
            &updated_at,
            &doc,
        ],
    )
    .await?;
    let feedback_ids: Vec<&str> = lesson
        .provenance
        .feedback_ids
        .iter()
        .map(|id| id.as_str())
        .collect();
    if !feedback_ids.is_empty() {
        execute(
            tx,
            "INSERT INTO lesson_feedback (project_id, feedback_id, lesson_id)
             SELECT $1, f, $3 FROM unnest($2::text[]) AS f
             ON CONFLICT DO NOTHING",
            &[&project.0, &feedback_ids, &lesson.id.as_str()],
        )
        .await?;
    }
    Ok(())
}

/// Links an injection to a trace; false if there is no such injection. Also called by ingest,
/// in its transaction, for traces whose metadata names an injection.
pub(super) async fn link(
    tx: &impl GenericClient,
    project: ProjectId,
    injection_id: &str,
    trace_id: &str,
) -> Attempt<bool> {
    let linked = execute(
        tx,
        "UPDATE injections SET trace_id = $3 WHERE project_id = $1 AND id = $2",
        &[&project.0, &injection_id, &trace_id],
    )
    .await?;
    if linked == 0 {
        return Ok(false);
    }
    execute(
        tx,
        "UPDATE injection_lessons SET trace_id = $3 WHERE project_id = $1 AND injection_id = $2",
        &[&project.0, &injection_id, &trace_id],
    )
    .await?;
    Ok(true)
}

async fn record_injection(
    tx: &impl GenericClient,
    project: ProjectId,
    injection: &Injection,
) -> Result<()> {
    require_project(tx, project).await?;
    let lessons_doc = serde_json::to_string(&injection.lessons)?;
    let trace_id = injection.trace_id.as_ref().map(TraceId::as_str);
    let holdout = i16::from(injection.holdout);
    let inserted = execute(
        tx,
        "INSERT INTO injections (project_id, id, trace_id, session_id, query, holdout, created_at, lessons)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (project_id, id) DO NOTHING",
        &[
            &project.0,
            &injection.id.as_str(),
            &trace_id,
            &injection.session_id,
            &injection.query,
            &holdout,
            &micros(injection.created_at),
            &lessons_doc,
        ],
    )
    .await?;
    if inserted == 0 {
        return Err(StoreError::Conflict {
            item: None,
            field: "id".into(),
            message: format!("injection {:?} exists", injection.id.as_str()),
        });
    }
    let lesson_ids: Vec<&str> = injection
        .lessons
        .iter()
        .map(|l| l.lesson_id.as_str())
        .collect();
    let versions: Vec<i64> = injection
        .lessons
        .iter()
        .map(|l| i64::from(l.version))
        .collect();
    execute(
        tx,
        "INSERT INTO injection_lessons (project_id, lesson_id, injection_id, version, holdout, trace_id)
         SELECT $1, l.lesson_id, $2, l.version, $5, $6
         FROM unnest($3::text[], $4::bigint[]) AS l (lesson_id, version)
         ON CONFLICT DO NOTHING",
        &[
            &project.0,
            &injection.id.as_str(),
            &lesson_ids,
            &versions,
            &holdout,
            &trace_id,
        ],
    )
    .await?;
    Ok(())
}

/// The columns of an injection, in [`injection_from_row`]'s order.
const INJECTION_COLUMNS: &str = "id, trace_id, session_id, query, holdout, created_at, lessons";

fn injection_from_row(row: &tokio_postgres::Row) -> Result<Injection> {
    let lessons: Vec<InjectedLesson> = serde_json::from_str(row.try_get(6)?)?;
    Ok(Injection {
        id: InjectionId::parse("id", row.try_get::<_, &str>(0)?)
            .map_err(|e| StoreError::Internal(format!("stored injection id: {e}")))?,
        trace_id: row
            .try_get::<_, Option<&str>>(1)?
            .map(stored_trace_id)
            .transpose()?,
        session_id: row.try_get(2)?,
        query: row.try_get(3)?,
        holdout: row.try_get::<_, i16>(4)? != 0,
        lessons,
        created_at: timestamp(row.try_get(5)?)?,
    })
}

/// Up to `limit` injections with ids after `after`, in id order (for copying stores).
pub(super) async fn injections_after(
    client: &impl GenericClient,
    project: ProjectId,
    after: Option<&InjectionId>,
    limit: usize,
) -> Result<Vec<Injection>> {
    query(
        client,
        &format!(
            "SELECT {INJECTION_COLUMNS} FROM injections WHERE project_id = $1 AND id COLLATE \"C\" > $2
             ORDER BY id COLLATE \"C\" LIMIT $3"
        ),
        &[
            &project.0,
            &after.map_or("", InjectionId::as_str),
            &i64::try_from(limit).unwrap_or(i64::MAX),
        ],
    )
    .await?
    .iter()
    .map(injection_from_row)
    .collect()
}

/// Every version of a lesson as it was written, oldest first, unless the lesson exists (for
/// copying stores: a second copy changes nothing).
pub(super) async fn restore_lesson(
    tx: &impl GenericClient,
    project: ProjectId,
    versions: &[Lesson],
) -> Result<()> {
    let Some(first) = versions.first() else {
        return Ok(());
    };
    if lock_and_read_version(tx, project, &first.id)
        .await?
        .is_some()
    {
        return Ok(());
    }
    for version in versions {
        write_lesson(tx, project, version).await?;
    }
    Ok(())
}

/// An injection as it was recorded, unless it exists (for copying stores).
pub(super) async fn restore_injection(
    tx: &impl GenericClient,
    project: ProjectId,
    injection: &Injection,
) -> Result<()> {
    match record_injection(tx, project, injection).await {
        Err(StoreError::Conflict { .. }) => Ok(()),
        other => other,
    }
}

fn lesson_from_doc(doc: &str) -> Result<Lesson> {
    Ok(serde_json::from_str(doc)?)
}

fn stored_trace_id(id: &str) -> Result<TraceId> {
    TraceId::parse("trace_id", id)
        .map_err(|e| StoreError::Internal(format!("stored trace id: {e}")))
}

async fn negative_cases(
    tx: &impl GenericClient,
    project: ProjectId,
    model: &str,
    since: Timestamp,
    uncovered: bool,
    limit: u32,
) -> Result<Vec<NegativeCase>> {
    let rows = query(
        tx,
        "SELECT f.doc, t.seq, t.doc::json ->> 'input', f.created_at, e.vector
         FROM feedback f
         JOIN traces t ON t.project_id = f.project_id AND t.id = f.trace_id
         LEFT JOIN embeddings e ON e.model = $2 AND e.trace_seq = t.seq
         WHERE f.project_id = $1 AND f.negative = 1 AND f.superseded_by IS NULL
           AND f.created_at >= $3 AND t.doc::json ->> 'input' IS NOT NULL
           AND (NOT $4 OR NOT EXISTS (
               SELECT 1 FROM lesson_feedback lf
               WHERE lf.project_id = f.project_id AND lf.feedback_id = f.id))
         ORDER BY f.created_at, f.seq
         LIMIT $5",
        &[
            &project.0,
            &model,
            &micros(since),
            &uncovered,
            &i64::from(limit),
        ],
    )
    .await?;
    let mut siblings_of: HashMap<String, Vec<Feedback>> = HashMap::new();
    let mut cases = Vec::with_capacity(rows.len());
    for row in &rows {
        let feedback: Feedback = serde_json::from_str(row.try_get(0)?)?;
        let trace_id = feedback.trace_id.as_str().to_owned();
        if !siblings_of.contains_key(&trace_id) {
            let found = query(
                tx,
                "SELECT doc FROM feedback
                 WHERE project_id = $1 AND trace_id = $2 AND kind IN ('correction', 'comment')
                   AND superseded_by IS NULL
                 ORDER BY created_at, seq",
                &[&project.0, &trace_id],
            )
            .await?
            .iter()
            .map(|row| Ok(serde_json::from_str(row.try_get(0)?)?))
            .collect::<Result<Vec<Feedback>>>()?;
            siblings_of.insert(trace_id.clone(), found);
        }
        let vector = row
            .try_get::<_, Option<&[u8]>>(4)?
            .map(vector_from_bytes)
            .transpose()?;
        cases.push(NegativeCase::new(
            feedback,
            row.try_get(1)?,
            row.try_get(2)?,
            timestamp(row.try_get(3)?)?,
            vector,
            &siblings_of[&trace_id],
        ));
    }
    Ok(cases)
}

#[async_trait]
impl Lessons for PostgresStore {
    async fn create_lesson(&self, project: ProjectId, lesson: &Lesson) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        require_project(&tx, project).await?;
        check_new_lesson(
            lesson,
            lock_and_read_version(&tx, project, &lesson.id).await?,
        )?;
        write_lesson(&tx, project, lesson).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn update_lesson(&self, project: ProjectId, lesson: &Lesson) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        check_next_version(
            lesson,
            lock_and_read_version(&tx, project, &lesson.id).await?,
        )?;
        write_lesson(&tx, project, lesson).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn lesson(&self, project: ProjectId, id: &LessonId) -> Result<Option<Lesson>> {
        let client = self.client().await?;
        query_opt(
            &client,
            "SELECT doc FROM lessons WHERE project_id = $1 AND id = $2",
            &[&project.0, &id.as_str()],
        )
        .await?
        .map(|row| lesson_from_doc(row.try_get(0)?))
        .transpose()
    }

    async fn list_lessons(
        &self,
        project: ProjectId,
        status: Option<LessonStatus>,
        limit: u32,
    ) -> Result<Vec<Lesson>> {
        let client = self.client().await?;
        let limit = i64::from(limit);
        let rows = match status {
            Some(status) => {
                query(
                    &client,
                    "SELECT doc FROM lessons WHERE project_id = $1 AND status = $2
                     ORDER BY updated_at DESC, seq DESC LIMIT $3",
                    &[&project.0, &status.as_str(), &limit],
                )
                .await?
            }
            None => {
                query(
                    &client,
                    "SELECT doc FROM lessons WHERE project_id = $1
                     ORDER BY updated_at DESC, seq DESC LIMIT $2",
                    &[&project.0, &limit],
                )
                .await?
            }
        };
        rows.iter()
            .map(|row| lesson_from_doc(row.try_get(0)?))
            .collect()
    }

    async fn lesson_versions(&self, project: ProjectId, id: &LessonId) -> Result<Vec<Lesson>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT doc FROM lesson_versions WHERE project_id = $1 AND lesson_id = $2
             ORDER BY version",
            &[&project.0, &id.as_str()],
        )
        .await?
        .iter()
        .map(|row| lesson_from_doc(row.try_get(0)?))
        .collect()
    }

    async fn lessons_changed_since(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, ProjectId, Lesson)>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT seq, project_id, doc FROM lessons WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &i64::from(limit)],
        )
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get(0)?,
                ProjectId(row.try_get(1)?),
                lesson_from_doc(row.try_get(2)?)?,
            ))
        })
        .collect()
    }

    async fn loop_settings(&self, project: ProjectId) -> Result<LoopSettings> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT doc FROM loop_settings WHERE project_id = $1",
            &[&project.0],
        )
        .await?;
        match row {
            Some(row) => Ok(serde_json::from_str(row.try_get(0)?)?),
            None => Ok(LoopSettings::default()),
        }
    }

    async fn set_loop_settings(&self, project: ProjectId, settings: &LoopSettings) -> Result<()> {
        let doc = serde_json::to_string(settings)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        require_project(&tx, project).await?;
        execute(
            &tx,
            "INSERT INTO loop_settings (project_id, doc) VALUES ($1, $2)
             ON CONFLICT (project_id) DO UPDATE SET doc = excluded.doc",
            &[&project.0, &doc],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_injection(&self, project: ProjectId, injection: &Injection) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        record_injection(&tx, project, injection).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn injection(&self, project: ProjectId, id: &InjectionId) -> Result<Option<Injection>> {
        let client = self.client().await?;
        query_opt(
            &client,
            &format!(
                "SELECT {INJECTION_COLUMNS} FROM injections WHERE project_id = $1 AND id = $2"
            ),
            &[&project.0, &id.as_str()],
        )
        .await?
        .map(|row| injection_from_row(&row))
        .transpose()
    }

    async fn link_injection(
        &self,
        project: ProjectId,
        id: &InjectionId,
        trace_id: &TraceId,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let linked = link(&tx, project, id.as_str(), trace_id.as_str()).await?;
        tx.commit().await?;
        Ok(linked)
    }

    async fn lesson_effect(&self, project: ProjectId, id: &LessonId) -> Result<EffectCounts> {
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT il.holdout, COUNT(*), COUNT(DISTINCT il.trace_id),
                    COUNT(DISTINCT CASE WHEN EXISTS (
                        SELECT 1 FROM feedback f
                        WHERE f.project_id = il.project_id AND f.trace_id = il.trace_id
                          AND f.negative = 1 AND f.superseded_by IS NULL
                    ) THEN il.trace_id END)
             FROM injection_lessons il
             WHERE il.project_id = $1 AND il.lesson_id = $2
             GROUP BY il.holdout",
            &[&project.0, &id.as_str()],
        )
        .await?;
        let rows = rows
            .iter()
            .map(|row| {
                Ok((
                    row.try_get::<_, i16>(0)? != 0,
                    row.try_get::<_, i64>(1)?,
                    row.try_get::<_, i64>(2)?,
                    row.try_get::<_, i64>(3)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(EffectCounts::from_rows(rows))
    }

    async fn negative_cases(
        &self,
        project: ProjectId,
        model: &str,
        since: Timestamp,
        uncovered: bool,
        limit: u32,
    ) -> Result<Vec<NegativeCase>> {
        let mut client = self.client().await?;
        // One snapshot for the cases and the corrections and comments of their traces.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let cases = negative_cases(&tx, project, model, since, uncovered, limit).await?;
        tx.commit().await?;
        Ok(cases)
    }

    async fn contrast_vectors(
        &self,
        project: ProjectId,
        model: &str,
        limit: u32,
    ) -> Result<Vec<(TraceId, Vec<f32>)>> {
        let client = self.client().await?;
        // Newest traces first, along the time index; each trace's vector by its unique index.
        query(
            &client,
            "SELECT t.id, e.vector FROM traces t
             JOIN embeddings e ON e.model = $2 AND e.trace_seq = t.seq
             WHERE t.project_id = $1
               AND EXISTS (SELECT 1 FROM feedback f
                           WHERE f.project_id = t.project_id AND f.trace_id = t.id
                             AND f.rating_sign = 1 AND f.superseded_by IS NULL)
               AND NOT EXISTS (SELECT 1 FROM feedback f
                               WHERE f.project_id = t.project_id AND f.trace_id = t.id
                                 AND f.negative = 1 AND f.superseded_by IS NULL)
             ORDER BY t.started_at DESC, t.seq DESC
             LIMIT $3",
            &[&project.0, &model, &i64::from(limit)],
        )
        .await?
        .iter()
        .map(|row| {
            Ok((
                stored_trace_id(row.try_get(0)?)?,
                vector_from_bytes(row.try_get(1)?)?,
            ))
        })
        .collect()
    }

    async fn evidence_watermark(&self) -> Result<EvidenceWatermark> {
        let client = self.client().await?;
        // Each is the last entry of a primary key: one index descent.
        let row = query_one(
            &client,
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM feedback),
                    (SELECT COALESCE(MAX(seq), 0) FROM embeddings),
                    (SELECT COALESCE(MAX(seq), 0) FROM lesson_versions)",
            &[],
        )
        .await?;
        Ok(EvidenceWatermark {
            feedback: row.try_get(0)?,
            vectors: row.try_get(1)?,
            lessons: row.try_get(2)?,
        })
    }
}
