//! Training the partition: spherical k-means on a sample of the stored vectors, and assigning
//! vectors to their nearest centroid, on all cores.
//!
//! Assignments compare i8 codes (`quantised.rs`): the nearest of a thousand centroids costs
//! ~17 µs per vector on one AVX2 core; the centroid updates average the f32 vectors. A million
//! vectors train in about ten seconds on two cores.

use std::ops::Range;

use crate::exact::normalise;
use crate::quantised::{dots, quantise, quantise_rows};
use crate::store::VectorStore;

/// Sampled vectors per centroid (k-means on a sample; more changes the lists little).
const SAMPLE_PER_LIST: usize = 64;
/// k-means rounds over the sample.
const ROUNDS: usize = 10;

/// `num_lists` unit centroids for the vectors of `store` (at most one per stored vector).
pub(super) fn centroids(store: &VectorStore, num_lists: usize) -> Vec<f32> {
    let d = store.dimensions();
    let len = store.len();
    let num_lists = num_lists.min(len);
    if num_lists == 0 {
        return Vec::new();
    }
    // Rows spread evenly over the store: it is in insertion order, and the data may drift.
    let sample_len = (num_lists * SAMPLE_PER_LIST).min(len);
    let sample_rows: Vec<usize> = (0..sample_len).map(|i| i * len / sample_len).collect();
    let (sample_codes, sample_factors) =
        quantise_rows(sample_rows.iter().map(|&row| store.row(row)));
    let mut centroids: Vec<f32> = (0..num_lists)
        .flat_map(|i| {
            store
                .row(sample_rows[i * sample_len / num_lists])
                .iter()
                .copied()
        })
        .collect();

    for _ in 0..ROUNDS {
        let (centroid_codes, centroid_factors) = quantise_rows(centroids.chunks_exact(d));
        let nearest: Vec<(u32, f32)> = in_parallel(sample_len, |range| {
            let mut scores = Vec::new();
            range
                .map(|i| {
                    let codes = &sample_codes[i * d..(i + 1) * d];
                    let (list, score) =
                        nearest(codes, &centroid_codes, &centroid_factors, &mut scores);
                    (list, score * sample_factors[i])
                })
                .collect()
        });
        let mut sums = vec![0.0f32; num_lists * d];
        let mut counts = vec![0usize; num_lists];
        for (&row, &(list, _)) in sample_rows.iter().zip(&nearest) {
            let list = list as usize;
            counts[list] += 1;
            for (sum, x) in sums[list * d..(list + 1) * d]
                .iter_mut()
                .zip(store.row(row))
            {
                *sum += x;
            }
        }
        // An empty list restarts at one of the sampled vectors worst served by its centroid.
        let mut worst: Vec<usize> = (0..sample_len).collect();
        worst.sort_unstable_by(|a, b| nearest[*a].1.total_cmp(&nearest[*b].1));
        let mut worst = worst.into_iter();
        for (list, count) in counts.iter().enumerate() {
            let centroid = &mut centroids[list * d..(list + 1) * d];
            let sum = &mut sums[list * d..(list + 1) * d];
            if *count > 0 && normalise(sum) {
                centroid.copy_from_slice(sum);
            } else if let Some(i) = worst.next() {
                centroid.copy_from_slice(store.row(sample_rows[i]));
            }
        }
    }
    centroids
}

/// The nearest centroid's list for every row of `store`.
pub(super) fn assign(store: &VectorStore, centroid_codes: &[i8], factors: &[f32]) -> Vec<u32> {
    let rows: Vec<&[f32]> = (0..store.len()).map(|row| store.row(row)).collect();
    nearest_lists(&rows, centroid_codes, factors, store.dimensions())
}

/// The nearest centroid's list for each of `vectors` (list 0 when there are no centroids).
pub(super) fn nearest_lists(
    vectors: &[&[f32]],
    centroid_codes: &[i8],
    factors: &[f32],
    dimensions: usize,
) -> Vec<u32> {
    if factors.is_empty() {
        return vec![0; vectors.len()];
    }
    debug_assert_eq!(centroid_codes.len(), factors.len() * dimensions);
    in_parallel(vectors.len(), |range| {
        let mut scores = Vec::new();
        range
            .map(|i| {
                nearest(
                    &quantise(vectors[i]).0,
                    centroid_codes,
                    factors,
                    &mut scores,
                )
                .0
            })
            .collect()
    })
}

/// The list of the centroid most similar to `codes`, and that similarity divided by the
/// factor of `codes` (which is the same for every centroid, so it does not change the pick).
fn nearest(
    codes: &[i8],
    centroid_codes: &[i8],
    factors: &[f32],
    scores: &mut Vec<i32>,
) -> (u32, f32) {
    dots(codes, centroid_codes, scores);
    let mut best = (0u32, f32::NEG_INFINITY);
    for (list, (score, factor)) in scores.iter().zip(factors).enumerate() {
        let similarity = *score as f32 * factor;
        if similarity > best.1 {
            best = (list as u32, similarity);
        }
    }
    best
}

/// `work` over `0..len`, split into one contiguous range per core; results in order.
fn in_parallel<T: Send>(len: usize, work: impl Fn(Range<usize>) -> Vec<T> + Sync) -> Vec<T> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads == 1 || len < 1_024 {
        return work(0..len);
    }
    let chunk = len.div_ceil(threads);
    let work = &work;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..len)
            .step_by(chunk)
            .map(|start| scope.spawn(move || work(start..(start + chunk).min(len))))
            .collect();
        workers
            .into_iter()
            .flat_map(|worker| worker.join().expect("assignment threads do not panic"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two tight groups around the axes: two centroids must land one on each, and every
    /// vector must be assigned to its own group's list.
    #[test]
    fn k_means_separates_obvious_groups() {
        let mut store = VectorStore::new(3);
        for i in 0..200u64 {
            let jitter = (i % 10) as f32 * 0.01;
            let vector = if i % 2 == 0 {
                [1.0, jitter, 0.0]
            } else {
                [0.0, jitter, 1.0]
            };
            let mut vector = vector.to_vec();
            normalise(&mut vector);
            store.insert(i, &vector);
        }
        let centroids = centroids(&store, 2);
        assert_eq!(centroids.len(), 6);
        let (codes, factors) = quantise_rows(centroids.chunks(3));
        let lists = assign(&store, &codes, &factors);
        let even = lists[0];
        for (row, key) in store.keys().iter().enumerate() {
            assert_eq!(lists[row] == even, key % 2 == 0, "key {key}");
        }
    }

    #[test]
    fn no_centroids_means_list_zero() {
        assert_eq!(nearest_lists(&[&[1.0, 0.0]], &[], &[], 2), vec![0]);
    }
}
