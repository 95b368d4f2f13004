//! Retrieval quality on Banking77 (fixtures/banking77): index the train queries, search with the
//! test queries, and score nearest-neighbour intent accuracy @1 and @5, for the embedder through
//! the vector index and for a BM25 baseline. Shared by `tests/banking77.rs` (a subset, in CI) and
//! `examples/banking77.rs` (the full set, for BENCHMARKS.md).

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;

use feedloop_embed::Embedder;
use feedloop_vector::VectorIndex;

/// A labelled query.
#[derive(Debug, Clone)]
pub struct Query {
    pub text: String,
    pub intent: String,
}

/// The rows of a `text,category` CSV file; `per_intent` keeps the first n of each intent.
pub fn load(path: &Path, per_intent: Option<usize>) -> Vec<Query> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut queries = Vec::new();
    for row in csv::Reader::from_path(path).unwrap().records() {
        let row = row.unwrap();
        let (text, intent) = (row[0].to_owned(), row[1].to_owned());
        let count = seen.entry(intent.clone()).or_default();
        if per_intent.is_some_and(|n| *count >= n) {
            continue;
        }
        *count += 1;
        queries.push(Query { text, intent });
    }
    queries
}

/// Accuracy of the nearest neighbour's intent (@1) and of any of the five nearest (@5).
#[derive(Debug, Clone, Copy)]
pub struct Scores {
    pub at_1: f64,
    pub at_5: f64,
}

fn score(train: &[Query], test: &[Query], neighbours: &[Vec<usize>]) -> Scores {
    let (mut at_1, mut at_5) = (0usize, 0usize);
    for (query, found) in test.iter().zip(neighbours) {
        if found
            .first()
            .is_some_and(|&i| train[i].intent == query.intent)
        {
            at_1 += 1;
        }
        if found
            .iter()
            .take(5)
            .any(|&i| train[i].intent == query.intent)
        {
            at_5 += 1;
        }
    }
    let n = test.len() as f64;
    Scores {
        at_1: at_1 as f64 / n,
        at_5: at_5 as f64 / n,
    }
}

async fn embed_all(embedder: &Embedder, queries: &[Query]) -> Vec<Vec<f32>> {
    let mut vectors = Vec::with_capacity(queries.len());
    for chunk in queries.chunks(64) {
        let texts = chunk.iter().map(|q| q.text.clone()).collect();
        vectors.extend(embedder.embed(texts).await.unwrap());
    }
    vectors
}

/// The embedder's scores, searching through the vector index.
pub async fn embedder_scores(embedder: &Embedder, train: &[Query], test: &[Query]) -> Scores {
    let index = VectorIndex::new(embedder.dimensions()).unwrap();
    let train_vectors = embed_all(embedder, train).await;
    let items: Vec<(u64, Vec<f32>)> = train_vectors
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i as u64, v))
        .collect();
    index.upsert_many(&items).unwrap();
    let test_vectors = embed_all(embedder, test).await;
    let neighbours: Vec<Vec<usize>> = test_vectors
        .iter()
        .map(|v| {
            index
                .search(v, 5)
                .unwrap()
                .into_iter()
                .map(|n| n.key as usize)
                .collect()
        })
        .collect();
    score(train, test, &neighbours)
}

/// Okapi BM25 (k1 = 1.2, b = 0.75) over lower-cased alphanumeric words.
pub fn bm25_scores(train: &[Query], test: &[Query]) -> Scores {
    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    }
    let docs: Vec<Vec<String>> = train.iter().map(|q| words(&q.text)).collect();
    let num_docs = docs.len() as f64;
    let average_len = docs.iter().map(Vec::len).sum::<usize>() as f64 / num_docs;
    let mut postings: HashMap<&str, Vec<(usize, f64)>> = HashMap::new();
    for (doc, terms) in docs.iter().enumerate() {
        let mut counts: HashMap<&str, f64> = HashMap::new();
        for term in terms {
            *counts.entry(term).or_default() += 1.0;
        }
        for (term, count) in counts {
            postings.entry(term).or_default().push((doc, count));
        }
    }
    let (k1, b) = (1.2, 0.75);
    let neighbours: Vec<Vec<usize>> = test
        .iter()
        .map(|query| {
            let mut scores: HashMap<usize, f64> = HashMap::new();
            for term in words(&query.text) {
                let Some(list) = postings.get(term.as_str()) else {
                    continue;
                };
                let df = list.len() as f64;
                let idf = ((num_docs - df + 0.5) / (df + 0.5) + 1.0).ln();
                for &(doc, tf) in list {
                    let len = docs[doc].len() as f64;
                    let weight = tf * (k1 + 1.0) / (tf + k1 * (1.0 - b + b * len / average_len));
                    *scores.entry(doc).or_default() += idf * weight;
                }
            }
            let mut ranked: Vec<(usize, f64)> = scores.into_iter().collect();
            ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            ranked.into_iter().take(5).map(|(doc, _)| doc).collect()
        })
        .collect();
    score(train, test, &neighbours)
}

/// The fixture folder.
pub fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/banking77")
}
