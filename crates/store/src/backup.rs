//! Online backups of a whole database, and their restore into an empty one.
//!
//! - SQLite: `VACUUM INTO` on a read-only connection. It reads inside one read transaction, so
//!   the copy is the database as of one commit while the server keeps writing (WAL lets the
//!   writer go on); the copy is a compact, checkpointed SQLite file, checked with
//!   `PRAGMA integrity_check` before it is given its name. (The online backup API restarts its
//!   copy whenever another connection writes, so under steady ingest it might never finish.)
//! - PostgreSQL: `pg_dump --format=custom`, which reads every table in one REPEATABLE READ
//!   snapshot; restore is `pg_restore` in one transaction. Both programs must be installed (the
//!   PostgreSQL client package) at the server's major version or newer; the connection details go
//!   through `PG*` variables, so a password never shows in a process list.
//!
//! A restore refuses a target that holds data unless forced, and applies this binary's
//! migrations afterwards, so a backup taken by an older version restores into a newer one.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::{Result, StoreError};

/// The first bytes of each kind of backup file.
const SQLITE_MAGIC: &[u8] = b"SQLite format 3\0";
const PG_DUMP_MAGIC: &[u8] = b"PGDMP";

/// What a backup or a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// Size of the backup file.
    pub num_bytes: u64,
    /// Rows per table, as in the backup (SQLite; empty for PostgreSQL, whose dump is opaque).
    pub tables: Vec<(String, u64)>,
}

/// Progress of a long step: a short message and, when known, bytes done of a total.
pub type Progress<'a> = &'a (dyn Fn(&str, Option<(u64, u64)>) + Sync);

/// Writes a consistent copy of the database `url` names to `out` (which must not exist).
pub async fn backup(url: &str, out: &Path, progress: Progress<'_>) -> Result<BackupReport> {
    if out.exists() {
        return Err(StoreError::Config(format!(
            "{} exists; a backup never overwrites a file",
            out.display()
        )));
    }
    match Backend::of(url)? {
        Backend::Sqlite(path) => backup_sqlite(&path, out, progress).await,
        Backend::Postgres(url) => backup_postgres(&url, out, progress).await,
    }
}

/// Restores the backup `from` into the database `url` names, which must be empty unless
/// `force` (then its data is dropped first).
pub async fn restore(
    url: &str,
    from: &Path,
    force: bool,
    progress: Progress<'_>,
) -> Result<BackupReport> {
    let magic = read_magic(from)?;
    match Backend::of(url)? {
        Backend::Sqlite(path) => {
            if !magic.starts_with(SQLITE_MAGIC) {
                return Err(wrong_kind(from, "a SQLite database file", url));
            }
            restore_sqlite(&path, from, force, progress).await
        }
        Backend::Postgres(url) => {
            if !magic.starts_with(PG_DUMP_MAGIC) {
                return Err(wrong_kind(from, "a pg_dump archive", &url));
            }
            restore_postgres(&url, from, force, progress).await
        }
    }
}

enum Backend {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Backend {
    fn of(url: &str) -> Result<Self> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
        Err(StoreError::Config(format!(
            "unsupported database url scheme {scheme:?}"
        )))
    }
}

fn wrong_kind(file: &Path, expected: &str, url: &str) -> StoreError {
    let scheme = url.split_once("://").map_or(url, |(scheme, _)| scheme);
    StoreError::Config(format!(
        "{} is not {expected}, the kind of backup a {scheme} database restores from",
        file.display()
    ))
}

fn read_magic(file: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut magic = vec![0; SQLITE_MAGIC.len()];
    let mut reader = std::fs::File::open(file)
        .map_err(|e| StoreError::Config(format!("cannot open {}: {e}", file.display())))?;
    let n = reader
        .read(&mut magic)
        .map_err(|e| StoreError::Config(format!("cannot read {}: {e}", file.display())))?;
    magic.truncate(n);
    Ok(magic)
}

fn io_error(what: &str, path: &Path, error: std::io::Error) -> StoreError {
    if error.raw_os_error() == Some(28) {
        StoreError::StorageFull(format!("{what} {}: {error}", path.display()))
    } else {
        StoreError::Unavailable(format!("{what} {}: {error}", path.display()))
    }
}

/// A sibling path for work in progress, renamed into place only when complete.
fn partial(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

async fn backup_sqlite(db: &Path, out: &Path, progress: Progress<'_>) -> Result<BackupReport> {
    if !db.exists() {
        return Err(StoreError::Config(format!(
            "no database at {}",
            db.display()
        )));
    }
    let work = partial(out);
    let _ = std::fs::remove_file(&work);
    let (db_owned, work_owned) = (db.to_owned(), work.clone());
    let copy = tokio::task::spawn_blocking(move || -> Result<()> {
        let conn = rusqlite::Connection::open_with_flags(
            &db_owned,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        let target = work_owned.to_str().ok_or_else(|| {
            StoreError::Config(format!("{} is not valid UTF-8", work_owned.display()))
        })?;
        conn.execute("VACUUM INTO ?1", [target])?;
        Ok(())
    });
    // The size of the live file is the most the copy can grow to.
    let total = std::fs::metadata(db).map(|m| m.len()).unwrap_or(0);
    tokio::pin!(copy);
    let copied = loop {
        tokio::select! {
            copied = &mut copy => break copied,
            () = tokio::time::sleep(std::time::Duration::from_millis(200)) => {
                let done = std::fs::metadata(&work).map(|m| m.len()).unwrap_or(0);
                progress("copying", Some((done.min(total), total)));
            }
        }
    };
    let copied = copied.map_err(|e| StoreError::Internal(format!("backup task: {e}")));
    if let Err(error) = copied.and_then(|copied| copied) {
        let _ = std::fs::remove_file(&work);
        return Err(error);
    }
    progress("checking the copy", None);
    let report = match check_sqlite_file(&work).await {
        Ok(report) => report,
        Err(error) => {
            let _ = std::fs::remove_file(&work);
            return Err(error);
        }
    };
    sync_file(&work)?;
    std::fs::rename(&work, out).map_err(|e| io_error("cannot rename to", out, e))?;
    Ok(report)
}

/// `PRAGMA integrity_check` and row counts of a SQLite file, opened read-only.
async fn check_sqlite_file(file: &Path) -> Result<BackupReport> {
    let file = file.to_owned();
    tokio::task::spawn_blocking(move || -> Result<BackupReport> {
        let conn = rusqlite::Connection::open_with_flags(
            &file,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        let check: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?;
        if check != "ok" {
            return Err(StoreError::Internal(format!(
                "the backup {} fails its integrity check: {check}",
                file.display()
            )));
        }
        let names: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")?
            .query_map([], |row| row.get(0))?
            .collect::<std::result::Result<_, _>>()?;
        let mut tables = Vec::with_capacity(names.len());
        for name in names {
            // Names come from the schema itself; quoted all the same.
            let sql = format!("SELECT count(*) FROM \"{}\"", name.replace('"', "\"\""));
            let rows: i64 = conn.query_row(&sql, [], |row| row.get(0))?;
            tables.push((name, rows as u64));
        }
        let num_bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        Ok(BackupReport { num_bytes, tables })
    })
    .await
    .map_err(|e| StoreError::Internal(format!("check task: {e}")))?
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|e| io_error("cannot sync", path, e))
}

async fn restore_sqlite(
    db: &Path,
    from: &Path,
    force: bool,
    progress: Progress<'_>,
) -> Result<BackupReport> {
    let has_data = std::fs::metadata(db).is_ok_and(|m| m.len() > 0);
    if has_data && !force {
        return Err(StoreError::Config(format!(
            "{} already holds a database; restore into an empty data directory, or pass --force \
             to replace it",
            db.display()
        )));
    }
    progress("checking the backup", None);
    check_sqlite_file(from).await?;
    if let Some(dir) = db.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error("cannot create", dir, e))?;
    }
    let work = partial(db);
    progress("copying", None);
    std::fs::copy(from, &work).map_err(|e| {
        let _ = std::fs::remove_file(&work);
        io_error("cannot copy the backup to", &work, e)
    })?;
    sync_file(&work)?;
    // The old database's log must not be replayed over the restored file.
    for suffix in ["", "-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
    std::fs::rename(&work, db).map_err(|e| io_error("cannot rename to", db, e))?;
    check_sqlite_file(db).await
}

/// `PG*` variables for the client programs, from a connection URL.
fn pg_env(url: &str) -> Result<Vec<(&'static str, String)>> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Config(format!("database url: {e}")))?;
    let mut env = Vec::new();
    if let Some(host) = config.get_hosts().first() {
        match host {
            tokio_postgres::config::Host::Tcp(host) => env.push(("PGHOST", host.clone())),
            tokio_postgres::config::Host::Unix(path) => {
                env.push(("PGHOST", path.display().to_string()))
            }
        }
    }
    if let Some(port) = config.get_ports().first() {
        env.push(("PGPORT", port.to_string()));
    }
    if let Some(user) = config.get_user() {
        env.push(("PGUSER", user.to_owned()));
    }
    if let Some(password) = config.get_password() {
        env.push(("PGPASSWORD", String::from_utf8_lossy(password).into_owned()));
    }
    if let Some(name) = config.get_dbname() {
        env.push(("PGDATABASE", name.to_owned()));
    }
    Ok(env)
}

/// Runs a PostgreSQL client program, passing each line it logs to `progress`.
async fn run_pg_program(
    program: &str,
    args: &[&str],
    url: &str,
    progress: Progress<'_>,
) -> Result<()> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(program)
        .args(args)
        .envs(pg_env(url)?)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            StoreError::Config(format!(
                "cannot run {program} ({e}): install the PostgreSQL client programs \
                 (Debian: postgresql-client) at the server's major version or newer"
            ))
        })?;
    let stderr = child.stderr.take().expect("stderr is piped");
    // The program runs on a blocking thread; its log lines come back through a bounded channel.
    let (lines, mut received) = tokio::sync::mpsc::channel::<String>(64);
    let waiter = tokio::task::spawn_blocking(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(|l| l.ok())
        {
            if lines.blocking_send(line).is_err() {
                break;
            }
        }
        child.wait()
    });
    let mut last_lines: Vec<String> = Vec::new();
    while let Some(line) = received.recv().await {
        progress(&line, None);
        last_lines.push(line);
        let excess = last_lines.len().saturating_sub(5);
        last_lines.drain(..excess);
    }
    let status = waiter
        .await
        .map_err(|e| StoreError::Internal(format!("{program} task: {e}")))?
        .map_err(|e| StoreError::Internal(format!("{program}: {e}")))?;
    if status.success() {
        Ok(())
    } else {
        Err(StoreError::Unavailable(format!(
            "{program} failed ({status}): {}",
            last_lines.join(" | ")
        )))
    }
}

async fn backup_postgres(url: &str, out: &Path, progress: Progress<'_>) -> Result<BackupReport> {
    let work = partial(out);
    let _ = std::fs::remove_file(&work);
    let file = work
        .to_str()
        .ok_or_else(|| StoreError::Config(format!("{} is not valid UTF-8", work.display())))?;
    let dumped = run_pg_program(
        "pg_dump",
        &["--format=custom", "--no-owner", "--verbose", "--file", file],
        url,
        progress,
    )
    .await;
    if let Err(error) = dumped {
        let _ = std::fs::remove_file(&work);
        return Err(error);
    }
    sync_file(&work)?;
    std::fs::rename(&work, out).map_err(|e| io_error("cannot rename to", out, e))?;
    let num_bytes = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        num_bytes,
        tables: Vec::new(),
    })
}

async fn restore_postgres(
    url: &str,
    from: &Path,
    force: bool,
    progress: Progress<'_>,
) -> Result<BackupReport> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await?;
    let num_tables: i64 = row.get(0);
    if num_tables > 0 {
        if !force {
            return Err(StoreError::Config(format!(
                "the database already has {num_tables} tables; restore into an empty database, \
                 or pass --force to drop them"
            )));
        }
        progress("dropping the existing tables", None);
        client
            .batch_execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
            .await?;
    }
    drop(client);
    let _ = connection.await;
    let file = from
        .to_str()
        .ok_or_else(|| StoreError::Config(format!("{} is not valid UTF-8", from.display())))?;
    run_pg_program(
        "pg_restore",
        &[
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            "--verbose",
            "--dbname",
            // The database itself comes from PGDATABASE; `--dbname` only makes pg_restore
            // restore into a database rather than print SQL.
            &pg_env(url)?
                .into_iter()
                .find(|(name, _)| *name == "PGDATABASE")
                .map(|(_, name)| name)
                .unwrap_or_else(|| "postgres".into()),
            file,
        ],
        url,
        progress,
    )
    .await?;
    let num_bytes = std::fs::metadata(from).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        num_bytes,
        tables: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_details_go_to_pg_variables() {
        let env = pg_env("postgres://ann:secret@db.example:6543/feedloop").unwrap();
        let get = |name: &str| {
            env.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("PGHOST"), Some("db.example"));
        assert_eq!(get("PGPORT"), Some("6543"));
        assert_eq!(get("PGUSER"), Some("ann"));
        assert_eq!(get("PGPASSWORD"), Some("secret"));
        assert_eq!(get("PGDATABASE"), Some("feedloop"));
    }

    #[test]
    fn work_in_progress_sits_beside_the_target() {
        assert_eq!(
            partial(Path::new("/backups/feedloop.db")),
            PathBuf::from("/backups/feedloop.db.partial")
        );
    }
}
