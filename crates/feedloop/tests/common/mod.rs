//! Test helpers: a real feedloop server (the library's `serve`, as the binary runs it) on port 0
//! with a fresh database (see [`database`]), and a small JSON client.

#![allow(dead_code)]

pub mod database;
pub mod python;
pub mod upstream;

use feedloop_core::auth::KeyRole;
use feedloop_core::clock::{Clock, SystemClock};
use feedloop_embed::{Embedder, EmbedderConfig};
use feedloop_memory::{MemoryConfig, SemanticMemory, WorkerConfig};
use feedloop_server::{AppState, ServerConfig};
use feedloop_store::{Store, StoreOptions};
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use tempfile::TempDir;
use tokio::sync::oneshot;

pub struct TestServer {
    pub base: String,
    /// The OTLP/gRPC receiver's address, `http://127.0.0.1:PORT`.
    pub grpc: String,
    /// The database URL, for starting another replica on the same data.
    pub url: String,
    /// Admin key of the default project.
    pub key: String,
    pub store: Arc<dyn Store>,
    pub http: reqwest::Client,
    /// A scratch directory for the test's files.
    pub dir: TempDir,
    pub database: database::TestDatabase,
    pub memory: Arc<SemanticMemory>,
    stop: Option<oneshot::Sender<()>>,
}

/// The embedder of tests that do not care about meaning: feature hashing, chosen explicitly.
pub async fn hash_embedder() -> Embedder {
    Embedder::from_config(&EmbedderConfig::Hash { dimensions: 64 })
        .await
        .expect("hash embedder")
}

/// The real all-MiniLM-L6-v2, pulled once into the shared test model folder; one instance (one
/// inference thread) for the whole test binary.
pub async fn minilm() -> Embedder {
    static MODEL: tokio::sync::OnceCell<Embedder> = tokio::sync::OnceCell::const_new();
    MODEL
        .get_or_init(|| async {
            let model_dir = tokio::task::spawn_blocking(feedloop_embed::model::ensure_test_model)
                .await
                .expect("model pull task");
            Embedder::from_config(&EmbedderConfig::Local {
                model_dir,
                threads: 1,
            })
            .await
            .expect("the model loads")
        })
        .await
        .clone()
}

impl TestServer {
    pub async fn start() -> Self {
        Self::start_with(ServerConfig::default()).await
    }

    pub async fn start_with(config: ServerConfig) -> Self {
        Self::start_on(database::TestDatabase::create().await, None, config).await
    }

    /// A server whose semantic memory uses `embedder`.
    pub async fn start_with_embedder(embedder: Embedder) -> Self {
        Self::start_on_with(database::TestDatabase::create().await, embedder).await
    }

    /// A server on `database` whose semantic memory uses `embedder`.
    pub async fn start_on_with(database: database::TestDatabase, embedder: Embedder) -> Self {
        Self::start_full(database, None, ServerConfig::default(), embedder).await
    }

    /// A server on `database`, reaching it through `url` when given (a proxy, say).
    pub async fn start_on(
        database: database::TestDatabase,
        url: Option<String>,
        config: ServerConfig,
    ) -> Self {
        Self::start_full(database, url, config, hash_embedder().await).await
    }

    /// A server whose "now" is `clock` (its job runner's too), so tests move time instead of
    /// sleeping.
    pub async fn start_with_clock(
        clock: Arc<dyn Clock>,
        config: ServerConfig,
        embedder: Embedder,
    ) -> Self {
        let database = database::TestDatabase::create().await;
        let store = feedloop_store::open(&database.url, &StoreOptions::default())
            .await
            .expect("store opens");
        let key = feedloop::cli::serve::bootstrap(store.as_ref(), clock.as_ref())
            .await
            .expect("bootstrap")
            .unwrap_or_default();
        Self::serve_with_clock(database, store, key, config, embedder, clock).await
    }

    async fn start_full(
        database: database::TestDatabase,
        url: Option<String>,
        config: ServerConfig,
        embedder: Embedder,
    ) -> Self {
        let url = url.unwrap_or_else(|| database.url.clone());
        let store = feedloop_store::open(&url, &StoreOptions::default())
            .await
            .expect("store opens");
        // A database with data keeps its keys: the caller sets `key` then.
        let key = feedloop::cli::serve::bootstrap(store.as_ref(), &SystemClock)
            .await
            .expect("bootstrap")
            .unwrap_or_default();
        Self::serve(database, store, key, config, embedder).await
    }

    /// Another replica: a second server process's worth of state (its own store connections,
    /// key cache and background tasks) on the same database.
    pub async fn replica(&self, config: ServerConfig) -> Self {
        self.replica_with(config, hash_embedder().await).await
    }

    /// Another replica whose semantic memory uses `embedder`.
    pub async fn replica_with(&self, config: ServerConfig, embedder: Embedder) -> Self {
        let store = feedloop_store::open(&self.database.url, &StoreOptions::default())
            .await
            .expect("store opens");
        Self::serve(
            self.database.clone(),
            store,
            self.key.clone(),
            config,
            embedder,
        )
        .await
    }

    async fn serve(
        database: database::TestDatabase,
        store: Arc<dyn Store>,
        key: String,
        config: ServerConfig,
        embedder: Embedder,
    ) -> Self {
        Self::serve_with_clock(
            database,
            store,
            key,
            config,
            embedder,
            Arc::new(SystemClock),
        )
        .await
    }

    async fn serve_with_clock(
        database: database::TestDatabase,
        store: Arc<dyn Store>,
        key: String,
        config: ServerConfig,
        embedder: Embedder,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let grpc_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let grpc = format!("http://{}", grpc_listener.local_addr().expect("addr"));
        let dir = tempfile::tempdir().expect("temp dir");
        let memory = Arc::new(SemanticMemory::new(
            store.clone(),
            embedder,
            MemoryConfig {
                index_dir: Some(dir.path().join("vectors")),
                worker: WorkerConfig {
                    poll_interval: std::time::Duration::from_millis(50),
                    ..WorkerConfig::default()
                },
                follow_interval: std::time::Duration::from_millis(50),
                ..MemoryConfig::default()
            },
        ));
        let state = AppState::new(store.clone(), clock, config, memory.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(feedloop_server::serve_with_otlp_grpc(
            listener,
            Some(grpc_listener),
            state,
            async {
                let _ = stopped.await;
            },
        ));
        Self {
            base,
            grpc,
            url: database.url.clone(),
            key,
            store,
            http: {
                feedloop_embed::install_tls_provider();
                reqwest::Client::new()
            },
            dir,
            database,
            memory,
            stop: Some(stop),
        }
    }

    /// Waits until every queued trace is embedded and this replica's indexes hold at least
    /// `num_vectors` vectors.
    pub async fn wait_until_indexed(&self, num_vectors: usize) {
        self.wait_until_indexed_within(num_vectors, std::time::Duration::from_secs(30))
            .await;
    }

    /// [`Self::wait_until_indexed`] with a time limit, for large sets.
    pub async fn wait_until_indexed_within(&self, num_vectors: usize, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        while started.elapsed() < limit {
            let (_, ready) = self.get("/readyz").await;
            let details = &ready["details"];
            if details["embedding_backlog"] == 0
                && details["indexed_vectors"].as_u64().unwrap_or(0) >= num_vectors as u64
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "traces not indexed within {limit:?}: {:?}",
            self.get("/readyz").await
        );
    }

    /// Creates another project and returns its admin key.
    pub async fn new_project(&self, name: &str) -> String {
        let now = SystemClock.now();
        let project = self.store.create_project(name, now).await.expect("project");
        let (secret, record) = feedloop_server::ops::generate_key("test".into(), KeyRole::Admin);
        self.store
            .create_key(project.id, record, now)
            .await
            .expect("key");
        secret
    }

    pub async fn key_with_role(&self, role: KeyRole) -> String {
        let project = self
            .store
            .project_by_name("default")
            .await
            .unwrap()
            .unwrap();
        let (secret, record) = feedloop_server::ops::generate_key("test".into(), role);
        self.store
            .create_key(project.id, record, SystemClock.now())
            .await
            .expect("key");
        secret
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.post_as(&self.key, path, body).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send_json("PUT", path, body).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send_json("PATCH", path, body).await
    }

    /// A JSON body with the server's key, by any method.
    pub async fn send_json(&self, method: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.send_raw(
            &self.key,
            method,
            path,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    pub async fn post_as(&self, key: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.send_raw(
            key,
            "POST",
            path,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await
    }

    pub async fn send_raw(
        &self,
        key: &str,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.get_as(&self.key, path).await
    }

    pub async fn get_as(&self, key: &str, path: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"))
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send_raw(&self.key, "DELETE", path, "application/json", Vec::new())
            .await
    }

    /// (traces, feedback) stored in the default project.
    pub async fn counts(&self) -> (u64, u64) {
        let (status, stats) = self.get("/api/v1/stats").await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        (
            stats["traces"]["total"].as_u64().unwrap(),
            stats["feedback"]["total"].as_u64().unwrap(),
        )
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Asserts an error answer: its status, code and field.
#[track_caller]
pub fn assert_error(answer: &(StatusCode, Value), status: u16, code: &str, field: Option<&str>) {
    let (got_status, body) = answer;
    assert_eq!(got_status.as_u16(), status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["field"].as_str(), field, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
