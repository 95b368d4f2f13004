//! `feedloop migrate` (apply schema migrations) and `feedloop migrate-data` (copy everything from
//! one database to another, SQLite ↔ PostgreSQL, verbatim, with progress and a count check).

use anyhow::Context;
use clap::Args;
use feedloop_core::ProjectId;
use feedloop_core::filter::{Filter, Order, PageRequest};
use feedloop_store::{Store, StoreOptions};
use indicatif::{ProgressBar, ProgressStyle};
use std::sync::Arc;

use super::StoreArgs;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct MigrateDataArgs {
    /// The database to copy from (sqlite://PATH or postgres://…).
    #[arg(long, env = "FEEDLOOP_MIGRATE_FROM")]
    pub from: String,
    /// The database to copy into (created and migrated if needed).
    #[arg(long, env = "FEEDLOOP_MIGRATE_TO")]
    pub to: String,
    /// Items read and written per step.
    #[arg(long, env = "FEEDLOOP_MIGRATE_BATCH_SIZE", default_value_t = 1000)]
    pub batch_size: u32,
}

/// Opening a store applies its pending migrations; this reports the schema it leaves.
pub async fn run_migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let config = args.store.load_config()?;
    crate::logging::init(config.log_format);
    let url = config.database_url();
    feedloop_store::open(&url, &config.store_options())
        .await
        .with_context(|| format!("cannot migrate {url}"))?;
    println!("{url}: schema up to date");
    Ok(())
}

/// What a copy moved, per project.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopySummary {
    pub projects: usize,
    pub keys: usize,
    pub categories: usize,
    pub traces: u64,
    pub feedback: u64,
    pub lessons: usize,
    pub injections: usize,
}

pub async fn run_migrate_data(args: MigrateDataArgs) -> anyhow::Result<()> {
    crate::logging::init(crate::config::LogFormat::Text);
    let options = StoreOptions::default();
    let from = feedloop_store::open(&args.from, &options)
        .await
        .with_context(|| format!("cannot open {}", args.from))?;
    let to = feedloop_store::open(&args.to, &options)
        .await
        .with_context(|| format!("cannot open {}", args.to))?;
    let summary = copy_all(from, to, args.batch_size.clamp(1, 1000)).await?;
    eprintln!(
        "copied {} projects: {} keys, {} categories, {} traces, {} feedback items, {} lessons, {} injections; counts verified",
        summary.projects,
        summary.keys,
        summary.categories,
        summary.traces,
        summary.feedback,
        summary.lessons,
        summary.injections
    );
    Ok(())
}

/// Copies every project from `from` to `to` and checks that the counts agree afterwards.
pub async fn copy_all(
    from: Arc<dyn Store>,
    to: Arc<dyn Store>,
    batch_size: u32,
) -> anyhow::Result<CopySummary> {
    let mut summary = CopySummary::default();
    for project in from.list_projects().await? {
        let stats = from.stats(project.id).await?;
        let bar = ProgressBar::new(stats.traces + stats.feedback).with_style(
            ProgressStyle::with_template("{msg:12} {bar:40} {pos}/{len}  {per_sec}")
                .expect("the template is valid"),
        );
        bar.set_message(project.name.clone());
        let target = to
            .restore_project(&project.name, project.created_at)
            .await?;
        let keys = from.key_records(project.id).await?;
        summary.keys += keys.len();
        to.restore_keys(target, keys).await?;
        let categories = from.taxonomy(project.id).await?;
        summary.categories += categories.len();
        to.restore_categories(target, categories).await?;

        let mut page = PageRequest {
            limit: batch_size,
            after: None,
            order: Order::Asc,
        };
        loop {
            let mut traces = from
                .list_traces(project.id, &Filter::default(), page)
                .await?;
            let ids: Vec<_> = traces.items.iter().map(|t| t.trace.id.clone()).collect();
            let mut spans: std::collections::HashMap<_, _> =
                from.spans_of(project.id, &ids).await?.into_iter().collect();
            for trace in &mut traces.items {
                trace.spans = spans.remove(&trace.trace.id).unwrap_or_default();
            }
            let count = traces.items.len() as u64;
            to.restore_traces(target, traces.items).await?;
            bar.inc(count);
            match traces.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        let mut page = PageRequest {
            limit: batch_size,
            after: None,
            order: Order::Asc,
        };
        loop {
            let feedback = from
                .list_feedback(project.id, &Filter::default(), page)
                .await?;
            let count = feedback.items.len() as u64;
            to.restore_feedback(target, feedback.items).await?;
            bar.inc(count);
            match feedback.next {
                Some(next) => page.after = Some(next),
                None => break,
            }
        }
        summary.lessons += copy_lessons(from.as_ref(), project.id, to.as_ref(), target).await?;
        summary.injections +=
            copy_injections(from.as_ref(), project.id, to.as_ref(), target, batch_size).await?;
        bar.finish_and_clear();

        let copied = to.stats(target).await?;
        anyhow::ensure!(
            (copied.traces, copied.spans, copied.feedback)
                == (stats.traces, stats.spans, stats.feedback),
            "project {:?}: the copy holds {} traces, {} spans, {} feedback items; the source {}, {}, {}",
            project.name,
            copied.traces,
            copied.spans,
            copied.feedback,
            stats.traces,
            stats.spans,
            stats.feedback
        );
        summary.projects += 1;
        summary.traces += stats.traces;
        summary.feedback += stats.feedback;
    }
    Ok(summary)
}

/// Copies a project's loop and signal settings and every version of every lesson; returns how
/// many lessons the source holds, after checking that the copy holds the same versions.
async fn copy_lessons(
    from: &dyn Store,
    project: ProjectId,
    to: &dyn Store,
    target: ProjectId,
) -> anyhow::Result<usize> {
    to.set_loop_settings(target, &from.loop_settings(project).await?)
        .await?;
    to.set_signal_settings(
        target,
        &from.signal_settings(project).await?,
        jiff::Timestamp::now(),
    )
    .await?;
    let lessons = from.list_lessons(project, None, u32::MAX).await?;
    for lesson in &lessons {
        let versions = from.lesson_versions(project, &lesson.id).await?;
        to.restore_lesson(target, versions.clone()).await?;
        let copied = to.lesson_versions(target, &lesson.id).await?;
        anyhow::ensure!(
            copied == versions,
            "lesson {:?}: the copy holds {} versions that differ from the source's {}",
            lesson.id.as_str(),
            copied.len(),
            versions.len()
        );
    }
    Ok(lessons.len())
}

/// Copies a project's injections (what each context request got, and its trace); returns how
/// many there are.
async fn copy_injections(
    from: &dyn Store,
    project: ProjectId,
    to: &dyn Store,
    target: ProjectId,
    batch_size: u32,
) -> anyhow::Result<usize> {
    let mut after = None;
    let mut copied = 0;
    loop {
        let page = from
            .injections_after(project, after, batch_size as usize)
            .await?;
        let Some(last) = page.last() else {
            return Ok(copied);
        };
        after = Some(last.id.clone());
        copied += page.len();
        to.restore_injections(target, page).await?;
    }
}
