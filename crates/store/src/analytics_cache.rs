//! The bucket cache of feedback aggregations, shared by both backends.
//!
//! A trend over thirty days of a big project reads a million feedback rows joined to their
//! traces: seconds, on either backend. But a bucket that ended hours ago rarely changes, so each
//! *whole, closed* bucket of an aggregation is stored once computed, keyed by the project, the
//! bucket's start and the query (width, grouping, filter: [`Plan::key`]); a repeated or shifted
//! query reads the stored buckets and computes only the rest: the partial buckets at the range's
//! ends, the open ones, and any that were invalidated.
//!
//! **Staying true.** Database triggers (migration 10 of each backend) delete the buckets around
//! any write that touches *old* feedback — created over an hour ago by the database's clock —
//! or the trace, tags or satisfaction such feedback is counted with. Every write path is
//! covered, present or future, since the triggers sit on the tables. A bucket is stored only if
//! it ended over two hours before, by the same clock: a write the triggers skipped touched
//! feedback under an hour old, so it committed at least an hour before any bucket holding that
//! feedback could be stored, and the computation saw it.
//!
//! **Races.** A query computes from a snapshot; a write that invalidates between that snapshot
//! and the store of the result would be lost. SQLite bumps a per-project epoch in the same
//! trigger, reads it in the computation's snapshot and stores only if it has not moved. On
//! PostgreSQL the triggers take the project's analytics lock shared; a query stores only under
//! that lock taken exclusively (and only if it gets it at once, so queries never wait on
//! writes), which it holds from before its computation until the store commits.
//!
//! Filters that look at *other* feedback of a trace (`negative_feedback`) are not cached: a new
//! item could change whether an old one matches.

use feedloop_core::Timestamp;
use sha2::Digest;
use std::collections::BTreeMap;
use std::ops::Range;

use crate::analytics::{FeedbackCounts, FeedbackQuery};

/// A bucket is stored only once it ended this long before (by the database's clock); the
/// triggers treat feedback older than half of it as old. Both numbers are in the migrations.
pub(crate) const CLOSED_AFTER_MICROS: i64 = 2 * 3_600_000_000;

/// A computed whole bucket to store: its range and its rows as JSON.
#[derive(Debug, Clone)]
pub(crate) struct NewBucket {
    pub start: i64,
    pub end: i64,
    pub counts: String,
}

/// How one cacheable query is answered.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The query's cache key.
    pub key: String,
    /// The whole buckets inside the query's range: from the start of the first to the end of
    /// the last.
    pub whole: Range<i64>,
    query: FeedbackQuery,
}

/// What to compute from the records, given the stored buckets.
#[derive(Debug, Clone)]
pub(crate) struct Work {
    /// Sub-queries over disjoint ranges, to run on the records.
    pub raw: Vec<FeedbackQuery>,
    /// The whole buckets `raw` recomputes, stored ones included.
    pub recomputed: Range<i64>,
    /// Of them, those closed long enough to be stored: the only ones worth a write (the open
    /// bucket of a live dashboard is recomputed every time and never stored).
    pub storable: Range<i64>,
    cached: BTreeMap<i64, Vec<FeedbackCounts>>,
}

impl Plan {
    /// The plan of `query`, or `None` when it cannot use the cache: it asks for fresh counts,
    /// its filter depends on other feedback of a trace, or its range holds no whole bucket.
    pub fn new(query: &FeedbackQuery) -> Option<Self> {
        if query.fresh || query.filter.negative_feedback {
            return None;
        }
        let (from, to) = (query.from.as_microsecond(), query.to.as_microsecond());
        let bucket = query.bucket;
        let first = bucket.start_of(from);
        let first = if first < from {
            first + bucket.width_micros()
        } else {
            first
        };
        let end = bucket.start_of(to);
        if first >= end {
            return None;
        }
        Some(Self {
            key: key(query),
            whole: first..end,
            query: query.clone(),
        })
    }

    /// The work left once the stored buckets `cached` (by start, within [`Plan::whole`]) are
    /// known: the partial buckets at both ends, and one range from the first missing whole
    /// bucket to the last (stored buckets inside it are recomputed rather than splitting the
    /// range into many small queries). Buckets ending after `closed_before` (see
    /// [`closed_before`]) are not storable.
    pub fn work(&self, cached: BTreeMap<i64, Vec<FeedbackCounts>>, closed_before: i64) -> Work {
        let width = self.query.bucket.width_micros();
        let mut missing = (self.whole.start..self.whole.end)
            .step_by(width as usize)
            .filter(|start| !cached.contains_key(start));
        let first_missing = missing.next();
        let recomputed = match first_missing {
            Some(first) => first..missing.last().unwrap_or(first) + width,
            None => self.whole.start..self.whole.start,
        };
        let closed = (closed_before - recomputed.start)
            .div_euclid(width)
            .clamp(0, (recomputed.end - recomputed.start) / width);
        let storable = recomputed.start..recomputed.start + closed * width;
        let (from, to) = (
            self.query.from.as_microsecond(),
            self.query.to.as_microsecond(),
        );
        let raw = [
            from..self.whole.start,
            recomputed.clone(),
            self.whole.end..to,
        ]
        .into_iter()
        .filter(|range| !range.is_empty())
        .map(|range| self.sub_query(range))
        .collect();
        Work {
            raw,
            recomputed,
            storable,
            cached,
        }
    }

    /// Joins the stored buckets and the rows of the work's sub-queries into the answer (by
    /// bucket, then group), and returns the storable recomputed buckets to store.
    pub fn assemble(
        &self,
        work: Work,
        computed: Vec<FeedbackCounts>,
    ) -> crate::Result<(Vec<FeedbackCounts>, Vec<NewBucket>)> {
        let width = self.query.bucket.width_micros();
        let mut storable: BTreeMap<i64, Vec<FeedbackCounts>> = work
            .storable
            .clone()
            .step_by(width as usize)
            .map(|start| (start, Vec::new()))
            .collect();
        let mut answer = Vec::with_capacity(computed.len());
        for counts in computed {
            if let Some(bucket) = storable.get_mut(&counts.bucket_start) {
                bucket.push(counts.clone());
            }
            answer.push(counts);
        }
        for (start, rows) in work.cached {
            if !work.recomputed.contains(&start) {
                answer.extend(rows);
            }
        }
        answer.sort_by(|a, b| (a.bucket_start, &a.group).cmp(&(b.bucket_start, &b.group)));
        let fresh = storable
            .into_iter()
            .map(|(start, rows)| {
                Ok(NewBucket {
                    start,
                    end: start + width,
                    counts: serde_json::to_string(&rows)?,
                })
            })
            .collect::<crate::Result<_>>()?;
        Ok((answer, fresh))
    }

    fn sub_query(&self, range: Range<i64>) -> FeedbackQuery {
        let at = |micros: i64| Timestamp::from_microsecond(micros).unwrap_or(Timestamp::MAX);
        FeedbackQuery {
            from: at(range.start),
            to: at(range.end),
            ..self.query.clone()
        }
    }
}

/// The end of the last bucket that may be stored now: [`CLOSED_AFTER_MICROS`] before this
/// process's clock. For SQLite that is the database's clock; PostgreSQL's insert checks the
/// server's own as well, so there this only spares work whose result could not be kept.
pub(crate) fn closed_before() -> i64 {
    Timestamp::now().as_microsecond() - CLOSED_AFTER_MICROS
}

/// Parses a stored bucket's rows.
pub(crate) fn parse_counts(json: &str) -> crate::Result<Vec<FeedbackCounts>> {
    Ok(serde_json::from_str(json)?)
}

/// The cache key of a query: a digest of its width, grouping and filter (its time range
/// aside). The `Debug` form of the filter names every field, so a new filter field changes the
/// key rather than being ignored by it.
fn key(query: &FeedbackQuery) -> String {
    let filter = feedloop_core::filter::Filter {
        from: None,
        to: None,
        ..query.filter.clone()
    };
    let text = format!(
        "v1 {} {} {filter:?}",
        query.bucket.as_str(),
        query
            .group_by
            .as_ref()
            .map_or_else(|| "-".to_owned(), |dimension| dimension.name()),
    );
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::Dimension;
    use feedloop_core::filter::Filter;
    use feedloop_core::stats::Bucket;

    const DAY: i64 = 86_400_000_000;
    /// 2026-01-01T00:00:00Z, a day boundary.
    const JAN_1: i64 = 1_767_225_600_000_000;

    fn query(from: i64, to: i64) -> FeedbackQuery {
        FeedbackQuery {
            from: Timestamp::from_microsecond(from).unwrap(),
            to: Timestamp::from_microsecond(to).unwrap(),
            bucket: Bucket::Day,
            group_by: Some(Dimension::ModelVersion),
            filter: Filter::default(),
            fresh: false,
        }
    }

    fn counts(bucket_start: i64, group: &str) -> FeedbackCounts {
        FeedbackCounts {
            bucket_start,
            group: Some(group.into()),
            num_feedback: 1,
            ..Default::default()
        }
    }

    fn ranges(work: &Work) -> Vec<Range<i64>> {
        work.raw
            .iter()
            .map(|q| q.from.as_microsecond()..q.to.as_microsecond())
            .collect()
    }

    #[test]
    fn whole_buckets_are_inside_the_range() {
        let plan = Plan::new(&query(JAN_1 + 5, JAN_1 + 3 * DAY + 7)).unwrap();
        assert_eq!(plan.whole, JAN_1 + DAY..JAN_1 + 3 * DAY);
        let aligned = Plan::new(&query(JAN_1, JAN_1 + 2 * DAY)).unwrap();
        assert_eq!(aligned.whole, JAN_1..JAN_1 + 2 * DAY);
        assert!(Plan::new(&query(JAN_1 + 5, JAN_1 + DAY + 7)).is_none());
        let mut negative = query(JAN_1, JAN_1 + 2 * DAY);
        negative.filter.negative_feedback = true;
        assert!(Plan::new(&negative).is_none());
        let mut fresh = query(JAN_1, JAN_1 + 2 * DAY);
        fresh.fresh = true;
        assert!(Plan::new(&fresh).is_none());
    }

    #[test]
    fn only_missing_buckets_and_partial_ends_are_computed() {
        let plan = Plan::new(&query(JAN_1 - 5, JAN_1 + 5 * DAY + 9)).unwrap();
        let cached: BTreeMap<_, _> = [0, 1, 3, 4]
            .map(|d| (JAN_1 + d * DAY, vec![counts(JAN_1 + d * DAY, "cached")]))
            .into();
        let work = plan.work(cached, i64::MAX);
        assert_eq!(
            ranges(&work),
            [
                JAN_1 - 5..JAN_1,
                JAN_1 + 2 * DAY..JAN_1 + 3 * DAY,
                JAN_1 + 5 * DAY..JAN_1 + 5 * DAY + 9
            ]
        );
        let computed = vec![
            counts(JAN_1 - DAY, "head"),
            counts(JAN_1 + 2 * DAY, "fresh"),
            counts(JAN_1 + 5 * DAY, "tail"),
        ];
        let (answer, fresh) = plan.assemble(work, computed).unwrap();
        let groups: Vec<_> = answer.iter().map(|c| c.group.clone().unwrap()).collect();
        assert_eq!(
            groups,
            [
                "head", "cached", "cached", "fresh", "cached", "cached", "tail"
            ]
        );
        assert_eq!(fresh.len(), 1);
        assert_eq!(fresh[0].start, JAN_1 + 2 * DAY);
        assert_eq!(
            parse_counts(&fresh[0].counts).unwrap(),
            [counts(JAN_1 + 2 * DAY, "fresh")]
        );
    }

    #[test]
    fn gaps_are_recomputed_in_one_range_and_empty_buckets_are_stored() {
        let plan = Plan::new(&query(JAN_1, JAN_1 + 4 * DAY)).unwrap();
        let cached: BTreeMap<_, _> = [(JAN_1 + 2 * DAY, vec![counts(JAN_1 + 2 * DAY, "old")])]
            .into_iter()
            .collect();
        let work = plan.work(cached, i64::MAX);
        assert_eq!(ranges(&work), vec![(JAN_1..JAN_1 + 4 * DAY)]);
        let (answer, fresh) = plan
            .assemble(work, vec![counts(JAN_1 + 2 * DAY, "new")])
            .unwrap();
        assert_eq!(answer, [counts(JAN_1 + 2 * DAY, "new")]);
        assert_eq!(fresh.len(), 4);
        assert_eq!(fresh[0].counts, "[]");
    }

    #[test]
    fn buckets_not_closed_long_enough_are_computed_but_not_stored() {
        let plan = Plan::new(&query(JAN_1, JAN_1 + 3 * DAY)).unwrap();
        // The second day closed; the third has not.
        let work = plan.work(BTreeMap::new(), JAN_1 + 2 * DAY + 5);
        assert_eq!(ranges(&work), vec![(JAN_1..JAN_1 + 3 * DAY)]);
        assert_eq!(work.storable, JAN_1..JAN_1 + 2 * DAY);
        let (_, fresh) = plan.assemble(work, Vec::new()).unwrap();
        assert_eq!(fresh.len(), 2);
        let open = plan.work(BTreeMap::new(), JAN_1 - DAY);
        assert!(open.storable.is_empty());
    }

    #[test]
    fn the_key_depends_on_width_grouping_and_filter_but_not_range() {
        let base = query(JAN_1, JAN_1 + 2 * DAY);
        assert_eq!(key(&base), key(&query(JAN_1 - DAY, JAN_1 + 9 * DAY)));
        let mut other = base.clone();
        other.bucket = Bucket::Hour;
        assert_ne!(key(&base), key(&other));
        let mut other = base.clone();
        other.group_by = None;
        assert_ne!(key(&base), key(&other));
        let mut other = base.clone();
        other.filter.model = Some("m".into());
        assert_ne!(key(&base), key(&other));
    }
}
