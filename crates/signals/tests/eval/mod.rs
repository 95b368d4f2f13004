//! The rephrase-detection evaluation on Banking77 (fixtures/banking77): two queries of the same
//! intent stand for a rephrase, two of different intents for a topic change. Each pair is
//! judged by the real rule (`judge_pair`: similarity of the real MiniLM vectors against the
//! threshold, and the continuation check) as consecutive queries of one session, a minute
//! apart. Shared by `tests/rephrase_banking77.rs` (asserts) and
//! `examples/rephrase_banking77.rs` (a threshold sweep on more pairs, for BENCHMARKS.md).

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use feedloop_core::signals::RuleSettings;
use feedloop_core::signals::rules::{DerivedRule, Turn, judge_pair};
use feedloop_core::{Timestamp, TraceId};
use feedloop_embed::{Embedder, EmbedderConfig};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/banking77")
}

/// The first `per_intent` queries of each intent of a `text,category` file, grouped by intent
/// (intents in file order).
pub fn load(path: &Path, per_intent: usize) -> Vec<(String, Vec<String>)> {
    let mut by_intent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut order = Vec::new();
    for row in csv::Reader::from_path(path).unwrap().records() {
        let row = row.unwrap();
        let (text, intent) = (row[0].to_owned(), row[1].to_owned());
        let queries = by_intent.entry(intent.clone()).or_insert_with(|| {
            order.push(intent.clone());
            Vec::new()
        });
        if queries.len() < per_intent {
            queries.push(text);
        }
    }
    order
        .into_iter()
        .map(|intent| {
            let queries = by_intent.remove(&intent).unwrap();
            (intent, queries)
        })
        .collect()
}

/// A pair of consecutive queries and whether it is a rephrase.
pub struct Pair {
    pub first: usize,
    pub second: usize,
    pub rephrase: bool,
}

/// Texts (flattened) and pairs: within each intent, queries 0–1, 2–3, … are rephrases; query i
/// of intent k followed by query i of intent k + 1 + (i mod 7) is a topic change, as many as
/// there are rephrases.
pub fn pairs(intents: &[(String, Vec<String>)]) -> (Vec<String>, Vec<Pair>) {
    let mut texts = Vec::new();
    let mut start = Vec::new();
    for (_, queries) in intents {
        start.push(texts.len());
        texts.extend(queries.iter().cloned());
    }
    let mut pairs = Vec::new();
    for (k, (_, queries)) in intents.iter().enumerate() {
        for i in (0..queries.len().saturating_sub(1)).step_by(2) {
            pairs.push(Pair {
                first: start[k] + i,
                second: start[k] + i + 1,
                rephrase: true,
            });
            let other = (k + 1 + i % 7) % intents.len();
            let j = i.min(intents[other].1.len() - 1);
            pairs.push(Pair {
                first: start[k] + i,
                second: start[other] + j,
                rephrase: false,
            });
        }
    }
    (texts, pairs)
}

pub async fn minilm() -> Embedder {
    let model_dir = tokio::task::spawn_blocking(feedloop_embed::model::ensure_test_model)
        .await
        .unwrap();
    Embedder::from_config(&EmbedderConfig::Local {
        model_dir,
        threads: 1,
    })
    .await
    .unwrap()
}

pub async fn embed_all(embedder: &Embedder, texts: &[String]) -> Vec<Vec<f32>> {
    let mut vectors = Vec::with_capacity(texts.len());
    for chunk in texts.chunks(32) {
        vectors.extend(embedder.embed(chunk.to_vec()).await.unwrap());
    }
    vectors
}

/// Precision, recall and F1 of the rephrase rule at one threshold.
#[derive(Debug, Clone, Copy)]
pub struct Scores {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

pub fn score(texts: &[String], vectors: &[Vec<f32>], pairs: &[Pair], threshold: f64) -> Scores {
    let rules = RuleSettings {
        rephrase_min_similarity: threshold,
        ..RuleSettings::default()
    };
    let (a, b) = (
        TraceId::parse("id", "a").unwrap(),
        TraceId::parse("id", "b").unwrap(),
    );
    let start = Timestamp::from_second(1_800_000_000).unwrap();
    let later = Timestamp::from_second(1_800_000_060).unwrap();
    let (mut tp, mut fp, mut fn_) = (0f64, 0f64, 0f64);
    for pair in pairs {
        let similarity: f32 = vectors[pair.first]
            .iter()
            .zip(&vectors[pair.second])
            .map(|(x, y)| x * y)
            .sum();
        let found = judge_pair(
            Turn {
                trace_id: &a,
                input: &texts[pair.first],
                started_at: start,
            },
            Turn {
                trace_id: &b,
                input: &texts[pair.second],
                started_at: later,
            },
            Some(similarity),
            &rules,
        )
        .iter()
        // The same text twice is a regenerate, which also says "not served"; count it as found.
        .any(|f| matches!(f.rule, DerivedRule::Rephrase | DerivedRule::Regenerate));
        match (found, pair.rephrase) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
            (false, false) => {}
        }
    }
    let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
    let recall = tp / (tp + fn_);
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else {
        0.0
    };
    Scores {
        threshold,
        precision,
        recall,
        f1,
    }
}
