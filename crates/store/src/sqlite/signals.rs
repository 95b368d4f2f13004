//! Signal settings, the derived-signal job's look-ups and satisfaction on SQLite (see
//! [`crate::signals`]).

use async_trait::async_trait;
use feedloop_core::signals::{Satisfaction, SignalSettings};
use feedloop_core::{ProjectId, Timestamp, TraceId};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, micros, timestamp};
use crate::embeddings::vector_from_bytes;
use crate::records::trace_id;
use crate::signals::{
    AbandonCandidate, FeedbackChange, SessionNeighbours, Signals, negativity_changes, prefix_end,
    remarked, settings_from_doc,
};
use crate::{Result, StoreError, StoredTrace};

/// The project's settings as `conn` sees them (inside the writer's transaction, or a reader).
pub(super) fn settings_in(conn: &Connection, project: ProjectId) -> Result<SignalSettings> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM signal_settings WHERE project_id = ?1")?
        .query_row(params![project.0], |row| row.get(0))
        .optional()?;
    settings_from_doc(doc.as_deref())
}

/// Re-marks the project's stored signals of the `changed` types by `settings`.
fn remark_signals(
    tx: &Connection,
    project: ProjectId,
    changed: &[String],
    settings: &SignalSettings,
) -> Result<()> {
    let rows = tx
        .prepare("SELECT seq, doc FROM feedback WHERE project_id = ?1 AND kind = 'signal'")?
        .query_map(params![project.0], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<(i64, String)>>>()?;
    let mut update = tx.prepare("UPDATE feedback SET negative = ?2 WHERE seq = ?1")?;
    for (seq, negative) in remarked(rows, changed, settings)? {
        update.execute(params![seq, negative])?;
    }
    Ok(())
}

#[async_trait]
impl Signals for SqliteStore {
    async fn signal_settings(&self, project: ProjectId) -> Result<SignalSettings> {
        self.readers
            .run(move |conn| settings_in(conn, project))
            .await
    }

    async fn set_signal_settings(
        &self,
        project: ProjectId,
        settings: &SignalSettings,
        now: Timestamp,
    ) -> Result<()> {
        let doc = serde_json::to_string(settings)?;
        let settings = settings.clone();
        self.writer
            .run(1, move |tx| {
                let exists: Option<i64> = tx
                    .prepare_cached("SELECT id FROM projects WHERE id = ?1")?
                    .query_row(params![project.0], |row| row.get(0))
                    .optional()?;
                if exists.is_none() {
                    return Err(StoreError::NotFound {
                        what: "project",
                        id: project.to_string(),
                    });
                }
                let changed = negativity_changes(&settings_in(tx, project)?, &settings);
                tx.prepare_cached(
                    "INSERT INTO signal_settings (project_id, updated_at, doc) VALUES (?1, ?2, ?3)
                     ON CONFLICT (project_id) DO UPDATE SET updated_at = excluded.updated_at, doc = excluded.doc",
                )?
                .execute(params![project.0, micros(now), doc])?;
                if !changed.is_empty() {
                    remark_signals(tx, project, &changed, &settings)?;
                }
                Ok(())
            })
            .await
    }

    async fn signal_progress(&self, name: &str) -> Result<i64> {
        let name = name.to_owned();
        self.readers
            .run(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT position FROM signal_progress WHERE name = ?1")?
                    .query_row(params![name], |row| row.get(0))
                    .optional()?
                    .unwrap_or(0))
            })
            .await
    }

    async fn advance_signal_progress(&self, name: &str, position: i64) -> Result<()> {
        let name = name.to_owned();
        self.writer
            .run(1, move |tx| {
                tx.prepare_cached(
                    "INSERT INTO signal_progress (name, position) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET position = MAX(position, excluded.position)",
                )?
                .execute(params![name, position])?;
                Ok(())
            })
            .await
    }

    async fn reset_signal_progress(&self, name: &str, position: i64) -> Result<()> {
        let name = name.to_owned();
        self.writer
            .run(1, move |tx| {
                tx.prepare_cached(
                    "INSERT INTO signal_progress (name, position) VALUES (?1, ?2)
                     ON CONFLICT (name) DO UPDATE SET position = excluded.position",
                )?
                .execute(params![name, position])?;
                Ok(())
            })
            .await
    }

    async fn session_neighbours(
        &self,
        project: ProjectId,
        seqs: &[i64],
    ) -> Result<Vec<SessionNeighbours>> {
        let seqs = seqs.to_vec();
        self.readers
            .run(move |conn| {
                // One indexed probe each way per trace, on `traces_by_session`.
                let mut statement = conn.prepare_cached(
                    "SELECT t.seq,
                        (SELECT p.seq FROM traces p
                         WHERE p.project_id = t.project_id AND p.session_id = t.session_id
                           AND (p.started_at < t.started_at OR (p.started_at = t.started_at AND p.seq < t.seq))
                         ORDER BY p.started_at DESC, p.seq DESC LIMIT 1),
                        (SELECT n.seq FROM traces n
                         WHERE n.project_id = t.project_id AND n.session_id = t.session_id
                           AND (n.started_at > t.started_at OR (n.started_at = t.started_at AND n.seq > t.seq))
                         ORDER BY n.started_at, n.seq LIMIT 1)
                     FROM traces t
                     WHERE t.seq = ?1 AND t.project_id = ?2 AND t.session_id IS NOT NULL",
                )?;
                let mut out = Vec::with_capacity(seqs.len());
                for seq in seqs {
                    let found = statement
                        .query_row(params![seq, project.0], |row| {
                            Ok(SessionNeighbours {
                                seq: row.get(0)?,
                                previous: row.get(1)?,
                                next: row.get(2)?,
                            })
                        })
                        .optional()?;
                    out.extend(found);
                }
                Ok(out)
            })
            .await
    }

    async fn trace_vectors(
        &self,
        model: &str,
        project: ProjectId,
        seqs: &[i64],
    ) -> Result<Vec<(i64, Vec<f32>)>> {
        let (model, seqs) = (model.to_owned(), seqs.to_vec());
        self.readers
            .run(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT vector FROM embeddings WHERE model = ?1 AND trace_seq = ?2 AND project_id = ?3",
                )?;
                let mut out = Vec::with_capacity(seqs.len());
                for seq in seqs {
                    let bytes: Option<Vec<u8>> = statement
                        .query_row(params![model, seq, project.0], |row| row.get(0))
                        .optional()?;
                    if let Some(bytes) = bytes {
                        out.push((seq, vector_from_bytes(&bytes)?));
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn abandonment_candidates(
        &self,
        project: ProjectId,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<AbandonCandidate>> {
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT t.seq, t.doc,
                            (SELECT n.started_at FROM traces n
                             WHERE n.project_id = t.project_id AND n.session_id = t.session_id
                               AND (n.started_at > t.started_at OR (n.started_at = t.started_at AND n.seq > t.seq))
                             ORDER BY n.started_at, n.seq LIMIT 1),
                            EXISTS (SELECT 1 FROM feedback f
                                    WHERE f.project_id = t.project_id AND f.trace_id = t.id AND f.source <> 'automatic')
                         FROM traces t
                         WHERE t.project_id = ?1 AND t.started_at >= ?2 AND t.started_at < ?3
                           AND t.session_id IS NOT NULL
                         ORDER BY t.started_at, t.seq LIMIT ?4",
                    )?
                    .query_map(params![project.0, micros(from), micros(to), limit], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, Option<i64>>(2)?,
                            row.get::<_, bool>(3)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut out = Vec::with_capacity(rows.len());
                for (seq, doc, next, engaged) in rows {
                    let trace: feedloop_core::trace::Trace = serde_json::from_str(&doc)?;
                    out.push(AbandonCandidate {
                        trace: StoredTrace { seq, trace, spans: Vec::new() },
                        next_started_at: next.map(timestamp).transpose()?,
                        engaged,
                    });
                }
                Ok(out)
            })
            .await
    }

    async fn delete_derived_signals(
        &self,
        project: ProjectId,
        id_prefix: &str,
    ) -> Result<Vec<TraceId>> {
        let (start, end) = (id_prefix.to_owned(), prefix_end(id_prefix));
        self.writer
            .run(1, move |tx| {
                let ids = tx
                    .prepare_cached(
                        "DELETE FROM feedback
                         WHERE project_id = ?1 AND id >= ?2 AND id < ?3 AND source = 'automatic'
                         RETURNING trace_id",
                    )?
                    .query_map(params![project.0, start, end], |row| {
                        row.get::<_, String>(0)
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut ids = ids.into_iter().map(trace_id).collect::<Result<Vec<_>>>()?;
                ids.sort();
                ids.dedup();
                Ok(ids)
            })
            .await
    }

    async fn feedback_changes_since(&self, after: i64, limit: u32) -> Result<Vec<FeedbackChange>> {
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT seq, project_id, trace_id FROM feedback WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    )?
                    .query_map(params![after, limit], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(seq, project, id)| {
                        Ok(FeedbackChange {
                            seq,
                            project: ProjectId(project),
                            trace_id: trace_id(id)?,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn put_satisfaction(
        &self,
        project: ProjectId,
        estimates: &[(TraceId, Option<Satisfaction>)],
        now: Timestamp,
    ) -> Result<()> {
        let estimates = estimates.to_vec();
        self.writer
            .run(estimates.len().max(1), move |tx| {
                let mut upsert = tx.prepare_cached(
                    "INSERT INTO trace_satisfaction (project_id, trace_id, score, evidence_weight, num_votes, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (project_id, trace_id) DO UPDATE SET score = excluded.score,
                       evidence_weight = excluded.evidence_weight, num_votes = excluded.num_votes,
                       updated_at = excluded.updated_at",
                )?;
                let mut delete = tx.prepare_cached(
                    "DELETE FROM trace_satisfaction WHERE project_id = ?1 AND trace_id = ?2",
                )?;
                for (trace_id, estimate) in &estimates {
                    match estimate {
                        Some(s) => upsert.execute(params![
                            project.0,
                            trace_id.as_str(),
                            s.score,
                            s.evidence_weight,
                            s.num_votes,
                            micros(now)
                        ])?,
                        None => delete.execute(params![project.0, trace_id.as_str()])?,
                    };
                }
                Ok(())
            })
            .await
    }

    async fn satisfaction_of(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, Satisfaction)>> {
        let trace_ids = trace_ids.to_vec();
        self.readers
            .run(move |conn| {
                let mut statement = conn.prepare_cached(
                    "SELECT score, evidence_weight, num_votes FROM trace_satisfaction
                     WHERE project_id = ?1 AND trace_id = ?2",
                )?;
                let mut out = Vec::new();
                for id in trace_ids {
                    let found = statement
                        .query_row(params![project.0, id.as_str()], |row| {
                            Ok(Satisfaction {
                                score: row.get(0)?,
                                evidence_weight: row.get(1)?,
                                num_votes: row.get(2)?,
                            })
                        })
                        .optional()?;
                    if let Some(found) = found {
                        out.push((id, found));
                    }
                }
                Ok(out)
            })
            .await
    }
}
