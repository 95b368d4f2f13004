//! Implicit signals through the API: every client-reported signal type, signal settings,
//! validation, the derived rules (rephrase, frustration, regenerate, abandonment) with their
//! negative cases, the satisfaction estimate and its filters, the session timeline, and
//! recomputing after a threshold changed. Time is a manual clock, never a sleep.

use feedloop_core::Timestamp;
use feedloop_core::clock::{Clock, ManualClock};
use feedloop_server::jobs::{Job, JobScheduler, TickOutcome};
use feedloop_server::{AppState, ServerConfig};
use jiff::SignedDuration;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{TestServer, assert_error, hash_embedder, minilm};

/// The server's own job runner ticks once at start and then rarely: the tests run the job.
fn quiet_jobs() -> ServerConfig {
    ServerConfig {
        job_tick_interval: Duration::from_secs(3_600),
        ..ServerConfig::default()
    }
}

/// A whole second near the real time, so the server's own tick sees no answer as timed out.
fn start_time() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).unwrap()
}

fn at(start: Timestamp, secs: i64) -> String {
    start
        .saturating_add(SignedDuration::from_secs(secs))
        .unwrap()
        .to_string()
}

async fn feedback_of(server: &TestServer, trace: &str) -> Vec<Value> {
    let (status, chain) = server.get(&format!("/api/v1/traces/{trace}")).await;
    assert_eq!(status, 200, "{chain}");
    chain["feedback"].as_array().unwrap().clone()
}

async fn num_automatic(server: &TestServer) -> usize {
    let (_, list) = server
        .get("/api/v1/feedback?source=automatic&limit=1000")
        .await;
    list["items"].as_array().unwrap().len()
}

fn derived_types(feedback: &[Value]) -> Vec<String> {
    let mut types: Vec<String> = feedback
        .iter()
        .filter(|f| f["source"] == "automatic")
        .map(|f| f["signal"]["type"].as_str().unwrap().to_owned())
        .collect();
    types.sort();
    types
}

#[tokio::test]
async fn every_client_signal_is_stored_idempotently_and_moves_satisfaction() {
    let clock = Arc::new(ManualClock::new(start_time()));
    let server =
        TestServer::start_with_clock(clock.clone(), quiet_jobs(), hash_embedder().await).await;
    let (status, body) = server
        .post(
            "/api/v1/traces",
            json!({"id": "t1", "session_id": "s1", "input": "What is the card fee?",
                   "output": "The card fee is 2 % per payment."}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Declare a custom type first: undeclared ones are refused (see below).
    let (status, settings) = server
        .put(
            "/api/v1/signals/settings",
            json!({"types": {"bookmark": {"polarity": "positive", "weight": 0.6}}}),
        )
        .await;
    assert_eq!(status, 200, "{settings}");
    assert_eq!(
        settings["types"]["copy"]["polarity"], "positive",
        "{settings}"
    );

    let signals = json!([
        {"id": "s-copy", "trace_id": "t1", "type": "copy", "range": {"start": 4, "end": 12}, "value": 8},
        {"id": "s-copy-all", "trace_id": "t1", "type": "copy"},
        {"id": "s-regenerate", "trace_id": "t1", "type": "regenerate"},
        {"id": "s-edit", "trace_id": "t1", "type": "edit", "edited_text": "The card fee is 3 %."},
        {"id": "s-share", "trace_id": "t1", "type": "share"},
        {"id": "s-dwell", "trace_id": "t1", "type": "dwell", "value": 12000},
        {"id": "s-abandon", "trace_id": "t1", "type": "abandon", "before_complete": true},
        {"id": "s-bookmark", "trace_id": "t1", "type": "bookmark"},
    ]);
    let (status, receipt) = server.post("/api/v1/signals", signals.clone()).await;
    assert_eq!(status, 200, "{receipt}");
    assert!(
        receipt["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "created"),
        "{receipt}"
    );
    // A retry is a no-op; the same id with other content is a conflict.
    let (_, again) = server.post("/api/v1/signals", signals).await;
    assert!(
        again["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "duplicate"),
        "{again}"
    );
    let conflict = server
        .post(
            "/api/v1/signals",
            json!({"id": "s-share", "trace_id": "t1", "type": "copy"}),
        )
        .await;
    assert_error(&conflict, 409, "conflict", Some("id"));

    let feedback = feedback_of(&server, "t1").await;
    let by_id = |id: &str| feedback.iter().find(|f| f["id"] == id).unwrap().clone();
    assert_eq!(
        by_id("s-copy")["signal"],
        json!({"type": "copy", "value": 8.0, "details": {"start": 4, "end": 12}})
    );
    assert_eq!(
        by_id("s-edit")["signal"]["details"]["edited_text"],
        "The card fee is 3 %."
    );
    assert_eq!(
        by_id("s-abandon")["signal"]["details"]["before_complete"],
        true
    );
    assert_eq!(by_id("s-dwell")["source"], "end_user");
    assert_eq!(feedback.len(), 8);

    // Satisfaction: copy 0.5 + copy 0.5 + share 0.7 + dwell 0.2 × 0.4 + bookmark 0.6
    // − regenerate 1 − edit 0.3 − abandon 0.5 = 0.58 over 1 + 4.18.
    let (_, chain) = server.get("/api/v1/traces/t1").await;
    let score = chain["satisfaction"]["score"].as_f64().unwrap();
    assert!(
        (score - 0.58 / 5.18).abs() < 1e-9,
        "{}",
        chain["satisfaction"]
    );
    assert_eq!(chain["satisfaction"]["num_votes"], 8);

    // The job folds it into the stored estimate, which the list filters read.
    let state = AppState::new(
        server.store.clone(),
        clock.clone(),
        quiet_jobs(),
        server.memory.clone(),
    );
    state.signals.run(clock.now()).await.unwrap();
    let (_, above) = server.get("/api/v1/traces?satisfaction_above=0.1").await;
    assert_eq!(above["items"][0]["id"], "t1", "{above}");
    let (_, below) = server.get("/api/v1/traces?satisfaction_below=0").await;
    assert!(below["items"].as_array().unwrap().is_empty(), "{below}");

    // The session timeline shows the query, then the signals.
    let (_, session) = server.get("/api/v1/sessions/s1").await;
    let timeline = session["timeline"].as_array().unwrap();
    assert_eq!(timeline.len(), 9, "{session}");
    assert_eq!(timeline[0]["event"], "query");
    assert!(
        timeline[1..].iter().all(|e| e["event"] == "signal"),
        "{session}"
    );
    assert!(
        session["traces"][0]["satisfaction"]["score"].is_number(),
        "{session}"
    );
}

#[tokio::test]
async fn bad_signals_and_settings_name_the_field_and_change_nothing() {
    let server = TestServer::start_with(quiet_jobs()).await;
    server
        .post(
            "/api/v1/traces",
            json!({"id": "t1", "input": "q", "output": "a"}),
        )
        .await;
    let before = server.counts().await;
    let cases = [
        (
            json!([{"trace_id": "t1", "type": "copy"}, {"trace_id": "t1", "type": "bookmark"}]),
            "[1].type",
        ),
        (
            json!({"trace_id": "t1", "type": "copy", "range": {"start": 5, "end": 2}}),
            "range.end",
        ),
        (json!({"trace_id": "t1", "type": "dwell"}), "value"),
        (
            json!({"trace_id": "t1", "type": "dwell", "value": -5}),
            "value",
        ),
        (
            json!({"trace_id": "t1", "type": "edit", "edited_text": "  "}),
            "edited_text",
        ),
        (json!({"trace_id": "t1", "type": "Copy!"}), "type"),
        // The stored output ("a") is one character long.
        (
            json!({"trace_id": "t1", "type": "copy", "range": {"start": 0, "end": 2}}),
            "range.end",
        ),
    ];
    for (body, field) in cases {
        let answer = server.post("/api/v1/signals", body.clone()).await;
        assert_error(&answer, 422, "invalid_value", Some(field));
    }
    // The same rules hold on the feedback route, named as that body names them.
    let answer = server
        .post(
            "/api/v1/feedback",
            json!([{"trace_id": "t1", "signal": {"type": "bookmark"}}]),
        )
        .await;
    assert_error(&answer, 422, "invalid_value", Some("[0].signal.type"));
    assert_eq!(server.counts().await, before, "nothing was stored");

    let put = |body: Value| {
        let server = &server;
        async move { server.put("/api/v1/signals/settings", body).await }
    };
    let answer = put(json!({"rules": {"rephrase_min_similarity": 1.5}})).await;
    assert_error(
        &answer,
        422,
        "invalid_value",
        Some("rules.rephrase_min_similarity"),
    );
    let answer = put(json!({"types": {"copy": {"polarity": "positive", "weight": -1}}})).await;
    assert_error(&answer, 422, "invalid_value", Some("types.copy.weight"));
    let answer = put(json!({"types": {"Bad-Name": {"polarity": "positive", "weight": 1}}})).await;
    assert_error(&answer, 422, "invalid_value", Some("types.Bad-Name"));
    let (_, settings) = server.get("/api/v1/signals/settings").await;
    assert_eq!(
        settings["rules"]["rephrase_min_similarity"], 0.55,
        "unchanged: {settings}"
    );
    let answer = server
        .post(
            "/api/v1/signals/recompute",
            json!({"rules": ["rephrase", "telepathy"]}),
        )
        .await;
    assert_error(&answer, 422, "invalid_value", Some("rules[1]"));
}

/// One conversation turn: (trace id, session, seconds after the start, query, answer).
type Turn = (&'static str, &'static str, i64, &'static str);

const TURNS: [Turn; 15] = [
    // A rephrase: the same need in other words.
    ("r1", "s-rephrase", 0, "How do I reset my password?"),
    (
        "r2",
        "s-rephrase",
        30,
        "I forgot my password, how can I change it?",
    ),
    // A genuine follow-up question is not a rephrase, nor is a continuation.
    ("f1", "s-follow", 0, "How do I reset my password?"),
    (
        "f2",
        "s-follow",
        40,
        "Can I pay my credit card bill from a savings account?",
    ),
    (
        "f3",
        "s-follow",
        80,
        "And what about paying it from my password reset link?",
    ),
    // Frustration in the follow-up.
    (
        "w1",
        "s-wrong",
        0,
        "What is the fee for international transfers?",
    ),
    (
        "w2",
        "s-wrong",
        20,
        "That's wrong, the website says 2 percent",
    ),
    // The same prompt again.
    ("g1", "s-regen", 0, "Show my account balance"),
    ("g2", "s-regen", 5, "show my account balance"),
    // An answer nobody engaged with, then silence: abandoned.
    ("a1", "s-gone", 0, "Where is the nearest branch?"),
    // An answer that was copied is not abandoned.
    ("c1", "s-copied", 0, "What is my IBAN?"),
    // An answer followed by the next question is not abandoned; the rephrase is too late.
    ("n1", "s-next", 0, "Can I order a second card?"),
    ("n2", "s-next", 900, "How can I get an additional card?"),
    // Sessions of one trace with no answer are not abandoned (there was nothing to read).
    ("q1", "s-noanswer", 0, "Hello?"),
    ("x1", "s-other", 0, "How do I close my account?"),
];

#[tokio::test]
async fn the_job_derives_each_rule_once_and_recomputes_after_a_threshold_change() {
    let start = start_time();
    let clock = Arc::new(ManualClock::new(start));
    let server = TestServer::start_with_clock(clock.clone(), quiet_jobs(), minilm().await).await;
    let traces: Vec<Value> = TURNS
        .iter()
        .map(|(id, session, secs, query)| {
            let mut trace = json!({"id": id, "session_id": session, "input": query,
                                   "started_at": at(start, *secs), "latency_ms": 800});
            if *id != "q1" {
                trace["output"] = json!(format!("an answer to {query:?}"));
            }
            trace
        })
        .collect();
    let (status, body) = server.post("/api/v1/traces", json!(traces)).await;
    assert_eq!(status, 200, "{body}");
    server
        .post(
            "/api/v1/signals",
            json!({"id": "copy-c1", "trace_id": "c1", "type": "copy"}),
        )
        .await;
    server.wait_until_indexed(TURNS.len()).await;

    // Past the abandonment timeout (30 min) and the allowance for long answers (10 min).
    clock.advance(SignedDuration::from_mins(45));
    let state = AppState::new(
        server.store.clone(),
        clock.clone(),
        quiet_jobs(),
        server.memory.clone(),
    );
    let mut scheduler = JobScheduler::default();
    let outcomes = scheduler.tick(&state, "test-replica", clock.now()).await;
    let derive = outcomes
        .iter()
        .find(|(job, _)| *job == Job::DeriveSignals)
        .unwrap();
    assert!(matches!(derive.1, TickOutcome::Ran { .. }), "{outcomes:?}");

    assert_eq!(
        derived_types(&feedback_of(&server, "r1").await),
        ["rephrase"]
    );
    assert_eq!(
        derived_types(&feedback_of(&server, "f1").await),
        Vec::<String>::new()
    );
    assert_eq!(
        derived_types(&feedback_of(&server, "f2").await),
        Vec::<String>::new()
    );
    assert_eq!(
        derived_types(&feedback_of(&server, "w1").await),
        ["frustration"]
    );
    assert_eq!(
        derived_types(&feedback_of(&server, "g1").await),
        ["regenerate"]
    );
    assert_eq!(
        derived_types(&feedback_of(&server, "a1").await),
        ["abandon"]
    );
    assert_eq!(
        derived_types(&feedback_of(&server, "c1").await),
        Vec::<String>::new()
    );
    assert_eq!(
        derived_types(&feedback_of(&server, "n1").await),
        Vec::<String>::new()
    );
    assert_eq!(
        derived_types(&feedback_of(&server, "q1").await),
        Vec::<String>::new()
    );

    // The evidence: the rule, both queries, the similarity (also the confidence).
    let rephrase = feedback_of(&server, "r1").await.remove(0);
    let evidence = &rephrase["signal"]["details"]["evidence"];
    assert_eq!(rephrase["signal"]["details"]["rule"], "rephrase");
    assert_eq!(evidence["query"], "How do I reset my password?");
    assert_eq!(
        evidence["follow_up"],
        "I forgot my password, how can I change it?"
    );
    assert_eq!(evidence["follow_up_trace_id"], "r2");
    let similarity = evidence["similarity"].as_f64().unwrap();
    assert!(similarity >= 0.55, "{rephrase}");
    assert_eq!(rephrase["confidence"].as_f64().unwrap(), similarity);
    let abandon = feedback_of(&server, "a1").await.remove(0);
    assert_eq!(abandon["confidence"], 0.3, "a weak signal: {abandon}");

    // Deterministic ids: running again stores nothing new.
    let first = num_automatic(&server).await;
    let again = state.signals.run(clock.now()).await.unwrap();
    assert_eq!(again.num_signals_stored, 0, "{again:?}");
    assert_eq!(num_automatic(&server).await, first);

    // Satisfaction follows: the rephrased answer is below zero, the copied one above.
    let (_, unhappy) = server
        .get("/api/v1/traces?satisfaction_below=0&limit=100")
        .await;
    let unhappy: Vec<&str> = unhappy["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    for id in ["r1", "w1", "g1", "a1"] {
        assert!(unhappy.contains(&id), "{id} in {unhappy:?}");
    }
    assert!(
        !unhappy.contains(&"c1") && !unhappy.contains(&"f1"),
        "{unhappy:?}"
    );
    let (_, happy) = server.get("/api/v1/traces?satisfaction_above=0").await;
    assert_eq!(happy["items"][0]["id"], "c1", "{happy}");

    // The session timeline shows the derived signal between the two queries.
    let (_, session) = server.get("/api/v1/sessions/s-rephrase").await;
    let events: Vec<(String, String)> = session["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_owned(),
                e["rule"]
                    .as_str()
                    .or(e["trace_id"].as_str())
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    assert_eq!(
        events[..3],
        [
            ("query".to_owned(), "r1".to_owned()),
            ("query".to_owned(), "r2".to_owned()),
            ("signal".to_owned(), "rephrase".to_owned()),
        ],
        "{session}"
    );

    // A stricter threshold, then a recompute of that rule only: the rephrase goes, the rest stay.
    let (status, _) = server
        .put(
            "/api/v1/signals/settings",
            json!({"rules": {"rephrase_min_similarity": 0.99}}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, report) = server
        .post("/api/v1/signals/recompute", json!({"rules": ["rephrase"]}))
        .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["num_signals_removed"], 1, "{report}");
    assert_eq!(
        derived_types(&feedback_of(&server, "r1").await),
        Vec::<String>::new()
    );
    assert_eq!(
        derived_types(&feedback_of(&server, "w1").await),
        ["frustration"]
    );
    assert_eq!(
        derived_types(&feedback_of(&server, "a1").await),
        ["abandon"]
    );
    let (_, chain) = server.get("/api/v1/traces/r1").await;
    assert!(chain.get("satisfaction").is_none(), "{chain}");
    let (_, unhappy) = server
        .get("/api/v1/traces?satisfaction_below=0&limit=100")
        .await;
    assert!(
        !unhappy["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == "r1"),
        "the stored estimate went with the signal: {unhappy}"
    );
}

/// Lesson proposals weigh all of a trace's feedback: a corrected answer that the user copied
/// anyway (with copies weighing 10 here) is not a mistake to learn from; one only corrected is.
#[tokio::test]
async fn lesson_proposals_leave_out_traces_satisfied_all_told() {
    let clock = Arc::new(ManualClock::new(start_time()));
    let server =
        TestServer::start_with_clock(clock.clone(), quiet_jobs(), hash_embedder().await).await;
    let (status, body) = server
        .put(
            "/api/v1/signals/settings",
            json!({"types": {"copy": {"polarity": "positive", "weight": 10}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Proposals wait until the estimates are folded, so that the server's own job tick (at
    // start, asynchronous) cannot propose before them.
    let loop_settings = |enabled: bool| {
        let server = &server;
        async move {
            let (status, body) = server
                .put(
                    "/api/v1/loop/settings",
                    json!({"proposals": {"enabled": enabled}}),
                )
                .await;
            assert_eq!(status, 200, "{body}");
        }
    };
    loop_settings(false).await;
    let mut traces = Vec::new();
    let mut feedback = Vec::new();
    for i in 0..3 {
        for (group, query) in [
            ("copied", "how do I cancel my order"),
            ("corrected", "where is my refund"),
        ] {
            let id = format!("{group}-{i}");
            traces.push(json!({"id": id, "input": query, "output": "an answer"}));
            feedback.push(json!({"id": format!("fix-{id}"), "trace_id": id,
                                 "correction": {"text": "the right answer"}}));
            if group == "copied" {
                feedback.push(json!({"id": format!("copy-{id}"), "trace_id": id,
                                     "signal": {"type": "copy"}}));
            }
        }
    }
    let (status, body) = server
        .post(
            "/api/v1/ingest",
            json!({"traces": traces, "feedback": feedback}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.wait_until_indexed(6).await;
    let state = AppState::new(
        server.store.clone(),
        clock.clone(),
        quiet_jobs(),
        server.memory.clone(),
    );
    state.signals.run(clock.now()).await.unwrap();
    loop_settings(true).await;

    let (status, proposed) = server.post("/api/v1/lessons/propose", json!({})).await;
    assert_eq!(status, 200, "{proposed}");
    let (_, listed) = server.get("/api/v1/lessons").await;
    let lessons = listed["lessons"].as_array().unwrap();
    assert_eq!(lessons.len(), 1, "{listed}");
    let mut ids: Vec<&str> = lessons[0]["provenance"]["feedback_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        ["fix-corrected-0", "fix-corrected-1", "fix-corrected-2"]
    );
}
