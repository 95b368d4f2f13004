//! Near-duplicate removal: an item whose input is at least `threshold` similar (cosine) to an
//! earlier kept item's is removed. Kept items go into a [`VectorIndex`] and each page of new
//! items asks it first (its nearest lists above its exact threshold, so the cost per item grows
//! with the square root of the set, not with its size); items within one page are compared with each other
//! exactly. Earlier items win, so adding items never removes one that was kept before.

use feedloop_vector::{IndexSettings, VectorIndex};

use crate::DatasetError;

/// Kept inputs, searched for each new one.
pub struct NearDuplicates {
    threshold: f32,
    index: VectorIndex,
}

/// What became of one item.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    Kept,
    /// A near-duplicate of the kept item with this key, at this similarity.
    DuplicateOf(u64, f32),
}

impl NearDuplicates {
    pub fn new(dimensions: usize, threshold: f32) -> Result<Self, DatasetError> {
        // A duplicate is near by definition: it sits in one of the query's nearest lists.
        let settings = IndexSettings {
            probes: 4,
            exact_threshold: 2_000,
            ..IndexSettings::default()
        };
        Ok(Self {
            threshold,
            index: VectorIndex::with_settings(dimensions, settings)?,
        })
    }

    /// Judges a page of items in order (key, unit vector) and keeps the survivors.
    pub fn judge(&self, page: &[(u64, Vec<f32>)]) -> Result<Vec<Verdict>, DatasetError> {
        let mut verdicts = Vec::with_capacity(page.len());
        let mut kept: Vec<(u64, &[f32])> = Vec::new();
        for (key, vector) in page {
            let earlier = self
                .index
                .search(vector, 1)?
                .into_iter()
                .next()
                .filter(|n| n.similarity >= self.threshold)
                .map(|n| (n.key, n.similarity));
            let in_page = || {
                kept.iter()
                    .map(|(other, v)| (*other, dot(vector, v)))
                    .filter(|(_, similarity)| *similarity >= self.threshold)
                    .max_by(|a, b| a.1.total_cmp(&b.1))
            };
            match earlier.or_else(in_page) {
                Some((other, similarity)) => verdicts.push(Verdict::DuplicateOf(other, similarity)),
                None => {
                    kept.push((*key, vector));
                    verdicts.push(Verdict::Kept);
                }
            }
        }
        let survivors: Vec<(u64, Vec<f32>)> =
            kept.into_iter().map(|(key, v)| (key, v.to_vec())).collect();
        if !survivors.is_empty() {
            self.index.upsert_many(&survivors)?;
        }
        Ok(verdicts)
    }
}

/// Scales `vector` to unit length (a zero vector stays zero).
pub fn normalised(mut vector: Vec<f32>) -> Vec<f32> {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earlier_items_win_within_and_across_pages() {
        let dedup = NearDuplicates::new(3, 0.95).unwrap();
        let a = normalised(vec![1.0, 0.0, 0.0]);
        let a_again = normalised(vec![1.0, 0.05, 0.0]);
        let b = normalised(vec![0.0, 1.0, 0.0]);
        let verdicts = dedup
            .judge(&[(1, a.clone()), (2, b.clone()), (3, a_again.clone())])
            .unwrap();
        assert_eq!(verdicts[0], Verdict::Kept);
        assert_eq!(verdicts[1], Verdict::Kept);
        assert!(matches!(verdicts[2], Verdict::DuplicateOf(1, s) if s > 0.99));
        let next = dedup
            .judge(&[(4, a_again), (5, normalised(vec![0.0, 0.0, 1.0]))])
            .unwrap();
        assert!(matches!(next[0], Verdict::DuplicateOf(1, _)));
        assert_eq!(next[1], Verdict::Kept);
    }
}
