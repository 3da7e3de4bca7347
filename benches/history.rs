//! Reading results back over HTTP, and the server's memory:
//! - server RSS idle (just started, empty database);
//! - a 100,000-row job's history read whole (`GET /api/v1/jobs/{id}/rows`);
//! - a 1,000,000-row job downsampled to 2,000 points (`?points=2000`);
//! - server RSS after storing those 1.1 M rows;
//! - server RSS idle again, restarted on that database once it also holds 10,000 jobs.
//!
//! Times are from sending the request until the whole JSON answer has arrived (what a
//! dashboard waits for); parsing it on the client is reported apart.
//!
//! `cargo bench -p gaia-cli --bench history`

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use gaia_core::model::{Capabilities, JobKind, JobSpec};
use gaia_core::protocol::{ClaimRequest, CompleteRequest, Finished, Outcome};

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
    let mut server = BenchServer::start(&[]);
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

    // A lab's database: the rows above and 10,000 jobs (9,000 of them ended).
    let jobs = 10_000;
    for chunk in 0..jobs / 1000 {
        let specs = (0..1000)
            .map(|i| JobSpec::experiment("cma_es", 100_000 + chunk * 1000 + i))
            .collect();
        client.submit_batch(specs).unwrap();
    }
    // Ended as a worker ends them: each report rides on the next claim.
    let worker = register(&client, "bench-ender", &[JobKind::Experiment]);
    let mut finished = None;
    for _ in 0..9_000 {
        let a = client
            .claim(&ClaimRequest {
                worker_id: worker.clone(),
                capabilities: Capabilities {
                    kinds: vec![JobKind::Experiment],
                    ..Capabilities::default()
                },
                wait_ms: 0,
                finished: finished.take(),
                watch_study: None,
            })
            .unwrap()
            .expect("a queued job");
        finished = Some(Finished {
            job: a.job.id,
            report: CompleteRequest {
                attempt: a.attempt,
                lease: a.lease,
                outcome: Outcome::Succeeded,
                exit_code: Some(0),
                duration_ms: 1000,
                error: None,
                result: None,
                started_us: None,
            },
        });
    }
    let last = finished.take().unwrap();
    client.complete(last.job, &last.report).unwrap();
    server.restart();
    let client = server.client();
    client.healthz().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let idle = server.rss_mib();
    let list = client.status().unwrap();
    println!(
        "server RSS idle, restarted on 1.1 M rows and {} jobs ({} succeeded): {idle:.1} MiB (target <= 30)",
        list.jobs.values().sum::<u64>(),
        list.jobs["succeeded"]
    );
}
