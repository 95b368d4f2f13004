//! The one place that turns OTLP spans into feedloop traces, spans and feedback.
//!
//! Every span is kept as a span of its trace (OTLP trace id and span id, in lowercase hex, are
//! the feedloop ids). What the spans say about the whole trace becomes trace parts:
//!
//! - the **root** span (no parent) speaks for the trace: its part replaces stored fields, and its
//!   duration is the trace's latency;
//! - the other spans of the export (model calls first, in start order) are folded into one
//!   [`PartMerge::FillGaps`] part: they give the query, the answer, the system prompt and
//!   messages, the model and tokens (summed over the model calls of the export), the retrieved
//!   documents and tool results, but only where the root has not spoken, whichever arrives first.
//!
//! A trace whose spans come in several exports, in any order, therefore ends as one trace. The
//! resource's attributes, the root's and the model calls' unread attributes are the trace's
//! metadata; a span's attributes are all kept on the span, less the input and output it carries
//! as fields. A span that cannot be read (bad ids or times) is rejected with its reason and the
//! rest of the export goes on.

mod attributes;
mod feedback;
mod messages;
mod resource;
mod span;

use feedloop_core::feedback::Feedback;
use feedloop_core::trace::{PartMerge, SpanKind, SpanPart, Status, TracePart};
use feedloop_core::{SpanId, Timestamp, TraceId};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{Span as OtlpSpan, status::StatusCode};
use serde_json::{Map, Value};
use std::collections::HashMap;

pub use attributes::{Attributes, any_value_to_json};
use resource::ResourceFacts;
use span::{ReadSpan, SpanInput};

/// Most reasons listed in a partial-success message; the count is always complete.
const MAX_LISTED_REASONS: usize = 10;

/// An export, mapped: trace parts and feedback to store, and what was rejected.
#[derive(Debug, Default)]
pub struct MappedExport {
    pub traces: Vec<TracePart>,
    /// For each trace part, how many spans it carries (to count them if the store rejects it).
    pub spans_per_part: Vec<u64>,
    pub feedback: Vec<Feedback>,
    pub num_spans: u64,
    pub rejected: Rejections,
}

/// Spans (and feedback) that were not stored, with why.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rejections {
    pub num_spans: u64,
    pub reasons: Vec<String>,
}

impl Rejections {
    pub fn add(&mut self, num_spans: u64, reason: String) {
        self.num_spans += num_spans;
        self.reasons.push(reason);
    }

    pub fn is_empty(&self) -> bool {
        self.num_spans == 0 && self.reasons.is_empty()
    }

    /// The partial-success message: the first reasons, and how many more there were.
    pub fn message(&self) -> String {
        let mut message = self
            .reasons
            .iter()
            .take(MAX_LISTED_REASONS)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ");
        if self.reasons.len() > MAX_LISTED_REASONS {
            message.push_str(&format!(
                "; and {} more",
                self.reasons.len() - MAX_LISTED_REASONS
            ));
        }
        message
    }
}

/// The spans of one trace in an export.
#[derive(Default)]
struct TraceGroup {
    root: Option<TracePart>,
    /// What the other spans say, with their kinds.
    children: Vec<(SpanKind, TracePart)>,
    spans: Vec<(SpanId, SpanPart)>,
}

/// Maps a whole export. Never fails: what cannot be read is listed in [`MappedExport::rejected`].
pub fn map_export(request: ExportTraceServiceRequest) -> MappedExport {
    let mut export = MappedExport::default();
    let mut groups: Vec<(TraceId, TraceGroup)> = Vec::new();
    let mut group_of: HashMap<Vec<u8>, usize> = HashMap::new();
    for (resource_index, resource_spans) in request.resource_spans.into_iter().enumerate() {
        let resource = ResourceFacts::read(&Attributes::new(
            resource_spans
                .resource
                .map(|r| r.attributes)
                .unwrap_or_default(),
        ));
        for (scope_index, scope_spans) in resource_spans.scope_spans.into_iter().enumerate() {
            let scope = scope_spans.scope.map(|s| (s.name, s.version));
            for (span_index, otlp_span) in scope_spans.spans.into_iter().enumerate() {
                export.num_spans += 1;
                let raw_trace_id = otlp_span.trace_id.clone();
                match read_otlp_span(otlp_span, &resource, scope.as_ref(), &mut export) {
                    Ok(read) => {
                        let index = *group_of.entry(raw_trace_id).or_insert_with(|| {
                            groups.push((read.trace_id.clone(), TraceGroup::default()));
                            groups.len() - 1
                        });
                        let group = &mut groups[index].1;
                        let ReadSpan {
                            span_id,
                            span,
                            mut facts,
                            kind,
                            is_root,
                            ..
                        } = read;
                        group.spans.push((span_id, span));
                        if is_root {
                            facts.merge = PartMerge::Replace;
                            if let (Some(start), Some(end)) = (facts.started_at, facts.ended_at) {
                                facts.latency_ms =
                                    Some(end.duration_since(start).as_secs_f64() * 1000.0);
                            }
                            group.root = Some(facts);
                        } else {
                            group.children.push((kind, facts));
                        }
                    }
                    Err(reason) => export.rejected.add(
                        1,
                        format!(
                            "resource_spans[{resource_index}].scope_spans[{scope_index}].spans[{span_index}]: {reason}"
                        ),
                    ),
                }
            }
        }
    }
    for (trace_id, group) in groups {
        let num_spans = group.spans.len() as u64;
        let fill = fold_children(&trace_id, group.children);
        let mut parts: Vec<TracePart> = group.root.into_iter().chain(fill).collect();
        if parts.is_empty() {
            continue;
        }
        parts[0].spans = group.spans;
        for (index, part) in parts.into_iter().enumerate() {
            export
                .spans_per_part
                .push(if index == 0 { num_spans } else { 0 });
            export.traces.push(part);
        }
    }
    export
}

/// Reads one span (and the feedback it carries) or says why it cannot be read.
fn read_otlp_span(
    otlp_span: OtlpSpan,
    resource: &ResourceFacts,
    scope: Option<&(String, String)>,
    export: &mut MappedExport,
) -> Result<ReadSpan, String> {
    let trace_id = hex_id(&otlp_span.trace_id, 16, "trace_id")?;
    let span_id = hex_id(&otlp_span.span_id, 8, "span_id")?;
    let parent_id = if otlp_span.parent_span_id.is_empty() {
        None
    } else {
        Some(hex_id(&otlp_span.parent_span_id, 8, "parent_span_id")?)
    }
    .map(|id| SpanId::parse("parent_span_id", id).map_err(|e| e.to_string()))
    .transpose()?;
    let started_at = time(otlp_span.start_time_unix_nano)
        .ok_or("start_time_unix_nano is missing or out of range")?;
    let ended_at = match otlp_span.end_time_unix_nano {
        0 => None,
        nanos => Some(time(nanos).ok_or("end_time_unix_nano is out of range")?),
    };
    if ended_at.is_some_and(|end| end < started_at) {
        return Err("end_time_unix_nano is before start_time_unix_nano".into());
    }
    let trace_id = TraceId::parse("trace_id", trace_id).map_err(|e| e.to_string())?;
    let span_id = SpanId::parse("span_id", span_id).map_err(|e| e.to_string())?;
    if parent_id.as_ref() == Some(&span_id) {
        return Err("a span cannot be its own parent".into());
    }
    let (status, status_message) = match otlp_span.status {
        Some(status) => (
            match StatusCode::try_from(status.code) {
                Ok(StatusCode::Ok) => Status::Ok,
                Ok(StatusCode::Error) => Status::Error,
                Ok(StatusCode::Unset) | Err(_) => Status::Unset,
            },
            Some(status.message).filter(|m| !m.is_empty()),
        ),
        None => (Status::Unset, None),
    };
    let attributes = Attributes::new(otlp_span.attributes);
    let events: Vec<(String, Attributes, Option<Timestamp>)> = otlp_span
        .events
        .into_iter()
        .map(|event| {
            (
                event.name,
                Attributes::new(event.attributes),
                time(event.time_unix_nano),
            )
        })
        .collect();
    let links: Vec<(Vec<u8>, Vec<u8>)> = otlp_span
        .links
        .into_iter()
        .map(|link| (link.trace_id, link.span_id))
        .collect();

    // Feedback first: it reads its own attributes, which are then not metadata.
    let annotations = feedback::annotations(&attributes, ended_at.or(Some(started_at)));
    if !annotations.is_empty() {
        let target = links
            .iter()
            .find_map(|(trace, span)| {
                let trace = hex_id(trace, 16, "").ok()?;
                let span = hex_id(span, 8, "").ok()?;
                Some(feedback::Target {
                    trace_id: TraceId::parse("trace_id", trace).ok()?,
                    span_id: SpanId::parse("span_id", span).ok(),
                })
            })
            .unwrap_or_else(|| feedback::Target {
                trace_id: trace_id.clone(),
                span_id: parent_id.clone(),
            });
        for (index, evaluation) in annotations.into_iter().enumerate() {
            let prefix = format!("otlp-{}-annotation-{index}", span_id.as_str());
            let extra = Map::from_iter([(
                "otel.evaluator_span_id".to_owned(),
                Value::from(span_id.as_str()),
            )]);
            match feedback::to_feedback(evaluation, &target, &prefix, extra) {
                Ok(items) => export.feedback.extend(items),
                Err(reason) => export.rejected.add(
                    0,
                    format!("span {}: annotations[{index}]: {reason}", span_id.as_str()),
                ),
            }
        }
    }
    let mut other_events: Vec<(String, Attributes)> = Vec::new();
    for (index, (name, event, at)) in events.into_iter().enumerate() {
        if name == "gen_ai.evaluation.result" {
            let evaluation = feedback::evaluation_event(&event, at.or(ended_at));
            let target = feedback::Target {
                trace_id: trace_id.clone(),
                span_id: Some(span_id.clone()),
            };
            let prefix = format!("otlp-{}-evaluation-{index}", span_id.as_str());
            match feedback::to_feedback(evaluation, &target, &prefix, Map::new()) {
                Ok(items) => export.feedback.extend(items),
                Err(reason) => export.rejected.add(
                    0,
                    format!("span {}: events[{index}]: {reason}", span_id.as_str()),
                ),
            }
        } else {
            other_events.push((name, event));
        }
    }

    let mut read = span::read_span(SpanInput {
        trace_id,
        span_id,
        parent_id,
        name: otlp_span.name,
        started_at,
        ended_at,
        status,
        status_message,
        attributes,
        events: &other_events,
    });
    if !other_events.is_empty() {
        let kept: Vec<Value> = other_events
            .iter()
            .map(|(name, event)| {
                serde_json::json!({"name": name, "attributes": event.all_except(&[], &[])})
            })
            .collect();
        read.span
            .attributes
            .insert("otel.events".into(), Value::Array(kept));
    }
    if let Some((name, version)) = scope.filter(|(name, _)| !name.is_empty()) {
        read.span
            .attributes
            .insert("otel.scope.name".into(), Value::from(name.as_str()));
        if !version.is_empty() {
            read.span
                .attributes
                .insert("otel.scope.version".into(), Value::from(version.as_str()));
        }
    }
    read.facts.environment = read.facts.environment.or(resource.environment);
    for (key, value) in &resource.metadata {
        read.facts
            .metadata
            .entry(key.clone())
            .or_insert_with(|| value.clone());
    }
    Ok(read)
}

/// Folds what the non-root spans of one trace say into one fill-gaps part: model calls first (in
/// start order), then the rest; the first to say a thing wins, documents and tool results add
/// up, and tokens are summed over the model calls.
fn fold_children(
    trace_id: &TraceId,
    mut children: Vec<(SpanKind, TracePart)>,
) -> Option<TracePart> {
    if children.is_empty() {
        return None;
    }
    children.sort_by_key(|(kind, facts)| (*kind != SpanKind::Llm, facts.started_at));
    let mut part = TracePart {
        id: trace_id.clone(),
        merge: PartMerge::FillGaps,
        ..TracePart::default()
    };
    let mut tokens: [Option<u64>; 3] = [None; 3];
    for (kind, facts) in children {
        let is_llm = kind == SpanKind::Llm;
        if is_llm {
            for (sum, count) in tokens.iter_mut().zip([
                facts.usage.input_tokens,
                facts.usage.output_tokens,
                facts.usage.total_tokens,
            ]) {
                if let Some(count) = count {
                    *sum = Some(sum.unwrap_or(0).saturating_add(count));
                }
            }
            fill(&mut part.input, facts.input);
            fill(&mut part.output, facts.output);
            fill(&mut part.context.system_prompt, facts.context.system_prompt);
            if part.context.messages.is_empty() {
                part.context.messages = facts.context.messages;
            }
            fill(&mut part.model.name, facts.model.name);
            fill(&mut part.model.provider, facts.model.provider);
            fill(&mut part.model.version, facts.model.version);
            fill(&mut part.cost_usd, facts.cost_usd);
            for (key, value) in facts.metadata {
                part.metadata.entry(key).or_insert(value);
            }
        }
        fill(&mut part.context.prompt, facts.context.prompt);
        part.context.documents.extend(facts.context.documents);
        part.context.tool_results.extend(facts.context.tool_results);
        fill(&mut part.session_id, facts.session_id);
        fill(&mut part.user_id, facts.user_id);
        fill(&mut part.environment, facts.environment);
        if is_llm && facts.status == Some(Status::Error) {
            fill(&mut part.error, facts.error);
        }
        part.tags.extend(facts.tags);
        if let Some(start) = facts.started_at {
            part.started_at = Some(part.started_at.map_or(start, |s| s.min(start)));
        }
        if let Some(end) = facts.ended_at {
            part.ended_at = Some(part.ended_at.map_or(end, |e| e.max(end)));
        }
    }
    let [input_tokens, output_tokens, total_tokens] = tokens;
    part.usage.input_tokens = input_tokens;
    part.usage.output_tokens = output_tokens;
    part.usage.total_tokens = total_tokens;
    Some(part)
}

fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

/// An OTLP id as lowercase hex, checked: `len` bytes, not all zero.
fn hex_id(bytes: &[u8], len: usize, field: &str) -> Result<String, String> {
    if bytes.len() != len {
        return Err(format!("{field} must be {len} bytes, got {}", bytes.len()));
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(format!("{field} must not be all zero"));
    }
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(len * 2);
    for byte in bytes {
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    Ok(hex)
}

/// Nanoseconds since the epoch as a timestamp; 0 means unset.
fn time(nanos: u64) -> Option<Timestamp> {
    if nanos == 0 {
        return None;
    }
    Timestamp::from_nanosecond(i128::from(nanos)).ok()
}

#[cfg(test)]
mod tests;
