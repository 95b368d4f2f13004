//! Sentences per second of the local MiniLM embedder at given batch sizes, on real queries.
//!
//! ```text
//! cargo run --release -p feedloop-embed --example embed_throughput -- \
//!     [--data ../shared/data/banking77/test.csv] [--sentences 512] [--threads 1] [--batches 1,8,32] \
//!     [--model-dir DIR]
//! ```
//!
//! Texts are taken in file order and sent in consecutive chunks of the batch size, one call at a
//! time, as a server would send a request's texts. Prints one JSON line per batch size.
//! `scripts/embed_throughput.py` runs this beside sentence-transformers on the same sentences.

use std::path::PathBuf;
use std::time::Instant;

use feedloop_embed::{Embedder, EmbedderConfig, model};

struct Args {
    data: PathBuf,
    num_sentences: usize,
    threads: usize,
    batches: Vec<usize>,
    model_dir: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        data: PathBuf::from("../shared/data/banking77/test.csv"),
        num_sentences: 512,
        threads: 1,
        batches: vec![1, 8, 32],
        model_dir: None,
    };
    let mut iter = std::env::args().skip(1);
    while let Some(flag) = iter.next() {
        let value = iter.next().ok_or(format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|err| format!("{flag}: {err}"))
        };
        match flag.as_str() {
            "--data" => args.data = PathBuf::from(&value),
            "--sentences" => args.num_sentences = number()?,
            "--threads" => args.threads = number()?,
            "--model-dir" => args.model_dir = Some(PathBuf::from(&value)),
            "--batches" => {
                args.batches = value
                    .split(',')
                    .map(|b| {
                        b.trim()
                            .parse::<usize>()
                            .map_err(|err| format!("{flag}: {err}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

/// The `text` column of a `text,category` CSV file (quoted fields with `""` escapes).
fn read_texts(path: &PathBuf, limit: usize) -> Result<Vec<String>, String> {
    let content =
        std::fs::read_to_string(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let mut texts = Vec::new();
    for line in content.lines().skip(1) {
        if texts.len() == limit {
            break;
        }
        let text = if let Some(rest) = line.strip_prefix('"') {
            let mut text = String::new();
            let mut chars = rest.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '"' {
                    if chars.peek() == Some(&'"') {
                        chars.next();
                        text.push('"');
                    } else {
                        break;
                    }
                } else {
                    text.push(c);
                }
            }
            text
        } else {
            match line.rsplit_once(',') {
                Some((text, _)) => text.to_owned(),
                None => continue,
            }
        };
        texts.push(text);
    }
    Ok(texts)
}

/// User + system CPU time of the whole process so far (Linux: `/proc/self/stat`, in clock ticks
/// of 10 ms), so a busy machine can be told from a slow embedder; NaN elsewhere.
fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = |index: usize| fields.get(index).and_then(|v| v.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => (user + system) / 100.0,
        _ => f64::NAN,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let args = parse_args()?;
    let texts = read_texts(&args.data, args.num_sentences)?;
    let model_dir = args.model_dir.unwrap_or_else(model::ensure_test_model);
    let embedder = Embedder::from_config(&EmbedderConfig::Local {
        model_dir,
        threads: args.threads,
    })
    .await
    .map_err(|err| err.to_string())?;

    // Warm up: page in the weights, start the threads.
    for chunk in texts.chunks(32).take(2) {
        embedder
            .embed(chunk.to_vec())
            .await
            .map_err(|err| err.to_string())?;
    }
    for &batch in &args.batches {
        let cpu_started = process_cpu_seconds();
        let started = Instant::now();
        for chunk in texts.chunks(batch.max(1)) {
            embedder
                .embed(chunk.to_vec())
                .await
                .map_err(|err| err.to_string())?;
        }
        let seconds = started.elapsed().as_secs_f64();
        let cpu_seconds = process_cpu_seconds() - cpu_started;
        println!(
            "{{\"impl\": \"feedloop-candle\", \"threads\": {}, \"batch\": {batch}, \"sentences\": {}, \"seconds\": {seconds:.3}, \"per_sec\": {:.1}, \"cpu_seconds\": {cpu_seconds:.3}, \"per_cpu_sec\": {:.1}}}",
            args.threads,
            texts.len(),
            texts.len() as f64 / seconds,
            texts.len() as f64 / cpu_seconds,
        );
    }
    Ok(())
}
