//! The soak's short version (the 30-minute one is `benches/soak.rs`): a real server, simulated
//! and real workers, `kill -9` of the server and of workers and network cuts (SIGSTOP of the
//! server) at random; the checker reads the database.

use std::time::Duration;

use crate::helper::*;

#[test]
fn a_short_soak_under_kills_and_cuts_loses_and_duplicates_nothing() {
    let cfg = soak::Config {
        gaia: gaia_bin(),
        duration: Duration::from_secs(20),
        rows: 15_000,
        sim_workers: 8,
        real_workers: 2,
        rows_per_job: 2_000,
        real_lines: 100,
        fault_every: 4.0,
        lease_timeout_secs: 4,
        seed: 7,
    };
    let report = soak::run(&cfg);
    report.print();
    let faults: u64 = report.faults.values().sum();
    assert!(faults >= 3, "too few faults injected: {:?}", report.faults);
    assert!(report.ok(), "{:#?}", report.violations);
    assert!(report.real_succeeded > 0, "no real job succeeded");
}
