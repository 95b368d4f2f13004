//! WAL checkpoints, kept off the commit path. SQLite's automatic checkpoint runs inside the
//! commit that crosses its threshold, on the writer thread, where it took about a fifth of the
//! writer's time under sustained ingest. Here a thread of its own copies the WAL into the
//! database with PASSIVE checkpoints (which never wait), and the writer only restarts the WAL
//! once it is long: a passive checkpoint cannot let the WAL start over while the writer keeps
//! appending, and a WAL that only grows slows every read and write and fills the disk.

use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

/// How often the WAL is checkpointed. A page written many times between two checkpoints (an
/// index leaf under random keys, the last page of a table) is copied into the database once, so
/// a longer interval copies less: 1 s against 250 ms took batched feedback ingest from ~47k to
/// ~51k items/s (BENCHMARKS.md).
const INTERVAL: Duration = Duration::from_secs(1);

/// WAL length (in frames, i.e. 4 KiB pages) past which the writer restarts the WAL between
/// commits: 512 MiB. Every restart copies the tail on the writer, so a longer WAL restarts less
/// often (32,768 frames gave ~43k feedback items/s where this gives ~51k); the WAL file stays at
/// about this size on disk.
const RESTART_FRAMES: i64 = 131_072;

/// The WAL length last seen by the checkpointer, shared with the writer.
#[derive(Debug, Default)]
pub struct WalLength(AtomicI64);

impl WalLength {
    /// Called by the writer between commits: restarts the WAL if it has grown long. The
    /// checkpointer has copied most of it already, so this copies only the tail.
    pub fn restart_if_long(&self, conn: &Connection) {
        if self.0.load(Ordering::Relaxed) <= RESTART_FRAMES {
            return;
        }
        let started = std::time::Instant::now();
        let outcome = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| {
            row.get::<_, i64>(0)
        });
        let elapsed_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(0) => {
                self.0.store(0, Ordering::Relaxed);
                tracing::debug!(elapsed_ms, "wal restarted");
            }
            Ok(_) => tracing::debug!(
                elapsed_ms,
                "wal restart was busy; trying again after the next commit"
            ),
            Err(error) => tracing::warn!(%error, "wal restart failed"),
        }
    }
}

/// Stops its thread when dropped.
pub struct Checkpointer {
    stop: Arc<AtomicBool>,
}

impl Checkpointer {
    pub fn start(conn: Connection, length: Arc<WalLength>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("feedloop-sqlite-checkpoint".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(INTERVAL);
                    // PASSIVE never waits for readers or the writer; what it cannot copy now it
                    // copies next time.
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                        row.get::<_, i64>(1)
                    }) {
                        Ok(frames) => length.0.store(frames, Ordering::Relaxed),
                        Err(error) => tracing::warn!(%error, "wal checkpoint failed"),
                    }
                }
            })
            .expect("the checkpoint thread starts");
        Self { stop }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
