//! The store contract suite run against the SQLite backend, each test on a fresh database in
//! its own temporary directory.

// The contract cases are plain async functions, not `#[test]`s, so clippy's test allowance for
// `unwrap` does not reach them; in test code a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod contract;

use contract::StoreUnderTest;
use feedloop_store::StoreOptions;

/// A new SQLite store, opened through the same resolver as the server uses, whose directory
/// lives as long as the returned guard.
async fn sqlite_store() -> StoreUnderTest {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("feedloop.db").display());
    let store = feedloop_store::open(&url, &options())
        .await
        .expect("the sqlite store opens");
    StoreUnderTest::new(store, dir)
}

/// Fewer read connections than the default keep many parallel tests within file limits, and
/// `synchronous = NORMAL` spares them an fsync per commit; neither changes the contract.
fn options() -> StoreOptions {
    StoreOptions {
        read_connections: 2,
        sqlite_sync_full: false,
        ..StoreOptions::default()
    }
}

store_contract_suite!(sqlite, sqlite_store());

mod sqlite_only {
    use super::*;
    use feedloop_core::feedback::{Feedback, FeedbackValue, Rating, Signal, Source};
    use feedloop_core::trace::TracePart;
    use feedloop_core::{FeedbackId, Timestamp, TraceId};
    use feedloop_store::IngestBatch;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + seconds).unwrap()
    }

    fn trace(id: &str, input: Option<&str>) -> TracePart {
        TracePart {
            id: TraceId::parse("id", id).unwrap(),
            input: input.map(str::to_owned),
            ..Default::default()
        }
    }

    fn feedback(id: &str, trace: &str, value: FeedbackValue) -> Feedback {
        Feedback {
            id: FeedbackId::parse("id", id).unwrap(),
            trace_id: TraceId::parse("trace_id", trace).unwrap(),
            span_id: None,
            session_id: None,
            source: Source::EndUser,
            author: None,
            author_role: None,
            confidence: None,
            metadata: Default::default(),
            created_at: None,
            value,
        }
    }

    fn thumbs(up: bool) -> FeedbackValue {
        FeedbackValue::Rating(Rating {
            value: if up { 1.0 } else { 0.0 },
            min: 0.0,
            max: 1.0,
            compared_to: None,
        })
    }

    fn signal(signal_type: &str) -> FeedbackValue {
        FeedbackValue::Signal(Signal {
            signal_type: signal_type.into(),
            value: None,
            details: Default::default(),
        })
    }

    /// Migration 3 on a database with data: negative feedback is marked (a thumbs down and a
    /// regenerate signal, not a thumbs up or a copy) and every trace with an input is queued.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn semantic_memory_migration_backfills_existing_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feedloop.db");
        let url = format!("sqlite://{}", path.display());
        let store = feedloop_store::open(&url, &options()).await.unwrap();
        let project = store.create_project("alpha", at(0)).await.unwrap().id;
        let batch = IngestBatch {
            traces: vec![
                trace("t1", Some("one")),
                trace("t2", Some("two")),
                trace("t3", None),
                trace("t4", Some("four")),
            ],
            feedback: vec![
                feedback("down", "t1", thumbs(false)),
                feedback("up", "t2", thumbs(true)),
                feedback("regen", "t3", signal("regenerate")),
                feedback("copy", "t4", signal("copy")),
            ],
        };
        store.ingest(project, batch, at(2)).await.unwrap();
        drop(store);

        // Back to schema 2, with the data.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        conn.execute_batch(
            "ALTER TABLE feedback DROP COLUMN negative;
             DROP TABLE embedding_queue;
             DROP TABLE embeddings;
             DROP TABLE lesson_versions;
             DROP TABLE lessons;
             DROP TABLE lesson_feedback;
             DROP TABLE loop_settings;
             DROP TABLE injections;
             DROP TABLE injection_lessons;
             DROP TABLE signal_settings;
             DROP TABLE signal_progress;
             DROP TABLE trace_satisfaction;
             DROP TABLE review_queues;
             DROP TABLE review_items;
             DROP TABLE review_verdicts;
             DROP TABLE review_events;
             DROP TABLE review_progress;
             DROP TABLE datasets;
             DROP TABLE dataset_items;
             DROP TABLE dataset_versions;
             DROP TABLE problem_clusters;
             DROP TABLE cluster_members;
             DROP TABLE alerts;
             DROP TABLE webhooks;
             DROP TABLE webhook_events;
             DROP TABLE webhook_deliveries;
             DROP TABLE webhook_attempts;
             DROP TABLE analytics_buckets;
             DROP TABLE analytics_epochs;
             DROP TABLE analytics_invalidations;
             DROP TRIGGER analytics_feedback_insert;
             DROP TRIGGER analytics_feedback_update;
             DROP TRIGGER analytics_feedback_delete;
             DROP TRIGGER analytics_trace_update;
             DROP TRIGGER analytics_trace_delete;
             DROP TRIGGER analytics_tag_insert;
             DROP TRIGGER analytics_tag_delete;
             DROP TABLE memberships;
             DROP TABLE sessions;
             DROP TABLE users;
             DROP TABLE feedback_token_secrets;
             DROP TABLE audit_log;
             ALTER TABLE api_keys DROP COLUMN allowed_origins;
             DROP TABLE privacy_settings;
             DROP TABLE erasure_receipts;
             DROP TABLE vector_removals;
             DELETE FROM schema_migrations WHERE version >= 3",
        )
        .unwrap();
        let store = feedloop_store::open(&url, &options()).await.unwrap();
        let negative: Vec<String> = conn
            .prepare("SELECT id FROM feedback WHERE negative = 1 ORDER BY id")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(negative, ["down", "regen"]);
        assert_eq!(store.embedding_backlog().await.unwrap(), 3);
        let texts: Vec<String> = store
            .claim_embedding_tasks(10, at(10), at(20))
            .await
            .unwrap()
            .into_iter()
            .map(|task| task.text)
            .collect();
        assert_eq!(texts, ["one", "two", "four"]);
    }
}
