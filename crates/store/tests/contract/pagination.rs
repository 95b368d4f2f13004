//! Keyset pagination: pages of both lists, in both orders, cover the list exactly once, and a
//! cursor keeps its place while new items arrive.

use feedloop_core::feedback::Feedback;
use feedloop_core::filter::{Cursor, Filter, Order, PageRequest};
use feedloop_core::{ProjectId, Timestamp};
use feedloop_store::Store;
use std::collections::HashSet;
use std::sync::Arc;

use super::fixtures::*;

const PAGE_LIMIT: u32 = 10;

/// Which list a walk reads.
#[derive(Clone, Copy)]
enum List {
    Traces,
    Feedback,
}

/// One page of ids and the cursor of the next.
async fn page(
    store: &dyn Store,
    project: ProjectId,
    list: List,
    order: Order,
    after: Option<Cursor>,
) -> (Vec<String>, Option<Cursor>) {
    let request = PageRequest {
        limit: PAGE_LIMIT,
        after,
        order,
    };
    let filter = Filter::default();
    match list {
        List::Traces => {
            let page = store.list_traces(project, &filter, request).await.unwrap();
            let ids = page
                .items
                .iter()
                .map(|t| t.trace.id.as_str().to_owned())
                .collect();
            (ids, page.next)
        }
        List::Feedback => {
            let page = store
                .list_feedback(project, &filter, request)
                .await
                .unwrap();
            let ids = page
                .items
                .iter()
                .map(|f| f.feedback.id.as_str().to_owned())
                .collect();
            (ids, page.next)
        }
    }
}

/// The whole list in one page, with each item's time.
async fn whole(store: &dyn Store, project: ProjectId, list: List) -> Vec<(String, Timestamp)> {
    match list {
        List::Traces => all_traces(store, project, &Filter::default())
            .await
            .into_iter()
            .map(|t| (t.trace.id.into_string(), t.trace.started_at))
            .collect(),
        List::Feedback => all_feedback(store, project, &Filter::default())
            .await
            .into_iter()
            .map(|f| (f.feedback.id.as_str().to_owned(), f.time()))
            .collect(),
    }
}

/// Walks the list page by page from `after`, returning every page.
async fn walk(
    store: &dyn Store,
    project: ProjectId,
    list: List,
    order: Order,
    mut after: Option<Cursor>,
) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    loop {
        let (ids, next) = page(store, project, list, order, after).await;
        pages.push(ids);
        match next {
            Some(cursor) => after = Some(cursor),
            None => return pages,
        }
        assert!(pages.len() < 100, "the walk ends");
    }
}

/// Checks the 25 items of `list` page by page in both orders, then inserts items around a
/// cursor with `insert` and checks the walk that follows.
async fn check_pages(
    store: &dyn Store,
    project: ProjectId,
    list: List,
    insert_newest_oldest_and_tie: impl AsyncFnOnce(Timestamp),
) {
    let asc: Vec<String> = {
        let items = whole(store, project, list).await;
        assert_eq!(items.len(), 25);
        assert!(
            items.windows(2).all(|w| w[0].1 <= w[1].1),
            "oldest first: {items:?}"
        );
        items.into_iter().map(|(id, _)| id).collect()
    };
    let desc: Vec<String> = asc.iter().rev().cloned().collect();

    for (order, expected) in [(Order::Asc, &asc), (Order::Desc, &desc)] {
        let pages = walk(store, project, list, order, None).await;
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 5], "{order:?}");
        let seen: Vec<String> = pages.concat();
        assert_eq!(
            &seen, expected,
            "{order:?} pages in order, without gaps or duplicates"
        );
    }

    // Newest first: read one page, then items arrive, then read on.
    let (first, cursor) = page(store, project, list, Order::Desc, None).await;
    assert_eq!(first, desc[..10]);
    let cursor = cursor.expect("more pages");
    let cursor_time = Timestamp::from_microsecond(cursor.time_micros).unwrap();
    insert_newest_oldest_and_tie(cursor_time).await;
    let rest: Vec<String> = walk(store, project, list, Order::Desc, Some(cursor))
        .await
        .concat();
    // The newest item sorts before the cursor and so does the one that ties with it (its
    // sequence number is higher): neither shows up. The oldest comes at the end.
    let mut expected: Vec<String> = desc[10..].to_vec();
    expected.push("new-oldest".into());
    assert_eq!(rest, expected);
    let unique: HashSet<&String> = first.iter().chain(&rest).collect();
    assert_eq!(
        unique.len(),
        first.len() + rest.len(),
        "no item is seen twice"
    );
}

pub async fn trace_pages_have_no_gaps_or_duplicates(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    // Runs of four traces share a start time, so the order must break ties, and a page ends
    // inside a run in both orders. They are sent in two batches that interleave.
    let (even, odd): (Vec<i64>, Vec<i64>) = (0..25).partition(|i| i % 2 == 0);
    for indexes in [odd, even] {
        let parts = indexes
            .into_iter()
            .map(|i| trace_part(&format!("t{i:02}"), i / 4))
            .collect();
        ingest_traces(&*store, project, parts, at(100)).await;
    }
    let store_ref = &*store;
    check_pages(store_ref, project, List::Traces, async |tie: Timestamp| {
        let tie_part = feedloop_core::trace::TracePart {
            started_at: Some(tie),
            ..trace_part("new-tie", 0)
        };
        let parts = vec![
            trace_part("new-newest", 1000),
            trace_part("new-oldest", -10),
            tie_part,
        ];
        ingest_traces(store_ref, project, parts, at(200)).await;
    })
    .await;
}

pub async fn feedback_pages_have_no_gaps_or_duplicates(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    // Twenty items with times of their own, runs of four sharing a time; five without, which
    // sort by their arrival among the others. A page ends inside a run in both orders.
    let timed: Vec<Feedback> = (0..20)
        .map(|i| Feedback {
            created_at: Some(at(i / 4)),
            ..feedback(&format!("f{i:02}"), "t1", comment("timed"))
        })
        .collect();
    ingest_feedback(&*store, project, timed, at(100)).await;
    for i in 0..5 {
        let arriving = feedback(&format!("arrival-{i}"), "t1", comment("untimed"));
        ingest_feedback(&*store, project, vec![arriving], at(2 * i)).await;
    }
    let store_ref = &*store;
    check_pages(
        store_ref,
        project,
        List::Feedback,
        async |tie: Timestamp| {
            let items = vec![
                Feedback {
                    created_at: Some(at(1000)),
                    ..feedback("new-newest", "t1", comment("late"))
                },
                Feedback {
                    created_at: Some(at(-10)),
                    ..feedback("new-oldest", "t1", comment("late"))
                },
                Feedback {
                    created_at: Some(tie),
                    ..feedback("new-tie", "t1", comment("late"))
                },
            ];
            ingest_feedback(store_ref, project, items, at(200)).await;
        },
    )
    .await;
}
