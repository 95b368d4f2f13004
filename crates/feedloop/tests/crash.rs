//! Crash safety: the real binary is killed with SIGKILL at random moments while four writers
//! ingest (JSON traces, feedback, signals, OTLP/HTTP protobuf), restarted on the same data, and
//! killed again, 20 times per backend. Afterwards every id the server acknowledged with a 2xx is
//! readable through the API, the SQLite file passes `PRAGMA integrity_check` (PostgreSQL:
//! amcheck's `bt_index_check` with `heapallindexed` on every index), the embedding
//! backlog drains to 0 (the worker resumes) and the vector index holds exactly the stored
//! vectors.
//!
//! The kill moments come from a seed printed at the start; `FEEDLOOP_CRASH_SEED=N` replays one.
//! `FEEDLOOP_CRASH_KILLS` changes the number of kills (default 20).

#![allow(clippy::unwrap_used)] // test code

mod common;
mod process;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use process::{Data, ServerProcess};

/// What the server acknowledged with a 2xx.
#[derive(Default)]
struct Acked {
    traces: BTreeSet<String>,
    feedback: BTreeSet<String>,
    /// The latest acknowledged JSON traces, which feedback and signals refer to.
    recent_traces: Vec<String>,
}

struct Run {
    base: String,
    key: String,
    http: reqwest::Client,
    acked: Mutex<Acked>,
    running: AtomicBool,
    next_id: AtomicU64,
    /// Requests answered 2xx, and requests that failed (refused, reset, 5xx).
    num_acked_requests: AtomicU64,
    num_failed_requests: AtomicU64,
}

impl Run {
    fn next(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Posts `body`; `Some(answer bytes)` only for a 2xx.
    async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Option<Vec<u8>> {
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.key))
            .header("content-type", content_type)
            .timeout(Duration::from_secs(30))
            .body(body)
            .send()
            .await;
        let ok = match answer {
            Ok(response) if response.status().is_success() => {
                response.bytes().await.ok().map(|bytes| bytes.to_vec())
            }
            Ok(response) => {
                let status = response.status();
                // Anything but "the server is down or busy" is a bug in the test or the server.
                assert!(
                    status.is_server_error(),
                    "{path}: {status} {}",
                    response.text().await.unwrap_or_default()
                );
                None
            }
            Err(_) => None,
        };
        match ok {
            Some(_) => self.num_acked_requests.fetch_add(1, Ordering::Relaxed),
            None => self.num_failed_requests.fetch_add(1, Ordering::Relaxed),
        };
        if ok.is_none() {
            // The server is down: retry soon, without spinning.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ok
    }

    fn recent_traces(&self, n: usize) -> Vec<String> {
        let acked = self.acked.lock().unwrap();
        acked.recent_traces.iter().rev().take(n).cloned().collect()
    }
}

async fn write_json_traces(run: Arc<Run>) {
    while run.running.load(Ordering::Relaxed) {
        let ids: Vec<String> = (0..10).map(|_| format!("t-{}", run.next())).collect();
        let body: Vec<Value> = ids
            .iter()
            .map(|id| {
                json!({
                    "id": id, "session_id": format!("s-{id}"),
                    "input": format!("question number {id} about the crash test"),
                    "output": format!("answer to {id}"), "status": "ok",
                })
            })
            .collect();
        let body = serde_json::to_vec(&body).unwrap();
        if run
            .post("/api/v1/traces", "application/json", body)
            .await
            .is_some()
        {
            let mut acked = run.acked.lock().unwrap();
            acked.traces.extend(ids.iter().cloned());
            acked.recent_traces.extend(ids);
            let excess = acked.recent_traces.len().saturating_sub(200);
            acked.recent_traces.drain(..excess);
        }
    }
}

/// Feedback items (or signals: the same ids in the same table) about the latest acknowledged
/// traces, five per request, posted to `path`; `item` makes one body from an id and a trace.
async fn write_feedback_items(
    run: Arc<Run>,
    path: &'static str,
    prefix: &'static str,
    item: fn(&str, &str) -> Value,
) {
    while run.running.load(Ordering::Relaxed) {
        let targets = run.recent_traces(5);
        if targets.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let items: Vec<(String, Value)> = targets
            .iter()
            .map(|trace| {
                let id = format!("{prefix}-{}", run.next());
                let body = item(&id, trace);
                (id, body)
            })
            .collect();
        let body = serde_json::to_vec(&items.iter().map(|(_, b)| b).collect::<Vec<_>>()).unwrap();
        if run.post(path, "application/json", body).await.is_some() {
            let mut acked = run.acked.lock().unwrap();
            acked.feedback.extend(items.into_iter().map(|(id, _)| id));
        }
    }
}

async fn write_feedback(run: Arc<Run>) {
    write_feedback_items(run, "/api/v1/feedback", "f", |id, trace| {
        json!({
            "id": id, "trace_id": trace, "author": format!("u-{id}"),
            "rating": {"value": 1},
        })
    })
    .await;
}

async fn write_signals(run: Arc<Run>) {
    write_feedback_items(
        run,
        "/api/v1/signals",
        "sig",
        |id, trace| json!({"id": id, "trace_id": trace, "type": "copy", "author": id}),
    )
    .await;
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

async fn write_otlp(run: Arc<Run>) {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    };
    while run.running.load(Ordering::Relaxed) {
        let numbers: Vec<u64> = (0..5).map(|_| run.next()).collect();
        let start = now();
        let spans = numbers
            .iter()
            .map(|n| Span {
                // A fixed prefix and the number: OTLP ids must not be all zero, and the writers
                // share the numbers, so this one may draw 0.
                trace_id: [[0xc0u8; 8], n.to_be_bytes()].concat(),
                span_id: [[0xc0u8; 4], (*n as u32).to_be_bytes()].concat(),
                name: "ChatCompletion".into(),
                start_time_unix_nano: start,
                end_time_unix_nano: start + 1_000_000,
                attributes: vec![
                    kv("openinference.span.kind", "LLM"),
                    kv("input.value", &format!("otlp question {n}")),
                    kv("output.value", &format!("otlp answer {n}")),
                ],
                ..Default::default()
            })
            .collect();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: None,
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let answer = run
            .post(
                "/v1/traces",
                "application/x-protobuf",
                request.encode_to_vec(),
            )
            .await;
        if let Some(answer) = answer {
            let response = ExportTraceServiceResponse::decode(&answer[..]).expect("an answer");
            assert_eq!(response.partial_success, None, "every span was accepted");
            let ids = numbers.iter().map(|n| {
                let bytes = [[0xc0u8; 8], n.to_be_bytes()].concat();
                bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
            });
            run.acked.lock().unwrap().traces.extend(ids);
        }
    }
}

/// Every item of a paged list: (id of each item).
async fn list_ids(run: &Run, path: &str) -> HashSet<String> {
    let mut ids = HashSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}{path}?limit=1000", run.base);
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: Value = run
            .http
            .get(url)
            .header("authorization", format!("Bearer {}", run.key))
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("a page");
        let items = page["items"].as_array().expect("items");
        ids.extend(
            items
                .iter()
                .map(|item| item["id"].as_str().expect("an id").to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

async fn readiness(run: &Run) -> Value {
    run.http
        .get(format!("{}/readyz", run.base))
        .send()
        .await
        .expect("readyz")
        .json()
        .await
        .expect("readyz json")
}

fn seed() -> u64 {
    std::env::var("FEEDLOOP_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(rand::random)
}

fn num_kills() -> usize {
    std::env::var("FEEDLOOP_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

async fn crash_run(name: &str, data: Data) {
    let seed = seed();
    let kills = num_kills();
    eprintln!(
        "crash test {name}: seed {seed} (FEEDLOOP_CRASH_SEED={seed} replays it), {kills} kills"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let port = process::free_port();
    // Embedding in small batches, polled often, so a kill lands while vectors are written too.
    let env = [
        ("FEEDLOOP_EMBEDDING_WORKER_BATCH_SIZE", "16"),
        // A killed worker's claimed batch is taken over after its lease: 2 s rather than the
        // default 120 s keeps the test short.
        ("FEEDLOOP_EMBEDDING_WORKER_LEASE_SECS", "2"),
        ("FEEDLOOP_JOB_TICK_INTERVAL_MS", "200"),
    ];
    let first = process::start(&data, port, &env).await;
    let key = first.first_start_key().await;
    feedloop_embed::install_tls_provider();
    let run = Arc::new(Run {
        base: first.base.clone(),
        key,
        http: reqwest::Client::new(),
        acked: Mutex::new(Acked::default()),
        running: AtomicBool::new(true),
        next_id: AtomicU64::new(0),
        num_acked_requests: AtomicU64::new(0),
        num_failed_requests: AtomicU64::new(0),
    });
    let writers = vec![
        tokio::spawn(write_json_traces(run.clone())),
        tokio::spawn(write_feedback(run.clone())),
        tokio::spawn(write_signals(run.clone())),
        tokio::spawn(write_otlp(run.clone())),
    ];
    let mut server: ServerProcess = first;
    let mut num_kills_at_start = 0;
    for kill in 0..kills {
        // A random moment: up to 1.2 s of ingest after the server became healthy.
        let delay = rng.random_range(0..1_200u64);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill();
        eprintln!(
            "kill {}/{kills} after {delay} ms: {} acknowledged requests so far",
            kill + 1,
            run.num_acked_requests.load(Ordering::Relaxed)
        );
        // One restart in four is killed again while it starts: opening the store, migrating,
        // recovering the WAL, loading the indexes.
        if rng.random_bool(0.25) {
            let early = process::spawn(&data, port, &env);
            let delay = rng.random_range(0..150u64);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            early.kill();
            num_kills_at_start += 1;
            eprintln!("  and again {delay} ms into its start");
        }
        server = process::start(&data, port, &env).await;
    }
    let phase = std::time::Instant::now();
    // Ingest a little on the last start too, then stop the writers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    run.running.store(false, Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("a writer panicked");
    }
    let acked = std::mem::take(&mut *run.acked.lock().unwrap());
    assert!(
        !acked.traces.is_empty() && !acked.feedback.is_empty(),
        "the writers got nothing acknowledged"
    );

    eprintln!("{name}: writers stopped after {:?}", phase.elapsed());
    // Every acknowledged id is stored.
    let traces = list_ids(&run, "/api/v1/traces").await;
    let lost: Vec<&String> = acked
        .traces
        .iter()
        .filter(|id| !traces.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "seed {seed}: acknowledged traces lost: {lost:?}"
    );
    let feedback = list_ids(&run, "/api/v1/feedback").await;
    let lost: Vec<&String> = acked
        .feedback
        .iter()
        .filter(|id| !feedback.contains(*id))
        .collect();
    assert!(
        lost.is_empty(),
        "seed {seed}: acknowledged feedback lost: {lost:?}"
    );

    // The embedding worker resumes and drains the queue; the index holds every stored vector,
    // once each (it was saved before some kills and not others, and follows the store).
    let started = std::time::Instant::now();
    let ready = loop {
        let ready = readiness(&run).await;
        let details = &ready["details"];
        if details["embedding_backlog"] == 0
            && details["indexed_vectors"].as_u64() == Some(traces.len() as u64)
        {
            break ready;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "seed {seed}: the backlog did not drain or the index disagrees with {} traces: {ready}",
            traces.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!(
        "{name}: backlog drained and index checked after {:?}",
        phase.elapsed()
    );
    // A graceful stop after all that, then the database itself.
    server.terminate();
    let (status, log) = server.wait_exit(Duration::from_secs(60)).await;
    assert!(status.success(), "exit {status}:\n{log}");
    eprintln!("{name}: stopped after {:?}", phase.elapsed());
    let num_vectors = stored_vectors(&data).await;
    assert_eq!(
        num_vectors,
        traces.len() as u64,
        "seed {seed}: stored vectors vs traces ({ready})"
    );
    eprintln!(
        "crash test {name}: seed {seed}: {kills} kills during ingest and {num_kills_at_start} \
         during start survived; {} traces and {} feedback \
         acknowledged, all stored ({} traces stored; {} requests acknowledged, {} attempts failed (server down, or cut \
         by a kill)); {num_vectors} vectors stored and indexed",
        acked.traces.len(),
        acked.feedback.len(),
        traces.len(),
        run.num_acked_requests.load(Ordering::Relaxed),
        run.num_failed_requests.load(Ordering::Relaxed),
    );
}

/// Vectors in the store, read from the database directly; on SQLite after an integrity check.
async fn stored_vectors(data: &Data) -> u64 {
    match &data.postgres_url {
        None => {
            let conn = rusqlite::Connection::open(data.sqlite_file()).expect("open the file");
            let check: String = conn
                .query_row("PRAGMA integrity_check", [], |row| row.get(0))
                .expect("integrity check");
            assert_eq!(check, "ok", "the SQLite file is damaged");
            let foreign: i64 = conn
                .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| {
                    row.get(0)
                })
                .expect("foreign key check");
            assert_eq!(foreign, 0, "rows point at missing rows");
            conn.query_row("SELECT count(*) FROM embeddings", [], |row| {
                row.get::<_, i64>(0)
            })
            .expect("count") as u64
        }
        Some(url) => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(connection);
            // amcheck (contrib, shipped with PostgreSQL): every B-tree index of the schema
            // agrees with its table (`heapallindexed`) and is well-formed.
            client
                .batch_execute("CREATE EXTENSION IF NOT EXISTS amcheck")
                .await
                .expect("amcheck is available");
            let indexes = client
                .query(
                    "SELECT c.relname::text, bt_index_check(c.oid, true)::text \
                     FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                     JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE a.amname = 'btree' AND n.nspname = 'public'",
                    &[],
                )
                .await
                .expect("the indexes pass amcheck");
            assert!(indexes.len() > 10, "checked {} indexes", indexes.len());
            let row = client
                .query_one("SELECT count(*) FROM embeddings", &[])
                .await
                .expect("count");
            row.get::<_, i64>(0) as u64
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_keeps_every_acknowledged_write_through_20_sigkills() {
    let dir = tempfile::tempdir().unwrap();
    let data = Data {
        dir: process::data_dir(dir.path(), "data"),
        postgres_url: None,
    };
    crash_run("sqlite", data).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_keeps_every_acknowledged_write_through_20_sigkills() {
    let database = common::database::TestDatabase::create_postgres().await;
    let dir = tempfile::tempdir().unwrap();
    let data = Data {
        dir: process::data_dir(dir.path(), "data"),
        postgres_url: Some(database.url.clone()),
    };
    crash_run("postgres", data).await;
}
