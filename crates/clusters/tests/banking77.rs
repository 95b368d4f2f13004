//! Problem clusters against the truth on real user queries (Banking77 test set, 77 intents):
//! the clustering the background job runs, fed in batches, scored by the adjusted Rand index
//! and NMI against the intents. The thresholds are the measured figures (BENCHMARKS.md) minus
//! a small margin, so a regression fails.

#![allow(clippy::unwrap_used)] // test code

mod eval;

use feedloop_clusters::group::Thresholds;

#[tokio::test]
async fn clusters_follow_the_intents_of_banking77() {
    let embedder = eval::local_embedder().await;
    let queries = eval::load(&eval::fixtures().join("test.csv"));
    assert_eq!(queries.len(), 3_080);
    let vectors = eval::embed_all(&embedder, &queries).await;
    let scores = eval::cluster_and_score(&queries, &vectors, Thresholds::default(), 4);
    println!("{scores:?}");
    assert!(scores.ari >= ARI - MARGIN, "{scores:?}");
    assert!(scores.nmi >= NMI - MARGIN, "{scores:?}");
}

/// Measured (2026-11-29) with the default thresholds in 4 batches: 196 clusters, ARI 0.428,
/// NMI 0.779; see BENCHMARKS.md.
const ARI: f64 = 0.428;
const NMI: f64 = 0.779;
const MARGIN: f64 = 0.03;
