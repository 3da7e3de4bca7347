//! Submit → claim through the long poll: a claimer waits on the server; the bench submits one
//! job, and measures from the start of the submit call until the claimer holds the assignment.
//! That covers the submit's durable commit, the wake-up, the claim's durable commit (the job is
//! marked running with a lease) and two HTTP answers on loopback.
//!
//! `cargo bench -p gaia-cli --bench claim` (GAIA_BENCH_JOBS sets the submits, default 1000).

#[path = "common/mod.rs"]
mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use gaia_core::model::{Capabilities, JobKind, JobSpec};
use gaia_core::protocol::ClaimRequest;

fn main() {
    let n: usize = std::env::var("GAIA_BENCH_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let server = BenchServer::start(&[]);
    let client = server.client();
    let worker = register(&client, "bench-claimer", &[JobKind::Reverse]);

    // The claimer: claims in a loop, reporting when each assignment arrived.
    let (got_tx, got_rx) = mpsc::channel::<(u64, Instant)>();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let claimer = {
        let client = client.clone();
        std::thread::spawn(move || {
            while go_rx.recv().is_ok() {
                let a = client
                    .claim(&ClaimRequest {
                        worker_id: worker.clone(),
                        capabilities: Capabilities {
                            kinds: vec![JobKind::Reverse],
                            ..Capabilities::default()
                        },
                        wait_ms: 30_000,
                        finished: None,
                        watch_study: None,
                    })
                    .unwrap()
                    .expect("a job within the wait");
                got_tx.send((a.job.id, Instant::now())).unwrap();
            }
        })
    };

    let spec = JobSpec::builtin(JobKind::Reverse, "abc");
    let mut latencies = Vec::with_capacity(n);
    let mut submits = Vec::with_capacity(n);
    for i in 0..n + 50 {
        go_tx.send(()).unwrap();
        // Let the claim reach the server and park (a worker's claim is parked long before a
        // job arrives; nothing outside the server can observe the moment).
        std::thread::sleep(Duration::from_millis(3));
        let t0 = Instant::now();
        let id = client.submit(&spec).unwrap();
        let submitted = t0.elapsed();
        let (got, at) = got_rx.recv().unwrap();
        assert_eq!(got, id);
        if i >= 50 {
            // The first 50 warm up.
            latencies.push(at.duration_since(t0));
            submits.push(submitted);
        }
    }
    drop(go_tx);
    claimer.join().unwrap();
    latencies.sort();
    submits.sort();
    println!("submit -> claim answered through the long poll, {n} jobs, one waiting claimer:");
    println!(
        "  p50 {}   p90 {}   p99 {}   max {}",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 90.0)),
        ms(percentile(&latencies, 99.0)),
        ms(*latencies.last().unwrap())
    );
    println!(
        "  of which the submit call alone: p50 {}   p99 {}",
        ms(percentile(&submits, 50.0)),
        ms(percentile(&submits, 99.0))
    );
}
