//! `gaia submit`, `jobs`, `show`, `cancel`, `logs`, `files`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use gaia_core::client::{Output, OutputOptions};
use gaia_core::grammar::format_gen_line;
use gaia_core::model::{Job, JobKind, JobSpec, JobState, Task};
use gaia_core::protocol::JobQuery;

use gaia_core::human;

use crate::common::{Conn, print_json, print_table};
use crate::exit;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  gaia submit --method cma_es --max-evals 100000
  gaia submit --method openai_es --env CartPole-v1 --seed 3 --param pop_size=64 --priority 5
  gaia submit --kind hash --input hello
  gaia submit --kind command -- python3 my_experiment.py --lr 0.1
  gaia submit --study classic-control --method cma_es,openai_es --env CartPole-v1,Acrobot-v1 \\
      --seeds 1..5 --max-evals 50000 --param pop_size=32,64")]
pub struct SubmitArgs {
    #[command(flatten)]
    conn: Conn,
    /// Job kind: experiment, command, or a built-in (reverse, hash, sum, upper, wait).
    #[arg(long, default_value = "experiment")]
    kind: JobKind,
    /// Optimisation method of an experiment: cma_es, openai_es, random_search, island_model,
    /// curriculum_cma_es, neuromod_cma_es, neuromod_island, hybrid_cma_ff, indirect_encoding,
    /// ppo (`run_all.py --list` in experiments/ says each one's params)
    #[arg(long)]
    method: Option<String>,
    /// Environment of an experiment (default CartPole-v1).
    #[arg(long, alias = "environment")]
    env: Option<String>,
    /// Evaluation budget of an experiment (default 100000).
    #[arg(long, allow_negative_numbers = true)]
    max_evals: Option<u64>,
    /// Seed of an experiment.
    #[arg(long)]
    seed: Option<u64>,
    /// A method parameter, KEY=VALUE (VALUE as JSON if it parses: 64, 0.3, [32,32], true).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    params: Vec<String>,
    /// Input of a built-in job.
    #[arg(long)]
    input: Option<String>,
    /// Higher runs first.
    #[arg(long, default_value_t = 0, allow_negative_numbers = true)]
    priority: i32,
    /// GPUs the job needs.
    #[arg(long, default_value_t = 0)]
    gpus: u32,
    /// Memory (MiB) the worker must have.
    #[arg(long, default_value_t = 0)]
    memory_mb: u64,
    /// A tag the worker must carry (repeatable).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// A label shown in lists.
    #[arg(long)]
    name: Option<String>,
    /// Kill the job after this many seconds (timed_out).
    #[arg(long, value_name = "SECS")]
    timeout: Option<u64>,
    /// Attempts before a job whose workers keep vanishing is lost.
    #[arg(long, default_value_t = gaia_core::model::DEFAULT_MAX_ATTEMPTS)]
    max_attempts: u32,
    /// Resource limits of the job's processes: mem=SIZE (the whole job, by cgroup where the
    /// worker may make one, else per process), cpu=TIME (CPU time per process; `time=` too),
    /// files=N (open files per process), output=SIZE (largest file written, and all result
    /// files together). Sizes: 512M, 8G; times: 90s, 30m, 2h. A job over a limit fails with
    /// the limit named; each is capped by the worker's `--max-limit`.
    #[arg(long, value_name = "KEY=VALUE,...", value_parser = parse_limits)]
    limit: Option<gaia_core::model::Limits>,
    /// Wait for the job to end, showing progress; exit 0 only if it succeeded.
    #[arg(long)]
    wait: bool,
    /// Print the job as JSON instead of its id.
    #[arg(long)]
    json: bool,
    /// Command kind: the program and its arguments (after --).
    #[arg(last = true)]
    argv: Vec<String>,
    #[command(flatten)]
    sweep: crate::study::SweepArgs,
}

pub fn submit(a: SubmitArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    let mut spec = JobSpec {
        kind: a.kind,
        name: a.name,
        method: a.method,
        env: a.env,
        max_evals: a.max_evals,
        seed: a.seed,
        input: a.input,
        priority: a.priority,
        max_attempts: a.max_attempts,
        timeout_secs: a.timeout,
        argv: a.argv,
        limits: a.limit.unwrap_or_default(),
        ..JobSpec::default()
    };
    spec.requirements.gpus = a.gpus;
    spec.requirements.memory_mb = a.memory_mb;
    spec.requirements.tags = a.tags;
    for p in &a.params {
        let (k, v) = gaia_core::study::parse_param(p)?;
        spec.params.insert(k, v);
    }
    if spec.kind == JobKind::Experiment && spec.method.is_none() {
        anyhow::bail!(
            "an experiment needs --method (e.g. --method cma_es); for other jobs pass --kind"
        );
    }
    if spec.kind == JobKind::Experiment
        && let Some(m) = &spec.method
    {
        crate::common::warn_unknown_methods(m.split(',').map(str::trim));
    }
    if crate::study::wanted(&a.sweep) && a.limit.is_some() {
        anyhow::bail!(
            "--limit is for single jobs; a study's jobs run under each worker's --max-limit"
        );
    }
    if crate::study::wanted(&a.sweep) {
        if a.wait {
            anyhow::bail!("--wait follows one job; follow a study with: gaia study NAME");
        }
        return crate::study::submit(&client, spec, &a.params, &a.sweep, a.json);
    }
    crate::study::refuse_sweep_without_study(
        &a.sweep,
        spec.method.as_deref(),
        spec.env.as_deref(),
    )?;
    let id = client.submit(&spec)?;
    crate::common::note_if_unrunnable(&client, &spec);
    if !a.wait {
        if a.json {
            print_json(&client.job(id)?)?;
        } else {
            println!("{id}");
        }
        return Ok(exit::OK);
    }
    eprintln!("submitted job {id}");
    let job = wait_with_progress(&client, id)?;
    if a.json {
        print_json(&job)?;
    } else {
        print_outcome(&job);
    }
    Ok(if job.state == JobState::Succeeded {
        exit::OK
    } else {
        exit::JOB_FAILED
    })
}

fn print_outcome(job: &Job) {
    let took = job.duration_ms().map(human::duration).unwrap_or_default();
    match job.state {
        JobState::Succeeded => {
            println!("job {} succeeded in {took}", job.id);
            if let Some(r) = &job.result {
                println!("result: {}", render_result(r));
            }
            if let Some(b) = job.progress.best_ever {
                println!("best ever: {}", human::score(Some(b)));
            }
        }
        s => {
            println!("job {} {s}", job.id);
            if let Some(e) = &job.error {
                println!("{e}");
            }
        }
    }
}

fn render_result(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Waits for a job, drawing a one-line progress display on a terminal.
fn wait_with_progress(client: &gaia_core::client::Client, id: u64) -> anyhow::Result<Job> {
    let tty = std::io::stderr().is_terminal();
    let mut last_line = String::new();
    let mut samples: Vec<(std::time::Instant, f64)> = Vec::new();
    let job = client.wait(id, |job| {
        let line = progress_line(job, &mut samples);
        if line != last_line {
            if tty {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
            let _ = std::io::stderr().flush();
            last_line = line;
        }
    })?;
    if tty {
        eprintln!();
    }
    Ok(job)
}

fn progress_line(job: &Job, samples: &mut Vec<(std::time::Instant, f64)>) -> String {
    let p = &job.progress;
    match job.state {
        JobState::Queued => format!("job {} queued (attempt {})", job.id, job.attempt + 1),
        JobState::Running => {
            let frac = p.fraction.unwrap_or(0.0);
            let width = 30;
            let filled = ((frac * width as f64).round() as usize).min(width);
            let bar = format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled));
            let mut s = format!("job {} {bar} {:>3.0}%", job.id, frac * 100.0);
            if let Some(g) = p.generation {
                s.push_str(&format!(" gen {g}"));
            }
            if let Some(b) = p.best_ever.or(p.best) {
                s.push_str(&format!(" best {}", human::score(Some(b))));
            }
            if let Some(e) = p.evals {
                let now = std::time::Instant::now();
                samples.push((now, e));
                samples.retain(|(t, _)| now.duration_since(*t) < Duration::from_secs(30));
                if let (Some(first), Some(last)) = (samples.first(), samples.last()) {
                    let dt = last.0.duration_since(first.0).as_secs_f64();
                    if dt > 1.0 && last.1 > first.1 {
                        let rate = (last.1 - first.1) / dt;
                        s.push_str(&format!(" {} evals/s", human::evals(Some(rate))));
                    }
                }
            }
            if let Some(eta) = p.eta_secs {
                let bound = if p.eta_bound { "≤ " } else { "" };
                s.push_str(&format!(" ETA {bound}{}", human::seconds(eta)));
            }
            s
        }
        s => format!("job {} {s}", job.id),
    }
}

#[derive(clap::Args)]
pub struct JobsArgs {
    #[command(flatten)]
    conn: Conn,
    /// Only jobs in this state (queued, running, succeeded, failed, timed_out, cancelled, lost).
    #[arg(long)]
    state: Option<JobState>,
    /// Only jobs of this study.
    #[arg(long)]
    study: Option<String>,
    /// Only your own jobs (those of the user your token acts for).
    #[arg(long, conflicts_with = "user")]
    mine: bool,
    /// Only the jobs of this user.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// How many jobs to list.
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Only jobs with an id below this (the next page).
    #[arg(long)]
    before: Option<u64>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn list(a: JobsArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    let page = client.jobs(&JobQuery {
        state: a.state,
        study: a.study,
        owner: a.user,
        mine: a.mine,
        before: a.before,
        limit: Some(a.limit),
    })?;
    if a.json {
        print_json(&page)?;
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = page
        .jobs
        .iter()
        .map(|j| {
            vec![
                j.id.to_string(),
                j.state.to_string(),
                j.owner.clone(),
                j.spec.name.clone().unwrap_or_else(|| j.spec.describe()),
                j.worker_name.clone().unwrap_or_else(|| "-".into()),
                j.progress
                    .fraction
                    .map(human::percent)
                    .unwrap_or_else(|| "-".into()),
                human::score(j.progress.best_ever.or(j.progress.best)),
                human::ago(j.submitted_at),
            ]
        })
        .collect();
    print_table(
        &[
            "id",
            "state",
            "owner",
            "job",
            "worker",
            "progress",
            "best",
            "submitted",
        ],
        &rows,
    );
    if let Some(next) = page.next_before {
        eprintln!(
            "({} of {} shown; next page: --before {next})",
            page.jobs.len(),
            page.total
        );
    }
    Ok(exit::OK)
}

#[derive(clap::Args)]
pub struct ShowArgs {
    #[command(flatten)]
    conn: Conn,
    /// Job id.
    id: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn show(a: ShowArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    let job = client.job(a.id)?;
    if a.json {
        print_json(&job)?;
        return Ok(exit::OK);
    }
    let s = &job.spec;
    println!("job {}  {}", job.id, job.state);
    println!("owner:      {}", job.owner);
    if let Some(n) = &s.name {
        println!("name:       {n}");
    }
    println!("kind:       {}", s.kind());
    match &s.task {
        Task::Experiment(e) => {
            println!("method:     {}", e.method);
            println!("env:        {}", e.env);
            println!("max evals:  {}", human::count(e.max_evals));
            println!(
                "seed:       {}",
                e.seed
                    .map(|v| v.to_string())
                    .unwrap_or("- (the experiment's default)".into())
            );
            if !s.params.is_empty() {
                println!("params:     {}", serde_json::to_string(&s.params)?);
            }
        }
        Task::Command { argv, .. } => println!("argv:       {}", argv.join(" ")),
        Task::Builtin { input, .. } => println!("input:      {input}"),
    }
    if let Some(st) = &s.study {
        println!("study:      {st}");
    }
    println!("priority:   {}", s.priority);
    let r = &s.requirements;
    if r.gpus > 0 || r.memory_mb > 0 || !r.tags.is_empty() {
        println!(
            "needs:      {} GPU(s), {} MiB, tags [{}]",
            r.gpus,
            r.memory_mb,
            r.tags.join(", ")
        );
    }
    println!("attempt:    {} of {}", job.attempt, s.max_attempts);
    println!("submitted:  {}", human::time(job.submitted_at));
    if let Some(t) = job.started_at {
        println!("started:    {}", human::time(t));
    }
    if let Some(t) = job.finished_at {
        println!("finished:   {}", human::time(t));
    }
    if let Some(d) = job.duration_ms() {
        println!("duration:   {}", human::duration(d));
    }
    if let Some(w) = &job.worker_name {
        println!("worker:     {w} ({})", job.worker.as_deref().unwrap_or("-"));
    }
    if job.cancel_requested {
        println!("cancel:     requested");
    }
    let p = &job.progress;
    if p.rows > 0 {
        println!(
            "progress:   {}, generation {}, evals {}, best {}, best ever {}, mean {}, sigma {}",
            human::plural(p.rows, "row"),
            p.generation.map(human::count).unwrap_or("-".into()),
            human::evals(p.evals),
            human::score(p.best),
            human::score(p.best_ever),
            human::score(p.mean),
            human::score(p.sigma)
        );
    }
    if let Some(st) = &p.status {
        println!("status:     {st}");
    }
    if let Some(code) = job.exit_code {
        println!("exit code:  {code}");
    }
    if let Some(res) = &job.result {
        println!("result:     {}", render_result(res));
    }
    if job.log_lines > 0 {
        println!(
            "log:        {} ({}, {}){}",
            human::plural(job.log_lines, "line"),
            human::plural(job.warnings, "warning"),
            human::plural(job.errors, "error"),
            if job.log_dropped > 0 {
                format!(", {} oldest dropped", human::count(job.log_dropped))
            } else {
                String::new()
            }
        );
    }
    if !job.files.is_empty() {
        println!("files:");
        let name_w = job.files.iter().map(|f| f.name.len()).max().unwrap_or(0);
        let size_w = job
            .files
            .iter()
            .map(|f| human::bytes(f.size).len())
            .max()
            .unwrap_or(0);
        for f in &job.files {
            println!(
                "  {:<name_w$}  {:>size_w$}  sha256 {}",
                f.name,
                human::bytes(f.size),
                &f.sha256[..16.min(f.sha256.len())]
            );
        }
    }
    if job.attempts.len() > 1
        || job
            .attempts
            .iter()
            .any(|a| a.outcome.is_some() && job.state == JobState::Queued)
    {
        println!("attempts:");
        for at in &job.attempts {
            println!(
                "  #{} on {} at {}: {}",
                at.attempt,
                if at.worker_name.is_empty() {
                    &at.worker
                } else {
                    &at.worker_name
                },
                human::time(at.started_at),
                at.outcome.as_deref().unwrap_or("running")
            );
        }
    }
    if let Some(e) = &job.error {
        println!("error:\n{e}");
    }
    Ok(exit::OK)
}

#[derive(clap::Args)]
pub struct CancelArgs {
    #[command(flatten)]
    conn: Conn,
    /// Job ids.
    #[arg(required = true)]
    ids: Vec<u64>,
}

pub fn cancel(a: CancelArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    let mut code = exit::OK;
    for id in a.ids {
        match client.cancel(id) {
            Ok(job) if job.state == JobState::Cancelled => println!("job {id} cancelled"),
            Ok(_) => println!("job {id}: cancel requested; its worker stops it within seconds"),
            Err(e) => {
                eprintln!("gaia: job {id}: {e}");
                code = exit::ERROR;
            }
        }
    }
    Ok(code)
}

#[derive(clap::Args)]
#[command(
    after_help = "Generation lines are written from the stored rows in the order the \
experiment printed them among its log lines: `Gen 12 | Best: 187.3 | Ever: 201 | ...`."
)]
pub struct LogsArgs {
    #[command(flatten)]
    conn: Conn,
    /// Job id.
    id: u64,
    /// Show everything from the start, then keep following the output until the job ends.
    #[arg(short, long)]
    follow: bool,
    /// Leave out the generation lines: the log lines only.
    #[arg(long)]
    no_gens: bool,
    /// Only the last N lines (log and generation lines).
    #[arg(long)]
    tail: Option<usize>,
}

pub fn logs(a: LogsArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    let mut out = std::io::stdout().lock();
    let opts = OutputOptions {
        follow: a.follow,
        gens: !a.no_gens,
        tail: a.tail,
    };
    client.job_output(a.id, &opts, &mut |piece| {
        match piece {
            Output::Log(l) => writeln!(out, "{}", l.text)?,
            Output::Gen { row, .. } => writeln!(out, "{}", format_gen_line(&row))?,
        }
        // Lines appear as they come while following.
        if a.follow { out.flush() } else { Ok(()) }
    })?;
    out.flush()?;
    Ok(exit::OK)
}

#[derive(clap::Args)]
pub struct FilesArgs {
    #[command(flatten)]
    conn: Conn,
    /// Job id.
    id: u64,
    /// Folder to download into (default: list the files only).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn files(a: FilesArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    let list = client.files(a.id)?;
    let Some(dir) = a.out else {
        let rows: Vec<Vec<String>> = list
            .files
            .iter()
            .map(|f| vec![f.name.clone(), human::bytes(f.size), f.sha256.clone()])
            .collect();
        print_table(&["name", "size", "sha256"], &rows);
        return Ok(exit::OK);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for f in &list.files {
        let path = client.download_job_file(a.id, &f.name, &dir)?;
        println!("{}", path.display());
    }
    Ok(exit::OK)
}

/// `--limit` / `--max-limit`: `mem=8G,cpu=2h,...`.
pub fn parse_limits(s: &str) -> Result<gaia_core::model::Limits, String> {
    gaia_core::model::Limits::parse(s).map_err(|e| e.to_string())
}
