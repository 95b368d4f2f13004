//! The OpenAI-compatible gateway against a stand-in upstream on loopback (see
//! `common::upstream`): answers pass through as the upstream gave them, and every call becomes a
//! trace.

use feedloop_core::auth::KeyRole;
use feedloop_server::ServerConfig;
use feedloop_server::gateway::GatewayConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

use crate::common::TestServer;
use crate::common::python::run_script;
use crate::common::upstream::{self, ANSWER_MODEL, RATE_LIMIT_BODY, Upstream};

const UPSTREAM_KEY: &str = "sk-upstream-secret";

async fn gateway_with_timeout(timeout: Duration) -> (TestServer, Upstream) {
    let upstream = Upstream::start().await;
    let server = TestServer::start_with(ServerConfig {
        gateway: GatewayConfig {
            upstream_base_url: Some(upstream.base_url.clone()),
            upstream_api_key: Some(UPSTREAM_KEY.into()),
            timeout,
        },
        ..ServerConfig::default()
    })
    .await;
    (server, upstream)
}

async fn gateway() -> (TestServer, Upstream) {
    gateway_with_timeout(Duration::from_secs(30)).await
}

fn chat_body(model: &str, question: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are the bank's assistant."},
            {"role": "user", "content": question},
        ],
    })
}

async fn post_chat(server: &TestServer, body: &Value) -> reqwest::Response {
    server
        .http
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth(&server.key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn trace_id_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-feedloop-trace-id")
        .expect("x-feedloop-trace-id header")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The stored trace; gateway traces are written just after the answer, so this waits a little.
pub async fn stored_trace(server: &TestServer, id: &str) -> Value {
    for _ in 0..100 {
        let (status, chain) = server.get(&format!("/api/v1/traces/{id}")).await;
        if status == StatusCode::OK {
            return chain["trace"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("trace {id} was not stored within 5 s");
}

#[track_caller]
fn assert_openai_error(body: &Value, code: &str) {
    let error = &body["error"];
    for field in ["message", "type", "param", "code"] {
        assert!(error.get(field).is_some(), "no error.{field} in {body}");
    }
    assert_eq!(error["code"], code, "{body}");
    assert!(!error["message"].as_str().unwrap().is_empty(), "{body}");
}

#[tokio::test]
async fn gateway_a_call_passes_through_and_becomes_a_trace() {
    let (server, upstream) = gateway().await;
    let mut body = chat_body("gpt-test", "how do I reset my pin?");
    body["temperature"] = json!(0.2);
    body["an_unknown_field"] = json!({"kept": [1, 2]});
    let response = server
        .http
        .post(format!("{}/v1/chat/completions", server.base))
        .bearer_auth(&server.key)
        .header("x-feedloop-session-id", "session-42")
        .header("x-feedloop-environment", "staging")
        .header("x-feedloop-tags", "beta, cards")
        .header("x-feedloop-user-id", "user-7")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let trace_id = trace_id_of(&response);
    let answer: Value = response.json().await.unwrap();

    // The upstream saw the body as sent, unknown fields included, and the configured key.
    let received = upstream.last();
    assert_eq!(received.body, body);
    assert_eq!(
        received.authorization.as_deref(),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );
    // The client got the upstream's answer as it was.
    assert_eq!(answer, upstream::completion(&body));

    let trace = stored_trace(&server, &trace_id).await;
    assert_eq!(trace["input"], "how do I reset my pin?");
    assert_eq!(trace["output"], "You said: how do I reset my pin?");
    assert_eq!(trace["status"], "ok");
    assert_eq!(trace["model"]["name"], ANSWER_MODEL);
    assert_eq!(trace["model"]["provider"], "openai-compatible");
    assert_eq!(
        trace["usage"],
        json!({"input_tokens": 11, "output_tokens": 7, "total_tokens": 18})
    );
    assert!(trace["latency_ms"].as_f64().unwrap() > 0.0, "{trace}");
    assert_eq!(trace["session_id"], "session-42");
    assert_eq!(trace["user_id"], "user-7");
    assert_eq!(trace["environment"], "staging");
    assert_eq!(trace["tags"], json!(["beta", "cards", "gateway"]));
    assert_eq!(
        trace["context"]["system_prompt"],
        "You are the bank's assistant."
    );
    assert_eq!(
        trace["context"]["messages"],
        json!([
            {"role": "system", "content": "You are the bank's assistant."},
            {"role": "user", "content": "how do I reset my pin?"},
        ])
    );
    assert_eq!(trace["metadata"]["feedloop.stream"], false);
    assert_eq!(trace["metadata"]["feedloop.upstream_status"], 200);
    assert!(trace["metadata"].get("feedloop.injection_id").is_none());
}

#[tokio::test]
async fn gateway_a_stream_passes_through_chunk_by_chunk_and_is_assembled_in_the_trace() {
    let (server, _upstream) = gateway().await;
    let mut body = chat_body("gpt-test", "tell me about fees");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let started = Instant::now();
    let mut response = post_chat(&server, &body).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let trace_id = trace_id_of(&response);
    let mut received = Vec::new();
    let mut first_chunk_at = None;
    while let Some(chunk) = response.chunk().await.unwrap() {
        first_chunk_at.get_or_insert_with(|| started.elapsed());
        received.extend_from_slice(&chunk);
    }
    let total = started.elapsed();
    let expected = upstream::stream_events("You said: tell me about fees", true).concat();
    assert_eq!(String::from_utf8(received).unwrap(), expected);
    // Not buffered: the first event arrived well before the last (9 events, 40 ms apart).
    let first_chunk_at = first_chunk_at.unwrap();
    assert!(
        first_chunk_at + upstream::CHUNK_PAUSE * 4 < total,
        "first chunk after {first_chunk_at:?}, stream done after {total:?}"
    );

    let trace = stored_trace(&server, &trace_id).await;
    assert_eq!(trace["output"], "You said: tell me about fees");
    assert_eq!(trace["input"], "tell me about fees");
    assert_eq!(trace["status"], "ok");
    assert_eq!(trace["model"]["name"], ANSWER_MODEL);
    assert_eq!(
        trace["usage"],
        json!({"input_tokens": 12, "output_tokens": 4, "total_tokens": 16})
    );
    assert!(
        trace["latency_ms"].as_f64().unwrap() >= (upstream::CHUNK_PAUSE * 8).as_secs_f64() * 1000.0
    );
    assert_eq!(trace["metadata"]["feedloop.stream"], true);
}

#[tokio::test]
async fn gateway_upstream_errors_pass_through_and_are_recorded() {
    let (server, _upstream) = gateway().await;
    let response = post_chat(&server, &chat_body("rate-limited", "q")).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let trace_id = trace_id_of(&response);
    assert_eq!(response.text().await.unwrap(), RATE_LIMIT_BODY);
    let trace = stored_trace(&server, &trace_id).await;
    assert_eq!(trace["status"], "error");
    let error = trace["error"].as_str().unwrap();
    assert!(
        error.contains("429") && error.contains("Rate limit reached"),
        "{error}"
    );
    assert_eq!(trace["model"]["name"], "rate-limited");
    assert_eq!(trace["metadata"]["feedloop.upstream_status"], 429);
    assert!(trace.get("output").is_none(), "{trace}");

    let response = post_chat(&server, &chat_body("broken", "q")).await;
    assert_eq!(response.status(), 500);
    let trace_id = trace_id_of(&response);
    assert_eq!(response.text().await.unwrap(), "upstream exploded");
    let trace = stored_trace(&server, &trace_id).await;
    assert_eq!(trace["status"], "error");
}

#[tokio::test]
async fn gateway_a_stalled_upstream_times_out_with_504_and_is_recorded() {
    let (server, _upstream) = gateway_with_timeout(Duration::from_millis(500)).await;
    let started = Instant::now();
    let response = post_chat(&server, &chat_body("stall", "q")).await;
    assert_eq!(response.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    let trace_id = trace_id_of(&response);
    let body: Value = response.json().await.unwrap();
    assert_openai_error(&body, "upstream_timeout");
    let trace = stored_trace(&server, &trace_id).await;
    assert_eq!(trace["status"], "error");
    assert!(
        trace["error"]
            .as_str()
            .unwrap()
            .contains("did not answer within"),
        "{trace}"
    );

    // A stream that stops midway ends with an error event, and the trace keeps what came.
    let mut body = chat_body("stall-midstream", "partial");
    body["stream"] = json!(true);
    let response = post_chat(&server, &body).await;
    assert_eq!(response.status(), 200);
    let trace_id = trace_id_of(&response);
    let text = response.text().await.unwrap();
    assert!(
        text.contains("You ") && text.contains("upstream_timeout"),
        "{text}"
    );
    let trace = stored_trace(&server, &trace_id).await;
    assert_eq!(trace["status"], "error");
    assert_eq!(trace["output"], "You ");
}

#[tokio::test]
async fn gateway_an_unreachable_upstream_is_502_and_recorded() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::start_with(ServerConfig {
        gateway: GatewayConfig {
            upstream_base_url: Some(format!("http://127.0.0.1:{port}/v1")),
            ..GatewayConfig::default()
        },
        ..ServerConfig::default()
    })
    .await;
    let response = post_chat(&server, &chat_body("gpt-test", "q")).await;
    assert_eq!(response.status(), 502);
    let trace_id = trace_id_of(&response);
    assert_openai_error(&response.json().await.unwrap(), "upstream_unreachable");
    let trace = stored_trace(&server, &trace_id).await;
    assert_eq!(trace["status"], "error");
    assert_eq!(trace["input"], "q");
}

#[tokio::test]
async fn gateway_without_an_upstream_answers_503_naming_the_setting() {
    let server = TestServer::start().await;
    let response = post_chat(&server, &chat_body("gpt-test", "q")).await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_openai_error(&body, "gateway_not_configured");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("upstream_base_url")
    );
}

#[tokio::test]
async fn gateway_keys_are_checked_and_bad_bodies_named() {
    let (server, upstream) = gateway().await;
    let url = format!("{}/v1/chat/completions", server.base);
    let body = chat_body("gpt-test", "q");

    // No key, an upstream key instead of a feedloop key, an unknown feedloop key: 401.
    for request in [
        server.http.post(&url),
        server.http.post(&url).bearer_auth("sk-openai-key"),
        server.http.post(&url).bearer_auth("fl_sk_unknown"),
    ] {
        let response = request.json(&body).send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers().get("x-feedloop-trace-id").is_none());
        assert_openai_error(&response.json().await.unwrap(), "unauthorized");
    }
    // A read-only key may not send traces.
    let read_key = server.key_with_role(KeyRole::Read).await;
    let response = server
        .http
        .post(&url)
        .bearer_auth(read_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_openai_error(&response.json().await.unwrap(), "forbidden");

    // Bad bodies: 400 naming the field.
    for (bad, param) in [
        (json!({"model": "m"}), "messages"),
        (json!({"model": "m", "messages": "hi"}), "messages"),
        (json!([1, 2]), "body"),
    ] {
        let response = post_chat(&server, &bad).await;
        assert_eq!(response.status(), 400);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["param"], param, "{answer}");
        assert_eq!(answer["error"]["type"], "invalid_request_error");
    }
    let response = server
        .http
        .post(&url)
        .bearer_auth(&server.key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_openai_error(&response.json().await.unwrap(), "malformed_json");
    let response = server
        .http
        .post(&url)
        .bearer_auth(&server.key)
        .header("x-feedloop-environment", "moon")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["param"], "x-feedloop-environment");
    assert!(upstream.received.lock().unwrap().is_empty());
}

#[tokio::test]
async fn gateway_with_x_feedloop_key_the_clients_own_authorization_goes_upstream() {
    let (server, upstream) = gateway().await;
    let response = server
        .http
        .post(format!("{}/v1/chat/completions", server.base))
        .header("x-feedloop-key", &server.key)
        .bearer_auth("sk-clients-own-key")
        .json(&chat_body("gpt-test", "q"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        upstream.last().authorization.as_deref(),
        Some("Bearer sk-clients-own-key")
    );
    stored_trace(&server, &trace_id_of(&response)).await;
}

#[tokio::test]
async fn gateway_models_pass_through() {
    let (server, upstream) = gateway().await;
    let response = server
        .http
        .get(format!("{}/v1/models", server.base))
        .bearer_auth(&server.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let models: Value = response.json().await.unwrap();
    assert_eq!(models["data"][0]["id"], ANSWER_MODEL);
    assert!(upstream.received.lock().unwrap().is_empty());
    let response = server
        .http
        .get(format!("{}/v1/models", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn gateway_a_client_that_leaves_mid_stream_is_recorded() {
    let (server, _upstream) = gateway().await;
    let mut body = chat_body("gpt-test", "a long answer please");
    body["stream"] = json!(true);
    let mut response = post_chat(&server, &body).await;
    let trace_id = trace_id_of(&response);
    response.chunk().await.unwrap().unwrap();
    drop(response);
    let trace = stored_trace(&server, &trace_id).await;
    assert_eq!(trace["status"], "error");
    assert!(
        trace["error"].as_str().unwrap().contains("disconnected"),
        "{trace}"
    );
}

/// The real `openai` Python client against the gateway, streaming and not. The interpreter is
/// the virtualenv's that `scripts/test` prepares (`FEEDLOOP_TEST_PYTHON`).
#[tokio::test]
async fn gateway_the_openai_python_client_works_through_it() {
    let (server, _upstream) = gateway().await;
    let seen = run_script(
        "openai_gateway.py",
        &[],
        vec![
            ("FEEDLOOP_GATEWAY_URL", format!("{}/v1", server.base)),
            ("FEEDLOOP_KEY", server.key.clone()),
        ],
    )
    .await;

    let trace = stored_trace(&server, seen["trace_id"].as_str().unwrap()).await;
    assert_eq!(trace["output"], "You said: What is my balance?");
    assert_eq!(trace["usage"]["total_tokens"], 18);
    let trace = stored_trace(&server, seen["stream_trace_id"].as_str().unwrap()).await;
    assert_eq!(trace["output"], "You said: Stream the answer, please");
    assert_eq!(trace["usage"]["total_tokens"], 16);
    assert_eq!(trace["session_id"], "py-session");
}
