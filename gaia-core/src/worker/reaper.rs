//! Jobs do not outlive their worker. A worker killed with SIGKILL (or by the OOM killer, or a
//! `pkill -9 gaia`) runs no cleanup of its own, yet each job it ran is a process group that
//! would go on to its end while the job's next attempt runs elsewhere. Three layers stop that:
//!
//! 1. **Parent-death signal** (Linux): each job's leader, and the worker's own pip and venv
//!    builds, get `PR_SET_PDEATHSIG = SIGKILL` (`die_with_parent`). The kernel sends it when
//!    the *thread* that started the process ends, not the process: the job runner starts the
//!    leader on the slot thread, which waits for it, so that thread ends only with the job (or
//!    the worker). A job's leader is started by [`super::spawn`], which sets it between a
//!    vfork-style clone and the exec; the pip and venv builds set it in a `pre_exec` hook, so
//!    the standard library forks for those.
//! 2. **The reaper** reaches the rest of the group, which the leader's signal does not. It is
//!    this very program started again in a hidden mode ([`run_if_asked`]), in its own process
//!    group, reading a pipe only the worker holds: the pipe ends when the worker process does,
//!    whatever killed it (no thread subtleties), and the reaper then kills every job process
//!    group the worker recorded, and exits. A worker starts one reaper for its whole life, not
//!    one per job.
//! 3. **Records and the restart cleanup.** While a job runs, its process group is recorded in
//!    `<state dir>/groups/` (`track`). A worker that starts kills what its previous life left
//!    ([`kill_left`]): the case where the reaper died too.
//!
//! A recorded process is killed only when it is provably the job's: the group's leader by its
//! pid *and* start time (so a recycled pid is never killed); with the leader gone, each member by
//! the job's own environment entry (`GAIA_OUTPUT_DIR=<this worker's state dir>/jobs/...`), which
//! no process outside the job carries. Records of a worker that is still alive (the same state
//! dir used twice) are left alone. This needs `/proc`: on other unixes nothing is recorded and
//! only the process group kills of [`super::runner`] apply.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use super::config::{say, stamp};

/// `argv[1]` that makes a program the reaper (then `argv[2]` is the records folder).
const MODE: &str = "__gaia-reaper";

/// Set once [`run_if_asked`] has run in this program, so a worker knows it can start a reaper.
static CAN_REAP: AtomicBool = AtomicBool::new(false);

/// The records folder inside a worker's state dir.
pub fn records_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("groups")
}

/// Makes this program a worker's reaper when the worker started it as one, and returns only
/// otherwise. Call it first in `main` of any program that runs [`super::run`] (the `gaia`
/// binary does): the worker starts its reaper by running its own executable again. A program
/// that does not call it still runs jobs, but a job's children may then outlive a killed worker
/// until the worker starts again (the worker says so when it starts).
pub fn run_if_asked() {
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() == Some(OsStr::new(MODE)) {
        let dir = PathBuf::from(args.next().unwrap_or_default());
        std::process::exit(reap_when_orphaned(&dir));
    }
    CAN_REAP.store(true, Ordering::SeqCst);
}

/// The reaper's life: wait until the worker is gone, kill what it left, exit.
fn reap_when_orphaned(dir: &Path) -> i32 {
    // Its life is tied to the worker's: a stop meant for the worker (a terminal's Ctrl-C, a
    // `pkill gaia`) must not end it first.
    #[cfg(unix)]
    // SAFETY: setting dispositions in a single-threaded process, before anything else runs.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    #[cfg(unix)]
    let worker = std::os::unix::process::parent_id() as i32;
    #[cfg(not(unix))]
    let worker = 0;
    use std::io::Read;
    let mut stdin = std::io::stdin().lock();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    // The pipe ends while the worker is still exiting (its files close before it is gone from
    // the process table), so do not ask `/proc` whether it is alive: it is not.
    let killed = sweep(dir, Some(worker));
    if killed > 0 {
        eprintln!(
            "{} gaia work: the worker is gone: killed {killed} process(es) of its jobs",
            stamp()
        );
    }
    0
}

/// A worker's reaper process; dropping it closes the pipe, so the reaper exits (killing only
/// what is still recorded), and reaps it.
pub(super) struct Reaper {
    child: Child,
    dir: PathBuf,
}

impl Reaper {
    /// Starts the reaper for the records in `dir`; Err says why where this program or OS cannot
    /// have one.
    pub fn start(dir: &Path) -> Result<Reaper, String> {
        if !cfg!(target_os = "linux") {
            return Err("job processes are tracked on Linux only".into());
        }
        if !CAN_REAP.load(Ordering::SeqCst) {
            return Err(
                "this program does not call gaia_core::worker::reaper::run_if_asked() first in main"
                    .into(),
            );
        }
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
        let mut cmd = Command::new("/proc/self/exe");
        // `/proc/self/exe` is the running image even after an update replaced the file.
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.arg0(&exe).process_group(0);
        }
        // It needs no environment, and so holds no secret of the worker's.
        cmd.env_clear()
            .arg(MODE)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {} as the reaper: {e}", exe.display()))?;
        Ok(Reaper {
            child,
            dir: dir.to_path_buf(),
        })
    }

    /// Starts the reaper again if something killed it.
    pub fn ensure_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            match Reaper::start(&self.dir) {
                Ok(r) => {
                    say(&format!("the reaper ended ({status}); started it again"));
                    // The old one is reaped: replacing it drops nothing live.
                    *self = r;
                }
                Err(e) => say(&format!("the reaper ended ({status}): {e}")),
            }
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Gives `cmd`'s process SIGKILL when the thread that starts it ends (Linux; see the module
/// doc). The calling thread must outlive the process, as the job runner's does.
pub(crate) fn die_with_parent(cmd: &mut Command) -> &mut Command {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: prctl and getppid are async-signal-safe; nothing is allocated.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The worker died before the line above took effect: do not start at all.
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
    }
    cmd
}

/// How a job's processes are recorded while it runs.
#[derive(Clone, Debug)]
pub struct Tracking {
    /// The records folder ([`records_dir`]).
    pub dir: PathBuf,
    /// An environment entry (`KEY=value`) that every process of the job inherits and no
    /// process outside it has (the job's own output folder does).
    pub marker: String,
}

/// One job's process group, as recorded on disk.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Record {
    /// The group (its leader's pid).
    pgid: i32,
    /// The leader's start time (clock ticks after boot, `/proc/<pid>/stat` field 22).
    leader_start: u64,
    /// The worker that started it, the same way.
    owner: i32,
    owner_start: u64,
    /// `/proc/sys/kernel/random/boot_id`: start times compare only within one boot.
    boot: String,
    /// See [`Tracking::marker`].
    marker: String,
}

/// A recorded running group; dropping it removes the record (once the group is gone).
pub(crate) struct Tracked(PathBuf);

impl Drop for Tracked {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Records the process group led by `pgid`, just started; None where it cannot be (not
/// Linux, the leader already gone, the folder not writable).
pub(crate) fn track(t: &Tracking, pgid: i32) -> Option<Tracked> {
    // This process's start time and the boot id do not change while it runs: read once
    // (kept only once read: a read that failed is tried again at the next job).
    static OWNER: std::sync::OnceLock<(u64, String)> = std::sync::OnceLock::new();
    let (owner_start, boot) = match OWNER.get() {
        Some(o) => o.clone(),
        None => {
            let o = (
                proc::stat(std::process::id() as i32)?.start,
                proc::boot_id()?,
            );
            OWNER.get_or_init(|| o).clone()
        }
    };
    let leader = proc::stat(pgid)?;
    let rec = Record {
        pgid,
        leader_start: leader.start,
        owner: std::process::id() as i32,
        owner_start,
        boot,
        marker: t.marker.clone(),
    };
    std::fs::create_dir_all(&t.dir).ok()?;
    let path = t.dir.join(format!("{pgid}.json"));
    std::fs::write(&path, serde_json::to_vec(&rec).ok()?).ok()?;
    Some(Tracked(path))
}

/// Kills what dead workers left of their jobs, per the records in `dir` (see the module doc
/// for what is provably theirs), and removes those records. Returns the processes killed.
pub fn kill_left(dir: &Path) -> usize {
    sweep(dir, None)
}

/// [`kill_left`], taking the worker `dead` (the reaper's) as gone whatever `/proc` says.
fn sweep(dir: &Path, dead: Option<i32>) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let paths: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    if paths.is_empty() {
        return 0;
    }
    let boot = proc::boot_id();
    let mut all: Option<Vec<(i32, proc::Stat)>> = None;
    let mut killed = 0;
    for path in paths {
        let rec: Option<Record> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let Some(rec) = rec else {
            // Half written by a worker that died meanwhile: its group was just started and
            // its leader died with the worker (layer 1).
            let _ = std::fs::remove_file(&path);
            continue;
        };
        if boot.as_deref() != Some(rec.boot.as_str()) {
            // Another boot: nothing of it runs.
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if dead != Some(rec.owner)
            && proc::stat(rec.owner).is_some_and(|s| s.live && s.start == rec.owner_start)
        {
            // Its worker is alive: the group is that worker's to end.
            continue;
        }
        let all = all.get_or_insert_with(proc::all);
        let members = all.iter().filter(|(_, s)| s.live && s.pgrp == rec.pgid);
        match proc::stat(rec.pgid) {
            Some(leader) if leader.start == rec.leader_start => {
                killed += members.count();
                proc::kill(-rec.pgid);
            }
            // The number belongs to another process now. The kernel does not give out a pid
            // while a process group of that number has members, so none of ours is left.
            Some(_) => {}
            None => {
                for (pid, _) in members.filter(|(pid, s)| {
                    s.start >= rec.leader_start && proc::has_env(*pid, &rec.marker)
                }) {
                    proc::kill(*pid);
                    killed += 1;
                }
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    killed
}

/// What `/proc` says about processes (Linux); elsewhere nothing, so nothing is recorded.
mod proc {
    /// The fields of `/proc/<pid>/stat` used here.
    #[derive(Clone, Copy, Debug)]
    pub struct Stat {
        /// Not a zombie (nor dead and about to leave the process table).
        pub live: bool,
        pub pgrp: i32,
        /// Clock ticks after boot.
        pub start: u64,
    }

    /// Parses `/proc/<pid>/stat` text (the command name may hold spaces and parentheses).
    pub fn parse_stat(text: &str) -> Option<Stat> {
        let rest = &text[text.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // f[0] is field 3 (state); pgrp is field 5, starttime field 22.
        Some(Stat {
            live: !matches!(*f.first()?, "Z" | "X" | "x"),
            pgrp: f.get(2)?.parse().ok()?,
            start: f.get(19)?.parse().ok()?,
        })
    }

    #[cfg(target_os = "linux")]
    pub fn stat(pid: i32) -> Option<Stat> {
        if pid <= 0 {
            return None;
        }
        parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn stat(_pid: i32) -> Option<Stat> {
        None
    }

    /// Every process.
    pub fn all() -> Vec<(i32, Stat)> {
        let Ok(rd) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .filter_map(|pid| Some((pid, stat(pid)?)))
            .collect()
    }

    pub fn boot_id() -> Option<String> {
        if !cfg!(target_os = "linux") {
            return None;
        }
        let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        Some(id.trim().to_string())
    }

    /// Whether the process was started with `entry` (`KEY=value`) in its environment.
    pub fn has_env(pid: i32, entry: &str) -> bool {
        std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|e| e == entry.as_bytes()))
    }

    /// SIGKILL to a process, or to a process group when `pid` is negative.
    pub fn kill(pid: i32) {
        #[cfg(unix)]
        // SAFETY: kill has no memory effects.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_whatever_the_command_name() {
        let line = "4242 (a (weird) name) S 1 4240 4240 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let s = proc::parse_stat(line).unwrap();
        assert_eq!((s.live, s.pgrp, s.start), (true, 4240, 987654));
        assert!(!proc::parse_stat(&line.replace(" S ", " Z ")).unwrap().live);
        assert!(proc::parse_stat("garbage").is_none());
    }

    /// Starts `sh -c script` as the leader of a new process group with `env` set.
    #[cfg(target_os = "linux")]
    fn group(script: &str, env: &[(&str, &str)]) -> std::process::Child {
        use std::os::unix::process::CommandExt;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script])
            .process_group(0)
            .stdout(Stdio::piped())
            .stdin(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().unwrap()
    }

    #[cfg(target_os = "linux")]
    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    }

    /// Waits (up to 5 s) for a killed process to be gone.
    #[cfg(target_os = "linux")]
    fn wait_gone(pid: i32) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(!alive(pid), "{pid} survived");
    }

    /// A record as a dead worker (pid 0 never names a live one) would have left it.
    #[cfg(target_os = "linux")]
    fn left_by_dead_worker(dir: &Path, pgid: i32, leader_start: u64, marker: &str) {
        let rec = Record {
            pgid,
            leader_start,
            owner: 0,
            owner_start: 0,
            boot: proc::boot_id().unwrap(),
            marker: marker.into(),
        };
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join(format!("{pgid}.json")),
            serde_json::to_vec(&rec).unwrap(),
        )
        .unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_dead_worker_s_group_is_killed_and_a_recycled_pid_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let records = dir.path().join("groups");
        // The worker's group: its leader is still there with the recorded start time.
        let mut ours = group("sleep 30 & echo $!; wait", &[]);
        let pid = ours.id() as i32;
        let mut out = std::io::BufReader::new(ours.stdout.take().unwrap());
        let mut line = String::new();
        std::io::BufRead::read_line(&mut out, &mut line).unwrap();
        let sleep: i32 = line.trim().parse().unwrap();
        let start = proc::stat(pid).unwrap().start;
        left_by_dead_worker(&records, pid, start, "GAIA_OUTPUT_DIR=/nowhere");
        // A process whose pid a record names, but which started at another time: the pid was
        // given out again, so it is someone else's.
        let mut other = group("sleep 30", &[]);
        let opid = other.id() as i32;
        let ostart = proc::stat(opid).unwrap().start;
        left_by_dead_worker(&records, opid, ostart + 1, "GAIA_OUTPUT_DIR=/nowhere");

        assert_eq!(kill_left(&records), 2, "the leader and its sleep");
        ours.wait().unwrap();
        wait_gone(sleep);
        assert!(alive(opid), "a recycled pid was killed");
        assert!(
            std::fs::read_dir(&records).unwrap().next().is_none(),
            "records are removed once handled"
        );
        other.kill().unwrap();
        other.wait().unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn with_the_leader_gone_only_processes_carrying_the_job_s_marker_are_killed() {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let records = dir.path().join("groups");
        let marker = format!("GAIA_OUTPUT_DIR={}/jobs/1-1/output", dir.path().display());
        let value = marker.split_once('=').unwrap().1.to_string();
        // The leader starts two children in its group and exits: one inherits the job's
        // environment, one was started with another.
        let mut leader = group(
            "sleep 30 & echo $!; env -u GAIA_OUTPUT_DIR sleep 30 & echo $!",
            &[("GAIA_OUTPUT_DIR", &value)],
        );
        let pgid = leader.id() as i32;
        let start = proc::stat(pgid).unwrap().start;
        let mut out = std::io::BufReader::new(leader.stdout.take().unwrap()).lines();
        let marked: i32 = out.next().unwrap().unwrap().trim().parse().unwrap();
        let unmarked: i32 = out.next().unwrap().unwrap().trim().parse().unwrap();
        leader.wait().unwrap();
        // Until `env` has started `sleep`, that process still has the shell's environment.
        // (Read in the middle of an exec, its environment can look empty: wait for `sleep`
        // itself, under a loaded machine too.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let is_sleep = || {
            std::fs::read_to_string(format!("/proc/{unmarked}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")
        };
        while (!is_sleep() || proc::has_env(unmarked, &marker))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        left_by_dead_worker(&records, pgid, start, &marker);

        assert_eq!(kill_left(&records), 1);
        wait_gone(marked);
        assert!(
            alive(unmarked),
            "a process without the job's marker was killed"
        );
        proc::kill(unmarked);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_live_worker_s_records_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tracking {
            dir: dir.path().join("groups"),
            marker: "GAIA_OUTPUT_DIR=/nowhere".into(),
        };
        let mut child = group("sleep 30", &[]);
        let tracked = track(&t, child.id() as i32).expect("recorded");
        // This process (the owner) is alive: another worker starting on the same state dir
        // must not kill its jobs.
        assert_eq!(kill_left(&t.dir), 0);
        assert!(alive(child.id() as i32));
        drop(tracked);
        assert!(std::fs::read_dir(&t.dir).unwrap().next().is_none());
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
