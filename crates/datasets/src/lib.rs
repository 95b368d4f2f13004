//! Datasets for fine-tuning: items built in bulk from traces and their feedback ([`build`]),
//! and streaming exports in the formats trainers read ([`export`]): OpenAI chat fine-tuning,
//! SFT `messages`, preference pairs for DPO (from corrections, pairwise votes and rating
//! contrasts on near-identical prompts) and CSV, with near-duplicate removal by embedding
//! similarity, PII scrubbing, a deterministic train/validation split and a manifest.
//!
//! The store keeps datasets, items and versions (`feedloop_store::Datasets`); this crate
//! holds the rules that read across traces, feedback and vectors.

pub mod build;
pub mod export;

use feedloop_embed::EmbedError;
use feedloop_memory::MemoryError;
use feedloop_store::StoreError;
use feedloop_vector::VectorError;

pub use build::{FromFeedbackReport, add_from_feedback};
pub use export::{
    ExportEvent, ExportFormat, ExportOptions, ItemFilter, Manifest, VersionRef, run_export,
};

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Vector(#[from] VectorError),
    #[error("dataset {0:?} not found")]
    DatasetNotFound(String),
    #[error("dataset {dataset:?} has no version {version}")]
    VersionNotFound { dataset: String, version: u32 },
    /// The reader of the export went away (the client disconnected).
    #[error("the export was abandoned by its reader")]
    Abandoned,
    #[error("{0}")]
    Internal(String),
}
