//! More of a study, as pure functions over its record and jobs: **extend** (the same grid with
//! further seeds) and **retry** (the runs that failed, again). [`plan`] says which jobs to add
//! and as which submissions of the study's record; `Queue::study_more` applies the plan in one
//! transaction with the study's jobs as they are then, so two extends at once cannot both add
//! the same seed.
//!
//! - Extend: every configuration of the study (method × environment × params, from its
//!   submissions, or from its jobs when it has no record) gets the new seeds: `+N` means the N
//!   seed numbers after the highest one the study used (a job without a seed ran seed 0). A seed
//!   a configuration already ran is refused, naming it.
//! - Retry: the newest job of each configuration × seed that failed, was lost or timed out (and,
//!   if asked, was cancelled) runs again as a new job with the same spec. Only the newest job
//!   counts, so a second retry before the first has ended adds nothing.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Definition, parse_seeds};
use crate::error::RequestError;
use crate::model::{
    Job, JobId, JobKind, JobSpec, JobState, Millis, StudyRecord, StudySubmission, Sweep,
};

/// What to add.
#[derive(Clone, Debug, PartialEq)]
pub enum More {
    /// Further seeds on the study's grid.
    Extend {
        seeds: NewSeeds,
        /// Confirms more than `CONFIRM_STUDY_JOBS` new jobs.
        confirm_large: bool,
    },
    /// The failed runs again.
    Retry {
        /// Also the cancelled ones.
        cancelled: bool,
    },
}

/// The seeds an extend adds.
#[derive(Clone, Debug, PartialEq)]
pub enum NewSeeds {
    /// The next `n` seed numbers after the highest the study used.
    Next(u64),
    /// These seeds.
    List(Vec<u64>),
}

impl std::str::FromStr for NewSeeds {
    type Err = RequestError;
    /// `+5`, or seeds as `--seeds` takes them (`11..15`, `6,7`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s.strip_prefix('+') {
            Some(n) => match n.trim().parse::<u64>() {
                Ok(n) if (1..=10_000).contains(&n) => Ok(NewSeeds::Next(n)),
                _ => Err(RequestError::Invalid(format!(
                    "--seeds {s:?}: +N adds N seeds, 1 to 10,000 (e.g. +5)"
                ))),
            },
            None => Ok(NewSeeds::List(parse_seeds("--seeds", s)?)),
        }
    }
}

/// One submission to add to the study's record, with its jobs' specs.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    pub template: JobSpec,
    pub sweep: Sweep,
    /// `extend` or `retry`.
    pub via: &'static str,
    /// For a retry, the job each spec runs again.
    pub retries: Vec<JobId>,
    pub specs: Vec<JobSpec>,
}

/// A configuration and seed: what makes two runs the same run.
fn run_key(spec: &JobSpec) -> String {
    serde_json::to_string(&(&spec.method, &spec.env, &spec.params, spec.seed)).unwrap_or_default()
}

/// A job's spec as submitted (study tag kept).
fn spec_of(job: &Job) -> JobSpec {
    JobSpec::from(job.spec.clone())
}

/// The template and sweep a single job stands for: its method, environment and seed as a
/// one-cell sweep, everything else (params included) in the template.
fn single(spec: &JobSpec) -> (JobSpec, Sweep) {
    let mut template = spec.clone();
    let sweep = Sweep {
        methods: template.method.take().into_iter().collect(),
        envs: template.env.take().into_iter().collect(),
        seeds: template.seed.take().into_iter().collect(),
        params: Vec::new(),
    };
    template.study = None;
    (template, sweep)
}

/// What `more` adds to study `name`, given its record and its jobs (every job tagged with it).
/// An error says why nothing can be added (no experiments, a duplicate seed, nothing to retry).
pub fn plan(
    name: &str,
    record: Option<&StudyRecord>,
    jobs: &[Job],
    more: &More,
) -> Result<Vec<Planned>, RequestError> {
    let experiments: Vec<&Job> = jobs
        .iter()
        .filter(|j| j.spec.kind() == JobKind::Experiment)
        .collect();
    if experiments.is_empty() {
        return Err(match (record, jobs.is_empty()) {
            (None, true) => RequestError::NotFound(format!("study {name:?}")),
            _ => RequestError::Invalid(format!("study {name:?} has no experiments to add to")),
        });
    }
    // An adaptive study's configurations are the sampler's and its early-stopping rule's to
    // run, stop and count (the queue's cell records): jobs added beside them would be outside
    // both.
    if let Some(i) = record.and_then(|r| {
        r.submissions
            .iter()
            .position(|s| s.search.is_some() || s.early_stop.is_some())
    }) {
        return Err(RequestError::Invalid(format!(
            "study {name:?} is adaptive (its submission {} has a search or early stopping): \
             extend and retry work on grid studies only; submit more configurations with \
             gaia submit --study {name}",
            i + 1
        )));
    }
    match more {
        More::Extend {
            seeds,
            confirm_large,
        } => extend(name, record, &experiments, seeds, *confirm_large),
        More::Retry { cancelled } => retry(name, &experiments, *cancelled),
    }
}

fn extend(
    name: &str,
    record: Option<&StudyRecord>,
    jobs: &[&Job],
    seeds: &NewSeeds,
    confirm_large: bool,
) -> Result<Vec<Planned>, RequestError> {
    let new_seeds: Vec<u64> = match seeds {
        NewSeeds::List(v) => v.clone(),
        NewSeeds::Next(n) => {
            let top = jobs
                .iter()
                .map(|j| j.spec.seed().unwrap_or(0))
                .max()
                .unwrap_or(0);
            (top + 1..=top.saturating_add(*n)).collect()
        }
    };
    // The study's grids: its submissions (retries are runs again, not grids), else each
    // configuration its jobs ran.
    let mut grids: Vec<(JobSpec, Sweep)> = Vec::new();
    match record {
        Some(r) => {
            for s in r
                .submissions
                .iter()
                .filter(|s| s.via.as_deref() != Some("retry"))
            {
                let mut sweep = s.sweep.clone();
                sweep.seeds.clear();
                grids.push((s.template.clone(), sweep));
            }
        }
        None => {
            for j in jobs {
                let (template, mut sweep) = single(&spec_of(j));
                sweep.seeds.clear();
                grids.push((template, sweep));
            }
        }
    }
    let mut seen = HashSet::new();
    grids.retain(|g| seen.insert(serde_json::to_string(&(&g.0, &g.1)).unwrap_or_default()));
    let existing: HashMap<String, JobId> =
        jobs.iter().map(|j| (run_key(&spec_of(j)), j.id)).collect();
    let mut out = Vec::new();
    let mut adding = HashSet::new();
    for (template, mut sweep) in grids {
        sweep.seeds = new_seeds.clone();
        let def = Definition {
            name: name.to_string(),
            template,
            sweep,
            confirm_large,
            search: None,
            early_stop: None,
        };
        let mut specs = def.expand()?;
        for s in &specs {
            let mut key_spec = s.clone();
            key_spec.study = None;
            let key = run_key(&key_spec);
            if let Some(id) = existing.get(&key) {
                return Err(RequestError::Conflict(format!(
                    "study {name:?} already ran {} {} seed {} (job {id}): refusing to run it twice; \
                     ask for other seeds (+N takes the next unused ones)",
                    s.method.as_deref().unwrap_or("?"),
                    s.env.as_deref().unwrap_or("?"),
                    s.seed.map_or("-".to_string(), |x| x.to_string()),
                )));
            }
        }
        // Two grids of one study may share cells (a method submitted twice): add each once.
        specs.retain(|s| adding.insert(run_key(s)));
        if specs.is_empty() {
            continue;
        }
        out.push(Planned {
            template: def.template,
            sweep: def.sweep,
            via: "extend",
            retries: Vec::new(),
            specs,
        });
    }
    Ok(out)
}

fn retry(name: &str, jobs: &[&Job], cancelled: bool) -> Result<Vec<Planned>, RequestError> {
    // The newest job of each configuration × seed (a job without a seed is its own run).
    let mut newest: BTreeMap<String, &Job> = BTreeMap::new();
    for j in jobs {
        let mut spec = spec_of(j);
        spec.study = None;
        let key = if spec.seed.is_some() {
            run_key(&spec)
        } else {
            format!("job {}", j.id)
        };
        match newest.get(&key) {
            Some(prev) if prev.id > j.id => {}
            _ => {
                newest.insert(key, j);
            }
        }
    }
    let mut again: Vec<&Job> = newest
        .into_values()
        .filter(|j| {
            matches!(
                j.state,
                JobState::Failed | JobState::Lost | JobState::TimedOut
            ) || (cancelled && j.state == JobState::Cancelled)
        })
        .collect();
    if again.is_empty() {
        return Err(RequestError::Conflict(format!(
            "nothing to retry: no run of study {name:?} failed, was lost or timed out{} \
             (a run already retried counts by its newest job)",
            if cancelled { " or was cancelled" } else { "" }
        )));
    }
    again.sort_by_key(|j| j.id);
    Ok(again
        .into_iter()
        .map(|j| {
            let spec = spec_of(j);
            let (template, sweep) = single(&spec);
            Planned {
                template,
                sweep,
                via: "retry",
                retries: vec![j.id],
                specs: vec![spec],
            }
        })
        .collect())
}

/// The study's record with one planned submission added (a new record, owned by `owner`, for
/// a study that had only jobs), its jobs' ids given.
pub fn record_with(
    prev: Option<StudyRecord>,
    name: &str,
    owner: &str,
    planned: Planned,
    jobs: Vec<JobId>,
    now: Millis,
) -> StudyRecord {
    let mut record = prev.unwrap_or_else(|| StudyRecord {
        name: name.to_string(),
        owner: owner.to_string(),
        created_at: now,
        submissions: Vec::new(),
    });
    record.submissions.push(StudySubmission {
        at: now,
        template: planned.template,
        sweep: planned.sweep,
        jobs,
        via: Some(planned.via.to_string()),
        retries: planned.retries,
        search: None,
        early_stop: None,
    });
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Progress;

    fn job(id: JobId, method: &str, env: &str, seed: Option<u64>, state: JobState) -> Job {
        let spec = JobSpec {
            env: Some(env.into()),
            seed,
            study: Some("s".into()),
            ..JobSpec::experiment(method, 1000)
        };
        serde_json::from_value(serde_json::json!({
            "id": id, "spec": spec, "state": state, "attempt": 1, "submitted_at": 0,
            "progress": Progress::default(),
        }))
        .unwrap()
    }

    fn record(methods: &[&str], envs: &[&str], seeds: &[u64], ids: Vec<JobId>) -> StudyRecord {
        StudyRecord {
            name: "s".into(),
            owner: "admin".into(),
            created_at: 0,
            submissions: vec![StudySubmission {
                at: 0,
                template: JobSpec {
                    method: None,
                    ..JobSpec::experiment("x", 1000)
                },
                sweep: Sweep {
                    methods: methods.iter().map(|s| s.to_string()).collect(),
                    envs: envs.iter().map(|s| s.to_string()).collect(),
                    seeds: seeds.to_vec(),
                    params: Vec::new(),
                },
                jobs: ids,
                via: None,
                retries: Vec::new(),
                search: None,
                early_stop: None,
            }],
        }
    }

    #[test]
    fn an_adaptive_study_is_neither_extended_nor_retried() {
        let mut r = record(&["a"], &["E1"], &[1], vec![1]);
        r.submissions[0].early_stop = Some(crate::model::EarlyStop::Asha {
            metric: "best_ever".into(),
            min_evals: 100,
            eta: 3,
            max_rungs: None,
        });
        let jobs = [job(1, "a", "E1", Some(1), JobState::Failed)];
        for more in [
            More::Retry { cancelled: false },
            More::Extend {
                seeds: "+1".parse().unwrap(),
                confirm_large: false,
            },
        ] {
            let e = plan("s", Some(&r), &jobs, &more).unwrap_err().to_string();
            assert!(
                e.contains("adaptive") && e.contains("grid studies only"),
                "{e}"
            );
        }
    }

    fn grid() -> (StudyRecord, Vec<Job>) {
        let mut jobs = Vec::new();
        let mut id = 0;
        for m in ["a", "b"] {
            for e in ["E1", "E2"] {
                for s in 1..=3 {
                    id += 1;
                    jobs.push(job(id, m, e, Some(s), JobState::Succeeded));
                }
            }
        }
        let r = record(&["a", "b"], &["E1", "E2"], &[1, 2, 3], (1..=12).collect());
        (r, jobs)
    }

    fn keys(p: &[Planned]) -> Vec<(String, String, u64)> {
        p.iter()
            .flat_map(|p| &p.specs)
            .map(|s| {
                (
                    s.method.clone().unwrap(),
                    s.env.clone().unwrap(),
                    s.seed.unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn extend_adds_the_next_seeds_on_the_same_grid() {
        let (r, jobs) = grid();
        let more = More::Extend {
            seeds: "+2".parse().unwrap(),
            confirm_large: false,
        };
        let p = plan("s", Some(&r), &jobs, &more).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].via, "extend");
        assert_eq!(p[0].sweep.seeds, [4, 5]);
        assert_eq!(keys(&p).len(), 2 * 2 * 2);
        assert!(keys(&p).contains(&("b".into(), "E2".into(), 5)));
        assert!(p[0].specs.iter().all(|s| s.study.as_deref() == Some("s")));
        // Explicit seeds the study ran are refused, naming the run.
        let dup = More::Extend {
            seeds: "3..4".parse().unwrap(),
            confirm_large: false,
        };
        let e = plan("s", Some(&r), &jobs, &dup).unwrap_err().to_string();
        assert!(e.contains("a E1 seed 3") && e.contains("job 3"), "{e}");
        assert!("+0".parse::<NewSeeds>().is_err());
        assert!("x".parse::<NewSeeds>().is_err());
    }

    #[test]
    fn extend_works_from_jobs_when_the_study_has_no_record() {
        let jobs = vec![
            job(1, "a", "E1", None, JobState::Succeeded),
            job(2, "b", "E1", Some(7), JobState::Failed),
        ];
        let more = More::Extend {
            seeds: NewSeeds::Next(1),
            confirm_large: false,
        };
        let p = plan("s", None, &jobs, &more).unwrap();
        assert_eq!(
            keys(&p),
            [("a".into(), "E1".into(), 8), ("b".into(), "E1".into(), 8)]
        );
    }

    #[test]
    fn retry_takes_the_newest_failed_run_of_each_seed_once() {
        let (_, mut jobs) = grid();
        jobs[0].state = JobState::Failed;
        jobs[4].state = JobState::Lost;
        jobs[5].state = JobState::Cancelled;
        let p = plan("s", None, &jobs, &More::Retry { cancelled: false }).unwrap();
        assert_eq!(p.iter().map(|p| p.retries[0]).collect::<Vec<_>>(), [1, 5]);
        assert_eq!(p[0].specs[0].seed, Some(1));
        assert_eq!(p[0].via, "retry");
        let with = plan("s", None, &jobs, &More::Retry { cancelled: true }).unwrap();
        assert_eq!(with.len(), 3);
        // Retried: the newest job of seed 1 is queued now; nothing more to retry there.
        let mut again = job(13, "a", "E1", Some(1), JobState::Queued);
        again.spec.study = Some("s".into());
        jobs.push(again);
        let p = plan("s", None, &jobs, &More::Retry { cancelled: false }).unwrap();
        assert_eq!(p.iter().map(|p| p.retries[0]).collect::<Vec<_>>(), [5]);
        jobs[4].state = JobState::Succeeded;
        let e = plan("s", None, &jobs, &More::Retry { cancelled: false }).unwrap_err();
        assert!(e.to_string().contains("nothing to retry"), "{e}");
    }

    #[test]
    fn a_study_without_experiments_has_nothing_to_add() {
        let e = plan("s", None, &[], &More::Retry { cancelled: false }).unwrap_err();
        assert_eq!(e.to_string(), "study \"s\" not found");
        let mut builtin = job(1, "a", "E1", None, JobState::Succeeded);
        builtin.spec = crate::model::Spec::from(JobSpec::builtin(crate::model::JobKind::Hash, "x"));
        let e = plan("s", None, &[builtin], &More::Retry { cancelled: false }).unwrap_err();
        assert!(e.to_string().contains("no experiments"), "{e}");
    }
}
