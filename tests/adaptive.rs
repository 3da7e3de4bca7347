//! Adaptive studies end to end, with the real experiments: early stopping prunes hopeless
//! configurations at their first rung and saves most of the budget, decisions survive a server
//! restart, samplers and tpe through the CLI.

use std::time::Duration;

use gaia_core::model::JobState;
use gaia_core::protocol::StudyReport;

use crate::helper::*;

const LONG: Duration = Duration::from_secs(180);

/// The experiments' venv (scripts/test builds it), or None when the test cannot run here.
fn python() -> Option<std::path::PathBuf> {
    let python = repo_root().join("experiments/.venv/bin/python");
    let missing = if python.exists() {
        vec![]
    } else {
        vec!["experiments/.venv (scripts/test builds it)".to_string()]
    };
    prerequisites("the adaptive study test", &missing).then_some(python)
}

/// `n` real workers (one slot each) running the repository's experiments.
fn real_workers(server: &Server, python: &std::path::Path, n: usize) -> Vec<Worker> {
    let exp = repo_root().join("experiments");
    let py = python.display().to_string();
    (1..=n)
        .map(|i| {
            Worker::start_bin(
                server,
                &format!("real-{i}"),
                &gaia_bin(),
                &exp,
                &["--python", &py, "--slots", "1"],
            )
        })
        .collect()
}

/// Submits a study of openai_es on sphere (400,000 evals: about five seconds, long enough that
/// the half second a stop takes to reach a run is a small part of it) over four learning rates:
/// the first learns, the other three are too small to learn anything.
fn submit(server: &Server, name: &str, extra: &[&str]) {
    let mut args = vec![
        "submit",
        "--study",
        name,
        "--method",
        "openai_es",
        "--env",
        "sphere",
        "--max-evals",
        "400000",
        "--param",
        "lr=0.05,1e-7,5e-7,1e-6",
    ];
    args.extend_from_slice(extra);
    server.cli_ok(&args);
}

fn study(server: &Server, name: &str) -> StudyReport {
    server.client().study(name).unwrap()
}

fn wait_done(server: &Server, name: &str) -> StudyReport {
    wait_for(&format!("study {name} to end"), LONG, || {
        let r = study(server, name);
        r.done.then_some(r)
    })
}

/// Evaluations the study's jobs really did.
fn evals_spent(r: &StudyReport) -> f64 {
    r.jobs.iter().filter_map(|j| j.evals).sum()
}

#[test]
fn early_stopping_prunes_hopeless_configurations_and_saves_the_budget() {
    let Some(python) = python() else { return };
    let mut server = Server::start();
    // One slot: configurations reach each rung in queue order, the learning one first. (ASHA
    // judges each arrival against what the rung holds so far, so the first to arrive always
    // goes on: with several slots a hopeless one may be first and pass its first rung.)
    let _workers = real_workers(&server, &python, 1);
    // The same study twice: without early stopping, then with ASHA (rung 0 at 4,000 evals, 1 %
    // of the budget).
    submit(&server, "full", &[]);
    let full = wait_done(&server, "full");
    assert!(full.jobs.iter().all(|j| j.state == JobState::Succeeded));
    submit(
        &server,
        "asha",
        &[
            "--early-stop",
            "asha(metric=best_ever, min_evals=4000, eta=3)",
        ],
    );
    // Restart the server once the first configuration is pruned: nothing decided is decided
    // again or undone.
    let before = wait_for("a configuration to be pruned", LONG, || {
        let r = study(&server, "asha");
        r.configs
            .iter()
            .any(|c| c.state == "pruned")
            .then_some(r.configs)
    });
    server.kill9();
    server.restart();
    let asha = wait_done(&server, "asha");
    for c in before.iter().filter(|c| c.state == "pruned") {
        let after = asha.configs.iter().find(|a| a.id == c.id).unwrap();
        assert_eq!(
            after.state, "pruned",
            "the restart undid a decision: {after:?}"
        );
        assert_eq!(after.pruned, c.pruned, "a decision was made twice");
    }
    // The three hopeless learning rates are pruned at the first rung; the good one runs on.
    let pruned: Vec<_> = asha
        .configs
        .iter()
        .filter(|c| c.state == "pruned")
        .collect();
    assert_eq!(pruned.len(), 3, "{:#?}", asha.configs);
    assert!(pruned.iter().all(|c| c.rung == Some(0)), "{pruned:#?}");
    let good = asha
        .configs
        .iter()
        .find(|c| c.params["lr"] == serde_json::json!(0.05))
        .unwrap();
    assert_eq!(good.state, "done");
    assert!(
        asha.jobs
            .iter()
            .filter(|j| j.state == JobState::Pruned)
            .count()
            == 3,
        "{:#?}",
        asha.jobs
    );
    // Each pruning is recorded once.
    let events = server.client().events(None, 1000).unwrap().events;
    let pruned_events = events.iter().filter(|e| e.kind == "config_pruned").count();
    assert_eq!(pruned_events, 3, "{events:#?}");
    assert!(
        events
            .iter()
            .any(|e| e.kind == "study_done" && e.message.contains("asha"))
    );
    // The same best configuration, for at most 40 % of the evaluations.
    let best = |r: &StudyReport| {
        r.jobs
            .iter()
            .max_by(|a, b| {
                a.best_ever
                    .unwrap_or(f64::MIN)
                    .total_cmp(&b.best_ever.unwrap_or(f64::MIN))
            })
            .map(|j| j.params["lr"].clone())
    };
    assert_eq!(best(&full), best(&asha));
    let (spent, all) = (evals_spent(&asha), evals_spent(&full));
    eprintln!(
        "[adaptive] early stopping spent {spent} of {all} evaluations ({:.0} %)",
        100.0 * spent / all
    );
    assert!(spent <= 0.4 * all, "{spent} of {all}");
}

#[test]
fn sampled_and_model_based_studies_run_through_the_cli() {
    let Some(python) = python() else { return };
    let server = Server::start();
    let _workers = real_workers(&server, &python, 2);
    for (name, sampler) in [("rnd", "random"), ("sob", "sobol"), ("tpe", "tpe")] {
        server.cli_ok(
            &[
                "submit",
                "--study",
                name,
                "--method",
                "openai_es",
                "--env",
                "sphere",
                "--max-evals",
                "2000",
                "--param",
                "lr=loguniform(1e-3,1e-1)",
                "--param",
                "pop_size=choice(20,40)",
                "--sampler",
                sampler,
                "--samples",
                "4",
                "--sample-seed",
                "3",
                "--parallel",
                "2",
            ][..if sampler == "tpe" { 21 } else { 19 }],
        );
    }
    for name in ["rnd", "sob", "tpe"] {
        let r = wait_done(&server, name);
        assert_eq!(r.configs.len(), 4, "{name}: {:#?}", r.configs);
        let distinct: std::collections::BTreeSet<String> = r
            .configs
            .iter()
            .map(|c| serde_json::to_string(&c.params).unwrap())
            .collect();
        assert_eq!(distinct.len(), 4, "{name}: a configuration twice");
        assert!(r.incumbent.is_some());
        for c in &r.configs {
            let lr = c.params["lr"].as_f64().unwrap();
            assert!((1e-3..=1e-1).contains(&lr), "{lr}");
        }
        let out = server.cli_ok(&["study", name]);
        assert!(out.contains("incumbent: config"), "{out}");
        assert!(out.contains("done: every job has ended"), "{out}");
    }
    // The same seed draws the same configurations (a second study, same definition).
    server.cli_ok(&[
        "submit",
        "--study",
        "rnd2",
        "--method",
        "openai_es",
        "--env",
        "sphere",
        "--max-evals",
        "2000",
        "--param",
        "lr=loguniform(1e-3,1e-1)",
        "--param",
        "pop_size=choice(20,40)",
        "--sampler",
        "random",
        "--samples",
        "4",
        "--sample-seed",
        "3",
    ]);
    let params = |name: &str| {
        let mut v: Vec<String> = study(&server, name)
            .configs
            .iter()
            .map(|c| serde_json::to_string(&c.params).unwrap())
            .collect();
        v.sort();
        v
    };
    assert_eq!(params("rnd"), params("rnd2"));
    // A malformed space is a clear error naming the bad part.
    let out = server.cli(&[
        "submit",
        "--study",
        "bad",
        "--method",
        "openai_es",
        "--param",
        "lr=loguniform(0,1)",
        "--sampler",
        "random",
        "--samples",
        "3",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loguniform needs 0 < LOW"), "{err}");
}
