//! Rephrase detection on real user queries (Banking77, the real all-MiniLM-L6-v2): pairs of the
//! same intent must be found as rephrases and pairs of different intents must not. The floors
//! are the figures measured on this subset at the default threshold (see BENCHMARKS.md) minus a
//! small margin, so a regression fails.

#![allow(clippy::unwrap_used)] // test code

mod eval;

use feedloop_core::signals::settings::DEFAULT_REPHRASE_MIN_SIMILARITY;

/// Test queries per intent (77 intents): 5 rephrase pairs and 5 topic changes per intent.
const PER_INTENT: usize = 10;

/// Measured at the default threshold 0.55 on these 770 pairs.
const PRECISION: f64 = 0.949;
const RECALL: f64 = 0.638;
const F1: f64 = 0.763;
const MARGIN: f64 = 0.03;

#[tokio::test]
async fn rephrases_are_told_from_topic_changes_on_banking77() {
    let intents = eval::load(&eval::fixtures().join("test.csv"), PER_INTENT);
    assert_eq!(intents.len(), 77);
    let (texts, pairs) = eval::pairs(&intents);
    let embedder = eval::minilm().await;
    let vectors = eval::embed_all(&embedder, &texts).await;
    for threshold in [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75] {
        println!("{:?}", eval::score(&texts, &vectors, &pairs, threshold));
    }
    let scores = eval::score(&texts, &vectors, &pairs, DEFAULT_REPHRASE_MIN_SIMILARITY);
    println!(
        "at the default threshold: {scores:?} on {} pairs",
        pairs.len()
    );
    assert!(scores.precision >= PRECISION - MARGIN, "{scores:?}");
    assert!(scores.recall >= RECALL - MARGIN, "{scores:?}");
    assert!(scores.f1 >= F1 - MARGIN, "{scores:?}");
}
