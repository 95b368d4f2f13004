//! Review queues on the wire: queue definitions, items as reviewers see them (with their state
//! at the time of the answer), the action body of `POST /api/v1/queues/{queue}/items/{item}/actions`,
//! history entries and agreement.
//!
//! ```json
//! {"action": "dismiss", "author": "ann", "reason": "the user was testing"}
//! {"action": "label", "author": "ann", "categories": ["factually_incorrect"]}
//! {"action": "annotate", "author": "ann", "annotation": {"start": 0, "end": 5, "quote": "Bloom"}}
//! {"action": "resolve", "author": "ann", "label": "wrong_answer"}
//! ```

use feedloop_core::Timestamp;
use feedloop_core::feedback::{Annotation, Correction};
use feedloop_core::review::item::Resolution;
use feedloop_core::review::{ItemState, ReviewItem, Rule, Verdict};
use feedloop_store::review::ReviewEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use utoipa::ToSchema;

/// A new queue.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueBody {
    /// snake_case, unique in the project; the queue's id in paths.
    pub name: String,
    pub description: Option<String>,
    /// Filters (list query parameters) with a sampling rate; traces that match any rule are
    /// enqueued by the `review_rules` job.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Verdicts needed per item, 1..=10 (default 1).
    pub reviewers_required: Option<u32>,
    /// How long a reservation holds, 60..=86400 seconds (default 1800).
    pub lock_secs: Option<u32>,
    /// Weight 0..=1 of user roles in the triage priority.
    #[serde(default)]
    pub role_weights: BTreeMap<String, f64>,
}

/// A change to a queue: the fields given replace the stored ones. Items already enqueued keep
/// the number of reviewers they were enqueued with.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueChange {
    pub description: Option<String>,
    pub rules: Option<Vec<Rule>>,
    pub reviewers_required: Option<u32>,
    pub lock_secs: Option<u32>,
    pub role_weights: Option<BTreeMap<String, f64>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueList {
    pub queues: Vec<feedloop_core::review::Queue>,
}

/// Traces to put in a queue by hand (those already in it are left as they are).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueBody {
    pub trace_ids: Vec<String>,
    /// Who enqueues, as recorded in the items' history.
    pub author: String,
}

/// What a manual enqueue did, per trace in the order given.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnqueueReceipt {
    pub items: Vec<EnqueuedItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EnqueuedItem {
    pub trace_id: String,
    pub item_id: i64,
    /// `created`, or `existing` when the trace was in the queue already.
    pub status: String,
}

/// Who asks for the next item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReserveBody {
    pub reviewer: String,
}

/// The reserved item, or `null` when nothing is available to this reviewer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReserveAnswer {
    pub item: Option<ItemView>,
}

/// An item as a reviewer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemView {
    pub id: i64,
    pub queue: String,
    pub trace_id: String,
    /// The state now: an in-progress item whose lock has expired is pending.
    pub state: ItemState,
    pub priority: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// The reviewer holding it, while the lock holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reserved_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub lock_until: Option<Timestamp>,
    pub reviewers_required: u32,
    pub verdicts: Vec<Verdict>,
    /// The share of verdicts that agree with the most common label (two verdicts or more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agreement: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    pub tags: BTreeSet<String>,
    pub ux_issue: bool,
    #[schema(value_type = String)]
    pub enqueued_at: Timestamp,
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
}

impl ItemView {
    pub fn of(item: ReviewItem, now: Timestamp) -> Self {
        let state = item.state_at(now);
        let holder = item.holder_at(now).map(str::to_owned);
        let agreement = feedloop_core::review::agreement::item_agreement(&item.verdicts);
        Self {
            id: item.id,
            queue: item.queue,
            trace_id: item.trace_id.into_string(),
            state,
            priority: item.priority,
            assignee: item.assignee,
            lock_until: holder.as_ref().and(item.lock_until),
            reserved_by: holder,
            reviewers_required: item.reviewers_required,
            verdicts: item.verdicts,
            agreement,
            resolution: item.resolution,
            tags: item.tags,
            ux_issue: item.ux_issue,
            enqueued_at: item.enqueued_at,
            updated_at: item.updated_at,
        }
    }
}

/// How many items of a queue are in each state now (an expired reservation is pending): the
/// review backlog.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueCounts {
    pub queue: String,
    pub pending: u64,
    pub in_progress: u64,
    pub resolved: u64,
    pub dismissed: u64,
}

impl QueueCounts {
    pub fn of(queue: String, counts: feedloop_store::review::ItemCounts) -> Self {
        Self {
            queue,
            pending: counts.pending,
            in_progress: counts.in_progress,
            resolved: counts.resolved,
            dismissed: counts.dismissed,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemList {
    pub items: Vec<ItemView>,
    /// Pass as `cursor` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// What a reviewer does to an item. `author` is who does it (recorded in the item's history;
/// feedback written by the action carries it as its author).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Take this item for the queue's lock time.
    Reserve,
    /// Give a reservation back.
    Release,
    /// `assignee`: the person the item is for (`null`: anyone); yourself to self-assign.
    Assign,
    /// A verdict, with `label` where the queue needs several reviewers.
    Resolve,
    /// Close without a verdict; `reason` is required.
    Dismiss,
    /// Category feedback with `categories`.
    Label,
    /// `tags` on the trace (and the item).
    Tag,
    /// Annotation feedback: `annotation` (a character range of the output with its quote).
    Annotate,
    /// Correction feedback: `correction`.
    Correct,
    /// A proposed lesson from the trace's negative feedback (optional `title`, `priority`).
    Promote,
    /// A request to add the trace to `dataset`.
    AddToDataset,
    /// A product/UX problem rather than the model's; optional `note`.
    MarkUxIssue,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reserve => "reserve",
            Self::Release => "release",
            Self::Assign => "assign",
            Self::Resolve => "resolve",
            Self::Dismiss => "dismiss",
            Self::Label => "label",
            Self::Tag => "tag",
            Self::Annotate => "annotate",
            Self::Correct => "correct",
            Self::Promote => "promote",
            Self::AddToDataset => "add_to_dataset",
            Self::MarkUxIssue => "mark_ux_issue",
        }
    }
}

/// One action on an item; each action reads only its own fields and rejects the others.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
    pub action: ActionKind,
    pub author: String,
    /// dismiss: why (required).
    pub reason: Option<String>,
    /// resolve: the verdict's label (required where several reviewers judge an item).
    pub label: Option<String>,
    /// assign: the person the item is for; `null` or absent for anyone.
    pub assignee: Option<String>,
    /// label: taxonomy categories.
    pub categories: Option<Vec<String>>,
    /// tag: tags for the trace.
    pub tags: Option<Vec<String>>,
    /// annotate: the range of the output, its quote and an optional comment.
    pub annotation: Option<Annotation>,
    /// correct: the better answer.
    pub correction: Option<Correction>,
    /// promote: the lesson's title.
    pub title: Option<String>,
    /// promote: the lesson's priority.
    pub priority: Option<i32>,
    /// add_to_dataset: the dataset's name.
    pub dataset: Option<String>,
    /// mark_ux_issue: what the product should change.
    pub note: Option<String>,
}

/// The item after an action, and the history entry the action wrote.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionAnswer {
    pub item: ItemView,
    pub event: EventView,
}

/// One entry of an item's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: i64,
    #[schema(value_type = String)]
    pub at: Timestamp,
    pub author: String,
    pub action: String,
    #[schema(value_type = Object)]
    pub payload: Value,
}

impl From<ReviewEvent> for EventView {
    fn from(event: ReviewEvent) -> Self {
        Self {
            id: event.id,
            at: event.at,
            author: event.author,
            action: event.action,
            payload: event.payload,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct History {
    pub item_id: i64,
    pub events: Vec<EventView>,
}

/// Agreement between the queue's reviewers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementReport {
    pub queue: String,
    pub reviewers_required: u32,
    /// Items with at least two labelled verdicts.
    pub num_items: usize,
    /// The mean share of verdicts agreeing with their item's most common label.
    pub mean_agreement: Option<f64>,
    /// Fleiss' kappa over those items (for a varying number of raters per item); `null` when
    /// undefined (no such item, or one label everywhere).
    pub fleiss_kappa: Option<f64>,
    pub items: Vec<ItemAgreement>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemAgreement {
    pub item_id: i64,
    pub verdicts: Vec<Verdict>,
    pub agreement: Option<f64>,
}
