//! Reliability beyond crashes (those are `tests/crash.rs`): load shedding past the in-flight
//! limit, graceful shutdown, a full disk, and backup/restore, each against real parts (the
//! server, the real binary as a child process, real SQLite files and PostgreSQL databases).

#![allow(clippy::unwrap_used)] // test code

mod common;
mod process;

#[path = "reliability/backup.rs"]
mod backup;
#[path = "reliability/disk_full.rs"]
mod disk_full;
#[path = "reliability/overload.rs"]
mod overload;
#[path = "reliability/shutdown.rs"]
mod shutdown;

use std::io::{Read, Write};
use std::net::TcpStream;

/// An HTTP/1.1 request written by hand, so a test can hold it half-sent: the headers and part
/// of the body go out, and the rest only when the test says.
pub struct HeldRequest {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl HeldRequest {
    /// Sends the headers of a POST of `body` to `path` and all of the body but its last bytes.
    pub fn start(addr: &str, key: &str, path: &str, body: &[u8]) -> Self {
        let mut stream = TcpStream::connect(addr).expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {key}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let split = body.len() - 8;
        stream.write_all(head.as_bytes()).expect("write head");
        stream.write_all(&body[..split]).expect("write body");
        stream.flush().expect("flush");
        Self {
            stream,
            rest: body[split..].to_vec(),
        }
    }

    /// Sends the rest of the body and reads the answer: (status, body).
    pub fn finish(mut self) -> (u16, String) {
        self.stream.write_all(&self.rest).expect("write rest");
        self.stream.flush().expect("flush");
        let mut answer = String::new();
        self.stream
            .read_to_string(&mut answer)
            .expect("read answer");
        parse_answer(&answer)
    }
}

/// (status, body) of a raw HTTP/1.1 answer (the body as sent: chunked bodies are not decoded).
pub fn parse_answer(answer: &str) -> (u16, String) {
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A batch of `n` JSON traces with ids `{prefix}-0..n`.
pub fn traces(prefix: &str, n: usize, output_bytes: usize) -> Vec<u8> {
    let output = "x".repeat(output_bytes);
    let traces: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "id": format!("{prefix}-{i}"), "input": format!("question {prefix} {i}"),
                "output": output, "status": "ok",
            })
        })
        .collect();
    serde_json::to_vec(&traces).expect("json")
}
