//! Implicit signals: signal settings, the derived-signal job's positions and look-ups, deleting
//! derived signals by rule, and stored satisfaction estimates with their filters.

use feedloop_core::ProjectId;
use feedloop_core::feedback::{FeedbackValue, Signal, Source};
use feedloop_core::filter::Filter;
use feedloop_core::signals::{Polarity, Satisfaction, SignalSettings, SignalTypeSettings};
use feedloop_core::trace::TracePart;
use feedloop_store::embeddings::NewEmbedding;
use feedloop_store::{Store, StoreError};
use serde_json::Map;
use std::sync::Arc;

use super::fixtures::*;

fn said(
    id: &str,
    session: Option<&str>,
    started: i64,
    input: &str,
    output: Option<&str>,
) -> TracePart {
    TracePart {
        session_id: session.map(str::to_owned),
        input: Some(input.to_owned()),
        output: output.map(str::to_owned),
        ..trace_part(id, started)
    }
}

fn signal(signal_type: &str) -> FeedbackValue {
    FeedbackValue::Signal(Signal {
        signal_type: signal_type.into(),
        value: None,
        details: Map::new(),
    })
}

async fn seq_of(store: &dyn Store, project: ProjectId, id: &str) -> i64 {
    all_traces(store, project, &Filter::default())
        .await
        .into_iter()
        .find(|t| t.trace.id.as_str() == id)
        .unwrap_or_else(|| panic!("trace {id:?} is stored"))
        .seq
}

pub async fn signal_settings_default_until_set(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    assert_eq!(
        store.signal_settings(project).await.unwrap(),
        SignalSettings::default()
    );
    let mut settings = SignalSettings::default();
    settings.rules.rephrase_min_similarity = 0.8;
    settings.types.insert(
        "bookmark".into(),
        SignalTypeSettings {
            polarity: Polarity::Positive,
            weight: 0.4,
        },
    );
    store
        .set_signal_settings(project, &settings, at(1))
        .await
        .unwrap();
    assert_eq!(store.signal_settings(project).await.unwrap(), settings);
    assert_eq!(
        store.signal_settings(other).await.unwrap(),
        SignalSettings::default(),
        "settings stay in their project"
    );
    let missing = store
        .set_signal_settings(ProjectId(999), &settings, at(2))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

pub async fn signal_progress_only_moves_forward_unless_reset(store: Arc<dyn Store>) {
    assert_eq!(store.signal_progress("vectors:m").await.unwrap(), 0);
    store
        .advance_signal_progress("vectors:m", 10)
        .await
        .unwrap();
    store.advance_signal_progress("vectors:m", 7).await.unwrap();
    assert_eq!(store.signal_progress("vectors:m").await.unwrap(), 10);
    assert_eq!(store.signal_progress("satisfaction").await.unwrap(), 0);
    store.reset_signal_progress("vectors:m", 3).await.unwrap();
    assert_eq!(store.signal_progress("vectors:m").await.unwrap(), 3);
}

pub async fn session_neighbours_and_vectors_are_read_per_trace(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    ingest_traces(
        &*store,
        project,
        vec![
            said("b", Some("s1"), 20, "second", None),
            said("a", Some("s1"), 10, "first", None),
            said("c", Some("s1"), 30, "third", None),
            said("alone", None, 15, "no session", None),
        ],
        at(100),
    )
    .await;
    ingest_traces(
        &*store,
        other,
        vec![said("x", Some("s1"), 12, "other", None)],
        at(100),
    )
    .await;
    let (a, b, c) = (
        seq_of(&*store, project, "a").await,
        seq_of(&*store, project, "b").await,
        seq_of(&*store, project, "c").await,
    );
    let alone = seq_of(&*store, project, "alone").await;
    let mut found = store
        .session_neighbours(project, &[a, b, c, alone])
        .await
        .unwrap();
    found.sort_by_key(|n| n.seq);
    let pairs: Vec<_> = found.iter().map(|n| (n.seq, n.previous, n.next)).collect();
    let mut expected = vec![
        (a, None, Some(b)),
        (b, Some(a), Some(c)),
        (c, Some(b), None),
    ];
    expected.sort_by_key(|(seq, _, _)| *seq);
    assert_eq!(
        pairs, expected,
        "the trace without a session is left out; the other project's trace is no neighbour"
    );

    let tasks = store
        .claim_embedding_tasks(100, at(200), at(260))
        .await
        .unwrap();
    let vectors = tasks
        .iter()
        .filter(|task| task.project == project && task.trace_seq != c)
        .map(|task| NewEmbedding {
            trace_seq: task.trace_seq,
            generation: task.generation,
            vector: vec![task.trace_seq as f32, 0.5],
        })
        .collect();
    store.store_embeddings("m", vectors, at(201)).await.unwrap();
    let mut read = store.trace_vectors("m", project, &[a, b, c]).await.unwrap();
    read.sort_by_key(|(seq, _)| *seq);
    let mut expected = vec![(a, vec![a as f32, 0.5]), (b, vec![b as f32, 0.5])];
    expected.sort_by_key(|(seq, _)| *seq);
    assert_eq!(read, expected, "the trace without a vector is left out");
    assert!(
        store
            .trace_vectors("other-model", project, &[a])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .trace_vectors("m", other, &[a])
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn abandonment_candidates_carry_the_next_start_and_engagement(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    ingest_traces(
        &*store,
        project,
        vec![
            said("a", Some("s1"), 10, "q1", Some("a1")),
            said("b", Some("s1"), 40, "q2", Some("a2")),
            said("c", Some("s2"), 20, "q3", Some("a3")),
            said("d", None, 25, "q4", Some("a4")),
            said("late", Some("s3"), 500, "q5", Some("a5")),
        ],
        at(600),
    )
    .await;
    let automatic = |id: &str, trace: &str| feedloop_core::feedback::Feedback {
        source: Source::Automatic,
        ..feedback(id, trace, signal("rephrase"))
    };
    ingest_feedback(
        &*store,
        project,
        vec![feedback("f1", "c", signal("copy")), automatic("f2", "b")],
        at(600),
    )
    .await;
    let found = store
        .abandonment_candidates(project, at(0), at(100), 100)
        .await
        .unwrap();
    let summary: Vec<_> = found
        .iter()
        .map(|c| (c.trace.trace.id.as_str(), c.next_started_at, c.engaged))
        .collect();
    assert_eq!(
        summary,
        [
            ("a", Some(at(40)), false),
            ("c", None, true),
            ("b", None, false),
        ],
        "by start time; sessions only; automatic feedback is no engagement"
    );
    let first = store
        .abandonment_candidates(project, at(0), at(100), 1)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
}

pub async fn derived_signals_are_deleted_by_rule_prefix_only(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    ingest_traces(
        &*store,
        project,
        vec![trace_part("t1", 1), trace_part("t2", 2)],
        at(10),
    )
    .await;
    let derived = |id: &str, trace: &str, rule: &str| feedloop_core::feedback::Feedback {
        source: Source::Automatic,
        ..feedback(id, trace, signal(rule))
    };
    ingest_feedback(
        &*store,
        project,
        vec![
            derived("auto-rephrase-1", "t1", "rephrase"),
            derived("auto-rephrase-2", "t2", "rephrase"),
            derived("auto-rephrase-3", "t2", "rephrase"),
            derived("auto-regenerate-1", "t1", "regenerate"),
            // An end user's signal that happens to share the prefix is not the server's.
            feedback("auto-rephrase-9", "t1", signal("rephrase")),
            feedback("auto-rephrased", "t1", signal("rephrase")),
        ],
        at(20),
    )
    .await;
    ingest_feedback(
        &*store,
        other,
        vec![derived("auto-rephrase-1", "t1", "rephrase")],
        at(20),
    )
    .await;
    let traces = store
        .delete_derived_signals(project, "auto-rephrase-")
        .await
        .unwrap();
    assert_eq!(
        traces.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        ["t1", "t2"]
    );
    let left = all_feedback(&*store, project, &Filter::default()).await;
    let mut ids = feedback_ids(&left);
    ids.sort();
    assert_eq!(
        ids,
        ["auto-regenerate-1", "auto-rephrase-9", "auto-rephrased"]
    );
    assert_eq!(
        all_feedback(&*store, other, &Filter::default()).await.len(),
        1
    );
}

pub async fn satisfaction_is_stored_filtered_and_removed(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    ingest_traces(
        &*store,
        project,
        vec![
            trace_part("sad", 1),
            trace_part("glad", 2),
            trace_part("unknown", 3),
        ],
        at(10),
    )
    .await;
    ingest_traces(&*store, other, vec![trace_part("sad", 1)], at(10)).await;
    let first_feedback_seq = store.feedback_changes_since(0, 10).await.unwrap().len();
    assert_eq!(first_feedback_seq, 0);
    ingest_feedback(
        &*store,
        project,
        vec![
            feedback("f1", "sad", thumbs(false)),
            feedback("f2", "glad", thumbs(true)),
        ],
        at(20),
    )
    .await;
    let changes = store.feedback_changes_since(0, 10).await.unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.project, c.trace_id.as_str()))
            .collect::<Vec<_>>(),
        [(project, "sad"), (project, "glad")]
    );
    assert!(
        store
            .feedback_changes_since(changes[1].seq, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let estimate = |score: f64| Satisfaction {
        score,
        evidence_weight: 2.0,
        num_votes: 1,
    };
    store
        .put_satisfaction(
            project,
            &[
                (trace_id("sad"), Some(estimate(-0.6))),
                (trace_id("glad"), Some(estimate(0.6))),
            ],
            at(30),
        )
        .await
        .unwrap();
    store
        .put_satisfaction(other, &[(trace_id("sad"), Some(estimate(0.9)))], at(30))
        .await
        .unwrap();
    let listed = |filter: Filter| {
        let store = store.clone();
        async move {
            let traces = all_traces(&*store, project, &filter).await;
            trace_ids(&traces)
                .into_iter()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        listed(Filter {
            satisfaction_below: Some(0.0),
            ..Filter::default()
        })
        .await,
        ["sad"]
    );
    assert_eq!(
        listed(Filter {
            satisfaction_above: Some(0.5),
            ..Filter::default()
        })
        .await,
        ["glad"]
    );
    assert!(
        listed(Filter {
            satisfaction_above: Some(0.7),
            ..Filter::default()
        })
        .await
        .is_empty()
    );
    // On the feedback list the bound applies to the trace the feedback is about.
    let below = all_feedback(
        &*store,
        project,
        &Filter {
            satisfaction_below: Some(0.0),
            ..Filter::default()
        },
    )
    .await;
    assert_eq!(feedback_ids(&below), ["f1"]);

    let read = store
        .satisfaction_of(project, &[trace_id("sad"), trace_id("unknown")])
        .await
        .unwrap();
    assert_eq!(read, [(trace_id("sad"), estimate(-0.6))]);
    store
        .put_satisfaction(project, &[(trace_id("sad"), None)], at(40))
        .await
        .unwrap();
    assert!(
        store
            .satisfaction_of(project, &[trace_id("sad")])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .satisfaction_of(other, &[trace_id("sad")])
            .await
            .unwrap(),
        [(trace_id("sad"), estimate(0.9))]
    );
}

/// A signal marks its trace as a problem by the project's polarity of its type, at ingest and
/// again for stored signals when the polarity changes.
pub async fn signal_negativity_follows_the_projects_polarities(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    let mut settings = SignalSettings::default();
    settings.types.insert(
        "thumb_wave".into(),
        SignalTypeSettings {
            polarity: Polarity::Negative,
            weight: 1.0,
        },
    );
    store
        .set_signal_settings(project, &settings, at(1))
        .await
        .unwrap();
    let traces = || {
        ["waved", "copied", "edited"]
            .iter()
            .enumerate()
            .map(|(i, id)| trace_part(id, i as i64))
            .collect::<Vec<_>>()
    };
    ingest_traces(&*store, project, traces(), at(2)).await;
    ingest_traces(&*store, other, traces(), at(2)).await;
    let signals = || {
        vec![
            feedback("wave", "waved", signal("thumb_wave")),
            feedback("copy", "copied", signal("copy")),
            feedback("edit", "edited", signal("edit")),
        ]
    };
    ingest_feedback(&*store, project, signals(), at(3)).await;
    ingest_feedback(&*store, other, signals(), at(3)).await;
    let negative_traces = |project| {
        let store = store.clone();
        async move {
            let filter = Filter {
                negative_feedback: true,
                ..Filter::default()
            };
            let mut ids: Vec<String> = all_traces(&*store, project, &filter)
                .await
                .into_iter()
                .map(|t| t.trace.id.as_str().to_owned())
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(negative_traces(project).await, ["edited", "waved"]);
    assert!(stored_feedback(&*store, project, "wave").await.negative);
    assert!(!stored_feedback(&*store, project, "copy").await.negative);
    assert_eq!(
        negative_traces(other).await,
        ["edited"],
        "an undeclared type is not negative, edit is by default"
    );

    settings.types.get_mut("thumb_wave").unwrap().polarity = Polarity::Neutral;
    settings.types.get_mut("copy").unwrap().polarity = Polarity::Negative;
    store
        .set_signal_settings(project, &settings, at(4))
        .await
        .unwrap();
    assert_eq!(negative_traces(project).await, ["copied", "edited"]);
    assert!(!stored_feedback(&*store, project, "wave").await.negative);
    assert_eq!(
        negative_traces(other).await,
        ["edited"],
        "another project's signals keep their marks"
    );
}

/// A copied range must lie inside the stored output, as an annotation's does; a rejected copy
/// leaves its whole batch unstored.
pub async fn a_copy_range_outside_the_output_is_rejected(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    ingest_traces(
        &*store,
        project,
        vec![said("t", None, 1, "question", Some("short answer"))],
        at(2),
    )
    .await;
    let copy = |id: &str, start: u64, end: u64| {
        let mut details = Map::new();
        details.insert("start".into(), start.into());
        details.insert("end".into(), end.into());
        feedback(
            id,
            "t",
            FeedbackValue::Signal(Signal {
                signal_type: "copy".into(),
                value: None,
                details,
            }),
        )
    };
    let rejected = store
        .ingest(
            project,
            feedloop_store::IngestBatch {
                traces: vec![],
                feedback: vec![copy("fits", 0, 5), copy("too_far", 6, 13)],
            },
            at(3),
        )
        .await;
    match rejected {
        Err(StoreError::Invalid { item, error }) => {
            assert_eq!(item.map(|i| i.index), Some(1));
            assert_eq!(error.field, "signal.details.end", "{error:?}");
        }
        other => panic!("expected an invalid item, got {other:?}"),
    }
    assert!(
        all_feedback(&*store, project, &Filter::default())
            .await
            .is_empty()
    );
    ingest_feedback(&*store, project, vec![copy("fits", 0, 12)], at(4)).await;
    assert_eq!(
        all_feedback(&*store, project, &Filter::default())
            .await
            .len(),
        1
    );
}
