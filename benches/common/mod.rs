//! What the benchmarks share: a real release `gaia serve` on port 0 in a temp dir, workers and
//! claimed jobs to write into, rows as experiments report them, and small statistics.
//!
//! Each bench is a plain `main` (`harness = false`) that prints its figures.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gaia_core::client::Client;
use gaia_core::model::{Capabilities, JobKind, JobSpec, Row};
use gaia_core::protocol::{Assignment, ClaimRequest, RegisterRequest, RowBatch};

/// Rows per batch, as the worker sends them.
pub const BATCH: u64 = 500;

/// A running `gaia serve`, killed when dropped.
pub struct BenchServer {
    child: Child,
    _dir: Option<tempfile::TempDir>,
    data_dir: std::path::PathBuf,
    args: Vec<String>,
    pub port: u16,
    pub token: String,
}

impl BenchServer {
    /// Starts the release server with extra flags.
    pub fn start(args: &[&str]) -> BenchServer {
        let dir = bench_dir();
        let mut server = BenchServer::start_in(&dir.path().join("data"), args);
        server._dir = Some(dir);
        server
    }

    /// Starts the release server on an existing data dir (kept when the server stops). A
    /// database another process still holds (a store closing in this process) is waited for.
    pub fn start_in(data_dir: &std::path::Path, args: &[&str]) -> BenchServer {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = BenchServer::try_start_in(data_dir, args) {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gaia serve did not start on {}",
                data_dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts the release server on a data dir; None if it exits before listening.
    pub fn try_start_in(data_dir: &std::path::Path, args: &[&str]) -> Option<BenchServer> {
        let token = "bench-admin-token-0123456789".to_string();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let (child, port) = Self::spawn(data_dir, &args, &token)?;
        Some(BenchServer {
            child,
            _dir: None,
            data_dir: data_dir.to_path_buf(),
            args,
            port,
            token,
        })
    }

    /// Stops the server and starts it again on the same data (a fresh process: its memory is
    /// what a server that opens this database needs).
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let (child, port) = loop {
            if let Some(started) = Self::spawn(&self.data_dir, &self.args, &self.token) {
                break started;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "gaia serve did not start again"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        self.child = child;
        self.port = port;
    }

    /// Starts `gaia serve` on `data_dir`: the process and its port, None if it exits before
    /// listening.
    fn spawn(data_dir: &std::path::Path, args: &[String], token: &str) -> Option<(Child, u16)> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gaia"))
            .args(["serve", "--bind", "127.0.0.1", "--port", "0", "--data-dir"])
            .arg(data_dir)
            .args(args)
            .env("GAIA_TOKEN", token)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gaia serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.wait();
                return None;
            };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.rsplit(':').next().unwrap().trim().parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Some((child, port))
    }

    /// SIGTERM, and waits for the clean stop (the database is closed when this returns).
    pub fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }

    /// How the server process stands, for messages when a request fails: "still running", or
    /// how it ended (exit code or signal).
    pub fn state(&self) -> String {
        let mut status = 0;
        // SAFETY: waitpid on our own child with WNOHANG only reads its state.
        let r = unsafe { libc::waitpid(self.child.id() as i32, &mut status, libc::WNOHANG) };
        if r == 0 {
            "still running".into()
        } else if r < 0 {
            "gone (already reaped)".into()
        } else if libc::WIFSIGNALED(status) {
            format!("killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!("exited with code {}", libc::WEXITSTATUS(status))
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn client(&self) -> Client {
        Client::new(&self.url(), Some(self.token.clone())).unwrap()
    }

    /// The server's resident set size in MiB (VmRSS of /proc/PID/status).
    pub fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/PID/status");
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS in /proc/PID/status");
        kb / 1024.0
    }

    /// CPU time the server has used so far, in seconds: (all threads, the store's writer
    /// thread). From /proc/PID/task/*/schedstat (nanoseconds), so figures do not depend on how
    /// busy the machine is with other work.
    pub fn cpu(&self) -> (f64, f64) {
        let (mut all, mut writer) = (0u64, 0u64);
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).unwrap();
        for task in tasks.flatten() {
            let read = |f: &str| std::fs::read_to_string(task.path().join(f)).unwrap_or_default();
            let ns: u64 = read("schedstat")
                .split_whitespace()
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            all += ns;
            if read("comm").starts_with("gaia-store-writ") {
                writer += ns;
            }
        }
        (all as f64 / 1e9, writer as f64 / 1e9)
    }

    /// A keep-alive HTTP agent for raw calls.
    pub fn agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(true)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into()
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temp dir for a bench's data: in `GAIA_BENCH_DIR` if set. It must not be a tmpfs, or fsyncs
/// cost nothing and the figures flatter.
pub fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("GAIA_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    }
}

/// Registers a worker that runs experiments.
pub fn register(client: &Client, name: &str, kinds: &[JobKind]) -> String {
    client
        .register(&RegisterRequest {
            worker_id: None,
            name: name.into(),
            version: gaia_core::VERSION.into(),
            hardware: Default::default(),
            kinds: kinds.to_vec(),
            tags: Vec::new(),
            slots: 64,
        })
        .unwrap()
        .worker_id
}

/// Claims without waiting (panics if nothing fits).
pub fn claim_now(client: &Client, worker: &str, kinds: &[JobKind]) -> Assignment {
    client
        .claim(&ClaimRequest {
            worker_id: worker.into(),
            capabilities: Capabilities {
                kinds: kinds.to_vec(),
                ..Capabilities::default()
            },
            wait_ms: 0,
            finished: None,
            watch_study: None,
        })
        .unwrap()
        .expect("a queued job to claim")
}

/// `n` running experiments to write rows into.
pub fn running_jobs(client: &Client, n: usize) -> Vec<Assignment> {
    let worker = register(client, "bench-worker", &[JobKind::Experiment]);
    (0..n)
        .map(|_| {
            client
                .submit(&JobSpec::experiment("cma_es", 100_000_000))
                .unwrap();
            claim_now(client, &worker, &[JobKind::Experiment])
        })
        .collect()
}

/// Rows `from..to` with eight metrics each (generation, evals, best, best_ever, mean, sigma,
/// elapsed and one named metric), values like an optimiser's.
pub fn gen_rows(from: u64, to: u64) -> Vec<Row> {
    (from..to)
        .map(|seq| {
            let g = seq as f64;
            Row {
                seq,
                generation: Some(seq + 1),
                evals: Some((seq + 1) as f64 * 64.0),
                best: Some(-500.0 / (1.0 + g).sqrt() + (g * 0.37).sin()),
                best_ever: Some(-500.0 / (1.0 + g).sqrt()),
                mean: Some(-900.0 / (1.0 + g).sqrt() + (g * 0.11).cos() * 3.0),
                sigma: Some(0.5 * (-g / 1e5).exp()),
                elapsed: Some(g * 0.013),
                metrics: vec![("entropy".into(), 1.0 / (1.0 + g))],
            }
        })
        .collect()
}

/// Request bodies of the batches `first..first+count` of one job, encoded up front so the
/// client spends no CPU encoding during the measurement.
pub fn encode_batches(a: &Assignment, first: u64, count: u64, postcard: bool) -> Vec<Vec<u8>> {
    (first..first + count)
        .map(|b| {
            let batch = RowBatch {
                attempt: a.attempt,
                lease: a.lease,
                rows: gen_rows(b * BATCH, (b + 1) * BATCH),
                fraction: None,
                status: None,
            };
            if postcard {
                gaia_core::protocol::encode_postcard(&batch)
            } else {
                serde_json::to_vec(&batch).unwrap()
            }
        })
        .collect()
}

/// Posts pre-encoded batches of one job over one keep-alive connection.
pub fn post_batches(server: &BenchServer, job: u64, bodies: &[Vec<u8>], postcard: bool) {
    let agent = server.agent();
    let url = format!("{}/api/v1/jobs/{job}/rows", server.url());
    let ct = if postcard {
        gaia_core::protocol::POSTCARD_CONTENT_TYPE
    } else {
        "application/json"
    };
    for body in bodies {
        let mut resp = agent
            .post(&url)
            .header("authorization", format!("Bearer {}", server.token))
            .header("content-type", ct)
            .send(&body[..])
            .unwrap();
        let ack: serde_json::Value =
            serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        assert_eq!(ack["stored"], BATCH, "{ack}");
    }
}

/// Fills one job with `rows` rows using `threads` concurrent writers over disjoint seq ranges.
pub fn fill_job(server: &BenchServer, a: &Assignment, rows: u64, threads: u64) {
    let batches = rows / BATCH;
    let per = batches.div_ceil(threads);
    std::thread::scope(|s| {
        for t in 0..threads {
            let first = t * per;
            let count = per.min(batches.saturating_sub(first));
            if count == 0 {
                continue;
            }
            s.spawn(move || {
                for chunk in (first..first + count).step_by(100) {
                    let n = 100.min(first + count - chunk);
                    let bodies = encode_batches(a, chunk, n, true);
                    post_batches(server, a.job.id, &bodies, true);
                }
            });
        }
    });
}

/// The p-th percentile (0..=100) of sorted durations.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[i]
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
