//! 5,000 simulated workers heart-beating every 5 s against one server: heartbeat latency.
//!
//! Each worker is what a GPU box sends: it registered with 8 GPUs, holds a running job (its
//! lease is renewed by every heartbeat), and reports its utilisation — CPU, memory and each of
//! its 8 GPUs — with every beat.
//!
//! `cargo bench -p gaia-cli --bench heartbeat` (HEARTBEAT_WORKERS, HEARTBEAT_SECS to change the
//! load; BENCH_QUICK=1 for 1,000 workers over 10 s; HEARTBEAT_PAYLOAD=empty for the bare
//! heartbeats of earlier rounds: no hardware, no job, no utilisation).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BenchServer, percentile};
use gaia_core::model::{Capabilities, Gpu, GpuUsage, Hardware, JobKind, JobSpec, Usage};
use gaia_core::protocol::{ClaimRequest, HeartbeatRequest, LeaseRef, RegisterRequest};

/// A GPU box's machine, as `gaia work` reports it.
fn eight_gpu_box(i: usize) -> Hardware {
    Hardware {
        os: "linux".into(),
        arch: "x86_64".into(),
        hostname: format!("gpu-node-{i:04}"),
        cpu_model: "AMD EPYC 7763 64-Core Processor".into(),
        cpu_cores: 128,
        memory_mb: 1_031_000,
        gpus: (0..8)
            .map(|g| Gpu {
                index: g,
                name: "NVIDIA A100-SXM4-80GB".into(),
                memory_mb: 81_920,
                driver: "550.54.15".into(),
            })
            .collect(),
    }
}

/// Utilisation as a busy 8-GPU worker reports it, varying from beat to beat.
fn usage(i: usize, beat: usize) -> Usage {
    let x = (i * 31 + beat * 7) as f32;
    Usage {
        cpu_percent: 20.0 + (x % 70.0),
        memory_percent: 35.0 + (x % 40.0),
        gpu_percent: (0..8)
            .map(|g| 50.0 + ((x + g as f32 * 13.0) % 50.0))
            .collect(),
        // Each GPU's nvidia-smi readings, as a worker sends them with every beat.
        gpus: (0..8)
            .map(|g| GpuUsage {
                index: g,
                utilization: Some(50.0 + ((x + g as f32 * 13.0) % 50.0)),
                memory_used_mb: Some(20_000 + (x as u64 * 37 + u64::from(g)) % 40_000),
                memory_total_mb: Some(81_920),
                temperature_c: Some(55.0 + (x % 20.0)),
                error: None,
            })
            .collect(),
    }
}

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
    let realistic = std::env::var("HEARTBEAT_PAYLOAD").as_deref() != Ok("empty");
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
                                    hardware: if realistic {
                                        eight_gpu_box(i)
                                    } else {
                                        Default::default()
                                    },
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
    // Realistic: every worker runs a job, whose lease its heartbeats renew.
    let leases: Vec<Vec<LeaseRef>> = if realistic {
        let client = server.client();
        for chunk in (0..workers).collect::<Vec<_>>().chunks(1000) {
            let specs = chunk
                .iter()
                .map(|i| JobSpec::builtin(JobKind::Hash, &format!("job-{i}")))
                .collect();
            client.submit_batch(specs).unwrap();
        }
        let t = Instant::now();
        let leases: Vec<Vec<LeaseRef>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|k| {
                    let client = server.client();
                    let ids = &ids;
                    s.spawn(move || {
                        (k..workers)
                            .step_by(threads)
                            .map(|i| {
                                let a = client
                                    .claim(&ClaimRequest {
                                        worker_id: ids[i].clone(),
                                        capabilities: Capabilities {
                                            kinds: vec![JobKind::Hash],
                                            ..Capabilities::default()
                                        },
                                        wait_ms: 0,
                                        finished: None,
                                        watch_study: None,
                                    })
                                    .unwrap()
                                    .expect("a job for every worker");
                                (
                                    i,
                                    vec![LeaseRef {
                                        job: a.job.id,
                                        attempt: a.attempt,
                                        lease: a.lease,
                                    }],
                                )
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut all: Vec<(usize, Vec<LeaseRef>)> = handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect();
            all.sort_by_key(|(i, _)| *i);
            all.into_iter().map(|(_, l)| l).collect()
        });
        println!(
            "each worker claimed a job ({workers} claims in {:.1} s); heartbeats carry its lease, CPU, memory and 8 GPUs' utilisation",
            t.elapsed().as_secs_f64()
        );
        leases
    } else {
        vec![Vec::new(); workers]
    };
    let ids = Arc::new(ids);
    let leases = Arc::new(leases);

    // Each simulated worker heartbeats every 5 s, spread evenly over the period.
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs(secs);
    let cpu0 = server.cpu();
    let lat: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|k| {
                let client = server.client();
                let ids = ids.clone();
                let leases = leases.clone();
                s.spawn(move || {
                    let mine: Vec<usize> = (k..ids.len()).step_by(threads).collect();
                    let mut beats = 0usize;
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
                        beats += 1;
                        let req = if realistic {
                            HeartbeatRequest {
                                running: leases[i].clone(),
                                usage: usage(i, beats),
                                draining: false,
                            }
                        } else {
                            HeartbeatRequest::default()
                        };
                        let t = Instant::now();
                        let resp = client.heartbeat(&ids[i], &req).unwrap();
                        out.push(t.elapsed());
                        assert!(resp.stale.is_empty(), "a lease was lost: {resp:?}");
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
        "{workers} workers heart-beating every 5 s for {secs} s, {} payloads: {n} heartbeats ({:.0}/s), latency p50 {}, p99 {}, max {} (target p99 ≤ 50 ms); server CPU {:.1} % of one core",
        if realistic {
            "realistic (a lease, CPU, memory, 8 GPUs)"
        } else {
            "empty"
        },
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
