//! `gaia serve`.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use gaia_core::server::{self, ServerConfig, load_or_create_admin_token};

use crate::common::parse_secs;

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 7434)]
    pub port: u16,
    /// Address to listen on. The default, 127.0.0.1, lets only this machine in (a reverse proxy
    /// such as Caddy on it, or workers on it); 0.0.0.0 listens on every interface, so workers on
    /// other machines can connect directly.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Where the database, result files and releases live.
    #[arg(long, env = "GAIA_DATA_DIR", default_value = "./gaia-data")]
    pub data_dir: PathBuf,
    /// Admin token. Without one, a random token is generated once, printed and kept in
    /// <data-dir>/admin.token (mode 0600).
    #[arg(long, env = "GAIA_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Seconds without a heartbeat before a job's lease expires and it is requeued.
    #[arg(long, default_value = "30", value_name = "SECS", value_parser = parse_secs)]
    pub lease_timeout: Duration,
    /// Seconds between worker heartbeats (told to workers when they register).
    #[arg(long, default_value = "5", value_name = "SECS", value_parser = parse_secs)]
    pub heartbeat: Duration,
    /// Largest release file an admin may upload, in MiB (streamed to disk, never held in
    /// memory).
    #[arg(long, default_value_t = 512, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub max_release_mib: u64,
    /// Largest result file a worker may upload, in MiB.
    #[arg(long, default_value_t = 256, value_name = "MIB", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    pub max_file_mib: u64,
    /// Most workers the registry holds. It lives in memory and answers every heartbeat; the
    /// cap keeps a runaway (a script or autoscaler registering new workers in a loop) from
    /// growing the server without bound. A new worker past it takes the place of the one
    /// offline longest; while all are online it is refused. 20,000 connected workers were
    /// measured on one 2-core server (benches/README.md); raise it for a larger fleet.
    #[arg(long, default_value_t = 10_000, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_workers: u64,
    /// Quarantine a worker once this many of its jobs in a row failed at setup (could not
    /// start, missing interpreter, CUDA out of memory at start, ...); 0 never does. An admin
    /// lifts it with `gaia worker resume`.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub quarantine_after: u32,
    /// Delete the rows of jobs that ended longer ago than this (180d, 12h), every hour in the
    /// background.
    #[arg(long, value_name = "AGE", value_parser = gaia_core::human::parse_span_secs)]
    pub gc_rows_older_than: Option<u64>,
    /// Delete the log lines of jobs that ended longer ago than this (30d), every hour.
    #[arg(long, value_name = "AGE", value_parser = gaia_core::human::parse_span_secs)]
    pub gc_logs_older_than: Option<u64>,
    /// Fair share: a free worker takes the next job of the user furthest below their share of
    /// recent usage (`on`, the default), or the highest-priority job whoever submitted it
    /// (`off`). Users and shares: gaia user.
    #[arg(long, default_value = "on", value_name = "on|off", value_parser = parse_on_off, action = clap::ArgAction::Set)]
    pub fair_share: bool,
    /// How fast past usage is forgiven in fair share: it counts half after this span (90m, 12h,
    /// 1d, 1w).
    #[arg(long, default_value = "1d", value_name = "SPAN", value_parser = gaia_core::human::parse_span)]
    pub fair_share_half_life: Duration,
    /// Seconds between keep-alive pings on idle event streams (tests shorten it).
    #[arg(long, hide = true, default_value = "15", value_name = "SECS", value_parser = parse_secs)]
    pub event_keepalive: Duration,
    /// Start with an empty database when <data-dir>/gaia.redb exists but is 0 bytes. Without
    /// it such a file is refused: it is usually a truncated copy or a failed restore, and
    /// starting on it would look as if every job and result were gone.
    #[arg(long)]
    pub allow_empty_db: bool,
    /// Memory for the database's page cache, in MiB. It fills as results are written and read
    /// (an idle server holds little of it); a history read again comes from it, several times
    /// faster than from disk. A 1,000,000-row job with 8 metrics takes about 270 MiB: give it
    /// the histories your lab reads repeatedly, if the machine has the memory.
    #[arg(long, value_name = "MIB", default_value_t = gaia_core::store::DEFAULT_CACHE_MIB, value_parser = clap::value_parser!(u64).range(8..=1 << 20))]
    pub cache_mib: u64,
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" | "yes" => Ok(true),
        "off" | "false" | "no" => Ok(false),
        _ => Err(format!("{s:?}: write on or off")),
    }
}

pub fn run(a: ServeArgs) -> anyhow::Result<i32> {
    let from_env = a.token.is_some()
        && std::env::var_os("GAIA_TOKEN")
            .is_some_and(|v| Some(v.to_string_lossy().trim()) == a.token.as_deref().map(str::trim));
    let given = a
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let mut config = ServerConfig::new(a.data_dir.clone(), given.clone().unwrap_or_default());
    config.queue.lease_timeout = a.lease_timeout;
    config.queue.heartbeat_interval = a.heartbeat;
    config.max_release = a.max_release_mib << 20;
    config.max_file = a.max_file_mib << 20;
    config.event_keepalive = a.event_keepalive;
    config.queue.max_workers = a.max_workers as usize;
    config.queue.quarantine_after = a.quarantine_after;
    if a.gc_rows_older_than.is_some() || a.gc_logs_older_than.is_some() {
        config.gc = Some(gaia_core::store::maintenance::GcRequest {
            rows_older_than_secs: a.gc_rows_older_than,
            logs_older_than_secs: a.gc_logs_older_than,
            dry_run: false,
        });
    }
    config.queue.fair_share = a.fair_share;
    config.queue.usage_half_life = a.fair_share_half_life;
    config.allow_empty_db = a.allow_empty_db;
    config.cache_mib = a.cache_mib;
    // Settings first, so a refused start leaves no generated token in the data dir (a
    // generated one is 64 hex digits: it stands in for the check).
    ServerConfig {
        admin_token: given.clone().unwrap_or_else(|| "0".repeat(64)),
        ..config.clone()
    }
    .validate()?;
    let (token, generated) = match given {
        Some(t) => (t, false),
        None => load_or_create_admin_token(&a.data_dir)?,
    };
    config.admin_token = token.clone();

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
        let listener = server::listen(addr).await.with_context(|| {
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
        if local.ip().is_loopback() {
            writeln!(
                out,
                "  only this machine can connect: --bind 0.0.0.0 lets workers on other machines in \
                 (or put a reverse proxy such as Caddy in front)"
            )?;
        } else if local.ip().is_unspecified() {
            writeln!(
                out,
                "  on every interface: other machines can connect (HTTPS needs a reverse proxy in front)"
            )?;
        }
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
