//! `GET /api/v1/queue/demand`: how many queued jobs a worker with given capabilities could run,
//! the number an autoscaler starts workers for (`gaia slurm autoscale`, a KEDA trigger).

use super::App;
use super::http::{HResult, HttpError, Query, blocking, ok};
use crate::model::{Capabilities, JobKind, JobState};
use crate::protocol::QueueDemand;

/// Capabilities from the query: `kinds` (comma-separated; default every kind), `gpus` (default
/// 0), `memory_mb` (default: no limit), `tags` (comma-separated; default none).
pub(crate) fn capabilities(query: &Query) -> Result<Capabilities, HttpError> {
    let list = |k: &str| -> Vec<String> {
        query
            .get(k)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let kinds = match list("kinds") {
        k if k.is_empty() => JobKind::ALL.to_vec(),
        k => k
            .iter()
            .map(|s| s.parse::<JobKind>().map_err(HttpError::from))
            .collect::<Result<_, _>>()?,
    };
    Ok(Capabilities {
        kinds,
        gpus: query.parse("gpus")?.unwrap_or(0),
        memory_mb: query.parse("memory_mb")?.unwrap_or(u64::MAX),
        tags: list("tags"),
        max_job_secs: None,
    })
}

pub(crate) async fn demand(app: &App, query: &Query) -> HResult {
    let caps = capabilities(query)?;
    let store = app.store.clone();
    let counts = app.queue.counts()?;
    // The running jobs are the registry's (few), not a scan of every job.
    let running_ids: Vec<u64> = app
        .queue
        .workers()
        .into_iter()
        .flat_map(|w| w.running)
        .collect();
    let (queued, fitting, running_fitting) = blocking(move || {
        let r = store.read()?;
        let (queued, fitting) = r.queued_fitting(&caps)?;
        let mut running_fitting = 0;
        for id in running_ids {
            if let Some(j) = r.job(id)?
                && j.state == JobState::Running
                && caps.fits(&j.spec)
            {
                running_fitting += 1;
            }
        }
        Ok((queued, fitting, running_fitting))
    })
    .await?;
    ok(&QueueDemand {
        queued,
        fitting,
        running: counts.get(JobState::Running.as_str()).copied().unwrap_or(0),
        running_fitting,
        slots_wanted: fitting + running_fitting,
    })
}
