//! The change log and job runs on PostgreSQL (see [`crate::coordination`]). Changes are
//! appended by the admin writes (`admin.rs`, which also explains why appends are serialised).

use async_trait::async_trait;
use feedloop_core::{ProjectId, Timestamp};

use super::{PostgresStore, execute, micros, query, query_one, timestamp};
use crate::coordination::{Change, ChangeTopic, Coordination, JobRun};
use crate::{Result, StoreError};

#[async_trait]
impl Coordination for PostgresStore {
    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT seq, project_id, topic, at FROM change_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            &[&after, &i64::from(limit)],
        )
        .await?
        .iter()
        .map(|row| {
            let topic: &str = row.try_get(2)?;
            Ok(Change {
                seq: row.try_get(0)?,
                project: ProjectId(row.try_get(1)?),
                topic: ChangeTopic::parse(topic)
                    .ok_or_else(|| StoreError::Internal(format!("change topic {topic:?}")))?,
                at: timestamp(row.try_get(3)?)?,
            })
        })
        .collect()
    }

    async fn latest_change(&self) -> Result<i64> {
        let client = self.client().await?;
        let row = query_one(&client, "SELECT COALESCE(MAX(seq), 0) FROM change_log", &[]).await?;
        Ok(row.try_get(0)?)
    }

    async fn claim_job_run(
        &self,
        job: &str,
        period: i64,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool> {
        let client = self.client().await?;
        // One statement: the insert, or the take-over of an expired lease, happens under the
        // row's lock, so two replicas claiming at once cannot both win.
        let claimed = execute(
            &client,
            "INSERT INTO job_runs (job, period, holder, claimed_at, lease_until) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (job, period) DO UPDATE
             SET holder = excluded.holder, claimed_at = excluded.claimed_at, lease_until = excluded.lease_until
             WHERE job_runs.finished_at IS NULL AND job_runs.lease_until < excluded.claimed_at",
            &[&job, &period, &holder, &micros(now), &micros(lease_until)],
        )
        .await?;
        Ok(claimed > 0)
    }

    async fn finish_job_run(
        &self,
        job: &str,
        period: i64,
        holder: &str,
        outcome: &str,
        now: Timestamp,
    ) -> Result<()> {
        let client = self.client().await?;
        execute(
            &client,
            "UPDATE job_runs SET finished_at = $4, outcome = $5 WHERE job = $1 AND period = $2 AND holder = $3",
            &[&job, &period, &holder, &micros(now), &outcome],
        )
        .await?;
        Ok(())
    }

    async fn job_runs(&self, job: &str, limit: u32) -> Result<Vec<JobRun>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT job, period, holder, claimed_at, lease_until, finished_at, outcome FROM job_runs
             WHERE job = $1 ORDER BY period DESC LIMIT $2",
            &[&job, &i64::from(limit)],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(JobRun {
                job: row.try_get(0)?,
                period: row.try_get(1)?,
                holder: row.try_get(2)?,
                claimed_at: timestamp(row.try_get(3)?)?,
                lease_until: timestamp(row.try_get(4)?)?,
                finished_at: row
                    .try_get::<_, Option<i64>>(5)?
                    .map(timestamp)
                    .transpose()?,
                outcome: row.try_get(6)?,
            })
        })
        .collect()
    }

    async fn prune_changes(&self, before: Timestamp) -> Result<u64> {
        let client = self.client().await?;
        Ok(execute(
            &client,
            "DELETE FROM change_log WHERE at < $1",
            &[&micros(before)],
        )
        .await?)
    }
}
