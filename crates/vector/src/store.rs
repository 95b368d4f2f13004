//! [`VectorStore`]: the full-precision (f32) copy of every vector, one flat array.
//!
//! The partition's lists hold i8-quantised vectors, which are good enough to pick candidates
//! but not to rank the last few; the store answers everything that needs exact similarities:
//! re-ranking the lists' candidates, exact scans, filtered and candidate-set searches, and
//! `vector(key)`. It is also the authoritative key set and what the partition is trained on.
//!
//! Rows are dense: removing a key moves the last row into its place, so a scan never skips
//! holes and memory is exactly `len × dimensions × 4` bytes plus the key map.

use std::collections::HashMap;

use crate::Neighbor;
use crate::exact::{dot, top_k};

/// Scored rows kept between two prunings of an exact scan (then cut back to `k`).
const SCAN_BATCH: usize = 4096;

pub(crate) struct VectorStore {
    dimensions: usize,
    /// Row-major: row `r` is `values[r * dimensions..(r + 1) * dimensions]`.
    values: Vec<f32>,
    /// The key of each row.
    keys: Vec<u64>,
    /// The row of each key.
    rows: HashMap<u64, usize>,
}

impl VectorStore {
    pub(crate) fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            values: Vec::new(),
            keys: Vec::new(),
            rows: HashMap::new(),
        }
    }

    /// A store of the rows `values` (row-major, `keys.len()` rows) under `keys`, taken without
    /// copying. `None` if a key repeats or the lengths disagree.
    pub(crate) fn from_rows(dimensions: usize, keys: Vec<u64>, values: Vec<f32>) -> Option<Self> {
        if keys.len().checked_mul(dimensions) != Some(values.len()) {
            return None;
        }
        let mut rows = HashMap::with_capacity(keys.len());
        for (row, key) in keys.iter().enumerate() {
            if rows.insert(*key, row).is_some() {
                return None;
            }
        }
        Some(Self {
            dimensions,
            values,
            keys,
            rows,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn dimensions(&self) -> usize {
        self.dimensions
    }

    pub(crate) fn contains(&self, key: u64) -> bool {
        self.rows.contains_key(&key)
    }

    /// Makes room for `additional` more rows without reallocating.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.values.reserve(additional * self.dimensions);
        self.keys.reserve(additional);
        self.rows.reserve(additional);
    }

    /// Stores `vector` (of the store's dimensions) under `key`, replacing its previous vector.
    pub(crate) fn insert(&mut self, key: u64, vector: &[f32]) {
        debug_assert_eq!(vector.len(), self.dimensions);
        match self.rows.get(&key) {
            Some(&row) => self.row_mut(row).copy_from_slice(vector),
            None => {
                self.rows.insert(key, self.keys.len());
                self.keys.push(key);
                self.values.extend_from_slice(vector);
            }
        }
    }

    /// Removes `key`; returns whether it was there. The last row moves into the freed one.
    pub(crate) fn remove(&mut self, key: u64) -> bool {
        let Some(row) = self.rows.remove(&key) else {
            return false;
        };
        let last = self.keys.len() - 1;
        if row != last {
            let d = self.dimensions;
            self.values.copy_within(last * d..(last + 1) * d, row * d);
            let moved = self.keys[last];
            self.keys[row] = moved;
            self.rows.insert(moved, row);
        }
        self.keys.pop();
        self.values.truncate(last * self.dimensions);
        true
    }

    pub(crate) fn get(&self, key: u64) -> Option<&[f32]> {
        self.rows.get(&key).map(|&row| self.row(row))
    }

    /// Bytes held: the vectors, and three words per row (its key, and the map's key and row).
    pub(crate) fn memory_usage(&self) -> usize {
        std::mem::size_of_val(self.values.as_slice()) + self.len() * 3 * 8
    }

    /// Every key, in row order.
    pub(crate) fn keys(&self) -> &[u64] {
        &self.keys
    }

    /// Every vector, row-major in the order of [`VectorStore::keys`].
    pub(crate) fn values(&self) -> &[f32] {
        &self.values
    }

    /// The similarity of `query` to the vector of each of `keys` that is stored, best `k` first.
    pub(crate) fn rank(&self, query: &[f32], k: usize, keys: &[u64]) -> Vec<Neighbor> {
        let scored = keys
            .iter()
            .filter_map(|&key| {
                self.get(key).map(|vector| Neighbor {
                    key,
                    similarity: dot(query, vector),
                })
            })
            .collect();
        top_k(scored, k)
    }

    /// The exact `k` most similar vectors among the keys `keep` accepts: a scan of every row.
    pub(crate) fn scan(
        &self,
        query: &[f32],
        k: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Vec<Neighbor> {
        if k == 0 {
            return Vec::new();
        }
        let mut scored = Vec::with_capacity(SCAN_BATCH + k);
        for (row, &key) in self.keys.iter().enumerate() {
            if !keep(key) {
                continue;
            }
            scored.push(Neighbor {
                key,
                similarity: dot(query, self.row(row)),
            });
            if scored.len() >= SCAN_BATCH + k {
                scored = top_k(scored, k);
            }
        }
        top_k(scored, k)
    }

    /// The vector of row `row` (`row < len`).
    pub(crate) fn row(&self, row: usize) -> &[f32] {
        &self.values[row * self.dimensions..(row + 1) * self.dimensions]
    }

    fn row_mut(&mut self, row: usize) -> &mut [f32] {
        &mut self.values[row * self.dimensions..(row + 1) * self.dimensions]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_of(rows: &[(u64, [f32; 2])]) -> VectorStore {
        let mut store = VectorStore::new(2);
        for (key, vector) in rows {
            store.insert(*key, vector);
        }
        store
    }

    #[test]
    fn remove_moves_the_last_row_into_the_hole() {
        let mut store = store_of(&[(10, [1.0, 0.0]), (20, [0.0, 1.0]), (30, [0.6, 0.8])]);
        assert!(store.remove(10));
        assert!(!store.remove(10));
        assert_eq!(store.len(), 2);
        assert_eq!(store.keys(), &[30, 20]);
        assert_eq!(store.get(30), Some(&[0.6, 0.8][..]));
        assert_eq!(store.get(20), Some(&[0.0, 1.0][..]));
        assert_eq!(store.values().len(), 4);
        assert!(store.remove(20) && store.remove(30));
        assert_eq!(store.len(), 0);
        assert!(store.values().is_empty());
    }

    #[test]
    fn from_rows_takes_the_rows_and_refuses_duplicates() {
        let store = VectorStore::from_rows(2, vec![4, 9], vec![1.0, 0.0, 0.0, 1.0]).unwrap();
        assert_eq!(store.get(9), Some(&[0.0, 1.0][..]));
        assert_eq!(store.keys(), &[4, 9]);
        assert!(VectorStore::from_rows(2, vec![4, 4], vec![1.0, 0.0, 0.0, 1.0]).is_none());
        assert!(VectorStore::from_rows(2, vec![4], vec![1.0, 0.0, 0.0, 1.0]).is_none());
    }

    #[test]
    fn insert_replaces_in_place() {
        let mut store = store_of(&[(1, [1.0, 0.0]), (2, [0.0, 1.0])]);
        store.insert(1, &[0.0, -1.0]);
        assert_eq!(store.len(), 2);
        assert_eq!(store.get(1), Some(&[0.0, -1.0][..]));
    }

    /// Re-ranking must order candidates by their exact f32 similarity, whatever order the
    /// graph gave them in, and skip candidates that have since been removed.
    #[test]
    fn rank_orders_candidates_by_exact_similarity() {
        let store = store_of(&[(1, [1.0, 0.0]), (2, [0.6, 0.8]), (3, [0.0, 1.0])]);
        let query = [0.8, 0.6];
        let ranked = store.rank(&query, 2, &[3, 99, 1, 2]);
        let keys: Vec<u64> = ranked.iter().map(|n| n.key).collect();
        assert_eq!(keys, vec![2, 1]);
        assert!((ranked[0].similarity - 0.96).abs() < 1e-6);
        assert!((ranked[1].similarity - 0.8).abs() < 1e-6);
    }

    #[test]
    fn scan_is_exact_and_filtered_across_prunings() {
        let mut store = VectorStore::new(2);
        let n = 3 * SCAN_BATCH as u64;
        for key in 0..n {
            let angle = key as f32 / n as f32 * std::f32::consts::PI;
            store.insert(key, &[angle.cos(), angle.sin()]);
        }
        let best = store.scan(&[1.0, 0.0], 3, |_| true);
        assert_eq!(
            best.iter().map(|n| n.key).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        let odd = store.scan(&[1.0, 0.0], 2, |key| key % 2 == 1);
        assert_eq!(odd.iter().map(|n| n.key).collect::<Vec<_>>(), vec![1, 3]);
        assert!(store.scan(&[1.0, 0.0], 0, |_| true).is_empty());
    }
}
