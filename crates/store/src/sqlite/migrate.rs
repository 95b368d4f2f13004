//! Numbered migrations, applied in order at start, each in its own transaction.

use rusqlite::Connection;

use crate::{Result, StoreError};

/// (version, SQL). Append only: a released migration never changes.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/sqlite/0002_coordination.sql"),
    ),
    (
        3,
        include_str!("../../migrations/sqlite/0003_semantic_memory.sql"),
    ),
    (4, include_str!("../../migrations/sqlite/0004_lessons.sql")),
    (5, include_str!("../../migrations/sqlite/0005_signals.sql")),
    (6, include_str!("../../migrations/sqlite/0006_review.sql")),
    (7, include_str!("../../migrations/sqlite/0007_datasets.sql")),
    (8, include_str!("../../migrations/sqlite/0008_clusters.sql")),
    (
        9,
        include_str!("../../migrations/sqlite/0009_analytics.sql"),
    ),
    (
        10,
        include_str!("../../migrations/sqlite/0010_analytics_buckets.sql"),
    ),
    (11, include_str!("../../migrations/sqlite/0011_access.sql")),
    (12, include_str!("../../migrations/sqlite/0012_privacy.sql")),
    (
        13,
        include_str!("../../migrations/sqlite/0013_trace_filter_indexes.sql"),
    ),
];

pub fn apply(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    let current: i64 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
        [],
        |row| row.get(0),
    )?;
    let latest = MIGRATIONS.last().map_or(0, |(version, _)| *version);
    if current > latest {
        return Err(StoreError::Config(format!(
            "the database has schema version {current}, newer than this feedloop knows ({latest}): upgrade feedloop"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version > current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            (version, jiff::Timestamp::now().as_microsecond()),
        )?;
        tx.commit()?;
        tracing::info!(version, "applied sqlite migration");
    }
    Ok(())
}
