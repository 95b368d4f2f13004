//! The read side of [`VectorIndex`]: HNSW, exact, filtered and candidate-set searches.
//!
//! Exact scans cost about 0.1 ms per 1,000 vectors (memory-bound); HNSW a fraction of a
//! millisecond at any size. Which one runs is decided per query from the index size, the exact
//! threshold and, for filters, an estimate of how many keys match.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use super::{FILTER_SAMPLE, Neighbor, VectorIndex};
use crate::VectorError;
use crate::error::engine_error;
use crate::exact::{dot, top_k};

impl VectorIndex {
    /// The `k` stored vectors most similar to `query`, best first: exact while the index holds
    /// at most the exact threshold, HNSW (approximate) above it.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>, VectorError> {
        let query = self.prepared(query)?;
        let engine = self.engine();
        if k == 0 || engine.size() == 0 {
            return Ok(Vec::new());
        }
        let exact = engine.size() <= self.exact_threshold.load(Ordering::Relaxed);
        let _permit = self.permits.acquire();
        let matches = if exact {
            engine.exact_search(&query, k)
        } else {
            engine.search(&query, k)
        };
        Ok(to_neighbors(matches.map_err(engine_error)?))
    }

    /// The exact `k` nearest neighbours, whatever the size (a scan of every vector: about
    /// 0.15 ms per 1,000 vectors). For measuring the recall of [`VectorIndex::search`].
    pub fn search_exact(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>, VectorError> {
        let query = self.prepared(query)?;
        let engine = self.engine();
        if k == 0 || engine.size() == 0 {
            return Ok(Vec::new());
        }
        let _permit = self.permits.acquire();
        Ok(to_neighbors(
            engine.exact_search(&query, k).map_err(engine_error)?,
        ))
    }

    /// The `k` most similar vectors among the keys `keep` accepts. Returns `min(k, matching)`
    /// neighbours however selective the filter: a filter expected to match at most the exact
    /// threshold (estimated on a sample of keys) is answered by an exact scan of the matching
    /// keys; otherwise HNSW searches with the filter, and an exact scan takes over when the
    /// graph walk finds fewer than `k`.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        keep: &(dyn Fn(u64) -> bool + Sync),
    ) -> Result<Vec<Neighbor>, VectorError> {
        let query = self.prepared(query)?;
        let engine = self.engine();
        let len = engine.size();
        if k == 0 || len == 0 {
            return Ok(Vec::new());
        }
        let threshold = self.exact_threshold.load(Ordering::Relaxed);
        if len > threshold && self.estimated_matching(keep, len) > threshold {
            let matches = {
                let _permit = self.permits.acquire();
                engine
                    .filtered_search(&query, k, keep)
                    .map_err(engine_error)?
            };
            if matches.keys.len() >= k {
                return Ok(to_neighbors(matches));
            }
        }
        let matching: Vec<u64> = self
            .keys()
            .iter()
            .copied()
            .filter(|key| keep(*key))
            .collect();
        Ok(self.exact_among(&engine, &query, k, &matching))
    }

    /// Exact search over the candidate `keys` (keys not in the index are skipped; a key given
    /// twice counts once).
    pub fn search_among(
        &self,
        query: &[f32],
        k: usize,
        keys: &[u64],
    ) -> Result<Vec<Neighbor>, VectorError> {
        let query = self.prepared(query)?;
        let engine = self.engine();
        let mut seen = HashSet::with_capacity(keys.len());
        let unique: Vec<u64> = keys
            .iter()
            .copied()
            .filter(|key| seen.insert(*key))
            .collect();
        Ok(self.exact_among(&engine, &query, k, &unique))
    }

    fn exact_among(
        &self,
        engine: &usearch::Index,
        query: &[f32],
        k: usize,
        keys: &[u64],
    ) -> Vec<Neighbor> {
        if k == 0 {
            return Vec::new();
        }
        let mut buffer = vec![0.0; self.dimensions];
        let scored = keys
            .iter()
            .filter_map(|&key| match engine.get(key, &mut buffer) {
                Ok(1..) => Some(Neighbor {
                    key,
                    similarity: dot(query, &buffer),
                }),
                _ => None,
            })
            .collect();
        top_k(scored, k)
    }

    /// How many keys `keep` accepts, extrapolated from the first keys of the set (hash order,
    /// so an unbiased sample for filters that do not depend on the hash).
    fn estimated_matching(&self, keep: &(dyn Fn(u64) -> bool + Sync), len: usize) -> usize {
        let keys = self.keys();
        let sample = keys.len().min(FILTER_SAMPLE);
        if sample == 0 {
            return 0;
        }
        let kept = keys.iter().take(sample).filter(|key| keep(**key)).count();
        kept * len / sample
    }
}

/// usearch reports inner-product *distance*, `1 - similarity`.
fn to_neighbors(matches: usearch::ffi::Matches) -> Vec<Neighbor> {
    matches
        .keys
        .into_iter()
        .zip(matches.distances)
        .map(|(key, distance)| Neighbor {
            key,
            similarity: 1.0 - distance,
        })
        .collect()
}
