//! Runs one experiment or command as a child process in its own process group, feeds its
//! output through the line parser into the streamer, and stops the whole group on cancel,
//! timeout or exit (SIGTERM, a grace period, SIGKILL), so nothing it forked outlives the job.
//! While it runs, the group is recorded for [`super::reaper`], so nothing outlives the worker
//! either.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
#[cfg(not(target_os = "linux"))]
use std::process::Stdio;
use std::process::{Command, ExitStatus};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::reaper::{self, Tracking};
use super::stream::{Item, ItemSender, Signals};
use crate::grammar::{Line, OutputParser};
use crate::model::{Row, Stream};

#[cfg(target_os = "linux")]
use super::spawn::Resource;
/// The type `setrlimit` takes for a resource.
#[cfg(not(target_os = "linux"))]
type Resource = libc::c_int;

/// Longest stdout/stderr line kept whole; the rest of a longer line is dropped (and said).
pub const MAX_LINE: usize = 64 * 1024;
/// Named metrics kept per row (the server's limit).
pub const MAX_METRICS: usize = 64;
/// Lines of stderr kept for the failure report.
pub const STDERR_TAIL: usize = 50;

/// How a process ended.
#[derive(Debug)]
pub enum Ended {
    Exited(ExitStatus),
    Cancelled,
    TimedOut,
    /// The lease is no longer ours: stopped, nothing to report.
    Stale,
    /// The worker is stopping now: stopped, to be given back to the queue.
    GivenBack,
    /// Could not start.
    SpawnFailed(String),
    /// Ended over one of its limits (which one, and how it was seen).
    OverLimit(String),
}

/// What a run produced besides rows and logs.
#[derive(Debug, Default)]
pub struct RunResult {
    pub stderr_tail: Vec<String>,
    /// The last `@gaia {"final": ...}` (or `{"result": ...}`) value.
    pub result: Option<serde_json::Value>,
    /// When the process was running (its exec done), µs since the Unix epoch.
    pub started_us: Option<u64>,
}

/// How long a job's pipe readers may go on after its leader has ended (a process that left
/// the job's group may still hold a pipe open).
const READERS_GRACE: Duration = Duration::from_secs(3);

/// What to run.
pub struct Spec {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: Vec<(String, String)>,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    /// Record the process group while it runs, so it is killed if the worker dies (None:
    /// only the leader dies with the worker, on Linux).
    pub tracking: Option<Tracking>,
    /// Resource limits of the job's processes (see [`Limiter`]).
    pub limits: crate::model::Limits,
    /// Where a job's cgroup may be made (the job's id and attempt name it).
    pub cgroup_name: String,
}

/// Environment variables of the worker that no job (nor pip) sees: an experiment's log is
/// readable by every `read` token, so the worker's own token must not be printable from it.
pub(crate) const PRIVATE_ENV: &[&str] = &["GAIA_TOKEN"];

/// Removes [`PRIVATE_ENV`] from what `cmd` inherits.
pub(crate) fn without_private_env(cmd: &mut Command) -> &mut Command {
    for k in PRIVATE_ENV {
        cmd.env_remove(k);
    }
    cmd
}

/// Runs `spec` to its end. Output items go to `items`; `signals` tells it to stop.
///
/// The process is started on the calling thread, which must not end before it (its leader gets
/// the parent-death signal of that thread); this function returns only once it has ended.
pub fn run(
    spec: &Spec,
    items: ItemSender,
    signals: &Arc<Signals>,
    say: &dyn Fn(&str),
) -> (Ended, RunResult) {
    let limiter = Limiter::new(&spec.limits, &spec.cgroup_name);
    if let Some(note) = &limiter.note {
        say(note);
    }
    let spawned = start(spec, &limiter);
    // `start` returns once the exec has succeeded (or failed): the job's program is running.
    let started_us = crate::model::now_us();
    let child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return (
                Ended::SpawnFailed(format!("cannot start {}: {e}", spec.program.display())),
                RunResult::default(),
            );
        }
    };
    let pid = child.pid;
    // Dropped (the record removed) on return, after the last kill of the group below.
    let _tracked = spec.tracking.as_ref().and_then(|t| reaper::track(t, pid));
    let result = Arc::new(Mutex::new(RunResult {
        started_us: Some(started_us),
        ..RunResult::default()
    }));
    let (stdout, stderr) = (child.stdout, child.stderr);
    // Each reader says when it has read its pipe to the end (and written what it found into
    // `result`), so its end is waited for without polling. `run` keeps no sender: a reader that
    // panics disconnects the channel rather than leaving its end to the grace below.
    let (read_tx, read_rx) = mpsc::channel::<()>();
    {
        let items = items.clone();
        let result = result.clone();
        let read_tx = read_tx.clone();
        std::thread::spawn(move || {
            read_stdout(stdout, &items, &result);
            let _ = read_tx.send(());
        });
    }
    {
        let result = result.clone();
        std::thread::spawn(move || {
            read_stderr(stderr, &items, &result);
            let _ = read_tx.send(());
        });
    }

    let (done_tx, done_rx) = mpsc::channel();
    let reap = child.wait;
    let waiter = std::thread::spawn(move || {
        let status = reap();
        let _ = done_tx.send(());
        status
    });
    let started = Instant::now();
    let mut ended = None;
    let mut stopping: Option<(Instant, Ended)> = None;
    loop {
        match done_rx.recv_timeout(Duration::from_millis(50)) {
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if let Some((since, _)) = &stopping {
            if since.elapsed() >= spec.grace {
                kill_group(pid, libc::SIGKILL);
            }
            continue;
        }
        let why = if signals.stale.load(Ordering::Relaxed) {
            Some(Ended::Stale)
        } else if signals.give_back.load(Ordering::Relaxed) {
            Some(Ended::GivenBack)
        } else if signals.cancel.load(Ordering::Relaxed) {
            Some(Ended::Cancelled)
        } else if spec.timeout.is_some_and(|t| started.elapsed() >= t) {
            Some(Ended::TimedOut)
        } else {
            None
        };
        if let Some(why) = why {
            let reason = match why {
                Ended::Stale => "the job is no longer this worker's (given back or taken over)",
                Ended::GivenBack => "the worker is stopping now; the job goes back to the queue",
                Ended::Cancelled => "the job was cancelled",
                Ended::TimedOut => "the job ran past its timeout",
                _ => "stopping",
            };
            say(&format!(
                "stopping process group {pid}: {reason}; SIGTERM, then SIGKILL after {:.0?}",
                spec.grace
            ));
            kill_group(pid, libc::SIGTERM);
            stopping = Some((Instant::now(), why));
        }
    }
    let status = waiter.join().expect("waiter thread");
    // Whatever the job left running in its group goes with it.
    kill_group(pid, libc::SIGKILL);
    let over = limiter.finish();
    if let Some((_, why)) = stopping {
        ended = Some(why);
    }
    // Readers end when every holder of the pipes has exited; a grandchild that left the group
    // could hold them open, so do not wait for ever (a reader still blocked then is left to end
    // on its own, its output no longer taken).
    let until = Instant::now() + READERS_GRACE;
    for _ in 0..2 {
        if read_rx
            .recv_timeout(until.saturating_duration_since(Instant::now()))
            .is_err()
        {
            break;
        }
    }
    let result = std::mem::take(&mut *result.lock().unwrap_or_else(|p| p.into_inner()));
    let ended = ended.unwrap_or_else(|| match status {
        Ok(s) => match over.or_else(|| limit_hit(&spec.limits, &s, &result.stderr_tail)) {
            Some(why) => Ended::OverLimit(why),
            None => Ended::Exited(s),
        },
        Err(e) => Ended::SpawnFailed(format!("waiting for the process failed: {e}")),
    });
    (ended, result)
}

/// A job's leader once started: its pid (also its process group's id), its output, and how
/// to wait for its end.
struct Started {
    pid: i32,
    stdout: Box<dyn Read + Send>,
    stderr: Box<dyn Read + Send>,
    wait: Box<dyn FnOnce() -> std::io::Result<ExitStatus> + Send>,
}

/// Starts `spec`'s program as the leader of its own process group, its parent-death signal
/// and its limits set before its exec. On Linux without forking the worker
/// ([`super::spawn`]); elsewhere through the standard library.
#[cfg(target_os = "linux")]
fn start(spec: &Spec, limiter: &Limiter) -> std::io::Result<Started> {
    let (cgroup_procs, rlimits) = limiter.for_child();
    let child = super::spawn::spawn(&super::spawn::Command {
        program: &spec.program,
        args: &spec.args,
        cwd: &spec.cwd,
        env: child_env(&spec.env),
        cgroup_procs,
        rlimits,
    })?;
    let pid = child.pid;
    Ok(Started {
        pid,
        stdout: Box::new(child.stdout),
        stderr: Box::new(child.stderr),
        wait: Box::new(move || super::spawn::wait(pid)),
    })
}

#[cfg(not(target_os = "linux"))]
fn start(spec: &Spec, limiter: &Limiter) -> std::io::Result<Started> {
    let mut cmd = Command::new(&spec.program);
    without_private_env(&mut cmd)
        .args(&spec.args)
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    reaper::die_with_parent(&mut cmd);
    limiter.apply(&mut cmd);
    let mut child = cmd.spawn()?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    Ok(Started {
        pid: child.id() as i32,
        stdout: Box::new(stdout),
        stderr: Box::new(stderr),
        wait: Box::new(move || child.wait()),
    })
}

/// The environment a job's process gets: the worker's, less [`PRIVATE_ENV`], with `extra`
/// set over it.
#[cfg(target_os = "linux")]
fn child_env(extra: &[(String, String)]) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = std::env::vars_os()
        .filter(|(k, _)| {
            !PRIVATE_ENV.iter().any(|p| k == p) && !extra.iter().any(|(e, _)| k == e.as_str())
        })
        .collect();
    env.extend(extra.iter().map(|(k, v)| (k.into(), v.into())));
    env
}

/// Which limit a job that ended by itself ran into, judged from how it ended: the signal the
/// kernel sends for a CPU-time or file-size limit, or what an allocation or `open` that a
/// limit refused makes programs print.
fn limit_hit(
    limits: &crate::model::Limits,
    status: &ExitStatus,
    stderr_tail: &[String],
) -> Option<String> {
    if status.success() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        match status.signal() {
            Some(libc::SIGXCPU) if limits.cpu_secs.is_some() => {
                return Some(format!(
                    "over its CPU time limit (cpu={}s): stopped by SIGXCPU",
                    limits.cpu_secs.unwrap_or(0)
                ));
            }
            Some(libc::SIGXFSZ) if limits.output_bytes.is_some() => {
                return Some(format!(
                    "over its output limit (output={}): a file grew past it (SIGXFSZ)",
                    crate::human::bytes(limits.output_bytes.unwrap_or(0))
                ));
            }
            _ => {}
        }
    }
    let said = |needles: &[&str]| {
        stderr_tail
            .iter()
            .any(|l| needles.iter().any(|n| l.contains(n)))
    };
    if let Some(b) = limits.memory_bytes
        && said(&[
            "MemoryError",
            "Cannot allocate memory",
            "memory allocation of",
            "std::bad_alloc",
            "out of memory",
            "Out of memory",
        ])
    {
        return Some(format!(
            "over its memory limit (mem={}): an allocation past it failed",
            crate::human::bytes(b)
        ));
    }
    if let Some(n) = limits.open_files
        && said(&["Too many open files", "EMFILE"])
    {
        return Some(format!("over its open files limit (files={n})"));
    }
    if let Some(b) = limits.output_bytes
        && said(&["File too large", "EFBIG"])
    {
        return Some(format!(
            "over its output limit (output={}): a file grew past it",
            crate::human::bytes(b)
        ));
    }
    if let Some(t) = limits.cpu_secs
        && said(&["CPU time limit exceeded"])
    {
        return Some(format!("over its CPU time limit (cpu={t}s)"));
    }
    None
}

/// Puts a job's limits on its processes. Memory: a cgroup v2 of its own under the worker's
/// cgroup (`memory.max`, the whole job together, swap off), where the worker may create one;
/// else `RLIMIT_AS` on each process. CPU time, open files and file size: `RLIMIT_CPU`,
/// `RLIMIT_NOFILE`, `RLIMIT_FSIZE` on each process (children inherit them). All of it is set
/// between the process's start and its exec, so the job never runs a moment unlimited.
pub struct Limiter {
    limits: crate::model::Limits,
    /// The job's cgroup folder, if one was made.
    cgroup: Option<PathBuf>,
    /// `cgroup.procs` of it, opened before the child starts (the child writes itself in).
    procs: Option<std::fs::File>,
    /// Said in the worker's log: how memory is limited.
    pub note: Option<String>,
}

impl Limiter {
    /// Prepares the limits; makes the job's cgroup when a memory limit is set and cgroups may
    /// be made (named after `name` under the worker's own cgroup).
    pub fn new(limits: &crate::model::Limits, name: &str) -> Limiter {
        let mut l = Limiter {
            limits: *limits,
            cgroup: None,
            procs: None,
            note: None,
        };
        if let Some(bytes) = limits.memory_bytes {
            match cgroup::make(name, bytes) {
                Ok((dir, procs)) => {
                    l.note = Some(format!(
                        "memory limit {} on cgroup {}",
                        crate::human::bytes(bytes),
                        dir.display()
                    ));
                    l.cgroup = Some(dir);
                    l.procs = Some(procs);
                }
                Err(why) => {
                    l.note = Some(format!(
                        "memory limit {} per process (RLIMIT_AS): {why}",
                        crate::human::bytes(bytes)
                    ));
                }
            }
        }
        l
    }

    /// What the child sets on itself before its exec: the cgroup to write itself into, and
    /// `(resource, soft, hard)` limits.
    pub(crate) fn for_child(&self) -> (Option<RawFd>, Vec<(Resource, u64, u64)>) {
        use std::os::fd::AsRawFd;
        let lim = self.limits;
        let procs = self.procs.as_ref().map(|f| f.as_raw_fd());
        let mut rlimits = Vec::new();
        if procs.is_none()
            && let Some(b) = lim.memory_bytes
        {
            rlimits.push((libc::RLIMIT_AS as Resource, b, b));
        }
        if let Some(t) = lim.cpu_secs {
            // SIGXCPU at the limit, SIGKILL 5 s of CPU later.
            rlimits.push((libc::RLIMIT_CPU as Resource, t, t.saturating_add(5)));
        }
        if let Some(n) = lim.open_files {
            rlimits.push((libc::RLIMIT_NOFILE as Resource, n, n));
        }
        if let Some(b) = lim.output_bytes {
            rlimits.push((libc::RLIMIT_FSIZE as Resource, b, b));
        }
        (procs, rlimits)
    }

    /// Sets the limits in the child, between fork and exec (where [`super::spawn`] is not
    /// used).
    #[cfg(not(target_os = "linux"))]
    pub fn apply(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        let (procs, rlimits) = self.for_child();
        if procs.is_none() && rlimits.is_empty() {
            return;
        }
        // SAFETY: only async-signal-safe calls (write, setrlimit) on values prepared before
        // the fork; nothing is allocated.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = procs {
                    // "0" moves the writing process: the child, before exec.
                    if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                for &(res, soft, hard) in &rlimits {
                    let r = libc::rlimit {
                        rlim_cur: soft as libc::rlim_t,
                        rlim_max: hard as libc::rlim_t,
                    };
                    if libc::setrlimit(res, &r) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }

    /// After the job: the limit its cgroup enforced, if it did (the kernel's OOM killer ran in
    /// it); kills what is left in the cgroup and removes it.
    pub fn finish(mut self) -> Option<String> {
        self.procs = None;
        let dir = self.cgroup.take()?;
        let over = cgroup::oom_kills(&dir).filter(|&n| n > 0).map(|n| {
            format!(
                "over its memory limit (mem={}): the kernel killed {n} of its processes (cgroup OOM)",
                crate::human::bytes(self.limits.memory_bytes.unwrap_or(0))
            )
        });
        cgroup::remove(&dir);
        over
    }
}

/// cgroup v2 for a job's memory limit.
mod cgroup {
    use std::path::{Path, PathBuf};

    /// The cgroup v2 mount point and this process's cgroup under it.
    fn own() -> Result<PathBuf, String> {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        // Fields: ... mount point (5th) ... " - " fstype ...
        let mount = mounts
            .lines()
            .find_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                (post.split_whitespace().next()? == "cgroup2")
                    .then(|| pre.split_whitespace().nth(4).map(PathBuf::from))?
            })
            .ok_or("no cgroup v2 file system is mounted")?;
        let own = std::fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let rel = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .ok_or("this process is in no cgroup v2")?;
        Ok(mount.join(rel.trim_start_matches('/')))
    }

    /// Makes `<own cgroup>/<name>` with `memory.max = bytes` (and no swap); returns it and its
    /// `cgroup.procs`, open for writing.
    pub fn make(name: &str, bytes: u64) -> Result<(PathBuf, std::fs::File), String> {
        let base = own()?;
        let controllers = std::fs::read_to_string(base.join("cgroup.subtree_control"))
            .map_err(|e| format!("cannot read {}: {e}", base.display()))?;
        if !controllers.split_whitespace().any(|c| c == "memory") {
            // Enabling it fails while this cgroup holds processes (the worker itself), unless
            // it is the root: cgroup v2 keeps processes in leaves only.
            std::fs::write(base.join("cgroup.subtree_control"), "+memory").map_err(|e| {
                format!(
                    "the memory controller is not delegated to {} ({e})",
                    base.display()
                )
            })?;
        }
        let dir = base.join(name);
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir)
            .map_err(|e| format!("cannot create cgroup {}: {e}", dir.display()))?;
        let setup = || -> Result<std::fs::File, String> {
            std::fs::write(dir.join("memory.max"), bytes.to_string())
                .map_err(|e| format!("cannot set memory.max: {e}"))?;
            // Without swap off, a job over its limit swaps instead of ending.
            let _ = std::fs::write(dir.join("memory.swap.max"), "0");
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
                .map_err(|e| format!("cannot open cgroup.procs: {e}"))
        };
        match setup() {
            Ok(f) => Ok((dir, f)),
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                Err(e)
            }
        }
    }

    /// How many processes the OOM killer ended in the cgroup.
    pub fn oom_kills(dir: &Path) -> Option<u64> {
        let events = std::fs::read_to_string(dir.join("memory.events")).ok()?;
        events
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
    }

    /// Kills what is left in the cgroup and removes it.
    pub fn remove(dir: &Path) {
        let _ = std::fs::write(dir.join("cgroup.kill"), "1");
        for _ in 0..100 {
            if std::fs::remove_dir(dir).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Sends `sig` to the whole process group `pgid`.
pub fn kill_group(pgid: i32, sig: i32) {
    #[cfg(unix)]
    unsafe {
        libc::kill(-pgid, sig);
    }
}

/// Reads lines, capping each at [`MAX_LINE`] bytes without ever holding more in memory.
fn for_each_line(r: impl Read, mut f: impl FnMut(String, usize)) {
    let mut r = BufReader::with_capacity(64 * 1024, r);
    let mut line = Vec::with_capacity(256);
    let mut dropped = 0usize;
    loop {
        let buf = match r.fill_buf() {
            Ok([]) => break,
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let (chunk, newline) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = MAX_LINE.saturating_sub(line.len());
        if chunk.len() > room {
            line.extend_from_slice(&chunk[..room]);
            dropped += chunk.len() - room;
        } else {
            line.extend_from_slice(chunk);
        }
        let consumed = newline.unwrap_or(buf.len());
        r.consume(consumed);
        if newline.is_some() {
            f(String::from_utf8_lossy(&line).into_owned(), dropped);
            line.clear();
            dropped = 0;
        }
    }
    if !line.is_empty() || dropped > 0 {
        f(String::from_utf8_lossy(&line).into_owned(), dropped);
    }
}

fn read_stdout(r: impl Read, items: &ItemSender, result: &Mutex<RunResult>) {
    let mut parser = OutputParser::default();
    for_each_line(r, |line, dropped| {
        match parser.parse(&line) {
            Line::Gen(metrics) => {
                let mut row = Row::default();
                for (k, v) in metrics {
                    // Names the server would refuse, and metrics past its limit per row, are
                    // dropped, not the whole row.
                    if crate::model::validate_name("metric", &k).is_ok()
                        && row.metrics.len() < MAX_METRICS
                    {
                        row.set_metric(&k, v);
                    }
                }
                items.send(Item::Row(row));
            }
            Line::Gaia(map) => gaia_message(map, items, result),
            Line::Log => {
                let text = if dropped > 0 {
                    format!("{line}… [{dropped} more bytes of this line dropped]")
                } else {
                    line
                };
                items.send(Item::Log(
                    Stream::Stdout,
                    crate::store::logs::clip_line(&text),
                ));
            }
        }
    });
}

fn gaia_message(
    map: serde_json::Map<String, serde_json::Value>,
    items: &ItemSender,
    result: &Mutex<RunResult>,
) {
    if let Some(p) = map.get("progress").and_then(|v| v.as_f64()) {
        items.send(Item::Fraction(p));
    }
    if let Some(s) = map.get("status").and_then(|v| v.as_str()) {
        items.send(Item::Status(s.to_string()));
    }
    if let Some(m) = map.get("metrics").and_then(|v| v.as_object()) {
        let mut row = Row::default();
        for (k, v) in m {
            if let (Some(v), Ok(())) = (v.as_f64(), crate::model::validate_name("metric", k))
                && row.metrics.len() < MAX_METRICS
            {
                row.set_metric(k, v);
            }
        }
        items.send(Item::Row(row));
    }
    for key in ["final", "result"] {
        if let Some(v) = map.get(key) {
            result.lock().unwrap_or_else(|p| p.into_inner()).result = Some(v.clone());
        }
    }
    // The whole message is kept in the log too, so nothing printed is lost.
    items.send(Item::Log(
        Stream::Stdout,
        format!("@gaia {}", serde_json::Value::Object(map)),
    ));
}

fn read_stderr(r: impl Read, items: &ItemSender, result: &Mutex<RunResult>) {
    let mut tail: VecDeque<String> = VecDeque::with_capacity(STDERR_TAIL);
    for_each_line(r, |line, dropped| {
        let text = if dropped > 0 {
            format!("{line}… [{dropped} more bytes of this line dropped]")
        } else {
            line
        };
        if tail.len() == STDERR_TAIL {
            tail.pop_front();
        }
        let text = crate::store::logs::clip_line(&text);
        tail.push_back(text.clone());
        items.send(Item::Log(Stream::Stderr, text));
    });
    result.lock().unwrap_or_else(|p| p.into_inner()).stderr_tail = tail.into_iter().collect();
}

/// Files left in `dir` (not recursive), name-sorted, with sizes.
pub fn output_files(dir: &Path) -> Vec<(String, PathBuf, u64)> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            out.push((name, e.path(), meta.len()));
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, dir: &Path) -> Spec {
        Spec {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            cwd: dir.to_path_buf(),
            env: Vec::new(),
            timeout: None,
            grace: Duration::from_secs(1),
            tracking: None,
            limits: Default::default(),
            cgroup_name: "runner-test".into(),
        }
    }

    fn logged(items: &[Item], stream: Stream) -> Vec<String> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Log(s, text) if *s == stream => Some(text.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn everything_a_job_printed_is_read_before_its_end_is_returned() {
        let dir = tempfile::tempdir().unwrap();
        let (items, sent) = ItemSender::collecting();
        let script = "for i in 1 2 3; do echo out$i; echo err$i >&2; done; exit 3";
        let (ended, result) = run(
            &sh(script, dir.path()),
            items,
            &Arc::new(Signals::default()),
            &|_| {},
        );
        assert!(
            matches!(&ended, Ended::Exited(s) if s.code() == Some(3)),
            "{ended:?}"
        );
        assert_eq!(result.stderr_tail, ["err1", "err2", "err3"]);
        let items = sent();
        assert_eq!(logged(&items, Stream::Stdout), ["out1", "out2", "out3"]);
        assert_eq!(logged(&items, Stream::Stderr), ["err1", "err2", "err3"]);
    }

    /// Kills a process when dropped (the test's stray grandchild, also when an assert fails).
    struct KillOnDrop(i32);

    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            if self.0 > 1 {
                // SAFETY: kill(2) of the grandchild's own pid, read from the file it wrote.
                unsafe { libc::kill(self.0, libc::SIGKILL) };
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_process_that_left_the_job_s_group_holding_its_output_does_not_hold_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let (items, sent) = ItemSender::collecting();
        // The grandchild starts a session of its own (out of the group the job's end kills),
        // writes its pid once it has, and keeps the job's stdout open for 60 s; the job waits
        // for that pid (up to 5 s) before it ends, so its end finds the grandchild outside.
        let script = "setsid sh -c 'echo $$ > pid; exec sleep 60' 2>/dev/null & \
                      i=0; while [ ! -s pid ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done; \
                      cat pid; echo done >&2";
        let t = Instant::now();
        let (ended, result) = run(
            &sh(script, dir.path()),
            items,
            &Arc::new(Signals::default()),
            &|_| {},
        );
        let took = t.elapsed();
        let printed = logged(&sent(), Stream::Stdout);
        let grandchild = KillOnDrop(printed.first().and_then(|l| l.parse().ok()).unwrap_or(0));
        assert!(grandchild.0 > 1, "the grandchild's pid: {printed:?}");
        assert!(
            matches!(&ended, Ended::Exited(s) if s.success()),
            "{ended:?}"
        );
        assert_eq!(
            result.stderr_tail,
            ["done"],
            "stderr, closed, was read to its end"
        );
        assert!(
            took >= READERS_GRACE && took < Duration::from_secs(30),
            "the end was returned after {took:?}: not at the readers' grace of {READERS_GRACE:?}"
        );
    }

    #[test]
    fn long_lines_are_capped_without_buffering_them() {
        let mut input = vec![b'x'; MAX_LINE * 3];
        input.extend_from_slice(b"\nshort\nlast");
        let mut got = Vec::new();
        for_each_line(&input[..], |l, d| got.push((l.len(), d)));
        assert_eq!(got, vec![(MAX_LINE, MAX_LINE * 2), (5, 0), (4, 0)]);
    }
}
