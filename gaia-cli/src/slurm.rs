//! `gaia slurm script` and `gaia slurm autoscale`: the script comes from
//! `gaia_core::cluster::slurm`, the decisions from `gaia_core::cluster::autoscale`; this file
//! runs `sbatch`, `squeue` and `scancel` and prints.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use gaia_core::cluster::slurm::{self, GpuRequest, ScriptOptions};
use gaia_core::cluster::{autoscale, slurm::parse_squeue_tasks};
use gaia_core::model::{Capabilities, JobKind};

use crate::common::{Conn, parse_secs};
use crate::exit;

#[derive(clap::Args)]
pub struct SlurmArgs {
    #[command(subcommand)]
    cmd: SlurmCmd,
}

#[derive(clap::Subcommand)]
enum SlurmCmd {
    /// Write an sbatch array script that runs GAIA workers (readable, editable).
    Script(ScriptArgs),
    /// Submit and cancel worker tasks from the queue's depth (run it on a login node).
    Autoscale(AutoscaleArgs),
}

/// What each worker task asks of Slurm, and the `gaia work` it runs.
#[derive(clap::Args, Clone)]
struct TaskArgs {
    /// Slurm job name; autoscale finds its tasks by it.
    #[arg(long, default_value = "gaia-worker")]
    job_name: String,
    #[arg(long)]
    partition: Option<String>,
    #[arg(long)]
    account: Option<String>,
    #[arg(long)]
    qos: Option<String>,
    /// Each task's time limit (Slurm's notation: 04:00:00, 90, 1-12:00:00).
    #[arg(long, default_value = "04:00:00")]
    time: String,
    /// GPUs per worker task (the worker uses exactly those Slurm gives it).
    #[arg(long, default_value_t = 0)]
    gpus_per_worker: u32,
    /// Ask for GPUs with --gres=gpu:N instead of --gpus-per-task=N (older clusters).
    #[arg(long)]
    gres: bool,
    #[arg(long)]
    cpus_per_worker: Option<u32>,
    /// Memory per task (--mem: 16G, 4000M).
    #[arg(long)]
    mem: Option<String>,
    /// Seconds before the time limit that Slurm sends USR1 (the worker gives its jobs back as
    /// preempted); 0 sends none (the SIGTERM at the limit does the same, with less time).
    #[arg(long, default_value = "120", value_name = "SECS", value_parser = parse_secs)]
    signal_lead: Duration,
    /// Slurm's --output for each task's log (%A the array job, %a the task).
    #[arg(long, default_value = "gaia-worker-%A_%a.log")]
    output: String,
    /// The gaia binary the tasks run (default: this one; compute nodes must reach it).
    #[arg(long, value_name = "PATH")]
    gaia: Option<PathBuf>,
    /// The file holding the worker token the tasks read (keep it mode 0600; it is never
    /// written into the script): (umask 077; gaia token create --scope worker --name slurm >
    /// FILE).
    #[arg(long, value_name = "FILE", default_value_os_t = default_token_file())]
    token_file: PathBuf,
    /// Jobs each worker runs at once.
    #[arg(long, default_value_t = 1)]
    slots: u32,
    /// A worker with nothing to do for this long exits 0, releasing its allocation.
    #[arg(long, default_value = "300", value_name = "SECS", value_parser = parse_secs)]
    idle_exit: Duration,
    /// Job kinds the workers run (default: gaia work's).
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<JobKind>,
    /// A tag the workers offer (repeatable; jobs may require tags).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// A further #SBATCH option (repeatable): --sbatch-arg=--constraint=a100.
    #[arg(long = "sbatch-arg", value_name = "OPTION", allow_hyphen_values = true)]
    sbatch_args: Vec<String>,
    /// Further `gaia work` arguments, after `--`: -- --python /opt/envs/rl/bin/python
    #[arg(last = true, value_name = "WORK_ARGS")]
    work_args: Vec<String>,
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  gaia slurm script --workers 8 --gpus-per-worker 1 --time 04:00:00 --partition gpu > gaia-workers.sbatch
  sbatch gaia-workers.sbatch
  gaia slurm script --workers 4 -- --python /opt/envs/rl/bin/python --experiments-dir ~/lab/experiments

Each array task runs one `gaia work` that gives its jobs back as preempted on Slurm's USR1
(--signal-lead before the time limit), on scancel and at the time limit, knows its end time and
starts no job it cannot finish, and exits 0 when no job has fitted for --idle-exit seconds.")]
struct ScriptArgs {
    /// Array tasks, one worker each.
    #[arg(long, default_value_t = 1)]
    workers: u32,
    /// At most this many tasks run at once (the array's %N).
    #[arg(long)]
    max_running: Option<u32>,
    /// The server the workers connect to.
    #[arg(long, env = "GAIA_SERVER", default_value = gaia_core::client::DEFAULT_SERVER)]
    server: String,
    /// Write the script here instead of to stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    task: TaskArgs,
}

#[derive(clap::Args)]
#[command(after_help = "Example (on a login node):
  GAIA_TOKEN=$(cat ~/.config/gaia/read.token) gaia slurm autoscale --partition gpu --gpus-per-worker 1 --max-workers 32 --idle-exit 300

Every --interval it asks the server how many queued jobs these workers could run (their kinds,
tags, GPUs and memory), counts what is already coming (pending tasks, free slots of running
ones, workers still starting), and submits one array for the rest, up to --max-workers tasks
in all; it cancels pending tasks the queue no longer needs (never running ones: their workers
exit by themselves once idle). Its own token (--token / GAIA_TOKEN) needs the read scope; the
tasks use the worker token in --token-file.")]
struct AutoscaleArgs {
    /// Most tasks pending and running at once.
    #[arg(long, default_value_t = 16)]
    max_workers: u32,
    /// Seconds between rounds.
    #[arg(long, default_value = "30", value_name = "SECS", value_parser = parse_secs)]
    interval: Duration,
    /// One round, then exit (for cron); a failure exits 1.
    #[arg(long)]
    once: bool,
    /// Whose tasks to count (default: $USER).
    #[arg(long, env = "USER")]
    user: Option<String>,
    #[command(flatten)]
    conn: Conn,
    #[command(flatten)]
    task: TaskArgs,
}

fn default_token_file() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".config/gaia/worker.token")
}

pub fn run(a: SlurmArgs) -> anyhow::Result<i32> {
    match a.cmd {
        SlurmCmd::Script(s) => script(s),
        SlurmCmd::Autoscale(s) => autoscale_loop(s),
    }
}

/// The script's options from the flags; warns (once) about a token file that is missing or
/// readable by others.
fn options(t: &TaskArgs, server: &str, workers: u32) -> anyhow::Result<ScriptOptions> {
    let gaia = match &t.gaia {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .and_then(|p| p.canonicalize())
            .context("cannot tell where this gaia binary is: pass --gaia PATH")?,
    };
    let token_file = std::path::absolute(&t.token_file).unwrap_or(t.token_file.clone());
    let mut o = ScriptOptions::new(server, token_file, gaia);
    o.workers = workers;
    o.job_name = t.job_name.clone();
    o.partition = t.partition.clone();
    o.account = t.account.clone();
    o.qos = t.qos.clone();
    o.time = t.time.clone();
    o.gpus_per_worker = t.gpus_per_worker;
    o.gpu_request = if t.gres {
        GpuRequest::Gres
    } else {
        GpuRequest::GpusPerTask
    };
    o.cpus_per_worker = t.cpus_per_worker;
    o.mem = t.mem.clone();
    o.signal_lead = t.signal_lead;
    o.output = t.output.clone();
    o.slots = t.slots;
    o.idle_exit = t.idle_exit;
    o.sbatch_args = t.sbatch_args.clone();
    let mut work = Vec::new();
    if !t.kinds.is_empty() {
        work.push("--kinds".to_string());
        work.push(
            t.kinds
                .iter()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    for tag in &t.tags {
        work.push("--tag".into());
        work.push(tag.clone());
    }
    work.extend(t.work_args.iter().cloned());
    o.work_args = work;
    o.validate().map_err(anyhow::Error::msg)?;
    Ok(o)
}

fn check_token_file(path: &std::path::Path) {
    match std::fs::metadata(path) {
        Err(_) => eprintln!(
            "gaia slurm: note: the tasks read their worker token from {0}, which does not exist yet; \
             create it with: (umask 077; gaia token create --scope worker --name slurm > {0})",
            path.display()
        ),
        #[cfg(unix)]
        Ok(m) => {
            use std::os::unix::fs::PermissionsExt;
            if m.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "gaia slurm: warning: {} is readable by others (chmod 600 it)",
                    path.display()
                );
            }
        }
        #[cfg(not(unix))]
        Ok(_) => {}
    }
}

fn script(a: ScriptArgs) -> anyhow::Result<i32> {
    let mut o = options(&a.task, &a.server, a.workers)?;
    o.max_running = a.max_running;
    check_token_file(&o.token_file);
    let text = slurm::render_script(&o);
    match &a.out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("write {}", path.display()))?;
            eprintln!(
                "wrote {} ({} worker task(s)); submit it with: sbatch {}",
                path.display(),
                o.workers,
                path.display()
            );
        }
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(exit::OK)
}

/// Runs a Slurm client command, returning its stdout (its stderr in the error).
fn slurm_cmd(program: &str, args: &[String], stdin: Option<&str>) -> anyhow::Result<String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot run {program} (is Slurm's client installed here?)"))?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn autoscale_loop(a: AutoscaleArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    let template = options(&a.task, &a.conn.server, 1)?;
    check_token_file(&template.token_file);
    let caps = Capabilities {
        kinds: if a.task.kinds.is_empty() {
            gaia_core::worker::WorkerConfig::new("", "", ".").kinds
        } else {
            a.task.kinds.clone()
        },
        gpus: a.task.gpus_per_worker,
        memory_mb: a.task.mem.as_deref().and_then(slurm::mem_mb).unwrap_or(0),
        tags: a.task.tags.clone(),
        max_job_secs: None,
    };
    stop_signal::install();
    println!(
        "gaia slurm autoscale: tasks named {} for {}; up to {} at once, every {}",
        template.job_name,
        a.conn.server,
        a.max_workers,
        gaia_core::human::seconds(a.interval.as_secs_f64())
    );
    let mut last = String::new();
    loop {
        match round(&a, &client, &caps, &template) {
            Ok(line) => {
                // A quiet queue says so once, not every round.
                if line != last {
                    println!("{} {line}", gaia_core::worker::stamp());
                    last = line;
                }
            }
            Err(e) => {
                if a.once {
                    return Err(e);
                }
                eprintln!("{} gaia slurm autoscale: {e:#}", gaia_core::worker::stamp());
                last.clear();
            }
        }
        if a.once {
            return Ok(exit::OK);
        }
        let until = std::time::Instant::now() + a.interval;
        while std::time::Instant::now() < until {
            if stop_signal::received() {
                println!("gaia slurm autoscale: stopped (tasks already submitted run on)");
                return Ok(exit::OK);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// One round: look, decide, act; returns what it did, for the console.
fn round(
    a: &AutoscaleArgs,
    client: &gaia_core::client::Client,
    caps: &Capabilities,
    template: &ScriptOptions,
) -> anyhow::Result<String> {
    let squeue = slurm_cmd(
        "squeue",
        &slurm::squeue_args(&template.job_name, a.user.as_deref()),
        None,
    )?;
    let tasks = parse_squeue_tasks(&squeue);
    let demand = client
        .queue_demand(caps)
        .context("cannot read the queue's depth")?;
    let workers = client.workers().context("cannot list workers")?.workers;
    let plan = autoscale::plan(
        demand.fitting,
        template.slots,
        &tasks,
        &workers,
        a.max_workers,
    );
    let mut did = Vec::new();
    if plan.submit > 0 {
        let mut o = template.clone();
        o.workers = plan.submit;
        let out = slurm_cmd(
            "sbatch",
            &["--parsable".to_string()],
            Some(&slurm::render_script(&o)),
        )?;
        let id = slurm::parse_sbatch_parsable(&out).map_err(anyhow::Error::msg)?;
        did.push(format!("submitted {} task(s) as job {id}", plan.submit));
    }
    for id in &plan.cancel {
        // Only while still pending: a task that has just started keeps its worker.
        slurm_cmd(
            "scancel",
            &["--state=PENDING".to_string(), id.clone()],
            None,
        )?;
    }
    if !plan.cancel.is_empty() {
        did.push(format!(
            "cancelled {} pending task(s) ({})",
            plan.cancel.len(),
            plan.cancel.join(" ")
        ));
    }
    let state = format!(
        "{} fitting job(s) queued, {} task(s) pending, {} running, {} slot(s) coming",
        plan.fitting, plan.pending, plan.running, plan.coming
    );
    Ok(if did.is_empty() {
        state
    } else {
        format!("{state}: {}", did.join("; "))
    })
}

/// Ctrl-C and SIGTERM end the loop between rounds (tasks already submitted run on).
mod stop_signal {
    use std::sync::atomic::{AtomicBool, Ordering};

    static STOP: AtomicBool = AtomicBool::new(false);

    extern "C" fn handler(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }

    /// Installs the handlers.
    pub fn install() {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, handler as *const () as libc::sighandler_t);
            libc::signal(libc::SIGTERM, handler as *const () as libc::sighandler_t);
        }
    }

    /// Whether one arrived.
    pub fn received() -> bool {
        STOP.load(Ordering::SeqCst)
    }
}
