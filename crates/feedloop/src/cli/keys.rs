//! `feedloop keys …` and `feedloop projects …`: administration on the database directly, for
//! the first key of a new project or when no admin key is at hand.

use clap::{Args, Subcommand};
use feedloop_core::auth::KeyRole;
use feedloop_core::clock::{Clock, SystemClock};
use feedloop_store::Store;

use super::StoreArgs;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret (shown once).
    Create(CreateKeyArgs),
    /// List a project's keys (never their secrets).
    List(ProjectArgs),
    /// Revoke a key by id; it stops working at once.
    Revoke(RevokeKeyArgs),
}

#[derive(Debug, Args)]
pub struct ProjectArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Project name.
    #[arg(long, env = "FEEDLOOP_PROJECT", default_value = super::serve::DEFAULT_PROJECT)]
    pub project: String,
}

#[derive(Debug, Args)]
pub struct CreateKeyArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// What the key may do.
    #[arg(long, env = "FEEDLOOP_KEY_ROLE", value_parser = parse_role, default_value = "admin")]
    pub role: KeyRole,
    /// A name to tell the key apart.
    #[arg(long, env = "FEEDLOOP_KEY_NAME", default_value = "cli")]
    pub name: String,
    /// For a public key (`--role public`): an origin it may be used from
    /// (`https://app.example.com`); repeat for more.
    #[arg(long = "allowed-origin")]
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RevokeKeyArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The key's id (see `keys list`).
    #[arg(env = "FEEDLOOP_KEY_ID")]
    pub id: i64,
}

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Create a project (with the default taxonomy) and print an admin key for it.
    Create(CreateProjectArgs),
    /// List projects.
    List(StoreArgs),
}

#[derive(Debug, Args)]
pub struct CreateProjectArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Project name.
    #[arg(env = "FEEDLOOP_PROJECT")]
    pub name: String,
}

fn parse_role(text: &str) -> Result<KeyRole, String> {
    KeyRole::parse(text)
        .ok_or_else(|| format!("{text:?} is not a role: use admin, ingest, read or public"))
}

pub(crate) async fn project_id(
    store: &dyn Store,
    name: &str,
) -> anyhow::Result<feedloop_core::ProjectId> {
    Ok(store
        .project_by_name(name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no project named {name:?} (see `feedloop projects list`)"))?
        .id)
}

pub async fn run_keys(command: KeysCommand) -> anyhow::Result<()> {
    let clock = SystemClock;
    match command {
        KeysCommand::Create(args) => {
            let store = args.project.store.open_store().await?;
            let project = project_id(store.as_ref(), &args.project.project).await?;
            if args.role.is_public() == args.allowed_origins.is_empty() {
                anyhow::bail!("public keys need --allowed-origin, and only public keys take it");
            }
            for origin in &args.allowed_origins {
                feedloop_core::auth::check_origin(origin)
                    .map_err(|message| anyhow::anyhow!("--allowed-origin {origin:?}: {message}"))?;
            }
            let (secret, record) = feedloop_server::ops::generate_key_with_origins(
                args.name,
                args.role,
                args.allowed_origins,
            );
            let key = store.create_key(project, record, clock.now()).await?;
            eprintln!(
                "created key {} ({}) for project {:?}",
                key.id,
                key.role.as_str(),
                args.project.project
            );
            println!("{secret}");
        }
        KeysCommand::List(args) => {
            let store = args.store.open_store().await?;
            let project = project_id(store.as_ref(), &args.project).await?;
            println!(
                "{:>5}  {:<7}  {:<12}  {:<25}  {:<25}  name",
                "id", "role", "prefix", "created", "revoked"
            );
            for key in store.list_keys(project).await? {
                let revoked = key
                    .revoked_at
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "-".into());
                println!(
                    "{:>5}  {:<7}  {:<12}  {:<25}  {:<25}  {}",
                    key.id,
                    key.role.as_str(),
                    key.prefix,
                    key.created_at.to_string(),
                    revoked,
                    key.name
                );
            }
        }
        KeysCommand::Revoke(args) => {
            let store = args.project.store.open_store().await?;
            let project = project_id(store.as_ref(), &args.project.project).await?;
            let key = store.revoke_key(project, args.id, clock.now()).await?;
            println!("revoked key {} ({})", key.id, key.prefix);
        }
    }
    Ok(())
}

pub async fn run_projects(command: ProjectsCommand) -> anyhow::Result<()> {
    let clock = SystemClock;
    match command {
        ProjectsCommand::Create(args) => {
            let store = args.store.open_store().await?;
            let project = store.create_project(&args.name, clock.now()).await?;
            let (secret, record) =
                feedloop_server::ops::generate_key("admin".into(), KeyRole::Admin);
            store.create_key(project.id, record, clock.now()).await?;
            eprintln!(
                "created project {:?} (id {}) and its admin key:",
                project.name, project.id
            );
            println!("{secret}");
        }
        ProjectsCommand::List(args) => {
            let store = args.open_store().await?;
            for project in store.list_projects().await? {
                println!(
                    "{:>5}  {}  {}",
                    project.id, project.created_at, project.name
                );
            }
        }
    }
    Ok(())
}
