//! Analytics on a fixed data set with hand-computed expectations: feedback aggregated per
//! bucket and group (superseded feedback left out, satisfaction averaged), negative counts,
//! version traffic, alerts raised once with their webhook event, and the delivery outbox.

use feedloop_core::feedback::{FeedbackValue, Signal};
use feedloop_core::filter::Filter;
use feedloop_core::signals::Satisfaction;
use feedloop_core::stats::Bucket;
use feedloop_core::trace::ModelInfo;
use feedloop_core::{ProjectId, Timestamp};
use feedloop_store::Store;
use feedloop_store::analytics::{
    Dimension, FeedbackCounts, FeedbackQuery, NegativeCounts, NewAlert, VersionKind,
};
use feedloop_store::webhooks::{Attempt, DeliveryStatus, NewEvent, NewWebhook};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::fixtures::*;

const DAY: i64 = 86_400;

fn signal(signal_type: &str) -> FeedbackValue {
    FeedbackValue::Signal(Signal {
        signal_type: signal_type.into(),
        value: None,
        details: Default::default(),
    })
}

fn micros(seconds: i64) -> i64 {
    at(seconds).as_microsecond()
}

/// Four traces over two days (2026-01-01 is a Thursday) and nine feedback items, one of them
/// superseded and one after the queried range. See the expectations in each case.
async fn fixed_data_set(store: &dyn Store) -> ProjectId {
    let project = new_project(store, "analytics").await;
    let model = |name: &str, version: &str| ModelInfo {
        name: Some(name.into()),
        provider: None,
        version: Some(version.into()),
    };
    let mut t1 = trace_part("t1", 3_600);
    t1.model = model("gpt", "1");
    t1.tags = ["web".to_owned()].into();
    t1.metadata = object([("region", json!("eu"))]);
    let mut t2 = trace_part("t2", 7_200);
    t2.model = model("gpt", "2");
    t2.tags = ["web".to_owned(), "beta".to_owned()].into();
    t2.metadata = object([("region", json!(2))]);
    let mut t3 = trace_part("t3", DAY + 3_600);
    t3.model = model("claude", "a");
    let t4 = trace_part("t4", 100);
    ingest_traces(store, project, vec![t1, t2, t3, t4], at(0)).await;

    let item = |id: &str, trace: &str, value: FeedbackValue, seconds: i64| {
        let mut item = feedback(id, trace, value);
        item.created_at = Some(at(seconds));
        item
    };
    let by_u1 = |mut item: feedloop_core::feedback::Feedback| {
        item.author = Some("u1".into());
        item
    };
    let items = vec![
        item("f1", "t1", thumbs(false), 3_700),
        item("f2", "t1", categories(&["too_vague"]), 3_800),
        item("f3", "t2", thumbs(true), 7_300),
        item("f4", "t2", signal("copy"), 7_400),
        by_u1(item("f5", "t3", thumbs(false), DAY + 3_700)),
        item("f7", "t3", signal("regenerate"), DAY + 3_900),
        item("f8", "t4", comment("meh"), 200),
        item("f9", "t1", thumbs(false), 2 * DAY + 100),
    ];
    ingest_feedback(store, project, items, at(10)).await;
    // The same person changes their mind: f6 supersedes f5.
    let f6 = by_u1(item("f6", "t3", thumbs(true), DAY + 3_800));
    ingest_feedback(store, project, vec![f6], at(20)).await;
    let estimate = |score: f64| {
        Some(Satisfaction {
            score,
            evidence_weight: 1.0,
            num_votes: 1,
        })
    };
    store
        .put_satisfaction(
            project,
            &[
                (trace_id("t1"), estimate(-0.5)),
                (trace_id("t2"), estimate(0.5)),
            ],
            at(30),
        )
        .await
        .expect("estimates stored");
    project
}

fn query(bucket: Bucket, group_by: Option<Dimension>, filter: Filter) -> FeedbackQuery {
    FeedbackQuery {
        from: at(0),
        to: at(2 * DAY),
        bucket,
        group_by,
        filter,
        fresh: false,
    }
}

fn counts(map: &[(&str, u64)]) -> BTreeMap<String, u64> {
    map.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

/// (bucket start, group, feedback, negative feedback, traces, negative traces)
type Summary<'a> = (i64, Option<&'a str>, u64, u64, u64, u64);

fn summary(rows: &[FeedbackCounts]) -> Vec<Summary<'_>> {
    rows.iter()
        .map(|r| {
            (
                r.bucket_start,
                r.group.as_deref(),
                r.num_feedback,
                r.num_negative_feedback,
                r.num_traces,
                r.num_negative_traces,
            )
        })
        .collect()
}

pub async fn feedback_aggregates_by_day_and_model_match_hand_counts(store: Arc<dyn Store>) {
    let project = fixed_data_set(store.as_ref()).await;
    let rows = store
        .aggregate_feedback(
            project,
            &query(Bucket::Day, Some(Dimension::Model), Filter::default()),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(&rows),
        [
            (micros(0), None, 1, 0, 1, 0),
            (micros(0), Some("gpt"), 4, 2, 2, 1),
            // f5 is superseded by f6: one rating, the positive one.
            (micros(DAY), Some("claude"), 2, 1, 1, 1),
        ]
    );
    let gpt = &rows[1];
    assert_eq!(
        gpt.by_kind,
        counts(&[("category", 1), ("rating", 2), ("signal", 1)])
    );
    assert_eq!(gpt.by_category, counts(&[("too_vague", 1)]));
    assert_eq!(gpt.by_signal, counts(&[("copy", 1)]));
    assert_eq!((gpt.num_positive_ratings, gpt.num_negative_ratings), (1, 1));
    assert_eq!(gpt.num_satisfaction, 2);
    assert!(gpt.satisfaction_mean.unwrap().abs() < 1e-12);
    let claude = &rows[2];
    assert_eq!(claude.by_kind, counts(&[("rating", 1), ("signal", 1)]));
    assert_eq!(claude.by_signal, counts(&[("regenerate", 1)]));
    assert_eq!(
        (claude.num_positive_ratings, claude.num_negative_ratings),
        (1, 0)
    );
    assert_eq!(
        (claude.num_satisfaction, claude.satisfaction_mean),
        (0, None)
    );
    assert_eq!(rows[0].by_kind, counts(&[("comment", 1)]));
}

pub async fn feedback_aggregates_by_week_tag_metadata_and_filter(store: Arc<dyn Store>) {
    let project = fixed_data_set(store.as_ref()).await;
    // Weeks start on Monday 2025-12-29; a trace with two tags counts in both groups.
    let monday = micros(-3 * DAY);
    let rows = store
        .aggregate_feedback(
            project,
            &query(Bucket::Week, Some(Dimension::Tag), Filter::default()),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(&rows),
        [
            (monday, None, 3, 1, 2, 1),
            (monday, Some("beta"), 2, 0, 1, 0),
            (monday, Some("web"), 4, 2, 2, 1),
        ]
    );
    // A string value as itself, a number as its JSON text.
    let rows = store
        .aggregate_feedback(
            project,
            &query(
                Bucket::Day,
                Some(Dimension::Metadata("region".into())),
                Filter::default(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        summary(&rows),
        [
            (micros(0), None, 1, 0, 1, 0),
            (micros(0), Some("2"), 2, 0, 1, 0),
            (micros(0), Some("eu"), 2, 2, 1, 1),
            (micros(DAY), None, 2, 1, 1, 1),
        ]
    );
    let filter = Filter {
        model_version: Some("1".into()),
        ..Filter::default()
    };
    let rows = store
        .aggregate_feedback(project, &query(Bucket::Hour, None, filter))
        .await
        .unwrap();
    assert_eq!(summary(&rows), [(micros(3_600), None, 2, 2, 1, 1)]);
    // Another project sees none of it.
    let other = new_project(store.as_ref(), "other").await;
    let rows = store
        .aggregate_feedback(other, &query(Bucket::Day, None, Filter::default()))
        .await
        .unwrap();
    assert!(rows.is_empty());
}

/// A small fixed-seed generator (xorshift), so that the changes below are the same every run.
struct Draw(u64);

impl Draw {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Stored buckets never answer differently from the records. The data lies in January 2026,
/// long closed by the database's clock, so every whole bucket is stored on first use; then
/// every kind of change to old records (new feedback, feedback before its trace, restated
/// judgements, a trace's model, tags and metadata, satisfaction set and cleared) is made in
/// turn, and after each one every query answered through the stored buckets equals the same
/// query counted fresh from the records.
pub async fn stored_aggregate_buckets_follow_every_change_to_old_records(store: Arc<dyn Store>) {
    let project = fixed_data_set(store.as_ref()).await;
    let mut queries = vec![
        query(Bucket::Day, Some(Dimension::Model), Filter::default()),
        query(Bucket::Hour, None, Filter::default()),
        query(Bucket::Week, Some(Dimension::Tag), Filter::default()),
        query(
            Bucket::Day,
            Some(Dimension::Metadata("region".into())),
            Filter::default(),
        ),
        query(
            Bucket::Day,
            Some(Dimension::ModelVersion),
            Filter {
                model: Some("gpt".into()),
                ..Default::default()
            },
        ),
        query(
            Bucket::Day,
            None,
            Filter {
                satisfaction_below: Some(0.0),
                ..Default::default()
            },
        ),
        query(
            Bucket::Hour,
            Some(Dimension::Model),
            Filter {
                tag: Some("web".into()),
                ..Default::default()
            },
        ),
    ];
    // A range cut inside buckets: partial ends, whole buckets between.
    let mut shifted = query(Bucket::Day, Some(Dimension::Model), Filter::default());
    shifted.from = at(5_000);
    shifted.to = at(3 * DAY - 7);
    queries.push(shifted);
    let check = |step: String| {
        let store = store.clone();
        let queries = queries.clone();
        async move {
            for query in queries {
                let stored = store.aggregate_feedback(project, &query).await.unwrap();
                let fresh = FeedbackQuery {
                    fresh: true,
                    ..query.clone()
                };
                let fresh = store.aggregate_feedback(project, &fresh).await.unwrap();
                // A mean summed in another order may differ in its last bits.
                let rounded = |rows: Vec<FeedbackCounts>| -> Vec<FeedbackCounts> {
                    rows.into_iter()
                        .map(|mut row| {
                            row.satisfaction_mean =
                                row.satisfaction_mean.map(|m| (m * 1e9).round() / 1e9);
                            row
                        })
                        .collect()
                };
                assert_eq!(rounded(stored), rounded(fresh), "after {step}: {query:?}");
            }
        }
    };
    check("nothing".into()).await;
    assert!(
        store.stored_buckets().await.unwrap() > 0,
        "closed buckets are stored"
    );
    check("nothing, from stored buckets".into()).await;

    let traces = ["t1", "t2", "t3", "t4", "t5", "t6"];
    let mut draw = Draw(0x2545_f491_4f6c_dd1d);
    for step in 0..48 {
        let trace = draw.pick(&traces);
        let seconds = draw.below(3 * DAY as u64) as i64;
        let change = match step % 4 {
            0 => {
                let value = match draw.below(5) {
                    0 => thumbs(true),
                    1 => thumbs(false),
                    2 => categories(&["too_vague"]),
                    3 => signal(draw.pick(&["copy", "regenerate"])),
                    _ => comment("old news"),
                };
                let mut item = feedback(&format!("n{step}"), trace, value);
                item.created_at = Some(at(seconds));
                ingest_feedback(store.as_ref(), project, vec![item], at(100)).await;
                format!("new feedback on {trace} at {seconds} s")
            }
            1 => {
                let up = draw.below(2) == 0;
                let mut item = feedback(&format!("r{step}"), trace, thumbs(up));
                item.author = Some(draw.pick(&["u1", "u2"]).into());
                item.created_at = Some(at(seconds));
                ingest_feedback(store.as_ref(), project, vec![item], at(100)).await;
                format!("a restated thumb on {trace} at {seconds} s")
            }
            2 => {
                let mut part = trace_part(trace, seconds);
                part.model = ModelInfo {
                    name: Some(draw.pick(&["gpt", "claude"]).into()),
                    provider: None,
                    version: Some(draw.pick(&["1", "2", "a"]).into()),
                };
                part.tags = [draw.pick(&["web", "beta", "mobile"]).to_owned()].into();
                part.metadata = object([("region", json!(draw.pick(&["eu", "us"])))]);
                ingest_traces(store.as_ref(), project, vec![part], at(100)).await;
                format!("trace {trace} changed")
            }
            _ => {
                let estimate = (draw.below(3) > 0).then(|| Satisfaction {
                    score: draw.below(201) as f64 / 100.0 - 1.0,
                    evidence_weight: 1.0,
                    num_votes: 1,
                });
                store
                    .put_satisfaction(project, &[(trace_id(trace), estimate)], at(100))
                    .await
                    .unwrap();
                format!("satisfaction of {trace} set to {estimate:?}")
            }
        };
        check(format!("step {step}: {change}")).await;
    }
}

pub async fn negative_counts_and_version_traffic_match_hand_counts(store: Arc<dyn Store>) {
    let project = fixed_data_set(store.as_ref()).await;
    let range = |model: Option<&str>| Filter {
        from: Some(at(0)),
        to: Some(at(2 * DAY)),
        model: model.map(str::to_owned),
        ..Filter::default()
    };
    assert_eq!(
        store.negative_counts(project, &range(None)).await.unwrap(),
        NegativeCounts {
            num_traces: 4,
            num_negative: 2
        }
    );
    assert_eq!(
        store
            .negative_counts(project, &range(Some("gpt")))
            .await
            .unwrap(),
        NegativeCounts {
            num_traces: 2,
            num_negative: 1
        }
    );
    let traffic = store
        .version_traffic(project, VersionKind::Model, at(0), at(2 * DAY))
        .await
        .unwrap();
    let versions: Vec<(&str, &str, Timestamp, u64)> = traffic
        .iter()
        .map(|v| {
            (
                v.name.as_str(),
                v.version.as_str(),
                v.first_seen,
                v.num_traces,
            )
        })
        .collect();
    assert_eq!(
        versions,
        [
            ("claude", "a", at(DAY + 3_600), 1),
            ("gpt", "1", at(3_600), 1),
            ("gpt", "2", at(7_200), 1)
        ]
    );
    assert!(
        store
            .version_traffic(project, VersionKind::Prompt, at(0), at(2 * DAY))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn alerts_are_raised_once_and_queue_their_event_for_subscribers(store: Arc<dyn Store>) {
    let project = new_project(store.as_ref(), "alerts").await;
    let subscribed = store
        .create_webhook(
            project,
            &NewWebhook {
                url: "http://127.0.0.1:9/hook".into(),
                secret: "whsec_0123456789abcdef".into(),
                event_types: vec!["regression".into()],
                description: None,
            },
            at(0),
        )
        .await
        .unwrap();
    store
        .create_webhook(
            project,
            &NewWebhook {
                url: "http://127.0.0.1:9/other".into(),
                secret: "whsec_0123456789abcdef".into(),
                event_types: vec!["negative_spike".into()],
                description: Some("spikes only".into()),
            },
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(store.list_webhooks(project).await.unwrap().len(), 2);
    let alert = NewAlert {
        kind: "regression".into(),
        dedupe_key: "regression:model:gpt:1->2".into(),
        message: "worse".into(),
        evidence: json!({"p_value": 0.001}),
    };
    let event = |id: &str| NewEvent {
        event_id: id.into(),
        event_type: "regression".into(),
        payload: format!("{{\"id\":\"{id}\"}}"),
    };
    let raised = store
        .raise_alert(project, &alert, &event("evt_1"), at(100))
        .await
        .unwrap()
        .expect("a new alert");
    assert_eq!(raised.evidence, json!({"p_value": 0.001}));
    let again = store
        .raise_alert(project, &alert, &event("evt_2"), at(200))
        .await
        .unwrap();
    assert!(again.is_none(), "the same condition is alerted once");
    let alerts = store.list_alerts(project, 10).await.unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!((alerts[0].created_at, alerts[0].id), (at(100), raised.id));

    // Only the subscribed endpoint got a delivery, due at once.
    let due = store
        .claim_due_deliveries(at(100), at(160), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (
            due[0].webhook_id,
            due[0].event_id.as_str(),
            due[0].payload.as_str()
        ),
        (subscribed.id, "evt_1", "{\"id\":\"evt_1\"}")
    );
    // Claimed: a second run does not send it again until the lease ends.
    assert!(
        store
            .claim_due_deliveries(at(100), at(160), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let failed = Attempt {
        at: at(100),
        status_code: Some(500),
        error: Some("the receiver answered 500".into()),
        latency_ms: 3,
    };
    store
        .record_attempt(due[0].id, &failed, DeliveryStatus::Pending, Some(at(130)))
        .await
        .unwrap();
    // Recording the attempt replaced the lease with the retry time.
    let claim = |now: i64| store.claim_due_deliveries(at(now), at(now + 60), 10);
    assert!(claim(129).await.unwrap().is_empty());
    let retry = claim(130).await.unwrap();
    assert_eq!(retry[0].num_attempts, 1);
    let delivered = Attempt {
        at: at(130),
        status_code: Some(200),
        error: None,
        latency_ms: 2,
    };
    store
        .record_attempt(retry[0].id, &delivered, DeliveryStatus::Delivered, None)
        .await
        .unwrap();
    assert!(claim(10_000).await.unwrap().is_empty());
    let log = store.list_deliveries(project, None, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, DeliveryStatus::Delivered);
    assert_eq!(log[0].attempts, [failed, delivered]);
    let totals = store.delivery_totals().await.unwrap();
    assert_eq!((totals.delivered, totals.failed_attempts), (1, 1));

    // A plain emit with nobody subscribed queues nothing; deleting an endpoint stops it.
    let none = NewEvent {
        event_id: "evt_3".into(),
        event_type: "lesson_proposed".into(),
        payload: "{}".into(),
    };
    assert_eq!(store.emit_event(project, &none, at(300)).await.unwrap(), 0);
    store
        .delete_webhook(project, subscribed.id, at(400))
        .await
        .unwrap();
    assert_eq!(store.list_webhooks(project).await.unwrap().len(), 1);
    let other = new_project(store.as_ref(), "other").await;
    assert!(
        store
            .list_deliveries(other, None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .delete_webhook(other, subscribed.id + 1, at(400))
            .await
            .is_err()
    );
}
