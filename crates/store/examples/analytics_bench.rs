//! How long does a feedback trend take on a big project? Stores `--feedback` feedback items
//! (two per trace, over 30 days, 4 models × 3 versions) in a real store (SQLite in a temporary
//! directory, or PostgreSQL with `--postgres URL` of an empty database), then times
//! `aggregate_feedback` over the 30 days by day, grouped by model version and by model.
//!
//!     cargo run --release -p feedloop-store --example analytics_bench -- --feedback 1000000
//!     cargo run --release -p feedloop-store --example analytics_bench -- --feedback 1000000 \
//!         --postgres postgres://postgres@127.0.0.1:5432/feedloop_bench

#![allow(clippy::unwrap_used)] // a benchmark

use feedloop_core::feedback::{Feedback, FeedbackValue, Rating, Signal, Source};
use feedloop_core::filter::Filter;
use feedloop_core::stats::Bucket;
use feedloop_core::trace::{ModelInfo, TracePart};
use feedloop_core::{FeedbackId, ProjectId, Timestamp, TraceId};
use feedloop_store::analytics::{Dimension, FeedbackQuery};
use feedloop_store::{IngestBatch, Store, StoreOptions};
use jiff::SignedDuration;
use serde_json::Map;
use std::sync::{Arc, LazyLock};
use std::time::Instant;

const DAYS: i64 = 30;
const TRACES_PER_BATCH: u64 = 2_000;

struct Args {
    feedback: u64,
    runs: usize,
    postgres: Option<String>,
    /// A SQLite file to fill (or, when it holds the project already, to reuse).
    sqlite: Option<String>,
}

fn args() -> Args {
    let mut parsed = Args {
        feedback: 1_000_000,
        runs: 20,
        postgres: None,
        sqlite: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().expect("every flag takes a value");
        match flag.as_str() {
            "--feedback" => parsed.feedback = value.parse().unwrap(),
            "--runs" => parsed.runs = value.parse().unwrap(),
            "--postgres" => parsed.postgres = Some(value),
            "--sqlite" => parsed.sqlite = Some(value),
            other => panic!("unknown flag {other}"),
        }
    }
    parsed
}

/// The first day of the data: the 30 days end with today (UTC), as on a live project, so the
/// last bucket is open and always counted from the records.
fn start() -> Timestamp {
    static START: LazyLock<Timestamp> = LazyLock::new(|| {
        let today = Bucket::Day.start_of(Timestamp::now().as_microsecond());
        Timestamp::from_microsecond(today - (DAYS - 1) * Bucket::Day.width_micros()).unwrap()
    });
    *START
}

fn value(i: u64) -> FeedbackValue {
    match i % 10 {
        0 => FeedbackValue::Category(vec!["too_vague".into()]),
        1 => FeedbackValue::Signal(Signal {
            signal_type: "regenerate".into(),
            value: None,
            details: Map::new(),
        }),
        2..=4 => FeedbackValue::Signal(Signal {
            signal_type: "copy".into(),
            value: None,
            details: Map::new(),
        }),
        _ => FeedbackValue::Comment("fine".into()),
    }
}

/// Traces `from..to` with two feedback items each: a thumb (70 % up) and one more item.
fn batch(from: u64, to: u64, num_traces: u64) -> IngestBatch {
    let span = SignedDuration::from_hours(24 * DAYS).as_micros() as u64;
    let mut traces = Vec::new();
    let mut feedback = Vec::new();
    for i in from..to {
        let started = start()
            .saturating_add(SignedDuration::from_micros((i * span / num_traces) as i64))
            .unwrap();
        let id = TraceId::parse("id", format!("t{i}")).unwrap();
        traces.push(TracePart {
            id: id.clone(),
            started_at: Some(started),
            model: ModelInfo {
                name: Some(format!("model-{}", i % 4)),
                provider: None,
                version: Some(format!("v{}", (i / 4) % 3)),
            },
            input: Some("a question".into()),
            output: Some("an answer".into()),
            ..Default::default()
        });
        let created = started
            .saturating_add(SignedDuration::from_secs(60))
            .unwrap();
        let item = |suffix: &str, value: FeedbackValue| Feedback {
            id: FeedbackId::parse("id", format!("f{i}{suffix}")).unwrap(),
            trace_id: id.clone(),
            span_id: None,
            session_id: None,
            source: Source::EndUser,
            author: None,
            author_role: None,
            confidence: None,
            metadata: Map::new(),
            created_at: Some(created),
            value,
        };
        let thumb = FeedbackValue::Rating(Rating {
            value: if i % 10 < 7 { 1.0 } else { 0.0 },
            min: 0.0,
            max: 1.0,
            compared_to: None,
        });
        feedback.push(item("a", thumb));
        feedback.push(item("b", value(i)));
    }
    IngestBatch { traces, feedback }
}

async fn fill(store: &Arc<dyn Store>, project: ProjectId, num_traces: u64) {
    let began = Instant::now();
    let mut from = 0;
    while from < num_traces {
        // Two batches in flight, so that one is prepared while the other commits.
        let mut handles = Vec::new();
        for _ in 0..2 {
            if from >= num_traces {
                break;
            }
            let to = (from + TRACES_PER_BATCH).min(num_traces);
            let store = store.clone();
            let part = batch(from, to, num_traces);
            handles.push(tokio::spawn(async move {
                store.ingest(project, part, start()).await.unwrap();
            }));
            from = to;
        }
        for handle in handles {
            handle.await.unwrap();
        }
    }
    let secs = began.elapsed().as_secs_f64();
    println!(
        "stored {num_traces} traces and {} feedback items in {secs:.1} s",
        num_traces * 2
    );
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Times `runs` runs of `query`, in milliseconds, sorted.
async fn timed(
    store: &Arc<dyn Store>,
    project: ProjectId,
    query: &FeedbackQuery,
    runs: usize,
) -> Vec<f64> {
    let mut millis = Vec::with_capacity(runs);
    for _ in 0..runs {
        let began = Instant::now();
        store.aggregate_feedback(project, query).await.unwrap();
        millis.push(began.elapsed().as_secs_f64() * 1_000.0);
    }
    millis.sort_by(f64::total_cmp);
    millis
}

/// The daily trend over the 30 days grouped by `group_by`: counted from the records alone
/// (`fresh`), then through the bucket cache: the first run (which stores the closed days) and
/// the runs after it (which count only the open day from the records).
async fn time_query(store: &Arc<dyn Store>, project: ProjectId, group_by: Dimension, runs: usize) {
    let mut query = FeedbackQuery {
        from: start(),
        to: start()
            .saturating_add(SignedDuration::from_hours(24 * DAYS))
            .unwrap(),
        bucket: Bucket::Day,
        group_by: Some(group_by.clone()),
        filter: Filter::default(),
        fresh: true,
    };
    let rows = store.aggregate_feedback(project, &query).await.unwrap();
    let total: u64 = rows.iter().map(|r| r.num_feedback).sum();
    let fresh = timed(store, project, &query, runs.div_ceil(3)).await;
    query.fresh = false;
    let first = timed(store, project, &query, 1).await[0];
    let cached = timed(store, project, &query, runs).await;
    let cached_rows = store.aggregate_feedback(project, &query).await.unwrap();
    assert_eq!(cached_rows, rows, "the cache answers as the records do");
    println!(
        "day x {}: {} rows, {total} feedback counted; from the records p50 {:.0} ms ({} runs); \
         cached: first {first:.0} ms, then p50 {:.1} ms, p95 {:.1} ms ({runs} runs)",
        group_by.name(),
        rows.len(),
        percentile(&fresh, 0.5),
        fresh.len(),
        percentile(&cached, 0.5),
        percentile(&cached, 0.95),
    );
}

#[tokio::main]
async fn main() {
    let args = args();
    let dir = tempfile::tempdir().unwrap();
    let url = match (&args.postgres, &args.sqlite) {
        (Some(url), _) => url.clone(),
        (None, Some(path)) => format!("sqlite://{path}"),
        (None, None) => format!("sqlite://{}", dir.path().join("bench.db").display()),
    };
    let store = feedloop_store::open(&url, &StoreOptions::default())
        .await
        .unwrap();
    let project = match store.project_by_name("bench").await.unwrap() {
        Some(project) => project.id,
        None => {
            let project = store.create_project("bench", start()).await.unwrap().id;
            fill(&store, project, args.feedback / 2).await;
            project
        }
    };
    time_query(&store, project, Dimension::ModelVersion, args.runs).await;
    time_query(&store, project, Dimension::Model, args.runs).await;
}
