//! How a span is kept in its row: its JSON document, less an input or output equal to its
//! trace's.
//!
//! An instrumented app's model call is often its own trace (OTLP: a root LLM span), and then the
//! trace's query and answer are the span's: stored whole in both rows, a span's text was written
//! twice. Such a span's document leaves the field out and names it instead:
//! `"same_as_trace":["input","output"]`. Reads put the trace's text back ([`SpanDoc::resolve`]),
//! and a merge that changes a trace's input or output first writes the old text into the spans
//! that share it ([`write_out_shared`]), so a span never changes with its trace.

use feedloop_core::trace::{Span, SpanKind, SpanPart, Status, Trace};
use feedloop_core::{ProjectId, SpanId, Timestamp};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Result;

/// The key that names the fields a span shares with its trace.
const SHARED_KEY: &str = "same_as_trace";

/// Serialises `span` for its row, leaving out an input or output equal to `trace`'s.
pub fn to_doc(mut span: Span, trace: &Trace) -> Result<String> {
    let shared = Shares::of(&span.input, &span.output, trace);
    if shared.input {
        span.input = Value::Null;
    }
    if shared.output {
        span.output = Value::Null;
    }
    Ok(shared.name_in(serde_json::to_string(&span)?))
}

/// The start and the document [`to_doc`] writes for `Span::from_part(id, part, fallback_start)`,
/// serialised from the part itself: a new trace's spans are written so, without a copy of each
/// part (the store keeps the parts in case the trace turns out to exist).
pub fn fresh_doc(
    id: &SpanId,
    part: &SpanPart,
    fallback_start: Timestamp,
    trace: &Trace,
) -> Result<(Timestamp, String)> {
    let null = Value::Null;
    let (input, output) = (
        part.input.as_ref().unwrap_or(&null),
        part.output.as_ref().unwrap_or(&null),
    );
    let shared = Shares::of(input, output, trace);
    let span = FreshSpan {
        id,
        parent_id: part.parent_id.as_ref(),
        kind: part.kind.unwrap_or(SpanKind::Other),
        name: part.name.as_deref(),
        input: Some(input).filter(|value| !value.is_null() && !shared.input),
        output: Some(output).filter(|value| !value.is_null() && !shared.output),
        attributes: &part.attributes,
        status: part.status.unwrap_or(Status::Unset),
        status_message: part.status_message.as_deref(),
        started_at: part.started_at.unwrap_or(fallback_start),
        ended_at: part.ended_at,
    };
    Ok((
        span.started_at,
        shared.name_in(serde_json::to_string(&span)?),
    ))
}

/// [`Span`]'s serialised form, borrowed from a part: the same fields, in the same order, left
/// out under the same conditions.
#[derive(Serialize)]
struct FreshSpan<'a> {
    id: &'a SpanId,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<&'a SpanId>,
    kind: SpanKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a Value>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    attributes: &'a Map<String, Value>,
    status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_message: Option<&'a str>,
    started_at: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<Timestamp>,
}

/// Which of a span's input and output equal its trace's.
struct Shares {
    input: bool,
    output: bool,
}

impl Shares {
    fn of(input: &Value, output: &Value, trace: &Trace) -> Self {
        Self {
            input: same_text(input, trace.input.as_deref()),
            output: same_text(output, trace.output.as_deref()),
        }
    }

    /// `doc` (a span serialised without the shared fields) naming them.
    fn name_in(&self, mut doc: String) -> String {
        let names: Vec<&str> = [(self.input, "\"input\""), (self.output, "\"output\"")]
            .into_iter()
            .filter_map(|(shared, name)| shared.then_some(name))
            .collect();
        if !names.is_empty() {
            // A struct serialises as one JSON object: the key goes in before its closing brace.
            debug_assert!(doc.ends_with('}'));
            doc.pop();
            doc.push_str(&format!(",\"{SHARED_KEY}\":[{}]}}", names.join(",")));
        }
        doc
    }
}

fn same_text(value: &Value, text: Option<&str>) -> bool {
    matches!((value, text), (Value::String(value), Some(text)) if value == text)
}

/// A span read from its row, which may still lack the text it shares with its trace.
pub struct SpanDoc {
    pub span: Span,
    input_shared: bool,
    output_shared: bool,
}

#[derive(Deserialize)]
struct Shared {
    #[serde(default, rename = "same_as_trace")]
    fields: Vec<String>,
}

impl SpanDoc {
    pub fn parse(doc: &str) -> Result<Self> {
        let span: Span = serde_json::from_str(doc)?;
        // Most spans share nothing; the key is only looked for where its name appears.
        let fields = if doc.contains(SHARED_KEY) {
            serde_json::from_str::<Shared>(doc)?.fields
        } else {
            Vec::new()
        };
        Ok(Self {
            span,
            input_shared: fields.iter().any(|field| field == "input"),
            output_shared: fields.iter().any(|field| field == "output"),
        })
    }

    /// Whether the span needs its trace's text back.
    pub fn shares_text(&self) -> bool {
        self.input_shared || self.output_shared
    }

    /// The whole span, with the text it shares taken from its trace's input and output.
    pub fn resolve(self, trace_input: Option<&str>, trace_output: Option<&str>) -> Span {
        let mut span = self.span;
        if self.input_shared {
            span.input = trace_input.map_or(Value::Null, Value::from);
        }
        if self.output_shared {
            span.output = trace_output.map_or(Value::Null, Value::from);
        }
        span
    }
}

/// The input and output of a stored trace, for resolving its spans.
pub fn trace_text(
    conn: &Connection,
    project: ProjectId,
    trace_id: &str,
) -> Result<(Option<String>, Option<String>)> {
    Ok(conn
        .prepare_cached(
            "SELECT json_extract(doc, '$.input'), json_extract(doc, '$.output')
             FROM traces WHERE project_id = ?1 AND id = ?2",
        )?
        .query_row(params![project.0, trace_id], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })?)
}

/// Before a trace's input or output changes: writes the old text into the spans of the trace
/// that share it, so that they keep it.
pub fn write_out_shared(
    tx: &Connection,
    project: ProjectId,
    trace_seq: i64,
    input_before: Option<&str>,
    output_before: Option<&str>,
) -> Result<()> {
    let rows = tx
        .prepare_cached("SELECT seq, doc FROM spans WHERE project_id = ?1 AND trace_seq = ?2")?
        .query_map(params![project.0, trace_seq], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut update = tx.prepare_cached("UPDATE spans SET doc = ?2 WHERE seq = ?1")?;
    for (seq, doc) in rows {
        let doc = SpanDoc::parse(&doc)?;
        if doc.shares_text() {
            let span = doc.resolve(input_before, output_before);
            update.execute(params![seq, serde_json::to_string(&span)?])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use feedloop_core::TraceId;

    fn trace(input: Option<&str>, output: Option<&str>) -> Trace {
        let mut trace = Trace::from_part(
            feedloop_core::trace::TracePart {
                id: TraceId::parse("id", "tr-1").unwrap(),
                ..Default::default()
            },
            Timestamp::UNIX_EPOCH,
        );
        trace.input = input.map(str::to_owned);
        trace.output = output.map(str::to_owned);
        trace
    }

    fn span(input: Value, output: Value) -> Span {
        let part = SpanPart {
            input: Some(input),
            output: Some(output),
            name: Some("chat \"same_as_trace\"".into()),
            ..Default::default()
        };
        Span::from_part(
            SpanId::parse("id", "sp-1").unwrap(),
            part,
            Timestamp::UNIX_EPOCH,
        )
    }

    #[test]
    fn text_equal_to_the_traces_is_stored_once_and_read_back() {
        let trace = trace(Some("the question"), Some("the answer"));
        let whole = span("the question".into(), "the answer".into());
        let doc = to_doc(whole.clone(), &trace).unwrap();
        assert!(
            !doc.contains("the question") && !doc.contains("the answer"),
            "{doc}"
        );
        let read = SpanDoc::parse(&doc).unwrap();
        assert!(read.shares_text());
        assert_eq!(
            read.resolve(Some("the question"), Some("the answer")),
            whole
        );
    }

    #[test]
    fn only_equal_text_is_shared() {
        let trace = trace(Some("the question"), Some("the answer"));
        for whole in [
            span(
                "another question".into(),
                serde_json::json!({"text": "the answer"}),
            ),
            span(Value::Null, Value::Null),
        ] {
            let doc = to_doc(whole.clone(), &trace).unwrap();
            let read = SpanDoc::parse(&doc).unwrap();
            assert!(!read.shares_text(), "{doc}");
            assert_eq!(read.resolve(None, None), whole);
        }
        let half = span("the question".into(), "a different answer".into());
        let doc = to_doc(half.clone(), &trace).unwrap();
        assert!(doc.contains("a different answer"));
        assert_eq!(
            SpanDoc::parse(&doc)
                .unwrap()
                .resolve(Some("the question"), None),
            half
        );
    }

    #[test]
    fn a_fresh_doc_is_the_doc_of_the_span_its_part_makes() {
        let trace = trace(Some("the question"), Some("the answer"));
        let id = SpanId::parse("id", "sp-1").unwrap();
        let start = Timestamp::from_second(1_700_000_000).unwrap();
        let full = SpanPart {
            parent_id: Some(SpanId::parse("id", "sp-0").unwrap()),
            kind: Some(SpanKind::Llm),
            name: Some(String::new()),
            input: Some("the question".into()),
            output: Some(serde_json::json!({"text": "the answer"})),
            attributes: Map::from_iter([
                ("b".to_owned(), Value::from(2)),
                ("a".to_owned(), Value::from("x")),
            ]),
            status: Some(Status::Error),
            status_message: Some("boom".into()),
            started_at: Some(Timestamp::from_second(1_700_000_005).unwrap()),
            ended_at: Some(Timestamp::from_second(1_700_000_009).unwrap()),
        };
        let parts = [
            full.clone(),
            SpanPart::default(),
            SpanPart {
                input: Some(Value::Null),
                output: Some("the answer".into()),
                ..SpanPart::default()
            },
            SpanPart {
                input: Some("the question".into()),
                output: Some("the answer".into()),
                kind: None,
                status: None,
                ..full
            },
        ];
        for part in parts {
            let span = Span::from_part(id.clone(), part.clone(), start);
            let expected = (span.started_at, to_doc(span, &trace).unwrap());
            assert_eq!(
                fresh_doc(&id, &part, start, &trace).unwrap(),
                expected,
                "{part:?}"
            );
        }
    }
}
