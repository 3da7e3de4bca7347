//! Method comparison: a study of 10 methods × 10 environments × 50 seeds compared with 2,000
//! bootstrap resamples — the aggregates and their intervals, the probability of improvement of
//! all 45 pairs — and the same with every view (profiles, per-environment aggregates, seeds
//! needed). Pure CPU over jobs already in memory, as the server runs it once the store has
//! read them.
//!
//! `cargo bench -p gaia-core --bench compare`

use std::time::Instant;

use gaia_core::model::{Job, JobSpec, JobState};
use gaia_core::study::compare::{CompareOptions, StudyRuns, compare};

const METHODS: usize = 10;
const ENVS: [&str; 10] = [
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCarContinuous-v0",
    "Pendulum-v1",
    "LunarLander-v3",
    "sphere",
    "rastrigin",
    "Env7-v0",
    "Env8-v0",
    "Env9-v0",
];
const SEEDS: u64 = 50;

/// A small deterministic generator (xorshift), so every run compares the same study.
struct Xs(u64);
impl Xs {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn study() -> StudyRuns {
    let mut r = Xs(0x9e37_79b9_7f4a_7c15);
    let mut jobs = Vec::new();
    let mut id = 0;
    for m in 0..METHODS {
        for env in ENVS {
            for seed in 1..=SEEDS {
                id += 1;
                let score = 100.0 * (1.0 - m as f64 / 12.0) * (0.6 + 0.6 * r.unit());
                let spec = JobSpec {
                    env: Some(env.into()),
                    seed: Some(seed),
                    study: Some("bench".into()),
                    ..JobSpec::experiment(&format!("method_{m:02}"), 100_000)
                };
                let job: Job = serde_json::from_value(serde_json::json!({
                    "id": id, "spec": spec, "state": JobState::Succeeded, "attempt": 1,
                    "submitted_at": 0, "result": {"mean": score},
                    "progress": {"best_ever": score, "evals": 100000.0, "rows": 100},
                }))
                .expect("a job");
                jobs.push(job);
            }
        }
    }
    StudyRuns {
        name: "bench".into(),
        jobs,
        curves: Default::default(),
    }
}

/// CPU seconds this process has used, all threads together: on a machine busy with other work
/// the wall time says little, the CPU time what the comparison costs.
fn cpu_secs() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
}

fn time(label: &str, runs: &[StudyRuns], opts: &CompareOptions) {
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let (t, c0) = (Instant::now(), cpu_secs());
        let c = compare(runs, opts).expect("a comparison");
        wall.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_secs() - c0);
        assert_eq!(c.methods.len(), METHODS);
        assert_eq!(c.improvement.len(), METHODS * (METHODS - 1) / 2);
    }
    wall.sort_by(f64::total_cmp);
    cpu.sort_by(f64::total_cmp);
    println!(
        "{label}: wall median {:.0} ms (best {:.0}), CPU median {:.0} ms over all threads (5 runs)",
        wall[2] * 1e3,
        wall[0] * 1e3,
        cpu[2] * 1e3
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let runs = [study()];
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "compare: {METHODS} methods × {} envs × {SEEDS} seeds, 2,000 resamples, {cores} cores, load {}",
        ENVS.len(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    time(
        "aggregates + P(X > Y) of 45 pairs",
        &runs,
        &CompareOptions::default(),
    );
    let all = CompareOptions {
        profile: true,
        by_env: true,
        seeds_needed: Some(0.05),
        ..CompareOptions::default()
    };
    time(
        "  + profiles, per-env aggregates, seeds needed",
        &runs,
        &all,
    );
}
