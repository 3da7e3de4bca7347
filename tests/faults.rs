//! Faults found by campaigns against the server, each a regression test named after what broke:
//! real processes stopped, killed and cut.

use std::time::Duration;

use gaia_core::model::JobState;
use serde_json::json;

use crate::helper::*;

const LONG: Duration = Duration::from_secs(60);

/// A server frozen (SIGSTOP: a VM pause, `docker pause`, a debugger, swapping) for longer than
/// the lease timeout used to expire every running job the moment it resumed: the time it could
/// not hear heartbeats was counted against the leases. Now the job keeps its attempt, and the
/// activity log says the server stalled.
#[test]
fn a_frozen_server_expires_no_lease() {
    let server = Server::start_with(&["--lease-timeout", "2", "--heartbeat", "0.5"]);
    let _w = Worker::start(&server, "w1", &[]);
    let c = server.client();
    let id = submit_fake(&c, json!({"gens": 60, "delay": 0.1}));
    wait_for("rows to stream", LONG, || {
        (c.job(id).unwrap().progress.rows >= 5).then_some(())
    });
    server.signal(libc::SIGSTOP);
    // Three lease timeouts without a heartbeat heard.
    std::thread::sleep(Duration::from_secs(6));
    server.signal(libc::SIGCONT);
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert_eq!(
        job.attempt, 1,
        "an attempt was spent on the server's own stall: {:?}",
        job.attempts
    );
    let rows = c.rows(id, None, None).unwrap();
    assert_eq!(
        rows.rows
            .iter()
            .filter_map(|r| r.generation)
            .collect::<Vec<_>>(),
        (1..=60).collect::<Vec<_>>(),
        "every generation exactly once"
    );
    let events = c.events(None, 1000).unwrap().events;
    assert!(
        events.iter().any(|e| e.kind == "server_stalled"),
        "no server_stalled event: {:?}",
        events.iter().map(|e| &e.kind).collect::<Vec<_>>()
    );
    assert!(
        !events
            .iter()
            .any(|e| e.kind == "job_requeued" || e.kind == "worker_lost"),
        "{:?}",
        events.iter().map(|e| &e.message).collect::<Vec<_>>()
    );
}
