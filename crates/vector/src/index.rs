//! [`VectorIndex`]: usearch's HNSW graph plus exact scans, behind interior locks.
//!
//! Locks, always taken in this order:
//! - `writer`: one mutation (upsert, remove, save) at a time, so replacing a key (remove, then
//!   add) and the key set never interleave with another writer. Searches never take it.
//! - `engine`: an `RwLock` around the usearch index. Adds, removes and searches all run under
//!   the *read* side (usearch synchronises them itself, node by node); the write side is only
//!   for what usearch cannot do concurrently: growing capacity and changing settings.
//! - `keys`: the set of stored keys (usearch cannot list them), for filtered exact scans and
//!   for saving.
//!
//! Every call into usearch holds a permit (`permits.rs`) for one of its thread contexts.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use usearch::{IndexOptions, MetricKind, ScalarKind};

use crate::error::engine_error;
use crate::exact::normalise;
use crate::permits::Permits;
use crate::{IndexSettings, VectorError, file};

mod search;

/// usearch thread contexts (and so concurrent adds/searches); callers beyond this wait.
const THREAD_CONTEXTS: usize = 64;
/// Smallest capacity reserved; capacity then doubles as the index grows.
const MIN_CAPACITY: usize = 1024;
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
/// `Send + Sync`; every method takes `&self`. Vectors are stored as f32 (never quantised) and
/// scaled to unit length on the way in, so inner product is cosine similarity. Replacing a key
/// is not atomic for concurrent searches: one may briefly miss the key being replaced.
pub struct VectorIndex {
    dimensions: usize,
    exact_threshold: AtomicUsize,
    writer: Mutex<()>,
    engine: RwLock<usearch::Index>,
    keys: RwLock<HashSet<u64>>,
    permits: Permits,
}

impl VectorIndex {
    /// An empty index with the default [`IndexSettings`].
    pub fn new(dimensions: usize) -> Result<Self, VectorError> {
        Self::with_settings(dimensions, IndexSettings::default())
    }

    /// An empty index with the given settings.
    pub fn with_settings(dimensions: usize, settings: IndexSettings) -> Result<Self, VectorError> {
        let engine = new_engine(dimensions, &settings)?;
        engine
            .reserve_capacity_and_threads(MIN_CAPACITY, THREAD_CONTEXTS)
            .map_err(engine_error)?;
        Ok(Self::assemble(dimensions, settings, engine, HashSet::new()))
    }

    /// Loads an index saved by [`VectorIndex::save`], with the default settings for searching.
    pub fn load(path: &Path, dimensions: usize) -> Result<Self, VectorError> {
        Self::load_with_settings(path, dimensions, IndexSettings::default())
    }

    /// Loads an index saved by [`VectorIndex::save`]. The graph keeps the connectivity it was
    /// built with; `expansion_add`, `expansion_search` and `exact_threshold` come from
    /// `settings`. A file that is damaged, truncated or of other dimensions is an error.
    pub fn load_with_settings(
        path: &Path,
        dimensions: usize,
        settings: IndexSettings,
    ) -> Result<Self, VectorError> {
        let checked = file::check(path, dimensions)?;
        let engine = new_engine(dimensions, &settings)?;
        engine
            .load(file::utf8(path)?)
            .map_err(|e| VectorError::corrupt(path, e.to_string().to_lowercase()))?;
        if engine.dimensions() != dimensions || engine.size() != checked.keys.len() {
            return Err(VectorError::corrupt(
                path,
                "index contents do not match the stored keys",
            ));
        }
        if engine.scalar_kind() != ScalarKind::F32 || engine.metric_kind() != MetricKind::IP {
            return Err(VectorError::corrupt(
                path,
                "index is not an f32 inner-product index",
            ));
        }
        engine.change_expansion_add(settings.expansion_add);
        engine.change_expansion_search(settings.expansion_search);
        let capacity = (checked.keys.len() * 2).max(MIN_CAPACITY);
        engine
            .reserve_capacity_and_threads(capacity, THREAD_CONTEXTS)
            .map_err(engine_error)?;
        let keys: HashSet<u64> = checked.keys.into_iter().collect();
        if keys.len() != engine.size() {
            return Err(VectorError::corrupt(path, "duplicate keys"));
        }
        Ok(Self::assemble(dimensions, settings, engine, keys))
    }

    fn assemble(
        dimensions: usize,
        settings: IndexSettings,
        engine: usearch::Index,
        keys: HashSet<u64>,
    ) -> Self {
        Self {
            dimensions,
            exact_threshold: AtomicUsize::new(settings.exact_threshold),
            writer: Mutex::new(()),
            engine: RwLock::new(engine),
            keys: RwLock::new(keys),
            permits: Permits::new(THREAD_CONTEXTS),
        }
    }

    /// The length of every vector in this index.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The number of vectors stored.
    pub fn len(&self) -> usize {
        self.engine().size()
    }

    /// Whether no vector is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether `key` has a vector.
    pub fn contains(&self, key: u64) -> bool {
        self.engine().contains(key)
    }

    /// The HNSW search expansion (`ef_search`) in force.
    pub fn expansion_search(&self) -> usize {
        self.engine().expansion_search()
    }

    /// Changes the HNSW search expansion (`ef_search`, at least 1): higher is slower and more
    /// accurate. Waits for running operations.
    pub fn set_expansion_search(&self, expansion: usize) {
        self.engine_mut().change_expansion_search(expansion.max(1));
    }

    /// Changes the size up to which searches are exact scans.
    pub fn set_exact_threshold(&self, threshold: usize) {
        self.exact_threshold.store(threshold, Ordering::Relaxed);
    }

    /// Bytes of memory usearch holds for this index (vectors, graph, contexts).
    pub fn memory_usage(&self) -> usize {
        self.engine().memory_usage()
    }

    /// Stores `vector` under `key`, replacing any vector the key had.
    pub fn upsert(&self, key: u64, vector: &[f32]) -> Result<(), VectorError> {
        let vector = self.prepared(vector)?;
        let _writer = self.writer();
        self.ensure_capacity(1)?;
        let engine = self.engine();
        let _permit = self.permits.acquire();
        if engine.contains(key) {
            engine.remove(key).map_err(engine_error)?;
        }
        engine.add(key, &vector).map_err(engine_error)?;
        drop(engine);
        self.keys_mut().insert(key);
        Ok(())
    }

    /// Stores many vectors at once, on all cores. For a key given twice the last vector wins.
    /// Every vector is checked before any is stored, so a wrong one stores nothing.
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

        let _writer = self.writer();
        self.ensure_capacity(prepared.len())?;
        let engine = self.engine();
        for (key, _) in &prepared {
            if engine.contains(*key) {
                let _permit = self.permits.acquire();
                engine.remove(*key).map_err(engine_error)?;
            }
        }
        let num_threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(THREAD_CONTEXTS);
        let chunk_len = prepared.len().div_ceil(num_threads).max(1);
        let engine_ref = &*engine;
        let added: Vec<Result<(), VectorError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = prepared
                .chunks(chunk_len)
                .map(|chunk| {
                    scope.spawn(move || {
                        for (key, vector) in chunk {
                            let _permit = self.permits.acquire();
                            engine_ref.add(*key, vector).map_err(engine_error)?;
                        }
                        Ok(())
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|worker| {
                    worker.join().unwrap_or_else(|_| {
                        Err(VectorError::Engine("insert thread panicked".into()))
                    })
                })
                .collect()
        });
        drop(engine);
        // Record what was stored even when a worker failed, so the key set stays truthful.
        let engine = self.engine();
        self.keys_mut().extend(
            prepared
                .iter()
                .map(|(key, _)| *key)
                .filter(|key| engine.contains(*key)),
        );
        added.into_iter().collect()
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&self, key: u64) -> Result<bool, VectorError> {
        let _writer = self.writer();
        let engine = self.engine();
        if !engine.contains(key) {
            return Ok(false);
        }
        let _permit = self.permits.acquire();
        engine.remove(key).map_err(engine_error)?;
        drop(engine);
        self.keys_mut().remove(&key);
        Ok(true)
    }

    /// The stored vector of `key` (unit length), if any.
    pub fn vector(&self, key: u64) -> Option<Vec<f32>> {
        let mut buffer = vec![0.0; self.dimensions];
        match self.engine().get(key, &mut buffer) {
            Ok(1..) => Some(buffer),
            _ => None,
        }
    }

    /// Saves the index to `path` atomically (a temporary file beside it, then a rename).
    /// Mutations wait while it runs; searches do not.
    pub fn save(&self, path: &Path) -> Result<(), VectorError> {
        let _writer = self.writer();
        let engine = self.engine();
        let keys: Vec<u64> = self.keys().iter().copied().collect();
        let _permit = self.permits.acquire();
        file::save(&engine, &keys, self.dimensions, path)
    }

    /// Grows capacity (doubling) so that `additional` more vectors fit.
    fn ensure_capacity(&self, additional: usize) -> Result<(), VectorError> {
        let needed = self.engine().size() + additional;
        if needed <= self.engine().capacity() {
            return Ok(());
        }
        let engine = self.engine_mut();
        let capacity = needed.max(engine.capacity() * 2).max(MIN_CAPACITY);
        engine
            .reserve_capacity_and_threads(capacity, THREAD_CONTEXTS)
            .map_err(engine_error)
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

    // Poisoning: every critical section leaves the usearch index and the key set consistent
    // (usearch calls do not panic across the FFI boundary), so a poisoned lock is still usable.
    fn writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn engine(&self) -> RwLockReadGuard<'_, usearch::Index> {
        self.engine.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn engine_mut(&self) -> RwLockWriteGuard<'_, usearch::Index> {
        self.engine.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn keys(&self) -> RwLockReadGuard<'_, HashSet<u64>> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn keys_mut(&self) -> RwLockWriteGuard<'_, HashSet<u64>> {
        self.keys.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("dimensions", &self.dimensions)
            .field("len", &self.len())
            .finish()
    }
}

fn new_engine(dimensions: usize, settings: &IndexSettings) -> Result<usearch::Index, VectorError> {
    settings.check()?;
    if dimensions == 0 {
        return Err(VectorError::InvalidSettings("dimensions must be positive"));
    }
    let options = IndexOptions {
        dimensions,
        // Inner product on unit vectors is cosine, without cosine's per-pair norms.
        metric: MetricKind::IP,
        // Explicit: usearch's default is BF16, which costs recall.
        quantization: ScalarKind::F32,
        connectivity: settings.connectivity,
        expansion_add: settings.expansion_add,
        expansion_search: settings.expansion_search,
        multi: false,
    };
    usearch::Index::new(&options).map_err(engine_error)
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
}
