//! `feedloop import`: send records to a running server in batches, with a progress bar. The
//! import is idempotent (every record has an id; records without one get an id derived from their
//! content) and resumable: a progress file beside the input remembers how many records were
//! acknowledged, and a rerun starts after them.

use anyhow::Context;
use clap::{Args, ValueEnum};
use feedloop_server::wire::{IngestBody, IngestReceiptBody, Record};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ServerArgs;
use crate::client::{Client, ClientError};
use crate::import::{jsonl, qa_feedback};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    /// feedloop JSONL: one {"type": "trace" | "feedback", …} object per line (as `export` writes).
    Jsonl,
    /// Fine-Grained RLHF qa-feedback JSON (dev_feedback.json or a sample of it).
    QaFeedback,
    /// The LLMFAO directory (prompts.jsonl, models.jsonl, results.jsonl, crowd-comparisons.csv).
    Llmfao,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The file (or, for llmfao, the directory) to import.
    #[arg(env = "FEEDLOOP_IMPORT_PATH")]
    pub path: PathBuf,
    /// What the input is.
    #[arg(
        long,
        env = "FEEDLOOP_IMPORT_FORMAT",
        value_enum,
        default_value = "jsonl"
    )]
    pub format: ImportFormat,
    /// Records per request.
    #[arg(long, env = "FEEDLOOP_IMPORT_BATCH_SIZE", default_value_t = 500)]
    pub batch_size: usize,
    /// Ignore the progress file and start from the first record.
    #[arg(long, env = "FEEDLOOP_IMPORT_RESTART")]
    pub restart: bool,
}

/// What an import did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportSummary {
    pub records: usize,
    pub skipped: usize,
    pub created: usize,
    pub merged: usize,
    pub duplicates: usize,
}

pub async fn run(args: ImportArgs) -> anyhow::Result<()> {
    crate::logging::init(crate::config::LogFormat::Text);
    let summary = import(&args).await?;
    eprintln!(
        "imported {} records ({} skipped as already done): {} created, {} merged, {} already stored",
        summary.records, summary.skipped, summary.created, summary.merged, summary.duplicates
    );
    Ok(())
}

pub async fn import(args: &ImportArgs) -> anyhow::Result<ImportSummary> {
    anyhow::ensure!(args.batch_size > 0, "--batch-size must be at least 1");
    let client = Client::new(&args.server.server, &args.server.api_key);
    let (path, format) = (args.path.clone(), args.format);
    let records = tokio::task::spawn_blocking(move || read_records(&path, format)).await??;
    if format == ImportFormat::QaFeedback {
        for name in qa_feedback::ERROR_CATEGORIES {
            let body = serde_json::json!({"name": name, "description": "qa-feedback error type"});
            let _: serde_json::Value = client.post("/api/v1/taxonomy/categories", &body).await?;
        }
    }
    let progress_path = progress_file(&args.path);
    let done = if args.restart {
        0
    } else {
        read_progress(&progress_path).min(records.len())
    };
    let bar = ProgressBar::new(records.len() as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} records  {per_sec}  eta {eta}")
            .expect("the template is valid"),
    );
    bar.set_position(done as u64);
    let mut summary = ImportSummary {
        records: records.len(),
        skipped: done,
        ..Default::default()
    };
    let mut acknowledged = done;
    for chunk in records[done..].chunks(args.batch_size) {
        let mut body = IngestBody::default();
        for record in chunk {
            match record.clone() {
                Record::Trace(trace) => body.traces.push(trace),
                Record::Feedback(feedback) => body.feedback.push(feedback),
            }
        }
        let receipt = send_with_retry(&client, &body).await?;
        for item in receipt.traces.iter().chain(&receipt.feedback) {
            match item.status {
                feedloop_server::wire::ItemStatus::Created => summary.created += 1,
                feedloop_server::wire::ItemStatus::Merged => summary.merged += 1,
                feedloop_server::wire::ItemStatus::Duplicate => summary.duplicates += 1,
            }
        }
        acknowledged += chunk.len();
        std::fs::write(&progress_path, acknowledged.to_string())
            .with_context(|| format!("cannot write {}", progress_path.display()))?;
        bar.set_position(acknowledged as u64);
    }
    bar.finish_and_clear();
    let _ = std::fs::remove_file(&progress_path);
    Ok(summary)
}

/// Retries transient failures (server restarting, overloaded) with backoff; the batch is
/// idempotent, so a retry after a lost answer stores nothing twice.
async fn send_with_retry(client: &Client, body: &IngestBody) -> anyhow::Result<IngestReceiptBody> {
    let mut delay = Duration::from_millis(200);
    for attempt in 1.. {
        match client
            .post::<_, IngestReceiptBody>("/api/v1/ingest", body)
            .await
        {
            Ok(receipt) => return Ok(receipt),
            Err(error) if error.is_transient() && attempt < 8 => {
                tracing::warn!(%error, attempt, "import batch failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Err(error @ ClientError::Api { .. }) => return Err(error.into()),
            Err(error) => return Err(error.into()),
        }
    }
    unreachable!("the loop returns")
}

fn progress_file(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".import-progress");
    path.with_file_name(name)
}

fn read_progress(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads and maps the input; JSONL records without an id get one derived from their line.
pub fn read_records(path: &Path, format: ImportFormat) -> anyhow::Result<Vec<Record>> {
    Ok(match format {
        ImportFormat::QaFeedback => crate::import::read_qa_feedback(path)?,
        ImportFormat::Llmfao => crate::import::read_llmfao(path)?,
        ImportFormat::Jsonl => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let mut records: Vec<Record> = jsonl::parse_lines(&text)?;
            for (record, line) in records
                .iter_mut()
                .zip(text.lines().filter(|l| !l.trim().is_empty()))
            {
                let id = || format!("imp_{}", &hex(&Sha256::digest(line.as_bytes()))[..24]);
                match record {
                    Record::Trace(trace) if trace.id.is_none() => trace.id = Some(id()),
                    Record::Feedback(feedback) if feedback.id.is_none() => feedback.id = Some(id()),
                    Record::Trace(_) | Record::Feedback(_) => {}
                }
            }
            records
        }
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
