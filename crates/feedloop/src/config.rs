//! The server's configuration: one typed struct, loaded with the precedence
//! defaults < config file < environment < command-line flags.
//!
//! [`Config::load`] is a pure function of the file's text and an environment map, so it is tested
//! without touching the process environment; flags are applied afterwards by the caller. Every
//! key is documented in `feedloop.example.toml` at the repository root.

use serde::Deserialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory for the SQLite database (and, later, the model and the vector index).
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER@HOST:PORT/DATABASE`; empty means
    /// `sqlite://<data_dir>/feedloop.db`.
    pub database_url: String,
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Address of the OTLP/gRPC receiver (host:port); `off` (or empty) turns it off.
    pub otlp_grpc_listen: String,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most traces and feedback items one JSON ingest request may carry.
    pub max_batch_items: usize,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// How often a replica reads the change log, in milliseconds: how soon a key revoked through
    /// another replica stops working here.
    pub change_poll_interval_ms: u64,
    /// How often a replica looks for background jobs to run, in milliseconds.
    pub job_tick_interval_ms: u64,
    pub store: StoreConfig,
    pub embedding: EmbeddingConfig,
    pub gateway: GatewayConfig,
    pub analytics: AnalyticsConfig,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
}

/// `[limits]`: per-caller rate limits and the request time-out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests per second each key (each public key per client address, each signed-in
    /// person) may make, sustained; 0 turns rate limiting off.
    pub requests_per_second: f64,
    /// Requests a caller may make at once after a quiet spell.
    pub burst: u32,
    /// Longest a request may take, in seconds (not the gateway); 0: no limit.
    pub request_timeout_secs: u64,
    /// Requests (HTTP and OTLP/gRPC) the server works on at once; past it new requests get 503
    /// with `Retry-After` instead of queueing. 0: no limit.
    pub max_in_flight_requests: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            // Above the single-key rates the benchmarks drive (1,000 req/s), far above an app's.
            requests_per_second: 2_000.0,
            burst: 4_000,
            request_timeout_secs: 60,
            max_in_flight_requests: 1_024,
        }
    }
}

/// `[auth]`: web sessions and feedback tokens.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A session unused this long ends, in seconds.
    pub session_idle_secs: u64,
    /// A session ends this long after sign-in, in seconds.
    pub session_max_secs: u64,
    /// Mark the session cookie `Secure`; turn off only to sign in over plain http from
    /// another host during development.
    pub secure_cookies: bool,
    /// The longest life a feedback token may be given, in seconds.
    pub max_feedback_token_ttl_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        let defaults = feedloop_server::access::AccessConfig::default();
        Self {
            session_idle_secs: defaults.session_idle.as_secs(),
            session_max_secs: defaults.session_max.as_secs(),
            secure_cookies: defaults.secure_cookies,
            max_feedback_token_ttl_secs: defaults.max_token_ttl.as_secs(),
        }
    }
}

/// Regression and negative-spike detection, and webhook delivery retries.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsConfig {
    /// A new version is a regression when the two-proportion test's p-value is below this.
    pub regression_alpha: f64,
    /// Traces each version needs before two versions are compared.
    pub regression_min_traces: u64,
    /// How far back the regression detector looks, in hours.
    pub regression_window_hours: u64,
    /// A negative spike: the last hour against the baseline with a p-value below this.
    pub spike_alpha: f64,
    /// Traces the last hour needs before it is compared.
    pub spike_min_traces: u64,
    /// The trailing baseline before the last hour, in hours.
    pub spike_baseline_hours: u64,
    /// Attempts of a webhook delivery before it is given up.
    pub webhook_max_attempts: u32,
    /// The first retry's delay in seconds; each retry doubles it (with jitter).
    pub webhook_base_delay_secs: u64,
    /// The longest delay between two attempts, in seconds.
    pub webhook_max_delay_secs: u64,
    /// How long one delivery attempt may take, in seconds.
    pub webhook_timeout_secs: u64,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        let defaults = feedloop_server::analytics::AnalyticsConfig::default();
        Self {
            regression_alpha: defaults.regression_alpha,
            regression_min_traces: defaults.regression_min_traces,
            regression_window_hours: (defaults.regression_window.as_secs() / 3_600) as u64,
            spike_alpha: defaults.spike_alpha,
            spike_min_traces: defaults.spike_min_traces,
            spike_baseline_hours: (defaults.spike_baseline.as_secs() / 3_600) as u64,
            webhook_max_attempts: defaults.webhook_max_attempts,
            webhook_base_delay_secs: defaults.webhook_base_delay.as_secs() as u64,
            webhook_max_delay_secs: defaults.webhook_max_delay.as_secs() as u64,
            webhook_timeout_secs: defaults.webhook_timeout.as_secs(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub read_connections: usize,
    pub max_items_per_commit: usize,
    pub write_queue: usize,
    pub sqlite_cache_mib: u32,
    pub sqlite_sync_full: bool,
    pub postgres_max_connections: usize,
}

/// Which embedding model gives traces their meaning, and how the worker runs.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingConfig {
    pub provider: EmbeddingProvider,
    /// Local model folder; empty means `<data_dir>/models/all-MiniLM-L6-v2`.
    pub model_dir: PathBuf,
    /// Threads for local inference.
    pub threads: usize,
    /// OpenAI-compatible endpoint, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// OpenAI-compatible model name.
    pub model: String,
    /// OpenAI-compatible API key (better given through the environment).
    pub api_key: String,
    /// Vector length: the OpenAI-compatible model's, or the hash embedder's.
    pub dimensions: usize,
    /// Texts per OpenAI-compatible request.
    pub request_batch_size: usize,
    /// Whether this server runs the embedding worker.
    pub worker: bool,
    /// Traces the worker embeds per batch.
    pub worker_batch_size: u32,
    /// How long a claimed batch stays the claimer's, in seconds: a batch of a worker that died
    /// is embedded by another (or the restarted one) after this.
    pub worker_lease_secs: u64,
    /// Ingest rate (traces per second on this server) above which the worker waits, up to 10 s
    /// per batch, so that it does not slow a burst it could not keep up with; 0 never waits.
    pub worker_yield_above: u64,
    /// Where vector indexes are saved; empty means `<data_dir>/vectors`.
    pub index_dir: PathBuf,
}

/// The OpenAI-compatible gateway (`/v1/chat/completions`, `/v1/models`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// The upstream's base URL (`…/v1`); empty: the gateway answers 503.
    pub upstream_base_url: String,
    /// Sent upstream for clients that authenticate with their feedloop key as the bearer token
    /// (better given through the environment); empty sends none.
    pub upstream_api_key: String,
    /// Longest wait for the upstream's first byte and between two chunks, in seconds.
    pub timeout_secs: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            upstream_base_url: String::new(),
            upstream_api_key: String::new(),
            timeout_secs: 120,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingProvider {
    /// all-MiniLM-L6-v2 in process.
    Local,
    /// Any OpenAI-compatible `/embeddings` endpoint.
    Openai,
    /// Feature hashing: deterministic, without meaning; for tests.
    Hash,
}

impl Default for EmbeddingConfig {
    fn default() -> Self {
        Self {
            provider: EmbeddingProvider::Local,
            model_dir: PathBuf::new(),
            threads: 1,
            base_url: String::new(),
            model: String::new(),
            api_key: String::new(),
            dimensions: 0,
            request_batch_size: 64,
            worker: true,
            worker_batch_size: 32,
            worker_lease_secs: 120,
            worker_yield_above: 2_000,
            index_dir: PathBuf::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./feedloop-data"),
            database_url: String::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 7700)),
            otlp_grpc_listen: DEFAULT_OTLP_GRPC_LISTEN.into(),
            max_body_bytes: 16 * 1024 * 1024,
            max_batch_items: 10_000,
            log_format: LogFormat::Text,
            change_poll_interval_ms: 200,
            job_tick_interval_ms: 10_000,
            store: StoreConfig::default(),
            embedding: EmbeddingConfig::default(),
            gateway: GatewayConfig::default(),
            analytics: AnalyticsConfig::default(),
            limits: LimitsConfig::default(),
            auth: AuthConfig::default(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        let defaults = feedloop_store::StoreOptions::default();
        Self {
            read_connections: defaults.read_connections,
            max_items_per_commit: defaults.max_items_per_commit,
            write_queue: defaults.write_queue,
            sqlite_cache_mib: defaults.sqlite_cache_mib,
            sqlite_sync_full: defaults.sqlite_sync_full,
            postgres_max_connections: defaults.postgres_max_connections,
        }
    }
}

/// The OTLP/gRPC receiver's default address: OTLP's standard gRPC port, on loopback.
pub const DEFAULT_OTLP_GRPC_LISTEN: &str = "127.0.0.1:4317";

/// An address, or `off` (or empty) for none.
pub fn parse_optional_addr(text: &str) -> Result<Option<SocketAddr>, ConfigError> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| {
        ConfigError::Invalid(format!(
            "otlp_grpc_listen {text:?} is not host:port or \"off\": {e}"
        ))
    })
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file: {0}")]
    File(#[from] toml::de::Error),
    #[error("environment variable {name}: {message}")]
    Env { name: String, message: String },
    #[error("config: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, overlaid by the file (if any), overlaid by `FEEDLOOP_*` variables of `env`.
    pub fn load(
        file_text: Option<&str>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let mut config: Config = match file_text {
            Some(text) => toml::from_str(text)?,
            None => Config::default(),
        };
        let var = |name: &str| env.get(name).filter(|v| !v.is_empty());
        fn parse<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError::Env {
                name: name.into(),
                message: e.to_string(),
            })
        }
        if let Some(v) = var("FEEDLOOP_DATA_DIR") {
            config.data_dir = PathBuf::from(v);
        }
        if let Some(v) = var("FEEDLOOP_DATABASE_URL") {
            config.database_url = v.clone();
        }
        if let Some(v) = var("FEEDLOOP_LISTEN") {
            config.listen = parse("FEEDLOOP_LISTEN", v)?;
        }
        if let Some(v) = env.get("FEEDLOOP_OTLP_GRPC_LISTEN") {
            config.otlp_grpc_listen = v.clone();
        }
        config.otlp_grpc_addr()?;
        if let Some(v) = var("FEEDLOOP_MAX_BODY_BYTES") {
            config.max_body_bytes = parse("FEEDLOOP_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = var("FEEDLOOP_MAX_BATCH_ITEMS") {
            config.max_batch_items = parse("FEEDLOOP_MAX_BATCH_ITEMS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_LOG_FORMAT") {
            config.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                other => {
                    return Err(ConfigError::Env {
                        name: "FEEDLOOP_LOG_FORMAT".into(),
                        message: format!("{other:?} is not text or json"),
                    });
                }
            };
        }
        if let Some(v) = var("FEEDLOOP_CHANGE_POLL_INTERVAL_MS") {
            config.change_poll_interval_ms = parse("FEEDLOOP_CHANGE_POLL_INTERVAL_MS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_JOB_TICK_INTERVAL_MS") {
            config.job_tick_interval_ms = parse("FEEDLOOP_JOB_TICK_INTERVAL_MS", v)?;
        }
        let store = &mut config.store;
        if let Some(v) = var("FEEDLOOP_STORE_READ_CONNECTIONS") {
            store.read_connections = parse("FEEDLOOP_STORE_READ_CONNECTIONS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_STORE_MAX_ITEMS_PER_COMMIT") {
            store.max_items_per_commit = parse("FEEDLOOP_STORE_MAX_ITEMS_PER_COMMIT", v)?;
        }
        if let Some(v) = var("FEEDLOOP_STORE_WRITE_QUEUE") {
            store.write_queue = parse("FEEDLOOP_STORE_WRITE_QUEUE", v)?;
        }
        if let Some(v) = var("FEEDLOOP_STORE_SQLITE_CACHE_MIB") {
            store.sqlite_cache_mib = parse("FEEDLOOP_STORE_SQLITE_CACHE_MIB", v)?;
        }
        if let Some(v) = var("FEEDLOOP_STORE_SQLITE_SYNC_FULL") {
            store.sqlite_sync_full = parse("FEEDLOOP_STORE_SQLITE_SYNC_FULL", v)?;
        }
        if let Some(v) = var("FEEDLOOP_STORE_POSTGRES_MAX_CONNECTIONS") {
            store.postgres_max_connections = parse("FEEDLOOP_STORE_POSTGRES_MAX_CONNECTIONS", v)?;
        }
        let embedding = &mut config.embedding;
        if let Some(v) = var("FEEDLOOP_EMBEDDING_PROVIDER") {
            embedding.provider = match v.as_str() {
                "local" => EmbeddingProvider::Local,
                "openai" => EmbeddingProvider::Openai,
                "hash" => EmbeddingProvider::Hash,
                other => {
                    return Err(ConfigError::Env {
                        name: "FEEDLOOP_EMBEDDING_PROVIDER".into(),
                        message: format!("{other:?} is not local, openai or hash"),
                    });
                }
            };
        }
        if let Some(v) = var("FEEDLOOP_EMBEDDING_MODEL_DIR") {
            embedding.model_dir = PathBuf::from(v);
        }
        if let Some(v) = var("FEEDLOOP_EMBEDDING_THREADS") {
            embedding.threads = parse("FEEDLOOP_EMBEDDING_THREADS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_EMBEDDING_BASE_URL") {
            embedding.base_url = v.clone();
        }
        if let Some(v) = var("FEEDLOOP_EMBEDDING_MODEL") {
            embedding.model = v.clone();
        }
        if let Some(v) = var("FEEDLOOP_EMBEDDING_API_KEY") {
            embedding.api_key = v.clone();
        }
        if let Some(v) = var("FEEDLOOP_EMBEDDING_DIMENSIONS") {
            embedding.dimensions = parse("FEEDLOOP_EMBEDDING_DIMENSIONS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_EMBEDDING_WORKER") {
            embedding.worker = parse("FEEDLOOP_EMBEDDING_WORKER", v)?;
        }
        if let Some(v) = var("FEEDLOOP_EMBEDDING_WORKER_BATCH_SIZE") {
            embedding.worker_batch_size = parse("FEEDLOOP_EMBEDDING_WORKER_BATCH_SIZE", v)?;
        }
        if let Some(v) = var("FEEDLOOP_EMBEDDING_WORKER_LEASE_SECS") {
            embedding.worker_lease_secs = parse("FEEDLOOP_EMBEDDING_WORKER_LEASE_SECS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_EMBEDDING_WORKER_YIELD_ABOVE") {
            embedding.worker_yield_above = parse("FEEDLOOP_EMBEDDING_WORKER_YIELD_ABOVE", v)?;
        }
        if embedding.worker_lease_secs == 0 {
            return Err(ConfigError::Invalid(
                "embedding.worker_lease_secs must be at least 1".into(),
            ));
        }
        if let Some(v) = var("FEEDLOOP_EMBEDDING_INDEX_DIR") {
            embedding.index_dir = PathBuf::from(v);
        }
        let gateway = &mut config.gateway;
        if let Some(v) = var("FEEDLOOP_GATEWAY_UPSTREAM_BASE_URL") {
            gateway.upstream_base_url = v.clone();
        }
        if let Some(v) = var("FEEDLOOP_GATEWAY_UPSTREAM_API_KEY") {
            gateway.upstream_api_key = v.clone();
        }
        if let Some(v) = var("FEEDLOOP_GATEWAY_TIMEOUT_SECS") {
            gateway.timeout_secs = parse("FEEDLOOP_GATEWAY_TIMEOUT_SECS", v)?;
        }
        if gateway.timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "gateway.timeout_secs must be at least 1".into(),
            ));
        }
        let analytics = &mut config.analytics;
        if let Some(v) = var("FEEDLOOP_ANALYTICS_REGRESSION_ALPHA") {
            analytics.regression_alpha = parse("FEEDLOOP_ANALYTICS_REGRESSION_ALPHA", v)?;
        }
        if let Some(v) = var("FEEDLOOP_ANALYTICS_REGRESSION_MIN_TRACES") {
            analytics.regression_min_traces = parse("FEEDLOOP_ANALYTICS_REGRESSION_MIN_TRACES", v)?;
        }
        if let Some(v) = var("FEEDLOOP_ANALYTICS_REGRESSION_WINDOW_HOURS") {
            analytics.regression_window_hours =
                parse("FEEDLOOP_ANALYTICS_REGRESSION_WINDOW_HOURS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_ANALYTICS_SPIKE_ALPHA") {
            analytics.spike_alpha = parse("FEEDLOOP_ANALYTICS_SPIKE_ALPHA", v)?;
        }
        if let Some(v) = var("FEEDLOOP_ANALYTICS_SPIKE_MIN_TRACES") {
            analytics.spike_min_traces = parse("FEEDLOOP_ANALYTICS_SPIKE_MIN_TRACES", v)?;
        }
        if let Some(v) = var("FEEDLOOP_ANALYTICS_SPIKE_BASELINE_HOURS") {
            analytics.spike_baseline_hours = parse("FEEDLOOP_ANALYTICS_SPIKE_BASELINE_HOURS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_ANALYTICS_WEBHOOK_MAX_ATTEMPTS") {
            analytics.webhook_max_attempts = parse("FEEDLOOP_ANALYTICS_WEBHOOK_MAX_ATTEMPTS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_ANALYTICS_WEBHOOK_BASE_DELAY_SECS") {
            analytics.webhook_base_delay_secs =
                parse("FEEDLOOP_ANALYTICS_WEBHOOK_BASE_DELAY_SECS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_ANALYTICS_WEBHOOK_MAX_DELAY_SECS") {
            analytics.webhook_max_delay_secs =
                parse("FEEDLOOP_ANALYTICS_WEBHOOK_MAX_DELAY_SECS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_ANALYTICS_WEBHOOK_TIMEOUT_SECS") {
            analytics.webhook_timeout_secs = parse("FEEDLOOP_ANALYTICS_WEBHOOK_TIMEOUT_SECS", v)?;
        }
        for (name, alpha) in [
            ("analytics.regression_alpha", analytics.regression_alpha),
            ("analytics.spike_alpha", analytics.spike_alpha),
        ] {
            if !(alpha > 0.0 && alpha <= 0.5) {
                return Err(ConfigError::Invalid(format!("{name} must be in (0, 0.5]")));
            }
        }
        if analytics.webhook_max_attempts == 0 || analytics.webhook_timeout_secs == 0 {
            return Err(ConfigError::Invalid(
                "analytics.webhook_max_attempts and analytics.webhook_timeout_secs must be at least 1".into(),
            ));
        }
        let limits = &mut config.limits;
        if let Some(v) = var("FEEDLOOP_LIMITS_REQUESTS_PER_SECOND") {
            limits.requests_per_second = parse("FEEDLOOP_LIMITS_REQUESTS_PER_SECOND", v)?;
        }
        if let Some(v) = var("FEEDLOOP_LIMITS_BURST") {
            limits.burst = parse("FEEDLOOP_LIMITS_BURST", v)?;
        }
        if let Some(v) = var("FEEDLOOP_LIMITS_REQUEST_TIMEOUT_SECS") {
            limits.request_timeout_secs = parse("FEEDLOOP_LIMITS_REQUEST_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_LIMITS_MAX_IN_FLIGHT_REQUESTS") {
            limits.max_in_flight_requests = parse("FEEDLOOP_LIMITS_MAX_IN_FLIGHT_REQUESTS", v)?;
        }
        if !(limits.requests_per_second >= 0.0 && limits.requests_per_second.is_finite())
            || (limits.requests_per_second > 0.0 && limits.burst == 0)
        {
            return Err(ConfigError::Invalid(
                "limits.requests_per_second must be 0 (off) or positive, with a burst of at least 1"
                    .into(),
            ));
        }
        let auth = &mut config.auth;
        if let Some(v) = var("FEEDLOOP_AUTH_SESSION_IDLE_SECS") {
            auth.session_idle_secs = parse("FEEDLOOP_AUTH_SESSION_IDLE_SECS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_AUTH_SESSION_MAX_SECS") {
            auth.session_max_secs = parse("FEEDLOOP_AUTH_SESSION_MAX_SECS", v)?;
        }
        if let Some(v) = var("FEEDLOOP_AUTH_SECURE_COOKIES") {
            auth.secure_cookies = parse("FEEDLOOP_AUTH_SECURE_COOKIES", v)?;
        }
        if let Some(v) = var("FEEDLOOP_AUTH_MAX_FEEDBACK_TOKEN_TTL_SECS") {
            auth.max_feedback_token_ttl_secs =
                parse("FEEDLOOP_AUTH_MAX_FEEDBACK_TOKEN_TTL_SECS", v)?;
        }
        if auth.session_idle_secs == 0 || auth.session_max_secs == 0 {
            return Err(ConfigError::Invalid(
                "auth.session_idle_secs and auth.session_max_secs must be at least 1".into(),
            ));
        }
        Ok(config)
    }

    /// The OTLP/gRPC address in effect; `None`: the receiver is off.
    pub fn otlp_grpc_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        parse_optional_addr(&self.otlp_grpc_listen)
    }

    /// The local model's folder in effect.
    pub fn model_dir(&self) -> PathBuf {
        if self.embedding.model_dir.as_os_str().is_empty() {
            feedloop_embed::model::default_dir(&self.data_dir)
        } else {
            self.embedding.model_dir.clone()
        }
    }

    /// The vector index folder in effect.
    pub fn index_dir(&self) -> PathBuf {
        if self.embedding.index_dir.as_os_str().is_empty() {
            self.data_dir.join("vectors")
        } else {
            self.embedding.index_dir.clone()
        }
    }

    /// The embedder these settings choose.
    pub fn embedder_config(&self) -> feedloop_embed::EmbedderConfig {
        let embedding = &self.embedding;
        match embedding.provider {
            EmbeddingProvider::Local => feedloop_embed::EmbedderConfig::Local {
                model_dir: self.model_dir(),
                threads: embedding.threads.max(1),
            },
            EmbeddingProvider::Openai => feedloop_embed::EmbedderConfig::OpenAi {
                base_url: embedding.base_url.clone(),
                model: embedding.model.clone(),
                api_key: Some(embedding.api_key.clone()).filter(|key| !key.is_empty()),
                dimensions: embedding.dimensions,
                batch_size: embedding.request_batch_size.max(1),
            },
            EmbeddingProvider::Hash => feedloop_embed::EmbedderConfig::Hash {
                dimensions: if embedding.dimensions == 0 {
                    384
                } else {
                    embedding.dimensions
                },
            },
        }
    }

    /// The database URL in effect.
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("feedloop.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The detectors' and webhooks' settings as the server takes them.
    pub fn analytics_config(&self) -> feedloop_server::analytics::AnalyticsConfig {
        let analytics = &self.analytics;
        let secs = |secs: u64| jiff::SignedDuration::from_secs(secs.min(i64::MAX as u64) as i64);
        feedloop_server::analytics::AnalyticsConfig {
            regression_alpha: analytics.regression_alpha,
            regression_min_traces: analytics.regression_min_traces,
            regression_window: secs(analytics.regression_window_hours.saturating_mul(3_600)),
            spike_alpha: analytics.spike_alpha,
            spike_min_traces: analytics.spike_min_traces,
            spike_baseline: secs(analytics.spike_baseline_hours.saturating_mul(3_600)),
            webhook_max_attempts: analytics.webhook_max_attempts,
            webhook_base_delay: secs(analytics.webhook_base_delay_secs),
            webhook_max_delay: secs(analytics.webhook_max_delay_secs),
            webhook_timeout: std::time::Duration::from_secs(analytics.webhook_timeout_secs),
        }
    }

    /// Sessions, tokens, rate limits and the time-out as the server takes them.
    pub fn access_config(&self) -> feedloop_server::access::AccessConfig {
        use std::time::Duration;
        feedloop_server::access::AccessConfig {
            rate_limit: feedloop_server::access::limits::RateLimit {
                requests_per_second: self.limits.requests_per_second,
                burst: self.limits.burst,
            },
            request_timeout: (self.limits.request_timeout_secs > 0)
                .then(|| Duration::from_secs(self.limits.request_timeout_secs)),
            max_in_flight_requests: self.limits.max_in_flight_requests,
            session_idle: Duration::from_secs(self.auth.session_idle_secs),
            session_max: Duration::from_secs(self.auth.session_max_secs),
            secure_cookies: self.auth.secure_cookies,
            max_token_ttl: Duration::from_secs(self.auth.max_feedback_token_ttl_secs),
        }
    }

    /// The gateway's settings as the server takes them.
    pub fn gateway_config(&self) -> feedloop_server::gateway::GatewayConfig {
        let gateway = &self.gateway;
        let non_empty = |text: &str| Some(text.to_owned()).filter(|text| !text.is_empty());
        feedloop_server::gateway::GatewayConfig {
            upstream_base_url: non_empty(&gateway.upstream_base_url),
            upstream_api_key: non_empty(&gateway.upstream_api_key),
            timeout: std::time::Duration::from_secs(gateway.timeout_secs),
        }
    }

    pub fn store_options(&self) -> feedloop_store::StoreOptions {
        feedloop_store::StoreOptions {
            read_connections: self.store.read_connections,
            max_items_per_commit: self.store.max_items_per_commit,
            write_queue: self.store.write_queue,
            sqlite_cache_mib: self.store.sqlite_cache_mib,
            sqlite_sync_full: self.store.sqlite_sync_full,
            postgres_max_connections: self.store.postgres_max_connections,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_overrides_file_overrides_defaults() {
        let file =
            "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/a\"\n[store]\nsqlite_cache_mib = 8\n";
        let config = Config::load(Some(file), &env(&[("FEEDLOOP_DATA_DIR", "/tmp/b")])).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/b"));
        assert_eq!(config.store.sqlite_cache_mib, 8);
        assert_eq!(config.store.write_queue, StoreConfig::default().write_queue);
        assert_eq!(config.database_url(), "sqlite:///tmp/b/feedloop.db");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(Config::load(Some("lisen = \"x\""), &HashMap::new()).is_err());
        assert!(Config::load(None, &env(&[("FEEDLOOP_LISTEN", "nowhere")])).is_err());
    }

    #[test]
    fn the_embedder_is_chosen_by_file_and_environment() {
        let config = Config::load(None, &HashMap::new()).unwrap();
        assert!(matches!(
            config.embedder_config(),
            feedloop_embed::EmbedderConfig::Local { model_dir, threads: 1 }
                if model_dir == std::path::Path::new("./feedloop-data/models/all-MiniLM-L6-v2")
        ));
        let file = "[embedding]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"m\"\ndimensions = 8\n";
        let config =
            Config::load(Some(file), &env(&[("FEEDLOOP_EMBEDDING_API_KEY", "sk")])).unwrap();
        assert_eq!(
            config.embedder_config(),
            feedloop_embed::EmbedderConfig::OpenAi {
                base_url: "http://127.0.0.1:9/v1".into(),
                model: "m".into(),
                api_key: Some("sk".into()),
                dimensions: 8,
                batch_size: 64,
            }
        );
        let config = Config::load(None, &env(&[("FEEDLOOP_EMBEDDING_PROVIDER", "hash")])).unwrap();
        assert_eq!(
            config.embedder_config(),
            feedloop_embed::EmbedderConfig::Hash { dimensions: 384 }
        );
        let error =
            Config::load(None, &env(&[("FEEDLOOP_EMBEDDING_PROVIDER", "bert")])).unwrap_err();
        assert!(
            error.to_string().contains("FEEDLOOP_EMBEDDING_PROVIDER"),
            "{error}"
        );
    }

    #[test]
    fn the_otlp_grpc_receiver_is_on_by_default_and_can_be_turned_off() {
        let config = Config::load(None, &HashMap::new()).unwrap();
        assert_eq!(
            config.otlp_grpc_addr().unwrap(),
            Some(SocketAddr::from(([127, 0, 0, 1], 4317)))
        );
        let file = "otlp_grpc_listen = \"0.0.0.0:14317\"\n";
        let config = Config::load(Some(file), &HashMap::new()).unwrap();
        assert_eq!(config.otlp_grpc_addr().unwrap().unwrap().port(), 14317);
        let env = HashMap::from([("FEEDLOOP_OTLP_GRPC_LISTEN".to_owned(), "off".to_owned())]);
        assert_eq!(
            Config::load(Some(file), &env)
                .unwrap()
                .otlp_grpc_addr()
                .unwrap(),
            None
        );
        let env = HashMap::from([(
            "FEEDLOOP_OTLP_GRPC_LISTEN".to_owned(),
            "nonsense".to_owned(),
        )]);
        assert!(Config::load(None, &env).is_err());
    }

    #[test]
    fn the_gateway_is_set_by_file_and_environment() {
        let config = Config::load(None, &HashMap::new()).unwrap();
        assert_eq!(
            config.gateway_config(),
            feedloop_server::gateway::GatewayConfig {
                upstream_base_url: None,
                upstream_api_key: None,
                timeout: std::time::Duration::from_secs(120),
            }
        );
        let file = "[gateway]\nupstream_base_url = \"http://127.0.0.1:9/v1\"\ntimeout_secs = 30\n";
        let config = Config::load(
            Some(file),
            &env(&[
                ("FEEDLOOP_GATEWAY_UPSTREAM_API_KEY", "sk-up"),
                ("FEEDLOOP_GATEWAY_TIMEOUT_SECS", "5"),
            ]),
        )
        .unwrap();
        assert_eq!(
            config.gateway_config(),
            feedloop_server::gateway::GatewayConfig {
                upstream_base_url: Some("http://127.0.0.1:9/v1".into()),
                upstream_api_key: Some("sk-up".into()),
                timeout: std::time::Duration::from_secs(5),
            }
        );
        let config = Config::load(
            Some(file),
            &env(&[("FEEDLOOP_GATEWAY_UPSTREAM_BASE_URL", "http://10.0.0.1/v1")]),
        )
        .unwrap();
        assert_eq!(config.gateway.upstream_base_url, "http://10.0.0.1/v1");
        assert_eq!(config.gateway.timeout_secs, 30);
        for bad in [
            ("FEEDLOOP_GATEWAY_TIMEOUT_SECS", "soon"),
            ("FEEDLOOP_GATEWAY_TIMEOUT_SECS", "0"),
        ] {
            let error = Config::load(None, &env(&[bad])).unwrap_err();
            assert!(
                error.to_string().contains("timeout_secs")
                    || error.to_string().contains("TIMEOUT_SECS"),
                "{error}"
            );
        }
    }

    #[test]
    fn limits_and_auth_are_set_by_file_and_environment() {
        let file =
            "[limits]\nrequests_per_second = 5\nburst = 10\n[auth]\nsecure_cookies = false\n";
        let config = Config::load(
            Some(file),
            &env(&[
                ("FEEDLOOP_LIMITS_BURST", "20"),
                ("FEEDLOOP_AUTH_SESSION_IDLE_SECS", "60"),
            ]),
        )
        .unwrap();
        let access = config.access_config();
        assert_eq!(access.rate_limit.requests_per_second, 5.0);
        assert_eq!(access.rate_limit.burst, 20);
        assert!(!access.secure_cookies);
        assert_eq!(access.session_idle, std::time::Duration::from_secs(60));
        assert!(Config::load(Some("[limits]\nrequests_per_second = -1\n"), &env(&[])).is_err());
        assert!(Config::load(Some("[limits]\nburst = 0\n"), &env(&[])).is_err());
        let off = Config::load(Some("[limits]\nrequest_timeout_secs = 0\n"), &env(&[])).unwrap();
        assert_eq!(off.access_config().request_timeout, None);
    }

    #[test]
    fn the_example_config_parses_to_the_defaults() {
        let text = include_str!("../../../feedloop.example.toml");
        assert_eq!(
            Config::load(Some(text), &HashMap::new()).unwrap(),
            Config::default()
        );
    }
}
