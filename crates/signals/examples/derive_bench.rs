//! Does the derived-signal job keep up with 1,000 new traces per second? Against a real store
//! (SQLite in a temporary directory, or PostgreSQL with `--postgres URL`):
//!
//! 1. **backlog**: stores `--backlog` traces in sessions of four turns (with 384-dimension
//!    vectors written through the store's embedding queue, as the embedding worker does, and a
//!    copy signal on every tenth answer), then times one job run over all of them;
//! 2. **steady**: ingests `--rate` traces per second for `--secs` seconds (same shape) while the
//!    job runs every `--interval-ms`, as a replica's scheduler would, and reports the lag of
//!    the job behind the newest vector at the end of each run, and the time to catch up.
//!
//! The vectors are synthetic (a random unit vector per session topic plus noise, so that some
//! follow-ups are rephrases): the model itself runs at ~100 sentences/s on 2 cores and is
//! measured by `crates/embed/examples/embed_throughput.rs`; this measures the job alone.
//!
//!     cargo run --release -p feedloop-signals --example derive_bench -- --backlog 50000 --rate 1000 --secs 30

#![allow(clippy::unwrap_used)] // a benchmark

use feedloop_core::feedback::{Feedback, FeedbackValue, Signal, Source};
use feedloop_core::trace::TracePart;
use feedloop_core::{FeedbackId, ProjectId, Timestamp, TraceId};
use feedloop_signals::SignalEngine;
use feedloop_store::embeddings::NewEmbedding;
use feedloop_store::{IngestBatch, Store, StoreOptions};
use jiff::SignedDuration;
use serde_json::Map;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const MODEL: &str = "bench-model";
const DIMENSIONS: usize = 384;
const TURNS_PER_SESSION: u64 = 4;

struct Args {
    backlog: u64,
    rate: u64,
    secs: u64,
    interval_ms: u64,
    postgres: Option<String>,
}

fn args() -> Args {
    let mut parsed = Args {
        backlog: 50_000,
        rate: 1_000,
        secs: 30,
        interval_ms: 1_000,
        postgres: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().expect("every flag takes a value");
        match flag.as_str() {
            "--backlog" => parsed.backlog = value.parse().unwrap(),
            "--rate" => parsed.rate = value.parse().unwrap(),
            "--secs" => parsed.secs = value.parse().unwrap(),
            "--interval-ms" => parsed.interval_ms = value.parse().unwrap(),
            "--postgres" => parsed.postgres = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    parsed
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f32 {
        (self.next() % 2_000_001) as f32 / 1_000_000.0 - 1.0
    }
}

fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

const QUERIES: [&str; 6] = [
    "How do I reset my password?",
    "I forgot my password, how can I change it?",
    "What is the fee for international transfers?",
    "That's wrong, the website says 2 percent",
    "Show my account balance",
    "Can I order a second card?",
];

/// Stores traces `first..first + n` (sessions of four turns, a second apart) with their vectors
/// and a copy on every tenth answer.
async fn ingest(
    store: &dyn Store,
    project: ProjectId,
    rng: &mut Rng,
    first: u64,
    n: u64,
    start: Timestamp,
    now: Timestamp,
) {
    let mut traces = Vec::with_capacity(n as usize);
    let mut feedback = Vec::new();
    for i in first..first + n {
        let session = i / TURNS_PER_SESSION;
        let id = TraceId::parse("id", format!("t{i}")).unwrap();
        traces.push(TracePart {
            id: id.clone(),
            session_id: Some(format!("s{session}")),
            input: Some(QUERIES[(rng.next() % QUERIES.len() as u64) as usize].to_owned()),
            output: Some("an answer".to_owned()),
            started_at: Some(
                start
                    .saturating_add(SignedDuration::from_secs(i as i64 / 50))
                    .unwrap(),
            ),
            ..TracePart::default()
        });
        if i % 10 == 0 {
            feedback.push(Feedback {
                id: FeedbackId::parse("id", format!("copy-{i}")).unwrap(),
                trace_id: id,
                span_id: None,
                session_id: None,
                source: Source::EndUser,
                author: None,
                author_role: None,
                confidence: None,
                metadata: Map::new(),
                created_at: None,
                value: FeedbackValue::Signal(Signal {
                    signal_type: "copy".into(),
                    value: None,
                    details: Map::new(),
                }),
            });
        }
    }
    store
        .ingest(project, IngestBatch { traces, feedback }, now)
        .await
        .unwrap();
    // The embedding worker's part, with synthetic vectors: a topic per session plus noise.
    let lease = now.saturating_add(SignedDuration::from_mins(5)).unwrap();
    loop {
        let tasks = store
            .claim_embedding_tasks(n as u32, now, lease)
            .await
            .unwrap();
        if tasks.is_empty() {
            break;
        }
        let vectors = tasks
            .iter()
            .map(|task| {
                let mut topic = Rng(task.trace_seq as u64 / TURNS_PER_SESSION + 1);
                let noise = 0.3 + (rng.next() % 100) as f32 / 100.0;
                let vector = (0..DIMENSIONS)
                    .map(|_| topic.unit() + noise * rng.unit())
                    .collect();
                NewEmbedding {
                    trace_seq: task.trace_seq,
                    generation: task.generation,
                    vector: normalise(vector),
                }
            })
            .collect();
        store.store_embeddings(MODEL, vectors, now).await.unwrap();
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_owned()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let url = match &args.postgres {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let store = feedloop_store::open(&url, &StoreOptions::default())
        .await
        .unwrap();
    let now = Timestamp::now();
    let name = format!("bench-{}", now.as_microsecond());
    let project = store.create_project(&name, now).await.unwrap().id;
    let engine = Arc::new(SignalEngine::new(store.clone(), MODEL));
    let start = now.saturating_sub(SignedDuration::from_hours(2)).unwrap();
    let mut rng = Rng(42);
    println!(
        "store: {}",
        if args.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    );

    // 1. A backlog, then one run over it.
    let began = Instant::now();
    let mut stored = 0;
    while stored < args.backlog {
        let n = 1_000.min(args.backlog - stored);
        ingest(&*store, project, &mut rng, stored, n, start, now).await;
        stored += n;
    }
    println!(
        "backlog: stored {stored} traces with vectors in {:.1?}",
        began.elapsed()
    );
    let began = Instant::now();
    let report = engine.run(Timestamp::now()).await.unwrap();
    let secs = began.elapsed().as_secs_f64();
    println!(
        "backlog: one job run in {secs:.2} s = {:.0} traces/s ({report:?}); load average {}",
        report.num_traces_checked as f64 / secs,
        load_average()
    );

    // 2. Steady ingest at `rate` with the job running beside it.
    let done = Arc::new(AtomicBool::new(false));
    let ingested = Arc::new(AtomicU64::new(0));
    let job = {
        let (engine, done, ingested) = (engine.clone(), done.clone(), ingested.clone());
        let interval = Duration::from_millis(args.interval_ms);
        tokio::spawn(async move {
            let mut lags = Vec::new();
            let mut busy = Duration::ZERO;
            let mut checked = 0;
            loop {
                let finishing = done.load(Ordering::SeqCst);
                let began = Instant::now();
                let report = engine.run(Timestamp::now()).await.unwrap();
                busy += began.elapsed();
                checked += report.num_traces_checked;
                // Traces stored (with vectors) that no run has judged yet.
                let behind = ingested.load(Ordering::SeqCst).saturating_sub(checked);
                lags.push(behind);
                if finishing && behind == 0 {
                    return (lags, busy, checked);
                }
                tokio::time::sleep(interval.saturating_sub(began.elapsed())).await;
            }
        })
    };
    let began = Instant::now();
    let per_tick = args.rate / 10;
    let ticks = args.secs * 10;
    let mut next = stored;
    for tick in 0..ticks {
        ingest(
            &*store,
            project,
            &mut rng,
            next,
            per_tick,
            start,
            Timestamp::now(),
        )
        .await;
        next += per_tick;
        ingested.fetch_add(per_tick, Ordering::SeqCst);
        let due = Duration::from_millis(100 * (tick + 1));
        tokio::time::sleep(due.saturating_sub(began.elapsed())).await;
    }
    let ingest_secs = began.elapsed().as_secs_f64();
    done.store(true, Ordering::SeqCst);
    let (lags, busy, checked) = job.await.unwrap();
    let caught_up = began.elapsed().as_secs_f64();
    println!(
        "steady: ingested {} traces in {ingest_secs:.1} s ({:.0}/s); the job checked {checked} in {:.1} s of work \
         ({:.0} traces/s while busy); traces not yet judged after each run: max {}, last {}; caught up {:.1} s after the start; load average {}",
        next - stored,
        (next - stored) as f64 / ingest_secs,
        busy.as_secs_f64(),
        checked as f64 / busy.as_secs_f64(),
        lags.iter().max().unwrap(),
        lags.last().unwrap(),
        caught_up,
        load_average()
    );
}
