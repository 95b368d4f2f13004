//! Search by meaning: the traces nearest to a text or to another trace, each with a summary of
//! its feedback. "Similar known problems" are the nearest traces that carry negative feedback
//! (explicit or implicit), with their corrections.
//!
//! Without a filter the project's index answers alone (its probed lists, or exact below its
//! threshold). With a filter the store first names the matching traces: a small set is
//! searched exactly (so a selective filter still gives k results), a large one through the
//! index with the set as a predicate.

use std::collections::{BTreeSet, HashMap, HashSet};

use feedloop_core::feedback::{CorrectionKind, FeedbackValue, RatingSign};
use feedloop_core::filter::Filter;
use feedloop_core::{FeedbackId, ProjectId, TraceId};
use feedloop_store::{Store, StoredFeedback, StoredTrace};
use feedloop_vector::Neighbor;

use crate::indexes::{key_of, trace_seq_of};
use crate::{MemoryError, SemanticMemory};

/// Largest number of neighbours one search returns.
pub const MAX_K: usize = 100;
/// Filtered candidate sets up to this size are searched exactly.
const EXACT_CANDIDATES: usize = 20_000;
/// Upper bound on the candidate set read from the store for one filtered search.
const MAX_CANDIDATES: u32 = 5_000_000;

/// What to search near.
#[derive(Debug, Clone)]
pub enum Query {
    Text(String),
    /// A stored trace; it is left out of its own results.
    Trace(TraceId),
}

#[derive(Debug, Clone)]
pub struct SearchRequest {
    pub query: Query,
    pub k: usize,
    pub filter: Filter,
    /// Only traces with current negative feedback (similar known problems).
    pub problems_only: bool,
}

/// One neighbour.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub trace: StoredTrace,
    /// Cosine similarity with the query, 1.0 for the same meaning.
    pub similarity: f32,
    pub feedback: FeedbackSummary,
}

/// What users said about a trace (superseded judgements left out).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeedbackSummary {
    pub num_feedback: usize,
    pub num_negative: usize,
    pub num_positive: usize,
    pub categories: BTreeSet<String>,
    /// Implicit signals by type, with how often each was seen.
    pub signals: HashMap<String, usize>,
    pub corrections: Vec<CorrectionView>,
    pub comments: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CorrectionView {
    pub feedback_id: FeedbackId,
    pub text: String,
    pub kind: CorrectionKind,
}

impl FeedbackSummary {
    pub fn of(feedback: &[StoredFeedback]) -> Self {
        let mut summary = Self::default();
        for stored in feedback.iter().filter(|f| f.superseded_by.is_none()) {
            let feedback = &stored.feedback;
            summary.num_feedback += 1;
            if stored.negative {
                summary.num_negative += 1;
            } else if feedback.rating_sign() == Some(RatingSign::Positive) {
                summary.num_positive += 1;
            }
            summary
                .categories
                .extend(feedback.value.categories().iter().cloned());
            match &feedback.value {
                FeedbackValue::Correction(correction) => {
                    summary.corrections.push(CorrectionView {
                        feedback_id: feedback.id.clone(),
                        text: correction.text.clone(),
                        kind: correction.kind,
                    });
                }
                FeedbackValue::Comment(text) => summary.comments.push(text.clone()),
                FeedbackValue::Signal(signal) => {
                    *summary
                        .signals
                        .entry(signal.signal_type.clone())
                        .or_default() += 1;
                }
                FeedbackValue::Rating(_)
                | FeedbackValue::Category(_)
                | FeedbackValue::Annotation(_) => {}
            }
        }
        summary
    }
}

impl SemanticMemory {
    /// The `k` traces of `project` nearest to the query that pass the filter, nearest first.
    pub async fn search(
        &self,
        project: ProjectId,
        request: &SearchRequest,
    ) -> Result<Vec<SearchHit>, MemoryError> {
        let k = request.k.clamp(1, MAX_K);
        let store = self.store.as_ref();
        let (vector, exclude) = match &request.query {
            Query::Text(text) => (self.embed_one(text.clone()).await?, None),
            Query::Trace(id) => {
                let (seq, vector) = self.trace_vector(project, id).await?;
                (vector, Some(key_of(seq)))
            }
        };
        let Some(index) = self.indexes.get(project) else {
            return Ok(Vec::new());
        };
        let mut filter = request.filter.clone();
        filter.negative_feedback |= request.problems_only;
        // One more than asked, in case the query trace itself is among the neighbours.
        let wanted = k + usize::from(exclude.is_some());
        let neighbours = if filter == Filter::default() {
            run_blocking(move || index.search(&vector, wanted)).await?
        } else {
            let seqs = store.trace_seqs(project, &filter, MAX_CANDIDATES).await?;
            let keys: Vec<u64> = seqs.into_iter().map(key_of).collect();
            if keys.len() <= EXACT_CANDIDATES {
                run_blocking(move || index.search_among(&vector, wanted, &keys)).await?
            } else {
                let keys: HashSet<u64> = keys.into_iter().collect();
                run_blocking(move || {
                    index.search_filtered(&vector, wanted, &|key| keys.contains(&key))
                })
                .await?
            }
        };
        let neighbours: Vec<Neighbor> = neighbours
            .into_iter()
            .filter(|n| Some(n.key) != exclude)
            .take(k)
            .collect();
        self.resolve(store, project, neighbours).await
    }

    /// Embeds texts with the model of this memory's indexes, one vector per text, in order.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, MemoryError> {
        Ok(self.embedder.embed(texts).await?)
    }

    /// [`Self::embed`] on the embedder's background lane, for bulk work (exports) that must
    /// not delay queries.
    pub async fn embed_bulk(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, MemoryError> {
        Ok(self.embedder.embed_bulk(texts).await?)
    }

    pub async fn embed_one(&self, text: String) -> Result<Vec<f32>, MemoryError> {
        self.embedder
            .embed(vec![text])
            .await?
            .pop()
            .ok_or_else(|| MemoryError::Internal("the embedder returned no vector".into()))
    }

    /// A stored trace's vector: from the index, or embedded now if the worker has not reached it.
    async fn trace_vector(
        &self,
        project: ProjectId,
        id: &TraceId,
    ) -> Result<(i64, Vec<f32>), MemoryError> {
        let filter = Filter {
            trace_id: Some(id.as_str().to_owned()),
            ..Filter::default()
        };
        let seq = self
            .store
            .trace_seqs(project, &filter, 1)
            .await?
            .pop()
            .ok_or_else(|| MemoryError::TraceNotFound(id.clone()))?;
        if let Some(vector) = self
            .indexes
            .get(project)
            .and_then(|index| index.vector(key_of(seq)))
        {
            return Ok((seq, vector));
        }
        let trace = self
            .store
            .traces_by_seq(project, &[seq])
            .await?
            .pop()
            .ok_or_else(|| MemoryError::TraceNotFound(id.clone()))?;
        let input = trace
            .trace
            .input
            .ok_or_else(|| MemoryError::NoInput(id.clone()))?;
        Ok((seq, self.embed_one(input).await?))
    }

    async fn resolve(
        &self,
        store: &dyn Store,
        project: ProjectId,
        neighbours: Vec<Neighbor>,
    ) -> Result<Vec<SearchHit>, MemoryError> {
        let seqs: Vec<i64> = neighbours.iter().map(|n| trace_seq_of(n.key)).collect();
        let mut traces: HashMap<i64, StoredTrace> = store
            .traces_by_seq(project, &seqs)
            .await?
            .into_iter()
            .map(|trace| (trace.seq, trace))
            .collect();
        let ids: Vec<TraceId> = traces.values().map(|t| t.trace.id.clone()).collect();
        let feedback: HashMap<TraceId, Vec<StoredFeedback>> = store
            .feedback_on(project, &ids)
            .await?
            .into_iter()
            .collect();
        Ok(neighbours
            .into_iter()
            .filter_map(|neighbour| {
                // A trace deleted since it was indexed is left out.
                let trace = traces.remove(&trace_seq_of(neighbour.key))?;
                let summary = feedback
                    .get(&trace.trace.id)
                    .map(|f| FeedbackSummary::of(f))
                    .unwrap_or_default();
                Some(SearchHit {
                    trace,
                    similarity: neighbour.similarity,
                    feedback: summary,
                })
            })
            .collect())
    }
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, feedloop_vector::VectorError> + Send + 'static,
) -> Result<T, MemoryError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| MemoryError::Internal(format!("search task failed: {e}")))?
        .map_err(MemoryError::from)
}
