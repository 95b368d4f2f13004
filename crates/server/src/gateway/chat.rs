//! The request side of a chat completion: what the gateway reads from the client's messages (the
//! query, the system prompt, the messages as the trace keeps them) and the one change it makes to
//! them, appending the lessons block to the system message.
//!
//! Message content is either a string or an array of parts (`{"type": "text", "text": …}`, images,
//! audio); only text parts count as text.

use feedloop_core::trace::Message;
use serde_json::{Value, json};

/// Roles whose message carries the instructions. `developer` is the newer name of `system`.
const SYSTEM_ROLES: [&str; 2] = ["system", "developer"];

/// The text of a message's content: the string, or its text parts joined by newlines.
pub fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|part| part["type"] == "text")
                .filter_map(|part| part["text"].as_str())
                .collect();
            texts.join("\n")
        }
        _ => String::new(),
    }
}

fn role(message: &Value) -> &str {
    message["role"].as_str().unwrap_or("")
}

/// The text of the last user message: the query the lessons are looked up for.
pub fn last_user_text(messages: &[Value]) -> Option<String> {
    messages
        .iter()
        .rev()
        .find(|message| role(message) == "user")
        .map(|message| content_text(&message["content"]))
}

/// The text of the first system (or developer) message.
pub fn system_prompt(messages: &[Value]) -> Option<String> {
    messages
        .iter()
        .find(|message| SYSTEM_ROLES.contains(&role(message)))
        .map(|message| content_text(&message["content"]))
}

/// The messages as the trace keeps them: role and text. A message without text (an assistant's
/// tool call) keeps its tool calls as JSON, so the conversation still reads in order.
pub fn trace_messages(messages: &[Value]) -> Vec<Message> {
    messages
        .iter()
        .map(|message| {
            let mut content = content_text(&message["content"]);
            if content.is_empty()
                && let Some(calls) = message.get("tool_calls").filter(|calls| !calls.is_null())
            {
                content = calls.to_string();
            }
            Message {
                role: role(message).to_owned(),
                content,
            }
        })
        .collect()
}

/// Puts `block` into the instructions: appended to the first system (or developer) message's
/// text, after a blank line, or as a new system message at the start when there is none. An array
/// content gets a text part of its own, so images and other parts stay as they are.
pub fn inject_system_block(messages: &mut Vec<Value>, block: &str) {
    let system = messages
        .iter_mut()
        .find(|message| SYSTEM_ROLES.contains(&role(message)));
    let Some(system) = system else {
        messages.insert(0, json!({"role": "system", "content": block}));
        return;
    };
    match system.get_mut("content") {
        Some(Value::String(text)) if text.is_empty() => block.clone_into(text),
        Some(Value::String(text)) => {
            text.push_str("\n\n");
            text.push_str(block);
        }
        Some(Value::Array(parts)) => parts.push(json!({"type": "text", "text": block})),
        _ => system["content"] = Value::String(block.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(value: Value) -> Vec<Value> {
        value.as_array().unwrap().clone()
    }

    #[test]
    fn the_block_is_appended_to_the_first_system_message() {
        let mut sent = messages(json!([
            {"role": "system", "content": "You are a bank assistant."},
            {"role": "user", "content": "pin?"},
            {"role": "system", "content": "second"},
        ]));
        inject_system_block(&mut sent, "Lesson: ask for the card first.");
        assert_eq!(
            sent[0]["content"],
            "You are a bank assistant.\n\nLesson: ask for the card first."
        );
        assert_eq!(sent[2]["content"], "second");
        assert_eq!(sent.len(), 3);
    }

    #[test]
    fn a_developer_message_counts_as_the_system_message() {
        let mut sent = messages(json!([
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": "Be brief."},
        ]));
        inject_system_block(&mut sent, "L");
        assert_eq!(sent[1]["content"], "Be brief.\n\nL");
        assert_eq!(sent.len(), 2);
    }

    #[test]
    fn without_a_system_message_one_is_inserted_first() {
        let mut sent = messages(json!([{"role": "user", "content": "hi"}]));
        inject_system_block(&mut sent, "L");
        assert_eq!(sent[0], json!({"role": "system", "content": "L"}));
        assert_eq!(sent[1]["role"], "user");
    }

    #[test]
    fn array_content_gets_a_text_part_and_keeps_the_others() {
        let mut sent = messages(json!([
            {"role": "system", "content": [{"type": "text", "text": "A"}, {"type": "image_url", "image_url": {"url": "x"}}], "name": "n"},
        ]));
        inject_system_block(&mut sent, "L");
        assert_eq!(
            sent[0],
            json!({"role": "system", "name": "n", "content": [
                {"type": "text", "text": "A"},
                {"type": "image_url", "image_url": {"url": "x"}},
                {"type": "text", "text": "L"},
            ]})
        );
        assert_eq!(system_prompt(&sent).as_deref(), Some("A\nL"));
    }

    #[test]
    fn empty_or_missing_system_content_becomes_the_block() {
        let mut sent = messages(json!([{"role": "system", "content": ""}]));
        inject_system_block(&mut sent, "L");
        assert_eq!(sent[0]["content"], "L");
        let mut sent = messages(json!([{"role": "system"}]));
        inject_system_block(&mut sent, "L");
        assert_eq!(sent[0]["content"], "L");
    }

    #[test]
    fn the_query_is_the_last_user_message_text() {
        let sent = messages(json!([
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": [{"type": "text", "text": "look at"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "this"}]},
            {"role": "tool", "content": "42"},
        ]));
        assert_eq!(last_user_text(&sent).as_deref(), Some("look at\nthis"));
        assert_eq!(last_user_text(&[]), None);
    }

    #[test]
    fn trace_messages_keep_roles_text_and_tool_calls() {
        let sent = messages(json!([
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1"}]},
        ]));
        let kept = trace_messages(&sent);
        assert_eq!(kept[0].content, "weather?");
        assert_eq!(kept[1].role, "assistant");
        assert_eq!(kept[1].content, r#"[{"id":"c1"}]"#);
    }
}
