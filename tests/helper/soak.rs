//! The soak: a real `gaia serve`, simulated workers (threads speaking the worker protocol)
//! and real `gaia work` processes, under random faults — `kill -9` of the server and of real
//! workers, and network cuts (the server stopped with SIGSTOP, so every connection hangs, then
//! resumed) — then a checker that reads the database itself.
//!
//! It proves: every row a simulated worker had acknowledged is stored, once, with its values;
//! every real worker's succeeded job holds exactly the rows its program printed; every job is
//! in a terminal state or running; no simulated worker's attempt (they never die) was spent by
//! a lease expiry, which only the server's own stall or restart could cause.
//!
//! Shared by `benches/soak.rs` (30 minutes, a million rows) and the short run in the tests.
//! Self-contained: it needs only gaia-core, libc and tempfile.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gaia_core::client::Client;
use gaia_core::error::ClientError;
use gaia_core::model::{Capabilities, JobKind, JobSpec, JobState, Row};
use gaia_core::protocol::{
    ClaimRequest, CompleteRequest, HeartbeatRequest, LeaseRef, Outcome, RegisterRequest, RowBatch,
};

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The `gaia` binary for the server and the real workers.
    pub gaia: PathBuf,
    /// How long the faults go on.
    pub duration: Duration,
    /// Rows the simulated workers send in all, paced over `duration`.
    pub rows: u64,
    pub sim_workers: usize,
    pub real_workers: usize,
    /// Rows per simulated job.
    pub rows_per_job: u64,
    /// Generation lines each real job prints.
    pub real_lines: u64,
    /// Mean seconds between two faults.
    pub fault_every: f64,
    /// The server's lease timeout (a stall may last longer: it must not count).
    pub lease_timeout_secs: u64,
    pub seed: u64,
}

/// What happened, and what the checker found.
#[derive(Debug, Default)]
pub struct Report {
    pub elapsed: Duration,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u64>,
    /// Rows the simulated workers had acknowledged.
    pub rows_acked: u64,
    /// Rows stored in all (every attempt, simulated and real).
    pub rows_stored: u64,
    /// Acknowledged rows missing from the store.
    pub lost: u64,
    /// Rows stored that were never sent, or stored twice for one printed line (a real job's
    /// rows not numbered exactly 0..N).
    pub duplicated: u64,
    /// Stored rows whose values differ from what was sent.
    pub wrong: u64,
    pub jobs: u64,
    pub jobs_by_state: BTreeMap<String, u64>,
    /// Jobs neither terminal nor running at the end.
    pub not_terminal: u64,
    /// Attempts of simulated workers' jobs ended by a lease expiry.
    pub stall_spent_attempts: u64,
    /// Real jobs that succeeded, and their rows checked.
    pub real_succeeded: u64,
    pub real_rows_checked: u64,
    /// Simulated jobs refused as stale (a claim that a server crash rolled back: legitimate).
    pub rolled_back_claims: u64,
    /// Everything wrong, in words.
    pub violations: Vec<String>,
}

impl Report {
    /// The figures, one per line.
    pub fn print(&self) {
        println!("soak: {:.0} s", self.elapsed.as_secs_f64());
        println!(
            "  simulated jobs whose claim a server crash rolled back (dropped, run again): {}",
            self.rolled_back_claims
        );
        let faults: u64 = self.faults.values().sum();
        println!("  faults injected: {faults} ({:?})", self.faults);
        println!(
            "  rows acknowledged (simulated workers): {}; rows stored in all: {}",
            self.rows_acked, self.rows_stored
        );
        println!(
            "  real jobs succeeded: {} ({} rows checked line by line)",
            self.real_succeeded, self.real_rows_checked
        );
        println!("  jobs: {} {:?}", self.jobs, self.jobs_by_state);
        println!(
            "  lost: {}  duplicated: {}  wrong: {}  not terminal or running: {}  attempts spent by a server stall: {}",
            self.lost, self.duplicated, self.wrong, self.not_terminal, self.stall_spent_attempts
        );
        for v in self.violations.iter().take(20) {
            println!("  VIOLATION: {v}");
        }
    }

    /// Nothing lost, duplicated or wrong; every job accounted for.
    pub fn ok(&self) -> bool {
        self.violations.is_empty()
    }
}

/// A row's values, from its key: what was sent can be checked without keeping it.
fn sim_row(job: u64, attempt: u32, seq: u64) -> Row {
    let x = (job * 1_000_003 + attempt as u64 * 7919 + seq) as f64;
    Row {
        seq,
        generation: Some(seq + 1),
        best: Some(x),
        mean: Some(-x),
        ..Row::default()
    }
}

/// A small deterministic random source (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn secs(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::from_secs_f64(lo + (hi - lo) * (self.below(1_000_000) as f64 / 1e6))
    }
}

const TOKEN: &str = "soak-admin-token-0123456789";

/// The server process: started, killed and restarted on one port and data dir.
struct ServerProc {
    gaia: PathBuf,
    data: PathBuf,
    port: u16,
    lease_timeout: u64,
    child: Option<Child>,
}

impl ServerProc {
    fn spawn(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let mut child = Command::new(&self.gaia)
                .args([
                    "serve",
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    &self.port.to_string(),
                ])
                .arg("--data-dir")
                .arg(&self.data)
                .args([
                    "--lease-timeout",
                    &self.lease_timeout.to_string(),
                    "--heartbeat",
                    "1",
                ])
                .env("GAIA_TOKEN", TOKEN)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start gaia serve");
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let port = lines.by_ref().find_map(|l| {
                l.ok()?
                    .split("listening on http://")
                    .nth(1)?
                    .rsplit(':')
                    .next()?
                    .trim()
                    .parse::<u16>()
                    .ok()
            });
            if let Some(port) = port {
                std::thread::spawn(move || for _ in lines {});
                self.port = port;
                self.child = Some(child);
                return;
            }
            // The port may linger a moment after a kill; the database lock too.
            let _ = child.kill();
            let _ = child.wait();
            assert!(Instant::now() < deadline, "gaia serve does not start again");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn signal(&self, sig: i32) {
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.signal_pid(c.id() as i32, libc::SIGCONT);
            self.signal_pid(c.id() as i32, libc::SIGTERM);
            let _ = c.wait();
        }
    }

    fn signal_pid(&self, pid: i32, sig: i32) {
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            self.signal_pid(c.id() as i32, libc::SIGCONT);
        }
        self.kill9();
    }
}

/// A real `gaia work` process.
struct RealWorker {
    gaia: PathBuf,
    name: String,
    state: PathBuf,
    experiments: PathBuf,
    url: String,
    child: Option<Child>,
}

impl RealWorker {
    fn spawn(&mut self) {
        let child = Command::new(&self.gaia)
            .args([
                "work", "--name", &self.name, "--gpu", "none", "--kinds", "command",
            ])
            .args([
                "--allow-commands",
                "--kill-grace",
                "1",
                "--python",
                "python3",
            ])
            .arg("--state-dir")
            .arg(&self.state)
            .arg("--experiments-dir")
            .arg(&self.experiments)
            .env("GAIA_SERVER", &self.url)
            .env("GAIA_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gaia work");
        self.child = Some(child);
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for RealWorker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// What the simulated workers share.
/// Acknowledged seqs `first..=last` of one attempt.
type SeqRange = (u64, u64);

struct Shared {
    url: String,
    stop: AtomicBool,
    /// No more jobs are submitted.
    fed: AtomicBool,
    started: Instant,
    /// Rows per second the simulated workers may send in all.
    rate: f64,
    total_rows: u64,
    acked: AtomicU64,
    /// (job, attempt) → the seqs acknowledged, as ranges.
    acked_ranges: Mutex<HashMap<(u64, u32), Vec<SeqRange>>>,
    /// Simulated jobs whose lease was taken away (a violation unless a restart rolled it back).
    stale: AtomicU64,
    errors: Mutex<Vec<String>>,
}

fn client(url: &str) -> Client {
    Client::new(url, Some(TOKEN.into())).expect("client")
}

/// Retries `f` while the server cannot be reached (killed, restarting, stopped).
fn retry<T>(sh: &Shared, mut f: impl FnMut() -> Result<T, ClientError>) -> Result<T, ClientError> {
    let mut wait = Duration::from_millis(50);
    loop {
        match f() {
            Err(e) if e.is_unreachable() || is_interrupted(&e) => {
                let _ = sh;
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(1));
            }
            other => return other,
        }
    }
}

fn is_interrupted(e: &ClientError) -> bool {
    matches!(e, ClientError::Interrupted { .. }) || e.to_string().contains("decode answer")
}

fn is_stale(e: &ClientError) -> bool {
    matches!(e, ClientError::Status { status: 409, .. })
}

/// One simulated worker: claims experiment jobs and streams their rows, heart-beating.
fn sim_worker(sh: Arc<Shared>, i: usize, seed: u64) {
    let c = client(&sh.url);
    let mut rng = Rng(seed | 1);
    let reg = RegisterRequest {
        worker_id: None,
        name: format!("sim-{i}"),
        version: gaia_core::VERSION.into(),
        hardware: Default::default(),
        kinds: vec![JobKind::Experiment],
        tags: Vec::new(),
        slots: 1,
    };
    let Ok(me) = retry(&sh, || c.register(&reg)) else {
        return;
    };
    let id = me.worker_id;
    let caps = Capabilities {
        kinds: vec![JobKind::Experiment],
        ..Capabilities::default()
    };
    let mut last_beat = Instant::now();
    let beat = |running: Vec<LeaseRef>, last: &mut Instant| -> Vec<u64> {
        if last.elapsed() < Duration::from_millis(700) {
            return Vec::new();
        }
        *last = Instant::now();
        let req = HeartbeatRequest {
            running,
            ..HeartbeatRequest::default()
        };
        match retry(&sh, || c.heartbeat(&id, &req)) {
            Ok(r) => r.stale,
            Err(_) => Vec::new(),
        }
    };
    while !sh.stop.load(Ordering::SeqCst) {
        let req = ClaimRequest {
            worker_id: id.clone(),
            capabilities: caps.clone(),
            wait_ms: 1000,
            finished: None,
            watch_study: None,
        };
        beat(Vec::new(), &mut last_beat);
        let a = match retry(&sh, || c.claim(&req)) {
            Ok(Some(a)) => a,
            Ok(None) => continue,
            Err(e) => {
                sh.errors
                    .lock()
                    .unwrap()
                    .push(format!("sim-{i} claim: {e}"));
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        let (job, attempt, lease) = (a.job.id, a.attempt, a.lease);
        let lref = LeaseRef {
            job,
            attempt,
            lease,
        };
        let mut seq = 0;
        let mut lost_lease = false;
        while seq < sh_rows_per_job(&a.job) {
            // Pace: the rows allowed so far at the soak's rate.
            let allowed = (sh.started.elapsed().as_secs_f64() * sh.rate) as u64;
            if sh.acked.load(Ordering::SeqCst) > allowed {
                std::thread::sleep(Duration::from_millis(100));
                if !beat(vec![lref], &mut last_beat).is_empty() {
                    lost_lease = true;
                    break;
                }
                continue;
            }
            let n = (50 + rng.below(250)).min(sh_rows_per_job(&a.job) - seq);
            let rows: Vec<Row> = (seq..seq + n).map(|s| sim_row(job, attempt, s)).collect();
            let batch = RowBatch {
                attempt,
                lease,
                rows,
                fraction: None,
                status: None,
            };
            match retry(&sh, || c.post_rows(job, &batch, rng.below(2) == 0)) {
                Ok(_) => {
                    sh.acked.fetch_add(n, Ordering::SeqCst);
                    sh.acked_ranges
                        .lock()
                        .unwrap()
                        .entry((job, attempt))
                        .or_default()
                        .push((seq, seq + n));
                    // Sometimes the same batch again, as a worker does after an outage.
                    if rng.below(20) == 0 {
                        let _ = retry(&sh, || c.post_rows(job, &batch, false));
                    }
                    seq += n;
                }
                Err(e) if is_stale(&e) => {
                    lost_lease = true;
                    break;
                }
                Err(e) => {
                    sh.errors
                        .lock()
                        .unwrap()
                        .push(format!("sim-{i} rows of job {job}: {e}"));
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            if !beat(vec![lref], &mut last_beat).is_empty() {
                lost_lease = true;
                break;
            }
        }
        if lost_lease {
            sh.stale.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        let done = CompleteRequest {
            attempt,
            lease,
            outcome: Outcome::Succeeded,
            exit_code: Some(0),
            duration_ms: 1,
            error: None,
            result: None,
            started_us: None,
        };
        match retry(&sh, || c.complete(job, &done)) {
            Ok(_) => {}
            Err(e) if is_stale(&e) => {
                sh.stale.fetch_add(1, Ordering::SeqCst);
            }
            Err(e) => sh
                .errors
                .lock()
                .unwrap()
                .push(format!("sim-{i} complete {job}: {e}")),
        }
    }
}

/// A simulated job's row count rides in its params.
fn sh_rows_per_job(job: &gaia_core::model::Job) -> u64 {
    job.spec
        .params
        .get("rows")
        .and_then(|v| v.as_u64())
        .unwrap_or(1000)
}

fn real_job(lines: u64) -> JobSpec {
    let script = format!(
        "import time\nfor i in range({lines}):\n    print(f'Gen {{i + 1}} | Best: {{i}} | Mean: {{-i}}', flush=True)\n    time.sleep(0.004)\n"
    );
    JobSpec {
        kind: JobKind::Command,
        argv: vec!["python3".into(), "-c".into(), script],
        max_attempts: 20,
        ..JobSpec::default()
    }
}

/// Runs the soak and checks the database.
pub fn run(cfg: &Config) -> Report {
    let tmp = tempfile::tempdir().expect("temp dir");
    let mut server = ServerProc {
        gaia: cfg.gaia.clone(),
        data: tmp.path().join("data"),
        port: 0,
        lease_timeout: cfg.lease_timeout_secs,
        child: None,
    };
    server.spawn();
    let url = format!("http://127.0.0.1:{}", server.port);
    let experiments = tmp.path().join("experiments");
    std::fs::create_dir_all(&experiments).unwrap();
    let sh = Arc::new(Shared {
        url: url.clone(),
        stop: AtomicBool::new(false),
        fed: AtomicBool::new(false),
        started: Instant::now(),
        rate: cfg.rows as f64 / cfg.duration.as_secs_f64().max(1.0) * 1.15,
        total_rows: cfg.rows,
        acked: AtomicU64::new(0),
        acked_ranges: Mutex::new(HashMap::new()),
        stale: AtomicU64::new(0),
        errors: Mutex::new(Vec::new()),
    });
    let mut report = Report::default();
    let mut rng = Rng(cfg.seed | 1);

    // Jobs: simulated ones to carry the rows, real ones for the real workers, kept queued.
    let feeder = {
        let sh = sh.clone();
        let cfg = cfg.clone();
        std::thread::spawn(move || {
            let c = client(&sh.url);
            let sim_jobs = cfg.rows.div_ceil(cfg.rows_per_job);
            let mut submitted = 0;
            while !sh.fed.load(Ordering::SeqCst) {
                let queued = retry(&sh, || c.status())
                    .map(|s| s.jobs.get("queued").copied().unwrap_or(0))
                    .unwrap_or(0);
                let want = (cfg.sim_workers + cfg.real_workers) as u64 * 2;
                if queued < want {
                    let mut specs = Vec::new();
                    for _ in 0..(want - queued) {
                        if submitted < sim_jobs {
                            let mut s = JobSpec::experiment("soak", 1);
                            s.max_attempts = 20;
                            s.params.insert("rows".into(), cfg.rows_per_job.into());
                            specs.push(s);
                            submitted += 1;
                        }
                        if cfg.real_workers > 0 {
                            specs.push(real_job(cfg.real_lines));
                        }
                    }
                    if !specs.is_empty() {
                        let _ = retry(&sh, || c.submit_batch(specs.clone()));
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let sims: Vec<_> = (0..cfg.sim_workers)
        .map(|i| {
            let sh = sh.clone();
            let seed = cfg.seed.wrapping_mul(31).wrapping_add(i as u64 + 1);
            std::thread::spawn(move || sim_worker(sh, i, seed))
        })
        .collect();
    let mut reals: Vec<RealWorker> = (0..cfg.real_workers)
        .map(|i| {
            let mut w = RealWorker {
                gaia: cfg.gaia.clone(),
                name: format!("real-{i}"),
                state: tmp.path().join(format!("real-{i}")),
                experiments: experiments.clone(),
                url: url.clone(),
                child: None,
            };
            w.spawn();
            w
        })
        .collect();

    // Faults until the time is up.
    let end = Instant::now() + cfg.duration;
    let mut bump = |k: &'static str| *report.faults.entry(k).or_insert(0) += 1;
    let mut fault = 0u64;
    while Instant::now() < end {
        std::thread::sleep(rng.secs(cfg.fault_every * 0.5, cfg.fault_every * 1.5));
        if Instant::now() >= end {
            break;
        }
        // Each kind in turn (a short run sees every one), with random timing and lengths.
        fault += 1;
        match fault % 4 {
            0 => {
                server.kill9();
                std::thread::sleep(rng.secs(0.0, 2.0));
                server.spawn();
                bump("server kill -9");
            }
            1 | 3 => {
                // A network cut: every connection hangs, then the server comes back. Every
                // other one lasts longer than the lease timeout: that time must not count.
                let secs = if fault % 4 == 1 {
                    rng.secs(1.0, cfg.lease_timeout_secs as f64 * 0.8)
                } else {
                    rng.secs(
                        cfg.lease_timeout_secs as f64 * 1.2,
                        cfg.lease_timeout_secs as f64 * 2.0,
                    )
                };
                server.signal(libc::SIGSTOP);
                std::thread::sleep(secs);
                server.signal(libc::SIGCONT);
                bump(if secs.as_secs() >= cfg.lease_timeout_secs {
                    "network cut (SIGSTOP) longer than the lease timeout"
                } else {
                    "network cut (SIGSTOP)"
                });
            }
            _ if !reals.is_empty() => {
                let w = rng.below(reals.len() as u64) as usize;
                reals[w].kill9();
                std::thread::sleep(rng.secs(0.0, 2.0));
                reals[w].spawn();
                bump("worker kill -9");
            }
            _ => {}
        }
    }

    // Drain: no more faults and no more jobs; let every job that was submitted run to its end
    // (bounded), then stop everything.
    sh.fed.store(true, Ordering::SeqCst);
    let _ = feeder.join();
    let drain_end = Instant::now() + Duration::from_secs(180);
    let c = client(&url);
    loop {
        let s = retry(&sh, || c.status()).unwrap();
        let open = s.jobs.get("running").copied().unwrap_or(0)
            + s.jobs.get("queued").copied().unwrap_or(0);
        if open == 0 || Instant::now() > drain_end {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    sh.stop.store(true, Ordering::SeqCst);
    for s in sims {
        let _ = s.join();
    }
    for w in &mut reals {
        w.kill9();
    }
    server.stop();
    report.elapsed = sh.started.elapsed();
    report.rows_acked = sh.acked.load(Ordering::SeqCst);
    report.rolled_back_claims = sh.stale.load(Ordering::SeqCst);
    for e in sh.errors.lock().unwrap().iter().take(5) {
        report.violations.push(format!("worker call failed: {e}"));
    }
    check(&server.data, &sh, cfg, &mut report);
    report
}

/// Reads the database (the server stopped) and checks every promise.
fn check(data: &Path, sh: &Shared, cfg: &Config, report: &mut Report) {
    let store = gaia_core::store::Store::open(data).expect("open the soak's database");
    let read = store.read().unwrap();
    let acked = sh.acked_ranges.lock().unwrap();
    let mut jobs = Vec::new();
    read.for_each_job(|j| {
        jobs.push(j);
        Ok::<(), gaia_core::error::StoreError>(())
    })
    .unwrap();
    report.jobs = jobs.len() as u64;
    for job in &jobs {
        *report
            .jobs_by_state
            .entry(job.state.as_str().to_string())
            .or_insert(0) += 1;
        let sim = job.spec.kind() == JobKind::Experiment;
        if !(job.state.is_terminal() || job.state == JobState::Running) {
            report.not_terminal += 1;
            report.violations.push(format!(
                "job {} ended the soak {}",
                job.id,
                job.state.as_str()
            ));
        }
        if sim {
            let expired = job
                .attempts
                .iter()
                .filter(|a| a.outcome.as_deref() == Some("lease expired"))
                .count() as u64;
            if expired > 0 {
                report.stall_spent_attempts += expired;
                report.violations.push(format!(
                    "job {} (a simulated worker's, which never dies) lost {expired} attempt(s) to a lease expiry",
                    job.id
                ));
            }
        }
        for attempt in read.row_attempts(job.id).unwrap() {
            let rows = read.rows(job.id, attempt).unwrap();
            report.rows_stored += rows.len() as u64;
            if sim {
                let ranges = acked.get(&(job.id, attempt)).cloned().unwrap_or_default();
                let mut want: Vec<u64> = ranges.iter().flat_map(|&(a, b)| a..b).collect();
                want.sort_unstable();
                want.dedup();
                let stored: std::collections::HashSet<u64> = rows.iter().map(|r| r.seq).collect();
                for s in &want {
                    if !stored.contains(s) {
                        report.lost += 1;
                    }
                }
                for r in &rows {
                    let sent = sim_row(job.id, attempt, r.seq);
                    if r.best != sent.best || r.generation != sent.generation {
                        report.wrong += 1;
                    }
                    // Rows stored past what was ever sent cannot be: sent seqs are 0..N.
                    if r.seq >= sh_rows_per_job(job) {
                        report.duplicated += 1;
                    }
                }
            } else {
                // A real job's rows are numbered by its worker in print order: row s is the
                // line `Gen s+1`. A line stored twice or lost shifts every row after it.
                for r in &rows {
                    if r.generation != Some(r.seq + 1) || r.best != Some(r.seq as f64) {
                        report.duplicated += 1;
                    }
                }
                if job.state == JobState::Succeeded && attempt == job.attempt {
                    report.real_succeeded += 1;
                    report.real_rows_checked += rows.len() as u64;
                    if rows.len() as u64 != cfg.real_lines {
                        report.lost += cfg.real_lines.saturating_sub(rows.len() as u64);
                        report.violations.push(format!(
                            "real job {} succeeded with {} rows, its program printed {}",
                            job.id,
                            rows.len(),
                            cfg.real_lines
                        ));
                    }
                }
            }
        }
    }
    // Acknowledged rows of attempts the store does not know at all.
    for (&(job, attempt), ranges) in acked.iter() {
        if read
            .rows(job, attempt)
            .map(|r| r.is_empty())
            .unwrap_or(true)
        {
            let n: u64 = ranges.iter().map(|(a, b)| b - a).sum();
            if n > 0 {
                report.lost += n;
            }
        }
    }
    if report.lost > 0 {
        report
            .violations
            .push(format!("{} acknowledged rows lost", report.lost));
    }
    if report.duplicated > 0 {
        report
            .violations
            .push(format!("{} rows duplicated", report.duplicated));
    }
    if report.wrong > 0 {
        report
            .violations
            .push(format!("{} rows stored with other values", report.wrong));
    }
    if report.rows_acked < cfg.rows * 9 / 10 {
        report.violations.push(format!(
            "only {} of the {} rows were acknowledged in the time",
            report.rows_acked, cfg.rows
        ));
    }
}
