//! Keys: no key, unknown and revoked keys, roles, and project isolation.

use feedloop_core::auth::KeyRole;
use serde_json::json;

use crate::common::{TestServer, assert_error};

#[tokio::test]
async fn every_api_call_needs_a_valid_key() {
    let server = TestServer::start().await;
    let response = server
        .http
        .get(format!("{}/api/v1/traces", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unauthorized");
    assert_error(
        &server.get_as("fl_sk_notakey", "/api/v1/traces").await,
        401,
        "unauthorized",
        None,
    );
    let no_key = server
        .http
        .post(format!("{}/api/v1/feedback", server.base))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 401);
    // Health needs no key.
    assert_eq!(
        server
            .http
            .get(format!("{}/healthz", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        server
            .http
            .get(format!("{}/readyz", server.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_revoked_key_stops_working_at_once() {
    let server = TestServer::start().await;
    let (status, created) = server
        .post("/api/v1/keys", json!({"name": "ci", "role": "ingest"}))
        .await;
    assert_eq!(status, 200, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    let trace = json!({"id": "t", "input": "q"});
    assert_eq!(
        server
            .post_as(&secret, "/api/v1/traces", trace.clone())
            .await
            .0,
        200
    );
    let id = created["key"]["id"].as_i64().unwrap();
    let (status, revoked) = server.delete(&format!("/api/v1/keys/{id}")).await;
    assert_eq!(status, 200);
    assert!(revoked["revoked_at"].is_string());
    assert_error(
        &server.post_as(&secret, "/api/v1/traces", trace).await,
        401,
        "unauthorized",
        None,
    );
    let (_, keys) = server.get("/api/v1/keys").await;
    assert!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k.get("secret").is_none())
    );
}

#[tokio::test]
async fn roles_limit_what_a_key_does() {
    let server = TestServer::start().await;
    let ingest = server.key_with_role(KeyRole::Ingest).await;
    let read = server.key_with_role(KeyRole::Read).await;
    assert_eq!(
        server
            .post_as(&ingest, "/api/v1/traces", json!({"id": "t"}))
            .await
            .0,
        200
    );
    assert_error(
        &server.get_as(&ingest, "/api/v1/traces").await,
        403,
        "forbidden",
        None,
    );
    assert_eq!(server.get_as(&read, "/api/v1/traces").await.0, 200);
    assert_error(
        &server
            .post_as(&read, "/api/v1/traces", json!({"id": "u"}))
            .await,
        403,
        "forbidden",
        None,
    );
    assert_error(
        &server.get_as(&read, "/api/v1/keys").await,
        403,
        "forbidden",
        None,
    );
    assert_error(
        &server
            .post_as(&ingest, "/api/v1/taxonomy/categories", json!({"name": "x"}))
            .await,
        403,
        "forbidden",
        None,
    );
}

#[tokio::test]
async fn a_second_project_cannot_read_the_first_projects_data() {
    let server = TestServer::start().await;
    server
        .post(
            "/api/v1/traces",
            json!({"id": "secret-trace", "input": "private", "session_id": "s1", "user_id": "u1"}),
        )
        .await;
    server
        .post(
            "/api/v1/feedback",
            json!({"id": "fb1", "trace_id": "secret-trace", "comment": "private too"}),
        )
        .await;
    let other = server.new_project("other").await;

    assert_error(
        &server.get_as(&other, "/api/v1/traces/secret-trace").await,
        404,
        "trace_not_found",
        None,
    );
    assert_eq!(
        server.get_as(&other, "/api/v1/traces").await.1["items"],
        json!([])
    );
    assert_eq!(
        server.get_as(&other, "/api/v1/traces?user_id=u1").await.1["items"],
        json!([])
    );
    assert_eq!(
        server.get_as(&other, "/api/v1/feedback").await.1["items"],
        json!([])
    );
    assert_eq!(server.get_as(&other, "/api/v1/sessions/s1").await.0, 404);
    assert_eq!(
        server.get_as(&other, "/api/v1/stats").await.1["traces"]["total"],
        0
    );
    // The same client ids in another project are that project's own.
    let (status, mine) = server
        .post_as(
            &other,
            "/api/v1/feedback",
            json!({"id": "fb1", "trace_id": "secret-trace", "comment": "mine"}),
        )
        .await;
    assert_eq!(
        (status.as_u16(), mine["status"].as_str()),
        (200, Some("created"))
    );
    assert_eq!(
        server.get_as(&other, "/api/v1/traces/secret-trace").await.0,
        404
    );
    let (_, keys) = server.get_as(&other, "/api/v1/keys").await;
    let first_project_key_id = server.get("/api/v1/keys").await.1["keys"][0]["id"]
        .as_i64()
        .unwrap();
    assert!(
        keys["keys"]
            .as_array()
            .unwrap()
            .iter()
            .all(|k| k["id"].as_i64() != Some(first_project_key_id))
    );
    assert_eq!(
        server
            .send_raw(
                &other,
                "DELETE",
                &format!("/api/v1/keys/{first_project_key_id}"),
                "application/json",
                vec![]
            )
            .await
            .0,
        404
    );
    assert_eq!(server.counts().await, (1, 1));
}
