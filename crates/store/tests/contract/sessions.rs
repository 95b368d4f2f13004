//! Sessions: a session's timeline of traces with their feedback, and a trace's neighbours in
//! its session.

use feedloop_core::feedback::Feedback;
use feedloop_core::trace::TracePart;
use feedloop_store::{IngestBatch, Store, StoredTrace};
use std::sync::Arc;

use super::fixtures::*;

fn in_session(id: &str, session: &str, started: i64) -> TracePart {
    TracePart {
        session_id: Some(session.into()),
        ..trace_part(id, started)
    }
}

fn chain_neighbour_ids(
    previous: &Option<StoredTrace>,
    next: &Option<StoredTrace>,
) -> (Option<String>, Option<String>) {
    let id = |t: &Option<StoredTrace>| t.as_ref().map(|t| t.trace.id.as_str().to_owned());
    (id(previous), id(next))
}

pub async fn trace_chain_names_session_neighbours(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    // Sent out of order: neighbours follow start times, not arrival.
    let parts = vec![
        in_session("b", "s1", 20),
        in_session("c", "s1", 30),
        in_session("a", "s1", 10),
        in_session("lonely", "s2", 15),
        trace_part("no-session", 25),
    ];
    ingest_traces(&*store, project, parts, at(100)).await;

    let expected = [
        ("a", (None, Some("b"))),
        ("b", (Some("a"), Some("c"))),
        ("c", (Some("b"), None)),
        ("lonely", (None, None)),
        ("no-session", (None, None)),
    ];
    for (id, (previous, next)) in expected {
        let chain = store
            .trace_chain(project, &trace_id(id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            chain_neighbour_ids(&chain.previous, &chain.next),
            (previous.map(str::to_owned), next.map(str::to_owned)),
            "neighbours of {id}"
        );
    }
    assert_eq!(
        store
            .trace_chain(project, &trace_id("missing"))
            .await
            .unwrap(),
        None
    );
}

pub async fn session_orders_traces_with_their_feedback(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    let traces = vec![
        in_session("b", "s1", 20),
        in_session("c", "s1", 30),
        in_session("a", "s1", 10),
        in_session("d", "s2", 15),
    ];
    let at_time = |id: &str, trace: &str, created: i64| Feedback {
        created_at: Some(at(created)),
        ..feedback(id, trace, comment(id))
    };
    let named_session = |id: &str, trace: &str, session: Option<&str>, created: i64| Feedback {
        session_id: session.map(str::to_owned),
        ..at_time(id, trace, created)
    };
    let items = vec![
        // Sent newest first: each trace's feedback comes back by creation time.
        at_time("a-2", "a", 12),
        at_time("a-1", "a", 11),
        at_time("c-1", "c", 31),
        at_time("d-1", "d", 16),
        named_session("z-1", "z", Some("s1"), 40),
        named_session("y-1", "y", Some("s2"), 41),
        named_session("w-1", "w", None, 42),
        named_session("x-1", "x", Some("s3"), 43),
    ];
    let batch = IngestBatch {
        traces,
        feedback: items,
    };
    store.ingest(project, batch, at(100)).await.unwrap();

    let session = store.session(project, "s1", 10).await.unwrap().unwrap();
    assert_eq!(session.session_id, "s1");
    let timeline: Vec<(&str, Vec<&str>)> = session
        .traces
        .iter()
        .map(|(trace, feedback)| (trace.trace.id.as_str(), feedback_ids(feedback)))
        .collect();
    assert_eq!(
        timeline,
        [("a", vec!["a-1", "a-2"]), ("b", vec![]), ("c", vec!["c-1"])]
    );
    assert!(
        session
            .traces
            .iter()
            .flat_map(|(_, f)| f)
            .all(|f| f.trace_linked)
    );
    assert_eq!(feedback_ids(&session.unlinked_feedback), ["z-1"]);
    assert!(!session.unlinked_feedback[0].trace_linked);

    let first_two = store.session(project, "s1", 2).await.unwrap().unwrap();
    let ids: Vec<&str> = first_two
        .traces
        .iter()
        .map(|(t, _)| t.trace.id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"], "max_traces keeps the earliest");

    let only_unlinked = store.session(project, "s3", 10).await.unwrap().unwrap();
    assert!(only_unlinked.traces.is_empty());
    assert_eq!(feedback_ids(&only_unlinked.unlinked_feedback), ["x-1"]);
    assert_eq!(store.session(project, "nope", 10).await.unwrap(), None);
}
