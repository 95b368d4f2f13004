//! The `Review` part of the store: review queues, their items with the history of everything
//! done to them, per-reviewer verdicts, and the position of the job that applies queue rules.
//!
//! Item transitions follow [`feedloop_core::review::apply`], called inside the transaction that
//! reads and writes the item (on PostgreSQL with the row locked), so two reviewers never both
//! hold an item and the history records exactly the actions that took effect. A trace is in a
//! queue at most once (`UNIQUE (project, queue, trace)`): enqueueing it again is a no-op.

use async_trait::async_trait;
use feedloop_core::filter::Filter;
use feedloop_core::review::{ItemAction, ItemState, Queue, ReviewItem, TransitionError, Verdict};
use feedloop_core::{ProjectId, Timestamp, TraceId};
use serde_json::Value;

use crate::{Result, StoreError, StoredTrace};

/// How many items of a queue are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemCounts {
    pub pending: u64,
    pub in_progress: u64,
    pub resolved: u64,
    pub dismissed: u64,
}

/// Which items of a queue to list, by priority (highest first), then id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ItemQuery {
    /// The state at `now` (an expired reservation is pending).
    pub state: Option<ItemState>,
    pub assignee: Option<String>,
    pub limit: u32,
    /// Items after this (priority, id) position.
    pub after: Option<(f64, i64)>,
}

/// What happened to an item, by whom and when.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewEvent {
    pub id: i64,
    pub item_id: i64,
    pub at: Timestamp,
    pub author: String,
    /// `enqueued`, `reserve`, `release`, `assign`, `resolve`, `dismiss`, `label`, `tag`,
    /// `annotate`, `correct`, `promote`, `add_to_dataset`, `mark_ux_issue`.
    pub action: String,
    /// The action's details (the feedback id it wrote, the lesson it made, the reason, …).
    pub payload: Value,
}

/// An action to record on an item: the transition (or check) and its history entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemChange {
    pub transition: ItemAction,
    pub author: String,
    pub action: String,
    pub payload: Value,
}

/// Whether an enqueue added the trace or found it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Created(i64),
    Existing(i64),
}

impl Enqueued {
    pub fn item_id(self) -> i64 {
        match self {
            Self::Created(id) | Self::Existing(id) => id,
        }
    }
}

/// How many items a queue holds in one state, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSize {
    pub project: String,
    pub queue: String,
    /// `pending` (an expired reservation counts here), `in_progress`, `resolved` or `dismissed`.
    pub state: String,
    pub items: u64,
}

/// A trace written after some position (store order across projects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceChange {
    pub seq: i64,
    pub project: ProjectId,
    pub trace_id: TraceId,
}

#[async_trait]
pub trait Review: Send + Sync {
    /// Creates a queue; a conflict if the name is taken.
    async fn create_queue(&self, project: ProjectId, queue: &Queue) -> Result<()>;

    /// Replaces a queue's definition (not its name); `NotFound` if there is none.
    async fn update_queue(&self, project: ProjectId, queue: &Queue) -> Result<()>;

    /// Deletes a queue with its items, verdicts and history; `NotFound` if there is none.
    async fn delete_queue(&self, project: ProjectId, name: &str) -> Result<()>;

    async fn queue(&self, project: ProjectId, name: &str) -> Result<Option<Queue>>;

    /// The project's queues by name.
    async fn list_queues(&self, project: ProjectId) -> Result<Vec<Queue>>;

    /// Adds each trace to the queue as a pending item with its priority, unless it is there
    /// already; records `enqueued` by `author` for the new ones. Every trace must exist
    /// (`NotFound` otherwise, and nothing is written).
    async fn enqueue(
        &self,
        project: ProjectId,
        queue: &str,
        traces: &[(TraceId, f64)],
        author: &str,
        now: Timestamp,
    ) -> Result<Vec<Enqueued>>;

    async fn review_item(
        &self,
        project: ProjectId,
        queue: &str,
        item_id: i64,
    ) -> Result<Option<ReviewItem>>;

    /// Items of the queue matching the query, by priority then id.
    async fn review_items(
        &self,
        project: ProjectId,
        queue: &str,
        query: &ItemQuery,
        now: Timestamp,
    ) -> Result<Vec<ReviewItem>>;

    /// How many items of the queue are in each state at `now` (an expired reservation is
    /// pending), counted by the store: a backlog is never read item by item.
    async fn review_item_counts(
        &self,
        project: ProjectId,
        queue: &str,
        now: Timestamp,
    ) -> Result<ItemCounts>;

    /// Applies a change to an item and records it in its history, in one transaction.
    /// `NotFound` for an unknown item, `Conflict` (field `action`) when the transition does not
    /// apply, `Invalid` (field `label`) when a verdict lacks its label.
    async fn change_item(
        &self,
        project: ProjectId,
        queue: &str,
        item_id: i64,
        change: &ItemChange,
        now: Timestamp,
    ) -> Result<(ReviewItem, ReviewEvent)>;

    /// Reserves the highest-priority item that `reviewer` may take (pending or with an expired
    /// lock, not assigned to someone else, not already judged by them) for the queue's lock
    /// time; `None` when there is none. On PostgreSQL concurrent callers skip each other's rows.
    async fn reserve_next(
        &self,
        project: ProjectId,
        queue: &str,
        reviewer: &str,
        now: Timestamp,
    ) -> Result<Option<ReviewItem>>;

    /// The history of an item, oldest first.
    async fn item_history(
        &self,
        project: ProjectId,
        queue: &str,
        item_id: i64,
    ) -> Result<Vec<ReviewEvent>>;

    /// The verdicts of every item of the queue that has any, by item.
    async fn queue_verdicts(
        &self,
        project: ProjectId,
        queue: &str,
    ) -> Result<Vec<(i64, Vec<Verdict>)>>;

    /// Open items (pending or in progress) of these traces, in every queue of the project.
    async fn open_items_of(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<ReviewItem>>;

    /// Sets the priority of each item (by id); items of other projects are left alone.
    async fn set_priorities(&self, project: ProjectId, priorities: &[(i64, f64)]) -> Result<()>;

    /// Which of these traces match `filter` (as the trace list reads it).
    async fn traces_matching(
        &self,
        project: ProjectId,
        filter: &Filter,
        trace_ids: &[TraceId],
    ) -> Result<Vec<TraceId>>;

    /// These traces (missing ones left out, spans not loaded).
    async fn traces_by_id(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<StoredTrace>>;

    /// Traces first written after `after` (store order, across projects), at most `limit`.
    async fn trace_changes_since(&self, after: i64, limit: u32) -> Result<Vec<TraceChange>>;

    /// A named position of the review-rules job; 0 when never set.
    async fn review_progress(&self, name: &str) -> Result<i64>;

    /// Items per project, queue and state at `now`, across every project (for `/metrics`).
    async fn queue_sizes(&self, now: Timestamp) -> Result<Vec<QueueSize>>;

    /// Moves a named position forward to `position` (never back).
    async fn advance_review_progress(&self, name: &str, position: i64) -> Result<()>;
}

/// The store error for a transition that does not apply: the caller's request conflicts with
/// the item's state (409), except a missing label, which is bad input (422).
pub fn transition_error(error: TransitionError) -> StoreError {
    match error {
        TransitionError::LabelRequired => StoreError::Invalid {
            item: None,
            error: feedloop_core::ValidationError::new("label", error.to_string()),
        },
        other => StoreError::Conflict {
            item: None,
            field: "action".into(),
            message: other.to_string(),
        },
    }
}

/// Not found errors of this part of the store.
pub(crate) fn queue_not_found(name: &str) -> StoreError {
    StoreError::NotFound {
        what: "queue",
        id: name.to_owned(),
    }
}

pub(crate) fn item_not_found(id: i64) -> StoreError {
    StoreError::NotFound {
        what: "review item",
        id: id.to_string(),
    }
}
