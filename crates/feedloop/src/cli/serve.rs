//! `feedloop serve`: open the store, make sure a project and a key exist, serve the API.

use clap::Args;
use feedloop_core::auth::KeyRole;
use feedloop_core::clock::{Clock, SystemClock};
use feedloop_server::{AppState, ServerConfig};
use feedloop_store::Store;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

use super::StoreArgs;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on (host:port).
    #[arg(long, env = "FEEDLOOP_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address of the OTLP/gRPC receiver (host:port), or `off`. Default 127.0.0.1:4317.
    #[arg(long, env = "FEEDLOOP_OTLP_GRPC_LISTEN")]
    pub otlp_grpc_listen: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "FEEDLOOP_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
}

/// The name of the project created on first start.
pub const DEFAULT_PROJECT: &str = "default";

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = args.store.load_config()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(grpc) = args.otlp_grpc_listen {
        config.otlp_grpc_listen = grpc;
    }
    let grpc_addr = config.otlp_grpc_addr()?;
    if let Some(limit) = args.max_body_bytes {
        config.max_body_bytes = limit;
    }
    crate::logging::init(config.log_format);
    let url = config.database_url();
    let store = feedloop_store::open(&url, &config.store_options()).await?;
    tracing::info!(database = %url, "store open");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    first_admin(store.as_ref(), clock.as_ref(), &std::env::vars().collect()).await?;
    if let Some(secret) = bootstrap(store.as_ref(), clock.as_ref()).await? {
        println!(
            "Created project {DEFAULT_PROJECT:?} and its admin API key (shown once, stored hashed):\n\n    {secret}\n\n\
             Send it as 'Authorization: Bearer <key>'. More keys: feedloop keys create --help"
        );
    }
    let listener = TcpListener::bind(config.listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "feedloop listening");
    let grpc_listener = match grpc_addr {
        Some(addr) => {
            let grpc_listener = TcpListener::bind(addr).await.map_err(|error| {
                anyhow::anyhow!(
                    "cannot listen for OTLP/gRPC on {addr}: {error} (set otlp_grpc_listen, or \"off\")"
                )
            })?;
            tracing::info!(addr = %grpc_listener.local_addr()?, "OTLP/gRPC listening");
            Some(grpc_listener)
        }
        None => None,
    };
    let server_config = ServerConfig {
        max_body_bytes: config.max_body_bytes,
        max_batch_items: config.max_batch_items,
        change_poll_interval: std::time::Duration::from_millis(config.change_poll_interval_ms),
        job_tick_interval: std::time::Duration::from_millis(config.job_tick_interval_ms),
        gateway: config.gateway_config(),
        analytics: config.analytics_config(),
        access: config.access_config(),
        ..ServerConfig::default()
    };
    tracing::info!(replica = %server_config.replica_id, "replica starting");
    let embedder = super::model::embedder(&config).await?;
    let memory = Arc::new(super::model::memory(&config, store.clone(), embedder));
    // The gateway injects lessons from the lesson engine that AppState builds.
    let state = AppState::new(store.clone(), clock, server_config, memory);
    feedloop_server::serve_with_otlp_grpc(listener, grpc_listener, state, shutdown_signal())
        .await?;
    tracing::info!("feedloop stopped");
    Ok(())
}

/// On first start (no project yet): creates the default project and an admin key, and returns
/// the key's secret.
pub async fn bootstrap(store: &dyn Store, clock: &dyn Clock) -> anyhow::Result<Option<String>> {
    if !store.list_projects().await?.is_empty() {
        return Ok(None);
    }
    let project = store.create_project(DEFAULT_PROJECT, clock.now()).await?;
    let (secret, record) =
        feedloop_server::ops::generate_key("admin (first start)".into(), KeyRole::Admin);
    store.create_key(project.id, record, clock.now()).await?;
    tracing::info!(
        project = DEFAULT_PROJECT,
        "created the default project and its admin key"
    );
    Ok(Some(secret))
}

/// With FEEDLOOP_ADMIN_EMAIL and FEEDLOOP_ADMIN_PASSWORD set and no account yet, creates that
/// server admin (so a container can start signed-in-able without a shell). Returns whether it
/// did.
pub async fn first_admin(
    store: &dyn Store,
    clock: &dyn Clock,
    env: &std::collections::HashMap<String, String>,
) -> anyhow::Result<bool> {
    let (Some(email), Some(password)) = (
        env.get("FEEDLOOP_ADMIN_EMAIL"),
        env.get("FEEDLOOP_ADMIN_PASSWORD"),
    ) else {
        return Ok(false);
    };
    if store.count_users().await? > 0 {
        return Ok(false);
    }
    let user = super::users::create_user(store, clock, email, password, true).await?;
    tracing::info!(user = user.id, email = %user.email, "created the first admin");
    Ok(true)
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: draining in-flight requests");
}
