//! [`Partition`]: the approximate half of the index, an inverted file (IVF) of i8 vectors.
//!
//! The vectors are split into lists by their nearest centroid (spherical k-means, `train.rs`);
//! a query ranks the centroids and scans only the `probes` most similar lists (fewer when the
//! others' centroids are much less similar than the best, see [`PROBE_MARGIN`]), each a
//! contiguous array of i8 codes, so the memory it reads is sequential and a few megabytes at a
//! million vectors. Neighbours in embedding space share a centroid far more often than not,
//! and the lists a query's neighbours sit in are the ones whose centroids are most like it.
//!
//! Until the index holds [`MIN_TRAINING_LEN`] vectors there are no centroids: one list holds
//! everything. Training runs again whenever the index has doubled since the last one (see
//! [`Partition::needs_training`]), so the lists follow the data as it grows, at an amortised
//! cost of about one more full assignment.

use std::collections::HashMap;

use crate::quantised::{dots, quantise, quantise_into, quantise_rows};
use crate::store::VectorStore;

mod train;

/// Below this many vectors the partition is one list (searches that size scan exactly anyway).
pub(crate) const MIN_TRAINING_LEN: usize = 2_048;
/// Most lists an index is split into.
const MAX_LISTS: usize = 16_384;
/// A list is not probed when its centroid's cosine similarity to the query is more than this
/// below the best centroid's, however many probes are allowed: its vectors are far from the
/// query's neighbourhood. On the clustered benchmark set (BENCHMARKS.md) lists beyond 0.05
/// below the best never held a true neighbour; 0.2 keeps a wide margin and still skips the
/// probes a query in a small cluster would waste (p50 0.52 → 0.19 ms at a million vectors,
/// recall unchanged).
const PROBE_MARGIN: f32 = 0.2;

pub(crate) struct Partition {
    dimensions: usize,
    /// Unit centroids, row-major; empty before the first training.
    centroids: Vec<f32>,
    /// The centroids quantised, and the factors that undo it (see `quantised.rs`).
    centroid_codes: Vec<i8>,
    centroid_factors: Vec<f32>,
    /// One list per centroid (one list in all before the first training).
    lists: Vec<List>,
    /// Where each key's code sits.
    slots: HashMap<u64, Slot>,
    /// The number of vectors at the last training (0: never trained).
    trained_len: usize,
}

/// The vectors of one centroid: keys, i8 codes (row-major) and their factors, row for row.
#[derive(Default)]
struct List {
    keys: Vec<u64>,
    codes: Vec<i8>,
    factors: Vec<f32>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    list: u32,
    row: u32,
}

impl Partition {
    /// An untrained partition: one empty list.
    pub(crate) fn new(dimensions: usize) -> Self {
        Self::with_centroids(dimensions, Vec::new(), 0)
    }

    fn with_centroids(dimensions: usize, centroids: Vec<f32>, trained_len: usize) -> Self {
        let (centroid_codes, centroid_factors) = quantise_rows(centroids.chunks_exact(dimensions));
        let num_lists = centroid_factors.len().max(1);
        Self {
            dimensions,
            centroids,
            centroid_codes,
            centroid_factors,
            lists: (0..num_lists).map(|_| List::default()).collect(),
            slots: HashMap::new(),
            trained_len,
        }
    }

    /// A partition of every vector in `store` into lists around freshly trained centroids.
    pub(crate) fn train(store: &VectorStore) -> Self {
        let num_lists = lists_for(store.len());
        let centroids = train::centroids(store, num_lists);
        let mut partition = Self::with_centroids(store.dimensions(), centroids, store.len());
        let assignment = train::assign(
            store,
            &partition.centroid_codes,
            &partition.centroid_factors,
        );
        partition.fill(store, &assignment);
        partition
    }

    /// A partition with the saved `centroids` and the list of each of `store`'s rows. `None`
    /// if a list number is out of range or the lengths disagree.
    pub(crate) fn restore(
        store: &VectorStore,
        centroids: Vec<f32>,
        trained_len: usize,
        assignment: &[u32],
    ) -> Option<Self> {
        let dimensions = store.dimensions();
        if assignment.len() != store.len() || !centroids.len().is_multiple_of(dimensions) {
            return None;
        }
        let mut partition = Self::with_centroids(dimensions, centroids, trained_len);
        let num_lists = partition.lists.len();
        if assignment.iter().any(|list| *list as usize >= num_lists) {
            return None;
        }
        partition.fill(store, assignment);
        Some(partition)
    }

    /// Puts row `r` of `store` into list `assignment[r]`, for every row.
    fn fill(&mut self, store: &VectorStore, assignment: &[u32]) {
        let mut sizes = vec![0usize; self.lists.len()];
        for list in assignment {
            sizes[*list as usize] += 1;
        }
        for (list, size) in self.lists.iter_mut().zip(sizes) {
            list.keys.reserve_exact(size);
            list.codes.reserve_exact(size * self.dimensions);
            list.factors.reserve_exact(size);
        }
        self.slots.reserve(store.len());
        for (row, (&key, &list)) in store.keys().iter().zip(assignment).enumerate() {
            self.push(list, key, store.row(row));
        }
    }

    /// Whether the lists should be trained again for an index of `len` vectors: when it first
    /// reaches [`MIN_TRAINING_LEN`], then each time it has doubled since the last training.
    pub(crate) fn needs_training(&self, len: usize) -> bool {
        len >= MIN_TRAINING_LEN && len >= 2 * self.trained_len
    }

    pub(crate) fn num_lists(&self) -> usize {
        self.lists.len()
    }

    pub(crate) fn trained_len(&self) -> usize {
        self.trained_len
    }

    /// The centroids, row-major (empty before the first training).
    pub(crate) fn centroids(&self) -> &[f32] {
        &self.centroids
    }

    /// The list of each of `keys` (which must all be in the partition), for saving.
    pub(crate) fn lists_of(&self, keys: &[u64]) -> Vec<u32> {
        keys.iter()
            .map(|key| self.slots.get(key).map_or(0, |slot| slot.list))
            .collect()
    }

    /// Adds (or replaces) the unit vector of `key`.
    pub(crate) fn insert(&mut self, key: u64, vector: &[f32]) {
        self.insert_all(&[key], &[vector]);
    }

    /// Adds (or replaces) many unit vectors; the nearest lists are found on all cores.
    pub(crate) fn insert_many(&mut self, items: &[(u64, Vec<f32>)]) {
        let keys: Vec<u64> = items.iter().map(|(key, _)| *key).collect();
        let vectors: Vec<&[f32]> = items.iter().map(|(_, vector)| vector.as_slice()).collect();
        self.insert_all(&keys, &vectors);
    }

    fn insert_all(&mut self, keys: &[u64], vectors: &[&[f32]]) {
        let lists = train::nearest_lists(
            vectors,
            &self.centroid_codes,
            &self.centroid_factors,
            self.dimensions,
        );
        for ((key, vector), list) in keys.iter().zip(vectors).zip(lists) {
            self.remove(*key);
            self.push(list, *key, vector);
        }
    }

    /// Removes `key`; the last row of its list moves into its place.
    pub(crate) fn remove(&mut self, key: u64) -> bool {
        let Some(slot) = self.slots.remove(&key) else {
            return false;
        };
        let d = self.dimensions;
        let list = &mut self.lists[slot.list as usize];
        let row = slot.row as usize;
        let last = list.keys.len() - 1;
        if row != last {
            list.codes.copy_within(last * d..(last + 1) * d, row * d);
            list.keys[row] = list.keys[last];
            list.factors[row] = list.factors[last];
            self.slots.insert(list.keys[row], slot);
        }
        list.keys.pop();
        list.factors.pop();
        list.codes.truncate(last * d);
        true
    }

    fn push(&mut self, list: u32, key: u64, vector: &[f32]) {
        let target = &mut self.lists[list as usize];
        let row = u32::try_from(target.keys.len()).expect("fewer than 2^32 vectors per list");
        target
            .factors
            .push(quantise_into(vector, &mut target.codes));
        target.keys.push(key);
        self.slots.insert(key, Slot { list, row });
    }

    /// Up to `count` keys whose i8 similarity to the unit `query` is highest among the
    /// `probes` lists with the most similar centroids, skipping keys `keep` rejects, in no
    /// particular order. `keep` is asked only about keys good enough to be kept.
    pub(crate) fn candidates(
        &self,
        query: &[f32],
        count: usize,
        probes: usize,
        keep: &(dyn Fn(u64) -> bool + Sync),
    ) -> Vec<u64> {
        if count == 0 {
            return Vec::new();
        }
        let (codes, factor) = quantise(query);
        let mut scores = Vec::new();
        let mut best = Best::new(count);
        for list in self.probed_lists(&codes, factor, probes, &mut scores) {
            let list = &self.lists[list];
            dots(&codes, &list.codes, &mut scores);
            for ((score, factor), key) in scores.iter().zip(&list.factors).zip(&list.keys) {
                best.offer(*score as f32 * factor, *key, keep);
            }
        }
        best.into_keys()
    }

    /// The `probes` lists whose centroids are most similar to `codes` (the query, quantised
    /// with `factor`), most similar first, without those [`PROBE_MARGIN`] below the best.
    fn probed_lists(
        &self,
        codes: &[i8],
        factor: f32,
        probes: usize,
        scores: &mut Vec<i32>,
    ) -> Vec<usize> {
        if self.centroid_factors.is_empty() {
            return vec![0];
        }
        dots(codes, &self.centroid_codes, scores);
        let mut ranked: Vec<(f32, usize)> = scores
            .iter()
            .zip(&self.centroid_factors)
            .enumerate()
            .map(|(list, (score, centroid_factor))| {
                (*score as f32 * factor * centroid_factor, list)
            })
            .collect();
        let by_score = |a: &(f32, usize), b: &(f32, usize)| b.0.total_cmp(&a.0);
        let probes = probes.clamp(1, ranked.len());
        if probes < ranked.len() {
            ranked.select_nth_unstable_by(probes - 1, by_score);
            ranked.truncate(probes);
        }
        ranked.sort_unstable_by(by_score);
        let floor = ranked[0].0 - PROBE_MARGIN;
        ranked
            .into_iter()
            .take_while(|(score, _)| *score >= floor)
            .map(|(_, list)| list)
            .collect()
    }

    /// Bytes held: codes, factors, keys, slots and centroids.
    pub(crate) fn memory_usage(&self) -> usize {
        let lists: usize = self
            .lists
            .iter()
            .map(|list| {
                list.codes.capacity()
                    + list.factors.capacity() * 4
                    + list.keys.capacity() * 8
                    + std::mem::size_of::<List>()
            })
            .sum();
        let slot_entry = std::mem::size_of::<(u64, Slot)>() + 1;
        lists
            + self.slots.capacity() * slot_entry
            + self.centroids.capacity() * 4
            + self.centroid_codes.capacity()
            + self.centroid_factors.capacity() * 4
    }
}

/// The number of lists for `len` vectors: about √len (a thousand lists of a thousand at a
/// million), the usual IVF balance between ranking centroids and scanning lists.
fn lists_for(len: usize) -> usize {
    ((len as f64).sqrt().round() as usize).clamp(1, MAX_LISTS)
}

/// The best `wanted` (score, key) pairs offered so far. Offers below the current `wanted`-th
/// score are turned away with one comparison; the rest pile up to twice `wanted`, then are cut.
struct Best {
    wanted: usize,
    items: Vec<(f32, u64)>,
    floor: f32,
}

impl Best {
    fn new(wanted: usize) -> Self {
        Self {
            wanted,
            items: Vec::with_capacity(2 * wanted),
            floor: f32::NEG_INFINITY,
        }
    }

    #[inline]
    fn offer(&mut self, score: f32, key: u64, keep: &(dyn Fn(u64) -> bool + Sync)) {
        if score <= self.floor || !keep(key) {
            return;
        }
        self.items.push((score, key));
        if self.items.len() >= 2 * self.wanted {
            self.cut();
        }
    }

    fn cut(&mut self) {
        let wanted = self.wanted;
        self.items
            .select_nth_unstable_by(wanted - 1, |a, b| b.0.total_cmp(&a.0));
        self.items.truncate(wanted);
        self.floor = self.items[wanted - 1].0;
    }

    fn into_keys(mut self) -> Vec<u64> {
        if self.items.len() > self.wanted {
            self.cut();
        }
        self.items.into_iter().map(|(_, key)| key).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(values: &[f32]) -> Vec<f32> {
        let norm = values.iter().map(|x| x * x).sum::<f32>().sqrt();
        values.iter().map(|x| x / norm).collect()
    }

    #[test]
    fn best_keeps_the_highest_scores() {
        let mut best = Best::new(3);
        for (score, key) in [(0.1, 1), (0.9, 2), (0.5, 3), (0.7, 4), (0.2, 5), (0.8, 6)] {
            best.offer(score, key, &|key| key != 6);
        }
        let mut keys = best.into_keys();
        keys.sort_unstable();
        assert_eq!(keys, vec![2, 3, 4]);
    }

    #[test]
    fn removing_moves_the_last_row_of_the_list() {
        let mut partition = Partition::new(2);
        partition.insert(1, &unit(&[1.0, 0.0]));
        partition.insert(2, &unit(&[0.0, 1.0]));
        partition.insert(3, &unit(&[1.0, 1.0]));
        assert!(partition.remove(1));
        assert!(!partition.remove(1));
        assert_eq!(partition.lists_of(&[3, 2]), vec![0, 0]);
        let found = partition.candidates(&unit(&[1.0, 0.2]), 1, 1, &|_| true);
        assert_eq!(found, vec![3]);
        // Replacing a key keeps one row for it.
        partition.insert(2, &unit(&[1.0, 0.1]));
        assert_eq!(
            partition
                .candidates(&unit(&[1.0, 0.0]), 5, 1, &|_| true)
                .len(),
            2
        );
    }

    #[test]
    fn restore_refuses_list_numbers_out_of_range() {
        let mut store = VectorStore::new(2);
        store.insert(7, &unit(&[1.0, 0.0]));
        assert!(Partition::restore(&store, Vec::new(), 0, &[0]).is_some());
        assert!(Partition::restore(&store, Vec::new(), 0, &[1]).is_none());
        assert!(Partition::restore(&store, Vec::new(), 0, &[]).is_none());
        assert!(Partition::restore(&store, vec![1.0], 0, &[0]).is_none());
    }

    #[test]
    fn lists_grow_as_the_square_root_of_the_size() {
        assert_eq!(lists_for(0), 1);
        assert_eq!(lists_for(10_000), 100);
        assert_eq!(lists_for(1_000_000), 1_000);
        assert_eq!(lists_for(usize::MAX / 2), MAX_LISTS);
    }
}
