//! The tunable parameters of a [`crate::VectorIndex`] and why they default to what they do.

use crate::VectorError;

/// Search parameters. The number of lists is not one: it follows the index size (about √n,
/// see `partition.rs`).
///
/// The defaults were measured on clustered 384-d vectors (BENCHMARKS.md, "Fifth look"): at a
/// million vectors in 800 lists, scanning the 8 lists nearest the query and re-ranking `2 × k`
/// candidates in f32 found recall@10 0.996 (4 lists: 0.970) at 0.2–0.3 ms; at 100k, 0.967.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSettings {
    /// Lists scanned per approximate search, those whose centroids are most like the query.
    /// The recall/latency knob: each list costs a scan of its i8 codes (~n/√n vectors);
    /// [`crate::VectorIndex::set_probes`] changes it at run time.
    pub probes: usize,
    /// Candidates re-ranked per wanted result: the i8 scan keeps `k × rerank_factor` keys,
    /// their f32 similarities pick the best `k`. More costs one f32 dot product each and
    /// recovers neighbours that quantisation ranked just below the top `k`.
    pub rerank_factor: usize,
    /// Up to this many vectors, searches scan every vector (exact, and at ~0.15 ms per 1,000
    /// vectors as fast as the lists); above it they scan the probed lists.
    pub exact_threshold: usize,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self {
            probes: 8,
            rerank_factor: 2,
            exact_threshold: 10_000,
        }
    }
}

impl IndexSettings {
    pub(crate) fn check(&self) -> Result<(), VectorError> {
        if self.probes == 0 || self.rerank_factor == 0 {
            return Err(VectorError::InvalidSettings(
                "probes and rerank_factor must be positive",
            ));
        }
        Ok(())
    }
}
