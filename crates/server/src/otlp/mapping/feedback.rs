//! Feedback carried over OTLP:
//!
//! - OpenInference annotations, `annotations.N.annotation.{name,label,score,explanation,
//!   annotator_kind}`, on an evaluator span. The target is the span the evaluator links to (its
//!   first span link), else its parent span, in the linked (or its own) trace.
//! - The GenAI `gen_ai.evaluation.result` event (`gen_ai.evaluation.name`,
//!   `gen_ai.evaluation.score.value`, `gen_ai.evaluation.score.label`,
//!   `gen_ai.evaluation.explanation`) on the span it judges.
//!
//! Each evaluation becomes a rating when it has a score within 0..=1 or a label that says pass or
//! fail, else a comment; an explanation beside a rating becomes a comment of its own. The
//! evaluator's name is the author, so a later evaluation by the same evaluator supersedes the
//! earlier one. Ids are derived from the span, so a re-sent export is a duplicate, not new
//! feedback.

use feedloop_core::feedback::{Feedback, FeedbackValue, Rating, Source};
use feedloop_core::{FeedbackId, SpanId, Timestamp, TraceId};
use serde_json::{Map, Value};

use super::attributes::Attributes;

/// Labels that say an output passed or failed an evaluation.
const PASSING_LABELS: [&str; 10] = [
    "correct", "pass", "passed", "good", "positive", "yes", "true", "factual", "relevant",
    "helpful",
];
const FAILING_LABELS: [&str; 11] = [
    "incorrect",
    "fail",
    "failed",
    "bad",
    "negative",
    "no",
    "false",
    "hallucinated",
    "irrelevant",
    "unhelpful",
    "toxic",
];

/// One judgement read from OTLP, before it becomes feedback.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub name: Option<String>,
    pub score: Option<f64>,
    pub label: Option<String>,
    pub explanation: Option<String>,
    pub source: Source,
    pub created_at: Option<Timestamp>,
}

/// Where an evaluation points.
#[derive(Debug, Clone)]
pub struct Target {
    pub trace_id: TraceId,
    pub span_id: Option<SpanId>,
}

/// The annotations on an evaluator span.
pub fn annotations(attributes: &Attributes, created_at: Option<Timestamp>) -> Vec<Evaluation> {
    attributes
        .indexed("annotations.")
        .into_iter()
        .map(|fields| {
            let text = |key: &str| match fields.get(key) {
                Some(Value::String(text)) if !text.is_empty() => Some(text.clone()),
                Some(Value::Number(number)) => Some(number.to_string()),
                _ => None,
            };
            let source = match text("annotation.annotator_kind")
                .or_else(|| text("annotation.kind"))
                .map(|k| k.to_ascii_uppercase())
                .as_deref()
            {
                Some("HUMAN") => Source::Reviewer,
                _ => Source::Automatic,
            };
            Evaluation {
                name: text("annotation.name"),
                score: fields.get("annotation.score").and_then(number),
                label: text("annotation.label"),
                explanation: text("annotation.explanation"),
                source,
                created_at,
            }
        })
        .collect()
}

/// A `gen_ai.evaluation.result` event's judgement.
pub fn evaluation_event(event: &Attributes, created_at: Option<Timestamp>) -> Evaluation {
    Evaluation {
        name: event.text("gen_ai.evaluation.name"),
        score: event.number("gen_ai.evaluation.score.value"),
        label: event.text("gen_ai.evaluation.score.label"),
        explanation: event.text("gen_ai.evaluation.explanation"),
        source: Source::Automatic,
        created_at,
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
    .filter(|f: &f64| f.is_finite())
}

/// The feedback items of one evaluation, with ids starting with `id_prefix`; an error names what
/// is missing or wrong.
pub fn to_feedback(
    evaluation: Evaluation,
    target: &Target,
    id_prefix: &str,
    extra: Map<String, Value>,
) -> Result<Vec<Feedback>, String> {
    let mut metadata = extra;
    for (key, value) in [
        ("evaluation.name", evaluation.name.clone().map(Value::from)),
        (
            "evaluation.label",
            evaluation.label.clone().map(Value::from),
        ),
        ("evaluation.score", evaluation.score.map(Value::from)),
        (
            "evaluation.explanation",
            evaluation.explanation.clone().map(Value::from),
        ),
    ] {
        if let Some(value) = value {
            metadata.insert(key.to_owned(), value);
        }
    }
    let label_rating = evaluation.label.as_deref().and_then(|label| {
        let label = label.trim().to_ascii_lowercase();
        if PASSING_LABELS.contains(&label.as_str()) {
            Some(1.0)
        } else if FAILING_LABELS.contains(&label.as_str()) {
            Some(0.0)
        } else {
            None
        }
    });
    let rating = evaluation
        .score
        .filter(|score| (0.0..=1.0).contains(score))
        .or(label_rating);
    let describe = || {
        let parts: Vec<String> = [
            evaluation.label.clone(),
            evaluation.score.map(|s| format!("score {s}")),
            evaluation.explanation.clone(),
        ]
        .into_iter()
        .flatten()
        .collect();
        Some(parts.join(": ")).filter(|t| !t.trim().is_empty())
    };
    let mut values = Vec::new();
    match rating {
        Some(value) => {
            values.push((
                "",
                FeedbackValue::Rating(Rating {
                    value,
                    min: 0.0,
                    max: 1.0,
                    compared_to: None,
                }),
            ));
            if let Some(explanation) = evaluation
                .explanation
                .clone()
                .filter(|e| !e.trim().is_empty())
            {
                values.push(("-comment", FeedbackValue::Comment(explanation)));
            }
        }
        None => match describe() {
            Some(text) => values.push(("", FeedbackValue::Comment(text))),
            None => return Err("an evaluation needs a score, a label or an explanation".into()),
        },
    }
    values
        .into_iter()
        .map(|(suffix, value)| {
            let id = FeedbackId::parse("id", format!("{id_prefix}{suffix}"))
                .map_err(|e| e.to_string())?;
            let feedback = Feedback {
                id,
                trace_id: target.trace_id.clone(),
                span_id: target.span_id.clone(),
                session_id: None,
                source: evaluation.source,
                author: evaluation.name.clone(),
                author_role: Some("evaluator".into()),
                confidence: None,
                metadata: metadata.clone(),
                created_at: evaluation.created_at,
                value,
            };
            feedback
                .check()
                .map_err(|e| format!("{}: {}", e.field, e.message))?;
            Ok(feedback)
        })
        .collect()
}
