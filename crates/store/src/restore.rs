//! Copying data between stores verbatim (`feedloop migrate-data`): everything is read with the
//! ordinary read methods and written back with these, keeping ids, times, supersession and key
//! hashes as they were. Every method is idempotent (existing rows are left alone), so an
//! interrupted copy can simply run again.

use async_trait::async_trait;
use feedloop_core::lesson::Lesson;
use feedloop_core::taxonomy::Category;
use feedloop_core::{InjectionId, ProjectId, Timestamp};

use crate::lessons::Injection;
use crate::{ApiKey, Result, StoredFeedback, StoredTrace};

/// A key with its hash, as copied between stores.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub key: ApiKey,
    pub hash: [u8; 32],
}

#[async_trait]
pub trait Restore: Send + Sync {
    /// The project with this name, created (without the default taxonomy) if missing.
    async fn restore_project(&self, name: &str, created_at: Timestamp) -> Result<ProjectId>;

    /// A project's keys with their hashes.
    async fn key_records(&self, project: ProjectId) -> Result<Vec<KeyRecord>>;

    async fn restore_keys(&self, project: ProjectId, keys: Vec<KeyRecord>) -> Result<()>;

    async fn restore_categories(&self, project: ProjectId, categories: Vec<Category>)
    -> Result<()>;

    /// Traces with their spans, as stored.
    async fn restore_traces(&self, project: ProjectId, traces: Vec<StoredTrace>) -> Result<()>;

    /// Feedback as stored (arrival time and supersession included).
    async fn restore_feedback(
        &self,
        project: ProjectId,
        feedback: Vec<StoredFeedback>,
    ) -> Result<()>;

    /// Every version of one lesson, oldest first, as it was written (ids, versions, times and
    /// provenance kept); nothing if the lesson exists.
    async fn restore_lesson(&self, project: ProjectId, versions: Vec<Lesson>) -> Result<()>;

    /// Up to `limit` of a project's injections with ids after `after`, in id order.
    async fn injections_after(
        &self,
        project: ProjectId,
        after: Option<InjectionId>,
        limit: usize,
    ) -> Result<Vec<Injection>>;

    /// Injections as they were recorded, linked traces included; those that exist are left
    /// alone.
    async fn restore_injections(
        &self,
        project: ProjectId,
        injections: Vec<Injection>,
    ) -> Result<()>;
}
