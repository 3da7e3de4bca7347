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
