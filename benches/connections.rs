//! Server memory under many idle connections (issue 13, item 8): RSS of a release `gaia serve`
//! at rest, with N connections open and idle (connected, nothing sent — the cheapest way to
//! hold a server), with N keep-alive connections idle after one request each, and after all
//! of them closed.
//!
//! `cargo bench -p gaia-cli --bench connections` (GAIA_BENCH_CONNS sets N, default 10,000;
//! the bench raises its own file-descriptor limit, and the server raises its own).

#[path = "common/mod.rs"]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(want as libc::rlim_t);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
    }
    // rlim_t is u64 on Linux but not everywhere.
    #[allow(clippy::unnecessary_cast)]
    let got = lim.rlim_cur as u64;
    got
}

/// Waits for RSS to settle (the server frees memory as it notices closed connections).
fn settled(server: &BenchServer) -> f64 {
    let mut last = server.rss_mib();
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(200));
        let now = server.rss_mib();
        if (now - last).abs() < 0.05 {
            return now;
        }
        last = now;
    }
    last
}

fn main() {
    let n: usize = std::env::var("GAIA_BENCH_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let limit = raise_fd_limit(n as u64 + 256);
    assert!(
        limit as usize > n + 64,
        "this process may open only {limit} files; raise the hard limit (ulimit -Hn) or GAIA_BENCH_CONNS"
    );
    let server = BenchServer::start(&[]);
    let addr = format!("127.0.0.1:{}", server.port);
    let c = server.client();
    c.status().unwrap();
    let rest = settled(&server);
    println!("server RSS at rest:                      {rest:>7.1} MiB");

    // 1. Idle: connected, nothing sent.
    let t0 = Instant::now();
    let mut conns: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let open = settled(&server);
    println!(
        "{n} idle connections (nothing sent):  {open:>7.1} MiB  (+{:.1} KiB each; opened in {:.1} s)",
        (open - rest) * 1024.0 / n as f64,
        t0.elapsed().as_secs_f64()
    );
    drop(conns);
    let closed = settled(&server);
    println!("after they closed:                       {closed:>7.1} MiB");

    // 2. Keep-alive: one request each, then idle.
    let req = format!(
        "GET /api/v1/status HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\r\n",
        server.token
    );
    conns = Vec::with_capacity(n);
    for _ in 0..n {
        let mut s = TcpStream::connect(&addr).unwrap();
        s.write_all(req.as_bytes()).unwrap();
        conns.push(s);
    }
    let mut buf = [0u8; 4096];
    for s in &mut conns {
        // The answer's head and body arrive together; one read is enough to know it came.
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let got = s.read(&mut buf).unwrap();
        assert!(
            buf[..got].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..got])
        );
    }
    let kept = settled(&server);
    println!(
        "{n} keep-alive connections, idle:      {kept:>7.1} MiB  (+{:.1} KiB each)",
        (kept - rest) * 1024.0 / n as f64
    );
    drop(conns);
    let after = settled(&server);
    println!("after they closed:                       {after:>7.1} MiB");
    c.status().unwrap();
}
