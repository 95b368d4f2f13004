//! The embedding worker: embeds queued traces in batches, off the ingest path.
//!
//! It claims a batch from the store's queue with a lease, embeds the inputs, and stores the
//! vectors in the transaction that removes them from the queue (see
//! [`feedloop_store::embeddings`]). If it dies in between, the lease expires and the batch is
//! claimed again, by this replica or another; nothing is lost and no trace gets two vectors of
//! one model. Ingest only appends to the queue, so a busy worker does not slow it down.
//!
//! Except through the machine: inference, the worker's claims and stores on the SQLite writer,
//! and the HNSW inserts that followed took a quarter of OTLP ingest throughput on 2 cores, even
//! with inference at the lowest CPU priority (BENCHMARKS.md). So while ingest runs faster than
//! the worker could ever follow ([`WorkerConfig::yield_above`] traces per second), the worker
//! waits, up to [`WorkerConfig::max_yield`] per batch, and catches up after the burst. It also
//! looks again between chunks of [`YIELD_CHUNK`] texts of a batch: 32 inputs of 1,500 characters
//! are seconds of inference, and a burst that starts meanwhile must not wait for them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

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
    /// Ingest rate (traces queued per second on this replica) above which the worker waits
    /// before each batch; 0 never waits. The default is far above what one inference thread
    /// embeds (~60–200 traces/s), so a worker that could keep up never waits.
    pub yield_above: u64,
    /// The longest the worker waits for ingest to calm down before it embeds a batch anyway, so
    /// that the backlog still moves under endless heavy ingest.
    pub max_yield: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            batch_size: 32,
            lease: Duration::from_secs(120),
            poll_interval: Duration::from_secs(1),
            yield_above: 2_000,
            max_yield: Duration::from_secs(10),
        }
    }
}

/// How often a yielding worker looks at the ingest rate again.
const YIELD_POLL: Duration = Duration::from_millis(100);

/// Traces queued per second by ingest on this replica, counted in whole seconds.
#[derive(Debug)]
pub struct IngestRate {
    origin: Instant,
    window: Mutex<RateWindow>,
}

impl Default for IngestRate {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
            window: Mutex::default(),
        }
    }
}

impl IngestRate {
    /// Counts `num_traces` queued now.
    pub fn add(&self, num_traces: u64) {
        let second = self.second();
        self.window().add(second, num_traces);
    }

    /// Traces per second now: the larger of the last whole second and the current one so far.
    pub fn per_second(&self) -> u64 {
        let second = self.second();
        self.window().rate(second)
    }

    fn second(&self) -> u64 {
        self.origin.elapsed().as_secs()
    }

    fn window(&self) -> MutexGuard<'_, RateWindow> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts of the current second and the one before it.
#[derive(Debug, Default)]
struct RateWindow {
    second: u64,
    this_second: u64,
    last_second: u64,
}

impl RateWindow {
    fn add(&mut self, second: u64, count: u64) {
        self.roll(second);
        self.this_second += count;
    }

    fn rate(&mut self, second: u64) -> u64 {
        self.roll(second);
        self.last_second.max(self.this_second)
    }

    fn roll(&mut self, second: u64) {
        if second == self.second {
            return;
        }
        self.last_second = if second == self.second + 1 {
            self.this_second
        } else {
            0
        };
        self.second = second;
        self.this_second = 0;
    }
}

/// Counters for `/readyz` and metrics.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub embedded: AtomicU64,
    pub failed_batches: AtomicU64,
}

/// What ingest tells the worker: that traces were queued (`wake`), and how fast (`rate`).
#[derive(Debug, Default)]
pub struct IngestSignals {
    pub wake: Notify,
    pub rate: IngestRate,
}

/// Embeds queued traces until `stop` turns true.
pub async fn run(
    store: Arc<dyn Store>,
    embedder: Arc<Embedder>,
    clock: Arc<dyn Clock>,
    config: WorkerConfig,
    stats: Arc<WorkerStats>,
    ingest: Arc<IngestSignals>,
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
        yield_to_ingest(&ingest.rate, &config, &mut stop).await;
        let pause = IngestPause {
            rate: &ingest.rate,
            config: &config,
            stop: &mut stop,
        };
        let embedded = embed_claimed(store.as_ref(), &embedder, clock.as_ref(), &config, pause);
        let idle = match embedded.await {
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
                // The next turn yields to the ingest that woke it, if heavy.
                _ = ingest.wake.notified() => settle_after_wake(&mut stop).await,
                _ = tokio::time::sleep(config.poll_interval) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// How long a worker woken by ingest waits before it claims a batch: the first traces of a
/// burst wake it before the burst shows in the rate, and a batch begun then took ~0.4 s of CPU
/// from the burst's start (~4 % of a 100k-span OTLP run, BENCHMARKS.md). Half a second shows any
/// burst above 4,000 traces/s; a trickle's vectors come that much later.
const WAKE_SETTLE: Duration = Duration::from_millis(500);

/// Waits [`WAKE_SETTLE`] (or until stopped), so that the rate the worker looks at next covers
/// the ingest that woke it.
async fn settle_after_wake(stop: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(WAKE_SETTLE) => {}
        _ = stop.changed() => {}
    }
}

/// Waits while ingest queues more than `config.yield_above` traces per second, at most
/// `config.max_yield`.
async fn yield_to_ingest(
    rate: &IngestRate,
    config: &WorkerConfig,
    stop: &mut watch::Receiver<bool>,
) {
    let traces_per_second = rate.per_second();
    if config.yield_above == 0 || traces_per_second <= config.yield_above {
        return;
    }
    tracing::debug!(traces_per_second, "embedding worker yields to heavy ingest");
    let started = Instant::now();
    while rate.per_second() > config.yield_above && started.elapsed() < config.max_yield {
        tokio::select! {
            _ = tokio::time::sleep(YIELD_POLL) => {}
            _ = stop.changed() => return,
        }
    }
}

/// How many texts of a batch the worker embeds between two looks at the ingest rate.
pub const YIELD_CHUNK: usize = 8;

/// Claims, embeds and stores one batch; returns how many traces it embedded.
pub async fn embed_batch(
    store: &dyn Store,
    embedder: &Embedder,
    clock: &dyn Clock,
    config: &WorkerConfig,
) -> Result<usize, MemoryError> {
    embed_claimed(store, embedder, clock, config, NoPause).await
}

/// What a batch does between two chunks of texts.
trait Pause: Send {
    fn pause(&mut self) -> impl Future<Output = ()> + Send;
}

/// Tools and tests embed batches straight through.
struct NoPause;

impl Pause for NoPause {
    fn pause(&mut self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// The worker yields to heavy ingest.
struct IngestPause<'a> {
    rate: &'a IngestRate,
    config: &'a WorkerConfig,
    stop: &'a mut watch::Receiver<bool>,
}

impl Pause for IngestPause<'_> {
    fn pause(&mut self) -> impl Future<Output = ()> + Send {
        yield_to_ingest(self.rate, self.config, self.stop)
    }
}

/// [`embed_batch`], pausing between chunks of [`YIELD_CHUNK`] texts.
async fn embed_claimed(
    store: &dyn Store,
    embedder: &Embedder,
    clock: &dyn Clock,
    config: &WorkerConfig,
    mut pause: impl Pause,
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
    let mut vectors = Vec::with_capacity(tasks.len());
    for (index, chunk) in tasks.chunks(YIELD_CHUNK).enumerate() {
        if index > 0 {
            pause.pause().await;
        }
        let texts = chunk.iter().map(|task| task.text.clone()).collect();
        vectors.extend(embedder.embed_bulk(texts).await?);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_busier_of_the_last_whole_second_and_this_one() {
        let mut window = RateWindow::default();
        window.add(0, 500);
        window.add(0, 700);
        assert_eq!(window.rate(0), 1_200, "this second so far");
        window.add(1, 100);
        assert_eq!(window.rate(1), 1_200, "the last whole second");
        assert_eq!(window.rate(2), 100, "second 1 is now the last whole one");
        assert_eq!(window.rate(5), 0, "idle seconds in between count as none");
        window.add(5, 3);
        assert_eq!(window.rate(5), 3);
    }

    #[tokio::test]
    async fn a_batch_pauses_between_chunks_of_texts() {
        use feedloop_core::TraceId;
        use feedloop_core::clock::ManualClock;
        use feedloop_core::trace::TracePart;
        use feedloop_store::{IngestBatch, StoreOptions};

        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("feedloop.db").display());
        let store = feedloop_store::open(&url, &StoreOptions::default())
            .await
            .unwrap();
        let start: feedloop_core::Timestamp = "2026-06-01T10:00:00Z".parse().unwrap();
        let project = store.create_project("p", start).await.unwrap().id;
        let traces = (0..20)
            .map(|i| TracePart {
                id: TraceId::parse("id", format!("tr-{i}")).unwrap(),
                input: Some(format!("input {i}")),
                ..TracePart::default()
            })
            .collect();
        let batch = IngestBatch {
            traces,
            feedback: Vec::new(),
        };
        store.ingest(project, batch, start).await.unwrap();
        let embedder =
            Embedder::from_config(&feedloop_embed::EmbedderConfig::Hash { dimensions: 8 })
                .await
                .unwrap();
        let config = WorkerConfig {
            batch_size: 20,
            ..WorkerConfig::default()
        };
        struct Count(usize);
        impl Pause for &mut Count {
            fn pause(&mut self) -> impl Future<Output = ()> + Send {
                self.0 += 1;
                std::future::ready(())
            }
        }
        let mut pauses = Count(0);
        let clock = ManualClock::new(start);
        let embedded = embed_claimed(store.as_ref(), &embedder, &clock, &config, &mut pauses);
        assert_eq!(embedded.await.unwrap(), 20, "the whole batch");
        assert_eq!(pauses.0, 2, "20 texts in chunks of 8: 8 | 8 | 4");
    }

    #[tokio::test]
    async fn the_worker_waits_while_ingest_is_heavy_and_at_most_max_yield() {
        let (_stop_tx, mut stop) = watch::channel(false);
        let config = WorkerConfig {
            yield_above: 10,
            max_yield: Duration::from_millis(300),
            ..WorkerConfig::default()
        };
        let rate = IngestRate::default();
        let started = Instant::now();
        yield_to_ingest(&rate, &config, &mut stop).await;
        assert!(started.elapsed() < YIELD_POLL, "no ingest, no wait");

        rate.add(11);
        let started = Instant::now();
        yield_to_ingest(&rate, &config, &mut stop).await;
        assert!(started.elapsed() >= config.max_yield, "waits while heavy");

        let never = WorkerConfig {
            yield_above: 0,
            ..config
        };
        let started = Instant::now();
        yield_to_ingest(&rate, &never, &mut stop).await;
        assert!(started.elapsed() < YIELD_POLL, "0 never waits");
    }

    #[tokio::test]
    async fn a_worker_woken_by_a_burst_yields_before_its_first_batch() {
        let (_stop_tx, mut stop) = watch::channel(false);
        let config = WorkerConfig {
            yield_above: 1_000,
            max_yield: Duration::from_millis(300),
            ..WorkerConfig::default()
        };
        // The wake comes with the burst's first traces, below the threshold; the rest follows.
        let rate = Arc::new(IngestRate::default());
        rate.add(500);
        let burst = tokio::spawn({
            let rate = rate.clone();
            async move {
                for _ in 0..5 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    rate.add(500);
                }
            }
        });
        let started = Instant::now();
        // What the worker's loop does after a wake: settle, then look at the rate.
        settle_after_wake(&mut stop).await;
        yield_to_ingest(&rate, &config, &mut stop).await;
        assert!(
            started.elapsed() >= WAKE_SETTLE + config.max_yield,
            "settles, sees the burst and yields"
        );
        burst.await.unwrap();
    }
}
