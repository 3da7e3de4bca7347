//! # gaia-core
//!
//! The library behind the `gaia` command: a lab's experiment farm. Everything real lives here so
//! other Rust tools can embed it.
//!
//! Data flows one way: submit → [`queue`] → lease → run (in [`worker`]) → rows → [`store`] →
//! query. Map:
//!
//! | module | owns |
//! |---|---|
//! | [`model`] | domain types: jobs, states, workers, rows, events, tokens |
//! | [`protocol`] | wire types of every request and response, protocol version, postcard codec |
//! | [`store`] | the redb file: tables, schema version, group-committing writer |
//! | [`queue`] | job lifecycle and worker registry over the store; long-poll claims; leases |
//! | [`server`] | hyper server: routing, auth, handlers, live events, dashboard assets |
//! | [`client`] | typed blocking HTTP(S) client for every route |
//! | [`grammar`] | what an experiment prints: GAIA lines parsed into rows and rows written back as lines (pure) |
//! | [`human`] | numbers and times for people: one format per kind of value |
//! | `adaptive` | an adaptive study at run time, inside the queue's writes: rungs, pruning, tpe's proposals |
//! | [`search`] | search spaces and samplers: grid, random, Sobol, TPE (pure) |
//! | [`early_stop`] | early-stopping rules: ASHA and the median rule (pure) |
//! | [`stats`] | statistics over scores: quantiles, mean ± std (pure) |
//! | [`study`] | study sweeps (expansion, records), aggregation over seeds, ETA |
//! | [`time`] | instants as UTC dates for people (one calendar function) |
//! | [`export`] | CSV, JSON and PNG exports streamed from a store snapshot; result-file ZIPs |
//! | [`release`] | releases: metadata, signatures, safe archives, the worker's self-update |
//! | [`worker`] | the worker runtime: register, heartbeat, claim, run, stream, report |
//! | [`cluster`] | workers in batch schedulers: allocation ends, job-duration fit, Slurm scripts, autoscaling (pure) |
//! | [`error`] | one error enum per layer |

mod adaptive;
pub mod client;
pub mod cluster;
pub mod early_stop;
pub mod error;
pub mod export;
pub mod grammar;
pub mod human;
pub mod model;
pub mod protocol;
pub mod queue;
pub mod release;
pub mod search;
pub mod server;
pub mod stats;
pub mod store;
pub mod study;
pub mod time;
pub mod worker;

pub use error::{Error, Result};

/// The version of this build (`GAIA_BUILD_VERSION` at build time, else the crate version).
pub const VERSION: &str = env!("GAIA_VERSION");

/// True when release version `a` is newer than `b` (semver, with or without a leading `v`;
/// pre-releases order before their release). Unparseable versions are never newer.
pub fn version_newer(a: &str, b: &str) -> bool {
    let parse = |s: &str| semver::Version::parse(s.trim().trim_start_matches('v')).ok();
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a > b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_compare_as_semver() {
        assert!(super::version_newer("v0.6.0", "0.5.9"));
        assert!(super::version_newer("v0.6.0", "v0.6.0-rc.1"));
        assert!(!super::version_newer("v0.6.0-rc.1", "v0.6.0"));
        assert!(!super::version_newer("v0.10.0", "v0.10.0"));
        assert!(super::version_newer("v0.10.0", "v0.9.0"));
        assert!(!super::version_newer("garbage", "v0.1.0"));
    }
}

#[cfg(test)]
#[path = "architecture_tests.rs"]
mod architecture_tests;
