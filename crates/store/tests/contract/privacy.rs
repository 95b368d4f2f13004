//! Privacy: settings, retention (exactly the expired rows go, with their vectors, and nothing
//! else), erasure of one end user, and the removal log that vector indexes follow.

use feedloop_core::feedback::{FeedbackValue, Signal, Source};
use feedloop_core::filter::Filter;
use feedloop_core::pii::PiiMode;
use feedloop_core::privacy::{PrivacySettings, Retention};
use feedloop_core::trace::TracePart;
use feedloop_store::Store;
use feedloop_store::embeddings::NewEmbedding;
use serde_json::Map;
use std::sync::Arc;

use super::fixtures::*;

const DAY: i64 = 86_400;
/// "Now" of the retention cases: day 100 of the suite.
const NOW: i64 = 100 * DAY;

/// A trace started `age` days before [`NOW`].
fn aged(id: &str, age: i64) -> TracePart {
    asked(id, NOW - age * DAY, &format!("question of {id}"))
}

fn automatic_signal(id: &str, trace: &str) -> feedloop_core::feedback::Feedback {
    feedloop_core::feedback::Feedback {
        source: Source::Automatic,
        author: Some("feedloop:signals".to_owned()),
        ..feedback(
            id,
            trace,
            FeedbackValue::Signal(Signal {
                signal_type: "regenerate".to_owned(),
                value: None,
                details: Map::new(),
            }),
        )
    }
}

/// Embeds every queued trace with a vector naming its sequence number.
async fn embed_all(store: &dyn Store, now: i64) {
    let tasks = store
        .claim_embedding_tasks(1000, at(now), at(now + 60))
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
        .store_embeddings("m", vectors, at(now))
        .await
        .expect("vectors are stored");
}

async fn vector_seqs(store: &dyn Store) -> Vec<i64> {
    let mut seqs: Vec<i64> = store
        .embeddings_since("m", 0, 1000)
        .await
        .expect("vectors are read")
        .into_iter()
        .map(|e| e.trace_seq)
        .collect();
    seqs.sort_unstable();
    seqs
}

async fn seq_of(store: &dyn Store, project: feedloop_core::ProjectId, id: &str) -> i64 {
    all_traces(store, project, &Filter::default())
        .await
        .into_iter()
        .find(|t| t.trace.id.as_str() == id)
        .unwrap_or_else(|| panic!("trace {id} is stored"))
        .seq
}

pub async fn privacy_settings_default_to_off_and_round_trip(store: Arc<dyn Store>) {
    let project = new_project(store.as_ref(), "p").await;
    assert_eq!(
        store.privacy_settings(project).await.unwrap(),
        PrivacySettings::default()
    );
    let settings = PrivacySettings {
        pii_mode: PiiMode::Hash,
        retention: Retention {
            trace_days: Some(30),
            feedback_days: None,
            keep_with_feedback_days: Some(90),
        },
    };
    store
        .set_privacy_settings(project, &settings, at(1))
        .await
        .unwrap();
    assert_eq!(store.privacy_settings(project).await.unwrap(), settings);
    let other = new_project(store.as_ref(), "q").await;
    assert_eq!(
        store.privacy_settings(other).await.unwrap(),
        PrivacySettings::default()
    );
    let missing = feedloop_core::ProjectId(999_999);
    assert!(matches!(
        store.set_privacy_settings(missing, &settings, at(1)).await,
        Err(feedloop_store::StoreError::NotFound { .. })
    ));
}

pub async fn retention_deletes_exactly_the_expired_rows(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let project = new_project(store, "p").await;
    let untouched = new_project(store, "q").await;
    let traces = || {
        vec![
            aged("old-plain", 40),
            aged("old-rated", 40),
            aged("old-auto", 40),
            aged("ancient-rated", 95),
            aged("young", 10),
        ]
    };
    let feedback = || {
        vec![
            rating_by("f-old-rated", "old-rated", "u", true, NOW - 40 * DAY),
            automatic_signal("f-old-auto", "old-auto"),
            rating_by("f-ancient", "ancient-rated", "u", false, NOW - 94 * DAY),
            rating_by("f-young-stale", "young", "u", true, NOW - 65 * DAY),
            rating_by("f-young-fresh", "young", "v", true, NOW - 5 * DAY),
        ]
    };
    for p in [project, untouched] {
        ingest_traces(store, p, traces(), at(NOW - DAY)).await;
        ingest_feedback(store, p, feedback(), at(NOW - DAY)).await;
    }
    embed_all(store, NOW - DAY).await;
    let doomed = [
        seq_of(store, project, "old-plain").await,
        seq_of(store, project, "old-auto").await,
        seq_of(store, project, "ancient-rated").await,
    ];
    let retention = Retention {
        trace_days: Some(30),
        feedback_days: Some(60),
        keep_with_feedback_days: Some(90),
    };
    let removals_before = store.vector_removals_since(0, 100).await.unwrap().len();
    // Batches of two: the caller repeats until nothing is left.
    let mut num_traces = 0;
    let mut num_feedback = 0;
    let mut num_batches = 0;
    loop {
        let batch = store
            .delete_expired(project, retention.cutoffs(at(NOW)), 2, at(NOW))
            .await
            .unwrap();
        if batch.is_empty() {
            break;
        }
        num_batches += 1;
        num_traces += batch.num_traces;
        num_feedback += batch.num_feedback;
    }
    assert_eq!((num_traces, num_feedback, num_batches), (3, 1, 2));
    let kept = all_traces(store, project, &Filter::default()).await;
    assert_eq!(trace_ids(&kept), vec!["old-rated", "young"]);
    let kept_feedback = all_feedback(store, project, &Filter::default()).await;
    let mut kept_ids = feedback_ids(&kept_feedback);
    kept_ids.sort_unstable();
    assert_eq!(kept_ids, vec!["f-old-rated", "f-young-fresh"]);
    // The other project keeps everything.
    assert_eq!(
        all_traces(store, untouched, &Filter::default()).await.len(),
        5
    );
    assert_eq!(
        all_feedback(store, untouched, &Filter::default())
            .await
            .len(),
        5
    );
    // The deleted traces' vectors are gone and logged for the indexes, in one removal each.
    let vectors = vector_seqs(store).await;
    assert_eq!(vectors.len(), 7);
    assert!(doomed.iter().all(|seq| !vectors.contains(seq)));
    let removals = store.vector_removals_since(0, 100).await.unwrap();
    assert_eq!(removals.len() - removals_before, 3);
    let mut removed: Vec<i64> = removals.iter().map(|r| r.trace_seq).collect();
    removed.sort_unstable();
    let mut expected = doomed.to_vec();
    expected.sort_unstable();
    assert_eq!(removed, expected);
    assert!(removals.iter().all(|r| r.project == project));
    assert!(removals.windows(2).all(|w| w[0].seq < w[1].seq));
    let last = removals.last().unwrap().seq;
    assert!(
        store
            .vector_removals_since(last, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Deleting the newest trace must not hand its sequence number to the next one: indexes key
/// vectors by it and followers resume after it.
pub async fn sequence_numbers_are_not_reused_after_deletion(store: Arc<dyn Store>) {
    let project = new_project(store.as_ref(), "p").await;
    ingest_traces(
        store.as_ref(),
        project,
        vec![aged("a", 50), aged("b", 40)],
        at(NOW),
    )
    .await;
    ingest_feedback(
        store.as_ref(),
        project,
        vec![rating_by("fb", "b", "u", true, NOW - 40 * DAY)],
        at(NOW),
    )
    .await;
    let newest = seq_of(store.as_ref(), project, "b").await;
    let newest_feedback = stored_feedback(store.as_ref(), project, "fb").await.seq;
    let retention = Retention {
        trace_days: Some(1),
        ..Retention::default()
    };
    store
        .delete_expired(project, retention.cutoffs(at(NOW)), 100, at(NOW))
        .await
        .unwrap();
    ingest_traces(store.as_ref(), project, vec![aged("c", 0)], at(NOW)).await;
    ingest_feedback(
        store.as_ref(),
        project,
        vec![rating_by("fc", "c", "u", true, NOW)],
        at(NOW),
    )
    .await;
    assert!(seq_of(store.as_ref(), project, "c").await > newest);
    assert!(stored_feedback(store.as_ref(), project, "fc").await.seq > newest_feedback);
}

pub async fn erasure_deletes_the_users_traces_sessions_and_feedback_only(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let project = new_project(store, "p").await;
    let by = |id: &str, user: Option<&str>, session: Option<&str>| TracePart {
        user_id: user.map(str::to_owned),
        session_id: session.map(str::to_owned),
        ..aged(id, 1)
    };
    ingest_traces(
        store,
        project,
        vec![
            by("u1-a", Some("u1"), Some("s1")),
            // The same session, sent without a user id: still about u1.
            by("s1-anon", None, Some("s1")),
            by("u1-b", Some("u1"), None),
            by("u2-a", Some("u2"), Some("s2")),
            by("anon", None, None),
        ],
        at(NOW),
    )
    .await;
    ingest_feedback(
        store,
        project,
        vec![
            rating_by("on-u1", "u1-a", "u2", false, NOW),
            rating_by("by-u1-on-u2", "u2-a", "u1", true, NOW),
            rating_by("by-u2-on-u2", "u2-a", "u2", true, NOW),
            feedback("on-anon", "anon", comment("fine")),
        ],
        at(NOW),
    )
    .await;
    embed_all(store, NOW).await;
    let receipt = store
        .erase_user(project, "u1", "er_1", at(NOW), at(NOW + 1))
        .await
        .unwrap();
    assert_eq!(receipt.id, "er_1");
    assert_eq!(receipt.deleted["traces"], 3);
    assert_eq!(receipt.deleted["feedback"], 2);
    assert_eq!(receipt.deleted["embeddings"], 3);
    assert_eq!(receipt.deleted["dataset_items"], 0);
    assert_eq!(
        receipt.user_id_sha256,
        feedloop_store::privacy::user_id_digest("u1")
    );
    let traces = all_traces(store, project, &Filter::default()).await;
    let mut left = trace_ids(&traces);
    left.sort_unstable();
    assert_eq!(left, vec!["anon", "u2-a"]);
    let feedback = all_feedback(store, project, &Filter::default()).await;
    let mut left = feedback_ids(&feedback);
    left.sort_unstable();
    assert_eq!(left, vec!["by-u2-on-u2", "on-anon"]);
    assert_eq!(vector_seqs(store).await.len(), 2);
    assert_eq!(store.vector_removals_since(0, 100).await.unwrap().len(), 3);
    // Erasing again finds nothing, and both receipts are listed, newest first.
    let again = store
        .erase_user(project, "u1", "er_2", at(NOW + 2), at(NOW + 3))
        .await
        .unwrap();
    assert!(again.deleted.values().all(|n| *n == 0), "{again:?}");
    let receipts = store.erasure_receipts(project).await.unwrap();
    let ids: Vec<&str> = receipts.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, vec!["er_2", "er_1"]);
    assert_eq!(receipts[1], receipt);
    let other = new_project(store, "q").await;
    assert!(store.erasure_receipts(other).await.unwrap().is_empty());
}
