//! The farm at a glance: liveness (`/healthz`), `status` (versions, counts, workers online)
//! and the dashboard overview's `summary` (job counts, workers per state, and per environment ×
//! method the best score and the spread of final scores across seeds).

use hyper::StatusCode;

use super::App;
use super::http::{HResult, HttpError, Query, blocking, json, ok};
use crate::model::{WorkerState, validate_name};
use crate::protocol::{Health, PROTOCOL_VERSION, StatusResponse};

/// Liveness: 503 once the store can no longer write, so a supervisor restarts the server.
pub(crate) fn healthz(app: &App) -> HResult {
    let writable = app.store.writable();
    Ok(json(
        if writable {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &Health {
            ok: writable,
            version: crate::VERSION.to_string(),
            protocol: PROTOCOL_VERSION,
        },
    ))
}

pub(crate) fn status(app: &App) -> HResult {
    let workers = app.queue.workers();
    ok(&StatusResponse {
        version: crate::VERSION.to_string(),
        protocol: PROTOCOL_VERSION,
        jobs: app.queue.counts()?,
        workers_online: app.queue.workers_online(),
        workers_total: workers.len() as u64,
        started_at: app.started_at,
        data_dir: app.data_dir().display().to_string(),
        methods: crate::model::SHIPPED_METHODS
            .iter()
            .map(|m| m.to_string())
            .collect(),
    })
}

/// `GET /api/v1/summary[?study=S]`: one pass over the jobs table that decodes only the fields
/// the overview needs, on a blocking thread (10,000 jobs take a few milliseconds in a release
/// build); the numbers come from [`crate::study::Overview`].
pub(crate) async fn summary(app: &App, q: &Query) -> HResult {
    let study = q.get("study").filter(|s| !s.is_empty()).map(str::to_string);
    if let Some(s) = &study {
        validate_name("study name", s)?;
    }
    let store = app.store.clone();
    let workers = app.queue.workers();
    let mut summary = blocking(move || {
        let started = std::time::Instant::now();
        let read = store.read()?;
        // A study nobody submitted is a mistyped name, not an empty study.
        if let Some(s) = &study
            && !read.has_study(s)?
        {
            return Err(HttpError::not_found(format!("study {s:?} not found")));
        }
        let mut overview = crate::study::Overview::default();
        read.for_each_job_brief(study.as_deref(), |j| overview.add(&j))?;
        let mut summary = overview.finish();
        summary.took_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(summary)
    })
    .await?;
    for s in [
        WorkerState::Idle,
        WorkerState::Busy,
        WorkerState::Draining,
        WorkerState::Offline,
    ] {
        summary.workers.insert(s.as_str().to_string(), 0);
    }
    for w in workers {
        *summary
            .workers
            .entry(w.state.as_str().to_string())
            .or_default() += 1;
    }
    ok(&summary)
}
