//! What the gateway adds to a call: sequential non-streaming chat completions sent straight to a
//! loopback upstream and through feedloop's gateway (no lessons, traces stored in SQLite), with
//! the median and p99 of each and their difference.
//!
//! ```text
//! cargo run --release -p feedloop --example gateway_overhead -- [NUM_CALLS]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring tool

use axum::Json;
use feedloop_core::clock::{Clock, SystemClock};
use feedloop_embed::{Embedder, EmbedderConfig};
use feedloop_memory::{MemoryConfig, SemanticMemory};
use feedloop_server::gateway::GatewayConfig;
use feedloop_server::{AppState, ServerConfig};
use feedloop_store::StoreOptions;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WARM_UP_CALLS: usize = 200;

#[tokio::main]
async fn main() {
    let num_calls: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("NUM_CALLS is a number"))
        .unwrap_or(2_000);
    feedloop_embed::install_tls_provider();

    let upstream = start_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let (gateway, key) = start_feedloop(&upstream, dir.path()).await;

    let http = reqwest::Client::new();
    let body = json!({
        "model": "bench-model",
        "messages": [
            {"role": "system", "content": "You are the bank's assistant."},
            {"role": "user", "content": "How do I reset the PIN of my card?"},
        ],
    });
    let direct = measure(
        &http,
        &format!("{upstream}/chat/completions"),
        None,
        &body,
        num_calls,
    )
    .await;
    let through = measure(
        &http,
        &format!("{gateway}/v1/chat/completions"),
        Some(&key),
        &body,
        num_calls,
    )
    .await;
    let direct_again = measure(
        &http,
        &format!("{upstream}/chat/completions"),
        None,
        &body,
        num_calls,
    )
    .await;

    let report = |name: &str, samples: &[Duration]| {
        println!(
            "{name:<22} p50 {:>8.3} ms   p99 {:>8.3} ms",
            millis(percentile(samples, 0.50)),
            millis(percentile(samples, 0.99))
        );
    };
    println!("{num_calls} sequential non-streaming calls each, after {WARM_UP_CALLS} to warm up");
    report("direct to upstream", &direct);
    report("through the gateway", &through);
    report("direct (again)", &direct_again);
    let mut baseline = direct.clone();
    baseline.extend_from_slice(&direct_again);
    println!(
        "added by the gateway:  p50 {:>8.3} ms   p99 {:>8.3} ms",
        millis(percentile(&through, 0.50)) - millis(percentile(&baseline, 0.50)),
        millis(percentile(&through, 0.99)) - millis(percentile(&baseline, 0.99)),
    );
}

async fn measure(
    http: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: &Value,
    num_calls: usize,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(num_calls);
    for call in 0..WARM_UP_CALLS + num_calls {
        let started = Instant::now();
        let mut request = http.post(url).json(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
        if call >= WARM_UP_CALLS {
            samples.push(started.elapsed());
        }
    }
    samples
}

fn percentile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A loopback upstream answering every chat completion at once; returns its `…/v1` url.
async fn start_upstream() -> String {
    async fn chat(Json(body): Json<Value>) -> Json<Value> {
        Json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant",
                "content": "Open the app, choose Cards, then Reset PIN."}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37}
        }))
    }
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(chat));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

/// feedloop on SQLite in `dir`, its gateway pointed at `upstream`; returns its url and admin key.
async fn start_feedloop(upstream: &str, dir: &std::path::Path) -> (String, String) {
    let url = format!("sqlite://{}", dir.join("feedloop.db").display());
    let store = feedloop_store::open(&url, &StoreOptions::default())
        .await
        .unwrap();
    let key = feedloop::cli::serve::bootstrap(store.as_ref(), &SystemClock)
        .await
        .unwrap()
        .unwrap();
    let embedder = Embedder::from_config(&EmbedderConfig::Hash { dimensions: 64 })
        .await
        .unwrap();
    let memory = Arc::new(SemanticMemory::new(
        store.clone(),
        embedder,
        MemoryConfig {
            index_dir: Some(dir.join("vectors")),
            ..MemoryConfig::default()
        },
    ));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let config = ServerConfig {
        gateway: GatewayConfig {
            upstream_base_url: Some(upstream.to_owned()),
            ..GatewayConfig::default()
        },
        ..ServerConfig::default()
    };
    let state = AppState::new(store, clock, config, memory);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(feedloop_server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    (base, key)
}
