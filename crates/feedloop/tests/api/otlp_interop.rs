//! Real OpenTelemetry clients against the OTLP receivers: the OpenTelemetry Python SDK with its
//! OTLP exporters (HTTP/protobuf and gRPC) sending GenAI-convention spans, and OpenInference's
//! instrumentation of the `openai` client tracing real calls to a stand-in upstream. The
//! interpreter is the virtualenv's that `scripts/test` prepares (`FEEDLOOP_TEST_PYTHON`).

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::TestServer;
use crate::common::python::run_script;
use crate::common::upstream::{ANSWER_MODEL, Upstream};

async fn chain(server: &TestServer, trace_id: &str) -> Value {
    let (status, body) = server.get(&format!("/api/v1/traces/{trace_id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The SDK's agent → chat + tool spans, as either exporter sends them; the same spans sent
/// again with an unknown key were refused.
async fn check_genai_trace(server: &TestServer, seen: &Value, session: &str) {
    assert_eq!(seen["bad_key_result"], "FAILURE", "{seen}");
    assert_eq!(
        server.counts().await,
        (1, 0),
        "one trace, nothing from the unknown key"
    );
    let body = chain(server, seen["trace_id"].as_str().unwrap()).await;
    let trace = &body["trace"];
    assert_eq!(trace["input"], "How do I block my card?", "{trace}");
    assert_eq!(trace["output"], "Open Cards and tap Block.");
    assert_eq!(
        trace["context"]["system_prompt"],
        "You are the bank's assistant."
    );
    assert_eq!(trace["context"]["tool_results"][0]["name"], "block_card");
    assert_eq!(trace["context"]["tool_results"][0]["output"], "blocked");
    assert_eq!(trace["model"]["name"], "gpt-4o-mini");
    assert_eq!(trace["model"]["version"], "gpt-4o-mini-2024-07-18");
    assert_eq!(trace["model"]["provider"], "openai");
    assert_eq!(trace["usage"]["input_tokens"], 42);
    assert_eq!(trace["usage"]["output_tokens"], 8);
    assert_eq!(trace["usage"]["total_tokens"], 50);
    assert_eq!(trace["session_id"], session);
    assert_eq!(trace["user_id"], "interop-user");
    assert_eq!(trace["environment"], "prod");
    assert_eq!(trace["metadata"]["service.version"], "3.1.4");
    assert_eq!(trace["metadata"]["gen_ai.agent.name"], "support");
    let mut kinds: Vec<&str> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["chain", "llm", "tool"]);
    let (_, listed) = server
        .get(&format!("/api/v1/traces?session_id={session}"))
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn otlp_interop_the_python_sdk_http_exporter_sends_genai_spans() {
    let server = TestServer::start().await;
    let seen = run_script(
        "otel_genai.py",
        &["http"],
        vec![
            ("FEEDLOOP_OTLP_ENDPOINT", server.base.clone()),
            ("FEEDLOOP_KEY", server.key.clone()),
            ("FEEDLOOP_SESSION", "interop-http".into()),
            ("FEEDLOOP_USER", "interop-user".into()),
        ],
    )
    .await;
    check_genai_trace(&server, &seen, "interop-http").await;
}

#[tokio::test]
async fn otlp_interop_the_python_sdk_grpc_exporter_sends_genai_spans() {
    let server = TestServer::start().await;
    let seen = run_script(
        "otel_genai.py",
        &["grpc"],
        vec![
            ("FEEDLOOP_OTLP_ENDPOINT", server.grpc.clone()),
            ("FEEDLOOP_KEY", server.key.clone()),
            ("FEEDLOOP_SESSION", "interop-grpc".into()),
            ("FEEDLOOP_USER", "interop-user".into()),
        ],
    )
    .await;
    check_genai_trace(&server, &seen, "interop-grpc").await;
}

#[tokio::test]
async fn otlp_interop_openinference_traces_real_openai_calls() {
    let server = TestServer::start().await;
    let upstream = Upstream::start().await;
    let seen = run_script(
        "openinference_openai.py",
        &[],
        vec![
            ("FEEDLOOP_OTLP_ENDPOINT", server.base.clone()),
            ("FEEDLOOP_KEY", server.key.clone()),
            ("FEEDLOOP_UPSTREAM", upstream.base_url.clone()),
            ("FEEDLOOP_SESSION", "oi-session".into()),
            ("FEEDLOOP_USER", "oi-user".into()),
        ],
    )
    .await;
    assert_eq!(seen["answer"], "You said: What is the capital of France?");
    assert_eq!(upstream.last().body["model"], "gpt-4o-mini");

    let (_, listed) = server.get("/api/v1/traces?session_id=oi-session").await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    let body = chain(&server, items[0]["id"].as_str().unwrap()).await;
    let trace = &body["trace"];
    assert_eq!(trace["input"], "What is the capital of France?", "{trace}");
    assert_eq!(trace["output"], "You said: What is the capital of France?");
    assert_eq!(trace["context"]["system_prompt"], "You are terse.");
    assert_eq!(trace["model"]["name"], "gpt-4o-mini");
    assert_eq!(trace["model"]["version"], ANSWER_MODEL);
    assert_eq!(trace["model"]["provider"], "openai");
    assert_eq!(trace["usage"]["input_tokens"], 11);
    assert_eq!(trace["usage"]["output_tokens"], 7);
    assert_eq!(trace["usage"]["total_tokens"], 18);
    assert_eq!(trace["session_id"], "oi-session");
    assert_eq!(trace["user_id"], "oi-user");
    assert_eq!(trace["environment"], "staging");
    assert_eq!(trace["tags"], serde_json::json!(["interop"]));
    assert_eq!(trace["metadata"]["tenant"], "acme");
    assert_eq!(trace["metadata"]["service.version"], "0.9.0");
    assert_eq!(trace["spans"][0]["kind"], "llm");
    assert_eq!(
        trace["spans"][0]["input"]["messages"][1]["content"],
        "What is the capital of France?"
    );
}
