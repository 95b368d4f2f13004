//! Many writers at once: every acknowledged write is stored, and a write that fails does not
//! take the writes committed beside it down (the SQLite backend groups them into shared
//! transactions; other backends may not, but the contract is the same).

use feedloop_core::ProjectId;
use feedloop_core::feedback::Feedback;
use feedloop_store::{
    IngestBatch, IngestReceipt, ItemList, ItemRef, Outcome, Result, Store, StoreError,
};
use std::sync::Arc;

use super::fixtures::*;

const NUM_WRITERS: usize = 50;
const ITEMS_PER_WRITER: usize = 20;

fn writer_batch(round: &str, writer: usize) -> Vec<Feedback> {
    (0..ITEMS_PER_WRITER)
        .map(|item| {
            let id = format!("{round}-{writer}-{item}");
            feedback(&id, &format!("t{}", writer % 5), comment(&id))
        })
        .collect()
}

/// Sends every batch from its own task at once and returns the results in batch order.
async fn ingest_concurrently(
    store: &Arc<dyn Store>,
    project: ProjectId,
    batches: Vec<Vec<Feedback>>,
) -> Vec<Result<IngestReceipt>> {
    let tasks: Vec<_> = batches
        .into_iter()
        .map(|feedback| {
            let store = Arc::clone(store);
            tokio::spawn(async move {
                let batch = IngestBatch {
                    traces: vec![],
                    feedback,
                };
                store.ingest(project, batch, at(10)).await
            })
        })
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.expect("the ingest task does not panic"));
    }
    results
}

pub async fn concurrent_ingests_all_commit(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let batches = (0..NUM_WRITERS)
        .map(|writer| writer_batch("a", writer))
        .collect();
    let results = ingest_concurrently(&store, project, batches).await;
    for (writer, result) in results.into_iter().enumerate() {
        let receipt = result.unwrap_or_else(|e| panic!("writer {writer} failed: {e:?}"));
        assert_eq!(receipt.feedback, vec![Outcome::Created; ITEMS_PER_WRITER]);
    }
    let stats = store.stats(project).await.unwrap();
    assert_eq!(stats.feedback, (NUM_WRITERS * ITEMS_PER_WRITER) as u64);
    let listed = all_feedback(&*store, project, &Default::default()).await;
    assert_eq!(listed.len(), NUM_WRITERS * ITEMS_PER_WRITER);
}

pub async fn concurrent_conflicting_ingest_fails_alone(store: Arc<dyn Store>) {
    const FAILING_WRITER: usize = 17;
    let project = new_project(&*store, "alpha").await;
    let taken = feedback("taken", "t0", comment("first"));
    ingest_feedback(&*store, project, vec![taken.clone()], at(1)).await;

    let batches = (0..NUM_WRITERS)
        .map(|writer| {
            let mut batch = writer_batch("b", writer);
            if writer == FAILING_WRITER {
                // Its last item reuses a stored id with other content.
                batch[ITEMS_PER_WRITER - 1] = feedback("taken", "t0", comment("second"));
            }
            batch
        })
        .collect();
    let results = ingest_concurrently(&store, project, batches).await;
    for (writer, result) in results.into_iter().enumerate() {
        if writer == FAILING_WRITER {
            let error = result.expect_err("the conflicting batch fails");
            let StoreError::Conflict { item, .. } = &error else {
                panic!("expected a conflict, got {error:?}");
            };
            let expected = ItemRef {
                list: ItemList::Feedback,
                index: ITEMS_PER_WRITER - 1,
            };
            assert_eq!(*item, Some(expected));
        } else {
            let receipt = result.unwrap_or_else(|e| panic!("writer {writer} failed: {e:?}"));
            assert_eq!(receipt.feedback.len(), ITEMS_PER_WRITER);
        }
    }

    let stored = all_feedback(&*store, project, &Default::default()).await;
    let expected_count = 1 + (NUM_WRITERS - 1) * ITEMS_PER_WRITER;
    assert_eq!(stored.len(), expected_count);
    assert_eq!(
        store.stats(project).await.unwrap().feedback,
        expected_count as u64
    );
    let failing_prefix = format!("b-{FAILING_WRITER}-");
    assert!(
        stored
            .iter()
            .all(|f| !f.feedback.id.as_str().starts_with(&failing_prefix)),
        "nothing of the failing batch is stored"
    );
    let kept = stored
        .iter()
        .find(|f| f.feedback.id.as_str() == "taken")
        .unwrap();
    assert_eq!(kept.feedback, taken);
}
