//! Bad input gets a clear JSON error naming the field, and changes nothing.

use feedloop_server::ServerConfig;
use serde_json::json;

use crate::common::{TestServer, assert_error};

async fn server_with_trace() -> TestServer {
    let server = TestServer::start_with(ServerConfig {
        max_body_bytes: 64 * 1024,
        ..ServerConfig::default()
    })
    .await;
    server
        .post(
            "/api/v1/traces",
            json!({"id": "t1", "input": "q", "output": "Prix : 12 € par mois"}),
        )
        .await;
    server
}

#[tokio::test]
async fn bad_bodies_get_named_errors_and_change_nothing() {
    let server = server_with_trace().await;
    let before = server.counts().await;
    let cases = [
        // (path, body, status, code, field)
        (
            "/api/v1/feedback",
            json!({"trace_id": "t1", "rating": {"value": "good"}}),
            422,
            "invalid_field",
            Some("rating.value"),
        ),
        (
            "/api/v1/feedback",
            json!({"rating": {"value": 1}}),
            422,
            "invalid_field",
            None,
        ),
        (
            "/api/v1/feedback",
            json!({"trace_id": "t1", "rating": {"value": 6, "min": 1, "max": 5}}),
            422,
            "invalid_value",
            Some("rating.value"),
        ),
        (
            "/api/v1/feedback",
            json!({"trace_id": "t1", "comment": "x", "confidence": 1.2}),
            422,
            "invalid_value",
            Some("confidence"),
        ),
        (
            "/api/v1/feedback",
            json!({"trace_id": "t1", "comment": "x", "colour": "red"}),
            422,
            "invalid_field",
            Some("colour"),
        ),
        (
            "/api/v1/feedback",
            json!({"trace_id": "t1", "annotation": {"start": 7, "end": 11, "quote": "12 e"}}),
            422,
            "invalid_value",
            Some("annotation.quote"),
        ),
        (
            "/api/v1/feedback",
            json!({"trace_id": "t1", "annotation": {"start": 16, "end": 25, "quote": "par mois!"}}),
            422,
            "invalid_value",
            Some("annotation.end"),
        ),
        (
            "/api/v1/feedback",
            json!({"trace_id": "t1", "annotation": {"start": 3, "end": 1, "quote": "ab"}}),
            422,
            "invalid_value",
            Some("annotation.end"),
        ),
        (
            "/api/v1/feedback",
            json!({"trace_id": "t1", "kind": "comment"}),
            422,
            "invalid_value",
            Some("comment"),
        ),
        (
            "/api/v1/feedback",
            json!({"trace_id": "bad id", "comment": "x"}),
            422,
            "invalid_value",
            Some("trace_id"),
        ),
        (
            "/api/v1/feedback",
            json!([{"trace_id": "t1", "comment": "ok"}, {"trace_id": "t1", "signal": {"type": "Copy!"}}]),
            422,
            "invalid_value",
            Some("[1].signal.type"),
        ),
        (
            "/api/v1/traces",
            json!({"id": "t2", "latency_ms": -3}),
            422,
            "invalid_value",
            Some("latency_ms"),
        ),
        (
            "/api/v1/traces",
            json!({"id": "t2", "environment": "space"}),
            422,
            "invalid_field",
            Some("environment"),
        ),
        (
            "/api/v1/traces",
            json!({"id": "t2", "spans": [{"id": "s", "kind": "magic"}]}),
            422,
            "invalid_field",
            Some("spans[0].kind"),
        ),
        (
            "/api/v1/traces",
            json!({"id": "t2", "started_at": "yesterday"}),
            422,
            "invalid_field",
            Some("started_at"),
        ),
        (
            "/api/v1/ingest",
            json!({"traces": [{"id": "t3"}], "feedback": [{"trace_id": "t3", "rating": {"value": 2}}]}),
            422,
            "invalid_value",
            Some("feedback[0].rating.value"),
        ),
        (
            "/api/v1/taxonomy/categories",
            json!({"name": "Not Snake"}),
            422,
            "invalid_value",
            Some("name"),
        ),
    ];
    for (path, body, status, code, field) in cases {
        let answer = server.post(path, body.clone()).await;
        assert_error(&answer, status, code, field);
        assert_eq!(server.counts().await, before, "{body} changed something");
    }
}

#[tokio::test]
async fn malformed_json_wrong_content_type_and_large_bodies_are_refused() {
    let server = server_with_trace().await;
    let before = server.counts().await;
    let key = server.key.clone();
    let malformed = server
        .send_raw(
            &key,
            "POST",
            "/api/v1/feedback",
            "application/json",
            b"{\"trace_id\": ".to_vec(),
        )
        .await;
    assert_error(&malformed, 400, "malformed_json", None);
    let trailing = server
        .send_raw(
            &key,
            "POST",
            "/api/v1/feedback",
            "application/json",
            b"{\"trace_id\": \"t1\", \"comment\": \"x\"} }".to_vec(),
        )
        .await;
    assert_error(&trailing, 400, "malformed_json", None);
    let text = server
        .send_raw(
            &key,
            "POST",
            "/api/v1/feedback",
            "text/plain",
            b"{}".to_vec(),
        )
        .await;
    assert_error(&text, 415, "unsupported_media_type", Some("content-type"));
    let huge = format!(
        "{{\"trace_id\": \"t1\", \"comment\": \"{}\"}}",
        "x".repeat(100 * 1024)
    );
    let large = server
        .send_raw(
            &key,
            "POST",
            "/api/v1/feedback",
            "application/json",
            huge.into_bytes(),
        )
        .await;
    assert_error(&large, 413, "payload_too_large", None);
    assert_error(
        &server.get("/api/v1/traces?limit=5000").await,
        400,
        "invalid_query",
        Some("limit"),
    );
    assert_error(
        &server.get("/api/v1/traces?colour=red").await,
        400,
        "invalid_query",
        Some("colour"),
    );
    assert_error(
        &server.get("/api/v1/nothing-here").await,
        404,
        "route_not_found",
        None,
    );
    assert_error(
        &server
            .send_raw(&key, "PUT", "/api/v1/traces", "application/json", vec![])
            .await,
        405,
        "method_not_allowed",
        None,
    );
    assert_eq!(server.counts().await, before);
}
