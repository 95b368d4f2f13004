//! Clustering quality on Banking77 (fixtures/banking77): the test queries are embedded, fed to
//! the clustering in batches as the background job would, and the clusters compared with the
//! intents by the adjusted Rand index and normalised mutual information. Shared by
//! `tests/banking77.rs` (in CI) and `examples/cluster_banking77.rs` (a threshold sweep, for
//! BENCHMARKS.md).

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use feedloop_clusters::group::{Clustering, Thresholds};
use feedloop_embed::{Embedder, EmbedderConfig};

/// A labelled query.
#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    pub intent: String,
}

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/banking77")
}

/// The rows of a `text,category` CSV file.
pub fn load(path: &Path) -> Vec<Query> {
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(|row| {
            let row = row.unwrap();
            Query {
                text: row[0].to_owned(),
                intent: row[1].to_owned(),
            }
        })
        .collect()
}

pub async fn local_embedder() -> Embedder {
    let model_dir = tokio::task::spawn_blocking(feedloop_embed::model::ensure_test_model)
        .await
        .unwrap();
    Embedder::from_config(&EmbedderConfig::Local {
        model_dir,
        threads: 2,
    })
    .await
    .unwrap()
}

pub async fn embed_all(embedder: &Embedder, queries: &[Query]) -> Vec<Vec<f32>> {
    let mut vectors = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(64) {
        let texts = chunk.iter().map(|q| q.text.clone()).collect();
        vectors.extend(embedder.embed(texts).await.unwrap());
    }
    vectors
}

/// Agreement of the clusters with the intents.
#[derive(Debug, Clone, Copy)]
pub struct Scores {
    pub ari: f64,
    pub nmi: f64,
    pub num_clusters: usize,
}

/// Clusters the vectors in `batches` runs (in a fixed shuffled order, as problems arrive) and
/// scores the result against the intents.
pub fn cluster_and_score(
    queries: &[Query],
    vectors: &[Vec<f32>],
    thresholds: Thresholds,
    batches: usize,
) -> Scores {
    let order = shuffled(queries.len());
    let mut clustering = Clustering::default();
    let mut cluster_of = vec![0usize; queries.len()];
    for chunk in order.chunks(queries.len().div_ceil(batches)) {
        let points: Vec<&[f32]> = chunk.iter().map(|&i| vectors[i].as_slice()).collect();
        for (&i, (cluster, _)) in chunk.iter().zip(clustering.add(&points, thresholds)) {
            cluster_of[i] = cluster;
        }
    }
    let mut intent_ids: HashMap<&str, usize> = HashMap::new();
    let truth: Vec<usize> = queries
        .iter()
        .map(|q| {
            let next = intent_ids.len();
            *intent_ids.entry(q.intent.as_str()).or_insert(next)
        })
        .collect();
    Scores {
        ari: adjusted_rand_index(&truth, &cluster_of),
        nmi: normalized_mutual_information(&truth, &cluster_of),
        num_clusters: clustering.sizes.len(),
    }
}

/// A fixed permutation (a linear congruential generator: the test must not depend on a seed
/// crate's version).
fn shuffled(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..n).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = ((state >> 33) % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    order
}

/// Joint counts of two labellings, with the counts of each label of either (row and column
/// sums).
struct Contingency {
    joint: HashMap<(usize, usize), f64>,
    rows: Vec<f64>,
    cols: Vec<f64>,
}

fn contingency(a: &[usize], b: &[usize]) -> Contingency {
    let mut joint: HashMap<(usize, usize), f64> = HashMap::new();
    let rows = a.iter().max().map_or(0, |m| m + 1);
    let cols = b.iter().max().map_or(0, |m| m + 1);
    let (mut row_sums, mut col_sums) = (vec![0.0; rows], vec![0.0; cols]);
    for (&x, &y) in a.iter().zip(b) {
        *joint.entry((x, y)).or_default() += 1.0;
        row_sums[x] += 1.0;
        col_sums[y] += 1.0;
    }
    Contingency {
        joint,
        rows: row_sums,
        cols: col_sums,
    }
}

/// Hubert and Arabie's adjusted Rand index.
pub fn adjusted_rand_index(a: &[usize], b: &[usize]) -> f64 {
    let pairs = |n: f64| n * (n - 1.0) / 2.0;
    let Contingency { joint, rows, cols } = contingency(a, b);
    let index: f64 = joint.values().map(|&n| pairs(n)).sum();
    let row_pairs: f64 = rows.iter().map(|&n| pairs(n)).sum();
    let col_pairs: f64 = cols.iter().map(|&n| pairs(n)).sum();
    let expected = row_pairs * col_pairs / pairs(a.len() as f64);
    let max = (row_pairs + col_pairs) / 2.0;
    (index - expected) / (max - expected)
}

/// Mutual information over the arithmetic mean of the two entropies (scikit-learn's default).
pub fn normalized_mutual_information(a: &[usize], b: &[usize]) -> f64 {
    let n = a.len() as f64;
    let Contingency { joint, rows, cols } = contingency(a, b);
    let entropy = |sums: &[f64]| -> f64 {
        sums.iter()
            .filter(|&&c| c > 0.0)
            .map(|&c| -(c / n) * (c / n).ln())
            .sum()
    };
    let mutual: f64 = joint
        .iter()
        .map(|(&(x, y), &c)| (c / n) * ((c * n) / (rows[x] * cols[y])).ln())
        .sum();
    let mean = (entropy(&rows) + entropy(&cols)) / 2.0;
    if mean == 0.0 { 1.0 } else { mutual / mean }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scores_match_known_values() {
        // scikit-learn: adjusted_rand_score([0,0,1,1],[0,0,1,2]) = 0.5714…,
        // normalized_mutual_info_score(...) = 0.8.
        let (a, b) = ([0, 0, 1, 1], [0, 0, 1, 2]);
        assert!((adjusted_rand_index(&a, &b) - 0.571_428_6).abs() < 1e-6);
        assert!((normalized_mutual_information(&a, &b) - 0.8).abs() < 1e-6);
        assert!((adjusted_rand_index(&a, &a) - 1.0).abs() < 1e-12);
    }
}
