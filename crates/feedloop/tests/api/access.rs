//! Who may call what: the access matrix (every route of the OpenAPI document × every kind of
//! caller), sessions with CSRF, public keys and CORS, feedback tokens, rate limits, people and
//! the audit log.

use feedloop_core::auth::UserRole;
use feedloop_core::clock::{Clock, SystemClock};
use feedloop_server::ServerConfig;
use feedloop_server::access::AccessConfig;
use feedloop_server::access::limits::RateLimit;
use feedloop_store::access::NewUser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{TestServer, assert_error};

const ORIGIN: &str = "https://app.example.com";

/// How a test request authenticates: headers to add.
#[derive(Debug, Clone, Default)]
struct Credentials {
    headers: Vec<(&'static str, String)>,
}

impl Credentials {
    fn bearer(secret: &str) -> Self {
        Self {
            headers: vec![("authorization", format!("Bearer {secret}"))],
        }
    }

    fn public(secret: &str, origin: &str) -> Self {
        let mut credentials = Self::bearer(secret);
        credentials.headers.push(("origin", origin.to_owned()));
        credentials
    }

    fn session(cookie: &str, csrf: &str) -> Self {
        Self {
            headers: vec![
                ("cookie", format!("feedloop_session={cookie}")),
                ("x-csrf-token", csrf.to_owned()),
            ],
        }
    }

    fn without(&self, name: &str) -> Self {
        Self {
            headers: self
                .headers
                .iter()
                .filter(|(header, _)| *header != name)
                .cloned()
                .collect(),
        }
    }
}

async fn send(
    server: &TestServer,
    credentials: &Credentials,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = server
        .http
        .request(method, format!("{}{path}", server.base));
    for (name, value) in &credentials.headers {
        request = request.header(*name, value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    request.send().await.expect("request")
}

async fn call(
    server: &TestServer,
    credentials: &Credentials,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let response = send(server, credentials, method, path, body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Creates an account with a role in the default project and signs it in: (cookie, csrf).
async fn signed_in(server: &TestServer, email: &str, role: UserRole) -> (String, String) {
    let password = "a long enough password";
    let store = &server.store;
    let project = store.project_by_name("default").await.unwrap().unwrap();
    let user = store
        .create_user(
            NewUser {
                email: email.into(),
                password_hash: feedloop_server::access::password::hash_password(password).unwrap(),
                is_admin: false,
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
    store
        .set_membership(project.id, user.id, role, SystemClock.now())
        .await
        .unwrap();
    login(server, email, password).await
}

async fn login(server: &TestServer, email: &str, password: &str) -> (String, String) {
    let response = send(
        server,
        &Credentials::default(),
        "POST",
        "/api/v1/auth/login",
        Some(json!({"email": email, "password": password})),
    )
    .await;
    assert_eq!(response.status(), 200);
    let set_cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Max-Age="] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("feedloop_session=")
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    (cookie, body["csrf_token"].as_str().unwrap().to_owned())
}

async fn new_key(server: &TestServer, role: &str, origins: &[&str]) -> (i64, String) {
    let (status, created) = server
        .post(
            "/api/v1/keys",
            json!({"name": role, "role": role, "allowed_origins": origins}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    (
        created["key"]["id"].as_i64().unwrap(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

async fn feedback_token(server: &TestServer, trace_id: &str, ttl_secs: u64) -> String {
    let (status, token) = server
        .post(
            "/api/v1/feedback-tokens",
            json!({"trace_id": trace_id, "ttl_secs": ttl_secs}),
        )
        .await;
    assert_eq!(status, 200, "{token}");
    token["token"].as_str().unwrap().to_owned()
}

/// The callers of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Principal {
    Nobody,
    PublicKey,
    IngestKey,
    ReadKey,
    Viewer,
    Reviewer,
    AdminSession,
    AdminKey,
    OtherProjectKey,
    RevokedKey,
    ExpiredToken,
    Token,
}

/// What a route needs, as this test states it (independently of the server's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Nothing,
    Session,
    AnyCaller,
    Ingest,
    Feedback,
    Read,
    Review,
    Admin,
}

/// What a caller should get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Neither 401 nor 403 (a 2xx, or a 4xx about the request itself).
    Allowed,
    /// Allowed, but on its own project: a named resource of ours is not found (404).
    OwnProjectOnly,
    Unauthorized,
    Forbidden,
}

fn holds(principal: Principal, needs: Needs) -> bool {
    use Needs::*;
    use Principal::*;
    match principal {
        AdminKey | AdminSession | OtherProjectKey => true,
        IngestKey => matches!(needs, Ingest | Feedback),
        ReadKey | Viewer => needs == Read,
        Reviewer => matches!(needs, Read | Review | Feedback),
        PublicKey | Token => needs == Feedback,
        Nobody | RevokedKey | ExpiredToken => false,
    }
}

fn expected(principal: Principal, needs: Needs, method: &str, path: &str) -> Outcome {
    use Principal::*;
    match needs {
        Needs::Nothing => Outcome::Allowed,
        Needs::Session => match principal {
            Viewer | Reviewer | AdminSession => Outcome::Allowed,
            _ => Outcome::Unauthorized,
        },
        _ if matches!(principal, Nobody | RevokedKey | ExpiredToken) => Outcome::Unauthorized,
        Needs::AnyCaller => Outcome::Allowed,
        needs if !holds(principal, needs) => Outcome::Forbidden,
        // Reads and deletions of our named resources through another project's key.
        _ if principal == OtherProjectKey
            && path.contains('{')
            && matches!(method, "GET" | "DELETE") =>
        {
            Outcome::OwnProjectOnly
        }
        _ => Outcome::Allowed,
    }
}

/// Every route of the API with what it needs. A route missing here fails the matrix test.
const ROUTES: &[(&str, &str, Needs)] = &[
    ("GET", "/healthz", Needs::Nothing),
    ("GET", "/readyz", Needs::Nothing),
    ("POST", "/api/v1/auth/login", Needs::Nothing),
    ("GET", "/api/v1/auth/me", Needs::Session),
    ("GET", "/api/v1/project", Needs::AnyCaller),
    ("POST", "/api/v1/traces", Needs::Ingest),
    ("POST", "/api/v1/ingest", Needs::Ingest),
    ("POST", "/api/v1/context", Needs::Ingest),
    ("POST", "/api/v1/feedback-tokens", Needs::Ingest),
    ("POST", "/api/v1/feedback", Needs::Feedback),
    ("POST", "/api/v1/signals", Needs::Feedback),
    ("GET", "/api/v1/traces", Needs::Read),
    ("GET", "/api/v1/traces/{id}", Needs::Read),
    ("GET", "/api/v1/traces/{id}/similar", Needs::Read),
    ("GET", "/api/v1/feedback", Needs::Read),
    ("GET", "/api/v1/sessions/{id}", Needs::Read),
    ("POST", "/api/v1/search", Needs::Read),
    ("GET", "/api/v1/stats", Needs::Read),
    // The widget shows the reasons: public keys and feedback tokens read them too.
    ("GET", "/api/v1/taxonomy", Needs::AnyCaller),
    ("GET", "/api/v1/analytics/feedback", Needs::Read),
    ("POST", "/api/v1/analytics/compare", Needs::Read),
    ("GET", "/api/v1/analytics/alerts", Needs::Read),
    ("GET", "/api/v1/clusters", Needs::Read),
    ("GET", "/api/v1/clusters/{id}", Needs::Read),
    ("POST", "/api/v1/clusters/refresh", Needs::Review),
    ("GET", "/api/v1/lessons", Needs::Read),
    ("POST", "/api/v1/lessons", Needs::Review),
    ("GET", "/api/v1/lessons/{id}", Needs::Read),
    ("PATCH", "/api/v1/lessons/{id}", Needs::Review),
    ("GET", "/api/v1/lessons/{id}/versions", Needs::Read),
    ("GET", "/api/v1/lessons/{id}/effect", Needs::Read),
    ("POST", "/api/v1/lessons/from-feedback", Needs::Review),
    ("POST", "/api/v1/lessons/propose", Needs::Review),
    ("GET", "/api/v1/loop/repeat-mistakes", Needs::Read),
    ("GET", "/api/v1/loop/settings", Needs::Read),
    ("PUT", "/api/v1/loop/settings", Needs::Admin),
    ("GET", "/api/v1/signals/settings", Needs::Read),
    ("PUT", "/api/v1/signals/settings", Needs::Admin),
    ("POST", "/api/v1/signals/recompute", Needs::Admin),
    ("GET", "/api/v1/datasets", Needs::Read),
    ("POST", "/api/v1/datasets", Needs::Review),
    ("GET", "/api/v1/datasets/{name}", Needs::Read),
    ("GET", "/api/v1/datasets/{name}/items", Needs::Read),
    ("POST", "/api/v1/datasets/{name}/items", Needs::Review),
    (
        "POST",
        "/api/v1/datasets/{name}/items/from-feedback",
        Needs::Review,
    ),
    ("GET", "/api/v1/datasets/{name}/versions", Needs::Read),
    ("POST", "/api/v1/datasets/{name}/versions", Needs::Review),
    ("GET", "/api/v1/datasets/{name}/export", Needs::Review),
    (
        "GET",
        "/api/v1/datasets/{name}/export/manifest",
        Needs::Read,
    ),
    ("GET", "/api/v1/queues", Needs::Read),
    ("POST", "/api/v1/queues", Needs::Admin),
    ("GET", "/api/v1/queues/{queue}", Needs::Read),
    ("GET", "/api/v1/queues/{queue}/agreement", Needs::Read),
    ("GET", "/api/v1/queues/{queue}/counts", Needs::Read),
    ("GET", "/api/v1/queues/{queue}/items", Needs::Read),
    ("POST", "/api/v1/queues/{queue}/items", Needs::Review),
    ("GET", "/api/v1/queues/{queue}/items/{item}", Needs::Read),
    (
        "GET",
        "/api/v1/queues/{queue}/items/{item}/history",
        Needs::Read,
    ),
    (
        "POST",
        "/api/v1/queues/{queue}/items/{item}/actions",
        Needs::Review,
    ),
    ("POST", "/api/v1/queues/{queue}/reserve", Needs::Review),
    ("PUT", "/api/v1/queues/{queue}", Needs::Admin),
    ("GET", "/api/v1/webhooks", Needs::Read),
    ("GET", "/api/v1/webhooks/deliveries", Needs::Read),
    ("POST", "/api/v1/webhooks", Needs::Admin),
    ("DELETE", "/api/v1/webhooks/{id}", Needs::Admin),
    ("POST", "/api/v1/taxonomy/categories", Needs::Admin),
    ("DELETE", "/api/v1/taxonomy/categories/{name}", Needs::Admin),
    ("GET", "/api/v1/keys", Needs::Admin),
    ("POST", "/api/v1/keys", Needs::Admin),
    ("POST", "/api/v1/keys/{id}/rotate", Needs::Admin),
    ("DELETE", "/api/v1/keys/{id}", Needs::Admin),
    ("GET", "/api/v1/members", Needs::Admin),
    ("POST", "/api/v1/members", Needs::Admin),
    ("PUT", "/api/v1/members/{user_id}", Needs::Admin),
    ("DELETE", "/api/v1/members/{user_id}", Needs::Admin),
    ("GET", "/api/v1/audit", Needs::Admin),
    ("GET", "/api/v1/privacy/settings", Needs::Read),
    ("PUT", "/api/v1/privacy/settings", Needs::Admin),
    ("POST", "/api/v1/privacy/retention/run", Needs::Admin),
    ("POST", "/api/v1/erasure", Needs::Admin),
    ("GET", "/api/v1/erasure", Needs::Admin),
    // Destructive ones last: they remove what the routes above name.
    ("DELETE", "/api/v1/queues/{queue}", Needs::Admin),
    ("POST", "/api/v1/auth/logout", Needs::Session),
];

/// The routes of the served OpenAPI document as (method, path template).
async fn openapi_routes(server: &TestServer) -> BTreeSet<(String, String)> {
    let (status, document) = server.get("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    let mut routes = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// What the matrix's path parameters name: resources of the default project.
struct Fixture {
    lesson_id: String,
    item_id: i64,
    victim_key: i64,
    victim_user: i64,
    webhook_id: i64,
}

async fn fixture(server: &TestServer) -> Fixture {
    let ingest = |path: &'static str, body: Value| async move {
        let (status, answer) = server.post(path, body).await;
        assert!(status.is_success(), "{path}: {answer}");
        answer
    };
    ingest(
        "/api/v1/traces",
        json!({"id": "t1", "input": "how do I reset my password", "output": "click reset", "session_id": "s1"}),
    )
    .await;
    let lesson = ingest(
        "/api/v1/lessons",
        json!({"id": "ls-1", "title": "Resets", "trigger": {"examples": ["reset password"]},
               "action": {"instruction": "Link the reset page."}, "status": "active"}),
    )
    .await;
    ingest("/api/v1/queues", json!({"name": "q1", "rules": []})).await;
    let enqueued = ingest(
        "/api/v1/queues/q1/items",
        json!({"trace_ids": ["t1"], "author": "lead"}),
    )
    .await;
    ingest("/api/v1/datasets", json!({"name": "d1"})).await;
    ingest(
        "/api/v1/taxonomy/categories",
        json!({"name": "matrix_only"}),
    )
    .await;
    let webhook = ingest(
        "/api/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/hook", "event_types": ["regression"]}),
    )
    .await;
    let (victim_key, _) = new_key(server, "read", &[]).await;
    let project = server
        .store
        .project_by_name("default")
        .await
        .unwrap()
        .unwrap();
    let victim = server
        .store
        .create_user(
            NewUser {
                email: "victim@example.com".into(),
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                is_admin: false,
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
    server
        .store
        .set_membership(project.id, victim.id, UserRole::Viewer, SystemClock.now())
        .await
        .unwrap();
    Fixture {
        lesson_id: lesson["id"].as_str().unwrap().to_owned(),
        item_id: enqueued["items"][0]["item_id"]
            .as_i64()
            .unwrap_or_else(|| panic!("no item id in {enqueued}")),
        victim_key,
        victim_user: victim.id,
        webhook_id: webhook["id"].as_i64().unwrap(),
    }
}

fn concrete(path: &str, fixture: &Fixture) -> String {
    let query = if path.contains("/export") {
        "?format=openai"
    } else {
        ""
    };
    let path = path
        .replace("/traces/{id}", "/traces/t1")
        .replace("/sessions/{id}", "/sessions/s1")
        .replace("/clusters/{id}", "/clusters/1")
        .replace("/lessons/{id}", &format!("/lessons/{}", fixture.lesson_id))
        .replace("{queue}", "q1")
        .replace("{item}", &fixture.item_id.to_string())
        .replace("/datasets/{name}", "/datasets/d1")
        .replace("/categories/{name}", "/categories/matrix_only")
        .replace("/keys/{id}", &format!("/keys/{}", fixture.victim_key))
        .replace("{user_id}", &fixture.victim_user.to_string())
        .replace(
            "/webhooks/{id}",
            &format!("/webhooks/{}", fixture.webhook_id),
        );
    format!("{path}{query}")
}

#[tokio::test]
async fn every_route_answers_every_kind_of_caller_as_allowed() {
    let server = TestServer::start().await;
    let fixture = fixture(&server).await;

    let served = openapi_routes(&server).await;
    let listed: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    let unlisted: Vec<_> = served.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "routes without an entry in the access matrix: {unlisted:?}"
    );
    let gone: Vec<_> = listed.difference(&served).collect();
    assert!(gone.is_empty(), "matrix entries of no route: {gone:?}");

    let (_, public) = new_key(&server, "public", &[ORIGIN]).await;
    let (_, ingest) = new_key(&server, "ingest", &[]).await;
    let (_, read) = new_key(&server, "read", &[]).await;
    let (revoked_id, revoked) = new_key(&server, "admin", &[]).await;
    assert_eq!(
        server.delete(&format!("/api/v1/keys/{revoked_id}")).await.0,
        200
    );
    let other = server.new_project("other").await;
    let expired = feedback_token(&server, "t1", 1).await;
    let token = feedback_token(&server, "t1", 3600).await;
    let viewer = signed_in(&server, "viewer@example.com", UserRole::Viewer).await;
    let reviewer = signed_in(&server, "reviewer@example.com", UserRole::Reviewer).await;
    let admin = signed_in(&server, "admin@example.com", UserRole::Admin).await;
    // The short token's second passes.
    tokio::time::sleep(Duration::from_millis(2_100)).await;

    let principals = [
        (Principal::Nobody, Credentials::default()),
        (Principal::PublicKey, Credentials::public(&public, ORIGIN)),
        (Principal::IngestKey, Credentials::bearer(&ingest)),
        (Principal::ReadKey, Credentials::bearer(&read)),
        (
            Principal::Viewer,
            Credentials::session(&viewer.0, &viewer.1),
        ),
        (
            Principal::Reviewer,
            Credentials::session(&reviewer.0, &reviewer.1),
        ),
        (
            Principal::AdminSession,
            Credentials::session(&admin.0, &admin.1),
        ),
        (Principal::AdminKey, Credentials::bearer(&server.key)),
        (Principal::OtherProjectKey, Credentials::bearer(&other)),
        (Principal::RevokedKey, Credentials::bearer(&revoked)),
        (Principal::ExpiredToken, Credentials::bearer(&expired)),
        (Principal::Token, Credentials::bearer(&token)),
    ];
    let mut failures = Vec::new();
    for (method, template, needs) in ROUTES {
        let path = concrete(template, &fixture);
        let body = (*method != "GET" && *method != "DELETE").then(|| json!({}));
        for (principal, credentials) in &principals {
            let want = expected(*principal, *needs, method, template);
            let (status, answer) = call(&server, credentials, method, &path, body.clone()).await;
            let ok = match want {
                Outcome::Allowed => status != 401 && status != 403 && status != 500,
                Outcome::OwnProjectOnly => status == 404,
                Outcome::Unauthorized => status == 401,
                Outcome::Forbidden => status == 403,
            };
            if !ok {
                failures.push(format!(
                    "{method} {path} as {principal:?}: expected {want:?}, got {status} {answer}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} answers wrong:\n{}",
        failures.len(),
        ROUTES.len() * principals.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_cookie_request_that_changes_state_needs_the_csrf_token() {
    let server = TestServer::start().await;
    let (cookie, csrf) = signed_in(&server, "ann@example.com", UserRole::Admin).await;
    let session = Credentials::session(&cookie, &csrf);
    let body = json!({"name": "billing_question"});
    // Without the token: 403 csrf, and nothing changes.
    assert_error(
        &call(
            &server,
            &session.without("x-csrf-token"),
            "POST",
            "/api/v1/taxonomy/categories",
            Some(body.clone()),
        )
        .await,
        403,
        "csrf",
        Some("x-csrf-token"),
    );
    let mut wrong = session.without("x-csrf-token");
    wrong.headers.push(("x-csrf-token", format!("{csrf}x")));
    assert_error(
        &call(
            &server,
            &wrong,
            "POST",
            "/api/v1/taxonomy/categories",
            Some(body.clone()),
        )
        .await,
        403,
        "csrf",
        Some("x-csrf-token"),
    );
    let (_, taxonomy) = server.get("/api/v1/taxonomy").await;
    assert!(!taxonomy.to_string().contains("billing_question"));
    // Reads need no token; with the token the change goes through and is audited by person.
    let (status, _) = call(
        &server,
        &session.without("x-csrf-token"),
        "GET",
        "/api/v1/taxonomy",
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = call(
        &server,
        &session,
        "POST",
        "/api/v1/taxonomy/categories",
        Some(body),
    )
    .await;
    assert_eq!(status, 200);
    let (_, audit) = server.get("/api/v1/audit").await;
    assert_eq!(audit["entries"][0]["action"], "taxonomy.add");
    assert_eq!(audit["entries"][0]["target"], "billing_question");
    assert!(
        audit["entries"][0]["actor"]
            .as_str()
            .unwrap()
            .starts_with("user ")
    );
    // Logging out needs the token too, then the cookie is dead.
    assert_eq!(
        call(
            &server,
            &session.without("x-csrf-token"),
            "POST",
            "/api/v1/auth/logout",
            None
        )
        .await
        .0,
        403
    );
    assert_eq!(
        call(&server, &session, "POST", "/api/v1/auth/logout", None)
            .await
            .0,
        204
    );
    assert_error(
        &call(&server, &session, "GET", "/api/v1/auth/me", None).await,
        401,
        "unauthorized",
        None,
    );
}

#[tokio::test]
async fn sign_in_refuses_wrong_passwords_and_sessions_expire_when_idle() {
    let config = ServerConfig {
        access: AccessConfig {
            session_idle: Duration::from_secs(1),
            ..AccessConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config).await;
    let (cookie, csrf) = signed_in(&server, "ann@example.com", UserRole::Viewer).await;
    for (email, password) in [
        ("ann@example.com", "not the password at all"),
        ("nobody@example.com", "a long enough password"),
    ] {
        assert_error(
            &call(
                &server,
                &Credentials::default(),
                "POST",
                "/api/v1/auth/login",
                Some(json!({"email": email, "password": password})),
            )
            .await,
            401,
            "unauthorized",
            None,
        );
    }
    let session = Credentials::session(&cookie, &csrf);
    let (status, me) = call(&server, &session, "GET", "/api/v1/auth/me", None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "ann@example.com");
    assert_eq!(me["memberships"][0]["role"], "viewer");
    assert_eq!(me["csrf_token"], csrf);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_error(
        &call(&server, &session, "GET", "/api/v1/traces", None).await,
        401,
        "unauthorized",
        None,
    );
}

#[tokio::test]
async fn public_keys_answer_only_their_allowed_origins() {
    let server = TestServer::start().await;
    server
        .post(
            "/api/v1/traces",
            json!({"id": "t1", "input": "q", "output": "a"}),
        )
        .await;
    let (_, public) = new_key(&server, "public", &[ORIGIN]).await;
    let feedback = json!({"id": "f1", "trace_id": "t1", "rating": {"value": 1}});

    // The preflight answers with the asking origin and the headers a page needs.
    let preflight = server
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/feedback", server.base),
        )
        .header("origin", ORIGIN)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert!(
        headers["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );

    // An allowed origin: stored, and the origin echoed.
    let allowed = send(
        &server,
        &Credentials::public(&public, ORIGIN),
        "POST",
        "/api/v1/feedback",
        Some(feedback.clone()),
    )
    .await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.headers()["access-control-allow-origin"], ORIGIN);

    // Another origin, or none: 403 without CORS headers, and nothing stored.
    for credentials in [
        Credentials::public(&public, "https://evil.example.com"),
        Credentials::bearer(&public),
    ] {
        let refused = send(
            &server,
            &credentials,
            "POST",
            "/api/v1/signals",
            Some(json!({"id": "s1", "trace_id": "t1", "type": "copy"})),
        )
        .await;
        assert_eq!(refused.status(), 403);
        assert!(
            refused
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["field"], "origin");
    }
    assert_eq!(server.counts().await, (1, 1));

    // A public key reads nothing, even from its origin.
    let (status, _) = call(
        &server,
        &Credentials::public(&public, ORIGIN),
        "GET",
        "/api/v1/traces",
        None,
    )
    .await;
    assert_eq!(status, 403);

    // Secret keys never get CORS headers.
    let mut secret = Credentials::bearer(&server.key);
    secret.headers.push(("origin", ORIGIN.to_owned()));
    let answer = send(
        &server,
        &secret,
        "POST",
        "/api/v1/feedback",
        Some(json!({"id": "f2", "trace_id": "t1", "rating": {"value": 0}})),
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    // Public keys need origins of the right form; secret keys take none.
    assert_error(
        &server
            .post("/api/v1/keys", json!({"name": "web", "role": "public"}))
            .await,
        422,
        "invalid_value",
        Some("allowed_origins"),
    );
    assert_error(
        &server
            .post(
                "/api/v1/keys",
                json!({"name": "web", "role": "public", "allowed_origins": ["https://a.example.com/path"]}),
            )
            .await,
        422,
        "invalid_value",
        Some("allowed_origins[0]"),
    );
    assert_error(
        &server
            .post(
                "/api/v1/keys",
                json!({"name": "app", "role": "ingest", "allowed_origins": [ORIGIN]}),
            )
            .await,
        422,
        "invalid_value",
        Some("allowed_origins"),
    );
}

/// Posts `body` as a beacon does: no headers but the origin and `content-type: text/plain`, the
/// credential in the query.
async fn beacon(
    server: &TestServer,
    path_and_query: &str,
    origin: Option<&str>,
    content_type: &str,
    body: &Value,
) -> (StatusCode, Value, Option<String>) {
    let mut request = server
        .http
        .post(format!("{}{path_and_query}", server.base))
        .header("content-type", content_type)
        .body(body.to_string());
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let allow_origin = response
        .headers()
        .get("access-control-allow-origin")
        .map(|value| value.to_str().unwrap().to_owned());
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
        allow_origin,
    )
}

#[tokio::test]
async fn a_beacon_carries_a_public_key_or_token_in_the_query_and_never_a_secret_key() {
    let server = TestServer::start().await;
    server
        .post(
            "/api/v1/traces",
            json!({"id": "t1", "input": "q", "output": "an answer"}),
        )
        .await;
    let (_, public) = new_key(&server, "public", &[ORIGIN]).await;
    let token = feedback_token(&server, "t1", 3600).await;
    let signals = |id: &str| {
        json!([{"id": format!("{id}-dwell"), "trace_id": "t1", "type": "dwell", "value": 1500},
               {"id": format!("{id}-abandon"), "trace_id": "t1", "type": "abandon", "before_complete": false}])
    };

    // A public key from its origin, text/plain: stored, with the origin echoed.
    let (status, answer, allow_origin) = beacon(
        &server,
        &format!("/api/v1/signals?key={public}"),
        Some(ORIGIN),
        "text/plain;charset=UTF-8",
        &signals("pk"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["items"].as_array().unwrap().len(), 2);
    assert_eq!(allow_origin.as_deref(), Some(ORIGIN));
    // A feedback token, for its trace.
    let (status, answer, _) = beacon(
        &server,
        &format!("/api/v1/signals?key={token}"),
        Some(ORIGIN),
        "text/plain",
        &signals("ft"),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(server.counts().await, (1, 4));
    let (_, stored) = server.get("/api/v1/feedback?trace_id=t1&kind=signal").await;
    let dwell: Vec<&Value> = stored["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["signal"]["type"] == "dwell")
        .collect();
    assert_eq!(dwell.len(), 2);
    assert_eq!(dwell[0]["signal"]["value"], 1500.0);

    // Refused, and nothing stored: a secret key in the URL (not even looked up), a public key
    // from another origin or on another route, a body of another type, text/plain with the key
    // in a header (only beacons send text/plain).
    let refusals = [
        (
            format!("/api/v1/signals?key={}", server.key),
            Some(ORIGIN),
            "text/plain",
            401,
            "unauthorized",
            Some("key"),
        ),
        (
            format!("/api/v1/signals?key={public}"),
            Some("https://evil.example.com"),
            "text/plain",
            403,
            "forbidden",
            Some("origin"),
        ),
        (
            format!("/api/v1/signals?key={public}"),
            None,
            "text/plain",
            403,
            "forbidden",
            Some("origin"),
        ),
        (
            format!("/api/v1/feedback?key={public}"),
            Some(ORIGIN),
            "text/plain",
            401,
            "unauthorized",
            Some("key"),
        ),
        (
            format!("/api/v1/signals?key={public}"),
            Some(ORIGIN),
            "application/x-www-form-urlencoded",
            415,
            "unsupported_media_type",
            Some("content-type"),
        ),
    ];
    for (path, origin, content_type, status, code, field) in refusals {
        let (got, answer, allow_origin) =
            beacon(&server, &path, origin, content_type, &signals("no")).await;
        assert_eq!(got.as_u16(), status, "{path} {origin:?}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{path}: {answer}");
        assert_eq!(answer["error"]["field"].as_str(), field, "{path}: {answer}");
        if status == 401 || status == 403 {
            assert_eq!(allow_origin, None, "{path}");
        }
    }
    let in_header = server
        .http
        .post(format!("{}/api/v1/signals", server.base))
        .header("authorization", format!("Bearer {public}"))
        .header("origin", ORIGIN)
        .header("content-type", "text/plain")
        .body(signals("hd").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(in_header.status(), 415);
    assert_eq!(server.counts().await, (1, 4));
}

#[tokio::test]
async fn public_keys_and_tokens_read_the_taxonomy_for_the_widget() {
    let server = TestServer::start().await;
    server
        .post(
            "/api/v1/traces",
            json!({"id": "t1", "input": "q", "output": "a"}),
        )
        .await;
    let (_, public) = new_key(&server, "public", &[ORIGIN]).await;
    let token = feedback_token(&server, "t1", 3600).await;
    let preflight = server
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/v1/taxonomy", server.base),
        )
        .header("origin", ORIGIN)
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert!(
        preflight.headers()["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("GET")
    );
    for credentials in [
        Credentials::public(&public, ORIGIN),
        // A same-origin GET carries no Origin header.
        Credentials::bearer(&public),
        Credentials::public(&token, ORIGIN),
    ] {
        let response = send(&server, &credentials, "GET", "/api/v1/taxonomy", None).await;
        assert_eq!(response.status(), 200);
        let echoed = response
            .headers()
            .get("access-control-allow-origin")
            .cloned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["categories"][0]["name"], "factually_incorrect");
        if credentials
            .headers
            .iter()
            .any(|(name, _)| *name == "origin")
        {
            assert_eq!(echoed.unwrap(), ORIGIN);
        }
    }
    // A foreign page is refused, without CORS headers.
    let refused = send(
        &server,
        &Credentials::public(&public, "https://evil.example.com"),
        "GET",
        "/api/v1/taxonomy",
        None,
    )
    .await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    // The taxonomy is all they read.
    for credentials in [Credentials::bearer(&public), Credentials::bearer(&token)] {
        let (status, _) = call(
            &server,
            &credentials,
            "GET",
            "/api/v1/signals/settings",
            None,
        )
        .await;
        assert_eq!(status, 403);
    }
}

#[tokio::test]
async fn a_feedback_token_writes_about_its_trace_only_until_it_expires() {
    let server = TestServer::start().await;
    server
        .post("/api/v1/ingest", json!({"traces": [{"id": "t1", "input": "q", "output": "a"}, {"id": "t2", "input": "q", "output": "a"}]}))
        .await;
    let token = feedback_token(&server, "t1", 1).await;
    let as_token = Credentials::bearer(&token);
    let (status, answer) = call(
        &server,
        &as_token,
        "POST",
        "/api/v1/feedback",
        Some(json!({"id": "f1", "trace_id": "t1", "rating": {"value": 1}})),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_error(
        &call(
            &server,
            &as_token,
            "POST",
            "/api/v1/feedback",
            Some(json!([{"id": "f2", "trace_id": "t1", "rating": {"value": 1}}, {"id": "f3", "trace_id": "t2", "rating": {"value": 0}}])),
        )
        .await,
        403,
        "forbidden",
        Some("[1].trace_id"),
    );
    assert_eq!(server.counts().await, (2, 1));
    // A token is no key: it reads nothing and asks for no tokens.
    assert_eq!(
        call(&server, &as_token, "GET", "/api/v1/traces/t1", None)
            .await
            .0,
        403
    );
    // A tampered token is refused.
    let tampered = format!("{}A", token);
    assert_eq!(
        call(
            &server,
            &Credentials::bearer(&tampered),
            "GET",
            "/api/v1/project",
            None
        )
        .await
        .0,
        401
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (status, answer) = call(
        &server,
        &as_token,
        "POST",
        "/api/v1/signals",
        Some(json!({"id": "s1", "trace_id": "t1", "type": "copy"})),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["message"], "feedback token expired");
    // Bad requests for tokens name the field.
    assert_error(
        &server
            .post(
                "/api/v1/feedback-tokens",
                json!({"trace_id": "t1", "ttl_secs": 0}),
            )
            .await,
        422,
        "invalid_value",
        Some("ttl_secs"),
    );
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_with_retry_after() {
    let config = ServerConfig {
        access: AccessConfig {
            rate_limit: RateLimit {
                requests_per_second: 1.0,
                burst: 3,
            },
            ..AccessConfig::default()
        },
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config).await;
    for _ in 0..3 {
        assert_eq!(server.get("/api/v1/traces").await.0, 200);
    }
    let response = send(
        &server,
        &Credentials::bearer(&server.key),
        "GET",
        "/api/v1/traces",
        None,
    )
    .await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    // The gateway takes keys from its own headers and counts them against the same bucket.
    let gateway = server
        .http
        .get(format!("{}/v1/models", server.base))
        .bearer_auth(&server.key)
        .send()
        .await
        .unwrap();
    assert_eq!(gateway.status(), 429);
    assert!(gateway.headers().contains_key("retry-after"));
    // Another key has its own bucket; health checks are not limited.
    let (_, other) = new_key_unlimited(&server).await;
    assert_eq!(server.get_as(&other, "/api/v1/traces").await.0, 200);
    // After the wait, the first key is served again.
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    assert_eq!(server.get("/api/v1/traces").await.0, 200);
}

/// A key made through the store, so that making it costs the limited key nothing.
async fn new_key_unlimited(server: &TestServer) -> (i64, String) {
    let project = server
        .store
        .project_by_name("default")
        .await
        .unwrap()
        .unwrap();
    let (secret, record) =
        feedloop_server::ops::generate_key("other".into(), feedloop_core::auth::KeyRole::Read);
    let key = server
        .store
        .create_key(project.id, record, SystemClock.now())
        .await
        .unwrap();
    (key.id, secret)
}

#[tokio::test]
async fn project_admins_manage_members_and_every_change_is_audited() {
    let server = TestServer::start().await;
    let (cookie, csrf) = signed_in(&server, "viewer@example.com", UserRole::Viewer).await;
    let viewer = Credentials::session(&cookie, &csrf);
    let (status, _) = call(&server, &viewer, "GET", "/api/v1/lessons", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        call(
            &server,
            &viewer,
            "POST",
            "/api/v1/datasets",
            Some(json!({"name": "d"}))
        )
        .await
        .0,
        403
    );

    // Promote to reviewer: the same session may now write datasets.
    let (_, members) = server.get("/api/v1/members").await;
    let user_id = members["members"][0]["user_id"].as_i64().unwrap();
    let (status, changed) = server
        .put(
            &format!("/api/v1/members/{user_id}"),
            json!({"role": "reviewer"}),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["role"], "reviewer");
    assert_eq!(
        call(
            &server,
            &viewer,
            "POST",
            "/api/v1/datasets",
            Some(json!({"name": "d"}))
        )
        .await
        .0,
        201
    );
    // Removed: the session no longer reaches the project.
    assert_eq!(
        server.delete(&format!("/api/v1/members/{user_id}")).await.0,
        204
    );
    assert_error(
        &call(&server, &viewer, "GET", "/api/v1/lessons", None).await,
        403,
        "forbidden",
        None,
    );
    assert_error(
        &server
            .post(
                "/api/v1/members",
                json!({"email": "nobody@example.com", "role": "viewer"}),
            )
            .await,
        404,
        "user_not_found",
        Some("email"),
    );
    assert_error(
        &server.delete(&format!("/api/v1/members/{user_id}")).await,
        404,
        "member_not_found",
        None,
    );

    let (_, audit) = server.get("/api/v1/audit?limit=2").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["member.remove", "member.change"]);
    let cursor = audit["next_cursor"].as_str().unwrap();
    let (_, older) = server
        .get(&format!("/api/v1/audit?limit=2&cursor={cursor}"))
        .await;
    assert!(older["entries"].as_array().unwrap().len() <= 2);
    assert_error(
        &server.get("/api/v1/audit?limit=0").await,
        400,
        "invalid_query",
        Some("limit"),
    );
}

#[tokio::test]
async fn a_rotated_key_stops_at_once_and_its_successor_works() {
    let server = TestServer::start().await;
    let (id, old) = new_key(&server, "ingest", &[]).await;
    assert_eq!(server.get_as(&old, "/api/v1/project").await.0, 200);
    let (status, rotated) = server
        .post(&format!("/api/v1/keys/{id}/rotate"), json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap();
    assert_eq!(rotated["key"]["role"], "ingest");
    assert_ne!(rotated["key"]["id"], id);
    assert_eq!(server.get_as(&old, "/api/v1/project").await.0, 401);
    assert_eq!(server.get_as(new, "/api/v1/project").await.0, 200);
    assert_error(
        &server
            .post(&format!("/api/v1/keys/{id}/rotate"), json!({}))
            .await,
        409,
        "conflict",
        Some("id"),
    );
}

#[tokio::test]
async fn the_first_admin_comes_from_the_environment_once_and_names_its_project() {
    let server = TestServer::start().await;
    let env: std::collections::HashMap<String, String> = [
        ("FEEDLOOP_ADMIN_EMAIL", "Root@Example.com"),
        ("FEEDLOOP_ADMIN_PASSWORD", "a long enough password"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let first_admin = feedloop::cli::serve::first_admin;
    assert!(
        first_admin(server.store.as_ref(), &SystemClock, &env)
            .await
            .unwrap()
    );
    // Only while there is no account.
    assert!(
        !first_admin(server.store.as_ref(), &SystemClock, &env)
            .await
            .unwrap()
    );
    assert_eq!(server.store.count_users().await.unwrap(), 1);

    let (cookie, csrf) = login(&server, "root@example.com", "a long enough password").await;
    let session = Credentials::session(&cookie, &csrf);
    let (_, me) = call(&server, &session, "GET", "/api/v1/auth/me", None).await;
    assert_eq!(me["is_admin"], true);
    // A server admin is a member of nothing, so names the project.
    assert_error(
        &call(&server, &session, "GET", "/api/v1/traces", None).await,
        422,
        "invalid_field",
        Some("x-feedloop-project"),
    );
    let mut named = session.clone();
    named.headers.push(("x-feedloop-project", "default".into()));
    assert_eq!(
        call(&server, &named, "GET", "/api/v1/keys", None).await.0,
        200
    );
    let mut unknown = session.clone();
    unknown.headers.push(("x-feedloop-project", "nope".into()));
    assert_error(
        &call(&server, &unknown, "GET", "/api/v1/traces", None).await,
        403,
        "forbidden",
        Some("x-feedloop-project"),
    );
}

#[tokio::test]
async fn a_batch_over_the_item_limit_is_refused_whole() {
    let server = TestServer::start_with(ServerConfig {
        max_batch_items: 3,
        ..ServerConfig::default()
    })
    .await;
    let traces: Vec<Value> = (0..4).map(|i| json!({"id": format!("t{i}")})).collect();
    let answer = server.post("/api/v1/traces", json!(traces)).await;
    assert_eq!(answer.0, 413, "{}", answer.1);
    assert_eq!(answer.1["error"]["code"], "payload_too_large");
    let answer = server
        .post(
            "/api/v1/ingest",
            json!({"traces": traces[..2], "feedback": [
                {"id": "f0", "trace_id": "t0", "rating": {"value": 1}},
                {"id": "f1", "trace_id": "t1", "rating": {"value": 1}}]}),
        )
        .await;
    assert_eq!(answer.0, 413, "{}", answer.1);
    assert_eq!(server.counts().await, (0, 0));
    assert_eq!(
        server.post("/api/v1/traces", json!(traces[..3])).await.0,
        200
    );
}
