//! One OTLP span: its kind, its own input and output, and what it says about its trace (the
//! query, the answer, the model, tokens, context, session, user), read from the OpenTelemetry
//! GenAI conventions (current and deprecated names), OpenLLMetry's flattened names and
//! OpenInference.

use feedloop_core::trace::{
    Document, ModelInfo, PromptRef, SpanKind, SpanPart, Status, ToolResult, TracePart, Usage,
};
use feedloop_core::{SpanId, Timestamp, TraceId};
use serde_json::{Map, Value};
use std::collections::BTreeSet;

use super::attributes::Attributes;
use super::messages::{self, Direction};
use crate::gateway::chat;

/// Most tags a trace takes from `tag.tags`, and their longest length (as the JSON API).
const MAX_TAGS: usize = 64;
const MAX_TAG_BYTES: usize = 128;

/// A span read: the span itself, and the trace fields it speaks for.
#[derive(Debug)]
pub struct ReadSpan {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub span: SpanPart,
    /// What this span says about its trace; the caller decides whether it replaces or fills.
    pub facts: TracePart,
    pub kind: SpanKind,
    pub is_root: bool,
}

/// What a span carries, decoded from OTLP and checked: the ids, times and attribute lists.
pub struct SpanInput<'a> {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_id: Option<SpanId>,
    pub name: String,
    pub started_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub status: Status,
    pub status_message: Option<String>,
    pub attributes: Attributes,
    pub events: &'a [(String, Attributes)],
}

pub fn read_span(input: SpanInput<'_>) -> ReadSpan {
    let attributes = &input.attributes;
    let kind = span_kind(attributes);
    let input_messages = messages::messages(attributes, Direction::Input, input.events);
    let output_messages = messages::messages(attributes, Direction::Output, input.events);
    let input_mime = attributes.text("input.mime_type");
    let output_mime = attributes.text("output.mime_type");
    let input_value = attributes.text("input.value");
    let output_value = attributes.text("output.value");
    let documents = documents(attributes);

    // The span's own input and output: the value as sent, else the messages, else (a retriever)
    // the documents. Whatever fills them is not repeated in the span's attributes.
    let mut left_out: Vec<&str> = Vec::new();
    let mut left_out_prefixes: Vec<&str> = Vec::new();
    let span_input = if let Some(value) = &input_value {
        left_out.push("input.value");
        Some(typed_value(value, input_mime.as_deref()))
    } else if !input_messages.messages.is_empty() {
        left_out.extend(&input_messages.keys);
        left_out_prefixes.extend(&input_messages.prefixes);
        Some(Value::Array(input_messages.messages.clone()))
    } else {
        None
    };
    let span_output = if let Some(value) = &output_value {
        left_out.push("output.value");
        Some(typed_value(value, output_mime.as_deref()))
    } else if !output_messages.messages.is_empty() {
        left_out.extend(&output_messages.keys);
        left_out_prefixes.extend(&output_messages.prefixes);
        Some(Value::Array(output_messages.messages.clone()))
    } else if !documents.is_empty() {
        left_out_prefixes.push("retrieval.documents.");
        Some(serde_json::to_value(&documents).unwrap_or(Value::Null))
    } else {
        None
    };

    // The OpenAI request or response body as a span's input.value (OpenInference's OpenAI
    // instrumentation sends it): its messages count when no convention named them.
    let request_messages = if input_messages.messages.is_empty() {
        json_messages(input_value.as_deref(), input_mime.as_deref())
    } else {
        input_messages.messages
    };
    let mut facts = TracePart {
        id: input.trace_id.clone(),
        started_at: Some(input.started_at),
        ended_at: input.ended_at,
        status: Some(input.status).filter(|s| *s != Status::Unset),
        error: (input.status == Status::Error)
            .then(|| {
                input
                    .status_message
                    .clone()
                    .or_else(|| exception(input.events))
            })
            .flatten(),
        ..TracePart::default()
    };
    if kind == SpanKind::Llm {
        facts.input = chat::last_user_text(&request_messages)
            .filter(|text| !text.is_empty())
            .or_else(|| plain_text(input_value.as_deref(), input_mime.as_deref()));
        facts.output = output_messages
            .messages
            .iter()
            .map(|message| chat::content_text(&message["content"]))
            .find(|text| !text.is_empty())
            .or_else(|| json_answer(output_value.as_deref()))
            .or_else(|| plain_text(output_value.as_deref(), output_mime.as_deref()));
        facts.context.system_prompt = chat::system_prompt(&request_messages);
        facts.context.messages = chat::trace_messages(&request_messages);
        facts.model = model(attributes);
        facts.usage = usage(attributes);
        facts.cost_usd = attributes.number("llm.cost.total").filter(|c| *c >= 0.0);
    } else {
        // A chain or agent speaks for the trace in plain text; a JSON input (a framework's
        // internal state) leaves the query to the model calls below it.
        facts.input = plain_text(input_value.as_deref(), input_mime.as_deref());
        facts.output = plain_text(output_value.as_deref(), output_mime.as_deref());
    }
    facts.context.prompt = prompt(attributes);
    facts.context.documents = documents;
    if kind == SpanKind::Tool {
        facts.context.tool_results =
            tool_result(attributes, &input.name, input_value, output_value)
                .into_iter()
                .collect();
    }
    facts.session_id = attributes
        .first_text(&["session.id", "gen_ai.conversation.id"])
        .filter(|id| id.len() <= 256);
    facts.user_id = attributes
        .first_text(&["user.id", "enduser.id"])
        .filter(|id| id.len() <= 256);
    let environment_name =
        attributes.first_text(&["deployment.environment.name", "deployment.environment"]);
    facts.environment = environment_name
        .as_deref()
        .and_then(super::resource::environment);
    if facts.environment.is_none()
        && let Some(name) = environment_name
    {
        // A name feedloop has no environment for stays findable.
        facts
            .metadata
            .insert("deployment.environment".into(), Value::String(name));
    }
    facts.tags = tags(attributes);
    if let Some(metadata) = attributes.json("metadata") {
        match metadata {
            Value::Object(fields) => facts.metadata.extend(fields),
            other => {
                facts.metadata.insert("metadata".into(), other);
            }
        }
    }

    // Everything no convention read (request parameters, response id, finish reasons, agent and
    // tool names, vendor attributes) is the trace's metadata too.
    let (kept, unread) = input
        .attributes
        .into_kept_and_unread(&left_out, &left_out_prefixes);
    let span = SpanPart {
        parent_id: input.parent_id.clone(),
        kind: Some(kind),
        name: Some(input.name).filter(|name| !name.is_empty()),
        input: span_input,
        output: span_output,
        attributes: kept,
        status: Some(input.status),
        status_message: input.status_message,
        started_at: Some(input.started_at),
        ended_at: input.ended_at,
    };
    for (key, value) in unread {
        facts.metadata.entry(key).or_insert(value);
    }
    ReadSpan {
        trace_id: input.trace_id,
        span_id: input.span_id,
        span,
        facts,
        kind,
        is_root: input.parent_id.is_none(),
    }
}

/// The kind: OpenInference's word, else the GenAI operation, else OpenLLMetry's request type,
/// else a model attribute makes it an LLM call.
fn span_kind(attributes: &Attributes) -> SpanKind {
    if let Some(kind) = attributes.text("openinference.span.kind") {
        return match kind.to_ascii_uppercase().as_str() {
            "LLM" => SpanKind::Llm,
            "RETRIEVER" | "RERANKER" => SpanKind::Retrieval,
            "TOOL" => SpanKind::Tool,
            "CHAIN" | "AGENT" => SpanKind::Chain,
            "EMBEDDING" => SpanKind::Embedding,
            _ => SpanKind::Other,
        };
    }
    if let Some(operation) = attributes.text("gen_ai.operation.name") {
        return match operation.as_str() {
            "chat" | "text_completion" | "generate_content" | "completion" => SpanKind::Llm,
            "embeddings" => SpanKind::Embedding,
            "execute_tool" => SpanKind::Tool,
            "invoke_agent" | "create_agent" | "invoke_workflow" => SpanKind::Chain,
            "retrieval" | "retrieve" => SpanKind::Retrieval,
            _ => SpanKind::Other,
        };
    }
    if let Some(request_type) = attributes.text("llm.request.type") {
        return match request_type.as_str() {
            "embedding" => SpanKind::Embedding,
            _ => SpanKind::Llm,
        };
    }
    if let Some(kind) = attributes.text("traceloop.span.kind") {
        return match kind.as_str() {
            "tool" => SpanKind::Tool,
            "workflow" | "task" | "agent" => SpanKind::Chain,
            _ => SpanKind::Other,
        };
    }
    let names_a_model = [
        "gen_ai.request.model",
        "gen_ai.provider.name",
        "gen_ai.system",
        "llm.model_name",
    ]
    .iter()
    .any(|key| attributes.text(key).is_some());
    if names_a_model {
        SpanKind::Llm
    } else {
        SpanKind::Other
    }
}

/// The model: the requested name (GenAI's request model, or the `model` of OpenInference's
/// invocation parameters); the model that answered, when it differs, is the version. The provider
/// under its current or deprecated name.
fn model(attributes: &Attributes) -> ModelInfo {
    let requested = attributes.text("gen_ai.request.model").or_else(|| {
        match attributes.peek_json("llm.invocation_parameters")? {
            Value::Object(parameters) => parameters
                .get("model")
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        }
    });
    let responded = attributes.first_text(&["gen_ai.response.model", "llm.model_name"]);
    let (name, version) = match (requested, responded) {
        (Some(requested), Some(responded)) if requested != responded => {
            (Some(requested), Some(responded))
        }
        (Some(requested), _) => (Some(requested), None),
        (None, responded) => (responded, None),
    };
    ModelInfo {
        name,
        provider: attributes.first_text(&[
            "gen_ai.provider.name",
            "gen_ai.system",
            "llm.provider",
            "llm.system",
        ]),
        version,
    }
}

/// Tokens under the GenAI names, their deprecated prompt/completion names, OpenLLMetry's and
/// OpenInference's.
fn usage(attributes: &Attributes) -> Usage {
    Usage {
        input_tokens: attributes.first_count(&[
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",
            "llm.token_count.prompt",
            "llm.usage.prompt_tokens",
        ]),
        output_tokens: attributes.first_count(&[
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.token_count.completion",
            "llm.usage.completion_tokens",
        ]),
        total_tokens: attributes.first_count(&[
            "llm.token_count.total",
            "gen_ai.usage.total_tokens",
            "llm.usage.total_tokens",
        ]),
    }
}

/// OpenInference's prompt template: `llm.prompt_template.{template,version,variables}` (and a
/// `name`, which some instrumentations add).
fn prompt(attributes: &Attributes) -> Option<PromptRef> {
    if !attributes.has_prefix("llm.prompt_template.") {
        return None;
    }
    let variables = match attributes.json("llm.prompt_template.variables") {
        Some(Value::Object(variables)) => variables,
        Some(other) => Map::from_iter([("value".to_owned(), other)]),
        None => Map::new(),
    };
    Some(PromptRef {
        name: attributes.text("llm.prompt_template.name"),
        version: attributes.text("llm.prompt_template.version"),
        template: attributes.text("llm.prompt_template.template"),
        variables,
    })
}

/// OpenInference's retrieved documents: `retrieval.documents.N.document.{id,content,score,metadata}`.
fn documents(attributes: &Attributes) -> Vec<Document> {
    attributes
        .indexed("retrieval.documents.")
        .into_iter()
        .filter_map(|fields| {
            let text = |key: &str| match fields.get(key) {
                Some(Value::String(text)) => Some(text.clone()),
                Some(Value::Null) | None => None,
                Some(other) => Some(other.to_string()),
            };
            let metadata = match fields.get("document.metadata") {
                Some(Value::String(text)) => match serde_json::from_str(text) {
                    Ok(Value::Object(map)) => map,
                    _ => Map::from_iter([("value".to_owned(), Value::String(text.clone()))]),
                },
                Some(Value::Object(map)) => map.clone(),
                _ => Map::new(),
            };
            Some(Document {
                id: text("document.id"),
                title: text("document.title"),
                content: text("document.content")?,
                source: text("document.source"),
                score: fields
                    .get("document.score")
                    .and_then(Value::as_f64)
                    .filter(|s| s.is_finite()),
                metadata,
            })
        })
        .collect()
}

/// A tool span's call: OpenInference `tool.name` with `input.value`/`output.value`, or GenAI
/// `gen_ai.tool.name`, `gen_ai.tool.call.{id,arguments,result}`.
fn tool_result(
    attributes: &Attributes,
    span_name: &str,
    input_value: Option<String>,
    output_value: Option<String>,
) -> Option<ToolResult> {
    let name = attributes
        .first_text(&["tool.name", "gen_ai.tool.name"])
        .or_else(|| Some(span_name.to_owned()).filter(|n| !n.is_empty()))?;
    let arguments = attributes
        .json("gen_ai.tool.call.arguments")
        .or_else(|| {
            input_value.map(|text| serde_json::from_str(&text).unwrap_or(Value::String(text)))
        })
        .unwrap_or(Value::Null);
    let output = attributes
        .text("gen_ai.tool.call.result")
        .or(output_value)?;
    Some(ToolResult {
        name,
        call_id: attributes.first_text(&["gen_ai.tool.call.id", "tool_call.id"]),
        arguments,
        output,
    })
}

/// `tag.tags`: a list of strings, or a JSON string of one.
fn tags(attributes: &Attributes) -> BTreeSet<String> {
    let values = match attributes.json("tag.tags") {
        Some(Value::Array(values)) => values,
        Some(Value::String(tag)) => vec![Value::String(tag)],
        _ => return BTreeSet::new(),
    };
    values
        .into_iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .filter(|tag| !tag.is_empty() && tag.len() <= MAX_TAG_BYTES)
        .take(MAX_TAGS)
        .collect()
}

/// A value as its MIME type says: JSON parsed, anything else as text.
fn typed_value(text: &str, mime: Option<&str>) -> Value {
    if mime.is_some_and(|m| m.contains("json")) {
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
    } else {
        Value::String(text.to_owned())
    }
}

/// A value that is text: not JSON by its MIME type (a JSON string counts as its text).
fn plain_text(text: Option<&str>, mime: Option<&str>) -> Option<String> {
    let text = text?;
    if mime.is_some_and(|m| m.contains("json")) {
        return match serde_json::from_str::<Value>(text) {
            Ok(Value::String(inner)) => Some(inner),
            _ => None,
        };
    }
    Some(text.to_owned()).filter(|t| !t.is_empty())
}

/// The messages of an OpenAI request body sent as a span's JSON input.
fn json_messages(text: Option<&str>, mime: Option<&str>) -> Vec<Value> {
    let Some(text) = text.filter(|_| mime.is_some_and(|m| m.contains("json"))) else {
        return Vec::new();
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(mut body)) => match body.remove("messages") {
            Some(Value::Array(messages)) => messages,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// The answer in an OpenAI response body sent as a span's JSON output.
fn json_answer(text: Option<&str>) -> Option<String> {
    let body: Value = serde_json::from_str(text?).ok()?;
    let message = &body["choices"][0]["message"]["content"];
    let answer = chat::content_text(message);
    Some(answer).filter(|a| !a.is_empty())
}

/// The message of a span's first `exception` event: `type: message`.
fn exception(events: &[(String, Attributes)]) -> Option<String> {
    let (_, event) = events.iter().find(|(name, _)| name == "exception")?;
    match (
        event.text("exception.type"),
        event.text("exception.message"),
    ) {
        (Some(kind), Some(message)) => Some(format!("{kind}: {message}")),
        (kind, message) => message.or(kind),
    }
}
