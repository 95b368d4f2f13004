//! Redaction of what a client sends, before it is stored: every free text of a trace part
//! (input, output, error, context, span input, output and attributes, tags and metadata
//! values) and of feedback (comments, corrections, annotation quotes and comments, signal
//! details, metadata values) goes through [`crate::pii::scrub`]. Identifiers (trace, session,
//! user and author ids) are kept as sent: they are what erasure finds a user's data by.
//!
//! An annotation marks a character range of the output the user saw, which is the original;
//! the stored output is the redacted one. The rule ([`redact_annotation`]): when the original
//! output is at hand (the trace is in the same batch), the range is mapped through the
//! redaction (an end inside a replaced value moves to the end of its placeholder, a start to
//! its start) and the quote becomes the redacted text there. When only the stored, redacted
//! output is known, the redacted quote is looked for in it and the range moves to the
//! occurrence nearest to the one sent. Otherwise (no output yet) the quote is redacted and the
//! range keeps its start. A range that did not match the original is left to the store's
//! check, which rejects it as before.

use serde_json::{Map, Value};

use crate::feedback::{Annotation, Feedback, FeedbackValue};
use crate::pii::{PiiCounts, PiiMode, find, placeholder, scrub};
use crate::trace::{SpanPart, TracePart};

/// Redacts `text` in place, adding what it replaced to `counts`.
pub fn redact_text(text: &mut String, mode: PiiMode, counts: &mut PiiCounts) {
    if mode == PiiMode::Off {
        return;
    }
    let (scrubbed, found) = scrub(text, mode);
    if found.total() > 0 {
        *text = scrubbed;
        counts.add(&found);
    }
}

fn redact_opt(text: &mut Option<String>, mode: PiiMode, counts: &mut PiiCounts) {
    if let Some(text) = text {
        redact_text(text, mode, counts);
    }
}

/// Redacts every string inside a JSON value (object keys are names, and kept).
pub fn redact_value(value: &mut Value, mode: PiiMode, counts: &mut PiiCounts) {
    match value {
        Value::String(text) => redact_text(text, mode, counts),
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| redact_value(item, mode, counts)),
        Value::Object(map) => redact_map(map, mode, counts),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

pub fn redact_map(map: &mut Map<String, Value>, mode: PiiMode, counts: &mut PiiCounts) {
    map.values_mut()
        .for_each(|value| redact_value(value, mode, counts));
}

/// Redacts a trace part and its spans; returns what was replaced.
pub fn redact_trace_part(part: &mut TracePart, mode: PiiMode) -> PiiCounts {
    let mut counts = PiiCounts::default();
    if mode == PiiMode::Off {
        return counts;
    }
    redact_opt(&mut part.input, mode, &mut counts);
    redact_opt(&mut part.output, mode, &mut counts);
    redact_opt(&mut part.error, mode, &mut counts);
    let context = &mut part.context;
    redact_opt(&mut context.system_prompt, mode, &mut counts);
    if let Some(prompt) = &mut context.prompt {
        redact_opt(&mut prompt.template, mode, &mut counts);
        redact_map(&mut prompt.variables, mode, &mut counts);
    }
    for message in &mut context.messages {
        redact_text(&mut message.content, mode, &mut counts);
    }
    for document in &mut context.documents {
        redact_opt(&mut document.title, mode, &mut counts);
        redact_text(&mut document.content, mode, &mut counts);
        redact_map(&mut document.metadata, mode, &mut counts);
    }
    for tool in &mut context.tool_results {
        redact_value(&mut tool.arguments, mode, &mut counts);
        redact_text(&mut tool.output, mode, &mut counts);
    }
    part.tags = std::mem::take(&mut part.tags)
        .into_iter()
        .map(|mut tag| {
            redact_text(&mut tag, mode, &mut counts);
            tag
        })
        .collect();
    redact_map(&mut part.metadata, mode, &mut counts);
    for (_, span) in &mut part.spans {
        redact_span(span, mode, &mut counts);
    }
    counts
}

fn redact_span(span: &mut SpanPart, mode: PiiMode, counts: &mut PiiCounts) {
    if let Some(input) = &mut span.input {
        redact_value(input, mode, counts);
    }
    if let Some(output) = &mut span.output {
        redact_value(output, mode, counts);
    }
    redact_map(&mut span.attributes, mode, counts);
    redact_opt(&mut span.status_message, mode, counts);
}

/// What is known of the output an annotation marks.
#[derive(Debug, Clone, Copy)]
pub enum OutputSeen<'a> {
    /// The output as the client sent it (the trace is in the same batch).
    Original(&'a str),
    /// The output as stored: already redacted.
    Stored(&'a str),
    /// No output yet.
    Unknown,
}

/// Redacts feedback in place; an annotation is placed by [`redact_annotation`] against
/// `output`. Returns what was replaced.
pub fn redact_feedback(feedback: &mut Feedback, mode: PiiMode, output: OutputSeen) -> PiiCounts {
    let mut counts = PiiCounts::default();
    if mode == PiiMode::Off {
        return counts;
    }
    redact_map(&mut feedback.metadata, mode, &mut counts);
    match &mut feedback.value {
        FeedbackValue::Comment(text) => redact_text(text, mode, &mut counts),
        FeedbackValue::Correction(correction) => {
            redact_text(&mut correction.text, mode, &mut counts);
        }
        FeedbackValue::Annotation(annotation) => {
            redact_annotation(annotation, mode, output, &mut counts);
        }
        FeedbackValue::Signal(signal) => redact_map(&mut signal.details, mode, &mut counts),
        FeedbackValue::Rating(_) | FeedbackValue::Category(_) => {}
    }
    counts
}

/// Redacts an annotation's quote and comment and places its range in the redacted output (the
/// rule is in the module docs).
pub fn redact_annotation(
    annotation: &mut Annotation,
    mode: PiiMode,
    output: OutputSeen,
    counts: &mut PiiCounts,
) {
    // Nothing is redacted, so nothing moves (the map below would still place findings).
    if mode == PiiMode::Off {
        return;
    }
    redact_opt(&mut annotation.comment, mode, counts);
    if let OutputSeen::Original(original) = output
        && annotation.check_against(original).is_ok()
    {
        let map = RedactionMap::of(original, mode);
        let start = map.position(annotation.start as usize, Side::Start);
        let end = map.position(annotation.end as usize, Side::End);
        let mut ignored = PiiCounts::default();
        redact_text(&mut annotation.quote, mode, &mut ignored);
        annotation.quote = map.redacted.chars().skip(start).take(end - start).collect();
        counts.add(&ignored);
        (annotation.start, annotation.end) = (start as u64, end as u64);
        return;
    }
    redact_text(&mut annotation.quote, mode, counts);
    let len = annotation.quote.chars().count() as u64;
    if let OutputSeen::Stored(stored) = output
        && let Some(start) = nearest_occurrence(stored, &annotation.quote, annotation.start)
    {
        annotation.start = start;
    }
    // The placeholder may be longer than what it replaced, and a range near `u64::MAX` (valid
    // on its own, if absurd) then has no room to grow: it keeps its length and moves back.
    annotation.end = match annotation.start.checked_add(len) {
        Some(end) => end,
        None => {
            annotation.start = u64::MAX - len;
            u64::MAX
        }
    };
}

/// The character position of the occurrence of `quote` in `text` nearest to `near`.
fn nearest_occurrence(text: &str, quote: &str, near: u64) -> Option<u64> {
    if quote.is_empty() {
        return None;
    }
    text.match_indices(quote)
        .map(|(byte, _)| text[..byte].chars().count() as u64)
        .min_by_key(|start| start.abs_diff(near))
}

/// Which end of a range a position is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Start,
    End,
}

/// Where each replaced value of a text went: character ranges in the original and in the
/// redacted text, in order.
struct RedactionMap {
    redacted: String,
    /// `(original range, redacted range)` in characters.
    replaced: Vec<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

impl RedactionMap {
    fn of(original: &str, mode: PiiMode) -> Self {
        let mut redacted = String::with_capacity(original.len());
        let mut replaced = Vec::new();
        let (mut at, mut at_char, mut out_chars) = (0, 0, 0);
        for finding in find(original) {
            let before = &original[at..finding.range.start];
            redacted.push_str(before);
            let before_chars = before.chars().count();
            let found = &original[finding.range.clone()];
            let found_chars = found.chars().count();
            let replacement = placeholder(finding.kind, found, mode);
            let start = at_char + before_chars;
            let out_start = out_chars + before_chars;
            let out_end = out_start + replacement.chars().count();
            replaced.push((start..start + found_chars, out_start..out_end));
            redacted.push_str(&replacement);
            (at, at_char, out_chars) = (finding.range.end, start + found_chars, out_end);
        }
        redacted.push_str(&original[at..]);
        Self { redacted, replaced }
    }

    /// Where character position `position` of the original is in the redacted text.
    fn position(&self, position: usize, side: Side) -> usize {
        let mut shift: isize = 0;
        for (original, redacted) in &self.replaced {
            if position <= original.start {
                break;
            }
            if position < original.end {
                return match side {
                    Side::Start => redacted.start,
                    Side::End => redacted.end,
                };
            }
            shift = redacted.end as isize - original.end as isize;
        }
        (position as isize + shift) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feedback::Correction;

    fn annotation(output: &str, quote: &str) -> Annotation {
        let start = output.find(quote).unwrap();
        let start = output[..start].chars().count() as u64;
        Annotation {
            start,
            end: start + quote.chars().count() as u64,
            quote: quote.to_owned(),
            comment: Some("mail me at ann@example.org".to_owned()),
            tags: vec![],
            categories: vec![],
        }
    }

    #[test]
    fn annotation_ranges_follow_the_redaction_of_the_output() {
        let original = "Écrivez à zoé@exemple.fr ou appelez +33 6 12 34 56 78 demain.";
        let redacted = scrub(original, PiiMode::Mask).0;
        let mut counts = PiiCounts::default();
        // After both findings: shifted by both length changes.
        let mut after = annotation(original, "demain");
        redact_annotation(
            &mut after,
            PiiMode::Mask,
            OutputSeen::Original(original),
            &mut counts,
        );
        assert_eq!(after.quote, "demain");
        after.check_against(&redacted).unwrap();
        assert_eq!(after.comment.as_deref(), Some("mail me at [EMAIL]"));
        // Over a finding and cutting into another: widened to whole placeholders.
        let mut over = annotation(original, "zoé@exemple.fr ou appelez +33 6");
        redact_annotation(
            &mut over,
            PiiMode::Mask,
            OutputSeen::Original(original),
            &mut counts,
        );
        assert_eq!(over.quote, "[EMAIL] ou appelez [PHONE]");
        over.check_against(&redacted).unwrap();
        // Hash mode, before any finding: unchanged.
        let hashed = scrub(original, PiiMode::Hash).0;
        let mut before = annotation(original, "Écrivez");
        redact_annotation(
            &mut before,
            PiiMode::Hash,
            OutputSeen::Original(original),
            &mut counts,
        );
        before.check_against(&hashed).unwrap();
        assert_eq!((before.start, before.end), (0, 7));
    }

    #[test]
    fn annotations_on_a_stored_output_move_to_the_redacted_quote() {
        let original = "Contact bob@example.com, then say: the refund is late.";
        let stored = scrub(original, PiiMode::Mask).0;
        let mut counts = PiiCounts::default();
        let mut late = annotation(original, "the refund is late");
        redact_annotation(
            &mut late,
            PiiMode::Mask,
            OutputSeen::Stored(&stored),
            &mut counts,
        );
        late.check_against(&stored).unwrap();
        let mut with_email = annotation(original, "Contact bob@example.com");
        redact_annotation(
            &mut with_email,
            PiiMode::Mask,
            OutputSeen::Stored(&stored),
            &mut counts,
        );
        assert_eq!(with_email.quote, "Contact [EMAIL]");
        with_email.check_against(&stored).unwrap();
        // A range that never matched stays wrong, for the store to reject.
        let mut wrong = annotation(original, "Contact");
        wrong.quote = "Nothing".to_owned();
        redact_annotation(
            &mut wrong,
            PiiMode::Mask,
            OutputSeen::Original(original),
            &mut counts,
        );
        assert!(wrong.check_against(&stored).is_err());
        wrong.check().unwrap();
    }

    // Found by the annotation_ranges fuzz target's invariant: the placeholder is longer than
    // the e-mail address, and `start + len` overflowed (a panic, or a wrapped end in release).
    #[test]
    fn a_range_at_the_end_of_u64_stays_a_valid_range_when_its_quote_grows() {
        let mut far = Annotation {
            start: u64::MAX - 6,
            end: u64::MAX,
            quote: "a@b.co".to_owned(),
            comment: None,
            tags: vec![],
            categories: vec![],
        };
        far.check().unwrap();
        redact_annotation(
            &mut far,
            PiiMode::Mask,
            OutputSeen::Unknown,
            &mut PiiCounts::default(),
        );
        assert_eq!(far.quote, "[EMAIL]");
        assert_eq!((far.start, far.end), (u64::MAX - 7, u64::MAX));
        far.check().unwrap();
    }

    fn json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn every_text_of_a_part_and_of_feedback_is_redacted() {
        let mut part = TracePart {
            id: crate::TraceId::parse("id", "t1").unwrap(),
            input: Some("I am ann@example.org".to_owned()),
            output: Some("call +1 415 555 2671".to_owned()),
            error: Some("token sk-proj-abcdefghijklmnopqrstuvwxyz0123456789 rejected".to_owned()),
            context: json(serde_json::json!({
                "system_prompt": "admin is root@example.org",
                "messages": [{"role": "user", "content": "ip 192.168.1.20"}],
                "documents": [{"content": "card 4111 1111 1111 1111", "metadata": {"owner": "x@example.org"}}],
                "tool_results": [{"name": "t", "arguments": {"to": "y@example.org"}, "output": "sent to y@example.org"}]
            })),
            tags: ["z@example.org".to_owned()].into(),
            metadata: json(serde_json::json!({"nested": ["w@example.org"]})),
            spans: vec![(
                crate::SpanId::parse("id", "s1").unwrap(),
                SpanPart {
                    input: Some(serde_json::json!({"q": "v@example.org"})),
                    attributes: json(serde_json::json!({"a": "u@example.org"})),
                    ..SpanPart::default()
                },
            )],
            ..TracePart::default()
        };
        let mut off = part.clone();
        assert_eq!(redact_trace_part(&mut off, PiiMode::Off).total(), 0);
        assert_eq!(off, part.clone());
        let counts = redact_trace_part(&mut part, PiiMode::Mask);
        let text = format!("{part:?}");
        assert!(
            !text.contains("@example.org") && !text.contains("4111"),
            "{text}"
        );
        assert_eq!(counts.email, 9);
        assert_eq!(counts.total(), 13);
        let mut correction: Feedback = json(serde_json::json!({
            "id": "f", "trace_id": "t1", "source": "end_user", "kind": "correction",
            "value": {"text": "reach me on 415-555-2671"}
        }));
        redact_feedback(&mut correction, PiiMode::Mask, OutputSeen::Unknown);
        let FeedbackValue::Correction(Correction { text, .. }) = &correction.value else {
            panic!("a correction")
        };
        assert_eq!(text, "reach me on [PHONE]");
    }
}
