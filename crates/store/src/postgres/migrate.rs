//! Numbered migrations for PostgreSQL (`migrations/postgres/NNNN_*.sql`), applied in order at
//! open, each in its own transaction.
//!
//! Several replicas may start at once against one database. Each migration's transaction first
//! takes a transaction-scoped advisory lock and then reads the schema version again, so exactly
//! one replica applies a given migration and the others find it applied; the lock is released by
//! the commit. A database whose schema is newer than this build knows is refused, as SQLite
//! does.

use tokio_postgres::{Client, NoTls};

use super::{connection_config, first_connection};
use crate::{Result, StoreError};

/// (version, SQL). Append only: a released migration never changes.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_coordination.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_semantic_memory.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_lessons.sql"),
    ),
    (
        5,
        include_str!("../../migrations/postgres/0005_signals.sql"),
    ),
    (6, include_str!("../../migrations/postgres/0006_review.sql")),
    (
        7,
        include_str!("../../migrations/postgres/0007_datasets.sql"),
    ),
    (
        8,
        include_str!("../../migrations/postgres/0008_clusters.sql"),
    ),
    (
        9,
        include_str!("../../migrations/postgres/0009_analytics.sql"),
    ),
    (
        10,
        include_str!("../../migrations/postgres/0010_analytics_buckets.sql"),
    ),
    (
        11,
        include_str!("../../migrations/postgres/0011_access.sql"),
    ),
    (
        12,
        include_str!("../../migrations/postgres/0012_privacy.sql"),
    ),
    (
        13,
        include_str!("../../migrations/postgres/0013_trace_filter_indexes.sql"),
    ),
];

/// The advisory lock key of migrations: "feedloop" in ASCII.
const MIGRATION_LOCK: i64 = 0x6665_6564_6c6f_6f70;

/// Connects to `url` and applies pending migrations; returns how many this call applied (0 when
/// the schema is current). For a `migrate` command, or for tooling that migrates before
/// starting servers; [`super::PostgresStore::open`] applies them too.
pub async fn migrate(url: &str) -> Result<u32> {
    let config = connection_config(url)?;
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| first_connection(e.into()))?;
    let driver = tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "postgres migration connection failed");
        }
    });
    let applied = apply(&mut client).await;
    drop(client);
    // The connection task ends once the client is gone.
    let _ = driver.await;
    applied
}

/// Applies pending migrations over `client`; returns how many it applied.
pub(super) async fn apply(client: &mut Client) -> Result<u32> {
    let latest = MIGRATIONS.last().map_or(0, |(version, _)| *version);
    let mut applied = 0;
    for (version, sql) in MIGRATIONS {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        // Created under the lock: two concurrent `CREATE TABLE IF NOT EXISTS` can both try to
        // create the table, and one fails.
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .await?;
        let current: i32 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                &[],
            )
            .await?
            .try_get(0)?;
        if current > latest {
            return Err(StoreError::Config(format!(
                "the database has schema version {current}, newer than this feedloop knows ({latest}): upgrade feedloop"
            )));
        }
        if current >= *version {
            tx.commit().await?;
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &jiff::Timestamp::now().as_microsecond()],
        )
        .await?;
        tx.commit().await?;
        applied += 1;
        tracing::info!(version, "applied postgres migration");
    }
    Ok(applied)
}
