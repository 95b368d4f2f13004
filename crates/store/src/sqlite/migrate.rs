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
    (
        14,
        include_str!("../../migrations/sqlite/0014_spans_by_trace_seq.sql"),
    ),
    (
        15,
        include_str!("../../migrations/sqlite/0015_trace_insert_without_trigger.sql"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_stored_before_0014_find_their_trace_by_its_sequence_number() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        for (version, sql) in MIGRATIONS.iter().filter(|(version, _)| *version < 14) {
            conn.execute_batch(sql).unwrap();
            conn.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, 0)",
                [version],
            )
            .unwrap();
        }
        conn.execute_batch(
            "INSERT INTO traces (seq, project_id, id, started_at, doc) VALUES (7, 1, 'a', 0, '{}'), (9, 1, 'b', 0, '{}');
             INSERT INTO spans (project_id, trace_id, id, started_at, doc)
             VALUES (1, 'b', 's1', 0, '{}'), (1, 'a', 's1', 0, '{}'), (1, 'b', 's2', 0, '{}');",
        )
        .unwrap();
        apply(&mut conn).unwrap();
        let spans: Vec<(i64, String, String)> = conn
            .prepare("SELECT trace_seq, trace_id, id FROM spans ORDER BY seq")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let expected = [(9, "b", "s1"), (7, "a", "s1"), (9, "b", "s2")]
            .map(|(seq, trace, id)| (seq, trace.to_owned(), id.to_owned()));
        assert_eq!(spans, expected);
        let duplicate = conn.execute(
            "INSERT INTO spans (project_id, trace_seq, trace_id, id, started_at, doc) VALUES (1, 9, 'b', 's2', 0, '{}')",
            [],
        );
        assert!(duplicate.is_err(), "a span id is unique within its trace");
    }
}
