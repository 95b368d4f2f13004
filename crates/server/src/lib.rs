//! feedloop's HTTP API: the router, its state and the server loop.
//!
//! Handlers are thin: they extract (see [`extract`]), call an operation (see [`ops`]) and map the
//! result. The binary calls [`serve`]; tests call it too, on port 0.

pub mod error;
pub mod extract;
mod openapi;
pub mod ops;
mod query;
mod routes;
pub mod wire;

use axum::Router;
use feedloop_core::clock::Clock;
use feedloop_store::Store;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;

pub use openapi::openapi_document;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
    /// Most traces a session view returns.
    pub max_session_traces: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 16 * 1024 * 1024,
            max_session_traces: 1_000,
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub config: Arc<ServerConfig>,
}

/// The whole API as one router.
pub fn router(state: AppState) -> Router {
    routes::router(state)
}

/// Serves the API on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
