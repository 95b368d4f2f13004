//! The manifest of an export: what was exported from which version with which options, how
//! many lines went to each split, what was removed or scrubbed, and where every line came from.

use feedloop_core::dataset::Split;
use feedloop_core::pii::PiiCounts;
use serde::{Deserialize, Serialize};

use super::ExportOptions;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub dataset: String,
    /// The version exported: its number, or `latest` (the items as they are; nothing frozen).
    pub version: String,
    /// The sequence number of the last item read: `latest` exported again with the same items
    /// reads up to the same number.
    pub last_item_seq: i64,
    pub format: String,
    pub options: ExportOptions,
    /// The model whose vectors near-duplicate removal and rating contrasts compared.
    pub embedding_model: String,
    pub counts: Counts,
    pub removed_duplicates: Vec<RemovedDuplicate>,
    /// Findings replaced in the exported text, by kind.
    pub pii: PiiCounts,
    /// Where each line came from, in the order written.
    pub provenance: Vec<LineProvenance>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Items of the version.
    pub items: u64,
    /// Items the export's filter left out.
    pub filtered_out: u64,
    /// Items removed as near-duplicates of an earlier item.
    pub duplicates_removed: u64,
    /// Items the format had no use for (no ideal output for a chat format; for preferences, a
    /// single answer no contrast matched).
    pub unused: u64,
    /// Preference pairs made from rating contrasts (two items each).
    pub contrast_pairs: u64,
    pub train: u64,
    pub validation: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemovedDuplicate {
    pub item_id: String,
    pub duplicate_of: String,
    pub similarity: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineProvenance {
    pub split: Split,
    /// The line's number within its split's file, from 1 (after any header).
    pub line: u64,
    pub item_ids: Vec<String>,
    pub trace_ids: Vec<String>,
    pub feedback_ids: Vec<String>,
}
