//! The per-trace satisfaction estimate: a weighted vote of the trace's current feedback,
//! explicit and implicit, shrunk towards "unknown".
//!
//! Each current (not superseded) feedback item casts `polarity × weight × confidence`:
//! - a rating: its position on the scale, -1 (bottom) .. 1 (top), times `explicit_weight`;
//! - categories, a correction or an annotation: -1 times `explicit_weight`;
//! - a comment: nothing;
//! - a signal: its type's polarity and weight from the project's settings; a dwell counts in
//!   proportion to its time up to 30 s; a type the settings do not know counts nothing.
//!
//! Confidence defaults to 1. The estimate is `Σ votes / (1 + Σ |weights|)`, in -1..1: the `1`
//! is a prior of one neutral vote, so that one weak signal cannot make a trace look certain
//! either way. A trace with no voting feedback has no estimate.

use serde::{Deserialize, Serialize};

use super::SignalSettings;
use crate::feedback::{Feedback, FeedbackValue};

/// Dwell time at which a dwell signal counts its full weight.
const FULL_DWELL_MS: f64 = 30_000.0;

/// Weight of the neutral prior vote.
const PRIOR_WEIGHT: f64 = 1.0;

/// A trace's satisfaction estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Satisfaction {
    /// -1 (certainly unhappy) .. 1 (certainly satisfied).
    pub score: f64,
    /// The sum of the votes' weights: how much evidence the score rests on.
    pub evidence_weight: f64,
    /// How many feedback items voted.
    pub num_votes: u32,
}

/// The vote of one feedback item: (signed vote, its weight); `None` if it does not vote.
pub fn vote(feedback: &Feedback, settings: &SignalSettings) -> Option<(f64, f64)> {
    let confidence = feedback.confidence.unwrap_or(1.0);
    let (direction, weight) = match &feedback.value {
        FeedbackValue::Rating(rating) => {
            let middle = (rating.min + rating.max) / 2.0;
            let half = (rating.max - rating.min) / 2.0;
            ((rating.value - middle) / half, settings.explicit_weight)
        }
        FeedbackValue::Category(_)
        | FeedbackValue::Correction(_)
        | FeedbackValue::Annotation(_) => (-1.0, settings.explicit_weight),
        FeedbackValue::Comment(_) => return None,
        FeedbackValue::Signal(signal) => {
            let type_settings = settings.of(&signal.signal_type)?;
            let scale = if signal.signal_type == "dwell" {
                (signal.value.unwrap_or(0.0) / FULL_DWELL_MS).clamp(0.0, 1.0)
            } else {
                1.0
            };
            (type_settings.polarity.sign(), type_settings.weight * scale)
        }
    };
    let weight = weight * confidence;
    if direction == 0.0 || weight <= 0.0 {
        return None;
    }
    Some((direction * weight, weight))
}

/// The estimate from a trace's current feedback (pass only items not superseded).
pub fn estimate<'a>(
    feedback: impl IntoIterator<Item = &'a Feedback>,
    settings: &SignalSettings,
) -> Option<Satisfaction> {
    let (mut sum, mut total_weight, mut num_votes) = (0.0, 0.0, 0u32);
    for item in feedback {
        if let Some((signed, weight)) = vote(item, settings) {
            sum += signed;
            total_weight += weight;
            num_votes += 1;
        }
    }
    (num_votes > 0).then(|| Satisfaction {
        score: sum / (PRIOR_WEIGHT + total_weight),
        evidence_weight: total_weight,
        num_votes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn feedback(value: serde_json::Value) -> Feedback {
        let mut doc = json!({"id": "f", "trace_id": "t", "source": "end_user"});
        doc.as_object_mut()
            .unwrap()
            .extend(value.as_object().unwrap().clone());
        serde_json::from_value(doc).unwrap()
    }

    #[test]
    fn explicit_and_implicit_feedback_vote_with_their_weights() {
        let settings = SignalSettings::default();
        let thumbs_down = feedback(json!({"kind": "rating", "value": {"value": 0.0}}));
        let copy = feedback(json!({"kind": "signal", "value": {"type": "copy"}}));
        let regenerate = feedback(json!({"kind": "signal", "value": {"type": "regenerate"}}));
        // A thumbs down: -2 / (1 + 2).
        let one = estimate([&thumbs_down], &settings).unwrap();
        assert!((one.score + 2.0 / 3.0).abs() < 1e-9, "{one:?}");
        // A copy alone is mildly positive: 0.5 / 1.5.
        let copied = estimate([&copy], &settings).unwrap();
        assert!((copied.score - 1.0 / 3.0).abs() < 1e-9);
        // A copy and a regenerate: (0.5 - 1) / (1 + 1.5).
        let mixed = estimate([&copy, &regenerate], &settings).unwrap();
        assert!((mixed.score + 0.2).abs() < 1e-9);
        assert_eq!(mixed.num_votes, 2);
    }

    #[test]
    fn comments_and_unknown_types_do_not_vote_and_confidence_scales() {
        let settings = SignalSettings::default();
        let comment = feedback(json!({"kind": "comment", "value": "hm"}));
        let unknown = feedback(json!({"kind": "signal", "value": {"type": "wiggle"}}));
        assert_eq!(estimate([&comment, &unknown], &settings), None);
        let mut weak = feedback(json!({"kind": "signal", "value": {"type": "abandon"}}));
        weak.confidence = Some(0.3);
        let (signed, weight) = vote(&weak, &settings).unwrap();
        assert!((signed + 0.15).abs() < 1e-9 && (weight - 0.15).abs() < 1e-9);
        let short =
            feedback(json!({"kind": "signal", "value": {"type": "dwell", "value": 15000.0}}));
        assert!((vote(&short, &settings).unwrap().1 - 0.1).abs() < 1e-9);
    }
}
