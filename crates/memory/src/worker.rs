//! The embedding worker: embeds queued traces in batches, off the ingest path.
//!
//! It claims a batch from the store's queue with a lease, embeds the inputs, and stores the
//! vectors in the transaction that removes them from the queue (see
//! [`feedloop_store::embeddings`]). If it dies in between, the lease expires and the batch is
//! claimed again, by this replica or another; nothing is lost and no trace gets two vectors of
//! one model. Ingest only appends to the queue, so a busy worker does not slow it down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use feedloop_core::clock::Clock;
use feedloop_embed::Embedder;
use feedloop_store::Store;
use feedloop_store::embeddings::NewEmbedding;
use tokio::sync::{Notify, watch};

use crate::MemoryError;

/// Settings of the worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Traces embedded per batch.
    pub batch_size: u32,
    /// How long a claim lasts; a batch not stored by then is claimed again.
    pub lease: Duration,
    /// How often an idle worker looks at the queue (ingest also wakes it).
    pub poll_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch_size: 32,
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
        }
    }
}

/// Counters for `/readyz` and metrics.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub embedded: AtomicU64,
    pub failed_batches: AtomicU64,
}

/// Embeds queued traces until `stop` turns true. `wake` is notified by ingest.
pub async fn run(
    store: Arc<dyn Store>,
    embedder: Arc<Embedder>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    stats: Arc<WorkerStats>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let queued = match store.queue_missing_embeddings(embedder.model_id()).await {
        Ok(queued) => queued,
        Err(error) => {
            tracing::error!(%error, "cannot queue traces without vectors");
            0
        }
    };
    if queued > 0 {
        tracing::info!(
            queued,
            model = embedder.model_id(),
            "queued traces without vectors of this model"
        );
    }
    loop {
        if *stop.borrow() {
            return;
        }
        let idle = match embed_batch(store.as_ref(), &embedder, clock.as_ref(), &config).await {
            Ok(0) => true,
            Ok(done) => {
                stats.embedded.fetch_add(done as u64, Ordering::Relaxed);
                false
            }
            Err(error) => {
                stats.failed_batches.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "embedding batch failed; its traces are retried when the claim expires");
                true
            }
        };
        if idle {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(config.poll_interval) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// Claims, embeds and stores one batch; returns how many traces it embedded.
pub async fn embed_batch(
    store: &dyn Store,
    embedder: &Embedder,
    clock: &dyn Clock,
    config: &WorkerConfig,
) -> Result<usize, MemoryError> {
    let now = clock.now();
    let lease_until = now
        .checked_add(config.lease)
        .map_err(|e| MemoryError::Internal(format!("lease out of range: {e}")))?;
    let tasks = store
        .claim_embedding_tasks(config.batch_size, now, lease_until)
        .await?;
    if tasks.is_empty() {
        return Ok(0);
    }
    let texts = tasks.iter().map(|task| task.text.clone()).collect();
    let vectors = embedder.embed_bulk(texts).await?;
    let embeddings: Vec<NewEmbedding> = tasks
        .iter()
        .zip(vectors)
        .map(|(task, vector)| NewEmbedding {
            trace_seq: task.trace_seq,
            generation: task.generation,
            vector,
        })
        .collect();
    let done = embeddings.len();
    store
        .store_embeddings(embedder.model_id(), embeddings, clock.now())
        .await?;
    Ok(done)
}
