//! The harness: start a real server (and workers) as child processes, talk to them over HTTP
//! and through the `gaia` binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use gaia_core::client::Client;

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
        Command::new(gaia_bin())
            .args(args)
            .env("GAIA_SERVER", self.url())
            .env("GAIA_TOKEN", &self.token)
            .env_remove("GAIA_DATA_DIR")
            .output()
            .expect("run gaia")
    }

    /// Runs the CLI and returns stdout, asserting success.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "gaia {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
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
