//! `feedloop datasets`: list and create datasets on a running server, and export one for
//! fine-tuning into a folder (`train.jsonl`, `validation.jsonl`, `manifest.json`; `.csv` files
//! for CSV), with a line count on stderr as the export streams.

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::ServerArgs;
use crate::client::Client;

#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// List the project's datasets with their sizes and latest versions.
    List(ListArgs),
    /// Create a dataset.
    Create(CreateArgs),
    /// Export a dataset into a folder: train and validation files and a manifest.
    Export(DatasetExportArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The dataset's name (letters, digits, `_`, `-`, `.`).
    pub name: String,
    #[arg(long)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// OpenAI chat fine-tuning: {"messages": [system?, user, assistant]}.
    Openai,
    /// Supervised fine-tuning with the whole stored conversation: {"messages": [...]}.
    Sft,
    /// Preference pairs for DPO: {"prompt", "chosen", "rejected"}.
    Preference,
    Csv,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Self::Openai => "openai",
            Self::Sft => "sft",
            Self::Preference => "preference",
            Self::Csv => "csv",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PiiArg {
    Off,
    Mask,
    Hash,
}

#[derive(Debug, Args)]
pub struct DatasetExportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The dataset to export.
    pub name: String,
    #[arg(long, value_enum, env = "FEEDLOOP_DATASET_FORMAT")]
    pub format: Format,
    /// The folder to write into (created if missing).
    #[arg(long, env = "FEEDLOOP_DATASET_OUT")]
    pub out: PathBuf,
    /// A version number, or `latest` (the items as they are; creates no version).
    #[arg(long = "dataset-version", default_value = "latest")]
    pub dataset_version: String,
    /// Seeds the train/validation split.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// The share of items that goes to validation.
    #[arg(long, default_value_t = 0.1)]
    pub validation_fraction: f64,
    /// Keep near-duplicates.
    #[arg(long)]
    pub no_dedup: bool,
    /// Least cosine similarity of two inputs for the later item to be removed.
    #[arg(long, default_value_t = 0.95)]
    pub dedup_threshold: f32,
    /// What to do with personal data and secrets in the text.
    #[arg(long, value_enum, default_value = "mask")]
    pub pii: PiiArg,
    /// Preferences: least similarity of two prompts whose liked and disliked answers pair up.
    #[arg(long, default_value_t = 0.9)]
    pub contrast_threshold: f32,
    /// Only items with this category.
    #[arg(long)]
    pub category: Option<String>,
    /// Only items added this way: review, filter or api.
    #[arg(long)]
    pub origin: Option<String>,
    /// Only items of this source: correction, pairwise_vote, rating or manual.
    #[arg(long)]
    pub source: Option<String>,
}

pub async fn run(command: DatasetsCommand) -> anyhow::Result<()> {
    match command {
        DatasetsCommand::List(args) => {
            let client = Client::new(&args.server.server, &args.server.api_key);
            let list: Value = client.get("/api/v1/datasets").await?;
            for dataset in list["datasets"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{} items\tversion {}\t{}",
                    dataset["name"].as_str().unwrap_or(""),
                    dataset["num_items"],
                    dataset["latest_version"],
                    dataset["description"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        DatasetsCommand::Create(args) => {
            let client = Client::new(&args.server.server, &args.server.api_key);
            let body = serde_json::json!({"name": args.name, "description": args.description});
            let created: Value = client.post("/api/v1/datasets", &body).await?;
            eprintln!("created dataset {}", created["name"]);
            Ok(())
        }
        DatasetsCommand::Export(args) => {
            let manifest = export(&args).await?;
            eprintln!(
                "exported {} train and {} validation lines to {} ({} duplicates removed, {} PII findings scrubbed)",
                manifest["counts"]["train"],
                manifest["counts"]["validation"],
                args.out.display(),
                manifest["counts"]["duplicates_removed"],
                pii_total(&manifest),
            );
            Ok(())
        }
    }
}

fn pii_total(manifest: &Value) -> u64 {
    manifest["pii"]
        .as_object()
        .map_or(0, |counts| counts.values().filter_map(Value::as_u64).sum())
}

/// The export's query string.
fn query(args: &DatasetExportArgs) -> anyhow::Result<String> {
    let mut pairs: Vec<(&str, String)> = vec![
        ("format", args.format.as_str().to_owned()),
        ("split", "all".to_owned()),
        ("version", args.dataset_version.clone()),
        ("seed", args.seed.to_string()),
        ("validation_fraction", args.validation_fraction.to_string()),
        ("dedup", (!args.no_dedup).to_string()),
        ("dedup_threshold", args.dedup_threshold.to_string()),
        (
            "pii",
            match args.pii {
                PiiArg::Off => "off",
                PiiArg::Mask => "mask",
                PiiArg::Hash => "hash",
            }
            .to_owned(),
        ),
        ("contrast_threshold", args.contrast_threshold.to_string()),
    ];
    for (name, value) in [
        ("category", &args.category),
        ("origin", &args.origin),
        ("source", &args.source),
    ] {
        if let Some(value) = value {
            pairs.push((name, value.clone()));
        }
    }
    Ok(serde_urlencoded::to_string(pairs)?)
}

/// Streams the export into `args.out`; returns the manifest (also written as `manifest.json`).
pub async fn export(args: &DatasetExportArgs) -> anyhow::Result<Value> {
    let client = Client::new(&args.server.server, &args.server.api_key);
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let extension = match args.format {
        Format::Csv => "csv",
        Format::Openai | Format::Sft | Format::Preference => "jsonl",
    };
    let mut train = create(&args.out.join(format!("train.{extension}")))?;
    let mut validation = create(&args.out.join(format!("validation.{extension}")))?;
    let path = format!(
        "/api/v1/datasets/{}/export?{}",
        urlencode(&args.name),
        query(args)?
    );
    let mut response = client.get_streaming(&path).await?;
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {pos} lines exported ({per_sec})")
            .expect("the progress template is valid"),
    );
    let (mut pending, mut manifest) = (Vec::new(), None);
    while let Some(chunk) = response.chunk().await.context("the export stream broke")? {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            let event: Value = serde_json::from_slice(&line[..line.len() - 1])
                .context("the server sent a line that is not json")?;
            if let Some(found) = event.get("manifest") {
                manifest = Some(found.clone());
            } else if let Some(error) = event.get("error") {
                bail!("the export failed: {error}");
            } else if let Some(header) = event.get("header").and_then(Value::as_str) {
                writeln!(train, "{header}")?;
                writeln!(validation, "{header}")?;
            } else {
                let text = event["line"]
                    .as_str()
                    .context("an export line without text")?;
                match event["split"].as_str() {
                    Some("validation") => writeln!(validation, "{text}")?,
                    _ => writeln!(train, "{text}")?,
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    train.flush()?;
    validation.flush()?;
    let manifest = manifest.context("the export ended without its manifest")?;
    std::fs::write(
        args.out.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(manifest)
}

fn create(path: &Path) -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(std::io::BufWriter::new(file))
}

/// Dataset names are letters, digits, `_`, `-` and `.`; anything else is escaped.
fn urlencode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
