//! What an adaptive study does while its jobs run, inside the queue's write transactions: it
//! records each configuration's value as its runs cross a rung, judges it there once
//! ([`crate::early_stop`]), stops (prunes) the configurations that fell behind, and has `tpe`
//! propose the next configuration as one ends ([`crate::search`]). Every decision is written in
//! the same transaction as the rows or the end that caused it, so a restart never makes a
//! decision twice, and no worker waits for another.
//!
//! The queue calls [`register`] when it stores a study submission with a sampler or a rule,
//! [`on_rows`] after storing a row batch of a study's job, and [`on_end`] when one ends; it acts
//! on the [`Effects`] after the commit.

use crate::early_stop::Decision;
use crate::error::{Error, StoreError};
use crate::model::{
    CellRecord, CellState, EarlyStop, Event, Job, JobId, JobState, Row, Sampler, StudyRules, now_ms,
};
use crate::search::Config;
use crate::store::Tx;
use crate::study::{Definition, cell_key};

/// What the queue does after the commit of a write that called into this module.
#[derive(Debug, Default)]
pub(crate) struct Effects {
    /// Running jobs whose workers must stop them (pruned): the queue records them as cancels.
    pub stop: Vec<JobId>,
    /// Jobs this write changed (ended queued jobs, flagged running ones): published.
    pub changed: Vec<Job>,
    /// Events recorded by this write: published.
    pub events: Vec<Event>,
    /// Configurations `tpe` proposed: (submission, configuration), for the queue to insert.
    pub propose: Vec<(u32, Config)>,
}

impl Effects {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.stop.is_empty()
            && self.changed.is_empty()
            && self.events.is_empty()
            && self.propose.is_empty()
    }

    fn extend(&mut self, other: Effects) {
        self.stop.extend(other.stop);
        self.changed.extend(other.changed);
        self.events.extend(other.events);
        self.propose.extend(other.propose);
    }
}

/// Records the cells of newly stored jobs of submission `submission` of `def`'s study, and the
/// study's rules (early stopping, `tpe`). Call it for a submission with a sampler or a rule.
pub(crate) fn register(
    tx: &mut Tx<'_>,
    def: &Definition,
    submission: u32,
    jobs: &[Job],
    proposed: u64,
) -> Result<(), Error> {
    let mut rules = tx.study_rules(&def.name)?.unwrap_or_default();
    if let Some(rule) = &def.early_stop {
        rules.early_stop = Some(rule.clone());
    }
    if def
        .search
        .as_ref()
        .is_some_and(|s| s.sampler == Sampler::Tpe)
    {
        rules.tpe = Some((submission, proposed));
    }
    rules.done = false;
    tx.save_study_rules(&def.name, &rules)?;
    add_cells(tx, &def.name, submission, jobs)
}

/// Adds jobs to their cells (creating the cells they open).
pub(crate) fn add_cells(
    tx: &mut Tx<'_>,
    study: &str,
    submission: u32,
    jobs: &[Job],
) -> Result<(), Error> {
    let mut next_id = tx.cells(study)?.len() as u32;
    for job in jobs {
        let key = cell_key(job);
        let cell = match tx.cell(study, &key)? {
            Some(mut c) => {
                c.jobs.push(job.id);
                c.state = CellState::Running;
                c.score = None;
                c
            }
            None => {
                next_id += 1;
                CellRecord {
                    id: next_id - 1,
                    submission,
                    params: job.spec.params.clone(),
                    jobs: vec![job.id],
                    state: CellState::Running,
                    score: None,
                    rung: None,
                }
            }
        };
        tx.save_cell(study, &key, &cell)?;
    }
    Ok(())
}

/// The rules of the study of the job an operation changes, read before the operation's first
/// write, so that an operation never meets its study's rules undecodable after it has written.
pub(crate) enum Rules {
    /// The job has no study, or its study has no sampler nor rule: nothing to run.
    None,
    Read(StudyRules),
    /// The record does not decode: why. The study's step is skipped (the queue says so in an
    /// event); the job's own change goes on.
    Damaged(String),
}

/// Reads [`Rules`] for an operation on `job`. Only a storage error fails.
pub(crate) fn rules_of(tx: &mut Tx<'_>, job: &Job) -> Result<Rules, Error> {
    let Some(study) = &job.spec.study else {
        return Ok(Rules::None);
    };
    match tx.study_rules(study) {
        Ok(Some(r)) => Ok(Rules::Read(r)),
        Ok(None) => Ok(Rules::None),
        Err(e @ StoreError::Corrupt { .. }) => Ok(Rules::Damaged(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// After a row batch of `job` was stored and its progress applied (evaluations went from
/// `before` to the job's current ones): records the rungs its rows crossed and judges its
/// configuration where every seed has. `job` is the job as it will be saved: when its own
/// configuration is pruned, it is flagged here. `rules` are its study's ([`rules_of`]).
pub(crate) fn on_rows(
    tx: &mut Tx<'_>,
    job: &mut Job,
    before: f64,
    rows: &[Row],
    rules: &StudyRules,
) -> Result<Effects, Error> {
    let mut fx = Effects::default();
    let Some(study) = job.spec.study.clone() else {
        return Ok(fx);
    };
    let Some(rule) = rules.early_stop.clone() else {
        return Ok(fx);
    };
    let after = job.progress.evals.unwrap_or(before);
    let crossed = rule.crossed(before, after);
    if crossed.is_empty() {
        return Ok(fx);
    }
    let Some(key) = tx.job_cell(job.id)? else {
        return Ok(fx);
    };
    read_ahead(tx, &study, &key, false)?;
    for k in crossed {
        let Some(threshold) = rule.threshold(k) else {
            break;
        };
        // Its metric on the row that crossed the rung (rows come in seq order); else its latest.
        let value = rows
            .iter()
            .find(|r| r.evals.is_some_and(|e| e >= threshold))
            .and_then(|r| r.metric(rule.metric()))
            .or_else(|| metric_of(job, rule.metric()))
            .unwrap_or(f64::NAN);
        tx.set_job_rung(job.id, k, value)?;
        fx.extend(judge(tx, &study, &key, k, &rule, Some(job))?);
    }
    Ok(fx)
}

/// After `job` of a study ended (it is saved as ended): its configuration's pending rungs are
/// judged (an ended seed counts with its final value), the configuration is done once all its
/// jobs ended, and `tpe` proposes the next configuration. `rules` are its study's
/// ([`rules_of`]).
pub(crate) fn on_end(tx: &mut Tx<'_>, job: &Job, mut rules: StudyRules) -> Result<Effects, Error> {
    let mut fx = Effects::default();
    let Some(study) = job.spec.study.clone() else {
        return Ok(fx);
    };
    let Some(key) = tx.job_cell(job.id)? else {
        return Ok(fx);
    };
    read_ahead(tx, &study, &key, rules.tpe.is_some())?;
    if let Some(rule) = rules.early_stop.clone() {
        let mut k = 0;
        while let Some(_t) = rule.threshold(k) {
            let cell = tx.cell(&study, &key)?;
            if cell.is_none_or(|c| c.state != CellState::Running) {
                break;
            }
            let any = jobs_of(tx, &study, &key)?
                .iter()
                .any(|&j| matches!(tx.job_rung(j, k), Ok(Some(_))));
            if !any {
                break;
            }
            fx.extend(judge(tx, &study, &key, k, &rule, None)?);
            k += 1;
        }
    }
    // The configuration ends with its last job.
    let Some(mut cell) = tx.cell(&study, &key)? else {
        return Ok(fx);
    };
    let mut ended = true;
    let mut finals = Vec::new();
    for &j in &cell.jobs {
        let Some(other) = tx.job(j)? else { continue };
        if !other.state.is_terminal() {
            ended = false;
            break;
        }
        if matches!(other.state, JobState::Succeeded | JobState::Pruned)
            && let Some(v) = metric_of(&other, score_metric(&rules))
        {
            finals.push(v);
        }
    }
    if !ended || cell.score.is_some() {
        return Ok(fx);
    }
    cell.score = Some(if finals.is_empty() {
        f64::NEG_INFINITY
    } else {
        finals.iter().sum::<f64>() / finals.len() as f64
    });
    if cell.state == CellState::Running {
        cell.state = CellState::Done;
    }
    let submission = cell.submission;
    tx.save_cell(&study, &key, &cell)?;
    if let Some((sub, proposed)) = rules.tpe
        && sub == submission
        && let Some(config) = propose_next(tx, &study, sub, proposed)?
    {
        rules.tpe = Some((sub, proposed + 1));
        tx.save_study_rules(&study, &rules)?;
        fx.propose.push((sub, config));
    }
    Ok(fx)
}

/// `tpe`'s next configuration for submission `sub` after the one it proposed in this step could
/// not be made into jobs: the next sample, if one is left, recorded as spent in the study's
/// rules.
pub(crate) fn propose_again(
    tx: &mut Tx<'_>,
    study: &str,
    sub: u32,
) -> Result<Option<Config>, Error> {
    let Some(mut rules) = tx.study_rules(study)? else {
        return Ok(None);
    };
    let Some((s, proposed)) = rules.tpe else {
        return Ok(None);
    };
    if s != sub {
        return Ok(None);
    }
    let Some(config) = propose_next(tx, study, sub, proposed)? else {
        return Ok(None);
    };
    rules.tpe = Some((sub, proposed + 1));
    tx.save_study_rules(study, &rules)?;
    Ok(Some(config))
}

/// Decodes every record a step for configuration `key` may read after it has begun to write —
/// the configuration's cell and its jobs, and with `tpe`, when the step may end the
/// configuration, the study's record and all its cells — so that a record that does not decode
/// fails the step *before* its first write (the store's rule: validate, then write). The queue
/// skips a step that fails on such a record and keeps the rest of the operation; were it found
/// half-way, the step's first writes would be committed without the rest.
///
/// Only a configuration's end makes `tpe` propose (and read every cell), and a step cannot end
/// one that has a job still running: its pruning ends queued jobs but only asks running ones to
/// stop. So a job's end in a study of thousands of configurations decodes them all only when
/// its configuration may end with it, not at every end.
fn read_ahead(tx: &mut Tx<'_>, study: &str, key: &str, tpe: bool) -> Result<(), Error> {
    let mut may_end = false;
    if let Some(cell) = tx.cell(study, key)? {
        may_end = cell.score.is_none();
        for j in cell.jobs {
            if tx.job(j)?.is_some_and(|o| o.state == JobState::Running) {
                may_end = false;
            }
        }
    }
    if tpe && may_end {
        tx.study(study)?;
        tx.cells(study)?;
    }
    Ok(())
}

/// The metric `tpe` scores configurations by: the early-stopping rule's, else best-ever.
fn score_metric(rules: &StudyRules) -> &str {
    rules
        .early_stop
        .as_ref()
        .map(|r| r.metric())
        .unwrap_or("best_ever")
}

/// A job's latest value of a metric (best-ever falls back on best, as everywhere).
fn metric_of(job: &Job, metric: &str) -> Option<f64> {
    let p = &job.progress;
    match metric {
        "best_ever" => p.best_ever.or(p.best),
        "best" => p.best,
        "mean" => p.mean,
        "sigma" => p.sigma,
        "evals" => p.evals,
        _ => None,
    }
    .filter(|v| v.is_finite())
}

fn jobs_of(tx: &mut Tx<'_>, study: &str, key: &str) -> Result<Vec<JobId>, Error> {
    Ok(tx.cell(study, key)?.map(|c| c.jobs).unwrap_or_default())
}

/// Judges configuration `key` at rung `k` once every one of its jobs reached the rung or ended;
/// `current` is the job whose rows are being stored (not yet saved).
fn judge(
    tx: &mut Tx<'_>,
    study: &str,
    key: &str,
    k: u32,
    rule: &EarlyStop,
    mut current: Option<&mut Job>,
) -> Result<Effects, Error> {
    let mut fx = Effects::default();
    let Some(mut cell) = tx.cell(study, key)? else {
        return Ok(fx);
    };
    if cell.state != CellState::Running
        || tx
            .rung_values(study, k)?
            .iter()
            .any(|(other, _)| other == key)
    {
        return Ok(fx);
    }
    let mut values = Vec::new();
    for &j in &cell.jobs {
        if let Some(v) = tx.job_rung(j, k)? {
            values.push(v);
            continue;
        }
        let state_and_value = match current.as_deref() {
            Some(c) if c.id == j => (c.state, metric_of(c, rule.metric())),
            _ => match tx.job(j)? {
                Some(o) => (o.state, metric_of(&o, rule.metric())),
                None => continue,
            },
        };
        match state_and_value {
            // It stopped short of the rung on its own (solved): its final value counts.
            (JobState::Succeeded, Some(v)) => values.push(v),
            // Failed, lost, cancelled: not a measure of the configuration.
            (s, _) if s.is_terminal() => {}
            // Still on its way to the rung: the configuration waits for it.
            _ => return Ok(fx),
        }
    }
    if values.is_empty() {
        return Ok(fx);
    }
    let value = values.iter().sum::<f64>() / values.len() as f64;
    let others: Vec<f64> = tx
        .rung_values(study, k)?
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    tx.set_rung_value(study, k, key, value)?;
    cell.rung = Some(k);
    let decision = rule.decide(value, &others);
    let Decision::Prune { cut } = decision else {
        tx.save_cell(study, key, &cell)?;
        return Ok(fx);
    };
    cell.state = CellState::Pruned {
        rung: k,
        value,
        cut,
    };
    tx.save_cell(study, key, &cell)?;
    let at = rule.threshold(k).unwrap_or(0.0);
    let reason = format!(
        "pruned at rung {k} ({} evals): {} {} below the cut {} of {} configurations there",
        at as u64,
        rule.metric(),
        short(value),
        short(cut),
        others.len() + 1
    );
    fx.events.push(tx.event(
        "config_pruned",
        None,
        None,
        format!(
            "study {study}: configuration {} ({}) {reason}",
            cell.id,
            crate::search::config_key(&cell.params)
        ),
    )?);
    for &j in &cell.jobs {
        if let Some(c) = current.as_deref_mut()
            && c.id == j
        {
            if !c.state.is_terminal() {
                c.cancel_requested = true;
                c.prune_reason = Some(reason.clone());
                fx.stop.push(j);
            }
            continue;
        }
        let Some(prev) = tx.job(j)? else { continue };
        let mut job = prev.clone();
        match prev.state {
            JobState::Queued => {
                job.state = JobState::Pruned;
                job.finished_at = Some(now_ms());
                job.prune_reason = Some(reason.clone());
            }
            JobState::Running if job.prune_reason.is_none() => {
                job.cancel_requested = true;
                job.prune_reason = Some(reason.clone());
                fx.stop.push(j);
            }
            _ => continue,
        }
        tx.save_job(Some(&prev), &job)?;
        fx.events.push(tx.event(
            "job_pruned",
            Some(j),
            job.worker.as_deref(),
            format!("job {j} {reason}"),
        )?);
        fx.changed.push(job);
    }
    Ok(fx)
}

/// A number for an event message.
fn short(v: f64) -> String {
    if v.is_finite() && v.abs() >= 1e-3 && v.abs() < 1e6 {
        format!("{v:.4}")
    } else {
        format!("{v:.4e}")
    }
}

/// `tpe`'s next configuration for submission `sub`, if it has samples left and room in flight.
fn propose_next(
    tx: &mut Tx<'_>,
    study: &str,
    sub: u32,
    proposed: u64,
) -> Result<Option<Config>, Error> {
    let Some(record) = tx.study(study)? else {
        return Ok(None);
    };
    let Some(submission) = record.submissions.get(sub as usize) else {
        return Ok(None);
    };
    let Some(search) = &submission.search else {
        return Ok(None);
    };
    if proposed >= search.samples {
        return Ok(None);
    }
    let cells: Vec<CellRecord> = tx
        .cells(study)?
        .into_iter()
        .map(|(_, c)| c)
        .filter(|c| c.submission == sub)
        .collect();
    let space_keys: Vec<&String> = submission.sweep.params.iter().map(|p| &p.key).collect();
    let project = |c: &CellRecord| -> Config {
        c.params
            .iter()
            .filter(|(k, _)| space_keys.contains(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    let in_flight = cells.iter().filter(|c| c.score.is_none()).count() as u32;
    if in_flight >= search.parallel.unwrap_or(crate::study::DEFAULT_PARALLEL) {
        return Ok(None);
    }
    let mut history: Vec<(Config, f64)> = Vec::new();
    let mut pending: Vec<Config> = Vec::new();
    let mut ordered = cells;
    ordered.sort_by_key(|c| c.id);
    for c in &ordered {
        match c.score {
            Some(s) => history.push((project(c), s)),
            None => pending.push(project(c)),
        }
    }
    match crate::search::propose_tpe(
        &submission.sweep.params,
        &history,
        &pending,
        search.seed,
        proposed,
    ) {
        Ok(c) => Ok(Some(c)),
        // The space is used up: the study ends with what it has.
        Err(_) => Ok(None),
    }
}
