//! OTLP/HTTP at `/v1/traces`: protobuf, JSON and gzip bodies, the partial success, traces whose
//! spans come in several exports, and bad input.

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::Write;

use crate::common::{TestServer, assert_error};

const PROTOBUF: &str = "application/x-protobuf";
const T0: u64 = 1_780_000_000_000_000_000;

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn kv_int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..Default::default()
    }
}

/// An OpenInference LLM span of trace `trace` (one byte repeated), span `id`, under `parent`.
fn llm_span(trace: u8, id: u8, parent: Option<u8>, question: &str, answer: &str) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: "ChatCompletion".into(),
        start_time_unix_nano: T0 + u64::from(id) * 1_000_000,
        end_time_unix_nano: T0 + 1_500_000_000,
        attributes: vec![
            kv("openinference.span.kind", "LLM"),
            kv("input.value", question),
            kv("output.value", answer),
            kv("llm.model_name", "gpt-4o-mini"),
            kv_int("llm.token_count.prompt", 9),
            kv_int("llm.token_count.completion", 3),
            kv("session.id", "otlp-session"),
            kv("user.id", "otlp-user"),
        ],
        ..Default::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "otlp-test"),
                    kv("deployment.environment.name", "production"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn trace_hex(byte: u8) -> String {
    format!("{byte:02x}").repeat(16)
}

/// Posts a body to `/v1/traces`: the status, the content type and the raw answer.
async fn post_otlp(
    server: &TestServer,
    content_type: &str,
    content_encoding: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, String, Vec<u8>) {
    let mut request = server
        .http
        .post(format!("{}/v1/traces", server.base))
        .header("authorization", format!("Bearer {}", server.key))
        .header("content-type", content_type)
        .body(body);
    if let Some(encoding) = content_encoding {
        request = request.header("content-encoding", encoding);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

fn as_json(answer: &(StatusCode, String, Vec<u8>)) -> (StatusCode, Value) {
    (
        answer.0,
        serde_json::from_slice(&answer.2).unwrap_or(Value::Null),
    )
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

async fn stored_trace(server: &TestServer, id: &str) -> Value {
    let (status, body) = server.get(&format!("/api/v1/traces/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["trace"].clone()
}

#[tokio::test]
async fn otlp_protobuf_export_is_stored_and_answered_in_protobuf() {
    let server = TestServer::start().await;
    let body = request(vec![llm_span(
        1,
        1,
        None,
        "How do I reset my PIN?",
        "In the app.",
    )])
    .encode_to_vec();
    let (status, content_type, answer) = post_otlp(&server, PROTOBUF, None, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(content_type, PROTOBUF);
    let response = ExportTraceServiceResponse::decode(&answer[..]).unwrap();
    assert_eq!(response.partial_success, None, "everything was accepted");

    let trace = stored_trace(&server, &trace_hex(1)).await;
    assert_eq!(trace["input"], "How do I reset my PIN?");
    assert_eq!(trace["output"], "In the app.");
    assert_eq!(trace["model"]["name"], "gpt-4o-mini");
    assert_eq!(trace["usage"]["input_tokens"], 9);
    assert_eq!(trace["usage"]["total_tokens"], 12);
    assert_eq!(trace["session_id"], "otlp-session");
    assert_eq!(trace["user_id"], "otlp-user");
    assert_eq!(trace["environment"], "prod");
    assert_eq!(trace["metadata"]["service.name"], "otlp-test");
    assert_eq!(trace["latency_ms"], 1499.0);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0]["kind"], "llm");
    assert_eq!(spans[0]["input"], "How do I reset my PIN?");
    assert_eq!(spans[0]["attributes"]["llm.model_name"], "gpt-4o-mini");
    // The same export again changes nothing.
    let body = request(vec![llm_span(
        1,
        1,
        None,
        "How do I reset my PIN?",
        "In the app.",
    )])
    .encode_to_vec();
    assert_eq!(
        post_otlp(&server, PROTOBUF, None, body).await.0,
        StatusCode::OK
    );
    assert_eq!(server.counts().await, (1, 0));
}

#[tokio::test]
async fn otlp_json_and_gzip_exports_are_stored_and_answered_in_json() {
    let server = TestServer::start().await;
    // OTLP/JSON as exporters write it: hex ids, string nanos and int64s, camelCase.
    let body = json!({"resourceSpans": [{
        "resource": {"attributes": [
            {"key": "deployment.environment", "value": {"stringValue": "staging"}}]},
        "scopeSpans": [{"scope": {"name": "test"}, "spans": [{
            "traceId": trace_hex(2), "spanId": "0202020202020202", "name": "chat",
            "kind": 3, "startTimeUnixNano": "1780000000000000000",
            "endTimeUnixNano": "1780000000250000000",
            "attributes": [
                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                {"key": "gen_ai.system", "value": {"stringValue": "openai"}},
                {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
                {"key": "gen_ai.usage.prompt_tokens", "value": {"intValue": "20"}},
                {"key": "gen_ai.usage.completion_tokens", "value": {"intValue": 5}},
                {"key": "gen_ai.prompt.0.role", "value": {"stringValue": "user"}},
                {"key": "gen_ai.prompt.0.content", "value": {"stringValue": "Ping?"}},
                {"key": "gen_ai.completion.0.content", "value": {"stringValue": "Pong."}}
            ],
            "status": {"code": 1}}]}]}]});
    let answer = post_otlp(
        &server,
        "application/json",
        None,
        body.to_string().into_bytes(),
    )
    .await;
    assert_eq!(answer.1, "application/json");
    assert_eq!(as_json(&answer), (StatusCode::OK, json!({})));
    let trace = stored_trace(&server, &trace_hex(2)).await;
    assert_eq!(trace["input"], "Ping?");
    assert_eq!(trace["output"], "Pong.");
    assert_eq!(trace["usage"]["input_tokens"], 20);
    assert_eq!(trace["usage"]["output_tokens"], 5);
    assert_eq!(trace["model"]["provider"], "openai");
    assert_eq!(trace["environment"], "staging");
    assert_eq!(trace["status"], "ok");

    // Both encodings, gzip-compressed.
    let body = request(vec![llm_span(3, 1, None, "gzip proto", "ok")]).encode_to_vec();
    let (status, _, _) = post_otlp(&server, PROTOBUF, Some("gzip"), gzip(&body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        stored_trace(&server, &trace_hex(3)).await["input"],
        "gzip proto"
    );
    let mut body = body_json(4);
    body = gzip(&body);
    let answer = post_otlp(&server, "application/json", Some("gzip"), body).await;
    assert_eq!(as_json(&answer).0, StatusCode::OK);
    assert_eq!(
        stored_trace(&server, &trace_hex(4)).await["input"],
        "gzip json"
    );
}

fn body_json(trace: u8) -> Vec<u8> {
    json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
        "traceId": trace_hex(trace), "spanId": "0101010101010101", "name": "llm",
        "startTimeUnixNano": "1780000000000000000",
        "attributes": [
            {"key": "openinference.span.kind", "value": {"stringValue": "LLM"}},
            {"key": "input.value", "value": {"stringValue": "gzip json"}}]}]}]}]})
    .to_string()
    .into_bytes()
}

#[tokio::test]
async fn otlp_malformed_spans_are_reported_in_the_partial_success_and_the_rest_is_stored() {
    let server = TestServer::start().await;
    let mut bad_id = llm_span(5, 1, None, "bad", "bad");
    bad_id.span_id = vec![1, 2];
    let mut backwards = llm_span(6, 1, None, "bad", "bad");
    backwards.end_time_unix_nano = 1;
    let good = llm_span(7, 1, None, "good", "good");
    let body = request(vec![bad_id, backwards, good]).encode_to_vec();
    let (status, _, answer) = post_otlp(&server, PROTOBUF, None, body).await;
    assert_eq!(status, StatusCode::OK);
    let partial = ExportTraceServiceResponse::decode(&answer[..])
        .unwrap()
        .partial_success
        .unwrap();
    assert_eq!(partial.rejected_spans, 2);
    assert!(
        partial
            .error_message
            .contains("spans[0]: span_id must be 8 bytes, got 2"),
        "{}",
        partial.error_message
    );
    assert!(
        partial
            .error_message
            .contains("spans[1]: end_time_unix_nano is before"),
        "{}",
        partial.error_message
    );
    assert_eq!(server.counts().await, (1, 0));
    assert_eq!(stored_trace(&server, &trace_hex(7)).await["input"], "good");

    // The same in JSON: the partial success comes back as OTLP/JSON.
    let mut body: Value = serde_json::from_slice(&body_json(8)).unwrap();
    body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["startTimeUnixNano"] = json!("0");
    let answer = post_otlp(
        &server,
        "application/json",
        None,
        body.to_string().into_bytes(),
    )
    .await;
    let (status, answer) = as_json(&answer);
    assert_eq!(status, StatusCode::OK);
    let rejected = &answer["partialSuccess"]["rejectedSpans"];
    assert!(rejected == 1 || rejected == "1", "{answer}");
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("start_time_unix_nano is missing"),
        "{answer}"
    );
}

/// Children usually end (and are exported) before their root; here the model call comes first,
/// then the root, then a retrieval in a third export: one trace, the root's query and answer,
/// the model call's model and tokens, the retrieval's documents.
#[tokio::test]
async fn otlp_spans_of_one_trace_in_several_exports_assemble_into_one_trace() {
    let server = TestServer::start().await;
    let child = llm_span(9, 2, Some(1), "rewritten query", "draft answer");
    let mut root = llm_span(9, 1, None, "user question", "final answer");
    root.attributes = vec![
        kv("openinference.span.kind", "CHAIN"),
        kv("input.value", "user question"),
        kv("output.value", "final answer"),
        kv("session.id", "s-9"),
    ];
    let retrieval = Span {
        attributes: vec![
            kv("openinference.span.kind", "RETRIEVER"),
            kv("retrieval.documents.0.document.content", "Doc one."),
        ],
        ..llm_span(9, 3, Some(1), "", "")
    };
    for span in [child, root, retrieval] {
        let (status, _, _) =
            post_otlp(&server, PROTOBUF, None, request(vec![span]).encode_to_vec()).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(server.counts().await, (1, 0));
    let trace = stored_trace(&server, &trace_hex(9)).await;
    assert_eq!(trace["input"], "user question");
    assert_eq!(trace["output"], "final answer");
    assert_eq!(trace["session_id"], "s-9");
    assert_eq!(trace["model"]["name"], "gpt-4o-mini");
    assert_eq!(trace["usage"]["total_tokens"], 12);
    assert_eq!(trace["context"]["documents"][0]["content"], "Doc one.");
    let kinds: Vec<&str> = trace["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["chain", "llm", "retrieval"]);
}

#[tokio::test]
async fn otlp_evaluations_become_feedback_linked_to_their_trace() {
    let server = TestServer::start().await;
    let mut evaluator = llm_span(11, 5, None, "", "");
    evaluator.attributes = vec![
        kv("openinference.span.kind", "EVALUATOR"),
        kv("annotations.0.annotation.name", "correctness"),
        kv("annotations.0.annotation.label", "incorrect"),
        kv(
            "annotations.0.annotation.explanation",
            "Wrong branch hours.",
        ),
    ];
    evaluator.links = vec![opentelemetry_proto::tonic::trace::v1::span::Link {
        trace_id: vec![10; 16],
        span_id: vec![1; 8],
        ..Default::default()
    }];
    // The evaluation arrives before the trace it judges.
    let (status, _, _) = post_otlp(
        &server,
        PROTOBUF,
        None,
        request(vec![evaluator]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = post_otlp(
        &server,
        PROTOBUF,
        None,
        request(vec![llm_span(10, 1, None, "When do you open?", "At 6.")]).encode_to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, chain) = server
        .get(&format!("/api/v1/traces/{}", trace_hex(10)))
        .await;
    assert_eq!(status, StatusCode::OK);
    let feedback = chain["feedback"].as_array().unwrap();
    assert_eq!(feedback.len(), 2, "{chain}");
    let rating = feedback.iter().find(|f| f["rating"].is_object()).unwrap();
    assert_eq!(rating["rating"]["value"], 0.0);
    assert_eq!(rating["author"], "correctness");
    assert_eq!(rating["source"], "automatic");
    assert_eq!(rating["span_id"], "0101010101010101");
    let (_, negative) = server.get("/api/v1/traces?rating=negative").await;
    assert_eq!(negative["items"][0]["id"], trace_hex(10), "{negative}");
}

#[tokio::test]
async fn otlp_bad_input_gets_clear_errors_and_stores_nothing() {
    let server = TestServer::start_with(feedloop_server::ServerConfig {
        max_body_bytes: 64 * 1024,
        ..Default::default()
    })
    .await;
    let good = request(vec![llm_span(12, 1, None, "q", "a")]).encode_to_vec();

    // Truncated protobuf.
    let answer = post_otlp(&server, PROTOBUF, None, good[..good.len() - 3].to_vec()).await;
    assert_error(&as_json(&answer), 400, "malformed_protobuf", Some("body"));
    // A content type that is neither.
    let answer = post_otlp(&server, "text/plain", None, good.clone()).await;
    assert_error(
        &as_json(&answer),
        415,
        "unsupported_media_type",
        Some("content-type"),
    );
    // An encoding we do not take, and a corrupt gzip stream.
    let answer = post_otlp(&server, PROTOBUF, Some("br"), good.clone()).await;
    assert_error(
        &as_json(&answer),
        415,
        "unsupported_media_type",
        Some("content-encoding"),
    );
    let answer = post_otlp(&server, PROTOBUF, Some("gzip"), good.clone()).await;
    assert_error(
        &as_json(&answer),
        400,
        "malformed_body",
        Some("content-encoding"),
    );
    // Invalid UTF-8 in an attribute's string value.
    let mut bad_utf8 = good.clone();
    let at = bad_utf8
        .windows(b"otlp-session".len())
        .position(|w| w == b"otlp-session")
        .unwrap();
    bad_utf8[at] = 0xff;
    let answer = post_otlp(&server, PROTOBUF, None, bad_utf8).await;
    let (status, body) = as_json(&answer);
    assert_error(
        &(status, body.clone()),
        400,
        "malformed_protobuf",
        Some("body"),
    );
    assert!(
        body["error"]["message"].as_str().unwrap().contains("UTF-8"),
        "{body}"
    );
    let mut json_bad_utf8 = body_json(12);
    let at = json_bad_utf8.windows(4).position(|w| w == b"gzip").unwrap();
    json_bad_utf8[at] = 0xc3;
    let answer = post_otlp(&server, "application/json", None, json_bad_utf8).await;
    assert_eq!(as_json(&answer).0, StatusCode::BAD_REQUEST);
    // Malformed JSON, with the field at fault named.
    let answer = post_otlp(
        &server,
        "application/json",
        None,
        br#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}"#.to_vec(),
    )
    .await;
    let (status, body) = as_json(&answer);
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "malformed_json");
    assert!(
        body["error"]["field"].as_str().unwrap().contains("traceId"),
        "{body}"
    );
    // Absurd sizes: a body over the limit, and a small gzip body that unpacks past it.
    let answer = post_otlp(&server, PROTOBUF, None, vec![0x0a; 200 * 1024]).await;
    assert_error(&as_json(&answer), 413, "payload_too_large", None);
    let bomb = {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![0u8; 10 * 1024 * 1024]).unwrap();
        encoder.finish().unwrap()
    };
    assert!(bomb.len() < 64 * 1024);
    let answer = post_otlp(&server, PROTOBUF, Some("gzip"), bomb).await;
    assert_error(&as_json(&answer), 413, "payload_too_large", None);
    // A protobuf that claims a huge length for a field.
    let answer = post_otlp(
        &server,
        PROTOBUF,
        None,
        vec![0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f],
    )
    .await;
    assert_error(&as_json(&answer), 400, "malformed_protobuf", Some("body"));
    // No key.
    let response = server
        .http
        .post(format!("{}/v1/traces", server.base))
        .header("content-type", PROTOBUF)
        .body(good.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    assert_eq!(server.counts().await, (0, 0), "nothing was stored");
    // The server is unharmed.
    let (status, _, _) = post_otlp(&server, PROTOBUF, None, good).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(server.counts().await, (1, 0));
}
