//! The harness: start a real server (and workers) as child processes, talk to them over HTTP
//! and through the `gaia` binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use gaia_core::client::Client;

pub mod api;
pub mod browser;
pub mod soak;
// Benches include this harness too and use none of the API helpers.
#[allow(unused_imports)]
pub use api::*;
#[allow(unused_imports)]
pub use browser::*;

/// The `gaia` binary under test.
pub fn gaia_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gaia"))
}

/// The repository root (for experiments/ and fixtures).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A running `gaia serve`, killed when dropped.
pub struct Server {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub token: String,
    pub extra_args: Vec<String>,
}

impl Server {
    /// Starts a server on port 0 in a fresh temp dir.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra `gaia serve` flags (e.g. `--lease-timeout 2`).
    pub fn start_with(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Server {
            child: None,
            dir,
            port: 0,
            token: "test-admin-token-0123456789".into(),
            extra_args: args.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn(0);
        s
    }

    /// Starts a server on a fresh data dir holding `db` as its database (a restored backup).
    pub fn start_from(db: &Path) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Server {
            child: None,
            dir,
            port: 0,
            token: "test-admin-token-0123456789".into(),
            extra_args: Vec::new(),
        };
        std::fs::create_dir_all(s.data_dir()).unwrap();
        std::fs::copy(db, s.data_dir().join("gaia.redb")).unwrap();
        s.spawn(0);
        s
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self, port: u16) {
        let mut child = Command::new(gaia_bin())
            .args([
                "serve",
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--data-dir",
            ])
            .arg(self.data_dir())
            .args(&self.extra_args)
            .env("GAIA_TOKEN", &self.token)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gaia serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut found = None;
        while Instant::now() < deadline {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.split("listening on http://").nth(1) {
                        found = rest
                            .rsplit(':')
                            .next()
                            .and_then(|p| p.trim().parse::<u16>().ok());
                        break;
                    }
                }
                _ => break,
            }
        }
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        self.port = found.expect("gaia serve printed its address");
        self.child = Some(child);
    }

    /// The server URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client with the admin token.
    pub fn client(&self) -> Client {
        Client::new(&self.url(), Some(self.token.clone())).unwrap()
    }

    /// A client with another token.
    pub fn client_with(&self, token: &str) -> Client {
        Client::new(&self.url(), Some(token.to_string())).unwrap()
    }

    /// Runs the `gaia` CLI against this server.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_at(None, args)
    }

    /// Runs the CLI against this server in `dir` (if given), without stdin.
    fn cli_at(&self, dir: Option<&Path>, args: &[&str]) -> Output {
        let mut cmd = Command::new(gaia_bin());
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        cmd.args(args)
            .env("GAIA_SERVER", self.url())
            .env("GAIA_TOKEN", &self.token)
            .env_remove("GAIA_DATA_DIR")
            .stdin(Stdio::null())
            .output()
            .expect("run gaia")
    }

    /// Runs the CLI in `dir` (exports land there), asserting success; returns stdout.
    pub fn cli_in(&self, dir: &Path, args: &[&str]) -> String {
        ok_out(self.cli_at(Some(dir), args), &format!("gaia {args:?}"))
    }

    /// Runs the CLI expecting failure; returns stderr.
    pub fn cli_err(&self, args: &[&str]) -> String {
        err_out(self.cli(args), &format!("gaia {args:?}"))
    }

    /// Runs the CLI and returns stdout, asserting success.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        ok_out(self.cli(args), &format!("gaia {args:?}"))
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal to the server process (SIGSTOP freezes it, SIGCONT resumes it).
    pub fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().expect("server running").id() as i32;
        unsafe {
            libc::kill(pid, sig);
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("server running");
        unsafe {
            libc::kill(c.id() as i32, libc::SIGTERM);
        }
        c.wait().unwrap()
    }

    /// Starts again on the same data dir and port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the server first");
        let port = self.port;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // The port may linger briefly after a kill.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.spawn(port)));
            if r.is_ok() || Instant::now() > deadline {
                r.unwrap();
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `f` until it returns Some, or panics after `timeout` with `what`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A raw HTTP call: (status, body). `token` None sends no Authorization header.
pub fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some((ct, bytes)) => b.header("content-type", ct).body(bytes).unwrap(),
        None => b.body(Vec::new()).unwrap(),
    };
    match agent.run(req) {
        Ok(mut resp) => {
            let status = resp.status().as_u16();
            let text = resp
                .body_mut()
                .with_config()
                .limit(1 << 30)
                .read_to_string()
                .unwrap_or_default();
            (status, text)
        }
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

/// The stand-in experiments folder (needs only python3).
pub fn fake_experiments() -> PathBuf {
    repo_root().join("tests/fixtures/fake-experiments")
}

/// A running `gaia work`, killed when dropped.
pub struct Worker {
    pub bin: PathBuf,
    pub experiments: PathBuf,
    pub child: Option<Child>,
    pub state_dir: PathBuf,
    pub name: String,
    args: Vec<String>,
    server_url: String,
    token: String,
    _dir: Option<tempfile::TempDir>,
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
    /// Extra environment variables for the worker process.
    pub envs: Vec<(String, String)>,
}

impl Worker {
    /// Starts a worker for `server` running the fake experiments, with extra flags.
    pub fn start(server: &Server, name: &str, args: &[&str]) -> Worker {
        Worker::start_bin(server, name, &gaia_bin(), &fake_experiments(), args)
    }

    /// Starts a worker that reaches `server` at another URL (through a proxy, say).
    pub fn start_via(server: &Server, url: &str, name: &str, args: &[&str]) -> Worker {
        let mut w = Worker::unstarted(server, name, &gaia_bin(), &fake_experiments(), args);
        w.server_url = url.to_string();
        w.spawn();
        w
    }

    /// Starts a worker with extra environment variables (a scheduler's, say).
    pub fn start_env(server: &Server, name: &str, args: &[&str], envs: &[(&str, &str)]) -> Worker {
        let mut w = Worker::unstarted(server, name, &gaia_bin(), &fake_experiments(), args);
        w.envs = envs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        w.spawn();
        w
    }

    /// Starts a worker from a given `gaia` binary and experiments folder.
    pub fn start_bin(
        server: &Server,
        name: &str,
        bin: &Path,
        experiments: &Path,
        args: &[&str],
    ) -> Worker {
        let mut w = Worker::unstarted(server, name, bin, experiments, args);
        w.spawn();
        w
    }

    fn unstarted(
        server: &Server,
        name: &str,
        bin: &Path,
        experiments: &Path,
        args: &[&str],
    ) -> Worker {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = dir.path().join("state");
        Worker {
            bin: bin.to_path_buf(),
            experiments: experiments.to_path_buf(),
            child: None,
            state_dir,
            name: name.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
            server_url: server.url(),
            token: server.token.clone(),
            _dir: Some(dir),
            log: Default::default(),
            envs: Vec::new(),
        }
    }

    /// Starts again with the same state dir (so the same worker id).
    pub fn restart(&mut self) {
        assert!(self.child.is_none());
        self.spawn();
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "work",
            "--name",
            &self.name,
            "--gpu",
            "none",
            "--kill-grace",
            "2",
        ]);
        // `--python=venv` in the args: let the worker build its own virtualenv.
        let own_venv = self.args.iter().any(|a| a == "--python=venv");
        if !own_venv && !self.args.iter().any(|a| a == "--python") {
            cmd.args(["--python", "python3"]);
        }
        let args: Vec<&String> = self.args.iter().filter(|a| *a != "--python=venv").collect();
        cmd.arg("--experiments-dir")
            .arg(&self.experiments)
            .arg("--state-dir")
            .arg(&self.state_dir)
            .args(args)
            .env("GAIA_SERVER", &self.server_url)
            .env("GAIA_TOKEN", &self.token)
            // A test machine may itself be a Slurm job or a pod (CI in Kubernetes): workers
            // see a scheduler only where a test says so.
            .env_remove("SLURM_JOB_ID")
            .env_remove("SLURM_JOB_END_TIME")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("PBS_JOBID")
            .env_remove("LSB_JOBID")
            .env_remove("_CONDOR_JOB_AD")
            .env_remove("GAIA_ON_SIGTERM")
            .envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = spawn_retrying(&mut cmd);
        let stderr = child.stderr.take().unwrap();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[worker] {line}");
                let mut l = log.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        self.child = Some(child);
    }

    /// Waits until the worker said something containing `needle`.
    pub fn wait_log(&self, needle: &str) {
        wait_for(
            &format!("worker log line containing {needle:?}"),
            Duration::from_secs(120),
            || self.log.lock().unwrap().contains(needle).then_some(()),
        );
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal.
    pub fn signal(&self, sig: i32) {
        unsafe {
            libc::kill(self.pid(), sig);
        }
    }

    /// Waits for the process to exit (up to `timeout`).
    pub fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("worker running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("worker did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Submits an experiment to the fake experiments with these params; returns the job id.
pub fn submit_fake(client: &Client, params: serde_json::Value) -> u64 {
    let mut spec = gaia_core::model::JobSpec::experiment("cma_es", 1000);
    spec.params = serde_json::from_value(params).unwrap();
    client.submit(&spec).unwrap()
}

/// Waits until the job is in a terminal state; returns it.
pub fn wait_done(client: &Client, id: u64, timeout: Duration) -> gaia_core::model::Job {
    wait_for(&format!("job {id} to end"), timeout, || {
        let j = client.job(id).unwrap();
        j.state.is_terminal().then_some(j)
    })
}

/// Whether a process exists (a zombie counts as gone).
pub fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Whether `tool` is on PATH (for [`prerequisites`]).
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether a test's outside prerequisites are here. Missing ones skip the test loudly, except
/// under `scripts/test` (`GAIA_TESTS_STRICT=1`) or CI, where they fail it: the README's test
/// command must not pass without having run everything.
pub fn prerequisites(test: &str, missing: &[String]) -> bool {
    if missing.is_empty() {
        return true;
    }
    let set =
        |var: &str| std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false");
    assert!(
        !set("CI") && !set("GAIA_TESTS_STRICT"),
        "{test} cannot run here (run .ci/install, then scripts/test); missing: {}",
        missing.join(", ")
    );
    eprintln!(
        "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
         !! SKIPPED: {test} needs {}\n\
         !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n",
        missing.join(", ")
    );
    false
}

/// Spawns `cmd`, retrying while exec says the binary is busy (ETXTBSY): a binary a test has just
/// copied may still be open for writing in a child that another test thread forked meanwhile,
/// until that child execs. A race of the test process, not of the program under test.
pub fn spawn_retrying(cmd: &mut Command) -> Child {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Ok(c) => return c,
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 50 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("start {cmd:?}: {e}"),
        }
    }
}

/// A CLI run's stdout, asserting it succeeded (its output in the message otherwise); `what`
/// names the run.
pub fn ok_out(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A CLI run's stderr, asserting it failed.
pub fn err_out(out: Output, what: &str) -> String {
    assert!(!out.status.success(), "{what} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

/// Width and height from a PNG's IHDR chunk (and that it is a PNG at all).
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}
