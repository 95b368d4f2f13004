//! Export throughput: a dataset of `--items` items (default 100,000) on a fresh SQLite store,
//! each from a trace with a stored 384-d vector, exported with near-duplicate removal and PII
//! scrubbing on, in each format. About 5 % of the inputs are planted near-duplicates (another
//! item's input in capitals) and 5 % carry an e-mail address and a card number.
//!
//! Run: `cargo run --release -p feedloop-datasets --example export_bench -- --items 100000`.
//! Vectors come from the hash embedder (feature hashing), stored the way the embedding worker
//! stores them, so the export reads stored vectors as it does in production; the figure covers
//! reading items, the vector look-ups, dedup, scrubbing, splitting and rendering.

#![allow(clippy::unwrap_used)] // a benchmark program

use feedloop_core::dataset::{
    DatasetItem, ItemOrigin, ItemProvenance, ItemSource, derived_item_id,
};
use feedloop_core::pii::PiiMode;
use feedloop_core::trace::TracePart;
use feedloop_core::{Timestamp, TraceId};
use feedloop_datasets::{ExportFormat, ExportOptions, run_export};
use feedloop_embed::{Embedder, EmbedderConfig};
use feedloop_memory::{MemoryConfig, SemanticMemory};
use feedloop_store::embeddings::NewEmbedding;
use feedloop_store::{IngestBatch, StoreOptions};
use std::sync::Arc;
use std::time::Instant;

const WORDS: [&str; 48] = [
    "account",
    "card",
    "transfer",
    "refund",
    "password",
    "limit",
    "fee",
    "loan",
    "savings",
    "statement",
    "branch",
    "mobile",
    "app",
    "pin",
    "cheque",
    "deposit",
    "overdraft",
    "currency",
    "exchange",
    "abroad",
    "blocked",
    "stolen",
    "lost",
    "delivery",
    "address",
    "name",
    "joint",
    "business",
    "interest",
    "rate",
    "mortgage",
    "insurance",
    "payment",
    "pending",
    "declined",
    "cash",
    "atm",
    "wallet",
    "contactless",
    "verify",
    "identity",
    "close",
    "open",
    "upgrade",
    "student",
    "travel",
    "notice",
    "salary",
];

fn sentence(seed: u64) -> String {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut words = Vec::with_capacity(12);
    for _ in 0..12 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        words.push(WORDS[(state >> 33) as usize % WORDS.len()]);
    }
    format!("how do I {} (case {seed})?", words.join(" "))
}

#[tokio::main]
async fn main() {
    let mut num_items: u64 = 100_000;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--items" {
            num_items = args.next().unwrap().parse().unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let options = StoreOptions {
        sqlite_sync_full: false,
        ..StoreOptions::default()
    };
    let store = feedloop_store::open(&url, &options).await.unwrap();
    let now = Timestamp::now();
    let project = store.create_project("bench", now).await.unwrap().id;
    let embedder = Embedder::from_config(&EmbedderConfig::Hash { dimensions: 384 })
        .await
        .unwrap();

    let setup = Instant::now();
    let input = |i: u64| {
        if i % 20 == 19 {
            sentence(i - 7).to_uppercase() // a near-duplicate of an earlier item
        } else if i % 20 == 11 {
            format!(
                "{} mail me at user{i}@example.com, card 4111 1111 1111 1111",
                sentence(i)
            )
        } else {
            sentence(i)
        }
    };
    for start in (0..num_items).step_by(1_000) {
        let traces = (start..(start + 1_000).min(num_items))
            .map(|i| TracePart {
                id: TraceId::parse("id", format!("t{i}")).unwrap(),
                input: Some(input(i)),
                output: Some(format!("answer {i}")),
                ..TracePart::default()
            })
            .collect();
        let batch = IngestBatch {
            traces,
            feedback: Vec::new(),
        };
        store.ingest(project, batch, now).await.unwrap();
    }
    loop {
        let tasks = store
            .claim_embedding_tasks(
                2_000,
                now,
                Timestamp::now() + jiff::SignedDuration::from_secs(600),
            )
            .await
            .unwrap();
        if tasks.is_empty() {
            break;
        }
        let texts: Vec<String> = tasks.iter().map(|t| t.text.clone()).collect();
        let vectors = embedder.embed_bulk(texts).await.unwrap();
        let new = tasks
            .iter()
            .zip(vectors)
            .map(|(task, vector)| NewEmbedding {
                trace_seq: task.trace_seq,
                generation: task.generation,
                vector,
            })
            .collect();
        store
            .store_embeddings(embedder.model_id(), new, now)
            .await
            .unwrap();
    }
    store
        .create_dataset(
            project,
            &feedloop_core::dataset::Dataset {
                name: "bench".into(),
                description: None,
                created_at: now,
                created_by: None,
            },
        )
        .await
        .unwrap();
    for start in (0..num_items).step_by(1_000) {
        let items: Vec<DatasetItem> = (start..(start + 1_000).min(num_items))
            .map(|i| {
                let trace_id = TraceId::parse("id", format!("t{i}")).unwrap();
                let mut item = DatasetItem {
                    id: derived_item_id(""),
                    input: input(i),
                    context: Default::default(),
                    ideal_output: Some(format!("the corrected answer {i}")),
                    rejected_output: Some(format!("answer {i}")),
                    source: ItemSource::Correction,
                    categories: vec!["incomplete".into()],
                    annotations: Vec::new(),
                    comments: Vec::new(),
                    provenance: ItemProvenance {
                        origin: ItemOrigin::Filter,
                        trace_id: Some(trace_id),
                        compared_trace_id: None,
                        feedback_ids: Vec::new(),
                        added_by: "bench".into(),
                        added_at: now,
                    },
                };
                item.id = derived_item_id(&item.provenance_key().unwrap());
                item
            })
            .collect();
        store
            .add_dataset_items(project, "bench", &items)
            .await
            .unwrap();
    }
    println!(
        "setup: {num_items} traces, vectors and items in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let memory = Arc::new(SemanticMemory::new(
        store.clone(),
        embedder,
        MemoryConfig {
            run_worker: false,
            ..MemoryConfig::default()
        },
    ));
    for format in ExportFormat::ALL {
        let options = ExportOptions {
            format,
            dedup_threshold: Some(0.95),
            pii: PiiMode::Mask,
            ..ExportOptions::default()
        };
        let (sender, mut receiver) =
            tokio::sync::mpsc::channel::<feedloop_datasets::ExportEvent>(1_024);
        let drain = tokio::spawn(async move {
            let (mut lines, mut bytes) = (0u64, 0u64);
            while let Some(event) = receiver.recv().await {
                lines += 1;
                bytes += event.line.len() as u64 + 1;
            }
            (lines, bytes)
        });
        let started = Instant::now();
        let manifest = run_export(
            store.clone(),
            memory.clone(),
            project,
            "bench",
            &options,
            sender,
        )
        .await
        .unwrap();
        let (lines, bytes) = drain.await.unwrap();
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "{:<10} {} items in {seconds:.2} s: {:.0} items/s, {lines} lines ({:.1} MB), {} duplicates removed, {} PII findings scrubbed",
            format.as_str(),
            manifest.counts.items,
            manifest.counts.items as f64 / seconds,
            bytes as f64 / 1e6,
            manifest.counts.duplicates_removed,
            manifest.pii.total(),
        );
    }
}
