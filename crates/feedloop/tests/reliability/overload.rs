//! Past `max_in_flight_requests` the server sheds load: 503 `overloaded` with `Retry-After`,
//! nothing stored for the refused request, and the requests it took complete and are stored.

use feedloop_server::ServerConfig;
use feedloop_server::access::AccessConfig;
use reqwest::StatusCode;
use serde_json::Value;

use crate::HeldRequest;
use crate::common::TestServer;

fn limited(max_in_flight_requests: usize) -> ServerConfig {
    ServerConfig {
        access: AccessConfig {
            max_in_flight_requests,
            ..AccessConfig::default()
        },
        ..ServerConfig::default()
    }
}

#[tokio::test]
async fn past_the_in_flight_limit_requests_get_503_with_retry_after_and_change_nothing() {
    let server = TestServer::start_with(limited(2)).await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    // Two requests whose bodies are not finished hold both permits.
    let held: Vec<HeldRequest> = (0..2)
        .map(|i| {
            HeldRequest::start(
                &addr,
                &server.key,
                "/api/v1/traces",
                &crate::traces(&format!("held{i}"), 5, 10),
            )
        })
        .collect();
    // The handlers have the permits once their requests reached the server; wait for that
    // through the one thing a client can see: a third request being refused.
    let mut attempt = 0;
    let (refused, refused_prefix) = loop {
        attempt += 1;
        let prefix = format!("refused{attempt}");
        let response = server
            .http
            .post(format!("{}/api/v1/traces", server.base))
            .header("authorization", format!("Bearer {}", server.key))
            .header("content-type", "application/json")
            .body(crate::traces(&prefix, 5, 10))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::SERVICE_UNAVAILABLE {
            break (response, prefix);
        }
        // Accepted before both held requests were counted: fine, it is stored like any other.
        assert_eq!(response.status(), StatusCode::OK);
        assert!(attempt < 500, "never refused past the limit");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let retry_after = refused
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse::<u64>()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "overloaded", "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("retry"));
    // Health checks are answered whatever the load.
    let (status, _) = server.get("/healthz").await;
    assert_eq!(status, StatusCode::OK);

    // The held requests complete and are stored; the refused one stored nothing.
    for request in held {
        let (status, answer) = tokio::task::spawn_blocking(move || request.finish())
            .await
            .unwrap();
        assert_eq!(status, 200, "{answer}");
    }
    for id in ["held0-0", "held1-4"] {
        let (status, _) = server.get(&format!("/api/v1/traces/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{id}");
    }
    let (status, _) = server
        .get(&format!("/api/v1/traces/{refused_prefix}-0"))
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "a refused request stores nothing"
    );
    // Permits come back: the next request is served.
    let (status, _) = server
        .send_raw(
            &server.key,
            "POST",
            "/api/v1/traces",
            "application/json",
            crate::traces("after", 1, 10),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_flood_gets_only_200_or_503_and_every_acknowledged_trace_is_stored() {
    let server = TestServer::start_with(limited(3)).await;
    let requests = (0..48).map(|i| {
        let http = server.http.clone();
        let url = format!("{}/api/v1/traces", server.base);
        let key = server.key.clone();
        async move {
            let response = http
                .post(url)
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(crate::traces(&format!("flood{i}"), 50, 2_000))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let retry_after = response.headers().contains_key("retry-after");
            (i, status, retry_after)
        }
    });
    let answers = futures::future::join_all(requests).await;
    let mut num_acked = 0u64;
    for (_, status, retry_after) in &answers {
        match status.as_u16() {
            200 => num_acked += 1,
            503 => assert!(retry_after, "a 503 without Retry-After"),
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(num_acked > 0, "nothing got through");
    let (traces, _) = server.counts().await;
    assert_eq!(
        traces,
        num_acked * 50,
        "stored traces are exactly the acknowledged ones"
    );
    for (i, status, _) in answers {
        let (found, _) = server.get(&format!("/api/v1/traces/flood{i}-49")).await;
        let expected = if status == StatusCode::OK {
            StatusCode::OK
        } else {
            StatusCode::NOT_FOUND
        };
        assert_eq!(found, expected, "request {i} answered {status}");
    }
}
