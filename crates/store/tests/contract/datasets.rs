//! Datasets: names unique per project, items idempotent per trace provenance and append-only,
//! pages in the order of adding, versions that freeze the item set, and the vectors of the
//! items' traces.

use feedloop_core::dataset::{Dataset, DatasetItem, ItemOrigin, ItemProvenance, ItemSource};
use feedloop_core::trace::TracePart;
use feedloop_core::{DatasetItemId, ProjectId, TraceId};
use feedloop_store::embeddings::NewEmbedding;
use feedloop_store::{Outcome, Store, StoreError};
use std::sync::Arc;

use super::fixtures::*;

fn dataset(name: &str) -> Dataset {
    Dataset {
        name: name.to_owned(),
        description: Some("support answers".into()),
        created_at: at(0),
        created_by: Some("ana".into()),
    }
}

/// An item about `trace` (none: an item without provenance) with id `id`.
fn item(id: &str, trace: Option<&str>, ideal: &str) -> DatasetItem {
    DatasetItem {
        id: DatasetItemId::parse("id", id).unwrap(),
        input: format!("question {id}"),
        context: Default::default(),
        ideal_output: Some(ideal.to_owned()),
        rejected_output: Some("a wrong answer".into()),
        source: ItemSource::Correction,
        categories: vec!["incomplete".into()],
        annotations: Vec::new(),
        comments: Vec::new(),
        provenance: ItemProvenance {
            origin: ItemOrigin::Api,
            trace_id: trace.map(trace_id),
            compared_trace_id: None,
            feedback_ids: vec![feedback_id("f1")],
            added_by: "ana".into(),
            added_at: at(5),
        },
    }
}

async fn add(
    store: &dyn Store,
    project: ProjectId,
    name: &str,
    items: &[DatasetItem],
) -> Vec<Outcome> {
    store
        .add_dataset_items(project, name, items)
        .await
        .expect("the items are added")
}

async fn item_ids(
    store: &dyn Store,
    project: ProjectId,
    name: &str,
    up_to: Option<i64>,
) -> Vec<String> {
    store
        .dataset_items(project, name, 0, up_to, 1000)
        .await
        .expect("the items are read")
        .into_iter()
        .map(|stored| stored.item.id.into_string())
        .collect()
}

pub async fn datasets_are_named_uniquely_per_project(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (one, two) = (
        new_project(store, "one").await,
        new_project(store, "two").await,
    );
    store
        .create_dataset(one, &dataset("support"))
        .await
        .unwrap();
    store
        .create_dataset(one, &dataset("billing"))
        .await
        .unwrap();
    // The same name in another project is another dataset.
    store
        .create_dataset(two, &dataset("support"))
        .await
        .unwrap();
    match store.create_dataset(one, &dataset("support")).await {
        Err(StoreError::Conflict { field, .. }) => assert_eq!(field, "name"),
        other => panic!("expected a name conflict, got {other:?}"),
    }
    let listed = store.list_datasets(one).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|d| d.dataset.name.as_str()).collect();
    assert_eq!(names, vec!["billing", "support"]);
    let found = store.dataset(one, "support").await.unwrap().unwrap();
    assert_eq!(found.dataset, dataset("support"));
    assert_eq!((found.num_items, found.latest_version), (0, 0));
    assert_eq!(store.dataset(one, "missing").await.unwrap(), None);
    assert!(matches!(
        store.create_dataset(ProjectId(9_999), &dataset("x")).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn dataset_items_are_idempotent_per_trace_and_id(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let project = new_project(store, "p").await;
    let other = new_project(store, "other").await;
    store.create_dataset(project, &dataset("d")).await.unwrap();
    store.create_dataset(other, &dataset("d")).await.unwrap();
    let first = [
        item("i1", Some("t1"), "ideal 1"),
        item("i2", Some("t2"), "ideal 2"),
        item("i3", None, "ideal 3"),
    ];
    assert_eq!(
        add(store, project, "d", &first).await,
        vec![Outcome::Created; 3]
    );
    // A re-run adds nothing: same ids, and another id for an already added trace.
    let again = [
        item("i1", Some("t1"), "ideal 1"),
        item("other-id", Some("t2"), "something else"),
        item("i3", None, "ideal 3"),
        item("i4", Some("t4"), "ideal 4"),
    ];
    assert_eq!(
        add(store, project, "d", &again).await,
        vec![
            Outcome::Duplicate,
            Outcome::Duplicate,
            Outcome::Duplicate,
            Outcome::Created
        ]
    );
    // The same trace under the same id with newer content (more feedback since): the first stays.
    assert_eq!(
        add(
            store,
            project,
            "d",
            &[item("i1", Some("t1"), "a newer ideal")]
        )
        .await,
        vec![Outcome::Duplicate]
    );
    // Who added it and when is not content: a retry by someone else is a duplicate.
    let mut retried = item("i3", None, "ideal 3");
    retried.provenance.added_by = "bo".into();
    assert_eq!(
        add(store, project, "d", &[retried]).await,
        vec![Outcome::Duplicate]
    );
    // An id taken by other content fails the whole call and adds nothing.
    let conflicting = [
        item("i5", Some("t5"), "ideal 5"),
        item("i3", None, "changed"),
    ];
    match store.add_dataset_items(project, "d", &conflicting).await {
        Err(StoreError::Conflict { field, .. }) => assert_eq!(field, "items[1].id"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        item_ids(store, project, "d", None).await,
        vec!["i1", "i2", "i3", "i4"]
    );
    // Two items of one trace in one call: the second is a duplicate.
    let twice = [item("i6", Some("t6"), "a"), item("i7", Some("t6"), "b")];
    assert_eq!(
        add(store, project, "d", &twice).await,
        vec![Outcome::Created, Outcome::Duplicate]
    );
    // Nothing crosses projects, and a missing dataset is not found.
    assert!(item_ids(store, other, "d", None).await.is_empty());
    assert!(matches!(
        store.add_dataset_items(project, "missing", &first).await,
        Err(StoreError::NotFound {
            what: "dataset",
            ..
        })
    ));
    let stored = store.dataset_items(project, "d", 0, None, 1).await.unwrap();
    assert_eq!(stored[0].item, first[0]);
    assert_eq!(
        store
            .dataset(project, "d")
            .await
            .unwrap()
            .unwrap()
            .num_items,
        5
    );
}

pub async fn dataset_items_page_in_the_order_added(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let project = new_project(store, "p").await;
    store.create_dataset(project, &dataset("d")).await.unwrap();
    let items: Vec<DatasetItem> = (0..25)
        .map(|i| item(&format!("i{i:02}"), Some(&format!("t{i}")), "ideal"))
        .collect();
    for chunk in items.chunks(7) {
        add(store, project, "d", chunk).await;
    }
    let (mut after, mut seen) = (0, Vec::new());
    loop {
        let page = store
            .dataset_items(project, "d", after, None, 10)
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        seen.extend(page.into_iter().map(|stored| stored.item.id.into_string()));
    }
    let expected: Vec<String> = items.iter().map(|i| i.id.as_str().to_owned()).collect();
    assert_eq!(seen, expected);
}

pub async fn a_dataset_version_freezes_the_items_added_before_it(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let project = new_project(store, "p").await;
    store.create_dataset(project, &dataset("d")).await.unwrap();
    add(
        store,
        project,
        "d",
        &[item("i1", Some("t1"), "a"), item("i2", Some("t2"), "b")],
    )
    .await;
    let v1 = store
        .create_dataset_version(project, "d", Some("ana"), Some("first cut"), at(10))
        .await
        .unwrap();
    assert_eq!((v1.number, v1.num_items), (1, 2));
    add(store, project, "d", &[item("i3", Some("t3"), "c")]).await;
    let v2 = store
        .create_dataset_version(project, "d", None, None, at(20))
        .await
        .unwrap();
    assert_eq!((v2.number, v2.num_items), (2, 3));
    add(store, project, "d", &[item("i4", Some("t4"), "d")]).await;
    assert_eq!(
        item_ids(store, project, "d", Some(v1.item_seq)).await,
        vec!["i1", "i2"]
    );
    assert_eq!(
        item_ids(store, project, "d", Some(v2.item_seq)).await,
        vec!["i1", "i2", "i3"]
    );
    assert_eq!(item_ids(store, project, "d", None).await.len(), 4);
    let versions = store.dataset_versions(project, "d").await.unwrap();
    assert_eq!(versions, vec![v1.clone(), v2]);
    assert_eq!(versions[0].note.as_deref(), Some("first cut"));
    assert_eq!(versions[0].created_at, at(10));
    assert_eq!(
        store
            .dataset(project, "d")
            .await
            .unwrap()
            .unwrap()
            .latest_version,
        2
    );
    // An empty dataset's version holds nothing.
    store
        .create_dataset(project, &dataset("empty"))
        .await
        .unwrap();
    let empty = store
        .create_dataset_version(project, "empty", None, None, at(30))
        .await
        .unwrap();
    assert_eq!((empty.number, empty.num_items), (1, 0));
    assert!(
        item_ids(store, project, "empty", Some(empty.item_seq))
            .await
            .is_empty()
    );
    assert!(matches!(
        store
            .create_dataset_version(project, "missing", None, None, at(30))
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn vectors_of_traces_are_read_by_trace_id(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let project = new_project(store, "p").await;
    let other = new_project(store, "other").await;
    let asked = |id: &str| TracePart {
        input: Some(format!("input of {id}")),
        ..trace_part(id, 1)
    };
    ingest_traces(
        store,
        project,
        vec![asked("t1"), asked("t2"), asked("t3")],
        at(1),
    )
    .await;
    ingest_traces(store, other, vec![asked("t1")], at(1)).await;
    let tasks = store
        .claim_embedding_tasks(100, at(2), at(60))
        .await
        .unwrap();
    // t3 is left without a vector.
    let seq_t3 = all_traces(store, project, &Default::default())
        .await
        .into_iter()
        .find(|t| t.trace.id.as_str() == "t3")
        .unwrap()
        .seq;
    let vectors: Vec<NewEmbedding> = tasks
        .iter()
        .filter(|task| task.trace_seq != seq_t3)
        .map(|task| NewEmbedding {
            trace_seq: task.trace_seq,
            generation: task.generation,
            vector: vec![task.trace_seq as f32, task.project.0 as f32],
        })
        .collect();
    store.store_embeddings("m", vectors, at(3)).await.unwrap();
    let ids: Vec<TraceId> = ["t1", "t2", "t3", "missing"]
        .into_iter()
        .map(trace_id)
        .collect();
    let mut found = store.vectors_of_traces(project, "m", &ids).await.unwrap();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    let found_ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(found_ids, vec!["t1", "t2"]);
    // Each is the project's own trace's vector, of the asked model only.
    assert!(found.iter().all(|(_, v)| v[1] == project.0 as f32));
    assert!(
        store
            .vectors_of_traces(project, "another-model", &ids)
            .await
            .unwrap()
            .is_empty()
    );
}
