//! The answer side of a chat completion: what the trace keeps of the upstream's reply (the
//! assistant's text, the model, the token counts), from a JSON body or assembled from a stream of
//! server-sent events. Nothing here changes what the client receives.

use feedloop_core::trace::Usage;
use serde_json::Value;

/// What a reply tells the trace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplySummary {
    /// The assistant's text (`choices[0]`); `None` when the reply had none (tool calls only).
    pub output: Option<String>,
    /// The model the upstream says answered.
    pub model: Option<String>,
    pub usage: Option<Usage>,
    /// An error the upstream reported inside a stream.
    pub error: Option<String>,
}

/// Token counts from an OpenAI `usage` object; `None` when absent or `null`.
pub fn usage(value: &Value) -> Option<Usage> {
    let object = value.as_object()?;
    let count = |name: &str| object.get(name).and_then(Value::as_u64);
    Some(Usage {
        input_tokens: count("prompt_tokens"),
        output_tokens: count("completion_tokens"),
        total_tokens: count("total_tokens"),
    })
}

/// Reads a non-streaming reply body; a body that is not JSON yields an empty summary.
pub fn summarize_body(body: &[u8]) -> ReplySummary {
    let Ok(reply) = serde_json::from_slice::<Value>(body) else {
        return ReplySummary::default();
    };
    let message = &reply["choices"][0]["message"];
    let output = match &message["content"] {
        Value::Null => None,
        content => Some(super::chat::content_text(content)),
    };
    ReplySummary {
        output,
        model: reply["model"].as_str().map(str::to_owned),
        usage: usage(&reply["usage"]),
        error: None,
    }
}

/// Assembles a stream of server-sent events as it passes: `data:` lines gathered into events,
/// each event's `choices[0].delta.content` appended to the output, the last `model` and `usage`
/// kept. Bytes may be split anywhere, lines included.
#[derive(Debug, Default)]
pub struct StreamAssembler {
    /// The unfinished line of the last chunk.
    line: Vec<u8>,
    /// The data lines of the event being read.
    data: String,
    output: String,
    has_output: bool,
    model: Option<String>,
    usage: Option<Usage>,
    error: Option<String>,
}

impl StreamAssembler {
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
            if self.line.is_empty() {
                self.line_done(&bytes[..end]);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&bytes[..end]);
                self.line_done(&line);
            }
            bytes = &bytes[end + 1..];
        }
        self.line.extend_from_slice(bytes);
    }

    /// What the stream said, including an event the stream ended without a blank line after.
    pub fn finish(mut self) -> ReplySummary {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line);
        }
        self.event_done();
        ReplySummary {
            output: self.has_output.then_some(self.output),
            model: self.model,
            usage: self.usage,
            error: self.error,
        }
    }

    fn line_done(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            self.event_done();
        } else if let Some(data) = line.strip_prefix(b"data:") {
            let data = data.strip_prefix(b" ").unwrap_or(data);
            if !self.data.is_empty() {
                self.data.push('\n');
            }
            self.data.push_str(&String::from_utf8_lossy(data));
        }
        // Comments (`:`), `event:`, `id:` and `retry:` lines say nothing the trace keeps.
    }

    fn event_done(&mut self) {
        let data = std::mem::take(&mut self.data);
        if data.is_empty() || data == "[DONE]" {
            return;
        }
        let Ok(event) = serde_json::from_str::<Value>(&data) else {
            return;
        };
        if let Some(error) = event.get("error").filter(|e| !e.is_null()) {
            self.error = Some(
                error["message"]
                    .as_str()
                    .map_or_else(|| error.to_string(), str::to_owned),
            );
        }
        if let Some(model) = event["model"].as_str() {
            self.model = Some(model.to_owned());
        }
        if let Some(usage) = usage(&event["usage"]) {
            self.usage = Some(usage);
        }
        if let Some(content) = event["choices"][0]["delta"]["content"].as_str() {
            self.output.push_str(content);
            self.has_output = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = concat!(
        "data: {\"id\":\"c\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        ": keep-alive\n\n",
        "data: {\"id\":\"c\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Héllo\"}}]}\r\n\r\n",
        "data: {\"id\":\"c\",\"model\":\"m-1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\", world\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: {\"id\":\"c\",\"model\":\"m-1\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,\"total_tokens\":10}}\n\n",
        "data: [DONE]\n\n",
    );

    fn expected() -> ReplySummary {
        ReplySummary {
            output: Some("Héllo, world".into()),
            model: Some("m-1".into()),
            usage: Some(Usage {
                input_tokens: Some(7),
                output_tokens: Some(3),
                total_tokens: Some(10),
            }),
            error: None,
        }
    }

    #[test]
    fn a_stream_assembles_into_output_model_and_usage() {
        let mut assembler = StreamAssembler::default();
        assembler.feed(STREAM.as_bytes());
        assert_eq!(assembler.finish(), expected());
    }

    #[test]
    fn chunks_split_anywhere_assemble_the_same() {
        // Every split point, including inside the two bytes of 'é'.
        let bytes = STREAM.as_bytes();
        for cut in 0..bytes.len() {
            let mut assembler = StreamAssembler::default();
            assembler.feed(&bytes[..cut]);
            assembler.feed(&bytes[cut..]);
            assert_eq!(assembler.finish(), expected(), "cut at {cut}");
        }
    }

    #[test]
    fn an_error_event_and_a_missing_final_blank_line_are_kept() {
        let mut assembler = StreamAssembler::default();
        assembler.feed(b"data: {\"choices\":[{\"delta\":{\"content\":\"par\"}}]}\n\ndata: {\"error\":{\"message\":\"overloaded\"}}");
        let summary = assembler.finish();
        assert_eq!(summary.output.as_deref(), Some("par"));
        assert_eq!(summary.error.as_deref(), Some("overloaded"));
    }

    #[test]
    fn a_json_body_gives_text_model_and_usage() {
        let body = br#"{"model":"m-2","choices":[{"message":{"role":"assistant","content":"Hi"}}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#;
        let summary = summarize_body(body);
        assert_eq!(summary.output.as_deref(), Some("Hi"));
        assert_eq!(summary.model.as_deref(), Some("m-2"));
        assert_eq!(summary.usage.unwrap().total_tokens, Some(6));
        let tool_call =
            br#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[]}}]}"#;
        assert_eq!(summarize_body(tool_call).output, None);
        assert_eq!(summarize_body(b"not json"), ReplySummary::default());
    }
}
