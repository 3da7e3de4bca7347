//! What an experiment prints, as the server keeps it: log lines, their levels, the counts of
//! warnings and errors a job shows.

use std::time::Duration;

use gaia_core::model::{JobState, Level};
use serde_json::json;

use crate::helper::*;

const LONG: Duration = Duration::from_secs(60);

/// A failed job whose stderr said `error: ...` used to show "0 errors": only a few spellings
/// counted. The level word counts, and a failed experiment's stderr is its error output.
#[test]
fn a_failed_experiment_s_stderr_counts_as_errors() {
    let server = Server::start();
    let _w = Worker::start(&server, "w1", &[]);
    let c = server.client();
    let id = submit_fake(&c, json!({"mode": "fail_plain"}));
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Failed, "{job:?}");
    assert_eq!(job.exit_code, Some(2));
    assert_eq!(job.errors, 2, "both stderr lines are errors: {job:?}");
    let logs = c.logs(id, 0, 100).unwrap().lines;
    let level = |needle: &str| {
        logs.iter()
            .find(|l| l.text.contains(needle))
            .unwrap_or_else(|| panic!("no line {needle:?} in {logs:?}"))
            .level
    };
    assert_eq!(level("error: could not load"), Level::Error);
    assert_eq!(level("giving up after 3 tries"), Level::Error);
    // A succeeding job's stderr is not an error just for being on stderr.
    let ok = submit_fake(&c, json!({"gens": 2}));
    let job = wait_done(&c, ok, LONG);
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.errors, 0, "{job:?}");
    assert_eq!(job.warnings, 1, "the fake's WARNING line: {job:?}");
}

/// A job showed "6m 32s" left and finished in 14 s: it stopped when solved, and the ETA had
/// assumed the whole budget without saying so. The server's ETA says when it is only a bound,
/// and uses the experiment's own progress when it reports one.
#[test]
fn a_running_job_s_eta_says_when_it_is_an_upper_bound() {
    let server = Server::start();
    let _w = Worker::start(&server, "w1", &[]);
    let c = server.client();
    // The fake experiment reports evals in its GAIA lines (50 per generation) and no progress
    // of its own until the end: only the budget can bound what is left.
    let id = submit_fake(&c, json!({"gens": 40, "delay": 0.1}));
    let p = wait_for("an ETA", LONG, || {
        let j = c.job(id).unwrap();
        (j.progress.eta_secs.is_some() && j.progress.rows >= 5).then_some(j.progress)
    });
    assert!(
        p.eta_bound,
        "an ETA from the budget is an upper bound: {p:?}"
    );
    assert!(!p.fraction_reported);
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.progress.eta_secs, None, "a finished job has no ETA");
    // Its `@gaia {"progress": 1.0}` at the end was the experiment's own word.
    assert!(job.progress.fraction_reported);
}
