//! What the heartbeat thread and the slot threads share: the one place a worker's mutable
//! state lives (its id, the running jobs and their stop signals, a pending update).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use super::config::{Shutdown, WorkerConfig};
use super::reaper::Reaper;
use super::stream::Signals;
use crate::client::Client;
use crate::model::JobId;
use crate::protocol::RegisterRequest;

/// A job a slot is running, as the heartbeat reports it and the server's answer reaches it.
pub(super) struct RunningJob {
    pub attempt: u32,
    pub lease: u64,
    pub signals: Arc<Signals>,
}

/// The worker's shared state, behind one `Arc`.
pub(super) struct Shared {
    pub cfg: WorkerConfig,
    pub client: Client,
    /// Assigned by the server; replaced if the server forgets this worker and registers it anew.
    pub worker_id: RwLock<String>,
    /// What was registered (with the id), sent again when the server has forgotten us.
    pub register: RegisterRequest,
    pub running: Mutex<HashMap<JobId, RunningJob>>,
    /// Jobs being executed (built-in ones included).
    pub active: AtomicUsize,
    /// When the last job ended (for `exit_when_idle`).
    pub last_activity: Mutex<Instant>,
    pub shutdown: Arc<Shutdown>,
    /// The Python experiments run with (None: this worker runs no experiments).
    pub python: Option<PathBuf>,
    pub latest_version: RwLock<Option<String>>,
    /// The heartbeat period the server asked for.
    pub heartbeat: Duration,
    /// The release to move to once running jobs are done.
    pub update_target: Mutex<Option<String>>,
    /// Releases this worker refused (not tried again until another is promoted).
    pub refused: Mutex<HashSet<String>>,
    /// Give every running job back to the queue (second signal, or --update-now).
    pub abandon_all: AtomicBool,
    /// Kills the jobs' process groups if this process dies (None where it cannot run).
    pub reaper: Mutex<Option<Reaper>>,
    /// Removes finished jobs' folders in the background.
    pub tidy: super::tidy::Tidy,
    /// When the allocation ends, in ms since the epoch (0: no known end).
    pub alloc_end: AtomicU64,
    /// Claims made or under way, counted against `--max-jobs`.
    pub claims: AtomicU64,
    /// What the server said at the last heartbeat: paused, draining or quarantined (slots
    /// claim nothing while it is set).
    pub hold: RwLock<Option<crate::model::Hold>>,
}

impl Shared {
    /// The worker id the server knows us by.
    pub fn id(&self) -> String {
        self.worker_id
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The server forgot this worker (its data was reset): register again under the same id.
    pub fn register_again(&self) {
        if let Ok(r) = self.client.register(&self.register) {
            *self.worker_id.write().unwrap_or_else(|p| p.into_inner()) = r.worker_id;
        }
    }

    /// Whether the server holds this worker from claiming (paused, draining, quarantined).
    pub fn held(&self) -> bool {
        self.hold
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Whether a release waits to be installed (slots stop claiming for it).
    pub fn update_pending(&self) -> bool {
        lock(&self.update_target).is_some()
    }

    /// Whether running jobs are to be given back now: a stop now (a second signal,
    /// preemption) or `--update-now`.
    pub fn give_back_asked(&self) -> bool {
        self.shutdown.level() >= 2 || self.abandon_all.load(Ordering::SeqCst)
    }

    /// When the allocation ends, if it is known.
    pub fn allocation_end(&self) -> Option<crate::model::Millis> {
        match self.alloc_end.load(Ordering::SeqCst) {
            0 => None,
            end => Some(end),
        }
    }

    /// Takes one claim of `--max-jobs` (true), or says that all are taken (false). A claim
    /// that brings no job is handed back with [`Shared::unreserve_claim`].
    pub fn reserve_claim(&self) -> bool {
        let Some(max) = self.cfg.max_jobs else {
            return true;
        };
        self.claims
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Hands back a claim that brought no job.
    pub fn unreserve_claim(&self) {
        if self.cfg.max_jobs.is_some() {
            let _ = self
                .claims
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        }
    }
}

/// Locks a mutex, taking the data of a poisoned one: a panicked thread leaves the worker's
/// bookkeeping usable (each update to it is a single assignment or insert).
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
