//! Privacy settings, retention, erasure and the vector-removal log on PostgreSQL (see
//! [`crate::privacy`]). Sets of ids are array parameters (`= ANY ($n)`).
//!
//! Erasure and retention batches hold the project's ingest lock exclusively (ingests in flight
//! finish first, later ones wait), so no trace or feedback of the set arrives half-way; they
//! take the vectors' advisory lock just before logging removed vectors, so removal numbers
//! become visible in commit order, as vector numbers do.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use feedloop_core::privacy::{PrivacySettings, RetentionCutoffs};
use feedloop_core::{ProjectId, Timestamp};
use std::collections::HashSet;

use super::embeddings::EMBEDDINGS_LOCK;
use super::{PostgresStore, execute, locks, micros, query, query_opt, timestamp};
use crate::privacy::{
    DeletedRows, ErasureReceipt, Privacy, ReceiptDoc, RetentionBatch, VectorRemoval,
    centroid_without, count, item_built_from, payload_names, settings_from_doc, user_id_digest,
};
use crate::{Result, StoreError};

type Tx<'a> = deadpool_postgres::Transaction<'a>;

async fn ids_of(
    tx: &Tx<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<(i64, String)>> {
    query(tx, sql, params)
        .await?
        .into_iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

/// Runs a delete and counts it under `table`.
async fn delete(
    tx: &Tx<'_>,
    deleted: &mut DeletedRows,
    table: &str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<()> {
    let n = execute(tx, sql, params).await?;
    count(deleted, table, n);
    Ok(())
}

/// Takes the project's ingest lock exclusively; `NotFound` if there is no such project.
async fn lock_project(tx: &Tx<'_>, project: ProjectId) -> Result<()> {
    if locks::lock_project(tx, project, true).await? {
        Ok(())
    } else {
        Err(StoreError::NotFound {
            what: "project",
            id: project.to_string(),
        })
    }
}

/// Deletes traces (`(seq, id)`) and everything that exists because of them; returns the ids of
/// the feedback deleted with them.
async fn delete_traces(
    tx: &Tx<'_>,
    project: ProjectId,
    traces: &[(i64, String)],
    now: Timestamp,
    deleted: &mut DeletedRows,
    clusters: &mut HashSet<i64>,
) -> Result<Vec<String>> {
    let seqs: Vec<i64> = traces.iter().map(|(seq, _)| *seq).collect();
    let ids: Vec<&str> = traces.iter().map(|(_, id)| id.as_str()).collect();
    let p = &project.0;
    clusters.extend(remove_from_clusters(tx, project, &seqs, deleted).await?);
    delete(
        tx,
        deleted,
        "embedding_queue",
        "DELETE FROM embedding_queue WHERE project_id = $1 AND trace_seq = ANY ($2)",
        &[p, &seqs],
    )
    .await?;
    delete(
        tx,
        deleted,
        "trace_tags",
        "DELETE FROM trace_tags WHERE project_id = $1 AND trace_seq = ANY ($2)",
        &[p, &seqs],
    )
    .await?;
    execute(
        tx,
        "SELECT pg_advisory_xact_lock($1, $2)",
        &[&EMBEDDINGS_LOCK.0, &EMBEDDINGS_LOCK.1],
    )
    .await?;
    execute(
        tx,
        "INSERT INTO vector_removals (project_id, trace_seq, removed_at)
         SELECT DISTINCT project_id, trace_seq, $3::BIGINT FROM embeddings
          WHERE project_id = $1 AND trace_seq = ANY ($2)",
        &[p, &seqs, &micros(now)],
    )
    .await?;
    delete(
        tx,
        deleted,
        "embeddings",
        "DELETE FROM embeddings WHERE project_id = $1 AND trace_seq = ANY ($2)",
        &[p, &seqs],
    )
    .await?;
    delete_review_items(tx, project, &ids, deleted).await?;
    delete_injections(tx, project, "trace_id = ANY ($2)", &ids, deleted).await?;
    delete(
        tx,
        deleted,
        "injection_lessons",
        "DELETE FROM injection_lessons WHERE project_id = $1 AND trace_id = ANY ($2)",
        &[p, &ids],
    )
    .await?;
    delete(
        tx,
        deleted,
        "spans",
        "DELETE FROM spans WHERE project_id = $1 AND trace_id = ANY ($2)",
        &[p, &ids],
    )
    .await?;
    delete(
        tx,
        deleted,
        "trace_satisfaction",
        "DELETE FROM trace_satisfaction WHERE project_id = $1 AND trace_id = ANY ($2)",
        &[p, &ids],
    )
    .await?;
    let feedback = ids_of(
        tx,
        "SELECT seq, id FROM feedback WHERE project_id = $1 AND trace_id = ANY ($2)",
        &[p, &ids],
    )
    .await?;
    delete_feedback(tx, project, &feedback, deleted).await?;
    delete(
        tx,
        deleted,
        "traces",
        "DELETE FROM traces WHERE project_id = $1 AND seq = ANY ($2)",
        &[p, &seqs],
    )
    .await?;
    Ok(feedback.into_iter().map(|(_, id)| id).collect())
}

/// Takes the traces out of their problem clusters (see the SQLite twin); returns the clusters
/// touched.
async fn remove_from_clusters(
    tx: &Tx<'_>,
    project: ProjectId,
    seqs: &[i64],
    deleted: &mut DeletedRows,
) -> Result<HashSet<i64>> {
    let mut touched = HashSet::new();
    let members = query(
        tx,
        "SELECT m.cluster_id, e.vector FROM cluster_members m
           JOIN problem_clusters c ON c.id = m.cluster_id
           LEFT JOIN embeddings e ON e.model = c.model AND e.trace_seq = m.trace_seq
          WHERE m.project_id = $1 AND m.trace_seq = ANY ($2)
          ORDER BY m.cluster_id",
        &[&project.0, &seqs],
    )
    .await?;
    for row in members {
        let cluster: i64 = row.try_get(0)?;
        touched.insert(cluster);
        let vector: Option<Vec<u8>> = row.try_get(1)?;
        let sum_row = query_opt(
            tx,
            "SELECT centroid_sum FROM problem_clusters WHERE id = $1 FOR UPDATE",
            &[&cluster],
        )
        .await?;
        let Some(sum_row) = sum_row else { continue };
        let sum: Vec<u8> = sum_row.try_get(0)?;
        let sum = match vector {
            Some(vector) => centroid_without(&sum, &vector)?,
            None => sum,
        };
        execute(
            tx,
            "UPDATE problem_clusters SET size = size - 1, centroid_sum = $2 WHERE id = $1",
            &[&cluster, &sum],
        )
        .await?;
    }
    delete(
        tx,
        deleted,
        "cluster_members",
        "DELETE FROM cluster_members WHERE project_id = $1 AND trace_seq = ANY ($2)",
        &[&project.0, &seqs],
    )
    .await?;
    delete(
        tx,
        deleted,
        "problem_clusters",
        "DELETE FROM problem_clusters c WHERE project_id = $1
           AND NOT EXISTS (SELECT 1 FROM cluster_members m WHERE m.cluster_id = c.id)",
        &[&project.0],
    )
    .await?;
    let touched_ids: Vec<i64> = touched.iter().copied().collect();
    execute(
        tx,
        "UPDATE problem_clusters SET terms = '[]' WHERE id = ANY ($1)",
        &[&touched_ids],
    )
    .await?;
    Ok(touched)
}

async fn delete_review_items(
    tx: &Tx<'_>,
    project: ProjectId,
    trace_ids: &[&str],
    deleted: &mut DeletedRows,
) -> Result<()> {
    let items: Vec<i64> = query(
        tx,
        "SELECT id FROM review_items WHERE project_id = $1 AND trace_id = ANY ($2)",
        &[&project.0, &trace_ids],
    )
    .await?
    .into_iter()
    .map(|row| row.try_get(0))
    .collect::<std::result::Result<_, _>>()?;
    delete(
        tx,
        deleted,
        "review_verdicts",
        "DELETE FROM review_verdicts WHERE item_id = ANY ($1)",
        &[&items],
    )
    .await?;
    delete(
        tx,
        deleted,
        "review_events",
        "DELETE FROM review_events WHERE item_id = ANY ($1)",
        &[&items],
    )
    .await?;
    delete(
        tx,
        deleted,
        "review_items",
        "DELETE FROM review_items WHERE id = ANY ($1)",
        &[&items],
    )
    .await
}

/// Deletes the injections matching `condition` (on `injections`, with `$2` bound to `values`)
/// and their lesson rows.
async fn delete_injections(
    tx: &Tx<'_>,
    project: ProjectId,
    condition: &str,
    values: &[&str],
    deleted: &mut DeletedRows,
) -> Result<()> {
    let injections: Vec<String> = query(
        tx,
        &format!("SELECT id FROM injections WHERE project_id = $1 AND {condition}"),
        &[&project.0, &values],
    )
    .await?
    .into_iter()
    .map(|row| row.try_get(0))
    .collect::<std::result::Result<_, _>>()?;
    delete(
        tx,
        deleted,
        "injection_lessons",
        "DELETE FROM injection_lessons WHERE project_id = $1 AND injection_id = ANY ($2)",
        &[&project.0, &injections],
    )
    .await?;
    delete(
        tx,
        deleted,
        "injections",
        "DELETE FROM injections WHERE project_id = $1 AND id = ANY ($2)",
        &[&project.0, &injections],
    )
    .await
}

/// Deletes feedback rows, their lesson provenance links and their traces' satisfaction
/// estimates (see the SQLite twin).
async fn delete_feedback(
    tx: &Tx<'_>,
    project: ProjectId,
    feedback: &[(i64, String)],
    deleted: &mut DeletedRows,
) -> Result<()> {
    let seqs: Vec<i64> = feedback.iter().map(|(seq, _)| *seq).collect();
    let ids: Vec<&str> = feedback.iter().map(|(_, id)| id.as_str()).collect();
    let p = &project.0;
    delete(
        tx,
        deleted,
        "trace_satisfaction",
        "DELETE FROM trace_satisfaction WHERE project_id = $1 AND trace_id IN
           (SELECT trace_id FROM feedback WHERE seq = ANY ($2))",
        &[p, &seqs],
    )
    .await?;
    delete(
        tx,
        deleted,
        "lesson_feedback",
        "DELETE FROM lesson_feedback WHERE project_id = $1 AND feedback_id = ANY ($2)",
        &[p, &ids],
    )
    .await?;
    delete(
        tx,
        deleted,
        "feedback",
        "DELETE FROM feedback WHERE project_id = $1 AND seq = ANY ($2)",
        &[p, &seqs],
    )
    .await
}

async fn delete_dataset_items(
    tx: &Tx<'_>,
    project: ProjectId,
    trace_ids: &HashSet<String>,
    feedback_ids: &HashSet<String>,
    deleted: &mut DeletedRows,
) -> Result<()> {
    let mut doomed: Vec<i64> = Vec::new();
    for row in query(
        tx,
        "SELECT seq, doc FROM dataset_items WHERE project_id = $1",
        &[&project.0],
    )
    .await?
    {
        if item_built_from(row.try_get(1)?, trace_ids, feedback_ids)? {
            doomed.push(row.try_get(0)?);
        }
    }
    delete(
        tx,
        deleted,
        "dataset_items",
        "DELETE FROM dataset_items WHERE project_id = $1 AND seq = ANY ($2)",
        &[&project.0, &doomed],
    )
    .await
}

async fn delete_webhook_events(
    tx: &Tx<'_>,
    project: ProjectId,
    ids: &HashSet<String>,
    clusters: &HashSet<i64>,
    deleted: &mut DeletedRows,
) -> Result<()> {
    let mut events: Vec<i64> = Vec::new();
    for row in query(
        tx,
        "SELECT seq, payload FROM webhook_events WHERE project_id = $1",
        &[&project.0],
    )
    .await?
    {
        if payload_names(row.try_get(1)?, ids, clusters) {
            events.push(row.try_get(0)?);
        }
    }
    let p = &project.0;
    delete(
        tx,
        deleted,
        "webhook_attempts",
        "DELETE FROM webhook_attempts WHERE delivery_id IN
           (SELECT id FROM webhook_deliveries WHERE project_id = $1 AND event_seq = ANY ($2))",
        &[p, &events],
    )
    .await?;
    delete(
        tx,
        deleted,
        "webhook_deliveries",
        "DELETE FROM webhook_deliveries WHERE project_id = $1 AND event_seq = ANY ($2)",
        &[p, &events],
    )
    .await?;
    delete(
        tx,
        deleted,
        "webhook_events",
        "DELETE FROM webhook_events WHERE project_id = $1 AND seq = ANY ($2)",
        &[p, &events],
    )
    .await
}

async fn erase(
    tx: &Tx<'_>,
    project: ProjectId,
    user_id: &str,
    now: Timestamp,
    deleted: &mut DeletedRows,
) -> Result<Vec<String>> {
    let p = &project.0;
    let traces = ids_of(
        tx,
        "SELECT seq, id FROM traces WHERE project_id = $1 AND (user_id = $2 OR session_id IN
           (SELECT session_id FROM traces WHERE project_id = $1 AND user_id = $2 AND session_id IS NOT NULL))",
        &[p, &user_id],
    )
    .await?;
    let sessions: Vec<String> = query(
        tx,
        "SELECT DISTINCT session_id FROM traces WHERE project_id = $1 AND user_id = $2 AND session_id IS NOT NULL",
        &[p, &user_id],
    )
    .await?
    .into_iter()
    .map(|row| row.try_get(0))
    .collect::<std::result::Result<_, _>>()?;
    let authored = ids_of(
        tx,
        "SELECT seq, id FROM feedback WHERE project_id = $1 AND author = $2",
        &[p, &user_id],
    )
    .await?;
    let mut feedback_ids: HashSet<String> = authored.iter().map(|(_, id)| id.clone()).collect();
    let lessons_to_review = lessons_citing(tx, project, &feedback_ids, &traces).await?;
    let mut clusters = HashSet::new();
    feedback_ids.extend(delete_traces(tx, project, &traces, now, deleted, &mut clusters).await?);
    delete_feedback(tx, project, &authored, deleted).await?;
    let sessions: Vec<&str> = sessions.iter().map(String::as_str).collect();
    delete_injections(tx, project, "session_id = ANY ($2)", &sessions, deleted).await?;
    let trace_ids: HashSet<String> = traces.into_iter().map(|(_, id)| id).collect();
    delete_dataset_items(tx, project, &trace_ids, &feedback_ids, deleted).await?;
    let mut named = trace_ids;
    named.extend(feedback_ids);
    named.insert(user_id.to_owned());
    delete_webhook_events(tx, project, &named, &clusters, deleted).await?;
    Ok(lessons_to_review)
}

async fn lessons_citing(
    tx: &Tx<'_>,
    project: ProjectId,
    feedback_ids: &HashSet<String>,
    traces: &[(i64, String)],
) -> Result<Vec<String>> {
    let feedback: Vec<&str> = feedback_ids.iter().map(String::as_str).collect();
    let traces: Vec<&str> = traces.iter().map(|(_, id)| id.as_str()).collect();
    query(
        tx,
        "SELECT DISTINCT lesson_id FROM lesson_feedback WHERE project_id = $1 AND (feedback_id = ANY ($2)
            OR feedback_id IN (SELECT id FROM feedback WHERE project_id = $1 AND trace_id = ANY ($3)))
         ORDER BY lesson_id",
        &[&project.0, &feedback, &traces],
    )
    .await?
    .into_iter()
    .map(|row| Ok(row.try_get(0)?))
    .collect()
}

async fn delete_expired_batch(
    tx: &Tx<'_>,
    project: ProjectId,
    cutoffs: RetentionCutoffs,
    limit: u32,
    now: Timestamp,
) -> Result<RetentionBatch> {
    let mut batch = RetentionBatch::default();
    let limit = i64::from(limit);
    if let Some(before) = cutoffs.traces_before {
        let keep_before = cutoffs.traces_with_feedback_before.map(micros);
        let traces = ids_of(
            tx,
            "SELECT seq, id FROM traces t WHERE project_id = $1 AND started_at < $2
               AND ($3::BIGINT IS NULL OR started_at < $3 OR NOT EXISTS
                    (SELECT 1 FROM feedback f WHERE f.project_id = t.project_id AND f.trace_id = t.id
                        AND f.source <> 'automatic'))
             ORDER BY started_at, seq LIMIT $4",
            &[&project.0, &micros(before), &keep_before, &limit],
        )
        .await?;
        batch.num_traces = traces.len() as u64;
        let mut clusters = HashSet::new();
        delete_traces(tx, project, &traces, now, &mut batch.deleted, &mut clusters).await?;
    }
    if let Some(before) = cutoffs.feedback_before {
        let feedback = ids_of(
            tx,
            "SELECT seq, id FROM feedback WHERE project_id = $1 AND created_at < $2
             ORDER BY created_at, seq LIMIT $3",
            &[&project.0, &micros(before), &limit],
        )
        .await?;
        batch.num_feedback = feedback.len() as u64;
        delete_feedback(tx, project, &feedback, &mut batch.deleted).await?;
    }
    Ok(batch)
}

#[async_trait]
impl Privacy for PostgresStore {
    async fn privacy_settings(&self, project: ProjectId) -> Result<PrivacySettings> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT doc FROM privacy_settings WHERE project_id = $1",
            &[&project.0],
        )
        .await?;
        let doc: Option<&str> = row.as_ref().map(|row| row.try_get(0)).transpose()?;
        settings_from_doc(doc)
    }

    async fn set_privacy_settings(
        &self,
        project: ProjectId,
        settings: &PrivacySettings,
        now: Timestamp,
    ) -> Result<()> {
        let doc = serde_json::to_string(settings)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Exclusive: an ingest in flight redacted by the old settings commits first.
        lock_project(&tx, project).await?;
        execute(
            &tx,
            "INSERT INTO privacy_settings (project_id, updated_at, doc) VALUES ($1, $2, $3)
             ON CONFLICT (project_id) DO UPDATE SET updated_at = excluded.updated_at, doc = excluded.doc",
            &[&project.0, &micros(now), &doc],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn erase_user(
        &self,
        project: ProjectId,
        user_id: &str,
        receipt_id: &str,
        requested_at: Timestamp,
        now: Timestamp,
    ) -> Result<ErasureReceipt> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_project(&tx, project).await?;
        let mut deleted = DeletedRows::new();
        let lessons_to_review = erase(&tx, project, user_id, now, &mut deleted).await?;
        let receipt = ErasureReceipt {
            id: receipt_id.to_owned(),
            user_id_sha256: user_id_digest(user_id),
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
        execute(
            &tx,
            "INSERT INTO erasure_receipts (project_id, id, requested_at, completed_at, doc)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &project.0,
                &receipt.id,
                &micros(requested_at),
                &micros(now),
                &doc,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(receipt)
    }

    async fn erasure_receipts(&self, project: ProjectId) -> Result<Vec<ErasureReceipt>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT id, requested_at, completed_at, doc FROM erasure_receipts
              WHERE project_id = $1 ORDER BY completed_at DESC, id DESC",
            &[&project.0],
        )
        .await?
        .into_iter()
        .map(|row| {
            let doc: ReceiptDoc = serde_json::from_str(row.try_get(3)?)?;
            Ok(ErasureReceipt {
                id: row.try_get(0)?,
                user_id_sha256: doc.user_id_sha256,
                requested_at: timestamp(row.try_get(1)?)?,
                completed_at: timestamp(row.try_get(2)?)?,
                deleted: doc.deleted,
                lessons_to_review: doc.lessons_to_review,
            })
        })
        .collect()
    }

    async fn delete_expired(
        &self,
        project: ProjectId,
        cutoffs: RetentionCutoffs,
        limit: u32,
        now: Timestamp,
    ) -> Result<RetentionBatch> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_project(&tx, project).await?;
        let batch = delete_expired_batch(&tx, project, cutoffs, limit, now).await?;
        tx.commit().await?;
        Ok(batch)
    }

    async fn vector_removals_since(&self, after: i64, limit: u32) -> Result<Vec<VectorRemoval>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT seq, project_id, trace_seq FROM vector_removals WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &i64::from(limit)],
        )
        .await?
        .into_iter()
        .map(|row| {
            Ok(VectorRemoval {
                seq: row.try_get(0)?,
                project: ProjectId(row.try_get(1)?),
                trace_seq: row.try_get(2)?,
            })
        })
        .collect()
    }
}
