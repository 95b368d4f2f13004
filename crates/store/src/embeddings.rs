//! What semantic memory keeps in the store: one vector per (embedding model, trace) for the
//! trace's input, and the queue of traces waiting to be embedded.
//!
//! Ingest queues a trace in the transaction that stores it (or changes its input); the
//! embedding worker claims queued traces with a lease, embeds them off the ingest path and
//! stores their vectors in the transaction that removes them from the queue. A worker that dies
//! leaves its claim to expire, and another takes the traces over; a vector is stored once per
//! (model, trace) whatever happens. Vector indexes follow [`Embeddings::embeddings_since`],
//! whose order is the order of writing, so every replica's index catches up with every vector.

use async_trait::async_trait;
use feedloop_core::filter::Filter;
use feedloop_core::{ProjectId, Timestamp, TraceId};

use crate::{Result, StoreError, StoredFeedback, StoredTrace};

/// A trace to embed, as claimed by a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingTask {
    pub project: ProjectId,
    pub trace_seq: i64,
    /// The queue entry's generation; storing the vector removes the entry only if the trace was
    /// not queued again meanwhile.
    pub generation: i64,
    /// What to embed: the trace's input.
    pub text: String,
}

/// A vector as the worker hands it to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEmbedding {
    pub trace_seq: i64,
    pub generation: i64,
    pub vector: Vec<f32>,
}

/// A stored vector.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEmbedding {
    /// The order of writing; followers resume after the last they saw.
    pub seq: i64,
    pub project: ProjectId,
    pub trace_seq: i64,
    pub vector: Vec<f32>,
}

#[async_trait]
pub trait Embeddings: Send + Sync {
    /// Claims up to `limit` queued traces, oldest first: those unclaimed, or whose claim ended
    /// before `now`. The claim lasts until `lease_until`.
    async fn claim_embedding_tasks(
        &self,
        limit: u32,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Vec<EmbeddingTask>>;

    /// Stores vectors of `model` (replacing a trace's earlier vector of that model) and removes
    /// their traces from the queue, in one transaction. A vector whose generation is no longer
    /// queued (the input changed after the claim, and a newer embedding is due or done) is
    /// dropped, so a late worker never replaces a newer vector with one of an older input.
    async fn store_embeddings(
        &self,
        model: &str,
        embeddings: Vec<NewEmbedding>,
        now: Timestamp,
    ) -> Result<()>;

    /// How many traces wait to be embedded.
    async fn embedding_backlog(&self) -> Result<u64>;

    /// Queues every trace that has an input but no vector of `model` (after a change of model,
    /// or a restore); returns how many were queued.
    async fn queue_missing_embeddings(&self, model: &str) -> Result<u64>;

    /// Vectors of `model` written after `after`, in the order of writing, at most `limit`.
    async fn embeddings_since(
        &self,
        model: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEmbedding>>;

    /// The traces with these sequence numbers in `project` (missing ones are left out), in no
    /// particular order; spans are not loaded.
    async fn traces_by_seq(&self, project: ProjectId, seqs: &[i64]) -> Result<Vec<StoredTrace>>;

    /// Sequence numbers of the traces of `project` that match `filter`, at most `limit`.
    async fn trace_seqs(&self, project: ProjectId, filter: &Filter, limit: u32)
    -> Result<Vec<i64>>;

    /// The feedback on each of these traces, oldest first (traces without feedback are left
    /// out).
    async fn feedback_on(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, Vec<StoredFeedback>)>>;
}

/// A vector as stored: little-endian f32.
pub fn vector_to_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The inverse of [`vector_to_bytes`].
pub fn vector_from_bytes(bytes: &[u8]) -> Result<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(StoreError::Internal(format!(
            "stored vector has {} bytes, not a multiple of 4",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_through_bytes() {
        let vector = vec![0.0, -1.5, f32::MIN_POSITIVE, 3.25];
        assert_eq!(
            vector_from_bytes(&vector_to_bytes(&vector)).unwrap(),
            vector
        );
        assert!(vector_from_bytes(&[0, 1, 2]).is_err());
    }
}
