//! The change log and job runs that replicas coordinate through.

use feedloop_core::auth::KeyRole;
use feedloop_store::coordination::ChangeTopic;
use feedloop_store::{NewKey, Store};
use std::sync::Arc;

use super::fixtures::*;

fn new_key(name: &str) -> NewKey {
    NewKey {
        name: name.into(),
        role: KeyRole::Read,
        hash: [name.len() as u8; 32],
        prefix: "fl_sk_test".into(),
        allowed_origins: Vec::new(),
    }
}

pub async fn key_and_taxonomy_writes_are_logged_in_order(store: Arc<dyn Store>) {
    let start = store.latest_change().await.unwrap();
    let project = new_project(store.as_ref(), "changes").await;
    let key = store
        .create_key(project, new_key("a"), at(1))
        .await
        .unwrap();
    store
        .add_category(project, "billing", None, at(2))
        .await
        .unwrap();
    store
        .retire_category(project, "billing", at(3))
        .await
        .unwrap();
    store.revoke_key(project, key.id, at(4)).await.unwrap();
    // Revoking again changes nothing and logs nothing.
    store.revoke_key(project, key.id, at(5)).await.unwrap();

    let changes = store.changes_since(start, 100).await.unwrap();
    let topics: Vec<ChangeTopic> = changes.iter().map(|c| c.topic).collect();
    assert_eq!(
        topics,
        [
            ChangeTopic::Keys,
            ChangeTopic::Taxonomy,
            ChangeTopic::Taxonomy,
            ChangeTopic::Keys
        ]
    );
    assert!(changes.iter().all(|c| c.project == project));
    assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(store.latest_change().await.unwrap(), changes[3].seq);
    assert_eq!(
        store
            .changes_since(changes[1].seq, 100)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(store.changes_since(start, 1).await.unwrap().len(), 1);

    // Pruning drops old entries; sequence numbers keep rising afterwards.
    assert_eq!(store.prune_changes(at(3)).await.unwrap(), 2);
    assert_eq!(store.changes_since(start, 100).await.unwrap().len(), 2);
    assert_eq!(store.prune_changes(at(100)).await.unwrap(), 2);
    store
        .create_key(project, new_key("bb"), at(6))
        .await
        .unwrap();
    let after = store.changes_since(start, 100).await.unwrap();
    assert_eq!(after.len(), 1);
    assert!(after[0].seq > changes[3].seq);
}

pub async fn a_job_run_is_claimed_once_and_taken_over_after_its_lease(store: Arc<dyn Store>) {
    let job = "test_job";
    assert!(
        store
            .claim_job_run(job, 7, "replica-a", at(0), at(60))
            .await
            .unwrap()
    );
    assert!(
        !store
            .claim_job_run(job, 7, "replica-b", at(1), at(61))
            .await
            .unwrap()
    );
    // Another period is another run.
    assert!(
        store
            .claim_job_run(job, 8, "replica-b", at(1), at(61))
            .await
            .unwrap()
    );
    // replica-a dies without finishing period 7: once its lease is over, b takes it over.
    assert!(
        !store
            .claim_job_run(job, 7, "replica-b", at(59), at(119))
            .await
            .unwrap()
    );
    assert!(
        store
            .claim_job_run(job, 7, "replica-b", at(61), at(121))
            .await
            .unwrap()
    );
    store
        .finish_job_run(job, 7, "replica-b", "done", at(62))
        .await
        .unwrap();
    // A finished run is never claimed again, even long after.
    assert!(
        !store
            .claim_job_run(job, 7, "replica-c", at(10_000), at(10_060))
            .await
            .unwrap()
    );

    let runs = store.job_runs(job, 10).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].period, runs[0].holder.as_str(), runs[0].finished_at),
        (8, "replica-b", None)
    );
    assert_eq!((runs[1].period, runs[1].holder.as_str()), (7, "replica-b"));
    assert_eq!(
        (runs[1].finished_at, runs[1].outcome.as_deref()),
        (Some(at(62)), Some("done"))
    );
}
