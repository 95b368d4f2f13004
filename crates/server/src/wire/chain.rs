//! Read views: a trace with its chain, a session's timeline, and the conversions from stored
//! records.

use feedloop_core::signals::Satisfaction;
use feedloop_store::{Session, StoredFeedback, StoredTrace, TraceChain};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{FeedbackBody, FeedbackView, TimelineEvent, TraceView};

/// A trace with everything around it: spans (inside `trace`), feedback, and its neighbours in the
/// session.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TraceChainBody {
    pub trace: TraceView,
    pub feedback: Vec<FeedbackView>,
    /// The satisfaction estimate from the trace's current feedback, explicit and implicit,
    /// with the project's signal weights; absent when no feedback votes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satisfaction: Option<Satisfaction>,
    /// Present when the trace belongs to a session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionNeighbours>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionNeighbours {
    pub session_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<TraceView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<TraceView>,
}

/// A session's timeline: its traces in order, each with its feedback.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionBody {
    pub session_id: String,
    pub traces: Vec<SessionEntry>,
    /// Feedback that names the session but whose trace has not arrived yet.
    pub unlinked_feedback: Vec<FeedbackView>,
    /// The session in time order: each query (a trace starting) and each signal, client-reported
    /// or derived, on the traces of the session.
    pub timeline: Vec<TimelineEvent>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionEntry {
    pub trace: TraceView,
    pub feedback: Vec<FeedbackView>,
    /// As on a trace: the satisfaction estimate, absent when no feedback votes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satisfaction: Option<Satisfaction>,
}

impl From<StoredTrace> for TraceView {
    fn from(stored: StoredTrace) -> Self {
        TraceView::new(stored.trace, stored.spans)
    }
}

impl From<StoredFeedback> for FeedbackView {
    fn from(stored: StoredFeedback) -> Self {
        FeedbackView {
            feedback: FeedbackBody::from(stored.feedback),
            received_at: stored.received_at,
            superseded_by: stored.superseded_by.map(|id| id.into_string()),
            trace_linked: stored.trace_linked,
            negative: stored.negative,
        }
    }
}

impl From<TraceChain> for TraceChainBody {
    fn from(chain: TraceChain) -> Self {
        let session = chain
            .trace
            .trace
            .session_id
            .clone()
            .map(|session_id| SessionNeighbours {
                session_id,
                previous: chain.previous.map(TraceView::from),
                next: chain.next.map(TraceView::from),
            });
        TraceChainBody {
            trace: chain.trace.into(),
            feedback: chain.feedback.into_iter().map(FeedbackView::from).collect(),
            satisfaction: None,
            session,
        }
    }
}

impl From<Session> for SessionBody {
    fn from(session: Session) -> Self {
        let mut timeline = Vec::new();
        for (trace, feedback) in &session.traces {
            timeline.push(TimelineEvent::query(
                trace.trace.id.as_str(),
                trace.trace.started_at,
            ));
            timeline.extend(
                feedback
                    .iter()
                    .filter(|item| item.superseded_by.is_none())
                    .filter_map(TimelineEvent::signal),
            );
        }
        timeline.extend(
            session
                .unlinked_feedback
                .iter()
                .filter_map(TimelineEvent::signal),
        );
        // A query comes before the signals of the same instant (a rephrase signal is dated
        // by the follow-up that revealed it); otherwise the sort is stable.
        timeline.sort_by_key(|event| (event.at, event.event != "query"));
        SessionBody {
            session_id: session.session_id,
            traces: session
                .traces
                .into_iter()
                .map(|(trace, feedback)| SessionEntry {
                    trace: trace.into(),
                    feedback: feedback.into_iter().map(FeedbackView::from).collect(),
                    satisfaction: None,
                })
                .collect(),
            unlinked_feedback: session
                .unlinked_feedback
                .into_iter()
                .map(FeedbackView::from)
                .collect(),
            timeline,
        }
    }
}
