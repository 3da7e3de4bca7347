//! Method comparison through real processes: GAIA's statistics against the reference
//! implementation (`rliable` 1.2, run in `tests/stats/.venv`); the shipped environment scores
//! against what the experiments print; a real study of the real experiments through server and
//! worker compared with `gaia compare` (table and JSON), every figure exported, and the
//! dashboard's study page and Compare view in headless Chromium; `gaia study extend` and
//! `retry` through the study route.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use gaia_core::model::{Job, JobSpec};
use gaia_core::protocol::Comparison;
use gaia_core::stats::Bootstrap;
use gaia_core::study::compare::{CompareOptions, StudyRuns, compare};
use serde_json::{Value, json};

use crate::helper::*;

fn experiments_python() -> PathBuf {
    repo_root().join("experiments/.venv/bin/python")
}

fn stats_python() -> PathBuf {
    repo_root().join("tests/stats/.venv/bin/python")
}

// ---- the shipped environment scores ------------------------------------------------------------

/// `study::envs::SHIPPED_ENVS` (what the server normalises with; it cannot run Python) holds
/// exactly the random and solved scores `run_all.py --list --json` prints.
#[test]
fn shipped_env_scores_equal_what_the_experiments_declare() {
    let python = experiments_python();
    let missing = if python.exists() {
        vec![]
    } else {
        vec!["experiments/.venv (scripts/test builds it)".to_string()]
    };
    if !prerequisites("the shipped env scores test", &missing) {
        return;
    }
    let out = Command::new(&python)
        .args(["run_all.py", "--list", "--json"])
        .current_dir(repo_root().join("experiments"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut declared = BTreeMap::new();
    for e in listed["envs"].as_array().unwrap() {
        if let (Some(r), Some(s)) = (e["random_score"].as_f64(), e["solved_score"].as_f64()) {
            declared.insert(e["name"].as_str().unwrap().to_string(), (r, s));
        }
    }
    let shipped: BTreeMap<String, (f64, f64)> = gaia_core::study::envs::SHIPPED_ENVS
        .iter()
        .map(|e| (e.name.to_string(), (e.random, e.solved)))
        .collect();
    assert_eq!(
        shipped, declared,
        "gaia-core/src/study/envs.rs is out of date with run_all.py --list --json"
    );
}

// ---- the same numbers as rliable -----------------------------------------------------------------

/// A job of the fixture: `score` None is a run whose score is NaN.
fn fixture_job(id: u64, method: &str, env: &str, seed: u64, score: Option<f64>) -> Job {
    let spec = JobSpec {
        env: Some(env.into()),
        seed: Some(seed),
        study: Some("fixture".into()),
        ..JobSpec::experiment(method, 1000)
    };
    serde_json::from_value(json!({
        "id": id, "spec": spec, "state": "succeeded", "attempt": 1, "submitted_at": 0,
        "result": {"mean": score},
        "progress": {"best_ever": score, "rows": 1},
    }))
    .unwrap()
}

/// A fixed score matrix per method: per environment, its runs (None: NaN).
type Case = (&'static str, Vec<(&'static str, Vec<Vec<Option<f64>>>)>);

fn cases() -> Vec<Case> {
    let s = |v: &[f64]| v.iter().map(|x| Some(*x)).collect::<Vec<_>>();
    // A little deterministic spread (no RNG needed for fixed matrices).
    let wave = |n: usize, phase: f64, scale: f64| -> Vec<f64> {
        (0..n)
            .map(|i| ((i as f64 * 1.7 + phase).sin() * 0.5 + 0.5) * scale)
            .collect()
    };
    vec![
        (
            "ties",
            vec![
                (
                    "a",
                    vec![
                        s(&[1.0, 1.0, 0.5, 0.5, 0.0]),
                        s(&[0.5, 0.5, 0.5, 1.0, 1.0]),
                        s(&[0.0, 0.0, 0.5, 0.5, 0.5]),
                    ],
                ),
                (
                    "b",
                    vec![
                        s(&[1.0, 0.5, 0.5, 0.5, 0.5]),
                        s(&[0.5, 0.5, 0.5, 0.5, 0.5]),
                        s(&[1.0, 0.0, 0.0, 0.5, 0.5]),
                    ],
                ),
            ],
        ),
        (
            "one env",
            vec![
                ("a", vec![s(&wave(10, 0.0, 1.2))]),
                ("b", vec![s(&wave(10, 1.0, 0.9))]),
                ("c", vec![s(&wave(10, 2.0, 1.0))]),
            ],
        ),
        (
            "unequal runs",
            vec![
                ("a", (0..4).map(|e| s(&wave(3, e as f64, 1.0))).collect()),
                (
                    "b",
                    (0..4).map(|e| s(&wave(8, 0.5 + e as f64, 0.8))).collect(),
                ),
            ],
        ),
        (
            "nan runs",
            vec![
                (
                    "a",
                    vec![
                        vec![Some(1.0), Some(0.5), Some(0.2), None, Some(0.7)],
                        vec![None, Some(0.7), Some(0.3), Some(0.9), Some(0.1)],
                    ],
                ),
                ("b", vec![s(&wave(4, 0.3, 1.0)), s(&wave(4, 1.3, 0.6))]),
            ],
        ),
        (
            "typical",
            vec![
                ("a", (0..5).map(|e| s(&wave(10, e as f64, 1.1))).collect()),
                (
                    "b",
                    (0..5).map(|e| s(&wave(10, 0.2 + e as f64, 0.9))).collect(),
                ),
                (
                    "c",
                    (0..5).map(|e| s(&wave(10, 0.4 * e as f64, 0.7))).collect(),
                ),
            ],
        ),
    ]
}

/// The case as a study: scores normalised with `norm ENV=0:1`, so normalised = raw.
fn case_study(case: &Case) -> (StudyRuns, CompareOptions) {
    let mut jobs = Vec::new();
    let mut id = 0;
    let mut envs = Vec::new();
    for (method, per_env) in &case.1 {
        for (e, runs) in per_env.iter().enumerate() {
            let env = format!("Env{e}-v0");
            if !envs.contains(&env) {
                envs.push(env.clone());
            }
            for (seed, v) in runs.iter().enumerate() {
                id += 1;
                jobs.push(fixture_job(id, method, &env, seed as u64, *v));
            }
        }
    }
    let opts = CompareOptions {
        norms: envs
            .iter()
            .map(|e| format!("{e}=0:1").parse().unwrap())
            .collect(),
        profile: true,
        ..CompareOptions::default()
    };
    (
        StudyRuns {
            name: "fixture".into(),
            jobs,
            curves: Default::default(),
        },
        opts,
    )
}

/// GAIA's point estimates equal rliable's to 1e-9, and every interval bound of both lies where
/// a bound from 2,000 resamples lies with overwhelming probability.
///
/// The tolerance: a percentile bound from B resamples is an order statistic whose rank within
/// the true bootstrap distribution is Beta-distributed around p (0.025 or 0.975) with standard
/// deviation √(p(1−p)/B) = 0.0035 for B = 2,000. Both implementations' bounds must therefore
/// lie between the distribution's quantiles at p ± 5 × 0.0035 (the 0.0075 and 0.0425
/// quantiles for the lower bound, 0.9575 and 0.9925 for the upper): outside that band by
/// chance with probability under 10⁻⁶ per bound. The quantiles come from GAIA's bootstrap
/// with 20,000 resamples (their own error in rank, 0.0011, is small beside the band); a band
/// rather than a number also holds where the bootstrap distribution is discrete (ties, few
/// runs) and a bound jumps between atoms. A different definition (another trimming, pooled
/// instead of stratified resampling, another percentile interpolation) moves the bounds well
/// outside it.
#[test]
fn gaia_statistics_equal_rliable_s() {
    let python = stats_python();
    let missing = if python.exists() {
        vec![]
    } else {
        vec!["tests/stats/.venv with rliable (scripts/test builds it)".to_string()]
    };
    if !prerequisites("the rliable comparison", &missing) {
        return;
    }
    const B: usize = 2000;
    // The band's quantiles: their own error in rank at this many resamples, 0.0011, is small
    // beside the band (±0.0175).
    const BAND: usize = 20_000;
    const TAU_STEP: usize = 5;
    let t = std::time::Instant::now();
    let mut input = Vec::new();
    let mut ours: Vec<(String, Comparison)> = Vec::new();
    let at = |study: &StudyRuns, opts: &CompareOptions, resamples, confidence| {
        let mut o = opts.clone();
        o.boot = Bootstrap {
            resamples,
            confidence,
            seed: 0,
        };
        compare(std::slice::from_ref(study), &o).unwrap()
    };
    let cases: Vec<(Case, StudyRuns, CompareOptions)> = cases()
        .into_iter()
        .map(|case| {
            let (study, opts) = case_study(&case);
            (case, study, opts)
        })
        .collect();
    for (case, study, opts) in &cases {
        let c = at(study, opts, B, 0.95);
        // NaN runs are left out and counted.
        let nans: usize = case
            .1
            .iter()
            .flat_map(|m| m.1.iter().flatten())
            .filter(|v| v.is_none())
            .count();
        let left: usize = c
            .methods
            .iter()
            .flat_map(|m| m.cells.iter().map(|x| x.left_out.len()))
            .sum();
        assert_eq!(left, nans, "{}", case.0);
        let methods: BTreeMap<&str, &Vec<Vec<Option<f64>>>> =
            case.1.iter().map(|(m, v)| (*m, v)).collect();
        // rliable's probability of improvement is pure Python (about 2 s per pair and
        // environment at 2,000 resamples on a busy core): the largest case sends one pair;
        // and its profile takes time per τ: every fifth τ of GAIA's 101 goes.
        let pairs = if case.0 == "typical" { 1 } else { usize::MAX };
        input.push(json!({
            "name": case.0,
            "reps": B,
            "taus": c.profile.as_ref().unwrap().taus.iter().step_by(TAU_STEP).collect::<Vec<_>>(),
            "pairs": c.improvement.iter().take(pairs).map(|p| [p.x.clone(), p.y.clone()]).collect::<Vec<_>>(),
            "methods": methods,
        }));
        ours.push((case.0.to_string(), c));
    }
    // rliable runs while GAIA draws the bands.
    let mut child = Command::new(&python)
        .arg(repo_root().join("tests/stats/rliable_reference.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), &json!({ "cases": input })).unwrap();
    let ours: Vec<(String, Comparison, Comparison, Comparison)> = ours
        .into_iter()
        .zip(&cases)
        .map(|((name, c), (_, study, opts))| {
            let wide = at(study, opts, BAND, 0.985);
            let narrow = at(study, opts, BAND, 0.915);
            (name, c, wide, narrow)
        })
        .collect();
    eprintln!("GAIA's statistics in {:.1}s", t.elapsed().as_secs_f64());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "rliable_reference.py failed");
    let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
    eprintln!("rliable's too in {:.1}s", t.elapsed().as_secs_f64());

    let mut checked = 0;
    for (name, c, wide, narrow) in &ours {
        let r = &theirs[name.as_str()];
        // Checks one statistic: (ours at B, the band's outer and inner intervals, rliable's).
        let mut check = |what: &str,
                         mine: gaia_core::stats::Interval,
                         outer: gaia_core::stats::Interval,
                         inner: gaia_core::stats::Interval,
                         point: f64,
                         low: f64,
                         high: f64| {
            assert!(
                (mine.estimate - point).abs() <= 1e-9,
                "{name}: {what}: GAIA {} rliable {point}",
                mine.estimate
            );
            let eps = 1e-12;
            for (who, lo, hi) in [("GAIA", mine.low, mine.high), ("rliable", low, high)] {
                assert!(
                    lo >= outer.low - eps && lo <= inner.low + eps,
                    "{name}: {what}: {who}'s lower bound {lo} outside [{}, {}]",
                    outer.low,
                    inner.low
                );
                assert!(
                    hi >= inner.high - eps && hi <= outer.high + eps,
                    "{name}: {what}: {who}'s upper bound {hi} outside [{}, {}]",
                    inner.high,
                    outer.high
                );
            }
            checked += 1;
        };
        for (i, m) in c.methods.iter().enumerate() {
            let a = &r["aggregates"][m.method.as_str()];
            let get = |k: &str, j: usize| a[k][j].as_f64().unwrap();
            let (w, n) = (&wide.methods[i], &narrow.methods[i]);
            // rliable's order: median, IQM, mean, optimality gap.
            for (j, what, mine, outer, inner) in [
                (0, "median", m.median, w.median, n.median),
                (1, "IQM", m.iqm, w.iqm, n.iqm),
                (2, "mean", m.mean, w.mean, n.mean),
                (
                    3,
                    "optimality gap",
                    m.optimality_gap,
                    w.optimality_gap,
                    n.optimality_gap,
                ),
            ] {
                check(
                    &format!("{} {what}", m.method),
                    mine.unwrap(),
                    outer.unwrap(),
                    inner.unwrap(),
                    get("point", j),
                    get("low", j),
                    get("high", j),
                );
            }
        }
        let mut pairs = 0;
        for (k, p) in c.improvement.iter().enumerate() {
            let t = &r["improvement"][format!("{},{}", p.x, p.y).as_str()];
            if t.is_null() {
                continue; // a pair not sent to rliable
            }
            pairs += 1;
            let f = |k: &str| t[k].as_f64().unwrap();
            check(
                &format!("P({} > {})", p.x, p.y),
                p.p,
                wide.improvement[k].p,
                narrow.improvement[k].p,
                f("point"),
                f("low"),
                f("high"),
            );
        }
        assert!(pairs >= 1, "{name}: no probability of improvement compared");
        let prof = c.profile.as_ref().unwrap();
        for (l, line) in prof.lines.iter().enumerate() {
            let t = &r["profile"][line.method.as_str()];
            for (k, tau) in prof.taus.iter().enumerate().step_by(TAU_STEP) {
                let f = |key: &str| t[key][k / TAU_STEP].as_f64().unwrap();
                check(
                    &format!("{} profile at τ = {tau}", line.method),
                    line.points[k],
                    wide.profile.as_ref().unwrap().lines[l].points[k],
                    narrow.profile.as_ref().unwrap().lines[l].points[k],
                    f("point"),
                    f("low"),
                    f("high"),
                );
            }
        }
    }
    assert!(checked > 250, "only {checked} statistics compared");
    eprintln!("compared {checked} statistics with rliable");
}

// ---- extend and retry through the study route ----------------------------------------------------

/// An experiments folder whose `run_all.py` prints a few generations and a final evaluation,
/// and fails for a method and seed while a file `fail-METHOD-SEED` lies beside it.
fn flaky_experiments(dir: &Path) -> PathBuf {
    let exp = dir.join("experiments");
    std::fs::create_dir_all(&exp).unwrap();
    std::fs::write(
        exp.join("run_all.py"),
        r#"import argparse, json, os, sys
p = argparse.ArgumentParser()
p.add_argument("--method"); p.add_argument("--env"); p.add_argument("--max-evals", type=int)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()
if os.path.exists(os.path.join(os.path.dirname(os.path.abspath(__file__)), f"fail-{a.method}-{a.seed}")):
    print("error: this run was made to fail", file=sys.stderr)
    sys.exit(1)
skill = {"good": 0.9, "bad": 0.4}.get(a.method, 0.6)
best = -30.0
for g in range(1, 6):
    best = max(best, -30.0 * (1 - skill * g / 5) + a.seed * 0.01)
    print(f"Gen {g} | Best: {best} | Ever: {best} | Mean: {best - 1} | Evals: {g * 20}", flush=True)
print("@gaia " + json.dumps({"final": {"mean": best}}), flush=True)
"#,
    )
    .unwrap();
    std::fs::write(exp.join("requirements.txt"), "").unwrap();
    exp
}

fn wait_study_done(server: &Server, name: &str, jobs: u64) -> Value {
    wait_for(
        &format!("study {name} to end with {jobs} jobs"),
        Duration::from_secs(180),
        || {
            let r: Value =
                serde_json::from_str(&server.cli_ok(&["study", name, "--json"])).unwrap();
            let p = &r["progress"];
            let ended = p["states"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(s, _)| *s != "queued" && *s != "running")
                .map(|(_, n)| n.as_u64().unwrap())
                .sum::<u64>();
            (p["jobs"] == jobs && ended == jobs).then_some(r)
        },
    )
}

/// `gaia study extend` adds exactly the next seeds on the study's grid (and refuses seeds it
/// ran); `gaia study retry` runs the failed run again, once; both through the study route, so
/// the study's record holds them; `gaia compare` then counts the retried seed by its new job.
#[test]
fn extend_adds_exactly_the_new_seeds_and_retry_reruns_the_failed_cell() {
    let dir = tempfile::tempdir().unwrap();
    let exp = flaky_experiments(dir.path());
    std::fs::write(exp.join("fail-bad-2"), "").unwrap();
    let server = Server::start();
    let _w = Worker::start_bin(&server, "flaky", &gaia_bin(), &exp, &["--slots", "2"]);
    server.cli_ok(&[
        "submit",
        "--study",
        "grow",
        "--method",
        "good,bad",
        "--env",
        "sphere",
        "--seeds",
        "1..3",
        "--max-evals",
        "100",
    ]);
    wait_study_done(&server, "grow", 6);
    let c: Value = serde_json::from_str(&server.cli_ok(&["compare", "grow", "--json"])).unwrap();
    let bad = c["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["method"] == "bad")
        .unwrap();
    assert_eq!(bad["cells"][0]["runs"], 2);
    assert_eq!(bad["cells"][0]["left_out"][0]["seed"], 2);
    assert_eq!(bad["cells"][0]["left_out"][0]["why"], "failed");
    let table = server.cli_ok(&["compare", "grow"]);
    assert!(
        table.contains("bad on sphere: job") && table.contains("(seed 2) failed"),
        "{table}"
    );

    // Extend: a dry run counts, then exactly seeds 4 and 5 of both methods.
    let dry = server.cli_ok(&["study", "extend", "grow", "--seeds", "+2", "--dry-run"]);
    assert!(dry.contains("would add 4 jobs (10 in all)"), "{dry}");
    let added: Value = serde_json::from_str(
        &server.cli_ok(&["study", "extend", "grow", "--seeds", "+2", "--json"]),
    )
    .unwrap();
    let mut new: Vec<(String, u64)> = added["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j[1]["method"].as_str().unwrap().to_string(),
                j[1]["seed"].as_u64().unwrap(),
            )
        })
        .collect();
    new.sort();
    assert_eq!(
        new,
        [
            ("bad".to_string(), 4),
            ("bad".to_string(), 5),
            ("good".to_string(), 4),
            ("good".to_string(), 5)
        ]
    );
    assert_eq!(added["total_jobs"], 10);
    let err = server.cli_err(&["study", "extend", "grow", "--seeds", "3..4"]);
    assert!(
        err.contains("already ran") && err.contains("seed 3"),
        "{err}"
    );
    wait_study_done(&server, "grow", 10);

    // Retry: the failed seed runs again (the file that made it fail is gone), once.
    std::fs::remove_file(exp.join("fail-bad-2")).unwrap();
    let retried: Value =
        serde_json::from_str(&server.cli_ok(&["study", "retry", "grow", "--json"])).unwrap();
    assert_eq!(retried["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(retried["jobs"][0][1]["method"], "bad");
    assert_eq!(retried["jobs"][0][1]["seed"], 2);
    let err = server.cli_err(&["study", "retry", "grow"]);
    assert!(err.contains("nothing to retry"), "{err}");
    let r = wait_study_done(&server, "grow", 11);
    let subs = r["record"]["submissions"].as_array().unwrap();
    let via: Vec<&str> = subs
        .iter()
        .map(|s| s["via"].as_str().unwrap_or("sweep"))
        .collect();
    assert_eq!(via, ["sweep", "extend", "retry"]);
    assert_eq!(subs[2]["retries"].as_array().unwrap().len(), 1);
    let c: Value = serde_json::from_str(&server.cli_ok(&["compare", "grow", "--json"])).unwrap();
    for m in c["methods"].as_array().unwrap() {
        assert_eq!(m["runs"], 5, "{m}");
        assert_eq!(
            m["cells"][0]["left_out"].as_array().unwrap().len(),
            0,
            "{m}"
        );
    }
    assert!(
        c["notes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n.as_str().unwrap().contains("a retry")),
        "{c}"
    );
    // The study route checks what it is given.
    let (status, body) = http(
        "POST",
        &format!("{}/api/v1/studies/grow/extend", server.url()),
        Some(&server.token),
        Some(("application/json", br#"{"seeds": "+0"}"#.to_vec())),
    );
    assert_eq!(status, 400, "{body}");
    let (status, _) = http(
        "POST",
        &format!("{}/api/v1/studies/nope/retry", server.url()),
        Some(&server.token),
        Some(("application/json", b"{}".to_vec())),
    );
    assert_eq!(status, 404);
}

// ---- a real study, end to end --------------------------------------------------------------------

fn browser_ready() -> Vec<String> {
    let mut missing = Vec::new();
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if !chromium.exists() {
        missing.push(format!(
            "{} (apt-get install -y chromium)",
            chromium.display()
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node (apt-get install -y nodejs npm)".into());
    }
    if !repo_root()
        .join("tests/browser/node_modules/playwright-core")
        .exists()
    {
        missing
            .push("tests/browser/node_modules/playwright-core (cd tests/browser && npm ci)".into());
    }
    missing
}

/// A real study — the analytic sphere and CartPole, three methods, five seeds each, small
/// budgets — run by a real worker on the real experiments, then compared: `gaia compare` as a
/// table and as JSON (the stable shape docs/API.md describes), per environment, against the
/// solved target and with seeds needed; every figure exported as a PNG of the size asked; the
/// scores export; and the dashboard's study page and Compare view in headless Chromium
/// (screenshots and the figures kept in test-artifacts/compare).
#[test]
fn a_real_study_compared_end_to_end() {
    let python = experiments_python();
    let mut missing = if python.exists() {
        vec![]
    } else {
        vec!["experiments/.venv (scripts/test builds it)".to_string()]
    };
    let browser = browser_ready();
    missing.extend(browser.iter().cloned());
    if !prerequisites("the real study's comparison", &missing) {
        return;
    }
    let artifacts = repo_root().join("test-artifacts/compare");
    std::fs::create_dir_all(&artifacts).unwrap();
    let server = Server::start();
    let python = python.display().to_string();
    let mut worker = Worker::start_bin(
        &server,
        "real",
        &gaia_bin(),
        &repo_root().join("experiments"),
        &["--python", &python, "--slots", "2"],
    );
    let t = std::time::Instant::now();
    // Small budgets; one study of two submissions, as the envs take different params: sphere
    // as shipped, CartPole with few episodes per evaluation and a short validation (settings
    // of the env, the same for every method: they do not split a method in the comparison).
    let common = [
        "submit",
        "--study",
        "cc",
        "--method",
        "cma_es,openai_es,random_search",
        "--seeds",
        "1..5",
        "--max-evals",
        "400",
    ];
    server.cli_ok(&[&common[..], &["--env", "sphere"]].concat());
    server.cli_ok(
        &[
            &common[..],
            &[
                "--env",
                "CartPole-v1",
                "--param",
                "eval_episodes=2",
                "--param",
                "validation_episodes=10",
                "--param",
                "final_episodes=5",
            ],
        ]
        .concat(),
    );
    let report = wait_study_done(&server, "cc", 30);
    eprintln!("the real study ran in {:.1}s", t.elapsed().as_secs_f64());
    assert_eq!(report["progress"]["states"]["succeeded"], 30, "{report}");

    // The table.
    let table = server.cli_ok(&["compare", "cc"]);
    for needle in [
        "IQM",
        "OPTIMALITY GAP",
        "cma_es",
        "openai_es",
        "random_search",
        "sphere -30 → -1e-8",
        "random → solved",
        "runs per method × environment",
        "P(cma_es > openai_es)",
        "95 % CIs: percentile stratified bootstrap, 2,000 resamples, seed 0",
    ] {
        assert!(table.contains(needle), "{needle:?} not in\n{table}");
    }
    assert!(!table.contains("PROVISIONAL"), "{table}");
    // The JSON: per method iqm / median / mean / optimality_gap as {estimate, low, high}, the
    // normalised per-run scores by env, and how they were computed.
    let c: Value = serde_json::from_str(&server.cli_ok(&["compare", "cc", "--json"])).unwrap();
    assert_eq!(c["score"]["kind"], "final");
    assert_eq!(c["resamples"], 2000);
    assert_eq!(c["seed"], 0);
    assert_eq!(c["provisional"], false);
    assert_eq!(c["envs"], json!(["sphere", "CartPole-v1"]));
    for n in c["normalisation"].as_array().unwrap() {
        assert_eq!(n["source"], "shipped", "{n}");
    }
    for m in c["methods"].as_array().unwrap() {
        assert_eq!(m["runs"], 10, "{m}");
        for k in ["iqm", "median", "mean", "optimality_gap"] {
            let i = &m[k];
            let (e, lo, hi) = (
                i["estimate"].as_f64().unwrap(),
                i["low"].as_f64().unwrap(),
                i["high"].as_f64().unwrap(),
            );
            assert!(
                lo <= e + 1e-12 && e <= hi + 1e-12,
                "{k} of {}: {i}",
                m["method"]
            );
        }
        for env in ["sphere", "CartPole-v1"] {
            assert_eq!(m["scores"][env].as_array().unwrap().len(), 5, "{m}");
        }
    }
    assert_eq!(c["improvement"].as_array().unwrap().len(), 3);
    // The same again: the same interval (seeded).
    let again: Value = serde_json::from_str(&server.cli_ok(&["compare", "cc", "--json"])).unwrap();
    assert_eq!(again["methods"], c["methods"]);
    let more = server.cli_ok(&[
        "compare",
        "cc",
        "--by",
        "env",
        "--target",
        "--seeds-needed",
        "0.05",
    ]);
    for needle in [
        "sphere:",
        "CartPole-v1:",
        "target: solved",
        "ERT",
        "SUCCESS RATE",
        "MORE SEEDS",
        "estimated from the half-width",
        "CIs: success rate: Wilson score interval",
    ] {
        assert!(more.contains(needle), "{needle:?} not in\n{more}");
    }
    let t: Value =
        serde_json::from_str(&server.cli_ok(&["compare", "cc", "--json", "--target", "solved"]))
            .unwrap();
    let cma = &t["target"]["methods"][0];
    assert_eq!(cma["cells"].as_array().unwrap().len(), 2);
    assert!(cma["ecdf"].is_array());
    // A success rate's interval keeps a width, even at none or all of the runs (Wilson's).
    for cell in cma["cells"].as_array().unwrap() {
        let i = &cell["success"];
        let (e, lo, hi) = (
            i["estimate"].as_f64().unwrap(),
            i["low"].as_f64().unwrap(),
            i["high"].as_f64().unwrap(),
        );
        assert!(lo <= e && e <= hi && lo < hi, "{cell}");
    }

    // Every figure, as a PNG of the size asked; and the scores.
    let out = artifacts.clone();
    for f in ["aggregate", "profile", "improvement", "curves", "ecdf"] {
        let file = out.join(format!("study-cc-{f}.png"));
        let _ = std::fs::remove_file(&file);
        server.cli_in(
            &out,
            &[
                "export", "--study", "cc", "--png", "--figure", f, "--size", "1200x800",
            ],
        );
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(png_size(&bytes), (1200, 800), "{f}");
        assert!(bytes.len() > 20_000, "{f}: {} bytes", bytes.len());
    }
    let scores_file = out.join("study-cc-scores.json");
    server.cli_in(
        &out,
        &["export", "--study", "cc", "--json", "--figure", "scores"],
    );
    let s: Value = serde_json::from_slice(&std::fs::read(&scores_file).unwrap()).unwrap();
    assert_eq!(s["records"].as_array().unwrap().len(), 30);
    assert_eq!(s["matrices"]["cma_es"].as_array().unwrap().len(), 5);
    assert_eq!(s["envs"], json!(["sphere", "CartPole-v1"]));
    let err = server.cli_err(&["export", "--study", "cc", "--csv", "--figure", "profile"]);
    assert!(err.contains("--png"), "{err}");

    // The dashboard: the studies list, the study's cells, its Compare view, a seed added.
    worker.kill9();
    let browser = std::process::Command::new("node")
        .arg("compare.mjs")
        .current_dir(repo_root().join("tests/browser"))
        .env("SERVER", server.url())
        .env("TOKEN", &server.token)
        .env("STUDY", "cc")
        .env("JOBS", "30")
        .env("ARTIFACTS", artifacts.display().to_string())
        .status()
        .unwrap();
    assert!(
        browser.success(),
        "the browser test failed (its output is above)"
    );
}
