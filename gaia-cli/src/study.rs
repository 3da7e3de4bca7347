//! `gaia submit --study` (sweeps), `gaia study NAME`, `gaia studies`.

use std::io::IsTerminal;

use anyhow::Context;
use gaia_core::client::Client;
use gaia_core::model::JobSpec;
use gaia_core::model::Sampler;
use gaia_core::protocol::{Axis, ParamInput, RuleInput, StudyProgress, StudySubmit, SweepInput};
use gaia_core::study::{
    CONFIRM_STUDY_JOBS, Definition, parse_list, parse_param_sweep, parse_seeds,
};

use gaia_core::human;

use crate::common::{Conn, print_json, print_table};
use crate::exit;

// The sweep flags of `gaia submit` (a plain comment, as `Conn`'s).
#[derive(clap::Args, Debug, Default)]
pub struct SweepArgs {
    /// Submit a study: every combination of --method a,b × --env x,y × --param k=v1,v2 ×
    /// --seeds becomes one job of the study NAME.
    #[arg(long, value_name = "NAME")]
    pub study: Option<String>,
    /// Seeds of a study: 1..5 (inclusive), 1,2,7 or a mix (1..3,10).
    #[arg(long, value_name = "SEEDS")]
    pub seeds: Option<String>,
    /// Submit the study again even if it already holds this very definition.
    #[arg(long)]
    pub again: bool,
    /// Confirm a study of more than 10,000 jobs.
    #[arg(long)]
    pub yes: bool,
    /// How configurations are picked: grid (default: every combination of the --param
    /// values), random, sobol (quasi-random, evenly spread) or tpe (model-based: each new
    /// configuration chosen from the results so far). With a sampler, --param may also be a
    /// range: 'lr=loguniform(1e-3,1e-1)', 'sigma=uniform(0.02,0.5)', 'n=int(2,8)',
    /// 'pop_size=choice(32,64,128)'.
    #[arg(long, value_name = "SAMPLER", value_parser = parse_sampler)]
    pub sampler: Option<Sampler>,
    /// Configurations the sampler draws (each runs every --seeds).
    #[arg(long, value_name = "N")]
    pub samples: Option<u64>,
    /// The sampler's seed (default 0): the same seed draws the same configurations, whatever
    /// the number of workers.
    #[arg(long, value_name = "SEED")]
    pub sample_seed: Option<u64>,
    /// tpe: configurations in flight at most (default 4); the next is proposed as one ends.
    #[arg(long, value_name = "N")]
    pub parallel: Option<u32>,
    /// Stop configurations that fall behind, decided on the server as rows arrive:
    /// 'asha(metric=best_ever, min_evals=5000, eta=3[, max_rungs=4])' (asynchronous successive
    /// halving: below the top 1/eta at a rung of min_evals × eta^k evaluations) or
    /// 'median(metric=best_ever, min_evals=5000, every=5000[, min_configs=3])' (below the
    /// median of the others). Stopped jobs end `pruned` and keep their rows.
    #[arg(long, value_name = "RULE")]
    pub early_stop: Option<String>,
}

fn parse_sampler(s: &str) -> Result<Sampler, String> {
    s.parse::<Sampler>().map_err(|e| e.to_string())
}

/// Whether `gaia submit` was asked for a study.
pub fn wanted(sweep: &SweepArgs) -> bool {
    sweep.study.is_some()
}

/// Refuses sweep syntax on a plain submit with a message that says what to add.
pub fn refuse_sweep_without_study(
    sweep: &SweepArgs,
    method: Option<&str>,
    env: Option<&str>,
) -> anyhow::Result<()> {
    if sweep.seeds.is_some() {
        anyhow::bail!("--seeds sweeps a study: add --study NAME (or pass one --seed)");
    }
    if sweep.again || sweep.yes {
        anyhow::bail!("--again and --yes apply to a study: add --study NAME");
    }
    if sweep.sampler.is_some()
        || sweep.samples.is_some()
        || sweep.sample_seed.is_some()
        || sweep.parallel.is_some()
        || sweep.early_stop.is_some()
    {
        anyhow::bail!(
            "--sampler, --samples, --sample-seed, --parallel and --early-stop shape a study: add --study NAME"
        );
    }
    for (flag, v) in [("--method", method), ("--env", env)] {
        if let Some(v) = v.filter(|v| v.contains(',')) {
            anyhow::bail!("{flag} {v:?} lists several values: a sweep needs --study NAME");
        }
    }
    Ok(())
}

/// Submits a study from `gaia submit` flags. `template` holds everything but the sweep (its
/// method and env are the raw `a,b` lists; `raw_params` the raw `--param` flags).
pub fn submit(
    client: &Client,
    mut template: JobSpec,
    raw_params: &[String],
    sweep: &SweepArgs,
    json: bool,
) -> anyhow::Result<i32> {
    let name = sweep.study.clone().unwrap_or_default();
    let methods = match template.method.take() {
        Some(m) => parse_list("--method", &m)?,
        None => anyhow::bail!("a study needs --method (e.g. --method cma_es,openai_es)"),
    };
    let envs = match template.env.take() {
        Some(e) => parse_list("--env", &e)?,
        None => Vec::new(),
    };
    let seeds = match (&sweep.seeds, template.seed.take()) {
        (Some(_), Some(_)) => anyhow::bail!("give either --seed or --seeds, not both"),
        (Some(s), None) => parse_seeds("--seeds", s)?,
        (None, Some(s)) => vec![s],
        (None, None) => Vec::new(),
    };
    template.params.clear();
    let mut params = Vec::new();
    for p in raw_params {
        params.push(parse_param_sweep(p)?);
    }
    let mut req = StudySubmit {
        name: name.clone(),
        template,
        sweep: SweepInput {
            methods: Axis::List(methods),
            envs: Axis::List(envs),
            seeds: Axis::List(seeds),
            params: params.into_iter().map(ParamInput::Axis).collect(),
        },
        again: sweep.again,
        confirm_large: sweep.yes,
        dry_run: false,
        sampler: sweep.sampler,
        samples: sweep.samples,
        sample_seed: sweep.sample_seed,
        parallel: sweep.parallel,
        early_stop: sweep.early_stop.clone().map(RuleInput::Text),
    };
    let def = Definition::of(&req)?;
    let n = def.job_count();
    if n > CONFIRM_STUDY_JOBS && !sweep.yes {
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            eprint!("study {name} expands to {n} jobs. Submit them all? [y/N] ");
            let mut answer = String::new();
            std::io::stdin().read_line(&mut answer)?;
            if !matches!(answer.trim(), "y" | "Y" | "yes") {
                eprintln!("nothing submitted");
                return Ok(exit::ERROR);
            }
            req.confirm_large = true;
        } else {
            anyhow::bail!(
                "study {name} expands to {n} jobs (more than {CONFIRM_STUDY_JOBS}): pass --yes to submit them"
            );
        }
    }
    let done = client
        .submit_study(&req)
        .with_context(|| format!("could not submit study {name}"))?;
    if json {
        print_json(&done)?;
        return Ok(exit::OK);
    }
    let keys: Vec<String> = def.sweep.params.iter().map(|p| p.key.clone()).collect();
    let mut header = vec!["id", "method", "env", "seed"];
    header.extend(keys.iter().map(String::as_str));
    let rows: Vec<Vec<String>> = done
        .jobs
        .iter()
        .map(|(id, s)| {
            let mut r = vec![
                id.to_string(),
                s.method.clone().unwrap_or_default(),
                s.env.clone().unwrap_or_default(),
                s.seed.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
            ];
            for k in &keys {
                r.push(s.params.get(k).map(|v| v.to_string()).unwrap_or_default());
            }
            r
        })
        .collect();
    print_table(&header, &rows);
    let n = done.jobs.len();
    if done.extended {
        eprintln!(
            "study {}: {n} {} added ({} in all); watch it with: gaia study {}",
            done.study,
            if n == 1 { "job" } else { "jobs" },
            done.total_jobs,
            done.study
        );
    } else {
        eprintln!(
            "study {}: {n} {} submitted; watch it with: gaia study {}",
            done.study,
            if n == 1 { "job" } else { "jobs" },
            done.study
        );
    }
    if let Some((_, spec)) = done.jobs.first() {
        crate::common::note_if_unrunnable(client, spec);
    }
    Ok(exit::OK)
}

/// `512,000 / 1,000,000 evals (51%)`.
fn progress_text(p: &StudyProgress) -> String {
    format!(
        "{} / {} evals ({})",
        human::evals(Some(p.evals_done)),
        human::evals(Some(p.evals_total)),
        human::percent(p.fraction)
    )
}

fn eta_text(p: &StudyProgress) -> String {
    match (p.eta_secs, p.eta_note.as_deref()) {
        (Some(_), Some("done")) => "done".into(),
        (Some(s), _) if p.eta_bound => format!("≤ {}", human::seconds(s)),
        (Some(s), _) => human::seconds(s),
        (None, Some(why)) => format!("unknown ({why})"),
        (None, None) => "unknown".into(),
    }
}

fn states_text(p: &StudyProgress) -> String {
    gaia_core::model::JobState::ALL
        .iter()
        .filter_map(|s| p.states.get(s.as_str()).map(|n| format!("{n} {s}")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `gaia study --help` and `gaia studies --help` end with: how a study is made.
const CREATE_A_STUDY: &str = "A study is created by submitting its sweep: every combination of \
methods × environments × --param values × seeds becomes one job of the study.
  gaia submit --study NAME --method cma_es,openai_es --seeds 1..5 --max-evals 50000
  gaia submit --study NAME --method cma_es --env CartPole-v1,Acrobot-v1 --seeds 1..3 \\
      --param pop_size=32,64
Submitting to the same name again adds jobs (the same definition twice needs --again).
Then:
  gaia study NAME                      progress, ETA, best per method × environment
  gaia compare NAME                    the methods compared, with 95 % intervals
  gaia export --study NAME --png       the methods compared, one panel per environment
  gaia study extend NAME --seeds +5    five more seeds on the same grid
  gaia study retry NAME                run the failed and lost runs again";

#[derive(clap::Args)]
#[command(
    after_help = CREATE_A_STUDY,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct StudyArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    action: Option<StudyAction>,
    /// The study's name.
    #[arg(required = true)]
    name: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum StudyAction {
    /// Add seeds to the study's grid: every method × environment × params it ran gets them.
    /// `+5` takes the next five seed numbers after the highest the study used; a seed a
    /// configuration already ran is refused.
    Extend(ExtendArgs),
    /// Run again the runs of the study that failed, were lost or timed out (the newest job of
    /// each method × environment × params × seed; the old job stays, `gaia compare` counts the
    /// new one).
    Retry(RetryArgs),
}

#[derive(clap::Args)]
struct ExtendArgs {
    /// The study's name.
    name: String,
    /// The seeds to add: +N (the next N seed numbers) or a list as --seeds takes it (11..15).
    #[arg(long, value_name = "SEEDS", allow_hyphen_values = true)]
    seeds: String,
    /// Say what would be submitted, submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Confirm more than 10,000 new jobs.
    #[arg(long)]
    yes: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct RetryArgs {
    /// The study's name.
    name: String,
    /// Also run again the runs that were cancelled.
    #[arg(long)]
    cancelled: bool,
    /// Say what would be submitted, submit nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// What `gaia study extend` and `retry` print: the new jobs, then a line saying so.
fn print_more(
    done: &gaia_core::protocol::StudySubmitted,
    what: &str,
    json: bool,
) -> anyhow::Result<i32> {
    if json {
        print_json(done)?;
        return Ok(exit::OK);
    }
    if done.dry_run {
        println!(
            "study {}: {what} would add {} ({} in all); nothing submitted",
            done.study,
            human::plural(done.planned, "job"),
            done.total_jobs
        );
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = done
        .jobs
        .iter()
        .map(|(id, s)| {
            let mut config = s.method.clone().unwrap_or_default();
            for (k, v) in &s.params {
                config.push_str(&format!(" {k}={v}"));
            }
            vec![
                id.to_string(),
                config,
                s.env.clone().unwrap_or_default(),
                s.seed.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(&["id", "method", "env", "seed"], &rows);
    eprintln!(
        "study {}: {what} added {} ({} in all); watch it with: gaia study {}",
        done.study,
        human::plural(done.jobs.len() as u64, "job"),
        done.total_jobs,
        done.study
    );
    Ok(exit::OK)
}

pub fn show(a: StudyArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    match a.action {
        Some(StudyAction::Extend(e)) => {
            let done = client
                .extend_study(
                    &e.name,
                    &gaia_core::protocol::StudyExtend {
                        seeds: e.seeds.clone(),
                        confirm_large: e.yes,
                        dry_run: e.dry_run,
                    },
                )
                .with_context(|| format!("could not extend study {}", e.name))?;
            return print_more(&done, "extend", e.json);
        }
        Some(StudyAction::Retry(r)) => {
            let done = client
                .retry_study(
                    &r.name,
                    &gaia_core::protocol::StudyRetry {
                        cancelled: r.cancelled,
                        dry_run: r.dry_run,
                    },
                )
                .with_context(|| format!("could not retry study {}", r.name))?;
            return print_more(&done, "retry", r.json);
        }
        None => {}
    }
    let name = a.name.unwrap_or_default();
    let r = client.study(&name)?;
    if a.json {
        print_json(&r)?;
        return Ok(exit::OK);
    }
    let p = &r.progress;
    match &r.record {
        Some(rec) => println!(
            "study {}  by {}  created {}  {} in {}",
            r.name,
            rec.owner,
            human::time(rec.created_at),
            human::plural(p.jobs, "job"),
            human::plural(rec.submissions.len() as u64, "submission")
        ),
        None => println!("study {}  {}", r.name, human::plural(p.jobs, "job")),
    }
    if r.done {
        println!("state:     done: every job has ended");
    }
    println!("progress:  {}  ({})", progress_text(p), states_text(p));
    match p.evals_per_sec {
        Some(rate) => println!(
            "speed:     {} evals/s  ETA {}",
            human::evals(Some(rate)),
            eta_text(p)
        ),
        None => println!("ETA:       {}", eta_text(p)),
    }
    println!();
    let groups: Vec<Vec<String>> = r
        .groups
        .iter()
        .map(|g| {
            let mut label = g.method.clone();
            for (k, v) in &g.params {
                label.push_str(&format!(" {k}={v}"));
            }
            let (best, max) = match &g.best {
                Some(b) => (
                    format!(
                        "{} ± {} (n={})",
                        human::score(Some(b.mean)),
                        b.std
                            .map(|s| human::score(Some(s)))
                            .unwrap_or_else(|| "-".into()),
                        b.n
                    ),
                    human::score(Some(b.max)),
                ),
                None => ("-".into(), "-".into()),
            };
            vec![
                label,
                g.env.clone(),
                human::count(g.jobs),
                human::count(g.succeeded),
                best,
                max,
            ]
        })
        .collect();
    print_table(
        &[
            "method",
            "env",
            "jobs",
            "succeeded",
            "best ever: mean ± std over seeds",
            "max",
        ],
        &groups,
    );
    println!();
    if !r.configs.is_empty() {
        let configs: Vec<Vec<String>> = r
            .configs
            .iter()
            .map(|c| {
                let params: Vec<String> =
                    c.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let state = match (&c.pruned, c.state.as_str()) {
                    (Some(why), _) => format!("pruned {why}"),
                    (None, s) => s.to_string(),
                };
                let mark = if r.incumbent == Some(c.id) { " *" } else { "" };
                vec![
                    format!("{}{mark}", c.id),
                    state,
                    c.rung.map(|k| k.to_string()).unwrap_or_else(|| "-".into()),
                    human::score(c.best),
                    human::score(c.score),
                    params.join(" "),
                ]
            })
            .collect();
        print_table(
            &["config", "state", "rung", "best so far", "score", "params"],
            &configs,
        );
        if let Some(c) = r
            .incumbent
            .and_then(|i| r.configs.iter().find(|c| c.id == i))
        {
            println!(
                "incumbent: config {} (*), {}",
                c.id,
                c.params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
        }
        println!();
    }
    let jobs: Vec<Vec<String>> = r
        .jobs
        .iter()
        .map(|j| {
            let mut config = j.method.clone();
            for (k, v) in &j.params {
                config.push_str(&format!(" {k}={v}"));
            }
            vec![
                j.id.to_string(),
                j.state.to_string(),
                config,
                j.env.clone(),
                j.seed.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                format!(
                    "{} / {}",
                    human::evals(j.evals),
                    human::evals(Some(j.max_evals as f64))
                ),
                human::score(j.best_ever),
                j.worker.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(
        &[
            "id", "state", "method", "env", "seed", "evals", "best", "worker",
        ],
        &jobs,
    );
    Ok(exit::OK)
}

#[derive(clap::Args)]
#[command(after_help = CREATE_A_STUDY)]
pub struct StudiesArgs {
    #[command(flatten)]
    conn: Conn,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn list(a: StudiesArgs) -> anyhow::Result<i32> {
    let client = a.conn.client()?;
    let list = client.studies()?;
    if a.json {
        print_json(&list)?;
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = list
        .studies
        .iter()
        .map(|s| {
            let p = &s.progress;
            vec![
                s.name.clone(),
                s.owner.clone().unwrap_or_else(|| "-".into()),
                human::count(p.jobs),
                human::percent(p.fraction),
                states_text(p),
                eta_text(p),
                s.created_at.map(human::ago).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(
        &[
            "study", "owner", "jobs", "progress", "states", "eta", "created",
        ],
        &rows,
    );
    Ok(exit::OK)
}
