//! Embeds a GAIA worker in your own program: it registers with a server, takes the jobs that fit
//! and runs them, until Ctrl-C (once: finish running jobs; twice: give them back).
//!
//! ```sh
//! GAIA_SERVER=http://127.0.0.1:7434 GAIA_TOKEN=... \
//!   cargo run -p gaia-core --example embedded_worker -- ./experiments
//! ```

use std::time::Duration;

use gaia_core::model::JobKind;
use gaia_core::worker::{self, Shutdown, WorkerConfig, hardware::GpuChoice};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The worker starts this program again as the reaper that kills its jobs if it is killed.
    worker::reaper::run_if_asked();
    let server = std::env::var("GAIA_SERVER").unwrap_or_else(|_| "http://127.0.0.1:7434".into());
    let token = std::env::var("GAIA_TOKEN")?;
    let experiments = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "./experiments".into());

    let mut config = WorkerConfig::new(&server, &token, experiments);
    config.name = "embedded".into();
    config.state_dir = worker::default_state_dir(&config.name);
    config.gpus = GpuChoice::None;
    config.slots = 2;
    config.kinds = vec![JobKind::Experiment, JobKind::Hash, JobKind::Wait];
    config.exit_when_idle = Some(Duration::from_secs(600));

    let shutdown = Shutdown::new();
    shutdown.install_signal_handlers();
    let summary = worker::run(config, shutdown)?;
    println!(
        "worker {} ran {} job(s)",
        summary.worker_id, summary.jobs_run
    );
    Ok(())
}
