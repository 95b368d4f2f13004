//! Aggregations, negative rates, version traffic and alerts on PostgreSQL (see
//! [`crate::analytics`]); the statements come from [`crate::sql_analytics`], sent unprepared
//! like filter SQL (their text varies with the query).

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use feedloop_core::filter::Filter;
use feedloop_core::{ProjectId, Timestamp};

use super::webhooks::queue_event;
use super::{PostgresStore, micros, query, query_opt, timestamp};
use crate::Result;
use crate::analytics::{
    Alert, Analytics, CountsBuilder, FeedbackCounts, FeedbackQuery, MAIN_VALUES, NegativeCounts,
    NewAlert, VersionKind, VersionTraffic,
};
use crate::sql_analytics::{self, Statement};
use crate::sql_filter::Dialect;
use crate::webhooks::NewEvent;

async fn rows(
    client: &impl GenericClient,
    statement: &Statement,
) -> Result<Vec<tokio_postgres::Row>> {
    Ok(client
        .query(statement.sql.as_str(), &statement.postgres_params())
        .await?)
}

fn alert_from_row(row: &tokio_postgres::Row) -> Result<Alert> {
    Ok(Alert {
        id: row.try_get(0)?,
        kind: row.try_get(1)?,
        dedupe_key: row.try_get(2)?,
        message: row.try_get(3)?,
        evidence: serde_json::from_str(row.try_get(4)?)?,
        created_at: timestamp(row.try_get(5)?)?,
    })
}

#[async_trait]
impl Analytics for PostgresStore {
    async fn aggregate_feedback(
        &self,
        project: ProjectId,
        query: &FeedbackQuery,
    ) -> Result<Vec<FeedbackCounts>> {
        let statements = sql_analytics::feedback_statements(Dialect::Postgres, project.0, query);
        let client = self.client().await?;
        let mut counts = CountsBuilder::default();
        for row in rows(&client, &statements.main).await? {
            let mut values = [0i64; MAIN_VALUES];
            for (i, value) in values.iter_mut().enumerate() {
                *value = row.try_get::<_, Option<i64>>(2 + i)?.unwrap_or(0);
            }
            counts.main(row.try_get(0)?, row.try_get(1)?, values);
        }
        for row in rows(&client, &statements.categories).await? {
            if let Some(label) = row.try_get::<_, Option<String>>(2)? {
                counts.category(row.try_get(0)?, row.try_get(1)?, label, row.try_get(3)?);
            }
        }
        for row in rows(&client, &statements.signals).await? {
            if let Some(label) = row.try_get::<_, Option<String>>(2)? {
                counts.signal(row.try_get(0)?, row.try_get(1)?, label, row.try_get(3)?);
            }
        }
        for row in rows(&client, &statements.satisfaction).await? {
            counts.satisfaction(
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            );
        }
        Ok(counts.finish())
    }

    async fn negative_counts(&self, project: ProjectId, filter: &Filter) -> Result<NegativeCounts> {
        let statement = sql_analytics::negative_counts(Dialect::Postgres, project.0, filter);
        let client = self.client().await?;
        let row = client
            .query_one(statement.sql.as_str(), &statement.postgres_params())
            .await?;
        Ok(NegativeCounts {
            num_traces: row.try_get::<_, i64>(0)?.max(0) as u64,
            num_negative: row.try_get::<_, i64>(1)?.max(0) as u64,
        })
    }

    async fn version_traffic(
        &self,
        project: ProjectId,
        kind: VersionKind,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<VersionTraffic>> {
        let statement = sql_analytics::version_traffic(
            Dialect::Postgres,
            project.0,
            kind,
            micros(from),
            micros(to),
        );
        let client = self.client().await?;
        rows(&client, &statement)
            .await?
            .iter()
            .map(|row| {
                Ok(VersionTraffic {
                    name: row.try_get(0)?,
                    version: row.try_get(1)?,
                    first_seen: timestamp(row.try_get(2)?)?,
                    last_seen: timestamp(row.try_get(3)?)?,
                    num_traces: row.try_get::<_, i64>(4)?.max(0) as u64,
                })
            })
            .collect()
    }

    async fn raise_alert(
        &self,
        project: ProjectId,
        alert: &NewAlert,
        event: &NewEvent,
        now: Timestamp,
    ) -> Result<Option<Alert>> {
        let evidence = serde_json::to_string(&alert.evidence)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let row = query_opt(
            &tx,
            "INSERT INTO alerts (project_id, kind, dedupe_key, message, evidence, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (project_id, dedupe_key) DO NOTHING RETURNING id",
            &[
                &project.0,
                &alert.kind,
                &alert.dedupe_key,
                &alert.message,
                &evidence,
                &micros(now),
            ],
        )
        .await?;
        let Some(row) = row else { return Ok(None) };
        queue_event(&tx, project, event, now).await?;
        tx.commit().await?;
        Ok(Some(Alert {
            id: row.try_get(0)?,
            kind: alert.kind.clone(),
            dedupe_key: alert.dedupe_key.clone(),
            message: alert.message.clone(),
            evidence: alert.evidence.clone(),
            created_at: now,
        }))
    }

    async fn list_alerts(&self, project: ProjectId, limit: u32) -> Result<Vec<Alert>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT id, kind, dedupe_key, message, evidence, created_at FROM alerts
             WHERE project_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
            &[&project.0, &i64::from(limit)],
        )
        .await?
        .iter()
        .map(alert_from_row)
        .collect()
    }

    async fn job_last_finished(&self, jobs: &[&str]) -> Result<Vec<(String, Timestamp)>> {
        let client = self.client().await?;
        let mut out = Vec::new();
        for job in jobs {
            // The latest finished period of the job, read backwards on the primary key.
            let row = query_opt(
                &client,
                "SELECT finished_at FROM job_runs WHERE job = $1 AND finished_at IS NOT NULL
                 ORDER BY period DESC LIMIT 1",
                &[job],
            )
            .await?;
            if let Some(row) = row {
                out.push(((*job).to_owned(), timestamp(row.try_get(0)?)?));
            }
        }
        Ok(out)
    }
}
