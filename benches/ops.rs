//! Operations against a real release server: ingest with Prometheus scraping `/metrics` every
//! second vs without (same run, in turns), ingest while a gc deletes old rows vs without, and
//! how long `/metrics` takes to answer with 5,000 workers and 1,000,000 jobs.
//!
//! `cargo bench -p gaia-cli --bench ops` (OPS_JOBS sets the jobs of the last part, default
//! 1000000; BENCH_QUICK=1 for 100,000 rows per ingest run and 100,000 jobs).

#[path = "common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use gaia_core::model::{JobKind, JobSpec};
use gaia_core::protocol::{CompleteRequest, Outcome, RegisterRequest};
use gaia_core::store::maintenance::GcRequest;

/// Ingests `rows` into `clients` fresh jobs; rows/s.
fn ingest(server: &BenchServer, clients: usize, rows: u64) -> f64 {
    let client = server.client();
    let jobs = running_jobs(&client, clients);
    let per = rows / BATCH / clients as u64;
    let bodies: Vec<Vec<Vec<u8>>> = jobs
        .iter()
        .map(|a| encode_batches(a, 0, per, true))
        .collect();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for (a, b) in jobs.iter().zip(&bodies) {
            s.spawn(move || post_batches(server, a.job.id, b, true));
        }
    });
    (per * BATCH * clients as u64) as f64 / t0.elapsed().as_secs_f64()
}

/// Scrapes `/metrics` every `every` until stopped; returns the answer times.
fn scraper(server: &BenchServer, every: Duration, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let agent = server.agent();
    let url = format!("{}/metrics", server.url());
    let mut times = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let t = Instant::now();
        let body = agent
            .get(&url)
            .header("authorization", format!("Bearer {}", server.token))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        assert!(body.contains("gaia_jobs"));
        times.push(t.elapsed());
        let next = t + every;
        while Instant::now() < next && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    times
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let rows: u64 = if quick { 100_000 } else { 400_000 };
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());

    // ---- 1. ingest with and without a scrape every second, in turns -----------------------
    println!(
        "ingest with Prometheus scraping /metrics every 1 s vs none, {rows} rows per run, 2 clients, {cpus} CPUs"
    );
    let server = BenchServer::start(&[]);
    ingest(&server, 2, 50_000);
    let (mut plain, mut scraped, mut scraped_fast) = (Vec::new(), Vec::new(), Vec::new());
    let mut scrape_times = Vec::new();
    for _ in 0..3 {
        plain.push(ingest(&server, 2, rows));
        for (every, out) in [
            (Duration::from_secs(1), &mut scraped),
            (Duration::from_millis(100), &mut scraped_fast),
        ] {
            let stop = Arc::new(AtomicBool::new(false));
            let rate = std::thread::scope(|s| {
                let h = {
                    let stop = stop.clone();
                    let server = &server;
                    s.spawn(move || scraper(server, every, stop))
                };
                let r = ingest(&server, 2, rows);
                stop.store(true, Ordering::SeqCst);
                scrape_times.extend(h.join().unwrap());
                r
            });
            out.push(rate);
        }
    }
    println!(
        "  no scrape:            {:>8.0} rows/s (median of {:?})",
        median(&mut plain.clone()),
        plain.iter().map(|r| *r as u64).collect::<Vec<_>>()
    );
    println!(
        "  scrape every 1 s:     {:>8.0} rows/s (median of {:?})",
        median(&mut scraped.clone()),
        scraped.iter().map(|r| *r as u64).collect::<Vec<_>>()
    );
    println!(
        "  scrape every 100 ms:  {:>8.0} rows/s (median of {:?})",
        median(&mut scraped_fast.clone()),
        scraped_fast.iter().map(|r| *r as u64).collect::<Vec<_>>()
    );
    scrape_times.sort();
    println!(
        "  /metrics during ingest: p50 {} p99 {} ({} scrapes)",
        ms(percentile(&scrape_times, 50.0)),
        ms(percentile(&scrape_times, 99.0)),
        scrape_times.len()
    );
    drop(server);

    // ---- 2. ingest while a gc deletes old rows ---------------------------------------------
    let old_jobs = if quick { 4 } else { 8 };
    let old_rows: u64 = if quick { 100_000 } else { 250_000 };
    println!(
        "ingest while gc deletes {} old rows ({old_jobs} ended jobs), 2 clients",
        old_jobs as u64 * old_rows
    );
    let server = BenchServer::start(&[]);
    let client = server.client();
    let old = running_jobs(&client, old_jobs);
    for a in &old {
        fill_job(&server, a, old_rows, 2);
        client
            .complete(
                a.job.id,
                &CompleteRequest {
                    attempt: a.attempt,
                    lease: a.lease,
                    outcome: Outcome::Succeeded,
                    exit_code: Some(0),
                    duration_ms: 1,
                    error: None,
                    result: None,
                    started_us: None,
                },
            )
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(1100));
    let base = ingest(&server, 2, rows);
    let gc_done = Arc::new(AtomicU64::new(0));
    let (during, report) = std::thread::scope(|s| {
        let h = {
            let client = server.client();
            let done = gc_done.clone();
            s.spawn(move || {
                let t = Instant::now();
                let r = client
                    .gc(&GcRequest {
                        rows_older_than_secs: Some(1),
                        logs_older_than_secs: None,
                        dry_run: false,
                    })
                    .unwrap();
                done.store(t.elapsed().as_millis() as u64, Ordering::SeqCst);
                r
            })
        };
        // Ingest for as long as the gc runs (at least one run).
        let mut rates = Vec::new();
        loop {
            rates.push(ingest(&server, 2, rows / 2));
            if gc_done.load(Ordering::SeqCst) > 0 {
                break;
            }
        }
        (rates, h.join().unwrap())
    });
    println!("  ingest without gc:  {base:>8.0} rows/s");
    println!(
        "  ingest during gc:   {:>8.0} rows/s (runs {:?})",
        median(&mut during.clone()),
        during.iter().map(|r| *r as u64).collect::<Vec<_>>()
    );
    println!(
        "  gc: {} rows of {} jobs in {} batches, {:.1} s; file {:.1} -> {:.1} MB",
        report.rows_deleted,
        report.row_jobs,
        report.batches,
        report.took_ms as f64 / 1000.0,
        report.file_bytes_before as f64 / 1e6,
        report.file_bytes_after as f64 / 1e6
    );
    let t = Instant::now();
    let copy = std::env::temp_dir().join(format!("gaia-bench-backup-{}.redb", std::process::id()));
    let bytes = client.backup(&copy).unwrap();
    println!(
        "  backup: {:.1} MB in {:.2} s",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let _ = std::fs::remove_file(&copy);
    drop(server);

    // ---- 3. /metrics with 5,000 workers and 1,000,000 jobs ---------------------------------
    let jobs: usize = std::env::var("OPS_JOBS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 100_000 } else { 1_000_000 });
    let workers = 5_000;
    println!("/metrics answer time with {workers} workers and {jobs} jobs");
    let server = BenchServer::start(&[]);
    let client = server.client();
    let t = Instant::now();
    let mut left = jobs;
    while left > 0 {
        let n = left.min(100_000);
        let specs: Vec<JobSpec> = (0..n)
            .map(|i| {
                let mut s = JobSpec::builtin(JobKind::Hash, "x");
                s.requirements.gpus = (i % 3) as u32;
                s
            })
            .collect();
        client.submit_batch(specs).unwrap();
        left -= n;
    }
    println!(
        "  submitted {jobs} jobs in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    std::thread::scope(|s| {
        for k in 0..16 {
            let client = server.client();
            s.spawn(move || {
                for i in (k..workers).step_by(16) {
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
                        .unwrap();
                }
            });
        }
    });
    println!(
        "  registered {workers} workers in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let agent = server.agent();
    let url = format!("{}/metrics", server.url());
    let mut times = Vec::new();
    let mut size = 0;
    for _ in 0..30 {
        let t = Instant::now();
        let body = agent
            .get(&url)
            .header("authorization", format!("Bearer {}", server.token))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        times.push(t.elapsed());
        size = body.len();
        assert!(body.contains("gaia_workers{state="), "{body}");
    }
    times.sort();
    println!(
        "  /metrics: p50 {} p99 {} ({} bytes, 30 scrapes)",
        ms(percentile(&times, 50.0)),
        ms(percentile(&times, 99.0)),
        size
    );
    println!("  server RSS: {:.1} MiB", server.rss_mib());
}
