//! Starting a job's process without forking the worker (Linux).
//!
//! A job's leader needs things set between the new process's start and its `exec`: the
//! parent-death signal ([`super::reaper`]), its own process group, its resource limits and its
//! cgroup ([`super::runner::Limiter`]). The standard library can only do that by `fork`, which
//! copies the page tables of the whole multi-threaded worker and write-protects its memory, so
//! every thread takes copy-on-write faults until the child execs: about half of the worker's
//! CPU per process job (ARCHITECTURE.md, "Where time goes").
//!
//! This starts the process as `posix_spawn` does: `clone(CLONE_VM | CLONE_VFORK)`, the child
//! running on a stack of its own in the parent's memory while the parent thread waits, until
//! the child's `exec` (or its `_exit` if a step failed) releases it. The child only makes
//! system calls on values prepared before the clone — it allocates nothing and takes no lock —
//! and reports a failed step's `errno` through a close-on-exec pipe. Signals are blocked around
//! the clone (all but glibc's two internal ones, which the worker never uses), and the child
//! sets every caught signal back to its default before it unblocks them, so no handler of the
//! worker runs in it. As `execvp` does, a bare program name is looked up in the child's `PATH`,
//! and a file the kernel cannot execute (no `#!` line) is run by `/bin/sh`.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

/// The type `setrlimit` takes for a resource.
#[cfg(target_env = "gnu")]
pub(crate) type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
pub(crate) type Resource = libc::c_int;

/// What to start and what to set in the child before its `exec`.
pub(crate) struct Command<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub cwd: &'a Path,
    /// The whole environment of the child.
    pub env: Vec<(OsString, OsString)>,
    /// `cgroup.procs` of the job's cgroup: the child writes itself in.
    pub cgroup_procs: Option<RawFd>,
    /// `(resource, soft, hard)`.
    pub rlimits: Vec<(Resource, u64, u64)>,
}

/// A started process: its pid (also its process group) and the read ends of its stdout and
/// stderr. Reap it with [`wait`].
pub(crate) struct Child {
    pub pid: i32,
    pub stdout: File,
    pub stderr: File,
}

/// Everything the child reads, prepared before the clone.
struct Plan {
    path: CString,
    argv: Vec<*const libc::c_char>,
    /// `/bin/sh path args…`, for a program the kernel cannot execute (ENOEXEC).
    sh_argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    cwd: CString,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    report: RawFd,
    parent: libc::pid_t,
    cgroup_procs: Option<RawFd>,
    rlimits: Vec<(Resource, u64, u64)>,
}

/// The child's stack: it holds only `child_main`'s frame until `exec`.
const STACK: usize = 64 * 1024;

/// Starts `cmd` as the leader of a new process group, with `SIGKILL` as its parent-death
/// signal (the calling thread must outlive it), stdin from `/dev/null`, and stdout and stderr
/// piped. Returns once the program runs (its `exec` done), or the failed step's error.
pub(crate) fn spawn(cmd: &Command) -> io::Result<Child> {
    let path = cstring(resolve(cmd.program, cmd.cwd, &cmd.env)?.as_os_str())?;
    let args: Vec<CString> = std::iter::once(Ok(cstring(cmd.program.as_os_str())?))
        .chain(cmd.args.iter().map(|a| cstring(OsStr::new(a))))
        .collect::<io::Result<_>>()?;
    let sh_args: Vec<CString> = [c"/bin/sh".to_owned(), path.clone()]
        .into_iter()
        .chain(args[1..].iter().cloned())
        .collect();
    let env: Vec<CString> = cmd
        .env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            cstring(&kv)
        })
        .collect::<io::Result<_>>()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (report_r, report_w) = pipe()?;
    // SAFETY: a NUL-terminated path; the result is checked.
    let null = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if null < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor, owned here.
    let null = unsafe { OwnedFd::from_raw_fd(null) };
    let plan = Plan {
        path,
        argv: pointers(&args),
        sh_argv: pointers(&sh_args),
        envp: pointers(&env),
        cwd: cstring(cmd.cwd.as_os_str())?,
        stdin: null.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        report: report_w.as_raw_fd(),
        parent: std::process::id() as libc::pid_t,
        cgroup_procs: cmd.cgroup_procs,
        rlimits: cmd.rlimits.clone(),
    };
    let mut stack = vec![0u8; STACK];
    // The stack grows down: the child starts at its 16-byte aligned top.
    let top = (stack.as_mut_ptr() as usize + STACK) & !15;
    // SAFETY: the signal sets are initialised by sigfillset / pthread_sigmask before use. The
    // child runs `child_main` on `stack` with `plan`, both alive until clone returns, which
    // with CLONE_VFORK is after the child's exec or exit; the child only reads `plan` and makes
    // async-signal-safe calls.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child_main,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &plan as *const Plan as *mut libc::c_void,
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(clone_error);
        }
        pid
    };
    drop((out_w, err_w, report_w, null));
    // The exec closed the report pipe (close-on-exec): nothing to read. A failed step wrote its
    // errno before the child's exit.
    let mut report = File::from(report_r);
    let mut errno = [0u8; 4];
    let n = match read_full(&mut report, &mut errno) {
        Ok(n) => n,
        Err(e) => {
            // Whether it runs is unknown: it must not run untracked.
            // SAFETY: signalling and reaping the child started above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            let _ = wait(pid);
            return Err(e);
        }
    };
    if n == errno.len() {
        let _ = wait(pid);
        return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno)));
    }
    Ok(Child {
        pid,
        stdout: File::from(out_r),
        stderr: File::from(err_r),
    })
}

/// Waits for `pid` to end and reaps it.
pub(crate) fn wait(pid: i32) -> io::Result<ExitStatus> {
    loop {
        let mut status = 0;
        // SAFETY: a pid this process started; `status` is a valid out pointer.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Ok(ExitStatus::from_raw(status));
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The child, between the clone and the exec: runs on its own stack in the parent's memory,
/// so it allocates nothing and calls only async-signal-safe functions.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `Plan`, alive and unchanged until this child execs or
    // exits (the parent thread is suspended meanwhile).
    let p = unsafe { &*(arg as *const Plan) };
    // SAFETY: system calls on descriptors, strings and pointer arrays prepared by the parent.
    unsafe {
        // No handler of the worker may run here: caught signals go back to their defaults
        // (exec would reset them anyway), and SIGPIPE, which Rust programs ignore, too.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue;
            }
            let ignored = old.sa_sigaction == libc::SIG_IGN;
            if (old.sa_sigaction != libc::SIG_DFL && !ignored) || (ignored && sig == libc::SIGPIPE)
            {
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        if libc::setpgid(0, 0) != 0 {
            fail(p);
        }
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
            fail(p);
        }
        // The worker died before the line above took effect: do not start at all.
        if libc::getppid() != p.parent {
            fail_with(p, libc::ESRCH);
        }
        // Descriptors and directory first: a limit on open files below 3 must not stop them.
        if libc::dup2(p.stdin, 0) < 0 || libc::dup2(p.stdout, 1) < 0 || libc::dup2(p.stderr, 2) < 0
        {
            fail(p);
        }
        if libc::chdir(p.cwd.as_ptr()) != 0 {
            fail(p);
        }
        if let Some(fd) = p.cgroup_procs {
            // "0" moves the writing process: this child, before exec.
            if libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                fail(p);
            }
        }
        for &(resource, soft, hard) in &p.rlimits {
            let r = libc::rlimit {
                rlim_cur: soft as libc::rlim_t,
                rlim_max: hard as libc::rlim_t,
            };
            if libc::setrlimit(resource, &r) != 0 {
                fail(p);
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::execve(p.path.as_ptr(), p.argv.as_ptr(), p.envp.as_ptr());
        if *libc::__errno_location() == libc::ENOEXEC {
            libc::execve(c"/bin/sh".as_ptr(), p.sh_argv.as_ptr(), p.envp.as_ptr());
        }
        fail(p)
    }
}

/// Reports the last error to the parent and ends the child.
unsafe fn fail(p: &Plan) -> ! {
    // SAFETY: reading this thread's errno.
    let errno = unsafe { *libc::__errno_location() };
    // A step that failed without saying why (a short write) must not read as success.
    // SAFETY: as `fail_with`.
    unsafe { fail_with(p, if errno == 0 { libc::EIO } else { errno }) }
}

unsafe fn fail_with(p: &Plan, errno: libc::c_int) -> ! {
    let bytes = errno.to_ne_bytes();
    // SAFETY: writing 4 bytes from a local array to a descriptor, then `_exit` (no atexit
    // handlers, no flushing of the parent's buffers).
    unsafe {
        libc::write(p.report, bytes.as_ptr().cast(), bytes.len());
        libc::_exit(127)
    }
}

/// Where `program` is: itself if it names a path (a `/` in it), else the first file of that
/// name in the child's `PATH` that may be executed, as `execvp` finds it (a relative entry is
/// taken from the job's directory, where the exec happens).
fn resolve(program: &Path, cwd: &Path, env: &[(OsString, OsString)]) -> io::Result<PathBuf> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Ok(program.to_path_buf());
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "/bin:/usr/bin".into());
    let mut denied = false;
    for dir in std::env::split_paths(&path) {
        let candidate = cwd.join(dir).join(program);
        let Ok(c) = cstring(candidate.as_os_str()) else {
            continue;
        };
        // SAFETY: a NUL-terminated path.
        if unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0 {
            if std::fs::metadata(&candidate).is_ok_and(|m| m.is_file()) {
                return Ok(candidate);
            }
            denied = true;
        } else if io::Error::last_os_error().raw_os_error() == Some(libc::EACCES) {
            denied = true;
        }
    }
    Err(io::Error::from_raw_os_error(if denied {
        libc::EACCES
    } else {
        libc::ENOENT
    }))
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{s:?} contains a NUL byte"),
        )
    })
}

/// A NULL-terminated array of pointers into `strings` (which must outlive it).
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// A close-on-exec pipe: (read end, write end).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors; the result is checked.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: two fresh descriptors, owned from here on.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reads until `buf` is full or the end; returns how much was read.
fn read_full(r: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    use std::io::Read;
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    fn env() -> Vec<(OsString, OsString)> {
        vec![
            ("PATH".into(), std::env::var_os("PATH").unwrap_or_default()),
            ("GAIA_SPAWN_TEST".into(), "yes".into()),
        ]
    }

    #[test]
    fn the_child_runs_with_its_args_env_cwd_group_limits_and_pipes() {
        let dir = tempfile::tempdir().unwrap();
        let args = [
            "-c".to_string(),
            "echo \"$1 $GAIA_SPAWN_TEST $(pwd) $(ulimit -n)\"; \
             cut -d' ' -f5 /proc/$$/stat; cat; echo err >&2; exit 3"
                .into(),
            "sh".into(),
            "hello world".into(),
        ];
        let cmd = Command {
            program: Path::new("sh"),
            args: &args,
            cwd: dir.path(),
            env: env(),
            cgroup_procs: None,
            rlimits: vec![(libc::RLIMIT_NOFILE as Resource, 77, 77)],
        };
        let mut child = spawn(&cmd).unwrap();
        let mut out = String::new();
        child.stdout.read_to_string(&mut out).unwrap();
        let mut err = String::new();
        child.stderr.read_to_string(&mut err).unwrap();
        let status = wait(child.pid).unwrap();
        let mut lines = out.lines();
        let cwd = dir.path().canonicalize().unwrap();
        assert_eq!(
            lines.next().unwrap(),
            format!("hello world yes {} 77", cwd.display())
        );
        // Its own process group, led by itself; stdin is /dev/null (cat ends at once).
        assert_eq!(lines.next().unwrap().trim(), child.pid.to_string());
        assert_eq!(err, "err\n");
        assert_eq!(status.code(), Some(3));
    }

    #[test]
    fn a_step_that_fails_is_an_error_and_leaves_no_child() {
        let dir = tempfile::tempdir().unwrap();
        let missing = Command {
            program: Path::new("no-such-program-gaia"),
            args: &[],
            cwd: dir.path(),
            env: env(),
            cgroup_procs: None,
            rlimits: Vec::new(),
        };
        let e = spawn(&missing).err().unwrap();
        assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
        let gone = dir.path().join("gone");
        let bad_cwd = Command {
            program: Path::new("/bin/true"),
            cwd: &gone,
            ..missing
        };
        let e = spawn(&bad_cwd).err().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT), "{e}");
        let not_exec = dir.path().join("data");
        std::fs::write(&not_exec, "x").unwrap();
        let denied = Command {
            program: &not_exec,
            cwd: dir.path(),
            ..bad_cwd
        };
        let e = spawn(&denied).err().unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::EACCES), "{e}");
    }

    #[test]
    fn a_script_without_an_interpreter_line_runs_under_sh_as_with_execvp() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "echo \"plain $1\"\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let args = ["script".to_string()];
        let cmd = Command {
            program: Path::new("./run.sh"),
            args: &args,
            cwd: dir.path(),
            env: env(),
            cgroup_procs: None,
            rlimits: Vec::new(),
        };
        let mut child = spawn(&cmd).unwrap();
        let mut out = String::new();
        child.stdout.read_to_string(&mut out).unwrap();
        assert!(wait(child.pid).unwrap().success());
        assert_eq!(out, "plain script\n");
    }
}
