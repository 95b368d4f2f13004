//! Feedback on the wire: common fields, a `kind`, and the payload under the key of that kind.
//!
//! ```json
//! {"id": "fb-1", "trace_id": "t-1", "kind": "rating", "rating": {"value": 0}}
//! {"id": "fb-2", "trace_id": "t-1", "kind": "category", "categories": ["too_vague"]}
//! ```
//! `kind` may be left out when exactly one payload is present.

use feedloop_core::feedback::{
    Annotation, Correction, Feedback, FeedbackKind, FeedbackValue, Rating, Signal, Source,
};
use feedloop_core::{FeedbackId, SpanId, Timestamp, TraceId, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// Client-chosen id: re-sending the same id with the same content is a no-op, with other
    /// content a 409. Generated when absent (then a retry stores a second item).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The trace this is about; it may arrive later.
    pub trace_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// `end_user` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_role: Option<String>,
    /// How sure the source is, 0..=1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// When the judgement was made; the arrival time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<FeedbackKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
    /// Reasons from the project's taxonomy (kind `category`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correction: Option<Correction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation: Option<Annotation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<Signal>,
}

/// Stored feedback as the API returns it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedbackView {
    #[serde(flatten)]
    pub feedback: FeedbackBody,
    /// When feedloop stored it.
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    /// The id of the later feedback that restates this one, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    /// Whether the trace it refers to has arrived.
    pub trace_linked: bool,
    /// Whether it marks the trace as a problem: a negative rating, a category, a correction, an
    /// annotation, or a signal whose type has negative polarity in the project's settings.
    pub negative: bool,
}

impl FeedbackBody {
    /// Converts to domain feedback. `new_id` supplies an id when the body has none.
    pub fn into_feedback(
        self,
        new_id: impl FnOnce() -> String,
    ) -> Result<Feedback, ValidationError> {
        let value = self.take_value()?;
        let feedback = Feedback {
            id: FeedbackId::parse("id", self.id.unwrap_or_else(new_id))?,
            trace_id: TraceId::parse("trace_id", self.trace_id)?,
            span_id: self
                .span_id
                .map(|id| SpanId::parse("span_id", id))
                .transpose()?,
            session_id: self.session_id,
            source: self.source.unwrap_or_default(),
            author: self.author,
            author_role: self.author_role,
            confidence: self.confidence,
            metadata: self.metadata,
            created_at: self.created_at,
            value,
        };
        feedback.check()?;
        Ok(feedback)
    }

    /// The payload that matches `kind` (or the only payload present), rejecting payloads of
    /// other kinds.
    fn take_value(&self) -> Result<FeedbackValue, ValidationError> {
        let present: Vec<FeedbackKind> = [
            (FeedbackKind::Rating, self.rating.is_some()),
            (FeedbackKind::Category, self.categories.is_some()),
            (FeedbackKind::Comment, self.comment.is_some()),
            (FeedbackKind::Correction, self.correction.is_some()),
            (FeedbackKind::Annotation, self.annotation.is_some()),
            (FeedbackKind::Signal, self.signal.is_some()),
        ]
        .into_iter()
        .filter_map(|(kind, is_present)| is_present.then_some(kind))
        .collect();
        let kind = match (self.kind, present.as_slice()) {
            (Some(kind), _) => kind,
            (None, [only]) => *only,
            (None, []) => {
                return Err(ValidationError::new(
                    "kind",
                    "is required: one of rating, category, comment, correction, annotation, signal",
                ));
            }
            (None, _) => {
                return Err(ValidationError::new(
                    "kind",
                    "is required when several payloads are present",
                ));
            }
        };
        if let Some(other) = present.iter().find(|p| **p != kind) {
            return Err(ValidationError::new(
                payload_field(*other),
                format!("does not belong to feedback of kind {}", kind.as_str()),
            ));
        }
        let missing = || {
            ValidationError::new(
                payload_field(kind),
                format!("is required for kind {}", kind.as_str()),
            )
        };
        Ok(match kind {
            FeedbackKind::Rating => FeedbackValue::Rating(self.rating.clone().ok_or_else(missing)?),
            FeedbackKind::Category => {
                FeedbackValue::Category(self.categories.clone().ok_or_else(missing)?)
            }
            FeedbackKind::Comment => {
                FeedbackValue::Comment(self.comment.clone().ok_or_else(missing)?)
            }
            FeedbackKind::Correction => {
                FeedbackValue::Correction(self.correction.clone().ok_or_else(missing)?)
            }
            FeedbackKind::Annotation => {
                FeedbackValue::Annotation(self.annotation.clone().ok_or_else(missing)?)
            }
            FeedbackKind::Signal => FeedbackValue::Signal(self.signal.clone().ok_or_else(missing)?),
        })
    }
}

/// The body key that carries a kind's payload.
pub fn payload_field(kind: FeedbackKind) -> &'static str {
    match kind {
        FeedbackKind::Category => "categories",
        other => other.as_str(),
    }
}

impl From<Feedback> for FeedbackBody {
    fn from(feedback: Feedback) -> Self {
        let mut body = FeedbackBody {
            id: Some(feedback.id.into_string()),
            trace_id: feedback.trace_id.into_string(),
            span_id: feedback.span_id.map(SpanId::into_string),
            session_id: feedback.session_id,
            source: Some(feedback.source),
            author: feedback.author,
            author_role: feedback.author_role,
            confidence: feedback.confidence,
            metadata: feedback.metadata,
            created_at: feedback.created_at,
            kind: Some(feedback.value.kind()),
            ..Default::default()
        };
        match feedback.value {
            FeedbackValue::Rating(rating) => body.rating = Some(rating),
            FeedbackValue::Category(categories) => body.categories = Some(categories),
            FeedbackValue::Comment(comment) => body.comment = Some(comment),
            FeedbackValue::Correction(correction) => body.correction = Some(correction),
            FeedbackValue::Annotation(annotation) => body.annotation = Some(annotation),
            FeedbackValue::Signal(signal) => body.signal = Some(signal),
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(value: Value) -> Result<Feedback, ValidationError> {
        let body: FeedbackBody = serde_json::from_value(value).unwrap();
        body.into_feedback(|| "generated".into())
    }

    #[test]
    fn kind_is_inferred_from_a_single_payload() {
        let feedback = parse(json!({"trace_id": "t", "rating": {"value": 1}})).unwrap();
        assert_eq!(feedback.id.as_str(), "generated");
        assert_eq!(feedback.value.kind(), FeedbackKind::Rating);
        assert_eq!(feedback.rating_sign().unwrap().as_str(), "positive");
    }

    #[test]
    fn payloads_must_match_the_kind() {
        let err =
            parse(json!({"trace_id": "t", "kind": "comment", "rating": {"value": 1}})).unwrap_err();
        assert_eq!(err.field, "rating");
        let err = parse(json!({"trace_id": "t", "kind": "correction"})).unwrap_err();
        assert_eq!(err.field, "correction");
        let err = parse(json!({"trace_id": "t"})).unwrap_err();
        assert_eq!(err.field, "kind");
    }

    #[test]
    fn ranges_are_checked_with_their_field_paths() {
        let err = parse(json!({"trace_id": "t", "rating": {"value": 7, "min": 1, "max": 5}}))
            .unwrap_err();
        assert_eq!(err.field, "rating.value");
        let err = parse(json!({"trace_id": "t", "confidence": 1.5, "comment": "x"})).unwrap_err();
        assert_eq!(err.field, "confidence");
        let err =
            parse(json!({"trace_id": "t", "annotation": {"start": 4, "end": 2, "quote": "ab"}}))
                .unwrap_err();
        assert_eq!(err.field, "annotation.end");
    }

    #[test]
    fn feedback_round_trips_through_the_wire_form() {
        let feedback = parse(json!({
            "id": "f", "trace_id": "t", "source": "expert", "categories": ["too_vague", "incomplete"]
        }))
        .unwrap();
        let body = FeedbackBody::from(feedback.clone());
        assert_eq!(body.into_feedback(|| unreachable!()).unwrap(), feedback);
    }
}
