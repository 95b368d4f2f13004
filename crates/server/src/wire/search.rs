//! The bodies of search by meaning.

use std::collections::BTreeMap;

use feedloop_core::feedback::CorrectionKind;
use feedloop_memory::search::{CorrectionView, FeedbackSummary, SearchHit};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::TraceView;

/// A search near a text or near a stored trace (exactly one of the two).
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBody {
    /// What to find traces similar to, e.g. a new user query.
    pub text: Option<String>,
    /// A stored trace to find traces similar to (it is left out of the results).
    pub trace_id: Option<String>,
    /// Number of neighbours, 1..=100 (default 10).
    pub k: Option<usize>,
    /// Only traces with current negative feedback, explicit or implicit: similar known problems.
    pub problems_only: Option<bool>,
    /// The list filters (`environment`, `model`, `model_version`, `prompt_version`, `from`,
    /// `to`, `category`, `negative_feedback`, `meta.<key>`, …) as string values.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<BTreeMap<String, serde_json::Value>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResults {
    /// The embedding model the search used; vectors of other models are never mixed in.
    pub model: String,
    /// Nearest first.
    pub results: Vec<SearchResult>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SearchResult {
    /// Cosine similarity with the query (1 = same meaning).
    pub similarity: f32,
    pub trace: TraceView,
    pub feedback: FeedbackSummaryView,
}

/// What users said about the trace; superseded judgements are left out.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct FeedbackSummaryView {
    pub total: usize,
    /// Negative explicit or implicit feedback.
    pub negative: usize,
    /// Positive ratings.
    pub positive: usize,
    pub categories: Vec<String>,
    /// Implicit signals by type, with counts.
    pub signals: BTreeMap<String, usize>,
    pub corrections: Vec<CorrectionSummary>,
    pub comments: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CorrectionSummary {
    pub feedback_id: String,
    pub text: String,
    pub kind: CorrectionKind,
}

impl From<FeedbackSummary> for FeedbackSummaryView {
    fn from(summary: FeedbackSummary) -> Self {
        Self {
            total: summary.num_feedback,
            negative: summary.num_negative,
            positive: summary.num_positive,
            categories: summary.categories.into_iter().collect(),
            signals: summary.signals.into_iter().collect(),
            corrections: summary
                .corrections
                .into_iter()
                .map(|c: CorrectionView| CorrectionSummary {
                    feedback_id: c.feedback_id.to_string(),
                    text: c.text,
                    kind: c.kind,
                })
                .collect(),
            comments: summary.comments,
        }
    }
}

impl From<SearchHit> for SearchResult {
    fn from(hit: SearchHit) -> Self {
        Self {
            similarity: hit.similarity,
            trace: hit.trace.into(),
            feedback: hit.feedback.into(),
        }
    }
}
