//! The store contract suite run against the PostgreSQL backend, and the behaviour only a shared
//! database has: migrations raced by replicas, replicas writing the same trace at once, and a
//! pool that recovers from broken connections.
//!
//! Each test creates a fresh database on the server named by `FEEDLOOP_TEST_POSTGRES_URL` (a
//! `postgres://` URL of a role that may create databases; default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and drops it when it ends. PostgreSQL must be
//! running: when it cannot be reached the tests fail, saying how to start it. They are never
//! skipped.

// The contract cases are plain async functions, not `#[test]`s, so clippy's test allowance for
// `unwrap` does not reach them; in test code a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod contract;

use contract::StoreUnderTest;
use feedloop_store::StoreOptions;
use tokio_postgres::NoTls;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn admin_url() -> String {
    std::env::var("FEEDLOOP_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// A connection for the test itself (creating databases, poking at the schema).
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "cannot connect to PostgreSQL at {url}: {error} ({error:?}).\n\
                 These tests need a running PostgreSQL server. Start the local one with\n    \
                 pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n\
                 or set FEEDLOOP_TEST_POSTGRES_URL to the URL of a role that may create databases."
            )
        });
    tokio::spawn(connection);
    client
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority = base.find("://").expect("a postgres:// URL") + 3;
    let base = match base[authority..].find('/') {
        Some(slash) => &base[..authority + slash],
        None => base,
    };
    format!("{base}/{database}{query}")
}

/// A database of its own for one test, dropped (with any connections left to it) when this
/// value is.
struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    async fn create() -> Self {
        let admin_url = admin_url();
        let admin = connect(&admin_url).await;
        let name = format!("feedloop_test_{:016x}", rand::random::<u64>());
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name} at {admin_url}: {e:?}"));
        let url = with_database(&admin_url, &name);
        Self {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        // `Drop` is synchronous and may run on a runtime thread, which cannot block on another
        // runtime: the drop gets a thread and a runtime of its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&admin_url, NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| e.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop test database {}: {error}", self.name),
            Err(_) => eprintln!("dropping test database {} panicked", self.name),
        }
    }
}

/// Options for tests: a small pool, so that parallel tests stay far from the server's
/// connection limit; it does not change the contract.
fn test_options() -> StoreOptions {
    StoreOptions {
        postgres_max_connections: 8,
        ..StoreOptions::default()
    }
}

/// A new PostgreSQL store on a fresh database, opened through the same resolver as the server
/// uses; the database lives as long as the returned guard.
async fn postgres_store() -> StoreUnderTest {
    let database = ScratchDatabase::create().await;
    let store = feedloop_store::open(&database.url, &test_options())
        .await
        .expect("the postgres store opens");
    StoreUnderTest::new(store, database)
}

store_contract_suite!(postgres, postgres_store());

mod postgres_only {
    use super::*;
    use feedloop_core::feedback::{Feedback, FeedbackValue, Rating, Signal, Source};
    use feedloop_core::filter::Filter;
    use feedloop_core::trace::TracePart;
    use feedloop_core::{FeedbackId, ProjectId, Timestamp, TraceId};
    use feedloop_store::embeddings::NewEmbedding;
    use feedloop_store::{IngestBatch, Outcome, Store, StoreError};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + seconds).unwrap()
    }

    fn part(id: &str, tag: &str) -> TracePart {
        TracePart {
            id: TraceId::parse("id", id).unwrap(),
            tags: [tag.to_owned()].into(),
            ..Default::default()
        }
    }

    fn rating(id: &str, trace: &str, created: i64) -> Feedback {
        Feedback {
            id: FeedbackId::parse("id", id).unwrap(),
            trace_id: TraceId::parse("trace_id", trace).unwrap(),
            span_id: None,
            session_id: None,
            source: Source::Reviewer,
            author: Some("alice".into()),
            author_role: None,
            confidence: None,
            metadata: Default::default(),
            created_at: Some(at(created)),
            value: FeedbackValue::Rating(Rating {
                value: 1.0,
                min: 0.0,
                max: 1.0,
                compared_to: None,
            }),
        }
    }

    fn batch(traces: Vec<TracePart>, feedback: Vec<Feedback>) -> IngestBatch {
        IngestBatch { traces, feedback }
    }

    /// Two replicas: two stores, each with its own pool, on one database.
    async fn replicas(database: &ScratchDatabase) -> (Arc<dyn Store>, Arc<dyn Store>) {
        let options = test_options();
        let a = feedloop_store::open(&database.url, &options);
        let b = feedloop_store::open(&database.url, &options);
        let (a, b) = tokio::join!(a, b);
        (a.unwrap(), b.unwrap())
    }

    /// Runs both ingests at once, each from its own task.
    async fn ingest_both(
        (a, b): (&Arc<dyn Store>, &Arc<dyn Store>),
        project: ProjectId,
        (batch_a, batch_b): (IngestBatch, IngestBatch),
    ) -> (Vec<Outcome>, Vec<Outcome>) {
        let (a, b) = (Arc::clone(a), Arc::clone(b));
        let a = tokio::spawn(async move { a.ingest(project, batch_a, at(100)).await });
        let b = tokio::spawn(async move { b.ingest(project, batch_b, at(100)).await });
        let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
        let outcomes = |receipt: feedloop_store::IngestReceipt| {
            receipt.traces.into_iter().chain(receipt.feedback).collect()
        };
        (outcomes(a), outcomes(b))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn migrations_apply_once_and_a_newer_schema_is_refused() {
        let database = ScratchDatabase::create().await;
        let applied = feedloop_store::postgres::migrate(&database.url)
            .await
            .unwrap();
        assert!(applied > 0);
        assert_eq!(
            feedloop_store::postgres::migrate(&database.url)
                .await
                .unwrap(),
            0
        );
        drop(
            feedloop_store::open(&database.url, &test_options())
                .await
                .unwrap(),
        );

        let client = connect(&database.url).await;
        client
            .batch_execute("INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)")
            .await
            .unwrap();
        let error = feedloop_store::open(&database.url, &test_options())
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&error, StoreError::Config(message) if message.contains("newer")),
            "{error:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replicas_starting_at_once_apply_each_migration_once() {
        let database = ScratchDatabase::create().await;
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let url = database.url.clone();
                tokio::spawn(async move { feedloop_store::postgres::migrate(&url).await })
            })
            .collect();
        let mut applied = 0;
        for run in runs {
            applied += run.await.unwrap().unwrap();
        }
        let client = connect(&database.url).await;
        let versions: i64 = client
            .query_one("SELECT COUNT(*) FROM schema_migrations", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(i64::from(applied), versions);
    }

    /// Regression: two replicas inserting the same new trace id at once must both succeed, one
    /// creating the trace and the other merging into it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replicas_creating_the_same_trace_at_once_merge() {
        let database = ScratchDatabase::create().await;
        let (a, b) = replicas(&database).await;
        let project = a.create_project("alpha", at(0)).await.unwrap().id;
        for round in 0..20 {
            let id = format!("t{round}");
            let batches = (
                batch(vec![part(&id, "from_a")], vec![]),
                batch(vec![part(&id, "from_b")], vec![]),
            );
            let (from_a, from_b) = ingest_both((&a, &b), project, batches).await;
            let mut outcomes = [from_a[0], from_b[0]];
            outcomes.sort_by_key(|outcome| *outcome == Outcome::Merged);
            assert_eq!(
                outcomes,
                [Outcome::Created, Outcome::Merged],
                "round {round}"
            );
            let chain = a
                .trace_chain(project, &TraceId::parse("id", id).unwrap())
                .await
                .unwrap()
                .unwrap();
            let tags: Vec<&str> = chain.trace.trace.tags.iter().map(String::as_str).collect();
            assert_eq!(tags, ["from_a", "from_b"]);
        }
    }

    /// Two replicas restating the same judgement at once leave exactly one current: the latest.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replicas_restating_a_judgement_at_once_leave_the_latest_current() {
        let database = ScratchDatabase::create().await;
        let (a, b) = replicas(&database).await;
        let project = a.create_project("alpha", at(0)).await.unwrap().id;
        for round in 0..20 {
            let trace = format!("t{round}");
            let batches = (
                batch(vec![], vec![rating(&format!("early{round}"), &trace, 10)]),
                batch(vec![], vec![rating(&format!("late{round}"), &trace, 20)]),
            );
            ingest_both((&a, &b), project, batches).await;
            let filter = Filter {
                trace_id: Some(trace),
                ..Default::default()
            };
            let stored = b
                .list_feedback(project, &filter, Default::default())
                .await
                .unwrap();
            let current: Vec<&str> = stored
                .items
                .iter()
                .filter(|f| f.superseded_by.is_none())
                .map(|f| f.feedback.id.as_str())
                .collect();
            assert_eq!(current, [format!("late{round}")], "round {round}");
        }
    }

    /// Batches that write the same new traces and feedback in opposite orders deadlock in
    /// PostgreSQL when they overlap; the transaction it aborts is retried, and both commit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn batches_in_opposite_orders_both_commit() {
        // Each deadlock costs the server's deadlock_timeout (1 s by default): a few rounds.
        const NUM_ROUNDS: usize = 3;
        const NUM_ITEMS: usize = 50;
        let database = ScratchDatabase::create().await;
        let (a, b) = replicas(&database).await;
        let project = a.create_project("alpha", at(0)).await.unwrap().id;
        for round in 0..NUM_ROUNDS {
            let ids: Vec<String> = (0..NUM_ITEMS).map(|i| format!("r{round}-{i}")).collect();
            // Comments do not supersede, so these batches take no advisory lock that would
            // serialise them.
            let items = |tag: &str| {
                let traces = ids.iter().map(|id| part(id, tag)).collect();
                let feedback = ids
                    .iter()
                    .map(|id| Feedback {
                        value: FeedbackValue::Comment(format!("on {id}")),
                        ..rating(&format!("c-{id}"), id, 1)
                    })
                    .collect();
                batch(traces, feedback)
            };
            let forwards = items("a");
            let mut backwards = items("b");
            backwards.traces.reverse();
            backwards.feedback.reverse();
            let (from_a, from_b) = ingest_both((&a, &b), project, (forwards, backwards)).await;
            assert_eq!(from_a.len() + from_b.len(), 4 * NUM_ITEMS);
        }
        let stats = a.stats(project).await.unwrap();
        assert_eq!(stats.traces, (NUM_ROUNDS * NUM_ITEMS) as u64);
        assert_eq!(stats.feedback, (NUM_ROUNDS * NUM_ITEMS) as u64);
    }

    /// A batch restating judgements on more traces than it may lock one by one takes the
    /// project's supersession lock instead, and still supersedes correctly next to small ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_batch_with_many_judgements_supersedes_like_small_ones() {
        let database = ScratchDatabase::create().await;
        let (a, b) = replicas(&database).await;
        let project = a.create_project("alpha", at(0)).await.unwrap().id;
        let many = |prefix: &str, created| -> Vec<Feedback> {
            (0..100)
                .map(|i| rating(&format!("{prefix}{i}"), &format!("t{i}"), created))
                .collect()
        };
        let small = |prefix: &str, created| -> Vec<Feedback> {
            (0..3)
                .map(|i| rating(&format!("{prefix}{i}"), &format!("t{i}"), created))
                .collect()
        };
        ingest_both(
            (&a, &b),
            project,
            (
                batch(vec![], many("big", 10)),
                batch(vec![], small("small", 20)),
            ),
        )
        .await;
        ingest_both(
            (&a, &b),
            project,
            (
                batch(vec![], small("smaller", 5)),
                batch(vec![], many("bigger", 30)),
            ),
        )
        .await;
        let all = a
            .list_feedback(
                project,
                &Filter::default(),
                feedloop_core::filter::PageRequest {
                    limit: 1000,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .items;
        assert_eq!(all.len(), 206);
        let mut current: Vec<&str> = all
            .iter()
            .filter(|f| f.superseded_by.is_none())
            .map(|f| f.feedback.id.as_str())
            .collect();
        current.sort_unstable();
        let mut expected: Vec<String> = (0..100).map(|i| format!("bigger{i}")).collect();
        expected.sort_unstable();
        assert_eq!(current, expected);
    }

    /// Connections killed by the server (a restart, an administrator) are replaced: requests
    /// fail with `Unavailable` at most while the pool finds its dead connections, then succeed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn the_pool_recovers_when_its_connections_are_killed() {
        let database = ScratchDatabase::create().await;
        let store = feedloop_store::open(&database.url, &test_options())
            .await
            .unwrap();
        store.create_project("alpha", at(0)).await.unwrap();
        // Open several connections, so that the pool holds more than one to lose.
        let reads: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.list_projects().await })
            })
            .collect();
        for read in reads {
            read.await.unwrap().unwrap();
        }

        let admin = connect(&admin_url()).await;
        let killed: i64 = admin
            .query_one(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&database.name],
            )
            .await
            .unwrap()
            .get(0);
        assert!(killed > 0);

        let mut failures = 0;
        loop {
            match store.list_projects().await {
                Ok(projects) => {
                    assert_eq!(projects.len(), 1);
                    break;
                }
                Err(StoreError::Unavailable(_))
                    if failures < test_options().postgres_max_connections =>
                {
                    failures += 1;
                }
                Err(error) => panic!("after {failures} failures: {error:?}"),
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_unreachable_database_is_unavailable_at_once() {
        let started = Instant::now();
        // Nothing listens on port 1: the connection is refused.
        let error =
            feedloop_store::open("postgres://postgres@127.0.0.1:1/feedloop", &test_options())
                .await
                .err()
                .unwrap();
        assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    /// A server that answers but refuses the database is misconfiguration, not a bug.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_missing_database_is_a_configuration_error() {
        let url = with_database(&admin_url(), "feedloop_no_such_database");
        let error = feedloop_store::open(&url, &test_options())
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&error, StoreError::Config(message) if message.contains("3D000")),
            "{error:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn urls_that_require_tls_are_refused() {
        let error = feedloop_store::open(
            "postgres://postgres@127.0.0.1/feedloop?sslmode=require",
            &test_options(),
        )
        .await
        .err()
        .unwrap();
        assert!(matches!(error, StoreError::Config(_)), "{error:?}");
    }

    fn asked(id: &str, input: &str) -> TracePart {
        TracePart {
            id: TraceId::parse("id", id).unwrap(),
            input: Some(input.to_owned()),
            ..Default::default()
        }
    }

    /// Replicas claiming from the embedding queue at once never claim the same trace twice,
    /// and between them claim every trace.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replicas_claiming_embeddings_at_once_take_different_traces() {
        const NUM_TRACES: usize = 200;
        let database = ScratchDatabase::create().await;
        let (a, b) = replicas(&database).await;
        let project = a.create_project("alpha", at(0)).await.unwrap().id;
        let traces = (0..NUM_TRACES)
            .map(|i| asked(&format!("t{i}"), &format!("question {i}")))
            .collect();
        a.ingest(project, batch(traces, vec![]), at(1))
            .await
            .unwrap();
        let claim_all = |store: Arc<dyn Store>| {
            tokio::spawn(async move {
                let mut claimed = Vec::new();
                loop {
                    let tasks = store
                        .claim_embedding_tasks(7, at(10), at(1000))
                        .await
                        .unwrap();
                    if tasks.is_empty() {
                        return claimed;
                    }
                    claimed.extend(tasks.into_iter().map(|task| task.trace_seq));
                }
            })
        };
        let (from_a, from_b) = (claim_all(Arc::clone(&a)), claim_all(Arc::clone(&b)));
        let (from_a, from_b) = (from_a.await.unwrap(), from_b.await.unwrap());
        let mut all: Vec<i64> = from_a.iter().chain(&from_b).copied().collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(
            all.len(),
            from_a.len() + from_b.len(),
            "no trace claimed twice"
        );
        assert_eq!(all.len(), NUM_TRACES, "every trace claimed");
    }

    /// Vectors stored by two replicas at once reach a follower that reads while they are
    /// written: numbers become visible in order, so reading on from the last one seen never
    /// skips a vector that committed late.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_follower_sees_every_vector_stored_by_replicas_at_once() {
        const NUM_TRACES: usize = 300;
        let database = ScratchDatabase::create().await;
        let (a, b) = replicas(&database).await;
        let project = a.create_project("alpha", at(0)).await.unwrap().id;
        let traces = (0..NUM_TRACES)
            .map(|i| asked(&format!("t{i}"), &format!("question {i}")))
            .collect();
        a.ingest(project, batch(traces, vec![]), at(1))
            .await
            .unwrap();
        let work = |store: Arc<dyn Store>| {
            tokio::spawn(async move {
                loop {
                    let tasks = store
                        .claim_embedding_tasks(3, at(10), at(1000))
                        .await
                        .unwrap();
                    if tasks.is_empty() {
                        return;
                    }
                    let vectors = tasks
                        .iter()
                        .map(|task| NewEmbedding {
                            trace_seq: task.trace_seq,
                            generation: task.generation,
                            vector: vec![1.0, 0.0],
                        })
                        .collect();
                    store.store_embeddings("m", vectors, at(11)).await.unwrap();
                }
            })
        };
        let workers = [work(Arc::clone(&a)), work(Arc::clone(&b))];
        let mut seen = std::collections::BTreeSet::new();
        let mut last = 0;
        let mut follow = async |store: &Arc<dyn Store>| {
            for embedding in store.embeddings_since("m", last, 1000).await.unwrap() {
                assert!(embedding.seq > last);
                last = embedding.seq;
                seen.insert(embedding.trace_seq);
            }
        };
        while !workers.iter().all(|worker| worker.is_finished()) {
            follow(&a).await;
        }
        for worker in workers {
            worker.await.unwrap();
        }
        follow(&b).await;
        assert_eq!(a.embedding_backlog().await.unwrap(), 0);
        assert_eq!(seen.len(), NUM_TRACES, "no vector skipped");
    }

    /// Migration 3 on a database with data: negative feedback is marked (a thumbs down and a
    /// regenerate signal, not a thumbs up or a copy) and every trace with an input is queued.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn semantic_memory_migration_backfills_existing_data() {
        let database = ScratchDatabase::create().await;
        let store = feedloop_store::open(&database.url, &test_options())
            .await
            .unwrap();
        let project = store.create_project("alpha", at(0)).await.unwrap().id;
        let signal = |id: &str, trace: &str, signal_type: &str| Feedback {
            author: None,
            value: FeedbackValue::Signal(Signal {
                signal_type: signal_type.into(),
                value: None,
                details: Default::default(),
            }),
            ..rating(id, trace, 1)
        };
        let down = Feedback {
            author: None,
            value: FeedbackValue::Rating(Rating {
                value: 0.0,
                min: 0.0,
                max: 1.0,
                compared_to: None,
            }),
            ..rating("down", "t1", 1)
        };
        let traces = vec![
            asked("t1", "one"),
            asked("t2", "two"),
            part("t3", "x"),
            asked("t4", "four"),
        ];
        let feedback = vec![
            down,
            rating("up", "t2", 1),
            signal("regen", "t3", "regenerate"),
            signal("copy", "t4", "copy"),
        ];
        store
            .ingest(project, batch(traces, feedback), at(2))
            .await
            .unwrap();
        drop(store);
        // Back to schema 2, with the data.
        let client = connect(&database.url).await;
        client
            .batch_execute(
                "ALTER TABLE feedback DROP COLUMN negative;
                 DROP TABLE embedding_queue, embeddings;
                 DROP TABLE lesson_versions, lessons, lesson_feedback, loop_settings,
                            injections, injection_lessons;
                 DROP TABLE signal_settings, signal_progress, trace_satisfaction;
                 DROP TABLE review_queues, review_items, review_verdicts, review_events,
                            review_progress;
                 DROP TABLE datasets, dataset_items, dataset_versions;
                 DROP TABLE problem_clusters, cluster_members;
                 DROP TABLE alerts, webhooks, webhook_events, webhook_deliveries, webhook_attempts;
                 DROP TABLE analytics_buckets;
                 DROP FUNCTION feedloop_analytics_feedback_changed, feedloop_analytics_trace_changed,
                               feedloop_analytics_tag_changed, feedloop_analytics_satisfaction_changed,
                               feedloop_analytics_invalidate, feedloop_analytics_invalidate_trace,
                               feedloop_analytics_old_before, feedloop_analytics_lock_key CASCADE;
                 DROP TABLE memberships, sessions, users, feedback_token_secrets, audit_log;
                 ALTER TABLE api_keys DROP COLUMN allowed_origins;
                 DROP TABLE privacy_settings, erasure_receipts, vector_removals;
                 DROP INDEX feedback_by_author;
                 DROP INDEX traces_by_model_name, traces_by_model_version, traces_by_prompt_name,
                            traces_by_prompt_version, traces_by_environment, traces_by_user_role;
                 DELETE FROM schema_migrations WHERE version >= 3",
            )
            .await
            .unwrap();
        assert_eq!(
            feedloop_store::postgres::migrate(&database.url)
                .await
                .unwrap(),
            11,
            "migrations 3 to 13"
        );
        let negative: Vec<String> = client
            .query(
                "SELECT id FROM feedback WHERE negative = 1 ORDER BY id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(negative, ["down", "regen"]);
        let store = feedloop_store::open(&database.url, &test_options())
            .await
            .unwrap();
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

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgresql://u:p@h?sslmode=disable", "x"),
            "postgresql://u:p@h/x?sslmode=disable"
        );
    }

    /// Review queues on two replicas: the same traces enqueued at once make one item each, and
    /// reviewers reserving at once never get the same item.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn replicas_enqueueing_and_reserving_at_once_never_double_up() {
        let database = ScratchDatabase::create().await;
        let (a, b) = replicas(&database).await;
        let project = a.create_project("p", at(0)).await.unwrap().id;
        let parts: Vec<TracePart> = (0..40).map(|i| part(&format!("t{i:02}"), "x")).collect();
        a.ingest(project, batch(parts, Vec::new()), at(1))
            .await
            .unwrap();
        a.create_queue(project, &crate::contract::queue("triage", 1))
            .await
            .unwrap();
        let traces: Vec<(TraceId, f64)> = (0..40)
            .map(|i| {
                (
                    TraceId::parse("id", format!("t{i:02}")).unwrap(),
                    f64::from(i) / 40.0,
                )
            })
            .collect();
        let reversed: Vec<(TraceId, f64)> = traces.iter().rev().cloned().collect();
        let enqueue = |store: &Arc<dyn Store>, traces: Vec<(TraceId, f64)>| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                store
                    .enqueue(project, "triage", &traces, "rules", at(2))
                    .await
            })
        };
        let (first, second) = (enqueue(&a, traces.clone()), enqueue(&b, reversed));
        let (first, second) = (
            first.await.unwrap().unwrap(),
            second.await.unwrap().unwrap(),
        );
        let created = first
            .iter()
            .chain(&second)
            .filter(|o| matches!(o, feedloop_store::review::Enqueued::Created(_)))
            .count();
        assert_eq!(created, 40);
        let mut ids: Vec<i64> = first.iter().map(|o| o.item_id()).collect();
        let mut other: Vec<i64> = second.iter().rev().map(|o| o.item_id()).collect();
        assert_eq!(ids, other);
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 40);

        let reserve = |store: &Arc<dyn Store>, who: &'static str| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let mut taken = Vec::new();
                while let Some(item) = store
                    .reserve_next(project, "triage", who, at(3))
                    .await
                    .unwrap()
                {
                    taken.push(item.id);
                }
                taken
            })
        };
        let (ann, bob) = (reserve(&a, "ann"), reserve(&b, "bob"));
        let (ann, bob) = (ann.await.unwrap(), bob.await.unwrap());
        other = ann.iter().chain(&bob).copied().collect();
        other.sort();
        assert_eq!(other, ids, "every item reserved exactly once");
    }
}
