//! The browser side served by the binary: the embedded files with their content types, ETags
//! (304 on a match), gzip when asked for, a strict CSP on pages, and nothing outside the tree.

use std::io::Read;

use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
};

use crate::common::{TestServer, assert_error};

fn asset(path: &str) -> Vec<u8> {
    let path = format!("{}/../web/assets/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn the_widget_and_the_pages_are_served_with_caching_and_compression() {
    let server = TestServer::start().await;
    let url = |path: &str| format!("{}{path}", server.base);

    let plain = server.http.get(url("/widget.js")).send().await.unwrap();
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(
        plain.headers()[CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert!(plain.headers().get(CONTENT_ENCODING).is_none());
    let etag = plain.headers()[ETAG].clone();
    assert_eq!(plain.bytes().await.unwrap(), asset("widget.js"));

    let compressed = server
        .http
        .get(url("/widget.js"))
        .header(ACCEPT_ENCODING, "br;q=1.0, gzip;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(compressed.headers()[CONTENT_ENCODING], "gzip");
    assert_eq!(compressed.headers()[ETAG], etag);
    let gzip = compressed.bytes().await.unwrap();
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&gzip[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, asset("widget.js"));
    assert!(gzip.len() < unpacked.len() / 2, "{} bytes", gzip.len());

    let refused = server
        .http
        .get(url("/widget.js"))
        .header(ACCEPT_ENCODING, "gzip;q=0")
        .send()
        .await
        .unwrap();
    assert!(refused.headers().get(CONTENT_ENCODING).is_none());

    let again = server
        .http
        .get(url("/widget.js"))
        .header(IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());
    let stale = server
        .http
        .get(url("/widget.js"))
        .header(IF_NONE_MATCH, "\"0000\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::OK);

    let demo = server.http.get(url("/demo")).send().await.unwrap();
    assert_eq!(demo.status(), StatusCode::OK);
    assert_eq!(demo.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    let policy = demo.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert_eq!(demo.bytes().await.unwrap(), asset("demo.html"));

    // Scripts are not pages: no CSP of their own (they run under the embedding page's).
    let script = server.http.head(url("/widget.js")).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(script.headers().get(CONTENT_SECURITY_POLICY).is_none());
}

#[tokio::test]
async fn paths_without_a_file_or_outside_the_tree_are_json_404s() {
    let server = TestServer::start().await;
    for path in [
        "/nothing-here.js",
        "/demo/../../Cargo.toml",
        "/demo/%2e%2e/%2e%2e/Cargo.toml",
        "/demo//chat.json",
        "/api/v1/no-such-route",
    ] {
        let answer = server.get(path).await;
        assert_error(&answer, 404, "route_not_found", None);
    }
    // Only GET and HEAD read files.
    let posted = server
        .http
        .post(format!("{}/widget.js", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::NOT_FOUND);
}
