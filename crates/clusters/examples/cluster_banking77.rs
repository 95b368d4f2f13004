//! Sweeps the clustering thresholds on the Banking77 test queries and prints ARI and NMI
//! against the intents: `cargo run --release -p feedloop-clusters --example cluster_banking77`.

#![allow(clippy::unwrap_used)]

#[path = "../tests/eval/mod.rs"]
mod eval;

use feedloop_clusters::group::Thresholds;

#[tokio::main]
async fn main() {
    let embedder = eval::local_embedder().await;
    let queries = eval::load(&eval::fixtures().join("test.csv"));
    let vectors = eval::embed_all(&embedder, &queries).await;
    println!("join  found  batches  clusters  ARI    NMI");
    for join in [0.5, 0.55, 0.6, 0.65, 0.7] {
        for found in [0.5, 0.55, 0.6, 0.65, 0.7] {
            for batches in [1, 4] {
                let scores = eval::cluster_and_score(
                    &queries,
                    &vectors,
                    Thresholds { join, found },
                    batches,
                );
                println!(
                    "{join:.2}  {found:.2}   {batches:>2}       {:>5}     {:.3}  {:.3}",
                    scores.num_clusters, scores.ari, scores.nmi
                );
            }
        }
    }
}
