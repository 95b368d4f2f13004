//! Listing with every filter, and cursor pagination.

use serde_json::{Value, json};
use std::collections::BTreeSet;

use crate::common::TestServer;

/// Four traces that differ in every filterable dimension, and feedback on three of them.
async fn data_set() -> TestServer {
    let server = TestServer::start().await;
    let traces = json!([
        {"id": "t1", "session_id": "s1", "user_id": "u1", "user_role": "customer", "environment": "prod",
         "model": {"name": "gpt-4o", "version": "2024-08"}, "context": {"prompt": {"name": "support", "version": "1"}},
         "tags": ["cards"], "metadata": {"app_version": 2, "channel": "web"}, "started_at": "2026-01-01T00:00:00Z",
         "input": "q1", "output": "a1"},
        {"id": "t2", "session_id": "s1", "user_id": "u1", "user_role": "customer", "environment": "prod",
         "model": {"name": "gpt-4o", "version": "2024-11"}, "context": {"prompt": {"name": "support", "version": "2"}},
         "tags": ["loans"], "metadata": {"app_version": "2", "channel": "app"}, "started_at": "2026-01-02T00:00:00Z",
         "input": "q2", "output": "a2"},
        {"id": "t3", "session_id": "s2", "user_id": "u2", "user_role": "agent", "environment": "dev",
         "model": {"name": "claude", "version": "3"}, "tags": ["cards", "beta"], "metadata": {"app_version": 3},
         "started_at": "2026-01-03T00:00:00Z", "input": "q3", "output": "a3"},
        {"id": "t4", "session_id": "s3", "user_id": "u3", "environment": "test", "started_at": "2026-01-04T00:00:00Z",
         "input": "q4", "output": "a4"}
    ]);
    assert_eq!(server.post("/api/v1/traces", traces).await.0, 200);
    let feedback = json!([
        {"id": "f1", "trace_id": "t1", "rating": {"value": 0}, "source": "end_user", "created_at": "2026-01-01T01:00:00Z",
         "metadata": {"widget": "thumbs"}},
        {"id": "f2", "trace_id": "t2", "categories": ["too_vague"], "source": "reviewer", "created_at": "2026-01-02T01:00:00Z"},
        {"id": "f3", "trace_id": "t3", "rating": {"value": 5, "min": 1, "max": 5}, "source": "expert",
         "created_at": "2026-01-03T01:00:00Z"},
        {"id": "f4", "trace_id": "t3", "signal": {"type": "copy"}, "source": "automatic", "created_at": "2026-01-03T02:00:00Z"}
    ]);
    assert_eq!(server.post("/api/v1/feedback", feedback).await.0, 200);
    server
}

async fn ids(server: &TestServer, path: &str) -> BTreeSet<String> {
    let (status, page) = server.get(path).await;
    assert_eq!(status, 200, "{path}: {page}");
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn every_filter_narrows_traces() {
    let server = data_set().await;
    let cases: &[(&str, &[&str])] = &[
        ("", &["t1", "t2", "t3", "t4"]),
        (
            "from=2026-01-02T00:00:00Z&to=2026-01-04T00:00:00Z",
            &["t2", "t3"],
        ),
        ("session_id=s1", &["t1", "t2"]),
        ("user_id=u2", &["t3"]),
        ("user_role=customer", &["t1", "t2"]),
        ("model=gpt-4o", &["t1", "t2"]),
        ("model_version=2024-11", &["t2"]),
        ("prompt_name=support&prompt_version=1", &["t1"]),
        ("environment=dev", &["t3"]),
        ("tag=cards", &["t1", "t3"]),
        ("meta.app_version=2", &["t1", "t2"]),
        ("meta.channel=web", &["t1"]),
        ("kind=rating", &["t1", "t3"]),
        ("rating=negative", &["t1"]),
        ("rating=positive", &["t3"]),
        ("category=too_vague", &["t2"]),
        ("source=automatic", &["t3"]),
        ("kind=signal&source=end_user", &[]),
        ("tag=cards&environment=prod", &["t1"]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            ids(&server, &format!("/api/v1/traces?{query}")).await,
            set(expected),
            "{query}"
        );
    }
}

#[tokio::test]
async fn every_filter_narrows_feedback() {
    let server = data_set().await;
    let cases: &[(&str, &[&str])] = &[
        ("", &["f1", "f2", "f3", "f4"]),
        ("from=2026-01-02T00:00:00Z&to=2026-01-03T01:00:00Z", &["f2"]),
        ("session_id=s1", &["f1", "f2"]),
        ("user_id=u2", &["f3", "f4"]),
        ("user_role=customer", &["f1", "f2"]),
        ("model=claude", &["f3", "f4"]),
        ("model_version=2024-08", &["f1"]),
        ("prompt_version=2", &["f2"]),
        ("environment=dev", &["f3", "f4"]),
        ("tag=loans", &["f2"]),
        ("kind=rating", &["f1", "f3"]),
        ("rating=negative", &["f1"]),
        ("category=too_vague", &["f2"]),
        ("source=expert", &["f3"]),
        ("trace_id=t3", &["f3", "f4"]),
        ("meta.widget=thumbs", &["f1"]),
    ];
    for (query, expected) in cases {
        assert_eq!(
            ids(&server, &format!("/api/v1/feedback?{query}")).await,
            set(expected),
            "{query}"
        );
    }
}

#[tokio::test]
async fn cursor_pages_cover_everything_once_in_order() {
    let server = TestServer::start().await;
    let traces: Vec<Value> = (0..25)
        .map(|i| json!({"id": format!("t{i:02}"), "started_at": format!("2026-01-01T00:00:{i:02}Z")}))
        .collect();
    server.post("/api/v1/traces", Value::Array(traces)).await;
    // The desc pass adds a trace older than all others, so the asc pass starts with it.
    for (order, expected_first) in [("desc", "t24"), ("asc", "late-desc")] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut pages = 0;
        loop {
            let path = match &cursor {
                Some(c) => format!("/api/v1/traces?limit=10&order={order}&cursor={c}"),
                None => format!("/api/v1/traces?limit=10&order={order}"),
            };
            let (_, page) = server.get(&path).await;
            pages += 1;
            seen.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["id"].as_str().unwrap().to_owned()),
            );
            if pages == 1 {
                // A trace that arrives between pages does not shift the later pages.
                let late = if order == "desc" {
                    "2025-12-31T00:00:00Z"
                } else {
                    "2026-01-02T00:00:00Z"
                };
                server
                    .post(
                        "/api/v1/traces",
                        json!({"id": format!("late-{order}"), "started_at": late}),
                    )
                    .await;
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen[0], expected_first);
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no duplicates");
        assert!(seen.len() >= 25, "{order}: {seen:?}");
        let in_time_order: Vec<&String> = seen.iter().filter(|id| id.starts_with('t')).collect();
        let mut sorted = in_time_order.clone();
        sorted.sort();
        if order == "desc" {
            sorted.reverse();
        }
        assert_eq!(in_time_order, sorted, "{order} order");
        assert!(
            seen.contains(&format!("late-{order}")),
            "the late trace is on a later page"
        );
    }
}
