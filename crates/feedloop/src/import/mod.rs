//! Importers for public feedback datasets: each maps a dataset's own files to the records of a
//! feedloop JSONL import ([`Record`]: traces, then feedback that refers to them), so that real
//! human feedback can be loaded into a project for demos, tests and benchmarks.
//!
//! - [`qa_feedback`]: Fine-Grained RLHF's qa-feedback (allenai/FineGrainedRLHF): 4 answers per
//!   question, with error spans, missing information, a corrected answer and 6 pairwise
//!   preferences from human annotators.
//! - [`llmfao`]: LLMFAO (dustalov/llmfao): answers of 59 LLMs to fixed prompts and crowd votes on
//!   pairs of them.
//!
//! The mappings are pure functions of parsed rows (no IO, no clock, no randomness), and every id
//! they produce is derived from the dataset, so importing the same file twice stores nothing new.
//! The `read_*` helpers read the files (blocking IO: call them off the async runtime).
//!
//! What the committed fixtures map to (asserted by the tests of this module, so integration tests
//! may rely on these numbers):
//!
//! | fixture | traces | rating | annotation | comment | correction | all records |
//! | --- | ---: | ---: | ---: | ---: | ---: | ---: |
//! | `fixtures/qa_feedback/dev_feedback_sample.json` (100 items) | 400 | 600 | 265 | 152 | 96 | 1,513 |
//! | `fixtures/llmfao/` (151 votes) | 37 | 151 | 0 | 0 | 0 | 188 |
//!
//! The qa-feedback comments are 148 missing-information items and 4 empty corrected answers (see
//! [`qa_feedback`] for why an empty correction becomes a comment).

mod csv;
pub mod jsonl;
pub mod llmfao;
pub mod qa_feedback;

pub use llmfao::read_llmfao;
pub use qa_feedback::read_qa_feedback;

use feedloop_core::feedback::Rating;
use feedloop_core::{TraceId, ValidationError};

/// A dataset row that cannot be mapped. Every variant but [`ImportError::InvalidId`] is the
/// input file's fault and names the row; `InvalidId` is a bug in an importer.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(
        "qa-feedback item {item}: error span {span} ({start}..{end}) is not inside prediction 1, which is {output_chars} characters long"
    )]
    SpanOutsideOutput {
        item: usize,
        span: usize,
        start: u64,
        end: u64,
        output_chars: usize,
    },
    #[error(
        "qa-feedback item {item}: missing-info {missing} names passage {passage_id}, which does not exist"
    )]
    UnknownPassage {
        item: usize,
        missing: usize,
        passage_id: usize,
    },
    #[error(
        "qa-feedback item {item}: missing-info {missing} names sentence {sentence_id} of passage {passage_id}, which does not exist"
    )]
    UnknownSentence {
        item: usize,
        missing: usize,
        passage_id: usize,
        sentence_id: usize,
    },
    #[error("llmfao vote row {row}: no result for prompt {prompt} and model {model}")]
    UnknownResult { row: usize, prompt: u64, model: u64 },
    #[error("llmfao result {result}: no prompt with id {prompt}")]
    UnknownPrompt { result: u64, prompt: u64 },
    #[error("line {line}: {message}")]
    Csv { line: usize, message: String },
    #[error("line {line}: {source}")]
    Json {
        line: usize,
        source: serde_json::Error,
    },
    #[error("an importer generated an invalid id: {0}")]
    InvalidId(#[from] ValidationError),
}

/// Checks an id the importer generated.
fn trace_id(id: &str) -> Result<TraceId, ImportError> {
    Ok(TraceId::parse("compared_to", id)?)
}

/// A pairwise preference of this trace over `compared_to`: +1 this one is better, -1 the other
/// one is, 0 neither.
fn preference(value: f64, compared_to: TraceId) -> Rating {
    Rating {
        value,
        min: -1.0,
        max: 1.0,
        compared_to: Some(compared_to),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feedloop_core::feedback::{FeedbackKind, FeedbackValue};
    use feedloop_server::wire::Record;
    use std::collections::{BTreeMap, HashMap};
    use std::path::PathBuf;

    fn fixture(path: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures")
            .join(path)
    }

    /// Converts every record as the server would, checks that annotations quote their trace's
    /// output and that compared traces exist, and counts records by kind.
    fn validate_and_count(records: Vec<Record>) -> BTreeMap<&'static str, usize> {
        let mut outputs = HashMap::new();
        let mut feedback = Vec::new();
        let mut counts = BTreeMap::new();
        for record in records {
            match record {
                Record::Trace(body) => {
                    let part = body.into_part(|| unreachable!()).unwrap();
                    let output = part.output.clone().unwrap_or_default();
                    assert!(
                        outputs.insert(part.id, output).is_none(),
                        "duplicate trace id"
                    );
                    *counts.entry("trace").or_insert(0) += 1;
                }
                Record::Feedback(body) => {
                    feedback.push(body.into_feedback(|| unreachable!()).unwrap())
                }
            }
        }
        let mut feedback_ids = std::collections::HashSet::new();
        for item in feedback {
            assert!(
                feedback_ids.insert(item.id.clone()),
                "duplicate {}",
                item.id
            );
            let output = &outputs[&item.trace_id];
            match &item.value {
                FeedbackValue::Annotation(annotation) => annotation.check_against(output).unwrap(),
                FeedbackValue::Rating(rating) => {
                    assert!(outputs.contains_key(rating.compared_to.as_ref().unwrap()))
                }
                _ => {}
            }
            *counts.entry(item.value.kind().as_str()).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn the_qa_feedback_fixture_maps_to_the_documented_counts() {
        let records = read_qa_feedback(fixture("qa_feedback/dev_feedback_sample.json")).unwrap();
        assert_eq!(records.len(), 1513);
        let counts = validate_and_count(records);
        let expected = [
            ("trace", 400),
            (FeedbackKind::Rating.as_str(), 600),
            (FeedbackKind::Annotation.as_str(), 265),
            (FeedbackKind::Comment.as_str(), 152),
            (FeedbackKind::Correction.as_str(), 96),
        ];
        assert_eq!(counts, BTreeMap::from(expected));
    }

    #[test]
    fn the_llmfao_fixture_maps_to_the_documented_counts() {
        let records = read_llmfao(fixture("llmfao")).unwrap();
        assert_eq!(records.len(), 188);
        let counts = validate_and_count(records);
        let expected = [("trace", 37), (FeedbackKind::Rating.as_str(), 151)];
        assert_eq!(counts, BTreeMap::from(expected));
    }
}
