//! `gaia serve`.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use gaia_core::server::{self, ServerConfig, load_or_create_admin_token};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 7434)]
    pub port: u16,
    /// Address to bind (0.0.0.0: reachable by workers on other machines).
    #[arg(long, default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Where the database, result files and releases live.
    #[arg(long, env = "GAIA_DATA_DIR", default_value = "./gaia-data")]
    pub data_dir: PathBuf,
    /// Admin token. Without one, a random token is generated once, printed and kept in
    /// <data-dir>/admin.token (mode 0600).
    #[arg(long, env = "GAIA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Seconds without a heartbeat before a job's lease expires and it is requeued.
    #[arg(long, default_value_t = 30.0, value_name = "SECS")]
    pub lease_timeout: f64,
    /// Seconds between worker heartbeats (told to workers when they register).
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub heartbeat: f64,
    /// Largest release file an admin may upload, in MiB (streamed to disk, never held in
    /// memory).
    #[arg(long, default_value_t = 512, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub max_release_mib: u64,
    /// Largest result file a worker may upload, in MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub max_file_mib: u64,
    /// Seconds between keep-alive pings on idle event streams (tests shorten it).
    #[arg(long, hide = true, default_value_t = 15.0, value_name = "SECS")]
    pub event_keepalive: f64,
}

pub fn run(a: ServeArgs) -> anyhow::Result<i32> {
    if !(a.lease_timeout > 0.0 && a.heartbeat > 0.0 && a.heartbeat < a.lease_timeout) {
        anyhow::bail!("--heartbeat must be positive and shorter than --lease-timeout");
    }
    let from_env = a.token.is_some()
        && std::env::var_os("GAIA_TOKEN")
            .is_some_and(|v| Some(v.to_string_lossy().trim()) == a.token.as_deref().map(str::trim));
    let (token, generated) = match a.token.as_deref().map(str::trim) {
        Some(t) if !t.is_empty() => {
            if t.len() < 8 {
                anyhow::bail!("--token must be at least 8 characters");
            }
            (t.to_string(), false)
        }
        _ => load_or_create_admin_token(&a.data_dir)?,
    };
    let mut config = ServerConfig::new(a.data_dir.clone(), token.clone());
    config.queue.lease_timeout = Duration::from_secs_f64(a.lease_timeout);
    config.queue.heartbeat_interval = Duration::from_secs_f64(a.heartbeat);
    config.max_release = a.max_release_mib << 20;
    config.max_file = a.max_file_mib << 20;
    if !(a.event_keepalive > 0.0 && a.event_keepalive <= 3600.0) {
        anyhow::bail!("--event-keepalive must be between 0 and 3600 seconds");
    }
    config.event_keepalive = Duration::from_secs_f64(a.event_keepalive);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gaia-serve")
        .build()?;
    // The database first: a data dir another server holds is reported before we say we listen.
    let prepared = {
        let _guard = rt.enter();
        server::prepare(config)?
    };
    rt.block_on(async move {
        let addr = SocketAddr::new(a.bind, a.port);
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} (is another gaia serve running? try --port)")
        })?;
        let local = listener.local_addr()?;
        let shown = if local.ip().is_unspecified() {
            SocketAddr::new(IpAddr::from([127, 0, 0, 1]), local.port())
        } else {
            local
        };
        // Signal handlers first: once we say we listen, SIGTERM must be a clean stop.
        let shutdown = server::shutdown_signal();
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "gaia {} listening on http://{local}",
            gaia_core::VERSION
        )?;
        writeln!(out, "dashboard: http://{shown}/")?;
        writeln!(out, "data: {}", a.data_dir.display())?;
        if generated {
            writeln!(
                out,
                "admin token (generated; kept in {}): {token}",
                a.data_dir
                    .join(gaia_core::server::ADMIN_TOKEN_FILE)
                    .display()
            )?;
        } else if a.token.is_none() {
            writeln!(
                out,
                "admin token: in {} (clients on this machine find it with --data-dir {} or GAIA_DATA_DIR)",
                a.data_dir
                    .join(gaia_core::server::ADMIN_TOKEN_FILE)
                    .display(),
                a.data_dir.display()
            )?;
        } else if from_env {
            writeln!(
                out,
                "admin token: the value of GAIA_TOKEN (unset it to use the one kept in the data dir)"
            )?;
        } else {
            writeln!(out, "admin token: the one given with --token")?;
        }
        out.flush()?;
        drop(out);
        prepared.run(listener, shutdown).await?;
        eprintln!("gaia serve: stopped cleanly");
        Ok(0)
    })
}
