//! The server backend: a PostgreSQL database, shared by any number of feedloop replicas.
//!
//! Connections come from a deadpool-postgres pool. Every write is one PostgreSQL transaction
//! (an ingest is all or nothing); concurrent writers are kept apart by row locks and
//! transaction-scoped advisory locks rather than by one writer thread, so several replicas may
//! write at once (see `ingest.rs` and `locks.rs`). Reads use the pool directly, or a read-only
//! repeatable-read transaction when they take several queries. The schema mirrors SQLite's, and
//! the two backends share the filter builder (`sql_filter.rs`).
//!
//! **No TLS.** Connections are made with `NoTls`: the database must be on the loopback interface
//! or a trusted private network. A URL that demands TLS (`sslmode=require`) is refused at open
//! rather than silently sent in clear.
//!
//! The pool fails fast when PostgreSQL is down: connecting and waiting for a free connection
//! each time out after a few seconds, and the error is [`StoreError::Unavailable`] (a 503). A
//! connection that broke (server restart, killed backend) is found closed when it is next taken
//! from the pool and replaced by a new one, so the store recovers by itself once the database is
//! back.

mod access;
mod admin;
mod analytics;
mod clusters;
mod coordination;
mod datasets;
mod embeddings;
mod ingest;
mod lessons;
mod locks;
mod migrate;
mod privacy;
mod read;
mod restore;
mod review;
mod rows;
mod signals;
mod webhooks;

pub use migrate::migrate;

use async_trait::async_trait;
use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};
use feedloop_core::filter::{Filter, Page, PageRequest};
use feedloop_core::taxonomy::Category;
use feedloop_core::trace::Span;
use feedloop_core::{ProjectId, Timestamp, TraceId};
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::{IsolationLevel, NoTls, Row};

use crate::embeddings::{EmbeddingTask, Embeddings, NewEmbedding, StoredEmbedding};
use crate::{
    ApiKey, IngestBatch, IngestReceipt, NewKey, Project, Result, Session, Stats, StoreError,
    StoreOptions, StoreRead, StoreWrite, StoredFeedback, StoredTrace, TraceChain,
};

/// How long a request waits for a free connection, and how long connecting (or checking a
/// pooled connection) may take, before the store answers `Unavailable`.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…` or `postgresql://…`) and applies
    /// pending migrations.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self> {
        let mut config = connection_config(url)?;
        // Plan every statement with its values and the table's current size. A generic plan made
        // while a table was small (a new database) can stay cached while the table grows, and a
        // scan that was cheap at a thousand rows is not at a million.
        let options_text = match config.get_options() {
            Some(given) => format!("{given} -c plan_cache_mode=force_custom_plan"),
            None => "-c plan_cache_mode=force_custom_plan".to_owned(),
        };
        config.options(&options_text);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A closed connection is replaced when taken; one that died silently fails its
                // first query with `Unavailable` and is closed, so it is replaced next time.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.postgres_max_connections.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Config(format!("postgres connection pool: {e}")))?;
        let mut client = pool.get().await.map_err(|e| first_connection(e.into()))?;
        migrate::apply(&mut client).await?;
        drop(client);
        Ok(Self { pool })
    }

    async fn client(&self) -> Result<Object> {
        Ok(self.pool.get().await?)
    }
}

/// The connection settings of `url`, with feedloop's defaults where the URL sets none.
fn connection_config(url: &str) -> Result<tokio_postgres::Config> {
    // The parse error never repeats the URL, which may hold a password.
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Config(format!("invalid postgres url: {e}")))?;
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err(StoreError::Config(
            "postgres url asks for TLS (sslmode=require), which feedloop does not support: \
             run the database on loopback or a trusted network"
                .into(),
        ));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(POOL_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("feedloop");
    }
    Ok(config)
}

/// The error of the first connection to a database. Not being able to reach it may pass
/// (`Unavailable`); any other refusal (no such database, authentication failed) is the
/// configuration's fault, not a bug.
fn first_connection(error: StoreError) -> StoreError {
    match error {
        StoreError::Internal(detail) => {
            StoreError::Config(format!("cannot connect to postgres: {detail}"))
        }
        other => other,
    }
}

fn micros(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

fn timestamp(micros: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(micros)
        .map_err(|e| StoreError::Internal(format!("stored time {micros} out of range: {e}")))
}

// Fixed SQL goes through the connection's statement cache: one round trip per query once
// prepared. Filter SQL varies with the filter and is sent unprepared instead (see `read.rs`), so
// that the caches stay small.

async fn query<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.query(&statement, params).await
}

async fn query_opt<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.query_opt(&statement, params).await
}

async fn query_one<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Row, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.query_one(&statement, params).await
}

async fn execute<C: GenericClient>(
    client: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.execute(&statement, params).await
}

#[async_trait]
impl StoreWrite for PostgresStore {
    async fn ingest(
        &self,
        project: ProjectId,
        batch: IngestBatch,
        now: Timestamp,
    ) -> Result<IngestReceipt> {
        let mut client = self.client().await?;
        ingest::ingest(&mut client, project, &batch, now).await
    }

    async fn create_project(&self, name: &str, now: Timestamp) -> Result<Project> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let project = admin::create_project(&tx, name, now).await?;
        tx.commit().await?;
        Ok(project)
    }

    async fn create_key(&self, project: ProjectId, key: NewKey, now: Timestamp) -> Result<ApiKey> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let key = admin::create_key(&tx, project, &key, now).await?;
        tx.commit().await?;
        Ok(key)
    }

    async fn revoke_key(&self, project: ProjectId, key_id: i64, now: Timestamp) -> Result<ApiKey> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let key = admin::revoke_key(&tx, project, key_id, now).await?;
        tx.commit().await?;
        Ok(key)
    }

    async fn add_category(
        &self,
        project: ProjectId,
        name: &str,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<Category> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let category = admin::add_category(&tx, project, name, description, now).await?;
        tx.commit().await?;
        Ok(category)
    }

    async fn retire_category(
        &self,
        project: ProjectId,
        name: &str,
        now: Timestamp,
    ) -> Result<Category> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let category = admin::retire_category(&tx, project, name, now).await?;
        tx.commit().await?;
        Ok(category)
    }
}

#[async_trait]
impl StoreRead for PostgresStore {
    async fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        admin::project_by_id(&self.client().await?, id).await
    }

    async fn project_by_name(&self, name: &str) -> Result<Option<Project>> {
        admin::project_by_name(&self.client().await?, name).await
    }

    async fn list_projects(&self) -> Result<Vec<Project>> {
        admin::list_projects(&self.client().await?).await
    }

    async fn key_by_hash(&self, hash: [u8; 32]) -> Result<Option<ApiKey>> {
        admin::key_by_hash(&self.client().await?, &hash).await
    }

    async fn list_keys(&self, project: ProjectId) -> Result<Vec<ApiKey>> {
        admin::list_keys(&self.client().await?, project).await
    }

    async fn trace_chain(&self, project: ProjectId, id: &TraceId) -> Result<Option<TraceChain>> {
        let mut client = self.client().await?;
        // One snapshot for the trace, its spans, feedback and neighbours.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let chain = read::trace_chain(&tx, project, id).await?;
        tx.commit().await?;
        Ok(chain)
    }

    async fn list_traces(
        &self,
        project: ProjectId,
        filter: &Filter,
        page: PageRequest,
    ) -> Result<Page<StoredTrace>> {
        read::list_traces(&self.client().await?, project, filter, page).await
    }

    async fn spans_of(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, Vec<Span>)>> {
        read::spans_of(&self.client().await?, project, trace_ids).await
    }

    async fn list_feedback(
        &self,
        project: ProjectId,
        filter: &Filter,
        page: PageRequest,
    ) -> Result<Page<StoredFeedback>> {
        read::list_feedback(&self.client().await?, project, filter, page).await
    }

    async fn session(
        &self,
        project: ProjectId,
        session_id: &str,
        max_traces: u32,
    ) -> Result<Option<Session>> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let session = read::session(&tx, project, session_id, max_traces).await?;
        tx.commit().await?;
        Ok(session)
    }

    async fn taxonomy(&self, project: ProjectId) -> Result<Vec<Category>> {
        admin::taxonomy(&self.client().await?, project).await
    }

    async fn stats(&self, project: ProjectId) -> Result<Stats> {
        read::stats(&self.client().await?, project).await
    }
}

#[async_trait]
impl Embeddings for PostgresStore {
    async fn claim_embedding_tasks(
        &self,
        limit: u32,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Vec<EmbeddingTask>> {
        let mut client = self.client().await?;
        embeddings::claim_tasks(&mut client, limit, now, lease_until).await
    }

    async fn store_embeddings(
        &self,
        model: &str,
        new: Vec<NewEmbedding>,
        now: Timestamp,
    ) -> Result<()> {
        let mut client = self.client().await?;
        embeddings::store(&mut client, model, &new, now).await
    }

    async fn embedding_backlog(&self) -> Result<u64> {
        embeddings::backlog(&self.client().await?).await
    }

    async fn queue_missing_embeddings(&self, model: &str) -> Result<u64> {
        let mut client = self.client().await?;
        embeddings::queue_missing(&mut client, model).await
    }

    async fn embeddings_since(
        &self,
        model: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEmbedding>> {
        embeddings::since(&self.client().await?, model, after, limit).await
    }

    async fn traces_by_seq(&self, project: ProjectId, seqs: &[i64]) -> Result<Vec<StoredTrace>> {
        embeddings::traces_by_seq(&self.client().await?, project, seqs).await
    }

    async fn trace_seqs(
        &self,
        project: ProjectId,
        filter: &Filter,
        limit: u32,
    ) -> Result<Vec<i64>> {
        embeddings::trace_seqs(&self.client().await?, project, filter, limit).await
    }

    async fn feedback_on(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, Vec<StoredFeedback>)>> {
        let mut client = self.client().await?;
        // One snapshot for the feedback of every trace asked about.
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let feedback = embeddings::feedback_on(&tx, project, trace_ids).await?;
        tx.commit().await?;
        Ok(feedback)
    }
}
