//! The `feedloop` binary: parses the command line and hands over to the library.

use clap::Parser;
use feedloop::cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    feedloop_embed::install_tls_provider();
    match cli.command {
        Command::Serve(args) => feedloop::cli::serve::run(args).await,
        Command::Import(args) => feedloop::cli::import::run(args).await,
        Command::Export(args) => feedloop::cli::export::run(args).await,
        Command::Keys(command) => feedloop::cli::keys::run_keys(command).await,
        Command::Projects(command) => feedloop::cli::keys::run_projects(command).await,
        Command::Users(command) => feedloop::cli::users::run(command).await,
        Command::Erase(args) => feedloop::cli::erase::run(args).await,
        Command::Migrate(args) => feedloop::cli::migrate::run_migrate(args).await,
        Command::MigrateData(args) => feedloop::cli::migrate::run_migrate_data(args).await,
        Command::Backup(args) => feedloop::cli::backup::run_backup(args).await,
        Command::Restore(args) => feedloop::cli::backup::run_restore(args).await,
        Command::Bench(args) => feedloop::cli::bench::run(args).await,
        Command::Model(command) => feedloop::cli::model::run(command).await,
        Command::Reindex(args) => feedloop::cli::model::reindex(args).await,
        Command::Datasets(command) => feedloop::cli::datasets::run(command).await,
        Command::Analytics(command) => feedloop::cli::analytics::run(command).await,
    }
}
