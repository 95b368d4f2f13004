//! The `feedloop` binary's library: command-line commands, configuration, the API client used by
//! `import`, `export` and `bench`, and the importers of public datasets.

pub mod cli;
pub mod client;
pub mod config;
pub mod import;
pub mod logging;
