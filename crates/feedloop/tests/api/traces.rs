//! Traces: parts that merge, spans, the chain and the session timeline.

use serde_json::json;

use crate::common::TestServer;

#[tokio::test]
async fn trace_parts_merge_into_one_trace() {
    let server = TestServer::start().await;
    let start = json!({
        "id": "t1", "input": "how do I reset my PIN?", "session_id": "s1", "user_id": "u1", "user_role": "customer",
        "environment": "prod", "tags": ["cards"], "metadata": {"app": "web"},
        "context": {"system_prompt": "You are a bank assistant.", "prompt": {"name": "support", "version": "7"},
                    "documents": [{"id": "kb-12", "content": "PINs are reset in the app.", "score": 0.82}]},
        "started_at": "2026-02-01T12:00:00Z",
        "spans": [{"id": "retrieve", "kind": "retrieval", "started_at": "2026-02-01T12:00:00Z"}]
    });
    let (status, receipt) = server.post("/api/v1/traces", start.clone()).await;
    assert_eq!(
        (status.as_u16(), receipt["status"].as_str()),
        (200, Some("created"))
    );
    let end = json!({
        "id": "t1", "output": "Open the app, then Cards → Reset PIN.", "model": {"name": "gpt-4o", "provider": "openai", "version": "2024-08-06"},
        "usage": {"input_tokens": 120, "output_tokens": 30}, "cost_usd": 0.0012, "status": "ok",
        "tags": ["pin"], "metadata": {"latency_class": "fast"}, "ended_at": "2026-02-01T12:00:01.5Z",
        "spans": [{"id": "retrieve", "output": ["kb-12"], "status": "ok", "ended_at": "2026-02-01T12:00:00.2Z"},
                  {"id": "llm", "kind": "llm", "parent_id": "retrieve", "started_at": "2026-02-01T12:00:00.2Z"}]
    });
    let (_, receipt) = server.post("/api/v1/traces", end.clone()).await;
    assert_eq!(receipt["status"], "merged");
    // Re-sending a part changes nothing.
    server.post("/api/v1/traces", start).await;

    let (_, chain) = server.get("/api/v1/traces/t1").await;
    let trace = &chain["trace"];
    assert_eq!(trace["input"], "how do I reset my PIN?");
    assert_eq!(trace["output"], "Open the app, then Cards → Reset PIN.");
    assert_eq!(trace["model"]["version"], "2024-08-06");
    assert_eq!(trace["usage"]["total_tokens"], 150);
    assert_eq!(trace["latency_ms"], 1500.0);
    assert_eq!(trace["tags"], json!(["cards", "pin"]));
    assert_eq!(
        trace["metadata"],
        json!({"app": "web", "latency_class": "fast"})
    );
    assert_eq!(trace["context"]["documents"][0]["id"], "kb-12");
    assert_eq!(trace["context"]["prompt"]["version"], "7");
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2);
    assert_eq!(spans[0]["id"], "retrieve");
    assert_eq!(spans[0]["kind"], "retrieval");
    assert_eq!(spans[0]["output"], json!(["kb-12"]));
    assert_eq!(spans[1]["parent_id"], "retrieve");
    assert_eq!(server.counts().await, (1, 0));
}

#[tokio::test]
async fn the_chain_names_session_neighbours_and_the_session_is_in_order() {
    let server = TestServer::start().await;
    let traces = json!([
        {"id": "a", "session_id": "s", "input": "first", "started_at": "2026-01-01T00:00:00Z"},
        {"id": "c", "session_id": "s", "input": "third", "started_at": "2026-01-01T00:02:00Z"},
        {"id": "b", "session_id": "s", "input": "second", "started_at": "2026-01-01T00:01:00Z"},
        {"id": "other", "session_id": "z", "input": "elsewhere", "started_at": "2026-01-01T00:01:30Z"}
    ]);
    let (status, receipt) = server.post("/api/v1/traces", traces).await;
    assert_eq!(status, 200, "{receipt}");
    assert_eq!(receipt["items"].as_array().unwrap().len(), 4);
    server
        .post(
            "/api/v1/feedback",
            json!({"id": "fb", "trace_id": "b", "rating": {"value": 1}}),
        )
        .await;

    let (_, chain) = server.get("/api/v1/traces/b").await;
    assert_eq!(chain["session"]["previous"]["id"], "a");
    assert_eq!(chain["session"]["next"]["id"], "c");
    assert_eq!(chain["feedback"][0]["id"], "fb");

    let (status, session) = server.get("/api/v1/sessions/s").await;
    assert_eq!(status, 200);
    let order: Vec<&str> = session["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["trace"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["a", "b", "c"]);
    assert_eq!(session["traces"][1]["feedback"][0]["id"], "fb");
    assert_eq!(server.get("/api/v1/sessions/nope").await.0, 404);
    assert_eq!(server.get("/api/v1/traces/nope").await.0, 404);
}
