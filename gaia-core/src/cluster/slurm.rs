//! Slurm, as text: the sbatch array script that runs GAIA workers ([`render_script`]), and
//! reading what `squeue` and `sbatch --parsable` print. Pure: the commands themselves are run
//! by the caller (`gaia slurm`), so an embedder can run them its own way.

use std::path::PathBuf;
use std::time::Duration;

/// How GPUs are asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum GpuRequest {
    /// `--gpus-per-task=N` (Slurm ≥ 19.05 with `select/cons_tres`).
    #[default]
    GpusPerTask,
    /// `--gres=gpu:N` (older clusters, `select/cons_res`).
    Gres,
}

/// What the generated script asks of Slurm and of each worker.
#[derive(Clone, Debug, PartialEq)]
pub struct ScriptOptions {
    /// Array tasks: one worker each (`--array=0-(N-1)`).
    pub workers: u32,
    /// At most this many tasks at once (`%N` on the array); None: as many as Slurm allows.
    pub max_running: Option<u32>,
    /// `--job-name`; `gaia slurm autoscale` finds its tasks by it.
    pub job_name: String,
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// Each task's time limit, in Slurm's notation (`04:00:00`, `90`, `1-12:00:00`).
    pub time: String,
    pub gpus_per_worker: u32,
    pub gpu_request: GpuRequest,
    pub cpus_per_worker: Option<u32>,
    /// `--mem` (`16G`, `4000M`).
    pub mem: Option<String>,
    /// Slurm sends USR1 this long before the time limit (`--signal=B:USR1@SECS`); zero sends
    /// none (the worker still gives its jobs back on the SIGTERM at the limit).
    pub signal_lead: Duration,
    /// `--output`, with Slurm's `%A` (array job) and `%a` (task) patterns.
    pub output: String,
    /// The `gaia` binary the tasks run (it must be reachable from the compute nodes).
    pub gaia: PathBuf,
    pub server: String,
    /// A file holding the worker token (kept out of the script and of every command line).
    pub token_file: PathBuf,
    /// `gaia work --slots`.
    pub slots: u32,
    /// `gaia work --exit-when-idle`: a task with nothing to do ends, releasing its allocation.
    pub idle_exit: Duration,
    /// Further `gaia work` arguments, passed as given (quoted for the shell).
    pub work_args: Vec<String>,
    /// Further `#SBATCH` lines, as given (`--constraint=a100`, `--reservation=lab`).
    pub sbatch_args: Vec<String>,
}

impl ScriptOptions {
    /// Defaults for a server, token file and `gaia` binary: 1 worker, 4 hours, no GPU, USR1
    /// 120 s before the limit, idle workers exit after 300 s.
    pub fn new(server: &str, token_file: impl Into<PathBuf>, gaia: impl Into<PathBuf>) -> Self {
        ScriptOptions {
            workers: 1,
            max_running: None,
            job_name: "gaia-worker".into(),
            partition: None,
            account: None,
            qos: None,
            time: "04:00:00".into(),
            gpus_per_worker: 0,
            gpu_request: GpuRequest::GpusPerTask,
            cpus_per_worker: None,
            mem: None,
            signal_lead: Duration::from_secs(120),
            output: "gaia-worker-%A_%a.log".into(),
            gaia: gaia.into(),
            server: server.into(),
            token_file: token_file.into(),
            slots: 1,
            idle_exit: Duration::from_secs(300),
            work_args: Vec::new(),
            sbatch_args: Vec::new(),
        }
    }

    /// Checks what would make a script Slurm refuses or one that cannot work: names with
    /// characters an `#SBATCH` line cannot hold, an unreadable time limit, a signal lead not
    /// inside it.
    pub fn validate(&self) -> Result<(), String> {
        if self.workers == 0 || self.workers > 100_000 {
            return Err(format!(
                "--workers must be between 1 and 100000, got {}",
                self.workers
            ));
        }
        if self.slots == 0 {
            return Err("--slots must be at least 1".into());
        }
        let word = |what: &str, v: &str| {
            let ok = !v.is_empty()
                && v.len() <= 128
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_.-,:+=%@/".contains(c));
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "{what} {v:?}: use letters, digits and _ . - , : + = % @ / only"
                ))
            }
        };
        word("--job-name", &self.job_name)?;
        for (what, v) in [
            ("--partition", &self.partition),
            ("--account", &self.account),
            ("--qos", &self.qos),
            ("--mem", &self.mem),
        ] {
            if let Some(v) = v {
                word(what, v)?;
            }
        }
        word("--output", &self.output)?;
        for a in &self.sbatch_args {
            if !a.starts_with("--") || a.contains(['\n', '\r']) {
                return Err(format!(
                    "--sbatch-arg {a:?}: give one long option such as --constraint=a100"
                ));
            }
        }
        let limit = parse_time(&self.time)?;
        if !self.signal_lead.is_zero() && self.signal_lead.as_secs() >= limit {
            return Err(format!(
                "the warning signal {} s before the end does not fit in a time limit of {} ({limit} s): shorten --signal-lead or lengthen --time",
                self.signal_lead.as_secs(),
                self.time
            ));
        }
        if self.signal_lead.as_secs() > 65_535 {
            return Err("--signal-lead is at most 65535 seconds (Slurm's limit)".into());
        }
        Ok(())
    }
}

/// Reads a Slurm time limit (`minutes`, `minutes:seconds`, `hours:minutes:seconds`,
/// `days-hours`, `days-hours:minutes`, `days-hours:minutes:seconds`) as seconds.
pub fn parse_time(s: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "{s:?} is not a Slurm time limit (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)"
        )
    };
    let num = |t: &str| -> Result<u64, String> {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || t.len() > 9 {
            return Err(bad());
        }
        t.parse().map_err(|_| bad())
    };
    let (days, rest) = match s.trim().split_once('-') {
        Some((d, r)) => (Some(num(d)?), r),
        None => (None, s.trim()),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let secs = match (days, &parts[..]) {
        (None, [m]) => num(m)? * 60,
        (None, [m, s]) => num(m)? * 60 + num(s)?,
        (None, [h, m, s]) => num(h)? * 3600 + num(m)? * 60 + num(s)?,
        (Some(d), [h]) => d * 86_400 + num(h)? * 3600,
        (Some(d), [h, m]) => d * 86_400 + num(h)? * 3600 + num(m)? * 60,
        (Some(d), [h, m, s]) => d * 86_400 + num(h)? * 3600 + num(m)? * 60 + num(s)?,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(format!("{s:?}: a time limit must be longer than zero"));
    }
    Ok(secs)
}

/// Reads Slurm's `--mem` (`16G`, `4000M`, `4000` in MB, `1T`) as MiB; None when it is not a
/// size (Slurm would refuse it too).
pub fn mem_mb(s: &str) -> Option<u64> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "M"),
    };
    let n: u64 = num.parse().ok()?;
    let mul = match unit.to_ascii_uppercase().as_str() {
        "K" => return Some(n / 1024),
        "M" | "MB" => 1,
        "G" | "GB" => 1024,
        "T" | "TB" => 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// Quotes `s` for a POSIX shell (as is when it holds nothing the shell would read).
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:=@%+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The sbatch array script: one `gaia work` per task, which Slurm's USR1 (or the SIGTERM at the
/// time limit) makes give its jobs back as preempted, and which exits 0 once no job has fit for
/// `idle_exit`, releasing the allocation. Call [`ScriptOptions::validate`] first.
pub fn render_script(o: &ScriptOptions) -> String {
    let mut s = String::new();
    let mut line = |l: &str| {
        s.push_str(l);
        s.push('\n');
    };
    line("#!/bin/bash");
    line(&format!(
        "# GAIA workers as a Slurm job array, written by `gaia slurm script` (gaia {}).",
        crate::VERSION
    ));
    line("# Submit it with `sbatch`; edit anything. Each array task runs one `gaia work`, which");
    line(&format!(
        "# takes jobs from {} until none has fitted for {} s, then exits 0.",
        o.server,
        o.idle_exit.as_secs()
    ));
    line("#");
    line(&format!("#SBATCH --job-name={}", o.job_name));
    let throttle = o.max_running.map(|m| format!("%{m}")).unwrap_or_default();
    line(&format!(
        "#SBATCH --array=0-{}{throttle}",
        o.workers.saturating_sub(1)
    ));
    if let Some(p) = &o.partition {
        line(&format!("#SBATCH --partition={p}"));
    }
    if let Some(a) = &o.account {
        line(&format!("#SBATCH --account={a}"));
    }
    if let Some(q) = &o.qos {
        line(&format!("#SBATCH --qos={q}"));
    }
    line(&format!("#SBATCH --time={}", o.time.trim()));
    line("#SBATCH --ntasks=1");
    if let Some(c) = o.cpus_per_worker {
        line(&format!("#SBATCH --cpus-per-task={c}"));
    }
    if o.gpus_per_worker > 0 {
        match o.gpu_request {
            GpuRequest::GpusPerTask => {
                line(&format!("#SBATCH --gpus-per-task={}", o.gpus_per_worker))
            }
            GpuRequest::Gres => line(&format!("#SBATCH --gres=gpu:{}", o.gpus_per_worker)),
        }
    }
    if let Some(m) = &o.mem {
        line(&format!("#SBATCH --mem={m}"));
    }
    if !o.signal_lead.is_zero() {
        line(&format!(
            "#SBATCH --signal=B:USR1@{}",
            o.signal_lead.as_secs()
        ));
    }
    line("#SBATCH --no-requeue");
    line(&format!("#SBATCH --output={}", o.output));
    for a in &o.sbatch_args {
        line(&format!("#SBATCH {a}"));
    }
    line("#");
    if !o.signal_lead.is_zero() {
        line(&format!(
            "# --signal: {} s before the time limit Slurm sends USR1 to this script's process, which",
            o.signal_lead.as_secs()
        ));
        line(
            "#   is `gaia work` itself (exec below). The worker stops its experiments, sends every",
        );
        line(
            "#   row and log line, and gives its jobs back as preempted: they are queued again at",
        );
        line(
            "#   once, without spending an attempt, and another worker starts them within seconds.",
        );
    }
    line(
        "#   The SIGTERM that Slurm sends at the time limit (or on scancel) does the same: inside",
    );
    line(
        "#   a scheduler, gaia work takes SIGTERM as preemption (gaia work --help, --on-sigterm).",
    );
    line("# --no-requeue: Slurm does not start an ended task again; GAIA requeues the jobs.");
    line("# The token is read from a file (keep it mode 0600), never put on a command line.");
    if o.gpus_per_worker > 0 {
        line("# --gpu: the GPUs Slurm gave this task (CUDA_VISIBLE_DEVICES), and no others.");
    }
    line("set -eu");
    line(&format!("export GAIA_SERVER={}", shell_quote(&o.server)));
    let mut cmd = vec![
        format!("exec {} work", shell_quote(&o.gaia.display().to_string())),
        format!(
            "--token-file {}",
            shell_quote(&o.token_file.display().to_string())
        ),
        "--name \"slurm-${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"".into(),
    ];
    if o.gpus_per_worker > 0 {
        cmd.push(
            "--gpu \"${CUDA_VISIBLE_DEVICES:?Slurm gave this task no GPU (CUDA_VISIBLE_DEVICES is unset)}\""
                .into(),
        );
    } else {
        cmd.push("--gpu none".into());
    }
    cmd.push(format!("--slots {}", o.slots));
    cmd.push(format!("--exit-when-idle {}", o.idle_exit.as_secs()));
    // Node-local and per task: two tasks on one node never share a worker id or a spool.
    cmd.push("--state-dir \"${TMPDIR:-/tmp}/gaia-worker-${SLURM_JOB_ID}\"".into());
    if !o.work_args.is_empty() {
        cmd.push(
            o.work_args
                .iter()
                .map(|a| shell_quote(a))
                .collect::<Vec<_>>()
                .join(" "),
        );
    }
    line(&cmd.join(" \\\n  "));
    s
}

/// One array task as `squeue` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlurmTask {
    /// `ARRAYJOB_TASK` (`%i` with `--array`), as `scancel` takes it and as the worker's name
    /// (`slurm-<id>`) carries it.
    pub id: String,
    pub state: TaskState,
}

/// Where a task is, for scaling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting for resources: a worker that will come.
    Pending,
    /// Running (or configuring): a worker that is, or is about to be, connected.
    Running,
    /// Completing, suspended, or anything else: not a worker to count on.
    Other,
}

/// The squeue arguments that list a job name's tasks one per line for [`parse_squeue_tasks`].
pub fn squeue_args(job_name: &str, user: Option<&str>) -> Vec<String> {
    let mut a = vec![
        "--noheader".to_string(),
        "--array".into(),
        "--name".into(),
        job_name.into(),
        "--format".into(),
        "%i|%T".into(),
    ];
    if let Some(u) = user {
        a.push("--user".into());
        a.push(u.into());
    }
    a
}

/// Reads `squeue --noheader --array --format '%i|%T'` output.
pub fn parse_squeue_tasks(out: &str) -> Vec<SlurmTask> {
    out.lines()
        .filter_map(|l| {
            let (id, state) = l.trim().split_once('|')?;
            let state = match state.trim() {
                "PENDING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" => TaskState::Pending,
                "RUNNING" | "CONFIGURING" => TaskState::Running,
                _ => TaskState::Other,
            };
            Some(SlurmTask {
                id: id.trim().to_string(),
                state,
            })
        })
        .filter(|t| !t.id.is_empty())
        .collect()
}

/// The job id `sbatch --parsable` printed (`1234` or `1234;cluster`).
pub fn parse_sbatch_parsable(out: &str) -> Result<String, String> {
    let id = out.trim().split(';').next().unwrap_or("").trim();
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id.to_string())
    } else {
        Err(format!("sbatch printed no job id: {:?}", out.trim()))
    }
}

/// The worker name a task's script gives its worker (`--name slurm-<task id>`).
pub fn worker_name(task_id: &str) -> String {
    format!("slurm-{task_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_time_limits_read_as_seconds() {
        assert_eq!(parse_time("90"), Ok(5400));
        assert_eq!(parse_time("1:30"), Ok(90));
        assert_eq!(parse_time("04:00:00"), Ok(14_400));
        assert_eq!(parse_time("2-12"), Ok(216_000));
        assert_eq!(parse_time("1-00:30"), Ok(88_200));
        assert_eq!(parse_time("1-00:00:10"), Ok(86_410));
        for bad in ["", "0", "1:2:3:4", "a", "-1", "1-", "4h"] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory_sizes_read_as_mib() {
        assert_eq!(mem_mb("16G"), Some(16_384));
        assert_eq!(mem_mb("4000M"), Some(4000));
        assert_eq!(mem_mb("4000"), Some(4000));
        assert_eq!(mem_mb("1T"), Some(1_048_576));
        assert_eq!(mem_mb("2048K"), Some(2));
        assert_eq!(mem_mb("lots"), None);
        assert_eq!(mem_mb("16X"), None);
    }

    #[test]
    fn shell_quoting_keeps_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("/opt/gaia/bin/gaia"), "/opt/gaia/bin/gaia");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn options_that_slurm_or_the_worker_would_refuse_are_refused_first() {
        let ok = ScriptOptions::new("https://gaia.lab:7434", "/home/u/.gaia-token", "/opt/gaia");
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: &dyn Fn(&mut ScriptOptions)| {
            let mut o = ok.clone();
            f(&mut o);
            o.validate().unwrap_err()
        };
        assert!(bad(&|o| o.workers = 0).contains("--workers"));
        assert!(bad(&|o| o.partition = Some("gpu\n#SBATCH --x".into())).contains("--partition"));
        assert!(bad(&|o| o.time = "4h".into()).contains("time limit"));
        assert!(
            bad(&|o| {
                o.time = "2".into();
                o.signal_lead = Duration::from_secs(120);
            })
            .contains("--signal-lead")
        );
        assert!(bad(&|o| o.sbatch_args = vec!["-x".into()]).contains("--sbatch-arg"));
    }

    #[test]
    fn squeue_lines_become_tasks_and_sbatch_answers_become_ids() {
        let out = "12_0|RUNNING\n12_1|PENDING\n 13_4|COMPLETING \n\nbroken\n";
        assert_eq!(
            parse_squeue_tasks(out),
            vec![
                SlurmTask {
                    id: "12_0".into(),
                    state: TaskState::Running
                },
                SlurmTask {
                    id: "12_1".into(),
                    state: TaskState::Pending
                },
                SlurmTask {
                    id: "13_4".into(),
                    state: TaskState::Other
                },
            ]
        );
        assert_eq!(parse_sbatch_parsable("1234\n"), Ok("1234".into()));
        assert_eq!(parse_sbatch_parsable("1234;lab\n"), Ok("1234".into()));
        assert!(parse_sbatch_parsable("sbatch: error: x").is_err());
        assert_eq!(worker_name("12_0"), "slurm-12_0");
        assert_eq!(
            squeue_args("gaia-worker", Some("ana")).join(" "),
            "--noheader --array --name gaia-worker --format %i|%T --user ana"
        );
    }
}
