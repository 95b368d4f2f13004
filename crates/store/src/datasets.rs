//! The `Datasets` part of the store: named datasets per project, their items (append-only, one
//! per trace provenance), and versions, each a watermark over the items in the order they were
//! added, so that a version's item set never changes.
//!
//! Adding items and creating a version are serialised per dataset (SQLite's one writer; on
//! PostgreSQL a `FOR UPDATE` lock on the dataset's row held to commit), so an item whose
//! sequence number is at or below a version's watermark was committed before the version was.

use async_trait::async_trait;
use feedloop_core::dataset::{Dataset, DatasetItem};
use feedloop_core::{ProjectId, Timestamp, TraceId};

use crate::{Outcome, Result};

/// A dataset with its size and latest version.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSummary {
    pub dataset: Dataset,
    pub num_items: u64,
    /// The number of the latest version; 0 before the first.
    pub latest_version: u32,
}

/// A frozen item set: the items added up to `item_seq`.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetVersion {
    /// 1 for the first version of a dataset.
    pub number: u32,
    /// The sequence number of the last item in the version.
    pub item_seq: i64,
    pub num_items: u64,
    pub created_at: Timestamp,
    pub created_by: Option<String>,
    pub note: Option<String>,
}

/// An item with its place in the order of adding.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDatasetItem {
    pub seq: i64,
    pub item: DatasetItem,
}

#[async_trait]
pub trait Datasets: Send + Sync {
    /// Creates a dataset. `Conflict` (field `name`) if the project has one of that name;
    /// `NotFound` if the project does not exist.
    async fn create_dataset(&self, project: ProjectId, dataset: &Dataset) -> Result<()>;

    async fn dataset(&self, project: ProjectId, name: &str) -> Result<Option<DatasetSummary>>;

    /// The project's datasets by name.
    async fn list_datasets(&self, project: ProjectId) -> Result<Vec<DatasetSummary>>;

    /// Adds items, all or nothing; one outcome per item, in order. An item whose provenance key
    /// (its trace and compared trace) or id the dataset already has is a `Duplicate` and
    /// changes nothing (the first item of a trace stays, even when the trace is added again
    /// with more feedback), unless its id is taken by other content of another trace (or of
    /// no trace): then the whole call fails with `Conflict` (field `items[i].id`). `NotFound`
    /// if there is no such dataset.
    async fn add_dataset_items(
        &self,
        project: ProjectId,
        dataset: &str,
        items: &[DatasetItem],
    ) -> Result<Vec<Outcome>>;

    /// Items after `after` (a sequence number) and at most at `up_to`, in the order they were
    /// added, at most `limit`: the pages an export streams.
    async fn dataset_items(
        &self,
        project: ProjectId,
        dataset: &str,
        after: i64,
        up_to: Option<i64>,
        limit: u32,
    ) -> Result<Vec<StoredDatasetItem>>;

    /// Freezes the current items as the next version. `NotFound` if there is no such dataset.
    async fn create_dataset_version(
        &self,
        project: ProjectId,
        dataset: &str,
        created_by: Option<&str>,
        note: Option<&str>,
        now: Timestamp,
    ) -> Result<DatasetVersion>;

    /// Every version of a dataset, oldest first.
    async fn dataset_versions(
        &self,
        project: ProjectId,
        dataset: &str,
    ) -> Result<Vec<DatasetVersion>>;

    /// The stored vectors of `model` of these traces (traces without one are left out): what
    /// near-duplicate removal and rating contrasts compare.
    async fn vectors_of_traces(
        &self,
        project: ProjectId,
        model: &str,
        trace_ids: &[TraceId],
    ) -> Result<Vec<(TraceId, Vec<f32>)>>;
}

/// Whether an item id stored with `stored_hash` and `stored_key` is taken by other content than
/// an item with `hash` and `key`: the content differs and it is not the same trace's item (a
/// trace added again after more feedback arrived keeps its first item).
pub(crate) fn taken_by_other(
    stored_hash: &[u8],
    stored_key: &Option<String>,
    hash: &[u8],
    key: &Option<String>,
) -> bool {
    stored_hash != hash && (key.is_none() || stored_key != key)
}

pub(crate) fn dataset_not_found(name: &str) -> crate::StoreError {
    crate::StoreError::NotFound {
        what: "dataset",
        id: name.to_owned(),
    }
}

pub(crate) fn id_conflict(index: usize, id: &str) -> crate::StoreError {
    crate::StoreError::Conflict {
        item: None,
        field: format!("items[{index}].id"),
        message: format!("item {id:?} exists with other content"),
    }
}

pub(crate) fn name_conflict(name: &str) -> crate::StoreError {
    crate::StoreError::Conflict {
        item: None,
        field: "name".into(),
        message: format!("the project has a dataset named {name:?}"),
    }
}
