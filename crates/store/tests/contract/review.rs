//! Review queues: queue CRUD, enqueue once per queue, the item lifecycle against a small
//! model of the state machine (random operations from fixed seeds, compared after every
//! step), reserving the next item, verdicts, and the look-ups of the review-rules job.

use feedloop_core::filter::Filter;
use feedloop_core::review::{ItemAction, ItemState, Queue, ReviewItem, Rule};
use feedloop_core::{ProjectId, Timestamp};
use feedloop_store::review::{Enqueued, ItemChange, ItemCounts, ItemQuery};
use feedloop_store::{Store, StoreError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::fixtures::*;

/// The lock of the queues of this suite, in seconds.
const LOCK_SECS: i64 = 60;

pub fn queue(name: &str, reviewers_required: u32) -> Queue {
    Queue {
        name: name.to_owned(),
        description: Some("things to look at".into()),
        rules: vec![Rule {
            filter: BTreeMap::from([("negative_feedback".to_owned(), "true".to_owned())]),
            sampling_rate: 1.0,
        }],
        reviewers_required,
        lock_secs: LOCK_SECS as u32,
        role_weights: BTreeMap::new(),
        created_at: at(0),
        updated_at: at(0),
    }
}

/// A project with traces `t1..=tN` and one queue.
async fn setup(store: &dyn Store, num_traces: usize, reviewers_required: u32) -> ProjectId {
    let project = new_project(store, "review").await;
    let traces = (1..=num_traces)
        .map(|i| trace_part(&format!("t{i}"), i as i64))
        .collect();
    ingest_traces(store, project, traces, at(0)).await;
    store
        .create_queue(project, &queue("triage", reviewers_required))
        .await
        .unwrap();
    project
}

fn change(transition: ItemAction, author: &str, action: &str) -> ItemChange {
    ItemChange {
        transition,
        author: author.to_owned(),
        action: action.to_owned(),
        payload: json!({"by": author}),
    }
}

fn is_conflict(error: &StoreError) -> bool {
    matches!(error, StoreError::Conflict { field, .. } if field == "action")
}

pub async fn review_queues_are_created_listed_updated_and_deleted(store: Arc<dyn Store>) {
    let project = setup(store.as_ref(), 1, 1).await;
    let other = new_project(store.as_ref(), "other").await;
    let error = store
        .create_queue(project, &queue("triage", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Conflict { ref field, .. } if field == "name"),
        "{error:?}"
    );
    store
        .create_queue(project, &queue("experts", 3))
        .await
        .unwrap();
    let names: Vec<String> = store
        .list_queues(project)
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert_eq!(names, ["experts", "triage"]);
    assert!(store.list_queues(other).await.unwrap().is_empty());
    assert!(store.queue(other, "triage").await.unwrap().is_none());

    let mut changed = queue("triage", 2);
    changed.description = Some("second opinion".into());
    store.update_queue(project, &changed).await.unwrap();
    assert_eq!(
        store.queue(project, "triage").await.unwrap().unwrap(),
        changed
    );
    assert!(matches!(
        store.update_queue(other, &changed).await,
        Err(StoreError::NotFound { what: "queue", .. })
    ));

    let item = store
        .enqueue(project, "triage", &[(trace_id("t1"), 0.5)], "ann", at(1))
        .await
        .unwrap()[0]
        .item_id();
    store.delete_queue(project, "triage").await.unwrap();
    assert!(store.queue(project, "triage").await.unwrap().is_none());
    assert!(
        store
            .review_item(project, "triage", item)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store.delete_queue(project, "triage").await,
        Err(StoreError::NotFound { what: "queue", .. })
    ));
    // A queue of the same name starts empty.
    store
        .create_queue(project, &queue("triage", 1))
        .await
        .unwrap();
    let query = ItemQuery {
        limit: 10,
        ..Default::default()
    };
    assert!(
        store
            .review_items(project, "triage", &query, at(2))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn a_trace_is_enqueued_once_per_queue(store: Arc<dyn Store>) {
    let project = setup(store.as_ref(), 3, 1).await;
    store
        .create_queue(project, &queue("experts", 1))
        .await
        .unwrap();
    let first = store
        .enqueue(
            project,
            "triage",
            &[(trace_id("t1"), 0.2), (trace_id("t2"), 0.7)],
            "feedloop:review_rules",
            at(5),
        )
        .await
        .unwrap();
    assert!(first.iter().all(|o| matches!(o, Enqueued::Created(_))));
    // Again, with another priority: the same items, unchanged.
    let again = store
        .enqueue(
            project,
            "triage",
            &[(trace_id("t2"), 0.1), (trace_id("t1"), 0.9)],
            "ann",
            at(6),
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        [
            Enqueued::Existing(first[1].item_id()),
            Enqueued::Existing(first[0].item_id())
        ]
    );
    let item = store
        .review_item(project, "triage", first[1].item_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.priority, 0.7);
    assert_eq!(item.state, ItemState::Pending);
    assert_eq!(item.trace_id, trace_id("t2"));
    // Another queue has its own item for the trace.
    let other = store
        .enqueue(project, "experts", &[(trace_id("t2"), 0.5)], "ann", at(7))
        .await
        .unwrap();
    assert!(matches!(other[0], Enqueued::Created(id) if id != first[1].item_id()));
    // An unknown trace anywhere in the batch: not found, and nothing of the batch is written.
    let error = store
        .enqueue(
            project,
            "triage",
            &[(trace_id("t3"), 0.1), (trace_id("nope"), 0.1)],
            "ann",
            at(8),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::NotFound { what: "trace", .. }),
        "{error:?}"
    );
    let query = ItemQuery {
        limit: 10,
        ..Default::default()
    };
    let items = store
        .review_items(project, "triage", &query, at(9))
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
    // Sorted by priority, highest first.
    assert_eq!(items[0].trace_id, trace_id("t2"));
    assert!(matches!(
        store
            .enqueue(project, "missing", &[(trace_id("t1"), 0.1)], "ann", at(9))
            .await,
        Err(StoreError::NotFound { what: "queue", .. })
    ));
    // The history starts with who enqueued it.
    let history = store
        .item_history(project, "triage", first[0].item_id())
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].action, "enqueued");
    assert_eq!(history[0].author, "feedloop:review_rules");
    assert_eq!(history[0].at, at(5));
}

/// The model of one item: what the state machine should say, kept apart from its code.
#[derive(Debug, Clone)]
struct ModelItem {
    id: i64,
    priority: f64,
    state: ItemState,
    holder: Option<(String, i64)>,
    assignee: Option<String>,
    voters: Vec<String>,
}

impl ModelItem {
    fn closed(&self) -> bool {
        matches!(self.state, ItemState::Resolved | ItemState::Dismissed)
    }

    fn live_holder(&self, now: i64) -> Option<&str> {
        match (&self.state, &self.holder) {
            (ItemState::InProgress, Some((who, until))) if now < *until => Some(who),
            _ => None,
        }
    }

    fn state_at(&self, now: i64) -> ItemState {
        match self.state {
            ItemState::InProgress if self.live_holder(now).is_none() => ItemState::Pending,
            state => state,
        }
    }

    fn may_act(&self, who: &str, now: i64) -> bool {
        !self.closed()
            && self.live_holder(now).is_none_or(|holder| holder == who)
            && self.assignee.as_deref().is_none_or(|a| a == who)
    }

    fn reserve(&mut self, who: &str, now: i64) -> bool {
        if !self.may_act(who, now) || self.voters.iter().any(|v| v == who) {
            return false;
        }
        self.state = ItemState::InProgress;
        self.holder = Some((who.to_owned(), now + LOCK_SECS));
        true
    }

    fn apply(&mut self, op: &Op, now: i64) -> bool {
        match op {
            Op::Reserve(who) => self.reserve(who, now),
            Op::Release(who) => {
                if self.closed() || self.live_holder(now) != Some(who.as_str()) {
                    return false;
                }
                self.state = ItemState::Pending;
                self.holder = None;
                true
            }
            Op::Assign(assignee) => {
                if self.closed() {
                    return false;
                }
                self.assignee = assignee.clone();
                true
            }
            Op::Resolve(who) => {
                if !self.may_act(who, now) || self.voters.iter().any(|v| v == who) {
                    return false;
                }
                self.voters.push(who.clone());
                self.holder = None;
                // Two reviewers required: the second verdict always decides.
                self.state = if self.voters.len() >= 2 {
                    ItemState::Resolved
                } else {
                    ItemState::Pending
                };
                true
            }
            Op::Dismiss(who) => {
                if !self.may_act(who, now) {
                    return false;
                }
                self.state = ItemState::Dismissed;
                self.holder = None;
                true
            }
            Op::ReserveNext(_) | Op::Advance(_) | Op::EnqueueAgain => unreachable!(),
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Reserve(String),
    Release(String),
    Assign(Option<String>),
    Resolve(String),
    Dismiss(String),
    ReserveNext(String),
    Advance(i64),
    EnqueueAgain,
}

const REVIEWERS: [&str; 3] = ["ann", "bob", "cy"];

fn random_op(rng: &mut StdRng) -> Op {
    let who = REVIEWERS[rng.random_range(0..REVIEWERS.len())].to_owned();
    match rng.random_range(0..10) {
        0 | 1 => Op::Reserve(who),
        2 => Op::Release(who),
        3 => Op::Assign(rng.random_bool(0.6).then_some(who)),
        4 => Op::Resolve(who),
        5 => Op::Dismiss(who),
        6 | 7 => Op::ReserveNext(who),
        // Steps that often land exactly on a lock's end, where "held" turns into "free".
        8 => Op::Advance([1, LOCK_SECS / 2, LOCK_SECS - 1, LOCK_SECS][rng.random_range(0..4)]),
        _ => Op::EnqueueAgain,
    }
}

fn transition(op: &Op) -> (ItemAction, &str, &'static str) {
    let lock = jiff::SignedDuration::from_secs(LOCK_SECS);
    match op {
        Op::Reserve(who) => (
            ItemAction::Reserve {
                reviewer: who.clone(),
                lock,
            },
            who,
            "reserve",
        ),
        Op::Release(who) => (
            ItemAction::Release {
                reviewer: who.clone(),
            },
            who,
            "release",
        ),
        Op::Assign(assignee) => (
            ItemAction::Assign {
                by: "lead".into(),
                assignee: assignee.clone(),
            },
            "lead",
            "assign",
        ),
        Op::Resolve(who) => (
            ItemAction::Resolve {
                reviewer: who.clone(),
                label: Some(format!("label_{}", who.len())),
            },
            who,
            "resolve",
        ),
        Op::Dismiss(who) => (
            ItemAction::Dismiss {
                reviewer: who.clone(),
                reason: "not a problem".into(),
            },
            who,
            "dismiss",
        ),
        Op::ReserveNext(_) | Op::Advance(_) | Op::EnqueueAgain => unreachable!(),
    }
}

/// The store's item as the model sees it, at `now`.
fn observed(
    item: &ReviewItem,
    now: Timestamp,
) -> (ItemState, Option<String>, Option<String>, usize) {
    (
        item.state_at(now),
        item.holder_at(now).map(str::to_owned),
        item.assignee.clone(),
        item.verdicts.len(),
    )
}

fn expected(item: &ModelItem, now: i64) -> (ItemState, Option<String>, Option<String>, usize) {
    (
        item.state_at(now),
        item.live_holder(now).map(str::to_owned),
        item.assignee.clone(),
        item.voters.len(),
    )
}

pub async fn the_item_lifecycle_follows_the_model(store: Arc<dyn Store>) {
    let project = setup(store.as_ref(), 3, 2).await;
    let priorities = [0.9, 0.5, 0.1];
    let traces: Vec<_> = (1..=3)
        .map(|i| (trace_id(&format!("t{i}")), priorities[i - 1]))
        .collect();
    let ids: Vec<i64> = store
        .enqueue(project, "triage", &traces, "lead", at(10))
        .await
        .unwrap()
        .into_iter()
        .map(Enqueued::item_id)
        .collect();
    let mut model: Vec<ModelItem> = ids
        .iter()
        .zip(priorities)
        .map(|(id, priority)| ModelItem {
            id: *id,
            priority,
            state: ItemState::Pending,
            holder: None,
            assignee: None,
            voters: Vec::new(),
        })
        .collect();
    let mut now = 10;
    let mut rng = StdRng::seed_from_u64(0x5eed_7e57);
    for step in 0..400 {
        let op = random_op(&mut rng);
        let target = rng.random_range(0..model.len());
        match &op {
            Op::Advance(secs) => now += secs,
            Op::EnqueueAgain => {
                let again = store
                    .enqueue(
                        project,
                        "triage",
                        &[traces[target].clone()],
                        "lead",
                        at(now),
                    )
                    .await
                    .unwrap();
                assert_eq!(again, [Enqueued::Existing(model[target].id)], "step {step}");
            }
            Op::ReserveNext(who) => {
                let want = model
                    .iter()
                    .filter(|m| {
                        m.state_at(now) == ItemState::Pending
                            && m.assignee.as_deref().is_none_or(|a| a == who)
                            && !m.voters.contains(who)
                    })
                    .max_by(|a, b| a.priority.total_cmp(&b.priority))
                    .map(|m| m.id);
                let got = store
                    .reserve_next(project, "triage", who, at(now))
                    .await
                    .unwrap()
                    .map(|item| item.id);
                assert_eq!(got, want, "step {step}: {op:?}");
                if let Some(id) = want {
                    let item = model.iter_mut().find(|m| m.id == id).unwrap();
                    assert!(item.reserve(who, now));
                }
            }
            _ => {
                let (action, author, name) = transition(&op);
                let result = store
                    .change_item(
                        project,
                        "triage",
                        model[target].id,
                        &change(action, author, name),
                        at(now),
                    )
                    .await;
                let allowed = model[target].apply(&op, now);
                match result {
                    Ok(_) => assert!(allowed, "step {step}: {op:?} was refused by the model"),
                    Err(error) => {
                        assert!(!allowed, "step {step}: {op:?} failed: {error:?}");
                        assert!(is_conflict(&error), "step {step}: {error:?}");
                    }
                }
            }
        }
        for item in &model {
            let stored = store
                .review_item(project, "triage", item.id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(
                observed(&stored, at(now)),
                expected(item, now),
                "step {step}: {op:?}"
            );
        }
    }
    // The state filter reads the state at the time asked.
    for state in ItemState::ALL {
        let query = ItemQuery {
            state: Some(state),
            limit: 10,
            ..Default::default()
        };
        let mut listed: Vec<i64> = store
            .review_items(project, "triage", &query, at(now))
            .await
            .unwrap()
            .iter()
            .map(|item| item.id)
            .collect();
        listed.sort();
        let want: Vec<i64> = model
            .iter()
            .filter(|m| m.state_at(now) == state)
            .map(|m| m.id)
            .collect();
        assert_eq!(listed, want, "{state:?}");
    }
    // The counts per state read the same states.
    let counts = store
        .review_item_counts(project, "triage", at(now))
        .await
        .unwrap();
    let count = |state: ItemState| model.iter().filter(|m| m.state_at(now) == state).count() as u64;
    assert_eq!(
        counts,
        ItemCounts {
            pending: count(ItemState::Pending),
            in_progress: count(ItemState::InProgress),
            resolved: count(ItemState::Resolved),
            dismissed: count(ItemState::Dismissed),
        }
    );
}

pub async fn an_expired_reservation_is_reservable_again(store: Arc<dyn Store>) {
    let project = setup(store.as_ref(), 1, 1).await;
    let id = store
        .enqueue(project, "triage", &[(trace_id("t1"), 0.5)], "lead", at(10))
        .await
        .unwrap()[0]
        .item_id();
    let held = store
        .reserve_next(project, "triage", "ann", at(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.id, id);
    assert_eq!(held.lock_until, Some(at(20 + LOCK_SECS)));
    assert!(
        store
            .reserve_next(project, "triage", "bob", at(21))
            .await
            .unwrap()
            .is_none()
    );
    let in_progress = ItemQuery {
        state: Some(ItemState::InProgress),
        limit: 10,
        ..Default::default()
    };
    assert_eq!(
        store
            .review_items(project, "triage", &in_progress, at(21))
            .await
            .unwrap()
            .len(),
        1
    );
    // At the lock's end it is pending again, and bob gets it.
    let expiry = 20 + LOCK_SECS;
    assert!(
        store
            .review_items(project, "triage", &in_progress, at(expiry))
            .await
            .unwrap()
            .is_empty()
    );
    let taken = store
        .reserve_next(project, "triage", "bob", at(expiry))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(taken.holder_at(at(expiry)), Some("bob"));
    // ann's late resolve is refused; bob's goes through.
    let resolve = |who: &str| {
        change(
            ItemAction::Resolve {
                reviewer: who.into(),
                label: None,
            },
            who,
            "resolve",
        )
    };
    let error = store
        .change_item(project, "triage", id, &resolve("ann"), at(expiry + 1))
        .await
        .unwrap_err();
    assert!(is_conflict(&error), "{error:?}");
    let (item, event) = store
        .change_item(project, "triage", id, &resolve("bob"), at(expiry + 2))
        .await
        .unwrap();
    assert_eq!(item.state, ItemState::Resolved);
    assert_eq!(event.action, "resolve");
    let history = store.item_history(project, "triage", id).await.unwrap();
    let actions: Vec<(&str, &str)> = history
        .iter()
        .map(|e| (e.action.as_str(), e.author.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("enqueued", "lead"),
            ("reserve", "ann"),
            ("reserve", "bob"),
            ("resolve", "bob")
        ]
    );
    assert_eq!(history[3].payload, json!({"by": "bob"}));
    assert!(matches!(
        store.item_history(project, "triage", id + 1000).await,
        Err(StoreError::NotFound {
            what: "review item",
            ..
        })
    ));
}

pub async fn verdicts_need_labels_and_are_listed_for_agreement(store: Arc<dyn Store>) {
    let project = setup(store.as_ref(), 2, 2).await;
    let ids: Vec<i64> = store
        .enqueue(
            project,
            "triage",
            &[(trace_id("t1"), 0.9), (trace_id("t2"), 0.1)],
            "lead",
            at(1),
        )
        .await
        .unwrap()
        .into_iter()
        .map(Enqueued::item_id)
        .collect();
    let verdict = |who: &str, label: Option<&str>| {
        change(
            ItemAction::Resolve {
                reviewer: who.into(),
                label: label.map(str::to_owned),
            },
            who,
            "resolve",
        )
    };
    let error = store
        .change_item(project, "triage", ids[0], &verdict("ann", None), at(2))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Invalid { ref error, .. } if error.field == "label"),
        "{error:?}"
    );
    store
        .change_item(
            project,
            "triage",
            ids[0],
            &verdict("ann", Some("wrong")),
            at(3),
        )
        .await
        .unwrap();
    // ann judged the first item: reserving gives her the second, bob the first.
    let next = store
        .reserve_next(project, "triage", "ann", at(4))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.id, ids[1]);
    let next = store
        .reserve_next(project, "triage", "bob", at(4))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.id, ids[0]);
    let (item, _) = store
        .change_item(
            project,
            "triage",
            ids[0],
            &verdict("bob", Some("wrong")),
            at(5),
        )
        .await
        .unwrap();
    assert_eq!(item.state, ItemState::Resolved);
    assert_eq!(item.resolution.unwrap().agreement, Some(1.0));
    let verdicts = store.queue_verdicts(project, "triage").await.unwrap();
    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0].0, ids[0]);
    let reviewers: Vec<&str> = verdicts[0].1.iter().map(|v| v.reviewer.as_str()).collect();
    assert_eq!(reviewers, ["ann", "bob"]);
}

pub async fn assigned_items_are_reserved_only_by_their_assignee(store: Arc<dyn Store>) {
    let project = setup(store.as_ref(), 2, 1).await;
    let ids: Vec<i64> = store
        .enqueue(
            project,
            "triage",
            &[(trace_id("t1"), 0.9), (trace_id("t2"), 0.1)],
            "lead",
            at(1),
        )
        .await
        .unwrap()
        .into_iter()
        .map(Enqueued::item_id)
        .collect();
    let assign = change(
        ItemAction::Assign {
            by: "lead".into(),
            assignee: Some("bob".into()),
        },
        "lead",
        "assign",
    );
    store
        .change_item(project, "triage", ids[0], &assign, at(2))
        .await
        .unwrap();
    let by_bob = ItemQuery {
        assignee: Some("bob".into()),
        limit: 10,
        ..Default::default()
    };
    let listed = store
        .review_items(project, "triage", &by_bob, at(2))
        .await
        .unwrap();
    assert_eq!(listed.iter().map(|i| i.id).collect::<Vec<_>>(), [ids[0]]);
    // ann skips bob's item even though it ranks first.
    let next = store
        .reserve_next(project, "triage", "ann", at(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.id, ids[1]);
    let next = store
        .reserve_next(project, "triage", "bob", at(3))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next.id, ids[0]);
    assert!(
        store
            .reserve_next(project, "triage", "cy", at(3))
            .await
            .unwrap()
            .is_none()
    );
    // Priorities change the order; cursors page through it.
    store
        .set_priorities(project, &[(ids[0], 0.05)])
        .await
        .unwrap();
    let first_page = ItemQuery {
        limit: 1,
        ..Default::default()
    };
    let page = store
        .review_items(project, "triage", &first_page, at(4))
        .await
        .unwrap();
    assert_eq!(page[0].id, ids[1]);
    let second = ItemQuery {
        limit: 1,
        after: Some((page[0].priority, page[0].id)),
        ..Default::default()
    };
    let page = store
        .review_items(project, "triage", &second, at(4))
        .await
        .unwrap();
    assert_eq!(page[0].id, ids[0]);
    assert_eq!(page[0].priority, 0.05);
}

pub async fn the_rules_job_lookups_follow_traces_and_filters(store: Arc<dyn Store>) {
    let project = setup(store.as_ref(), 3, 1).await;
    let other = new_project(store.as_ref(), "other").await;
    ingest_traces(store.as_ref(), other, vec![trace_part("t1", 1)], at(0)).await;
    ingest_feedback(
        store.as_ref(),
        project,
        vec![
            feedback("f1", "t1", thumbs(false)),
            feedback("f2", "t2", thumbs(true)),
        ],
        at(1),
    )
    .await;
    let negative = Filter {
        negative_feedback: true,
        ..Default::default()
    };
    let ids = [
        trace_id("t1"),
        trace_id("t2"),
        trace_id("t3"),
        trace_id("missing"),
    ];
    assert_eq!(
        store
            .traces_matching(project, &negative, &ids)
            .await
            .unwrap(),
        [trace_id("t1")]
    );
    assert_eq!(
        store
            .traces_matching(project, &Filter::default(), &ids[1..])
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(
        store
            .traces_matching(other, &negative, &ids)
            .await
            .unwrap()
            .is_empty()
    );
    let traces = store.traces_by_id(project, &ids).await.unwrap();
    assert_eq!(traces.len(), 3);

    let changes = store.trace_changes_since(0, 100).await.unwrap();
    assert_eq!(changes.len(), 4);
    assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(changes.iter().filter(|c| c.project == other).count(), 1);
    let after_two = store
        .trace_changes_since(changes[1].seq, 100)
        .await
        .unwrap();
    assert_eq!(after_two, changes[2..]);

    assert_eq!(
        store.review_progress("review_rules:traces").await.unwrap(),
        0
    );
    store
        .advance_review_progress("review_rules:traces", 7)
        .await
        .unwrap();
    store
        .advance_review_progress("review_rules:traces", 3)
        .await
        .unwrap();
    assert_eq!(
        store.review_progress("review_rules:traces").await.unwrap(),
        7
    );

    let ids_in_queue: Vec<i64> = store
        .enqueue(
            project,
            "triage",
            &[(trace_id("t1"), 0.5), (trace_id("t2"), 0.5)],
            "lead",
            at(2),
        )
        .await
        .unwrap()
        .into_iter()
        .map(Enqueued::item_id)
        .collect();
    let dismiss = change(
        ItemAction::Dismiss {
            reviewer: "ann".into(),
            reason: "fine".into(),
        },
        "ann",
        "dismiss",
    );
    store
        .change_item(project, "triage", ids_in_queue[1], &dismiss, at(3))
        .await
        .unwrap();
    let open = store.open_items_of(project, &ids).await.unwrap();
    assert_eq!(
        open.iter().map(|i| i.id).collect::<Vec<_>>(),
        [ids_in_queue[0]]
    );
    // Priorities of another project's items are left alone.
    store
        .set_priorities(other, &[(ids_in_queue[0], 0.99)])
        .await
        .unwrap();
    let item = store
        .review_item(project, "triage", ids_in_queue[0])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(item.priority, 0.5);
    assert!(
        store
            .review_item(other, "triage", ids_in_queue[0])
            .await
            .unwrap()
            .is_none()
    );
}
