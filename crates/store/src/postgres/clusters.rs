//! Problem clusters on PostgreSQL (see [`crate::clusters`]).

use async_trait::async_trait;
use feedloop_core::stats::Bucket;
use feedloop_core::{ProjectId, Timestamp, TraceId};

use super::{PostgresStore, execute, micros, query, query_opt, timestamp};
use crate::clusters::{ClusterCandidate, ClusterMember, ClusterUpdate, Clusters, ProblemCluster};
use crate::embeddings::{vector_from_bytes, vector_to_bytes};
use crate::records::trace_id;
use crate::{Result, StoreError};

#[async_trait]
impl Clusters for PostgresStore {
    async fn cluster_candidates(
        &self,
        project: ProjectId,
        model: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClusterCandidate>> {
        let rows = query(
            &self.client().await?,
            "SELECT t.seq, t.id, t.doc::json ->> 'input', e.vector
             FROM traces t
             JOIN embeddings e ON e.model = $2 AND e.trace_seq = t.seq
             WHERE t.project_id = $1
               AND t.seq IN (
                   SELECT n.seq FROM feedback f
                   JOIN traces n ON n.project_id = f.project_id AND n.id = f.trace_id
                   WHERE f.project_id = $1 AND f.negative = 1
                     AND f.superseded_by IS NULL AND f.created_at >= $3)
               AND t.doc::json ->> 'input' IS NOT NULL
               AND NOT EXISTS (
                   SELECT 1 FROM cluster_members m
                   JOIN problem_clusters c ON c.id = m.cluster_id
                   WHERE m.project_id = $1 AND m.trace_seq = t.seq AND c.model = $2)
             ORDER BY t.seq
             LIMIT $4",
            &[&project.0, &model, &micros(since), &i64::from(limit)],
        )
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(ClusterCandidate {
                    trace_seq: row.try_get(0)?,
                    trace_id: trace_id(row.try_get(1)?)?,
                    query: row.try_get(2)?,
                    vector: vector_from_bytes(row.try_get(3)?)?,
                })
            })
            .collect()
    }

    async fn problem_clusters(
        &self,
        project: ProjectId,
        model: &str,
    ) -> Result<Vec<ProblemCluster>> {
        let rows = query(
            &self.client().await?,
            "SELECT id, size, centroid_sum, terms, created_at, updated_at
             FROM problem_clusters WHERE project_id = $1 AND model = $2 ORDER BY id",
            &[&project.0, &model],
        )
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(ProblemCluster {
                    id: row.try_get(0)?,
                    model: model.to_owned(),
                    size: row.try_get::<_, i64>(1)? as u64,
                    centroid_sum: vector_from_bytes(row.try_get(2)?)?,
                    terms: serde_json::from_str(row.try_get(3)?)?,
                    created_at: timestamp(row.try_get(4)?)?,
                    updated_at: timestamp(row.try_get(5)?)?,
                })
            })
            .collect()
    }

    async fn save_clusters(
        &self,
        project: ProjectId,
        model: &str,
        updates: &[ClusterUpdate],
        now: Timestamp,
    ) -> Result<Vec<i64>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut ids = Vec::with_capacity(updates.len());
        for update in updates {
            let sum = vector_to_bytes(&update.centroid_sum);
            let terms = serde_json::to_string(&update.terms)?;
            let size = update.size as i64;
            let id = match update.id {
                Some(id) => {
                    let changed = execute(
                        &tx,
                        "UPDATE problem_clusters
                         SET size = $3, centroid_sum = $4, terms = $5, updated_at = $6
                         WHERE project_id = $1 AND id = $2",
                        &[&project.0, &id, &size, &sum, &terms, &micros(now)],
                    )
                    .await?;
                    if changed == 0 {
                        return Err(StoreError::NotFound {
                            what: "cluster",
                            id: id.to_string(),
                        });
                    }
                    id
                }
                None => query_opt(
                    &tx,
                    "INSERT INTO problem_clusters
                         (project_id, model, size, centroid_sum, terms, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id",
                    &[&project.0, &model, &size, &sum, &terms, &micros(now)],
                )
                .await?
                .ok_or_else(|| StoreError::Internal("insert returned no id".into()))?
                .try_get(0)?,
            };
            let (seqs, similarities): (Vec<i64>, Vec<f64>) = update
                .new_members
                .iter()
                .map(|&(seq, similarity)| (seq, f64::from(similarity)))
                .unzip();
            execute(
                &tx,
                "INSERT INTO cluster_members (cluster_id, project_id, trace_seq, similarity, joined_at)
                 SELECT $1, $2, s.seq, s.similarity, $5
                 FROM unnest($3::BIGINT[], $4::DOUBLE PRECISION[]) AS s(seq, similarity)
                 ON CONFLICT DO NOTHING",
                &[&id, &project.0, &seqs, &similarities, &micros(now)],
            )
            .await?;
            ids.push(id);
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn cluster_members(
        &self,
        project: ProjectId,
        cluster: i64,
        limit: u32,
    ) -> Result<Vec<ClusterMember>> {
        let rows = query(
            &self.client().await?,
            "SELECT t.id, t.doc::json ->> 'input', m.similarity, t.started_at
             FROM cluster_members m
             JOIN traces t ON t.seq = m.trace_seq
             WHERE m.project_id = $1 AND m.cluster_id = $2
             ORDER BY m.similarity DESC, m.trace_seq
             LIMIT $3",
            &[&project.0, &cluster, &i64::from(limit)],
        )
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(ClusterMember {
                    trace_id: trace_id(row.try_get(0)?)?,
                    query: row.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
                    similarity: row.try_get::<_, f64>(2)? as f32,
                    started_at: timestamp(row.try_get(3)?)?,
                })
            })
            .collect()
    }

    async fn cluster_categories(
        &self,
        project: ProjectId,
        cluster: i64,
    ) -> Result<Vec<(String, u64)>> {
        let rows = query(
            &self.client().await?,
            "SELECT c.name, COUNT(DISTINCT m.trace_seq) AS n
             FROM cluster_members m
             JOIN traces t ON t.seq = m.trace_seq
             JOIN feedback f ON f.project_id = t.project_id AND f.trace_id = t.id
             CROSS JOIN LATERAL unnest(f.categories) AS c(name)
             WHERE m.project_id = $1 AND m.cluster_id = $2 AND f.superseded_by IS NULL
             GROUP BY c.name
             ORDER BY n DESC, c.name",
            &[&project.0, &cluster],
        )
        .await?;
        rows.into_iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get::<_, i64>(1)? as u64)))
            .collect()
    }

    async fn cluster_sizes_of(
        &self,
        project: ProjectId,
        model: &str,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, u64)>> {
        let ids: Vec<&str> = trace_ids.iter().map(TraceId::as_str).collect();
        let rows = query(
            &self.client().await?,
            "SELECT t.id, c.size
             FROM traces t
             JOIN cluster_members m ON m.project_id = t.project_id AND m.trace_seq = t.seq
             JOIN problem_clusters c ON c.id = m.cluster_id AND c.model = $2
             WHERE t.project_id = $1 AND t.id = ANY($3::TEXT[])",
            &[&project.0, &model, &ids],
        )
        .await?;
        rows.into_iter()
            .map(|row| Ok((trace_id(row.try_get(0)?)?, row.try_get::<_, i64>(1)? as u64)))
            .collect()
    }

    async fn cluster_trend(
        &self,
        project: ProjectId,
        cluster: i64,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, u64)>> {
        let rows = query(
            &self.client().await?,
            "SELECT (t.started_at / $4) * $4 AS day, COUNT(*)
             FROM cluster_members m
             JOIN traces t ON t.seq = m.trace_seq
             WHERE m.project_id = $1 AND m.cluster_id = $2 AND t.started_at >= $3
             GROUP BY day ORDER BY day",
            &[
                &project.0,
                &cluster,
                &micros(since),
                &Bucket::Day.width_micros(),
            ],
        )
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok((
                    timestamp(row.try_get(0)?)?,
                    row.try_get::<_, i64>(1)? as u64,
                ))
            })
            .collect()
    }
}
