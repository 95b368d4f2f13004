//! [`VectorIndex`]: usearch's HNSW graph over i8-quantised vectors, re-ranked with the f32
//! vectors of a [`VectorStore`], plus exact scans, behind interior locks.
//!
//! Why two copies: a graph walk computes a few thousand similarities per query, almost all of
//! them to vectors that are then dropped, so it runs on i8 vectors (a quarter of the memory
//! traffic of f32, and VNNI dot products); the quantisation error only reorders near ties, so
//! the walk returns `k × rerank_factor` candidates and their exact f32 similarities pick the
//! best `k`. Exact scans, filters and candidate sets use the f32 store directly.
//!
//! Locks, always taken in this order:
//! - `writer`: one mutation (upsert, remove, save) at a time, so replacing a key (remove, then
//!   add) and the store never interleave with another writer. Searches never take it.
//! - `engine`: an `RwLock` around the usearch index. Adds, removes and searches all run under
//!   the *read* side (usearch synchronises them itself, node by node); the write side is only
//!   for what usearch cannot do concurrently: growing capacity and changing settings.
//! - `store`: the f32 vectors and the set of stored keys (usearch cannot list them). A key is
//!   added to the graph before the store and removed from the store after the graph, so a
//!   search may see a graph candidate that the store lacks (it is skipped), never the reverse
//!   for long.
//!
//! Every call into usearch holds a permit (`permits.rs`) for one of its thread contexts.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use usearch::{IndexOptions, MetricKind, ScalarKind};

use crate::error::engine_error;
use crate::exact::normalise;
use crate::permits::Permits;
use crate::store::{VectorStore, quantise};
use crate::{IndexSettings, VectorError, file};

mod search;

/// usearch thread contexts (and so concurrent adds/searches); callers beyond this wait.
const THREAD_CONTEXTS: usize = 64;
/// Smallest capacity reserved; capacity then doubles as the index grows.
const MIN_CAPACITY: usize = 1024;
/// Keys sampled to estimate how selective a filter is.
const FILTER_SAMPLE: usize = 1024;
/// Index size from which searches use the full `expansion_search`.
const FULL_EXPANSION_SIZE: usize = 1_000_000;
/// Below [`FULL_EXPANSION_SIZE`], `ef_search` shrinks as `(len / FULL_EXPANSION_SIZE)^this`.
/// On the clustered benchmark set recall@10 ≈ 0.95 took ef 128 at 1M and 24–32 at 100k (an
/// exponent of ~0.65), but denser clusters need more: 0.6 gave recall 0.94 on the 50k test
/// set (ef 27). 0.4 (a tenth of the vectors: 40 % of the ef) keeps a margin.
const EXPANSION_SIZE_EXPONENT: f64 = 0.4;

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
/// similarities from) and i8 (what the HNSW graph walks). Replacing a key is not atomic for
/// concurrent searches: one may briefly miss the key being replaced.
pub struct VectorIndex {
    dimensions: usize,
    exact_threshold: AtomicUsize,
    expansion_search: AtomicUsize,
    rerank_factor: AtomicUsize,
    writer: Mutex<()>,
    engine: RwLock<usearch::Index>,
    store: RwLock<VectorStore>,
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
        Ok(Self::assemble(
            dimensions,
            settings,
            engine,
            VectorStore::new(dimensions),
        ))
    }

    /// Loads an index saved by [`VectorIndex::save`], with the default settings for searching.
    pub fn load(path: &Path, dimensions: usize) -> Result<Self, VectorError> {
        Self::load_with_settings(path, dimensions, IndexSettings::default())
    }

    /// Loads an index saved by [`VectorIndex::save`]. The graph keeps the connectivity it was
    /// built with; the other settings come from `settings`. A file that is damaged, truncated,
    /// of other dimensions or of an older format (version 1: an f32 graph) is an error.
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
        if engine.scalar_kind() != ScalarKind::I8 || engine.metric_kind() != MetricKind::Cos {
            return Err(VectorError::corrupt(
                path,
                "index is not an i8 cosine index",
            ));
        }
        engine.change_expansion_add(settings.expansion_add);
        // Searches pass their ef as the result count (see `new_engine`).
        engine.change_expansion_search(1);
        let capacity = (checked.keys.len() * 2).max(MIN_CAPACITY);
        engine
            .reserve_capacity_and_threads(capacity, THREAD_CONTEXTS)
            .map_err(engine_error)?;
        if let Some(missing) = checked.keys.iter().find(|key| !engine.contains(**key)) {
            return Err(VectorError::corrupt(
                path,
                format!("key {missing} is not in the graph"),
            ));
        }
        let store = VectorStore::from_rows(dimensions, checked.keys, checked.vectors)
            .ok_or_else(|| VectorError::corrupt(path, "duplicate keys"))?;
        Ok(Self::assemble(dimensions, settings, engine, store))
    }

    fn assemble(
        dimensions: usize,
        settings: IndexSettings,
        engine: usearch::Index,
        store: VectorStore,
    ) -> Self {
        Self {
            dimensions,
            exact_threshold: AtomicUsize::new(settings.exact_threshold),
            expansion_search: AtomicUsize::new(settings.expansion_search),
            rerank_factor: AtomicUsize::new(settings.rerank_factor),
            writer: Mutex::new(()),
            engine: RwLock::new(engine),
            store: RwLock::new(store),
            permits: Permits::new(THREAD_CONTEXTS),
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

    /// The HNSW search expansion (`ef_search`) of an index of a million vectors or more.
    pub fn expansion_search(&self) -> usize {
        self.expansion_search.load(Ordering::Relaxed)
    }

    /// The `ef_search` a search uses at the current size: [`VectorIndex::expansion_search`]
    /// scaled down for smaller indexes (at least `k × rerank_factor` is always used).
    pub fn effective_expansion_search(&self) -> usize {
        expansion_for_size(self.expansion_search(), self.len())
    }

    /// Changes the HNSW search expansion (`ef_search` at a million vectors, at least 1):
    /// higher is slower and more accurate.
    pub fn set_expansion_search(&self, expansion: usize) {
        self.expansion_search
            .store(expansion.max(1), Ordering::Relaxed);
    }

    /// Changes how many graph candidates per wanted result are re-ranked in f32 (at least 1).
    pub fn set_rerank_factor(&self, factor: usize) {
        self.rerank_factor.store(factor.max(1), Ordering::Relaxed);
    }

    /// The SIMD kernels usearch picked for the graph's i8 distances (e.g. "icelake", "serial").
    pub fn hardware_acceleration(&self) -> String {
        self.engine().hardware_acceleration()
    }

    /// Changes the size up to which searches are exact scans.
    pub fn set_exact_threshold(&self, threshold: usize) {
        self.exact_threshold.store(threshold, Ordering::Relaxed);
    }

    /// Bytes of memory this index holds: usearch's (i8 vectors, graph, contexts) plus the f32
    /// vectors.
    ///
    /// usearch counts by walking every node, and a node being added has its slot before its
    /// memory: walked beside an add, it is a null pointer. So counting takes the writer lock as
    /// a mutation does, and it costs time linear in the index size.
    pub fn memory_usage(&self) -> usize {
        let _writer = self.writer();
        let engine = self.engine();
        let store = self.store();
        engine.memory_usage() + std::mem::size_of_val(store.values())
    }

    /// Stores `vector` under `key`, replacing any vector the key had.
    pub fn upsert(&self, key: u64, vector: &[f32]) -> Result<(), VectorError> {
        let vector = self.prepared(vector)?;
        let quantised = quantise(&vector);
        let _writer = self.writer();
        self.ensure_capacity(1)?;
        let engine = self.engine();
        let _permit = self.permits.acquire();
        if engine.contains(key) {
            engine.remove(key).map_err(engine_error)?;
        }
        if let Err(error) = engine.add(key, &quantised) {
            self.store_mut().remove(key);
            return Err(engine_error(error));
        }
        self.store_mut().insert(key, &vector);
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
        // Quantised in the workers, so that only one chunk's i8 copies exist per thread.
        let added: Vec<Result<(), VectorError>> = std::thread::scope(|scope| {
            let workers: Vec<_> = prepared
                .chunks(chunk_len)
                .map(|chunk| {
                    scope.spawn(move || {
                        for (key, vector) in chunk {
                            let quantised = quantise(vector);
                            let _permit = self.permits.acquire();
                            engine_ref.add(*key, &quantised).map_err(engine_error)?;
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
        // Store what the graph took even when a worker failed, so graph and store agree.
        let mut store = self.store_mut();
        store.reserve(prepared.len());
        for (key, vector) in &prepared {
            if engine.contains(*key) {
                store.insert(*key, vector);
            } else {
                store.remove(*key);
            }
        }
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
        let engine = self.engine();
        let store = self.store();
        let _permit = self.permits.acquire();
        file::save(&engine, store.keys(), store.values(), self.dimensions, path)
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

    // Poisoning: every critical section leaves the usearch index and the store consistent
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
        // Cosine, not inner product: `quantise` scales each vector by its own largest
        // component, and cosine divides that scale out.
        metric: MetricKind::Cos,
        // The graph walks i8 vectors; the f32 store re-ranks (see the module comment).
        quantization: ScalarKind::I8,
        connectivity: settings.connectivity,
        expansion_add: settings.expansion_add,
        // usearch walks with `max(expansion_search, count)` candidates; searches pass their
        // size-dependent ef as `count`, so the index-wide setting stays at its minimum.
        expansion_search: 1,
        multi: false,
    };
    usearch::Index::new(&options).map_err(engine_error)
}

/// The `ef_search` for an index of `len` vectors: `full` from [`FULL_EXPANSION_SIZE`] on,
/// `full × (len / FULL_EXPANSION_SIZE)^EXPANSION_SIZE_EXPONENT` below (a smaller graph is
/// reached in fewer hops).
fn expansion_for_size(full: usize, len: usize) -> usize {
    if len >= FULL_EXPANSION_SIZE {
        return full;
    }
    let share = len as f64 / FULL_EXPANSION_SIZE as f64;
    let scaled = (full as f64 * share.powf(EXPANSION_SIZE_EXPONENT)).ceil();
    (scaled as usize).clamp(1, full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_shrinks_with_the_index_size() {
        assert_eq!(expansion_for_size(160, 5_000_000), 160);
        assert_eq!(expansion_for_size(160, 1_000_000), 160);
        assert_eq!(expansion_for_size(160, 100_000), 64);
        assert_eq!(expansion_for_size(160, 10_000), 26);
        assert_eq!(expansion_for_size(160, 0), 1);
    }

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
