//! Domain types: jobs, their lifecycle, workers, result rows.
//!
//! These types are also what the JSON API speaks and what the store keeps (as JSON), so they are
//! a stability boundary: add fields only with `#[serde(default)]`, never rename or remove one
//! without bumping [`crate::protocol::PROTOCOL_VERSION`] and the store's schema version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::RequestError;

/// Declares a fieldless enum whose variants each have one name, the same for users and on the
/// wire (serde), with `ALL` (declaration order), `as_str`, `Display` and `FromStr` (an unknown
/// name is an error listing the known ones). The one copy of that code for every such enum.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal, $plural:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];

            /// The name as users type it (and as the wire spells it).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::RequestError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let known: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                        $crate::error::RequestError::Invalid(format!(
                            concat!("unknown ", $what, " {:?}; known ", $plural, ": {}"),
                            s,
                            known.join(", ")
                        ))
                    })
            }
        }
    };
}
pub(crate) use named_enum;

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

/// Microseconds since the Unix epoch (wall clock): when a worker started a job's code.
pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

named_enum! {
    /// What a job runs.
    #[derive(PartialOrd, Ord, Default)]
    pub enum JobKind ("job kind", "kinds") {
        /// `<python> run_all.py --method M --env E --max-evals N [--seed S]` in the experiments dir.
        #[default]
        Experiment = "experiment",
        /// An argv given by the submitter; only workers started with `--allow-commands` run it.
        Command = "command",
        /// Built-in: the input reversed.
        Reverse = "reverse",
        /// Built-in: SHA-256 of the input, hex.
        Hash = "hash",
        /// Built-in: sum of the whitespace- or comma-separated numbers of the input.
        Sum = "sum",
        /// Built-in: the input in upper case.
        Upper = "upper",
        /// Built-in: sleeps for the input's number of seconds.
        Wait = "wait",
    }
}

impl JobKind {
    /// True for the kinds a worker runs in-process.
    pub fn is_builtin(self) -> bool {
        !matches!(self, JobKind::Experiment | JobKind::Command)
    }
}

named_enum! {
    /// A job's state. `queued → running → succeeded | failed | timed_out | cancelled | lost`, and
    /// `running → queued` when a lease expires with attempts left.
    #[derive(PartialOrd, Ord)]
    pub enum JobState ("job state", "states") {
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        TimedOut = "timed_out",
        Cancelled = "cancelled",
        Lost = "lost",
        /// An adaptive study's early stopping ended it: not the experiment's failure, not a
        /// user's cancel. It keeps its rows and files.
        Pruned = "pruned",
    }
}

impl JobState {
    /// True once the job will never run again.
    pub fn is_terminal(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

/// What a worker slot must offer to run a job.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
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
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
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
    /// Resource limits of the job's processes (`gaia submit --limit mem=8G,cpu=2h`), each
    /// bounded by the running worker's maximum (`gaia work --max-limit`).
    #[serde(default, skip_serializing_if = "Limits::is_empty")]
    pub limits: Limits,
}

/// Resource limits of one job's processes. Unset: the worker's maximum applies (if it has one).
/// A job over a limit ends `failed` with the limit named.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory of the whole job in bytes: a cgroup v2 `memory.max` where the worker may create
    /// cgroups, else each process's address space (`RLIMIT_AS`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// CPU time of each process, seconds (`RLIMIT_CPU`; the wall clock is `timeout_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_secs: Option<u64>,
    /// Open files of each process (`RLIMIT_NOFILE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_files: Option<u64>,
    /// Output size in bytes: the largest file a process may write (`RLIMIT_FSIZE`), and the
    /// total of the job's result files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
}

impl Limits {
    /// No limit set.
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// Parses `mem=8G,cpu=2h,files=1024,output=1G` (any subset, any order). Sizes take K, M,
    /// G, T (powers of 1024; a bare number is bytes); times take s, m, h, d (bare: seconds).
    /// `time=` is `cpu=`.
    pub fn parse(s: &str) -> Result<Limits, RequestError> {
        let bad = |m: String| RequestError::Invalid(format!("--limit {s:?}: {m}"));
        let mut out = Limits::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| bad(format!("{item:?} is not KEY=VALUE")))?;
            let (k, v) = (k.trim(), v.trim());
            let slot = match k {
                "mem" | "memory" => &mut out.memory_bytes,
                "cpu" | "time" => &mut out.cpu_secs,
                "files" | "nofile" => &mut out.open_files,
                "output" | "out" => &mut out.output_bytes,
                _ => {
                    return Err(bad(format!(
                        "unknown limit {k:?} (mem=SIZE, cpu=TIME, files=N, output=SIZE)"
                    )));
                }
            };
            let n = match k {
                "mem" | "memory" | "output" | "out" => parse_size(v),
                "cpu" | "time" => parse_duration_secs(v),
                _ => v.parse::<u64>().ok(),
            }
            .filter(|&n| n > 0)
            .ok_or_else(|| bad(format!("{k}={v:?} is not a positive amount")))?;
            if slot.replace(n).is_some() {
                return Err(bad(format!("{k} is given twice")));
            }
        }
        Ok(out)
    }

    /// Each limit the smaller of this one and `max` (a limit only `max` sets applies too).
    pub fn within(&self, max: &Limits) -> Limits {
        let min = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Limits {
            memory_bytes: min(self.memory_bytes, max.memory_bytes),
            cpu_secs: min(self.cpu_secs, max.cpu_secs),
            open_files: min(self.open_files, max.open_files),
            output_bytes: min(self.output_bytes, max.output_bytes),
        }
    }

    /// `mem=8G,cpu=2h` as [`Limits::parse`] reads it (empty when none is set).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = self.memory_bytes {
            parts.push(format!("mem={}", format_size(b)));
        }
        if let Some(t) = self.cpu_secs {
            parts.push(format!("cpu={}", format_duration_secs(t)));
        }
        if let Some(n) = self.open_files {
            parts.push(format!("files={n}"));
        }
        if let Some(b) = self.output_bytes {
            parts.push(format!("output={}", format_size(b)));
        }
        parts.join(",")
    }
}

/// `8G`, `512M`, `100k`, `1024` (bytes) → bytes; powers of 1024.
fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let upper = v.to_ascii_uppercase();
    let t = upper.trim_end_matches("IB").trim_end_matches('B');
    let (num, mult) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 1u64 << 10),
        'M' => (&t[..t.len() - 1], 1 << 20),
        'G' => (&t[..t.len() - 1], 1 << 30),
        'T' => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let x: f64 = num.trim().parse().ok()?;
    let bytes = x * mult as f64;
    (x.is_finite() && x >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// `90`, `90s`, `30m`, `2h`, `1d` → seconds.
fn parse_duration_secs(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = match v.chars().last()? {
        's' => (&v[..v.len() - 1], 1u64),
        'm' => (&v[..v.len() - 1], 60),
        'h' => (&v[..v.len() - 1], 3600),
        'd' => (&v[..v.len() - 1], 86_400),
        _ => (v, 1),
    };
    let x: f64 = num.trim().parse().ok()?;
    let secs = x * mult as f64;
    (x.is_finite() && x >= 0.0 && secs < u64::MAX as f64).then_some(secs.ceil() as u64)
}

fn format_size(b: u64) -> String {
    for (unit, m) in [
        ("T", 1u64 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ] {
        if b >= m && b.is_multiple_of(m) {
            return format!("{}{unit}", b / m);
        }
    }
    b.to_string()
}

fn format_duration_secs(t: u64) -> String {
    for (unit, m) in [("d", 86_400u64), ("h", 3600), ("m", 60)] {
        if t >= m && t.is_multiple_of(m) {
            return format!("{}{unit}", t / m);
        }
    }
    format!("{t}s")
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

/// Checks a file name that comes from outside (a job's result file, a release file): 1–128
/// characters of `A-Za-z0-9_.-`, not starting with `.`, so it cannot name a folder or escape
/// the one it is stored in.
pub fn validate_file_name(name: &str) -> Result<(), RequestError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(RequestError::Invalid(format!(
            "invalid file name {name:?}: use 1-128 characters of A-Z a-z 0-9 _ - . (not starting with .)"
        )))
    }
}

/// True for characters that must not appear in text shown to people: control characters (NUL,
/// escapes; tab excepted) and the Unicode bidirectional controls (embeddings, overrides,
/// isolates, marks), with which a name can be made to display as another (`U+202E`).
fn hidden_or_control(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(
            c,
            '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// Checks free text from outside that people read as a label (a job's name, a param's key or
/// text value): no control or bidirectional-control characters. Errors name `what` and the
/// character's code point.
pub fn validate_text(what: &str, s: &str) -> Result<(), RequestError> {
    match s.chars().find(|&c| hidden_or_control(c)) {
        None => Ok(()),
        Some(c) => Err(RequestError::Invalid(format!(
            "{what} contains the control character U+{:04X}, which is not allowed",
            c as u32
        ))),
    }
}

/// Checks every key and text value of a JSON value with [`validate_text`].
fn validate_json_text(what: &str, v: &serde_json::Value) -> Result<(), RequestError> {
    match v {
        serde_json::Value::String(s) => validate_text(what, s),
        serde_json::Value::Array(items) => {
            items.iter().try_for_each(|i| validate_json_text(what, i))
        }
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            validate_text(what, k)?;
            validate_json_text(what, v)
        }),
        _ => Ok(()),
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

    /// Checks the spec and makes it the typed [`Spec`] the queue stores, with every default
    /// applied (environment, budget): the one place they are. Every rule a user can break gives
    /// a message naming the field.
    pub fn normalize(mut self) -> Result<Spec, RequestError> {
        let bad = |m: String| Err(RequestError::Invalid(m));
        if let Some(name) = &self.name {
            if name.chars().count() > 200 {
                return bad("name is longer than 200 characters".into());
            }
            validate_text("the job's name", name)?;
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
        for (k, v) in &self.params {
            validate_text("a param's name", k)?;
            validate_json_text(&format!("param {k:?}"), v)?;
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
        Ok(Spec::from(self))
    }
}

/// A checked job spec: what the queue stores, workers run and every reader sees. Made from a
/// submitted [`JobSpec`] by [`JobSpec::normalize`], so each kind's shape is held in types and
/// every default was applied once. On the wire and in the store it is written as the
/// [`JobSpec`] it stands for (same JSON as before), and read back leniently ([`From<JobSpec>`]):
/// a stored job always reads, whatever rules were added since it was submitted.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(from = "JobSpec", into = "JobSpec")]
pub struct Spec {
    /// What runs.
    pub task: Task,
    /// Optional free-form label shown in lists.
    pub name: Option<String>,
    /// Method parameters, passed as `GAIA_JOB_PARAMS` (any kind).
    pub params: BTreeMap<String, serde_json::Value>,
    /// Higher runs first; FIFO within a priority.
    pub priority: i32,
    pub requirements: Requirements,
    /// Attempts before a job whose workers vanish is `lost`.
    pub max_attempts: u32,
    /// Kill the job (`timed_out`) after this many seconds.
    pub timeout_secs: Option<u64>,
    /// The study this job belongs to.
    pub study: Option<String>,
    /// Resource limits of its processes.
    pub limits: Limits,
}

/// On the wire a `Spec` is the [`JobSpec`] it stands for (`#[serde(from, into)]`), so its JSON
/// Schema is `JobSpec`'s, under that name.
impl schemars::JsonSchema for Spec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        JobSpec::schema_name()
    }

    fn schema_id() -> std::borrow::Cow<'static, str> {
        JobSpec::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        JobSpec::json_schema(generator)
    }
}

/// What a job runs, by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum Task {
    /// `<python> run_all.py --method M --env E --max-evals N [--seed S]`.
    Experiment(Experiment),
    /// An argv; only workers started with `--allow-commands` run it.
    Command { argv: Vec<String>, labels: Labels },
    /// A built-in kind, run inside the worker.
    Builtin {
        kind: JobKind,
        input: String,
        labels: Labels,
    },
}

/// An experiment: method, environment and budget always known.
#[derive(Clone, Debug, PartialEq)]
pub struct Experiment {
    pub method: String,
    pub env: String,
    /// The evaluation budget.
    pub max_evals: u64,
    pub seed: Option<u64>,
}

/// What labels a job that is not an experiment (charts, a study's ZIP folders), if given.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Labels {
    pub method: Option<String>,
    pub env: Option<String>,
    pub seed: Option<u64>,
}

impl From<JobSpec> for Spec {
    /// The typed form of a spec, defaults filled in, without the checks of
    /// [`JobSpec::normalize`] (which calls it after them): how stored and received jobs read.
    fn from(s: JobSpec) -> Spec {
        let labels = Labels {
            method: s.method.clone(),
            env: s.env.clone(),
            seed: s.seed,
        };
        let task = match s.kind {
            JobKind::Experiment => Task::Experiment(Experiment {
                method: s.method.unwrap_or_default(),
                env: s.env.unwrap_or_else(|| DEFAULT_ENV.to_string()),
                max_evals: s.max_evals.unwrap_or(DEFAULT_MAX_EVALS),
                seed: s.seed,
            }),
            JobKind::Command => Task::Command {
                argv: s.argv,
                labels,
            },
            kind => Task::Builtin {
                kind,
                input: s.input.unwrap_or_default(),
                labels,
            },
        };
        Spec {
            task,
            name: s.name,
            params: s.params,
            priority: s.priority,
            requirements: s.requirements,
            max_attempts: s.max_attempts,
            timeout_secs: s.timeout_secs,
            study: s.study,
            limits: s.limits,
        }
    }
}

impl From<Spec> for JobSpec {
    fn from(s: Spec) -> JobSpec {
        let mut out = JobSpec {
            kind: s.kind(),
            name: s.name,
            params: s.params,
            priority: s.priority,
            requirements: s.requirements,
            max_attempts: s.max_attempts,
            timeout_secs: s.timeout_secs,
            study: s.study,
            limits: s.limits,
            ..JobSpec::default()
        };
        let labels = match s.task {
            Task::Experiment(e) => {
                out.method = Some(e.method);
                out.env = Some(e.env);
                out.max_evals = Some(e.max_evals);
                out.seed = e.seed;
                return out;
            }
            Task::Command { argv, labels } => {
                out.argv = argv;
                labels
            }
            Task::Builtin { input, labels, .. } => {
                out.input = Some(input);
                labels
            }
        };
        out.method = labels.method;
        out.env = labels.env;
        out.seed = labels.seed;
        out
    }
}

impl Spec {
    /// What kind of job this is.
    pub fn kind(&self) -> JobKind {
        match &self.task {
            Task::Experiment(_) => JobKind::Experiment,
            Task::Command { .. } => JobKind::Command,
            Task::Builtin { kind, .. } => *kind,
        }
    }

    /// The experiment, if this is one.
    pub fn experiment(&self) -> Option<&Experiment> {
        match &self.task {
            Task::Experiment(e) => Some(e),
            _ => None,
        }
    }

    /// The experiment, if this is one, to change (tests, embedders building jobs).
    pub fn experiment_mut(&mut self) -> Option<&mut Experiment> {
        match &mut self.task {
            Task::Experiment(e) => Some(e),
            _ => None,
        }
    }

    fn labels(&self) -> Option<&Labels> {
        match &self.task {
            Task::Experiment(_) => None,
            Task::Command { labels, .. } | Task::Builtin { labels, .. } => Some(labels),
        }
    }

    /// The method (an experiment's, or another kind's label).
    pub fn method(&self) -> Option<&str> {
        match self.experiment() {
            Some(e) => Some(&e.method),
            None => self.labels().and_then(|l| l.method.as_deref()),
        }
    }

    /// The environment (an experiment's, or another kind's label).
    pub fn env(&self) -> Option<&str> {
        match self.experiment() {
            Some(e) => Some(&e.env),
            None => self.labels().and_then(|l| l.env.as_deref()),
        }
    }

    /// The seed, if one was given.
    pub fn seed(&self) -> Option<u64> {
        match self.experiment() {
            Some(e) => e.seed,
            None => self.labels().and_then(|l| l.seed),
        }
    }

    /// An experiment's evaluation budget.
    pub fn max_evals(&self) -> Option<u64> {
        self.experiment().map(|e| e.max_evals)
    }

    /// A one-line description for lists: `cma_es CartPole-v1 100000 evals seed 3`.
    pub fn describe(&self) -> String {
        match &self.task {
            Task::Experiment(e) => {
                let mut s = format!("{} {} {} evals", e.method, e.env, e.max_evals);
                if let Some(seed) = e.seed {
                    s.push_str(&format!(" seed {seed}"));
                }
                s
            }
            Task::Command { argv, .. } => argv.join(" "),
            Task::Builtin { kind, input, .. } => {
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
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
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
    /// True once the experiment reported its own progress (`@gaia {"progress": ...}`): then
    /// `fraction` is its word, not evals / budget.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fraction_reported: bool,
    /// Seconds this attempt still needs at its measured speed (`study::job_eta`): from the
    /// progress the experiment reports, else from its budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<f64>,
    /// `eta_secs` is an upper bound: it assumes the whole budget, and the experiment may stop
    /// early (solved). Shown as "≤".
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub eta_bound: bool,
    /// The last `@gaia {"status": ...}` message.
    #[serde(default)]
    pub status: Option<String>,
    /// The names of the further metrics (beyond the core ones) that the current attempt's
    /// rows carry, sorted: the columns of its table, known without reading its rows. Absent
    /// for an attempt whose first rows were stored before GAIA kept this list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<String>>,
}

impl Progress {
    /// Notes the metric names of rows just stored for the current attempt; `first` when they
    /// are its first rows (only then does the list start, so it is never partial). An attempt
    /// that reports more than [`MAX_KEPT_METRICS`] names (names made of steps or layers) stops
    /// keeping the list: it rides on every save of the job, so it must stay small; its readers
    /// then find the names with a pass over the rows.
    pub fn note_metrics(&mut self, rows: &[Row], first: bool) {
        if first {
            self.metrics.get_or_insert_with(Vec::new);
        }
        let Some(names) = &mut self.metrics else {
            return;
        };
        if names.len() > MAX_KEPT_METRICS {
            self.metrics = None;
            return;
        }
        let mut last: Option<&Row> = None;
        for row in rows {
            // Consecutive rows almost always carry the same names.
            if last.is_some_and(|l| {
                l.metrics
                    .iter()
                    .map(|(k, _)| k)
                    .eq(row.metrics.iter().map(|(k, _)| k))
            }) {
                continue;
            }
            for (k, _) in &row.metrics {
                if let Err(at) = names.binary_search(k) {
                    names.insert(at, k.clone());
                }
            }
            if names.len() > MAX_KEPT_METRICS {
                self.metrics = None;
                return;
            }
            last = Some(row);
        }
    }
}

/// Most metric names a job's progress keeps ([`Progress::note_metrics`]).
pub const MAX_KEPT_METRICS: usize = 256;

/// One attempt of a job: who ran it and how it ended.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
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
    /// When its code started on the worker (µs since the Unix epoch, the worker's clock), as
    /// the worker reported with its end; `started_at` is when the server leased it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_started_us: Option<u64>,
}

/// A result file a job uploaded.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// A job as the server keeps it.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub spec: Spec,
    pub state: JobState,
    /// The user who submitted it (the user behind the token, not the token, so revoking a
    /// token orphans nothing). Jobs stored before users existed belong to the user `admin`.
    #[serde(default = "admin_user")]
    pub owner: String,
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
    /// Why its study's early stopping stops it (with `cancel_requested` while it runs): the
    /// attempt then ends `pruned`, not `cancelled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_reason: Option<String>,
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
    /// When `gc` deleted this job's rows (its record and progress stay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_deleted_at: Option<Millis>,
    /// When `gc` deleted this job's log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs_deleted_at: Option<Millis>,
}

impl Job {
    /// Run time of the current attempt in milliseconds (so far, while running).
    pub fn duration_ms(&self) -> Option<u64> {
        let start = self.started_at?;
        let end = self.finished_at.unwrap_or_else(now_ms);
        Some(end.saturating_sub(start))
    }
}

/// The few fields of a stored job that overviews need (state counts, scores per method ×
/// environment), borrowed from the stored bytes where it can: the store decodes just these
/// when it scans every job ([`crate::store::Reader::for_each_job_brief`]).
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct JobBrief<'a> {
    #[serde(default)]
    pub id: JobId,
    #[serde(borrow)]
    pub spec: SpecBrief<'a>,
    pub state: JobState,
    #[serde(default)]
    pub progress: ProgressBrief,
}

/// The spec fields of a [`JobBrief`].
#[derive(Deserialize, Clone, Debug, PartialEq)]
pub struct SpecBrief<'a> {
    #[serde(default)]
    pub kind: JobKind,
    #[serde(default, borrow)]
    pub method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub env: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub study: Option<std::borrow::Cow<'a, str>>,
}

/// The progress fields of a [`JobBrief`].
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
pub struct ProgressBrief {
    #[serde(default)]
    pub best: Option<f64>,
    #[serde(default)]
    pub best_ever: Option<f64>,
}

impl JobBrief<'_> {
    /// The job's score so far: its best-ever fitness (or best), when finite.
    pub fn score(&self) -> Option<f64> {
        self.progress
            .best_ever
            .or(self.progress.best)
            .filter(|s| s.is_finite())
    }
}

/// One GPU of a worker.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Gpu {
    pub index: u32,
    pub name: String,
    #[serde(default)]
    pub memory_mb: u64,
    #[serde(default)]
    pub driver: String,
}

/// A worker's machine.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
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
        if self.gpu_percent.len() > MAX_GPUS || self.gpus.len() > MAX_GPUS {
            return Err(RequestError::Invalid(format!(
                "at most {MAX_GPUS} GPU utilisations, got {}",
                self.gpu_percent.len().max(self.gpus.len())
            )));
        }
        if let Some(e) = self.gpus.iter().filter_map(|g| g.error.as_ref()).next()
            && e.len() > MAX_HARDWARE_TEXT
        {
            return Err(RequestError::Invalid(format!(
                "a GPU error text is longer than {MAX_HARDWARE_TEXT} bytes"
            )));
        }
        Ok(())
    }
}

/// Live utilisation a worker reports with each heartbeat.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Usage {
    #[serde(default)]
    pub cpu_percent: f32,
    #[serde(default)]
    pub memory_percent: f32,
    /// Each GPU's utilisation, in the order of `gpus` (kept for older readers).
    #[serde(default)]
    pub gpu_percent: Vec<f32>,
    /// Each GPU's readings, where `nvidia-smi` gives them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<GpuUsage>,
}

/// One GPU's readings at a heartbeat. A value the driver does not give (`[N/A]` on a MIG
/// instance, a GPU in error) is None, never a made-up 0.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct GpuUsage {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_total_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<f32>,
    /// What the driver said instead of readings (`GPU requires reset`, `Unknown Error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

named_enum! {
    /// A worker's state, as the server sees it.
    pub enum WorkerState ("worker state", "states") {
        Idle = "idle",
        Busy = "busy",
        Offline = "offline",
        Draining = "draining",
        /// An admin paused it: it finishes its running jobs and claims no new ones until resumed.
        Paused = "paused",
        /// Its recent jobs all failed for reasons that were not the experiments' own (see
        /// `triage`): it claims nothing until an admin resumes it.
        Quarantined = "quarantined",
    }
}

named_enum! {
    /// Why a worker is held from claiming new jobs (see [`Hold`]).
    pub enum HoldKind ("hold", "holds") {
        /// `gaia worker pause`: claim nothing until resumed.
        Paused = "paused",
        /// `gaia worker drain`: finish running jobs, claim nothing; with `exit`, the worker
        /// process then ends.
        Draining = "draining",
        /// The server stopped a worker whose recent jobs all failed at setup.
        Quarantined = "quarantined",
    }
}

/// A standing order that keeps a worker from claiming new jobs. Kept with the worker in the
/// store, so it outlives a server restart and the worker's own restarts; `resume` lifts it
/// (and so does a drain with `exit` once the worker has left).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Hold {
    pub kind: HoldKind,
    /// Why, in words (an admin's note, or what the failed jobs said).
    #[serde(default)]
    pub reason: String,
    pub since: Millis,
    /// The token name of the admin who set it, or `server` for a quarantine.
    #[serde(default)]
    pub by: String,
    /// Drain only: the worker process ends (exit status 0) once its jobs are done.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exit: bool,
}

impl Hold {
    /// The state a worker under this hold shows while online with `running` jobs: a drain is
    /// `draining` while jobs run and `paused` once they are done (unless it exits).
    pub fn state(&self, running: usize) -> WorkerState {
        match self.kind {
            HoldKind::Paused => WorkerState::Paused,
            HoldKind::Quarantined => WorkerState::Quarantined,
            HoldKind::Draining if running == 0 && !self.exit => WorkerState::Paused,
            HoldKind::Draining => WorkerState::Draining,
        }
    }
}

/// A registered worker.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
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
    /// Paused, draining or quarantined by an admin or the server: it claims no new jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
}

impl Worker {
    /// Whether this worker, online, could take a job with this spec (its whole machine: a
    /// slot may offer less). For hints such as "no worker can run this".
    pub fn could_run(&self, spec: &Spec) -> bool {
        self.state != WorkerState::Offline
            && self.hold.is_none()
            && Capabilities {
                kinds: self.kinds.clone(),
                gpus: self.hardware.gpus.len() as u32,
                memory_mb: self.hardware.memory_mb,
                tags: self.tags.clone(),
                max_job_secs: None,
            }
            .fits(spec)
    }
}

/// Why no online worker among `workers` could take `spec`, or None if one could.
pub fn unrunnable_reason(workers: &[Worker], spec: &Spec) -> Option<String> {
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
    } else if online.iter().all(|w| w.hold.is_some()) {
        "every online worker is paused, draining or quarantined (gaia worker resume NAME)".into()
    } else if !online.iter().any(|w| w.kinds.contains(&spec.kind())) {
        if spec.kind() == JobKind::Command {
            "no online worker runs command jobs (start one with gaia work --allow-commands)".into()
        } else {
            format!(
                "no online worker runs {} jobs (gaia work --kinds)",
                spec.kind()
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
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Capabilities {
    pub kinds: Vec<JobKind>,
    #[serde(default)]
    pub gpus: u32,
    #[serde(default)]
    pub memory_mb: u64,
    #[serde(default)]
    pub tags: Vec<String>,
    /// The longest a job may still run on this slot, in seconds: its worker's allocation ends
    /// (a batch scheduler's time limit, `gaia work --deadline`). The queue skips jobs expected
    /// to take longer (from their study's measured evals/s, see [`crate::cluster::fit`]);
    /// None: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_job_secs: Option<f64>,
}

impl Capabilities {
    /// Whether a job with this spec may run on a slot with these capabilities.
    pub fn fits(&self, spec: &Spec) -> bool {
        self.fits_needs(spec.kind(), &spec.requirements)
    }

    /// Whether a job of this kind with these requirements may run on such a slot.
    pub fn fits_needs(&self, kind: JobKind, req: &Requirements) -> bool {
        self.kinds.contains(&kind)
            && req.gpus <= self.gpus
            && req.memory_mb <= self.memory_mb
            && req.tags.iter().all(|t| self.tags.contains(t))
    }
}

/// One generation of one attempt: the key is `(job, attempt, seq)`, `seq` numbered 0, 1, 2, …
/// by the worker per attempt.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
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

/// A [`Row`] in its one positional binary form (postcard): every field in declaration order,
/// none skipped, so the bytes need no field names. The wire's postcard row batches and the
/// store's `rows` table both use it; append fields only (an old reader then stops early and
/// an old file still decodes). Borrows the metrics when encoding, owns them when decoded.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RowBin<'a> {
    pub seq: u64,
    pub generation: Option<u64>,
    pub evals: Option<f64>,
    pub best: Option<f64>,
    pub best_ever: Option<f64>,
    pub mean: Option<f64>,
    pub sigma: Option<f64>,
    pub elapsed: Option<f64>,
    #[serde(borrow)]
    pub metrics: std::borrow::Cow<'a, [(String, f64)]>,
}

impl<'a> From<&'a Row> for RowBin<'a> {
    fn from(r: &'a Row) -> Self {
        RowBin {
            seq: r.seq,
            generation: r.generation,
            evals: r.evals,
            best: r.best,
            best_ever: r.best_ever,
            mean: r.mean,
            sigma: r.sigma,
            elapsed: r.elapsed,
            metrics: std::borrow::Cow::Borrowed(&r.metrics),
        }
    }
}

impl From<RowBin<'_>> for Row {
    fn from(r: RowBin<'_>) -> Self {
        Row {
            seq: r.seq,
            generation: r.generation,
            evals: r.evals,
            best: r.best,
            best_ever: r.best_ever,
            mean: r.mean,
            sigma: r.sigma,
            elapsed: r.elapsed,
            metrics: r.metrics.into_owned(),
        }
    }
}

/// A stored row read without copying it: [`RowBin`]'s layout with the metric names borrowed
/// from the stored bytes. Reading a long history into columns (Arrow, CSV) through this skips
/// two allocations per metric per row that a [`Row`] costs.
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct RowRef<'a> {
    pub seq: u64,
    pub generation: Option<u64>,
    pub evals: Option<f64>,
    pub best: Option<f64>,
    pub best_ever: Option<f64>,
    pub mean: Option<f64>,
    pub sigma: Option<f64>,
    pub elapsed: Option<f64>,
    #[serde(borrow)]
    pub metrics: Vec<(&'a str, f64)>,
}

impl<'a> RowRef<'a> {
    /// The value of a metric by name (core or extra), as [`Row::metric`].
    pub fn metric(&self, name: &str) -> Option<f64> {
        core_metric(name, self.generation, self.core()).unwrap_or_else(|| {
            self.metrics
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| *v)
        })
    }

    /// The six float core metrics in [`CORE_METRICS`] order after `generation`.
    pub fn core(&self) -> [Option<f64>; 6] {
        [
            self.evals,
            self.best,
            self.best_ever,
            self.mean,
            self.sigma,
            self.elapsed,
        ]
    }
}

impl<'a> From<&'a Row> for RowRef<'a> {
    fn from(r: &'a Row) -> Self {
        RowRef {
            seq: r.seq,
            generation: r.generation,
            evals: r.evals,
            best: r.best,
            best_ever: r.best_ever,
            mean: r.mean,
            sigma: r.sigma,
            elapsed: r.elapsed,
            metrics: r.metrics.iter().map(|(k, v)| (k.as_str(), *v)).collect(),
        }
    }
}

impl From<RowRef<'_>> for Row {
    fn from(r: RowRef<'_>) -> Self {
        Row {
            seq: r.seq,
            generation: r.generation,
            evals: r.evals,
            best: r.best,
            best_ever: r.best_ever,
            mean: r.mean,
            sigma: r.sigma,
            elapsed: r.elapsed,
            metrics: r.metrics.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }
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

/// A core metric's value by name (`generation`, then the six float ones in [`CORE_METRICS`]
/// order), None when `name` is not a core metric.
fn core_metric(name: &str, generation: Option<u64>, core: [Option<f64>; 6]) -> Option<Option<f64>> {
    if name == "generation" {
        return Some(generation.map(|g| g as f64));
    }
    CORE_METRICS[1..]
        .iter()
        .position(|m| *m == name)
        .map(|i| core[i])
}

impl Row {
    /// The value of a metric by name (core or extra).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let core = [
            self.evals,
            self.best,
            self.best_ever,
            self.mean,
            self.sigma,
            self.elapsed,
        ];
        core_metric(name, self.generation, core).unwrap_or_else(|| {
            self.metrics
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| *v)
        })
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

named_enum! {
    /// A log line's stream.
    pub enum Stream ("stream", "streams") {
        Stdout = "stdout",
        Stderr = "stderr",
        /// A line the worker itself wrote about the job.
        Worker = "worker",
    }
}

named_enum! {
    /// Severity the server assigns to a log line.
    pub enum Level ("level", "levels") {
        Info = "info",
        Warning = "warning",
        Error = "error",
    }
}

impl Level {
    /// Classifies a line by its level word — its first word after any timestamp, brackets and
    /// punctuation stripped (`error: ...`, `ERROR ...`, `[Error]`, `fatal: ...`, `2026-12-06
    /// 10:00:01 WARNING ...`) — and by what errors look like in the languages experiments are
    /// written in: a Python traceback or exception line (`ValueError: ...`), a Rust panic,
    /// `ERROR`/`FATAL` anywhere. `WARN`, `Warning` and `warning:` are warnings.
    pub fn of(text: &str) -> Level {
        if text.contains("Traceback")
            || text.contains("ERROR")
            || text.contains("Error:")
            || text.contains("Exception")
            || text.contains("FATAL")
            || text.contains("panicked")
        {
            return Level::Error;
        }
        if text.contains("WARN") || text.contains("Warning") || text.contains("warning:") {
            return Level::Warning;
        }
        // The level word: the first word that is not a timestamp.
        let is_stamp = |w: &str| {
            w.chars()
                .all(|c| c.is_ascii_digit() || "-:.,/+TZ[]()".contains(c))
        };
        let Some(word) = text.split_whitespace().find(|w| !is_stamp(w)) else {
            return Level::Info;
        };
        let w = word.trim_matches(|c: char| !c.is_ascii_alphanumeric());
        if [
            "error", "err", "fatal", "critical", "crit", "panic", "emerg", "alert",
        ]
        .iter()
        .any(|l| w.eq_ignore_ascii_case(l))
        {
            Level::Error
        } else if ["warning", "warn"]
            .iter()
            .any(|l| w.eq_ignore_ascii_case(l))
        {
            Level::Warning
        } else {
            Level::Info
        }
    }
}

/// One stored log line of a job.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct LogLine {
    /// Position in the job's log, 0-based, over all attempts.
    pub seq: u64,
    pub attempt: u32,
    pub at: Millis,
    pub stream: Stream,
    pub level: Level,
    pub text: String,
    /// How many rows of its attempt came before this line in the experiment's output (as the
    /// worker read them); None for lines stored before workers sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows_before: Option<u64>,
}

/// An entry of the activity log (stored) and of the live event stream.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
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

named_enum! {
    /// Token scopes: `admin` may do everything, `worker` runs jobs, `read` looks, `submit`
    /// reads and submits, and cancels, extends and makes tokens for what its own user owns;
    /// `metrics` may read `/metrics` and nothing else (for a Prometheus server).
    pub enum Scope ("scope", "scopes") {
        Admin = "admin",
        Worker = "worker",
        Read = "read",
        Submit = "submit",
        Metrics = "metrics",
    }
}

impl Scope {
    /// Whether a token of this scope may call a route that needs `need`: admin may call
    /// everything, submit also what read may, every other scope only its own routes.
    pub fn allows(self, need: Scope) -> bool {
        self == Scope::Admin || self == need || (self == Scope::Submit && need == Scope::Read)
    }
}

/// The user the server's admin token stands for, and the owner of everything stored before
/// there were users. It needs no record: without one it has share 1 and no limits.
pub const ADMIN_USER: &str = "admin";

fn admin_user() -> String {
    ADMIN_USER.to_string()
}

/// One entry of the audit log: an admin action, who did it (the token's name) and to what.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// Increasing id.
    pub id: u64,
    pub at: Millis,
    /// The name of the token that acted (`admin` for the server's admin token).
    pub actor: String,
    /// `token_create`, `token_revoke`, `job_cancel`, `worker_pause`, `worker_resume`,
    /// `worker_drain`, `worker_forget`, `gc`, `backup`, `release_promote`, `release_yank`.
    pub action: String,
    /// What it acted on (a job id, a worker or token name, a release tag), if anything.
    #[serde(default)]
    pub target: String,
    /// More, in words.
    #[serde(default)]
    pub detail: String,
}

/// A stored API token (the secret itself is never stored, only its SHA-256).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TokenInfo {
    pub name: String,
    pub scope: Scope,
    pub created_at: Millis,
    /// The user it acts for: what it submits belongs to them. Tokens stored before users
    /// existed were all made by the admin, so they belong to the user `admin`.
    #[serde(default = "admin_user")]
    pub user: String,
}

/// Who acts: the user behind a token, and whether they may act on what others own (an admin
/// token). The queue records `user` as the owner of what it inserts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub user: String,
    pub admin: bool,
}

impl Actor {
    /// The server's admin (embedders and tests that have no users).
    pub fn admin() -> Actor {
        Actor {
            user: ADMIN_USER.to_string(),
            admin: true,
        }
    }

    /// A user without admin rights.
    pub fn user(name: &str) -> Actor {
        Actor {
            user: name.to_string(),
            admin: false,
        }
    }

    /// Whether this actor may change what `owner` owns (cancel it, extend it, revoke it).
    pub fn may_act_on(&self, owner: &str) -> bool {
        self.admin || self.user == owner
    }
}

/// Most a user's share may be (shares are relative weights; the default is 1).
pub const MAX_SHARE: f64 = 1_000_000.0;

/// A user of the farm: a person (or a group) whose jobs share the workers with everyone
/// else's in proportion to `share`, within their limits.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct UserInfo {
    pub name: String,
    /// Relative weight in fair share (default 1): a user with share 2 gets twice the worker
    /// time of a user with share 1 when both have work queued.
    #[serde(default = "default_share")]
    pub share: f64,
    /// Most jobs of this user running at once (None: no limit). Further jobs wait queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_running: Option<u64>,
    /// Most jobs of this user queued at once (None: no limit). A submission that would go past
    /// it is refused whole (429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_queued: Option<u64>,
    #[serde(default)]
    pub created_at: Millis,
}

fn default_share() -> f64 {
    1.0
}

impl UserInfo {
    /// A user with the defaults: share 1, no limits.
    pub fn new(name: &str, created_at: Millis) -> UserInfo {
        UserInfo {
            name: name.to_string(),
            share: 1.0,
            max_running: None,
            max_queued: None,
            created_at,
        }
    }

    /// Checks the name and the numbers (a share is positive and finite, limits positive).
    pub fn validate(&self) -> Result<(), RequestError> {
        validate_name("user name", &self.name)?;
        if !(self.share.is_finite() && self.share > 0.0 && self.share <= MAX_SHARE) {
            return Err(RequestError::Invalid(format!(
                "share {} of user {}: a share is a positive weight up to {MAX_SHARE} (1 is \
                 the default; 2 gets twice the worker time of 1)",
                self.share, self.name
            )));
        }
        for (what, v) in [
            ("max_running", self.max_running),
            ("max_queued", self.max_queued),
        ] {
            if v == Some(0) {
                return Err(RequestError::Invalid(format!(
                    "{what} of user {} is 0: a limit is at least 1 (leave it out for none)",
                    self.name
                )));
            }
        }
        Ok(())
    }
}

// ---- studies ----------------------------------------------------------------------------------

/// One parameter of a study: its values (every value becomes its own jobs on a grid; a
/// sampler picks among them), or a range a sampler draws from (`range`). Exactly one of the
/// two is set.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ParamAxis {
    pub key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<SampleRange>,
}

/// A range a sampler draws a parameter from.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SampleRange {
    /// `uniform(low,high)`: a real number, uniformly.
    Uniform { low: f64, high: f64 },
    /// `loguniform(low,high)`: a positive real number, uniformly in its logarithm.
    LogUniform { low: f64, high: f64 },
    /// `int(low,high)`: an integer from low to high inclusive, uniformly.
    Int { low: i64, high: i64 },
}

named_enum! {
    /// How a study picks its configurations (see `search`).
    #[derive(Default)]
    pub enum Sampler ("sampler", "samplers") {
        /// Every combination of the params' values.
        #[default]
        Grid = "grid",
        /// Independent draws from a seeded generator.
        Random = "random",
        /// A scrambled Sobol sequence: few samples spread evenly.
        Sobol = "sobol",
        /// Model-based (TPE): each configuration chosen from the scores so far.
        Tpe = "tpe",
    }
}

/// How a study picks its configurations beyond a grid: drawn by `sampler` from the params'
/// values and ranges, `samples` of them, reproducibly from `seed`; `tpe` keeps at most
/// `parallel` configurations in flight and proposes the next one as one ends.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Search {
    pub sampler: Sampler,
    pub samples: u64,
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
}

/// An early-stopping rule: the server judges each configuration of a study when its runs
/// cross a rung (a number of evaluations), and stops (`pruned`) the ones that fall behind.
/// See `early_stop` for the rules.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum EarlyStop {
    /// Asynchronous successive halving (Li et al. 2020): rungs at `min_evals × eta^k`
    /// (k < `max_rungs`); a configuration below the top 1/eta of those recorded at a rung stops.
    Asha {
        metric: String,
        min_evals: u64,
        eta: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_rungs: Option<u32>,
    },
    /// The median stopping rule (Golovin et al. 2017): rungs every `every` evaluations from
    /// `min_evals`; a configuration below the median of the others at a rung stops, once at
    /// least `min_configs` others were recorded there.
    Median {
        metric: String,
        min_evals: u64,
        every: u64,
        min_configs: u32,
    },
}

/// The axes of a study in canonical form; every combination of one value per axis is one job
/// (see `study::Definition`).
///
/// Empty `envs` means the template's environment (or the default); empty `seeds` means the
/// template's seed (or none).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Sweep {
    pub methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub envs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seeds: Vec<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ParamAxis>,
}

/// One submission of a study as stored.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StudySubmission {
    pub at: Millis,
    pub template: JobSpec,
    pub sweep: Sweep,
    pub jobs: Vec<JobId>,
    /// How it came about, when not as a sweep submitted by hand: `extend` (`gaia study
    /// extend`: more seeds on the study's grid) or `retry` (`gaia study retry`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// A retry's runs: the job each of `jobs` runs again, in the same order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retries: Vec<JobId>,
    /// Configurations drawn by a sampler instead of a grid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search: Option<Search>,
    /// The early-stopping rule its configurations are judged by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<EarlyStop>,
}

/// One configuration (a cell: method × environment × params) of an adaptive study, as the
/// queue keeps it: its jobs (one per seed), whether it still runs, and its score once ended.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CellRecord {
    /// Order of appearance in the study, 0-based.
    pub id: u32,
    /// The submission (index into the record's `submissions`) it belongs to.
    pub submission: u32,
    /// The params that make it (a sampler's draw, or a grid combination).
    pub params: BTreeMap<String, serde_json::Value>,
    pub jobs: Vec<JobId>,
    pub state: CellState,
    /// Its jobs' mean final metric once every one ended (what `tpe` learns from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The highest rung all its seeds reached (value recorded), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rung: Option<u32>,
}

/// Where a configuration of an adaptive study stands.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum CellState {
    /// Some of its jobs are queued or running.
    Running,
    /// Early stopping stopped it at `rung` (its `value` below the `cut`).
    Pruned { rung: u32, value: f64, cut: f64 },
    /// Every job ended on its own.
    Done,
}

/// What the queue must know of an adaptive study on every row batch and job end, kept apart from
/// the study record so it reads small: its early-stopping rule, and its `tpe` submission.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct StudyRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early_stop: Option<EarlyStop>,
    /// The submission whose sampler is `tpe` (index into the record's `submissions`), and how
    /// many configurations it has proposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpe: Option<(u32, u64)>,
    /// The `study_done` event was recorded (once).
    #[serde(default)]
    pub done: bool,
}

/// A study as stored: its name and every submission (the first one made it).
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StudyRecord {
    pub name: String,
    /// The user who created it: only they (or an admin) may add to it. Studies stored before
    /// users existed belong to the user `admin`.
    #[serde(default = "admin_user")]
    pub owner: String,
    pub created_at: Millis,
    pub submissions: Vec<StudySubmission>,
}

#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn limits_parse_units_and_refuse_what_they_do_not_know() {
        let l = Limits::parse("mem=8G, time=2h,files=1024,output=512M").unwrap();
        assert_eq!(
            l,
            Limits {
                memory_bytes: Some(8 << 30),
                cpu_secs: Some(7200),
                open_files: Some(1024),
                output_bytes: Some(512 << 20),
            }
        );
        assert_eq!(l.describe(), "mem=8G,cpu=2h,files=1024,output=512M");
        assert_eq!(Limits::parse(&l.describe()).unwrap(), l);
        assert_eq!(Limits::parse("cpu=90").unwrap().cpu_secs, Some(90));
        assert_eq!(
            Limits::parse("mem=1.5GiB").unwrap().memory_bytes,
            Some(3 << 29)
        );
        assert_eq!(Limits::parse("").unwrap(), Limits::default());
        for bad in [
            "ram=1G",
            "mem",
            "mem=0",
            "mem=-1G",
            "mem=lots",
            "cpu=1h,time=2h",
            "mem=1e30T",
        ] {
            let e = Limits::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{bad}: {e}");
        }
        let max = Limits::parse("mem=4G,cpu=1h").unwrap();
        let got = Limits::parse("mem=16G,files=10").unwrap().within(&max);
        assert_eq!(got.describe(), "mem=4G,cpu=1h,files=10");
    }

    #[test]
    fn limits_ride_on_the_job_spec_and_old_specs_read_without_them() {
        let spec: JobSpec =
            serde_json::from_str(r#"{"kind":"upper","input":"x","limits":{"cpu_secs":5}}"#)
                .unwrap();
        let typed = spec.normalize().unwrap();
        assert_eq!(typed.limits.cpu_secs, Some(5));
        let back = serde_json::to_value(&typed).unwrap();
        assert_eq!(back["limits"], serde_json::json!({"cpu_secs": 5}));
        let old: Spec = serde_json::from_str(r#"{"kind":"upper","input":"x"}"#).unwrap();
        assert!(old.limits.is_empty());
        assert!(serde_json::to_value(&old).unwrap().get("limits").is_none());
    }
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
    fn log_levels_come_from_the_level_word() {
        for e in [
            "error: could not open file",
            "ERROR loading model",
            "[Error] bad",
            "fatal: not a git repository",
            "2026-12-06 10:00:01 CRITICAL disk full",
            "ValueError: math domain error",
            "Traceback (most recent call last):",
            "thread 'main' panicked at src/main.rs:3:5",
        ] {
            assert_eq!(Level::of(e), Level::Error, "{e:?}");
        }
        for w in [
            "warning: deprecated",
            "WARN slow",
            "[warn] x",
            "UserWarning: y",
        ] {
            assert_eq!(Level::of(w), Level::Warning, "{w:?}");
        }
        for i in [
            "Gen 3 | Best: 1.0",
            "0 errors so far",
            "mean squared error is falling",
            "evaluating the error surface",
        ] {
            assert_eq!(Level::of(i), Level::Info, "{i:?}");
        }
    }

    #[test]
    fn names_with_control_or_bidi_characters_are_refused() {
        // A name that displays as another (U+202E reverses what follows), or hides a NUL.
        for bad in [
            "job\u{202E}gnp.exe",
            "nul\0byte",
            "esc\u{1b}[31m",
            "mark\u{200F}",
        ] {
            let mut spec = JobSpec::experiment("cma_es", 100);
            spec.name = Some(bad.into());
            let e = spec.normalize().unwrap_err().to_string();
            assert!(e.contains("control character U+"), "{bad:?}: {e}");
            let mut spec = JobSpec::experiment("cma_es", 100);
            spec.params.insert(bad.into(), serde_json::json!(1));
            assert!(spec.normalize().is_err(), "param key {bad:?} accepted");
            let mut spec = JobSpec::experiment("cma_es", 100);
            spec.params
                .insert("opt".into(), serde_json::json!({"nested": [bad]}));
            assert!(spec.normalize().is_err(), "param value {bad:?} accepted");
        }
        // Ordinary text, tabs and other scripts are fine.
        let mut spec = JobSpec::experiment("cma_es", 100);
        spec.name = Some("Lauf\tmit σ = 0.5 — 日本語".into());
        spec.params.insert("note".into(), serde_json::json!("ok"));
        spec.normalize().unwrap();
        assert!(validate_file_name("result.csv").is_ok());
        assert!(validate_file_name("../x").is_err());
        assert!(validate_file_name(".hidden").is_err());
    }

    #[test]
    fn named_enums_spell_the_same_for_users_and_on_the_wire() {
        fn check<T>(all: &[T])
        where
            T: Copy + std::fmt::Display + std::str::FromStr + serde::Serialize + PartialEq,
            T: std::fmt::Debug,
        {
            for &v in all {
                let name = v.to_string();
                assert_eq!(serde_json::to_value(v).unwrap(), serde_json::json!(name));
                assert!(name.parse::<T>().ok() == Some(v), "{name}");
            }
        }
        check(&JobKind::ALL);
        check(&JobState::ALL);
        check(&WorkerState::ALL);
        check(&Scope::ALL);
        check(&Stream::ALL);
        check(&Level::ALL);
        let e = "fast".parse::<JobState>().unwrap_err().to_string();
        assert!(
            e.contains("unknown job state \"fast\"") && e.contains("timed_out"),
            "{e}"
        );
    }

    #[test]
    fn experiment_defaults_and_errors() {
        let mut spec = JobSpec::experiment("cma_es", 100);
        spec.env = None;
        let spec = spec.normalize().unwrap();
        assert_eq!(spec.env(), Some(DEFAULT_ENV));
        // The default budget, applied once, held in the type.
        let mut no_budget = JobSpec::experiment("cma_es", 1);
        no_budget.max_evals = None;
        let typed = no_budget.normalize().unwrap();
        assert_eq!(typed.experiment().unwrap().max_evals, DEFAULT_MAX_EVALS);
        // Its JSON is the spec it normalised to: the wire and the store see what they did.
        let json = serde_json::to_value(&typed).unwrap();
        assert_eq!(json["max_evals"], serde_json::json!(DEFAULT_MAX_EVALS));
        assert_eq!(json["env"], serde_json::json!(DEFAULT_ENV));
        assert_eq!(serde_json::from_value::<Spec>(json).unwrap(), typed);
        let zero = JobSpec::experiment("cma_es", 0);
        assert!(
            zero.normalize()
                .unwrap_err()
                .to_string()
                .contains("max_evals")
        );
        let nomethod = JobSpec {
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
        let wait = JobSpec::builtin(JobKind::Wait, "abc");
        assert!(wait.normalize().is_err());
        // Method and environment are names on every kind (a study's ZIP has folders of them).
        let mut cmd = JobSpec {
            kind: JobKind::Command,
            argv: vec!["true".into()],
            method: Some("../../../tmp/evil".into()),
            max_attempts: 1,
            ..JobSpec::default()
        };
        assert!(
            cmd.clone()
                .normalize()
                .unwrap_err()
                .to_string()
                .contains("method")
        );
        cmd.method = Some("sweep".into());
        cmd.env = Some("a/b".into());
        assert!(
            cmd.clone()
                .normalize()
                .unwrap_err()
                .to_string()
                .contains("environment")
        );
        cmd.env = Some("local".into());
        let typed = cmd.clone().normalize().unwrap();
        assert_eq!(
            (typed.method(), typed.env()),
            (Some("sweep"), Some("local"))
        );
        assert_eq!(JobSpec::from(typed), cmd, "labels survive the round trip");
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
            max_job_secs: None,
        };
        let mut spec = Spec::from(JobSpec::builtin(JobKind::Hash, "x"));
        assert!(caps.fits(&spec));
        spec.requirements.gpus = 2;
        assert!(!caps.fits(&spec));
        spec.requirements.gpus = 1;
        spec.requirements.tags = vec!["lab".into(), "cuda".into()];
        assert!(!caps.fits(&spec));
        assert!(!caps.fits(&Spec::from(JobSpec::builtin(JobKind::Upper, "x"))));
    }
}
