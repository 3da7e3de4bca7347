//! Domain types: jobs, their lifecycle, workers, result rows.
//!
//! These types are also what the JSON API speaks and what the store keeps (as JSON), so they are
//! a stability boundary: add fields only with `#[serde(default)]`, never rename or remove one
//! without bumping [`crate::protocol::PROTOCOL_VERSION`] and the store's schema version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::RequestError;

/// Job ids are small increasing integers (users type `gaia show 42`).
pub type JobId = u64;

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What a job runs.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default,
)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// `<python> run_all.py --method M --env E --max-evals N [--seed S]` in the experiments dir.
    #[default]
    Experiment,
    /// An argv given by the submitter; only workers started with `--allow-commands` run it.
    Command,
    /// Built-in: the input reversed.
    Reverse,
    /// Built-in: SHA-256 of the input, hex.
    Hash,
    /// Built-in: sum of the whitespace- or comma-separated numbers of the input.
    Sum,
    /// Built-in: the input in upper case.
    Upper,
    /// Built-in: sleeps for the input's number of seconds.
    Wait,
}

impl JobKind {
    /// Every kind, in declaration order.
    pub const ALL: [JobKind; 7] = [
        JobKind::Experiment,
        JobKind::Command,
        JobKind::Reverse,
        JobKind::Hash,
        JobKind::Sum,
        JobKind::Upper,
        JobKind::Wait,
    ];

    /// The kind's name as users type it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Experiment => "experiment",
            JobKind::Command => "command",
            JobKind::Reverse => "reverse",
            JobKind::Hash => "hash",
            JobKind::Sum => "sum",
            JobKind::Upper => "upper",
            JobKind::Wait => "wait",
        }
    }

    /// True for the kinds a worker runs in-process.
    pub fn is_builtin(self) -> bool {
        !matches!(self, JobKind::Experiment | JobKind::Command)
    }
}

impl std::fmt::Display for JobKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobKind {
    type Err = RequestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = JobKind::ALL.iter().map(|k| k.as_str()).collect();
                RequestError::Invalid(format!(
                    "unknown job kind {s:?}; known kinds: {}",
                    known.join(", ")
                ))
            })
    }
}

/// A job's state. `queued → running → succeeded | failed | timed_out | cancelled | lost`, and
/// `running → queued` when a lease expires with attempts left.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Lost,
}

impl JobState {
    /// Every state, in lifecycle order.
    pub const ALL: [JobState; 7] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::TimedOut,
        JobState::Cancelled,
        JobState::Lost,
    ];

    /// The state's name as users type it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::TimedOut => "timed_out",
            JobState::Cancelled => "cancelled",
            JobState::Lost => "lost",
        }
    }

    /// True once the job will never run again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for JobState {
    type Err = RequestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = JobState::ALL.iter().map(|k| k.as_str()).collect();
                RequestError::Invalid(format!(
                    "unknown job state {s:?}; known states: {}",
                    known.join(", ")
                ))
            })
    }
}

/// What a worker slot must offer to run a job.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    /// GPUs the job needs on one worker slot.
    #[serde(default)]
    pub gpus: u32,
    /// Memory (MiB) the worker must have.
    #[serde(default)]
    pub memory_mb: u64,
    /// Tags the worker must all carry (e.g. `cuda12`, `lab-a`).
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Default number of attempts before a job whose workers keep vanishing is `lost`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default environment of an experiment.
pub const DEFAULT_ENV: &str = "CartPole-v1";
/// Default evaluation budget of an experiment.
pub const DEFAULT_MAX_EVALS: u64 = 100_000;
/// Longest input of a built-in job.
pub const MAX_INPUT_BYTES: usize = 1 << 20;

fn default_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}

/// What the submitter asks for.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    #[serde(default)]
    pub kind: JobKind,
    /// Optional free-form label shown in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Experiment: the optimisation method (`cma_es`, `openai_es`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Experiment: the environment (`CartPole-v1`, `sphere`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// Experiment: the evaluation budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_evals: Option<u64>,
    /// Experiment: the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Experiment: method parameters, passed as `GAIA_JOB_PARAMS`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    /// Command: the argv to run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub argv: Vec<String>,
    /// Built-in kinds: the input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// Higher runs first; FIFO within a priority.
    #[serde(default)]
    pub priority: i32,
    #[serde(default)]
    pub requirements: Requirements,
    /// Attempts before a job whose workers vanish is `lost`.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Kill the job (`timed_out`) after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// The study this job belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<String>,
}

/// Checks a name that comes from outside (method, environment, tag, worker name, study):
/// 1–64 characters of `A-Za-z0-9_.-`, not starting with `.` or `-`.
pub fn validate_name(what: &str, s: &str) -> Result<(), RequestError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && !s.starts_with('-')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RequestError::Invalid(format!(
            "invalid {what} {s:?}: use 1-64 characters of A-Z a-z 0-9 _ - . (not starting with . or -)"
        )))
    }
}

/// The methods the experiments in this repository ship (`experiments/gaia_exp/methods/`). A
/// worker's own experiments folder may know others, so an unknown method is a warning, not an
/// error.
pub const SHIPPED_METHODS: &[&str] = &[
    "cma_es",
    "openai_es",
    "random_search",
    "island_model",
    "curriculum_cma_es",
    "neuromod_cma_es",
    "neuromod_island",
    "hybrid_cma_ff",
    "indirect_encoding",
    "ppo",
];

impl JobSpec {
    /// An experiment with the given method and budget, defaults elsewhere.
    pub fn experiment(method: &str, max_evals: u64) -> JobSpec {
        JobSpec {
            kind: JobKind::Experiment,
            method: Some(method.to_string()),
            max_evals: Some(max_evals),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            ..JobSpec::default()
        }
    }

    /// A built-in job with an input.
    pub fn builtin(kind: JobKind, input: &str) -> JobSpec {
        JobSpec {
            kind,
            input: Some(input.to_string()),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            ..JobSpec::default()
        }
    }

    /// Checks the spec and fills in defaults (environment, budget). Every rule a user can break
    /// gives a message naming the field.
    pub fn normalize(&mut self) -> Result<(), RequestError> {
        let bad = |m: String| Err(RequestError::Invalid(m));
        if let Some(name) = &self.name
            && name.chars().count() > 200
        {
            return bad("name is longer than 200 characters".into());
        }
        if self.max_attempts == 0 || self.max_attempts > 100 {
            return bad(format!(
                "max_attempts must be between 1 and 100, got {}",
                self.max_attempts
            ));
        }
        if self.timeout_secs == Some(0) {
            return bad("timeout_secs must be positive".into());
        }
        if self.requirements.gpus > 64 {
            return bad(format!(
                "requirements.gpus must be at most 64, got {}",
                self.requirements.gpus
            ));
        }
        for t in &self.requirements.tags {
            validate_name("tag", t)?;
        }
        if let Some(s) = &self.study {
            validate_name("study name", s)?;
        }
        // Names, whatever the kind: they label charts and name a study's folders in its ZIP.
        if let Some(m) = &self.method {
            validate_name("method", m)?;
        }
        if let Some(e) = &self.env {
            validate_name("environment", e)?;
        }
        let params_len = serde_json::to_string(&self.params)
            .map(|s| s.len())
            .unwrap_or(0);
        if params_len > 64 * 1024 {
            return bad("params are larger than 64 KiB".into());
        }
        match self.kind {
            JobKind::Experiment => {
                let Some(method) = &self.method else {
                    return bad("an experiment needs a method (e.g. cma_es)".into());
                };
                validate_name("method", method)?;
                let env = self.env.get_or_insert_with(|| DEFAULT_ENV.to_string());
                validate_name("environment", env)?;
                match self.max_evals {
                    None => self.max_evals = Some(DEFAULT_MAX_EVALS),
                    Some(0) => return bad("max_evals must be positive, got 0".into()),
                    Some(_) => {}
                }
                if !self.argv.is_empty() || self.input.is_some() {
                    return bad("an experiment takes no argv or input".into());
                }
            }
            JobKind::Command => {
                if self.argv.is_empty() || self.argv[0].is_empty() {
                    return bad("a command job needs a non-empty argv".into());
                }
                if self.argv.len() > 4096
                    || self.argv.iter().map(|a| a.len()).sum::<usize>() > 256 * 1024
                {
                    return bad("argv is too long".into());
                }
                if self.argv.iter().any(|a| a.contains('\0')) {
                    return bad("argv must not contain NUL bytes".into());
                }
            }
            kind => {
                let Some(input) = &self.input else {
                    return bad(format!("a {kind} job needs an input"));
                };
                if input.len() > MAX_INPUT_BYTES {
                    return bad(format!("input is larger than {MAX_INPUT_BYTES} bytes"));
                }
                if kind == JobKind::Wait {
                    match input.trim().parse::<f64>() {
                        Ok(s) if s.is_finite() && (0.0..=86_400.0).contains(&s) => {}
                        _ => {
                            return bad(format!(
                                "a wait job's input is a number of seconds between 0 and 86400, got {input:?}"
                            ));
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A one-line description for lists: `cma_es CartPole-v1 100000 evals seed 3`.
    pub fn describe(&self) -> String {
        match self.kind {
            JobKind::Experiment => {
                let mut s = format!(
                    "{} {} {} evals",
                    self.method.as_deref().unwrap_or("?"),
                    self.env.as_deref().unwrap_or(DEFAULT_ENV),
                    self.max_evals.unwrap_or(DEFAULT_MAX_EVALS)
                );
                if let Some(seed) = self.seed {
                    s.push_str(&format!(" seed {seed}"));
                }
                s
            }
            JobKind::Command => self.argv.join(" "),
            kind => {
                let input = self.input.as_deref().unwrap_or("");
                let short: String = input.chars().take(40).collect();
                if short.len() < input.len() {
                    format!("{kind} {short:?}…")
                } else {
                    format!("{kind} {short:?}")
                }
            }
        }
    }
}

/// The latest progress of a running or finished job, from its newest rows.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// Rows stored for the current attempt.
    #[serde(default)]
    pub rows: u64,
    #[serde(default)]
    pub generation: Option<u64>,
    #[serde(default)]
    pub evals: Option<f64>,
    #[serde(default)]
    pub best: Option<f64>,
    #[serde(default)]
    pub best_ever: Option<f64>,
    #[serde(default)]
    pub mean: Option<f64>,
    #[serde(default)]
    pub sigma: Option<f64>,
    /// Seconds the experiment reported since it started.
    #[serde(default)]
    pub elapsed: Option<f64>,
    /// 0..1, from `@gaia {"progress": ...}` or evals / max_evals.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// The last `@gaia {"status": ...}` message.
    #[serde(default)]
    pub status: Option<String>,
}

/// One attempt of a job: who ran it and how it ended.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Attempt {
    pub attempt: u32,
    pub worker: String,
    #[serde(default)]
    pub worker_name: String,
    pub started_at: Millis,
    #[serde(default)]
    pub ended_at: Option<Millis>,
    /// How the attempt ended (`succeeded`, `lease expired`, ...), once it has.
    #[serde(default)]
    pub outcome: Option<String>,
}

/// A result file a job uploaded.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// A job as the server keeps it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub spec: JobSpec,
    pub state: JobState,
    /// The current (or last) attempt, 1-based; 0 while never claimed.
    pub attempt: u32,
    /// The lease of the current attempt while running; kept when the attempt ends with a
    /// report, so a retried report of it is recognised and answered the same way.
    #[serde(default)]
    pub lease: Option<u64>,
    /// The worker id of the current (or last) attempt.
    #[serde(default)]
    pub worker: Option<String>,
    #[serde(default)]
    pub worker_name: Option<String>,
    /// Set by a cancel of a running job; the worker learns it at its next call.
    #[serde(default)]
    pub cancel_requested: bool,
    pub submitted_at: Millis,
    #[serde(default)]
    pub started_at: Option<Millis>,
    #[serde(default)]
    pub finished_at: Option<Millis>,
    /// The process's exit code, when there was a process.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Why the job failed (the tail of stderr, a timeout, ...).
    #[serde(default)]
    pub error: Option<String>,
    /// A built-in job's result, or an experiment's `@gaia {"final": ...}`.
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    #[serde(default)]
    pub progress: Progress,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    #[serde(default)]
    pub files: Vec<FileInfo>,
    /// Log lines kept / dropped over the bound, warnings and errors seen.
    #[serde(default)]
    pub log_lines: u64,
    #[serde(default)]
    pub log_dropped: u64,
    #[serde(default)]
    pub warnings: u64,
    #[serde(default)]
    pub errors: u64,
}

impl Job {
    /// Run time of the current attempt in milliseconds (so far, while running).
    pub fn duration_ms(&self) -> Option<u64> {
        let start = self.started_at?;
        let end = self.finished_at.unwrap_or_else(now_ms);
        Some(end.saturating_sub(start))
    }
}

/// One GPU of a worker.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Gpu {
    pub index: u32,
    pub name: String,
    #[serde(default)]
    pub memory_mb: u64,
    #[serde(default)]
    pub driver: String,
}

/// A worker's machine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Hardware {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub arch: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub cpu_model: String,
    #[serde(default)]
    pub cpu_cores: u32,
    #[serde(default)]
    pub memory_mb: u64,
    #[serde(default)]
    pub gpus: Vec<Gpu>,
}

/// Longest text field a worker reports about its machine.
const MAX_HARDWARE_TEXT: usize = 256;
/// Most GPUs one worker reports.
const MAX_GPUS: usize = 64;

impl Hardware {
    /// Checks the sizes of what a worker reports (it is kept in memory and shown everywhere).
    pub fn validate(&self) -> Result<(), RequestError> {
        let texts = [
            ("os", &self.os),
            ("arch", &self.arch),
            ("hostname", &self.hostname),
            ("cpu_model", &self.cpu_model),
        ];
        let gpu_texts = self
            .gpus
            .iter()
            .flat_map(|g| [("gpu name", &g.name), ("gpu driver", &g.driver)]);
        for (what, v) in texts.into_iter().chain(gpu_texts) {
            if v.len() > MAX_HARDWARE_TEXT {
                return Err(RequestError::Invalid(format!(
                    "hardware {what} is longer than {MAX_HARDWARE_TEXT} bytes"
                )));
            }
        }
        if self.gpus.len() > MAX_GPUS {
            return Err(RequestError::Invalid(format!(
                "at most {MAX_GPUS} GPUs per worker, got {}",
                self.gpus.len()
            )));
        }
        Ok(())
    }
}

impl Usage {
    /// Checks the size of a heartbeat's utilisation report.
    pub fn validate(&self) -> Result<(), RequestError> {
        if self.gpu_percent.len() > MAX_GPUS {
            return Err(RequestError::Invalid(format!(
                "at most {MAX_GPUS} GPU utilisations, got {}",
                self.gpu_percent.len()
            )));
        }
        Ok(())
    }
}

/// Live utilisation a worker reports with each heartbeat.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Usage {
    #[serde(default)]
    pub cpu_percent: f32,
    #[serde(default)]
    pub memory_percent: f32,
    #[serde(default)]
    pub gpu_percent: Vec<f32>,
}

/// A worker's state, as the server sees it.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    Idle,
    Busy,
    Offline,
    Draining,
}

impl WorkerState {
    /// The state's name as shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Idle => "idle",
            WorkerState::Busy => "busy",
            WorkerState::Offline => "offline",
            WorkerState::Draining => "draining",
        }
    }
}

/// A registered worker.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Worker {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub hardware: Hardware,
    #[serde(default)]
    pub kinds: Vec<JobKind>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub slots: u32,
    pub registered_at: Millis,
    pub last_seen: Millis,
    pub state: WorkerState,
    #[serde(default)]
    pub running: Vec<JobId>,
    #[serde(default)]
    pub usage: Usage,
    /// True when the promoted release differs from the version this worker runs.
    #[serde(default)]
    pub update_available: bool,
    /// The last update this worker refused, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_error: Option<String>,
}

impl Worker {
    /// Whether this worker, online, could take a job with this spec (its whole machine: a
    /// slot may offer less). For hints such as "no worker can run this".
    pub fn could_run(&self, spec: &JobSpec) -> bool {
        self.state != WorkerState::Offline
            && Capabilities {
                kinds: self.kinds.clone(),
                gpus: self.hardware.gpus.len() as u32,
                memory_mb: self.hardware.memory_mb,
                tags: self.tags.clone(),
            }
            .fits(spec)
    }
}

/// Why no online worker among `workers` could take `spec`, or None if one could.
pub fn unrunnable_reason(workers: &[Worker], spec: &JobSpec) -> Option<String> {
    if workers.iter().any(|w| w.could_run(spec)) {
        return None;
    }
    let online: Vec<&Worker> = workers
        .iter()
        .filter(|w| w.state != WorkerState::Offline)
        .collect();
    let req = &spec.requirements;
    Some(if online.is_empty() {
        "no worker is online (start one with gaia work)".to_string()
    } else if !online.iter().any(|w| w.kinds.contains(&spec.kind)) {
        if spec.kind == JobKind::Command {
            "no online worker runs command jobs (start one with gaia work --allow-commands)".into()
        } else {
            format!(
                "no online worker runs {} jobs (gaia work --kinds)",
                spec.kind
            )
        }
    } else if req.gpus > 0
        && !online
            .iter()
            .any(|w| w.hardware.gpus.len() as u32 >= req.gpus)
    {
        format!(
            "it needs {} GPU(s) and no online worker has that many",
            req.gpus
        )
    } else if req.memory_mb > 0 && !online.iter().any(|w| w.hardware.memory_mb >= req.memory_mb) {
        format!(
            "it needs {} MiB of memory and no online worker has that much",
            req.memory_mb
        )
    } else {
        format!(
            "no online worker has the tags it needs ({})",
            req.tags.join(", ")
        )
    })
}

/// What one worker slot offers when it asks for work.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Capabilities {
    pub kinds: Vec<JobKind>,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default)]
    pub memory_mb: u64,
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Capabilities {
    /// Whether a job with this spec may run on a slot with these capabilities.
    pub fn fits(&self, spec: &JobSpec) -> bool {
        self.kinds.contains(&spec.kind)
            && spec.requirements.gpus <= self.gpus
            && spec.requirements.memory_mb <= self.memory_mb
            && spec.requirements.tags.iter().all(|t| self.tags.contains(t))
    }
}

/// One generation of one attempt: the key is `(job, attempt, seq)`, `seq` numbered 0, 1, 2, …
/// by the worker per attempt.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Row {
    pub seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evals: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_ever: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma: Option<f64>,
    /// Seconds since the experiment started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed: Option<f64>,
    /// Further named metrics, in name order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<(String, f64)>,
}

/// The fixed metric names of a row, in column order.
pub const CORE_METRICS: [&str; 7] = [
    "generation",
    "evals",
    "best",
    "best_ever",
    "mean",
    "sigma",
    "elapsed",
];

impl Row {
    /// The value of a metric by name (core or extra).
    pub fn metric(&self, name: &str) -> Option<f64> {
        match name {
            "generation" => self.generation.map(|g| g as f64),
            "evals" => self.evals,
            "best" => self.best,
            "best_ever" => self.best_ever,
            "mean" => self.mean,
            "sigma" => self.sigma,
            "elapsed" => self.elapsed,
            other => self
                .metrics
                .iter()
                .find(|(k, _)| k == other)
                .map(|(_, v)| *v),
        }
    }

    /// Sets a metric by its normalised name.
    pub fn set_metric(&mut self, name: &str, v: f64) {
        match name {
            "generation" => self.generation = (v.is_finite() && v >= 0.0).then_some(v as u64),
            "evals" => self.evals = Some(v),
            "best" => self.best = Some(v),
            "best_ever" => self.best_ever = Some(v),
            "mean" => self.mean = Some(v),
            "sigma" => self.sigma = Some(v),
            "elapsed" => self.elapsed = Some(v),
            other => match self.metrics.iter_mut().find(|(k, _)| k == other) {
                Some(slot) => slot.1 = v,
                None => self.metrics.push((other.to_string(), v)),
            },
        }
    }
}

/// A log line's stream.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    Stdout,
    Stderr,
    /// A line the worker itself wrote about the job.
    Worker,
}

/// Severity the server assigns to a log line.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    /// Classifies a line: `Traceback`, `ERROR`, `Error:` and `Exception` are errors; `WARN` and
    /// `Warning` are warnings.
    pub fn of(text: &str) -> Level {
        if text.contains("Traceback")
            || text.contains("ERROR")
            || text.contains("Error:")
            || text.contains("Exception")
            || text.contains("FATAL")
            || text.contains("panicked")
        {
            Level::Error
        } else if text.contains("WARN") || text.contains("Warning") || text.contains("warning:") {
            Level::Warning
        } else {
            Level::Info
        }
    }
}

/// One stored log line of a job.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LogLine {
    /// Position in the job's log, 0-based, over all attempts.
    pub seq: u64,
    pub attempt: u32,
    pub at: Millis,
    pub stream: Stream,
    pub level: Level,
    pub text: String,
}

/// An entry of the activity log (stored) and of the live event stream.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Event {
    /// Increasing id; SSE clients resume after it with `Last-Event-ID`.
    pub id: u64,
    pub at: Millis,
    /// `job_submitted`, `job_started`, `job_succeeded`, `job_failed`, `job_requeued`,
    /// `job_lost`, `job_cancelled`, `job_timed_out`, `worker_joined`, `worker_lost`, ...
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    pub message: String,
}

/// Token scopes: `admin` may do everything, `worker` runs jobs, `read` looks.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Admin,
    Worker,
    Read,
}

impl Scope {
    /// The scope's name as users type it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Worker => "worker",
            Scope::Read => "read",
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = RequestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Scope::Admin),
            "worker" => Ok(Scope::Worker),
            "read" => Ok(Scope::Read),
            _ => Err(RequestError::Invalid(format!(
                "unknown scope {s:?}; use admin, worker or read"
            ))),
        }
    }
}

/// A stored API token (the secret itself is never stored, only its SHA-256).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TokenInfo {
    pub name: String,
    pub scope: Scope,
    pub created_at: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate_name("method", "cma_es").is_ok());
        assert!(validate_name("env", "CartPole-v1").is_ok());
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "-x",
            "sp ace",
            &"x".repeat(65),
        ] {
            assert!(validate_name("x", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn experiment_defaults_and_errors() {
        let mut spec = JobSpec::experiment("cma_es", 100);
        spec.env = None;
        spec.normalize().unwrap();
        assert_eq!(spec.env.as_deref(), Some(DEFAULT_ENV));
        let mut zero = JobSpec::experiment("cma_es", 0);
        assert!(
            zero.normalize()
                .unwrap_err()
                .to_string()
                .contains("max_evals")
        );
        let mut nomethod = JobSpec {
            max_attempts: 3,
            ..JobSpec::default()
        };
        assert!(
            nomethod
                .normalize()
                .unwrap_err()
                .to_string()
                .contains("method")
        );
        let mut wait = JobSpec::builtin(JobKind::Wait, "abc");
        assert!(wait.normalize().is_err());
        // Method and environment are names on every kind (a study's ZIP has folders of them).
        let mut cmd = JobSpec {
            kind: JobKind::Command,
            argv: vec!["true".into()],
            method: Some("../../../tmp/evil".into()),
            max_attempts: 1,
            ..JobSpec::default()
        };
        assert!(cmd.normalize().unwrap_err().to_string().contains("method"));
        cmd.method = Some("sweep".into());
        cmd.env = Some("a/b".into());
        assert!(
            cmd.normalize()
                .unwrap_err()
                .to_string()
                .contains("environment")
        );
        cmd.env = Some("local".into());
        cmd.normalize().unwrap();
    }

    #[test]
    fn shipped_methods_are_the_experiments_method_modules() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../experiments/gaia_exp/methods");
        let mut found: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                let stem = name.strip_suffix(".py")?;
                (!stem.starts_with('_')).then(|| stem.to_string())
            })
            .collect();
        found.sort();
        let mut known: Vec<String> = SHIPPED_METHODS.iter().map(|s| s.to_string()).collect();
        known.sort();
        assert_eq!(
            found,
            known,
            "SHIPPED_METHODS is out of date with {}",
            dir.display()
        );
    }

    #[test]
    fn capabilities_fit() {
        let caps = Capabilities {
            kinds: vec![JobKind::Hash, JobKind::Experiment],
            gpus: 1,
            memory_mb: 8000,
            tags: vec!["lab".into()],
        };
        let mut spec = JobSpec::builtin(JobKind::Hash, "x");
        assert!(caps.fits(&spec));
        spec.requirements.gpus = 2;
        assert!(!caps.fits(&spec));
        spec.requirements.gpus = 1;
        spec.requirements.tags = vec!["lab".into(), "cuda".into()];
        assert!(!caps.fits(&spec));
        assert!(!caps.fits(&JobSpec::builtin(JobKind::Upper, "x")));
    }
}
