//! Chat messages, from each convention that carries them, in one shape: OpenAI's
//! (`{"role", "content", "tool_calls"?}`), so that the gateway's readers of that shape (the query,
//! the system prompt, the messages as a trace keeps them) serve OTLP too.
//!
//! - OpenInference: `llm.input_messages.N.message.{role,content,name,tool_call_id}`, with content
//!   parts in `message.contents.M.message_content.{type,text}` and tool calls in
//!   `message.tool_calls.K.tool_call.{id,function.name,function.arguments}`.
//! - OpenTelemetry GenAI: `gen_ai.input.messages` / `gen_ai.output.messages` (JSON, or structured
//!   values: `[{"role", "parts": [{"type": "text", "content"}, …]}]`) and
//!   `gen_ai.system_instructions` (`[{"type": "text", "content"}]`).
//! - OpenLLMetry (flattened GenAI): `gen_ai.prompt.N.{role,content}`,
//!   `gen_ai.completion.N.{role,content,finish_reason}`, tool calls in `….tool_calls.K.{name,arguments,id}`.
//! - The deprecated content events `gen_ai.content.prompt` / `gen_ai.content.completion`, whose
//!   `gen_ai.prompt` / `gen_ai.completion` attribute holds the messages as JSON.

use serde_json::{Map, Value, json};

use super::attributes::Attributes;

/// Which direction of a model call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Input,
    Output,
}

/// Messages found on a span, and the attribute keys (or key prefixes) they came from: those are
/// the span's input or output, not attributes to keep twice.
#[derive(Debug, Default)]
pub struct Found {
    pub messages: Vec<Value>,
    pub keys: Vec<&'static str>,
    pub prefixes: Vec<&'static str>,
}

/// The messages of one direction, from the first convention that has them; the GenAI system
/// instructions are put first as a system message.
pub fn messages(
    attributes: &Attributes,
    direction: Direction,
    events: &[(String, Attributes)],
) -> Found {
    let (openinference, genai, flattened, event_name, event_key) = match direction {
        Direction::Input => (
            "llm.input_messages.",
            "gen_ai.input.messages",
            "gen_ai.prompt.",
            "gen_ai.content.prompt",
            "gen_ai.prompt",
        ),
        Direction::Output => (
            "llm.output_messages.",
            "gen_ai.output.messages",
            "gen_ai.completion.",
            "gen_ai.content.completion",
            "gen_ai.completion",
        ),
    };
    let mut found = Found::default();
    let from_openinference: Vec<Value> = attributes
        .indexed(openinference)
        .into_iter()
        .filter_map(openinference_message)
        .collect();
    if !from_openinference.is_empty() {
        found.messages = from_openinference;
        found.prefixes.push(openinference);
    } else if let Some(value) = attributes.json(genai) {
        found.messages = genai_messages(&value);
        found.keys.push(genai);
    } else {
        let from_flattened: Vec<Value> = attributes
            .indexed(flattened)
            .into_iter()
            .filter_map(flattened_message)
            .collect();
        if !from_flattened.is_empty() {
            found.messages = from_flattened;
            found.prefixes.push(flattened);
        } else if let Some((_, event)) = events.iter().find(|(name, _)| name == event_name)
            && let Some(value) = event.json(event_key)
        {
            found.messages = match value {
                Value::Array(items) => items,
                Value::String(text) => vec![json!({"role": "user", "content": text})],
                other => vec![other],
            };
        }
    }
    if direction == Direction::Input
        && let Some(instructions) = attributes.json("gen_ai.system_instructions")
    {
        let text = parts_text(&instructions);
        if !text.is_empty() {
            found
                .messages
                .insert(0, json!({"role": "system", "content": text}));
            found.keys.push("gen_ai.system_instructions");
        }
    }
    found
}

/// One OpenInference message (the fields after `llm.input_messages.N.`).
fn openinference_message(fields: Map<String, Value>) -> Option<Value> {
    let role = fields
        .get("message.role")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut content = fields
        .get("message.content")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if content.is_none() {
        let texts = indexed_fields(&fields, "message.contents.")
            .into_iter()
            .filter(|part| {
                part.get("message_content.type")
                    .and_then(Value::as_str)
                    .is_none_or(|t| t == "text")
            })
            .filter_map(|part| {
                part.get("message_content.text")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .collect::<Vec<_>>();
        if !texts.is_empty() {
            content = Some(texts.join("\n"));
        }
    }
    let tool_calls: Vec<Value> = indexed_fields(&fields, "message.tool_calls.")
        .into_iter()
        .map(|call| {
            json!({
                "id": call.get("tool_call.id"),
                "type": "function",
                "function": {
                    "name": call.get("tool_call.function.name"),
                    "arguments": call.get("tool_call.function.arguments"),
                }
            })
        })
        .collect();
    if role.is_empty() && content.is_none() && tool_calls.is_empty() {
        return None;
    }
    let mut message = json!({"role": role, "content": content.unwrap_or_default()});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    if let Some(id) = fields.get("message.tool_call_id") {
        message["tool_call_id"] = id.clone();
    }
    Some(message)
}

/// One OpenLLMetry message (the fields after `gen_ai.prompt.N.`).
fn flattened_message(fields: Map<String, Value>) -> Option<Value> {
    let role = fields.get("role").and_then(Value::as_str).unwrap_or("");
    let content = match fields.get("content") {
        // Content parts arrive as a JSON string of an array.
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(parts @ Value::Array(_)) => parts_text(&parts),
            _ => text.clone(),
        },
        Some(other) => parts_text(other),
        None => String::new(),
    };
    let tool_calls: Vec<Value> = indexed_fields(&fields, "tool_calls.")
        .into_iter()
        .map(|call| {
            json!({
                "id": call.get("id"),
                "type": "function",
                "function": {"name": call.get("name"), "arguments": call.get("arguments")}
            })
        })
        .collect();
    if role.is_empty() && content.is_empty() && tool_calls.is_empty() {
        return None;
    }
    let mut message = json!({"role": role, "content": content});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    Some(message)
}

/// GenAI messages: `[{"role", "parts": [{"type": "text", "content"}, {"type": "tool_call", …}]}]`.
/// Messages already in OpenAI's shape (`content` instead of `parts`) pass as they are.
fn genai_messages(value: &Value) -> Vec<Value> {
    let Value::Array(items) = value else {
        return match value {
            Value::String(text) => vec![json!({"role": "user", "content": text})],
            _ => Vec::new(),
        };
    };
    items
        .iter()
        .map(|item| {
            let role = item.get("role").cloned().unwrap_or(Value::from(""));
            let Some(parts) = item.get("parts") else {
                return item.clone();
            };
            let mut message = json!({"role": role, "content": parts_text(parts)});
            let calls: Vec<Value> = parts
                .as_array()
                .into_iter()
                .flatten()
                .filter(|part| part["type"] == "tool_call")
                .map(|part| {
                    json!({
                        "id": part.get("id"),
                        "type": "function",
                        "function": {
                            "name": part.get("name"),
                            "arguments": part.get("arguments").map(|a| match a {
                                Value::String(text) => Value::String(text.clone()),
                                other => Value::String(other.to_string()),
                            }),
                        }
                    })
                })
                .collect();
            if !calls.is_empty() {
                message["tool_calls"] = Value::Array(calls);
            }
            if let Some(reason) = item.get("finish_reason") {
                message["finish_reason"] = reason.clone();
            }
            message
        })
        .collect()
}

/// The text of GenAI parts (`[{"type": "text", "content"}]`), of OpenAI parts (`{"type": "text",
/// "text"}`), or of a plain string; tool call responses count as text.
pub fn parts_text(parts: &Value) -> String {
    match parts {
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .filter_map(|part| match part {
                Value::String(text) => Some(text.clone()),
                _ if part["type"] == "text" || part["type"].is_null() => part
                    .get("content")
                    .or_else(|| part.get("text"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                _ if part["type"] == "tool_call_response" => {
                    part.get("response").map(|r| match r {
                        Value::String(text) => text.clone(),
                        other => other.to_string(),
                    })
                }
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// An indexed family inside one item's fields (`message.contents.0.message_content.text`).
fn indexed_fields(fields: &Map<String, Value>, prefix: &str) -> Vec<Map<String, Value>> {
    let mut items: std::collections::BTreeMap<u64, Map<String, Value>> = Default::default();
    for (key, value) in fields {
        if let Some(rest) = key.strip_prefix(prefix)
            && let Some((index, field)) = rest.split_once('.')
            && let Ok(index) = index.parse::<u64>()
        {
            items
                .entry(index)
                .or_default()
                .insert(field.to_owned(), value.clone());
        }
    }
    items.into_values().collect()
}
