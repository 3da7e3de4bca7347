//! The job lifecycle over the store: submit, claim (long poll), lease, heartbeat, expire,
//! cancel, complete; and the worker registry that claims and heartbeats keep alive.
//!
//! Durable state (jobs, their attempt and lease, workers' registrations) lives in the store and
//! every change of it commits in one transaction. Liveness state (lease deadlines, last
//! heartbeat, utilisation, long-poll waiters) lives in memory: after a restart every running
//! job's lease gets a fresh timeout, which is what a worker that is still alive needs anyway.
//!
//! Invariants:
//! - a job is `running` iff it has a lease (`job.lease` durable, a deadline in memory);
//! - every worker call about a job names (attempt, lease) and is refused unless both are the
//!   job's current ones — so a worker back from a partition cannot write into a newer attempt;
//! - attempt numbers only grow; rows are keyed by attempt, so attempts never mix.
//!
//! Nothing here knows HTTP or processes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, broadcast, oneshot};

use crate::cluster::fit;
use crate::error::{Error, RequestError, StoreError};
use crate::model::{
    Actor, Attempt, Capabilities, Event, Job, JobId, JobSpec, JobState, Level, LogLine, Progress,
    Row, Spec, StudyRecord, Worker, WorkerState, now_ms, validate_name,
};
use crate::protocol::{
    Assignment, CompleteRequest, HeartbeatRequest, HeartbeatResponse, LogBatch, Outcome,
    RegisterRequest, RequeueRequest, RowAck, RowBatch, StudySubmit, StudySubmitted,
};
use crate::store::logs::{MAX_LINES_PER_JOB, clip_line};
use crate::store::{Store, Tx};
use crate::study;

mod holds;
mod instruments;

pub use instruments::QueueMetrics;

/// Timing of leases and claims.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// A lease not renewed for this long expires (default 30 s).
    pub lease_timeout: Duration,
    /// How often workers are told to heartbeat (default 5 s).
    pub heartbeat_interval: Duration,
    /// Longest long-poll wait a claim may ask for (default 60 s).
    pub max_claim_wait: Duration,
    /// Most workers in the registry (default 10,000; `gaia serve --max-workers`). The registry
    /// is in memory and answers every heartbeat; the cap bounds what a runaway registering
    /// loop can grow it to. A new worker beyond it takes the place of the one offline
    /// longest; if every one is online, it is refused.
    pub max_workers: usize,
    /// A worker offline this long is forgotten (default 7 days: a cloud machine gone for good).
    pub forget_offline_after: Duration,
    /// A job its workers gave back (shut down, preempted) more often than this ends `lost`
    /// (default 20): give-backs spend no attempt, so without a bound a worker that keeps
    /// preempting one job would keep it from ever ending.
    pub max_give_backs: u32,
    /// Quarantine a worker once this many attempts in a row failed at setup (see
    /// [`crate::triage`]); 0 never does (default 3).
    pub quarantine_after: u32,
    /// Fair share (default on): a free slot takes the next job of the user furthest below their
    /// share of recent usage (see [`crate::fairshare`]). Off: highest priority first, FIFO,
    /// whoever submitted it.
    pub fair_share: bool,
    /// Half-life of recent usage for fair share (default one day).
    pub usage_half_life: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            lease_timeout: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(5),
            max_claim_wait: Duration::from_secs(60),
            max_workers: 10_000,
            forget_offline_after: Duration::from_secs(7 * 24 * 3600),
            max_give_backs: 20,
            quarantine_after: 3,
            fair_share: true,
            usage_half_life: crate::fairshare::DEFAULT_HALF_LIFE,
        }
    }
}

/// Something that happened, for live subscribers (the dashboard's event stream).
#[derive(Clone, Debug)]
pub enum Live {
    /// A stored activity-log event.
    Event(Event),
    /// Rows just stored for a job.
    Rows {
        job: JobId,
        attempt: u32,
        rows: Arc<Vec<Row>>,
    },
    /// Log lines just stored for a job.
    Logs {
        job: JobId,
        lines: Arc<Vec<LogLine>>,
    },
    /// A worker's heartbeat (utilisation, running jobs).
    Worker(Box<Worker>),
    /// A job changed (progress, state).
    Job(Box<Job>),
}

struct Waiter {
    id: u64,
    caps: Capabilities,
    notify: Arc<Notify>,
    /// The job it was woken for, until it claims or waits again.
    woken_for: Option<(JobId, Spec)>,
    worker_id: String,
    worker_name: String,
    /// Set once the waiter's own look at the queue found nothing (inside that write): from
    /// then on a submit may hand it a job directly, in the submit's own transaction.
    parked: bool,
    /// Where such a hand-off is delivered; taken (with the waiter out of the list) by it.
    handoff: Option<oneshot::Sender<HandOff>>,
}

/// A job handed to a parked claim by a submit, delivered once the submit's write is visible
/// (`None`: that write was aborted, nothing was claimed).
type HandOff = Option<(Job, u64)>;

/// What a claim's own look at the queue found.
enum Try {
    Claimed(Box<Assignment>),
    Nothing,
    /// A submit ordered before this look has already handed the waiter a job.
    Handed,
}

/// Wakes the first waiter (the one waiting longest) that `spec` fits and nothing has woken
/// yet, other than `not`.
fn wake_one(waiters: &mut [Waiter], job: JobId, spec: &Spec, not: Option<u64>) {
    if let Some(w) = waiters
        .iter_mut()
        .find(|w| w.woken_for.is_none() && Some(w.id) != not && w.caps.fits(spec))
    {
        w.woken_for = Some((job, spec.clone()));
        w.notify.notify_one();
    }
}

struct LeaseState {
    lease: u64,
    attempt: u32,
    worker: String,
    deadline: Instant,
}

struct WorkerLive {
    worker: Worker,
    seen: Instant,
}

#[derive(Default)]
struct Inner {
    /// When the reaper last ran: a longer gap than it allows means the server could not run
    /// (stopped, paused, swapped out), and that time is not counted against anyone.
    last_reap: Option<Instant>,
    waiters: Vec<Waiter>,
    leases: HashMap<JobId, LeaseState>,
    workers: HashMap<String, WorkerLive>,
    /// Running jobs with a cancel request, until their worker reports.
    cancels: HashMap<JobId, ()>,
    /// Per worker id: how many of its attempts in a row failed at setup (`holds.rs`).
    setup_failures: HashMap<String, u32>,
}

/// Telemetry not yet in the store: the open buckets and the closed points waiting for the
/// next batch write ([`Queue::flush_telemetry`]).
#[derive(Default)]
struct TelemetryBuffer {
    agg: crate::telemetry::Aggregator,
    pending: Vec<crate::telemetry::Closed>,
}

/// Closed telemetry points held at most while the store cannot take them (then the oldest go).
const MAX_PENDING_POINTS: usize = 200_000;

/// The queue and worker registry. Share it behind an `Arc`.
pub struct Queue {
    store: Store,
    config: QueueConfig,
    /// Shared with write operations, which record leases and cancels in memory as part of the
    /// transaction, so a caller that goes away mid-write cannot leave them unrecorded.
    inner: Arc<Mutex<Inner>>,
    next_waiter: AtomicU64,
    live: broadcast::Sender<Live>,
    latest_release: RwLock<Option<String>>,
    metrics: QueueMetrics,
    telemetry: Mutex<TelemetryBuffer>,
    /// Some user has a running limit: a job that ends may let a waiting claimer take one of
    /// theirs, so ends wake the waiters (see [`Queue::set_running_limits`]).
    running_limits: std::sync::atomic::AtomicBool,
}

/// The reaper runs at least every second; a gap between two of its runs longer than this means
/// the server was not running (see `Queue::stalled`).
pub const STALL_GAP: Duration = Duration::from_secs(2);
/// Longest error text kept on a job.
const MAX_ERROR_BYTES: usize = 16 * 1024;
/// Largest result value kept on a job (JSON bytes).
const MAX_RESULT_BYTES: usize = 256 * 1024;
/// Most rows in one batch.
pub const MAX_ROWS_PER_BATCH: usize = 20_000;
/// Most log lines in one batch.
pub const MAX_LINES_PER_BATCH: usize = 5_000;
/// Most result files one job keeps.
pub const MAX_FILES: usize = 1000;
/// Row and log-line numbers of one attempt stay below this (2^48: a row a microsecond for
/// nine years), so no arithmetic on them can overflow.
pub const MAX_SEQ: u64 = 1 << 48;

fn invalid(m: impl Into<String>) -> Error {
    Error::Request(RequestError::Invalid(m.into()))
}

fn not_found(m: impl Into<String>) -> Error {
    Error::Request(RequestError::NotFound(m.into()))
}

fn stale(job: JobId, attempt: u32) -> Error {
    Error::Request(RequestError::StaleLease(format!(
        "job {job} attempt {attempt}: this lease is no longer current (the job was requeued, finished or given to another worker)"
    )))
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &s[start..])
}

impl Queue {
    /// A queue over `store`, with every running job's lease restarted.
    pub fn new(store: Store, config: QueueConfig) -> Result<Arc<Queue>, Error> {
        let (live, _) = broadcast::channel(4096);
        let mut inner = Inner::default();
        store.set_usage_half_life(config.usage_half_life)?;
        let read = store.read()?;
        let running_limits = read.users()?.iter().any(|u| u.max_running.is_some());
        let deadline = Instant::now() + config.lease_timeout;
        for job in read.running_jobs()? {
            if let (Some(lease), Some(worker)) = (job.lease, job.worker.clone()) {
                inner.leases.insert(
                    job.id,
                    LeaseState {
                        lease,
                        attempt: job.attempt,
                        worker,
                        deadline,
                    },
                );
            }
            if job.cancel_requested {
                inner.cancels.insert(job.id, ());
            }
        }
        let now = Instant::now();
        for mut w in read.workers()? {
            // Every worker starts as offline until it heartbeats; it has a lease timeout to do so.
            if w.state != WorkerState::Offline {
                w.last_seen = now_ms();
            }
            inner.workers.insert(
                w.id.clone(),
                WorkerLive {
                    worker: w,
                    seen: now,
                },
            );
        }
        Ok(Arc::new(Queue {
            store,
            config,
            inner: Arc::new(Mutex::new(inner)),
            next_waiter: AtomicU64::new(1),
            live,
            latest_release: RwLock::new(None),
            metrics: QueueMetrics::default(),
            telemetry: Mutex::new(TelemetryBuffer::default()),
            running_limits: running_limits.into(),
        }))
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The lease and heartbeat timing.
    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// What the queue counts (claims, completions, rows, ...), for `/metrics`.
    pub fn metrics(&self) -> &QueueMetrics {
        &self.metrics
    }

    /// Subscribes to live events.
    pub fn subscribe(&self) -> broadcast::Receiver<Live> {
        self.live.subscribe()
    }

    fn publish(&self, l: Live) {
        let _ = self.live.send(l);
    }

    /// Broadcasts an event stored by someone else (releases, studies).
    pub fn publish_event(&self, e: Event) {
        self.publish(Live::Event(e));
    }

    /// Records a worker's update report: an event, and the refusal on the worker's card.
    pub async fn update_report(
        &self,
        worker_id: &str,
        r: crate::release::UpdateReport,
    ) -> Result<(), Error> {
        let name = {
            let mut inner = self.lock();
            let Some(w) = inner.workers.get_mut(worker_id) else {
                return Err(not_found(format!("worker {worker_id}")));
            };
            w.worker.update_error =
                (!r.ok).then(|| format!("{}: {}", r.tag, clip(&r.message, 1000)));
            w.worker.name.clone()
        };
        let id = worker_id.to_string();
        let (kind, msg) = if r.ok {
            (
                "worker_updated",
                format!("worker {name} moved to {}", r.tag),
            )
        } else {
            (
                "update_refused",
                format!(
                    "worker {name} refused release {}: {}",
                    r.tag,
                    clip(&r.message, 500)
                ),
            )
        };
        let ev = self
            .store
            .write(move |tx| Ok(tx.event(kind, None, Some(&id), msg)?))
            .await?;
        self.publish(Live::Event(ev));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the release version workers are told to run (None: no promoted release).
    pub fn set_latest_release(&self, version: Option<String>) {
        *self
            .latest_release
            .write()
            .unwrap_or_else(|p| p.into_inner()) = version;
    }

    /// The promoted release version, if any.
    pub fn latest_release(&self) -> Option<String> {
        self.latest_release
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    // ---- submit -------------------------------------------------------------------------

    /// Submits one job as the admin (see [`Queue::submit_many_as`]); returns its id.
    pub async fn submit(&self, spec: JobSpec) -> Result<JobId, Error> {
        Ok(self.submit_many_as(vec![spec], &Actor::admin()).await?[0])
    }

    /// Submits several jobs as the admin (see [`Queue::submit_many_as`]).
    pub async fn submit_many(&self, specs: Vec<JobSpec>) -> Result<Vec<JobId>, Error> {
        self.submit_many_as(specs, &Actor::admin()).await
    }

    /// Submits a study as the admin (see [`Queue::submit_study_as`]).
    pub async fn submit_study(&self, req: StudySubmit) -> Result<StudySubmitted, Error> {
        self.submit_study_as(req, &Actor::admin()).await
    }

    /// Submits several jobs in one transaction (all or none), owned by `by`'s user; returns
    /// their ids in order. Refused whole (429) if it would take the user past their queued
    /// limit.
    ///
    /// A claim already waiting for a job the new ones fit gets its job in the same transaction,
    /// and its answer leaves as soon as that transaction is visible, while its fsync is under
    /// way; the submit itself is answered only once it is durable (see [`Tx::on_visible`]).
    pub async fn submit_many_as(
        &self,
        specs: Vec<JobSpec>,
        by: &Actor,
    ) -> Result<Vec<JobId>, Error> {
        let specs = normalize_specs(specs)?;
        let owner = by.user.clone();
        let fair = self.fair_share();
        let (inner, live, timeout) = (
            self.inner.clone(),
            self.live.clone(),
            self.config.lease_timeout,
        );
        let (jobs, events, handed) = self
            .store
            .write_dispatch(move |tx| {
                let (jobs, events) = insert_jobs(tx, specs, &owner)?;
                let (events, handed) = hand_off(tx, &inner, &live, &jobs, events, timeout, fair)?;
                Ok((jobs, events, handed))
            })
            .await?;
        // Events of a hand-off went out with it, before its `job_started` (`events` is then
        // empty); a job handed to a claim wakes no other.
        for e in events {
            self.publish(Live::Event(e));
        }
        self.wake(jobs.iter().filter(|j| !handed.contains(&j.id)));
        Ok(jobs.iter().map(|j| j.id).collect())
    }

    /// Submits a study: expands its definition into jobs, then stores them with the study's
    /// record in one transaction (all or nothing), owned by `by`'s user. Refuses, with nothing
    /// written, a definition the study already holds unless `again` is set, a study of another
    /// user unless `by` is an admin (403), and a submission over the user's queued limit (429).
    /// A dry run checks and counts only.
    pub async fn submit_study_as(
        &self,
        req: StudySubmit,
        by: &Actor,
    ) -> Result<StudySubmitted, Error> {
        let def = study::Definition::of(&req)?;
        // A sampler never draws a configuration the study already has.
        let taken = if def.search.is_some() {
            study::configs_taken(&self.store.read()?.study_jobs(&def.name)?, &def)
        } else {
            Default::default()
        };
        let specs = normalize_specs(def.expand_avoiding(&taken)?)?;
        let planned = specs.len() as u64;
        if req.dry_run {
            let prev = self.store.read()?.study(&def.name)?;
            refuse_others_study(prev.as_ref(), by)?;
            study::refuse_repeat(prev.as_ref(), &def, req.again)?;
            return Ok(StudySubmitted {
                study: def.name,
                jobs: Vec::new(),
                total_jobs: prev.as_ref().map_or(0, StudyRecord::job_count) + planned,
                extended: prev.is_some(),
                planned,
                dry_run: true,
            });
        }
        let answer_specs = specs.clone();
        let again = req.again;
        let by = by.clone();
        let (def, jobs, events, total, extended) = self
            .store
            .write(move |tx| {
                let prev = tx.study(&def.name)?;
                refuse_others_study(prev.as_ref(), &by)?;
                study::refuse_repeat(prev.as_ref(), &def, again)?;
                let extended = prev.is_some();
                let (jobs, events) = insert_jobs(tx, specs, &by.user)?;
                let ids = jobs.iter().map(|j| j.id).collect();
                let mut record = study::record_with(prev, &def, ids, now_ms());
                if !extended {
                    record.owner = by.user.clone();
                }
                tx.save_study(&record)?;
                if def.search.is_some() || def.early_stop.is_some() {
                    let submission = record.submissions.len() as u32 - 1;
                    let seeds = def.sweep.seeds.len().max(1) * def.sweep.methods.len();
                    let proposed = (jobs.len() / seeds.max(1)) as u64;
                    crate::adaptive::register(tx, &def, submission, &jobs, proposed)?;
                }
                Ok((def, jobs, events, record.job_count(), extended))
            })
            .await?;
        self.announce(&jobs, events);
        let answer = answer_specs.into_iter().map(|mut s| {
            s.study = None;
            JobSpec::from(s)
        });
        Ok(StudySubmitted {
            study: def.name,
            jobs: jobs.iter().map(|j| j.id).zip(answer).collect(),
            total_jobs: total,
            extended,
            planned,
            dry_run: false,
        })
    }

    /// Adds to study `name` what `more` asks (further seeds on its grid, or its failed runs
    /// again; see [`study::more`]): planned against the study's jobs inside the write
    /// transaction and stored with the study's record in it, all or nothing. A dry run plans
    /// on a snapshot and writes nothing.
    pub async fn study_more(
        &self,
        name: &str,
        more: study::more::More,
        dry_run: bool,
    ) -> Result<StudySubmitted, Error> {
        self.study_more_as(name, more, dry_run, &Actor::admin())
            .await
    }

    /// [`Queue::study_more`] for `by`: only the study's owner (or an admin) may add to it, and
    /// what it adds belongs to the study's owner (403 naming the owner otherwise).
    pub async fn study_more_as(
        &self,
        name: &str,
        more: study::more::More,
        dry_run: bool,
        by: &Actor,
    ) -> Result<StudySubmitted, Error> {
        validate_name("study name", name)?;
        let name = name.to_string();
        if dry_run {
            let read = self.store.read()?;
            let record = read.study(&name)?;
            let jobs = read.study_jobs(&name)?;
            study_owner(&name, record.as_ref(), &jobs, by)?;
            let plan = study::more::plan(&name, record.as_ref(), &jobs, &more)?;
            let planned = plan.iter().map(|p| p.specs.len() as u64).sum();
            return Ok(StudySubmitted {
                total_jobs: read.study_len(&name)? + planned,
                study: name,
                jobs: Vec::new(),
                extended: true,
                planned,
                dry_run: true,
            });
        }
        let by = by.clone();
        let (name, jobs, events, total) = self
            .store
            .write(move |tx| {
                let mut record = tx.study(&name)?;
                let existing = tx.study_jobs(&name)?;
                let owner = study_owner(&name, record.as_ref(), &existing, &by)?;
                let plan = study::more::plan(&name, record.as_ref(), &existing, &more)?;
                // Every plan is checked before the first is written: a refusal (a spec that no
                // longer passes, the owner's queued limit over the whole addition) leaves the
                // study as it was, not with the plans before it added.
                let specs = plan
                    .iter()
                    .map(|p| normalize_specs(p.specs.clone()))
                    .collect::<Result<Vec<_>, _>>()?;
                let adding: u64 = specs.iter().map(|s| s.len() as u64).sum();
                if adding > 0 {
                    tx.check_queued_limit(&owner, adding)?;
                }
                let (mut jobs, mut events) = (Vec::new(), Vec::new());
                for (p, specs) in plan.into_iter().zip(specs) {
                    let (new, ev) = insert_owned(tx, specs, &owner)?;
                    let ids = new.iter().map(|j| j.id).collect();
                    let at = now_ms();
                    record = Some(study::more::record_with(record, &name, &owner, p, ids, at));
                    jobs.extend(new);
                    events.extend(ev);
                }
                if let Some(r) = &record {
                    tx.save_study(r)?;
                }
                let total = (existing.len() + jobs.len()) as u64;
                Ok((name, jobs, events, total))
            })
            .await?;
        self.announce(&jobs, events);
        Ok(StudySubmitted {
            study: name,
            planned: jobs.len() as u64,
            jobs: jobs
                .iter()
                .map(|j| {
                    let mut s = JobSpec::from(j.spec.clone());
                    s.study = None;
                    (j.id, s)
                })
                .collect(),
            total_jobs: total,
            extended: true,
            dry_run: false,
        })
    }

    /// After the commit of a write with study effects: publishes its events and changed jobs,
    /// announces the jobs it inserted.
    fn after_study(&self, fx: StudyEffects) {
        for e in fx.events {
            self.publish(Live::Event(e));
        }
        for j in fx.changed {
            self.publish(Live::Job(Box::new(j)));
        }
        if !fx.inserted.is_empty() {
            self.announce(&fx.inserted, Vec::new());
        }
    }

    /// After the commit of [`insert_jobs`]: publishes the events and wakes fitting claimers.
    fn announce(&self, jobs: &[Job], events: Vec<Event>) {
        for e in events {
            self.publish(Live::Event(e));
        }
        self.wake(jobs.iter());
    }

    /// Wakes one waiting claimer per job, the one waiting longest that the job fits and that
    /// no other job has woken. Waking every fitting claimer made thousands of idle workers race
    /// for each job, each race a write transaction (5,000 waiting workers: ~0.1 s of server
    /// time per submit). A claimer that takes another job than the one it was woken for, or
    /// leaves without one, passes its wake on ([`Queue::pass_on`]), so no job is left behind.
    fn wake<'a>(&self, jobs: impl Iterator<Item = &'a Job>) {
        let mut inner = self.lock();
        if inner.waiters.is_empty() {
            return;
        }
        for job in jobs {
            wake_one(&mut inner.waiters, job.id, &job.spec, None);
        }
    }

    /// A claimer woken for a job it did not take (it took another, or left): wakes another
    /// claimer for that job. Called as the claimer stops waiting (`took`: the job it claimed).
    /// False if it was no longer listed (a submit's hand-off took it out).
    fn pass_on(&self, waiter: u64, took: Option<JobId>) -> bool {
        let mut inner = self.lock();
        let Some(pos) = inner.waiters.iter().position(|w| w.id == waiter) else {
            return false;
        };
        let w = inner.waiters.remove(pos);
        if let Some((job, spec)) = w.woken_for
            && Some(job) != took
        {
            wake_one(&mut inner.waiters, job, &spec, Some(waiter));
        }
        true
    }

    /// The claimer goes back to waiting: whatever it was woken for is gone.
    fn rearm(&self, waiter: u64) {
        if let Some(w) = self.lock().waiters.iter_mut().find(|w| w.id == waiter) {
            w.woken_for = None;
        }
    }

    // ---- claim --------------------------------------------------------------------------

    /// Claims the first fitting job for a worker slot, waiting up to `wait` for one to be
    /// submitted. `None` when the wait ran out.
    pub async fn claim(
        &self,
        worker_id: &str,
        caps: Capabilities,
        wait: Duration,
    ) -> Result<Option<Assignment>, Error> {
        let waiter_id = self.next_waiter.fetch_add(1, Ordering::Relaxed);
        let wait = spread_wait(wait.min(self.config.max_claim_wait), waiter_id);
        let deadline = tokio::time::Instant::now() + wait;
        let (worker_name, draining) = {
            let mut inner = self.lock();
            let Some(w) = inner.workers.get_mut(worker_id) else {
                return Err(not_found(format!("worker {worker_id} (register first)")));
            };
            w.seen = Instant::now();
            (
                w.worker.name.clone(),
                w.worker.state == WorkerState::Draining || w.worker.hold.is_some(),
            )
        };
        if draining {
            // A held worker that still asks (it has not heard yet, or an older worker) waits
            // out its poll instead of spinning.
            if self
                .lock()
                .workers
                .get(worker_id)
                .is_some_and(|w| w.worker.hold.is_some())
            {
                tokio::time::sleep_until(deadline).await;
            }
            return Ok(None);
        }
        let notify = Arc::new(Notify::new());
        let (handoff, mut handed) = oneshot::channel();
        // Registered before the first try, so a submit between the try and the wait still wakes us.
        self.lock().waiters.push(Waiter {
            id: waiter_id,
            caps: caps.clone(),
            notify: notify.clone(),
            woken_for: None,
            worker_id: worker_id.to_string(),
            worker_name: worker_name.clone(),
            parked: false,
            handoff: Some(handoff),
        });
        let mut guard = WaiterGuard {
            queue: self,
            id: waiter_id,
            took: None,
        };
        loop {
            match self
                .try_claim(worker_id, &worker_name, &caps, waiter_id)
                .await?
            {
                Try::Claimed(a) => {
                    guard.took = Some(a.job.id);
                    return Ok(Some(*a));
                }
                Try::Handed => return self.handed(handed.await),
                Try::Nothing => {}
            }
            self.rearm(waiter_id);
            tokio::select! {
                _ = notify.notified() => {}
                h = &mut handed => return self.handed(h),
                _ = tokio::time::sleep_until(deadline) => {
                    // Out of the list now (a wake it got goes to another claimer), no hand-off
                    // can come; if a submit took us out first, its hand-off is on its way
                    // (its write is being committed).
                    let listed = self.pass_on(waiter_id, None);
                    return if listed { Ok(None) } else { self.handed(handed.await) };
                }
            }
        }
    }

    async fn try_claim(
        &self,
        worker_id: &str,
        worker_name: &str,
        caps: &Capabilities,
        waiter_id: u64,
    ) -> Result<Try, Error> {
        let caps = caps.clone();
        let wid = worker_id.to_string();
        let wname = worker_name.to_string();
        let (inner, timeout) = (self.inner.clone(), self.config.lease_timeout);
        let began = Instant::now();
        let fair = self.fair_share();
        let claimed = self
            .store
            .write_claim(move |tx| {
                // Writes run one at a time, so no hand-off can slip between this check, the
                // look at the queue and parking.
                let listed = |inner: &Mutex<Inner>, park: bool| {
                    let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
                    let w = inner.waiters.iter_mut().find(|w| w.id == waiter_id);
                    w.map(|w| w.parked = park).is_some()
                };
                if !listed(&inner, false) {
                    return Ok(Err(()));
                }
                let claimed = claim_in(tx, &caps, &wid, &wname, &inner, timeout, fair)?;
                if claimed.is_none() {
                    listed(&inner, true);
                }
                Ok(Ok(claimed))
            })
            .await?;
        Ok(match claimed {
            Err(()) => Try::Handed,
            Ok(None) => Try::Nothing,
            Ok(Some((job, lease, ev))) => {
                self.metrics
                    .claim_seconds
                    .observe(began.elapsed().as_secs_f64());
                Try::Claimed(Box::new(self.claimed(worker_id, job, lease, ev)))
            }
        })
    }

    /// The job a submit's hand-off delivered to this claim (counted as a claim).
    fn handed(
        &self,
        h: Result<HandOff, oneshot::error::RecvError>,
    ) -> Result<Option<Assignment>, Error> {
        let a = handed_job(h)?;
        if a.is_some() {
            self.metrics.claims.inc();
        }
        Ok(a)
    }

    /// Records a claim made in the store: the lease's deadline, the worker's running jobs.
    fn claimed(&self, worker_id: &str, job: Job, lease: u64, ev: Event) -> Assignment {
        self.metrics.claims.inc();
        {
            let mut inner = self.lock();
            inner.leases.insert(
                job.id,
                LeaseState {
                    lease,
                    attempt: job.attempt,
                    worker: worker_id.to_string(),
                    deadline: Instant::now() + self.config.lease_timeout,
                },
            );
            if let Some(w) = inner.workers.get_mut(worker_id) {
                if !w.worker.running.contains(&job.id) {
                    w.worker.running.push(job.id);
                }
                w.worker.state = WorkerState::Busy;
            }
        }
        self.publish(Live::Event(ev));
        self.publish(Live::Job(Box::new(job.clone())));
        Assignment {
            attempt: job.attempt,
            lease,
            job,
        }
    }

    /// Ends a slot's last job and claims its next one in one transaction (one commit per job);
    /// waits like [`Queue::claim`] when nothing fits yet. Returns why the report was refused, if
    /// it was, and the claim.
    pub async fn complete_and_claim(
        &self,
        worker_id: &str,
        finished: crate::protocol::Finished,
        caps: Capabilities,
        wait: Duration,
    ) -> Result<(Option<String>, Option<Assignment>), Error> {
        let (job_id, req) = (finished.job, finished.report);
        let fin_lease = req.lease;
        let known = {
            let inner = self.lock();
            inner.workers.get(worker_id).map(|w| {
                (
                    w.worker.name.clone(),
                    w.worker.state == WorkerState::Draining || w.worker.hold.is_some(),
                )
            })
        };
        let (attempt, lease) = (req.attempt, req.lease);
        // The lease held in memory first: only a report it refuses costs a read of the job (to
        // tell a report sent again, whose first answer was lost, from a stale one).
        let fresh = self.check_lease(job_id, attempt, lease).is_ok();
        let repeated = !fresh
            && self
                .store
                .read()?
                .job(job_id)?
                .is_some_and(|j| ended_by(&j, attempt, lease));
        let mut req = req;
        cap_result(&mut req);
        let Some((worker_name, false)) = known.filter(|_| fresh) else {
            // Unknown or draining worker, a repeated or refused report: the plain paths say why.
            let refused = if repeated {
                None
            } else {
                self.complete(job_id, req)
                    .await
                    .err()
                    .map(|e| e.to_string())
            };
            return Ok((refused, self.claim(worker_id, caps, wait).await?));
        };
        let c = caps.clone();
        let wid = worker_id.to_string();
        let (inner, timeout) = (self.inner.clone(), self.config.lease_timeout);
        let (duration, after) = (req.duration_ms, self.config.quarantine_after);
        let began = Instant::now();
        let fair = self.fair_share();
        // Volatile: durable within the store's window; a crash inside it re-runs the job.
        let (done, claimed) = self
            .store
            .write_claim(move |tx| {
                let done = match complete_in(tx, &inner, job_id, req) {
                    Ok((job, ev, fx)) => {
                        // Before the claim: a worker quarantined by this report claims nothing.
                        let q = holds::note_outcome_in(tx, &inner, &job, duration, after)?;
                        Ok((job, ev, fx, q))
                    }
                    // Refused before anything was written: still claim. A report sent again
                    // just after its first was written (the lease not yet forgotten) is no error.
                    Err(Error::Request(e)) => match tx.job(job_id)? {
                        Some(j) if ended_by(&j, attempt, lease) => Err(None),
                        _ => Err(Some(e.to_string())),
                    },
                    Err(e) => return Err(e),
                };
                // Once the end is written, a claim that meets a damaged record claims nothing
                // here (the worker claims again on its own) rather than fail the written end.
                let claimed = match claim_in(tx, &c, &wid, &worker_name, &inner, timeout, fair) {
                    Err(e) if done.is_ok() && is_damage(&e) => None,
                    claimed => claimed?,
                };
                Ok((done, claimed))
            })
            .await?;
        let refused = match done {
            Ok((job, ev, fx, quarantined)) => {
                self.forget_lease(job_id, fin_lease);
                self.completed(&job, ev, quarantined);
                self.after_study(fx);
                None
            }
            Err(e) => e,
        };
        match claimed {
            Some((job, lease, ev)) => {
                self.metrics
                    .claim_seconds
                    .observe(began.elapsed().as_secs_f64());
                Ok((refused, Some(self.claimed(worker_id, job, lease, ev))))
            }
            None => Ok((refused, self.claim(worker_id, caps, wait).await?)),
        }
    }

    // ---- worker calls about a job --------------------------------------------------------

    /// Refuses early (without touching the store) a call whose lease is not the current one,
    /// and renews the lease of one that is: any call about a job is proof of life.
    fn check_lease(&self, job: JobId, attempt: u32, lease: u64) -> Result<bool, Error> {
        let mut inner = self.lock();
        let cancel = inner.cancels.contains_key(&job);
        match inner.leases.get_mut(&job) {
            Some(l) if l.lease == lease && l.attempt == attempt => {
                l.deadline = Instant::now() + self.config.lease_timeout;
                let worker = l.worker.clone();
                if let Some(w) = inner.workers.get_mut(&worker) {
                    w.seen = Instant::now();
                }
                Ok(cancel)
            }
            _ => {
                drop(inner);
                // Only on the refusal path: a job that does not exist is a 404, not a stale lease.
                match self.store.read().and_then(|r| r.job(job)) {
                    Ok(None) => Err(not_found(format!("job {job}"))),
                    _ => Err(stale(job, attempt)),
                }
            }
        }
    }

    /// Stores a batch of rows (idempotently) and updates the job's progress.
    pub async fn add_rows(&self, job_id: JobId, batch: RowBatch) -> Result<RowAck, Error> {
        if batch.rows.len() > MAX_ROWS_PER_BATCH {
            return Err(invalid(format!(
                "a batch holds at most {MAX_ROWS_PER_BATCH} rows, got {}",
                batch.rows.len()
            )));
        }
        for r in &batch.rows {
            if r.seq >= MAX_SEQ {
                return Err(invalid(format!(
                    "row seq {} is out of range (rows are numbered 0, 1, 2, ... per attempt)",
                    r.seq
                )));
            }
            if r.metrics.len() > 64 {
                return Err(invalid(format!("row {} has more than 64 metrics", r.seq)));
            }
            for (name, _) in &r.metrics {
                validate_name("metric name", name)?;
            }
        }
        if let Some(f) = batch.fraction
            && !(0.0..=1.0).contains(&f)
        {
            return Err(invalid(format!(
                "fraction is progress between 0 and 1, got {f}"
            )));
        }
        self.check_lease(job_id, batch.attempt, batch.lease)?;
        let began = Instant::now();
        let rows = Arc::new(batch.rows);
        let stored_rows = rows.clone();
        let (attempt, lease) = (batch.attempt, batch.lease);
        let (fraction, status) = (batch.fraction, batch.status);
        let inner = self.inner.clone();
        let (ack, job, fx) = self
            .store
            .write(move |tx| {
                let prev = current(tx, job_id, attempt, lease)?;
                let rules = crate::adaptive::rules_of(tx, &prev)?;
                let (stored, skipped) = tx.insert_rows(job_id, attempt, &stored_rows)?;
                let before = prev.progress.evals.unwrap_or(0.0);
                let mut job = prev.clone();
                if stored > 0 {
                    job.progress
                        .note_metrics(&stored_rows, prev.progress.rows == 0);
                }
                job.progress.rows += stored;
                if let Some(last) = stored_rows.iter().max_by_key(|r| r.seq)
                    && stored > 0
                    && last.seq + 1 >= job.progress.rows
                {
                    apply_progress(&mut job, last);
                }
                if let Some(f) = fraction {
                    job.progress.fraction = Some(f);
                    job.progress.fraction_reported = true;
                }
                let secs = job
                    .started_at
                    .map(|s| now_ms().saturating_sub(s) as f64 / 1000.0)
                    .unwrap_or(0.0);
                let eta = study::job_eta(&job.progress, job.spec.max_evals(), secs);
                job.progress.eta_secs = eta.map(|e| e.0);
                job.progress.eta_bound = eta.is_some_and(|e| e.1);
                if let Some(s) = status {
                    job.progress.status = Some(clip(&s, 500));
                }
                // An adaptive study judges its configurations as their runs cross rungs. A
                // study that cannot (a record of it does not decode) does not stop the rows:
                // its step is skipped, and the job's end says so in an event.
                let fx = match (stored > 0, &rules) {
                    (true, crate::adaptive::Rules::Read(r)) => skip_damaged(
                        crate::adaptive::on_rows(tx, &mut job, before, &stored_rows, r),
                    )?,
                    _ => Default::default(),
                };
                tx.save_job(Some(&prev), &job)?;
                let fx = match (&job.spec.study, fx.is_empty()) {
                    (Some(study), false) => skip_damaged(absorb(tx, &inner, &study.clone(), fx))?,
                    _ => StudyEffects::default(),
                };
                Ok((
                    RowAck {
                        stored,
                        skipped,
                        cancel: job.cancel_requested,
                    },
                    job,
                    fx,
                ))
            })
            .await?;
        self.metrics.rows.inc_by(ack.stored);
        self.metrics
            .ingest_seconds
            .observe(began.elapsed().as_secs_f64());
        self.after_study(fx);
        if ack.stored > 0 {
            self.publish(Live::Rows {
                job: job_id,
                attempt,
                rows,
            });
            self.publish(Live::Job(Box::new(job)));
        }
        Ok(ack)
    }

    /// Stores a batch of log lines. Lines of this attempt already received are skipped.
    pub async fn add_logs(&self, job_id: JobId, batch: LogBatch) -> Result<bool, Error> {
        if batch.lines.len() > MAX_LINES_PER_BATCH {
            return Err(invalid(format!(
                "a batch holds at most {MAX_LINES_PER_BATCH} lines, got {}",
                batch.lines.len()
            )));
        }
        if batch.first >= MAX_SEQ {
            return Err(invalid(format!(
                "log line number {} is out of range (lines are numbered 0, 1, 2, ... per attempt)",
                batch.first
            )));
        }
        self.check_lease(job_id, batch.attempt, batch.lease)?;
        let (attempt, lease) = (batch.attempt, batch.lease);
        let (cancel, lines) = self
            .store
            .write(move |tx| {
                let prev = current(tx, job_id, attempt, lease)?;
                let seen = tx.log_seen(job_id, attempt)?;
                let end = batch.first + batch.lines.len() as u64;
                if end <= seen {
                    return Ok((prev.cancel_requested, Vec::new()));
                }
                let skip = seen.saturating_sub(batch.first) as usize;
                let mut job = prev.clone();
                let now = now_ms();
                let mut lines = Vec::with_capacity(batch.lines.len() - skip);
                for input in batch.lines.into_iter().skip(skip) {
                    let text = clip_line(&input.text);
                    let level = Level::of(&text);
                    match level {
                        Level::Warning => job.warnings += 1,
                        Level::Error => job.errors += 1,
                        Level::Info => {}
                    }
                    lines.push(LogLine {
                        seq: job.log_lines,
                        attempt,
                        at: if input.at > 0 { input.at } else { now },
                        stream: input.stream,
                        level,
                        text,
                        rows_before: input.rows_before,
                    });
                    job.log_lines += 1;
                }
                let dropped = tx.append_logs(job_id, attempt, end, &lines)?;
                job.log_dropped += dropped;
                tx.save_job(Some(&prev), &job)?;
                Ok((job.cancel_requested, lines))
            })
            .await?;
        if !lines.is_empty() {
            self.publish(Live::Logs {
                job: job_id,
                lines: Arc::new(lines),
            });
        }
        Ok(cancel)
    }

    /// Ends an attempt as the worker reports it.
    pub async fn complete(&self, job_id: JobId, req: CompleteRequest) -> Result<Job, Error> {
        // A retried report of an attempt that already ended (its answer was lost): same answer.
        if let Some(job) = self.store.read()?.job(job_id)?
            && job.state.is_terminal()
            && job.attempt == req.attempt
            && job.lease == Some(req.lease)
        {
            return Ok(job);
        }
        let mut req = req;
        cap_result(&mut req);
        self.check_lease(job_id, req.attempt, req.lease)?;
        let lease = req.lease;
        let (inner, duration, after) = (
            self.inner.clone(),
            req.duration_ms,
            self.config.quarantine_after,
        );
        let (job, ev, fx, quarantined) = self
            .store
            .write(move |tx| {
                let (job, ev, fx) = complete_in(tx, &inner, job_id, req)?;
                let q = holds::note_outcome_in(tx, &inner, &job, duration, after)?;
                Ok((job, ev, fx, q))
            })
            .await?;
        self.forget_lease(job_id, lease);
        self.completed(&job, ev, quarantined);
        self.after_study(fx);
        Ok(job)
    }

    /// After a report's commit: counts it, publishes the job's end and any quarantine.
    fn completed(&self, job: &Job, ev: Event, quarantined: Option<(Worker, Event)>) {
        self.metrics
            .completions
            .get_or_create(&[("outcome", job.state.as_str())])
            .inc();
        self.publish(Live::Event(ev));
        self.publish(Live::Job(Box::new(job.clone())));
        if let Some((w, ev)) = quarantined {
            self.metrics.quarantines.inc();
            self.publish(Live::Event(ev));
            self.publish(Live::Worker(Box::new(w)));
        }
    }

    /// A worker gives a running job back (it is shutting down): the job is queued again without
    /// counting against its attempts.
    pub async fn requeue(&self, job_id: JobId, req: RequeueRequest) -> Result<Job, Error> {
        self.check_lease(job_id, req.attempt, req.lease)?;
        let lease = req.lease;
        let preempted = req.preempted;
        let reason = req.reason.unwrap_or_else(|| {
            if preempted {
                "its worker was preempted".into()
            } else {
                "worker shut down".into()
            }
        });
        let max_give_backs = self.config.max_give_backs;
        let inner = self.inner.clone();
        let (job, ev, fx) = self
            .store
            .write(move |tx| {
                let prev = current(tx, job_id, req.attempt, req.lease)?;
                let rules = crate::adaptive::rules_of(tx, &prev)?;
                let mut job = prev.clone();
                let outcome = if preempted {
                    format!("preempted: {}", clip(&reason, 200))
                } else {
                    format!("requeued: {}", clip(&reason, 200))
                };
                if let Some(a) = job.attempts.last_mut() {
                    a.ended_at = Some(now_ms());
                    a.outcome = Some(outcome.clone());
                }
                let given_back = job
                    .attempts
                    .iter()
                    .filter(|a| a.outcome.as_deref().is_some_and(is_give_back))
                    .count() as u32;
                let (kind, message) = if job.cancel_requested {
                    end_cancelled(&mut job);
                    ("job_cancelled", format!("job {job_id} cancelled"))
                } else if given_back > max_give_backs {
                    job.state = JobState::Lost;
                    job.lease = None;
                    job.finished_at = Some(now_ms());
                    job.error = Some(format!(
                        "lost: its workers gave it back {given_back} times (at most \
                         {max_give_backs}); the last time {}",
                        clip(&reason, 200)
                    ));
                    (
                        "job_lost",
                        format!("job {job_id} lost after {given_back} give-backs"),
                    )
                } else {
                    job.state = JobState::Queued;
                    job.lease = None;
                    // Its attempts keep who ran them; a queued job has no worker.
                    job.worker = None;
                    job.worker_name = None;
                    if preempted {
                        (
                            "job_preempted",
                            format!("job {job_id} {outcome}; queued again"),
                        )
                    } else {
                        ("job_requeued", format!("job {job_id} {outcome}"))
                    }
                };
                tx.save_job(Some(&prev), &job)?;
                let ev = tx.event(kind, Some(job_id), prev.worker.as_deref(), message)?;
                let fx = if job.state.is_terminal() {
                    after_end(tx, &inner, &job, rules)?
                } else {
                    StudyEffects::default()
                };
                Ok((job, ev, fx))
            })
            .await?;
        self.forget_lease(job_id, lease);
        if job.state == JobState::Queued {
            let why = if preempted { "preempted" } else { "given_back" };
            self.metrics
                .requeues
                .get_or_create(&[("reason", why)])
                .inc();
        }
        self.publish(Live::Event(ev));
        self.after_study(fx);
        if job.state == JobState::Queued {
            self.wake(std::iter::once(&job));
        }
        Ok(job)
    }

    /// Drops the in-memory lease (and cancel) of `job_id` if it is still `lease`: a newer claim
    /// of the same job, made meanwhile, keeps its own.
    fn forget_lease(&self, job_id: JobId, lease: u64) {
        let mut inner = self.lock();
        if inner.leases.get(&job_id).is_some_and(|l| l.lease != lease) {
            return;
        }
        inner.cancels.remove(&job_id);
        if let Some(l) = inner.leases.remove(&job_id)
            && let Some(w) = inner.workers.get_mut(&l.worker)
        {
            w.worker.running.retain(|j| *j != job_id);
            if w.worker.running.is_empty() && w.worker.state == WorkerState::Busy {
                w.worker.state = WorkerState::Idle;
            }
        }
        if self.running_limits.load(Ordering::Relaxed) {
            // Its owner may have been at their running limit: waiting claimers look again.
            for w in &inner.waiters {
                w.notify.notify_one();
            }
        }
    }

    /// The half-life claims decay usage with, when fair share is on.
    fn fair_share(&self) -> Option<Duration> {
        self.config
            .fair_share
            .then_some(self.config.usage_half_life)
    }

    /// Tells the queue whether any user has a running limit (the server calls it when users
    /// change): then every job that ends wakes the waiting claimers, one of which may now take
    /// a job of a user who was at their limit.
    pub fn set_running_limits(&self, any: bool) {
        self.running_limits.store(any, Ordering::Relaxed);
    }

    // ---- cancel --------------------------------------------------------------------------

    /// Cancels a job: a queued job at once, a running one is flagged and its worker told at its
    /// next call. Cancelling an ended job is a conflict.
    pub async fn cancel(&self, job_id: JobId) -> Result<Job, Error> {
        self.cancel_as(job_id, None).await
    }

    /// [`Queue::cancel`], recorded in the audit log as `actor`'s (in the same write).
    pub async fn cancel_as(&self, job_id: JobId, actor: Option<String>) -> Result<Job, Error> {
        let cancels = self.inner.clone();
        let (job, ev, fx) = self
            .store
            .write(move |tx| {
                let Some(prev) = tx.job(job_id)? else {
                    return Err(not_found(format!("job {job_id}")));
                };
                // Read before the first write, for the study step of a job that ends here; a
                // running job is only flagged (its end, later, takes the step).
                let rules = match prev.state {
                    JobState::Queued => crate::adaptive::rules_of(tx, &prev)?,
                    _ => crate::adaptive::Rules::None,
                };
                let mut job = prev.clone();
                let ev = match prev.state {
                    JobState::Queued => {
                        end_cancelled(&mut job);
                        Some(tx.event(
                            "job_cancelled",
                            Some(job_id),
                            None,
                            format!("job {job_id} cancelled"),
                        ))
                    }
                    JobState::Running if !prev.cancel_requested => {
                        job.cancel_requested = true;
                        Some(tx.event(
                            "job_cancel_requested",
                            Some(job_id),
                            prev.worker.as_deref(),
                            format!("job {job_id}: cancel requested, its worker stops it"),
                        ))
                    }
                    JobState::Running => None,
                    s => {
                        return Err(Error::Request(RequestError::Conflict(format!(
                            "job {job_id} has already ended ({s})"
                        ))));
                    }
                };
                let ev = ev.transpose()?;
                let mut fx = StudyEffects::default();
                if ev.is_some() {
                    tx.save_job(Some(&prev), &job)?;
                    if let Some(a) = &actor {
                        tx.audit(
                            a,
                            "job_cancel",
                            &job_id.to_string(),
                            format!("was {}", prev.state),
                        )?;
                    }
                    if job.state.is_terminal() {
                        fx = after_end(tx, &cancels, &job, rules)?;
                    }
                }
                if job.state == JobState::Running {
                    // Recorded with the write, so a caller that goes away cannot lose it.
                    cancels
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .cancels
                        .insert(job_id, ());
                }
                Ok((job, ev, fx))
            })
            .await?;
        self.after_study(fx);
        if let Some(ev) = ev {
            self.publish(Live::Event(ev));
        }
        self.publish(Live::Job(Box::new(job.clone())));
        Ok(job)
    }

    // ---- workers -------------------------------------------------------------------------

    /// Registers a worker (or re-registers it under the id it had). Jobs still leased to that id
    /// end their attempt as expired (requeued, or `lost` after max attempts): a worker that
    /// registers has just started and runs nothing.
    pub async fn register(&self, req: RegisterRequest) -> Result<Worker, Error> {
        validate_name("worker name", &req.name)?;
        if req.kinds.is_empty() {
            return Err(invalid("a worker must run at least one job kind"));
        }
        if req.slots == 0 || req.slots > 256 {
            return Err(invalid(format!(
                "slots must be between 1 and 256, got {}",
                req.slots
            )));
        }
        if req.kinds.len() > 16 || req.tags.len() > 32 {
            return Err(invalid("a worker has at most 16 kinds and 32 tags"));
        }
        for t in &req.tags {
            validate_name("tag", t)?;
        }
        req.hardware.validate()?;
        if req.version.len() > 64 {
            return Err(invalid("version is longer than 64 characters"));
        }
        let id = match &req.worker_id {
            Some(id) => {
                validate_name("worker id", id)?;
                id.clone()
            }
            None => new_worker_id(),
        };
        let orphans: Vec<(JobId, u32, u64)> = {
            let inner = self.lock();
            inner
                .leases
                .iter()
                .filter(|(_, l)| l.worker == id)
                .map(|(j, l)| (*j, l.attempt, l.lease))
                .collect()
        };
        // Its jobs ended with it: each counts as an attempt whose lease ran out, so a job that
        // kills the machine it runs on ends `lost` instead of going round the fleet for ever.
        for (job, attempt, lease) in orphans {
            let _ = self.expire(job, attempt, lease).await;
        }
        let now = now_ms();
        let mut worker = Worker {
            id: id.clone(),
            name: req.name,
            version: req.version,
            hardware: req.hardware,
            kinds: req.kinds,
            tags: req.tags,
            slots: req.slots,
            registered_at: now,
            last_seen: now,
            state: WorkerState::Idle,
            running: Vec::new(),
            usage: Default::default(),
            update_available: false,
            update_error: None,
            hold: None,
        };
        worker.update_available = self.update_available(&worker.version);
        let w = worker.clone();
        let registry = self.inner.clone();
        let max = self.config.max_workers.max(1);
        let ev = self
            .store
            .write(move |tx| {
                // Decided and done inside the write, under the registry's lock: the worker
                // made room for is still offline when it goes, and the registry never holds
                // more than `max`.
                let mut inner = registry.lock().unwrap_or_else(|p| p.into_inner());
                if !inner.workers.contains_key(&w.id) && inner.workers.len() >= max {
                    // A new worker in a full registry takes the place of the one offline longest.
                    let oldest = inner
                        .workers
                        .values()
                        .filter(|w| w.worker.state == WorkerState::Offline)
                        .min_by_key(|w| w.worker.last_seen)
                        .map(|w| w.worker.id.clone());
                    let Some(old) = oldest else {
                        return Err(Error::Request(RequestError::Conflict(format!(
                            "the registry already holds {max} workers, all online (gaia serve --max-workers raises the cap)"
                        ))));
                    };
                    tx.delete_worker(&old)?;
                    inner.workers.remove(&old);
                }
                let known = tx.worker(&w.id)?;
                let mut w = w;
                if let Some(k) = &known {
                    w.registered_at = k.registered_at;
                    // A pause, drain or quarantine outlives the worker's own restart.
                    w.hold = k.hold.clone();
                    w.state = holds::live_state(&w, false);
                }
                tx.save_worker(&w)?;
                let msg = match known {
                    Some(_) => format!(
                        "worker {} ({}) rejoined, version {}",
                        w.name, w.id, w.version
                    ),
                    None => format!("worker {} ({}) joined, version {}", w.name, w.id, w.version),
                };
                let ev = tx.event("worker_joined", None, Some(&w.id), msg)?;
                let registered = w.clone();
                inner.workers.insert(
                    w.id.clone(),
                    WorkerLive {
                        worker: w,
                        seen: Instant::now(),
                    },
                );
                Ok((ev, registered))
            })
            .await?;
        let (ev, worker) = ev;
        self.publish(Live::Event(ev));
        self.publish(Live::Worker(Box::new(worker.clone())));
        Ok(worker)
    }

    fn update_available(&self, version: &str) -> bool {
        match self.latest_release() {
            Some(latest) => crate::release::differs(&latest, version),
            None => false,
        }
    }

    /// A heartbeat: renews the leases the worker holds, answers cancels and stale leases.
    pub fn heartbeat(
        &self,
        worker_id: &str,
        req: HeartbeatRequest,
    ) -> Result<HeartbeatResponse, Error> {
        let latest = self.latest_release();
        let mut resp = HeartbeatResponse {
            latest_version: latest.clone(),
            ..Default::default()
        };
        req.usage.validate()?;
        {
            let mut t = self.telemetry.lock().unwrap_or_else(|p| p.into_inner());
            let closed = t.agg.record(worker_id, now_ms(), &req.usage);
            t.pending.extend(closed);
            if t.pending.len() > MAX_PENDING_POINTS {
                let over = t.pending.len() - MAX_PENDING_POINTS;
                t.pending.drain(..over);
            }
        }
        let mut back_online = None;
        let snapshot = {
            let mut inner = self.lock();
            let now = Instant::now();
            let deadline = now + self.config.lease_timeout;
            let mut running = Vec::new();
            for r in &req.running {
                match inner.leases.get_mut(&r.job) {
                    Some(l)
                        if l.lease == r.lease
                            && l.attempt == r.attempt
                            && l.worker == worker_id =>
                    {
                        l.deadline = deadline;
                        running.push(r.job);
                        if inner.cancels.contains_key(&r.job) {
                            resp.cancel.push(r.job);
                        }
                    }
                    _ => resp.stale.push(r.job),
                }
            }
            let Some(w) = inner.workers.get_mut(worker_id) else {
                return Err(not_found(format!(
                    "worker {worker_id} (the server does not know it: register again)"
                )));
            };
            w.seen = now;
            if w.worker.state == WorkerState::Offline {
                back_online = Some(w.worker.clone());
            }
            w.worker.last_seen = now_ms();
            w.worker.usage = req.usage;
            w.worker.running = running;
            w.worker.state = WorkerState::Idle;
            w.worker.state = holds::live_state(&w.worker, req.draining);
            resp.hold = w.worker.hold.clone();
            w.worker.update_available = latest
                .as_deref()
                .is_some_and(|l| crate::release::differs(l, &w.worker.version));
            w.worker.clone()
        };
        if let Some(mut w) = back_online {
            w.state = holds::live_state(
                &Worker {
                    state: WorkerState::Idle,
                    ..w.clone()
                },
                false,
            );
            let store = self.store.clone();
            let live = self.live.clone();
            // Persist the state change off the heartbeat's path.
            tokio::spawn(async move {
                let name = w.name.clone();
                if let Ok(ev) = store
                    .write(move |tx| {
                        tx.save_worker(&w)?;
                        Ok(tx.event(
                            "worker_joined",
                            None,
                            Some(&w.id),
                            format!("worker {name} is back online"),
                        )?)
                    })
                    .await
                {
                    let _ = live.send(Live::Event(ev));
                }
            });
        }
        self.publish(Live::Worker(Box::new(snapshot)));
        Ok(resp)
    }

    /// A worker says it is stopping: it is offline from now on (not after the lease timeout).
    /// Jobs it still holds keep their leases and expire as usual.
    pub async fn leave(&self, worker_id: &str) -> Result<Worker, Error> {
        let w = {
            let mut inner = self.lock();
            let Some(w) = inner.workers.get_mut(worker_id) else {
                return Err(not_found(format!("worker {worker_id}")));
            };
            w.worker.state = WorkerState::Offline;
            w.worker.usage = Default::default();
            w.worker.last_seen = now_ms();
            // A drain with exit is done once the worker has left: it may start again freely.
            if w.worker
                .hold
                .as_ref()
                .is_some_and(|h| h.kind == crate::model::HoldKind::Draining && h.exit)
            {
                w.worker.hold = None;
            }
            w.worker.clone()
        };
        let saved = w.clone();
        let ev = self
            .store
            .write(move |tx| {
                tx.save_worker(&saved)?;
                Ok(tx.event(
                    "worker_left",
                    None,
                    Some(&saved.id),
                    format!("worker {} stopped", saved.name),
                )?)
            })
            .await?;
        self.publish(Live::Event(ev));
        self.publish(Live::Worker(Box::new(w.clone())));
        Ok(w)
    }

    /// Every worker, with live state.
    pub fn workers(&self) -> Vec<Worker> {
        let inner = self.lock();
        let mut out: Vec<Worker> = inner.workers.values().map(|w| w.worker.clone()).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        out
    }

    /// Workers online (not offline).
    pub fn workers_online(&self) -> u64 {
        self.lock()
            .workers
            .values()
            .filter(|w| w.worker.state != WorkerState::Offline)
            .count() as u64
    }

    /// One job's cancel flag and whether its lease is held (for tests and diagnostics).
    pub fn lease_of(&self, job: JobId) -> Option<(u32, u64, String)> {
        self.lock()
            .leases
            .get(&job)
            .map(|l| (l.attempt, l.lease, l.worker.clone()))
    }

    // ---- expiry --------------------------------------------------------------------------

    /// The server could not hear heartbeats while it was not running: when the reaper's gap
    /// since its last run is longer than [`STALL_GAP`] (or a quarter of the lease timeout, if
    /// longer), every lease deadline and every worker's last-seen time moves forward by the gap,
    /// so that time is never counted against a lease or a worker. Returns the gap then.
    fn stalled(&self, now: Instant) -> Option<Duration> {
        let mut inner = self.lock();
        let prev = inner.last_reap.replace(now)?;
        let gap = now.saturating_duration_since(prev);
        if gap <= STALL_GAP.max(self.config.lease_timeout / 4) {
            return None;
        }
        let fresh = now + self.config.lease_timeout;
        for l in inner.leases.values_mut() {
            // A heartbeat heard since the server resumed already renewed it: never past fresh.
            l.deadline = (l.deadline + gap).min(fresh);
        }
        for w in inner.workers.values_mut() {
            w.seen = (w.seen + gap).min(now);
        }
        Some(gap)
    }

    /// Expires leases and marks silent workers offline. Call it periodically (the server does,
    /// every ~second).
    pub async fn reap(&self) -> Result<(), Error> {
        let now = Instant::now();
        if let Some(gap) = self.stalled(now) {
            let ev = self
                .store
                .write(move |tx| {
                    Ok(tx.event(
                        "server_stalled",
                        None,
                        None,
                        format!(
                            "the server could not run for {:.1}s (stopped, paused or starved); \
                             leases and worker timeouts were extended by that time",
                            gap.as_secs_f64()
                        ),
                    )?)
                })
                .await?;
            self.publish(Live::Event(ev));
            return Ok(());
        }
        let (expired, lost_workers, forgotten) = {
            let mut inner = self.lock();
            let expired: Vec<(JobId, u32, u64)> = inner
                .leases
                .iter()
                .filter(|(_, l)| l.deadline <= now)
                .map(|(j, l)| (*j, l.attempt, l.lease))
                .collect();
            let mut lost = Vec::new();
            let forget_before =
                now_ms().saturating_sub(self.config.forget_offline_after.as_millis() as u64);
            let forgotten = inner
                .workers
                .values()
                .any(|w| {
                    w.worker.state == WorkerState::Offline && w.worker.last_seen < forget_before
                })
                .then_some(forget_before);
            for w in inner.workers.values_mut() {
                if w.worker.state != WorkerState::Offline
                    && now.duration_since(w.seen) > self.config.lease_timeout
                {
                    w.worker.state = WorkerState::Offline;
                    w.worker.usage = Default::default();
                    lost.push(w.worker.clone());
                }
            }
            (expired, lost, forgotten)
        };
        for (job_id, attempt, lease) in expired {
            self.expire(job_id, attempt, lease).await?;
        }
        if let Some(before) = forgotten {
            // Chosen again inside the write, under the registry's lock: a worker that came
            // back meanwhile stays, and memory and store forget the same ones.
            let registry = self.inner.clone();
            self.store
                .write(move |tx| {
                    let mut inner = registry.lock().unwrap_or_else(|p| p.into_inner());
                    let gone: Vec<String> = inner
                        .workers
                        .values()
                        .filter(|w| {
                            w.worker.state == WorkerState::Offline && w.worker.last_seen < before
                        })
                        .map(|w| w.worker.id.clone())
                        .collect();
                    for id in &gone {
                        tx.delete_worker(id)?;
                        inner.workers.remove(id);
                    }
                    Ok(())
                })
                .await?;
        }
        for w in lost_workers {
            let name = w.name.clone();
            let id = w.id.clone();
            let ev = self
                .store
                .write(move |tx| {
                    tx.save_worker(&w)?;
                    Ok(tx.event(
                        "worker_lost",
                        None,
                        Some(&w.id),
                        format!("worker {name} went silent (no heartbeat)"),
                    )?)
                })
                .await?;
            self.publish(Live::Event(ev));
            if let Some(w) = self.lock().workers.get(&id) {
                self.publish(Live::Worker(Box::new(w.worker.clone())));
            }
        }
        // The gap the next run measures starts now: a long run of expiries is not a stall.
        self.lock().last_reap = Some(Instant::now());
        Ok(())
    }

    async fn expire(&self, job_id: JobId, attempt: u32, lease: u64) -> Result<(), Error> {
        let inner = self.inner.clone();
        let result = self
            .store
            .write(move |tx| {
                let Some(prev) = tx.job(job_id)? else {
                    return Ok(None);
                };
                if prev.state != JobState::Running
                    || prev.lease != Some(lease)
                    || prev.attempt != attempt
                {
                    return Ok(None);
                }
                let rules = crate::adaptive::rules_of(tx, &prev)?;
                let mut job = prev.clone();
                if let Some(a) = job.attempts.last_mut() {
                    a.ended_at = Some(now_ms());
                    a.outcome = Some("lease expired".into());
                }
                let expired = job
                    .attempts
                    .iter()
                    .filter(|a| a.outcome.as_deref() == Some("lease expired"))
                    .count() as u32;
                let (kind, message) = if job.cancel_requested {
                    end_cancelled(&mut job);
                    (
                        "job_cancelled",
                        format!("job {job_id} cancelled (its worker vanished)"),
                    )
                } else if expired >= job.spec.max_attempts {
                    job.state = JobState::Lost;
                    job.lease = None;
                    job.finished_at = Some(now_ms());
                    job.error = Some(format!(
                        "lost: its worker vanished on all {expired} attempts (lease expired)"
                    ));
                    (
                        "job_lost",
                        format!("job {job_id} lost after {expired} attempts"),
                    )
                } else {
                    job.state = JobState::Queued;
                    job.lease = None;
                    job.worker = None;
                    job.worker_name = None;
                    (
                        "job_requeued",
                        format!("job {job_id} requeued: attempt {attempt}'s lease expired"),
                    )
                };
                tx.save_job(Some(&prev), &job)?;
                let ev = tx.event(kind, Some(job_id), prev.worker.as_deref(), message)?;
                let fx = if job.state.is_terminal() {
                    after_end(tx, &inner, &job, rules)?
                } else {
                    StudyEffects::default()
                };
                Ok(Some((job, ev, fx)))
            })
            .await?;
        {
            let mut inner = self.lock();
            if inner.leases.get(&job_id).is_some_and(|l| l.lease == lease) {
                drop(inner);
                self.forget_lease(job_id, lease);
            } else if !inner.leases.contains_key(&job_id) {
                // A cancel of a newer attempt (leased meanwhile) stays.
                inner.cancels.remove(&job_id);
            }
        }
        if let Some((job, ev, fx)) = result {
            self.metrics.lease_expiries.inc();
            if job.state == JobState::Queued {
                self.metrics
                    .requeues
                    .get_or_create(&[("reason", "lease_expired")])
                    .inc();
            }
            self.after_study(fx);
            self.publish(Live::Event(ev));
            self.publish(Live::Job(Box::new(job.clone())));
            if job.state == JobState::Queued {
                self.wake(std::iter::once(&job));
            }
        }
        Ok(())
    }

    // ---- telemetry -----------------------------------------------------------------------

    /// Writes the telemetry points that closed since the last flush (and closes the buckets
    /// of workers gone silent) in one store write; returns how many points. The server calls
    /// it every few seconds: heartbeats themselves only touch memory.
    pub async fn flush_telemetry(&self) -> Result<usize, Error> {
        let batch = {
            let mut t = self.telemetry.lock().unwrap_or_else(|p| p.into_inner());
            let closed = t.agg.close_due(now_ms());
            t.pending.extend(closed);
            std::mem::take(&mut t.pending)
        };
        if batch.is_empty() {
            return Ok(0);
        }
        let n = batch.len();
        // Volatile: a crash may lose the last seconds of telemetry, never a job's data.
        self.store
            .write_volatile(move |tx| Ok(tx.save_telemetry(&batch)?))
            .await?;
        Ok(n)
    }

    /// A worker's telemetry over `span`, oldest first: the stored points, the points waiting
    /// for the next flush, and the open one (the newest readings).
    pub fn telemetry(
        &self,
        worker_id: &str,
        span: crate::telemetry::Span,
    ) -> Result<Vec<crate::telemetry::Point>, Error> {
        let tier = span.tier();
        let since = now_ms().saturating_sub(span.millis());
        let mut points = self.store.read()?.telemetry(worker_id, tier, since)?;
        let t = self.telemetry.lock().unwrap_or_else(|p| p.into_inner());
        let newer = t
            .pending
            .iter()
            .filter(|c| c.worker == worker_id && c.tier == tier && c.point.at >= since)
            .map(|c| c.point.clone())
            .chain(t.agg.open_point(worker_id, tier));
        for p in newer {
            match points.binary_search_by_key(&p.at, |q| q.at) {
                Ok(i) => points[i] = p,
                Err(i) => points.insert(i, p),
            }
        }
        Ok(points)
    }

    /// Drops a forgotten worker's telemetry from memory.
    fn telemetry_forget(&self, worker_id: &str) {
        let mut t = self.telemetry.lock().unwrap_or_else(|p| p.into_inner());
        t.agg.forget(worker_id);
        t.pending.retain(|c| c.worker != worker_id);
    }

    /// Job counts per state, every state present.
    pub fn counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let read = self.store.read()?;
        Ok(read
            .job_counts()?
            .into_iter()
            .map(|(s, n)| (s.as_str().to_string(), n))
            .collect())
    }

    /// Records a result file of a job's current attempt. `place` puts the bytes (already staged
    /// on disk) where downloads find them; it runs only if the attempt is still current, inside
    /// the same write, so a stale attempt can never replace the current attempt's file.
    pub async fn add_file<P>(
        &self,
        job_id: JobId,
        attempt: u32,
        lease: u64,
        file: crate::model::FileInfo,
        place: P,
    ) -> Result<(), Error>
    where
        P: FnOnce() -> Result<(), Error> + Send + 'static,
    {
        self.check_lease(job_id, attempt, lease)?;
        self.store
            .write(move |tx| {
                let prev = current(tx, job_id, attempt, lease)?;
                let mut job = prev.clone();
                job.files.retain(|f| f.name != file.name);
                if job.files.len() >= MAX_FILES {
                    return Err(invalid(format!("a job keeps at most {MAX_FILES} files")));
                }
                // Checked and placed inside the write: no claim or expiry can come between
                // the lease check and the file taking its place.
                place()?;
                job.files.push(file);
                tx.save_job(Some(&prev), &job)?;
                Ok(())
            })
            .await
    }
}

/// Checks every spec of a submission and makes it typed; errors name the job's position.
fn normalize_specs(specs: Vec<JobSpec>) -> Result<Vec<Spec>, Error> {
    if specs.is_empty() {
        return Err(invalid("no jobs to submit"));
    }
    let several = specs.len() > 1;
    specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            spec.normalize().map_err(|e| {
                if several {
                    invalid(format!("job {}: {e}", i + 1))
                } else {
                    Error::Request(e)
                }
            })
        })
        .collect()
}

/// A study of another user may be extended only by an admin.
/// Who owns study `name` (its record's owner; for a study of jobs alone, its first job's
/// owner), refused (403 naming the owner) unless `by` may act on it.
fn study_owner(
    name: &str,
    record: Option<&StudyRecord>,
    jobs: &[Job],
    by: &Actor,
) -> Result<String, Error> {
    let owner = match (record, jobs.first()) {
        (Some(r), _) => r.owner.clone(),
        (None, Some(j)) => j.owner.clone(),
        (None, None) => return Ok(by.user.clone()),
    };
    if !by.may_act_on(&owner) {
        return Err(RequestError::Forbidden(format!(
            "study {name} belongs to {owner}: only they (or an admin) may add seeds to it or \
             retry its runs"
        ))
        .into());
    }
    Ok(owner)
}

fn refuse_others_study(prev: Option<&StudyRecord>, by: &Actor) -> Result<(), Error> {
    match prev {
        Some(p) if !by.may_act_on(&p.owner) => Err(RequestError::Forbidden(format!(
            "study {} belongs to {}: only they (or an admin) may add to it; name your study \
             differently",
            p.name, p.owner
        ))
        .into()),
        _ => Ok(()),
    }
}

/// Stores new queued jobs of `owner` for normalized specs inside a write transaction (none if
/// they would take the owner past their queued limit); returns them and the events to
/// publish once committed ([`Queue::announce`]).
fn insert_jobs(
    tx: &mut Tx<'_>,
    specs: Vec<Spec>,
    owner: &str,
) -> Result<(Vec<Job>, Vec<Event>), Error> {
    tx.check_queued_limit(owner, specs.len() as u64)?;
    insert_owned(tx, specs, owner)
}

/// [`insert_jobs`] without the queued limit: for the jobs a study the user submitted adds by
/// itself later (a sampler's next configuration), which must not fail the write that ended
/// another job.
fn insert_owned(
    tx: &mut Tx<'_>,
    specs: Vec<Spec>,
    owner: &str,
) -> Result<(Vec<Job>, Vec<Event>), Error> {
    let mut jobs = Vec::with_capacity(specs.len());
    let mut events = Vec::new();
    for spec in specs {
        let id = tx.next_id("next_job_id")?;
        let job = Job {
            id,
            spec,
            owner: owner.to_string(),
            state: JobState::Queued,
            attempt: 0,
            lease: None,
            worker: None,
            worker_name: None,
            cancel_requested: false,
            prune_reason: None,
            submitted_at: now_ms(),
            started_at: None,
            finished_at: None,
            exit_code: None,
            error: None,
            result: None,
            progress: Progress::default(),
            attempts: Vec::new(),
            files: Vec::new(),
            log_lines: 0,
            log_dropped: 0,
            warnings: 0,
            errors: 0,
            rows_deleted_at: None,
            logs_deleted_at: None,
        };
        tx.save_job(None, &job)?;
        if jobs.len() < 100 {
            events.push(tx.event(
                "job_submitted",
                Some(id),
                None,
                format!("job {id} submitted: {}", job.spec.describe()),
            )?);
        }
        jobs.push(job);
    }
    if jobs.len() >= 100 {
        let n = jobs.len();
        events.push(tx.event("jobs_submitted", None, None, format!("{n} jobs submitted"))?);
    }
    Ok((jobs, events))
}

/// Ends an attempt inside a write transaction (the lease was checked by the caller; `current`
/// checks it again here, before anything is written).
fn complete_in(
    tx: &mut Tx<'_>,
    inner: &Arc<Mutex<Inner>>,
    job_id: JobId,
    req: CompleteRequest,
) -> Result<(Job, Event, StudyEffects), Error> {
    let prev = current(tx, job_id, req.attempt, req.lease)?;
    let rules = crate::adaptive::rules_of(tx, &prev)?;
    let mut job = prev.clone();
    let outcome = req.outcome;
    job.state = outcome.state();
    // Stopped by its study's early stopping: pruned, not cancelled.
    if outcome == Outcome::Cancelled && job.prune_reason.is_some() {
        job.state = JobState::Pruned;
    }
    job.cancel_requested = false;
    job.finished_at = Some(now_ms());
    job.exit_code = req.exit_code;
    job.error = req.error.as_deref().map(|e| clip(e, MAX_ERROR_BYTES));
    if req.result.is_some() {
        job.result = req.result;
    }
    if let Some(a) = job.attempts.last_mut() {
        a.ended_at = job.finished_at;
        a.outcome = Some(job.state.as_str().to_string());
        a.worker_started_us = req.started_us;
    }
    if outcome == Outcome::Succeeded {
        job.progress.fraction = Some(1.0);
    }
    job.progress.eta_secs = None;
    job.progress.eta_bound = false;
    // Its stderr is its error output, whatever words it used (read now, written after the job).
    let errors = if outcome == Outcome::Failed && req.exit_code.is_some_and(|c| c != 0) {
        tx.stderr_as_errors(job_id, req.attempt)?
    } else {
        Vec::new()
    };
    job.errors += errors.len() as u64;
    // The first write: everything above only read (save_job reads its accounting first).
    tx.save_job(Some(&prev), &job)?;
    tx.save_log_lines(job_id, &errors)?;
    let secs = req.duration_ms as f64 / 1000.0;
    let message = match (&job.error, outcome) {
        (Some(e), Outcome::Failed | Outcome::TimedOut) => {
            let first = e.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            format!(
                "job {job_id} {} after {secs:.1}s: {}",
                job.state,
                clip(first, 200)
            )
        }
        _ => format!("job {job_id} {} after {secs:.1}s", job.state),
    };
    let message = match &job.prune_reason {
        Some(why) if job.state == JobState::Pruned => format!("job {job_id} {why}"),
        _ => message,
    };
    let ev = tx.event(
        &format!("job_{}", job.state.as_str()),
        Some(job_id),
        job.worker.as_deref(),
        message,
    )?;
    let fx = after_end(tx, inner, &job, rules)?;
    Ok((job, ev, fx))
}

/// What a write that ended or advanced a study's jobs leaves for after its commit: jobs it
/// changed and events to publish, jobs it inserted (tpe's proposals) to announce.
#[derive(Default)]
struct StudyEffects {
    changed: Vec<Job>,
    events: Vec<Event>,
    inserted: Vec<Job>,
}

/// After `job` (saved) ended inside a write: its study's step runs with `rules`, read before
/// the write's first change ([`crate::adaptive::rules_of`]), and its effects are absorbed
/// ([`absorb`]). A study that cannot take its step — a record of it does not decode — does not
/// stop its job from ending: the step is skipped whole (the records it may read are decoded
/// before it writes: [`crate::adaptive`]'s `read_ahead`) and an event says why. A storage error
/// still fails the operation, and its group.
fn after_end(
    tx: &mut Tx<'_>,
    inner: &Arc<Mutex<Inner>>,
    job: &Job,
    rules: crate::adaptive::Rules,
) -> Result<StudyEffects, Error> {
    use crate::adaptive::Rules;
    let Some(study) = job.spec.study.clone() else {
        return Ok(StudyEffects::default());
    };
    let (rules, damaged) = match rules {
        Rules::None => (None, None),
        Rules::Read(r) => (Some(r), None),
        Rules::Damaged(why) => (None, Some(why)),
    };
    let step = (|| {
        let fx = match rules {
            Some(r) => crate::adaptive::on_end(tx, job, r)?,
            None => Default::default(),
        };
        absorb(tx, inner, &study, fx)
    })();
    let (mut fx, why) = match (step, damaged) {
        (Err(e), _) if !is_damage(&e) => return Err(e),
        (Ok(fx), None) => return Ok(fx),
        (Ok(fx), Some(why)) => (fx, why),
        (Err(e), _) => (StudyEffects::default(), e.to_string()),
    };
    let id = job.id;
    fx.events.push(tx.event(
        "study_step_skipped",
        Some(id),
        None,
        format!("study {study}: its adaptive step after job {id} ended was skipped: {why}"),
    )?);
    Ok(fx)
}

/// Whether a study's step failed on the study itself (a record that does not decode; a
/// refused request, which no step makes today: kept so that one would skip the step rather
/// than fail the job's change) rather than on storage.
fn is_damage(e: &Error) -> bool {
    matches!(
        e,
        Error::Store(StoreError::Corrupt { .. }) | Error::Request(_)
    )
}

/// A study's step while its job streams rows: skipped where the study cannot take it
/// ([`is_damage`]; the job's end reports it), so the rows still go in.
fn skip_damaged<T: Default>(step: Result<T, Error>) -> Result<T, Error> {
    match step {
        Err(e) if is_damage(&e) => Ok(T::default()),
        other => other,
    }
}

/// How many configurations `tpe` may propose in one step when those before were not valid jobs.
const PROPOSAL_TRIES: u32 = 10;

/// Inside a write: inserts the configurations `tpe` proposed, records the study's end when none
/// of its jobs is open any more, and records the jobs an adaptive study stops as cancels (in
/// memory, once the write is visible, so a write that fails or aborts stops nothing).
fn absorb(
    tx: &mut Tx<'_>,
    inner: &Arc<Mutex<Inner>>,
    study: &str,
    fx: crate::adaptive::Effects,
) -> Result<StudyEffects, Error> {
    // The cancels take effect in memory only once this write is visible (never if it aborts).
    if !fx.stop.is_empty() {
        let (inner, stop) = (inner.clone(), fx.stop);
        tx.on_visible(move |visible| {
            if visible {
                let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
                for j in stop {
                    inner.cancels.insert(j, ());
                }
            }
        });
    }
    let mut out = StudyEffects {
        changed: fx.changed,
        events: fx.events,
        inserted: Vec::new(),
    };
    for (sub, first) in fx.propose {
        let Some(mut record) = tx.study(study)? else {
            continue;
        };
        let Some(submission) = record.submissions.get(sub as usize).cloned() else {
            continue;
        };
        let def = study::Definition {
            name: study.to_string(),
            template: submission.template.clone(),
            sweep: submission.sweep.clone(),
            confirm_large: true,
            search: submission.search.clone(),
            early_stop: submission.early_stop.clone(),
        };
        // A configuration the stored definition does not make valid jobs of (a later server's
        // checks) is dropped, its sample spent, and the study says so; `tpe` proposes the next
        // in its place (up to `PROPOSAL_TRIES` in one step, so a definition that makes no valid
        // job cannot flood the activity log), rather than failing a step whose judgements and
        // score are already written.
        let (mut config, mut tries) = (first, 0);
        let specs = loop {
            let refused = match normalize_specs(def.jobs_of(&config)) {
                Ok(specs) => break Some(specs),
                Err(e) => e,
            };
            out.events.push(tx.event(
                "study_step_skipped",
                None,
                None,
                format!(
                    "study {study}: tpe's configuration {} was not submitted: {refused}",
                    crate::search::config_key(&config)
                ),
            )?);
            tries += 1;
            if tries >= PROPOSAL_TRIES {
                break None;
            }
            match crate::adaptive::propose_again(tx, study, sub)? {
                Some(next) => config = next,
                None => break None,
            }
        };
        let Some(specs) = specs else {
            continue;
        };
        let owner = record.owner.clone();
        let (jobs, events) = insert_owned(tx, specs, &owner)?;
        crate::adaptive::add_cells(tx, study, sub, &jobs)?;
        record.submissions[sub as usize]
            .jobs
            .extend(jobs.iter().map(|j| j.id));
        tx.save_study(&record)?;
        out.events.extend(events);
        out.events.push(tx.event(
            "config_proposed",
            None,
            None,
            format!(
                "study {study}: tpe proposed {} ({} jobs)",
                crate::search::config_key(&config),
                jobs.len()
            ),
        )?);
        out.inserted.extend(jobs);
    }
    if tx.study_open(study)? == 0 {
        out.events.push(tx.event(
            "study_done",
            None,
            None,
            format!("study {study} is done: every job of it has ended"),
        )?);
    }
    Ok(out)
}

/// Inside a submit's write, after its jobs were inserted: leases a job to each parked claim
/// that one of them fits (oldest claim first, at most one per new job) and delivers those
/// claims, with the submit's events before them, as soon as the write is visible — before its
/// fsync. Returns the events still to publish and the jobs handed out.
///
/// A crash before the fsync undoes the submit (never acknowledged) and these claims together;
/// the worker that got one is refused at its first call (the lease counter jumps at every
/// open, so its lease is never current again) and drops it.
fn hand_off(
    tx: &mut Tx<'_>,
    inner: &Arc<Mutex<Inner>>,
    live: &broadcast::Sender<Live>,
    jobs: &[Job],
    events: Vec<Event>,
    lease_timeout: Duration,
    fair_share: Option<Duration>,
) -> Result<(Vec<Event>, Vec<JobId>), Error> {
    let parked: Vec<(u64, Capabilities, String, String)> = {
        let inner = inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .waiters
            .iter()
            .filter(|w| w.parked && jobs.iter().any(|j| w.caps.fits(&j.spec)))
            .take(jobs.len())
            .map(|w| {
                let (wid, wname) = (w.worker_id.clone(), w.worker_name.clone());
                (w.id, w.caps.clone(), wid, wname)
            })
            .collect()
    };
    let mut handed = Vec::new();
    for (id, caps, wid, wname) in parked {
        // Out of the list first: a claim that went away meanwhile is not served.
        let taken = {
            let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
            let pos = inner.waiters.iter().position(|w| w.id == id);
            pos.map(|p| (p, inner.waiters.remove(p)))
        };
        let Some((pos, mut waiter)) = taken else {
            continue;
        };
        match claim_in(tx, &caps, &wid, &wname, inner, lease_timeout, fair_share)? {
            Some((job, lease, ev)) => {
                // Woken meanwhile for a job it did not get (a requeue's): that wake goes on.
                if let Some((woken, spec)) = waiter.woken_for.take()
                    && woken != job.id
                {
                    let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
                    wake_one(&mut inner.waiters, woken, &spec, None);
                }
                handed.push((waiter.handoff.take(), wid, job, lease, ev))
            }
            None => {
                let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
                let pos = pos.min(inner.waiters.len());
                inner.waiters.insert(pos, waiter);
            }
        }
    }
    if handed.is_empty() {
        return Ok((events, Vec::new()));
    }
    let ids = handed.iter().map(|h| h.2.id).collect();
    let (inner, live) = (inner.clone(), live.clone());
    tx.on_visible(move |visible| {
        if visible {
            for e in events {
                let _ = live.send(Live::Event(e));
            }
        }
        for (sender, wid, job, lease, ev) in handed {
            if visible {
                record_claim(&inner, &wid, job.id);
                let _ = live.send(Live::Event(ev));
                let _ = live.send(Live::Job(Box::new(job.clone())));
            }
            if let Some(s) = sender {
                let _ = s.send(visible.then_some((job, lease)));
            }
        }
    });
    Ok((Vec::new(), ids))
}

/// The assignment a hand-off delivered.
fn handed_job(h: Result<HandOff, oneshot::error::RecvError>) -> Result<Option<Assignment>, Error> {
    match h {
        Ok(Some((job, lease))) => Ok(Some(Assignment {
            attempt: job.attempt,
            lease,
            job,
        })),
        _ => Err(Error::Store(StoreError::Redb(
            "the write that claimed a job for this worker was aborted; claim again".into(),
        ))),
    }
}

/// Notes a claimed job among its worker's running jobs (the lease itself is recorded by
/// [`claim_in`]).
fn record_claim(inner: &Mutex<Inner>, worker_id: &str, job: JobId) {
    let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(w) = inner.workers.get_mut(worker_id) {
        if !w.worker.running.contains(&job) {
            w.worker.running.push(job);
        }
        w.worker.state = WorkerState::Busy;
    }
}

/// Leases the first fitting queued job to a worker slot inside a write transaction.
fn claim_in(
    tx: &mut Tx<'_>,
    caps: &Capabilities,
    wid: &str,
    wname: &str,
    inner: &Mutex<Inner>,
    lease_timeout: Duration,
    fair_share: Option<Duration>,
) -> Result<Option<(Job, u64, Event)>, Error> {
    // Checked in the write, where a pause (also a write) cannot come between check and claim.
    if inner
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .workers
        .get(wid)
        .is_some_and(|w| w.worker.hold.is_some())
    {
        return Ok(None);
    }
    let now = now_ms();
    let found = match caps.max_job_secs {
        None => tx.next_job(caps, fair_share, now)?,
        // A worker whose allocation ends: only jobs expected to finish in time.
        Some(max) => {
            let mut rates: HashMap<String, Option<f64>> = HashMap::new();
            tx.next_job_where(caps, fair_share, now, |tx, job| {
                let rate = match &job.spec.study {
                    Some(s) => match rates.get(s) {
                        Some(r) => *r,
                        None => {
                            let r = fit::study_rate(&tx.study_jobs(s)?, now);
                            rates.insert(s.clone(), r);
                            r
                        }
                    },
                    None => None,
                };
                Ok(fit::fits_in(job, rate, max))
            })?
        }
    };
    let Some(prev) = found else {
        return Ok(None);
    };
    let lease = tx.next_id("next_lease_id")?;
    let mut job = prev.clone();
    job.state = JobState::Running;
    job.attempt += 1;
    job.lease = Some(lease);
    job.worker = Some(wid.to_string());
    job.worker_name = Some(wname.to_string());
    job.started_at = Some(now);
    job.finished_at = None;
    job.progress = Progress::default();
    job.attempts.push(Attempt {
        attempt: job.attempt,
        worker: wid.to_string(),
        worker_name: wname.to_string(),
        started_at: now,
        ended_at: None,
        outcome: None,
        worker_started_us: None,
    });
    tx.save_job(Some(&prev), &job)?;
    let ev = tx.event(
        "job_started",
        Some(job.id),
        Some(wid),
        format!("job {} attempt {} started on {wname}", job.id, job.attempt),
    )?;
    // The lease's deadline is recorded with the write, not after the caller's await: a claim
    // whose caller went away still expires. (If the commit fails, the reaper finds the job not
    // running and drops the lease.)
    let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    inner.leases.insert(
        job.id,
        LeaseState {
            lease,
            attempt: job.attempt,
            worker: wid.to_string(),
            deadline: Instant::now() + lease_timeout,
        },
    );
    Ok(Some((job, lease, ev)))
}

/// A result too large to keep is replaced by a note saying so: the job's outcome is kept (a
/// refused report would leave a finished job to expire and run again).
fn cap_result(req: &mut CompleteRequest) {
    let len = req
        .result
        .as_ref()
        .map(|r| serde_json::to_vec(r).map(|v| v.len()).unwrap_or(0))
        .unwrap_or(0);
    if len > MAX_RESULT_BYTES {
        req.result = Some(serde_json::Value::String(format!(
            "(a result of {len} bytes was dropped: results are kept up to {MAX_RESULT_BYTES} bytes; upload large results as files)"
        )));
    }
}

/// Whether `job` was ended by the report of this attempt and lease (so the same report again
/// is a repeat, not a stale report).
fn ended_by(job: &Job, attempt: u32, lease: u64) -> bool {
    job.state.is_terminal() && job.attempt == attempt && job.lease == Some(lease)
}

/// The job if (attempt, lease) is its current running lease; refused otherwise.
fn current(tx: &mut Tx<'_>, job_id: JobId, attempt: u32, lease: u64) -> Result<Job, Error> {
    let Some(job) = tx.job(job_id)? else {
        return Err(not_found(format!("job {job_id}")));
    };
    if job.state != JobState::Running || job.attempt != attempt || job.lease != Some(lease) {
        return Err(stale(job_id, attempt));
    }
    Ok(job)
}

/// An attempt outcome that gave the job back without spending an attempt.
fn is_give_back(outcome: &str) -> bool {
    outcome.starts_with("requeued") || outcome.starts_with("preempted")
}

fn end_cancelled(job: &mut Job) {
    job.state = JobState::Cancelled;
    job.lease = None;
    job.cancel_requested = false;
    job.finished_at = Some(now_ms());
    if let Some(a) = job.attempts.last_mut()
        && a.ended_at.is_none()
    {
        a.ended_at = job.finished_at;
        a.outcome = Some("cancelled".into());
    }
}

fn apply_progress(job: &mut Job, row: &Row) {
    let p = &mut job.progress;
    p.generation = row.generation.or(p.generation);
    p.evals = row.evals.or(p.evals);
    p.best = row.best.or(p.best);
    p.best_ever = row.best_ever.or(p.best_ever);
    p.mean = row.mean.or(p.mean);
    p.sigma = row.sigma.or(p.sigma);
    p.elapsed = row.elapsed.or(p.elapsed);
    if let (Some(evals), Some(max)) = (row.evals, job.spec.max_evals())
        && max > 0
        && !p.fraction_reported
    {
        p.fraction = Some((evals / max as f64).clamp(0.0, 1.0));
    }
}

fn new_worker_id() -> String {
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).expect("the OS random source works");
    format!("w-{}", hex::encode(b))
}

struct WaiterGuard<'a> {
    queue: &'a Queue,
    id: u64,
    /// The job the claim took, if it took one.
    took: Option<JobId>,
}

impl Drop for WaiterGuard<'_> {
    /// However the claim ends (a job, a timeout, its client gone), it stops waiting, and a
    /// wake it did not use goes to another claimer.
    fn drop(&mut self) {
        self.queue.pass_on(self.id, self.took);
    }
}

/// Lines kept per job in the log store.
pub const LOG_LINES_KEPT: u64 = MAX_LINES_PER_JOB;

/// The wait of a long poll that finds no job: somewhere in the last fifth of what was asked
/// (waits of a second or more), spread evenly by the claim's number.
///
/// Polls opened together would otherwise end together, and, each worker asking again at once,
/// stay in step for good: a fleet that connected in the same second (a server restart, a
/// cluster's workers starting) answered and took back all its polls at the same instant every
/// 30 s. With 5,000 workers that burst held heartbeats and row batches for up to half a second
/// (`--bench fleet`); spread, the polls drift apart within a few rounds.
fn spread_wait(wait: Duration, claim: u64) -> Duration {
    if wait < Duration::from_secs(1) {
        return wait;
    }
    // splitmix64: consecutive claim numbers map to values spread over [0, 1).
    let mut z = claim.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let unit = (z >> 11) as f64 / (1u64 << 53) as f64;
    wait.mul_f64(1.0 - unit / 5.0)
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "queue_fair_tests.rs"]
mod fair_tests;
