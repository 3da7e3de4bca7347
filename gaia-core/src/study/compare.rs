//! Method comparison, as pure functions: a study's jobs (and, where asked for, each run's
//! best-ever curve) in, a [`Comparison`] out — every number computed by [`crate::stats`], with
//! the definitions it used. The store reads the input (`Reader::compare_input`); the server,
//! the CLI, the PNG figures and the dashboard all show what [`compare`] returns.
//!
//! - **Runs**: the experiments of the studies, one per method × environment × params × seed:
//!   when a seed ran more than once (a retry), its newest job. A run is *scored* when it
//!   succeeded with a finite score, *pending* while queued or running, *left out* otherwise
//!   (failed, lost, cancelled, timed out, no finite score) and counted so.
//! - **Score** ([`ScoreKind`]): the final evaluation's mean, the best-ever at the end, or the
//!   area under the best-ever-vs-evaluations curve over the budget.
//! - **Normalisation** per environment: (score − low) / (high − low) with `--norm env=low:high`
//!   first, else the random and solved scores the experiments declare ([`super::envs`]), else
//!   the lowest and highest score of the study's runs there (said in the notes).
//! - **Aggregates** over the environments that have scored runs of every method (the others
//!   are listed as left out, with the methods they lack).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::envs::shipped;
use crate::error::RequestError;
use crate::model::{Job, JobId, JobKind, JobState};
use crate::protocol::{
    CellResult, Comparison, CurveSet, EnvMethod, EnvNorm, EnvResult, EnvTarget, ExcludedEnv,
    Improvement, LeftOut, Line, MethodResult, Profile, ScoreInfo, ScoreRecord, ScoresExport,
    SeedsCell, SeedsNeededResult, TargetCell, TargetMethod, TargetResult,
};
use crate::stats::bootstrap::{
    Bootstrap, CurveMatrix, DEFAULT_RESAMPLES, MAX_RESAMPLES, Resamples, improvement_interval,
    par_map, seeds_needed, summarize, summarize_with,
};
use crate::stats::matrix::ScoreMatrix;
use crate::stats::target::{TargetRun, cell_intervals, ecdf, pooled_success};

fn invalid(m: impl Into<String>) -> RequestError {
    RequestError::Invalid(m.into())
}

// ---- options --------------------------------------------------------------------------------

/// How a run's score is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ScoreKind {
    /// The mean of the final evaluation the experiment reports (`@gaia {"final": {"mean"}}`),
    /// else the best-ever at the end of the run.
    #[default]
    Final,
    /// The best-ever at the end of the run.
    BestEver,
    /// The area under the best-ever-vs-evaluations curve over the budget, divided by the
    /// budget (a run that stopped early holds its last best-ever to the end of the budget).
    Auc,
}

impl ScoreKind {
    /// Its name on the command line and the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreKind::Final => "final",
            ScoreKind::BestEver => "best_ever",
            ScoreKind::Auc => "auc",
        }
    }

    /// The definition in words.
    pub fn definition(self) -> &'static str {
        match self {
            ScoreKind::Final => {
                "the mean return of the final evaluation the experiment reports (its \"final\" \
                 record's mean), else the best-ever at the end of the run"
            }
            ScoreKind::BestEver => "the best-ever fitness at the end of the run",
            ScoreKind::Auc => {
                "the area under the best-ever-vs-evaluations curve over the budget, divided by \
                 the budget (a run that stopped early holds its last best-ever to the end)"
            }
        }
    }
}

impl std::str::FromStr for ScoreKind {
    type Err = RequestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "final" => Ok(ScoreKind::Final),
            "best_ever" | "best-ever" => Ok(ScoreKind::BestEver),
            "auc" => Ok(ScoreKind::Auc),
            _ => Err(invalid(format!("score {s:?}: use final, best_ever or auc"))),
        }
    }
}

/// `env=low:high`: the scores that normalise to 0 and 1 on one environment.
#[derive(Clone, Debug, PartialEq)]
pub struct NormOverride {
    pub env: String,
    pub low: f64,
    pub high: f64,
}

impl std::str::FromStr for NormOverride {
    type Err = RequestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            invalid(format!(
                "norm {s:?}: write ENV=LOW:HIGH, e.g. CartPole-v1=22:500"
            ))
        };
        let (env, range) = s.rsplit_once('=').ok_or_else(bad)?;
        let (lo, hi) = range.split_once(':').ok_or_else(bad)?;
        let num = |v: &str| v.trim().parse::<f64>().ok().filter(|x| x.is_finite());
        let (low, high) = (num(lo).ok_or_else(bad)?, num(hi).ok_or_else(bad)?);
        if low == high {
            return Err(invalid(format!("norm {s:?}: LOW and HIGH must differ")));
        }
        let env = env.trim();
        crate::model::validate_name("environment", env)?;
        Ok(NormOverride {
            env: env.to_string(),
            low,
            high,
        })
    }
}

/// The target of the fixed-target view: the solved score (by default), a normalised level for
/// every environment, and raw scores for some.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct TargetSpec {
    /// A normalised level (0.5: half way from low to high); None: the solved score.
    pub level: Option<f64>,
    /// Raw targets of some environments.
    pub raw: BTreeMap<String, f64>,
}

impl std::str::FromStr for TargetSpec {
    type Err = RequestError;
    /// `solved`, a normalised level (`0.5`), `ENV=SCORE` items, or a comma-separated mix.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut t = TargetSpec::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item == "solved" {
                continue;
            }
            if let Some((env, v)) = item.rsplit_once('=') {
                let v: f64 = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|x: &f64| x.is_finite())
                    .ok_or_else(|| invalid(format!("target {item:?}: {v:?} is not a number")))?;
                crate::model::validate_name("environment", env.trim())?;
                t.raw.insert(env.trim().to_string(), v);
            } else {
                let v: f64 = item.parse().ok().filter(|x: &f64| x.is_finite()).ok_or_else(|| {
                    invalid(format!(
                        "target {item:?}: use solved, a normalised level such as 0.5, or ENV=SCORE"
                    ))
                })?;
                t.level = Some(v);
            }
        }
        Ok(t)
    }
}

impl TargetSpec {
    /// The target in words.
    pub fn describe(&self) -> String {
        let mut s = match self.level {
            None => "solved".to_string(),
            Some(l) => format!("normalised {l}"),
        };
        for (env, v) in &self.raw {
            s.push_str(&format!(", {env} {v}"));
        }
        s
    }

    /// The form [`TargetSpec::from_str`] reads.
    pub fn query(&self) -> String {
        let mut items = vec![match self.level {
            None => "solved".to_string(),
            Some(l) => l.to_string(),
        }];
        items.extend(self.raw.iter().map(|(e, v)| format!("{e}={v}")));
        items.join(",")
    }
}

/// What to compare and how.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareOptions {
    /// Further studies whose methods are compared beside the first one's.
    pub with: Vec<String>,
    pub score: ScoreKind,
    pub norms: Vec<NormOverride>,
    /// Also the aggregates per environment.
    pub by_env: bool,
    /// The fixed-target view.
    pub target: Option<TargetSpec>,
    /// Seeds needed for this interval half-width (normalised units).
    pub seeds_needed: Option<f64>,
    /// Performance profiles.
    pub profile: bool,
    /// Sample-efficiency curves.
    pub curves: bool,
    pub boot: Bootstrap,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            with: Vec::new(),
            score: ScoreKind::Final,
            norms: Vec::new(),
            by_env: false,
            target: None,
            seeds_needed: None,
            profile: false,
            curves: false,
            boot: Bootstrap::default(),
        }
    }
}

/// Points of a performance profile's τ grid and of the sample-efficiency curves' evaluations
/// grid.
const PROFILE_POINTS: usize = 101;
const CURVE_POINTS: usize = 60;
/// The fractions of the way to the target that the ECDF counts as targets.
const ECDF_LEVELS: [f64; 10] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
/// Most memory the methods' resamples may take to be drawn once for all pairs (else each pair
/// draws them again: the same numbers, more time).
const MAX_KEPT_RESAMPLES: usize = 256 << 20;

impl CompareOptions {
    /// Whether the runs' best-ever curves are needed (they cost a read of the rows' block
    /// summaries per run).
    pub fn needs_curves(&self) -> bool {
        self.score == ScoreKind::Auc || self.curves || self.target.is_some()
    }

    /// Checks the numbers a request may set.
    pub fn validate(&self) -> Result<(), RequestError> {
        let b = &self.boot;
        if !(1..=MAX_RESAMPLES).contains(&b.resamples) {
            return Err(invalid(format!(
                "resamples must be between 1 and {MAX_RESAMPLES}, got {}",
                b.resamples
            )));
        }
        if !(b.confidence > 0.0 && b.confidence < 1.0) {
            return Err(invalid(format!(
                "confidence must be between 0 and 1, got {}",
                b.confidence
            )));
        }
        if let Some(w) = self.seeds_needed
            && !(w.is_finite() && w > 0.0)
        {
            return Err(invalid(format!(
                "seeds_needed is an interval half-width in normalised units (such as 0.05), got {w}"
            )));
        }
        for s in &self.with {
            crate::model::validate_name("study name", s)?;
        }
        Ok(())
    }

    /// The query string of these options (without `?`; empty for the defaults).
    pub fn query(&self) -> String {
        let mut q: Vec<(String, String)> = Vec::new();
        if !self.with.is_empty() {
            q.push(("with".into(), self.with.join(",")));
        }
        if self.score != ScoreKind::Final {
            q.push(("score".into(), self.score.as_str().into()));
        }
        if !self.norms.is_empty() {
            let n: Vec<String> = self
                .norms
                .iter()
                .map(|n| format!("{}={}:{}", n.env, n.low, n.high))
                .collect();
            q.push(("norm".into(), n.join(",")));
        }
        if self.by_env {
            q.push(("by".into(), "env".into()));
        }
        if let Some(t) = &self.target {
            q.push(("target".into(), t.query()));
        }
        if let Some(w) = self.seeds_needed {
            q.push(("seeds_needed".into(), w.to_string()));
        }
        if self.profile {
            q.push(("profile".into(), "true".into()));
        }
        if self.curves {
            q.push(("curves".into(), "true".into()));
        }
        if self.boot.resamples != DEFAULT_RESAMPLES {
            q.push(("resamples".into(), self.boot.resamples.to_string()));
        }
        if self.boot.seed != 0 {
            q.push(("seed".into(), self.boot.seed.to_string()));
        }
        q.iter()
            .map(|(k, v)| format!("{k}={}", escape(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Options from a request's query (`get(key)`), as [`CompareOptions::query`] writes them.
    pub fn from_query<'a>(
        get: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<CompareOptions, RequestError> {
        let mut o = CompareOptions::default();
        let some = |k: &str| get(k).map(str::trim).filter(|v| !v.is_empty());
        if let Some(w) = some("with") {
            o.with = super::parse_list("with", w)?;
        }
        if let Some(s) = some("score") {
            o.score = s.parse()?;
        }
        if let Some(n) = some("norm") {
            for item in n.split(',').filter(|i| !i.trim().is_empty()) {
                o.norms.push(item.parse()?);
            }
        }
        o.by_env = match some("by") {
            None => false,
            Some("env") => true,
            Some(v) => return Err(invalid(format!("by={v:?}: the one grouping is by=env"))),
        };
        if let Some(t) = some("target") {
            o.target = Some(t.parse()?);
        }
        let num = |k: &str| -> Result<Option<f64>, RequestError> {
            some(k)
                .map(|v| {
                    v.parse::<f64>()
                        .map_err(|_| invalid(format!("{k}={v:?} is not a number")))
                })
                .transpose()
        };
        o.seeds_needed = num("seeds_needed")?;
        let flag = |k: &str| -> Result<bool, RequestError> {
            match some(k) {
                None | Some("false") | Some("0") => Ok(false),
                Some("true") | Some("1") => Ok(true),
                Some(v) => Err(invalid(format!("{k}={v:?}: use true or false"))),
            }
        };
        o.profile = flag("profile")?;
        o.curves = flag("curves")?;
        let whole = |k: &str| -> Result<Option<u64>, RequestError> {
            some(k)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| invalid(format!("{k}={v:?} is not a whole number")))
                })
                .transpose()
        };
        if let Some(r) = whole("resamples")? {
            o.boot.resamples = usize::try_from(r).unwrap_or(usize::MAX);
        }
        if let Some(s) = whole("seed")? {
            o.boot.seed = s;
        }
        if let Some(c) = num("confidence")? {
            o.boot.confidence = c;
        }
        o.validate()?;
        Ok(o)
    }
}

/// A query value with everything but unreserved characters percent-encoded.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~,:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---- input ------------------------------------------------------------------------------------

/// A run's best-ever against evaluations: the points where it rose (ascending in both), and
/// the evaluations of its last row.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Curve {
    pub steps: Vec<(f64, f64)>,
    pub end: f64,
}

impl Curve {
    /// The best-ever after `x` evaluations: that of the last step at or before `x` (held past
    /// the end); None before the first row.
    pub fn at(&self, x: f64) -> Option<f64> {
        let i = self.steps.partition_point(|s| s.0 <= x);
        (i > 0).then(|| self.steps[i - 1].1)
    }

    /// The evaluations at which the best-ever first reached `y`.
    pub fn first_reaching(&self, y: f64) -> Option<f64> {
        self.steps.iter().find(|s| s.1 >= y).map(|s| s.0)
    }

    /// The area under the curve from 0 to `budget` evaluations over `budget`: the first value
    /// stands for the evaluations before the first row, the last one holds to the budget.
    pub fn auc(&self, budget: f64) -> Option<f64> {
        let first = self.steps.first()?;
        // Also refuses a NaN budget.
        if budget.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let (mut area, mut px, mut py) = (0.0, 0.0, first.1);
        for &(x, y) in &self.steps {
            let x = x.clamp(px, budget);
            area += py * (x - px);
            px = x;
            py = y;
        }
        area += py * (budget - px).max(0.0);
        Some(area / budget)
    }
}

/// One study's jobs as the comparison reads them, with the best-ever curves of its succeeded
/// experiments when the options need them (keyed by job id).
#[derive(Clone, Debug, Default)]
pub struct StudyRuns {
    pub name: String,
    pub jobs: Vec<Job>,
    pub curves: HashMap<JobId, Curve>,
}

// ---- runs into cells --------------------------------------------------------------------------

/// A scored run.
#[derive(Clone, Debug)]
struct Scored<'a> {
    job: &'a Job,
    raw: f64,
    norm: f64,
    curve: Option<&'a Curve>,
}

/// One method on one environment.
#[derive(Clone, Debug, Default)]
struct Cell<'a> {
    scored: Vec<Scored<'a>>,
    pending: u64,
    left_out: Vec<LeftOut>,
}

/// One method (× params) of one study.
#[derive(Clone, Debug)]
struct Method<'a> {
    label: String,
    study: String,
    name: String,
    params: BTreeMap<String, serde_json::Value>,
    /// By environment index.
    cells: BTreeMap<usize, Cell<'a>>,
}

impl Method<'_> {
    fn scored_in(&self, env: usize) -> usize {
        self.cells.get(&env).map_or(0, |c| c.scored.len())
    }

    fn norms_in(&self, env: usize) -> Vec<f64> {
        self.cells
            .get(&env)
            .map(|c| c.scored.iter().map(|s| s.norm).collect())
            .unwrap_or_default()
    }
}

/// The runs of the studies in cells, normalised.
struct Collected<'a> {
    methods: Vec<Method<'a>>,
    envs: Vec<String>,
    norms: Vec<EnvNorm>,
    notes: Vec<String>,
    provisional: bool,
}

/// A method's label from its name and params (`cma_es pop_size=32`).
fn label_of(method: &str, params: &BTreeMap<String, serde_json::Value>) -> String {
    let mut label = method.to_string();
    for (k, v) in params {
        label.push_str(&format!(" {k}={v}"));
    }
    label
}

/// Per study, method and environment, the params swept there: those whose value differs
/// between its runs, or that only some of them set. The others are settings of the
/// environment (`eval_episodes=2` on CartPole, none on sphere), not variants of the method, so
/// the method stays one method across environments.
fn swept_params(studies: &[StudyRuns]) -> HashMap<SweptKey<'_>, BTreeSet<&str>> {
    // Per study, method and environment: its run count, and per param its values and how many
    // runs set it.
    type Seen<'a> = (usize, BTreeMap<&'a str, (BTreeSet<String>, usize)>);
    let mut seen: HashMap<SweptKey, Seen> = HashMap::new();
    for (si, st) in studies.iter().enumerate() {
        for job in &st.jobs {
            let Some(e) = job.spec.experiment() else {
                continue;
            };
            let (runs, params) = seen.entry((si, &e.method, &e.env)).or_default();
            *runs += 1;
            for (k, v) in &job.spec.params {
                let (values, set) = params.entry(k.as_str()).or_default();
                values.insert(v.to_string());
                *set += 1;
            }
        }
    }
    seen.into_iter()
        .map(|(key, (runs, params))| {
            // A param only some runs set is swept too (set versus left at its default).
            let swept = params
                .into_iter()
                .filter(|(_, (values, set))| values.len() > 1 || *set < runs)
                .map(|(k, _)| k)
                .collect();
            (key, swept)
        })
        .collect()
}

/// A study (its index), method and environment.
type SweptKey<'a> = (usize, &'a str, &'a str);

/// The params of `params` that are swept (`swept`).
fn swept_of(
    params: &BTreeMap<String, serde_json::Value>,
    swept: Option<&BTreeSet<&str>>,
) -> BTreeMap<String, serde_json::Value> {
    params
        .iter()
        .filter(|(k, _)| swept.is_some_and(|s| s.contains(k.as_str())))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// A succeeded run's raw score, if it has a finite one.
fn raw_score(job: &Job, kind: ScoreKind, curve: Option<&Curve>) -> Option<f64> {
    let best_ever = job.progress.best_ever.or(job.progress.best);
    let v = match kind {
        ScoreKind::Final => job
            .result
            .as_ref()
            .and_then(|r| r.get("mean"))
            .and_then(|m| m.as_f64())
            .filter(|m| m.is_finite())
            .or(best_ever),
        ScoreKind::BestEver => best_ever,
        ScoreKind::Auc => curve.and_then(|c| c.auc(job.spec.max_evals().unwrap_or(0) as f64)),
    };
    v.filter(|v| v.is_finite())
}

fn collect<'a>(studies: &'a [StudyRuns], opts: &CompareOptions) -> Collected<'a> {
    let mut notes = Vec::new();
    // The newest job of each (study, method, params, env, seed): a retry replaces its run.
    let mut newest: HashMap<(usize, String, String, u64, bool), &Job> = HashMap::new();
    let mut superseded = 0;
    let mut provisional_jobs = 0;
    for (si, st) in studies.iter().enumerate() {
        for job in &st.jobs {
            if job.spec.kind() != JobKind::Experiment {
                continue;
            }
            let e = job.spec.experiment().expect("an experiment");
            let key = (
                si,
                label_of(&e.method, &job.spec.params),
                e.env.clone(),
                e.seed.unwrap_or(job.id),
                e.seed.is_some(),
            );
            match newest.get(&key) {
                Some(prev) if prev.id > job.id => superseded += 1,
                Some(_) => {
                    superseded += 1;
                    newest.insert(key, job);
                }
                None => {
                    newest.insert(key, job);
                }
            }
        }
    }
    if superseded > 0 {
        notes.push(format!(
            "{superseded} earlier run{} of a seed that ran again (a retry) {} not counted",
            if superseded == 1 { "" } else { "s" },
            if superseded == 1 { "is" } else { "are" }
        ));
    }
    let mut runs: Vec<(usize, &Job)> = newest.into_iter().map(|(k, j)| (k.0, j)).collect();
    let swept = swept_params(studies);
    runs.sort_by_key(|(si, j)| (*si, j.id));

    // Methods and environments in order of first appearance; labels get their study where
    // two studies share one.
    let mut envs: Vec<String> = Vec::new();
    let mut methods: Vec<Method> = Vec::new();
    let mut index: HashMap<(usize, String), usize> = HashMap::new();
    // Per succeeded run: its method, env, job, raw score and curve.
    type Raw<'a> = (usize, usize, &'a Job, Option<f64>, Option<&'a Curve>);
    let mut raw: Vec<Raw> = Vec::new();
    for &(si, job) in &runs {
        let e = job.spec.experiment().expect("an experiment");
        let params = swept_of(
            &job.spec.params,
            swept.get(&(si, e.method.as_str(), e.env.as_str())),
        );
        let label = label_of(&e.method, &params);
        let env = match envs.iter().position(|x| *x == e.env) {
            Some(i) => i,
            None => {
                envs.push(e.env.clone());
                envs.len() - 1
            }
        };
        let m = *index.entry((si, label.clone())).or_insert_with(|| {
            methods.push(Method {
                label: label.clone(),
                study: studies[si].name.clone(),
                name: e.method.clone(),
                params,
                cells: BTreeMap::new(),
            });
            methods.len() - 1
        });
        let cell = methods[m].cells.entry(env).or_default();
        let curve = studies[si].curves.get(&job.id);
        match job.state {
            JobState::Queued | JobState::Running => {
                cell.pending += 1;
                provisional_jobs += 1;
            }
            JobState::Succeeded => match raw_score(job, opts.score, curve) {
                Some(v) => raw.push((m, env, job, Some(v), curve)),
                None => cell.left_out.push(LeftOut {
                    job: job.id,
                    seed: e.seed,
                    state: job.state,
                    why: match opts.score {
                        ScoreKind::Auc if curve.is_none() => "no best-ever curve".into(),
                        _ => "no finite score".into(),
                    },
                }),
            },
            state => cell.left_out.push(LeftOut {
                job: job.id,
                seed: e.seed,
                state,
                why: state.as_str().replace('_', " "),
            }),
        }
    }
    if studies.len() > 1 {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for m in &methods {
            *count.entry(m.label.as_str()).or_default() += 1;
        }
        let shared: Vec<bool> = methods
            .iter()
            .map(|m| count[m.label.as_str()] > 1)
            .collect();
        for (m, shared) in methods.iter_mut().zip(shared) {
            if shared {
                m.label = format!("{}/{}", m.study, m.label);
            }
        }
    }

    // Normalisation per environment.
    let mut norms = Vec::with_capacity(envs.len());
    let mut fallbacks = Vec::new();
    for (ei, env) in envs.iter().enumerate() {
        let solved = shipped(env).map(|s| s.solved);
        let ov = opts.norms.iter().find(|n| n.env.eq_ignore_ascii_case(env));
        let (low, high, source) = if let Some(n) = ov {
            (n.low, n.high, "override")
        } else if let Some(s) = shipped(env) {
            (s.random, s.solved, "shipped")
        } else {
            let vals = raw.iter().filter(|r| r.1 == ei).filter_map(|r| r.3);
            let (lo, hi) = vals.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
            if lo > hi {
                // No scored run yet: nothing to normalise.
                (0.0, 1.0, "min-max")
            } else if lo == hi {
                fallbacks.push(format!("{env} (every run scored {lo}: normalised to 0)"));
                (lo, lo + 1.0, "min-max")
            } else {
                fallbacks.push(env.clone());
                (lo, hi, "min-max")
            }
        };
        norms.push(EnvNorm {
            env: env.clone(),
            low,
            high,
            source: source.into(),
            solved,
        });
    }
    if !fallbacks.is_empty() {
        notes.push(format!(
            "no known random and solved scores for {}: normalised min–max over the study's runs \
             (pass --norm ENV=LOW:HIGH to fix them)",
            fallbacks.join(", ")
        ));
    }
    for (m, env, job, v, curve) in raw {
        let v = v.expect("scored");
        let n = &norms[env];
        methods[m]
            .cells
            .get_mut(&env)
            .expect("the run's cell")
            .scored
            .push(Scored {
                job,
                raw: v,
                norm: (v - n.low) / (n.high - n.low),
                curve,
            });
    }
    let provisional = provisional_jobs > 0;
    if provisional {
        notes.insert(
            0,
            format!(
                "provisional: {provisional_jobs} run{} still queued or running",
                if provisional_jobs == 1 {
                    " is"
                } else {
                    "s are"
                }
            ),
        );
    }
    Collected {
        methods,
        envs,
        norms,
        notes,
        provisional,
    }
}

// ---- the comparison ---------------------------------------------------------------------------

/// Evenly spaced points from `lo` to `hi`.
fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|k| {
            if k + 1 == n {
                hi
            } else {
                lo + (hi - lo) * k as f64 / (n - 1) as f64
            }
        })
        .collect()
}

/// Compares the methods of `studies` (the first is the main one) as `opts` asks. Errors only
/// for a study without experiments.
pub fn compare(studies: &[StudyRuns], opts: &CompareOptions) -> Result<Comparison, RequestError> {
    let c = collect(studies, opts);
    if c.methods.is_empty() {
        return Err(invalid(format!(
            "study {:?} has no experiments to compare",
            studies.first().map_or("", |s| s.name.as_str())
        )));
    }
    let boot = &opts.boot;
    let mut notes = c.notes.clone();
    let with_runs: Vec<usize> = (0..c.methods.len())
        .filter(|&m| {
            c.methods[m]
                .cells
                .values()
                .any(|cell| !cell.scored.is_empty())
        })
        .collect();
    let without: Vec<&str> = (0..c.methods.len())
        .filter(|m| !with_runs.contains(m))
        .map(|m| c.methods[m].label.as_str())
        .collect();
    if !without.is_empty() {
        notes.push(format!("no scored run yet: {}", without.join(", ")));
    }
    // Environments with scored runs of every method that has any.
    let mut included = Vec::new();
    let mut excluded = Vec::new();
    for (e, env) in c.envs.iter().enumerate() {
        let lacking: Vec<&str> = with_runs
            .iter()
            .filter(|&&m| c.methods[m].scored_in(e) == 0)
            .map(|&m| c.methods[m].label.as_str())
            .collect();
        if lacking.is_empty() && !with_runs.is_empty() {
            included.push(e);
        } else {
            let reason = if with_runs.is_empty() {
                "no scored run yet".to_string()
            } else {
                format!("no scored run of {} yet", lacking.join(", "))
            };
            excluded.push(ExcludedEnv {
                env: env.clone(),
                reason,
            });
        }
    }
    if !excluded.is_empty() {
        let names: Vec<&str> = excluded.iter().map(|x| x.env.as_str()).collect();
        notes.push(if included.is_empty() {
            "no environment has scored runs of every method yet: no aggregates".to_string()
        } else {
            format!(
                "left out of the aggregates: {} (not every method has a scored run there)",
                names.join(", ")
            )
        });
    }
    let matrices: Vec<Option<ScoreMatrix>> = c
        .methods
        .iter()
        .map(|m| {
            if included.is_empty() || included.iter().any(|&e| m.scored_in(e) == 0) {
                return None;
            }
            ScoreMatrix::new(&included.iter().map(|&e| m.norms_in(e)).collect::<Vec<_>>()).ok()
        })
        .collect();

    // τ grid of the profiles: over [min(0, lowest), max(1, highest)] normalised score.
    let taus = if opts.profile {
        let all = matrices
            .iter()
            .flatten()
            .flat_map(|m| (0..m.envs()).flat_map(move |e| m.env(e).iter().copied()));
        let (lo, hi) = all.fold((0.0f64, 1.0f64), |(a, b), v| (a.min(v), b.max(v)));
        linspace(lo, hi, PROFILE_POINTS)
    } else {
        Vec::new()
    };
    let jobs: Vec<(usize, &ScoreMatrix)> = matrices
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.as_ref().map(|m| (i, m)))
        .collect();
    // Each method's resamples, drawn once for its aggregates, its profile and every pair it is
    // in (where they fit in memory; else drawn again where needed: the same numbers).
    let pairs: Vec<(usize, usize)> = jobs
        .iter()
        .enumerate()
        .flat_map(|(a, &(i, _))| jobs[a + 1..].iter().map(move |&(j, _)| (i, j)))
        .collect();
    let bytes: usize = jobs
        .iter()
        .map(|(_, m)| Resamples::bytes(boot, m.runs()))
        .sum();
    let kept: HashMap<usize, Resamples> = if bytes <= MAX_KEPT_RESAMPLES {
        jobs.iter()
            .map(|j| j.0)
            .zip(par_map(&jobs, |&(i, m)| {
                Resamples::draw(m, boot, &c.methods[i].label)
            }))
            .collect()
    } else {
        HashMap::new()
    };
    let summaries = par_map(&jobs, |&(i, m)| {
        summarize_with(m, &taus, boot, &c.methods[i].label, kept.get(&i))
    });
    let mut summary_of: HashMap<usize, crate::stats::bootstrap::MethodSummary> =
        jobs.iter().map(|j| j.0).zip(summaries).collect();

    // Probability of improvement for every pair.
    let improvement: Vec<Improvement> = par_map(&pairs, |&(i, j)| {
        let (x, y) = (&c.methods[i].label, &c.methods[j].label);
        Improvement {
            x: x.clone(),
            y: y.clone(),
            p: improvement_interval(
                (matrices[i].as_ref().expect("a matrix"), x, kept.get(&i)),
                (matrices[j].as_ref().expect("a matrix"), y, kept.get(&j)),
                boot,
            ),
        }
    });

    let mut methods: Vec<MethodResult> = Vec::with_capacity(c.methods.len());
    for (i, m) in c.methods.iter().enumerate() {
        let s = summary_of.get(&i).map(|s| s.aggregates);
        let mut scores = BTreeMap::new();
        let mut cells = Vec::new();
        for (&e, cell) in &m.cells {
            if !cell.scored.is_empty() {
                scores.insert(c.envs[e].clone(), m.norms_in(e));
            }
            cells.push(CellResult {
                env: c.envs[e].clone(),
                runs: cell.scored.len() as u64,
                pending: cell.pending,
                left_out: cell.left_out.clone(),
            });
        }
        methods.push(MethodResult {
            method: m.label.clone(),
            study: m.study.clone(),
            name: m.name.clone(),
            params: m.params.clone(),
            runs: included.iter().map(|&e| m.scored_in(e) as u64).sum(),
            iqm: s.map(|a| a.iqm),
            median: s.map(|a| a.median),
            mean: s.map(|a| a.mean),
            optimality_gap: s.map(|a| a.optimality_gap),
            scores,
            cells,
        });
    }

    let profile = opts.profile.then(|| Profile {
        taus: taus.clone(),
        lines: jobs
            .iter()
            .map(|&(i, _)| Line {
                method: c.methods[i].label.clone(),
                points: summary_of.remove(&i).map(|s| s.profile).unwrap_or_default(),
            })
            .collect(),
    });

    let by_env = if opts.by_env {
        by_env(&c, boot)
    } else {
        Vec::new()
    };
    let curves = if opts.curves {
        curves(&c, &included, &jobs, boot)
    } else {
        None
    };
    let target = opts
        .target
        .as_ref()
        .map(|t| target(&c, &included, t, boot, &mut notes));
    let seeds_needed = opts.seeds_needed.map(|w| {
        let cells: Vec<(usize, usize)> = c
            .methods
            .iter()
            .enumerate()
            .flat_map(|(i, m)| m.cells.keys().map(move |&e| (i, e)))
            .collect();
        SeedsNeededResult {
            half_width: w,
            method: format!(
                "from the half-width h of the {:.0} % bootstrap interval of each cell's mean \
                 normalised score over its n runs ({} resamples), assuming h shrinks as 1/√n: \
                 a cell needs ⌈n·(h/{w})²⌉ runs",
                boot.confidence * 100.0,
                boot.resamples
            ),
            cells: par_map(&cells, |&(i, e)| {
                let m = &c.methods[i];
                SeedsCell {
                    method: m.label.clone(),
                    env: c.envs[e].clone(),
                    need: seeds_needed(
                        &m.norms_in(e),
                        w,
                        boot,
                        &format!("seeds:{}\0{}", m.label, c.envs[e]),
                    ),
                }
            }),
        }
    });

    Ok(Comparison {
        studies: studies.iter().map(|s| s.name.clone()).collect(),
        provisional: c.provisional,
        notes,
        score: ScoreInfo {
            kind: opts.score.as_str().into(),
            definition: opts.score.definition().into(),
        },
        normalisation: c.norms.clone(),
        resamples: boot.resamples as u64,
        seed: boot.seed,
        confidence: boot.confidence,
        envs: included.iter().map(|&e| c.envs[e].clone()).collect(),
        excluded_envs: excluded,
        methods,
        by_env,
        improvement,
        profile,
        curves,
        target,
        seeds_needed,
    })
}

/// The aggregates of each environment alone.
fn by_env(c: &Collected, boot: &Bootstrap) -> Vec<EnvResult> {
    let cells: Vec<(usize, usize)> = (0..c.envs.len())
        .flat_map(|e| {
            c.methods
                .iter()
                .enumerate()
                .filter(move |(_, m)| m.scored_in(e) > 0)
                .map(move |(i, _)| (e, i))
        })
        .collect();
    let results = par_map(&cells, |&(e, i)| {
        let m = &c.methods[i];
        let matrix = ScoreMatrix::new(&[m.norms_in(e)]).expect("scored runs");
        let s = summarize(
            &matrix,
            &[],
            boot,
            &format!("env:{}\0{}", m.label, c.envs[e]),
        )
        .aggregates;
        EnvMethod {
            method: m.label.clone(),
            runs: matrix.runs() as u64,
            iqm: s.iqm,
            median: s.median,
            mean: s.mean,
            optimality_gap: s.optimality_gap,
        }
    });
    let mut out: Vec<EnvResult> = Vec::new();
    for (&(e, _), r) in cells.iter().zip(results) {
        match out.last_mut() {
            Some(last) if last.env == c.envs[e] => last.methods.push(r),
            _ => out.push(EnvResult {
                env: c.envs[e].clone(),
                methods: vec![r],
            }),
        }
    }
    out
}

/// Sample-efficiency curves over the aggregated environments.
fn curves(
    c: &Collected,
    included: &[usize],
    jobs: &[(usize, &ScoreMatrix)],
    boot: &Bootstrap,
) -> Option<CurveSet> {
    let runs = || {
        jobs.iter().flat_map(|&(i, _)| {
            included.iter().flat_map(move |&e| {
                c.methods[i]
                    .cells
                    .get(&e)
                    .into_iter()
                    .flat_map(|cell| cell.scored.iter())
            })
        })
    };
    let start = runs()
        .filter_map(|s| s.curve.and_then(|cv| cv.steps.first()).map(|p| p.0))
        .fold(f64::MAX, f64::min);
    let end = runs()
        .map(|s| (s.job.spec.max_evals().unwrap_or(0) as f64).max(s.curve.map_or(0.0, |cv| cv.end)))
        .fold(0.0f64, f64::max);
    // Also refuses NaN bounds.
    if start.partial_cmp(&end) != Some(std::cmp::Ordering::Less) {
        return None;
    }
    let grid = linspace(start, end, CURVE_POINTS);
    let lines = par_map(jobs, |&(i, _)| {
        let m = &c.methods[i];
        let envs: Vec<Vec<Vec<f64>>> = included
            .iter()
            .map(|&e| {
                let n = &c.norms[e];
                m.cells[&e]
                    .scored
                    .iter()
                    .map(|s| {
                        grid.iter()
                            .map(|&x| {
                                s.curve
                                    .and_then(|cv| cv.at(x))
                                    .map_or(f64::NAN, |v| (v - n.low) / (n.high - n.low))
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Line {
            method: m.label.clone(),
            points: CurveMatrix::new(&envs)
                .map(|cm| cm.iqm_intervals(boot, &format!("curve:{}", m.label)))
                .unwrap_or_default(),
        }
    });
    Some(CurveSet { evals: grid, lines })
}

/// The fixed-target view.
fn target(
    c: &Collected,
    included: &[usize],
    spec: &TargetSpec,
    boot: &Bootstrap,
    notes: &mut Vec<String>,
) -> TargetResult {
    let mut unknown = Vec::new();
    let raw_targets: Vec<f64> = c
        .norms
        .iter()
        .map(|n| {
            if let Some(v) = spec.raw.get(&n.env) {
                return *v;
            }
            match (spec.level, n.solved) {
                (Some(l), _) => n.low + l * (n.high - n.low),
                (None, Some(s)) => s,
                (None, None) => {
                    unknown.push(n.env.clone());
                    n.high
                }
            }
        })
        .collect();
    if !unknown.is_empty() {
        notes.push(format!(
            "no solved score known for {}: its target is the top of its normalisation",
            unknown.join(", ")
        ));
    }
    let methods: Vec<usize> = (0..c.methods.len()).collect();
    let results = par_map(&methods, |&i| {
        let m = &c.methods[i];
        let mut cells = Vec::new();
        let mut pooled: Vec<Vec<TargetRun>> = Vec::new();
        let mut pairs: Vec<Option<f64>> = Vec::new();
        for (&e, cell) in &m.cells {
            let runs: Vec<TargetRun> = cell
                .scored
                .iter()
                .filter_map(|s| {
                    let cv = s.curve?;
                    Some(TargetRun {
                        hit: cv.first_reaching(raw_targets[e]),
                        used: cv.end,
                    })
                })
                .collect();
            if runs.is_empty() {
                continue;
            }
            let (success, ert) =
                cell_intervals(&runs, boot, &format!("target:{}\0{}", m.label, c.envs[e]));
            if included.contains(&e) {
                let low = c.norms[e].low;
                for s in &cell.scored {
                    let Some(cv) = s.curve else { continue };
                    for f in ECDF_LEVELS {
                        pairs.push(cv.first_reaching(low + f * (raw_targets[e] - low)));
                    }
                }
                pooled.push(runs.clone());
            }
            cells.push(TargetCell {
                env: c.envs[e].clone(),
                runs: runs.len() as u64,
                successes: runs.iter().filter(|r| r.hit.is_some()).count() as u64,
                success,
                ert,
                evals: runs.iter().map(|r| r.hit).collect(),
            });
        }
        TargetMethod {
            method: m.label.clone(),
            success: pooled_success(&pooled, boot),
            cells,
            ecdf: ecdf(&pairs),
        }
    });
    TargetResult {
        target: spec.describe(),
        envs: c
            .envs
            .iter()
            .zip(&raw_targets)
            .map(|(env, t)| EnvTarget {
                env: env.clone(),
                target: *t,
            })
            .collect(),
        ecdf_levels: ECDF_LEVELS.to_vec(),
        methods: results,
    }
}

/// Every scored run of the studies with its raw and normalised score, as a matrix per method
/// for `rliable` and as records for pandas.
pub fn scores(studies: &[StudyRuns], opts: &CompareOptions) -> ScoresExport {
    let c = collect(studies, opts);
    let mut matrices = BTreeMap::new();
    let mut records = Vec::new();
    for m in &c.methods {
        let rows = (0..c.envs.len()).map(|e| m.scored_in(e)).max().unwrap_or(0);
        let matrix: Vec<Vec<Option<f64>>> = (0..rows)
            .map(|k| {
                (0..c.envs.len())
                    .map(|e| {
                        m.cells
                            .get(&e)
                            .and_then(|cell| cell.scored.get(k))
                            .map(|s| s.norm)
                    })
                    .collect()
            })
            .collect();
        matrices.insert(m.label.clone(), matrix);
        for (&e, cell) in &m.cells {
            for s in &cell.scored {
                records.push(ScoreRecord {
                    study: m.study.clone(),
                    method: m.label.clone(),
                    env: c.envs[e].clone(),
                    seed: s.job.spec.seed(),
                    job: s.job.id,
                    score: s.raw,
                    normalised: s.norm,
                });
            }
        }
    }
    ScoresExport {
        studies: studies.iter().map(|s| s.name.clone()).collect(),
        score: ScoreInfo {
            kind: opts.score.as_str().into(),
            definition: opts.score.definition().into(),
        },
        normalisation: c.norms,
        envs: c.envs,
        matrices,
        records,
    }
}

/// Studies made up for tests: methods of graded skill on CartPole and sphere (shipped
/// normalisation) and on an environment nobody declared scores for.
#[cfg(test)]
pub(crate) mod testdata {
    use super::*;
    use crate::stats::rng::Rng;

    /// A job as the store would hold it.
    pub(crate) fn job(
        id: JobId,
        method: &str,
        env: &str,
        seed: Option<u64>,
        state: JobState,
        score: Option<f64>,
    ) -> Job {
        let spec = crate::model::JobSpec {
            env: Some(env.into()),
            seed,
            study: Some("s".into()),
            ..crate::model::JobSpec::experiment(method, 1000)
        };
        serde_json::from_value(serde_json::json!({
            "id": id, "spec": spec, "state": state, "attempt": 1, "submitted_at": 0,
            "result": score.map(|s| serde_json::json!({"mean": s})),
            "progress": {"best_ever": score, "evals": 1000.0, "rows": 10},
        }))
        .expect("a job")
    }

    /// `methods` methods × `envs` × `seeds` seeds, every run succeeded, with a curve rising to
    /// its score; method k is better than method k + 1 on average.
    pub(crate) fn study(name: &str, methods: usize, envs: &[&str], seeds: u64) -> StudyRuns {
        let mut rng = Rng::new(7, name);
        let mut u = move || f64::from(rng.below(1_000_000)) / 1e6;
        let mut runs = StudyRuns {
            name: name.into(),
            ..StudyRuns::default()
        };
        let mut id = 0;
        for m in 0..methods {
            let method = format!("method_{:02}", m + 1);
            for env in envs {
                let (lo, hi) = shipped(env).map_or((0.0, 100.0), |s| (s.random, s.solved));
                for seed in 1..=seeds {
                    id += 1;
                    let skill = 1.0 - m as f64 / (methods as f64 + 1.0);
                    let frac = (skill * (0.7 + 0.5 * u())).min(1.05);
                    let score = lo + frac * (hi - lo);
                    let mut j = job(
                        id,
                        &method,
                        env,
                        Some(seed),
                        JobState::Succeeded,
                        Some(score),
                    );
                    j.spec.study = Some(name.into());
                    let steps: Vec<(f64, f64)> = (1..=10)
                        .map(|k| {
                            let x = 100.0 * f64::from(k) * (0.5 + u());
                            (x, lo + frac * (hi - lo) * (f64::from(k) / 10.0).sqrt())
                        })
                        .scan(0.0, |last: &mut f64, (x, y)| {
                            *last = last.max(x);
                            Some((*last, y))
                        })
                        .collect();
                    let end = steps.last().map_or(0.0, |s| s.0);
                    runs.curves.insert(id, Curve { steps, end });
                    runs.jobs.push(j);
                }
            }
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    use super::testdata::{job, study};
    use super::*;
    use serde_json::json;

    fn opts() -> CompareOptions {
        CompareOptions {
            boot: Bootstrap {
                resamples: 300,
                ..Bootstrap::default()
            },
            ..CompareOptions::default()
        }
    }

    #[test]
    fn aggregates_are_the_stats_of_the_normalised_runs() {
        let s = study("s", 3, &["CartPole-v1", "sphere"], 5);
        let c = compare(std::slice::from_ref(&s), &opts()).unwrap();
        assert_eq!(c.envs, ["CartPole-v1", "sphere"]);
        assert!(!c.provisional);
        assert_eq!(c.methods.len(), 3);
        let m = &c.methods[0];
        assert_eq!(m.runs, 10);
        let n = &c.normalisation[0];
        assert_eq!((n.low, n.high, n.source.as_str()), (24.1, 475.0, "shipped"));
        // The aggregate is the matrix's, from the normalised scores it reports.
        let matrix =
            ScoreMatrix::new(&[m.scores["CartPole-v1"].clone(), m.scores["sphere"].clone()])
                .unwrap();
        let a = matrix.aggregates();
        assert_eq!(m.iqm.unwrap().estimate, a.iqm);
        assert_eq!(m.optimality_gap.unwrap().estimate, a.optimality_gap);
        let raw = s.jobs[0].result.as_ref().unwrap()["mean"].as_f64().unwrap();
        assert!((m.scores["CartPole-v1"][0] - (raw - 24.1) / (475.0 - 24.1)).abs() < 1e-12);
        // Better methods come out better; pairs of methods are compared once each.
        assert!(c.methods[0].iqm.unwrap().estimate > c.methods[2].iqm.unwrap().estimate);
        assert_eq!(c.improvement.len(), 3);
        assert!(c.improvement[1].p.estimate > 0.5, "{:?}", c.improvement[1]);
        // Same input, same seed: the same numbers.
        assert_eq!(c, compare(std::slice::from_ref(&s), &opts()).unwrap());
    }

    #[test]
    fn left_out_pending_and_retried_runs_are_counted_apart() {
        let mut s = study("s", 2, &["CartPole-v1"], 3);
        s.jobs[0].state = JobState::Failed;
        s.jobs[1].state = JobState::Running;
        s.jobs[2].result = Some(serde_json::json!({"mean": f64::NAN}));
        s.jobs[2].progress.best_ever = None;
        // Seed 1 of method 2 ran again (a retry): only the newer job counts.
        let mut again = job(
            100,
            "method_02",
            "CartPole-v1",
            Some(1),
            JobState::Succeeded,
            Some(300.0),
        );
        again.spec.study = Some("s".into());
        s.jobs.push(again);
        let c = compare(&[s], &opts()).unwrap();
        assert!(c.provisional);
        assert!(
            c.notes[0].starts_with("provisional: 1 run is still"),
            "{:?}",
            c.notes
        );
        assert!(
            c.notes.iter().any(|n| n.contains("a retry")),
            "{:?}",
            c.notes
        );
        let cell = &c.methods[0].cells[0];
        assert_eq!((cell.runs, cell.pending, cell.left_out.len()), (0, 1, 2));
        assert_eq!(cell.left_out[0].why, "failed");
        assert_eq!(cell.left_out[1].why, "no finite score");
        // Method 1 has no scored run: it has no aggregates (and the notes say so); method 2
        // is aggregated over CartPole alone.
        assert_eq!(c.envs, ["CartPole-v1"]);
        assert!(c.methods[0].iqm.is_none() && c.methods[1].iqm.is_some());
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("no scored run yet: method_01")),
            "{:?}",
            c.notes
        );
        assert_eq!(c.methods[1].cells[0].runs, 3);
        assert!(c.methods[1].scores["CartPole-v1"].contains(&((300.0 - 24.1) / (475.0 - 24.1))));
    }

    #[test]
    fn a_method_missing_an_env_leaves_that_env_out_of_the_aggregates() {
        let mut s = study("s", 2, &["CartPole-v1", "sphere"], 3);
        s.jobs
            .retain(|j| !(j.spec.method() == Some("method_02") && j.spec.env() == Some("sphere")));
        let c = compare(&[s], &opts()).unwrap();
        assert_eq!(c.envs, ["CartPole-v1"]);
        assert_eq!(c.excluded_envs[0].env, "sphere");
        assert_eq!(c.methods[0].runs, 3);
        // Its scores there are still reported.
        assert_eq!(c.methods[0].scores["sphere"].len(), 3);
    }

    #[test]
    fn normalisation_falls_back_to_min_max_and_says_so() {
        let s = study("s", 2, &["MyEnv-v0"], 3);
        let mut o = opts();
        let c = compare(std::slice::from_ref(&s), &o).unwrap();
        assert_eq!(c.normalisation[0].source, "min-max");
        assert!(
            c.notes
                .iter()
                .any(|n| n.contains("MyEnv-v0") && n.contains("--norm"))
        );
        let all: Vec<f64> = c
            .methods
            .iter()
            .flat_map(|m| m.scores["MyEnv-v0"].clone())
            .collect();
        assert_eq!(all.iter().copied().fold(f64::MAX, f64::min), 0.0);
        assert_eq!(all.iter().copied().fold(f64::MIN, f64::max), 1.0);
        o.norms = vec!["MyEnv-v0=0:200".parse().unwrap()];
        let c = compare(&[s], &o).unwrap();
        assert_eq!(
            (
                c.normalisation[0].low,
                c.normalisation[0].high,
                c.normalisation[0].source.as_str()
            ),
            (0.0, 200.0, "override")
        );
    }

    #[test]
    fn several_studies_side_by_side_name_shared_methods_by_study() {
        let a = study("a", 2, &["CartPole-v1"], 3);
        let b = study("b", 1, &["CartPole-v1"], 3);
        let c = compare(&[a, b], &opts()).unwrap();
        let labels: Vec<&str> = c.methods.iter().map(|m| m.method.as_str()).collect();
        assert_eq!(labels, ["a/method_01", "method_02", "b/method_01"]);
        assert_eq!(c.studies, ["a", "b"]);
    }

    #[test]
    fn only_swept_params_make_a_method_variant() {
        // CartPole runs with settings of their own (the same for every run there), sphere runs
        // without: one method each across both environments.
        let mut s = study("s", 2, &["CartPole-v1", "sphere"], 3);
        for j in &mut s.jobs {
            if j.spec.experiment().unwrap().env == "CartPole-v1" {
                j.spec.params.insert("eval_episodes".into(), json!(2));
            }
        }
        let c = compare(std::slice::from_ref(&s), &opts()).unwrap();
        let labels: Vec<&str> = c.methods.iter().map(|m| m.method.as_str()).collect();
        assert_eq!(labels, ["method_01", "method_02"]);
        assert!(c.methods.iter().all(|m| m.params.is_empty() && m.runs == 6));
        // A param with two values in one cell (a sweep) names the variants.
        for j in &mut s.jobs {
            let seed = j.spec.experiment().unwrap().seed.unwrap();
            j.spec
                .params
                .insert("pop_size".into(), json!(8 * (1 + seed % 2)));
        }
        let c = compare(&[s], &opts()).unwrap();
        let labels: Vec<&str> = c.methods.iter().map(|m| m.method.as_str()).collect();
        assert_eq!(
            labels,
            [
                "method_01 pop_size=16",
                "method_01 pop_size=8",
                "method_02 pop_size=16",
                "method_02 pop_size=8"
            ]
        );
        assert_eq!(c.methods[0].params["pop_size"], json!(16));
    }

    #[test]
    fn targets_profiles_curves_and_seeds_needed() {
        let s = study("s", 2, &["CartPole-v1", "sphere"], 4);
        let mut o = opts();
        o.target = Some(TargetSpec::default());
        o.profile = true;
        o.curves = true;
        o.by_env = true;
        o.seeds_needed = Some(0.05);
        let c = compare(&[s], &o).unwrap();
        let t = c.target.unwrap();
        assert_eq!(t.envs[0].target, 475.0);
        let m = &t.methods[0];
        assert_eq!(m.cells.len(), 2);
        assert_eq!(m.cells[0].runs, 4);
        assert_eq!(
            m.cells[0].successes,
            m.cells[0].evals.iter().filter(|e| e.is_some()).count() as u64
        );
        assert!(
            m.ecdf
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        );
        let p = c.profile.unwrap();
        assert_eq!(p.taus.len(), PROFILE_POINTS);
        assert_eq!(
            p.lines[0].points[0].estimate,
            1.0 - 0.0,
            "every run is above the lowest τ… or at it"
        );
        let cs = c.curves.unwrap();
        assert_eq!(cs.evals.len(), CURVE_POINTS);
        assert_eq!(cs.lines[0].points.len(), CURVE_POINTS);
        assert_eq!(c.by_env.len(), 2);
        assert_eq!(c.by_env[0].methods[0].runs, 4);
        let sn = c.seeds_needed.unwrap();
        assert_eq!(sn.cells.len(), 4);
        assert!(
            sn.cells
                .iter()
                .all(|x| x.need.runs == 4 && x.need.more.is_some())
        );
    }

    #[test]
    fn curves_hold_the_last_value_and_auc_covers_the_budget() {
        let c = Curve {
            steps: vec![(10.0, 1.0), (30.0, 3.0)],
            end: 40.0,
        };
        assert_eq!(c.at(5.0), None);
        assert_eq!(c.at(10.0), Some(1.0));
        assert_eq!(c.at(1e9), Some(3.0));
        assert_eq!(c.first_reaching(2.0), Some(30.0));
        assert_eq!(c.first_reaching(4.0), None);
        // 1 from 0 to 30, then 3 to 100: (30 + 210) / 100.
        assert_eq!(c.auc(100.0), Some(2.4));
        assert_eq!(Curve::default().auc(100.0), None);
    }

    #[test]
    fn the_scores_export_is_a_matrix_per_method_and_records() {
        let mut s = study("s", 2, &["CartPole-v1", "sphere"], 3);
        s.jobs[0].state = JobState::Failed;
        let e = scores(&[s], &opts());
        assert_eq!(e.envs, ["CartPole-v1", "sphere"]);
        let m = &e.matrices["method_01"];
        assert_eq!(m.len(), 3);
        assert_eq!(m[2][0], None, "two CartPole runs of method_01 scored");
        assert!(m[2][1].is_some());
        assert_eq!(e.records.len(), 11);
    }
}
