//! The `Webhooks` part of the store: each project's endpoints, the **outbox** of events, one
//! delivery per (event, subscribed endpoint), and the log of every delivery attempt.
//!
//! Emitting an event writes the event and its deliveries in one transaction (with whatever
//! raised it, where the store does both, as `Analytics::raise_alert` does), so an event is
//! never lost between "it happened" and "it will be sent". The delivery job reads due
//! deliveries, sends them and records each attempt with the delivery's next state.

use async_trait::async_trait;
use feedloop_core::{ProjectId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::Result;

/// An endpoint to create. The secret signs every payload sent to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    pub url: String,
    pub secret: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

/// A stored endpoint (its secret is kept for signing and shown only when created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub secret: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
    pub created_at: Timestamp,
}

/// An event to queue for the project's endpoints that subscribe to its type.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The event's public id (`evt_…`), chosen by the caller.
    pub event_id: String,
    pub event_type: String,
    /// The JSON body sent to every endpoint, exactly.
    pub payload: String,
}

/// A delivery whose next attempt is due, with what sending it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    pub id: i64,
    pub project: ProjectId,
    pub webhook_id: i64,
    pub url: String,
    pub secret: String,
    pub event_id: String,
    pub event_type: String,
    pub payload: String,
    /// Attempts made so far.
    pub num_attempts: u32,
}

/// One attempt as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: Timestamp,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<u16>,
    /// Why the attempt failed (a status, a connection error, a time-out).
    pub error: Option<String>,
    pub latency_ms: u64,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not delivered yet; tried again at `next_attempt_at`.
    Pending,
    Delivered,
    /// Given up after the last allowed attempt.
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

/// A delivery with its attempts, for the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub attempts: Vec<Attempt>,
}

/// Deliveries in each status, across projects (for `/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryTotals {
    pub pending: u64,
    pub delivered: u64,
    pub failed: u64,
    /// Attempts that did not deliver.
    pub failed_attempts: u64,
}

#[async_trait]
pub trait Webhooks: Send + Sync {
    async fn create_webhook(
        &self,
        project: ProjectId,
        webhook: &NewWebhook,
        now: Timestamp,
    ) -> Result<Webhook>;

    /// The project's endpoints, oldest first.
    async fn list_webhooks(&self, project: ProjectId) -> Result<Vec<Webhook>>;

    /// Removes an endpoint; its pending deliveries are not attempted any more.
    async fn delete_webhook(&self, project: ProjectId, id: i64, now: Timestamp) -> Result<()>;

    /// Queues the event for every endpoint of the project subscribed to its type, in one
    /// transaction. Returns how many deliveries were queued (0: nobody listens).
    async fn emit_event(&self, project: ProjectId, event: &NewEvent, now: Timestamp)
    -> Result<u64>;

    /// Claims pending deliveries due at `now`, oldest due first, at most `limit`, across
    /// projects: their next attempt moves to `lease_until`, so a second run (another replica's,
    /// or this one's next) does not send them again while this one does. Recording the attempt
    /// sets the real next time; a sender that dies leaves them due again at `lease_until`.
    async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<DueDelivery>>;

    /// Logs an attempt of a delivery and moves it to `status` (`Pending` with the time of the
    /// next attempt).
    async fn record_attempt(
        &self,
        delivery_id: i64,
        attempt: &Attempt,
        status: DeliveryStatus,
        next_attempt_at: Option<Timestamp>,
    ) -> Result<()>;

    /// The project's deliveries, newest first, at most `limit`, each with its attempts;
    /// only one endpoint's when `webhook_id` is given.
    async fn list_deliveries(
        &self,
        project: ProjectId,
        webhook_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>>;

    async fn delivery_totals(&self) -> Result<DeliveryTotals>;
}
