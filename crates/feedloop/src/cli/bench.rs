//! `feedloop bench`: drives a running server with generated load over HTTP, measures throughput
//! and latency, and checks that the server stored exactly what it acknowledged (the project's
//! counts in `/api/v1/stats` before and after must differ by the acknowledged records).
//!
//! Batch workloads run closed loop (`--concurrency` connections, each sending its next batch when
//! the last is answered); single feedback runs open loop at `--rate` (see [`load`]). Bodies are
//! built cheaply from pre-built text ([`payload`]) because the client shares the machine with the
//! server. The check assumes nothing else writes to the project during the run.

mod load;
pub mod payload;
mod report;

use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::ServerArgs;
use crate::client::Client;
use load::{Plan, Tally};
use payload::{Corpus, Generator};
use report::{RunInfo, Summary};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// Arrays of `--batch-size` feedback items to /api/v1/feedback, closed loop.
    FeedbackBatch,
    /// Arrays of `--batch-size` complete traces to /api/v1/traces, closed loop.
    TraceBatch,
    /// One feedback item per request to /api/v1/feedback, open loop at `--rate`.
    SingleFeedback,
}

impl Workload {
    fn path(self) -> &'static str {
        match self {
            Self::FeedbackBatch | Self::SingleFeedback => "/api/v1/feedback",
            Self::TraceBatch => "/api/v1/traces",
        }
    }

    /// What `/api/v1/stats` must count more of afterwards.
    fn counted(self) -> &'static str {
        match self {
            Self::FeedbackBatch | Self::SingleFeedback => "feedback",
            Self::TraceBatch => "traces",
        }
    }

    /// Makes one request body of `n` records (1 for single feedback).
    fn body_maker(self) -> fn(&mut Generator, usize) -> Vec<u8> {
        match self {
            Self::FeedbackBatch => |g, n| g.feedback_batch(n),
            // One start time per batch: formatting it per trace would cost more than the trace.
            Self::TraceBatch => |g, n| g.trace_batch(n, &jiff::Timestamp::now().to_string()),
            Self::SingleFeedback => |g, _| g.feedback(),
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// What to send.
    #[arg(
        long,
        env = "FEEDLOOP_BENCH_WORKLOAD",
        value_enum,
        default_value = "feedback-batch"
    )]
    pub workload: Workload,
    /// How long to send for, in seconds.
    #[arg(long, env = "FEEDLOOP_BENCH_DURATION_SECS", default_value_t = 60)]
    pub duration_secs: u64,
    /// Connections sending batches at once (batch workloads).
    #[arg(long, env = "FEEDLOOP_BENCH_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
    /// Records per request (batch workloads).
    #[arg(long, env = "FEEDLOOP_BENCH_BATCH_SIZE", default_value_t = 500)]
    pub batch_size: usize,
    /// Requests per second (single-feedback): sends leave at fixed intervals whatever the
    /// answers.
    #[arg(long, env = "FEEDLOOP_BENCH_RATE", default_value_t = 1000.0)]
    pub rate: f64,
    /// Most unanswered requests of the open loop (single-feedback); beyond it sends wait.
    #[arg(long, env = "FEEDLOOP_BENCH_MAX_IN_FLIGHT", default_value_t = 1024)]
    pub max_in_flight: usize,
    /// Size of each trace's output text, in bytes (trace-batch).
    #[arg(long, env = "FEEDLOOP_BENCH_TEXT_BYTES", default_value_t = 1024)]
    pub text_bytes: usize,
    /// Seed of the generated content (ids always differ between runs); random when absent.
    #[arg(long, env = "FEEDLOOP_BENCH_SEED")]
    pub seed: Option<u64>,
}

/// Runs the benchmark, prints the summary (people: stderr, JSON: stdout), and fails when the
/// stored count does not match what the server acknowledged.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let summary = bench(&args).await?;
    eprintln!("{}", summary.human());
    println!("{}", serde_json::to_string_pretty(&summary)?);
    anyhow::ensure!(
        summary.acknowledged > 0,
        "the server acknowledged no records{}",
        summary
            .first_error
            .as_deref()
            .map(|e| format!("; first error: {e}"))
            .unwrap_or_default()
    );
    anyhow::ensure!(
        summary.verified,
        "the server acknowledged {} records but its {} count grew by {}",
        summary.acknowledged,
        summary.counted,
        summary.stored_delta
    );
    Ok(())
}

/// Runs one workload against the server and measures it.
pub async fn bench(args: &BenchArgs) -> anyhow::Result<Summary> {
    anyhow::ensure!(args.duration_secs > 0, "--duration-secs must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    anyhow::ensure!(
        args.rate.is_finite() && args.rate > 0.0,
        "--rate must be a positive number"
    );
    anyhow::ensure!(args.max_in_flight > 0, "--max-in-flight must be at least 1");
    anyhow::ensure!(args.text_bytes > 0, "--text-bytes must be at least 1");
    let seed = args.seed.unwrap_or_else(rand::random);
    let run_id = format!(
        "{:x}{:04x}",
        jiff::Timestamp::now().as_millisecond(),
        rand::random::<u16>()
    );
    let client = Client::new(&args.server.server, &args.server.api_key);
    let corpus = Arc::new(Corpus::new(seed, args.text_bytes));
    let generator =
        |worker| Generator::new(Arc::clone(&corpus), &run_id, worker, seed, args.text_bytes);
    let progress = Arc::new(AtomicU64::new(0));
    let records_per_request = match args.workload {
        Workload::FeedbackBatch | Workload::TraceBatch => args.batch_size,
        Workload::SingleFeedback => 1,
    };
    let plan = Plan {
        client: client.clone(),
        path: args.workload.path(),
        records_per_request,
        make_body: args.workload.body_maker(),
        progress: Arc::clone(&progress),
    };

    let before = stats(&client)
        .await
        .context("cannot read /api/v1/stats before the run (does the key have read access?)")?;
    let duration = Duration::from_secs(args.duration_secs);
    let bar = ProgressBar::new(args.duration_secs).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} s  {msg}")
            .expect("the template is valid"),
    );
    let ticker = show_progress(bar.clone(), args.duration_secs, Arc::clone(&progress));
    let started = Instant::now();
    let tally: Tally = match args.workload {
        Workload::FeedbackBatch | Workload::TraceBatch => {
            let generators = (0..args.concurrency).map(generator).collect();
            load::closed_loop(plan, generators, started, duration).await
        }
        Workload::SingleFeedback => {
            load::open_loop(
                plan,
                generator(0),
                started,
                args.rate,
                duration,
                args.max_in_flight,
            )
            .await
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    ticker.abort();
    bar.finish_and_clear();
    let after = stats(&client)
        .await
        .context("cannot read /api/v1/stats after the run")?;
    let info = RunInfo {
        workload: args
            .workload
            .to_possible_value()
            .map_or_else(String::new, |v| v.get_name().to_owned()),
        run_id,
        seed,
        concurrency: args.concurrency,
        records_per_request,
        planned_duration_secs: args.duration_secs,
        target_rate: (args.workload == Workload::SingleFeedback).then_some(args.rate),
        counted: args.workload.counted(),
    };
    let count = |stats: &Stats| match args.workload {
        Workload::TraceBatch => stats.traces.total,
        Workload::FeedbackBatch | Workload::SingleFeedback => stats.feedback.total,
    };
    Ok(Summary::new(
        info,
        tally,
        elapsed,
        count(&before),
        count(&after),
    ))
}

/// The part of `/api/v1/stats` the check needs.
#[derive(Debug, Deserialize)]
struct Stats {
    traces: Count,
    feedback: Count,
}

#[derive(Debug, Deserialize)]
struct Count {
    total: u64,
}

async fn stats(client: &Client) -> anyhow::Result<Stats> {
    Ok(client.get("/api/v1/stats").await?)
}

/// Updates the progress line (stderr; hidden when not a terminal) twice a second until aborted.
fn show_progress(
    bar: ProgressBar,
    duration_secs: u64,
    acknowledged: Arc<AtomicU64>,
) -> tokio::task::AbortHandle {
    let started = Instant::now();
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_millis(500));
        loop {
            ticks.tick().await;
            let elapsed = started.elapsed().as_secs_f64();
            let records = acknowledged.load(Ordering::Relaxed);
            bar.set_position((elapsed as u64).min(duration_secs));
            bar.set_message(format!(
                "{records} records acknowledged ({:.0}/s)",
                records as f64 / elapsed.max(0.001)
            ));
        }
    })
    .abort_handle()
}
