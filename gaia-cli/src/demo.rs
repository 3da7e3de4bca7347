//! `gaia demo`: the whole product on one machine — a server on the embedded redb default, a
//! local worker, and a small study of the real experiments — until Ctrl-C. It prints one link
//! that logs the browser in, and says when the study has finished and where to look.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use gaia_core::client::{Client, DEFAULT_SERVER};
use gaia_core::human;
use gaia_core::model::{JobSpec, JobState};
use gaia_core::server::{self, ServerConfig, load_or_create_admin_token};
use gaia_core::worker::{self, Shutdown, WorkerConfig, hardware::GpuChoice};

use crate::exit;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Port of the server.
    #[arg(long, default_value_t = 7434)]
    port: u16,
    /// Address to bind.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Data directory of the server.
    #[arg(long, default_value = "./gaia-data")]
    data_dir: PathBuf,
    /// Folder with run_all.py and requirements.txt.
    #[arg(long, default_value = "./experiments")]
    experiments_dir: PathBuf,
    /// Python to run experiments with (default: a virtualenv the worker builds once).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Submit no demo jobs (just server + worker).
    #[arg(long)]
    no_jobs: bool,
}

/// The name of the demo study.
const DEMO_STUDY: &str = "demo";

/// What a command in the user's shell needs to reach this demo: nothing when it runs on the
/// defaults (the client finds the admin token in ./gaia-data), else the server and data dir.
fn shell_prefix(url: &str, data_dir: &Path) -> String {
    let mut prefix = String::new();
    if url != DEFAULT_SERVER {
        prefix.push_str(&format!("GAIA_SERVER={url} "));
    }
    if data_dir != Path::new("./gaia-data") {
        prefix.push_str(&format!("GAIA_DATA_DIR={} ", data_dir.display()));
    }
    prefix
}

/// The demo study, a few minutes on a 2-core machine: two methods on every environment, so
/// its comparison (`gaia compare demo`, the dashboard's Compare view) has something to compare
/// — the fast sphere objective first (results within seconds), then CartPole with two seeds
/// each (each solves it in about a second of evaluation and stops), then a longer Pendulum run
/// of each to watch learning curves grow on the dashboard (a few minutes).
fn demo_jobs() -> Vec<JobSpec> {
    let job = |method: &str, env: &str, evals: u64, seed: u64, priority: i32| {
        let mut s = JobSpec::experiment(method, evals);
        s.env = Some(env.into());
        s.seed = Some(seed);
        s.study = Some(DEMO_STUDY.into());
        s.priority = priority;
        s
    };
    let mut jobs = Vec::new();
    for (env, evals, seeds, priority) in [
        ("sphere", 5_000, &[1, 2][..], 3),
        ("CartPole-v1", 20_000, &[1, 2][..], 2),
        ("Pendulum-v1", 10_000, &[1][..], 1),
    ] {
        for method in DEMO_METHODS {
            for &seed in seeds {
                jobs.push(job(method, env, evals, seed, priority));
            }
        }
    }
    jobs
}

/// The demo's methods: each runs on every environment.
const DEMO_METHODS: [&str; 2] = ["cma_es", "openai_es"];

pub fn run(a: DemoArgs) -> anyhow::Result<i32> {
    let (token, _) = load_or_create_admin_token(&a.data_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let addr = SocketAddr::new(a.bind, a.port);
    let listener = rt
        .block_on(server::listen(addr))
        .with_context(|| format!("cannot listen on {addr} (try --port)"))?;
    let local = listener.local_addr()?;
    // A link for this machine's browser: loopback, even when listening on every interface.
    let shown = if local.ip().is_unspecified() {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), local.port())
    } else {
        local
    };
    let url = format!("http://{shown}");
    let config = ServerConfig::new(a.data_dir.clone(), token.clone());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(async move {
        server::run(listener, config, async {
            let _ = stop_rx.await;
        })
        .await
    });

    let shutdown = Shutdown::new();
    let mut wcfg = WorkerConfig::new(&url, &token, a.experiments_dir.clone());
    wcfg.name = "demo-worker".into();
    wcfg.state_dir = a.data_dir.join("demo-worker");
    wcfg.gpus = GpuChoice::Auto;
    wcfg.python = a.python;
    let w_shutdown = shutdown.clone();
    // The worker ending on its own (it cannot start: no experiments, a bad Python) ends the
    // demo with its error, instead of leaving a server whose jobs nobody runs.
    let (worker_ended, worker_end) = tokio::sync::oneshot::channel::<()>();
    let worker = std::thread::spawn(move || {
        let result = worker::run(wcfg, w_shutdown);
        let _ = worker_ended.send(());
        result
    });

    let client = Client::new(&url, Some(token.clone()))?;
    let mut watch = false;
    if !a.no_jobs {
        let existing = client.jobs(&gaia_core::protocol::JobQuery {
            study: Some(DEMO_STUDY.into()),
            limit: Some(1),
            ..Default::default()
        })?;
        if existing.total == 0 {
            let ids = client.submit_batch(demo_jobs())?;
            println!(
                "submitted the demo study: jobs {}",
                ids.iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        } else {
            println!(
                "the demo study is already there ({})",
                human::plural(existing.total, "job")
            );
        }
        watch = true;
    }
    // One link that logs the browser in: the token rides in the fragment, which a browser never
    // sends to the server (so it is in no log), and the dashboard takes it out of the address
    // bar once read.
    let link = format!("{url}/#token={token}");
    println!();
    println!("GAIA is running.");
    println!("  dashboard: {link}");
    let shell = shell_prefix(&url, &a.data_dir);
    println!("  try:       {shell}gaia jobs");
    println!("Ctrl-C stops the server and the worker.");
    if watch {
        // Says when the study is done, with where to look; the server keeps serving.
        std::thread::spawn(move || {
            if let Ok(report) = client.wait_study(DEMO_STUDY, |_| {}) {
                let states = JobState::ALL
                    .iter()
                    .filter_map(|s| {
                        report
                            .progress
                            .states
                            .get(s.as_str())
                            .map(|n| format!("{} {s}", human::count(*n)))
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                println!();
                println!(
                    "The demo study has finished: {} ({states}).",
                    human::plural(report.progress.jobs, "job")
                );
                println!("  see it:    {link}  (charts: compare the methods)");
                println!("  or:        {shell}gaia study {DEMO_STUDY}");
                println!(
                    "  a figure:  {shell}gaia export --study {DEMO_STUDY} --png   (study-{DEMO_STUDY}.png)"
                );
                println!("GAIA keeps serving until Ctrl-C.");
            }
        });
    }

    // Ctrl-C: stop the worker (give its job back) and the server.
    rt.block_on(async {
        tokio::select! {
            _ = server::shutdown_signal() => {}
            _ = worker_end => {}
        }
    });
    shutdown.now();
    let worker = worker.join();
    let _ = stop_tx.send(());
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
    });
    match worker {
        Ok(Err(e)) => Err(anyhow::anyhow!("the demo's worker stopped: {e}")),
        Err(_) => Err(anyhow::anyhow!("the demo's worker panicked")),
        Ok(Ok(_)) => Ok(exit::OK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_demo_method_runs_on_every_demo_environment() {
        // A comparison aggregates over the environments every method has runs on: with a gap
        // in the grid, the demo's Compare view would have nothing to show.
        let cells: Vec<(String, String)> = demo_jobs()
            .into_iter()
            .map(|j| {
                let s = gaia_core::model::Spec::from(j);
                (s.method().unwrap().into(), s.env().unwrap().into())
            })
            .collect();
        let envs: std::collections::BTreeSet<_> = cells.iter().map(|c| &c.1).collect();
        assert_eq!(envs.len(), 3);
        for env in &envs {
            for method in DEMO_METHODS {
                assert!(
                    cells.iter().any(|c| &&c.1 == env && c.0 == method),
                    "{method} on {env}"
                );
            }
        }
        // tests/worker.rs counts them.
        assert_eq!(cells.len(), 10);
    }
}
