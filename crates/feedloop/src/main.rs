//! The `feedloop` binary: parses the command line and hands over to the library.

use clap::Parser;
use feedloop::cli::{Cli, Command};

/// mimalloc rather than glibc's malloc: under sustained ingest glibc kept ~750 MiB from the
/// system while 96 MiB was in use (memory freed on one thread's arena is rarely returned), and
/// the server's RSS climbed for as long as the load lasted (RELIABILITY.md, "Soak"). mimalloc
/// returns freed pages to the system. SQLite allocates through it too (see `main`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before any connection opens: SQLite's page caches share the allocator above.
    if !feedloop_store::sqlite::use_global_allocator() {
        eprintln!("warning: SQLite keeps libc's allocator (it was initialised already)");
    }
    if !feedloop_store::sqlite::keep_statement_journals_in_memory() {
        eprintln!(
            "warning: SQLite's statement journals spill at 64 KiB (it was initialised already)"
        );
    }
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
