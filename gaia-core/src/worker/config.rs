//! How a worker is set up ([`WorkerConfig`]), how it is asked to stop ([`Shutdown`]), and how
//! it speaks on the console ([`stamp`]). Nothing here talks to the server.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use super::hardware::GpuChoice;
use super::stream;
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

/// A timestamp for console lines.
pub fn stamp() -> String {
    let ms = crate::model::now_ms();
    let s = (ms / 1000) % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
}

/// One console line of the worker, on stderr.
pub(super) fn say(msg: &str) {
    eprintln!("{} gaia work: {msg}", stamp());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_become_worker_names() {
        assert_eq!(sanitize_name("lab box #3"), "lab-box--3");
        assert_eq!(sanitize_name("-.x"), "x");
    }
}
