//! Finished jobs' folders removed off the slots' path.
//!
//! A process job runs in `<state dir>/jobs/<id>-<attempt>`, removed once the job has ended.
//! Removing a folder is a few filesystem calls, but on a filesystem mounted with `discard` (as
//! the 2-core VM's is) each freed block is trimmed before `rmdir` returns: 11 % of the worker's
//! CPU samples for back-to-back `/bin/true` jobs, on the slot's path between the job's end and
//! its next claim. So a slot renames the folder into `<state dir>/jobs/.trash/` (one call, and
//! the job's own path is free at once) and hands it to one background thread per worker, which
//! deletes it; those jobs drained 1–10 % faster (five interleaved pairs). The hand-off queue is
//! bounded, so a worker whose jobs leave folders faster than they can be deleted slows down
//! instead of filling the disk. The worker waits for the deletions still queued before it exits
//! ([`Tidy::finish`]), and what a killed worker left in the trash is deleted when a worker next
//! starts there.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

/// Folders queued for deletion at most; a slot that hands in one more waits.
const QUEUED: usize = 32;

/// The trash folder inside a worker's jobs folder.
fn trash_of(jobs: &Path) -> PathBuf {
    jobs.join(".trash")
}

/// The worker's folder remover: one thread, fed through a bounded channel.
pub(super) struct Tidy {
    trash: PathBuf,
    /// Makes each trashed folder's name unique (with the process id: two workers may share a
    /// state dir).
    seq: AtomicU64,
    tx: Mutex<Option<mpsc::SyncSender<PathBuf>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Tidy {
    /// Starts the thread for the jobs folder `jobs`, and queues what an earlier worker left in
    /// its trash. If the thread cannot be started, folders are deleted where they are handed in.
    pub fn start(jobs: &Path) -> Tidy {
        let (tx, rx) = mpsc::sync_channel::<PathBuf>(QUEUED);
        let thread = std::thread::Builder::new()
            .name("gaia-tidy".into())
            .spawn(move || {
                for dir in rx {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            })
            .ok();
        let trash = trash_of(jobs);
        let left: Vec<PathBuf> = std::fs::read_dir(&trash)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        // Made once here, not per job; if it cannot be (or is removed later), folders are
        // deleted where they are.
        let _ = std::fs::create_dir_all(&trash);
        let tidy = Tidy {
            trash,
            seq: AtomicU64::new(0),
            tx: Mutex::new(thread.as_ref().map(|_| tx)),
            thread: Mutex::new(thread),
        };
        for dir in left {
            tidy.delete(dir);
        }
        tidy
    }

    /// Removes `dir` (a job's folder inside the jobs folder) and everything in it: moved to the
    /// trash now, deleted soon (now, once [`Tidy::finish`] has run).
    pub fn remove(&self, dir: PathBuf) {
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let to = self
            .trash
            .join(format!("{}-{n}-{name}", std::process::id()));
        let moved = std::fs::rename(&dir, &to).is_ok();
        // Not movable (another filesystem, or the folder is gone): deleted where it is.
        self.delete(if moved { to } else { dir });
    }

    /// Queues `dir` for the thread, or deletes it here if the thread is gone.
    fn delete(&self, dir: PathBuf) {
        let queued = match &*self.tx.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(tx) => tx.send(dir).map_err(|e| e.0),
            None => Err(dir),
        };
        if let Err(dir) = queued {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// Waits for the deletions queued so far; later ones are done by the caller's thread.
    pub fn finish(&self) {
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_dir(jobs: &Path, name: &str) -> PathBuf {
        let d = jobs.join(name);
        std::fs::create_dir_all(d.join("output")).unwrap();
        std::fs::write(d.join("output").join("f.txt"), "x").unwrap();
        d
    }

    fn is_empty(dir: &Path) -> bool {
        std::fs::read_dir(dir).map_or(true, |mut rd| rd.next().is_none())
    }

    #[test]
    fn a_folder_leaves_its_path_at_once_and_is_gone_once_finish_returns() {
        let root = tempfile::tempdir().unwrap();
        let jobs = root.path().join("jobs");
        let tidy = Tidy::start(&jobs);
        // More than the queue holds: a slot that hands in one more waits, none is dropped.
        for i in 0..3 * QUEUED {
            let d = job_dir(&jobs, &format!("{i}-1"));
            tidy.remove(d.clone());
            assert!(
                !d.exists(),
                "the job's own path is free once remove returns"
            );
        }
        tidy.finish();
        assert!(is_empty(&trash_of(&jobs)), "a queued folder was left");
        let late = job_dir(&jobs, "late-1");
        tidy.remove(late.clone());
        assert!(
            !late.exists() && is_empty(&trash_of(&jobs)),
            "a folder handed in after finish was not removed at once"
        );
    }

    #[test]
    fn what_a_killed_worker_left_in_the_trash_is_deleted_by_the_next() {
        let root = tempfile::tempdir().unwrap();
        let jobs = root.path().join("jobs");
        let left = job_dir(&trash_of(&jobs), "999-7-3-1");
        let running = job_dir(&jobs, "4-1");
        let tidy = Tidy::start(&jobs);
        tidy.finish();
        assert!(!left.exists(), "the trash of a killed worker was kept");
        assert!(
            running.exists(),
            "a job folder outside the trash was touched"
        );
    }
}
