//! Graceful shutdown of the real binary: on SIGTERM it stops accepting connections, finishes
//! the requests in flight (acknowledged = stored), stops its background jobs and exits 0.

use std::time::{Duration, Instant};

use crate::HeldRequest;
use crate::process::{self, Data};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_refuses_new_ones_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let data = Data {
        dir: process::data_dir(dir.path(), "data"),
        postgres_url: None,
    };
    let port = process::free_port();
    let server = process::start(&data, port, &[]).await;
    let key = server.first_start_key().await;
    let addr = format!("127.0.0.1:{port}");

    // A request in flight: its headers and most of its body are in, the rest comes later.
    let (held_addr, held_key) = (addr.clone(), key.clone());
    let held = tokio::task::spawn_blocking(move || {
        HeldRequest::start(
            &held_addr,
            &held_key,
            "/api/v1/traces",
            &crate::traces("inflight", 20, 100),
        )
    })
    .await
    .unwrap();
    // Wait until the server has the request (the handler is reading its body): only then is it
    // "in flight" rather than a connection not yet accepted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.terminate();

    // New connections are refused once the server stops listening.
    let started = Instant::now();
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still accepting connections after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The request in flight completes and is acknowledged.
    let (status, answer) = tokio::task::spawn_blocking(move || held.finish())
        .await
        .unwrap();
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains("created"), "{answer}");

    let (exit, log) = server.wait_exit(Duration::from_secs(60)).await;
    assert!(exit.success(), "exit {exit}:\n{log}");
    assert!(log.contains("draining in-flight requests"), "{log}");
    assert!(log.contains("feedloop stopped"), "{log}");

    // What it acknowledged is stored.
    let server = process::start(&data, port, &[]).await;
    let http = reqwest::Client::new();
    for i in 0..20 {
        let response = http
            .get(format!("{}/api/v1/traces/inflight-{i}", server.base))
            .header("authorization", format!("Bearer {key}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "inflight-{i}");
    }
}
