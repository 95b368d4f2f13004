//! Signal settings, the derived-signal job's look-ups and satisfaction on PostgreSQL (see
//! [`crate::signals`]). Look-ups of many traces are one statement with an array parameter.

use async_trait::async_trait;
use feedloop_core::signals::{Satisfaction, SignalSettings};
use feedloop_core::{ProjectId, Timestamp, TraceId};

use deadpool_postgres::GenericClient;

use super::{PostgresStore, execute, locks, micros, query, query_opt, timestamp};
use crate::embeddings::vector_from_bytes;
use crate::records::trace_id;
use crate::signals::{
    AbandonCandidate, FeedbackChange, SessionNeighbours, Signals, negativity_changes, prefix_end,
    remarked, settings_from_doc,
};
use crate::{Result, StoreError, StoredTrace};

/// The project's settings as `client` (or a transaction) sees them.
pub(super) async fn settings_in(
    client: &impl GenericClient,
    project: ProjectId,
) -> Result<SignalSettings> {
    let row = query_opt(
        client,
        "SELECT doc FROM signal_settings WHERE project_id = $1",
        &[&project.0],
    )
    .await?;
    let doc: Option<&str> = row.as_ref().map(|row| row.try_get(0)).transpose()?;
    settings_from_doc(doc)
}

#[async_trait]
impl Signals for PostgresStore {
    async fn signal_settings(&self, project: ProjectId) -> Result<SignalSettings> {
        settings_in(&self.client().await?, project).await
    }

    async fn set_signal_settings(
        &self,
        project: ProjectId,
        settings: &SignalSettings,
        now: Timestamp,
    ) -> Result<()> {
        let doc = serde_json::to_string(settings)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // Exclusive: ingests in flight finish first (they marked their signals by the old
        // settings, which the re-marking below sees), and later ones read the new settings.
        if !locks::lock_project(&tx, project, true).await? {
            return Err(StoreError::NotFound {
                what: "project",
                id: project.to_string(),
            });
        }
        let changed = negativity_changes(&settings_in(&tx, project).await?, settings);
        execute(
            &tx,
            "INSERT INTO signal_settings (project_id, updated_at, doc) VALUES ($1, $2, $3)
             ON CONFLICT (project_id) DO UPDATE SET updated_at = excluded.updated_at, doc = excluded.doc",
            &[&project.0, &micros(now), &doc],
        )
        .await?;
        if !changed.is_empty() {
            let rows = query(
                &tx,
                "SELECT seq, doc FROM feedback WHERE project_id = $1 AND kind = 'signal'",
                &[&project.0],
            )
            .await?
            .into_iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect::<Result<Vec<(i64, String)>>>()?;
            for (seq, negative) in remarked(rows, &changed, settings)? {
                execute(
                    &tx,
                    "UPDATE feedback SET negative = $2 WHERE seq = $1",
                    &[&seq, &i16::from(negative)],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn signal_progress(&self, name: &str) -> Result<i64> {
        let client = self.client().await?;
        let row = query_opt(
            &client,
            "SELECT position FROM signal_progress WHERE name = $1",
            &[&name],
        )
        .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?.unwrap_or(0))
    }

    async fn advance_signal_progress(&self, name: &str, position: i64) -> Result<()> {
        let client = self.client().await?;
        execute(
            &client,
            "INSERT INTO signal_progress (name, position) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET position = GREATEST(signal_progress.position, excluded.position)",
            &[&name, &position],
        )
        .await?;
        Ok(())
    }

    async fn reset_signal_progress(&self, name: &str, position: i64) -> Result<()> {
        let client = self.client().await?;
        execute(
            &client,
            "INSERT INTO signal_progress (name, position) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            &[&name, &position],
        )
        .await?;
        Ok(())
    }

    async fn session_neighbours(
        &self,
        project: ProjectId,
        seqs: &[i64],
    ) -> Result<Vec<SessionNeighbours>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT t.seq,
                (SELECT p.seq FROM traces p
                 WHERE p.project_id = t.project_id AND p.session_id = t.session_id
                   AND (p.started_at, p.seq) < (t.started_at, t.seq)
                 ORDER BY p.started_at DESC, p.seq DESC LIMIT 1),
                (SELECT n.seq FROM traces n
                 WHERE n.project_id = t.project_id AND n.session_id = t.session_id
                   AND (n.started_at, n.seq) > (t.started_at, t.seq)
                 ORDER BY n.started_at, n.seq LIMIT 1)
             FROM traces t
             WHERE t.project_id = $1 AND t.seq = ANY ($2) AND t.session_id IS NOT NULL",
            &[&project.0, &seqs],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(SessionNeighbours {
                seq: row.try_get(0)?,
                previous: row.try_get(1)?,
                next: row.try_get(2)?,
            })
        })
        .collect()
    }

    async fn trace_vectors(
        &self,
        model: &str,
        project: ProjectId,
        seqs: &[i64],
    ) -> Result<Vec<(i64, Vec<f32>)>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT trace_seq, vector FROM embeddings
             WHERE model = $1 AND trace_seq = ANY ($2) AND project_id = $3",
            &[&model, &seqs, &project.0],
        )
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, vector_from_bytes(row.try_get(1)?)?)))
        .collect()
    }

    async fn abandonment_candidates(
        &self,
        project: ProjectId,
        from: Timestamp,
        to: Timestamp,
        limit: u32,
    ) -> Result<Vec<AbandonCandidate>> {
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT t.seq, t.doc,
                (SELECT n.started_at FROM traces n
                 WHERE n.project_id = t.project_id AND n.session_id = t.session_id
                   AND (n.started_at, n.seq) > (t.started_at, t.seq)
                 ORDER BY n.started_at, n.seq LIMIT 1),
                EXISTS (SELECT 1 FROM feedback f
                        WHERE f.project_id = t.project_id AND f.trace_id = t.id AND f.source <> 'automatic')
             FROM traces t
             WHERE t.project_id = $1 AND t.started_at >= $2 AND t.started_at < $3
               AND t.session_id IS NOT NULL
             ORDER BY t.started_at, t.seq LIMIT $4",
            &[&project.0, &micros(from), &micros(to), &i64::from(limit)],
        )
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let trace: feedloop_core::trace::Trace = serde_json::from_str(row.try_get(1)?)?;
            out.push(AbandonCandidate {
                trace: StoredTrace {
                    seq: row.try_get(0)?,
                    trace,
                    spans: Vec::new(),
                },
                next_started_at: row
                    .try_get::<_, Option<i64>>(2)?
                    .map(timestamp)
                    .transpose()?,
                engaged: row.try_get(3)?,
            });
        }
        Ok(out)
    }

    async fn delete_derived_signals(
        &self,
        project: ProjectId,
        id_prefix: &str,
    ) -> Result<Vec<TraceId>> {
        let client = self.client().await?;
        let end = prefix_end(id_prefix);
        let rows = query(
            &client,
            "DELETE FROM feedback
             WHERE project_id = $1 AND id >= $2 AND id < $3 AND source = 'automatic'
             RETURNING trace_id",
            &[&project.0, &id_prefix, &end],
        )
        .await?;
        let mut ids = rows
            .iter()
            .map(|row| trace_id(row.try_get(0)?))
            .collect::<Result<Vec<_>>>()?;
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn feedback_changes_since(&self, after: i64, limit: u32) -> Result<Vec<FeedbackChange>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT seq, project_id, trace_id FROM feedback WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &i64::from(limit)],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(FeedbackChange {
                seq: row.try_get(0)?,
                project: ProjectId(row.try_get(1)?),
                trace_id: trace_id(row.try_get(2)?)?,
            })
        })
        .collect()
    }

    async fn put_satisfaction(
        &self,
        project: ProjectId,
        estimates: &[(TraceId, Option<Satisfaction>)],
        now: Timestamp,
    ) -> Result<()> {
        let (mut ids, mut scores, mut weights, mut votes, mut removed) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (id, estimate) in estimates {
            match estimate {
                Some(s) => {
                    ids.push(id.as_str());
                    scores.push(s.score);
                    weights.push(s.evidence_weight);
                    votes.push(i64::from(s.num_votes));
                }
                None => removed.push(id.as_str()),
            }
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(
            &tx,
            "INSERT INTO trace_satisfaction (project_id, trace_id, score, evidence_weight, num_votes, updated_at)
             SELECT $1, id, score, weight, votes, $6
             FROM unnest($2::text[], $3::float8[], $4::float8[], $5::int8[]) AS e (id, score, weight, votes)
             ON CONFLICT (project_id, trace_id) DO UPDATE SET score = excluded.score,
               evidence_weight = excluded.evidence_weight, num_votes = excluded.num_votes,
               updated_at = excluded.updated_at",
            &[&project.0, &ids, &scores, &weights, &votes, &micros(now)],
        )
        .await?;
        execute(
            &tx,
            "DELETE FROM trace_satisfaction WHERE project_id = $1 AND trace_id = ANY ($2)",
            &[&project.0, &removed],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn satisfaction_of(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, Satisfaction)>> {
        let ids: Vec<&str> = trace_ids.iter().map(TraceId::as_str).collect();
        let client = self.client().await?;
        query(
            &client,
            "SELECT trace_id, score, evidence_weight, num_votes FROM trace_satisfaction
             WHERE project_id = $1 AND trace_id = ANY ($2)",
            &[&project.0, &ids],
        )
        .await?
        .iter()
        .map(|row| {
            Ok((
                trace_id(row.try_get(0)?)?,
                Satisfaction {
                    score: row.try_get(1)?,
                    evidence_weight: row.try_get(2)?,
                    num_votes: u32::try_from(row.try_get::<_, i64>(3)?)
                        .map_err(|e| StoreError::Internal(e.to_string()))?,
                },
            ))
        })
        .collect()
    }
}
