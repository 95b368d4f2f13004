//! A full disk: the real binary on a data directory in a small tmpfs. Writes past the space get
//! 507 `storage_full` and store nothing; what was acknowledged stays readable; the server keeps
//! serving, writes succeed again once space is freed, and the file passes its integrity check.
//!
//! Mounting needs root (CI runs as root); elsewhere the test says so and does nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::process::{self, Data};

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(dir: &Path, size: &str) -> Option<Self> {
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|status| status.success());
        mounted.then(|| Self(dir.to_owned()))
    }

    fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_507_stores_nothing_of_the_refused_request_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let mount_point = process::data_dir(dir.path(), "small");
    let Some(mount) = Mount::tmpfs(&mount_point, "6m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = Data {
        dir: process::data_dir(&mount_point, "data"),
        postgres_url: None,
    };
    let port = process::free_port();
    let server = process::start(&data, port, &[]).await;
    let key = server.first_start_key().await;
    let http = reqwest::Client::new();
    let post = |prefix: String| {
        let http = http.clone();
        let url = format!("{}/api/v1/traces", server.base);
        let key = key.clone();
        async move {
            let response = http
                .post(url)
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(crate::traces(&prefix, 10, 20_000))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (
                status,
                response
                    .json::<serde_json::Value>()
                    .await
                    .unwrap_or_default(),
            )
        }
    };
    let get = |id: String| {
        let http = http.clone();
        let url = format!("{}/api/v1/traces/{id}", server.base);
        let key = key.clone();
        async move {
            http.get(url)
                .header("authorization", format!("Bearer {key}"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };

    // Fill the disk: ~200 kB per request into 6 MB.
    let mut acked = Vec::new();
    let (refused, error) = loop {
        let prefix = format!("b{}", acked.len());
        let (status, body) = post(prefix.clone()).await;
        match status {
            200 => acked.push(prefix),
            507 => break (prefix, body),
            other => panic!("unexpected {other}: {body}"),
        }
        assert!(acked.len() < 200, "the disk never filled");
    };
    assert_eq!(error["error"]["code"], "storage_full", "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("disk is full"),
        "{error}"
    );
    assert!(!acked.is_empty());
    // Nothing of the refused request; everything acknowledged; reads still served.
    assert_eq!(get(format!("{refused}-0")).await, 404);
    assert_eq!(get(format!("{refused}-9")).await, 404);
    for prefix in &acked {
        assert_eq!(get(format!("{prefix}-9")).await, 200, "{prefix}");
    }

    // Space comes back: writes succeed again without a restart.
    mount.resize("64m");
    let mut recovered = false;
    for attempt in 0..50 {
        let (status, body) = post(format!("after{attempt}")).await;
        if status == 200 {
            recovered = true;
            break;
        }
        assert_eq!(status, 507, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recovered, "writes did not resume once space was freed");

    server.terminate();
    let (exit, log) = server.wait_exit(Duration::from_secs(60)).await;
    assert!(exit.success(), "exit {exit}:\n{log}");
    let conn = rusqlite::Connection::open(data.sqlite_file()).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    drop(mount);
}
