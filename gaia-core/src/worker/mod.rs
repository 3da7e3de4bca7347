//! The worker runtime: registers with the server (outbound only, so it works behind NAT),
//! heartbeats, long-polls a claim for every free slot, runs each job and reports it.
//!
//! Threads, not async: one per slot (claim → run → report), one heartbeat, one streamer per
//! running job, two pipe readers per process. Every call is a plain blocking HTTP request.
//!
//! | module | owns |
//! |---|---|
//! | [`runner`] | child processes in their own process group; kill on cancel/timeout/exit |
//! | [`stream`] | batching rows and logs to the server; buffering and spooling through outages |
//! | [`builtin`] | the in-process kinds (reverse, hash, sum, upper, wait) |
//! | [`hardware`] | OS, CPU, memory, GPUs, utilisation |
//! | [`pyenv`] | the experiments' virtualenv |

pub mod builtin;
pub mod hardware;
pub mod pyenv;
pub mod runner;
pub mod stream;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use self::hardware::GpuChoice;
use self::stream::{Signals, Streamer, Target};
use crate::client::Client;
use crate::error::{ClientError, WorkerError};
use crate::model::{Capabilities, Gpu, JobId, JobKind};
use crate::protocol::{
    Assignment, ClaimRequest, CompleteRequest, Finished, HeartbeatRequest, LeaseRef, Outcome,
    RegisterRequest, RequeueRequest,
};

/// How a worker is set up.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    pub server: String,
    pub token: String,
    /// CA certificates (PEM) to trust for an HTTPS server instead of the public roots.
    pub ca_cert: Option<PathBuf>,
    /// Shown in lists; default the host name.
    pub name: String,
    pub gpus: GpuChoice,
    /// Jobs run at once.
    pub slots: u32,
    /// Kinds this worker runs. `command` is only honoured with `allow_commands`.
    pub kinds: Vec<JobKind>,
    pub tags: Vec<String>,
    /// Where `run_all.py` and `requirements.txt` are.
    pub experiments_dir: PathBuf,
    /// The Python to run experiments with; None builds a venv from requirements.txt.
    pub python: Option<PathBuf>,
    /// Run `command` jobs (arbitrary programs from submitters).
    pub allow_commands: bool,
    /// Keeps the worker id, the venv, spool files and job output folders.
    pub state_dir: PathBuf,
    /// Exit 0 after this long with nothing to do.
    pub exit_when_idle: Option<Duration>,
    /// Kill jobs that run longer (reported as timed_out).
    pub job_timeout: Option<Duration>,
    /// SIGTERM → SIGKILL grace when stopping a job.
    pub kill_grace: Duration,
    /// Longest long-poll wait per claim.
    pub claim_wait: Duration,
    /// Largest result file uploaded.
    pub max_upload: u64,
    /// Send rows as postcard (else JSON).
    pub postcard: bool,
    /// Rows of one job kept in memory while the server is unreachable; past this they spill
    /// to a file in the state dir (default [`stream::MEMORY_ROWS`]).
    pub memory_rows: usize,
    /// Move to the promoted release between jobs (replacing this binary).
    pub auto_update: bool,
    /// With `auto_update`: give running jobs back instead of waiting for them.
    pub update_now: bool,
    /// Public key (hex) every release file must be signed with.
    pub trust_key: Option<String>,
}

impl WorkerConfig {
    /// Defaults for a server, token and experiments folder.
    pub fn new(server: &str, token: &str, experiments_dir: impl Into<PathBuf>) -> WorkerConfig {
        let name = sysinfo::System::host_name()
            .ok()
            .map(|h| sanitize_name(&h))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".into());
        WorkerConfig {
            server: server.into(),
            token: token.into(),
            ca_cert: None,
            state_dir: default_state_dir(&name),
            name,
            gpus: GpuChoice::Auto,
            slots: 1,
            kinds: vec![
                JobKind::Experiment,
                JobKind::Reverse,
                JobKind::Hash,
                JobKind::Sum,
                JobKind::Upper,
                JobKind::Wait,
            ],
            tags: Vec::new(),
            experiments_dir: experiments_dir.into(),
            python: None,
            allow_commands: false,
            exit_when_idle: None,
            job_timeout: None,
            kill_grace: Duration::from_secs(10),
            claim_wait: Duration::from_secs(30),
            max_upload: 100 << 20,
            postcard: true,
            memory_rows: stream::MEMORY_ROWS,
            auto_update: false,
            update_now: false,
            trust_key: None,
        }
    }
}

/// Turns a host name into a valid worker name.
pub fn sanitize_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    while out.starts_with(['.', '-']) {
        out.remove(0);
    }
    out
}

/// `$XDG_DATA_HOME/gaia/worker-<name>` or `~/.local/share/gaia/worker-<name>`.
pub fn default_state_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("gaia").join(format!("worker-{name}"))
}

/// Asks a running worker to stop: level 1 drains (stop claiming, finish running jobs), level 2
/// gives running jobs back to the queue and exits at once.
#[derive(Default)]
pub struct Shutdown {
    level: AtomicU8,
}

static SIGNALS: AtomicU8 = AtomicU8::new(0);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

impl Shutdown {
    /// A fresh, unsignalled shutdown handle.
    pub fn new() -> Arc<Shutdown> {
        Arc::new(Shutdown::default())
    }

    /// Stop claiming; finish running jobs.
    pub fn drain(&self) {
        self.level.fetch_max(1, Ordering::SeqCst);
    }

    /// Give running jobs back and exit now.
    pub fn now(&self) {
        self.level.fetch_max(2, Ordering::SeqCst);
    }

    /// 0 running, 1 draining, 2 stopping now.
    pub fn level(&self) -> u8 {
        self.level.load(Ordering::SeqCst)
    }

    /// SIGINT/SIGTERM: the first drains, the second stops now.
    pub fn install_signal_handlers(self: &Arc<Self>) {
        #[cfg(unix)]
        unsafe {
            libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
            libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        }
        let me = self.clone();
        std::thread::spawn(move || {
            let mut seen = 0;
            loop {
                let n = SIGNALS.load(Ordering::SeqCst);
                if n != seen {
                    seen = n;
                    if n == 1 {
                        eprintln!(
                            "{} gaia work: stopping: no new jobs; running jobs finish (signal again to requeue them and exit now)",
                            stamp()
                        );
                        me.drain();
                    } else {
                        eprintln!(
                            "{} gaia work: stopping now: giving running jobs back to the queue",
                            stamp()
                        );
                        me.now();
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
    }
}

/// The state file: which worker id this is, on which server.
#[derive(Serialize, Deserialize)]
struct StateFile {
    worker_id: String,
    server: String,
    name: String,
}

const STATE_FILE: &str = "worker.json";

fn load_state(dir: &Path, server: &str, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(STATE_FILE)).ok()?;
    let s: StateFile = serde_json::from_str(&text).ok()?;
    (s.server == server && s.name == name).then_some(s.worker_id)
}

fn save_state(dir: &Path, s: &StateFile) -> std::io::Result<()> {
    let tmp = dir.join(".worker.json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(s)?)?;
    std::fs::rename(tmp, dir.join(STATE_FILE))
}

/// A timestamp for console lines.
pub fn stamp() -> String {
    let ms = crate::model::now_ms();
    let s = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

fn say(msg: &str) {
    eprintln!("{} gaia work: {msg}", stamp());
}

struct RunningJob {
    attempt: u32,
    lease: u64,
    signals: Arc<Signals>,
}

struct Shared {
    cfg: WorkerConfig,
    client: Client,
    worker_id: RwLock<String>,
    register: RegisterRequest,
    running: Mutex<HashMap<JobId, RunningJob>>,
    active: AtomicUsize,
    last_activity: Mutex<Instant>,
    shutdown: Arc<Shutdown>,
    python: Option<PathBuf>,
    latest_version: RwLock<Option<String>>,
    heartbeat: Duration,
    /// The release to move to once running jobs are done.
    update_target: Mutex<Option<String>>,
    /// Releases this worker refused (not tried again until another is promoted).
    refused: Mutex<std::collections::HashSet<String>>,
    /// Give every running job back to the queue (second signal, or --update-now).
    abandon_all: std::sync::atomic::AtomicBool,
}

impl Shared {
    fn id(&self) -> String {
        self.worker_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

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
    if matches!(cfg.gpus, GpuChoice::List(_)) && gpus.iter().all(|g| g.driver.is_empty()) {
        say(&format!(
            "warning: nvidia-smi did not answer, so --gpu {} is taken as given, unchecked",
            gpus.iter()
                .map(|g| g.index.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ));
    }
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
    let python = if kinds.contains(&JobKind::Experiment) {
        if !cfg.experiments_dir.join("run_all.py").exists() {
            return Err(WorkerError::Setup(format!(
                "{} has no run_all.py; pass --experiments-dir (or leave out experiment from --kinds)",
                cfg.experiments_dir.display()
            )));
        }
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
    let client = Client::connect(&cfg.server, Some(cfg.token.clone()), cfg.ca_cert.as_deref())?;
    let previous = load_state(&cfg.state_dir, &cfg.server, &cfg.name);
    let register = RegisterRequest {
        worker_id: previous,
        name: cfg.name.clone(),
        version: crate::VERSION.to_string(),
        hardware: hw,
        kinds: kinds.clone(),
        tags: cfg.tags.clone(),
        slots: cfg.slots,
    };
    let Some(resp) = register_until(&client, &register, &shutdown)? else {
        return Ok(Summary::default());
    };
    say(&format!(
        "registered with {} as {} (server {})",
        cfg.server, resp.worker_id, resp.server_version
    ));
    let _ = save_state(
        &cfg.state_dir,
        &StateFile {
            worker_id: resp.worker_id.clone(),
            server: cfg.server.clone(),
            name: cfg.name.clone(),
        },
    );
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
        cfg,
    });

    let hb = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("gaia-heartbeat".into())
            .spawn(move || heartbeat_loop(&shared))
            .expect("spawn heartbeat")
    };
    let memory_mb = shared.register.hardware.memory_mb;
    let exe = std::env::current_exe().ok();
    let mut jobs_run = 0;
    loop {
        let mut slots = Vec::new();
        for (i, g) in split_gpus(&gpus, shared.cfg.slots).into_iter().enumerate() {
            let shared = shared.clone();
            let caps = Capabilities {
                kinds: kinds.clone(),
                gpus: g.len() as u32,
                memory_mb,
                tags: shared.cfg.tags.clone(),
            };
            slots.push(
                std::thread::Builder::new()
                    .name(format!("gaia-slot-{i}"))
                    .spawn(move || slot_loop(&shared, caps, g))
                    .expect("spawn slot"),
            );
        }
        for s in slots {
            jobs_run += s.join().unwrap_or(0);
        }
        let target = shared
            .update_target
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(tag) = target.filter(|_| shared.shutdown.level() == 0) else {
            break;
        };
        // Every slot has stopped: no job is running. Move to the release, or say why not.
        let paths = crate::release::update::UpdatePaths {
            exe: exe.clone().unwrap_or_default(),
            experiments_dir: shared.cfg.experiments_dir.clone(),
            trust_key: shared.cfg.trust_key.clone(),
        };
        match crate::release::update::update_to(&shared.client, &tag, &paths, &say) {
            Ok(()) => {
                let _ = shared.client.update_report(
                    &shared.id(),
                    &crate::release::UpdateReport {
                        tag: tag.clone(),
                        ok: true,
                        message: format!("replaced {} with {tag}; restarting", crate::VERSION),
                    },
                );
                shutdown.now();
                let _ = hb.join();
                say(&format!("restarting as {tag}"));
                let err = crate::release::update::reexec(&paths.exe);
                return Err(WorkerError::Setup(format!(
                    "updated to {tag} but could not restart: {err}"
                )));
            }
            Err(msg) => {
                say(&format!(
                    "update to {tag} refused: {msg}; staying on {}",
                    crate::VERSION
                ));
                let _ = shared.client.update_report(
                    &shared.id(),
                    &crate::release::UpdateReport {
                        tag: tag.clone(),
                        ok: false,
                        message: msg,
                    },
                );
                shared
                    .refused
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(tag);
                *shared
                    .update_target
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = None;
                shared.abandon_all.store(false, Ordering::SeqCst);
            }
        }
    }
    shutdown.now();
    let _ = hb.join();
    // Shown offline at once rather than after the lease timeout (an old server: 404, ignored).
    let _ = shared.client.leave(&shared.id());
    say(&format!("stopped after {jobs_run} job(s)"));
    Ok(Summary {
        jobs_run,
        worker_id: shared.id(),
    })
}

/// Splits GPUs over slots round-robin: `--slots 2 --gpu 0,1` gives each slot one GPU.
fn split_gpus(gpus: &[Gpu], slots: u32) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new(); slots as usize];
    for (i, g) in gpus.iter().enumerate() {
        out[i % slots as usize].push(g.index);
    }
    out
}

fn register_until(
    client: &Client,
    req: &RegisterRequest,
    shutdown: &Shutdown,
) -> Result<Option<crate::protocol::RegisterResponse>, WorkerError> {
    let mut backoff = Duration::from_millis(250);
    let mut warned = false;
    loop {
        match client.register(req) {
            Ok(r) => return Ok(Some(r)),
            Err(e) if e.is_unreachable() => {
                if !warned {
                    say(&format!("{e}; retrying until it answers"));
                    warned = true;
                }
            }
            Err(e) => return Err(e.into()),
        }
        if shutdown.level() > 0 {
            return Ok(None);
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn heartbeat_loop(shared: &Shared) {
    let mut probe = hardware::UsageProbe::new(!shared.register.hardware.gpus.is_empty());
    let mut next = Instant::now();
    let mut warned = false;
    let mut sent_level = 0;
    loop {
        // Sleep in small steps so shutdown is prompt; a stop request is told at once.
        while Instant::now() < next {
            if shared.shutdown.level() >= 2 && shared.active.load(Ordering::SeqCst) == 0 {
                return;
            }
            if shared.shutdown.level() != sent_level {
                break;
            }
            std::thread::sleep(
                Duration::from_millis(50).min(next.saturating_duration_since(Instant::now())),
            );
        }
        next = Instant::now() + shared.heartbeat;
        sent_level = shared.shutdown.level();
        let running: Vec<LeaseRef> = shared
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(job, r)| LeaseRef {
                job: *job,
                attempt: r.attempt,
                lease: r.lease,
            })
            .collect();
        let req = HeartbeatRequest {
            running,
            usage: probe.sample(),
            draining: shared.shutdown.level() > 0,
        };
        match shared.client.heartbeat(&shared.id(), &req) {
            Ok(resp) => {
                if warned {
                    say("server reachable again");
                    warned = false;
                }
                let running = shared.running.lock().unwrap_or_else(|p| p.into_inner());
                for j in &resp.cancel {
                    if let Some(r) = running.get(j) {
                        r.signals.cancel.store(true, Ordering::SeqCst);
                    }
                }
                for j in &resp.stale {
                    if let Some(r) = running.get(j) {
                        say(&format!(
                            "job {j}: the server no longer holds this lease; stopping it"
                        ));
                        r.signals.stale.store(true, Ordering::SeqCst);
                    }
                }
                drop(running);
                if shared.cfg.auto_update {
                    consider_update(shared, resp.latest_version.as_deref());
                }
                *shared
                    .latest_version
                    .write()
                    .unwrap_or_else(|p| p.into_inner()) = resp.latest_version;
            }
            Err(ClientError::Status { status: 404, .. }) => {
                say("the server does not know this worker any more; registering again");
                if let Ok(r) = shared.client.register(&shared.register) {
                    *shared.worker_id.write().unwrap_or_else(|p| p.into_inner()) = r.worker_id;
                }
            }
            Err(e) if e.is_unreachable() => {
                if !warned {
                    say(&format!("heartbeat: {e}; jobs keep running, retrying"));
                    warned = true;
                }
            }
            Err(e) => say(&format!("heartbeat refused: {e}")),
        }
        if shared.shutdown.level() >= 2 && shared.active.load(Ordering::SeqCst) == 0 {
            return;
        }
    }
}

/// Notes a promoted release this worker should move to (between jobs).
fn consider_update(shared: &Shared, latest: Option<&str>) {
    let Some(tag) = latest else { return };
    if !crate::release::differs(tag, crate::VERSION) {
        return;
    }
    let mut refused = shared.refused.lock().unwrap_or_else(|p| p.into_inner());
    if refused.contains(tag) {
        return;
    }
    // The tag names files and folders during the update: a server that sends a bad one is
    // ignored (said once), and nothing stops claiming for it.
    if let Err(e) = crate::release::validate_tag(tag) {
        say(&format!("the server promotes {e}; not updating"));
        refused.insert(tag.to_string());
        return;
    }
    drop(refused);
    let mut target = shared
        .update_target
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if target.as_deref() != Some(tag) {
        say(&format!(
            "release {tag} is promoted (this is {}): {}",
            crate::VERSION,
            if shared.cfg.update_now {
                "giving running jobs back and updating now"
            } else {
                "updating once running jobs finish"
            }
        ));
        *target = Some(tag.to_string());
        if shared.cfg.update_now {
            shared.abandon_all.store(true, Ordering::SeqCst);
        }
    }
}

fn slot_loop(shared: &Arc<Shared>, caps: Capabilities, gpus: Vec<u32>) -> u64 {
    let mut ran = 0;
    let mut backoff = Duration::from_millis(250);
    // The last job's end, sent with the next claim (one round trip per job).
    let mut pending: Option<Finished> = None;
    let flush = |pending: &mut Option<Finished>| {
        if let Some(f) = pending.take() {
            report(shared, f.job, &f.report);
        }
    };
    loop {
        let updating = || {
            shared
                .update_target
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_some()
        };
        if shared.shutdown.level() > 0 || updating() {
            flush(&mut pending);
            return ran;
        }
        let mut wait = shared.cfg.claim_wait;
        if let Some(idle) = shared.cfg.exit_when_idle {
            let since = shared
                .last_activity
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed();
            if shared.active.load(Ordering::SeqCst) == 0 && since >= idle {
                flush(&mut pending);
                say(&format!("idle for {idle:?}: exiting (--exit-when-idle)"));
                shared.shutdown.drain();
                return ran;
            }
            wait = wait.min(idle.saturating_sub(since).max(Duration::from_millis(100)));
        }
        // Claims come back at most every few seconds so a stop request is honoured promptly.
        wait = wait.min(Duration::from_secs(5));
        let req = ClaimRequest {
            worker_id: shared.id(),
            capabilities: caps.clone(),
            wait_ms: wait.as_millis() as u64,
            finished: pending.clone(),
        };
        match shared.client.claim_with(&req) {
            Ok(resp) => {
                backoff = Duration::from_millis(250);
                if let (Some(e), Some(f)) = (&resp.finished_error, &pending) {
                    say(&format!("job {}: completion refused: {e}", f.job));
                }
                pending = None;
                let Some(a) = resp.assignment else { continue };
                if shared.shutdown.level() > 0 || updating() {
                    give_back(shared, &a, "the worker is shutting down or updating");
                    return ran;
                }
                pending = execute(shared, a, &gpus);
                ran += 1;
            }
            Err(ClientError::Status { status: 404, .. }) => {
                // The server forgot us (its data was reset): register again, same id. The
                // report is sent again with the next claim; a repeated report is harmless.
                if let Ok(r) = shared.client.register(&shared.register) {
                    *shared.worker_id.write().unwrap_or_else(|p| p.into_inner()) = r.worker_id;
                }
                std::thread::sleep(backoff);
            }
            Err(e) => {
                if !e.is_unreachable() {
                    say(&format!("claim refused: {e}"));
                    // Do not hold a report hostage to a claim the server refuses.
                    flush(&mut pending);
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

fn give_back(shared: &Shared, a: &Assignment, reason: &str) {
    let _ = shared.client.requeue(
        a.job.id,
        &RequeueRequest {
            attempt: a.attempt,
            lease: a.lease,
            reason: Some(reason.into()),
            preempted: false,
        },
    );
}

struct ActiveGuard<'a>(&'a Shared, JobId);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.1);
        self.0.active.fetch_sub(1, Ordering::SeqCst);
        *self
            .0
            .last_activity
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
}

/// Runs one claimed job to its end; returns its report (None when the job was given back or its
/// lease was lost).
fn execute(shared: &Arc<Shared>, a: Assignment, gpus: &[u32]) -> Option<Finished> {
    let job = &a.job;
    let signals = Arc::new(Signals::default());
    shared.active.fetch_add(1, Ordering::SeqCst);
    shared
        .running
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(
            job.id,
            RunningJob {
                attempt: a.attempt,
                lease: a.lease,
                signals: signals.clone(),
            },
        );
    let _guard = ActiveGuard(shared, job.id);
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
    // Watch for a second signal: give the job back and stop it.
    let abandon = {
        let signals = signals.clone();
        let shared2 = shared.clone();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d = done.clone();
        std::thread::spawn(move || {
            while !d.load(Ordering::SeqCst) {
                if shared2.shutdown.level() >= 2 || shared2.abandon_all.load(Ordering::SeqCst) {
                    signals.stale.store(true, Ordering::SeqCst);
                    return true;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            false
        });
        done
    };

    let mut complete = CompleteRequest {
        attempt: a.attempt,
        lease: a.lease,
        outcome: Outcome::Succeeded,
        exit_code: None,
        duration_ms: 0,
        error: None,
        result: None,
    };
    if job.spec.kind.is_builtin() {
        match builtin::run(
            job.spec.kind,
            job.spec.input.as_deref().unwrap_or(""),
            &signals,
            timeout,
        ) {
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
    abandon.store(true, Ordering::SeqCst);
    complete.duration_ms = started.elapsed().as_millis() as u64;

    if signals.stale.load(Ordering::SeqCst) {
        if shared.shutdown.level() >= 2 || shared.abandon_all.load(Ordering::SeqCst) {
            give_back(shared, &a, "the worker was stopped or is updating");
            say(&format!("job {} given back to the queue", job.id));
        } else {
            say(&format!(
                "job {} attempt {} dropped: its lease is no longer ours",
                job.id, a.attempt
            ));
        }
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

/// Sends the completion, retrying through outages until the server takes it (or refuses it).
fn report(shared: &Shared, job: JobId, complete: &CompleteRequest) {
    let mut backoff = Duration::from_millis(250);
    loop {
        match shared.client.complete(job, complete) {
            Ok(_) => return,
            Err(e) if e.is_unreachable() => {
                if shared.shutdown.level() >= 2 {
                    return;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                say(&format!("job {job}: completion refused: {e}"));
                return;
            }
        }
    }
}

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
    let (program, args, cwd) = match job.spec.kind {
        JobKind::Experiment => {
            let python = shared
                .python
                .clone()
                .ok_or("this worker has no Python for experiments")?;
            let mut args = vec![
                "run_all.py".to_string(),
                "--method".into(),
                job.spec.method.clone().unwrap_or_default(),
                "--env".into(),
                job.spec
                    .env
                    .clone()
                    .unwrap_or_else(|| crate::model::DEFAULT_ENV.into()),
                "--max-evals".into(),
                job.spec
                    .max_evals
                    .unwrap_or(crate::model::DEFAULT_MAX_EVALS)
                    .to_string(),
            ];
            if let Some(seed) = job.spec.seed {
                args.push("--seed".into());
                args.push(seed.to_string());
            }
            (python, args, cfg.experiments_dir.clone())
        }
        JobKind::Command => {
            if !cfg.allow_commands {
                return Err(
                    "this worker does not run command jobs (start it with --allow-commands)".into(),
                );
            }
            let mut argv = job.spec.argv.clone();
            let program = PathBuf::from(argv.remove(0));
            (program, argv, work.clone())
        }
        k => return Err(format!("{k} is not a process kind")),
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
    let spec = runner::Spec {
        program,
        args,
        cwd,
        env,
        timeout,
        grace: cfg.kill_grace,
    };
    let (ended, result) = runner::run(&spec, streamer.sender(), signals, &say);
    // The files the job left, checked while its log is still open: a file that cannot be
    // uploaded says why in the job's own log, where its owner looks.
    let mut files = Vec::new();
    for (name, path, size) in runner::output_files(&out_dir) {
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
    streamer.finish();
    if signals.stale.load(Ordering::SeqCst) {
        let _ = std::fs::remove_dir_all(&work);
        return Ok(());
    }
    complete.result = result.result;
    let tail = result.stderr_tail.join("\n");
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
        runner::Ended::Stale => {}
        runner::Ended::SpawnFailed(e) => {
            complete.outcome = Outcome::Failed;
            complete.error = Some(e);
        }
    }
    // Upload the files the job left, whatever its outcome (a failed run's files help debug it).
    for (name, path) in files {
        let mut backoff = Duration::from_millis(250);
        loop {
            match shared
                .client
                .upload_file(job.id, a.attempt, a.lease, &name, &path)
            {
                Ok(_) => break,
                Err(e) if e.is_unreachable() && shared.shutdown.level() < 2 => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    say(&format!("job {}: upload of {name} failed: {e}", job.id));
                    break;
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpus_split_over_slots() {
        let g = |i| Gpu {
            index: i,
            ..Gpu::default()
        };
        assert_eq!(split_gpus(&[g(0), g(1)], 2), vec![vec![0], vec![1]]);
        assert_eq!(split_gpus(&[g(0), g(1)], 1), vec![vec![0, 1]]);
        assert_eq!(split_gpus(&[], 2), vec![Vec::<u32>::new(), vec![]]);
    }

    #[test]
    fn host_names_become_worker_names() {
        assert_eq!(sanitize_name("lab box #3"), "lab-box--3");
        assert_eq!(sanitize_name("-.x"), "x");
    }
}
