//! Row ingest over loopback: batches of 500 rows (8 metrics each) posted to a real release
//! server, postcard and JSON, by 1, 2 and 4 concurrent clients (one job each).
//!
//! Bodies are encoded before the clock starts, so the figures are the server's (plus HTTP on
//! loopback) and not the client's encoder competing for the same two cores. Every batch is
//! acknowledged only after its group commit is durable (fsync).
//!
//! Then the cost of early stopping: the same rows streamed into the jobs of a study whose
//! configurations are judged at rungs as their rows arrive (ASHA), against the same study
//! without early stopping, interleaved. Clients there do what workers do: stream a job's rows,
//! and when an answer says the job was pruned, report it ended and take the next job.
//!
//! `cargo bench -p gaia-cli --bench ingest` (GAIA_BENCH_ROWS sets rows per run, default 400000).

#[path = "common/mod.rs"]
mod common;

use std::time::Instant;

use common::*;
use gaia_core::model::JobKind;
use gaia_core::protocol::{CompleteRequest, Outcome, RowAck, RowBatch};

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

/// Rows into the jobs of a study of `configs` random configurations (one seed each), by
/// `threads` clients, `rows` in all; with `early_stop` the server judges each configuration
/// at rungs as its rows cross them and prunes the losers. Each job's values are offset by a
/// number drawn from its id, so configurations rank differently. Bodies are encoded as they
/// are sent (the job is only known once claimed), in both variants alike. Returns (rows/s,
/// jobs pruned).
fn run_study(
    server: &BenchServer,
    name: &str,
    threads: u64,
    rows: u64,
    early_stop: Option<&str>,
) -> (f64, u64) {
    let client = server.client();
    let stop = early_stop.map_or(String::new(), |r| format!(r#", "early_stop": "{r}""#));
    let body = format!(
        r#"{{"name": "{name}", "template": {{"max_evals": 1000000000000}},
        "sweep": {{"methods": "cma_es", "envs": "CartPole-v1", "seeds": "1",
        "params": ["lr=uniform(0,1)"]}}, "sampler": "random", "samples": 400, "sample_seed": 1{stop}}}"#
    );
    let mut resp = server
        .agent()
        .post(format!("{}/api/v1/studies", server.url()))
        .header("authorization", format!("Bearer {}", server.token))
        .header("content-type", "application/json")
        .send(&body)
        .unwrap();
    let text = resp.body_mut().read_to_string().unwrap();
    assert!(resp.status().is_success(), "{text}");
    let worker = register(&client, &format!("{name}-worker"), &[JobKind::Experiment]);
    let quota = rows / BATCH / threads;
    let pruned = std::sync::atomic::AtomicU64::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (client, worker, pruned) = (&client, &worker, &pruned);
            s.spawn(move || {
                let agent = server.agent();
                let mut sent = 0;
                while sent < quota {
                    let a = claim_now(client, worker, &[JobKind::Experiment]);
                    let offset = (a.job.id * 7919 % 1000) as f64 / 10.0;
                    let url = format!("{}/api/v1/jobs/{}/rows", server.url(), a.job.id);
                    let mut b = 0;
                    while sent < quota {
                        let mut rows = gen_rows(b * BATCH, (b + 1) * BATCH);
                        for r in &mut rows {
                            r.best = r.best.map(|v| v + offset);
                            r.best_ever = r.best_ever.map(|v| v + offset);
                        }
                        let body = gaia_core::protocol::encode_postcard(&RowBatch {
                            attempt: a.attempt,
                            lease: a.lease,
                            rows,
                            fraction: None,
                            status: None,
                        });
                        let mut resp = agent
                            .post(&url)
                            .header("authorization", format!("Bearer {}", server.token))
                            .header("content-type", gaia_core::protocol::POSTCARD_CONTENT_TYPE)
                            .send(&body[..])
                            .unwrap();
                        let ack: RowAck =
                            serde_json::from_str(&resp.body_mut().read_to_string().unwrap())
                                .unwrap();
                        assert_eq!(ack.stored, BATCH);
                        sent += 1;
                        b += 1;
                        // Pruned: the worker stops the run and reports it; at the end of the
                        // quota the run ends as done, so no lease outlives the round.
                        let outcome = match (ack.cancel, sent == quota) {
                            (true, _) => Outcome::Cancelled,
                            (false, true) => Outcome::Succeeded,
                            (false, false) => continue,
                        };
                        let end = CompleteRequest {
                            attempt: a.attempt,
                            lease: a.lease,
                            outcome,
                            exit_code: None,
                            duration_ms: 1,
                            error: None,
                            result: None,
                            started_us: None,
                        };
                        client.complete(a.job.id, &end).unwrap();
                        if ack.cancel {
                            pruned.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                        break;
                    }
                }
            });
        }
    });
    let rate = (quota * threads * BATCH) as f64 / t0.elapsed().as_secs_f64();
    // The study's configurations not reached stay queued: cancel them, so that the next
    // round's clients take that round's jobs.
    for j in client.study(name).unwrap().jobs {
        if j.state == gaia_core::model::JobState::Queued {
            client.cancel(j.id).unwrap();
        }
    }
    (rate, pruned.into_inner())
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
    println!("--- early stopping: a study judged at rungs (ASHA) vs the same study without");
    // Rungs at 64,000 evaluations × 3^k: a job crosses its first after 1,000 rows, its fifth
    // after 81,000; 2 clients, rows interleaved between the variants, three rounds.
    let rule = "asha(metric=best_ever, min_evals=64000, eta=3)";
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..3 {
        let (r, pruned) = run_study(&server, &format!("plain-{round}"), 2, rows, None);
        assert_eq!(pruned, 0);
        without.push(r);
        let (r, pruned) = run_study(&server, &format!("asha-{round}"), 2, rows, Some(rule));
        println!(
            "round {round}: without {:>7.0} rows/s   with ASHA {r:>7.0} rows/s ({pruned} jobs pruned)",
            without[round]
        );
        with.push(r);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (w, wo) = (median(&mut with), median(&mut without));
    println!(
        "ingest with rung decisions: {w:.0} rows/s vs {wo:.0} without (ratio {:.3}, medians of 3)",
        w / wo
    );
    println!("server RSS after ingest: {:.1} MiB", server.rss_mib());
}
