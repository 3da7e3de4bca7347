//! A history into a DataFrame: the server's answer for a 1,000,000-row job (8 metrics) as
//! Apache Arrow and as JSON, and — with the Python client's environment (python/.venv, built by
//! `.ci/install`) — `job.rows()` and `study.rows()` end to end into pandas and polars, with
//! their peak memory (`benches/python_rows.py`).
//!
//! Read twice: with the default page cache, then with `--cache-mib 512` (which holds the job).
//!
//! `cargo bench -p gaia-cli --bench rows`

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use gaia_core::model::JobKind;

fn fetch(server: &BenchServer, agent: &ureq::Agent, path: &str) -> (Duration, usize) {
    let t0 = Instant::now();
    let mut resp = agent
        .get(format!("{}{path}", server.url()))
        .header("authorization", format!("Bearer {}", server.token))
        .call()
        .unwrap();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 32)
        .read_to_vec()
        .unwrap();
    (t0.elapsed(), body.len())
}

fn measure(server: &BenchServer, what: &str, path: &str, runs: usize) {
    let agent = server.agent();
    fetch(server, &agent, path); // warm-up
    let cpu0 = server.cpu().0;
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..runs {
        let (t, n) = fetch(server, &agent, path);
        times.push(t);
        size = n;
    }
    let cpu = (server.cpu().0 - cpu0) / runs as f64;
    times.sort();
    println!(
        "{what}: p50 {}  min {}  max {}  server CPU {} per request  ({:.1} MB)",
        ms(percentile(&times, 50.0)),
        ms(times[0]),
        ms(*times.last().unwrap()),
        ms(Duration::from_secs_f64(cpu)),
        size as f64 / 1e6
    );
}

fn main() {
    let dir = bench_dir();
    let data = dir.path().join("data");
    let server = BenchServer::start_in(&data, &[]);
    let client = server.client();
    let jobs = running_jobs(&client, 1);
    let t0 = Instant::now();
    fill_job(&server, &jobs[0], 1_000_000, 2);
    let job = jobs[0].job.id;

    // A study of 10 jobs × 100,000 rows.
    let body = r#"{"name": "bench-study", "template": {"max_evals": 100000000},
        "sweep": {"methods": ["cma_es", "openai_es"], "envs": ["CartPole-v1"], "seeds": [1, 2, 3, 4, 5]}}"#;
    let mut resp = server
        .agent()
        .post(format!("{}/api/v1/studies", server.url()))
        .header("authorization", format!("Bearer {}", server.token))
        .header("content-type", "application/json")
        .send(body)
        .unwrap();
    resp.body_mut().read_to_string().unwrap();
    let worker = register(&client, "bench-study-worker", &[JobKind::Experiment]);
    for _ in 0..10 {
        let a = claim_now(&client, &worker, &[JobKind::Experiment]);
        fill_job(&server, &a, 100_000, 2);
    }
    println!(
        "stored 2,000,000 rows (a 1,000,000-row job, a study of 10 x 100,000) in {:.1} s; database {:.0} MiB",
        t0.elapsed().as_secs_f64(),
        std::fs::metadata(data.join("gaia.redb")).map_or(0, |m| m.len()) as f64 / 1048576.0
    );
    // With the default page cache (the job's pages do not all fit: each read fetches them
    // from the OS page cache again), then with one that holds them (`--cache-mib 512`).
    read_all(&server, job);
    drop(server);
    let server = BenchServer::start_in(&data, &["--cache-mib", "512"]);
    println!("-- gaia serve --cache-mib 512 (the job's pages stay in the cache between reads)");
    read_all(&server, job);
}

/// The Rust client's reads, then the Python client's.
fn read_all(server: &BenchServer, job: u64) {
    measure(
        server,
        "1,000,000-row job as Arrow (rows?format=arrow)",
        &format!("/api/v1/jobs/{job}/rows?format=arrow"),
        7,
    );
    measure(
        server,
        "1,000,000-row job as JSON (rows)",
        &format!("/api/v1/jobs/{job}/rows"),
        3,
    );
    measure(
        server,
        "study of 1,000,000 rows as Arrow (export.arrow)",
        "/api/v1/studies/bench-study/export.arrow",
        5,
    );
    measure(
        server,
        "study of 1,000,000 rows as CSV (export.csv)",
        "/api/v1/studies/bench-study/export.csv",
        3,
    );

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join("python/.venv/bin/python");
    if !python.is_file() {
        println!(
            "python/.venv is missing: run .ci/install (or scripts/test) for the Python figures"
        );
        return;
    }
    let status = std::process::Command::new(&python)
        .arg(root.join("benches/python_rows.py"))
        .args([
            &server.url(),
            &server.token,
            &job.to_string(),
            "bench-study",
        ])
        .env("PYTHONPATH", root.join("python"))
        .status()
        .expect("run benches/python_rows.py");
    assert!(status.success(), "benches/python_rows.py failed");
}
