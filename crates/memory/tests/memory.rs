//! Semantic memory against a real SQLite store: the worker's crash safety, index persistence,
//! and the separation of models.

#![allow(clippy::unwrap_used)] // test code

use std::collections::HashSet;
use std::sync::Arc;

use feedloop_core::clock::{Clock, ManualClock};
use feedloop_core::trace::TracePart;
use feedloop_core::{ProjectId, Timestamp, TraceId};
use feedloop_embed::{Embedder, EmbedderConfig};
use feedloop_memory::worker::{self, WorkerConfig};
use feedloop_memory::{MemoryConfig, Query, SearchRequest, SemanticMemory};
use feedloop_store::{IngestBatch, Store, StoreOptions};

async fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let url = format!("sqlite://{}", dir.path().join("feedloop.db").display());
    feedloop_store::open(&url, &StoreOptions::default())
        .await
        .unwrap()
}

async fn hash(dimensions: usize) -> Embedder {
    Embedder::from_config(&EmbedderConfig::Hash { dimensions })
        .await
        .unwrap()
}

fn start() -> Timestamp {
    "2026-06-01T10:00:00Z".parse().unwrap()
}

fn trace(id: &str, input: &str) -> TracePart {
    TracePart {
        id: TraceId::parse("id", id).unwrap(),
        input: Some(input.to_owned()),
        ..TracePart::default()
    }
}

/// Runs the worker's batches until the queue has nothing claimable.
async fn drain(store: &dyn Store, embedder: &Embedder, clock: &dyn Clock, config: &WorkerConfig) {
    while worker::embed_batch(store, embedder, clock, config)
        .await
        .unwrap()
        > 0
    {}
}

async fn search_text(
    memory: &SemanticMemory,
    project: ProjectId,
    text: &str,
    k: usize,
) -> Vec<feedloop_memory::SearchHit> {
    let request = SearchRequest {
        query: Query::Text(text.into()),
        k,
        filter: Default::default(),
        problems_only: false,
    };
    memory.search(project, &request).await.unwrap()
}

/// Creates a project with `num` traces whose inputs are "trace input <i>".
async fn project_with_traces(store: &dyn Store, num: usize) -> ProjectId {
    let project = store.create_project("p", start()).await.unwrap();
    let traces = (0..num)
        .map(|i| {
            trace(
                &format!("tr-{i}"),
                &format!("trace input {i} {}", ["red", "green", "blue"][i % 3]),
            )
        })
        .collect();
    store
        .ingest(
            project.id,
            IngestBatch {
                traces,
                feedback: Vec::new(),
            },
            start(),
        )
        .await
        .unwrap();
    project.id
}

#[tokio::test]
async fn a_worker_that_dies_mid_batch_loses_nothing_and_embeds_each_trace_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    project_with_traces(store.as_ref(), 100).await;
    let embedder = hash(16).await;
    let clock = ManualClock::new(start());
    let config = WorkerConfig {
        batch_size: 30,
        ..WorkerConfig::default()
    };

    // A worker claims a batch and dies before storing it.
    let lease_until = start().checked_add(config.lease).unwrap();
    let lost = store
        .claim_embedding_tasks(30, clock.now(), lease_until)
        .await
        .unwrap();
    assert_eq!(lost.len(), 30);
    // Another worker embeds the rest, but not the dead one's claim while its lease lasts.
    drain(store.as_ref(), &embedder, &clock, &config).await;
    assert_eq!(store.embedding_backlog().await.unwrap(), 30);
    // Once the lease ends, the claim is taken over.
    clock.advance(
        jiff::SignedDuration::try_from(config.lease).unwrap() + jiff::SignedDuration::from_secs(1),
    );
    drain(store.as_ref(), &embedder, &clock, &config).await;
    assert_eq!(store.embedding_backlog().await.unwrap(), 0);

    let stored = store.embeddings_since("hash-16", 0, 10_000).await.unwrap();
    let traces: HashSet<i64> = stored.iter().map(|e| e.trace_seq).collect();
    assert_eq!(stored.len(), 100, "one vector per trace");
    assert_eq!(traces.len(), 100);
    for task in lost {
        assert!(traces.contains(&task.trace_seq));
    }
}

#[tokio::test]
async fn saved_indexes_load_at_start_and_catch_up_with_what_came_since() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let project = project_with_traces(store.as_ref(), 50).await;
    let config = MemoryConfig {
        index_dir: Some(dir.path().join("vectors")),
        ..MemoryConfig::default()
    };
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(start()));
    let embedder = hash(16).await;
    drain(
        store.as_ref(),
        &embedder,
        clock.as_ref(),
        &WorkerConfig::default(),
    )
    .await;
    let memory = SemanticMemory::new(store.clone(), embedder.clone(), config.clone());
    assert_eq!(memory.catch_up().await.unwrap(), 50);
    memory.indexes().save().unwrap();
    let saved_at = memory.indexes().applied_seq();
    drop(memory);

    // A restart loads the saved indexes: nothing to replay.
    let memory = SemanticMemory::new(store.clone(), embedder.clone(), config.clone());
    assert_eq!(memory.indexes().applied_seq(), saved_at);
    assert_eq!(memory.indexes().num_vectors(), 50);
    assert_eq!(memory.catch_up().await.unwrap(), 0);

    // Vectors stored while it was down are applied on catch-up.
    let more = trace("tr-new", "a brand new question");
    store
        .ingest(
            project,
            IngestBatch {
                traces: vec![more],
                feedback: Vec::new(),
            },
            start(),
        )
        .await
        .unwrap();
    drain(
        store.as_ref(),
        &embedder,
        clock.as_ref(),
        &WorkerConfig::default(),
    )
    .await;
    assert_eq!(memory.catch_up().await.unwrap(), 1);
    let hits = search_text(&memory, project, "a brand new question", 1).await;
    assert_eq!(hits[0].trace.trace.id.as_str(), "tr-new");

    // A corrupt saved index is rebuilt from the store rather than trusted.
    memory.indexes().save().unwrap();
    drop(memory);
    for entry in std::fs::read_dir(dir.path().join("vectors")).unwrap() {
        let model_dir = entry.unwrap().path();
        for file in std::fs::read_dir(&model_dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "vectors") {
                std::fs::write(&file, b"not an index").unwrap();
            }
        }
    }
    let memory = SemanticMemory::new(store.clone(), embedder, config);
    assert_eq!(memory.indexes().num_vectors(), 0);
    assert_eq!(memory.catch_up().await.unwrap(), 51);
}

#[tokio::test]
async fn a_new_model_reembeds_everything_and_never_mixes_with_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir).await;
    let project = project_with_traces(store.as_ref(), 40).await;
    let clock = ManualClock::new(start());
    let old = hash(16).await;
    drain(store.as_ref(), &old, &clock, &WorkerConfig::default()).await;
    // The model changes: every trace is queued again, for the new model only.
    let new = hash(32).await;
    assert_eq!(
        store
            .queue_missing_embeddings(new.model_id())
            .await
            .unwrap(),
        40
    );
    assert_eq!(
        store
            .queue_missing_embeddings(new.model_id())
            .await
            .unwrap(),
        0,
        "queued once"
    );
    drain(store.as_ref(), &new, &clock, &WorkerConfig::default()).await;
    assert_eq!(
        store
            .embeddings_since("hash-16", 0, 1000)
            .await
            .unwrap()
            .len(),
        40
    );
    assert_eq!(
        store
            .embeddings_since("hash-32", 0, 1000)
            .await
            .unwrap()
            .len(),
        40
    );

    let memory = SemanticMemory::new(store.clone(), new, MemoryConfig::default());
    assert_eq!(
        memory.catch_up().await.unwrap(),
        40,
        "only the new model's vectors"
    );
    let hits = search_text(&memory, project, "trace input 7 green", 40).await;
    assert_eq!(hits.len(), 40);
    assert_eq!(hits[0].trace.trace.id.as_str(), "tr-7");
}
