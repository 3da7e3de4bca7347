//! 5,000 simulated workers heart-beating every 5 s against one server: heartbeat latency.
//!
//! `cargo bench -p gaia-cli --bench heartbeat` (HEARTBEAT_WORKERS, HEARTBEAT_SECS to change the
//! load; BENCH_QUICK=1 for 1,000 workers over 10 s).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BenchServer, percentile};
use gaia_core::model::JobKind;
use gaia_core::protocol::{HeartbeatRequest, RegisterRequest};

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let workers: usize = std::env::var("HEARTBEAT_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 1000 } else { 5000 });
    let secs: u64 = std::env::var("HEARTBEAT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 10 } else { 30 });
    let period = Duration::from_secs(5);
    let server = BenchServer::start(&[]);
    let threads = 16;

    // Register every worker (concurrently: each registration is a durable write).
    let t = Instant::now();
    let ids: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let client = server.client();
                s.spawn(move || {
                    (k..workers)
                        .step_by(threads)
                        .map(|i| {
                            client
                                .register(&RegisterRequest {
                                    worker_id: None,
                                    name: format!("sim-{i}"),
                                    version: gaia_core::VERSION.into(),
                                    hardware: Default::default(),
                                    kinds: vec![JobKind::Hash],
                                    tags: vec![],
                                    slots: 1,
                                })
                                .unwrap()
                                .worker_id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    println!(
        "registered {workers} workers in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let ids = Arc::new(ids);

    // Each simulated worker heartbeats every 5 s, spread evenly over the period.
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs(secs);
    let cpu0 = server.cpu();
    let lat: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let client = server.client();
                let ids = ids.clone();
                s.spawn(move || {
                    let mine: Vec<usize> = (k..ids.len()).step_by(threads).collect();
                    let mut out = Vec::new();
                    // Worker i beats at start + (i / n) * period + j * period.
                    let mut due: Vec<(Instant, usize)> = mine
                        .iter()
                        .map(|&i| (start + period.mul_f64(i as f64 / ids.len() as f64), i))
                        .collect();
                    loop {
                        let (at, pos) = due
                            .iter()
                            .enumerate()
                            .map(|(p, (t, _))| (*t, p))
                            .min()
                            .unwrap();
                        if at >= end {
                            break;
                        }
                        let now = Instant::now();
                        if at > now {
                            std::thread::sleep(at - now);
                        }
                        let i = due[pos].1;
                        let t = Instant::now();
                        client
                            .heartbeat(&ids[i], &HeartbeatRequest::default())
                            .unwrap();
                        out.push(t.elapsed());
                        due[pos].0 += period;
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let cpu1 = server.cpu();
    let mut lat = lat;
    lat.sort();
    let n = lat.len();
    println!(
        "{workers} workers heart-beating every 5 s for {secs} s: {n} heartbeats ({:.0}/s), latency p50 {}, p99 {}, max {} (target p99 ≤ 50 ms); server CPU {:.1} % of one core",
        n as f64 / secs as f64,
        common::ms(percentile(&lat, 50.0)),
        common::ms(percentile(&lat, 99.0)),
        common::ms(*lat.last().unwrap()),
        (cpu1.0 - cpu0.0) / secs as f64 * 100.0
    );
    println!(
        "server RSS with {workers} workers: {:.1} MiB",
        server.rss_mib()
    );
}
