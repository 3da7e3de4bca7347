//! Whose fault a failed attempt was: the experiment's own, or the machine it ran on. Pure; the
//! queue quarantines a worker whose last N attempts all failed at setup (see
//! `QueueConfig::quarantine_after`).
//!
//! An attempt failed **at setup** — not the experiment's own doing — when:
//!
//! 1. its process could not be started at all (the worker reports `cannot start PROGRAM: …`:
//!    the interpreter is missing, not executable, or not a program for this machine);
//! 2. it exited with status 126 or 127 (the shell's "found but not executable" and "not
//!    found", as `env python3` or a wrapper script report a missing interpreter) before
//!    storing a single row, within [`START_WINDOW_MS`];
//! 3. it died within [`START_WINDOW_MS`] without storing a row, and its error output names a
//!    machine fault ([`MACHINE_FAULTS`]): CUDA out of memory at start, no usable GPU or
//!    driver, a broken interpreter installation, a full or read-only disk, an illegal
//!    instruction (SIGILL, a binary for another CPU) or a bus error (SIGBUS).
//!
//! Everything else is the experiment's: an exception it raised, a non-zero exit after it
//! reported rows, a timeout, a cancel. So is a missing Python module (`ModuleNotFoundError`):
//! an experiment that imports what exists nowhere would otherwise quarantine every worker in
//! turn. The same rule protects against a broken experiment in general: only faults that name
//! the machine count, and a single success or ordinary failure breaks a streak.

use crate::model::{Job, JobState};

/// A crash this soon after the start, with no row stored, may be the machine's.
pub const START_WINDOW_MS: u64 = 60_000;

/// Error-output fragments that name a machine fault rather than the experiment (matched
/// case-insensitively in the attempt's error text, which holds the end of its stderr).
pub const MACHINE_FAULTS: &[&str] = &[
    "cuda out of memory",
    "cuda error: out of memory",
    "cudaerrormemoryallocation",
    "no cuda-capable device",
    "cudaerrornodevice",
    "cuda driver version is insufficient",
    "cuda error: unknown error",
    "cuda error: all cuda-capable devices are busy",
    "found no nvidia driver",
    "nvidia-smi has failed",
    "failed to initialize nvml",
    "error while loading shared libraries",
    "no module named 'encodings'",
    "fatal python error: init_fs_encoding",
    "no space left on device",
    "read-only file system",
    "killed by signal 4",
    "killed by signal 7",
    "illegal instruction",
];

/// Why `job`'s attempt that just ended (in `duration_ms`) failed at setup, or None when it
/// did not fail, or failed by the experiment's own doing.
pub fn setup_failure(job: &Job, duration_ms: u64) -> Option<String> {
    if job.state != JobState::Failed {
        return None;
    }
    let error = job.error.as_deref().unwrap_or("");
    let first = error.lines().next().unwrap_or("").trim();
    if job.exit_code.is_none() && first.starts_with("cannot start ") {
        return Some(format!("could not start the experiment: {}", clip(first)));
    }
    let early = duration_ms <= START_WINDOW_MS && job.progress.rows == 0;
    if !early {
        return None;
    }
    if let Some(code @ (126 | 127)) = job.exit_code {
        let what = if code == 127 {
            "not found"
        } else {
            "not executable"
        };
        return Some(format!(
            "the interpreter or program was {what} (exit status {code}): {}",
            clip(last_line(error))
        ));
    }
    let lower = error.to_ascii_lowercase();
    let fault = MACHINE_FAULTS.iter().find(|f| lower.contains(*f))?;
    let line = error
        .lines()
        .find(|l| l.to_ascii_lowercase().contains(fault))
        .unwrap_or(first);
    Some(format!(
        "crashed at start ({:.1} s, no rows): {}",
        duration_ms as f64 / 1000.0,
        clip(line.trim())
    ))
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

fn clip(s: &str) -> String {
    if s.chars().count() <= 200 {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(200).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{JobSpec, Progress};

    fn failed(exit: Option<i32>, error: &str, rows: u64) -> Job {
        Job {
            id: 1,
            owner: "admin".into(),
            spec: JobSpec::experiment("cma_es", 10).normalize().unwrap(),
            state: JobState::Failed,
            attempt: 1,
            lease: Some(1),
            worker: Some("w".into()),
            worker_name: Some("w".into()),
            cancel_requested: false,
            submitted_at: 0,
            started_at: Some(0),
            finished_at: Some(1),
            exit_code: exit,
            error: Some(error.into()),
            result: None,
            progress: Progress {
                rows,
                ..Progress::default()
            },
            attempts: vec![],
            files: vec![],
            log_lines: 0,
            log_dropped: 0,
            warnings: 0,
            errors: 0,
            rows_deleted_at: None,
            logs_deleted_at: None,
            prune_reason: None,
        }
    }

    #[test]
    fn the_machines_faults_are_told_from_the_experiments() {
        let machine = [
            failed(
                None,
                "cannot start /opt/py/bin/python3: No such file or directory (os error 2)",
                0,
            ),
            failed(
                Some(127),
                "exited with code 127; last stderr lines:\n/usr/bin/env: 'python3': No such file or directory",
                0,
            ),
            failed(
                Some(1),
                "exited with code 1; last stderr lines:\nTraceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB",
                0,
            ),
            failed(
                Some(1),
                "exited with code 1; last stderr lines:\nRuntimeError: No CUDA-capable device is detected",
                0,
            ),
            failed(None, "killed by signal 4", 0),
            failed(
                Some(1),
                "python3: error while loading shared libraries: libpython3.11.so.1.0: cannot open shared object file",
                0,
            ),
        ];
        for j in &machine {
            assert!(setup_failure(j, 2_000).is_some(), "{:?}", j.error);
        }
        let r = setup_failure(&machine[0], 5).unwrap();
        assert!(
            r.starts_with("could not start the experiment: cannot start /opt/py"),
            "{r}"
        );
        let own = [
            // An exception of the experiment's own.
            failed(
                Some(1),
                "exited with code 1; last stderr lines:\nValueError: bad sigma",
                0,
            ),
            // An import that exists nowhere: every worker would fail it.
            failed(
                Some(1),
                "exited with code 1; last stderr lines:\nModuleNotFoundError: No module named 'torchh'",
                0,
            ),
            // CUDA out of memory after it ran a while and reported rows: its own model size.
            failed(
                Some(1),
                "exited with code 1; last stderr lines:\ntorch.OutOfMemoryError: CUDA out of memory.",
                12,
            ),
        ];
        for j in &own {
            assert!(setup_failure(j, 2_000).is_none(), "{:?}", j.error);
        }
        // Too late to be a start, even with a machine fault's words.
        assert!(setup_failure(&machine[2], START_WINDOW_MS + 1).is_none());
        // Not a failure at all.
        let mut ok = machine[0].clone();
        ok.state = JobState::Succeeded;
        assert!(setup_failure(&ok, 1).is_none());
    }
}
