//! `migrate-data`: SQLite → PostgreSQL → SQLite keeps every record as it was.

use feedloop::cli::ServerArgs;
use feedloop::cli::import::{ImportArgs, ImportFormat, import};
use feedloop::cli::migrate::copy_all;
use feedloop_server::ServerConfig;
use feedloop_store::StoreOptions;
use serde_json::{Value, json};
use std::path::PathBuf;

use crate::common::TestServer;
use crate::common::database::TestDatabase;

/// The derived-signal job writes feedback of its own (regenerates of the fixture's repeated
/// prompts, rephrases) once traces are embedded, which would change the data while the test
/// compares copies of it: its rules are switched off in every project of `store`, and the
/// servers' job runners tick at start only.
async fn without_derived_signals(store: &dyn feedloop_store::Store) {
    let mut settings = feedloop_core::signals::SignalSettings::default();
    settings.rules.rephrase_enabled = false;
    settings.rules.frustration_enabled = false;
    settings.rules.regenerate_enabled = false;
    settings.rules.abandon_enabled = false;
    for project in store.list_projects().await.unwrap() {
        store
            .set_signal_settings(project.id, &settings, jiff::Timestamp::now())
            .await
            .unwrap();
    }
}

fn without_periodic_jobs() -> ServerConfig {
    ServerConfig {
        job_tick_interval: std::time::Duration::from_secs(3_600),
        ..ServerConfig::default()
    }
}

/// Everything the API shows of a project, for comparing two copies.
async fn everything(server: &TestServer) -> Vec<Value> {
    let mut seen = Vec::new();
    for path in [
        "/api/v1/traces?order=asc&limit=1000&with_spans=true",
        "/api/v1/feedback?order=asc&limit=1000",
    ] {
        let mut url = path.to_owned();
        loop {
            let (status, page) = server.get(&url).await;
            assert_eq!(status, 200, "{page}");
            seen.extend(page["items"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(cursor) => url = format!("{path}&cursor={cursor}"),
                None => break,
            }
        }
    }
    for id in ["qa-0000-p1", "qa-0042-p1"] {
        seen.push(server.get(&format!("/api/v1/traces/{id}")).await.1);
    }
    for path in [
        "/api/v1/taxonomy",
        "/api/v1/sessions/qa-0007",
        "/api/v1/lessons",
        "/api/v1/lessons/ls-copy/versions",
        "/api/v1/lessons/ls-copy/effect",
        "/api/v1/loop/settings",
        "/api/v1/signals/settings",
    ] {
        let (status, body) = server.get(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        seen.push(body);
    }
    seen
}

async fn send(server: &TestServer, method: &str, path: &str, body: Value) {
    let (status, answer) = server.send_json(method, path, body).await;
    assert!(status.is_success(), "{method} {path}: {answer}");
}

#[tokio::test]
async fn data_copied_to_postgres_and_back_is_unchanged() {
    let source =
        TestServer::start_on(TestDatabase::create_sqlite(), None, without_periodic_jobs()).await;
    without_derived_signals(source.store.as_ref()).await;
    // The loop's settings. Proposals are off before any feedback arrives, so that no server
    // (this one's first job tick may come during the import) proposes lessons of its own.
    send(
        &source,
        "PUT",
        "/api/v1/loop/settings",
        json!({"holdout_fraction": 0.0, "holdout_seed": 7,
               "proposals": {"enabled": false, "min_feedback": 3, "similarity": 0.6, "window_hours": 168}}),
    )
    .await;
    let input = source.dir.path().join("qa.json");
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/qa_feedback/dev_feedback_sample.json");
    std::fs::copy(fixture, &input).unwrap();
    let args = ImportArgs {
        server: ServerArgs {
            server: source.base.clone(),
            api_key: source.key.clone(),
        },
        path: input,
        format: ImportFormat::QaFeedback,
        batch_size: 500,
        restart: false,
    };
    import(&args).await.unwrap();
    // Some state that only a verbatim copy keeps: a superseded rating, a retired category, spans.
    source
        .post(
            "/api/v1/traces",
            json!({"id": "qa-0000-p1", "spans": [{"id": "gen", "kind": "llm"}]}),
        )
        .await;
    source
        .post(
            "/api/v1/feedback",
            json!({"id": "r1", "trace_id": "qa-0000-p1", "rating": {"value": 0}, "author": "a"}),
        )
        .await;
    source
        .post(
            "/api/v1/feedback",
            json!({"id": "r2", "trace_id": "qa-0000-p1", "rating": {"value": 1}, "author": "a"}),
        )
        .await;
    source.delete("/api/v1/taxonomy/categories/redundant").await;
    // The loop's state: a lesson with two versions, and an injection into a trace.
    let query = "how do I reset my password";
    send(
        &source,
        "POST",
        "/api/v1/lessons",
        json!({"id": "ls-copy", "title": "Passwords", "trigger": {"examples": [query]},
               "action": {"instruction": "Link the reset page."}, "status": "proposed"}),
    )
    .await;
    send(
        &source,
        "PATCH",
        "/api/v1/lessons/ls-copy",
        json!({"version": 1, "status": "active"}),
    )
    .await;
    let (status, answer) = source
        .post(
            "/api/v1/context",
            json!({"query": query, "trace_id": "qa-0000-p1"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["lessons"][0]["injected"], true, "{answer}");
    let original = everything(&source).await;
    let effect = &original[original.len() - 3];
    assert_eq!(effect["impressions"], 1, "{effect}");

    let postgres = TestDatabase::create_postgres().await;
    let options = StoreOptions::default();
    let to = feedloop_store::open(&postgres.url, &options).await.unwrap();
    let summary = copy_all(source.store.clone(), to.clone(), 300)
        .await
        .unwrap();
    without_derived_signals(to.as_ref()).await;
    assert_eq!(
        (
            summary.traces,
            summary.feedback,
            summary.lessons,
            summary.injections
        ),
        (400, 1115, 1, 1)
    );
    let mut on_postgres = TestServer::start_on(postgres, None, without_periodic_jobs()).await;
    // The admin key travelled with the data (it is stored hashed; the secret still works).
    on_postgres.key = source.key.clone();
    assert_same(&everything(&on_postgres).await, &original);

    let back = TestDatabase::create_sqlite();
    let to = feedloop_store::open(&back.url, &options).await.unwrap();
    copy_all(on_postgres.store.clone(), to.clone(), 1000)
        .await
        .unwrap();
    without_derived_signals(to.as_ref()).await;
    let mut on_sqlite = TestServer::start_on(back, None, without_periodic_jobs()).await;
    on_sqlite.key = source.key.clone();
    assert_same(&everything(&on_sqlite).await, &original);
}

/// Equal item by item, naming the first that differs (the whole is too long to read).
fn assert_same(copy: &[Value], original: &[Value]) {
    for (index, (copied, was)) in copy.iter().zip(original).enumerate() {
        assert_eq!(copied, was, "item {index} differs");
    }
    assert_eq!(copy.len(), original.len());
}
