//! Micro-benchmarks of the CPU work on the ingest path, apart from HTTP and SQLite: parsing and
//! validating request bodies (what a handler does before the store sees the batch), and the
//! per-item work of the store's writer thread (content hash, merging, the JSON `doc` column).
//!
//! The bodies are the ones `feedloop bench` sends, so these figures explain its figures. Run with
//! `cargo bench -p feedloop --bench hot_paths`; each benchmark measures for 3 s.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use feedloop::cli::bench::payload::{Corpus, Generator};
use feedloop_core::Timestamp;
use feedloop_core::feedback::Feedback;
use feedloop_core::trace::{Trace, TracePart};
use feedloop_server::extract::parse_json;
use feedloop_server::wire::{FeedbackBody, TraceBody};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const BATCH: usize = 500;
const TEXT_BYTES: usize = 1024;
const STARTED_AT: &str = "2026-01-01T00:00:00Z";

fn generator() -> Generator {
    Generator::new(
        Arc::new(Corpus::new(42, TEXT_BYTES)),
        "bench",
        0,
        42,
        TEXT_BYTES,
    )
}

fn to_feedback(bodies: Vec<FeedbackBody>) -> Vec<Feedback> {
    bodies
        .into_iter()
        .map(|body| {
            body.into_feedback(String::new)
                .expect("generated feedback is valid")
        })
        .collect()
}

fn to_parts(bodies: Vec<TraceBody>) -> Vec<TracePart> {
    bodies
        .into_iter()
        .map(|body| {
            body.into_part(String::new)
                .expect("generated traces are valid")
        })
        .collect()
}

/// What a handler does with a batch body before it reaches the store.
fn parse_and_validate(c: &mut Criterion) {
    let feedback_body = generator().feedback_batch(BATCH);
    let trace_body = generator().trace_batch(BATCH, STARTED_AT);
    let mut group = c.benchmark_group("parse_and_validate");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("feedback_batch_500/serde_json", |b| {
        b.iter(|| {
            let bodies: Vec<FeedbackBody> =
                serde_json::from_slice(black_box(&feedback_body)).expect("valid json");
            to_feedback(bodies)
        })
    });
    // The server parses through serde_path_to_error so that errors name the field.
    group.bench_function("feedback_batch_500/server_parse_json", |b| {
        b.iter(|| {
            let bodies: Vec<FeedbackBody> =
                parse_json(black_box(&feedback_body)).expect("valid json");
            to_feedback(bodies)
        })
    });
    group.bench_function("trace_batch_500_1kb/server_parse_json", |b| {
        b.iter(|| {
            let bodies: Vec<TraceBody> = parse_json(black_box(&trace_body)).expect("valid json");
            to_parts(bodies)
        })
    });
    group.finish();

    let trace: TraceBody =
        serde_json::from_slice::<Vec<TraceBody>>(&generator().trace_batch(1, STARTED_AT))
            .expect("valid json")
            .remove(0);
    c.bench_function("trace_1kb/into_part", |b| {
        b.iter_batched(
            || trace.clone(),
            |body| body.into_part(String::new).expect("valid trace"),
            BatchSize::SmallInput,
        )
    });
}

/// Per-item CPU work of the store's writer thread, besides SQLite itself.
fn writer_work(c: &mut Criterion) {
    let now: Timestamp = "2026-01-01T00:00:01Z".parse().expect("valid time");
    let feedback =
        to_feedback(serde_json::from_slice(&generator().feedback_batch(1)).expect("valid json"))
            .remove(0);
    c.bench_function("feedback/content_hash", |b| {
        b.iter(|| black_box(&feedback).content_hash())
    });
    c.bench_function("feedback/doc_json", |b| {
        b.iter(|| serde_json::to_string(black_box(&feedback)).expect("serialises"))
    });

    let mut parts = to_parts(
        serde_json::from_slice(&generator().trace_batch(2, STARTED_AT)).expect("valid json"),
    );
    let later = parts.pop().expect("two parts");
    let first = parts.pop().expect("two parts");
    let stored = Trace::from_part(first.clone(), now);
    c.bench_function("trace_1kb/merge", |b| {
        b.iter_batched(
            || (stored.clone(), later.clone()),
            |(mut trace, part)| {
                trace.merge(part, now);
                trace
            },
            BatchSize::SmallInput,
        )
    });
    c.bench_function("trace_1kb/from_part+doc_json", |b| {
        b.iter_batched(
            || first.clone(),
            |part| serde_json::to_string(&Trace::from_part(part, now)).expect("serialises"),
            BatchSize::SmallInput,
        )
    });
}

criterion_group! {
    name = hot_paths;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30);
    targets = parse_and_validate, writer_work
}
criterion_main!(hot_paths);
