//! When a worker's allocation ends, and what the worker does as the end nears.
//!
//! A worker inside a batch scheduler's job has until the job's time limit. It learns the end
//! from `--deadline` (any scheduler), from `SLURM_JOB_END_TIME` (set by newer Slurm), or by
//! asking `squeue` (Slurm 22.05, Debian's, does not set the variable). Then, by
//! [`EndPolicy::standing`]:
//!
//! - while more than the end margin is left it claims jobs, telling the queue how long a job may
//!   take ([`crate::model::Capabilities::max_job_secs`]), so jobs its study has measured as
//!   longer wait for a worker with time to finish them;
//! - within the end margin it claims nothing more (a job of unknown length would most likely
//!   be cut off) and exits once its running jobs end, releasing the allocation;
//! - `preempt_before` the end it gives its running jobs back as preempted, so they are queued
//!   again at once with their output kept, before the scheduler's SIGKILL.

use std::time::Duration;

use crate::model::Millis;

/// The environment as a lookup (tests pass a map; the worker passes `std::env::var`).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The batch system or orchestrator this process runs under, judged from the variables each
/// sets in its jobs: all of them follow their SIGTERM with a SIGKILL seconds later.
pub fn scheduler(env: Env<'_>) -> Option<&'static str> {
    [
        ("SLURM_JOB_ID", "Slurm"),
        ("KUBERNETES_SERVICE_HOST", "Kubernetes"),
        ("PBS_JOBID", "PBS"),
        ("LSB_JOBID", "LSF"),
        ("_CONDOR_JOB_AD", "HTCondor"),
    ]
    .into_iter()
    .find(|(var, _)| env(var).is_some())
    .map(|(_, name)| name)
}

/// Where a worker's allocation end comes from.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Allocation {
    /// No known end (a workstation, a Kubernetes pod, a cloud machine).
    #[default]
    Open,
    /// A fixed end, and where it was read.
    EndsAt { at: Millis, source: &'static str },
    /// Inside a Slurm job that does not say its end time: `squeue` knows it (asked again now
    /// and then, as an administrator may move the time limit).
    Slurm { job_id: String },
}

impl Allocation {
    /// The allocation of a worker given `deadline` (`--deadline`, which wins), else from the
    /// environment.
    pub fn detect(deadline: Option<Millis>, env: Env<'_>) -> Allocation {
        if let Some(at) = deadline {
            return Allocation::EndsAt {
                at,
                source: "--deadline",
            };
        }
        if let Some(at) = env("SLURM_JOB_END_TIME")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&s| s > 0)
        {
            return Allocation::EndsAt {
                at: at * 1000,
                source: "SLURM_JOB_END_TIME",
            };
        }
        match env("SLURM_JOB_ID") {
            Some(job_id) => Allocation::Slurm { job_id },
            None => Allocation::Open,
        }
    }

    /// The end now: None for an open allocation (or a Slurm job without a time limit); Err
    /// when `squeue` could not say.
    pub fn end(&self) -> Result<Option<Millis>, String> {
        match self {
            Allocation::Open => Ok(None),
            Allocation::EndsAt { at, .. } => Ok(Some(*at)),
            Allocation::Slurm { job_id } => squeue_end(job_id),
        }
    }

    /// Where the end comes from, for messages.
    pub fn source(&self) -> String {
        match self {
            Allocation::Open => "none".into(),
            Allocation::EndsAt { source, .. } => (*source).into(),
            Allocation::Slurm { job_id } => format!("squeue -j {job_id}"),
        }
    }

    /// Whether the end may move and should be asked again now and then.
    pub fn refreshes(&self) -> bool {
        matches!(self, Allocation::Slurm { .. })
    }
}

/// Asks `squeue` for a Slurm job's end time (epoch seconds through `SLURM_TIME_FORMAT=%s`, so
/// no time zone is involved).
pub fn squeue_end(job_id: &str) -> Result<Option<Millis>, String> {
    let out = std::process::Command::new("squeue")
        .args(["--noheader", "--jobs", job_id, "--format", "%e"])
        .env("SLURM_TIME_FORMAT", "%s")
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run squeue: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "squeue -j {job_id} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_squeue_end(&String::from_utf8_lossy(&out.stdout))
}

/// Reads `squeue -h -o %e` output with `SLURM_TIME_FORMAT=%s`: epoch seconds, or a word for
/// "no end" (`N/A`, `Unknown`, `NONE`, `INFINITE`). Empty output means the job is not known.
pub fn parse_squeue_end(out: &str) -> Result<Option<Millis>, String> {
    let line = out.lines().map(str::trim).find(|l| !l.is_empty());
    let Some(line) = line else {
        return Err("squeue does not know this job".into());
    };
    if let Ok(secs) = line.parse::<u64>() {
        return Ok((secs > 0).then_some(secs * 1000));
    }
    match line.to_ascii_lowercase().as_str() {
        "n/a" | "unknown" | "none" | "infinite" | "unlimited" => Ok(None),
        _ => Err(format!(
            "squeue gave an end time GAIA cannot read: {line:?}"
        )),
    }
}

/// Reads `--deadline`: an RFC 3339 time with its zone (`2026-12-03T18:00:00Z`), `@` and Unix
/// seconds (`@1796568849`), or a duration from `now` (`3600`, `90m`, `4h`, `3h30m`, `1d`).
pub fn parse_deadline(s: &str, now: Millis) -> Result<Millis, String> {
    let t = s.trim();
    if let Some(epoch) = t.strip_prefix('@') {
        return epoch
            .parse::<u64>()
            .map(|e| e * 1000)
            .map_err(|_| format!("{s:?}: after @ give Unix seconds, like @1796568849"));
    }
    if t.contains('-') || t.contains(':') {
        return crate::time::parse_rfc3339(t);
    }
    parse_duration(t)
        .map(|d| now + d.as_millis() as u64)
        .map_err(|e| {
            format!("{e}; a deadline is a time (2026-12-03T18:00:00Z), @unix-seconds, or a duration from now (3600, 90m, 4h, 3h30m)")
        })
}

/// A duration written as seconds (`3600`) or with units (`1d2h`, `3h30m`, `90m`, `45s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration"));
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in t.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit = match c {
            'd' => 86_400,
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return Err(format!("{s:?} is not a duration")),
        };
        let n: u64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration"))?;
        total = total.saturating_add(n.saturating_mul(unit));
        num.clear();
    }
    if !num.is_empty() || t.is_empty() {
        return Err(format!("{s:?} is not a duration"));
    }
    Ok(Duration::from_secs(total))
}

/// How a worker treats the end of its allocation.
#[derive(Clone, Debug, PartialEq)]
pub struct EndPolicy {
    /// No job of unknown length is claimed this close to the end (default 120 s).
    pub end_margin: Duration,
    /// Running jobs are given back (preempted) this long before the end; zero leaves it to
    /// the scheduler's own signal (Slurm's `--signal`, its SIGTERM at the time limit).
    pub preempt_before: Duration,
}

/// What a worker with a known end does now.
#[derive(Clone, Debug, PartialEq)]
pub enum Standing {
    /// Claim jobs expected to take at most this many seconds.
    Claim { max_job_secs: f64 },
    /// Claim nothing more; let running jobs finish.
    StopClaiming { left_secs: f64 },
    /// Give running jobs back now.
    GiveBack { left_secs: f64 },
}

impl EndPolicy {
    /// The defaults for a worker that stops a job with `kill_grace` between SIGTERM and
    /// SIGKILL: stop claiming 2 minutes before the end; give jobs back early enough for the
    /// kill grace and 15 s to send the last rows.
    pub fn for_kill_grace(kill_grace: Duration) -> EndPolicy {
        EndPolicy {
            end_margin: Duration::from_secs(120),
            preempt_before: kill_grace + Duration::from_secs(15),
        }
    }

    /// What to do at `now` with the allocation ending at `end`.
    pub fn standing(&self, end: Millis, now: Millis) -> Standing {
        let left_secs = (end as f64 - now as f64) / 1000.0;
        let before = self.preempt_before.as_secs_f64();
        if before > 0.0 && left_secs <= before {
            Standing::GiveBack { left_secs }
        } else if left_secs <= self.end_margin.as_secs_f64() || left_secs <= 0.0 {
            Standing::StopClaiming { left_secs }
        } else {
            Standing::Claim {
                max_job_secs: left_secs - before,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn the_scheduler_is_known_by_the_variables_it_sets() {
        assert_eq!(scheduler(&env(&[("SLURM_JOB_ID", "7")])), Some("Slurm"));
        assert_eq!(
            scheduler(&env(&[("KUBERNETES_SERVICE_HOST", "10.0.0.1")])),
            Some("Kubernetes")
        );
        assert_eq!(scheduler(&env(&[("PBS_JOBID", "1.pbs")])), Some("PBS"));
        assert_eq!(scheduler(&env(&[("HOME", "/root")])), None);
    }

    #[test]
    fn the_end_comes_from_the_deadline_then_slurms_variable_then_squeue() {
        let slurm = env(&[("SLURM_JOB_ID", "42"), ("SLURM_JOB_END_TIME", "1796568849")]);
        assert_eq!(
            Allocation::detect(Some(5_000), &slurm),
            Allocation::EndsAt {
                at: 5_000,
                source: "--deadline"
            }
        );
        assert_eq!(
            Allocation::detect(None, &slurm),
            Allocation::EndsAt {
                at: 1_796_568_849_000,
                source: "SLURM_JOB_END_TIME"
            }
        );
        // Slurm 22.05 sets no end time: ask squeue.
        let old = env(&[("SLURM_JOB_ID", "42")]);
        let a = Allocation::detect(None, &old);
        assert_eq!(
            a,
            Allocation::Slurm {
                job_id: "42".into()
            }
        );
        assert!(a.refreshes());
        assert_eq!(Allocation::detect(None, &env(&[])), Allocation::Open);
        assert_eq!(Allocation::Open.end(), Ok(None));
    }

    #[test]
    fn squeue_end_times_are_read_as_epoch_seconds_or_no_end() {
        assert_eq!(
            parse_squeue_end("1796568849\n"),
            Ok(Some(1_796_568_849_000))
        );
        assert_eq!(parse_squeue_end("N/A\n"), Ok(None));
        assert_eq!(parse_squeue_end("Unknown"), Ok(None));
        assert!(parse_squeue_end("").is_err());
        assert!(parse_squeue_end("2026-12-06T14:54:09").is_err());
    }

    #[test]
    fn deadlines_are_times_epochs_or_durations_from_now() {
        let now = 1_000_000;
        assert_eq!(parse_deadline("3600", now), Ok(now + 3_600_000));
        assert_eq!(parse_deadline("3h30m", now), Ok(now + 12_600_000));
        assert_eq!(parse_deadline("1d", now), Ok(now + 86_400_000));
        assert_eq!(parse_deadline("@1796568849", now), Ok(1_796_568_849_000));
        assert_eq!(
            parse_deadline("2023-11-14T22:13:20Z", now),
            Ok(1_700_000_000_000)
        );
        for bad in ["soon", "3x", "2023-11-14T22:13:20", "@x", "h"] {
            assert!(parse_deadline(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn near_the_end_a_worker_claims_shorter_jobs_then_none_then_gives_back() {
        let p = EndPolicy {
            end_margin: Duration::from_secs(120),
            preempt_before: Duration::from_secs(25),
        };
        let end = 1_000_000;
        assert_eq!(
            p.standing(end, end - 600_000),
            Standing::Claim {
                max_job_secs: 575.0
            }
        );
        assert_eq!(
            p.standing(end, end - 120_000),
            Standing::StopClaiming { left_secs: 120.0 }
        );
        assert_eq!(
            p.standing(end, end - 25_000),
            Standing::GiveBack { left_secs: 25.0 }
        );
        assert_eq!(
            p.standing(end, end + 5_000),
            Standing::GiveBack { left_secs: -5.0 }
        );
        // Leaving the give-back to the scheduler's signal.
        let p0 = EndPolicy {
            preempt_before: Duration::ZERO,
            ..p
        };
        assert_eq!(
            p0.standing(end, end - 10_000),
            Standing::StopClaiming { left_secs: 10.0 }
        );
        assert_eq!(
            p0.standing(end, end - 600_000),
            Standing::Claim {
                max_job_secs: 600.0
            }
        );
        assert_eq!(
            EndPolicy::for_kill_grace(Duration::from_secs(10)).preempt_before,
            Duration::from_secs(25)
        );
    }
}
