//! The OpenAI-compatible client against a real HTTP server on 127.0.0.1:0 standing in for the
//! upstream (axum): batching, ordering by `index`, the bearer key, and every way an answer can be
//! wrong.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use feedloop_embed::{EmbedError, Embedder, EmbedderConfig};
use serde_json::{Value, json};

/// How the fake upstream answers.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Correct answers, items in reverse order (their `index` says where they belong).
    Reversed,
    /// A status and a body instead of embeddings.
    Status(StatusCode, &'static str),
    /// Vectors one dimension short.
    ShortVectors,
    /// One item fewer than inputs.
    MissingItem,
    /// Every item claims index 0.
    DuplicateIndex,
    /// Not JSON.
    Garbage,
}

struct Upstream {
    behaviour: Behaviour,
    dimensions: usize,
    /// The body and the Authorization header of every request.
    requests: Mutex<Vec<(Value, Option<String>)>>,
}

/// The fake vector of a text: its length, then ones; not normalised, so the client must.
fn fake_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut vector = vec![1.0; dimensions];
    vector[0] = text.len() as f32;
    vector
}

async fn embeddings(
    State(upstream): State<Arc<Upstream>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let authorization = headers
        .get("authorization")
        .map(|value| value.to_str().unwrap().to_owned());
    upstream
        .requests
        .lock()
        .unwrap()
        .push((body.clone(), authorization));
    let inputs: Vec<String> = body["input"]
        .as_array()
        .unwrap()
        .iter()
        .map(|text| text.as_str().unwrap().to_owned())
        .collect();
    let dimensions = match upstream.behaviour {
        Behaviour::ShortVectors => upstream.dimensions - 1,
        _ => upstream.dimensions,
    };
    let mut data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let index = match upstream.behaviour {
                Behaviour::DuplicateIndex => 0,
                _ => index,
            };
            json!({"object": "embedding", "index": index, "embedding": fake_vector(text, dimensions)})
        })
        .collect();
    data.reverse();
    match upstream.behaviour {
        Behaviour::Status(status, body) => return (status, body).into_response(),
        Behaviour::MissingItem => {
            data.pop();
        }
        Behaviour::Garbage => return "<html>oops</html>".into_response(),
        _ => {}
    }
    Json(json!({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}}))
        .into_response()
}

/// Starts the fake upstream; returns it and its base url (`http://127.0.0.1:PORT/v1`).
async fn start_upstream(behaviour: Behaviour, dimensions: usize) -> (Arc<Upstream>, String) {
    let upstream = Arc::new(Upstream {
        behaviour,
        dimensions,
        requests: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/v1/embeddings", post(embeddings))
        .with_state(upstream.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (upstream, format!("http://{address}/v1"))
}

async fn client(
    base_url: &str,
    api_key: Option<&str>,
    dimensions: usize,
    batch_size: usize,
) -> Embedder {
    Embedder::from_config(&EmbedderConfig::OpenAi {
        base_url: base_url.to_owned(),
        model: "text-embedding-test".into(),
        api_key: api_key.map(str::to_owned),
        dimensions,
        batch_size,
    })
    .await
    .unwrap()
}

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| "x".repeat(i + 1)).collect()
}

#[tokio::test]
async fn vectors_come_back_in_input_order_across_batches() {
    let (upstream, base_url) = start_upstream(Behaviour::Reversed, 4).await;
    let embedder = client(&base_url, Some("sk-test"), 4, 2).await;
    assert_eq!(embedder.model_id(), "text-embedding-test");
    assert_eq!(embedder.dimensions(), 4);

    let vectors = embedder.embed(texts(5)).await.unwrap();

    assert_eq!(vectors.len(), 5);
    for (i, vector) in vectors.iter().enumerate() {
        let mut expected = fake_vector(&"x".repeat(i + 1), 4);
        let norm = expected.iter().map(|x| x * x).sum::<f32>().sqrt();
        expected.iter_mut().for_each(|x| *x /= norm);
        for (a, e) in vector.iter().zip(&expected) {
            assert!((a - e).abs() < 1e-6, "text {i}: {vector:?} vs {expected:?}");
        }
    }
    let requests = upstream.requests.lock().unwrap();
    let sizes: Vec<usize> = requests
        .iter()
        .map(|(body, _)| body["input"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, vec![2, 2, 1]);
    for (body, authorization) in requests.iter() {
        assert_eq!(body["model"], "text-embedding-test");
        assert_eq!(authorization.as_deref(), Some("Bearer sk-test"));
    }
}

#[tokio::test]
async fn no_key_sends_no_authorization_and_no_texts_send_no_request() {
    let (upstream, base_url) = start_upstream(Behaviour::Reversed, 4).await;
    let embedder = client(&base_url, None, 4, 8).await;
    assert!(embedder.embed(Vec::new()).await.unwrap().is_empty());
    embedder.embed(texts(1)).await.unwrap();
    let requests = upstream.requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].1, None);
}

#[tokio::test]
async fn bad_status_reports_status_and_body() {
    let (_, base_url) = start_upstream(
        Behaviour::Status(
            StatusCode::TOO_MANY_REQUESTS,
            "{\"error\": \"rate limited\"}",
        ),
        4,
    )
    .await;
    let err = client(&base_url, None, 4, 8)
        .await
        .embed(texts(2))
        .await
        .unwrap_err();
    match &err {
        EmbedError::UpstreamStatus { status, body, .. } => {
            assert_eq!(*status, 429);
            assert!(body.contains("rate limited"), "{body}");
        }
        other => panic!("unexpected error {other:?}"),
    }
    assert!(err.to_string().contains("answered 429"), "{err}");
}

#[tokio::test]
async fn wrong_dimensions_are_refused() {
    let (_, base_url) = start_upstream(Behaviour::ShortVectors, 4).await;
    let err = client(&base_url, None, 4, 8)
        .await
        .embed(texts(2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            EmbedError::WrongDimensions {
                expected: 4,
                actual: 3
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_count_is_refused() {
    let (_, base_url) = start_upstream(Behaviour::MissingItem, 4).await;
    let err = client(&base_url, None, 4, 8)
        .await
        .embed(texts(3))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("2 embeddings for 3 inputs"),
        "{err}"
    );
}

#[tokio::test]
async fn duplicate_indices_are_refused() {
    let (_, base_url) = start_upstream(Behaviour::DuplicateIndex, 4).await;
    let err = client(&base_url, None, 4, 8)
        .await
        .embed(texts(2))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("index 0 appears twice"), "{err}");
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused() {
    let (_, base_url) = start_upstream(Behaviour::Garbage, 4).await;
    let err = client(&base_url, None, 4, 8)
        .await
        .embed(texts(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EmbedError::UpstreamResponse { .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_unreachable_endpoint_says_so() {
    // Bind, then drop, to get a loopback port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let err = client(&format!("http://{address}/v1"), None, 4, 8)
        .await
        .embed(texts(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, EmbedError::UpstreamUnreachable { .. }),
        "{err:?}"
    );
}
