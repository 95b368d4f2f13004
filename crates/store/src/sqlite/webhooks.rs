//! Webhook endpoints, the event outbox, deliveries and their attempts on SQLite (see
//! [`crate::webhooks`]).

use async_trait::async_trait;
use feedloop_core::{ProjectId, Timestamp};
use rusqlite::{Connection, params};
use std::collections::HashMap;

use super::{SqliteStore, micros, timestamp};
use crate::webhooks::{
    Attempt, Delivery, DeliveryStatus, DeliveryTotals, DueDelivery, NewEvent, NewWebhook, Webhook,
    Webhooks,
};
use crate::{Result, StoreError};

/// Writes the event and one pending delivery, due now, per endpoint of the project that
/// subscribes to its type; in the caller's transaction. Returns the deliveries queued.
pub(super) fn queue_event(
    tx: &Connection,
    project: ProjectId,
    event: &NewEvent,
    now: Timestamp,
) -> Result<u64> {
    let endpoints = tx
        .prepare_cached(
            "SELECT id, event_types FROM webhooks WHERE project_id = ?1 AND deleted_at IS NULL",
        )?
        .query_map(params![project.0], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut subscribed = Vec::new();
    for (id, types) in endpoints {
        let types: Vec<String> = serde_json::from_str(&types)?;
        if types.contains(&event.event_type) {
            subscribed.push(id);
        }
    }
    let event_seq: i64 = tx
        .prepare_cached(
            "INSERT INTO webhook_events (project_id, event_id, event_type, payload, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5) RETURNING seq",
        )?
        .query_row(
            params![
                project.0,
                event.event_id,
                event.event_type,
                event.payload,
                micros(now)
            ],
            |row| row.get(0),
        )?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO webhook_deliveries
             (project_id, webhook_id, event_seq, status, num_attempts, next_attempt_at, created_at)
         VALUES (?1, ?2, ?3, 'pending', 0, ?4, ?4)",
    )?;
    for webhook in &subscribed {
        insert.execute(params![project.0, webhook, event_seq, micros(now)])?;
    }
    Ok(subscribed.len() as u64)
}

fn webhook_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Webhook, String, i64)> {
    Ok((
        Webhook {
            id: row.get(0)?,
            url: row.get(1)?,
            secret: row.get(2)?,
            event_types: Vec::new(),
            description: row.get(4)?,
            created_at: Timestamp::UNIX_EPOCH,
        },
        row.get(3)?,
        row.get(5)?,
    ))
}

fn finish_webhook((mut webhook, types, created_at): (Webhook, String, i64)) -> Result<Webhook> {
    webhook.event_types = serde_json::from_str(&types)?;
    webhook.created_at = timestamp(created_at)?;
    Ok(webhook)
}

fn status(text: &str) -> Result<DeliveryStatus> {
    DeliveryStatus::parse(text)
        .ok_or_else(|| StoreError::Internal(format!("unknown delivery status {text:?}")))
}

#[async_trait]
impl Webhooks for SqliteStore {
    async fn create_webhook(
        &self,
        project: ProjectId,
        webhook: &NewWebhook,
        now: Timestamp,
    ) -> Result<Webhook> {
        let webhook = webhook.clone();
        let types = serde_json::to_string(&webhook.event_types)?;
        self.writer
            .run(1, move |tx| {
                let id: i64 = tx
                    .prepare_cached(
                        "INSERT INTO webhooks (project_id, url, secret, event_types, description, created_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                    )?
                    .query_row(
                        params![
                            project.0,
                            webhook.url,
                            webhook.secret,
                            types,
                            webhook.description,
                            micros(now)
                        ],
                        |row| row.get(0),
                    )?;
                Ok(Webhook {
                    id,
                    url: webhook.url,
                    secret: webhook.secret,
                    event_types: webhook.event_types,
                    description: webhook.description,
                    created_at: now,
                })
            })
            .await
    }

    async fn list_webhooks(&self, project: ProjectId) -> Result<Vec<Webhook>> {
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT id, url, secret, event_types, description, created_at FROM webhooks
                         WHERE project_id = ?1 AND deleted_at IS NULL ORDER BY id",
                    )?
                    .query_map(params![project.0], webhook_from_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter().map(finish_webhook).collect()
            })
            .await
    }

    async fn delete_webhook(&self, project: ProjectId, id: i64, now: Timestamp) -> Result<()> {
        self.writer
            .run(1, move |tx| {
                let changed = tx
                    .prepare_cached(
                        "UPDATE webhooks SET deleted_at = ?3
                         WHERE project_id = ?1 AND id = ?2 AND deleted_at IS NULL",
                    )?
                    .execute(params![project.0, id, micros(now)])?;
                if changed == 0 {
                    return Err(StoreError::NotFound {
                        what: "webhook",
                        id: id.to_string(),
                    });
                }
                // Its pending deliveries are dropped from the queue; the log keeps them.
                tx.prepare_cached(
                    "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL
                     WHERE project_id = ?1 AND webhook_id = ?2 AND status = 'pending'",
                )?
                .execute(params![project.0, id])?;
                Ok(())
            })
            .await
    }

    async fn emit_event(
        &self,
        project: ProjectId,
        event: &NewEvent,
        now: Timestamp,
    ) -> Result<u64> {
        let event = event.clone();
        self.writer
            .run(1, move |tx| queue_event(tx, project, &event, now))
            .await
    }

    async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>> {
        self.writer
            .run(1, move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT d.id, d.project_id, d.webhook_id, w.url, w.secret, e.event_id,
                                e.event_type, e.payload, d.num_attempts
                         FROM webhook_deliveries d
                         JOIN webhooks w ON w.id = d.webhook_id
                         JOIN webhook_events e ON e.seq = d.event_seq
                         WHERE d.status = 'pending' AND d.next_attempt_at <= ?1
                         ORDER BY d.next_attempt_at, d.id LIMIT ?2",
                    )?
                    .query_map(params![micros(now), limit], |row| {
                        Ok(DueDelivery {
                            id: row.get(0)?,
                            project: ProjectId(row.get(1)?),
                            webhook_id: row.get(2)?,
                            url: row.get(3)?,
                            secret: row.get(4)?,
                            event_id: row.get(5)?,
                            event_type: row.get(6)?,
                            payload: row.get(7)?,
                            num_attempts: row.get(8)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut lease = conn.prepare_cached(
                    "UPDATE webhook_deliveries SET next_attempt_at = ?2 WHERE id = ?1",
                )?;
                for delivery in &rows {
                    lease.execute(params![delivery.id, micros(lease_until)])?;
                }
                Ok(rows)
            })
            .await
    }

    async fn record_attempt(
        &self,
        delivery_id: i64,
        attempt: &Attempt,
        status: DeliveryStatus,
        next_attempt_at: Option<Timestamp>,
    ) -> Result<()> {
        let attempt = attempt.clone();
        self.writer
            .run(1, move |tx| {
                tx.prepare_cached(
                    "INSERT INTO webhook_attempts (delivery_id, at, status_code, error, latency_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute(params![
                    delivery_id,
                    micros(attempt.at),
                    attempt.status_code,
                    attempt.error,
                    attempt.latency_ms as i64
                ])?;
                tx.prepare_cached(
                    "UPDATE webhook_deliveries
                     SET status = ?2, num_attempts = num_attempts + 1, next_attempt_at = ?3
                     WHERE id = ?1",
                )?
                .execute(params![
                    delivery_id,
                    status.as_str(),
                    next_attempt_at.map(micros)
                ])?;
                Ok(())
            })
            .await
    }

    async fn list_deliveries(
        &self,
        project: ProjectId,
        webhook_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>> {
        self.readers
            .run(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT d.id, d.webhook_id, e.event_id, e.event_type, d.status,
                                d.next_attempt_at, d.created_at
                         FROM webhook_deliveries d JOIN webhook_events e ON e.seq = d.event_seq
                         WHERE d.project_id = ?1 AND (?2 IS NULL OR d.webhook_id = ?2)
                         ORDER BY d.id DESC LIMIT ?3",
                    )?
                    .query_map(params![project.0, webhook_id, limit], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, Option<i64>>(5)?,
                            row.get::<_, i64>(6)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                let mut deliveries = Vec::with_capacity(rows.len());
                let mut index = HashMap::new();
                for (id, webhook_id, event_id, event_type, state, next, created) in rows {
                    index.insert(id, deliveries.len());
                    deliveries.push(Delivery {
                        id,
                        webhook_id,
                        event_id,
                        event_type,
                        status: status(&state)?,
                        next_attempt_at: next.map(timestamp).transpose()?,
                        created_at: timestamp(created)?,
                        attempts: Vec::new(),
                    });
                }
                let mut attempts = conn.prepare_cached(
                    "SELECT delivery_id, at, status_code, error, latency_ms FROM webhook_attempts
                     WHERE delivery_id = ?1 ORDER BY id",
                )?;
                for delivery in &mut deliveries {
                    let rows = attempts
                        .query_map(params![delivery.id], |row| {
                            Ok((
                                row.get::<_, i64>(1)?,
                                row.get::<_, Option<u16>>(2)?,
                                row.get::<_, Option<String>>(3)?,
                                row.get::<_, i64>(4)?,
                            ))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    for (at, status_code, error, latency_ms) in rows {
                        delivery.attempts.push(Attempt {
                            at: timestamp(at)?,
                            status_code,
                            error,
                            latency_ms: latency_ms.max(0) as u64,
                        });
                    }
                }
                Ok(deliveries)
            })
            .await
    }

    async fn delivery_totals(&self) -> Result<DeliveryTotals> {
        self.readers
            .run(move |conn| {
                let mut totals = DeliveryTotals::default();
                let rows = conn
                    .prepare_cached(
                        "SELECT status, COUNT(*) FROM webhook_deliveries GROUP BY status",
                    )?
                    .query_map([], |row| {
                        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                for (state, num) in rows {
                    let num = num.max(0) as u64;
                    match status(&state)? {
                        DeliveryStatus::Pending => totals.pending = num,
                        DeliveryStatus::Delivered => totals.delivered = num,
                        DeliveryStatus::Failed => totals.failed = num,
                    }
                }
                let failed_attempts: i64 = conn
                    .prepare_cached(
                        "SELECT COUNT(*) FROM webhook_attempts WHERE error IS NOT NULL",
                    )?
                    .query_row([], |row| row.get(0))?;
                totals.failed_attempts = failed_attempts.max(0) as u64;
                Ok(totals)
            })
            .await
    }
}
