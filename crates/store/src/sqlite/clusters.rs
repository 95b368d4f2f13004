//! Problem clusters on SQLite (see [`crate::clusters`]).

use async_trait::async_trait;
use feedloop_core::stats::Bucket;
use feedloop_core::{ProjectId, Timestamp, TraceId};
use rusqlite::params;

use super::{SqliteStore, micros, timestamp};
use crate::clusters::{ClusterCandidate, ClusterMember, ClusterUpdate, Clusters, ProblemCluster};
use crate::embeddings::{vector_from_bytes, vector_to_bytes};
use crate::records::trace_id;
use crate::{Result, StoreError};

#[async_trait]
impl Clusters for SqliteStore {
    async fn cluster_candidates(
        &self,
        project: ProjectId,
        model: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClusterCandidate>> {
        let model = model.to_owned();
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT t.seq, t.id, t.doc ->> '$.input', e.vector
                         FROM traces t
                         JOIN embeddings e ON e.model = ?2 AND e.trace_seq = t.seq
                         WHERE t.project_id = ?1
                           AND t.seq IN (
                               SELECT n.seq FROM feedback f
                               JOIN traces n ON n.project_id = f.project_id AND n.id = f.trace_id
                               WHERE f.project_id = ?1 AND f.negative = 1
                                 AND f.superseded_by IS NULL AND f.created_at >= ?3)
                           AND t.doc ->> '$.input' IS NOT NULL
                           AND NOT EXISTS (
                               SELECT 1 FROM cluster_members m
                               JOIN problem_clusters c ON c.id = m.cluster_id
                               WHERE m.project_id = ?1 AND m.trace_seq = t.seq AND c.model = ?2)
                         ORDER BY t.seq
                         LIMIT ?4",
                    )?
                    .query_map(params![project.0, model, micros(since), limit], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, Vec<u8>>(3)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(trace_seq, id, query, vector)| {
                        Ok(ClusterCandidate {
                            trace_seq,
                            trace_id: trace_id(id)?,
                            query,
                            vector: vector_from_bytes(&vector)?,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn problem_clusters(
        &self,
        project: ProjectId,
        model: &str,
    ) -> Result<Vec<ProblemCluster>> {
        let model = model.to_owned();
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT id, size, centroid_sum, terms, created_at, updated_at
                         FROM problem_clusters WHERE project_id = ?1 AND model = ?2 ORDER BY id",
                    )?
                    .query_map(params![project.0, model], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, Vec<u8>>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, i64>(5)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(id, size, sum, terms, created, updated)| {
                        Ok(ProblemCluster {
                            id,
                            model: model.clone(),
                            size: size as u64,
                            centroid_sum: vector_from_bytes(&sum)?,
                            terms: serde_json::from_str(&terms)?,
                            created_at: timestamp(created)?,
                            updated_at: timestamp(updated)?,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn save_clusters(
        &self,
        project: ProjectId,
        model: &str,
        updates: &[ClusterUpdate],
        now: Timestamp,
    ) -> Result<Vec<i64>> {
        let model = model.to_owned();
        let updates = updates.to_vec();
        let weight = updates.iter().map(|u| u.new_members.len() + 1).sum();
        self.writer
            .run(weight, move |tx| {
                let mut ids = Vec::with_capacity(updates.len());
                for update in &updates {
                    let sum = vector_to_bytes(&update.centroid_sum);
                    let terms = serde_json::to_string(&update.terms)?;
                    let id = match update.id {
                        Some(id) => {
                            let changed = tx
                                .prepare_cached(
                                    "UPDATE problem_clusters
                                     SET size = ?3, centroid_sum = ?4, terms = ?5, updated_at = ?6
                                     WHERE project_id = ?1 AND id = ?2",
                                )?
                                .execute(params![
                                    project.0,
                                    id,
                                    update.size as i64,
                                    sum,
                                    terms,
                                    micros(now)
                                ])?;
                            if changed == 0 {
                                return Err(StoreError::NotFound {
                                    what: "cluster",
                                    id: id.to_string(),
                                });
                            }
                            id
                        }
                        None => {
                            tx.prepare_cached(
                                "INSERT INTO problem_clusters
                                     (project_id, model, size, centroid_sum, terms, created_at, updated_at)
                                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                            )?
                            .execute(params![
                                project.0,
                                model,
                                update.size as i64,
                                sum,
                                terms,
                                micros(now)
                            ])?;
                            tx.last_insert_rowid()
                        }
                    };
                    let mut insert = tx.prepare_cached(
                        "INSERT OR IGNORE INTO cluster_members
                             (cluster_id, project_id, trace_seq, similarity, joined_at)
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                    )?;
                    for &(trace_seq, similarity) in &update.new_members {
                        insert.execute(params![
                            id,
                            project.0,
                            trace_seq,
                            f64::from(similarity),
                            micros(now)
                        ])?;
                    }
                    ids.push(id);
                }
                Ok(ids)
            })
            .await
    }

    async fn cluster_members(
        &self,
        project: ProjectId,
        cluster: i64,
        limit: u32,
    ) -> Result<Vec<ClusterMember>> {
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT t.id, t.doc ->> '$.input', m.similarity, t.started_at
                         FROM cluster_members m
                         JOIN traces t ON t.seq = m.trace_seq
                         WHERE m.project_id = ?1 AND m.cluster_id = ?2
                         ORDER BY m.similarity DESC, m.trace_seq
                         LIMIT ?3",
                    )?
                    .query_map(params![project.0, cluster, limit], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, Option<String>>(1)?,
                            row.get::<_, f64>(2)?,
                            row.get::<_, i64>(3)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(id, query, similarity, started)| {
                        Ok(ClusterMember {
                            trace_id: trace_id(id)?,
                            query: query.unwrap_or_default(),
                            similarity: similarity as f32,
                            started_at: timestamp(started)?,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn cluster_categories(
        &self,
        project: ProjectId,
        cluster: i64,
    ) -> Result<Vec<(String, u64)>> {
        self.readers
            .run(move |conn| {
                Ok(conn
                    .prepare_cached(
                        "SELECT c.value, COUNT(DISTINCT m.trace_seq) AS n
                         FROM cluster_members m
                         JOIN traces t ON t.seq = m.trace_seq
                         JOIN feedback f ON f.project_id = t.project_id AND f.trace_id = t.id
                         JOIN json_each(f.categories) c
                         WHERE m.project_id = ?1 AND m.cluster_id = ?2
                           AND f.superseded_by IS NULL AND f.categories IS NOT NULL
                         GROUP BY c.value
                         ORDER BY n DESC, c.value",
                    )?
                    .query_map(params![project.0, cluster], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?)
            })
            .await
    }

    async fn cluster_sizes_of(
        &self,
        project: ProjectId,
        model: &str,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, u64)>> {
        let model = model.to_owned();
        let ids =
            serde_json::to_string(&trace_ids.iter().map(TraceId::as_str).collect::<Vec<_>>())?;
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT t.id, c.size
                         FROM traces t
                         JOIN cluster_members m ON m.project_id = t.project_id AND m.trace_seq = t.seq
                         JOIN problem_clusters c ON c.id = m.cluster_id AND c.model = ?2
                         WHERE t.project_id = ?1 AND t.id IN (SELECT value FROM json_each(?3))",
                    )?
                    .query_map(params![project.0, model, ids], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(id, size)| Ok((trace_id(id)?, size as u64)))
                    .collect()
            })
            .await
    }

    async fn cluster_trend(
        &self,
        project: ProjectId,
        cluster: i64,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, u64)>> {
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT (t.started_at / ?4) * ?4 AS day, COUNT(*)
                         FROM cluster_members m
                         JOIN traces t ON t.seq = m.trace_seq
                         WHERE m.project_id = ?1 AND m.cluster_id = ?2 AND t.started_at >= ?3
                         GROUP BY day ORDER BY day",
                    )?
                    .query_map(
                        params![
                            project.0,
                            cluster,
                            micros(since),
                            Bucket::Day.width_micros()
                        ],
                        |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)),
                    )?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(day, n)| Ok((timestamp(day)?, n as u64)))
                    .collect()
            })
            .await
    }
}
