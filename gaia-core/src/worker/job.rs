//! One claimed job, from start to its report: a built-in kind runs in-process; an experiment or
//! command runs as a process group whose output streams to the server, whose result files are
//! uploaded, and whose end becomes the completion the slot sends with its next claim.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::config::say;
use super::hardware::GpuChoice;
use super::reaper::{self, Tracking};
use super::shared::{RunningJob, Shared, lock};
use super::stream::{self, Signals, Streamer, Target};
use super::{builtin, runner};
use crate::model::{JobId, JobKind, Task};
use crate::protocol::{Assignment, CompleteRequest, Finished, Outcome, RequeueRequest};

/// Longest a job given back waits for its output to reach the server: a preempted worker has
/// only the scheduler's grace (SIGKILL follows), and one told twice to stop should stop.
const GIVE_BACK_FLUSH: Duration = Duration::from_secs(10);

/// Hands a claimed job back to the queue (no attempt spent): as preempted when the worker was
/// (the attempt's outcome says `preempted: <why>`), else as requeued because `reason`.
pub(super) fn give_back(shared: &Shared, a: &Assignment, reason: &str) {
    let why = shared.shutdown.preempt_reason();
    let _ = shared.client.requeue(
        a.job.id,
        &RequeueRequest {
            attempt: a.attempt,
            lease: a.lease,
            reason: Some(why.clone().unwrap_or_else(|| reason.to_string())),
            preempted: shared.shutdown.preempted(),
        },
    );
}

/// Counts a job as running while it lives: the heartbeat reports its lease, and its end
/// restarts the idle clock.
struct ActiveGuard<'a>(&'a Shared, JobId);

impl<'a> ActiveGuard<'a> {
    fn enter(shared: &'a Shared, a: &Assignment, signals: &Arc<Signals>) -> ActiveGuard<'a> {
        shared.active.fetch_add(1, Ordering::SeqCst);
        lock(&shared.running).insert(
            a.job.id,
            RunningJob {
                attempt: a.attempt,
                lease: a.lease,
                signals: signals.clone(),
            },
        );
        ActiveGuard(shared, a.job.id)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        lock(&self.0.running).remove(&self.1);
        self.0.active.fetch_sub(1, Ordering::SeqCst);
        *lock(&self.0.last_activity) = Instant::now();
    }
}

/// Runs one claimed job to its end; returns its report (None when the job was given back or its
/// lease was lost).
pub(super) fn execute(shared: &Arc<Shared>, a: Assignment, gpus: &[u32]) -> Option<Finished> {
    let job = &a.job;
    let signals = Arc::new(Signals::default());
    let _guard = ActiveGuard::enter(shared, &a, &signals);
    // A stop now that came between the claim and here: the give-back thread may have looked
    // before this job was counted active (and ended, with nothing running).
    if shared.give_back_asked() {
        signals.give_back.store(true, Ordering::SeqCst);
    }
    say(&format!(
        "job {} attempt {}: {}",
        job.id,
        a.attempt,
        job.spec.describe()
    ));
    let started = Instant::now();
    let timeout = match (
        job.spec.timeout_secs.map(Duration::from_secs),
        shared.cfg.job_timeout,
    ) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };

    let mut complete = CompleteRequest {
        attempt: a.attempt,
        lease: a.lease,
        outcome: Outcome::Succeeded,
        exit_code: None,
        duration_ms: 0,
        error: None,
        result: None,
        started_us: None,
    };
    if let Task::Builtin { kind, input, .. } = &job.spec.task {
        complete.started_us = Some(crate::model::now_us());
        match builtin::run(*kind, input, &signals, timeout) {
            builtin::BuiltinEnd::Done(v) => complete.result = Some(v),
            builtin::BuiltinEnd::Failed(e) => {
                complete.outcome = Outcome::Failed;
                complete.error = Some(e);
            }
            builtin::BuiltinEnd::Cancelled => complete.outcome = Outcome::Cancelled,
            builtin::BuiltinEnd::TimedOut => {
                complete.outcome = Outcome::TimedOut;
                complete.error = Some(format!(
                    "killed after {}s (timeout)",
                    timeout.unwrap_or_default().as_secs()
                ));
            }
        }
    } else if let Err(e) = run_process(shared, &a, gpus, &signals, timeout, &mut complete) {
        complete.outcome = Outcome::Failed;
        complete.error = Some(e);
    }
    complete.duration_ms = started.elapsed().as_millis() as u64;

    // A built-in other than `wait` has ended by now: its result is reported, not given back.
    let lasts = !matches!(&job.spec.task, Task::Builtin { kind, .. } if *kind != JobKind::Wait);
    if lasts && signals.give_back.load(Ordering::SeqCst) {
        // Its output is sent (run_process waited for it): hand it over.
        give_back(shared, &a, "the worker was stopped or is updating");
        say(&format!(
            "job {} given back to the queue{}",
            job.id,
            if shared.shutdown.preempted() {
                " (preempted)"
            } else {
                ""
            }
        ));
        return None;
    }
    if signals.stale.load(Ordering::SeqCst) {
        say(&format!(
            "job {} attempt {} dropped: its lease is no longer ours",
            job.id, a.attempt
        ));
        return None;
    }
    if signals.cancel.load(Ordering::SeqCst) && complete.outcome != Outcome::Succeeded {
        complete.outcome = Outcome::Cancelled;
    }
    say(&format!(
        "job {} {} in {:.1}s",
        job.id,
        complete.outcome.state(),
        complete.duration_ms as f64 / 1000.0
    ));
    Some(Finished {
        job: job.id,
        report: complete,
    })
}

/// Gives every running job back when the worker is told to stop now (a second signal,
/// preemption) or to update now (`--update-now`): each job's runner or built-in sees its
/// `give_back` and ends it, its output sent. One thread for the worker's life, looking every
/// 50 ms (not one per job: a thread started per job cost more than a short job itself); it
/// ends once the worker stops with nothing running.
pub(super) fn give_back_when_asked(shared: &Shared) {
    loop {
        if shared.give_back_asked() {
            let running = lock(&shared.running);
            // Asked again under the lock: a refused update clears `abandon_all` before its
            // slots claim again.
            if shared.give_back_asked() {
                for r in running.values() {
                    r.signals.give_back.store(true, Ordering::SeqCst);
                }
            }
        }
        if shared.shutdown.level() >= 2 && shared.active.load(Ordering::SeqCst) == 0 {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs an experiment or command job as a process group in `<state>/jobs/<id>-<attempt>`,
/// streaming its output; fills `complete` from how it ended. Err: it could not be started.
fn run_process(
    shared: &Arc<Shared>,
    a: &Assignment,
    gpus: &[u32],
    signals: &Arc<Signals>,
    timeout: Option<Duration>,
    complete: &mut CompleteRequest,
) -> Result<(), String> {
    let job = &a.job;
    let cfg = &shared.cfg;
    let work = cfg
        .state_dir
        .join("jobs")
        .join(format!("{}-{}", job.id, a.attempt));
    let out_dir = work.join("output");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let spec = process_spec(shared, a, gpus, &work, &out_dir, timeout)?;
    if let Some(r) = lock(&shared.reaper).as_mut() {
        r.ensure_running();
    }
    let streamer = Streamer::start(
        Target {
            client: shared.client.clone(),
            job: job.id,
            attempt: a.attempt,
            lease: a.lease,
            spool_dir: cfg.state_dir.join("spool"),
            postcard: cfg.postcard,
            memory_rows: cfg.memory_rows,
        },
        signals.clone(),
        Arc::new(Mutex::new(|m: &str| say(m))),
    );
    let (ended, result) = runner::run(&spec, streamer.sender(), signals, &say);
    if killed_from_outside(&ended) && !signals.give_back.load(Ordering::SeqCst) {
        // A scheduler signals every process of the allocation at once (Slurm at the time
        // limit, systemd's default KillMode): the experiment may die a moment before the
        // worker hears its own signal. Then the job did not fail: it goes back.
        // Told to stop just now, not long before (a job killed by the OOM killer while its
        // worker drains after --max-jobs is that job's failure; a worker that has been draining
        // since its allocation's end margin is preempted by the scheduler's SIGTERM all the same).
        let recent = || {
            shared
                .shutdown
                .stopping_for()
                .is_some_and(|d| d < Duration::from_secs(3))
        };
        let until = Instant::now() + Duration::from_secs(1);
        while Instant::now() < until && !recent() {
            std::thread::sleep(Duration::from_millis(20));
        }
        if recent() {
            say(&format!(
                "job {}: its process was killed while this worker is being stopped: giving it back",
                job.id
            ));
            signals.give_back.store(true, Ordering::SeqCst);
        }
    }
    // The files the job left, checked while its log is still open: a file that cannot be
    // uploaded says why in the job's own log, where its owner looks.
    let mut files = Vec::new();
    let listed = runner::output_files(&out_dir);
    let total: u64 = listed.iter().map(|(_, _, size)| size).sum();
    let over_output = spec
        .limits
        .output_bytes
        .filter(|&max| total > max)
        .map(|max| {
            format!(
                "over its output limit (output={}): its result files hold {}",
                crate::human::bytes(max),
                crate::human::bytes(total)
            )
        });
    for (name, path, size) in listed {
        let refused = if size > cfg.max_upload {
            Some(format!(
                "result file {name} ({size} bytes) is over this worker's upload limit of {} bytes (gaia work --max-file-mib); not uploaded",
                cfg.max_upload
            ))
        } else if crate::model::validate_name("file name", &name).is_err() {
            Some(format!(
                "result file {name:?} not uploaded: use 1-64 characters of A-Z a-z 0-9 _ - ."
            ))
        } else {
            None
        };
        match refused {
            Some(why) => {
                say(&format!("job {}: {why}", job.id));
                streamer.sender().send(stream::Item::Log(
                    crate::model::Stream::Stderr,
                    format!("WARNING: gaia: {why}"),
                ));
            }
            None => files.push((name, path)),
        }
    }
    if signals.give_back.load(Ordering::SeqCst) {
        // Send what it printed, within a bound: past it the rest is dropped (stale) and the
        // job goes back all the same.
        let signals = signals.clone();
        std::thread::spawn(move || {
            std::thread::sleep(GIVE_BACK_FLUSH);
            signals.stale.store(true, Ordering::SeqCst);
        });
    }
    streamer.finish();
    if signals.stale.load(Ordering::SeqCst) || signals.give_back.load(Ordering::SeqCst) {
        shared.tidy.remove(work);
        return Ok(());
    }
    complete.result = result.result;
    complete.started_us = result.started_us;
    let ended = match (ended, over_output) {
        (runner::Ended::Exited(_), Some(why)) => runner::Ended::OverLimit(why),
        (ended, _) => ended,
    };
    report_end(ended, &result.stderr_tail.join("\n"), timeout, complete);
    // Upload the files the job left, whatever its outcome (a failed run's files help debug it).
    for (name, path) in files {
        upload(shared, a, &name, &path);
    }
    shared.tidy.remove(work);
    Ok(())
}

/// What to start for a process job: the experiment (`<python> run_all.py ...` in the
/// experiments folder) or the submitted command (in the job's own folder), with the job's
/// environment.
fn process_spec(
    shared: &Shared,
    a: &Assignment,
    gpus: &[u32],
    work: &Path,
    out_dir: &Path,
    timeout: Option<Duration>,
) -> Result<runner::Spec, String> {
    let job = &a.job;
    let cfg = &shared.cfg;
    let (program, args, cwd) = match &job.spec.task {
        Task::Experiment(e) => {
            let python = shared
                .python
                .clone()
                .ok_or("this worker has no Python for experiments")?;
            let mut args = vec![
                "run_all.py".to_string(),
                "--method".into(),
                e.method.clone(),
                "--env".into(),
                e.env.clone(),
                "--max-evals".into(),
                e.max_evals.to_string(),
            ];
            if let Some(seed) = e.seed {
                args.push("--seed".into());
                args.push(seed.to_string());
            }
            (python, args, cfg.experiments_dir.clone())
        }
        Task::Command { argv, .. } => {
            if !cfg.allow_commands {
                return Err(
                    "this worker does not run command jobs (start it with --allow-commands)".into(),
                );
            }
            let mut argv = argv.clone();
            if argv.is_empty() {
                return Err("the command job has an empty argv".into());
            }
            let program = PathBuf::from(argv.remove(0));
            (program, argv, work.to_path_buf())
        }
        Task::Builtin { kind, .. } => return Err(format!("{kind} is not a process kind")),
    };
    let mut env = vec![
        ("GAIA_JOB_ID".to_string(), job.id.to_string()),
        ("GAIA_ATTEMPT".to_string(), a.attempt.to_string()),
        (
            "GAIA_JOB_PARAMS".to_string(),
            serde_json::to_string(&job.spec.params).unwrap_or_else(|_| "{}".into()),
        ),
        ("GAIA_OUTPUT_DIR".to_string(), out_dir.display().to_string()),
        ("PYTHONUNBUFFERED".to_string(), "1".to_string()),
    ];
    if !gpus.is_empty() {
        env.push((
            "CUDA_VISIBLE_DEVICES".into(),
            gpus.iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ));
    } else if cfg.gpus == GpuChoice::None {
        env.push(("CUDA_VISIBLE_DEVICES".into(), String::new()));
    }
    let limits = job.spec.limits.within(&cfg.max_limits);
    let asked = &job.spec.limits;
    let clamped = [
        (asked.memory_bytes, limits.memory_bytes),
        (asked.cpu_secs, limits.cpu_secs),
        (asked.open_files, limits.open_files),
        (asked.output_bytes, limits.output_bytes),
    ]
    .iter()
    .any(|(a, b)| matches!((a, b), (Some(a), Some(b)) if b < a));
    if clamped {
        say(&format!(
            "job {}: asked for limits {}, this worker allows at most {}: running with {}",
            job.id,
            job.spec.limits.describe(),
            cfg.max_limits.describe(),
            limits.describe()
        ));
    }
    let tracking = Tracking {
        dir: reaper::records_dir(&cfg.state_dir),
        // The job's own output folder: no process outside this job has it in its environment.
        marker: format!("GAIA_OUTPUT_DIR={}", out_dir.display()),
    };
    Ok(runner::Spec {
        program,
        args,
        cwd,
        env,
        timeout,
        grace: cfg.kill_grace,
        tracking: Some(tracking),
        limits,
        cgroup_name: format!("gaia-job-{}-{}", job.id, a.attempt),
    })
}

/// Fills the completion from how the process ended; `tail` is the end of its stderr.
fn report_end(
    ended: runner::Ended,
    tail: &str,
    timeout: Option<Duration>,
    complete: &mut CompleteRequest,
) {
    match ended {
        runner::Ended::Exited(status) => {
            complete.exit_code = status.code();
            if !status.success() {
                complete.outcome = Outcome::Failed;
                let how = match status.code() {
                    Some(c) => format!("exited with code {c}"),
                    None => {
                        #[cfg(unix)]
                        {
                            use std::os::unix::process::ExitStatusExt;
                            format!("killed by signal {}", status.signal().unwrap_or(0))
                        }
                        #[cfg(not(unix))]
                        {
                            "killed".to_string()
                        }
                    }
                };
                complete.error = Some(if tail.is_empty() {
                    how
                } else {
                    format!("{how}; last stderr lines:\n{tail}")
                });
            }
        }
        runner::Ended::Cancelled => complete.outcome = Outcome::Cancelled,
        runner::Ended::TimedOut => {
            complete.outcome = Outcome::TimedOut;
            complete.error = Some(format!(
                "killed after {}s (timeout){}",
                timeout.unwrap_or_default().as_secs(),
                if tail.is_empty() {
                    String::new()
                } else {
                    format!("; last stderr lines:\n{tail}")
                }
            ));
        }
        runner::Ended::Stale | runner::Ended::GivenBack => {}
        runner::Ended::OverLimit(why) => {
            complete.outcome = Outcome::Failed;
            complete.error = Some(if tail.is_empty() {
                why
            } else {
                format!("{why}; last stderr lines:\n{tail}")
            });
        }
        runner::Ended::SpawnFailed(e) => {
            complete.outcome = Outcome::Failed;
            complete.error = Some(e);
        }
    }
}

/// Whether the process was ended by a signal nobody in the worker sent (SIGTERM, SIGKILL,
/// SIGINT, SIGHUP).
fn killed_from_outside(ended: &runner::Ended) -> bool {
    #[cfg(unix)]
    if let runner::Ended::Exited(status) = ended {
        use std::os::unix::process::ExitStatusExt;
        return matches!(
            status.signal(),
            Some(libc::SIGTERM | libc::SIGKILL | libc::SIGINT | libc::SIGHUP)
        );
    }
    let _ = ended;
    false
}

/// Uploads one result file, retrying through outages (not once the worker stops now).
fn upload(shared: &Shared, a: &Assignment, name: &str, path: &Path) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match shared
            .client
            .upload_file(a.job.id, a.attempt, a.lease, name, path)
        {
            Ok(_) => return,
            Err(e) if e.is_unreachable() && shared.shutdown.level() < 2 => {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                say(&format!("job {}: upload of {name} failed: {e}", a.job.id));
                return;
            }
        }
    }
}
