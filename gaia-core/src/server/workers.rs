//! Workers: register, heartbeat, leave, claim (the long poll), and the registry's list; one
//! worker, its telemetry, and the admin's pause, resume, drain and forget.

use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;

use super::App;
use super::http::{HResult, HttpError, Query, blocking, ok, parse_json, read_body};
use crate::model::{HoldKind, validate_name};
use crate::protocol::{
    ClaimRequest, ClaimResponse, HeartbeatRequest, HoldRequest, RegisterRequest, RegisterResponse,
    TelemetryResponse, WorkerList,
};
use crate::telemetry::{Span, TIERS};

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

/// The name of the token that made a request (from the router's auth check).
pub(crate) fn actor(req: &Request<Incoming>) -> String {
    super::auth::audit_name(req.extensions().get::<super::auth::Caller>())
}

/// A body that may be empty: then all defaults.
fn hold_request(body: &[u8]) -> Result<HoldRequest, HttpError> {
    if body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(HoldRequest::default());
    }
    parse_json(body)
}

pub(crate) fn get_worker(app: &App, who: &str) -> HResult {
    ok(&app.queue.worker(who)?)
}

pub(crate) async fn hold(app: &App, who: &str, kind: HoldKind, req: Request<Incoming>) -> HResult {
    let by = actor(&req);
    let (_, body) = read_body(req).await?;
    let h = hold_request(&body)?;
    let (w, _) = app
        .queue
        .hold_worker(who, kind, h.reason, h.exit, &by)
        .await?;
    ok(&w)
}

pub(crate) async fn resume(app: &App, who: &str, req: Request<Incoming>) -> HResult {
    let by = actor(&req);
    let (w, _) = app.queue.resume_worker(who, &by).await?;
    ok(&w)
}

pub(crate) async fn forget(app: &App, who: &str, req: Request<Incoming>) -> HResult {
    let by = actor(&req);
    let (w, _) = app.queue.forget_worker(who, &by).await?;
    ok(&w)
}

pub(crate) fn telemetry(app: &App, who: &str, q: &Query) -> HResult {
    let span: Span = q
        .get("span")
        .filter(|s| !s.is_empty())
        .unwrap_or("hour")
        .parse()
        .map_err(HttpError::bad)?;
    let w = app.queue.worker(who)?;
    let points = app.queue.telemetry(&w.id, span)?;
    ok(&TelemetryResponse {
        worker: w.id,
        span: q.get("span").unwrap_or("hour").to_string(),
        step_ms: TIERS[span.tier()].step_ms,
        points,
    })
}
