//! The worker runtime: registers with the server (outbound only, so it works behind NAT),
//! heartbeats, long-polls a claim for every free slot, runs each job and reports it.
//!
//! Threads, not async: one per slot (claim → run → report), one heartbeat, one that gives the
//! running jobs back on a stop now, one streamer per running job, two pipe readers and a waiter
//! per process. Every call is a plain blocking HTTP request.
//!
//! | module | owns |
//! |---|---|
//! | `mod.rs` | [`run`]: check the setup, register, start the heartbeat and the slots, install an update between jobs |
//! | `session` | the worker id (state file), registering, the heartbeat loop, updates |
//! | `deadline` | the allocation's end: refreshed from `squeue`, drain near it, give jobs back before it |
//! | `slot` | one slot's claim → run → report loop; GPUs split over slots |
//! | `job` | one job: built-in or process, output files, the completion report; giving running jobs back on a stop now |
//! | `shared` | the state the heartbeat and the slots share |
//! | `tidy` | finished jobs' folders removed by a background thread, off the slots' path |
//! | [`pyenv`] | the experiments' virtualenv |
//! | [`runner`] | child processes in their own process group; kill on cancel/timeout/exit |
//! | `spawn` | starting a job's leader without forking the worker (Linux): signal, group, cgroup and limits set before its exec |
//! | [`reaper`] | jobs do not outlive the worker: parent-death signal, the reaper process, records of running groups, the restart cleanup |
//! | `config` | [`WorkerConfig`], [`Shutdown`] (signals), console lines |
//! | [`builtin`] | the in-process kinds (reverse, hash, sum, upper, wait) |
//! | [`stream`] | batching rows and logs to the server; buffering and spooling through outages |
//! | [`hardware`] | OS, CPU, memory, GPUs, utilisation |
//!
//! Each file uses only files below it in this table, so there is no import loop inside the
//! worker.

pub mod builtin;
mod config;
mod deadline;
pub mod hardware;
mod job;
pub mod pyenv;
pub mod reaper;
pub mod runner;
mod session;
mod shared;
mod slot;
#[cfg(target_os = "linux")]
mod spawn;
pub mod stream;
mod tidy;

pub use config::{OnSigterm, Shutdown, WorkerConfig, default_state_dir, sanitize_name, stamp};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use self::config::say;
use self::shared::{Shared, lock};
use crate::client::Client;
use crate::error::WorkerError;
use crate::model::{Capabilities, JobKind};
use crate::protocol::RegisterRequest;

/// What a finished worker run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub jobs_run: u64,
    pub worker_id: String,
}

/// Runs a worker until `shutdown` (or `exit_when_idle`) stops it.
pub fn run(mut cfg: WorkerConfig, shutdown: Arc<Shutdown>) -> Result<Summary, WorkerError> {
    crate::model::validate_name("worker name", &cfg.name)
        .map_err(|e| WorkerError::Setup(e.to_string()))?;
    if cfg.slots == 0 || cfg.slots > 256 {
        return Err(WorkerError::Setup(format!(
            "--slots must be between 1 and 256, got {}",
            cfg.slots
        )));
    }
    std::fs::create_dir_all(&cfg.state_dir).map_err(|e| {
        WorkerError::Setup(format!(
            "cannot create state dir {}: {e}",
            cfg.state_dir.display()
        ))
    })?;
    // Jobs run in other folders: every path handed to them must be absolute.
    cfg.state_dir = std::path::absolute(&cfg.state_dir).unwrap_or(cfg.state_dir.clone());
    cfg.experiments_dir =
        std::path::absolute(&cfg.experiments_dir).unwrap_or(cfg.experiments_dir.clone());
    // What this worker's previous life left running (it was killed, and its reaper too).
    let records = reaper::records_dir(&cfg.state_dir);
    let left = reaper::kill_left(&records);
    if left > 0 {
        say(&format!(
            "killed {left} process(es) of jobs that the previous run of this worker left running"
        ));
    }
    let mut kinds: Vec<JobKind> = cfg.kinds.clone();
    if cfg.allow_commands && !kinds.contains(&JobKind::Command) {
        kinds.push(JobKind::Command);
    }
    if !cfg.allow_commands {
        kinds.retain(|k| *k != JobKind::Command);
    }
    if kinds.is_empty() {
        return Err(WorkerError::Setup(
            "no job kinds to run (see --kinds)".into(),
        ));
    }
    let gpus = hardware::detect_gpus(&cfg.gpus).map_err(WorkerError::Setup)?;
    let hw = hardware::detect(gpus.clone());
    say(&format!(
        "{} on {} ({} cores, {} MiB, {}), {} slot(s), kinds {}",
        cfg.name,
        hw.hostname,
        hw.cpu_cores,
        hw.memory_mb,
        if gpus.is_empty() {
            "no GPU".to_string()
        } else {
            gpus.iter()
                .map(|g| g.name.clone())
                .collect::<Vec<_>>()
                .join(", ")
        },
        cfg.slots,
        kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    ));
    let experiments = kinds.contains(&JobKind::Experiment);
    if experiments && !cfg.experiments_dir.join("run_all.py").exists() {
        return Err(WorkerError::Setup(format!(
            "{} has no run_all.py; pass --experiments-dir (or leave out experiment from --kinds)",
            cfg.experiments_dir.display()
        )));
    }
    // A wrong address or token fails here, in a second, not after minutes of building the
    // Python environment.
    let client = Client::connect(&cfg.server, Some(cfg.token.clone()), cfg.ca_cert.as_deref())?;
    let answered = session::check_access(&client, &cfg.server)?;
    let python = if experiments {
        Some(
            pyenv::ensure(
                cfg.python.as_deref(),
                &cfg.experiments_dir,
                &cfg.state_dir,
                &say,
            )
            .map_err(WorkerError::Setup)?,
        )
    } else {
        None
    };
    let register = RegisterRequest {
        worker_id: session::previous_id(&cfg.state_dir, &cfg.server, &cfg.name),
        name: cfg.name.clone(),
        version: crate::VERSION.to_string(),
        hardware: hw,
        kinds: kinds.clone(),
        tags: cfg.tags.clone(),
        slots: cfg.slots,
    };
    let Some(resp) = session::register_until(&client, &register, &shutdown, !answered)? else {
        return Ok(Summary::default());
    };
    say(&format!(
        "registered with {} as {} (server {})",
        cfg.server, resp.worker_id, resp.server_version
    ));
    session::save_id(&cfg.state_dir, &resp.worker_id, &cfg.server, &cfg.name);
    let reaper = match reaper::Reaper::start(&records) {
        Ok(r) => Some(r),
        Err(why) => {
            if cfg!(target_os = "linux") {
                say(&format!(
                    "warning: {why}, so if this worker is killed, its jobs' child processes run on until it starts again"
                ));
            }
            None
        }
    };
    let shared = Arc::new(Shared {
        client,
        worker_id: RwLock::new(resp.worker_id.clone()),
        register: RegisterRequest {
            worker_id: Some(resp.worker_id.clone()),
            ..register
        },
        running: Mutex::new(HashMap::new()),
        active: AtomicUsize::new(0),
        last_activity: Mutex::new(Instant::now()),
        shutdown: shutdown.clone(),
        python,
        latest_version: RwLock::new(None),
        heartbeat: Duration::from_millis(resp.heartbeat_ms.clamp(200, 60_000)),
        update_target: Mutex::new(None),
        refused: Mutex::new(Default::default()),
        abandon_all: Default::default(),
        reaper: Mutex::new(reaper),
        tidy: tidy::Tidy::start(&cfg.state_dir.join("jobs")),
        alloc_end: AtomicU64::new(0),
        claims: AtomicU64::new(0),
        hold: RwLock::new(None),
        cfg,
    });
    if shared.cfg.allocation != crate::cluster::allocation::Allocation::Open {
        deadline::first_look(&shared);
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("gaia-deadline".into())
            .spawn(move || deadline::watch(&shared))
            .expect("spawn the deadline watcher");
    }

    {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("gaia-give-back".into())
            .spawn(move || job::give_back_when_asked(&shared))
            .expect("spawn the give-back watcher");
    }
    let hb = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("gaia-heartbeat".into())
            .spawn(move || session::heartbeat_loop(&shared))
            .expect("spawn heartbeat")
    };
    let memory_mb = shared.register.hardware.memory_mb;
    let exe = std::env::current_exe().ok();
    let mut jobs_run = 0;
    loop {
        let mut slots = Vec::new();
        for (i, g) in slot::split_gpus(&gpus, shared.cfg.slots)
            .into_iter()
            .enumerate()
        {
            let shared = shared.clone();
            let caps = Capabilities {
                kinds: kinds.clone(),
                gpus: g.len() as u32,
                memory_mb,
                tags: shared.cfg.tags.clone(),
                max_job_secs: None,
            };
            slots.push(
                std::thread::Builder::new()
                    .name(format!("gaia-slot-{i}"))
                    .spawn(move || slot::slot_loop(&shared, caps, g))
                    .expect("spawn slot"),
            );
        }
        for s in slots {
            jobs_run += s.join().unwrap_or(0);
        }
        let target = lock(&shared.update_target).clone();
        let Some(tag) = target.filter(|_| shared.shutdown.level() == 0) else {
            break;
        };
        // Every slot has stopped: no job is running. Move to the release, or say why not (and
        // claim again as before).
        let paths = crate::release::update::UpdatePaths {
            exe: exe.clone().unwrap_or_default(),
            experiments_dir: shared.cfg.experiments_dir.clone(),
            trust_key: shared.cfg.trust_key.clone(),
        };
        if session::install_update(&shared, &tag, &paths).is_ok() {
            shared.tidy.finish();
            shutdown.now();
            let _ = hb.join();
            drop(lock(&shared.reaper).take());
            say(&format!("restarting as {tag}"));
            let err = crate::release::update::reexec(&paths.exe);
            return Err(WorkerError::Setup(format!(
                "updated to {tag} but could not restart: {err}"
            )));
        }
    }
    if let Some(max) = shared.cfg.max_jobs
        && shared.claims.load(std::sync::atomic::Ordering::SeqCst) >= max
        && shared.shutdown.level() < 2
    {
        say(&format!("claimed {max} job(s) (--max-jobs): exiting"));
    }
    shutdown.now();
    let _ = hb.join();
    // Shown offline at once rather than after the lease timeout (an old server: 404, ignored).
    let _ = shared.client.leave(&shared.id());
    shared.tidy.finish();
    drop(lock(&shared.reaper).take());
    say(&format!("stopped after {jobs_run} job(s)"));
    Ok(Summary {
        jobs_run,
        worker_id: shared.id(),
    })
}
