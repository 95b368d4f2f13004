//! PostgreSQL going away: requests fail fast with 503, nothing acknowledged is lost, and the
//! server recovers by itself. The database is cut off by a TCP proxy on loopback, so the test
//! disturbs no other test's connections. Always runs on PostgreSQL.

use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::common::TestServer;
use crate::common::database::TestDatabase;

/// Forwards loopback connections to PostgreSQL until cut.
struct Proxy {
    addr: String,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(Mutex::new(Vec::new()));
        let (cut_flag, open) = (cut.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if cut_flag.load(Ordering::SeqCst) {
                    continue; // dropped: the connection closes at once
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                open.lock().unwrap().push(task.abort_handle());
            }
        });
        Self {
            addr,
            cut,
            connections,
        }
    }

    /// Closes every open connection and refuses new ones.
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn losing_postgres_gives_503s_loses_nothing_acknowledged_and_recovers() {
    let database = TestDatabase::create_postgres().await;
    let proxy = Proxy::start("127.0.0.1:5432".into()).await;
    let url = database.url_through(&proxy.addr);
    let server = TestServer::start_on(database, Some(url), Default::default()).await;
    server
        .post(
            "/api/v1/traces",
            json!({"id": "t", "input": "q", "output": "a"}),
        )
        .await;

    let mut acknowledged = Vec::new();
    let mut unavailable = 0;
    let mut other_failures = Vec::new();
    for round in 0..3 {
        if round == 1 {
            proxy.cut();
        }
        if round == 2 {
            proxy.restore();
        }
        for i in 0..40 {
            let id = format!("f-{round}-{i}");
            let (status, body) = server
                .post(
                    "/api/v1/feedback",
                    json!({"id": id, "trace_id": "t", "rating": {"value": 1}}),
                )
                .await;
            match status.as_u16() {
                200 => acknowledged.push(id),
                503 => {
                    assert_eq!(body["error"]["code"], "unavailable", "{body}");
                    unavailable += 1;
                }
                _ => other_failures.push((status, body)),
            }
        }
    }
    assert!(other_failures.is_empty(), "{other_failures:?}");
    assert!(
        unavailable >= 30,
        "writes while cut off should fail with 503: {unavailable}"
    );
    assert!(
        acknowledged.iter().any(|id| id.starts_with("f-2-")),
        "the server recovered"
    );
    assert!(acknowledged.iter().any(|id| id.starts_with("f-0-")));

    // Every acknowledged write is stored (read through a direct connection, not the proxy).
    let direct = feedloop_store::open(&server.database.url, &Default::default())
        .await
        .unwrap();
    let project = direct.project_by_name("default").await.unwrap().unwrap().id;
    let page = feedloop_core::filter::PageRequest {
        limit: 1000,
        ..Default::default()
    };
    let stored = direct
        .list_feedback(project, &Default::default(), page)
        .await
        .unwrap();
    let stored: std::collections::BTreeSet<String> = stored
        .items
        .into_iter()
        .map(|f| f.feedback.id.into_string())
        .collect();
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged {id} is not stored");
    }
}
