//! `gaia compare`: the methods of one or more studies compared, as a table or JSON. The server
//! computes (`gaia_core::study::compare`); this prints.

use gaia_core::human;
use gaia_core::protocol::{Comparison, TargetResult};
use gaia_core::stats::Interval;
use gaia_core::stats::bootstrap::{DEFAULT_RESAMPLES, MAX_RESAMPLES};
use gaia_core::study::compare::{CompareOptions, NormOverride, ScoreKind, TargetSpec};

use crate::common::{Conn, print_json, print_table};
use crate::exit;

/// The definitions, for `--help` (docs/COMPARE.md says the same at length).
pub const DEFINITIONS: &str = "Definitions (docs/COMPARE.md has them at length):
  Runs       the experiments of each method × environment (× swept params); a seed run again
             (gaia study retry) counts by its newest job. Runs that failed, were lost,
             cancelled or timed out, or have no finite score are left out and counted; queued
             and running ones make the comparison provisional.
  Score      --score final (default): the mean of the experiment's final evaluation, else its
             best-ever at the end; best_ever: the best-ever at the end; auc: the area under the
             best-ever-vs-evaluations curve over the budget, divided by the budget (a run that
             stopped early, solved, holds its last value to the end of the budget).
  Normalised per environment, (score - low) / (high - low): --norm ENV=LOW:HIGH, else the
             random and solved scores the experiments declare (run_all.py --list --json), else
             the lowest and highest score of the study's runs there (the output says which).
  Aggregates over the runs of every environment that has scored runs of every method:
             IQM = mean of the middle 50 % of all runs (25 % trimmed at each end);
             median / mean = median / mean over environments of each environment's mean;
             optimality gap = mean over runs of max(0, 1 - score).
  Intervals  95 % percentile stratified bootstrap: runs resampled with replacement within each
             environment, independently per method; --resamples (2000) and --seed (0) make it
             reproducible. Agarwal et al., NeurIPS 2021 (rliable).
  P(X > Y)   probability that a run of X scores higher than a run of Y (ties count half), per
             environment (Mann-Whitney U / n m), averaged over environments; X and Y resampled
             independently.
  Target     --target: evaluations each run needed for its best-ever to reach the target (the
             solved score by default; a normalised level such as 0.5; or ENV=SCORE). Success
             rate; ERT = evaluations spent by all runs (until the target or their end) / runs
             that reached it; ECDF over runs and ten target levels (10 %..100 % of the way).
  Seeds      --seeds-needed W: per cell, from the half-width h of the bootstrap interval of its
             mean normalised score over n runs, assuming h shrinks as 1/sqrt(n): a cell needs
             ceil(n (h / W)^2) runs.";

// Flags of how a comparison is computed, shared with `gaia export --figure` (a plain comment,
// as `Conn`'s).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct CompareFlags {
    /// How a run's score is taken: final, best_ever or auc.
    #[arg(long, value_name = "KIND")]
    pub score: Option<String>,
    /// The scores that normalise to 0 and 1 on an environment: ENV=LOW:HIGH (repeat for more).
    #[arg(long, value_name = "ENV=LOW:HIGH")]
    pub norm: Vec<String>,
    /// Bootstrap resamples per interval (default 2000).
    #[arg(long, value_name = "N")]
    pub resamples: Option<usize>,
    /// Seed of the bootstrap resamples (default 0).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
}

impl CompareFlags {
    /// The options these flags ask for.
    pub fn options(&self) -> anyhow::Result<CompareOptions> {
        let mut o = CompareOptions::default();
        if let Some(s) = &self.score {
            o.score = s.parse::<ScoreKind>()?;
        }
        for n in &self.norm {
            o.norms.push(n.parse::<NormOverride>()?);
        }
        o.boot.resamples = self.resamples.unwrap_or(DEFAULT_RESAMPLES);
        o.boot.seed = self.seed.unwrap_or(0);
        if !(1..=MAX_RESAMPLES).contains(&o.boot.resamples) {
            anyhow::bail!("--resamples must be between 1 and {MAX_RESAMPLES}");
        }
        Ok(o)
    }
}

#[derive(clap::Args)]
#[command(after_help = DEFINITIONS, after_long_help = DEFINITIONS)]
pub struct CompareArgs {
    #[command(flatten)]
    conn: Conn,
    /// The studies whose methods are compared (cells matched by method × environment).
    #[arg(required = true, value_name = "STUDY")]
    studies: Vec<String>,
    /// Print JSON (with the per-run normalised scores each method's numbers came from).
    #[arg(long)]
    json: bool,
    /// Also the aggregates per environment: --by env.
    #[arg(long, value_name = "env")]
    by: Option<String>,
    /// The fixed-target view: solved (default), a normalised level (0.5), or ENV=SCORE,...
    #[arg(long, value_name = "TARGET", num_args = 0..=1, default_missing_value = "solved")]
    target: Option<String>,
    /// Seeds each cell needs for a 95 % interval half-width of W normalised units (0.05 = 5 %
    /// of the range from random to solved).
    #[arg(long, value_name = "W")]
    seeds_needed: Option<f64>,
    #[command(flatten)]
    flags: CompareFlags,
}

pub fn run(a: CompareArgs) -> anyhow::Result<i32> {
    let mut opts = a.flags.options()?;
    opts.with = a.studies[1..].to_vec();
    match a.by.as_deref() {
        None => {}
        Some("env") => opts.by_env = true,
        Some(other) => anyhow::bail!("--by {other:?}: the one grouping is --by env"),
    }
    if let Some(t) = &a.target {
        opts.target = Some(t.parse::<TargetSpec>()?);
    }
    opts.seeds_needed = a.seeds_needed;
    opts.validate()?;
    let client = a.conn.client()?;
    let c = client.compare(&a.studies[0], &opts)?;
    if a.json {
        print_json(&c)?;
        return Ok(exit::OK);
    }
    print_comparison(&c);
    Ok(exit::OK)
}

fn iv(i: Option<Interval>) -> String {
    i.map_or("-".into(), |i| human::interval(i.estimate, i.low, i.high))
}

fn print_comparison(c: &Comparison) {
    let envs = if c.envs.is_empty() {
        "no environment".to_string()
    } else {
        c.envs.join(", ")
    };
    println!(
        "{}: {} over {}",
        c.studies.join(" + "),
        human::plural(c.methods.len() as u64, "method"),
        envs
    );
    println!("score: {} ({})", c.score.kind, c.score.definition);
    let norm: Vec<String> = c
        .normalisation
        .iter()
        .map(|n| {
            format!(
                "{} {} → {} ({})",
                n.env,
                human::score(Some(n.low)),
                human::score(Some(n.high)),
                match n.source.as_str() {
                    "shipped" => "random → solved",
                    "override" => "--norm",
                    _ => "min–max of the runs",
                }
            )
        })
        .collect();
    println!("normalised: {}", norm.join("; "));
    if c.provisional {
        println!("PROVISIONAL: the study is still running; these numbers will change");
    }
    println!();
    let rows: Vec<Vec<String>> = c
        .methods
        .iter()
        .map(|m| {
            vec![
                m.method.clone(),
                human::count(m.runs),
                iv(m.iqm),
                iv(m.median),
                iv(m.mean),
                iv(m.optimality_gap),
            ]
        })
        .collect();
    print_table(
        &["method", "runs", "IQM", "median", "mean", "optimality gap"],
        &rows,
    );
    println!(
        "{:.0} % CIs: percentile stratified bootstrap, {} resamples, seed {}",
        c.confidence * 100.0,
        human::count(c.resamples),
        c.seed
    );

    // Runs per cell, and what was left out.
    println!();
    println!("runs per method × environment (+ still to come, - left out):");
    let all_envs: Vec<&str> = c.normalisation.iter().map(|n| n.env.as_str()).collect();
    let mut header = vec!["method"];
    header.extend(all_envs.iter().copied());
    let cells: Vec<Vec<String>> = c
        .methods
        .iter()
        .map(|m| {
            let mut r = vec![m.method.clone()];
            for e in &all_envs {
                r.push(match m.cells.iter().find(|x| x.env == *e) {
                    None => "-".into(),
                    Some(x) => {
                        let mut s = x.runs.to_string();
                        if x.pending > 0 {
                            s.push_str(&format!(" +{}", x.pending));
                        }
                        if !x.left_out.is_empty() {
                            s.push_str(&format!(" -{}", x.left_out.len()));
                        }
                        s
                    }
                });
            }
            r
        })
        .collect();
    print_table(&header, &cells);
    let left: Vec<String> = c
        .methods
        .iter()
        .flat_map(|m| {
            m.cells.iter().flat_map(move |x| {
                x.left_out.iter().map(move |l| {
                    format!(
                        "  {} on {}: job {}{} {}",
                        m.method,
                        x.env,
                        l.job,
                        l.seed.map(|s| format!(" (seed {s})")).unwrap_or_default(),
                        l.why
                    )
                })
            })
        })
        .collect();
    if !left.is_empty() {
        println!("left out:");
        for l in left {
            println!("{l}");
        }
    }

    if !c.improvement.is_empty() {
        println!();
        let rows: Vec<Vec<String>> = c
            .improvement
            .iter()
            .map(|p| {
                vec![
                    format!("P({} > {})", p.x, p.y),
                    human::interval(p.p.estimate, p.p.low, p.p.high),
                ]
            })
            .collect();
        print_table(&["probability of improvement", "estimate [95 % CI]"], &rows);
    }

    for e in &c.by_env {
        println!();
        println!("{}:", e.env);
        let rows: Vec<Vec<String>> = e
            .methods
            .iter()
            .map(|m| {
                vec![
                    m.method.clone(),
                    human::count(m.runs),
                    iv(Some(m.iqm)),
                    iv(Some(m.median)),
                    iv(Some(m.mean)),
                    iv(Some(m.optimality_gap)),
                ]
            })
            .collect();
        print_table(
            &["method", "runs", "IQM", "median", "mean", "optimality gap"],
            &rows,
        );
    }

    if let Some(t) = &c.target {
        print_target(t, &c.envs, c.confidence);
    }

    if let Some(s) = &c.seeds_needed {
        println!();
        println!(
            "seeds needed for a {} half-width (normalised units) of each cell's interval:",
            human::score(Some(s.half_width))
        );
        let rows: Vec<Vec<String>> = s
            .cells
            .iter()
            .map(|x| {
                vec![
                    x.method.clone(),
                    x.env.clone(),
                    human::count(x.need.runs),
                    human::score(x.need.half_width),
                    x.need
                        .more
                        .map_or("? (needs 2 runs)".into(), |m| format!("+{m}")),
                ]
            })
            .collect();
        print_table(
            &["method", "env", "runs", "half-width now", "more seeds"],
            &rows,
        );
        println!("estimated {}", s.method);
    }

    if !c.notes.is_empty() {
        println!();
        for n in &c.notes {
            println!("note: {n}");
        }
    }
}

/// The fixed-target table; `pooled` are the environments the aggregates (and so a method's
/// pooled success rate) are over, `confidence` the intervals' coverage.
fn print_target(t: &TargetResult, pooled: &[String], confidence: f64) {
    println!();
    let targets: Vec<String> = t
        .envs
        .iter()
        .map(|e| format!("{} {}", e.env, human::score(Some(e.target))))
        .collect();
    println!("target: {} ({})", t.target, targets.join("; "));
    // An ERT bound sent as null is infinite.
    let ert = |i: Interval| {
        let inf = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
        format!(
            "{} [{}, {}]",
            human::evals(Some(inf(i.estimate))),
            human::evals(Some(inf(i.low))),
            human::evals(Some(inf(i.high)))
        )
    };
    let mut rows = Vec::new();
    for m in &t.methods {
        for x in &m.cells {
            rows.push(vec![
                m.method.clone(),
                x.env.clone(),
                format!("{} / {}", x.successes, x.runs),
                human::interval(x.success.estimate, x.success.low, x.success.high),
                ert(x.ert),
            ]);
        }
        // Pooled over the aggregated environments: a row of its own only where it pools
        // several of the method's (else it repeats one row, or has nothing to pool).
        if m.cells.iter().filter(|x| pooled.contains(&x.env)).count() > 1 {
            rows.push(vec![
                m.method.clone(),
                "(all)".into(),
                String::new(),
                human::interval(m.success.estimate, m.success.low, m.success.high),
                String::new(),
            ]);
        }
    }
    print_table(
        &[
            "method",
            "env",
            "reached",
            "success rate",
            "ERT (evaluations)",
        ],
        &rows,
    );
    println!(
        "{:.0} % CIs: success rate: Wilson score interval; ERT: bootstrap over the cell's runs \
         (a bound is inf where resamples without a success are common)",
        confidence * 100.0
    );
}
