//! Problem clusters through the API, with the real embedding model: traces with negative
//! feedback on two topics become two named clusters; a later problem joins its cluster instead
//! of founding another; traces without negative feedback stay out; bad queries are named.

use feedloop_core::auth::KeyRole;
use feedloop_core::clock::SystemClock;
use feedloop_server::ServerConfig;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{TestServer, assert_error, minilm};

const CARDS: [&str; 4] = [
    "My card was declined at the supermarket",
    "Why was my card payment declined?",
    "The shop declined my card again",
    "Card declined when paying online",
];
const TRANSFERS: [&str; 3] = [
    "My transfer to a friend has not arrived",
    "The transfer I sent yesterday has not arrived",
    "Why hasn't my transfer arrived yet?",
];

async fn ask(server: &TestServer, id: &str, query: &str, negative: bool) {
    let (status, body) = server
        .post(
            "/api/v1/traces",
            json!({"id": id, "input": query, "output": "Let me check that for you."}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let rating = if negative { -1 } else { 1 };
    let feedback = if id.ends_with('0') {
        json!({"trace_id": id, "categories": ["incomplete"]})
    } else {
        json!({"trace_id": id, "rating": {"value": rating, "min": -1, "max": 1}})
    };
    let (status, body) = server.post("/api/v1/feedback", feedback).await;
    assert_eq!(status, 200, "{body}");
}

fn cluster_with<'a>(clusters: &'a Value, term: &str) -> &'a Value {
    clusters["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["terms"].as_array().unwrap().iter().any(|t| t == term))
        .unwrap_or_else(|| panic!("a cluster named by {term:?}: {clusters:#}"))
}

#[tokio::test]
async fn negative_traces_cluster_by_topic_and_later_ones_join() {
    // The job runner ticks once at start and then rarely: the test refreshes by hand.
    let config = ServerConfig {
        job_tick_interval: Duration::from_secs(3_600),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with_clock(Arc::new(SystemClock), config, minilm().await).await;
    // New clusters are announced to webhooks (queued here; nothing listens on the port).
    let (status, hook) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["new_cluster"]}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    for (i, query) in CARDS.iter().enumerate() {
        ask(&server, &format!("card-{i}"), query, true).await;
    }
    for (i, query) in TRANSFERS.iter().enumerate() {
        ask(&server, &format!("transfer-{i}"), query, true).await;
    }
    ask(&server, "happy-1", "How do I order a new card?", false).await;
    server
        .wait_until_indexed(CARDS.len() + TRANSFERS.len() + 1)
        .await;

    let (status, refresh) = server.post("/api/v1/clusters/refresh", json!({})).await;
    assert_eq!(status, 200, "{refresh}");
    // The job's own first run may have placed some already.
    let (status, all) = server.get("/api/v1/clusters?min_size=1").await;
    assert_eq!(status, 200, "{all}");
    let sizes: u64 = all["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["size"].as_u64().unwrap())
        .sum();
    assert_eq!(
        sizes, 7,
        "every problem is placed, the well-rated trace is none: {all:#}"
    );
    let (status, clusters) = server.get("/api/v1/clusters").await;
    assert_eq!(status, 200, "{clusters}");
    assert_eq!(
        clusters["clusters"].as_array().unwrap().len(),
        2,
        "{clusters:#}"
    );
    let cards = cluster_with(&clusters, "declined");
    assert_eq!(cards["size"], 4);
    assert_eq!(cards["last_7_days"], 4);
    assert_eq!(cards["trend"].as_array().unwrap().len(), 1);
    assert_eq!(cards["examples"].as_array().unwrap().len(), 3);
    assert_eq!(
        cards["top_categories"],
        json!([{"name": "incomplete", "count": 1}])
    );
    let transfers = cluster_with(&clusters, "transfer");
    assert_eq!(transfers["size"], 3);
    assert!(transfers["name"].as_str().unwrap().contains("transfer"));

    // Nothing new: a second refresh places nothing.
    let (_, again) = server.post("/api/v1/clusters/refresh", json!({})).await;
    assert_eq!(again["placed"], 0);
    // A new problem joins its topic's cluster.
    ask(&server, "card-9", "My card keeps getting declined", true).await;
    server.wait_until_indexed(9).await;
    let (_, joined) = server.post("/api/v1/clusters/refresh", json!({})).await;
    assert_eq!(
        (joined["placed"].clone(), joined["new_clusters"].clone()),
        (json!(1), json!([]))
    );
    let id = cards["id"].as_i64().unwrap();
    let (status, detail) = server.get(&format!("/api/v1/clusters/{id}")).await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["size"], 5);
    assert_eq!(detail["examples"].as_array().unwrap().len(), 5);

    // Bad requests are named and change nothing.
    assert_error(
        &server.get("/api/v1/clusters?limit=0").await,
        400,
        "invalid_query",
        Some("limit"),
    );
    assert_error(
        &server
            .get(&format!("/api/v1/clusters/{id}?min_size=3"))
            .await,
        400,
        "invalid_query",
        Some("min_size"),
    );
    assert_error(
        &server.get("/api/v1/clusters/123456").await,
        404,
        "cluster_not_found",
        None,
    );
    let reader = server.key_with_role(KeyRole::Read).await;
    let (status, _) = server
        .post_as(&reader, "/api/v1/clusters/refresh", json!({}))
        .await;
    assert_eq!(status, 403);
}
