//! Lessons: versions and history, the change feed that lesson caches follow, the evidence that
//! proposals read (negative cases, contrast vectors), injections and the effect counted from
//! them, loop settings, and the evidence watermark.

use feedloop_core::feedback::{Correction, CorrectionKind, Feedback, FeedbackValue, Signal};
use feedloop_core::lesson::{
    Action, InjectedLesson, Lesson, LessonStatus, LoopSettings, Provenance, Trigger,
};
use feedloop_core::trace::TracePart;
use feedloop_core::{InjectionId, LessonId, ProjectId, TraceId};
use feedloop_store::embeddings::NewEmbedding;
use feedloop_store::{EffectCounts, INJECTION_METADATA_KEY, Injection, Store, StoreError};
use serde_json::Value;
use std::sync::Arc;

use super::fixtures::*;

const MODEL: &str = "test-model";

fn lesson_id(id: &str) -> LessonId {
    LessonId::parse("id", id).expect("a valid lesson id")
}

fn injection_id(id: &str) -> InjectionId {
    InjectionId::parse("id", id).expect("a valid injection id")
}

/// Version 1 of a lesson, made and changed at `updated` seconds, whose provenance names
/// `feedback_ids`.
fn lesson(id: &str, status: LessonStatus, updated: i64, feedback_ids: &[&str]) -> Lesson {
    Lesson {
        id: lesson_id(id),
        title: format!("lesson {id}"),
        trigger: Trigger {
            examples: vec!["when will my card arrive?".into()],
            ..Trigger::default()
        },
        action: Action {
            instruction: Some("Give the delivery window in working days.".into()),
            ..Action::default()
        },
        priority: 0,
        status,
        provenance: Provenance {
            feedback_ids: feedback_ids.iter().map(|id| feedback_id(id)).collect(),
            ..Provenance::default()
        },
        version: 1,
        created_at: at(updated),
        updated_at: at(updated),
        updated_by: Some("tester".into()),
    }
}

/// The next version of `lesson`, changed at `updated` seconds.
fn next_version(lesson: &Lesson, status: LessonStatus, updated: i64) -> Lesson {
    Lesson {
        status,
        version: lesson.version + 1,
        updated_at: at(updated),
        ..lesson.clone()
    }
}

fn ids(lessons: &[Lesson]) -> Vec<(&str, u32)> {
    lessons.iter().map(|l| (l.id.as_str(), l.version)).collect()
}

async fn create(store: &dyn Store, project: ProjectId, lesson: &Lesson) {
    store
        .create_lesson(project, lesson)
        .await
        .expect("the lesson is created");
}

async fn update(store: &dyn Store, project: ProjectId, lesson: &Lesson) {
    store
        .update_lesson(project, lesson)
        .await
        .expect("the lesson is updated");
}

/// Feedback made at `created` seconds.
fn made_at(id: &str, trace: &str, value: FeedbackValue, created: i64) -> Feedback {
    Feedback {
        created_at: Some(at(created)),
        ..feedback(id, trace, value)
    }
}

fn correction(text: &str) -> FeedbackValue {
    FeedbackValue::Correction(Correction {
        text: text.into(),
        kind: CorrectionKind::Answer,
    })
}

/// Embeds every queued trace with `model`: each vector is its trace's sequence number, then 1.
async fn embed_all(store: &dyn Store, model: &str) {
    let tasks = store
        .claim_embedding_tasks(1000, at(100), at(200))
        .await
        .expect("tasks are claimed");
    let vectors = tasks
        .iter()
        .map(|task| NewEmbedding {
            trace_seq: task.trace_seq,
            generation: task.generation,
            vector: vec![task.trace_seq as f32, 1.0],
        })
        .collect();
    store
        .store_embeddings(model, vectors, at(101))
        .await
        .expect("the vectors are stored");
}

async fn seq_of(store: &dyn Store, project: ProjectId, id: &str) -> i64 {
    all_traces(store, project, &Default::default())
        .await
        .into_iter()
        .find(|t| t.trace.id.as_str() == id)
        .unwrap_or_else(|| panic!("trace {id:?} is stored"))
        .seq
}

pub async fn lessons_are_created_versioned_and_listed(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    let first = lesson("ls-1", LessonStatus::Proposed, 1, &[]);
    let second = lesson("ls-2", LessonStatus::Active, 2, &[]);
    create(&*store, project, &first).await;
    create(&*store, project, &second).await;
    match store.create_lesson(project, &first).await {
        Err(StoreError::Conflict { field, .. }) => assert_eq!(field, "id"),
        other => panic!("a taken id conflicts, got {other:?}"),
    }
    assert_eq!(
        store.lesson(project, &first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.lesson(other, &first.id).await.unwrap(), None);
    let all = store.list_lessons(project, None, 10).await.unwrap();
    assert_eq!(ids(&all), [("ls-2", 1), ("ls-1", 1)], "latest change first");
    let active = store
        .list_lessons(project, Some(LessonStatus::Active), 10)
        .await
        .unwrap();
    assert_eq!(ids(&active), [("ls-2", 1)]);

    let approved = next_version(&first, LessonStatus::Active, 3);
    update(&*store, project, &approved).await;
    for stale in [
        approved.clone(),
        Lesson {
            version: 5,
            ..approved.clone()
        },
    ] {
        match store.update_lesson(project, &stale).await {
            Err(StoreError::Conflict { field, .. }) => assert_eq!(field, "version"),
            other => panic!("version {} conflicts, got {other:?}", stale.version,),
        }
    }
    let missing = lesson("ls-missing", LessonStatus::Active, 3, &[]);
    let missing = next_version(&missing, LessonStatus::Active, 4);
    assert!(matches!(
        store.update_lesson(project, &missing).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(
        matches!(
            store
                .update_lesson(other, &next_version(&approved, LessonStatus::Retired, 5))
                .await,
            Err(StoreError::NotFound { .. })
        ),
        "another project's lesson is not found"
    );

    assert_eq!(
        store.lesson(project, &first.id).await.unwrap(),
        Some(approved.clone())
    );
    assert_eq!(
        store.lesson_versions(project, &first.id).await.unwrap(),
        [first.clone(), approved.clone()],
        "every version, oldest first"
    );
    let all = store.list_lessons(project, None, 10).await.unwrap();
    assert_eq!(ids(&all), [("ls-1", 2), ("ls-2", 1)]);
    let active = store
        .list_lessons(project, Some(LessonStatus::Active), 1)
        .await
        .unwrap();
    assert_eq!(ids(&active), [("ls-1", 2)], "the limit holds");
    assert!(
        store
            .list_lessons(project, Some(LessonStatus::Proposed), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_lessons(other, None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // An id is per project.
    create(&*store, other, &first).await;
    assert_eq!(
        store.lesson_versions(other, &first.id).await.unwrap(),
        [first]
    );
}

pub async fn lessons_changed_since_follows_every_write_in_order(store: Arc<dyn Store>) {
    let alpha = new_project(&*store, "alpha").await;
    let beta = new_project(&*store, "beta").await;
    let a = lesson("ls-a", LessonStatus::Proposed, 1, &[]);
    let b = lesson("ls-b", LessonStatus::Active, 2, &[]);
    create(&*store, alpha, &a).await;
    create(&*store, beta, &b).await;
    let a2 = next_version(&a, LessonStatus::Active, 3);
    update(&*store, alpha, &a2).await;

    let changes = store.lessons_changed_since(0, 100).await.unwrap();
    let seen: Vec<(ProjectId, &str, u32)> = changes
        .iter()
        .map(|(_, project, l)| (*project, l.id.as_str(), l.version))
        .collect();
    assert_eq!(
        seen,
        [(beta, "ls-b", 1), (alpha, "ls-a", 2)],
        "each lesson once, at its latest write, in the order of writing"
    );
    assert!(changes[0].0 < changes[1].0);
    assert_eq!(changes[1].2, a2);

    // A follower resumes after the last change it saw.
    let first = changes[0].0;
    let rest = store.lessons_changed_since(first, 100).await.unwrap();
    assert_eq!(rest, changes[1..]);
    assert_eq!(
        store.lessons_changed_since(0, 1).await.unwrap(),
        changes[..1]
    );
    let last = changes[1].0;
    assert!(
        store
            .lessons_changed_since(last, 100)
            .await
            .unwrap()
            .is_empty()
    );

    let b2 = next_version(&b, LessonStatus::Retired, 4);
    update(&*store, beta, &b2).await;
    let later = store.lessons_changed_since(last, 100).await.unwrap();
    assert_eq!(later.len(), 1);
    assert!(later[0].0 > last);
    assert_eq!((later[0].1, &later[0].2), (beta, &b2));
}

pub async fn provenance_feedback_is_left_out_of_uncovered_negative_cases(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    ingest_traces(
        &*store,
        project,
        vec![asked("t1", 0, "one"), asked("t2", 0, "two")],
        at(1),
    )
    .await;
    ingest_feedback(
        &*store,
        project,
        vec![
            made_at("d1", "t1", thumbs(false), 2),
            made_at("d2", "t2", thumbs(false), 3),
        ],
        at(4),
    )
    .await;
    let case_ids = async |uncovered: bool| -> Vec<String> {
        store
            .negative_cases(project, MODEL, at(0), uncovered, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|case| case.feedback_id.as_str().to_owned())
            .collect()
    };
    assert_eq!(case_ids(true).await, ["d1", "d2"]);

    let covering = lesson("ls-1", LessonStatus::Proposed, 5, &["d1"]);
    create(&*store, project, &covering).await;
    assert_eq!(case_ids(false).await, ["d1", "d2"]);
    assert_eq!(case_ids(true).await, ["d2"]);

    // A later version that names other feedback leaves the first covered too.
    let mut moved = next_version(&covering, LessonStatus::Retired, 6);
    moved.provenance.feedback_ids = vec![feedback_id("d2")];
    update(&*store, project, &moved).await;
    assert!(case_ids(true).await.is_empty());
    assert_eq!(case_ids(false).await, ["d1", "d2"]);
}

pub async fn negative_cases_carry_vector_correction_categories_and_comment(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    ingest_traces(
        &*store,
        project,
        vec![
            asked("t1", 0, "where is my card?"),
            asked("t2", 0, "what is my balance?"),
            trace_part("no-input", 0),
            asked("restated", 0, "close my account"),
        ],
        at(1),
    )
    .await;
    ingest_traces(&*store, other, vec![asked("t1", 0, "elsewhere")], at(1)).await;
    embed_all(&*store, MODEL).await;
    ingest_feedback(
        &*store,
        project,
        vec![
            made_at("old", "t1", thumbs(false), 5),
            made_at("down", "t1", thumbs(false), 10),
            made_at("note", "t1", comment("it never says when"), 10),
            made_at("fix", "t1", correction("In 5 to 7 working days."), 11),
            made_at("vague", "t2", categories(&["too_vague"]), 12),
            made_at("up", "t2", thumbs(true), 12),
            made_at("blind", "no-input", thumbs(false), 12),
            made_at("ghost-down", "ghost", thumbs(false), 12),
            rating_by("restated-down", "restated", "alice", false, 7),
            rating_by("restated-up", "restated", "alice", true, 13),
        ],
        at(20),
    )
    .await;
    ingest_feedback(
        &*store,
        other,
        vec![made_at("elsewhere", "t1", thumbs(false), 10)],
        at(20),
    )
    .await;

    let cases = store
        .negative_cases(project, MODEL, at(6), false, 100)
        .await
        .unwrap();
    let seen: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| (c.feedback_id.as_str(), c.trace_id.as_str()))
        .collect();
    assert_eq!(
        seen,
        [("down", "t1"), ("fix", "t1"), ("vague", "t2")],
        "current negative feedback since the time given, on traces with an input, oldest first"
    );
    let t1 = seq_of(&*store, project, "t1").await;
    let t2 = seq_of(&*store, project, "t2").await;
    let down = &cases[0];
    assert_eq!(down.trace_seq, t1);
    assert_eq!(down.query, "where is my card?");
    assert_eq!(down.created_at, at(10));
    assert_eq!(down.vector, Some(vec![t1 as f32, 1.0]));
    assert_eq!(down.correction.as_deref(), Some("In 5 to 7 working days."));
    assert_eq!(down.comment.as_deref(), Some("it never says when"));
    assert!(down.categories.is_empty());
    assert_eq!(
        cases[1].correction.as_deref(),
        Some("In 5 to 7 working days.")
    );
    let vague = &cases[2];
    assert_eq!(vague.trace_seq, t2);
    assert_eq!(vague.categories, ["too_vague"]);
    assert_eq!(vague.correction, None);
    assert_eq!(vague.comment, None);
    assert_eq!(vague.vector, Some(vec![t2 as f32, 1.0]));

    let limited = store
        .negative_cases(project, MODEL, at(6), false, 2)
        .await
        .unwrap();
    assert_eq!(limited, cases[..2]);
    let unembedded = store
        .negative_cases(project, "another-model", at(6), false, 100)
        .await
        .unwrap();
    assert_eq!(unembedded.len(), 3);
    assert!(unembedded.iter().all(|c| c.vector.is_none()));
    let all = store
        .negative_cases(project, MODEL, at(0), true, 100)
        .await
        .unwrap();
    assert_eq!(all[0].feedback_id.as_str(), "old", "`since` is inclusive");
}

pub async fn contrast_vectors_are_well_rated_traces_without_negative_feedback(
    store: Arc<dyn Store>,
) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    let traces = [
        "liked",
        "liked-with-comment",
        "liked-then-regenerated",
        "liked-then-disliked",
        "disliked-then-liked",
        "unrated",
    ];
    let parts = traces
        .iter()
        .enumerate()
        .map(|(started, id)| asked(id, started as i64, id))
        .collect();
    ingest_traces(&*store, project, parts, at(10)).await;
    ingest_traces(&*store, other, vec![asked("liked", 0, "x")], at(10)).await;
    embed_all(&*store, MODEL).await;
    // Added after the embedding run, so it has no vector.
    ingest_traces(&*store, project, vec![asked("late", 20, "late")], at(21)).await;
    let regenerate = FeedbackValue::Signal(Signal {
        signal_type: "regenerate".into(),
        value: None,
        details: Default::default(),
    });
    ingest_feedback(
        &*store,
        project,
        vec![
            made_at("f1", "liked", thumbs(true), 30),
            made_at("f2", "liked-with-comment", thumbs(true), 30),
            made_at("f3", "liked-with-comment", comment("great"), 30),
            made_at("f4", "liked-then-regenerated", thumbs(true), 30),
            made_at("f5", "liked-then-regenerated", regenerate, 31),
            rating_by("f6", "liked-then-disliked", "alice", true, 30),
            rating_by("f7", "liked-then-disliked", "alice", false, 31),
            rating_by("f8", "disliked-then-liked", "bob", false, 30),
            rating_by("f9", "disliked-then-liked", "bob", true, 31),
            made_at("f10", "late", thumbs(true), 30),
        ],
        at(40),
    )
    .await;
    ingest_feedback(
        &*store,
        other,
        vec![made_at("f1", "liked", thumbs(true), 30)],
        at(40),
    )
    .await;
    let contrast = store.contrast_vectors(project, MODEL, 100).await.unwrap();
    let mut expected = Vec::new();
    for id in ["disliked-then-liked", "liked-with-comment", "liked"] {
        let seq = seq_of(&*store, project, id).await;
        expected.push((trace_id(id), vec![seq as f32, 1.0]));
    }
    assert_eq!(contrast, expected, "newest first");
    assert_eq!(
        store.contrast_vectors(project, MODEL, 2).await.unwrap(),
        expected[..2]
    );
    assert!(
        store
            .contrast_vectors(project, "another-model", 100)
            .await
            .unwrap()
            .is_empty()
    );
}

fn injection(id: &str, holdout: bool, lessons: &[&str]) -> Injection {
    Injection {
        id: injection_id(id),
        trace_id: None,
        session_id: Some("s1".into()),
        query: format!("query of {id}"),
        holdout,
        lessons: lessons
            .iter()
            .map(|lesson| InjectedLesson {
                lesson_id: lesson_id(lesson),
                version: 1,
                score: 0.75,
            })
            .collect(),
        created_at: at(5),
    }
}

/// A trace part whose metadata names an injection, as an app logs it.
fn injected(id: &str, injection: &str) -> TracePart {
    TracePart {
        metadata: object([(INJECTION_METADATA_KEY, Value::from(injection))]),
        ..asked(id, 0, "a query")
    }
}

pub async fn injections_are_recorded_linked_and_counted(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    let record = async |injection: Injection| {
        store
            .record_injection(project, &injection)
            .await
            .expect("the injection is recorded");
    };
    record(injection("inj-1", false, &["ls-l", "ls-m"])).await;
    record(injection("inj-2", false, &["ls-l"])).await;
    record(injection("inj-3", false, &["ls-l"])).await;
    record(injection("inj-4", true, &["ls-l"])).await;
    record(injection("inj-5", true, &["ls-l"])).await;
    record(injection("inj-6", false, &["ls-l"])).await;
    record(injection("inj-none", false, &[])).await;
    assert!(matches!(
        store
            .record_injection(project, &injection("inj-1", true, &[]))
            .await,
        Err(StoreError::Conflict { .. })
    ));

    // Linked explicitly, or by the trace's metadata when the trace is stored.
    ingest_traces(
        &*store,
        project,
        vec![
            asked("t1", 0, "a query"),
            injected("t2", "inj-2"),
            injected("t3", "inj-4"),
            asked("t4", 0, "a query"),
            injected("t5", "no-such-injection"),
        ],
        at(6),
    )
    .await;
    let link = async |project: ProjectId, injection: &str, trace: &str| {
        store
            .link_injection(project, &injection_id(injection), &trace_id(trace))
            .await
            .unwrap()
    };
    assert!(link(project, "inj-1", "t1").await);
    assert!(link(project, "inj-5", "t4").await);
    assert!(
        link(project, "inj-6", "t1").await,
        "a trace may get several injections"
    );
    assert!(!link(project, "no-such-injection", "t1").await);
    assert!(
        !link(other, "inj-3", "t1").await,
        "another project's injection"
    );

    let stored = store
        .injection(project, &injection_id("inj-1"))
        .await
        .unwrap();
    assert_eq!(
        stored,
        Some(Injection {
            trace_id: Some(trace_id("t1")),
            ..injection("inj-1", false, &["ls-l", "ls-m"])
        })
    );
    let by_metadata = store
        .injection(project, &injection_id("inj-4"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_metadata.trace_id, Some(trace_id("t3")));
    assert!(by_metadata.holdout);
    let unlinked = store
        .injection(project, &injection_id("inj-3"))
        .await
        .unwrap();
    assert_eq!(unlinked, Some(injection("inj-3", false, &["ls-l"])));
    assert_eq!(
        store
            .injection(other, &injection_id("inj-1"))
            .await
            .unwrap(),
        None
    );

    ingest_feedback(
        &*store,
        project,
        vec![
            made_at("t1-down", "t1", thumbs(false), 10),
            made_at("t2-up", "t2", thumbs(true), 10),
            made_at("t3-down", "t3", thumbs(false), 10),
            rating_by("t4-down", "t4", "alice", false, 10),
            rating_by("t4-up", "t4", "alice", true, 11),
        ],
        at(20),
    )
    .await;
    let effect = async |lesson: &str| {
        store
            .lesson_effect(project, &lesson_id(lesson))
            .await
            .unwrap()
    };
    assert_eq!(
        effect("ls-l").await,
        EffectCounts {
            impressions: 4,
            holdout_impressions: 2,
            treated_traces: 2,
            treated_negative: 1,
            holdout_traces: 2,
            holdout_negative: 1,
        },
        "treated: inj-1 and inj-6 (t1, down), inj-2 (t2, up), inj-3 (no trace); \
         held out: inj-4 (t3, down), inj-5 (t4, restated up)"
    );
    assert_eq!(
        effect("ls-m").await,
        EffectCounts {
            impressions: 1,
            treated_traces: 1,
            treated_negative: 1,
            ..EffectCounts::default()
        }
    );
    assert_eq!(effect("ls-unused").await, EffectCounts::default());
}

pub async fn loop_settings_default_until_set(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    assert_eq!(
        store.loop_settings(project).await.unwrap(),
        LoopSettings::default()
    );
    let mut settings = LoopSettings {
        holdout_fraction: 0.25,
        holdout_seed: 42,
        auto_activate: true,
        ..LoopSettings::default()
    };
    settings
        .instruction_templates
        .insert("custom".into(), "Say it plainly.".into());
    settings.proposals.min_feedback = 5;
    store.set_loop_settings(project, &settings).await.unwrap();
    assert_eq!(store.loop_settings(project).await.unwrap(), settings);
    assert_eq!(
        store.loop_settings(other).await.unwrap(),
        LoopSettings::default()
    );
    settings.auto_activate = false;
    store.set_loop_settings(project, &settings).await.unwrap();
    assert_eq!(store.loop_settings(project).await.unwrap(), settings);
}

pub async fn the_evidence_watermark_grows_with_every_kind_of_write(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let watermark = async || store.evidence_watermark().await.unwrap();
    let start = watermark().await;

    ingest_traces(&*store, project, vec![asked("t1", 0, "q")], at(1)).await;
    let traced = watermark().await;
    assert_eq!(traced, start, "a trace alone is not evidence");

    ingest_feedback(
        &*store,
        project,
        vec![made_at("f1", "t1", thumbs(false), 2)],
        at(2),
    )
    .await;
    let rated = watermark().await;
    assert!(rated.feedback > traced.feedback);
    assert_eq!(
        (rated.vectors, rated.lessons),
        (traced.vectors, traced.lessons)
    );

    embed_all(&*store, MODEL).await;
    let embedded = watermark().await;
    assert!(embedded.vectors > rated.vectors);
    assert_eq!(
        (embedded.feedback, embedded.lessons),
        (rated.feedback, rated.lessons)
    );

    let first = lesson("ls-1", LessonStatus::Proposed, 3, &["f1"]);
    create(&*store, project, &first).await;
    let created = watermark().await;
    assert!(created.lessons > embedded.lessons);
    assert_eq!(
        (created.feedback, created.vectors),
        (embedded.feedback, embedded.vectors)
    );

    update(
        &*store,
        project,
        &next_version(&first, LessonStatus::Active, 4),
    )
    .await;
    let updated = watermark().await;
    assert!(updated.lessons > created.lessons);

    // A failed write changes nothing.
    assert!(store.create_lesson(project, &first).await.is_err());
    assert_eq!(watermark().await, updated);
}

/// A write that fails leaves no trace: no version row, no provenance index, no change.
pub async fn a_rejected_lesson_write_changes_nothing(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    ingest_traces(&*store, project, vec![asked("t1", 0, "q")], at(1)).await;
    ingest_feedback(
        &*store,
        project,
        vec![made_at("f1", "t1", thumbs(false), 2)],
        at(2),
    )
    .await;
    let first = lesson("ls-1", LessonStatus::Proposed, 3, &[]);
    create(&*store, project, &first).await;
    let changes = store.lessons_changed_since(0, 100).await.unwrap();

    let mut conflicting = next_version(&first, LessonStatus::Active, 4);
    conflicting.version = 3;
    conflicting.provenance.feedback_ids = vec![feedback_id("f1")];
    assert!(store.update_lesson(project, &conflicting).await.is_err());
    let mut second_first = lesson("ls-1", LessonStatus::Active, 5, &["f1"]);
    second_first.title = "another".into();
    assert!(store.create_lesson(project, &second_first).await.is_err());
    let not_first = Lesson {
        version: 2,
        ..lesson("ls-2", LessonStatus::Proposed, 6, &["f1"])
    };
    assert!(matches!(
        store.create_lesson(project, &not_first).await,
        Err(StoreError::Invalid { .. })
    ));
    let missing_project = ProjectId(project.0 + 1000);
    assert!(matches!(
        store.create_lesson(missing_project, &first).await,
        Err(StoreError::NotFound { .. })
    ));

    assert_eq!(store.lessons_changed_since(0, 100).await.unwrap(), changes);
    assert_eq!(
        store.lesson_versions(project, &first.id).await.unwrap(),
        [first]
    );
    assert_eq!(store.lesson(project, &not_first.id).await.unwrap(), None);
    let uncovered = store
        .negative_cases(project, MODEL, at(0), true, 100)
        .await
        .unwrap();
    assert_eq!(uncovered.len(), 1, "f1 is still uncovered");
}

/// An injection id of the wrong type in a trace's metadata is not an injection.
pub async fn a_non_string_injection_id_in_metadata_is_ignored(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    store
        .record_injection(project, &injection("inj-1", false, &["ls-l"]))
        .await
        .unwrap();
    let part = TracePart {
        metadata: object([(INJECTION_METADATA_KEY, Value::from(1))]),
        ..asked("t1", 0, "q")
    };
    ingest_traces(&*store, project, vec![part], at(1)).await;
    let stored = store
        .injection(project, &injection_id("inj-1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.trace_id, None::<TraceId>);
}
