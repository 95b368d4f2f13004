//! Aggregations, negative rates, version traffic and alerts on PostgreSQL (see
//! [`crate::analytics`]); the statements come from [`crate::sql_analytics`], sent unprepared
//! like filter SQL (their text varies with the query).

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use feedloop_core::filter::Filter;
use feedloop_core::{ProjectId, Timestamp};
use std::collections::BTreeMap;

use super::webhooks::queue_event;
use super::{PostgresStore, execute, micros, query, query_opt, timestamp};
use crate::Result;
use crate::analytics::{
    Alert, Analytics, CountsBuilder, FeedbackCounts, FeedbackQuery, MAIN_VALUES, NegativeCounts,
    NewAlert, VersionKind, VersionTraffic,
};
use crate::analytics_cache::{self, CLOSED_AFTER_MICROS, NewBucket, Plan};
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

/// The feedback counts of `queries` (over disjoint ranges), computed from the records. The
/// four statements of a query read the same rows; each runs on a connection of its own, so
/// they run side by side.
async fn compute(
    store: &PostgresStore,
    project: ProjectId,
    queries: &[FeedbackQuery],
) -> Result<Vec<FeedbackCounts>> {
    let on_own_connection = |statement: &Statement| {
        let statement = statement.clone();
        async move { rows(&store.client().await?, &statement).await }
    };
    let mut counts = CountsBuilder::default();
    for query in queries {
        let statements = sql_analytics::feedback_statements(Dialect::Postgres, project.0, query);
        let (main, categories, signals, satisfaction) = tokio::try_join!(
            on_own_connection(&statements.main),
            on_own_connection(&statements.categories),
            on_own_connection(&statements.signals),
            on_own_connection(&statements.satisfaction),
        )?;
        for row in main {
            let mut values = [0i64; MAIN_VALUES];
            for (i, value) in values.iter_mut().enumerate() {
                *value = row.try_get::<_, Option<i64>>(2 + i)?.unwrap_or(0);
            }
            counts.main(row.try_get(0)?, row.try_get(1)?, values);
        }
        for row in categories {
            if let Some(label) = row.try_get::<_, Option<String>>(2)? {
                counts.category(row.try_get(0)?, row.try_get(1)?, label, row.try_get(3)?);
            }
        }
        for row in signals {
            if let Some(label) = row.try_get::<_, Option<String>>(2)? {
                counts.signal(row.try_get(0)?, row.try_get(1)?, label, row.try_get(3)?);
            }
        }
        for row in satisfaction {
            counts.satisfaction(
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            );
        }
    }
    Ok(counts.finish())
}

/// The stored whole buckets of `plan`, by start.
async fn cached_buckets(
    client: &impl GenericClient,
    project: ProjectId,
    plan: &Plan,
) -> Result<BTreeMap<i64, Vec<FeedbackCounts>>> {
    let rows = query(
        client,
        "SELECT bucket_start, counts FROM analytics_buckets
         WHERE project_id = $1 AND bucket_start >= $2 AND bucket_start < $3 AND query_key = $4",
        &[&project.0, &plan.whole.start, &plan.whole.end, &plan.key],
    )
    .await?;
    let mut cached = BTreeMap::new();
    for row in rows {
        cached.insert(
            row.try_get(0)?,
            analytics_cache::parse_counts(row.try_get(1)?)?,
        );
    }
    Ok(cached)
}

/// Stores computed buckets closed long enough by the database's clock (see
/// [`crate::analytics_cache`]); the caller holds the project's analytics lock.
async fn store_buckets(
    tx: &impl GenericClient,
    project: ProjectId,
    key: &str,
    fresh: &[NewBucket],
) -> Result<()> {
    let starts: Vec<i64> = fresh.iter().map(|bucket| bucket.start).collect();
    let ends: Vec<i64> = fresh.iter().map(|bucket| bucket.end).collect();
    let counts: Vec<&str> = fresh.iter().map(|bucket| bucket.counts.as_str()).collect();
    execute(
        tx,
        "INSERT INTO analytics_buckets (project_id, bucket_start, query_key, bucket_end, counts)
         SELECT $1, b.start, $2, b.finish, b.counts
           FROM UNNEST($3::BIGINT[], $4::BIGINT[], $5::TEXT[]) AS b(start, finish, counts)
          WHERE b.finish <= (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT - $6
         ON CONFLICT (project_id, bucket_start, query_key)
         DO UPDATE SET bucket_end = EXCLUDED.bucket_end, counts = EXCLUDED.counts",
        &[
            &project.0,
            &key,
            &starts,
            &ends,
            &counts,
            &CLOSED_AFTER_MICROS,
        ],
    )
    .await?;
    Ok(())
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
        let Some(plan) = Plan::new(query) else {
            return compute(self, project, std::slice::from_ref(query)).await;
        };
        let mut client = self.client().await?;
        let work = plan.work(
            cached_buckets(&client, project, &plan).await?,
            analytics_cache::closed_before(),
        );
        // Nothing to keep (all stored, or only open buckets to count): no lock, no transaction.
        if work.storable.is_empty() {
            let computed = compute(self, project, &work.raw).await?;
            return Ok(plan.assemble(work, computed)?.0);
        }
        // Buckets are stored under the project's analytics lock, taken before computing (on
        // other connections, which see every write committed before the lock); if writes of
        // old feedback hold it (shared) now, this answer is not kept.
        let tx = client.transaction().await?;
        let locked: bool = tx
            .query_one(
                "SELECT pg_try_advisory_xact_lock(feedloop_analytics_lock_key($1))",
                &[&project.0],
            )
            .await?
            .try_get(0)?;
        let computed = compute(self, project, &work.raw).await?;
        let (answer, fresh) = plan.assemble(work, computed)?;
        if locked {
            store_buckets(&tx, project, &plan.key, &fresh).await?;
        }
        tx.commit().await?;
        Ok(answer)
    }

    async fn stored_buckets(&self) -> Result<u64> {
        let client = self.client().await?;
        let count: i64 = client
            .query_one("SELECT COUNT(*) FROM analytics_buckets", &[])
            .await?
            .try_get(0)?;
        Ok(count as u64)
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
