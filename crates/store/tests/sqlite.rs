//! The store contract suite run against the SQLite backend, each test on a fresh database in
//! its own temporary directory.

// The contract cases are plain async functions, not `#[test]`s, so clippy's test allowance for
// `unwrap` does not reach them; in test code a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

#[macro_use]
mod contract;

use contract::StoreUnderTest;
use feedloop_store::StoreOptions;

/// A new SQLite store, opened through the same resolver as the server uses, whose directory
/// lives as long as the returned guard.
async fn sqlite_store() -> StoreUnderTest {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("feedloop.db").display());
    // Fewer read connections than the default keep many parallel tests within file limits, and
    // `synchronous = NORMAL` spares them an fsync per commit; neither changes the contract.
    let options = StoreOptions {
        read_connections: 2,
        sqlite_sync_full: false,
        ..StoreOptions::default()
    };
    let store = feedloop_store::open(&url, &options)
        .await
        .expect("the sqlite store opens");
    StoreUnderTest::new(store, dir)
}

store_contract_suite!(sqlite, sqlite_store());
