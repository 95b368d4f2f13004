//! Streaming exports: items are read from the store a page at a time, filtered, freed of
//! near-duplicates, scrubbed of personal data, assigned to a split and written as lines of the
//! chosen format into a channel, which the HTTP response or a file writer drains. Memory holds
//! one page of items, the kept vectors of the duplicate index and, for preferences, the single
//! answers waiting for a rating contrast.
//!
//! CPU work (searches, scrubbing, rendering) runs on blocking threads, page by page.

mod contrast;
pub mod dedup;
mod format;
mod manifest;

use feedloop_core::ProjectId;
use feedloop_core::dataset::{DatasetItem, ItemOrigin, ItemSource, Split, split_of};
use feedloop_core::pii::{PiiCounts, PiiMode, scrub};
use feedloop_core::{TraceId, ValidationError};
use feedloop_memory::SemanticMemory;
use feedloop_store::{Store, StoredDatasetItem};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::mpsc;

pub use format::{CSV_HEADER, ExportFormat};
pub use manifest::{Counts, LineProvenance, Manifest, RemovedDuplicate};

use crate::DatasetError;
use dedup::{NearDuplicates, Verdict, normalised};

/// Items read from the store at a time.
const PAGE: u32 = 512;

/// Which items to export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionRef {
    /// The items as they are now; exporting creates no version.
    #[default]
    Latest,
    Number(u32),
}

/// Items to keep; every condition set must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ItemFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<ItemOrigin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ItemSource>,
}

impl ItemFilter {
    pub fn keeps(&self, item: &DatasetItem) -> bool {
        self.category
            .as_ref()
            .is_none_or(|c| item.categories.contains(c))
            && self.origin.is_none_or(|o| item.provenance.origin == o)
            && self.source.is_none_or(|s| item.source == s)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportOptions {
    pub format: ExportFormat,
    pub version: VersionRef,
    pub filter: ItemFilter,
    /// Remove items whose input is at least this similar to an earlier item's; `None` keeps
    /// near-duplicates.
    pub dedup_threshold: Option<f32>,
    pub pii: PiiMode,
    /// Seeds the split: the same seed puts every item on the same side.
    pub seed: u64,
    /// The share of items (about) that goes to validation.
    pub validation_fraction: f64,
    /// Preferences only: the least similarity of two prompts whose liked and disliked answers
    /// make a pair.
    pub contrast_threshold: f32,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            format: ExportFormat::Openai,
            version: VersionRef::Latest,
            filter: ItemFilter::default(),
            dedup_threshold: Some(0.95),
            pii: PiiMode::Mask,
            seed: 0,
            validation_fraction: 0.1,
            contrast_threshold: 0.9,
        }
    }
}

impl ExportOptions {
    pub fn check(&self) -> Result<(), ValidationError> {
        if !(0.0..=1.0).contains(&self.validation_fraction) {
            return Err(ValidationError::new(
                "validation_fraction",
                "must be within 0..=1",
            ));
        }
        if let Some(threshold) = self.dedup_threshold
            && !(0.0..=1.0).contains(&threshold)
        {
            return Err(ValidationError::new(
                "dedup_threshold",
                "must be within 0..=1",
            ));
        }
        if !(0.0..=1.0).contains(&self.contrast_threshold) {
            return Err(ValidationError::new(
                "contrast_threshold",
                "must be within 0..=1",
            ));
        }
        Ok(())
    }
}

/// One line of the export, for the file of its split (without the line end).
#[derive(Debug, Clone, PartialEq)]
pub struct ExportEvent {
    pub split: Split,
    pub line: String,
}

/// Exports `dataset` with `options`, sending each line into `lines`; returns the manifest once
/// the last line is sent. Fails with [`DatasetError::Abandoned`] when the receiver is dropped.
pub async fn run_export(
    store: Arc<dyn Store>,
    memory: Arc<SemanticMemory>,
    project: ProjectId,
    dataset: &str,
    options: &ExportOptions,
    lines: mpsc::Sender<ExportEvent>,
) -> Result<Manifest, DatasetError> {
    let up_to = resolve_version(store.as_ref(), project, dataset, options.version).await?;
    let needs_vectors =
        options.dedup_threshold.is_some() || options.format == ExportFormat::Preference;
    let mut state = State::new(options, memory.dimensions())?;
    let mut after = 0;
    loop {
        let page = store
            .dataset_items(project, dataset, after, up_to, PAGE)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        state.counts.items += page.len() as u64;
        let page: Vec<StoredDatasetItem> = page
            .into_iter()
            .filter(|stored| options.filter.keeps(&stored.item))
            .collect();
        let vectors = if needs_vectors {
            vectors_of(store.as_ref(), &memory, project, &page).await?
        } else {
            Vec::new()
        };
        let (next_state, out) = tokio::task::spawn_blocking(move || {
            let mut state = state;
            let out = state.page(page, vectors);
            out.map(|out| (state, out))
        })
        .await
        .map_err(|e| DatasetError::Internal(format!("export task failed: {e}")))??;
        state = next_state;
        send_all(&lines, out).await?;
    }
    let (state, out) = tokio::task::spawn_blocking(move || {
        let mut state = state;
        let out = state.contrasts();
        out.map(|out| (state, out))
    })
    .await
    .map_err(|e| DatasetError::Internal(format!("export task failed: {e}")))??;
    send_all(&lines, out).await?;
    let version = match options.version {
        VersionRef::Latest => "latest".to_owned(),
        VersionRef::Number(number) => number.to_string(),
    };
    Ok(Manifest {
        dataset: dataset.to_owned(),
        version,
        last_item_seq: after.max(up_to.unwrap_or(0)),
        format: options.format.as_str().to_owned(),
        options: options.clone(),
        embedding_model: memory.model_id().to_owned(),
        counts: state.counts,
        removed_duplicates: state.removed,
        pii: state.pii,
        provenance: state.provenance,
    })
}

/// The sequence number a version ends at; `None` for `latest`.
async fn resolve_version(
    store: &dyn Store,
    project: ProjectId,
    dataset: &str,
    version: VersionRef,
) -> Result<Option<i64>, DatasetError> {
    if store.dataset(project, dataset).await?.is_none() {
        return Err(DatasetError::DatasetNotFound(dataset.to_owned()));
    }
    match version {
        VersionRef::Latest => Ok(None),
        VersionRef::Number(number) => store
            .dataset_versions(project, dataset)
            .await?
            .into_iter()
            .find(|v| v.number == number)
            .map(|v| Some(v.item_seq))
            .ok_or_else(|| DatasetError::VersionNotFound {
                dataset: dataset.to_owned(),
                version: number,
            }),
    }
}

/// One unit vector per item, in order: the stored vector of the item's trace where there is
/// one, else the item's input embedded now (on the embedder's bulk lane).
async fn vectors_of(
    store: &dyn Store,
    memory: &SemanticMemory,
    project: ProjectId,
    page: &[StoredDatasetItem],
) -> Result<Vec<Vec<f32>>, DatasetError> {
    let trace_ids: Vec<TraceId> = page
        .iter()
        .filter_map(|stored| stored.item.provenance.trace_id.clone())
        .collect();
    let stored: HashMap<TraceId, Vec<f32>> = store
        .vectors_of_traces(project, memory.model_id(), &trace_ids)
        .await?
        .into_iter()
        .filter(|(_, vector)| vector.len() == memory.dimensions())
        .collect();
    let missing: Vec<String> = page
        .iter()
        .filter(|s| {
            s.item
                .provenance
                .trace_id
                .as_ref()
                .is_none_or(|id| !stored.contains_key(id))
        })
        .map(|s| s.item.input.clone())
        .collect();
    let mut embedded = if missing.is_empty() {
        Vec::new()
    } else {
        memory.embed_bulk(missing).await?
    }
    .into_iter();
    page.iter()
        .map(|s| {
            let vector = match s
                .item
                .provenance
                .trace_id
                .as_ref()
                .and_then(|id| stored.get(id))
            {
                Some(vector) => vector.clone(),
                None => embedded.next().ok_or_else(|| {
                    DatasetError::Internal("the embedder returned too few vectors".into())
                })?,
            };
            Ok(normalised(vector))
        })
        .collect()
}

async fn send_all(
    lines: &mpsc::Sender<ExportEvent>,
    out: Vec<ExportEvent>,
) -> Result<(), DatasetError> {
    for event in out {
        lines
            .send(event)
            .await
            .map_err(|_| DatasetError::Abandoned)?;
    }
    Ok(())
}

/// A single answer waiting for a rating contrast.
struct Single {
    item: DatasetItem,
    vector: Vec<f32>,
}

/// What an export carries from page to page.
struct State {
    options: ExportOptions,
    dimensions: usize,
    /// One duplicate index per role (see [`State::role`]); empty without dedup.
    dedup: Vec<NearDuplicates>,
    /// Ids of kept items by sequence number, to name what a duplicate duplicates.
    kept_ids: HashMap<u64, String>,
    counts: Counts,
    removed: Vec<RemovedDuplicate>,
    pii: PiiCounts,
    provenance: Vec<LineProvenance>,
    liked: Vec<Single>,
    disliked: Vec<Single>,
}

impl State {
    fn new(options: &ExportOptions, dimensions: usize) -> Result<Self, DatasetError> {
        let dedup = match options.dedup_threshold {
            Some(threshold) => (0..3)
                .map(|_| NearDuplicates::new(dimensions, threshold))
                .collect::<Result<Vec<_>, _>>()?,
            None => Vec::new(),
        };
        Ok(Self {
            options: options.clone(),
            dimensions,
            dedup,
            kept_ids: HashMap::new(),
            counts: Counts::default(),
            removed: Vec::new(),
            pii: PiiCounts::default(),
            provenance: Vec::new(),
            liked: Vec::new(),
            disliked: Vec::new(),
        })
    }

    /// The lines of one page of (filtered) items with their vectors (empty when not needed).
    fn page(
        &mut self,
        page: Vec<StoredDatasetItem>,
        vectors: Vec<Vec<f32>>,
    ) -> Result<Vec<ExportEvent>, DatasetError> {
        let verdicts = self.judge(&page, &vectors)?;
        let mut vectors = vectors.into_iter();
        let mut out = Vec::new();
        for (stored, verdict) in page.into_iter().zip(verdicts) {
            let vector = vectors.next();
            if let Verdict::DuplicateOf(key, similarity) = verdict {
                self.counts.duplicates_removed += 1;
                self.removed.push(RemovedDuplicate {
                    item_id: stored.item.id.into_string(),
                    duplicate_of: self.kept_ids.get(&key).cloned().unwrap_or_default(),
                    similarity,
                });
                continue;
            }
            if !self.dedup.is_empty() {
                self.kept_ids.insert(
                    stored.seq.unsigned_abs(),
                    stored.item.id.as_str().to_owned(),
                );
            }
            let item = self.scrubbed(stored.item);
            // Scrubbing can make two answers equal ("call [PHONE]"): no pair then.
            if item.is_pair() && item.ideal_output == item.rejected_output {
                self.counts.unused += 1;
                continue;
            }
            match self.options.format.line(&item) {
                Some(line) => out.push(self.line(&[&item], line)),
                None if self.options.format == ExportFormat::Preference => {
                    let single = Single {
                        vector: vector.unwrap_or_default(),
                        item,
                    };
                    if single.item.ideal_output.is_some() {
                        self.liked.push(single);
                    } else {
                        self.disliked.push(single);
                    }
                }
                None => self.counts.unused += 1,
            }
        }
        Ok(out)
    }

    /// Which duplicate index an item is judged against. For preferences, a liked answer, a
    /// disliked one and a pair to near-identical prompts are no duplicates of each other: a
    /// liked and a disliked answer make a contrast pair. Other formats train on the input and
    /// the ideal output, so every item is judged against every other.
    fn role(&self, item: &DatasetItem) -> usize {
        if self.options.format != ExportFormat::Preference {
            return 0;
        }
        match (&item.ideal_output, &item.rejected_output) {
            (Some(_), Some(_)) => 0,
            (Some(_), None) => 1,
            (None, _) => 2,
        }
    }

    /// The near-duplicate verdict of each item of the page, in order.
    fn judge(
        &self,
        page: &[StoredDatasetItem],
        vectors: &[Vec<f32>],
    ) -> Result<Vec<Verdict>, DatasetError> {
        if self.dedup.is_empty() {
            return Ok(vec![Verdict::Kept; page.len()]);
        }
        let mut verdicts = vec![Verdict::Kept; page.len()];
        for (role, dedup) in self.dedup.iter().enumerate() {
            let positions: Vec<usize> = (0..page.len())
                .filter(|&i| self.role(&page[i].item) == role)
                .collect();
            let keyed: Vec<(u64, Vec<f32>)> = positions
                .iter()
                .map(|&i| (page[i].seq.unsigned_abs(), vectors[i].clone()))
                .collect();
            for (position, verdict) in positions.into_iter().zip(dedup.judge(&keyed)?) {
                verdicts[position] = verdict;
            }
        }
        Ok(verdicts)
    }

    /// Pairs the single answers by rating contrast (preferences only).
    fn contrasts(&mut self) -> Result<Vec<ExportEvent>, DatasetError> {
        let liked = std::mem::take(&mut self.liked);
        let disliked = std::mem::take(&mut self.disliked);
        let liked_vectors: Vec<Vec<f32>> = liked.iter().map(|s| s.vector.clone()).collect();
        let disliked_vectors: Vec<Vec<f32>> = disliked.iter().map(|s| s.vector.clone()).collect();
        let pairs = contrast::pair(
            self.dimensions,
            &liked_vectors,
            &disliked_vectors,
            self.options.contrast_threshold,
        )?;
        let mut out = Vec::with_capacity(pairs.len());
        let mut num_paired = 0;
        for (i, j, _) in pairs {
            let (bad, good) = (&disliked[i].item, &liked[j].item);
            let (Some(chosen), Some(rejected)) = (&good.ideal_output, &bad.rejected_output) else {
                continue;
            };
            if chosen == rejected {
                continue;
            }
            let line = format::preference_line(&bad.input, chosen, rejected);
            out.push(self.line(&[bad, good], line));
            self.counts.contrast_pairs += 1;
            num_paired += 2;
        }
        self.counts.unused += (liked.len() + disliked.len()) as u64 - num_paired;
        Ok(out)
    }

    /// `line`, made of `items` (the first decides the split), with its provenance recorded.
    fn line(&mut self, items: &[&DatasetItem], line: String) -> ExportEvent {
        let split = split_of(
            self.options.seed,
            items[0].id.as_str(),
            self.options.validation_fraction,
        );
        let number = match split {
            Split::Train => {
                self.counts.train += 1;
                self.counts.train
            }
            Split::Validation => {
                self.counts.validation += 1;
                self.counts.validation
            }
        };
        self.provenance.push(LineProvenance {
            split,
            line: number,
            item_ids: items.iter().map(|i| i.id.as_str().to_owned()).collect(),
            trace_ids: items
                .iter()
                .flat_map(|i| {
                    i.provenance
                        .trace_id
                        .iter()
                        .chain(&i.provenance.compared_trace_id)
                })
                .map(|t| t.as_str().to_owned())
                .collect(),
            feedback_ids: items
                .iter()
                .flat_map(|i| &i.provenance.feedback_ids)
                .map(|f| f.as_str().to_owned())
                .collect(),
        });
        ExportEvent { split, line }
    }

    /// The item with personal data replaced in every text the formats write.
    fn scrubbed(&mut self, mut item: DatasetItem) -> DatasetItem {
        let mode = self.options.pii;
        if mode == PiiMode::Off {
            return item;
        }
        let mut clean = |text: &mut String| {
            let (scrubbed, counts) = scrub(text, mode);
            if counts.total() > 0 {
                *text = scrubbed;
                self.pii.add(&counts);
            }
        };
        clean(&mut item.input);
        for text in [
            &mut item.ideal_output,
            &mut item.rejected_output,
            &mut item.context.system_prompt,
        ]
        .into_iter()
        .flatten()
        {
            clean(text);
        }
        for message in &mut item.context.messages {
            clean(&mut message.content);
        }
        item
    }
}
