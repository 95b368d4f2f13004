//! Test data: clustered unit vectors like real embeddings (and like
//! shared/bench/ann_bench.py): gaussian clusters around random unit centres with
//! Zipf-ish cluster sizes, every vector re-normalised. HNSW recall on uniformly random
//! high-dimensional vectors means nothing (there is no neighbourhood to navigate).

#![allow(dead_code)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub struct Clusters {
    centres: Vec<Vec<f32>>,
    sigmas: Vec<f32>,
    cumulative_weights: Vec<f64>,
    rng: StdRng,
    dimensions: usize,
}

impl Clusters {
    pub fn new(seed: u64, dimensions: usize, num_centres: usize) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let centres = (0..num_centres)
            .map(|_| {
                let mut centre: Vec<f32> = (0..dimensions).map(|_| gaussian(&mut rng)).collect();
                normalise(&mut centre);
                centre
            })
            .collect();
        let sigmas = (0..num_centres)
            .map(|_| rng.random_range(0.03..0.06))
            .collect();
        let mut total = 0.0;
        let cumulative_weights = (0..num_centres)
            .map(|rank| {
                total += 1.0 / (rank as f64 + 10.0);
                total
            })
            .collect();
        Self {
            centres,
            sigmas,
            cumulative_weights,
            rng,
            dimensions,
        }
    }

    pub fn draw(&mut self) -> Vec<f32> {
        let total = *self.cumulative_weights.last().expect("at least one centre");
        let pick = self.rng.random_range(0.0..total);
        let cluster = self
            .cumulative_weights
            .partition_point(|w| *w < pick)
            .min(self.centres.len() - 1);
        let sigma = self.sigmas[cluster];
        let mut vector: Vec<f32> = self.centres[cluster]
            .iter()
            .map(|c| c + gaussian(&mut self.rng) * sigma)
            .collect();
        normalise(&mut vector);
        assert_eq!(vector.len(), self.dimensions);
        vector
    }

    pub fn draw_many(&mut self, n: usize) -> Vec<Vec<f32>> {
        (0..n).map(|_| self.draw()).collect()
    }
}

/// A standard normal sample (Box–Muller).
fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

pub fn normalise(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    vector.iter_mut().for_each(|x| *x /= norm);
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The `k` best keys by a plain brute-force scan: the oracle.
pub fn brute_force(
    vectors: &[(u64, Vec<f32>)],
    query: &[f32],
    k: usize,
    keep: impl Fn(u64) -> bool,
) -> Vec<u64> {
    let mut scored: Vec<(f32, u64)> = vectors
        .iter()
        .filter(|(key, _)| keep(*key))
        .map(|(key, v)| (dot(query, v), *key))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.into_iter().take(k).map(|(_, key)| key).collect()
}
