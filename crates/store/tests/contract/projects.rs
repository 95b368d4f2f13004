//! Projects, their keys, their isolation from each other, and their counts.

use feedloop_core::auth::KeyRole;
use feedloop_core::feedback::FeedbackValue;
use feedloop_core::filter::Filter;
use feedloop_core::taxonomy::DEFAULT_CATEGORIES;
use feedloop_core::trace::{SpanPart, TracePart};
use feedloop_store::{IngestBatch, NewKey, Outcome, Stats, Store, StoreError};
use std::collections::BTreeMap;
use std::sync::Arc;

use super::fixtures::*;

pub async fn create_project_seeds_default_taxonomy(store: Arc<dyn Store>) {
    let project = store.create_project("alpha", at(1)).await.unwrap();
    assert_eq!(project.name, "alpha");
    assert_eq!(project.created_at, at(1));
    assert_eq!(
        store.project(project.id).await.unwrap(),
        Some(project.clone())
    );
    assert_eq!(
        store.project_by_name("alpha").await.unwrap(),
        Some(project.clone())
    );
    assert_eq!(store.project_by_name("beta").await.unwrap(), None);

    let taxonomy = store.taxonomy(project.id).await.unwrap();
    let mut stored: Vec<(&str, Option<&str>)> = taxonomy
        .iter()
        .map(|c| (c.name.as_str(), c.description.as_deref()))
        .collect();
    stored.sort();
    let mut expected: Vec<(&str, Option<&str>)> = DEFAULT_CATEGORIES
        .iter()
        .map(|(name, description)| (*name, Some(*description)))
        .collect();
    expected.sort();
    assert_eq!(stored, expected);
    assert!(taxonomy.iter().all(|c| c.is_active()));

    let duplicate = store.create_project("alpha", at(2)).await.unwrap_err();
    assert!(
        matches!(&duplicate, StoreError::Conflict { field, .. } if field == "name"),
        "{duplicate:?}"
    );
    let other = store.create_project("beta", at(3)).await.unwrap();
    assert_ne!(other.id, project.id);
    assert_eq!(store.list_projects().await.unwrap(), vec![project, other]);
}

fn new_key(name: &str, byte: u8, role: KeyRole) -> NewKey {
    NewKey {
        name: name.to_owned(),
        role,
        hash: [byte; 32],
        prefix: format!("fl_sk_{byte:04}"),
        allowed_origins: Vec::new(),
    }
}

pub async fn keys_are_found_by_hash_listed_and_revoked(store: Arc<dyn Store>) {
    let alpha = new_project(&*store, "alpha").await;
    let beta = new_project(&*store, "beta").await;

    let ingest_key = store
        .create_key(alpha, new_key("ci", 1, KeyRole::Ingest), at(10))
        .await
        .unwrap();
    assert_eq!(ingest_key.project_id, alpha);
    assert_eq!(ingest_key.name, "ci");
    assert_eq!(ingest_key.role, KeyRole::Ingest);
    assert_eq!(ingest_key.prefix, "fl_sk_0001");
    assert_eq!(ingest_key.created_at, at(10));
    assert_eq!(ingest_key.revoked_at, None);
    let admin_key = store
        .create_key(alpha, new_key("ops", 2, KeyRole::Admin), at(11))
        .await
        .unwrap();
    let beta_key = store
        .create_key(beta, new_key("reader", 3, KeyRole::Read), at(12))
        .await
        .unwrap();

    assert_eq!(
        store.key_by_hash([1; 32]).await.unwrap(),
        Some(ingest_key.clone())
    );
    assert_eq!(
        store.key_by_hash([3; 32]).await.unwrap(),
        Some(beta_key.clone())
    );
    assert_eq!(store.key_by_hash([9; 32]).await.unwrap(), None);
    assert_eq!(
        store.list_keys(alpha).await.unwrap(),
        vec![ingest_key.clone(), admin_key.clone()]
    );
    assert_eq!(store.list_keys(beta).await.unwrap(), vec![beta_key.clone()]);

    let revoked = store
        .revoke_key(alpha, ingest_key.id, at(20))
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(at(20)));
    assert_eq!(revoked.id, ingest_key.id);
    // Revoking twice is not an error, and the key stays revoked since the first time.
    let again = store
        .revoke_key(alpha, ingest_key.id, at(30))
        .await
        .unwrap();
    assert_eq!(again.revoked_at, Some(at(20)));
    let found = store.key_by_hash([1; 32]).await.unwrap().unwrap();
    assert_eq!(
        found.revoked_at,
        Some(at(20)),
        "a revoked key is still found by its hash"
    );

    // A project cannot revoke another project's key, nor a key that does not exist.
    let foreign = store
        .revoke_key(alpha, beta_key.id, at(40))
        .await
        .unwrap_err();
    assert!(
        matches!(foreign, StoreError::NotFound { .. }),
        "{foreign:?}"
    );
    assert_eq!(
        store
            .key_by_hash([3; 32])
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        None
    );
    let missing = store.revoke_key(alpha, 999_999, at(40)).await.unwrap_err();
    assert!(
        matches!(missing, StoreError::NotFound { .. }),
        "{missing:?}"
    );
}

/// Writes one of everything to `alpha`, then checks that `beta` sees none of it and that the
/// same ids in `beta` start afresh.
pub async fn projects_isolate_their_data(store: Arc<dyn Store>) {
    let alpha = new_project(&*store, "alpha").await;
    let beta = new_project(&*store, "beta").await;
    store
        .add_category(alpha, "alpha_only", None, at(1))
        .await
        .unwrap();
    store
        .create_key(alpha, new_key("ci", 1, KeyRole::Ingest), at(1))
        .await
        .unwrap();

    let trace = TracePart {
        session_id: Some("s1".into()),
        output: Some("hello world".into()),
        tags: ["beta".to_owned()].into(),
        spans: vec![(span_id("sp1"), SpanPart::default())],
        ..trace_part("t1", 10)
    };
    let rating = rating_by("fb1", "t1", "alice", true, 11);
    let orphan = feedback("fb2", "only-in-beta", comment("where is it?"));
    let batch = IngestBatch {
        traces: vec![trace],
        feedback: vec![rating.clone(), orphan],
    };
    store.ingest(alpha, batch, at(12)).await.unwrap();

    assert_eq!(
        store.trace_chain(beta, &trace_id("t1")).await.unwrap(),
        None
    );
    assert!(
        all_traces(&*store, beta, &Filter::default())
            .await
            .is_empty()
    );
    assert!(
        all_feedback(&*store, beta, &Filter::default())
            .await
            .is_empty()
    );
    assert_eq!(store.session(beta, "s1", 10).await.unwrap(), None);
    assert_eq!(store.stats(beta).await.unwrap(), Stats::default());
    assert!(store.list_keys(beta).await.unwrap().is_empty());
    let beta_taxonomy = store.taxonomy(beta).await.unwrap();
    assert_eq!(beta_taxonomy.len(), DEFAULT_CATEGORIES.len());
    let foreign_category = store
        .ingest(
            beta,
            IngestBatch {
                traces: vec![],
                feedback: vec![feedback("c1", "t1", categories(&["alpha_only"]))],
            },
            at(13),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(foreign_category, StoreError::UnknownCategory { .. }),
        "{foreign_category:?}"
    );

    // The same ids in beta are new there: no merge, no conflict, no supersession across.
    let beta_trace = TracePart {
        output: Some("another world".into()),
        ..trace_part("t1", 20)
    };
    let beta_comment = feedback(
        "fb1",
        "t1",
        FeedbackValue::Comment("same id, other content".into()),
    );
    let beta_later_rating = rating_by("fb3", "t1", "alice", false, 21);
    let receipt = store
        .ingest(
            beta,
            IngestBatch {
                traces: vec![beta_trace, trace_part("only-in-beta", 22)],
                feedback: vec![beta_comment, beta_later_rating],
            },
            at(23),
        )
        .await
        .unwrap();
    assert_eq!(receipt.traces, vec![Outcome::Created, Outcome::Created]);
    assert_eq!(receipt.feedback, vec![Outcome::Created, Outcome::Created]);

    let alpha_chain = store
        .trace_chain(alpha, &trace_id("t1"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        alpha_chain.trace.trace.output.as_deref(),
        Some("hello world")
    );
    assert_eq!(alpha_chain.trace.trace.started_at, at(10));
    assert_eq!(alpha_chain.trace.spans.len(), 1);
    assert_eq!(alpha_chain.feedback.len(), 1);
    assert_eq!(alpha_chain.feedback[0].feedback, rating);
    assert_eq!(alpha_chain.feedback[0].superseded_by, None);
    let alpha_orphan = stored_feedback(&*store, alpha, "fb2").await;
    assert!(
        !alpha_orphan.trace_linked,
        "beta's trace does not link alpha's feedback"
    );

    let beta_chain = store
        .trace_chain(beta, &trace_id("t1"))
        .await
        .unwrap()
        .unwrap();
    assert!(beta_chain.trace.spans.is_empty());
    // By time: beta's fb1 has no time of its own and arrived at 23, after fb3 was made.
    assert_eq!(feedback_ids(&beta_chain.feedback), ["fb3", "fb1"]);
    assert_eq!(store.stats(alpha).await.unwrap().traces, 1);
    assert_eq!(store.stats(beta).await.unwrap().traces, 2);
    assert!(store.session(beta, "s1", 10).await.unwrap().is_none());
}

pub async fn stats_count_what_is_stored(store: Arc<dyn Store>) {
    let project = new_project(&*store, "alpha").await;
    assert_eq!(store.stats(project).await.unwrap(), Stats::default());

    let with_two_spans = TracePart {
        spans: vec![
            (span_id("a"), SpanPart::default()),
            (span_id("b"), SpanPart::default()),
        ],
        ..trace_part("t1", 1)
    };
    let with_one_span = TracePart {
        spans: vec![(span_id("a"), SpanPart::default())],
        ..trace_part("t2", 2)
    };
    // The second part of t1 adds no trace and re-sends span `a`, which adds no span.
    let t1_again = TracePart {
        spans: vec![(span_id("a"), SpanPart::default())],
        ..trace_part("t1", 1)
    };
    let items = vec![
        rating_by("r1", "t1", "alice", true, 3),
        rating_by("r2", "t2", "bob", false, 4),
        feedback("c1", "t1", comment("nice")),
        feedback(
            "s1",
            "not-yet",
            FeedbackValue::Signal(feedloop_core::feedback::Signal {
                signal_type: "copy".into(),
                value: None,
                details: Default::default(),
            }),
        ),
    ];
    let batch = IngestBatch {
        traces: vec![with_two_spans, with_one_span, t1_again],
        feedback: items.clone(),
    };
    store.ingest(project, batch, at(5)).await.unwrap();
    // A retry adds nothing; a rejected batch adds nothing.
    ingest_feedback(&*store, project, items[..1].to_vec(), at(6)).await;
    let rejected = IngestBatch {
        traces: vec![trace_part("t3", 7)],
        feedback: vec![feedback("c2", "t3", categories(&["no_such_category"]))],
    };
    store.ingest(project, rejected, at(7)).await.unwrap_err();

    let expected = Stats {
        traces: 2,
        spans: 3,
        feedback: 4,
        feedback_by_kind: BTreeMap::from([
            ("comment".to_owned(), 1),
            ("rating".to_owned(), 2),
            ("signal".to_owned(), 1),
        ]),
    };
    assert_eq!(store.stats(project).await.unwrap(), expected);
}
