//! `gaia work`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use gaia_core::model::JobKind;
use gaia_core::worker::{self, Shutdown, WorkerConfig, hardware::GpuChoice};

use crate::common::parse_secs;
use crate::exit;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  gaia work --server https://lab.example:7434 --token $T --name rtx5070 --gpu auto
  gaia work --slots 2 --gpu 0,1        # two jobs at once, one GPU each
  gaia work --gpu none --kinds experiment,hash,wait --exit-when-idle 60

The worker only connects out to the server (works behind NAT). Ctrl-C once: finish running jobs
and exit; twice: give them back to the queue and exit now.")]
pub struct WorkArgs {
    /// Server URL.
    #[arg(long, env = "GAIA_SERVER", default_value = gaia_core::client::DEFAULT_SERVER)]
    server: String,
    /// A worker (or admin) token; prefer GAIA_TOKEN (a flag is visible in `ps`).
    #[arg(long, env = "GAIA_TOKEN", hide_env_values = true)]
    token: Option<String>,
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
    let Some(token) = a.token.filter(|t| !t.trim().is_empty()) else {
        anyhow::bail!(
            "no token: pass --token or set GAIA_TOKEN (create one with `gaia token create --scope worker`)"
        );
    };
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
    let shutdown = Shutdown::new();
    shutdown.install_signal_handlers();
    worker::run(cfg, shutdown)?;
    Ok(exit::OK)
}
