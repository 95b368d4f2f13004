//! The `Privacy` part of the store: each project's [`PrivacySettings`], the deletions that
//! retention and erasure make, the receipts of erasures, and the log of removed vectors that
//! every replica's vector indexes follow.
//!
//! Deleting a trace deletes everything that exists because of it, in the same transaction:
//! spans, tags, feedback (and the lesson provenance links to that feedback), the embedding
//! queue entry and vectors of every model, the satisfaction estimate, review items with their
//! verdicts and history, problem-cluster membership (the cluster's size and centroid sum drop
//! the member; a cluster left empty is deleted, and one left with members loses its name, which
//! may quote the erased member, until its next growth names it again) and lesson injections recorded for it. Each
//! removed vector is logged in `vector_removals` (numbered in commit order, like vectors), so
//! indexes drop it on every replica. Erasure also deletes dataset items built from the user's
//! traces or feedback and webhook events naming them; retention leaves dataset items alone,
//! because they are curated copies with their own life.
//!
//! An erasure receipt keeps the SHA-256 of the user id, never the id itself: after an erasure
//! no table holds it.

use async_trait::async_trait;
use feedloop_core::privacy::{PrivacySettings, RetentionCutoffs};
use feedloop_core::{ProjectId, Timestamp};
use sha2::Digest;
use std::collections::BTreeMap;

use crate::Result;

/// Rows deleted, by table name.
pub type DeletedRows = BTreeMap<String, u64>;

/// What one erasure did.
#[derive(Debug, Clone, PartialEq)]
pub struct ErasureReceipt {
    pub id: String,
    /// Hex SHA-256 of the erased user id.
    pub user_id_sha256: String,
    pub requested_at: Timestamp,
    pub completed_at: Timestamp,
    pub deleted: DeletedRows,
    /// Lessons that cited erased feedback as their provenance: their text may quote the user,
    /// and only a person can rewrite it.
    pub lessons_to_review: Vec<String>,
}

/// What one retention batch deleted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionBatch {
    pub num_traces: u64,
    pub num_feedback: u64,
    pub deleted: DeletedRows,
}

impl RetentionBatch {
    pub fn is_empty(&self) -> bool {
        self.num_traces == 0 && self.num_feedback == 0
    }
}

/// A vector removed from the store, for indexes to drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VectorRemoval {
    pub seq: i64,
    pub project: ProjectId,
    pub trace_seq: i64,
}

#[async_trait]
pub trait Privacy: Send + Sync {
    /// The project's settings; the defaults (nothing redacted, everything kept) when none
    /// were stored.
    async fn privacy_settings(&self, project: ProjectId) -> Result<PrivacySettings>;

    /// Replaces the project's settings. `NotFound` if the project does not exist.
    async fn set_privacy_settings(
        &self,
        project: ProjectId,
        settings: &PrivacySettings,
        now: Timestamp,
    ) -> Result<()>;

    /// Deletes, in one transaction, every trace of `user_id` and every trace of a session in
    /// which the user has a trace (with all that depends on them, see the module docs), the
    /// feedback the user authored anywhere, the dataset items built from any of it and the
    /// webhook events naming it; stores and returns the receipt `receipt_id`.
    async fn erase_user(
        &self,
        project: ProjectId,
        user_id: &str,
        receipt_id: &str,
        requested_at: Timestamp,
        now: Timestamp,
    ) -> Result<ErasureReceipt>;

    /// The project's erasure receipts, newest first.
    async fn erasure_receipts(&self, project: ProjectId) -> Result<Vec<ErasureReceipt>>;

    /// Deletes up to `limit` expired traces (oldest first, with all that depends on them) and
    /// up to `limit` expired feedback rows, in one transaction. The caller repeats until a
    /// batch comes back empty.
    async fn delete_expired(
        &self,
        project: ProjectId,
        cutoffs: RetentionCutoffs,
        limit: u32,
        now: Timestamp,
    ) -> Result<RetentionBatch>;

    /// Removed vectors logged after `after`, in order, at most `limit`.
    async fn vector_removals_since(&self, after: i64, limit: u32) -> Result<Vec<VectorRemoval>>;
}

/// Settings from their stored document (`None`: never stored, the defaults).
pub(crate) fn settings_from_doc(doc: Option<&str>) -> Result<PrivacySettings> {
    Ok(match doc {
        Some(doc) => serde_json::from_str(doc)?,
        None => PrivacySettings::default(),
    })
}

/// The hex SHA-256 of a user id: what a receipt keeps.
pub fn user_id_digest(user_id: &str) -> String {
    sha2::Sha256::digest(user_id.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A receipt as stored (`doc`): the receipt without its id, project and times, which are
/// columns.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ReceiptDoc {
    pub user_id_sha256: String,
    pub deleted: DeletedRows,
    #[serde(default)]
    pub lessons_to_review: Vec<String>,
}

/// Adds `n` deleted rows of `table` (tables with nothing deleted are still listed, so a
/// receipt shows what was looked at).
pub(crate) fn count(deleted: &mut DeletedRows, table: &str, n: u64) {
    *deleted.entry(table.to_owned()).or_default() += n;
}

/// Whether a dataset item (its stored doc) was built from any of these traces or feedback.
pub(crate) fn item_built_from(
    doc: &str,
    trace_ids: &std::collections::HashSet<String>,
    feedback_ids: &std::collections::HashSet<String>,
) -> Result<bool> {
    let item: feedloop_core::dataset::DatasetItem = serde_json::from_str(doc)?;
    let provenance = &item.provenance;
    let traces = [&provenance.trace_id, &provenance.compared_trace_id];
    Ok(traces
        .into_iter()
        .flatten()
        .any(|id| trace_ids.contains(id.as_str()))
        || provenance
            .feedback_ids
            .iter()
            .any(|id| feedback_ids.contains(id.as_str())))
}

/// Whether a webhook event's payload names any of these ids (as a whole JSON string) or is
/// about one of these problem clusters (`data.cluster_id`), whose name may quote the user.
pub(crate) fn payload_names(
    payload: &str,
    ids: &std::collections::HashSet<String>,
    clusters: &std::collections::HashSet<i64>,
) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(payload) else {
        return false;
    };
    let cluster = value["data"]["cluster_id"].as_i64();
    names_any(&value, ids) || cluster.is_some_and(|id| clusters.contains(&id))
}

fn names_any(value: &serde_json::Value, ids: &std::collections::HashSet<String>) -> bool {
    match value {
        serde_json::Value::String(s) => ids.contains(s),
        serde_json::Value::Array(items) => items.iter().any(|v| names_any(v, ids)),
        serde_json::Value::Object(map) => map.values().any(|v| names_any(v, ids)),
        _ => false,
    }
}

/// Subtracts a member's vector from a cluster's centroid sum (both little-endian f32).
pub(crate) fn centroid_without(sum: &[u8], member: &[u8]) -> Result<Vec<u8>> {
    let sum = crate::embeddings::vector_from_bytes(sum)?;
    let member = crate::embeddings::vector_from_bytes(member)?;
    if sum.len() != member.len() {
        return Ok(crate::embeddings::vector_to_bytes(&sum));
    }
    let rest: Vec<f32> = sum.iter().zip(&member).map(|(s, m)| s - m).collect();
    Ok(crate::embeddings::vector_to_bytes(&rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_name_ids_only_as_whole_strings() {
        let ids = ["tr-1".to_owned()].into_iter().collect();
        let clusters = [7].into_iter().collect();
        assert!(payload_names(
            r#"{"data":{"trace_id":"tr-1"}}"#,
            &ids,
            &clusters
        ));
        assert!(payload_names(
            r#"{"data":{"examples":["x","tr-1"]}}"#,
            &ids,
            &clusters
        ));
        assert!(payload_names(
            r#"{"data":{"cluster_id":7}}"#,
            &ids,
            &clusters
        ));
        assert!(!payload_names(
            r#"{"data":{"cluster_id":8}}"#,
            &ids,
            &clusters
        ));
        assert!(!payload_names(
            r#"{"data":{"trace_id":"tr-10"}}"#,
            &ids,
            &clusters
        ));
        assert!(!payload_names("not json", &ids, &clusters));
    }

    #[test]
    fn digests_are_hex_sha256() {
        assert_eq!(
            user_id_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
