//! `feedloop users …`: accounts for the web UI, on the database directly. The first admin is
//! made here (or on first start from FEEDLOOP_ADMIN_EMAIL / FEEDLOOP_ADMIN_PASSWORD); after
//! that, project admins manage members over the API.

use clap::{Args, Subcommand};
use feedloop_core::auth::UserRole;
use feedloop_core::clock::{Clock, SystemClock};
use feedloop_store::Store;
use feedloop_store::access::NewUser;
use std::io::Read;

use super::StoreArgs;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create an account; the password is read from stdin (one line).
    Create(CreateUserArgs),
    /// Give a person a role in a project (or change it).
    Grant(GrantArgs),
    /// List accounts and their projects.
    List(StoreArgs),
}

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The person's email (their sign-in name).
    #[arg(long, env = "FEEDLOOP_USER_EMAIL")]
    pub email: String,
    /// Read the password from stdin (required: passwords never go on the command line).
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// A server admin: admin of every project.
    #[arg(long)]
    pub admin: bool,
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, env = "FEEDLOOP_USER_EMAIL")]
    pub email: String,
    /// Project name.
    #[arg(long, env = "FEEDLOOP_PROJECT", default_value = super::serve::DEFAULT_PROJECT)]
    pub project: String,
    /// admin, reviewer or viewer.
    #[arg(long, value_parser = parse_role)]
    pub role: UserRole,
}

fn parse_role(text: &str) -> Result<UserRole, String> {
    UserRole::parse(text)
        .ok_or_else(|| format!("{text:?} is not a role: use admin, reviewer or viewer"))
}

/// Creates an account with a hashed password; the email is lowercased.
pub async fn create_user(
    store: &dyn Store,
    clock: &dyn Clock,
    email: &str,
    password: &str,
    is_admin: bool,
) -> anyhow::Result<feedloop_store::access::User> {
    let email = email.trim().to_lowercase();
    if !email.contains('@') {
        anyhow::bail!("{email:?} is not an email address");
    }
    let password_hash = feedloop_server::access::password::hash_password(password)
        .map_err(|error| anyhow::anyhow!("{}", error.message))?;
    Ok(store
        .create_user(
            NewUser {
                email,
                password_hash,
                is_admin,
            },
            clock.now(),
        )
        .await?)
}

pub async fn run(command: UsersCommand) -> anyhow::Result<()> {
    let clock = SystemClock;
    match command {
        UsersCommand::Create(args) => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\n', '\r']);
            let store = args.store.open_store().await?;
            let user =
                create_user(store.as_ref(), &clock, &args.email, password, args.admin).await?;
            println!(
                "created user {} ({}{})",
                user.id,
                user.email,
                if user.is_admin { ", server admin" } else { "" }
            );
        }
        UsersCommand::Grant(args) => {
            let store = args.store.open_store().await?;
            let email = args.email.trim().to_lowercase();
            let user = store.user_by_email(&email).await?.ok_or_else(|| {
                anyhow::anyhow!("no user {email:?} (see `feedloop users create`)")
            })?;
            let project = store
                .project_by_name(&args.project)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no project named {:?}", args.project))?;
            let membership = store
                .set_membership(project.id, user.id, args.role, clock.now())
                .await?;
            store
                .record_audit(
                    project.id,
                    "cli",
                    "member.add",
                    &user.id.to_string(),
                    &serde_json::json!({"email": email, "role": args.role}),
                    clock.now(),
                )
                .await?;
            println!(
                "{} is {} of {:?}",
                membership.email,
                membership.role.as_str(),
                membership.project_name
            );
        }
        UsersCommand::List(args) => {
            let store = args.open_store().await?;
            for project in store.list_projects().await? {
                for member in store.project_members(project.id).await? {
                    println!(
                        "{:>5}  {:<30}  {:<8}  {}",
                        member.user_id,
                        member.email,
                        member.role.as_str(),
                        project.name
                    );
                }
            }
        }
    }
    Ok(())
}
