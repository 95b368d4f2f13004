//! Traces and spans on the wire.

use feedloop_core::trace::{
    Context, Environment, ModelInfo, PartMerge, Span, SpanKind, SpanPart, Status, Trace, TracePart,
    Usage,
};
use feedloop_core::{SpanId, Timestamp, TraceId, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use utoipa::ToSchema;

/// A trace, or a part of one: send the start, then the output and usage later under the same id,
/// and the parts merge (a field a part sets replaces the stored one; tags add up; metadata
/// merges key by key; spans merge by id).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraceBody {
    /// Client-chosen id (printable ascii, at most 128 bytes). Generated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// The user's query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// The model's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<SpanBody>,
}

/// One step inside a trace; parts merge by `id` like traces do.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpanBody {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<SpanKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub ended_at: Option<Timestamp>,
}

/// A stored trace as the API returns it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TraceView {
    #[serde(flatten)]
    pub trace: TraceBody,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

/// Longest tag, in bytes; most tags per trace.
const MAX_TAG_BYTES: usize = 128;
const MAX_TAGS: usize = 64;

impl TraceBody {
    /// Converts to the domain's trace part; `new_id` supplies an id when the body has none.
    pub fn into_part(self, new_id: impl FnOnce() -> String) -> Result<TracePart, ValidationError> {
        let id = TraceId::parse("id", self.id.unwrap_or_else(new_id))?;
        for (field, number) in [("latency_ms", self.latency_ms), ("cost_usd", self.cost_usd)] {
            if let Some(number) = number
                && !(number.is_finite() && number >= 0.0)
            {
                return Err(ValidationError::new(field, "must be a finite number >= 0"));
            }
        }
        if let (Some(started), Some(ended)) = (self.started_at, self.ended_at)
            && ended < started
        {
            return Err(ValidationError::new(
                "ended_at",
                "must not be before started_at",
            ));
        }
        if self.tags.len() > MAX_TAGS {
            return Err(ValidationError::new(
                "tags",
                format!("at most {MAX_TAGS} tags"),
            ));
        }
        for (index, tag) in self.tags.iter().enumerate() {
            if tag.is_empty() || tag.len() > MAX_TAG_BYTES {
                return Err(ValidationError::new(
                    format!("tags[{index}]"),
                    format!("must be 1 to {MAX_TAG_BYTES} bytes"),
                ));
            }
        }
        for (field, text) in [("session_id", &self.session_id), ("user_id", &self.user_id)] {
            if let Some(text) = text
                && (text.is_empty() || text.len() > 256)
            {
                return Err(ValidationError::new(field, "must be 1 to 256 bytes"));
            }
        }
        let mut spans = Vec::with_capacity(self.spans.len());
        for (index, span) in self.spans.into_iter().enumerate() {
            let span = span
                .into_part()
                .map_err(|e| e.within(&format!("spans[{index}]")))?;
            if spans.iter().any(|(id, _)| *id == span.0) {
                return Err(ValidationError::new(
                    format!("spans[{index}].id"),
                    "is used twice in this trace",
                ));
            }
            spans.push(span);
        }
        Ok(TracePart {
            id,
            merge: PartMerge::Replace,
            session_id: self.session_id,
            user_id: self.user_id,
            user_role: self.user_role,
            environment: self.environment,
            input: self.input,
            output: self.output,
            context: self.context.unwrap_or_default(),
            model: self.model.unwrap_or_default(),
            latency_ms: self.latency_ms,
            usage: self.usage.unwrap_or_default(),
            cost_usd: self.cost_usd,
            status: self.status,
            error: self.error,
            tags: BTreeSet::from_iter(self.tags),
            metadata: self.metadata,
            started_at: self.started_at,
            ended_at: self.ended_at,
            spans,
        })
    }

    /// The wire form of a stored trace and its spans.
    pub fn from_trace(trace: Trace, spans: Vec<Span>) -> Self {
        let non_default = |is_default: bool| !is_default;
        TraceBody {
            id: Some(trace.id.into_string()),
            session_id: trace.session_id,
            user_id: trace.user_id,
            user_role: trace.user_role,
            environment: trace.environment,
            input: trace.input,
            output: trace.output,
            context: non_default(trace.context == Context::default()).then_some(trace.context),
            model: non_default(trace.model == ModelInfo::default()).then_some(trace.model),
            latency_ms: trace.latency_ms,
            usage: non_default(trace.usage == Usage::default()).then_some(trace.usage),
            cost_usd: trace.cost_usd,
            status: Some(trace.status),
            error: trace.error,
            tags: trace.tags.into_iter().collect(),
            metadata: trace.metadata,
            started_at: Some(trace.started_at),
            ended_at: trace.ended_at,
            spans: spans.into_iter().map(SpanBody::from).collect(),
        }
    }
}

impl TraceView {
    pub fn new(trace: Trace, spans: Vec<Span>) -> Self {
        let (created_at, updated_at) = (trace.created_at, trace.updated_at);
        TraceView {
            trace: TraceBody::from_trace(trace, spans),
            created_at,
            updated_at,
        }
    }
}

impl SpanBody {
    fn into_part(self) -> Result<(SpanId, SpanPart), ValidationError> {
        let id = SpanId::parse("id", self.id)?;
        let parent_id = self
            .parent_id
            .map(|p| SpanId::parse("parent_id", p))
            .transpose()?;
        if parent_id.as_ref() == Some(&id) {
            return Err(ValidationError::new(
                "parent_id",
                "a span cannot be its own parent",
            ));
        }
        if let (Some(started), Some(ended)) = (self.started_at, self.ended_at)
            && ended < started
        {
            return Err(ValidationError::new(
                "ended_at",
                "must not be before started_at",
            ));
        }
        let part = SpanPart {
            parent_id,
            kind: self.kind,
            name: self.name,
            input: self.input,
            output: self.output,
            attributes: self.attributes,
            status: self.status,
            status_message: self.status_message,
            started_at: self.started_at,
            ended_at: self.ended_at,
        };
        Ok((id, part))
    }
}

impl From<Span> for SpanBody {
    fn from(span: Span) -> Self {
        let value = |v: Value| (!v.is_null()).then_some(v);
        SpanBody {
            id: span.id.into_string(),
            parent_id: span.parent_id.map(SpanId::into_string),
            kind: Some(span.kind),
            name: span.name,
            input: value(span.input),
            output: value(span.output),
            attributes: span.attributes,
            status: Some(span.status),
            status_message: span.status_message,
            started_at: Some(span.started_at),
            ended_at: span.ended_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_trace_converts_back_to_the_body_it_came_from() {
        let body: TraceBody = serde_json::from_value(serde_json::json!({
            "id": "t1", "input": "q", "output": "a", "environment": "prod",
            "model": {"name": "gpt-4o", "provider": "openai"},
            "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
            "status": "ok", "tags": ["x"], "metadata": {"k": "v"},
            "started_at": "2026-01-01T00:00:00Z",
            "spans": [{"id": "s1", "kind": "llm", "status": "ok", "started_at": "2026-01-01T00:00:00Z"}]
        }))
        .unwrap();
        let now: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let mut part = body.clone().into_part(|| unreachable!()).unwrap();
        let spans = std::mem::take(&mut part.spans)
            .into_iter()
            .map(|(id, span)| Span::from_part(id, span, now))
            .collect();
        let back = TraceBody::from_trace(Trace::from_part(part, now), spans);
        assert_eq!(back, body);
    }

    #[test]
    fn bad_numbers_and_duplicate_spans_name_their_field() {
        let body = TraceBody {
            latency_ms: Some(-1.0),
            ..Default::default()
        };
        assert_eq!(
            body.into_part(|| "t".into()).unwrap_err().field,
            "latency_ms"
        );
        let span = SpanBody {
            id: "s".into(),
            ..Default::default()
        };
        let body = TraceBody {
            spans: vec![span.clone(), span],
            ..Default::default()
        };
        assert_eq!(
            body.into_part(|| "t".into()).unwrap_err().field,
            "spans[1].id"
        );
    }
}
