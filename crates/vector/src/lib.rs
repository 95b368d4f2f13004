//! The vector index: nearest neighbours by cosine similarity over L2-normalised embeddings.
//!
//! One [`VectorIndex`] holds the vectors of one (project, embedding model). It answers three kinds
//! of query:
//! - [`VectorIndex::search`]: the `k` most similar vectors. Exact (a brute-force scan) while the
//!   index holds at most [`IndexSettings::exact_threshold`] vectors, approximate above that: an
//!   inverted file (k-means lists of i8 vectors; the query's nearest lists are scanned) whose
//!   candidates are re-ranked with the exact f32 vectors.
//! - [`VectorIndex::search_filtered`]: the same among the keys a predicate keeps; a selective
//!   filter is answered exactly, so it still returns `min(k, matching)` neighbours.
//! - [`VectorIndex::search_among`]: exact search over a candidate set of keys.
//!
//! The index lives in memory and is persisted to one file with [`VectorIndex::save`] (atomic:
//! temporary file, fsync, rename) and [`VectorIndex::load`], which checks a CRC, so a damaged
//! file is an error and never a crash or a wrong index.
//!
//! This crate does no embedding and knows nothing about traces: keys are opaque `u64`s.

mod error;
mod exact;
mod file;
mod index;
mod partition;
mod quantised;
mod settings;
mod store;

pub use error::VectorError;
pub use index::{Neighbor, VectorIndex};
pub use settings::IndexSettings;
