//! The change log and job runs on SQLite (see [`crate::coordination`]).

use async_trait::async_trait;
use feedloop_core::{ProjectId, Timestamp};
use rusqlite::params;

use super::{SqliteStore, micros, timestamp};
use crate::coordination::{Change, ChangeTopic, Coordination, JobRun};
use crate::{Result, StoreError};

#[async_trait]
impl Coordination for SqliteStore {
    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>> {
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT seq, project_id, topic, at FROM change_log WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                    )?
                    .query_map(params![after, limit], |row| {
                        Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?, row.get::<_, i64>(3)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(seq, project, topic, at)| {
                        Ok(Change {
                            seq,
                            project: ProjectId(project),
                            topic: ChangeTopic::parse(&topic)
                                .ok_or_else(|| StoreError::Internal(format!("change topic {topic:?}")))?,
                            at: timestamp(at)?,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn latest_change(&self) -> Result<i64> {
        self.readers
            .run(|conn| {
                Ok(
                    conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM change_log", [], |row| {
                        row.get(0)
                    })?,
                )
            })
            .await
    }

    async fn claim_job_run(
        &self,
        job: &str,
        period: i64,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool> {
        let (job, holder) = (job.to_owned(), holder.to_owned());
        self.writer
            .run(1, move |tx| {
                let claimed = tx.execute(
                    "INSERT INTO job_runs (job, period, holder, claimed_at, lease_until) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (job, period) DO UPDATE
                     SET holder = excluded.holder, claimed_at = excluded.claimed_at, lease_until = excluded.lease_until
                     WHERE job_runs.finished_at IS NULL AND job_runs.lease_until < excluded.claimed_at",
                    params![job, period, holder, micros(now), micros(lease_until)],
                )?;
                Ok(claimed > 0)
            })
            .await
    }

    async fn finish_job_run(
        &self,
        job: &str,
        period: i64,
        holder: &str,
        outcome: &str,
        now: Timestamp,
    ) -> Result<()> {
        let (job, holder, outcome) = (job.to_owned(), holder.to_owned(), outcome.to_owned());
        self.writer
            .run(1, move |tx| {
                tx.execute(
                    "UPDATE job_runs SET finished_at = ?4, outcome = ?5 WHERE job = ?1 AND period = ?2 AND holder = ?3",
                    params![job, period, holder, micros(now), outcome],
                )?;
                Ok(())
            })
            .await
    }

    async fn job_runs(&self, job: &str, limit: u32) -> Result<Vec<JobRun>> {
        let job = job.to_owned();
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT job, period, holder, claimed_at, lease_until, finished_at, outcome FROM job_runs
                         WHERE job = ?1 ORDER BY period DESC LIMIT ?2",
                    )?
                    .query_map(params![job, limit], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, i64>(3)?,
                            row.get::<_, i64>(4)?,
                            row.get::<_, Option<i64>>(5)?,
                            row.get::<_, Option<String>>(6)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(job, period, holder, claimed_at, lease_until, finished_at, outcome)| {
                        Ok(JobRun {
                            job,
                            period,
                            holder,
                            claimed_at: timestamp(claimed_at)?,
                            lease_until: timestamp(lease_until)?,
                            finished_at: finished_at.map(timestamp).transpose()?,
                            outcome,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn prune_changes(&self, before: Timestamp) -> Result<u64> {
        self.writer
            .run(1, move |tx| {
                let deleted =
                    tx.execute("DELETE FROM change_log WHERE at < ?1", [micros(before)])?;
                Ok(deleted as u64)
            })
            .await
    }
}
