//! `gaia work` end to end: real server, real worker processes, the stand-in experiment.

use std::time::Duration;

use gaia_core::model::{JobKind, JobSpec, JobState};
use serde_json::json;

use crate::helper::*;

const LONG: Duration = Duration::from_secs(60);

fn gen_lines(logs_or_rows: &[gaia_core::model::Row]) -> Vec<u64> {
    logs_or_rows.iter().filter_map(|r| r.generation).collect()
}

#[test]
fn experiment_rows_logs_and_files_arrive() {
    let server = Server::start();
    let _w = Worker::start(&server, "w1", &[]);
    let c = server.client();
    let id = submit_fake(&c, json!({"gens": 30}));
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let rows = c.rows(id, None, None).unwrap();
    assert_eq!(gen_lines(&rows.rows), (1..=30).collect::<Vec<_>>());
    assert_eq!(
        rows.rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..30).collect::<Vec<_>>()
    );
    let last = rows.rows.last().unwrap();
    assert_eq!(last.evals, Some(1500.0), "thousands separators parse");
    assert_eq!(job.result, Some(json!({"mean": 1.0, "solved": true})));
    let logs = c.logs(id, 0, 100).unwrap();
    let text: Vec<&str> = logs.lines.iter().map(|l| l.text.as_str()).collect();
    assert!(
        text.contains(&"starting cma_es on CartPole-v1 seed 0"),
        "{text:?}"
    );
    assert_eq!(job.warnings, 1, "the stderr WARNING line is counted");
    let mut names: Vec<String> = job.files.iter().map(|f| f.name.clone()).collect();
    names.sort();
    assert_eq!(names, ["curve.csv", "result.json"]);
    // `gaia show` says succeeded; `gaia files --out` downloads them.
    assert!(
        server
            .cli_ok(&["show", &id.to_string()])
            .contains("succeeded")
    );
    let out = tempfile::tempdir().unwrap();
    server.cli_ok(&[
        "files",
        &id.to_string(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path().join("result.json")).unwrap()).unwrap();
    assert_eq!(result["gens"], 30);
}

#[test]
fn builtin_jobs_return_their_result() {
    let server = Server::start();
    let _w = Worker::start(&server, "w1", &["--kinds", "hash,reverse,sum,upper,wait"]);
    let out = server.cli_ok(&["submit", "--kind", "hash", "--input", "hello", "--wait"]);
    assert!(
        out.contains("2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"),
        "{out}"
    );
    let c = server.client();
    for (kind, input, want) in [
        (JobKind::Reverse, "abc", json!("cba")),
        (JobKind::Upper, "abc", json!("ABC")),
        (JobKind::Sum, "1 2 3", json!(6)),
    ] {
        let id = c.submit(&JobSpec::builtin(kind, input)).unwrap();
        let job = wait_done(&c, id, LONG);
        assert_eq!(job.result, Some(want), "{kind}");
    }
}

#[test]
fn wait_exits_with_the_jobs_status() {
    let server = Server::start();
    let _w = Worker::start(&server, "w1", &[]);
    let out = server.cli(&[
        "submit",
        "--method",
        "cma_es",
        "--param",
        "mode=fail",
        "--wait",
    ]);
    assert_eq!(out.status.code(), Some(3), "a failed job exits 3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("failed") && stdout.contains("ValueError: boom"),
        "{stdout}"
    );
}

#[test]
fn server_outage_loses_and_duplicates_nothing() {
    let mut server = Server::start();
    let _w = Worker::start(&server, "w1", &[]);
    let c = server.client();
    let id = submit_fake(&c, json!({"gens": 150, "delay": 0.04}));
    wait_for("rows to stream", LONG, || {
        (c.job(id).unwrap().progress.rows >= 20).then_some(())
    });
    server.kill9();
    // The experiment keeps printing while the server is away.
    std::thread::sleep(Duration::from_secs(4));
    server.restart();
    let c = server.client();
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert_eq!(job.attempt, 1, "the job kept running through the outage");
    let rows = c.rows(id, None, None).unwrap();
    assert_eq!(
        gen_lines(&rows.rows),
        (1..=150).collect::<Vec<_>>(),
        "every generation exactly once"
    );
}

#[test]
fn a_lost_worker_s_job_moves_on_and_its_old_attempt_is_refused() {
    let server = Server::start_with(&["--lease-timeout", "2", "--heartbeat", "0.5"]);
    let c = server.client();
    let mut a = Worker::start(&server, "wa", &[]);
    let id = submit_fake(&c, json!({"gens": 40, "delay": 0.1}));
    let (attempt1, lease1) = wait_for("attempt 1 to stream", LONG, || {
        let j = c.job(id).unwrap();
        (j.progress.rows >= 3).then(|| (j.attempt, j.lease.unwrap()))
    });
    assert_eq!(attempt1, 1);
    a.kill9();
    let _b = Worker::start(&server, "wb", &[]);
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.attempt, 2, "{:?}", job.attempts);
    assert_eq!(job.attempts[0].outcome.as_deref(), Some("lease expired"));
    assert_eq!(job.attempts[1].worker_name, "wb");
    assert_eq!(
        gen_lines(&c.rows(id, None, Some(2)).unwrap().rows).len(),
        40
    );
    // The first worker comes back as the same worker, with nothing to write into attempt 2...
    a.restart();
    a.wait_log("registered");
    let workers = c.workers().unwrap().workers;
    assert_eq!(
        workers.iter().filter(|w| w.name == "wa").count(),
        1,
        "same worker id after restart"
    );
    // ...and a call from its old attempt is refused.
    let err = c
        .post_rows(
            id,
            &gaia_core::protocol::RowBatch {
                attempt: 1,
                lease: lease1,
                rows: vec![gaia_core::model::Row {
                    seq: 99,
                    ..Default::default()
                }],
                fraction: None,
                status: None,
            },
            true,
        )
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "{err}");
    assert_eq!(c.rows(id, None, Some(2)).unwrap().rows.len(), 40);
}

#[test]
fn cancel_kills_the_whole_process_group() {
    let server = Server::start();
    let w = Worker::start(&server, "w1", &[]);
    let c = server.client();
    let id = submit_fake(&c, json!({"mode": "fork", "gens": 10_000, "delay": 0.05}));
    let child: i32 = wait_for("the forked child's pid in the log", LONG, || {
        c.logs(id, 0, 100)
            .ok()?
            .lines
            .iter()
            .find_map(|l| l.text.strip_prefix("forked child ")?.trim().parse().ok())
    });
    assert!(process_alive(child));
    let t = std::time::Instant::now();
    server.cli_ok(&["cancel", &id.to_string()]);
    let job = wait_done(&c, id, Duration::from_secs(6));
    assert_eq!(job.state, JobState::Cancelled);
    wait_for(
        "the forked child to be gone",
        Duration::from_secs(6)
            .saturating_sub(t.elapsed())
            .max(Duration::from_millis(100)),
        || (!process_alive(child)).then_some(()),
    );
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "took {:?}",
        t.elapsed()
    );
    // The worker carries on.
    let next = c.submit(&JobSpec::builtin(JobKind::Upper, "ok")).unwrap();
    assert_eq!(wait_done(&c, next, LONG).state, JobState::Succeeded);
    drop(w);
}

#[test]
fn jobs_go_only_to_workers_that_fit() {
    let server = Server::start();
    let c = server.client();
    let _cpu = Worker::start(&server, "cpu-only", &["--kinds", "experiment,upper"]);
    let _hash = Worker::start(&server, "hasher", &["--kinds", "hash"]);
    for _ in 0..4 {
        let id = c.submit(&JobSpec::builtin(JobKind::Hash, "x")).unwrap();
        let job = wait_done(&c, id, LONG);
        assert_eq!(job.worker_name.as_deref(), Some("hasher"));
    }
    let mut gpu = JobSpec::builtin(JobKind::Upper, "needs a gpu");
    gpu.requirements.gpus = 1;
    let gid = c.submit(&gpu).unwrap();
    let plain = c
        .submit(&JobSpec::builtin(JobKind::Upper, "no gpu"))
        .unwrap();
    assert_eq!(wait_done(&c, plain, LONG).state, JobState::Succeeded);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        c.job(gid).unwrap().state,
        JobState::Queued,
        "no worker has a GPU"
    );
}

#[test]
fn bad_experiments_end_clearly_and_the_worker_carries_on() {
    let server = Server::start();
    let _w = Worker::start(&server, "w1", &["--job-timeout", "3"]);
    let c = server.client();
    let fail = submit_fake(&c, json!({"mode": "fail"}));
    let garbage = submit_fake(&c, json!({"mode": "garbage"}));
    let big = submit_fake(&c, json!({"mode": "bigline"}));
    let silent = submit_fake(&c, json!({"mode": "silent", "delay": 0.2}));
    let hang = submit_fake(&c, json!({"mode": "silent", "delay": 30}));
    let after = c.submit(&JobSpec::builtin(JobKind::Reverse, "ok")).unwrap();

    let j = wait_done(&c, fail, LONG);
    assert_eq!(j.state, JobState::Failed);
    assert_eq!(j.exit_code, Some(1));
    assert!(
        j.error.as_deref().unwrap().contains("ValueError: boom"),
        "{:?}",
        j.error
    );
    assert!(j.errors >= 1, "the traceback is counted as an error");

    let j = wait_done(&c, garbage, LONG);
    assert_eq!(j.state, JobState::Succeeded);
    assert_eq!(j.progress.rows, 0, "garbage is not a row");
    assert!(
        c.logs(garbage, 0, 100)
            .unwrap()
            .lines
            .iter()
            .any(|l| l.text.contains("garbage"))
    );

    let j = wait_done(&c, big, LONG);
    assert_eq!(j.state, JobState::Succeeded);
    assert_eq!(
        j.progress.rows, 1,
        "the generation after a 10 MB line still arrives"
    );
    let kept = c.logs(big, 0, 10).unwrap();
    assert!(kept.lines[0].text.len() < 10_000, "the long line was cut");

    assert_eq!(wait_done(&c, silent, LONG).state, JobState::Succeeded);
    let j = wait_done(&c, hang, LONG);
    assert_eq!(j.state, JobState::TimedOut, "{j:?}");
    assert_eq!(wait_done(&c, after, LONG).result, Some(json!("ko")));
}

#[test]
fn exit_when_idle_and_a_first_signal_drain() {
    let server = Server::start();
    let mut idle = Worker::start(&server, "idle", &["--exit-when-idle", "1"]);
    let status = idle.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");

    let c = server.client();
    let mut w = Worker::start(&server, "drainer", &[]);
    let id = submit_fake(&c, json!({"gens": 20, "delay": 0.1}));
    wait_for("the job to start", LONG, || {
        (c.job(id).unwrap().state == JobState::Running).then_some(())
    });
    w.signal(libc::SIGINT);
    let queued = c
        .submit(&JobSpec::builtin(JobKind::Upper, "later"))
        .unwrap();
    let status = w.wait_exit(LONG);
    assert!(status.success());
    assert_eq!(
        c.job(id).unwrap().state,
        JobState::Succeeded,
        "the running job finished"
    );
    assert_eq!(
        c.job(queued).unwrap().state,
        JobState::Queued,
        "no new job was taken"
    );
}

#[test]
fn the_worker_builds_the_python_environment_itself() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let exp = dir.path().join("experiments");
    std::fs::create_dir_all(&exp).unwrap();
    for f in ["run_all.py", "requirements.txt"] {
        std::fs::copy(fake_experiments().join(f), exp.join(f)).unwrap();
    }
    let c = server.client();
    let mut w = Worker::start_bin(&server, "venv", &gaia_bin(), &exp, &["--python=venv"]);
    w.wait_log("building the experiments' Python environment");
    w.wait_log("Python environment ready");
    let id = submit_fake(&c, json!({"gens": 3}));
    assert_eq!(wait_done(&c, id, LONG).state, JobState::Succeeded);
    assert!(w.state_dir.join("venv/bin/python").exists());
    w.kill9();
    // Unchanged requirements: no rebuild. Changed: rebuilt.
    w.log.lock().unwrap().clear();
    w.restart();
    w.wait_log("registered");
    assert!(
        !w.log.lock().unwrap().contains("Python environment"),
        "rebuilt without a change"
    );
    w.kill9();
    std::fs::write(exp.join("requirements.txt"), "# changed\n").unwrap();
    w.restart();
    w.wait_log("requirements.txt changed: rebuilding");
    w.wait_log("registered");
}

#[test]
fn command_jobs_run_only_where_allowed() {
    let server = Server::start();
    let c = server.client();
    let _plain = Worker::start(&server, "plain", &[]);
    let out = server.cli_ok(&[
        "submit",
        "--kind",
        "command",
        "--",
        "sh",
        "-c",
        "echo 'Gen 1 | Best: 5 | Ever: 5'; echo \"job=$GAIA_JOB_ID unbuffered=$PYTHONUNBUFFERED token=${GAIA_TOKEN:-hidden}\"; echo done",
    ]);
    let id: u64 = out.trim().parse().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        c.job(id).unwrap().state,
        JobState::Queued,
        "a worker without --allow-commands took it"
    );
    let _allowed = Worker::start(&server, "allowed", &["--allow-commands"]);
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.worker_name.as_deref(), Some("allowed"));
    assert_eq!(job.progress.best, Some(5.0));
    let logs = server.cli_ok(&["logs", &id.to_string()]);
    assert!(logs.contains("done"), "{logs}");
    // The job gets its own id and unbuffered output, and not the worker's token (which every
    // read token could otherwise fetch from its log).
    assert!(
        logs.contains(&format!("job={id} unbuffered=1 token=hidden")),
        "{logs}"
    );
    assert!(!logs.contains(&server.token), "{logs}");
}

#[test]
fn logs_follow_a_running_job_to_its_end() {
    let server = Server::start();
    let _w = Worker::start(&server, "w1", &[]);
    let c = server.client();
    let id = submit_fake(&c, json!({"gens": 30, "delay": 0.05}));
    wait_for("the job to start", LONG, || {
        (c.job(id).unwrap().state == JobState::Running).then_some(())
    });
    // `gaia logs -f` returns by itself when the job ends, with every line.
    let out = server.cli_ok(&["logs", &id.to_string(), "-f"]);
    assert_eq!(c.job(id).unwrap().state, JobState::Succeeded);
    assert!(out.contains("starting cma_es"), "{out}");
    assert!(
        out.contains(r#"@gaia {"final""#),
        "the last line arrived: {out}"
    );
}

#[test]
fn oversized_output_is_trimmed_not_retried_for_ever() {
    let server = Server::start();
    let _w = Worker::start(&server, "w1", &["--allow-commands"]);
    let c = server.client();
    // 70 named metrics on one generation line (the server keeps 64 per row), then a log line.
    let fields: String = (0..70).map(|i| format!(" | M{i}: {i}")).collect();
    let script = format!("echo 'Gen 1 | Best: 1{fields}'; echo after");
    let id = c
        .submit(&JobSpec {
            kind: JobKind::Command,
            argv: vec!["sh".into(), "-c".into(), script],
            max_attempts: 1,
            ..JobSpec::default()
        })
        .unwrap();
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let rows = c.rows(id, None, None).unwrap().rows;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].metrics.len(), 64);
    // A built-in result too large to keep: the job still succeeds, with a note instead.
    let big = "x".repeat(300_000);
    let id = c.submit(&JobSpec::builtin(JobKind::Reverse, &big)).unwrap();
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert!(
        job.result
            .unwrap()
            .as_str()
            .unwrap()
            .contains("was dropped")
    );
}

#[test]
fn a_clean_server_stop_keeps_every_reported_job() {
    let mut server = Server::start();
    let w = Worker::start(&server, "w1", &["--kinds", "hash", "--slots", "2"]);
    let c = server.client();
    let specs: Vec<JobSpec> = (0..300)
        .map(|i| JobSpec::builtin(JobKind::Hash, &i.to_string()))
        .collect();
    c.submit_batch(specs).unwrap();
    let done_before = wait_for("some jobs to finish", LONG, || {
        let n = c.status().unwrap().jobs["succeeded"];
        (n >= 100).then_some(n)
    });
    assert!(server.stop().success());
    drop(w);
    server.restart();
    let after = server.client().status().unwrap().jobs["succeeded"];
    assert!(
        after >= done_before,
        "{done_before} succeeded before a clean stop, {after} after"
    );
}
