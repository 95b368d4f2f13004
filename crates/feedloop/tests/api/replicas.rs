//! Several servers on one database behave as one service.

use feedloop_core::Timestamp;
use feedloop_core::clock::ManualClock;
use feedloop_server::jobs::{Job, JobScheduler, TickOutcome};
use feedloop_server::{AppState, ServerConfig};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{TestServer, assert_error};

fn fast_follow() -> ServerConfig {
    ServerConfig {
        change_poll_interval: Duration::from_millis(20),
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn writes_through_one_replica_are_read_through_the_other() {
    let a = TestServer::start_with(fast_follow()).await;
    let b = a.replica(fast_follow()).await;
    a.post(
        "/api/v1/traces",
        json!({"id": "t1", "input": "q", "output": "a", "session_id": "s"}),
    )
    .await;
    b.post(
        "/api/v1/feedback",
        json!({"id": "f1", "trace_id": "t1", "rating": {"value": 1}}),
    )
    .await;
    let (_, chain) = b.get("/api/v1/traces/t1").await;
    assert_eq!(chain["trace"]["output"], "a");
    let (_, chain) = a.get("/api/v1/traces/t1").await;
    assert_eq!(chain["feedback"][0]["id"], "f1");
}

#[tokio::test]
async fn a_key_revoked_through_one_replica_stops_working_on_the_other() {
    let a = TestServer::start_with(fast_follow()).await;
    let b = a.replica(fast_follow()).await;
    let (_, created) = a
        .post("/api/v1/keys", json!({"name": "app", "role": "read"}))
        .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    // b learns the key (and caches it) ...
    assert_eq!(b.get_as(&secret, "/api/v1/traces").await.0, 200);
    let id = created["key"]["id"].as_i64().unwrap();
    assert_eq!(a.delete(&format!("/api/v1/keys/{id}")).await.0, 200);
    // ... and forgets it once it follows the change log.
    let mut refused = false;
    for _ in 0..100 {
        if b.get_as(&secret, "/api/v1/traces").await.0 == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "replica b still accepts a revoked key");
    assert_error(
        &b.get_as(&secret, "/api/v1/traces").await,
        401,
        "unauthorized",
        None,
    );
}

#[tokio::test]
async fn a_key_rotated_through_one_replica_stops_working_on_the_other() {
    let a = TestServer::start_with(fast_follow()).await;
    let b = a.replica(fast_follow()).await;
    let (_, created) = a
        .post("/api/v1/keys", json!({"name": "app", "role": "read"}))
        .await;
    let old = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(b.get_as(&old, "/api/v1/traces").await.0, 200);
    let id = created["key"]["id"].as_i64().unwrap();
    let (status, rotated) = a
        .post(&format!("/api/v1/keys/{id}/rotate"), json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap();
    // The successor works on b at once (unknown keys are looked up); the old secret stops
    // once b follows the change log.
    assert_eq!(b.get_as(new, "/api/v1/traces").await.0, 200);
    let mut refused = false;
    for _ in 0..100 {
        if b.get_as(&old, "/api/v1/traces").await.0 == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "replica b still accepts a rotated key");
}

#[tokio::test]
async fn a_feedback_token_from_one_replica_is_accepted_by_the_other() {
    let a = TestServer::start_with(fast_follow()).await;
    let b = a.replica(fast_follow()).await;
    a.post(
        "/api/v1/traces",
        json!({"id": "t1", "input": "q", "output": "a"}),
    )
    .await;
    let (status, token) = a
        .post("/api/v1/feedback-tokens", json!({"trace_id": "t1"}))
        .await;
    assert_eq!(status, 200, "{token}");
    let (status, answer) = b
        .post_as(
            token["token"].as_str().unwrap(),
            "/api/v1/feedback",
            json!({"id": "f1", "trace_id": "t1", "rating": {"value": 1}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn a_background_job_runs_once_across_replicas() {
    let a = TestServer::start().await;
    let b = a.replica(ServerConfig::default()).await;
    let start: Timestamp = "2026-06-01T10:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let state = |server: &TestServer| {
        AppState::new(
            server.store.clone(),
            clock.clone(),
            ServerConfig::default(),
            server.memory.clone(),
        )
    };
    let (state_a, state_b) = (state(&a), state(&b));
    let (mut scheduler_a, mut scheduler_b) = (JobScheduler::default(), JobScheduler::default());

    let ran = |outcomes: &[(Job, TickOutcome)]| {
        outcomes
            .iter()
            .filter(|(job, o)| *job == Job::PruneChangeLog && matches!(o, TickOutcome::Ran { .. }))
            .count()
    };
    let (first_a, first_b) = tokio::join!(
        scheduler_a.tick(&state_a, "replica-a", start),
        scheduler_b.tick(&state_b, "replica-b", start)
    );
    assert_eq!(ran(&first_a) + ran(&first_b), 1, "{first_a:?} {first_b:?}");
    // Ticking again in the same period runs nothing.
    let again_a = scheduler_a.tick(&state_a, "replica-a", start).await;
    let again_b = scheduler_b.tick(&state_b, "replica-b", start).await;
    assert_eq!(ran(&again_a) + ran(&again_b), 0);
    // The next period runs once more.
    clock.advance(jiff::SignedDuration::from_hours(1));
    let later = feedloop_core::clock::Clock::now(clock.as_ref());
    let (next_a, next_b) = tokio::join!(
        scheduler_a.tick(&state_a, "replica-a", later),
        scheduler_b.tick(&state_b, "replica-b", later)
    );
    assert_eq!(ran(&next_a) + ran(&next_b), 1);
    // (The servers' own job runners claim the real current period too; look at ours only.)
    let ours = [
        Job::PruneChangeLog.period_of(start),
        Job::PruneChangeLog.period_of(later),
    ];
    let runs: Vec<_> = a
        .store
        .job_runs(Job::PruneChangeLog.name(), 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|run| ours.contains(&run.period))
        .collect();
    assert_eq!(runs.len(), 2);
    assert!(runs.iter().all(|run| run.finished_at.is_some()));
}
