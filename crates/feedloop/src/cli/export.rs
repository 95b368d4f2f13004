//! `feedloop export`: page through a project's traces (with spans) and feedback, oldest first,
//! and write them as JSONL records that `feedloop import` reads back.

use anyhow::Context;
use clap::{Args, ValueEnum};
use feedloop_server::wire::{FeedbackView, PageBody, Record, TraceView};
use indicatif::ProgressBar;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::PathBuf;

use super::ServerArgs;
use crate::client::Client;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportWhat {
    All,
    Traces,
    Feedback,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Output file; `-` for standard output.
    #[arg(long, short, env = "FEEDLOOP_EXPORT_OUTPUT", default_value = "-")]
    pub output: PathBuf,
    /// What to export.
    #[arg(long, env = "FEEDLOOP_EXPORT_WHAT", value_enum, default_value = "all")]
    pub what: ExportWhat,
    /// A list filter as the API takes it, e.g. `environment=prod` or `meta.app=web`; repeatable.
    #[arg(long = "filter", env = "FEEDLOOP_EXPORT_FILTER", value_delimiter = ',')]
    pub filters: Vec<String>,
}

pub async fn run(args: ExportArgs) -> anyhow::Result<()> {
    let (traces, feedback) = if args.output.as_os_str() == "-" {
        export(&args, std::io::stdout().lock()).await?
    } else {
        let file = std::fs::File::create(&args.output)
            .with_context(|| format!("cannot create {}", args.output.display()))?;
        export(&args, std::io::BufWriter::new(file)).await?
    };
    eprintln!("exported {traces} traces and {feedback} feedback items");
    Ok(())
}

/// Writes the export to `out`; returns the numbers of traces and feedback items written.
pub async fn export(args: &ExportArgs, mut out: impl Write) -> anyhow::Result<(usize, usize)> {
    let client = Client::new(&args.server.server, &args.server.api_key);
    let mut query = String::from("order=asc&limit=1000");
    for filter in &args.filters {
        let (key, value) = filter
            .split_once('=')
            .with_context(|| format!("--filter {filter:?} is not key=value"))?;
        let pair: String = serde_urlencoded::to_string([(key, value)])?;
        query.push('&');
        query.push_str(&pair);
    }
    let bar = ProgressBar::new_spinner();
    let mut num_traces = 0;
    if args.what != ExportWhat::Feedback {
        num_traces = pages::<TraceView>(
            &client,
            &format!("/api/v1/traces?{query}&with_spans=true"),
            |trace| {
                bar.inc(1);
                write_record(&mut out, &Record::Trace(trace.trace))
            },
        )
        .await?;
    }
    let mut num_feedback = 0;
    if args.what != ExportWhat::Traces {
        num_feedback =
            pages::<FeedbackView>(&client, &format!("/api/v1/feedback?{query}"), |feedback| {
                bar.inc(1);
                write_record(&mut out, &Record::Feedback(feedback.feedback))
            })
            .await?;
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok((num_traces, num_feedback))
}

fn write_record(out: &mut impl Write, record: &Record) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, record)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Calls `each` for every item of every page of the list at `path`.
async fn pages<T: DeserializeOwned>(
    client: &Client,
    path: &str,
    mut each: impl FnMut(T) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let mut count = 0;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!("{path}&cursor={cursor}"),
            None => path.to_owned(),
        };
        let page: PageBody<T> = client.get(&url).await?;
        for item in page.items {
            each(item)?;
            count += 1;
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(count),
        }
    }
}
