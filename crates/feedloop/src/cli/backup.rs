//! `feedloop backup` and `feedloop restore`: a consistent copy of the whole database taken while
//! the server runs, and its restore into an empty data directory or database (see
//! `feedloop_store::backup` for how each backend does it).

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::Duration;

use super::StoreArgs;

#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// File to write (must not exist). SQLite: a compact SQLite database file, usable as is.
    /// PostgreSQL: a `pg_dump --format=custom` archive (needs `pg_dump` installed).
    #[arg(long, env = "FEEDLOOP_BACKUP_OUT")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The backup file `feedloop backup` wrote (of the same kind of database).
    #[arg(long, env = "FEEDLOOP_RESTORE_FROM")]
    pub from: PathBuf,
    /// Replace a database that already holds data (its data is lost). Without it, restore only
    /// writes into an empty data directory or an empty PostgreSQL database.
    #[arg(long, env = "FEEDLOOP_RESTORE_FORCE")]
    pub force: bool,
}

fn progress_bar() -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {elapsed:>4} {msg}")
            .expect("the template is valid"),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

fn show(bar: &ProgressBar, message: &str, bytes: Option<(u64, u64)>) {
    match bytes {
        Some((done, total)) => bar.set_message(format!(
            "{message}: {:.1} of at most {:.1} MiB",
            done as f64 / 1048576.0,
            total as f64 / 1048576.0
        )),
        None => bar.set_message(message.to_owned()),
    }
}

/// Writes the backup while the server may keep serving; prints what it holds.
pub async fn run_backup(args: BackupArgs) -> anyhow::Result<()> {
    let config = args.store.load_config()?;
    let url = config.database_url();
    let bar = progress_bar();
    let report = feedloop_store::backup::backup(&url, &args.out, &|message, bytes| {
        show(&bar, message, bytes)
    })
    .await;
    bar.finish_and_clear();
    let report = report?;
    println!(
        "backup written to {} ({} bytes)",
        args.out.display(),
        report.num_bytes
    );
    for (table, rows) in report.tables {
        println!("  {table:32} {rows:>10} rows");
    }
    Ok(())
}

/// Restores into an empty store (or, with --force, over one), applies migrations, and drops the
/// vector index files, which the server then rebuilds from the restored vectors.
pub async fn run_restore(args: RestoreArgs) -> anyhow::Result<()> {
    let config = args.store.load_config()?;
    let url = config.database_url();
    let bar = progress_bar();
    let report =
        feedloop_store::backup::restore(&url, &args.from, args.force, &|message, bytes| {
            show(&bar, message, bytes)
        })
        .await;
    bar.finish_and_clear();
    let report = report?;
    // Indexes are caches of the stored vectors; ones left from other data would disagree.
    let index_dir = config.index_dir();
    if index_dir.exists() {
        std::fs::remove_dir_all(&index_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot remove the old vector indexes in {}: {e}",
                index_dir.display()
            )
        })?;
    }
    // Migrations of this version, for a backup taken by an older one.
    feedloop_store::open(&url, &config.store_options()).await?;
    println!("restored {} into the database", args.from.display());
    for (table, rows) in report.tables {
        println!("  {table:32} {rows:>10} rows");
    }
    Ok(())
}
