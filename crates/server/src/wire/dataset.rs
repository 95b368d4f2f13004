//! The JSON bodies of the dataset routes and their conversion to the domain.

use feedloop_core::dataset::{
    DatasetItem, ItemContext, ItemOrigin, ItemProvenance, ItemSource, derived_item_id,
};
use feedloop_core::feedback::Annotation;
use feedloop_core::{DatasetItemId, FeedbackId, Timestamp, TraceId, ValidationError};
use feedloop_store::{DatasetSummary, DatasetVersion};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A new dataset.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDatasetBody {
    /// 1 to 64 ASCII letters, digits, `_`, `-` or `.`; unique in the project.
    pub name: String,
    pub description: Option<String>,
    /// Who creates it (default: the key).
    pub author: Option<String>,
}

/// A dataset with its size and latest version (0 before the first).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatasetView {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    pub num_items: u64,
    pub latest_version: u32,
}

impl From<DatasetSummary> for DatasetView {
    fn from(summary: DatasetSummary) -> Self {
        Self {
            name: summary.dataset.name,
            description: summary.dataset.description,
            created_at: summary.dataset.created_at.to_string(),
            created_by: summary.dataset.created_by,
            num_items: summary.num_items,
            latest_version: summary.latest_version,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DatasetList {
    pub datasets: Vec<DatasetView>,
}

/// One item as a client sends it. Without an id, an item that names a trace gets the id
/// derived from the trace (adding the same trace again is a duplicate); one that names none
/// gets a new id.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    pub id: Option<String>,
    pub input: String,
    #[serde(default)]
    pub context: ItemContext,
    pub ideal_output: Option<String>,
    pub rejected_output: Option<String>,
    /// correction, pairwise_vote, rating or manual (the default).
    pub source: Option<ItemSource>,
    #[serde(default)]
    pub categories: Vec<String>,
    #[serde(default)]
    pub annotations: Vec<Annotation>,
    #[serde(default)]
    pub comments: Vec<String>,
    /// The trace the item comes from.
    pub trace_id: Option<String>,
    /// The other trace of a pairwise comparison.
    pub compared_trace_id: Option<String>,
    #[serde(default)]
    pub feedback_ids: Vec<String>,
}

/// Items to add, all or nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItemsBody {
    pub items: Vec<ItemBody>,
    /// Who adds them (default: the key).
    pub author: Option<String>,
    /// api (the default) or review.
    pub origin: Option<ItemOrigin>,
}

/// What the origin, author and time of an add are.
pub struct AddContext<'a> {
    pub origin: ItemOrigin,
    pub added_by: &'a str,
    pub added_at: Timestamp,
    /// A fresh id for an item that names neither an id nor a trace.
    pub fresh_id: &'a dyn Fn() -> String,
}

impl ItemBody {
    /// The domain item, checked; errors name the field within the item.
    pub fn into_item(self, add: &AddContext<'_>) -> Result<DatasetItem, ValidationError> {
        let trace_id = self
            .trace_id
            .map(|id| TraceId::parse("trace_id", id))
            .transpose()?;
        let compared_trace_id = self
            .compared_trace_id
            .map(|id| TraceId::parse("compared_trace_id", id))
            .transpose()?;
        if compared_trace_id.is_some() && trace_id.is_none() {
            return Err(ValidationError::new(
                "compared_trace_id",
                "needs trace_id too",
            ));
        }
        let feedback_ids = self
            .feedback_ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| FeedbackId::parse(&format!("feedback_ids[{i}]"), id))
            .collect::<Result<Vec<_>, _>>()?;
        for (index, annotation) in self.annotations.iter().enumerate() {
            annotation
                .check()
                .map_err(|e| e.within(&format!("annotations[{index}]")))?;
        }
        let mut item = DatasetItem {
            id: derived_item_id(""),
            input: self.input,
            context: self.context,
            ideal_output: self.ideal_output,
            rejected_output: self.rejected_output,
            source: self.source.unwrap_or_default(),
            categories: self.categories,
            annotations: self.annotations,
            comments: self.comments,
            provenance: ItemProvenance {
                origin: add.origin,
                trace_id,
                compared_trace_id,
                feedback_ids,
                added_by: add.added_by.to_owned(),
                added_at: add.added_at,
            },
        };
        item.id = match (self.id, item.provenance_key()) {
            (Some(id), _) => DatasetItemId::parse("id", id)?,
            (None, Some(key)) => derived_item_id(&key),
            (None, None) => DatasetItemId::parse("id", (add.fresh_id)())?,
        };
        item.check()?;
        Ok(item)
    }
}

/// Bulk add from a feedback filter.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FromFeedbackBody {
    /// The list filters (`negative_feedback`, `category`, `rating`, `kind`, `environment`,
    /// `from`, `to`, `meta.<key>`, …), values as strings (or booleans).
    #[serde(default)]
    pub filter: BTreeMap<String, serde_json::Value>,
    /// Most traces to read (default and limit 100,000).
    pub max_traces: Option<u64>,
    /// Who adds the items (default: the key).
    pub author: Option<String>,
}

/// A new version: the items as they are now, frozen.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewVersionBody {
    pub author: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionView {
    pub version: u32,
    pub num_items: u64,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl From<DatasetVersion> for VersionView {
    fn from(version: DatasetVersion) -> Self {
        Self {
            version: version.number,
            num_items: version.num_items,
            created_at: version.created_at.to_string(),
            created_by: version.created_by,
            note: version.note,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VersionList {
    pub versions: Vec<VersionView>,
}

/// A page of items in the order they were added.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ItemPage {
    pub items: Vec<DatasetItem>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}
