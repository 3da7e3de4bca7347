//! Reading results back over HTTP, and the server's memory:
//! - server RSS idle (just started, empty database);
//! - a 100,000-row job's history read whole (`GET /api/v1/jobs/{id}/rows`);
//! - a 1,000,000-row job downsampled to 2,000 points (`?points=2000`);
//! - server RSS after storing those 1.1 M rows.
//!
//! Times are from sending the request until the whole JSON answer has arrived (what a
//! dashboard waits for); parsing it on the client is reported apart.
//!
//! `cargo bench -p gaia-cli --bench history`

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;

fn fetch(server: &BenchServer, agent: &ureq::Agent, path: &str) -> (Duration, Vec<u8>) {
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
    (t0.elapsed(), body)
}

fn measure(server: &BenchServer, what: &str, path: &str, runs: usize, expect_rows: usize) {
    let agent = server.agent();
    let mut times = Vec::new();
    let mut last = Vec::new();
    for _ in 0..2 {
        fetch(server, &agent, path); // warm-up
    }
    let cpu0 = server.cpu().0;
    for _ in 0..runs {
        let (t, body) = fetch(server, &agent, path);
        times.push(t);
        last = body;
    }
    let cpu = (server.cpu().0 - cpu0) / runs as f64;
    times.sort();
    let t0 = Instant::now();
    let parsed: gaia_core::protocol::RowsResponse = serde_json::from_slice(&last).unwrap();
    let parse = t0.elapsed();
    assert!(
        parsed.rows.len() <= expect_rows && parsed.rows.len() * 2 >= expect_rows,
        "{} rows",
        parsed.rows.len()
    );
    println!(
        "{what}:\n    p50 {}  min {}  max {}  server CPU {} per request  ({} rows in answer, {:.1} MB JSON; client parse {})",
        ms(percentile(&times, 50.0)),
        ms(times[0]),
        ms(*times.last().unwrap()),
        ms(Duration::from_secs_f64(cpu)),
        parsed.rows.len(),
        last.len() as f64 / 1e6,
        ms(parse)
    );
}

fn main() {
    let server = BenchServer::start(&[]);
    let client = server.client();
    // Let the server settle (runtime threads, first allocations) before the idle figure.
    client.healthz().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    println!(
        "server RSS idle: {:.1} MiB (target <= 30)",
        server.rss_mib()
    );

    let jobs = running_jobs(&client, 2);
    let t0 = Instant::now();
    fill_job(&server, &jobs[0], 100_000, 2);
    fill_job(&server, &jobs[1], 1_000_000, 2);
    println!(
        "stored 1,100,000 rows in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    println!("server RSS after 1.1 M rows: {:.1} MiB", server.rss_mib());

    let (small, big) = (jobs[0].job.id, jobs[1].job.id);
    measure(
        &server,
        "100,000-row history, whole (target <= 100 ms)",
        &format!("/api/v1/jobs/{small}/rows"),
        10,
        100_000,
    );
    measure(
        &server,
        "1,000,000-row job downsampled to 2,000 points (target <= 50 ms)",
        &format!("/api/v1/jobs/{big}/rows?points=2000"),
        10,
        2_000,
    );
    measure(
        &server,
        "100,000-row job downsampled to 2,000 points",
        &format!("/api/v1/jobs/{small}/rows?points=2000"),
        10,
        2_000,
    );
    println!("server RSS after the reads: {:.1} MiB", server.rss_mib());
}
