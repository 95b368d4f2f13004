//! Lessons and the context API: CRUD with version history, lessons from feedback, automatic
//! proposals, each lesson's measured effect, the project's loop settings and repeat-mistake
//! rate, and `POST /api/v1/context`, which picks the lessons for a new query.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use feedloop_core::auth::Permission;
use feedloop_core::lesson::{Action, Lesson, LessonStatus, LoopSettings, QueryMetadata, Trigger};
use feedloop_core::{FeedbackId, LessonId, ProjectId, TraceId, ValidationError};
use feedloop_lessons::render::Budget;
use feedloop_lessons::{ContextAnswer, ContextRequest, EffectReport, LoopError, RepeatMistakes};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{Path, ProjectKey, ValidatedJson};
use crate::query::{bad, parse_pairs};

const DEFAULT_LIST_LIMIT: u32 = 100;
const MAX_LIST_LIMIT: u32 = 1_000;

/// A new lesson. Without an id the server makes one (`ls_…`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewLesson {
    pub id: Option<String>,
    pub title: String,
    pub trigger: Trigger,
    pub action: Action,
    /// Higher first when lessons compete for the budget (default 0).
    pub priority: Option<i32>,
    /// `proposed` (default) or `active`.
    pub status: Option<LessonStatus>,
}

/// A change to a lesson. `version` is the version the change is based on; if the lesson has
/// changed since, the request fails with 409 and changes nothing.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LessonChange {
    pub version: u32,
    pub title: Option<String>,
    pub trigger: Option<Trigger>,
    pub action: Option<Action>,
    pub priority: Option<i32>,
    pub status: Option<LessonStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LessonList {
    pub lessons: Vec<Lesson>,
}

/// Feedback to make a lesson from: the traces, and optionally which of their feedback items
/// (default: all their current negative feedback).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FromFeedback {
    pub trace_ids: Vec<String>,
    pub feedback_ids: Option<Vec<String>>,
    pub title: Option<String>,
    pub priority: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Proposals {
    /// Lessons proposed by this run (neighbourhoods that existing lessons cover are added to
    /// those lessons instead).
    pub proposed: Vec<Lesson>,
}

/// A query asking for lessons.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContextBody {
    pub query: String,
    /// Keeps the session in or out of the hold-out throughout.
    pub session_id: Option<String>,
    /// The id the app will store its trace under, if it knows it now.
    pub trace_id: Option<String>,
    #[serde(default)]
    pub metadata: QueryMetadata,
    /// `{"chars": 2000}` (the default) or `{"tokens": 500}`.
    pub budget: Option<Budget>,
}

/// Lessons of the project, most recently changed first. Query: `status` (proposed, active,
/// retired), `limit` (1..=1000, default 100).
#[utoipa::path(
    get, path = "/api/v1/lessons", tag = "lessons",
    params(
        ("status" = Option<String>, Query, description = "proposed, active or retired"),
        ("limit" = Option<u32>, Query, description = "1..=1000, default 100")
    ),
    responses((status = 200, body = LessonList), (status = 400, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn list_lessons(
    State(state): State<AppState>,
    key: ProjectKey,
    RawQuery(raw): RawQuery,
) -> Result<Json<LessonList>, ApiError> {
    let project = key.require(Permission::Read)?;
    let (mut status, mut limit) = (None, DEFAULT_LIST_LIMIT);
    for (name, value) in parse_pairs(raw.as_deref())? {
        match name.as_str() {
            "status" => {
                status =
                    Some(LessonStatus::parse(&value).ok_or_else(|| {
                        bad("status", "must be one of proposed, active, retired")
                    })?);
            }
            "limit" => {
                limit = value
                    .parse()
                    .ok()
                    .filter(|l| (1..=MAX_LIST_LIMIT).contains(l))
                    .ok_or_else(|| {
                        bad(
                            "limit",
                            format!("must be an integer in 1..={MAX_LIST_LIMIT}"),
                        )
                    })?;
            }
            other => return Err(bad(other, "unknown query parameter")),
        }
    }
    let lessons = state.store.list_lessons(project, status, limit).await?;
    Ok(Json(LessonList { lessons }))
}

/// Creates a lesson (version 1). An active lesson created here counts as approved by the key.
#[utoipa::path(
    post, path = "/api/v1/lessons", tag = "lessons",
    request_body = NewLesson,
    responses(
        (status = 201, body = Lesson),
        (status = 409, body = ErrorBody, description = "the id is taken"),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn create_lesson(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<NewLesson>,
) -> Result<(StatusCode, Json<Lesson>), ApiError> {
    let project = key.require(Permission::Review)?;
    let now = state.clock.now();
    let id = match body.id {
        Some(id) => LessonId::parse("id", id)?,
        None => feedloop_lessons::new_lesson_id(),
    };
    let status = body.status.unwrap_or_default();
    if status == LessonStatus::Retired {
        return Err(ValidationError::new("status", "a new lesson is proposed or active").into());
    }
    let mut lesson = Lesson {
        id,
        title: body.title,
        trigger: body.trigger,
        action: body.action,
        priority: body.priority.unwrap_or(0),
        status,
        provenance: Default::default(),
        version: 1,
        created_at: now,
        updated_at: now,
        updated_by: Some(key.actor()),
    };
    if status == LessonStatus::Active {
        lesson.provenance.approved_by = Some(key.actor());
        lesson.provenance.approved_at = Some(now);
    }
    lesson.check()?;
    state.store.create_lesson(project, &lesson).await?;
    state.lessons.invalidate(project);
    Ok((StatusCode::CREATED, Json(lesson)))
}

#[utoipa::path(
    get, path = "/api/v1/lessons/{id}", tag = "lessons",
    params(("id" = String, Path, description = "lesson id")),
    responses((status = 200, body = Lesson), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn get_lesson(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(id): Path<String>,
) -> Result<Json<Lesson>, ApiError> {
    let project = key.require(Permission::Read)?;
    Ok(Json(find(&state, project, &id).await?))
}

/// Changes a lesson: its content, priority or status (approve = `active`, retire =
/// `retired`). Makes a new version; the old one stays in the history.
#[utoipa::path(
    patch, path = "/api/v1/lessons/{id}", tag = "lessons",
    params(("id" = String, Path, description = "lesson id")),
    request_body = LessonChange,
    responses(
        (status = 200, body = Lesson),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "changed since `version`"),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn change_lesson(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(id): Path<String>,
    ValidatedJson(change): ValidatedJson<LessonChange>,
) -> Result<Json<Lesson>, ApiError> {
    let project = key.require(Permission::Review)?;
    let mut lesson = find(&state, project, &id).await?;
    if change.version != lesson.version {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            format!(
                "lesson {id:?} is at version {}, not {}; read it again and retry",
                lesson.version, change.version
            ),
        )
        .with_field("version"));
    }
    let now = state.clock.now();
    if let Some(status) = change.status {
        if !lesson.status.may_become(status) {
            return Err(ValidationError::new(
                "status",
                format!(
                    "a {} lesson cannot become {}",
                    lesson.status.as_str(),
                    status.as_str()
                ),
            )
            .into());
        }
        if status == LessonStatus::Active && lesson.status != LessonStatus::Active {
            lesson.provenance.approved_by = Some(key.actor());
            lesson.provenance.approved_at = Some(now);
        }
        lesson.status = status;
    }
    if let Some(title) = change.title {
        lesson.title = title;
    }
    if let Some(trigger) = change.trigger {
        lesson.trigger = trigger;
    }
    if let Some(action) = change.action {
        lesson.action = action;
    }
    if let Some(priority) = change.priority {
        lesson.priority = priority;
    }
    lesson.version += 1;
    lesson.updated_at = now;
    lesson.updated_by = Some(key.actor());
    lesson.check()?;
    state.store.update_lesson(project, &lesson).await?;
    state.lessons.invalidate(project);
    Ok(Json(lesson))
}

/// Every version of a lesson, oldest first.
#[utoipa::path(
    get, path = "/api/v1/lessons/{id}/versions", tag = "lessons",
    params(("id" = String, Path, description = "lesson id")),
    responses((status = 200, body = LessonList), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn lesson_versions(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(id): Path<String>,
) -> Result<Json<LessonList>, ApiError> {
    let project = key.require(Permission::Read)?;
    let id = LessonId::parse("id", id)?;
    let lessons = state.store.lesson_versions(project, &id).await?;
    if lessons.is_empty() {
        return Err(not_found(&id));
    }
    Ok(Json(LessonList { lessons }))
}

/// Impressions, hold-out impressions and the negative-feedback rate of traces that got the
/// lesson against those held out, with a 95 % interval for the difference.
#[utoipa::path(
    get, path = "/api/v1/lessons/{id}/effect", tag = "lessons",
    params(("id" = String, Path, description = "lesson id")),
    responses((status = 200, body = EffectReport), (status = 404, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn lesson_effect(
    State(state): State<AppState>,
    key: ProjectKey,
    Path(id): Path<String>,
) -> Result<Json<EffectReport>, ApiError> {
    let project = key.require(Permission::Read)?;
    let id = LessonId::parse("id", id)?;
    Ok(Json(state.lessons.effect(project, &id).await?))
}

/// Makes a proposed lesson from feedback: the traces' queries become the trigger examples, a
/// correction the example answer, categories select instruction templates, a comment becomes
/// a warning when nothing else says what to do.
#[utoipa::path(
    post, path = "/api/v1/lessons/from-feedback", tag = "lessons",
    request_body = FromFeedback,
    responses(
        (status = 201, body = Lesson),
        (status = 404, body = ErrorBody, description = "a trace is not stored"),
        (status = 422, body = ErrorBody)
    ),
    security(("api_key" = []))
)]
pub async fn from_feedback(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<FromFeedback>,
) -> Result<(StatusCode, Json<Lesson>), ApiError> {
    let project = key.require(Permission::Review)?;
    let trace_ids = body
        .trace_ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| TraceId::parse(&format!("trace_ids[{i}]"), id))
        .collect::<Result<Vec<_>, _>>()?;
    let feedback_ids = body
        .feedback_ids
        .map(|ids| {
            ids.into_iter()
                .enumerate()
                .map(|(i, id)| FeedbackId::parse(&format!("feedback_ids[{i}]"), id))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    let selection = feedloop_lessons::FeedbackSelection {
        trace_ids,
        feedback_ids,
        title: body.title,
        priority: body.priority,
    };
    let lesson = state
        .lessons
        .from_feedback(project, selection, state.clock.now(), &key.actor())
        .await?;
    Ok((StatusCode::CREATED, Json(lesson)))
}

/// Runs automatic proposals now (they also run periodically): negative feedback of the
/// window that no lesson covers, grouped by neighbourhood.
#[utoipa::path(
    post, path = "/api/v1/lessons/propose", tag = "lessons",
    responses((status = 200, body = Proposals)),
    security(("api_key" = []))
)]
pub async fn propose(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<Proposals>, ApiError> {
    let project = key.require(Permission::Review)?;
    let proposed = crate::ops::propose_lessons(&state, project, state.clock.now()).await?;
    Ok(Json(Proposals { proposed }))
}

/// The share of recent negative feedback whose query falls near an earlier corrected problem.
/// Query: `window_hours` (1..=8760, default 168).
#[utoipa::path(
    get, path = "/api/v1/loop/repeat-mistakes", tag = "lessons",
    params(("window_hours" = Option<u32>, Query, description = "1..=8760, default 168")),
    responses((status = 200, body = RepeatMistakes), (status = 400, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn repeat_mistakes(
    State(state): State<AppState>,
    key: ProjectKey,
    RawQuery(raw): RawQuery,
) -> Result<Json<RepeatMistakes>, ApiError> {
    let project = key.require(Permission::Read)?;
    let mut window_hours = 168;
    for (name, value) in parse_pairs(raw.as_deref())? {
        match name.as_str() {
            "window_hours" => {
                window_hours = value
                    .parse()
                    .ok()
                    .filter(|h| (1..=8_760).contains(h))
                    .ok_or_else(|| bad("window_hours", "must be an integer in 1..=8760"))?;
            }
            other => return Err(bad(other, "unknown query parameter")),
        }
    }
    let report = state
        .lessons
        .repeat_mistakes(project, window_hours, state.clock.now())
        .await?;
    Ok(Json(report))
}

#[utoipa::path(
    get, path = "/api/v1/loop/settings", tag = "lessons",
    responses((status = 200, body = LoopSettings)),
    security(("api_key" = []))
)]
pub async fn get_settings(
    State(state): State<AppState>,
    key: ProjectKey,
) -> Result<Json<LoopSettings>, ApiError> {
    let project = key.require(Permission::Read)?;
    Ok(Json(state.store.loop_settings(project).await?))
}

/// Replaces the project's loop settings (hold-out share and seed, auto-activation,
/// instruction templates per category, the context template, proposal thresholds). Fields
/// left out take their defaults.
#[utoipa::path(
    put, path = "/api/v1/loop/settings", tag = "lessons",
    request_body = LoopSettings,
    responses((status = 200, body = LoopSettings), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn put_settings(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(settings): ValidatedJson<LoopSettings>,
) -> Result<Json<LoopSettings>, ApiError> {
    let project = key.require(Permission::Admin)?;
    settings.check()?;
    state.store.set_loop_settings(project, &settings).await?;
    state.lessons.invalidate(project);
    crate::ops::audit(
        &state,
        &key,
        "loop_settings.set",
        "loop",
        serde_json::to_value(&settings).unwrap_or_default(),
    )
    .await?;
    Ok(Json(settings))
}

/// The active lessons that apply to a new query, ranked, de-duplicated and cut to the budget,
/// each with its score and why it matched, plus the block for the system prompt and an
/// injection id to log with the trace (metadata `feedloop.injection_id`). In the hold-out the
/// lessons are listed and recorded but `block` is null.
#[utoipa::path(
    post, path = "/api/v1/context", tag = "lessons",
    request_body = ContextBody,
    responses((status = 200, body = ContextAnswer), (status = 422, body = ErrorBody)),
    security(("api_key" = []))
)]
pub async fn context(
    State(state): State<AppState>,
    key: ProjectKey,
    ValidatedJson(body): ValidatedJson<ContextBody>,
) -> Result<Json<ContextAnswer>, ApiError> {
    let project = key.require(Permission::Ingest)?;
    let trace_id = body
        .trace_id
        .map(|id| TraceId::parse("trace_id", id))
        .transpose()?;
    if let Some(Budget::Chars(0) | Budget::Tokens(0)) = body.budget {
        return Err(ValidationError::new("budget", "must be at least 1").into());
    }
    let request = ContextRequest {
        query: body.query,
        session_id: body.session_id,
        trace_id,
        metadata: body.metadata,
        budget: body.budget,
    };
    let answer = state
        .lessons
        .context(project, request, state.clock.now())
        .await?;
    Ok(Json(answer))
}

async fn find(state: &AppState, project: ProjectId, id: &str) -> Result<Lesson, ApiError> {
    let id = LessonId::parse("id", id)?;
    state
        .store
        .lesson(project, &id)
        .await?
        .ok_or_else(|| not_found(&id))
}

fn not_found(id: &LessonId) -> ApiError {
    LoopError::LessonNotFound(id.clone()).into()
}
