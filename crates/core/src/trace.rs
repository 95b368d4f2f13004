//! Traces and spans: one interaction (query → context → output) and the steps inside it.
//!
//! A client may send a trace in parts (a start with the input, later the output and usage); each
//! part is a [`TracePart`] and [`Trace::merge`] folds it into what is stored. The rule: a field a
//! part sets replaces the stored one, tags are a union, metadata merges key by key, and spans are
//! merged by span id. Re-sending a part therefore changes nothing.
//!
//! A part may instead be marked [`PartMerge::FillGaps`]: it only sets what the stored trace does
//! not have yet, and widens the trace's time range. OTLP uses this for what a child span (an LLM
//! call, a retrieval) says about the whole trace, so that the root span's word wins whichever of
//! them arrives first.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

use crate::ids::{SpanId, TraceId};

/// Where a trace was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    Dev,
    Test,
    Staging,
    Prod,
}

impl Environment {
    pub const ALL: [Environment; 4] = [Self::Dev, Self::Test, Self::Staging, Self::Prod];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::Test => "test",
            Self::Staging => "staging",
            Self::Prod => "prod",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == s)
    }
}

/// The model that produced the output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ModelInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Token counts of the model call(s).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Usage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
}

/// The prompt template the app rendered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PromptRef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub variables: Map<String, Value>,
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A document retrieved for the model's context (RAG).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Document {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub content: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
}

/// The result of a tool the model called.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ToolResult {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub arguments: Value,
    pub output: String,
}

/// The context stack the model saw besides the user's input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Context {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<PromptRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<Document>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_results: Vec<ToolResult>,
}

impl Context {
    /// Folds `part` in: what the part carries replaces what was there.
    fn merge(&mut self, part: Context) {
        replace_if_some(&mut self.system_prompt, part.system_prompt);
        replace_if_some(&mut self.prompt, part.prompt);
        replace_if_nonempty(&mut self.messages, part.messages);
        replace_if_nonempty(&mut self.documents, part.documents);
        replace_if_nonempty(&mut self.tool_results, part.tool_results);
    }

    /// Folds `part` in where this context has nothing yet.
    fn fill(&mut self, part: Context) {
        fill_if_none(&mut self.system_prompt, part.system_prompt);
        fill_if_none(&mut self.prompt, part.prompt);
        fill_if_empty(&mut self.messages, part.messages);
        fill_if_empty(&mut self.documents, part.documents);
        fill_if_empty(&mut self.tool_results, part.tool_results);
    }

    fn is_empty(&self) -> bool {
        *self == Context::default()
    }
}

/// Whether an interaction or a step succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Unset,
    Ok,
    Error,
}

/// The kind of step a span records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    Llm,
    Retrieval,
    Tool,
    Chain,
    Embedding,
    Other,
}

impl SpanKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Llm => "llm",
            Self::Retrieval => "retrieval",
            Self::Tool => "tool",
            Self::Chain => "chain",
            Self::Embedding => "embedding",
            Self::Other => "other",
        }
    }
}

/// One step inside a trace, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub id: SpanId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<SpanId>,
    pub kind: SpanKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub input: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub output: Value,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
}

/// A span as a client sends it; every field but the id may come in a later part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanPart {
    pub parent_id: Option<SpanId>,
    pub kind: Option<SpanKind>,
    pub name: Option<String>,
    pub input: Option<Value>,
    pub output: Option<Value>,
    pub attributes: Map<String, Value>,
    pub status: Option<Status>,
    pub status_message: Option<String>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
}

impl Span {
    /// A new span from its first part; `fallback_start` stands in for a missing start time.
    pub fn from_part(id: SpanId, part: SpanPart, fallback_start: Timestamp) -> Self {
        let mut span = Span {
            id,
            parent_id: None,
            kind: SpanKind::Other,
            name: None,
            input: Value::Null,
            output: Value::Null,
            attributes: Map::new(),
            status: Status::Unset,
            status_message: None,
            started_at: part.started_at.unwrap_or(fallback_start),
            ended_at: None,
        };
        span.merge(part);
        span
    }

    pub fn merge(&mut self, part: SpanPart) {
        replace_if_some(&mut self.parent_id, part.parent_id);
        if let Some(kind) = part.kind {
            self.kind = kind;
        }
        replace_if_some(&mut self.name, part.name);
        if let Some(input) = part.input {
            self.input = input;
        }
        if let Some(output) = part.output {
            self.output = output;
        }
        self.attributes.extend(part.attributes);
        if let Some(status) = part.status {
            self.status = status;
        }
        replace_if_some(&mut self.status_message, part.status_message);
        if let Some(started_at) = part.started_at {
            self.started_at = started_at;
        }
        replace_if_some(&mut self.ended_at, part.ended_at);
    }
}

/// How a part folds into the stored trace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PartMerge {
    /// What the part sets replaces what is stored (the JSON API's rule).
    #[default]
    Replace,
    /// The part only sets fields the stored trace lacks (tags still add up, metadata keys are
    /// added where absent), and widens the time range: the start is the earlier of the two, the
    /// end the later. For what a child span says about its whole trace.
    FillGaps,
}

/// A trace as a client sends it: any subset of the fields, to be merged into the stored trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TracePart {
    pub id: TraceId,
    /// Whether this part replaces stored fields or only fills gaps.
    pub merge: PartMerge,
    pub session_id: Option<String>,
    pub user_id: Option<String>,
    pub user_role: Option<String>,
    pub environment: Option<Environment>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub context: Context,
    pub model: ModelInfo,
    pub latency_ms: Option<f64>,
    pub usage: Usage,
    pub cost_usd: Option<f64>,
    pub status: Option<Status>,
    pub error: Option<String>,
    pub tags: BTreeSet<String>,
    pub metadata: Map<String, Value>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub spans: Vec<(SpanId, SpanPart)>,
}

impl Default for TraceId {
    fn default() -> Self {
        TraceId::parse("id", "_").expect("a static id is valid")
    }
}

/// One interaction as stored: the merge of every part received for its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub id: TraceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(default, skip_serializing_if = "Context::is_empty")]
    pub context: Context,
    #[serde(default)]
    pub model: ModelInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default)]
    pub usage: Usage,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub tags: BTreeSet<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    pub started_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    /// When the first part arrived.
    pub created_at: Timestamp,
    /// When the last part arrived.
    pub updated_at: Timestamp,
}

impl Trace {
    /// A new trace from its first part, received at `now`. Spans are not part of the trace value;
    /// the store keeps them beside it (see [`TracePart::spans`]).
    pub fn from_part(part: TracePart, now: Timestamp) -> Self {
        let mut trace = Trace {
            id: part.id.clone(),
            session_id: None,
            user_id: None,
            user_role: None,
            environment: None,
            input: None,
            output: None,
            context: Context::default(),
            model: ModelInfo::default(),
            latency_ms: None,
            usage: Usage::default(),
            cost_usd: None,
            status: Status::Unset,
            error: None,
            tags: BTreeSet::new(),
            metadata: Map::new(),
            started_at: part.started_at.unwrap_or(now),
            ended_at: None,
            created_at: now,
            updated_at: now,
        };
        trace.merge(part, now);
        trace
    }

    /// Folds a later part in (see the module docs for the rule). Spans are merged by the store.
    pub fn merge(&mut self, part: TracePart, now: Timestamp) {
        match part.merge {
            PartMerge::Replace => self.replace_from(part),
            PartMerge::FillGaps => self.fill_from(part),
        }
        if self.latency_ms.is_none()
            && let Some(ended_at) = self.ended_at
        {
            let millis = ended_at.duration_since(self.started_at).as_secs_f64() * 1000.0;
            self.latency_ms = (millis >= 0.0).then_some(millis);
        }
        if self.usage.total_tokens.is_none()
            && let (Some(input), Some(output)) = (self.usage.input_tokens, self.usage.output_tokens)
        {
            self.usage.total_tokens = Some(input.saturating_add(output));
        }
        self.updated_at = now;
    }

    fn fill_from(&mut self, part: TracePart) {
        fill_if_none(&mut self.session_id, part.session_id);
        fill_if_none(&mut self.user_id, part.user_id);
        fill_if_none(&mut self.user_role, part.user_role);
        fill_if_none(&mut self.environment, part.environment);
        fill_if_none(&mut self.input, part.input);
        fill_if_none(&mut self.output, part.output);
        self.context.fill(part.context);
        fill_if_none(&mut self.model.name, part.model.name);
        fill_if_none(&mut self.model.provider, part.model.provider);
        fill_if_none(&mut self.model.version, part.model.version);
        fill_if_none(&mut self.latency_ms, part.latency_ms);
        fill_if_none(&mut self.usage.input_tokens, part.usage.input_tokens);
        fill_if_none(&mut self.usage.output_tokens, part.usage.output_tokens);
        fill_if_none(&mut self.usage.total_tokens, part.usage.total_tokens);
        fill_if_none(&mut self.cost_usd, part.cost_usd);
        if self.status == Status::Unset
            && let Some(status) = part.status
        {
            self.status = status;
        }
        fill_if_none(&mut self.error, part.error);
        self.tags.extend(part.tags);
        for (key, value) in part.metadata {
            self.metadata.entry(key).or_insert(value);
        }
        if let Some(started_at) = part.started_at {
            self.started_at = self.started_at.min(started_at);
        }
        if let Some(ended_at) = part.ended_at {
            self.ended_at = Some(self.ended_at.map_or(ended_at, |e| e.max(ended_at)));
        }
    }

    fn replace_from(&mut self, part: TracePart) {
        replace_if_some(&mut self.session_id, part.session_id);
        replace_if_some(&mut self.user_id, part.user_id);
        replace_if_some(&mut self.user_role, part.user_role);
        replace_if_some(&mut self.environment, part.environment);
        replace_if_some(&mut self.input, part.input);
        replace_if_some(&mut self.output, part.output);
        self.context.merge(part.context);
        replace_if_some(&mut self.model.name, part.model.name);
        replace_if_some(&mut self.model.provider, part.model.provider);
        replace_if_some(&mut self.model.version, part.model.version);
        replace_if_some(&mut self.latency_ms, part.latency_ms);
        replace_if_some(&mut self.usage.input_tokens, part.usage.input_tokens);
        replace_if_some(&mut self.usage.output_tokens, part.usage.output_tokens);
        replace_if_some(&mut self.usage.total_tokens, part.usage.total_tokens);
        replace_if_some(&mut self.cost_usd, part.cost_usd);
        if let Some(status) = part.status {
            self.status = status;
        }
        replace_if_some(&mut self.error, part.error);
        self.tags.extend(part.tags);
        self.metadata.extend(part.metadata);
        if let Some(started_at) = part.started_at {
            self.started_at = started_at;
        }
        replace_if_some(&mut self.ended_at, part.ended_at);
    }
}

/// A trace made from its first part alone ([`Trace::from_part`]), which can give the part back.
/// The store writes a part with a new id (the usual case) as this trace, and needs the part only
/// when the id turns out to be stored already, to merge it: keeping a copy of every part beside
/// its trace cost more than the rare rebuild.
#[derive(Debug, Clone)]
pub struct FreshTrace {
    pub trace: Trace,
    merge: PartMerge,
    /// Fields the part left unset and [`Trace::from_part`] filled in.
    unset: Unset,
}

#[derive(Debug, Clone, Copy)]
struct Unset {
    started_at: bool,
    latency_ms: bool,
    total_tokens: bool,
    status: bool,
}

impl FreshTrace {
    pub fn new(part: TracePart, now: Timestamp) -> Self {
        let merge = part.merge;
        let unset = Unset {
            started_at: part.started_at.is_none(),
            latency_ms: part.latency_ms.is_none(),
            total_tokens: part.usage.total_tokens.is_none(),
            status: part.status.is_none(),
        };
        Self {
            trace: Trace::from_part(part, now),
            merge,
            unset,
        }
    }

    /// The part the trace was made from, less its spans (a trace does not hold them). Every
    /// other field of a new trace is the part's, merged into nothing.
    pub fn part(&self) -> TracePart {
        let (trace, unset) = (self.trace.clone(), self.unset);
        TracePart {
            id: trace.id,
            merge: self.merge,
            session_id: trace.session_id,
            user_id: trace.user_id,
            user_role: trace.user_role,
            environment: trace.environment,
            input: trace.input,
            output: trace.output,
            context: trace.context,
            model: trace.model,
            latency_ms: trace.latency_ms.filter(|_| !unset.latency_ms),
            usage: Usage {
                total_tokens: trace.usage.total_tokens.filter(|_| !unset.total_tokens),
                ..trace.usage
            },
            cost_usd: trace.cost_usd,
            status: (!unset.status).then_some(trace.status),
            error: trace.error,
            tags: trace.tags,
            metadata: trace.metadata,
            started_at: (!unset.started_at).then_some(trace.started_at),
            ended_at: trace.ended_at,
            spans: Vec::new(),
        }
    }
}

fn replace_if_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

fn replace_if_nonempty<T>(slot: &mut Vec<T>, value: Vec<T>) {
    if !value.is_empty() {
        *slot = value;
    }
}

fn fill_if_none<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

fn fill_if_empty<T>(slot: &mut Vec<T>, value: Vec<T>) {
    if slot.is_empty() {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> TraceId {
        TraceId::parse("id", s).unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parts_merge_into_one_trace() {
        let start = TracePart {
            id: id("t1"),
            input: Some("how do I reset my card pin?".into()),
            session_id: Some("s1".into()),
            tags: ["beta".to_owned()].into(),
            metadata: Map::from_iter([("a".to_owned(), Value::from(1))]),
            started_at: Some(ts("2026-01-01T00:00:00Z")),
            ..Default::default()
        };
        let mut trace = Trace::from_part(start.clone(), ts("2026-01-01T00:00:01Z"));
        let end = TracePart {
            id: id("t1"),
            output: Some("Open the app and …".into()),
            usage: Usage {
                input_tokens: Some(10),
                output_tokens: Some(20),
                total_tokens: None,
            },
            tags: ["cards".to_owned()].into(),
            metadata: Map::from_iter([("b".to_owned(), Value::from(2))]),
            ended_at: Some(ts("2026-01-01T00:00:00.250Z")),
            ..Default::default()
        };
        trace.merge(end.clone(), ts("2026-01-01T00:00:02Z"));

        assert_eq!(trace.input.as_deref(), Some("how do I reset my card pin?"));
        assert_eq!(trace.output.as_deref(), Some("Open the app and …"));
        assert_eq!(trace.session_id.as_deref(), Some("s1"));
        assert_eq!(trace.usage.total_tokens, Some(30));
        assert_eq!(trace.latency_ms, Some(250.0));
        assert_eq!(trace.tags.len(), 2);
        assert_eq!(trace.metadata.len(), 2);
        assert_eq!(trace.created_at, ts("2026-01-01T00:00:01Z"));
        assert_eq!(trace.updated_at, ts("2026-01-01T00:00:02Z"));

        // Re-sending either part changes nothing but the update time.
        let before = trace.clone();
        trace.merge(start, ts("2026-01-01T00:00:02Z"));
        trace.merge(end, ts("2026-01-01T00:00:02Z"));
        assert_eq!(trace, before);
    }

    #[test]
    fn span_parts_merge_by_field() {
        let sid = SpanId::parse("id", "s").unwrap();
        let mut span = Span::from_part(
            sid,
            SpanPart {
                kind: Some(SpanKind::Retrieval),
                ..Default::default()
            },
            ts("2026-01-01T00:00:00Z"),
        );
        span.merge(SpanPart {
            output: Some(Value::from("doc")),
            status: Some(Status::Ok),
            ..Default::default()
        });
        assert_eq!(span.kind, SpanKind::Retrieval);
        assert_eq!(span.output, Value::from("doc"));
        assert_eq!(span.status, Status::Ok);
    }

    #[test]
    fn a_fresh_trace_gives_back_the_part_it_was_made_from() {
        let now = ts("2026-01-02T03:04:05Z");
        let full = TracePart {
            id: id("tr-1"),
            merge: PartMerge::Replace,
            session_id: Some("s".into()),
            user_id: Some("u".into()),
            user_role: Some("admin".into()),
            environment: Some(Environment::Prod),
            input: Some("q".into()),
            output: Some("a".into()),
            context: Context {
                system_prompt: Some("be brief".into()),
                ..Context::default()
            },
            model: ModelInfo {
                name: Some("m".into()),
                provider: Some("p".into()),
                version: Some("v".into()),
            },
            latency_ms: Some(12.5),
            usage: Usage {
                input_tokens: Some(3),
                output_tokens: Some(4),
                total_tokens: Some(9),
            },
            cost_usd: Some(0.25),
            status: Some(Status::Error),
            error: Some("boom".into()),
            tags: BTreeSet::from(["t".to_owned()]),
            metadata: Map::from_iter([("k".to_owned(), Value::from(1))]),
            started_at: Some(ts("2026-01-02T03:00:00Z")),
            ended_at: Some(ts("2026-01-02T03:00:02Z")),
            spans: Vec::new(),
        };
        // Unset fields that the trace derives (latency, total, start, status) stay unset.
        let derived = TracePart {
            merge: PartMerge::FillGaps,
            latency_ms: None,
            usage: Usage {
                total_tokens: None,
                ..full.usage.clone()
            },
            status: None,
            started_at: None,
            ..full.clone()
        };
        let bare = TracePart {
            id: id("tr-2"),
            ..TracePart::default()
        };
        for part in [full, derived, bare] {
            let fresh = FreshTrace::new(part.clone(), now);
            assert_eq!(fresh.trace, Trace::from_part(part.clone(), now));
            assert_eq!(fresh.part(), part);
        }
    }
}
