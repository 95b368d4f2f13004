//! The database a test server runs on: a SQLite file in a temporary directory, or (when
//! `FEEDLOOP_TEST_DATABASE=postgres`) a fresh PostgreSQL database on the local server, dropped when
//! the test ends. The test command runs the HTTP suite once with each.

use std::sync::Arc;

/// The PostgreSQL server the tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("FEEDLOOP_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

pub fn use_postgres() -> bool {
    std::env::var("FEEDLOOP_TEST_DATABASE").is_ok_and(|v| v == "postgres")
}

/// A test database; dropping the last handle drops a PostgreSQL database.
pub struct TestDatabase {
    pub url: String,
    _guard: Arc<DatabaseGuard>,
}

impl Clone for TestDatabase {
    fn clone(&self) -> Self {
        Self {
            url: self.url.clone(),
            _guard: self._guard.clone(),
        }
    }
}

enum DatabaseGuard {
    Sqlite(tempfile::TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// The database the test run asked for (SQLite unless `FEEDLOOP_TEST_DATABASE=postgres`).
    pub async fn create() -> Self {
        if use_postgres() {
            Self::create_postgres().await
        } else {
            Self::create_sqlite()
        }
    }

    pub fn create_sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("feedloop.db").display());
        Self {
            url,
            _guard: Arc::new(DatabaseGuard::Sqlite(dir)),
        }
    }

    /// A fresh PostgreSQL database; fails the test with a clear message if there is no server.
    pub async fn create_postgres() -> Self {
        {
            let admin_url = postgres_admin_url();
            let name = format!("feedloop_test_{:016x}", rand::random::<u64>());
            let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| {
                    panic!(
                        "PostgreSQL is not reachable at {admin_url} ({e}). Start it with \
                         `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` \
                         or set FEEDLOOP_TEST_POSTGRES_URL"
                    )
                });
            tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create database");
            let url = match admin_url.rsplit_once('/') {
                Some((server, _)) => format!("{server}/{name}"),
                None => panic!("FEEDLOOP_TEST_POSTGRES_URL must name a database"),
            };
            Self {
                url,
                _guard: Arc::new(DatabaseGuard::Postgres { admin_url, name }),
            }
        }
    }

    /// The same database reached through another host and port (a proxy in front of it).
    pub fn url_through(&self, host_port: &str) -> String {
        let (scheme, rest) = self.url.split_once("://").expect("a url");
        let (_, path) = rest.split_once('/').expect("a database in the url");
        let user = rest
            .split_once('@')
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        format!("{scheme}://{user}{host_port}/{path}")
    }
}

impl Drop for DatabaseGuard {
    fn drop(&mut self) {
        if let DatabaseGuard::Postgres { admin_url, name } = self {
            let (admin_url, name) = (admin_url.clone(), name.clone());
            // Drop runs inside the test's runtime; a thread with its own runtime may block.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(async {
                    let (client, connection) =
                        tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
                            .await
                            .ok()?;
                    tokio::spawn(connection);
                    client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}
