//! What replicas share besides data. Several `feedloop serve` processes may run on one database;
//! they behave as one service through two mechanisms of the store:
//!
//! - the **change log**: every write that an in-memory cache depends on (keys, taxonomy) appends a
//!   [`Change`] in the same transaction; each replica follows the log ([`Coordination::changes_since`])
//!   and drops what it cached, so it catches up with writes made through another replica;
//! - **job runs**: a periodic background job runs once per period across replicas. A replica
//!   claims the run ([`Coordination::claim_job_run`]); the claim is a lease, so a run whose holder
//!   died is taken over when the lease expires.

use async_trait::async_trait;
use feedloop_core::{ProjectId, Timestamp};

use crate::Result;

/// What a change touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeTopic {
    Keys,
    Taxonomy,
}

impl ChangeTopic {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Keys => "keys",
            Self::Taxonomy => "taxonomy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Keys, Self::Taxonomy]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Increases with every change; a follower remembers the last one it saw.
    pub seq: i64,
    pub project: ProjectId,
    pub topic: ChangeTopic,
    pub at: Timestamp,
}

/// One run of a periodic job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRun {
    pub job: String,
    /// Which period the run is for (the job's own numbering, e.g. hours since the epoch).
    pub period: i64,
    pub holder: String,
    pub claimed_at: Timestamp,
    pub lease_until: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub outcome: Option<String>,
}

#[async_trait]
pub trait Coordination: Send + Sync {
    /// Changes after `after`, oldest first, at most `limit`.
    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>>;

    /// The sequence number of the newest change, 0 if there is none.
    async fn latest_change(&self) -> Result<i64>;

    /// Claims the run of `job` for `period` for `holder` until `lease_until`. True if the caller
    /// won it: no one had claimed it, or the previous holder's lease expired unfinished.
    async fn claim_job_run(
        &self,
        job: &str,
        period: i64,
        holder: &str,
        now: Timestamp,
        lease_until: Timestamp,
    ) -> Result<bool>;

    /// Records the end of a run this holder claimed.
    async fn finish_job_run(
        &self,
        job: &str,
        period: i64,
        holder: &str,
        outcome: &str,
        now: Timestamp,
    ) -> Result<()>;

    /// The newest runs of `job`, newest first.
    async fn job_runs(&self, job: &str, limit: u32) -> Result<Vec<JobRun>>;

    /// Deletes changes older than `before`; returns how many. Sequence numbers never go back, even
    /// when the newest changes are deleted.
    async fn prune_changes(&self, before: Timestamp) -> Result<u64>;
}
