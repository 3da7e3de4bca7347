//! Steering single workers: pause, resume, drain and forget (admin actions, audited), and the
//! quarantine the server puts on a worker whose recent attempts all failed at setup. A hold
//! is kept with the worker in the store, so it outlives restarts of the server and of the
//! worker; the worker learns it at its next heartbeat and stops claiming, and the queue
//! refuses its claims meanwhile (checked inside the claim's write).

use std::sync::Mutex;

use super::{Inner, Live, Queue, WorkerLive, invalid, not_found};
use crate::error::{Error, RequestError};
use crate::model::{AuditEntry, Event, Hold, HoldKind, Job, Worker, WorkerState, now_ms};
use crate::store::Tx;

/// The state a worker shows: offline, held, draining at its own request, busy or idle.
pub(super) fn live_state(w: &Worker, worker_draining: bool) -> WorkerState {
    if w.state == WorkerState::Offline {
        return WorkerState::Offline;
    }
    match &w.hold {
        Some(h) => h.state(w.running.len()),
        None if worker_draining => WorkerState::Draining,
        None if w.running.is_empty() => WorkerState::Idle,
        None => WorkerState::Busy,
    }
}

/// Finds a registered worker by id, or by name when exactly one has it.
fn find<'a>(inner: &'a mut Inner, who: &str) -> Result<&'a mut WorkerLive, Error> {
    if inner.workers.contains_key(who) {
        return Ok(inner.workers.get_mut(who).expect("just checked"));
    }
    let ids: Vec<String> = inner
        .workers
        .values()
        .filter(|w| w.worker.name == who)
        .map(|w| w.worker.id.clone())
        .collect();
    match ids.as_slice() {
        [] => Err(not_found(format!("worker {who:?}"))),
        [id] => Ok(inner.workers.get_mut(id).expect("just found")),
        many => Err(Error::Request(RequestError::Conflict(format!(
            "{} workers are named {who:?} ({}): name one by its id",
            many.len(),
            many.join(", ")
        )))),
    }
}

impl Queue {
    /// How many registered workers are in each state (every state present), without copying
    /// the registry: what `/metrics` shows.
    pub fn worker_state_counts(&self) -> Vec<(WorkerState, u64)> {
        let mut out: Vec<(WorkerState, u64)> = WorkerState::ALL.iter().map(|s| (*s, 0)).collect();
        for w in self.lock().workers.values() {
            if let Some(slot) = out.iter_mut().find(|(s, _)| *s == w.worker.state) {
                slot.1 += 1;
            }
        }
        out
    }

    /// One worker, by id or by its unique name.
    pub fn worker(&self, who: &str) -> Result<Worker, Error> {
        let mut inner = self.lock();
        Ok(find(&mut inner, who)?.worker.clone())
    }

    /// Pauses (claims nothing until resumed) or drains (the same, and with `exit` the worker
    /// process ends once its running jobs are done) a worker, by id or name. Running jobs
    /// finish either way. Recorded in the audit log as `actor`'s.
    pub async fn hold_worker(
        &self,
        who: &str,
        kind: HoldKind,
        reason: Option<String>,
        exit: bool,
        actor: &str,
    ) -> Result<(Worker, AuditEntry), Error> {
        if kind == HoldKind::Quarantined {
            return Err(invalid("only the server quarantines a worker"));
        }
        if exit && kind != HoldKind::Draining {
            return Err(invalid("exit goes with drain only"));
        }
        let reason = reason
            .map(|r| super::clip(r.trim(), 500))
            .unwrap_or_default();
        crate::model::validate_text("the reason", &reason)?;
        let (registry, who, actor) = (self.inner.clone(), who.to_string(), actor.to_string());
        let (w, ev, audit) = self
            .store
            .write(move |tx| {
                let mut inner = registry.lock().unwrap_or_else(|p| p.into_inner());
                let live = find(&mut inner, &who)?;
                live.worker.hold = Some(Hold {
                    kind,
                    reason: reason.clone(),
                    since: now_ms(),
                    by: actor.clone(),
                    exit,
                });
                live.worker.state = live_state(&live.worker, false);
                let w = live.worker.clone();
                tx.save_worker(&w)?;
                let what = match (kind, exit) {
                    (HoldKind::Paused, _) => {
                        "paused: it finishes its running jobs and claims no new ones".to_string()
                    }
                    (_, true) => "draining: it finishes its running jobs, then exits".to_string(),
                    _ => {
                        "draining: it finishes its running jobs and claims no new ones".to_string()
                    }
                };
                let note = if reason.is_empty() {
                    String::new()
                } else {
                    format!(" ({reason})")
                };
                let ev = tx.event(
                    &format!("worker_{kind}"),
                    None,
                    Some(&w.id),
                    format!("worker {} {what}, by {actor}{note}", w.name),
                )?;
                let action = if kind == HoldKind::Paused {
                    "worker_pause"
                } else {
                    "worker_drain"
                };
                let detail = format!("{}{}", if exit { "exit; " } else { "" }, reason);
                let audit = tx.audit(&actor, action, &w.name, detail)?;
                Ok((w, ev, audit))
            })
            .await?;
        self.publish(Live::Event(ev));
        self.publish(Live::Worker(Box::new(w.clone())));
        Ok((w, audit))
    }

    /// Lifts a worker's pause, drain or quarantine: it claims again at its next heartbeat.
    pub async fn resume_worker(
        &self,
        who: &str,
        actor: &str,
    ) -> Result<(Worker, AuditEntry), Error> {
        let (registry, who, actor) = (self.inner.clone(), who.to_string(), actor.to_string());
        let (w, ev, audit) = self
            .store
            .write(move |tx| {
                let mut inner = registry.lock().unwrap_or_else(|p| p.into_inner());
                let live = find(&mut inner, &who)?;
                let Some(old) = live.worker.hold.take() else {
                    return Err(Error::Request(RequestError::Conflict(format!(
                        "worker {} is not paused, draining or quarantined (it is {})",
                        live.worker.name, live.worker.state
                    ))));
                };
                live.worker.state = live_state(&live.worker, false);
                let w = live.worker.clone();
                inner.setup_failures.remove(&w.id);
                tx.save_worker(&w)?;
                let ev = tx.event(
                    "worker_resumed",
                    None,
                    Some(&w.id),
                    format!("worker {} resumed by {actor} (was {})", w.name, old.kind),
                )?;
                let audit = tx.audit(
                    &actor,
                    "worker_resume",
                    &w.name,
                    format!("was {}", old.kind),
                )?;
                Ok((w, ev, audit))
            })
            .await?;
        self.publish(Live::Event(ev));
        self.publish(Live::Worker(Box::new(w.clone())));
        Ok((w, audit))
    }

    /// Forgets an offline worker: its registration, hold and telemetry. An online worker is
    /// refused (it would register again at its next call): stop it, or drain it with exit.
    pub async fn forget_worker(
        &self,
        who: &str,
        actor: &str,
    ) -> Result<(Worker, AuditEntry), Error> {
        let (registry, who, actor) = (self.inner.clone(), who.to_string(), actor.to_string());
        let (w, ev, audit) = self
            .store
            .write(move |tx| {
                let mut inner = registry.lock().unwrap_or_else(|p| p.into_inner());
                let live = find(&mut inner, &who)?;
                if live.worker.state != WorkerState::Offline {
                    return Err(Error::Request(RequestError::Conflict(format!(
                        "worker {} is online ({}): stop it first (or gaia worker drain {} --exit), then forget it",
                        live.worker.name, live.worker.state, live.worker.name
                    ))));
                }
                let w = live.worker.clone();
                tx.delete_worker(&w.id)?;
                let points = tx.delete_telemetry(&w.id)?;
                inner.workers.remove(&w.id);
                inner.setup_failures.remove(&w.id);
                let ev = tx.event(
                    "worker_forgotten",
                    None,
                    Some(&w.id),
                    format!("worker {} ({}) forgotten by {actor}", w.name, w.id),
                )?;
                let audit = tx.audit(
                    &actor,
                    "worker_forget",
                    &w.name,
                    format!("id {}, {points} telemetry points deleted", w.id),
                )?;
                Ok((w, ev, audit))
            })
            .await?;
        self.telemetry_forget(&w.id);
        self.publish(Live::Event(ev));
        Ok((w, audit))
    }
}

/// After an attempt ended by its worker's report, inside the same write: counts a failure at
/// setup ([`crate::triage::setup_failure`]) towards its worker's streak (any other ending
/// breaks it) and quarantines the worker when the streak reaches `after` (0: never). So the
/// claim that rides on this report already sees the quarantine.
pub(super) fn note_outcome_in(
    tx: &mut Tx<'_>,
    inner: &Mutex<Inner>,
    job: &Job,
    duration_ms: u64,
    after: u32,
) -> Result<Option<(Worker, Event)>, Error> {
    let Some(worker_id) = job.worker.as_deref() else {
        return Ok(None);
    };
    let failure = crate::triage::setup_failure(job, duration_ms);
    let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
    let Some(reason) = failure else {
        inner.setup_failures.remove(worker_id);
        return Ok(None);
    };
    let streak = {
        let s = inner
            .setup_failures
            .entry(worker_id.to_string())
            .or_insert(0);
        *s += 1;
        *s
    };
    let Some(live) = inner.workers.get_mut(worker_id) else {
        return Ok(None);
    };
    if after == 0 || streak < after || live.worker.hold.is_some() {
        return Ok(None);
    }
    let reason = format!(
        "its last {streak} jobs failed at setup (the last, job {}: {reason})",
        job.id
    );
    live.worker.hold = Some(Hold {
        kind: HoldKind::Quarantined,
        reason: reason.clone(),
        since: now_ms(),
        by: "server".into(),
        exit: false,
    });
    live.worker.state = live_state(&live.worker, false);
    let w = live.worker.clone();
    tx.save_worker(&w)?;
    let ev = tx.event(
        "worker_quarantined",
        Some(job.id),
        Some(&w.id),
        format!(
            "worker {} quarantined: {reason}; it claims no jobs until an admin runs gaia worker resume {}",
            w.name, w.name
        ),
    )?;
    Ok(Some((w, ev)))
}
