//! Small helpers of the API, queue and server tests: raw HTTP, JSON bodies, a registered worker's
//! claims and row batches.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};
use std::time::Duration;

use gaia_core::client::Client;
use gaia_core::model::{Capabilities, JobKind, Row};
use gaia_core::protocol::{Assignment, ClaimRequest, RegisterRequest, RowBatch};

use super::*;

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Asserts an error answer: the status, and a JSON body `{"error": "<non-empty>"}`; returns the
/// message.
pub fn assert_error(what: &str, (status, body): (u16, String), expected: u16) -> String {
    assert_eq!(status, expected, "{what}: body {body}");
    let v = json(&body);
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no \"error\" string in {body}"));
    assert!(!msg.is_empty(), "{what}: empty error message");
    msg.to_string()
}

pub fn post_json(url: &str, token: Option<&str>, body: &str) -> (u16, String) {
    http(
        "POST",
        url,
        token,
        Some(("application/json", body.as_bytes().to_vec())),
    )
}

/// Sends raw bytes to the server and reads the answer until it closes the connection (send
/// `connection: close`): (status, body).
pub fn raw_http(port: u16, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // The server may answer and close before taking all of a body it refuses.
    let _ = s.write_all(request);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        // One chunk is all an error answer needs.
        body.split_once("\r\n")
            .map(|(_, rest)| rest.rsplit_once("\r\n0\r\n").map_or(rest, |(b, _)| b))
            .unwrap_or(body)
            .trim_end_matches("\r\n")
            .to_string()
    } else {
        body.to_string()
    };
    (status, body)
}

/// Runs the CLI against `server` with another token.
pub fn cli_as(server: &Server, token: &str, args: &[&str]) -> Output {
    Command::new(gaia_bin())
        .args(args)
        .env("GAIA_SERVER", server.url())
        .env("GAIA_TOKEN", token)
        .env_remove("GAIA_DATA_DIR")
        .output()
        .expect("run gaia")
}

pub fn register(client: &Client, name: &str, kinds: &[JobKind]) -> String {
    client
        .register(&RegisterRequest {
            worker_id: None,
            name: name.into(),
            version: gaia_core::VERSION.into(),
            hardware: Default::default(),
            kinds: kinds.to_vec(),
            tags: Vec::new(),
            slots: 1,
        })
        .unwrap()
        .worker_id
}

pub fn claim(client: &Client, worker: &str, kinds: &[JobKind], wait_ms: u64) -> Option<Assignment> {
    client
        .claim(&ClaimRequest {
            worker_id: worker.into(),
            capabilities: Capabilities {
                kinds: kinds.to_vec(),
                ..Capabilities::default()
            },
            wait_ms,
            finished: None,
            watch_study: None,
        })
        .unwrap()
}

/// Rows `from..to` with eight metrics each, as an experiment reports them.
pub fn gen_rows(from: u64, to: u64) -> Vec<Row> {
    (from..to)
        .map(|seq| Row {
            seq,
            generation: Some(seq + 1),
            evals: Some(((seq + 1) * 64) as f64),
            best: Some(-(seq as f64) / 3.0),
            best_ever: Some(-(seq as f64) / 4.0),
            mean: Some(-(seq as f64)),
            sigma: Some(0.5),
            elapsed: Some(seq as f64 * 0.01),
            metrics: vec![("entropy".into(), 1.0 / (seq + 1) as f64)],
        })
        .collect()
}

pub fn row_batch(a: &Assignment, rows: Vec<Row>) -> RowBatch {
    RowBatch {
        attempt: a.attempt,
        lease: a.lease,
        rows,
        fraction: None,
        status: None,
    }
}

/// Rows equal up to JSON's float round trip (serde_json may be off by an ulp without its
/// `float_roundtrip` feature); reports the first difference only.
pub fn assert_same_rows(got: &[Row], want: &[Row]) {
    assert_eq!(got.len(), want.len(), "row count");
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs()),
        (a, b) => a == b,
    };
    for (g, w) in got.iter().zip(want) {
        let same = g.seq == w.seq
            && g.generation == w.generation
            && [
                "evals",
                "best",
                "best_ever",
                "mean",
                "sigma",
                "elapsed",
                "entropy",
            ]
            .iter()
            .all(|m| close(g.metric(m), w.metric(m)));
        assert!(same, "row {} differs: got {g:?}, want {w:?}", w.seq);
    }
}

/// Fills a route pattern with values that exist (or at least parse) on this server.
pub fn fill(pattern: &str, job: u64, worker: &str) -> String {
    let mut out = Vec::new();
    let segs: Vec<&str> = pattern.split('/').collect();
    for (i, seg) in segs.iter().enumerate() {
        let prev = if i > 0 { segs[i - 1] } else { "" };
        out.push(match *seg {
            "{id}" => job.to_string(),
            "{name}" => match prev {
                "workers" => worker.to_string(),
                "tokens" => "no-such-token".to_string(),
                "files" => "result.json".to_string(),
                "" => "app.js".to_string(),
                _ => "x".to_string(),
            },
            s => s.to_string(),
        });
    }
    out.join("/")
}
