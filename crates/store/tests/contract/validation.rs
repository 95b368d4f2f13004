//! Rules that need stored data to check: categories against the project's taxonomy, and
//! annotations against the output of the trace they mark.

use feedloop_core::ProjectId;
use feedloop_core::feedback::{Annotation, Feedback, FeedbackValue};
use feedloop_core::filter::Filter;
use feedloop_core::trace::TracePart;
use feedloop_store::{IngestBatch, ItemList, ItemRef, Outcome, Store, StoreError};
use std::sync::Arc;

use super::fixtures::*;

fn item(index: usize) -> Option<ItemRef> {
    Some(ItemRef {
        list: ItemList::Feedback,
        index,
    })
}

/// Ingests `feedback` and returns the error, which the caller expects.
async fn rejected(store: &dyn Store, project: ProjectId, feedback: Vec<Feedback>) -> StoreError {
    let batch = IngestBatch {
        traces: vec![],
        feedback,
    };
    match store.ingest(project, batch, at(50)).await {
        Ok(receipt) => panic!("expected the batch to be rejected, got {receipt:?}"),
        Err(error) => error,
    }
}

fn assert_unknown_category(
    error: &StoreError,
    index: usize,
    expected_field: &str,
    expected_name: &str,
) {
    let StoreError::UnknownCategory {
        item: at_item,
        field,
        name,
    } = error
    else {
        panic!("expected an unknown category, got {error:?}");
    };
    assert_eq!(*at_item, item(index));
    assert_eq!(field, expected_field);
    assert_eq!(name, expected_name);
}

fn annotation(start: u64, end: u64, quote: &str, categories: &[&str]) -> FeedbackValue {
    FeedbackValue::Annotation(Annotation {
        start,
        end,
        quote: quote.to_owned(),
        comment: None,
        tags: vec![],
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
    })
}

pub async fn categories_must_be_active_in_the_taxonomy(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    ingest_traces(&*store, project, vec![trace_part("t1", 0)], at(1)).await;

    let error = rejected(
        &*store,
        project,
        vec![
            feedback("ok", "t1", comment("valid")),
            feedback("bad", "t1", categories(&["too_vague", "made_up"])),
        ],
    )
    .await;
    assert_unknown_category(&error, 1, "categories[1]", "made_up");
    assert!(
        all_feedback(&*store, project, &Filter::default())
            .await
            .is_empty()
    );

    // An annotation's categories are checked too.
    let error = rejected(
        &*store,
        project,
        vec![feedback("note", "t9", annotation(0, 2, "hi", &["made_up"]))],
    )
    .await;
    assert_unknown_category(&error, 0, "annotation.categories[0]", "made_up");

    // Stored feedback keeps a category that is retired later; new feedback may not pick it.
    ingest_feedback(
        &*store,
        project,
        vec![feedback("kept", "t1", categories(&["too_vague"]))],
        at(2),
    )
    .await;
    let retired = store
        .retire_category(project, "too_vague", at(3))
        .await
        .unwrap();
    assert_eq!(retired.retired_at, Some(at(3)));
    let again = store
        .retire_category(project, "too_vague", at(4))
        .await
        .unwrap();
    assert_eq!(
        again.retired_at,
        Some(at(3)),
        "retiring twice keeps the first time"
    );
    let taxonomy = store.taxonomy(project).await.unwrap();
    let listed = taxonomy.iter().find(|c| c.name == "too_vague").unwrap();
    assert!(
        !listed.is_active(),
        "retired categories stay in the taxonomy"
    );
    let error = rejected(
        &*store,
        project,
        vec![feedback("late", "t1", categories(&["too_vague"]))],
    )
    .await;
    assert_unknown_category(&error, 0, "categories[0]", "too_vague");
    let error = rejected(
        &*store,
        project,
        vec![feedback(
            "late-note",
            "t9",
            annotation(0, 2, "hi", &["too_vague"]),
        )],
    )
    .await;
    assert_unknown_category(&error, 0, "annotation.categories[0]", "too_vague");
    let by_category = Filter {
        category: Some("too_vague".into()),
        ..Default::default()
    };
    assert_eq!(
        feedback_ids(&all_feedback(&*store, project, &by_category).await),
        ["kept"]
    );

    // Reactivating it, or adding a new one, makes it accepted.
    let reactivated = store
        .add_category(project, "too_vague", None, at(4))
        .await
        .unwrap();
    assert!(reactivated.is_active());
    assert!(
        reactivated.description.is_some(),
        "reactivation keeps the description"
    );
    let receipt = ingest_feedback(
        &*store,
        project,
        vec![feedback("late", "t1", categories(&["too_vague"]))],
        at(5),
    )
    .await;
    assert_eq!(receipt.feedback, vec![Outcome::Created]);

    let error = rejected(
        &*store,
        project,
        vec![feedback("custom", "t1", categories(&["wrong_grounding"]))],
    )
    .await;
    assert_unknown_category(&error, 0, "categories[0]", "wrong_grounding");
    let added = store
        .add_category(
            project,
            "wrong_grounding",
            Some("cites the wrong document"),
            at(6),
        )
        .await
        .unwrap();
    assert_eq!(added.name, "wrong_grounding");
    assert_eq!(
        added.description.as_deref(),
        Some("cites the wrong document")
    );
    assert_eq!(added.created_at, at(6));
    assert!(added.is_active());
    let receipt = ingest_feedback(
        &*store,
        project,
        vec![
            feedback("custom", "t1", categories(&["wrong_grounding"])),
            feedback(
                "custom-note",
                "t9",
                annotation(0, 2, "hi", &["wrong_grounding"]),
            ),
        ],
        at(7),
    )
    .await;
    assert_eq!(receipt.feedback, vec![Outcome::Created, Outcome::Created]);
    assert!(store.taxonomy(project).await.unwrap().contains(&added));

    let missing = store
        .retire_category(project, "no_such_category", at(8))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
}

fn assert_invalid_annotation(error: &StoreError, index: usize, expected_field: &str) {
    let StoreError::Invalid {
        item: at_item,
        error,
    } = error
    else {
        panic!("expected an invalid item, got {error:?}");
    };
    assert_eq!(*at_item, item(index));
    assert!(error.field.starts_with("annotation."), "{error:?}");
    assert_eq!(error.field, expected_field);
}

pub async fn annotations_are_checked_against_a_stored_output(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let traces = vec![
        TracePart {
            output: Some("Prix: 12 € par mois".into()),
            ..trace_part("priced", 0)
        },
        TracePart {
            input: Some("still thinking".into()),
            ..trace_part("no-output-yet", 0)
        },
    ];
    ingest_traces(&*store, project, traces, at(1)).await;

    // Ranges count characters, not bytes.
    let receipt = ingest_feedback(
        &*store,
        project,
        vec![feedback("fits", "priced", annotation(6, 10, "12 €", &[]))],
        at(2),
    )
    .await;
    assert_eq!(receipt.feedback, vec![Outcome::Created]);

    let error = rejected(
        &*store,
        project,
        vec![
            feedback("fine", "priced", comment("ok")),
            feedback("misquoted", "priced", annotation(6, 10, "12 e", &[])),
        ],
    )
    .await;
    assert_invalid_annotation(&error, 1, "annotation.quote");
    let error = rejected(
        &*store,
        project,
        vec![feedback(
            "beyond",
            "priced",
            annotation(16, 20, "mois", &[]),
        )],
    )
    .await;
    assert_invalid_annotation(&error, 0, "annotation.end");
    assert_eq!(
        feedback_ids(&all_feedback(&*store, project, &Filter::default()).await),
        ["fits"]
    );

    // A trace in the same batch is stored first, so its output is what the mark is checked
    // against; and when the mark fails, the trace is not stored either.
    let batch = IngestBatch {
        traces: vec![TracePart {
            output: Some("abc".into()),
            ..trace_part("same-batch", 0)
        }],
        feedback: vec![feedback(
            "same-batch-note",
            "same-batch",
            annotation(0, 2, "xy", &[]),
        )],
    };
    let error = store.ingest(project, batch, at(3)).await.unwrap_err();
    assert_invalid_annotation(&error, 0, "annotation.quote");
    assert_eq!(
        store
            .trace_chain(project, &trace_id("same-batch"))
            .await
            .unwrap(),
        None
    );

    // Nothing to check against yet: the trace has not arrived, or has no output yet.
    let receipt = ingest_feedback(
        &*store,
        project,
        vec![
            feedback("orphan", "not-arrived", annotation(0, 5, "hello", &[])),
            feedback("early", "no-output-yet", annotation(0, 5, "hello", &[])),
        ],
        at(4),
    )
    .await;
    assert_eq!(receipt.feedback, vec![Outcome::Created, Outcome::Created]);
    let orphan = stored_feedback(&*store, project, "orphan").await;
    assert!(!orphan.trace_linked);
}

/// Regression: a retry of stored feedback whose category was retired since must stay a no-op
/// (a duplicate), not turn into an unknown-category error.
pub async fn a_retry_is_a_duplicate_even_after_its_category_is_retired(store: Arc<dyn Store>) {
    let project = new_project(store.as_ref(), "retry").await;
    let item = feedback("f1", "t1", categories(&["too_vague"]));
    let first = ingest_feedback(store.as_ref(), project, vec![item.clone()], at(1)).await;
    assert_eq!(first.feedback, vec![Outcome::Created]);
    store
        .retire_category(project, "too_vague", at(2))
        .await
        .unwrap();
    let retry = ingest_feedback(store.as_ref(), project, vec![item], at(3)).await;
    assert_eq!(retry.feedback, vec![Outcome::Duplicate]);
}

/// Ingest names a project that must exist; every backend refuses the same way.
pub async fn ingest_into_a_missing_project_is_not_found(store: Arc<dyn Store>) {
    let batch = IngestBatch {
        traces: vec![trace_part("t1", 1)],
        feedback: Vec::new(),
    };
    let error = store
        .ingest(ProjectId(999_999), batch, at(1))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            StoreError::NotFound {
                what: "project",
                ..
            }
        ),
        "{error:?}"
    );
}
