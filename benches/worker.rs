//! Worker benchmarks: dispatch latency (submit → start) for a built-in job and for an experiment
//! process, built-in jobs/s with 2 slots, worker idle RSS, and the worker's overhead on an
//! experiment's wall time. Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p gaia-cli --bench worker` (BENCH_QUICK=1 for a short run; BUSY_SECS sets the
//! overhead experiment's length, default 60; BENCH_ONLY=overhead runs only that part).

#[path = "../tests/helper/mod.rs"]
mod helper;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gaia_core::model::{JobKind, JobSpec, JobState};
use helper::{Server, Worker, wait_done, wait_for};

fn quick() -> bool {
    std::env::var_os("BENCH_QUICK").is_some()
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Submit → `job_started` event seen on the live stream, for built-in jobs on an idle worker.
fn builtin_dispatch(server: &Server) {
    let n = if quick() { 100 } else { 500 };
    let c = server.client();
    let url = format!(
        "{}/api/v1/events?rows=0&token={}",
        server.url(),
        server.token
    );
    let (tx, rx) = std::sync::mpsc::channel::<(u64, Instant)>();
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(None)
            .build()
            .into();
        let resp = agent
            .get(&url)
            .header("accept", "text/event-stream")
            .call()
            .unwrap();
        let reader = BufReader::new(resp.into_body().into_reader());
        for line in reader.lines().map_while(Result::ok) {
            if let Some(v) = line
                .strip_prefix("data: ")
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                && v["kind"] == "job_started"
            {
                let _ = tx.send((v["job"].as_u64().unwrap(), Instant::now()));
            }
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let mut lat = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let id = c.submit(&JobSpec::builtin(JobKind::Hash, "x")).unwrap();
        let (got, at) = loop {
            let (j, at) = rx
                .recv_timeout(Duration::from_secs(10))
                .expect("job_started event");
            if j == id {
                break (j, at);
            }
        };
        assert_eq!(got, id);
        lat.push(at.duration_since(t).as_secs_f64() * 1000.0);
        wait_done(&c, id, Duration::from_secs(10));
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "dispatch, built-in job (submit → job_started on an idle worker), n={n}: p50 {:.2} ms, p99 {:.2} ms (target p50 ≤ 2 ms)",
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
}

/// Submit → the experiment process has started (it writes its start time), on an idle worker.
fn process_dispatch(server: &Server) {
    let n = if quick() { 50 } else { 200 };
    let stamp = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/fixtures/stamp-python");
    let w = Worker::start(
        server,
        "stamper",
        &["--python", stamp.to_str().unwrap(), "--kinds", "experiment"],
    );
    w.wait_log("registered");
    std::thread::sleep(Duration::from_millis(300));
    let c = server.client();
    let mut lat = Vec::new();
    for _ in 0..n {
        let t0 = now_ns();
        let id = c.submit(&JobSpec::experiment("cma_es", 100)).unwrap();
        let job = wait_done(&c, id, Duration::from_secs(20));
        assert_eq!(job.state, JobState::Succeeded, "{job:?}");
        let mut buf = Vec::new();
        c.download(&format!("/api/v1/jobs/{id}/files/started-ns"), &mut buf)
            .unwrap();
        let started: Option<u128> = String::from_utf8_lossy(&buf).trim().parse().ok();
        if let Some(s) = started {
            lat.push((s.saturating_sub(t0)) as f64 / 1e6);
        }
    }
    lat.sort_by(f64::total_cmp);
    println!(
        "dispatch, experiment process (submit → process running, measured by the process), n={}: p50 {:.2} ms, p99 {:.2} ms (target p50 ≤ 5 ms)",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
}

/// Built-in `hash` jobs end to end with 2 slots.
fn throughput(server: &Server) {
    let n = if quick() { 2000 } else { 10_000 };
    let w = Worker::start(server, "hasher", &["--slots", "2", "--kinds", "hash"]);
    w.wait_log("registered");
    let c = server.client();
    let before = c.status().unwrap().jobs["succeeded"];
    let t = Instant::now();
    for chunk in 0..(n / 1000) {
        let specs = (0..1000)
            .map(|i| JobSpec::builtin(JobKind::Hash, &format!("{chunk}-{i}")))
            .collect();
        c.submit_batch(specs).unwrap();
    }
    wait_for("all hash jobs", Duration::from_secs(300), || {
        (c.status().unwrap().jobs["succeeded"] - before >= n as u64).then_some(())
    });
    let secs = t.elapsed().as_secs_f64();
    println!(
        "built-in hash jobs end to end, 2 slots, {n} jobs: {:.0} jobs/s (target ≥ 2,000; Celery + Redis ≈ 700)",
        n as f64 / secs
    );
    drop(w);
}

fn idle_rss(server: &Server) {
    let w = Worker::start(server, "idler", &["--kinds", "hash"]);
    w.wait_log("registered");
    std::thread::sleep(Duration::from_secs(3));
    println!(
        "worker idle RSS: {:.1} MB (target ≤ 10 MB)",
        rss_kib(w.pid()) as f64 / 1024.0
    );
}

fn overhead(server: &Server) {
    let secs: f64 = std::env::var("BUSY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if quick() { 10.0 } else { 60.0 });
    let busy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../benches/fixtures/busy.py");
    let cal = Command::new("python3")
        .arg(&busy)
        .env("BUSY_SECS", secs.to_string())
        .output()
        .unwrap();
    let steps = String::from_utf8_lossy(&cal.stdout).trim().to_string();
    let t = Instant::now();
    let direct = Command::new("python3")
        .arg(&busy)
        .env("BUSY_STEPS", &steps)
        .env("BUSY_SECS", secs.to_string())
        .output()
        .unwrap();
    let direct_secs = t.elapsed().as_secs_f64();
    let gens = String::from_utf8_lossy(&direct.stdout).lines().count();

    let w = Worker::start(
        server,
        "overhead",
        &["--allow-commands", "--kinds", "command"],
    );
    w.wait_log("registered");
    let c = server.client();
    let spec = JobSpec {
        kind: JobKind::Command,
        argv: vec![
            "env".into(),
            format!("BUSY_STEPS={steps}"),
            format!("BUSY_SECS={secs}"),
            "python3".into(),
            busy.display().to_string(),
        ],
        max_attempts: 1,
        ..JobSpec::default()
    };
    let cpu = |pid: i32| -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let f: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        // utime + stime, in clock ticks (100 per second on Linux).
        (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
    };
    let before = cpu(w.pid());
    let id = c.submit(&spec).unwrap();
    let job = wait_done(&c, id, Duration::from_secs((secs * 4.0) as u64 + 60));
    let worker_cpu = cpu(w.pid()) - before;
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.progress.rows as usize, gens, "every generation arrived");
    let via = job.duration_ms().unwrap() as f64 / 1000.0;
    println!(
        "worker overhead on a {secs:.0} s experiment ({gens} generation lines): the worker used {:.2} s of CPU = {:.2} % of the experiment's {via:.1} s (target ≤ 1 %); wall time direct {direct_secs:.2} s vs through GAIA {via:.2} s ({:+.1} %, within this machine's run-to-run noise)",
        worker_cpu,
        worker_cpu / via * 100.0,
        (via / direct_secs - 1.0) * 100.0
    );
    drop(w);
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let server = Server::start_with(&["--heartbeat", "5"]);
    if std::env::var("BENCH_ONLY").as_deref() == Ok("overhead") {
        overhead(&server);
        return;
    }
    {
        let w = Worker::start(&server, "dispatcher", &["--kinds", "hash"]);
        w.wait_log("registered");
        builtin_dispatch(&server);
    }
    process_dispatch(&server);
    throughput(&server);
    idle_rss(&server);
    overhead(&server);
}
