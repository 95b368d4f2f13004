//! The tunable parameters of a [`crate::VectorIndex`] and why they default to what they do.

use crate::VectorError;

/// HNSW and exact-search parameters.
///
/// The defaults were measured on clustered 384-d vectors (BENCHMARKS.md, "Vector index"): with
/// `M` = 32 and `ef_search` = 192, recall@10 was 0.965 at a million vectors (p50 2.1 ms on a
/// loaded 2-core machine) and above 0.99 at 100k. `M` = 16 needed `ef_search` ≈ 512 (p50 3.6 ms)
/// for 0.95 at a million, for 7 % less memory and 25 % less build CPU. Small indexes can trade
/// recall for speed with a lower `expansion_search` (at 100k, `M` = 32: 0.974 at 32, p50 0.37 ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSettings {
    /// HNSW `M`: neighbours kept per node (twice that on the bottom layer). More raises recall
    /// and memory (4 bytes per link) and slows inserts.
    pub connectivity: usize,
    /// HNSW `ef_construction`: candidates considered when linking a new vector. Build time grows
    /// about linearly with it; graph quality saturates.
    pub expansion_add: usize,
    /// HNSW `ef_search`: candidates kept while searching (at least `k` is always used). The
    /// recall/latency knob; [`crate::VectorIndex::set_expansion_search`] changes it at run time.
    pub expansion_search: usize,
    /// Up to this many vectors, searches scan every vector (exact, and at ~0.15 ms per 1,000
    /// vectors as fast as HNSW); above it they use the graph.
    pub exact_threshold: usize,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self {
            connectivity: 32,
            expansion_add: 128,
            expansion_search: 192,
            exact_threshold: 10_000,
        }
    }
}

impl IndexSettings {
    pub(crate) fn check(&self) -> Result<(), VectorError> {
        if !(2..=256).contains(&self.connectivity) {
            return Err(VectorError::InvalidSettings(
                "connectivity must be between 2 and 256",
            ));
        }
        if self.expansion_add == 0 || self.expansion_search == 0 {
            return Err(VectorError::InvalidSettings(
                "expansion_add and expansion_search must be positive",
            ));
        }
        Ok(())
    }
}
