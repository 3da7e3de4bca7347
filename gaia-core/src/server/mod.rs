//! The HTTP server: hyper 1.x, hand-routed, everything under `/api/v1/` behind a bearer token.
//!
//! [`run`] takes a bound listener and a shutdown future (the CLI passes ctrl-c; tests bind
//! `127.0.0.1:0`). On shutdown it stops accepting, ends long polls and event streams, lets
//! in-flight requests finish (up to 10 s) and closes the database.
//!
//! Endpoints are listed in [`router::ROUTES`], the one table that routing, auth and the tests
//! share; `docs/API.md` documents each.

mod auth;
mod dashboard;
mod demand;
mod events;
mod export;
mod files;
mod http;
mod jobs;
mod maintenance;
mod metrics;
mod overview;
mod releases;
pub mod router;
mod studies;
mod tokens;
mod users;
mod workers;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::error::Error;
use crate::queue::{Queue, QueueConfig};
use crate::store::Store;

pub use auth::{ADMIN_TOKEN_FILE, load_or_create_admin_token};

/// How a server is set up.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Holds `gaia.redb`, result files, releases and the generated admin token.
    pub data_dir: PathBuf,
    /// The admin token (`--token` / `GAIA_TOKEN`, or generated and kept in the data dir).
    pub admin_token: String,
    pub queue: QueueConfig,
    /// Largest JSON body (default 1 MiB); row batches may be 32 MiB.
    pub max_body: usize,
    /// Largest result file a worker may upload (default 256 MiB).
    pub max_file: u64,
    /// Largest release file an admin may upload (default 512 MiB).
    pub max_release: u64,
    /// How long a client may take to send a request head, and the longest pause inside a
    /// request body (default 30 s); past it the connection is closed (head) or answered 408
    /// (body), so stalled clients cannot hold connections.
    pub request_timeout: Duration,
    /// How often an idle event stream gets a `: ping` comment (default 15 s), so proxies keep
    /// it open and a client that went away is noticed.
    pub event_keepalive: Duration,
    /// Garbage collection the server runs by itself every hour (and once at start), if any:
    /// `gaia serve --gc-rows-older-than 180d --gc-logs-older-than 30d`.
    pub gc: Option<crate::store::maintenance::GcRequest>,
    /// Take a 0-byte `gaia.redb` for a new database instead of refusing it
    /// (`--allow-empty-db`; see [`crate::store::OpenOptions`]).
    pub allow_empty_db: bool,
    /// The database's page cache in MiB (`--cache-mib`; see [`crate::store::OpenOptions`]).
    pub cache_mib: u64,
}

impl ServerConfig {
    /// Defaults for a data directory and admin token.
    pub fn new(data_dir: impl Into<PathBuf>, admin_token: impl Into<String>) -> ServerConfig {
        ServerConfig {
            data_dir: data_dir.into(),
            admin_token: admin_token.into(),
            queue: QueueConfig::default(),
            max_body: 1 << 20,
            max_file: 256 << 20,
            max_release: 512 << 20,
            request_timeout: Duration::from_secs(30),
            event_keepalive: Duration::from_secs(15),
            gc: None,
            allow_empty_db: false,
            cache_mib: crate::store::DEFAULT_CACHE_MIB,
        }
    }

    /// Checks that the settings make a server that works: a long enough admin token, a
    /// heartbeat well inside the lease timeout (or every lease would expire between two
    /// heartbeats), positive limits and timeouts, an event keep-alive between 0 and an hour.
    /// [`prepare`] calls it, so an embedder gets the same refusal as `gaia serve`.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::Config(why));
        let secs = |d: Duration| format!("{}s", d.as_secs_f64());
        if self.admin_token.trim().len() < 8 {
            return bad(
                "the admin token must be at least 8 characters (--token / GAIA_TOKEN)".into(),
            );
        }
        let q = &self.queue;
        if q.lease_timeout.is_zero() || q.heartbeat_interval.is_zero() {
            return bad(format!(
                "the lease timeout ({}) and the heartbeat interval ({}) must be positive \
                 (--lease-timeout, --heartbeat)",
                secs(q.lease_timeout),
                secs(q.heartbeat_interval)
            ));
        }
        if q.heartbeat_interval >= q.lease_timeout {
            return bad(format!(
                "the heartbeat interval ({}) must be shorter than the lease timeout ({}), or \
                 every lease expires between two heartbeats (--heartbeat, --lease-timeout)",
                secs(q.heartbeat_interval),
                secs(q.lease_timeout)
            ));
        }
        if q.usage_half_life < Duration::from_secs(1) {
            return bad(format!(
                "the fair-share half-life ({}) must be at least a second (--fair-share-half-life)",
                secs(q.usage_half_life)
            ));
        }
        if q.max_claim_wait.is_zero() || q.max_workers == 0 {
            return bad("the longest claim wait and the most workers must be positive".into());
        }
        if self.event_keepalive.is_zero() || self.event_keepalive > Duration::from_secs(3600) {
            return bad(format!(
                "the event keep-alive ({}) must be between 0 and 3600 seconds (--event-keepalive)",
                secs(self.event_keepalive)
            ));
        }
        if self.request_timeout.is_zero() {
            return bad("the request timeout must be positive".into());
        }
        if self.max_body == 0 || self.max_file == 0 || self.max_release == 0 {
            return bad(format!(
                "the size limits must be positive (body {} bytes, result file {} bytes, release \
                 file {} bytes; --max-file-mib, --max-release-mib)",
                self.max_body, self.max_file, self.max_release
            ));
        }
        Ok(())
    }
}

/// What every handler can reach.
pub(crate) struct App {
    pub queue: Arc<Queue>,
    pub store: Store,
    pub config: ServerConfig,
    pub admin_hash: [u8; 32],
    pub started_at: u64,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// PNG exports render one at a time (see `export::export`).
    pub png_renders: tokio::sync::Semaphore,
    /// What `/metrics` shows.
    pub registry: prometheus_client::registry::Registry,
    /// Requests counted by the router.
    pub http_metrics: Arc<metrics::HttpMetrics>,
}

impl App {
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    /// Resolves once the server is shutting down.
    pub fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        stopped(self.shutdown.clone())
    }
}

/// Resolves once the shutdown flag is set.
pub(crate) async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Runs the server on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    prepare(config)?.run(listener, shutdown).await
}

/// A server whose database is open and whose state is loaded, not yet serving: a caller can
/// report an unusable data dir (in use, newer schema) before it says it is listening.
pub struct Prepared {
    app: Arc<App>,
    queue: Arc<Queue>,
    stop_tx: tokio::sync::watch::Sender<bool>,
}

/// What the server itself parses of a request head, for the fuzz targets (`fuzz/`): the
/// route of `method` and `target`'s path, the target's query pairs and the token of an
/// `Authorization` value. hyper parses everything else. Not an API: it answers nothing.
#[doc(hidden)]
pub fn fuzz_request_head(method: &str, target: &str, authorization: Option<&str>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let _ = router::find(method, path);
    let _ = http::query_pairs(Some(query));
    let mut req = hyper::Request::builder().method(method).uri("/");
    if let Some(a) = authorization
        && let Ok(v) = hyper::header::HeaderValue::from_str(a)
    {
        req = req.header(hyper::header::AUTHORIZATION, v);
    }
    if let Ok(req) = req.body(()) {
        let (parts, ()) = req.into_parts();
        let _ = auth::presented(&parts, None);
    }
}

/// Checks the settings ([`ServerConfig::validate`]), opens the data dir's database and loads
/// the queue (see [`Prepared::run`]).
pub fn prepare(config: ServerConfig) -> Result<Prepared, Error> {
    config.validate()?;
    let store = Store::open_with(
        &config.data_dir,
        crate::store::OpenOptions {
            allow_empty: config.allow_empty_db,
            cache_mib: config.cache_mib,
        },
    )?;
    let queue = Queue::new(store.clone(), config.queue.clone())?;
    releases::refresh_promoted(&store, &queue)?;
    if let Some(gc) = &config.gc {
        gc.validate()?;
    }
    let http_metrics = Arc::new(metrics::HttpMetrics::default());
    let registry = metrics::registry(&queue, &http_metrics);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let app = Arc::new(App {
        queue: queue.clone(),
        store,
        admin_hash: auth::hash(&config.admin_token),
        config,
        started_at: crate::model::now_ms(),
        shutdown: stop_rx,
        png_renders: tokio::sync::Semaphore::new(1),
        registry,
        http_metrics,
    });
    Ok(Prepared {
        app,
        queue,
        stop_tx,
    })
}

impl Prepared {
    /// Serves on `listener` until `shutdown` resolves, then stops gracefully: in-flight requests
    /// finish (10 s at most) and the last commits are made durable.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), Error> {
        let Prepared {
            app,
            queue,
            stop_tx,
        } = self;

        let reaper = {
            let queue = queue.clone();
            let mut stop = app.shutdown.clone();
            let tick = (queue.config().lease_timeout / 4)
                .clamp(Duration::from_millis(50), Duration::from_secs(1));
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(tick);
                loop {
                    tokio::select! {
                        _ = interval.tick() => {
                            if let Err(e) = queue.reap().await {
                                eprintln!("gaia serve: lease expiry failed: {e}");
                            }
                        }
                        _ = stop.changed() => break,
                    }
                }
            })
        };

        // Telemetry reaches the store in batches, never per heartbeat.
        let telemetry = {
            let queue = queue.clone();
            let mut stop = app.shutdown.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(TELEMETRY_FLUSH);
                loop {
                    tokio::select! {
                        _ = interval.tick() => {
                            if let Err(e) = queue.flush_telemetry().await {
                                eprintln!("gaia serve: telemetry write failed: {e}");
                            }
                        }
                        _ = stop.changed() => {
                            let _ = queue.flush_telemetry().await;
                            break;
                        }
                    }
                }
            })
        };
        // The gc the settings ask for, at start and every hour, in the background.
        let gc = app.config.gc.clone().map(|req| {
            let store = app.store.clone();
            let mut stop = app.shutdown.clone();
            tokio::spawn(async move {
                let mut interval = tokio::time::interval(Duration::from_secs(3600));
                loop {
                    tokio::select! {
                        _ = interval.tick() => {}
                        _ = stop.changed() => break,
                    }
                    tokio::select! {
                        r = store.gc(&req) => match r {
                            Ok(r) if r.rows_deleted + r.log_lines_deleted > 0 => eprintln!(
                                "gaia serve: gc deleted {} rows of {} jobs and {} log lines of {} jobs",
                                r.rows_deleted, r.row_jobs, r.log_lines_deleted, r.log_jobs
                            ),
                            Ok(_) => {}
                            Err(e) => eprintln!("gaia serve: gc failed: {e}"),
                        },
                        _ = stop.changed() => break,
                    }
                }
            })
        });

        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut http = http1::Builder::new();
        // The timer makes the header timeout work: a connection that does not send a whole request
        // head within it is closed, so half-sent requests cannot pile up (slowloris).
        http.keep_alive(true)
            .max_buf_size(1 << 20)
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(app.config.request_timeout);
        // At most this many connections at once; beyond it new ones wait in the kernel's backlog
        // instead of failing accept() for want of file descriptors.
        let connections = Arc::new(tokio::sync::Semaphore::new(max_connections()));
        let open = Arc::new(OpenConnections::default());
        let trimmer = tokio::spawn(return_freed_memory(open.clone(), stop_tx.subscribe()));
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                p = connections.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                _ = &mut shutdown => break,
            };
            tokio::select! {
                accepted = listener.accept() => {
                    let (stream, peer) = match accepted {
                        Ok(x) => x,
                        Err(e) => {
                            // Out of file descriptors and the like: back off instead of spinning.
                            eprintln!("gaia serve: accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let app = app.clone();
                    let first_byte = app.config.request_timeout;
                    let service = service_fn(move |req| {
                        let app = app.clone();
                        async move { Ok::<_, std::convert::Infallible>(router::handle(app, req, peer).await) }
                    });
                    let http = http.clone();
                    let watcher = graceful.watcher();
                    let mut stop = stop_tx.subscribe();
                    let open = open.clone();
                    open.opened();
                    tokio::spawn(async move {
                        // Until its first byte a connection costs only its socket: hyper makes its
                        // read and write buffers (8 KiB each) when it takes the connection. One
                        // that sends nothing within the request timeout is closed, as hyper
                        // would close it for a late request head.
                        let ready = tokio::select! {
                            r = tokio::time::timeout(first_byte, stream.readable()) => matches!(r, Ok(Ok(()))),
                            _ = stop.changed() => false,
                        };
                        if ready {
                            let conn = http.serve_connection(TokioIo::new(stream), service);
                            let _ = watcher.watch(conn).await;
                        }
                        open.closed();
                        drop(permit);
                    });
                }
                _ = &mut shutdown => break,
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
        let _ = reaper.await;
        let _ = telemetry.await;
        if let Some(gc) = gc {
            let _ = gc.await;
        }
        let _ = trimmer.await;
        // Make the last volatile commits (claims and reports of the past 100 ms) durable before the
        // process exits: a clean stop loses nothing.
        if let Err(e) = app.store.write(|_| Ok(())).await {
            eprintln!("gaia serve: final commit failed: {e}");
        }
        drop(app);
        drop(queue);
        Ok(())
    }
}

/// How often closed telemetry points are written (one batch for every worker).
const TELEMETRY_FLUSH: Duration = Duration::from_secs(5);

/// Gives memory that closed connections freed back to the system. glibc's malloc keeps what is
/// freed in its per-thread arenas, so after a crowd of connections (10,000 idle ones took the
/// server from 9 to 175 MB) the process stayed that big for good; `malloc_trim` returns the free
/// pages of every arena. Run when the number of open connections has fallen by
/// [`TRIM_AFTER_CLOSED`] from its peak since the last trim (checked every 2 s, on a blocking
/// thread).
async fn return_freed_memory(
    open: Arc<OpenConnections>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = open.now.load(Relaxed);
        if open.peak.load(Relaxed).saturating_sub(now) >= TRIM_AFTER_CLOSED {
            open.peak.store(now, Relaxed);
            let _ = tokio::task::spawn_blocking(trim_heap).await;
        }
    }
}

/// Connections open now, and the most open at once since the last heap trim.
#[derive(Default)]
struct OpenConnections {
    now: std::sync::atomic::AtomicUsize,
    peak: std::sync::atomic::AtomicUsize,
}

impl OpenConnections {
    fn opened(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let n = self.now.fetch_add(1, Relaxed) + 1;
        self.peak.fetch_max(n, Relaxed);
    }

    fn closed(&self) {
        self.now.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Closed connections after which [`return_freed_memory`] trims the heap.
const TRIM_AFTER_CLOSED: usize = 256;

fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The connection cap: the process's file-descriptor limit (raised to its hard limit first,
/// as a server should) less a reserve for the database, result files and releases.
fn max_connections() -> usize {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed to them.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
                if lim.rlim_cur < lim.rlim_max {
                    let raised = libc::rlimit {
                        rlim_cur: lim.rlim_max,
                        rlim_max: lim.rlim_max,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                        lim.rlim_cur = lim.rlim_max;
                    }
                }
                let fds = usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX);
                return fds.saturating_sub(128).clamp(64, 1 << 20);
            }
        }
        960
    }
    #[cfg(not(unix))]
    {
        10_000
    }
}

/// How many connections the kernel may hold for the server before it accepts them: as many as
/// it allows (Linux caps the number at `net.core.somaxconn`, 4096 by default since 5.4).
///
/// A fleet connects in bursts: every worker at once when the server restarts, thousands of
/// long polls and heartbeats when a bench or a cluster starts. `TcpListener::bind` listens
/// with 128, as the standard library does; past that the kernel drops the connection's SYN or
/// its handshake's last ACK, and the worker's request waits for a retransmission — 1 s, then
/// 3 s, 7 s — which showed as the 1–2 s heartbeat stalls of `--bench fleet`.
pub const LISTEN_BACKLOG: u32 = i32::MAX as u32;

/// Binds `addr` for [`run`] (address reuse on, as `TcpListener::bind` has it) and listens with
/// [`LISTEN_BACKLOG`].
pub async fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Binds `addr` and runs until ctrl-c / SIGTERM; for embedders who want one call.
pub async fn serve(addr: SocketAddr, config: ServerConfig) -> Result<(), Error> {
    let listener = listen(addr)
        .await
        .map_err(|e| Error::Other(format!("bind {addr}: {e}")))?;
    run(listener, config, shutdown_signal()).await
}

/// Resolves on ctrl-c or SIGTERM.
///
/// Called inside a tokio runtime, it installs the signal handlers at once (not when first
/// polled), so a SIGTERM that arrives right after the server said it is listening is still a
/// clean stop rather than the default kill.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let early = {
        use tokio::signal::unix::{SignalKind, signal};
        tokio::runtime::Handle::try_current().ok().map(|_| {
            (
                signal(SignalKind::terminate()).ok(),
                signal(SignalKind::interrupt()).ok(),
            )
        })
    };
    async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (term, int) = early.unwrap_or_else(|| {
                (
                    signal(SignalKind::terminate()).ok(),
                    signal(SignalKind::interrupt()).ok(),
                )
            });
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {}
                _ = wait(int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A burst of connections larger than the standard library's backlog of 128 is held by the
    /// kernel until the server gets to accept them: none waits for a SYN retransmission.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn a_burst_of_connections_waits_in_the_backlog_not_for_a_retransmission() {
        let somaxconn: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let burst = 600.min(somaxconn);
        if burst <= 200 {
            eprintln!("net.core.somaxconn is {somaxconn}: too small to tell backlogs apart");
            return;
        }
        let listener = listen("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Nothing accepts while the burst connects. A connection the backlog cannot hold has
        // its SYN dropped and is retried after 1 s, so it misses the 500 ms deadline.
        let connects: Vec<_> = (0..burst)
            .map(|_| {
                tokio::spawn(async move {
                    tokio::time::timeout(
                        Duration::from_millis(500),
                        tokio::net::TcpStream::connect(addr),
                    )
                    .await
                })
            })
            .collect();
        let mut held = Vec::new();
        for c in connects {
            if let Ok(Ok(stream)) = c.await.unwrap() {
                held.push(stream);
            }
        }
        assert_eq!(
            held.len(),
            burst,
            "connections left waiting for a retransmission"
        );
        for _ in 0..burst {
            tokio::time::timeout(Duration::from_secs(5), listener.accept())
                .await
                .expect("every held connection is accepted")
                .unwrap();
        }
    }

    /// A server on a free port with a short request timeout; stopped when the sender drops.
    async fn start(dir: &Path) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = ServerConfig::new(dir, "test-token-123456");
        config.request_timeout = Duration::from_millis(300);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(run(listener, config, async {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    #[test]
    fn settings_that_cannot_work_are_refused_before_the_database_opens() {
        let dir = tempfile::tempdir().unwrap();
        let ok = ServerConfig::new(dir.path(), "test-token-123456");
        ok.validate().unwrap();
        let refused = |change: &dyn Fn(&mut ServerConfig), says: &str| {
            let mut c = ok.clone();
            change(&mut c);
            let msg = c.validate().unwrap_err().to_string();
            assert!(msg.contains(says), "{msg}");
            // prepare refuses it the same way, and opens nothing.
            let msg = prepare(c).err().expect("refused").to_string();
            assert!(msg.contains(says), "{msg}");
        };
        refused(
            &|c| c.admin_token = " short ".into(),
            "at least 8 characters",
        );
        refused(
            &|c| c.queue.heartbeat_interval = Duration::from_secs(30),
            "heartbeat interval (30s) must be shorter than the lease timeout (30s)",
        );
        refused(
            &|c| c.queue.lease_timeout = Duration::ZERO,
            "must be positive (--lease-timeout",
        );
        refused(
            &|c| c.event_keepalive = Duration::from_secs(7200),
            "between 0 and 3600 seconds",
        );
        refused(&|c| c.event_keepalive = Duration::ZERO, "--event-keepalive");
        refused(&|c| c.max_file = 0, "size limits must be positive");
        refused(&|c| c.request_timeout = Duration::ZERO, "request timeout");
        assert!(!dir.path().join("gaia.redb").exists());
    }

    async fn answer(s: &mut tokio::net::TcpStream) -> String {
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
            .await
            .expect("the server closed the connection in time")
            .unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    }

    #[tokio::test]
    async fn stalled_clients_are_cut_off_instead_of_holding_connections() {
        let dir = tempfile::tempdir().unwrap();
        let (addr, _stop) = start(dir.path()).await;

        // Half a request head, then nothing (slowloris): the connection is closed.
        let mut head = tokio::net::TcpStream::connect(addr).await.unwrap();
        head.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        let got = answer(&mut head).await;
        assert!(!got.contains("200 OK"), "{got}");

        // A whole head, then a body that stops half way: 408 with a JSON error.
        let mut body = tokio::net::TcpStream::connect(addr).await.unwrap();
        body.write_all(
            b"POST /api/v1/jobs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer test-token-123456\r\n\
              content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"kind\":",
        )
        .await
        .unwrap();
        let got = answer(&mut body).await;
        assert!(got.starts_with("HTTP/1.1 408"), "{got}");
        assert!(got.contains("stalled"), "{got}");

        // And the server still answers the next client.
        let mut ok = tokio::net::TcpStream::connect(addr).await.unwrap();
        ok.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        assert!(answer(&mut ok).await.starts_with("HTTP/1.1 200"));
    }

    #[tokio::test]
    async fn a_body_trickled_a_byte_at_a_time_meets_a_total_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut config = ServerConfig::new(dir.path(), "test-token-123456");
        config.request_timeout = Duration::from_millis(300);
        // A 32 KiB JSON limit: half a second at the slowest rate allowed, 0.8 s in all.
        config.max_body = 32 << 10;
        let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(run(listener, config, async {
            let _ = stopped.await;
        }));
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(
            b"POST /api/v1/jobs HTTP/1.1\r\nhost: x\r\nauthorization: Bearer test-token-123456\r\n\
              content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
        // One byte every 150 ms: never idle long enough for the idle timeout.
        let started = std::time::Instant::now();
        let got = loop {
            if s.write_all(b"1\r\n \r\n").await.is_err() {
                break answer(&mut s).await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            if started.elapsed() > Duration::from_secs(10) {
                panic!("the trickle was never cut off");
            }
            let mut peek = [0u8; 1];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(1), s.peek(&mut peek)).await
                && n > 0
            {
                break answer(&mut s).await;
            }
        };
        assert!(got.starts_with("HTTP/1.1 408"), "{got}");
        assert!(got.contains("too slowly"), "{got}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}
