//! The embedded backend: one SQLite database file in WAL mode.
//!
//! One writer thread owns the only write connection and groups concurrent writes into shared
//! transactions ([`writer`]); reads run on a small pool of read-only connections on blocking
//! threads ([`pool`]); a third thread moves the WAL into the database file ([`checkpoint`]), so
//! that commits never wait for a checkpoint. Nothing here blocks the async runtime.

mod access;
mod admin;
mod allocator;
mod analytics;
mod checkpoint;
mod clusters;
mod coordination;
mod datasets;
mod embeddings;
mod filter;
mod ingest;
mod lessons;
mod migrate;
mod pool;
mod privacy;
mod read;
mod restore;
mod review;
mod signals;
mod span_docs;
mod webhooks;
mod writer;

use async_trait::async_trait;
use feedloop_core::filter::{Filter, Page, PageRequest};
use feedloop_core::taxonomy::Category;
use feedloop_core::trace::Span;
use feedloop_core::{ProjectId, Timestamp, TraceId};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;

use crate::embeddings::{EmbeddingTask, Embeddings, NewEmbedding, StoredEmbedding};
use crate::{
    ApiKey, IngestBatch, IngestReceipt, NewKey, Project, Result, Session, Stats, StoreError,
    StoreOptions, StoreRead, StoreWrite, StoredFeedback, StoredTrace, TraceChain,
};
pub use allocator::use_global_allocator;
use pool::ReadPool;
use writer::{SyncWal, WalFile, Writer};

/// Size up to which a statement journal (the copies of the pages a statement or a savepoint
/// changes, kept to undo it) stays in memory, in one block. SQLite's default, 64 KiB, is less
/// than one insert into `traces` (the table, its indexes, a trigger, a page split) may copy, and
/// a journal that spilled stays a file until its transaction ends: every later copy was a
/// `pwrite` (8 % of the server's CPU in the OTLP benchmark).
const STATEMENT_JOURNAL_IN_MEMORY: std::ffi::c_int = 1 << 20;

/// Keeps statement journals in memory up to 1 MiB. Like [`use_global_allocator`], it must run
/// before the process opens its first SQLite connection; afterwards SQLite refuses (`false` is
/// returned, nothing changes).
pub fn keep_statement_journals_in_memory() -> bool {
    // SAFETY: SQLITE_CONFIG_STMTJRNL_SPILL takes one int.
    let code = unsafe {
        rusqlite::ffi::sqlite3_config(
            rusqlite::ffi::SQLITE_CONFIG_STMTJRNL_SPILL,
            STATEMENT_JOURNAL_IN_MEMORY,
        )
    };
    code == rusqlite::ffi::SQLITE_OK
}

pub struct SqliteStore {
    writer: Writer,
    readers: ReadPool,
    _checkpointer: checkpoint::Checkpointer,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path, options: &StoreOptions) -> Result<Self> {
        let path = path.to_owned();
        let options = options.clone();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path, &options))
            .await
            .map_err(|e| StoreError::Internal(format!("open task failed: {e}")))?
    }

    fn open_blocking(path: &Path, options: &StoreOptions) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError::Config(format!("cannot create {}: {e}", dir.display())))?;
        }
        let mut conn = Connection::open(path)
            .map_err(|e| StoreError::Config(format!("cannot open {}: {e}", path.display())))?;
        // Statement journals of the writer spill to a temporary file past 64 KiB. Kept in
        // memory, a statement journal is a chunk list that every statement's release walks from
        // its start to truncate, and inside a job's savepoint it holds every page the job has
        // touched: a job of thousands of statements (a 5,000-row upsert, a 500-span batch) went
        // quadratic and held the writer for seconds. A file truncates in one call.
        configure(&conn, options, TempStore::File)?;
        migrate::apply(&mut conn)?;
        // The writer never checkpoints inside a commit; the checkpointer does it beside it.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0")?;
        // Durable commits are synced by the writer's sync thread, not inside COMMIT (writer.rs).
        let sync_wal = if options.sqlite_sync_full {
            conn.execute_batch("PRAGMA synchronous = NORMAL")?;
            Some(Box::new(WalFile::open(path)?) as Box<dyn SyncWal>)
        } else {
            None
        };
        let checkpoint_conn = Connection::open(path)?;
        configure(&checkpoint_conn, options, TempStore::Memory)?;
        let wal_length = std::sync::Arc::new(checkpoint::WalLength::default());
        let readers = (0..options.read_connections.max(1))
            .map(|_| {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                configure(&conn, options, TempStore::Memory)?;
                Ok(conn)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            writer: Writer::start(
                conn,
                options.max_items_per_commit,
                options.write_queue,
                wal_length.clone(),
                sync_wal,
            ),
            readers: ReadPool::new(readers),
            _checkpointer: checkpoint::Checkpointer::start(checkpoint_conn, wal_length),
        })
    }
}

/// Where a connection keeps temporary tables, indexes and statement journals.
#[derive(Debug, Clone, Copy)]
enum TempStore {
    File,
    Memory,
}

fn configure(conn: &Connection, options: &StoreOptions, temp_store: TempStore) -> Result<()> {
    let synchronous = if options.sqlite_sync_full {
        "FULL"
    } else {
        "NORMAL"
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {synchronous};
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = {temp_store:?};
         PRAGMA cache_size = -{};",
        u64::from(options.sqlite_cache_mib) * 1024
    ))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Keep one plan per statement: without this, SQLite re-prepares cached statements whose plan
    // may depend on bound values, every time they run.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// Bytes that SQLite's allocator holds in this process right now: page caches of every connection,
/// prepared statements, schema (all SQLite databases of the process together).
pub fn memory_used() -> u64 {
    // SAFETY: sqlite3_memory_used only reads SQLite's memory statistics; it is thread-safe.
    let used = unsafe { rusqlite::ffi::sqlite3_memory_used() };
    u64::try_from(used).unwrap_or(0)
}

fn micros(ts: Timestamp) -> i64 {
    ts.as_microsecond()
}

fn timestamp(micros: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(micros)
        .map_err(|e| StoreError::Internal(format!("stored time {micros} out of range: {e}")))
}

#[async_trait]
impl StoreWrite for SqliteStore {
    async fn ingest(
        &self,
        project: ProjectId,
        batch: IngestBatch,
        now: Timestamp,
    ) -> Result<IngestReceipt> {
        // Serialising and hashing happen here, in parallel with the writer thread.
        let prepared = ingest::prepare(batch, now)?;
        self.writer
            .run_batch(prepared, move |tx, prepared| {
                ingest::ingest(tx, project, prepared)
            })
            .await
    }

    async fn create_project(&self, name: &str, now: Timestamp) -> Result<Project> {
        let name = name.to_owned();
        self.writer
            .run(1, move |tx| admin::create_project(tx, &name, now))
            .await
    }

    async fn create_key(&self, project: ProjectId, key: NewKey, now: Timestamp) -> Result<ApiKey> {
        self.writer
            .run(1, move |tx| admin::create_key(tx, project, &key, now))
            .await
    }

    async fn revoke_key(&self, project: ProjectId, key_id: i64, now: Timestamp) -> Result<ApiKey> {
        self.writer
            .run(1, move |tx| admin::revoke_key(tx, project, key_id, now))
            .await
    }

    async fn add_category(
        &self,
        project: ProjectId,
        name: &str,
        description: Option<&str>,
        now: Timestamp,
    ) -> Result<Category> {
        let (name, description) = (name.to_owned(), description.map(str::to_owned));
        self.writer
            .run(1, move |tx| {
                admin::add_category(tx, project, &name, description.as_deref(), now)
            })
            .await
    }

    async fn retire_category(
        &self,
        project: ProjectId,
        name: &str,
        now: Timestamp,
    ) -> Result<Category> {
        let name = name.to_owned();
        self.writer
            .run(1, move |tx| admin::retire_category(tx, project, &name, now))
            .await
    }
}

#[async_trait]
impl StoreRead for SqliteStore {
    async fn project(&self, id: ProjectId) -> Result<Option<Project>> {
        self.readers
            .run(move |conn| admin::project_by_id(conn, id))
            .await
    }

    async fn project_by_name(&self, name: &str) -> Result<Option<Project>> {
        let name = name.to_owned();
        self.readers
            .run(move |conn| admin::project_by_name(conn, &name))
            .await
    }

    async fn list_projects(&self) -> Result<Vec<Project>> {
        self.readers.run(admin::list_projects).await
    }

    async fn key_by_hash(&self, hash: [u8; 32]) -> Result<Option<ApiKey>> {
        self.readers
            .run(move |conn| admin::key_by_hash(conn, &hash))
            .await
    }

    async fn list_keys(&self, project: ProjectId) -> Result<Vec<ApiKey>> {
        self.readers
            .run(move |conn| admin::list_keys(conn, project))
            .await
    }

    async fn trace_chain(&self, project: ProjectId, id: &TraceId) -> Result<Option<TraceChain>> {
        let id = id.clone();
        self.readers
            .run(move |conn| read::trace_chain(conn, project, &id))
            .await
    }

    async fn list_traces(
        &self,
        project: ProjectId,
        filter: &Filter,
        page: PageRequest,
    ) -> Result<Page<StoredTrace>> {
        let filter = filter.clone();
        self.readers
            .run(move |conn| read::list_traces(conn, project, &filter, page))
            .await
    }

    async fn spans_of(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, Vec<Span>)>> {
        let trace_ids = trace_ids.to_vec();
        self.readers
            .run(move |conn| read::spans_of(conn, project, &trace_ids))
            .await
    }

    async fn list_feedback(
        &self,
        project: ProjectId,
        filter: &Filter,
        page: PageRequest,
    ) -> Result<Page<StoredFeedback>> {
        let filter = filter.clone();
        self.readers
            .run(move |conn| read::list_feedback(conn, project, &filter, page))
            .await
    }

    async fn session(
        &self,
        project: ProjectId,
        session_id: &str,
        max_traces: u32,
    ) -> Result<Option<Session>> {
        let session_id = session_id.to_owned();
        self.readers
            .run(move |conn| read::session(conn, project, &session_id, max_traces))
            .await
    }

    async fn taxonomy(&self, project: ProjectId) -> Result<Vec<Category>> {
        self.readers
            .run(move |conn| admin::taxonomy(conn, project))
            .await
    }

    async fn stats(&self, project: ProjectId) -> Result<Stats> {
        self.readers
            .run(move |conn| read::stats(conn, project))
            .await
    }
}

#[async_trait]
impl Embeddings for SqliteStore {
    async fn claim_embedding_tasks(
        &self,
        limit: u32,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<Vec<EmbeddingTask>> {
        self.writer
            .run(1, move |tx| {
                embeddings::claim_tasks(tx, limit, now, lease_until)
            })
            .await
    }

    async fn store_embeddings(
        &self,
        model: &str,
        new: Vec<NewEmbedding>,
        now: Timestamp,
    ) -> Result<()> {
        let model = model.to_owned();
        self.writer
            .run(new.len(), move |tx| {
                embeddings::store(tx, &model, &new, now)
            })
            .await
    }

    async fn embedding_backlog(&self) -> Result<u64> {
        self.readers.run(embeddings::backlog).await
    }

    async fn queue_missing_embeddings(&self, model: &str) -> Result<u64> {
        let model = model.to_owned();
        self.writer
            .run(1, move |tx| embeddings::queue_missing(tx, &model))
            .await
    }

    async fn embeddings_since(
        &self,
        model: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<StoredEmbedding>> {
        let model = model.to_owned();
        self.readers
            .run(move |conn| embeddings::since(conn, &model, after, limit))
            .await
    }

    async fn traces_by_seq(&self, project: ProjectId, seqs: &[i64]) -> Result<Vec<StoredTrace>> {
        let seqs = seqs.to_vec();
        self.readers
            .run(move |conn| embeddings::traces_by_seq(conn, project, &seqs))
            .await
    }

    async fn trace_seqs(
        &self,
        project: ProjectId,
        filter: &Filter,
        limit: u32,
    ) -> Result<Vec<i64>> {
        let filter = filter.clone();
        self.readers
            .run(move |conn| embeddings::trace_seqs(conn, project, &filter, limit))
            .await
    }

    async fn feedback_on(
        &self,
        project: ProjectId,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, Vec<StoredFeedback>)>> {
        let trace_ids = trace_ids.to_vec();
        self.readers
            .run(move |conn| embeddings::feedback_on(conn, project, &trace_ids))
            .await
    }
}
