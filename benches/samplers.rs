//! Adaptive studies' costs on the server: how long TPE takes to propose a configuration from
//! 1,000 finished ones (it runs inside the queue's write, when a configuration ends: target p99
//! ≤ 5 ms), and how long an ASHA decision takes against a rung holding 1,000 values.
//!
//! `cargo bench -p gaia-core --bench samplers`

use std::hint::black_box;
use std::time::Instant;

use gaia_core::model::Sampler;
use gaia_core::search::{Config, config_key, propose_tpe, sample};
use gaia_core::study::parse_param_sweep;

/// This thread's CPU time in ms: the work itself, whatever else the machine does (wall-clock
/// percentiles on a busy 2-core machine measure the scheduler as much as the code).
fn cpu_ms() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let space: Vec<_> = [
        "lr=loguniform(1e-3,1e-1)",
        "sigma=uniform(0.02,0.5)",
        "pop_size=choice(32,64,128)",
        "layers=int(1,4)",
    ]
    .iter()
    .map(|s| parse_param_sweep(s).unwrap())
    .collect();
    let finished = 1000;
    let configs = sample(&space, Sampler::Random, finished, 1, &Default::default()).unwrap();
    let history: Vec<(Config, f64)> = configs
        .into_iter()
        .map(|c| {
            let lr = c["lr"].as_f64().unwrap();
            let score = -(lr.ln() - 0.01f64.ln()).powi(2);
            (c, score)
        })
        .collect();
    let pending: Vec<Config> = Vec::new();
    let rounds = 300;
    let mut times = Vec::with_capacity(rounds);
    let mut cpu = Vec::with_capacity(rounds);
    for i in 0..rounds {
        let (t, c0) = (Instant::now(), cpu_ms());
        let c = propose_tpe(&space, &history, &pending, 7, finished + i as u64).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        cpu.push(cpu_ms() - c0);
        black_box(config_key(&c));
    }
    times.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "tpe proposal with {finished} finished configurations (4 params): wall p50 {:.2} ms, p99 {:.2} ms; CPU p50 {:.2} ms, p99 {:.2} ms (target p99 ≤ 5 ms; load {})",
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        percentile(&cpu, 0.5),
        percentile(&cpu, 0.99),
        load.split_whitespace().next().unwrap_or("?")
    );

    let rule = gaia_core::early_stop::parse("asha(min_evals=1000, eta=3)").unwrap();
    let rung: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37).sin()).collect();
    let t = Instant::now();
    let n = 100_000;
    for i in 0..n {
        black_box(rule.decide(black_box((i as f64).cos()), &rung));
    }
    println!(
        "asha decision against a rung of 1,000 values: {:.1} µs",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
}
