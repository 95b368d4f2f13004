//! Aggregations, negative rates, version traffic and alerts on SQLite (see
//! [`crate::analytics`]); the statements come from [`crate::sql_analytics`].

use async_trait::async_trait;
use feedloop_core::filter::Filter;
use feedloop_core::{ProjectId, Timestamp};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use std::collections::BTreeMap;

use super::webhooks::queue_event;
use super::{SqliteStore, micros, timestamp};
use crate::Result;
use crate::analytics::{
    Alert, Analytics, CountsBuilder, FeedbackCounts, FeedbackQuery, MAIN_VALUES, NegativeCounts,
    NewAlert, VersionKind, VersionTraffic,
};
use crate::analytics_cache::{self, CLOSED_AFTER_MICROS, NewBucket, Plan};
use crate::sql_analytics;
use crate::sql_filter::Dialect;
use crate::webhooks::NewEvent;

/// The feedback counts of `queries` (over disjoint ranges), computed from the records.
fn compute(
    conn: &Connection,
    project: ProjectId,
    queries: &[FeedbackQuery],
) -> Result<Vec<FeedbackCounts>> {
    let mut counts = CountsBuilder::default();
    for query in queries {
        let statements = sql_analytics::feedback_statements(Dialect::Sqlite, project.0, query);
        let main = &statements.main;
        let mut statement = conn.prepare_cached(&main.sql)?;
        let mut rows = statement.query(params_from_iter(main.params.iter()))?;
        while let Some(row) = rows.next()? {
            let mut values = [0i64; MAIN_VALUES];
            for (i, value) in values.iter_mut().enumerate() {
                *value = row.get::<_, Option<i64>>(2 + i)?.unwrap_or(0);
            }
            counts.main(row.get(0)?, row.get(1)?, values);
        }
        for (labelled, is_category) in
            [(&statements.categories, true), (&statements.signals, false)]
        {
            let mut statement = conn.prepare_cached(&labelled.sql)?;
            let mut rows = statement.query(params_from_iter(labelled.params.iter()))?;
            while let Some(row) = rows.next()? {
                let label: Option<String> = row.get(2)?;
                let Some(label) = label else { continue };
                if is_category {
                    counts.category(row.get(0)?, row.get(1)?, label, row.get(3)?);
                } else {
                    counts.signal(row.get(0)?, row.get(1)?, label, row.get(3)?);
                }
            }
        }
        let satisfaction = &statements.satisfaction;
        let mut statement = conn.prepare_cached(&satisfaction.sql)?;
        let mut rows = statement.query(params_from_iter(satisfaction.params.iter()))?;
        while let Some(row) = rows.next()? {
            counts.satisfaction(row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        }
    }
    Ok(counts.finish())
}

/// The stored whole buckets of `plan`, by start.
fn cached_buckets(
    conn: &Connection,
    project: ProjectId,
    plan: &Plan,
) -> Result<BTreeMap<i64, Vec<FeedbackCounts>>> {
    let mut statement = conn.prepare_cached(
        "SELECT bucket_start, counts FROM analytics_buckets
         WHERE project_id = ?1 AND bucket_start >= ?2 AND bucket_start < ?3 AND query_key = ?4",
    )?;
    let mut rows = statement.query(params![
        project.0,
        plan.whole.start,
        plan.whole.end,
        plan.key
    ])?;
    let mut cached = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let counts: String = row.get(1)?;
        cached.insert(row.get(0)?, analytics_cache::parse_counts(&counts)?);
    }
    Ok(cached)
}

/// Stores computed buckets unless an invalidation moved the project's epoch since `epoch` was
/// read, and only buckets closed long enough by the database's clock (see
/// [`crate::analytics_cache`]).
fn store_buckets(
    tx: &Connection,
    project: ProjectId,
    key: &str,
    epoch: i64,
    fresh: &[NewBucket],
) -> Result<()> {
    let mut statement = tx.prepare_cached(
        "INSERT OR REPLACE INTO analytics_buckets (project_id, bucket_start, query_key, bucket_end, counts)
         SELECT ?1, ?2, ?3, ?4, ?5
          WHERE (SELECT COALESCE(MAX(epoch), 0) FROM analytics_epochs WHERE project_id = ?1) = ?6
            AND ?4 <= CAST(unixepoch('subsec') * 1000000 AS INTEGER) - ?7",
    )?;
    for bucket in fresh {
        statement.execute(params![
            project.0,
            bucket.start,
            key,
            bucket.end,
            bucket.counts,
            epoch,
            CLOSED_AFTER_MICROS
        ])?;
    }
    Ok(())
}

fn alert_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Alert, String, i64)> {
    Ok((
        Alert {
            id: row.get(0)?,
            kind: row.get(1)?,
            dedupe_key: row.get(2)?,
            message: row.get(3)?,
            evidence: serde_json::Value::Null,
            created_at: Timestamp::UNIX_EPOCH,
        },
        row.get(4)?,
        row.get(5)?,
    ))
}

fn finish_alert((mut alert, evidence, created_at): (Alert, String, i64)) -> Result<Alert> {
    alert.evidence = serde_json::from_str(&evidence)?;
    alert.created_at = timestamp(created_at)?;
    Ok(alert)
}

#[async_trait]
impl Analytics for SqliteStore {
    async fn aggregate_feedback(
        &self,
        project: ProjectId,
        query: &FeedbackQuery,
    ) -> Result<Vec<FeedbackCounts>> {
        let Some(plan) = Plan::new(query) else {
            let query = query.clone();
            return self
                .readers
                .run(move |conn| compute(conn, project, &[query]))
                .await;
        };
        let key = plan.key.clone();
        let (epoch, answer, fresh) = self
            .readers
            .run(move |conn| {
                // One read transaction: the epoch belongs to the snapshot the counts come from.
                let tx = conn.unchecked_transaction()?;
                let epoch: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(epoch), 0) FROM analytics_epochs WHERE project_id = ?1",
                    [project.0],
                    |row| row.get(0),
                )?;
                let work = plan.work(
                    cached_buckets(&tx, project, &plan)?,
                    analytics_cache::closed_before(),
                );
                let computed = compute(&tx, project, &work.raw)?;
                let (answer, fresh) = plan.assemble(work, computed)?;
                Ok((epoch, answer, fresh))
            })
            .await?;
        if !fresh.is_empty() {
            let stored = self
                .writer
                .run(fresh.len(), move |tx| {
                    store_buckets(tx, project, &key, epoch, &fresh)
                })
                .await;
            if let Err(error) = stored {
                tracing::warn!(%error, "could not keep the analytics buckets; they are computed again next time");
            }
        }
        Ok(answer)
    }

    async fn stored_buckets(&self) -> Result<u64> {
        self.readers
            .run(|conn| {
                let count: i64 =
                    conn.query_row("SELECT COUNT(*) FROM analytics_buckets", [], |row| {
                        row.get(0)
                    })?;
                Ok(count as u64)
            })
            .await
    }

    async fn negative_counts(&self, project: ProjectId, filter: &Filter) -> Result<NegativeCounts> {
        let statement = sql_analytics::negative_counts(Dialect::Sqlite, project.0, filter);
        self.readers
            .run(move |conn| {
                let (num_traces, num_negative): (i64, i64) =
                    conn.prepare_cached(&statement.sql)?
                        .query_row(params_from_iter(statement.params.iter()), |row| {
                            Ok((row.get(0)?, row.get(1)?))
                        })?;
                Ok(NegativeCounts {
                    num_traces: num_traces as u64,
                    num_negative: num_negative as u64,
                })
            })
            .await
    }

    async fn version_traffic(
        &self,
        project: ProjectId,
        kind: VersionKind,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<VersionTraffic>> {
        let statement = sql_analytics::version_traffic(
            Dialect::Sqlite,
            project.0,
            kind,
            micros(from),
            micros(to),
        );
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(&statement.sql)?
                    .query_map(params_from_iter(statement.params.iter()), |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, i64>(2)?,
                            row.get::<_, i64>(3)?,
                            row.get::<_, i64>(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .map(|(name, version, first, last, num)| {
                        Ok(VersionTraffic {
                            name,
                            version,
                            first_seen: timestamp(first)?,
                            last_seen: timestamp(last)?,
                            num_traces: num as u64,
                        })
                    })
                    .collect()
            })
            .await
    }

    async fn raise_alert(
        &self,
        project: ProjectId,
        alert: &NewAlert,
        event: &NewEvent,
        now: Timestamp,
    ) -> Result<Option<Alert>> {
        let alert = alert.clone();
        let event = event.clone();
        let evidence = serde_json::to_string(&alert.evidence)?;
        self.writer
            .run(1, move |tx| {
                let id: Option<i64> = tx
                    .prepare_cached(
                        "INSERT INTO alerts (project_id, kind, dedupe_key, message, evidence, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (project_id, dedupe_key) DO NOTHING RETURNING id",
                    )?
                    .query_row(
                        params![
                            project.0,
                            alert.kind,
                            alert.dedupe_key,
                            alert.message,
                            evidence,
                            micros(now)
                        ],
                        |row| row.get(0),
                    )
                    .optional()?;
                let Some(id) = id else { return Ok(None) };
                queue_event(tx, project, &event, now)?;
                Ok(Some(Alert {
                    id,
                    kind: alert.kind,
                    dedupe_key: alert.dedupe_key,
                    message: alert.message,
                    evidence: alert.evidence,
                    created_at: now,
                }))
            })
            .await
    }

    async fn list_alerts(&self, project: ProjectId, limit: u32) -> Result<Vec<Alert>> {
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT id, kind, dedupe_key, message, evidence, created_at FROM alerts
                         WHERE project_id = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2",
                    )?
                    .query_map(params![project.0, limit], alert_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter().map(finish_alert).collect()
            })
            .await
    }

    async fn job_last_finished(&self, jobs: &[&str]) -> Result<Vec<(String, Timestamp)>> {
        let jobs: Vec<String> = jobs.iter().map(|job| (*job).to_owned()).collect();
        self.readers
            .run(move |conn| {
                // The latest finished period of each job, read backwards on the primary key.
                let mut statement = conn.prepare_cached(
                    "SELECT finished_at FROM job_runs WHERE job = ?1 AND finished_at IS NOT NULL
                     ORDER BY period DESC LIMIT 1",
                )?;
                let mut out = Vec::new();
                for job in jobs {
                    let at: Option<i64> = statement
                        .query_row(params![job], |row| row.get(0))
                        .optional()?;
                    if let Some(at) = at {
                        out.push((job, timestamp(at)?));
                    }
                }
                Ok(out)
            })
            .await
    }
}
