//! The web UI in a real browser: headless Chromium (Debian's, driven by Playwright from
//! `tests/python/ui_reviewer.py`) against the real server with the real embedding model. The
//! data is seeded through the API; a reviewer then signs in, checks the dashboard's charts
//! against the API, filters the trace explorer and opens a trace's chain, reserves a review item,
//! annotates a text range of its output, writes a correction, adds the case to a new dataset,
//! promotes it to a lesson and approves the lesson. This side then checks through the API that
//! exactly that was stored. The script also takes the screenshots of `docs/screenshots/`.

#![allow(clippy::unwrap_used)] // test code

mod common;

use feedloop_core::clock::{Clock, SystemClock};
use feedloop_server::ServerConfig;
use feedloop_store::access::NewUser;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

use common::python::run_script;
use common::{TestServer, minilm};

const QUEUE: &str = "triage";
const REVIEWER: &str = "rita@example.com";
const PASSWORD: &str = "a long enough password";

/// Three topics of user questions, so that problems cluster by meaning.
const TOPICS: [(&str, [&str; 4]); 3] = [
    (
        "cards",
        [
            "My card was declined at the supermarket",
            "Why was my card payment declined?",
            "The shop declined my card again",
            "Card declined when paying online",
        ],
    ),
    (
        "transfers",
        [
            "My transfer to a friend has not arrived",
            "The transfer I sent yesterday has not arrived",
            "Why hasn't my transfer arrived yet?",
            "Where is my bank transfer?",
        ],
    ),
    (
        "passwords",
        [
            "How do I reset my password?",
            "I forgot my password and cannot log in",
            "Password reset link does not work",
            "Change my login password",
        ],
    ),
];

/// An output with a character outside the Basic Multilingual Plane (𝑓, U+1D453) before the part
/// a reviewer marks, so that a UTF-16 offset (the browser's) and a character offset (the API's)
/// differ.
fn output_for(topic: &str, n: usize) -> String {
    format!(
        "Thanks for asking about {topic} (case {n}): the fee is 𝑓 = 0 €. Please wait 3 business \
         days and contact support if nothing changes."
    )
}

/// 48 traces over the last 8 days: two model versions, two prompt versions, sessions of
/// four, with ratings, categories, comments and implicit signals; the older model version and
/// prompt draw more negative feedback.
async fn seed(server: &TestServer) -> Vec<String> {
    // An active lesson on declined cards, injected into the card questions' prompts (a third
    // held out), so that the dashboard has an effect to show.
    let (status, body) = server
        .put(
            "/api/v1/loop/settings",
            json!({"holdout_fraction": 0.3, "holdout_seed": 7}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post(
            "/api/v1/lessons",
            json!({"id": "ls-declined", "title": "Explain why a card is declined",
                   "trigger": {"examples": ["my card was declined"]},
                   "action": {"instruction": "Name the usual reasons a payment is declined."},
                   "status": "active"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let now = SystemClock.now().as_second();
    let mut traces = Vec::new();
    let mut feedback = Vec::new();
    let mut negative = Vec::new();
    for round in 0..4 {
        for (t, (topic, queries)) in TOPICS.iter().enumerate() {
            for (q, query) in queries.iter().enumerate() {
                let n = round * 12 + t * 4 + q;
                let id = format!("tr-{topic}-{n}");
                let old = n % 2 == 0;
                let started = now - 8 * 86_400 + (n as i64) * 4 * 3_600;
                let at = |offset: i64| {
                    jiff::Timestamp::from_second(started + offset)
                        .unwrap()
                        .to_string()
                };
                let mut metadata = json!({});
                if *topic == "cards" {
                    let (status, answer) = server
                        .post("/api/v1/context", json!({"query": query, "trace_id": id}))
                        .await;
                    assert_eq!(status, 200, "{answer}");
                    metadata = json!({"feedloop.injection_id": answer["injection_id"]});
                }
                traces.push(json!({
                    "id": id,
                    "session_id": format!("sess-{}", n / 4),
                    "user_id": format!("user-{}", n % 7),
                    "user_role": if n % 3 == 0 { "admin" } else { "customer" },
                    "environment": "prod",
                    "input": query,
                    "output": output_for(topic, n),
                    "context": {
                        "system_prompt": "You are the bank's support assistant.",
                        "prompt": {"name": "support", "version": if old { "v1" } else { "v2" },
                                   "template": "Answer the customer: {{question}}",
                                   "variables": {"question": query}},
                        "documents": [{"id": format!("kb-{topic}"), "title": format!("{topic} FAQ"),
                                       "content": format!("Everything about {topic}."), "score": 0.82}]
                    },
                    "model": {"name": "gpt-4o-mini", "provider": "openai",
                              "version": if old { "2024-07-18" } else { "2024-11-20" }},
                    "latency_ms": 420 + n * 7,
                    "usage": {"input_tokens": 120, "output_tokens": 40},
                    "tags": [topic],
                    "metadata": metadata,
                    "started_at": at(0),
                }));
                let bad = if old { n % 4 != 2 } else { n % 6 == 1 };
                let rating = if bad { 0 } else { 1 };
                feedback.push(
                    json!({"id": format!("fb-r-{n}"), "trace_id": id, "source": "end_user",
                    "rating": {"value": rating}, "created_at": at(60)}),
                );
                if bad {
                    negative.push(id.clone());
                    feedback.push(
                        json!({"id": format!("fb-c-{n}"), "trace_id": id, "source": "end_user",
                        "categories": [if t == 1 { "outdated" } else { "incomplete" }],
                        "created_at": at(90)}),
                    );
                    feedback.push(
                        json!({"id": format!("fb-m-{n}"), "trace_id": id, "source": "end_user",
                        "comment": "it did not answer my question", "created_at": at(100)}),
                    );
                }
                let signal = if bad {
                    ["regenerate", "abandon", "rephrase"][n % 3]
                } else {
                    "copy"
                };
                feedback.push(
                    json!({"id": format!("fb-s-{n}"), "trace_id": id, "source": "end_user",
                    "signal": {"type": signal}, "created_at": at(120)}),
                );
            }
        }
    }
    let (status, body) = server
        .post("/api/v1/traces", Value::Array(traces.clone()))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post("/api/v1/feedback", Value::Array(feedback))
        .await;
    assert_eq!(status, 200, "{body}");
    server.wait_until_indexed(traces.len()).await;
    let (status, body) = server.post("/api/v1/clusters/refresh", json!({})).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server
        .post(
            "/api/v1/queues",
            json!({"name": QUEUE, "description": "Negative feedback to triage"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .post(
            &format!("/api/v1/queues/{QUEUE}/items"),
            json!({"trace_ids": negative, "author": "seed"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    negative
}

/// An account with the reviewer role in the default project (the account through the store,
/// as `feedloop users add` makes it; the membership through the API, as an admin adds it).
async fn reviewer(server: &TestServer) {
    server
        .store
        .create_user(
            NewUser {
                email: REVIEWER.into(),
                password_hash: feedloop_server::access::password::hash_password(PASSWORD).unwrap(),
                is_admin: false,
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
    let (status, body) = server
        .post(
            "/api/v1/members",
            json!({"email": REVIEWER, "role": "reviewer"}),
        )
        .await;
    assert!(status.is_success(), "{status} {body}");
}

fn chars(text: &str, start: u64, end: u64) -> String {
    text.chars()
        .skip(start as usize)
        .take((end - start) as usize)
        .collect()
}

#[tokio::test]
async fn a_reviewer_annotates_corrects_and_promotes_a_case_to_an_active_lesson() {
    let config = ServerConfig {
        // The test refreshes clusters itself; background jobs would only add noise.
        job_tick_interval: Duration::from_secs(3_600),
        ..ServerConfig::default()
    };
    let server = TestServer::start_with_clock(Arc::new(SystemClock), config, minilm().await).await;
    let negative = seed(&server).await;
    reviewer(&server).await;

    let chromium =
        std::env::var("FEEDLOOP_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    // http://localhost is a secure context, so the session cookie (Secure) works without TLS.
    let base = server.base.replace("127.0.0.1", "localhost");
    let seen = run_script(
        "ui_reviewer.py",
        &[&base, REVIEWER, PASSWORD, QUEUE],
        vec![("FEEDLOOP_TEST_CHROMIUM", chromium)],
    )
    .await;
    eprintln!("{seen:#}");

    // The dashboard drew what the API counts.
    let dashboard = &seen["dashboard"];
    assert_eq!(dashboard["volume_marks_total"], dashboard["api_feedback"]);
    assert!(
        dashboard["volume_marks"].as_u64().unwrap() >= 8,
        "{dashboard}"
    );
    assert_eq!(
        dashboard["negative_marks"],
        dashboard["api_buckets_with_traces"]
    );
    assert_eq!(
        dashboard["model_series"],
        json!(["2024-07-18", "2024-11-20"])
    );
    assert_eq!(dashboard["prompt_series"], json!(["v1", "v2"]));
    assert_eq!(dashboard["signal_marks_total"], dashboard["api_signals"]);
    assert!(
        dashboard["cluster_marks"].as_u64().unwrap() >= 1,
        "{dashboard}"
    );
    assert_eq!(dashboard["backlog_pending"], negative.len());
    // The explorer listed what the API lists, with and without a filter.
    let explorer = &seen["explorer"];
    assert_eq!(explorer["rows"], 48);
    assert_eq!(explorer["filtered_rows"], explorer["api_filtered"]);
    assert!(explorer["filtered_rows"].as_u64().unwrap() > 0);
    assert!(explorer["filtered_rows"].as_u64().unwrap() < 48);

    // The annotation is stored with the exact range the reviewer selected.
    let trace_id = seen["review"]["trace_id"].as_str().unwrap();
    assert!(negative.iter().any(|id| id == trace_id), "{trace_id}");
    let (status, chain) = server.get(&format!("/api/v1/traces/{trace_id}")).await;
    assert_eq!(status, 200, "{chain}");
    let output = chain["trace"]["output"].as_str().unwrap();
    let quote = seen["review"]["quote"].as_str().unwrap();
    let start = output[..output.find(quote).unwrap()].chars().count() as u64;
    let end = start + quote.chars().count() as u64;
    let feedback = chain["feedback"].as_array().unwrap();
    let annotation = feedback
        .iter()
        .find(|f| f["kind"] == "annotation")
        .unwrap_or_else(|| panic!("an annotation: {chain:#}"));
    assert_eq!(annotation["source"], "reviewer");
    assert_eq!(annotation["author"], REVIEWER);
    let range = &annotation["annotation"];
    assert_eq!(
        (range["start"].as_u64(), range["end"].as_u64()),
        (Some(start), Some(end))
    );
    assert_eq!(range["quote"], quote);
    assert_eq!(chars(output, start, end), quote);
    assert_eq!(range["comment"], "Three days is wrong: it takes one.");
    assert_eq!(range["tags"], json!(["wrong_fact", "timing"]));
    // The correction is stored as written.
    let correction = feedback
        .iter()
        .find(|f| f["kind"] == "correction")
        .unwrap_or_else(|| panic!("a correction: {chain:#}"));
    assert_eq!(
        correction["correction"]["text"],
        seen["review"]["correction"]
    );
    assert_eq!(correction["author"], REVIEWER);
    // The promoted lesson was approved in the browser: it is active, approved by the reviewer,
    // and made from this trace.
    let lesson_id = seen["lesson"]["id"].as_str().unwrap();
    let (status, lesson) = server.get(&format!("/api/v1/lessons/{lesson_id}")).await;
    assert_eq!(status, 200, "{lesson}");
    assert_eq!(lesson["status"], "active", "{lesson:#}");
    // (A person acting through a session is recorded by their account id.)
    let (_, members) = server.get("/api/v1/members").await;
    let reviewer_id = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == REVIEWER)
        .unwrap()["user_id"]
        .clone();
    assert_eq!(
        lesson["provenance"]["approved_by"],
        format!("user {reviewer_id}")
    );
    assert!(
        lesson["provenance"]["trace_ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|id| id == trace_id),
        "{lesson:#}"
    );
    // The dataset the reviewer made holds the case, with the correction as its ideal output.
    assert_eq!(seen["datasets"]["rows"], 1);
    let (status, items) = server.get("/api/v1/datasets/reviewed_cases/items").await;
    assert_eq!(status, 200, "{items}");
    assert_eq!(items["items"].as_array().unwrap().len(), 1, "{items:#}");
    assert_eq!(
        items["items"][0]["ideal_output"],
        seen["review"]["correction"]
    );
    // The item's history holds the reviewer's actions in order.
    let item = seen["review"]["item_id"].as_i64().unwrap();
    let (status, history) = server
        .get(&format!("/api/v1/queues/{QUEUE}/items/{item}/history"))
        .await;
    assert_eq!(status, 200, "{history}");
    let actions: Vec<&str> = history["events"]
        .as_array()
        .unwrap_or_else(|| panic!("{history:#}"))
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "enqueued",
            "reserve",
            "annotate",
            "correct",
            "add_to_dataset",
            "promote"
        ],
        "{history:#}"
    );
}
