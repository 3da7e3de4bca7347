//! `gaia work`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use gaia_core::cluster::allocation;
use gaia_core::model::JobKind;
use gaia_core::worker::{self, OnSigterm, Shutdown, WorkerConfig, hardware::GpuChoice};

use crate::common::parse_secs;
use crate::exit;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  gaia work --server https://lab.example:7434 --token $T --name rtx5070 --gpu auto
  gaia work --slots 2 --gpu 0,1        # two jobs at once, one GPU each
  gaia work --gpu none --kinds experiment,hash,wait --exit-when-idle 60

  gaia work --max-jobs 10 --exit-when-idle 300   # a pilot job in any scheduler: exits 0
  gaia work --deadline 2026-12-03T18:00:00Z       # an allocation that ends then

The worker only connects out to the server (works behind NAT).

Signals:
  SIGINT (Ctrl-C)  once: no new jobs, running jobs finish, then exit; twice: give them back to
                   the queue and exit now.
  SIGUSR1          preempted: stop every experiment at once (SIGTERM, --kill-grace, SIGKILL),
                   send every row and log line it printed, give its job back as `preempted`
                   (queued again at once, no attempt spent: another worker starts it within
                   seconds), exit 0. Slurm sends it with `--signal=B:USR1@120`.
  SIGTERM          depends on --on-sigterm. The default, auto, takes it as preemption inside a
                   batch scheduler or Kubernetes (SLURM_JOB_ID, KUBERNETES_SERVICE_HOST,
                   PBS_JOBID, LSB_JOBID or _CONDOR_JOB_AD set), whose SIGTERM is followed by
                   SIGKILL seconds later (Slurm's KillWait, a pod's terminationGracePeriodSeconds:
                   make it at least --kill-grace + 15 s); elsewhere (systemd, a terminal) it is
                   like Ctrl-C: running jobs finish first. Under systemd use KillMode=mixed, so
                   the SIGTERM reaches the worker and not its experiments.

An allocation's end (--deadline, or inside Slurm its time limit, read from SLURM_JOB_END_TIME
or squeue): jobs whose study has measured them as too long for the time left are left for
other workers; within --end-margin of the end no job of unknown length starts and the worker
exits once its jobs end; --preempt-before the end running jobs are given back (preempted).

--max-jobs, --exit-when-idle, the end of an allocation and preemption all exit 0, so a
scheduler sees the task succeed.")]
pub struct WorkArgs {
    /// Server URL.
    #[arg(long, env = "GAIA_SERVER", default_value = gaia_core::client::DEFAULT_SERVER)]
    server: String,
    /// A worker (or admin) token; prefer GAIA_TOKEN or --token-file (a flag is visible in
    /// `ps`).
    #[arg(long, env = "GAIA_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the token from this file (its first line; keep it mode 0600): for batch scripts,
    /// where neither a flag nor the script should hold it. It wins over --token and
    /// GAIA_TOKEN (which a scheduler may pass on from the submitting shell).
    #[arg(long, env = "GAIA_TOKEN_FILE", value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// CA certificate(s), PEM, to trust for an https:// server instead of the public roots.
    #[arg(long, env = "GAIA_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Name shown in lists (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// GPUs to use: auto (all nvidia-smi lists), none, or indices like 0,1.
    #[arg(long, default_value = "auto")]
    gpu: GpuChoice,
    /// Jobs to run at once (GPUs are split over slots).
    #[arg(long, default_value_t = 1)]
    slots: u32,
    /// Job kinds to run.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "experiment,reverse,hash,sum,upper,wait"
    )]
    kinds: Vec<JobKind>,
    /// A tag jobs can require (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Folder with run_all.py and requirements.txt.
    #[arg(long, env = "GAIA_EXPERIMENTS_DIR", default_value = "./experiments")]
    experiments_dir: PathBuf,
    /// Python to run experiments with (default: a virtualenv built from requirements.txt).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Also run `command` jobs: arbitrary programs from anyone who can submit.
    #[arg(long)]
    allow_commands: bool,
    /// Where the worker keeps its id, venv and spool (default: ~/.local/share/gaia/worker-<name>).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Exit 0 after this many seconds with nothing to do.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    exit_when_idle: Option<Duration>,
    /// Exit 0 after running this many jobs (no more are claimed; running ones finish).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_jobs: Option<u64>,
    /// When this worker's allocation ends: 2026-12-03T18:00:00Z (with its zone),
    /// @unix-seconds, or a duration from now (3600, 90m, 4h, 3h30m). Inside Slurm the job's
    /// time limit is used without it.
    #[arg(long, value_name = "TIME")]
    deadline: Option<String>,
    /// No job of unknown length starts this close to the allocation's end; the worker exits
    /// once its running jobs end.
    #[arg(long, default_value = "120", value_name = "SECS", value_parser = parse_secs)]
    end_margin: Duration,
    /// Give running jobs back (preempted) this long before the allocation's end, so their
    /// output is sent before the scheduler's SIGKILL; 0 waits for the scheduler's signal.
    /// Default: --kill-grace + 15.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    preempt_before: Option<Duration>,
    /// What SIGTERM means: auto (preempt inside a scheduler, else drain), drain (finish running
    /// jobs first), preempt (give them back at once). See the signals below.
    #[arg(long, env = "GAIA_ON_SIGTERM", default_value = "auto", value_parser = ["auto", "drain", "preempt"])]
    on_sigterm: String,
    /// Kill jobs running longer than this many seconds (timed_out).
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    job_timeout: Option<Duration>,
    /// The most any job may use here: mem=SIZE, cpu=TIME, files=N, output=SIZE (as `gaia
    /// submit --limit`). A job's own limits are capped by these; a job without one gets these.
    /// Memory is limited by a cgroup v2 of the job's own where this worker may create one
    /// (under its own cgroup, with the memory controller delegated), else per process with
    /// RLIMIT_AS (address space: generous for programs that reserve much more than they use).
    #[arg(long, value_name = "KEY=VALUE,...", value_parser = crate::jobs::parse_limits)]
    max_limit: Option<gaia_core::model::Limits>,
    /// Largest result file uploaded, in MiB (bigger ones are named in the job's log and kept
    /// off the server).
    #[arg(long, default_value_t = 100, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    max_file_mib: u64,
    /// Seconds between SIGTERM and SIGKILL when stopping a job.
    #[arg(long, default_value = "10", value_name = "SECS", value_parser = parse_secs)]
    kill_grace: Duration,
    /// Send rows as JSON instead of postcard.
    #[arg(long, hide = true)]
    json_rows: bool,
    /// Rows of a job kept in memory during a server outage before they spill to disk.
    #[arg(long, hide = true, default_value_t = gaia_core::worker::stream::MEMORY_ROWS)]
    spool_after_rows: usize,
    /// Move to the promoted release between jobs: download, verify, replace this binary
    /// (keeping <exe>.bak), sync the experiments, restart with the same arguments.
    #[arg(long)]
    auto_update: bool,
    /// With --auto-update: give running jobs back to the queue and update at once.
    #[arg(long, requires = "auto_update")]
    update_now: bool,
    /// Only accept releases signed with this public key (from `gaia release keygen`).
    #[arg(long, value_name = "FILE", requires = "auto_update")]
    trust_key: Option<PathBuf>,
    /// Put <exe>.bak (the binary before the last update) back, then exit.
    #[arg(long)]
    rollback: bool,
}

pub fn run(a: WorkArgs) -> anyhow::Result<i32> {
    if a.rollback {
        let exe = std::env::current_exe()?;
        gaia_core::release::update::rollback(&exe).map_err(anyhow::Error::msg)?;
        println!(
            "rolled back: {} is the binary from before the last update",
            exe.display()
        );
        return Ok(exit::OK);
    }
    let token = match &a.token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("--token-file {}", path.display()))?
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_string(),
        None => a.token.clone().unwrap_or_default(),
    };
    if token.trim().is_empty() {
        anyhow::bail!(
            "no token: pass --token-file, --token or set GAIA_TOKEN (create one with `gaia token create --scope worker`)"
        );
    }
    let mut cfg = WorkerConfig::new(&a.server, token.trim(), a.experiments_dir);
    cfg.ca_cert = a.ca_cert;
    if let Some(n) = a.name {
        cfg.name = n;
    }
    cfg.state_dir = a
        .state_dir
        .unwrap_or_else(|| worker::default_state_dir(&cfg.name));
    cfg.gpus = a.gpu;
    cfg.slots = a.slots;
    cfg.kinds = a.kinds;
    cfg.tags = a.tags;
    cfg.python = a.python;
    cfg.allow_commands = a.allow_commands;
    cfg.exit_when_idle = a.exit_when_idle;
    cfg.max_jobs = a.max_jobs;
    let deadline = match &a.deadline {
        Some(d) => Some(
            allocation::parse_deadline(d, gaia_core::model::now_ms())
                .map_err(anyhow::Error::msg)
                .context("--deadline")?,
        ),
        None => None,
    };
    cfg.allocation = allocation::Allocation::detect(deadline, &allocation::process_env);
    cfg.end_policy = allocation::EndPolicy {
        end_margin: a.end_margin,
        preempt_before: a
            .preempt_before
            .unwrap_or(a.kill_grace + Duration::from_secs(15)),
    };
    cfg.job_timeout = a.job_timeout;
    cfg.max_limits = a.max_limit.unwrap_or_default();
    cfg.kill_grace = a.kill_grace;
    cfg.postcard = !a.json_rows;
    cfg.memory_rows = a.spool_after_rows;
    cfg.max_upload = a.max_file_mib << 20;
    cfg.auto_update = a.auto_update;
    cfg.update_now = a.update_now;
    cfg.trust_key = match &a.trust_key {
        Some(p) => Some(gaia_core::release::publish::read_key(p).context("--trust-key")?),
        None => None,
    };
    let on_term = match a.on_sigterm.as_str() {
        "drain" => OnSigterm::Drain,
        "preempt" => OnSigterm::Preempt,
        _ => {
            let (t, scheduler) = OnSigterm::detect();
            if let Some(s) = scheduler {
                eprintln!(
                    "{} gaia work: inside {s}: SIGTERM gives running jobs back as preempted (--on-sigterm)",
                    worker::stamp()
                );
            }
            t
        }
    };
    let shutdown = Shutdown::new();
    shutdown.install_signal_handlers_for(on_term);
    worker::run(cfg, shutdown)?;
    Ok(exit::OK)
}
