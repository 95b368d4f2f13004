//! Webhook endpoints, the event outbox, deliveries and their attempts on PostgreSQL (see
//! [`crate::webhooks`]).

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use feedloop_core::{ProjectId, Timestamp};
use std::collections::HashMap;

use super::{PostgresStore, execute, micros, query, query_one, timestamp};
use crate::webhooks::{
    Attempt, Delivery, DeliveryStatus, DeliveryTotals, DueDelivery, NewEvent, NewWebhook, Webhook,
    Webhooks,
};
use crate::{Result, StoreError};

/// Writes the event and one pending delivery, due now, per endpoint of the project that
/// subscribes to its type; in the caller's transaction. Returns the deliveries queued.
pub(super) async fn queue_event(
    tx: &impl GenericClient,
    project: ProjectId,
    event: &NewEvent,
    now: Timestamp,
) -> Result<u64> {
    let mut subscribed = Vec::new();
    for row in query(
        tx,
        "SELECT id, event_types FROM webhooks WHERE project_id = $1 AND deleted_at IS NULL",
        &[&project.0],
    )
    .await?
    {
        let types: Vec<String> = serde_json::from_str(row.try_get(1)?)?;
        if types.contains(&event.event_type) {
            subscribed.push(row.try_get::<_, i64>(0)?);
        }
    }
    let event_seq: i64 = query_one(
        tx,
        "INSERT INTO webhook_events (project_id, event_id, event_type, payload, created_at)
         VALUES ($1, $2, $3, $4, $5) RETURNING seq",
        &[
            &project.0,
            &event.event_id,
            &event.event_type,
            &event.payload,
            &micros(now),
        ],
    )
    .await?
    .try_get(0)?;
    for webhook in &subscribed {
        execute(
            tx,
            "INSERT INTO webhook_deliveries
                 (project_id, webhook_id, event_seq, status, num_attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, 'pending', 0, $4, $4)",
            &[&project.0, webhook, &event_seq, &micros(now)],
        )
        .await?;
    }
    Ok(subscribed.len() as u64)
}

fn webhook_from_row(row: &tokio_postgres::Row) -> Result<Webhook> {
    Ok(Webhook {
        id: row.try_get(0)?,
        url: row.try_get(1)?,
        secret: row.try_get(2)?,
        event_types: serde_json::from_str(row.try_get(3)?)?,
        description: row.try_get(4)?,
        created_at: timestamp(row.try_get(5)?)?,
    })
}

fn status(text: &str) -> Result<DeliveryStatus> {
    DeliveryStatus::parse(text)
        .ok_or_else(|| StoreError::Internal(format!("unknown delivery status {text:?}")))
}

fn count(row: &tokio_postgres::Row, index: usize) -> Result<u64> {
    Ok(row.try_get::<_, i64>(index)?.max(0) as u64)
}

#[async_trait]
impl Webhooks for PostgresStore {
    async fn create_webhook(
        &self,
        project: ProjectId,
        webhook: &NewWebhook,
        now: Timestamp,
    ) -> Result<Webhook> {
        let types = serde_json::to_string(&webhook.event_types)?;
        let client = self.client().await?;
        let row = query_one(
            &client,
            "INSERT INTO webhooks (project_id, url, secret, event_types, description, created_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &project.0,
                &webhook.url,
                &webhook.secret,
                &types,
                &webhook.description,
                &micros(now),
            ],
        )
        .await?;
        Ok(Webhook {
            id: row.try_get(0)?,
            url: webhook.url.clone(),
            secret: webhook.secret.clone(),
            event_types: webhook.event_types.clone(),
            description: webhook.description.clone(),
            created_at: now,
        })
    }

    async fn list_webhooks(&self, project: ProjectId) -> Result<Vec<Webhook>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT id, url, secret, event_types, description, created_at FROM webhooks
             WHERE project_id = $1 AND deleted_at IS NULL ORDER BY id",
            &[&project.0],
        )
        .await?
        .iter()
        .map(webhook_from_row)
        .collect()
    }

    async fn delete_webhook(&self, project: ProjectId, id: i64, now: Timestamp) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let changed = execute(
            &tx,
            "UPDATE webhooks SET deleted_at = $3
             WHERE project_id = $1 AND id = $2 AND deleted_at IS NULL",
            &[&project.0, &id, &micros(now)],
        )
        .await?;
        if changed == 0 {
            return Err(StoreError::NotFound {
                what: "webhook",
                id: id.to_string(),
            });
        }
        // Its pending deliveries are dropped from the queue; the log keeps them.
        execute(
            &tx,
            "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL
             WHERE project_id = $1 AND webhook_id = $2 AND status = 'pending'",
            &[&project.0, &id],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn emit_event(
        &self,
        project: ProjectId,
        event: &NewEvent,
        now: Timestamp,
    ) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let queued = queue_event(&tx, project, event, now).await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>> {
        let client = self.client().await?;
        // Rows another claim holds are skipped, never waited for.
        query(
            &client,
            "WITH claimed AS (
                 UPDATE webhook_deliveries SET next_attempt_at = $2
                 WHERE id IN (
                     SELECT id FROM webhook_deliveries
                     WHERE status = 'pending' AND next_attempt_at <= $1
                     ORDER BY next_attempt_at, id LIMIT $3
                     FOR UPDATE SKIP LOCKED)
                 RETURNING id, project_id, webhook_id, event_seq, num_attempts)
             SELECT d.id, d.project_id, d.webhook_id, w.url, w.secret, e.event_id,
                    e.event_type, e.payload, d.num_attempts
             FROM claimed d
             JOIN webhooks w ON w.id = d.webhook_id
             JOIN webhook_events e ON e.seq = d.event_seq
             ORDER BY d.id",
            &[&micros(now), &micros(lease_until), &i64::from(limit)],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(DueDelivery {
                id: row.try_get(0)?,
                project: ProjectId(row.try_get(1)?),
                webhook_id: row.try_get(2)?,
                url: row.try_get(3)?,
                secret: row.try_get(4)?,
                event_id: row.try_get(5)?,
                event_type: row.try_get(6)?,
                payload: row.try_get(7)?,
                num_attempts: count(row, 8)? as u32,
            })
        })
        .collect()
    }

    async fn record_attempt(
        &self,
        delivery_id: i64,
        attempt: &Attempt,
        status: DeliveryStatus,
        next_attempt_at: Option<Timestamp>,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        execute(
            &tx,
            "INSERT INTO webhook_attempts (delivery_id, at, status_code, error, latency_ms)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &delivery_id,
                &micros(attempt.at),
                &attempt.status_code.map(i64::from),
                &attempt.error,
                &(attempt.latency_ms as i64),
            ],
        )
        .await?;
        execute(
            &tx,
            "UPDATE webhook_deliveries
             SET status = $2, num_attempts = num_attempts + 1, next_attempt_at = $3
             WHERE id = $1",
            &[&delivery_id, &status.as_str(), &next_attempt_at.map(micros)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_deliveries(
        &self,
        project: ProjectId,
        webhook_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        let client = self.client().await?;
        let mut deliveries = Vec::new();
        for row in query(
            &client,
            "SELECT d.id, d.webhook_id, e.event_id, e.event_type, d.status,
                    d.next_attempt_at, d.created_at
             FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.event_seq
             WHERE d.project_id = $1 AND ($2::BIGINT IS NULL OR d.webhook_id = $2)
             ORDER BY d.id DESC LIMIT $3",
            &[&project.0, &webhook_id, &i64::from(limit)],
        )
        .await?
        {
            deliveries.push(Delivery {
                id: row.try_get(0)?,
                webhook_id: row.try_get(1)?,
                event_id: row.try_get(2)?,
                event_type: row.try_get(3)?,
                status: status(row.try_get(4)?)?,
                next_attempt_at: row
                    .try_get::<_, Option<i64>>(5)?
                    .map(timestamp)
                    .transpose()?,
                created_at: timestamp(row.try_get(6)?)?,
                attempts: Vec::new(),
            });
        }
        let ids: Vec<i64> = deliveries.iter().map(|d| d.id).collect();
        let index: HashMap<i64, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        for row in query(
            &client,
            "SELECT delivery_id, at, status_code, error, latency_ms FROM webhook_attempts
             WHERE delivery_id = ANY ($1) ORDER BY id",
            &[&ids],
        )
        .await?
        {
            let delivery: i64 = row.try_get(0)?;
            let Some(position) = index.get(&delivery) else {
                continue;
            };
            deliveries[*position].attempts.push(Attempt {
                at: timestamp(row.try_get(1)?)?,
                status_code: row
                    .try_get::<_, Option<i64>>(2)?
                    .and_then(|code| u16::try_from(code).ok()),
                error: row.try_get(3)?,
                latency_ms: count(&row, 4)?,
            });
        }
        Ok(deliveries)
    }

    async fn delivery_totals(&self) -> Result<DeliveryTotals> {
        let client = self.client().await?;
        let mut totals = DeliveryTotals::default();
        for row in query(
            &client,
            "SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status",
            &[],
        )
        .await?
        {
            let num = count(&row, 1)?;
            match status(row.try_get(0)?)? {
                DeliveryStatus::Pending => totals.pending = num,
                DeliveryStatus::Delivered => totals.delivered = num,
                DeliveryStatus::Failed => totals.failed = num,
            }
        }
        let row = query_one(
            &client,
            "SELECT COUNT(*) FROM webhook_attempts WHERE error IS NOT NULL",
            &[],
        )
        .await?;
        totals.failed_attempts = count(&row, 0)?;
        Ok(totals)
    }
}
