//! Privacy through the API, on the backend the run asked for: PII redacted on ingest before
//! anything is stored, retention with a fixed clock (exactly the expired rows go), and erasure
//! of one end user (no trace of them in any table, in search, or in any replica's index).

use feedloop_core::Timestamp;
use feedloop_core::auth::KeyRole;
use feedloop_core::clock::ManualClock;
use feedloop_server::jobs::{Job, JobScheduler, TickOutcome};
use feedloop_server::{AppState, ServerConfig};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use crate::common::database::use_postgres;
use crate::common::{TestServer, assert_error, hash_embedder};

/// Every table of the schema and what erasure does with it. A table added later fails the
/// erasure test until it is listed here, so user data in it cannot be forgotten silently.
const TABLES: &[(&str, &str)] = &[
    (
        "traces",
        "erased: the user's traces and their sessions' traces",
    ),
    ("spans", "erased with their traces"),
    ("trace_tags", "erased with their traces"),
    (
        "feedback",
        "erased: on erased traces, and authored by the user",
    ),
    ("embedding_queue", "erased with their traces"),
    (
        "embeddings",
        "erased with their traces (logged in vector_removals)",
    ),
    ("vector_removals", "trace numbers only"),
    (
        "trace_satisfaction",
        "erased with their traces and feedback",
    ),
    ("review_items", "erased with their traces"),
    ("review_verdicts", "erased with their items"),
    ("review_events", "erased with their items"),
    (
        "cluster_members",
        "erased; the cluster's size and centroid drop the member",
    ),
    ("problem_clusters", "aggregates; deleted when left empty"),
    (
        "injections",
        "erased: of erased traces and the user's sessions",
    ),
    ("injection_lessons", "erased with their injections"),
    ("lesson_feedback", "erased: links to erased feedback"),
    (
        "dataset_items",
        "erased: built from erased traces or feedback",
    ),
    (
        "webhook_events",
        "erased: payloads naming erased traces, feedback or the user",
    ),
    ("webhook_deliveries", "erased with their events"),
    ("webhook_attempts", "erased with their deliveries"),
    (
        "erasure_receipts",
        "the SHA-256 of the user id, never the id",
    ),
    (
        "lessons",
        "curated text; lessons citing erased feedback are named in the receipt",
    ),
    ("lesson_versions", "as lessons"),
    (
        "analytics_buckets",
        "counts only; invalidated by the deletions' triggers",
    ),
    ("analytics_epochs", "counts of invalidations only"),
    ("analytics_invalidations", "emptied by its own trigger"),
    ("projects", "no end-user data"),
    ("api_keys", "no end-user data"),
    ("categories", "no end-user data"),
    ("change_log", "no end-user data"),
    ("job_runs", "no end-user data"),
    ("schema_migrations", "no end-user data"),
    ("users", "people of the UI, not end users"),
    ("memberships", "people of the UI, not end users"),
    ("sessions", "people of the UI, not end users"),
    ("feedback_token_secrets", "no end-user data"),
    (
        "audit_log",
        "administrative actions; erasure is logged with the SHA-256 of the user id",
    ),
    ("loop_settings", "no end-user data"),
    ("signal_settings", "no end-user data"),
    ("signal_progress", "positions only"),
    ("review_queues", "no end-user data"),
    ("review_progress", "positions only"),
    ("datasets", "no end-user data"),
    ("dataset_versions", "counts only"),
    ("alerts", "aggregates only"),
    ("webhooks", "no end-user data"),
    ("privacy_settings", "no end-user data"),
];

/// Every row of every table of the test database, rendered as text, by table.
async fn dump_tables(server: &TestServer) -> BTreeMap<String, Vec<String>> {
    if use_postgres() {
        return dump_postgres(&server.url).await;
    }
    let path = server.url.strip_prefix("sqlite://").unwrap().to_owned();
    tokio::task::spawn_blocking(move || dump_sqlite(&path))
        .await
        .unwrap()
}

fn dump_sqlite(path: &str) -> BTreeMap<String, Vec<String>> {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'sqlite_sequence'",
        )
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let mut dump = BTreeMap::new();
    for table in tables {
        let mut statement = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let num_columns = statement.column_count();
        let mut rows = statement.query([]).unwrap();
        let mut texts = Vec::new();
        while let Some(row) = rows.next().unwrap() {
            let mut text = String::new();
            for i in 0..num_columns {
                match row.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) | rusqlite::types::ValueRef::Blob(t) => {
                        text.push_str(&String::from_utf8_lossy(t));
                    }
                    rusqlite::types::ValueRef::Integer(n) => text.push_str(&n.to_string()),
                    rusqlite::types::ValueRef::Real(x) => text.push_str(&x.to_string()),
                    rusqlite::types::ValueRef::Null => {}
                }
                text.push('|');
            }
            texts.push(text);
        }
        dump.insert(table, texts);
    }
    dump
}

async fn dump_postgres(url: &str) -> BTreeMap<String, Vec<String>> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables
              WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.get(0))
        .collect();
    let mut dump = BTreeMap::new();
    for table in tables {
        let rows = client
            .query(&format!("SELECT t::text FROM \"{table}\" t"), &[])
            .await
            .unwrap();
        dump.insert(table, rows.into_iter().map(|row| row.get(0)).collect());
    }
    dump
}

/// The rows (as `table: row`) that contain any of `needles`.
fn rows_containing(dump: &BTreeMap<String, Vec<String>>, needles: &[&str]) -> Vec<String> {
    dump.iter()
        .flat_map(|(table, rows)| rows.iter().map(move |row| (table, row)))
        .filter(|(_, row)| needles.iter().any(|needle| row.contains(needle)))
        .map(|(table, row)| format!("{table}: {row}"))
        .collect()
}

fn ids(list: &Value, path: &str) -> Vec<String> {
    let mut ids: Vec<String> = list[path]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn found_ids(results: &Value) -> Vec<String> {
    results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["trace"]["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn post_ok(server: &TestServer, path: &str, body: Value) -> Value {
    let (status, answer) = server.post(path, body).await;
    assert!(status.is_success(), "{path}: {status} {answer}");
    answer
}

/// Waits until the server's indexes hold exactly `num_vectors` vectors.
async fn wait_for_indexed_exactly(server: &TestServer, num_vectors: u64) {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let (_, ready) = server.get("/readyz").await;
        if ready["details"]["indexed_vectors"] == num_vectors {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "indexes never held {num_vectors} vectors: {:?}",
        server.get("/readyz").await
    );
}

const ZEBRA: &str = "user-zebra-42";
const ZEBRA_MARK: &str = "zebracorn7781";
const QUOKKA: &str = "user-quokka-17";
const QUOKKA_MARK: &str = "quokkaline5520";

/// Two users' traces, sessions, spans, feedback, a signal, a dataset built from them, review
/// items (announced to a webhook) and problem clusters.
async fn two_users(server: &TestServer) {
    post_ok(
        server,
        "/api/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/hook", "event_types": ["review_item_created", "new_cluster"]}),
    )
    .await;
    post_ok(
        server,
        "/api/v1/traces",
        json!([
            {"id": "zebra-1", "user_id": ZEBRA, "session_id": "sess-zebra",
             "input": format!("{ZEBRA_MARK} how do I reset my card"),
             "output": format!("Reset it in the settings, {ZEBRA_MARK}."),
             "metadata": {"note": ZEBRA_MARK}, "tags": ["zebra"],
             "spans": [{"id": "llm", "kind": "llm", "input": {"q": ZEBRA_MARK}, "attributes": {"k": ZEBRA_MARK}}]},
            {"id": "zebra-2", "session_id": "sess-zebra", "input": format!("follow-up {ZEBRA_MARK}")},
            {"id": "zebra-3", "user_id": ZEBRA, "input": format!("another {ZEBRA_MARK} question"),
             "output": "an answer"},
            {"id": "quokka-1", "user_id": QUOKKA, "session_id": "sess-quokka",
             "input": format!("{QUOKKA_MARK} how do I pay"), "output": format!("Pay by transfer, {QUOKKA_MARK}.")},
            {"id": "quokka-2", "user_id": QUOKKA, "input": format!("{QUOKKA_MARK} second question")}
        ]),
    )
    .await;
    post_ok(
        server,
        "/api/v1/feedback",
        json!([
            {"id": "fb-z-correction", "trace_id": "zebra-1", "author": ZEBRA,
             "correction": {"text": format!("Say {ZEBRA_MARK} first")}},
            {"id": "fb-z-rating", "trace_id": "zebra-1", "author": ZEBRA, "rating": {"value": 1, "min": 1, "max": 5}},
            {"id": "fb-z-on-quokka", "trace_id": "quokka-1", "author": ZEBRA, "comment": format!("{ZEBRA_MARK} agrees")},
            {"id": "fb-q-rating", "trace_id": "quokka-1", "author": QUOKKA, "rating": {"value": 1, "min": 1, "max": 5}},
            {"id": "fb-q-correction", "trace_id": "quokka-1", "author": QUOKKA,
             "correction": {"text": format!("Say {QUOKKA_MARK} first")}}
        ]),
    )
    .await;
    post_ok(
        server,
        "/api/v1/signals",
        json!({"id": "sig-zebra", "trace_id": "zebra-1", "type": "copy", "author": ZEBRA}),
    )
    .await;
    server.wait_until_indexed(5).await;
    post_ok(server, "/api/v1/datasets", json!({"name": "d"})).await;
    let added = post_ok(
        server,
        "/api/v1/datasets/d/items/from-feedback",
        json!({"filter": {}, "author": "ana"}),
    )
    .await;
    assert_eq!(added["created"], 2, "{added}");
    post_ok(server, "/api/v1/queues", json!({"name": "q"})).await;
    post_ok(
        server,
        "/api/v1/queues/q/items",
        json!({"trace_ids": ["zebra-1", "quokka-1"], "author": "ana"}),
    )
    .await;
    post_ok(server, "/api/v1/clusters/refresh", json!({})).await;
}

#[tokio::test]
async fn erasure_leaves_no_trace_of_the_user_anywhere_and_keeps_the_others_data() {
    let server = TestServer::start().await;
    let replica = server.replica(ServerConfig::default()).await;
    two_users(&server).await;
    replica.wait_until_indexed(5).await;

    let before = dump_tables(&server).await;
    // Tables only one backend has (the SQLite bucket cache's epoch and invalidation queue).
    let sqlite_only = ["analytics_epochs", "analytics_invalidations"];
    let listed: BTreeSet<&str> = TABLES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !use_postgres() || !sqlite_only.contains(name))
        .collect();
    let schema: BTreeSet<&str> = before.keys().map(String::as_str).collect();
    assert_eq!(
        schema, listed,
        "every table must be classified for erasure in TABLES"
    );
    // The scan can see the user: the test cannot pass by looking in the wrong place.
    let zebra_needles = [
        ZEBRA,
        ZEBRA_MARK,
        "zebra-1",
        "zebra-2",
        "zebra-3",
        "sess-zebra",
    ];
    let seen = rows_containing(&before, &zebra_needles);
    for table in [
        "traces",
        "spans",
        "feedback",
        "dataset_items",
        "review_items",
        "webhook_events",
    ] {
        assert!(
            seen.iter()
                .any(|row| row.starts_with(&format!("{table}: "))),
            "{table} should hold the user before erasure: {seen:#?}"
        );
    }
    let (_, search) = server
        .post(
            "/api/v1/search",
            json!({"text": format!("{ZEBRA_MARK} how do I reset my card"), "k": 10}),
        )
        .await;
    assert!(
        found_ids(&search).contains(&"zebra-1".to_owned()),
        "{search}"
    );

    let receipt = post_ok(&server, "/api/v1/erasure", json!({"user_id": ZEBRA})).await;
    assert_eq!(receipt["user_id"], ZEBRA);
    assert!(
        receipt["id"].as_str().unwrap().starts_with("er_"),
        "{receipt}"
    );
    let counts = &receipt["counts"];
    assert_eq!(counts["traces"], 3, "{receipt}");
    assert_eq!(counts["spans"], 1, "{receipt}");
    assert_eq!(counts["embeddings"], 3, "{receipt}");
    // Two ratings, a correction and a signal on zebra-1, and the comment on quokka-1.
    assert_eq!(counts["feedback"], 4, "{receipt}");
    assert_eq!(counts["review_items"], 1, "{receipt}");
    assert!(counts["dataset_items"].as_u64().unwrap() >= 1, "{receipt}");
    assert!(counts["webhook_events"].as_u64().unwrap() >= 1, "{receipt}");

    let after = dump_tables(&server).await;
    let left = rows_containing(&after, &zebra_needles);
    assert!(left.is_empty(), "the user is still in: {left:#?}");
    // The other user's rows are all there, but for the dataset item that quotes the user's
    // comment on the other's trace (built from erased feedback, so erased with it).
    let quokka_before = rows_containing(&before, &[QUOKKA_MARK]);
    let quokka_after = rows_containing(&after, &[QUOKKA_MARK]);
    let gone: Vec<&String> = quokka_before
        .iter()
        .filter(|row| !quokka_after.contains(row))
        .collect();
    assert!(
        gone.iter()
            .all(|row| row.starts_with("dataset_items: ") && row.contains(ZEBRA_MARK)),
        "{gone:#?}"
    );
    let (_, traces) = server.get("/api/v1/traces?limit=100").await;
    assert_eq!(ids(&traces, "items"), ["quokka-1", "quokka-2"]);
    let (_, feedback) = server.get("/api/v1/feedback?limit=100").await;
    assert_eq!(ids(&feedback, "items"), ["fb-q-correction", "fb-q-rating"]);

    // Neither replica's index keeps the user's vectors, and search finds none of theirs.
    for each in [&server, &replica] {
        wait_for_indexed_exactly(each, 2).await;
        let (status, search) = each
            .post(
                "/api/v1/search",
                json!({"text": format!("{ZEBRA_MARK} how do I reset my card"), "k": 10}),
            )
            .await;
        assert_eq!(status, 200, "{search}");
        let mut found = found_ids(&search);
        found.sort();
        assert_eq!(found, ["quokka-1", "quokka-2"], "{search}");
    }

    // The stored receipt names the user only by digest.
    let (status, receipts) = server.get("/api/v1/erasure").await;
    assert_eq!(status, 200, "{receipts}");
    let stored = &receipts["receipts"][0];
    assert_eq!(stored["id"], receipt["id"]);
    assert!(stored.get("user_id").is_none(), "{stored}");
    assert_eq!(
        stored["user_id_sha256"],
        feedloop_store::privacy::user_id_digest(ZEBRA)
    );
    assert_eq!(stored["counts"], receipt["counts"]);
}

#[tokio::test]
async fn bad_erasure_requests_are_refused_and_change_nothing() {
    let server = TestServer::start().await;
    post_ok(
        &server,
        "/api/v1/traces",
        json!({"id": "t1", "user_id": "u1", "input": "hi"}),
    )
    .await;
    assert_error(
        &server.post("/api/v1/erasure", json!({"user_id": ""})).await,
        422,
        "invalid_value",
        Some("user_id"),
    );
    let long = "u".repeat(300);
    assert_error(
        &server
            .post("/api/v1/erasure", json!({"user_id": long}))
            .await,
        422,
        "invalid_value",
        Some("user_id"),
    );
    let (status, body) = server.post("/api/v1/erasure", json!({"user": "u1"})).await;
    assert!(status.is_client_error(), "{body}");
    let reader = server.key_with_role(KeyRole::Read).await;
    let (status, _) = server
        .post_as(&reader, "/api/v1/erasure", json!({"user_id": "u1"}))
        .await;
    assert_eq!(status, 403);
    let (status, _) = server.get_as(&reader, "/api/v1/erasure").await;
    assert_eq!(status, 403);
    let (_, traces) = server.get("/api/v1/traces").await;
    assert_eq!(ids(&traces, "items"), ["t1"]);
    let (_, receipts) = server.get("/api/v1/erasure").await;
    assert_eq!(receipts["receipts"], json!([]));
}

#[tokio::test]
async fn privacy_settings_are_validated_and_only_admins_change_them() {
    let server = TestServer::start().await;
    let (status, settings) = server.get("/api/v1/privacy/settings").await;
    assert_eq!(status, 200);
    assert_eq!(settings, json!({"pii_mode": "off"}));
    for (body, field) in [
        (json!({"pii_mode": "mask", "trace_days": 0}), "trace_days"),
        (json!({"feedback_days": 40000}), "feedback_days"),
        (
            json!({"keep_with_feedback_days": 30}),
            "keep_with_feedback_days",
        ),
        (
            json!({"trace_days": 30, "keep_with_feedback_days": 7}),
            "keep_with_feedback_days",
        ),
    ] {
        assert_error(
            &server.put("/api/v1/privacy/settings", body).await,
            422,
            "invalid_value",
            Some(field),
        );
    }
    let (status, body) = server
        .put("/api/v1/privacy/settings", json!({"pii_mode": "scramble"}))
        .await;
    assert!(status.is_client_error(), "{body}");
    let (status, body) = server
        .put("/api/v1/privacy/settings", json!({"trace_dayz": 3}))
        .await;
    assert!(status.is_client_error(), "{body}");
    let reader = server.key_with_role(KeyRole::Ingest).await;
    let answer = server
        .send_raw(
            &reader,
            "PUT",
            "/api/v1/privacy/settings",
            "application/json",
            br#"{"pii_mode": "mask"}"#.to_vec(),
        )
        .await;
    assert_eq!(answer.0, 403, "{}", answer.1);
    // Nothing above changed the settings.
    assert_eq!(
        server.get("/api/v1/privacy/settings").await.1,
        json!({"pii_mode": "off"})
    );
    let good = json!({"pii_mode": "hash", "trace_days": 30, "feedback_days": 60, "keep_with_feedback_days": 90});
    assert_eq!(
        server.put("/api/v1/privacy/settings", good.clone()).await.1,
        good
    );
    assert_eq!(server.get("/api/v1/privacy/settings").await.1, good);
}

#[tokio::test]
async fn pii_is_redacted_on_ingest_before_it_reaches_the_store() {
    let server = TestServer::start().await;
    let originals = [
        "jane.doe@example.com",
        "+1 415 555 2671",
        "4111 1111 1111 1111",
        "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
        "203.0.113.45",
    ];
    let (status, _) = server
        .put("/api/v1/privacy/settings", json!({"pii_mode": "mask"}))
        .await;
    assert_eq!(status, 200);
    let output = "Sure jane.doe@example.com, card 4111 1111 1111 1111 noted. Thanks!";
    // The annotation's range is in the output the user saw: "Thanks!" at 59..66.
    let thanks = output.find("Thanks!").unwrap() as u64;
    post_ok(
        &server,
        "/api/v1/ingest",
        json!({
            "traces": [{"id": "t1", "user_id": "u1", "input": "mail jane.doe@example.com or call +1 415 555 2671",
                        "output": output,
                        "context": {"system_prompt": "key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
                                    "messages": [{"role": "user", "content": "from 203.0.113.45"}]},
                        "metadata": {"email": "jane.doe@example.com"},
                        "spans": [{"id": "llm", "kind": "llm", "attributes": {"prompt": "call +1 415 555 2671"}}]}],
            "feedback": [
                {"id": "f-same-batch", "trace_id": "t1",
                 "annotation": {"start": thanks, "end": thanks + 7, "quote": "Thanks!", "comment": "to jane.doe@example.com"}}
            ]
        }),
    )
    .await;
    post_ok(
        &server,
        "/api/v1/feedback",
        json!([
            {"id": "f-comment", "trace_id": "t1", "comment": "I am jane.doe@example.com"},
            {"id": "f-correction", "trace_id": "t1", "correction": {"text": "Call +1 415 555 2671 instead"}},
            {"id": "f-later", "trace_id": "t1",
             "annotation": {"start": 5, "end": 25, "quote": "jane.doe@example.com"}}
        ]),
    )
    .await;
    let (status, chain) = server.get("/api/v1/traces/t1").await;
    assert_eq!(status, 200, "{chain}");
    let text = chain.to_string();
    for original in originals {
        assert!(!text.contains(original), "{original} in {text}");
    }
    let stored_output = chain["trace"]["output"].as_str().unwrap().to_owned();
    assert_eq!(
        stored_output,
        "Sure [EMAIL], card [CARD_NUMBER] noted. Thanks!"
    );
    assert!(text.contains("mail [EMAIL] or call [PHONE]"), "{text}");
    let feedback = chain["feedback"].as_array().unwrap();
    let annotation = |id: &str| {
        feedback
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {chain}"))["annotation"]
            .clone()
    };
    let chars: Vec<char> = stored_output.chars().collect();
    for id in ["f-same-batch", "f-later"] {
        let a = annotation(id);
        let (start, end) = (
            a["start"].as_u64().unwrap() as usize,
            a["end"].as_u64().unwrap() as usize,
        );
        let marked: String = chars[start..end].iter().collect();
        assert_eq!(marked, a["quote"].as_str().unwrap(), "{id}: {a}");
    }
    assert_eq!(annotation("f-same-batch")["quote"], "Thanks!");
    assert_eq!(annotation("f-later")["quote"], "[EMAIL]");
    // A lesson context request records its query (an injection): redacted too.
    post_ok(
        &server,
        "/api/v1/lessons",
        json!({"id": "ls-mail", "title": "Mail changes", "status": "active",
               "trigger": {"examples": ["how do I change my email address"], "threshold": 0.01},
               "action": {"instruction": "Point to the account settings."}}),
    )
    .await;
    post_ok(
        &server,
        "/api/v1/context",
        json!({"query": "how do I change my email address jane.doe@example.com", "session_id": "s1"}),
    )
    .await;
    // Nowhere in the database either.
    let dump = dump_tables(&server).await;
    assert!(
        dump["injections"].iter().any(|row| row.contains("[EMAIL]")),
        "{:?}",
        dump["injections"]
    );
    assert!(
        rows_containing(&dump, &originals).is_empty(),
        "{:#?}",
        rows_containing(&dump, &originals)
    );
    // The mode is what decides: off stores the next trace as sent.
    server
        .put("/api/v1/privacy/settings", json!({"pii_mode": "off"}))
        .await;
    post_ok(
        &server,
        "/api/v1/traces",
        json!({"id": "t2", "input": "mail jane.doe@example.com"}),
    )
    .await;
    let (_, chain) = server.get("/api/v1/traces/t2").await;
    assert_eq!(chain["trace"]["input"], "mail jane.doe@example.com");
}

fn quiet_jobs() -> ServerConfig {
    ServerConfig {
        job_tick_interval: Duration::from_secs(3_600),
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn retention_deletes_exactly_what_expired_by_the_servers_clock() {
    let now: Timestamp = "2026-06-01T00:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(now));
    let server =
        TestServer::start_with_clock(clock.clone(), quiet_jobs(), hash_embedder().await).await;
    let days_ago = |days: f64| {
        now.checked_sub(jiff::SignedDuration::from_secs_f64(days * 86_400.0))
            .unwrap()
            .to_string()
    };
    let trace = |id: &str, age: f64| json!({"id": id, "input": format!("question {id}"), "started_at": days_ago(age)});
    post_ok(
        &server,
        "/api/v1/traces",
        json!([
            trace("old-plain", 40.0),
            trace("old-rated", 40.0),
            trace("ancient-rated", 95.0),
            trace("young", 10.0),
            trace("almost", 29.5)
        ]),
    )
    .await;
    let rating = |id: &str, trace: &str, age: f64| json!({"id": id, "trace_id": trace, "author": "ana", "rating": {"value": 5, "min": 1, "max": 5}, "created_at": days_ago(age)});
    post_ok(
        &server,
        "/api/v1/feedback",
        json!([
            rating("f-old-rated", "old-rated", 40.0),
            rating("f-ancient", "ancient-rated", 94.0),
            rating("f-young-stale", "young", 65.0),
            rating("f-young-fresh", "young", 5.0)
        ]),
    )
    .await;
    server.wait_until_indexed(5).await;
    let (status, _) = server
        .put(
            "/api/v1/privacy/settings",
            json!({"trace_days": 30, "feedback_days": 60, "keep_with_feedback_days": 90}),
        )
        .await;
    assert_eq!(status, 200);

    let report = post_ok(&server, "/api/v1/privacy/retention/run", json!({})).await;
    assert_eq!(report["num_traces"], 2, "{report}");
    assert_eq!(report["num_feedback"], 1, "{report}");
    assert_eq!(report["deleted"]["embeddings"], 2, "{report}");
    let (_, traces) = server.get("/api/v1/traces?limit=100").await;
    assert_eq!(ids(&traces, "items"), ["almost", "old-rated", "young"]);
    let (_, feedback) = server.get("/api/v1/feedback?limit=100").await;
    assert_eq!(ids(&feedback, "items"), ["f-old-rated", "f-young-fresh"]);
    wait_for_indexed_exactly(&server, 3).await;
    let again = post_ok(&server, "/api/v1/privacy/retention/run", json!({})).await;
    assert_eq!(
        (again["num_traces"].clone(), again["num_feedback"].clone()),
        (json!(0), json!(0))
    );

    // A day later the hourly job takes the trace that has now expired, and only it.
    let later = now
        .checked_add(jiff::SignedDuration::from_hours(24))
        .unwrap();
    clock.advance(jiff::SignedDuration::from_hours(24));
    let state = AppState::new(
        server.store.clone(),
        clock.clone(),
        quiet_jobs(),
        server.memory.clone(),
    );
    let outcomes = JobScheduler::default().tick(&state, "test", later).await;
    let retention = outcomes
        .iter()
        .find(|(job, _)| *job == Job::EnforceRetention)
        .map(|(_, outcome)| outcome.clone());
    match retention {
        Some(TickOutcome::Ran { outcome, .. }) => {
            assert_eq!(outcome, "deleted 1 traces and 0 feedback in 1 batches");
        }
        other => panic!("enforce_retention did not run: {other:?}"),
    }
    let (_, traces) = server.get("/api/v1/traces?limit=100").await;
    assert_eq!(ids(&traces, "items"), ["old-rated", "young"]);
}
