//! `feedloop erase --user …`: erases everything about one end user of a project, on the
//! database directly (the same operation as `POST /api/v1/erasure`), and prints the receipt as
//! JSON. Running servers drop the user's vectors from their indexes as they follow the store.

use clap::Args;
use feedloop_core::clock::{Clock, SystemClock};
use feedloop_server::wire::privacy::ErasureReceiptBody;

use super::keys::ProjectArgs;

#[derive(Debug, Args)]
pub struct EraseArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The end user's id, as traces carry it in `user_id` and feedback in `author`.
    #[arg(long = "user", env = "FEEDLOOP_ERASE_USER")]
    pub user_id: String,
}

pub async fn run(args: EraseArgs) -> anyhow::Result<()> {
    feedloop_server::privacy::check_user_id(&args.user_id)
        .map_err(|e| anyhow::anyhow!("--user: {}", e.message))?;
    let store = args.project.store.open_store().await?;
    let project = super::keys::project_id(store.as_ref(), &args.project.project).await?;
    let clock = SystemClock;
    let requested_at = clock.now();
    let receipt = feedloop_server::privacy::erase_user(
        store.as_ref(),
        project,
        &args.user_id,
        "cli",
        requested_at,
        clock.now(),
    )
    .await?;
    let body = ErasureReceiptBody::new(receipt, Some(args.user_id));
    println!("{}", serde_json::to_string_pretty(&body)?);
    Ok(())
}
