//! Semantic memory: every trace's input is embedded and kept in a vector index per project, so
//! that new queries can be compared with known cases.
//!
//! - [`worker`] embeds queued traces in batches, off the ingest path;
//! - [`indexes`] holds one vector index per project for the configured model, derived from
//!   the stored vectors, saved to disk and kept current by following the store;
//! - [`search`] answers "what is near this text / this trace", with each neighbour's feedback.
//!
//! The store is the only truth: indexes can be deleted and are rebuilt from it.

pub mod indexes;
pub mod search;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use feedloop_core::TraceId;
use feedloop_core::clock::Clock;
use feedloop_embed::{EmbedError, Embedder};
use feedloop_store::{Store, StoreError};
use feedloop_vector::VectorError;
use tokio::sync::watch;

pub use indexes::ProjectIndexes;
pub use search::{FeedbackSummary, Query, SearchHit, SearchRequest};
use worker::IngestSignals;
pub use worker::{WorkerConfig, WorkerStats};

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Vector(#[from] VectorError),
    #[error("trace {0:?} not found")]
    TraceNotFound(TraceId),
    #[error("trace {0:?} has no input to compare")]
    NoInput(TraceId),
    #[error("{path}: {error}", path = .0.display(), error = .1)]
    Io(PathBuf, std::io::Error),
    #[error("saved index state: {0}")]
    Serialize(serde_json::Error),
    #[error("{0}")]
    Internal(String),
}

/// Settings of semantic memory.
#[derive(Debug, Clone)]
pub struct MemoryConfig {
    /// Where indexes are saved (one folder per model beneath); `None` keeps them in memory.
    pub index_dir: Option<PathBuf>,
    pub worker: WorkerConfig,
    /// Run the embedding worker on this replica.
    pub run_worker: bool,
    /// How often the indexes read vectors stored since (by this replica or another).
    pub follow_interval: Duration,
    /// How often changed indexes are saved.
    pub save_interval: Duration,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            index_dir: None,
            worker: WorkerConfig::default(),
            run_worker: true,
            follow_interval: Duration::from_millis(200),
            save_interval: Duration::from_secs(60),
        }
    }
}

/// A snapshot of semantic memory's progress on this replica.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryStatus {
    /// The embedding model in use.
    pub model: String,
    /// Traces waiting to be embedded (by any replica).
    pub backlog: u64,
    /// Traces this replica embedded since it started.
    pub embedded: u64,
    /// Embedding batches this replica failed (retried when their claim expires).
    pub failed_batches: u64,
    /// Vectors in this replica's indexes.
    pub indexed_vectors: usize,
}

/// The embedder, the indexes and the store, shared by the API and the background tasks.
pub struct SemanticMemory {
    store: Arc<dyn Store>,
    embedder: Arc<Embedder>,
    indexes: Arc<ProjectIndexes>,
    config: MemoryConfig,
    stats: Arc<WorkerStats>,
    ingest: Arc<IngestSignals>,
}

impl SemanticMemory {
    /// Loads the saved indexes of the embedder's model (or starts empty).
    pub fn new(store: Arc<dyn Store>, embedder: Embedder, config: MemoryConfig) -> Self {
        let dir = config
            .index_dir
            .as_ref()
            .map(|root| indexes::model_dir(root, embedder.model_id()));
        let indexes = ProjectIndexes::open(embedder.model_id(), embedder.dimensions(), dir);
        Self {
            store,
            embedder: Arc::new(embedder),
            indexes: Arc::new(indexes),
            config,
            stats: Arc::default(),
            ingest: Arc::default(),
        }
    }

    pub fn model_id(&self) -> &str {
        self.embedder.model_id()
    }

    /// Length of the model's vectors.
    pub fn dimensions(&self) -> usize {
        self.embedder.dimensions()
    }

    pub fn indexes(&self) -> &ProjectIndexes {
        &self.indexes
    }

    /// Tells the worker that ingest queued `num_traces` traces.
    pub fn traces_queued(&self, num_traces: usize) {
        self.ingest.rate.add(num_traces as u64);
        self.ingest.wake.notify_one();
    }

    /// Applies every vector stored so far to the indexes (for tests and tools that need the
    /// indexes current now rather than within a poll interval).
    pub async fn catch_up(&self) -> Result<usize, MemoryError> {
        self.indexes.catch_up(self.store.as_ref()).await
    }

    /// Runs the worker (if configured) and the index follower until `stop` turns true, then
    /// saves the indexes.
    pub async fn run(self: Arc<Self>, clock: Arc<dyn Clock>, stop: watch::Receiver<bool>) {
        let worker = self.config.run_worker.then(|| {
            tokio::spawn(worker::run(
                self.store.clone(),
                self.embedder.clone(),
                clock,
                self.config.worker.clone(),
                self.stats.clone(),
                self.ingest.clone(),
                stop.clone(),
            ))
        });
        self.follow(stop).await;
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        self.save_indexes().await;
    }

    /// Saves the indexes on a blocking thread; a failure is logged (the next save retries, and
    /// the store can always rebuild them).
    async fn save_indexes(&self) {
        let indexes = self.indexes.clone();
        match tokio::task::spawn_blocking(move || indexes.save()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot save vector indexes"),
            Err(error) => tracing::warn!(%error, "index save task failed"),
        }
    }

    /// How far semantic memory is behind, for `/readyz` and `/metrics`.
    pub async fn status(&self) -> Result<MemoryStatus, MemoryError> {
        Ok(MemoryStatus {
            model: self.model_id().to_owned(),
            backlog: self.store.embedding_backlog().await?,
            embedded: self.stats.embedded.load(Ordering::Relaxed),
            failed_batches: self.stats.failed_batches.load(Ordering::Relaxed),
            indexed_vectors: self.indexes.num_vectors(),
        })
    }

    /// Bytes of memory this replica's indexes hold. Counting walks the graphs and holds off
    /// their writers meanwhile, so it is for `/metrics`, not for every readiness probe.
    pub async fn index_bytes(&self) -> Result<usize, MemoryError> {
        let indexes = self.indexes.clone();
        tokio::task::spawn_blocking(move || indexes.memory_usage())
            .await
            .map_err(|e| MemoryError::Internal(format!("index memory count failed: {e}")))
    }

    async fn follow(&self, mut stop: watch::Receiver<bool>) {
        let mut last_save = Instant::now();
        loop {
            if *stop.borrow() {
                return;
            }
            if let Err(error) = self.indexes.catch_up(self.store.as_ref()).await {
                tracing::warn!(%error, "vector index follower failed; retrying");
            }
            if last_save.elapsed() >= self.config.save_interval {
                last_save = Instant::now();
                self.save_indexes().await;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.follow_interval) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
