//! Feedback: exact round trips, idempotent retries, all-or-nothing batches, and orphans that
//! link once their trace arrives.

use feedloop_core::feedback::{
    Annotation, Correction, CorrectionKind, Feedback, FeedbackKind, FeedbackValue, Rating, Signal,
    Source,
};
use feedloop_core::filter::Filter;
use feedloop_core::trace::{SpanPart, TracePart};
use feedloop_store::{IngestBatch, ItemList, ItemRef, Outcome, Store, StoreError};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::fixtures::*;

/// One item of each kind, with every shared field set on at least one of them.
fn one_of_each_kind() -> Vec<Feedback> {
    vec![
        Feedback {
            span_id: Some(span_id("generate")),
            session_id: Some("s1".into()),
            author: Some("u1".into()),
            author_role: Some("customer".into()),
            metadata: object([("channel", Value::from("web")), ("build", Value::from(7))]),
            created_at: Some(at(10)),
            ..feedback(
                "rating",
                "t1",
                FeedbackValue::Rating(Rating {
                    value: 4.0,
                    min: 1.0,
                    max: 5.0,
                    compared_to: None,
                }),
            )
        },
        Feedback {
            source: Source::Reviewer,
            author: Some("r1".into()),
            confidence: Some(0.75),
            created_at: Some(at(11)),
            ..feedback(
                "category",
                "t1",
                categories(&["factually_incorrect", "too_vague"]),
            )
        },
        Feedback {
            created_at: Some(at(12)),
            metadata: object([(
                "nested",
                serde_json::json!({"a": [1, 2.5, null], "b": true}),
            )]),
            ..feedback(
                "comment",
                "t1",
                comment("Paris is right, the tone is off ✨"),
            )
        },
        Feedback {
            source: Source::Expert,
            created_at: Some(at(13)),
            ..feedback(
                "correction",
                "t1",
                FeedbackValue::Correction(Correction {
                    text: "The capital of France is Paris (since 987).".into(),
                    kind: CorrectionKind::MissingFact,
                }),
            )
        },
        Feedback {
            source: Source::Reviewer,
            created_at: Some(at(14)),
            ..feedback(
                "annotation",
                "t1",
                FeedbackValue::Annotation(Annotation {
                    start: 25,
                    end: 30,
                    quote: "Paris".into(),
                    comment: Some("needs a source".into()),
                    tags: vec!["citation".into()],
                    categories: vec!["incomplete".into()],
                }),
            )
        },
        // No time of its own: it sorts by its arrival, after the others.
        Feedback {
            source: Source::Automatic,
            ..feedback(
                "signal",
                "t1",
                FeedbackValue::Signal(Signal {
                    signal_type: "dwell".into(),
                    value: Some(1234.5),
                    details: object([("visible", Value::from(true))]),
                }),
            )
        },
    ]
}

pub async fn feedback_of_every_kind_round_trips(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let items = one_of_each_kind();
    let kinds: Vec<FeedbackKind> = items.iter().map(|f| f.value.kind()).collect();
    assert_eq!(kinds, FeedbackKind::ALL, "the fixture covers every kind");
    let trace = TracePart {
        output: Some("The capital of France is Paris.".into()),
        spans: vec![(span_id("generate"), SpanPart::default())],
        ..trace_part("t1", 0)
    };
    let batch = IngestBatch {
        traces: vec![trace],
        feedback: items.clone(),
    };
    let receipt = store.ingest(project, batch, at(100)).await.unwrap();
    assert_eq!(receipt.feedback, vec![Outcome::Created; 6]);

    let listed = all_feedback(&*store, project, &Filter::default()).await;
    let listed_values: Vec<&Feedback> = listed.iter().map(|f| &f.feedback).collect();
    assert_eq!(listed_values, items.iter().collect::<Vec<_>>());
    for stored in &listed {
        assert_eq!(stored.received_at, at(100));
        assert_eq!(stored.superseded_by, None);
        assert!(stored.trace_linked);
    }
    assert_eq!(
        listed[5].time(),
        at(100),
        "the arrival time stands in for a missing time"
    );

    let chain = store
        .trace_chain(project, &trace_id("t1"))
        .await
        .unwrap()
        .unwrap();
    let chained: Vec<&Feedback> = chain.feedback.iter().map(|f| &f.feedback).collect();
    assert_eq!(chained, items.iter().collect::<Vec<_>>());

    let stats = store.stats(project).await.unwrap();
    let by_kind: BTreeMap<String, u64> = FeedbackKind::ALL
        .iter()
        .map(|k| (k.as_str().to_owned(), 1))
        .collect();
    assert_eq!(stats.feedback_by_kind, by_kind);
}

pub async fn feedback_retry_is_idempotent_and_conflicts_reject_the_batch(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    ingest_traces(
        &*store,
        project,
        vec![TracePart {
            output: Some("first answer".into()),
            ..trace_part("t1", 0)
        }],
        at(1),
    )
    .await;
    // No time of its own, so a retry arriving later has the same content.
    let original = feedback("fb1", "t1", thumbs(false));
    let receipt = ingest_feedback(&*store, project, vec![original.clone()], at(10)).await;
    assert_eq!(receipt.feedback, vec![Outcome::Created]);

    let receipt = ingest_feedback(&*store, project, vec![original.clone()], at(20)).await;
    assert_eq!(receipt.feedback, vec![Outcome::Duplicate]);
    assert_eq!(store.stats(project).await.unwrap().feedback, 1);
    let stored = stored_feedback(&*store, project, "fb1").await;
    assert_eq!(stored.received_at, at(10), "a duplicate changes nothing");
    assert_eq!(stored.feedback, original);

    // A batch whose second feedback item reuses the id with other content fails as a whole.
    let changed = Feedback {
        value: thumbs(true),
        ..original.clone()
    };
    let batch = IngestBatch {
        traces: vec![
            trace_part("t2", 30),
            TracePart {
                output: Some("rewritten answer".into()),
                ..trace_part("t1", 0)
            },
        ],
        feedback: vec![feedback("fb2", "t1", comment("valid and new")), changed],
    };
    let error = store.ingest(project, batch, at(30)).await.unwrap_err();
    let StoreError::Conflict { item, field, .. } = &error else {
        panic!("expected a conflict, got {error:?}");
    };
    assert_eq!(
        *item,
        Some(ItemRef {
            list: ItemList::Feedback,
            index: 1
        })
    );
    assert_eq!(field, "id");

    let ids = feedback_ids(&all_feedback(&*store, project, &Filter::default()).await)
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert_eq!(
        ids,
        ["fb1"],
        "the valid item before the conflict was not stored"
    );
    assert_eq!(
        stored_feedback(&*store, project, "fb1").await.feedback,
        original
    );
    assert_eq!(
        store.trace_chain(project, &trace_id("t2")).await.unwrap(),
        None
    );
    let t1 = store
        .trace_chain(project, &trace_id("t1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t1.trace.trace.output.as_deref(), Some("first answer"));
    assert_eq!(
        t1.trace.trace.updated_at,
        at(1),
        "the merge of the failed batch was undone"
    );
    assert_eq!(store.stats(project).await.unwrap().traces, 1);
}

pub async fn orphan_feedback_links_when_its_trace_arrives(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let early = Feedback {
        session_id: Some("s1".into()),
        created_at: Some(at(5)),
        ..feedback("early", "late-trace", thumbs(false))
    };
    let receipt = ingest_feedback(&*store, project, vec![early.clone()], at(6)).await;
    assert_eq!(receipt.feedback, vec![Outcome::Created]);

    let stored = stored_feedback(&*store, project, "early").await;
    assert!(!stored.trace_linked);
    assert_eq!(stored.feedback, early);
    assert_eq!(
        store
            .trace_chain(project, &trace_id("late-trace"))
            .await
            .unwrap(),
        None
    );
    let session = store.session(project, "s1", 10).await.unwrap().unwrap();
    assert!(session.traces.is_empty());
    assert_eq!(feedback_ids(&session.unlinked_feedback), ["early"]);

    let trace = TracePart {
        session_id: Some("s1".into()),
        ..trace_part("late-trace", 1)
    };
    ingest_traces(&*store, project, vec![trace], at(7)).await;

    let chain = store
        .trace_chain(project, &trace_id("late-trace"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(feedback_ids(&chain.feedback), ["early"]);
    assert!(chain.feedback[0].trace_linked);
    assert_eq!(chain.feedback[0].feedback, early);
    assert!(
        stored_feedback(&*store, project, "early")
            .await
            .trace_linked
    );
    let session = store.session(project, "s1", 10).await.unwrap().unwrap();
    assert_eq!(session.traces.len(), 1);
    assert_eq!(feedback_ids(&session.traces[0].1), ["early"]);
    assert!(session.unlinked_feedback.is_empty());
}
