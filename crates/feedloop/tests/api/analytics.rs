//! Analytics through the API: the feedback aggregation against hand counts, comparisons, the
//! regression detector on a planted regression and on noise, webhooks against a loopback
//! receiver (signature, retries with backoff, the delivery log, giving up), `lesson_proposed`
//! events, and `/metrics` read by a Prometheus text parser. Time is passed to the jobs, never
//! slept.

use axum::http::{HeaderMap, StatusCode};
use feedloop_core::Timestamp;
use feedloop_core::clock::{Clock, SystemClock};
use feedloop_core::events::{Event, EventType};
use feedloop_server::analytics::AnalyticsConfig;
use feedloop_server::analytics::webhooks::{SIGNATURE_HEADER, deliver_due, signature};
use feedloop_server::{AppState, ServerConfig};
use jiff::SignedDuration;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{TestServer, assert_error};

/// The server's own job runner ticks once at start and then rarely: the tests run the jobs.
fn quiet_jobs() -> ServerConfig {
    ServerConfig {
        job_tick_interval: Duration::from_secs(3_600),
        ..ServerConfig::default()
    }
}

/// An app state over the test server's store, with these analytics settings: what the jobs
/// run with.
fn state_with(server: &TestServer, analytics: AnalyticsConfig) -> AppState {
    AppState::new(
        server.store.clone(),
        Arc::new(SystemClock),
        ServerConfig {
            analytics,
            ..quiet_jobs()
        },
        server.memory.clone(),
    )
}

async fn project_of(server: &TestServer) -> feedloop_core::ProjectId {
    let (_, project) = server.get("/api/v1/project").await;
    feedloop_core::ProjectId(project["id"].as_i64().unwrap())
}

#[tokio::test]
async fn feedback_aggregation_matches_hand_counts() {
    let server = TestServer::start().await;
    let (status, body) = server
        .post(
            "/api/v1/ingest",
            json!({
                "traces": [
                    {"id": "t1", "model": {"name": "gpt", "version": "1"}, "started_at": "2026-01-01T01:00:00Z"},
                    {"id": "t2", "model": {"name": "gpt", "version": "2"}, "started_at": "2026-01-01T02:00:00Z"},
                    {"id": "t3", "model": {"name": "claude", "version": "a"}, "started_at": "2026-01-02T01:00:00Z"}
                ],
                "feedback": [
                    {"id": "f1", "trace_id": "t1", "rating": {"value": 0}, "created_at": "2026-01-01T01:01:00Z"},
                    {"id": "f2", "trace_id": "t1", "categories": ["too_vague"], "created_at": "2026-01-01T01:02:00Z"},
                    {"id": "f3", "trace_id": "t2", "rating": {"value": 1}, "created_at": "2026-01-01T02:01:00Z"},
                    {"id": "f4", "trace_id": "t3", "signal": {"type": "regenerate"}, "created_at": "2026-01-02T01:01:00Z"},
                    {"id": "f5", "trace_id": "t3", "rating": {"value": 1}, "created_at": "2026-01-02T01:02:00Z"},
                    {"id": "f6", "trace_id": "t1", "rating": {"value": 0}, "created_at": "2026-01-03T00:00:00Z"}
                ]
            }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, answer) = server
        .get("/api/v1/analytics/feedback?from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z&bucket=day&group_by=model")
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["group_by"], "model");
    let buckets = answer["buckets"].as_array().unwrap();
    let shape: Vec<(&str, &str, u64, u64, u64)> = buckets
        .iter()
        .map(|b| {
            (
                b["start"].as_str().unwrap(),
                b["group"].as_str().unwrap(),
                b["feedback"].as_u64().unwrap(),
                b["traces"].as_u64().unwrap(),
                b["negative_traces"]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("2026-01-01T00:00:00Z", "gpt", 3, 2, 1),
            ("2026-01-02T00:00:00Z", "claude", 2, 1, 1),
        ]
    );
    let gpt = &buckets[0];
    // 1 of 2 traces: Wilson 95 % interval 0.0945..0.9055 (z = 1.96).
    let rate = &gpt["negative_traces"]["rate"];
    assert_eq!(rate["rate"], 0.5);
    assert!(
        (rate["low"].as_f64().unwrap() - 0.0945).abs() < 1e-4,
        "{rate}"
    );
    assert!(
        (rate["high"].as_f64().unwrap() - 0.9055).abs() < 1e-4,
        "{rate}"
    );
    assert_eq!(gpt["kinds"]["rating"]["count"], 2);
    assert_eq!(gpt["categories"]["too_vague"]["count"], 1);
    assert_eq!(gpt["ratings"]["positive"], 1);
    assert_eq!(gpt["ratings"]["negative"], 1);
    assert_eq!(buckets[1]["signals"]["regenerate"]["count"], 1);

    // The days are long closed: asked again, they come from stored buckets, and agree with a
    // count from the records; late feedback on an old day changes the stored answer. (The
    // server's signals job may set satisfaction estimates meanwhile: compared without them.)
    let without_satisfaction = |mut answer: Value| {
        for bucket in answer["buckets"].as_array_mut().unwrap() {
            bucket.as_object_mut().unwrap().remove("satisfaction");
        }
        answer
    };
    let path = "/api/v1/analytics/feedback?from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z&bucket=day&group_by=model";
    let answer = without_satisfaction(answer);
    assert_eq!(without_satisfaction(server.get(path).await.1), answer);
    let fresh = format!("{path}&fresh=true");
    assert_eq!(without_satisfaction(server.get(&fresh).await.1), answer);
    let (status, body) = server
        .post(
            "/api/v1/feedback",
            json!({"id": "late", "trace_id": "t2", "rating": {"value": 0}, "created_at": "2026-01-01T03:00:00Z"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let after = without_satisfaction(server.get(path).await.1);
    assert_eq!(after["buckets"][0]["feedback"], 4, "{after}");
    assert_eq!(
        after["buckets"][0]["negative_traces"]["count"], 2,
        "{after}"
    );
    assert_eq!(without_satisfaction(server.get(&fresh).await.1), after);
    assert_error(
        &server.get(&format!("{path}&fresh=maybe")).await,
        400,
        "invalid_query",
        Some("fresh"),
    );

    assert_error(
        &server
            .get("/api/v1/analytics/feedback?to=2026-01-03T00:00:00Z")
            .await,
        400,
        "invalid_query",
        Some("from"),
    );
    assert_error(
        &server
            .get("/api/v1/analytics/feedback?from=2026-01-01T00:00:00Z&to=2026-01-03T00:00:00Z&group_by=colour")
            .await,
        400,
        "invalid_query",
        Some("group_by"),
    );
    assert_error(
        &server
            .get("/api/v1/analytics/feedback?from=2026-01-01T00:00:00Z&to=2027-01-03T00:00:00Z&bucket=hour")
            .await,
        400,
        "invalid_query",
        Some("bucket"),
    );
}

/// Ingests `n` traces of a model version starting at `start` (one a second), the ones `rng`
/// picks with probability `negative_rate` with a thumbs down.
async fn traffic(
    server: &TestServer,
    model: &str,
    version: &str,
    n: usize,
    negative_rate: f64,
    start: Timestamp,
    rng: &mut rand::rngs::StdRng,
) {
    let mut traces = Vec::new();
    let mut feedback = Vec::new();
    for i in 0..n {
        let id = format!("{model}-{version}-{i}");
        let started = start
            .saturating_add(SignedDuration::from_secs(i as i64))
            .unwrap();
        traces.push(
            json!({"id": id, "model": {"name": model, "version": version},
                           "started_at": started.to_string(), "input": "q", "output": "a"}),
        );
        if rng.random::<f64>() < negative_rate {
            feedback.push(json!({"trace_id": id, "rating": {"value": 0}}));
        }
    }
    let (status, body) = server
        .post(
            "/api/v1/ingest",
            json!({"traces": traces, "feedback": feedback}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_planted_regression_is_flagged_and_noise_is_not() {
    // The server's own detector never fires, so only the runs below can raise the alert.
    let server = TestServer::start_with(ServerConfig {
        analytics: AnalyticsConfig {
            regression_min_traces: u64::MAX,
            spike_min_traces: u64::MAX,
            ..AnalyticsConfig::default()
        },
        ..quiet_jobs()
    })
    .await;
    let project = project_of(&server).await;
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap();
    let days_ago = |days: i64| {
        now.saturating_sub(SignedDuration::from_hours(24 * days))
            .unwrap()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(77);
    // Planted: 10 % negative on version 1, then 25 % on version 2.
    traffic(&server, "gpt", "1", 400, 0.10, days_ago(3), &mut rng).await;
    traffic(&server, "gpt", "2", 400, 0.25, days_ago(1), &mut rng).await;
    // Noise: the same 15 % on both versions.
    traffic(&server, "llama", "1", 400, 0.15, days_ago(3), &mut rng).await;
    traffic(&server, "llama", "2", 400, 0.15, days_ago(1), &mut rng).await;

    let state = state_with(&server, AnalyticsConfig::default());
    let alerts = feedloop_server::analytics::detect::detect_regressions(&state, project, now)
        .await
        .unwrap();
    let keys: Vec<&str> = alerts.iter().map(|a| a.dedupe_key.as_str()).collect();
    assert_eq!(keys, ["regression:model:gpt:1->2"]);
    let comparison = &alerts[0].evidence["comparison"];
    assert_eq!(comparison["verdict"], "worse");
    assert!(
        comparison["p_value"].as_f64().unwrap() < 0.01,
        "{comparison}"
    );
    assert_eq!(comparison["a"]["num_traces"], 400);
    assert!(comparison["b"]["negative_rate"]["low"].as_f64().is_some());
    // Found once: a later run raises nothing new.
    let again = feedloop_server::analytics::detect::detect_regressions(&state, project, now)
        .await
        .unwrap();
    assert!(again.is_empty());
    let (status, listed) = server.get("/api/v1/analytics/alerts").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(listed["alerts"][0]["kind"], "regression");

    // The same comparison by hand, through the API.
    let (status, compared) = server
        .post(
            "/api/v1/analytics/compare",
            json!({"a": {"model": "llama", "model_version": "1"},
                   "b": {"model": "llama", "model_version": "2"}}),
        )
        .await;
    assert_eq!(status, 200, "{compared}");
    assert_eq!(
        compared["verdict"], "no_significant_difference",
        "{compared}"
    );
    assert_eq!(compared["b"]["num_traces"], 400);
    assert_error(
        &server
            .post(
                "/api/v1/analytics/compare",
                json!({"a": {}, "b": {}, "alpha": 2}),
            )
            .await,
        422,
        "invalid_value",
        Some("alpha"),
    );
}

/// What the loopback receiver saw: headers and body of each request.
type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A receiver on 127.0.0.1:0 that answers each request with the next status of `statuses`
/// (the last one repeats).
async fn receiver(statuses: Vec<u16>) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let statuses = Arc::new(Mutex::new(statuses));
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post({
            let seen = seen.clone();
            move |headers: HeaderMap, body: String| async move {
                seen.lock().unwrap().push((headers, body));
                let mut statuses = statuses.lock().unwrap();
                let status = if statuses.len() > 1 {
                    statuses.remove(0)
                } else {
                    statuses[0]
                };
                StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

#[tokio::test]
async fn webhooks_are_signed_retried_with_backoff_logged_and_given_up() {
    let server = TestServer::start_with(quiet_jobs()).await;
    let project = project_of(&server).await;
    let (flaky_url, flaky_seen) = receiver(vec![500, 503, 200]).await;
    let (dead_url, dead_seen) = receiver(vec![500]).await;
    let (status, flaky) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": flaky_url, "event_types": ["regression", "lesson_proposed"]}),
        )
        .await;
    assert_eq!(status, 201, "{flaky}");
    let secret = flaky["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let (status, dead) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": dead_url, "event_types": ["regression"], "secret": "a-secret-of-16-chars"}),
        )
        .await;
    assert_eq!(status, 201, "{dead}");
    let (_, listed) = server.get("/api/v1/webhooks").await;
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 2);
    assert!(listed["webhooks"][0].get("secret").is_none(), "{listed}");
    assert_error(
        &server
            .post(
                "/api/v1/webhooks",
                json!({"url": "ftp://x", "event_types": ["regression"]}),
            )
            .await,
        422,
        "invalid_value",
        Some("url"),
    );

    let config = AnalyticsConfig {
        webhook_max_attempts: 3,
        webhook_base_delay: SignedDuration::from_secs(10),
        webhook_max_delay: SignedDuration::from_secs(60),
        ..AnalyticsConfig::default()
    };
    let state = state_with(&server, config);
    let t0 = Timestamp::from_second(1_800_000_000).unwrap();
    let event = Event::new(EventType::Regression, json!({"p_value": 0.001}), t0);
    let queued = feedloop_server::events::emit(server.store.as_ref(), project, event)
        .await
        .unwrap();
    assert_eq!(queued, 2);
    let later = |secs: i64| t0.saturating_add(SignedDuration::from_secs(secs)).unwrap();

    // Attempt 1 fails at both; the next is due 5..10 s later (10 s with jitter).
    let report = deliver_due(&state, t0).await.unwrap();
    assert_eq!((report.num_delivered, report.num_retrying), (0, 2));
    assert_eq!(deliver_due(&state, later(4)).await.unwrap().num_retrying, 0);
    assert_eq!(flaky_seen.lock().unwrap().len(), 1);
    // Attempt 2 (503, 10..20 s later), attempt 3: the flaky one delivers, the dead one is given up.
    assert_eq!(
        deliver_due(&state, later(10)).await.unwrap().num_retrying,
        2
    );
    let report = deliver_due(&state, later(40)).await.unwrap();
    assert_eq!((report.num_delivered, report.num_given_up), (1, 1));
    assert_eq!(
        deliver_due(&state, later(10_000)).await.unwrap(),
        Default::default()
    );
    assert_eq!(flaky_seen.lock().unwrap().len(), 3);
    assert_eq!(dead_seen.lock().unwrap().len(), 3);

    // Every request carries a signature of its own time and body under the endpoint's secret.
    for (headers, body) in flaky_seen.lock().unwrap().iter() {
        let header = headers[SIGNATURE_HEADER].to_str().unwrap();
        let t: i64 = header
            .strip_prefix("t=")
            .and_then(|rest| rest.split(',').next())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(header, signature(&secret, t, body));
        assert_ne!(header, signature("another-secret-entirely", t, body));
        let payload: Value = serde_json::from_str(body).unwrap();
        assert_eq!(payload["type"], "regression");
        assert_eq!(payload["project"], project.0);
        assert_eq!(payload["data"]["p_value"], 0.001);
        assert!(payload["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(
            headers["x-feedloop-event-id"],
            payload["id"].as_str().unwrap()
        );
    }

    let (status, log) = server
        .get(&format!(
            "/api/v1/webhooks/deliveries?webhook_id={}",
            flaky["id"]
        ))
        .await;
    assert_eq!(status, 200, "{log}");
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["status"], "delivered");
    let codes: Vec<u64> = delivery["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status_code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes, [500, 503, 200]);
    assert!(delivery["attempts"][0]["error"].as_str().is_some());
    assert!(delivery["attempts"][2].get("error").is_none());
    let (_, log) = server
        .get(&format!(
            "/api/v1/webhooks/deliveries?webhook_id={}",
            dead["id"]
        ))
        .await;
    assert_eq!(log["deliveries"][0]["status"], "failed");
    assert_eq!(
        log["deliveries"][0]["attempts"].as_array().unwrap().len(),
        3
    );
    assert!(log["deliveries"][0].get("next_attempt_at").is_none());

    let (status, _) = server
        .delete(&format!("/api/v1/webhooks/{}", dead["id"]))
        .await;
    assert_eq!(status, 204);
    assert_error(
        &server
            .delete(&format!("/api/v1/webhooks/{}", dead["id"]))
            .await,
        404,
        "webhook_not_found",
        None,
    );
}

#[tokio::test]
async fn proposed_lessons_are_announced() {
    let server = TestServer::start_with(quiet_jobs()).await;
    let (status, hook) = server
        .post(
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "event_types": ["lesson_proposed"]}),
        )
        .await;
    assert_eq!(status, 201, "{hook}");
    let (status, _) = server
        .put(
            "/api/v1/loop/settings",
            json!({"proposals": {"min_feedback": 2, "similarity": 0.9}}),
        )
        .await;
    assert_eq!(status, 200);
    let traces: Vec<Value> = (0..3)
        .map(|i| json!({"id": format!("tr-{i}"), "input": "when does my card arrive"}))
        .collect();
    let feedback: Vec<Value> = (0..3)
        .map(|i| json!({"trace_id": format!("tr-{i}"), "correction": {"text": "Within 5 days."}}))
        .collect();
    let (status, body) = server
        .post(
            "/api/v1/ingest",
            json!({"traces": traces, "feedback": feedback}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.wait_until_indexed(0).await;
    // The server's first job tick may propose it before this call does; both announce it.
    let (status, proposed) = server.post("/api/v1/lessons/propose", json!({})).await;
    assert_eq!(status, 200, "{proposed}");
    let (_, listed) = server.get("/api/v1/lessons").await;
    assert_eq!(listed["lessons"].as_array().unwrap().len(), 1, "{listed}");
    let id = listed["lessons"][0]["id"].as_str().unwrap().to_owned();
    let (_, log) = server.get("/api/v1/webhooks/deliveries").await;
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{log}");
    assert_eq!(deliveries[0]["event_type"], "lesson_proposed");
    assert_eq!(deliveries[0]["status"], "pending");
    // Pending, or already tried once by the server's first tick and waiting for a retry.
    let tomorrow = SystemClock
        .now()
        .saturating_add(SignedDuration::from_hours(24))
        .unwrap();
    // On PostgreSQL a claim skips rows locked by the server's own delivery run, if one is
    // under way: try again until it ends.
    let mut due = Vec::new();
    for _ in 0..100 {
        due = server
            .store
            .claim_due_deliveries(tomorrow, tomorrow, 10)
            .await
            .unwrap();
        if !due.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(due.len(), 1, "the delivery is claimable");
    let payload: Value = serde_json::from_str(&due[0].payload).unwrap();
    assert_eq!(payload["data"]["lesson_id"], id);
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_with_the_expected_series() {
    let server = TestServer::start().await;
    let (status, _) = server
        .post(
            "/api/v1/traces",
            json!([{"id": "m1", "spans": [{"id": "s1", "name": "llm"}]}, {"id": "m2"}]),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = server
        .post(
            "/api/v1/feedback",
            json!({"trace_id": "m1", "rating": {"value": 1}}),
        )
        .await;
    assert_eq!(status, 200);
    // A review queue with one item by hand, for the queue-size series.
    let (status, body) = server
        .post("/api/v1/queues", json!({"name": "triage"}))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = server
        .post(
            "/api/v1/queues/triage/items",
            json!({"trace_ids": ["m1"], "author": "lead"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server.get("/api/v1/traces").await;
    server.get("/api/v1/no-such-route").await;
    let text = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .unwrap_or_else(|e| panic!("not prometheus text ({e}):\n{text}"));
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.last().map_or(0.0, |b| b.count)
                }
                prometheus_parse::Value::Summary(_) => f64::NAN,
            })
    };
    let ingested = |item: &str| {
        value(
            "feedloop_ingested_items_total",
            &[("route", "/api/v1/traces"), ("item", item)],
        )
    };
    assert_eq!(ingested("traces"), Some(2.0), "{text}");
    assert_eq!(ingested("spans"), Some(1.0), "{text}");
    assert_eq!(
        value(
            "feedloop_ingested_items_total",
            &[("route", "/api/v1/feedback"), ("item", "feedback")]
        ),
        Some(1.0),
        "{text}"
    );
    // The request histogram: one POST of traces answered 2xx, one unmatched 4xx.
    let count = value(
        "feedloop_http_request_duration_seconds",
        &[
            ("route", "/api/v1/traces"),
            ("method", "POST"),
            ("status", "2xx"),
        ],
    );
    assert_eq!(count, Some(1.0), "{text}");
    assert!(
        value(
            "feedloop_http_request_duration_seconds",
            &[("route", "unmatched"), ("status", "4xx")]
        )
        .is_some(),
        "{text}"
    );
    assert!(value("feedloop_embedding_backlog", &[]).is_some(), "{text}");
    // Every job runs once (in a period of its own, later than the server's first tick).
    let state = state_with(&server, AnalyticsConfig::default());
    let tomorrow = SystemClock
        .now()
        .saturating_add(SignedDuration::from_hours(24))
        .unwrap();
    feedloop_server::jobs::JobScheduler::default()
        .tick(&state, "test-replica", tomorrow)
        .await;
    let text = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let value = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => *v,
                _ => f64::NAN,
            })
    };
    for job in ["derive_signals", "detect_anomalies", "deliver_webhooks"] {
        let lag = value("feedloop_job_seconds_since_last_run", &[("job", job)]);
        assert!(lag.is_some_and(|lag| lag >= 0.0), "{job}: {text}");
    }
    assert_eq!(
        value("feedloop_webhook_deliveries", &[("status", "failed")]),
        Some(0.0)
    );
    assert_eq!(
        value("feedloop_webhook_failed_attempts_total", &[]),
        Some(0.0)
    );
    assert!(
        value("feedloop_analytics_stored_buckets", &[]).is_some_and(|n| n >= 0.0),
        "{text}"
    );
    assert_eq!(
        value(
            "feedloop_review_queue_items",
            &[
                ("project", "default"),
                ("queue", "triage"),
                ("state", "pending")
            ]
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn a_negative_spike_is_flagged_once_and_a_steady_rate_is_not() {
    let server = TestServer::start_with(ServerConfig {
        analytics: AnalyticsConfig {
            spike_min_traces: u64::MAX,
            ..AnalyticsConfig::default()
        },
        ..quiet_jobs()
    })
    .await;
    let project = project_of(&server).await;
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap();
    let ago = |secs: i64| now.saturating_sub(SignedDuration::from_secs(secs)).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    // The baseline day at 10 %, then a first hour at the same rate: nothing to report.
    traffic(&server, "gpt", "1", 600, 0.10, ago(20 * 3_600), &mut rng).await;
    let earlier = ago(3 * 3_600);
    traffic(
        &server,
        "gpt",
        "1b",
        150,
        0.10,
        earlier
            .saturating_sub(SignedDuration::from_secs(1_800))
            .unwrap(),
        &mut rng,
    )
    .await;
    let state = state_with(&server, AnalyticsConfig::default());
    let detect = |at: Timestamp| {
        let state = state.clone();
        async move {
            feedloop_server::analytics::detect::detect_negative_spike(&state, project, at)
                .await
                .unwrap()
        }
    };
    assert!(detect(earlier).await.is_none(), "a steady rate is no spike");
    // The last hour at 40 %.
    traffic(&server, "gpt", "2", 150, 0.40, ago(3_000), &mut rng).await;
    let alert = detect(now).await.expect("a spike");
    assert_eq!(alert.kind, "negative_spike");
    assert_eq!(alert.evidence["comparison"]["verdict"], "worse");
    assert_eq!(alert.evidence["comparison"]["b"]["num_traces"], 150);
    assert!(detect(now).await.is_none(), "one alert per hour");
}
