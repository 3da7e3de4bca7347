//! Workers in schedulers, without a scheduler: preemption by signal (SIGUSR1, a scheduler's
//! SIGTERM), `--max-jobs`, a `--deadline`, and the queue-demand route autoscalers read. The real
//! Slurm runs in `slurm.rs`.

use std::time::{Duration, Instant};

use gaia_core::model::{Capabilities, Job, JobKind, JobSpec, JobState};
use serde_json::json;

use crate::helper::*;

const LONG: Duration = Duration::from_secs(60);

/// Rows of one attempt: their generations, in seq order, checked to be numbered 0, 1, 2, …
/// with no gap and no repeat.
fn generations(c: &gaia_core::client::Client, job: u64, attempt: u32) -> Vec<u64> {
    let rows = c.rows(job, None, Some(attempt)).unwrap().rows;
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(
            r.seq, i as u64,
            "job {job} attempt {attempt}: rows {rows:?}"
        );
    }
    rows.iter().map(|r| r.generation.unwrap()).collect()
}

fn outcome(job: &Job, attempt: usize) -> String {
    job.attempts[attempt - 1]
        .outcome
        .clone()
        .unwrap_or_default()
}

/// SIGUSR1 (Slurm's `--signal=B:USR1@120`): the job is stopped, every row it printed is kept
/// under its attempt, and it is queued again at once as preempted — no lease expiry, no
/// attempt spent — and the worker exits 0. The next worker runs it whole.
#[test]
fn sigusr1_gives_jobs_back_as_preempted_with_every_row_kept() {
    let server = Server::start();
    let c = server.client();
    let mut spec = JobSpec::experiment("cma_es", 1000);
    spec.params =
        serde_json::from_value(json!({"gens": 40, "delay": 0.1, "first_delay": 0.1})).unwrap();
    spec.max_attempts = 1;
    let id = c.submit(&spec).unwrap();
    let mut w = Worker::start(&server, "preempted", &[]);
    wait_for("rows to stream", LONG, || {
        (c.job(id).unwrap().progress.rows >= 5).then_some(())
    });
    let t0 = Instant::now();
    w.signal(libc::SIGUSR1);
    let status = w.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    let job = c.job(id).unwrap();
    assert_eq!(job.state, JobState::Queued, "{job:?}");
    assert!(
        outcome(&job, 1).starts_with("preempted: SIGUSR1"),
        "{}",
        outcome(&job, 1)
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    // Every generation it printed is there, in order, none twice.
    let first = generations(&c, id, 1);
    assert!(first.len() >= 5, "{first:?}");
    assert_eq!(first, (1..=first.len() as u64).collect::<Vec<_>>());
    let events = c.events(None, 200).unwrap().events;
    assert!(
        events
            .iter()
            .any(|e| e.kind == "job_preempted" && e.job == Some(id)),
        "{events:?}"
    );
    // max_attempts is 1, yet it runs again: a preemption spends no attempt.
    let _next = Worker::start(&server, "next", &[]);
    let done = wait_done(&c, id, LONG);
    assert_eq!(done.state, JobState::Succeeded, "{done:?}");
    assert_eq!(done.attempt, 2);
    assert_eq!(generations(&c, id, 2), (1..=40).collect::<Vec<_>>());
}

/// SIGTERM inside a scheduler (here Kubernetes, by its variable) preempts at once; outside one
/// it drains: the running job finishes first.
#[test]
fn sigterm_preempts_inside_a_scheduler_and_drains_outside() {
    let server = Server::start();
    let c = server.client();
    let id = submit_fake(&c, json!({"gens": 400, "delay": 0.05}));
    let mut pod = Worker::start_env(
        &server,
        "pod",
        &[],
        &[("KUBERNETES_SERVICE_HOST", "10.0.0.1")],
    );
    pod.wait_log("inside Kubernetes");
    wait_for("rows to stream", LONG, || {
        (c.job(id).unwrap().progress.rows >= 3).then_some(())
    });
    pod.signal(libc::SIGTERM);
    assert!(pod.wait_exit(Duration::from_secs(20)).success());
    let job = c.job(id).unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert!(
        outcome(&job, 1).starts_with("preempted: SIGTERM"),
        "{}",
        outcome(&job, 1)
    );
    assert!(generations(&c, id, 1).len() >= 3);

    // A plain machine (systemd, a terminal): SIGTERM lets the job finish.
    c.cancel(id).unwrap();
    let id = submit_fake(&c, json!({"gens": 30, "delay": 0.05}));
    let mut desk = Worker::start(&server, "desk", &[]);
    wait_for("the job to start", LONG, || {
        (c.job(id).unwrap().progress.rows >= 1).then_some(())
    });
    desk.signal(libc::SIGTERM);
    assert!(desk.wait_exit(LONG).success());
    let job = c.job(id).unwrap();
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert_eq!(generations(&c, id, 1).len(), 30);
}

/// `--max-jobs N` runs N jobs and exits 0, leaving the rest queued; with `--exit-when-idle`
/// a worker with nothing to do exits 0 as well.
#[test]
fn max_jobs_and_idle_exit_end_the_worker_with_success() {
    let server = Server::start();
    let c = server.client();
    let ids: Vec<u64> = (0..3)
        .map(|_| c.submit(&JobSpec::builtin(JobKind::Hash, "x")).unwrap())
        .collect();
    let mut w = Worker::start(
        &server,
        "pilot",
        &["--max-jobs", "2", "--slots", "2", "--kinds", "hash"],
    );
    assert!(w.wait_exit(LONG).success());
    let states: Vec<JobState> = ids.iter().map(|&i| c.job(i).unwrap().state).collect();
    assert_eq!(
        states.iter().filter(|s| **s == JobState::Succeeded).count(),
        2,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == JobState::Queued).count(),
        1,
        "{states:?}"
    );
    assert!(w.log.lock().unwrap().contains("(--max-jobs)"));
    let mut idle = Worker::start(
        &server,
        "idle",
        &["--kinds", "wait", "--exit-when-idle", "1"],
    );
    assert!(idle.wait_exit(LONG).success());
}

/// A worker with a deadline gives its running job back (preempted) shortly before it, claims
/// nothing within the end margin, and exits 0.
#[test]
fn a_deadline_gives_running_jobs_back_before_it_and_starts_none_near_it() {
    let server = Server::start();
    let c = server.client();
    let long = submit_fake(&c, json!({"gens": 400, "delay": 0.05}));
    let t0 = Instant::now();
    let mut w = Worker::start(
        &server,
        "alloc",
        &[
            "--deadline",
            "6",
            "--end-margin",
            "4",
            "--preempt-before",
            "3",
        ],
    );
    w.wait_log("the allocation ends at");
    assert!(w.wait_exit(LONG).success());
    let job = c.job(long).unwrap();
    assert_eq!(job.state, JobState::Queued, "{job:?}");
    assert_eq!(job.attempts.len(), 1, "not claimed again: {job:?}");
    let o = outcome(&job, 1);
    assert!(
        o.contains("preempted: its worker's allocation ends in"),
        "{o}"
    );
    assert!(!generations(&c, long, 1).is_empty());
    // Given back about 3 s before the end, not at it.
    assert!(t0.elapsed() < Duration::from_secs(6), "{:?}", t0.elapsed());
}

/// `GET /api/v1/queue/demand` counts the queued jobs a worker with given capabilities could
/// run: what `gaia slurm autoscale` and a KEDA trigger scale on.
#[test]
fn queue_demand_counts_the_jobs_a_worker_could_run() {
    let server = Server::start();
    let c = server.client();
    let mut gpu = JobSpec::experiment("cma_es", 100);
    gpu.requirements.gpus = 1;
    let mut tagged = JobSpec::experiment("cma_es", 100);
    tagged.requirements.tags = vec!["a100".into()];
    for s in [
        JobSpec::experiment("cma_es", 100),
        gpu,
        tagged,
        JobSpec::builtin(JobKind::Hash, "x"),
    ] {
        c.submit(&s).unwrap();
    }
    let demand = |caps: Capabilities| c.queue_demand(&caps).unwrap();
    let any = demand(Capabilities::default());
    assert_eq!((any.queued, any.fitting, any.running), (4, 2, 0));
    let gpu_box = demand(Capabilities {
        kinds: vec![JobKind::Experiment],
        gpus: 1,
        tags: vec!["a100".into()],
        ..Capabilities::default()
    });
    assert_eq!(gpu_box.fitting, 3);
    // A running job counts as wanted for the workers that could run it.
    let w = register(&c, "busy", &[JobKind::Hash]);
    let a = claim(&c, &w, &[JobKind::Hash], 0).unwrap();
    let busy = demand(Capabilities {
        kinds: vec![JobKind::Hash],
        ..Capabilities::default()
    });
    assert_eq!(
        (
            busy.fitting,
            busy.running,
            busy.running_fitting,
            busy.slots_wanted
        ),
        (0, 1, 1, 1)
    );
    let other = demand(Capabilities {
        kinds: vec![JobKind::Experiment],
        ..Capabilities::default()
    });
    assert_eq!((other.running_fitting, other.slots_wanted), (0, 1));
    c.requeue(
        a.job.id,
        &gaia_core::protocol::RequeueRequest {
            attempt: a.attempt,
            lease: a.lease,
            reason: None,
            preempted: false,
        },
    )
    .unwrap();
    let hash_only = demand(Capabilities {
        kinds: vec![JobKind::Hash],
        ..Capabilities::default()
    });
    assert_eq!(hash_only.fitting, 1);
    let (status, body) = http(
        "GET",
        &format!("{}/api/v1/queue/demand?kinds=nonsense", server.url()),
        Some(&server.token),
        None,
    );
    assert_eq!(status, 400, "{body}");
}

/// Regression (the real-Slurm test, a time limit): a worker draining since its allocation's end
/// margin, whose experiment a scheduler killed a moment before the worker's own SIGTERM arrived,
/// reported the job failed ("killed by signal 15"). Killed with its worker, it is given back.
#[test]
fn a_job_killed_together_with_its_draining_worker_is_given_back_not_failed() {
    let server = Server::start();
    let c = server.client();
    let id = submit_fake(&c, json!({"mode": "fork", "gens": 400, "delay": 0.05}));
    let mut w = Worker::start_env(&server, "slurm-7_0", &[], &[("PBS_JOBID", "7.pbs")]);
    let pid = wait_for("the experiment's pid in the log", LONG, || {
        c.logs(id, 0, 100).ok()?.lines.iter().find_map(|l| {
            l.text
                .strip_prefix("experiment pid ")?
                .trim()
                .parse::<i32>()
                .ok()
        })
    });
    // Draining (as within --end-margin), long before the scheduler's kill.
    w.signal(libc::SIGINT);
    w.wait_log("stopping: no new jobs");
    std::thread::sleep(Duration::from_secs(4));
    // The scheduler signals every process: the experiment's group first, then the worker.
    unsafe { libc::kill(-pid, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(30));
    w.signal(libc::SIGTERM);
    assert!(w.wait_exit(LONG).success());
    let job = c.job(id).unwrap();
    assert_eq!(job.state, JobState::Queued, "{job:?}");
    let o = outcome(&job, 1);
    assert!(o.starts_with("preempted: SIGTERM"), "{o}");
}
