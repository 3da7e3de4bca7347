//! Wire types of method comparison (`GET /api/v1/studies/{name}/compare`, the scores export) and
//! of the study operations `extend` and `retry`. docs/API.md documents the shape; fields are
//! only ever added.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::JobId;
use crate::model::JobState;
use crate::stats::Interval;
use crate::stats::bootstrap::SeedsNeeded;

/// `GET /api/v1/studies/{name}/compare` answer: the methods of one or more studies compared
/// over their environments, every number with the definition it was computed by.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Comparison {
    /// The studies compared (the first is the one in the path).
    pub studies: Vec<String>,
    /// True while a study has queued or running jobs: the numbers will change.
    pub provisional: bool,
    /// What a reader should know (provisional, environments left out, fallbacks used).
    pub notes: Vec<String>,
    /// How a run's score was taken.
    pub score: ScoreInfo,
    /// How each environment's scores were normalised.
    pub normalisation: Vec<EnvNorm>,
    /// Bootstrap resamples per interval.
    pub resamples: u64,
    /// The seed of the resamples.
    pub seed: u64,
    /// Coverage of every interval (0.95).
    pub confidence: f64,
    /// The environments the aggregates are over (those with scored runs of every method).
    pub envs: Vec<String>,
    /// Environments left out of the aggregates, and why.
    #[serde(default)]
    pub excluded_envs: Vec<ExcludedEnv>,
    /// One entry per method (× swept params), in the order they first appear.
    pub methods: Vec<MethodResult>,
    /// Per environment, the same aggregates over that environment's runs alone (`by=env`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_env: Vec<EnvResult>,
    /// P(X > Y) for every pair of methods (X listed before Y).
    #[serde(default)]
    pub improvement: Vec<Improvement>,
    /// Performance profiles (`profile=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// Sample-efficiency curves (`curves=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curves: Option<CurveSet>,
    /// The fixed-target view (`target=...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetResult>,
    /// Seeds each cell needs for a requested interval half-width (`seeds_needed=...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds_needed: Option<SeedsNeededResult>,
}

/// How a run's score is taken.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScoreInfo {
    /// `final`, `best_ever` or `auc`.
    pub kind: String,
    /// The definition in words.
    pub definition: String,
}

/// How one environment's scores were normalised: (score − low) / (high − low).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EnvNorm {
    pub env: String,
    pub low: f64,
    pub high: f64,
    /// `shipped` (random and solved scores the experiments declare), `override`
    /// (`norm=env=low:high`) or `min-max` (lowest and highest score of the study's runs).
    pub source: String,
    /// The raw score the experiments call solved, where known.
    #[serde(default)]
    pub solved: Option<f64>,
}

/// An environment left out of the aggregates.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ExcludedEnv {
    pub env: String,
    pub reason: String,
}

/// One method's result.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct MethodResult {
    /// The label that names it in tables and figures: the method, its swept params
    /// (` pop_size=32`), and its study (`study/`) when methods of several studies share a name.
    pub method: String,
    /// The study it comes from.
    pub study: String,
    /// The method alone.
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    /// Scored runs in the aggregated environments.
    pub runs: u64,
    /// None when the method has no scored run in every aggregated environment.
    pub iqm: Option<Interval>,
    pub median: Option<Interval>,
    pub mean: Option<Interval>,
    pub optimality_gap: Option<Interval>,
    /// The normalised per-run scores the aggregates came from, by environment (every
    /// environment with scored runs, also those left out of the aggregates).
    pub scores: BTreeMap<String, Vec<f64>>,
    /// Per environment: runs, runs still to come, runs left out.
    pub cells: Vec<CellResult>,
}

/// One method on one environment.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CellResult {
    pub env: String,
    /// Runs with a score.
    pub runs: u64,
    /// Runs queued or running.
    pub pending: u64,
    /// Runs that ended without a score: failed, lost, cancelled, timed out, or no finite score.
    #[serde(default)]
    pub left_out: Vec<LeftOut>,
}

/// A run left out of the comparison.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LeftOut {
    pub job: JobId,
    #[serde(default)]
    pub seed: Option<u64>,
    pub state: JobState,
    /// Why (the state, or "no finite score").
    pub why: String,
}

/// The aggregates of one environment.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EnvResult {
    pub env: String,
    pub methods: Vec<EnvMethod>,
}

/// One method's aggregates on one environment.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EnvMethod {
    pub method: String,
    pub runs: u64,
    pub iqm: Interval,
    pub median: Interval,
    pub mean: Interval,
    pub optimality_gap: Interval,
}

/// The probability that a run of X scores higher than a run of Y.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Improvement {
    pub x: String,
    pub y: String,
    #[serde(flatten)]
    pub p: Interval,
}

/// Performance profiles: per method, the fraction of runs with a normalised score above τ.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Profile {
    pub taus: Vec<f64>,
    /// One line per method, one interval per τ.
    pub lines: Vec<Line>,
}

/// One method's curve.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Line {
    pub method: String,
    pub points: Vec<Interval>,
}

/// Sample-efficiency curves: the IQM of the normalised best-ever at each point of a common
/// evaluations grid.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CurveSet {
    pub evals: Vec<f64>,
    pub lines: Vec<Line>,
}

/// The fixed-target view.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TargetResult {
    /// The target in words (`solved`, `normalised 0.5`, ...).
    pub target: String,
    /// The raw target of each environment.
    pub envs: Vec<EnvTarget>,
    /// The fractions of the way from the environment's low score to its target that the ECDF
    /// counts as targets.
    pub ecdf_levels: Vec<f64>,
    pub methods: Vec<TargetMethod>,
}

/// One environment's raw target.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct EnvTarget {
    pub env: String,
    pub target: f64,
}

/// One method against the target.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TargetMethod {
    pub method: String,
    /// The fraction of runs (of every environment) that reached their target, with Wilson's
    /// score interval.
    pub success: Interval,
    pub cells: Vec<TargetCell>,
    /// ECDF of running times over (run, target level) pairs: (evaluations, fraction).
    pub ecdf: Vec<(f64, f64)>,
}

/// One method on one environment against its target.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TargetCell {
    pub env: String,
    pub runs: u64,
    pub successes: u64,
    /// `successes / runs`, with Wilson's score interval.
    pub success: Interval,
    /// Expected running time in evaluations (`null` bounds: ∞).
    pub ert: Interval,
    /// Per run, the evaluations it needed (null: never reached).
    pub evals: Vec<Option<f64>>,
}

/// Seeds needed per cell.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SeedsNeededResult {
    /// The requested interval half-width, in normalised units.
    pub half_width: f64,
    /// How it was estimated.
    pub method: String,
    pub cells: Vec<SeedsCell>,
}

/// One cell's seeds needed.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct SeedsCell {
    pub method: String,
    pub env: String,
    #[serde(flatten)]
    pub need: SeedsNeeded,
}

/// `GET /api/v1/studies/{name}/scores.json` answer: every scored run, for rliable and pandas.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScoresExport {
    pub studies: Vec<String>,
    pub score: ScoreInfo,
    pub normalisation: Vec<EnvNorm>,
    /// Column order of `matrices`.
    pub envs: Vec<String>,
    /// Per method, a runs × environments matrix of normalised scores (run k of each
    /// environment in row k; null where an environment has fewer runs): `np.array(m,
    /// dtype=float)` is what `rliable` takes (after dropping rows with NaN).
    pub matrices: BTreeMap<String, Vec<Vec<Option<f64>>>>,
    /// One record per scored run (`pandas.DataFrame(records)`).
    pub records: Vec<ScoreRecord>,
}

/// One scored run.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ScoreRecord {
    pub study: String,
    pub method: String,
    pub env: String,
    #[serde(default)]
    pub seed: Option<u64>,
    pub job: JobId,
    pub score: f64,
    pub normalised: f64,
}

/// `POST /api/v1/studies/{name}/extend` request: more seeds on the study's own grid.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StudyExtend {
    /// `+5` (the next five seed numbers after the highest the study used), or seeds as
    /// `gaia submit --seeds` takes them (`11..15`).
    pub seeds: String,
    /// Confirms more than `study::CONFIRM_STUDY_JOBS` new jobs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirm_large: bool,
    /// Check and count only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// `POST /api/v1/studies/{name}/retry` request: run again the study's runs that failed.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct StudyRetry {
    /// Also run again runs that were cancelled (by default: failed, lost and timed out).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancelled: bool,
    /// Check and count only.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}
