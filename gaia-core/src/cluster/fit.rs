//! Whether a job would finish before a worker's allocation ends: its expected duration from
//! its study's measured evaluations per second (pure; the queue reads the study's jobs).
//!
//! A worker near the end of its allocation claims with [`Capabilities::max_job_secs`]; the
//! queue then skips jobs expected to take longer, so they wait for a worker with time to finish
//! them instead of being started, preempted and started again.
//!
//! [`Capabilities::max_job_secs`]: crate::model::Capabilities::max_job_secs

use crate::model::{Job, JobState, Millis};

/// Evaluations per second of one job of a study, pooled over the jobs that have reported
/// evaluations: all their evaluations over all their running time (the current attempt of
/// each running job, the last one of each ended job). None until some job has both.
///
/// Pooled rather than averaged per job, so a job that ran for a second does not weigh as much
/// as one that ran for an hour.
pub fn study_rate(jobs: &[Job], now: Millis) -> Option<f64> {
    let (mut evals, mut secs) = (0.0f64, 0.0f64);
    for j in jobs {
        let Some(e) = j.progress.evals.filter(|e| e.is_finite() && *e > 0.0) else {
            continue;
        };
        let Some(start) = j.started_at else { continue };
        let end = match j.state {
            JobState::Running => now,
            JobState::Queued => continue,
            _ => match j.finished_at {
                Some(f) => f,
                None => continue,
            },
        };
        let s = end.saturating_sub(start) as f64 / 1000.0;
        if s > 0.0 {
            evals += e;
            secs += s;
        }
    }
    (evals > 0.0 && secs > 0.0).then(|| evals / secs)
}

/// Seconds `job` is expected to take: its evaluation budget at `rate` (its study's, from
/// [`study_rate`]), or its timeout if that is shorter (it cannot run longer). None when
/// neither is known: a job of unknown length.
///
/// The budget is an upper bound (an experiment may stop early, solved), so the estimate errs
/// on the side of leaving a job for a worker with more time.
pub fn expected_secs(job: &Job, rate: Option<f64>) -> Option<f64> {
    let by_rate = match (job.spec.max_evals(), rate) {
        (Some(budget), Some(r)) if r > 0.0 && r.is_finite() => Some(budget as f64 / r),
        _ => None,
    };
    let timeout = job.spec.timeout_secs.map(|t| t as f64);
    match (by_rate, timeout) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether `job` may start on a slot that has `max_secs` left: a job of unknown length may
/// (the worker stops claiming a margin before its end instead); a known one only if it is
/// expected to finish in time.
pub fn fits_in(job: &Job, rate: Option<f64>, max_secs: f64) -> bool {
    expected_secs(job, rate).is_none_or(|s| s <= max_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobSpec, Spec};

    fn job(state: JobState, evals: Option<f64>, start: Millis, end: Option<Millis>) -> Job {
        let spec = Spec::from(JobSpec::experiment("cma_es", 10_000));
        let mut j: Job = serde_json::from_value(serde_json::json!({
            "id": 1, "spec": spec, "state": "queued", "attempt": 0, "submitted_at": 0,
        }))
        .unwrap();
        j.state = state;
        j.progress.evals = evals;
        j.started_at = Some(start);
        j.finished_at = end;
        j
    }

    #[test]
    fn the_rate_pools_every_reported_evaluation_over_all_running_time() {
        let jobs = [
            // 1,000 evals in 10 s, ended.
            job(JobState::Succeeded, Some(1000.0), 0, Some(10_000)),
            // 3,000 evals in 10 s so far, running at now = 20 s.
            job(JobState::Running, Some(3000.0), 10_000, None),
            // Nothing reported yet: not counted.
            job(JobState::Running, None, 15_000, None),
            job(JobState::Queued, None, 0, None),
        ];
        let r = study_rate(&jobs, 20_000).unwrap();
        assert!((r - 200.0).abs() < 1e-9, "{r}");
        assert_eq!(study_rate(&jobs[2..], 20_000), None);
        assert_eq!(study_rate(&[], 0), None);
    }

    #[test]
    fn a_job_fits_when_its_budget_at_the_rate_or_its_timeout_is_within_the_time_left() {
        let mut j = job(JobState::Queued, None, 0, None);
        // 10,000 evals at 100/s: 100 s.
        assert_eq!(expected_secs(&j, Some(100.0)), Some(100.0));
        assert!(fits_in(&j, Some(100.0), 100.0));
        assert!(!fits_in(&j, Some(100.0), 99.0));
        // Unknown length: it may start (the worker's end margin guards it).
        assert_eq!(expected_secs(&j, None), None);
        assert!(fits_in(&j, None, 1.0));
        // A timeout bounds it either way.
        j.spec.timeout_secs = Some(30);
        assert_eq!(expected_secs(&j, None), Some(30.0));
        assert_eq!(expected_secs(&j, Some(100.0)), Some(30.0));
        assert!(!fits_in(&j, None, 29.0));
        // A nonsensical rate is no rate.
        j.spec.timeout_secs = None;
        assert_eq!(expected_secs(&j, Some(0.0)), None);
        assert_eq!(expected_secs(&j, Some(f64::INFINITY)), None);
    }
}
