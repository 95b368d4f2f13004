//! The `Clusters` part of the store: problem clusters, the traces with current negative
//! feedback grouped by meaning (per embedding model), and the look-ups their reports need. The
//! grouping itself is `feedloop_clusters`'; the store keeps what it decided. Clusters are
//! written by one job at a time (its run is claimed once across replicas), so a run's write
//! needs no locking beyond its transaction.

use async_trait::async_trait;
use feedloop_core::{ProjectId, Timestamp, TraceId};

use crate::Result;

/// A trace with current negative feedback, embedded by the model, in no cluster of it yet.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterCandidate {
    pub trace_seq: i64,
    pub trace_id: TraceId,
    /// The trace's input.
    pub query: String,
    pub vector: Vec<f32>,
}

/// A stored cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ProblemCluster {
    pub id: i64,
    pub model: String,
    pub size: u64,
    /// The sum of the members' vectors; its direction is the centroid.
    pub centroid_sum: Vec<f32>,
    /// The distinctive terms of its members' queries, best first.
    pub terms: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What one run changes of one cluster: its new state and the members it gained.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterUpdate {
    /// `None` for a cluster this run founds.
    pub id: Option<i64>,
    pub size: u64,
    pub centroid_sum: Vec<f32>,
    pub terms: Vec<String>,
    /// New members: trace sequence number and similarity to the centroid when placed.
    pub new_members: Vec<(i64, f32)>,
}

/// A member of a cluster, for examples and names.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterMember {
    pub trace_id: TraceId,
    pub query: String,
    pub similarity: f32,
    pub started_at: Timestamp,
}

#[async_trait]
pub trait Clusters: Send + Sync {
    /// Traces with current negative feedback created at or after `since`, with an input and a
    /// vector of `model`, that are in no cluster of `model`: oldest trace first, at most
    /// `limit`. Being a member is the only progress kept, so a trace whose feedback or vector
    /// arrives late (or commits late) is found by the next run.
    async fn cluster_candidates(
        &self,
        project: ProjectId,
        model: &str,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClusterCandidate>>;

    /// The project's clusters of `model`, by id.
    async fn problem_clusters(
        &self,
        project: ProjectId,
        model: &str,
    ) -> Result<Vec<ProblemCluster>>;

    /// Writes one run, all or nothing: updates and new clusters with their new members.
    /// Returns the ids of the clusters, in the order of `updates`.
    async fn save_clusters(
        &self,
        project: ProjectId,
        model: &str,
        updates: &[ClusterUpdate],
        now: Timestamp,
    ) -> Result<Vec<i64>>;

    /// Members of a cluster, the nearest to its centroid first (as placed), at most `limit`.
    async fn cluster_members(
        &self,
        project: ProjectId,
        cluster: i64,
        limit: u32,
    ) -> Result<Vec<ClusterMember>>;

    /// The categories of the current feedback on a cluster's members, with the number of
    /// members that carry each, most first.
    async fn cluster_categories(
        &self,
        project: ProjectId,
        cluster: i64,
    ) -> Result<Vec<(String, u64)>>;

    /// The size of the cluster of `model` each of these traces is in (traces in none are left
    /// out).
    async fn cluster_sizes_of(
        &self,
        project: ProjectId,
        model: &str,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, u64)>>;

    /// Members per UTC day of their trace's start, from `since` on: `(day start, count)`.
    async fn cluster_trend(
        &self,
        project: ProjectId,
        cluster: i64,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, u64)>>;
}
