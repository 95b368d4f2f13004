//! Problem clusters: candidates are the embedded traces with current negative feedback that are
//! in no cluster yet; a run's clusters and members are stored together; members, categories and
//! the daily trend are read back per cluster.

use feedloop_core::trace::TracePart;
use feedloop_store::Store;
use feedloop_store::clusters::ClusterUpdate;
use feedloop_store::embeddings::NewEmbedding;
use std::sync::Arc;

use super::fixtures::*;

/// A trace asked on day `day` (seconds after the suite's epoch).
fn asked_on(id: &str, day: i64, input: &str) -> TracePart {
    asked(id, day * 86_400, input)
}

pub async fn cluster_candidates_are_unclustered_negative_embedded_traces(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    ingest_traces(
        &*store,
        project,
        vec![
            asked_on("card", 1, "my card was declined"),
            asked_on("card2", 2, "card declined again"),
            asked_on("fine", 2, "what is my balance"),
            asked_on("late", 3, "not embedded yet"),
        ],
        at(10 * 86_400),
    )
    .await;
    ingest_traces(
        &*store,
        other,
        vec![asked_on("card", 1, "theirs")],
        at(10 * 86_400),
    )
    .await;
    ingest_feedback(
        &*store,
        project,
        vec![
            feedback("f1", "card", categories(&["incomplete"])),
            feedback("f2", "card2", thumbs(false)),
            feedback("f3", "fine", thumbs(true)),
            feedback("f4", "late", thumbs(false)),
        ],
        at(10 * 86_400),
    )
    .await;
    ingest_feedback(
        &*store,
        other,
        vec![feedback("f1", "card", thumbs(false))],
        at(10 * 86_400),
    )
    .await;
    let tasks = store
        .claim_embedding_tasks(100, at(11 * 86_400), at(12 * 86_400))
        .await
        .unwrap();
    let input_of = |id: &str| match id {
        "card" => "my card was declined",
        "card2" => "card declined again",
        "fine" => "what is my balance",
        _ => "not embedded yet",
    };
    let seq_of = |id: &str| {
        tasks
            .iter()
            .find(|task| task.project == project && task.text == input_of(id))
            .unwrap_or_else(|| panic!("{id} is queued"))
    };
    let vector_of = |id: &str| {
        let task = seq_of(id);
        NewEmbedding {
            trace_seq: task.trace_seq,
            generation: task.generation,
            vector: vec![1.0, task.trace_seq as f32],
        }
    };
    // "late" is not embedded yet.
    let vectors = ["card", "card2", "fine"].map(vector_of).to_vec();
    store
        .store_embeddings("m", vectors, at(11 * 86_400))
        .await
        .unwrap();
    let candidates = store
        .cluster_candidates(project, "m", at(0), 100)
        .await
        .unwrap();
    let ids: Vec<&str> = candidates.iter().map(|c| c.trace_id.as_str()).collect();
    assert_eq!(
        ids,
        ["card", "card2"],
        "negative and embedded, oldest first"
    );
    assert_eq!(candidates[0].query, "my card was declined");
    assert!(
        store
            .cluster_candidates(project, "other-model", at(0), 100)
            .await
            .unwrap()
            .is_empty(),
        "vectors of another model do not count"
    );
    assert_eq!(
        store
            .cluster_candidates(project, "m", at(0), 1)
            .await
            .unwrap()
            .len(),
        1
    );

    let ids = store
        .save_clusters(
            project,
            "m",
            &[ClusterUpdate {
                id: None,
                size: 2,
                centroid_sum: vec![2.0, 1.0],
                terms: vec!["card".into(), "declined".into()],
                new_members: vec![
                    (candidates[0].trace_seq, 0.9),
                    (candidates[1].trace_seq, 0.95),
                ],
            }],
            at(12 * 86_400),
        )
        .await
        .unwrap();
    let clusters = store.problem_clusters(project, "m").await.unwrap();
    assert_eq!(clusters.len(), 1);
    assert_eq!(clusters[0].id, ids[0]);
    assert_eq!(
        (clusters[0].size, clusters[0].terms.clone()),
        (2, vec!["card".to_owned(), "declined".to_owned()])
    );
    assert_eq!(clusters[0].centroid_sum, [2.0, 1.0]);
    assert!(store.problem_clusters(other, "m").await.unwrap().is_empty());
    let mut sizes = store
        .cluster_sizes_of(
            project,
            "m",
            &[trace_id("card"), trace_id("card2"), trace_id("fine")],
        )
        .await
        .unwrap();
    sizes.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(sizes, [(trace_id("card"), 2), (trace_id("card2"), 2)]);
    assert!(
        store
            .cluster_sizes_of(other, "m", &[trace_id("card")])
            .await
            .unwrap()
            .is_empty()
    );

    store
        .store_embeddings("m", vec![vector_of("late")], at(12 * 86_400))
        .await
        .unwrap();
    let left: Vec<String> = store
        .cluster_candidates(project, "m", at(0), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.trace_id.as_str().to_owned())
        .collect();
    assert_eq!(
        left,
        ["late"],
        "members are no longer candidates; a trace embedded late is one"
    );
    let late_seq = seq_of("late").trace_seq;

    let members = store.cluster_members(project, ids[0], 10).await.unwrap();
    let order: Vec<&str> = members.iter().map(|m| m.trace_id.as_str()).collect();
    assert_eq!(order, ["card2", "card"], "nearest first");
    assert_eq!(
        store.cluster_categories(project, ids[0]).await.unwrap(),
        [("incomplete".to_owned(), 1)]
    );
    let trend = store.cluster_trend(project, ids[0], at(0)).await.unwrap();
    assert_eq!(trend, [(at(86_400), 1), (at(2 * 86_400), 1)]);
    assert_eq!(
        store
            .cluster_trend(project, ids[0], at(2 * 86_400))
            .await
            .unwrap(),
        [(at(2 * 86_400), 1)]
    );

    // A later run grows the cluster; its members are never placed twice.
    store
        .save_clusters(
            project,
            "m",
            &[ClusterUpdate {
                id: Some(ids[0]),
                size: 3,
                centroid_sum: vec![3.0, 1.0],
                terms: vec!["card".into()],
                new_members: vec![(late_seq, 0.7), (candidates[1].trace_seq, 0.1)],
            }],
            at(13 * 86_400),
        )
        .await
        .unwrap();
    let grown = store.problem_clusters(project, "m").await.unwrap();
    assert_eq!((grown[0].size, grown[0].updated_at), (3, at(13 * 86_400)));
    assert_eq!(
        store
            .cluster_members(project, ids[0], 10)
            .await
            .unwrap()
            .len(),
        3
    );
}
