//! The dashboard: the server pieces it stands on (downsampled curves, the event stream's replay
//! after a reconnect, whoami, the overview summary, its assets and their CSP, the names it
//! refuses), a static check that the dashboard's code never parses strings as HTML, and the
//! dashboard itself in a real headless Chromium against a real `gaia serve` filled by a real
//! `gaia work` (`tests/browser/dashboard.mjs`, driven with playwright-core), with XSS payloads
//! in every outside string the server lets through, and a smoke test of it in headless Firefox
//! ESR (`tests/browser/firefox.mjs`, puppeteer-core over WebDriver BiDi).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gaia_core::client::Client;
use gaia_core::model::{
    Capabilities, Gpu, Hardware, JobKind, JobSpec, JobState, Row, Scope, Usage,
};
use gaia_core::protocol::{
    Assignment, ClaimRequest, CompleteRequest, HeartbeatRequest, LeaseRef, Outcome,
    RegisterRequest, RowBatch,
};
use serde_json::Value;

use crate::helper::*;

// ---- a worker driven by hand through the worker API -------------------------------------------

fn register(c: &Client, name: &str) -> String {
    c.register(&RegisterRequest {
        worker_id: None,
        name: name.into(),
        version: gaia_core::VERSION.into(),
        hardware: Hardware {
            cpu_cores: 8,
            memory_mb: 16384,
            ..Hardware::default()
        },
        kinds: vec![JobKind::Experiment],
        tags: vec![],
        slots: 1,
    })
    .unwrap()
    .worker_id
}

fn claim(c: &Client, worker: &str) -> Assignment {
    c.claim(&ClaimRequest {
        worker_id: worker.into(),
        capabilities: Capabilities {
            kinds: vec![JobKind::Experiment],
            ..Capabilities::default()
        },
        wait_ms: 5000,
        finished: None,
        watch_study: None,
    })
    .unwrap()
    .expect("a queued job to claim")
}

fn post(c: &Client, a: &Assignment, rows: Vec<Row>) {
    let ack = c
        .post_rows(
            a.job.id,
            &RowBatch {
                attempt: a.attempt,
                lease: a.lease,
                rows,
                fraction: None,
                status: None,
            },
            true,
        )
        .unwrap();
    assert_eq!(ack.skipped, 0);
}

fn complete(c: &Client, a: &Assignment) {
    c.complete(
        a.job.id,
        &CompleteRequest {
            attempt: a.attempt,
            lease: a.lease,
            outcome: Outcome::Succeeded,
            exit_code: Some(0),
            duration_ms: 10,
            error: None,
            result: None,
            started_us: None,
        },
    )
    .unwrap();
}

fn experiment(method: &str, env: &str, seed: u64) -> JobSpec {
    let mut s = JobSpec::experiment(method, 1000);
    s.env = Some(env.into());
    s.seed = Some(seed);
    s
}

fn get_json(server: &Server, path: &str) -> Value {
    let (status, body) = http(
        "GET",
        &format!("{}{path}", server.url()),
        Some(&server.token),
        None,
    );
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

// ---- downsampling -----------------------------------------------------------------------------

/// Per metric, how many of the rows carry it.
fn count(rows: &[Value], metric: &str) -> usize {
    rows.iter()
        .filter(|r| {
            r.get(metric).is_some_and(|v| !v.is_null())
                || r["metrics"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|kv| kv[0] == metric))
        })
        .count()
}

fn extreme(rows: &[Value], metric: &str, max: bool) -> f64 {
    let vals = rows.iter().filter_map(|r| r[metric].as_f64());
    if max {
        vals.fold(f64::MIN, f64::max)
    } else {
        vals.fold(f64::MAX, f64::min)
    }
}

#[test]
fn downsampled_curves_keep_spikes_and_never_exceed_the_points_asked() {
    let server = Server::start();
    let c = server.client();
    let worker = register(&c, "downsampler");
    c.submit(&experiment("cma_es", "CartPole-v1", 1)).unwrap();
    let a = claim(&c, &worker);
    const N: u64 = 200_000;
    const HIGH: u64 = 123_457;
    const LOW: u64 = 77_777;
    for chunk in (0..N).collect::<Vec<_>>().chunks(20_000) {
        let rows = chunk
            .iter()
            .map(|&i| Row {
                seq: i,
                generation: Some(i + 1),
                evals: Some(((i + 1) * 10) as f64),
                best: Some(match i {
                    HIGH => 1e6,
                    LOW => -1e6,
                    _ => (i % 100) as f64,
                }),
                best_ever: Some(99.0),
                mean: Some((i % 50) as f64),
                sigma: Some(1.0 / (i + 1) as f64),
                metrics: vec![("entropy".into(), (i % 7) as f64)],
                ..Row::default()
            })
            .collect();
        post(&c, &a, rows);
    }
    let id = a.job.id;
    for points in [2usize, 3, 10, 101, 1000, 2000] {
        let r = get_json(&server, &format!("/api/v1/jobs/{id}/rows?points={points}"));
        assert_eq!(r["total"], N);
        assert_eq!(r["downsampled"], true);
        let rows = r["rows"].as_array().unwrap();
        for metric in ["best", "best_ever", "mean", "sigma", "entropy"] {
            let n = count(rows, metric);
            assert!(n <= points, "{metric}: {n} points for {points} asked");
            assert!(n >= 2, "{metric}: only {n} points for {points} asked");
        }
        assert_eq!(
            extreme(rows, "best", true),
            1e6,
            "high spike lost at {points} points"
        );
        assert_eq!(
            extreme(rows, "best", false),
            -1e6,
            "low spike lost at {points} points"
        );
        let seqs: Vec<u64> = rows.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] <= w[1]), "x out of order");
    }

    // Zooming in on a range of evals: only rows of the range, finer, the spike still there.
    let (from, to) = ((LOW - 500) * 10, (LOW + 500) * 10);
    let r = get_json(
        &server,
        &format!("/api/v1/jobs/{id}/rows?points=100&x=evals&from={from}&to={to}"),
    );
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(
        r["total"], 1001,
        "rows in the zoomed range, both ends included"
    );
    assert!(count(rows, "best") <= 100);
    assert!(rows.iter().all(|r| {
        let e = r["evals"].as_f64().unwrap();
        e >= from as f64 && e <= to as f64
    }));
    assert_eq!(extreme(rows, "best", false), -1e6, "spike lost when zoomed");
    assert_eq!(extreme(rows, "best", true), 99.0);

    // Asking for more points than there are rows gives the rows themselves.
    let r = get_json(
        &server,
        &format!("/api/v1/jobs/{id}/rows?points=5000&x=generation&from=10&to=20"),
    );
    assert_eq!(r["downsampled"], false);
    assert_eq!(r["rows"].as_array().unwrap().len(), 11);

    let (status, body) = http(
        "GET",
        &format!("{}/api/v1/jobs/{id}/rows?points=1", server.url()),
        Some(&server.token),
        None,
    );
    assert_eq!(status, 400, "{body}");
}

// ---- the event stream -------------------------------------------------------------------------

/// One server-sent event.
#[derive(Debug, Default, Clone)]
struct Sse {
    id: Option<u64>,
    event: String,
    data: String,
}

/// A raw HTTP/1.1 SSE client (chunked transfer decoding included), so the test sees exactly
/// what a browser's EventSource sees.
struct SseClient {
    reader: BufReader<TcpStream>,
    buf: Vec<u8>,
    pending: Sse,
}

impl SseClient {
    fn open(server: &Server, query: &str, last_event_id: Option<u64>) -> SseClient {
        let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut req = format!(
            "GET /api/v1/events?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer {}\r\n",
            server.token
        );
        if let Some(id) = last_event_id {
            req.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        req.push_str("\r\n");
        (&stream).write_all(req.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut status = String::new();
        reader.read_line(&mut status).unwrap();
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let mut chunked = false;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let l = line.trim().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if l == "transfer-encoding: chunked" {
                chunked = true;
            }
            if l.starts_with("content-type:") {
                assert!(l.contains("text/event-stream"), "{l}");
            }
        }
        assert!(chunked, "a stream is sent chunked");
        SseClient {
            reader,
            buf: Vec::new(),
            pending: Sse::default(),
        }
    }

    fn fill(&mut self) {
        let mut size = String::new();
        self.reader.read_line(&mut size).unwrap();
        let n = usize::from_str_radix(size.trim(), 16)
            .unwrap_or_else(|_| panic!("bad chunk size {size:?}"));
        assert!(n > 0, "the stream ended");
        let mut chunk = vec![0; n + 2];
        self.reader.read_exact(&mut chunk).unwrap();
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next event (comments and `retry:` skipped).
    fn next(&mut self) -> Sse {
        loop {
            while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = String::from_utf8(line).unwrap();
                let line = line.trim_end_matches('\n');
                if line.is_empty() {
                    let ev = std::mem::take(&mut self.pending);
                    if !ev.event.is_empty() || !ev.data.is_empty() {
                        return ev;
                    }
                } else if let Some(v) = line.strip_prefix("id: ") {
                    self.pending.id = Some(v.parse().unwrap());
                } else if let Some(v) = line.strip_prefix("event: ") {
                    self.pending.event = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    self.pending.data.push_str(v);
                }
            }
            self.fill();
        }
    }

    /// The next stored event (type `event`), skipping live-only messages.
    fn next_stored(&mut self) -> (u64, Value) {
        loop {
            let e = self.next();
            if e.event == "event" {
                let v: Value = serde_json::from_str(&e.data).unwrap();
                let id = e.id.expect("stored events carry an id");
                assert_eq!(v["id"], id);
                return (id, v);
            }
        }
    }
}

#[test]
fn an_idle_event_stream_gets_keep_alive_pings() {
    // Proxies close a stream that says nothing for long; the server sends a `: ping` comment
    // every --event-keepalive seconds (15 by default) on an idle stream.
    let server = Server::start_with(&["--event-keepalive", "0.3"]);
    let mut sse = SseClient::open(&server, "stream=1&rows=0&logs=0&after=999999999", None);
    let t = Instant::now();
    let mut pings = 0;
    while pings < 3 {
        sse.fill();
        let text = String::from_utf8(std::mem::take(&mut sse.buf)).unwrap();
        pings += text.matches(": ping\n").count();
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no pings in {text:?}"
        );
    }
    assert!(t.elapsed() >= Duration::from_millis(500), "pinged too soon");
}

#[test]
fn event_stream_reconnecting_with_last_event_id_misses_nothing() {
    let server = Server::start();
    let c = server.client();
    for s in 0..3 {
        c.submit(&experiment("cma_es", "sphere", s)).unwrap();
    }
    // A dashboard connects (no replay asked) and sees what happens from then on.
    let mut first = SseClient::open(&server, "rows=0", None);
    for s in 3..6 {
        c.submit(&experiment("cma_es", "sphere", s)).unwrap();
    }
    let seen: Vec<u64> = (0..3).map(|_| first.next_stored().0).collect();
    assert_eq!(seen, vec![4, 5, 6]);
    // The connection drops; meanwhile jobs are submitted, started, finished and cancelled.
    drop(first);
    let worker = register(&c, "while-away");
    for s in 6..10 {
        c.submit(&experiment("openai_es", "sphere", s)).unwrap();
    }
    let a = claim(&c, &worker);
    complete(&c, &a);
    c.cancel(9).unwrap();
    let stored = c.events(Some(6), 1000).unwrap().events;
    assert!(stored.len() >= 7, "{stored:?}");
    let last_stored = stored.last().unwrap().id;

    // The browser reconnects with Last-Event-ID: it gets everything after 6, in order, once.
    let mut again = SseClient::open(&server, "rows=0", Some(6));
    let mut replayed = Vec::new();
    while replayed.last().is_none_or(|&id| id < last_stored) {
        replayed.push(again.next_stored().0);
    }
    let expected: Vec<u64> = stored.iter().map(|e| e.id).collect();
    assert_eq!(replayed, expected, "replay after Last-Event-ID");
    assert_eq!(
        expected,
        (7..=last_stored).collect::<Vec<_>>(),
        "ids have no gaps"
    );
    // ... and then live events continue on the same connection, without duplicates.
    let id = c.submit(&experiment("cma_es", "sphere", 99)).unwrap();
    let (next, ev) = again.next_stored();
    assert_eq!(next, last_stored + 1);
    assert_eq!(ev["job"], id);
    assert_eq!(ev["kind"], "job_submitted");

    // `?after=` does the same for a client that cannot set the header.
    let mut by_query = SseClient::open(&server, &format!("rows=0&after={last_stored}"), None);
    assert_eq!(by_query.next_stored().0, last_stored + 1);
}

#[test]
fn event_stream_sends_rows_jobs_and_workers_live() {
    let server = Server::start();
    let c = server.client();
    let mut s = SseClient::open(&server, "rows=1", None);
    let worker = register(&c, "streamer");
    c.submit(&experiment("cma_es", "sphere", 1)).unwrap();
    let a = claim(&c, &worker);
    post(
        &c,
        &a,
        vec![Row {
            seq: 0,
            generation: Some(1),
            best: Some(-3.5),
            ..Row::default()
        }],
    );
    c.heartbeat(
        &worker,
        &HeartbeatRequest {
            running: vec![LeaseRef {
                job: a.job.id,
                attempt: a.attempt,
                lease: a.lease,
            }],
            ..HeartbeatRequest::default()
        },
    )
    .unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while kinds.len() < 4 && Instant::now() < deadline {
        let e = s.next();
        let v: Value = serde_json::from_str(&e.data).unwrap();
        match e.event.as_str() {
            "rows" => {
                assert_eq!(v["job"], a.job.id);
                assert_eq!(v["rows"][0]["best"], -3.5);
                assert!(e.id.is_none(), "live-only messages carry no id");
            }
            "job" => assert_eq!(v["id"], a.job.id),
            "worker" => assert_eq!(v["name"], "streamer"),
            _ => {}
        }
        kinds.insert(e.event);
    }
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        vec!["event", "job", "rows", "worker"]
    );
}

// ---- whoami, summary, assets ------------------------------------------------------------------

#[test]
fn whoami_tells_the_dashboard_its_scope() {
    let server = Server::start();
    let c = server.client();
    let me = get_json(&server, "/api/v1/whoami");
    assert_eq!(me["scope"], "admin");
    assert_eq!(me["name"], "admin");
    let read = c.create_token("viewer", Scope::Read).unwrap().token;
    let worker = c.create_token("box", Scope::Worker).unwrap().token;
    let url = format!("{}/api/v1/whoami", server.url());
    let (status, body) = http("GET", &url, Some(&read), None);
    assert_eq!(status, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["scope"], "read");
    assert_eq!(v["name"], "viewer");
    // EventSource and download links send the token as a query parameter.
    let (status, body) = http("GET", &format!("{url}?token={read}"), None, None);
    assert_eq!(status, 200, "{body}");
    // A worker token cannot read the dashboard; no token or a wrong one is a 401.
    assert_eq!(http("GET", &url, Some(&worker), None).0, 403);
    assert_eq!(http("GET", &url, None, None).0, 401);
    assert_eq!(http("GET", &url, Some("not-a-token-at-all"), None).0, 401);
    // A read token may look but not cancel.
    let id = c.submit(&experiment("cma_es", "sphere", 1)).unwrap();
    let cancel = format!("{}/api/v1/jobs/{id}/cancel", server.url());
    assert_eq!(http("POST", &cancel, Some(&read), None).0, 403);
}

#[test]
fn summary_gives_best_and_spread_per_environment_and_method() {
    let server = Server::start();
    let c = server.client();
    let worker = register(&c, "summariser");
    // Finished runs: cma_es on sphere with final best-ever 1, 2, 3, 4; openai_es with 10.
    let mut specs: Vec<JobSpec> = (1..=4).map(|s| experiment("cma_es", "sphere", s)).collect();
    specs.push(experiment("openai_es", "sphere", 1));
    let mut in_study = experiment("cma_es", "CartPole-v1", 1);
    in_study.study = Some("s1".into());
    specs.push(in_study);
    let ids = c.submit_batch(specs).unwrap();
    let finals = [1.0, 2.0, 3.0, 4.0, 10.0, 450.0];
    for _ in &ids {
        let a = claim(&c, &worker);
        let v = finals[(a.job.id - ids[0]) as usize];
        post(
            &c,
            &a,
            vec![
                Row {
                    seq: 0,
                    best: Some(v - 5.0),
                    best_ever: Some(v - 5.0),
                    ..Row::default()
                },
                Row {
                    seq: 1,
                    best: Some(v),
                    best_ever: Some(v),
                    ..Row::default()
                },
            ],
        );
        complete(&c, &a);
    }
    // A running cma_es job already better than every finished one counts for "best" only.
    let running = c.submit(&experiment("cma_es", "sphere", 9)).unwrap();
    let a = claim(&c, &worker);
    assert_eq!(a.job.id, running);
    post(
        &c,
        &a,
        vec![Row {
            seq: 0,
            best_ever: Some(50.0),
            ..Row::default()
        }],
    );
    c.submit(&experiment("random_search", "sphere", 1)).unwrap();
    c.submit(&JobSpec::builtin(JobKind::Hash, "abc")).unwrap();

    let s = get_json(&server, "/api/v1/summary");
    assert_eq!(s["total"], 9);
    assert_eq!(s["jobs"]["succeeded"], 6);
    assert_eq!(s["jobs"]["running"], 1);
    assert_eq!(s["jobs"]["queued"], 2);
    assert_eq!(s["jobs"]["lost"], 0);
    assert_eq!(
        s["workers"]["busy"].as_u64().unwrap() + s["workers"]["idle"].as_u64().unwrap(),
        1
    );
    let groups = s["groups"].as_array().unwrap();
    let names: Vec<(String, String)> = groups
        .iter()
        .map(|g| {
            (
                g["env"].as_str().unwrap().into(),
                g["method"].as_str().unwrap().into(),
            )
        })
        .collect();
    let pair = |e: &str, m: &str| (e.to_string(), m.to_string());
    assert_eq!(
        names,
        vec![
            pair("CartPole-v1", "cma_es"),
            pair("sphere", "cma_es"),
            pair("sphere", "openai_es"),
            pair("sphere", "random_search"),
        ],
        "builtin jobs have no group; groups sorted by env then method"
    );
    let cma = &groups[1];
    assert_eq!(cma["jobs"], 5);
    assert_eq!(cma["finished"], 4);
    assert_eq!(cma["running"], 1);
    assert_eq!(cma["best"], 50.0);
    assert_eq!(cma["best_job"], running);
    assert_eq!(cma["mean"], 2.5);
    assert_eq!(cma["median"], 2.5);
    assert_eq!(cma["min"], 1.0);
    assert_eq!(cma["max"], 4.0);
    assert_eq!(cma["finals"], serde_json::json!([1.0, 2.0, 3.0, 4.0]));
    let rs = &groups[3];
    assert_eq!(rs["queued"], 1);
    assert!(rs["best"].is_null());
    assert_eq!(rs["finished"], 0);

    let st = get_json(&server, "/api/v1/summary?study=s1");
    assert_eq!(st["total"], 1);
    assert_eq!(st["groups"].as_array().unwrap().len(), 1);
    assert_eq!(st["groups"][0]["best"], 450.0);
    let (status, body) = http(
        "GET",
        &format!("{}/api/v1/summary?study=nosuch", server.url()),
        Some(&server.token),
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("nosuch"), "{body}");
    let (status, _) = http(
        "GET",
        &format!("{}/api/v1/summary?study=../x", server.url()),
        Some(&server.token),
        None,
    );
    assert_eq!(status, 400);
}

#[test]
fn overview_of_10000_jobs_and_50_workers_is_paginated_on_the_server() {
    let server = Server::start();
    let c = server.client();
    let specs: Vec<JobSpec> = (0..10_000u64)
        .map(|i| {
            experiment(
                ["cma_es", "openai_es", "random_search", "island_model"][(i % 4) as usize],
                ["CartPole-v1", "sphere", "rastrigin"][(i % 3) as usize],
                i,
            )
        })
        .collect();
    c.submit_batch(specs).unwrap();
    for w in 0..50 {
        let id = register(&c, &format!("node-{w:02}"));
        claim(&c, &id);
    }
    // The requests the overview makes, as the dashboard makes them.
    let started = Instant::now();
    let mut timings = Vec::new();
    let mut get = |path: &str| {
        let t = Instant::now();
        let (status, body) = http(
            "GET",
            &format!("{}{path}", server.url()),
            Some(&server.token),
            None,
        );
        assert_eq!(status, 200, "{path}: {body}");
        timings.push(format!(
            "{path} {:.0} ms, {} KiB",
            t.elapsed().as_secs_f64() * 1e3,
            body.len() / 1024
        ));
        serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)
    };
    get("/");
    get("/api/v1/whoami");
    let summary = get("/api/v1/summary");
    let workers = get("/api/v1/workers");
    let running = get("/api/v1/jobs?state=running&limit=100");
    let queued = get("/api/v1/jobs?state=queued&limit=50");
    get("/api/v1/events?limit=60");
    let total = started.elapsed();
    eprintln!(
        "overview with 10,000 jobs and 50 workers: {:.0} ms in all (debug build)\n  {}",
        total.as_secs_f64() * 1e3,
        timings.join("\n  ")
    );
    assert_eq!(summary["total"], 10_000);
    assert_eq!(summary["groups"].as_array().unwrap().len(), 12);
    assert_eq!(summary["workers"]["busy"], 50);
    assert_eq!(workers["workers"].as_array().unwrap().len(), 50);
    assert_eq!(running["jobs"].as_array().unwrap().len(), 50);
    assert_eq!(running["total"], 50);
    assert_eq!(
        queued["jobs"].as_array().unwrap().len(),
        50,
        "one page, not 9,950 jobs"
    );
    assert_eq!(queued["total"], 9_950);
}

/// GET with headers returned (status, content-type, CSP, body).
fn get_asset(server: &Server, path: &str) -> (u16, String, String, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent.get(format!("{}{path}", server.url())).call().unwrap();
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (ct, csp) = (header("content-type"), header("content-security-policy"));
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (r.status().as_u16(), ct, csp, body)
}

#[test]
fn dashboard_assets_are_embedded_and_served_under_a_strict_csp() {
    let server = Server::start();
    let (status, ct, csp, body) = get_asset(&server, "/");
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert!(
        body.contains("<script type=\"module\" src=\"/app.js\">"),
        "{body}"
    );
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe"), "{csp}");
    for (path, want) in [
        ("/app.js", "text/javascript"),
        ("/chart.js", "text/javascript"),
        ("/style.css", "text/css"),
        ("/favicon.svg", "image/svg+xml"),
    ] {
        let (status, ct, csp, body) = get_asset(&server, path);
        assert_eq!(status, 200, "{path}");
        assert!(ct.starts_with(want), "{path}: {ct}");
        assert!(!csp.is_empty(), "{path} has no CSP");
        assert!(!body.is_empty());
    }
    // Every module of the dashboard folder, as the browser fetches it when app.js imports it.
    for entry in std::fs::read_dir(repo_root().join("dashboard")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if !name.ends_with(".js") {
            continue;
        }
        let (status, ct, csp, body) = get_asset(&server, &format!("/{name}"));
        assert_eq!(status, 200, "/{name}");
        assert!(ct.starts_with("text/javascript"), "/{name}: {ct}");
        assert!(!csp.is_empty(), "/{name} has no CSP");
        assert!(!body.is_empty());
        // No external resource anywhere: the lab server may have no internet.
        for ext in ["http://", "https://", "//fonts.", "@import"] {
            assert!(!body.contains(ext), "/{name} refers to {ext}");
        }
    }
    assert_eq!(get_asset(&server, "/nope.js").0, 404);
    // No external resource anywhere: the lab server may have no internet.
    for path in ["/", "/app.js", "/chart.js", "/style.css"] {
        let body = get_asset(&server, path).3;
        for ext in ["http://", "https://", "//fonts.", "@import"] {
            assert!(!body.contains(ext), "{path} refers to {ext}");
        }
    }
}

// ---- XSS: what the server refuses, what the dashboard's code may not do ----------------------

/// The job name the issue names.
const XSS_NAME: &str = "<img src=x onerror=alert(1)>";
/// Payloads that set `window.__xss` if they are ever turned into markup (tests/browser/xss.mjs).
const XSS_IMG: &str = "<img src=x onerror=window.__xss=1>";
const XSS_SCRIPT: &str = "<script>window.__xss=2</script>";

#[test]
fn names_from_outside_are_refused_where_the_server_validates_them() {
    let server = Server::start();
    let url = |p: &str| format!("{}{p}", server.url());
    let post = |path: &str, body: Value| {
        http(
            "POST",
            &url(path),
            Some(&server.token),
            Some(("application/json", serde_json::to_vec(&body).unwrap())),
        )
    };
    for payload in [XSS_IMG, XSS_SCRIPT] {
        // Method, environment, study and tag names are validated on submit (single and batch),
        // so the dashboard never gets a payload there: its XSS tests plant them elsewhere.
        for (field, spec) in [
            (
                "method",
                serde_json::json!({"kind": "experiment", "method": payload}),
            ),
            (
                "environment",
                serde_json::json!({"kind": "experiment", "method": "cma_es", "env": payload}),
            ),
            (
                "study name",
                serde_json::json!({"kind": "experiment", "method": "cma_es", "study": payload}),
            ),
            (
                "tag",
                serde_json::json!({"kind": "reverse", "input": "x", "requirements": {"tags": [payload]}}),
            ),
        ] {
            let (status, body) = post("/api/v1/jobs", spec.clone());
            assert_eq!(status, 400, "{field} {payload:?} accepted: {body}");
            assert!(body.contains(field), "{body}");
            let (status, body) = post("/api/v1/jobs/batch", serde_json::json!({"jobs": [spec]}));
            assert_eq!(
                status, 400,
                "batch with {field} {payload:?} accepted: {body}"
            );
        }
        let (status, body) = post(
            "/api/v1/workers/register",
            serde_json::json!({"name": payload, "version": "1", "kinds": ["reverse"], "slots": 1}),
        );
        assert_eq!(status, 400, "worker name {payload:?} accepted: {body}");
        assert!(body.contains("worker name"), "{body}");
        let (status, body) = post(
            "/api/v1/tokens",
            serde_json::json!({"name": payload, "scope": "read"}),
        );
        assert_eq!(status, 400, "token name {payload:?} accepted: {body}");
        let (status, _) = http(
            "GET",
            &url(&format!(
                "/api/v1/summary?study={}",
                percent_encode(payload)
            )),
            Some(&server.token),
            None,
        );
        assert_eq!(status, 400, "summary of study {payload:?}");
    }
    // Nothing of it was stored.
    let c = server.client();
    assert_eq!(c.jobs(&Default::default()).unwrap().total, 0);
    assert!(c.workers().unwrap().workers.is_empty());
}

/// The dashboard's code builds the page with DOM calls and textContent only: none of the APIs
/// that parse a string as HTML or as code appears in dashboard/*.js (comments included, so a
/// commented-out use does not come back unnoticed).
#[test]
fn dashboard_code_never_parses_strings_as_html_or_code() {
    let dir = repo_root().join("dashboard");
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "js") {
            continue;
        }
        let code = std::fs::read_to_string(&path).unwrap();
        for (n, line) in code.lines().enumerate() {
            for bad in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
                "new Function",
                "createContextualFragment",
                "DOMParser",
                "srcdoc",
                "javascript:",
            ] {
                assert!(
                    !line.contains(bad),
                    "{}:{}: `{bad}` in {line:?}",
                    path.display(),
                    n + 1
                );
            }
        }
        checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    checked.sort();
    // Every module is checked: the entry app.js reaches each file through its imports (so none
    // is loaded without being read here), and none imports one that imports it back.
    let imports = |name: &str| -> Vec<String> {
        let code = std::fs::read_to_string(dir.join(name)).unwrap();
        code.split(" from \"./")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_string)
            .collect()
    };
    let mut reached = vec!["app.js".to_string()];
    let mut i = 0;
    while i < reached.len() {
        for m in imports(&reached[i]) {
            assert!(
                checked.contains(&m),
                "{} imports ./{m}, which is not in dashboard/",
                reached[i]
            );
            if !reached.contains(&m) {
                reached.push(m);
            }
        }
        i += 1;
    }
    reached.sort();
    assert_eq!(reached, checked, "modules app.js never imports");
    assert!(checked.len() > 10, "one module per view: {checked:?}");
    fn cycle(name: &str, path: &mut Vec<String>, imports: &dyn Fn(&str) -> Vec<String>) {
        assert!(
            !path.iter().any(|p| p == name),
            "an import cycle: {} -> {name}",
            path.join(" -> ")
        );
        path.push(name.to_string());
        for m in imports(name) {
            cycle(&m, path, imports);
        }
        path.pop();
    }
    cycle("app.js", &mut Vec::new(), &imports);
    // ... and the page loads no other script than app.js, with no inline script or handler.
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(html.contains(r#"<script type="module" src="/app.js"></script>"#));
    let lower = html.to_ascii_lowercase();
    let handler = lower
        .split(|c: char| c.is_whitespace() || c == '<')
        .find(|w| w.starts_with("on") && w.contains('='));
    assert_eq!(handler, None, "an inline handler in index.html");
}

/// How the dashboard writes values (`dashboard/format.js`, one format per kind: sizes in binary
/// units, "1 line" not "1 lines", counts as the CLI writes evaluations), checked in node against
/// the exact strings a user reads (`tests/browser/format.mjs`).
#[test]
fn dashboard_writes_one_format_per_kind_of_value() {
    let mut missing = Vec::new();
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node (apt-get install -y nodejs)".to_string());
    }
    if !prerequisites("the dashboard's format tests", &missing) {
        return;
    }
    let out = Command::new("node")
        .arg("format.mjs")
        .current_dir(browser_dir())
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "tests/browser/format.mjs failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Registers a worker (driven by nobody) whose hardware report is all payloads: hostname, CPU
/// model, a GPU's name and driver. The server bounds these texts' length, not their characters.
fn xss_probe_worker(c: &Client, name: &str) -> String {
    let id = c
        .register(&RegisterRequest {
            worker_id: None,
            name: name.into(),
            version: gaia_core::VERSION.into(),
            hardware: Hardware {
                hostname: XSS_IMG.into(),
                cpu_model: XSS_SCRIPT.into(),
                cpu_cores: 4,
                memory_mb: 8192,
                os: "linux".into(),
                arch: "x86_64".into(),
                gpus: vec![Gpu {
                    index: 0,
                    name: XSS_IMG.into(),
                    memory_mb: 24576,
                    driver: XSS_SCRIPT.into(),
                }],
            },
            kinds: vec![JobKind::Wait],
            tags: vec![],
            slots: 1,
        })
        .unwrap()
        .worker_id;
    c.heartbeat(
        &id,
        &HeartbeatRequest {
            usage: Usage {
                cpu_percent: 12.0,
                memory_percent: 40.0,
                gpu_percent: vec![70.0],
                ..Usage::default()
            },
            ..HeartbeatRequest::default()
        },
    )
    .unwrap();
    id
}

// ---- the dashboard in a real browser ----------------------------------------------------------

/// A `gaia work` running the dashboard's stand-in experiments (realistic curves).
struct RealWorker {
    child: Child,
    _dir: tempfile::TempDir,
}

impl RealWorker {
    fn start(server: &Server, name: &str, log: &Path) -> RealWorker {
        let dir = tempfile::tempdir().unwrap();
        let log = std::fs::File::create(log).unwrap();
        let child = Command::new(gaia_bin())
            .args([
                "work",
                "--name",
                name,
                "--slots",
                "2",
                "--gpu",
                "none",
                "--python",
                "python3",
                "--kill-grace",
                "2",
            ])
            .arg("--experiments-dir")
            .arg(browser_dir().join("experiments"))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .env("GAIA_SERVER", server.url())
            .env("GAIA_TOKEN", &server.token)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start gaia work");
        RealWorker { child, _dir: dir }
    }
}

impl Drop for RealWorker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn with_params(mut spec: JobSpec, params: Value) -> JobSpec {
    spec.params = serde_json::from_value(params).unwrap();
    spec
}

/// Runs the browser script; when it asks (by writing `restart.request` in the `control` folder),
/// calls `on_request` and answers with `restart.done` holding what it returned.
fn run_node(
    script: &Path,
    envs: &[(&str, String)],
    timeout: Duration,
    control: &Path,
    mut on_request: impl FnMut() -> String,
) -> bool {
    let request = control.join("restart.request");
    let done = control.join("restart.done");
    let _ = std::fs::remove_file(&request);
    let _ = std::fs::remove_file(&done);
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(browser_dir())
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run node");
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if request.exists() {
            std::fs::remove_file(&request).unwrap();
            let answer = on_request();
            std::fs::write(&done, answer).unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser test did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dashboard_in_headless_chromium() {
    if !browser_tools_present(
        "the dashboard's browser test in Chromium",
        &chromium(),
        "chromium",
        "playwright-core",
    ) {
        return;
    }
    let mut server = Server::start();
    let c = server.client();
    let read_token = c.create_token("viewer", Scope::Read).unwrap().token;
    let worker_name = "lab-gpu-1";
    let artifacts = repo_root().join("test-artifacts/dashboard");
    std::fs::create_dir_all(&artifacts).unwrap();
    let _worker = RealWorker::start(&server, worker_name, &artifacts.join("worker.log"));

    // A long run to watch and cancel, finished runs of three methods to compare, and a job
    // whose name is an XSS attempt (which also fails, so it has an error log).
    // Its params carry payloads as a key and a value, and it prints them as log lines (every
    // 10 generations, so some arrive while the browser watches) and as its status.
    let mut long = with_params(
        experiment("cma_es", "CartPole-v1", 7),
        serde_json::json!({
            "gens": 4000,
            "delay": 0.05,
            XSS_IMG: XSS_SCRIPT,
            "echo": [XSS_IMG, XSS_SCRIPT],
            "echo_every": 10,
            "status": XSS_IMG,
        }),
    );
    long.priority = 10;
    // A name as long as a lab's (it must give way in the queue, not push its columns out).
    long.name = Some(
        "long cma_es run on CartPole-v1, population 20, watched live by the browser test".into(),
    );
    let long_id = c.submit(&long).unwrap();
    let mut done = Vec::new();
    let mut specs = Vec::new();
    for m in ["cma_es", "openai_es", "random_search"] {
        for s in 1..=4 {
            specs.push(with_params(
                experiment(m, "CartPole-v1", s),
                serde_json::json!({"gens": 60, "delay": 0.002}),
            ));
        }
    }
    done.extend(c.submit_batch(specs).unwrap());
    let mut xss = with_params(
        experiment("openai_es", "CartPole-v1", 3),
        serde_json::json!({"gens": 20, "fail": true, "echo": [XSS_IMG, XSS_SCRIPT]}),
    );
    xss.name = Some(XSS_NAME.into());
    let xss_id = c.submit(&xss).unwrap();
    // A built-in job whose input is a payload: the dashboard shows its description (in the
    // jobs list and the activity log's "submitted" message) and its input.
    let xss_input_id = c
        .submit(&JobSpec::builtin(JobKind::Reverse, XSS_IMG))
        .unwrap();
    // A worker that reports payloads as its hardware (the server refuses them as a worker name,
    // see `names_from_outside_are_refused_where_the_server_validates_them`).
    let probe_name = "xss-probe";
    xss_probe_worker(&c, probe_name);
    for &id in done.iter().chain([&xss_id, &xss_input_id]) {
        wait_done(&c, id, Duration::from_secs(120));
    }
    wait_for("the long job's first rows", Duration::from_secs(60), || {
        let j = c.job(long_id).unwrap();
        (j.state == JobState::Running && j.progress.rows >= 5).then_some(())
    });

    let ok = run_node(
        &browser_dir().join("dashboard.mjs"),
        &[
            ("SERVER", server.url()),
            ("TOKEN", server.token.clone()),
            ("READ_TOKEN", read_token),
            ("LONG_JOB", long_id.to_string()),
            ("XSS_JOB", xss_id.to_string()),
            ("XSS_INPUT_JOB", xss_input_id.to_string()),
            ("PROBE_WORKER", probe_name.to_string()),
            (
                "DONE_JOBS",
                done.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            ("WORKER_NAME", worker_name.to_string()),
            ("ARTIFACTS", artifacts.display().to_string()),
            ("CHROMIUM", chromium().display().to_string()),
        ],
        Duration::from_secs(240),
        &artifacts,
        || {
            // The browser asked for an outage: restart the server, and submit a job before the
            // browser has reconnected, which it must then catch up on.
            assert!(server.stop().success(), "gaia serve stopped cleanly");
            server.restart();
            let mut spec = experiment("cma_es", "sphere", 42);
            spec.name = Some("submitted while the dashboard was away".into());
            spec.requirements.gpus = 8; // stays queued: no worker here has 8 GPUs
            server.client().submit(&spec).unwrap().to_string()
        },
    );
    assert!(
        ok,
        "the browser test failed (its output is above; the worker's log is in {}); the long job is now {:?}",
        artifacts.join("worker.log").display(),
        c.job(long_id)
            .map(|j| (j.state, j.cancel_requested, j.progress.rows))
    );
    // What the browser did reached the server.
    let j = wait_done(&c, long_id, Duration::from_secs(30));
    assert_eq!(j.state, JobState::Cancelled);
}

/// The dashboard for a lab of users (`tests/browser/users.mjs`): logged in with a submit token,
/// alice sees owners in the lists, filters her own jobs, cancels hers but not bob's, submits
/// through the form, and reads every user's usage on the overview.
#[test]
fn dashboard_for_users_in_headless_chromium() {
    if !browser_tools_present(
        "the dashboard's users test in Chromium",
        &chromium(),
        "chromium",
        "playwright-core",
    ) {
        return;
    }
    let server = Server::start();
    let admin = server.client();
    let add = |name: &str| {
        admin
            .add_user(&gaia_core::protocol::UserAdd {
                name: name.into(),
                share: None,
                max_running: None,
                max_queued: None,
                token_name: None,
            })
            .unwrap()
            .token
            .token
    };
    let (alice, bob) = (add("alice"), add("bob"));
    // No worker: every job stays queued.
    let job = |c: &Client, input: &str| c.submit(&JobSpec::builtin(JobKind::Hash, input)).unwrap();
    let alice_job = job(&server.client_with(&alice), "alice's");
    let bob_job = job(&server.client_with(&bob), "bob's");
    let admin_job = job(&admin, "the admin's");
    let artifacts = repo_root().join("test-artifacts/users");
    let ok = run_node(
        &browser_dir().join("users.mjs"),
        &[
            ("SERVER", server.url()),
            ("ALICE_TOKEN", alice),
            ("ALICE_JOB", alice_job.to_string()),
            ("BOB_JOB", bob_job.to_string()),
            ("ADMIN_JOB", admin_job.to_string()),
            ("ARTIFACTS", artifacts.display().to_string()),
            ("CHROMIUM", chromium().display().to_string()),
        ],
        Duration::from_secs(120),
        &artifacts,
        String::new,
    );
    assert!(ok, "the users browser test failed (its output is above)");
    // What the browser did reached the server: her job cancelled, bob's and the admin's not.
    assert_eq!(admin.job(alice_job).unwrap().state, JobState::Cancelled);
    assert_eq!(admin.job(bob_job).unwrap().state, JobState::Queued);
    assert_eq!(admin.job(admin_job).unwrap().state, JobState::Queued);
    let hers = admin
        .jobs(&gaia_core::protocol::JobQuery {
            owner: Some("alice".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(hers.total, 2, "her job and the one the form submitted");
}

/// The dashboard in headless Firefox (Debian's firefox-esr over WebDriver BiDi, driven by
/// puppeteer-core; `tests/browser/firefox.mjs`): log in, the overview with the worker card, a
/// job page with its curve drawn on the canvas and its logs, the XSS job's name and the payload
/// log lines inert, at 1280×800 and at 390×844, no wider than the screen; screenshots as
/// `test-artifacts/dashboard/firefox-*.png`.
#[test]
fn dashboard_in_headless_firefox() {
    if !browser_tools_present(
        "the dashboard's browser test in Firefox",
        &firefox(),
        "firefox-esr",
        "puppeteer-core",
    ) {
        return;
    }
    let server = Server::start();
    let c = server.client();
    let worker_name = "lab-ff-1";
    let artifacts = repo_root().join("test-artifacts/dashboard");
    std::fs::create_dir_all(&artifacts).unwrap();
    let _worker = RealWorker::start(&server, worker_name, &artifacts.join("firefox-worker.log"));
    let mut curve = with_params(
        experiment("cma_es", "CartPole-v1", 5),
        serde_json::json!({
            "gens": 120,
            "delay": 0.002,
            "echo": [XSS_IMG, XSS_SCRIPT],
            "echo_every": 40,
        }),
    );
    curve.name = Some("firefox curve".into());
    let curve_id = c.submit(&curve).unwrap();
    let other = c
        .submit(&with_params(
            experiment("openai_es", "CartPole-v1", 5),
            serde_json::json!({"gens": 60, "delay": 0.002}),
        ))
        .unwrap();
    let mut xss = with_params(
        experiment("openai_es", "CartPole-v1", 3),
        serde_json::json!({"gens": 20, "fail": true, "echo": [XSS_IMG, XSS_SCRIPT]}),
    );
    xss.name = Some(XSS_NAME.into());
    let xss_id = c.submit(&xss).unwrap();
    for id in [curve_id, other, xss_id] {
        wait_done(&c, id, Duration::from_secs(120));
    }
    assert_eq!(c.job(curve_id).unwrap().state, JobState::Succeeded);

    let control = tempfile::tempdir().unwrap();
    let ok = run_node(
        &browser_dir().join("firefox.mjs"),
        &[
            ("SERVER", server.url()),
            ("TOKEN", server.token.clone()),
            ("CURVE_JOB", curve_id.to_string()),
            ("XSS_JOB", xss_id.to_string()),
            ("WORKER_NAME", worker_name.to_string()),
            ("ARTIFACTS", artifacts.display().to_string()),
            ("FIREFOX", firefox().display().to_string()),
        ],
        Duration::from_secs(180),
        control.path(),
        || panic!("the Firefox test asks for no server restart"),
    );
    assert!(
        ok,
        "the Firefox test failed (its output is above; the worker's log is in {})",
        artifacts.join("firefox-worker.log").display()
    );
}

/// A worker's page in headless Chromium (`tests/browser/worker.mjs`): CPU and RAM over the
/// hour, day and week from a real `gaia work`, the Pause, Drain and Resume buttons acting on the
/// server, and a simulated worker with two GPUs, quarantined after three jobs failed at setup,
/// showing its reason and a utilisation and memory chart per GPU.
#[test]
fn dashboard_worker_page_in_headless_chromium() {
    use gaia_core::model::{Capabilities, Gpu, GpuUsage, Hardware};
    use gaia_core::protocol::{ClaimRequest, CompleteRequest, Outcome, RegisterRequest};
    if !browser_tools_present(
        "the worker page's browser test in Chromium",
        &chromium(),
        "chromium",
        "playwright-core",
    ) {
        return;
    }
    let server = Server::start();
    let c = server.client();
    let artifacts = repo_root().join("test-artifacts/dashboard");
    std::fs::create_dir_all(&artifacts).unwrap();
    let _worker = RealWorker::start(&server, "page-w", &artifacts.join("worker-page.log"));
    let real = wait_for("the real worker", Duration::from_secs(60), || {
        c.worker("page-w").ok().map(|w| w.id)
    });
    let gpus: Vec<Gpu> = (0..2)
        .map(|i| Gpu {
            index: i,
            name: "NVIDIA H100 80GB HBM3".into(),
            memory_mb: 81_559,
            driver: "590.48.01".into(),
        })
        .collect();
    let gpu_worker = c
        .register(&RegisterRequest {
            worker_id: None,
            name: "gpu-box".into(),
            version: gaia_core::VERSION.into(),
            hardware: Hardware {
                cpu_cores: 64,
                memory_mb: 515_000,
                gpus,
                ..Hardware::default()
            },
            kinds: vec![JobKind::Experiment],
            tags: vec!["gpu-box".into()],
            slots: 1,
        })
        .unwrap()
        .worker_id;
    for beat in 0..2u64 {
        c.heartbeat(
            &gpu_worker,
            &HeartbeatRequest {
                usage: Usage {
                    cpu_percent: 35.0,
                    memory_percent: 22.0,
                    gpus: (0..2)
                        .map(|i| GpuUsage {
                            index: i,
                            utilization: Some(90.0 + beat as f32),
                            memory_used_mb: Some(19_818 + i as u64 * 1000),
                            memory_total_mb: Some(81_559),
                            temperature_c: Some(59.0),
                            error: None,
                        })
                        .collect(),
                    ..Usage::default()
                },
                ..HeartbeatRequest::default()
            },
        )
        .unwrap();
    }
    // Three jobs that fail at setup on it: it is quarantined.
    for _ in 0..3 {
        let mut spec = experiment("cma_es", "CartPole-v1", 1);
        spec.requirements.tags = vec!["gpu-box".into()];
        c.submit(&spec).unwrap();
        let a = c
            .claim(&ClaimRequest {
                worker_id: gpu_worker.clone(),
                capabilities: Capabilities {
                    kinds: vec![JobKind::Experiment],
                    gpus: 2,
                    memory_mb: 515_000,
                    tags: vec!["gpu-box".into()],
                    max_job_secs: None,
                },
                wait_ms: 0,
                finished: None,
                watch_study: None,
            })
            .unwrap()
            .expect("the gpu-box job");
        c.complete(
            a.job.id,
            &CompleteRequest {
                attempt: a.attempt,
                lease: a.lease,
                outcome: Outcome::Failed,
                exit_code: None,
                duration_ms: 3,
                error: Some(
                    "cannot start /opt/conda/bin/python3: No such file or directory (os error 2)"
                        .into(),
                ),
                result: None,
                started_us: None,
            },
        )
        .unwrap();
    }
    assert_eq!(
        c.worker("gpu-box").unwrap().state,
        gaia_core::model::WorkerState::Quarantined
    );
    let ok = run_node(
        &browser_dir().join("worker.mjs"),
        &[
            ("SERVER", server.url()),
            ("TOKEN", server.token.clone()),
            ("WORKER", real.clone()),
            ("GPU_WORKER", gpu_worker.clone()),
            ("ARTIFACTS", artifacts.display().to_string()),
            ("CHROMIUM", chromium().display().to_string()),
        ],
        Duration::from_secs(120),
        &artifacts,
        String::new,
    );
    assert!(
        ok,
        "the worker page's browser test failed (its output is above)"
    );
    // What the buttons did is in the audit log, as the admin's.
    let audit = c.audit(None, 50).unwrap();
    let actions: Vec<&str> = audit.entries.iter().map(|e| e.action.as_str()).collect();
    for a in ["worker_pause", "worker_resume", "worker_drain"] {
        assert!(actions.contains(&a), "{actions:?}");
    }
}
