//! Studies, as pure functions: one configuration swept into many jobs, and what they add up to.
//! Nothing here reads or writes the store; submitting is [`crate::queue::Queue::submit_study`],
//! the types are in [`crate::model`] (stored) and [`crate::protocol`] (wire).
//!
//! A study is named; its name is its identity. A submission's [`Definition`] (its canonical
//! form) expands a [`Sweep`] (methods × environments × params × seeds) over a template
//! [`JobSpec`] into jobs ([`Definition::expand`]); the queue stores them with the study's
//! record ([`StudyRecord`]: every submission's definition, time and job ids) in one
//! transaction. A definition the study already holds is refused unless `again` is set
//! ([`refuse_repeat`]); a different definition under the same name adds its jobs to the study
//! (more seeds, another method).
//!
//! [`report`] turns a study's jobs into what `gaia study` shows: states, progress in
//! evaluations, an ETA from the study's own measured evals/s ([`estimate_eta`]), and the best
//! result per method × environment as mean ± std over seeds ([`groups`]).
//!
//! The parsers ([`parse_list`], [`parse_seeds`], [`parse_param_sweep`]) read the command-line
//! forms `a,b,c` and `1..5` — for the CLI and, on the server, for text the dashboard or a script
//! sends; every error names the flag and the bad part.

use std::collections::BTreeMap;

use crate::error::RequestError;
use crate::model::{
    CellRecord, CellState, DEFAULT_ENV, DEFAULT_MAX_EVALS, EarlyStop, Job, JobBrief, JobId,
    JobKind, JobSpec, JobState, Millis, ParamAxis, SampleRange, Sampler, Search, StudyRecord,
    StudySubmission, Sweep, validate_name,
};
use crate::protocol::{
    Axis, ConfigReport, ParamInput, RuleInput, StudyGroup, StudyJob, StudyProgress, StudyReport,
    StudySubmit, Summary, SummaryGroup,
};
use crate::stats::{five_numbers, mean_std};

/// Most jobs one study submission may expand to (the server refuses more).
pub const MAX_STUDY_JOBS: u64 = 100_000;
/// Above this many jobs a submission must be confirmed (`--yes`, `confirm_large`).
pub const CONFIRM_STUDY_JOBS: u64 = 10_000;
/// Longest range `a..b` a sweep may spell.
const MAX_RANGE: u64 = 1_000_000;

fn invalid(m: impl Into<String>) -> RequestError {
    RequestError::Invalid(m.into())
}

// ---- definitions ---------------------------------------------------------------------------

/// What one study submission asks for, in the one canonical form in which identical
/// definitions compare equal: the template's method, environment and seed folded into the
/// sweep, every axis parsed and checked. Made from a request by [`Definition::of`].
#[derive(Clone, Debug, PartialEq)]
pub struct Definition {
    /// The study's name.
    pub name: String,
    /// What every job starts from (budget, priority, requirements, fixed params, ...).
    pub template: JobSpec,
    pub sweep: Sweep,
    /// Confirms an expansion of more than [`CONFIRM_STUDY_JOBS`] jobs.
    pub confirm_large: bool,
    /// Configurations drawn by a sampler instead of the grid of the params' values.
    pub search: Option<Search>,
    /// The early-stopping rule the study's configurations are judged by.
    pub early_stop: Option<EarlyStop>,
}

/// `tpe`'s configurations in flight when `parallel` is not given.
pub const DEFAULT_PARALLEL: u32 = 4;

/// Parses one axis: a list as it is, text with the command line's grammar.
fn axis<T: Clone>(
    a: &Axis<T>,
    parse: impl Fn(&str) -> Result<Vec<T>, RequestError>,
) -> Result<Vec<T>, RequestError> {
    match a {
        Axis::List(v) => Ok(v.clone()),
        Axis::Text(s) if s.trim().is_empty() => Ok(Vec::new()),
        Axis::Text(s) => parse(s),
    }
}

impl Definition {
    /// The canonical definition of a study submission: text axes parsed with the command
    /// line's grammar (errors name the axis and the bad part), then [`Definition::canonicalize`].
    pub fn of(req: &StudySubmit) -> Result<Definition, RequestError> {
        let s = &req.sweep;
        let mut params = Vec::with_capacity(s.params.len());
        for p in &s.params {
            params.push(match p {
                ParamInput::Axis(a) => a.clone(),
                ParamInput::Text(t) => parse_param_sweep(t)?,
            });
        }
        let sampler = req.sampler.unwrap_or_default();
        let search = match sampler {
            Sampler::Grid => {
                for (flag, given) in [
                    ("--samples", req.samples.is_some()),
                    ("--sample-seed", req.sample_seed.is_some()),
                    ("--parallel", req.parallel.is_some()),
                ] {
                    if given {
                        return Err(invalid(format!(
                            "{flag} applies to a sampler: add --sampler random, sobol or tpe"
                        )));
                    }
                }
                None
            }
            sampler => Some(Search {
                sampler,
                samples: req.samples.ok_or_else(|| {
                    invalid(format!(
                        "the {sampler} sampler needs --samples N (how many configurations)"
                    ))
                })?,
                seed: req.sample_seed.unwrap_or(0),
                parallel: match (sampler, req.parallel) {
                    (Sampler::Tpe, p) => Some(p.unwrap_or(DEFAULT_PARALLEL)),
                    (_, None) => None,
                    (_, Some(_)) => {
                        return Err(invalid(
                            "--parallel applies to --sampler tpe (random and sobol draw every \
                             configuration up front)",
                        ));
                    }
                },
            }),
        };
        let early_stop = match &req.early_stop {
            None => None,
            Some(RuleInput::Text(t)) => Some(crate::early_stop::parse(t)?),
            Some(RuleInput::Rule(r)) => {
                crate::early_stop::validate(r)?;
                Some(r.clone())
            }
        };
        let mut def = Definition {
            name: req.name.clone(),
            template: req.template.clone(),
            sweep: Sweep {
                methods: axis(&s.methods, |t| parse_list("methods", t))?,
                envs: axis(&s.envs, |t| parse_list("envs", t))?,
                seeds: axis(&s.seeds, |t| parse_seeds("seeds", t))?,
                params,
            },
            confirm_large: req.confirm_large,
            search,
            early_stop,
        };
        def.canonicalize()?;
        Ok(def)
    }

    /// Puts the definition in its one canonical form (so identical definitions compare equal)
    /// and checks it: names, duplicates, a param both fixed and swept.
    pub fn canonicalize(&mut self) -> Result<(), RequestError> {
        validate_name("study name", &self.name)?;
        let t = &mut self.template;
        if t.kind != JobKind::Experiment {
            return Err(invalid(format!(
                "a study sweeps experiments; a {} job cannot be swept",
                t.kind
            )));
        }
        let s = &mut self.sweep;
        if let Some(m) = t.method.take() {
            if s.methods.is_empty() {
                s.methods.push(m);
            } else if s.methods != [m.clone()] {
                return Err(invalid(format!(
                    "method {m:?} is given both in the template and in the sweep"
                )));
            }
        }
        if let Some(e) = t.env.take() {
            if s.envs.is_empty() {
                s.envs.push(e);
            } else if s.envs != [e.clone()] {
                return Err(invalid(format!(
                    "environment {e:?} is given both in the template and in the sweep"
                )));
            }
        }
        if s.envs.is_empty() {
            s.envs.push(DEFAULT_ENV.to_string());
        }
        if let Some(seed) = t.seed.take() {
            if s.seeds.is_empty() {
                s.seeds.push(seed);
            } else if s.seeds != [seed] {
                return Err(invalid(format!(
                    "seed {seed} is given both in the template and in the sweep"
                )));
            }
        }
        if t.max_evals.is_none() {
            t.max_evals = Some(DEFAULT_MAX_EVALS);
        }
        t.study = None;
        if s.methods.is_empty() {
            return Err(invalid("a study needs at least one method (e.g. cma_es)"));
        }
        for m in &s.methods {
            validate_name("method", m)?;
        }
        for e in &s.envs {
            validate_name("environment", e)?;
        }
        no_duplicates("method", s.methods.iter().map(|m| m.to_string()))?;
        no_duplicates("environment", s.envs.iter().map(|e| e.to_string()))?;
        no_duplicates("seed", s.seeds.iter().map(|x| x.to_string()))?;
        no_duplicates("param", s.params.iter().map(|p| p.key.clone()))?;
        if self
            .search
            .as_ref()
            .is_some_and(|x| x.sampler == Sampler::Tpe)
            && (s.methods.len() > 1 || s.envs.len() > 1)
        {
            return Err(invalid(
                "tpe tunes one method on one environment: give one --method and one --env",
            ));
        }
        if let Some(search) = &self.search
            && (search.samples == 0 || search.samples > MAX_STUDY_JOBS)
        {
            return Err(invalid(format!(
                "--samples must be 1 to {MAX_STUDY_JOBS}, got {}",
                search.samples
            )));
        }
        for p in &s.params {
            if p.key.is_empty() {
                return Err(invalid("a swept param has an empty key"));
            }
            match (&p.range, p.values.is_empty()) {
                (None, true) => {
                    return Err(invalid(format!("param {:?} has no values", p.key)));
                }
                (Some(_), false) => {
                    return Err(invalid(format!(
                        "param {:?} has both values and a range: give one",
                        p.key
                    )));
                }
                (Some(r), true) => {
                    check_range(&p.key, r)?;
                    if self.search.is_none() {
                        return Err(invalid(format!(
                            "param {:?} is a range to sample from: it needs a sampler \
                             (--sampler random, sobol or tpe, with --samples N)",
                            p.key
                        )));
                    }
                }
                (None, false) => {}
            }
            if t.params.contains_key(&p.key) {
                return Err(invalid(format!(
                    "param {:?} is both fixed in the template and swept",
                    p.key
                )));
            }
            no_duplicates(
                &format!("value of param {:?}", p.key),
                p.values.iter().map(|v| v.to_string()),
            )?;
        }
        Ok(())
    }

    /// How many jobs the sweep expands to (saturating; checked before anything is expanded).
    /// With `tpe`, every job it may come to (it submits them as it proposes configurations).
    pub fn job_count(&self) -> u64 {
        let s = &self.sweep;
        let mut n: u64 = (s.methods.len() as u64).saturating_mul(s.envs.len().max(1) as u64);
        n = n.saturating_mul(s.seeds.len().max(1) as u64);
        match &self.search {
            Some(search) => n.saturating_mul(search.samples),
            None => {
                for p in &s.params {
                    n = n.saturating_mul(p.values.len() as u64);
                }
                n
            }
        }
    }

    /// The configurations this submission starts with: the grid's combinations, a sampler's
    /// draws (none already in `taken`, the keys of the study's earlier configurations), or
    /// `tpe`'s first `parallel` (random) proposals.
    pub fn configs(
        &self,
        taken: &std::collections::BTreeSet<String>,
    ) -> Result<Vec<crate::search::Config>, RequestError> {
        let s = &self.sweep;
        match &self.search {
            None => {
                // Every combination of param values, first axis outermost.
                let mut combos: Vec<crate::search::Config> = vec![Default::default()];
                for axis in &s.params {
                    let mut next = Vec::with_capacity(combos.len() * axis.values.len());
                    for c in &combos {
                        for v in &axis.values {
                            let mut c2 = c.clone();
                            c2.insert(axis.key.clone(), v.clone());
                            next.push(c2);
                        }
                    }
                    combos = next;
                }
                Ok(combos)
            }
            Some(search) if search.sampler == Sampler::Tpe => {
                let first = search
                    .parallel
                    .unwrap_or(DEFAULT_PARALLEL)
                    .min(search.samples as u32) as u64;
                let mut out: Vec<crate::search::Config> = Vec::new();
                for i in 0..first {
                    let c = crate::search::propose_tpe(&s.params, &[], &out, search.seed, i)?;
                    if taken.contains(&crate::search::config_key(&c)) {
                        return Err(invalid(
                            "tpe's first proposals repeat the study's earlier configurations: \
                             give another --sample-seed",
                        ));
                    }
                    out.push(c);
                }
                Ok(out)
            }
            Some(search) => crate::search::sample(
                &s.params,
                search.sampler,
                search.samples,
                search.seed,
                taken,
            ),
        }
    }

    /// The jobs of one configuration: every method × environment × seed, each tagged with the
    /// study (seeds innermost, so a configuration's seeds are neighbours).
    pub fn jobs_of(&self, config: &crate::search::Config) -> Vec<JobSpec> {
        let s = &self.sweep;
        let seeds: Vec<Option<u64>> = if s.seeds.is_empty() {
            vec![None]
        } else {
            s.seeds.iter().copied().map(Some).collect()
        };
        let mut out = Vec::new();
        for method in &s.methods {
            for env in &s.envs {
                for seed in &seeds {
                    let mut spec = self.template.clone();
                    spec.method = Some(method.clone());
                    spec.env = Some(env.clone());
                    spec.seed = *seed;
                    for (k, v) in config {
                        spec.params.insert(k.clone(), v.clone());
                    }
                    spec.study = Some(self.name.clone());
                    out.push(spec);
                }
            }
        }
        out
    }

    /// The jobs of the sweep with no earlier configurations to avoid (see [`Definition::expand_avoiding`]).
    pub fn expand(&self) -> Result<Vec<JobSpec>, RequestError> {
        self.expand_avoiding(&Default::default())
    }

    /// The jobs this submission starts with, in order method → environment → params → seed
    /// (seeds innermost, so one configuration's seeds are neighbours), each tagged with the
    /// study; a sampler's configurations avoid `taken` (keys of the study's earlier ones).
    pub fn expand_avoiding(
        &self,
        taken: &std::collections::BTreeSet<String>,
    ) -> Result<Vec<JobSpec>, RequestError> {
        let n = self.job_count();
        if n > MAX_STUDY_JOBS {
            return Err(invalid(format!(
                "study {:?} expands to {n} jobs; at most {MAX_STUDY_JOBS} per submission",
                self.name
            )));
        }
        if n > CONFIRM_STUDY_JOBS && !self.confirm_large {
            return Err(invalid(format!(
                "study {:?} expands to {n} jobs (more than {CONFIRM_STUDY_JOBS}); confirm with --yes",
                self.name
            )));
        }
        let configs = self.configs(taken)?;
        // Method → environment → configuration → seed, as the grid always was.
        let mut out = Vec::with_capacity(n as usize);
        let s = &self.sweep;
        for method in &s.methods {
            for env in &s.envs {
                let one = Definition {
                    sweep: Sweep {
                        methods: vec![method.clone()],
                        envs: vec![env.clone()],
                        ..s.clone()
                    },
                    ..self.clone()
                };
                for c in &configs {
                    out.extend(one.jobs_of(c));
                }
            }
        }
        Ok(out)
    }
}

/// Checks a range given as JSON (the grammar checks its own).
fn check_range(key: &str, r: &SampleRange) -> Result<(), RequestError> {
    let ok = match *r {
        SampleRange::Uniform { low, high } => low.is_finite() && high.is_finite() && low < high,
        SampleRange::LogUniform { low, high } => high.is_finite() && low > 0.0 && low < high,
        SampleRange::Int { low, high } => low <= high,
    };
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "param {key:?}: the range {r:?} is empty or not finite (loguniform needs 0 < low)"
        )))
    }
}

fn no_duplicates(what: &str, items: impl Iterator<Item = String>) -> Result<(), RequestError> {
    let mut seen = std::collections::HashSet::new();
    for i in items {
        if !seen.insert(i.clone()) {
            return Err(invalid(format!("{what} {i} is listed twice")));
        }
    }
    Ok(())
}

/// Refuses a definition the study already holds, unless `again` asks for it once more.
pub fn refuse_repeat(
    prev: Option<&StudyRecord>,
    def: &Definition,
    again: bool,
) -> Result<(), RequestError> {
    let same = prev.and_then(|p| {
        p.submissions.iter().find(|s| {
            s.template == def.template
                && s.sweep == def.sweep
                && s.search == def.search
                && s.early_stop == def.early_stop
        })
    });
    match same {
        Some(same) if !again => Err(RequestError::Conflict(format!(
            "study {:?} already holds this definition (submitted {} UTC, {} jobs); \
             pass --again (again: true) to submit it once more",
            def.name,
            crate::time::UtcTime::from_millis(same.at).to_minutes(),
            same.jobs.len()
        ))),
        _ => Ok(()),
    }
}

/// The keys of the configurations a study's `jobs` already ran, projected on `def`'s params
/// (what a sampler must not draw again).
pub fn configs_taken(jobs: &[Job], def: &Definition) -> std::collections::BTreeSet<String> {
    let keys: Vec<&String> = def.sweep.params.iter().map(|p| &p.key).collect();
    jobs.iter()
        .map(|j| {
            let c: crate::search::Config = j
                .spec
                .params
                .iter()
                .filter(|(k, _)| keys.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            crate::search::config_key(&c)
        })
        .collect()
}

/// A study's record with one more submission (a new record for a new study).
pub fn record_with(
    prev: Option<StudyRecord>,
    def: &Definition,
    jobs: Vec<JobId>,
    now: Millis,
) -> StudyRecord {
    let mut record = prev.unwrap_or_else(|| StudyRecord {
        name: def.name.clone(),
        created_at: now,
        submissions: Vec::new(),
    });
    record.submissions.push(StudySubmission {
        at: now,
        template: def.template.clone(),
        sweep: def.sweep.clone(),
        jobs,
        search: def.search.clone(),
        early_stop: def.early_stop.clone(),
    });
    record
}

impl StudyRecord {
    /// Jobs of the study over all its submissions.
    pub fn job_count(&self) -> u64 {
        self.submissions.iter().map(|s| s.jobs.len() as u64).sum()
    }
}

// ---- command-line sweep syntax ---------------------------------------------------------------

/// Splits `a,b,c` (spaces around items allowed). An empty item or a repeated one is an error
/// naming `flag` and the item.
pub fn parse_list(flag: &str, s: &str) -> Result<Vec<String>, RequestError> {
    let mut out: Vec<String> = Vec::new();
    for (i, item) in s.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err(invalid(format!(
                "{flag} {s:?}: item {} is empty (write a,b,c)",
                i + 1
            )));
        }
        if out.iter().any(|x| x == item) {
            return Err(invalid(format!("{flag} {s:?}: {item:?} is listed twice")));
        }
        out.push(item.to_string());
    }
    Ok(out)
}

/// Parses seeds: `3`, `1,2,7`, `1..5` (inclusive: 1 2 3 4 5), `1..=5`, or a mix (`1..3,10`).
pub fn parse_seeds(flag: &str, s: &str) -> Result<Vec<u64>, RequestError> {
    let mut out: Vec<u64> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (i, item) in s.split(',').enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err(invalid(format!(
                "{flag} {s:?}: item {} is empty (write 1..5 or 1,2,3)",
                i + 1
            )));
        }
        let num = |t: &str| -> Result<u64, RequestError> {
            t.trim().parse::<u64>().map_err(|_| {
                invalid(format!(
                    "{flag} {s:?}: {:?} in {item:?} is not a whole number ≥ 0",
                    t.trim()
                ))
            })
        };
        match parse_range(item) {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                push_range(flag, s, item, (a, b), &mut out, &mut seen)?;
            }
            None => {
                let v = num(item)?;
                if !seen.insert(v) {
                    return Err(invalid(format!("{flag} {s:?}: seed {v} is listed twice")));
                }
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// One axis of a sweep cannot hold more values than a submission may have jobs: checked as
/// ranges are expanded, so many ranges in one string cannot add up to a huge allocation (the
/// fuzzer's `sweep` target found `k=0..999999,1000000..1999999,...` taking seconds each).
fn too_many_values(flag: &str, s: &str, n: u64) -> Result<(), RequestError> {
    if n > MAX_STUDY_JOBS {
        return Err(invalid(format!(
            "{flag} {}: more than {MAX_STUDY_JOBS} values in all (a submission expands to at most {MAX_STUDY_JOBS} jobs)",
            short(s)
        )));
    }
    Ok(())
}

/// The start of a long flag value, for messages.
fn short(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{:?}…", &s[..i]),
        None => format!("{s:?}"),
    }
}

/// `a..b` or `a..=b` → (a, b); None when `item` is not a range.
fn parse_range(item: &str) -> Option<(&str, &str)> {
    let (a, b) = item.split_once("..")?;
    Some((a, b.strip_prefix('=').unwrap_or(b)))
}

fn push_range(
    flag: &str,
    s: &str,
    item: &str,
    (a, b): (u64, u64),
    out: &mut Vec<u64>,
    seen: &mut std::collections::HashSet<u64>,
) -> Result<(), RequestError> {
    if b < a {
        return Err(invalid(format!(
            "{flag} {s:?}: range {item:?} is empty (its end {b} is below its start {a})"
        )));
    }
    if b - a >= MAX_RANGE {
        return Err(invalid(format!(
            "{flag} {s:?}: range {item:?} spans more than {MAX_RANGE} values"
        )));
    }
    too_many_values(flag, s, out.len() as u64 + (b - a + 1))?;
    for v in a..=b {
        if !seen.insert(v) {
            return Err(invalid(format!("{flag} {s:?}: {v} is listed twice")));
        }
        out.push(v);
    }
    Ok(())
}

/// Parses a fixed param, `KEY=VALUE`: the value is JSON if it parses (`64`, `[32,32]`,
/// `true`), else the text itself. The one reading of a `--param` that is not swept (the
/// dashboard's params lines are read the same way).
pub fn parse_param(s: &str) -> Result<(String, serde_json::Value), RequestError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| invalid(format!("--param {s:?}: expected KEY=VALUE")))?;
    let k = k.trim();
    if k.is_empty() {
        return Err(invalid(format!("--param {s:?}: the key is empty")));
    }
    Ok((k.to_string(), param_value(v.trim())))
}

/// A param value as typed: JSON if it parses, else the text.
fn param_value(item: &str) -> serde_json::Value {
    serde_json::from_str(item).unwrap_or_else(|_| serde_json::Value::String(item.to_string()))
}

/// Parses `KEY=V1,V2,...` into a swept param. Values split at commas outside brackets, braces
/// and quotes (so `hidden=[32,32],[64,64]` is two values); each value is JSON if it parses
/// (`64`, `0.3`, `[32,32]`, `true`), else a string; an integer range `16..64` expands to every
/// integer in it. A sampler's space may also say `choice(V1,V2,...)` (the same as a list),
/// `uniform(LOW,HIGH)`, `loguniform(LOW,HIGH)` (0 < LOW) or `int(LOW,HIGH)` (inclusive).
pub fn parse_param_sweep(s: &str) -> Result<ParamAxis, RequestError> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| invalid(format!("--param {s:?}: expected KEY=VALUE[,VALUE...]")))?;
    let key = k.trim();
    if key.is_empty() {
        return Err(invalid(format!("--param {s:?}: the key is empty")));
    }
    let v = v.trim();
    if let Some((dist, args)) = distribution(v) {
        return parse_distribution(s, key, dist, args);
    }
    let mut values: Vec<serde_json::Value> = Vec::new();
    let items = split_top_level(v).map_err(|e| invalid(format!("--param {s:?}: {e}")))?;
    for (i, item) in items.iter().enumerate() {
        let item = item.trim();
        if item.is_empty() {
            return Err(invalid(format!(
                "--param {s:?}: value {} is empty (write {key}=a,b,c)",
                i + 1
            )));
        }
        let range = parse_range(item).and_then(|(a, b)| {
            Some((a.trim().parse::<i64>().ok()?, b.trim().parse::<i64>().ok()?))
        });
        match range {
            Some((a, b)) => {
                if b < a {
                    return Err(invalid(format!(
                        "--param {s:?}: range {item:?} is empty (its end {b} is below its start {a})"
                    )));
                }
                if b.abs_diff(a) >= MAX_RANGE {
                    return Err(invalid(format!(
                        "--param {s:?}: range {item:?} spans more than {MAX_RANGE} values"
                    )));
                }
                too_many_values("--param", s, values.len() as u64 + b.abs_diff(a) + 1)?;
                values.extend((a..=b).map(serde_json::Value::from));
            }
            None => values.push(param_value(item)),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for v in &values {
        if !seen.insert(v.to_string()) {
            return Err(invalid(format!("--param {s:?}: value {v} is listed twice")));
        }
    }
    Ok(ParamAxis {
        key: key.to_string(),
        values,
        range: None,
    })
}

/// `name(args)` → (name, args) when `v` is a distribution the grammar knows.
fn distribution(v: &str) -> Option<(&str, &str)> {
    let (name, rest) = v.split_once('(')?;
    let args = rest.strip_suffix(')')?;
    matches!(name.trim(), "uniform" | "loguniform" | "int" | "choice").then(|| (name.trim(), args))
}

/// A `choice(...)`, `uniform(a,b)`, `loguniform(a,b)` or `int(a,b)` param; errors name it.
fn parse_distribution(
    s: &str,
    key: &str,
    dist: &str,
    args: &str,
) -> Result<ParamAxis, RequestError> {
    let bad = |why: String| invalid(format!("--param {s:?}: {why}"));
    if dist == "choice" {
        let mut axis = parse_param_sweep(&format!("{key}={args}"))
            .map_err(|e| bad(e.to_string().rsplit(": ").next().unwrap_or("").to_string()))?;
        axis.key = key.to_string();
        return Ok(axis);
    }
    let parts: Vec<&str> = args.split(',').map(str::trim).collect();
    let [a, b] = parts[..] else {
        return Err(bad(format!("{dist} takes two numbers: {dist}(LOW,HIGH)")));
    };
    let range = if dist == "int" {
        let int = |t: &str| {
            t.parse::<i64>()
                .map_err(|_| bad(format!("{t:?} is not a whole number")))
        };
        let (low, high) = (int(a)?, int(b)?);
        if high < low {
            return Err(bad(format!("int's HIGH {high} is below its LOW {low}")));
        }
        SampleRange::Int { low, high }
    } else {
        let num = |t: &str| match t.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(bad(format!("{t:?} is not a finite number"))),
        };
        let (low, high) = (num(a)?, num(b)?);
        if high <= low {
            return Err(bad(format!(
                "{dist} needs LOW < HIGH, got {low} and {high}"
            )));
        }
        if dist == "loguniform" {
            if low <= 0.0 {
                return Err(bad(format!("loguniform needs 0 < LOW, got {low}")));
            }
            SampleRange::LogUniform { low, high }
        } else {
            SampleRange::Uniform { low, high }
        }
    };
    Ok(ParamAxis {
        key: key.to_string(),
        values: Vec::new(),
        range: Some(range),
    })
}

/// Splits at commas that are outside `[]`, `{}` and double quotes.
fn split_top_level(s: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let (mut depth, mut quoted, mut escaped, mut start) = (0i32, false, false, 0usize);
    for (i, c) in s.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '[' | '{' => depth += 1,
            ']' | '}' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced {c:?} at character {}", i + 1));
                }
            }
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if quoted {
        return Err("unclosed quote".into());
    }
    if depth != 0 {
        return Err("unclosed bracket".into());
    }
    out.push(&s[start..]);
    Ok(out)
}

// ---- aggregation -------------------------------------------------------------------------------

/// A job's measured speed: evaluations over wall seconds of its current attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateSample {
    pub evals: f64,
    pub secs: f64,
}

impl RateSample {
    /// Evaluations per second, when both numbers are real and positive.
    pub fn rate(self) -> Option<f64> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        (ok(self.evals) && ok(self.secs)).then(|| self.evals / self.secs)
    }
}

/// One job as the ETA sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EtaJob {
    /// Not started: its whole budget is still to do.
    Queued { budget: f64 },
    /// Running: `budget − done.evals` to do, at its own rate `done` once it has one.
    Running { budget: f64, done: RateSample },
    /// Ended (in any way): nothing left to do; its evaluations and time measure the rate.
    Ended { done: RateSample },
}

/// An estimate of the time left.
#[derive(Clone, Debug, PartialEq)]
pub enum Eta {
    /// Nothing left to do.
    Done,
    /// Seconds left at the measured rates, and the running jobs' evals/s together.
    Secs { secs: f64, evals_per_sec: f64 },
    /// Not known, and why.
    Unknown(&'static str),
}

/// Longest ETA shown; beyond it the estimate says nothing useful.
const MAX_ETA_SECS: f64 = 10.0 * 365.0 * 86_400.0;

/// The ETA of a study's jobs, from the evals/s of its own running and ended jobs:
///
/// - a running job that has reported evaluations goes on at its own rate (its evaluations over
///   its running time) for what is left of its budget; one without yet at the pooled rate;
/// - the pooled rate is all real evaluations of the running and ended jobs over all their
///   running time (a job that solved early adds the few evaluations it did, not its budget);
/// - queued jobs need their whole budget at the pooled rate, run as many at a time as are
///   running now;
/// - the ETA is the longest running job's time or all that work spread over the running jobs,
///   whichever is longer.
///
/// Unknown until some job has reported evaluations, or while nothing runs; never negative,
/// infinite or NaN.
pub fn estimate_eta(jobs: &[EtaJob]) -> Eta {
    let (mut evals, mut secs) = (0.0, 0.0);
    let mut remaining = 0.0;
    let mut running = 0usize;
    for j in jobs {
        let done = match *j {
            EtaJob::Queued { budget } => {
                remaining += budget.max(0.0);
                continue;
            }
            EtaJob::Running { budget, done } => {
                running += 1;
                remaining += (budget - done.evals.max(0.0)).max(0.0);
                done
            }
            EtaJob::Ended { done } => done,
        };
        if done.rate().is_some() {
            evals += done.evals;
            secs += done.secs;
        }
    }
    // NaN or nothing left: done.
    if remaining.is_nan() || remaining <= 0.0 {
        return Eta::Done;
    }
    if !(evals > 0.0 && secs > 0.0) {
        return Eta::Unknown("no measured evals/s yet");
    }
    if running == 0 {
        return Eta::Unknown("no job of the study is running");
    }
    let pooled = evals / secs;
    let (mut longest, mut job_secs, mut evals_per_sec) = (0.0f64, 0.0, 0.0);
    for j in jobs {
        match *j {
            EtaJob::Queued { budget } => job_secs += budget.max(0.0) / pooled,
            EtaJob::Running { budget, done } => {
                let rate = done.rate().unwrap_or(pooled);
                let t = (budget - done.evals.max(0.0)).max(0.0) / rate;
                longest = longest.max(t);
                job_secs += t;
                evals_per_sec += rate;
            }
            EtaJob::Ended { .. } => {}
        }
    }
    let eta = longest.max(job_secs / running as f64);
    if !eta.is_finite() || eta < 0.0 {
        return Eta::Unknown("no measured evals/s yet");
    }
    if eta > MAX_ETA_SECS {
        return Eta::Unknown("more than ten years at the measured rate");
    }
    Eta::Secs {
        secs: eta,
        evals_per_sec,
    }
}

impl StudyJob {
    /// The study view of a job.
    pub fn of(job: &Job) -> StudyJob {
        let s = &job.spec;
        StudyJob {
            id: job.id,
            state: job.state,
            method: s.method().unwrap_or_default().to_string(),
            env: s.env().unwrap_or_default().to_string(),
            seed: s.seed(),
            params: s.params.clone(),
            // A job of another kind tagged with the study has no budget.
            max_evals: s.max_evals().unwrap_or(0),
            evals: job.progress.evals,
            best_ever: job.progress.best_ever.or(job.progress.best),
            attempt: job.attempt,
            worker: job.worker_name.clone(),
        }
    }
}

/// Progress (with ETA) of a set of jobs at time `now`: evaluations really done, and what is
/// left of the budgets of the jobs that have not ended (see [`estimate_eta`]).
pub fn progress(jobs: &[Job], now: Millis) -> StudyProgress {
    let mut p = StudyProgress {
        jobs: jobs.len() as u64,
        ..StudyProgress::default()
    };
    let typical = typical_evals(jobs);
    let mut eta_jobs = Vec::with_capacity(jobs.len());
    for job in jobs {
        *p.states.entry(job.state.as_str().to_string()).or_insert(0) += 1;
        let budget = job.spec.max_evals().unwrap_or(0) as f64;
        p.evals_budget += budget;
        let reported = job
            .progress
            .evals
            .filter(|e| e.is_finite() && *e > 0.0)
            .unwrap_or(0.0)
            .min(budget);
        // The current attempt's evaluations over its running time.
        let done = RateSample {
            evals: reported,
            secs: job
                .started_at
                .map(|start| job.finished_at.unwrap_or(now).saturating_sub(start) as f64 / 1000.0)
                .unwrap_or(0.0),
        };
        // What this job will likely use: what similar jobs of the study used when they
        // succeeded (many stop when solved, far short of their budget), else its budget.
        let expected = match typical.get(&cell_key(job)) {
            Some(&t) if t > done.evals => t.min(budget),
            _ => {
                if !job.state.is_terminal() && budget > done.evals {
                    p.eta_bound = true;
                }
                budget
            }
        };
        let e = match job.state {
            // Waiting (maybe again, after a lost attempt): all of it is still to do.
            JobState::Queued => EtaJob::Queued { budget: expected },
            JobState::Running => EtaJob::Running {
                budget: expected,
                done,
            },
            _ => EtaJob::Ended { done },
        };
        match job.state {
            JobState::Queued => p.evals_remaining += budget,
            JobState::Running => {
                p.evals_done += done.evals;
                p.evals_remaining += budget - done.evals;
            }
            _ => p.evals_done += done.evals,
        }
        eta_jobs.push(e);
    }
    p.evals_total = p.evals_done + p.evals_remaining;
    p.fraction = if p.evals_total > 0.0 {
        (p.evals_done / p.evals_total).clamp(0.0, 1.0)
    } else if jobs.is_empty() {
        0.0
    } else {
        // Every job ended without an evaluation: nothing is left.
        1.0
    };
    match estimate_eta(&eta_jobs) {
        Eta::Done => {
            p.eta_secs = Some(0.0);
            p.eta_note = Some("done".into());
        }
        Eta::Secs {
            secs,
            evals_per_sec,
        } => {
            p.eta_secs = Some(secs);
            p.evals_per_sec = Some(evals_per_sec);
        }
        Eta::Unknown(why) => p.eta_note = Some(why.into()),
    }
    p
}

/// A job's cell in its study (method × environment × params), as canonical JSON: the key
/// configurations are grouped by.
pub fn cell_key(job: &Job) -> String {
    let s = &job.spec;
    serde_json::to_string(&(s.method(), s.env(), &s.params)).unwrap_or_default()
}

/// Per cell, the median evaluations its succeeded jobs used: what a similar job will likely use.
fn typical_evals(jobs: &[Job]) -> std::collections::HashMap<String, f64> {
    let mut cells = Cells::default();
    for job in jobs {
        if job.state == JobState::Succeeded
            && let Some(e) = job.progress.evals.filter(|e| e.is_finite() && *e > 0.0)
        {
            cells.add(&cell_key(job), e);
        }
    }
    cells
        .into_vec()
        .into_iter()
        .map(|(k, mut v)| {
            v.sort_by(f64::total_cmp);
            (k, crate::stats::quantile(&v, 0.5))
        })
        .collect()
}

/// How long one running attempt still needs, and whether that is an upper bound: from the
/// progress the experiment reports itself (`@gaia {"progress": f}`: the time so far × (1 − f)
/// / f), else from its budget at its measured evals/s (an upper bound: it may stop early,
/// solved). `secs` is the attempt's running time. None until there is something to go on.
pub fn job_eta(p: &crate::model::Progress, budget: Option<u64>, secs: f64) -> Option<(f64, bool)> {
    if !(secs.is_finite() && secs > 0.0) {
        return None;
    }
    if p.fraction_reported
        && let Some(f) = p.fraction.filter(|f| *f > 0.0 && *f < 1.0)
    {
        return Some((secs * (1.0 - f) / f, false));
    }
    let evals = p.evals.filter(|e| e.is_finite() && *e > 0.0)?;
    let budget = budget? as f64;
    let left = (budget - evals).max(0.0) * secs / evals;
    left.is_finite().then_some((left, true))
}

/// Values grouped by a text key, in order of the keys' first appearance: the one grouping of
/// runs into cells (method × environment × params) that every aggregate starts from. Adding a
/// value to an existing cell allocates nothing (the key is looked up by `&str`).
#[derive(Debug)]
pub struct Cells<T> {
    index: std::collections::HashMap<String, usize>,
    cells: Vec<(String, Vec<T>)>,
}

impl<T> Default for Cells<T> {
    fn default() -> Self {
        Cells {
            index: std::collections::HashMap::new(),
            cells: Vec::new(),
        }
    }
}

impl<T> Cells<T> {
    /// Adds a value to the cell `key`.
    pub fn add(&mut self, key: &str, value: T) {
        match self.index.get(key) {
            Some(&i) => self.cells[i].1.push(value),
            None => {
                self.index.insert(key.to_string(), self.cells.len());
                self.cells.push((key.to_string(), vec![value]));
            }
        }
    }

    /// The cells with their values, in order of first appearance.
    pub fn into_vec(self) -> Vec<(String, Vec<T>)> {
        self.cells
    }
}

/// Groups jobs by method × environment × params and takes mean ± std of best-ever over seeds,
/// in order of first appearance.
pub fn groups(jobs: &[Job]) -> Vec<StudyGroup> {
    let mut cells = Cells::default();
    for job in jobs {
        let j = StudyJob::of(job);
        // Canonical JSON of the cell (a BTreeMap of params serializes in key order).
        let key = serde_json::to_string(&(&j.method, &j.env, &j.params)).unwrap_or_default();
        cells.add(&key, (job.state, j));
    }
    cells
        .into_vec()
        .into_iter()
        .map(|(_, members)| {
            let first = &members[0].1;
            let scores: Vec<f64> = members.iter().filter_map(|(_, j)| j.best_ever).collect();
            StudyGroup {
                method: first.method.clone(),
                env: first.env.clone(),
                params: first.params.clone(),
                jobs: members.len() as u64,
                succeeded: members
                    .iter()
                    .filter(|(state, _)| *state == JobState::Succeeded)
                    .count() as u64,
                best: mean_std(&scores),
            }
        })
        .collect()
}

/// Final scores kept per group of the overview, for the dashboard's distribution charts (an
/// even sample beyond).
pub const MAX_FINALS: usize = 1000;

/// The overview of a set of jobs (the whole server's, or one study's), fed one job at a time
/// ([`Overview::add`]) so a scan of every job need not hold them: jobs per state (every state
/// present) and, per environment × method of the experiments, the best score so far and the
/// spread of the succeeded jobs' final scores ([`Overview::finish`]).
#[derive(Debug)]
pub struct Overview {
    counts: BTreeMap<String, u64>,
    total: u64,
    /// Keyed `env NUL method` (names never hold NUL): (id, state, score) per job.
    cells: Cells<(JobId, JobState, Option<f64>)>,
    key: String,
}

impl Default for Overview {
    fn default() -> Self {
        Overview {
            counts: JobState::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), 0))
                .collect(),
            total: 0,
            cells: Cells::default(),
            key: String::new(),
        }
    }
}

impl Overview {
    /// Counts one job (allocates only for a state or cell not seen before).
    pub fn add(&mut self, job: &JobBrief<'_>) {
        self.total += 1;
        match self.counts.get_mut(job.state.as_str()) {
            Some(n) => *n += 1,
            None => {
                self.counts.insert(job.state.as_str().to_string(), 1);
            }
        }
        if job.spec.kind != JobKind::Experiment {
            return;
        }
        self.key.clear();
        self.key
            .push_str(job.spec.env.as_deref().unwrap_or(DEFAULT_ENV));
        self.key.push('\0');
        self.key.push_str(job.spec.method.as_deref().unwrap_or("?"));
        self.cells.add(&self.key, (job.id, job.state, job.score()));
    }

    /// The summary, groups sorted by environment then method.
    pub fn finish(self) -> Summary {
        let mut grouped = self.cells.into_vec();
        grouped.sort_by(|a, b| a.0.cmp(&b.0));
        let groups = grouped
            .into_iter()
            .map(|(key, members)| {
                let (env, method) = key.split_once('\0').unwrap_or((&key, "?"));
                let mut g = SummaryGroup {
                    env: env.to_string(),
                    method: method.to_string(),
                    jobs: members.len() as u64,
                    ..SummaryGroup::default()
                };
                let mut finals = Vec::new();
                for (id, state, score) in members {
                    match state {
                        JobState::Running => g.running += 1,
                        JobState::Queued => g.queued += 1,
                        _ => {}
                    }
                    let Some(s) = score else { continue };
                    if g.best.is_none_or(|b| s > b) {
                        g.best = Some(s);
                        g.best_job = Some(id);
                    }
                    if state == JobState::Succeeded {
                        finals.push(s);
                    }
                }
                describe_finals(&mut g, finals);
                g
            })
            .collect();
        Summary {
            jobs: self.counts,
            total: self.total,
            workers: BTreeMap::new(),
            groups,
            took_ms: 0.0,
        }
    }
}

/// Fills a group's statistics from its final scores.
fn describe_finals(g: &mut SummaryGroup, mut finals: Vec<f64>) {
    g.finished = finals.len() as u64;
    if finals.is_empty() {
        return;
    }
    finals.sort_by(f64::total_cmp);
    // The same mean ± std as `gaia study`: sample standard deviation (n − 1), none for one seed.
    let stats = mean_std(&finals);
    let five = five_numbers(&finals);
    g.mean = stats.map(|m| m.mean);
    g.std = stats.and_then(|m| m.std);
    g.min = five.map(|f| f.min);
    g.q1 = five.map(|f| f.q1);
    g.median = five.map(|f| f.median);
    g.q3 = five.map(|f| f.q3);
    g.max = five.map(|f| f.max);
    g.finals = if finals.len() <= MAX_FINALS {
        finals
    } else {
        let step = finals.len() as f64 / MAX_FINALS as f64;
        (0..MAX_FINALS)
            .map(|i| finals[(i as f64 * step) as usize])
            .collect()
    };
}

/// The whole report of a study.
pub fn report(
    name: &str,
    record: Option<StudyRecord>,
    jobs: &[Job],
    cells: &[CellRecord],
    now: Millis,
) -> StudyReport {
    let by_id: std::collections::HashMap<JobId, &Job> = jobs.iter().map(|j| (j.id, j)).collect();
    let configs: Vec<ConfigReport> = cells
        .iter()
        .map(|c| {
            let best = c
                .jobs
                .iter()
                .filter_map(|id| by_id.get(id))
                .filter_map(|j| j.progress.best_ever.or(j.progress.best))
                .filter(|v| v.is_finite())
                .reduce(f64::max);
            let (state, pruned) = match &c.state {
                CellState::Running => ("running", None),
                CellState::Done => ("done", None),
                CellState::Pruned { rung, value, cut } => (
                    "pruned",
                    Some(format!("at rung {rung}: {value:.4} below the cut {cut:.4}")),
                ),
            };
            ConfigReport {
                id: c.id,
                params: c.params.clone(),
                state: state.into(),
                rung: c.rung,
                pruned,
                best,
                score: c.score.filter(|s| s.is_finite()),
                jobs: c.jobs.clone(),
            }
        })
        .collect();
    let rank = |c: &&ConfigReport| c.score.or(c.best).unwrap_or(f64::NEG_INFINITY);
    let incumbent = configs
        .iter()
        .filter(|c| c.score.is_some())
        .max_by(|a, b| rank(a).total_cmp(&rank(b)))
        .or_else(|| {
            configs
                .iter()
                .filter(|c| c.best.is_some())
                .max_by(|a, b| rank(a).total_cmp(&rank(b)))
        })
        .map(|c| c.id);
    StudyReport {
        name: name.to_string(),
        record,
        progress: progress(jobs, now),
        groups: groups(jobs),
        jobs: jobs.iter().map(StudyJob::of).collect(),
        done: !jobs.is_empty() && jobs.iter().all(|j| j.state.is_terminal()),
        configs,
        incumbent,
    }
}

#[cfg(test)]
mod tests {
    /// Found by the `sweep` fuzz target: ranges under the per-range bound still added up.
    #[test]
    fn many_ranges_cannot_add_up_past_a_submissions_jobs() {
        let many: Vec<String> = (0..20)
            .map(|i| format!("{}..{}", i * 10_000, i * 10_000 + 9_999))
            .collect();
        let e = parse_seeds("--seeds", &many.join(","))
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 100000 values in all"), "{e}");
        let e = parse_param_sweep(&format!("k={}", many.join(",")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than 100000 values in all"), "{e}");
        assert_eq!(parse_seeds("--seeds", "0..99999").unwrap().len(), 100_000);
    }

    use super::*;
    use crate::model::{Job, Progress};
    use serde_json::json;

    fn submit(methods: &str, envs: &str, seeds: &str) -> Definition {
        Definition {
            name: "classic-control".into(),
            template: JobSpec {
                max_evals: Some(50_000),
                ..JobSpec::experiment("x", 1)
            },
            sweep: Sweep {
                methods: parse_list("--method", methods).unwrap(),
                envs: parse_list("--env", envs).unwrap(),
                seeds: parse_seeds("--seeds", seeds).unwrap(),
                params: Vec::new(),
            },
            confirm_large: false,
            search: None,
            early_stop: None,
        }
    }

    fn canon(mut s: Definition) -> Definition {
        s.template.method = None;
        s.canonicalize().unwrap();
        s
    }

    #[test]
    fn expansion_is_the_cartesian_product_with_seeds_innermost() {
        let s = canon(submit("cma_es,openai_es", "CartPole-v1,Acrobot-v1", "1..5"));
        assert_eq!(s.job_count(), 20);
        let jobs = s.expand().unwrap();
        assert_eq!(jobs.len(), 20);
        let keys: Vec<(String, String, u64)> = jobs
            .iter()
            .map(|j| {
                (
                    j.method.clone().unwrap(),
                    j.env.clone().unwrap(),
                    j.seed.unwrap(),
                )
            })
            .collect();
        assert_eq!(keys[0], ("cma_es".into(), "CartPole-v1".into(), 1));
        assert_eq!(keys[4], ("cma_es".into(), "CartPole-v1".into(), 5));
        assert_eq!(keys[5], ("cma_es".into(), "Acrobot-v1".into(), 1));
        assert_eq!(keys[19], ("openai_es".into(), "Acrobot-v1".into(), 5));
        let distinct: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), 20);
        assert!(
            jobs.iter()
                .all(|j| j.study.as_deref() == Some("classic-control")
                    && j.max_evals == Some(50_000))
        );
    }

    #[test]
    fn params_sweep_and_fixed_params_combine() {
        let mut s = submit("cma_es", "sphere", "1,2");
        s.template.method = None;
        s.template.params.insert("dim".into(), json!(10));
        s.sweep.params = vec![
            parse_param_sweep("pop_size=16,32").unwrap(),
            parse_param_sweep("hidden=[32,32],[64,64]").unwrap(),
        ];
        s.canonicalize().unwrap();
        let jobs = s.expand().unwrap();
        assert_eq!(jobs.len(), 2 * 2 * 2);
        assert_eq!(jobs[0].params["pop_size"], json!(16));
        assert_eq!(jobs[0].params["hidden"], json!([32, 32]));
        assert_eq!(jobs[0].params["dim"], json!(10));
        assert_eq!(jobs[1].seed, Some(2));
        assert_eq!(jobs[2].params["hidden"], json!([64, 64]));
        assert_eq!(jobs[4].params["pop_size"], json!(32));
        // A param both fixed and swept is refused.
        let mut bad = s.clone();
        bad.template.params.insert("pop_size".into(), json!(8));
        assert!(
            bad.canonicalize()
                .unwrap_err()
                .to_string()
                .contains("pop_size")
        );
    }

    #[test]
    fn template_method_env_and_seed_fold_into_the_sweep() {
        let mut a = Definition {
            name: "s".into(),
            template: JobSpec {
                env: Some("sphere".into()),
                seed: Some(3),
                ..JobSpec::experiment("cma_es", 100)
            },
            sweep: Sweep::default(),
            confirm_large: false,
            search: None,
            early_stop: None,
        };
        a.canonicalize().unwrap();
        assert_eq!(a.sweep.methods, ["cma_es"]);
        assert_eq!(a.sweep.envs, ["sphere"]);
        assert_eq!(a.sweep.seeds, [3]);
        assert_eq!(a.expand().unwrap().len(), 1);
        // Canonical forms of the same definition compare equal.
        let mut b = a.clone();
        b.canonicalize().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn sweeps_on_the_wire_take_the_command_line_grammar() {
        let request = |sweep: serde_json::Value| -> Result<Definition, RequestError> {
            let req: StudySubmit = serde_json::from_value(json!({
                "name": "s",
                "template": {"max_evals": 100},
                "sweep": sweep,
            }))
            .unwrap();
            Definition::of(&req)
        };
        let text = request(json!({
            "methods": "cma_es, openai_es",
            "envs": "sphere",
            "seeds": "1..3,10",
            "params": ["pop_size=16,32", {"key": "lr", "values": [0.1]}]
        }))
        .unwrap();
        let structured = request(json!({
            "methods": ["cma_es", "openai_es"],
            "envs": ["sphere"],
            "seeds": [1, 2, 3, 10],
            "params": [{"key": "pop_size", "values": [16, 32]}, {"key": "lr", "values": [0.1]}]
        }))
        .unwrap();
        assert_eq!(text, structured);
        // Stored and answered in the structured form.
        assert_eq!(
            serde_json::to_value(&text.sweep).unwrap()["seeds"],
            json!([1, 2, 3, 10])
        );
        let blank = request(json!({"methods": "cma_es", "seeds": " "})).unwrap();
        assert!(blank.sweep.seeds.is_empty());
        // Errors are the command line's, naming the bad part.
        let bad = request(json!({"methods": "a", "seeds": "5..1"}));
        assert!(bad.unwrap_err().to_string().contains("below its start 5"));
        let bad = request(json!({"methods": "a,,b"}));
        assert!(bad.unwrap_err().to_string().contains("item 2 is empty"));
    }

    #[test]
    fn a_job_s_eta_comes_from_its_reported_progress_else_its_budget_as_a_bound() {
        use crate::model::Progress;
        // 500 of 20,000 evals in 10 s: the whole budget needs 390 s more — at most.
        let p = Progress {
            evals: Some(500.0),
            fraction: Some(0.025),
            ..Progress::default()
        };
        assert_eq!(job_eta(&p, Some(20_000), 10.0), Some((390.0, true)));
        // The experiment says it is half done (it knows it stops when solved): 10 s more,
        // an estimate, not a bound.
        let told = Progress {
            fraction: Some(0.5),
            fraction_reported: true,
            ..p.clone()
        };
        assert_eq!(job_eta(&told, Some(20_000), 10.0), Some((10.0, false)));
        // Nothing to go on yet.
        assert_eq!(job_eta(&Progress::default(), Some(20_000), 10.0), None);
        assert_eq!(job_eta(&p, Some(20_000), 0.0), None);
        assert_eq!(job_eta(&p, None, 10.0), None);
    }

    #[test]
    fn a_study_s_eta_uses_what_similar_jobs_used_not_their_budget() {
        // Two seeds of a cell solved with 400 evals of a 20,000 budget in 4 s; a third seed is
        // queued and one runs. Without that history the ETA would assume 20,000 evals each.
        let ended = |id, evals| {
            let mut j = job(id, "cma_es", JobState::Succeeded, Some(evals), Some(500.0));
            j.spec.experiment_mut().unwrap().max_evals = 20_000;
            j.started_at = Some(0);
            j.finished_at = Some(4_000);
            j
        };
        let a = ended(1, 400.0);
        let b = ended(2, 400.0);
        let mut queued = job(3, "cma_es", JobState::Queued, None, None);
        queued.spec.experiment_mut().unwrap().max_evals = 20_000;
        let mut running = job(4, "cma_es", JobState::Running, Some(100.0), Some(10.0));
        running.spec.experiment_mut().unwrap().max_evals = 20_000;
        running.started_at = Some(9_000);
        let p = progress(
            &[a.clone(), b.clone(), queued.clone(), running.clone()],
            10_000,
        );
        // The running job: 300 more evals at its 100/s → 3 s; then the queued one: 400 evals
        // at the pooled 100/s → 4 s.
        assert!(!p.eta_bound);
        let eta = p.eta_secs.unwrap();
        assert!((eta - 7.0).abs() < 1e-9, "{eta}");
        // Another method has no history in this study: its budget bounds the ETA.
        let mut other = job(5, "openai_es", JobState::Queued, None, None);
        other.spec.experiment_mut().unwrap().max_evals = 20_000;
        let p = progress(&[a, b, queued, running, other], 10_000);
        assert!(p.eta_bound);
        assert!(p.eta_secs.unwrap() > 100.0);
    }

    #[test]
    fn fixed_params_parse_as_json_or_string() {
        assert_eq!(parse_param("pop_size=64").unwrap().1, json!(64));
        assert_eq!(parse_param("hidden=[32,32]").unwrap().1, json!([32, 32]));
        assert_eq!(parse_param("opt=adam").unwrap().1, json!("adam"));
        assert!(parse_param("novalue").is_err());
        assert!(parse_param("=3").is_err());
    }

    #[test]
    fn ranges_and_lists_parse() {
        assert_eq!(parse_seeds("--seeds", "1..5").unwrap(), [1, 2, 3, 4, 5]);
        assert_eq!(parse_seeds("--seeds", "1..=3").unwrap(), [1, 2, 3]);
        assert_eq!(parse_seeds("--seeds", "7").unwrap(), [7]);
        assert_eq!(parse_seeds("--seeds", "1..2, 10").unwrap(), [1, 2, 10]);
        assert_eq!(parse_seeds("--seeds", "4..4").unwrap(), [4]);
        assert_eq!(
            parse_list("--method", "cma_es, openai_es").unwrap(),
            ["cma_es", "openai_es"]
        );
        assert_eq!(
            parse_param_sweep("pop_size=16..18").unwrap().values,
            [json!(16), json!(17), json!(18)]
        );
        assert_eq!(
            parse_param_sweep("opt=adam,sgd").unwrap().values,
            [json!("adam"), json!("sgd")]
        );
        assert_eq!(
            parse_param_sweep("lr=0.1,0.01").unwrap().values,
            [json!(0.1), json!(0.01)]
        );
        assert_eq!(
            parse_param_sweep(r#"name="a,b",c"#).unwrap().values,
            [json!("a,b"), json!("c")]
        );
    }

    #[test]
    fn malformed_sweeps_name_the_bad_part() {
        let cases: Vec<(Result<(), RequestError>, &str)> = vec![
            (parse_seeds("--seeds", "1..x").map(drop), "\"x\""),
            (
                parse_seeds("--seeds", "5..1").map(drop),
                "below its start 5",
            ),
            (parse_seeds("--seeds", "1,,3").map(drop), "item 2 is empty"),
            (parse_seeds("--seeds", "-1").map(drop), "\"-1\""),
            (
                parse_seeds("--seeds", "1..3,2").map(drop),
                "2 is listed twice",
            ),
            (
                parse_seeds("--seeds", "0..99999999").map(drop),
                "spans more",
            ),
            (
                parse_list("--method", "cma_es,").map(drop),
                "item 2 is empty",
            ),
            (
                parse_list("--env", "a,a").map(drop),
                "\"a\" is listed twice",
            ),
            (parse_param_sweep("pop_size").map(drop), "KEY=VALUE"),
            (parse_param_sweep("=1,2").map(drop), "key is empty"),
            (parse_param_sweep("k=1,,2").map(drop), "value 2 is empty"),
            (parse_param_sweep("k=[1,2").map(drop), "unclosed bracket"),
            (parse_param_sweep("k=9..3").map(drop), "below its start 9"),
            (parse_param_sweep("k=1,1").map(drop), "listed twice"),
        ];
        for (r, needle) in cases {
            let msg = r.unwrap_err().to_string();
            assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
        }
        let mut s = submit("cma_es", "a", "1");
        s.sweep.methods = vec!["bad name".into()];
        s.template.method = None;
        assert!(s.canonicalize().unwrap_err().to_string().contains("method"));
    }

    #[test]
    fn large_studies_need_confirmation_and_have_a_ceiling() {
        let mut s = canon(submit("a,b", "e", "1..5001"));
        assert_eq!(s.job_count(), 10_002);
        let msg = s.expand().unwrap_err().to_string();
        assert!(msg.contains("--yes"), "{msg}");
        s.confirm_large = true;
        assert_eq!(s.expand().unwrap().len(), 10_002);
        let mut huge = canon(submit("a,b", "e", "1..100000"));
        huge.confirm_large = true;
        assert!(huge.expand().unwrap_err().to_string().contains("at most"));
    }

    fn job(id: u64, method: &str, state: JobState, evals: Option<f64>, best: Option<f64>) -> Job {
        Job {
            id,
            spec: JobSpec {
                env: Some("CartPole-v1".into()),
                seed: Some(id),
                ..JobSpec::experiment(method, 1000)
            }
            .into(),
            state,
            attempt: 1,
            lease: None,
            worker: None,
            worker_name: None,
            cancel_requested: false,
            prune_reason: None,
            submitted_at: 0,
            started_at: None,
            finished_at: None,
            exit_code: None,
            error: None,
            result: None,
            progress: Progress {
                evals,
                best_ever: best,
                ..Progress::default()
            },
            attempts: Vec::new(),
            files: Vec::new(),
            log_lines: 0,
            log_dropped: 0,
            warnings: 0,
            errors: 0,
        }
    }

    #[test]
    fn aggregation_takes_mean_and_std_over_seeds_per_method_and_env() {
        let jobs = vec![
            job(1, "cma_es", JobState::Succeeded, Some(1000.0), Some(100.0)),
            job(2, "cma_es", JobState::Succeeded, Some(900.0), Some(200.0)),
            job(3, "cma_es", JobState::Running, Some(500.0), Some(300.0)),
            job(4, "openai_es", JobState::Queued, None, None),
            job(5, "openai_es", JobState::Failed, Some(250.0), Some(-5.0)),
        ];
        let g = groups(&jobs);
        assert_eq!(g.len(), 2);
        assert_eq!(
            (g[0].method.as_str(), g[0].jobs, g[0].succeeded),
            ("cma_es", 3, 2)
        );
        let b = g[0].best.unwrap();
        assert_eq!(b.n, 3);
        assert!((b.mean - 200.0).abs() < 1e-9);
        assert!((b.std.unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(b.max, 300.0);
        let b = g[1].best.unwrap();
        assert_eq!((b.n, b.mean, b.std), (1, -5.0, None));

        let p = progress(&jobs, 0);
        assert_eq!(p.jobs, 5);
        assert_eq!(p.states["succeeded"], 2);
        assert_eq!(p.states["queued"], 1);
        // Evaluations really done: job 2 stopped early (solved) and counts its 900, not its
        // budget; the failed job its 250.
        assert_eq!(p.evals_done, 1000.0 + 900.0 + 500.0 + 0.0 + 250.0);
        // Left: the running job's rest and the queued job's budget; ended jobs need nothing.
        assert_eq!(p.evals_remaining, 500.0 + 1000.0);
        assert_eq!(p.evals_total, p.evals_done + p.evals_remaining);
        assert_eq!(p.evals_budget, 5000.0);
        assert!((p.fraction - 2650.0 / 4150.0).abs() < 1e-12);
        assert_eq!(mean_std(&[]), None);
        assert_eq!(mean_std(&[f64::NAN]), None);
    }

    fn ran(evals: f64, secs: f64) -> RateSample {
        RateSample { evals, secs }
    }

    #[test]
    fn eta_from_synthetic_timings() {
        use EtaJob::{Ended, Queued, Running};
        // Two finished jobs did 1000 evals in 10 s each: 100 evals/s per job. Two running jobs
        // without evals yet go at that rate: 2 × 1000 + 2000 queued over 2 jobs at a time → 20 s.
        let jobs = [
            Ended {
                done: ran(1000.0, 10.0),
            },
            Ended {
                done: ran(1000.0, 10.0),
            },
            Running {
                budget: 1000.0,
                done: ran(0.0, 1.0),
            },
            Running {
                budget: 1000.0,
                done: ran(0.0, 1.0),
            },
            Queued { budget: 2000.0 },
        ];
        assert_eq!(
            estimate_eta(&jobs),
            Eta::Secs {
                secs: 20.0,
                evals_per_sec: 200.0
            }
        );
        // A running job with evals of its own goes at its own pace: 50/s for its last 1000.
        let slow = [
            Ended {
                done: ran(1000.0, 10.0),
            },
            Running {
                budget: 2000.0,
                done: ran(1000.0, 20.0),
            },
        ];
        assert_eq!(
            estimate_eta(&slow),
            Eta::Secs {
                secs: 20.0,
                evals_per_sec: 50.0
            }
        );
        // No data yet, zero-length or nonsense timings: unknown, never a number.
        assert!(matches!(
            estimate_eta(&[Running {
                budget: 100.0,
                done: ran(0.0, 0.0)
            }]),
            Eta::Unknown(_)
        ));
        let junk = [
            Ended {
                done: ran(0.0, 5.0),
            },
            Ended {
                done: ran(50.0, 0.0),
            },
            Ended {
                done: ran(f64::NAN, 1.0),
            },
            Ended {
                done: ran(f64::INFINITY, 1.0),
            },
            Ended {
                done: ran(-10.0, 1.0),
            },
            Running {
                budget: 100.0,
                done: ran(0.0, 3.0),
            },
        ];
        assert!(matches!(estimate_eta(&junk), Eta::Unknown(_)));
        // Nothing running (no worker): unknown, not infinite.
        assert!(matches!(
            estimate_eta(&[
                Ended {
                    done: ran(100.0, 1.0)
                },
                Queued { budget: 100.0 }
            ]),
            Eta::Unknown(_)
        ));
        // Nothing left: done, whatever the ended jobs' budgets.
        assert_eq!(estimate_eta(&[]), Eta::Done);
        assert_eq!(
            estimate_eta(&[Ended {
                done: ran(396.0, 2.0)
            }]),
            Eta::Done
        );
        // Absurdly slow: unknown rather than centuries.
        assert!(matches!(
            estimate_eta(&[Running {
                budget: 1e9,
                done: ran(1.0, 1e6)
            }]),
            Eta::Unknown(_)
        ));
    }

    /// `gaia study demo` two minutes in: four CartPole jobs (20k budget each) solved after
    /// 396–2900 evals, two fast sphere jobs done, a slow 100k Pendulum job running at 35/s.
    #[test]
    fn early_solving_jobs_do_not_make_the_eta_optimistic() {
        let ended = |id, evals: f64, budget: u64, secs: u64| {
            let mut j = job(id, "cma_es", JobState::Succeeded, Some(evals), Some(500.0));
            j.spec.experiment_mut().unwrap().max_evals = budget;
            j.started_at = Some(0);
            j.finished_at = Some(secs * 1000);
            j
        };
        let mut pendulum = job(
            7,
            "openai_es",
            JobState::Running,
            Some(2100.0),
            Some(-900.0),
        );
        pendulum.spec.experiment_mut().unwrap().max_evals = 100_000;
        pendulum.started_at = Some(60_000);
        let jobs = vec![
            ended(1, 396.0, 20_000, 2),
            ended(2, 396.0, 20_000, 1),
            ended(3, 2900.0, 20_000, 3),
            ended(4, 2650.0, 20_000, 3),
            ended(5, 1380.0, 5000, 1),
            ended(6, 5000.0, 5000, 1),
            pendulum,
        ];
        let p = progress(&jobs, 120_000);
        // Real evaluations, and only the running job's rest is left.
        let done = 396.0 + 396.0 + 2900.0 + 2650.0 + 1380.0 + 5000.0 + 2100.0;
        assert_eq!(p.evals_done, done);
        assert_eq!(p.evals_remaining, 100_000.0 - 2100.0);
        assert_eq!(p.evals_total, done + 97_900.0);
        assert_eq!(p.evals_budget, 4.0 * 20_000.0 + 2.0 * 5000.0 + 100_000.0);
        // The pooled rate of all jobs is ~190 evals/s (the fast sphere jobs); the Pendulum job
        // really does 2100 / 60 s = 35/s, and that is what is left: 97,900 / 35 ≈ 47 min.
        assert!((p.evals_per_sec.unwrap() - 35.0).abs() < 1e-9, "{p:?}");
        assert!(
            (p.eta_secs.unwrap() - 97_900.0 / 35.0).abs() < 1e-6,
            "{p:?}"
        );
        // The same jobs with the Pendulum one not started: the pooled rate is all there is,
        // and it is unknown while nothing runs.
        let mut queued = jobs.clone();
        queued[6].state = JobState::Queued;
        queued[6].progress.evals = None;
        queued[6].started_at = None;
        let p = progress(&queued, 120_000);
        assert_eq!(p.eta_secs, None);
        assert_eq!(p.evals_remaining, 100_000.0);
        // Once everything ended, whatever the budgets: complete and done.
        let mut all = jobs;
        all[6].state = JobState::Succeeded;
        all[6].finished_at = Some(180_000);
        let p = progress(&all, 200_000);
        assert_eq!(p.fraction, 1.0);
        assert_eq!(p.evals_remaining, 0.0);
        assert_eq!(p.eta_note.as_deref(), Some("done"));
    }

    #[test]
    fn progress_measures_the_study_s_own_jobs() {
        let mut a = job(1, "cma_es", JobState::Succeeded, Some(1000.0), Some(1.0));
        a.started_at = Some(0);
        a.finished_at = Some(10_000);
        let mut b = job(2, "cma_es", JobState::Running, Some(500.0), Some(1.0));
        b.started_at = Some(20_000);
        let c = job(3, "cma_es", JobState::Queued, None, None);
        // At t = 25 s, b ran 5 s for 500 evals: 100/s, like a (1000 in 10 s). b has 500 left
        // (5 s), c 1000 (10 s), one job at a time → 15 s.
        let p = progress(&[a.clone(), b.clone(), c.clone()], 25_000);
        assert_eq!(p.evals_per_sec, Some(100.0));
        assert!((p.eta_secs.unwrap() - 15.0).abs() < 1e-9);
        // Before any job has evals: unknown.
        let mut fresh = b.clone();
        fresh.progress.evals = None;
        let p = progress(&[fresh, c.clone()], 25_000);
        assert_eq!(p.eta_secs, None);
        assert!(p.eta_note.unwrap().contains("no measured"));
        // All ended: done.
        let p = progress(&[a], 25_000);
        assert_eq!(p.eta_secs, Some(0.0));
        assert_eq!(p.fraction, 1.0);
    }

    #[test]
    fn statistics_of_final_scores() {
        let mut g = SummaryGroup::default();
        describe_finals(&mut g, vec![4.0, 1.0, 3.0, 2.0, 5.0]);
        assert_eq!(g.finished, 5);
        assert_eq!(g.min, Some(1.0));
        assert_eq!(g.max, Some(5.0));
        assert_eq!(g.median, Some(3.0));
        assert_eq!(g.q1, Some(2.0));
        assert_eq!(g.q3, Some(4.0));
        assert_eq!(g.mean, Some(3.0));
        // Sample std (n − 1): sqrt(10 / 4), as `gaia study` says.
        assert!((g.std.unwrap() - 2.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(g.finals, vec![1.0, 2.0, 3.0, 4.0, 5.0]);

        let mut many = SummaryGroup::default();
        describe_finals(&mut many, (0..5000).map(f64::from).collect());
        assert_eq!(many.finals.len(), MAX_FINALS);
        assert_eq!(many.finished, 5000);
        assert!(many.finals.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn std_over_seeds_is_the_one_gaia_study_shows() {
        // `gaia study` sees the seeds in job order, the summary sorted: the same numbers.
        for finals in [
            vec![300.0, 100.0, 200.0],
            vec![500.0, 500.0],
            vec![-9.6e-9, -7.8e-9, -6.8e-9, -0.12],
            vec![42.0],
        ] {
            let mut g = SummaryGroup::default();
            describe_finals(&mut g, finals.clone());
            let study = crate::stats::mean_std(&finals).unwrap();
            assert_eq!(g.mean, Some(study.mean), "{finals:?}");
            assert_eq!(g.std, study.std, "{finals:?}");
        }
        // One seed: no spread to speak of, in both.
        let mut one = SummaryGroup::default();
        describe_finals(&mut one, vec![42.0]);
        assert_eq!((one.mean, one.std), (Some(42.0), None));
        assert_eq!(crate::stats::mean_std(&[42.0]).unwrap().std, None);
        // 100, 200, 300: sample std 100 (population std would be 81.6).
        let mut g = SummaryGroup::default();
        describe_finals(&mut g, vec![300.0, 100.0, 200.0]);
        assert_eq!(g.std, Some(100.0));
    }

    #[test]
    fn cells_group_by_key_in_order_of_first_appearance() {
        let mut cells = Cells::default();
        for (k, v) in [("b", 1), ("a", 2), ("b", 3), ("c", 4), ("a", 5)] {
            cells.add(k, v);
        }
        let grouped = cells.into_vec();
        let expect: Vec<(String, Vec<i32>)> = vec![
            ("b".into(), vec![1, 3]),
            ("a".into(), vec![2, 5]),
            ("c".into(), vec![4]),
        ];
        assert_eq!(grouped, expect);
    }
}
