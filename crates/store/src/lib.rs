//! feedloop's storage: the [`Store`] trait that every backend implements, the records it returns,
//! and the backends themselves: SQLite (embedded, one writer) and PostgreSQL (shared by replicas).
//!
//! The trait has a read half ([`StoreRead`]) and a write half ([`StoreWrite`]). Writes are
//! acknowledged only after they are committed. Only this crate contains SQL.

pub mod access;
pub mod analytics;
mod analytics_cache;
pub mod backup;
mod checks;
pub mod clusters;
pub mod coordination;
pub mod datasets;
pub mod embeddings;
mod error;
pub mod lessons;
pub mod postgres;
pub mod privacy;
mod records;
pub mod restore;
pub mod review;
pub mod signals;
mod sql_analytics;
mod sql_filter;
pub mod sqlite;
pub mod webhooks;

pub use datasets::{DatasetSummary, DatasetVersion, Datasets, StoredDatasetItem};
pub use error::{ItemList, ItemRef, StoreError};
pub use lessons::{
    EffectCounts, EvidenceWatermark, INJECTION_METADATA_KEY, Injection, Lessons, NegativeCase,
};
pub use records::{
    ApiKey, IngestBatch, IngestReceipt, NewKey, Outcome, Project, Session, Stats, StoredFeedback,
    StoredTrace, TraceChain,
};

use async_trait::async_trait;
use feedloop_core::filter::{Filter, Page, PageRequest};
use feedloop_core::taxonomy::Category;
use feedloop_core::trace::Span;
use feedloop_core::{ProjectId, Timestamp, TraceId};
use std::sync::Arc;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that changes stored data. Every method commits before it returns `Ok`.
#[async_trait]
pub trait StoreWrite: Send + Sync {
    /// Stores trace parts (merged into existing traces) and then feedback, all or nothing.
    async fn ingest(
        &self,
        project: ProjectId,
        batch: IngestBatch,
        now: Timestamp,
    ) -> Result<IngestReceipt>;

    /// Creates a project with the default taxonomy. Fails with a conflict if the name is taken.
    async fn create_project(&self, name: &str, now: Timestamp) -> Result<Project>;

    async fn create_key(&self, project: ProjectId, key: NewKey, now: Timestamp) -> Result<ApiKey>;

    /// Revokes a key of the project; revoking twice is not an error.
    async fn revoke_key(&self, project: ProjectId, key_id: i64, now: Timestamp) -> Result<ApiKey>;

    /// Adds a category to the project's taxonomy, or reactivates a retired one. The description
    /// is updated when given.
    async fn add_category(
        &self,
        project: ProjectId,
        name: &str,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<Category>;

    /// Retires a category: feedback may no longer pick it; stored feedback keeps it.
    async fn retire_category(
        &self,
        project: ProjectId,
        name: &str,
        now: Timestamp,
    ) -> Result<Category>;
}

/// Everything that reads. Every method is scoped to one project, except the key and project
/// look-ups that authentication needs.
#[async_trait]
pub trait StoreRead: Send + Sync {
    async fn project(&self, id: ProjectId) -> Result<Option<Project>>;

    async fn project_by_name(&self, name: &str) -> Result<Option<Project>>;

    async fn list_projects(&self) -> Result<Vec<Project>>;

    /// The key with this hash, revoked or not.
    async fn key_by_hash(&self, hash: [u8; 32]) -> Result<Option<ApiKey>>;

    async fn list_keys(&self, project: ProjectId) -> Result<Vec<ApiKey>>;

    /// A trace with its spans, its feedback and its neighbours in the session.
    async fn trace_chain(&self, project: ProjectId, id: &TraceId) -> Result<Option<TraceChain>>;

    /// Traces that match the filter, by start time; spans are not loaded.
    async fn list_traces(
        &self,
        project: ProjectId,
        filter: &Filter,
        page: PageRequest,
    ) -> Result<Page<StoredTrace>>;

    /// The spans of each of these traces (traces without spans are left out).
    async fn spans_of(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, Vec<Span>)>>;

    /// Feedback that matches the filter, by creation time.
    async fn list_feedback(
        &self,
        project: ProjectId,
        filter: &Filter,
        page: PageRequest,
    ) -> Result<Page<StoredFeedback>>;

    /// A session's traces in order, each with its feedback, up to `max_traces`.
    async fn session(
        &self,
        project: ProjectId,
        session_id: &str,
        max_traces: u32,
    ) -> Result<Option<Session>>;

    /// The whole taxonomy, retired categories included.
    async fn taxonomy(&self, project: ProjectId) -> Result<Vec<Category>>;

    async fn stats(&self, project: ProjectId) -> Result<Stats>;
}

/// A complete backend: data (traces and feedback, vectors, lessons, signal settings and
/// satisfaction), and the coordination of replicas on it.
pub trait Store:
    StoreRead
    + StoreWrite
    + access::Access
    + embeddings::Embeddings
    + lessons::Lessons
    + coordination::Coordination
    + restore::Restore
    + signals::Signals
    + analytics::Analytics
    + webhooks::Webhooks
    + review::Review
    + clusters::Clusters
    + datasets::Datasets
    + privacy::Privacy
{
}

impl<T> Store for T where
    T: StoreRead
        + StoreWrite
        + access::Access
        + embeddings::Embeddings
        + lessons::Lessons
        + coordination::Coordination
        + restore::Restore
        + signals::Signals
        + analytics::Analytics
        + webhooks::Webhooks
        + review::Review
        + clusters::Clusters
        + datasets::Datasets
        + privacy::Privacy
{
}

/// Opens the store that `url` names: `sqlite://PATH` (a database file, created with its
/// directory if missing) or `postgres://…` / `postgresql://…` (a PostgreSQL database, see
/// [`postgres`]). Migrations are applied before it returns.
pub async fn open(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let store = sqlite::SqliteStore::open(path.as_ref(), options).await?;
        return Ok(Arc::new(store));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let store = postgres::PostgresStore::open(url, options).await?;
        return Ok(Arc::new(store));
    }
    // Only the scheme is repeated: the rest of a URL may hold a password.
    let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
    Err(StoreError::Config(format!(
        "unsupported database url scheme {scheme:?}: use sqlite://PATH or postgres://USER@HOST/DATABASE"
    )))
}

/// Tuning that applies to every backend.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections used for reads.
    pub read_connections: usize,
    /// Most items the writer puts into one transaction when it groups concurrent writes.
    pub max_items_per_commit: usize,
    /// Pending writes the writer queue holds before senders wait.
    pub write_queue: usize,
    /// SQLite page cache per connection, in MiB.
    pub sqlite_cache_mib: u32,
    /// SQLite: answer a write only once its commit is synced to disk (the writer's sync thread
    /// syncs the WAL, like `synchronous = FULL`); else commits are not synced (`NORMAL`: the
    /// last ones can be lost on power loss, never on a crash of the process).
    pub sqlite_sync_full: bool,
    /// Most connections the PostgreSQL pool opens (reads and writes alike).
    pub postgres_max_connections: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            read_connections: 4,
            max_items_per_commit: 5_000,
            write_queue: 1_024,
            sqlite_cache_mib: 64,
            sqlite_sync_full: true,
            postgres_max_connections: 16,
        }
    }
}
