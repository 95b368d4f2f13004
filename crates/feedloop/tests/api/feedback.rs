//! Feedback of every kind, idempotent retries, conflicts, orphans and supersession.

use serde_json::{Value, json};

use crate::common::{TestServer, assert_error};

/// One item of each of the six kinds, about trace `t1` (whose output is "The fee is 2 %.").
fn every_kind() -> Vec<Value> {
    vec![
        json!({"id": "f-rating", "trace_id": "t1", "kind": "rating", "rating": {"value": 2, "min": 1, "max": 5},
               "source": "end_user", "author": "u1", "author_role": "customer", "confidence": 0.9,
               "metadata": {"widget": "v2"}, "created_at": "2026-03-01T10:00:00Z"}),
        json!({"id": "f-category", "trace_id": "t1", "categories": ["factually_incorrect", "incomplete"],
               "source": "reviewer", "author": "r1"}),
        json!({"id": "f-comment", "trace_id": "t1", "comment": "it ignored my budget", "session_id": "s1"}),
        json!({"id": "f-correction", "trace_id": "t1", "span_id": "llm-1",
               "correction": {"text": "The fee is 3 %.", "kind": "missing_fact"}, "source": "expert"}),
        json!({"id": "f-annotation", "trace_id": "t1", "annotation": {"start": 11, "end": 14, "quote": "2 %",
               "comment": "wrong figure", "tags": ["numbers"], "categories": ["factually_incorrect"]}}),
        json!({"id": "f-signal", "trace_id": "t1", "signal": {"type": "copy", "value": 14,
               "details": {"start": 0, "end": 14}}, "source": "automatic"}),
    ]
}

async fn server_with_trace() -> TestServer {
    let server = TestServer::start().await;
    let (status, body) = server
        .post("/api/v1/traces", json!({"id": "t1", "input": "what is the fee?", "output": "The fee is 2 %.", "session_id": "s1"}))
        .await;
    assert_eq!(status, 200, "{body}");
    server
}

/// Removes what the server adds to a stored item, leaving what the client sent.
fn as_sent(mut view: Value) -> Value {
    let object = view.as_object_mut().unwrap();
    for key in ["received_at", "trace_linked", "superseded_by", "negative"] {
        object.remove(key);
    }
    view
}

#[tokio::test]
async fn every_feedback_kind_round_trips() {
    let server = server_with_trace().await;
    let (status, body) = server
        .post("/api/v1/feedback", Value::Array(every_kind()))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["status"] == "created")
    );

    let (_, chain) = server.get("/api/v1/traces/t1").await;
    let stored = chain["feedback"].as_array().unwrap();
    assert_eq!(stored.len(), 6);
    for sent in every_kind() {
        let id = &sent["id"];
        let found = stored
            .iter()
            .find(|f| &f["id"] == id)
            .unwrap_or_else(|| panic!("{id} stored"));
        let mut expected = sent.clone();
        // Defaults the server fills in: the kind (inferred) and the source.
        let kind = found["kind"].clone();
        expected["kind"] = kind;
        if expected.get("source").is_none() {
            expected["source"] = json!("end_user");
        }
        if let Some(rating) = expected.get_mut("rating") {
            rating["value"] = json!(rating["value"].as_f64());
            rating["min"] = json!(rating["min"].as_f64());
            rating["max"] = json!(rating["max"].as_f64());
        }
        if let Some(signal) = expected.get_mut("signal") {
            signal["value"] = json!(signal["value"].as_f64());
        }
        assert_eq!(as_sent(found.clone()), expected);
        assert_eq!(found["trace_linked"], true);
        // Every kind but a comment and a copy or a good rating says the answer was a problem.
        let negative = !matches!(found["kind"].as_str(), Some("comment"))
            && found["signal"]["type"] != "copy"
            && found["rating"]["value"].as_f64().is_none_or(|v| v < 3.0);
        assert_eq!(found["negative"], negative, "{found}");
    }
    let (_, by_kind) = server.get("/api/v1/stats").await;
    for kind in [
        "rating",
        "category",
        "comment",
        "correction",
        "annotation",
        "signal",
    ] {
        assert_eq!(by_kind["feedback"]["by_kind"][kind], 1, "{kind}");
    }
}

#[tokio::test]
async fn retry_with_same_content_is_a_no_op_and_other_content_conflicts() {
    let server = server_with_trace().await;
    let item = json!({"id": "f1", "trace_id": "t1", "rating": {"value": 0}});
    let (_, first) = server.post("/api/v1/feedback", item.clone()).await;
    assert_eq!(first["status"], "created");
    let (status, again) = server.post("/api/v1/feedback", item).await;
    assert_eq!(status, 200);
    assert_eq!(again["status"], "duplicate");
    assert_eq!(server.counts().await, (1, 1));

    let changed = json!({"id": "f1", "trace_id": "t1", "rating": {"value": 1}});
    assert_error(
        &server.post("/api/v1/feedback", changed).await,
        409,
        "conflict",
        Some("id"),
    );
    // In a batch, the conflict names the item and nothing of the batch is stored.
    let batch = json!([
        {"id": "f2", "trace_id": "t1", "comment": "fine"},
        {"id": "f1", "trace_id": "t1", "comment": "other content"}
    ]);
    assert_error(
        &server.post("/api/v1/feedback", batch).await,
        409,
        "conflict",
        Some("[1].id"),
    );
    assert_eq!(server.counts().await, (1, 1));
}

#[tokio::test]
async fn feedback_before_its_trace_is_linked_when_the_trace_arrives() {
    let server = TestServer::start().await;
    let (status, _) = server
        .post(
            "/api/v1/feedback",
            json!({"id": "early", "trace_id": "later", "comment": "too slow", "session_id": "s9"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, listed) = server.get("/api/v1/feedback?trace_id=later").await;
    assert_eq!(listed["items"][0]["trace_linked"], false);
    let (_, session) = server.get("/api/v1/sessions/s9").await;
    assert_eq!(session["unlinked_feedback"][0]["id"], "early");

    server
        .post(
            "/api/v1/traces",
            json!({"id": "later", "input": "q", "session_id": "s9"}),
        )
        .await;
    let (_, chain) = server.get("/api/v1/traces/later").await;
    assert_eq!(chain["feedback"][0]["id"], "early");
    assert_eq!(chain["feedback"][0]["trace_linked"], true);
    let (_, session) = server.get("/api/v1/sessions/s9").await;
    assert_eq!(session["traces"][0]["feedback"][0]["id"], "early");
    assert_eq!(session["unlinked_feedback"], json!([]));
}

#[tokio::test]
async fn a_later_rating_by_the_same_author_supersedes_the_earlier_one() {
    let server = server_with_trace().await;
    let rate = |id: &str, value: u8, author: &str, at: &str| json!({"id": id, "trace_id": "t1", "rating": {"value": value}, "author": author, "created_at": at});
    server
        .post(
            "/api/v1/feedback",
            rate("a1", 0, "ann", "2026-01-01T00:00:00Z"),
        )
        .await;
    server
        .post(
            "/api/v1/feedback",
            rate("b1", 0, "bob", "2026-01-01T00:00:01Z"),
        )
        .await;
    server
        .post(
            "/api/v1/feedback",
            rate("a2", 1, "ann", "2026-01-01T00:00:02Z"),
        )
        .await;
    let (_, chain) = server.get("/api/v1/traces/t1").await;
    let superseded = |id: &str| {
        chain["feedback"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap()["superseded_by"]
            .clone()
    };
    assert_eq!(superseded("a1"), "a2");
    assert_eq!(superseded("a2"), Value::Null);
    assert_eq!(superseded("b1"), Value::Null);
}

#[tokio::test]
async fn unknown_and_retired_categories_are_rejected_naming_the_category() {
    let server = server_with_trace().await;
    let item = json!({"trace_id": "t1", "categories": ["too_vague", "hallucination"]});
    let answer = server.post("/api/v1/feedback", item.clone()).await;
    assert_error(&answer, 422, "unknown_category", Some("categories[1]"));
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("hallucination")
    );

    let (status, added) = server
        .post(
            "/api/v1/taxonomy/categories",
            json!({"name": "hallucination"}),
        )
        .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(server.post("/api/v1/feedback", item).await.0, 200);

    let (status, retired) = server.delete("/api/v1/taxonomy/categories/too_vague").await;
    assert_eq!(status, 200);
    assert_eq!(retired["active"], false);
    let again = json!({"trace_id": "t1", "categories": ["too_vague"]});
    assert_error(
        &server.post("/api/v1/feedback", again).await,
        422,
        "unknown_category",
        Some("categories[0]"),
    );
    let (_, taxonomy) = server.get("/api/v1/taxonomy").await;
    let names: Vec<&str> = taxonomy["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for default in [
        "factually_incorrect",
        "too_vague",
        "wrong_tone",
        "incomplete",
        "misunderstood_intent",
        "outdated",
        "unsafe",
        "formatting",
        "hallucination",
    ] {
        assert!(names.contains(&default), "{default}");
    }
}
