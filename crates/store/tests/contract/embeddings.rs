//! Semantic memory: the embedding queue (ingest queues traces with an input, workers claim them
//! with a lease and store vectors by generation), the vectors followed in order of writing, and
//! the reads that searches resolve their hits with.

use feedloop_core::feedback::{FeedbackValue, Signal};
use feedloop_core::filter::Filter;
use feedloop_core::trace::TracePart;
use feedloop_core::{ProjectId, TraceId};
use feedloop_store::Store;
use feedloop_store::embeddings::{EmbeddingTask, NewEmbedding, StoredEmbedding};
use std::collections::BTreeSet;
use std::sync::Arc;

use super::fixtures::*;

const MODEL: &str = "test-model";

/// A trace part with an input.
/// A later part of trace `id` that sets (or changes) its input.
fn new_input(id: &str, input: &str) -> TracePart {
    TracePart {
        id: trace_id(id),
        input: Some(input.to_owned()),
        ..Default::default()
    }
}

/// The sequence number of each trace of `project`, by id.
async fn seq_of(store: &dyn Store, project: ProjectId, id: &str) -> i64 {
    all_traces(store, project, &Filter::default())
        .await
        .into_iter()
        .find(|t| t.trace.id.as_str() == id)
        .unwrap_or_else(|| panic!("trace {id:?} is stored"))
        .seq
}

/// Claims at `now` seconds with a lease of a minute.
async fn claim(store: &dyn Store, limit: u32, now: i64) -> Vec<EmbeddingTask> {
    store
        .claim_embedding_tasks(limit, at(now), at(now + 60))
        .await
        .expect("tasks are claimed")
}

/// The vector stored for a task: its trace's sequence number, then `marker`.
fn vector_for(task: &EmbeddingTask, marker: f32) -> NewEmbedding {
    NewEmbedding {
        trace_seq: task.trace_seq,
        generation: task.generation,
        vector: vec![task.trace_seq as f32, marker],
    }
}

async fn store_vectors(store: &dyn Store, model: &str, vectors: Vec<NewEmbedding>, now: i64) {
    store
        .store_embeddings(model, vectors, at(now))
        .await
        .expect("the vectors are stored");
}

async fn vectors_since(store: &dyn Store, model: &str, after: i64) -> Vec<StoredEmbedding> {
    store
        .embeddings_since(model, after, 1000)
        .await
        .expect("vectors are read")
}

async fn backlog(store: &dyn Store) -> u64 {
    store
        .embedding_backlog()
        .await
        .expect("the backlog is counted")
}

/// The ids of the traces with these sequence numbers, sorted.
async fn ids_of(store: &dyn Store, project: ProjectId, seqs: &[i64]) -> Vec<String> {
    let mut ids: Vec<String> = store
        .traces_by_seq(project, seqs)
        .await
        .expect("traces are read by sequence number")
        .into_iter()
        .map(|t| t.trace.id.as_str().to_owned())
        .collect();
    ids.sort();
    ids
}

pub async fn a_trace_with_input_is_queued_and_claimed_once_per_lease(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    ingest_traces(
        &*store,
        project,
        vec![
            asked("t1", 0, "how do I reset my pin?"),
            trace_part("t2", 0),
        ],
        at(1),
    )
    .await;
    assert_eq!(
        backlog(&*store).await,
        1,
        "only the trace with an input waits"
    );

    let tasks = claim(&*store, 10, 10).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        tasks,
        [EmbeddingTask {
            project,
            trace_seq: seq_of(&*store, project, "t1").await,
            generation: tasks[0].generation,
            text: "how do I reset my pin?".into(),
        }]
    );
    assert!(
        claim(&*store, 10, 30).await.is_empty(),
        "a claimed trace is not claimed again before its lease ends"
    );
    assert_eq!(backlog(&*store).await, 1, "a claimed trace still waits");
    let again = claim(&*store, 10, 71).await;
    assert_eq!(again, tasks, "after the lease the trace is claimed again");
}

pub async fn traces_without_input_are_never_queued(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    ingest_traces(&*store, project, vec![trace_part("t1", 0)], at(1)).await;
    let later = TracePart {
        id: trace_id("t1"),
        output: Some("an answer".into()),
        tags: ["late".to_owned()].into(),
        ..Default::default()
    };
    ingest_traces(&*store, project, vec![later], at(2)).await;
    assert_eq!(backlog(&*store).await, 0);
    assert!(claim(&*store, 10, 10).await.is_empty());
    assert_eq!(store.queue_missing_embeddings(MODEL).await.unwrap(), 0);

    // An input sent in a later part queues the trace then.
    let input = new_input("t1", "what is my balance?");
    ingest_traces(&*store, project, vec![input], at(3)).await;
    let tasks = claim(&*store, 10, 10).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].text, "what is my balance?");
}

pub async fn stored_vectors_leave_the_queue_and_are_followed_in_order(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    ingest_traces(
        &*store,
        project,
        vec![
            asked("t1", 0, "first question"),
            asked("t2", 1, "second question"),
        ],
        at(2),
    )
    .await;
    let tasks = claim(&*store, 10, 10).await;
    assert_eq!(tasks.len(), 2);
    store_vectors(
        &*store,
        MODEL,
        tasks.iter().map(|t| vector_for(t, 0.5)).collect(),
        11,
    )
    .await;
    assert_eq!(backlog(&*store).await, 0);
    assert!(
        claim(&*store, 10, 100).await.is_empty(),
        "stored traces are not claimed again"
    );

    let stored = vectors_since(&*store, MODEL, 0).await;
    let t1 = seq_of(&*store, project, "t1").await;
    let t2 = seq_of(&*store, project, "t2").await;
    assert_eq!(
        stored
            .iter()
            .map(|e| (e.project, e.trace_seq, e.vector.clone()))
            .collect::<Vec<_>>(),
        [
            (project, t1, vec![t1 as f32, 0.5]),
            (project, t2, vec![t2 as f32, 0.5]),
        ]
    );
    assert!(stored[0].seq < stored[1].seq);
    assert_eq!(
        vectors_since(&*store, MODEL, stored[0].seq).await,
        stored[1..]
    );
    assert!(
        vectors_since(&*store, MODEL, stored[1].seq)
            .await
            .is_empty()
    );
    assert!(vectors_since(&*store, "other-model", 0).await.is_empty());
    let first_one = store.embeddings_since(MODEL, 0, 1).await.unwrap();
    assert_eq!(first_one, stored[..1], "the limit is honoured");

    // A changed input is embedded again; the new vector replaces the old one, later in order.
    let changed = new_input("t1", "first question, rephrased");
    ingest_traces(&*store, project, vec![changed], at(20)).await;
    let tasks = claim(&*store, 10, 21).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].text, "first question, rephrased");
    store_vectors(&*store, MODEL, vec![vector_for(&tasks[0], 0.75)], 22).await;
    let after = vectors_since(&*store, MODEL, 0).await;
    assert_eq!(
        after
            .iter()
            .map(|e| (e.trace_seq, e.vector[1]))
            .collect::<Vec<_>>(),
        [(t2, 0.5), (t1, 0.75)],
        "one vector per (model, trace)"
    );
    assert!(
        after[1].seq > stored[1].seq,
        "the replacement comes after every earlier vector"
    );
    assert_eq!(
        vectors_since(&*store, MODEL, stored[1].seq).await,
        after[1..]
    );
}

pub async fn a_trace_requeued_while_claimed_stays_queued_after_the_old_generation_is_stored(
    store: Arc<dyn Store>,
) {
    let project = new_project(&*store, "alpha").await;
    ingest_traces(
        &*store,
        project,
        vec![asked("t1", 0, "old question")],
        at(1),
    )
    .await;
    let old = claim(&*store, 10, 10).await;
    assert_eq!(old.len(), 1);

    let changed = new_input("t1", "new question");
    ingest_traces(&*store, project, vec![changed], at(11)).await;
    store_vectors(&*store, MODEL, vec![vector_for(&old[0], 0.0)], 12).await;
    assert_eq!(backlog(&*store).await, 1, "the new input still waits");

    // Re-queueing ends the claim: the new input is claimed at once, as a new generation.
    let new = claim(&*store, 10, 13).await;
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].trace_seq, old[0].trace_seq);
    assert_ne!(new[0].generation, old[0].generation);
    assert_eq!(new[0].text, "new question");
    // A batch that still holds the old generation too stores the new one's vector.
    store_vectors(
        &*store,
        MODEL,
        vec![vector_for(&old[0], 0.5), vector_for(&new[0], 1.0)],
        14,
    )
    .await;
    assert_eq!(backlog(&*store).await, 0);
    let stored = vectors_since(&*store, MODEL, 0).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].vector[1], 1.0, "the vector of the current input");
}

/// Regression: a worker whose claim was overtaken by a change of input, storing after another
/// worker stored the vector of the new input, replaced it with the vector of the old one.
pub async fn a_late_vector_of_an_old_input_does_not_replace_the_current_one(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    ingest_traces(
        &*store,
        project,
        vec![asked("t1", 0, "old question")],
        at(1),
    )
    .await;
    let slow = claim(&*store, 10, 10).await;
    let changed = new_input("t1", "new question");
    ingest_traces(&*store, project, vec![changed], at(11)).await;
    let fast = claim(&*store, 10, 12).await;
    assert_eq!(fast.len(), 1);
    store_vectors(&*store, MODEL, vec![vector_for(&fast[0], 1.0)], 13).await;
    store_vectors(&*store, MODEL, vec![vector_for(&slow[0], 0.0)], 14).await;

    let stored = vectors_since(&*store, MODEL, 0).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(
        stored[0].vector[1], 1.0,
        "the vector of the current input stays"
    );
    assert_eq!(backlog(&*store).await, 0);
}

pub async fn queue_missing_embeddings_queues_each_trace_with_input_once(store: Arc<dyn Store>) {
    let alpha = new_project(&*store, "alpha").await;
    let beta = new_project(&*store, "beta").await;
    ingest_traces(
        &*store,
        alpha,
        vec![
            asked("t1", 0, "one"),
            asked("t2", 1, "two"),
            trace_part("t3", 2),
        ],
        at(3),
    )
    .await;
    ingest_traces(&*store, beta, vec![asked("t1", 0, "uno")], at(3)).await;
    assert_eq!(backlog(&*store).await, 3);
    let tasks = claim(&*store, 10, 10).await;
    assert_eq!(tasks.len(), 3);
    store_vectors(
        &*store,
        MODEL,
        tasks.iter().map(|t| vector_for(t, 0.0)).collect(),
        11,
    )
    .await;
    assert_eq!(store.queue_missing_embeddings(MODEL).await.unwrap(), 0);
    assert_eq!(backlog(&*store).await, 0);

    // A new model: every trace with an input (of every project) waits again, once.
    assert_eq!(
        store.queue_missing_embeddings("new-model").await.unwrap(),
        3
    );
    assert_eq!(
        store.queue_missing_embeddings("new-model").await.unwrap(),
        0
    );
    assert_eq!(backlog(&*store).await, 3);
    let tasks = claim(&*store, 10, 20).await;
    let texts: BTreeSet<&str> = tasks.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(texts, BTreeSet::from(["one", "two", "uno"]));
    assert_eq!(
        tasks.iter().filter(|t| t.project == beta).count(),
        1,
        "tasks name their project"
    );
    store_vectors(
        &*store,
        "new-model",
        tasks.iter().map(|t| vector_for(t, 0.0)).collect(),
        21,
    )
    .await;
    assert_eq!(backlog(&*store).await, 0);
    assert_eq!(vectors_since(&*store, "new-model", 0).await.len(), 3);
    assert_eq!(
        vectors_since(&*store, MODEL, 0).await.len(),
        3,
        "the old model's stay"
    );
}

pub async fn traces_by_seq_reads_only_the_projects_traces(store: Arc<dyn Store>) {
    let alpha = new_project(&*store, "alpha").await;
    let beta = new_project(&*store, "beta").await;
    ingest_traces(
        &*store,
        alpha,
        vec![asked("a1", 0, "one"), asked("a2", 1, "two")],
        at(2),
    )
    .await;
    ingest_traces(&*store, beta, vec![asked("b1", 0, "uno")], at(2)).await;
    let a1 = seq_of(&*store, alpha, "a1").await;
    let a2 = seq_of(&*store, alpha, "a2").await;
    let b1 = seq_of(&*store, beta, "b1").await;

    assert_eq!(
        ids_of(&*store, alpha, &[a1, a2, b1, b1 + 1000]).await,
        ["a1", "a2"]
    );
    assert_eq!(ids_of(&*store, beta, &[a1, a2, b1]).await, ["b1"]);
    assert!(ids_of(&*store, beta, &[a1]).await.is_empty());
    let traces = store.traces_by_seq(alpha, &[a2]).await.unwrap();
    assert_eq!(traces.len(), 1);
    assert_eq!(traces[0].seq, a2);
    assert_eq!(traces[0].trace.input.as_deref(), Some("two"));
    assert!(traces[0].spans.is_empty(), "spans are not loaded");
}

pub async fn trace_seqs_honour_the_filter_and_negative_feedback(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    let traces = [
        "down",
        "restated",
        "regenerated",
        "commented",
        "copied",
        "silent",
    ]
    .iter()
    .enumerate()
    .map(|(i, id)| TracePart {
        user_id: Some(if i % 2 == 0 { "u1" } else { "u2" }.into()),
        ..asked(id, i as i64, "a question")
    })
    .collect();
    ingest_traces(&*store, project, traces, at(10)).await;
    ingest_traces(&*store, other, vec![asked("down", 0, "a question")], at(10)).await;
    let signal = |signal_type: &str| {
        FeedbackValue::Signal(Signal {
            signal_type: signal_type.into(),
            value: None,
            details: Default::default(),
        })
    };
    ingest_feedback(
        &*store,
        project,
        vec![
            rating_by("f1", "down", "ann", false, 20),
            // A thumbs down restated as a thumbs up no longer counts.
            rating_by("f2", "restated", "ann", false, 20),
            rating_by("f3", "restated", "ann", true, 21),
            feedback("f4", "regenerated", signal("regenerate")),
            feedback("f5", "commented", comment("this was wrong")),
            feedback("f6", "copied", signal("copy")),
        ],
        at(30),
    )
    .await;
    ingest_feedback(
        &*store,
        other,
        vec![feedback("g1", "down", thumbs(false))],
        at(30),
    )
    .await;

    let matching = async |filter: Filter| {
        let seqs = store.trace_seqs(project, &filter, 100).await.unwrap();
        ids_of(&*store, project, &seqs).await
    };
    let negative = Filter {
        negative_feedback: true,
        ..Filter::default()
    };
    assert_eq!(matching(negative.clone()).await, ["down", "regenerated"]);
    assert_eq!(
        matching(Filter {
            user_id: Some("u1".into()),
            ..negative.clone()
        })
        .await,
        ["down", "regenerated"]
    );
    assert!(
        matching(Filter {
            user_id: Some("u2".into()),
            ..negative.clone()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        matching(Filter {
            user_id: Some("u2".into()),
            ..Filter::default()
        })
        .await,
        ["commented", "restated", "silent"]
    );
    assert_eq!(
        matching(Filter::default()).await.len(),
        6,
        "scoped to the project"
    );
    assert_eq!(
        matching(Filter {
            trace_id: Some("copied".into()),
            ..Filter::default()
        })
        .await,
        ["copied"]
    );
    assert_eq!(
        store
            .trace_seqs(project, &Filter::default(), 2)
            .await
            .unwrap()
            .len(),
        2,
        "the limit is honoured"
    );
    let seqs = store.trace_seqs(other, &negative, 100).await.unwrap();
    assert_eq!(ids_of(&*store, other, &seqs).await, ["down"]);

    // The feedback list takes the same condition.
    let listed = all_feedback(&*store, project, &negative).await;
    assert_eq!(feedback_ids(&listed), ["f1", "f4"]);
}

pub async fn feedback_on_groups_feedback_by_trace_oldest_first(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let other = new_project(&*store, "beta").await;
    ingest_traces(
        &*store,
        project,
        vec![
            asked("t1", 0, "one"),
            asked("t2", 1, "two"),
            asked("t3", 2, "three"),
        ],
        at(3),
    )
    .await;
    ingest_feedback(
        &*store,
        project,
        vec![
            rating_by("later", "t1", "ann", true, 50),
            rating_by("earlier", "t1", "bob", false, 40),
            feedback("on-t3", "t3", comment("fine")),
        ],
        at(60),
    )
    .await;
    ingest_feedback(
        &*store,
        other,
        vec![feedback("elsewhere", "t2", comment("hm"))],
        at(60),
    )
    .await;

    let ids = [
        trace_id("t1"),
        trace_id("t2"),
        trace_id("t3"),
        trace_id("missing"),
    ];
    let grouped = store.feedback_on(project, &ids).await.unwrap();
    let grouped: Vec<(TraceId, Vec<&str>)> = grouped
        .iter()
        .map(|(trace, feedback)| (trace.clone(), feedback_ids(feedback)))
        .collect();
    assert_eq!(
        grouped,
        [
            (trace_id("t1"), vec!["earlier", "later"]),
            (trace_id("t3"), vec!["on-t3"]),
        ]
    );
}
