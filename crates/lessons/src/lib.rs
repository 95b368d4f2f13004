//! The loop: feedback becomes lessons; lessons are matched to new queries and injected into the
//! prompt; every injection is recorded (or held out) so that each lesson's effect on later
//! feedback can be measured.
//!
//! - [`matcher`] decides which lessons apply to a query (a vote of the nearest evidence);
//! - [`render`] turns them into the block for the system prompt, within a budget;
//! - [`propose`] drafts lessons from feedback and groups negative feedback into proposals;
//! - [`effect`] draws the hold-out and computes rates with confidence intervals;
//! - [`LessonEngine`] joins them to the store and semantic memory.

pub mod effect;
pub mod matcher;
pub mod propose;
pub mod render;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use feedloop_core::feedback::FeedbackValue;
use feedloop_core::lesson::{
    InjectedLesson, Lesson, LessonStatus, LoopSettings, Origin, QueryMetadata,
};
use feedloop_core::{InjectionId, LessonId, ProjectId, Timestamp, TraceId, ValidationError};
use feedloop_memory::{MemoryError, SemanticMemory};
use feedloop_store::lessons::{EvidenceWatermark, Injection, NegativeCase};
use feedloop_store::{Store, StoreError};
use serde::Serialize;

use effect::{Difference, Rate};
use matcher::{Evidence, Label, MatchSettings};
use propose::{Case, Draft, Fingerprint};
use render::Budget;

/// A negative case's trace must score below this satisfaction estimate to be proposed from; a
/// lone client abandon (-0.33) or derived rephrase (about -0.4) is below, a lone derived
/// abandonment (-0.13) is not.
pub const MIN_DISSATISFACTION: f64 = -0.2;

/// Most active lessons one project matches against.
const MAX_ACTIVE_LESSONS: u32 = 10_000;
/// Most traces that went well taken as contrast.
const MAX_CONTRAST: u32 = 50_000;
/// Most negative feedback items one proposal run or repeat-mistake count reads.
const MAX_CASES: u32 = 20_000;
/// Similarity at which a new negative query counts as a repeat of a corrected one.
pub const REPEAT_SIMILARITY: f32 = 0.75;

#[derive(Debug, thiserror::Error)]
pub enum LoopError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("{0}")]
    Invalid(ValidationError),
    #[error("lesson {0:?} not found")]
    LessonNotFound(LessonId),
    #[error("trace {0:?} not found")]
    TraceNotFound(TraceId),
}

impl From<ValidationError> for LoopError {
    fn from(error: ValidationError) -> Self {
        Self::Invalid(error)
    }
}

pub type Result<T, E = LoopError> = std::result::Result<T, E>;

/// A query asking for lessons.
#[derive(Debug, Clone, Default)]
pub struct ContextRequest {
    pub query: String,
    /// Keeps a session in or out of the hold-out throughout.
    pub session_id: Option<String>,
    /// The trace the answer will be stored as, when the app knows it already.
    pub trace_id: Option<TraceId>,
    pub metadata: QueryMetadata,
    pub budget: Option<Budget>,
}

/// Feedback to make a lesson from: traces, and optionally which feedback on them (default:
/// all their current negative feedback); a title and priority replace the drafted ones.
#[derive(Debug, Clone, Default)]
pub struct FeedbackSelection {
    pub trace_ids: Vec<TraceId>,
    pub feedback_ids: Option<Vec<feedloop_core::FeedbackId>>,
    pub title: Option<String>,
    pub priority: Option<i32>,
}

/// A lesson chosen for a query, and why.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AppliedLesson {
    pub lesson: Lesson,
    /// The lesson's share of the vote among the nearest evidence, 0..=1.
    pub score: f32,
    /// Similarity of the lesson's nearest example to the query.
    pub similarity: f32,
    pub matched_example: String,
    pub why: String,
    /// In the block (false: held out, or cut by the budget or as a duplicate).
    pub injected: bool,
}

/// The lessons for a query, and the block to put into the system prompt.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContextAnswer {
    /// Log this with the trace (metadata `feedloop.injection_id`); `None` when no lesson
    /// applied.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub injection_id: Option<InjectionId>,
    /// The request is in the hold-out: lessons are listed and recorded, not injected.
    pub holdout: bool,
    pub lessons: Vec<AppliedLesson>,
    /// The rendered block, `None` when nothing is to be injected.
    pub block: Option<String>,
}

impl ContextAnswer {
    /// No lesson applies: nothing to inject or record.
    fn nothing() -> Self {
        Self {
            injection_id: None,
            holdout: false,
            lessons: Vec::new(),
            block: None,
        }
    }
}

/// A lesson's measured effect.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EffectReport {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub lesson_id: LessonId,
    pub impressions: u64,
    pub holdout_impressions: u64,
    /// Negative-feedback rate of traces that got the lesson.
    pub treated: Rate,
    /// Negative-feedback rate of traces held out from it.
    pub holdout: Rate,
    /// treated − holdout with a 95 % interval; below zero, the lesson helps.
    pub difference: Option<Difference>,
}

/// How often users hit a problem that was already corrected.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RepeatMistakes {
    /// Negative feedback in the window (on traces with a query).
    pub negative_feedback: u64,
    /// Of those, how many fell near an earlier corrected problem.
    pub repeats: u64,
    pub rate: Option<f64>,
    pub window_hours: u32,
    pub similarity: f32,
}

/// What one project's matching reads, built from the store.
struct Evidenced {
    lessons: Vec<Lesson>,
    evidence: Evidence,
    settings: LoopSettings,
}

/// A project's evidence and when the store was last asked whether it changed.
struct Snapshot {
    data: Arc<Evidenced>,
    watermark: EvidenceWatermark,
    checked_at: Instant,
    /// A background refresh is under way.
    refreshing: AtomicBool,
}

/// Lessons and context for every project, over the store and semantic memory.
pub struct LessonEngine {
    store: Arc<dyn Store>,
    memory: Arc<SemanticMemory>,
    matching: MatchSettings,
    /// How long a snapshot is used before the store is asked whether it changed.
    refresh_interval: Duration,
    snapshots: Mutex<HashMap<ProjectId, Arc<Snapshot>>>,
    /// Bumped by every [`Self::invalidate`]: a rebuild that began before one does not keep its
    /// result, which may predate the change.
    invalidations: std::sync::atomic::AtomicU64,
    rebuilds: tokio::sync::Mutex<()>,
    /// One proposal run at a time on this replica: two at once (the job and an explicit call)
    /// would both find a neighbourhood uncovered and propose it twice.
    proposals: tokio::sync::Mutex<()>,
    /// Vectors of texts embedded for lessons (examples, corrections), by text.
    text_vectors: Mutex<HashMap<String, Arc<Vec<f32>>>>,
}

impl LessonEngine {
    pub fn new(store: Arc<dyn Store>, memory: Arc<SemanticMemory>) -> Self {
        Self {
            store,
            memory,
            matching: MatchSettings::default(),
            refresh_interval: Duration::from_secs(1),
            snapshots: Mutex::default(),
            invalidations: std::sync::atomic::AtomicU64::new(0),
            rebuilds: tokio::sync::Mutex::const_new(()),
            proposals: tokio::sync::Mutex::const_new(()),
            text_vectors: Mutex::default(),
        }
    }

    pub fn with_matching(mut self, matching: MatchSettings) -> Self {
        self.matching = matching;
        self
    }

    pub fn with_refresh_interval(mut self, interval: Duration) -> Self {
        self.refresh_interval = interval;
        self
    }

    /// Makes the next request of `project` rebuild its snapshot (after a lesson or setting
    /// changed here; changes made elsewhere are noticed within the refresh interval).
    pub fn invalidate(&self, project: ProjectId) {
        self.invalidations.fetch_add(1, Ordering::AcqRel);
        self.snapshots
            .lock()
            .expect("snapshots lock")
            .remove(&project);
    }

    /// The applicable active lessons for a query, ranked (priority, then score), de-duplicated
    /// and cut to the budget, with the rendered block; records the injection.
    pub async fn context(
        self: &Arc<Self>,
        project: ProjectId,
        request: ContextRequest,
        now: Timestamp,
    ) -> Result<ContextAnswer> {
        if request.query.trim().is_empty() {
            return Err(ValidationError::new("query", "must not be empty").into());
        }
        let snapshot = self.snapshot(project).await?;
        if snapshot.lessons.is_empty() {
            return Ok(ContextAnswer::nothing());
        }
        let vector = self.memory.embed_one(request.query.clone()).await?;
        let lessons = &snapshot.lessons;
        let metadata = &request.metadata;
        let mut matches = snapshot.evidence.matches(&vector, &self.matching, |index| {
            let lesson = &lessons[index as usize];
            lesson
                .trigger
                .filter
                .check(metadata)
                .ok()
                .map(|()| lesson.trigger.threshold)
        });
        if matches.is_empty() {
            return Ok(ContextAnswer::nothing());
        }
        matches.sort_by(|a, b| {
            let (la, lb) = (&lessons[a.lesson as usize], &lessons[b.lesson as usize]);
            lb.priority
                .cmp(&la.priority)
                .then(b.vote.total_cmp(&a.vote))
        });
        let injection_id = new_injection_id();
        let settings = &snapshot.settings;
        let unit = request
            .session_id
            .as_deref()
            .unwrap_or(injection_id.as_str());
        let holdout = effect::in_holdout(settings.holdout_seed, unit, settings.holdout_fraction);
        let (block, included) = render::render(
            matches.iter().map(|m| &lessons[m.lesson as usize]),
            &settings.context_template,
            request.budget.unwrap_or(Budget::DEFAULT),
        );
        let applied: Vec<AppliedLesson> = matches
            .iter()
            .enumerate()
            .map(|(rank, m)| {
                let lesson = lessons[m.lesson as usize].clone();
                let matched_example = lesson.trigger.examples[m.example as usize].clone();
                let why = format!(
                    "nearest example {matched_example:?} at similarity {:.2}; {} of the {} nearest known cases are this lesson's examples, {} went well",
                    m.similarity, m.supporting, self.matching.k, m.contrast
                );
                AppliedLesson {
                    lesson,
                    score: m.vote,
                    similarity: m.similarity,
                    matched_example,
                    why,
                    injected: !holdout && included.contains(&rank),
                }
            })
            .collect();
        // Held out, a request records what it would have got: the lessons that fit.
        let recorded: Vec<InjectedLesson> = applied
            .iter()
            .enumerate()
            .filter(|(rank, _)| included.contains(rank))
            .map(|(_, a)| InjectedLesson {
                lesson_id: a.lesson.id.clone(),
                version: a.lesson.version,
                score: a.score,
            })
            .collect();
        // The recorded query is stored text like a trace's input: redacted by the project's
        // PII mode (the match above used the query as sent, which is never stored).
        let pii_mode = self.store.privacy_settings(project).await?.pii_mode;
        let injection = Injection {
            id: injection_id.clone(),
            trace_id: request.trace_id,
            session_id: request.session_id,
            query: feedloop_core::pii::scrub(&request.query, pii_mode).0,
            holdout,
            lessons: recorded,
            created_at: now,
        };
        self.store.record_injection(project, &injection).await?;
        Ok(ContextAnswer {
            injection_id: Some(injection_id),
            holdout,
            lessons: applied,
            block: if holdout { None } else { block },
        })
    }

    /// Builds every project's evidence now (at start), so that the first context requests do
    /// not wait for lesson examples to be embedded.
    pub async fn warm(&self) -> Result<()> {
        for project in self.store.list_projects().await? {
            self.refresh(project.id).await?;
        }
        Ok(())
    }

    /// The project's evidence. Built on the first request (and after [`Self::invalidate`]);
    /// afterwards a request older than the refresh interval starts a background refresh, which
    /// rebuilds only if the store's watermark moved, and is answered from what is there.
    async fn snapshot(self: &Arc<Self>, project: ProjectId) -> Result<Arc<Evidenced>> {
        let Some(snapshot) = self.cached(project) else {
            return self.refresh(project).await;
        };
        if snapshot.checked_at.elapsed() >= self.refresh_interval
            && !snapshot.refreshing.swap(true, Ordering::AcqRel)
        {
            let engine = self.clone();
            tokio::spawn(async move {
                if let Err(error) = engine.refresh(project).await {
                    tracing::warn!(project = project.0, %error, "refreshing lesson evidence failed");
                    if let Some(snapshot) = engine.cached(project) {
                        snapshot.refreshing.store(false, Ordering::Release);
                    }
                }
            });
        }
        Ok(snapshot.data.clone())
    }

    async fn refresh(&self, project: ProjectId) -> Result<Arc<Evidenced>> {
        let _one_at_a_time = self.rebuilds.lock().await;
        let current = self.cached(project);
        if let Some(snapshot) = &current
            && snapshot.checked_at.elapsed() < self.refresh_interval
        {
            return Ok(snapshot.data.clone());
        }
        let invalidations = self.invalidations.load(Ordering::Acquire);
        let watermark = self.store.evidence_watermark().await?;
        let data = match current {
            Some(snapshot) if snapshot.watermark == watermark => snapshot.data.clone(),
            _ => Arc::new(self.build(project).await?),
        };
        let snapshot = Arc::new(Snapshot {
            data: data.clone(),
            watermark,
            checked_at: Instant::now(),
            refreshing: AtomicBool::new(false),
        });
        let mut snapshots = self.snapshots.lock().expect("snapshots lock");
        // Checked under the lock `invalidate` removes under: a change made here while this was
        // built leaves the map empty, so the next request builds again.
        if self.invalidations.load(Ordering::Acquire) == invalidations {
            snapshots.insert(project, snapshot);
        }
        Ok(data)
    }

    fn cached(&self, project: ProjectId) -> Option<Arc<Snapshot>> {
        self.snapshots
            .lock()
            .expect("snapshots lock")
            .get(&project)
            .cloned()
    }

    async fn build(&self, project: ProjectId) -> Result<Evidenced> {
        let started = Instant::now();
        let store = self.store.as_ref();
        let settings = store.loop_settings(project).await?;
        let lessons = store
            .list_lessons(project, Some(LessonStatus::Active), MAX_ACTIVE_LESSONS)
            .await?;
        let texts: Vec<String> = lessons
            .iter()
            .flat_map(|l| l.trigger.examples.iter().cloned())
            .collect();
        let vectors = self.text_vectors(texts).await?;
        let model = self.memory.model_id().to_owned();
        let contrast = store
            .contrast_vectors(project, &model, MAX_CONTRAST)
            .await?;
        let mut evidence = Evidence::new(self.memory.dimensions());
        for (index, lesson) in lessons.iter().enumerate() {
            for (example, text) in lesson.trigger.examples.iter().enumerate() {
                if let Some(vector) = vectors.get(text) {
                    evidence.push(
                        vector,
                        Label::Example {
                            lesson: index as u32,
                            example: example as u32,
                        },
                    );
                }
            }
        }
        for (_, vector) in &contrast {
            evidence.push(vector, Label::Contrast);
        }
        tracing::debug!(
            project = project.0,
            lessons = lessons.len(),
            contrast = contrast.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "lesson snapshot built"
        );
        Ok(Evidenced {
            lessons,
            evidence,
            settings,
        })
    }

    /// Vectors of `texts`, embedding (in batches) only those not seen before.
    async fn text_vectors(&self, texts: Vec<String>) -> Result<HashMap<String, Arc<Vec<f32>>>> {
        let mut found = HashMap::new();
        let mut missing = Vec::new();
        {
            let cache = self.text_vectors.lock().expect("text vectors lock");
            for text in texts {
                match cache.get(&text) {
                    Some(vector) => {
                        found.insert(text, vector.clone());
                    }
                    None if !missing.contains(&text) => missing.push(text),
                    None => {}
                }
            }
        }
        for chunk in missing.chunks(64) {
            let vectors = self.memory.embed(chunk.to_vec()).await?;
            let mut cache = self.text_vectors.lock().expect("text vectors lock");
            for (text, vector) in chunk.iter().zip(vectors) {
                let vector = Arc::new(vector);
                cache.insert(text.clone(), vector.clone());
                found.insert(text.clone(), vector);
            }
        }
        Ok(found)
    }

    /// Drafts a lesson from feedback on the given traces: all their current negative feedback,
    /// or only `feedback_ids` when given. Stored as proposed (active if the project
    /// auto-activates).
    pub async fn from_feedback(
        &self,
        project: ProjectId,
        selection: FeedbackSelection,
        now: Timestamp,
        actor: &str,
    ) -> Result<Lesson> {
        let FeedbackSelection {
            trace_ids,
            feedback_ids,
            title,
            priority,
        } = selection;
        let feedback_ids = feedback_ids.as_deref();
        if trace_ids.is_empty() {
            return Err(ValidationError::new("trace_ids", "must name at least one trace").into());
        }
        let settings = self.store.loop_settings(project).await?;
        let mut cases = Vec::new();
        for trace_id in &trace_ids {
            let chain = self
                .store
                .trace_chain(project, trace_id)
                .await?
                .ok_or_else(|| LoopError::TraceNotFound(trace_id.clone()))?;
            let Some(query) = chain.trace.trace.input.clone() else {
                return Err(ValidationError::new(
                    "trace_ids",
                    format!("trace {trace_id:?} has no input to learn from"),
                )
                .into());
            };
            let chosen = chain.feedback.iter().filter(|f| match feedback_ids {
                Some(ids) => ids.contains(&f.feedback.id),
                None => f.superseded_by.is_none() && f.negative,
            });
            cases.push(case_of(
                trace_id.clone(),
                query,
                chosen.map(|f| &f.feedback),
            ));
        }
        if let Some(ids) = feedback_ids {
            let used: HashSet<_> = cases.iter().flat_map(|c| &c.feedback_ids).collect();
            if let Some(missing) = ids.iter().find(|id| !used.contains(id)) {
                return Err(ValidationError::new(
                    "feedback_ids",
                    format!("feedback {missing:?} is not about the given traces"),
                )
                .into());
            }
        }
        let refs: Vec<&Case> = cases.iter().collect();
        let draft = propose::draft(&refs, &settings, Origin::Feedback).ok_or_else(|| {
            ValidationError::new(
                "feedback_ids",
                "the feedback has no correction, category with an instruction template or comment to learn from",
            )
        })?;
        let mut lesson = self.new_lesson(draft, &settings, now, actor);
        if let Some(title) = title {
            lesson.title = title;
        }
        lesson.priority = priority.unwrap_or(lesson.priority);
        lesson.check()?;
        self.store.create_lesson(project, &lesson).await?;
        self.invalidate(project);
        Ok(lesson)
    }

    /// Leaves out the cases whose trace, all its feedback weighed, is not clearly negative: its
    /// stored satisfaction estimate (see `feedloop_core::signals::satisfaction`) is at least
    /// [`MIN_DISSATISFACTION`]: a negative signal outweighed by a thumbs up or a copy, or a lone
    /// weak one (a derived abandonment alone scores -0.13). Traces without an estimate (not yet
    /// computed) are kept.
    async fn without_satisfied(
        &self,
        project: ProjectId,
        cases: Vec<NegativeCase>,
    ) -> Result<Vec<NegativeCase>> {
        let trace_ids: Vec<TraceId> = cases
            .iter()
            .map(|case| case.trace_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let scores: HashMap<TraceId, f64> = self
            .store
            .satisfaction_of(project, &trace_ids)
            .await?
            .into_iter()
            .map(|(trace_id, estimate)| (trace_id, estimate.score))
            .collect();
        Ok(cases
            .into_iter()
            .filter(|case| {
                scores
                    .get(&case.trace_id)
                    .is_none_or(|score| *score < MIN_DISSATISFACTION)
            })
            .collect())
    }

    /// Groups recent negative feedback that no lesson covers yet into neighbourhoods and stores
    /// one proposed lesson per neighbourhood. A neighbourhood that an existing lesson already
    /// covers is added to that lesson's provenance instead (and, while it is only proposed, to
    /// its examples), so the same lesson is never proposed twice.
    pub async fn propose(&self, project: ProjectId, now: Timestamp) -> Result<Vec<Lesson>> {
        let _one_at_a_time = self.proposals.lock().await;
        let settings = self.store.loop_settings(project).await?;
        let proposals = &settings.proposals;
        if !proposals.enabled {
            return Ok(Vec::new());
        }
        let since = now
            .checked_sub(jiff::SignedDuration::from_hours(i64::from(
                proposals.window_hours,
            )))
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let model = self.memory.model_id().to_owned();
        let negatives = self
            .store
            .negative_cases(project, &model, since, true, MAX_CASES)
            .await?;
        let negatives = self.without_satisfied(project, negatives).await?;
        let mut cases = self.cases_of(negatives).await?;
        if cases.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<TraceId> = cases.iter().map(|case| case.trace_id.clone()).collect();
        let sizes: HashMap<TraceId, u64> = self
            .store
            .cluster_sizes_of(project, &model, &ids)
            .await?
            .into_iter()
            .collect();
        for case in &mut cases {
            case.problem_cluster_size = sizes.get(&case.trace_id).copied().unwrap_or(0);
        }
        let existing = self.existing_cases(project).await?;
        let groups = propose::cluster(
            &cases,
            proposals.similarity,
            proposals.min_feedback as usize,
        );
        let mut created = Vec::new();
        let mut extended: HashMap<LessonId, Lesson> = HashMap::new();
        for group in groups {
            let members: Vec<&Case> = group.iter().map(|&i| &cases[i]).collect();
            let leader = members[0];
            let covering = existing
                .iter()
                .map(|(lesson, example)| {
                    (propose::similarity(&leader.fingerprint, example), lesson)
                })
                .filter(|(similarity, _)| *similarity >= proposals.similarity)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, lesson)| lesson.clone());
            match covering {
                Some(lesson) => {
                    let lesson = extended.entry(lesson.id.clone()).or_insert(lesson);
                    extend(lesson, &members);
                }
                None => {
                    let Some(draft) = propose::draft(&members, &settings, Origin::Automatic) else {
                        continue;
                    };
                    let lesson = self.new_lesson(draft, &settings, now, "feedloop");
                    self.store.create_lesson(project, &lesson).await?;
                    created.push(lesson);
                }
            }
        }
        for (_, mut lesson) in extended {
            lesson.version += 1;
            lesson.updated_at = now;
            lesson.updated_by = Some("feedloop".into());
            self.store.update_lesson(project, &lesson).await?;
        }
        self.invalidate(project);
        Ok(created)
    }

    /// The fingerprint of every example of every lesson (with the lesson's corrected answer),
    /// so that new neighbourhoods can be compared with what lessons already cover.
    async fn existing_cases(&self, project: ProjectId) -> Result<Vec<(Lesson, Fingerprint)>> {
        let lessons = self
            .store
            .list_lessons(project, None, MAX_ACTIVE_LESSONS)
            .await?;
        let mut texts: Vec<String> = Vec::new();
        for lesson in &lessons {
            texts.extend(lesson.trigger.examples.iter().cloned());
            if let Some(example) = &lesson.action.example {
                texts.push(example.answer.clone());
            }
        }
        let vectors = self.text_vectors(texts).await?;
        let mut cases = Vec::new();
        for lesson in lessons {
            let correction = lesson
                .action
                .example
                .as_ref()
                .and_then(|e| vectors.get(&e.answer))
                .map(|v| v.to_vec());
            for example in &lesson.trigger.examples {
                let fingerprint = Fingerprint {
                    query: vectors.get(example).map(|v| v.to_vec()),
                    correction: correction.clone(),
                };
                cases.push((lesson.clone(), fingerprint));
            }
        }
        Ok(cases)
    }

    /// One case per trace from negative feedback, with query and correction vectors.
    async fn cases_of(&self, negatives: Vec<NegativeCase>) -> Result<Vec<Case>> {
        let mut by_trace: Vec<(Case, Option<Vec<f32>>)> = Vec::new();
        let mut index_of: HashMap<TraceId, usize> = HashMap::new();
        for negative in negatives {
            let index = *index_of
                .entry(negative.trace_id.clone())
                .or_insert_with(|| {
                    let case = Case::new(negative.trace_id.clone(), negative.query.clone());
                    by_trace.push((case, negative.vector.clone()));
                    by_trace.len() - 1
                });
            let (case, _) = &mut by_trace[index];
            case.feedback_ids.push(negative.feedback_id);
            if negative.correction.is_some() {
                case.correction = negative.correction;
            }
            for category in negative.categories {
                if !case.categories.contains(&category) {
                    case.categories.push(category);
                }
            }
            if case.comment.is_none() {
                case.comment = negative.comment;
            }
        }
        let mut texts: Vec<String> = Vec::new();
        for (case, stored) in &by_trace {
            if stored.is_none() {
                texts.push(case.query.clone());
            }
            texts.extend(case.correction.iter().cloned());
        }
        let vectors = self.text_vectors(texts).await?;
        Ok(by_trace
            .into_iter()
            .map(|(mut case, stored)| {
                case.fingerprint = Fingerprint {
                    query: stored.or_else(|| vectors.get(&case.query).map(|v| v.to_vec())),
                    correction: case
                        .correction
                        .as_ref()
                        .and_then(|c| vectors.get(c))
                        .map(|v| v.to_vec()),
                };
                case
            })
            .collect())
    }

    fn new_lesson(
        &self,
        draft: Draft,
        settings: &LoopSettings,
        now: Timestamp,
        actor: &str,
    ) -> Lesson {
        let Draft {
            title,
            trigger,
            action,
            mut provenance,
        } = draft;
        let status = if settings.auto_activate {
            provenance.approved_by = Some("auto-activation".into());
            provenance.approved_at = Some(now);
            LessonStatus::Active
        } else {
            LessonStatus::Proposed
        };
        Lesson {
            id: new_lesson_id(),
            title,
            trigger,
            action,
            priority: 0,
            status,
            provenance,
            version: 1,
            created_at: now,
            updated_at: now,
            updated_by: Some(actor.to_owned()),
        }
    }

    /// Impressions, hold-out impressions and negative-feedback rates of a lesson.
    pub async fn effect(&self, project: ProjectId, id: &LessonId) -> Result<EffectReport> {
        if self.store.lesson(project, id).await?.is_none() {
            return Err(LoopError::LessonNotFound(id.clone()));
        }
        let counts = self.store.lesson_effect(project, id).await?;
        let treated = Rate::new(counts.treated_negative, counts.treated_traces);
        let holdout = Rate::new(counts.holdout_negative, counts.holdout_traces);
        Ok(EffectReport {
            lesson_id: id.clone(),
            impressions: counts.impressions,
            holdout_impressions: counts.holdout_impressions,
            difference: effect::difference(&treated, &holdout),
            treated,
            holdout,
        })
    }

    /// The share of negative feedback in the last `window_hours` whose query falls near an
    /// earlier corrected problem (a trace with a correction made before the feedback).
    pub async fn repeat_mistakes(
        &self,
        project: ProjectId,
        window_hours: u32,
        now: Timestamp,
    ) -> Result<RepeatMistakes> {
        let model = self.memory.model_id().to_owned();
        let since = now
            .checked_sub(jiff::SignedDuration::from_hours(i64::from(window_hours)))
            .unwrap_or(Timestamp::UNIX_EPOCH);
        let cases = self
            .store
            .negative_cases(project, &model, Timestamp::UNIX_EPOCH, false, MAX_CASES)
            .await?;
        let mut corrected: Vec<(Timestamp, &[f32])> = Vec::new();
        let (mut negative_feedback, mut repeats) = (0u64, 0u64);
        // Oldest first: each case is compared with the corrections made before it.
        for case in &cases {
            let Some(vector) = case.vector.as_deref() else {
                continue;
            };
            if case.created_at >= since {
                negative_feedback += 1;
                if corrected.iter().any(|(at, earlier)| {
                    *at < case.created_at && matcher::dot(vector, earlier) >= REPEAT_SIMILARITY
                }) {
                    repeats += 1;
                }
            }
            if case.correction.is_some() {
                corrected.push((case.created_at, vector));
            }
        }
        Ok(RepeatMistakes {
            negative_feedback,
            repeats,
            rate: (negative_feedback > 0).then(|| repeats as f64 / negative_feedback as f64),
            window_hours,
            similarity: REPEAT_SIMILARITY,
        })
    }
}

/// Adds a neighbourhood to a lesson that covers it: its feedback and traces to the
/// provenance, and, while the lesson is only proposed, its queries to the examples.
fn extend(lesson: &mut Lesson, members: &[&Case]) {
    for case in members {
        lesson
            .provenance
            .feedback_ids
            .extend(case.feedback_ids.iter().cloned());
        if !lesson.provenance.trace_ids.contains(&case.trace_id) {
            lesson.provenance.trace_ids.push(case.trace_id.clone());
        }
        if lesson.status == LessonStatus::Proposed
            && !lesson.trigger.examples.contains(&case.query)
            && lesson.trigger.examples.len() < feedloop_core::lesson::MAX_EXAMPLES
        {
            lesson.trigger.examples.push(case.query.clone());
        }
    }
}

/// A case from chosen feedback on one trace.
fn case_of<'a>(
    trace_id: TraceId,
    query: String,
    feedback: impl Iterator<Item = &'a feedloop_core::feedback::Feedback>,
) -> Case {
    let mut case = Case::new(trace_id, query);
    for item in feedback {
        case.feedback_ids.push(item.id.clone());
        match &item.value {
            FeedbackValue::Correction(correction) => {
                case.correction = Some(correction.text.clone())
            }
            FeedbackValue::Category(names) => {
                for name in names {
                    if !case.categories.contains(name) {
                        case.categories.push(name.clone());
                    }
                }
            }
            FeedbackValue::Comment(comment) => {
                case.comment.get_or_insert_with(|| comment.clone());
            }
            FeedbackValue::Annotation(annotation) => {
                if let Some(comment) = &annotation.comment {
                    case.comment.get_or_insert_with(|| comment.clone());
                }
            }
            FeedbackValue::Rating(_) | FeedbackValue::Signal(_) => {}
        }
    }
    case
}

/// A new server-made id: a prefix and 128 random bits in hex (always a valid id).
fn random_id(prefix: &str) -> String {
    let bits: u128 = rand::random();
    format!("{prefix}_{bits:032x}")
}

pub fn new_lesson_id() -> LessonId {
    LessonId::parse("id", random_id("ls")).expect("server-made ids are valid")
}

fn new_injection_id() -> InjectionId {
    InjectionId::parse("id", random_id("inj")).expect("server-made ids are valid")
}
