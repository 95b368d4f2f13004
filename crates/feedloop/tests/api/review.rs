//! Review queues through the API on real data: the qa-feedback fixture imported, a queue whose
//! rule is the negative feedback filled by the `review_rules` job (exactly the negative traces,
//! once, even when the job runs again), every reviewer action with its history and what it
//! wrote (feedback, tags, a lesson), reviewer agreement, and bad input. Time is a manual clock.

use feedloop::cli::ServerArgs;
use feedloop::cli::import::{ImportArgs, ImportFormat, import};
use feedloop_core::Timestamp;
use feedloop_core::clock::{Clock, ManualClock};
use feedloop_core::review::sampled;
use feedloop_server::jobs::{Job, JobScheduler, TickOutcome};
use feedloop_server::{AppState, ServerConfig};
use jiff::SignedDuration;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{TestServer, assert_error, hash_embedder};

/// The server's own job runner ticks once at start and then rarely: the test runs the job.
fn quiet_jobs() -> ServerConfig {
    ServerConfig {
        job_tick_interval: Duration::from_secs(3_600),
        ..ServerConfig::default()
    }
}

async fn import_qa_feedback(server: &TestServer) {
    let input = server.dir.path().join("qa.json");
    std::fs::copy(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/qa_feedback/dev_feedback_sample.json"),
        &input,
    )
    .unwrap();
    let args = ImportArgs {
        server: ServerArgs {
            server: server.base.clone(),
            api_key: server.key.clone(),
        },
        path: input,
        format: ImportFormat::QaFeedback,
        batch_size: 200,
        restart: false,
    };
    import(&args).await.unwrap();
}

/// Moves the clock to the next period of the job and runs one tick; the job's outcome.
async fn run_review_rules(server: &TestServer, clock: &Arc<ManualClock>) -> String {
    clock.advance(SignedDuration::from_mins(1));
    let state = AppState::new(
        server.store.clone(),
        clock.clone(),
        quiet_jobs(),
        server.memory.clone(),
    );
    let outcomes = JobScheduler::default()
        .tick(&state, "test-replica", clock.now())
        .await;
    match outcomes
        .into_iter()
        .find(|(job, _)| *job == Job::ReviewRules)
    {
        Some((_, TickOutcome::Ran { outcome, .. })) => outcome,
        other => panic!("review_rules did not run: {other:?}"),
    }
}

async fn ids_of(server: &TestServer, path: &str) -> BTreeSet<String> {
    let (status, body) = server.get(path).await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            item["trace_id"]
                .as_str()
                .or(item["id"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect()
}

async fn items(server: &TestServer, queue: &str) -> Vec<Value> {
    let (status, body) = server
        .get(&format!("/api/v1/queues/{queue}/items?limit=1000"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// The lines of every split of a dataset's export (`split=all` events), the CSV header left out.
async fn export_lines(server: &TestServer, dataset: &str, format: &str) -> Vec<String> {
    let response = server
        .http
        .get(format!(
            "{}/api/v1/datasets/{dataset}/export?format={format}&split=all",
            server.base
        ))
        .header("authorization", format!("Bearer {}", server.key))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{format}");
    let text = response.text().await.unwrap();
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter_map(|event| event.get("line").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

async fn act(server: &TestServer, queue: &str, item: i64, body: Value) -> (StatusCode, Value) {
    server
        .post(
            &format!("/api/v1/queues/{queue}/items/{item}/actions"),
            body,
        )
        .await
}

async fn act_ok(server: &TestServer, queue: &str, item: i64, body: Value) -> Value {
    let (status, answer) = act(server, queue, item, body.clone()).await;
    assert_eq!(status, 200, "{body} -> {answer}");
    answer
}

#[tokio::test]
async fn a_negative_feedback_queue_fills_from_the_qa_fixture_and_every_action_is_recorded() {
    let start = Timestamp::from_second(Timestamp::now().as_second()).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let server =
        TestServer::start_with_clock(clock.clone(), quiet_jobs(), hash_embedder().await).await;
    // Rules enqueue traces as they arrive: the queues exist before the data does. New items are
    // announced to webhooks (queued here; nothing listens on the port).
    let (status, hook) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["review_item_created"]}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");

    let (status, queue) = server
        .post(
            "/api/v1/queues",
            json!({
                "name": "negative",
                "description": "everything users complained about",
                "rules": [{"filter": {"negative_feedback": "true"}, "sampling_rate": 1.0}]
            }),
        )
        .await;
    assert_eq!(status, 201, "{queue}");
    assert_eq!(queue["reviewers_required"], 1);
    assert_eq!(queue["lock_secs"], 1800);
    let (status, _) = server
        .post(
            "/api/v1/queues",
            json!({"name": "half", "rules": [{"filter": {"negative_feedback": "true"}, "sampling_rate": 0.5}]}),
        )
        .await;
    assert_eq!(status, 201);
    import_qa_feedback(&server).await;
    // Rephrase signals are derived from the stored vectors (the tick runs `derive_signals`
    // before `review_rules`), and they are negative feedback too: the first run must see them
    // all, or the next one enqueues what they add.
    server.wait_until_indexed(400).await;

    run_review_rules(&server, &clock).await;
    let negative = ids_of(&server, "/api/v1/traces?negative_feedback=true&limit=1000").await;
    assert!(
        negative.len() > 100 && negative.len() < 400,
        "{}",
        negative.len()
    );
    let queued = items(&server, "negative").await;
    let queued_ids: BTreeSet<String> = queued
        .iter()
        .map(|item| item["trace_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(queued.len(), queued_ids.len(), "a trace enqueued twice");
    assert_eq!(queued_ids, negative);
    let (_, log) = server.get("/api/v1/webhooks/deliveries?limit=1000").await;
    let announced = log["deliveries"].as_array().unwrap();
    assert!(
        announced.len() >= negative.len()
            && announced
                .iter()
                .all(|d| d["event_type"] == "review_item_created"),
        "every new item is announced: {} events",
        announced.len()
    );
    // Sampling is the deterministic draw, nothing else.
    let half: BTreeSet<String> = items(&server, "half")
        .await
        .iter()
        .map(|item| item["trace_id"].as_str().unwrap().to_owned())
        .collect();
    let drawn: BTreeSet<String> = negative
        .iter()
        .filter(|id| sampled("half", id, 0.5))
        .cloned()
        .collect();
    assert_eq!(half, drawn);
    // A queue made after the traces arrived holds the matching ones at once.
    let (status, _) = server
        .post(
            "/api/v1/queues",
            json!({"name": "later", "rules": [{"filter": {"negative_feedback": "true"}}]}),
        )
        .await;
    assert_eq!(status, 201);
    let later: BTreeSet<String> = items(&server, "later")
        .await
        .iter()
        .map(|item| item["trace_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        later, negative,
        "the backfill enqueues what the rules match"
    );
    // Items come by priority, all pending, each with a priority from its feedback.
    let priorities: Vec<f64> = queued
        .iter()
        .map(|i| i["priority"].as_f64().unwrap())
        .collect();
    assert!(priorities.windows(2).all(|w| w[0] >= w[1]));
    assert!(priorities.iter().all(|p| *p > 0.0));
    assert!(queued.iter().all(|i| i["state"] == "pending"));

    // Running again enqueues nothing new.
    let outcome = run_review_rules(&server, &clock).await;
    assert!(outcome.contains("enqueued 0 items"), "{outcome}");
    assert_eq!(items(&server, "negative").await.len(), negative.len());

    // New negative feedback on a queued trace raises its priority at the next run.
    let lowest = queued.last().unwrap();
    let (low_id, low_trace) = (
        lowest["id"].as_i64().unwrap(),
        lowest["trace_id"].as_str().unwrap(),
    );
    let (status, body) = server
        .post(
            "/api/v1/feedback",
            json!({"trace_id": low_trace, "correction": {"text": "the right answer"}, "author": "u9"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    run_review_rules(&server, &clock).await;
    let (_, raised) = server
        .get(&format!("/api/v1/queues/negative/items/{low_id}"))
        .await;
    assert!(
        raised["priority"].as_f64().unwrap() > lowest["priority"].as_f64().unwrap(),
        "{raised}"
    );

    // ann takes the top item and works through every action.
    let (status, reserved) = server
        .post(
            "/api/v1/queues/negative/reserve",
            json!({"reviewer": "ann"}),
        )
        .await;
    assert_eq!(status, 200, "{reserved}");
    let item = &reserved["item"];
    assert_eq!(item["id"], queued[0]["id"]);
    assert_eq!(item["state"], "in_progress");
    assert_eq!(item["reserved_by"], "ann");
    let item_id = item["id"].as_i64().unwrap();
    let trace = item["trace_id"].as_str().unwrap().to_owned();
    // bob cannot work on ann's item.
    let answer = act(
        &server,
        "negative",
        item_id,
        json!({"action": "label", "author": "bob", "categories": ["too_vague"]}),
    )
    .await;
    assert_eq!(answer.0.as_u16(), 409, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], "conflict");

    let (_, chain) = server.get(&format!("/api/v1/traces/{trace}")).await;
    let output = chain["trace"]["output"].as_str().unwrap().to_owned();
    let quote: String = output.chars().take(5).collect();
    let label = act_ok(
        &server,
        "negative",
        item_id,
        json!({"action": "label", "author": "ann", "categories": ["factually_incorrect"]}),
    )
    .await;
    let annotate = act_ok(
        &server,
        "negative",
        item_id,
        json!({"action": "annotate", "author": "ann", "annotation": {"start": 0, "end": 5, "quote": quote, "comment": "wrong name"}}),
    )
    .await;
    let correct = act_ok(
        &server,
        "negative",
        item_id,
        json!({"action": "correct", "author": "ann", "correction": {"text": "Bloom came out on 31 August 2018."}}),
    )
    .await;
    act_ok(
        &server,
        "negative",
        item_id,
        json!({"action": "tag", "author": "ann", "tags": ["reviewed"]}),
    )
    .await;
    let promote = act_ok(
        &server,
        "negative",
        item_id,
        json!({"action": "promote", "author": "ann", "title": "check release dates"}),
    )
    .await;
    let (status, _) = act(
        &server,
        "negative",
        item_id,
        json!({"action": "add_to_dataset", "author": "ann", "dataset": "qa_sft"}),
    )
    .await;
    assert_eq!(status, 404, "no such dataset yet");
    let (status, body) = server
        .post("/api/v1/datasets", json!({"name": "qa_sft"}))
        .await;
    assert_eq!(status, 201, "{body}");
    act_ok(
        &server,
        "negative",
        item_id,
        json!({"action": "add_to_dataset", "author": "ann", "dataset": "qa_sft"}),
    )
    .await;
    let (_, dataset) = server.get("/api/v1/datasets/qa_sft").await;
    assert!(dataset["num_items"].as_u64().unwrap() >= 1, "{dataset}");
    // The reviewed item exports in every format (the formats' fields: tests/api/datasets.rs).
    for format in ["openai", "sft", "preference", "csv"] {
        let lines = export_lines(&server, "qa_sft", format).await;
        assert!(!lines.is_empty(), "{format}: no lines");
        if format == "preference" {
            for line in &lines {
                let pair: Value = serde_json::from_str(line).unwrap();
                assert_ne!(pair["chosen"], pair["rejected"], "{line}");
            }
        } else if format != "csv" {
            for line in &lines {
                serde_json::from_str::<Value>(line).unwrap();
            }
        }
    }
    let ux = act_ok(
        &server,
        "negative",
        item_id,
        json!({"action": "mark_ux_issue", "author": "ann", "note": "show sources"}),
    )
    .await;
    assert_eq!(ux["item"]["ux_issue"], true);
    let resolved = act_ok(
        &server,
        "negative",
        item_id,
        json!({"action": "resolve", "author": "ann"}),
    )
    .await;
    assert_eq!(resolved["item"]["state"], "resolved");
    assert_eq!(resolved["item"]["tags"], json!(["reviewed"]));

    // The history: every action, by ann, in order, with what it wrote.
    let (status, history) = server
        .get(&format!("/api/v1/queues/negative/items/{item_id}/history"))
        .await;
    assert_eq!(status, 200, "{history}");
    let events = history["events"].as_array().unwrap();
    let actions: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["author"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("enqueued", "feedloop:review_rules"),
            ("reserve", "ann"),
            ("label", "ann"),
            ("annotate", "ann"),
            ("correct", "ann"),
            ("tag", "ann"),
            ("promote", "ann"),
            ("add_to_dataset", "ann"),
            ("mark_ux_issue", "ann"),
            ("resolve", "ann"),
        ]
    );
    assert!(events.iter().all(|e| e["at"].is_string()));
    assert_eq!(events[7]["payload"]["dataset"], "qa_sft");
    assert!(events[7]["payload"]["items_added"].as_u64().unwrap() >= 1);

    // The feedback each action wrote is on the trace, from a reviewer, by ann.
    let (_, chain) = server.get(&format!("/api/v1/traces/{trace}")).await;
    assert!(
        chain["trace"]["tags"]
            .as_array()
            .unwrap()
            .contains(&json!("reviewed"))
    );
    let by_ann: Vec<&Value> = chain["feedback"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["author"] == "ann")
        .collect();
    for (answer, kind) in [
        (&label, "category"),
        (&annotate, "annotation"),
        (&correct, "correction"),
    ] {
        let id = &answer["event"]["payload"]["feedback_id"];
        let written = by_ann
            .iter()
            .find(|f| &f["id"] == id)
            .unwrap_or_else(|| panic!("{kind} {id}"));
        assert_eq!(written["kind"], kind);
        assert_eq!(written["source"], "reviewer");
    }
    // The promoted lesson exists, proposed, with the trace's feedback as provenance.
    let lesson_id = promote["event"]["payload"]["lesson_id"].as_str().unwrap();
    let (status, lesson) = server.get(&format!("/api/v1/lessons/{lesson_id}")).await;
    assert_eq!(status, 200, "{lesson}");
    assert_eq!(lesson["title"], "check release dates");
    assert_eq!(lesson["status"], "proposed");

    // Dismissal needs a reason; a closed item takes no more actions.
    let other = queued[1]["id"].as_i64().unwrap();
    let answer = act(
        &server,
        "negative",
        other,
        json!({"action": "dismiss", "author": "bob"}),
    )
    .await;
    assert_error(&answer, 422, "invalid_value", Some("reason"));
    let dismissed = act_ok(
        &server,
        "negative",
        other,
        json!({"action": "dismiss", "author": "bob", "reason": "the answer is right"}),
    )
    .await;
    assert_eq!(dismissed["item"]["state"], "dismissed");
    assert_eq!(
        dismissed["item"]["resolution"]["reason"],
        "the answer is right"
    );
    let answer = act(
        &server,
        "negative",
        other,
        json!({"action": "resolve", "author": "bob"}),
    )
    .await;
    assert_eq!(answer.0.as_u16(), 409, "{}", answer.1);
    let answer = act(
        &server,
        "negative",
        item_id,
        json!({"action": "reserve", "author": "bob"}),
    )
    .await;
    assert_eq!(answer.0.as_u16(), 409, "{}", answer.1);
    let (status, listed) = server
        .get("/api/v1/queues/negative/items?state=dismissed")
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test]
async fn reviewers_agree_or_not_and_assignment_holds() {
    let server = TestServer::start_with(quiet_jobs()).await;
    let traces: Vec<Value> = (1..=3)
        .map(|i| json!({"id": format!("t{i}"), "input": format!("question {i}"), "output": "an answer"}))
        .collect();
    let (status, body) = server.post("/api/v1/traces", json!(traces)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post(
            "/api/v1/queues",
            json!({"name": "experts", "reviewers_required": 2}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, receipt) = server
        .post(
            "/api/v1/queues/experts/items",
            json!({"trace_ids": ["t1", "t2", "t3", "t1"], "author": "lead"}),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    let statuses: Vec<&str> = receipt["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["created", "created", "created", "existing"]);
    let id = |i: usize| receipt["items"][i]["item_id"].as_i64().unwrap();

    // A verdict needs a label here.
    let answer = act(
        &server,
        "experts",
        id(0),
        json!({"action": "resolve", "author": "ann"}),
    )
    .await;
    assert_error(&answer, 422, "invalid_value", Some("label"));
    for (item, who, label) in [
        (0, "ann", "wrong"),
        (0, "bob", "wrong"),
        (1, "ann", "wrong"),
        (1, "bob", "fine"),
    ] {
        act_ok(
            &server,
            "experts",
            id(item),
            json!({"action": "resolve", "author": who, "label": label}),
        )
        .await;
    }
    let (status, agreement) = server.get("/api/v1/queues/experts/agreement").await;
    assert_eq!(status, 200, "{agreement}");
    assert_eq!(agreement["num_items"], 2);
    assert_eq!(agreement["mean_agreement"], 0.75);
    let kappa = agreement["fleiss_kappa"].as_f64().unwrap();
    assert!((kappa + 1.0 / 3.0).abs() < 1e-9, "{kappa}");
    let (_, split) = server
        .get(&format!("/api/v1/queues/experts/items/{}", id(1)))
        .await;
    assert_eq!(split["state"], "resolved");
    assert_eq!(split["resolution"]["agreement"], 0.5);

    // Assigned to bob: ann's reserve-next finds nothing, bob's finds it; self-assignment too.
    act_ok(
        &server,
        "experts",
        id(2),
        json!({"action": "assign", "author": "lead", "assignee": "bob"}),
    )
    .await;
    let (_, none) = server
        .post("/api/v1/queues/experts/reserve", json!({"reviewer": "ann"}))
        .await;
    assert_eq!(none["item"], Value::Null);
    let (_, mine) = server
        .get("/api/v1/queues/experts/items?assignee=bob")
        .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    let (_, got) = server
        .post("/api/v1/queues/experts/reserve", json!({"reviewer": "bob"}))
        .await;
    assert_eq!(got["item"]["id"], id(2));
    act_ok(
        &server,
        "experts",
        id(2),
        json!({"action": "release", "author": "bob"}),
    )
    .await;
    act_ok(
        &server,
        "experts",
        id(2),
        json!({"action": "assign", "author": "cy", "assignee": "cy"}),
    )
    .await;
    let (_, got) = server
        .post("/api/v1/queues/experts/reserve", json!({"reviewer": "cy"}))
        .await;
    assert_eq!(got["item"]["reserved_by"], "cy");

    // Bad input: unknown queue and item, fields of another action, bad rules.
    let answer = server.get("/api/v1/queues/nope/items").await;
    assert_error(&answer, 404, "queue_not_found", None);
    let answer = server
        .post("/api/v1/queues/nope/reserve", json!({"reviewer": "ann"}))
        .await;
    assert_error(&answer, 404, "queue_not_found", None);
    let answer = server.get("/api/v1/queues/experts/items/999999").await;
    assert_error(&answer, 404, "review_item_not_found", None);
    let answer = act(
        &server,
        "experts",
        999_999,
        json!({"action": "release", "author": "ann"}),
    )
    .await;
    assert_eq!(answer.0.as_u16(), 404, "{}", answer.1);
    let answer = act(
        &server,
        "experts",
        id(2),
        json!({"action": "release", "author": "cy", "reason": "x"}),
    )
    .await;
    assert_error(&answer, 422, "invalid_value", Some("reason"));
    let answer = server
        .post(
            "/api/v1/queues",
            json!({"name": "bad", "rules": [{"filter": {"environment": "moon"}}]}),
        )
        .await;
    assert_error(
        &answer,
        422,
        "invalid_value",
        Some("rules[0].filter.environment"),
    );
    let answer = server
        .post("/api/v1/queues", json!({"name": "experts"}))
        .await;
    assert_error(&answer, 409, "conflict", Some("name"));
    let answer = server
        .post(
            "/api/v1/queues/experts/items",
            json!({"trace_ids": ["missing"], "author": "lead"}),
        )
        .await;
    assert_error(&answer, 404, "trace_not_found", None);

    // Update and delete.
    let (status, changed) = server
        .put("/api/v1/queues/experts", json!({"lock_secs": 600}))
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["lock_secs"], 600);
    let (status, _) = server.delete("/api/v1/queues/experts").await;
    assert_eq!(status, 204);
    let answer = server.get("/api/v1/queues/experts").await;
    assert_error(&answer, 404, "queue_not_found", None);

    // Every route is in the OpenAPI document.
    let (status, document) = server.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    for (path, method) in [
        ("/api/v1/queues", "post"),
        ("/api/v1/queues/{queue}", "put"),
        ("/api/v1/queues/{queue}/items", "get"),
        ("/api/v1/queues/{queue}/items/{item}/actions", "post"),
        ("/api/v1/queues/{queue}/items/{item}/history", "get"),
        ("/api/v1/queues/{queue}/reserve", "post"),
        ("/api/v1/queues/{queue}/agreement", "get"),
    ] {
        assert!(
            document["paths"][path][method].is_object(),
            "{path} {method}"
        );
    }
    assert!(document["components"]["schemas"]["ActionBody"].is_object());
}

#[tokio::test]
async fn a_queue_counts_its_items_per_state() {
    let server = TestServer::start_with(quiet_jobs()).await;
    let traces: Vec<Value> = (1..=4)
        .map(|i| json!({"id": format!("t{i}"), "input": format!("question {i}"), "output": "an answer"}))
        .collect();
    let (status, body) = server.post("/api/v1/traces", json!(traces)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post("/api/v1/queues", json!({"name": "triage"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let counts = |pending, in_progress, resolved, dismissed| {
        json!({"queue": "triage", "pending": pending, "in_progress": in_progress,
               "resolved": resolved, "dismissed": dismissed})
    };
    let (status, empty) = server.get("/api/v1/queues/triage/counts").await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty, counts(0, 0, 0, 0));
    let (status, receipt) = server
        .post(
            "/api/v1/queues/triage/items",
            json!({"trace_ids": ["t1", "t2", "t3", "t4"], "author": "lead"}),
        )
        .await;
    assert_eq!(status, 200, "{receipt}");
    let id = |i: usize| receipt["items"][i]["item_id"].as_i64().unwrap();
    act_ok(
        &server,
        "triage",
        id(0),
        json!({"action": "reserve", "author": "ann"}),
    )
    .await;
    act_ok(
        &server,
        "triage",
        id(1),
        json!({"action": "resolve", "author": "ann"}),
    )
    .await;
    act_ok(
        &server,
        "triage",
        id(2),
        json!({"action": "dismiss", "author": "ann", "reason": "a test"}),
    )
    .await;
    let (_, now) = server.get("/api/v1/queues/triage/counts").await;
    assert_eq!(now, counts(1, 1, 1, 1));
    assert_error(
        &server.get("/api/v1/queues/missing/counts").await,
        404,
        "queue_not_found",
        None,
    );
}
