//! Problem clusters: the traces that carry current negative feedback, grouped by meaning and
//! named by their distinctive terms, so a team sees its recurring problems instead of a list of
//! complaints.
//!
//! [`ClusterEngine::run`] is one pass of the background job (`server::jobs`, once per period
//! across replicas): per project, it reads the negative traces of the window that are in no
//! cluster yet (embedded by the configured model), places them with [`group::Clustering::add`]
//! (join the nearest cluster, or found new ones among themselves), renames the clusters that
//! grew, and stores the run in one transaction. Membership is the only progress kept, so a run
//! that fails or a trace embedded late is simply picked up by the next run.

pub mod group;
pub mod terms;

use feedloop_core::{ProjectId, Timestamp};
use feedloop_store::clusters::{ClusterCandidate, ClusterUpdate, ProblemCluster};
use feedloop_store::{Store, StoreError};
use jiff::SignedDuration;
use std::collections::BTreeMap;
use std::sync::Arc;

use group::{Clustering, Thresholds};
use terms::{Background, distinctive_terms};

/// New problems placed per project and run at most: the leftovers are grouped pairwise, so
/// this bounds a run's cost (the next run continues).
const CANDIDATES_PER_RUN: u32 = 2_000;
/// Member queries of a cluster read to name it.
const NAMING_SAMPLE: u32 = 100;

/// How problems are grouped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterSettings {
    pub thresholds: Thresholds,
    /// Negative feedback older than this is not clustered.
    pub window: SignedDuration,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            thresholds: Thresholds::default(),
            window: SignedDuration::from_hours(24 * 30),
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ClusterReport {
    /// Negative traces placed into clusters.
    pub num_placed: u64,
    /// Clusters founded.
    pub new_clusters: Vec<NewCluster>,
    /// Existing clusters that grew.
    pub num_grown: u64,
}

/// A cluster a run founded, with what announcing it needs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NewCluster {
    pub project: ProjectId,
    pub id: i64,
    pub terms: Vec<String>,
    pub size: u64,
}

/// Clusters the problems of every project for one embedding model.
pub struct ClusterEngine {
    store: Arc<dyn Store>,
    model: String,
    settings: ClusterSettings,
    /// One run at a time in this process (the job and a requested refresh), so a problem is
    /// never placed twice; across replicas the job's claim keeps runs apart.
    running: tokio::sync::Mutex<()>,
}

impl ClusterEngine {
    pub fn new(store: Arc<dyn Store>, model: impl Into<String>, settings: ClusterSettings) -> Self {
        Self {
            store,
            model: model.into(),
            settings,
            running: tokio::sync::Mutex::new(()),
        }
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// One pass over every project.
    pub async fn run(&self, now: Timestamp) -> Result<ClusterReport, StoreError> {
        let mut report = ClusterReport::default();
        for project in self.store.list_projects().await? {
            let done = self.run_project(project.id, now).await?;
            report.num_placed += done.num_placed;
            report.num_grown += done.num_grown;
            report.new_clusters.extend(done.new_clusters);
        }
        Ok(report)
    }

    /// One pass over one project: places its unclustered problems.
    pub async fn run_project(
        &self,
        project: ProjectId,
        now: Timestamp,
    ) -> Result<ClusterReport, StoreError> {
        let _running = self.running.lock().await;
        let since = now.saturating_sub(self.settings.window).unwrap_or(now);
        let candidates = self
            .store
            .cluster_candidates(project, &self.model, since, CANDIDATES_PER_RUN)
            .await?;
        if candidates.is_empty() {
            return Ok(ClusterReport::default());
        }
        let existing = self.store.problem_clusters(project, &self.model).await?;
        let mut clustering = Clustering {
            sums: existing.iter().map(|c| c.centroid_sum.clone()).collect(),
            sizes: existing.iter().map(|c| c.size).collect(),
        };
        let points: Vec<&[f32]> = candidates.iter().map(|c| c.vector.as_slice()).collect();
        let placed = clustering.add(&points, self.settings.thresholds);
        let mut gained: BTreeMap<usize, Vec<(&ClusterCandidate, f32)>> = BTreeMap::new();
        for (candidate, (cluster, similarity)) in candidates.iter().zip(placed) {
            gained
                .entry(cluster)
                .or_default()
                .push((candidate, similarity));
        }
        let updates = self
            .updates(project, &existing, &clustering, &gained, &candidates)
            .await?;
        let ids = self
            .store
            .save_clusters(project, &self.model, &updates, now)
            .await?;
        let new_clusters: Vec<NewCluster> = updates
            .iter()
            .zip(&ids)
            .filter(|(update, _)| update.id.is_none())
            .map(|(update, &id)| NewCluster {
                project,
                id,
                terms: update.terms.clone(),
                size: update.size,
            })
            .collect();
        tracing::debug!(
            project = project.0,
            placed = candidates.len(),
            new = new_clusters.len(),
            "clustered problems"
        );
        Ok(ClusterReport {
            num_placed: candidates.len() as u64,
            num_grown: (updates.len() - new_clusters.len()) as u64,
            new_clusters,
        })
    }

    /// The new state of every cluster that gained members, renamed from a sample of its
    /// members' queries against the background of all the queries involved.
    async fn updates(
        &self,
        project: ProjectId,
        existing: &[ProblemCluster],
        clustering: &Clustering,
        gained: &BTreeMap<usize, Vec<(&ClusterCandidate, f32)>>,
        candidates: &[ClusterCandidate],
    ) -> Result<Vec<ClusterUpdate>, StoreError> {
        let mut texts: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (&index, members) in gained {
            let mut queries: Vec<String> = members.iter().map(|(c, _)| c.query.clone()).collect();
            if let Some(cluster) = existing.get(index) {
                queries.extend(
                    self.store
                        .cluster_members(project, cluster.id, NAMING_SAMPLE)
                        .await?
                        .into_iter()
                        .map(|m| m.query),
                );
            }
            texts.insert(index, queries);
        }
        let background = Background::new(
            texts
                .values()
                .flatten()
                .map(String::as_str)
                .chain(candidates.iter().map(|c| c.query.as_str())),
        );
        Ok(gained
            .iter()
            .map(|(&index, members)| ClusterUpdate {
                id: existing.get(index).map(|c| c.id),
                size: clustering.sizes[index],
                centroid_sum: clustering.sums[index].clone(),
                terms: distinctive_terms(texts[&index].iter().map(String::as_str), &background),
                new_members: members
                    .iter()
                    .map(|(c, similarity)| (c.trace_seq, *similarity))
                    .collect(),
            })
            .collect())
    }
}
