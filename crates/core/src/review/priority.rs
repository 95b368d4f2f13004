//! Triage priority: which item a reviewer should see first. A pure function of four inputs,
//! each brought to 0..=1 and weighted:
//!
//! | input | weight | scale |
//! |---|---|---|
//! | severity of the trace's current feedback | 0.45 | see [`severity`] |
//! | semantic neighbourhood: traces with negative feedback near this one | 0.25 | `ln(1 + n) / ln(1 + 50)`, capped at 1 |
//! | the user's role | 0.15 | the queue's `role_weights` (unlisted roles 0) |
//! | recency of the trace | 0.15 | halves every 24 hours of age |
//!
//! Severity leads because it is what the user said; a problem with many neighbours comes next
//! because fixing it fixes many (50 neighbours, the most a neighbourhood search counts, is the
//! full score); role and recency break ties between otherwise similar items.

use jiff::{SignedDuration, Timestamp};

use crate::feedback::{Feedback, FeedbackValue, RatingSign};

pub const SEVERITY_WEIGHT: f64 = 0.45;
pub const NEIGHBOURHOOD_WEIGHT: f64 = 0.25;
pub const ROLE_WEIGHT: f64 = 0.15;
pub const RECENCY_WEIGHT: f64 = 0.15;
/// A neighbourhood this large scores fully.
pub const FULL_NEIGHBOURHOOD: usize = 50;
/// Recency halves with every this much age.
pub const RECENCY_HALF_LIFE: SignedDuration = SignedDuration::from_hours(24);

/// What the priority is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriorityInputs {
    /// 0..=1, see [`severity`].
    pub severity: f64,
    /// Traces with current negative feedback similar to this one.
    pub num_neighbours: usize,
    /// The queue's weight of the trace's user role, 0..=1.
    pub role_weight: f64,
    /// How old the trace is.
    pub age: SignedDuration,
}

/// The priority, 0..=1.
pub fn priority(inputs: PriorityInputs) -> f64 {
    let neighbourhood = ((1.0 + inputs.num_neighbours as f64).ln()
        / (1.0 + FULL_NEIGHBOURHOOD as f64).ln())
    .min(1.0);
    let age_secs = inputs.age.as_secs_f64().max(0.0);
    let recency = 0.5f64.powf(age_secs / RECENCY_HALF_LIFE.as_secs_f64());
    SEVERITY_WEIGHT * inputs.severity.clamp(0.0, 1.0)
        + NEIGHBOURHOOD_WEIGHT * neighbourhood
        + ROLE_WEIGHT * inputs.role_weight.clamp(0.0, 1.0)
        + RECENCY_WEIGHT * recency
}

/// The age of a trace that started at `started_at`, at `now`.
pub fn age(started_at: Timestamp, now: Timestamp) -> SignedDuration {
    now.duration_since(started_at)
}

/// How bad the current feedback says the trace is, 0..=1: each negative item has a weight (a
/// correction 1.0, an annotation 0.8, categories 0.7, a negative rating 0.6 scaled by how far
/// below the middle of its scale it is, a frustration signal 0.5, other negative signals 0.3), and
/// the items combine as independent evidence, `1 − Π(1 − w)`, so more complaints raise it
/// without passing 1. Superseded feedback should be left out by the caller.
pub fn severity<'a>(feedback: impl IntoIterator<Item = &'a Feedback>) -> f64 {
    let clear = feedback
        .into_iter()
        .filter(|item| item.is_negative())
        .map(item_severity)
        .fold(1.0, |clear, weight| clear * (1.0 - weight));
    1.0 - clear
}

fn item_severity(item: &Feedback) -> f64 {
    match &item.value {
        FeedbackValue::Correction(_) => 1.0,
        FeedbackValue::Annotation(_) => 0.8,
        FeedbackValue::Category(_) => 0.7,
        FeedbackValue::Rating(rating) if rating.sign() == RatingSign::Negative => {
            let middle = (rating.min + rating.max) / 2.0;
            let depth = (middle - rating.value) / (middle - rating.min);
            0.6 * (0.5 + 0.5 * depth.clamp(0.0, 1.0))
        }
        FeedbackValue::Signal(signal) if signal.signal_type == "frustration" => 0.5,
        FeedbackValue::Signal(_) => 0.3,
        FeedbackValue::Rating(_) | FeedbackValue::Comment(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedback::{Correction, Rating, Source};
    use crate::{FeedbackId, TraceId};

    fn feedback(value: FeedbackValue) -> Feedback {
        Feedback {
            id: FeedbackId::parse("id", "f").unwrap(),
            trace_id: TraceId::parse("id", "t").unwrap(),
            span_id: None,
            session_id: None,
            source: Source::EndUser,
            author: None,
            author_role: None,
            confidence: None,
            metadata: Default::default(),
            created_at: None,
            value,
        }
    }

    fn thumbs_down() -> Feedback {
        feedback(FeedbackValue::Rating(Rating {
            value: 0.0,
            min: 0.0,
            max: 1.0,
            compared_to: None,
        }))
    }

    #[test]
    fn severity_grows_with_evidence_and_stays_below_one() {
        assert_eq!(severity([]), 0.0);
        let thumbs = severity([&thumbs_down()]);
        assert!((thumbs - 0.6).abs() < 1e-12);
        let correction = feedback(FeedbackValue::Correction(Correction {
            text: "x".into(),
            kind: Default::default(),
        }));
        assert_eq!(severity([&correction]), 1.0);
        let both = severity([
            &thumbs_down(),
            &feedback(FeedbackValue::Category(vec!["a".into()])),
        ]);
        assert!(both > thumbs && both < 1.0);
        // Praise is not severity.
        let up = feedback(FeedbackValue::Rating(Rating {
            value: 1.0,
            min: 0.0,
            max: 1.0,
            compared_to: None,
        }));
        assert_eq!(severity([&up]), 0.0);
    }

    #[test]
    fn priority_follows_the_documented_weights() {
        let base = PriorityInputs {
            severity: 0.0,
            num_neighbours: 0,
            role_weight: 0.0,
            age: SignedDuration::from_hours(24 * 365),
        };
        assert!(priority(base) < 1e-6);
        let all = PriorityInputs {
            severity: 1.0,
            num_neighbours: FULL_NEIGHBOURHOOD,
            role_weight: 1.0,
            age: SignedDuration::ZERO,
        };
        assert!((priority(all) - 1.0).abs() < 1e-12);
        let day_old = PriorityInputs {
            age: RECENCY_HALF_LIFE,
            ..base
        };
        assert!((priority(day_old) - RECENCY_WEIGHT / 2.0).abs() < 1e-9);
        // Severity outweighs a large neighbourhood.
        let severe = PriorityInputs {
            severity: 1.0,
            ..base
        };
        let crowded = PriorityInputs {
            num_neighbours: 1_000,
            ..base
        };
        assert!(priority(severe) > priority(crowded));
    }
}
