//! The command line: one module per subcommand. Every flag can also be set through the
//! environment variable named in its help.

pub mod backup;
pub mod bench;
pub mod datasets;
pub mod erase;
pub mod export;
pub mod import;
pub mod keys;
pub mod migrate;
pub mod model;
pub mod serve;
pub mod users;

pub mod analytics;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::config::LogFormat;

/// feedloop: the self-hosted feedback loop for LLM products.
///
/// Stores every interaction (trace) and every piece of feedback about it, serves them over a
/// JSON API, and closes the loop. Start with `feedloop serve`.
#[derive(Debug, Parser)]
#[command(name = "feedloop", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (creates the database, a default project and an admin key on first start).
    Serve(serve::ServeArgs),
    /// Import traces and feedback into a running server (JSONL, or a known public dataset).
    Import(import::ImportArgs),
    /// Export a project's traces and feedback from a running server as JSONL.
    Export(export::ExportArgs),
    /// Manage API keys (works on the database directly).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Manage projects (works on the database directly).
    #[command(subcommand)]
    Projects(keys::ProjectsCommand),
    /// Manage web UI accounts and their roles (works on the database directly).
    #[command(subcommand)]
    Users(users::UsersCommand),
    /// Erase everything about one end user of a project and print the receipt (works on the
    /// database directly; the same as `POST /api/v1/erasure`).
    Erase(erase::EraseArgs),
    /// Apply the database's schema migrations and exit (serve does this at start too).
    Migrate(migrate::MigrateArgs),
    /// Copy all data from one database to another (SQLite ↔ PostgreSQL), verifying the counts.
    MigrateData(migrate::MigrateDataArgs),
    /// Write a consistent copy of the whole database to a file while the server keeps running.
    Backup(backup::BackupArgs),
    /// Restore a `feedloop backup` file into an empty data directory or database (--force to
    /// replace existing data). Stop servers on the target first.
    Restore(backup::RestoreArgs),
    /// Drive a running server with generated load and verify what it stored.
    Bench(bench::BenchArgs),
    /// The local embedding model.
    #[command(subcommand)]
    Model(model::ModelCommand),
    /// Datasets for fine-tuning on a running server: list, create, export.
    #[command(subcommand)]
    Datasets(datasets::DatasetsCommand),
    /// Embed every trace that has no vector of the configured model (after changing the model),
    /// with progress.
    Reindex(model::ReindexArgs),
    /// Feedback trends and alerts from a running server (text table or --json).
    #[command(subcommand)]
    Analytics(analytics::AnalyticsCommand),
}

/// Where the database is; shared by the commands that open it.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Configuration file (TOML); see feedloop.example.toml.
    #[arg(long, env = "FEEDLOOP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded database.
    #[arg(long, env = "FEEDLOOP_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL (sqlite://PATH or postgres://USER@HOST:PORT/DATABASE); overrides --data-dir.
    #[arg(long, env = "FEEDLOOP_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Log format.
    #[arg(long, env = "FEEDLOOP_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// How to reach a running server; shared by the client commands.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Base URL of the feedloop server.
    #[arg(long, env = "FEEDLOOP_SERVER", default_value = "http://127.0.0.1:7700")]
    pub server: String,
    /// API key of the project to work on.
    #[arg(long, env = "FEEDLOOP_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

impl StoreArgs {
    /// Loads the configuration: defaults < file < environment < these flags.
    pub fn load_config(&self) -> anyhow::Result<crate::config::Config> {
        let text = match &self.config {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read config {}: {e}", path.display()))?,
            ),
            None => None,
        };
        let env: std::collections::HashMap<String, String> = std::env::vars().collect();
        let mut config = crate::config::Config::load(text.as_deref(), &env)?;
        if let Some(dir) = &self.data_dir {
            config.data_dir = dir.clone();
        }
        if let Some(url) = &self.database_url {
            config.database_url = url.clone();
        }
        if let Some(format) = self.log_format {
            config.log_format = format;
        }
        Ok(config)
    }

    pub async fn open_store(&self) -> anyhow::Result<std::sync::Arc<dyn feedloop_store::Store>> {
        let config = self.load_config()?;
        Ok(feedloop_store::open(&config.database_url(), &config.store_options()).await?)
    }
}
