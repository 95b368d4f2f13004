//! The store contract suite run against the SQLite backend, each test on a fresh database in
//! its own temporary directory.

#![allow(clippy::unwrap_used)] // test code

#[macro_use]
mod contract;

use contract::StoreUnderTest;
use feedloop_store::StoreOptions;
use feedloop_store::sqlite::SqliteStore;
use std::sync::Arc;

/// A new SQLite store whose directory lives as long as the returned guard.
async fn sqlite_store() -> StoreUnderTest {
    let dir = tempfile::tempdir().expect("a temporary directory");
    // Fewer read connections than the default keep a hundred parallel tests within file limits;
    // `synchronous = NORMAL` spares the tests an fsync per commit.
    let options = StoreOptions {
        read_connections: 2,
        sqlite_sync_full: false,
        ..StoreOptions::default()
    };
    let store = SqliteStore::open(&dir.path().join("feedloop.db"), &options)
        .await
        .expect("the sqlite store opens");
    StoreUnderTest::new(Arc::new(store), dir)
}

store_contract_suite!(sqlite, sqlite_store());
