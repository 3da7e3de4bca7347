//! `gaia demo`: the whole product on one machine — a server on the embedded redb default, a
//! local worker, and a small study of the real experiments — until Ctrl-C.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use gaia_core::client::Client;
use gaia_core::model::JobSpec;
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

/// The demo study, a few minutes on a 2-core machine: the fast sphere objective first (results
/// within seconds), then two methods on CartPole with two seeds each (each solves it in about a
/// second of evaluation and stops), then a longer Pendulum run to watch a learning curve grow on
/// the dashboard (a few minutes).
fn demo_jobs() -> Vec<JobSpec> {
    let job = |method: &str, env: &str, evals: u64, priority: i32| {
        let mut s = JobSpec::experiment(method, evals);
        s.env = Some(env.into());
        s.seed = Some(1);
        s.study = Some("demo".into());
        s.priority = priority;
        s
    };
    let mut jobs = vec![
        job("cma_es", "sphere", 5_000, 3),
        job("random_search", "sphere", 5_000, 3),
    ];
    for method in ["cma_es", "openai_es"] {
        for seed in [1, 2] {
            let mut s = job(method, "CartPole-v1", 20_000, 2);
            s.seed = Some(seed);
            jobs.push(s);
        }
    }
    jobs.push(job("openai_es", "Pendulum-v1", 10_000, 1));
    jobs
}

pub fn run(a: DemoArgs) -> anyhow::Result<i32> {
    let (token, _) = load_or_create_admin_token(&a.data_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let addr = SocketAddr::new(a.bind, a.port);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("cannot listen on {addr} (try --port)"))?;
    let url = format!("http://{}", listener.local_addr()?);
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
    let worker = std::thread::spawn(move || worker::run(wcfg, w_shutdown));

    let client = Client::new(&url, Some(token.clone()))?;
    if !a.no_jobs {
        let existing = client.jobs(&gaia_core::protocol::JobQuery {
            study: Some("demo".into()),
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
            println!("the demo study is already there ({} jobs)", existing.total);
        }
    }
    println!();
    println!("GAIA is running.");
    println!("  dashboard: {url}/");
    println!("  token:     {token}");
    println!("  try:       GAIA_SERVER={url} GAIA_TOKEN={token} gaia jobs");
    println!("Ctrl-C stops the server and the worker.");

    // Ctrl-C: stop the worker (give its job back) and the server.
    rt.block_on(server::shutdown_signal());
    shutdown.now();
    let _ = worker.join();
    let _ = stop_tx.send(());
    rt.block_on(async {
        let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
    });
    Ok(exit::OK)
}
