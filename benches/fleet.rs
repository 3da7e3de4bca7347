//! One server, a whole fleet at once: N simulated workers (5,000 by default) that register with
//! a realistic machine description, heartbeat every 5 s with realistic payloads (utilisation,
//! their running lease), each keep a long-poll claim open, and 500 of them stream rows — all
//! against one release `gaia serve` on loopback. Prints p50/p99 of heartbeat, claim wake-up
//! (submit → the waiting worker holds the job) and row-batch latency, ingest rows/s under that
//! load (paced, then as fast as the 500 streams go), the server's RSS, open file descriptors
//! and CPU.
//!
//! `cargo bench -p gaia-cli --bench fleet`; FLEET_WORKERS (5000), FLEET_JOBS (500 streaming),
//! FLEET_SECS (30, the measured phase), FLEET_ROWS (100000 rows/s offered while measuring),
//! FLEET_BATCH_MS (250, as the worker batches), FLEET_FLAT_SECS (secs/3; 0 skips the flat-out
//! phase). Past 10,000 workers the server is started with
//! `--max-workers` = FLEET_WORKERS. The bench raises its file-descriptor limit (the server
//! inherits it) and spreads its connections over source addresses 127.x.0.2… so that more than
//! 28,000 fit the ephemeral port range.
//!
//! Every connection is its own TCP stream with a minimal HTTP/1.1 client (keep-alive, one
//! request at a time), as each real worker holds its own: one for heartbeats, one for its long
//! poll, one more while it streams. Where the server's file-descriptor limit cannot hold two per
//! worker (20,000 workers under a hard limit of 20,000), FLEET_HB_CONNS shares heartbeat
//! connections (N workers over that many) and FLEET_POLLS keeps only that many claims open; both
//! are printed with the figures.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{BenchServer, ms, percentile};
use gaia_core::model::{Capabilities, Gpu, GpuUsage, Hardware, JobKind, JobSpec, Row, Usage};
use gaia_core::protocol::{
    Assignment, ClaimRequest, ClaimResponse, CompleteRequest, Finished, HeartbeatRequest, LeaseRef,
    Outcome, POSTCARD_CONTENT_TYPE, RegisterRequest, RegisterResponse, RowBatch, encode_postcard,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Mutex;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One keep-alive HTTP/1.1 connection from a chosen source address.
struct Conn {
    server: SocketAddr,
    local: Ipv4Addr,
    io: Option<BufReader<TcpStream>>,
    token: Arc<String>,
    /// Connections made again after the server closed one.
    reconnects: Arc<AtomicU64>,
}

impl Conn {
    fn new(server: SocketAddr, local: Ipv4Addr, token: Arc<String>, re: Arc<AtomicU64>) -> Conn {
        Conn {
            server,
            local,
            io: None,
            token,
            reconnects: re,
        }
    }

    async fn connect(&mut self) -> std::io::Result<()> {
        let sock = TcpSocket::new_v4()?;
        // Ports of an earlier run's connections may still be in TIME_WAIT.
        sock.set_reuseaddr(true)?;
        sock.bind(SocketAddr::new(self.local.into(), 0))?;
        let s = sock.connect(self.server).await?;
        s.set_nodelay(true)?;
        self.io = Some(BufReader::with_capacity(4096, s));
        Ok(())
    }

    /// One request; reconnects once if the kept-alive connection turns out closed.
    async fn call(&mut self, method: &str, path: &str, ctype: &str, body: &[u8]) -> (u16, Vec<u8>) {
        for attempt in 0..3 {
            if self.io.is_none() {
                if attempt > 0 || self.reconnects.load(Ordering::Relaxed) > 0 {
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                if let Err(e) = self.connect().await {
                    eprintln!("connect from {}: {e}", self.local);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
            match self.try_call(method, path, ctype, body).await {
                Ok(r) => return r,
                Err(_) => self.io = None,
            }
        }
        panic!("{method} {path}: the server did not answer three times");
    }

    async fn try_call(
        &mut self,
        method: &str,
        path: &str,
        ctype: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        let io = self.io.as_mut().unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: gaia\r\nauthorization: Bearer {}\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\n\r\n",
            self.token,
            body.len()
        );
        let mut req = head.into_bytes();
        req.extend_from_slice(body);
        io.get_mut().write_all(&req).await?;
        let mut line = String::new();
        if io.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or(std::io::ErrorKind::InvalidData)?;
        let mut len = 0usize;
        let mut close = false;
        loop {
            line.clear();
            io.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                } else if k.eq_ignore_ascii_case("connection") && v.trim() == "close" {
                    close = true;
                }
            }
        }
        let mut buf = vec![0; len];
        io.read_exact(&mut buf).await?;
        if close {
            self.io = None;
        }
        Ok((status, buf))
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &mut self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> T {
        let b = serde_json::to_vec(body).unwrap();
        let (status, out) = self.call("POST", path, "application/json", &b).await;
        assert!(
            status == 200,
            "POST {path}: {status} {}",
            String::from_utf8_lossy(&out)
        );
        serde_json::from_slice(&out).unwrap()
    }
}

/// What a simulated worker reports about its machine: a GPU box.
fn hardware(i: usize) -> Hardware {
    Hardware {
        os: "linux".into(),
        arch: "x86_64".into(),
        hostname: format!("node-{:05}.cluster.lab.example", i),
        cpu_model: "AMD EPYC 7763 64-Core Processor".into(),
        cpu_cores: 32,
        memory_mb: 257_000,
        gpus: (0..2)
            .map(|g| Gpu {
                index: g,
                name: "NVIDIA A100-SXM4-80GB".into(),
                memory_mb: 81_920,
                driver: "550.54.15".into(),
            })
            .collect(),
    }
}

/// Latency samples of one kind.
#[derive(Default)]
struct Samples(std::sync::Mutex<Vec<Duration>>);

impl Samples {
    fn add(&self, d: Duration) {
        self.0.lock().unwrap().push(d);
    }
    fn take(&self) -> Vec<Duration> {
        let mut v = std::mem::take(&mut *self.0.lock().unwrap());
        v.sort();
        v
    }
}

struct Shared {
    server: SocketAddr,
    token: Arc<String>,
    reconnects: Arc<AtomicU64>,
    addrs: Vec<Ipv4Addr>,
    next_addr: AtomicUsize,
    measuring: AtomicBool,
    stop: AtomicBool,
    /// Streams go as fast as they can (closed loop) instead of paced.
    flat_out: AtomicBool,
    heartbeats: Samples,
    batches: Samples,
    rows_acked: AtomicU64,
    open_claims: AtomicUsize,
    /// When each probe job was submitted and when a claim got it (job id → instant), for the
    /// wake-up latency. Two maps, matched afterwards: with the hand-off a claim is often
    /// answered before its submit call has returned.
    submitted: std::sync::Mutex<std::collections::HashMap<u64, Instant>>,
    claimed: std::sync::Mutex<std::collections::HashMap<u64, Instant>>,
    rows_per_batch: usize,
    batch_every: Duration,
}

impl Shared {
    /// The wake-ups of the jobs submitted and claimed so far (sorted); both records cleared.
    fn take_wakeups(&self) -> Vec<Duration> {
        let submitted = std::mem::take(&mut *self.submitted.lock().unwrap());
        let mut claimed = std::mem::take(&mut *self.claimed.lock().unwrap());
        let mut v: Vec<Duration> = submitted
            .into_iter()
            .filter_map(|(id, t)| {
                claimed
                    .remove(&id)
                    .map(|got| got.saturating_duration_since(t))
            })
            .collect();
        v.sort();
        v
    }

    fn conn(&self) -> Conn {
        let i = self.next_addr.fetch_add(1, Ordering::Relaxed);
        Conn::new(
            self.server,
            self.addrs[i % self.addrs.len()],
            self.token.clone(),
            self.reconnects.clone(),
        )
    }
}

/// A simulated worker: heartbeats on one connection (its own, or one of a shared pool),
/// long-polls on another (if `polls`); a streaming job gets a third.
async fn worker(
    sh: Arc<Shared>,
    id: String,
    start_in: Duration,
    hb_conn: Arc<Mutex<Conn>>,
    polls: bool,
) {
    let lease: Arc<Mutex<Option<LeaseRef>>> = Arc::new(Mutex::new(None));
    // Heartbeats, every 5 s from a staggered start.
    {
        let sh = sh.clone();
        let id = id.clone();
        let lease = lease.clone();
        tokio::spawn(async move {
            tokio::time::sleep(start_in).await;
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n = 0u32;
            while !sh.stop.load(Ordering::Relaxed) {
                tick.tick().await;
                n = n.wrapping_add(1);
                let running: Vec<LeaseRef> = lease.lock().await.iter().cloned().collect();
                let busy = !running.is_empty();
                let req = HeartbeatRequest {
                    running,
                    usage: Usage {
                        cpu_percent: if busy { 93.5 } else { 1.0 + (n % 7) as f32 },
                        memory_percent: 41.2,
                        gpu_percent: if busy {
                            vec![97.0, 95.5]
                        } else {
                            vec![0.0, 0.0]
                        },
                        // What nvidia-smi reads on a 2 × A100 box, as a real worker sends it.
                        gpus: (0..2)
                            .map(|index| GpuUsage {
                                index,
                                utilization: Some(if busy { 96.0 } else { 0.0 }),
                                memory_used_mb: Some(if busy { 31_240 } else { 4 }),
                                memory_total_mb: Some(81_920),
                                temperature_c: Some(if busy { 64.0 } else { 33.0 }),
                                error: None,
                            })
                            .collect(),
                    },
                    draining: false,
                };
                let mut c = hb_conn.lock().await;
                let t = Instant::now();
                let _: serde_json::Value = c
                    .json(&format!("/api/v1/workers/{id}/heartbeat"), &req)
                    .await;
                if sh.measuring.load(Ordering::Relaxed) {
                    sh.heartbeats.add(t.elapsed());
                }
            }
        });
    }
    if !polls {
        return;
    }
    // Claims: a long poll always open; a probe job is reported done with the next claim; an
    // experiment job is streamed until the bench ends.
    let mut c = sh.conn();
    let caps = Capabilities {
        kinds: vec![JobKind::Experiment, JobKind::Wait],
        gpus: 2,
        memory_mb: 257_000,
        ..Capabilities::default()
    };
    let mut finished: Option<Finished> = None;
    while !sh.stop.load(Ordering::Relaxed) {
        let req = ClaimRequest {
            worker_id: id.clone(),
            capabilities: caps.clone(),
            wait_ms: 30_000,
            finished: finished.take(),
            watch_study: None,
        };
        sh.open_claims.fetch_add(1, Ordering::Relaxed);
        let resp: ClaimResponse = c.json("/api/v1/claim", &req).await;
        sh.open_claims.fetch_sub(1, Ordering::Relaxed);
        let got = Instant::now();
        let Some(a) = resp.assignment else { continue };
        sh.claimed.lock().unwrap().insert(a.job.id, got);
        if a.job.spec.kind() == JobKind::Wait {
            finished = Some(Finished {
                job: a.job.id,
                report: CompleteRequest {
                    attempt: a.attempt,
                    lease: a.lease,
                    outcome: Outcome::Succeeded,
                    exit_code: None,
                    duration_ms: 0,
                    error: None,
                    result: None,
                    started_us: None,
                },
            });
            continue;
        }
        *lease.lock().await = Some(LeaseRef {
            job: a.job.id,
            attempt: a.attempt,
            lease: a.lease,
        });
        stream(&sh, &a).await;
        return;
    }
}

/// Streams rows of one job until the bench stops: paced (a batch every `batch_every`) or flat
/// out.
async fn stream(sh: &Shared, a: &Assignment) {
    let mut c = sh.conn();
    let path = format!("/api/v1/jobs/{}/rows", a.job.id);
    let mut seq = 0u64;
    let mut tick = tokio::time::interval(sh.batch_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !sh.stop.load(Ordering::Relaxed) {
        if !sh.flat_out.load(Ordering::Relaxed) {
            tick.tick().await;
        }
        let rows: Vec<Row> = (seq..seq + sh.rows_per_batch as u64)
            .map(|s| Row {
                seq: s,
                generation: Some(s + 1),
                evals: Some(((s + 1) * 64) as f64),
                best: Some(-(s as f64) / 3.0),
                best_ever: Some(-(s as f64) / 4.0),
                mean: Some(-(s as f64)),
                sigma: Some(0.5),
                elapsed: Some(s as f64 * 0.01),
                metrics: vec![("entropy".into(), 1.0 / (s + 1) as f64)],
            })
            .collect();
        seq += rows.len() as u64;
        let body = encode_postcard(&RowBatch {
            attempt: a.attempt,
            lease: a.lease,
            rows,
            fraction: None,
            status: None,
        });
        let t = Instant::now();
        let (status, out) = c.call("POST", &path, POSTCARD_CONTENT_TYPE, &body).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
        if sh.measuring.load(Ordering::Relaxed) {
            sh.batches.add(t.elapsed());
            sh.rows_acked
                .fetch_add(sh.rows_per_batch as u64, Ordering::Relaxed);
        }
    }
}

/// Raises this process's file-descriptor limit (the server, started after, inherits it).
fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        let max = if lim.rlim_max < want {
            want
        } else {
            lim.rlim_max
        };
        let new = libc::rlimit {
            rlim_cur: max,
            rlim_max: max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &new) != 0 {
            // Not root: as far as the hard limit goes.
            let soft = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &soft);
        }
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    lim.rlim_cur
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// CPU seconds (utime + stime, every thread that ever ran) of a process (`self` or a pid).
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let quick = std::env::var_os("BENCH_QUICK").is_some();
    let n: usize = env_or("FLEET_WORKERS", if quick { 1000 } else { 5000 });
    let jobs: usize = env_or("FLEET_JOBS", if quick { 100 } else { 500 }).min(n);
    let secs: u64 = env_or("FLEET_SECS", if quick { 10 } else { 30 });
    let offered: usize = env_or("FLEET_ROWS", 100_000);
    let batch_ms: u64 = env_or("FLEET_BATCH_MS", 250);
    let hb_conns: usize = env_or("FLEET_HB_CONNS", n).clamp(1, n);
    let polls: usize = env_or("FLEET_POLLS", n).clamp(jobs, n);
    let per_sec_per_job = offered as f64 / jobs.max(1) as f64;
    let rows_per_batch = ((per_sec_per_job * batch_ms as f64 / 1000.0).round() as usize).max(1);
    let conns = hb_conns + polls + jobs + 100;
    let limit = raise_fd_limit((conns as u64 + 1000).max(65_536));
    println!(
        "fleet: {n} workers ({polls} with a claim open, heartbeats over {hb_conns} connections), {jobs} streaming {rows_per_batch} rows every {batch_ms} ms ({:.0} rows/s offered), {conns} connections; fd limit {limit}",
        rows_per_batch as f64 * jobs as f64 * 1000.0 / batch_ms as f64
    );
    let max_workers = n.to_string();
    let server = if n > 10_000 {
        BenchServer::start(&["--max-workers", &max_workers])
    } else {
        BenchServer::start(&[])
    };
    let pid = server.pid();
    // 20,000 connections per source address at most (the ephemeral range holds ~28,000), on
    // addresses of their own for each run (127.<pid>.0.x), whose ports the TIME_WAIT of an
    // earlier run's connections does not hold.
    let net = (std::process::id() % 250) as u8 + 1;
    let addrs: Vec<Ipv4Addr> = (0..conns.div_ceil(20_000).max(1))
        .map(|i| Ipv4Addr::new(127, net, 0, 2 + i as u8))
        .collect();
    let sh = Arc::new(Shared {
        server: SocketAddr::from(([127, 0, 0, 1], server.port)),
        token: Arc::new(server.token.clone()),
        reconnects: Arc::new(AtomicU64::new(0)),
        addrs,
        next_addr: AtomicUsize::new(0),
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
        flat_out: AtomicBool::new(false),
        heartbeats: Samples::default(),
        claimed: Default::default(),
        batches: Samples::default(),
        rows_acked: AtomicU64::new(0),
        open_claims: AtomicUsize::new(0),
        submitted: Default::default(),
        rows_per_batch,
        batch_every: Duration::from_millis(batch_ms),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = server.client();
    rt.block_on(async {
        // Register everyone (a durable write each, grouped by the server), 64 at a time.
        let t = Instant::now();
        let ids: Vec<String> = {
            let next = Arc::new(AtomicUsize::new(0));
            let mut handles = Vec::new();
            for _ in 0..64 {
                let sh = sh.clone();
                let next = next.clone();
                handles.push(tokio::spawn(async move {
                    let mut c = sh.conn();
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return out;
                        }
                        let r: RegisterResponse = c
                            .json(
                                "/api/v1/workers/register",
                                &RegisterRequest {
                                    worker_id: None,
                                    name: format!("node-{i:05}"),
                                    version: gaia_core::VERSION.into(),
                                    hardware: hardware(i),
                                    kinds: vec![JobKind::Experiment, JobKind::Wait],
                                    tags: vec!["a100".into(), "lab".into()],
                                    slots: 1,
                                },
                            )
                            .await;
                        out.push((i, r.worker_id));
                    }
                }));
            }
            let mut all = Vec::new();
            for h in handles {
                all.extend(h.await.unwrap());
            }
            all.sort();
            all.into_iter().map(|(_, id)| id).collect()
        };
        println!(
            "registered {n} workers in {:.1} s; server RSS {:.1} MiB",
            t.elapsed().as_secs_f64(),
            server.rss_mib()
        );
        let pool: Vec<Arc<Mutex<Conn>>> = (0..hb_conns)
            .map(|_| Arc::new(Mutex::new(sh.conn())))
            .collect();
        for (i, id) in ids.into_iter().enumerate() {
            let start_in = Duration::from_secs(5).mul_f64(i as f64 / n as f64);
            tokio::spawn(worker(
                sh.clone(),
                id,
                start_in,
                pool[i % hb_conns].clone(),
                i < polls,
            ));
        }
        let t = Instant::now();
        while sh.open_claims.load(Ordering::Relaxed) < polls {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(
                t.elapsed() < Duration::from_secs(300),
                "only {} of {polls} claims open after 5 minutes",
                sh.open_claims.load(Ordering::Relaxed)
            );
        }
        println!(
            "{polls} claims open after {:.1} s; server RSS {:.1} MiB, {} fds",
            t.elapsed().as_secs_f64(),
            server.rss_mib(),
            fds(pid)
        );
        // The streaming jobs, one at a time: each wakes one of the waiting claims.
        sh.measuring.store(true, Ordering::Relaxed);
        let c2 = client.clone();
        let sh2 = sh.clone();
        tokio::task::spawn_blocking(move || {
            for j in 0..jobs {
                let mut spec = JobSpec::experiment("cma_es", 1_000_000);
                spec.seed = Some(j as u64);
                let t = Instant::now();
                let id = c2.submit(&spec).unwrap();
                sh2.submitted.lock().unwrap().insert(id, t);
            }
        })
        .await
        .unwrap();
        let startup_wakeups = sh.take_wakeups();
        sh.heartbeats.take();
        sh.batches.take();
        sh.rows_acked.store(0, Ordering::Relaxed);
        println!(
            "{jobs} streaming jobs started; wake-up while submitting them: p50 {}, p99 {}",
            ms(percentile(&startup_wakeups, 50.0)),
            ms(percentile(&startup_wakeups, 99.0)),
        );

        // The measured phase: heartbeats, open claims, paced streams, and a probe job every
        // 100 ms for the wake-up latency.
        let cpu0 = cpu_secs(&pid.to_string());
        let own0 = cpu_secs("self");
        let t0 = Instant::now();
        let mut peak_rss = 0.0f64;
        let mut peak_fds = 0usize;
        let probe = {
            let c2 = client.clone();
            let sh2 = sh.clone();
            tokio::task::spawn_blocking(move || {
                let until = Instant::now() + Duration::from_secs(secs);
                while Instant::now() < until {
                    let t = Instant::now();
                    let id = c2.submit(&JobSpec::builtin(JobKind::Wait, "0")).unwrap();
                    sh2.submitted.lock().unwrap().insert(id, t);
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        };
        while t0.elapsed() < Duration::from_secs(secs) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            peak_rss = peak_rss.max(server.rss_mib());
            peak_fds = peak_fds.max(fds(pid));
        }
        probe.await.unwrap();
        let wall = t0.elapsed().as_secs_f64();
        let cpu = (cpu_secs(&pid.to_string()) - cpu0) / wall * 100.0;
        let own = (cpu_secs("self") - own0) / wall * 100.0;
        let hb = sh.heartbeats.take();
        let wk = sh.take_wakeups();
        let bt = sh.batches.take();
        let rows = sh.rows_acked.swap(0, Ordering::Relaxed);
        println!(
            "measured {wall:.0} s with {n} workers connected ({} claims open, {} reconnects):",
            sh.open_claims.load(Ordering::Relaxed),
            sh.reconnects.load(Ordering::Relaxed)
        );
        println!(
            "  heartbeat   n={:>6}  p50 {:>9}  p99 {:>9}  max {:>9}  (target p99 <= 50 ms)",
            hb.len(),
            ms(percentile(&hb, 50.0)),
            ms(percentile(&hb, 99.0)),
            ms(hb.last().copied().unwrap_or_default())
        );
        println!(
            "  wake-up     n={:>6}  p50 {:>9}  p99 {:>9}  max {:>9}  (submit -> a waiting claim holds it; target p99 <= 20 ms)",
            wk.len(),
            ms(percentile(&wk, 50.0)),
            ms(percentile(&wk, 99.0)),
            ms(wk.last().copied().unwrap_or_default())
        );
        println!(
            "  row batch   n={:>6}  p50 {:>9}  p99 {:>9}  max {:>9}  ({rows_per_batch} rows, postcard, acknowledged durable)",
            bt.len(),
            ms(percentile(&bt, 50.0)),
            ms(percentile(&bt, 99.0)),
            ms(bt.last().copied().unwrap_or_default())
        );
        println!(
            "  ingest {:.0} rows/s (offered {offered}); server CPU {cpu:.0} % of one core, this load generator {own:.0} %",
            rows as f64 / wall
        );
        println!(
            "  server RSS {:.1} MiB (peak {peak_rss:.1}), open fds {} (peak {peak_fds}) (target RSS <= 500 MB)",
            server.rss_mib(),
            fds(pid)
        );

        // As fast as the 500 streams go, everything else as before (FLEET_FLAT_SECS=0 skips it).
        let secs_flat: u64 = env_or("FLEET_FLAT_SECS", (secs / 3).max(5));
        if secs_flat == 0 {
            sh.stop.store(true, Ordering::Relaxed);
            return;
        }
        sh.flat_out.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(1)).await;
        sh.batches.take();
        sh.heartbeats.take();
        sh.rows_acked.store(0, Ordering::Relaxed);
        let t1 = Instant::now();
        tokio::time::sleep(Duration::from_secs(secs_flat)).await;
        let wall = t1.elapsed().as_secs_f64();
        let rows = sh.rows_acked.load(Ordering::Relaxed);
        let bt = sh.batches.take();
        let hb = sh.heartbeats.take();
        println!(
            "flat out for {wall:.0} s: ingest {:.0} rows/s; row batch p50 {}, p99 {}; heartbeat p50 {}, p99 {}; server RSS {:.1} MiB",
            rows as f64 / wall,
            ms(percentile(&bt, 50.0)),
            ms(percentile(&bt, 99.0)),
            ms(percentile(&hb, 50.0)),
            ms(percentile(&hb, 99.0)),
            server.rss_mib()
        );
        sh.stop.store(true, Ordering::Relaxed);
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}
