//! [`VectorIndex`]: an inverted file of i8-quantised vectors (`partition.rs`), re-ranked with
//! the f32 vectors of a [`VectorStore`], plus exact scans, behind interior locks.
//!
//! Why two copies: an approximate search scores a few thousand vectors per query, almost all
//! of them to be dropped, so it runs on i8 codes (a quarter of the memory traffic of f32); the
//! quantisation error only reorders near ties, so the lists yield `k × rerank_factor`
//! candidates and their exact f32 similarities pick the best `k`. Exact scans, filters and
//! candidate sets use the f32 store directly.
//!
//! Locks, always taken in this order:
//! - `writer`: one mutation (upsert, remove, save, training) at a time. Searches never take it.
//! - `partition`: the lists. Searches read it; a mutation writes it for the few microseconds
//!   of a push or a removal. Training builds a new partition beside the old one (searches go
//!   on) and swaps it in.
//! - `store`: the f32 vectors, the set of stored keys. A key is removed from the store after
//!   the partition, so a search may see a candidate that the store lacks (it is skipped); a
//!   search beside an insert may miss the key being inserted.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::exact::normalise;
use crate::partition::Partition;
use crate::store::VectorStore;
use crate::{IndexSettings, VectorError, file, quantised};

mod search;

/// Keys sampled to estimate how selective a filter is.
const FILTER_SAMPLE: usize = 1024;

/// One search result: a key and its cosine similarity to the query (1 = same direction).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbor {
    pub key: u64,
    pub similarity: f32,
}

/// An in-memory nearest-neighbour index over unit vectors of fixed dimensions, keyed by `u64`.
///
/// `Send + Sync`; every method takes `&self`. Vectors are scaled to unit length on the way in,
/// so inner product is cosine similarity, and kept twice: in f32 (what searches return
/// similarities from) and i8 (what the lists are scanned in). Replacing a key is not atomic for
/// concurrent searches: one may briefly miss the key being replaced.
pub struct VectorIndex {
    dimensions: usize,
    exact_threshold: AtomicUsize,
    probes: AtomicUsize,
    rerank_factor: AtomicUsize,
    writer: Mutex<()>,
    partition: RwLock<Partition>,
    store: RwLock<VectorStore>,
}

impl VectorIndex {
    /// An empty index with the default [`IndexSettings`].
    pub fn new(dimensions: usize) -> Result<Self, VectorError> {
        Self::with_settings(dimensions, IndexSettings::default())
    }

    /// An empty index with the given settings.
    pub fn with_settings(dimensions: usize, settings: IndexSettings) -> Result<Self, VectorError> {
        check(dimensions, &settings)?;
        Ok(Self::assemble(
            settings,
            Partition::new(dimensions),
            VectorStore::new(dimensions),
        ))
    }

    /// Loads an index saved by [`VectorIndex::save`], with the default settings for searching.
    pub fn load(path: &Path, dimensions: usize) -> Result<Self, VectorError> {
        Self::load_with_settings(path, dimensions, IndexSettings::default())
    }

    /// Loads an index saved by [`VectorIndex::save`]: the vectors, the centroids and each
    /// vector's list, so nothing is trained again. A file that is damaged, truncated, of other
    /// dimensions or of an older format (1 and 2 held HNSW graphs) is an error.
    pub fn load_with_settings(
        path: &Path,
        dimensions: usize,
        settings: IndexSettings,
    ) -> Result<Self, VectorError> {
        check(dimensions, &settings)?;
        let saved = file::load(path, dimensions)?;
        let store = VectorStore::from_rows(dimensions, saved.keys, saved.vectors)
            .ok_or_else(|| VectorError::corrupt(path, "duplicate keys"))?;
        let partition =
            Partition::restore(&store, saved.centroids, saved.trained_len, &saved.lists)
                .ok_or_else(|| VectorError::corrupt(path, "list numbers out of range"))?;
        Ok(Self::assemble(settings, partition, store))
    }

    fn assemble(settings: IndexSettings, partition: Partition, store: VectorStore) -> Self {
        Self {
            dimensions: store.dimensions(),
            exact_threshold: AtomicUsize::new(settings.exact_threshold),
            probes: AtomicUsize::new(settings.probes),
            rerank_factor: AtomicUsize::new(settings.rerank_factor),
            writer: Mutex::new(()),
            partition: RwLock::new(partition),
            store: RwLock::new(store),
        }
    }

    /// The length of every vector in this index.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The number of vectors stored.
    pub fn len(&self) -> usize {
        self.store().len()
    }

    /// Whether no vector is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` has a vector.
    pub fn contains(&self, key: u64) -> bool {
        self.store().contains(key)
    }

    /// How many lists an approximate search scans.
    pub fn probes(&self) -> usize {
        self.probes.load(Ordering::Relaxed)
    }

    /// Changes how many lists an approximate search scans (at least 1): more is slower and
    /// finds more of the true neighbours.
    pub fn set_probes(&self, probes: usize) {
        self.probes.store(probes.max(1), Ordering::Relaxed);
    }

    /// How many lists the vectors are split into now (1 until the first training).
    pub fn num_lists(&self) -> usize {
        self.partition().num_lists()
    }

    /// Changes how many candidates per wanted result are re-ranked in f32 (at least 1).
    pub fn set_rerank_factor(&self, factor: usize) {
        self.rerank_factor.store(factor.max(1), Ordering::Relaxed);
    }

    /// The instruction set the i8 list scans run on here ("avx2" or "baseline").
    pub fn hardware_acceleration(&self) -> String {
        quantised::acceleration().to_string()
    }

    /// Changes the size up to which searches are exact scans.
    pub fn set_exact_threshold(&self, threshold: usize) {
        self.exact_threshold.store(threshold, Ordering::Relaxed);
    }

    /// Bytes of memory this index holds: the lists (i8 codes, keys, factors), the centroids
    /// and the f32 vectors with their keys.
    pub fn memory_usage(&self) -> usize {
        self.partition().memory_usage() + self.store().memory_usage()
    }

    /// Stores `vector` under `key`, replacing any vector the key had.
    pub fn upsert(&self, key: u64, vector: &[f32]) -> Result<(), VectorError> {
        let vector = self.prepared(vector)?;
        let _writer = self.writer();
        self.partition_mut().insert(key, &vector);
        self.store_mut().insert(key, &vector);
        self.train_if_due();
        Ok(())
    }

    /// Stores many vectors at once. For a key given twice the last vector wins. Every vector is
    /// checked before any is stored, so a wrong one stores nothing.
    pub fn upsert_many(&self, items: &[(u64, Vec<f32>)]) -> Result<(), VectorError> {
        let mut last_by_key: HashMap<u64, usize> = HashMap::with_capacity(items.len());
        for (position, (key, vector)) in items.iter().enumerate() {
            self.check_dimensions(vector)?;
            last_by_key.insert(*key, position);
        }
        let mut prepared: Vec<(u64, Vec<f32>)> = Vec::with_capacity(last_by_key.len());
        for (key, position) in last_by_key {
            prepared.push((key, self.prepared(&items[position].1)?));
        }
        prepared.sort_unstable_by_key(|(key, _)| *key);

        let _writer = self.writer();
        let mut store = self.store_mut();
        store.reserve(prepared.len());
        for (key, vector) in &prepared {
            store.insert(*key, vector);
        }
        drop(store);
        // A due training assigns the new vectors with all the others.
        if !self.train_if_due() {
            self.partition_mut().insert_many(&prepared);
        }
        Ok(())
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&self, key: u64) -> Result<bool, VectorError> {
        let _writer = self.writer();
        if !self.partition_mut().remove(key) {
            return Ok(false);
        }
        self.store_mut().remove(key);
        Ok(true)
    }

    /// The stored vector of `key` (unit length), if any.
    pub fn vector(&self, key: u64) -> Option<Vec<f32>> {
        self.store().get(key).map(<[f32]>::to_vec)
    }

    /// Saves the index to `path` atomically (a temporary file beside it, then a rename).
    /// Mutations wait while it runs; searches do not.
    pub fn save(&self, path: &Path) -> Result<(), VectorError> {
        let _writer = self.writer();
        let partition = self.partition();
        let store = self.store();
        let saved = file::Saved {
            keys: store.keys(),
            vectors: store.values(),
            centroids: partition.centroids(),
            trained_len: partition.trained_len(),
            lists: &partition.lists_of(store.keys()),
        };
        file::save(&saved, self.dimensions, path)
    }

    /// Trains the partition again when the index has grown enough since the last training
    /// (see [`Partition::needs_training`]). Called with the writer lock held: the store cannot
    /// change meanwhile, and searches go on with the old partition until the swap. Returns
    /// whether it trained (and so assigned every stored vector).
    fn train_if_due(&self) -> bool {
        let store = self.store();
        if !self.partition().needs_training(store.len()) {
            return false;
        }
        let trained = Partition::train(&store);
        drop(store);
        *self.partition_mut() = trained;
        true
    }

    fn check_dimensions(&self, vector: &[f32]) -> Result<(), VectorError> {
        if vector.len() != self.dimensions {
            return Err(VectorError::WrongDimensions {
                expected: self.dimensions,
                actual: vector.len(),
            });
        }
        Ok(())
    }

    /// A unit-length copy of `vector`, after checking its length and values.
    fn prepared(&self, vector: &[f32]) -> Result<Vec<f32>, VectorError> {
        self.check_dimensions(vector)?;
        let mut copy = vector.to_vec();
        if !normalise(&mut copy) {
            return Err(VectorError::InvalidVector);
        }
        Ok(copy)
    }

    // Poisoning: every critical section leaves the partition and the store consistent, so a
    // poisoned lock is still usable.
    fn writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn partition(&self) -> RwLockReadGuard<'_, Partition> {
        self.partition
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn partition_mut(&self) -> RwLockWriteGuard<'_, Partition> {
        self.partition
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn store(&self) -> RwLockReadGuard<'_, VectorStore> {
        self.store.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn store_mut(&self) -> RwLockWriteGuard<'_, VectorStore> {
        self.store.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("dimensions", &self.dimensions)
            .field("len", &self.len())
            .field("lists", &self.num_lists())
            .finish()
    }
}

fn check(dimensions: usize, settings: &IndexSettings) -> Result<(), VectorError> {
    settings.check()?;
    if dimensions == 0 {
        return Err(VectorError::InvalidSettings("dimensions must be positive"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn index_is_send_and_sync() {
        assert_send_sync::<VectorIndex>();
    }

    #[test]
    fn wrong_dimensions_and_degenerate_vectors_are_refused() {
        let index = VectorIndex::new(3).unwrap();
        assert!(matches!(
            index.upsert(1, &[1.0, 0.0]),
            Err(VectorError::WrongDimensions {
                expected: 3,
                actual: 2
            })
        ));
        assert!(matches!(
            index.upsert(1, &[0.0, 0.0, 0.0]),
            Err(VectorError::InvalidVector)
        ));
        assert!(matches!(
            index.search(&[1.0], 1),
            Err(VectorError::WrongDimensions { .. })
        ));
        assert!(index.is_empty());
    }

    #[test]
    fn vectors_are_stored_at_unit_length() {
        let index = VectorIndex::new(2).unwrap();
        index.upsert(7, &[3.0, 4.0]).unwrap();
        let stored = index.vector(7).unwrap();
        assert!((stored[0] - 0.6).abs() < 1e-6 && (stored[1] - 0.8).abs() < 1e-6);
        let best = index.search(&[3.0, 4.0], 1).unwrap();
        assert_eq!(best[0].key, 7);
        assert!((best[0].similarity - 1.0).abs() < 1e-5);
        assert_eq!(index.vector(8), None);
    }

    #[test]
    fn zero_dimensions_are_refused() {
        assert!(matches!(
            VectorIndex::new(0),
            Err(VectorError::InvalidSettings(_))
        ));
    }

    #[test]
    fn zero_rerank_factor_is_refused() {
        let settings = IndexSettings {
            rerank_factor: 0,
            ..IndexSettings::default()
        };
        assert!(matches!(
            VectorIndex::with_settings(4, settings),
            Err(VectorError::InvalidSettings(_))
        ));
    }
}
