//! Workers: register, heartbeat, leave, claim (the long poll), and the registry's list.

use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;

use super::App;
use super::http::{HResult, blocking, ok, parse_json, read_body};
use crate::model::validate_name;
use crate::protocol::{
    ClaimRequest, ClaimResponse, HeartbeatRequest, RegisterRequest, RegisterResponse, WorkerList,
};

pub(crate) async fn register(app: &App, req: Request<Incoming>) -> HResult {
    let (_, body) = read_body(req).await?;
    let r: RegisterRequest = parse_json(&body)?;
    let w = app.queue.register(r).await?;
    let cfg = app.queue.config();
    ok(&RegisterResponse {
        worker_id: w.id,
        lease_timeout_ms: cfg.lease_timeout.as_millis() as u64,
        heartbeat_ms: cfg.heartbeat_interval.as_millis() as u64,
        server_version: crate::VERSION.to_string(),
    })
}

pub(crate) async fn heartbeat(app: &App, worker: &str, req: Request<Incoming>) -> HResult {
    let (_, body) = read_body(req).await?;
    let hb: HeartbeatRequest = parse_json(&body)?;
    ok(&app.queue.heartbeat(worker, hb)?)
}

pub(crate) async fn leave(app: &App, worker: &str) -> HResult {
    validate_name("worker id", worker)?;
    ok(&app.queue.leave(worker).await?)
}

pub(crate) async fn claim(app: &App, req: Request<Incoming>) -> HResult {
    // A claim may carry the previous job's report, result included.
    let (_, body) = read_body(req).await?;
    let c: ClaimRequest = parse_json(&body)?;
    let wait = Duration::from_millis(c.wait_ms);
    let (finished_error, assignment) = match c.finished {
        // The previous job's end and the next claim in one transaction.
        Some(f) => tokio::select! {
            r = app.queue.complete_and_claim(&c.worker_id, f, c.capabilities, wait) => r?,
            _ = app.stopped() => (None, None),
        },
        None => tokio::select! {
            a = app.queue.claim(&c.worker_id, c.capabilities, wait) => (None, a?),
            _ = app.stopped() => (None, None),
        },
    };
    let study_done = match (&assignment, c.watch_study) {
        (None, Some(study)) => {
            validate_name("study", &study)?;
            let store = app.store.clone();
            blocking(move || Ok(store.read()?.study_done(&study)?)).await?
        }
        _ => false,
    };
    ok(&ClaimResponse {
        assignment,
        finished_error,
        study_done,
    })
}

pub(crate) fn list_workers(app: &App) -> HResult {
    ok(&WorkerList {
        workers: app.queue.workers(),
    })
}
