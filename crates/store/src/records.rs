//! What the store takes and returns, beside the domain types themselves.

use feedloop_core::auth::KeyRole;
use feedloop_core::feedback::Feedback;
use feedloop_core::trace::{Span, Trace, TracePart};
use feedloop_core::{FeedbackId, ProjectId, Timestamp, TraceId};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    pub created_at: Timestamp,
}

/// A key as stored: never the secret itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: i64,
    pub project_id: ProjectId,
    pub name: String,
    pub role: KeyRole,
    /// The first characters of the secret, for telling keys apart in lists.
    pub prefix: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
    /// Origins a public key may be used from (`https://app.example.com`); empty for secret keys.
    pub allowed_origins: Vec<String>,
}

/// A key to store: its hash, never the secret.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub role: KeyRole,
    pub hash: [u8; 32],
    pub prefix: String,
    /// Origins a public key may be used from; empty for secret keys.
    pub allowed_origins: Vec<String>,
}

/// Trace parts and feedback to store in one transaction. Traces go first, so feedback may refer
/// to a trace of the same batch.
#[derive(Debug, Clone, Default)]
pub struct IngestBatch {
    pub traces: Vec<TracePart>,
    pub feedback: Vec<Feedback>,
}

impl IngestBatch {
    pub fn len(&self) -> usize {
        self.traces.len() + self.feedback.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What happened to one item of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Created,
    /// A trace part merged into a stored trace.
    Merged,
    /// Feedback already stored with the same content: nothing changed.
    Duplicate,
}

/// One outcome per item, in the order of the batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReceipt {
    pub traces: Vec<Outcome>,
    pub feedback: Vec<Outcome>,
}

/// A trace as stored, with its place in the store's order.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrace {
    pub seq: i64,
    pub trace: Trace,
    /// Empty when listed; loaded for a single trace.
    pub spans: Vec<Span>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StoredFeedback {
    pub seq: i64,
    pub feedback: Feedback,
    pub received_at: Timestamp,
    pub superseded_by: Option<FeedbackId>,
    /// Whether the trace it refers to is stored.
    pub trace_linked: bool,
    /// Whether it marks its trace as a problem, with the project's signal polarities (see
    /// `Feedback::is_negative_in`); the `negative_feedback` filter reads the same flag.
    pub negative: bool,
}

impl StoredFeedback {
    /// The time the feedback sorts and filters by: the client's, else the arrival time.
    pub fn time(&self) -> Timestamp {
        self.feedback.created_at.unwrap_or(self.received_at)
    }
}

/// A trace and everything around it, for root-cause analysis.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceChain {
    pub trace: StoredTrace,
    pub feedback: Vec<StoredFeedback>,
    /// The traces just before and after this one in its session.
    pub previous: Option<StoredTrace>,
    pub next: Option<StoredTrace>,
}

/// A session's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub session_id: String,
    pub traces: Vec<(StoredTrace, Vec<StoredFeedback>)>,
    /// Feedback that names the session but whose trace has not arrived.
    pub unlinked_feedback: Vec<StoredFeedback>,
}

/// Counts for a project.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub traces: u64,
    pub spans: u64,
    pub feedback: u64,
    pub feedback_by_kind: BTreeMap<String, u64>,
}

/// A trace id read back from the store: it was checked when written, so a bad one is a bug.
pub(crate) fn trace_id(id: String) -> crate::Result<TraceId> {
    TraceId::parse("trace_id", id).map_err(|e| crate::StoreError::Internal(e.to_string()))
}
