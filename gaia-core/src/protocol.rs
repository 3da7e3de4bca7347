//! The wire protocol: every request and response body of the HTTP API, in one place.
//!
//! Everything is JSON, except that a row batch may also be sent as postcard
//! ([`POSTCARD_CONTENT_TYPE`]), the hot path of result ingest.
//!
//! Every client sends [`PROTOCOL_HEADER`]; a server that speaks another version refuses with a
//! message saying which side to upgrade. Requests without the header (curl, scripts) are taken
//! as the current version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::named_enum;
use crate::model::{
    Capabilities, EarlyStop, Event, FileInfo, Hardware, Job, JobId, JobKind, JobSpec, JobState,
    LogLine, Millis, ParamAxis, Row, RowBin, Sampler, Scope, Stream, StudyRecord, Sweep, TokenInfo,
    Usage, UserInfo, Worker,
};
use crate::stats::MeanStd;

mod compare;
pub use compare::*;

/// The protocol version this build speaks.
///
/// - 1: first version.
pub const PROTOCOL_VERSION: u32 = 1;

/// Request header carrying the client's protocol version.
pub const PROTOCOL_HEADER: &str = "x-gaia-protocol";

/// Content type of postcard-encoded bodies.
pub const POSTCARD_CONTENT_TYPE: &str = "application/x-gaia-postcard";

/// The body of every error answer: `{"error": "..."}`.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct ErrorBody {
    pub error: String,
}

/// `GET /healthz` answer (also with 503, `ok: false`, once the store can no longer write).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct Health {
    pub ok: bool,
    pub version: String,
    pub protocol: u32,
}

/// `DELETE /api/v1/tokens/{name}` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct Revoked {
    /// The name of the token revoked.
    pub revoked: String,
}

/// An answer that only says the request was taken (`POST /api/v1/workers/{name}/report`).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct Ack {
    pub ok: bool,
}

/// The data of a `rows` event of `GET /api/v1/events` (SSE): rows just stored for a job.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct RowsEvent<'a> {
    pub job: JobId,
    pub attempt: u32,
    pub rows: std::borrow::Cow<'a, [Row]>,
}

/// The data of a `logs` event of `GET /api/v1/events` (SSE): log lines just stored for a job.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct LogsEvent<'a> {
    pub job: JobId,
    pub lines: std::borrow::Cow<'a, [LogLine]>,
}

/// `POST /api/v1/jobs` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct SubmitResponse {
    pub id: JobId,
}

/// `POST /api/v1/jobs/batch` request: several jobs, all stored or none.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct SubmitBatch {
    pub jobs: Vec<JobSpec>,
}

/// `POST /api/v1/jobs/batch` answer, ids in request order.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct SubmitBatchResponse {
    pub ids: Vec<JobId>,
}

/// `GET /api/v1/jobs` query.
#[derive(Serialize, Deserialize, Clone, Debug, Default)]
pub struct JobQuery {
    pub state: Option<JobState>,
    pub study: Option<String>,
    /// Only this user's jobs.
    #[serde(default)]
    pub owner: Option<String>,
    /// Only the caller's own user's jobs.
    #[serde(default)]
    pub mine: bool,
    /// Only jobs with an id below this (pagination, newest first).
    pub before: Option<JobId>,
    pub limit: Option<usize>,
}

/// `GET /api/v1/jobs` answer: newest first.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct JobList {
    pub jobs: Vec<Job>,
    /// Pass as `before` to get the next page; absent on the last page.
    #[serde(default)]
    pub next_before: Option<JobId>,
    /// Jobs matching the filter, over all pages.
    pub total: u64,
}

/// `POST /api/v1/jobs/{id}/cancel` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct CancelResponse {
    pub job: Job,
}

/// `GET /api/v1/jobs/{id}/rows` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct RowsResponse {
    pub job: JobId,
    pub attempt: u32,
    /// Rows stored for this attempt (before downsampling).
    pub total: u64,
    /// True when `rows` were downsampled (min and max per bucket and metric).
    pub downsampled: bool,
    pub rows: Vec<Row>,
}

/// `POST /api/v1/workers/register` request.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The id this worker had before (from its state file), to come back as the same worker.
    #[serde(default)]
    pub worker_id: Option<String>,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub hardware: Hardware,
    pub kinds: Vec<JobKind>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub slots: u32,
}

/// `POST /api/v1/workers/register` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct RegisterResponse {
    pub worker_id: String,
    /// A lease not renewed for this long expires.
    pub lease_timeout_ms: u64,
    /// How often the worker should heartbeat.
    pub heartbeat_ms: u64,
    pub server_version: String,
}

/// A running job a worker reports, with the attempt and lease it holds.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRef {
    pub job: JobId,
    pub attempt: u32,
    pub lease: u64,
}

/// `POST /api/v1/workers/{id}/heartbeat` request.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    #[serde(default)]
    pub running: Vec<LeaseRef>,
    #[serde(default)]
    pub usage: Usage,
    /// The worker is finishing its jobs and will claim no more.
    #[serde(default)]
    pub draining: bool,
}

/// `POST /api/v1/workers/{id}/heartbeat` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default)]
pub struct HeartbeatResponse {
    /// Jobs the worker must cancel.
    pub cancel: Vec<JobId>,
    /// Jobs whose lease is no longer this worker's: stop them and report nothing more.
    pub stale: Vec<JobId>,
    /// The promoted release version, if any.
    #[serde(default)]
    pub latest_version: Option<String>,
    /// Set while the worker is paused, draining or quarantined: it claims no new jobs (and
    /// with a drain's `exit`, ends once its running jobs are done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<crate::model::Hold>,
}

/// `POST /api/v1/claim` request: one slot asks for a job, waiting up to `wait_ms`.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    pub worker_id: String,
    pub capabilities: Capabilities,
    /// How long to wait for a fitting job: 30 s when absent, 0 answers at once; the server caps
    /// it at 60 s, and answers a wait of a second or more that finds no job up to a fifth
    /// early (spread per claim, so polls opened together do not all end together).
    #[serde(default = "default_claim_wait_ms")]
    pub wait_ms: u64,
    /// The job this slot just ended, reported with the request for the next one (one round
    /// trip per job instead of two). Stored before the claim is looked at.
    #[serde(default)]
    pub finished: Option<Finished>,
    /// A study this worker stops for (`gaia work --exit-when-study-done NAME`): an answer
    /// without a job says whether it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_study: Option<String>,
}

/// The long poll's bound when a claim names none.
pub const DEFAULT_CLAIM_WAIT_MS: u64 = 30_000;

fn default_claim_wait_ms() -> u64 {
    DEFAULT_CLAIM_WAIT_MS
}

/// An attempt's end, carried by a claim.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct Finished {
    pub job: JobId,
    pub report: CompleteRequest,
}

/// A job handed to a worker with its attempt and lease.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct Assignment {
    pub job: Job,
    pub attempt: u32,
    pub lease: u64,
}

/// `POST /api/v1/claim` answer; `assignment` is absent when the wait ran out.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct ClaimResponse {
    #[serde(default)]
    pub assignment: Option<Assignment>,
    /// Why the `finished` report was refused (a stale lease), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_error: Option<String>,
    /// The claim's `watch_study` exists and every job of it has ended (none queued or running,
    /// no proposal to come). Only answered when no job is assigned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub study_done: bool,
}

/// `POST /api/v1/jobs/{id}/rows` request (JSON or postcard).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct RowBatch {
    pub attempt: u32,
    pub lease: u64,
    pub rows: Vec<Row>,
    /// Progress 0..1 and status from `@gaia` lines, if the experiment printed any.
    #[serde(default)]
    pub fraction: Option<f64>,
    #[serde(default)]
    pub status: Option<String>,
}

/// `POST /api/v1/jobs/{id}/rows` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct RowAck {
    /// Rows newly stored.
    pub stored: u64,
    /// Rows that were already stored (a retried batch).
    pub skipped: u64,
    /// The job was cancelled: stop it.
    pub cancel: bool,
}

/// One log line as a worker sends it.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LogInput {
    pub stream: Stream,
    pub text: String,
    /// When the line was printed.
    #[serde(default)]
    pub at: Millis,
    /// How many rows of this attempt the worker had read when it read this line: where the line
    /// sits among the generation lines (`gaia logs` interleaves by it). Absent from older
    /// workers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_before: Option<u64>,
}

/// `POST /api/v1/jobs/{id}/logs` request.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct LogBatch {
    pub attempt: u32,
    pub lease: u64,
    /// Position of the first line in this attempt's output (so retries are idempotent).
    pub first: u64,
    pub lines: Vec<LogInput>,
}

/// `POST /api/v1/jobs/{id}/logs` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default)]
pub struct LogAck {
    pub cancel: bool,
}

/// `GET /api/v1/jobs/{id}/logs` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct LogsResponse {
    pub lines: Vec<LogLine>,
    /// Pass as `after` to get the lines after these.
    pub next: u64,
    /// The job has ended: no more lines will come.
    pub done: bool,
}

named_enum! {
    /// How an attempt ended, as the worker reports it.
    pub enum Outcome ("outcome", "outcomes") {
        Succeeded = "succeeded",
        Failed = "failed",
        TimedOut = "timed_out",
        Cancelled = "cancelled",
    }
}

impl Outcome {
    /// The job state this outcome leads to.
    pub fn state(self) -> JobState {
        match self {
            Outcome::Succeeded => JobState::Succeeded,
            Outcome::Failed => JobState::Failed,
            Outcome::TimedOut => JobState::TimedOut,
            Outcome::Cancelled => JobState::Cancelled,
        }
    }
}

/// `POST /api/v1/jobs/{id}/complete` request.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    pub attempt: u32,
    pub lease: u64,
    pub outcome: Outcome,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub duration_ms: u64,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    /// When the job's code started on the worker, in microseconds since the Unix epoch by the
    /// worker's clock: a built-in's first instruction, or the moment its process was running
    /// (exec done). Kept on the attempt (`worker_started_us`): claim → start is what the
    /// worker took to begin (a Python environment to prepare, a slow disk).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_us: Option<u64>,
}

/// `POST /api/v1/jobs/{id}/requeue` request: a worker that shuts down gives a job back.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct RequeueRequest {
    pub attempt: u32,
    pub lease: u64,
    #[serde(default)]
    pub reason: Option<String>,
    /// The worker's scheduler took its allocation away (SIGUSR1, a time limit): the attempt
    /// ends `preempted` and the job is queued again at once. Like any give-back it spends none
    /// of the job's attempts; a job given back more than `QueueConfig::max_give_backs` times
    /// ends `lost`.
    #[serde(default)]
    pub preempted: bool,
}

/// `GET /api/v1/workers` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct WorkerList {
    pub workers: Vec<Worker>,
}

/// `POST /api/v1/workers/{name}/pause` and `/drain` request (an empty body is all defaults).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct HoldRequest {
    /// Why, for whoever looks at the worker later.
    #[serde(default)]
    pub reason: Option<String>,
    /// Drain only: the worker process ends (status 0) once its running jobs are done.
    #[serde(default)]
    pub exit: bool,
}

/// `GET /api/v1/workers/{name}/telemetry` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct TelemetryResponse {
    pub worker: String,
    /// `hour`, `day`, `week` or `month`.
    pub span: String,
    /// Milliseconds between two points.
    pub step_ms: u64,
    /// Oldest first; a step with no heartbeat has no point (a gap, not a zero).
    pub points: Vec<crate::telemetry::Point>,
}

/// `GET /api/v1/audit` answer, oldest first.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct AuditList {
    pub entries: Vec<crate::model::AuditEntry>,
}

/// `GET /api/v1/status` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct StatusResponse {
    pub version: String,
    pub protocol: u32,
    /// Jobs per state (every state present, zero included).
    pub jobs: BTreeMap<String, u64>,
    pub workers_online: u64,
    pub workers_total: u64,
    pub started_at: Millis,
    /// The server's data directory.
    pub data_dir: String,
    /// The methods the shipped experiments know (`model::SHIPPED_METHODS`): suggestions for
    /// forms; a worker's own experiments may know others.
    #[serde(default)]
    pub methods: Vec<String>,
}

/// `GET /api/v1/queue/demand` answer: what a scheduler's autoscaler (`gaia slurm autoscale`,
/// a KEDA `metrics-api` trigger) starts workers for.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct QueueDemand {
    /// Every queued job.
    pub queued: u64,
    /// Queued jobs a worker with the asked capabilities could run.
    pub fitting: u64,
    /// Jobs running now.
    pub running: u64,
    /// Running jobs such a worker could run (some may run on it).
    #[serde(default)]
    pub running_fitting: u64,
    /// `fitting + running_fitting`: worker slots a pool of such workers has work for, now
    /// and queued. An autoscaler that scales on it keeps busy workers (scaling on the queued
    /// jobs alone would scale a busy pool down to nothing).
    #[serde(default)]
    pub slots_wanted: u64,
}

/// `GET /api/v1/events` (as JSON, without SSE) answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct EventList {
    pub events: Vec<Event>,
}

/// `POST /api/v1/tokens` request.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    pub name: String,
    pub scope: Scope,
    /// The user the token acts for (an admin may name any user; others only themselves).
    /// Default: the caller's own user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// `POST /api/v1/tokens` answer: the secret, shown this once.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct TokenCreated {
    pub name: String,
    pub scope: Scope,
    pub token: String,
    /// The user it acts for.
    #[serde(default)]
    pub user: String,
}

/// `GET /api/v1/tokens` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
}

/// `GET /api/v1/jobs/{id}/files` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct FileList {
    pub files: Vec<FileInfo>,
}

// ---- users and usage ---------------------------------------------------------------------------

/// `POST /api/v1/users` request: a new user, and the name of their first token.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserAdd {
    pub name: String,
    /// Relative weight in fair share (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queued: Option<u64>,
    /// Name of the user's first token (scope submit); default: the user's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_name: Option<String>,
}

/// `POST /api/v1/users` answer: the user and their first token (its secret shown this once).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct UserAdded {
    pub user: UserInfo,
    pub token: TokenCreated,
}

/// `POST /api/v1/users/{name}` request: what changes (absent fields stay as they are).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
    /// A limit, or `0` to remove it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<u64>,
    /// A limit, or `0` to remove it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queued: Option<u64>,
}

/// `GET /api/v1/users` answer, by name; the admin user is listed with its defaults when it
/// has no record.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct UserList {
    pub users: Vec<UserInfo>,
}

/// One user's line of `GET /api/v1/usage`.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UserUsage {
    pub user: String,
    pub share: f64,
    #[serde(default)]
    pub max_running: Option<u64>,
    #[serde(default)]
    pub max_queued: Option<u64>,
    pub running: u64,
    pub queued: u64,
    /// Worker-seconds used in the window (attempts that ended, hourly resolution, plus the
    /// running jobs so far).
    pub worker_secs: f64,
    /// GPU-seconds used in the window, counted the same way.
    pub gpu_secs: f64,
    /// Recent worker-seconds, decayed with the half-life: what fair share compares.
    pub recent_worker_secs: f64,
    /// Fraction of all users' recent usage (0..1).
    pub usage_fraction: f64,
    /// Fraction of the shares of the users listed (0..1).
    pub share_fraction: f64,
    /// `usage_fraction / share_fraction`: 1 at their share, below 1 below it; lower is served
    /// first.
    pub effective_priority: f64,
}

/// `GET /api/v1/usage` answer: one line per user, lowest effective priority (served next)
/// first.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UsageReport {
    /// Start of the window the worker and GPU seconds cover (None: all time).
    #[serde(default)]
    pub since: Option<Millis>,
    pub now: Millis,
    /// Whether claims follow fair share (`gaia serve --fair-share`).
    pub fair_share: bool,
    /// Half-life of recent usage, seconds.
    pub half_life_secs: f64,
    pub users: Vec<UserUsage>,
}

/// `DELETE /api/v1/users/{name}` answer: who was removed and the tokens revoked with them.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UserRemoved {
    pub removed: String,
    /// Names of the user's tokens, all revoked.
    pub revoked_tokens: Vec<String>,
}

// ---- the overview ------------------------------------------------------------------------------

/// `GET /api/v1/whoami` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug)]
pub struct WhoAmI {
    pub scope: Scope,
    /// The token's name (`admin` for the server's admin token).
    pub name: String,
    /// The user the token acts for: what it submits is theirs (`gaia jobs --mine`).
    #[serde(default)]
    pub user: String,
    /// The server's version.
    pub version: String,
}

/// Scores of one (environment, method) pair.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct SummaryGroup {
    pub env: String,
    pub method: String,
    /// Experiments of this pair, in any state.
    pub jobs: u64,
    pub running: u64,
    pub queued: u64,
    /// Succeeded jobs that reported a score.
    pub finished: u64,
    /// Highest best-ever of any job of the pair (running ones included), and which job.
    pub best: Option<f64>,
    pub best_job: Option<u64>,
    /// Over the finished jobs' final best-ever: mean, sample standard deviation (n − 1, as
    /// `gaia study`; None for a single seed), min, quartiles, max.
    pub mean: Option<f64>,
    pub std: Option<f64>,
    pub min: Option<f64>,
    pub q1: Option<f64>,
    pub median: Option<f64>,
    pub q3: Option<f64>,
    pub max: Option<f64>,
    /// The finished jobs' final scores (at most `study::MAX_FINALS`, evenly sampled), ascending.
    pub finals: Vec<f64>,
}

/// `GET /api/v1/summary` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default)]
pub struct Summary {
    /// Jobs per state (every state present), over the whole server or the study.
    pub jobs: BTreeMap<String, u64>,
    pub total: u64,
    /// Workers per state (every state present).
    pub workers: BTreeMap<String, u64>,
    /// Per (environment, method), sorted by environment then method.
    pub groups: Vec<SummaryGroup>,
    /// Milliseconds the scan took on the server.
    pub took_ms: f64,
}

// ---- studies ----------------------------------------------------------------------------------

/// One sweep axis on the wire: a list, or the text the command line takes (`a,b`, `1..5,10`),
/// which the server parses with the command line's own grammar (`study::parse_list`,
/// `study::parse_seeds`), so the dashboard and scripts need no parser of their own.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
#[schemars(rename = "Axis_of_{T}")]
pub enum Axis<T> {
    List(Vec<T>),
    Text(String),
}

impl<T> Default for Axis<T> {
    fn default() -> Self {
        Axis::List(Vec::new())
    }
}

impl<T> Axis<T> {
    /// True for an empty list or blank text (the axis is not swept).
    pub fn is_empty(&self) -> bool {
        match self {
            Axis::List(v) => v.is_empty(),
            Axis::Text(s) => s.trim().is_empty(),
        }
    }
}

/// One swept param on the wire: `{"key", "values"}`, or the text of a command line's
/// `--param KEY=V1,V2` (`study::parse_param_sweep`).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum ParamInput {
    Axis(ParamAxis),
    Text(String),
}

/// The sweep of a study submission as sent: each axis structured or as command-line text.
/// The server turns it into the canonical [`Sweep`] it stores and answers with.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct SweepInput {
    pub methods: Axis<String>,
    #[serde(default, skip_serializing_if = "Axis::is_empty")]
    pub envs: Axis<String>,
    #[serde(default, skip_serializing_if = "Axis::is_empty")]
    pub seeds: Axis<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ParamInput>,
}

impl From<Sweep> for SweepInput {
    fn from(s: Sweep) -> Self {
        SweepInput {
            methods: Axis::List(s.methods),
            envs: Axis::List(s.envs),
            seeds: Axis::List(s.seeds),
            params: s.params.into_iter().map(ParamInput::Axis).collect(),
        }
    }
}

/// `POST /api/v1/studies` request.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StudySubmit {
    pub name: String,
    /// What every job starts from (budget, priority, requirements, fixed params, ...). Its
    /// `method`, `env` and `seed` are folded into the sweep.
    #[serde(default)]
    pub template: JobSpec,
    pub sweep: SweepInput,
    /// Submit even if the study already holds this very definition.
    #[serde(default)]
    pub again: bool,
    /// Confirms a submission of more than `study::CONFIRM_STUDY_JOBS` jobs.
    #[serde(default)]
    pub confirm_large: bool,
    /// Check and expand only: answer what would be submitted (`planned`, `total_jobs`) and
    /// write nothing. The dashboard's form previews a study this way.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// How configurations are picked (`search`): `grid` (the default: every combination of
    /// the params' values), `random`, `sobol` or `tpe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler: Option<Sampler>,
    /// Configurations a sampler draws (needed with one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u64>,
    /// The sampler's seed (default 0): the same seed draws the same configurations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_seed: Option<u64>,
    /// `tpe`: configurations in flight at most (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
    /// Early stopping: the command line's text (`"asha(metric=best_ever, min_evals=5000,
    /// eta=3)"`) or the rule as JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<RuleInput>,
}

/// An early-stopping rule on the wire: text in the command line's grammar
/// (`early_stop::parse`), or the rule itself.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(untagged)]
pub enum RuleInput {
    Rule(EarlyStop),
    Text(String),
}

/// `POST /api/v1/studies` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StudySubmitted {
    pub study: String,
    /// The jobs of this submission, in sweep order, with their ids.
    pub jobs: Vec<(JobId, JobSpec)>,
    /// Jobs of the study over all its submissions.
    pub total_jobs: u64,
    /// True when the study existed before this submission.
    pub extended: bool,
    /// Jobs this submission expands to (those in `jobs`, or that a dry run would submit).
    #[serde(default)]
    pub planned: u64,
    /// True for a dry run: nothing was written and `jobs` is empty.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// One job of a study as `gaia study` lists it.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StudyJob {
    pub id: JobId,
    pub state: JobState,
    pub method: String,
    pub env: String,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    pub max_evals: u64,
    /// Evaluations the current attempt has reported.
    #[serde(default)]
    pub evals: Option<f64>,
    #[serde(default)]
    pub best_ever: Option<f64>,
    pub attempt: u32,
    #[serde(default)]
    pub worker: Option<String>,
}

/// Progress and ETA of a study.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct StudyProgress {
    pub jobs: u64,
    /// Jobs per state name (only states that occur).
    pub states: BTreeMap<String, u64>,
    /// Evaluations really done: what each started job's current attempt reported (a job that
    /// solved early counts the evaluations it used, not its budget).
    pub evals_done: f64,
    /// The study's work: `evals_done + evals_remaining` (a job that ended needs nothing more,
    /// whatever its budget; a queued or running one at most its budget).
    pub evals_total: f64,
    /// Evaluations queued and running jobs still have to do at most (budget − done).
    pub evals_remaining: f64,
    /// `evals_done / evals_total`, 0..1: a job that ended counts as complete.
    pub fraction: f64,
    /// The budgets of all jobs added up.
    #[serde(default)]
    pub evals_budget: f64,
    /// Evaluations per second of the study's running jobs together, each at its own measured
    /// rate (real evaluations over real running time).
    #[serde(default)]
    pub evals_per_sec: Option<f64>,
    /// True when the ETA assumes some jobs use their whole budget (no similar job of the study
    /// has ended yet to say how much they really use): an upper bound, shown as "≤".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub eta_bound: bool,
    /// Seconds until the queued and running jobs are done; None = unknown (see `eta_note`).
    #[serde(default)]
    pub eta_secs: Option<f64>,
    /// Why the ETA is unknown (or "done").
    #[serde(default)]
    pub eta_note: Option<String>,
}

/// The result of one method × environment (× swept params) over its seeds.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StudyGroup {
    pub method: String,
    pub env: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    pub jobs: u64,
    pub succeeded: u64,
    /// Best-ever fitness (higher is better) over the seeds that reported one.
    #[serde(default)]
    pub best: Option<MeanStd>,
    /// The cell's own progress and ETA (in a study's report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<StudyProgress>,
}

/// `GET /api/v1/studies/{name}` answer.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StudyReport {
    pub name: String,
    /// None for a study that only exists as jobs tagged with its name.
    #[serde(default)]
    pub record: Option<StudyRecord>,
    pub progress: StudyProgress,
    pub groups: Vec<StudyGroup>,
    pub jobs: Vec<StudyJob>,
    /// An adaptive study's configurations (a sampler's, or any judged by early stopping).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<ConfigReport>,
    /// The best configuration so far (its id): the highest score of those that ended, else
    /// the highest best-ever of any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incumbent: Option<u32>,
    /// Every job of the study has ended (none queued or running, no proposal to come).
    #[serde(default)]
    pub done: bool,
}

/// One configuration of an adaptive study as `gaia study` shows it.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ConfigReport {
    pub id: u32,
    pub params: BTreeMap<String, serde_json::Value>,
    /// `running`, `pruned` or `done`.
    pub state: String,
    /// The highest rung its seeds all reached (and were judged at).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<u32>,
    /// Why it was pruned, with the rung, its value and the cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned: Option<String>,
    /// The best best-ever of its jobs so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<f64>,
    /// Its jobs' mean final value, once every one ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    pub jobs: Vec<JobId>,
}

/// One line of `GET /api/v1/studies`.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StudySummary {
    pub name: String,
    /// The user who created it (None for a study only named by jobs, with no record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default)]
    pub created_at: Option<Millis>,
    pub progress: StudyProgress,
}

/// `GET /api/v1/studies` answer, newest first.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StudyList {
    pub studies: Vec<StudySummary>,
}

/// Encodes a row batch as postcard.
pub fn encode_postcard(batch: &RowBatch) -> Vec<u8> {
    let bin = PostcardBatch {
        attempt: batch.attempt,
        lease: batch.lease,
        rows: batch.rows.iter().map(RowBin::from).collect(),
        fraction: batch.fraction,
        status: batch.status.clone(),
    };
    postcard::to_stdvec(&bin).expect("postcard encoding of plain data cannot fail")
}

/// Decodes a postcard row batch.
pub fn decode_postcard(bytes: &[u8]) -> Result<RowBatch, String> {
    let b = postcard::from_bytes::<PostcardBatch>(bytes)
        .map_err(|e| format!("malformed postcard row batch: {e}"))?;
    Ok(RowBatch {
        attempt: b.attempt,
        lease: b.lease,
        rows: b.rows.into_iter().map(Row::from).collect(),
        fraction: b.fraction,
        status: b.status,
    })
}

/// Postcard cannot skip fields, so the binary form of [`RowBatch`] is this plain type (no
/// `skip_serializing_if`), its rows in their one binary form ([`RowBin`]). Append fields only.
#[derive(Serialize, Deserialize)]
struct PostcardBatch<'a> {
    attempt: u32,
    lease: u64,
    #[serde(borrow)]
    rows: Vec<RowBin<'a>>,
    fraction: Option<f64>,
    status: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcard_round_trip_keeps_non_finite_values() {
        let batch = RowBatch {
            attempt: 2,
            lease: 99,
            rows: vec![Row {
                seq: 0,
                generation: Some(1),
                best: Some(f64::INFINITY),
                mean: Some(-3.5),
                metrics: vec![("entropy".into(), 0.25)],
                ..Row::default()
            }],
            fraction: Some(0.5),
            status: None,
        };
        let back = decode_postcard(&encode_postcard(&batch)).unwrap();
        assert_eq!(back.rows, batch.rows);
        assert_eq!(back.attempt, 2);
        assert!(decode_postcard(b"\xff\xff\xff").is_err());
    }
}
