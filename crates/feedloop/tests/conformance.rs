//! API conformance: schemathesis (from PyPI, in the test virtualenv) generates requests from the
//! served OpenAPI document, valid and invalid, and sends them to the real server with seeded
//! data and an admin key. Every answer must not be a server error, must have a documented
//! status code and content type, and its body must match the documented schema.
//!
//! Runs with `FEEDLOOP_TEST_PYTHON` (set by `scripts/test`). `FEEDLOOP_CONFORMANCE_EXAMPLES`
//! (default 10) bounds the cases per operation and phase; `FEEDLOOP_CONFORMANCE_SEED` (default
//! fixed, so that CI runs are repeatable) picks the generator's seed.

#![allow(clippy::unwrap_used)] // test code

mod common;

use common::TestServer;
use serde_json::json;

/// The checks every answer must pass.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance";

/// Operations that destroy what the others need: revoking or rotating a key (the generator
/// may hit the test's own admin key: later requests would all be 401) and erasing an end
/// user's data (the seeded data). They run on their own, after everything else, with the
/// same checks.
const DESTRUCTIVE: &str = "^/api/v1/keys/|^/api/v1/erasure$";

fn python() -> String {
    std::env::var("FEEDLOOP_TEST_PYTHON").unwrap_or_else(|_| {
        panic!(
            "FEEDLOOP_TEST_PYTHON is not set: run scripts/test, which prepares a virtualenv with \
             schemathesis and sets it (or set it to such a python yourself)"
        )
    })
}

/// Data for the generated requests to find: traces in a session, feedback of several kinds,
/// a dataset, a lesson, a review queue and a webhook.
async fn seed(server: &TestServer) {
    let (status, body) = server
        .post(
            "/api/v1/ingest",
            json!({
                "traces": [
                    {"id": "t-1", "session_id": "s-1", "user_id": "u-1",
                     "input": "When will my card arrive?", "output": "In 3 to 5 working days.",
                     "model": {"name": "gpt-4o"}, "tags": ["cards"], "metadata": {"app": "web"},
                     "spans": [{"id": "sp-1", "name": "llm", "kind": "llm"}]},
                    {"id": "t-2", "session_id": "s-1", "user_id": "u-1",
                     "input": "And the fee?", "output": "There is no fee."},
                ],
                "feedback": [
                    {"id": "fb-1", "trace_id": "t-1", "rating": {"value": 0}},
                    {"id": "fb-2", "trace_id": "t-1", "comment": "too slow"},
                    {"id": "fb-3", "trace_id": "t-2", "correction": {"text": "A fee of 2 EUR applies."}},
                    {"id": "fb-4", "trace_id": "t-1", "annotation": {"start": 3, "end": 9, "quote": "3 to 5"}},
                ],
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for (path, body) in [
        (
            "/api/v1/datasets",
            json!({"name": "qa", "description": "seeded"}),
        ),
        (
            "/api/v1/lessons",
            json!({"id": "ls-1", "title": "Card delivery", "status": "active",
                   "trigger": {"examples": ["when will my card arrive"]},
                   "action": {"instruction": "Give the window in working days."}}),
        ),
        (
            "/api/v1/queues",
            json!({"name": "negative", "rules": [{"filter": {"negative_feedback": "true"}}]}),
        ),
        (
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["regression"]}),
        ),
    ] {
        let (status, answer) = server.post(path, body).await;
        assert_eq!(status, 201, "{path}: {answer}");
    }
}

/// Runs schemathesis on the operations `filter` selects; returns whether it passed and its
/// output.
async fn schemathesis(server: &TestServer, filter: &[&str], report: &str) -> (bool, String) {
    let examples =
        std::env::var("FEEDLOOP_CONFORMANCE_EXAMPLES").unwrap_or_else(|_| "10".to_owned());
    let seed = std::env::var("FEEDLOOP_CONFORMANCE_SEED").unwrap_or_else(|_| "20261129".to_owned());
    let launcher = format!(
        "{}/tests/python/schemathesis_run.py",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut args: Vec<String> = [
        launcher.as_str(),
        "run",
        &format!("{}/api/v1/openapi.json", server.base),
        "--header",
        &format!("Authorization: Bearer {}", server.key),
        "--checks",
        CHECKS,
        "--max-examples",
        &examples,
        "--seed",
        &seed,
        "--workers",
        "2",
        "--report",
        "junit",
        "--report-junit-path",
        &server.dir.path().join(report).display().to_string(),
        // Reproduction commands with the key in them are fine: it dies with the test.
        "--output-sanitize",
        "false",
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    args.extend(filter.iter().map(|arg| arg.to_string()));
    let python = python();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .args(&args)
            // No colours or progress bars in the captured output; no telemetry.
            .env("NO_COLOR", "1")
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python}: {e}"))
    })
    .await
    .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// The last `max` bytes of `text` (at a character boundary): the summary and the failures
/// before it.
fn tail(text: &str, max: usize) -> &str {
    let mut start = text.len().saturating_sub(max);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_the_openapi_document() {
    let server = TestServer::start().await;
    seed(&server).await;

    let (passed, output) = schemathesis(
        &server,
        &["--exclude-path-regex", DESTRUCTIVE],
        "conformance.xml",
    )
    .await;
    assert!(passed, "schemathesis failed:\n{}", tail(&output, 60_000));
    assert!(
        output.contains("Tested:"),
        "schemathesis tested nothing:\n{output}"
    );

    let (passed, output) = schemathesis(
        &server,
        &["--include-path-regex", DESTRUCTIVE],
        "destructive.xml",
    )
    .await;
    assert!(
        passed,
        "schemathesis failed on the destructive operations:\n{}",
        tail(&output, 60_000)
    );
}
