//! feedloop's HTTP API: the router, its state and the server loop.
//!
//! Handlers are thin: they extract (see [`extract`]), call an operation (see [`ops`]) and map the
//! result. The binary calls [`serve`]; tests call it too, on port 0.

pub mod access;
pub mod error;
pub mod extract;
pub mod gateway;
pub mod jobs;
mod openapi;
pub mod ops;
pub mod otlp;
pub mod privacy;
pub mod query;
pub mod replica;
pub mod review;
mod routes;
pub mod wire;

pub mod analytics;
pub mod events;

use axum::Router;
use feedloop_clusters::{ClusterEngine, ClusterSettings};
use feedloop_core::clock::Clock;
use feedloop_lessons::LessonEngine;
use feedloop_memory::SemanticMemory;
use feedloop_signals::SignalEngine;
use feedloop_store::Store;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub use openapi::openapi_document;

/// Settings of the HTTP layer and of the replica's background tasks.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Most traces and feedback items one JSON ingest request may carry (413 above).
    pub max_batch_items: usize,
    /// Most traces a session view returns.
    pub max_session_traces: u32,
    /// How often the replica reads the change log (how soon it sees a key revoked elsewhere).
    pub change_poll_interval: Duration,
    /// How often the replica looks for background jobs to run.
    pub job_tick_interval: Duration,
    /// This replica's name in job claims.
    pub replica_id: String,
    /// The OpenAI-compatible gateway's upstream.
    pub gateway: gateway::GatewayConfig,
    /// Regression and spike detection, webhook retries.
    pub analytics: analytics::AnalyticsConfig,
    /// Sessions, feedback tokens, rate limits and the request time-out.
    pub access: access::AccessConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            max_batch_items: 10_000,
            max_session_traces: 1_000,
            change_poll_interval: Duration::from_millis(200),
            job_tick_interval: Duration::from_secs(10),
            replica_id: format!(
                "replica-{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ),
            gateway: gateway::GatewayConfig::default(),
            analytics: analytics::AnalyticsConfig::default(),
            access: access::AccessConfig::default(),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ServerConfig>,
    pub keys: Arc<replica::KeyCache>,
    /// Embeddings, vector indexes and search by meaning over the same store.
    pub memory: Arc<SemanticMemory>,
    /// Lessons, context injection and their measured effect.
    pub lessons: Arc<LessonEngine>,
    /// Derived implicit signals and satisfaction estimates.
    pub signals: Arc<SignalEngine>,
    /// Problem clusters of negative traces.
    pub clusters: Arc<ClusterEngine>,
    /// The gateway's upstream and its HTTP client.
    pub upstream: Arc<gateway::forward::Upstream>,
    /// Lessons for the gateway to inject: the lesson engine, unless replaced with
    /// [`AppState::with_context_source`]; `None`: the gateway injects nothing.
    pub context_source: Option<Arc<dyn gateway::ContextSource>>,
    /// The gateway's trace writes still running.
    pub recorder: Arc<gateway::Recorder>,
    /// Detector settings, request metrics and the webhook client.
    pub analytics: Arc<analytics::AnalyticsState>,
    /// Rate-limit buckets and feedback-token secrets.
    pub access: Arc<access::AccessState>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: ServerConfig,
        memory: Arc<SemanticMemory>,
    ) -> Self {
        let lessons = Arc::new(LessonEngine::new(store.clone(), memory.clone()));
        let signals = Arc::new(SignalEngine::new(store.clone(), memory.model_id()));
        let clusters = Arc::new(ClusterEngine::new(
            store.clone(),
            memory.model_id(),
            ClusterSettings::default(),
        ));
        let context_source: Arc<dyn gateway::ContextSource> = Arc::new(gateway::LessonContext {
            engine: lessons.clone(),
            clock: clock.clone(),
        });
        let analytics = Arc::new(analytics::AnalyticsState::new(config.analytics.clone()));
        Self {
            analytics,
            access: Arc::new(access::AccessState::new(&config.access)),
            store,
            clock,
            upstream: Arc::new(gateway::forward::Upstream::new(&config.gateway)),
            config: Arc::new(config),
            keys: Arc::new(replica::KeyCache::new(100_000)),
            memory,
            context_source: Some(context_source),
            lessons,
            signals,
            clusters,
            recorder: Arc::new(gateway::Recorder::default()),
        }
    }

    /// The gateway asks `source` for lessons before every call.
    pub fn with_context_source(mut self, source: Arc<dyn gateway::ContextSource>) -> Self {
        self.context_source = Some(source);
        self
    }
}

/// How long shutdown waits for the gateway's trace writes still running.
const RECORDER_DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// The whole API as one router.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

/// Serves the API on `listener` until `shutdown` completes, then drains in-flight requests. The
/// replica's background tasks (change follower, job runner, embedding worker and vector index
/// follower) run for as long; the gateway's last trace writes finish and the indexes are saved on
/// the way out.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_otlp_grpc(listener, None, state, shutdown).await
}

/// [`serve`], with OTLP/gRPC on `grpc_listener` as well when one is given.
pub async fn serve_with_otlp_grpc(
    listener: TcpListener,
    grpc_listener: Option<TcpListener>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    // One shutdown signal for both listeners.
    let (shutting_down, shutdown_requested) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = shutting_down.send(true);
    });
    let when_shutdown = |mut requested: tokio::sync::watch::Receiver<bool>| async move {
        let _ = requested.wait_for(|requested| *requested).await;
    };
    let grpc = grpc_listener.map(|grpc_listener| {
        tokio::spawn(otlp::grpc::serve(
            grpc_listener,
            state.clone(),
            when_shutdown(shutdown_requested.clone()),
        ))
    });
    let follower = tokio::spawn(replica::follow_changes(
        state.store.clone(),
        state.keys.clone(),
        state.config.change_poll_interval,
        stopped.clone(),
    ));
    let memory = tokio::spawn(
        state
            .memory
            .clone()
            .run(state.clock.clone(), stopped.clone()),
    );
    let jobs = tokio::spawn(jobs::run_jobs(
        state.clone(),
        state.config.replica_id.clone(),
        state.config.job_tick_interval,
        stopped,
    ));
    // Lesson evidence is built before the first context request needs it.
    let lessons = state.lessons.clone();
    tokio::spawn(async move {
        if let Err(error) = lessons.warm().await {
            tracing::warn!(%error, "warming the lesson evidence failed; it is built on first use");
        }
    });
    let recorder = state.recorder.clone();
    // Connection info gives rate limits the client address of public keys and logins.
    let service = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let served = axum::serve(listener, service)
        .with_graceful_shutdown(when_shutdown(shutdown_requested))
        .await;
    if let Some(grpc) = grpc {
        match grpc.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "the OTLP/gRPC server failed"),
            Err(error) => tracing::error!(%error, "the OTLP/gRPC server task failed"),
        }
    }
    if !recorder.drain(RECORDER_DRAIN_LIMIT).await {
        tracing::error!(
            num_in_flight = recorder.num_in_flight(),
            "gateway traces still being written at shutdown"
        );
    }
    let _ = stop.send(true);
    let _ = tokio::join!(follower, jobs, memory);
    served
}
