//! all-MiniLM-L6-v2 in process: tokenizers + our BERT forward pass on candle, on worker threads
//! of its own.
//!
//! Two lanes share one copy of the model: an interactive lane for the texts a request waits on
//! (a search or context query) and a bulk lane for background work (the embedding worker,
//! re-indexing). Each lane is a worker thread with a rayon pool of `threads` threads (a setting: on
//! a small machine the HTTP server and the database need the other cores); the bulk lane runs at
//! nice 10, so a query never queues behind a backlog and gets the CPU first when both run.
//! The async side sends jobs through a bounded channel and awaits a oneshot reply, so inference
//! never blocks the async runtime and a burst of callers queues instead of piling up threads.
//! Every step of the forward pass, gemm included, runs on the lane's pool; none uses candle's
//! element-wise ops, so candle's own spinning pool (`CANDLE_NUM_THREADS`) and `RAYON_NUM_THREADS`
//! play no part. Jobs waiting in a lane's queue are merged into one run; texts are sorted by token
//! count and run in packed sub-batches, so no time goes to padding.

mod bert;
mod kernels;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokenizers::{Tokenizer, TruncationParams};
use tokio::sync::{mpsc, oneshot};

use crate::{EmbedError, l2_normalize, model};
use bert::Bert;

/// The id stored with every vector the local model writes.
pub const MODEL_ID: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// Tokens per text beyond which the rest is ignored (`max_seq_length` of the model).
pub const MAX_SEQ_LENGTH: usize = 256;

/// Jobs that may wait for the worker before callers wait to enqueue.
const QUEUE_CAPACITY: usize = 64;
/// Texts merged into one worker run at most (from several queued jobs).
const MAX_TEXTS_PER_RUN: usize = 256;
/// Tokens in one packed forward pass at most: bounds the activations (~30 KB per token).
const MAX_TOKENS_PER_PASS: usize = 8192;
/// Characters of a text that are tokenised at most: far more than 256 tokens ever need, and a
/// bound on the tokenizer's work for a huge input.
const MAX_TEXT_CHARS: usize = 100_000;

type Reply = oneshot::Sender<Result<Vec<Vec<f32>>, EmbedError>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// all-MiniLM-L6-v2 (384 dimensions), run by two worker threads (interactive and bulk).
#[derive(Debug, Clone)]
pub struct MiniLm {
    interactive: mpsc::Sender<Job>,
    bulk: mpsc::Sender<Job>,
    dimensions: usize,
}

/// Which lane a call takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Interactive,
    Bulk,
}

impl MiniLm {
    /// Loads the model from `model_dir` and starts both lanes, each using `threads` threads for
    /// inference. Fails with [`EmbedError::ModelMissing`] when the files are not there.
    pub async fn load(model_dir: &Path, threads: usize) -> Result<Self, EmbedError> {
        if threads == 0 {
            return Err(EmbedError::Config(
                "local embedder threads must be at least 1".into(),
            ));
        }
        if !model::is_present(model_dir) {
            return Err(EmbedError::ModelMissing {
                dir: model_dir.to_owned(),
            });
        }
        let dir = model_dir.to_owned();
        let model = tokio::task::spawn_blocking(move || Model::load(&dir))
            .await
            .map_err(|_| EmbedError::WorkerStopped)??;
        let model = Arc::new(model);
        let dimensions = model.bert.hidden_size();
        let interactive = Worker::start(model.clone(), threads, Lane::Interactive).await?;
        let bulk = Worker::start(model, threads, Lane::Bulk).await?;
        tracing::info!(dir = %model_dir.display(), threads, "local embedding model loaded");
        Ok(MiniLm {
            interactive,
            bulk,
            dimensions,
        })
    }

    /// `sentence-transformers/all-MiniLM-L6-v2`.
    pub fn model_id(&self) -> &str {
        MODEL_ID
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// One L2-normalised vector per text, in order, on the interactive lane: for texts a
    /// request waits on. Texts longer than 256 tokens are cut.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        Self::send(&self.interactive, texts).await
    }

    /// [`Self::embed`] on the bulk lane: for background work, which yields to queries.
    pub async fn embed_bulk(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, EmbedError> {
        Self::send(&self.bulk, texts).await
    }

    async fn send(
        lane: &mpsc::Sender<Job>,
        texts: Vec<String>,
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = oneshot::channel();
        lane.send(Job { texts, reply })
            .await
            .map_err(|_| EmbedError::WorkerStopped)?;
        answer.await.map_err(|_| EmbedError::WorkerStopped)?
    }
}

/// Runs this thread, and the inference threads it starts (they inherit it), at nice 10: on a
/// busy machine, ingest, queries and the interactive lane go first and bulk embedding takes the
/// CPU they leave. The queue waits instead; nothing is lost.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: setpriority only reads its arguments; on Linux, `who = 0` with PRIO_PROCESS
        // names the calling thread.
        let result = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
        if result != 0 {
            tracing::debug!("cannot lower the embedding thread's priority");
        }
    }
}

/// The weights and the tokenizer, shared by both lanes.
struct Model {
    bert: Bert,
    tokenizer: Tokenizer,
}

impl Model {
    fn load(dir: &Path) -> Result<Self, EmbedError> {
        let bert = Bert::load(dir)?;
        let tokenizer_path: PathBuf = dir.join("tokenizer.json");
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path)
            .map_err(|err| EmbedError::invalid_model(&tokenizer_path, err))?;
        // tokenizer.json pads and cuts at 128; sentence-transformers cuts at max_seq_length (256)
        // and pads per batch. We never pad: batches are packed.
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_SEQ_LENGTH.min(bert.max_positions()),
                ..TruncationParams::default()
            }))
            .map_err(|err| EmbedError::invalid_model(&tokenizer_path, err))?;
        tokenizer.with_padding(None);
        Ok(Model { bert, tokenizer })
    }
}

/// One lane's worker thread.
struct Worker {
    model: Arc<Model>,
    pool: rayon::ThreadPool,
}

impl Worker {
    /// Starts the lane's thread (and its pool, from that thread, so that the pool inherits its
    /// priority); returns the lane's queue once the pool runs.
    async fn start(
        model: Arc<Model>,
        threads: usize,
        lane: Lane,
    ) -> Result<mpsc::Sender<Job>, EmbedError> {
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let (ready, started) = oneshot::channel();
        let name = match lane {
            Lane::Interactive => "feedloop-embed",
            Lane::Bulk => "feedloop-embed-bulk",
        };
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                if lane == Lane::Bulk {
                    lower_priority();
                }
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(move |index| format!("{name}-{index}"))
                    .build()
                    .map_err(|err| EmbedError::Inference(format!("cannot start threads: {err}")));
                match pool {
                    Ok(pool) => {
                        if ready.send(Ok(())).is_ok() {
                            Worker { model, pool }.run(queue);
                        }
                    }
                    Err(err) => {
                        let _ = ready.send(Err(err));
                    }
                }
            })
            .map_err(|err| EmbedError::Inference(format!("cannot start the worker: {err}")))?;
        started.await.map_err(|_| EmbedError::WorkerStopped)??;
        Ok(jobs)
    }

    fn run(self, mut queue: mpsc::Receiver<Job>) {
        while let Some(first) = queue.blocking_recv() {
            // Merge what is already waiting: one bigger run uses the cores better.
            let mut jobs = vec![first];
            let mut num_texts = jobs[0].texts.len();
            while num_texts < MAX_TEXTS_PER_RUN {
                match queue.try_recv() {
                    Ok(job) => {
                        num_texts += job.texts.len();
                        jobs.push(job);
                    }
                    Err(_) => break,
                }
            }
            self.pool.install(|| self.run_jobs(jobs));
        }
    }

    fn run_jobs(&self, jobs: Vec<Job>) {
        // Tokenise per job, so a text the tokenizer rejects fails only its own job.
        let mut pending: Vec<(Reply, Vec<tokenizers::Encoding>)> = Vec::with_capacity(jobs.len());
        for job in jobs {
            match self.tokenize(&job.texts) {
                Ok(encodings) => pending.push((job.reply, encodings)),
                Err(err) => {
                    let _ = job.reply.send(Err(err));
                }
            }
        }
        let sequences: Vec<&[u32]> = pending
            .iter()
            .flat_map(|(_, encodings)| encodings.iter().map(|encoding| encoding.get_ids()))
            .collect();
        match self.embed_sequences(&sequences) {
            Ok(vectors) => {
                let mut vectors = vectors.into_iter();
                for (reply, encodings) in pending {
                    let _ = reply.send(Ok(vectors.by_ref().take(encodings.len()).collect()));
                }
            }
            Err(err) => {
                tracing::error!(error = %err, "local embedding failed");
                for (reply, _) in pending {
                    let _ = reply.send(Err(EmbedError::Inference(err.to_string())));
                }
            }
        }
    }

    fn tokenize(&self, texts: &[String]) -> Result<Vec<tokenizers::Encoding>, EmbedError> {
        let inputs: Vec<&str> = texts
            .iter()
            .map(|text| match text.char_indices().nth(MAX_TEXT_CHARS) {
                Some((end, _)) => &text[..end],
                None => text.as_str(),
            })
            .collect();
        self.model
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|err| EmbedError::Tokenizer(err.to_string()))
    }

    /// Vectors for token sequences, in their order: sorted by length into packed passes of
    /// similar lengths, then put back in order.
    fn embed_sequences(&self, sequences: &[&[u32]]) -> candle_core::Result<Vec<Vec<f32>>> {
        let mut order: Vec<usize> = (0..sequences.len()).collect();
        order.sort_by_key(|&index| sequences[index].len());
        let mut vectors: Vec<Vec<f32>> = vec![Vec::new(); sequences.len()];
        let mut start = 0;
        while start < order.len() {
            let mut end = start;
            let mut num_tokens = 0;
            while end < order.len()
                && (end == start || num_tokens + sequences[order[end]].len() <= MAX_TOKENS_PER_PASS)
            {
                num_tokens += sequences[order[end]].len();
                end += 1;
            }
            let batch: Vec<&[u32]> = order[start..end]
                .iter()
                .map(|&index| sequences[index])
                .collect();
            for (&index, mut vector) in order[start..end]
                .iter()
                .zip(self.model.bert.forward(&batch)?)
            {
                l2_normalize(&mut vector);
                vectors[index] = vector;
            }
            start = end;
        }
        Ok(vectors)
    }
}
