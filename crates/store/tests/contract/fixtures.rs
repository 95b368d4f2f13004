//! Small builders and readers shared by the contract cases: fixed times, ids, trace parts,
//! feedback values, and list helpers that read a whole list in one page.

use feedloop_core::feedback::{Feedback, FeedbackValue, Rating, Source};
use feedloop_core::filter::{Filter, Order, PageRequest};
use feedloop_core::trace::TracePart;
use feedloop_core::{FeedbackId, ProjectId, SpanId, Timestamp, TraceId};
use feedloop_store::{IngestBatch, IngestReceipt, Store, StoredFeedback, StoredTrace};
use serde_json::{Map, Value};

/// 2026-01-01T00:00:00Z: every time in the suite is an offset from it.
const EPOCH_SECONDS: i64 = 1_767_225_600;

/// The suite's fixed time plus `seconds`.
pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(EPOCH_SECONDS + seconds).expect("a time in range")
}

pub fn trace_id(id: &str) -> TraceId {
    TraceId::parse("trace_id", id).expect("a valid trace id")
}

pub fn span_id(id: &str) -> SpanId {
    SpanId::parse("span_id", id).expect("a valid span id")
}

pub fn feedback_id(id: &str) -> FeedbackId {
    FeedbackId::parse("id", id).expect("a valid feedback id")
}

/// A trace part with only an id and a start time.
pub fn trace_part(id: &str, started: i64) -> TracePart {
    TracePart {
        id: trace_id(id),
        started_at: Some(at(started)),
        ..Default::default()
    }
}

/// Feedback from an anonymous end user with no time of its own; set other fields with
/// struct update syntax.
/// A trace with an input, started at `started` (seconds after the suite's epoch).
pub fn asked(id: &str, started: i64, input: &str) -> TracePart {
    TracePart {
        input: Some(input.to_owned()),
        ..trace_part(id, started)
    }
}

pub fn feedback(id: &str, trace: &str, value: FeedbackValue) -> Feedback {
    Feedback {
        id: feedback_id(id),
        trace_id: trace_id(trace),
        span_id: None,
        session_id: None,
        source: Source::EndUser,
        author: None,
        author_role: None,
        confidence: None,
        metadata: Map::new(),
        created_at: None,
        value,
    }
}

/// A thumbs up (`true`) or down on the binary scale 0..1.
pub fn thumbs(up: bool) -> FeedbackValue {
    FeedbackValue::Rating(Rating {
        value: if up { 1.0 } else { 0.0 },
        min: 0.0,
        max: 1.0,
        compared_to: None,
    })
}

pub fn comment(text: &str) -> FeedbackValue {
    FeedbackValue::Comment(text.to_owned())
}

pub fn categories(names: &[&str]) -> FeedbackValue {
    FeedbackValue::Category(names.iter().map(|name| (*name).to_owned()).collect())
}

/// A JSON object from key/value pairs.
pub fn object<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect()
}

pub async fn new_project(store: &dyn Store, name: &str) -> ProjectId {
    store
        .create_project(name, at(0))
        .await
        .expect("the project is created")
        .id
}

pub async fn ingest_traces(
    store: &dyn Store,
    project: ProjectId,
    traces: Vec<TracePart>,
    now: Timestamp,
) -> IngestReceipt {
    let batch = IngestBatch {
        traces,
        feedback: Vec::new(),
    };
    store
        .ingest(project, batch, now)
        .await
        .expect("the traces are stored")
}

pub async fn ingest_feedback(
    store: &dyn Store,
    project: ProjectId,
    feedback: Vec<Feedback>,
    now: Timestamp,
) -> IngestReceipt {
    let batch = IngestBatch {
        traces: Vec::new(),
        feedback,
    };
    store
        .ingest(project, batch, now)
        .await
        .expect("the feedback is stored")
}

/// A page large enough to hold any list of the suite, oldest first.
pub fn whole_list() -> PageRequest {
    PageRequest {
        limit: 1000,
        after: None,
        order: Order::Asc,
    }
}

pub async fn all_traces(
    store: &dyn Store,
    project: ProjectId,
    filter: &Filter,
) -> Vec<StoredTrace> {
    let page = store
        .list_traces(project, filter, whole_list())
        .await
        .expect("traces are listed");
    assert_eq!(page.next, None, "the whole list fits in one page");
    page.items
}

pub async fn all_feedback(
    store: &dyn Store,
    project: ProjectId,
    filter: &Filter,
) -> Vec<StoredFeedback> {
    let page = store
        .list_feedback(project, filter, whole_list())
        .await
        .expect("feedback is listed");
    assert_eq!(page.next, None, "the whole list fits in one page");
    page.items
}

pub fn trace_ids(traces: &[StoredTrace]) -> Vec<&str> {
    traces.iter().map(|t| t.trace.id.as_str()).collect()
}

pub fn feedback_ids(feedback: &[StoredFeedback]) -> Vec<&str> {
    feedback.iter().map(|f| f.feedback.id.as_str()).collect()
}

/// One stored feedback item by id, from the whole list.
pub async fn stored_feedback(store: &dyn Store, project: ProjectId, id: &str) -> StoredFeedback {
    all_feedback(store, project, &Filter::default())
        .await
        .into_iter()
        .find(|f| f.feedback.id.as_str() == id)
        .unwrap_or_else(|| panic!("feedback {id:?} is stored"))
}

/// A thumbs rating by a named author, made at `created` (seconds after the suite's epoch).
pub fn rating_by(id: &str, trace: &str, author: &str, up: bool, created: i64) -> Feedback {
    Feedback {
        author: Some(author.to_owned()),
        created_at: Some(at(created)),
        ..feedback(id, trace, thumbs(up))
    }
}
