//! One vector index per project, for the configured embedding model, derived from the stored
//! vectors and kept current by following them.
//!
//! The store is the truth: an index is a cache of [`Embeddings::embeddings_since`] up to a
//! position (`applied_seq`). On start the saved indexes are loaded and the follower applies what
//! was written since; deleting the index folder rebuilds everything from the store. Every
//! replica runs its own follower, so a vector stored through one replica reaches the others'
//! indexes within a poll interval. Vectors of other models are never read into these indexes,
//! so a search never mixes models.
//!
//! Vectors leave the store with their trace (retention, erasure); each removal is logged
//! ([`feedloop_store::privacy::Privacy::vector_removals_since`]) and the follower drops the key
//! after applying the vectors read before it, so an index never keeps a deleted trace's vector
//! for longer than a poll interval, on any replica. (Trace numbers are never reused, so a
//! removal cannot hit a later trace's vector.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use feedloop_core::ProjectId;
use feedloop_store::Store;
use feedloop_vector::VectorIndex;
use serde::{Deserialize, Serialize};

use crate::MemoryError;

/// How many stored vectors one catch-up step reads.
const CATCH_UP_BATCH: u32 = 2_000;

/// What the saved indexes cover; written after the index files, so a crash between the two
/// replays vectors into the loaded indexes (upserts, so harmless) instead of skipping any.
#[derive(Debug, Serialize, Deserialize)]
struct SavedState {
    model: String,
    dimensions: usize,
    applied_seq: i64,
    /// The last vector removal applied; absent in files written before removals existed.
    #[serde(default)]
    removed_seq: i64,
    projects: Vec<i64>,
}

/// The indexes of every project, for one model.
pub struct ProjectIndexes {
    model: String,
    dimensions: usize,
    /// Where indexes are saved; `None` keeps them in memory only.
    dir: Option<PathBuf>,
    indexes: RwLock<HashMap<ProjectId, Arc<VectorIndex>>>,
    /// The last stored vector applied to the indexes.
    applied_seq: AtomicI64,
    /// The last vector removal applied to the indexes.
    removed_seq: AtomicI64,
    /// `(applied_seq, removed_seq)` at the last save.
    saved_at: std::sync::Mutex<(i64, i64)>,
}

impl ProjectIndexes {
    /// Loads the indexes saved in `dir` for `model` (nothing if there are none, or they are of
    /// another model or unreadable, in which case they are rebuilt from the store).
    pub fn open(model: &str, dimensions: usize, dir: Option<PathBuf>) -> Self {
        let indexes = Self {
            model: model.to_owned(),
            dimensions,
            dir,
            indexes: RwLock::default(),
            applied_seq: AtomicI64::new(0),
            removed_seq: AtomicI64::new(0),
            saved_at: std::sync::Mutex::new((0, 0)),
        };
        if let Some(dir) = &indexes.dir {
            match indexes.load(dir) {
                Ok(Some(seq)) => tracing::info!(model, applied_seq = seq, "vector indexes loaded"),
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(model, %error, "saved vector indexes unusable; rebuilding from the store");
                    indexes.write_map().clear();
                }
            }
        }
        indexes
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// The index of `project`, if it has any vector.
    pub fn get(&self, project: ProjectId) -> Option<Arc<VectorIndex>> {
        self.read_map().get(&project).cloned()
    }

    /// The position in the stored vectors that the indexes have reached.
    pub fn applied_seq(&self) -> i64 {
        self.applied_seq.load(Ordering::Acquire)
    }

    /// Number of vectors in all indexes.
    pub fn num_vectors(&self) -> usize {
        self.read_map().values().map(|index| index.len()).sum()
    }

    /// Bytes of memory all indexes hold (lists and vectors).
    pub fn memory_usage(&self) -> usize {
        let indexes: Vec<Arc<VectorIndex>> = self.read_map().values().cloned().collect();
        indexes.iter().map(|index| index.memory_usage()).sum()
    }

    /// Applies the vectors stored and removed since the last call; returns how many. Insertion
    /// (CPU work) runs on blocking threads. Removals come after the vectors, so a vector read
    /// just before its trace was deleted is dropped in the same call.
    pub async fn catch_up(&self, store: &dyn Store) -> Result<usize, MemoryError> {
        let added = self.apply_vectors(store).await?;
        let removed = self.apply_removals(store).await?;
        Ok(added + removed)
    }

    /// The position in the removal log that the indexes have reached.
    pub fn removed_seq(&self) -> i64 {
        self.removed_seq.load(Ordering::Acquire)
    }

    async fn apply_removals(&self, store: &dyn Store) -> Result<usize, MemoryError> {
        let mut applied = 0;
        loop {
            let batch = store
                .vector_removals_since(self.removed_seq(), CATCH_UP_BATCH)
                .await?;
            let Some(last) = batch.last().map(|r| r.seq) else {
                return Ok(applied);
            };
            let num_read = batch.len();
            let mut by_project: HashMap<ProjectId, Vec<u64>> = HashMap::new();
            for removal in batch {
                by_project
                    .entry(removal.project)
                    .or_default()
                    .push(key_of(removal.trace_seq));
            }
            for (project, keys) in by_project {
                let Some(index) = self.get(project) else {
                    continue;
                };
                tokio::task::spawn_blocking(move || {
                    keys.iter()
                        .try_for_each(|key| index.remove(*key).map(|_| ()))
                })
                .await
                .map_err(|e| MemoryError::Internal(format!("index task failed: {e}")))??;
            }
            applied += num_read;
            self.removed_seq.store(last, Ordering::Release);
            if num_read < CATCH_UP_BATCH as usize {
                return Ok(applied);
            }
        }
    }

    async fn apply_vectors(&self, store: &dyn Store) -> Result<usize, MemoryError> {
        let mut applied = 0;
        loop {
            let after = self.applied_seq();
            let batch = store
                .embeddings_since(&self.model, after, CATCH_UP_BATCH)
                .await?;
            let Some(last) = batch.last().map(|e| e.seq) else {
                return Ok(applied);
            };
            let num_read = batch.len();
            let mut by_project: HashMap<ProjectId, Vec<(u64, Vec<f32>)>> = HashMap::new();
            for embedding in batch {
                by_project
                    .entry(embedding.project)
                    .or_default()
                    .push((key_of(embedding.trace_seq), embedding.vector));
            }
            for (project, items) in by_project {
                let index = self.index_for(project)?;
                tokio::task::spawn_blocking(move || index.upsert_many(&items))
                    .await
                    .map_err(|e| MemoryError::Internal(format!("index task failed: {e}")))??;
            }
            applied += num_read;
            self.applied_seq.store(last, Ordering::Release);
            if num_read < CATCH_UP_BATCH as usize {
                return Ok(applied);
            }
        }
    }

    /// Saves every index and what they cover, if anything changed since the last save.
    pub fn save(&self) -> Result<(), MemoryError> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let position = (self.applied_seq(), self.removed_seq());
        if position == *self.saved_at.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(());
        }
        let (applied_seq, removed_seq) = position;
        std::fs::create_dir_all(dir).map_err(|e| MemoryError::Io(dir.clone(), e))?;
        let indexes: Vec<(ProjectId, Arc<VectorIndex>)> = self
            .read_map()
            .iter()
            .map(|(project, index)| (*project, index.clone()))
            .collect();
        for (project, index) in &indexes {
            index.save(&index_path(dir, *project))?;
            // The HNSW file of an older version, which this one cannot read.
            let _ = std::fs::remove_file(dir.join(format!("project-{}.usearch", project.0)));
        }
        let state = SavedState {
            model: self.model.clone(),
            dimensions: self.dimensions,
            applied_seq,
            removed_seq,
            projects: indexes.iter().map(|(project, _)| project.0).collect(),
        };
        let state_path = dir.join("state.json");
        let temp = dir.join("state.json.tmp");
        let text = serde_json::to_vec_pretty(&state).map_err(MemoryError::Serialize)?;
        std::fs::write(&temp, text).map_err(|e| MemoryError::Io(temp.clone(), e))?;
        std::fs::rename(&temp, &state_path).map_err(|e| MemoryError::Io(state_path, e))?;
        *self.saved_at.lock().unwrap_or_else(|e| e.into_inner()) = position;
        Ok(())
    }

    fn load(&self, dir: &Path) -> Result<Option<i64>, MemoryError> {
        let state_path = dir.join("state.json");
        let text = match std::fs::read(&state_path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(MemoryError::Io(state_path, e)),
        };
        let state: SavedState = serde_json::from_slice(&text).map_err(MemoryError::Serialize)?;
        if state.model != self.model || state.dimensions != self.dimensions {
            tracing::info!(
                saved = state.model,
                configured = self.model,
                "saved vector indexes are of another model; rebuilding"
            );
            return Ok(None);
        }
        let mut map = self.write_map();
        for project in state.projects {
            let project = ProjectId(project);
            let index = VectorIndex::load(&index_path(dir, project), self.dimensions)?;
            map.insert(project, Arc::new(index));
        }
        drop(map);
        self.applied_seq.store(state.applied_seq, Ordering::Release);
        self.removed_seq.store(state.removed_seq, Ordering::Release);
        *self.saved_at.lock().unwrap_or_else(|e| e.into_inner()) =
            (state.applied_seq, state.removed_seq);
        Ok(Some(state.applied_seq))
    }

    fn index_for(&self, project: ProjectId) -> Result<Arc<VectorIndex>, MemoryError> {
        if let Some(index) = self.get(project) {
            return Ok(index);
        }
        let mut map = self.write_map();
        if let Some(index) = map.get(&project) {
            return Ok(index.clone());
        }
        let index = Arc::new(VectorIndex::new(self.dimensions)?);
        map.insert(project, index.clone());
        Ok(index)
    }

    fn read_map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ProjectId, Arc<VectorIndex>>> {
        self.indexes.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_map(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ProjectId, Arc<VectorIndex>>> {
        self.indexes.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// A trace's key in an index: its sequence number in the store.
pub fn key_of(trace_seq: i64) -> u64 {
    trace_seq.unsigned_abs()
}

/// The inverse of [`key_of`] (sequence numbers are positive).
pub fn trace_seq_of(key: u64) -> i64 {
    i64::try_from(key).unwrap_or(i64::MAX)
}

fn index_path(dir: &Path, project: ProjectId) -> PathBuf {
    dir.join(format!("project-{}.vectors", project.0))
}

/// The folder of one model's indexes under `root`: models named alike but for characters
/// unsafe in file names still get distinct folders.
pub fn model_dir(root: &Path, model: &str) -> PathBuf {
    let safe: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let digest = model.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    root.join(format!("{safe}-{:08x}", digest as u32))
}
