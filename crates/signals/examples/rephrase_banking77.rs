//! The rephrase-detection evaluation on more of Banking77 than the test uses, with a threshold
//! sweep, for BENCHMARKS.md (see `tests/eval/mod.rs` for how pairs are made and judged):
//!
//!     cargo run --release -p feedloop-signals --example rephrase_banking77 -- 40

#![allow(clippy::unwrap_used)] // an evaluation script

#[path = "../tests/eval/mod.rs"]
mod eval;

#[tokio::main]
async fn main() {
    let per_intent: usize = std::env::args()
        .nth(1)
        .map_or(40, |n| n.parse().expect("queries per intent"));
    let intents = eval::load(&eval::fixtures().join("test.csv"), per_intent);
    let (texts, pairs) = eval::pairs(&intents);
    let embedder = eval::minilm().await;
    let began = std::time::Instant::now();
    let vectors = eval::embed_all(&embedder, &texts).await;
    println!(
        "{} queries embedded in {:.1?}; {} pairs ({} rephrases)",
        texts.len(),
        began.elapsed(),
        pairs.len(),
        pairs.iter().filter(|p| p.rephrase).count()
    );
    println!("threshold precision recall f1");
    for step in 0..=10 {
        let threshold = 0.35 + 0.05 * f64::from(step);
        let s = eval::score(&texts, &vectors, &pairs, threshold);
        println!(
            "{:.2} {:.3} {:.3} {:.3}",
            s.threshold, s.precision, s.recall, s.f1
        );
    }
}
