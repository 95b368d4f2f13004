//! Search by meaning through the HTTP API: the real embedding model where meaning matters, the
//! hash embedder (chosen explicitly) where only the plumbing does.

use serde_json::{Value, json};

use crate::common::database::TestDatabase;
use crate::common::{TestServer, assert_error, hash_embedder, minilm};

const BANKING: &[(&str, &str)] = &[
    ("tr-pin", "I forgot the PIN of my card, how can I reset it?"),
    (
        "tr-stolen",
        "Someone stole my wallet with my debit card inside",
    ),
    (
        "tr-fx",
        "What exchange rate do you use when I pay in euros?",
    ),
    (
        "tr-transfer",
        "My bank transfer to a friend has not arrived yet",
    ),
    ("tr-topup", "Why did my top-up with Apple Pay fail?"),
    (
        "tr-refund",
        "The shop refunded me but I cannot see the money",
    ),
];

async fn ingest_banking(server: &TestServer) {
    let traces: Vec<Value> = BANKING
        .iter()
        .map(|(id, input)| json!({"id": id, "input": input, "output": "…", "environment": "prod"}))
        .collect();
    let (status, body) = server.post("/api/v1/traces", json!(traces)).await;
    assert_eq!(status, 200, "{body}");
    server.wait_until_indexed(BANKING.len()).await;
}

fn ids(results: &Value) -> Vec<&str> {
    results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trace"]["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_rephrased_question_finds_the_trace_with_the_same_meaning() {
    let server = TestServer::start_with_embedder(minilm().await).await;
    ingest_banking(&server).await;
    let (status, found) = server
        .post(
            "/api/v1/search",
            json!({"text": "how do I change my card's pin number", "k": 3}),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["model"], "sentence-transformers/all-MiniLM-L6-v2");
    assert_eq!(ids(&found)[0], "tr-pin", "{found}");
    let similarities: Vec<f64> = found["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["similarity"].as_f64().unwrap())
        .collect();
    assert_eq!(similarities.len(), 3);
    assert!(similarities[0] > 0.5, "{similarities:?}");
    assert!(
        similarities.windows(2).all(|w| w[0] >= w[1]),
        "{similarities:?}"
    );
}

#[tokio::test]
async fn similar_known_problems_come_with_their_corrections() {
    let server = TestServer::start_with_embedder(minilm().await).await;
    ingest_banking(&server).await;
    let (status, body) = server
        .post(
            "/api/v1/traces",
            json!({"id": "tr-pin-2", "input": "Where can I change the PIN for my card?", "output": "You cannot."}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let feedback = json!([
        {"trace_id": "tr-pin-2", "kind": "rating", "rating": {"value": 0}, "author": "u1"},
        {"trace_id": "tr-pin-2", "kind": "correction",
         "correction": {"text": "Change it at any cash machine under PIN services."}},
        {"trace_id": "tr-stolen", "kind": "signal", "signal": {"type": "regenerate"}},
        {"trace_id": "tr-fx", "kind": "rating", "rating": {"value": 1}, "author": "u2"},
    ]);
    let (status, body) = server.post("/api/v1/feedback", feedback).await;
    assert_eq!(status, 200, "{body}");
    server.wait_until_indexed(BANKING.len() + 1).await;

    let (status, similar) = server
        .get("/api/v1/traces/tr-pin/similar?problems_only=true&k=5")
        .await;
    assert_eq!(status, 200, "{similar}");
    // Only traces with negative feedback (a correction, a thumbs-down, a regenerate), nearest first.
    assert_eq!(ids(&similar), ["tr-pin-2", "tr-stolen"], "{similar}");
    let first = &similar["results"][0]["feedback"];
    assert_eq!(first["negative"], 2);
    assert_eq!(
        first["corrections"][0]["text"],
        "Change it at any cash machine under PIN services."
    );
    assert_eq!(
        similar["results"][1]["feedback"]["signals"]["regenerate"],
        1
    );

    // Without the filter, the trace itself is left out and the others follow.
    let (_, all) = server.get("/api/v1/traces/tr-pin/similar?k=10").await;
    let all_ids = ids(&all);
    assert_eq!(all_ids.len(), BANKING.len());
    assert_eq!(all_ids[0], "tr-pin-2");
    assert!(!all_ids.contains(&"tr-pin"));
}

#[tokio::test]
async fn a_selective_filter_still_gives_k_results() {
    let server = TestServer::start().await;
    let mut traces = Vec::new();
    for i in 0..300 {
        let environment = if i % 100 == 7 { "dev" } else { "prod" };
        traces.push(json!({
            "id": format!("tr-{i}"),
            "input": format!("question number {i} about topic {}", i % 13),
            "environment": environment,
            "model": {"name": if i % 2 == 0 { "gpt-a" } else { "gpt-b" }, "version": "1"},
        }));
    }
    let (status, body) = server.post("/api/v1/traces", json!(traces)).await;
    assert_eq!(status, 200, "{body}");
    server.wait_until_indexed(300).await;

    let (status, found) = server
        .post(
            "/api/v1/search",
            json!({"text": "question about topic 4", "k": 3, "filter": {"environment": "dev"}}),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    let mut found_ids = ids(&found);
    found_ids.sort_unstable();
    assert_eq!(found_ids, ["tr-107", "tr-207", "tr-7"]);
    for result in found["results"].as_array().unwrap() {
        assert_eq!(result["trace"]["environment"], "dev");
    }

    let (_, by_model) = server
        .post(
            "/api/v1/search",
            json!({"text": "question", "k": 20, "filter": {"model": "gpt-b", "from": "2000-01-01T00:00:00Z"}}),
        )
        .await;
    let results = by_model["results"].as_array().unwrap();
    assert_eq!(results.len(), 20);
    assert!(
        results
            .iter()
            .all(|r| r["trace"]["model"]["name"] == "gpt-b")
    );

    // A filter nothing matches gives nothing, not an error.
    let (status, none) = server
        .get("/api/v1/traces/tr-1/similar?model_version=9")
        .await;
    assert_eq!(status, 200);
    assert_eq!(none["results"], json!([]));
}

#[tokio::test]
async fn bad_searches_are_refused_with_the_field_named() {
    let server = TestServer::start().await;
    let cases = [
        (json!({}), "text"),
        (json!({"text": "a", "trace_id": "t"}), "text"),
        (json!({"text": "   "}), "text"),
        (json!({"text": "a", "k": 0}), "k"),
        (json!({"text": "a", "k": 101}), "k"),
    ];
    for (body, field) in cases {
        let answer = server.post("/api/v1/search", body.clone()).await;
        assert_error(&answer, 422, "invalid_value", Some(field));
    }
    let answer = server
        .post(
            "/api/v1/search",
            json!({"text": "a", "filter": {"colour": "red"}}),
        )
        .await;
    assert_error(&answer, 422, "invalid_value", Some("filter.colour"));
    let answer = server
        .post(
            "/api/v1/search",
            json!({"text": "a", "filter": {"environment": 3}}),
        )
        .await;
    assert_error(&answer, 422, "invalid_field", Some("filter.environment"));
    let answer = server
        .post("/api/v1/search", json!({"text": "a", "nearest": 3}))
        .await;
    assert_eq!(answer.0, 422, "{}", answer.1);
    let answer = server.get("/api/v1/traces/nope/similar").await;
    assert_error(&answer, 404, "trace_not_found", None);
    let answer = server.get("/api/v1/traces/nope/similar?k=abc").await;
    assert_error(&answer, 400, "invalid_query", Some("k"));
    let answer = server.get("/api/v1/traces/nope/similar?limit=3").await;
    assert_error(&answer, 400, "invalid_query", Some("limit"));
}

#[tokio::test]
async fn a_replica_finds_vectors_embedded_through_another() {
    let a = TestServer::start().await;
    let b = a
        .replica_with(Default::default(), hash_embedder().await)
        .await;
    let (status, body) = a
        .post(
            "/api/v1/traces",
            json!([{"id": "tr-1", "input": "alpha beta gamma"}, {"id": "tr-2", "input": "delta epsilon"}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    a.wait_until_indexed(2).await;
    b.wait_until_indexed(2).await;
    let metrics = b
        .http
        .get(format!("{}/metrics", b.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("\nfeedloop_embedding_backlog 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nfeedloop_indexed_vectors 2\n"),
        "{metrics}"
    );
    let index_bytes: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("feedloop_vector_index_bytes "))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    // Two 64-d vectors (the hash embedder's), each as f32 and as i8: 5 bytes per dimension.
    assert!(index_bytes >= 2 * 64 * 5, "{metrics}");
    let (status, found) = b
        .post(
            "/api/v1/search",
            json!({"text": "alpha beta gamma", "k": 1}),
        )
        .await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(ids(&found), ["tr-1"]);
    assert!(found["results"][0]["similarity"].as_f64().unwrap() > 0.999);
}

/// Real queries: the first `num` rows of the Banking77 test set, as (text, intent).
fn banking77(num: usize) -> Vec<(String, String)> {
    let text = include_str!("../../../../fixtures/banking77/test.csv");
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .take(num)
        .map(|row| {
            let row = row.unwrap();
            (row[0].to_owned(), row[1].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn search_results_agree_on_sqlite_and_postgresql() {
    let model = minilm().await;
    let sqlite = TestServer::start_on_with(TestDatabase::create_sqlite(), model.clone()).await;
    let postgres = TestServer::start_on_with(TestDatabase::create_postgres().await, model).await;
    let queries = banking77(200);
    let traces: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, (query, intent))| {
            json!({
                "id": format!("tr-{i}"),
                "input": query,
                "environment": if i % 3 == 0 { "dev" } else { "prod" },
                "tags": [intent],
            })
        })
        .collect();
    let negative: Vec<Value> = (0..200)
        .step_by(4)
        .map(|i| json!({"trace_id": format!("tr-{i}"), "kind": "rating", "rating": {"value": 0}, "author": "u"}))
        .collect();
    for server in [&sqlite, &postgres] {
        let (status, body) = server.post("/api/v1/traces", json!(traces)).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server.post("/api/v1/feedback", json!(negative)).await;
        assert_eq!(status, 200, "{body}");
        server.wait_until_indexed(200).await;
    }
    let searches = [
        json!({"text": "my card has still not arrived", "k": 10}),
        json!({"text": "how long does a transfer take", "k": 5, "filter": {"environment": "dev"}}),
        json!({"trace_id": "tr-8", "k": 5, "problems_only": true}),
    ];
    for search in searches {
        let (_, on_sqlite) = sqlite.post("/api/v1/search", search.clone()).await;
        let (_, on_postgres) = postgres.post("/api/v1/search", search.clone()).await;
        let summary = |found: &Value| -> Vec<(String, i64)> {
            found["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let similarity = r["similarity"].as_f64().unwrap();
                    (
                        r["trace"]["id"].as_str().unwrap().to_owned(),
                        (similarity * 1e4).round() as i64,
                    )
                })
                .collect()
        };
        assert!(!summary(&on_sqlite).is_empty(), "{search}: {on_sqlite}");
        assert_eq!(summary(&on_sqlite), summary(&on_postgres), "{search}");
    }
}
