//! The `Lessons` part of the store: lessons with their version history, each project's loop
//! settings, and injections (which lessons a query got, or would have got in the hold-out), from
//! which a lesson's effect on later feedback is counted.
//!
//! A lesson's provenance feedback is also indexed (`lesson_feedback`), so that automatic
//! proposals never cover the same feedback twice, whatever became of the first lesson.

use async_trait::async_trait;
use feedloop_core::feedback::{CorrectionKind, Feedback, FeedbackValue};
use feedloop_core::lesson::{InjectedLesson, Lesson, LessonStatus, LoopSettings};
use feedloop_core::{FeedbackId, InjectionId, LessonId, ProjectId, Timestamp, TraceId};

use crate::Result;

/// Metadata key under which an app logs the injection id with its trace; a trace that carries
/// it is linked to the injection when it is stored.
pub const INJECTION_METADATA_KEY: &str = "feedloop.injection_id";

/// The lessons one query got (or, held out, would have got).
#[derive(Debug, Clone, PartialEq)]
pub struct Injection {
    pub id: InjectionId,
    pub trace_id: Option<TraceId>,
    pub session_id: Option<String>,
    pub query: String,
    /// In the hold-out: the lessons were recorded, not injected.
    pub holdout: bool,
    pub lessons: Vec<InjectedLesson>,
    pub created_at: Timestamp,
}

/// What a lesson's effect is computed from: traces that got it, traces held out from it, and
/// how many of each drew negative feedback (explicit or implicit, not superseded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EffectCounts {
    pub impressions: u64,
    pub holdout_impressions: u64,
    /// Treated impressions whose trace is known.
    pub treated_traces: u64,
    pub treated_negative: u64,
    pub holdout_traces: u64,
    pub holdout_negative: u64,
}

impl EffectCounts {
    /// Counts from the rows of the effect query, one per side of the hold-out: (held out,
    /// impressions, distinct linked traces, of which with negative feedback).
    pub(crate) fn from_rows(rows: impl IntoIterator<Item = (bool, i64, i64, i64)>) -> Self {
        let mut counts = Self::default();
        for (holdout, impressions, traces, negative) in rows {
            let (impressions, traces, negative) = (
                impressions.unsigned_abs(),
                traces.unsigned_abs(),
                negative.unsigned_abs(),
            );
            if holdout {
                counts.holdout_impressions = impressions;
                counts.holdout_traces = traces;
                counts.holdout_negative = negative;
            } else {
                counts.impressions = impressions;
                counts.treated_traces = traces;
                counts.treated_negative = negative;
            }
        }
        counts
    }
}

/// The latest write numbers of what lesson matching reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EvidenceWatermark {
    pub feedback: i64,
    pub vectors: i64,
    pub lessons: i64,
}

/// Negative feedback about a trace with a query, for proposals and the repeat-mistake rate.
#[derive(Debug, Clone, PartialEq)]
pub struct NegativeCase {
    pub feedback_id: FeedbackId,
    pub trace_id: TraceId,
    pub trace_seq: i64,
    /// The trace's input.
    pub query: String,
    pub created_at: Timestamp,
    /// The best answer given in any correction of the trace.
    pub correction: Option<String>,
    pub categories: Vec<String>,
    pub comment: Option<String>,
    /// The trace's vector of the asked model, once embedded.
    pub vector: Option<Vec<f32>>,
}

impl NegativeCase {
    /// The case of negative `feedback` on a trace (its sequence number and input), created at
    /// `created_at` (the stored time: the client's, else the arrival), given the current
    /// corrections and comments on the same trace, oldest first (`siblings`).
    pub(crate) fn new(
        feedback: Feedback,
        trace_seq: i64,
        query: String,
        created_at: Timestamp,
        vector: Option<Vec<f32>>,
        siblings: &[Feedback],
    ) -> Self {
        let correction = match &feedback.value {
            FeedbackValue::Correction(correction) => Some(correction.text.clone()),
            _ => best_correction(siblings),
        };
        let comment = match &feedback.value {
            FeedbackValue::Annotation(annotation) if annotation.comment.is_some() => {
                annotation.comment.clone()
            }
            _ => siblings
                .iter()
                .rev()
                .find_map(|sibling| match &sibling.value {
                    FeedbackValue::Comment(text) => Some(text.clone()),
                    _ => None,
                }),
        };
        Self {
            categories: feedback.value.categories().to_vec(),
            feedback_id: feedback.id,
            trace_id: feedback.trace_id,
            trace_seq,
            query,
            created_at,
            correction,
            comment,
            vector,
        }
    }
}

/// The best answer among corrections (oldest first): the latest full answer, else the latest
/// correction of any kind.
fn best_correction(feedback: &[Feedback]) -> Option<String> {
    let corrections = feedback.iter().rev().filter_map(|f| match &f.value {
        FeedbackValue::Correction(correction) => Some(correction),
        _ => None,
    });
    let mut latest = None;
    for correction in corrections {
        if correction.kind == CorrectionKind::Answer {
            return Some(correction.text.clone());
        }
        latest.get_or_insert_with(|| correction.text.clone());
    }
    latest
}

#[async_trait]
pub trait Lessons: Send + Sync {
    /// Stores a new lesson at version 1 and indexes its provenance feedback. `Conflict` if the id
    /// is taken.
    async fn create_lesson(&self, project: ProjectId, lesson: &Lesson) -> Result<()>;

    /// Stores `lesson` as the next version. `Conflict` (field `version`) unless the stored
    /// version is `lesson.version - 1`, so two editors cannot overwrite each other.
    async fn update_lesson(&self, project: ProjectId, lesson: &Lesson) -> Result<()>;

    async fn lesson(&self, project: ProjectId, id: &LessonId) -> Result<Option<Lesson>>;

    /// Lessons by status (all when `None`), most recently changed first.
    async fn list_lessons(
        &self,
        project: ProjectId,
        status: Option<LessonStatus>,
        limit: u32,
    ) -> Result<Vec<Lesson>>;

    /// Every version of a lesson, oldest first.
    async fn lesson_versions(&self, project: ProjectId, id: &LessonId) -> Result<Vec<Lesson>>;

    /// Lessons of every project changed after `after` (a change number), in change order, with
    /// their change numbers: what lesson caches follow.
    async fn lessons_changed_since(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, ProjectId, Lesson)>>;

    async fn loop_settings(&self, project: ProjectId) -> Result<LoopSettings>;

    async fn set_loop_settings(&self, project: ProjectId, settings: &LoopSettings) -> Result<()>;

    async fn record_injection(&self, project: ProjectId, injection: &Injection) -> Result<()>;

    async fn injection(&self, project: ProjectId, id: &InjectionId) -> Result<Option<Injection>>;

    /// Links an injection to the trace it went into; false if there is no such injection.
    async fn link_injection(
        &self,
        project: ProjectId,
        id: &InjectionId,
        trace_id: &TraceId,
    ) -> Result<bool>;

    async fn lesson_effect(&self, project: ProjectId, id: &LessonId) -> Result<EffectCounts>;

    /// Current (not superseded) negative feedback created at or after `since` on traces with
    /// an input, oldest first, with the traces' vectors of `model`; `uncovered` leaves out
    /// feedback that some lesson's provenance already names.
    async fn negative_cases(
        &self,
        project: ProjectId,
        model: &str,
        since: Timestamp,
        uncovered: bool,
        limit: u32,
    ) -> Result<Vec<NegativeCase>>;

    /// Vectors of `model` of traces with a current positive rating and no current negative
    /// feedback: the traffic that went well, which bounds a lesson's neighbourhood. Newest
    /// first, at most `limit`.
    async fn contrast_vectors(
        &self,
        project: ProjectId,
        model: &str,
        limit: u32,
    ) -> Result<Vec<(TraceId, Vec<f32>)>>;

    /// Grows whenever feedback, vectors or lessons are written, in any project: caches built
    /// from them compare it to know they are stale.
    async fn evidence_watermark(&self) -> Result<EvidenceWatermark>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use feedloop_core::feedback::{Correction, Rating, Source};

    fn feedback(id: &str, value: FeedbackValue) -> Feedback {
        Feedback {
            id: FeedbackId::parse("id", id).unwrap(),
            trace_id: TraceId::parse("trace_id", "t1").unwrap(),
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

    fn correction(id: &str, text: &str, kind: CorrectionKind) -> Feedback {
        feedback(
            id,
            FeedbackValue::Correction(Correction {
                text: text.into(),
                kind,
            }),
        )
    }

    #[test]
    fn a_case_takes_the_best_correction_and_latest_comment_of_its_trace() {
        let down = feedback(
            "down",
            FeedbackValue::Rating(Rating {
                value: 0.0,
                min: 0.0,
                max: 1.0,
                compared_to: None,
            }),
        );
        let siblings = [
            correction("c1", "the full answer", CorrectionKind::Answer),
            feedback("n1", FeedbackValue::Comment("first".into())),
            correction("c2", "a missing fact", CorrectionKind::MissingFact),
            feedback("n2", FeedbackValue::Comment("second".into())),
        ];
        let case = NegativeCase::new(down, 7, "q".into(), Timestamp::UNIX_EPOCH, None, &siblings);
        assert_eq!(case.correction.as_deref(), Some("the full answer"));
        assert_eq!(case.comment.as_deref(), Some("second"));

        // A correction is its own answer, whatever else the trace has.
        let own = correction("c3", "mine", CorrectionKind::Rewording);
        let case = NegativeCase::new(own, 7, "q".into(), Timestamp::UNIX_EPOCH, None, &siblings);
        assert_eq!(case.correction.as_deref(), Some("mine"));
        assert_eq!(
            best_correction(&siblings[2..]).as_deref(),
            Some("a missing fact")
        );
    }
}
