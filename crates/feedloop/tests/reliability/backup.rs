//! `feedloop backup` while the real server ingests, `feedloop restore` into an empty target, on
//! both backends: the online backup holds every write acknowledged before it started and only
//! writes the live database also has; a backup of the stopped server restores to exactly the
//! same tables (every row of every table); a restored server starts and serves with the old
//! keys; restore refuses a non-empty target without --force.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::database::TestDatabase;
use crate::process::{self, Data, run_command};

/// Every table's rows as sorted text, read from the database directly.
async fn dump_tables(data: &Data) -> BTreeMap<String, Vec<String>> {
    match &data.postgres_url {
        None => {
            let conn = rusqlite::Connection::open(data.sqlite_file()).unwrap();
            let names: Vec<String> = conn
                .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
                .unwrap()
                .query_map([], |row| row.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let mut tables = BTreeMap::new();
            for name in names {
                let mut statement = conn.prepare(&format!("SELECT * FROM \"{name}\"")).unwrap();
                let num_columns = statement.column_count();
                let mut rows: Vec<String> = statement
                    .query_map([], |row| {
                        let values: Vec<String> = (0..num_columns)
                            .map(|i| format!("{:?}", row.get_ref(i).unwrap()))
                            .collect();
                        Ok(values.join("|"))
                    })
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                rows.sort();
                tables.insert(name, rows);
            }
            tables
        }
        Some(url) => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let names: Vec<String> = client
                .query(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = 'public' ORDER BY 1",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|row| row.get(0))
                .collect();
            let mut tables = BTreeMap::new();
            for name in names {
                let rows = client
                    .query(&format!("SELECT t::text FROM \"{name}\" t ORDER BY 1"), &[])
                    .await
                    .unwrap();
                tables.insert(name, rows.iter().map(|row| row.get(0)).collect());
            }
            let sequences = client
                .query(
                    "SELECT sequencename::text || '=' || coalesce(last_value, 0)::text \
                     FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1",
                    &[],
                )
                .await
                .unwrap();
            tables.insert(
                "(sequences)".into(),
                sequences.iter().map(|row| row.get(0)).collect(),
            );
            tables
        }
    }
}

/// A fresh target of the same kind as `like`.
async fn empty_target(
    parent: &std::path::Path,
    name: &str,
    like: &Data,
) -> (Data, Option<TestDatabase>) {
    let dir = process::data_dir(parent, name);
    match like.postgres_url {
        None => (
            Data {
                dir,
                postgres_url: None,
            },
            None,
        ),
        Some(_) => {
            let database = TestDatabase::create_postgres().await;
            (
                Data {
                    dir,
                    postgres_url: Some(database.url.clone()),
                },
                Some(database),
            )
        }
    }
}

async fn trace_ids(base: &str, key: &str) -> BTreeSet<String> {
    let http = reqwest::Client::new();
    let mut ids = BTreeSet::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/api/v1/traces?limit=1000");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page: serde_json::Value = http
            .get(url)
            .header("authorization", format!("Bearer {key}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for item in page["items"].as_array().expect("items") {
            ids.insert(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

async fn post_traces(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    prefix: &str,
    n: usize,
) -> bool {
    http.post(format!("{base}/api/v1/traces"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body(crate::traces(prefix, n, 200))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
}

async fn backup_and_restore(live: Data) {
    let scratch = tempfile::tempdir().unwrap();
    let port = process::free_port();
    let server = process::start(&live, port, &[]).await;
    let key = server.first_start_key().await;
    let http = reqwest::Client::new();
    for batch in 0..20 {
        assert!(post_traces(&http, &server.base, &key, &format!("before{batch}"), 50).await);
    }
    let feedback =
        serde_json::json!([{"id": "fb-1", "trace_id": "before0-0", "rating": {"value": 0}}]);
    let answer = http
        .post(format!("{}/api/v1/feedback", server.base))
        .header("authorization", format!("Bearer {key}"))
        .json(&feedback)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{}", answer.text().await.unwrap());
    let acked_before = trace_ids(&server.base, &key).await;

    // Ingest goes on while the backup runs.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (writing, http, base, key) = (
            writing.clone(),
            http.clone(),
            server.base.clone(),
            key.clone(),
        );
        tokio::spawn(async move {
            let mut batch = 0;
            while writing.load(Ordering::Relaxed) {
                assert!(post_traces(&http, &base, &key, &format!("during{batch}"), 20).await);
                batch += 1;
            }
            batch
        })
    };
    let online = scratch.path().join("online.backup");
    let (ok, output) = {
        let (live, online) = (live.clone(), online.clone());
        tokio::task::spawn_blocking(move || {
            run_command(&live, &["backup", "--out", online.to_str().unwrap()])
        })
        .await
        .unwrap()
    };
    assert!(ok, "backup failed: {output}");
    writing.store(false, Ordering::Relaxed);
    let num_batches_during = writer.await.unwrap();
    assert!(
        num_batches_during > 0,
        "nothing was written during the backup"
    );
    let live_ids = trace_ids(&server.base, &key).await;

    // A second backup of the same file name is refused: backups never overwrite.
    let (ok, output) = run_command(&live, &["backup", "--out", online.to_str().unwrap()]);
    assert!(!ok && output.contains("exists"), "{output}");

    // The online backup restores into an empty target and serves with the old key.
    let (target, _target_db) = empty_target(scratch.path(), "restored-online", &live).await;
    let (ok, output) = run_command(&target, &["restore", "--from", online.to_str().unwrap()]);
    assert!(ok, "restore failed: {output}");
    let restored = process::start(&target, process::free_port(), &[]).await;
    let restored_ids = trace_ids(&restored.base, &key).await;
    assert!(
        acked_before.is_subset(&restored_ids),
        "the backup lacks writes acknowledged before it started"
    );
    assert!(
        restored_ids.is_subset(&live_ids),
        "the backup holds traces the live database does not"
    );
    // A consistent snapshot: whole requests only (each `during` batch is all or nothing).
    for batch in 0..num_batches_during {
        let prefix = format!("during{batch}-");
        let n = restored_ids
            .iter()
            .filter(|id| id.starts_with(&prefix))
            .count();
        assert!(
            n == 0 || n == 20,
            "batch {batch} is partly in the backup ({n} of 20)"
        );
    }
    let chain: serde_json::Value = http
        .get(format!("{}/api/v1/traces/before0-0", restored.base))
        .header("authorization", format!("Bearer {key}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(chain["feedback"][0]["id"], "fb-1", "{chain}");
    // The restored server takes writes too.
    assert!(post_traces(&http, &restored.base, &key, "after-restore", 5).await);
    drop(restored);

    // Restore refuses a target with data unless forced.
    let (ok, output) = run_command(&target, &["restore", "--from", online.to_str().unwrap()]);
    assert!(!ok && output.contains("--force"), "{output}");
    let (ok, output) = run_command(
        &target,
        &["restore", "--force", "--from", online.to_str().unwrap()],
    );
    assert!(ok, "forced restore failed: {output}");

    // Exactness: a backup of the stopped server restores to the same rows in every table.
    server.terminate();
    let (exit, log) = server.wait_exit(Duration::from_secs(60)).await;
    assert!(exit.success(), "{log}");
    let quiet = scratch.path().join("quiet.backup");
    let (ok, output) = run_command(&live, &["backup", "--out", quiet.to_str().unwrap()]);
    assert!(ok, "backup failed: {output}");
    let (exact, _exact_db) = empty_target(scratch.path(), "restored-exact", &live).await;
    let (ok, output) = run_command(&exact, &["restore", "--from", quiet.to_str().unwrap()]);
    assert!(ok, "restore failed: {output}");
    let (expected, got) = (dump_tables(&live).await, dump_tables(&exact).await);
    assert_eq!(
        expected.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (table, rows) in &expected {
        assert_eq!(rows.len(), got[table].len(), "rows of {table}");
        assert!(rows == &got[table], "contents of {table} differ");
    }
    assert!(expected["traces"].len() >= 1_000);
    // A backup of one kind does not restore into the other kind of database.
    let other = if live.postgres_url.is_some() {
        Data {
            dir: process::data_dir(scratch.path(), "other-kind"),
            postgres_url: None,
        }
    } else {
        Data {
            dir: process::data_dir(scratch.path(), "other-kind"),
            postgres_url: Some("postgres://postgres@127.0.0.1:5432/postgres".into()),
        }
    };
    let (ok, output) = run_command(&other, &["restore", "--from", quiet.to_str().unwrap()]);
    assert!(!ok && output.contains("is not a"), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_backup_while_ingesting_restores_consistently_and_exactly() {
    let dir = tempfile::tempdir().unwrap();
    backup_and_restore(Data {
        dir: process::data_dir(dir.path(), "live"),
        postgres_url: None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_backup_while_ingesting_restores_consistently_and_exactly() {
    let database = TestDatabase::create_postgres().await;
    let dir = tempfile::tempdir().unwrap();
    backup_and_restore(Data {
        dir: process::data_dir(dir.path(), "live"),
        postgres_url: Some(database.url.clone()),
    })
    .await;
}
