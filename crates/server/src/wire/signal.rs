//! Signals on the wire: the flat body of `POST /api/v1/signals` (a shorthand for feedback of
//! kind `signal`), the recompute request and the timeline entries of a session.
//!
//! ```json
//! {"id": "sig-1", "trace_id": "t-1", "type": "copy", "range": {"start": 0, "end": 42}}
//! {"id": "sig-2", "trace_id": "t-1", "type": "edit", "edited_text": "the fee is 3 %"}
//! {"id": "sig-3", "trace_id": "t-1", "type": "dwell", "value": 12500}
//! ```

use feedloop_core::Timestamp;
use feedloop_core::feedback::{FeedbackValue, Signal, Source};
use feedloop_store::StoredFeedback;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::FeedbackBody;

/// A character range of the output (Unicode scalar values, end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CharRange {
    pub start: u64,
    pub end: u64,
}

/// One implicit signal a client reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalBody {
    /// Client-chosen id: re-sending it with the same content is a no-op, with other content a
    /// 409. Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub trace_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// copy, regenerate, edit (after copy), share, dwell, abandon, rephrase, frustration, or a
    /// custom type the project declared in its signal settings.
    #[serde(rename = "type")]
    pub signal_type: String,
    /// dwell: milliseconds (required); copy: characters copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// copy: the part of the answer copied; the whole answer when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<CharRange>,
    /// edit: the copied text as the user changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_text: Option<String>,
    /// abandon: whether the page went away before the answer was complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_complete: Option<bool>,
    /// Anything else the client wants kept with the signal.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub details: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// When it happened; the arrival time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<Timestamp>,
}

impl SignalBody {
    /// The same signal as a feedback body of kind `signal` from the end user; the structured
    /// fields go into the signal's details (`start`/`end`, `edited_text`, `before_complete`).
    pub fn into_feedback_body(self) -> FeedbackBody {
        let mut details = self.details;
        if let Some(range) = self.range {
            details.insert("start".into(), json!(range.start));
            details.insert("end".into(), json!(range.end));
        }
        if let Some(text) = self.edited_text {
            details.insert("edited_text".into(), json!(text));
        }
        if let Some(flag) = self.before_complete {
            details.insert("before_complete".into(), json!(flag));
        }
        FeedbackBody {
            id: self.id,
            trace_id: self.trace_id,
            span_id: self.span_id,
            session_id: self.session_id,
            source: Some(Source::EndUser),
            author: self.author,
            confidence: self.confidence,
            metadata: self.metadata,
            created_at: self.created_at,
            signal: Some(Signal {
                signal_type: self.signal_type,
                value: self.value,
                details,
            }),
            ..FeedbackBody::default()
        }
    }
}

/// The field of a [`SignalBody`] that a signal check's field names (`signal.details.start` →
/// `range.start`, …).
pub fn signal_body_field(feedback_field: &str) -> String {
    let (prefix, rest) = match feedback_field.find("signal.") {
        Some(at) => (
            &feedback_field[..at],
            &feedback_field[at + "signal.".len()..],
        ),
        None => return feedback_field.to_owned(),
    };
    let mapped = match rest {
        "details.start" => "range.start",
        "details.end" => "range.end",
        "details.edited_text" => "edited_text",
        "details.before_complete" => "before_complete",
        other => other,
    };
    format!("{prefix}{mapped}")
}

/// Asks to derive some rules' signals again over the project's whole history.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecomputeBody {
    /// rephrase, frustration, regenerate, abandon; all of them when absent.
    #[serde(default)]
    pub rules: Option<Vec<String>>,
}

/// One event of a session's timeline: a query (a trace starting) or a signal.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TimelineEvent {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// `query` or `signal`.
    pub event: String,
    pub trace_id: String,
    /// Signals: the feedback id, type, source, rule (derived signals), confidence and value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "type")]
    pub signal_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

impl TimelineEvent {
    pub fn query(trace_id: &str, at: Timestamp) -> Self {
        Self {
            at,
            event: "query".into(),
            trace_id: trace_id.to_owned(),
            feedback_id: None,
            signal_type: None,
            source: None,
            rule: None,
            confidence: None,
            value: None,
        }
    }

    /// The event of a stored signal; `None` for other kinds of feedback and superseded items.
    pub fn signal(stored: &StoredFeedback) -> Option<Self> {
        let FeedbackValue::Signal(signal) = &stored.feedback.value else {
            return None;
        };
        Some(Self {
            at: stored.time(),
            event: "signal".into(),
            trace_id: stored.feedback.trace_id.as_str().to_owned(),
            feedback_id: Some(stored.feedback.id.as_str().to_owned()),
            signal_type: Some(signal.signal_type.clone()),
            source: Some(stored.feedback.source),
            rule: signal
                .details
                .get("rule")
                .and_then(Value::as_str)
                .map(str::to_owned),
            confidence: stored.feedback.confidence,
            value: signal.value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_check_fields_are_named_as_the_signal_body_names_them() {
        assert_eq!(
            signal_body_field("[2].signal.details.start"),
            "[2].range.start"
        );
        assert_eq!(signal_body_field("signal.type"), "type");
        assert_eq!(signal_body_field("[0].trace_id"), "[0].trace_id");
    }
}
