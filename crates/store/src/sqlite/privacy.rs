//! Privacy settings, retention, erasure and the vector-removal log on SQLite (see
//! [`crate::privacy`]). Sets of ids travel as one JSON array parameter (`json_each`), so a
//! statement never has more than a few parameters however many rows it touches.

use async_trait::async_trait;
use feedloop_core::privacy::{PrivacySettings, RetentionCutoffs};
use feedloop_core::{ProjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;

use super::{SqliteStore, micros, timestamp};
use crate::privacy::{
    DeletedRows, ErasureReceipt, Privacy, ReceiptDoc, RetentionBatch, VectorRemoval,
    centroid_without, count, item_built_from, payload_names, settings_from_doc, user_id_digest,
};
use crate::{Result, StoreError};

/// A JSON array of the values, for `json_each(?)`.
fn json_list<T: serde::Serialize>(values: &[T]) -> Result<String> {
    Ok(serde_json::to_string(values)?)
}

fn ids_of(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<(i64, String)>> {
    Ok(conn
        .prepare(sql)?
        .query_map(params, |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Deletes traces (`(seq, id)`) and everything that exists because of them; returns the ids of
/// the feedback deleted with them.
fn delete_traces(
    tx: &Connection,
    project: ProjectId,
    traces: &[(i64, String)],
    now: Timestamp,
    deleted: &mut DeletedRows,
    clusters: &mut HashSet<i64>,
) -> Result<Vec<String>> {
    let seqs = json_list(&traces.iter().map(|(seq, _)| *seq).collect::<Vec<_>>())?;
    let ids = json_list(&traces.iter().map(|(_, id)| id.as_str()).collect::<Vec<_>>())?;
    let p = project.0;
    clusters.extend(remove_from_clusters(tx, p, &seqs, deleted)?);
    tx.execute(
        "INSERT INTO vector_removals (project_id, trace_seq, removed_at)
         SELECT DISTINCT project_id, trace_seq, ?3 FROM embeddings
          WHERE project_id = ?1 AND trace_seq IN (SELECT value FROM json_each(?2))",
        params![p, seqs, micros(now)],
    )?;
    let by_seq: [(&str, &str); 3] = [
        (
            "embeddings",
            "DELETE FROM embeddings WHERE project_id = ?1 AND trace_seq IN (SELECT value FROM json_each(?2))",
        ),
        (
            "embedding_queue",
            "DELETE FROM embedding_queue WHERE project_id = ?1 AND trace_seq IN (SELECT value FROM json_each(?2))",
        ),
        (
            "trace_tags",
            "DELETE FROM trace_tags WHERE project_id = ?1 AND trace_seq IN (SELECT value FROM json_each(?2))",
        ),
    ];
    for (table, sql) in by_seq {
        count(deleted, table, tx.execute(sql, params![p, seqs])? as u64);
    }
    delete_review_items(tx, p, &ids, deleted)?;
    delete_injections(
        tx,
        p,
        "trace_id IN (SELECT value FROM json_each(?2))",
        &ids,
        deleted,
    )?;
    count(
        deleted,
        "injection_lessons",
        tx.execute(
            "DELETE FROM injection_lessons WHERE project_id = ?1 AND trace_id IN (SELECT value FROM json_each(?2))",
            params![p, ids],
        )? as u64,
    );
    let by_id: [(&str, &str); 2] = [
        (
            "spans",
            "DELETE FROM spans WHERE project_id = ?1 AND trace_id IN (SELECT value FROM json_each(?2))",
        ),
        (
            "trace_satisfaction",
            "DELETE FROM trace_satisfaction WHERE project_id = ?1 AND trace_id IN (SELECT value FROM json_each(?2))",
        ),
    ];
    for (table, sql) in by_id {
        count(deleted, table, tx.execute(sql, params![p, ids])? as u64);
    }
    let feedback = ids_of(
        tx,
        "SELECT seq, id FROM feedback WHERE project_id = ?1 AND trace_id IN (SELECT value FROM json_each(?2))",
        params![p, ids],
    )?;
    delete_feedback(tx, project, &feedback, deleted)?;
    count(
        deleted,
        "traces",
        tx.execute(
            "DELETE FROM traces WHERE project_id = ?1 AND seq IN (SELECT value FROM json_each(?2))",
            params![p, seqs],
        )? as u64,
    );
    Ok(feedback.into_iter().map(|(_, id)| id).collect())
}

/// Takes the traces out of their problem clusters: the member row goes, the cluster's size and
/// centroid sum drop it, a cluster left empty goes too, and one left with members loses its
/// terms (they may be the erased member's words). Returns the clusters touched.
fn remove_from_clusters(
    tx: &Connection,
    project: i64,
    seqs: &str,
    deleted: &mut DeletedRows,
) -> Result<HashSet<i64>> {
    let members = tx
        .prepare(
            "SELECT m.cluster_id, e.vector FROM cluster_members m
               JOIN problem_clusters c ON c.id = m.cluster_id
               LEFT JOIN embeddings e ON e.model = c.model AND e.trace_seq = m.trace_seq
              WHERE m.project_id = ?1 AND m.trace_seq IN (SELECT value FROM json_each(?2))",
        )?
        .query_map(params![project, seqs], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, Option<Vec<u8>>>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for (cluster, vector) in &members {
        let sum: Vec<u8> = tx.query_row(
            "SELECT centroid_sum FROM problem_clusters WHERE id = ?1",
            params![cluster],
            |row| row.get(0),
        )?;
        let sum = match vector {
            Some(vector) => centroid_without(&sum, vector)?,
            None => sum,
        };
        tx.execute(
            "UPDATE problem_clusters SET size = size - 1, centroid_sum = ?2 WHERE id = ?1",
            params![cluster, sum],
        )?;
    }
    count(
        deleted,
        "cluster_members",
        tx.execute(
            "DELETE FROM cluster_members WHERE project_id = ?1 AND trace_seq IN (SELECT value FROM json_each(?2))",
            params![project, seqs],
        )? as u64,
    );
    count(
        deleted,
        "problem_clusters",
        tx.execute(
            "DELETE FROM problem_clusters WHERE project_id = ?1
               AND NOT EXISTS (SELECT 1 FROM cluster_members m WHERE m.cluster_id = problem_clusters.id)",
            params![project],
        )? as u64,
    );
    let touched: HashSet<i64> = members.iter().map(|(cluster, _)| *cluster).collect();
    tx.execute(
        "UPDATE problem_clusters SET terms = '[]' WHERE id IN (SELECT value FROM json_each(?1))",
        params![json_list(&touched.iter().collect::<Vec<_>>())?],
    )?;
    Ok(touched)
}

fn delete_review_items(
    tx: &Connection,
    project: i64,
    trace_ids: &str,
    deleted: &mut DeletedRows,
) -> Result<()> {
    let items: Vec<i64> = tx
        .prepare("SELECT id FROM review_items WHERE project_id = ?1 AND trace_id IN (SELECT value FROM json_each(?2))")?
        .query_map(params![project, trace_ids], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let items = json_list(&items)?;
    for (table, sql) in [
        (
            "review_verdicts",
            "DELETE FROM review_verdicts WHERE item_id IN (SELECT value FROM json_each(?1))",
        ),
        (
            "review_events",
            "DELETE FROM review_events WHERE item_id IN (SELECT value FROM json_each(?1))",
        ),
        (
            "review_items",
            "DELETE FROM review_items WHERE id IN (SELECT value FROM json_each(?1))",
        ),
    ] {
        count(deleted, table, tx.execute(sql, params![items])? as u64);
    }
    Ok(())
}

/// Deletes the injections matching `condition` (on `injections`, with `?2` bound to `values`)
/// and their lesson rows.
fn delete_injections(
    tx: &Connection,
    project: i64,
    condition: &str,
    values: &str,
    deleted: &mut DeletedRows,
) -> Result<()> {
    let injections: Vec<String> = tx
        .prepare(&format!(
            "SELECT id FROM injections WHERE project_id = ?1 AND {condition}"
        ))?
        .query_map(params![project, values], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let injections = json_list(&injections)?;
    count(
        deleted,
        "injection_lessons",
        tx.execute(
            "DELETE FROM injection_lessons WHERE project_id = ?1
               AND injection_id IN (SELECT value FROM json_each(?2))",
            params![project, injections],
        )? as u64,
    );
    count(
        deleted,
        "injections",
        tx.execute(
            "DELETE FROM injections WHERE project_id = ?1 AND id IN (SELECT value FROM json_each(?2))",
            params![project, injections],
        )? as u64,
    );
    Ok(())
}

/// Deletes feedback rows (`(seq, id)`), their lesson provenance links, and the satisfaction
/// estimates of their traces (recomputed from what is left when feedback next arrives).
fn delete_feedback(
    tx: &Connection,
    project: ProjectId,
    feedback: &[(i64, String)],
    deleted: &mut DeletedRows,
) -> Result<()> {
    let seqs = json_list(&feedback.iter().map(|(seq, _)| *seq).collect::<Vec<_>>())?;
    let ids = json_list(
        &feedback
            .iter()
            .map(|(_, id)| id.as_str())
            .collect::<Vec<_>>(),
    )?;
    let p = project.0;
    count(
        deleted,
        "trace_satisfaction",
        tx.execute(
            "DELETE FROM trace_satisfaction WHERE project_id = ?1 AND trace_id IN
               (SELECT trace_id FROM feedback WHERE seq IN (SELECT value FROM json_each(?2)))",
            params![p, seqs],
        )? as u64,
    );
    count(
        deleted,
        "lesson_feedback",
        tx.execute(
            "DELETE FROM lesson_feedback WHERE project_id = ?1 AND feedback_id IN (SELECT value FROM json_each(?2))",
            params![p, ids],
        )? as u64,
    );
    count(
        deleted,
        "feedback",
        tx.execute(
            "DELETE FROM feedback WHERE project_id = ?1 AND seq IN (SELECT value FROM json_each(?2))",
            params![p, seqs],
        )? as u64,
    );
    Ok(())
}

/// Dataset items built from the traces or feedback; returns how many were deleted.
fn delete_dataset_items(
    tx: &Connection,
    project: i64,
    trace_ids: &HashSet<String>,
    feedback_ids: &HashSet<String>,
    deleted: &mut DeletedRows,
) -> Result<()> {
    let mut doomed = Vec::new();
    let mut rows = tx.prepare("SELECT seq, doc FROM dataset_items WHERE project_id = ?1")?;
    let mut rows = rows.query(params![project])?;
    while let Some(row) = rows.next()? {
        let doc: String = row.get(1)?;
        if item_built_from(&doc, trace_ids, feedback_ids)? {
            doomed.push(row.get::<_, i64>(0)?);
        }
    }
    count(
        deleted,
        "dataset_items",
        tx.execute(
            "DELETE FROM dataset_items WHERE project_id = ?1 AND seq IN (SELECT value FROM json_each(?2))",
            params![project, json_list(&doomed)?],
        )? as u64,
    );
    Ok(())
}

/// Webhook events whose payload names any of `ids`, with their deliveries and attempts.
fn delete_webhook_events(
    tx: &Connection,
    project: i64,
    ids: &HashSet<String>,
    clusters: &HashSet<i64>,
    deleted: &mut DeletedRows,
) -> Result<()> {
    let mut doomed = Vec::new();
    let mut rows = tx.prepare("SELECT seq, payload FROM webhook_events WHERE project_id = ?1")?;
    let mut rows = rows.query(params![project])?;
    while let Some(row) = rows.next()? {
        if payload_names(&row.get::<_, String>(1)?, ids, clusters) {
            doomed.push(row.get::<_, i64>(0)?);
        }
    }
    let events = json_list(&doomed)?;
    for (table, sql) in [
        ("webhook_attempts", "DELETE FROM webhook_attempts WHERE delivery_id IN
            (SELECT id FROM webhook_deliveries WHERE project_id = ?1 AND event_seq IN (SELECT value FROM json_each(?2)))"),
        ("webhook_deliveries", "DELETE FROM webhook_deliveries WHERE project_id = ?1 AND event_seq IN (SELECT value FROM json_each(?2))"),
        ("webhook_events", "DELETE FROM webhook_events WHERE project_id = ?1 AND seq IN (SELECT value FROM json_each(?2))"),
    ] {
        count(deleted, table, tx.execute(sql, params![project, events])? as u64);
    }
    Ok(())
}

fn erase(
    tx: &Connection,
    project: ProjectId,
    user_id: &str,
    now: Timestamp,
    deleted: &mut DeletedRows,
) -> Result<Vec<String>> {
    let p = project.0;
    let traces = ids_of(
        tx,
        "SELECT seq, id FROM traces WHERE project_id = ?1 AND (user_id = ?2 OR session_id IN
           (SELECT session_id FROM traces WHERE project_id = ?1 AND user_id = ?2 AND session_id IS NOT NULL))",
        params![p, user_id],
    )?;
    let sessions: Vec<String> = tx
        .prepare("SELECT DISTINCT session_id FROM traces WHERE project_id = ?1 AND user_id = ?2 AND session_id IS NOT NULL")?
        .query_map(params![p, user_id], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let authored = ids_of(
        tx,
        "SELECT seq, id FROM feedback WHERE project_id = ?1 AND author = ?2",
        params![p, user_id],
    )?;
    let mut feedback_ids: HashSet<String> = authored.iter().map(|(_, id)| id.clone()).collect();
    let lessons_to_review = lessons_citing(tx, p, &feedback_ids, &traces)?;
    let mut clusters = HashSet::new();
    feedback_ids.extend(delete_traces(
        tx,
        project,
        &traces,
        now,
        deleted,
        &mut clusters,
    )?);
    delete_feedback(tx, project, &authored, deleted)?;
    delete_injections(
        tx,
        p,
        "session_id IN (SELECT value FROM json_each(?2))",
        &json_list(&sessions)?,
        deleted,
    )?;
    let trace_ids: HashSet<String> = traces.into_iter().map(|(_, id)| id).collect();
    delete_dataset_items(tx, p, &trace_ids, &feedback_ids, deleted)?;
    let mut named: HashSet<String> = trace_ids;
    named.extend(feedback_ids);
    named.insert(user_id.to_owned());
    delete_webhook_events(tx, p, &named, &clusters, deleted)?;
    Ok(lessons_to_review)
}

/// Lessons whose provenance cites the feedback, or feedback on the traces.
fn lessons_citing(
    tx: &Connection,
    project: i64,
    feedback_ids: &HashSet<String>,
    traces: &[(i64, String)],
) -> Result<Vec<String>> {
    let feedback = json_list(&feedback_ids.iter().collect::<Vec<_>>())?;
    let traces = json_list(&traces.iter().map(|(_, id)| id).collect::<Vec<_>>())?;
    Ok(tx
        .prepare(
            "SELECT DISTINCT lesson_id FROM lesson_feedback WHERE project_id = ?1 AND feedback_id IN
               (SELECT value FROM json_each(?2)
                UNION SELECT id FROM feedback WHERE project_id = ?1 AND trace_id IN (SELECT value FROM json_each(?3)))
             ORDER BY lesson_id",
        )?
        .query_map(params![project, feedback, traces], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?)
}

fn receipt_from_row(row: &rusqlite::Row) -> Result<ErasureReceipt> {
    let doc: ReceiptDoc = serde_json::from_str(&row.get::<_, String>(3)?)?;
    Ok(ErasureReceipt {
        id: row.get(0)?,
        user_id_sha256: doc.user_id_sha256,
        requested_at: timestamp(row.get(1)?)?,
        completed_at: timestamp(row.get(2)?)?,
        deleted: doc.deleted,
        lessons_to_review: doc.lessons_to_review,
    })
}

fn project_exists(conn: &Connection, project: ProjectId) -> Result<()> {
    let exists: Option<i64> = conn
        .prepare_cached("SELECT id FROM projects WHERE id = ?1")?
        .query_row(params![project.0], |row| row.get(0))
        .optional()?;
    match exists {
        Some(_) => Ok(()),
        None => Err(StoreError::NotFound {
            what: "project",
            id: project.to_string(),
        }),
    }
}

/// One batch of expired traces and feedback (see [`Privacy::delete_expired`]).
fn delete_expired_batch(
    tx: &Connection,
    project: ProjectId,
    cutoffs: RetentionCutoffs,
    limit: u32,
    now: Timestamp,
) -> Result<RetentionBatch> {
    let mut batch = RetentionBatch::default();
    if let Some(before) = cutoffs.traces_before {
        let keep_before = cutoffs.traces_with_feedback_before.map(micros);
        let traces = ids_of(
            tx,
            "SELECT seq, id FROM traces t WHERE project_id = ?1 AND started_at < ?2
               AND (?3 IS NULL OR started_at < ?3 OR NOT EXISTS
                    (SELECT 1 FROM feedback f WHERE f.project_id = t.project_id AND f.trace_id = t.id
                        AND f.source <> 'automatic'))
             ORDER BY started_at, seq LIMIT ?4",
            params![project.0, micros(before), keep_before, limit],
        )?;
        batch.num_traces = traces.len() as u64;
        let mut clusters = HashSet::new();
        delete_traces(tx, project, &traces, now, &mut batch.deleted, &mut clusters)?;
    }
    if let Some(before) = cutoffs.feedback_before {
        let feedback = ids_of(
            tx,
            "SELECT seq, id FROM feedback WHERE project_id = ?1 AND created_at < ?2
             ORDER BY created_at, seq LIMIT ?3",
            params![project.0, micros(before), limit],
        )?;
        batch.num_feedback = feedback.len() as u64;
        delete_feedback(tx, project, &feedback, &mut batch.deleted)?;
    }
    Ok(batch)
}

#[async_trait]
impl Privacy for SqliteStore {
    async fn privacy_settings(&self, project: ProjectId) -> Result<PrivacySettings> {
        self.readers
            .run(move |conn| {
                let doc: Option<String> = conn
                    .prepare_cached("SELECT doc FROM privacy_settings WHERE project_id = ?1")?
                    .query_row(params![project.0], |row| row.get(0))
                    .optional()?;
                settings_from_doc(doc.as_deref())
            })
            .await
    }

    async fn set_privacy_settings(
        &self,
        project: ProjectId,
        settings: &PrivacySettings,
        now: Timestamp,
    ) -> Result<()> {
        let doc = serde_json::to_string(settings)?;
        self.writer
            .run(1, move |tx| {
                project_exists(tx, project)?;
                tx.prepare_cached(
                    "INSERT INTO privacy_settings (project_id, updated_at, doc) VALUES (?1, ?2, ?3)
                     ON CONFLICT (project_id) DO UPDATE SET updated_at = excluded.updated_at, doc = excluded.doc",
                )?
                .execute(params![project.0, micros(now), doc])?;
                Ok(())
            })
            .await
    }

    async fn erase_user(
        &self,
        project: ProjectId,
        user_id: &str,
        receipt_id: &str,
        requested_at: Timestamp,
        now: Timestamp,
    ) -> Result<ErasureReceipt> {
        let (user_id, receipt_id) = (user_id.to_owned(), receipt_id.to_owned());
        self.writer
            .run(1, move |tx| {
                project_exists(tx, project)?;
                let mut deleted = DeletedRows::new();
                let lessons_to_review = erase(tx, project, &user_id, now, &mut deleted)?;
                let receipt = ErasureReceipt {
                    id: receipt_id,
                    user_id_sha256: user_id_digest(&user_id),
                    requested_at,
                    completed_at: now,
                    deleted,
                    lessons_to_review,
                };
                let doc = serde_json::to_string(&ReceiptDoc {
                    user_id_sha256: receipt.user_id_sha256.clone(),
                    deleted: receipt.deleted.clone(),
                    lessons_to_review: receipt.lessons_to_review.clone(),
                })?;
                tx.execute(
                    "INSERT INTO erasure_receipts (project_id, id, requested_at, completed_at, doc)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        project.0,
                        receipt.id,
                        micros(requested_at),
                        micros(now),
                        doc
                    ],
                )?;
                Ok(receipt)
            })
            .await
    }

    async fn erasure_receipts(&self, project: ProjectId) -> Result<Vec<ErasureReceipt>> {
        self.readers
            .run(move |conn| {
                let mut statement = conn.prepare(
                    "SELECT id, requested_at, completed_at, doc FROM erasure_receipts
                      WHERE project_id = ?1 ORDER BY completed_at DESC, id DESC",
                )?;
                let mut rows = statement.query(params![project.0])?;
                let mut receipts = Vec::new();
                while let Some(row) = rows.next()? {
                    receipts.push(receipt_from_row(row)?);
                }
                Ok(receipts)
            })
            .await
    }

    async fn delete_expired(
        &self,
        project: ProjectId,
        cutoffs: RetentionCutoffs,
        limit: u32,
        now: Timestamp,
    ) -> Result<RetentionBatch> {
        self.writer
            .run(limit as usize, move |tx| {
                delete_expired_batch(tx, project, cutoffs, limit, now)
            })
            .await
    }

    async fn vector_removals_since(&self, after: i64, limit: u32) -> Result<Vec<VectorRemoval>> {
        self.readers
            .run(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT seq, project_id, trace_seq FROM vector_removals WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    )?
                    .query_map(params![after, limit], |row| {
                        Ok(VectorRemoval {
                            seq: row.get(0)?,
                            project: ProjectId(row.get(1)?),
                            trace_seq: row.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<_>>()?)
            })
            .await
    }
}
