//! Wire types: the JSON bodies of the HTTP API (and the lines of JSONL import and export), and
//! their conversion to and from the domain model. A wire type is not a domain type: it accepts
//! what clients send (optional ids, shorthand, defaults), rejects unknown fields, and converts
//! with a [`ValidationError`](feedloop_core::ValidationError) that names the field.

pub mod analytics;
pub mod chain;
pub mod dataset;
pub mod feedback;
pub mod privacy;
pub mod review;
pub mod search;
pub mod signal;
pub mod trace;

pub use chain::{SessionBody, SessionEntry, SessionNeighbours, TraceChainBody};
pub use feedback::{FeedbackBody, FeedbackView};
pub use search::{SearchBody, SearchResult, SearchResults};
pub use signal::{RecomputeBody, SignalBody, TimelineEvent};
pub use trace::{SpanBody, TraceBody, TraceView};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One line of a JSONL import or export file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Trace(TraceBody),
    Feedback(FeedbackBody),
}

/// A mixed batch: traces are stored before feedback, so feedback may refer to traces of the same
/// batch.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IngestBody {
    #[serde(default)]
    pub traces: Vec<TraceBody>,
    #[serde(default)]
    pub feedback: Vec<FeedbackBody>,
}

/// What happened to one ingested item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// The item was new.
    Created,
    /// A trace part was merged into a stored trace.
    Merged,
    /// Feedback with this id and this content was stored before; nothing changed.
    Duplicate,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ItemReceipt {
    pub id: String,
    pub status: ItemStatus,
}

/// The answer to a batch: one receipt per item, in the order sent.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchReceipt {
    pub items: Vec<ItemReceipt>,
}

/// The documented shape of a body that is one item (an object) or several (an array), as
/// `OneOrMany` reads it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum OneOrManyBody<T> {
    One(T),
    Many(Vec<T>),
}

/// The answer to a body that was one item (its receipt) or an array (`{items}`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ReceiptOrBatch {
    One(ItemReceipt),
    Many(BatchReceipt),
}

/// The answer to a mixed batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IngestReceiptBody {
    pub traces: Vec<ItemReceipt>,
    pub feedback: Vec<ItemReceipt>,
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageBody<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
