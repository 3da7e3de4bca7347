//! How a worker is set up ([`WorkerConfig`]), how it is asked to stop ([`Shutdown`]), and how
//! it speaks on the console ([`stamp`]). Nothing here talks to the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, Ordering};
use std::time::Duration;

use super::hardware::GpuChoice;
use super::stream;
use crate::cluster::allocation::{Allocation, EndPolicy};
use crate::model::JobKind;

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
    /// Exit 0 once this many jobs have been claimed and have ended (a pilot job's quota).
    pub max_jobs: Option<u64>,
    /// Exit 0 once this study is done (every job of it ended, none to come): the server says
    /// so in the answer to a claim that found no job. A study not submitted yet is not done.
    pub exit_when_study_done: Option<String>,
    /// When this worker's allocation ends (`--deadline`, Slurm's time limit); see
    /// [`crate::cluster::allocation`].
    pub allocation: Allocation,
    /// What the worker does as that end nears: stop claiming, then give jobs back.
    pub end_policy: EndPolicy,
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
    /// The most any job may use (`--max-limit`): a job's own limits are bounded by it, and a
    /// job without one gets it ([`crate::model::Limits::within`]).
    pub max_limits: crate::model::Limits,
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
            max_jobs: None,
            exit_when_study_done: None,
            allocation: Allocation::Open,
            end_policy: EndPolicy::for_kill_grace(Duration::from_secs(10)),
            job_timeout: None,
            kill_grace: Duration::from_secs(10),
            claim_wait: Duration::from_secs(30),
            max_upload: 100 << 20,
            postcard: true,
            memory_rows: stream::MEMORY_ROWS,
            auto_update: false,
            update_now: false,
            trust_key: None,
            max_limits: crate::model::Limits::default(),
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
/// gives running jobs back to the queue and exits at once; [`Shutdown::preempt`] is level 2
/// with the give-backs marked `preempted` (a scheduler took the allocation away).
///
/// Whatever the level, a job given back has its output sent first: the rows and log lines it
/// printed are kept under its attempt.
#[derive(Default)]
pub struct Shutdown {
    level: AtomicU8,
    preempted: AtomicBool,
    /// Why it was preempted, for the jobs' attempts.
    reason: std::sync::Mutex<Option<String>>,
    /// When the level last rose.
    raised_at: std::sync::Mutex<Option<std::time::Instant>>,
    /// Notified (under `raised_at`'s lock) when the level rises.
    rose: std::sync::Condvar,
}

/// What SIGTERM means to a worker (SIGINT always drains; SIGUSR1 always preempts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnSigterm {
    /// Finish running jobs, then exit (a second signal gives them back): right under systemd
    /// or a terminal, where nothing follows the SIGTERM.
    Drain,
    /// Give running jobs back as preempted at once: right inside a batch scheduler or
    /// Kubernetes, whose SIGTERM is followed by SIGKILL seconds later.
    Preempt,
}

impl OnSigterm {
    /// Preempt inside a scheduler that follows SIGTERM with SIGKILL (Slurm, Kubernetes, PBS,
    /// LSF, HTCondor: see [`crate::cluster::allocation::scheduler`]), drain elsewhere; with
    /// the scheduler's name when one was found.
    pub fn detect() -> (OnSigterm, Option<&'static str>) {
        match crate::cluster::allocation::scheduler(&crate::cluster::allocation::process_env) {
            Some(s) => (OnSigterm::Preempt, Some(s)),
            None => (OnSigterm::Drain, None),
        }
    }
}

/// Signals received, by kind, counted by the handler (async-signal-safe: one atomic add).
static INTERRUPTS: AtomicU8 = AtomicU8::new(0);
static TERMS: AtomicU8 = AtomicU8::new(0);
static USR1S: AtomicU8 = AtomicU8::new(0);

/// The write end of the pipe through which the handler wakes the signal thread (-1: none, the
/// thread then looks every 20 ms).
static WAKE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let counter = match sig {
        libc::SIGUSR1 => &USR1S,
        libc::SIGTERM => &TERMS,
        _ => &INTERRUPTS,
    };
    counter.fetch_add(1, Ordering::SeqCst);
    let fd = WAKE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write is async-signal-safe; the pipe is non-blocking (a full pipe already
        // holds a wake-up), and errno is put back for the interrupted code.
        unsafe {
            let errno = errno_location();
            let saved = *errno;
            libc::write(fd, [1u8].as_ptr().cast(), 1);
            *errno = saved;
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
unsafe fn errno_location() -> *mut libc::c_int {
    // SAFETY: the calling thread's errno.
    unsafe { libc::__errno_location() }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
unsafe fn errno_location() -> *mut libc::c_int {
    // SAFETY: the calling thread's errno.
    unsafe { libc::__error() }
}

/// A pipe for the signal handler to wake the signal thread through: its read end, with the
/// write end in [`WAKE`]. None if it cannot be made (the thread then polls).
fn wake_pipe() -> Option<libc::c_int> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors; every result is checked. The descriptors
    // live as long as the process (the handler may run at any time).
    unsafe {
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            return None;
        }
        for fd in fds {
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        }
        let flags = libc::fcntl(fds[1], libc::F_GETFL);
        libc::fcntl(fds[1], libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
    WAKE.store(fds[1], Ordering::SeqCst);
    Some(fds[0])
}

impl Shutdown {
    /// A fresh, unsignalled shutdown handle.
    pub fn new() -> Arc<Shutdown> {
        Arc::new(Shutdown::default())
    }

    /// Stop claiming; finish running jobs.
    pub fn drain(&self) {
        self.raise(1);
    }

    /// Give running jobs back and exit now.
    pub fn now(&self) {
        self.raise(2);
    }

    fn raise(&self, to: u8) {
        if self.level.fetch_max(to, Ordering::SeqCst) < to {
            *self.raised_at.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(std::time::Instant::now());
            self.rose.notify_all();
        }
    }

    /// Waits up to `timeout` for the level to rise above `seen`; returns at once if it already
    /// has.
    pub(super) fn wait_for_rise(&self, seen: u8, timeout: Duration) {
        let guard = self.raised_at.lock().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock `raise` takes before it notifies: no rise is missed.
        if self.level() != seen {
            return;
        }
        let _ = self.rose.wait_timeout(guard, timeout);
    }

    /// How long ago the worker was last told to stop (drain or now); None while it runs.
    pub fn stopping_for(&self) -> Option<Duration> {
        self.raised_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|t| t.elapsed())
    }

    /// The allocation is being taken away: stop every experiment, send its output, give its
    /// job back as preempted (queued again at once, no attempt spent), exit.
    pub fn preempt(&self) {
        self.preempt_because("its worker was preempted");
    }

    /// [`Shutdown::preempt`], saying why (kept in each job's attempt: `preempted: <why>`). The
    /// first reason given stays.
    pub fn preempt_because(&self, why: &str) {
        {
            let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
            if r.is_none() {
                *r = Some(why.to_string());
            }
        }
        self.preempted.store(true, Ordering::SeqCst);
        self.now();
    }

    /// Whether [`Shutdown::preempt`] was called.
    pub fn preempted(&self) -> bool {
        self.preempted.load(Ordering::SeqCst)
    }

    /// Why the worker was preempted, if it was.
    pub fn preempt_reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// 0 running, 1 draining, 2 stopping now.
    pub fn level(&self) -> u8 {
        self.level.load(Ordering::SeqCst)
    }

    /// SIGINT/SIGTERM: the first drains, the second stops now; SIGUSR1 preempts. Inside a
    /// scheduler (see [`OnSigterm::detect`]) SIGTERM preempts too.
    pub fn install_signal_handlers(self: &Arc<Self>) {
        self.install_signal_handlers_for(OnSigterm::detect().0);
    }

    /// SIGINT: the first drains, the second stops now. SIGUSR1: preempt. SIGTERM: as `term`
    /// says (a second one, after a drain, stops now).
    pub fn install_signal_handlers_for(self: &Arc<Self>, term: OnSigterm) {
        // A second install (tests) keeps the first pipe.
        let wake = if WAKE.load(Ordering::SeqCst) < 0 {
            wake_pipe()
        } else {
            None
        };
        #[cfg(unix)]
        // SAFETY: the handler only adds to an atomic and writes a byte to a pipe, both
        // async-signal-safe.
        unsafe {
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
                libc::signal(sig, on_signal as *const () as libc::sighandler_t);
            }
        }
        let me = self.clone();
        std::thread::Builder::new()
            .name("gaia-signals".into())
            .spawn(move || {
                let (mut ints, mut terms, mut usr1s) = (0u8, 0u8, 0u8);
                loop {
                    let (i, t, u) = (
                        INTERRUPTS.load(Ordering::SeqCst),
                        TERMS.load(Ordering::SeqCst),
                        USR1S.load(Ordering::SeqCst),
                    );
                    if u != usr1s {
                        usr1s = u;
                        if !me.preempted() {
                            say("SIGUSR1: preempted: stopping every job, sending its output and giving it back to the queue");
                        }
                        me.preempt_because("SIGUSR1 from the scheduler");
                    }
                    if t != terms && term == OnSigterm::Preempt {
                        terms = t;
                        if !me.preempted() {
                            say("SIGTERM (inside a scheduler: taken as preemption): stopping every job, sending its output and giving it back to the queue");
                        }
                        me.preempt_because("SIGTERM from the scheduler");
                    }
                    let stops = i.wrapping_add(t);
                    let seen = ints.wrapping_add(terms);
                    if stops != seen {
                        ints = i;
                        terms = t;
                        if me.level() == 0 {
                            say("stopping: no new jobs; running jobs finish (signal again to requeue them and exit now)");
                            me.drain();
                        } else if me.level() == 1 {
                            say("stopping now: giving running jobs back to the queue");
                            me.now();
                        }
                    }
                    match wake {
                        // Blocks until a handler writes (or a signal interrupts the read).
                        // SAFETY: reading into a local buffer from our own pipe.
                        Some(fd) => unsafe {
                            let mut buf = [0u8; 64];
                            libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
                        },
                        None => std::thread::sleep(Duration::from_millis(20)),
                    }
                }
            })
            .expect("spawn the signal thread");
    }
}

/// A timestamp for console lines.
pub fn stamp() -> String {
    let ms = crate::model::now_ms();
    let s = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// One console line of the worker, on stderr.
pub(super) fn say(msg: &str) {
    // One write per line: stderr is unbuffered, and `eprintln!` writes each piece of its format
    // on its own (four writes a line, two lines a job). A format of one argument is one write,
    // and still goes through the test harness's capture.
    let line = format!("{} gaia work: {msg}\n", stamp());
    eprint!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preempting_stops_now_and_keeps_the_first_reason() {
        let s = Shutdown::new();
        assert_eq!(
            (s.level(), s.preempted(), s.stopping_for()),
            (0, false, None)
        );
        s.drain();
        assert_eq!(s.level(), 1);
        assert!(s.stopping_for().is_some());
        assert_eq!(s.preempt_reason(), None);
        s.preempt_because("SIGUSR1 from the scheduler");
        s.preempt_because("SIGTERM from the scheduler");
        assert_eq!(s.level(), 2);
        assert!(s.preempted());
        assert_eq!(
            s.preempt_reason().as_deref(),
            Some("SIGUSR1 from the scheduler")
        );
        // A plain stop now is not a preemption.
        let t = Shutdown::new();
        t.now();
        assert!(!t.preempted());
    }

    #[test]
    fn host_names_become_worker_names() {
        assert_eq!(sanitize_name("lab box #3"), "lab-box--3");
        assert_eq!(sanitize_name("-.x"), "x");
    }
}
