//! Latency of the context API (`POST /api/v1/context`, query embedding included) on a project
//! with many traces and active lessons, against a running server:
//!
//!     feedloop serve --data-dir /tmp/ctx &
//!     cargo run --release -p feedloop --example context_bench -- \
//!         --server http://127.0.0.1:7878 --api-key $KEY --traces 100000 --lessons 1000
//!
//! Setup (skipped with `--skip-setup` when the project is loaded already): the Banking77 train
//! queries, cycled, become `--traces` traces; one in ten traces of the odd-numbered intents gets
//! a positive rating (the contrast that matching reads); `--lessons` active lessons get three
//! train queries of one even-numbered intent each as examples. Then `--requests` context
//! requests with the Banking77 test queries, one at a time (so about half concern an intent with
//! lessons); prints p50/p90/p99/max in milliseconds and how many answers carried lessons, as
//! JSON. The first request, which builds the project's lesson snapshot, is left out of the
//! percentiles and reported apart.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use feedloop::client::Client;
use serde_json::{Value, json};

struct Args {
    server: String,
    api_key: String,
    traces: usize,
    lessons: usize,
    requests: usize,
    skip_setup: bool,
}

fn args() -> Args {
    let mut args = Args {
        server: "http://127.0.0.1:7878".into(),
        api_key: String::new(),
        traces: 100_000,
        lessons: 1_000,
        requests: 2_000,
        skip_setup: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().expect("a value after the flag");
        match flag.as_str() {
            "--server" => args.server = value(),
            "--api-key" => args.api_key = value(),
            "--traces" => args.traces = value().parse().unwrap(),
            "--lessons" => args.lessons = value().parse().unwrap(),
            "--requests" => args.requests = value().parse().unwrap(),
            "--skip-setup" => args.skip_setup = true,
            "--help" | "-h" => {
                eprintln!(
                    "context_bench --server URL --api-key KEY [--traces N] [--lessons N] [--requests N] [--skip-setup]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!args.api_key.is_empty(), "--api-key is required");
    args
}

/// (text, intent number) of a Banking77 file, intents numbered in order of appearance.
fn texts(name: &str, intents: &mut Vec<String>) -> Vec<(String, usize)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/banking77")
        .join(format!("{name}.csv"));
    csv::Reader::from_path(path)
        .unwrap()
        .records()
        .map(|row| {
            let row = row.unwrap();
            let intent = match intents.iter().position(|i| i == &row[1]) {
                Some(n) => n,
                None => {
                    intents.push(row[1].to_owned());
                    intents.len() - 1
                }
            };
            (row[0].to_owned(), intent)
        })
        .collect()
}

#[tokio::main]
async fn main() {
    feedloop_embed::install_tls_provider();
    let args = args();
    let client = Client::new(&args.server, &args.api_key);
    let mut intents = Vec::new();
    let train = texts("train", &mut intents);
    let test = texts("test", &mut intents);
    if !args.skip_setup {
        setup(&client, &args, &train).await;
    }
    let started = Instant::now();
    let _: Value = client
        .post("/api/v1/context", &json!({"query": test[0].0}))
        .await
        .unwrap();
    let first = started.elapsed();
    let mut latencies = Vec::with_capacity(args.requests);
    let mut with_lessons = 0usize;
    for i in 0..args.requests {
        // Spread over the test set, so that intents with and without lessons alternate.
        let (query, _) = &test[(i * 7) % test.len()];
        let started = Instant::now();
        let answer: Value = client
            .post(
                "/api/v1/context",
                &json!({"query": query, "session_id": format!("s{i}")}),
            )
            .await
            .unwrap();
        latencies.push(started.elapsed());
        with_lessons += usize::from(!answer["lessons"].as_array().unwrap().is_empty());
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| (d.as_secs_f64() * 1e6).round() / 1e3;
    println!(
        "{}",
        json!({
            "requests": args.requests,
            "with_lessons": with_lessons,
            "first_request_ms": ms(first),
            "p50_ms": ms(at(0.5)),
            "p90_ms": ms(at(0.9)),
            "p99_ms": ms(at(0.99)),
            "max_ms": ms(*latencies.last().unwrap()),
        })
    );
}

async fn setup(client: &Client, args: &Args, train: &[(String, usize)]) {
    let started = Instant::now();
    for start in (0..args.traces).step_by(1_000) {
        let end = (start + 1_000).min(args.traces);
        let traces: Vec<Value> = (start..end)
            .map(|i| json!({"id": format!("ctx-{i}"), "input": train[i % train.len()].0, "output": "…"}))
            .collect();
        let feedback: Vec<Value> = (start..end)
            .filter(|i| i % 10 == 0 && train[i % train.len()].1 % 2 == 1)
            .map(|i| {
                json!({"id": format!("ctx-fb-{i}"), "trace_id": format!("ctx-{i}"),
                            "kind": "rating", "rating": {"value": 1}})
            })
            .collect();
        let _: Value = client
            .post(
                "/api/v1/ingest",
                &json!({"traces": traces, "feedback": feedback}),
            )
            .await
            .unwrap();
    }
    eprintln!("{} traces sent in {:.1?}", args.traces, started.elapsed());
    let lesson_texts: Vec<&String> = train
        .iter()
        .filter(|(_, intent)| intent % 2 == 0)
        .map(|(text, _)| text)
        .collect();
    for i in 0..args.lessons {
        // Three queries of one intent (the train file lists each intent's queries together).
        let examples: Vec<&String> = (0..3)
            .map(|j| lesson_texts[(i * 3 + j) % lesson_texts.len()])
            .collect();
        let _: Value = client
            .post(
                "/api/v1/lessons",
                &json!({
                    "title": format!("lesson {i}"),
                    "trigger": {"examples": examples},
                    "action": {"instruction": format!("Instruction number {i}: answer precisely.")},
                    "status": "active",
                }),
            )
            .await
            .unwrap();
    }
    eprintln!("{} lessons created", args.lessons);
    loop {
        let ready: Value = client.get("/readyz").await.unwrap_or(Value::Null);
        let backlog = ready["details"]["embedding_backlog"]
            .as_u64()
            .unwrap_or(u64::MAX);
        eprintln!("embedding backlog {backlog} ({:.0?})", started.elapsed());
        if backlog == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}
