//! The store contract: one suite of tests written against the [`Store`] trait alone, so that
//! every backend (SQLite and PostgreSQL) is held to the same behaviour.
//!
//! Each case is a `pub async fn` that takes a fresh, empty store. A backend's test binary
//! declares `#[macro_use] mod contract;` and calls [`store_contract_suite!`] with a name and an
//! expression that builds a [`StoreUnderTest`]; the macro expands to one `#[tokio::test]` per
//! case (the pattern of quickwit's `metastore_test_suite!`). Cases pass every timestamp to the
//! store explicitly, so nothing here depends on the wall clock.

mod access;
mod analytics;
mod clusters;
mod concurrency;
mod coordination;
mod datasets;
mod embeddings;
mod feedback;
mod fixtures;
mod lessons;
mod lists;
mod pagination;
mod privacy;
mod projects;
mod review;
mod sessions;
mod signals;
mod supersession;
mod traces;
mod validation;

pub use access::*;
pub use analytics::*;
pub use clusters::*;
pub use concurrency::*;
pub use coordination::*;
pub use datasets::*;
pub use embeddings::*;
pub use feedback::*;
pub use lessons::*;
pub use lists::*;
pub use pagination::*;
pub use privacy::*;
pub use projects::*;
pub use review::*;
pub use sessions::*;
pub use signals::*;
pub use supersession::*;
pub use traces::*;
pub use validation::*;

use feedloop_store::Store;
use std::any::Any;
use std::sync::Arc;

/// A fresh store, and whatever must outlive it for the length of one test (a temporary
/// directory, a scratch database).
pub struct StoreUnderTest {
    // Declared first so that it is dropped before the guard: the store closes its files before
    // the directory that holds them goes away.
    pub store: Arc<dyn Store>,
    _guard: Box<dyn Any + Send>,
}

impl StoreUnderTest {
    pub fn new(store: Arc<dyn Store>, guard: impl Any + Send) -> Self {
        Self {
            store,
            _guard: Box::new(guard),
        }
    }
}

/// Expands to one `#[tokio::test]` per contract case, in a module named after the backend.
/// `$constructor` is an expression whose value is a future of a [`StoreUnderTest`]; it is
/// evaluated once per test, so each case gets its own empty store.
macro_rules! store_contract_suite {
    ($backend:ident, $constructor:expr) => {
        store_contract_suite!(@cases $backend, $constructor, [
            create_project_seeds_default_taxonomy,
            users_are_unique_by_email_and_members_have_one_role,
            sessions_are_found_by_hash_touched_and_deleted,
            the_first_token_secret_stays,
            rotation_revokes_and_replaces_a_key_in_one_change,
            the_audit_log_pages_newest_first_per_project,
            keys_are_found_by_hash_listed_and_revoked,
            projects_isolate_their_data,
            stats_count_what_is_stored,
            trace_parts_merge_into_one_trace,
            spans_keep_their_text_when_the_traces_changes,
            fill_gaps_parts_yield_to_replacing_parts_in_either_order,
            a_span_named_twice_in_the_part_that_creates_its_trace_merges,
            session_orders_traces_with_their_feedback,
            trace_chain_names_session_neighbours,
            feedback_of_every_kind_round_trips,
            feedback_retry_is_idempotent_and_conflicts_reject_the_batch,
            orphan_feedback_links_when_its_trace_arrives,
            restated_judgements_supersede_earlier_ones,
            categories_must_be_active_in_the_taxonomy,
            annotations_are_checked_against_a_stored_output,
            a_retry_is_a_duplicate_even_after_its_category_is_retired,
            ingest_into_a_missing_project_is_not_found,
            key_and_taxonomy_writes_are_logged_in_order,
            a_job_run_is_claimed_once_and_taken_over_after_its_lease,
            list_traces_matches_every_filter_field,
            list_feedback_matches_every_filter_field,
            trace_pages_have_no_gaps_or_duplicates,
            feedback_pages_have_no_gaps_or_duplicates,
            concurrent_ingests_all_commit,
            concurrent_conflicting_ingest_fails_alone,
            a_trace_with_input_is_queued_and_claimed_once_per_lease,
            traces_without_input_are_never_queued,
            stored_vectors_leave_the_queue_and_are_followed_in_order,
            a_trace_requeued_while_claimed_stays_queued_after_the_old_generation_is_stored,
            a_late_vector_of_an_old_input_does_not_replace_the_current_one,
            queue_missing_embeddings_queues_each_trace_with_input_once,
            traces_by_seq_reads_only_the_projects_traces,
            trace_seqs_honour_the_filter_and_negative_feedback,
            feedback_on_groups_feedback_by_trace_oldest_first,
            lessons_are_created_versioned_and_listed,
            lessons_changed_since_follows_every_write_in_order,
            provenance_feedback_is_left_out_of_uncovered_negative_cases,
            negative_cases_carry_vector_correction_categories_and_comment,
            contrast_vectors_are_well_rated_traces_without_negative_feedback,
            injections_are_recorded_linked_and_counted,
            loop_settings_default_until_set,
            the_evidence_watermark_grows_with_every_kind_of_write,
            a_rejected_lesson_write_changes_nothing,
            a_non_string_injection_id_in_metadata_is_ignored,
            signal_settings_default_until_set,
            signal_progress_only_moves_forward_unless_reset,
            session_neighbours_and_vectors_are_read_per_trace,
            abandonment_candidates_carry_the_next_start_and_engagement,
            derived_signals_are_deleted_by_rule_prefix_only,
            satisfaction_is_stored_filtered_and_removed,
            feedback_aggregates_by_day_and_model_match_hand_counts,
            feedback_aggregates_by_week_tag_metadata_and_filter,
            negative_counts_and_version_traffic_match_hand_counts,
            alerts_are_raised_once_and_queue_their_event_for_subscribers,
            stored_aggregate_buckets_follow_every_change_to_old_records,
            signal_negativity_follows_the_projects_polarities,
            cluster_candidates_are_unclustered_negative_embedded_traces,
            a_copy_range_outside_the_output_is_rejected,
            review_queues_are_created_listed_updated_and_deleted,
            a_trace_is_enqueued_once_per_queue,
            the_item_lifecycle_follows_the_model,
            an_expired_reservation_is_reservable_again,
            verdicts_need_labels_and_are_listed_for_agreement,
            assigned_items_are_reserved_only_by_their_assignee,
            the_rules_job_lookups_follow_traces_and_filters,
            datasets_are_named_uniquely_per_project,
            dataset_items_are_idempotent_per_trace_and_id,
            dataset_items_page_in_the_order_added,
            a_dataset_version_freezes_the_items_added_before_it,
            vectors_of_traces_are_read_by_trace_id,
            privacy_settings_default_to_off_and_round_trip,
            retention_deletes_exactly_the_expired_rows,
            sequence_numbers_are_not_reused_after_deletion,
            erasure_deletes_the_users_traces_sessions_and_feedback_only,
        ]);
    };
    (@cases $backend:ident, $constructor:expr, [$($case:ident),* $(,)?]) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;

            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let under_test: $crate::contract::StoreUnderTest = $constructor.await;
                    $crate::contract::$case(under_test.store.clone()).await;
                }
            )*
        }
    };
}
