//! The read side of [`VectorIndex`]: approximate, exact, filtered and candidate-set searches.
//!
//! Exact scans of the f32 store cost about 0.1 ms per 1,000 vectors (memory-bound); a scan of
//! the probed i8 lists plus an f32 re-rank of their candidates a fraction of a millisecond at
//! a million vectors. Which one runs is decided per query from the index size, the exact
//! threshold and, for filters, an estimate of how many keys match.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use super::{FILTER_SAMPLE, Neighbor, VectorIndex};
use crate::VectorError;

impl VectorIndex {
    /// The `k` stored vectors most similar to `query`, best first: exact while the index holds
    /// at most the exact threshold, approximate (the probed lists) above it.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>, VectorError> {
        self.search_with(query, k, None)
    }

    /// The exact `k` nearest neighbours, whatever the size (a scan of every vector: about
    /// 0.1 ms per 1,000 vectors). For measuring the recall of [`VectorIndex::search`].
    pub fn search_exact(&self, query: &[f32], k: usize) -> Result<Vec<Neighbor>, VectorError> {
        let query = self.prepared(query)?;
        Ok(self.store().scan(&query, k, |_| true))
    }

    /// The `k` most similar vectors among the keys `keep` accepts. Returns `min(k, matching)`
    /// neighbours however selective the filter: a filter expected (on a sample of keys) to
    /// match at most the exact threshold or less than a tenth of the keys is answered by an
    /// exact scan of the matching keys; otherwise the probed lists are scanned with the filter,
    /// and an exact scan takes over when they hold fewer than `k` matches.
    pub fn search_filtered(
        &self,
        query: &[f32],
        k: usize,
        keep: &(dyn Fn(u64) -> bool + Sync),
    ) -> Result<Vec<Neighbor>, VectorError> {
        self.search_with(query, k, Some(keep))
    }

    fn search_with(
        &self,
        query: &[f32],
        k: usize,
        filter: Option<&(dyn Fn(u64) -> bool + Sync)>,
    ) -> Result<Vec<Neighbor>, VectorError> {
        let query = self.prepared(query)?;
        let len = self.len();
        if k == 0 || len == 0 {
            return Ok(Vec::new());
        }
        let threshold = self.exact_threshold.load(Ordering::Relaxed);
        let keep = filter.unwrap_or(&|_| true);
        let broad = || {
            filter.is_none_or(|keep| {
                let num_matching = self.estimated_matching(keep);
                num_matching > threshold && num_matching >= len / 10
            })
        };
        if len > threshold && broad() {
            let num_reranked = k.saturating_mul(self.rerank_factor.load(Ordering::Relaxed));
            let candidates = self
                .partition()
                .candidates(&query, num_reranked, self.probes(), keep);
            let ranked = self.store().rank(&query, k, &candidates);
            if ranked.len() >= k {
                return Ok(ranked);
            }
        }
        Ok(self.store().scan(&query, k, keep))
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
        let mut seen = HashSet::with_capacity(keys.len());
        let unique: Vec<u64> = keys
            .iter()
            .copied()
            .filter(|key| seen.insert(*key))
            .collect();
        Ok(self.store().rank(&query, k, &unique))
    }

    /// How many keys `keep` accepts, extrapolated from keys spread evenly over the store's
    /// rows (rows are roughly in insertion order, so a prefix would be biased for filters on
    /// time or on key ranges).
    fn estimated_matching(&self, keep: &(dyn Fn(u64) -> bool + Sync)) -> usize {
        let store = self.store();
        let keys = store.keys();
        if keys.is_empty() {
            return 0;
        }
        let sample = keys.iter().step_by(keys.len().div_ceil(FILTER_SAMPLE));
        let num_sampled = sample.clone().count();
        let num_kept = sample.filter(|key| keep(**key)).count();
        num_kept * keys.len() / num_sampled
    }
}
