//! Behaviour of `VectorIndex` against a brute-force oracle: recall of the approximate path
//! (the probed lists), filters, candidate sets, replacement, removal, persistence.

mod common;

use std::collections::HashSet;

use common::{Clusters, brute_force};
use feedloop_vector::{IndexSettings, VectorError, VectorIndex};

const DIMENSIONS: usize = 384;

/// An index with `n` clustered vectors under keys 0..n, and the vectors themselves.
fn filled(
    n: usize,
    seed: u64,
    settings: IndexSettings,
) -> (VectorIndex, Vec<(u64, Vec<f32>)>, Clusters) {
    let mut clusters = Clusters::new(seed, DIMENSIONS, 100);
    let items: Vec<(u64, Vec<f32>)> = clusters
        .draw_many(n)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i as u64, v))
        .collect();
    let index = VectorIndex::with_settings(DIMENSIONS, settings).expect("index");
    index.upsert_many(&items).expect("bulk insert");
    (index, items, clusters)
}

fn keys(neighbors: &[feedloop_vector::Neighbor]) -> Vec<u64> {
    neighbors.iter().map(|n| n.key).collect()
}

fn lists_only() -> IndexSettings {
    IndexSettings {
        exact_threshold: 0,
        ..IndexSettings::default()
    }
}

/// The oracle test: the probed lists with the default parameters find at least 95 % of the
/// true 10 nearest neighbours on clustered data, measured against the exact scan (itself
/// checked against a plain Rust brute force on a few queries).
#[test]
fn recall_at_10_is_at_least_0_95_on_clustered_vectors() {
    let (index, items, mut clusters) = filled(50_000, 1234, lists_only());
    assert_eq!(index.len(), 50_000);
    let queries = clusters.draw_many(250);
    let mut found = 0;
    for (i, query) in queries.iter().enumerate() {
        let exact = keys(&index.search_exact(query, 10).unwrap());
        if i < 5 {
            assert_eq!(
                exact,
                brute_force(&items, query, 10, |_| true),
                "exact scan disagrees with the oracle"
            );
        }
        let approximate = index.search(query, 10).unwrap();
        assert_eq!(approximate.len(), 10);
        assert!(
            approximate
                .windows(2)
                .all(|w| w[0].similarity >= w[1].similarity),
            "best first"
        );
        let truth: HashSet<u64> = exact.into_iter().collect();
        found += approximate
            .iter()
            .filter(|n| truth.contains(&n.key))
            .count();
    }
    let recall = found as f64 / (queries.len() * 10) as f64;
    eprintln!("recall@10 = {recall:.4}");
    assert!(recall >= 0.95, "recall@10 {recall} < 0.95");
}

/// The lists are scanned in i8, but what they yield is re-ranked in f32: every similarity is
/// the exact f32 one (not a quantised estimate), and with a generous re-rank the top results
/// equal the brute-force oracle's whenever the probed lists held them.
#[test]
fn approximate_results_are_re_ranked_with_exact_f32_similarities() {
    let (index, items, mut clusters) = filled(12_000, 41, lists_only());
    index.set_rerank_factor(8);
    let mut num_exact_top = 0;
    for query in clusters.draw_many(50) {
        let found = index.search(&query, 10).unwrap();
        assert_eq!(found.len(), 10);
        for neighbor in &found {
            let exact = common::dot(&query, &items[neighbor.key as usize].1);
            assert!(
                (neighbor.similarity - exact).abs() < 1e-5,
                "key {}: {} is not the f32 similarity {exact}",
                neighbor.key,
                neighbor.similarity
            );
        }
        assert!(found.windows(2).all(|w| w[0].similarity >= w[1].similarity));
        if keys(&found) == brute_force(&items, &query, 10, |_| true) {
            num_exact_top += 1;
        }
    }
    // At this size and re-rank nearly every query's top 10 is the exact top 10, in order.
    assert!(num_exact_top >= 40, "only {num_exact_top} of 50 exact");
}

#[test]
fn small_indexes_are_searched_exactly() {
    let (index, items, mut clusters) = filled(2_000, 7, IndexSettings::default());
    for query in clusters.draw_many(20) {
        assert_eq!(
            keys(&index.search(&query, 10).unwrap()),
            brute_force(&items, &query, 10, |_| true)
        );
    }
}

/// A filter matching 1 % of the keys must still yield k results, all matching: the probed
/// lists alone hold too few matches for such a filter.
#[test]
fn selective_filter_still_returns_k_matching_results() {
    let settings = IndexSettings {
        exact_threshold: 1_000,
        ..IndexSettings::default()
    };
    let (index, items, mut clusters) = filled(20_000, 11, settings);
    let keep = |key: u64| key % 100 == 7;
    for query in clusters.draw_many(10) {
        // ~200 matching keys, under the exact threshold: answered by an exact scan.
        let found = index.search_filtered(&query, 10, &keep).unwrap();
        assert_eq!(keys(&found), brute_force(&items, &query, 10, keep));
    }
    // Fewer matches than k: all of them.
    let rare = |key: u64| key < 3;
    assert_eq!(
        index.search_filtered(&items[0].1, 10, &rare).unwrap().len(),
        3
    );

    // With no exact threshold the list scan runs first; too few results fall back to a scan.
    index.set_exact_threshold(0);
    let very_rare = |key: u64| key % 2_000 == 7;
    for query in clusters.draw_many(10) {
        for filter in [&keep as &(dyn Fn(u64) -> bool + Sync), &very_rare] {
            let found = index.search_filtered(&query, 10, filter).unwrap();
            assert_eq!(found.len(), 10);
            assert!(found.iter().all(|n| filter(n.key)));
        }
    }
    // A broad filter goes through the lists and still only returns matches.
    let even = |key: u64| key.is_multiple_of(2);
    let found = index.search_filtered(&items[1].1, 10, &even).unwrap();
    assert_eq!(found.len(), 10);
    assert!(found.iter().all(|n| even(n.key)));
}

#[test]
fn search_among_is_exact_over_the_candidates_and_skips_unknown_keys() {
    let (index, items, mut clusters) = filled(3_000, 13, IndexSettings::default());
    let candidates: Vec<u64> = (0..3_000)
        .step_by(7)
        .chain([1_000_000, 1_000_001])
        .chain([14, 14])
        .collect();
    let set: HashSet<u64> = candidates.iter().copied().collect();
    let query = clusters.draw();
    let found = index.search_among(&query, 5, &candidates).unwrap();
    assert_eq!(
        keys(&found),
        brute_force(&items, &query, 5, |key| set.contains(&key))
    );
    let few = index.search_among(&query, 5, &[1, 2, 999_999]).unwrap();
    assert_eq!(few.len(), 2);
}

#[test]
fn upsert_replaces_the_vector_of_an_existing_key() {
    let (index, items, _) = filled(500, 17, IndexSettings::default());
    let (_, other) = &items[42];
    index.upsert(3, other).unwrap();
    assert_eq!(index.len(), 500);
    let stored = index.vector(3).unwrap();
    assert!(common::dot(&stored, other) > 0.9999);
    let best = index.search(other, 2).unwrap();
    assert_eq!(
        keys(&best).into_iter().collect::<HashSet<_>>(),
        HashSet::from([3, 42])
    );
    // In bulk too, and the last of duplicate keys wins.
    index
        .upsert_many(&[(5, items[9].1.clone()), (5, items[10].1.clone())])
        .unwrap();
    assert_eq!(index.len(), 500);
    assert!(common::dot(&index.vector(5).unwrap(), &items[10].1) > 0.9999);
}

#[test]
fn upsert_grows_capacity_one_at_a_time() {
    let mut clusters = Clusters::new(19, DIMENSIONS, 10);
    let index = VectorIndex::with_settings(DIMENSIONS, lists_only()).unwrap();
    for key in 0..3_000 {
        index.upsert(key, &clusters.draw()).unwrap();
    }
    assert_eq!(index.len(), 3_000);
    assert!(index.contains(2_999));
}

#[test]
fn removed_keys_are_never_found_again() {
    let (index, items, _) = filled(12_000, 23, lists_only());
    for key in 0..100 {
        assert!(index.remove(key).unwrap());
    }
    assert!(!index.remove(0).unwrap());
    assert_eq!(index.len(), 11_900);
    assert!(!index.contains(5));
    assert_eq!(index.vector(5), None);
    for (_, vector) in &items[..20] {
        assert!(
            index
                .search(vector, 10)
                .unwrap()
                .iter()
                .all(|n| n.key >= 100)
        );
        assert!(
            index
                .search_exact(vector, 10)
                .unwrap()
                .iter()
                .all(|n| n.key >= 100)
        );
        assert!(
            index
                .search_filtered(vector, 10, &|key| key < 200)
                .unwrap()
                .iter()
                .all(|n| n.key >= 100)
        );
    }
    // The freed slots are reused.
    index.upsert(5, &items[5].1).unwrap();
    assert_eq!(index.search(&items[5].1, 1).unwrap()[0].key, 5);
}

#[test]
fn save_then_load_gives_the_same_results() {
    let (index, _, mut clusters) = filled(12_000, 29, lists_only());
    index.remove(77).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("project.vectors");
    index.save(&path).unwrap();
    let loaded = VectorIndex::load_with_settings(&path, DIMENSIONS, lists_only()).unwrap();
    assert_eq!(loaded.len(), index.len());
    assert!(!loaded.contains(77));
    for query in clusters.draw_many(20) {
        assert_eq!(
            loaded.search(&query, 10).unwrap(),
            index.search(&query, 10).unwrap()
        );
        let keep = |key: u64| key % 100 == 3;
        assert_eq!(
            loaded.search_filtered(&query, 10, &keep).unwrap(),
            index.search_filtered(&query, 10, &keep).unwrap()
        );
    }
    // The f32 vectors round-trip bit for bit (including the row that filled 77's hole).
    for key in (0..12_000).filter(|key| *key != 77) {
        assert_eq!(loaded.vector(key), index.vector(key), "key {key}");
    }
    // The loaded index takes writes, and saving over the file works.
    loaded.upsert(77, &clusters.draw()).unwrap();
    loaded.save(&path).unwrap();
    assert!(VectorIndex::load(&path, DIMENSIONS).unwrap().contains(77));
    // Only the file is left behind, no temporary.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn empty_index_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.vectors");
    VectorIndex::new(8).unwrap().save(&path).unwrap();
    let loaded = VectorIndex::load(&path, 8).unwrap();
    assert!(loaded.is_empty());
    assert!(loaded.search(&[1.0; 8], 3).unwrap().is_empty());
}

#[test]
fn damaged_or_mismatched_files_are_errors() {
    let (index, _, _) = filled(1_000, 31, IndexSettings::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index.vectors");
    index.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();

    let wrong_model = VectorIndex::load(&path, 768).unwrap_err();
    assert!(
        matches!(
            wrong_model,
            VectorError::DimensionsMismatch {
                expected: 768,
                found: 384,
                ..
            }
        ),
        "{wrong_model}"
    );

    let corrupt = |bytes: &[u8]| {
        std::fs::write(&path, bytes).unwrap();
        let error = VectorIndex::load(&path, DIMENSIONS).unwrap_err();
        assert!(matches!(error, VectorError::Corrupt { .. }), "{error}");
    };
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    corrupt(&flipped);
    corrupt(&good[..good.len() - 100]);
    corrupt(&good[..10]);
    corrupt(b"");
    corrupt(&[0xAB; 4096]);

    // A file of format version 2 (an HNSW graph): refused as corrupt, so that its owner
    // rebuilds it. The version sits 12 bytes before the end in every version.
    let mut version_2 = good.clone();
    let at = good.len() - 12;
    version_2[at..at + 4].copy_from_slice(&2u32.to_le_bytes());
    std::fs::write(&path, &version_2).unwrap();
    let old = VectorIndex::load(&path, DIMENSIONS).unwrap_err();
    assert!(
        matches!(&old, VectorError::Corrupt { reason, .. } if reason.contains("version 2")),
        "{old}"
    );

    let missing = VectorIndex::load(&dir.path().join("missing"), DIMENSIONS).unwrap_err();
    assert!(matches!(missing, VectorError::Io { .. }));
}

#[test]
fn concurrent_searches_and_writes() {
    let (index, items, _) = filled(11_000, 37, lists_only());
    std::thread::scope(|scope| {
        for t in 0..8u64 {
            let (index, items) = (&index, &items);
            scope.spawn(move || {
                for i in 0..200u64 {
                    let (_, vector) = &items[((t * 1_000 + i) as usize) % items.len()];
                    if t == 0 {
                        index.upsert(100_000 + i, vector).unwrap();
                    } else {
                        assert_eq!(index.search(vector, 5).unwrap().len(), 5);
                    }
                }
            });
        }
    });
    assert_eq!(index.len(), 11_200);
}

/// Memory is counted while vectors are being added (as `/metrics` and a bulk insert do at
/// once), across the trainings that rebuild the lists: it must neither block nor crash, and it
/// must follow the vectors (5 bytes per dimension: f32 plus i8, then keys and slots).
#[test]
fn memory_is_counted_while_vectors_are_added() {
    let mut clusters = Clusters::new(41, DIMENSIONS, 100);
    let items: Vec<(u64, Vec<f32>)> = clusters
        .draw_many(20_000)
        .into_iter()
        .enumerate()
        .map(|(i, v)| (i as u64, v))
        .collect();
    let index = VectorIndex::with_settings(DIMENSIONS, lists_only()).expect("index");
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut counts = Vec::new();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for chunk in items.chunks(500) {
                index.upsert_many(chunk).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::Release);
        });
        while !done.load(std::sync::atomic::Ordering::Acquire) {
            counts.push(index.memory_usage());
        }
    });
    assert!(counts.len() > 1, "the count ran beside the inserts");
    assert!(counts.first() < counts.last(), "the count grew");
    let per_vector = index.memory_usage() / 20_000;
    assert!(
        (DIMENSIONS * 5..DIMENSIONS * 7).contains(&per_vector),
        "{per_vector} bytes per vector"
    );
}
