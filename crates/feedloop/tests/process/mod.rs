//! The real `feedloop` binary as a child process, for tests that kill it (SIGKILL), stop it
//! (SIGTERM) and start it again on the same data: the crash, shutdown and backup tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a server keeps its data: a data directory (SQLite inside it), and a PostgreSQL URL when
/// the database is PostgreSQL (the directory then only holds the vector indexes).
#[derive(Debug, Clone)]
pub struct Data {
    pub dir: PathBuf,
    pub postgres_url: Option<String>,
}

impl Data {
    /// The SQLite file of a data directory.
    pub fn sqlite_file(&self) -> PathBuf {
        self.dir.join("feedloop.db")
    }

    /// The `FEEDLOOP_*` variables that point a command at this data.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![("FEEDLOOP_DATA_DIR".into(), self.dir.display().to_string())];
        if let Some(url) = &self.postgres_url {
            env.push(("FEEDLOOP_DATABASE_URL".into(), url.clone()));
        }
        env
    }
}

/// A port free now (the server binds it with SO_REUSEADDR, so it can restart on it at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running `feedloop serve`.
pub struct ServerProcess {
    child: Child,
    pub base: String,
    /// Everything the process wrote to stdout and stderr so far.
    pub output: Arc<Mutex<String>>,
}

/// Starts `feedloop serve` on `port` over `data` with the hash embedder, no rate limit and no
/// gRPC listener, plus `extra` variables; waits until `/healthz` answers.
pub async fn start(data: &Data, port: u16, extra: &[(&str, &str)]) -> ServerProcess {
    let mut server = spawn(data, port, extra);
    server.wait_healthy().await;
    server
}

/// [`start`] without waiting: the process may still be opening the store and recovering.
pub fn spawn(data: &Data, port: u16, extra: &[(&str, &str)]) -> ServerProcess {
    // reqwest is built without a default TLS provider; the tests' clients need one installed.
    feedloop_embed::install_tls_provider();
    let mut command = Command::new(env!("CARGO_BIN_EXE_feedloop"));
    command
        .arg("serve")
        .env_remove("FEEDLOOP_DATABASE_URL")
        .env_remove("FEEDLOOP_CONFIG")
        .env("FEEDLOOP_LISTEN", format!("127.0.0.1:{port}"))
        .env("FEEDLOOP_OTLP_GRPC_LISTEN", "off")
        .env("FEEDLOOP_EMBEDDING_PROVIDER", "hash")
        .env("FEEDLOOP_EMBEDDING_DIMENSIONS", "64")
        .env("FEEDLOOP_LIMITS_REQUESTS_PER_SECOND", "0")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in data.env() {
        command.env(name, value);
    }
    for (name, value) in extra {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the feedloop binary starts");
    let output = Arc::new(Mutex::new(String::new()));
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let output = output.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let mut output = output.lock().unwrap_or_else(|p| p.into_inner());
                output.push_str(&line);
                output.push('\n');
            }
        });
    }
    ServerProcess {
        child,
        base: format!("http://127.0.0.1:{port}"),
        output,
    }
}

impl ServerProcess {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    async fn wait_healthy(&mut self) {
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "feedloop exited at start ({status}):\n{}",
                    self.output_text()
                );
            }
            let healthy = http
                .get(format!("{}/healthz", self.base))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "feedloop did not become healthy:\n{}",
                self.output_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn output_text(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The admin key the first start printed.
    pub async fn first_start_key(&self) -> String {
        let started = Instant::now();
        loop {
            let key = self
                .output_text()
                .lines()
                .map(str::trim)
                .find(|line| line.starts_with("fl_sk_"))
                .map(str::to_owned);
            if let Some(key) = key {
                return key;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no key printed:\n{}",
                self.output_text()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGKILL: no chance to flush, save indexes or answer anything.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }

    /// Sends SIGTERM (graceful shutdown) and returns at once.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit (after [`Self::terminate`]).
    pub async fn wait_exit(mut self, limit: Duration) -> (ExitStatus, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // Let the reader threads take the last lines.
                tokio::time::sleep(Duration::from_millis(100)).await;
                return (status, self.output_text());
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                panic!(
                    "feedloop did not exit within {limit:?}:\n{}",
                    self.output_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `feedloop ARGS` over `data` to completion: (success, stdout + stderr).
pub fn run_command(data: &Data, args: &[&str]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_feedloop"));
    command.args(args).env_remove("FEEDLOOP_DATABASE_URL");
    for (name, value) in data.env() {
        command.env(name, value);
    }
    let output = command.output().expect("the feedloop binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

/// A fresh data directory under `parent`.
pub fn data_dir(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir_all(&dir).expect("data dir");
    dir
}
