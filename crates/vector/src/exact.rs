//! Exact (brute-force) top-k helpers: the dot product and the selection of the best `k`.

use crate::Neighbor;

/// Dot product of two equally long f32 slices: numkong's SIMD kernel (runtime-dispatched),
/// with a plain loop as the fallback it never needs for equal lengths.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    match <f32 as numkong::Dot>::dot(a, b) {
        Some(value) => value as f32,
        None => a.iter().zip(b).map(|(x, y)| x * y).sum(),
    }
}

/// Keeps the `k` best of `scored` (highest similarity first; ties by key, so results are
/// deterministic).
pub(crate) fn top_k(mut scored: Vec<Neighbor>, k: usize) -> Vec<Neighbor> {
    let by_rank = |a: &Neighbor, b: &Neighbor| {
        b.similarity
            .total_cmp(&a.similarity)
            .then(a.key.cmp(&b.key))
    };
    if scored.len() > k {
        if k == 0 {
            return Vec::new();
        }
        scored.select_nth_unstable_by(k - 1, by_rank);
        scored.truncate(k);
    }
    scored.sort_unstable_by(by_rank);
    scored
}

/// Scales `vector` to unit length in place unless it already is (within float noise).
/// Returns `false` for a vector that has no direction (zero) or a non-finite component.
pub(crate) fn normalise(vector: &mut [f32]) -> bool {
    let norm_sq: f32 = dot(vector, vector);
    if !norm_sq.is_finite() || norm_sq <= f32::MIN_POSITIVE {
        return false;
    }
    if (norm_sq - 1.0).abs() > 1e-4 {
        let scale = 1.0 / norm_sq.sqrt();
        vector.iter_mut().for_each(|x| *x *= scale);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neighbor(key: u64, similarity: f32) -> Neighbor {
        Neighbor { key, similarity }
    }

    #[test]
    fn dot_matches_a_plain_loop() {
        let a: Vec<f32> = (0..384).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..384).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }

    #[test]
    fn top_k_orders_best_first_and_breaks_ties_by_key() {
        let scored = vec![
            neighbor(5, 0.1),
            neighbor(3, 0.9),
            neighbor(4, 0.5),
            neighbor(1, 0.5),
        ];
        let best = top_k(scored, 3);
        let keys: Vec<u64> = best.iter().map(|n| n.key).collect();
        assert_eq!(keys, vec![3, 1, 4]);
        assert!(top_k(vec![neighbor(1, 0.1)], 0).is_empty());
        assert_eq!(top_k(vec![neighbor(1, 0.1)], 10).len(), 1);
    }

    #[test]
    fn normalise_scales_and_rejects_degenerate_vectors() {
        let mut v = vec![3.0, 4.0];
        assert!(normalise(&mut v));
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
        assert!(!normalise(&mut [0.0, 0.0]));
        assert!(!normalise(&mut [f32::NAN, 1.0]));
        assert!(!normalise(&mut [f32::INFINITY, 1.0]));
    }
}
