//! Claim latency with fair share on and off, same data, same run: 100 users (shares 1–4) with
//! 1,000,000 queued jobs between them, a tenth of them needing a GPU the claiming slots lack,
//! priorities 0–3.
//!
//! The queue is filled through the library (`Queue::submit_many_as`, one transaction per 10,000
//! jobs of one user), then a release `gaia serve` opens it, first with `--fair-share on`, then,
//! on the same data dir, with `--fair-share off`. In each: 1,000 claims from one slot with
//! nothing to report (the claim alone), then 4 slots report-and-claim in a loop (`finished` on
//! the claim, as `gaia work` does) for 2,000 claims; each call is timed from sending it until
//! its answer has arrived over loopback. 100 claims of each phase warm up first. Before the
//! server runs, the choice alone (`Tx::next_job` inside a write transaction of the library, no
//! HTTP, nothing written) is timed both ways: what fair share itself costs a claim.
//!
//! `cargo bench -p gaia-cli --bench fairshare` (GAIA_BENCH_QUEUED and GAIA_BENCH_USERS set the
//! size; GAIA_BENCH_DIR the disk).

#[path = "common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use gaia_core::model::{Actor, Capabilities, JobKind, JobSpec, Requirements, UserInfo};
use gaia_core::protocol::{ClaimRequest, CompleteRequest, Finished, Outcome};
use gaia_core::queue::{Queue, QueueConfig};
use gaia_core::store::Store;

const BATCH: usize = 10_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// Fills a fresh data dir with `users` users and `queued` queued jobs.
fn fill(data: &std::path::Path, users: usize, queued: usize) {
    let t0 = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open(data).unwrap();
        let queue = Queue::new(store.clone(), QueueConfig::default()).unwrap();
        for u in 0..users {
            let user = UserInfo {
                share: (1 + u % 4) as f64,
                ..UserInfo::new(&format!("user{u:03}"), 0)
            };
            store.write(move |tx| tx.save_user(&user)).await.unwrap();
        }
        let per_user = queued / users;
        let job = |k: usize| JobSpec {
            priority: (k % 4) as i32,
            requirements: Requirements {
                gpus: u32::from(k.is_multiple_of(10)),
                ..Requirements::default()
            },
            ..JobSpec::builtin(JobKind::Reverse, "abc")
        };
        let mut n = 0usize;
        // Round-robin over users, one batch each, so ids interleave between users.
        for round in 0..per_user.div_ceil(BATCH) {
            for u in 0..users {
                let take = BATCH.min(per_user - round * BATCH);
                let specs: Vec<JobSpec> = (n..n + take).map(job).collect();
                let who = Actor::user(&format!("user{u:03}"));
                queue.submit_many_as(specs, &who).await.unwrap();
                n += take;
            }
        }
        // What the division left over goes to the first user.
        if n < queued {
            let specs: Vec<JobSpec> = (n..queued).map(job).collect();
            queue
                .submit_many_as(specs, &Actor::user("user000"))
                .await
                .unwrap();
        }
    });
    let size = std::fs::metadata(data.join(gaia_core::store::DB_FILE))
        .map(|m| m.len())
        .unwrap_or(0);
    println!(
        "filled: {queued} queued jobs of {users} users in {:.1} s ({:.0} MiB)",
        t0.elapsed().as_secs_f64(),
        size as f64 / (1 << 20) as f64
    );
}

/// The choice alone, in the library: `next_job` with fair share on and off, timed per call.
fn choice(data: &std::path::Path) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // The store of `fill` closes a moment after it is dropped (its writer thread ends).
    let deadline = Instant::now() + Duration::from_secs(60);
    let store = loop {
        match Store::open(data) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("{e}"),
        }
    };
    println!("the choice alone (Tx::next_job in a write transaction, nothing written):");
    for (label, fair) in [
        (
            "fair share on",
            Some(gaia_core::fairshare::DEFAULT_HALF_LIFE),
        ),
        ("fair share off", None),
    ] {
        let times = rt
            .block_on(store.write(move |tx| {
                let slot = cpu_slot();
                let mut times = Vec::with_capacity(2000);
                for i in 0..2100 {
                    let t0 = Instant::now();
                    let job = tx.next_job(&slot, fair, gaia_core::model::now_ms())?;
                    assert!(job.is_some());
                    if i >= 100 {
                        times.push(t0.elapsed());
                    }
                }
                Ok(times)
            }))
            .unwrap();
        report(label, times);
    }
}

fn cpu_slot() -> Capabilities {
    Capabilities {
        kinds: vec![JobKind::Reverse],
        ..Capabilities::default()
    }
}

fn report(label: &str, mut t: Vec<Duration>) {
    t.sort();
    println!(
        "  {label:<28} n={:<5} p50 {}   p90 {}   p99 {}   max {}",
        t.len(),
        ms(percentile(&t, 50.0)),
        ms(percentile(&t, 90.0)),
        ms(percentile(&t, 99.0)),
        ms(*t.last().unwrap())
    );
}

/// One mode: claims alone, then report-and-claim from 4 slots.
fn measure(data: &std::path::Path, mode: &str) {
    let server = BenchServer::start_in(data, &["--fair-share", mode]);
    let client = server.client();
    println!("fair share {mode}:");
    let worker = register(&client, &format!("bench-{mode}"), &[JobKind::Reverse]);
    let cpu0 = server.cpu().0;
    let mut alone = Vec::new();
    let mut held = Vec::new();
    for i in 0..1100 {
        let t0 = Instant::now();
        let a = client
            .claim(&ClaimRequest {
                worker_id: worker.clone(),
                capabilities: cpu_slot(),
                wait_ms: 0,
                finished: None,
                watch_study: None,
            })
            .unwrap()
            .expect("a queued job");
        if i >= 100 {
            alone.push(t0.elapsed());
        }
        held.push(a);
    }
    let cpu_alone = server.cpu().0 - cpu0;
    report("claim", alone);
    println!(
        "  {:<28} server CPU {:.0} µs per claim",
        "",
        cpu_alone * 1e6 / 1100.0
    );
    // Give back what was claimed (not timed), so the next phase starts from a steady queue.
    for a in held {
        let req = CompleteRequest {
            attempt: a.attempt,
            lease: a.lease,
            outcome: Outcome::Succeeded,
            exit_code: Some(0),
            duration_ms: 1,
            error: None,
            result: None,
            started_us: None,
        };
        client.complete(a.job.id, &req).unwrap();
    }
    let slots = 4;
    let per = 550;
    let owners = std::sync::Mutex::new(std::collections::BTreeMap::<String, u32>::new());
    let times = std::thread::scope(|s| {
        let handles: Vec<_> = (0..slots)
            .map(|_| {
                let (client, worker, owners) = (client.clone(), worker.clone(), &owners);
                s.spawn(move || {
                    let mut times = Vec::new();
                    let mut last: Option<gaia_core::protocol::Assignment> = None;
                    for i in 0..per {
                        let finished = last.take().map(|a| Finished {
                            job: a.job.id,
                            report: CompleteRequest {
                                attempt: a.attempt,
                                lease: a.lease,
                                outcome: Outcome::Succeeded,
                                exit_code: Some(0),
                                duration_ms: 1,
                                error: None,
                                result: None,
                                started_us: None,
                            },
                        });
                        let t0 = Instant::now();
                        let r = client
                            .claim_with(&ClaimRequest {
                                worker_id: worker.clone(),
                                capabilities: cpu_slot(),
                                wait_ms: 0,
                                finished,
                                watch_study: None,
                            })
                            .unwrap();
                        let a = r.assignment.expect("a queued job");
                        if i >= 25 {
                            times.push(t0.elapsed());
                            *owners
                                .lock()
                                .unwrap()
                                .entry(a.job.owner.clone())
                                .or_default() += 1;
                        }
                        // Hold the job a moment, as a real one would (usage to share).
                        std::thread::sleep(Duration::from_millis(1));
                        last = Some(a);
                    }
                    times
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    report(&format!("report + claim, {slots} slots"), times);
    let owners = owners.into_inner().unwrap();
    let (lo, hi) = owners
        .values()
        .fold((u32::MAX, 0), |(l, h), &n| (l.min(n), h.max(n)));
    println!(
        "  {:<28} {} users served, {lo}–{hi} jobs each",
        "",
        owners.len()
    );
    server.stop();
}

fn main() {
    let queued = env_usize("GAIA_BENCH_QUEUED", 1_000_000);
    let users = env_usize("GAIA_BENCH_USERS", 100);
    let dir = bench_dir();
    let data = dir.path().join("data");
    fill(&data, users, queued);
    choice(&data);
    measure(&data, "on");
    measure(&data, "off");
}
