//! The single writer: one thread owns the write connection and runs write jobs in shared
//! transactions (group commit). In a group of several jobs each job runs inside its own
//! savepoint, so a job that fails rolls back alone; every job of a group is answered only after
//! the group's COMMIT, so an acknowledged write is a committed write. Throughput then does not
//! hinge on one fsync per request: under load, one commit carries many requests.
//!
//! A big job (a batch of many items) gets a group of its own: alone, it runs without a
//! savepoint, and a failure rolls back the transaction. A savepoint makes SQLite copy every page the job changes into the
//! statement journal first; for a 500-span OTLP batch that journal spills to a file, and its
//! writes took a third of the writer's time.

use rusqlite::Connection;
use std::sync::Arc;

use super::checkpoint::WalLength;
use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError};

/// Jobs of at least this many items run alone, without a savepoint (see the module's note); in
/// a group, a job's savepoint costs little when the job writes little.
const ALONE_WEIGHT: usize = 100;

/// Tells a job's caller how its group ended: `None` when committed.
type Finish = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A write waiting for the writer thread.
trait Job: Send {
    /// How many items it writes, for sizing groups.
    fn weight(&self) -> usize;
    /// Runs the write inside the open transaction, in a savepoint of its own if `savepoint`;
    /// the result waits for the commit. Also says whether the write succeeded.
    fn run(self: Box<Self>, conn: &Connection, savepoint: bool) -> (Finish, bool);
    /// Answers without running (the transaction could not start).
    fn fail(self: Box<Self>, error: &StoreError);
}

struct TypedJob<T, F> {
    weight: usize,
    write: F,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for TypedJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    fn weight(&self) -> usize {
        self.weight
    }

    fn run(self: Box<Self>, conn: &Connection, savepoint: bool) -> (Finish, bool) {
        let TypedJob { write, reply, .. } = *self;
        let result = if savepoint {
            in_savepoint(conn, write)
        } else {
            catching_panics(conn, write)
        };
        let succeeded = result.is_ok();
        let finish: Finish = Box::new(move |commit_error: Option<&StoreError>| {
            let result = match commit_error {
                Some(error) => Err(error.clone()),
                None => result,
            };
            let _ = reply.send(result);
        });
        (finish, succeeded)
    }

    fn fail(self: Box<Self>, error: &StoreError) {
        let _ = self.reply.send(Err(error.clone()));
    }
}

pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread. `max_weight` caps the items of one transaction; `queue` the
    /// jobs waiting.
    pub fn start(conn: Connection, max_weight: usize, queue: usize, wal: Arc<WalLength>) -> Self {
        let (jobs, receiver) = mpsc::channel(queue.max(1));
        std::thread::Builder::new()
            .name("feedloop-sqlite-writer".into())
            .spawn(move || write_loop(conn, receiver, max_weight.max(1), &wal))
            .expect("the writer thread starts");
        Self { jobs }
    }

    /// Runs `write` in the next group transaction and returns its result once committed.
    pub async fn run<T, F>(&self, weight: usize, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(TypedJob {
            weight,
            write,
            reply,
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the sqlite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Internal("the sqlite writer dropped a job".into()))?
    }
}

fn in_savepoint<T>(conn: &Connection, write: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
    conn.execute_batch("SAVEPOINT job")?;
    let result = catching_panics(conn, write);
    let end = if result.is_ok() {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    conn.execute_batch(end)?;
    result
}

fn catching_panics<T>(
    conn: &Connection,
    write: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(conn)))
        .unwrap_or_else(|_| Err(StoreError::Internal("a write panicked".into())))
}

fn write_loop(
    conn: Connection,
    mut receiver: mpsc::Receiver<Box<dyn Job>>,
    max_weight: usize,
    wal: &WalLength,
) {
    // A big job taken from the queue while a group of small ones was being gathered: it starts
    // the next group, alone.
    let mut held: Option<Box<dyn Job>> = None;
    while let Some(first) = held.take().or_else(|| receiver.blocking_recv()) {
        let mut weight = first.weight();
        let gather = weight < ALONE_WEIGHT;
        let mut group = vec![first];
        while gather && weight < max_weight {
            match receiver.try_recv() {
                Ok(job) if job.weight() >= ALONE_WEIGHT => {
                    held = Some(job);
                    break;
                }
                Ok(job) => {
                    weight += job.weight();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        let num_jobs = group.len();
        if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
            let error = StoreError::from(error);
            tracing::error!(%error, num_jobs, "sqlite writer could not begin a transaction");
            group.into_iter().for_each(|job| job.fail(&error));
            continue;
        }
        let alone = num_jobs == 1;
        let mut failed_alone = false;
        let finishes: Vec<Finish> = group
            .into_iter()
            .map(|job| {
                let (finish, succeeded) = job.run(&conn, !alone);
                failed_alone = alone && !succeeded;
                finish
            })
            .collect();
        let end = if failed_alone { "ROLLBACK" } else { "COMMIT" };
        let outcome = conn.execute_batch(end).map_err(StoreError::from);
        if let Err(error) = &outcome {
            tracing::error!(%error, num_jobs, end, "sqlite transaction did not end; rolling back the group");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for finish in finishes {
            finish(outcome.as_ref().err());
        }
        wal.restart_if_long(&conn);
    }
    tracing::debug!("sqlite writer stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &tempfile::TempDir) -> (Writer, Connection) {
        let path = dir.path().join("w.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        let writer = Writer::start(conn, 100, 16, Arc::default());
        (writer, Connection::open(&path).unwrap())
    }

    fn values(conn: &Connection) -> Vec<i64> {
        let mut statement = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        statement
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// Inserts `v`, then fails if `fail`: what it inserted must not stay.
    fn insert(v: i64, fail: bool) -> impl FnOnce(&Connection) -> Result<()> + Send + 'static {
        move |conn| {
            conn.execute("INSERT INTO t (v) VALUES (?1)", [v])?;
            if fail {
                return Err(StoreError::Internal(format!("job {v} fails")));
            }
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_job_alone_that_fails_leaves_nothing_and_the_next_commits() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(&dir);
        let error = writer.run(1, insert(1, true)).await.unwrap_err();
        assert!(error.to_string().contains("job 1 fails"), "{error}");
        writer
            .run(1, |conn: &Connection| -> Result<()> {
                conn.execute_batch("INSERT INTO t (v) VALUES (2)")?;
                panic!("a bug");
            })
            .await
            .unwrap_err();
        writer.run(1, insert(3, false)).await.unwrap();
        assert_eq!(values(&reader), [3]);
    }

    #[tokio::test]
    async fn in_a_group_a_failing_job_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(&dir);
        let writer = Arc::new(writer);
        // The first job holds the writer until the others wait in its queue, so they make one
        // group.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let writer = writer.clone();
            async move {
                writer
                    .run(1, move |conn: &Connection| {
                        hold.recv().unwrap();
                        insert(1, false)(conn)
                    })
                    .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // Small jobs group (a failing one rolls back alone); big ones go alone, in order.
        let big = ALONE_WEIGHT;
        let mut rest = Vec::new();
        for (v, weight, fail) in [
            (2, 1, false),
            (3, 1, true),
            (4, big, true),
            (5, big, false),
            (6, 1, false),
        ] {
            let writer = writer.clone();
            rest.push(tokio::spawn(async move {
                writer.run(weight, insert(v, fail)).await
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        let results: Vec<bool> = succeeded(rest).await;
        assert_eq!(results, [true, false, false, true, true]);
        assert_eq!(values(&reader), [1, 2, 5, 6]);
    }

    async fn succeeded(tasks: Vec<tokio::task::JoinHandle<Result<()>>>) -> Vec<bool> {
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap().is_ok());
        }
        results
    }
}
