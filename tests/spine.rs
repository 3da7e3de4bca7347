//! The spine: server, queue and API through real processes — the CLI, raw HTTP, every route's
//! auth, crash safety under kill -9, bad input, long polls, tokens, shutdown and the on-disk
//! schema.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gaia_core::client::Client;
use gaia_core::model::{Capabilities, JobKind, JobSpec, JobState, Row, Scope, Stream};
use gaia_core::protocol::{
    Assignment, ClaimRequest, CompleteRequest, LogBatch, LogInput, Outcome, PROTOCOL_HEADER,
    RegisterRequest, RowBatch,
};
use gaia_core::server::router::ROUTES;

use crate::helper::*;

// ---- small helpers ---------------------------------------------------------------------------

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// Asserts an error answer: the status, and a JSON body `{"error": "<non-empty>"}`; returns the
/// message.
fn assert_error(what: &str, (status, body): (u16, String), expected: u16) -> String {
    assert_eq!(status, expected, "{what}: body {body}");
    let v = json(&body);
    let msg = v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no \"error\" string in {body}"));
    assert!(!msg.is_empty(), "{what}: empty error message");
    msg.to_string()
}

fn post_json(url: &str, token: Option<&str>, body: &str) -> (u16, String) {
    http(
        "POST",
        url,
        token,
        Some(("application/json", body.as_bytes().to_vec())),
    )
}

/// Sends raw bytes to the server and reads the answer until it closes the connection (send
/// `connection: close`): (status, body).
fn raw_http(port: u16, request: &[u8]) -> (u16, String) {
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
fn cli_as(server: &Server, token: &str, args: &[&str]) -> Output {
    Command::new(gaia_bin())
        .args(args)
        .env("GAIA_SERVER", server.url())
        .env("GAIA_TOKEN", token)
        .env_remove("GAIA_DATA_DIR")
        .output()
        .expect("run gaia")
}

fn register(client: &Client, name: &str, kinds: &[JobKind]) -> String {
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

fn claim(client: &Client, worker: &str, kinds: &[JobKind], wait_ms: u64) -> Option<Assignment> {
    client
        .claim(&ClaimRequest {
            worker_id: worker.into(),
            capabilities: Capabilities {
                kinds: kinds.to_vec(),
                ..Capabilities::default()
            },
            wait_ms,
            finished: None,
        })
        .unwrap()
}

/// Rows `from..to` with eight metrics each, as an experiment reports them.
fn gen_rows(from: u64, to: u64) -> Vec<Row> {
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

fn row_batch(a: &Assignment, rows: Vec<Row>) -> RowBatch {
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
fn assert_same_rows(got: &[Row], want: &[Row]) {
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
fn fill(pattern: &str, job: u64, worker: &str) -> String {
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

// ---- jobs through the CLI and HTTP -----------------------------------------------------------

#[test]
fn submit_list_show_cancel_through_the_cli() {
    let server = Server::start();
    let id = server.cli_ok(&["submit", "--method", "cma_es", "--max-evals", "1000"]);
    assert_eq!(id.trim(), "1");
    let second = server.cli_ok(&[
        "submit",
        "--kind",
        "hash",
        "--input",
        "hello",
        "--priority",
        "5",
    ]);
    assert_eq!(second.trim(), "2");

    let listing = server.cli_ok(&["jobs"]);
    assert!(listing.contains("cma_es"), "{listing}");
    assert!(listing.contains("hash"), "{listing}");
    let page = json(&server.cli_ok(&["jobs", "--json"]));
    assert_eq!(page["total"], 2);
    assert_eq!(page["jobs"][0]["id"], 2, "newest first: {page}");

    let shown = server.cli_ok(&["show", "1"]);
    assert!(shown.contains("queued"), "{shown}");
    assert!(
        shown.contains("CartPole-v1"),
        "the default env is shown: {shown}"
    );
    let shown = json(&server.cli_ok(&["show", "1", "--json"]));
    assert_eq!(shown["spec"]["max_evals"], 1000);

    let cancelled = server.cli_ok(&["cancel", "1"]);
    assert!(cancelled.contains("cancelled"), "{cancelled}");
    assert!(server.cli_ok(&["show", "1"]).contains("cancelled"));
    let queued = json(&server.cli_ok(&["jobs", "--state", "queued", "--json"]));
    assert_eq!(queued["total"], 1);

    // A job that does not exist is an error with a message, not a crash.
    let out = server.cli(&["show", "99"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("99") && err.contains("not found"), "{err}");
}

#[test]
fn submit_list_show_cancel_through_http() {
    let server = Server::start();
    let t = Some(server.token.as_str());
    let base = server.url();
    let (status, body) = post_json(
        &format!("{base}/api/v1/jobs"),
        t,
        r#"{"method": "openai_es", "env": "sphere", "max_evals": 500, "seed": 7, "params": {"pop_size": 64}}"#,
    );
    assert_eq!(status, 201, "{body}");
    let id = json(&body)["id"].as_u64().unwrap();

    let (status, body) = post_json(
        &format!("{base}/api/v1/jobs/batch"),
        t,
        r#"{"jobs": [{"kind": "upper", "input": "a"}, {"kind": "reverse", "input": "b"}]}"#,
    );
    assert_eq!(status, 201, "{body}");
    assert_eq!(json(&body)["ids"], serde_json::json!([id + 1, id + 2]));

    let (status, body) = http("GET", &format!("{base}/api/v1/jobs?limit=2"), t, None);
    assert_eq!(status, 200);
    let page = json(&body);
    assert_eq!(page["total"], 3);
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2);
    let next = page["next_before"].as_u64().expect("a next page");
    let (_, body) = http(
        "GET",
        &format!("{base}/api/v1/jobs?limit=2&before={next}"),
        t,
        None,
    );
    assert_eq!(json(&body)["jobs"][0]["id"], id);

    let (status, body) = http("GET", &format!("{base}/api/v1/jobs/{id}"), t, None);
    assert_eq!(status, 200);
    let job = json(&body);
    assert_eq!(job["state"], "queued");
    assert_eq!(job["spec"]["params"]["pop_size"], 64);
    assert_eq!(job["spec"]["seed"], 7);

    let (status, body) = post_json(&format!("{base}/api/v1/jobs/{id}/cancel"), t, "{}");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["job"]["state"], "cancelled");
    let msg = assert_error(
        "cancel twice",
        post_json(&format!("{base}/api/v1/jobs/{id}/cancel"), t, "{}"),
        409,
    );
    assert!(msg.contains("already ended"), "{msg}");

    let (_, body) = http("GET", &format!("{base}/api/v1/status"), t, None);
    let status = json(&body);
    assert_eq!(status["jobs"]["cancelled"], 1);
    assert_eq!(status["jobs"]["queued"], 2);
    assert_eq!(
        status["jobs"]["lost"], 0,
        "every state is present: {status}"
    );
}

// ---- auth over the one route table -----------------------------------------------------------

#[test]
fn every_route_enforces_its_scope() {
    let server = Server::start();
    let admin = server.client();
    let job = admin.submit(&JobSpec::experiment("cma_es", 100)).unwrap();
    let worker_id = register(&admin, "authw", &[JobKind::Hash]);
    let worker_token = admin.create_token("w1", Scope::Worker).unwrap().token;
    let read_token = admin.create_token("r1", Scope::Read).unwrap().token;
    let tokens = [
        (Scope::Admin, server.token.clone()),
        (Scope::Worker, worker_token),
        (Scope::Read, read_token),
    ];
    let allowed = |have: Scope, need: Scope| have == Scope::Admin || have == need;

    let mut checked = 0;
    for route in ROUTES {
        let url = format!("{}{}", server.url(), fill(route.path, job, &worker_id));
        let what = format!("{} {} ({})", route.method, route.path, route.doc);
        let Some(need) = route.scope else {
            let (status, body) = http(route.method, &url, None, None);
            assert!(
                (200..300).contains(&status),
                "{what} is open but answered {status}: {body}"
            );
            continue;
        };
        let msg = assert_error(&what, http(route.method, &url, None, None), 401);
        assert!(msg.contains("token"), "{what}: {msg}");
        assert_error(
            &what,
            http(route.method, &url, Some("not-a-real-token"), None),
            401,
        );
        for (have, token) in &tokens {
            if !allowed(*have, need) {
                let msg = assert_error(
                    &format!("{what} with a {} token", have.as_str()),
                    http(route.method, &url, Some(token), None),
                    403,
                );
                assert!(msg.contains(need.as_str()), "{what}: {msg}");
            }
        }
        // The spec of the issue, spelled out: read tokens never mutate, worker tokens never
        // administer.
        if route.method != "GET" {
            assert!(!allowed(Scope::Read, need), "{what} is writable by read");
        }
        if need == Scope::Admin {
            assert!(!allowed(Scope::Worker, need), "{what} is open to workers");
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} scoped routes");

    // Tokens that may call a route get past auth (whatever the handler then says about the
    // empty body). Done last: these calls change state.
    for route in ROUTES.iter().filter(|r| r.scope.is_some()) {
        let url = format!("{}{}", server.url(), fill(route.path, job, &worker_id));
        for (have, token) in &tokens {
            if allowed(*have, route.scope.unwrap()) {
                let (status, body) = http(route.method, &url, Some(token), None);
                assert!(
                    status != 401 && status != 403,
                    "{} {} with a {} token: {status} {body}",
                    route.method,
                    route.path,
                    have.as_str()
                );
            }
        }
    }
}

#[test]
fn every_route_refuses_a_body_over_its_limit() {
    let server = Server::start();
    let admin = server.client();
    let job = admin.submit(&JobSpec::experiment("cma_es", 100)).unwrap();
    let worker_id = register(&admin, "limitw", &[JobKind::Hash]);
    let config = gaia_core::server::ServerConfig::new("unused", "unused");
    for route in ROUTES {
        let limit = route.endpoint.body().limit(&config);
        let path = fill(route.path, job, &worker_id);
        // Declared, not sent: the router must refuse it from the header alone.
        let request = format!(
            "{} {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
             content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            route.method,
            server.token,
            limit + 1
        );
        let msg = assert_error(
            &format!("{} {} with {} bytes", route.method, route.path, limit + 1),
            raw_http(server.port, request.as_bytes()),
            413,
        );
        assert!(msg.contains(&limit.to_string()), "{msg}");
    }
    // A chunked body with no declared length is cut off at the same limit.
    let body = "x".repeat((1 << 20) + 10);
    let request = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         transfer-encoding: chunked\r\nconnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        server.token,
        body.len()
    );
    assert_error(
        "chunked submit",
        raw_http(server.port, request.as_bytes()),
        413,
    );
    assert_eq!(admin.job(job).unwrap().id, job, "still serving");
}

#[test]
fn api_doc_lists_every_route() {
    let doc = std::fs::read_to_string(repo_root().join("docs/API.md")).unwrap();
    let missing: Vec<String> = ROUTES
        .iter()
        .map(|r| format!("{} {}`", r.method, r.path))
        .filter(|needle| !doc.contains(needle.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/API.md does not document these routes (write them as `METHOD /path`): {missing:?}"
    );
}

#[test]
fn links_may_carry_the_token_in_the_query() {
    let server = Server::start();
    let read = server.client().create_token("viewer", Scope::Read).unwrap();
    let (status, body) = http(
        "GET",
        &format!("{}/api/v1/jobs?token={}", server.url(), read.token),
        None,
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_error(
        "wrong query token",
        http(
            "GET",
            &format!("{}/api/v1/jobs?token=wrong", server.url()),
            None,
            None,
        ),
        401,
    );
    // Only reads: a URL that would change something does not carry a token.
    let job = server
        .client()
        .submit(&JobSpec::builtin(JobKind::Hash, "x"))
        .unwrap();
    for (method, path) in [
        ("POST", format!("/api/v1/jobs/{job}/cancel")),
        ("POST", "/api/v1/tokens".to_string()),
    ] {
        let msg = assert_error(
            &format!("{method} {path} with ?token="),
            http(
                method,
                &format!("{}{path}?token={}", server.url(), server.token),
                None,
                None,
            ),
            401,
        );
        assert!(msg.contains("Authorization"), "{msg}");
    }
    assert_eq!(server.client().job(job).unwrap().state, JobState::Queued);
}

#[test]
fn open_routes_answer_without_a_token() {
    let server = Server::start();
    let (status, body) = http("GET", &format!("{}/healthz", server.url()), None, None);
    assert_eq!(status, 200);
    let v = json(&body);
    assert_eq!(v["ok"], true);
    assert_eq!(v["version"], gaia_core::VERSION);
    let (status, body) = http("GET", &format!("{}/", server.url()), None, None);
    assert_eq!(status, 200);
    assert!(body.contains("<html") || body.contains("<!doctype") || body.contains("<!DOCTYPE"));
    let msg = assert_error(
        "unknown page",
        http("GET", &format!("{}/nope.html", server.url()), None, None),
        404,
    );
    assert!(msg.contains("nope.html"), "{msg}");
}

// ---- crash safety ----------------------------------------------------------------------------

#[test]
fn acknowledged_row_batches_survive_kill_9() {
    const BATCH: u64 = 500;
    let mut server = Server::start();
    let client = server.client();
    let others: Vec<u64> = (0..3)
        .map(|i| {
            client
                .submit(&JobSpec::builtin(JobKind::Upper, &format!("queued {i}")))
                .unwrap()
        })
        .collect();
    let worker = register(&client, "crashw", &[JobKind::Experiment]);
    let id = client
        .submit(&JobSpec::experiment("cma_es", 1_000_000))
        .unwrap();
    let a = claim(&client, &worker, &[JobKind::Experiment], 0).expect("the job is claimed");
    assert_eq!(a.job.id, id);

    // One client inserts batches back to back, counting what the server acknowledged.
    let acked = Arc::new(AtomicU64::new(0));
    let inserter = {
        let (client, acked, a) = (client.clone(), acked.clone(), a.clone());
        std::thread::spawn(move || {
            for b in 0.. {
                let batch = row_batch(&a, gen_rows(b * BATCH, (b + 1) * BATCH));
                match client.post_rows(id, &batch, true) {
                    Ok(ack) => {
                        assert_eq!((ack.stored, ack.skipped), (BATCH, 0));
                        acked.store((b + 1) * BATCH, Ordering::SeqCst);
                    }
                    Err(_) => return,
                }
            }
        })
    };
    wait_for("20 acknowledged batches", Duration::from_secs(120), || {
        (acked.load(Ordering::SeqCst) >= 20 * BATCH).then_some(())
    });
    server.kill9();
    inserter.join().unwrap();
    let acked = acked.load(Ordering::SeqCst);

    server.restart();
    let client = server.client();
    let got = client.rows(id, None, Some(a.attempt)).unwrap();
    let n = got.rows.len() as u64;
    assert!(n >= acked, "{n} rows stored but {acked} were acknowledged");
    assert!(
        n <= acked + BATCH,
        "{n} rows for {acked} acknowledged and one batch in flight"
    );
    assert_eq!(n % BATCH, 0, "a partial batch was stored: {n} rows");
    for (i, r) in got.rows.iter().enumerate() {
        assert_eq!(r.seq, i as u64, "rows are not a contiguous prefix");
    }
    assert_eq!(
        got.rows[7],
        gen_rows(7, 8)[0],
        "a row reads back as written"
    );

    let job = client.job(id).unwrap();
    assert_eq!(job.state, JobState::Running);
    assert_eq!((job.attempt, job.lease), (a.attempt, Some(a.lease)));
    assert_eq!(job.progress.rows, n, "progress agrees with the rows");
    for other in others {
        assert_eq!(client.job(other).unwrap().state, JobState::Queued);
    }

    // The worker carries on where it was: a retried batch is skipped, the next one stored.
    let ack = client
        .post_rows(id, &row_batch(&a, gen_rows(n - BATCH, n)), true)
        .unwrap();
    assert_eq!((ack.stored, ack.skipped), (0, BATCH));
    let ack = client
        .post_rows(id, &row_batch(&a, gen_rows(n, n + BATCH)), false)
        .unwrap();
    assert_eq!((ack.stored, ack.skipped), (BATCH, 0));
}

#[test]
fn rows_read_back_whole_by_range_and_downsampled() {
    let server = Server::start();
    let client = server.client();
    let worker = register(&client, "roww", &[JobKind::Experiment]);
    let id = client
        .submit(&JobSpec::experiment("cma_es", 100_000))
        .unwrap();
    let a = claim(&client, &worker, &[JobKind::Experiment], 0).unwrap();
    for b in 0..20 {
        let batch = row_batch(&a, gen_rows(b * 500, (b + 1) * 500));
        client.post_rows(id, &batch, b % 2 == 0).unwrap();
    }
    let whole = client.rows(id, None, None).unwrap();
    assert_eq!((whole.total, whole.downsampled), (10_000, false));
    assert_same_rows(&whole.rows, &gen_rows(0, 10_000));

    let (status, body) = http(
        "GET",
        &format!(
            "{}/api/v1/jobs/{id}/rows?x=generation&from=10&to=19",
            server.url()
        ),
        Some(&server.token),
        None,
    );
    assert_eq!(status, 200);
    let part: gaia_core::protocol::RowsResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(part.total, 10);
    assert_same_rows(&part.rows, &gen_rows(9, 19));

    let curve = client.rows(id, Some(100), None).unwrap();
    assert!(curve.downsampled);
    assert_eq!(curve.total, 10_000);
    assert!(curve.rows.len() <= 100);
    let lowest = curve.rows.iter().filter_map(|r| r.mean).fold(0.0, f64::min);
    assert_eq!(lowest, -9_999.0, "the extreme survives downsampling");

    assert_error(
        "whole rows of an unknown job",
        http(
            "GET",
            &format!("{}/api/v1/jobs/999/rows", server.url()),
            Some(&server.token),
            None,
        ),
        404,
    );
}

// ---- bad input -------------------------------------------------------------------------------

#[test]
fn bad_input_gets_a_clear_4xx_and_the_server_keeps_serving() {
    let server = Server::start();
    let base = server.url();
    let t = Some(server.token.as_str());
    let jobs = format!("{base}/api/v1/jobs");

    // Oversized bodies: refused from the announced length before a byte is read, and when
    // sent without a length (chunked) as soon as the limit is passed; the limit is named. Raw
    // sockets, because the server answers before reading the rest of the body and an HTTP
    // client still writing it may see the connection close instead of the answer.
    let auth = format!("authorization: Bearer {}\r\n", server.token);
    let announced = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{{",
        2 << 20
    );
    let msg = assert_error(
        "oversized",
        raw_http(server.port, announced.as_bytes()),
        413,
    );
    assert!(msg.contains("limit"), "{msg}");
    let size = (1 << 20) + 100;
    let mut chunked = format!(
        "POST /api/v1/jobs HTTP/1.1\r\nhost: x\r\n{auth}content-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n{size:x}\r\n"
    )
    .into_bytes();
    chunked.extend(std::iter::repeat_n(b' ', size));
    chunked.extend(b"\r\n0\r\n\r\n");
    let msg = assert_error("oversized, chunked", raw_http(server.port, &chunked), 413);
    assert!(msg.contains("limit"), "{msg}");

    let cases: &[(&str, &str, &str)] = &[
        ("malformed JSON", r#"{"method": "cma_es""#, "invalid JSON"),
        ("empty body", "", "JSON body"),
        ("wrong type", r#"{"method": 5}"#, "invalid type"),
        (
            "negative max-evals",
            r#"{"method": "cma_es", "max_evals": -5}"#,
            "-5",
        ),
        (
            "zero max-evals",
            r#"{"method": "cma_es", "max_evals": 0}"#,
            "max_evals",
        ),
        (
            "unknown field",
            r#"{"method": "cma_es", "colour": "red"}"#,
            "colour",
        ),
        ("bad method name", r#"{"method": "../x"}"#, "method"),
        (
            "bad env name",
            r#"{"method": "cma_es", "env": "a/b"}"#,
            "environment",
        ),
        (
            "unknown kind",
            r#"{"kind": "nuclear", "input": "x"}"#,
            "nuclear",
        ),
        ("no method", r#"{}"#, "method"),
        (
            "bad tag",
            r#"{"method": "cma_es", "requirements": {"tags": ["a b"]}}"#,
            "tag",
        ),
        (
            "wait job with a non-number",
            r#"{"kind": "wait", "input": "soon"}"#,
            "wait",
        ),
    ];
    for (what, body, needle) in cases {
        let msg = assert_error(what, post_json(&jobs, t, body), 400);
        assert!(msg.contains(needle), "{what}: {msg:?} lacks {needle:?}");
    }
    let msg = assert_error(
        "not UTF-8",
        http(
            "POST",
            &jobs,
            t,
            Some(("application/json", vec![b'{', 0xff, 0xfe, b'}'])),
        ),
        400,
    );
    assert!(msg.contains("JSON"), "{msg}");

    // Unknown jobs, routes and methods.
    let msg = assert_error(
        "unknown job",
        http("GET", &format!("{jobs}/999999"), t, None),
        404,
    );
    assert!(msg.contains("999999"), "{msg}");
    assert_error(
        "cancel unknown job",
        post_json(&format!("{jobs}/999999/cancel"), t, "{}"),
        404,
    );
    assert_error(
        "rows of unknown job",
        http("GET", &format!("{jobs}/999999/rows"), t, None),
        404,
    );
    assert_error(
        "non-numeric id",
        http("GET", &format!("{jobs}/abc"), t, None),
        404,
    );
    assert_error(
        "no such route",
        http("GET", &format!("{base}/api/v1/nothing"), t, None),
        404,
    );
    assert_error("wrong method", http("DELETE", &jobs, t, None), 405);

    // Bad query parameters.
    for q in ["state=bogus", "limit=abc", "before=-1"] {
        assert_error(q, http("GET", &format!("{jobs}?{q}"), t, None), 400);
    }

    // A worker's calls: garbage postcard, a stale lease, an unknown worker.
    let client = server.client();
    let worker = register(&client, "badw", &[JobKind::Hash]);
    let id = client
        .submit(&JobSpec::builtin(JobKind::Hash, "x"))
        .unwrap();
    let a = claim(&client, &worker, &[JobKind::Hash], 0).unwrap();
    let msg = assert_error(
        "garbage postcard",
        http(
            "POST",
            &format!("{jobs}/{id}/rows"),
            t,
            Some((gaia_core::protocol::POSTCARD_CONTENT_TYPE, vec![0xff; 10])),
        ),
        400,
    );
    assert!(msg.contains("postcard"), "{msg}");
    let stale = format!(
        r#"{{"attempt": {}, "lease": {}, "rows": [{{"seq": 0}}]}}"#,
        a.attempt,
        a.lease + 1
    );
    let msg = assert_error(
        "stale lease",
        post_json(&format!("{jobs}/{id}/rows"), t, &stale),
        409,
    );
    assert!(msg.contains("no longer current"), "{msg}");
    let msg = assert_error(
        "bad metric name",
        post_json(
            &format!("{jobs}/{id}/rows"),
            t,
            &format!(
                r#"{{"attempt": {}, "lease": {}, "rows": [{{"seq": 0, "metrics": [["../x", 1.0]]}}]}}"#,
                a.attempt, a.lease
            ),
        ),
        400,
    );
    assert!(msg.contains("metric"), "{msg}");
    assert_error(
        "bad file name",
        http(
            "PUT",
            &format!(
                "{jobs}/{id}/files/..%2Fescape?attempt={}&lease={}",
                a.attempt, a.lease
            ),
            t,
            Some(("application/octet-stream", b"x".to_vec())),
        ),
        400,
    );
    assert_error(
        "heartbeat of an unknown worker",
        post_json(
            &format!("{base}/api/v1/workers/w-nobody/heartbeat"),
            t,
            "{}",
        ),
        404,
    );
    assert_error(
        "bad worker name",
        post_json(
            &format!("{base}/api/v1/workers/register"),
            t,
            r#"{"name": "../x", "version": "1", "kinds": ["hash"], "slots": 1}"#,
        ),
        400,
    );
    assert_error(
        "bad token name",
        post_json(
            &format!("{base}/api/v1/tokens"),
            t,
            r#"{"name": "a b", "scope": "read"}"#,
        ),
        400,
    );
    assert_error(
        "bad scope",
        post_json(
            &format!("{base}/api/v1/tokens"),
            t,
            r#"{"name": "ok", "scope": "root"}"#,
        ),
        400,
    );

    // Nothing of the above was stored, and the server still serves.
    let (status, _) = http("GET", &format!("{base}/healthz"), None, None);
    assert_eq!(status, 200);
    let (status, body) = post_json(&jobs, t, r#"{"method": "cma_es"}"#);
    assert_eq!(status, 201, "{body}");
    assert_eq!(json(&body)["id"], id + 1);
    assert!(client.rows(id, None, None).unwrap().rows.is_empty());
}

#[test]
fn a_protocol_mismatch_says_which_side_to_upgrade() {
    let server = Server::start();
    let call = |version: &str| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .get(format!("{}/api/v1/jobs", server.url()))
            .header("authorization", format!("Bearer {}", server.token))
            .header(PROTOCOL_HEADER, version)
            .call()
            .unwrap();
        (
            resp.status().as_u16(),
            resp.body_mut().read_to_string().unwrap(),
        )
    };
    let current = gaia_core::protocol::PROTOCOL_VERSION;
    assert_eq!(call(&current.to_string()).0, 200);
    let msg = assert_error("newer client", call(&(current + 1).to_string()), 400);
    assert!(msg.contains("upgrade the server"), "{msg}");
    let msg = assert_error("older client", call(&(current - 1).to_string()), 400);
    assert!(msg.contains("upgrade the client"), "{msg}");
    assert_error("garbage", call("one"), 400);
}

// ---- long poll -------------------------------------------------------------------------------

#[test]
fn a_waiting_claim_gets_a_new_job_at_once() {
    let server = Server::start();
    let client = server.client();
    let worker = register(&client, "pollw", &[JobKind::Reverse]);

    // With nothing queued, a claim waits out its time and answers "no job".
    let t0 = Instant::now();
    assert!(claim(&client, &worker, &[JobKind::Reverse], 300).is_none());
    assert!(t0.elapsed() >= Duration::from_millis(300));

    let claimer = {
        let (client, worker) = (client.clone(), worker.clone());
        std::thread::spawn(move || {
            let a = claim(&client, &worker, &[JobKind::Reverse], 20_000);
            (a, Instant::now())
        })
    };
    // The claim must be parked on the server before the submit; nothing outside the server can
    // observe that, so give it a moment (the assertion below holds either way).
    std::thread::sleep(Duration::from_millis(300));
    let id = client
        .submit(&JobSpec::builtin(JobKind::Reverse, "abc"))
        .unwrap();
    // From the submit's answer (its commit is done): the issue's 100 ms, asserted generously for
    // a debug build on a loaded 2-core machine; a server that polled its queue would miss it.
    let submitted = Instant::now();
    let (a, answered) = claimer.join().unwrap();
    let a = a.expect("the waiting claim got the job");
    assert_eq!(a.job.id, id);
    let latency = answered.saturating_duration_since(submitted);
    assert!(
        latency < Duration::from_millis(250),
        "answered {latency:?} after the submit"
    );
}

#[test]
fn a_stale_attempt_s_upload_cannot_replace_the_current_attempt_s_file() {
    let server = Server::start();
    let c = server.client();
    let w = register(&c, "filesw", &[JobKind::Hash]);
    let id = c.submit(&JobSpec::builtin(JobKind::Hash, "x")).unwrap();
    let a1 = claim(&c, &w, &[JobKind::Hash], 5000).unwrap();

    // Attempt 1 starts uploading while its lease is current, and stalls half way.
    let mut slow = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        slow,
        "PUT /api/v1/jobs/{id}/files/result.txt?attempt={}&lease={} HTTP/1.1\r\nhost: x\r\n\
         authorization: Bearer {}\r\ncontent-length: 20\r\nconnection: close\r\n\r\nOLD-stale-",
        a1.attempt, a1.lease, server.token
    )
    .unwrap();
    slow.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    // Meanwhile the job moves on to attempt 2, which uploads its own file.
    c.requeue(
        id,
        &gaia_core::protocol::RequeueRequest {
            attempt: a1.attempt,
            lease: a1.lease,
            reason: None,
            preempted: false,
        },
    )
    .unwrap();
    let a2 = claim(&c, &w, &[JobKind::Hash], 5000).unwrap();
    assert_eq!(a2.job.id, id);
    assert!(a2.attempt > a1.attempt);
    let new = server.dir.path().join("new.txt");
    std::fs::write(&new, "NEW-attempt-2").unwrap();
    c.upload_file(id, a2.attempt, a2.lease, "result.txt", &new)
        .unwrap();

    // Attempt 1's upload ends now: refused, and it changes nothing.
    slow.write_all(b"0123456789").unwrap();
    let mut answer = String::new();
    let _ = slow.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 409"), "{answer}");
    let mut got = Vec::new();
    c.download(&format!("/api/v1/jobs/{id}/files/result.txt"), &mut got)
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&got), "NEW-attempt-2");
    let on_disk: Vec<String> =
        std::fs::read_dir(server.data_dir().join("files").join(id.to_string()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
    assert_eq!(
        on_disk,
        vec!["result.txt".to_string()],
        "no staged leftovers"
    );
    let files = c.files(id).unwrap().files;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].size, 13);
}

#[test]
fn a_claim_abandoned_by_its_client_does_not_take_the_next_job() {
    let server = Server::start();
    let client = server.client();
    let gone = register(&client, "gonew", &[JobKind::Upper]);
    let alive = register(&client, "alivew", &[JobKind::Upper]);

    // A worker asks for work, then dies while its claim waits.
    let mut s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    let body = format!(
        r#"{{"worker_id": "{gone}", "capabilities": {{"kinds": ["upper"]}}, "wait_ms": 30000}}"#
    );
    write!(
        s,
        "POST /api/v1/claim HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        server.token,
        body.len()
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(s);
    std::thread::sleep(Duration::from_millis(300));

    let id = client
        .submit(&JobSpec::builtin(JobKind::Upper, "abc"))
        .unwrap();
    let a = claim(&client, &alive, &[JobKind::Upper], 5_000)
        .expect("the live worker gets the job, not the dead claim");
    assert_eq!(a.job.id, id);
    assert_eq!(a.attempt, 1);
}

// ---- tokens ----------------------------------------------------------------------------------

#[test]
fn a_read_token_reads_cannot_write_and_is_refused_once_revoked() {
    let server = Server::start();
    server.cli_ok(&["submit", "--method", "cma_es"]);
    let token = server.cli_ok(&["token", "create", "--scope", "read", "--name", "viewer"]);
    let token = token.trim();
    assert_eq!(token.len(), 64, "{token:?}");
    assert!(server.cli_ok(&["token", "list"]).contains("viewer"));

    let out = cli_as(&server, token, &["jobs"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("cma_es"));
    let out = cli_as(&server, token, &["submit", "--method", "cma_es"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("403") && err.contains("read token"), "{err}");

    server.cli_ok(&["token", "revoke", "viewer"]);
    assert!(!server.cli_ok(&["token", "list"]).contains("viewer"));
    let out = cli_as(&server, token, &["jobs"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("401") && err.contains("invalid token"),
        "{err}"
    );
    assert_error(
        "revoked token",
        http(
            "GET",
            &format!("{}/api/v1/jobs", server.url()),
            Some(token),
            None,
        ),
        401,
    );
    // Names are unique while they live, and free again once revoked.
    server.cli_ok(&["token", "create", "--scope", "worker", "--name", "viewer"]);
    let out = server.cli(&["token", "create", "--scope", "read", "--name", "viewer"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists"));
}

// ---- shutdown --------------------------------------------------------------------------------

#[test]
fn sigterm_stops_the_server_promptly_with_a_claim_and_an_event_stream_open() {
    let mut server = Server::start();
    let client = server.client();
    let id = client.submit(&JobSpec::experiment("cma_es", 10)).unwrap();
    let worker = register(&client, "termw", &[JobKind::Hash]);
    let claimer = {
        let (client, worker) = (client.clone(), worker.clone());
        std::thread::spawn(move || {
            client.claim(&ClaimRequest {
                worker_id: worker,
                capabilities: Capabilities {
                    kinds: vec![JobKind::Hash],
                    ..Capabilities::default()
                },
                wait_ms: 60_000,
                finished: None,
            })
        })
    };
    // An event stream, open until the server goes.
    let mut sse = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    write!(
        sse,
        "GET /api/v1/events?stream=1&token={} HTTP/1.1\r\nhost: x\r\n\r\n",
        server.token
    )
    .unwrap();
    let mut first = [0u8; 256];
    let n = sse.read(&mut first).unwrap();
    assert!(
        String::from_utf8_lossy(&first[..n]).contains("200"),
        "the stream opened"
    );
    std::thread::sleep(Duration::from_millis(300)); // let the claim park (see the long-poll test)

    let t0 = Instant::now();
    let status = server.stop();
    let took = t0.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(5), "took {took:?} to stop");
    // The waiting claim was answered "no job" (or its connection closed), not left hanging.
    match claimer.join().unwrap() {
        Ok(a) => assert!(a.is_none()),
        Err(e) => assert!(e.is_unreachable(), "{e}"),
    }
    // The stream ended.
    sse.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let _ = sse.read_to_end(&mut rest);

    server.restart();
    let job = server.client().job(id).unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(server.client().workers().unwrap().workers.len(), 1);
}

/// Regression: the SIGTERM handler was installed only when the shutdown future was first
/// polled, so a SIGTERM right after "listening" killed the server uncleanly.
#[test]
fn sigterm_right_after_start_is_a_clean_stop() {
    for _ in 0..5 {
        let mut server = Server::start();
        let status = server.stop();
        assert!(status.success(), "exit status {status:?}");
    }
}

// ---- leases end to end -----------------------------------------------------------------------

#[test]
fn a_silent_worker_loses_its_job_to_the_next_attempt() {
    let server = Server::start_with(&["--lease-timeout", "1", "--heartbeat", "0.5"]);
    let client = server.client();
    let w1 = register(&client, "silent", &[JobKind::Sum]);
    let w2 = register(&client, "diligent", &[JobKind::Sum]);
    let id = client
        .submit(&JobSpec::builtin(JobKind::Sum, "1 2"))
        .unwrap();
    let first = claim(&client, &w1, &[JobKind::Sum], 0).unwrap();
    // w1 never heartbeats: its lease expires and the job comes back to w2's waiting claim.
    let second = claim(&client, &w2, &[JobKind::Sum], 20_000).expect("requeued in time");
    assert_eq!((second.job.id, second.attempt), (id, 2));
    let err = client
        .complete(
            id,
            &CompleteRequest {
                attempt: first.attempt,
                lease: first.lease,
                outcome: Outcome::Succeeded,
                exit_code: Some(0),
                duration_ms: 1,
                error: None,
                result: Some(serde_json::json!(3)),
            },
        )
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    let workers = client.workers().unwrap().workers;
    let silent = workers.iter().find(|w| w.id == w1).unwrap();
    assert_eq!(silent.state.as_str(), "offline");
}

// ---- the on-disk schema ----------------------------------------------------------------------

/// The database written by schema version 1 (see `write_schema_v1_fixture`).
fn fixture_dir() -> PathBuf {
    repo_root().join("tests/data/v1")
}

fn copy_fixture_to(data_dir: &Path) {
    std::fs::create_dir_all(data_dir).unwrap();
    std::fs::copy(
        fixture_dir().join("gaia.redb"),
        data_dir.join(gaia_core::store::DB_FILE),
    )
    .unwrap();
}

/// Writes `tests/data/v1/` from a real server. Run once per schema version, by hand:
/// `cargo test -p gaia-cli --test tests -- --ignored write_schema_v1_fixture`.
#[test]
#[ignore = "writes the committed fixture; run by hand when the schema version changes"]
fn write_schema_v1_fixture() {
    assert_eq!(
        gaia_core::store::SCHEMA_VERSION,
        1,
        "write a v2 fixture instead"
    );
    let mut server = Server::start();
    let client = server.client();
    let exp = client
        .submit(&JobSpec {
            seed: Some(3),
            ..JobSpec::experiment("cma_es", 6400)
        })
        .unwrap();
    let hash = client
        .submit(&JobSpec {
            priority: 5,
            ..JobSpec::builtin(JobKind::Hash, "hello")
        })
        .unwrap();
    let cancelled = client
        .submit(&JobSpec::builtin(JobKind::Wait, "10"))
        .unwrap();
    client.cancel(cancelled).unwrap();
    let worker = register(&client, "fixture-worker", &[JobKind::Experiment]);
    let a = claim(&client, &worker, &[JobKind::Experiment], 0).unwrap();
    client
        .post_rows(exp, &row_batch(&a, gen_rows(0, 50)), true)
        .unwrap();
    client
        .post_logs(
            exp,
            &LogBatch {
                attempt: a.attempt,
                lease: a.lease,
                first: 0,
                lines: vec![
                    LogInput {
                        stream: Stream::Stdout,
                        text: "starting cma_es".into(),
                        at: 0,
                        rows_before: None,
                    },
                    LogInput {
                        stream: Stream::Stderr,
                        text: "WARN slow env".into(),
                        at: 0,
                        rows_before: None,
                    },
                ],
            },
        )
        .unwrap();
    client
        .complete(
            exp,
            &CompleteRequest {
                attempt: a.attempt,
                lease: a.lease,
                outcome: Outcome::Succeeded,
                exit_code: Some(0),
                duration_ms: 1234,
                error: None,
                result: Some(serde_json::json!({"best_ever": -12.25})),
            },
        )
        .unwrap();
    let token = client.create_token("fixture-reader", Scope::Read).unwrap();
    assert_eq!((exp, hash, cancelled), (1, 2, 3));
    assert!(server.stop().success());
    let dir = fixture_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(server.data_dir().join("gaia.redb"), dir.join("gaia.redb")).unwrap();
    std::fs::write(dir.join("read.token"), format!("{}\n", token.token)).unwrap();
}

#[test]
fn a_database_written_by_schema_v1_still_opens_and_reads_back() {
    // Through the library: open a copy (opening may write) and read every table family.
    let tmp = tempfile::tempdir().unwrap();
    copy_fixture_to(tmp.path());
    {
        let store = gaia_core::store::Store::open(tmp.path()).unwrap();
        let read = store.read().unwrap();
        let exp = read.job(1).unwrap().expect("job 1");
        assert_eq!(exp.state, JobState::Succeeded);
        assert_eq!(exp.spec.method(), Some("cma_es"));
        assert_eq!(exp.spec.env(), Some("CartPole-v1"));
        assert_eq!(
            (exp.spec.max_evals(), exp.spec.seed()),
            (Some(6400), Some(3))
        );
        assert_eq!(exp.result, Some(serde_json::json!({"best_ever": -12.25})));
        assert_eq!(exp.progress.rows, 50);
        assert_eq!((exp.log_lines, exp.warnings), (2, 1));
        assert_eq!(exp.attempts.len(), 1);
        assert_eq!(read.rows(1, 1).unwrap(), gen_rows(0, 50));
        let logs = read.logs(1, 0, 10).unwrap();
        assert_eq!(logs[0].text, "starting cma_es");
        assert_eq!(read.job(2).unwrap().unwrap().state, JobState::Queued);
        assert_eq!(read.job(2).unwrap().unwrap().spec.priority, 5);
        assert_eq!(read.job(3).unwrap().unwrap().state, JobState::Cancelled);
        assert_eq!(read.job_total().unwrap(), 3);
        let workers = read.workers().unwrap();
        assert_eq!(workers.len(), 1);
        assert_eq!(workers[0].name, "fixture-worker");
        let tokens = read.tokens().unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(
            (tokens[0].name.as_str(), tokens[0].scope),
            ("fixture-reader", Scope::Read)
        );
        assert!(read.recent_events(100).unwrap().len() >= 5);
    }

    // Through a real server: the stored token still authenticates; new ids continue.
    let mut server = Server::start();
    assert!(server.stop().success());
    std::fs::remove_file(server.data_dir().join(gaia_core::store::DB_FILE)).unwrap();
    copy_fixture_to(&server.data_dir());
    server.restart();
    let token = std::fs::read_to_string(fixture_dir().join("read.token")).unwrap();
    let reader = server.client_with(token.trim());
    let list = reader.jobs(&Default::default()).unwrap();
    assert_eq!(list.total, 3);
    let rows = reader.rows(1, Some(10), None).unwrap();
    assert!(rows.downsampled);
    assert_eq!(rows.total, 50);
    let id = server
        .client()
        .submit(&JobSpec::builtin(JobKind::Hash, "after"))
        .unwrap();
    assert_eq!(id, 4);
}

// ---- HTTPS -----------------------------------------------------------------------------------

/// A TLS-terminating proxy in front of `backend` (what Caddy is in production), with the test
/// certificate for localhost / 127.0.0.1; returns its port.
fn tls_proxy(backend: u16) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = repo_root().join("tests/data/tls");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().map_while(Result::ok) {
            let config = config.clone();
            std::thread::spawn(move || {
                let pause = Some(Duration::from_millis(5));
                let Ok(mut up) = TcpStream::connect(("127.0.0.1", backend)) else {
                    return;
                };
                tcp.set_read_timeout(pause).unwrap();
                up.set_read_timeout(pause).unwrap();
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut buf = vec![0u8; 64 * 1024];
                let idle = |e: &std::io::Error| {
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                };
                loop {
                    match tls.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            if up.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                        Err(e) if idle(&e) => {}
                        Err(_) => return,
                    }
                    match up.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            if tls.write_all(&buf[..n]).and_then(|()| tls.flush()).is_err() {
                                return;
                            }
                        }
                        Err(e) if idle(&e) => {}
                        Err(_) => return,
                    }
                }
            });
        }
    });
    port
}

#[test]
fn the_client_speaks_https_through_a_tls_proxy() {
    let server = Server::start();
    let port = tls_proxy(server.port);
    let url = format!("https://127.0.0.1:{port}");
    let ca = repo_root().join("tests/data/tls/ca.pem");
    let ca_pem = std::fs::read(&ca).unwrap();

    // The library client, trusting the lab's CA.
    let c = Client::with_ca(&url, Some(server.token.clone()), &ca_pem).unwrap();
    assert_eq!(c.healthz().unwrap()["ok"], true);
    let id = c.submit(&JobSpec::builtin(JobKind::Hash, "hello")).unwrap();

    // A worker over HTTPS: register, long-poll claim, report.
    let _w = Worker::start_via(&server, &url, "tlsw", &["--ca-cert", ca.to_str().unwrap()]);
    let job = wait_done(&c, id, Duration::from_secs(60));
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.worker_name.as_deref(), Some("tlsw"));

    // The CLI, with --ca-cert; without it the certificate is refused, saying so.
    let out = Command::new(gaia_bin())
        .args(["status", "--server", &url, "--ca-cert"])
        .arg(&ca)
        .env("GAIA_TOKEN", &server.token)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("succeeded"));
    let out = Command::new(gaia_bin())
        .args(["status", "--server", &url])
        .env("GAIA_TOKEN", &server.token)
        .env_remove("GAIA_CA_CERT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert!(
        err.contains("certificate") || err.contains("issuer"),
        "{err}"
    );
}

/// Issue 12: a server reachable from the internet with a printed admin token is one mistake
/// away, so `gaia serve` listens on loopback unless `--bind` says otherwise, and says where.
#[test]
fn serve_listens_on_loopback_unless_bind_says_otherwise() {
    use std::io::BufRead;
    let first_lines = |bind: &[&str]| -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(gaia_bin())
            .args([
                "serve",
                "--port",
                "0",
                "--token",
                "test-admin-token-0123456789",
            ])
            .args(bind)
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines: Vec<String> = std::io::BufReader::new(child.stdout.take().unwrap())
            .lines()
            .take(2)
            .map(Result::unwrap)
            .collect();
        let _ = child.kill();
        let _ = child.wait();
        lines
    };
    let by_default = first_lines(&[]);
    assert!(
        by_default[0].contains("listening on http://127.0.0.1:"),
        "{by_default:?}"
    );
    assert!(
        by_default[1].contains("only this machine") && by_default[1].contains("--bind 0.0.0.0"),
        "{by_default:?}"
    );
    let open = first_lines(&["--bind", "0.0.0.0"]);
    assert!(open[0].contains("listening on http://0.0.0.0:"), "{open:?}");
    assert!(open[1].contains("every interface"), "{open:?}");
}

// ---- the generated admin token ---------------------------------------------------------------

/// Starts `gaia serve` with no token anywhere; returns the child, its port and what it printed
/// up to and including the line that names the admin token.
fn serve_without_token(data: &Path) -> (std::process::Child, u16, Vec<String>) {
    use std::io::BufRead;
    let mut child = Command::new(gaia_bin())
        .args(["serve", "--bind", "127.0.0.1", "--port", "0", "--data-dir"])
        .arg(data)
        .env_remove("GAIA_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut port = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            port = rest.rsplit(':').next().and_then(|p| p.trim().parse().ok());
        }
        let done = line.contains("admin token");
        seen.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    (child, port.expect("a port"), seen)
}

#[test]
fn a_server_without_a_token_generates_one_keeps_it_and_local_clients_find_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, port, printed) = serve_without_token(&data);
    let line = printed.last().unwrap();
    let token = line.rsplit(": ").next().unwrap().trim().to_string();
    assert!(line.contains("generated"), "{printed:?}");
    assert!(token.len() >= 32, "{line}");

    // Kept in the data dir, readable by its owner only.
    let file = data.join("admin.token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "admin.token mode {mode:o}");
    }

    // A `gaia` on the same machine, given no token, finds it through the data dir.
    let url = format!("http://127.0.0.1:{port}");
    let cli = |args: &[&str]| {
        Command::new(gaia_bin())
            .args(args)
            .env("GAIA_SERVER", &url)
            .env("GAIA_DATA_DIR", &data)
            .env_remove("GAIA_TOKEN")
            .output()
            .unwrap()
    };
    let out = cli(&["submit", "--kind", "hash", "--input", "x"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A token made through the API is stored hashed: its text is nowhere in the database.
    let made = Client::new(&url, Some(token.clone()))
        .unwrap()
        .create_token("w1", Scope::Worker)
        .unwrap()
        .token;
    // Without the data dir (another machine) and no token: a clear error.
    let out = Command::new(gaia_bin())
        .args(["jobs"])
        .env("GAIA_SERVER", &url)
        .env("GAIA_DATA_DIR", dir.path().join("elsewhere"))
        .env_remove("GAIA_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token"));

    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    assert!(child.wait().unwrap().success());
    let db = std::fs::read(data.join("gaia.redb")).unwrap();
    for secret in [&token, &made] {
        assert!(
            !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a token is stored in clear"
        );
    }

    // Started again: the same token, not a new one, and it is not printed again.
    let (mut child, port, printed) = serve_without_token(&data);
    assert!(!printed.iter().any(|l| l.contains(&token)), "{printed:?}");
    let again = Client::new(&format!("http://127.0.0.1:{port}"), Some(token.clone())).unwrap();
    assert_eq!(again.jobs(&Default::default()).unwrap().jobs.len(), 1);
    // The hashed worker token still authenticates after the restart.
    let worker = Client::new(&format!("http://127.0.0.1:{port}"), Some(made)).unwrap();
    register(&worker, "after-restart", &[JobKind::Hash]);
    let _ = child.kill();
    let _ = child.wait();
}

// ---- SIGPIPE --------------------------------------------------------------------------------

/// Whether process `pid` ignores SIGPIPE, from the `SigIgn` mask in /proc.
fn ignores_sigpipe(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .expect("SigIgn line");
    let mask = u64::from_str_radix(mask.trim(), 16).unwrap();
    mask & (1 << (libc::SIGPIPE - 1)) != 0
}

#[test]
fn long_running_commands_survive_a_closed_connection_and_client_commands_end_quietly_on_one() {
    // With SIGPIPE at its default, writing to a connection whose client had gone (a closed
    // browser tab's event stream, a timed-out request mid-body) killed `gaia serve` without a
    // word: the CLI reset SIGPIPE for `gaia jobs | head`, and that reached the server too. It
    // took a race to hit over the network (seen under the dashboard bench), so this test looks
    // at the cause: serve and work must ignore SIGPIPE (a failed write then ends one connection).
    let server = Server::start();
    assert!(
        ignores_sigpipe(server.child.as_ref().unwrap().id()),
        "gaia serve must ignore SIGPIPE"
    );
    let w = Worker::start(&server, "w1", &[]);
    w.wait_log("registered");
    assert!(
        ignores_sigpipe(w.pid() as u32),
        "gaia work must ignore SIGPIPE"
    );

    // A client command writing into a pipe nobody reads ends quietly (killed by SIGPIPE, as
    // `ls | head` does), with no "broken pipe" error.
    let client = server.client();
    for i in 0..300 {
        client
            .submit(&JobSpec::builtin(JobKind::Hash, &format!("x{i}")))
            .unwrap();
    }
    let mut child = Command::new(gaia_bin())
        .arg("jobs")
        .env("GAIA_SERVER", server.url())
        .env("GAIA_TOKEN", &server.token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.to_lowercase().contains("pipe"), "{stderr}");
    use std::os::unix::process::ExitStatusExt;
    assert!(
        out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
        "{:?} {stderr}",
        out.status
    );
}
