//! A stand-in OpenAI-compatible upstream on 127.0.0.1, for the gateway's tests: a real HTTP
//! server (axum) that answers `/chat/completions` (JSON, or server-sent events with a few
//! chunks and a usage chunk) and `/models`, and misbehaves on request, chosen by the request's
//! `model`:
//!
//! - `rate-limited`: 429 with OpenAI's error body and `retry-after`;
//! - `broken`: 500;
//! - `stall`: never answers;
//! - `stall-midstream`: streams one chunk, then nothing.
//!
//! Every request it receives is kept (headers and body) for the test to look at.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The model name the stand-in says answered (unlike the request's).
pub const ANSWER_MODEL: &str = "stand-in-model-2025";
/// Pause between two stream chunks.
pub const CHUNK_PAUSE: Duration = Duration::from_millis(40);

/// A request the stand-in received.
#[derive(Debug, Clone)]
pub struct Received {
    pub authorization: Option<String>,
    pub body: Value,
}

pub struct Upstream {
    /// `http://127.0.0.1:PORT/v1`
    pub base_url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

impl Upstream {
    pub async fn start() -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new()
            .route("/v1/chat/completions", axum::routing::post(chat))
            .route("/v1/models", axum::routing::get(models))
            .with_state(received.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, received }
    }

    pub fn last(&self) -> Received {
        self.received
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("a request")
    }
}

/// The reply to a conversation: it repeats the last user message.
pub fn reply_text(body: &Value) -> String {
    let query = body["messages"]
        .as_array()
        .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    format!("You said: {query}")
}

/// The events a stream of `text` sends, in order (with a usage chunk when asked for).
pub fn stream_events(text: &str, with_usage: bool) -> Vec<String> {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1,
               "model": ANSWER_MODEL,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for word in text.split_inclusive(' ') {
        events.push(chunk(json!({"content": word}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    if with_usage {
        events.push(json!({"id": "chatcmpl-s", "object": "chat.completion.chunk", "created": 1,
                           "model": ANSWER_MODEL, "choices": [],
                           "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}}));
    }
    let mut events: Vec<String> = events
        .into_iter()
        .map(|event| format!("data: {event}\n\n"))
        .collect();
    events.push("data: [DONE]\n\n".to_owned());
    events
}

/// The non-streaming answer to `body`.
pub fn completion(body: &Value) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": ANSWER_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply_text(body)},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        "system_fingerprint": "fp_stand_in"
    })
}

pub const RATE_LIMIT_BODY: &str = r#"{"error":{"message":"Rate limit reached for requests","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;

async fn chat(
    State(received): State<Arc<Mutex<Vec<Received>>>>,
    headers: HeaderMap,
    body: axum::Json<Value>,
) -> Response {
    let body = body.0;
    received.lock().unwrap().push(Received {
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: body.clone(),
    });
    match body["model"].as_str().unwrap_or("") {
        "rate-limited" => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("content-type", "application/json"), ("retry-after", "7")],
                RATE_LIMIT_BODY,
            )
                .into_response();
        }
        "broken" => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response();
        }
        "stall" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        _ => {}
    }
    if body["stream"] != true {
        return axum::Json(completion(&body)).into_response();
    }
    let with_usage = body["stream_options"]["include_usage"] == true;
    let mut events = stream_events(&reply_text(&body), with_usage);
    if body["model"] == "stall-midstream" {
        events.truncate(2);
        events.push(String::new()); // marks the stall
    }
    let chunks = futures::stream::unfold(events.into_iter(), |mut events| async move {
        let event = events.next()?;
        if event.is_empty() {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        tokio::time::sleep(CHUNK_PAUSE).await;
        Some((Ok::<_, std::io::Error>(event), events))
    });
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
        Body::from_stream(chunks),
    )
        .into_response()
}

async fn models() -> axum::Json<Value> {
    axum::Json(json!({"object": "list", "data": [
        {"id": "stand-in-model-2025", "object": "model", "created": 0, "owned_by": "feedloop-tests"}
    ]}))
}
