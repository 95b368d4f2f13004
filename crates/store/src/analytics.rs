//! The `Analytics` part of the store: feedback aggregated over time buckets and one grouping
//! dimension, negative rates of trace sets (for comparisons and regression detection), the
//! versions receiving traffic, alerts, and the job-lag look-up of `/metrics`.
//!
//! Every aggregation runs in SQL (`GROUP BY` in the database); nothing loads the project's rows
//! into Rust. Only current feedback counts: superseded items are left out.

use async_trait::async_trait;
use feedloop_core::feedback::FeedbackKind;
use feedloop_core::filter::Filter;
use feedloop_core::stats::Bucket;
use feedloop_core::{ProjectId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::Result;
use crate::webhooks::NewEvent;

/// What feedback can be grouped by: a trace attribute, one of the trace's tags (a trace with
/// two tags counts in both groups), or the value of a trace metadata key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dimension {
    Model,
    ModelVersion,
    PromptName,
    PromptVersion,
    Environment,
    UserRole,
    Tag,
    Metadata(String),
}

impl Dimension {
    /// The dimensions by name: `model`, `model_version`, `prompt_name`, `prompt_version`,
    /// `environment`, `user_role`, `tag`, or `metadata.<key>`.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "model" => Self::Model,
            "model_version" => Self::ModelVersion,
            "prompt_name" => Self::PromptName,
            "prompt_version" => Self::PromptVersion,
            "environment" => Self::Environment,
            "user_role" => Self::UserRole,
            "tag" => Self::Tag,
            _ => {
                let key = name.strip_prefix("metadata.")?;
                if key.is_empty() {
                    return None;
                }
                Self::Metadata(key.to_owned())
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            Self::Model => "model".into(),
            Self::ModelVersion => "model_version".into(),
            Self::PromptName => "prompt_name".into(),
            Self::PromptVersion => "prompt_version".into(),
            Self::Environment => "environment".into(),
            Self::UserRole => "user_role".into(),
            Self::Tag => "tag".into(),
            Self::Metadata(key) => format!("metadata.{key}"),
        }
    }
}

/// An aggregation: current feedback created in `from..to` (the `filter`'s other conditions
/// apply too; its own `from`/`to` are replaced), counted per `bucket` and per value of
/// `group_by`.
#[derive(Debug, Clone)]
pub struct FeedbackQuery {
    pub from: Timestamp,
    pub to: Timestamp,
    pub bucket: Bucket,
    pub group_by: Option<Dimension>,
    pub filter: Filter,
    /// Compute every bucket from the records, neither reading nor keeping stored buckets
    /// (see the bucket cache in `analytics_cache.rs`).
    pub fresh: bool,
}

/// The counts of one bucket and group. Buckets and groups without feedback are absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackCounts {
    /// The bucket's start (UTC).
    pub bucket_start: i64,
    /// The group's value; `None` for feedback whose trace lacks it (or without `group_by`).
    pub group: Option<String>,
    /// Current feedback items.
    pub num_feedback: u64,
    /// Of them, the items that say something went wrong (`Feedback::is_negative`).
    pub num_negative_feedback: u64,
    /// Distinct traces with current feedback.
    pub num_traces: u64,
    /// Of them, traces with current negative feedback.
    pub num_negative_traces: u64,
    /// Items per kind (`rating`, `category`, …); kinds without items are absent.
    pub by_kind: BTreeMap<String, u64>,
    /// Category items (and annotations) naming each category.
    pub by_category: BTreeMap<String, u64>,
    /// Signals per type.
    pub by_signal: BTreeMap<String, u64>,
    pub num_positive_ratings: u64,
    pub num_negative_ratings: u64,
    /// Traces (of `num_traces`) with a stored satisfaction estimate, and their mean.
    pub num_satisfaction: u64,
    pub satisfaction_mean: Option<f64>,
}

/// How many traces of a set there are and how many carry current negative feedback.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NegativeCounts {
    pub num_traces: u64,
    pub num_negative: u64,
}

/// Which version attribute a version family is told apart by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionKind {
    /// `model_version` within one `model`.
    Model,
    /// `prompt_version` within one `prompt_name`.
    Prompt,
}

impl VersionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Prompt => "prompt",
        }
    }
}

/// A version that received traffic: its family name (model or prompt name), the version, and
/// when its traces started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionTraffic {
    pub name: String,
    pub version: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    pub num_traces: u64,
}

/// An alert to raise. `dedupe_key` names the condition: a second alert with the same key is
/// not raised again.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// `regression` or `negative_spike` (the event type it also emits).
    pub kind: String,
    pub dedupe_key: String,
    pub message: String,
    /// The numbers behind it (counts, rates, intervals, p-value), as JSON.
    pub evidence: serde_json::Value,
}

/// A stored alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: i64,
    pub kind: String,
    pub dedupe_key: String,
    pub message: String,
    pub evidence: serde_json::Value,
    pub created_at: Timestamp,
}

#[async_trait]
pub trait Analytics: Send + Sync {
    /// Current feedback counted per bucket and group, ordered by bucket, then group (missing
    /// group first).
    async fn aggregate_feedback(
        &self,
        project: ProjectId,
        query: &FeedbackQuery,
    ) -> Result<Vec<FeedbackCounts>>;

    /// Traces matching `filter` (by start time) and how many carry current negative feedback.
    async fn negative_counts(&self, project: ProjectId, filter: &Filter) -> Result<NegativeCounts>;

    /// The versions of `kind` whose traces started in `from..to`, by family and first start.
    async fn version_traffic(
        &self,
        project: ProjectId,
        kind: VersionKind,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<VersionTraffic>>;

    /// Stores the alert unless one with its dedupe key exists, and in the same transaction
    /// queues `event` for the project's webhooks (see [`crate::webhooks`]). Returns the alert
    /// when it is new; an existing key changes nothing.
    async fn raise_alert(
        &self,
        project: ProjectId,
        alert: &NewAlert,
        event: &NewEvent,
        now: Timestamp,
    ) -> Result<Option<Alert>>;

    /// The project's alerts, newest first, at most `limit`.
    async fn list_alerts(&self, project: ProjectId, limit: u32) -> Result<Vec<Alert>>;

    /// How many whole buckets of aggregations are stored, over all projects (see the bucket
    /// cache in `analytics_cache.rs`).
    async fn stored_buckets(&self) -> Result<u64>;

    /// When each of these background jobs last finished a run (on any replica); jobs that
    /// never finished one are left out.
    async fn job_last_finished(&self, jobs: &[&str]) -> Result<Vec<(String, Timestamp)>>;
}

/// The number of values in a main aggregation row after (bucket, group); see
/// `sql_analytics::FeedbackStatements::main`.
pub(crate) const MAIN_VALUES: usize = 6 + FeedbackKind::ALL.len();

/// Gathers the rows of an aggregation's statements into one [`FeedbackCounts`] per bucket and
/// group; both backends feed it the same rows.
#[derive(Debug, Default)]
pub(crate) struct CountsBuilder {
    groups: BTreeMap<(i64, Option<String>), FeedbackCounts>,
}

impl CountsBuilder {
    fn entry(&mut self, bucket: i64, group: Option<String>) -> &mut FeedbackCounts {
        self.groups
            .entry((bucket, group.clone()))
            .or_insert_with(|| FeedbackCounts {
                bucket_start: bucket,
                group,
                ..Default::default()
            })
    }

    pub fn main(&mut self, bucket: i64, group: Option<String>, values: [i64; MAIN_VALUES]) {
        let counts = self.entry(bucket, group);
        let count = |i: usize| values[i].max(0) as u64;
        counts.num_feedback = count(0);
        counts.num_negative_feedback = count(1);
        counts.num_traces = count(2);
        counts.num_negative_traces = count(3);
        counts.num_positive_ratings = count(4);
        counts.num_negative_ratings = count(5);
        for (i, kind) in FeedbackKind::ALL.iter().enumerate() {
            if count(6 + i) > 0 {
                counts
                    .by_kind
                    .insert(kind.as_str().to_owned(), count(6 + i));
            }
        }
    }

    pub fn category(&mut self, bucket: i64, group: Option<String>, name: String, num: i64) {
        self.entry(bucket, group)
            .by_category
            .insert(name, num.max(0) as u64);
    }

    pub fn signal(&mut self, bucket: i64, group: Option<String>, name: String, num: i64) {
        self.entry(bucket, group)
            .by_signal
            .insert(name, num.max(0) as u64);
    }

    pub fn satisfaction(&mut self, bucket: i64, group: Option<String>, num: i64, mean: f64) {
        let counts = self.entry(bucket, group);
        counts.num_satisfaction = num.max(0) as u64;
        counts.satisfaction_mean = Some(mean);
    }

    /// By bucket, then group (missing group first).
    pub fn finish(self) -> Vec<FeedbackCounts> {
        self.groups.into_values().collect()
    }
}
