//! The single writer: one thread owns the write connection and runs write jobs in shared
//! transactions (group commit). In a group of several small jobs each job runs inside its own
//! savepoint, so a job that fails rolls back alone; every job of a group is answered only after
//! the group's COMMIT, so an acknowledged write is a committed write. Throughput then does not
//! hinge on one fsync per request: under load, one commit carries many requests.
//!
//! Big jobs (batches of many items) run without savepoints: a savepoint makes SQLite copy every
//! page the job changes into the statement journal first, and for a 500-span OTLP batch those
//! copies took a third of the writer's time. A big job that can run again (see
//! [`Writer::run_batch`]) shares its transaction with the other big ones waiting, and if the
//! shared transaction fails, each runs again alone. Sharing is what makes a batch cheap: an
//! index under random keys (trace ids, sessions) gets about one new entry per leaf page per
//! batch, and every page a transaction changes goes to the WAL whole, so four waiting batches
//! in one commit write most of those pages once instead of four times. Any other big job runs
//! alone, and its failure rolls back its own transaction.
//!
//! Durable answers (`synchronous = FULL`) do not make the writer wait for the disk: SQLite
//! would sync the WAL inside every COMMIT, on this thread, which under sustained ingest spent
//! about a quarter of the writer's time waiting for the disk (BENCHMARKS.md) instead of running
//! the next transaction. The write connection commits with `synchronous = NORMAL` (the WAL is
//! written, not synced) and hands the committed jobs to a sync thread, which syncs the WAL file
//! once for every commit waiting and only then answers them: an acknowledged write is on disk,
//! and the disk works while the writer runs the next group. A checkpoint syncs the WAL before it
//! copies frames into the database, so frames that a WAL reset overwrites were durable first.

use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;

use super::checkpoint::WalLength;
use tokio::sync::{mpsc, oneshot};

use crate::{Result, StoreError};

/// Jobs of at least this many items run without a savepoint (see the module's note); in a group,
/// a job's savepoint costs little when the job writes little.
const ALONE_WEIGHT: usize = 100;

/// A write waiting for the writer thread. It keeps its result until the transaction ends, and
/// answers its caller then.
trait Job: Send {
    /// How many items it writes, for sizing groups.
    fn weight(&self) -> usize;
    /// Whether it can run again after its transaction rolled back: such big jobs share a
    /// transaction without savepoints, and run again alone if the shared one fails.
    fn replayable(&self) -> bool;
    /// Runs the write inside the open transaction, in a savepoint of its own if `savepoint`,
    /// keeps the result and says whether the write succeeded.
    fn run(&mut self, conn: &Connection, savepoint: bool) -> bool;
    /// Answers the caller: the kept result if the transaction committed (`None`), else the
    /// error.
    fn answer(self: Box<Self>, error: Option<&StoreError>);
}

/// A job that runs once.
struct OnceJob<T, F> {
    weight: usize,
    write: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
}

impl<T, F> Job for OnceJob<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T> + Send + 'static,
{
    fn weight(&self) -> usize {
        self.weight
    }

    fn replayable(&self) -> bool {
        false
    }

    fn run(&mut self, conn: &Connection, savepoint: bool) -> bool {
        let Some(write) = self.write.take() else {
            return false;
        };
        keep(&mut self.result, run_write(conn, savepoint, write))
    }

    fn answer(self: Box<Self>, error: Option<&StoreError>) {
        let _ = self.reply.send(outcome(error, self.result));
    }
}

/// A job over data it only reads, so it can run again; the data goes back to the caller with
/// the result, so that the caller's thread frees it, not the writer's.
struct ReplayJob<D, T, F> {
    data: D,
    write: F,
    result: Option<Result<T>>,
    reply: oneshot::Sender<(Result<T>, D)>,
}

impl<D, T, F> Job for ReplayJob<D, T, F>
where
    D: Batch + Send + 'static,
    T: Send + 'static,
    F: Fn(&Connection, &D) -> Result<T> + Send + 'static,
{
    fn weight(&self) -> usize {
        self.data.weight()
    }

    fn replayable(&self) -> bool {
        true
    }

    fn run(&mut self, conn: &Connection, savepoint: bool) -> bool {
        let (write, data) = (&self.write, &self.data);
        keep(
            &mut self.result,
            run_write(conn, savepoint, |conn| write(conn, data)),
        )
    }

    fn answer(self: Box<Self>, error: Option<&StoreError>) {
        let _ = self.reply.send((outcome(error, self.result), self.data));
    }
}

/// Runs a write, in a savepoint of its own if `savepoint`.
fn run_write<T>(
    conn: &Connection,
    savepoint: bool,
    write: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    if savepoint {
        in_savepoint(conn, write)
    } else {
        catching_panics(conn, write)
    }
}

/// Keeps a job's result for its answer; says whether the write succeeded.
fn keep<T>(slot: &mut Option<Result<T>>, result: Result<T>) -> bool {
    let succeeded = result.is_ok();
    *slot = Some(result);
    succeeded
}

/// What a job answers: its result if its transaction committed (`error` is `None`).
fn outcome<T>(error: Option<&StoreError>, result: Option<Result<T>>) -> Result<T> {
    match (error, result) {
        (None, Some(result)) => result,
        (Some(error), _) => Err(error.clone()),
        (None, None) => Err(StoreError::Internal("a write job never ran".into())),
    }
}

/// The data of a replayable job.
pub trait Batch {
    /// How many items it writes, for sizing groups.
    fn weight(&self) -> usize;
}

pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread. `max_weight` caps the items of one transaction; `queue` the
    /// jobs waiting. With `sync`, the writer answers a committed job only once `sync` has made
    /// its commit durable (see the module's note); `conn` must then not sync commits itself.
    pub fn start(
        conn: Connection,
        max_weight: usize,
        queue: usize,
        wal: Arc<WalLength>,
        sync: Option<Box<dyn SyncWal>>,
    ) -> Self {
        let (jobs, receiver) = mpsc::channel(queue.max(1));
        let answers = match sync {
            None => Answers::Now,
            Some(sync) => Answers::after_sync(sync),
        };
        std::thread::Builder::new()
            .name("feedloop-sqlite-writer".into())
            .spawn(move || write_loop(conn, receiver, max_weight.max(1), &wal, &answers))
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
        self.send(Box::new(OnceJob {
            weight,
            write: Some(write),
            result: None,
            reply,
        }))
        .await?;
        answer.await.map_err(dropped)?
    }

    /// Runs `write` over `data` in the next group transaction and returns its result once
    /// committed. A big batch shares its transaction with the other big batches waiting (one
    /// commit then writes each index page they share once), so `write` may run twice: again
    /// alone, if the shared transaction fails.
    pub async fn run_batch<D, T, F>(&self, data: D, write: F) -> Result<T>
    where
        D: Batch + Send + 'static,
        T: Send + 'static,
        F: Fn(&Connection, &D) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Box::new(ReplayJob {
            data,
            write,
            result: None,
            reply,
        }))
        .await?;
        // The data is dropped here, on the caller's thread.
        let (result, _data) = answer.await.map_err(dropped)?;
        result
    }

    async fn send(&self, job: Box<dyn Job>) -> Result<()> {
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the sqlite writer has stopped".into()))
    }
}

fn dropped(_: oneshot::error::RecvError) -> StoreError {
    StoreError::Internal("the sqlite writer dropped a job".into())
}

/// Makes every commit so far durable.
pub trait SyncWal: Send {
    fn sync(&mut self) -> std::io::Result<()>;
}

/// The database's WAL file, synced like SQLite syncs it in a `synchronous = FULL` commit. SQLite
/// keeps the file while any connection is open, and overwrites it in place after a reset.
pub struct WalFile(std::fs::File);

impl WalFile {
    /// Opens the WAL of the database at `db_path`, which an open WAL-mode connection has created.
    pub fn open(db_path: &Path) -> Result<Self> {
        let mut name = db_path.as_os_str().to_owned();
        name.push("-wal");
        std::fs::File::open(&name).map(Self).map_err(|e| {
            StoreError::Config(format!("cannot open {}: {e}", Path::new(&name).display()))
        })
    }
}

impl SyncWal for WalFile {
    fn sync(&mut self) -> std::io::Result<()> {
        self.0.sync_data()
    }
}

/// How the writer answers the jobs of a committed transaction.
enum Answers {
    /// Right away: the commit synced itself, or durability was not asked for.
    Now,
    /// Once the sync thread has synced the WAL after the commit.
    AfterSync(std::sync::mpsc::Sender<Vec<Box<dyn Job>>>),
}

impl Answers {
    fn after_sync(mut sync: Box<dyn SyncWal>) -> Self {
        let (committed, receiver) = std::sync::mpsc::channel::<Vec<Box<dyn Job>>>();
        std::thread::Builder::new()
            .name("feedloop-sqlite-sync".into())
            .spawn(move || {
                while let Ok(mut jobs) = receiver.recv() {
                    // One sync covers every commit made before it starts.
                    jobs.extend(receiver.try_iter().flatten());
                    let error = sync.sync().err().map(|error| {
                        tracing::error!(%error, num_jobs = jobs.len(), "could not sync the sqlite WAL");
                        StoreError::Internal(format!("the write may not be on disk: {error}"))
                    });
                    jobs.into_iter().for_each(|job| job.answer(error.as_ref()));
                }
            })
            .expect("the sync thread starts");
        Self::AfterSync(committed)
    }

    fn committed(&self, jobs: Vec<Box<dyn Job>>) {
        match self {
            Self::Now => jobs.into_iter().for_each(|job| job.answer(None)),
            Self::AfterSync(sync) => {
                if let Err(std::sync::mpsc::SendError(jobs)) = sync.send(jobs) {
                    let error =
                        StoreError::Unavailable("the sqlite sync thread has stopped".into());
                    jobs.into_iter().for_each(|job| job.answer(Some(&error)));
                }
            }
        }
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

/// How the jobs of a group share their transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sharing {
    /// Small jobs, each in a savepoint (alone: none).
    Savepoints,
    /// Big replayable jobs, without savepoints: if one fails, all run again alone.
    Replays,
    /// A big job that cannot run again: alone.
    Alone,
}

impl Sharing {
    fn of(job: &dyn Job) -> Self {
        if job.weight() < ALONE_WEIGHT {
            Sharing::Savepoints
        } else if job.replayable() {
            Sharing::Replays
        } else {
            Sharing::Alone
        }
    }
}

fn write_loop(
    conn: Connection,
    mut receiver: mpsc::Receiver<Box<dyn Job>>,
    max_weight: usize,
    wal: &WalLength,
    answers: &Answers,
) {
    // A job taken from the queue that does not fit the group being gathered: it starts the
    // next group.
    let mut held: Option<Box<dyn Job>> = None;
    while let Some(first) = held.take().or_else(|| receiver.blocking_recv()) {
        let sharing = Sharing::of(first.as_ref());
        let mut weight = first.weight();
        let mut group = vec![first];
        while sharing != Sharing::Alone && weight < max_weight {
            match receiver.try_recv() {
                Ok(job) if Sharing::of(job.as_ref()) != sharing => {
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
        if group.len() == 1 || sharing == Sharing::Savepoints {
            run_group(&conn, group, answers);
        } else {
            // Replays: one transaction for all, or, if it fails, one each.
            match run_together(&conn, &mut group) {
                Ok(()) => answers.committed(group),
                Err(error) => {
                    tracing::warn!(%error, num_jobs = group.len(), "a shared transaction failed; running its jobs one by one");
                    for job in group {
                        run_group(&conn, vec![job], answers);
                    }
                }
            }
        }
        wal.restart_if_long(&conn);
    }
    tracing::debug!("sqlite writer stopped");
}

/// Runs replayable jobs in one transaction without savepoints and commits it if all succeed;
/// else rolls it back. Answers nobody.
fn run_together(conn: &Connection, group: &mut [Box<dyn Job>]) -> Result<()> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let all_succeeded = group.iter_mut().all(|job| job.run(conn, false));
    let end = if all_succeeded { "COMMIT" } else { "ROLLBACK" };
    if let Err(error) = conn.execute_batch(end) {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(error.into());
    }
    if all_succeeded {
        Ok(())
    } else {
        Err(StoreError::Internal("a job of the group failed".into()))
    }
}

/// Runs a group in one transaction, each job in a savepoint unless it is alone, and answers
/// every job once the transaction has ended.
fn run_group(conn: &Connection, mut group: Vec<Box<dyn Job>>, answers: &Answers) {
    let num_jobs = group.len();
    if let Err(error) = conn.execute_batch("BEGIN IMMEDIATE") {
        let error = StoreError::from(error);
        tracing::error!(%error, num_jobs, "sqlite writer could not begin a transaction");
        group.into_iter().for_each(|job| job.answer(Some(&error)));
        return;
    }
    let alone = num_jobs == 1;
    let mut failed_alone = false;
    for job in &mut group {
        let succeeded = job.run(conn, !alone);
        failed_alone = alone && !succeeded;
    }
    let end = if failed_alone { "ROLLBACK" } else { "COMMIT" };
    match conn.execute_batch(end) {
        Ok(()) if !failed_alone => answers.committed(group),
        Ok(()) => group.into_iter().for_each(|job| job.answer(None)),
        Err(error) => {
            let error = StoreError::from(error);
            tracing::error!(%error, num_jobs, end, "sqlite transaction did not end; rolling back the group");
            let _ = conn.execute_batch("ROLLBACK");
            group.into_iter().for_each(|job| job.answer(Some(&error)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new database with table `t`: the write connection and the database's path.
    fn database(dir: &tempfile::TempDir) -> (Connection, std::path::PathBuf) {
        let path = dir.path().join("w.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        (conn, path)
    }

    fn writer(dir: &tempfile::TempDir) -> (Writer, Connection) {
        let (conn, path) = database(dir);
        let writer = Writer::start(conn, 1_000, 16, Arc::default(), None);
        (writer, Connection::open(&path).unwrap())
    }

    /// Records, at each sync, the rows committed by then; fails every sync if `fail`.
    struct RecordingSync {
        reader: Connection,
        seen: Arc<std::sync::Mutex<Vec<Vec<i64>>>>,
        fail: bool,
    }

    impl SyncWal for RecordingSync {
        fn sync(&mut self) -> std::io::Result<()> {
            self.seen.lock().unwrap().push(values(&self.reader));
            if self.fail {
                return Err(std::io::Error::other("the disk is gone"));
            }
            Ok(())
        }
    }

    fn recording_writer(
        dir: &tempfile::TempDir,
        fail: bool,
    ) -> (Writer, Arc<std::sync::Mutex<Vec<Vec<i64>>>>) {
        let (conn, path) = database(dir);
        let seen = Arc::default();
        let sync = RecordingSync {
            reader: Connection::open(&path).unwrap(),
            seen: Arc::clone(&seen),
            fail,
        };
        let writer = Writer::start(conn, 1_000, 16, Arc::default(), Some(Box::new(sync)));
        (writer, seen)
    }

    #[tokio::test]
    async fn a_commit_is_answered_only_after_a_sync_that_covers_it() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, seen) = recording_writer(&dir, false);
        writer.run(1, insert(1, false)).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), [vec![1]]);
        // A job that rolled back has nothing to sync.
        writer.run(1, insert(2, true)).await.unwrap_err();
        writer.run(1, insert(3, false)).await.unwrap();
        assert_eq!(*seen.lock().unwrap(), [vec![1], vec![1, 3]]);
    }

    #[tokio::test]
    async fn a_failed_sync_answers_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, seen) = recording_writer(&dir, true);
        let error = writer.run(1, insert(1, false)).await.unwrap_err();
        assert!(error.to_string().contains("may not be on disk"), "{error}");
        assert!(error.to_string().contains("the disk is gone"), "{error}");
        assert_eq!(seen.lock().unwrap().len(), 1);
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
        let (release, first) = hold(&writer, 1);
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

    /// A big batch for the replay tests: inserts `value`, fails if `fail`, and counts its runs.
    struct Row {
        value: i64,
        fail: bool,
        runs: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Batch for Row {
        fn weight(&self) -> usize {
            ALONE_WEIGHT
        }
    }

    fn insert_row(conn: &Connection, row: &Row) -> Result<()> {
        row.runs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        insert(row.value, row.fail)(conn)
    }

    /// Holds the writer with a small job inserting `value` until `release` is sent, so that the
    /// jobs queued meanwhile make one group.
    fn hold(
        writer: &Arc<Writer>,
        value: i64,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<()>>,
    ) {
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let writer = writer.clone();
        let held = tokio::spawn(async move {
            writer
                .run(1, move |conn: &Connection| {
                    hold.recv().unwrap();
                    insert(value, false)(conn)
                })
                .await
        });
        (release, held)
    }

    #[tokio::test]
    async fn waiting_batches_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(&dir);
        let writer = Arc::new(writer);
        let (release, held) = hold(&writer, 0);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let path = dir.path().join("w.sqlite");
        let mut batches = Vec::new();
        for value in 1..=3 {
            let (writer, path) = (writer.clone(), path.clone());
            batches.push(tokio::spawn(async move {
                // What another connection sees while the batch runs: the rows committed before.
                let row = Row {
                    value,
                    fail: false,
                    runs: Arc::default(),
                };
                writer
                    .run_batch(row, move |conn, row| {
                        insert_row(conn, row)?;
                        let other = Connection::open(&path)?;
                        Ok(values(&other))
                    })
                    .await
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        for batch in batches {
            // None of the three saw another's row committed: one transaction.
            assert_eq!(batch.await.unwrap().unwrap(), [0]);
        }
        assert_eq!(values(&reader), [0, 1, 2, 3]);
    }

    #[tokio::test]
    async fn a_failing_batch_rolls_back_alone_and_the_others_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(&dir);
        let writer = Arc::new(writer);
        let (release, held) = hold(&writer, 0);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut batches = Vec::new();
        let mut runs = Vec::new();
        for (value, fail) in [(1, false), (2, true), (3, false)] {
            let row = Row {
                value,
                fail,
                runs: Arc::default(),
            };
            runs.push(row.runs.clone());
            let writer = writer.clone();
            batches.push(tokio::spawn(async move {
                writer.run_batch(row, insert_row).await
            }));
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        release.send(()).unwrap();
        held.await.unwrap().unwrap();
        assert_eq!(succeeded(batches).await, [true, false, true]);
        assert_eq!(values(&reader), [0, 1, 3]);
        let runs: Vec<usize> = runs
            .iter()
            .map(|r| r.load(std::sync::atomic::Ordering::Relaxed))
            .collect();
        // The shared run stopped at the failure; then each ran alone.
        assert_eq!(runs, [2, 2, 1]);
    }

    async fn succeeded(tasks: Vec<tokio::task::JoinHandle<Result<()>>>) -> Vec<bool> {
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap().is_ok());
        }
        results
    }
}
