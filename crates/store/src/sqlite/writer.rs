//! The single writer: one thread owns the write connection and runs write jobs in shared
//! transactions (group commit). Each job runs inside its own savepoint, so a job that fails
//! rolls back alone; every job of a group is answered only after the group's COMMIT, so an
//! acknowledged write is a committed write. Throughput then does not hinge on one fsync per
//! request: under load, one commit carries many requests.

use rusqlite::Connection;
use std::sync::Arc;

use super::checkpoint::WalLength;
use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError};

/// Tells a job's caller how its group ended: `None` when committed.
type Finish = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A write waiting for the writer thread.
trait Job: Send {
    /// How many items it writes, for sizing groups.
    fn weight(&self) -> usize;
    /// Runs the write inside the open transaction; the result waits for the commit.
    fn run(self: Box<Self>, conn: &Connection) -> Finish;
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

    fn run(self: Box<Self>, conn: &Connection) -> Finish {
        let TypedJob { write, reply, .. } = *self;
        let result = in_savepoint(conn, write);
        Box::new(move |commit_error: Option<&StoreError>| {
            let result = match commit_error {
                Some(error) => Err(error.clone()),
                None => result,
            };
            let _ = reply.send(result);
        })
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
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(conn)))
        .unwrap_or_else(|_| Err(StoreError::Internal("a write panicked".into())));
    let end = if result.is_ok() {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    conn.execute_batch(end)?;
    result
}

fn write_loop(
    conn: Connection,
    mut receiver: mpsc::Receiver<Box<dyn Job>>,
    max_weight: usize,
    wal: &WalLength,
) {
    while let Some(first) = receiver.blocking_recv() {
        let mut weight = first.weight();
        let mut group = vec![first];
        while weight < max_weight {
            match receiver.try_recv() {
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
        let finishes: Vec<Finish> = group.into_iter().map(|job| job.run(&conn)).collect();
        let outcome = conn.execute_batch("COMMIT").map_err(StoreError::from);
        if let Err(error) = &outcome {
            tracing::error!(%error, num_jobs, "sqlite commit failed; rolling back the group");
            let _ = conn.execute_batch("ROLLBACK");
        }
        for finish in finishes {
            finish(outcome.as_ref().err());
        }
        wal.restart_if_long(&conn);
    }
    tracing::debug!("sqlite writer stopped");
}
