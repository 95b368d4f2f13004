//! The tunable parameters of a [`crate::VectorIndex`] and why they default to what they do.

use crate::VectorError;

/// HNSW and exact-search parameters.
///
/// The defaults were measured on clustered 384-d vectors (BENCHMARKS.md, "Vector index"), with
/// the graph over i8 vectors and an f32 re-rank of `2 × k` candidates: at a million vectors,
/// `M` = 32 and `ef_search` = 160 gave recall@10 0.965 (p50 1.4 ms on a loaded 2-core machine;
/// 0.951 at 128, 1.2 ms); at 100k the size-scaled ef of 64 gave 0.993. `M` = 16 needed about
/// twice the ef for the same recall at 100k, for 40 % less build CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSettings {
    /// HNSW `M`: neighbours kept per node (twice that on the bottom layer). More raises recall
    /// and memory (4 bytes per link) and slows inserts.
    pub connectivity: usize,
    /// HNSW `ef_construction`: candidates considered when linking a new vector. Build time grows
    /// about linearly with it; graph quality saturates.
    pub expansion_add: usize,
    /// HNSW `ef_search` at a million vectors and more: candidates kept while walking the graph
    /// (at least `k × rerank_factor` is always used). Smaller indexes use less, shrinking with
    /// the 0.4th power of their size (a tenth of the vectors: 40 % of the ef). The
    /// recall/latency knob; [`crate::VectorIndex::set_expansion_search`] changes it at run time.
    pub expansion_search: usize,
    /// Graph candidates re-ranked per wanted result: the i8 walk returns `k × rerank_factor`
    /// keys, their f32 similarities pick the best `k`. More costs one f32 dot product each and
    /// recovers neighbours that quantisation ranked just below the top `k`.
    pub rerank_factor: usize,
    /// Up to this many vectors, searches scan every vector (exact, and at ~0.15 ms per 1,000
    /// vectors as fast as HNSW); above it they use the graph.
    pub exact_threshold: usize,
}

impl Default for IndexSettings {
    fn default() -> Self {
        Self {
            connectivity: 32,
            expansion_add: 128,
            expansion_search: 160,
            rerank_factor: 2,
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
        if self.expansion_add == 0 || self.expansion_search == 0 || self.rerank_factor == 0 {
            return Err(VectorError::InvalidSettings(
                "expansion_add, expansion_search and rerank_factor must be positive",
            ));
        }
        Ok(())
    }
}
