//! The feedback widget (`/widget.js`) on the demo page (`/demo`), in headless Chromium against
//! the real server: every feedback kind and every client signal the widget sends is stored
//! exactly (ranges in code points, texts, categories), a rating given offline arrives once when
//! the browser is back online, and leaving the page sends dwell and abandon as a beacon.
//! The Python side is `tests/python/widget_demo.py`; it also takes docs/screenshots/widget.png.

#![allow(clippy::unwrap_used)] // test code

mod common;

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::TestServer;
use common::python::run_script;

/// The code-point range of `part` in `text`, as the server counts ranges.
fn char_range(text: &str, part: &str) -> (u64, u64) {
    let byte_start = text.find(part).expect("part of the text");
    let start = text[..byte_start].chars().count() as u64;
    (start, start + part.chars().count() as u64)
}

async fn feedback_of(server: &TestServer, trace_id: &str) -> Vec<Value> {
    let (status, page) = server
        .get(&format!(
            "/api/v1/feedback?trace_id={trace_id}&limit=100&order=asc"
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

fn signals_of<'a>(items: &'a [Value], signal_type: &str) -> Vec<&'a Value> {
    items
        .iter()
        .filter(|item| item["kind"] == "signal" && item["signal"]["type"] == signal_type)
        .collect()
}

fn of_kind<'a>(items: &'a [Value], kind: &str) -> Vec<&'a Value> {
    items.iter().filter(|item| item["kind"] == kind).collect()
}

#[tokio::test]
async fn the_widget_on_the_demo_page_sends_every_kind_and_signal_and_they_are_stored_exactly() {
    let server = TestServer::start().await;
    // The screenshot goes to docs/screenshots/ (browser.py; FEEDLOOP_SCREENSHOTS elsewhere).
    drive_the_demo(&server, &server.base, vec![]).await;
}

/// An app's page is on its own origin: the widget's posts need CORS preflights, the taxonomy a
/// CORS read, and the beacon goes cross-origin.
#[tokio::test]
async fn the_widget_on_a_page_of_another_origin_works_through_cors_and_beacons() {
    let server = TestServer::start().await;
    let page_origin = app_server().await;
    assert_ne!(page_origin, server.base);
    let shots = server.dir.path().display().to_string();
    drive_the_demo(&server, &page_origin, vec![("FEEDLOOP_SCREENSHOTS", shots)]).await;
}

/// An app's own web server on another port (so another origin): it serves the files of
/// `crates/web/assets` as they are, the demo page included, without feedloop's CSP, as an app
/// that hosts the widget and the page would.
async fn app_server() -> String {
    use axum::http::{StatusCode, Uri, header};
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(|uri: Uri| async move {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../web/assets");
        let path = uri.path().trim_start_matches('/');
        let content_type = match path.rsplit_once('.').map(|(_, extension)| extension) {
            Some("html") => "text/html; charset=utf-8",
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("json") => "application/json",
            _ => "application/octet-stream",
        };
        match tokio::fs::read(format!("{dir}/{path}")).await {
            Ok(bytes) if !path.contains("..") => {
                ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
            }
            _ => StatusCode::NOT_FOUND.into_response(),
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Stores the demo's chat as traces, makes a public key for `page_origin`, lets
/// `widget_demo.py` use the widget on the demo page served from there, and checks what was
/// stored.
async fn drive_the_demo(server: &TestServer, page_origin: &str, env: Vec<(&str, String)>) {
    // The demo's own set-up step: its sample chat, as served, stored as traces.
    let chat: Value = server
        .http
        .get(format!("{}/demo/chat.json", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (status, stored) = server.post("/api/v1/traces", chat.clone()).await;
    assert_eq!(status, 200, "{stored}");
    let (status, created) = server
        .post(
            "/api/v1/keys",
            json!({"name": "demo", "role": "public", "allowed_origins": [page_origin]}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    let public_key = created["secret"].as_str().unwrap().to_owned();
    let output_1 = chat[0]["output"].as_str().unwrap();

    let run = run_script(
        "widget_demo.py",
        &[&server.base, &public_key, page_origin],
        env,
    )
    .await;

    // What the page showed and how it behaved. Without a key: the set-up steps, for this page's
    // origin.
    let setup = run["setup"].as_array().unwrap();
    assert!(
        setup[0].as_str().unwrap().contains(&format!(
            "{page_origin}/demo/chat.json | curl -s {page_origin}/api/v1/traces"
        )),
        "{setup:?}"
    );
    assert!(
        setup[1].as_str().unwrap().contains(&format!(
            r#""role": "public", "allowed_origins": ["{page_origin}"]"#
        )),
        "{setup:?}"
    );
    let (_, taxonomy) = server.get("/api/v1/taxonomy").await;
    let active: Vec<&Value> = taxonomy["categories"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|category| category["active"] == true)
        .map(|category| &category["name"])
        .collect();
    assert_eq!(active.len(), 8);
    assert_eq!(
        run["chips"],
        json!(active),
        "the reason chips are the project's taxonomy"
    );
    assert_eq!(run["panel_open"], true, "thumbs down opens the details");
    assert_eq!(run["focused_after_thumbs_down"], "factually_incorrect");
    assert_eq!(run["note_focused"], true);
    assert_eq!(
        run["keyboard"],
        json!({
            "expanded": "true", "focus": "factually_incorrect",
            "closed": true, "expanded_after": "false", "focus_after": "fl-more",
            "labels": [["Good answer", "false"], ["Bad answer", "false"]],
        }),
        "Details and Escape by keyboard, and what a screen reader is told"
    );
    assert_eq!(run["quote_shown"], "€5");
    assert_eq!(
        run["pressed"],
        json!(["false", "true"]),
        "thumbs down is pressed"
    );
    assert!(
        run["offline_status"]
            .as_str()
            .unwrap()
            .contains("connection is back"),
        "{run}"
    );
    assert!(run["online_status"].as_str().unwrap().contains("Thanks"));
    let console = run["console"].as_array().unwrap();
    // No script error, and nothing the page's Content-Security-Policy had to block.
    assert!(
        console.iter().all(|line| {
            let line = line.as_str().unwrap();
            !line.starts_with("pageerror") && !line.contains("Content Security Policy")
        }),
        "{console:?}"
    );
    assert!(
        std::path::Path::new(run["screenshot"].as_str().unwrap()).exists(),
        "the screenshot was taken"
    );

    // The beacon left with the page: its signals arrive (poll until they do).
    let deadline = Instant::now() + Duration::from_secs(30);
    let (items_1, items_2, items_3) = loop {
        let items_2 = feedback_of(server, "demo-2").await;
        if !signals_of(&items_2, "abandon").is_empty() || Instant::now() > deadline {
            break (
                feedback_of(server, "demo-1").await,
                items_2,
                feedback_of(server, "demo-3").await,
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // Answer 1: every explicit kind, exactly.
    let rating = of_kind(&items_1, "rating");
    assert_eq!(rating.len(), 1, "{items_1:?}");
    assert_eq!(
        rating[0]["rating"],
        json!({"value": 0.0, "min": 0.0, "max": 1.0})
    );
    let categories = of_kind(&items_1, "category");
    assert_eq!(categories.len(), 1);
    assert_eq!(
        categories[0]["categories"],
        json!(["factually_incorrect", "incomplete"])
    );
    let comment = of_kind(&items_1, "comment");
    assert_eq!(
        comment[0]["comment"],
        "It says nothing about the fee for a second card."
    );
    let correction = of_kind(&items_1, "correction");
    assert_eq!(
        correction[0]["correction"],
        json!({"text": "A replacement costs €7 since March; the first one each year is free.", "kind": "answer"})
    );
    // The answer starts with an emoji (two UTF-16 units, one code point): the range is the
    // server's, in code points.
    let (start, end) = char_range(output_1, "€5");
    let annotation = of_kind(&items_1, "annotation");
    assert_eq!(annotation.len(), 1, "{items_1:?}");
    assert_eq!(
        annotation[0]["annotation"],
        json!({"start": start, "end": end, "quote": "€5", "comment": "The fee is €7 since March."})
    );

    // Answer 1: the client signals.
    let (start, end) = char_range(output_1, "Your first replacement each year is free.");
    let copy = signals_of(&items_1, "copy");
    assert_eq!(copy.len(), 1, "{items_1:?}");
    assert_eq!(
        copy[0]["signal"],
        json!({"type": "copy", "value": (end - start) as f64, "details": {"start": start, "end": end}})
    );
    for hook in ["regenerate", "share"] {
        let signal = signals_of(&items_1, hook);
        assert_eq!(signal.len(), 1, "{hook}: {items_1:?}");
        assert_eq!(signal[0]["signal"], json!({"type": hook}));
    }
    // The generic hook: rephrase and frustration, with the app's details.
    assert_eq!(
        signals_of(&items_1, "rephrase")[0]["signal"],
        json!({"type": "rephrase"})
    );
    assert_eq!(
        signals_of(&items_1, "frustration")[0]["signal"],
        json!({"type": "frustration", "details": {"clicks": 3}})
    );
    let edit = signals_of(&items_1, "edit");
    assert_eq!(
        edit[0]["signal"]["details"],
        json!({"edited_text": "A replacement costs €7. The first one each year is free."})
    );
    assert!(
        signals_of(&items_1, "abandon").is_empty(),
        "an answer the user engaged with is not abandoned"
    );

    // Answer 2, untouched: abandoned when the page went away, with its dwell time.
    let abandon = signals_of(&items_2, "abandon");
    assert_eq!(abandon.len(), 1, "{items_2:?}");
    assert_eq!(
        abandon[0]["signal"],
        json!({"type": "abandon", "details": {"before_complete": false}})
    );
    assert_eq!(items_2.len(), 2, "abandon and dwell only: {items_2:?}");

    // Answer 3: thumbs up, then down, given offline: each stored exactly once, in the order
    // given, so the later judgement supersedes the earlier one.
    assert_eq!(items_3.len(), 3, "two ratings and one dwell: {items_3:?}");
    let offline = run["offline_queue"].as_array().unwrap();
    let offline_ids: Vec<&Value> = offline.iter().map(|item| &item["body"]["id"]).collect();
    let ratings = of_kind(&items_3, "rating");
    let rating_ids: Vec<&Value> = ratings.iter().map(|item| &item["id"]).collect();
    assert_eq!(rating_ids, offline_ids, "stored once each, in order");
    assert_eq!(ratings[0]["rating"]["value"], 1.0);
    assert_eq!(ratings[1]["rating"]["value"], 0.0);
    assert_eq!(ratings[0]["superseded_by"], ratings[1]["id"]);
    assert!(ratings[1].get("superseded_by").is_none());

    // Every answer was on screen: each has one dwell signal, a positive number of milliseconds.
    for items in [&items_1, &items_2, &items_3] {
        let dwell = signals_of(items, "dwell");
        assert_eq!(dwell.len(), 1, "{items:?}");
        assert!(dwell[0]["signal"]["value"].as_f64().unwrap() > 0.0);
    }

    // Everything stored is what the page sent, field by field, and everything is the end user's.
    // (The beacon's signals only ever reach the server by the beacon: the page that read them
    // back from the widget's queue does not load the widget.)
    let mut sent: BTreeMap<String, Value> = BTreeMap::new();
    for post in run["posted"].as_array().unwrap() {
        let body: Value = serde_json::from_str(post["body"].as_str().unwrap()).unwrap();
        sent.insert(body["id"].as_str().unwrap().to_owned(), body);
    }
    let left = run["left"].as_array().unwrap();
    assert_eq!(left.len(), 4, "three dwell times and one abandon: {left:?}");
    for body in left {
        sent.insert(body["id"].as_str().unwrap().to_owned(), body.clone());
    }
    let all: Vec<&Value> = items_1.iter().chain(&items_2).chain(&items_3).collect();
    assert_eq!(all.len(), sent.len(), "stored: {all:?}\nsent: {sent:?}");
    for item in all {
        let body = &sent[item["id"].as_str().unwrap()];
        assert_eq!(item["source"], "end_user");
        assert_eq!(item["session_id"], "demo");
        assert_eq!(item["author"], body["author"]);
        assert!(item["trace_linked"].as_bool().unwrap());
        match item["kind"].as_str().unwrap() {
            "signal" => {
                assert_eq!(item["signal"]["type"], body["type"]);
                if let Some(value) = body.get("value") {
                    assert_eq!(item["signal"]["value"].as_f64(), value.as_f64(), "{item}");
                }
            }
            "category" => assert_eq!(item["categories"], body["categories"]),
            "rating" => assert_eq!(
                item["rating"]["value"].as_f64(),
                body["rating"]["value"].as_f64()
            ),
            kind => assert_eq!(item[kind], body[kind], "{item} vs {body}"),
        }
    }
}
