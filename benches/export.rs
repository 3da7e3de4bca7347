//! Exports of a big job, through the real release `gaia serve` and `gaia export` processes:
//! - CSV of a 1,000,000-row job: seconds, peak RSS of the server and of the CLI;
//! - JSON of the same job: the same figures;
//! - PNG of the same job (downsampled first): seconds (target under 1 s).
//!
//! The server is restarted after the rows are stored, so its peak RSS is that of serving the
//! export, not of the ingest. The CLI's peak RSS comes from `wait4`.
//!
//! `cargo bench -p gaia-cli --bench export` (`EXPORT_ROWS=5000000` for a bigger job)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gaia_core::client::Client;
use gaia_core::model::{Capabilities, JobKind, JobSpec, Row};
use gaia_core::protocol::{ClaimRequest, RegisterRequest, RowBatch};

/// Rows in the exported job: 1,000,000, or `EXPORT_ROWS` (5000000 shows that memory does not
/// grow with the job).
fn rows() -> u64 {
    std::env::var("EXPORT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}
const TOKEN: &str = "bench-export-token-0123456789";

struct Serve {
    child: Child,
    port: u16,
}

impl Serve {
    fn start(data: &Path) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gaia"))
            .args(["serve", "--bind", "127.0.0.1", "--port", "0", "--data-dir"])
            .arg(data)
            .env("GAIA_TOKEN", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gaia serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("gaia serve printed its address")
                .unwrap();
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest.rsplit(':').next().unwrap().trim().parse().unwrap();
            }
        };
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Serve { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn client(&self) -> Client {
        Client::new(&self.url(), Some(TOKEN.into())).unwrap()
    }

    /// A /proc/PID/status field in MiB (VmRSS, VmHWM).
    fn mib(&self, field: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim_start_matches(':').split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb / 1024.0
    }

    fn stop(mut self) {
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Rows `from..to` with eight metrics each, values like an optimiser's.
fn gen_rows(from: u64, to: u64) -> Vec<Row> {
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

/// Stores `n` rows for one running job; returns its id.
fn fill(server: &Serve, n: u64) -> u64 {
    let client = server.client();
    let worker = client
        .register(&RegisterRequest {
            worker_id: None,
            name: "bench".into(),
            version: gaia_core::VERSION.into(),
            hardware: Default::default(),
            kinds: vec![JobKind::Experiment],
            tags: vec![],
            slots: 1,
        })
        .unwrap()
        .worker_id;
    let mut spec = JobSpec::experiment("cma_es", 100_000_000);
    spec.env = Some("CartPole-v1".into());
    spec.seed = Some(1);
    let id = client.submit(&spec).unwrap();
    let a = client
        .claim(&ClaimRequest {
            worker_id: worker,
            capabilities: Capabilities {
                kinds: vec![JobKind::Experiment],
                ..Default::default()
            },
            wait_ms: 0,
            finished: None,
            watch_study: None,
        })
        .unwrap()
        .unwrap();
    let per = 10_000;
    std::thread::scope(|s| {
        for t in 0..2u64 {
            let client = client.clone();
            let a = &a;
            s.spawn(move || {
                let mut b = t;
                while b * per < n {
                    let batch = RowBatch {
                        attempt: a.attempt,
                        lease: a.lease,
                        rows: gen_rows(b * per, ((b + 1) * per).min(n)),
                        fraction: None,
                        status: None,
                    };
                    client.post_rows(id, &batch, true).unwrap();
                    b += 2;
                }
            });
        }
    });
    id
}

/// Runs `gaia export` with `args`; returns wall seconds and the CLI's peak RSS in MiB.
// The child is reaped with wait4 (for its rusage), not Child::wait.
#[allow(clippy::zombie_processes)]
fn export(server: &Serve, args: &[&str]) -> (f64, f64) {
    let t0 = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_gaia"))
        .arg("export")
        .args(args)
        .env("GAIA_SERVER", server.url())
        .env("GAIA_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    let secs = t0.elapsed().as_secs_f64();
    assert!(r > 0 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    (secs, usage.ru_maxrss as f64 / 1024.0)
}

fn lines_of(path: &Path) -> u64 {
    let f = std::fs::File::open(path).unwrap();
    BufReader::with_capacity(1 << 20, f).split(b'\n').count() as u64
}

fn main() {
    let dir = match std::env::var_os("GAIA_BENCH_DIR") {
        Some(base) => tempfile::tempdir_in(base).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let data = dir.path().join("data");
    let out: PathBuf = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let n = rows();

    let server = Serve::start(&data);
    let t0 = Instant::now();
    let id = fill(&server, n);
    println!(
        "stored {} rows (8 metrics each) in {:.1} s",
        n,
        t0.elapsed().as_secs_f64()
    );
    server.stop();

    // A fresh server process: its peak RSS is the export's.
    let server = Serve::start(&data);
    server.client().healthz().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "server RSS before the exports: {:.1} MiB",
        server.mib("VmRSS")
    );
    let sid = id.to_string();

    let csv = out.join("job.csv");
    let (secs, cli_peak) = export(
        &server,
        &["--job", &sid, "--csv", "--out", csv.to_str().unwrap()],
    );
    let size = std::fs::metadata(&csv).unwrap().len();
    assert_eq!(lines_of(&csv), n + 1);
    println!(
        "CSV export of a {}-row job: {secs:.2} s ({:.0} MB, {:.0} k rows/s); peak RSS: CLI {cli_peak:.1} MiB, server {:.1} MiB",
        n,
        size as f64 / 1e6,
        n as f64 / secs / 1e3,
        server.mib("VmHWM")
    );
    std::fs::remove_file(&csv).unwrap();

    let json = out.join("job.json");
    let (secs, cli_peak) = export(
        &server,
        &["--job", &sid, "--json", "--out", json.to_str().unwrap()],
    );
    let size = std::fs::metadata(&json).unwrap().len();
    println!(
        "JSON export of a {}-row job: {secs:.2} s ({:.0} MB); peak RSS: CLI {cli_peak:.1} MiB, server {:.1} MiB",
        n,
        size as f64 / 1e6,
        server.mib("VmHWM")
    );
    std::fs::remove_file(&json).unwrap();

    let png = out.join("job.png");
    let mut times = Vec::new();
    for _ in 0..5 {
        let (secs, _) = export(
            &server,
            &["--job", &sid, "--png", "--out", png.to_str().unwrap()],
        );
        times.push(secs);
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "PNG (1600x1000) of a {}-row job, CLI end to end: median {:.2} s, min {:.2} s, max {:.2} s (target < 1 s)",
        n, times[2], times[0], times[4]
    );
    // The server's part alone: the request until the whole image has arrived.
    let client = server.client();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let mut sink = Vec::new();
        client
            .export(
                &gaia_core::export::Target::Job(id),
                gaia_core::export::Format::Png,
                &Default::default(),
                &mut sink,
                &mut |_| {},
            )
            .unwrap();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!(
        "PNG over HTTP (downsample from block summaries, draw, encode): median {:.2} s; server peak RSS {:.1} MiB",
        times[2],
        server.mib("VmHWM")
    );
    if std::env::var_os("GAIA_BENCH_KEEP_PNG").is_some() {
        std::fs::copy(&png, "bench-export-job.png").unwrap();
    }
}
