//! Row ingest over loopback: batches of 500 rows (8 metrics each) posted to a real release
//! server, postcard and JSON, by 1, 2 and 4 concurrent clients (one job each).
//!
//! Bodies are encoded before the clock starts, so the figures are the server's (plus HTTP on
//! loopback) and not the client's encoder competing for the same two cores. Every batch is
//! acknowledged only after its group commit is durable (fsync).
//!
//! `cargo bench -p gaia-cli --bench ingest` (GAIA_BENCH_ROWS sets rows per run, default 400000).

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;

fn run(server: &BenchServer, threads: u64, rows: u64, postcard: bool) -> f64 {
    let client = server.client();
    let jobs = running_jobs(&client, threads as usize);
    let per_thread = rows / BATCH / threads;
    let bodies: Vec<Vec<Vec<u8>>> = jobs
        .iter()
        .map(|a| encode_batches(a, 0, per_thread, postcard))
        .collect();
    let bytes: usize = bodies.iter().flatten().map(Vec::len).sum();
    let cpu0 = server.cpu();
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for (a, bodies) in jobs.iter().zip(&bodies) {
            s.spawn(move || post_batches(server, a.job.id, bodies, postcard));
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    let cpu1 = server.cpu();
    let total = per_thread * threads * BATCH;
    for a in &jobs {
        assert_eq!(
            client.job(a.job.id).unwrap().progress.rows,
            per_thread * BATCH
        );
    }
    let rate = total as f64 / secs;
    let us_per_row = |cpu: f64| cpu * 1e6 / total as f64;
    println!(
        "{:<8} {:>2} clients  {:>7} rows  {:>6.1} MB  {:>5.2} s  {:>7.0} rows/s   server CPU {:.2} us/row (writer thread {:.2})",
        if postcard { "postcard" } else { "json" },
        threads,
        total,
        bytes as f64 / 1e6,
        secs,
        rate,
        us_per_row(cpu1.0 - cpu0.0),
        us_per_row(cpu1.1 - cpu0.1),
    );
    rate
}

fn main() {
    let rows: u64 = std::env::var("GAIA_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400_000);
    println!(
        "row ingest, {rows} rows per run in batches of {BATCH} (8 metrics each), {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let server = BenchServer::start(&[]);
    // Warm up (page cache, allocator, connection pool).
    run(&server, 2, 50_000, true);
    println!("---");
    let mut best = 0f64;
    for threads in [1, 2, 4] {
        best = best.max(run(&server, threads, rows, true));
    }
    for threads in [1, 2, 4] {
        run(&server, threads, rows, false);
    }
    println!("best postcard: {best:.0} rows/s (target >= 200000)");
    println!("server RSS after ingest: {:.1} MiB", server.rss_mib());
}
