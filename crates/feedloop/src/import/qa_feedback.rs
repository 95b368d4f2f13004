//! qa-feedback (Fine-Grained RLHF, allenai/FineGrainedRLHF `tasks/qa_feedback/data/*_feedback.json`):
//! one JSON array of items, each a question with Wikipedia passages, a reference answer, 4 sampled
//! answers of a T5-large SFT model, and human feedback on them.
//!
//! Item `i` (0-based, its place in the file, as in upstream's own scripts) becomes session
//! `qa-{i:04}` with traces `qa-{i:04}-p1` … `-p4`, one per answer, each with the question as
//! input, the passages as context documents `p1`, `p2`, … (1-based, the numbering of the dataset's
//! `passage_id`; title as the document title, sentences joined with spaces as its content) and
//! the reference answer as `metadata.reference_answer`. The feedback, all from source `reviewer`
//! and author [`AUTHOR`], with ids under `qa-{i:04}-`:
//!
//! - `correction`: the corrected answer, on p1. When the annotator deleted the whole answer (an
//!   empty corrected answer; 13 of 500 dev items) it cannot be a correction, and becomes a comment
//!   with the same id that says so.
//! - `span-{n}` (1-based, in file order): each error span, an annotation on p1. The dataset's
//!   offsets are Unicode scalar offsets into prediction 1, end exclusive — the same unit as
//!   feedloop's, so they are kept as they are (checked on all 1,373 dev spans: every span lies
//!   inside its answer and starts and ends on a word boundary; read as byte offsets, most of the 83
//!   spans that follow a non-ASCII character would cut words; the dev answers have no character
//!   outside the BMP, so UTF-16 offsets would read the same). The quote is the answer's characters
//!   `start..end`. A span outside the answer is an error, not a guess.
//! - `missing-{n}`: each missing-information item, a comment on p1 quoting the passage sentences
//!   it points at. `sentence_id` indexes the passage list itself, whose element 0 is the title:
//!   sentence 1 is the first sentence (so that all 842 dev items point inside their passage; read
//!   as 0-based sentence numbers, 59 would point past the end, and the quoted sentences would
//!   match the corrected answers less often).
//! - `pref-{a}v{b}`: each of the 6 preferences, a rating of trace `pa` against `pb` on -1..1.

use std::path::Path;

use anyhow::Context as _;
use feedloop_core::feedback::{Annotation, Correction, CorrectionKind, FeedbackKind, Source};
use feedloop_core::trace::{Context, Document, Environment, ModelInfo};
use feedloop_server::wire::{FeedbackBody, Record, TraceBody};
use serde_json::{Map, Value, json};

use super::{ImportError, preference, trace_id};

mod dataset;

pub use dataset::{
    ErrorSpan, ErrorType, MissingInfo, MissingType, Preference, QaFeedback, QaRecord,
};

/// The taxonomy categories of error spans, one per upstream error type. The importer adds them to
/// the project's taxonomy before it sends the annotations that name them.
pub const ERROR_CATEGORIES: [&str; 5] = [
    "irrelevant",
    "wrong_grounding",
    "unverifiable",
    "redundant",
    "incoherent",
];

/// The author of every feedback item (the dataset does not tell annotators apart).
pub const AUTHOR: &str = "qa-feedback-annotator";

/// The answer pairs of [`QaRecord::preference`], in the dataset's order.
const PREFERENCE_PAIRS: [(usize, usize); 6] = [(1, 2), (1, 3), (1, 4), (2, 3), (2, 4), (3, 4)];

/// Reads a `*_feedback.json` file and maps it (see [`map`]).
pub fn read_qa_feedback(path: impl AsRef<Path>) -> anyhow::Result<Vec<Record>> {
    let path = path.as_ref();
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let records: Vec<QaRecord> = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a qa-feedback file", path.display()))?;
    Ok(map(&records)?)
}

/// Maps items to records: per item its 4 traces, then its feedback (see the module docs).
pub fn map(records: &[QaRecord]) -> Result<Vec<Record>, ImportError> {
    let mut out = Vec::new();
    for (index, record) in records.iter().enumerate() {
        map_item(index, record, &mut out)?;
    }
    Ok(out)
}

fn map_item(index: usize, record: &QaRecord, out: &mut Vec<Record>) -> Result<(), ImportError> {
    let session = format!("qa-{index:04}");
    let trace = |k: usize| format!("{session}-p{k}");
    let documents: Vec<Document> = record.passages.iter().enumerate().map(document).collect();
    let predictions = [
        &record.prediction_1,
        &record.prediction_2,
        &record.prediction_3,
        &record.prediction_4,
    ];
    for (k, prediction) in (1..).zip(predictions) {
        out.push(Record::Trace(TraceBody {
            id: Some(trace(k)),
            session_id: Some(session.clone()),
            environment: Some(Environment::Test),
            input: Some(record.question.clone()),
            output: Some(prediction.clone()),
            context: Some(Context {
                documents: documents.clone(),
                ..Context::default()
            }),
            model: Some(ModelInfo {
                name: Some("t5-large-sft".into()),
                provider: Some("allenai/FineGrainedRLHF".into()),
                version: None,
            }),
            tags: vec!["qa-feedback".into()],
            metadata: Map::from_iter([("reference_answer".into(), json!(record.gold))]),
            ..TraceBody::default()
        }));
    }

    let p1 = trace(1);
    let feedback = |suffix: &str, kind: FeedbackKind| FeedbackBody {
        id: Some(format!("{session}-{suffix}")),
        trace_id: p1.clone(),
        source: Some(Source::Reviewer),
        author: Some(AUTHOR.into()),
        kind: Some(kind),
        ..FeedbackBody::default()
    };

    let corrected = &record.feedback.corrected_prediction;
    out.push(Record::Feedback(if corrected.trim().is_empty() {
        FeedbackBody {
            comment: Some(
                "The annotator's corrected answer is empty: they deleted the whole answer.".into(),
            ),
            ..feedback("correction", FeedbackKind::Comment)
        }
    } else {
        FeedbackBody {
            correction: Some(Correction {
                text: corrected.clone(),
                kind: CorrectionKind::Answer,
            }),
            ..feedback("correction", FeedbackKind::Correction)
        }
    }));

    let output: Vec<char> = record.prediction_1.chars().collect();
    for (n, span) in (1..).zip(&record.feedback.errors) {
        let range = usize::try_from(span.start).ok()..usize::try_from(span.end).ok();
        let quote = match (range.start, range.end) {
            (Some(start), Some(end)) if start < end && end <= output.len() => {
                output[start..end].iter().collect::<String>()
            }
            _ => {
                return Err(ImportError::SpanOutsideOutput {
                    item: index,
                    span: n,
                    start: span.start,
                    end: span.end,
                    output_chars: output.len(),
                });
            }
        };
        out.push(Record::Feedback(FeedbackBody {
            annotation: Some(Annotation {
                start: span.start,
                end: span.end,
                quote,
                comment: (!span.explanation.trim().is_empty()).then(|| span.explanation.clone()),
                tags: Vec::new(),
                categories: vec![span.error_type.category().into()],
            }),
            ..feedback(&format!("span-{n}"), FeedbackKind::Annotation)
        }));
    }

    for (n, missing) in (1..).zip(&record.feedback.missing_info) {
        out.push(Record::Feedback(FeedbackBody {
            comment: Some(missing_comment(index, n, record, missing)?),
            metadata: Map::from_iter([
                ("error_type".into(), json!(missing.error_type.name())),
                ("passage_id".into(), json!(missing.passage_id)),
                ("sentence_id".into(), json!(missing.sentence_id)),
            ]),
            ..feedback(&format!("missing-{n}"), FeedbackKind::Comment)
        }));
    }

    for ((a, b), choice) in PREFERENCE_PAIRS.into_iter().zip(record.preference) {
        out.push(Record::Feedback(FeedbackBody {
            trace_id: trace(a),
            rating: Some(preference(choice.rating_value(), trace_id(&trace(b))?)),
            ..feedback(&format!("pref-{a}v{b}"), FeedbackKind::Rating)
        }));
    }
    Ok(())
}

/// Passage `index` (0-based) as context document `p{index + 1}`.
fn document((index, passage): (usize, &Vec<String>)) -> Document {
    let (title, sentences) = passage
        .split_first()
        .map_or((None, &[][..]), |(t, s)| (Some(t), s));
    Document {
        id: Some(format!("p{}", index + 1)),
        title: title.cloned(),
        content: sentences.join(" "),
        source: None,
        score: None,
        metadata: Map::<String, Value>::new(),
    }
}

/// `Missing answer; see passage p2 ("Title"), sentence 3: "…"` (sentence 0 is the title).
fn missing_comment(
    item: usize,
    missing_index: usize,
    record: &QaRecord,
    missing: &MissingInfo,
) -> Result<String, ImportError> {
    let passage_id = missing.passage_id;
    let passage = passage_id
        .checked_sub(1)
        .and_then(|i| record.passages.get(i))
        .ok_or(ImportError::UnknownPassage {
            item,
            missing: missing_index,
            passage_id,
        })?;
    let title = passage.first().map(String::as_str).unwrap_or_default();
    let mut quotes = Vec::with_capacity(missing.sentence_id.len());
    for &sentence_id in &missing.sentence_id {
        let text = passage
            .get(sentence_id)
            .ok_or(ImportError::UnknownSentence {
                item,
                missing: missing_index,
                passage_id,
                sentence_id,
            })?;
        let place = match sentence_id {
            0 => "title".to_owned(),
            n => format!("sentence {n}"),
        };
        quotes.push(format!("{place}: \"{text}\""));
    }
    Ok(format!(
        "{}; see passage p{passage_id} (\"{title}\"), {}",
        missing.error_type.label(),
        quotes.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One item in the file's own shape; prediction 1 has a 3-byte `€` and a 4-byte emoji before
    /// the second span, so byte or UTF-16 offsets would not fit it.
    fn item() -> Value {
        json!({
            "question": "Combien coûte un café à Zürich ?",
            "passages": [["Café", "Un café coûte 3 € à Zürich.", "Il est servi chaud."]],
            "gold": "Un café coûte 3 € à Zürich.",
            "prediction 1": "Ça coûte 3 € 🙂 à Zürich.",
            "prediction 2": "Trois euros.",
            "prediction 3": "Je ne sais pas.",
            "prediction 4": "3 €.",
            "feedback": {
                "errors": [
                    {"error type": "Irrelevant", "explanation": "", "start": 9, "end": 14},
                    {"error type": "Wrong-Grounding", "explanation": "{\"passage_id\":1,\"sentence_id\":[1]}",
                     "start": 15, "end": 23}
                ],
                "missing-info": [
                    {"error type": "Missing-Minor-Auxiliary", "passage_id": 1, "sentence_id": [0, 2]}
                ],
                "corrected-prediction": "Un café coûte 3 € à Zürich."
            },
            "preference": [1, 2, 0, 1, 2, 0]
        })
    }

    fn map_json(items: Value) -> Result<Vec<Value>, ImportError> {
        let records: Vec<QaRecord> = serde_json::from_value(items).unwrap();
        let records = map(&records)?;
        Ok(records
            .iter()
            .map(|r| serde_json::to_value(r).unwrap())
            .collect())
    }

    fn reviewer(id: &str, trace: &str, kind: &str, payload: Value) -> Value {
        let mut value = json!({"type": "feedback", "id": id, "trace_id": trace, "source": "reviewer",
            "author": "qa-feedback-annotator", "kind": kind});
        value
            .as_object_mut()
            .unwrap()
            .extend(payload.as_object().unwrap().clone());
        value
    }

    #[test]
    fn an_item_maps_to_four_traces_and_its_feedback_exactly() {
        let records = map_json(json!([item(), item()])).unwrap();
        assert_eq!(records.len(), 2 * 14);
        let trace = |k: usize, output: &str| {
            json!({"type": "trace", "id": format!("qa-0001-p{k}"), "session_id": "qa-0001",
                "environment": "test", "input": "Combien coûte un café à Zürich ?", "output": output,
                "context": {"documents": [{"id": "p1", "title": "Café",
                    "content": "Un café coûte 3 € à Zürich. Il est servi chaud."}]},
                "model": {"name": "t5-large-sft", "provider": "allenai/FineGrainedRLHF"},
                "tags": ["qa-feedback"], "metadata": {"reference_answer": "Un café coûte 3 € à Zürich."}})
        };
        let pref = |a: usize, b: usize, value: f64| {
            reviewer(
                &format!("qa-0001-pref-{a}v{b}"),
                &format!("qa-0001-p{a}"),
                "rating",
                json!({"rating": {"value": value, "min": -1.0, "max": 1.0,
                    "compared_to": format!("qa-0001-p{b}")}}),
            )
        };
        let expected = vec![
            trace(1, "Ça coûte 3 € 🙂 à Zürich."),
            trace(2, "Trois euros."),
            trace(3, "Je ne sais pas."),
            trace(4, "3 €."),
            reviewer(
                "qa-0001-correction",
                "qa-0001-p1",
                "correction",
                json!({"correction": {"text": "Un café coûte 3 € à Zürich.", "kind": "answer"}}),
            ),
            reviewer(
                "qa-0001-span-1",
                "qa-0001-p1",
                "annotation",
                json!({"annotation": {"start": 9, "end": 14, "quote": "3 € 🙂",
                    "categories": ["irrelevant"]}}),
            ),
            reviewer(
                "qa-0001-span-2",
                "qa-0001-p1",
                "annotation",
                json!({"annotation": {"start": 15, "end": 23, "quote": "à Zürich",
                    "comment": "{\"passage_id\":1,\"sentence_id\":[1]}",
                    "categories": ["wrong_grounding"]}}),
            ),
            reviewer(
                "qa-0001-missing-1",
                "qa-0001-p1",
                "comment",
                json!({
                "metadata": {"error_type": "missing_minor_auxiliary", "passage_id": 1, "sentence_id": [0, 2]},
                "comment": "Missing minor auxiliary information; see passage p1 (\"Café\"), \
                            title: \"Café\"; sentence 2: \"Il est servi chaud.\""}),
            ),
            pref(1, 2, 1.0),
            pref(1, 3, -1.0),
            pref(1, 4, 0.0),
            pref(2, 3, 1.0),
            pref(2, 4, -1.0),
            pref(3, 4, 0.0),
        ];
        assert_eq!(records[14..], expected[..]);
        assert_eq!(records[0]["id"], "qa-0000-p1");
    }

    #[test]
    fn an_empty_correction_becomes_a_comment() {
        let mut item = item();
        item["feedback"]["corrected-prediction"] = json!(" ");
        let records = map_json(json!([item])).unwrap();
        assert_eq!(records[4]["id"], "qa-0000-correction");
        assert_eq!(records[4]["kind"], "comment");
        assert!(
            records[4]["comment"]
                .as_str()
                .unwrap()
                .contains("deleted the whole answer")
        );
    }

    #[test]
    fn spans_and_sentences_that_do_not_fit_are_errors() {
        let mut bad_span = item();
        bad_span["feedback"]["errors"][1]["end"] = json!(25);
        let err = map_json(json!([item(), bad_span])).unwrap_err();
        assert!(
            matches!(
                err,
                ImportError::SpanOutsideOutput {
                    item: 1,
                    span: 2,
                    output_chars: 24,
                    ..
                }
            ),
            "{err}"
        );
        let mut bad_sentence = item();
        bad_sentence["feedback"]["missing-info"][0]["sentence_id"] = json!([3]);
        let err = map_json(json!([bad_sentence])).unwrap_err();
        assert!(
            matches!(err, ImportError::UnknownSentence { sentence_id: 3, .. }),
            "{err}"
        );
        let mut bad_passage = item();
        bad_passage["feedback"]["missing-info"][0]["passage_id"] = json!(0);
        let err = map_json(json!([bad_passage])).unwrap_err();
        assert!(
            matches!(err, ImportError::UnknownPassage { passage_id: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn unknown_labels_and_preferences_are_parse_errors() {
        let mut bad = item();
        bad["preference"][5] = json!(3);
        assert!(serde_json::from_value::<QaRecord>(bad).is_err());
        let mut bad = item();
        bad["feedback"]["errors"][0]["error type"] = json!("Typo");
        assert!(serde_json::from_value::<QaRecord>(bad).is_err());
    }

    #[test]
    fn every_error_type_has_a_valid_category() {
        for name in ERROR_CATEGORIES {
            feedloop_core::taxonomy::check_name("name", name).unwrap();
        }
        let label = json!("Incoherent");
        let error_type: ErrorType = serde_json::from_value(label).unwrap();
        assert_eq!(error_type.category(), "incoherent");
    }
}
