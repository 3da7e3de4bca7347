//! The soak (issue 13): 30 minutes of a release `gaia serve` with 50 simulated and 4 real
//! workers under random `kill -9` of the server and of workers and random network cuts
//! (SIGSTOP of the server, some longer than the lease timeout), a million rows; then a checker
//! that reads the database: every acknowledged row stored exactly once, every job terminal or
//! running, no attempt spent by the server's own stall. Not run by CI (a short version is:
//! `tests/soak.rs`).
//!
//! `cargo bench -p gaia-cli --bench soak` — GAIA_SOAK_SECS (default 1800), GAIA_SOAK_ROWS
//! (1,000,000), GAIA_SOAK_SIM (50), GAIA_SOAK_REAL (4), GAIA_SOAK_FAULT_EVERY (mean seconds
//! between faults, 20), GAIA_SOAK_SEED. Exits 1 if the checker finds anything.

#[path = "../tests/helper/soak.rs"]
mod soak;

use std::time::Duration;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let cfg = soak::Config {
        gaia: env!("CARGO_BIN_EXE_gaia").into(),
        duration: Duration::from_secs(env("GAIA_SOAK_SECS", 1800)),
        rows: env("GAIA_SOAK_ROWS", 1_000_000),
        sim_workers: env("GAIA_SOAK_SIM", 50) as usize,
        real_workers: env("GAIA_SOAK_REAL", 4) as usize,
        rows_per_job: 5_000,
        real_lines: 300,
        fault_every: env("GAIA_SOAK_FAULT_EVERY", 20) as f64,
        lease_timeout_secs: 8,
        seed: env("GAIA_SOAK_SEED", 0x5eed),
    };
    println!("soak: {cfg:?}");
    let report = soak::run(&cfg);
    report.print();
    if !report.ok() {
        std::process::exit(1);
    }
}
