//! The JSON bodies of analytics: feedback aggregations, comparisons, alerts, webhook endpoints
//! and the delivery log.

use feedloop_core::Timestamp;
use feedloop_core::events::EventType;
use feedloop_core::stats::{Bucket, Proportion, wilson};
use feedloop_store::analytics::{Alert, FeedbackCounts};
use feedloop_store::webhooks::{Attempt, Delivery, DeliveryStatus, Webhook};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::analytics::detect::Comparison;

/// A count and its share of a whole, with the share's 95 % Wilson interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CountRate {
    pub count: u64,
    /// `count / of`, absent when `of` is 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub rate: Option<Proportion>,
}

impl CountRate {
    fn new(count: u64, of: u64) -> Self {
        Self {
            count,
            rate: wilson(count, of),
        }
    }
}

/// Ratings split by sign; `positive_rate` is positive / (positive + negative).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RatingCounts {
    pub positive: u64,
    pub negative: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub positive_rate: Option<Proportion>,
}

/// The mean satisfaction estimate (−1..1) of the traces with one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SatisfactionMean {
    pub traces: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
}

/// The counts of one time bucket and group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BucketCounts {
    /// The bucket's start (UTC).
    #[schema(value_type = String)]
    pub start: Timestamp,
    /// The group's value; absent for feedback whose trace lacks it, or without `group_by`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Current feedback items.
    pub feedback: u64,
    /// Items that say something went wrong (share of `feedback`).
    pub negative_feedback: CountRate,
    /// Distinct traces with current feedback.
    pub traces: u64,
    /// Of them, traces with current negative feedback (share of `traces`): the negative rate.
    pub negative_traces: CountRate,
    /// Items per kind (share of `feedback`).
    pub kinds: BTreeMap<String, CountRate>,
    /// Items naming each category (share of `feedback`).
    pub categories: BTreeMap<String, CountRate>,
    /// Signals per type (share of `feedback`).
    pub signals: BTreeMap<String, CountRate>,
    pub ratings: RatingCounts,
    pub satisfaction: SatisfactionMean,
}

impl BucketCounts {
    pub fn from_counts(counts: FeedbackCounts) -> Self {
        let total = counts.num_feedback;
        let shares = |map: BTreeMap<String, u64>| {
            map.into_iter()
                .map(|(name, count)| (name, CountRate::new(count, total)))
                .collect()
        };
        let rated = counts.num_positive_ratings + counts.num_negative_ratings;
        Self {
            start: Timestamp::from_microsecond(counts.bucket_start)
                .unwrap_or(Timestamp::UNIX_EPOCH),
            group: counts.group,
            feedback: total,
            negative_feedback: CountRate::new(counts.num_negative_feedback, total),
            traces: counts.num_traces,
            negative_traces: CountRate::new(counts.num_negative_traces, counts.num_traces),
            kinds: shares(counts.by_kind),
            categories: shares(counts.by_category),
            signals: shares(counts.by_signal),
            ratings: RatingCounts {
                positive: counts.num_positive_ratings,
                negative: counts.num_negative_ratings,
                positive_rate: wilson(counts.num_positive_ratings, rated),
            },
            satisfaction: SatisfactionMean {
                traces: counts.num_satisfaction,
                mean: counts.satisfaction_mean,
            },
        }
    }
}

/// An aggregation's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FeedbackAnalytics {
    #[schema(value_type = String)]
    pub from: Timestamp,
    #[schema(value_type = String)]
    pub to: Timestamp,
    pub bucket: Bucket,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    /// By bucket, then group; buckets and groups without feedback are left out.
    pub buckets: Vec<BucketCounts>,
}

/// One side of a comparison: the traces (by start time) matching these conditions.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareSideBody {
    /// A name for the side in the answer (default `a` / `b`).
    pub label: Option<String>,
    #[schema(value_type = Option<String>)]
    pub from: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub to: Option<Timestamp>,
    pub model: Option<String>,
    pub model_version: Option<String>,
    pub prompt_name: Option<String>,
    pub prompt_version: Option<String>,
    /// dev, test, staging or prod.
    pub environment: Option<String>,
    pub tag: Option<String>,
}

/// Two trace sets to compare: two versions (same range, `model_version` or `prompt_version`
/// differ) or two periods (`from`/`to` differ).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareBody {
    pub a: CompareSideBody,
    pub b: CompareSideBody,
    /// Significance level, in (0, 0.5] (default: the server's `regression_alpha`).
    pub alpha: Option<f64>,
    /// Traces each side needs for a verdict (default 30).
    pub min_traces: Option<u64>,
}

/// A comparison's answer: `b` against `a`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CompareAnswer {
    pub a_label: String,
    pub b_label: String,
    #[serde(flatten)]
    pub comparison: Comparison,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlertView {
    pub id: i64,
    /// `regression` or `negative_spike`.
    pub kind: String,
    pub dedupe_key: String,
    pub message: String,
    /// Counts, rates with intervals, the p-value.
    pub evidence: serde_json::Value,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

impl From<Alert> for AlertView {
    fn from(alert: Alert) -> Self {
        Self {
            id: alert.id,
            kind: alert.kind,
            dedupe_key: alert.dedupe_key,
            message: alert.message,
            evidence: alert.evidence,
            created_at: alert.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AlertList {
    pub alerts: Vec<AlertView>,
}

/// A webhook endpoint to create.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhookBody {
    /// Where events are POSTed (http or https).
    pub url: String,
    /// The events it receives (at least one).
    pub event_types: Vec<EventType>,
    /// The signing secret (16..=256 characters); the server makes one (`whsec_…`) when absent.
    pub secret: Option<String>,
    pub description: Option<String>,
}

/// An endpoint. `secret` is shown only in the answer that created it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    pub id: i64,
    pub url: String,
    pub event_types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

impl WebhookView {
    pub fn new(webhook: Webhook, show_secret: bool) -> Self {
        Self {
            id: webhook.id,
            url: webhook.url,
            event_types: webhook.event_types,
            description: webhook.description,
            secret: show_secret.then_some(webhook.secret),
            created_at: webhook.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    #[schema(value_type = String)]
    pub at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub latency_ms: u64,
}

impl From<Attempt> for AttemptView {
    fn from(attempt: Attempt) -> Self {
        Self {
            at: attempt.at,
            status_code: attempt.status_code,
            error: attempt.error,
            latency_ms: attempt.latency_ms,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: String,
    pub event_type: String,
    /// pending, delivered or failed (given up).
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub next_attempt_at: Option<Timestamp>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    pub attempts: Vec<AttemptView>,
}

impl From<Delivery> for DeliveryView {
    fn from(delivery: Delivery) -> Self {
        Self {
            id: delivery.id,
            webhook_id: delivery.webhook_id,
            event_id: delivery.event_id,
            event_type: delivery.event_type,
            status: DeliveryStatus::as_str(delivery.status).to_owned(),
            next_attempt_at: delivery.next_attempt_at,
            created_at: delivery.created_at,
            attempts: delivery.attempts.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
}
