"""The server's wire types, generated from its OpenAPI document (docs/openapi.json) by
python/scripts/gen_models.py. Do not edit: run the script after the server's types change (a
test fails until the two agree).

Objects are TypedDicts: the client hands the server's JSON answers back as they are, and mypy
knows their fields. Fields the server may leave out are ``NotRequired``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Tuple, TypedDict, Union

from typing_extensions import NotRequired

OPENAPI_VERSION = "0.1.0"
"""The server version whose document these types come from."""
PROTOCOL_VERSION = 1
"""The wire protocol version the client speaks (the x-gaia-protocol header)."""


class Ack(TypedDict):
    """An answer that only says the request was taken (`POST /api/v1/workers/{name}/report`)."""
    ok: bool


class Assignment(TypedDict):
    """A job handed to a worker with its attempt and lease."""
    attempt: int
    job: Job
    lease: int


class Attempt(TypedDict):
    """One attempt of a job: who ran it and how it ended."""
    attempt: int
    ended_at: NotRequired[Optional[int]]
    outcome: NotRequired[Optional[str]]
    """How the attempt ended (`succeeded`, `lease expired`, ...), once it has."""
    started_at: int
    worker: str
    worker_name: NotRequired[str]
    worker_started_us: NotRequired[Optional[int]]
    """When its code started on the worker (µs since the Unix epoch, the worker's clock), as the worker reported with its end; `started_at` is when the server leased it."""


class AuditEntry(TypedDict):
    """One entry of the audit log: an admin action, who did it (the token's name) and to what."""
    action: str
    """`token_create`, `token_revoke`, `job_cancel`, `worker_pause`, `worker_resume`, `worker_drain`, `worker_forget`, `gc`, `backup`, `release_promote`, `release_yank`."""
    actor: str
    """The name of the token that acted (`admin` for the server's admin token)."""
    at: int
    detail: NotRequired[str]
    """More, in words."""
    id: int
    """Increasing id."""
    target: NotRequired[str]
    """What it acted on (a job id, a worker or token name, a release tag), if anything."""


class AuditList(TypedDict):
    """`GET /api/v1/audit` answer, oldest first."""
    entries: List[AuditEntry]


class CancelResponse(TypedDict):
    """`POST /api/v1/jobs/{id}/cancel` answer."""
    job: Job


class Capabilities(TypedDict):
    """What one worker slot offers when it asks for work."""
    gpus: NotRequired[int]
    kinds: List[JobKind]
    max_job_secs: NotRequired[Optional[float]]
    """The longest a job may still run on this slot, in seconds: its worker's allocation ends (a batch scheduler's time limit, `gaia work --deadline`). The queue skips jobs expected to take longer (from their study's measured evals/s, see [`crate::cluster::fit`]); None: no limit."""
    memory_mb: NotRequired[int]
    tags: NotRequired[List[str]]


class CellResult(TypedDict):
    """One method on one environment."""
    env: str
    left_out: NotRequired[List[LeftOut]]
    """Runs that ended without a score: failed, lost, cancelled, timed out, or no finite score."""
    pending: int
    """Runs queued or running."""
    runs: int
    """Runs with a score."""


class ClaimRequest(TypedDict):
    """`POST /api/v1/claim` request: one slot asks for a job, waiting up to `wait_ms`."""
    capabilities: Capabilities
    finished: NotRequired[Optional[Finished]]
    """The job this slot just ended, reported with the request for the next one (one round trip per job instead of two). Stored before the claim is looked at."""
    wait_ms: NotRequired[int]
    """How long to wait for a fitting job: 30 s when absent, 0 answers at once; the server caps it at 60 s, and answers a wait of a second or more that finds no job up to a fifth early (spread per claim, so polls opened together do not all end together)."""
    watch_study: NotRequired[Optional[str]]
    """A study this worker stops for (`gaia work --exit-when-study-done NAME`): an answer without a job says whether it is done."""
    worker_id: str


class ClaimResponse(TypedDict):
    """`POST /api/v1/claim` answer; `assignment` is absent when the wait ran out."""
    assignment: NotRequired[Optional[Assignment]]
    finished_error: NotRequired[Optional[str]]
    """Why the `finished` report was refused (a stale lease), if it was."""
    study_done: NotRequired[bool]
    """The claim's `watch_study` exists and every job of it has ended (none queued or running, no proposal to come). Only answered when no job is assigned."""


class Comparison(TypedDict):
    """`GET /api/v1/studies/{name}/compare` answer: the methods of one or more studies compared over their environments, every number with the definition it was computed by."""
    by_env: NotRequired[List[EnvResult]]
    """Per environment, the same aggregates over that environment's runs alone (`by=env`)."""
    confidence: float
    """Coverage of every interval (0.95)."""
    curves: NotRequired[Optional[CurveSet]]
    """Sample-efficiency curves (`curves=true`)."""
    envs: List[str]
    """The environments the aggregates are over (those with scored runs of every method)."""
    excluded_envs: NotRequired[List[ExcludedEnv]]
    """Environments left out of the aggregates, and why."""
    improvement: NotRequired[List[Improvement]]
    """P(X > Y) for every pair of methods (X listed before Y)."""
    methods: List[MethodResult]
    """One entry per method (× swept params), in the order they first appear."""
    normalisation: List[EnvNorm]
    """How each environment's scores were normalised."""
    notes: List[str]
    """What a reader should know (provisional, environments left out, fallbacks used)."""
    profile: NotRequired[Optional[Profile]]
    """Performance profiles (`profile=true`)."""
    provisional: bool
    """True while a study has queued or running jobs: the numbers will change."""
    resamples: int
    """Bootstrap resamples per interval."""
    score: ScoreInfo
    """How a run's score was taken."""
    seed: int
    """The seed of the resamples."""
    seeds_needed: NotRequired[Optional[SeedsNeededResult]]
    """Seeds each cell needs for a requested interval half-width (`seeds_needed=...`)."""
    studies: List[str]
    """The studies compared (the first is the one in the path)."""
    target: NotRequired[Optional[TargetResult]]
    """The fixed-target view (`target=...`)."""


class CompleteRequest(TypedDict):
    """`POST /api/v1/jobs/{id}/complete` request."""
    attempt: int
    duration_ms: NotRequired[int]
    error: NotRequired[Optional[str]]
    exit_code: NotRequired[Optional[int]]
    lease: int
    outcome: Outcome
    result: NotRequired[Any]
    started_us: NotRequired[Optional[int]]
    """When the job's code started on the worker, in microseconds since the Unix epoch by the worker's clock: a built-in's first instruction, or the moment its process was running (exec done). Kept on the attempt (`worker_started_us`): claim → start is what the worker took to begin (a Python environment to prepare, a slow disk)."""


class ConfigReport(TypedDict):
    """One configuration of an adaptive study as `gaia study` shows it."""
    best: NotRequired[Optional[float]]
    """The best best-ever of its jobs so far."""
    id: int
    jobs: List[int]
    params: Dict[str, Any]
    pruned: NotRequired[Optional[str]]
    """Why it was pruned, with the rung, its value and the cut."""
    rung: NotRequired[Optional[int]]
    """The highest rung its seeds all reached (and were judged at)."""
    score: NotRequired[Optional[float]]
    """Its jobs' mean final value, once every one ended."""
    state: str
    """`running`, `pruned` or `done`."""


class CurveSet(TypedDict):
    """Sample-efficiency curves: the IQM of the normalised best-ever at each point of a common evaluations grid."""
    evals: List[float]
    lines: List[Line]


class EnvMethod(TypedDict):
    """One method's aggregates on one environment."""
    iqm: Interval
    mean: Interval
    median: Interval
    method: str
    optimality_gap: Interval
    runs: int


class EnvNorm(TypedDict):
    """How one environment's scores were normalised: (score − low) / (high − low)."""
    env: str
    high: float
    low: float
    solved: NotRequired[Optional[float]]
    """The raw score the experiments call solved, where known."""
    source: str
    """`shipped` (random and solved scores the experiments declare), `override` (`norm=env=low:high`) or `min-max` (lowest and highest score of the study's runs)."""


class EnvResult(TypedDict):
    """The aggregates of one environment."""
    env: str
    methods: List[EnvMethod]


class EnvTarget(TypedDict):
    """One environment's raw target."""
    env: str
    target: float


class ErrorBody(TypedDict):
    """The body of every error answer: `{"error": "..."}`."""
    error: str


class Event(TypedDict):
    """An entry of the activity log (stored) and of the live event stream."""
    at: int
    id: int
    """Increasing id; SSE clients resume after it with `Last-Event-ID`."""
    job: NotRequired[Optional[int]]
    kind: str
    """`job_submitted`, `job_started`, `job_succeeded`, `job_failed`, `job_requeued`, `job_lost`, `job_cancelled`, `job_timed_out`, `worker_joined`, `worker_lost`, ..."""
    message: str
    worker: NotRequired[Optional[str]]


class EventList(TypedDict):
    """`GET /api/v1/events` (as JSON, without SSE) answer."""
    events: List[Event]


class ExcludedEnv(TypedDict):
    """An environment left out of the aggregates."""
    env: str
    reason: str


class FileInfo(TypedDict):
    """A result file a job uploaded."""
    name: str
    sha256: str
    size: int


class FileList(TypedDict):
    """`GET /api/v1/jobs/{id}/files` answer."""
    files: List[FileInfo]


class Finished(TypedDict):
    """An attempt's end, carried by a claim."""
    job: int
    report: CompleteRequest


class GcReport(TypedDict):
    """What a gc did (or, dry, would do)."""
    batches: int
    """Write transactions the deletes took (each at most [`GC_BATCH`] entries)."""
    compacted: NotRequired[bool]
    """Whether the file was compacted (offline only)."""
    dry_run: bool
    """Nothing was deleted: the counts say what would have been."""
    file_bytes_after: int
    file_bytes_before: int
    """The database file before and after, in bytes. redb reuses the pages freed for new data, so the file stops growing; it shrinks only by compaction (`gaia gc --offline`)."""
    log_jobs: int
    """Jobs whose log lines were (or would be) deleted."""
    log_lines_deleted: int
    """Log lines deleted (or that would be)."""
    row_jobs: int
    """Jobs whose rows were (or would be) deleted."""
    rows_deleted: int
    """Rows deleted (or that would be)."""
    took_ms: int
    """Milliseconds the gc took."""


class GcRequest(TypedDict):
    """What a gc deletes: the rows and the log lines of jobs that ended before a cutoff. Job records (state, progress, result, attempts) always stay."""
    dry_run: NotRequired[bool]
    """Count what would go, delete nothing."""
    logs_older_than_secs: NotRequired[Optional[int]]
    """Delete the log lines of jobs that ended more than this many seconds ago."""
    rows_older_than_secs: NotRequired[Optional[int]]
    """Delete the rows of jobs that ended more than this many seconds ago."""


class Gpu(TypedDict):
    """One GPU of a worker."""
    driver: NotRequired[str]
    index: int
    memory_mb: NotRequired[int]
    name: str


class GpuPoint(TypedDict):
    """One GPU's readings averaged over a point's step (None: the driver gave none in it)."""
    memory_total_mb: NotRequired[Optional[int]]
    """MiB on the card."""
    memory_used_mb: NotRequired[Optional[int]]
    """MiB in use."""
    temperature_c: NotRequired[Optional[float]]
    """Degrees Celsius."""
    utilization: NotRequired[Optional[float]]
    """Percent busy."""


class GpuUsage(TypedDict):
    """One GPU's readings at a heartbeat. A value the driver does not give (`[N/A]` on a MIG instance, a GPU in error) is None, never a made-up 0."""
    error: NotRequired[Optional[str]]
    """What the driver said instead of readings (`GPU requires reset`, `Unknown Error`)."""
    index: int
    memory_total_mb: NotRequired[Optional[int]]
    memory_used_mb: NotRequired[Optional[int]]
    temperature_c: NotRequired[Optional[float]]
    utilization: NotRequired[Optional[float]]


class Hardware(TypedDict):
    """A worker's machine."""
    arch: NotRequired[str]
    cpu_cores: NotRequired[int]
    cpu_model: NotRequired[str]
    gpus: NotRequired[List[Gpu]]
    hostname: NotRequired[str]
    memory_mb: NotRequired[int]
    os: NotRequired[str]


class Health(TypedDict):
    """`GET /healthz` answer (also with 503, `ok: false`, once the store can no longer write)."""
    ok: bool
    protocol: int
    version: str


class HeartbeatRequest(TypedDict):
    """`POST /api/v1/workers/{id}/heartbeat` request."""
    draining: NotRequired[bool]
    """The worker is finishing its jobs and will claim no more."""
    running: NotRequired[List[LeaseRef]]
    usage: NotRequired[Usage]


class HeartbeatResponse(TypedDict):
    """`POST /api/v1/workers/{id}/heartbeat` answer."""
    cancel: List[int]
    """Jobs the worker must cancel."""
    hold: NotRequired[Optional[Hold]]
    """Set while the worker is paused, draining or quarantined: it claims no new jobs (and with a drain's `exit`, ends once its running jobs are done)."""
    latest_version: NotRequired[Optional[str]]
    """The promoted release version, if any."""
    stale: List[int]
    """Jobs whose lease is no longer this worker's: stop them and report nothing more."""


class Hold(TypedDict):
    """A standing order that keeps a worker from claiming new jobs. Kept with the worker in the store, so it outlives a server restart and the worker's own restarts; `resume` lifts it (and so does a drain with `exit` once the worker has left)."""
    by: NotRequired[str]
    """The token name of the admin who set it, or `server` for a quarantine."""
    exit: NotRequired[bool]
    """Drain only: the worker process ends (exit status 0) once its jobs are done."""
    kind: HoldKind
    reason: NotRequired[str]
    """Why, in words (an admin's note, or what the failed jobs said)."""
    since: int


class HoldRequest(TypedDict):
    """`POST /api/v1/workers/{name}/pause` and `/drain` request (an empty body is all defaults)."""
    exit: NotRequired[bool]
    """Drain only: the worker process ends (status 0) once its running jobs are done."""
    reason: NotRequired[Optional[str]]
    """Why, for whoever looks at the worker later."""


class Improvement(TypedDict):
    """The probability that a run of X scores higher than a run of Y."""
    estimate: NotRequired[Optional[float]]
    """`null` on the wire where it is not a finite number (an infinite running time, a curve point no run reached), as the bounds."""
    high: NotRequired[Optional[float]]
    low: NotRequired[Optional[float]]
    x: str
    y: str


class Interval(TypedDict):
    """A point estimate and its confidence interval."""
    estimate: NotRequired[Optional[float]]
    """`null` on the wire where it is not a finite number (an infinite running time, a curve point no run reached), as the bounds."""
    high: NotRequired[Optional[float]]
    low: NotRequired[Optional[float]]


class Job(TypedDict):
    """A job as the server keeps it."""
    attempt: int
    """The current (or last) attempt, 1-based; 0 while never claimed."""
    attempts: NotRequired[List[Attempt]]
    cancel_requested: NotRequired[bool]
    """Set by a cancel of a running job; the worker learns it at its next call."""
    error: NotRequired[Optional[str]]
    """Why the job failed (the tail of stderr, a timeout, ...)."""
    errors: NotRequired[int]
    exit_code: NotRequired[Optional[int]]
    """The process's exit code, when there was a process."""
    files: NotRequired[List[FileInfo]]
    finished_at: NotRequired[Optional[int]]
    id: int
    lease: NotRequired[Optional[int]]
    """The lease of the current attempt while running; kept when the attempt ends with a report, so a retried report of it is recognised and answered the same way."""
    log_dropped: NotRequired[int]
    log_lines: NotRequired[int]
    """Log lines kept / dropped over the bound, warnings and errors seen."""
    logs_deleted_at: NotRequired[Optional[int]]
    """When `gc` deleted this job's log lines."""
    owner: NotRequired[str]
    """The user who submitted it (the user behind the token, not the token, so revoking a token orphans nothing). Jobs stored before users existed belong to the user `admin`."""
    progress: NotRequired[Progress]
    prune_reason: NotRequired[Optional[str]]
    """Why its study's early stopping stops it (with `cancel_requested` while it runs): the attempt then ends `pruned`, not `cancelled`."""
    result: NotRequired[Any]
    """A built-in job's result, or an experiment's `@gaia {"final": ...}`."""
    rows_deleted_at: NotRequired[Optional[int]]
    """When `gc` deleted this job's rows (its record and progress stay)."""
    spec: JobSpec
    started_at: NotRequired[Optional[int]]
    state: JobState
    submitted_at: int
    warnings: NotRequired[int]
    worker: NotRequired[Optional[str]]
    """The worker id of the current (or last) attempt."""
    worker_name: NotRequired[Optional[str]]


class JobList(TypedDict):
    """`GET /api/v1/jobs` answer: newest first."""
    jobs: List[Job]
    next_before: NotRequired[Optional[int]]
    """Pass as `before` to get the next page; absent on the last page."""
    total: int
    """Jobs matching the filter, over all pages."""


class JobSpec(TypedDict):
    """What the submitter asks for."""
    argv: NotRequired[List[str]]
    """Command: the argv to run."""
    env: NotRequired[Optional[str]]
    """Experiment: the environment (`CartPole-v1`, `sphere`, ...)."""
    input: NotRequired[Optional[str]]
    """Built-in kinds: the input."""
    kind: NotRequired[JobKind]
    limits: NotRequired[Limits]
    """Resource limits of the job's processes (`gaia submit --limit mem=8G,cpu=2h`), each bounded by the running worker's maximum (`gaia work --max-limit`)."""
    max_attempts: NotRequired[int]
    """Attempts before a job whose workers vanish is `lost`."""
    max_evals: NotRequired[Optional[int]]
    """Experiment: the evaluation budget."""
    method: NotRequired[Optional[str]]
    """Experiment: the optimisation method (`cma_es`, `openai_es`, ...)."""
    name: NotRequired[Optional[str]]
    """Optional free-form label shown in lists."""
    params: NotRequired[Dict[str, Any]]
    """Experiment: method parameters, passed as `GAIA_JOB_PARAMS`."""
    priority: NotRequired[int]
    """Higher runs first; FIFO within a priority."""
    requirements: NotRequired[Requirements]
    seed: NotRequired[Optional[int]]
    """Experiment: the seed."""
    study: NotRequired[Optional[str]]
    """The study this job belongs to."""
    timeout_secs: NotRequired[Optional[int]]
    """Kill the job (`timed_out`) after this many seconds."""


class LeaseRef(TypedDict):
    """A running job a worker reports, with the attempt and lease it holds."""
    attempt: int
    job: int
    lease: int


class LeftOut(TypedDict):
    """A run left out of the comparison."""
    job: int
    seed: NotRequired[Optional[int]]
    state: JobState
    why: str
    """Why (the state, or "no finite score")."""


class Limits(TypedDict):
    """Resource limits of one job's processes. Unset: the worker's maximum applies (if it has one). A job over a limit ends `failed` with the limit named."""
    cpu_secs: NotRequired[Optional[int]]
    """CPU time of each process, seconds (`RLIMIT_CPU`; the wall clock is `timeout_secs`)."""
    memory_bytes: NotRequired[Optional[int]]
    """Memory of the whole job in bytes: a cgroup v2 `memory.max` where the worker may create cgroups, else each process's address space (`RLIMIT_AS`)."""
    open_files: NotRequired[Optional[int]]
    """Open files of each process (`RLIMIT_NOFILE`)."""
    output_bytes: NotRequired[Optional[int]]
    """Output size in bytes: the largest file a process may write (`RLIMIT_FSIZE`), and the total of the job's result files."""


class Line(TypedDict):
    """One method's curve."""
    method: str
    points: List[Interval]


class LogAck(TypedDict):
    """`POST /api/v1/jobs/{id}/logs` answer."""
    cancel: bool


class LogBatch(TypedDict):
    """`POST /api/v1/jobs/{id}/logs` request."""
    attempt: int
    first: int
    """Position of the first line in this attempt's output (so retries are idempotent)."""
    lease: int
    lines: List[LogInput]


class LogInput(TypedDict):
    """One log line as a worker sends it."""
    at: NotRequired[int]
    """When the line was printed."""
    rows_before: NotRequired[Optional[int]]
    """How many rows of this attempt the worker had read when it read this line: where the line sits among the generation lines (`gaia logs` interleaves by it). Absent from older workers."""
    stream: Stream
    text: str


class LogLine(TypedDict):
    """One stored log line of a job."""
    at: int
    attempt: int
    level: Level
    rows_before: NotRequired[Optional[int]]
    """How many rows of its attempt came before this line in the experiment's output (as the worker read them); None for lines stored before workers sent it."""
    seq: int
    """Position in the job's log, 0-based, over all attempts."""
    stream: Stream
    text: str


class LogsEvent(TypedDict):
    """The data of a `logs` event of `GET /api/v1/events` (SSE): log lines just stored for a job."""
    job: int
    lines: List[LogLine]


class LogsResponse(TypedDict):
    """`GET /api/v1/jobs/{id}/logs` answer."""
    done: bool
    """The job has ended: no more lines will come."""
    lines: List[LogLine]
    next: int
    """Pass as `after` to get the lines after these."""


class MeanStd(TypedDict):
    """Mean, spread and best of a set of values (typically one score per seed)."""
    max: float
    """The best (highest) value."""
    mean: float
    n: int
    std: NotRequired[Optional[float]]
    """Sample standard deviation (n − 1); None for a single value."""


class MethodResult(TypedDict):
    """One method's result."""
    cells: List[CellResult]
    """Per environment: runs, runs still to come, runs left out."""
    iqm: NotRequired[Optional[Interval]]
    """None when the method has no scored run in every aggregated environment."""
    mean: NotRequired[Optional[Interval]]
    median: NotRequired[Optional[Interval]]
    method: str
    """The label that names it in tables and figures: the method, its swept params (` pop_size=32`), and its study (`study/`) when methods of several studies share a name."""
    name: str
    """The method alone."""
    optimality_gap: NotRequired[Optional[Interval]]
    params: NotRequired[Dict[str, Any]]
    runs: int
    """Scored runs in the aggregated environments."""
    scores: Dict[str, List[float]]
    """The normalised per-run scores the aggregates came from, by environment (every environment with scored runs, also those left out of the aggregates)."""
    study: str
    """The study it comes from."""


class ParamAxis(TypedDict):
    """One parameter of a study: its values (every value becomes its own jobs on a grid; a sampler picks among them), or a range a sampler draws from (`range`). Exactly one of the two is set."""
    key: str
    range: NotRequired[Optional[SampleRange]]
    values: NotRequired[List[Any]]


class Point(TypedDict):
    """One point of a worker's telemetry: the means over `[at, at + step)`."""
    at: int
    """Start of the step, ms since the epoch."""
    cpu_percent: float
    """Percent of all cores busy."""
    gpus: List[GpuPoint]
    """Per GPU, in the order the worker reports them."""
    memory_percent: float
    """Percent of the memory in use."""


class Profile(TypedDict):
    """Performance profiles: per method, the fraction of runs with a normalised score above τ."""
    lines: List[Line]
    """One line per method, one interval per τ."""
    taus: List[float]


class Progress(TypedDict):
    """The latest progress of a running or finished job, from its newest rows."""
    best: NotRequired[Optional[float]]
    best_ever: NotRequired[Optional[float]]
    elapsed: NotRequired[Optional[float]]
    """Seconds the experiment reported since it started."""
    eta_bound: NotRequired[bool]
    """`eta_secs` is an upper bound: it assumes the whole budget, and the experiment may stop early (solved). Shown as "≤"."""
    eta_secs: NotRequired[Optional[float]]
    """Seconds this attempt still needs at its measured speed (`study::job_eta`): from the progress the experiment reports, else from its budget."""
    evals: NotRequired[Optional[float]]
    fraction: NotRequired[Optional[float]]
    """0..1, from `@gaia {"progress": ...}` or evals / max_evals."""
    fraction_reported: NotRequired[bool]
    """True once the experiment reported its own progress (`@gaia {"progress": ...}`): then `fraction` is its word, not evals / budget."""
    generation: NotRequired[Optional[int]]
    mean: NotRequired[Optional[float]]
    metrics: NotRequired[Optional[List[str]]]
    """The names of the further metrics (beyond the core ones) that the current attempt's rows carry, sorted: the columns of its table, known without reading its rows. Absent for an attempt whose first rows were stored before GAIA kept this list."""
    rows: NotRequired[int]
    """Rows stored for the current attempt."""
    sigma: NotRequired[Optional[float]]
    status: NotRequired[Optional[str]]
    """The last `@gaia {"status": ...}` message."""


class QueueDemand(TypedDict):
    """`GET /api/v1/queue/demand` answer: what a scheduler's autoscaler (`gaia slurm autoscale`, a KEDA `metrics-api` trigger) starts workers for."""
    fitting: int
    """Queued jobs a worker with the asked capabilities could run."""
    queued: int
    """Every queued job."""
    running: int
    """Jobs running now."""
    running_fitting: NotRequired[int]
    """Running jobs such a worker could run (some may run on it)."""
    slots_wanted: NotRequired[int]
    """`fitting + running_fitting`: worker slots a pool of such workers has work for, now and queued. An autoscaler that scales on it keeps busy workers (scaling on the queued jobs alone would scale a busy pool down to nothing)."""


class RegisterRequest(TypedDict):
    """`POST /api/v1/workers/register` request."""
    hardware: NotRequired[Hardware]
    kinds: List[JobKind]
    name: str
    slots: int
    tags: NotRequired[List[str]]
    version: str
    worker_id: NotRequired[Optional[str]]
    """The id this worker had before (from its state file), to come back as the same worker."""


class RegisterResponse(TypedDict):
    """`POST /api/v1/workers/register` answer."""
    heartbeat_ms: int
    """How often the worker should heartbeat."""
    lease_timeout_ms: int
    """A lease not renewed for this long expires."""
    server_version: str
    worker_id: str


class Release(TypedDict):
    """A release and its files."""
    created_at: int
    files: List[ReleaseFile]
    promoted_seq: NotRequired[Optional[int]]
    """Order of promotion; the non-yanked release with the highest is the promoted one."""
    tag: str
    yanked: NotRequired[bool]


class ReleaseFile(TypedDict):
    """One file of a release."""
    name: str
    platform: str
    """`linux-x86_64`, `linux-aarch64`, `windows-x86_64`, `macos-aarch64`, ..., or `any`."""
    sha256: str
    signature: NotRequired[Optional[str]]
    """ed25519 signature (hex) of [`signed_message`], if the publisher signed."""
    size: int
    uploaded_at: int
    uploaded_by: str


class ReleaseList(TypedDict):
    """`GET /api/v1/releases` answer, newest first."""
    promoted: NotRequired[Optional[str]]
    releases: List[ReleaseSummary]


class ReleaseSummary(TypedDict):
    """A release in `GET /api/v1/releases`, with how many workers run it."""
    created_at: int
    files: List[ReleaseFile]
    promoted: bool
    promoted_seq: NotRequired[Optional[int]]
    """Order of promotion; the non-yanked release with the highest is the promoted one."""
    tag: str
    workers: int
    yanked: NotRequired[bool]


class RequeueRequest(TypedDict):
    """`POST /api/v1/jobs/{id}/requeue` request: a worker that shuts down gives a job back."""
    attempt: int
    lease: int
    preempted: NotRequired[bool]
    """The worker's scheduler took its allocation away (SIGUSR1, a time limit): the attempt ends `preempted` and the job is queued again at once. Like any give-back it spends none of the job's attempts; a job given back more than `QueueConfig::max_give_backs` times ends `lost`."""
    reason: NotRequired[Optional[str]]


class Requirements(TypedDict):
    """What a worker slot must offer to run a job."""
    gpus: NotRequired[int]
    """GPUs the job needs on one worker slot."""
    memory_mb: NotRequired[int]
    """Memory (MiB) the worker must have."""
    tags: NotRequired[List[str]]
    """Tags the worker must all carry (e.g. `cuda12`, `lab-a`)."""


class Revoked(TypedDict):
    """`DELETE /api/v1/tokens/{name}` answer."""
    revoked: str
    """The name of the token revoked."""


class Row(TypedDict):
    """One generation of one attempt: the key is `(job, attempt, seq)`, `seq` numbered 0, 1, 2, … by the worker per attempt."""
    best: NotRequired[Optional[float]]
    best_ever: NotRequired[Optional[float]]
    elapsed: NotRequired[Optional[float]]
    """Seconds since the experiment started."""
    evals: NotRequired[Optional[float]]
    generation: NotRequired[Optional[int]]
    mean: NotRequired[Optional[float]]
    metrics: NotRequired[List[Tuple[str, float]]]
    """Further named metrics, in name order."""
    seq: int
    sigma: NotRequired[Optional[float]]


class RowAck(TypedDict):
    """`POST /api/v1/jobs/{id}/rows` answer."""
    cancel: bool
    """The job was cancelled: stop it."""
    skipped: int
    """Rows that were already stored (a retried batch)."""
    stored: int
    """Rows newly stored."""


class RowBatch(TypedDict):
    """`POST /api/v1/jobs/{id}/rows` request (JSON or postcard)."""
    attempt: int
    fraction: NotRequired[Optional[float]]
    """Progress 0..1 and status from `@gaia` lines, if the experiment printed any."""
    lease: int
    rows: List[Row]
    status: NotRequired[Optional[str]]


class RowsEvent(TypedDict):
    """The data of a `rows` event of `GET /api/v1/events` (SSE): rows just stored for a job."""
    attempt: int
    job: int
    rows: List[Row]


class RowsResponse(TypedDict):
    """`GET /api/v1/jobs/{id}/rows` answer."""
    attempt: int
    downsampled: bool
    """True when `rows` were downsampled (min and max per bucket and metric)."""
    job: int
    rows: List[Row]
    total: int
    """Rows stored for this attempt (before downsampling)."""


class ScoreInfo(TypedDict):
    """How a run's score is taken."""
    definition: str
    """The definition in words."""
    kind: str
    """`final`, `best_ever` or `auc`."""


class ScoreRecord(TypedDict):
    """One scored run."""
    env: str
    job: int
    method: str
    normalised: float
    score: float
    seed: NotRequired[Optional[int]]
    study: str


class ScoresExport(TypedDict):
    """`GET /api/v1/studies/{name}/scores.json` answer: every scored run, for rliable and pandas."""
    envs: List[str]
    """Column order of `matrices`."""
    matrices: Dict[str, List[List[Optional[float]]]]
    """Per method, a runs × environments matrix of normalised scores (run k of each environment in row k; null where an environment has fewer runs): `np.array(m, dtype=float)` is what `rliable` takes (after dropping rows with NaN)."""
    normalisation: List[EnvNorm]
    records: List[ScoreRecord]
    """One record per scored run (`pandas.DataFrame(records)`)."""
    score: ScoreInfo
    studies: List[str]


class Search(TypedDict):
    """How a study picks its configurations beyond a grid: drawn by `sampler` from the params' values and ranges, `samples` of them, reproducibly from `seed`; `tpe` keeps at most `parallel` configurations in flight and proposes the next one as one ends."""
    parallel: NotRequired[Optional[int]]
    sampler: Sampler
    samples: int
    seed: int


class SeedsCell(TypedDict):
    """One cell's seeds needed."""
    env: str
    half_width: NotRequired[Optional[float]]
    """The half-width of the bootstrap interval of the cell's mean now; None without runs."""
    method: str
    more: NotRequired[Optional[int]]
    """Further runs needed; None when it cannot be estimated yet (fewer than 2 runs)."""
    runs: int
    """Runs the cell has."""


class SeedsNeededResult(TypedDict):
    """Seeds needed per cell."""
    cells: List[SeedsCell]
    half_width: float
    """The requested interval half-width, in normalised units."""
    method: str
    """How it was estimated."""


class StatusResponse(TypedDict):
    """`GET /api/v1/status` answer."""
    data_dir: str
    """The server's data directory."""
    jobs: Dict[str, int]
    """Jobs per state (every state present, zero included)."""
    methods: NotRequired[List[str]]
    """The methods the shipped experiments know (`model::SHIPPED_METHODS`): suggestions for forms; a worker's own experiments may know others."""
    protocol: int
    started_at: int
    version: str
    workers_online: int
    workers_total: int


class StudyExtend(TypedDict):
    """`POST /api/v1/studies/{name}/extend` request: more seeds on the study's own grid."""
    confirm_large: NotRequired[bool]
    """Confirms more than `study::CONFIRM_STUDY_JOBS` new jobs."""
    dry_run: NotRequired[bool]
    """Check and count only."""
    seeds: str
    """`+5` (the next five seed numbers after the highest the study used), or seeds as `gaia submit --seeds` takes them (`11..15`)."""


class StudyGroup(TypedDict):
    """The result of one method × environment (× swept params) over its seeds."""
    best: NotRequired[Optional[MeanStd]]
    """Best-ever fitness (higher is better) over the seeds that reported one."""
    env: str
    jobs: int
    method: str
    params: NotRequired[Dict[str, Any]]
    progress: NotRequired[Optional[StudyProgress]]
    """The cell's own progress and ETA (in a study's report)."""
    succeeded: int


class StudyJob(TypedDict):
    """One job of a study as `gaia study` lists it."""
    attempt: int
    best_ever: NotRequired[Optional[float]]
    env: str
    evals: NotRequired[Optional[float]]
    """Evaluations the current attempt has reported."""
    id: int
    max_evals: int
    method: str
    params: NotRequired[Dict[str, Any]]
    seed: NotRequired[Optional[int]]
    state: JobState
    worker: NotRequired[Optional[str]]


class StudyList(TypedDict):
    """`GET /api/v1/studies` answer, newest first."""
    studies: List[StudySummary]


class StudyProgress(TypedDict):
    """Progress and ETA of a study."""
    eta_bound: NotRequired[bool]
    """True when the ETA assumes some jobs use their whole budget (no similar job of the study has ended yet to say how much they really use): an upper bound, shown as "≤"."""
    eta_note: NotRequired[Optional[str]]
    """Why the ETA is unknown (or "done")."""
    eta_secs: NotRequired[Optional[float]]
    """Seconds until the queued and running jobs are done; None = unknown (see `eta_note`)."""
    evals_budget: NotRequired[float]
    """The budgets of all jobs added up."""
    evals_done: float
    """Evaluations really done: what each started job's current attempt reported (a job that solved early counts the evaluations it used, not its budget)."""
    evals_per_sec: NotRequired[Optional[float]]
    """Evaluations per second of the study's running jobs together, each at its own measured rate (real evaluations over real running time)."""
    evals_remaining: float
    """Evaluations queued and running jobs still have to do at most (budget − done)."""
    evals_total: float
    """The study's work: `evals_done + evals_remaining` (a job that ended needs nothing more, whatever its budget; a queued or running one at most its budget)."""
    fraction: float
    """`evals_done / evals_total`, 0..1: a job that ended counts as complete."""
    jobs: int
    states: Dict[str, int]
    """Jobs per state name (only states that occur)."""


class StudyRecord(TypedDict):
    """A study as stored: its name and every submission (the first one made it)."""
    created_at: int
    name: str
    owner: NotRequired[str]
    """The user who created it: only they (or an admin) may add to it. Studies stored before users existed belong to the user `admin`."""
    submissions: List[StudySubmission]


class StudyReport(TypedDict):
    """`GET /api/v1/studies/{name}` answer."""
    configs: NotRequired[List[ConfigReport]]
    """An adaptive study's configurations (a sampler's, or any judged by early stopping)."""
    done: NotRequired[bool]
    """Every job of the study has ended (none queued or running, no proposal to come)."""
    groups: List[StudyGroup]
    incumbent: NotRequired[Optional[int]]
    """The best configuration so far (its id): the highest score of those that ended, else the highest best-ever of any."""
    jobs: List[StudyJob]
    name: str
    progress: StudyProgress
    record: NotRequired[Optional[StudyRecord]]
    """None for a study that only exists as jobs tagged with its name."""


class StudyRetry(TypedDict):
    """`POST /api/v1/studies/{name}/retry` request: run again the study's runs that failed."""
    cancelled: NotRequired[bool]
    """Also run again runs that were cancelled (by default: failed, lost and timed out)."""
    dry_run: NotRequired[bool]
    """Check and count only."""


class StudySubmission(TypedDict):
    """One submission of a study as stored."""
    at: int
    early_stop: NotRequired[Optional[EarlyStop]]
    """The early-stopping rule its configurations are judged by."""
    jobs: List[int]
    retries: NotRequired[List[int]]
    """A retry's runs: the job each of `jobs` runs again, in the same order."""
    search: NotRequired[Optional[Search]]
    """Configurations drawn by a sampler instead of a grid."""
    sweep: Sweep
    template: JobSpec
    via: NotRequired[Optional[str]]
    """How it came about, when not as a sweep submitted by hand: `extend` (`gaia study extend`: more seeds on the study's grid) or `retry` (`gaia study retry`)."""


class StudySubmit(TypedDict):
    """`POST /api/v1/studies` request."""
    again: NotRequired[bool]
    """Submit even if the study already holds this very definition."""
    confirm_large: NotRequired[bool]
    """Confirms a submission of more than `study::CONFIRM_STUDY_JOBS` jobs."""
    dry_run: NotRequired[bool]
    """Check and expand only: answer what would be submitted (`planned`, `total_jobs`) and write nothing. The dashboard's form previews a study this way."""
    early_stop: NotRequired[Optional[RuleInput]]
    """Early stopping: the command line's text (`"asha(metric=best_ever, min_evals=5000, eta=3)"`) or the rule as JSON."""
    name: str
    parallel: NotRequired[Optional[int]]
    """`tpe`: configurations in flight at most (default 4)."""
    sample_seed: NotRequired[Optional[int]]
    """The sampler's seed (default 0): the same seed draws the same configurations."""
    sampler: NotRequired[Optional[Sampler]]
    """How configurations are picked (`search`): `grid` (the default: every combination of the params' values), `random`, `sobol` or `tpe`."""
    samples: NotRequired[Optional[int]]
    """Configurations a sampler draws (needed with one)."""
    sweep: SweepInput
    template: NotRequired[JobSpec]
    """What every job starts from (budget, priority, requirements, fixed params, ...). Its `method`, `env` and `seed` are folded into the sweep."""


class StudySubmitted(TypedDict):
    """`POST /api/v1/studies` answer."""
    dry_run: NotRequired[bool]
    """True for a dry run: nothing was written and `jobs` is empty."""
    extended: bool
    """True when the study existed before this submission."""
    jobs: List[Tuple[int, JobSpec]]
    """The jobs of this submission, in sweep order, with their ids."""
    planned: NotRequired[int]
    """Jobs this submission expands to (those in `jobs`, or that a dry run would submit)."""
    study: str
    total_jobs: int
    """Jobs of the study over all its submissions."""


class StudySummary(TypedDict):
    """One line of `GET /api/v1/studies`."""
    created_at: NotRequired[Optional[int]]
    name: str
    owner: NotRequired[Optional[str]]
    """The user who created it (None for a study only named by jobs, with no record)."""
    progress: StudyProgress


class SubmitBatch(TypedDict):
    """`POST /api/v1/jobs/batch` request: several jobs, all stored or none."""
    jobs: List[JobSpec]


class SubmitBatchResponse(TypedDict):
    """`POST /api/v1/jobs/batch` answer, ids in request order."""
    ids: List[int]


class SubmitResponse(TypedDict):
    """`POST /api/v1/jobs` answer."""
    id: int


class Summary(TypedDict):
    """`GET /api/v1/summary` answer."""
    groups: List[SummaryGroup]
    """Per (environment, method), sorted by environment then method."""
    jobs: Dict[str, int]
    """Jobs per state (every state present), over the whole server or the study."""
    took_ms: float
    """Milliseconds the scan took on the server."""
    total: int
    workers: Dict[str, int]
    """Workers per state (every state present)."""


class SummaryGroup(TypedDict):
    """Scores of one (environment, method) pair."""
    best: NotRequired[Optional[float]]
    """Highest best-ever of any job of the pair (running ones included), and which job."""
    best_job: NotRequired[Optional[int]]
    env: str
    finals: List[float]
    """The finished jobs' final scores (at most `study::MAX_FINALS`, evenly sampled), ascending."""
    finished: int
    """Succeeded jobs that reported a score."""
    jobs: int
    """Experiments of this pair, in any state."""
    max: NotRequired[Optional[float]]
    mean: NotRequired[Optional[float]]
    """Over the finished jobs' final best-ever: mean, sample standard deviation (n − 1, as `gaia study`; None for a single seed), min, quartiles, max."""
    median: NotRequired[Optional[float]]
    method: str
    min: NotRequired[Optional[float]]
    q1: NotRequired[Optional[float]]
    q3: NotRequired[Optional[float]]
    queued: int
    running: int
    std: NotRequired[Optional[float]]


class Sweep(TypedDict):
    """The axes of a study in canonical form; every combination of one value per axis is one job (see `study::Definition`). Empty `envs` means the template's environment (or the default); empty `seeds` means the template's seed (or none)."""
    envs: NotRequired[List[str]]
    methods: List[str]
    params: NotRequired[List[ParamAxis]]
    seeds: NotRequired[List[int]]


class SweepInput(TypedDict):
    """The sweep of a study submission as sent: each axis structured or as command-line text. The server turns it into the canonical [`Sweep`] it stores and answers with."""
    envs: NotRequired[Axis_of_string]
    methods: Axis_of_string
    params: NotRequired[List[ParamInput]]
    seeds: NotRequired[Axis_of_uint64]


class TargetCell(TypedDict):
    """One method on one environment against its target."""
    env: str
    ert: Interval
    """Expected running time in evaluations (`null` bounds: ∞)."""
    evals: List[Optional[float]]
    """Per run, the evaluations it needed (null: never reached)."""
    runs: int
    success: Interval
    """`successes / runs`, with Wilson's score interval."""
    successes: int


class TargetMethod(TypedDict):
    """One method against the target."""
    cells: List[TargetCell]
    ecdf: List[Tuple[float, float]]
    """ECDF of running times over (run, target level) pairs: (evaluations, fraction)."""
    method: str
    success: Interval
    """The fraction of runs (of every environment) that reached their target, with Wilson's score interval."""


class TargetResult(TypedDict):
    """The fixed-target view."""
    ecdf_levels: List[float]
    """The fractions of the way from the environment's low score to its target that the ECDF counts as targets."""
    envs: List[EnvTarget]
    """The raw target of each environment."""
    methods: List[TargetMethod]
    target: str
    """The target in words (`solved`, `normalised 0.5`, ...)."""


class TelemetryResponse(TypedDict):
    """`GET /api/v1/workers/{name}/telemetry` answer."""
    points: List[Point]
    """Oldest first; a step with no heartbeat has no point (a gap, not a zero)."""
    span: str
    """`hour`, `day`, `week` or `month`."""
    step_ms: int
    """Milliseconds between two points."""
    worker: str


class TokenCreate(TypedDict):
    """`POST /api/v1/tokens` request."""
    name: str
    scope: Scope
    user: NotRequired[Optional[str]]
    """The user the token acts for (an admin may name any user; others only themselves). Default: the caller's own user."""


class TokenCreated(TypedDict):
    """`POST /api/v1/tokens` answer: the secret, shown this once."""
    name: str
    scope: Scope
    token: str
    user: NotRequired[str]
    """The user it acts for."""


class TokenInfo(TypedDict):
    """A stored API token (the secret itself is never stored, only its SHA-256)."""
    created_at: int
    name: str
    scope: Scope
    user: NotRequired[str]
    """The user it acts for: what it submits belongs to them. Tokens stored before users existed were all made by the admin, so they belong to the user `admin`."""


class TokenList(TypedDict):
    """`GET /api/v1/tokens` answer."""
    tokens: List[TokenInfo]


class UpdateReport(TypedDict):
    """A worker's report about an update (`POST /api/v1/workers/{id}/report`)."""
    message: str
    ok: bool
    """False: the update was refused (the message says why)."""
    tag: str


class Usage(TypedDict):
    """Live utilisation a worker reports with each heartbeat."""
    cpu_percent: NotRequired[float]
    gpu_percent: NotRequired[List[float]]
    """Each GPU's utilisation, in the order of `gpus` (kept for older readers)."""
    gpus: NotRequired[List[GpuUsage]]
    """Each GPU's readings, where `nvidia-smi` gives them."""
    memory_percent: NotRequired[float]


class UsageReport(TypedDict):
    """`GET /api/v1/usage` answer: one line per user, lowest effective priority (served next) first."""
    fair_share: bool
    """Whether claims follow fair share (`gaia serve --fair-share`)."""
    half_life_secs: float
    """Half-life of recent usage, seconds."""
    now: int
    since: NotRequired[Optional[int]]
    """Start of the window the worker and GPU seconds cover (None: all time)."""
    users: List[UserUsage]


class UserAdd(TypedDict):
    """`POST /api/v1/users` request: a new user, and the name of their first token."""
    max_queued: NotRequired[Optional[int]]
    max_running: NotRequired[Optional[int]]
    name: str
    share: NotRequired[Optional[float]]
    """Relative weight in fair share (default 1)."""
    token_name: NotRequired[Optional[str]]
    """Name of the user's first token (scope submit); default: the user's name."""


class UserAdded(TypedDict):
    """`POST /api/v1/users` answer: the user and their first token (its secret shown this once)."""
    token: TokenCreated
    user: UserInfo


class UserInfo(TypedDict):
    """A user of the farm: a person (or a group) whose jobs share the workers with everyone else's in proportion to `share`, within their limits."""
    created_at: NotRequired[int]
    max_queued: NotRequired[Optional[int]]
    """Most jobs of this user queued at once (None: no limit). A submission that would go past it is refused whole (429)."""
    max_running: NotRequired[Optional[int]]
    """Most jobs of this user running at once (None: no limit). Further jobs wait queued."""
    name: str
    share: NotRequired[float]
    """Relative weight in fair share (default 1): a user with share 2 gets twice the worker time of a user with share 1 when both have work queued."""


class UserList(TypedDict):
    """`GET /api/v1/users` answer, by name; the admin user is listed with its defaults when it has no record."""
    users: List[UserInfo]


class UserRemoved(TypedDict):
    """`DELETE /api/v1/users/{name}` answer: who was removed and the tokens revoked with them."""
    removed: str
    revoked_tokens: List[str]
    """Names of the user's tokens, all revoked."""


class UserUpdate(TypedDict):
    """`POST /api/v1/users/{name}` request: what changes (absent fields stay as they are)."""
    max_queued: NotRequired[Optional[int]]
    """A limit, or `0` to remove it."""
    max_running: NotRequired[Optional[int]]
    """A limit, or `0` to remove it."""
    share: NotRequired[Optional[float]]


class UserUsage(TypedDict):
    """One user's line of `GET /api/v1/usage`."""
    effective_priority: float
    """`usage_fraction / share_fraction`: 1 at their share, below 1 below it; lower is served first."""
    gpu_secs: float
    """GPU-seconds used in the window, counted the same way."""
    max_queued: NotRequired[Optional[int]]
    max_running: NotRequired[Optional[int]]
    queued: int
    recent_worker_secs: float
    """Recent worker-seconds, decayed with the half-life: what fair share compares."""
    running: int
    share: float
    share_fraction: float
    """Fraction of the shares of the users listed (0..1)."""
    usage_fraction: float
    """Fraction of all users' recent usage (0..1)."""
    user: str
    worker_secs: float
    """Worker-seconds used in the window (attempts that ended, hourly resolution, plus the running jobs so far)."""


class WhoAmI(TypedDict):
    """`GET /api/v1/whoami` answer."""
    name: str
    """The token's name (`admin` for the server's admin token)."""
    scope: Scope
    user: NotRequired[str]
    """The user the token acts for: what it submits is theirs (`gaia jobs --mine`)."""
    version: str
    """The server's version."""


class Worker(TypedDict):
    """A registered worker."""
    hardware: NotRequired[Hardware]
    hold: NotRequired[Optional[Hold]]
    """Paused, draining or quarantined by an admin or the server: it claims no new jobs."""
    id: str
    kinds: NotRequired[List[JobKind]]
    last_seen: int
    name: str
    registered_at: int
    running: NotRequired[List[int]]
    slots: NotRequired[int]
    state: WorkerState
    tags: NotRequired[List[str]]
    update_available: NotRequired[bool]
    """True when the promoted release differs from the version this worker runs."""
    update_error: NotRequired[Optional[str]]
    """The last update this worker refused, and why."""
    usage: NotRequired[Usage]
    version: NotRequired[str]


class WorkerList(TypedDict):
    """`GET /api/v1/workers` answer."""
    workers: List[Worker]


Axis_of_string = Union[List[str], str]
"""One sweep axis on the wire: a list, or the text the command line takes (`a,b`, `1..5,10`), which the server parses with the command line's own grammar (`study::parse_list`, `study::parse_seeds`), so the dashboard and scripts need no parser of their own."""


Axis_of_uint64 = Union[List[int], str]
"""One sweep axis on the wire: a list, or the text the command line takes (`a,b`, `1..5,10`), which the server parses with the command line's own grammar (`study::parse_list`, `study::parse_seeds`), so the dashboard and scripts need no parser of their own."""


EarlyStop = Union[Dict[str, Any], Dict[str, Any]]
"""An early-stopping rule: the server judges each configuration of a study when its runs cross a rung (a number of evaluations), and stops (`pruned`) the ones that fall behind. See `early_stop` for the rules."""


HoldKind = Literal["paused", "draining", "quarantined"]
"""Why a worker is held from claiming new jobs (see [`Hold`])."""


JobKind = Literal["experiment", "command", "reverse", "hash", "sum", "upper", "wait"]
"""What a job runs."""


JobState = Literal["queued", "running", "succeeded", "failed", "timed_out", "cancelled", "lost", "pruned"]
"""A job's state. `queued → running → succeeded | failed | timed_out | cancelled | lost`, and `running → queued` when a lease expires with attempts left."""


Level = Literal["info", "warning", "error"]
"""Severity the server assigns to a log line."""


Outcome = Literal["succeeded", "failed", "timed_out", "cancelled"]
"""How an attempt ended, as the worker reports it."""


ParamInput = Union[ParamAxis, str]
"""One swept param on the wire: `{"key", "values"}`, or the text of a command line's `--param KEY=V1,V2` (`study::parse_param_sweep`)."""


RuleInput = Union[EarlyStop, str]
"""An early-stopping rule on the wire: text in the command line's grammar (`early_stop::parse`), or the rule itself."""


SampleRange = Union[Dict[str, Any], Dict[str, Any], Dict[str, Any]]
"""A range a sampler draws a parameter from."""


Sampler = Literal["grid", "random", "sobol", "tpe"]
"""How a study picks its configurations (see `search`)."""


Scope = Literal["admin", "worker", "read", "submit", "metrics"]
"""Token scopes: `admin` may do everything, `worker` runs jobs, `read` looks, `submit` reads and submits, and cancels, extends and makes tokens for what its own user owns; `metrics` may read `/metrics` and nothing else (for a Prometheus server)."""


Stream = Literal["stdout", "stderr", "worker"]
"""A log line's stream."""


WorkerState = Literal["idle", "busy", "offline", "draining", "paused", "quarantined"]
"""A worker's state, as the server sees it."""

__all__ = [
    "OPENAPI_VERSION",
    "PROTOCOL_VERSION",
    "Ack",
    "Assignment",
    "Attempt",
    "AuditEntry",
    "AuditList",
    "Axis_of_string",
    "Axis_of_uint64",
    "CancelResponse",
    "Capabilities",
    "CellResult",
    "ClaimRequest",
    "ClaimResponse",
    "Comparison",
    "CompleteRequest",
    "ConfigReport",
    "CurveSet",
    "EarlyStop",
    "EnvMethod",
    "EnvNorm",
    "EnvResult",
    "EnvTarget",
    "ErrorBody",
    "Event",
    "EventList",
    "ExcludedEnv",
    "FileInfo",
    "FileList",
    "Finished",
    "GcReport",
    "GcRequest",
    "Gpu",
    "GpuPoint",
    "GpuUsage",
    "Hardware",
    "Health",
    "HeartbeatRequest",
    "HeartbeatResponse",
    "Hold",
    "HoldKind",
    "HoldRequest",
    "Improvement",
    "Interval",
    "Job",
    "JobKind",
    "JobList",
    "JobSpec",
    "JobState",
    "LeaseRef",
    "LeftOut",
    "Level",
    "Limits",
    "Line",
    "LogAck",
    "LogBatch",
    "LogInput",
    "LogLine",
    "LogsEvent",
    "LogsResponse",
    "MeanStd",
    "MethodResult",
    "Outcome",
    "ParamAxis",
    "ParamInput",
    "Point",
    "Profile",
    "Progress",
    "QueueDemand",
    "RegisterRequest",
    "RegisterResponse",
    "Release",
    "ReleaseFile",
    "ReleaseList",
    "ReleaseSummary",
    "RequeueRequest",
    "Requirements",
    "Revoked",
    "Row",
    "RowAck",
    "RowBatch",
    "RowsEvent",
    "RowsResponse",
    "RuleInput",
    "SampleRange",
    "Sampler",
    "Scope",
    "ScoreInfo",
    "ScoreRecord",
    "ScoresExport",
    "Search",
    "SeedsCell",
    "SeedsNeededResult",
    "StatusResponse",
    "Stream",
    "StudyExtend",
    "StudyGroup",
    "StudyJob",
    "StudyList",
    "StudyProgress",
    "StudyRecord",
    "StudyReport",
    "StudyRetry",
    "StudySubmission",
    "StudySubmit",
    "StudySubmitted",
    "StudySummary",
    "SubmitBatch",
    "SubmitBatchResponse",
    "SubmitResponse",
    "Summary",
    "SummaryGroup",
    "Sweep",
    "SweepInput",
    "TargetCell",
    "TargetMethod",
    "TargetResult",
    "TelemetryResponse",
    "TokenCreate",
    "TokenCreated",
    "TokenInfo",
    "TokenList",
    "UpdateReport",
    "Usage",
    "UsageReport",
    "UserAdd",
    "UserAdded",
    "UserInfo",
    "UserList",
    "UserRemoved",
    "UserUpdate",
    "UserUsage",
    "WhoAmI",
    "Worker",
    "WorkerList",
    "WorkerState",
]
