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
        (JobKind::Wait, "0.3", json!("waited 0.3s")),
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
    // A small memory bound, so the outage's rows spill to the spool file and come back from it.
    let w = Worker::start(&server, "w1", &["--spool-after-rows", "40"]);
    let c = server.client();
    let id = submit_fake(&c, json!({"gens": 300, "delay": 0.02}));
    wait_for("rows to stream", LONG, || {
        (c.job(id).unwrap().progress.rows >= 20).then_some(())
    });
    server.kill9();
    // 10 s away: the experiment prints its remaining ~280 generations and ends meanwhile, so its
    // rows, logs, files and its completion all wait for the server.
    w.wait_log("spooling rows");
    std::thread::sleep(Duration::from_secs(10));
    server.restart();
    let c = server.client();
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    assert_eq!(job.attempt, 1, "the job kept running through the outage");
    let rows = c.rows(id, None, None).unwrap();
    assert_eq!(
        gen_lines(&rows.rows),
        (1..=300).collect::<Vec<_>>(),
        "every generation exactly once"
    );
    assert_eq!(
        rows.rows.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..300).collect::<Vec<_>>()
    );
    let logs = c.logs(id, 0, 100).unwrap();
    assert!(
        logs.lines
            .iter()
            .any(|l| l.text.contains(r#"@gaia {"final""#))
    );
    assert_eq!(job.files.len(), 2, "result files uploaded after the outage");
    // The spool file is gone once its rows are in.
    let spool = w.state_dir.join("spool");
    let left: Vec<_> = std::fs::read_dir(&spool)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "spool files left: {left:?}");
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
    // Started by the worker, not only claimed: the server shows a job running from its claim's
    // commit on, and an assignment that reaches a worker already draining is given back.
    w.wait_log(&format!("job {id} attempt 1:"));
    w.signal(libc::SIGINT);
    // Shown as draining at once (heartbeats are 5 s apart here), and offline once it has gone.
    let state_of = |name: &str| {
        c.workers()
            .unwrap()
            .workers
            .into_iter()
            .find(|w| w.name == name)
            .map(|w| w.state)
    };
    wait_for(
        "the worker to show draining",
        Duration::from_secs(3),
        || (state_of("drainer") == Some(gaia_core::model::WorkerState::Draining)).then_some(()),
    );
    let queued = c
        .submit(&JobSpec::builtin(JobKind::Upper, "later"))
        .unwrap();
    let status = w.wait_exit(LONG);
    assert!(status.success());
    assert_eq!(
        state_of("drainer"),
        Some(gaia_core::model::WorkerState::Offline)
    );
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
    // The job's folder goes to the trash at once and is deleted in the background; the worker
    // waits for that before exiting.
    let jobs = w.state_dir.join("jobs");
    let left: Vec<_> = std::fs::read_dir(&jobs)
        .unwrap()
        .chain(std::fs::read_dir(jobs.join(".trash")).unwrap())
        .flatten()
        .map(|e| e.file_name())
        .filter(|n| n != ".trash")
        .collect();
    assert!(left.is_empty(), "job folders left behind: {left:?}");
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

/// Runs `gaia work` to its end (`--exit-when-idle 1`) on a fresh state dir in `dir`, with the
/// fake experiments; `env` is set on top of the server's address.
fn work_until_idle(
    server: &Server,
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &std::ffi::OsStr)],
) -> std::process::Output {
    let mut cmd = std::process::Command::new(gaia_bin());
    cmd.args(["work", "--name", "once", "--exit-when-idle", "1"])
        .arg("--experiments-dir")
        .arg(fake_experiments())
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(args)
        .env("GAIA_SERVER", server.url())
        .env("GAIA_TOKEN", &server.token);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run gaia work")
}

#[test]
fn a_wrong_token_fails_before_building_the_python_environment() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    // No --python: a worker with the right token would build a venv first.
    let out = work_until_idle(
        &server,
        dir.path(),
        &["--gpu", "none"],
        &[("GAIA_TOKEN", "not-the-token".as_ref())],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "the server at {} refused this worker's token (401: invalid token (check --token / GAIA_TOKEN))",
            server.url()
        )),
        "{err}"
    );
    assert!(!err.contains("Python environment"), "{err}");
    assert!(!dir.path().join("state/venv").exists(), "built the venv");
    assert!(server.client().workers().unwrap().workers.is_empty());
}

#[test]
fn an_interrupted_environment_build_is_named_as_such() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    // What a build killed half-way leaves: a venv folder without the stamp written last.
    let venv = dir.path().join("state/venv");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
    let out = work_until_idle(&server, dir.path(), &["--gpu", "none"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "the previous environment build did not finish: rebuilding the Python environment"
        ),
        "{err}"
    );
    assert!(!err.contains("requirements.txt changed"), "{err}");
    assert!(err.contains("Python environment ready"), "{err}");
    assert!(venv.join("bin/python").exists());
}

#[test]
fn a_gpu_that_cannot_be_seen_is_refused() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    // A PATH without nvidia-smi: no GPU can be seen.
    let empty = dir.path().join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    let out = work_until_idle(
        &server,
        dir.path(),
        &["--gpu", "0", "--kinds", "hash"],
        &[("PATH", empty.as_os_str())],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--gpu 0: no GPU can be seen on this machine") && err.contains("--gpu none"),
        "{err}"
    );
    assert!(
        server.client().workers().unwrap().workers.is_empty(),
        "registered a GPU nobody checked"
    );
}

#[test]
fn command_jobs_run_only_where_allowed() {
    let server = Server::start();
    let c = server.client();
    let plain = Worker::start(&server, "plain", &[]);
    plain.wait_log("registered");
    let out = server.cli(&[
        "submit",
        "--kind",
        "command",
        "--",
        "sh",
        "-c",
        "echo 'Gen 1 | Best: 5 | Ever: 5'; echo \"job=$GAIA_JOB_ID unbuffered=$PYTHONUNBUFFERED token=${GAIA_TOKEN:-hidden}\"; echo done",
    ]);
    assert!(out.status.success());
    let id: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    // It does not wait silently: the submitter is told why.
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("no online worker runs command jobs") && note.contains("--allow-commands"),
        "{note}"
    );
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
    // Generations arrive as GAIA lines, each once, up to the last — and from the first, though
    // the job was running when `-f` attached.
    let gens: Vec<&str> = out.lines().filter(|l| l.starts_with("Gen ")).collect();
    assert!(!gens.is_empty(), "{out}");
    assert!(gens[0].starts_with("Gen    1 |"), "{gens:?}");
    assert_eq!(gens.len(), 30, "{gens:?}");
    assert!(
        gens.last()
            .unwrap()
            .starts_with("Gen   30 | Best: -55 | Ever: -55"),
        "{gens:?}"
    );
    let mut seen = std::collections::HashSet::new();
    assert!(
        gens.iter().all(|g| seen.insert(*g)),
        "a generation twice: {gens:?}"
    );
    let quiet = server.cli_ok(&["logs", &id.to_string(), "-f", "--no-gens"]);
    assert!(!quiet.contains("Gen "), "{quiet}");
}

/// Issue 12: `gaia logs N` shows the output as the experiment printed it — generation lines
/// written from the rows, among the log lines in order — with or without -f; `--no-gens`
/// leaves them out.
#[test]
fn logs_show_the_whole_output_in_the_order_it_was_printed() {
    let server = Server::start();
    let _w = Worker::start(&server, "w1", &["--allow-commands"]);
    let c = server.client();
    let script = "echo starting; echo 'Gen 1 | Best: 5 | Mean: 2.5'; echo between; \
                  echo 'Gen 2 | Best: 4 | Mean: 3 | Evals: 1,234,567'; \
                  echo 'Gen 3 | Best: 7.25 | Mean: 1e-7'; echo done";
    let id = c
        .submit(&JobSpec {
            kind: JobKind::Command,
            argv: vec!["sh".into(), "-c".into(), script.into()],
            max_attempts: 1,
            ..JobSpec::default()
        })
        .unwrap();
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let printed = [
        "starting",
        "Gen    1 | Best: 5 | Ever: 5 | Mean: 2.5",
        "between",
        "Gen    2 | Best: 4 | Ever: 5 | Mean: 3 | Evals: 1,234,567",
        "Gen    3 | Best: 7.25 | Ever: 7.25 | Mean: 1e-7",
        "done",
    ];
    let id = id.to_string();
    let lines = |args: &[&str]| -> Vec<String> {
        server.cli_ok(args).lines().map(str::to_string).collect()
    };
    assert_eq!(lines(&["logs", &id]), printed);
    assert_eq!(
        lines(&["logs", &id, "-f"]),
        printed,
        "-f shows it from the start"
    );
    assert_eq!(
        lines(&["logs", &id, "--no-gens"]),
        ["starting", "between", "done"]
    );
    assert_eq!(lines(&["logs", &id, "--tail", "2"]), printed[4..]);
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

/// Issue 12: the original system's experiments annotate values and print Best without Ever;
/// every field they carry is kept, and best-ever is the running maximum of Best.
#[test]
fn annotated_values_are_kept_and_best_ever_runs_when_ever_is_missing() {
    let server = Server::start();
    let _w = Worker::start(&server, "w1", &["--allow-commands"]);
    let c = server.client();
    let script = "echo 'Gen 1 | Best: -30.5 | Mean: -40  ← close'; \
                  echo 'Gen 2 | Best: -35 | Mean: -19.9  ← SOLVED | Difficulty: 1.00  ← SOLVED (full difficulty)'; \
                  echo 'Gen 3 | Best: -10 | Mean: -20'";
    let id = c
        .submit(&JobSpec {
            kind: JobKind::Command,
            argv: vec!["sh".into(), "-c".into(), script.into()],
            max_attempts: 1,
            ..JobSpec::default()
        })
        .unwrap();
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let rows = c.rows(id, None, None).unwrap().rows;
    let col = |f: fn(&gaia_core::model::Row) -> Option<f64>| rows.iter().map(f).collect::<Vec<_>>();
    assert_eq!(col(|r| r.mean), [Some(-40.0), Some(-19.9), Some(-20.0)]);
    assert_eq!(rows[1].metric("difficulty"), Some(1.0));
    assert_eq!(
        col(|r| r.best_ever),
        [Some(-30.5), Some(-30.5), Some(-10.0)],
        "the running maximum of Best"
    );
    assert_eq!(job.progress.best_ever, Some(-10.0));
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

#[test]
fn a_second_signal_gives_running_jobs_back_and_exits_at_once() {
    let server = Server::start();
    let c = server.client();
    let mut w = Worker::start(&server, "twice", &[]);
    let id = submit_fake(&c, json!({"gens": 2000, "delay": 0.05}));
    wait_for("the job to stream", LONG, || {
        (c.job(id).unwrap().progress.rows >= 3).then_some(())
    });
    w.signal(libc::SIGINT);
    w.wait_log("signal again to requeue");
    let t0 = std::time::Instant::now();
    w.signal(libc::SIGINT);
    let status = w.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(15),
        "took {:?}",
        t0.elapsed()
    );
    let job = c.job(id).unwrap();
    assert_eq!(job.state, JobState::Queued, "given back: {job:?}");
    assert_eq!(job.worker, None, "a queued job has no worker");
    assert_eq!(
        job.attempts[0].worker_name, "twice",
        "its attempt keeps who ran it"
    );
    let outcome = job.attempts[0].outcome.clone().unwrap_or_default();
    assert!(outcome.starts_with("requeued"), "{outcome}");
    // A hand-back does not count against the job's attempts: the next worker runs it.
    let _next = Worker::start(&server, "next", &[]);
    wait_for("the job to run again", LONG, || {
        let j = c.job(id).unwrap();
        (j.state == JobState::Running && j.attempt == 2).then_some(())
    });
}

#[test]
fn a_job_that_ignores_sigterm_is_killed_after_the_grace() {
    let server = Server::start();
    let c = server.client();
    // The helper starts workers with --kill-grace 2.
    let _w = Worker::start(&server, "stubborn", &["--allow-commands"]);
    let id = c
        .submit(&JobSpec {
            kind: JobKind::Command,
            argv: vec![
                "sh".into(),
                "-c".into(),
                "trap '' TERM; echo pid=$$; while true; do sleep 0.1; done".into(),
            ],
            max_attempts: 1,
            ..JobSpec::default()
        })
        .unwrap();
    let pid: i32 = wait_for("the job to print its pid", LONG, || {
        c.logs(id, 0, 10)
            .unwrap()
            .lines
            .iter()
            .find_map(|l| l.text.strip_prefix("pid=").map(|p| p.parse().unwrap()))
    });
    let t0 = std::time::Instant::now();
    c.cancel(id).unwrap();
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Cancelled);
    wait_for("the process to be gone", Duration::from_secs(10), || {
        (!process_alive(pid)).then_some(())
    });
    let took = t0.elapsed();
    // It outlived SIGTERM (so the grace ran) and SIGKILL ended it.
    assert!(took >= Duration::from_millis(1500), "gone after {took:?}");
    assert!(took < Duration::from_secs(9), "gone after {took:?}");
}

#[test]
fn what_a_finished_job_leaves_running_is_killed() {
    let server = Server::start();
    let c = server.client();
    let _w = Worker::start(&server, "tidy", &[]);
    // The experiment forks a `sleep 1000` into its process group and exits normally.
    let id = submit_fake(&c, json!({"mode": "fork", "gens": 3}));
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let mut pid = Vec::new();
    c.download(&format!("/api/v1/jobs/{id}/files/child.pid"), &mut pid)
        .unwrap();
    let pid: i32 = String::from_utf8(pid).unwrap().trim().parse().unwrap();
    wait_for(
        "the left-over child to be gone",
        Duration::from_secs(10),
        || (!process_alive(pid)).then_some(()),
    );
}

/// The pids of a running `fork` experiment: its own and its child's.
fn forked_pids(c: &gaia_core::client::Client, id: u64) -> (i32, i32) {
    wait_for(
        "the experiment's and its child's pids in the log",
        LONG,
        || {
            let lines = c.logs(id, 0, 100).ok()?.lines;
            let find = |prefix: &str| {
                lines
                    .iter()
                    .find_map(|l| l.text.strip_prefix(prefix)?.trim().parse::<i32>().ok())
            };
            Some((find("experiment pid ")?, find("forked child ")?))
        },
    )
}

#[test]
fn a_worker_killed_with_sigkill_leaves_no_experiment_running() {
    let server = Server::start();
    let mut w = Worker::start(&server, "doomed", &[]);
    let c = server.client();
    let id = submit_fake(&c, json!({"mode": "fork", "gens": 10_000, "delay": 0.05}));
    let (experiment, child) = forked_pids(&c, id);
    assert!(process_alive(experiment) && process_alive(child));
    w.kill9();
    // Its next attempt will run elsewhere: this one must not go on holding the machine.
    wait_for(
        "the experiment and its child to be gone",
        Duration::from_secs(5),
        || (!process_alive(experiment) && !process_alive(child)).then_some(()),
    );
}

/// The worker's reaper: its child started in the hidden reaper mode.
fn reaper_of(worker: i32) -> i32 {
    wait_for("the worker's reaper", LONG, || {
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid: i32 = stat
                .rsplit(')')
                .next()?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            (ppid == worker && String::from_utf8_lossy(&cmdline).contains("__gaia-reaper"))
                .then_some(pid)
        })
    })
}

#[test]
fn a_worker_that_starts_again_kills_what_its_killed_run_left() {
    let server = Server::start();
    let mut w = Worker::start(&server, "phoenix", &[]);
    let c = server.client();
    let id = submit_fake(&c, json!({"mode": "fork", "gens": 10_000, "delay": 0.05}));
    let (experiment, child) = forked_pids(&c, id);
    // Worker and reaper both killed (a `pkill -9 gaia`): the experiment dies with its parent,
    // its child is left over.
    let reaper = reaper_of(w.pid());
    unsafe { libc::kill(reaper, libc::SIGKILL) };
    w.kill9();
    wait_for("the experiment to be gone", Duration::from_secs(5), || {
        (!process_alive(experiment)).then_some(())
    });
    assert!(process_alive(child), "the child is left over");
    // The next start of the worker kills it.
    w.log.lock().unwrap().clear();
    w.restart();
    w.wait_log("previous run of this worker left running");
    wait_for(
        "the left-over child to be gone",
        Duration::from_secs(5),
        || (!process_alive(child)).then_some(()),
    );
    w.wait_log("registered");
}

#[test]
fn a_worker_the_server_forgot_registers_again_as_itself() {
    let mut server = Server::start_with(&["--heartbeat", "0.5", "--lease-timeout", "5"]);
    let _w = Worker::start(&server, "phoenix", &[]);
    let c = server.client();
    let id = wait_for("the worker to register", LONG, || {
        c.workers().unwrap().workers.first().map(|w| w.id.clone())
    });
    // Heartbeats carry live utilisation.
    wait_for("utilisation in a heartbeat", LONG, || {
        let w = c.workers().unwrap().workers.remove(0);
        (w.usage.memory_percent > 0.0).then_some(())
    });
    // The server loses its database (a new data dir on the same address).
    server.kill9();
    std::fs::remove_dir_all(server.data_dir()).unwrap();
    server.restart();
    let c = server.client();
    let back = wait_for("the worker to register again", LONG, || {
        c.workers().unwrap().workers.first().cloned()
    });
    assert_eq!(back.id, id, "the same worker id");
    assert_eq!(back.name, "phoenix");
    let job = c.submit(&JobSpec::builtin(JobKind::Hash, "x")).unwrap();
    assert_eq!(wait_done(&c, job, LONG).state, JobState::Succeeded);
}

#[test]
fn a_result_file_over_the_upload_limit_is_named_in_the_job_log_and_kept_off_the_server() {
    let server = Server::start();
    let c = server.client();
    let _w = Worker::start(&server, "small", &["--max-file-mib", "1"]);
    let id = submit_fake(&c, json!({"gens": 3, "big_file_mb": 2}));
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");
    let mut names: Vec<&str> = job.files.iter().map(|f| f.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["curve.csv", "result.json"]);
    let logs = server.cli_ok(&["logs", &id.to_string()]);
    assert!(
        logs.contains("big.bin (2097152 bytes) is over this worker's upload limit"),
        "{logs}"
    );
    assert_eq!(
        job.warnings, 2,
        "the fake's own WARNING and the refused file"
    );
}

/// A demo whose worker cannot start (no experiments where it looks) ends with the worker's
/// error and a failing exit code, instead of serving jobs nobody will run.
#[test]
fn a_demo_whose_worker_cannot_start_says_why_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(gaia_bin())
        .args(["demo", "--port", "0", "--data-dir"])
        .arg(dir.path().join("gaia-data"))
        .arg("--experiments-dir")
        .arg(dir.path().join("nowhere"))
        .env_remove("GAIA_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if t.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("the demo still runs a minute after its worker could not start");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "exit {status:?}; stderr: {err}");
    assert!(
        err.contains("the demo's worker stopped") && err.contains("has no run_all.py"),
        "{err}"
    );
}

#[test]
fn the_demo_runs_server_worker_and_the_real_experiments() {
    use std::io::BufRead;
    let python = repo_root().join("experiments/.venv/bin/python");
    let missing = if python.exists() {
        vec![]
    } else {
        vec!["experiments/.venv (scripts/test builds it)".to_string()]
    };
    if !prerequisites("the demo test", &missing) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gaia-data");
    let start = |data: &std::path::Path| {
        let mut child = std::process::Command::new(gaia_bin())
            .args(["demo", "--port", "0", "--data-dir"])
            .arg(data)
            .arg("--experiments-dir")
            .arg(repo_root().join("experiments"))
            .arg("--python")
            .arg(&python)
            .env_remove("GAIA_TOKEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = Vec::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let done = line.contains("Ctrl-C stops");
            printed.push(line);
            if done {
                break;
            }
        }
        // What it prints later arrives here.
        let (tx, later) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        // One link logs the browser in: the token in the URL's fragment.
        let link = printed
            .iter()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("dashboard:")
                    .map(|v| v.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no dashboard link in {printed:#?}"));
        let (url, token) = link
            .split_once("/#token=")
            .unwrap_or_else(|| panic!("{link} does not log the browser in"));
        assert!(url.starts_with("http://127.0.0.1:"), "{link}");
        assert!(
            !printed.iter().any(|l| l.contains("token:")),
            "the token is printed on its own: {printed:#?}"
        );
        (
            child,
            url.to_string(),
            token.to_string(),
            printed,
            later,
            link,
        )
    };
    // Waits for the line saying the study has finished; returns it and what follows.
    let finished = |later: &std::sync::mpsc::Receiver<String>| -> Vec<String> {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let mut said = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = later
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no 'finished' line; it said {said:#?}"));
            let last = line.contains("keeps serving until Ctrl-C");
            said.push(line);
            if last {
                break;
            }
        }
        let at = said
            .iter()
            .position(|l| l.contains("The demo study has finished: 10 jobs"))
            .unwrap_or_else(|| panic!("{said:#?}"));
        said.split_off(at)
    };
    let (mut child, url, token, printed, later, link) = start(&data);
    assert!(
        printed
            .iter()
            .any(|l| l.contains("submitted the demo study")),
        "{printed:#?}"
    );
    let c = gaia_core::client::Client::new(&url, Some(token.clone())).unwrap();
    let (status, page) = http("GET", &format!("{url}/"), None, None);
    assert_eq!(status, 200);
    assert!(page.contains("GAIA"));
    let jobs = c.jobs(&Default::default()).unwrap();
    assert_eq!(jobs.total, 10, "the demo study");
    // The real experiments run on the local worker and report every generation.
    let done = wait_for("a demo job to succeed", Duration::from_secs(300), || {
        c.jobs(&Default::default())
            .unwrap()
            .jobs
            .into_iter()
            .find(|j| j.state == JobState::Succeeded)
    });
    assert!(
        done.progress.rows > 0 && done.progress.best_ever.is_some(),
        "{done:?}"
    );
    assert!(!c.rows(done.id, None, None).unwrap().rows.is_empty());
    // It says when the study has finished — every job ended — and where to look next. (The
    // rest is cancelled to keep this test short: a cancelled job has ended too.)
    for j in c.jobs(&Default::default()).unwrap().jobs {
        if !j.state.is_terminal() {
            c.cancel(j.id).unwrap();
        }
    }
    let said = finished(&later);
    let text = said.join("\n");
    assert!(text.contains(&link), "{text}");
    assert!(text.contains("gaia study demo"), "{text}");
    assert!(text.contains("gaia export --study demo --png"), "{text}");
    // And it keeps serving.
    assert_eq!(c.jobs(&Default::default()).unwrap().total, 10);
    // What a newcomer sees through the one link: screenshots kept in test-artifacts/demo.
    if browser_tools_present(
        "the demo's dashboard in Chromium",
        &chromium(),
        "chromium",
        "playwright-core",
    ) {
        let status = std::process::Command::new("node")
            .arg("demo.mjs")
            .current_dir(browser_dir())
            .env("LINK", &link)
            .env("JOB", done.id.to_string())
            .env("CHROMIUM", chromium())
            .env("ARTIFACTS", repo_root().join("test-artifacts/demo"))
            .status()
            .expect("run node");
        assert!(status.success(), "the demo's dashboard in Chromium failed");
    }

    // Ctrl-C stops everything cleanly; a second start finds the study and does not resubmit.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let t0 = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "demo did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let (mut again, url, token2, printed, later, _) = start(&data);
    assert_eq!(token2, token, "the same admin token");
    assert!(
        printed
            .iter()
            .any(|l| l.contains("already there (10 jobs)")),
        "{printed:#?}"
    );
    // Its study has ended already: it says so at once.
    finished(&later);
    let c = gaia_core::client::Client::new(&url, Some(token)).unwrap();
    assert_eq!(c.jobs(&Default::default()).unwrap().total, 10);
    let _ = again.kill();
    let _ = again.wait();
}

/// An example binary of gaia-core, built by `cargo test --workspace` beside this test binary.
fn example_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent() // deps
        .and_then(|d| d.parent())
        .unwrap()
        .join("examples")
        .join(name)
}

#[test]
fn the_embedding_examples_serve_and_work() {
    let (server_bin, worker_bin) = (
        example_bin("embedded_server"),
        example_bin("embedded_worker"),
    );
    let missing: Vec<String> = [&server_bin, &worker_bin]
        .iter()
        .filter(|p| !p.exists())
        .map(|p| format!("{} (cargo test --workspace builds it)", p.display()))
        .collect();
    if !prerequisites("the examples test", &missing) {
        return;
    }
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(&server_bin)
        .arg(dir.path().join("data"))
        .arg(port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let line = out.next().unwrap().unwrap();
    let token = line
        .rsplit("with token ")
        .next()
        .unwrap()
        .trim()
        .to_string();
    let url = format!("http://127.0.0.1:{port}");
    let c = gaia_core::client::Client::new(&url, Some(token.clone())).unwrap();
    let id = c.submit(&JobSpec::builtin(JobKind::Hash, "hello")).unwrap();

    let mut worker = std::process::Command::new(&worker_bin)
        .arg(fake_experiments())
        .env("GAIA_SERVER", &url)
        .env("GAIA_TOKEN", &token)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path().join("xdg"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.worker_name.as_deref(), Some("embedded"));
    unsafe { libc::kill(worker.id() as i32, libc::SIGINT) };
    let mut said = String::new();
    std::io::Read::read_to_string(&mut worker.stdout.take().unwrap(), &mut said).unwrap();
    assert!(worker.wait().unwrap().success());
    assert!(said.contains("ran 1 job(s)"), "{said}");
    unsafe { libc::kill(server.id() as i32, libc::SIGINT) };
    assert!(server.wait().unwrap().success());
}

/// Submits a command job through `gaia submit` with `--limit`, returns its id.
fn submit_limited(server: &Server, limit: &str, script: &str) -> u64 {
    let out = server.cli_ok(&[
        "submit", "--kind", "command", "--limit", limit, "--", "python3", "-c", script,
    ]);
    out.trim().parse().unwrap()
}

/// Issue 13: jobs had no resource limits. A job allocating past its memory limit ends failed
/// with the limit named, and so does one past its CPU time, or its output; the worker stays
/// up and runs the next job; `--max-limit` caps what a job asks for.
#[test]
fn a_job_over_its_limits_fails_with_the_limit_named_and_the_worker_survives() {
    let server = Server::start();
    let c = server.client();
    let w = Worker::start(
        &server,
        "limited",
        &["--allow-commands", "--max-limit", "mem=1G,cpu=1h"],
    );
    w.wait_log("registered");

    // 400 MiB written (so the pages are real, which a cgroup counts) under a 200 MiB limit.
    let id = submit_limited(&server, "mem=200M", "x = b'x' * (400 << 20); print(len(x))");
    let job = wait_done(&c, id, LONG);
    let err = job.error.clone().unwrap_or_default();
    assert_eq!(job.state, JobState::Failed, "{err}");
    assert!(err.contains("over its memory limit (mem=200"), "{err}");

    // The same program within its limit succeeds: the limit is the job's, not a broken start.
    let id = submit_limited(&server, "mem=800M", "x = b'x' * (100 << 20); print(len(x))");
    assert_eq!(wait_done(&c, id, LONG).state, JobState::Succeeded);

    // CPU time: a busy loop under cpu=1s is stopped by SIGXCPU.
    let id = submit_limited(&server, "cpu=1", "while True: pass");
    let job = wait_done(&c, id, LONG);
    let err = job.error.clone().unwrap_or_default();
    assert_eq!(job.state, JobState::Failed, "{err}");
    assert!(err.contains("over its CPU time limit"), "{err}");

    // Output: a result file past output=1M.
    let id = submit_limited(
        &server,
        "output=1M",
        "import os; open(os.path.join(os.environ['GAIA_OUTPUT_DIR'], 'big.bin'), 'wb').write(b'0' * (2 << 20))",
    );
    let job = wait_done(&c, id, LONG);
    let err = job.error.clone().unwrap_or_default();
    assert_eq!(job.state, JobState::Failed, "{err}");
    assert!(err.contains("over its output limit"), "{err}");

    // Asking past the worker's maximum runs under the maximum (and says so).
    let id = submit_limited(&server, "mem=64G", "x = b'x' * (1500 << 20)");
    let job = wait_done(&c, id, LONG);
    let err = job.error.clone().unwrap_or_default();
    assert_eq!(job.state, JobState::Failed, "{err}");
    assert!(err.contains("over its memory limit (mem=1"), "{err}");
    w.wait_log("this worker allows at most mem=1G,cpu=1h");

    // The worker is still there and still works.
    let id = c
        .submit(&JobSpec::builtin(JobKind::Upper, "alive"))
        .unwrap();
    let job = wait_done(&c, id, LONG);
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.worker_name.as_deref(), Some("limited"));
    // A bad --limit is refused with the keys it takes.
    let out = server.cli(&[
        "submit", "--kind", "command", "--limit", "ram=1G", "--", "true",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mem=SIZE"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
